//! Test helper: performs event-generator style cases as real processes and syscalls.
//!
//! `MOAT_EG_PLAN` holds JSON `{"workdir": DIR, "cases": [{"id", "procs": [{"name", "exe"?, "args"}],
//! "steps": [...]}]}`. For each case the helper copies itself to `DIR/<name>` (or to `exe`) so the
//! kernel names the process as the case wants, runs the process chain (each process spawns the next),
//! and the last process performs the steps: `{"socket": [domain, type, proto]}`,
//! `{"dup": "dup2"|"dup3", "newfd": N, "addr": "127.0.0.1:9999"}` (a connected TCP client dup'ed onto
//! a standard fd) or `{"connect": "IP:PORT"}` (non-blocking TCP connect). It prints
//! `CASE id START ns END ns` lines on stdout.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn now_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn install(self_exe: &Path, target: &Path) -> std::io::Result<()> {
    if !target.exists() {
        if let Some(d) = target.parent() {
            std::fs::create_dir_all(d)?;
        }
        std::fs::copy(self_exe, target)?;
        std::fs::set_permissions(target, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

/// Spawns process `level` of `case` and waits for it.
fn spawn(plan: &Value, case: &Value, level: usize) -> std::io::Result<()> {
    let procs = case["procs"].as_array().cloned().unwrap_or_default();
    let Some(p) = procs.get(level) else {
        return Ok(());
    };
    let name = p["name"].as_str().unwrap_or("eg");
    let workdir = PathBuf::from(plan["workdir"].as_str().unwrap_or("/tmp/moat-eg"));
    let (path, argv0) = match p["exe"].as_str() {
        Some(exe) => (PathBuf::from(exe), exe.to_string()),
        None => (workdir.join(name), name.to_string()),
    };
    let me = std::env::current_exe()?;
    install(&me, &path)?;
    let args: Vec<String> = p["args"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let child = serde_json::json!({"case": case, "level": level, "workdir": plan["workdir"]});
    let status = Command::new(&path)
        .arg0(&argv0)
        .args(&args)
        .env("MOAT_EG_CHILD", child.to_string())
        .status()?;
    if !status.success() {
        eprintln!("moat-evtgen: {name} exited with {status}");
    }
    Ok(())
}

fn steps(case: &Value) {
    for s in case["steps"].as_array().cloned().unwrap_or_default() {
        if let Some(a) = s["socket"].as_array() {
            let n = |i: usize| a.get(i).and_then(Value::as_i64).unwrap_or(0) as i32;
            // SAFETY: plain syscall; the descriptor is closed right away.
            let fd = unsafe { libc::socket(n(0), n(1), n(2)) };
            if fd >= 0 {
                unsafe { libc::close(fd) };
            }
        }
        if let Some(kind) = s["dup"].as_str() {
            let addr: SocketAddr = match s["addr"].as_str().and_then(|a| a.parse().ok()) {
                Some(a) => a,
                None => continue,
            };
            let Ok(l) = TcpListener::bind(addr) else {
                eprintln!("moat-evtgen: cannot listen on {addr}");
                continue;
            };
            let Ok(c) = TcpStream::connect(addr) else {
                continue;
            };
            let _server = l.accept();
            use std::os::fd::AsRawFd;
            let newfd = s["newfd"].as_i64().unwrap_or(1) as i32;
            // SAFETY: we save and restore the standard descriptor around the redirection.
            unsafe {
                let saved = libc::dup(newfd);
                if kind == "dup3" {
                    libc::dup3(c.as_raw_fd(), newfd, 0);
                } else {
                    libc::dup2(c.as_raw_fd(), newfd);
                }
                if saved >= 0 {
                    libc::dup2(saved, newfd);
                    libc::close(saved);
                }
            }
        }
        if let Some(a) = s["connect"].as_str()
            && let Ok(addr) = a.parse::<SocketAddr>()
        {
            // Non-blocking connect: EINPROGRESS is what Falco's outbound macro accepts.
            let dom = if addr.is_ipv4() {
                libc::AF_INET
            } else {
                libc::AF_INET6
            };
            unsafe {
                let fd = libc::socket(dom, libc::SOCK_STREAM | libc::SOCK_NONBLOCK, 0);
                if let SocketAddr::V4(v4) = addr {
                    let sa = libc::sockaddr_in {
                        sin_family: libc::AF_INET as u16,
                        sin_port: v4.port().to_be(),
                        sin_addr: libc::in_addr {
                            s_addr: u32::from_ne_bytes(v4.ip().octets()),
                        },
                        sin_zero: [0; 8],
                    };
                    libc::connect(
                        fd,
                        &sa as *const _ as *const libc::sockaddr,
                        std::mem::size_of_val(&sa) as u32,
                    );
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
                libc::close(fd);
            }
        }
    }
}

fn main() {
    if let Ok(child) = std::env::var("MOAT_EG_CHILD") {
        let Ok(v) = serde_json::from_str::<Value>(&child) else {
            std::process::exit(2)
        };
        let level = v["level"].as_u64().unwrap_or(0) as usize;
        let case = &v["case"];
        let n = case["procs"].as_array().map_or(0, Vec::len);
        if level + 1 < n {
            let plan = serde_json::json!({"workdir": v["workdir"]});
            if let Err(e) = spawn(&plan, case, level + 1) {
                eprintln!("moat-evtgen: {e}");
            }
        } else {
            steps(case);
        }
        return;
    }
    let Ok(text) = std::env::var("MOAT_EG_PLAN") else {
        eprintln!("moat-evtgen: set MOAT_EG_PLAN (test helper, see the source)");
        std::process::exit(2);
    };
    let Ok(plan) = serde_json::from_str::<Value>(&text) else {
        std::process::exit(2)
    };
    let mut out = std::io::stdout().lock();
    for case in plan["cases"].as_array().cloned().unwrap_or_default() {
        let start = now_ns();
        if let Err(e) = spawn(&plan, &case, 0) {
            eprintln!("moat-evtgen: case {}: {e}", case["id"]);
        }
        let end = now_ns();
        let _ = writeln!(out, "CASE {} START {start} END {end}", case["id"]);
    }
}
