//! A real OCI registry (distribution v2, started by the shared script on loopback): push the Debian
//! images with skopeo, pull them back through `registry:` and compare with the root filesystem.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use moat_image::{Image, OpenOptions, Select, Target};

fn shared() -> PathBuf {
    std::env::var_os("MOAT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared")))
}

/// Stops the registry when the test ends, passed or failed.
struct RegistryGuard {
    script: PathBuf,
    dir: PathBuf,
}

impl Drop for RegistryGuard {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(&self.script)
            .arg("stop")
            .arg(&self.dir)
            .status();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn push(layout: &Path, tag: &str, dest: &str) {
    let out = Command::new("skopeo")
        .args(["copy", "-q", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:{tag}", layout.display()))
        .arg(format!("docker://{dest}"))
        .output()
        .expect("skopeo");
    assert!(
        out.status.success(),
        "skopeo copy to {dest}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn pull_debian_images_from_a_real_registry() {
    let script = shared().join("scripts/registry.sh");
    if !script.exists() {
        eprintln!("SKIPPED: {} is missing", script.display());
        return;
    }
    let Some(home) = std::env::var_os("HOME").map(PathBuf::from) else {
        eprintln!("SKIPPED: no HOME for the image fixtures");
        return;
    };
    let fixtures = home.join(".cache/moat-fixtures");
    let suites: Vec<&str> = ["bookworm", "bullseye"]
        .into_iter()
        .filter(|s| fixtures.join(s).join(".done").exists())
        .collect();
    if suites.is_empty() {
        eprintln!(
            "SKIPPED: no Debian images under {} (scripts/debian-image.sh builds them)",
            fixtures.display()
        );
        return;
    }
    if !have("skopeo") || !have("docker-registry") {
        eprintln!(
            "SKIPPED: skopeo or docker-registry not installed (../shared/scripts/apt-tools.sh)"
        );
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let _guard = RegistryGuard {
        script: script.clone(),
        dir: dir.path().to_path_buf(),
    };
    let out = Command::new("bash")
        .arg(&script)
        .arg("start")
        .arg(dir.path())
        .arg(port.to_string())
        .output()
        .expect("registry.sh");
    assert!(
        out.status.success(),
        "registry did not start: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let addr = format!("127.0.0.1:{port}");

    let options = OpenOptions {
        insecure_registry: true,
        ..OpenOptions::default()
    };
    for suite in suites {
        let root = fixtures.join(suite);
        push(
            &root.join("oci"),
            suite,
            &format!("{addr}/moat/debian:{suite}"),
        );
        let expected =
            std::fs::read(root.join("rootfs/var/lib/dpkg/status")).expect("rootfs status");
        let local = Image::open(
            &Target::parse(&format!("oci:{}:{suite}", root.join("oci").display())).expect("target"),
            &options,
        )
        .expect("open local");

        let by_tag =
            Target::parse(&format!("registry:{addr}/moat/debian:{suite}")).expect("target");
        let image = Image::open(&by_tag, &options).unwrap_or_else(|e| panic!("{by_tag}: {e}"));
        let view = image
            .collect(&|m| {
                if m.path == "var/lib/dpkg/status" {
                    Select::Content
                } else {
                    Select::Skip
                }
            })
            .unwrap_or_else(|e| panic!("{by_tag}: {e}"));
        let got = view
            .get("var/lib/dpkg/status")
            .and_then(|e| e.content.as_deref());
        assert!(
            got == Some(&expected[..]),
            "{by_tag}: dpkg status differs from the rootfs"
        );
        // skopeo copies blobs unchanged, so the registry serves the same config and layers.
        assert_eq!(
            image.info().config_digest,
            local.info().config_digest,
            "{by_tag}"
        );
        assert_eq!(image.info().layers, local.info().layers, "{by_tag}");
        assert_eq!(
            image.info().repo_tags,
            vec![format!("{addr}/moat/debian:{suite}")]
        );
        assert_eq!(image.config(), local.config());

        // The same image by digest.
        let digest = image
            .info()
            .manifest_digest
            .clone()
            .expect("manifest digest");
        let by_digest =
            Target::parse(&format!("registry:{addr}/moat/debian@{digest}")).expect("target");
        let again =
            Image::open(&by_digest, &options).unwrap_or_else(|e| panic!("{by_digest}: {e}"));
        assert_eq!(
            again.info().manifest_digest.as_deref(),
            Some(digest.as_str())
        );

        // A tag that is not there: a 404 naming the URL.
        let missing =
            Target::parse(&format!("registry:{addr}/moat/debian:no-such-tag")).expect("target");
        let err = Image::open(&missing, &options)
            .err()
            .expect("missing tag must fail")
            .to_string();
        assert!(
            err.contains("404") && err.contains("/v2/moat/debian/manifests/no-such-tag"),
            "{err}"
        );
    }

    // A multi-platform index pushed with `skopeo copy --all`, pulled for each platform.
    let multi = dir.path().join("multi");
    let amd = vec![common::Layer::gz(common::layer(&[common::E::File(
        "arch", b"amd64",
    )]))];
    let arm = vec![common::Layer::zst(common::layer(&[common::E::File(
        "arch", b"arm64",
    )]))];
    let (amd_d, amd_s) = common::put_image(&multi, &amd, "amd64", true);
    let (arm_d, arm_s) = common::put_image(&multi, &arm, "arm64", true);
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": amd_d, "size": amd_s,
             "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm_d, "size": arm_s,
             "platform": {"os": "linux", "architecture": "arm64"}},
        ]
    }))
    .expect("index");
    let id = common::put_blob(&multi, &index);
    common::write_index(
        &multi,
        serde_json::json!([{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": id, "size": index.len(),
                            "annotations": {"org.opencontainers.image.ref.name": "multi"}}]),
    );
    let out = Command::new("skopeo")
        .args(["copy", "-q", "--all", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:multi", multi.display()))
        .arg(format!("docker://{addr}/moat/multi:1"))
        .output()
        .expect("skopeo");
    assert!(
        out.status.success(),
        "skopeo copy --all: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t = Target::parse(&format!("registry:{addr}/moat/multi:1")).expect("target");
    for (platform, want) in [
        ("linux/amd64", &b"amd64"[..]),
        ("linux/arm64", &b"arm64"[..]),
    ] {
        let o = OpenOptions {
            platform: platform.into(),
            ..options.clone()
        };
        let image = Image::open(&t, &o).unwrap_or_else(|e| panic!("{t} {platform}: {e}"));
        let v = image
            .collect(&|_| Select::Content)
            .unwrap_or_else(|e| panic!("{t} {platform}: {e}"));
        assert_eq!(
            v.get("arch").and_then(|e| e.content.as_deref()),
            Some(want),
            "{platform}"
        );
    }

    // Plain HTTP is refused unless asked for.
    let strict = Target::parse(&format!("registry:{addr}/moat/debian:bookworm")).expect("target");
    let err = Image::open(&strict, &OpenOptions::default())
        .err()
        .expect("https only")
        .to_string();
    eprintln!("https to a plain registry: {err}");
    assert!(
        err.contains(&addr) && err.contains("--insecure-registry"),
        "{err}"
    );
}
