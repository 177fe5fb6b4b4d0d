// SPDX-License-Identifier: (Apache-2.0 OR GPL-2.0)
// moat's eBPF sensor (CO-RE). Attached with BTF tracepoints only (no kprobes):
//   tp_btf/sched_process_exec, sched_process_fork, sched_process_exit, sys_enter, sys_exit.
// Syscalls of interest are stashed per thread at entry (arguments, user strings, socket address)
// and emitted at exit with the return value. Every event goes through one ring buffer; a failed
// reservation increments the `lost` counter that user space reports as an alert.
//
// Regenerate the committed object with crates/moat-runtime/bpf/build.sh (needs clang and bpftool).

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>

#include "moat.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

const volatile __u32 self_tgid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 32 * 1024 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

/* Syscalls seen by on_enter (every one, before any filter): user space checks that it advances, so a
 * detached program is noticed while the sensor runs. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} heartbeat SEC(".maps");

/* cgroup-v2 ids whose names were already sent (MOAT_EV_CGROUP). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u8);
} cgroups_seen SEC(".maps");

/* Older kernels name the kernfs parent pointer `parent` (renamed `__parent` in 6.15). */
struct kernfs_node___old {
	struct kernfs_node *parent;
} __attribute__((preserve_access_index));

struct stash {
	__u32 nr;
	__u32 uid;
	__u64 args[6];
	__u16 addr_len;
	__u8 addr[28];
	char path[MOAT_PATH];
	char path2[MOAT_PATH];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct stash);
} stashes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct stash);
} scratch SEC(".maps");

/* Wake the user-space reader only once this much is waiting (or when its poll times out): one
 * wakeup per event would put a context switch on the workload's path for every exec and open. */
#define MOAT_WAKEUP_BYTES (512 * 1024)

static __always_inline __u64 rb_flags(void)
{
	return bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= MOAT_WAKEUP_BYTES ? BPF_RB_FORCE_WAKEUP
										   : BPF_RB_NO_WAKEUP;
}

static __always_inline void count_lost(void)
{
	__u32 k = 0;
	__u64 *v = bpf_map_lookup_elem(&lost, &k);
	if (v)
		__sync_fetch_and_add(v, 1);
}

static __always_inline void cgroup_names(struct task_struct *t, char *leaf, char *parent)
{
	struct kernfs_node *kn = BPF_CORE_READ(t, cgroups, dfl_cgrp, kn);
	bpf_probe_read_kernel_str(leaf, 96, BPF_CORE_READ(kn, name));
	struct kernfs_node *par;
	if (bpf_core_field_exists(kn->__parent))
		par = BPF_CORE_READ(kn, __parent);
	else
		par = BPF_CORE_READ((struct kernfs_node___old *)kn, parent);
	if (par)
		bpf_probe_read_kernel_str(parent, 96, BPF_CORE_READ(par, name));
	else
		parent[0] = 0;
}

static __always_inline void fill_hdr(struct moat_hdr *h, __u32 kind);

/* Inode timestamps moved: i_ctime (< 6.6), __i_ctime/__i_mtime (6.6-6.10), i_*_sec/nsec (6.11+). */
struct inode___v67 {
	struct timespec64 __i_ctime;
	struct timespec64 __i_mtime;
} __attribute__((preserve_access_index));
struct inode___v66 {
	struct timespec64 __i_ctime;
	struct timespec64 i_mtime;
} __attribute__((preserve_access_index));
struct inode___old {
	struct timespec64 i_ctime;
	struct timespec64 i_mtime;
} __attribute__((preserve_access_index));

#define NS(ts) ((__u64)(ts).tv_sec * 1000000000ULL + (__u64)(ts).tv_nsec)

/* (ctime, mtime) of an inode in ns; 0 when this kernel's layout is none of the known ones (user
 * space then falls back to stat). */
static __always_inline void inode_times(struct inode *ino, __u64 *ctime, __u64 *mtime)
{
	*ctime = 0;
	*mtime = 0;
	if (bpf_core_field_exists(ino->i_ctime_sec)) {
		*ctime = (__u64)BPF_CORE_READ(ino, i_ctime_sec) * 1000000000ULL + BPF_CORE_READ(ino, i_ctime_nsec);
		*mtime = (__u64)BPF_CORE_READ(ino, i_mtime_sec) * 1000000000ULL + BPF_CORE_READ(ino, i_mtime_nsec);
	} else if (bpf_core_field_exists(((struct inode___v67 *)ino)->__i_mtime)) {
		struct timespec64 c = BPF_CORE_READ((struct inode___v67 *)ino, __i_ctime);
		struct timespec64 m = BPF_CORE_READ((struct inode___v67 *)ino, __i_mtime);
		*ctime = NS(c);
		*mtime = NS(m);
	} else if (bpf_core_field_exists(((struct inode___v66 *)ino)->__i_ctime)) {
		struct timespec64 c = BPF_CORE_READ((struct inode___v66 *)ino, __i_ctime);
		struct timespec64 m = BPF_CORE_READ((struct inode___v66 *)ino, i_mtime);
		*ctime = NS(c);
		*mtime = NS(m);
	} else if (bpf_core_field_exists(((struct inode___old *)ino)->i_ctime)) {
		struct timespec64 c = BPF_CORE_READ((struct inode___old *)ino, i_ctime);
		struct timespec64 m = BPF_CORE_READ((struct inode___old *)ino, i_mtime);
		*ctime = NS(c);
		*mtime = NS(m);
	}
}

/* numbers[level].nr of a struct pid (numbers is a flexible array: read by offset, not by a CO-RE
 * array access aya cannot relocate). */
static __always_inline __u32 pid_nr_at(struct pid *pid, unsigned int level)
{
	if (!pid)
		return 0;
	struct upid up = {};
	bpf_probe_read_kernel(&up, sizeof(up),
			      (void *)pid + bpf_core_field_offset(struct pid, numbers) +
				      (level & 31) * bpf_core_type_size(struct upid));
	return up.nr;
}

/* A pid's number in the host (initial) pid namespace. */
static __always_inline __u32 pid_nr_host(struct pid *pid)
{
	return pid_nr_at(pid, 0);
}

/* A pid's number in its own (innermost) pid namespace. */
static __always_inline __u32 pid_nr_own(struct pid *pid)
{
	if (!pid)
		return 0;
	return pid_nr_at(pid, BPF_CORE_READ(pid, level));
}

/* Announces the current task's cgroup once (first event from it). */
static __always_inline void note_cgroup(void)
{
	__u64 id = bpf_get_current_cgroup_id();
	if (bpf_map_lookup_elem(&cgroups_seen, &id))
		return;
	struct moat_cgroup *c = bpf_ringbuf_reserve(&events, sizeof(*c), 0);
	if (!c) {
		count_lost();
		return;
	}
	fill_hdr(&c->h, MOAT_EV_CGROUP);
	c->h.nr = 0;
	c->h.ret = 0;
	cgroup_names(bpf_get_current_task_btf(), c->cg_leaf, c->cg_parent);
	bpf_ringbuf_submit(c, rb_flags());
	__u8 one = 1;
	bpf_map_update_elem(&cgroups_seen, &id, &one, BPF_ANY);
}

static __always_inline void fill_hdr(struct moat_hdr *h, __u32 kind)
{
	struct task_struct *t = bpf_get_current_task_btf();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 uid_gid = bpf_get_current_uid_gid();
	h->kind = kind;
	h->ts = bpf_ktime_get_boot_ns();
	h->tgid = pid_tgid >> 32;
	h->tid = (__u32)pid_tgid;
	h->ppid = BPF_CORE_READ(t, real_parent, tgid);
	h->uid = (__u32)uid_gid;
	h->gid = uid_gid >> 32;
	h->loginuid = BPF_CORE_READ(t, loginuid.val);
	h->cap_eff = *(__u64 *)&t->cred->cap_effective;
	h->cgroup_id = bpf_get_current_cgroup_id();
	h->mntns = BPF_CORE_READ(t, nsproxy, mnt_ns, ns.inum);
	h->start_ns = BPF_CORE_READ(t, group_leader, start_boottime);
	bpf_get_current_comm(h->comm, sizeof(h->comm));
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (tgid == self_tgid)
		return 0;
	note_cgroup();
	struct moat_exec *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_lost();
		return 0;
	}
	fill_hdr(&e->h, MOAT_EV_EXEC);
	e->h.nr = 59;
	e->h.ret = 0;
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), BPF_CORE_READ(bprm, filename));
	// Executable dentry name: "memfd:..." for fileless execution.
	struct file *f = BPF_CORE_READ(bprm, file);
	bpf_probe_read_kernel_str(e->dentry, sizeof(e->dentry), BPF_CORE_READ(f, f_path.dentry, d_name.name));
	e->nlink = BPF_CORE_READ(f, f_inode, i_nlink);
	// cgroup v2 directory names: container attribution even if the process is gone when user space reads it.
	cgroup_names(p, e->cg_leaf, e->cg_parent);
	struct mm_struct *mm = BPF_CORE_READ(p, mm);
	unsigned long as = BPF_CORE_READ(mm, arg_start), ae = BPF_CORE_READ(mm, arg_end);
	unsigned long n = ae - as;
	if (n > MOAT_ARGV)
		n = MOAT_ARGV;
	e->argv_len = n;
	if (n > 0)
		bpf_probe_read_user(e->argv, n & (MOAT_ARGV - 1) ? n & (MOAT_ARGV - 1) : MOAT_ARGV, (void *)as);
	unsigned long es = BPF_CORE_READ(mm, env_start), ee = BPF_CORE_READ(mm, env_end);
	unsigned long m = ee - es;
	if (m > MOAT_ENV)
		m = MOAT_ENV;
	e->env_len = m;
	if (m > 0)
		bpf_probe_read_user(e->env, m & (MOAT_ENV - 1) ? m & (MOAT_ENV - 1) : MOAT_ENV, (void *)es);
	struct tty_struct *tty = BPF_CORE_READ(p, signal, tty);
	if (tty) {
		int major = BPF_CORE_READ(tty, driver, major);
		int minor = BPF_CORE_READ(tty, driver, minor_start) + BPF_CORE_READ(tty, index);
		e->tty = (major << 20) | minor;
	} else {
		e->tty = 0;
	}
	inode_times(BPF_CORE_READ(f, f_inode), &e->exe_ctime, &e->exe_mtime);
	struct signal_struct *sig = BPF_CORE_READ(p, signal);
	e->pgid = pid_nr_host(BPF_CORE_READ(sig, pids[2])); /* PIDTYPE_PGID */
	e->sid = pid_nr_host(BPF_CORE_READ(sig, pids[3]));  /* PIDTYPE_SID */
	e->vpid = pid_nr_own(BPF_CORE_READ(p, thread_pid));
	e->_pad3 = 0;
	bpf_ringbuf_submit(e, rb_flags());
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	if (BPF_CORE_READ(child, pid) != BPF_CORE_READ(child, tgid))
		return 0; // threads share the process
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (tgid == self_tgid)
		return 0;
	struct moat_hdr *h = bpf_ringbuf_reserve(&events, sizeof(*h), 0);
	if (!h) {
		count_lost();
		return 0;
	}
	fill_hdr(h, MOAT_EV_FORK);
	h->nr = 0;
	h->ret = BPF_CORE_READ(child, tgid);
	bpf_ringbuf_submit(h, rb_flags());
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *p)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if ((__u32)pid_tgid != (pid_tgid >> 32))
		return 0; // only the thread-group leader
	if ((pid_tgid >> 32) == self_tgid)
		return 0;
	note_cgroup();
	struct moat_hdr *h = bpf_ringbuf_reserve(&events, sizeof(*h), 0);
	if (!h) {
		count_lost();
		return 0;
	}
	fill_hdr(h, MOAT_EV_EXIT);
	h->nr = 60;
	h->ret = BPF_CORE_READ(p, exit_code);
	bpf_ringbuf_submit(h, rb_flags());
	return 0;
}

static __always_inline int wanted(long id)
{
	switch (id) {
	case SYS_open: case SYS_openat: case SYS_openat2: case SYS_creat:
	case SYS_connect: case SYS_accept: case SYS_accept4: case SYS_socket:
	case SYS_dup: case SYS_dup2: case SYS_dup3: case SYS_ptrace: case SYS_memfd_create:
	case SYS_init_module: case SYS_finit_module: case SYS_mount: case SYS_unshare: case SYS_setns:
	case SYS_setuid: case SYS_setgid: case SYS_setreuid: case SYS_setregid: case SYS_setresuid:
	case SYS_setresgid: case SYS_symlink: case SYS_symlinkat: case SYS_link: case SYS_linkat:
	case SYS_bind: case SYS_listen: case SYS_rename: case SYS_renameat: case SYS_renameat2:
	case SYS_recvfrom: case SYS_chdir: case SYS_fchdir:
		return 1;
	}
	return 0;
}

static __always_inline void read_path(char *dst, __u64 uptr)
{
	if (uptr)
		bpf_probe_read_user_str(dst, MOAT_PATH, (void *)uptr);
	else
		dst[0] = 0;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(on_enter, struct pt_regs *regs, long id)
{
	__u32 hk = 0;
	__u64 *hb = bpf_map_lookup_elem(&heartbeat, &hk);
	if (hb)
		*hb += 1;
	if (!wanted(id))
		return 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	if ((pid_tgid >> 32) == self_tgid)
		return 0;
	__u32 k = 0;
	struct stash *s = bpf_map_lookup_elem(&scratch, &k);
	if (!s)
		return 0;
	s->nr = id;
	s->uid = (__u32)bpf_get_current_uid_gid();
	s->args[0] = BPF_CORE_READ(regs, di);
	s->args[1] = BPF_CORE_READ(regs, si);
	s->args[2] = BPF_CORE_READ(regs, dx);
	s->args[3] = BPF_CORE_READ(regs, r10);
	s->args[4] = BPF_CORE_READ(regs, r8);
	s->args[5] = BPF_CORE_READ(regs, r9);
	s->addr_len = 0;
	s->path[0] = 0;
	s->path2[0] = 0;
	switch (id) {
	case SYS_open: case SYS_creat: case SYS_memfd_create: case SYS_init_module: case SYS_chdir:
		if (id != SYS_init_module)
			read_path(s->path, s->args[0]);
		break;
	case SYS_openat:
		read_path(s->path, s->args[1]);
		break;
	case SYS_openat2: {
		read_path(s->path, s->args[1]);
		__u64 flags = 0;
		bpf_probe_read_user(&flags, sizeof(flags), (void *)s->args[2]);
		s->args[2] = flags; // open_how.flags
		break;
	}
	case SYS_connect: case SYS_bind: {
		__u32 len = s->args[2];
		if (len > sizeof(s->addr))
			len = sizeof(s->addr);
		if (bpf_probe_read_user(s->addr, len & 31, (void *)s->args[1]) == 0)
			s->addr_len = len;
		break;
	}
	case SYS_mount:
		read_path(s->path, s->args[0]);
		read_path(s->path2, s->args[1]);
		break;
	case SYS_symlink: case SYS_link:
		read_path(s->path, s->args[0]);
		read_path(s->path2, s->args[1]);
		break;
	case SYS_symlinkat:
		read_path(s->path, s->args[0]);
		read_path(s->path2, s->args[2]);
		break;
	case SYS_linkat: case SYS_renameat: case SYS_renameat2:
		read_path(s->path, s->args[1]);
		read_path(s->path2, s->args[3]);
		break;
	case SYS_rename:
		read_path(s->path, s->args[0]);
		read_path(s->path2, s->args[1]);
		break;
	}
	__u32 tid = (__u32)pid_tgid;
	bpf_map_update_elem(&stashes, &tid, s, BPF_ANY);
	return 0;
}

static __always_inline struct file *fd_file(struct task_struct *t, long fd)
{
	struct file **fds = BPF_CORE_READ(t, files, fdt, fd);
	struct file *f = NULL;
	if (fd < 0 || fd > 65535)
		return NULL;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

#define S_IFMT 00170000
#define S_IFSOCK 0140000

static __always_inline void sock_info(struct file *f, struct moat_sys *e)
{
	if (!f)
		return;
	umode_t mode = BPF_CORE_READ(f, f_inode, i_mode);
	if ((mode & S_IFMT) != S_IFSOCK)
		return;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	struct sock *sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return;
	e->is_sock = 1;
	e->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	e->sotype = BPF_CORE_READ(sk, sk_type);
	e->proto = BPF_CORE_READ(sk, sk_protocol);
	e->lport = BPF_CORE_READ(sk, __sk_common.skc_num);
	e->rport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (e->family == 2) {
		__u32 l = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__u32 r = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(e->laddr, &l, 4);
		__builtin_memcpy(e->raddr, &r, 4);
	} else if (e->family == 10) {
		BPF_CORE_READ_INTO(&e->laddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&e->raddr, sk, __sk_common.skc_v6_daddr);
	}
}

SEC("tp_btf/sys_exit")
int BPF_PROG(on_exit_sys, struct pt_regs *regs, long ret)
{
	/* Most syscalls are none of ours: skip them before the hash lookup. */
	if (!wanted(BPF_CORE_READ(regs, orig_ax)))
		return 0;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct stash *s = bpf_map_lookup_elem(&stashes, &tid);
	if (!s)
		return 0;
	/* A working-directory change only updates the process table: reported when it succeeded. */
	if ((s->nr == SYS_chdir || s->nr == SYS_fchdir) && ret != 0) {
		bpf_map_delete_elem(&stashes, &tid);
		return 0;
	}
	struct task_struct *t = bpf_get_current_task_btf();
	if (s->nr == SYS_recvfrom) {
		/* Only data received on sockets that carry a payload matters (evt.buffer); a failed or
		 * empty receive is not reported. */
		struct file *rf = fd_file(t, s->args[0]);
		if (ret <= 0 || !rf || (BPF_CORE_READ(rf, f_inode, i_mode) & S_IFMT) != S_IFSOCK) {
			bpf_map_delete_elem(&stashes, &tid);
			return 0;
		}
	}
	note_cgroup();
	struct moat_sys *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_lost();
		bpf_map_delete_elem(&stashes, &tid);
		return 0;
	}
	fill_hdr(&e->h, MOAT_EV_SYSCALL);
	e->h.nr = s->nr;
	e->h.ret = ret;
	e->pre_uid = s->uid;
	__builtin_memcpy(e->args, s->args, sizeof(e->args));
	e->addr_len = s->addr_len;
	__builtin_memcpy(e->addr, s->addr, sizeof(e->addr));
	__builtin_memcpy(e->path, s->path, sizeof(e->path));
	__builtin_memcpy(e->path2, s->path2, sizeof(e->path2));
	e->is_sock = 0;
	e->family = 0;
	e->sotype = 0;
	e->proto = 0;
	e->lport = 0;
	e->rport = 0;
	__builtin_memset(e->laddr, 0, sizeof(e->laddr));
	__builtin_memset(e->raddr, 0, sizeof(e->raddr));
	long nr = s->nr;
	if (nr == SYS_recvfrom) {
		__u64 n = ret > MOAT_BUF ? MOAT_BUF : ret;
		e->args[2] = n; /* bytes captured in path[] */
		bpf_probe_read_user(e->path, n & (MOAT_BUF - 1) ? n & (MOAT_BUF - 1) : MOAT_BUF, (void *)s->args[1]);
		sock_info(fd_file(t, s->args[0]), e);
	}
	if (ret >= 0 && (nr == SYS_connect || nr == SYS_bind || nr == SYS_listen))
		sock_info(fd_file(t, s->args[0]), e);
	else if (nr == SYS_connect) // failed or in progress: still report the socket kind
		sock_info(fd_file(t, s->args[0]), e);
	else if (ret >= 0 && (nr == SYS_accept || nr == SYS_accept4))
		sock_info(fd_file(t, ret), e);
	else if (ret >= 0 && (nr == SYS_dup || nr == SYS_dup2 || nr == SYS_dup3))
		sock_info(fd_file(t, ret), e);
	bpf_map_delete_elem(&stashes, &tid);
	bpf_ringbuf_submit(e, rb_flags());
	return 0;
}
