//! The `moat` command line: parses arguments, composes the capability crates, prints, and maps the
//! outcome onto moat's exit codes (0 = ran clean, 1 = findings at or above `--fail-on`, 2 = usage or
//! input error). Nothing here judges anything: that is the crates' job.

mod cmd;
mod common;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "moat", version, about = "Container security from build to runtime, offline-first", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Compare two moat JSON reports: fixed, new and unchanged findings, as Markdown.
    Diff(cmd::diff::Args),
    /// Lint Dockerfiles (hadolint-compatible DL rules and moat rules): table, JSON, SARIF.
    Lint(cmd::lint::Args),
    /// Software bill of materials of an image, a directory or an SBOM: table, JSON, CycloneDX, SPDX.
    Sbom(cmd::sbom::Args),
    /// Scan a target for vulnerabilities (OSV database): table, JSON, SARIF, CycloneDX; --fail-on gates CI.
    Scan(cmd::scan::Args),
    /// The local vulnerability database: import, status, update.
    Db(cmd::db::Args),
    /// Explain one advisory against a target: every package checked, and why it did or did not match.
    Explain(cmd::explain::Args),
    /// Runtime protection: eBPF sensor, Falco-compatible rules, replay of recorded events.
    Runtime(cmd::runtime::Args),
    /// Policy as code (Kyverno-compatible): `policy test DIR` runs kyverno-test.yaml files.
    Policy(cmd::policy::Args),
    /// Validating admission webhook (PSS, Kyverno policies, trusted registries) and its certificates.
    Admission(cmd::admission::Args),
    /// Signing keys (cosign-compatible): `key generate` writes cosign.key and cosign.pub.
    Key(cmd::sign::KeyArgs),
    /// Sign an image in a registry with a key (cosign-compatible `sha256-<hex>.sig` signatures).
    Sign(cmd::sign::Args),
    /// Verify an image carries a valid signature by a trusted key: exit 0 signed, 1 not, 2 input error.
    Verify(cmd::sign::VerifyArgs),
    /// The security center: store, API, verdicts (`moat server token create --scope …` for tokens).
    Server(cmd::server::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // clap prints help/version to stdout with exit 0, and usage errors to stderr with exit 2.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                common::EXIT_USAGE
            } else {
                0
            });
        }
    };
    let result = match cli.command {
        Command::Diff(a) => cmd::diff::run(a),
        Command::Lint(a) => cmd::lint::run(a),
        Command::Sbom(a) => cmd::sbom::run(a),
        Command::Scan(a) => cmd::scan::run(a),
        Command::Db(a) => cmd::db::run(a),
        Command::Explain(a) => cmd::explain::run(a),
        Command::Runtime(a) => cmd::runtime::run(a),
        Command::Policy(a) => cmd::policy::run(a),
        Command::Admission(a) => cmd::admission::run(a),
        Command::Key(a) => cmd::sign::run_key(a),
        Command::Sign(a) => cmd::sign::run(a),
        Command::Verify(a) => cmd::sign::run_verify(a),
        Command::Server(a) => cmd::server::run(a),
    };
    common::finish(result)
}
