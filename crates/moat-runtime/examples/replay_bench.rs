//! Evaluation throughput of a rule set over a recording, on one core:
//! `cargo run --release -p moat-runtime --example replay_bench -- EVENTS.jsonl RULES.yaml [ROUNDS]`.

use std::time::Instant;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 3 {
        eprintln!("usage: replay_bench EVENTS.jsonl RULES.yaml [ROUNDS]");
        std::process::exit(2);
    }
    let rounds: u32 = a.get(3).and_then(|r| r.parse().ok()).unwrap_or(20);
    let engine = match moat_runtime::Engine::from_files(&[&a[2]]) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let mut events = match moat_runtime::replay::read_events(std::path::Path::new(&a[1])) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    for (i, e) in events.iter_mut().enumerate() {
        if e.num == 0 {
            e.num = i as u64 + 1;
        }
        e.prepare();
    }
    if std::env::var_os("MOAT_BENCH_RULES").is_some() {
        per_rule(&engine, &events);
    }
    let t = Instant::now();
    let mut m = 0;
    for _ in 0..rounds {
        for e in &events {
            m += engine.count_matches(e);
        }
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "{} events x {rounds}: {:.0} events/s ({m} matches)",
        events.len(),
        events.len() as f64 * rounds as f64 / s
    );
}

/// Per-rule cost breakdown (MOAT_BENCH_RULES=1).
#[allow(dead_code)]
fn per_rule(engine: &moat_runtime::Engine, events: &[moat_runtime::Event]) {
    for r in engine.rules() {
        let t = Instant::now();
        let mut m = 0;
        for e in events {
            if moat_runtime::rules::compile::eval(&r.expr, e) {
                m += 1;
            }
        }
        println!(
            "{:>10.1} ns/event  {m:>6}  {}",
            t.elapsed().as_nanos() as f64 / events.len() as f64,
            r.name
        );
    }
}
