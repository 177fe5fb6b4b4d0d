//! Issue 17: a bounded mutation-fuzz run, in CI, of the parsers that face untrusted bytes. Seeds are
//! small valid inputs; each round mutates one (bit flips, byte insertions and deletions, splices,
//! duplicated runs, truncation) with a deterministic xorshift generator, so a failure reproduces
//! from its round number. Every parser must return (never panic, overflow its stack or run away);
//! the longest single call is printed. The same seeds and mutations drive the cargo-fuzz targets
//! in fuzz/ for open-ended runs. `MOAT_FUZZ_ROUNDS` raises the number of rounds.

use std::time::{Duration, Instant};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn mutate(r: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + r.below(8) {
        let len = v.len();
        match r.below(7) {
            0 if len > 0 => {
                let i = r.below(len);
                v[i] ^= 1 << r.below(8);
            }
            1 => {
                let i = r.below(len + 1);
                v.insert(i, (r.next() & 0xff) as u8);
            }
            2 if len > 0 => {
                let i = r.below(len);
                v.remove(i);
            }
            3 if len > 0 => {
                // Duplicate a run many times (amplification).
                let a = r.below(len);
                let b = (a + 1 + r.below(64)).min(len);
                let run = v[a..b].to_vec();
                let times = 1 + r.below(200);
                let at = r.below(len + 1);
                let rep: Vec<u8> = run
                    .iter()
                    .copied()
                    .cycle()
                    .take(run.len() * times)
                    .collect();
                v.splice(at..at, rep);
            }
            4 if len > 0 => v.truncate(r.below(len)),
            5 => {
                // Nesting characters, to find unbounded recursion.
                let c = [b'(', b'[', b'{', b'$', b'`', b'"'][r.below(6)];
                let at = r.below(len + 1);
                let n = 1 + r.below(5000);
                v.splice(at..at, std::iter::repeat_n(c, n));
            }
            _ if len > 0 => {
                let i = r.below(len);
                v[i] = [0, 0xff, b'\n', b':', b' ', b'\\'][r.below(6)];
            }
            _ => {}
        }
    }
    v
}

fn rounds() -> usize {
    std::env::var("MOAT_FUZZ_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500)
}

fn run(name: &str, seeds: &[&[u8]], f: &dyn Fn(&[u8])) {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15 ^ name.len() as u64);
    let mut worst = Duration::ZERO;
    let started = Instant::now();
    for round in 0..rounds() {
        let seed = seeds[r.below(seeds.len())];
        let input = mutate(&mut r, seed);
        let t = Instant::now();
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&input)));
        worst = worst.max(t.elapsed());
        assert!(
            ok.is_ok(),
            "{name}: round {round} panicked on {} bytes",
            input.len()
        );
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "{name}: round {round} took {:?} on {} bytes",
            t.elapsed(),
            input.len()
        );
    }
    eprintln!(
        "{name}: {} rounds in {:?}, longest call {worst:?}",
        rounds(),
        started.elapsed()
    );
}

#[test]
fn dockerfile_and_shell() {
    run(
        "dockerfile",
        &[
            b"FROM alpine:3.20 AS build\nRUN apk add --no-cache curl && echo $(date) `id`\nONBUILD RUN make\nCOPY --from=build /a /b\nRUN <<EOF\necho hi\nEOF\n",
            b"# escape=`\nFROM mcr.microsoft.com/windows\nRUN dir `\n  c:\\\nHEALTHCHECK CMD [\"curl\", \"-f\"]\n",
        ],
        &|b| {
            if let Ok(df) = moat_lint::dockerfile::parse("Dockerfile", b) {
                for i in &df.instructions {
                    let _ = moat_lint::shell::parse(&i.args);
                }
            }
        },
    );
}

#[test]
fn os_package_databases() {
    run(
        "dpkg",
        &[b"Package: libc6\nStatus: install ok installed\nVersion: 2.36-9\nSource: glibc (2.36-9)\nDescription: x\n more\n\nPackage: b\nVersion: 1\n"],
        &|b| {
            let _ = moat_sbom::os::dpkg::packages(&String::from_utf8_lossy(b), true, None, None);
        },
    );
    run(
        "apk",
        &[b"P:musl\nV:1.2.4-r2\nA:x86_64\no:musl\nL:MIT\n\nP:busybox\nV:1.36\n"],
        &|b| {
            let _ = moat_sbom::os::apk::packages(&String::from_utf8_lossy(b), None);
        },
    );
    let mut ndb = Vec::new();
    ndb.extend_from_slice(b"RpmP\0\0\0\0\0\0\0\0\x01\0\0\0");
    ndb.resize(4096, 0);
    run(
        "rpm",
        &[&ndb, b"SQLite format 3\0\x10\0\x01\x01\0@  "],
        &|b| {
            let _ = moat_sbom::os::rpm::headers(b);
        },
    );
}

#[test]
fn kubernetes_and_policy_documents() {
    run(
        "kyverno",
        &[b"apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: p}\nspec:\n  rules:\n  - name: r\n    match: {any: [{resources: {kinds: [Pod]}}]}\n    validate:\n      message: \"{{ request.object.metadata.name }}\"\n      cel: {expressions: [{expression: \"object.spec.containers.all(c, has(c.image))\"}]}\n"],
        &|b| {
            let text = String::from_utf8_lossy(b);
            if let Ok(docs) = moat_policy::parse_yaml_documents(&text, "p.yaml") {
                let docs = docs.into_iter().map(|d| ("p.yaml".to_string(), d)).collect();
                let _ = moat_policy::PolicySet::from_documents(docs);
            }
        },
    );
}
