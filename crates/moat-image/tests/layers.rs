//! Layer semantics on synthetic images: compressions, whiteouts of both kinds, files replacing
//! directories, hard links, multi-platform indexes, docker archives with per-layer directories.

mod common;

use common::{E, Layer, layer};
use moat_image::{EntryKind, FileView, Image, OpenOptions, Select, Target};

fn open(target: &str, options: &OpenOptions) -> Image {
    Image::open(&Target::parse(target).expect("target"), options)
        .unwrap_or_else(|e| panic!("{target}: {e}"))
}

fn all(image: &Image) -> FileView {
    image
        .collect(&|_| Select::Content)
        .unwrap_or_else(|e| panic!("collect: {e}"))
}

fn content<'a>(v: &'a FileView, p: &str) -> Option<&'a [u8]> {
    v.get(p).and_then(|e| e.content.as_deref())
}

fn lower_and_upper() -> Vec<Vec<u8>> {
    let lower = layer(&[
        E::Dir("etc/"),
        E::File("etc/a", b"a0"),
        E::File("etc/b", b"b0"),
        E::Dir("etc/dir/"),
        E::File("etc/dir/x", b"x0"),
        E::Dir("etc/dir/sub/"),
        E::File("etc/dir/sub/deep", b"d0"),
        E::Dir("usr/share/doc/"),
        E::File("usr/share/doc/README", b"r0"),
        E::Dir("opt/"),
        E::File("opt/gone/1", b"1"),
        E::File("./etc/dotted", b"dot"),
    ]);
    let upper = layer(&[
        E::File("etc/.wh.a", b""),
        E::File("etc/dir/.wh..wh..opq", b""),
        E::File("etc/dir/y", b"y1"),
        E::File("etc/b", b"b1"),
        // A file replaces a whole directory of the lower layer.
        E::File("usr/share/doc", b"now a file"),
        E::File("opt/.wh.gone", b""),
        // A whiteout never hides entries of its own layer.
        E::File("srv/new", b"n1"),
        E::File("srv/.wh.new", b""),
        E::Hardlink("etc/b-link", "etc/b"),
    ]);
    vec![lower, upper]
}

fn check_whiteouts(v: &FileView, what: &str) {
    assert!(v.get("etc/a").is_none(), "{what}: .wh.a must delete etc/a");
    assert_eq!(
        content(v, "etc/b"),
        Some(&b"b1"[..]),
        "{what}: upper etc/b wins"
    );
    assert!(
        v.get("etc/dir/x").is_none(),
        "{what}: opaque dir hides lower etc/dir/x"
    );
    assert!(
        v.get("etc/dir/sub/deep").is_none(),
        "{what}: opaque dir hides lower subtrees"
    );
    assert_eq!(content(v, "etc/dir/y"), Some(&b"y1"[..]), "{what}");
    assert!(
        v.get("etc/dir").is_some(),
        "{what}: the opaque directory itself stays"
    );
    assert!(
        v.get("usr/share/doc/README").is_none(),
        "{what}: a file replacing a dir hides its children"
    );
    assert_eq!(
        content(v, "usr/share/doc"),
        Some(&b"now a file"[..]),
        "{what}"
    );
    assert!(
        v.get("opt/gone").is_none() && v.get("opt/gone/1").is_none(),
        "{what}: .wh.gone deletes a tree"
    );
    assert_eq!(content(v, "srv/new"), Some(&b"n1"[..]), "{what}");
    assert_eq!(
        content(v, "etc/dotted"),
        Some(&b"dot"[..]),
        "{what}: ./ prefixes are normalised"
    );
    let link = v.get("etc/b-link").expect("hard link");
    assert_eq!(link.meta.kind, EntryKind::Hardlink("etc/b".into()));
    assert_eq!(
        link.content.as_deref(),
        Some(&b"b1"[..]),
        "{what}: hard link shares content"
    );
    assert!(
        v.iter().all(|e| !e.meta.path.contains(".wh.")),
        "{what}: no whiteout markers in the view"
    );
    assert_eq!(v.get("etc/b").map(|e| e.layer_index), Some(1));
}

#[test]
fn whiteouts_in_every_compression_and_container() {
    type Maker = fn(Vec<u8>) -> Layer;
    let makers: [(&str, Maker); 3] = [
        ("gzip", Layer::gz),
        ("zstd", Layer::zst),
        ("plain", Layer::plain),
    ];
    for (name, make) in makers {
        let dir = tempfile::tempdir().expect("tempdir");
        let layout = dir.path().join("oci");
        let layers: Vec<Layer> = lower_and_upper().into_iter().map(make).collect();
        common::oci(&layout, &layers);
        let options = OpenOptions::default();
        let image = open(&format!("oci:{}:latest", layout.display()), &options);
        check_whiteouts(&all(&image), &format!("oci {name}"));
        let info = image.info();
        assert_eq!(info.layers.len(), 2);
        assert_eq!(info.layers[1].created_by.as_deref(), Some("step 1"));
        assert_eq!(
            info.layers[0].diff_id.as_deref(),
            Some(common::sha256(&layers[0].tar).as_str())
        );
        assert_eq!(info.layers[0].digest, common::sha256(&layers[0].stored));
        let c = image.config().expect("config");
        assert_eq!(c.user.as_deref(), Some("app"));
        assert_eq!(c.entrypoint, vec!["/bin/app".to_string()]);
        assert!(c.cmd.is_empty());
        assert_eq!(c.working_dir.as_deref(), Some("/srv"));
        assert_eq!(c.exposed_ports, vec!["8080/tcp".to_string()]);
        assert_eq!(c.labels.get("k").map(String::as_str), Some("v"));
        assert_eq!(
            c.healthcheck,
            Some(vec!["CMD".to_string(), "true".to_string()])
        );

        let archive = dir.path().join("oci.tar");
        common::tar_dir(&layout, &archive);
        check_whiteouts(
            &all(&open(
                &format!("oci-archive:{}", archive.display()),
                &options,
            )),
            &format!("oci-archive {name}"),
        );

        let docker = dir.path().join("docker.tar");
        common::docker_archive(&docker, &layers);
        let d = open(&format!("docker-archive:{}", docker.display()), &options);
        check_whiteouts(&all(&d), &format!("docker-archive {name}"));
        assert_eq!(d.info().repo_tags, vec!["example/app:1".to_string()]);
        assert_eq!(
            d.info().layers[1].diff_id.as_deref(),
            Some(common::sha256(&layers[1].tar).as_str())
        );
    }
}

#[test]
fn selection_keeps_only_what_was_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let layers: Vec<Layer> = lower_and_upper().into_iter().map(Layer::gz).collect();
    common::oci(dir.path(), &layers);
    let image = open(
        &format!("oci:{}", dir.path().display()),
        &OpenOptions::default(),
    );
    let v = image
        .collect(&|m| match m.path.as_str() {
            "etc/b" => Select::Content,
            p if p.starts_with("etc/") => Select::Meta,
            _ => Select::Skip,
        })
        .expect("collect");
    assert_eq!(content(&v, "etc/b"), Some(&b"b1"[..]));
    assert!(v.get("etc/dir/y").is_some_and(|e| e.content.is_none()));
    assert!(v.get("srv/new").is_none());
}

#[test]
fn multi_platform_index_picks_the_platform() {
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = dir.path();
    let amd = vec![Layer::gz(layer(&[E::File("arch", b"amd64")]))];
    let arm = vec![Layer::zst(layer(&[E::File("arch", b"arm64")]))];
    let (amd_d, amd_s) = common::put_image(layout, &amd, "amd64", true);
    let (arm_d, arm_s) = common::put_image(layout, &arm, "arm64", true);
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": amd_d, "size": amd_s,
             "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": arm_d, "size": arm_s,
             "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
        ]
    });
    let ib = serde_json::to_vec(&index).expect("index");
    let id = common::put_blob(layout, &ib);
    // index.json -> nested index (no mediaType on the descriptor) -> per-platform manifests.
    common::write_index(
        layout,
        serde_json::json!([{"digest": id, "size": ib.len(), "annotations": {"org.opencontainers.image.ref.name": "multi"}}]),
    );
    let t = format!("oci:{}:multi", layout.display());
    let v = all(&open(&t, &OpenOptions::default()));
    assert_eq!(content(&v, "arch"), Some(&b"amd64"[..]));
    let arm_opts = OpenOptions {
        platform: "linux/arm64".into(),
        ..OpenOptions::default()
    };
    let img = open(&t, &arm_opts);
    assert_eq!(img.info().architecture.as_deref(), Some("arm64"));
    assert_eq!(img.info().manifest_digest.as_deref(), Some(arm_d.as_str()));
    assert_eq!(content(&all(&img), "arch"), Some(&b"arm64"[..]));
    let s390 = OpenOptions {
        platform: "linux/s390x".into(),
        ..OpenOptions::default()
    };
    let err = Image::open(&Target::parse(&t).expect("t"), &s390)
        .err()
        .expect("no s390x")
        .to_string();
    assert!(
        err.contains("linux/s390x") && err.contains("linux/arm64/v8"),
        "{err}"
    );
    let err = Image::open(
        &Target::parse(&format!("oci:{}:nope", layout.display())).expect("t"),
        &OpenOptions::default(),
    )
    .err()
    .expect("no tag")
    .to_string();
    assert!(err.contains("\"nope\"") && err.contains("multi"), "{err}");
}

#[test]
fn selected_links_bring_their_targets() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Targets come before the links in the stream (a second pass), and after (same pass).
    let l = Layer::gz(layer(&[
        E::File("usr/lib/os-release", b"ID=debian\n"),
        E::Hardlink("usr/bin/python3", "usr/bin/python3.11"),
        E::File(
            "usr/bin/python3.11",
            b"not reached: hard links point backwards",
        ),
        E::File("usr/bin/perl5", b"perl"),
        E::Hardlink("usr/bin/perl", "usr/bin/perl5"),
        E::Symlink("etc/os-release", "../usr/lib/os-release"),
        E::Symlink("lib", "usr/lib"),
        E::Symlink("etc/alt", "/lib/later"),
        E::File("usr/lib/later", b"later"),
    ]));
    common::oci(dir.path(), &[l]);
    let image = open(
        &format!("oci:{}", dir.path().display()),
        &OpenOptions::default(),
    );
    let wanted = ["etc/os-release", "usr/bin/perl", "etc/alt"];
    let asked = std::sync::Mutex::new(Vec::new());
    let v = image
        .collect(&|m| {
            asked.lock().expect("lock").push(m.path.clone());
            if wanted.contains(&m.path.as_str()) {
                Select::Content
            } else {
                Select::Skip
            }
        })
        .expect("collect");
    // Every entry was shown to the selector, including those read because a link leads to them.
    let asked = asked.into_inner().expect("lock");
    let mut once = asked.clone();
    once.sort();
    once.dedup();
    assert_eq!(
        once.len(),
        asked.len(),
        "the selector is asked once per entry, even when a second pass runs: {asked:?}"
    );
    assert!(
        asked.iter().any(|p| p == "usr/lib/later")
            && asked.iter().any(|p| p == "usr/lib/os-release"),
        "{asked:?}"
    );
    let get = |p: &str| {
        v.resolve_checked(p)
            .expect("inside")
            .and_then(|e| e.content.clone())
    };
    assert_eq!(get("etc/os-release").as_deref(), Some(&b"ID=debian\n"[..]));
    assert_eq!(get("usr/bin/perl").as_deref(), Some(&b"perl"[..]));
    // Through a linked directory (`lib -> usr/lib`) that was not selected.
    assert_eq!(get("etc/alt").as_deref(), Some(&b"later"[..]));
    assert_eq!(
        v.resolve_path("lib/later").as_deref(),
        Some("usr/lib/later")
    );
}

#[test]
fn images_can_be_shared_across_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Image>();
    shareable::<FileView>();
}
