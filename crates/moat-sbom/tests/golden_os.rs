//! OS catalogers against the peers' golden fixtures in ../shared/data/golden (trivy, osv-scalibr,
//! go-rpmdb): every dpkg, apk and rpm fixture gives its upstream expected package list.

use std::collections::BTreeSet;
use std::path::PathBuf;

use moat_model::{OsRelease, Package};
use moat_sbom::os::{apk, dpkg, rpm};
use serde_json::Value;

fn golden() -> Option<PathBuf> {
    let base = std::env::var_os("MOAT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")));
    let g = base.join("data/golden");
    if g.is_dir() {
        Some(g)
    } else {
        eprintln!("SKIPPED: {} missing", g.display());
        None
    }
}

fn json(p: PathBuf) -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
    )
    .expect("json")
}

fn s(v: &Value, k: &str) -> String {
    match &v[k] {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

#[test]
fn rpm_databases_match_go_rpmdb() {
    let Some(g) = golden() else { return };
    let lists = json(g.join("go-rpmdb/expected/rpmdb_lists.json"));
    let derived = json(g.join("go-rpmdb/expected/cbl-mariner-2.0_rpmdb.sqlite.derived.json"));
    for (file, expected) in [
        (
            "sle15-bci/Packages.db",
            lists["cases"]["SLE15WithNDB"].clone(),
        ),
        ("cbl-mariner-2.0/rpmdb.sqlite", derived["packages"].clone()),
    ] {
        let bytes = std::fs::read(g.join("go-rpmdb/pkg/testdata").join(file)).expect("fixture");
        let got = rpm::headers(&bytes).unwrap_or_else(|e| panic!("{file}: {e}"));
        let key = |n: &str, v: &str, r: &str, a: &str, src: &str, lic: &str| {
            (
                n.to_string(),
                v.to_string(),
                r.to_string(),
                a.to_string(),
                src.to_string(),
                lic.to_string(),
            )
        };
        let got: BTreeSet<_> = got
            .iter()
            .map(|h| {
                key(
                    &h.name,
                    &h.version,
                    &h.release,
                    &h.arch,
                    &h.source_rpm,
                    &h.license,
                )
            })
            .collect();
        let want: BTreeSet<_> = expected
            .as_array()
            .expect("list")
            .iter()
            .filter(|p| s(p, "Name") != "gpg-pubkey")
            .map(|p| {
                key(
                    &s(p, "Name"),
                    &s(p, "Version"),
                    &s(p, "Release"),
                    &s(p, "Arch"),
                    &s(p, "SourceRpm"),
                    &s(p, "License"),
                )
            })
            .collect();
        eprintln!("{file}: {} packages", got.len());
        assert_eq!(got, want, "{file}");
    }
    // Without os-release, the vendor names the purl namespace.
    for (file, ns) in [
        ("sle15-bci/Packages.db", "suse"),
        ("cbl-mariner-2.0/rpmdb.sqlite", "mariner"),
    ] {
        let bytes = std::fs::read(g.join("go-rpmdb/pkg/testdata").join(file)).expect("fixture");
        let hs = rpm::headers(&bytes).expect("reads");
        assert!(
            hs.iter()
                .all(|h| rpm::package(h, None).purl.namespace.as_deref() == Some(ns)),
            "{file}"
        );
    }
    // The Berkeley DB fixture: upstream asserts libuuid 2.32.1-42.el8_8 x86_64.
    let bytes = std::fs::read(g.join("go-rpmdb/pkg/testdata/libuuid/Packages")).expect("fixture");
    let got = rpm::headers(&bytes).expect("bdb");
    assert!(
        got.iter().any(|h| (
            h.name.as_str(),
            h.version.as_str(),
            h.release.as_str(),
            h.arch.as_str()
        ) == ("libuuid", "2.32.1", "42.el8_8", "x86_64")),
        "{got:?}"
    );
}

#[test]
fn scalibr_rpm_epoch_fixture() {
    let Some(g) = golden() else { return };
    let exp = json(g.join("osv-scalibr/expected/rpm_extractor.json"));
    let want: Vec<&Value> = exp["cases"]["custom_rpm"]
        .as_array()
        .expect("case")
        .iter()
        .filter(|p| s(p, "Location").contains("Packages_epoch"))
        .collect();
    assert_eq!(want.len(), 1);
    let bytes =
        std::fs::read(g.join("osv-scalibr/extractor/filesystem/os/rpm/testdata/Packages_epoch"))
            .expect("fixture");
    let got = rpm::headers(&bytes).expect("bdb");
    let os = OsRelease {
        id: "rhel".into(),
        version_id: Some("8.9".into()),
        ..Default::default()
    };
    let pkgs: Vec<Package> = got.iter().map(|h| rpm::package(h, Some(&os))).collect();
    assert_eq!(pkgs.len(), 1);
    let p = &pkgs[0];
    let w = want[0];
    assert_eq!(
        (
            p.name.clone(),
            p.version.clone(),
            p.arch.clone().unwrap_or_default()
        ),
        (
            s(w, "Name"),
            format!("{}:{}", s(w, "Epoch"), s(w, "Version")),
            s(w, "Architecture")
        )
    );
    assert_eq!(
        p.purl.to_string(),
        "pkg:rpm/redhat/hello@0.0.1-rls?arch=x86_64&distro=rhel-8.9&epoch=1"
    );
    // The empty and invalid fixtures are errors naming the problem, not panics or empty successes.
    for f in ["empty.sqlite", "invalid"] {
        let bytes = std::fs::read(
            g.join("osv-scalibr/extractor/filesystem/os/rpm/testdata")
                .join(f),
        )
        .expect("fixture");
        assert!(rpm::headers(&bytes).is_err(), "{f}");
    }
}

/// The sections of a txtar archive (`-- path --` lines), as trivy's dpkg fixtures are stored.
fn txtar(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.split_inclusive('\n') {
        let t = line.trim_end();
        if let Some(name) = t.strip_prefix("-- ").and_then(|r| r.strip_suffix(" --")) {
            out.push((name.to_string(), String::new()));
        } else if let Some((_, body)) = out.last_mut() {
            body.push_str(line);
        }
    }
    out
}

type Row = (String, String, String, String);

fn deb_rows(pkgs: &[Package]) -> BTreeSet<Row> {
    pkgs.iter()
        .map(|p| {
            let src = p
                .source
                .as_ref()
                .map(|s| format!("{} {}", s.name, s.version))
                .unwrap_or_default();
            (
                p.name.clone(),
                p.version.clone(),
                src,
                p.arch.clone().unwrap_or_default(),
            )
        })
        .collect()
}

#[test]
fn dpkg_matches_trivy_fixtures() {
    let Some(g) = golden() else { return };
    let exp = json(g.join("trivy/expected/dpkg_analyzer.json"));
    let dir = g.join("trivy/pkg/fanal/analyzer/pkg/dpkg/testdata");
    for (file, case) in [
        ("valid.txtar", "valid"),
        ("corrupsed.txtar", "corrupsed"),
        ("digest.txtar", "happy path with digests"),
        ("md5sums.txtar", "md5sums"),
        ("third-party.txtar", "third-party package"),
    ] {
        let text = std::fs::read_to_string(dir.join(file)).expect("fixture");
        let status = txtar(&text)
            .into_iter()
            .find(|(n, _)| n == "var/lib/dpkg/status")
            .map(|(_, b)| b)
            .expect("status section");
        let got = deb_rows(
            &dpkg::packages(&status, true, None, None).unwrap_or_else(|e| panic!("{file}: {e}")),
        );
        let want: BTreeSet<Row> = exp["cases"][case]
            .as_array()
            .expect("case")
            .iter()
            .map(|p| {
                // Trivy splits versions into epoch, version and release; its ID keeps the whole one.
                let id = s(p, "ID");
                let (name, version) = id
                    .rsplit_once('@')
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .expect("ID name@version");
                let mut sv = s(p, "SrcVersion");
                if !s(p, "SrcRelease").is_empty() {
                    sv = format!("{sv}-{}", s(p, "SrcRelease"));
                }
                if !s(p, "SrcEpoch").is_empty() {
                    sv = format!("{}:{sv}", s(p, "SrcEpoch"));
                }
                (
                    name,
                    version,
                    format!("{} {sv}", s(p, "SrcName")),
                    s(p, "Arch"),
                )
            })
            .collect();
        assert_eq!(got, want, "{file}");
        eprintln!("{file}: {} packages", got.len());
    }
}

#[test]
fn dpkg_and_opkg_match_scalibr_fixtures() {
    let Some(g) = golden() else { return };
    let exp = json(g.join("osv-scalibr/expected/dpkg_extractor.json"));
    let dir = g.join("osv-scalibr/extractor/filesystem/os/dpkg/testdata");
    for (files, case, status_required) in [
        (&["dpkg/valid"][..], "valid status file", true),
        (
            &["dpkg/noversion", "opkg/noversion"][..],
            "packages with no version set are skipped",
            true,
        ),
        (
            &["dpkg/nopackage", "opkg/nopackage"][..],
            "packages with no name set are skipped",
            true,
        ),
        (
            &["dpkg/statusfield", "opkg/statusfield"][..],
            "statusfield",
            true,
        ),
        (
            &["dpkg/status.d/foo"][..],
            "status.d file without Status field set should work",
            false,
        ),
        (
            &["dpkg/transitional_dummy"][..],
            "transitional dummy packages should be annotated",
            true,
        ),
        (
            &["dpkg/transitional_empty"][..],
            "transitional empty packages should be annotated",
            true,
        ),
        (&["opkg/valid"][..], "valid opkg status file", true),
        (&["opkg/trailingnewlines"][..], "newlines", true),
    ] {
        let mut got: Vec<(String, String)> = Vec::new();
        for f in files {
            let text = std::fs::read_to_string(dir.join(f)).expect("fixture");
            let pkgs = dpkg::packages(&text, status_required, None, None)
                .unwrap_or_else(|e| panic!("{f}: {e}"));
            got.extend(pkgs.into_iter().map(|p| (p.name, p.version)));
        }
        got.sort();
        let mut want: Vec<(String, String)> = exp["cases"][case]
            .as_array()
            .expect("case")
            .iter()
            .map(|p| (s(p, "Name"), s(p, "Version")))
            .collect();
        want.sort();
        assert_eq!(got, want, "{files:?} ({case})");
    }
    // The extracted expectations merge several upstream tests named "transitional packages should be
    // annotated" (dpkg, opkg, and one on another file): ours must all be among them.
    let case = &exp["cases"]["transitional packages should be annotated"];
    let want: BTreeSet<(String, String)> = case
        .as_array()
        .expect("case")
        .iter()
        .map(|p| (s(p, "Name"), s(p, "Version")))
        .collect();
    for f in ["dpkg/transitional", "opkg/transitional"] {
        let text = std::fs::read_to_string(dir.join(f)).expect("fixture");
        let pkgs = dpkg::packages(&text, true, None, None).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert_eq!(pkgs.len(), 1, "{f}");
        assert!(
            want.contains(&(pkgs[0].name.clone(), pkgs[0].version.clone())),
            "{f}: {:?}",
            pkgs[0].name
        );
    }
    // Empty and invalid files: nothing, or an error with a line number; never a panic.
    assert!(
        dpkg::packages("", true, None, None)
            .expect("empty")
            .is_empty()
    );
    let invalid = std::fs::read_to_string(dir.join("dpkg/invalid")).expect("fixture");
    if let Err(e) = dpkg::packages(&invalid, true, None, None) {
        assert!(e.to_string().starts_with("line "), "{e}");
    }
}

#[test]
fn apk_matches_trivy_and_scalibr_fixtures() {
    let Some(g) = golden() else { return };
    let os = OsRelease {
        id: "alpine".into(),
        version_id: Some("3.18.0".into()),
        ..Default::default()
    };
    // trivy: name@version, origin, arch.
    let exp = json(g.join("trivy/expected/apk_analyzer.json"));
    let text = std::fs::read_to_string(g.join("trivy/pkg/fanal/analyzer/pkg/apk/testdata/apk"))
        .expect("fixture");
    let got: BTreeSet<Row> = apk::packages(&text, Some(&os))
        .expect("parses")
        .iter()
        .map(|p| {
            (
                format!("{}@{}", p.name, p.version),
                p.source
                    .as_ref()
                    .map(|s| format!("{} {}", s.name, s.version))
                    .unwrap_or_default(),
                p.arch.clone().unwrap_or_default(),
                String::new(),
            )
        })
        .collect();
    let want: BTreeSet<Row> = exp["cases"]["pkgs"]
        .as_array()
        .expect("case")
        .iter()
        .map(|p| {
            (
                s(p, "ID"),
                format!("{} {}", s(p, "SrcName"), s(p, "SrcVersion")),
                s(p, "Arch"),
                String::new(),
            )
        })
        .collect();
    assert_eq!(got.len(), 15);
    assert_eq!(got, want, "trivy apk fixture");
    // scalibr: name, origin, version, arch, licence.
    let exp = json(g.join("osv-scalibr/expected/apk_extractor.json"));
    let dir = g.join("osv-scalibr/extractor/filesystem/os/apk/testdata");
    for (file, case) in [
        ("installed", "alpine latest"),
        ("no-origin", "origin not set"),
        ("different-arch", "different arch"),
        ("single", "no osrelease"),
    ] {
        let text = std::fs::read_to_string(dir.join(file)).expect("fixture");
        let got: BTreeSet<(String, String, String, String, String)> =
            apk::packages(&text, Some(&os))
                .expect("parses")
                .into_iter()
                .map(|p| {
                    let origin = p
                        .source
                        .map(|s| s.name)
                        .filter(|o| *o != p.name || file != "no-origin")
                        .unwrap_or_default();
                    (
                        p.name,
                        origin,
                        p.version,
                        p.arch.unwrap_or_default(),
                        p.licenses.join(" "),
                    )
                })
                .collect();
        let want: BTreeSet<(String, String, String, String, String)> = exp["cases"][case]
            .as_array()
            .expect("case")
            .iter()
            .map(|p| {
                (
                    s(p, "Name"),
                    s(p, "Origin"),
                    s(p, "Version"),
                    s(p, "Arch"),
                    s(p, "License"),
                )
            })
            .collect();
        assert_eq!(got, want, "{file} ({case})");
    }
    let musl = apk::packages(
        &text_of(&dir.join("installed")),
        Some(&OsRelease {
            id: "alpine".into(),
            version_id: Some("3.18.4".into()),
            ..Default::default()
        }),
    )
    .expect("parses")
    .into_iter()
    .find(|p| p.name == "musl")
    .expect("musl");
    assert!(
        musl.purl.to_string().starts_with("pkg:apk/alpine/musl@"),
        "{}",
        musl.purl
    );
    assert!(
        musl.purl
            .to_string()
            .ends_with("?arch=x86_64&distro=3.18.4"),
        "{}",
        musl.purl
    );
    assert!(apk::packages("", None).expect("empty").is_empty());
    assert!(apk::packages(&text_of(&dir.join("invalid")), None).is_err());
}

fn text_of(p: &std::path::Path) -> String {
    std::fs::read_to_string(p).expect("fixture")
}

/// The whole pipeline on a directory target: os-release, a distroless `status.d`, an apk database and
/// a Berkeley DB rpm database side by side; paths filled in, purls carrying the distribution.
#[test]
fn catalog_a_tree_with_every_os_database() {
    let Some(g) = golden() else { return };
    let root = tempfile::tempdir().expect("tempdir");
    let put = |rel: &str, from: PathBuf| {
        let to = root.path().join(rel);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    };
    std::fs::create_dir_all(root.path().join("etc")).expect("mkdir");
    std::fs::write(
        root.path().join("etc/os-release"),
        "ID=alpine\nVERSION_ID=3.18.4\n",
    )
    .expect("write");
    put(
        "var/lib/dpkg/status.d/foo",
        g.join("osv-scalibr/extractor/filesystem/os/dpkg/testdata/dpkg/status.d/foo"),
    );
    put(
        "var/lib/dpkg/status.d/foo.md5sums",
        g.join("osv-scalibr/extractor/filesystem/os/dpkg/testdata/dpkg/status.d/foo.md5sums"),
    );
    put(
        "lib/apk/db/installed",
        g.join("osv-scalibr/extractor/filesystem/os/apk/testdata/installed"),
    );
    put(
        "var/lib/rpm/Packages",
        g.join("osv-scalibr/extractor/filesystem/os/rpm/testdata/Packages_epoch"),
    );
    let inv = moat_sbom::sbom_of(
        &moat_image::Target::Dir(root.path().into()),
        &moat_image::OpenOptions::default(),
    )
    .expect("catalog");
    assert!(inv.warnings.is_empty(), "{:?}", inv.warnings);
    let count = |k: moat_model::PackageKind| inv.packages.iter().filter(|p| p.kind == k).count();
    assert_eq!(
        (
            count(moat_model::PackageKind::Deb),
            count(moat_model::PackageKind::Apk),
            count(moat_model::PackageKind::Rpm)
        ),
        (1, 15, 1)
    );
    let foo = inv.packages.iter().find(|p| p.name == "foo").expect("foo");
    assert_eq!(foo.path.as_deref(), Some("var/lib/dpkg/status.d/foo"));
    assert!(
        inv.packages
            .iter()
            .filter(|p| p.kind == moat_model::PackageKind::Apk)
            .all(|p| p.purl.qualifier("distro") == Some("3.18.4"))
    );
    // A corrupt database is a warning naming the file; the rest of the inventory stands.
    std::fs::write(
        root.path().join("var/lib/rpm/Packages"),
        b"\x00\x00\x00\x00garbage",
    )
    .expect("write");
    let inv = moat_sbom::sbom_of(
        &moat_image::Target::Dir(root.path().into()),
        &moat_image::OpenOptions::default(),
    )
    .expect("catalog");
    assert_eq!(inv.warnings.len(), 1);
    assert!(
        inv.warnings[0].starts_with("var/lib/rpm/Packages (rpm)"),
        "{:?}",
        inv.warnings
    );
    assert_eq!(inv.packages.len(), 16);
}

/// Damaged databases (truncated anywhere, bytes flipped anywhere) give packages or an error, never a
/// panic or a hang: a deterministic sweep over the real fixtures.
#[test]
fn damaged_rpm_databases_never_panic() {
    let Some(g) = golden() else { return };
    for f in [
        "go-rpmdb/pkg/testdata/sle15-bci/Packages.db",
        "go-rpmdb/pkg/testdata/libuuid/Packages",
        "go-rpmdb/pkg/testdata/cbl-mariner-2.0/rpmdb.sqlite",
    ] {
        let good = std::fs::read(g.join(f)).expect("fixture");
        let mut errors = 0;
        for i in 1..40usize {
            let cut = good.len() * i / 40;
            if rpm::headers(&good[..cut]).is_err() {
                errors += 1;
            }
        }
        assert!(errors > 0, "{f}: no truncation was noticed");
        // A simple linear congruential sequence picks the positions: the same on every run.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..200 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let mut bad = good.clone();
            let at = (x >> 16) as usize % bad.len();
            bad[at] ^= (x >> 8) as u8 | 1;
            let _ = rpm::headers(&bad);
        }
    }
}

/// Licences from the `copyright` files of trivy's dpkg fixtures: DEP-5 `License:` fields when the file
/// has them, else the `/usr/share/common-licenses` file it points to, else nothing.
#[test]
fn dpkg_copyright_fixtures() {
    let Some(g) = golden() else { return };
    let dir = g.join("trivy/pkg/fanal/analyzer/pkg/dpkg/testdata");
    for (file, want) in [
        ("all-patterns-copyright", vec!["GPLv2+"]),
        ("common-license-copyright", vec!["GPL-2"]),
        (
            "license-pattern-and-classifier-copyright",
            vec!["GPL-1+ or Artistic, and BSD-4-clause-POWERDOG", "Zlib"],
        ),
        ("no-license-copyright", vec![]),
    ] {
        assert_eq!(
            dpkg::parse_copyright(&text_of(&dir.join(file))),
            want,
            "{file}"
        );
    }
}
