//! `.moatignore` and OpenVEX semantics on findings.

use moat_model::{
    AdvisoryRecord, Finding, FindingKind, MatchReason, PackageRef, Severity, Vulnerability,
};
use moat_vulndb::ignore::IgnoreFile;
use moat_vulndb::vex::VexDocument;

fn finding(id: &str, alias: &str, purl: &str) -> Finding {
    let purl: moat_model::Purl = purl.parse().expect("purl");
    let mut f = Finding::new(id, FindingKind::Vulnerability, Severity::High, "t");
    f.aliases = vec![alias.to_string()];
    f.package = Some(PackageRef {
        name: purl.name.clone(),
        version: purl.version.clone().unwrap_or_default(),
        purl,
    });
    let matched = MatchReason {
        ecosystem: "Debian:11".into(),
        queried_name: "openssl".into(),
        by: "range".into(),
        entry: String::new(),
        comparison: String::new(),
    };
    f.vulnerability = Some(Vulnerability {
        installed_version: "1".into(),
        ecosystem: "Debian:11".into(),
        fixed_versions: vec![],
        cvss: vec![],
        severity_source: None,
        published: None,
        modified: None,
        matched,
        records: vec![AdvisoryRecord {
            id: format!("DSA-{id}"),
            source: "Debian:11".into(),
            fixed_versions: vec![],
            matched: None,
        }],
        ..Default::default()
    });
    f
}

#[test]
fn ignore_entries_match_by_any_id_package_and_purl_and_expire() {
    let ig = IgnoreFile::parse(
        "ignore:\n- id: DSA-CVE-1\n  package: openssl\n  reason: source-level accept\n- id: CVE-2\n  purl: pkg:deb/debian/libssl3\n  reason: r\n  expires: 2020-01-01\n- id: CVE-3\n  purl: pkg:deb/debian/other\n",
        "t.yaml",
    )
    .expect("parse");
    let mut fs = vec![
        finding("CVE-1", "X", "pkg:deb/debian/libssl3@1?distro=debian-11"),
        finding("CVE-2", "Y", "pkg:deb/debian/libssl3@1?distro=debian-11"),
        finding("CVE-3", "Z", "pkg:deb/debian/libssl3@1?distro=debian-11"),
    ];
    let w = ig.apply(&mut fs, "2024-06-01");
    // Entry 1 matches through the record id and the source name the package was looked up by.
    assert!(
        fs[0]
            .suppressed
            .as_deref()
            .is_some_and(|s| s.contains("source-level accept"))
    );
    // Entry 2 expired: still reported, and said so.
    assert!(fs[1].suppressed.is_none());
    assert_eq!(w.len(), 1);
    assert!(w[0].contains("expired on 2020-01-01"), "{w:?}");
    // Entry 3 names another package.
    assert!(fs[2].suppressed.is_none());
    // Expiry is inclusive of the day before only.
    let mut fs = vec![finding("CVE-2", "Y", "pkg:deb/debian/libssl3@1")];
    assert!(ig.apply(&mut fs, "2019-12-31").is_empty());
    assert!(fs[0].suppressed.is_some());
    for bad in [
        "- id: X\n  expires: 2024-13-01\n",
        "- id: \"\"\n",
        "- id: X\n  purl: nope\n",
        "- id: X\n  colour: red\n",
        "{{",
    ] {
        let e = IgnoreFile::parse(bad, "bad.yaml").expect_err(bad);
        assert!(e.to_string().starts_with("bad.yaml"), "{e}");
    }
}

#[test]
fn vex_not_affected_and_fixed_suppress_affected_does_not() {
    let doc = r#"{"@context":"https://openvex.dev/ns/v0.2.0","statements":[
      {"vulnerability":{"name":"CVE-1"},"products":[{"@id":"pkg:oci/app","subcomponents":[{"@id":"pkg:deb/debian/libssl3"}]}],"status":"not_affected","justification":"vulnerable_code_not_present"},
      {"vulnerability":{"name":"Y"},"products":[{"@id":"pkg:oci/app"}],"status":"fixed"},
      {"vulnerability":"CVE-3","products":["pkg:deb/debian/libssl3@1"],"status":"affected"}]}"#;
    let v = VexDocument::parse(doc, "v.json").expect("vex");
    let mut fs = vec![
        finding("CVE-1", "X", "pkg:deb/debian/libssl3@1"),
        finding("CVE-1", "X", "pkg:deb/debian/zlib1g@1"),
        finding("CVE-2", "Y", "pkg:deb/debian/zlib1g@1"),
        finding("CVE-3", "Z", "pkg:deb/debian/libssl3@1"),
    ];
    assert_eq!(v.apply(&mut fs), 2);
    assert!(
        fs[0].suppressed.as_deref().is_some_and(
            |s| s.contains("not_affected") && s.contains("vulnerable_code_not_present")
        )
    );
    assert!(fs[1].suppressed.is_none(), "other subcomponent");
    assert!(
        fs[2]
            .suppressed
            .as_deref()
            .is_some_and(|s| s.contains("fixed")),
        "alias, whole product"
    );
    assert!(fs[3].suppressed.is_none(), "affected changes nothing");
    for bad in [
        "{}",
        "[",
        r#"{"statements":[{"vulnerability":"X","status":"maybe"}]}"#,
        r#"{"statements":[{"status":"fixed"}]}"#,
    ] {
        let e = VexDocument::parse(bad, "bad.json").expect_err(bad);
        assert!(e.to_string().starts_with("bad.json"), "{e}");
    }
}
