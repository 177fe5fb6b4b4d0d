//! Precision on a benign workload: the real eBPF sensor with moat's default rules while real podman
//! containers start and stop (20 of them), a package is installed with dpkg, a shell script runs, a web
//! server in a container answers curl from the host, and root uses su to drop to another user. No
//! alert of Warning or above may fire. Needs root, BPF and podman; prints `SKIPPED:` otherwise.

mod common;

use common::{IMAGE, podman, podman_env, shared, skip};

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moat_runtime::rules::{Alert, Priority};
use moat_runtime::sensor::{self, Options};

/// A real .deb built with dpkg-deb: a binary, a config file below /etc and a postinst script.
fn build_deb(dir: &Path) -> PathBuf {
    let root = dir.join("pkg");
    std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::copy("/bin/true", root.join("usr/bin/moat-hello")).unwrap();
    std::fs::write(root.join("etc/moat-hello.conf"), "greeting=hello\n").unwrap();
    std::fs::write(
        root.join("DEBIAN/control"),
        "Package: moat-hello\nVersion: 1.0\nArchitecture: amd64\nMaintainer: moat <moat@example.org>\nDescription: benign test package\n",
    )
    .unwrap();
    std::fs::write(
        root.join("DEBIAN/postinst"),
        "#!/bin/sh\nset -e\nmkdir -p /var/lib/moat-hello\n",
    )
    .unwrap();
    Command::new("chmod")
        .args(["0755"])
        .arg(root.join("DEBIAN/postinst"))
        .status()
        .unwrap();
    let deb = dir.join("moat-hello.deb");
    let st = Command::new("dpkg-deb")
        .args(["--build", "--root-owner-group"])
        .arg(&root)
        .arg(&deb)
        .output()
        .expect("dpkg-deb");
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    deb
}

#[test]
fn benign_container_workload_raises_no_warning() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return skip("benign-workload test needs root (eBPF)");
    }
    let sh = shared();
    let docker_tar = PathBuf::from(std::env::var("HOME").unwrap_or_default())
        .join(".cache/moat-fixtures/bookworm/docker.tar");
    let env = match podman_env(&sh) {
        Some(e)
            if Command::new("podman").arg("--version").output().is_ok() && docker_tar.exists() =>
        {
            e
        }
        _ => {
            return skip("podman, ../shared or ~/.cache/moat-fixtures/bookworm/docker.tar missing");
        }
    };
    if !podman(&env, &["image", "exists", IMAGE]).status.success() {
        let out = podman(&env, &["load", "-i", docker_tar.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "podman load: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let tmp = tempfile::tempdir().unwrap();
    let deb = build_deb(tmp.path());
    assert!(deb.exists());
    std::fs::write(
        tmp.path().join("job.sh"),
        "#!/bin/sh\nset -e\nfor i in 1 2 3; do echo \"step $i\" >> /tmp/job.log; done\nsort /tmp/job.log | uniq -c\ngrep -c step /tmp/job.log\n",
    )
    .unwrap();
    let ready = tmp.path().join("ready");
    let alerts: Arc<Mutex<Vec<Alert>>> = Arc::default();
    let sink = alerts.clone();
    let opts = Options {
        duration: Some(Duration::from_secs(300)),
        ready_file: Some(ready.clone()),
        ..Default::default()
    };
    let sensor_thread = std::thread::spawn(move || {
        sensor::run(moat_runtime::Engine::default_rules(), &opts, |_, a| {
            sink.lock().unwrap().extend(a.iter().cloned())
        })
    });
    let t0 = Instant::now();
    while !ready.exists() {
        if sensor_thread.is_finished() {
            match sensor_thread.join().unwrap() {
                Err(e) => return skip(&format!("no BPF: {e}")),
                Ok(_) => panic!("sensor stopped before attaching"),
            }
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "sensor did not attach"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let pid = std::process::id();
    // 1. Start and stop 20 containers (detached, then stopped and removed).
    let mut names = Vec::new();
    for i in 0..20 {
        let name = format!("moat-benign-{pid}-{i}");
        let out = podman(
            &env,
            &[
                "run", "-d", "--name", &name, IMAGE, "/bin/sh", "-c", "sleep 30",
            ],
        );
        assert!(
            out.status.success(),
            "podman run: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        names.push(name);
    }
    for n in &names {
        let _ = podman(&env, &["stop", "-t", "1", n]);
        let _ = podman(&env, &["rm", "-f", n]);
    }
    // 2. A package install with dpkg, the installed binary run; a shell script; su dropping to nobody.
    let work = "dpkg -i /work/moat-hello.deb && moat-hello && sh /work/job.sh && su -s /bin/sh nobody -c id && dpkg -r moat-hello";
    let out = podman(
        &env,
        &[
            "run",
            "--rm",
            "-v",
            &format!("{}:/work:ro", tmp.path().display()),
            IMAGE,
            "/bin/sh",
            "-c",
            work,
        ],
    );
    eprintln!(
        "workload: {} {}",
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    assert!(out.status.success(), "benign workload failed");
    // 3. A web server in a container (host network), answered to curl from the host.
    let port = 18000 + (pid % 1000) as u16;
    let web = format!("moat-benign-web-{pid}");
    let server = format!(
        "perl -MIO::Socket::INET -e '$s=IO::Socket::INET->new(LocalAddr=>\"127.0.0.1:{port}\",Listen=>5,ReuseAddr=>1) or die; for(1..3){{$c=$s->accept or next; while(<$c>){{last if /^\\r?$/}} print $c \"HTTP/1.0 200 OK\\r\\nContent-Type: text/plain\\r\\n\\r\\nhello\\n\"; close $c}}'"
    );
    let out = podman(
        &env,
        &[
            "run",
            "-d",
            "--name",
            &web,
            "--network",
            "host",
            IMAGE,
            "/bin/sh",
            "-c",
            &server,
        ],
    );
    assert!(
        out.status.success(),
        "web server: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut answered = 0;
    for _ in 0..50 {
        let o = Command::new("curl")
            .args(["-s", "-m", "2", &format!("http://127.0.0.1:{port}/")])
            .output()
            .expect("curl");
        if String::from_utf8_lossy(&o.stdout).contains("hello") {
            answered += 1;
            if answered == 3 {
                break;
            }
        } else {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    let _ = podman(&env, &["rm", "-f", &web]);
    assert_eq!(answered, 3, "the web server never answered curl");

    std::thread::sleep(Duration::from_millis(1500));
    sensor::request_stop();
    let stats = sensor_thread.join().unwrap().expect("sensor run");
    let alerts = alerts.lock().unwrap().clone();
    let loud: Vec<&Alert> = alerts
        .iter()
        .filter(|a| a.priority <= Priority::Warning)
        .collect();
    let mut by_rule = std::collections::BTreeMap::<(String, &str), usize>::new();
    for a in &alerts {
        *by_rule
            .entry((a.rule.clone(), a.priority.as_str()))
            .or_default() += 1;
    }
    eprintln!(
        "benign workload: {} events, {} alerts ({} at Warning or above), {} lost; by rule: {by_rule:?}",
        stats.events,
        alerts.len(),
        loud.len(),
        stats.lost
    );
    for a in loud.iter().take(10) {
        eprintln!("  {} {}: {}", a.priority.as_str(), a.rule, a.output);
    }
    assert!(
        loud.is_empty(),
        "{} alerts at Warning or above on a benign workload",
        loud.len()
    );
}
