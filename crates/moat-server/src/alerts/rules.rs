//! Alert rules in YAML: which events (`image.scanned`, `image.verdict.changed`, `finding.new`,
//! `runtime.alert`, `admission.denied`) under which conditions (severity, fixable, repository glob,
//! rule id glob, namespace glob, decision) go to which targets (generic JSON webhook, Slack-compatible
//! webhook, CloudEvents 1.0, Alertmanager v2).
//!
//! Files are validated when the server starts; every error names the file and line. The schema is
//! documented in docs/server.md ("Alert rules").
//!
//! ```yaml
//! targets:
//!   - name: ops
//!     type: webhook            # webhook | slack | cloudevents | alertmanager
//!     url: https://hooks.example/moat
//!     headers: {X-Token: secret}
//! rules:
//!   - id: high-vuln-on-push
//!     event: image.scanned
//!     when: {severity: HIGH, repository: "team-a/*"}
//!     targets: [ops]
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use moat_model::Severity;
use serde::Deserialize;
use serde_json::Value;
use serde_saphyr::Spanned;

/// The events a rule can watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EventType {
    ImageScanned,
    VerdictChanged,
    FindingNew,
    RuntimeAlert,
    AdmissionDenied,
}

impl EventType {
    pub const ALL: [EventType; 5] = [
        EventType::ImageScanned,
        EventType::VerdictChanged,
        EventType::FindingNew,
        EventType::RuntimeAlert,
        EventType::AdmissionDenied,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ImageScanned => "image.scanned",
            EventType::VerdictChanged => "image.verdict.changed",
            EventType::FindingNew => "finding.new",
            EventType::RuntimeAlert => "runtime.alert",
            EventType::AdmissionDenied => "admission.denied",
        }
    }

    pub fn parse(s: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|e| e.as_str() == s)
    }

    /// Which `when:` fields make sense for this event (others are refused at start).
    fn fields(self) -> &'static [&'static str] {
        match self {
            EventType::ImageScanned | EventType::FindingNew => {
                &["severity", "fixable", "repository", "rule"]
            }
            EventType::VerdictChanged => &["repository", "decision"],
            EventType::RuntimeAlert => &["severity", "rule", "namespace", "repository"],
            EventType::AdmissionDenied => &["rule", "namespace"],
        }
    }
}

/// Where alerts go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// moat's own JSON document (see `targets::webhook_body`).
    Webhook,
    /// A Slack incoming webhook (or anything that takes `{"text": ...}`: Mattermost, Rocket.Chat).
    Slack,
    /// CloudEvents 1.0, structured JSON mode.
    CloudEvents,
    /// Alertmanager's `POST /api/v2/alerts`.
    Alertmanager,
}

impl TargetKind {
    fn parse(s: &str) -> Option<TargetKind> {
        match s {
            "webhook" => Some(TargetKind::Webhook),
            "slack" => Some(TargetKind::Slack),
            "cloudevents" => Some(TargetKind::CloudEvents),
            "alertmanager" => Some(TargetKind::Alertmanager),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Webhook => "webhook",
            TargetKind::Slack => "slack",
            TargetKind::CloudEvents => "cloudevents",
            TargetKind::Alertmanager => "alertmanager",
        }
    }
}

/// A validated target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub name: String,
    pub kind: TargetKind,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
    /// Where it was defined (`file:line`), for messages.
    pub origin: String,
}

/// A validated condition. Every given field must hold; a glob is `*`/`?` wildcards.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Condition {
    /// At or above.
    pub severity: Option<Severity>,
    pub fixable: Option<bool>,
    pub repository: Option<String>,
    /// Finding id (or any alias), runtime rule name, or admission rule (the part before `:` of a reason).
    pub rule: Option<String>,
    pub namespace: Option<String>,
    /// `allow` / `block`: the new decision of a verdict change.
    pub decision: Option<String>,
}

/// A validated rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub id: String,
    pub description: String,
    pub events: Vec<EventType>,
    pub when: Condition,
    /// Target names (all defined).
    pub targets: Vec<String>,
    pub origin: String,
}

/// Every rule and target of the configured files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    pub targets: BTreeMap<String, Target>,
}

/// A rule file that cannot be used. The message starts with `file:line:`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct RuleError(pub String);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    targets: Vec<Spanned<RawTarget>>,
    #[serde(default)]
    rules: Vec<Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    name: String,
    #[serde(rename = "type")]
    kind: Spanned<String>,
    url: Spanned<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    timeout_seconds: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    event: Option<Spanned<String>>,
    #[serde(default)]
    events: Vec<Spanned<String>>,
    #[serde(default)]
    when: Option<Spanned<RawWhen>>,
    targets: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWhen {
    #[serde(default)]
    severity: Option<Spanned<String>>,
    #[serde(default)]
    fixable: Option<bool>,
    #[serde(default)]
    repository: Option<String>,
    #[serde(default)]
    rule: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    decision: Option<Spanned<String>>,
}

/// Largest rule file read.
const MAX_RULE_FILE: u64 = 4 << 20;

impl RuleSet {
    /// Loads and validates every file; target names are shared across files.
    pub fn load(paths: &[impl AsRef<Path>]) -> Result<RuleSet, RuleError> {
        let mut set = RuleSet::default();
        for p in paths {
            let p = p.as_ref();
            let name = p.display().to_string();
            let meta =
                std::fs::metadata(p).map_err(|e| RuleError(format!("{name}: cannot read: {e}")))?;
            if meta.len() > MAX_RULE_FILE {
                return Err(RuleError(format!(
                    "{name}: {} bytes, more than the {MAX_RULE_FILE} byte limit for a rule file",
                    meta.len()
                )));
            }
            let text = std::fs::read_to_string(p)
                .map_err(|e| RuleError(format!("{name}: cannot read: {e}")))?;
            set.add_str(&name, &text)?;
        }
        set.check_references()?;
        Ok(set)
    }

    /// Parses one file's text into the set (references to targets are checked by [`RuleSet::load`] /
    /// [`RuleSet::parse`] once every file is in).
    pub fn add_str(&mut self, file: &str, text: &str) -> Result<(), RuleError> {
        if text.trim().is_empty() {
            return Ok(());
        }
        let raw: RawFile = serde_saphyr::from_str(text).map_err(|e| {
            let at = e
                .location()
                .map(|l| format!("{file}:{}:{}", l.line(), l.column()))
                .unwrap_or_else(|| file.to_string());
            let msg = e.to_string();
            let first = msg.lines().next().unwrap_or(&msg).to_string();
            RuleError(format!("{at}: {first}"))
        })?;
        for t in raw.targets {
            let at = format!("{file}:{}", t.referenced.line());
            let rt = t.value;
            if rt.name.trim().is_empty() {
                return Err(RuleError(format!("{at}: target name is empty")));
            }
            if let Some(prev) = self.targets.get(&rt.name) {
                return Err(RuleError(format!(
                    "{at}: target {:?} is already defined at {}",
                    rt.name, prev.origin
                )));
            }
            let kind = TargetKind::parse(&rt.kind.value).ok_or_else(|| {
                RuleError(format!(
                    "{file}:{}: target {:?}: type {:?} is not one of webhook, slack, cloudevents, alertmanager",
                    rt.kind.referenced.line(),
                    rt.name,
                    rt.kind.value
                ))
            })?;
            let url = rt.url.value.trim().to_string();
            if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 10 {
                return Err(RuleError(format!(
                    "{file}:{}: target {:?}: url {url:?} is not an http(s) URL",
                    rt.url.referenced.line(),
                    rt.name
                )));
            }
            for (k, v) in &rt.headers {
                let bad_name = k.is_empty()
                    || !k
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
                if bad_name || v.bytes().any(|b| b.is_ascii_control()) {
                    return Err(RuleError(format!(
                        "{at}: target {:?}: header {k:?} is not a valid HTTP header",
                        rt.name
                    )));
                }
            }
            let timeout = rt.timeout_seconds.unwrap_or(10);
            if !(1..=120).contains(&timeout) {
                return Err(RuleError(format!(
                    "{at}: target {:?}: timeout_seconds must be 1..=120, not {timeout}",
                    rt.name
                )));
            }
            self.targets.insert(
                rt.name.clone(),
                Target {
                    name: rt.name,
                    kind,
                    url,
                    headers: rt.headers.into_iter().collect(),
                    timeout: Duration::from_secs(timeout),
                    origin: at,
                },
            );
        }
        let mut seen: BTreeSet<String> = self.rules.iter().map(|r| r.id.clone()).collect();
        for r in raw.rules {
            let at = format!("{file}:{}", r.referenced.line());
            let rr = r.value;
            let id = rr.id.trim().to_string();
            if id.is_empty()
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
            {
                return Err(RuleError(format!(
                    "{at}: rule id {:?} must be letters, digits, '-', '_' or '.'",
                    rr.id
                )));
            }
            if !seen.insert(id.clone()) {
                return Err(RuleError(format!("{at}: rule id {id:?} is used twice")));
            }
            let mut names: Vec<Spanned<String>> = rr.event.into_iter().collect();
            names.extend(rr.events);
            if names.is_empty() {
                return Err(RuleError(format!(
                    "{at}: rule {id:?} has no `event` (one of {})",
                    all_events()
                )));
            }
            let mut events = Vec::new();
            for n in &names {
                let e = EventType::parse(&n.value).ok_or_else(|| {
                    RuleError(format!(
                        "{file}:{}: rule {id:?}: event {:?} is not one of {}",
                        n.referenced.line(),
                        n.value,
                        all_events()
                    ))
                })?;
                if !events.contains(&e) {
                    events.push(e);
                }
            }
            let mut when = Condition::default();
            if let Some(w) = rr.when {
                let wline = w.referenced.line();
                let w = w.value;
                let given: Vec<&str> = [
                    ("severity", w.severity.is_some()),
                    ("fixable", w.fixable.is_some()),
                    ("repository", w.repository.is_some()),
                    ("rule", w.rule.is_some()),
                    ("namespace", w.namespace.is_some()),
                    ("decision", w.decision.is_some()),
                ]
                .into_iter()
                .filter(|(_, g)| *g)
                .map(|(f, _)| f)
                .collect();
                for f in given {
                    for e in &events {
                        if !e.fields().contains(&f) {
                            return Err(RuleError(format!(
                                "{file}:{wline}: rule {id:?}: `{f}` does not apply to {} events (it takes {})",
                                e.as_str(),
                                e.fields().join(", ")
                            )));
                        }
                    }
                }
                if let Some(s) = w.severity {
                    let sev = s.value.trim().to_ascii_uppercase();
                    when.severity = Some(
                        Severity::ALL
                            .into_iter()
                            .find(|x| x.as_str() == sev)
                            .ok_or_else(|| {
                                RuleError(format!(
                                    "{file}:{}: rule {id:?}: severity {:?} is not one of UNKNOWN, INFO, LOW, MEDIUM, HIGH, CRITICAL",
                                    s.referenced.line(),
                                    s.value
                                ))
                            })?,
                    );
                }
                if let Some(d) = w.decision {
                    if !matches!(d.value.as_str(), "allow" | "block") {
                        return Err(RuleError(format!(
                            "{file}:{}: rule {id:?}: decision {:?} is not allow or block",
                            d.referenced.line(),
                            d.value
                        )));
                    }
                    when.decision = Some(d.value);
                }
                when.fixable = w.fixable;
                when.repository = w.repository;
                when.rule = w.rule;
                when.namespace = w.namespace;
            }
            if rr.targets.is_empty() {
                return Err(RuleError(format!("{at}: rule {id:?} has no targets")));
            }
            // Checked against every file's targets once all files are in.
            let targets = rr.targets.into_iter().map(|t| t.value).collect();
            self.rules.push(Rule {
                id,
                description: rr.description,
                events,
                when,
                targets,
                origin: at,
            });
        }
        Ok(())
    }

    fn check_references(&self) -> Result<(), RuleError> {
        for r in &self.rules {
            for t in &r.targets {
                if !self.targets.contains_key(t) {
                    let known: Vec<&str> = self.targets.keys().map(String::as_str).collect();
                    return Err(RuleError(format!(
                        "{}: rule {:?}: target {t:?} is not defined (defined: {})",
                        r.origin,
                        r.id,
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    )));
                }
            }
        }
        Ok(())
    }

    /// Parses one text as a whole rule set (tests, `moat server` config checks).
    pub fn parse(file: &str, text: &str) -> Result<RuleSet, RuleError> {
        let mut s = RuleSet::default();
        s.add_str(file, text)?;
        s.check_references()?;
        Ok(s)
    }

    /// The rules an event fires, each with the part of the event that matched (for findings, the
    /// matching findings).
    pub fn matching<'a>(&'a self, event: &Event) -> Vec<(&'a Rule, Value)> {
        self.rules
            .iter()
            .filter(|r| r.events.contains(&event.event_type))
            .filter_map(|r| r.when.matches(event).map(|m| (r, m)))
            .collect()
    }
}

fn all_events() -> String {
    EventType::ALL
        .iter()
        .map(|e| e.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// An event from the outbox, as rules see it.
#[derive(Debug, Clone)]
pub struct Event {
    pub event_type: EventType,
    pub subject: String,
    pub payload: Value,
}

fn glob(pattern: &str, s: &str) -> bool {
    wildmatch::WildMatch::new(pattern).matches(s)
}

fn severity_of(v: &Value) -> Option<Severity> {
    let s = v.as_str()?.to_ascii_uppercase();
    Severity::ALL.into_iter().find(|x| x.as_str() == s)
}

impl Condition {
    /// None when the condition does not hold; else what matched (the findings that satisfied every
    /// finding-level field, or the whole payload).
    pub fn matches(&self, e: &Event) -> Option<Value> {
        let p = &e.payload;
        let str_at = |k: &str| p.get(k).and_then(Value::as_str);
        if let Some(g) = &self.repository
            && !str_at("repository").is_some_and(|r| glob(g, r))
        {
            return None;
        }
        if let Some(g) = &self.namespace
            && !str_at("namespace").is_some_and(|n| glob(g, n))
        {
            return None;
        }
        match e.event_type {
            EventType::ImageScanned | EventType::FindingNew => {
                let findings: Vec<&Value> = match e.event_type {
                    EventType::FindingNew => p.get("finding").into_iter().collect(),
                    _ => p
                        .get("findings")
                        .and_then(Value::as_array)
                        .map(|a| a.iter().collect())
                        .unwrap_or_default(),
                };
                let finding_level =
                    self.severity.is_some() || self.fixable.is_some() || self.rule.is_some();
                if !finding_level {
                    return Some(Value::Array(findings.into_iter().cloned().collect()));
                }
                let hits: Vec<Value> = findings
                    .into_iter()
                    .filter(|f| self.finding_matches(f))
                    .cloned()
                    .collect();
                (!hits.is_empty()).then_some(Value::Array(hits))
            }
            EventType::VerdictChanged => {
                if let Some(d) = &self.decision
                    && str_at("to") != Some(d.as_str())
                {
                    return None;
                }
                Some(p.clone())
            }
            EventType::RuntimeAlert => {
                if let Some(min) = self.severity
                    && p.get("severity")
                        .and_then(severity_of)
                        .is_none_or(|s| s < min)
                {
                    return None;
                }
                if let Some(g) = &self.rule
                    && !str_at("rule").is_some_and(|r| glob(g, r))
                {
                    return None;
                }
                Some(p.clone())
            }
            EventType::AdmissionDenied => {
                if let Some(g) = &self.rule {
                    let rules: Vec<&str> = p
                        .get("reasons")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(|r| r.split(':').next().unwrap_or(r).trim())
                        .collect();
                    if !rules.iter().any(|r| glob(g, r)) {
                        return None;
                    }
                }
                Some(p.clone())
            }
        }
    }

    fn finding_matches(&self, f: &Value) -> bool {
        if let Some(min) = self.severity
            && f.get("severity")
                .and_then(severity_of)
                .is_none_or(|s| s < min)
        {
            return false;
        }
        if let Some(want) = self.fixable
            && f.get("fixable").and_then(Value::as_bool).unwrap_or(false) != want
        {
            return false;
        }
        if let Some(g) = &self.rule {
            let id = f.get("id").and_then(Value::as_str).unwrap_or("");
            let aliases = f
                .get("aliases")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str);
            if !(glob(g, id) || aliases.into_iter().any(|a| glob(g, a))) {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const EXAMPLE: &str = include_str!("../../examples/alert-rules/exercise-2.yaml");

    #[test]
    fn the_shipped_exercise_2_rule_file_loads() {
        let set = RuleSet::parse("exercise-2.yaml", EXAMPLE).expect("valid");
        assert_eq!(set.rules.len(), 1);
        let r = &set.rules[0];
        assert_eq!(r.events, [EventType::ImageScanned]);
        assert_eq!(r.when.severity, Some(Severity::High));
        assert!(set.targets.contains_key(&r.targets[0]));
    }

    fn scanned(findings: Value) -> Event {
        Event {
            event_type: EventType::ImageScanned,
            subject: "sha256:aa".into(),
            payload: json!({"digest": "sha256:aa", "repository": "team-a/payments", "tag": "1",
                "findings": findings}),
        }
    }

    #[test]
    fn conditions_over_findings() {
        let set = RuleSet::parse(
            "r.yaml",
            r#"
targets:
  - {name: t, type: webhook, url: "http://127.0.0.1:9/x"}
rules:
  - id: high
    event: image.scanned
    when: {severity: high, fixable: true, repository: "team-a/*"}
    targets: [t]
  - id: log4j
    events: [image.scanned, finding.new]
    when: {rule: "CVE-2021-44228"}
    targets: [t]
"#,
        )
        .expect("valid");
        let e = scanned(json!([
            {"id": "GHSA-1", "severity": "HIGH", "fixable": false},
            {"id": "GHSA-2", "severity": "CRITICAL", "fixable": true, "aliases": ["CVE-2021-44228"]},
            {"id": "GHSA-3", "severity": "MEDIUM", "fixable": true}
        ]));
        let m = set.matching(&e);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].0.id, "high");
        assert_eq!(
            m[0].1,
            json!([{"id": "GHSA-2", "severity": "CRITICAL", "fixable": true, "aliases": ["CVE-2021-44228"]}])
        );
        assert_eq!(m[1].0.id, "log4j");
        let mut other = scanned(json!([{"id": "GHSA-1", "severity": "HIGH", "fixable": true}]));
        other.payload["repository"] = json!("team-b/web");
        assert!(set.matching(&other).is_empty(), "repository glob");
        assert!(set.matching(&scanned(json!([]))).is_empty());
    }

    #[test]
    fn runtime_admission_and_verdict_conditions() {
        let set = RuleSet::parse(
            "r.yaml",
            r#"
targets: [{name: t, type: slack, url: "https://hooks.slack.example/x"}]
rules:
  - {id: shell, event: runtime.alert, when: {severity: MEDIUM, rule: "Terminal shell*", namespace: "prod*"}, targets: [t]}
  - {id: denied, event: admission.denied, when: {rule: image-scanned}, targets: [t]}
  - {id: flip, event: image.verdict.changed, when: {decision: block}, targets: [t]}
"#,
        )
        .expect("valid");
        let rt = Event {
            event_type: EventType::RuntimeAlert,
            subject: "prod/p".into(),
            payload: json!({"rule": "Terminal shell in container", "severity": "MEDIUM", "namespace": "prod"}),
        };
        assert_eq!(set.matching(&rt).len(), 1);
        let mut quiet = rt.clone();
        quiet.payload["namespace"] = json!("dev");
        assert!(set.matching(&quiet).is_empty());
        let ad = Event {
            event_type: EventType::AdmissionDenied,
            subject: "ns/Pod/p".into(),
            payload: json!({"namespace": "ns", "reasons": ["image-scanned: verdict for sha256:x is block"]}),
        };
        assert_eq!(set.matching(&ad)[0].0.id, "denied");
        let v = |to: &str| Event {
            event_type: EventType::VerdictChanged,
            subject: "sha256:aa".into(),
            payload: json!({"from": "allow", "to": to}),
        };
        assert_eq!(set.matching(&v("block")).len(), 1);
        assert!(set.matching(&v("allow")).is_empty());
    }

    #[test]
    fn errors_name_file_and_line() {
        let cases = [
            (
                "rules:\n  - id: a\n    event: image.pushed\n    targets: [t]\n",
                "f.yaml:3: rule \"a\": event \"image.pushed\" is not one of",
            ),
            (
                "targets:\n  - {name: t, type: webhook, url: \"http://x.example/\"}\nrules:\n  - id: a\n    event: image.scanned\n    when:\n      severity: SEVERE\n    targets: [t]\n",
                "f.yaml:7: rule \"a\": severity \"SEVERE\"",
            ),
            (
                "rules:\n  - id: a\n    event: image.scanned\n    targets: [nowhere]\n",
                "f.yaml:2: rule \"a\": target \"nowhere\" is not defined",
            ),
            (
                "targets:\n  - {name: t, type: pager, url: \"http://x.example/\"}\n",
                "f.yaml:2: target \"t\": type \"pager\"",
            ),
            (
                "targets:\n  - {name: t, type: webhook, url: \"http://x.example/\"}\nrules:\n  - id: a\n    event: admission.denied\n    when: {severity: HIGH}\n    targets: [t]\n",
                "f.yaml:6: rule \"a\": `severity` does not apply to admission.denied",
            ),
            ("rules:\n  - id: a\n    evnt: x\n", "f.yaml:3"),
            ("rules: [\n", "f.yaml:"),
        ];
        for (text, want) in cases {
            let e = RuleSet::parse("f.yaml", text).expect_err(text);
            assert!(
                e.0.starts_with(want),
                "{text:?}: got {e}, want prefix {want}"
            );
        }
    }

    #[test]
    fn load_names_a_missing_file() {
        let e = RuleSet::load(&["/nonexistent/rules.yaml"]).unwrap_err();
        assert!(
            e.0.starts_with("/nonexistent/rules.yaml: cannot read"),
            "{e}"
        );
    }
}
