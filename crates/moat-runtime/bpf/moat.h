/* Event layout shared by moat.bpf.c and src/sensor/ebpf.rs (keep in sync: #[repr(C)] there). */
#ifndef MOAT_H
#define MOAT_H

#define MOAT_PATH 256
#define MOAT_ARGV 2048
#define MOAT_ENV 2048
#define MOAT_BUF 256

#define MOAT_EV_EXEC 1
#define MOAT_EV_FORK 2
#define MOAT_EV_EXIT 3
#define MOAT_EV_SYSCALL 4
#define MOAT_EV_CGROUP 5

/* x86_64 syscall numbers */
#define SYS_open 2
#define SYS_dup 32
#define SYS_recvfrom 45
#define SYS_rename 82
#define SYS_chdir 80
#define SYS_fchdir 81
#define SYS_renameat 264
#define SYS_renameat2 316
#define SYS_dup2 33
#define SYS_socket 41
#define SYS_connect 42
#define SYS_accept 43
#define SYS_bind 49
#define SYS_listen 50
#define SYS_creat 85
#define SYS_link 86
#define SYS_symlink 88
#define SYS_ptrace 101
#define SYS_setuid 105
#define SYS_setgid 106
#define SYS_setreuid 113
#define SYS_setregid 114
#define SYS_setresuid 117
#define SYS_setresgid 119
#define SYS_mount 165
#define SYS_init_module 175
#define SYS_openat 257
#define SYS_symlinkat 266
#define SYS_linkat 265
#define SYS_unshare 272
#define SYS_accept4 288
#define SYS_dup3 292
#define SYS_setns 308
#define SYS_finit_module 313
#define SYS_memfd_create 319
#define SYS_openat2 437

struct moat_hdr {
	__u32 kind;
	__u32 nr;
	__u64 ts;
	__u32 tgid;
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__u32 gid;
	__u32 loginuid;
	__u64 cap_eff;
	__u64 cgroup_id;
	__u64 start_ns;
	__s64 ret;
	__u32 mntns;
	char comm[16];
	__u32 _pad;
};

struct moat_exec {
	struct moat_hdr h;
	__u32 argv_len;
	__u32 nlink;
	__u32 tty;
	__u32 _pad;
	char filename[MOAT_PATH];
	char dentry[64];
	char cg_leaf[96];   /* name of the process's cgroup-v2 directory (libpod-<id>, cri-containerd-<id>.scope) */
	char cg_parent[96]; /* its parent (kubepods-...-pod<uid>.slice) */
	char argv[MOAT_ARGV];
	__u32 env_len;
	__u32 _pad2;
	char env[MOAT_ENV];
	/* What user space used to read from /proc after every exec, read here from the task at exec. */
	__u64 exe_ctime; /* executable inode change time, ns since the epoch */
	__u64 exe_mtime;
	__u32 sid;  /* session id (host pid namespace) */
	__u32 pgid; /* process group id (host pid namespace) */
	__u32 vpid; /* pid in the process's own pid namespace */
	__u32 _pad3;
};

/* Sent before the first event of each cgroup-v2 id: the names of its directory and parent, so user
 * space attributes containers from what the kernel reported, never from a later /proc read. */
struct moat_cgroup {
	struct moat_hdr h;
	char cg_leaf[96];
	char cg_parent[96];
};

struct moat_sys {
	struct moat_hdr h;
	__u64 args[6];
	__u32 pre_uid;
	__u16 addr_len;
	__u8 addr[28];
	__u8 is_sock;
	__u8 proto;
	__u16 family;
	__u16 sotype;
	__u16 lport;
	__u16 rport;
	__u8 laddr[16];
	__u8 raddr[16];
	char path[MOAT_PATH];
	char path2[MOAT_PATH];
};

#endif
