//! The event model: one kernel event (a syscall exit, an exec, a process exit) with the process,
//! container and file-descriptor context the rules need.
//!
//! This is also moat's recorded-event format: `moat runtime watch --record FILE` writes one JSON object
//! per line in this shape, and `moat runtime replay FILE` reads it back. Absent optional fields mean
//! "not known", which the rule engine treats as a failed extraction (a comparison on them is false),
//! never as an empty string.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// One event, in the shape of Falco's syscall events after the exit of the call.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Event {
    /// Sequence number assigned by the sensor (1-based).
    #[serde(default)]
    pub num: u64,
    /// Wall-clock time of the event, nanoseconds since the Unix epoch.
    #[serde(default)]
    pub ts: u64,
    /// The syscall or event name, as Falco spells it: `execve`, `openat`, `connect`, `procexit`...
    #[serde(rename = "type")]
    pub evt_type: String,
    /// `<` for an exit event (the default; moat's sensor reports calls at exit), `>` for an enter event.
    #[serde(default = "exit_dir")]
    pub dir: String,
    /// The call's return value (negative errno on failure).
    #[serde(default)]
    pub res: i64,
    /// Arguments by Falco's names (`flags`, `request`, `domain`, `target`...), already rendered as Falco
    /// renders them (`O_RDONLY|O_CLOEXEC`, `PTRACE_ATTACH`, `AF_PACKET`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<String, String>,
    /// The thread that made the call.
    pub proc: Process,
    /// The file descriptor the call created or used, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fd: Option<Fd>,
    /// The data of a read/receive call (`evt.buffer`), at most 256 bytes, hex in JSON.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "hex_bytes")]
    pub buffer: Option<Vec<u8>>,
    /// The container the process runs in; `None` on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    /// Derived values computed once per event by [`Event::prepare`].
    #[serde(skip)]
    #[doc(hidden)]
    pub derived: Derived,
}

fn exit_dir() -> String {
    "<".to_string()
}

/// Values derived from the event once so rule evaluation never allocates per rule.
#[derive(Debug, Clone, Default)]
pub struct Derived {
    pub(crate) type_id: u16,
    pub(crate) args: String,
    pub(crate) cmdline: String,
    pub(crate) pcmdline: Option<String>,
    pub(crate) evt_args: String,
    pub(crate) res_str: String,
    /// Open flags decoded once: (read, write, exec).
    pub(crate) open_rwx: (bool, bool, bool),
    pub(crate) prepared: bool,
}

/// The process (thread) context of an event.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Process {
    pub pid: i64,
    #[serde(default)]
    pub tid: i64,
    /// Pid as seen inside the process's pid namespace.
    #[serde(default)]
    pub vpid: i64,
    /// The kernel's `comm` (at most 15 bytes): Falco's `proc.name`.
    pub name: String,
    /// argv[0]: Falco's `proc.exe`.
    #[serde(default)]
    pub exe: String,
    /// The resolved executable path: Falco's `proc.exepath`.
    #[serde(default)]
    pub exepath: String,
    /// argv[1..].
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub cwd: String,
    /// Controlling terminal device number, 0 when none.
    #[serde(default)]
    pub tty: u32,
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub gid: u32,
    /// Audit login uid; -1 when unset.
    #[serde(default = "minus_one")]
    pub loginuid: i64,
    /// User name of `uid`, resolved in the container's /etc/passwd when in a container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loginname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Process start, nanoseconds since the epoch.
    #[serde(default)]
    pub start_ts: u64,
    /// Effective capability mask.
    #[serde(default)]
    pub cap_effective: u64,
    #[serde(default)]
    pub cap_permitted: u64,
    #[serde(default)]
    pub cap_inheritable: u64,
    #[serde(default)]
    pub exe_from_memfd: bool,
    #[serde(default)]
    pub exe_upper_layer: bool,
    /// The process is the container runtime itself (moat's `proc.is_container_runtime`): it runs a
    /// runtime binary (runc, crun, conmon, containerd-shim, podman...) started on the host, or is a
    /// fork of one that has executed nothing else since — runc's `runc:[2:INIT]` setting up a
    /// container's mounts and namespaces, or the pause/catatonit init the runtime itself started.
    /// Decided by the sensor from what it saw, never from a process name.
    #[serde(default, skip_serializing_if = "is_false")]
    pub container_runtime: bool,
    /// Who wrote the executable after the container started (`proc.exe_writer`): the process name
    /// and pid of the last writer the sensor saw (open for writing, or the source of a rename).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe_writer: Option<String>,
    /// The script an interpreter (sh, bash, python, perl, ruby, node, php...) was started on
    /// (`proc.script`): its first operand, absolute; none for `-c`/`-e` code or no operand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// The script lives in the container's writable layer: written or modified after the container
    /// started, not part of the image (`proc.is_script_upper_layer`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub script_upper_layer: bool,
    /// Who wrote the script after the container started, when the sensor saw it (`proc.script_writer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script_writer: Option<String>,
    /// The environment at exec (`proc.env`), `NAME=value` entries, as far as the sensor captured it
    /// (the first 4 KiB of the environment block).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// ctime and mtime of the executable's inode, ns since the epoch (0 when unknown).
    #[serde(default)]
    pub exe_ino_ctime: u64,
    #[serde(default)]
    pub exe_ino_mtime: u64,
    #[serde(default)]
    pub sid: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sname: Option<String>,
    /// Process group id, as seen in the process's pid namespace.
    #[serde(default)]
    pub vpgid: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpgid_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpgid_exe: Option<String>,
    /// Ancestors, nearest first: `ancestors[0]` is the parent.
    #[serde(default)]
    pub ancestors: Vec<Ancestor>,
}

fn minus_one() -> i64 {
    -1
}

/// An ancestor process: what `proc.pname`, `proc.aname[N]`, `proc.pcmdline` read.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Ancestor {
    pub pid: i64,
    pub name: String,
    #[serde(default)]
    pub exe: String,
    #[serde(default)]
    pub exepath: String,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub start_ts: u64,
}

/// Kind of file descriptor, Falco's `fd.type` / `fd.typechar`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FdType {
    #[default]
    File,
    Directory,
    Ipv4,
    Ipv6,
    Unix,
    Pipe,
    Event,
    Signalfd,
    Eventpoll,
    Inotify,
    Timerfd,
    Netlink,
    Memfd,
    Bpf,
    Unknown,
}

impl FdType {
    /// Falco's `fd.type` string.
    pub fn as_str(self) -> &'static str {
        match self {
            FdType::File => "file",
            FdType::Directory => "directory",
            FdType::Ipv4 => "ipv4",
            FdType::Ipv6 => "ipv6",
            FdType::Unix => "unix",
            FdType::Pipe => "pipe",
            FdType::Event => "event",
            FdType::Signalfd => "signalfd",
            FdType::Eventpoll => "eventpoll",
            FdType::Inotify => "inotify",
            FdType::Timerfd => "timerfd",
            FdType::Netlink => "netlink",
            FdType::Memfd => "memfd",
            FdType::Bpf => "bpf",
            FdType::Unknown => "unknown",
        }
    }
    /// Falco's `fd.typechar`.
    pub fn typechar(self) -> &'static str {
        match self {
            FdType::File | FdType::Memfd => "f",
            FdType::Directory => "d",
            FdType::Ipv4 => "4",
            FdType::Ipv6 => "6",
            FdType::Unix => "u",
            FdType::Pipe => "p",
            FdType::Event => "e",
            FdType::Signalfd => "s",
            FdType::Eventpoll => "l",
            FdType::Inotify => "i",
            FdType::Timerfd => "t",
            FdType::Netlink => "n",
            FdType::Bpf => "b",
            FdType::Unknown => "o",
        }
    }
    pub fn is_ip(self) -> bool {
        matches!(self, FdType::Ipv4 | FdType::Ipv6)
    }
}

/// The file descriptor an event created or used.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Fd {
    /// Descriptor number; -1 when the call failed to create one.
    pub num: i64,
    #[serde(rename = "type", default)]
    pub typ: FdType,
    /// Absolute path for files; `cip:cport->sip:sport` for sockets (filled by [`Event::prepare`] when empty).
    #[serde(default)]
    pub name: String,
    /// The path exactly as passed to the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nameraw: Option<String>,
    /// `tcp`, `udp`, `icmp` or `raw` for sockets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub l4proto: Option<String>,
    /// Local address and port (sockets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lip: Option<IpAddr>,
    #[serde(default)]
    pub lport: u16,
    /// Remote address and port (sockets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rip: Option<IpAddr>,
    #[serde(default)]
    pub rport: u16,
    /// True when the local end is the server (accepted/listening socket).
    #[serde(default)]
    pub is_server: bool,
    #[serde(default)]
    pub connected: bool,
    #[serde(default)]
    pub name_changed: bool,
}

impl Fd {
    /// Client and server ends: `(cip, cport, sip, sport)`.
    pub fn client_server(&self) -> (Option<IpAddr>, u16, Option<IpAddr>, u16) {
        if self.is_server {
            (self.rip, self.rport, self.lip, self.lport)
        } else {
            (self.lip, self.lport, self.rip, self.rport)
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A mount of a container (from the runtime's OCI configuration): `container.mount.*`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Mount {
    pub source: String,
    pub dest: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mode: String,
    #[serde(default)]
    pub rdwr: bool,
}

/// The container an event came from.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Container {
    /// Short (12 hex) id, as Falco's `container.id`.
    pub id: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub full_id: String,
    /// `podman`, `docker`, `containerd`, `cri-o`.
    #[serde(default)]
    pub runtime: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_repository: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privileged: Option<bool>,
    #[serde(default)]
    pub start_ts: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k8s_ns: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k8s_pod: Option<String>,
    /// Mounts from the runtime's OCI configuration; `None` when moat could not read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mounts: Option<Vec<Mount>>,
}

impl Event {
    /// Computes the derived values (type id, joined args, command lines). Idempotent; the engine calls
    /// it before evaluating, sensors may call it earlier.
    pub fn prepare(&mut self) {
        if self.derived.prepared {
            return;
        }
        let d = &mut self.derived;
        d.type_id = crate::rules::evttype::id_of(&self.evt_type);
        d.args = self.proc.args.join(" ");
        d.cmdline = if d.args.is_empty() {
            self.proc.name.clone()
        } else {
            format!("{} {}", self.proc.name, d.args)
        };
        d.pcmdline = self.proc.ancestors.first().map(|p| {
            if p.args.is_empty() {
                p.name.clone()
            } else {
                format!("{} {}", p.name, p.args.join(" "))
            }
        });
        d.evt_args = self
            .args
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ");
        d.res_str = res_name(self.res);
        let is_open = matches!(
            self.evt_type.as_str(),
            "open" | "openat" | "openat2" | "creat"
        );
        d.open_rwx = match self.args.get("flags") {
            Some(fl) if is_open => (
                fl.contains("O_RDONLY") || fl.contains("O_RDWR"),
                fl.contains("O_WRONLY") || fl.contains("O_RDWR") || self.evt_type == "creat",
                fl.contains("O_EXEC"),
            ),
            _ => (false, self.evt_type == "creat", false),
        };
        if let Some(fd) = &mut self.fd
            && fd.name.is_empty()
            && fd.typ.is_ip()
        {
            let (cip, cport, sip, sport) = fd.client_server();
            let fmt = |ip: Option<IpAddr>, port: u16| match ip {
                Some(IpAddr::V6(a)) => format!("[{a}]:{port}"),
                Some(a) => format!("{a}:{port}"),
                None => format!("0.0.0.0:{port}"),
            };
            fd.name = format!("{}->{}", fmt(cip, cport), fmt(sip, sport));
        }
        d.prepared = true;
    }

    /// Forgets derived values (after a mutation in tests or enrichment).
    pub fn invalidate(&mut self) {
        self.derived = Derived::default();
    }

    pub(crate) fn type_id(&self) -> u16 {
        self.derived.type_id
    }
}

/// Falco's `evt.res`: `SUCCESS` or the errno name.
pub fn res_name(res: i64) -> String {
    if res >= 0 {
        return "SUCCESS".to_string();
    }
    let name = match -res {
        1 => "EPERM",
        2 => "ENOENT",
        3 => "ESRCH",
        4 => "EINTR",
        5 => "EIO",
        9 => "EBADF",
        11 => "EAGAIN",
        12 => "ENOMEM",
        13 => "EACCES",
        14 => "EFAULT",
        16 => "EBUSY",
        17 => "EEXIST",
        20 => "ENOTDIR",
        21 => "EISDIR",
        22 => "EINVAL",
        24 => "EMFILE",
        28 => "ENOSPC",
        30 => "EROFS",
        38 => "ENOSYS",
        40 => "ELOOP",
        95 => "EOPNOTSUPP",
        97 => "EAFNOSUPPORT",
        98 => "EADDRINUSE",
        101 => "ENETUNREACH",
        104 => "ECONNRESET",
        110 => "ETIMEDOUT",
        111 => "ECONNREFUSED",
        113 => "EHOSTUNREACH",
        114 => "EALREADY",
        115 => "EINPROGRESS",
        _ => return format!("E{}", -res),
    };
    name.to_string()
}

/// Capability names by bit, for `thread.cap_effective`.
pub const CAP_NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Renders a capability mask as Falco does: names separated by spaces.
pub fn caps_string(mask: u64) -> String {
    CAP_NAMES
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1u64 << i) != 0)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `evt.buffer` as lower-case hex in the recorded-event JSON.
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_str(&b.iter().map(|x| format!("{x:02x}")).collect::<String>()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let Some(text) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        if text.len() % 2 != 0 || text.len() > 4096 {
            return Err(serde::de::Error::custom(
                "buffer: expected at most 2048 bytes as an even number of hex digits",
            ));
        }
        (0..text.len())
            .step_by(2)
            .map(|i| {
                text.get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| serde::de::Error::custom("buffer: not hex"))
            })
            .collect::<Result<Vec<u8>, _>>()
            .map(Some)
    }
}
