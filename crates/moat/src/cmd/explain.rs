//! `moat explain ID TARGET`: for one advisory (or an alias of it), every package of the target it was
//! checked against and why it did or did not match (the range event or list entry, the comparison).

use std::path::PathBuf;

use moat_image::{OpenOptions, Target};
use moat_report::Verdict;
use moat_vulndb::Snapshot;

use crate::common::{InputError, OutputArgs};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExplainFormat {
    Text,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The advisory id or alias (CVE-2023-4911, DSA-5514-1, GHSA-..., GO-...).
    pub id: String,
    /// What to check it against (every target form of `moat scan`).
    pub target: String,
    /// Output format. Default: text on a terminal, json otherwise.
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<ExplainFormat>,
    /// Same as `--format json`.
    #[arg(long, hide = true)]
    pub json: bool,
    /// The vulnerability database directory (default: $MOAT_DB, else ~/.cache/moat/db).
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    #[arg(long, value_name = "OS/ARCH", default_value = "linux/amd64")]
    pub platform: String,
    #[arg(long)]
    pub insecure_registry: bool,
    #[command(flatten)]
    pub out: OutputArgs,
}

pub fn run(a: Args) -> anyhow::Result<Verdict> {
    let target = Target::parse(&a.target).map_err(|e| InputError(e.to_string()))?;
    let db = a.db.clone().unwrap_or_else(moat_vulndb::store::default_dir);
    let snap = Snapshot::open(&db).map_err(|e| InputError(e.to_string()))?;
    let opts = OpenOptions {
        platform: a.platform.clone(),
        insecure_registry: a.insecure_registry,
        ..OpenOptions::default()
    };
    let inv = moat_sbom::sbom_of(&target, &opts).map_err(|e| InputError(e.to_string()))?;
    let ex = moat_vulndb::explain::explain(&snap, &a.id, &inv)?.ok_or_else(|| {
        InputError(format!(
            "{}: no record with this id or alias in {} (digest {})",
            a.id,
            snap.path().display(),
            snap.meta().digest
        ))
    })?;
    let json = a.json
        || a.format.unwrap_or(if a.out.is_terminal() {
            ExplainFormat::Text
        } else {
            ExplainFormat::Json
        }) == ExplainFormat::Json;
    let text = if json {
        format!("{}\n", serde_json::to_string_pretty(&ex)?)
    } else {
        ex.to_text(&inv.target.name)
    };
    a.out.write(&text)?;
    Ok(Verdict::Pass)
}
