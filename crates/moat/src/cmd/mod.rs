//! One module per subcommand. Each has `Args` (clap) and `run(Args) -> anyhow::Result<Verdict>`.

pub mod diff;
pub mod lint;
pub mod lint_kube;
pub mod admission;
pub mod sbom;
pub mod scan;
pub mod db;
pub mod explain;
pub mod runtime;
pub mod policy;
pub mod sign;
