//! A Falco rules path that is a FIFO or a link to a character device (issue 17): refused at once,
//! naming the path.

#[test]
fn fifo_and_device_rule_files_are_refused_by_name() {
    let d = tempfile::tempdir().expect("tmp");
    let fifo = d.path().join("rules.yaml");
    moat_fsio::mkfifo(&fifo, 0o600).expect("mkfifo");
    let e = moat_runtime::rules::Loader::new()
        .add_file(&fifo)
        .expect_err("fifo refused");
    assert!(
        e.to_string().contains("rules.yaml") && e.to_string().contains("FIFO"),
        "{e}"
    );
    let kmsg = d.path().join("kmsg.yaml");
    std::os::unix::fs::symlink("/dev/zero", &kmsg).expect("link");
    let e = moat_runtime::rules::Loader::new()
        .add_file(&kmsg)
        .expect_err("device refused");
    assert!(e.to_string().contains("character device"), "{e}");
}
