//! Vulnerability matching of language packages through `moat scan`:
//!
//! 1. The language test image (scripts/deps.d/40-lang-image.sh: npm tree, pip site-packages and a
//!    Go binary on bookworm): every PyPI, Go and npm advisory in ../shared/data/osv that affects
//!    one of its packages is reported, and nothing else. The expected set is computed here,
//!    independently of moat's matcher, from the records' explicit `versions` lists (PyPI) and
//!    SEMVER ranges (Go, npm).
//! 2. Trivy's lockfile end-to-end goldens: its YAML vulnerability DB fixture is converted to OSV
//!    records, imported with `moat db import`, and `moat scan dir:<lockfile dir>` must report the
//!    same (vulnerability id, package, installed version) triples as Trivy's `*.json.golden`.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

const MOAT: &str = env!("CARGO_BIN_EXE_moat");

fn home() -> PathBuf {
    PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
}

fn shared() -> Option<PathBuf> {
    let p = std::env::var_os("MOAT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")));
    p.join("data").is_dir().then_some(p)
}

fn moat(args: &[&str]) -> Output {
    Command::new(MOAT).args(args).output().expect("run moat")
}

fn ok(out: Output, what: &str) -> Vec<u8> {
    assert!(
        out.status.success(),
        "{what} failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn pep503(n: &str) -> String {
    let mut out = String::new();
    let mut sep = false;
    for c in n.chars() {
        if matches!(c, '-' | '_' | '.') {
            sep = true;
        } else {
            if sep && !out.is_empty() {
                out.push('-');
            }
            sep = false;
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// Semantic Versioning 2.0 precedence (Go module versions without `v` and `+incompatible`).
fn semver_cmp(a: &str, b: &str) -> Ordering {
    fn split(v: &str) -> (Vec<u64>, Option<Vec<String>>) {
        let v = v.trim_start_matches('v');
        let v = v.split('+').next().unwrap_or(v);
        let (core, pre) = match v.split_once('-') {
            Some((c, p)) => (c, Some(p.split('.').map(str::to_string).collect())),
            None => (v, None),
        };
        let mut nums: Vec<u64> = core.split('.').map(|p| p.parse().unwrap_or(0)).collect();
        nums.resize(3, 0);
        (nums, pre)
    }
    let (an, ap) = split(a);
    let (bn, bp) = split(b);
    an.cmp(&bn).then_with(|| match (ap, bp) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => {
            for (i, j) in x.iter().zip(y.iter()) {
                let o = match (i.parse::<u64>(), j.parse::<u64>()) {
                    (Ok(p), Ok(q)) => p.cmp(&q),
                    (Ok(_), Err(_)) => Ordering::Less,
                    (Err(_), Ok(_)) => Ordering::Greater,
                    (Err(_), Err(_)) => i.cmp(j),
                };
                if o != Ordering::Equal {
                    return o;
                }
            }
            x.len().cmp(&y.len())
        }
    })
}

/// OSV SEMVER range evaluation (events applied in version order).
fn semver_affected(events: &[Value], v: &str) -> bool {
    let mut evs: Vec<(String, &str)> = Vec::new();
    for e in events {
        for k in ["introduced", "fixed", "last_affected"] {
            if let Some(x) = e.get(k).and_then(Value::as_str) {
                evs.push((x.to_string(), k));
            }
        }
    }
    evs.sort_by(|a, b| {
        if a.0 == "0" {
            Ordering::Less
        } else if b.0 == "0" {
            Ordering::Greater
        } else {
            semver_cmp(&a.0, &b.0)
        }
    });
    let mut affected = false;
    for (x, k) in evs {
        let c = if x == "0" {
            Ordering::Greater
        } else {
            semver_cmp(v, &x)
        };
        match k {
            "introduced" if c != Ordering::Less => affected = true,
            "fixed" if c != Ordering::Less => affected = false,
            "last_affected" if c == Ordering::Greater => affected = false,
            _ => {}
        }
    }
    affected
}

/// Every advisory id a `moat scan` JSON report names (a finding groups aliases' records).
fn reported(report: &[u8]) -> BTreeSet<(String, String, String)> {
    let doc: Value = serde_json::from_slice(report).expect("scan JSON");
    let mut out = BTreeSet::new();
    for f in doc["findings"].as_array().into_iter().flatten() {
        if f["kind"] != "vulnerability" {
            continue;
        }
        let name = f["package"]["name"].as_str().unwrap_or("").to_string();
        let version = f["package"]["version"].as_str().unwrap_or("").to_string();
        let mut ids: Vec<String> = vec![f["id"].as_str().unwrap_or("").to_string()];
        for r in f["vulnerability"]["records"]
            .as_array()
            .into_iter()
            .flatten()
        {
            ids.extend(r["id"].as_str().map(str::to_string));
        }
        for id in ids {
            out.insert((id, name.clone(), version.clone()));
        }
    }
    out
}

#[test]
fn lang_image_pypi_go_and_npm_advisories_are_reported() {
    let Some(shared) = shared() else {
        eprintln!("SKIPPED: ../shared/data (set MOAT_SHARED)");
        return;
    };
    let root = home().join(".cache/moat-fixtures/lang-image/rootfs");
    if !root.join("srv/app/node_modules").is_dir() {
        let _ = Command::new("bash")
            .arg(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../scripts/deps.d/40-lang-image.sh"
            ))
            .status();
    }
    if !root.join("srv/app/node_modules").is_dir() {
        eprintln!("SKIPPED: language test image (scripts/deps.d/40-lang-image.sh)");
        return;
    }
    const ECOSYSTEMS: [&str; 3] = ["PyPI", "Go", "npm"];
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    let osv = shared.join("data/osv");
    let mut import = vec![
        "db".to_string(),
        "import".into(),
        "--db".into(),
        db.display().to_string(),
    ];
    import.extend(ECOSYSTEMS.iter().map(|e| osv.join(e).display().to_string()));
    ok(
        moat(&import.iter().map(String::as_str).collect::<Vec<_>>()),
        "moat db import",
    );

    // The image's language packages, as moat sbom lists them: (ecosystem, name key) -> versions.
    let key = |eco: &str, name: &str| {
        if eco == "PyPI" {
            pep503(name)
        } else {
            name.to_string()
        }
    };
    let target = format!("dir:{}", root.display());
    let sbom: Value = serde_json::from_slice(&ok(
        moat(&["sbom", &target, "--format", "json"]),
        "moat sbom",
    ))
    .unwrap();
    let mut installed: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for p in sbom["packages"].as_array().into_iter().flatten() {
        let eco = match p["kind"].as_str() {
            Some("python") => "PyPI",
            Some("go") | Some("go-stdlib") => "Go",
            Some("npm") => "npm",
            _ => continue,
        };
        let name = p["name"].as_str().unwrap();
        installed
            .entry((eco.to_string(), key(eco, name)))
            .or_default()
            .insert(p["version"].as_str().unwrap().to_string());
    }

    // Expected: computed from the records themselves — PyPI by their explicit `versions` lists,
    // Go and npm by their SEMVER ranges.
    let mut expected: BTreeSet<(String, String, String, String)> = BTreeSet::new();
    for eco in ECOSYSTEMS {
        for entry in std::fs::read_dir(osv.join(eco)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let Ok(rec) = serde_json::from_slice::<Value>(&std::fs::read(&path).unwrap()) else {
                continue;
            };
            if rec.get("withdrawn").is_some_and(|w| !w.is_null()) {
                continue;
            }
            let id = rec["id"].as_str().unwrap_or("").to_string();
            for aff in rec["affected"].as_array().into_iter().flatten() {
                if aff["package"]["ecosystem"].as_str() != Some(eco) {
                    continue;
                }
                let k = key(eco, aff["package"]["name"].as_str().unwrap_or(""));
                let Some(versions) = installed.get(&(eco.to_string(), k.clone())) else {
                    continue;
                };
                for v in versions {
                    let hit = if eco == "PyPI" {
                        aff["versions"]
                            .as_array()
                            .is_some_and(|vs| vs.iter().any(|x| x.as_str() == Some(v)))
                    } else {
                        aff["ranges"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter(|r| r["type"] == "SEMVER")
                            .any(|r| {
                                semver_affected(
                                    r["events"].as_array().map(Vec::as_slice).unwrap_or(&[]),
                                    v,
                                )
                            })
                    };
                    if hit {
                        expected.insert((eco.to_string(), id.clone(), k.clone(), v.clone()));
                    }
                }
            }
        }
    }

    let report = ok(
        moat(&[
            "scan",
            &target,
            "--db",
            db.to_str().unwrap(),
            "--format",
            "json",
        ]),
        "moat scan",
    );
    let doc: Value = serde_json::from_slice(&report).unwrap();
    let mut got: BTreeSet<(String, String, String, String)> = BTreeSet::new();
    for f in doc["findings"].as_array().into_iter().flatten() {
        let eco = f["vulnerability"]["ecosystem"].as_str().unwrap_or("");
        if f["kind"] != "vulnerability" || !ECOSYSTEMS.contains(&eco) {
            continue;
        }
        let k = key(eco, f["package"]["name"].as_str().unwrap_or(""));
        let v = f["package"]["version"].as_str().unwrap_or("").to_string();
        // The OSV records behind the finding (its id is the CVE or GHSA id users search by, issue
        // 14; the records keep the OSV ids).
        let ids: Vec<&str> = f["vulnerability"]["records"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["id"].as_str())
            .collect();
        assert!(!ids.is_empty(), "{}: no records", f["id"]);
        for id in ids {
            got.insert((eco.to_string(), id.to_string(), k.clone(), v.clone()));
        }
    }
    let missing: Vec<_> = expected.difference(&got).collect();
    let extra: Vec<_> = got.difference(&expected).collect();
    let count = |s: &BTreeSet<(String, String, String, String)>, eco: &str| {
        s.iter().filter(|k| k.0 == eco).count()
    };
    eprintln!(
        "image advisories: expected {} (PyPI {}, Go {}, npm {}), reported {}; missing {missing:?}; extra {extra:?}",
        expected.len(),
        count(&expected, "PyPI"),
        count(&expected, "Go"),
        count(&expected, "npm"),
        got.len()
    );
    for eco in ECOSYSTEMS {
        assert!(
            count(&expected, eco) > 0,
            "the shared data should hold {eco} advisories for these old pins"
        );
    }
    assert!(missing.is_empty() && extra.is_empty());
}

/// Converts a Trivy DB version constraint list to OSV ranges: each entry is a conjunction
/// (`>= 1.0, < 2.0`, `< 3.0.0`, `[2.9.0,2.9.10.7)`), entries are alternatives.
fn constraint_ranges(ty: &str, vulnerable: &[String], strip_v: bool) -> Vec<Value> {
    let norm = |v: &str| {
        if strip_v {
            v.trim_start_matches('v').to_string()
        } else {
            v.to_string()
        }
    };
    let mut ranges = Vec::new();
    for c in vulnerable.iter().flat_map(|c| c.split("||")) {
        let c = c.trim();
        let (mut lo, mut hi) = (None::<String>, None::<(String, bool)>);
        if let Some(inner) = c.strip_prefix('[').or_else(|| c.strip_prefix('(')) {
            // Maven range syntax.
            let (a, b) = inner.split_once(',').unwrap_or((inner, ""));
            let inclusive_hi = b.ends_with(']');
            let b = b.trim_end_matches([']', ')']).trim();
            if !a.trim().is_empty() {
                lo = Some(norm(a.trim()));
            }
            if !b.is_empty() {
                hi = Some((norm(b), inclusive_hi));
            }
        } else {
            let toks: Vec<&str> = c.split([',', ' ']).filter(|t| !t.is_empty()).collect();
            let mut i = 0;
            while i < toks.len() {
                let (op, val) = match toks[i] {
                    op @ (">=" | "<=" | ">" | "<" | "=" | "==") => {
                        i += 1;
                        (op, toks.get(i).copied().unwrap_or(""))
                    }
                    t => {
                        let op_len = t
                            .chars()
                            .take_while(|c| matches!(c, '<' | '>' | '='))
                            .count();
                        (&t[..op_len], &t[op_len..])
                    }
                };
                match op {
                    ">=" | ">" => lo = Some(norm(val)),
                    "<" => hi = Some((norm(val), false)),
                    "<=" => hi = Some((norm(val), true)),
                    _ => {
                        lo = Some(norm(val));
                        hi = Some((norm(val), true));
                    }
                }
                i += 1;
            }
        }
        let mut events =
            vec![json!({"introduced": lo.filter(|l| l != "0").unwrap_or_else(|| "0".into())})];
        match hi {
            Some((h, false)) => events.push(json!({"fixed": h})),
            Some((h, true)) => events.push(json!({"last_affected": h})),
            None => {}
        }
        ranges.push(json!({"type": ty, "events": events}));
    }
    ranges
}

/// Cargo entries list only patched ranges (`>= 2.1.0`, `>= 2.1.3, < 3.0.0`): affected is the rest.
fn patched_complement(patched: &[String]) -> Vec<Value> {
    let mut bounds: Vec<(String, Option<String>)> = patched
        .iter()
        .map(|p| {
            let mut lo = "0".to_string();
            let mut hi = None;
            for part in p.split(',') {
                let part = part.trim();
                if let Some(v) = part.strip_prefix(">=") {
                    lo = v.trim().to_string();
                } else if let Some(v) = part.strip_prefix('<') {
                    hi = Some(v.trim().to_string());
                }
            }
            (lo, hi)
        })
        .collect();
    bounds.sort_by(|a, b| semver_cmp(&a.0, &b.0));
    let mut events = vec![json!({"introduced": "0"})];
    for (lo, hi) in bounds {
        events.push(json!({"fixed": lo}));
        if let Some(h) = hi {
            events.push(json!({"introduced": h}));
        }
    }
    vec![json!({"type": "SEMVER", "events": events})]
}

/// Writes Trivy's language DB fixtures as an OSV tree (<Ecosystem>/<ID>.json) under `out`.
fn trivy_db_to_osv(fixtures: &Path, out: &Path) -> usize {
    let mut records: BTreeMap<(String, String), Vec<Value>> = BTreeMap::new();
    for file in [
        "python.yaml",
        "go.yaml",
        "nodejs.yaml",
        "rust.yaml",
        "java.yaml",
    ] {
        let text = std::fs::read_to_string(fixtures.join(file)).unwrap();
        let doc: Value = serde_saphyr::from_str(&text).unwrap();
        for source in doc.as_array().into_iter().flatten() {
            let bucket = source["bucket"].as_str().unwrap_or("");
            let (eco, ty, strip_v) = match bucket.split("::").next() {
                Some("pip") => ("PyPI", "ECOSYSTEM", false),
                Some("go") => ("Go", "SEMVER", true),
                Some("npm") => ("npm", "SEMVER", false),
                Some("cargo") => ("crates.io", "SEMVER", false),
                Some("maven") => ("Maven", "ECOSYSTEM", false),
                _ => continue,
            };
            for pkg in source["pairs"].as_array().into_iter().flatten() {
                let name = pkg["bucket"].as_str().unwrap_or("");
                for adv in pkg["pairs"].as_array().into_iter().flatten() {
                    let id = adv["key"].as_str().unwrap_or("").to_string();
                    let list = |k: &str| -> Vec<String> {
                        adv["value"][k]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect()
                    };
                    let vulnerable = list("VulnerableVersions");
                    let ranges = if vulnerable.is_empty() {
                        patched_complement(&list("PatchedVersions"))
                    } else {
                        constraint_ranges(ty, &vulnerable, strip_v)
                    };
                    records.entry((eco.to_string(), id)).or_default().push(
                        json!({"package": {"ecosystem": eco, "name": name}, "ranges": ranges}),
                    );
                }
            }
        }
    }
    for ((eco, id), affected) in &records {
        let dir = out.join(eco);
        std::fs::create_dir_all(&dir).unwrap();
        let rec = json!({"schema_version": "1.6.0", "id": id, "modified": "2024-01-01T00:00:00Z", "affected": affected});
        std::fs::write(
            dir.join(format!("{id}.json")),
            serde_json::to_vec_pretty(&rec).unwrap(),
        )
        .unwrap();
    }
    records.len()
}

#[test]
fn trivy_lockfile_goldens_give_the_same_vulnerability_ids() {
    let Some(shared) = shared() else {
        eprintln!("SKIPPED: ../shared/data (set MOAT_SHARED)");
        return;
    };
    let it = shared.join("data/golden/trivy/integration/testdata");
    let tmp = tempfile::tempdir().unwrap();
    let n = trivy_db_to_osv(&it.join("fixtures/db"), &tmp.path().join("osv"));
    let db = tmp.path().join("db");
    ok(
        moat(&[
            "db",
            "import",
            "--db",
            db.to_str().unwrap(),
            tmp.path().join("osv").to_str().unwrap(),
        ]),
        "moat db import",
    );
    eprintln!("converted {n} advisories from Trivy's DB fixtures");
    let cases = [
        ("npm", "npm"),
        ("npm-with-dev", "npm"),
        ("yarn", "yarn"),
        ("pnpm", "pnpm"),
        ("cargo.lock", "cargo"),
        ("gomod", "gomod"),
        ("gradle", "gradle"),
        ("pom", "pom"),
        ("pip", "pip"),
        ("pipenv", "pipenv"),
        ("poetry", "poetry"),
        ("uv", "uv"),
        ("pylock", "pylock"),
    ];
    let norm = |id: &str, name: &str, v: &str| {
        (
            id.to_string(),
            pep503(name),
            v.trim_start_matches('v').to_string(),
        )
    };
    let mut failed = Vec::new();
    for (golden, repo) in cases {
        let g: Value = serde_json::from_slice(
            &std::fs::read(it.join(format!("{golden}.json.golden"))).unwrap(),
        )
        .unwrap();
        let want: BTreeSet<_> = g["Results"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|r| r["Vulnerabilities"].as_array().cloned().unwrap_or_default())
            .map(|v| {
                norm(
                    v["VulnerabilityID"].as_str().unwrap(),
                    v["PkgName"].as_str().unwrap(),
                    v["InstalledVersion"].as_str().unwrap(),
                )
            })
            .collect();
        let target = format!("dir:{}", it.join("fixtures/repo").join(repo).display());
        let report = ok(
            moat(&[
                "scan",
                &target,
                "--db",
                db.to_str().unwrap(),
                "--format",
                "json",
            ]),
            "moat scan",
        );
        let got: BTreeSet<_> = reported(&report)
            .iter()
            .map(|(id, n, v)| norm(id, n, v))
            .collect();
        if got == want {
            eprintln!(
                "OK   {golden}: {} findings {:?}",
                want.len(),
                want.iter().map(|k| &k.0).collect::<Vec<_>>()
            );
        } else {
            eprintln!("DIFF {golden}: trivy {want:?}; moat {got:?}");
            failed.push(golden);
        }
    }
    assert!(failed.is_empty(), "differ from Trivy's goldens: {failed:?}");
}
