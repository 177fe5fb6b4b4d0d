//! Rule files and recordings from hostile sources: size bounds, empty files, standard input readers.

use moat_runtime::Loader;
use moat_runtime::rules::{LoadError, MAX_RULES_FILE};

#[test]
fn a_device_is_refused_by_name_before_any_read() {
    let mut l = Loader::new();
    let err = l.add_file(std::path::Path::new("/dev/zero")).unwrap_err();
    assert!(matches!(err, LoadError::Read { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("/dev/zero") && msg.contains("not a regular file"),
        "{msg}"
    );
}

#[test]
fn endless_rule_stream_stops_at_the_limit() {
    let mut l = Loader::new();
    let err = l
        .add_reader("endless.yaml", std::io::repeat(b'a'))
        .unwrap_err();
    assert!(matches!(err, LoadError::TooLarge { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("endless.yaml") && msg.contains(&MAX_RULES_FILE.to_string()),
        "{msg}"
    );
}

#[test]
fn empty_rule_file_is_named_in_a_warning() {
    let mut l = Loader::new();
    l.add_str("empty.yaml", "").unwrap();
    l.add_str("only-version.yaml", "- required_engine_version: 0.26.0\n")
        .unwrap();
    assert_eq!(l.definitions(), 0);
    l.add_str("one.yaml", "- macro: m\n  condition: evt.type = execve\n")
        .unwrap();
    assert_eq!(l.definitions(), 1);
    let e = l.build();
    let w = e.summary().warnings;
    assert!(
        w.iter()
            .any(|w| w == "empty.yaml: no rules, macros or lists"),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|w| w == "only-version.yaml: no rules, macros or lists"),
        "{w:?}"
    );
    assert!(!w.iter().any(|w| w.starts_with("one.yaml")), "{w:?}");
}

#[test]
fn recordings_read_from_any_reader_with_the_line_limit() {
    let ev = r#"{"num":1,"ts":1,"type":"execve","dir":"<","res":0,"args":{},"proc":{"pid":7,"tid":7,"vpid":7,"name":"sudo","exe":"sudo","exepath":"/usr/bin/sudo","args":["su"],"cwd":"/","tty":0,"uid":1000,"gid":1000,"loginuid":-1,"user":"u","ancestors":[]}}"#;
    let text = format!("# comment\n{ev}\n\n{ev}\n");
    let v = moat_runtime::replay::read_events_in("standard input", text.as_bytes()).unwrap();
    assert_eq!(v.len(), 2);
    assert_eq!(v[0].proc.name, "sudo");
    let long = vec![b'x'; moat_runtime::replay::MAX_LINE + 10];
    let err = moat_runtime::replay::read_events_in("standard input", &long[..]).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "standard input:1: line longer than {} bytes",
            moat_runtime::replay::MAX_LINE
        )
    );
}
