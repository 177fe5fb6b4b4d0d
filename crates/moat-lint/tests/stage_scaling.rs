//! Issue 17 (slow paths): every rule is near-linear in the number of stages. A Dockerfile whose
//! stages name each other (`FROM s{i-1} AS s{i}`, `COPY --from`, `RUN --mount=from=`), carry stage
//! pragmas, archives extracted again and again, and `ENV` pairs that refer to each other used to be
//! linted in time quadratic in the stage count (30,000 stages: 15 s in a debug build). The test lints
//! 10^4 and 10^5 stages and compares the CPU time the linting thread used: linear work gives a ratio
//! near 10, the old quadratic rules about 100. The bound (35) is loose so a loaded machine does not
//! fail it, and a ratio does not depend on how fast the machine is.

use std::time::Instant;

/// The hostile Dockerfile: `n` stages, each naming the one before it in every way a rule looks a
/// stage up (alias parent, `COPY --from`, a mount's `from`, a stage pragma), with an archive copied
/// and extracted and an `ENV` whose pairs refer to one another.
fn stages(n: usize) -> String {
    let mut df = String::with_capacity(n * 160);
    df.push_str("FROM alpine:3.20 AS s0\n");
    for i in 1..n {
        let p = i - 1;
        // Kept under 160 bytes a stage so 10^5 stages stay within the 16 MiB Dockerfile limit.
        // `COPY a.tar x` without WORKDIR fires DL3045 in every stage; the even stages' pragma
        // ignores it, so about half the stages report it.
        let ignored = if i % 2 == 0 { "DL3045" } else { "DL3007" };
        df.push_str(&format!(
            "# hadolint stage ignore={ignored}\n\
             FROM s{p} AS s{i}\n\
             COPY --from=s{p} a /\n\
             COPY a.tar x\n\
             ENV A=1 B=$A\n\
             RUN --mount=from=s{p},target=/c tar -xf a.tar\n\
             USER 1\n"
        ));
    }
    df
}

/// CPU time this thread has used, in nanoseconds (the scheduler's own count, so other processes
/// on a loaded machine do not inflate it); wall time when the kernel does not expose it.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Parses and lints `text`; returns (hits, CPU-or-wall nanoseconds).
fn lint(text: &str) -> (usize, u64) {
    // DL3026 checks every mount's `from` against the stage names too.
    let cfg = moat_lint::Config {
        trusted_registries: vec!["docker.io".into()],
        ..moat_lint::Config::default()
    };
    let cpu0 = thread_cpu_ns();
    let t0 = Instant::now();
    let df = moat_lint::parse("Dockerfile", text.as_bytes()).expect("parses");
    let hits = moat_lint::check(&df, &cfg).len();
    let ns = match (cpu0, thread_cpu_ns()) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => t0.elapsed().as_nanos() as u64,
    };
    (hits, ns)
}

#[test]
fn a_hundred_thousand_stages_lint_in_near_linear_time() {
    let small = stages(10_000);
    let big = stages(100_000);
    // Best of two for the small input, so one scheduling hiccup does not shrink the denominator.
    let (hits_small, a) = lint(&small);
    let (_, b) = lint(&small);
    let t_small = a.min(b);
    let (hits_big, t_big) = lint(&big);
    let ratio = t_big as f64 / t_small.max(1) as f64;
    eprintln!(
        "10^4 stages: {hits_small} hits in {:.3} s; 10^5 stages: {hits_big} hits in {:.3} s; ratio {ratio:.1}",
        t_small as f64 / 1e9,
        t_big as f64 / 1e9
    );
    // The rules still fire at this scale and the pragmas still apply: DL3045 in the odd stages only.
    assert!(
        (4_900..5_100).contains(&hits_small) && (49_900..50_100).contains(&hits_big),
        "{hits_small} and {hits_big} hits"
    );
    assert!(
        ratio < 35.0,
        "10x the stages took {ratio:.1}x the CPU time: a rule is not near-linear in the stage count"
    );
}
