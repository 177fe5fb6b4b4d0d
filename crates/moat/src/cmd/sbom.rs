//! `moat sbom TARGET`: what is installed in an image, a tree or an SBOM document.
//!
//! Default format: `table` when standard output is a terminal, `json` (moat's inventory) otherwise, so
//! pipes get something machine-readable. `--format cyclonedx|spdx` for the standard formats.

use moat_image::{OpenOptions, Target};
use moat_report::Verdict;
use moat_sbom::format::{Format, WriteOptions};

use crate::common::{GateArgs, InputError, OutputArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// What to inventory: oci:DIR[:TAG], oci-archive:FILE, docker-archive:FILE, dir:PATH,
    /// registry:HOST/REPO[:TAG|@DIGEST], sbom:FILE, or a bare path (its kind is detected).
    pub target: String,
    /// Output format: cyclonedx (1.6 JSON), spdx (2.3 JSON), json (moat's inventory) or table.
    /// Default: table on a terminal, json otherwise.
    #[arg(long, short = 'f', value_name = "FORMAT")]
    pub format: Option<Format>,
    /// The platform to pick from a multi-platform image index (os/arch[/variant]).
    #[arg(long, value_name = "OS/ARCH", default_value = "linux/amd64")]
    pub platform: String,
    /// Allow plain HTTP to the registry (loopback test registries).
    #[arg(long)]
    pub insecure_registry: bool,
    /// Stamp the document with the current time (output is otherwise reproducible byte for byte).
    #[arg(long)]
    pub timestamp: bool,
    #[command(flatten)]
    pub out: OutputArgs,
    /// Accepted like on every command; an SBOM has no findings, so it never fails the gate.
    #[command(flatten)]
    pub gate: GateArgs,
}

pub fn run(a: Args) -> anyhow::Result<Verdict> {
    let target = Target::parse(&a.target).map_err(|e| InputError(e.to_string()))?;
    let opts = OpenOptions {
        platform: a.platform.clone(),
        insecure_registry: a.insecure_registry,
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        ..OpenOptions::default()
    };
    let inv = moat_sbom::sbom_of(&target, &opts).map_err(|e| InputError(e.to_string()))?;
    let format = a.format.unwrap_or(if a.out.is_terminal() {
        Format::Table
    } else {
        Format::Json
    });
    let wopts = WriteOptions {
        timestamp: a.timestamp.then(moat_sbom::format::now_rfc3339),
    };
    for w in &inv.warnings {
        if format != Format::Table {
            eprintln!("moat: warning: {w}");
        }
    }
    a.out
        .write(&moat_sbom::format::write(&inv, format, &wopts))?;
    Ok(Verdict::Pass)
}
