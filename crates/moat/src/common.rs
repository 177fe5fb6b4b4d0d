//! What every command shares: output selection, the `--fail-on` gate, and error → exit code mapping.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use moat_model::Severity;
use moat_report::{Gate, Verdict};

/// Exit code for usage and input errors (bad flags, unreadable or hostile input).
pub const EXIT_USAGE: u8 = 2;

/// `-o FILE`: where a report goes (stdout when absent).
#[derive(Args, Debug, Clone, Default)]
pub struct OutputArgs {
    /// Write the report to FILE instead of standard output.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
}

impl OutputArgs {
    /// Whether the report goes to a terminal: decides the default format and progress display.
    #[allow(dead_code)]
    pub fn is_terminal(&self) -> bool {
        self.output.is_none() && std::io::stdout().is_terminal()
    }

    /// Writes the whole report at once; to a file, via a temporary sibling and rename so a failed run
    /// never leaves half a report behind.
    pub fn write(&self, text: &str) -> anyhow::Result<()> {
        match &self.output {
            None => {
                let mut out = std::io::stdout().lock();
                // A reader that stops early (`| head`) is not an error.
                match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
                    Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                    r => r?,
                }
            }
            Some(path) => write_file(path, text)?,
        }
        Ok(())
    }
}

/// Writes a report file. A regular file (or a new one) is replaced atomically via a temporary sibling
/// and rename, so a failed run never leaves half a report. Anything else is written in place: a symlink
/// is written through to its target, and a device or FIFO (`-o /dev/null`, `-o >(...)`) is opened and
/// written, never replaced.
fn write_file(path: &Path, text: &str) -> anyhow::Result<()> {
    let fail = |e: std::io::Error| -> anyhow::Error {
        InputError(format!("cannot write {}: {e}", path.display())).into()
    };
    let regular_or_new = match std::fs::symlink_metadata(path) {
        Ok(m) => m.file_type().is_file(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => return Err(fail(e)),
    };
    // A link another user planted in a shared directory (`/tmp`) is not the user's intent.
    if moat_fsio::link_is_planted(path).map_err(|e| InputError(e.to_string()))? {
        return Err(InputError(format!(
            "cannot write {}: a symbolic link owned by another user in a shared directory; refused",
            path.display()
        ))
        .into());
    }
    if !regular_or_new {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)
            .map_err(fail)?;
        f.write_all(text.as_bytes())
            .and_then(|_| f.flush())
            .map_err(fail)?;
        return Ok(());
    }
    // An exclusive temporary file under a random name (never a planted link), renamed over the report.
    moat_fsio::write_atomic(path, text.as_bytes(), 0o644)
        .map_err(|e| InputError(format!("cannot write {}: {e}", path.display())).into())
}

/// `--fail-on SEVERITY`: the CI gate.
#[derive(Args, Debug, Clone, Default)]
pub struct GateArgs {
    /// Exit 1 when any finding is at or above SEVERITY (unknown, info, low, medium, high, critical).
    #[arg(long = "fail-on", value_name = "SEVERITY")]
    pub fail_on: Option<Severity>,
}

impl GateArgs {
    #[allow(dead_code)]
    pub fn gate(&self) -> Gate {
        Gate::new(self.fail_on)
    }
}

/// An error that is the user's input, not moat's fault: exit 2 with its message.
#[derive(Debug)]
pub struct InputError(pub String);

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for InputError {}

/// Maps a command's outcome onto the exit code convention. Every error is reported as exit 2: moat
/// only fails "with findings" through a [`Verdict`].
pub fn finish(result: anyhow::Result<Verdict>) -> ExitCode {
    match result {
        Ok(v) => ExitCode::from(v.exit_code()),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "moat: error: {e:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// `println!` for status text: a closed stdout (`moat db status | head -1`) ends the output quietly
/// instead of panicking.
#[macro_export]
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($t)*);
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_replaces_regular_files_and_writes_through_links_and_fifos() {
        let d = tempfile::tempdir().expect("tempdir");
        let file = d.path().join("r.json");
        std::fs::write(&file, "old").expect("seed");
        write_file(&file, "new").expect("write file");
        assert_eq!(std::fs::read_to_string(&file).expect("read"), "new");

        let target = d.path().join("target.json");
        std::fs::write(&target, "").expect("seed target");
        let link = d.path().join("link.json");
        std::os::unix::fs::symlink(&target, &link).expect("symlink");
        write_file(&link, "through").expect("write link");
        assert!(
            std::fs::symlink_metadata(&link)
                .expect("link meta")
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            std::fs::read_to_string(&target).expect("read target"),
            "through"
        );

        let fifo = d.path().join("pipe");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).expect("cstring");
        // SAFETY: mkfifo with a valid NUL-terminated path.
        assert_eq!(unsafe { libc_mkfifo(c.as_ptr(), 0o600) }, 0);
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read_to_string(fifo).expect("read fifo"))
        };
        write_file(&fifo, "piped").expect("write fifo");
        assert_eq!(reader.join().expect("reader"), "piped");
        assert!(
            !std::fs::symlink_metadata(&fifo)
                .expect("fifo meta")
                .file_type()
                .is_file()
        );
    }

    unsafe extern "C" {
        #[link_name = "mkfifo"]
        fn libc_mkfifo(path: *const std::ffi::c_char, mode: u32) -> i32;
    }
}
