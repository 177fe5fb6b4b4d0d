//! Kubernetes audit events (`audit.k8s.io/v1` `Event` and `EventList`, as the API server's audit
//! webhook and log backends write them) evaluated against Falco's `k8s_audit` rules: the fields of
//! Falco's k8saudit plugin (`ka.*`) and of its JSON plugin (`jevt.*`, `json.*`) over the same rule
//! language (lists, macros, `append`/`override`, exceptions) as the syscall engine.
//!
//! A rule of another source (`syscall`) in the same files is left to the syscall engine; a `k8s_audit`
//! rule that uses a field moat does not provide is reported in [`K8sEngine::skipped`] and never
//! evaluated.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::cond::{self, Ast, Lists, RawField, Rhs};
use super::{Alert, Loader, Priority, Skipped, exceptions_condition};

/// Longest audit input read (64 MiB): an API server batches at most a few MiB per webhook call.
pub const MAX_INPUT: u64 = 64 << 20;

/// An audit event that cannot be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {place}: data not recognized as a k8s audit event ({why})")]
pub struct NotAudit {
    pub file: String,
    /// `line 3`, `item 2 of the EventList on line 1`.
    pub place: String,
    pub why: String,
}

/// Splits an input into audit events: one JSON `Event` or `EventList` document, or JSON lines of them.
/// Every unrecognized document is an error naming its place; the recognized ones are still returned.
pub fn parse_events(file: &str, text: &str) -> (Vec<Value>, Vec<NotAudit>) {
    let mut events = Vec::new();
    let mut errors = Vec::new();
    let take =
        |v: Value, place: String, events: &mut Vec<Value>, errors: &mut Vec<NotAudit>| match v
            .get("kind")
            .and_then(Value::as_str)
        {
            Some("Event") => events.push(v),
            Some("EventList") => match v.get("items") {
                Some(Value::Array(items)) => {
                    for (i, it) in items.iter().enumerate() {
                        if it
                            .get("kind")
                            .and_then(Value::as_str)
                            .is_none_or(|k| k == "Event")
                            && it.is_object()
                        {
                            events.push(it.clone());
                        } else {
                            errors.push(NotAudit {
                                file: file.into(),
                                place: format!("item {} of the EventList at {place}", i + 1),
                                why: "an EventList item must be an object of kind Event".into(),
                            });
                        }
                    }
                }
                _ => errors.push(NotAudit {
                    file: file.into(),
                    place,
                    why: "an EventList without an 'items' array".into(),
                }),
            },
            _ => errors.push(NotAudit {
                file: file.into(),
                place,
                why: "'kind' must be \"Event\" or \"EventList\"".into(),
            }),
        };
    // A whole document first (pretty-printed JSON spans lines), then JSON lines.
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        take(v, "line 1".into(), &mut events, &mut errors);
        return (events, errors);
    }
    for (n, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(t) {
            Ok(v) => take(v, format!("line {}", n + 1), &mut events, &mut errors),
            Err(e) => errors.push(NotAudit {
                file: file.into(),
                place: format!("line {}", n + 1),
                why: format!("not JSON: {e}"),
            }),
        }
    }
    (events, errors)
}

/// What a field yields for one event.
#[derive(Debug, Clone, PartialEq)]
enum KVal {
    None,
    One(String),
    List(Vec<String>),
}

impl KVal {
    fn render(&self) -> String {
        match self {
            KVal::None => "<NA>".into(),
            KVal::One(s) => s.clone(),
            KVal::List(v) => format!("({})", v.join(",")),
        }
    }
    fn to_json(&self) -> Value {
        match self {
            KVal::None => Value::Null,
            KVal::One(s) => Value::String(s.clone()),
            KVal::List(v) => Value::Array(v.iter().cloned().map(Value::String).collect()),
        }
    }
}

/// A field of the k8saudit and JSON plugins, resolved at load time.
#[derive(Debug, Clone)]
struct KField {
    text: String,
    kind: KF,
    arg: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KF {
    /// A JSON pointer into the event (`jevt.value[/stage]`, and every fixed-path field).
    Ptr(&'static str),
    /// `jevt.value[PTR]` / `json.value[PTR]` with the pointer as argument.
    ArgPtr,
    Obj,
    Time,
    RawTime,
    UserGroups,
    SourceIps,
    UriParam,
    BindingSubjects,
    BindingSubjectHasName,
    ConfigmapObj,
    /// First container's image / repository / privileged (the deprecated `ka.req.container.*`).
    FirstImage,
    FirstRepository,
    AnyPrivileged,
    /// Per-container lists; the argument is which array of the pod spec.
    Images(&'static str),
    Repositories(&'static str),
    Privileged(&'static str),
    CtrSecurity(&'static str, &'static str),
    AddCapabilities(&'static str),
    HostPorts,
    VolumeHostpaths,
    VolumeHostpathMatch,
    RoleRules,
    RoleRulesList(&'static str),
    ServicePorts,
    PodHostFlag(&'static str),
}

const CONTAINERS: &str = "containers";
const INIT: &str = "initContainers";
const EPHEMERAL: &str = "ephemeralContainers";

fn lookup(name: &str, arg: Option<&str>) -> Result<KField, String> {
    use KF::*;
    let kind = match name {
        "jevt.value" | "json.value" => ArgPtr,
        "jevt.obj" | "json.obj" => Obj,
        "jevt.time" | "json.time" | "ka.time" => Time,
        "jevt.rawtime" | "json.rawtime" => RawTime,
        "ka.auditid" => Ptr("/auditID"),
        "ka.stage" => Ptr("/stage"),
        "ka.auth.decision" => Ptr("/annotations/authorization.k8s.io~1decision"),
        "ka.auth.reason" => Ptr("/annotations/authorization.k8s.io~1reason"),
        "ka.user.name" => Ptr("/user/username"),
        "ka.user.groups" => UserGroups,
        "ka.impuser.name" => Ptr("/impersonatedUser/username"),
        "ka.verb" => Ptr("/verb"),
        "ka.uri" => Ptr("/requestURI"),
        "ka.uri.param" => UriParam,
        "ka.useragent" => Ptr("/userAgent"),
        "ka.sourceips" => SourceIps,
        "ka.target.name" => Ptr("/objectRef/name"),
        "ka.target.namespace" => Ptr("/objectRef/namespace"),
        "ka.target.resource" => Ptr("/objectRef/resource"),
        "ka.target.subresource" => Ptr("/objectRef/subresource"),
        "ka.req.binding.subjects" => BindingSubjects,
        "ka.req.binding.subject.has_name" => BindingSubjectHasName,
        "ka.req.binding.role" => Ptr("/requestObject/roleRef/name"),
        "ka.req.configmap.name" => Ptr("/objectRef/name"),
        "ka.req.configmap.obj" => ConfigmapObj,
        "ka.req.container.image" => FirstImage,
        "ka.req.container.image.repository" => FirstRepository,
        "ka.req.container.privileged" => AnyPrivileged,
        "ka.req.container.host_network" | "ka.req.pod.host_network" => PodHostFlag("hostNetwork"),
        "ka.req.pod.host_pid" => PodHostFlag("hostPID"),
        "ka.req.pod.host_ipc" => PodHostFlag("hostIPC"),
        "ka.req.pod.containers.image" => Images(CONTAINERS),
        "ka.req.pod.containers.image.repository" => Repositories(CONTAINERS),
        "ka.req.pod.containers.privileged" => Privileged(CONTAINERS),
        "ka.req.pod.initContainers.image" => Images(INIT),
        "ka.req.pod.initContainers.image.repository" => Repositories(INIT),
        "ka.req.pod.initContainers.privileged" => Privileged(INIT),
        "ka.req.pod.ephemeralContainers.image" => Images(EPHEMERAL),
        "ka.req.pod.ephemeralContainers.image.repository" => Repositories(EPHEMERAL),
        "ka.req.pod.ephemeralContainers.privileged" => Privileged(EPHEMERAL),
        "ka.req.pod.containers.allow_privilege_escalation" => {
            CtrSecurity(CONTAINERS, "allowPrivilegeEscalation")
        }
        "ka.req.pod.containers.read_only_fs" => CtrSecurity(CONTAINERS, "readOnlyRootFilesystem"),
        "ka.req.pod.containers.run_as_user" => CtrSecurity(CONTAINERS, "runAsUser"),
        "ka.req.pod.containers.run_as_group" => CtrSecurity(CONTAINERS, "runAsGroup"),
        "ka.req.pod.containers.proc_mount" => CtrSecurity(CONTAINERS, "procMount"),
        "ka.req.pod.containers.add_capabilities" => AddCapabilities(CONTAINERS),
        "ka.req.pod.containers.host_port" => HostPorts,
        "ka.req.pod.run_as_user" => Ptr("/requestObject/spec/securityContext/runAsUser"),
        "ka.req.pod.run_as_group" => Ptr("/requestObject/spec/securityContext/runAsGroup"),
        "ka.req.pod.fs_group" => Ptr("/requestObject/spec/securityContext/fsGroup"),
        "ka.req.pod.volumes.hostpath" => VolumeHostpaths,
        "ka.req.volume.hostpath" => VolumeHostpathMatch,
        "ka.req.role.rules" => RoleRules,
        "ka.req.role.rules.verbs" => RoleRulesList("verbs"),
        "ka.req.role.rules.resources" => RoleRulesList("resources"),
        "ka.req.role.rules.apiGroups" => RoleRulesList("apiGroups"),
        "ka.req.role.rules.nonResourceURLs" => RoleRulesList("nonResourceURLs"),
        "ka.req.service.type" => Ptr("/requestObject/spec/type"),
        "ka.req.service.ports" => ServicePorts,
        "ka.req.sa.name" => Ptr("/requestObject/metadata/name"),
        "ka.resp.name" => Ptr("/responseObject/metadata/name"),
        "ka.response.code" => Ptr("/responseStatus/code"),
        "ka.response.reason" => Ptr("/responseStatus/reason"),
        _ => {
            return Err(format!(
                "field '{name}' is not provided by moat's k8saudit engine"
            ));
        }
    };
    let needs_arg = matches!(
        kind,
        ArgPtr | UriParam | BindingSubjectHasName | VolumeHostpathMatch
    );
    match (needs_arg, arg) {
        (true, None) => return Err(format!("field '{name}' needs an argument ({name}[...])")),
        (false, Some(a)) => {
            return Err(format!("field '{name}' takes no argument (got [{a}])"));
        }
        _ => {}
    }
    if kind == ArgPtr && !arg.is_some_and(|a| a.is_empty() || a.starts_with('/')) {
        return Err(format!(
            "field '{name}': the argument must be a JSON pointer (/a/b), got [{}]",
            arg.unwrap_or_default()
        ));
    }
    Ok(KField {
        text: match arg {
            Some(a) => format!("{name}[{a}]"),
            None => name.to_string(),
        },
        kind,
        arg: arg.map(str::to_string),
    })
}

/// A JSON value as Falco's JSON plugin renders it: strings bare, everything else as compact JSON.
fn render_json(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `nginx:1.7`, `docker.io/a/b@sha256:..` → `nginx`, `docker.io/a/b`.
fn repository(image: &str) -> String {
    let no_digest = image.split('@').next().unwrap_or(image);
    let last_slash = no_digest.rfind('/').map_or(0, |i| i + 1);
    match no_digest[last_slash..].find(':') {
        Some(c) => no_digest[..last_slash + c].to_string(),
        None => no_digest.to_string(),
    }
}

fn containers<'a>(ev: &'a Value, which: &str) -> Option<&'a Vec<Value>> {
    ev.pointer(&format!("/requestObject/spec/{which}"))
        .and_then(Value::as_array)
}

fn list_of(v: Vec<String>) -> KVal {
    if v.is_empty() {
        KVal::None
    } else {
        KVal::List(v)
    }
}

/// Percent-decoding of a query parameter value (`+` is a space).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = (b[i] == b'%')
            .then(|| b.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (hex, b[i]) {
            (Some(c), _) => {
                out.push(c);
                i += 3;
                continue;
            }
            (None, b'+') => out.push(b' '),
            (None, c) => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `2018-10-25T17:53:07.123456Z` (RFC 3339, UTC or with an offset) to ns since the epoch.
pub fn parse_time(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut i = 19;
    let mut nanos = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let st = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let frac = &s[st..i];
        let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
        nanos = digits.parse().ok()?;
    }
    let offset = match b.get(i) {
        Some(b'Z' | b'z') => 0,
        Some(c @ (b'+' | b'-')) => {
            let oh = num(i + 1..i + 3)?;
            let om = num(i + 4..i + 6)?;
            let o = oh * 3600 + om * 60;
            if *c == b'+' { o } else { -o }
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let secs = days * 86400 + h * 3600 + mi * 60 + se - offset;
    u64::try_from(secs)
        .ok()
        .map(|s| s * 1_000_000_000 + nanos as u64)
}

fn event_time(ev: &Value) -> Option<u64> {
    [
        "/stageTimestamp",
        "/requestReceivedTimestamp",
        "/metadata/creationTimestamp",
    ]
    .iter()
    .find_map(|p| ev.pointer(p).and_then(Value::as_str).and_then(parse_time))
}

fn extract(ev: &Value, f: &KField) -> KVal {
    use KF::*;
    let one = |v: Option<&Value>| match v {
        None | Some(Value::Null) => KVal::None,
        Some(v) => KVal::One(render_json(v)),
    };
    match f.kind {
        Ptr(p) => one(ev.pointer(p)),
        ArgPtr => one(ev.pointer(f.arg.as_deref().unwrap_or(""))),
        Obj => KVal::One(ev.to_string()),
        Time => event_time(ev).map_or(KVal::None, |t| KVal::One(super::output::rfc3339(t))),
        RawTime => event_time(ev).map_or(KVal::None, |t| KVal::One(t.to_string())),
        UserGroups => strings_at(ev, "/user/groups"),
        SourceIps => strings_at(ev, "/sourceIPs"),
        UriParam => {
            let want = f.arg.as_deref().unwrap_or("");
            let uri = ev
                .pointer("/requestURI")
                .and_then(Value::as_str)
                .unwrap_or("");
            let Some((_, q)) = uri.split_once('?') else {
                return KVal::None;
            };
            q.split('&')
                .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
                .find(|(k, _)| percent_decode(k) == want)
                .map_or(KVal::None, |(_, v)| KVal::One(percent_decode(v)))
        }
        BindingSubjects => match ev
            .pointer("/requestObject/subjects")
            .and_then(Value::as_array)
        {
            Some(a) => list_of(a.iter().map(render_json).collect()),
            None => KVal::None,
        },
        BindingSubjectHasName => {
            match ev
                .pointer("/requestObject/subjects")
                .and_then(Value::as_array)
            {
                Some(a) => {
                    let want = f.arg.as_deref().unwrap_or("");
                    let has = a
                        .iter()
                        .any(|s| s.get("name").and_then(Value::as_str) == Some(want));
                    KVal::One(has.to_string())
                }
                None => KVal::None,
            }
        }
        ConfigmapObj => one(ev.pointer("/requestObject/data")),
        FirstImage => containers(ev, CONTAINERS)
            .and_then(|c| c.first())
            .and_then(|c| c.get("image"))
            .map_or(KVal::None, |v| KVal::One(render_json(v))),
        FirstRepository => containers(ev, CONTAINERS)
            .and_then(|c| c.first())
            .and_then(|c| c.get("image"))
            .and_then(Value::as_str)
            .map_or(KVal::None, |i| KVal::One(repository(i))),
        AnyPrivileged => match containers(ev, CONTAINERS) {
            Some(c) => KVal::One(
                c.iter()
                    .any(|c| c.pointer("/securityContext/privileged") == Some(&Value::Bool(true)))
                    .to_string(),
            ),
            None => KVal::None,
        },
        Images(which) => match containers(ev, which) {
            Some(c) => list_of(
                c.iter()
                    .filter_map(|c| c.get("image").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect(),
            ),
            None => KVal::None,
        },
        Repositories(which) => match containers(ev, which) {
            Some(c) => list_of(
                c.iter()
                    .filter_map(|c| c.get("image").and_then(Value::as_str))
                    .map(repository)
                    .collect(),
            ),
            None => KVal::None,
        },
        Privileged(which) => match containers(ev, which) {
            Some(c) => list_of(
                c.iter()
                    .map(|c| {
                        (c.pointer("/securityContext/privileged") == Some(&Value::Bool(true)))
                            .to_string()
                    })
                    .collect(),
            ),
            None => KVal::None,
        },
        CtrSecurity(which, key) => match containers(ev, which) {
            Some(c) => list_of(
                c.iter()
                    .filter_map(|c| c.get("securityContext").and_then(|s| s.get(key)))
                    .map(render_json)
                    .collect(),
            ),
            None => KVal::None,
        },
        AddCapabilities(which) => match containers(ev, which) {
            Some(c) => list_of(
                c.iter()
                    .filter_map(|c| c.pointer("/securityContext/capabilities/add"))
                    .filter_map(Value::as_array)
                    .flatten()
                    .map(render_json)
                    .collect(),
            ),
            None => KVal::None,
        },
        HostPorts => match containers(ev, CONTAINERS) {
            Some(c) => list_of(
                c.iter()
                    .filter_map(|c| c.get("ports").and_then(Value::as_array))
                    .flatten()
                    .filter_map(|p| p.get("hostPort"))
                    .map(render_json)
                    .collect(),
            ),
            None => KVal::None,
        },
        VolumeHostpaths => match ev
            .pointer("/requestObject/spec/volumes")
            .and_then(Value::as_array)
        {
            Some(v) => list_of(hostpaths(v)),
            None => KVal::None,
        },
        VolumeHostpathMatch => {
            match ev
                .pointer("/requestObject/spec/volumes")
                .and_then(Value::as_array)
            {
                Some(v) => {
                    let pat = f.arg.as_deref().unwrap_or("");
                    let hit = hostpaths(v).iter().any(|p| match pat.strip_suffix('*') {
                        Some(prefix) => p.starts_with(prefix),
                        None => p == pat,
                    });
                    KVal::One(hit.to_string())
                }
                None => KVal::None,
            }
        }
        RoleRules => match ev.pointer("/requestObject/rules").and_then(Value::as_array) {
            Some(r) => list_of(r.iter().map(render_json).collect()),
            None => KVal::None,
        },
        RoleRulesList(key) => match ev.pointer("/requestObject/rules").and_then(Value::as_array) {
            Some(r) => list_of(
                r.iter()
                    .filter_map(|r| r.get(key).and_then(Value::as_array))
                    .flatten()
                    .map(render_json)
                    .collect(),
            ),
            None => KVal::None,
        },
        ServicePorts => match ev
            .pointer("/requestObject/spec/ports")
            .and_then(Value::as_array)
        {
            Some(p) => list_of(p.iter().map(render_json).collect()),
            None => KVal::None,
        },
        PodHostFlag(key) => one(ev.pointer(&format!("/requestObject/spec/{key}"))),
    }
}

fn hostpaths(volumes: &[Value]) -> Vec<String> {
    volumes
        .iter()
        .filter_map(|v| v.pointer("/hostPath/path").and_then(Value::as_str))
        .map(str::to_string)
        .collect()
}

fn strings_at(ev: &Value, p: &str) -> KVal {
    match ev.pointer(p).and_then(Value::as_array) {
        Some(a) => list_of(a.iter().map(render_json).collect()),
        None => KVal::None,
    }
}

/// A compiled k8s_audit condition.
#[derive(Debug)]
enum KExpr {
    And(Vec<KExpr>),
    Or(Vec<KExpr>),
    Not(Box<KExpr>),
    Check { field: KField, op: KOp },
}

#[derive(Debug)]
enum KOp {
    Exists,
    /// `in`: a single value is in the set; every value of a list is (Falco's list semantics).
    In(Vec<String>),
    /// `intersects`: some value is in the set.
    Intersects(Vec<String>),
    /// `pmatch`: some value lies at or below one of the paths.
    PMatch(Vec<String>),
    /// A binary operator with one value, applied to each value of a list (any).
    Bin(String, String),
    Regex(regex::Regex),
}

struct KScope<'a> {
    macros: &'a HashMap<String, String>,
    lists: &'a Lists,
    cache: HashMap<String, Ast>,
    depth: usize,
}

use super::compile::MAX_DEPTH;

impl KScope<'_> {
    fn compile(&mut self, ast: &Ast, stack: &mut Vec<String>) -> Result<KExpr, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!(
                "condition nests deeper than {MAX_DEPTH} levels once macros are inlined"
            ));
        }
        let r = match ast {
            // Plain loops, not iterator adapters: each adapter is a stack frame per level in debug builds.
            Ast::And(v) | Ast::Or(v) => {
                let mut items = Vec::with_capacity(v.len());
                for a in v {
                    items.push(self.compile(a, stack)?);
                }
                if matches!(ast, Ast::And(_)) {
                    KExpr::And(items)
                } else {
                    KExpr::Or(items)
                }
            }
            Ast::Not(a) => KExpr::Not(Box::new(self.compile(a, stack)?)),
            Ast::Macro(m) => {
                if stack.iter().any(|s| s == m) {
                    return Err(format!("macro '{m}' references itself"));
                }
                let inner = match self.cache.get(m) {
                    Some(a) => a.clone(),
                    None => {
                        let text = self
                            .macros
                            .get(m)
                            .ok_or_else(|| format!("undefined macro '{m}'"))?;
                        let a = cond::parse(text, self.lists)
                            .map_err(|e| format!("macro '{m}': syntax error: {e}"))?;
                        self.cache.insert(m.clone(), a.clone());
                        a
                    }
                };
                stack.push(m.clone());
                let r = self.compile(&inner, stack);
                stack.pop();
                r?
            }
            Ast::Check { field, op, rhs } => compile_check(field, op, rhs)?,
        };
        self.depth -= 1;
        Ok(r)
    }
}

#[inline(never)]
fn compile_check(f: &RawField, op: &str, rhs: &Rhs) -> Result<KExpr, String> {
    if let Some(t) = &f.transform {
        return Err(format!(
            "transformer '{t}' is not provided by moat's k8saudit engine"
        ));
    }
    let field = lookup(&f.name, f.arg.as_deref())?;
    let vals = match rhs {
        Rhs::None => vec![],
        Rhs::Value(v) => vec![v.clone()],
        Rhs::List(v) => v.clone(),
        Rhs::Field(_) => {
            return Err(format!(
                "'{} {op} val(...)': field comparisons are not provided for k8s_audit",
                field.text
            ));
        }
    };
    let op = match op {
        "exists" => KOp::Exists,
        "in" => KOp::In(vals),
        "intersects" => KOp::Intersects(vals),
        "pmatch" => KOp::PMatch(
            vals.iter()
                .map(|v| v.trim_end_matches('/').to_string())
                .collect(),
        ),
        "regex" => KOp::Regex(
            regex::Regex::new(vals.first().map_or("", String::as_str))
                .map_err(|e| format!("'{} regex': {e}", field.text))?,
        ),
        "=" | "==" | "!=" | "<" | "<=" | ">" | ">=" | "contains" | "icontains" | "startswith"
        | "endswith" | "glob" | "iglob" => {
            KOp::Bin(op.to_string(), vals.into_iter().next().unwrap_or_default())
        }
        other => {
            return Err(format!(
                "operator '{other}' is not provided for k8s_audit fields"
            ));
        }
    };
    Ok(KExpr::Check { field, op })
}

fn bin(op: &str, a: &str, b: &str) -> bool {
    let num = || Some((a.trim().parse::<f64>().ok()?, b.trim().parse::<f64>().ok()?));
    match op {
        "=" | "==" => a == b,
        "!=" => a != b,
        "<" | "<=" | ">" | ">=" => {
            let ord = match num() {
                Some((x, y)) => x.partial_cmp(&y),
                None => Some(a.cmp(b)),
            };
            let Some(o) = ord else { return false };
            match op {
                "<" => o.is_lt(),
                "<=" => o.is_le(),
                ">" => o.is_gt(),
                _ => o.is_ge(),
            }
        }
        "contains" => a.contains(b),
        "icontains" => a.to_lowercase().contains(&b.to_lowercase()),
        "startswith" => a.starts_with(b),
        "endswith" => a.ends_with(b),
        "glob" => super::compile::glob(b.as_bytes(), a.as_bytes()),
        "iglob" => super::compile::glob(
            b.to_ascii_lowercase().as_bytes(),
            a.to_ascii_lowercase().as_bytes(),
        ),
        _ => false,
    }
}

fn below(prefix: &str, path: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|r| r.is_empty() || r.starts_with('/') || prefix.is_empty())
}

fn eval(e: &KExpr, ev: &Value) -> bool {
    match e {
        KExpr::And(v) => v.iter().all(|x| eval(x, ev)),
        KExpr::Or(v) => v.iter().any(|x| eval(x, ev)),
        KExpr::Not(x) => !eval(x, ev),
        KExpr::Check { field, op } => {
            let v = extract(ev, field);
            let items: Vec<&str> = match &v {
                KVal::None => return false,
                KVal::One(s) => vec![s.as_str()],
                KVal::List(l) => l.iter().map(String::as_str).collect(),
            };
            match op {
                KOp::Exists => true,
                KOp::In(set) => items.iter().all(|i| set.iter().any(|s| s == i)),
                KOp::Intersects(set) => items.iter().any(|i| set.iter().any(|s| s == i)),
                KOp::PMatch(ps) => items.iter().any(|i| ps.iter().any(|p| below(p, i))),
                KOp::Regex(r) => items.iter().any(|i| r.is_match(i)),
                KOp::Bin(o, b) => {
                    // `!=` on a list holds when no value equals; the others when some value matches.
                    if o == "!=" {
                        items.iter().all(|i| i != b)
                    } else {
                        items.iter().any(|i| bin(o, i, b))
                    }
                }
            }
        }
    }
}

/// An output template over k8s_audit fields.
#[derive(Debug)]
struct KTemplate {
    segs: Vec<Result<String, KField>>,
}

impl KTemplate {
    fn compile(src: &str) -> Result<KTemplate, String> {
        let b = src.as_bytes();
        let mut segs = Vec::new();
        let mut lit = String::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%'
                && i + 1 < b.len()
                && (b[i + 1].is_ascii_alphabetic() || b[i + 1] == b'(')
            {
                let paren = b[i + 1] == b'(';
                let st = i + 1 + paren as usize;
                let mut j = st;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || matches!(b[j], b'_' | b'.')) {
                    j += 1;
                }
                let mut name = &src[st..j];
                while name.ends_with('.') {
                    name = &name[..name.len() - 1];
                    j -= 1;
                }
                let mut arg = None;
                if j < b.len()
                    && b[j] == b'['
                    && let Some(close) = src[j..].find(']')
                {
                    arg = Some(&src[j + 1..j + close]);
                    j += close + 1;
                }
                if paren {
                    if b.get(j) != Some(&b')') {
                        return Err(format!("output: unterminated '%(' at offset {i}"));
                    }
                    j += 1;
                }
                if !lit.is_empty() {
                    segs.push(Ok(std::mem::take(&mut lit)));
                }
                segs.push(Err(lookup(name, arg).map_err(|e| format!("output: {e}"))?));
                i = j;
                continue;
            }
            let ch = src[i..].chars().next().unwrap_or(' ');
            lit.push(ch);
            i += ch.len_utf8();
        }
        if !lit.is_empty() {
            segs.push(Ok(lit));
        }
        Ok(KTemplate { segs })
    }

    fn render(&self, ev: &Value) -> (String, Map<String, Value>) {
        let mut out = String::new();
        let mut map = Map::new();
        for s in &self.segs {
            match s {
                Ok(l) => out.push_str(l),
                Err(f) => {
                    let v = extract(ev, f);
                    out.push_str(&v.render());
                    map.insert(f.text.clone(), v.to_json());
                }
            }
        }
        (out.trim().to_string(), map)
    }
}

struct KRule {
    name: String,
    priority: Priority,
    tags: Vec<String>,
    enabled: bool,
    mitre: Vec<String>,
    response: Option<String>,
    expr: KExpr,
    output: KTemplate,
}

/// The `k8s_audit` rules of a set of rule files, compiled.
pub struct K8sEngine {
    rules: Vec<KRule>,
    /// `k8s_audit` rules moat cannot evaluate, and why.
    pub skipped: Vec<Skipped>,
    pub warnings: Vec<String>,
    /// Rules of other sources in the files (evaluated by the syscall engine, not here).
    pub other_sources: usize,
}

impl Loader {
    /// Compiles the `k8s_audit` rules loaded so far (the syscall rules stay for [`Loader::build`]).
    pub fn build_k8saudit(&self) -> K8sEngine {
        let lists: Lists = self.lists.iter().cloned().collect();
        let macros: HashMap<String, String> = self
            .macros
            .iter()
            .map(|(n, c, _)| (n.clone(), c.clone()))
            .collect();
        let mut scope = KScope {
            macros: &macros,
            lists: &lists,
            cache: HashMap::new(),
            depth: 0,
        };
        // Every macro is parsed up front, not while compiling deep inside another condition (a
        // parse there would stack on top of the compiler's recursion).
        for (name, text, _) in &self.macros {
            if let Ok(a) = cond::parse(text, &lists) {
                scope.cache.insert(name.clone(), a);
            }
        }
        let mut rules = Vec::new();
        let mut skipped = Vec::new();
        let mut other_sources = 0;
        for def in &self.rules {
            if def.source != "k8s_audit" {
                other_sources += 1;
                continue;
            }
            let compiled = (|| -> Result<KRule, String> {
                if let Some(p) = &def.problem {
                    return Err(p.clone());
                }
                let priority = def
                    .priority
                    .clone()
                    .map_err(|p| format!("unknown priority '{p}'"))?;
                let mut text = format!("({})", def.condition);
                if let Some(exc) = exceptions_condition(def, &lists)? {
                    text = format!("{text} and {exc}");
                }
                let ast = cond::parse(&text, &lists).map_err(|e| format!("syntax error: {e}"))?;
                scope.depth = 0;
                let expr = scope.compile(&ast, &mut Vec::new())?;
                Ok(KRule {
                    name: def.name.clone(),
                    priority,
                    tags: def.tags.clone(),
                    enabled: def.enabled,
                    mitre: def.mitre.clone(),
                    response: def.response.as_ref().map(|r| r.trim().to_string()),
                    expr,
                    output: KTemplate::compile(&def.output)?,
                })
            })();
            match compiled {
                Ok(r) => rules.push(r),
                Err(reason) => skipped.push(Skipped {
                    rule: def.name.clone(),
                    reason,
                }),
            }
        }
        K8sEngine {
            rules,
            skipped,
            warnings: self.warnings.clone(),
            other_sources,
        }
    }
}

impl K8sEngine {
    /// `k8s_audit` rules that will be evaluated.
    pub fn evaluable(&self) -> usize {
        self.rules.len()
    }

    /// Names of the evaluable rules, in load order.
    pub fn rule_names(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.name.as_str())
    }

    /// Alerts for one audit event: every enabled rule that matches, in load order.
    pub fn process(&self, ev: &Value) -> Vec<Alert> {
        let ts = event_time(ev).unwrap_or(0);
        self.rules
            .iter()
            .filter(|r| r.enabled && eval(&r.expr, ev))
            .map(|r| {
                let (output, output_fields) = r.output.render(ev);
                Alert {
                    time: super::output::rfc3339(ts),
                    rule: r.name.clone(),
                    priority: r.priority,
                    output,
                    output_fields,
                    tags: r.tags.clone(),
                    source: "k8s_audit",
                    hostname: super::fields::hostname().to_string(),
                    container: None,
                    mitre: r.mitre.clone(),
                    response: r.response.clone(),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_and_times() {
        assert_eq!(repository("nginx"), "nginx");
        assert_eq!(repository("nginx:1.7"), "nginx");
        assert_eq!(repository("localhost:5000/a/b:1"), "localhost:5000/a/b");
        assert_eq!(repository("docker.io/a/b@sha256:abc"), "docker.io/a/b");
        assert_eq!(parse_time("1970-01-01T00:00:01.5Z"), Some(1_500_000_000));
        assert_eq!(
            parse_time("2018-10-25T17:53:07Z"),
            Some(1_540_489_987_000_000_000)
        );
        assert_eq!(
            parse_time("2018-10-25T19:53:07+02:00"),
            parse_time("2018-10-25T17:53:07Z")
        );
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("100%"), "100%");
    }

    #[test]
    fn list_semantics() {
        let ev: Value = serde_json::json!({"kind":"Event","stage":"ResponseComplete","verb":"create",
            "objectRef":{"resource":"pods"},
            "requestObject":{"spec":{"containers":[{"image":"nginx:1"},{"image":"mysql","securityContext":{"privileged":true}}]}}});
        let mut l = Loader::new();
        l.add_str(
            "t.yaml",
            r#"
- list: ok_images
  items: [nginx, mysql]
- rule: all in
  condition: ka.req.pod.containers.image.repository in (ok_images)
  output: "%ka.req.pod.containers.image"
  priority: INFO
  source: k8s_audit
- rule: not all in
  condition: ka.req.pod.containers.image.repository in (nginx)
  output: x
  priority: INFO
  source: k8s_audit
- rule: priv
  condition: ka.req.pod.containers.privileged intersects (true) and ka.req.container.privileged=true
  output: x
  priority: WARNING
  source: k8s_audit
- rule: unknown field
  condition: ka.nope = 1
  output: x
  priority: WARNING
  source: k8s_audit
- rule: a syscall rule
  condition: evt.type = open
  output: x
  priority: WARNING
"#,
        )
        .unwrap();
        let e = l.build_k8saudit();
        assert_eq!(e.other_sources, 1);
        assert_eq!(e.skipped.len(), 1);
        assert!(e.skipped[0].reason.contains("ka.nope"));
        let fired: Vec<_> = e
            .process(&ev)
            .into_iter()
            .map(|a| (a.rule, a.output))
            .collect();
        assert_eq!(
            fired,
            vec![
                ("all in".to_string(), "(nginx:1,mysql)".to_string()),
                ("priv".to_string(), "x".to_string())
            ]
        );
    }

    #[test]
    fn unrecognized_input_is_named() {
        let (ev, err) = parse_events("f.json", r#"{"kind": 0}"#);
        assert!(ev.is_empty());
        assert_eq!(err.len(), 1);
        assert!(
            err[0]
                .to_string()
                .contains("data not recognized as a k8s audit event")
        );
        let (ev, err) = parse_events(
            "f.jsonl",
            "{\"kind\":\"Event\"}\n\n{\"kind\":\"EventList\",\"items\":[{\"kind\":\"Event\"},3]}\nnope\n",
        );
        assert_eq!(ev.len(), 2);
        assert_eq!(err.len(), 2);
        assert!(err[0].place.contains("item 2"), "{:?}", err[0]);
        assert_eq!(err[1].place, "line 4");
    }
}
