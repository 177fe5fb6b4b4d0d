//! Every language lockfile / metadata fixture of Trivy and OSV-SCALIBR (in ../shared/data/golden)
//! gives the package list the upstream test expects.
//!
//! Expected lists come from `expected/*.json` (extracted from the upstream Go tests at the recorded
//! commits). Trivy fixtures are mapped to their expected variable through `file_to_case`;
//! OSV-SCALIBR expectations are grouped by the fixture file their `Location` names. Packages are
//! compared as (name, version) sets with the ecosystem's own name normalisation (PEP 503 for
//! Python; Go versions with or without the leading `v`, as SCALIBR strips it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use moat_model::Package;
use moat_sbom::lang::{go, java, npm, python, rust};
use serde_json::Value;

fn shared() -> Option<PathBuf> {
    let p = std::env::var_os("MOAT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")));
    p.join("data/golden").is_dir().then_some(p)
}

type Set = BTreeSet<(String, String)>;

fn norm(eco: &str, name: &str, version: &str) -> (String, String) {
    match eco {
        "python" => (moat_sbom_pep503(name), version.to_string()),
        "go" => (
            name.to_string(),
            version.trim_start_matches('v').to_string(),
        ),
        _ => (name.to_string(), version.to_string()),
    }
}

fn moat_sbom_pep503(n: &str) -> String {
    python::parse_requirements(&format!("{n}==0"))
        .ok()
        .and_then(|v| v.first().map(|p| p.purl.name.clone()))
        .unwrap_or_else(|| n.to_lowercase())
}

/// Parses one fixture with the parser its folder is for.
fn parse(eco_dir: &str, path: &Path) -> Result<Vec<Package>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let s = moat_sbom::lang::decode_text(&bytes)
        .map_err(|e| e.to_string())?
        .into_owned();
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let r = match eco_dir {
        "npm" | "packagelockjson" => npm::parse_package_lock(&s),
        "yarn" | "yarnlock" => npm::parse_yarn_lock(&s),
        "pnpm" | "pnpmlock" => npm::parse_pnpm_lock(&s),
        "poetry" | "poetrylock" => python::parse_poetry_lock(&s),
        "uv" | "uvlock" => python::parse_uv_lock(&s),
        "pip" | "requirements" => python::parse_requirements(&s),
        "cargo" | "cargolock" => rust::parse_cargo_lock(&s),
        // Trivy's parser test reads go.mod alone (its analyzer merges go.sum); SCALIBR's reads
        // `x.mod` with `x.sum` beside it.
        "mod" => go::parse_go_mod(&s, None),
        "gomod" => {
            let sum = std::fs::read_to_string(path.with_extension("sum")).ok();
            go::parse_go_mod(&s, sum.as_deref())
        }
        "lockfile" | "gradlelockfile" => java::parse_gradle_lockfile(&s),
        "pomxml" => java::parse_pom_xml(&s),
        other => return Err(format!("no parser for {other} ({name})")),
    };
    r.map_err(|e| e.to_string())
}

fn eco_of(dir: &str) -> &'static str {
    match dir {
        "poetry" | "poetrylock" | "uv" | "uvlock" | "pip" | "requirements" => "python",
        "mod" | "gomod" => "go",
        _ => "other",
    }
}

struct Case {
    label: String,
    dir: String,
    file: PathBuf,
    expected: Set,
}

fn expected_set(eco: &str, pkgs: &[&Value]) -> Set {
    pkgs.iter()
        .filter_map(|p| {
            Some(norm(
                eco,
                p.get("Name")?.as_str()?,
                p.get("Version")?.as_str()?,
            ))
        })
        .collect()
}

/// Trivy's parser tests: `file_to_case` says which expected variable a fixture gives.
fn trivy_cases(root: &Path) -> Vec<Case> {
    // Variables for options moat does not have (stdlib from go.mod, replace directives ignored).
    // (`useMinVersion` for requirements bounds is another non-default option.)
    const OTHER_OPTIONS: [&str; 3] = [
        "GoModNormal",
        "GoModUnreplaced",
        "requirementsCompatibleVersions",
    ];
    let parsers = [
        ("npm_parser", "pkg/dependency/parser/nodejs/npm", "npm"),
        ("yarn_parser", "pkg/dependency/parser/nodejs/yarn", "yarn"),
        ("pnpm_parser", "pkg/dependency/parser/nodejs/pnpm", "pnpm"),
        (
            "poetry_parser",
            "pkg/dependency/parser/python/poetry",
            "poetry",
        ),
        ("uv_parser", "pkg/dependency/parser/python/uv", "uv"),
        ("pip_parser", "pkg/dependency/parser/python/pip", "pip"),
        ("cargo_parser", "pkg/dependency/parser/rust/cargo", "cargo"),
        ("gomod_parser", "pkg/dependency/parser/golang/mod", "mod"),
        (
            "gradle_lockfile_parser",
            "pkg/dependency/parser/gradle/lockfile",
            "lockfile",
        ),
    ];
    let mut out = Vec::new();
    for (json, dir, eco_dir) in parsers {
        let doc: Value = serde_json::from_slice(
            &std::fs::read(root.join(format!("expected/{json}.json"))).unwrap(),
        )
        .unwrap();
        let cases = &doc["cases"];
        let mut seen = BTreeSet::new();
        for m in doc["file_to_case"].as_array().into_iter().flatten() {
            let (Some(file), Some(var)) = (m["file"].as_str(), m["expected_var"].as_str()) else {
                continue;
            };
            let Some(pkgs) = cases.get(var).and_then(Value::as_array) else {
                continue;
            };
            if OTHER_OPTIONS.contains(&var) || !seen.insert(file.to_string()) {
                continue;
            }
            let pkgs: Vec<&Value> = pkgs.iter().collect();
            out.push(Case {
                label: format!("trivy {eco_dir} {file} ({var})"),
                dir: eco_dir.into(),
                file: root.join(dir).join(file),
                expected: expected_set(eco_of(eco_dir), &pkgs),
            });
        }
        // gradle has one case without file_to_case.
        if json == "gradle_lockfile_parser"
            && let Some(pkgs) = cases.get("happy path").and_then(Value::as_array)
        {
            let pkgs: Vec<&Value> = pkgs.iter().collect();
            out.push(Case {
                label: "trivy gradle happy.lockfile".into(),
                dir: eco_dir.into(),
                file: root.join(dir).join("testdata/happy.lockfile"),
                expected: expected_set("other", &pkgs),
            });
        }
    }
    out
}

/// OSV-SCALIBR's extractor tests: expectations grouped by the fixture their Location names.
fn scalibr_cases(root: &Path) -> Vec<Case> {
    let extractors = [
        (
            "packagelockjson_extractor",
            "extractor/filesystem/language/javascript/packagelockjson",
            "packagelockjson",
        ),
        (
            "yarnlock_extractor",
            "extractor/filesystem/language/javascript/yarnlock",
            "yarnlock",
        ),
        (
            "pnpmlock_extractor",
            "extractor/filesystem/language/javascript/pnpmlock",
            "pnpmlock",
        ),
        (
            "poetrylock_extractor",
            "extractor/filesystem/language/python/poetrylock",
            "poetrylock",
        ),
        (
            "requirements_extractor",
            "extractor/filesystem/language/python/requirements",
            "requirements",
        ),
        (
            "uvlock_extractor",
            "extractor/filesystem/language/python/uvlock",
            "uvlock",
        ),
        (
            "cargolock_extractor",
            "extractor/filesystem/language/rust/cargolock",
            "cargolock",
        ),
        (
            "gomod_extractor",
            "extractor/filesystem/language/golang/gomod",
            "gomod",
        ),
        (
            "pomxml_extractor",
            "extractor/filesystem/language/java/pomxml",
            "pomxml",
        ),
        (
            "gradlelockfile_extractor",
            "extractor/filesystem/language/java/gradlelockfile",
            "gradlelockfile",
        ),
    ];
    let mut out = Vec::new();
    for (json, dir, eco_dir) in extractors {
        let doc: Value = serde_json::from_slice(
            &std::fs::read(root.join(format!("expected/{json}.json"))).unwrap(),
        )
        .unwrap();
        let mut by_file: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
        for pkgs in doc["cases"]
            .as_object()
            .into_iter()
            .flat_map(|o| o.values())
        {
            for p in pkgs.as_array().into_iter().flatten() {
                let Some(loc) = p.get("Location").and_then(Value::as_str) else {
                    continue;
                };
                let Some(file) = loc.split('"').nth(1) else {
                    continue;
                };
                let file = match file.strip_suffix(".sum") {
                    Some(stem) if eco_dir == "gomod" => format!("{stem}.mod"),
                    _ => file.to_string(),
                };
                by_file.entry(file).or_default().push(p);
            }
        }
        for (file, pkgs) in by_file {
            out.push(Case {
                label: format!("osv-scalibr {eco_dir} {file}"),
                dir: eco_dir.into(),
                file: root.join(dir).join(&file),
                expected: expected_set(eco_of(eco_dir), &pkgs),
            });
        }
    }
    out
}

/// Fixtures where moat deliberately differs from one peer (the peers disagree with each other on
/// each of these points), with the reason. Each must still parse, and differ only as stated.
const PRINCIPLED: [(&str, &str); 19] = [
    (
        "package-lock_v3_with_workspace.json",
        "a workspace member without a version (Trivy lists function1@\"\") cannot be matched; skipped",
    ),
    (
        "commits.v2.json",
        "raven-js is a git dependency whose lock entry has no version; skipped",
    ),
    (
        "pnpm-lock_with_dev.yaml",
        "Trivy drops `dev: true` packages; `pnpm install` installs them, so moat lists them (SCALIBR does too)",
    ),
    (
        "pnpm-lock_many.yaml",
        "Trivy drops `dev: true` packages; moat lists them",
    ),
    (
        "pnpm-lock_v6_with_dev.yaml",
        "Trivy drops `dev: true` packages; moat lists them",
    ),
    (
        "uv_normal.lock",
        "the project itself (virtual/editable source) is the user's code, not a PyPI release (SCALIBR agrees)",
    ),
    (
        "go116/go.mod",
        "Trivy's parser drops `// indirect` requires of go < 1.17 modules; they are still required, moat keeps them",
    ),
    (
        "exclude-root.v2.lock",
        "a `workspace:` entry is the user's own package (Trivy skips them too)",
    ),
    (
        "files.v2.lock",
        "a `file:` entry is a local folder, not a registry release (Trivy skips them too)",
    ),
    (
        "requirements testdata/example.txt",
        "`keyring >= 4.1.1` is a bound, not an installed version (Trivy agrees by default)",
    ),
    (
        "with_versions.txt",
        "`>=`/`<=` bounds are not installed versions (Trivy agrees by default)",
    ),
    (
        "per_req_options.txt",
        "SCALIBR keeps trailing junk in foo7's version; moat refuses a version with spaces",
    ),
    (
        "indirect-1.16.mod",
        "SCALIBR adds stdlib from the `go` directive (a minimum language version, not the toolchain that built anything)",
    ),
    (
        "indirect-1.23.mod",
        "stdlib from the `go` directive: see indirect-1.16",
    ),
    (
        "indirect-packages.mod",
        "stdlib from the `go` directive: see indirect-1.16",
    ),
    (
        "toolchain-with-suffix.mod",
        "stdlib from the `toolchain` directive: no binary was built with it",
    ),
    (
        "toolchain.mod",
        "stdlib from the `toolchain` directive: see toolchain-with-suffix",
    ),
    (
        "two-packages.mod",
        "stdlib from the `go` directive: see indirect-1.16",
    ),
    (
        "replace-local.mod",
        "a replacement by a local directory (./fork/net) has no version; skipped like Trivy",
    ),
];

/// Fixtures whose expectation needs more than one file (a parent POM) or is a SCALIBR quirk.
const PRINCIPLED_MAVEN: [(&str, &str); 4] = [
    (
        "interpolation.xml",
        "`[9.4.35.v20201120,9.5)` is a range; SCALIBR reports its lower bound, moat only exact versions",
    ),
    (
        "grouped-packages.lock",
        "expected JSON is incomplete: the upstream test (uvlock_test.go, grouped packages) lists all 14 non-root packages, the regex kept 3",
    ),
    (
        "with-parent.xml",
        "versions inherited from a parent POM on disk/registry are not resolved (literal versions only)",
    ),
    (
        "multi-version.xml",
        "SCALIBR keeps only the first of two declarations of one artifact; moat lists both as written",
    ),
];

#[test]
fn golden_lockfiles_give_expected_packages() {
    let Some(shared) = shared() else {
        eprintln!("SKIPPED: ../shared/data/golden (set MOAT_SHARED)");
        return;
    };
    let golden = shared.join("data/golden");
    let mut cases = trivy_cases(&golden.join("trivy"));
    cases.extend(scalibr_cases(&golden.join("osv-scalibr")));
    let (mut ok, mut accepted, mut failed) = (0, 0, Vec::new());
    for c in &cases {
        let got: Result<Set, String> = parse(&c.dir, &c.file).map(|pkgs| {
            pkgs.iter()
                .map(|p| norm(eco_of(&c.dir), &p.name, &p.version))
                .collect()
        });
        match got {
            Ok(got) if got == c.expected => {
                ok += 1;
                eprintln!("OK    {} ({} packages)", c.label, got.len());
            }
            Ok(got) => {
                let missing: Vec<_> = c.expected.difference(&got).collect();
                let extra: Vec<_> = got.difference(&c.expected).collect();
                let why = PRINCIPLED
                    .iter()
                    .chain(PRINCIPLED_MAVEN.iter())
                    .find(|(f, _)| c.label.contains(f))
                    .map(|(_, w)| *w);
                match why {
                    Some(why) => {
                        accepted += 1;
                        eprintln!(
                            "KNOWN {}: missing {missing:?}; extra {} ({why})",
                            c.label,
                            extra.len()
                        );
                    }
                    None => {
                        eprintln!(
                            "DIFF  {}: expected {}, got {}; missing {missing:?}; extra {extra:?}",
                            c.label,
                            c.expected.len(),
                            got.len()
                        );
                        failed.push(c.label.clone());
                    }
                }
            }
            Err(e) => {
                eprintln!("ERROR {}: {e}", c.label);
                failed.push(c.label.clone());
            }
        }
    }
    eprintln!(
        "golden lockfiles: {ok}/{} fixtures match exactly, {accepted} differ as documented, {} fail",
        cases.len(),
        failed.len()
    );
    assert!(accepted <= PRINCIPLED.len() + PRINCIPLED_MAVEN.len());
    assert!(cases.len() > 50, "too few fixtures found: {}", cases.len());
    assert!(failed.is_empty(), "fixtures that differ: {failed:#?}");
}

/// Files of a txtar archive (`-- name --` headers).
fn txtar(s: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in s.lines() {
        if let Some(name) = line.strip_prefix("-- ").and_then(|l| l.strip_suffix(" --")) {
            out.push((name.to_string(), String::new()));
        } else if let Some((_, body)) = out.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    out
}

/// Name/version pairs of one kind that `moat_sbom::catalog` finds in a tree, and its warnings.
fn catalog_tree(root: &Path, kind: moat_model::PackageKind) -> (Set, Vec<String>) {
    let image = moat_image::Image::open(
        &moat_image::Target::Dir(root.to_path_buf()),
        &moat_image::OpenOptions::default(),
    )
    .unwrap();
    let inv = moat_sbom::catalog(&image).unwrap();
    let eco = if kind == moat_model::PackageKind::Go {
        "go"
    } else {
        "other"
    };
    (
        inv.packages
            .iter()
            .filter(|p| p.kind == kind)
            .map(|p| norm(eco, &p.name, &p.version))
            .collect(),
        inv.warnings,
    )
}

/// Trivy's analyzer-level fixtures (whole folders: lockfile + node_modules, go.mod + go.sum in
/// txtar archives, lockfiles without their manifest) through the same path an image scan takes.
#[test]
fn trivy_analyzer_fixtures_give_expected_packages() {
    let Some(shared) = shared() else {
        eprintln!("SKIPPED: ../shared/data/golden (set MOAT_SHARED)");
        return;
    };
    let trivy = shared.join("data/golden/trivy");
    let expected = |json: &str, case: &str, eco: &str| -> Set {
        let doc: Value = serde_json::from_slice(
            &std::fs::read(trivy.join(format!("expected/{json}.json"))).unwrap(),
        )
        .unwrap();
        let pkgs: Vec<&Value> = doc["cases"][case].as_array().unwrap().iter().collect();
        expected_set(eco, &pkgs)
    };
    let mut checked = 0;
    // npm: package-lock.json with and without the installed node_modules beside it.
    let npm = trivy.join("pkg/fanal/analyzer/language/nodejs/npm/testdata");
    for (dir, case) in [
        ("happy", "with node_modules"),
        ("no-node_modules", "without node_modules"),
    ] {
        let (got, warnings) = catalog_tree(&npm.join(dir), moat_model::PackageKind::Npm);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(
            got,
            expected("npm_analyzer", case, "other"),
            "npm analyzer {dir}"
        );
        eprintln!("OK    trivy npm analyzer {dir} ({} packages)", got.len());
        checked += 1;
    }
    let (_, warnings) = catalog_tree(&npm.join("sad"), moat_model::PackageKind::Npm);
    assert_eq!(
        warnings.len(),
        1,
        "the broken lockfile is one warning: {warnings:?}"
    );
    // go.mod + go.sum (merged for go < 1.17).
    let gomod = trivy.join("pkg/fanal/analyzer/language/golang/mod/testdata");
    for (file, case) in [
        ("happy.txtar", "happy"),
        ("merge.txtar", "less than 1.17"),
        ("no-go-sum.txtar", "no go.sum"),
        ("no-pkg-found.txtar", "no pkg dir found"),
        (
            "vendor-dir-exists.txtar",
            "deps from GOPATH and license from vendor dir",
        ),
        ("wrong-gomod-in-pkg.txtar", "wrong go.mod from `pkg`"),
        ("sad.txtar", ""),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        for (name, body) in txtar(&std::fs::read_to_string(gomod.join(file)).unwrap()) {
            let p = tmp.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, body).unwrap();
        }
        let (got, warnings) = catalog_tree(tmp.path(), moat_model::PackageKind::Go);
        if case.is_empty() {
            assert_eq!(
                warnings.len(),
                1,
                "{file}: the invalid go.mod is one warning: {warnings:?}"
            );
            eprintln!("OK    trivy gomod analyzer {file}: {}", warnings[0]);
        } else {
            assert!(warnings.is_empty(), "{warnings:?}");
            assert_eq!(
                got,
                expected("gomod_analyzer", case, "go"),
                "gomod analyzer {file}"
            );
            eprintln!("OK    trivy gomod analyzer {file} ({} packages)", got.len());
        }
        checked += 1;
    }
    // Lockfiles without their manifest: the whole lockfile. (Where Trivy also has the manifest, it
    // prunes the lockfile to what the manifest's groups and targets reach; moat reports what the
    // lockfile pins, which is what an install from it may contain.)
    let poetry =
        trivy.join("pkg/fanal/analyzer/language/python/poetry/testdata/no-pyproject/poetry.lock");
    let got: Set = python::parse_poetry_lock(&std::fs::read_to_string(poetry).unwrap())
        .unwrap()
        .iter()
        .map(|p| norm("python", &p.name, &p.version))
        .collect();
    assert_eq!(
        got,
        expected("poetry_analyzer", "no pyproject.toml", "python")
    );
    let cargo_txtar = txtar(
        &std::fs::read_to_string(
            trivy.join("pkg/fanal/analyzer/language/rust/cargo/testdata/no-cargo-toml.txtar"),
        )
        .unwrap(),
    );
    let lock = cargo_txtar
        .iter()
        .find(|(n, _)| n.ends_with("Cargo.lock"))
        .expect("Cargo.lock in the txtar");
    let got: Set = rust::parse_cargo_lock(&lock.1)
        .unwrap()
        .iter()
        .map(|p| norm("other", &p.name, &p.version))
        .collect();
    assert_eq!(got, expected("cargo_analyzer", "no Cargo.toml", "other"));
    checked += 2;
    eprintln!("trivy analyzer fixtures: {checked} checked");
}
