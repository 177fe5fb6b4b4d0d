//! CycloneDX and SPDX output of a real Debian root filesystem: valid against the official schemas,
//! byte-identical across runs, and read back by `read_sbom` to the same packages.

use std::collections::BTreeSet;
use std::path::PathBuf;

use moat_image::{OpenOptions, Target};
use moat_model::{
    Cvss, Finding, FindingKind, Inventory, MatchReason, PackageRef, Severity, Vulnerability,
};
use moat_sbom::format::{self, Format, WriteOptions};
use serde_json::Value;

fn shared() -> PathBuf {
    std::env::var_os("MOAT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")))
}

fn rootfs(suite: &str) -> Option<PathBuf> {
    let p = PathBuf::from(std::env::var("HOME").ok()?)
        .join(".cache/moat-fixtures")
        .join(suite)
        .join("rootfs");
    if p.join("var/lib/dpkg/status").is_file() {
        Some(p)
    } else {
        eprintln!(
            "SKIPPED: {} missing (run ../shared/scripts/debian-image.sh {suite})",
            p.display()
        );
        None
    }
}

fn load(path: &PathBuf) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("read schema")).expect("schema JSON")
}

fn cyclonedx_validator() -> Option<jsonschema::Validator> {
    let dir = shared().join("data/schemas/cyclonedx");
    if !dir.is_dir() {
        eprintln!("SKIPPED: {} missing", dir.display());
        return None;
    }
    let mut opts = jsonschema::options().should_validate_formats(true);
    for (uri, file) in [
        (
            "http://cyclonedx.org/schema/spdx.schema.json",
            "spdx.schema.json",
        ),
        (
            "http://cyclonedx.org/schema/jsf-0.82.schema.json",
            "jsf-0.82.schema.json",
        ),
    ] {
        let res = jsonschema::Resource::from_contents(load(&dir.join(file))).expect("resource");
        opts = opts.with_resource(uri, res);
    }
    Some(
        opts.build(&load(&dir.join("bom-1.6.schema.json")))
            .expect("CycloneDX schema compiles"),
    )
}

fn spdx_validator() -> Option<jsonschema::Validator> {
    let p = shared().join("data/schemas/spdx/spdx-2.3/spdx-schema.json");
    if !p.is_file() {
        eprintln!("SKIPPED: {} missing", p.display());
        return None;
    }
    Some(
        jsonschema::options()
            .should_validate_formats(true)
            .build(&load(&p))
            .expect("SPDX schema compiles"),
    )
}

fn assert_valid(v: &jsonschema::Validator, doc: &str, what: &str) {
    let value: Value = serde_json::from_str(doc).expect("output is JSON");
    let errors: Vec<String> = v
        .iter_errors(&value)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .take(10)
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not validate:\n{}",
        errors.join("\n")
    );
}

fn inventory(root: &std::path::Path) -> Inventory {
    moat_sbom::sbom_of(&Target::Dir(root.to_path_buf()), &OpenOptions::default())
        .expect("catalog rootfs")
}

fn nva(inv: &Inventory) -> BTreeSet<(String, String, String)> {
    inv.packages
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                p.version.clone(),
                p.arch.clone().unwrap_or_default(),
            )
        })
        .collect()
}

fn finding(inv: &Inventory) -> Finding {
    let p = inv
        .packages
        .iter()
        .find(|p| p.name == "libc6")
        .expect("libc6 installed");
    let mut f = Finding::new(
        "CVE-2024-2961",
        FindingKind::Vulnerability,
        Severity::High,
        "glibc iconv overflow",
    );
    f.package = Some(PackageRef {
        name: p.name.clone(),
        version: p.version.clone(),
        purl: p.purl.clone(),
    });
    f.references = vec!["https://security-tracker.debian.org/tracker/CVE-2024-2961".into()];
    f.aliases = vec!["DSA-5678-1".into()];
    f.vulnerability = Some(Vulnerability {
        installed_version: p.version.clone(),
        ecosystem: "Debian:12".into(),
        fixed_versions: vec!["2.36-9+deb12u7".into()],
        cvss: vec![Cvss {
            version: "CVSS_V3".into(),
            vector: "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H".into(),
            score: 8.1,
        }],
        severity_source: Some("cvss-v3".into()),
        published: Some("2024-04-17T18:15:15Z".into()),
        modified: None,
        matched: MatchReason {
            ecosystem: "Debian:12".into(),
            queried_name: "glibc".into(),
            by: "range".into(),
            entry: "ECOSYSTEM introduced=0 fixed=2.36-9+deb12u7".into(),
            comparison: format!("{} < 2.36-9+deb12u7", p.version),
        },
        records: Vec::new(),
        ..Default::default()
    });
    f
}

#[test]
fn cyclonedx_and_spdx_validate_are_deterministic_and_read_back() {
    let Some(root) = rootfs("bookworm") else {
        return;
    };
    let (Some(cdx_v), Some(spdx_v)) = (cyclonedx_validator(), spdx_validator()) else {
        return;
    };
    let a = inventory(&root);
    let b = inventory(&root);
    assert_eq!(
        a.packages.len(),
        88,
        "bookworm minbase has 88 installed packages"
    );
    let opts = WriteOptions::default();
    for fmt in [Format::CycloneDx, Format::Spdx, Format::Json, Format::Table] {
        assert_eq!(
            format::write(&a, fmt, &opts),
            format::write(&b, fmt, &opts),
            "{fmt:?} output differs between two runs"
        );
    }
    let cdx = format::write(&a, Format::CycloneDx, &opts);
    assert_valid(&cdx_v, &cdx, "CycloneDX");
    let spdx = format::write(&a, Format::Spdx, &opts);
    assert_valid(&spdx_v, &spdx, "SPDX");
    // Asked-for timestamps still validate.
    let stamped = WriteOptions {
        timestamp: Some(format::now_rfc3339()),
    };
    assert_valid(
        &cdx_v,
        &format::write(&a, Format::CycloneDx, &stamped),
        "CycloneDX with timestamp",
    );
    assert_valid(
        &spdx_v,
        &format::write(&a, Format::Spdx, &stamped),
        "SPDX with timestamp",
    );
    assert!(!cdx.contains("\"timestamp\""), "no timestamp unless asked");

    // With vulnerabilities (moat scan --format cyclonedx).
    let with_vulns = format::cyclonedx::to_string(&a, &[finding(&a)], &opts);
    assert_valid(&cdx_v, &with_vulns, "CycloneDX with vulnerabilities");
    let v: Value = serde_json::from_str(&with_vulns).expect("json");
    let vuln = &v["vulnerabilities"][0];
    let affected = vuln["affects"][0]["ref"].as_str().expect("affects ref");
    assert!(
        v["components"]
            .as_array()
            .expect("components")
            .iter()
            .any(|c| c["bom-ref"] == affected)
    );
    assert_eq!(vuln["recommendation"], "Upgrade libc6 to 2.36-9+deb12u7");

    // Read back: the same packages, purls, sources and licences.
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in [("bom.cdx.json", &cdx), ("bom.spdx.json", &spdx)] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        let back = format::read_sbom(&path).expect("read back");
        assert_eq!(
            nva(&back),
            nva(&a),
            "{name}: packages differ after reading back"
        );
        let purls = |i: &Inventory| {
            i.packages
                .iter()
                .map(|p| p.purl.to_string())
                .collect::<BTreeSet<_>>()
        };
        assert_eq!(purls(&back), purls(&a), "{name}: purls differ");
        let srcs = |i: &Inventory| {
            i.packages
                .iter()
                .map(|p| (p.name.clone(), p.source.clone(), p.licenses.clone()))
                .collect::<BTreeSet<_>>()
        };
        assert_eq!(
            srcs(&back),
            srcs(&a),
            "{name}: source packages or licences differ"
        );
        assert_eq!(
            back.os.as_ref().map(|o| (&o.id, &o.version_id)),
            a.os.as_ref().map(|o| (&o.id, &o.version_id))
        );
        // sbom_of handles sbom: targets the same way.
        let via = moat_sbom::sbom_of(&Target::Sbom(path.clone()), &OpenOptions::default())
            .expect("sbom target");
        assert_eq!(nva(&via), nva(&a));
    }
}

#[test]
fn reads_the_shared_cyclonedx_samples() {
    for version in ["1.5", "1.6"] {
        let dir = shared()
            .join("data/schemas/cyclonedx/test-resources")
            .join(version);
        let Ok(rd) = std::fs::read_dir(&dir) else {
            eprintln!("SKIPPED: {} missing", dir.display());
            return;
        };
        let (mut read, mut with_purls, mut refused) = (0, 0, 0);
        for e in rd.flatten() {
            let p = e.path();
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !name.ends_with(".json") {
                continue;
            }
            // Every sample, valid or not, is read or refused with an error naming the file; never a panic.
            match format::read_sbom(&p) {
                Ok(inv) if name.starts_with("valid-") => {
                    read += 1;
                    if !inv.packages.is_empty() {
                        with_purls += 1;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    refused += 1;
                    assert!(e.to_string().contains(&name), "{e}");
                }
            }
        }
        eprintln!(
            "CycloneDX {version}: {read} valid samples read, {with_purls} with packages, {refused} refused"
        );
        assert!(read > 10, "only {read} CycloneDX {version} samples read");
        assert!(
            with_purls > 0,
            "no CycloneDX {version} sample yielded a package"
        );
    }
}

/// The SPDX project's own 2.3 example: its one package with a purl is read, the others are named in
/// warnings (they cannot be matched against advisories).
#[test]
fn reads_the_spdx_example() {
    let p = shared().join("data/schemas/spdx/spdx-2.3.1/examples/SPDXJSONExample-v2.3.spdx.json");
    if !p.is_file() {
        eprintln!("SKIPPED: {} missing", p.display());
        return;
    }
    let inv = format::read_sbom(&p).expect("reads");
    let got: Vec<String> = inv.packages.iter().map(|p| p.purl.to_string()).collect();
    assert_eq!(got, vec!["pkg:maven/org.apache.jena/apache-jena@3.12.0"]);
    assert_eq!(inv.packages[0].name, "org.apache.jena:apache-jena");
    assert!(
        inv.warnings
            .iter()
            .any(|w| w.contains("\"glibc\" has no purl")),
        "{:?}",
        inv.warnings
    );
}

/// Alpine records SPDX expressions: they are written as SPDX (not as opaque names) in both formats,
/// both still validate, and reading them back gives the same licences.
#[test]
fn alpine_spdx_licences_validate_and_read_back() {
    let installed =
        shared().join("data/golden/osv-scalibr/extractor/filesystem/os/apk/testdata/installed");
    if !installed.is_file() {
        eprintln!("SKIPPED: {} missing", installed.display());
        return;
    }
    let (Some(cdx_v), Some(spdx_v)) = (cyclonedx_validator(), spdx_validator()) else {
        return;
    };
    let root = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(root.path().join("etc")).expect("mkdir");
    std::fs::create_dir_all(root.path().join("lib/apk/db")).expect("mkdir");
    std::fs::write(
        root.path().join("etc/os-release"),
        "ID=alpine\nVERSION_ID=3.18.0\n",
    )
    .expect("write");
    std::fs::copy(&installed, root.path().join("lib/apk/db/installed")).expect("copy");
    let inv = inventory(root.path());
    assert_eq!(inv.packages.len(), 15);
    let opts = WriteOptions::default();
    let cdx = format::write(&inv, Format::CycloneDx, &opts);
    let spdx = format::write(&inv, Format::Spdx, &opts);
    assert_valid(&cdx_v, &cdx, "CycloneDX (Alpine)");
    assert_valid(&spdx_v, &spdx, "SPDX (Alpine)");
    assert!(cdx.contains("\"expression\": \"MIT AND BSD-2-Clause AND GPL-2.0-or-later\""));
    assert!(spdx.contains("\"licenseDeclared\": \"(MPL-2.0 AND MIT)\""));
    assert!(
        !spdx.contains("LicenseRef-"),
        "every Alpine licence is valid SPDX"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in [("a.cdx.json", &cdx), ("a.spdx.json", &spdx)] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        let back = format::read_sbom(&path).expect("read back");
        let lic = |i: &Inventory| {
            i.packages
                .iter()
                .map(|p| (p.name.clone(), p.licenses.clone()))
                .collect::<BTreeSet<_>>()
        };
        assert_eq!(lic(&back), lic(&inv), "{name}");
    }
}
