//! Issue 14: "OS advisories have no severity, so they never trip a gate". The eight Debian 11
//! OpenSSL/zlib/gzip DSAs of the shared data carry no severity in OSV; with the shared NVD and CVE
//! JSON 5 records imported beside them, each takes the highest severity among the CVEs it fixes
//! (`upstream`), says which CVE and source it came from, with the vector; a DSA whose CVEs have no
//! rating in the database stays UNKNOWN and says so.

use std::path::{Path, PathBuf};

use moat_model::{Finding, Inventory, OsRelease, Package, PackageKind, Severity, SourcePackage};
use moat_vulndb::Snapshot;

fn shared() -> Option<PathBuf> {
    let p = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"));
    if p.join("nvd/nvd").is_dir() && p.join("osv/Debian").is_dir() {
        Some(p)
    } else {
        eprintln!("SKIPPED: ../shared/data/nvd or ../shared/data/osv/Debian is missing");
        None
    }
}

const DSAS: &[&str] = &[
    "DSA-4963-1",
    "DSA-5103-1",
    "DSA-5111-1",
    "DSA-5122-1",
    "DSA-5139-1",
    "DSA-5169-1",
    "DSA-5218-1",
    "DSA-5343-1",
];

/// The eight DSAs, copied into `dir/osv`.
fn osv_tree(data: &Path, dir: &Path) -> PathBuf {
    let out = dir.join("osv/Debian");
    std::fs::create_dir_all(&out).expect("mkdir");
    for id in DSAS {
        std::fs::copy(
            data.join(format!("osv/Debian/{id}.json")),
            out.join(format!("{id}.json")),
        )
        .expect("copy record");
    }
    dir.join("osv")
}

fn deb(name: &str, source: &str, version: &str) -> Package {
    let purl = format!(
        "pkg:deb/debian/{name}@{}?distro=debian-11",
        version.replace(':', "%3A").replace('+', "%2B")
    );
    let mut p = moat_vulndb::ecosystem::package_from_purl(purl.parse().expect("purl"), None, None);
    p.kind = PackageKind::Deb;
    p.source = Some(SourcePackage {
        name: source.into(),
        version: version.into(),
    });
    p.path = Some("var/lib/dpkg/status".into());
    p
}

/// An old Debian 11 system: OpenSSL 1.1.1k-1, zlib 1.2.11.dfsg-2, gzip 1.10-4.
fn inventory() -> Inventory {
    let mut inv: Inventory = serde_json::from_value(serde_json::json!({
        "target": {"name": "old-openssl", "kind": "dir"},
        "packages": []
    }))
    .expect("inventory");
    inv.os = Some(OsRelease {
        id: "debian".into(),
        version_id: Some("11".into()),
        version_codename: Some("bullseye".into()),
        pretty_name: None,
    });
    inv.packages = vec![
        deb("libssl1.1", "openssl", "1.1.1k-1"),
        deb("zlib1g", "zlib", "1:1.2.11.dfsg-2"),
        deb("gzip", "gzip", "1.10-4"),
    ];
    inv
}

fn by_record<'a>(fs: &'a [Finding], dsa: &str) -> &'a Finding {
    fs.iter()
        .find(|f| {
            f.vulnerability
                .as_ref()
                .is_some_and(|v| v.records.iter().any(|r| r.id == dsa))
        })
        .unwrap_or_else(|| panic!("{dsa} not found"))
}

#[test]
fn debian_advisories_take_the_highest_nvd_severity_of_their_cves() {
    let Some(data) = shared() else { return };
    let d = tempfile::tempdir().expect("tmp");
    let osv = osv_tree(&data, d.path());
    let db = d.path().join("db");

    // OSV alone: what was seen — eight findings, all UNKNOWN, none trips --fail-on high.
    moat_vulndb::update::import_paths(&db, &[osv.as_path()], true).expect("import osv");
    let snap = Snapshot::open(&db).expect("open");
    let before = moat_vulndb::scan(&snap, &inventory())
        .expect("scan")
        .findings;
    assert_eq!(before.len(), 8, "{before:#?}");
    assert!(before.iter().all(|f| f.severity == Severity::Unknown));
    let unknown = by_record(&before, "DSA-5103-1");
    let r = unknown
        .vulnerability
        .as_ref()
        .and_then(|v| v.rating.as_ref())
        .expect("rating");
    assert_eq!(r.source, "none");
    assert!(r.note.contains("CVE-2022-0778"), "{}", r.note);
    drop(snap);

    // The NVD and CVE JSON 5 records, imported from the shared folder as it is (README, TSVs beside).
    let (meta, warnings) =
        moat_vulndb::update::import_paths(&db, &[data.join("nvd").as_path()], false)
            .expect("import nvd");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(meta.rated_cves, 40);
    // The OSV records are still all there: the ratings are not records.
    assert_eq!(meta.records, 8);
    let snap = Snapshot::open(&db).expect("open");
    let after = moat_vulndb::scan(&snap, &inventory())
        .expect("scan")
        .findings;
    assert_eq!(after.len(), 8);

    // DSA-5103-1 fixes CVE-2021-4160 (NVD 5.9 MEDIUM) and CVE-2022-0778 (NVD 7.5 HIGH): HIGH, from
    // NVD's vector of CVE-2022-0778, shown first as the finding's id with the DSA beside it.
    let f = by_record(&after, "DSA-5103-1");
    assert_eq!(f.severity, Severity::High);
    assert_eq!(f.id, "CVE-2022-0778");
    assert!(
        f.aliases.iter().any(|a| a == "DSA-5103-1"),
        "{:?}",
        f.aliases
    );
    let v = f.vulnerability.as_ref().expect("vuln");
    let r = v.rating.as_ref().expect("rating");
    assert_eq!(r.source, "nvd");
    assert_eq!(r.record, "CVE-2022-0778");
    assert_eq!(r.provider.as_deref(), Some("nvd@nist.gov"));
    assert_eq!(
        r.vector.as_deref(),
        Some("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H")
    );
    assert_eq!(r.score, Some(7.5));
    assert!(
        r.note.contains("CVE-2021-4160") && r.note.contains("CVE-2022-0778"),
        "says which CVEs were weighed: {}",
        r.note
    );
    assert_eq!(v.severity_source.as_deref(), Some("nvd"));
    assert!(v.cvss.iter().any(|c| c.score == 7.5));

    // DSA-5111-1 fixes CVE-2018-25032, which the sample does not hold: still UNKNOWN, and it says so.
    let f = by_record(&after, "DSA-5111-1");
    assert_eq!(f.severity, Severity::Unknown);
    assert_eq!(f.id, "CVE-2018-25032");
    let r = f
        .vulnerability
        .as_ref()
        .and_then(|v| v.rating.as_ref())
        .expect("rating");
    assert_eq!(r.source, "none");
    assert!(r.note.contains("CVE-2018-25032"), "{}", r.note);

    // Every other DSA is rated now, and the gate at HIGH trips on this system.
    for f in &after {
        let r = f
            .vulnerability
            .as_ref()
            .and_then(|v| v.rating.as_ref())
            .expect("rating");
        if r.source != "none" {
            assert_eq!(r.source, "nvd", "{}: {r:?}", f.id);
            assert!(r.vector.is_some() && r.score.is_some(), "{}: {r:?}", f.id);
        }
    }
    assert_eq!(
        after
            .iter()
            .filter(|f| f.severity == Severity::Unknown)
            .count(),
        1
    );
    assert!(
        after
            .iter()
            .filter(|f| f.severity >= Severity::High)
            .count()
            >= 4,
        "{:?}",
        after
            .iter()
            .map(|f| (&f.id, f.severity))
            .collect::<Vec<_>>()
    );
    // Remediation: one version of openssl clears all five of its DSAs.
    let ssl: Vec<&Finding> = after
        .iter()
        .filter(|f| f.package.as_ref().is_some_and(|p| p.name == "libssl1.1"))
        .collect();
    assert_eq!(ssl.len(), 5);
    for f in &ssl {
        assert_eq!(
            f.vulnerability
                .as_ref()
                .and_then(|v| v.remediation.as_deref()),
            Some("1.1.1n-0+deb11u4"),
            "{}",
            f.id
        );
    }
}

#[test]
fn cve5_ratings_serve_when_nvd_has_none() {
    let Some(data) = shared() else { return };
    let d = tempfile::tempdir().expect("tmp");
    let osv = osv_tree(&data, d.path());
    let db = d.path().join("db");
    // Only the CVE list: the CNA's words and CISA's ADP vectors.
    moat_vulndb::update::import_paths(&db, &[osv.as_path(), data.join("nvd/cve5").as_path()], true)
        .expect("import");
    let snap = Snapshot::open(&db).expect("open");
    let fs = moat_vulndb::scan(&snap, &inventory())
        .expect("scan")
        .findings;
    // DSA-5139-1 fixes CVE-2022-1292: OpenSSL (the CNA) says Moderate in words, CISA's ADP gives a
    // CVSS 3.1 vector of 9.8: the vector wins (a rating with a vector beats words).
    let f = by_record(&fs, "DSA-5139-1");
    let r = f
        .vulnerability
        .as_ref()
        .and_then(|v| v.rating.as_ref())
        .expect("rating");
    assert_eq!(r.source, "adp");
    assert_eq!(r.provider.as_deref(), Some("CISA-ADP"));
    assert_eq!(f.severity, Severity::Critical);
    // DSA-5103-1: CVE-2022-0778 is rated High by the CNA in words only, no vector anywhere in CVE 5.
    let f = by_record(&fs, "DSA-5103-1");
    let r = f
        .vulnerability
        .as_ref()
        .and_then(|v| v.rating.as_ref())
        .expect("rating");
    assert_eq!((r.source.as_str(), f.severity), ("cna", Severity::High));
    assert_eq!(r.provider.as_deref(), Some("openssl"));
    assert!(r.vector.is_none());
}
