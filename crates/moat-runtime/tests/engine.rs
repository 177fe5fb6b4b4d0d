//! Semantics of the rule language on synthetic events: operators, lists, macros, append/override,
//! exceptions, skipping, indexing, and moat's default rules.

use std::net::IpAddr;

use moat_runtime::event::{Ancestor, Container, Event, Fd, FdType};
use moat_runtime::{Engine, Loader};

fn exec(name: &str, args: &[&str]) -> Event {
    let mut e = Event {
        evt_type: "execve".into(),
        ts: 2_000_000_000_000_000_000,
        ..Default::default()
    };
    e.proc.name = name.into();
    e.proc.exe = name.into();
    e.proc.exepath = format!("/usr/bin/{name}");
    e.proc.args = args.iter().map(|s| s.to_string()).collect();
    e.proc.pid = 100;
    e.proc.uid = 1000;
    e.proc.user = Some("alice".into());
    e.proc.ancestors = vec![
        Ancestor {
            pid: 99,
            name: "bash".into(),
            exe: "bash".into(),
            exepath: "/bin/bash".into(),
            ..Default::default()
        },
        Ancestor {
            pid: 1,
            name: "systemd".into(),
            exe: "/sbin/init".into(),
            ..Default::default()
        },
    ];
    e
}

fn open(path: &str, flags: &str, proc: &str) -> Event {
    let mut e = exec(proc, &[]);
    e.evt_type = "openat".into();
    e.res = 3;
    e.args.insert("flags".into(), flags.into());
    e.fd = Some(Fd {
        num: 3,
        typ: FdType::File,
        name: path.into(),
        ..Default::default()
    });
    e
}

fn connect(ip: &str, port: u16) -> Event {
    let mut e = exec("curl", &[]);
    e.evt_type = "connect".into();
    e.res = 0;
    let rip: IpAddr = ip.parse().unwrap();
    e.fd = Some(Fd {
        num: 5,
        typ: if rip.is_ipv4() {
            FdType::Ipv4
        } else {
            FdType::Ipv6
        },
        l4proto: Some("tcp".into()),
        lip: Some("10.0.0.5".parse().unwrap()),
        lport: 40000,
        rip: Some(rip),
        rport: port,
        connected: true,
        ..Default::default()
    });
    e
}

fn in_container(mut e: Event) -> Event {
    e.container = Some(Container {
        id: "0123456789ab".into(),
        runtime: "podman".into(),
        ..Default::default()
    });
    e
}

fn engine(yaml: &str) -> Engine {
    let e = Engine::from_str_for_tests(yaml);
    assert!(e.warnings.is_empty(), "warnings: {:?}", e.warnings);
    e
}

fn fired(e: &mut Engine, mut ev: Event) -> Vec<String> {
    e.process(&mut ev).into_iter().map(|a| a.rule).collect()
}

fn rule(cond: &str) -> String {
    format!(
        "- rule: R\n  desc: d\n  condition: {cond}\n  output: o %proc.name\n  priority: NOTICE\n"
    )
}

fn matches(cond: &str, ev: Event) -> bool {
    let mut e = engine(&rule(cond));
    assert!(e.skipped.is_empty(), "{cond}: {:?}", e.skipped);
    !fired(&mut e, ev).is_empty()
}

#[test]
fn string_operators() {
    let ev = || exec("grep", &["-r", "BEGIN RSA PRIVATE", "/home"]);
    assert!(matches("proc.name = grep", ev()));
    assert!(matches("proc.name == grep", ev()));
    assert!(!matches("proc.name != grep", ev()));
    assert!(matches("proc.args contains \"RSA PRIVATE\"", ev()));
    assert!(matches("proc.args icontains \"rsa private\"", ev()));
    assert!(!matches("proc.args contains \"rsa private\"", ev()));
    assert!(matches("proc.cmdline startswith \"grep -r\"", ev()));
    assert!(matches("proc.args endswith /home", ev()));
    assert!(matches("proc.exepath glob '/usr/*/gr?p'", ev()));
    assert!(matches("proc.exepath pmatch (/usr/bin, /opt)", ev()));
    assert!(!matches("proc.exepath pmatch (/usr/bi)", ev()));
    assert!(matches("proc.name in (egrep, grep)", ev()));
    assert!(matches("proc.name intersects (grep)", ev()));
    assert!(matches("proc.name regex '^g.e'", ev()));
    assert!(matches("proc.name bcontains 726570", ev()));
    assert!(matches("proc.name < h and proc.name > f", ev()));
    assert!(matches("tolower(proc.args) contains \"rsa private\"", ev()));
    assert!(matches("len(proc.name) = 4", ev()));
}

#[test]
fn numeric_bool_and_address_operators() {
    assert!(matches(
        "user.uid = 1000 and user.uid >= 1000 and user.uid < 1001 and user.uid in (0, 1000)",
        exec("x", &[])
    ));
    assert!(!matches("user.uid != 1000", exec("x", &[])));
    let c = || connect("203.0.113.7", 4444);
    assert!(matches(
        "fd.sip = 203.0.113.7 and fd.snet = \"203.0.113.0/24\" and fd.sport = 4444",
        c()
    ));
    assert!(matches(
        "fd.cip = 10.0.0.5 and fd.lport = 40000 and fd.rport in (4444)",
        c()
    ));
    assert!(matches(
        "fd.net != \"127.0.0.0/8\" and fd.ip != \"0.0.0.0\"",
        c()
    ));
    assert!(!matches("fd.snet in (\"10.0.0.0/8\")", c()));
    assert!(matches(
        "fd.connected = true and fd.l4proto = tcp and fd.typechar = 4 and fd.type = ipv4",
        c()
    ));
    assert!(matches(
        "fd.name = \"10.0.0.5:40000->203.0.113.7:4444\"",
        c()
    ));
    assert!(matches(
        "evt.res = SUCCESS and evt.rawres = 0 and evt.failed = false",
        c()
    ));
}

#[test]
fn missing_values_make_every_comparison_false() {
    // No fd on an exec: fd.name = x and fd.name != x are both false; "exists" is false.
    assert!(!matches("fd.name = x", exec("a", &[])));
    assert!(!matches("fd.name != x", exec("a", &[])));
    assert!(!matches("fd.name exists", exec("a", &[])));
    assert!(matches("not fd.name exists", exec("a", &[])));
    let mut orphan = exec("a", &[]);
    orphan.proc.ancestors.clear();
    assert!(!matches("proc.pname exists", orphan));
}

#[test]
fn ancestors() {
    let ev = || exec("sh", &[]);
    assert!(matches(
        "proc.pname = bash and proc.aname[1] = bash and proc.aname[2] = systemd",
        ev()
    ));
    assert!(matches("proc.aname[0] = sh", ev()));
    assert!(!matches("proc.aname[3] exists", ev()));
    assert!(matches("proc.aname in (systemd)", ev()));
    assert!(matches("proc.aname = bash", ev()));
    assert!(!matches("proc.aname = sh", ev()));
    assert!(matches("proc.pcmdline = bash and proc.apid[2] = 1", ev()));
    assert!(matches("proc.aexepath[1] = /bin/bash", ev()));
}

#[test]
fn event_types_index_and_negation() {
    let yaml = "- rule: Exec\n  desc: d\n  condition: evt.type in (execve, execveat)\n  output: x\n  priority: INFO\n\
                - rule: NotExec\n  desc: d\n  condition: evt.type != execve and proc.name = curl\n  output: x\n  priority: INFO\n\
                - rule: Any\n  desc: d\n  condition: proc.name = curl\n  output: x\n  priority: INFO\n";
    let mut e = engine(yaml);
    assert_eq!(fired(&mut e, exec("curl", &[])), vec!["Exec", "Any"]);
    assert_eq!(
        fired(&mut e, connect("1.1.1.1", 443)),
        vec!["NotExec", "Any"]
    );
    // Unknown syscall names still compare by name.
    let mut e = engine(&rule("evt.type = weirdcall"));
    let mut ev = exec("x", &[]);
    ev.evt_type = "weirdcall".into();
    assert_eq!(fired(&mut e, ev), vec!["R"]);
    assert!(fired(&mut e, exec("x", &[])).is_empty());
}

#[test]
fn lists_macros_append_and_override() {
    let yaml = r#"
- list: tools
  items: [curl]
- list: tools
  items: [wget]
  append: true
- list: more
  items: [tools, nc]
- macro: is_tool
  condition: proc.name in (more)
- macro: is_tool
  condition: or proc.name = socat
  append: true
- rule: Tool
  desc: d
  condition: evt.type = execve and is_tool
  output: tool %proc.name
  priority: WARNING
- rule: Tool
  condition: and not proc.args contains safe
  append: true
- rule: Other
  desc: d
  condition: proc.name = never
  output: x
  priority: INFO
- rule: Other
  condition: proc.name = curl
  override:
    condition: replace
- rule: Disabled
  desc: d
  condition: evt.type = execve
  output: x
  priority: INFO
- rule: Disabled
  enabled: false
"#;
    let mut e = engine(yaml);
    assert_eq!(fired(&mut e, exec("curl", &[])), vec!["Tool", "Other"]);
    assert_eq!(fired(&mut e, exec("wget", &[])), vec!["Tool"]);
    assert_eq!(fired(&mut e, exec("socat", &[])), vec!["Tool"]);
    assert_eq!(fired(&mut e, exec("nc", &["safe"])), Vec::<String>::new());
    let s = e.summary();
    assert_eq!((s.rules, s.evaluable, s.enabled), (3, 3, 2));
}

#[test]
fn exceptions() {
    let yaml = r#"
- list: allowed_dirs
  items: [/opt/app]
- rule: Write
  desc: d
  condition: evt.type = openat
  output: x %fd.name
  priority: ERROR
  exceptions:
    - name: by_proc_and_dir
      fields: [proc.name, fd.directory]
      comps: [=, in]
      values:
        - [apt, [/etc, /usr/bin]]
        - [tar, allowed_dirs]
    - name: by_name
      fields: proc.name
      values: [dpkg]
- rule: Write
  exceptions:
    - name: by_name
      values: [rpm]
  append: true
"#;
    let mut e = engine(yaml);
    assert!(e.skipped.is_empty(), "{:?}", e.skipped);
    assert_eq!(
        fired(&mut e, open("/etc/x", "O_WRONLY", "vim")),
        vec!["Write"]
    );
    assert!(fired(&mut e, open("/etc/x", "O_WRONLY", "apt")).is_empty());
    assert_eq!(
        fired(&mut e, open("/var/x", "O_WRONLY", "apt")),
        vec!["Write"]
    );
    assert!(fired(&mut e, open("/opt/app/f", "O_WRONLY", "tar")).is_empty());
    assert!(fired(&mut e, open("/x", "O_WRONLY", "dpkg")).is_empty());
    assert!(fired(&mut e, open("/x", "O_WRONLY", "rpm")).is_empty());
}

#[test]
fn unknown_fields_sources_and_errors_skip_rules_with_reasons() {
    let yaml = r#"
- rule: UsesEnv
  desc: d
  condition: proc.no_such_field contains X
  output: x
  priority: INFO
- rule: K8sAudit
  desc: d
  condition: ka.verb = create
  output: x
  priority: INFO
  source: k8s_audit
- rule: Undefined
  desc: d
  condition: evt.type = execve and no_such_macro
  output: x
  priority: INFO
- rule: Syntax
  desc: d
  condition: proc.name = (
  output: x
  priority: INFO
- rule: BadNumber
  desc: d
  condition: user.uid = root
  output: x
  priority: INFO
- rule: BadOutput
  desc: d
  condition: proc.name = x
  output: "%k8s.deployment.name"
  priority: INFO
- rule: BadPriority
  desc: d
  condition: proc.name = x
  output: x
  priority: SEVERE
- rule: Good
  desc: d
  condition: proc.name = x
  output: x
  priority: INFO
"#;
    let e = Engine::from_str_for_tests(yaml);
    let s = e.summary();
    assert_eq!((s.rules, s.evaluable), (8, 1));
    let reason = |r: &str| {
        s.skipped
            .iter()
            .find(|k| k.rule == r)
            .map(|k| k.reason.clone())
            .unwrap()
    };
    assert!(reason("UsesEnv").contains("proc.no_such_field"));
    assert!(reason("K8sAudit").contains("k8s_audit"));
    assert!(reason("Undefined").contains("no_such_macro"));
    assert!(reason("Syntax").contains("syntax"));
    assert!(reason("BadNumber").contains("number"));
    assert!(reason("BadOutput").contains("k8s.deployment.name"));
    assert!(reason("BadPriority").contains("SEVERE"));
}

#[test]
fn hostile_rule_files_fail_cleanly() {
    let mut l = Loader::new();
    let err = l
        .add_str("bad.yaml", "- rule: [unclosed")
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad.yaml"), "{err}");
    let mut l = Loader::new();
    assert!(l.add_str("map.yaml", "rule: x").is_err());
    // Self-referencing macros do not recurse forever.
    let e = Engine::from_str_for_tests(
        "- macro: a\n  condition: b\n- macro: b\n  condition: a\n- rule: R\n  desc: d\n  condition: a\n  output: x\n  priority: INFO\n",
    );
    assert_eq!(e.summary().evaluable, 0);
    assert!(e.skipped[0].reason.contains("references itself"));
    // Exponential macro and list expansion is bounded, not a hang or an out-of-memory.
    let mut y = String::from("- macro: m0\n  condition: proc.name = x\n");
    let mut l = String::from("- list: l0\n  items: [a, b]\n");
    for i in 1..40 {
        y.push_str(&format!(
            "- macro: m{i}\n  condition: m{} and m{}\n",
            i - 1,
            i - 1
        ));
        l.push_str(&format!(
            "- list: l{i}\n  items: [l{}, l{}]\n",
            i - 1,
            i - 1
        ));
    }
    y.push_str("- rule: Big\n  desc: d\n  condition: m39\n  output: x\n  priority: INFO\n");
    l.push_str(
        "- rule: Wide\n  desc: d\n  condition: proc.name in (l39)\n  output: x\n  priority: INFO\n",
    );
    let e = Engine::from_str_for_tests(&format!("{y}{l}"));
    assert_eq!(e.summary().evaluable, 0);
    assert!(
        e.skipped
            .iter()
            .any(|k| k.rule == "Big" && k.reason.contains("blow-up")),
        "{:?}",
        e.skipped
    );
    assert!(
        e.skipped
            .iter()
            .any(|k| k.rule == "Wide" && k.reason.contains("200000")),
        "{:?}",
        e.skipped
    );
}

#[test]
fn output_and_alert_shape() {
    let mut e = engine(
        "- rule: R\n  desc: d\n  condition: evt.type = execve\n  output: ran %proc.name by %user.name (gp=%proc.aname[2]) in %container.id\n  priority: WARNING\n  tags: [a, T1059]\n",
    );
    let mut ev = in_container(exec("curl", &[]));
    let a = e.process(&mut ev).pop().unwrap();
    assert_eq!(a.output, "ran curl by alice (gp=systemd) in 0123456789ab");
    assert_eq!(a.output_fields["proc.aname[2]"], "systemd");
    assert_eq!(a.mitre, vec!["T1059"]);
    assert!(a.time.starts_with("2033-"));
}

// --- moat's default rules ---

fn defaults() -> Engine {
    let e = Engine::default_rules();
    let s = e.summary();
    assert!(s.skipped.is_empty() && s.warnings.is_empty(), "{s:?}");
    for r in e.rules() {
        assert!(
            r.response.is_some() && !r.desc.is_empty(),
            "rule {} needs desc and response",
            r.name
        );
        if r.name != "moat Kernel events lost" {
            assert!(!r.mitre.is_empty(), "rule {} needs MITRE ids", r.name);
        }
    }
    e
}

#[test]
fn default_rules_fire_on_the_workshop_incidents() {
    let mut e = defaults();
    let f = |e: &mut Engine, ev: Event| fired(e, ev);
    let mut sh = in_container(exec("bash", &[]));
    sh.proc.ancestors[0].name = "python3".into();
    assert!(f(&mut e, sh).contains(&"moat Shell in container".to_string()));
    assert!(
        f(&mut e, exec("bash", &[])).is_empty(),
        "host shells are not alerts"
    );
    assert!(
        f(&mut e, in_container(exec("curl", &["http://x"])))
            .contains(&"moat Network tool in container".to_string())
    );
    assert!(
        f(&mut e, connect("203.0.113.9", 80))
            .contains(&"moat Outbound connection to malicious address".to_string())
    );
    assert!(f(&mut e, connect("93.184.216.34", 80)).is_empty());
    assert!(f(&mut e, exec("xmrig", &[])).contains(&"moat Crypto miner launched".to_string()));
    assert!(
        f(&mut e, exec("run", &["-o", "stratum+tcp://pool:3333"]))
            .contains(&"moat Crypto miner launched".to_string())
    );
    assert!(
        f(&mut e, in_container(connect("93.184.216.34", 3333)))
            .contains(&"moat Connection to mining pool port".to_string())
    );
    assert!(
        f(&mut e, exec("sudo", &["su"]))
            .contains(&"moat Privilege escalation via sudo or su".to_string())
    );
    let mut su = exec("exploit", &[]);
    su.evt_type = "setuid".into();
    su.args.insert("uid".into(), "0".into());
    assert_eq!(
        f(&mut e, su.clone()),
        vec!["moat Setuid to root from non-root"]
    );
    su.proc.uid = 0;
    assert!(f(&mut e, su).is_empty());
    assert_eq!(
        f(&mut e, open("/etc/shadow", "O_RDONLY", "cat")),
        vec!["moat Sensitive file read"]
    );
    assert!(f(&mut e, open("/etc/shadow", "O_RDONLY", "sshd")).is_empty());
    assert!(f(&mut e, open("/etc/passwd", "O_RDONLY", "cat")).is_empty());
    assert_eq!(
        f(&mut e, open("/etc/cron.d/x", "O_WRONLY|O_CREAT", "sh")),
        vec!["moat Write below etc"]
    );
    assert!(f(&mut e, open("/etc/cron.d/x", "O_WRONLY|O_CREAT", "dpkg")).is_empty());
    assert_eq!(
        f(&mut e, open("/usr/bin/ls", "O_RDWR", "sh")),
        vec!["moat Write below binary directory"]
    );
    let mut shm = exec("payload", &[]);
    shm.proc.exepath = "/dev/shm/payload".into();
    assert_eq!(
        f(&mut e, shm),
        vec!["moat Execution from temporary or shared-memory directory"]
    );
    let mut mfd = exec("x", &[]);
    mfd.proc.exe_from_memfd = true;
    assert_eq!(f(&mut e, mfd), vec!["moat Fileless execution from memfd"]);
    let mut ms = in_container(exec("x", &[]));
    ms.evt_type = "unshare".into();
    assert_eq!(
        f(&mut e, ms),
        vec!["moat Mount or namespace change in container"]
    );
    let mut drop = Event {
        evt_type: "drop".into(),
        ..Default::default()
    };
    drop.args.insert("lost".into(), "12".into());
    drop.proc.name = "moat".into();
    assert_eq!(f(&mut e, drop), vec!["moat Kernel events lost"]);
    let mut detached = Event {
        evt_type: "sensor_detached".into(),
        ..Default::default()
    };
    detached.args.insert("programs".into(), "on_exec".into());
    detached.proc.name = "moat".into();
    assert_eq!(f(&mut e, detached), vec!["moat Sensor programs detached"]);
}

#[test]
fn fields_added_for_falco_rules_and_runtime_precision() {
    let mut ev = in_container(exec("curl", &[]));
    ev.proc.env = vec!["HTTP_PROXY=http://evil:3128".into(), "HOME=/root".into()];
    assert!(matches("proc.env icontains HTTP_PROXY", ev.clone()));
    assert!(matches("proc.env[HOME] = /root", ev.clone()));
    assert!(!matches("proc.env[NOPE] exists", ev.clone()));
    // container.mount.dest: N/A when the container has no such mount, as Falco renders it.
    assert!(matches(
        "container.mount.dest[/proc*] in (\"<NA>\", \"N/A\")",
        ev.clone()
    ));
    ev.container.as_mut().unwrap().mounts = Some(vec![moat_runtime::event::Mount {
        source: "/proc".into(),
        dest: "/host/proc".into(),
        ..Default::default()
    }]);
    assert!(matches(
        "container.mount.dest[/host/proc*] = /host/proc",
        ev.clone()
    ));
    ev.dir = "<".into();
    assert!(matches("evt.dir=< and evt.type=execve", ev.clone()));
    let mut rx = connect("10.0.0.9", 8080);
    rx.evt_type = "recvfrom".into();
    rx.buffer = Some(vec![0xca, 0xfe, 0xba, 0xbe, 0, 1]);
    assert!(matches("evt.buffer bcontains cafebabe", rx.clone()));
    assert!(!matches("evt.buffer bcontains cafed00d", rx));
    // The runtime setting a container up is not the workload.
    let mut e = defaults();
    let mut init = in_container(exec("runc:[2:INIT]", &[]));
    init.evt_type = "mount".into();
    init.proc.container_runtime = true;
    assert!(fired(&mut e, init.clone()).is_empty());
    init.proc.container_runtime = false;
    assert_eq!(
        fired(&mut e, init),
        vec!["moat Mount or namespace change in container"]
    );
    // Raw sockets: netlink (su's audit socket) is not raw network access; packet sockets are.
    let mut sock = in_container(exec("su", &[]));
    sock.evt_type = "socket".into();
    sock.args.insert("domain".into(), "AF_NETLINK".into());
    sock.args.insert("type".into(), "SOCK_RAW".into());
    assert!(fired(&mut e, sock.clone()).is_empty());
    sock.args.insert("domain".into(), "AF_PACKET".into());
    assert_eq!(
        fired(&mut e, sock),
        vec!["moat Raw or packet socket in container"]
    );
    // su by root drops privileges: not an escalation.
    let mut su = in_container(exec("su", &["-s", "/bin/sh", "nobody"]));
    su.proc.uid = 0;
    assert!(!fired(&mut e, su).contains(&"moat Privilege escalation via sudo or su".to_string()));
    // Every default rule has an exception list users can extend.
    let yaml = format!(
        "{}\n- rule: moat Shell in container\n  exceptions:\n    - name: known_shells\n      values: [[localhost/app, [python3]]]\n  override:\n    exceptions: append\n",
        moat_runtime::rules::DEFAULT_RULES
    );
    let mut e = engine(&yaml);
    let mut sh = in_container(exec("bash", &[]));
    sh.proc.ancestors[0].name = "python3".into();
    sh.container.as_mut().unwrap().image_repository = Some("localhost/app".into());
    assert!(fired(&mut e, sh).is_empty());
}
