//! A policy path that is a FIFO or a link to a character device (issue 17): refused at once, naming
//! the path, never waited on or read until memory runs out.

#[test]
fn fifo_and_device_policy_files_are_refused_by_name() {
    let d = tempfile::tempdir().expect("tmp");
    let fifo = d.path().join("policy.yaml");
    moat_fsio::mkfifo(&fifo, 0o600).expect("mkfifo");
    let Err(e) = moat_policy::PolicySet::load_paths(std::slice::from_ref(&fifo)) else {
        panic!("fifo accepted");
    };
    assert!(
        e.to_string().contains("policy.yaml") && e.to_string().contains("FIFO"),
        "{e}"
    );
    let zero = d.path().join("zero.yaml");
    std::os::unix::fs::symlink("/dev/zero", &zero).expect("link");
    let Err(e) = moat_policy::PolicySet::load_paths(std::slice::from_ref(&zero)) else {
        panic!("device accepted");
    };
    assert!(e.to_string().contains("zero.yaml"), "{e}");
}
