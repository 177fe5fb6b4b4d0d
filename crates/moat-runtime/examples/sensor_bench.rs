//! The sensor loop as `moat runtime watch` runs it (rules loaded, every event evaluated, alerts as
//! JSON lines on stdout), built from this crate alone: bench/runtime.sh can time two versions of the
//! sensor without building the whole CLI (`SENSOR="target/release/examples/sensor_bench"`).
//!
//! Usage: sensor_bench [--rules FILE]... [--with-default-rules] [--format json] [--ready-file FILE]
//! Runs until SIGINT/SIGTERM; prints the `moat: sensor ...` summary line to stderr as `watch` does.

use std::io::Write;

use moat_runtime::alert::{self, Format};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rules = Vec::new();
    let mut defaults = false;
    let mut ready = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rules" => rules.push(args.next().ok_or("--rules FILE")?),
            "--with-default-rules" => defaults = true,
            "--ready-file" => ready = Some(args.next().ok_or("--ready-file FILE")?.into()),
            "--format" => {
                args.next();
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let mut l = moat_runtime::Loader::new();
    if defaults || rules.is_empty() {
        l.add_str("moat_rules.yaml", moat_runtime::rules::DEFAULT_RULES)?;
    }
    for r in &rules {
        l.add_file(std::path::Path::new(r))?;
    }
    let engine = l.build();
    let opts = moat_runtime::sensor::Options {
        ready_file: ready,
        ..Default::default()
    };
    let stdout = std::io::stdout();
    let stats = moat_runtime::sensor::run(engine, &opts, |_, alerts| {
        let mut o = stdout.lock();
        for a in alerts {
            let _ = writeln!(o, "{}", alert::format_alert(a, Format::Json));
        }
        let _ = o.flush();
    })?;
    eprintln!(
        "moat: sensor {}: {} events, {} alerts, {} lost in the ring buffer",
        stats.sensor, stats.events, stats.alerts, stats.lost
    );
    Ok(())
}
