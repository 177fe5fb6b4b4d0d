//! Issue 17: GNU long-name / long-link and PAX headers that claim gigabytes, in a layer (plain and
//! zstd) and in a docker-archive member. `tar` reads those bodies whole into memory; moat must refuse
//! them at the header, exit 2 naming the layer or archive and the limit, with a small peak RSS and no
//! write anywhere. The huge parts are holes in sparse files or zeros streamed through zstd.

mod hostile;

use std::fs::File;
use std::io::Write;

use hostile::{Part, header, moat_in, oci_layout, stream_tar, tree, write_tar};
use tar::EntryType;

const GIB: u64 = 1 << 30;

fn sha256_of_parts(parts: &[Part]) -> (String, u64) {
    struct H(sha2::Sha256, u64);
    impl Write for H {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            sha2::Digest::update(&mut self.0, b);
            self.1 += b.len() as u64;
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut h = H(sha2::Digest::new(), 0);
    stream_tar(&mut h, parts);
    (hex::encode(sha2::Digest::finalize(h.0)), h.1)
}

#[test]
fn zstd_layer_with_a_3_gib_gnu_long_name_is_refused_at_the_header() {
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = dir.path().join("img");
    let parts = [
        Part::Header(header("", EntryType::GNULongName, 3 * GIB)),
        Part::Zeros(3 * GIB),
        Part::Header(header("etc/x", EntryType::Regular, 2)),
        Part::Bytes(b"hi"),
    ];
    let mut enc = zstd::stream::Encoder::new(Vec::new(), 1).expect("zstd");
    stream_tar(&mut enc, &parts);
    let blob = enc.finish().expect("zstd");
    assert!(
        blob.len() < 1 << 20,
        "the layer is small: {} bytes",
        blob.len()
    );
    let digest = hostile::sha256_hex(&blob);
    std::fs::create_dir_all(layout.join("blobs/sha256")).expect("blobs");
    std::fs::write(layout.join("blobs/sha256").join(&digest), &blob).expect("blob");
    oci_layout(
        &layout,
        &format!("sha256:{digest}"),
        blob.len() as u64,
        "application/vnd.oci.image.layer.v1.tar+zstd",
    );
    let target = format!("oci:{}", layout.display());
    let before = tree(dir.path());
    let run = moat_in(dir.path(), &["sbom", &target, "--format", "json"], &[]);
    run.assert_input_error(&[
        &digest[..12],
        "GNU long-name",
        "3221225472",
        "max_tar_extension",
        "MOAT_MAX_TAR_EXTENSION",
    ]);
    run.assert_peak_below_mib(96);
    assert_eq!(tree(dir.path()), before, "moat wrote nothing");
}

#[test]
fn plain_layer_with_a_1_gib_pax_header_is_refused_at_the_header() {
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = dir.path().join("img");
    let parts = [
        Part::Header(header("", EntryType::XHeader, GIB)),
        Part::Zeros(GIB),
        Part::Header(header("etc/x", EntryType::Regular, 2)),
        Part::Bytes(b"hi"),
    ];
    let (digest, size) = sha256_of_parts(&parts);
    std::fs::create_dir_all(layout.join("blobs/sha256")).expect("blobs");
    let mut f = File::create(layout.join("blobs/sha256").join(&digest)).expect("blob");
    let written = write_tar(&mut f, &parts);
    assert_eq!(written, size);
    drop(f);
    oci_layout(
        &layout,
        &format!("sha256:{digest}"),
        size,
        "application/vnd.oci.image.layer.v1.tar",
    );
    let target = format!("oci:{}", layout.display());
    let before = tree(dir.path());
    let run = moat_in(dir.path(), &["sbom", &target, "--format", "json"], &[]);
    run.assert_input_error(&[
        &digest[..12],
        "PAX extended",
        "1073741824",
        "max_tar_extension",
    ]);
    run.assert_peak_below_mib(96);
    assert_eq!(tree(dir.path()), before, "moat wrote nothing");
    // The limit is the one MOAT_MAX_TAR_EXTENSION sets.
    let lowered = moat_in(
        dir.path(),
        &["sbom", &target, "--format", "json"],
        &[("MOAT_MAX_TAR_EXTENSION", "1024")],
    );
    lowered.assert_input_error(&["1024 byte limit"]);
}

/// A docker-archive whose only layer member holds a 3 GiB long name, and one whose own member has a
/// 3 GiB long name: both sparse files of about 3 GiB that take a few KiB on disk.
#[test]
fn docker_archive_long_names_in_a_layer_and_in_a_member() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": []}
    }))
    .expect("config");
    let manifest = serde_json::to_vec(&serde_json::json!([
        {"Config": "config.json", "RepoTags": ["x/y:1"], "Layers": ["l/layer.tar"]}
    ]))
    .expect("manifest");
    // 1. In the layer member.
    let layer_size = 512 + 3 * GIB + 512 + 512 + 1024;
    let a1 = dir.path().join("layer-longname.tar");
    let mut f = File::create(&a1).expect("archive");
    write_tar(
        &mut f,
        &[
            Part::Header(header(
                "config.json",
                EntryType::Regular,
                config.len() as u64,
            )),
            Part::Bytes(&config),
            Part::Header(header(
                "manifest.json",
                EntryType::Regular,
                manifest.len() as u64,
            )),
            Part::Bytes(&manifest),
            Part::Header(header("l/layer.tar", EntryType::Regular, layer_size)),
            // The layer: a long-name header, its 3 GiB body (a hole), a file, the end blocks.
            Part::Header(header("", EntryType::GNULongName, 3 * GIB)),
            Part::Zeros(3 * GIB),
            Part::Header(header("etc/x", EntryType::Regular, 2)),
            Part::Bytes(b"hi"),
            Part::Zeros(1024),
        ],
    );
    drop(f);
    let before = tree(dir.path());
    let t1 = format!("docker-archive:{}", a1.display());
    let run = moat_in(dir.path(), &["sbom", &t1, "--format", "json"], &[]);
    run.assert_input_error(&["l/layer.tar", "GNU long-name", "max_tar_extension"]);
    run.assert_peak_below_mib(96);
    // 2. In the archive itself.
    let a2 = dir.path().join("member-longname.tar");
    let mut f = File::create(&a2).expect("archive");
    write_tar(
        &mut f,
        &[
            Part::Header(header(
                "config.json",
                EntryType::Regular,
                config.len() as u64,
            )),
            Part::Bytes(&config),
            Part::Header(header("", EntryType::GNULongName, 3 * GIB)),
            Part::Zeros(3 * GIB),
            Part::Header(header(
                "manifest.json",
                EntryType::Regular,
                manifest.len() as u64,
            )),
            Part::Bytes(&manifest),
        ],
    );
    drop(f);
    let before2 = tree(dir.path());
    let t2 = format!("docker-archive:{}", a2.display());
    let run = moat_in(dir.path(), &["sbom", &t2, "--format", "json"], &[]);
    run.assert_input_error(&[
        "member-longname.tar",
        "archive member GNU long-name",
        "max_tar_extension",
    ]);
    run.assert_peak_below_mib(96);
    assert!(before.is_subset(&before2));
    assert_eq!(tree(dir.path()), before2, "moat wrote nothing");
}
