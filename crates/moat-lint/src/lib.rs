//! Build-time checks for moat: a real Dockerfile front-end, hadolint-compatible `DL` rules, moat's own
//! `MOAT-DF` rules, and image-configuration checks (`MOAT-IMG`, CIS Docker Benchmark aliases).
//!
//! Findings are suppressed the way hadolint users expect: `.hadolint.yaml` (`ignored`, `override`,
//! `trustedRegistries`, `failure-threshold`) and inline pragmas — `# hadolint ignore=DL3008,DL3015` on the
//! line above an instruction, `# hadolint global ignore=...`, `# hadolint stage ignore=...` — with the
//! same forms under `# moat ...`. Ignored findings are dropped, not reported.
#![forbid(unsafe_code)]

pub mod catalog;
pub mod config;
pub mod dockerfile;
pub mod image;
mod rules;
pub mod secrets;
pub mod shell;

use std::collections::{BTreeSet, HashMap};

use moat_model::{Finding, FindingKind};

pub use catalog::{RULES, RuleInfo, RuleMeta, RuleScope, ids, rule};
pub use config::Config;
pub use dockerfile::{Dockerfile, parse};
pub use rules::Hit;

#[derive(Debug, thiserror::Error)]
pub enum LintError {
    /// The input is not something moat can lint; the message names the file (and line).
    #[error("{0}")]
    Input(String),
}

/// Where an input error is and what it says, split for a report's error entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorPosition {
    pub line: Option<u32>,
    pub column: Option<u32>,
    /// The message without the `file:line:col: ` it started with.
    pub message: String,
}

impl LintError {
    /// Splits the message of an error about `file` into its position and its text. The parser's
    /// messages start `file:line:col: `, `file:line: ` or `file: ` (see `dockerfile::parse`).
    pub fn position(&self, file: &str) -> ErrorPosition {
        let LintError::Input(text) = self;
        let mut line = None;
        let mut column = None;
        let mut rest = match text.strip_prefix(file) {
            Some(r) => r,
            None => {
                return ErrorPosition {
                    line,
                    column,
                    message: text.clone(),
                };
            }
        };
        for slot in [&mut line, &mut column] {
            let Some(r) = rest.strip_prefix(':') else {
                break;
            };
            let digits = r.len() - r.trim_start_matches(|c: char| c.is_ascii_digit()).len();
            if digits == 0 {
                break;
            }
            *slot = r[..digits].parse().ok();
            rest = &r[digits..];
        }
        let message = rest
            .strip_prefix(':')
            .map(str::trim_start)
            .unwrap_or(rest)
            .to_string();
        ErrorPosition {
            line,
            column,
            message,
        }
    }
}

/// Which ids an ignore pragma names, and its scope.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pragma {
    Line(BTreeSet<String>),
    Global(BTreeSet<String>),
    Stage(BTreeSet<String>),
}

fn parse_pragma(comment: &str) -> Option<Pragma> {
    // Case-sensitive like hadolint: `# HADOLINT ignore=...` and `dl3006` are not pragmas.
    let t = comment.trim();
    let rest = t
        .strip_prefix("hadolint")
        .or_else(|| t.strip_prefix("moat"))?;
    let rest = rest.trim_start();
    let (scope, rest) = if let Some(r) = rest.strip_prefix("global") {
        ("global", r.trim_start())
    } else if let Some(r) = rest.strip_prefix("stage") {
        ("stage", r.trim_start())
    } else {
        ("line", rest)
    };
    let rest = rest.strip_prefix("ignore")?.trim_start();
    let rest = rest.strip_prefix('=')?;
    let parts: Vec<&str> = rest.split(',').map(str::trim).collect();
    // A malformed list (empty entry, trailing comma, words after an id) is not a pragma.
    if parts
        .iter()
        .any(|p| p.is_empty() || p.contains(char::is_whitespace))
    {
        return None;
    }
    let ids: BTreeSet<String> = parts.into_iter().map(str::to_string).collect();
    Some(match scope {
        "global" => Pragma::Global(ids),
        "stage" => Pragma::Stage(ids),
        _ => Pragma::Line(ids),
    })
}

fn names(ids: &BTreeSet<String>, rule: &str) -> bool {
    ids.contains(rule)
        || catalog::rule(rule).is_some_and(|r| r.aliases.iter().any(|a| ids.contains(*a)))
}

/// Runs every Dockerfile rule over parsed text and returns the raw hits (before pragmas and config).
pub fn check(df: &Dockerfile, cfg: &Config) -> Vec<Hit> {
    let m = rules::Model::new(df);
    let mut hits = Vec::new();
    rules::dl::check(&m, cfg, &mut hits);
    rules::dl::check_labels(&m, cfg, &mut hits);
    rules::moat::check(&m, &mut hits);
    // Pragmas.
    if !cfg.disable_ignore_pragma {
        let mut global: BTreeSet<String> = BTreeSet::new();
        let mut line_ignores: HashMap<u32, BTreeSet<String>> = HashMap::new();
        // Stage pragmas grouped by the line that ends them (hadolint's reading, established against
        // its binary: a pragma applies to the line after it and covers what follows up to and
        // including the next FROM; a FROM line belongs to the stage before it). Every pragma that
        // covers a line ends at the first FROM at or after that line, so a hit looks up one group
        // and, per id, the earliest start in it: no scan of every pragma per hit (quadratic with a
        // pragma per stage).
        let from_lines: Vec<u32> = df
            .instructions
            .iter()
            .filter(|i| i.is("FROM"))
            .map(|i| i.line)
            .collect();
        let end_of = |line: u32| -> u32 {
            let k = from_lines.partition_point(|&l| l < line);
            from_lines.get(k).copied().unwrap_or(u32::MAX)
        };
        let mut stage_ignores: HashMap<u32, HashMap<String, u32>> = HashMap::new();
        for c in &df.comments {
            match parse_pragma(&c.text) {
                Some(Pragma::Global(ids)) => global.extend(ids),
                Some(Pragma::Line(ids)) => line_ignores.entry(c.line + 1).or_default().extend(ids),
                Some(Pragma::Stage(ids)) => {
                    let start = c.line + 2;
                    let group = stage_ignores.entry(end_of(start)).or_default();
                    for id in ids {
                        let first = group.entry(id).or_insert(start);
                        *first = (*first).min(start);
                    }
                }
                None => {}
            }
        }
        hits.retain(|h| {
            if names(&global, h.rule.id) {
                return false;
            }
            if line_ignores
                .get(&h.line)
                .is_some_and(|ids| names(ids, h.rule.id))
            {
                return false;
            }
            let Some(group) = stage_ignores.get(&end_of(h.line)) else {
                return true;
            };
            let covers = |id: &str| group.get(id).is_some_and(|&start| start <= h.line);
            !(covers(h.rule.id)
                || catalog::rule(h.rule.id).is_some_and(|r| r.aliases.iter().any(|a| covers(a))))
        });
    }
    hits.retain(|h| {
        !cfg.is_ignored(h.rule.id) && !h.rule.aliases.iter().any(|a| cfg.is_ignored(a))
    });
    hits.sort_by(|a, b| (a.line, a.column, a.rule.id).cmp(&(b.line, b.column, b.rule.id)));
    hits.dedup();
    hits
}

/// Turns a hit into a finding for `file`: the rule's metadata (title, severity unless the
/// configuration overrides it, aliases, why, fix, documentation) and the hit's message and position.
pub fn to_finding(file: &str, h: &Hit, cfg: &Config) -> Finding {
    let mut f = finding_of(
        h.rule,
        FindingKind::Dockerfile,
        cfg.overrides.get(h.rule.id).copied(),
    );
    f.message = h.message.clone();
    f.location.file = Some(file.to_string());
    f.location.line = Some(h.line);
    f.location.column = Some(h.column);
    if h.end_line > h.line {
        f.location.end_line = Some(h.end_line);
    }
    f
}

/// A finding of `rule` with everything its metadata says (the one place a rule's metadata goes into a
/// report, for Dockerfile and image findings alike); `severity` overrides the rule's.
pub(crate) fn finding_of(
    rule: &'static catalog::RuleMeta,
    kind: FindingKind,
    severity: Option<moat_model::Severity>,
) -> Finding {
    let mut f = Finding::new(rule.id, kind, severity.unwrap_or(rule.severity), rule.title);
    f.aliases = rule.aliases.iter().map(|s| s.to_string()).collect();
    f.why = Some(rule.why.to_string());
    f.fix = Some(rule.fix.to_string());
    f.references = rule.doc_url.iter().map(|u| u.to_string()).collect();
    f
}

/// Lints one Dockerfile's bytes. `file` names it in findings and errors.
pub fn lint_dockerfile(file: &str, bytes: &[u8], cfg: &Config) -> Result<Vec<Finding>, LintError> {
    let df = parse(file, bytes)?;
    Ok(check(&df, cfg)
        .iter()
        .map(|h| to_finding(file, h, cfg))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(text: &str) -> Vec<&'static str> {
        let df = parse("Dockerfile", text.as_bytes()).unwrap();
        check(&df, &Config::default())
            .into_iter()
            .map(|h| h.rule.id)
            .collect()
    }

    #[test]
    fn error_positions() {
        let e = lint_dockerfile(
            "t/Dockerfile.jq",
            b"{{ range .items }}\nFROM x\n",
            &Config::default(),
        )
        .expect_err("a jq template is not a Dockerfile");
        let p = e.position("t/Dockerfile.jq");
        assert_eq!((p.line, p.column), (Some(1), Some(1)), "{e}");
        assert_eq!(p.message, "unknown instruction \"{{\"");
        let e = lint_dockerfile("x", b"\n\n", &Config::default()).expect_err("empty");
        let p = e.position("x");
        assert_eq!((p.line, p.column), (None, None));
        assert_eq!(p.message, "not a Dockerfile: no instructions");
        let e = lint_dockerfile("e", b"# escape=x\nFROM a\n", &Config::default())
            .expect_err("bad escape");
        assert_eq!(e.position("e").line, Some(1), "{e}");
    }

    #[test]
    fn ssh_port_as_the_image_check_reads_it() {
        for (text, fires) in [
            ("EXPOSE 22", true),
            ("EXPOSE 22/tcp 8080", true),
            ("EXPOSE 22/TCP", true),
            ("EXPOSE 22/udp 8080/tcp", false),
            ("EXPOSE 2222", false),
        ] {
            let v = ids(&format!("FROM a:1\n{text}\n"));
            assert_eq!(v.contains(&"MOAT-DF-010"), fires, "{text}: {v:?}");
        }
    }

    #[test]
    fn pragmas() {
        assert!(!ids("FROM a:1\n# hadolint ignore=DL3004\nRUN sudo x\n").contains(&"DL3004"));
        assert!(
            ids("FROM a:1\n# hadolint ignore=DL3004\nRUN true\nRUN sudo x\n").contains(&"DL3004")
        );
        assert!(
            !ids("# moat global ignore = DL3004 , DL3059\nFROM a:1\nRUN sudo x\n")
                .contains(&"DL3004")
        );
        assert!(
            !ids("FROM a:1\nUSER root\n# moat ignore=CIS-DI-0001\nUSER root\n")
                .contains(&"MOAT-DF-001")
        );
        assert_eq!(
            parse_pragma("hadolint ignore=DL3003,DL3006"),
            Some(Pragma::Line(
                ["DL3003".to_string(), "DL3006".to_string()].into()
            ))
        );
        assert_eq!(parse_pragma("just a comment"), None);
    }

    #[test]
    fn final_image_contents() {
        let v = ids(
            "FROM alpine:3.20\nRUN apk add --no-cache --virtual .build-deps gcc make && make && apk del --no-network .build-deps\nUSER 1\n",
        );
        assert!(!v.contains(&"MOAT-DF-008"), "{v:?}");
        let v = ids("FROM alpine:3.20\nRUN apk add --no-cache gcc=13 curl=8\nUSER 1\n");
        assert_eq!(
            v.iter()
                .filter(|r| **r == "MOAT-DF-007" || **r == "MOAT-DF-008")
                .count(),
            2,
            "{v:?}"
        );
        // A tool the image runs is needed; a tool purged later is gone; a build stage does not count.
        let v = ids(
            "FROM debian:12\nRUN apt-get install -y curl=1 wget=1 && apt-get purge -y wget\nUSER 1\nHEALTHCHECK CMD curl -f http://localhost/\n",
        );
        assert!(!v.contains(&"MOAT-DF-007"), "{v:?}");
        let v = ids(
            "FROM debian:12 AS b\nRUN apt-get install -y gcc=1 curl=1\nFROM debian:12\nUSER 1\n",
        );
        assert!(
            !v.contains(&"MOAT-DF-007") && !v.contains(&"MOAT-DF-008"),
            "{v:?}"
        );
    }

    #[test]
    fn label_schema_rules() {
        let cfg = Config::from_yaml(
            "h.yaml",
            "label-schema:\n  author: text\n  url: url\n  created: rfc3339\n  version: semver\n  commit: hash\n  contact: email\nstrict-labels: true\n",
        )
        .unwrap();
        let df = parse("D", b"FROM a:1\nLABEL author=\"\" url=notaurl created=2024-13 version=1.2 commit=xyz contact=nobody extra=1\n").unwrap();
        let got: Vec<&str> = check(&df, &cfg)
            .into_iter()
            .map(|h| h.rule.id)
            .filter(|r| r.starts_with("DL30"))
            .collect();
        for want in [
            "DL3050", "DL3051", "DL3052", "DL3053", "DL3055", "DL3056", "DL3058",
        ] {
            assert!(got.contains(&want), "{want} missing from {got:?}");
        }
        let ok = parse("D", b"FROM a:1\nLABEL author=me url=https://example.org created=2024-01-02T03:04:05Z version=1.2.3-rc.1 commit=0123456789abcdef0123456789abcdef01234567 contact=a@b.org\n").unwrap();
        let got: Vec<&str> = check(&ok, &cfg)
            .into_iter()
            .map(|h| h.rule.id)
            .filter(|r| r.starts_with("DL30"))
            .collect();
        assert!(
            !got.iter().any(|r| [
                "DL3049", "DL3050", "DL3051", "DL3052", "DL3053", "DL3055", "DL3056", "DL3058"
            ]
            .contains(r)),
            "{got:?}"
        );
        let missing = parse("D", b"FROM a:1\nLABEL author=me\n").unwrap();
        assert!(check(&missing, &cfg).iter().any(|h| h.rule == &ids::DL3049));
    }

    #[test]
    fn workshop_style_findings() {
        let v = ids(
            "FROM ubuntu:latest\nRUN apt-get update && apt-get install -y curl wget netcat\nCOPY . /app\nWORKDIR /app\nRUN chmod 777 -R /app\nUSER root\nCMD [\"python\", \"app.py\"]\n",
        );
        for want in [
            "DL3007",
            "DL3008",
            "DL3009",
            "DL3015",
            "DL3002",
            "MOAT-DF-001",
            "MOAT-DF-002",
            "MOAT-DF-007",
            "MOAT-DF-009",
        ] {
            assert!(v.contains(&want), "{want} missing from {v:?}");
        }
        let s = ids(
            "FROM python:3.11-alpine\nRUN pip install --no-cache-dir -r requirements.txt\nUSER 1001\nCMD [\"x\"]\n",
        );
        assert!(
            !s.contains(&"MOAT-DF-001") && !s.contains(&"DL3042"),
            "{s:?}"
        );
        assert!(
            ids("FROM a:1\nRUN curl -fsSL https://get.example | sh\n").contains(&"MOAT-DF-005")
        );
        assert!(ids("FROM a:1\nCOPY id_rsa /root/.ssh/\nENV API_TOKEN=abc123\nEXPOSE 22\nADD https://x/y.sh /y.sh\n").iter().filter(|r| r.starts_with("MOAT")).count() >= 4);
    }
}
