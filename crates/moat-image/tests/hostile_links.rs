//! An OCI layout whose blobs are links (issue 17): a link to a character device (`/proc/kmsg`,
//! `/dev/zero`) must not hang or be read, and a link out of the layout must not be read even when the
//! file it leads to has the right digest.

mod common;

use common::{E, Layer, layer};
use moat_image::{Image, OpenOptions, Select, Target};

fn read_all(target: &str) -> Result<moat_image::FileView, String> {
    let image = Image::open(
        &Target::parse(target).expect("target"),
        &OpenOptions::default(),
    )
    .map_err(|e| e.to_string())?;
    image
        .collect(&|_| Select::Content)
        .map_err(|e| e.to_string())
}

#[test]
fn a_blob_linked_to_a_device_or_out_of_the_layout_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let layout = dir.path().join("oci");
    let l = Layer::gz(layer(&[E::File("etc/secret", b"host data")]));
    let d = common::sha256(&l.stored);
    let stored = l.stored.clone();
    common::oci(&layout, &[l]);
    let t = format!("oci:{}", layout.display());
    read_all(&t).expect("the untouched layout reads");
    let blob = common::blob_path(&layout, &d);

    // Out of the layout: the same bytes elsewhere on the host, linked in.
    let outside = dir.path().join("outside.blob");
    std::fs::write(&outside, &stored).expect("w");
    std::fs::remove_file(&blob).expect("rm");
    std::os::unix::fs::symlink(&outside, &blob).expect("link");
    let err = read_all(&t).expect_err("link out of the layout");
    assert!(err.contains(&d) && err.contains("symbolic link"), "{err}");

    // A character device (reading /dev/zero would never end; /proc/kmsg would block).
    std::fs::remove_file(&blob).expect("rm");
    std::os::unix::fs::symlink("/dev/zero", &blob).expect("link");
    let err = read_all(&t).expect_err("device");
    assert!(err.contains(&d) && err.contains("symbolic link"), "{err}");
}
