//! Real Debian images (debootstrap + umoci + skopeo) read in every target form: the dpkg database
//! must come out byte-identical to the root filesystem's.

use std::path::PathBuf;

use moat_image::{EntryKind, Image, OpenOptions, Select, Target};

fn shared() -> PathBuf {
    std::env::var_os("MOAT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")))
}

/// The fixture directory for a suite, building it with the shared script when missing.
fn fixture(suite: &str) -> Option<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from)?;
    let dir = home.join(".cache/moat-fixtures").join(suite);
    if !dir.join(".done").exists() {
        let script = shared().join("scripts/debian-image.sh");
        if !script.exists() {
            eprintln!(
                "SKIPPED: {} is missing (no shared scripts to build the {suite} image)",
                script.display()
            );
            return None;
        }
        let ok = std::process::Command::new("bash")
            .arg(&script)
            .arg(suite)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            eprintln!(
                "SKIPPED: could not build the {suite} image with {}",
                script.display()
            );
            return None;
        }
    }
    Some(dir)
}

const STATUS: &str = "var/lib/dpkg/status";

fn select_status(m: &moat_image::FileMeta) -> Select {
    if m.path == STATUS || m.path == "etc/os-release" {
        Select::Content
    } else if m.path.starts_with("etc/") {
        Select::Meta
    } else {
        Select::Skip
    }
}

fn check_suite(suite: &str) {
    let Some(dir) = fixture(suite) else { return };
    let expected = std::fs::read(dir.join("rootfs").join(STATUS)).expect("rootfs status");
    let expected_os_release =
        std::fs::read(dir.join("rootfs/usr/lib/os-release")).expect("rootfs os-release");
    let targets = [
        format!("oci:{}:{suite}", dir.join("oci").display()),
        format!("oci:{}", dir.join("oci").display()),
        format!("oci-archive:{}", dir.join("oci.tar").display()),
        format!("docker-archive:{}", dir.join("docker.tar").display()),
        format!("dir:{}", dir.join("rootfs").display()),
        // Auto-detected bare paths.
        dir.join("oci").display().to_string(),
        dir.join("oci.tar").display().to_string(),
        dir.join("docker.tar").display().to_string(),
    ];
    let mut config_digests = Vec::new();
    for t in &targets {
        let target = Target::parse(t).unwrap_or_else(|e| panic!("{t}: {e}"));
        let image =
            Image::open(&target, &OpenOptions::default()).unwrap_or_else(|e| panic!("{t}: {e}"));
        let view = image
            .collect(&select_status)
            .unwrap_or_else(|e| panic!("{t}: {e}"));
        let entry = view
            .get(STATUS)
            .unwrap_or_else(|| panic!("{t}: no {STATUS}"));
        assert_eq!(entry.meta.kind, EntryKind::File, "{t}");
        assert!(
            entry.content.as_deref() == Some(&expected[..]),
            "{t}: {STATUS} differs from the rootfs"
        );
        // `etc/os-release -> ../usr/lib/os-release`: the link is followed inside the image, even though
        // the selector named only the link.
        let os_release = view
            .resolve_checked("etc/os-release")
            .unwrap_or_else(|e| panic!("{t}: {e}"));
        assert!(
            os_release.and_then(|e| e.content.as_deref()) == Some(&expected_os_release[..]),
            "{t}: etc/os-release does not resolve to the rootfs's usr/lib/os-release"
        );
        if target.kind() != "dir" {
            let info = image.info();
            assert_eq!(info.architecture.as_deref(), Some("amd64"), "{t}");
            assert_eq!(info.os.as_deref(), Some("linux"), "{t}");
            assert_eq!(info.layers.len(), 1, "{t}");
            assert!(info.layers[0].diff_id.is_some(), "{t}");
            assert_eq!(
                info.layers[0].created_by.as_deref(),
                Some("umoci raw add-layer"),
                "{t}"
            );
            assert!(!info.repo_tags.is_empty(), "{t}");
            config_digests.push(info.config_digest.clone().expect("config digest"));
            let config = image.config().expect("config");
            assert_eq!(config.cmd, vec!["/bin/bash".to_string()], "{t}");
            assert!(config.env.iter().any(|e| e.starts_with("PATH=")), "{t}");
            assert_eq!(entry.layer, info.layers[0].diff_id, "{t}");
        }
    }
    // The same image in three containers: one config.
    config_digests.dedup();
    assert_eq!(config_digests.len(), 1, "{config_digests:?}");
}

#[test]
fn bookworm_in_every_form() {
    check_suite("bookworm");
}

#[test]
fn bullseye_in_every_form() {
    check_suite("bullseye");
}
