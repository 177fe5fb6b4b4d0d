//! One module per subcommand. Each has `Args` (clap) and `run(Args) -> anyhow::Result<Verdict>`.

pub mod admission;
pub mod db;
pub mod diff;
pub mod explain;
pub mod lint;
pub mod lint_kube;
pub mod policy;
pub mod runtime;
pub mod sbom;
pub mod scan;
pub mod server;
pub mod sign;
