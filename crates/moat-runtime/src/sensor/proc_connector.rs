//! The degraded sensor: the kernel's proc connector (netlink CN_PROC) reports fork, exec and exit;
//! moat reads the rest from /proc. It sees no syscalls (no opens, connects, setuid...), so only rules
//! on `execve`/`procexit` can fire, and short-lived processes may be gone before /proc is read.

use std::time::Instant;

use super::procs::Table;
use super::{Options, SensorError, signal_ready, stopped};
use crate::event::Event;

const NETLINK_CONNECTOR: i32 = 11;
const CN_IDX_PROC: u32 = 1;
const PROC_EVENT_FORK: u32 = 0x1;
const PROC_EVENT_EXEC: u32 = 0x2;
const PROC_EVENT_EXIT: u32 = 0x8000_0000;

fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    b.get(o..o + 4)
        .map(|x| u32::from_ne_bytes([x[0], x[1], x[2], x[3]]))
}

/// Runs until stopped; returns 0 lost (the connector does not count losses; ENOBUFS is reported).
pub fn run(opts: &Options, handle: &mut dyn FnMut(&mut Event)) -> Result<u64, SensorError> {
    // SAFETY: plain socket syscalls on a descriptor we own and close.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            NETLINK_CONNECTOR,
        )
    };
    if fd < 0 {
        return Err(SensorError::ProcConnector(
            std::io::Error::last_os_error().to_string(),
        ));
    }
    let guard = Fd(fd);
    let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    sa.nl_family = libc::AF_NETLINK as u16;
    sa.nl_groups = CN_IDX_PROC;
    sa.nl_pid = 0;
    // SAFETY: sa is a valid sockaddr_nl.
    if unsafe {
        libc::bind(
            guard.0,
            &sa as *const _ as *const libc::sockaddr,
            std::mem::size_of_val(&sa) as u32,
        )
    } < 0
    {
        return Err(SensorError::ProcConnector(format!(
            "bind: {}",
            std::io::Error::last_os_error()
        )));
    }
    // nlmsghdr (16) + cn_msg (20) + op (4)
    let mut msg = [0u8; 40];
    msg[0..4].copy_from_slice(&40u32.to_ne_bytes());
    msg[4..6].copy_from_slice(&(libc::NLMSG_DONE as u16).to_ne_bytes());
    msg[12..16].copy_from_slice(&std::process::id().to_ne_bytes());
    msg[16..20].copy_from_slice(&CN_IDX_PROC.to_ne_bytes()); // id.idx
    msg[20..24].copy_from_slice(&1u32.to_ne_bytes()); // id.val = CN_VAL_PROC
    msg[32..34].copy_from_slice(&4u16.to_ne_bytes()); // len
    msg[36..40].copy_from_slice(&1u32.to_ne_bytes()); // PROC_CN_MCAST_LISTEN
    // SAFETY: msg is a valid buffer of its length.
    if unsafe { libc::send(guard.0, msg.as_ptr() as *const libc::c_void, msg.len(), 0) } < 0 {
        return Err(SensorError::ProcConnector(format!(
            "subscribe: {}",
            std::io::Error::last_os_error()
        )));
    }
    let mut table = Table::new();
    table.scan();
    signal_ready(opts, "proc-connector");
    let started = Instant::now();
    let mut buf = vec![0u8; 8192];
    let mut num = 0u64;
    loop {
        if stopped() || opts.duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        let mut pfd = libc::pollfd {
            fd: guard.0,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        if unsafe { libc::poll(&mut pfd, 1, 100) } <= 0 {
            continue;
        }
        // SAFETY: buf is writable for its length.
        let n = unsafe { libc::recv(guard.0, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
        if n < 36 + 16 {
            continue;
        }
        let b = &buf[..n as usize];
        let ev0 = 36; // after nlmsghdr + cn_msg
        let Some(what) = u32_at(b, ev0) else { continue };
        let data = ev0 + 16;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        match what {
            PROC_EVENT_FORK => {
                if let (Some(ptgid), Some(cpid), Some(ctgid)) = (
                    u32_at(b, data + 4),
                    u32_at(b, data + 8),
                    u32_at(b, data + 12),
                ) && cpid == ctgid
                {
                    table.fork(ptgid as i64, ctgid as i64, now);
                }
            }
            PROC_EVENT_EXEC => {
                let Some(tgid) = u32_at(b, data + 4) else {
                    continue;
                };
                let pid = tgid as i64;
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let comm = stat
                    .find('(')
                    .zip(stat.rfind(')'))
                    .map(|(o, c)| stat[o + 1..c].to_string())
                    .unwrap_or_default();
                let ppid = stat
                    .rfind(')')
                    .and_then(|c| stat[c + 2..].split_whitespace().nth(1)?.parse().ok())
                    .unwrap_or(0);
                let argv = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let memfd = exe.starts_with("/memfd:");
                let env = std::fs::read(format!("/proc/{pid}/environ"))
                    .map(|mut e| {
                        e.truncate(4096);
                        e
                    })
                    .unwrap_or_default();
                table.exec(
                    pid,
                    ppid,
                    &comm,
                    &exe,
                    &argv,
                    0,
                    memfd,
                    now,
                    super::procs::mntns_of(pid),
                    &env,
                    None,
                );
                let (uid, gid) = ids(pid);
                let mut ev = Event {
                    evt_type: "execve".into(),
                    ts: now,
                    ..Default::default()
                };
                let cg = cgroup_key(pid);
                table.enrich(&mut ev, pid, pid, uid, gid, u32::MAX, 0, cg, 0, &comm);
                num += 1;
                ev.num = num;
                handle(&mut ev);
            }
            PROC_EVENT_EXIT => {
                if let Some(tgid) = u32_at(b, data + 4) {
                    table.exit(tgid as i64);
                }
            }
            _ => {}
        }
    }
    Ok(0)
}

struct Fd(i32);
impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor.
        unsafe { libc::close(self.0) };
    }
}

fn ids(pid: i64) -> (u32, u32) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let get = |k: &str| {
        s.lines()
            .find(|l| l.starts_with(k))
            .and_then(|l| l.split_whitespace().nth(2)?.parse().ok())
            .unwrap_or(0)
    };
    (get("Uid:"), get("Gid:"))
}

/// Without BPF there is no cgroup id: key the container cache by the cgroup path's hash.
fn cgroup_key(pid: i64) -> u64 {
    use std::hash::{Hash, Hasher};
    let s = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    h.finish()
}
