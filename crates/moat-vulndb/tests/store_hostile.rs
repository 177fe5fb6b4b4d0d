//! The snapshot and the importer under hostile input: damaged snapshot files are refused with the
//! path named; bad records are skipped with a warning naming the file; a failed write keeps the old
//! snapshot.

use moat_vulndb::store::{self, DbError, SNAPSHOT_FILE, Snapshot};

const GOOD: &str = r#"{"id":"GO-TEST-1","aliases":["CVE-0000-1"],"summary":"t","affected":[{"package":{"ecosystem":"Go","name":"example.com/m"},"ranges":[{"type":"SEMVER","events":[{"introduced":"0"},{"fixed":"1.2.0"}]}]}]}"#;

#[test]
fn bad_records_are_skipped_and_named() {
    let d = tempfile::tempdir().expect("tmp");
    let tree = d.path().join("osv/Go");
    std::fs::create_dir_all(&tree).expect("mkdir");
    std::fs::write(tree.join("GO-TEST-1.json"), GOOD).expect("w");
    std::fs::write(tree.join("BROKEN.json"), "{\"id\": 1,").expect("w");
    std::fs::write(
        tree.join("NULLS.json"),
        r#"{"id":"X-1","aliases":null,"affected":null}"#,
    )
    .expect("w");
    let b = moat_vulndb::import::read_path(&d.path().join("osv")).expect("import");
    assert_eq!(b.records.len(), 2);
    assert_eq!(b.warnings.len(), 1);
    assert!(b.warnings[0].contains("BROKEN.json"), "{:?}", b.warnings);
    // An empty tree is an error, not an empty database.
    let empty = d.path().join("empty");
    std::fs::create_dir_all(&empty).expect("mkdir");
    assert!(moat_vulndb::import::read_path(&empty).is_err());
    // A zip that is not one.
    let z = d.path().join("all.zip");
    std::fs::write(&z, b"PK\x03\x04 not really").expect("w");
    let e = moat_vulndb::import::read_path(&z).expect_err("corrupt zip");
    assert!(e.to_string().contains("all.zip"), "{e}");
}

#[test]
fn damaged_snapshots_are_refused() {
    let d = tempfile::tempdir().expect("tmp");
    let b = moat_vulndb::import::read_path(&{
        let p = d.path().join("r.json");
        std::fs::write(&p, GOOD).expect("w");
        p
    })
    .expect("import");
    let meta = store::write(d.path(), b.records, vec![]).expect("write");
    let snap = Snapshot::open(d.path()).expect("open");
    assert_eq!(snap.meta().digest, meta.digest);
    assert_eq!(snap.lookup("Go", "example.com/m").expect("lookup").len(), 1);
    assert_eq!(snap.by_id("CVE-0000-1").expect("alias").len(), 1);
    let file = d.path().join(SNAPSHOT_FILE);
    let bytes = std::fs::read(&file).expect("read");
    for (what, damaged) in [
        ("truncated", bytes[..bytes.len() - 7].to_vec()),
        ("bad magic", [b"XXXXXXXX".as_slice(), &bytes[8..]].concat()),
        (
            "garbage header",
            [&bytes[..16], b"{{{{", &bytes[20..]].concat(),
        ),
        ("empty", Vec::new()),
    ] {
        let p = d.path().join(format!("{}.moatdb", what.replace(' ', "_")));
        std::fs::write(&p, &damaged).expect("w");
        match Snapshot::open(&p) {
            Err(DbError::Corrupt { path, .. }) => assert_eq!(path, p, "{what}"),
            Err(e) => panic!("{what}: unexpected error {e}"),
            Ok(_) => panic!("{what}: damaged snapshot accepted"),
        }
    }
    // Missing database: the message says how to get one.
    let e = Snapshot::open(&d.path().join("nowhere"))
        .err()
        .expect("missing");
    assert!(e.to_string().contains("moat db update"));
    // The same records give the same digest whatever the time.
    let again =
        store::write(&d.path().join("again"), snap.all().expect("all"), vec![]).expect("write");
    assert_eq!(again.digest, meta.digest);
}
