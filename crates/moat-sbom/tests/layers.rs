//! Layer attribution on a two-layer docker archive built here: a package is attributed to the layer
//! that unpacked it (its `var/lib/dpkg/info/*.list`), not to the last layer that rewrote the status file.

use moat_image::{OpenOptions, Target};
use sha2::{Digest, Sha256};

fn layer(files: &[(&str, &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, body) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, path, body.as_bytes())
            .expect("append");
    }
    b.into_inner().expect("tar")
}

const A: &str =
    "Package: base-a\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.0-1\n\n";
const B: &str = "Package: added-b\nStatus: install ok installed\nArchitecture: all\nSource: bsrc (2.0)\nVersion: 2.0-1\n\n";

#[test]
fn packages_are_attributed_to_the_layer_that_installed_them() {
    let l1 = layer(&[
        ("etc/os-release", "ID=debian\nVERSION_ID=12\n"),
        ("var/lib/dpkg/status", A),
        ("var/lib/dpkg/info/base-a:amd64.list", "/x\n"),
    ]);
    let both = format!("{A}{B}");
    let l2 = layer(&[
        ("var/lib/dpkg/status", &both),
        ("var/lib/dpkg/info/added-b.list", "/y\n"),
    ]);
    let d1 = format!("sha256:{}", hex::encode(Sha256::digest(&l1)));
    let d2 = format!("sha256:{}", hex::encode(Sha256::digest(&l2)));
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":["{d1}","{d2}"]}}}}"#
    );
    let manifest =
        r#"[{"Config":"config.json","RepoTags":["test:1"],"Layers":["l1.tar","l2.tar"]}]"#;
    let mut outer = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("manifest.json", manifest.as_bytes()),
        ("config.json", config.as_bytes()),
        ("l1.tar", &l1[..]),
        ("l2.tar", &l2[..]),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        outer.append_data(&mut h, name, data).expect("append");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let archive = dir.path().join("two-layers.tar");
    std::fs::write(&archive, outer.into_inner().expect("tar")).expect("write");
    let inv = moat_sbom::sbom_of(&Target::DockerArchive(archive), &OpenOptions::default())
        .expect("catalog");
    let layer_of = |n: &str| {
        inv.packages
            .iter()
            .find(|p| p.name == n)
            .and_then(|p| p.layer.clone())
    };
    assert_eq!(layer_of("base-a"), Some(d1));
    assert_eq!(layer_of("added-b"), Some(d2));
    let b = inv
        .packages
        .iter()
        .find(|p| p.name == "added-b")
        .expect("b");
    assert_eq!(
        b.source
            .as_ref()
            .map(|s| (s.name.as_str(), s.version.as_str())),
        Some(("bsrc", "2.0"))
    );
    assert_eq!(
        b.purl.to_string(),
        "pkg:deb/debian/added-b@2.0-1?arch=all&distro=debian-12"
    );
}
