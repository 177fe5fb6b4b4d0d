//! Builds small synthetic images (OCI layouts, OCI and docker archives) from tar entries written
//! byte by byte, so tests can make exactly the hostile layers they need.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

/// One tar entry; names are written raw (no sanitising), so `../../x` is possible.
pub enum E<'a> {
    File(&'a str, &'a [u8]),
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
}

fn header(name: &str, kind: tar::EntryType, size: u64, link: &str) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    {
        let raw = h.as_old_mut();
        raw.name[..name.len()].copy_from_slice(name.as_bytes());
        raw.linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(if kind == tar::EntryType::Directory {
        0o755
    } else {
        0o644
    });
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_cksum();
    h
}

/// An uncompressed layer tar.
pub fn layer(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let (h, data): (tar::Header, &[u8]) = match e {
            E::File(n, d) => (header(n, tar::EntryType::Regular, d.len() as u64, ""), d),
            E::Dir(n) => (header(n, tar::EntryType::Directory, 0, ""), &[]),
            E::Symlink(n, t) => (header(n, tar::EntryType::Symlink, 0, t), &[]),
            E::Hardlink(n, t) => (header(n, tar::EntryType::Link, 0, t), &[]),
        };
        b.append(&h, data).expect("append");
    }
    b.into_inner().expect("tar")
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 3).expect("zstd")
}

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Writes a blob into an OCI layout and returns its digest.
pub fn put_blob(layout: &Path, data: &[u8]) -> String {
    let d = sha256(data);
    let dir = layout.join("blobs/sha256");
    std::fs::create_dir_all(&dir).expect("blobs dir");
    std::fs::write(dir.join(&d[7..]), data).expect("blob");
    d
}

pub fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    layout.join("blobs/sha256").join(&digest[7..])
}

/// A layer as stored, with its uncompressed tar (for the diff_id).
pub struct Layer {
    pub stored: Vec<u8>,
    pub tar: Vec<u8>,
    pub media_type: &'static str,
}

impl Layer {
    pub fn plain(tar: Vec<u8>) -> Layer {
        Layer {
            stored: tar.clone(),
            tar,
            media_type: "application/vnd.oci.image.layer.v1.tar",
        }
    }
    pub fn gz(tar: Vec<u8>) -> Layer {
        Layer {
            stored: gzip(&tar),
            tar,
            media_type: "application/vnd.oci.image.layer.v1.tar+gzip",
        }
    }
    pub fn zst(tar: Vec<u8>) -> Layer {
        Layer {
            stored: zstd(&tar),
            tar,
            media_type: "application/vnd.oci.image.layer.v1.tar+zstd",
        }
    }
}

pub fn config_json(layers: &[Layer], arch: &str) -> Vec<u8> {
    let diff_ids: Vec<String> = layers.iter().map(|l| sha256(&l.tar)).collect();
    let history: Vec<serde_json::Value> = (0..layers.len())
        .map(|i| serde_json::json!({"created_by": format!("step {i}")}))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "architecture": arch, "os": "linux",
        "config": {"User": "app", "Env": ["A=1"], "Entrypoint": ["/bin/app"], "Cmd": null, "WorkingDir": "/srv",
                   "ExposedPorts": {"8080/tcp": {}}, "Labels": {"k": "v"},
                   "Healthcheck": {"Test": ["CMD", "true"]}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }))
    .expect("config")
}

/// Writes config, layers and an image manifest; returns (manifest digest, manifest size).
pub fn put_image(
    layout: &Path,
    layers: &[Layer],
    arch: &str,
    media_types: bool,
) -> (String, usize) {
    let config = config_json(layers, arch);
    let cd = put_blob(layout, &config);
    let descs: Vec<serde_json::Value> = layers
        .iter()
        .map(|l| {
            let d = put_blob(layout, &l.stored);
            serde_json::json!({"mediaType": l.media_type, "digest": d, "size": l.stored.len()})
        })
        .collect();
    let mut m = serde_json::json!({
        "schemaVersion": 2,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cd, "size": config.len()},
        "layers": descs,
    });
    if media_types {
        m["mediaType"] = "application/vnd.oci.image.manifest.v1+json".into();
    }
    let bytes = serde_json::to_vec(&m).expect("manifest");
    (put_blob(layout, &bytes), bytes.len())
}

pub fn write_index(layout: &Path, manifests: serde_json::Value) {
    std::fs::write(
        layout.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .expect("oci-layout");
    let index = serde_json::json!({"schemaVersion": 2, "manifests": manifests});
    std::fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).expect("index"),
    )
    .expect("index.json");
}

/// A one-image OCI layout tagged `latest` (manifests without `mediaType`, as umoci writes them).
pub fn oci(layout: &Path, layers: &[Layer]) -> String {
    let (d, size) = put_image(layout, layers, "amd64", false);
    write_index(
        layout,
        serde_json::json!([{"digest": d, "size": size, "annotations": {"org.opencontainers.image.ref.name": "latest"}}]),
    );
    d
}

/// Tars a directory's files (an OCI layout) into an archive.
pub fn tar_dir(dir: &Path, out: &Path) {
    let mut b = tar::Builder::new(std::fs::File::create(out).expect("archive"));
    b.append_dir_all(".", dir).expect("tar dir");
    b.finish().expect("finish");
}

/// A `docker save` archive with per-layer directories (`ID/layer.tar`), as older Docker writes.
pub fn docker_archive(out: &Path, layers: &[Layer]) {
    let config = config_json(layers, "amd64");
    let cname = format!("{}.json", &sha256(&config)[7..]);
    let mut b = tar::Builder::new(std::fs::File::create(out).expect("archive"));
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, data).expect("append");
    };
    add(&cname, &config);
    let mut names = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let id = format!("{:064x}", i + 1);
        add(&format!("{id}/layer.tar"), &l.stored);
        add(&format!("{id}/VERSION"), b"1.0");
        names.push(format!("{id}/layer.tar"));
    }
    let manifest =
        serde_json::json!([{"Config": cname, "RepoTags": ["example/app:1"], "Layers": names}]);
    add(
        "manifest.json",
        &serde_json::to_vec(&manifest).expect("manifest"),
    );
    b.finish().expect("finish");
}
