//! `moat runtime` command line: the shared `-f/--format` default, empty and endless rule files, the
//! embedded default rules, and recordings from standard input.

use std::io::Write;
use std::process::{Command, Output, Stdio};

const MOAT: &str = env!("CARGO_BIN_EXE_moat");

const SUDO_EVENT: &str = r#"{"num":1,"ts":1795715097000000000,"type":"execve","dir":"<","res":0,"args":{},"proc":{"pid":7,"tid":7,"vpid":7,"name":"sudo","exe":"sudo","exepath":"/usr/bin/sudo","args":["su"],"cwd":"/","tty":0,"uid":1000,"gid":1000,"loginuid":-1,"user":"u","ancestors":[]}}"#;

fn run(args: &[&str], stdin: &[u8]) -> Output {
    let mut c = Command::new(MOAT)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut i = c.stdin.take().unwrap();
    let data = stdin.to_vec();
    let t = std::thread::spawn(move || {
        let _ = i.write_all(&data);
    });
    let o = c.wait_with_output().unwrap();
    t.join().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("panicked"), "{args:?}: {err}");
    o
}

fn moat(args: &[&str]) -> Output {
    run(args, b"")
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&o.stdout)))
}

fn p(x: &std::path::Path) -> &str {
    x.to_str().unwrap()
}

#[test]
fn format_flag_is_shared_and_defaults_to_json_into_a_pipe() {
    let d = tempfile::tempdir().unwrap();
    let ev = d.path().join("ev.jsonl");
    std::fs::write(&ev, format!("{SUDO_EVENT}\n")).unwrap();

    // Not a terminal: json by default, for every report-writing runtime command.
    let check = json(&moat(&["runtime", "rules", "check"]));
    assert_eq!(check["rules"], check["evaluable"]);
    assert!(check["rules"].as_u64().unwrap() > 10, "{check}");
    assert!(check["skipped"].as_array().unwrap().is_empty(), "{check}");
    let list = json(&moat(&["runtime", "rules", "list"]));
    assert_eq!(
        list["rules"].as_array().unwrap().len() as u64,
        check["rules"].as_u64().unwrap()
    );
    let o = moat(&["runtime", "replay", p(&ev)]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    let alert: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(alert["rule"], "moat Privilege escalation via sudo or su");

    // -f and --format choose text explicitly.
    for flag in ["-f", "--format"] {
        let o = moat(&["runtime", "replay", p(&ev), flag, "text"]);
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            out.contains("Privilege escalation tool run | process=sudo"),
            "{out}"
        );
        assert!(
            serde_json::from_str::<serde_json::Value>(out.trim()).is_err(),
            "{out}"
        );
        let o = moat(&["runtime", "rules", "check", flag, "text"]);
        assert!(
            String::from_utf8_lossy(&o.stdout).starts_with("rules: "),
            "{o:?}"
        );
        let o = moat(&["runtime", "rules", "list", flag, "text"]);
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("moat Shell in container"),
            "{o:?}"
        );
    }
    // watch takes the same flag (help only: the sensor needs root).
    let o = moat(&["runtime", "watch", "--help"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("-f, --format"),
        "{o:?}"
    );
}

#[test]
fn rules_check_json_keeps_the_scored_shape() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("r.yaml");
    std::fs::write(
        &f,
        "- rule: r1\n  desc: d\n  condition: evt.type = execve\n  output: o\n  priority: WARNING\n\
         - rule: r2\n  desc: d\n  condition: proc.no_such_field contains X\n  output: o\n  priority: WARNING\n",
    )
    .unwrap();
    let v = json(&moat(&[
        "runtime",
        "rules",
        "check",
        p(&f),
        "--format",
        "json",
    ]));
    assert_eq!(v["rules"], 2);
    assert_eq!(v["evaluable"], 1);
    assert_eq!(v["skipped"][0]["rule"], "r2");
    assert!(v["skipped"][0]["reason"].is_string());
}

#[test]
fn empty_rule_files_are_named() {
    let d = tempfile::tempdir().unwrap();
    let empty = d.path().join("empty.yaml");
    std::fs::write(&empty, "").unwrap();
    let macros = d.path().join("macros.yaml");
    std::fs::write(&macros, "- macro: m\n  condition: evt.type = execve\n").unwrap();
    let ev = d.path().join("ev.jsonl");
    std::fs::write(&ev, format!("{SUDO_EVENT}\n")).unwrap();

    // Nothing at all: exit 2 naming the file.
    let o = moat(&["runtime", "rules", "check", p(&empty)]);
    assert_eq!(code(&o), 2);
    assert!(
        err(&o).contains("empty.yaml: no rules, macros or lists"),
        "{}",
        err(&o)
    );
    assert!(o.stdout.is_empty());
    // An empty file among others: a warning naming it.
    let o = moat(&["runtime", "rules", "check", p(&macros), p(&empty)]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    assert!(
        err(&o).contains("warning: ") && err(&o).contains("empty.yaml: no rules, macros or lists"),
        "{}",
        err(&o)
    );
    // replay with --rules that load no rule: exit 2, no silent "no alerts".
    for rules in [&empty, &macros] {
        let o = moat(&["runtime", "replay", p(&ev), "--rules", p(rules)]);
        assert_eq!(code(&o), 2, "{}", err(&o));
        let name = rules.file_name().unwrap().to_str().unwrap();
        assert!(
            err(&o).contains(name) && err(&o).contains("no rules loaded"),
            "{}",
            err(&o)
        );
    }
    // Unless moat's rules are added.
    let o = moat(&[
        "runtime",
        "replay",
        p(&ev),
        "--rules",
        p(&empty),
        "--with-default-rules",
        "--fail-on",
        "warning",
    ]);
    assert_eq!(code(&o), 1, "{}", err(&o));
}

#[test]
fn endless_rule_files_are_refused_by_name() {
    let d = tempfile::tempdir().unwrap();
    let ev = d.path().join("ev.jsonl");
    std::fs::write(&ev, "").unwrap();
    for args in [
        vec!["runtime", "rules", "check", "/dev/zero"],
        vec!["runtime", "replay", p(&ev), "--rules", "/dev/zero"],
    ] {
        let o = moat(&args);
        assert_eq!(code(&o), 2, "{args:?}: {}", err(&o));
        assert!(
            // Issue 17: a device is never read at all (not even up to the 64 MiB bound): refused by name.
            err(&o).contains("/dev/zero: is a character device, not a regular file; refused"),
            "{args:?}: {}",
            err(&o)
        );
    }
}

#[test]
fn replay_reads_standard_input() {
    let o = run(
        &["runtime", "replay", "-", "--fail-on", "warning"],
        format!("{SUDO_EVENT}\n").as_bytes(),
    );
    assert_eq!(code(&o), 1, "{}", err(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains("\"rule\":\"moat Privilege escalation via sudo or su\"")
    );
    // Errors name standard input, with the line.
    let o = run(
        &["runtime", "replay", "-"],
        format!("{SUDO_EVENT}\nnot json\n").as_bytes(),
    );
    assert_eq!(code(&o), 2);
    assert!(
        err(&o).contains("standard input:2: not a moat event"),
        "{}",
        err(&o)
    );
    // The same line limit as files.
    let mut long = vec![b' '; (1 << 20) + 5];
    long.push(b'\n');
    let o = run(&["runtime", "replay", "-"], &long);
    assert_eq!(code(&o), 2);
    assert!(
        err(&o).contains("standard input:1: line longer than 1048576 bytes"),
        "{}",
        err(&o)
    );
}

#[test]
fn rules_explain_shows_types_condition_and_exceptions() {
    let o = moat(&["runtime", "rules", "explain", "moat Shell in container"]);
    assert_eq!(code(&o), 0, "{}", err(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("event types: execve, execveat"), "{out}");
    assert!(out.contains("moat_workload"), "{out}");
    assert!(out.contains("priority: Notice"), "{out}");
    let o = moat(&["runtime", "rules", "explain", "no such rule"]);
    assert_eq!(code(&o), 2);
    assert!(err(&o).contains("no rule named 'no such rule'"));
}
