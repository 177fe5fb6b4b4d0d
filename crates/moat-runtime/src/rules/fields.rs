//! The fields moat provides to conditions and output templates, resolved once at load time to a
//! [`FieldRef`] (an enum id plus an optional argument), and their extraction from an [`Event`].
//!
//! A field name not in [`lookup`] is not provided: a rule that uses it is skipped at load time.

use std::borrow::Cow;
use std::net::IpAddr;

use crate::event::{Event, caps_string};

/// Value type of a field: decides how a comparison's right-hand side is parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    Int,
    Bool,
    Ip,
    /// Compared as "address within network".
    Net,
}

/// Every field moat can extract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum F {
    EvtType,
    EvtDir,
    EvtNum,
    EvtRes,
    EvtRawres,
    EvtFailed,
    EvtHostname,
    EvtArgs,
    EvtArg,
    EvtTime,
    EvtRawtime,
    EvtIsOpenRead,
    EvtIsOpenWrite,
    EvtIsOpenExec,
    EvtSource,
    SyscallType,
    ProcPid,
    ProcPpid,
    ProcVpid,
    ProcName,
    ProcExe,
    ProcExepath,
    ProcArgs,
    ProcCmdline,
    ProcCmdnargs,
    ProcCwd,
    ProcTty,
    ProcPname,
    ProcPexe,
    ProcPexepath,
    ProcPcmdline,
    ProcDuration,
    ProcPpidDuration,
    ProcAname,
    ProcAexe,
    ProcAexepath,
    ProcApid,
    ProcSname,
    ProcSid,
    ProcVpgid,
    ProcVpgidName,
    ProcVpgidExe,
    ProcIsVpgidLeader,
    ProcIsSessionLeader,
    ProcIsExeUpperLayer,
    ProcIsExeFromMemfd,
    ProcIsContainerRuntime,
    ProcExeWriter,
    ProcExeWriterName,
    ProcScript,
    ProcIsScriptUpperLayer,
    ProcScriptWriter,
    ProcScriptWriterName,
    ProcEnv,
    EvtBuffer,
    ContainerMountDest,
    ContainerMountSource,
    ContainerMounts,
    FdRipName,
    FdCipName,
    FdLipName,
    ProcExeInoCtime,
    ProcExeInoMtime,
    ProcExeInoCtimeDurProcStart,
    ThreadTid,
    ThreadVtid,
    ThreadCapEffective,
    ThreadCapPermitted,
    ThreadCapInheritable,
    UserUid,
    UserName,
    UserLoginuid,
    UserLoginname,
    GroupGid,
    GroupName,
    ContainerId,
    ContainerFullId,
    ContainerName,
    ContainerImage,
    ContainerImageRepository,
    ContainerImageTag,
    ContainerPrivileged,
    ContainerStartTs,
    ContainerType,
    K8sNsName,
    K8sPodName,
    K8sPodUid,
    FdNum,
    FdType,
    FdTypechar,
    FdName,
    FdNameraw,
    FdDirectory,
    FdFilename,
    FdIp,
    FdCip,
    FdSip,
    FdLip,
    FdRip,
    FdPort,
    FdCport,
    FdSport,
    FdLport,
    FdRport,
    FdL4proto,
    FdNet,
    FdCnet,
    FdSnet,
    FdLnet,
    FdRnet,
    FdConnected,
    FdNameChanged,
    FdSipName,
    FdIsServer,
    FdSockfamily,
}

/// Arguments of `evt.arg.NAME` moat's sensor fills (for the syscalls it reports).
pub const EVT_ARGS: &[&str] = &[
    "flags",
    "mode",
    "request",
    "domain",
    "type",
    "proto",
    "protocol",
    "target",
    "linkpath",
    "oldpath",
    "newpath",
    "uid",
    "gid",
    "ruid",
    "euid",
    "suid",
    "rgid",
    "egid",
    "sgid",
    "name",
    "fd",
    "oldfd",
    "newfd",
    "pid",
    "dev",
    "dir",
    "fstype",
    "path",
    "filename",
    "addr",
    "tuple",
    "nstype",
    "cmd",
    "dirfd",
    "res",
    "data",
    "source",
    "cwd",
    "exe",
    "args",
    "uargs",
    "len",
    "lost",
    "programs",
    "reattached",
];

/// How a field's argument is given: `proc.aname[2]`, `evt.arg.flags` / `evt.arg[flags]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    None,
    Index(usize),
    Name(Box<str>),
}

/// Transformer applied to a field's value: `tolower(proc.name)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    Lower,
    Upper,
    Basename,
    Len,
}

/// A resolved field reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRef {
    pub id: F,
    pub arg: Arg,
    pub transform: Option<Transform>,
    /// The name as written, for output and reports.
    pub text: Box<str>,
}

impl FieldRef {
    pub fn kind(&self) -> Kind {
        match self.transform {
            Some(Transform::Len) => return Kind::Int,
            Some(_) => return Kind::Str,
            None => {}
        }
        kind_of(self.id)
    }
    /// Fields that yield several values (any-of semantics): `proc.aname` without index, `fd.ip`...
    pub fn is_multi(&self) -> bool {
        matches!(
            (self.id, &self.arg),
            (
                F::ProcAname | F::ProcAexe | F::ProcAexepath | F::ProcApid,
                Arg::None
            ) | (F::FdIp | F::FdPort | F::FdNet, _)
        )
    }
}

fn kind_of(id: F) -> Kind {
    use F::*;
    match id {
        EvtNum
        | EvtRawres
        | EvtTime
        | EvtRawtime
        | ProcPid
        | ProcPpid
        | ProcVpid
        | ProcCmdnargs
        | ProcTty
        | ProcDuration
        | ProcPpidDuration
        | ProcApid
        | ProcSid
        | ProcVpgid
        | ProcExeInoCtime
        | ProcExeInoMtime
        | ProcExeInoCtimeDurProcStart
        | ThreadTid
        | ThreadVtid
        | UserUid
        | UserLoginuid
        | GroupGid
        | ContainerStartTs
        | FdNum
        | FdPort
        | FdCport
        | FdSport
        | FdLport
        | FdRport => Kind::Int,
        EvtFailed
        | EvtIsOpenRead
        | EvtIsOpenWrite
        | EvtIsOpenExec
        | ProcIsVpgidLeader
        | ProcIsSessionLeader
        | ProcIsExeUpperLayer
        | ProcIsExeFromMemfd
        | ProcIsScriptUpperLayer
        | ProcIsContainerRuntime
        | ContainerPrivileged
        | FdConnected
        | FdNameChanged
        | FdIsServer => Kind::Bool,
        FdIp | FdCip | FdSip | FdLip | FdRip => Kind::Ip,
        FdNet | FdCnet | FdSnet | FdLnet | FdRnet => Kind::Net,
        _ => Kind::Str,
    }
}

/// Why a field cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unknown(pub String);

/// Resolves a field name with its optional `[arg]`.
pub fn lookup(name: &str, arg: Option<&str>) -> Result<FieldRef, Unknown> {
    use F::*;
    let text: Box<str> = match arg {
        Some(a) => format!("{name}[{a}]").into(),
        None => name.into(),
    };
    // evt.arg.NAME
    if let Some(rest) = name
        .strip_prefix("evt.arg.")
        .or_else(|| name.strip_prefix("evt.rawarg."))
    {
        if EVT_ARGS.contains(&rest) {
            return Ok(FieldRef {
                id: EvtArg,
                arg: Arg::Name(rest.into()),
                transform: None,
                text,
            });
        }
        return Err(Unknown(format!(
            "field '{name}': moat's sensor does not report argument '{rest}'"
        )));
    }
    let id = match name {
        "evt.type" => EvtType,
        "evt.dir" => EvtDir,
        "evt.num" => EvtNum,
        "evt.res" => EvtRes,
        "evt.rawres" => EvtRawres,
        "evt.failed" => EvtFailed,
        "evt.hostname" => EvtHostname,
        "evt.args" => EvtArgs,
        "evt.arg" | "evt.rawarg" => EvtArg,
        "evt.time" | "evt.time.iso8601" | "evt.datetime" => EvtTime,
        "evt.rawtime" => EvtRawtime,
        "evt.is_open_read" => EvtIsOpenRead,
        "evt.is_open_write" => EvtIsOpenWrite,
        "evt.is_open_exec" => EvtIsOpenExec,
        "evt.source" => EvtSource,
        "syscall.type" => SyscallType,
        "proc.pid" => ProcPid,
        "proc.ppid" => ProcPpid,
        "proc.vpid" => ProcVpid,
        "proc.name" => ProcName,
        "proc.exe" => ProcExe,
        "proc.exepath" => ProcExepath,
        "proc.args" => ProcArgs,
        "proc.cmdline" => ProcCmdline,
        "proc.cmdnargs" => ProcCmdnargs,
        "proc.cwd" => ProcCwd,
        "proc.tty" => ProcTty,
        "proc.pname" => ProcPname,
        "proc.pexe" => ProcPexe,
        "proc.pexepath" => ProcPexepath,
        "proc.pcmdline" => ProcPcmdline,
        "proc.duration" => ProcDuration,
        "proc.ppid.duration" => ProcPpidDuration,
        "proc.aname" => ProcAname,
        "proc.aexe" => ProcAexe,
        "proc.aexepath" => ProcAexepath,
        "proc.apid" => ProcApid,
        "proc.sname" => ProcSname,
        "proc.sid" => ProcSid,
        "proc.vpgid" => ProcVpgid,
        "proc.vpgid.name" => ProcVpgidName,
        "proc.vpgid.exe" => ProcVpgidExe,
        "proc.is_vpgid_leader" => ProcIsVpgidLeader,
        "proc.is_session_leader" => ProcIsSessionLeader,
        "proc.is_exe_upper_layer" => ProcIsExeUpperLayer,
        "proc.is_exe_from_memfd" => ProcIsExeFromMemfd,
        "proc.is_container_runtime" => ProcIsContainerRuntime,
        "proc.exe_writer" => ProcExeWriter,
        "proc.exe_writer_name" => ProcExeWriterName,
        "proc.script" => ProcScript,
        "proc.is_script_upper_layer" => ProcIsScriptUpperLayer,
        "proc.script_writer" => ProcScriptWriter,
        "proc.script_writer_name" => ProcScriptWriterName,
        "proc.env" => ProcEnv,
        "evt.buffer" => EvtBuffer,
        "container.mount.dest" => ContainerMountDest,
        "container.mount.source" => ContainerMountSource,
        "container.mounts" => ContainerMounts,
        "fd.rip.name" => FdRipName,
        "fd.cip.name" => FdCipName,
        "fd.lip.name" => FdLipName,
        "proc.exe_ino.ctime" => ProcExeInoCtime,
        "proc.exe_ino.mtime" => ProcExeInoMtime,
        "proc.exe_ino.ctime_duration_proc_start" => ProcExeInoCtimeDurProcStart,
        "thread.tid" => ThreadTid,
        "thread.vtid" => ThreadVtid,
        "thread.cap_effective" => ThreadCapEffective,
        "thread.cap_permitted" => ThreadCapPermitted,
        "thread.cap_inheritable" => ThreadCapInheritable,
        "user.uid" => UserUid,
        "user.name" => UserName,
        "user.loginuid" => UserLoginuid,
        "user.loginname" => UserLoginname,
        "group.gid" => GroupGid,
        "group.name" => GroupName,
        "container.id" => ContainerId,
        "container.full_id" => ContainerFullId,
        "container.name" => ContainerName,
        "container.image" => ContainerImage,
        "container.image.repository" => ContainerImageRepository,
        "container.image.tag" => ContainerImageTag,
        "container.privileged" => ContainerPrivileged,
        "container.start_ts" => ContainerStartTs,
        "container.type" => ContainerType,
        "k8s.ns.name" => K8sNsName,
        "k8s.pod.name" => K8sPodName,
        "k8s.pod.uid" => K8sPodUid,
        "fd.num" => FdNum,
        "fd.type" => FdType,
        "fd.typechar" => FdTypechar,
        "fd.name" => FdName,
        "fd.nameraw" => FdNameraw,
        "fd.directory" => FdDirectory,
        "fd.filename" => FdFilename,
        "fd.ip" => FdIp,
        "fd.cip" => FdCip,
        "fd.sip" => FdSip,
        "fd.lip" => FdLip,
        "fd.rip" => FdRip,
        "fd.port" => FdPort,
        "fd.cport" => FdCport,
        "fd.sport" => FdSport,
        "fd.lport" => FdLport,
        "fd.rport" => FdRport,
        "fd.l4proto" => FdL4proto,
        "fd.net" => FdNet,
        "fd.cnet" => FdCnet,
        "fd.snet" => FdSnet,
        "fd.lnet" => FdLnet,
        "fd.rnet" => FdRnet,
        "fd.connected" => FdConnected,
        "fd.name_changed" => FdNameChanged,
        "fd.sip.name" => FdSipName,
        "fd.is_server" => FdIsServer,
        "fd.sockfamily" => FdSockfamily,
        _ => return Err(Unknown(format!("field '{name}' is not provided by moat"))),
    };
    let arg = match (id, arg) {
        (_, None) => Arg::None,
        (ProcAname | ProcAexe | ProcAexepath | ProcApid, Some(a)) => {
            match a.trim().parse::<usize>() {
                Ok(n) => Arg::Index(n),
                Err(_) => {
                    return Err(Unknown(format!(
                        "field '{name}[{a}]': index must be a number"
                    )));
                }
            }
        }
        (EvtArg, Some(a)) if EVT_ARGS.contains(&a) => Arg::Name(a.into()),
        // proc.env[NAME]: the value of one variable.
        (ProcEnv, Some(a)) => Arg::Name(a.trim().into()),
        // container.mount.dest[/proc*] (a glob on the destination) or container.mount.dest[0].
        (ContainerMountDest | ContainerMountSource, Some(a)) => match a.trim().parse::<usize>() {
            Ok(n) => Arg::Index(n),
            Err(_) => Arg::Name(a.trim().into()),
        },
        (_, Some(a)) => {
            return Err(Unknown(format!(
                "field '{name}' does not take an argument ('[{a}]')"
            )));
        }
    };
    if id == EvtArg && arg == Arg::None {
        return Err(Unknown(format!("field '{name}' needs an argument name")));
    }
    Ok(FieldRef {
        id,
        arg,
        transform: None,
        text,
    })
}

/// An extracted value. `None` means the field has no value for this event.
#[derive(Debug, Clone)]
pub enum V<'a> {
    None,
    S(Cow<'a, str>),
    I(i64),
    B(bool),
    Ip(IpAddr),
    /// Raw bytes (`evt.buffer`): compared with `bcontains`/`bstartswith`, rendered lossily.
    Bytes(&'a [u8]),
}

impl V<'_> {
    /// Renders as Falco's output does (`<NA>` for no value).
    pub fn render(&self) -> String {
        match self {
            V::None => "<NA>".to_string(),
            V::S(s) => s.to_string(),
            V::I(n) => n.to_string(),
            V::B(b) => b.to_string(),
            V::Ip(ip) => ip.to_string(),
            V::Bytes(b) => printable(b),
        }
    }
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            V::None => serde_json::Value::Null,
            V::S(s) => serde_json::Value::String(s.to_string()),
            V::I(n) => serde_json::Value::from(*n),
            V::B(b) => serde_json::Value::Bool(*b),
            V::Ip(ip) => serde_json::Value::String(ip.to_string()),
            V::Bytes(b) => serde_json::Value::String(printable(b)),
        }
    }
}

/// Falco's rendering of a data buffer: printable ASCII kept, anything else as `.`.
fn printable(b: &[u8]) -> String {
    b.iter()
        .map(|&c| {
            if c.is_ascii_graphic() || c == b' ' {
                c as char
            } else {
                '.'
            }
        })
        .collect()
}

fn s(x: &str) -> V<'_> {
    V::S(Cow::Borrowed(x))
}
fn os(x: &Option<String>) -> V<'_> {
    match x {
        Some(v) => V::S(Cow::Borrowed(v.as_str())),
        None => V::None,
    }
}

/// Host name for `evt.hostname`, read once.
pub fn hostname() -> &'static str {
    static H: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    H.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    })
}

fn dir_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => path,
    }
}

fn base_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

/// Extracts a single-valued field (for multi-valued ones without index: the first value).
pub fn extract<'a>(ev: &'a Event, f: &FieldRef) -> V<'a> {
    let v = extract_raw(ev, f);
    match f.transform {
        None => v,
        Some(t) => match v {
            V::None => V::None,
            other => {
                let st = other.render();
                match t {
                    Transform::Lower => V::S(Cow::Owned(st.to_lowercase())),
                    Transform::Upper => V::S(Cow::Owned(st.to_uppercase())),
                    Transform::Basename => V::S(Cow::Owned(base_of(&st).to_string())),
                    Transform::Len => V::I(st.chars().count() as i64),
                }
            }
        },
    }
}

/// Calls `each` on every value of a multi-valued field; true as soon as one call returns true.
pub fn any_value<'a>(ev: &'a Event, f: &FieldRef, mut each: impl FnMut(V<'a>) -> bool) -> bool {
    use F::*;
    let p = &ev.proc;
    match f.id {
        ProcAname => p.ancestors.iter().any(|a| each(s(&a.name))),
        ProcAexe => p.ancestors.iter().any(|a| each(s(&a.exe))),
        ProcAexepath => p.ancestors.iter().any(|a| each(s(&a.exepath))),
        ProcApid => p.ancestors.iter().any(|a| each(V::I(a.pid))),
        FdIp | FdNet => match &ev.fd {
            Some(fd) if fd.typ.is_ip() => {
                fd.lip.is_some_and(|ip| each(V::Ip(ip))) || fd.rip.is_some_and(|ip| each(V::Ip(ip)))
            }
            _ => false,
        },
        FdPort => match &ev.fd {
            Some(fd) if fd.typ.is_ip() => {
                each(V::I(fd.lport as i64)) || each(V::I(fd.rport as i64))
            }
            _ => false,
        },
        _ => each(extract(ev, f)),
    }
}

fn ancestor_at(f: &FieldRef) -> Option<usize> {
    match f.arg {
        Arg::Index(n) => Some(n),
        _ => None,
    }
}

fn extract_raw<'a>(ev: &'a Event, f: &FieldRef) -> V<'a> {
    use F::*;
    let p = &ev.proc;
    let d = &ev.derived;
    let parent = p.ancestors.first();
    let fd = ev.fd.as_ref();
    match f.id {
        EvtType | SyscallType => s(&ev.evt_type),
        EvtDir => s(&ev.dir),
        EvtNum => V::I(ev.num as i64),
        EvtRes => s(&d.res_str),
        EvtRawres => V::I(ev.res),
        EvtFailed => V::B(ev.res < 0),
        EvtHostname => s(hostname()),
        EvtArgs => s(&d.evt_args),
        EvtArg => match &f.arg {
            Arg::Name(n) => match ev.args.get(&**n) {
                Some(v) => s(v),
                None => V::None,
            },
            _ => V::None,
        },
        EvtTime | EvtRawtime => V::I(ev.ts as i64),
        EvtIsOpenRead => V::B(d.open_rwx.0),
        EvtIsOpenWrite => V::B(d.open_rwx.1),
        EvtIsOpenExec => V::B(d.open_rwx.2),
        EvtSource => s("syscall"),
        ProcPid => V::I(p.pid),
        ProcPpid => parent.map_or(V::None, |a| V::I(a.pid)),
        ProcVpid => V::I(p.vpid),
        ProcName => s(&p.name),
        ProcExe => s(&p.exe),
        ProcExepath => s(&p.exepath),
        ProcArgs => s(&d.args),
        ProcCmdline => s(&d.cmdline),
        ProcCmdnargs => V::I(p.args.len() as i64),
        ProcCwd => s(&p.cwd),
        ProcTty => V::I(p.tty as i64),
        ProcPname => parent.map_or(V::None, |a| s(&a.name)),
        ProcPexe => parent.map_or(V::None, |a| s(&a.exe)),
        ProcPexepath => parent.map_or(V::None, |a| s(&a.exepath)),
        ProcPcmdline => match &d.pcmdline {
            Some(c) => s(c),
            None => V::None,
        },
        ProcDuration => {
            if p.start_ts == 0 || ev.ts < p.start_ts {
                V::None
            } else {
                V::I((ev.ts - p.start_ts) as i64)
            }
        }
        ProcPpidDuration => match parent {
            Some(a) if a.start_ts != 0 && ev.ts >= a.start_ts => V::I((ev.ts - a.start_ts) as i64),
            _ => V::None,
        },
        ProcAname | ProcAexe | ProcAexepath | ProcApid => {
            let Some(n) = ancestor_at(f) else {
                // Without index: the first ancestor (multi-valued use goes through any_value).
                return match p.ancestors.first() {
                    Some(a) => anc_field(f.id, a),
                    None => V::None,
                };
            };
            if n == 0 {
                return match f.id {
                    ProcAname => s(&p.name),
                    ProcAexe => s(&p.exe),
                    ProcAexepath => s(&p.exepath),
                    _ => V::I(p.pid),
                };
            }
            match p.ancestors.get(n - 1) {
                Some(a) => anc_field(f.id, a),
                None => V::None,
            }
        }
        ProcSname => os(&p.sname),
        ProcSid => V::I(p.sid),
        ProcVpgid => V::I(p.vpgid),
        ProcVpgidName => os(&p.vpgid_name),
        ProcVpgidExe => os(&p.vpgid_exe),
        ProcIsVpgidLeader => V::B(p.vpgid != 0 && p.vpgid == p.vpid),
        ProcIsSessionLeader => V::B(p.sid != 0 && p.sid == p.vpid),
        ProcIsExeUpperLayer => V::B(p.exe_upper_layer),
        ProcIsExeFromMemfd => V::B(p.exe_from_memfd),
        ProcIsContainerRuntime => V::B(p.container_runtime),
        ProcExeWriter => os(&p.exe_writer),
        ProcExeWriterName => writer_name(&p.exe_writer),
        ProcScript => os(&p.script),
        ProcIsScriptUpperLayer => V::B(p.script_upper_layer),
        ProcScriptWriter => os(&p.script_writer),
        ProcScriptWriterName => writer_name(&p.script_writer),
        ProcEnv => match &f.arg {
            Arg::Name(n) => p
                .env
                .iter()
                .find_map(|kv| kv.strip_prefix(&**n).and_then(|r| r.strip_prefix('=')))
                .map_or(V::None, s),
            _ if p.env.is_empty() => V::None,
            _ => V::S(Cow::Owned(p.env.join(" "))),
        },
        EvtBuffer => ev.buffer.as_deref().map_or(V::None, V::Bytes),
        ContainerMountDest | ContainerMountSource => mount_field(ev, f),
        ContainerMounts => match ev.container.as_ref().and_then(|c| c.mounts.as_ref()) {
            Some(ms) => V::S(Cow::Owned(
                ms.iter()
                    .map(|m| format!("{}:{}:{}:{}", m.source, m.dest, m.mode, m.rdwr))
                    .collect::<Vec<_>>()
                    .join(","),
            )),
            None => V::None,
        },
        FdRipName | FdCipName | FdLipName => {
            let ip = ip_fd(fd).and_then(|x| match f.id {
                FdRipName => x.rip,
                FdCipName => x.client_server().0,
                _ => x.lip,
            });
            match ip.and_then(crate::rules::dns::name_of) {
                Some(n) => V::S(Cow::Owned(n)),
                None => V::None,
            }
        }
        ProcExeInoCtime => nonzero(p.exe_ino_ctime),
        ProcExeInoMtime => nonzero(p.exe_ino_mtime),
        ProcExeInoCtimeDurProcStart => {
            if p.exe_ino_ctime == 0 || p.start_ts < p.exe_ino_ctime {
                V::None
            } else {
                V::I((p.start_ts - p.exe_ino_ctime) as i64)
            }
        }
        ThreadTid => V::I(if p.tid != 0 { p.tid } else { p.pid }),
        ThreadVtid => V::I(p.vpid),
        ThreadCapEffective => V::S(Cow::Owned(caps_string(p.cap_effective))),
        ThreadCapPermitted => V::S(Cow::Owned(caps_string(p.cap_permitted))),
        ThreadCapInheritable => V::S(Cow::Owned(caps_string(p.cap_inheritable))),
        UserUid => V::I(p.uid as i64),
        UserName => os(&p.user),
        UserLoginuid => V::I(p.loginuid),
        UserLoginname => os(&p.loginname),
        GroupGid => V::I(p.gid as i64),
        GroupName => os(&p.group),
        ContainerId => match &ev.container {
            Some(c) => s(&c.id),
            None => s("host"),
        },
        ContainerFullId => match &ev.container {
            Some(c) => s(if c.full_id.is_empty() {
                &c.id
            } else {
                &c.full_id
            }),
            None => s("host"),
        },
        ContainerName => match &ev.container {
            Some(c) => os(&c.name),
            None => s("host"),
        },
        ContainerImage => ev.container.as_ref().map_or(V::None, |c| os(&c.image)),
        ContainerImageRepository => ev
            .container
            .as_ref()
            .map_or(V::None, |c| os(&c.image_repository)),
        ContainerImageTag => ev.container.as_ref().map_or(V::None, |c| os(&c.image_tag)),
        ContainerPrivileged => ev
            .container
            .as_ref()
            .and_then(|c| c.privileged)
            .map_or(V::None, V::B),
        ContainerStartTs => ev
            .container
            .as_ref()
            .map_or(V::None, |c| nonzero(c.start_ts)),
        ContainerType => match &ev.container {
            Some(c) => s(&c.runtime),
            None => s("host"),
        },
        K8sNsName => ev.container.as_ref().map_or(V::None, |c| os(&c.k8s_ns)),
        K8sPodName => ev.container.as_ref().map_or(V::None, |c| os(&c.k8s_pod)),
        K8sPodUid => ev.container.as_ref().map_or(V::None, |c| os(&c.pod_uid)),
        FdNum => fd.map_or(V::None, |x| V::I(x.num)),
        FdType => fd.map_or(V::None, |x| s(x.typ.as_str())),
        FdTypechar => fd.map_or(V::None, |x| s(x.typ.typechar())),
        FdName => fd.map_or(V::None, |x| s(&x.name)),
        FdNameraw => fd.map_or(V::None, |x| s(x.nameraw.as_deref().unwrap_or(&x.name))),
        FdDirectory => match fd {
            Some(x) if !x.typ.is_ip() && x.name.starts_with('/') => s(dir_of(&x.name)),
            _ => V::None,
        },
        FdFilename => match fd {
            Some(x) if !x.typ.is_ip() && x.name.starts_with('/') => s(base_of(&x.name)),
            _ => V::None,
        },
        FdIp | FdNet => ip_fd(fd)
            .and_then(|x| x.lip.or(x.rip))
            .map_or(V::None, V::Ip),
        FdCip | FdCnet => ip_fd(fd)
            .and_then(|x| x.client_server().0)
            .map_or(V::None, V::Ip),
        FdSip | FdSnet => ip_fd(fd)
            .and_then(|x| x.client_server().2)
            .map_or(V::None, V::Ip),
        FdLip | FdLnet => ip_fd(fd).and_then(|x| x.lip).map_or(V::None, V::Ip),
        FdRip | FdRnet => ip_fd(fd).and_then(|x| x.rip).map_or(V::None, V::Ip),
        FdPort => ip_fd(fd).map_or(V::None, |x| V::I(x.lport as i64)),
        FdCport => ip_fd(fd).map_or(V::None, |x| V::I(x.client_server().1 as i64)),
        FdSport => ip_fd(fd).map_or(V::None, |x| V::I(x.client_server().3 as i64)),
        FdLport => ip_fd(fd).map_or(V::None, |x| V::I(x.lport as i64)),
        FdRport => ip_fd(fd).map_or(V::None, |x| V::I(x.rport as i64)),
        FdL4proto => fd.and_then(|x| x.l4proto.as_deref()).map_or(V::None, s),
        FdConnected => fd.map_or(V::None, |x| V::B(x.connected)),
        FdNameChanged => fd.map_or(V::None, |x| V::B(x.name_changed)),
        FdSipName => match ip_fd(fd).and_then(|x| x.client_server().2) {
            Some(ip) => match crate::rules::dns::name_of(ip) {
                Some(n) => V::S(Cow::Owned(n)),
                None => V::None,
            },
            None => V::None,
        },
        FdIsServer => ip_fd(fd).map_or(V::None, |x| V::B(x.is_server)),
        FdSockfamily => match fd.map(|x| x.typ) {
            Some(crate::event::FdType::Ipv4 | crate::event::FdType::Ipv6) => s("ip"),
            Some(crate::event::FdType::Unix) => s("unix"),
            _ => V::None,
        },
    }
}

/// `container.mount.dest[PATTERN]` / `[N]`: the first mount whose destination matches the glob (or
/// the N-th mount). Falco renders "no such mount" as `N/A`, which its rules compare against; moat does
/// the same inside a container whose mounts it knows, and has no value elsewhere.
fn mount_field<'a>(ev: &'a Event, f: &FieldRef) -> V<'a> {
    let Some(mounts) = ev.container.as_ref().and_then(|c| c.mounts.as_ref()) else {
        return if ev.container.is_some() {
            s("N/A")
        } else {
            V::None
        };
    };
    let m = match &f.arg {
        Arg::Index(n) => mounts.get(*n),
        Arg::Name(pat) => mounts
            .iter()
            .find(|m| crate::rules::compile::glob(pat.as_bytes(), m.dest.as_bytes())),
        Arg::None => mounts.first(),
    };
    match m {
        Some(m) if f.id == F::ContainerMountDest => s(&m.dest),
        Some(m) => s(&m.source),
        None => s("N/A"),
    }
}

fn nonzero(v: u64) -> V<'static> {
    if v == 0 { V::None } else { V::I(v as i64) }
}

fn ip_fd(fd: Option<&crate::event::Fd>) -> Option<&crate::event::Fd> {
    fd.filter(|x| x.typ.is_ip())
}

fn anc_field(id: F, a: &crate::event::Ancestor) -> V<'_> {
    match id {
        F::ProcAname => s(&a.name),
        F::ProcAexe => s(&a.exe),
        F::ProcAexepath => s(&a.exepath),
        _ => V::I(a.pid),
    }
}

/// The process name of a writer recorded as `name[pid]`.
fn writer_name(w: &Option<String>) -> V<'_> {
    match w {
        Some(w) => V::S(Cow::Borrowed(
            w.rsplit_once('[').map_or(w.as_str(), |(n, _)| n),
        )),
        None => V::None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_resolves_known_and_rejects_unknown() {
        assert_eq!(lookup("proc.name", None).unwrap().id, F::ProcName);
        assert_eq!(lookup("proc.aname", Some("2")).unwrap().arg, Arg::Index(2));
        assert!(lookup("proc.aname", Some("x")).is_err());
        assert!(lookup("k8s.deployment.name", None).is_err());
        assert_eq!(
            lookup("evt.arg.flags", None).unwrap().arg,
            Arg::Name("flags".into())
        );
        assert!(lookup("evt.arg.weird", None).is_err());
        assert!(lookup("proc.name", Some("1")).is_err());
    }

    #[test]
    fn dir_and_base() {
        assert_eq!(dir_of("/etc/shadow"), "/etc");
        assert_eq!(dir_of("/x"), "/");
        assert_eq!(base_of("/etc/shadow"), "shadow");
    }
}
