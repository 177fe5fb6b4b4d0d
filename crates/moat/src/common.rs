//! What every command shares: output selection, the `--fail-on` gate, and error → exit code mapping.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
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
            Some(path) => {
                let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                let tmp = dir.join(format!(".{name}.moat-tmp"));
                // Errors name the user's path, not the temporary file.
                if let Err(e) = std::fs::write(&tmp, text) {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(InputError(format!("cannot write {}: {e}", path.display())).into());
                }
                if let Err(e) = std::fs::rename(&tmp, path) {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(InputError(format!("cannot write {}: {e}", path.display())).into());
                }
            }
        }
        Ok(())
    }
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
