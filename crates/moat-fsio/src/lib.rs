//! Safe file I/O for paths and directories an attacker may have prepared.
//!
//! Every input moat reads can be hostile, and so can the directories it writes into. This crate is
//! the one place that knows how to:
//!
//! - open **only regular files**: the open is non-blocking (a FIFO cannot hang it), the type is checked
//!   on the opened descriptor (no race between a check and the open), and a FIFO, device, socket or
//!   directory is refused naming the path ([`open_regular`], [`read_regular`]);
//! - **not follow a link** where none may be followed ([`Follow::Never`]): an OCI blob that is a symlink
//!   to `/proc/kmsg`, a snapshot in the database directory;
//! - **read within a budget** checked before anything is allocated ([`read_regular`]);
//! - **write without being redirected**: temporary files are created exclusively (`O_EXCL | O_NOFOLLOW`)
//!   under a random name and renamed atomically over the destination ([`AtomicFile`]); files that must
//!   not be clobbered are created with `O_EXCL` ([`create_new`]); a directory others can write into is
//!   refused for private data ([`check_private_dir`]).

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// What went wrong, always naming the path.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A FIFO, device, socket or directory where a regular file was expected.
    #[error("{path}: is a {kind}, not a regular file; refused")]
    NotRegular { path: PathBuf, kind: &'static str },
    /// A symbolic link where none may be followed.
    #[error("{path}: is a symbolic link; refused (moat does not follow links here)")]
    Link { path: PathBuf },
    /// The file is larger than the budget allows.
    #[error("{path}: larger than the {limit}-byte limit for {what} (raise it with {raise})")]
    TooLarge {
        path: PathBuf,
        limit: u64,
        what: String,
        raise: String,
    },
    /// A directory that other users can write into, used for files moat must own.
    #[error("{path}: {why}; refused")]
    UnsafeDir { path: PathBuf, why: String },
    /// The destination exists and overwriting it was not asked for.
    #[error("{path}: exists; refusing to overwrite")]
    Exists { path: PathBuf },
}

impl FsError {
    fn io(path: &Path, source: io::Error) -> FsError {
        FsError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    /// The path the error is about.
    pub fn path(&self) -> &Path {
        match self {
            FsError::Io { path, .. }
            | FsError::NotRegular { path, .. }
            | FsError::Link { path }
            | FsError::TooLarge { path, .. }
            | FsError::UnsafeDir { path, .. }
            | FsError::Exists { path } => path,
        }
    }
}

/// Whether the last component of a path may be a symbolic link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    /// The user named the path: a link they made is theirs to follow (the result must still be a
    /// regular file).
    Always,
    /// Inside a tree moat walks (an OCI layout, the database directory): a link is refused.
    Never,
}

/// A read budget: the most bytes kept, what they are for, and how a user raises it.
#[derive(Debug, Clone)]
pub struct Budget {
    pub limit: u64,
    pub what: String,
    pub raise: String,
}

impl Budget {
    pub fn new(limit: u64, what: impl Into<String>, raise: impl Into<String>) -> Budget {
        Budget {
            limit,
            what: what.into(),
            raise: raise.into(),
        }
    }
}

fn kind_of(ft: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_dir() {
        "directory"
    } else if ft.is_fifo() {
        "FIFO"
    } else if ft.is_char_device() {
        "character device"
    } else if ft.is_block_device() {
        "block device"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_symlink() {
        "symbolic link"
    } else {
        "special file"
    }
}

/// Opens `path` for reading only if it is a regular file.
///
/// The open itself is non-blocking (`O_NONBLOCK`: opening a FIFO with no writer would otherwise block
/// forever), the file type is checked on the opened descriptor, and only then is blocking mode restored.
/// With [`Follow::Never`] a symbolic link in the last component is refused (`O_NOFOLLOW`).
pub fn open_regular(path: &Path, follow: Follow) -> Result<File, FsError> {
    let mut flags = libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY;
    if follow == Follow::Never {
        flags |= libc::O_NOFOLLOW;
    }
    let file = match OpenOptions::new().read(true).custom_flags(flags).open(path) {
        Ok(f) => f,
        Err(e) if follow == Follow::Never && e.raw_os_error() == Some(libc::ELOOP) => {
            // O_NOFOLLOW on a symlink fails with ELOOP; say what it was.
            let is_link = std::fs::symlink_metadata(path)
                .map(|m| m.file_type().is_symlink())
                .unwrap_or(false);
            return Err(if is_link {
                FsError::Link {
                    path: path.to_path_buf(),
                }
            } else {
                FsError::io(path, e)
            });
        }
        Err(e) => return Err(FsError::io(path, e)),
    };
    let md = file.metadata().map_err(|e| FsError::io(path, e))?;
    if !md.file_type().is_file() {
        return Err(FsError::NotRegular {
            path: path.to_path_buf(),
            kind: kind_of(&md.file_type()),
        });
    }
    set_blocking(&file).map_err(|e| FsError::io(path, e))?;
    Ok(file)
}

fn set_blocking(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor this function's caller owns; no memory is passed.
    let fl = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if fl < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, fl & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Reads at most `budget.limit` bytes of `from` (already opened as `path`), failing — not truncating —
/// when there is more. The buffer grows with what is actually read, never with what a size field or the
/// file's length claims.
pub fn read_bounded(from: impl Read, path: &Path, budget: &Budget) -> Result<Vec<u8>, FsError> {
    let mut buf = Vec::new();
    let n = from
        .take(budget.limit.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| FsError::io(path, e))?;
    if n as u64 > budget.limit {
        return Err(FsError::TooLarge {
            path: path.to_path_buf(),
            limit: budget.limit,
            what: budget.what.clone(),
            raise: budget.raise.clone(),
        });
    }
    Ok(buf)
}

/// Reads a regular file whole within `budget`; the size is checked on the open descriptor first.
pub fn read_regular(path: &Path, follow: Follow, budget: &Budget) -> Result<Vec<u8>, FsError> {
    let f = open_regular(path, follow)?;
    let len = f.metadata().map_err(|e| FsError::io(path, e))?.len();
    if len > budget.limit {
        return Err(FsError::TooLarge {
            path: path.to_path_buf(),
            limit: budget.limit,
            what: budget.what.clone(),
            raise: budget.raise.clone(),
        });
    }
    read_bounded(f, path, budget)
}

/// [`read_regular`] as UTF-8 text.
pub fn read_regular_string(
    path: &Path,
    follow: Follow,
    budget: &Budget,
) -> Result<String, FsError> {
    let bytes = read_regular(path, follow, budget)?;
    String::from_utf8(bytes).map_err(|_| {
        FsError::io(
            path,
            io::Error::new(io::ErrorKind::InvalidData, "not valid UTF-8"),
        )
    })
}

/// A random 64-bit value from the standard library's OS-seeded hasher keys (no extra dependency).
fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// The directory a path is in (`.` for a bare name).
pub fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Creates `path` exclusively: fails if anything (a file, a planted link) is already there. `mode` is
/// the permission of the new file (before the umask).
pub fn create_new(path: &Path, mode: u32) -> Result<File, FsError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if e.kind() == io::ErrorKind::AlreadyExists {
                FsError::Exists {
                    path: path.to_path_buf(),
                }
            } else {
                FsError::io(path, e)
            }
        })
}

/// Opens `path` for writing, created if missing and truncated if a regular file, but never through a
/// symbolic link (`O_NOFOLLOW`) and never a FIFO or device: for streams written as they come (a
/// recording), where a temporary file and rename would lose everything on a crash.
pub fn create_truncate_nofollow(path: &Path, mode: u32) -> Result<File, FsError> {
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                FsError::Link {
                    path: path.to_path_buf(),
                }
            } else {
                FsError::io(path, e)
            }
        })?;
    let md = f.metadata().map_err(|e| FsError::io(path, e))?;
    if !md.file_type().is_file() {
        return Err(FsError::NotRegular {
            path: path.to_path_buf(),
            kind: kind_of(&md.file_type()),
        });
    }
    f.set_len(0).map_err(|e| FsError::io(path, e))?;
    set_blocking(&f).map_err(|e| FsError::io(path, e))?;
    Ok(f)
}

/// A file being written under a random temporary name beside its destination, renamed over it by
/// [`AtomicFile::commit`]; dropped without commit, the temporary file is removed.
///
/// The temporary file is created with `O_CREAT | O_EXCL | O_NOFOLLOW`, so a file or link another user
/// planted at any name cannot be written through, and the rename replaces the destination's directory
/// entry (a link at the destination is replaced, never followed).
pub struct AtomicFile {
    file: Option<File>,
    tmp: PathBuf,
    dest: PathBuf,
}

impl AtomicFile {
    /// Starts a write of `dest` with permission `mode` (before the umask).
    pub fn create(dest: &Path, mode: u32) -> Result<AtomicFile, FsError> {
        let dir = parent_dir(dest);
        let base = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".into());
        for _ in 0..16 {
            let mut name = OsString::from(".");
            name.push(&base);
            name.push(format!(".{:016x}.tmp", random_u64()));
            let tmp = dir.join(name);
            match create_new(&tmp, mode) {
                Ok(file) => {
                    return Ok(AtomicFile {
                        file: Some(file),
                        tmp,
                        dest: dest.to_path_buf(),
                    });
                }
                Err(FsError::Exists { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(FsError::io(
            dest,
            io::Error::new(
                io::ErrorKind::AlreadyExists,
                "cannot create a temporary file beside it",
            ),
        ))
    }

    /// The temporary path (for diagnostics).
    pub fn temp_path(&self) -> &Path {
        &self.tmp
    }

    /// Flushes to disk and renames over the destination.
    pub fn commit(mut self) -> Result<(), FsError> {
        let Some(file) = self.file.take() else {
            return Err(FsError::io(
                &self.dest,
                io::Error::other("already committed"),
            ));
        };
        file.sync_all().map_err(|e| FsError::io(&self.dest, e))?;
        drop(file);
        std::fs::rename(&self.tmp, &self.dest).map_err(|e| FsError::io(&self.dest, e))?;
        // The entry is gone from the temporary name: nothing for Drop to remove.
        self.tmp = PathBuf::new();
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.file {
            Some(f) => f.write(buf),
            None => Err(io::Error::other("already committed")),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() && !self.tmp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Writes `bytes` to `dest` atomically (see [`AtomicFile`]).
pub fn write_atomic(dest: &Path, bytes: &[u8], mode: u32) -> Result<(), FsError> {
    let mut f = AtomicFile::create(dest, mode)?;
    f.write_all(bytes).map_err(|e| FsError::io(dest, e))?;
    f.commit()
}

/// The effective user id.
pub fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Creates `dir` (and parents) if missing, new directories owner-only (0700), then checks it is safe
/// for files moat owns: a real directory (not a link), owned by this user or root, and not writable by
/// group or others — unless sticky (like `/tmp`), where others cannot replace what moat creates.
pub fn check_private_dir(dir: &Path) -> Result<(), FsError> {
    if std::fs::symlink_metadata(dir).is_err() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| FsError::io(dir, e))?;
    }
    let md = std::fs::symlink_metadata(dir).map_err(|e| FsError::io(dir, e))?;
    let unsafe_dir = |why: String| FsError::UnsafeDir {
        path: dir.to_path_buf(),
        why,
    };
    if md.file_type().is_symlink() {
        // A link the user made to their own directory is followed once, then judged like any other.
        let real = std::fs::metadata(dir).map_err(|e| FsError::io(dir, e))?;
        if md.uid() != euid() && md.uid() != 0 {
            return Err(unsafe_dir(format!(
                "is a symbolic link owned by uid {}, not by this user",
                md.uid()
            )));
        }
        return judge_dir(dir, &real);
    }
    judge_dir(dir, &md)
}

fn judge_dir(dir: &Path, md: &std::fs::Metadata) -> Result<(), FsError> {
    let unsafe_dir = |why: String| FsError::UnsafeDir {
        path: dir.to_path_buf(),
        why,
    };
    if !md.is_dir() {
        return Err(unsafe_dir("is not a directory".into()));
    }
    let mode = md.permissions().mode();
    let sticky = mode & 0o1000 != 0;
    if md.uid() != euid() && md.uid() != 0 && !sticky {
        return Err(unsafe_dir(format!(
            "is owned by uid {}, not by this user",
            md.uid()
        )));
    }
    if mode & 0o022 != 0 && !sticky {
        return Err(unsafe_dir(format!(
            "is writable by {} (mode {:o}): another user could replace files in it",
            if mode & 0o002 != 0 {
                "others"
            } else {
                "its group"
            },
            mode & 0o7777
        )));
    }
    Ok(())
}

/// Whether following the symbolic link at `path` is safe for a write: refused when the link is owned
/// by another user and sits in a directory others can write into (`/tmp`) — the planted-link attack
/// the kernel's `fs.protected_symlinks` guards against, checked here whatever that setting is.
pub fn link_is_planted(path: &Path) -> Result<bool, FsError> {
    let md = match std::fs::symlink_metadata(path) {
        Ok(md) => md,
        // Nothing there yet: nothing planted (the new file is then created exclusively).
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(FsError::io(path, e)),
    };
    if !md.file_type().is_symlink() {
        return Ok(false);
    }
    let dir = std::fs::metadata(parent_dir(path)).map_err(|e| FsError::io(path, e))?;
    let shared_dir = dir.permissions().mode() & 0o022 != 0;
    Ok(shared_dir && md.uid() != euid() && md.uid() != dir.uid())
}

/// Makes a FIFO (tests and diagnostics).
pub fn mkfifo(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path has a NUL byte"))?;
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::mkfifo(c.as_ptr(), mode as libc::mode_t) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn budget(n: u64) -> Budget {
        Budget::new(n, "test files", "--max-test")
    }

    #[test]
    fn fifo_is_refused_without_blocking() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("pipe");
        mkfifo(&p, 0o600).expect("mkfifo");
        let e = open_regular(&p, Follow::Always).expect_err("fifo refused");
        assert!(e.to_string().contains("is a FIFO"), "{e}");
        assert!(e.to_string().contains("pipe"), "{e}");
        // A link to a character device is refused after the open, without reading.
        let l = d.path().join("zero");
        symlink("/dev/zero", &l).expect("symlink");
        let e = read_regular(&l, Follow::Always, &budget(10)).expect_err("device refused");
        assert!(e.to_string().contains("character device"), "{e}");
        let e = open_regular(&l, Follow::Never).expect_err("link refused");
        assert!(matches!(e, FsError::Link { .. }), "{e}");
    }

    #[test]
    fn reads_are_bounded_before_allocation() {
        let d = tempfile::tempdir().expect("tempdir");
        let p = d.path().join("big");
        // Sparse: 1 TiB claimed, nothing on disk, refused from its length alone.
        let f = File::create(&p).expect("create");
        f.set_len(1 << 40).expect("sparse");
        let e = read_regular(&p, Follow::Always, &budget(1 << 20)).expect_err("too large");
        assert!(e.to_string().contains("1048576-byte limit"), "{e}");
        assert!(e.to_string().contains("--max-test"), "{e}");
        std::fs::write(&p, b"12345").expect("write");
        assert_eq!(
            read_regular(&p, Follow::Always, &budget(5)).expect("fits"),
            b"12345"
        );
        let e = read_bounded(&b"123456"[..], &p, &budget(5)).expect_err("stream over");
        assert!(matches!(e, FsError::TooLarge { limit: 5, .. }));
    }

    #[test]
    fn atomic_write_never_writes_through_a_planted_link() {
        let d = tempfile::tempdir().expect("tempdir");
        let victim = d.path().join("victim");
        std::fs::write(&victim, "precious").expect("seed");
        let dest = d.path().join("out.json");
        // Links planted at every predictable name: the old fixed temp names and the destination.
        symlink(&victim, d.path().join(".out.json.tmp")).expect("plant");
        symlink(&victim, d.path().join(".out.json.moat-tmp")).expect("plant");
        symlink(&victim, &dest).expect("plant dest");
        write_atomic(&dest, b"report", 0o644).expect("write");
        assert_eq!(
            std::fs::read_to_string(&victim).expect("victim"),
            "precious"
        );
        assert!(
            !std::fs::symlink_metadata(&dest)
                .expect("dest")
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&dest).expect("dest"), "report");
        // No temporary file is left behind.
        let left: Vec<_> = std::fs::read_dir(d.path())
            .expect("list")
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name().to_string_lossy().contains(".out.json.")
                    && e.file_name().to_string_lossy().len() > 24
            })
            .collect();
        assert!(left.is_empty(), "{left:?}");
        // A dropped (failed) write removes its temporary file and leaves the destination alone.
        {
            let mut f = AtomicFile::create(&dest, 0o644).expect("create");
            f.write_all(b"half").expect("write");
            assert!(f.temp_path().exists());
        }
        assert_eq!(std::fs::read_to_string(&dest).expect("dest"), "report");
    }

    #[test]
    fn create_new_refuses_existing_files_and_links() {
        let d = tempfile::tempdir().expect("tempdir");
        let victim = d.path().join("victim");
        std::fs::write(&victim, "precious").expect("seed");
        let key = d.path().join("cosign.key");
        symlink(&victim, &key).expect("plant");
        assert!(matches!(
            create_new(&key, 0o600),
            Err(FsError::Exists { .. })
        ));
        assert_eq!(
            std::fs::read_to_string(&victim).expect("victim"),
            "precious"
        );
        let fresh = d.path().join("new.key");
        create_new(&fresh, 0o600).expect("create");
        let mode = std::fs::metadata(&fresh)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0);
    }

    #[test]
    fn shared_directories_are_refused_for_private_files() {
        let d = tempfile::tempdir().expect("tempdir");
        let db = d.path().join("a/b/db");
        check_private_dir(&db).expect("created");
        let mode = std::fs::metadata(&db).expect("meta").permissions().mode();
        assert_eq!(mode & 0o077, 0, "{mode:o}");
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let e = check_private_dir(&db).expect_err("world-writable");
        assert!(e.to_string().contains("writable by others"), "{e}");
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
        check_private_dir(&db).expect("sticky is fine");
    }
}
