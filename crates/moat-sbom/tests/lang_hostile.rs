//! Hostile language files: each unparseable lockfile, metadata file, archive or binary becomes one
//! warning naming the file, and the scan goes on (a valid package next to them is still found).
//! Archive bombs (inflation, entry count, nesting) are bounded by `ArchiveLimits`.

use std::io::Write;
use std::path::Path;

use moat_image::{Image, OpenOptions, Target};
use moat_sbom::lang::java::{ArchiveLimits, parse_archive};
use zip::write::SimpleFileOptions;

fn write(root: &Path, rel: &str, bytes: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

/// A zip with the given (name, content) entries, deflated.
fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in entries {
        w.start_file(*name, opts).unwrap();
        w.write_all(data).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn pom_props(g: &str, a: &str, v: &str) -> Vec<u8> {
    format!("groupId={g}\nartifactId={a}\nversion={v}\n").into_bytes()
}

/// `depth` archives nested in each other, each with its own pom.properties.
fn nested_jar(depth: usize) -> Vec<u8> {
    let mut inner = zip_of(&[(
        "META-INF/maven/org.x/l0/pom.properties",
        &pom_props("org.x", "l0", "1.0"),
    )]);
    for d in 1..depth {
        let props = pom_props("org.x", &format!("l{d}"), "1.0");
        let name = format!("META-INF/maven/org.x/l{d}/pom.properties");
        inner = zip_of(&[(&name, &props), ("lib/inner.jar", &inner)]);
    }
    inner
}

#[test]
fn archive_limits_bound_bombs() {
    let limits = ArchiveLimits {
        max_archive: 1 << 20,
        max_entries: 100,
        max_inflated: 1 << 20,
        max_depth: 4,
        max_total: 1 << 20,
    };
    // Inflation: 8 MiB of zeros deflate to a few KB.
    let zeros = vec![0u8; 8 << 20];
    let bomb = zip_of(&[("META-INF/maven/a/b/pom.properties", &zeros)]);
    assert!(bomb.len() < 64 << 10);
    let err = parse_archive("bomb.jar", &bomb, &limits)
        .unwrap_err()
        .to_string();
    assert!(err.contains("inflates past"), "{err}");
    // Nested archives count towards the same budget.
    let nested_bomb = zip_of(&[("lib/a.jar", &zip_of(&[("lib/b.jar", &zeros)]))]);
    assert!(parse_archive("nested-bomb.jar", &nested_bomb, &limits).is_err());
    // Entry count.
    let names: Vec<String> = (0..150).map(|i| format!("f{i}.class")).collect();
    let many: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &b"x"[..])).collect();
    let err = parse_archive("many.jar", &zip_of(&many), &limits)
        .unwrap_err()
        .to_string();
    assert!(err.contains("zip entries"), "{err}");
    // Nesting depth: 4 levels are read, 6 are refused.
    let ok = parse_archive("app.war", &nested_jar(4), &limits).unwrap();
    let names: Vec<&str> = ok.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["org.x:l3", "org.x:l2", "org.x:l1", "org.x:l0"]);
    let err = parse_archive("deep.ear", &nested_jar(7), &limits)
        .unwrap_err()
        .to_string();
    assert!(err.contains("nested deeper"), "{err}");
    // The bytes of archives read per scan are capped too.
    let archives = moat_sbom::lang::java::Archives::new(limits);
    let meta = |path: &str, size: u64| moat_image::FileMeta {
        path: path.into(),
        kind: moat_image::EntryKind::File,
        size,
        mode: 0o644,
        uid: 0,
        gid: 0,
    };
    use moat_sbom::Cataloger;
    assert_eq!(
        archives.wants(&meta("a.jar", 600 << 10)),
        moat_image::Select::Content
    );
    assert_eq!(
        archives.wants(&meta("b.jar", 600 << 10)),
        moat_image::Select::Skip
    );
    assert_eq!(
        archives.wants(&meta("a.jar", 600 << 10)),
        moat_image::Select::Content
    );
    // Not a zip at all.
    assert!(parse_archive("junk.jar", b"PK\x03\x04 truncated", &limits).is_err());
}

#[test]
fn jar_metadata_sources() {
    let limits = ArchiveLimits::default();
    // pom.properties wins; a shaded jar lists every artifact it carries.
    let shaded = zip_of(&[
        (
            "META-INF/MANIFEST.MF",
            b"Manifest-Version: 1.0\nImplementation-Version: 9.9\n",
        ),
        (
            "META-INF/maven/com.fasterxml.jackson.core/jackson-databind/pom.properties",
            &pom_props("com.fasterxml.jackson.core", "jackson-databind", "2.9.1"),
        ),
        (
            "META-INF/maven/org.yaml/snakeyaml/pom.properties",
            &pom_props("org.yaml", "snakeyaml", "1.33"),
        ),
    ]);
    let got = parse_archive("app.jar", &shaded, &limits).unwrap();
    let purls: Vec<String> = got.iter().map(|p| p.purl.to_string()).collect();
    assert_eq!(
        purls,
        [
            "pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.9.1",
            "pkg:maven/org.yaml/snakeyaml@1.33"
        ]
    );
    // Without pom.properties: the manifest, with the artifact from the file name.
    let manifest = zip_of(&[(
        "META-INF/MANIFEST.MF",
        b"Manifest-Version: 1.0\r\nImplementation-Title: Commons Lang\r\nImplementation-Version: 3.12.0\r\nImplementation-Vendor-Id: org.apache.commons\r\n\r\n",
    )]);
    let got = parse_archive("commons-lang3-3.12.0.jar", &manifest, &limits).unwrap();
    assert_eq!(
        got[0].purl.to_string(),
        "pkg:maven/org.apache.commons/commons-lang3@3.12.0"
    );
    // Nothing that names a group: no package (a guess would match the wrong advisories).
    let bare = zip_of(&[("a.class", b"x")]);
    assert!(
        parse_archive("thing-1.0.jar", &bare, &limits)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn hostile_files_become_warnings_and_the_scan_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    let deep = format!(
        "{{\"lockfileVersion\":1,\"dependencies\":{}{}}}",
        "{\"a\":{\"version\":\"1\",\"dependencies\":".repeat(300),
        "}}".repeat(300)
    );
    let hostile: Vec<(&str, Vec<u8>)> = vec![
        ("deep/package-lock.json", deep.into_bytes()),
        ("truncated/package-lock.json", br#"{"lockfileVersion": 3, "packages": {"node_modules/a": {"version": "1.0"#.to_vec()),
        ("types/package-lock.json", br#"{"lockfileVersion": 3, "packages": {"node_modules/a": "1.0"}}"#.to_vec()),
        ("yarn/yarn.lock", b"this is not a yarn lockfile\n".to_vec()),
        ("pnpm/pnpm-lock.yaml", b"lockfileVersion: '6.0'\npackages: [1, 2".to_vec()),
        (
            "laughs/pnpm-lock.yaml",
            b"a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\ng: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\nh: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\npackages: *h\n"
                .to_vec(),
        ),
        ("poetry/poetry.lock", b"package = \"not a table\"\n".to_vec()),
        ("uv/uv.lock", b"[[package]]\nname = \"x\"\nversion = 3\n[[package\n".to_vec()),
        ("pipenv/Pipfile.lock", b"{\"default\": []}".to_vec()),
        ("site/x-1.0.dist-info/METADATA", b"\xff\xfe\x00garbage".to_vec()),
        ("go/go.mod", b"module m\nrequire (\n  onlyapath\n)\n".to_vec()),
        ("rust/Cargo.lock", b"[[package]]\nname = 1\n".to_vec()),
        ("java/pom.xml", b"<?xml version=\"1.0\"?><!DOCTYPE p [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;\">]><project>&b;</project>".to_vec()),
        ("java/gradle.lockfile", b">>>>>>> conflict\n".to_vec()),
        ("java/lib/broken.jar", b"PK\x03\x04not really a zip".to_vec()),
        ("java/lib/deep.war", nested_jar(7)),
    ];
    for (p, b) in &hostile {
        write(r, p, b);
    }
    // An executable that claims to be ELF but is not.
    let mut elf = b"\x7fELF\x02\x01\x01".to_vec();
    elf.resize(8192, 0xAA);
    write(r, "usr/local/bin/fake", &elf);
    std::fs::set_permissions(
        r.join("usr/local/bin/fake"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    // Over the format's size limit (a sparse file: no disk space used): refused by size, named.
    for (p, size) in [
        ("huge/package-lock.json", 65u64 << 20),
        ("app/node_modules/big/package.json", 5 << 20),
    ] {
        std::fs::create_dir_all(r.join(p).parent().unwrap()).unwrap();
        std::fs::File::create(r.join(p))
            .unwrap()
            .set_len(size)
            .unwrap();
    }
    // A valid package beside them.
    write(
        r,
        "app/node_modules/lodash/package.json",
        br#"{"name": "lodash", "version": "4.17.15", "license": "MIT"}"#,
    );

    let image = Image::open(&Target::Dir(r.to_path_buf()), &OpenOptions::default()).unwrap();
    let inv = moat_sbom::catalog(&image).unwrap();
    for w in &inv.warnings {
        eprintln!("warning: {w}");
    }
    let mut expected: Vec<&str> = hostile.iter().map(|(p, _)| *p).collect();
    expected.extend([
        "usr/local/bin/fake",
        "huge/package-lock.json",
        "app/node_modules/big/package.json",
    ]);
    for p in &expected {
        assert!(
            inv.warnings.iter().any(|w| w.starts_with(p)),
            "no warning names {p}"
        );
    }
    assert_eq!(
        inv.warnings.len(),
        expected.len(),
        "one warning per hostile file"
    );
    let lodash = inv
        .packages
        .iter()
        .find(|p| p.name == "lodash")
        .expect("the valid package is still found");
    assert_eq!(lodash.purl.to_string(), "pkg:npm/lodash@4.17.15");
    assert_eq!(
        lodash.path.as_deref(),
        Some("app/node_modules/lodash/package.json")
    );
    assert_eq!(lodash.licenses, ["MIT"]);
}

/// Every parser on truncated and bit-flipped versions of every golden lockfile (and of a real ELF
/// and a jar): an error or a result, never a panic.
#[test]
fn mutated_inputs_never_panic() {
    use moat_sbom::lang::{binary, go, java, npm, python, rust};
    let shared = std::env::var_os("MOAT_SHARED")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared"))
        });
    let roots = [
        shared.join("data/golden/trivy/pkg/dependency/parser"),
        shared.join("data/golden/osv-scalibr/extractor/filesystem/language"),
    ];
    if !roots[0].is_dir() {
        eprintln!("SKIPPED: ../shared/data/golden (set MOAT_SHARED)");
        return;
    }
    let mut files = Vec::new();
    let mut stack: Vec<std::path::PathBuf> = roots.to_vec();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
        {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.metadata().is_ok_and(|m| m.len() < 256 << 10) {
                files.push(p);
            }
        }
    }
    // A deterministic generator for the mutations.
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let parsers: [fn(&str); 12] = [
        |s| drop(npm::parse_package_lock(s)),
        |s| drop(npm::parse_yarn_lock(s)),
        |s| drop(npm::parse_pnpm_lock(s)),
        |s| drop(npm::parse_package_json(s)),
        |s| drop(python::parse_metadata(s)),
        |s| drop(python::parse_requirements(s)),
        |s| drop(python::parse_poetry_lock(s)),
        |s| drop(python::parse_uv_lock(s)),
        |s| drop(python::parse_pipfile_lock(s)),
        |s| drop(go::parse_go_mod(s, Some(s))),
        |s| drop(rust::parse_cargo_lock(s)),
        |s| {
            drop(java::parse_pom_xml(s));
            drop(java::parse_gradle_lockfile(s));
        },
    ];
    let mut runs = 0;
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        if bytes.is_empty() {
            continue;
        }
        for round in 0..24 {
            let mut m = bytes.clone();
            if round % 2 == 0 {
                m.truncate((next() as usize) % m.len());
            } else {
                for _ in 0..4 {
                    let i = (next() as usize) % m.len();
                    m[i] = next() as u8;
                }
            }
            let Ok(text) = moat_sbom::lang::decode_text(&m) else {
                continue;
            };
            for parse in parsers {
                parse(&text);
                runs += 1;
            }
        }
    }
    // Binaries and archives.
    let elf = std::fs::read("/bin/true").unwrap_or_default();
    if elf.len() > 4096 {
        for _ in 0..300 {
            let mut m = elf.clone();
            for _ in 0..3 {
                let i = (next() as usize) % 4096;
                m[i] = next() as u8;
            }
            drop(binary::parse_elf(&m));
            runs += 1;
        }
    }
    let jar = nested_jar(3);
    for _ in 0..300 {
        let mut m = jar.clone();
        let i = (next() as usize) % m.len();
        m[i] = next() as u8;
        drop(java::parse_archive("x.jar", &m, &ArchiveLimits::default()));
        runs += 1;
    }
    eprintln!(
        "{} files, {runs} parser runs on mutated input: no panic",
        files.len()
    );
}
