//! The eBPF sensor: loads the committed CO-RE object with aya (pure Rust), attaches its BTF
//! tracepoints, drains the ring buffer and decodes records into [`Event`]s.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use aya::maps::{PerCpuArray, RingBuf};
use aya::programs::BtfTracePoint;
use aya::programs::tp_btf::BtfTracePointLinkId;
use aya::{Btf, EbpfLoader};

use super::procs::{self, Table};
use super::{Options, SensorError, signal_ready, stopped};
use crate::event::{Event, Fd, FdType};

/// The object built by `bpf/build.sh` from `bpf/moat.bpf.c`.
static OBJECT: &[u8] = aya::include_bytes_aligned!("../../bpf/moat.bpf.o");

const EV_EXEC: u32 = 1;
const EV_FORK: u32 = 2;
const EV_EXIT: u32 = 3;
const EV_SYSCALL: u32 = 4;
const EV_CGROUP: u32 = 5;
const SYS_CHDIR: u32 = 80;
const SYS_FCHDIR: u32 = 81;

#[repr(C)]
#[derive(Clone, Copy)]
struct Hdr {
    kind: u32,
    nr: u32,
    ts: u64,
    tgid: u32,
    tid: u32,
    ppid: u32,
    uid: u32,
    gid: u32,
    loginuid: u32,
    cap_eff: u64,
    cgroup_id: u64,
    start_ns: u64,
    ret: i64,
    mntns: u32,
    comm: [u8; 16],
    _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Exec {
    h: Hdr,
    argv_len: u32,
    nlink: u32,
    tty: u32,
    _pad: u32,
    filename: [u8; 256],
    dentry: [u8; 64],
    cg_leaf: [u8; 96],
    cg_parent: [u8; 96],
    argv: [u8; 2048],
    env_len: u32,
    _pad2: u32,
    env: [u8; 2048],
    exe_ctime: u64,
    exe_mtime: u64,
    sid: u32,
    pgid: u32,
    vpid: u32,
    _pad3: u32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Cgroup {
    h: Hdr,
    cg_leaf: [u8; 96],
    cg_parent: [u8; 96],
}

/// Records the kernel writes into the ring buffer: `#[repr(C)]` structs of integers and byte arrays
/// only, mirrored from `bpf/moat.h`.
///
/// # Safety
/// Implementors must be plain old data: every bit pattern of `size_of::<Self>()` bytes is a valid
/// value (no references, no enums, no `bool`, no padding-sensitive invariants).
unsafe trait Record: Copy {}
// SAFETY: each is repr(C) with only integer and byte-array fields (checked by layouts_match_the_c_header).
unsafe impl Record for Hdr {}
// SAFETY: as above.
unsafe impl Record for Exec {}
// SAFETY: as above.
unsafe impl Record for Sys {}
// SAFETY: as above.
unsafe impl Record for Cgroup {}

#[repr(C)]
#[derive(Clone, Copy)]
struct Sys {
    h: Hdr,
    args: [u64; 6],
    pre_uid: u32,
    addr_len: u16,
    addr: [u8; 28],
    is_sock: u8,
    proto: u8,
    family: u16,
    sotype: u16,
    lport: u16,
    rport: u16,
    laddr: [u8; 16],
    raddr: [u8; 16],
    path: [u8; 256],
    path2: [u8; 256],
}

fn read_as<T: Record>(b: &[u8]) -> Option<T> {
    if b.len() < std::mem::size_of::<T>() {
        return None;
    }
    // SAFETY: the length is checked above, the read is unaligned-safe, and `T: Record` guarantees any
    // bit pattern is a valid `T`.
    Some(unsafe { std::ptr::read_unaligned(b.as_ptr() as *const T) })
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// Syscall number → Falco event type name (x86_64).
fn syscall_name(nr: u32) -> &'static str {
    match nr {
        2 => "open",
        32 => "dup",
        33 => "dup2",
        41 => "socket",
        42 => "connect",
        43 => "accept",
        49 => "bind",
        50 => "listen",
        85 => "creat",
        86 => "link",
        88 => "symlink",
        101 => "ptrace",
        105 => "setuid",
        106 => "setgid",
        113 => "setreuid",
        114 => "setregid",
        117 => "setresuid",
        119 => "setresgid",
        165 => "mount",
        175 => "init_module",
        257 => "openat",
        265 => "linkat",
        266 => "symlinkat",
        272 => "unshare",
        288 => "accept4",
        292 => "dup3",
        308 => "setns",
        313 => "finit_module",
        319 => "memfd_create",
        45 => "recvfrom",
        82 => "rename",
        264 => "renameat",
        316 => "renameat2",
        437 => "openat2",
        _ => "<unknown>",
    }
}

/// Renders open flags as Falco does (`O_RDONLY|O_CLOEXEC`).
pub fn open_flags(f: u64) -> String {
    let mut v = vec![match f & 3 {
        0 => "O_RDONLY",
        1 => "O_WRONLY",
        _ => "O_RDWR",
    }];
    for (bit, name) in [
        (0o100, "O_CREAT"),
        (0o200, "O_EXCL"),
        (0o400, "O_NOCTTY"),
        (0o1000, "O_TRUNC"),
        (0o2000, "O_APPEND"),
        (0o4000, "O_NONBLOCK"),
        (0o10000, "O_DSYNC"),
        (0o200000, "O_DIRECTORY"),
        (0o400000, "O_NOFOLLOW"),
        (0o2000000, "O_CLOEXEC"),
        (0o10000000, "O_PATH"),
        (0o20200000, "O_TMPFILE"),
    ] {
        if f & bit == bit {
            v.push(name);
        }
    }
    v.join("|")
}

fn family_name(d: u64) -> String {
    match d {
        1 => "AF_UNIX".into(),
        2 => "AF_INET".into(),
        10 => "AF_INET6".into(),
        16 => "AF_NETLINK".into(),
        17 => "AF_PACKET".into(),
        n => format!("AF_{n}"),
    }
}

fn socktype_name(t: u64) -> String {
    match t & 0xf {
        1 => "SOCK_STREAM".into(),
        2 => "SOCK_DGRAM".into(),
        3 => "SOCK_RAW".into(),
        5 => "SOCK_SEQPACKET".into(),
        n => format!("SOCK_{n}"),
    }
}

fn ptrace_request(r: u64) -> String {
    match r {
        0 => "PTRACE_TRACEME".into(),
        1 => "PTRACE_PEEKTEXT".into(),
        2 => "PTRACE_PEEKDATA".into(),
        4 => "PTRACE_POKETEXT".into(),
        5 => "PTRACE_POKEDATA".into(),
        7 => "PTRACE_CONT".into(),
        13 => "PTRACE_SETREGS".into(),
        12 => "PTRACE_GETREGS".into(),
        16 => "PTRACE_ATTACH".into(),
        17 => "PTRACE_DETACH".into(),
        0x4206 => "PTRACE_SEIZE".into(),
        n => format!("PTRACE_{n}"),
    }
}

fn clone_flags(f: u64) -> String {
    let mut v = Vec::new();
    for (bit, n) in [
        (0x0002_0000u64, "CLONE_NEWNS"),
        (0x0200_0000, "CLONE_NEWCGROUP"),
        (0x0400_0000, "CLONE_NEWUTS"),
        (0x0800_0000, "CLONE_NEWIPC"),
        (0x1000_0000, "CLONE_NEWUSER"),
        (0x2000_0000, "CLONE_NEWPID"),
        (0x4000_0000, "CLONE_NEWNET"),
        (0x0000_0080, "CLONE_NEWTIME"),
    ] {
        if f & bit != 0 {
            v.push(n);
        }
    }
    if v.is_empty() {
        "0".into()
    } else {
        v.join("|")
    }
}

/// sockaddr bytes → (family, ip, port, unix path).
fn parse_sockaddr(a: &[u8]) -> Option<(u16, Option<IpAddr>, u16, Option<String>)> {
    if a.len() < 2 {
        return None;
    }
    let fam = u16::from_le_bytes([a[0], a[1]]);
    match fam {
        2 if a.len() >= 8 => Some((
            2,
            Some(IpAddr::V4(Ipv4Addr::new(a[4], a[5], a[6], a[7]))),
            u16::from_be_bytes([a[2], a[3]]),
            None,
        )),
        10 if a.len() >= 24 => {
            let mut ip = [0u8; 16];
            ip.copy_from_slice(&a[8..24]);
            Some((
                10,
                Some(IpAddr::V6(Ipv6Addr::from(ip))),
                u16::from_be_bytes([a[2], a[3]]),
                None,
            ))
        }
        1 => Some((1, None, 0, Some(cstr(&a[2..])))),
        f => Some((f, None, 0, None)),
    }
}

fn ip_of(family: u16, b: &[u8; 16]) -> Option<IpAddr> {
    match family {
        2 => Some(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))),
        10 => Some(IpAddr::V6(Ipv6Addr::from(*b))),
        _ => None,
    }
}

fn l4(sotype: u16, proto: u8) -> Option<String> {
    Some(
        match (sotype, proto) {
            (1, _) | (_, 6) => "tcp",
            (2, _) | (_, 17) => "udp",
            (3, 1) | (3, 58) => "icmp",
            (3, _) => "raw",
            _ => return None,
        }
        .to_string(),
    )
}

/// Decodes one syscall record into an event (process context filled by the caller).
fn decode_sys(s: &Sys, table: &Table) -> Event {
    let nr = s.h.nr;
    let name = syscall_name(nr);
    let mut ev = Event {
        evt_type: name.to_string(),
        res: s.h.ret,
        ..Default::default()
    };
    let a = s.args;
    let path = cstr(&s.path);
    let path2 = cstr(&s.path2);
    let pid = s.h.tgid as i64;
    let ret = s.h.ret;
    let abs = |p: &str, dirfd: i64| -> String {
        if p.starts_with('/') {
            procs::normalize(p)
        } else if dirfd == -100 {
            procs::join(&table.cwd(pid).unwrap_or_else(|| "/".into()), p)
        } else {
            match std::fs::read_link(format!("/proc/{pid}/fd/{dirfd}")) {
                Ok(d) => procs::join(&d.to_string_lossy(), p),
                Err(_) => p.to_string(),
            }
        }
    };
    match name {
        "open" | "openat" | "openat2" | "creat" => {
            let (flags, dirfd) = match name {
                "open" => (a[1], -100),
                "creat" => (0o1101, -100),
                _ => (a[2], a[0] as i32 as i64),
            };
            ev.args.insert("flags".into(), open_flags(flags));
            ev.args.insert("name".into(), path.clone());
            let full = abs(&path, dirfd);
            ev.fd = Some(Fd {
                num: if ret >= 0 { ret } else { -1 },
                typ: if flags & 0o200000 != 0 {
                    FdType::Directory
                } else {
                    FdType::File
                },
                nameraw: Some(path),
                name: full,
                ..Default::default()
            });
        }
        "connect" | "bind" | "listen" | "accept" | "accept4" | "dup" | "dup2" | "dup3" => {
            let fdnum = match name {
                "connect" | "bind" | "listen" => a[0] as i32 as i64,
                _ => ret,
            };
            let remote = if matches!(name, "connect") {
                parse_sockaddr(&s.addr[..(s.addr_len as usize).min(28)])
            } else {
                None
            };
            if name.starts_with("dup") {
                ev.args.insert("oldfd".into(), (a[0] as i32).to_string());
                ev.args.insert("fd".into(), ret.to_string());
            }
            let fam = if s.is_sock != 0 {
                s.family
            } else {
                remote.as_ref().map_or(0, |r| r.0)
            };
            let typ = match fam {
                2 => FdType::Ipv4,
                10 => FdType::Ipv6,
                1 => FdType::Unix,
                16 => FdType::Netlink,
                _ if s.is_sock != 0 => FdType::Unknown,
                _ => {
                    // dup of a non-socket: no socket context to report.
                    return ev;
                }
            };
            let mut fd = Fd {
                num: fdnum,
                typ,
                l4proto: if typ.is_ip() {
                    l4(s.sotype, s.proto)
                } else {
                    None
                },
                lip: ip_of(s.family, &s.laddr),
                lport: s.lport,
                rip: ip_of(s.family, &s.raddr),
                rport: s.rport,
                is_server: matches!(name, "accept" | "accept4" | "listen" | "bind"),
                connected: name == "connect" && (ret >= 0 || ret == -115)
                    || name.starts_with("accept"),
                ..Default::default()
            };
            if let Some((_, ip, port, unix)) = remote {
                if ip.is_some() {
                    fd.rip = ip;
                    fd.rport = port;
                }
                if let Some(u) = unix {
                    fd.name = u;
                }
                ev.args.insert(
                    "addr".into(),
                    fd.rip
                        .map(|i| format!("{i}:{}", fd.rport))
                        .unwrap_or_default(),
                );
            }
            if typ == FdType::Ipv4 && fd.lip.is_none() {
                fd.lip = Some(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
            }
            ev.args.insert("fd".into(), fdnum.to_string());
            ev.fd = Some(fd);
        }
        "socket" => {
            ev.args.insert("domain".into(), family_name(a[0]));
            ev.args.insert("type".into(), socktype_name(a[1]));
            ev.args.insert("proto".into(), a[2].to_string());
            ev.args.insert("fd".into(), ret.to_string());
        }
        "ptrace" => {
            ev.args.insert("request".into(), ptrace_request(a[0]));
            ev.args.insert("pid".into(), (a[1] as i32).to_string());
        }
        "memfd_create" => {
            ev.args.insert("name".into(), path.clone());
            ev.args.insert("fd".into(), ret.to_string());
            ev.fd = Some(Fd {
                num: ret,
                typ: FdType::Memfd,
                name: format!("memfd:{path}"),
                ..Default::default()
            });
        }
        "init_module" => {
            ev.args.insert("len".into(), a[1].to_string());
        }
        "finit_module" => {
            ev.args.insert("fd".into(), (a[0] as i32).to_string());
        }
        "mount" => {
            ev.args.insert("dev".into(), path);
            ev.args.insert("dir".into(), path2);
            ev.args.insert("flags".into(), a[3].to_string());
        }
        "unshare" => {
            ev.args.insert("flags".into(), clone_flags(a[0]));
        }
        "setns" => {
            ev.args.insert("fd".into(), (a[0] as i32).to_string());
            ev.args.insert("nstype".into(), clone_flags(a[1]));
        }
        "setuid" | "setgid" => {
            let key = if name == "setuid" { "uid" } else { "gid" };
            ev.args.insert(key.into(), (a[0] as u32).to_string());
        }
        "setreuid" | "setregid" | "setresuid" | "setresgid" => {
            let (r, e) = if name.contains("uid") {
                ("ruid", "euid")
            } else {
                ("rgid", "egid")
            };
            ev.args.insert(r.into(), (a[0] as u32 as i32).to_string());
            ev.args.insert(e.into(), (a[1] as u32 as i32).to_string());
            if name.starts_with("setres") {
                let sk = if name.contains("uid") { "suid" } else { "sgid" };
                ev.args.insert(sk.into(), (a[2] as u32 as i32).to_string());
            }
            // "uid"/"gid": the effective id asked for (what matters for escalation).
            let k = if name.contains("uid") { "uid" } else { "gid" };
            ev.args.insert(k.into(), (a[1] as u32 as i32).to_string());
        }
        "symlink" | "symlinkat" => {
            ev.args.insert("target".into(), path);
            ev.args.insert("linkpath".into(), path2);
        }
        "rename" | "renameat" | "renameat2" => {
            let (d1, d2) = if name == "rename" {
                (-100, -100)
            } else {
                (a[0] as i32 as i64, a[2] as i32 as i64)
            };
            ev.args.insert("oldpath".into(), abs(&path, d1));
            ev.args.insert("newpath".into(), abs(&path2, d2));
        }
        "recvfrom" => {
            let n = (a[2] as usize).min(s.path.len());
            ev.buffer = Some(s.path[..n].to_vec());
            ev.args.insert("fd".into(), (a[0] as i32).to_string());
            ev.args.insert("res".into(), ret.to_string());
            let typ = match s.family {
                2 => FdType::Ipv4,
                10 => FdType::Ipv6,
                1 => FdType::Unix,
                _ => FdType::Unknown,
            };
            ev.fd = Some(Fd {
                num: a[0] as i32 as i64,
                typ,
                l4proto: if typ.is_ip() {
                    l4(s.sotype, s.proto)
                } else {
                    None
                },
                lip: ip_of(s.family, &s.laddr),
                lport: s.lport,
                rip: ip_of(s.family, &s.raddr),
                rport: s.rport,
                connected: true,
                ..Default::default()
            });
        }
        "link" | "linkat" => {
            ev.args.insert("oldpath".into(), path);
            ev.args.insert("newpath".into(), path2);
        }
        _ => {}
    }
    ev
}

/// The sensor's programs and the tracepoints they attach to.
const PROGRAMS: [(&str, &str); 5] = [
    ("on_exec", "sched_process_exec"),
    ("on_fork", "sched_process_fork"),
    ("on_exit", "sched_process_exit"),
    ("on_enter", "sys_enter"),
    ("on_exit_sys", "sys_exit"),
];

/// One attached program: its kernel program id (what a link names) and aya's handle of its link.
struct Attached {
    name: &'static str,
    prog_id: u32,
    link: Option<BtfTracePointLinkId>,
}

fn tracepoint<'a>(
    bpf: &'a mut aya::Ebpf,
    prog: &str,
) -> Result<&'a mut BtfTracePoint, SensorError> {
    bpf.program_mut(prog)
        .ok_or_else(|| SensorError::Bpf(format!("program {prog} missing from the object")))?
        .try_into()
        .map_err(|e| SensorError::Bpf(format!("{prog}: {e}")))
}

fn load() -> Result<(aya::Ebpf, Vec<Attached>), SensorError> {
    let me = std::process::id();
    let mut bpf = EbpfLoader::new()
        .set_global("self_tgid", &me, true)
        .load(OBJECT)
        .map_err(|e| SensorError::Bpf(e.to_string()))?;
    let btf = Btf::from_sys_fs().map_err(|e| SensorError::Bpf(format!("BTF: {e}")))?;
    let mut attached = Vec::new();
    for (prog, tp) in PROGRAMS {
        let p = tracepoint(&mut bpf, prog)?;
        p.load(tp, &btf)
            .map_err(|e| SensorError::Bpf(format!("{prog}: {e:?}")))?;
        let link = p
            .attach()
            .map_err(|e| SensorError::Bpf(format!("{prog}: {e}")))?;
        let prog_id = p
            .info()
            .map_err(|e| SensorError::Bpf(format!("{prog}: {e}")))?
            .id();
        attached.push(Attached {
            name: prog,
            prog_id,
            link: Some(link),
        });
    }
    Ok((bpf, attached))
}

/// The sensor's programs that are not attached: those no kernel link runs (`linked` holds the
/// program ids of every BPF link on the host), and `on_enter` when syscall tracing stopped counting
/// (its heartbeat did not advance although moat itself made syscalls since the last check).
fn detached_programs(
    attached: &[(&'static str, u32)],
    linked: &std::collections::HashSet<u32>,
    heartbeat_advanced: bool,
) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = attached
        .iter()
        .filter(|(_, id)| !linked.contains(id))
        .map(|(n, _)| *n)
        .collect();
    if !heartbeat_advanced && !out.contains(&"on_enter") {
        out.push("on_enter");
    }
    out
}

/// Checks that every program is still attached; on a detachment emits a `sensor_detached` event
/// (moat's rule "moat Sensor programs detached" alerts on it) and re-attaches what is missing.
fn check_attachment(
    bpf: &mut aya::Ebpf,
    progs: &mut [Attached],
    heartbeat_advanced: bool,
    metrics: &super::metrics::Metrics,
) -> Option<Event> {
    use std::sync::atomic::Ordering::Relaxed;
    let linked: std::collections::HashSet<u32> = aya::programs::loaded_links()
        .filter_map(Result::ok)
        .map(|l| l.prog_id)
        .collect();
    let ids: Vec<(&'static str, u32)> = progs.iter().map(|p| (p.name, p.prog_id)).collect();
    let missing = detached_programs(&ids, &linked, heartbeat_advanced);
    if missing.is_empty() {
        metrics.attached.store(1, Relaxed);
        return None;
    }
    metrics.attached.store(0, Relaxed);
    metrics.detached.fetch_add(1, Relaxed);
    let mut reattached = Vec::new();
    for a in progs.iter_mut().filter(|a| missing.contains(&a.name)) {
        let Ok(p) = tracepoint(bpf, a.name) else {
            continue;
        };
        if let Some(old) = a.link.take() {
            let _ = p.detach(old);
        }
        if let Ok(l) = p.attach() {
            a.link = Some(l);
            reattached.push(a.name);
        }
    }
    if !reattached.is_empty() {
        metrics.restarts.fetch_add(1, Relaxed);
    }
    let mut ev = Event {
        evt_type: "sensor_detached".into(),
        ..Default::default()
    };
    ev.args.insert("programs".into(), missing.join(","));
    ev.args.insert("reattached".into(), reattached.join(","));
    ev.proc.name = "moat".into();
    ev.proc.pid = std::process::id() as i64;
    ev.ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    Some(ev)
}

/// Runs the eBPF sensor; returns the number of lost events.
pub fn run(opts: &Options, handle: &mut dyn FnMut(&mut Event)) -> Result<u64, SensorError> {
    let (mut bpf, mut progs) = load()?;
    let metrics = opts.metrics.clone();
    metrics
        .attached
        .store(1, std::sync::atomic::Ordering::Relaxed);
    let heartbeat: PerCpuArray<_, u64> = PerCpuArray::try_from(
        bpf.take_map("heartbeat")
            .ok_or_else(|| SensorError::Bpf("no heartbeat map".into()))?,
    )
    .map_err(|e| SensorError::Bpf(e.to_string()))?;
    let beats =
        |h: &PerCpuArray<_, u64>| -> u64 { h.get(&0, 0).map(|v| v.iter().sum()).unwrap_or(0) };
    let mut last_beats = beats(&heartbeat);
    let mut last_attach_check = Instant::now();
    let mut ring = RingBuf::try_from(
        bpf.take_map("events")
            .ok_or_else(|| SensorError::Bpf("no events map".into()))?,
    )
    .map_err(|e| SensorError::Bpf(e.to_string()))?;
    let lost_map: PerCpuArray<_, u64> = PerCpuArray::try_from(
        bpf.take_map("lost")
            .ok_or_else(|| SensorError::Bpf("no lost map".into()))?,
    )
    .map_err(|e| SensorError::Bpf(e.to_string()))?;
    let mut table = Table::new();
    table.scan();
    signal_ready(opts, "ebpf");
    let started = Instant::now();
    let mut lost_seen = 0u64;
    let mut last_lost_check = Instant::now();
    let mut num = 0u64;
    let fd = ring.as_raw_fd();
    loop {
        if stopped() || opts.duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // The kernel wakes this reader only once 512 KiB are waiting (a wakeup per event would put a
        // context switch on the workload's path); otherwise it drains every 50 ms.
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut pfd, 1, 50) };
        while let Some(item) = ring.next() {
            let b: &[u8] = &item;
            let Some(h) = read_as::<Hdr>(b) else { continue };
            let pid = h.tgid as i64;
            let comm = cstr(&h.comm);
            let ts = table.wall(h.ts);
            let mut ev = match h.kind {
                EV_CGROUP => {
                    if let Some(c) = read_as::<Cgroup>(b) {
                        table.note_cgroup(h.cgroup_id, &cstr(&c.cg_parent), &cstr(&c.cg_leaf));
                    }
                    continue;
                }
                EV_FORK => {
                    table.fork(pid, h.ret, ts);
                    continue;
                }
                EV_EXIT => {
                    let mut ev = Event {
                        evt_type: "procexit".into(),
                        res: h.ret,
                        ..Default::default()
                    };
                    table.enrich(
                        &mut ev,
                        pid,
                        h.tid as i64,
                        h.uid,
                        h.gid,
                        h.loginuid,
                        h.cap_eff,
                        h.cgroup_id,
                        h.mntns as u64,
                        &comm,
                    );
                    table.exit(pid);
                    ev
                }
                EV_EXEC => {
                    let Some(x) = read_as::<Exec>(b) else {
                        continue;
                    };
                    let dentry = cstr(&x.dentry);
                    let memfd = dentry.starts_with("memfd:");
                    let argv = &x.argv[..(x.argv_len as usize).min(x.argv.len())];
                    let env = &x.env[..(x.env_len as usize).min(x.env.len())];
                    table.note_cgroup(h.cgroup_id, &cstr(&x.cg_parent), &cstr(&x.cg_leaf));
                    table.exec(
                        pid,
                        h.ppid as i64,
                        &comm,
                        &cstr(&x.filename),
                        argv,
                        x.tty,
                        memfd,
                        table.wall(h.start_ns),
                        h.mntns as u64,
                        env,
                        Some(&procs::KernelExec {
                            sid: x.sid as i64,
                            pgid: x.pgid as i64,
                            vpid: x.vpid as i64,
                            exe_times: (x.exe_ctime != 0).then_some((x.exe_ctime, x.exe_mtime)),
                        }),
                    );
                    let mut ev = Event {
                        evt_type: "execve".into(),
                        res: 0,
                        ..Default::default()
                    };
                    ev.args.insert("filename".into(), cstr(&x.filename));
                    ev.args.insert(
                        "flags".into(),
                        if memfd {
                            "EXE_FROM_MEMFD".into()
                        } else {
                            "0".into()
                        },
                    );
                    table.enrich(
                        &mut ev,
                        pid,
                        h.tid as i64,
                        h.uid,
                        h.gid,
                        h.loginuid,
                        h.cap_eff,
                        h.cgroup_id,
                        h.mntns as u64,
                        &comm,
                    );
                    ev
                }
                EV_SYSCALL => {
                    let Some(s) = read_as::<Sys>(b) else { continue };
                    if s.h.nr == SYS_CHDIR || s.h.nr == SYS_FCHDIR {
                        // Reported only when it succeeded: the working directory forks inherit.
                        table.chdir(pid, &cstr(&s.path));
                        continue;
                    }
                    let mut ev = decode_sys(&s, &table);
                    note_writes(&mut table, &ev, &h, &comm);
                    let setid = matches!(ev.evt_type.as_str(), "setuid" | "setreuid" | "setresuid");
                    // For the setuid family, user.uid is the caller's uid before the call.
                    let uid = if setid { s.pre_uid } else { h.uid };
                    table.enrich(
                        &mut ev,
                        pid,
                        h.tid as i64,
                        uid,
                        h.gid,
                        h.loginuid,
                        h.cap_eff,
                        h.cgroup_id,
                        h.mntns as u64,
                        &comm,
                    );
                    ev
                }
                _ => continue,
            };
            num += 1;
            ev.num = num;
            ev.ts = ts;
            handle(&mut ev);
        }
        if last_attach_check.elapsed() >= Duration::from_secs(1) {
            last_attach_check = Instant::now();
            // moat's own poll() calls pass through sys_enter, so the count advances while attached.
            let now = beats(&heartbeat);
            let advanced = now != last_beats;
            last_beats = now;
            if let Some(mut ev) = check_attachment(&mut bpf, &mut progs, advanced, &metrics) {
                num += 1;
                ev.num = num;
                handle(&mut ev);
                last_beats = beats(&heartbeat);
            }
        }
        if last_lost_check.elapsed() > Duration::from_millis(500) {
            last_lost_check = Instant::now();
            let total: u64 = lost_map.get(&0, 0).map(|v| v.iter().sum()).unwrap_or(0);
            metrics
                .lost
                .store(total, std::sync::atomic::Ordering::Relaxed);
            if total > lost_seen {
                let mut ev = drop_event(total - lost_seen, &table);
                lost_seen = total;
                num += 1;
                ev.num = num;
                handle(&mut ev);
            }
        }
    }
    let total: u64 = lost_map.get(&0, 0).map(|v| v.iter().sum()).unwrap_or(0);
    if total > lost_seen {
        let mut ev = drop_event(total - lost_seen, &table);
        handle(&mut ev);
    }
    Ok(total)
}

/// Keeps the writer history drift alerts name: files opened for writing and renamed, per cgroup.
fn note_writes(table: &mut Table, ev: &Event, h: &Hdr, comm: &str) {
    if ev.res < 0 {
        return;
    }
    let by = format!("{comm}[{}]", h.tgid);
    match ev.evt_type.as_str() {
        "open" | "openat" | "openat2" | "creat" => {
            let write = ev
                .args
                .get("flags")
                .is_some_and(|f| f.contains("O_WRONLY") || f.contains("O_RDWR"))
                || ev.evt_type == "creat";
            if write && let Some(fd) = &ev.fd {
                table.note_write(h.cgroup_id, &fd.name, by);
            }
        }
        "rename" | "renameat" | "renameat2" => {
            if let (Some(from), Some(to)) = (ev.args.get("oldpath"), ev.args.get("newpath")) {
                table.note_rename(h.cgroup_id, from, to, by);
            }
        }
        _ => {}
    }
}

fn drop_event(n: u64, table: &Table) -> Event {
    let mut ev = Event {
        evt_type: "drop".into(),
        ..Default::default()
    };
    ev.args.insert("lost".into(), n.to_string());
    ev.proc.name = "moat".into();
    ev.proc.pid = std::process::id() as i64;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    ev.ts = now;
    let _ = table;
    ev
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_the_c_header() {
        assert_eq!(std::mem::size_of::<Hdr>(), 96);
        assert_eq!(
            std::mem::size_of::<Exec>(),
            96 + 16 + 256 + 64 + 192 + 2048 + 8 + 2048 + 32
        );
        assert_eq!(std::mem::size_of::<Cgroup>(), 96 + 192);
        assert_eq!(std::mem::offset_of!(Sys, path), 220);
    }

    #[test]
    fn detachment_is_seen_from_links_and_the_heartbeat() {
        let ids = [("on_exec", 10), ("on_enter", 11), ("on_exit_sys", 12)];
        let all: std::collections::HashSet<u32> = [10, 11, 12, 99].into();
        assert!(detached_programs(&ids, &all, true).is_empty());
        let no_exec: std::collections::HashSet<u32> = [11, 12].into();
        assert_eq!(detached_programs(&ids, &no_exec, true), vec!["on_exec"]);
        // Linked but not counting syscalls: sys_enter tracing is off all the same.
        assert_eq!(detached_programs(&ids, &all, false), vec!["on_enter"]);
        assert_eq!(
            detached_programs(&ids, &[12].into(), false),
            vec!["on_exec", "on_enter"]
        );
    }

    #[test]
    fn renderers() {
        assert_eq!(open_flags(0o2000000), "O_RDONLY|O_CLOEXEC");
        assert_eq!(open_flags(0o1101), "O_WRONLY|O_CREAT|O_TRUNC");
        assert_eq!(family_name(17), "AF_PACKET");
        assert_eq!(ptrace_request(16), "PTRACE_ATTACH");
        assert_eq!(clone_flags(0x2002_0000), "CLONE_NEWNS|CLONE_NEWPID");
        let sa = [2u8, 0, 0x1f, 0x90, 127, 0, 0, 1];
        assert_eq!(parse_sockaddr(&sa).unwrap().2, 8080);
        assert!(parse_sockaddr(&[1]).is_none());
    }
}
