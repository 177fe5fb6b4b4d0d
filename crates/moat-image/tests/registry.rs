//! A real OCI registry (distribution v2, started by the shared script on loopback): push the Debian
//! images with skopeo, pull them back through `registry:` and compare with the root filesystem.

mod common;

use moat_image::{Image, OpenOptions, Select, Target};
use moat_testkit::registry::{Registry, push};

#[test]
fn pull_debian_images_from_a_real_registry() {
    let suites = moat_testkit::fixtures::debian_any(&["bookworm", "bullseye"]);
    if suites.is_empty() {
        return;
    }
    let Some(fixtures) = moat_testkit::fixtures::fixtures_root() else {
        return;
    };
    let Some(registry) = Registry::start() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let addr = registry.addr();

    let options = OpenOptions {
        insecure_registry: true,
        ..OpenOptions::default()
    };
    for suite in suites {
        let root = fixtures.join(suite);
        push(
            &format!("oci:{}:{suite}", root.join("oci").display()),
            &format!("{addr}/moat/debian:{suite}"),
            &[],
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
    push(
        &format!("oci:{}:multi", multi.display()),
        &format!("{addr}/moat/multi:1"),
        &["--all"],
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
