//! Event type names ↔ small integer ids, so `evt.type` checks and the per-type rule index never
//! compare strings at evaluation time.

use std::collections::HashMap;
use std::sync::OnceLock;

/// Every event type moat knows by name: the syscalls Falco's rules test, plus the pseudo events.
/// Id 0 is reserved for "unknown". The order is the id and must not change within a run only.
pub const NAMES: &[&str] = &[
    "<unknown>",
    "execve",
    "execveat",
    "open",
    "openat",
    "openat2",
    "creat",
    "connect",
    "accept",
    "accept4",
    "socket",
    "bind",
    "listen",
    "sendto",
    "sendmsg",
    "recvfrom",
    "recvmsg",
    "dup",
    "dup2",
    "dup3",
    "ptrace",
    "memfd_create",
    "init_module",
    "finit_module",
    "delete_module",
    "mount",
    "umount",
    "umount2",
    "unshare",
    "setns",
    "setuid",
    "setgid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "setfsuid",
    "setfsgid",
    "capset",
    "symlink",
    "symlinkat",
    "link",
    "linkat",
    "unlink",
    "unlinkat",
    "rename",
    "renameat",
    "renameat2",
    "mkdir",
    "mkdirat",
    "rmdir",
    "chmod",
    "fchmod",
    "fchmodat",
    "chown",
    "fchown",
    "fchownat",
    "lchown",
    "bpf",
    "userfaultfd",
    "clone",
    "clone3",
    "fork",
    "vfork",
    "procexit",
    "kill",
    "tkill",
    "tgkill",
    "chroot",
    "pivot_root",
    "mprotect",
    "mmap",
    "prctl",
    "personality",
    "read",
    "write",
    "close",
    "socketpair",
    "pipe",
    "pipe2",
    "fcntl",
    "ioctl",
    "chdir",
    "fchdir",
    "sethostname",
    "setdomainname",
    "reboot",
    "kexec_load",
    "kexec_file_load",
    "process_vm_readv",
    "process_vm_writev",
    "open_by_handle_at",
    "sendmmsg",
    "recvmmsg",
    "shutdown",
    "setsid",
    "setpgid",
    "container",
    "signaldeliver",
    "pidfd_open",
    "pidfd_getfd",
    "seccomp",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "truncate",
    "ftruncate",
    "utimes",
    "utimensat",
    "quotactl",
    "fsconfig",
    "mknod",
    "mknodat",
    "drop",
    // moat's own: a check found one of the sensor's BPF programs detached.
    "sensor_detached",
];

/// The id of an event type name; 0 when moat does not know the name.
pub fn id_of(name: &str) -> u16 {
    static MAP: OnceLock<HashMap<&'static str, u16>> = OnceLock::new();
    let map = MAP.get_or_init(|| {
        NAMES
            .iter()
            .enumerate()
            .map(|(i, n)| (*n, i as u16))
            .collect()
    });
    map.get(name).copied().unwrap_or(0)
}

/// A set of event type ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TypeSet([u64; 2]);

impl TypeSet {
    pub fn insert(&mut self, id: u16) {
        let i = id as usize;
        if i < 128 {
            self.0[i / 64] |= 1 << (i % 64);
        }
    }
    pub fn contains(&self, id: u16) -> bool {
        let i = id as usize;
        i < 128 && self.0[i / 64] & (1 << (i % 64)) != 0
    }
    pub fn union(self, o: TypeSet) -> TypeSet {
        TypeSet([self.0[0] | o.0[0], self.0[1] | o.0[1]])
    }
    pub fn intersect(self, o: TypeSet) -> TypeSet {
        TypeSet([self.0[0] & o.0[0], self.0[1] & o.0[1]])
    }
    pub fn complement(self) -> TypeSet {
        TypeSet([!self.0[0], !self.0[1]])
    }
    pub fn is_empty(&self) -> bool {
        self.0 == [0, 0]
    }
    pub fn all() -> TypeSet {
        TypeSet([u64::MAX, u64::MAX])
    }
    /// The names in the set (for reports).
    pub fn names(&self) -> Vec<&'static str> {
        NAMES
            .iter()
            .enumerate()
            .filter(|(i, _)| self.contains(*i as u16))
            .map(|(_, n)| *n)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn ids_round_trip_and_fit_the_set() {
        assert!(NAMES.len() <= 128);
        assert_eq!(NAMES[id_of("openat") as usize], "openat");
        assert_eq!(id_of("nosuchcall"), 0);
        let mut s = TypeSet::default();
        s.insert(id_of("execve"));
        assert!(s.contains(id_of("execve")) && !s.contains(id_of("openat")));
        assert_eq!(s.names(), vec!["execve"]);
    }
}
