//! Issue 14: `dir:` scans show the walk's progress (files, bytes seen and read) on a terminal, as
//! image scans show their per-layer bar, and never when stderr is not a terminal (JSON, CI). The
//! terminal is a pty from util-linux `script`.

use std::path::Path;
use std::process::Command;

const MOAT: &str = env!("CARGO_BIN_EXE_moat");

fn tree(dir: &Path) -> std::path::PathBuf {
    let root = dir.join("tree");
    for d in 0..20 {
        let sub = root.join(format!("d{d:02}"));
        std::fs::create_dir_all(&sub).expect("mkdir");
        for f in 0..50 {
            std::fs::write(sub.join(format!("f{f:02}.txt")), vec![b'x'; 100]).expect("write");
        }
    }
    std::fs::create_dir_all(root.join("app")).expect("mkdir");
    std::fs::write(root.join("app/.env"), "API_TOKEN=progressTESTvalue\n").expect(".env");
    root
}

fn have_script() -> bool {
    Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn dir_scans_show_walk_progress_on_a_terminal_only() {
    let tmp = tempfile::tempdir().expect("tmp");
    let root = tree(tmp.path());
    let target = format!("dir:{}", root.display());

    // Not a terminal: nothing but the report (stderr stays free of progress lines).
    let o = Command::new(MOAT)
        .args(["scan", &target, "--scanners", "config", "--format", "json"])
        .env("MOAT_OFFLINE", "1")
        .env("MOAT_DB", "/nonexistent/moat-db")
        .output()
        .expect("run moat");
    assert!(matches!(o.status.code(), Some(0) | Some(1)));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !err.contains("reading dir:") && !err.contains(" files, "),
        "{err}"
    );
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json report");
    assert!(
        report["findings"]
            .as_array()
            .expect("findings")
            .iter()
            .any(|f| f["id"] == "MOAT-IMG-009"),
        "{report}"
    );

    if !have_script() {
        eprintln!("SKIPPED: the pty half needs util-linux `script`");
        return;
    }
    // On a pty: the walk's counts, then the report written to a file (the pty shows only progress).
    let out = tmp.path().join("report.json");
    let cmd = format!(
        "MOAT_OFFLINE=1 MOAT_DB=/nonexistent/moat-db '{MOAT}' scan '{target}' --scanners config --format json -o '{}'",
        out.display()
    );
    let o = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .output()
        .expect("run script");
    let shown = String::from_utf8_lossy(&o.stdout);
    assert!(matches!(o.status.code(), Some(0) | Some(1)), "{shown}");
    assert!(
        shown.contains(&format!("reading {target}")) && shown.contains(" files, "),
        "no walk progress on the terminal: {shown:?}"
    );
    assert!(!shown.contains("progressTESTvalue"), "{shown}");
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out).expect("report file")).expect("json");
    assert_eq!(written["findings"], report["findings"]);
}
