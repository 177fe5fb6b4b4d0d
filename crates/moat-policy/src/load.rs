//! Reading policy files and compiling policy documents into rules.

use std::path::{Path, PathBuf};

use moat_model::Severity;
use serde_json::Value;

use crate::celrule::{CelValidate, Vap, VapBinding};
use crate::cond::Conditions;
use crate::matcher::Match;
use crate::vars::{self, Query};
use crate::{MAX_DEPTH, PolicyError, Unsupported};

/// Largest file read (policies, resources, tests).
pub(crate) const MAX_FILE_BYTES: u64 = 64 << 20;

/// Pod controllers Kyverno applies Pod rules to through their pod template, by default.
pub(crate) const DEFAULT_CONTROLLERS: &[&str] = &[
    "DaemonSet",
    "Deployment",
    "Job",
    "StatefulSet",
    "ReplicaSet",
    "ReplicationController",
    "CronJob",
];

#[derive(Debug)]
pub(crate) struct Policy {
    pub name: String,
    /// Set for the namespaced `Policy` kind: it only applies in its own namespace.
    pub namespace: Option<String>,
    pub severity: Severity,
    pub title: String,
    pub rules: Vec<Rule>,
    /// `validationFailureActionOverrides`: the action for namespaces matching a list or selector.
    pub overrides: Vec<ActionOverride>,
    /// `policies.kyverno.io/scored: "false"`: failures are reported as warnings.
    pub scored: bool,
    /// `spec.applyRules: One`: stop after the first rule that applies.
    pub apply_one: bool,
}

#[derive(Debug)]
pub(crate) struct ActionOverride {
    pub enforce: bool,
    pub namespaces: Vec<String>,
    pub selector: Option<crate::matcher::Selector>,
}

#[derive(Debug)]
pub(crate) struct Rule {
    pub name: String,
    pub matcher: Option<Match>,
    pub exclude: Option<Match>,
    pub preconditions: Option<Conditions>,
    pub context: Vec<ContextVar>,
    pub body: Body,
    pub enforce: bool,
    /// The rule sets its own `failureAction` (namespace overrides do not apply).
    pub enforce_explicit: bool,
    /// Pod controllers this Pod rule also judges, through their pod template (Kyverno autogen).
    pub autogen: Vec<String>,
    /// A Kyverno CEL library reading outside data (`resource`, `image`): evaluated only where the
    /// request carries offline data.
    pub needs_offline: Option<&'static str>,
}

/// A `context` entry of kind `variable`.
#[derive(Debug)]
pub(crate) struct ContextVar {
    pub name: String,
    pub value: Option<Value>,
    pub jmes_path: Option<Query>,
    pub default: Option<Value>,
    /// The entry reads outside data (`apiCall`, `configMap`, `imageRegistry`, `globalReference`): it
    /// is only evaluated where a value of the same name is supplied.
    pub external: Option<&'static str>,
}

#[derive(Debug)]
pub(crate) enum Body {
    Validate {
        message: Option<String>,
        check: Check,
    },
    Cel(CelValidate),
    /// A classic mutate rule (patchStrategicMerge, patchesJson6902, foreach).
    Mutate(Box<crate::mutate::MutateRule>),
    /// A MutatingPolicy (CEL mutations).
    Mpol(Box<crate::mpol::Mpol>),
    /// A classic `verifyImages` rule (cosign public keys).
    VerifyImages(Vec<crate::images::VerifyEntry>),
    /// An ImageValidatingPolicy.
    Ivpol(Box<crate::images::Ivpol>),
    /// A GeneratingPolicy (evaluated, not applied: needs a cluster to create resources).
    Gpol(Box<crate::gpol::Gpol>),
    /// A generate rule (its `generate` block): `policy test` reports whether it applies and, for
    /// `data` generation, what it would create.
    Generate(Box<Value>),
    Vap(Box<Vap>),
    /// Left out of evaluation (reported by `unsupported`).
    Unsupported(String),
}

#[derive(Debug)]
pub(crate) enum Check {
    Pattern(Value),
    AnyPattern(Vec<Value>),
    Deny(Conditions),
    Foreach(Vec<Foreach>),
}

#[derive(Debug)]
pub(crate) struct Foreach {
    pub list: Query,
    pub element_scope: Option<bool>,
    pub preconditions: Option<Conditions>,
    pub context: Vec<ContextVar>,
    pub check: Check,
}

/// Files below `p` (or `p` itself) with a YAML/JSON extension, sorted.
pub(crate) fn collect_files(p: &Path) -> Result<Vec<PathBuf>, PolicyError> {
    let meta = std::fs::metadata(p).map_err(|e| PolicyError::Io {
        path: p.display().to_string(),
        message: e.to_string(),
    })?;
    // Anything but a directory is read as a file, where a FIFO or device is refused by name.
    if !meta.is_dir() {
        return Ok(vec![p.to_path_buf()]);
    }
    let mut out = Vec::new();
    walk(p, 0, &mut out)?;
    out.sort();
    Ok(out)
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<(), PolicyError> {
    if depth > 32 {
        return Ok(());
    }
    let rd = std::fs::read_dir(dir).map_err(|e| PolicyError::Io {
        path: dir.display().to_string(),
        message: e.to_string(),
    })?;
    for entry in rd.flatten() {
        let path = entry.path();
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_dir() {
            walk(&path, depth + 1, out)?;
        } else if ft.is_file() || ft.is_symlink() && !path.is_dir() {
            // A link to anything but a directory is read as a file, where a FIFO, a device
            // (`zero.yaml -> /dev/zero`) or a dangling link is refused by name (never skipped).
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if matches!(ext, "yaml" | "yml" | "json") {
                out.push(path);
            }
        }
    }
    Ok(())
}

/// Reads a text file of bounded size.
pub(crate) fn read_file(path: &Path) -> Result<String, PolicyError> {
    let io = |e: std::io::Error| PolicyError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    };
    // Opened without blocking and checked on the descriptor: a FIFO or device is refused by name.
    let opened =
        moat_fsio::open_regular(path, moat_fsio::Follow::Always).map_err(|e| PolicyError::Io {
            path: path.display().to_string(),
            message: match e {
                moat_fsio::FsError::Io { source, .. } => source.to_string(),
                other => other.to_string(),
            },
        })?;
    let meta = opened.metadata().map_err(io)?;
    if meta.len() > MAX_FILE_BYTES {
        return Err(PolicyError::Io {
            path: path.display().to_string(),
            message: format!(
                "{} bytes is larger than the {} byte limit",
                meta.len(),
                MAX_FILE_BYTES
            ),
        });
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(opened, MAX_FILE_BYTES + 1),
        &mut bytes,
    )
    .map_err(io)?;
    String::from_utf8(bytes).map_err(|_| PolicyError::Parse {
        source_name: path.display().to_string(),
        message: "not UTF-8 text".into(),
    })
}

/// Parses a YAML stream (or JSON document) into its non-empty documents, expanding `List` kinds.
pub fn parse_yaml_documents(text: &str, source_name: &str) -> Result<Vec<Value>, PolicyError> {
    let trimmed = text.trim_start();
    let docs: Vec<Value> = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Array(a)) => a,
            Ok(v) => vec![v],
            Err(e) => {
                return Err(PolicyError::Parse {
                    source_name: source_name.to_string(),
                    message: format!("line {} column {}: {e}", e.line(), e.column()),
                });
            }
        }
    } else {
        serde_saphyr::from_multiple::<Value>(text).map_err(|e| PolicyError::Parse {
            source_name: source_name.to_string(),
            message: e.to_string(),
        })?
    };
    let mut out = Vec::new();
    for d in docs {
        if d.is_null() {
            continue;
        }
        if depth(&d, 0) > MAX_DEPTH {
            return Err(PolicyError::invalid(
                source_name,
                "(document)",
                format!("nesting deeper than {MAX_DEPTH}"),
            ));
        }
        if d.get("kind")
            .and_then(Value::as_str)
            .is_some_and(|k| k == "List" || k.ends_with("List"))
            && let Some(Value::Array(items)) = d.get("items")
        {
            out.extend(items.iter().filter(|i| !i.is_null()).cloned());
            continue;
        }
        out.push(d);
    }
    Ok(out)
}

/// Nesting depth of a value, stopping early past the limit.
pub(crate) fn depth(v: &Value, d: usize) -> usize {
    if d > MAX_DEPTH {
        return d;
    }
    match v {
        Value::Array(a) => a.iter().map(|x| depth(x, d + 1)).max().unwrap_or(d + 1),
        Value::Object(o) => o.values().map(|x| depth(x, d + 1)).max().unwrap_or(d + 1),
        _ => d,
    }
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Compiles one document; non-policies are ignored.
pub(crate) fn add_document(
    policies: &mut Vec<Policy>,
    unsupported: &mut Vec<Unsupported>,
    bindings: &mut Vec<VapBinding>,
    source: &str,
    doc: Value,
) -> Result<(), PolicyError> {
    let Some(kind) = str_at(&doc, "kind") else {
        return Ok(());
    };
    let api = str_at(&doc, "apiVersion").unwrap_or("");
    match kind {
        "ValidatingAdmissionPolicy" if api.starts_with("admissionregistration.k8s.io") => {
            let p = crate::celrule::compile_vap(&doc, source, unsupported)?;
            policies.push(p);
            return Ok(());
        }
        _ if api.starts_with("policies.kyverno.io/") => {
            if let Some((_, support)) = crate::vpol::KYVERNO_CEL_KINDS
                .iter()
                .find(|(k, _)| *k == kind)
            {
                let p = match support {
                    crate::vpol::Support::Validate => {
                        crate::vpol::compile_validating_policy(&doc, kind, source, unsupported)?
                    }
                    crate::vpol::Support::Mutate => {
                        crate::vpol::compile_mutating_policy(&doc, kind, source)?
                    }
                    crate::vpol::Support::Generate => {
                        crate::vpol::compile_generating_policy(&doc, kind, source, unsupported)?
                    }
                    crate::vpol::Support::Images => {
                        crate::vpol::compile_image_policy(&doc, kind, source, unsupported)?
                    }
                    crate::vpol::Support::Unsupported(f) => {
                        crate::vpol::unsupported_kind(&doc, *f, source, unsupported)?
                    }
                };
                policies.push(p);
            }
            return Ok(());
        }
        "ValidatingAdmissionPolicyBinding" if api.starts_with("admissionregistration.k8s.io") => {
            bindings.push(crate::celrule::parse_binding(&doc));
            return Ok(());
        }
        _ => {}
    }
    // Kyverno's shape under any kind: spec.rules[] with match and a rule body.
    let Some(rules) = doc.pointer("/spec/rules").and_then(Value::as_array) else {
        return Ok(());
    };
    let is_kyverno_shape = rules
        .iter()
        .any(|r| r.get("match").is_some() || r.get("validate").is_some());
    if !is_kyverno_shape {
        return Ok(());
    }
    let name = doc
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if name.is_empty() {
        return Err(PolicyError::invalid(
            source,
            "metadata.name",
            "a policy needs a name",
        ));
    }
    let namespace = if kind == "Policy" {
        Some(
            doc.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("default")
                .to_string(),
        )
    } else {
        None
    };
    let annotations = doc.pointer("/metadata/annotations");
    let ann = |k: &str| annotations.and_then(|a| a.get(k)).and_then(Value::as_str);
    let severity = ann("policies.kyverno.io/severity")
        .and_then(|s| s.parse().ok())
        .unwrap_or(Severity::Medium);
    let title = ann("policies.kyverno.io/title")
        .unwrap_or(&name)
        .to_string();
    let controllers: Vec<String> = match ann("pod-policies.kyverno.io/autogen-controllers") {
        Some(s) if s.trim().eq_ignore_ascii_case("none") => Vec::new(),
        Some(s) => s
            .split(',')
            .map(|c| c.trim().to_string())
            .filter(|c| !c.is_empty())
            .collect(),
        None => DEFAULT_CONTROLLERS.iter().map(|s| s.to_string()).collect(),
    };
    let spec = doc.get("spec").unwrap_or(&Value::Null);
    let policy_enforce = action_is_enforce(str_at(spec, "validationFailureAction"));
    let mut overrides = Vec::new();
    for (i, o) in spec
        .get("validationFailureActionOverrides")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let field = format!("spec.validationFailureActionOverrides[{i}]");
        let selector = match o.get("namespaceSelector").filter(|v| !v.is_null()) {
            Some(sel) => Some(crate::matcher::Selector::compile(
                sel,
                source,
                &format!("{field}.namespaceSelector"),
            )?),
            None => None,
        };
        let namespaces = o
            .get("namespaces")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        overrides.push(ActionOverride {
            enforce: action_is_enforce(str_at(o, "action")),
            namespaces,
            selector,
        });
    }
    let scored = ann("policies.kyverno.io/scored") != Some("false");
    let apply_one = str_at(spec, "applyRules") == Some("One");
    let mut compiled = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        let field = format!("spec.rules[{i}]");
        let rname = str_at(r, "name").unwrap_or("").to_string();
        let rule = compile_rule(
            r,
            &rname,
            &field,
            source,
            policy_enforce,
            &controllers,
            &name,
            unsupported,
        )?;
        compiled.push(rule);
    }
    policies.push(Policy {
        name,
        namespace,
        severity,
        title,
        rules: compiled,
        overrides,
        scored,
        apply_one,
    });
    Ok(())
}

fn action_is_enforce(a: Option<&str>) -> bool {
    a.is_some_and(|a| a.eq_ignore_ascii_case("enforce"))
}

#[allow(clippy::too_many_arguments)]
fn compile_rule(
    r: &Value,
    name: &str,
    field: &str,
    source: &str,
    policy_enforce: bool,
    controllers: &[String],
    policy: &str,
    unsupported: &mut Vec<Unsupported>,
) -> Result<Rule, PolicyError> {
    let matcher = match r.get("match") {
        Some(m) => Some(Match::compile(m, source, &format!("{field}.match"))?),
        None => {
            return Err(PolicyError::invalid(
                source,
                format!("{field}.match"),
                "a rule needs a match block",
            ));
        }
    };
    let exclude = match r.get("exclude") {
        Some(m) if !m.is_null() => Some(Match::compile(m, source, &format!("{field}.exclude"))?),
        _ => None,
    };
    let preconditions = match r.get("preconditions") {
        Some(c) if !c.is_null() => Some(Conditions::compile(
            c,
            source,
            &format!("{field}.preconditions"),
        )?),
        _ => None,
    };
    let (context, ctx_problem) =
        compile_context(r.get("context"), source, &format!("{field}.context"))?;
    for c in context.iter().filter(|c| c.external.is_some()) {
        unsupported.push(Unsupported {
            policy: policy.to_string(),
            rule: name.to_string(),
            reason: external_reason(c),
        });
    }
    let mut unsup = |reason: String| {
        unsupported.push(Unsupported {
            policy: policy.to_string(),
            rule: name.to_string(),
            reason: reason.clone(),
        });
        reason
    };
    let mut enforce = policy_enforce;
    let mut enforce_explicit = false;
    let body = if let Some(reason) = ctx_problem {
        Body::Unsupported(unsup(reason))
    } else if let Some(v) = r.get("validate") {
        if let Some(a) = str_at(v, "failureAction") {
            enforce = action_is_enforce(Some(a));
            enforce_explicit = true;
        }
        compile_validate(v, source, &format!("{field}.validate"), &mut unsup)?
    } else if let Some(m) = r.get("mutate") {
        if m.get("targets").is_some_and(|t| !t.is_null()) {
            Body::Unsupported(unsup(
                "mutate.targets: mutating existing resources needs a live cluster".into(),
            ))
        } else {
            match compile_mutate(m, source, &format!("{field}.mutate"), 0)? {
                Ok(mr) => Body::Mutate(Box::new(mr)),
                Err(reason) => Body::Unsupported(unsup(reason)),
            }
        }
    } else if let Some(g) = r.get("generate") {
        let _ = unsup("generate rule: moat validates only; `policy test` reports whether the rule would apply".into());
        Body::Generate(Box::new(g.clone()))
    } else if let Some(vi) = r.get("verifyImages") {
        if let Some(a) = str_at(r, "failureAction").or_else(|| {
            vi.as_array()
                .and_then(|l| l.first())
                .and_then(|e| str_at(e, "failureAction"))
        }) {
            enforce = action_is_enforce(Some(a));
            enforce_explicit = true;
        }
        match crate::images::compile_verify_images(vi, source, &format!("{field}.verifyImages"))? {
            Ok(entries) => Body::VerifyImages(entries),
            Err(reason) => Body::Unsupported(unsup(reason)),
        }
    } else {
        Body::Unsupported(unsup(
            "rule has no validate, mutate or generate block".into(),
        ))
    };
    let autogen = if crate::autogen::eligible(r) && !matches!(body, Body::Generate(_)) {
        controllers.to_vec()
    } else {
        Vec::new()
    };
    Ok(Rule {
        name: name.to_string(),
        matcher,
        exclude,
        preconditions,
        context,
        body,
        enforce,
        enforce_explicit,
        autogen,
        needs_offline: None,
    })
}

/// Why a context entry reading outside data is not computed.
pub(crate) fn external_reason(c: &ContextVar) -> String {
    format!(
        "context entry `{}` uses {}: needs cluster or registry access; evaluated only where its value is supplied (kyverno test `variables`)",
        c.name,
        c.external.unwrap_or("")
    )
}

/// Compiles `context` entries; returns the reason when one needs something moat has no access to
/// (a cluster API call, a ConfigMap, an image registry).
fn compile_context(
    c: Option<&Value>,
    source: &str,
    field: &str,
) -> Result<(Vec<ContextVar>, Option<String>), PolicyError> {
    let mut out = Vec::new();
    let Some(Value::Array(entries)) = c else {
        return Ok((out, None));
    };
    for (i, e) in entries.iter().enumerate() {
        let name = str_at(e, "name").unwrap_or("").to_string();
        if let Some(v) = e.get("variable") {
            let jmes_path = match str_at(v, "jmesPath") {
                Some(q) => Some(Query::compile(q).map_err(|m| {
                    PolicyError::invalid(source, format!("{field}[{i}].variable.jmesPath"), m)
                })?),
                None => None,
            };
            out.push(ContextVar {
                name,
                value: v.get("value").cloned(),
                jmes_path,
                default: v.get("default").cloned(),
                external: None,
            });
        } else {
            let what = ["configMap", "apiCall", "imageRegistry", "globalReference"]
                .into_iter()
                .find(|k| e.get(*k).is_some())
                .unwrap_or("an unknown source");
            out.push(ContextVar {
                name,
                value: None,
                jmes_path: None,
                default: None,
                external: Some(what),
            });
        }
    }
    Ok((out, None))
}

fn compile_validate(
    v: &Value,
    source: &str,
    field: &str,
    unsup: &mut dyn FnMut(String) -> String,
) -> Result<Body, PolicyError> {
    let message = str_at(v, "message").map(str::to_string);
    if let Some(c) = v.get("cel") {
        return match CelValidate::compile(c, source, &format!("{field}.cel")) {
            Ok(Ok(cel)) => Ok(Body::Cel(cel)),
            Ok(Err(reason)) => Ok(Body::Unsupported(unsup(reason))),
            Err(e) => Err(e),
        };
    }
    for (k, why) in [
        (
            "podSecurity",
            "validate.podSecurity: Pod Security Standards subrules are judged by `moat lint --profile`, not the policy engine",
        ),
        (
            "manifests",
            "validate.manifests: signed-manifest verification is not supported",
        ),
        (
            "assert",
            "validate.assert: assertion trees are not supported",
        ),
    ] {
        if v.get(k).is_some() {
            return Ok(Body::Unsupported(unsup(why.to_string())));
        }
    }
    if let Some(reason) = foreach_context_problem(v, 0) {
        return Ok(Body::Unsupported(unsup(reason)));
    }
    match compile_check(v, source, field, 0)? {
        Some(check) => Ok(Body::Validate { message, check }),
        None => Ok(Body::Unsupported(unsup(
            "validate block has no pattern, anyPattern, deny, foreach or cel".into(),
        ))),
    }
}

/// A `foreach` (at any depth) whose `context` needs outside data: the rule is unsupported, never an
/// error that stops the run.
fn foreach_context_problem(v: &Value, depth: usize) -> Option<String> {
    if depth > 8 {
        return None;
    }
    for e in v
        .get("foreach")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for c in e
            .get("context")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if c.get("variable").is_none() {
                let what = ["configMap", "apiCall", "imageRegistry", "globalReference"]
                    .into_iter()
                    .find(|k| c.get(*k).is_some())
                    .unwrap_or("unknown");
                return Some(format!(
                    "foreach context entry `{}` uses {what}: needs cluster or registry access moat does not have",
                    str_at(c, "name").unwrap_or("")
                ));
            }
        }
        if let Some(p) = foreach_context_problem(e, depth + 1) {
            return Some(p);
        }
    }
    None
}

fn compile_check(
    v: &Value,
    source: &str,
    field: &str,
    nesting: usize,
) -> Result<Option<Check>, PolicyError> {
    if nesting > 8 {
        return Err(PolicyError::invalid(
            source,
            field,
            "foreach nested deeper than 8",
        ));
    }
    if let Some(p) = v.get("pattern") {
        crate::pattern::check_pattern(p, source, &format!("{field}.pattern"))?;
        return Ok(Some(Check::Pattern(p.clone())));
    }
    if let Some(ap) = v.get("anyPattern") {
        let Value::Array(list) = ap else {
            return Err(PolicyError::invalid(
                source,
                format!("{field}.anyPattern"),
                "must be a list of patterns",
            ));
        };
        for (i, p) in list.iter().enumerate() {
            crate::pattern::check_pattern(p, source, &format!("{field}.anyPattern[{i}]"))?;
        }
        return Ok(Some(Check::AnyPattern(list.clone())));
    }
    if let Some(d) = v.get("deny") {
        let conds = d.get("conditions").unwrap_or(&Value::Null);
        return Ok(Some(Check::Deny(Conditions::compile(
            conds,
            source,
            &format!("{field}.deny.conditions"),
        )?)));
    }
    if let Some(f) = v.get("foreach") {
        let Value::Array(list) = f else {
            return Err(PolicyError::invalid(
                source,
                format!("{field}.foreach"),
                "must be a list",
            ));
        };
        let mut out = Vec::new();
        for (i, e) in list.iter().enumerate() {
            let ff = format!("{field}.foreach[{i}]");
            let Some(l) = str_at(e, "list") else {
                return Err(PolicyError::invalid(
                    source,
                    format!("{ff}.list"),
                    "foreach needs a list expression",
                ));
            };
            let list = Query::compile(&vars::strip_braces(l))
                .map_err(|m| PolicyError::invalid(source, format!("{ff}.list"), m))?;
            let preconditions = match e.get("preconditions") {
                Some(c) if !c.is_null() => Some(Conditions::compile(
                    c,
                    source,
                    &format!("{ff}.preconditions"),
                )?),
                _ => None,
            };
            let (context, problem) =
                compile_context(e.get("context"), source, &format!("{ff}.context"))?;
            if let Some(p) = problem {
                return Err(PolicyError::invalid(source, format!("{ff}.context"), p));
            }
            let Some(check) = compile_check(e, source, &ff, nesting + 1)? else {
                return Err(PolicyError::invalid(
                    source,
                    ff,
                    "foreach entry has no pattern, anyPattern, deny or foreach",
                ));
            };
            out.push(Foreach {
                list,
                element_scope: e.get("elementScope").and_then(Value::as_bool),
                preconditions,
                context,
                check,
            });
        }
        return Ok(Some(Check::Foreach(out)));
    }
    Ok(None)
}

/// Applies `ValidatingAdmissionPolicyBinding` actions to their policies.
pub(crate) fn apply_bindings(policies: &mut [Policy], bindings: &[VapBinding]) {
    for p in policies.iter_mut() {
        let mine: Vec<&VapBinding> = bindings
            .iter()
            .filter(|b| b.policy_name == p.name)
            .collect();
        if mine.is_empty() {
            continue;
        }
        let enforce = mine.iter().any(|b| b.deny);
        for r in p.rules.iter_mut() {
            if matches!(r.body, Body::Vap(_)) {
                r.enforce = enforce;
            }
        }
    }
}

/// Compiles a classic `mutate` block (or one `foreach` entry of it). Ok(Err(reason)) when it uses
/// something moat does not apply.
fn compile_mutate(
    m: &Value,
    source: &str,
    field: &str,
    nesting: usize,
) -> Result<Result<crate::mutate::MutateRule, String>, PolicyError> {
    if nesting > 8 {
        return Err(PolicyError::invalid(
            source,
            field,
            "foreach nested deeper than 8",
        ));
    }
    let smp = m
        .get("patchStrategicMerge")
        .filter(|v| !v.is_null())
        .cloned();
    let json6902 = match m.get("patchesJson6902") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Null) | None => None,
        Some(_) => {
            return Err(PolicyError::invalid(
                source,
                format!("{field}.patchesJson6902"),
                "must be a string holding a YAML list of operations",
            ));
        }
    };
    let mut foreach = Vec::new();
    if let Some(f) = m.get("foreach") {
        let Value::Array(list) = f else {
            return Err(PolicyError::invalid(
                source,
                format!("{field}.foreach"),
                "must be a list",
            ));
        };
        for (i, e) in list.iter().enumerate() {
            let ff = format!("{field}.foreach[{i}]");
            let Some(l) = str_at(e, "list") else {
                return Err(PolicyError::invalid(
                    source,
                    format!("{ff}.list"),
                    "foreach needs a list expression",
                ));
            };
            let list = Query::compile(&vars::strip_braces(l))
                .map_err(|m| PolicyError::invalid(source, format!("{ff}.list"), m))?;
            let preconditions = match e.get("preconditions") {
                Some(c) if !c.is_null() => Some(Conditions::compile(
                    c,
                    source,
                    &format!("{ff}.preconditions"),
                )?),
                _ => None,
            };
            let (context, problem) =
                compile_context(e.get("context"), source, &format!("{ff}.context"))?;
            if let Some(p) = problem {
                return Ok(Err(p));
            }
            if let Some(c) = context.iter().find(|c| c.external.is_some()) {
                return Ok(Err(format!("foreach {}", external_reason(c))));
            }
            let inner = match compile_mutate(e, source, &ff, nesting + 1)? {
                Ok(x) => x,
                Err(r) => return Ok(Err(r)),
            };
            if inner.smp.is_none() && inner.json6902.is_none() && inner.foreach.is_empty() {
                return Err(PolicyError::invalid(
                    source,
                    ff,
                    "foreach entry has no patchStrategicMerge, patchesJson6902 or foreach",
                ));
            }
            foreach.push(crate::mutate::MutForeach {
                list,
                preconditions,
                context,
                smp: inner.smp,
                json6902: inner.json6902,
                descending: str_at(e, "order") == Some("Descending"),
                nested: inner.foreach,
            });
        }
    }
    if nesting == 0 && smp.is_none() && json6902.is_none() && foreach.is_empty() {
        return Ok(Err(
            "mutate rule without patchStrategicMerge, patchesJson6902 or foreach".into(),
        ));
    }
    Ok(Ok(crate::mutate::MutateRule {
        smp,
        json6902,
        foreach,
    }))
}
