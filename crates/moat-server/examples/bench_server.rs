//! Store benchmark behind bench/server.sh: seeds a real moat-server store with N image SBOMs built
//! from real package lists (moat sbom inventories of the shared Debian images and the language
//! image), each image varied by version (packages moved to other real versions that the advisories
//! of that package name: fixed, introduced or last-affected versions), then measures:
//!
//! - seeding (SBOM + package index) and the first full re-match against the snapshot without the
//!   held-out advisories (every stored package matched; findings, verdicts and outbox written);
//! - "which images have CVE-X": `store::query::advisory` for many CVEs, p50/p95/p99;
//! - the delta re-evaluation after importing the held-out advisories (changed keys only);
//! - a full re-match against the new snapshot.
//!
//! usage: bench_server --store URL --work DIR --osv DIR --images N --holdout K INVENTORY.json...
//! Prints one JSON object.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Instant;

use moat_model::{Inventory, Package, Purl};
use moat_server::pipeline::gate::{GateConfig, GatePolicy};
use moat_server::reeval::{self, Mode};
use moat_server::store::images::{ImageMeta, upsert_artifact};
use moat_server::store::{Store, query};
use moat_vulndb::osv::Record;
use serde_json::json;

struct Args {
    store: String,
    work: PathBuf,
    osv: PathBuf,
    images: usize,
    holdout: usize,
    queries: usize,
    inventories: Vec<PathBuf>,
}

fn args() -> Result<Args, String> {
    let mut a = Args {
        store: String::new(),
        work: PathBuf::new(),
        osv: PathBuf::new(),
        images: 10_000,
        holdout: 1_000,
        queries: 2_000,
        inventories: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(x) = it.next() {
        let mut val = || it.next().ok_or(format!("{x} needs a value"));
        match x.as_str() {
            "--store" => a.store = val()?,
            "--work" => a.work = val()?.into(),
            "--osv" => a.osv = val()?.into(),
            "--images" => a.images = val()?.parse().map_err(|e| format!("--images: {e}"))?,
            "--holdout" => a.holdout = val()?.parse().map_err(|e| format!("--holdout: {e}"))?,
            "--queries" => a.queries = val()?.parse().map_err(|e| format!("--queries: {e}"))?,
            other => a.inventories.push(other.into()),
        }
    }
    if a.store.is_empty() || a.work.as_os_str().is_empty() || a.inventories.is_empty() {
        return Err("usage: bench_server --store URL --work DIR --osv DIR [--images N] [--holdout K] INVENTORY.json...".into());
    }
    Ok(a)
}

/// A small deterministic generator (xorshift), so a run is reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn with_version(p: &Package, v: &str) -> Package {
    let mut q = p.clone();
    q.version = v.to_string();
    let s = p.purl.to_string();
    // Replace the version in the purl: `pkg:type/ns/name@VERSION?qualifiers`.
    if let Some(at) = s.find('@') {
        let rest = &s[at + 1..];
        let tail = rest.find(['?', '#']).map(|i| &rest[i..]).unwrap_or("");
        if let Ok(u) = format!("{}@{}{}", &s[..at], v, tail).parse::<Purl>() {
            q.purl = u;
        }
    }
    if let Some(src) = &mut q.source {
        src.version = v.to_string();
    }
    q
}

#[tokio::main]
async fn main() {
    if let Err(e) = real_main().await {
        eprintln!("bench_server: {e}");
        std::process::exit(1);
    }
}

async fn real_main() -> Result<(), String> {
    let a = args()?;
    let e = |x: &dyn std::fmt::Display| x.to_string();
    // Real package lists.
    let mut bases: Vec<Inventory> = Vec::new();
    for p in &a.inventories {
        let t = std::fs::read_to_string(p).map_err(|x| format!("{}: {x}", p.display()))?;
        bases.push(serde_json::from_str(&t).map_err(|x| format!("{}: {x}", p.display()))?);
    }
    // Every real OSV record; versions the advisories name, per (ecosystem, name) key.
    let t = Instant::now();
    let batch = moat_vulndb::import::read_path(&a.osv).map_err(|x| e(&x))?;
    let records: Vec<Record> = batch.records;
    let read_ms = t.elapsed().as_millis();
    let mut versions: HashMap<String, BTreeSet<String>> = HashMap::new();
    let mut by_key: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        for af in &r.affected {
            let k = moat_vulndb::ecosystem::key(&af.package.ecosystem, &af.package.name);
            by_key.entry(k.clone()).or_default().push(i);
            let vs = versions.entry(k).or_default();
            for rg in &af.ranges {
                for ev in &rg.events {
                    for v in [&ev.introduced, &ev.fixed, &ev.last_affected]
                        .into_iter()
                        .flatten()
                    {
                        if v != "0" && v.len() < 64 && !v.contains(' ') {
                            vs.insert(v.clone());
                        }
                    }
                }
            }
        }
    }
    // Hold out K advisories that name packages of the base images (so the delta has work to do).
    let mut base_keys: BTreeSet<String> = BTreeSet::new();
    for inv in &bases {
        for p in &inv.packages {
            if let Ok(q) = moat_vulndb::ecosystem::query_for(p, inv.os.as_ref()) {
                base_keys.insert(moat_vulndb::ecosystem::key(&q.ecosystem, &q.name));
            }
        }
    }
    // Half of them (at most a third of those records) name packages the seeded images hold; the
    // rest are spread over the whole database, as a real update touches packages nobody runs.
    let on_images: BTreeSet<usize> = base_keys
        .iter()
        .flat_map(|k| by_key.get(k).into_iter().flatten().copied())
        .collect();
    let want = (a.holdout / 2).min(on_images.len() / 3);
    let step = (on_images.len() / want.max(1)).max(1);
    let mut held: BTreeSet<usize> = on_images.iter().step_by(step).take(want).copied().collect();
    // Fill up with other records (a DB update also touches packages nobody runs).
    let mut i = 0;
    while held.len() < a.holdout && i < records.len() {
        if !on_images.contains(&i) {
            held.insert(i);
        }
        i += 7;
    }
    let held_on_images = held
        .iter()
        .filter(|&&i| {
            records[i].affected.iter().any(|af| {
                base_keys.contains(&moat_vulndb::ecosystem::key(
                    &af.package.ecosystem,
                    &af.package.name,
                ))
            })
        })
        .count();
    let db = a.work.join("db");
    let without: Vec<Record> = records
        .iter()
        .enumerate()
        .filter(|(i, _)| !held.contains(i))
        .map(|(_, r)| r.clone())
        .collect();
    let meta0 = moat_vulndb::store::write(&db, without, Vec::new()).map_err(|x| e(&x))?;

    // Seed N images.
    let store = Store::connect(&a.store).await.map_err(|x| e(&x))?;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let t = Instant::now();
    let mut rows = 0usize;
    let per_tx = 50;
    let mut n = 0;
    while n < a.images {
        let mut tx = store.begin().await.map_err(|x| e(&x))?;
        for _ in 0..per_tx.min(a.images - n) {
            let base = &bases[n % bases.len()];
            let mut inv = base.clone();
            // Vary ~15% of the packages to another real version their advisories name.
            for p in &mut inv.packages {
                if rng.next() % 100 >= 15 {
                    continue;
                }
                let Ok(q) = moat_vulndb::ecosystem::query_for(p, base.os.as_ref()) else {
                    continue;
                };
                let k = moat_vulndb::ecosystem::key(&q.ecosystem, &q.name);
                if let Some(vs) = versions.get(&k).filter(|v| !v.is_empty()) {
                    let pick = (rng.next() as usize) % vs.len();
                    if let Some(v) = vs.iter().nth(pick) {
                        *p = with_version(p, v);
                    }
                }
            }
            let digest = moat_server::store::content_digest(format!("bench-image-{n}").as_bytes());
            let meta = ImageMeta {
                digest: digest.clone(),
                repository: Some(format!("bench/team-{}/app-{}", n % 50, n % 997)),
                tag: Some(format!("v{n}")),
                media_type: Some("application/vnd.oci.image.manifest.v1+json".into()),
                user: Some("1000".into()),
                os: Some("linux".into()),
                arch: Some("amd64".into()),
                ..ImageMeta::default()
            };
            upsert_artifact(&mut tx, &meta).await.map_err(|x| e(&x))?;
            query::index_inventory(&mut tx, &digest, &inv)
                .await
                .map_err(|x| e(&x))?;
            rows += inv.packages.len();
            n += 1;
        }
        tx.commit().await.map_err(|x| e(&x))?;
    }
    let seed_s = t.elapsed().as_secs_f64();
    let distinct: i64 = {
        use sqlx::Row;
        sqlx::query("SELECT CAST(COUNT(*) AS BIGINT) FROM package")
            .fetch_one(store.pool())
            .await
            .map_err(|x| e(&x))?
            .try_get(0)
            .map_err(|x| e(&x))?
    };

    let policy = GatePolicy::load(GateConfig::default()).map_err(|x| e(&x))?;
    // First evaluation: every stored package matched (no baseline yet).
    let t = Instant::now();
    let first = reeval::run(&store, &db, &policy, Mode::Delta)
        .await
        .map_err(|x| e(&x))?;
    let first_s = t.elapsed().as_secs_f64();

    // The DB changes: the held-out advisories arrive.
    let t = Instant::now();
    let meta1 = moat_vulndb::store::write(&db, records.clone(), Vec::new()).map_err(|x| e(&x))?;
    let write_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let delta = reeval::run(&store, &db, &policy, Mode::Delta)
        .await
        .map_err(|x| e(&x))?;
    let delta_s = t.elapsed().as_secs_f64();
    // A full re-match against the same snapshot (nothing changes; every package matched again).
    let t = Instant::now();
    let full = reeval::run(&store, &db, &policy, Mode::Full)
        .await
        .map_err(|x| e(&x))?;
    let full_s = t.elapsed().as_secs_f64();
    // "Which images have CVE-X": the CVEs with open findings, each queried in turn.
    let cves: Vec<String> = {
        use sqlx::Row;
        sqlx::query(
            "SELECT DISTINCT va.alias FROM vuln_alias va WHERE va.alias LIKE 'CVE-%' ORDER BY va.alias",
        )
        .fetch_all(store.pool())
        .await
        .map_err(|x| e(&x))?
        .iter()
        .filter_map(|r| r.try_get::<String, _>(0).ok())
        .collect()
    };
    let mut lat: Vec<f64> = Vec::new();
    let mut hits: Vec<usize> = Vec::new();
    if !cves.is_empty() {
        for i in 0..a.queries {
            let id = &cves[(i * 7919) % cves.len()];
            let t = Instant::now();
            let v = query::advisory(&store, id, 10_000)
                .await
                .map_err(|x| e(&x))?;
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
            hits.push(v.map_or(0, |v| v.image_count));
        }
    }
    lat.sort_by(|x, y| x.total_cmp(y));
    let mut h = hits.clone();
    h.sort();

    let outbox: BTreeMap<String, i64> = {
        use sqlx::Row;
        sqlx::query("SELECT event_type, CAST(COUNT(*) AS BIGINT) FROM outbox GROUP BY event_type")
            .fetch_all(store.pool())
            .await
            .map_err(|x| e(&x))?
            .iter()
            .filter_map(|r| Some((r.try_get(0).ok()?, r.try_get(1).ok()?)))
            .collect()
    };
    let out = json!({
        "store": a.store.split(':').next(),
        "images": a.images,
        "image_package_rows": rows,
        "distinct_packages": distinct,
        "osv_records": records.len(),
        "osv_read_ms": read_ms,
        "snapshot_without": meta0.digest,
        "snapshot_with": meta1.digest,
        "holdout": held.len(),
        "holdout_naming_seeded_packages": held_on_images,
        "seed_s": seed_s,
        "first_evaluation": {"s": first_s, "outcome": first},
        "cve_query": {
            "cves": cves.len(), "queries": lat.len(),
            "p50_ms": pct(&lat, 50.0), "p95_ms": pct(&lat, 95.0), "p99_ms": pct(&lat, 99.0), "max_ms": pct(&lat, 100.0),
            "images_per_answer_p50": h.get(h.len() / 2).copied().unwrap_or(0),
            "images_per_answer_max": h.last().copied().unwrap_or(0),
        },
        "snapshot_write_s": write_s,
        "delta": {"s": delta_s, "outcome": delta},
        "full": {"s": full_s, "outcome": full},
        "outbox": outbox,
    });
    println!("{}", serde_json::to_string_pretty(&out).map_err(|x| e(&x))?);
    store.close().await;
    Ok(())
}
