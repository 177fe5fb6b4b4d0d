//! Trivy's OS-package integration goldens: its fixture vulnerability DB (trivy-db buckets) converted to
//! OSV records here, the golden reports' packages as the inventory; moat must report the same
//! (package, vulnerability, fixed version) set, including `--ignore-unfixed` variants.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use moat_model::{Inventory, OsRelease, Purl, SourcePackage};
use moat_vulndb::ecosystem::package_from_purl;
use moat_vulndb::osv::{Affected, Event, PackageId, Range, Record};
use serde_json::Value;

/// Source packages of the binaries in these goldens (the images are not in the fixture, so their
/// dpkg/apk databases cannot say it; these are the distributions' own source names).
const SOURCES: &[(&str, &str)] = &[
    ("e2fslibs", "e2fsprogs"),
    ("libcomerr2", "e2fsprogs"),
    ("libss2", "e2fsprogs"),
    ("libcom-err2", "e2fsprogs"),
    ("libext2fs2", "e2fsprogs"),
    ("libidn2-0", "libidn2"),
    ("libssl1.1", "openssl"),
    ("libcrypto1.1", "openssl"),
    ("musl-utils", "musl"),
];

/// trivy-db bucket → OSV ecosystem.
fn ecosystem(bucket: &str) -> Option<String> {
    let (d, v) = bucket.split_once(' ')?;
    match d {
        "debian" => Some(format!("Debian:{v}")),
        "alpine" if v != "edge" => Some(format!("Alpine:v{v}")),
        "ubuntu" => Some(format!("Ubuntu:{v}")),
        _ => None,
    }
}

fn records(shared: &std::path::Path) -> Vec<Record> {
    let mut by_id: BTreeMap<String, Record> = BTreeMap::new();
    for f in ["debian.yaml", "alpine.yaml", "ubuntu.yaml"] {
        let text = std::fs::read_to_string(
            shared
                .join("data/golden/trivy/integration/testdata/fixtures/db")
                .join(f),
        )
        .expect("fixture");
        let v: Value = serde_saphyr::from_str(&text).expect("yaml");
        for dist in v.as_array().expect("buckets") {
            let Some(eco) = ecosystem(dist["bucket"].as_str().expect("bucket")) else {
                continue;
            };
            for pkg in dist["pairs"].as_array().expect("pairs") {
                let name = pkg["bucket"].as_str().expect("pkg");
                for adv in pkg["pairs"].as_array().expect("advisories") {
                    let id = adv["key"].as_str().expect("id");
                    let mut events = vec![Event {
                        introduced: Some("0".into()),
                        ..Event::default()
                    }];
                    if let Some(fx) = adv["value"]["FixedVersion"].as_str() {
                        events.push(Event {
                            fixed: Some(fx.into()),
                            ..Event::default()
                        });
                    }
                    let r = by_id.entry(id.to_string()).or_insert_with(|| Record {
                        id: id.to_string(),
                        modified: None,
                        published: None,
                        withdrawn: None,
                        aliases: vec![],
                        upstream: vec![],
                        summary: None,
                        details: None,
                        severity: vec![],
                        affected: vec![],
                        references: vec![],
                        source_severity: None,
                    });
                    r.affected.push(Affected {
                        package: PackageId {
                            ecosystem: eco.clone(),
                            name: name.to_string(),
                            purl: None,
                        },
                        ranges: vec![Range {
                            kind: "ECOSYSTEM".into(),
                            events,
                        }],
                        versions: vec![],
                        severity: vec![],
                    });
                }
            }
        }
    }
    by_id.into_values().collect()
}

#[test]
fn os_package_goldens_give_the_same_ids() {
    let Some(shared) = common::shared() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tmp");
    moat_vulndb::store::write(dir.path(), records(&shared), vec![]).expect("write");
    let snap = moat_vulndb::Snapshot::open(dir.path()).expect("open");
    let sources: BTreeMap<&str, &str> = SOURCES.iter().copied().collect();
    let mut cases = 0;
    for (case, unfixed_only) in [
        ("debian-buster", false),
        ("debian-buster-ignore-unfixed", true),
        ("debian-stretch", false),
        ("distroless-base", false),
        ("alpine-310", false),
        ("alpine-39", false),
        ("ubuntu-1804", false),
        ("ubuntu-1804-ignore-unfixed", true),
    ] {
        let path = shared.join(format!(
            "data/golden/trivy/integration/testdata/{case}.json.golden"
        ));
        let g: Value =
            serde_json::from_slice(&std::fs::read(&path).expect("golden")).expect("json");
        let mut want = BTreeSet::new();
        let mut inv = Inventory::default();
        let os = &g["Metadata"]["OS"];
        inv.os = Some(OsRelease {
            id: os["Family"].as_str().expect("family").to_string(),
            version_id: os["Name"].as_str().map(str::to_string),
            ..OsRelease::default()
        });
        let mut seen = BTreeSet::new();
        for r in g["Results"].as_array().expect("results") {
            if r["Class"] != "os-pkgs" {
                continue;
            }
            for v in r["Vulnerabilities"].as_array().into_iter().flatten() {
                let name = v["PkgName"].as_str().expect("name");
                let fixed = v["FixedVersion"].as_str().unwrap_or("").to_string();
                want.insert((
                    name.to_string(),
                    v["VulnerabilityID"].as_str().expect("id").to_string(),
                    fixed,
                ));
                let purl: Purl = v["PkgIdentifier"]["PURL"]
                    .as_str()
                    .expect("purl")
                    .parse()
                    .expect("purl");
                if seen.insert(purl.to_string()) {
                    let mut p = package_from_purl(purl, None, None);
                    if let Some(src) = sources.get(name) {
                        p.source = Some(SourcePackage {
                            name: src.to_string(),
                            version: p.version.clone(),
                        });
                    }
                    inv.packages.push(p);
                }
            }
        }
        let result = moat_vulndb::scan(&snap, &inv).expect("scan");
        let got: BTreeSet<(String, String, String)> = result
            .findings
            .iter()
            .filter(|f| {
                !unfixed_only
                    || f.vulnerability
                        .as_ref()
                        .is_some_and(|v| !v.fixed_versions.is_empty())
            })
            .map(|f| {
                let v = f.vulnerability.as_ref().expect("vulnerability");
                (
                    f.package.as_ref().expect("pkg").name.clone(),
                    f.id.clone(),
                    v.fixed_versions.first().cloned().unwrap_or_default(),
                )
            })
            .collect();
        eprintln!("{case}: trivy {} findings, moat {}", want.len(), got.len());
        assert_eq!(got, want, "{case}");
        cases += 1;
    }
    assert_eq!(cases, 8);
}
