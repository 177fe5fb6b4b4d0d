//! Hostile images: each must give an `ImageError` naming the layer, entry or blob — never a panic, a
//! hang, a read of the host's files or a write outside.

mod common;

use common::{E, Layer, layer};
use moat_image::{Image, ImageError, Limits, OpenOptions, Select, Target};

fn open(target: &str, options: &OpenOptions) -> Result<Image, ImageError> {
    Image::open(&Target::parse(target).expect("target"), options)
}

/// Opens and reads everything; the error, as a user would see it.
fn read_all(target: &str, options: &OpenOptions) -> Result<moat_image::FileView, String> {
    let image = open(target, options).map_err(|e| e.to_string())?;
    image
        .collect(&|_| Select::Content)
        .map_err(|e| e.to_string())
}

fn one_layer_oci(dir: &std::path::Path, l: Layer) -> String {
    common::oci(dir, &[l]);
    format!("oci:{}", dir.display())
}

#[test]
fn dotdot_entry_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = dir.path().join("a/b/oci");
    let t = one_layer_oci(
        &layout,
        Layer::gz(layer(&[
            E::File("etc/ok", b"ok"),
            E::File("../../x", b"evil"),
        ])),
    );
    let err = read_all(&t, &OpenOptions::default()).expect_err("must fail");
    assert!(
        err.contains("\"../../x\"") && err.contains("layer 0") && err.contains("'..'"),
        "{err}"
    );
    assert!(!dir.path().join("a/x").exists() && !dir.path().join("x").exists());
    // The same in a hard-link target.
    let layout2 = dir.path().join("hl");
    let t = one_layer_oci(
        &layout2,
        Layer::plain(layer(&[E::Hardlink("etc/passwd", "../../../etc/shadow")])),
    );
    let err = read_all(&t, &OpenOptions::default()).expect_err("must fail");
    assert!(err.contains("../../../etc/shadow"), "{err}");
}

#[test]
fn absolute_symlink_resolves_inside_the_image_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = one_layer_oci(
        dir.path(),
        Layer::gz(layer(&[
            E::File("etc/passwd", b"root:x:0:0:image:/root:/bin/sh\n"),
            E::Symlink("var/lib/dpkg/status", "/etc/shadow"),
            E::Symlink("etc/pw-link", "/etc/passwd"),
        ])),
    );
    let v =
        read_all(&t, &OpenOptions::default()).expect("reading is fine; following is the question");
    // Resolved in the image, where there is no etc/shadow: nothing, and never the host's file.
    assert!(v.resolve("var/lib/dpkg/status").is_none());
    let err = v
        .resolve_checked("var/lib/dpkg/status")
        .expect_err("dangling")
        .to_string();
    assert!(
        err.contains("var/lib/dpkg/status -> /etc/shadow") && err.contains("not in the image"),
        "{err}"
    );
    // An absolute link to a file the image has gets the image's file.
    let pw = v
        .resolve_checked("etc/pw-link")
        .expect("inside")
        .expect("present");
    assert_eq!(
        pw.content.as_deref(),
        Some(&b"root:x:0:0:image:/root:/bin/sh\n"[..])
    );
}

#[test]
fn symlink_chain_leaving_the_image_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let t = one_layer_oci(
        dir.path(),
        Layer::gz(layer(&[
            E::Symlink("var/lib/dpkg", "../../hop"),
            E::Symlink("hop", "../../../../etc"),
            E::Symlink("abs", "/../../../etc/hostname"),
        ])),
    );
    let v = read_all(&t, &OpenOptions::default()).expect("read");
    let err = v
        .resolve_checked("var/lib/dpkg/status")
        .expect_err("escapes")
        .to_string();
    assert!(
        err.contains("var/lib/dpkg -> ../../hop")
            && err.contains("hop -> ../../../../etc")
            && err.contains("above the image root"),
        "{err}"
    );
    let err = v.resolve_checked("abs").expect_err("escapes").to_string();
    assert!(err.contains("abs -> /../../../etc/hostname"), "{err}");
    // The lenient resolver clamps at the root like the kernel: still inside, and absent here.
    assert!(v.resolve("var/lib/dpkg/status").is_none());
    assert!(v.resolve("abs").is_none());
}

#[test]
fn whiteout_of_dotdot_is_refused() {
    for name in ["etc/.wh...", "etc/.wh..", ".wh..."] {
        let dir = tempfile::tempdir().expect("tempdir");
        let lower = Layer::gz(layer(&[E::File("etc/passwd", b"x"), E::File("keep", b"k")]));
        let upper = Layer::gz(layer(&[E::File(name, b"")]));
        common::oci(dir.path(), &[lower, upper]);
        let err = read_all(
            &format!("oci:{}", dir.path().display()),
            &OpenOptions::default(),
        )
        .expect_err("must fail");
        assert!(
            err.contains(&format!("{name:?}"))
                && err.contains("layer 1")
                && err.contains("whiteout"),
            "{name}: {err}"
        );
    }
}

#[test]
fn truncated_layers_are_errors() {
    let big: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let tar = layer(&[E::File("data", &big), E::File("after", b"a")]);
    // gzip cut in half, with digest and size matching the cut bytes: the decompressor must notice.
    let dir = tempfile::tempdir().expect("tempdir");
    let gz = common::gzip(&tar);
    let cut = Layer {
        stored: gz[..gz.len() / 2].to_vec(),
        tar: tar.clone(),
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip",
    };
    let err = read_all(&one_layer_oci(dir.path(), cut), &OpenOptions::default())
        .expect_err("truncated gzip");
    assert!(
        err.contains("layer 0") && err.contains("truncated or corrupt"),
        "{err}"
    );
    // A plain tar cut in the middle of a file.
    let dir = tempfile::tempdir().expect("tempdir");
    let cut = Layer {
        stored: tar[..tar.len() / 3].to_vec(),
        tar: tar.clone(),
        media_type: "application/vnd.oci.image.layer.v1.tar",
    };
    let err = read_all(&one_layer_oci(dir.path(), cut), &OpenOptions::default())
        .expect_err("truncated tar");
    assert!(err.contains("layer 0"), "{err}");
    // A blob shortened on disk after the manifest was written.
    let dir = tempfile::tempdir().expect("tempdir");
    let l = Layer::gz(tar.clone());
    let d = common::sha256(&l.stored);
    let t = one_layer_oci(dir.path(), l);
    let p = common::blob_path(dir.path(), &d);
    let bytes = std::fs::read(&p).expect("blob");
    std::fs::write(&p, &bytes[..bytes.len() - 100]).expect("cut");
    let err = read_all(&t, &OpenOptions::default()).expect_err("short blob");
    assert!(err.contains(&d[7..]), "{err}");
    // A docker archive whose layer member is cut (the archive itself ends early).
    let dir = tempfile::tempdir().expect("tempdir");
    let docker = dir.path().join("d.tar");
    common::docker_archive(&docker, &[Layer::plain(tar.clone())]);
    let bytes = std::fs::read(&docker).expect("archive");
    std::fs::write(&docker, &bytes[..bytes.len() / 2]).expect("cut");
    let err = match open(
        &format!("docker-archive:{}", docker.display()),
        &OpenOptions::default(),
    ) {
        Err(e) => e.to_string(),
        Ok(img) => img
            .collect(&|_| Select::Content)
            .expect_err("cut archive")
            .to_string(),
    };
    assert!(err.contains("d.tar"), "{err}");
}

#[test]
fn layer_digest_mismatch_names_the_blob() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = Layer::gz(layer(&[E::File("etc/os-release", b"ID=debian\n")]));
    let d = common::sha256(&good.stored);
    let t = one_layer_oci(dir.path(), good);
    // Same size, different bytes: a swapped blob.
    let evil = common::gzip(&layer(&[E::File("etc/os-release", b"ID=alpine\n")]));
    std::fs::write(common::blob_path(dir.path(), &d), &evil).expect("swap");
    let err = read_all(&t, &OpenOptions::default()).expect_err("mismatch");
    assert!(
        err.contains(&d) && err.contains("does not match its digest"),
        "{err}"
    );

    // A config whose diff_id disagrees with the layer (stored digest right, content wrong).
    let dir = tempfile::tempdir().expect("tempdir");
    let mut l = Layer::gz(layer(&[E::File("a", b"1")]));
    l.tar = layer(&[E::File("a", b"2")]);
    let t = one_layer_oci(dir.path(), l);
    let err = read_all(&t, &OpenOptions::default()).expect_err("diff_id mismatch");
    assert!(
        err.contains("diff_id") && err.contains("does not match"),
        "{err}"
    );

    // A manifest blob edited in place.
    let dir = tempfile::tempdir().expect("tempdir");
    let md = common::oci(dir.path(), &[Layer::gz(layer(&[E::File("a", b"1")]))]);
    let p = common::blob_path(dir.path(), &md);
    let mut m = std::fs::read(&p).expect("manifest");
    m.push(b' ');
    std::fs::write(&p, m).expect("edit");
    let err = open(
        &format!("oci:{}", dir.path().display()),
        &OpenOptions::default(),
    )
    .err()
    .expect("edited manifest")
    .to_string();
    assert!(
        err.contains(&md[7..]) && err.contains("does not match its digest"),
        "{err}"
    );
}

#[test]
fn decompression_bombs_stop_at_the_layer_limit() {
    let zeros = vec![0u8; 8 << 20];
    let tar = layer(&[E::File("bomb", &zeros)]);
    let small = OpenOptions {
        limits: Limits {
            max_layer_size: 1 << 20,
            ..Limits::default()
        },
        ..OpenOptions::default()
    };
    for (name, l) in [
        ("gzip", Layer::gz(tar.clone())),
        ("zstd", Layer::zst(tar.clone())),
    ] {
        assert!(l.stored.len() < 200_000, "{name}: a bomb should be small");
        let dir = tempfile::tempdir().expect("tempdir");
        let t = one_layer_oci(dir.path(), l);
        let err = read_all(&t, &small).expect_err("bomb");
        assert!(
            err.contains("limit exceeded")
                && err.contains("max_layer_size")
                && err.contains("1048576"),
            "{name}: {err}"
        );
        // Selecting nothing does not help: the limit is on the stream, not on what is kept.
        let image = open(&t, &small).expect("open");
        assert!(image.collect(&|_| Select::Skip).is_err(), "{name}");
        assert!(
            read_all(&t, &OpenOptions::default()).is_ok(),
            "{name}: fine under the default limit"
        );
    }
    // The ratio guard catches a bomb long before max_layer_size.
    for (name, l) in [
        ("gzip", Layer::gz(tar.clone())),
        ("zstd", Layer::zst(tar.clone())),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let t = one_layer_oci(dir.path(), l);
        let ratio = OpenOptions {
            limits: Limits {
                ratio_check_after: 1 << 20,
                ..Limits::default()
            },
            ..OpenOptions::default()
        };
        let err = read_all(&t, &ratio).expect_err("ratio");
        assert!(
            err.contains("max_compression_ratio")
                && err.contains("100:1")
                && err.contains("layer 0"),
            "{name}: {err}"
        );
    }
    // A file's content is bounded too.
    let dir = tempfile::tempdir().expect("tempdir");
    let t = one_layer_oci(dir.path(), Layer::gz(tar));
    let tight = OpenOptions {
        limits: Limits {
            max_file_content: 1 << 20,
            ..Limits::default()
        },
        ..OpenOptions::default()
    };
    let err = read_all(&t, &tight).expect_err("big file");
    assert!(
        err.contains("bomb") && err.contains("content limit"),
        "{err}"
    );
    // And the number of entries.
    let many: Vec<String> = (0..50).map(|i| format!("f{i}")).collect();
    let entries: Vec<E> = many.iter().map(|n| E::File(n, b"")).collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let t = one_layer_oci(dir.path(), Layer::plain(layer(&entries)));
    let few = OpenOptions {
        limits: Limits {
            max_entries: 10,
            ..Limits::default()
        },
        ..OpenOptions::default()
    };
    let err = read_all(&t, &few).expect_err("entries");
    assert!(err.contains("more than 10 entries"), "{err}");
}

#[test]
fn missing_blobs_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let l = Layer::gz(layer(&[E::File("a", b"1")]));
    let d = common::sha256(&l.stored);
    let t = one_layer_oci(dir.path(), l);
    std::fs::remove_file(common::blob_path(dir.path(), &d)).expect("rm");
    let err = read_all(&t, &OpenOptions::default()).expect_err("missing layer");
    assert!(err.contains(&d), "{err}");
    // Missing config, and the same layout as an archive.
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = dir.path().join("oci");
    let md = common::oci(&layout, &[Layer::gz(layer(&[E::File("a", b"1")]))]);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(common::blob_path(&layout, &md)).expect("m"))
            .expect("json");
    let cd = manifest["config"]["digest"]
        .as_str()
        .expect("config digest")
        .to_string();
    std::fs::remove_file(common::blob_path(&layout, &cd)).expect("rm");
    let err = open(
        &format!("oci:{}", layout.display()),
        &OpenOptions::default(),
    )
    .err()
    .expect("missing config")
    .to_string();
    assert!(err.contains(&cd[7..]), "{err}");
    let archive = dir.path().join("oci.tar");
    common::tar_dir(&layout, &archive);
    let err = open(
        &format!("oci-archive:{}", archive.display()),
        &OpenOptions::default(),
    )
    .err()
    .expect("missing config")
    .to_string();
    assert!(err.contains(&cd[7..]) && err.contains("oci.tar"), "{err}");
}

#[test]
fn malformed_documents_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("index.json"), b"{not json").expect("index");
    let err = open(
        &format!("oci:{}", dir.path().display()),
        &OpenOptions::default(),
    )
    .err()
    .expect("bad index")
    .to_string();
    assert!(
        err.contains("index.json") && err.contains("invalid JSON"),
        "{err}"
    );
    // A digest that would be a path out of the layout.
    std::fs::write(
        dir.path().join("index.json"),
        br#"{"schemaVersion":2,"manifests":[{"digest":"sha256:../../../../etc/passwd","size":1}]}"#,
    )
    .expect("index");
    let err = open(
        &format!("oci:{}", dir.path().display()),
        &OpenOptions::default(),
    )
    .err()
    .expect("bad digest")
    .to_string();
    assert!(
        err.contains("../../../../etc/passwd") && err.contains("64 lowercase hex"),
        "{err}"
    );
    // A docker archive that is not one (an OCI archive), and a compressed one.
    let layout = dir.path().join("oci");
    common::oci(&layout, &[Layer::gz(layer(&[E::File("a", b"1")]))]);
    let f = dir.path().join("x.tar");
    common::tar_dir(&layout, &f);
    let err = open(
        &format!("docker-archive:{}", f.display()),
        &OpenOptions::default(),
    )
    .err()
    .expect("not docker")
    .to_string();
    assert!(
        err.contains("x.tar") && err.contains("no manifest.json") && err.contains("oci-archive:"),
        "{err}"
    );
    let gz = dir.path().join("x.tar.gz");
    std::fs::write(&gz, common::gzip(&std::fs::read(&f).expect("tar"))).expect("gz");
    let err = open(
        &format!("oci-archive:{}", gz.display()),
        &OpenOptions::default(),
    )
    .err()
    .expect("compressed")
    .to_string();
    assert!(
        err.contains("x.tar.gz") && err.contains("compressed"),
        "{err}"
    );
    // A manifest that is JSON but not a manifest.
    let dir = tempfile::tempdir().expect("tempdir");
    let d = common::put_blob(dir.path(), br#"{"schemaVersion":2,"layers":[]}"#);
    common::write_index(dir.path(), serde_json::json!([{"digest": d, "size": 31}]));
    let err = open(
        &format!("oci:{}", dir.path().display()),
        &OpenOptions::default(),
    )
    .err()
    .expect("no config")
    .to_string();
    assert!(err.contains(&d) && err.contains("no config"), "{err}");
}

#[test]
fn a_fifo_blob_is_refused_not_waited_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let l = Layer::gz(layer(&[E::File("a", b"1")]));
    let d = common::sha256(&l.stored);
    let t = one_layer_oci(dir.path(), l);
    let p = common::blob_path(dir.path(), &d);
    std::fs::remove_file(&p).expect("rm");
    let ok = std::process::Command::new("mkfifo")
        .arg(&p)
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        eprintln!("SKIPPED: mkfifo not available");
        return;
    }
    let err = read_all(&t, &OpenOptions::default()).expect_err("fifo");
    assert!(
        err.contains(&d) && err.contains("not a regular file"),
        "{err}"
    );
}
