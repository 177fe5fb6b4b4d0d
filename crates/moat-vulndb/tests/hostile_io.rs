//! The database directory and snapshot under attack (issue 17): a link planted where moat writes,
//! special files where it reads, and headers whose counts and sizes claim far more than the file holds.

use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use moat_vulndb::store::{self, DbError, SNAPSHOT_FILE, Snapshot};

const GOOD: &str = r#"{"id":"GO-TEST-1","aliases":["CVE-0000-1"],"summary":"t","affected":[{"package":{"ecosystem":"Go","name":"example.com/m"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.2.0"}]}]}]}"#;

fn records(dir: &Path) -> Vec<moat_vulndb::osv::Record> {
    let p = dir.join("r.json");
    std::fs::write(&p, GOOD).expect("w");
    moat_vulndb::import::read_path(&p).expect("import").records
}

#[test]
fn a_link_planted_at_the_old_temp_name_is_never_written_through() {
    let d = tempfile::tempdir().expect("tmp");
    let db = d.path().join("db");
    std::fs::create_dir(&db).expect("mkdir");
    let victim = d.path().join("victim");
    std::fs::write(&victim, "precious").expect("seed");
    // The name moat used to write its snapshot through, predictable from the pid.
    let planted = db.join(format!(".{SNAPSHOT_FILE}.{}.tmp", std::process::id()));
    symlink(&victim, &planted).expect("plant");
    // And a link at the snapshot name itself: the rename replaces it, never follows it.
    symlink(&victim, db.join(SNAPSHOT_FILE)).expect("plant snapshot");
    store::write(&db, records(d.path()), vec![]).expect("write");
    assert_eq!(
        std::fs::read_to_string(&victim).expect("victim"),
        "precious"
    );
    let snap = db.join(SNAPSHOT_FILE);
    assert!(std::fs::symlink_metadata(&snap).expect("meta").is_file());
    assert_eq!(Snapshot::open(&db).expect("open").meta().records, 1);
    // Nothing but the snapshot and the planted link is left in the directory.
    let mut names: Vec<String> = std::fs::read_dir(&db)
        .expect("ls")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    names.sort();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn a_directory_others_can_write_is_refused() {
    let d = tempfile::tempdir().expect("tmp");
    let db = d.path().join("shared");
    std::fs::create_dir(&db).expect("mkdir");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let e = store::write(&db, records(d.path()), vec![]).expect_err("refused");
    let msg = e.to_string();
    assert!(
        msg.contains("shared") && msg.contains("writable by others"),
        "{msg}"
    );
    assert!(!db.join(SNAPSHOT_FILE).exists());
    // A new directory is created owner-only.
    let fresh = d.path().join("new/db");
    store::write(&fresh, records(d.path()), vec![]).expect("write");
    let mode = std::fs::metadata(&fresh)
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "{mode:o}");
}

#[test]
fn links_and_fifos_in_the_db_directory_are_refused_without_blocking() {
    let d = tempfile::tempdir().expect("tmp");
    let good = d.path().join("good");
    store::write(&good, records(d.path()), vec![]).expect("write");
    // A snapshot in the directory that is a link (to a real snapshot even) is refused.
    let linked = d.path().join("linked");
    std::fs::create_dir(&linked).expect("mkdir");
    symlink(good.join(SNAPSHOT_FILE), linked.join(SNAPSHOT_FILE)).expect("link");
    let e = Snapshot::open(&linked).err().expect("link refused");
    assert!(e.to_string().contains("symbolic link"), "{e}");
    // A FIFO as the snapshot: refused at once (the open is non-blocking), naming it.
    let fifo_db = d.path().join("fifo");
    std::fs::create_dir(&fifo_db).expect("mkdir");
    moat_fsio::mkfifo(&fifo_db.join(SNAPSHOT_FILE), 0o600).expect("mkfifo");
    let e = Snapshot::open(&fifo_db).err().expect("fifo refused");
    assert!(
        e.to_string().contains("FIFO") && e.to_string().contains(SNAPSHOT_FILE),
        "{e}"
    );
    // An OSV import path that is a FIFO or a link to a character device.
    let e = moat_vulndb::import::read_path(&fifo_db.join(SNAPSHOT_FILE)).expect_err("fifo");
    assert!(e.to_string().contains("FIFO"), "{e}");
    let kmsg = d.path().join("all.zip");
    symlink("/dev/zero", &kmsg).expect("link");
    let e = moat_vulndb::import::read_path(&kmsg).expect_err("device");
    assert!(e.to_string().contains("character device"), "{e}");
    let rec = d.path().join("rec.json");
    symlink("/dev/zero", &rec).expect("link");
    let e = moat_vulndb::import::read_path(&rec).expect_err("device");
    assert!(e.to_string().contains("character device"), "{e}");
}

/// Rewrites the snapshot's header JSON with `edit`.
fn with_meta(bytes: &[u8], edit: impl Fn(&mut serde_json::Value)) -> Vec<u8> {
    let meta_len = u64::from_le_bytes(bytes[8..16].try_into().expect("len")) as usize;
    let mut meta: serde_json::Value =
        serde_json::from_slice(&bytes[16..16 + meta_len]).expect("meta");
    edit(&mut meta);
    let mb = serde_json::to_vec(&meta).expect("json");
    let mut out = bytes[..8].to_vec();
    out.extend_from_slice(&(mb.len() as u64).to_le_bytes());
    out.extend_from_slice(&mb);
    out.extend_from_slice(&bytes[16 + meta_len..]);
    out
}

#[test]
fn counts_and_sizes_that_claim_more_than_the_file_are_refused_before_allocating() {
    let d = tempfile::tempdir().expect("tmp");
    store::write(d.path(), records(d.path()), vec![]).expect("write");
    let bytes = std::fs::read(d.path().join(SNAPSHOT_FILE)).expect("read");
    // 2^62 + 1 records: 12 × that wraps to 12 on 64 bits (it used to panic with "capacity overflow").
    let huge_count = with_meta(&bytes, |m| {
        m["records"] = serde_json::json!(4611686018427387905u64)
    });
    let p = d.path().join("count.moatdb");
    std::fs::write(&p, &huge_count).expect("w");
    match Snapshot::open(&p) {
        Err(DbError::Corrupt { path, msg }) => {
            assert_eq!(path, p);
            assert!(msg.contains("record table"), "{msg}");
        }
        Err(e) => panic!("unexpected {e}"),
        Ok(_) => panic!("accepted"),
    }
    // Index sections claiming 6 GiB in a sparse 6 GiB file: refused from the header, no allocation.
    let meta_len = u64::from_le_bytes(bytes[8..16].try_into().expect("len"));
    let six = 6u64 << 30;
    let claim = with_meta(&bytes, |m| {
        m["body_len"] = serde_json::json!(six);
        m["ids_off"] = serde_json::json!(six);
    });
    let new_meta_len = u64::from_le_bytes(claim[8..16].try_into().expect("len"));
    let p = d.path().join("six.moatdb");
    std::fs::write(&p, &claim).expect("w");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .expect("open")
        .set_len(16 + new_meta_len + six)
        .expect("sparse");
    assert!(meta_len > 0);
    match Snapshot::open(&p) {
        Err(DbError::Corrupt { path, msg }) => {
            assert_eq!(path, p);
            assert!(msg.contains("limit"), "{msg}");
        }
        Err(e) => panic!("unexpected {e}"),
        Ok(_) => panic!("accepted"),
    }
}
