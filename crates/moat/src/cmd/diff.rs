use std::path::PathBuf;

use anyhow::Context;
use moat_report::{Report, Verdict};

use crate::common::{InputError, OutputArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The JSON report before the change (`moat ... --format json`).
    pub before: PathBuf,
    /// The JSON report after the change.
    pub after: PathBuf,
    #[command(flatten)]
    pub out: OutputArgs,
}

/// Reports larger than this are refused rather than read into memory.
const MAX_REPORT_BYTES: u64 = 512 << 20;

fn load(path: &PathBuf) -> anyhow::Result<Report> {
    use std::io::Read;
    let f = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut bytes = Vec::new();
    f.take(MAX_REPORT_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() as u64 > MAX_REPORT_BYTES {
        return Err(InputError(format!(
            "{}: larger than the {MAX_REPORT_BYTES}-byte limit for a report",
            path.display()
        ))
        .into());
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        InputError(format!(
            "{}: not a moat JSON report (not UTF-8 text)",
            path.display()
        ))
    })?;
    serde_json::from_str(&text).map_err(|e| {
        InputError(format!(
            "{}: not a moat JSON report (line {}, column {}): {e}",
            path.display(),
            e.line(),
            e.column()
        ))
        .into()
    })
}

pub fn run(a: Args) -> anyhow::Result<Verdict> {
    let before = load(&a.before)?;
    let after = load(&a.after)?;
    if let Some(why) = moat_report::unrelated(&before, &after) {
        eprintln!("moat: warning: {why}");
    }
    a.out.write(&moat_report::to_markdown(&before, &after))?;
    Ok(Verdict::Pass)
}
