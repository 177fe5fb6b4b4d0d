//! Issue 17: package-database readers under cumulative budgets. Each image is a small zstd layer
//! generated here; what it expands to (links to one big file, millions of tiny packages, a 250 MiB
//! apk database, rpm slots pointing at one blob) is charged to a documented budget before it is
//! copied or parsed. Each run must exit 2 naming the file and the limit, with a bounded peak RSS and
//! nothing written.

mod hostile;

use std::io::Write;

use hostile::{Part, header, moat_in, oci_layout, stream_tar, tree};
use tar::EntryType;

const MIB: u64 = 1 << 20;

fn link(name: &str, ty: EntryType, target: &str) -> tar::Header {
    let mut h = header(name, ty, 0);
    h.set_link_name(target).expect("link name");
    h.set_cksum();
    h
}

/// A one-layer OCI image (zstd) from tar parts; returns the target string.
fn image(dir: &std::path::Path, parts: &[Part]) -> String {
    let layout = dir.join("img");
    let mut enc = zstd::stream::Encoder::new(Vec::new(), 1).expect("zstd");
    stream_tar(&mut enc, parts);
    let blob = enc.finish().expect("zstd");
    let digest = hostile::sha256_hex(&blob);
    std::fs::create_dir_all(layout.join("blobs/sha256")).expect("blobs");
    std::fs::write(layout.join("blobs/sha256").join(&digest), &blob).expect("blob");
    oci_layout(
        &layout,
        &format!("sha256:{digest}"),
        blob.len() as u64,
        "application/vnd.oci.image.layer.v1.tar+zstd",
    );
    format!("oci:{}", layout.display())
}

/// A dpkg stanza of about `size` bytes (a long Description of continuation lines).
fn big_stanza(name: &str, size: usize) -> Vec<u8> {
    let mut s =
        format!("Package: {name}\nVersion: 1\nArchitecture: all\nDescription: x\n").into_bytes();
    let line = b" 0123456789012345678901234567890123456789012345678901234567890123456789\n";
    while s.len() + line.len() < size {
        s.extend_from_slice(line);
    }
    s
}

fn sbom(dir: &std::path::Path, target: &str) -> hostile::Run {
    let before = tree(dir);
    let run = moat_in(dir, &["sbom", target, "--format", "json"], &[]);
    assert_eq!(tree(dir), before, "moat wrote nothing");
    run
}

#[test]
fn status_d_hard_links_to_one_big_file_are_charged_each_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let body = big_stanza("base", 20 * MIB as usize);
    let mut parts = vec![
        Part::Header(header(
            "var/lib/dpkg/status.d/base",
            EntryType::Regular,
            body.len() as u64,
        )),
        Part::Bytes(&body),
    ];
    for i in 0..3000 {
        parts.push(Part::Header(link(
            &format!("var/lib/dpkg/status.d/l{i}"),
            EntryType::Link,
            "var/lib/dpkg/status.d/base",
        )));
    }
    let t = image(dir.path(), &parts);
    let run = sbom(dir.path(), &t);
    run.assert_input_error(&[
        "var/lib/dpkg/status.d/l",
        "byte budget",
        "MOAT_MAX_STATUS_D_BYTES",
    ]);
    run.assert_peak_below_mib(320);
}

#[test]
fn status_d_symlinks_to_one_big_file_are_charged_each_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let body = big_stanza("base", 20 * MIB as usize);
    let mut parts = vec![
        Part::Header(header(
            "var/lib/dpkg/status.d/base",
            EntryType::Regular,
            body.len() as u64,
        )),
        Part::Bytes(&body),
    ];
    for i in 0..60 {
        parts.push(Part::Header(link(
            &format!("var/lib/dpkg/status.d/s{i}"),
            EntryType::Symlink,
            "base",
        )));
    }
    let t = image(dir.path(), &parts);
    let run = sbom(dir.path(), &t);
    run.assert_input_error(&[
        "var/lib/dpkg/status.d/s",
        "package-database bytes budget",
        "MOAT_MAX_DB_BYTES",
    ]);
    run.assert_peak_below_mib(320);
}

#[test]
fn copyright_files_linked_to_one_big_file_are_charged_each_time() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut status = Vec::new();
    for i in 0..3000 {
        write!(
            status,
            "Package: p{i}\nStatus: install ok installed\nVersion: 1\n\n"
        )
        .expect("w");
    }
    let mut copyright = Vec::new();
    while copyright.len() < 4 * MIB as usize - 200 {
        copyright.extend_from_slice(b"License: GPL-2+\n Some text of the licence, repeated.\n");
    }
    let mut parts = vec![
        Part::Header(header(
            "var/lib/dpkg/status",
            EntryType::Regular,
            status.len() as u64,
        )),
        Part::Bytes(&status),
        Part::Header(header(
            "usr/share/doc/big/copyright",
            EntryType::Regular,
            copyright.len() as u64,
        )),
        Part::Bytes(&copyright),
    ];
    for i in 0..3000 {
        parts.push(Part::Header(link(
            &format!("usr/share/doc/p{i}/copyright"),
            EntryType::Symlink,
            "/usr/share/doc/big/copyright",
        )));
    }
    let t = image(dir.path(), &parts);
    let run = sbom(dir.path(), &t);
    run.assert_input_error(&[
        "copyright",
        "copyright bytes budget",
        "MOAT_MAX_COPYRIGHT_BYTES",
    ]);
    run.assert_peak_below_mib(200);
    assert!(run.elapsed.as_secs() < 60);
}

#[test]
fn a_127_mb_status_of_tiny_packages_stops_at_the_packages_budget() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut status = Vec::with_capacity(127 * MIB as usize);
    let mut i = 0u64;
    while status.len() < 127 * MIB as usize - 64 {
        write!(status, "Package: p{i}\nVersion: 1\n\n").expect("w");
        i += 1;
    }
    let parts = [
        Part::Header(header(
            "var/lib/dpkg/status",
            EntryType::Regular,
            status.len() as u64,
        )),
        Part::Bytes(&status),
    ];
    let t = image(dir.path(), &parts);
    drop(status);
    let run = sbom(dir.path(), &t);
    run.assert_input_error(&["var/lib/dpkg/status", "100000 stanzas", "MOAT_MAX_PACKAGES"]);
    run.assert_peak_below_mib(400);
}

#[test]
fn a_250_mib_apk_database_is_refused_by_its_size_before_it_is_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let block = b"P:x\nV:1\nA:x86_64\n\n";
    let n = 250 * MIB / block.len() as u64;
    let db: Vec<u8> = block.repeat(n as usize);
    let parts = [
        Part::Header(header(
            "lib/apk/db/installed",
            EntryType::Regular,
            db.len() as u64,
        )),
        Part::Bytes(&db),
    ];
    let t = image(dir.path(), &parts);
    drop(db);
    let run = sbom(dir.path(), &t);
    run.assert_input_error(&[
        "lib/apk/db/installed",
        "67108864 byte limit",
        "MOAT_MAX_APK_DB_BYTES",
    ]);
    run.assert_peak_below_mib(96);
}

/// An ndb `Packages.db` whose 16,128 slots all point at one 1 MiB blob.
fn ndb_slots_to_one_blob(slots_pages: u32, blob_len: u32) -> Vec<u8> {
    let mut db = Vec::new();
    db.extend_from_slice(b"RpmP");
    db.extend_from_slice(&0u32.to_le_bytes()); // version
    db.extend_from_slice(&0u32.to_le_bytes());
    db.extend_from_slice(&slots_pages.to_le_bytes());
    db.resize(32, 0);
    let slots_end = slots_pages as usize * 4096;
    let blob_block = (slots_end / 16) as u32;
    while db.len() < slots_end {
        db.extend_from_slice(b"Slot");
        db.extend_from_slice(&1u32.to_le_bytes());
        db.extend_from_slice(&blob_block.to_le_bytes());
        db.extend_from_slice(&0u32.to_le_bytes());
    }
    db.extend_from_slice(b"BlbS");
    db.extend_from_slice(&1u32.to_le_bytes());
    db.extend_from_slice(&0u32.to_le_bytes());
    db.extend_from_slice(&blob_len.to_le_bytes());
    db.resize(db.len() + blob_len as usize, 0);
    db
}

#[test]
fn rpm_ndb_slots_pointing_at_one_blob_are_charged_per_slot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = ndb_slots_to_one_blob(64, MIB as u32);
    let parts = [
        Part::Header(header(
            "var/lib/rpm/Packages.db",
            EntryType::Regular,
            db.len() as u64,
        )),
        Part::Bytes(&db),
    ];
    let t = image(dir.path(), &parts);
    let run = sbom(dir.path(), &t);
    run.assert_input_error(&[
        "var/lib/rpm/Packages.db",
        "ndb slot",
        "MOAT_MAX_RPM_HEADER_BYTES",
    ]);
    run.assert_peak_below_mib(400);
}

/// A hard link `var/lib/dpkg/status -> etc/passwd` to a file the image does not hold is refused
/// like the same symbolic link (it dangles): never read as an empty database and exit 0. (A link,
/// hard or symbolic, to a file the image has is read where it leads, as tests/sbom_fixes.rs checks.)
#[test]
fn status_hard_linked_to_etc_passwd_behaves_like_the_symlink() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (n, ty) in [("hard", EntryType::Link), ("sym", EntryType::Symlink)] {
        let d = dir.path().join(n);
        std::fs::create_dir_all(&d).expect("dir");
        let target = if ty == EntryType::Link {
            "etc/passwd"
        } else {
            "/etc/passwd"
        };
        let parts = [
            Part::Header(header("etc/hostname", EntryType::Regular, 2)),
            Part::Bytes(b"x\n"),
            Part::Header(link("var/lib/dpkg/status", ty, target)),
        ];
        let t = image(&d, &parts);
        let run = sbom(&d, &t);
        eprintln!("{n}: exit {:?}: {}", run.code(), run.stderr());
        run.assert_input_error(&["var/lib/dpkg/status"]);
        assert!(
            !run.stderr().contains("root:x:0:0"),
            "no line of the file is echoed: {}",
            run.stderr()
        );
    }
}
