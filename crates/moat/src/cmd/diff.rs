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

fn load(path: &PathBuf) -> anyhow::Result<Report> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| {
        InputError(format!("{}: not a moat JSON report (line {}, column {}): {e}", path.display(), e.line(), e.column()))
            .into()
    })
}

pub fn run(a: Args) -> anyhow::Result<Verdict> {
    let before = load(&a.before)?;
    let after = load(&a.after)?;
    a.out.write(&moat_report::to_markdown(&before, &after))?;
    Ok(Verdict::Pass)
}
