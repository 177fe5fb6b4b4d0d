//! The process table: what moat knows about every live process (from a /proc scan at start, then
//! fork/exec/exit events), used to give each event its process, parent chain, user and container.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::container::{self, Resolver};
use crate::event::{Ancestor, Container, Event, Process};

/// One process.
#[derive(Debug, Clone, Default)]
pub struct Proc {
    pub pid: i64,
    pub ppid: i64,
    pub name: String,
    pub exe: String,
    pub exepath: String,
    /// argv[1..], shared with forks until they exec.
    pub args: Arc<[String]>,
    pub cwd: String,
    pub tty: u32,
    pub start_ts: u64,
    pub sid: i64,
    pub pgid: i64,
    pub vpid: i64,
    pub exe_from_memfd: bool,
    pub exe_upper_layer: bool,
    pub exe_ino_ctime: u64,
    pub exe_ino_mtime: u64,
    pub cgroup_id: u64,
    pub exited: Option<Instant>,
    /// The container runtime itself (see [`crate::event::Process::container_runtime`]).
    pub runtime: bool,
    /// Environment captured at exec, shared with forks until they exec.
    pub env: Arc<[String]>,
}

/// What the BPF program read from the task at exec, so user space need not read /proc for it.
#[derive(Debug, Clone, Copy, Default)]
pub struct KernelExec {
    pub sid: i64,
    pub pgid: i64,
    pub vpid: i64,
    /// (ctime, mtime) of the executable's inode in ns; None when the kernel layout was not known.
    pub exe_times: Option<(u64, u64)>,
}

/// Binaries of container runtimes and their helpers: a process running one of them, started in the
/// host's mount namespace, is the runtime setting containers up, not a workload.
pub const RUNTIME_BINARIES: &[&str] = &[
    "runc",
    "crun",
    "youki",
    "runsc",
    "conmon",
    "conmon-rs",
    "containerd",
    "containerd-shim",
    "containerd-shim-runc-v1",
    "containerd-shim-runc-v2",
    "dockerd",
    "docker-proxy",
    "podman",
    "crio",
    "netavark",
    "aardvark-dns",
    "slirp4netns",
    "pasta",
    "kata-runtime",
];

/// Minimal init processes a runtime starts as a container's first process (the pause container,
/// podman's `--init`): runtime-owned only when the runtime itself executed them.
pub const RUNTIME_INITS: &[&str] = &["pause", "catatonit", "docker-init", "tini", "tini-static"];

/// Most bytes of a written file's history kept: (container cgroup, path) → writer.
const MAX_WRITERS: usize = 16_384;

/// The mount namespace inode of a process (0 when unknown).
pub fn mntns_of(pid: i64) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(format!("/proc/{pid}/ns/mnt")).map_or(0, |m| m.ino())
}

/// Process table plus enrichment caches.
pub struct Table {
    procs: HashMap<i64, Proc>,
    containers: HashMap<u64, (Option<Container>, Instant, Instant)>,
    resolver: Resolver,
    users: HashMap<(u64, u32, bool), Option<String>>,
    upper: HashMap<String, Option<String>>,
    /// Last writer of files written in containers: (cgroup id, path) → `name[pid]`.
    writers: HashMap<(u64, String), String>,
    /// moat's own (the host's) mount namespace.
    host_mntns: u64,
    boot_to_wall: i64,
    last_sweep: Instant,
}

fn read(path: &str) -> Option<String> {
    use std::io::Read;
    let f = std::fs::File::open(path).ok()?;
    let mut s = String::new();
    f.take(1 << 20).read_to_string(&mut s).ok()?;
    Some(s)
}

fn link(path: &str) -> Option<String> {
    std::fs::read_link(path)
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// Fields of /proc/PID/stat after the comm: (ppid, pgrp, session, tty_nr, starttime ticks).
fn stat_fields(text: &str) -> Option<(String, i64, i64, i64, u32, u64)> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    let rest: Vec<&str> = text.get(close + 2..)?.split_whitespace().collect();
    let ppid = rest.get(1)?.parse().ok()?;
    let pgrp = rest.get(2)?.parse().ok()?;
    let sid = rest.get(3)?.parse().ok()?;
    let tty = rest.get(4)?.parse::<i64>().ok()? as u32;
    let start = rest.get(19)?.parse().ok()?;
    Some((comm, ppid, pgrp, sid, tty, start))
}

/// Nanoseconds to add to CLOCK_BOOTTIME to get wall-clock time.
pub fn boot_to_wall() -> i64 {
    let ts = |clk| {
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes into the timespec we own.
        unsafe { libc::clock_gettime(clk, &mut t) };
        t.tv_sec * 1_000_000_000 + t.tv_nsec
    };
    ts(libc::CLOCK_REALTIME) - ts(libc::CLOCK_BOOTTIME)
}

fn split_argv(raw: &[u8]) -> Vec<String> {
    let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
    if raw.is_empty() {
        return vec![];
    }
    raw.split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

impl Default for Table {
    fn default() -> Self {
        Self::new()
    }
}

impl Table {
    pub fn new() -> Table {
        Table {
            procs: HashMap::new(),
            containers: HashMap::new(),
            resolver: Resolver::new(),
            users: HashMap::new(),
            upper: HashMap::new(),
            writers: HashMap::new(),
            host_mntns: mntns_of(std::process::id() as i64),
            boot_to_wall: boot_to_wall(),
            last_sweep: Instant::now(),
        }
    }

    /// Boot-time ns → wall-clock ns.
    pub fn wall(&self, boot_ns: u64) -> u64 {
        (boot_ns as i64 + self.boot_to_wall).max(0) as u64
    }

    /// Loads every process currently in /proc.
    pub fn scan(&mut self) {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return;
        };
        let tick = 100u64; // USER_HZ
        for d in dir.flatten() {
            let Some(pid) = d.file_name().to_str().and_then(|s| s.parse::<i64>().ok()) else {
                continue;
            };
            if let Some(p) = self.read_proc(pid) {
                let mut p = p;
                p.runtime = RUNTIME_BINARIES.contains(&base_name(&p.exepath))
                    && mntns_of(pid) == self.host_mntns;
                // starttime is in clock ticks since boot.
                p.start_ts = self.wall(p.start_ts * (1_000_000_000 / tick));
                self.procs.insert(pid, p);
            }
        }
    }

    /// Reads a process from /proc (start_ts left in ticks for the caller).
    fn read_proc(&self, pid: i64) -> Option<Proc> {
        let (comm, ppid, pgrp, sid, tty, start) =
            stat_fields(&read(&format!("/proc/{pid}/stat"))?)?;
        let argv = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let mut args = split_argv(&argv);
        let exe = if args.is_empty() {
            comm.clone()
        } else {
            args.remove(0)
        };
        let exepath = link(&format!("/proc/{pid}/exe")).unwrap_or_default();
        Some(Proc {
            pid,
            ppid,
            name: comm,
            exe,
            exe_from_memfd: exepath.starts_with("/memfd:"),
            exepath,
            args: args.into(),
            cwd: link(&format!("/proc/{pid}/cwd")).unwrap_or_default(),
            tty,
            start_ts: start,
            sid,
            pgid: pgrp,
            vpid: pid,
            ..Default::default()
        })
    }

    /// A fork: the child starts as a copy of its parent.
    pub fn fork(&mut self, parent: i64, child: i64, ts: u64) {
        let mut p = self.procs.get(&parent).cloned().unwrap_or_else(|| Proc {
            pid: parent,
            ..Default::default()
        });
        p.ppid = parent;
        p.pid = child;
        p.vpid = child;
        p.start_ts = ts;
        p.exited = None;
        self.procs.insert(child, p);
    }

    /// An exec replaced the process image.
    #[allow(clippy::too_many_arguments)]
    pub fn exec(
        &mut self,
        pid: i64,
        ppid: i64,
        comm: &str,
        filename: &str,
        argv: &[u8],
        tty: u32,
        memfd: bool,
        start_ts: u64,
        mntns: u64,
        env: &[u8],
        kernel: Option<&KernelExec>,
    ) {
        let mut args = split_argv(argv);
        let exe = if args.is_empty() {
            filename.to_string()
        } else {
            args.remove(0)
        };
        let old = self.procs.remove(&pid).unwrap_or_default();
        // With the eBPF sensor the working directory is inherited at fork and followed through
        // chdir/fchdir, so an exec reads /proc only for a process the table never saw.
        let cwd = match kernel {
            Some(_) if !old.cwd.is_empty() => old.cwd,
            _ => link(&format!("/proc/{pid}/cwd")).unwrap_or(old.cwd),
        };
        let exepath = if filename.is_empty() {
            // Unknown (the degraded sensor could not read /proc in time): never guess.
            String::new()
        } else if memfd {
            link(&format!("/proc/{pid}/exe")).unwrap_or_else(|| filename.to_string())
        } else if filename.starts_with('/') {
            filename.to_string()
        } else {
            link(&format!("/proc/{pid}/exe")).unwrap_or_else(|| join(&cwd, filename))
        };
        let (sid, pgid) = match kernel {
            Some(k) => (k.sid, k.pgid),
            None => match read(&format!("/proc/{pid}/stat"))
                .as_deref()
                .and_then(stat_fields)
            {
                Some((_, _, pg, s, _, _)) => (s, pg),
                None => (old.sid, old.pgid),
            },
        };
        let (ctime, mtime) = kernel
            .and_then(|k| k.exe_times)
            .unwrap_or_else(|| exe_times(pid));
        let vpid = match kernel {
            Some(k) if k.vpid > 0 => k.vpid,
            _ => ns_pid(pid).unwrap_or(pid),
        };
        // Runtime ownership: a runtime binary started on the host; runc re-executing itself from a
        // memfd copy; or an init binary executed by the runtime. Anything else is a workload, even
        // when its name is spoofed ("runc:[2:INIT]").
        let base = base_name(&exepath);
        let on_host = self.host_mntns == 0 || mntns == 0 || mntns == self.host_mntns;
        let runtime = (on_host && RUNTIME_BINARIES.contains(&base))
            || (old.runtime
                && (memfd
                    || RUNTIME_BINARIES.contains(&base)
                    // runc re-executing itself (`runc init` via /proc/self/exe or a sealed fd copy).
                    || filename.starts_with("/proc/self/")
                    || filename.starts_with("/dev/fd/")
                    || filename.starts_with("/proc/thread-self/")))
            || (old.runtime && RUNTIME_INITS.contains(&base));
        self.procs.insert(
            pid,
            Proc {
                pid,
                ppid,
                name: comm.to_string(),
                exe,
                exepath,
                args: args.into(),
                cwd,
                tty,
                start_ts: if old.start_ts != 0 {
                    old.start_ts
                } else {
                    start_ts
                },
                sid,
                pgid,
                vpid,
                exe_from_memfd: memfd,
                exe_upper_layer: false,
                exe_ino_ctime: ctime,
                exe_ino_mtime: mtime,
                cgroup_id: old.cgroup_id,
                exited: None,
                runtime,
                env: split_argv(env).into(),
            },
        );
    }

    /// A successful chdir/fchdir: the kernel's view of the new directory when the process is still
    /// there (symbolic links resolved), else `path` joined onto the directory moat knew.
    pub fn chdir(&mut self, pid: i64, path: &str) {
        let now = link(&format!("/proc/{pid}/cwd"));
        if let Some(p) = self.procs.get_mut(&pid) {
            match now {
                Some(d) => p.cwd = d,
                None if !path.is_empty() && !p.cwd.is_empty() => p.cwd = join(&p.cwd, path),
                // An fchdir by a process already gone: unknown, read again at its next exec.
                None => p.cwd.clear(),
            }
        }
    }

    /// Remembers who wrote a file in a container (an open for writing, the target of a rename).
    pub fn note_write(&mut self, cgroup_id: u64, path: &str, writer: String) {
        if self.writers.len() >= MAX_WRITERS {
            // Bounded: forget the oldest half (arbitrary order) rather than grow.
            let keep: Vec<_> = self.writers.keys().skip(MAX_WRITERS / 2).cloned().collect();
            let mut kept = HashMap::with_capacity(MAX_WRITERS);
            for k in keep {
                if let Some(v) = self.writers.remove(&k) {
                    kept.insert(k, v);
                }
            }
            self.writers = kept;
        }
        self.writers.insert((cgroup_id, path.to_string()), writer);
    }

    /// A rename moves the writer history with the file (dpkg writes `x.dpkg-new`, then renames).
    pub fn note_rename(&mut self, cgroup_id: u64, from: &str, to: &str, by: String) {
        let w = self
            .writers
            .remove(&(cgroup_id, from.to_string()))
            .unwrap_or(by);
        self.note_write(cgroup_id, to, w);
    }

    /// The last writer of a file in a container, when the sensor saw it.
    pub fn writer_of(&self, cgroup_id: u64, path: &str) -> Option<String> {
        self.writers.get(&(cgroup_id, path.to_string())).cloned()
    }

    pub fn exit(&mut self, pid: i64) {
        if let Some(p) = self.procs.get_mut(&pid) {
            p.exited = Some(Instant::now());
        }
        if self.last_sweep.elapsed() > Duration::from_secs(10) {
            self.last_sweep = Instant::now();
            self.procs.retain(|_, p| {
                p.exited
                    .is_none_or(|t| t.elapsed() < Duration::from_secs(30))
            });
        }
    }

    /// Makes sure a process is known (events from processes started before the scan raced it).
    fn ensure(&mut self, pid: i64) {
        if !self.procs.contains_key(&pid)
            && let Some(mut p) = self.read_proc(pid)
        {
            p.start_ts = self.wall(p.start_ts * 10_000_000);
            self.procs.insert(pid, p);
        }
    }

    /// The container of a cgroup (cached by cgroup id; resolved from /proc/PID/cgroup).
    fn container(&mut self, cgroup_id: u64, pid: i64) -> Option<Container> {
        // Cached; a container whose image is still unknown (its first processes run before the
        // container's root is mounted) is looked up again: every 20 ms in its first 5 s, then every second.
        let first_seen = match self.containers.get(&cgroup_id) {
            Some((c, at, first)) => {
                let every = if first.elapsed() < Duration::from_secs(5) {
                    20
                } else {
                    1000
                };
                if c.as_ref().is_none_or(|c| c.image.is_some())
                    || at.elapsed() < Duration::from_millis(every)
                {
                    return c.clone();
                }
                *first
            }
            None => Instant::now(),
        };
        let text = read(&format!("/proc/{pid}/cgroup"))?;
        let c = match container::from_cgroup(&text) {
            Some((rt, id, pod)) => {
                let root = self
                    .upperdir(&id, pid)
                    .as_deref()
                    .and_then(container::graphroot_of);
                Some(self.resolver.container(rt, &id, pod, root))
            }
            None => None,
        };
        self.containers
            .insert(cgroup_id, (c.clone(), Instant::now(), first_seen));
        c
    }

    fn user_name(&mut self, mntns: u64, pid: i64, id: u32, group: bool) -> Option<String> {
        let key = (mntns, id, group);
        if let Some(n) = self.users.get(&key) {
            return n.clone();
        }
        let file = if group { "group" } else { "passwd" };
        let text =
            read(&format!("/proc/{pid}/root/etc/{file}")).or_else(|| read(&format!("/etc/{file}")));
        let name = text.and_then(|t| {
            t.lines().find_map(|l| {
                let mut it = l.split(':');
                let n = it.next()?;
                let num = it.nth(1)?.parse::<u32>().ok()?;
                (num == id).then(|| n.to_string())
            })
        });
        self.users.insert(key, name.clone());
        name
    }

    /// Records the container of a cgroup from the directory names the kernel reported with an exec,
    /// so attribution does not depend on the process still being in /proc.
    pub fn note_cgroup(&mut self, cgroup_id: u64, parent: &str, leaf: &str) {
        if self
            .containers
            .get(&cgroup_id)
            .is_some_and(|(c, _, _)| c.is_some())
        {
            return;
        }
        let path = format!("0::/{parent}/{leaf}");
        if let Some((rt, id, pod)) = container::from_cgroup(&path) {
            let c = self.resolver.container(rt, &id, pod, None);
            let now = Instant::now();
            self.containers.insert(
                cgroup_id,
                (
                    Some(c),
                    now.checked_sub(Duration::from_secs(1)).unwrap_or(now),
                    now,
                ),
            );
        }
    }

    /// The overlay upper dir of a container's root filesystem (cached per container).
    fn upperdir(&mut self, full_id: &str, pid: i64) -> Option<String> {
        if let Some(u) = self.upper.get(full_id) {
            return u.clone();
        }
        let u = read(&format!("/proc/{pid}/mountinfo")).and_then(|mi| {
            mi.lines()
                .find(|l| l.split_whitespace().nth(4) == Some("/"))
                .and_then(|l| {
                    l.split([',', ' '])
                        .find_map(|o| o.strip_prefix("upperdir="))
                        .map(str::to_string)
                })
        });
        if u.is_some() {
            self.upper.insert(full_id.to_string(), u.clone());
        }
        u
    }

    /// Whether the executable lives in the container's writable overlay layer.
    fn upper_layer(&mut self, c: &Container, pid: i64, exepath: &str) -> bool {
        match self.upperdir(&c.full_id.clone(), pid) {
            Some(u) if exepath.starts_with('/') => {
                std::path::Path::new(&format!("{u}{exepath}")).exists()
            }
            _ => false,
        }
    }

    /// Fills the process, user and container context of an event.
    #[allow(clippy::too_many_arguments)]
    pub fn enrich(
        &mut self,
        ev: &mut Event,
        pid: i64,
        tid: i64,
        uid: u32,
        gid: u32,
        loginuid: u32,
        caps: u64,
        cgroup_id: u64,
        mntns: u64,
        comm: &str,
    ) {
        self.ensure(pid);
        let container = self.container(cgroup_id, pid);
        let mut p = self.procs.get(&pid).cloned().unwrap_or_else(|| Proc {
            pid,
            name: comm.to_string(),
            ..Default::default()
        });
        if p.cgroup_id != cgroup_id
            && let Some(e) = self.procs.get_mut(&pid)
        {
            e.cgroup_id = cgroup_id;
        }
        let mut exe_writer = None;
        let (mut script, mut script_upper_layer, mut script_writer) = (None, false, None);
        if ev.evt_type == "execve"
            && let Some(c) = &container
        {
            p.exe_upper_layer = self.upper_layer(c, pid, &p.exepath.clone());
            if p.exe_upper_layer {
                exe_writer = self.writer_of(cgroup_id, &p.exepath);
            }
            script = script_operand(&p.name, &p.exepath, &p.args, &p.cwd);
            if let Some(sp) = &script {
                script_upper_layer = self.upper_layer(c, pid, sp);
                if script_upper_layer {
                    script_writer = self.writer_of(cgroup_id, sp);
                }
            }
        }
        let mut ancestors = Vec::new();
        let mut cur = p.ppid;
        for i in 0..16 {
            let Some(a) = self.procs.get(&cur) else { break };
            ancestors.push(Ancestor {
                pid: a.pid,
                name: a.name.clone(),
                exe: a.exe.clone(),
                exepath: a.exepath.clone(),
                args: if i == 0 { a.args.to_vec() } else { vec![] },
                start_ts: a.start_ts,
            });
            if a.ppid == cur || a.ppid <= 0 {
                break;
            }
            cur = a.ppid;
        }
        let user = self.user_name(mntns, pid, uid, false);
        let group = self.user_name(mntns, pid, gid, true);
        let loginuid = if loginuid == u32::MAX {
            -1
        } else {
            loginuid as i64
        };
        let loginname = if loginuid >= 0 {
            self.user_name(mntns, pid, loginuid as u32, false)
        } else {
            None
        };
        let (sname, vpgid_name, vpgid_exe) = (
            self.procs.get(&p.sid).map(|s| s.name.clone()),
            self.procs.get(&p.pgid).map(|s| s.name.clone()),
            self.procs.get(&p.pgid).map(|s| s.exe.clone()),
        );
        ev.proc = Process {
            pid,
            tid,
            vpid: p.vpid,
            name: if comm.is_empty() {
                p.name.clone()
            } else {
                comm.to_string()
            },
            exe: p.exe,
            exepath: p.exepath,
            args: p.args.to_vec(),
            cwd: p.cwd,
            tty: p.tty,
            uid,
            gid,
            loginuid,
            user,
            loginname,
            group,
            start_ts: p.start_ts,
            cap_effective: caps,
            cap_permitted: 0,
            cap_inheritable: 0,
            exe_from_memfd: p.exe_from_memfd,
            exe_upper_layer: p.exe_upper_layer,
            container_runtime: p.runtime,
            exe_writer,
            script,
            script_upper_layer,
            script_writer,
            env: if ev.evt_type == "execve" {
                p.env.to_vec()
            } else {
                Vec::new()
            },
            exe_ino_ctime: p.exe_ino_ctime,
            exe_ino_mtime: p.exe_ino_mtime,
            sid: p.sid,
            sname,
            vpgid: p.pgid,
            vpgid_name,
            vpgid_exe,
            ancestors,
        };
        ev.container = container;
    }

    /// The cwd moat knows for a process (for relative paths).
    pub fn cwd(&self, pid: i64) -> Option<String> {
        link(&format!("/proc/{pid}/cwd")).or_else(|| self.procs.get(&pid).map(|p| p.cwd.clone()))
    }
}

fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn ns_pid(pid: i64) -> Option<i64> {
    let s = read(&format!("/proc/{pid}/status"))?;
    let line = s.lines().find(|l| l.starts_with("NSpid:"))?;
    line.split_whitespace().last()?.parse().ok()
}

fn exe_times(pid: i64) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(format!("/proc/{pid}/exe")) {
        Ok(m) => (
            (m.ctime() as u64) * 1_000_000_000 + m.ctime_nsec() as u64,
            (m.mtime() as u64) * 1_000_000_000 + m.mtime_nsec() as u64,
        ),
        Err(_) => (0, 0),
    }
}

/// Joins a relative path onto a directory and normalizes `.` and `..` lexically.
pub fn join(dir: &str, rel: &str) -> String {
    let full = if rel.starts_with('/') {
        rel.to_string()
    } else {
        format!("{}/{rel}", dir.trim_end_matches('/'))
    };
    normalize(&full)
}

/// Lexical normalization of an absolute path.
pub fn normalize(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    format!("/{}", out.join("/"))
}

/// Script interpreters whose first operand is a program file (`sh x.sh`, `python3 x.py`), by the
/// base name of the executable (`python3.11` counts as python).
fn is_interpreter(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "sh", "ash", "bash", "dash", "ksh", "mksh", "zsh", "csh", "tcsh", "busybox", "perl",
        "ruby", "node", "nodejs", "php", "lua", "tclsh", "expect", "Rscript",
    ];
    let base = name.rsplit('/').next().unwrap_or(name);
    EXACT.contains(&base)
        || base
            .strip_prefix("python")
            .is_some_and(|v| v.chars().all(|c| c.is_ascii_digit() || c == '.'))
        || base.strip_prefix("perl5").is_some()
        || base
            .strip_prefix("php")
            .is_some_and(|v| v.chars().all(|c| c.is_ascii_digit() || c == '.'))
        || base
            .strip_prefix("lua")
            .is_some_and(|v| v.chars().all(|c| c.is_ascii_digit() || c == '.'))
}

/// The script file an interpreter runs: its first operand after options, made absolute against the
/// cwd. None for inline code (`-c`, `-e`, `-m module`, `--eval`), standard input or a non-interpreter.
pub(crate) fn script_operand(
    name: &str,
    exepath: &str,
    args: &[String],
    cwd: &str,
) -> Option<String> {
    if !is_interpreter(name) && !is_interpreter(exepath) {
        return None;
    }
    // busybox runs applets: only `busybox sh FILE` / `busybox ash FILE` run a script.
    let mut args = args;
    if name == "busybox" || exepath.ends_with("/busybox") {
        match args.first().map(String::as_str) {
            Some("sh" | "ash" | "bash") => args = &args[1..],
            _ => return None,
        }
    }
    let base = exepath.rsplit('/').next().unwrap_or(exepath);
    let shell = [
        "sh", "ash", "bash", "dash", "ksh", "mksh", "zsh", "csh", "tcsh", "busybox",
    ]
    .iter()
    .any(|s| *s == name || *s == base);
    for a in args {
        match a.as_str() {
            // Inline code or standard input: no script file.
            "-c" | "-s" | "-" if shell => return None,
            "-c" | "-e" | "-E" | "-m" | "-r" | "--eval" | "--command" | "-" if !shell => {
                return None;
            }
            "-o" | "-O" if shell => continue,
            o if o.starts_with('-') || o.starts_with('+') => continue,
            path => {
                if path.starts_with('/') {
                    return Some(path.to_string());
                }
                if cwd.is_empty() {
                    return None;
                }
                return Some(format!(
                    "{}/{}",
                    cwd.trim_end_matches('/'),
                    path.trim_start_matches("./")
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(join("/var/www", "../../etc/passwd"), "/etc/passwd");
        assert_eq!(join("/", "a/./b"), "/a/b");
        assert_eq!(normalize("/a//b/"), "/a/b");
    }

    #[test]
    fn stat_and_argv() {
        let s = "123 (my (odd) proc) S 1 123 123 34816 0 0 0 0 0 0 0 0 0 0 20 0 1 0 4242 0 0";
        let (comm, ppid, pg, sid, tty, start) = stat_fields(s).unwrap();
        assert_eq!(
            (comm.as_str(), ppid, pg, sid, tty, start),
            ("my (odd) proc", 1, 123, 123, 34816, 4242)
        );
        assert_eq!(split_argv(b"ls\0-l\0"), vec!["ls", "-l"]);
        assert!(split_argv(b"").is_empty());
    }

    #[test]
    fn table_tracks_this_process() {
        let mut t = Table::new();
        t.scan();
        let me = std::process::id() as i64;
        let mut ev = Event {
            evt_type: "openat".into(),
            ..Default::default()
        };
        t.enrich(&mut ev, me, me, 0, 0, u32::MAX, 0, 1, 1, "");
        assert!(!ev.proc.exepath.is_empty());
        assert!(!ev.proc.ancestors.is_empty(), "parent chain from /proc");
        t.fork(me, 999_999_999, 1);
        t.exec(
            999_999_999,
            me,
            "child",
            "/bin/child",
            b"child\0-x\0",
            0,
            false,
            1,
            0,
            b"A=1\0",
            None,
        );
        let mut ev = Event {
            evt_type: "execve".into(),
            ..Default::default()
        };
        t.enrich(
            &mut ev,
            999_999_999,
            999_999_999,
            0,
            0,
            u32::MAX,
            0,
            1,
            1,
            "child",
        );
        assert_eq!(ev.proc.args, vec!["-x"]);
        assert_eq!(ev.proc.ancestors[0].pid, me);
    }

    #[test]
    fn kernel_exec_inherits_cwd_and_takes_ids_from_the_kernel() {
        let mut t = Table::new();
        let me = std::process::id() as i64;
        t.fork(me, 999_999_998, 1);
        // A parent the table never saw has no cwd: the exec reads it from /proc (none here).
        t.chdir(999_999_998, "/srv");
        t.exec(
            999_999_998,
            me,
            "w",
            "/bin/w",
            b"w\0",
            0,
            false,
            1,
            0,
            b"",
            Some(&KernelExec {
                sid: 7,
                pgid: 8,
                vpid: 3,
                exe_times: Some((11, 12)),
            }),
        );
        let p = &t.procs[&999_999_998];
        assert_eq!((p.sid, p.pgid, p.vpid), (7, 8, 3));
        assert_eq!((p.exe_ino_ctime, p.exe_ino_mtime), (11, 12));
        // Known cwd: kept at exec, followed through a relative chdir of a process /proc no longer has.
        t.procs.get_mut(&999_999_998).unwrap().cwd = "/srv".into();
        t.chdir(999_999_998, "www/../data");
        assert_eq!(t.procs[&999_999_998].cwd, "/srv/data");
        t.fork(999_999_998, 999_999_997, 2);
        t.exec(
            999_999_997,
            999_999_998,
            "c",
            "/bin/c",
            b"c\0",
            0,
            false,
            2,
            0,
            b"",
            Some(&KernelExec::default()),
        );
        assert_eq!(t.procs[&999_999_997].cwd, "/srv/data", "inherited at fork");
    }

    #[test]
    fn script_operands() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            script_operand("sh", "/usr/bin/dash", &a(&["/tmp/x.sh"]), "/"),
            Some("/tmp/x.sh".into())
        );
        assert_eq!(
            script_operand("bash", "/usr/bin/bash", &a(&["-e", "run.sh"]), "/work"),
            Some("/work/run.sh".into())
        );
        assert_eq!(
            script_operand("sh", "/usr/bin/dash", &a(&["-c", "echo hi"]), "/"),
            None
        );
        assert_eq!(
            script_operand(
                "python3",
                "/usr/bin/python3.11",
                &a(&["-u", "./x.py"]),
                "/tmp"
            ),
            Some("/tmp/x.py".into())
        );
        assert_eq!(
            script_operand(
                "python3",
                "/usr/bin/python3.11",
                &a(&["-m", "http.server"]),
                "/"
            ),
            None
        );
        assert_eq!(
            script_operand("perl", "/usr/bin/perl", &a(&["-e", "print 1"]), "/"),
            None
        );
        assert_eq!(
            script_operand("busybox", "/bin/busybox", &a(&["ls", "/tmp"]), "/"),
            None
        );
        assert_eq!(
            script_operand("ls", "/usr/bin/ls", &a(&["/tmp/x"]), "/"),
            None
        );
        assert_eq!(script_operand("sh", "/usr/bin/dash", &a(&[]), "/"), None);
    }
}
