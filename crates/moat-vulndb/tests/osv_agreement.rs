//! Matcher agreement with OSV.dev: the recorded /v1/querybatch answers in
//! golden/osv-scanner/querybatch_expectations.json, restricted to advisory ids present in data/osv.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use moat_model::Purl;
use moat_vulndb::Snapshot;
use moat_vulndb::ecosystem::{package_from_purl, query_for};
use moat_vulndb::matcher::first_match;

fn q(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

/// The purl a case is given as, exactly as score.py builds it.
fn purl(e: &str, n: &str, v: &str) -> Option<String> {
    if let Some(r) = e.strip_prefix("Debian:") {
        return Some(format!(
            "pkg:deb/debian/{}@{}?distro=debian-{r}",
            q(n),
            q(v)
        ));
    }
    if let Some(r) = e.strip_prefix("Alpine:v") {
        return Some(format!("pkg:apk/alpine/{}@{}?distro={r}.0", q(n), q(v)));
    }
    let path = |n: &str| n.split('/').map(q).collect::<Vec<_>>().join("/");
    match e {
        "PyPI" => Some(format!("pkg:pypi/{}@{}", q(n), q(v))),
        "npm" => Some(format!("pkg:npm/{}@{}", path(n), q(v))),
        "crates.io" => Some(format!("pkg:cargo/{}@{}", q(n), q(v))),
        "Go" => Some(format!(
            "pkg:golang/{}@{}",
            path(n),
            q(&if v.starts_with('v') {
                v.to_string()
            } else {
                format!("v{v}")
            })
        )),
        "Maven" => {
            let (g, a) = n.split_once(':')?;
            Some(format!("pkg:maven/{}/{}@{}", q(g), q(a), q(v)))
        }
        _ => None,
    }
}

#[test]
fn agrees_with_osv_dev() {
    let Some(shared) = common::shared() else {
        return;
    };
    let Some(db) = common::full_db() else { return };
    let snap = Snapshot::open(&db).expect("open");
    let mut ids = BTreeSet::new();
    for e in std::fs::read_dir(shared.join("data/osv"))
        .expect("osv dir")
        .flatten()
    {
        if let Ok(rd) = std::fs::read_dir(e.path()) {
            for f in rd.flatten() {
                if let Some(n) = f.file_name().to_str().and_then(|n| n.strip_suffix(".json")) {
                    ids.insert(n.to_string());
                }
            }
        }
    }
    let text = std::fs::read_to_string(
        shared.join("data/golden/osv-scanner/querybatch_expectations.json"),
    )
    .expect("read");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    let cases = v["cases"].as_array().expect("cases");
    // The answers were recorded at one time; a record first published or changed after the newest
    // record they mention may say something OSV.dev had not yet said. Such ids are left out of both sides.
    let modified = |id: &str| {
        snap.by_id(id)
            .ok()
            .and_then(|r| r.into_iter().find(|r| r.id == id))
            .and_then(|r| r.modified.or(r.published))
    };
    let mut cutoff = String::new();
    for c in cases {
        for i in c["vulns"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str())
        {
            if let Some(p) = snap
                .by_id(i)
                .ok()
                .and_then(|r| r.into_iter().find(|r| r.id == i))
                .and_then(|r| r.published)
                && p > cutoff
            {
                cutoff = p;
            }
        }
    }
    let mut later = BTreeSet::new();
    let (mut total, mut agree) = (0usize, 0usize);
    let mut per_eco: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut bad = Vec::new();
    let mut seen = BTreeSet::new();
    for c in cases {
        let (Some(e), Some(n), Some(ver)) = (
            c["ecosystem"].as_str(),
            c["name"].as_str(),
            c["version"].as_str(),
        ) else {
            continue;
        };
        let Some(p) = purl(e, n, ver) else { continue };
        if !seen.insert(p.clone()) {
            continue;
        }
        let purl: Purl = p.parse().expect("purl");
        let pkg = package_from_purl(purl, Some(n), Some(ver));
        let Ok(query) = query_for(&pkg, None) else {
            panic!("no query for {p}")
        };
        let want: BTreeSet<String> = c["vulns"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str())
            .filter(|i| ids.contains(*i))
            .map(str::to_string)
            .collect();
        let got: BTreeSet<String> = snap
            .lookup(&query.ecosystem, &query.name)
            .expect("lookup")
            .iter()
            .filter(|r| first_match(r, &query).is_some())
            .map(|r| r.id.clone())
            .filter(|i| ids.contains(i))
            .filter(|i| {
                let newer = want.contains(i) || modified(i).is_none_or(|m| m <= cutoff);
                if !newer {
                    later.insert(i.clone());
                }
                newer
            })
            .collect();
        total += 1;
        let fam = e.split(':').next().unwrap_or(e).to_string();
        let s = per_eco.entry(fam).or_default();
        s.0 += 1;
        if got == want {
            agree += 1;
            s.1 += 1;
        } else {
            bad.push(format!(
                "{p}: missing {:?} extra {:?}",
                want.difference(&got).collect::<Vec<_>>(),
                got.difference(&want).collect::<Vec<_>>()
            ));
        }
    }
    let rate = agree as f64 / total as f64;
    eprintln!(
        "OSV.dev agreement: {agree}/{total} queries = {rate:.4} (answers recorded by {cutoff}; {} newer records left out: {later:?})",
        later.len()
    );
    for (e, (t, a)) in &per_eco {
        eprintln!("  {e}: {a}/{t}");
    }
    for b in bad.iter().take(40) {
        eprintln!("  DISAGREE {b}");
    }
    let go = per_eco.get("Go").copied().unwrap_or_default();
    assert_eq!(go.0, go.1, "Go must agree exactly");
    assert!(rate >= 0.99, "agreement {rate:.4} < 0.99");
}
