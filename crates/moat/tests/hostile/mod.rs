//! Helpers for the issue-17 budget tests: run moat, measure its peak RSS, check it wrote nothing
//! outside its work directory, and build tar streams whose huge parts are sparse on disk.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const MOAT: &str = env!("CARGO_BIN_EXE_moat");

/// What one run of moat did.
pub struct Run {
    pub out: Output,
    /// Peak resident set (VmHWM) in KiB, sampled every few milliseconds until exit.
    pub peak_kib: u64,
    pub elapsed: Duration,
}

impl Run {
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    pub fn code(&self) -> Option<i32> {
        self.out.status.code()
    }
    /// Exit 2, and stderr names every one of `needles`.
    pub fn assert_input_error(&self, needles: &[&str]) {
        let err = self.stderr();
        assert_eq!(self.code(), Some(2), "exit code; stderr: {err}");
        for n in needles {
            assert!(err.contains(n), "stderr lacks {n:?}: {err}");
        }
    }
    pub fn assert_peak_below_mib(&self, mib: u64) {
        assert!(
            self.peak_kib < mib * 1024,
            "peak RSS {} KiB is over {mib} MiB; stderr: {}",
            self.peak_kib,
            self.stderr()
        );
    }
}

fn vm_hwm(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs moat in `cwd` with HOME there too (so anything it would write lands there).
pub fn moat_in(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let start = Instant::now();
    let mut cmd = Command::new(MOAT);
    cmd.args(args)
        .current_dir(cwd)
        .env("HOME", cwd)
        .env_remove("MOAT_MAX_TAR_EXTENSION")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn moat");
    let pid = child.id();
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let t1 = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut v).ok();
        v
    });
    let t2 = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut v).ok();
        v
    });
    let mut peak = 0;
    let status = loop {
        if let Some(k) = vm_hwm(pid) {
            peak = peak.max(k);
        }
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "moat {args:?} still running after 120 s"
        );
        std::thread::sleep(Duration::from_millis(3));
    };
    let out = Output {
        status,
        stdout: t1.join().expect("stdout"),
        stderr: t2.join().expect("stderr"),
    };
    Run {
        out,
        peak_kib: peak,
        elapsed: start.elapsed(),
    }
}

/// Every path under `dir` (relative), to compare before and after a run.
pub fn tree(dir: &Path) -> BTreeSet<PathBuf> {
    fn walk(base: &Path, d: &Path, out: &mut BTreeSet<PathBuf>) {
        if let Ok(rd) = std::fs::read_dir(d) {
            for e in rd.flatten() {
                let p = e.path();
                out.insert(p.strip_prefix(base).unwrap_or(&p).to_path_buf());
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    walk(base, &p, out);
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, &mut out);
    out
}

#[allow(clippy::large_enum_variant)]
/// One tar member; `Zeros` is `size` bytes of NULs written sparse (a hole) on disk.
pub enum Part<'a> {
    Header(tar::Header),
    Bytes(&'a [u8]),
    Zeros(u64),
}

pub fn header(name: &str, ty: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    if ty == tar::EntryType::GNULongName || ty == tar::EntryType::GNULongLink {
        h.as_gnu_mut().expect("gnu").name[..13].copy_from_slice(b"././@LongLink");
    } else if ty == tar::EntryType::XHeader && name.is_empty() {
        h.set_path("PaxHeaders/x").expect("path");
    } else {
        h.set_path(name).expect("path");
    }
    h.set_entry_type(ty);
    h.set_size(size);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_cksum();
    h
}

/// Writes the parts as a tar stream: bytes and zeros padded to 512, two zero blocks at the end.
pub fn write_tar<W: Write + Seek>(w: &mut W, parts: &[Part]) -> u64 {
    let mut pos: u64 = 0;
    for p in parts {
        match p {
            Part::Header(h) => {
                w.write_all(h.as_bytes()).expect("write");
                pos += 512;
            }
            Part::Bytes(b) => {
                w.write_all(b).expect("write");
                pos += b.len() as u64;
                let pad = pos.div_ceil(512) * 512 - pos;
                w.write_all(&vec![0; pad as usize]).expect("pad");
                pos += pad;
            }
            Part::Zeros(n) => {
                let padded = n.div_ceil(512) * 512;
                w.seek(SeekFrom::Current(padded as i64)).expect("seek");
                pos += padded;
            }
        }
    }
    w.write_all(&[0; 1024]).expect("end");
    pos + 1024
}

/// Streams the same parts into a writer that cannot seek (a compressor); zeros are written in chunks.
pub fn stream_tar<W: Write>(w: &mut W, parts: &[Part]) {
    let zeros = vec![0u8; 1 << 20];
    for p in parts {
        match p {
            Part::Header(h) => w.write_all(h.as_bytes()).expect("write"),
            Part::Bytes(b) => {
                w.write_all(b).expect("write");
                let pad = (b.len() as u64).div_ceil(512) * 512 - b.len() as u64;
                w.write_all(&vec![0; pad as usize]).expect("pad");
            }
            Part::Zeros(n) => {
                let mut left = n.div_ceil(512) * 512;
                while left > 0 {
                    let k = left.min(zeros.len() as u64) as usize;
                    w.write_all(&zeros[..k]).expect("zeros");
                    left -= k as u64;
                }
            }
        }
    }
    w.write_all(&[0; 1024]).expect("end");
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(data))
}

/// Writes an OCI layout with one layer whose blob is already at `blobs/sha256/<digest>` (or given as
/// bytes); the config lists no diff_ids (allowed), so a huge uncompressed layer needs no hashing.
pub fn oci_layout(dir: &Path, layer_digest: &str, layer_size: u64, media_type: &str) {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).expect("blobs");
    let put = |data: &[u8]| -> String {
        let d = sha256_hex(data);
        std::fs::write(blobs.join(&d), data).expect("blob");
        d
    };
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": []}
    }))
    .expect("config");
    let cd = put(&config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{cd}"), "size": config.len()},
        "layers": [{"mediaType": media_type, "digest": layer_digest, "size": layer_size}],
    }))
    .expect("manifest");
    let md = put(&manifest);
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).expect("layout");
    std::fs::write(
        dir.join("index.json"),
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": format!("sha256:{md}"), "size": manifest.len(),
             "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}))
        .expect("index"),
    )
    .expect("index.json");
}
