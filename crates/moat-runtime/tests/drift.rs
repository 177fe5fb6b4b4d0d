//! Drift detection, live: the real eBPF sensor with moat's default rules while a real podman
//! container (the shared Debian image) runs programs that are not part of its image — a binary
//! written after start, an image binary replaced in place, a memfd executed (memfd_create + exec of
//! the descriptor), a dropped script run by sh and by perl — and the same kinds of programs that are
//! part of the image or come from a volume. Needs root, BPF and podman; prints `SKIPPED:` otherwise.

mod common;

use common::{IMAGE, Sensor, podman, podman_with_image, skip};
use moat_runtime::rules::{Alert, Priority};

const BINARY: &str = "moat Drift executable not in the image";
const SCRIPT: &str = "moat Drift script not in the image";
const MEMFD: &str = "moat Fileless execution from memfd";

#[test]
fn drift_in_a_live_container() {
    if !common::is_root() {
        return skip("drift test needs root (eBPF)");
    }
    let env = match podman_with_image() {
        Ok(e) => e,
        Err(why) => return skip(&why),
    };
    let sensor = match Sensor::start(moat_runtime::Engine::default_rules()) {
        Ok(s) => s,
        Err(why) => return skip(&why),
    };
    let vol = tempfile::tempdir().unwrap();
    std::fs::write(vol.path().join("ok.sh"), "echo from-volume\n").unwrap();
    let name = format!("moat-drift-{}", std::process::id());
    let out = podman(
        &env,
        &[
            "run",
            "-d",
            "--name",
            &name,
            "-v",
            &format!("{}:/vol:ro", vol.path().display()),
            IMAGE,
            "/bin/sleep",
            "120",
        ],
    );
    assert!(
        out.status.success(),
        "podman run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let step = |cmd: &str| {
        let o = podman(&env, &["exec", &name, "/bin/sh", "-c", cmd]);
        assert!(
            o.status.success(),
            "{cmd}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    };
    // Part of the image, or from a volume: not drift.
    step(
        "/bin/ls / >/dev/null && /usr/bin/id >/dev/null && sh /vol/ok.sh >/dev/null && sh -c 'echo inline' >/dev/null",
    );
    // 1. a binary written after start, then executed.
    step("cp /bin/ls /usr/local/bin/moat-dropped && /usr/local/bin/moat-dropped / >/dev/null");
    // 2. an image binary replaced in place (same path, new content), then executed.
    step("cat /bin/true > /usr/bin/whoami && /usr/bin/whoami");
    // 3. memfd_create + exec of the descriptor (fexecve through /proc/self/fd, as glibc does).
    step(
        r#"perl -e 'my $n = "moat-memfd"; my $fd = syscall(319, $n, 0); die "memfd: $!" if $fd < 0; open(my $in, "<:raw", "/bin/true") or die; local $/; my $data = <$in>; open(my $out, ">&=:raw", $fd) or die; syswrite($out, $data) == length($data) or die "write: $!"; exec {"/proc/self/fd/$fd"} "moat-memfd" or die "exec: $!"'"#,
    );
    // 4. a dropped script run by an interpreter (sh, perl).
    step("printf 'echo dropped\\n' > /opt/moat-drop.sh && sh /opt/moat-drop.sh >/dev/null");
    step(
        "printf 'print qq(dropped\\\\n);\\n' > /opt/moat-drop.pl && cd /opt && perl moat-drop.pl >/dev/null",
    );
    let _ = podman(&env, &["rm", "-f", "-t", "1", &name]);
    let (stats, alerts) = sensor.stop();

    let mine: Vec<&Alert> = alerts
        .iter()
        .filter(|a| {
            a.container
                .as_ref()
                .is_some_and(|c| id.starts_with(&c.id) || c.full_id == id)
        })
        .collect();
    let field = |a: &Alert, f: &str| {
        a.output_fields
            .get(f)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    eprintln!(
        "drift: {} events, {} lost, {} alerts in the container:",
        stats.events,
        stats.lost,
        mine.len()
    );
    for a in &mine {
        eprintln!("  {} {}: {}", a.priority.as_str(), a.rule, a.output);
    }
    let of = |rule: &str| {
        mine.iter()
            .filter(|a| a.rule == rule)
            .copied()
            .collect::<Vec<_>>()
    };
    let binary = of(BINARY);
    let exes: Vec<String> = binary.iter().map(|a| field(a, "proc.exepath")).collect();
    assert!(
        exes.contains(&"/usr/local/bin/moat-dropped".to_string()),
        "written binary: {exes:?}"
    );
    assert!(
        exes.contains(&"/usr/bin/whoami".to_string()),
        "replaced binary: {exes:?}"
    );
    for a in &binary {
        assert_eq!(a.priority, Priority::Critical);
        assert!(
            field(a, "container.image.repository").contains("debian-mini"),
            "{}",
            a.output
        );
    }
    let dropped = binary
        .iter()
        .find(|a| field(a, "proc.exepath") == "/usr/local/bin/moat-dropped")
        .unwrap();
    assert!(
        field(dropped, "proc.exe_writer").starts_with("cp["),
        "writer named: {}",
        dropped.output
    );
    for exe in [
        "/bin/ls",
        "/usr/bin/ls",
        "/usr/bin/id",
        "/usr/bin/dash",
        "/bin/sh",
    ] {
        assert!(
            !exes.iter().any(|e| e == exe),
            "{exe} is part of the image: {exes:?}"
        );
    }
    let memfd = of(MEMFD);
    assert!(!memfd.is_empty(), "memfd execution not reported");
    assert_eq!(memfd[0].priority, Priority::Critical);
    let scripts: Vec<String> = of(SCRIPT).iter().map(|a| field(a, "proc.script")).collect();
    assert!(
        scripts.contains(&"/opt/moat-drop.sh".to_string()),
        "sh script: {scripts:?}"
    );
    assert!(
        scripts.contains(&"/opt/moat-drop.pl".to_string()),
        "perl script (relative path): {scripts:?}"
    );
    assert!(
        !scripts.iter().any(|s| s.starts_with("/vol/")),
        "a volume script is not drift: {scripts:?}"
    );
    for a in of(SCRIPT) {
        assert_eq!(a.priority, Priority::Warning);
    }
}
