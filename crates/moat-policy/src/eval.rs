//! Evaluating compiled rules on one request.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::celrule::{CelInput, CelOutcome, VapOutcome, request_value, to_cel};
use crate::load::{Body, Check, ContextVar, Foreach, Policy, Rule};
use crate::matcher::ResInfo;
use crate::pattern::{self, Miss};
use crate::vars::{self, Ctx};
use crate::{AdmissionInput, RuleOutcome, RuleResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Report only rules that select the request; validate rules only.
    Admission,
    /// Report every rule, like `kyverno test`: non-matching ones as Skip, mutate/generate by applicability.
    Test,
}

/// One object being judged (the request's object, or a controller's pod template) with its lazily
/// built JMESPath and CEL views.
struct Target<'a> {
    obj: &'a Value,
    input: &'a AdmissionInput,
    namespace: &'a str,
    jctx: OnceCell<Ctx>,
    cel: OnceCell<CelInput>,
}

impl<'a> Target<'a> {
    fn new(obj: &'a Value, input: &'a AdmissionInput, namespace: &'a str) -> Target<'a> {
        Target {
            obj,
            input,
            namespace,
            jctx: OnceCell::new(),
            cel: OnceCell::new(),
        }
    }

    fn kind_value(&self) -> Value {
        let api = self
            .obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        let (g, v) = api.rsplit_once('/').unwrap_or(("", api));
        json!({"group": g, "version": v, "kind": self.obj.get("kind").cloned().unwrap_or(Value::Null)})
    }

    fn name(&self) -> &str {
        self.obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    fn jctx(&self) -> &Ctx {
        self.jctx.get_or_init(|| {
            let username = self.input.user_info.get("username").and_then(Value::as_str).unwrap_or("");
            let (sa_ns, sa_name) = username
                .strip_prefix("system:serviceaccount:")
                .and_then(|r| r.split_once(':'))
                .unwrap_or(("", ""));
            let is_main = std::ptr::eq(self.obj, &self.input.object) || self.input.object.is_null();
            let root = json!({
                "request": {
                    "object": if self.input.object.is_null() && is_main { Value::Null } else { self.obj.clone() },
                    "oldObject": if is_main { self.input.old_object.clone().unwrap_or(Value::Null) } else { Value::Null },
                    "operation": self.input.operation,
                    "userInfo": self.input.user_info,
                    "namespace": self.namespace,
                    "name": self.name(),
                    "kind": self.kind_value(),
                },
                "serviceAccountName": sa_name,
                "serviceAccountNamespace": sa_ns,
                "images": images_of(self.obj),
            });
            Ctx::new(&root)
        })
    }

    fn cel(&self) -> &CelInput {
        self.cel.get_or_init(|| {
            let is_main = std::ptr::eq(self.obj, &self.input.object) || self.input.object.is_null();
            let object = if self.input.object.is_null() && is_main { Value::Null } else { self.obj.clone() };
            let supplied = self.input.offline.as_ref().and_then(|d| {
                d.resources.iter().find(|r| {
                    r.get("kind").and_then(Value::as_str) == Some("Namespace")
                        && r.pointer("/metadata/name").and_then(Value::as_str) == Some(self.namespace)
                })
            });
            let ns_obj = if self.namespace.is_empty() {
                Value::Null
            } else if let Some(ns) = supplied {
                ns.clone()
            } else {
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace, "labels": self.input.namespace_labels}})
            };
            CelInput::new(
                to_cel(&object),
                if is_main { self.input.old_object.as_ref().map(to_cel).unwrap_or(cel::Value::Null) } else { cel::Value::Null },
                to_cel(&request_value(&self.input.operation, self.namespace, self.name(), &self.kind_value(), &self.input.user_info)),
                to_cel(&ns_obj),
                self.input.offline.clone(),
            )
        })
    }
}

fn object_id(obj: &Value) -> String {
    let s = |p: &str| obj.pointer(p).and_then(Value::as_str).unwrap_or("");
    let ns = s("/metadata/namespace");
    if ns.is_empty() {
        format!("{}/{}", s("/kind"), s("/metadata/name"))
    } else {
        format!("{}/{}/{}", s("/kind"), ns, s("/metadata/name"))
    }
}

pub(crate) fn evaluate(
    policies: &[Policy],
    input: &AdmissionInput,
    mode: Mode,
) -> Vec<RuleOutcome> {
    let obj: &Value = if input.object.is_null() {
        input.old_object.as_ref().unwrap_or(&input.object)
    } else {
        &input.object
    };
    let mut out = Vec::new();
    let namespace: String = input
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .or_else(|| {
            obj.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_default();
    let object = object_id(obj);
    let too_deep = crate::load::depth(obj, 0) > crate::MAX_DEPTH
        || input
            .old_object
            .as_ref()
            .is_some_and(|o| crate::load::depth(o, 0) > crate::MAX_DEPTH);
    let mut info = ResInfo::of(obj);
    info.operation = &input.operation;
    info.namespace = &namespace;
    info.namespace_labels = Some(&input.namespace_labels);
    info.user_info = Some(&input.user_info);
    let main = Target::new(obj, input, &namespace);
    let pod: OnceCell<Option<Value>> = OnceCell::new();
    let pod_target: OnceCell<Option<Target>> = OnceCell::new();

    for p in policies {
        // A namespaced Policy judges its own namespace (a manifest without one is in `default`).
        if let Some(ns) = &p.namespace
            && ns != &namespace
            && !(namespace.is_empty() && ns == "default")
        {
            continue;
        }
        let override_action = p
            .overrides
            .iter()
            .find(|o| {
                (!o.namespaces.is_empty()
                    && o.namespaces
                        .iter()
                        .any(|n| crate::cond::wildcard(n, &namespace)))
                    || o.selector
                        .as_ref()
                        .is_some_and(|sel| sel.matches(&|k| input.namespace_labels.get(k).cloned()))
            })
            .map(|o| o.enforce);
        for rule in &p.rules {
            let enforce = match override_action {
                Some(e) if !rule.enforce_explicit => e,
                _ => rule.enforce,
            };
            let mk = |result: RuleResult, message: String| RuleOutcome {
                policy: p.name.clone(),
                rule: rule.name.clone(),
                result: if result == RuleResult::Fail && !p.scored {
                    RuleResult::Warn
                } else {
                    result
                },
                message,
                enforce,
                severity: p.severity,
                title: p.title.clone(),
                object: object.clone(),
            };
            if too_deep {
                out.push(mk(
                    RuleResult::Error,
                    format!("object nested deeper than {}", crate::MAX_DEPTH),
                ));
                continue;
            }
            if matches!(rule.body, Body::Mutate(_) | Body::Mpol(_)) {
                continue;
            }
            if let Body::Gpol(g) = &rule.body {
                if mode == Mode::Test {
                    let (result, message) = match g.eval(&info, main.cel()) {
                        crate::gpol::GpolOutcome::NotMatched => (
                            RuleResult::Skip,
                            "policy does not match the resource".to_string(),
                        ),
                        crate::gpol::GpolOutcome::Generated(list) if list.is_empty() => {
                            (RuleResult::Skip, "nothing to generate".to_string())
                        }
                        crate::gpol::GpolOutcome::Generated(list) => (
                            RuleResult::Pass,
                            format!(
                                "would generate {} resources (not created: needs a cluster)",
                                list.len()
                            ),
                        ),
                        crate::gpol::GpolOutcome::Error(e) => (RuleResult::Error, e),
                    };
                    out.push(mk(result, message));
                }
                continue;
            }
            if let Body::Unsupported(reason) = &rule.body
                && rule.matcher.is_none()
            {
                // A whole policy moat does not evaluate (a Kyverno CEL kind, a VAP with params).
                if mode == Mode::Test {
                    out.push(mk(
                        RuleResult::Skip,
                        format!("not evaluated (unsupported): {reason}"),
                    ));
                }
                continue;
            }
            if let Some(lib) = rule.needs_offline
                && input.offline.is_none()
            {
                if mode == Mode::Test {
                    out.push(mk(
                        RuleResult::Skip,
                        format!(
                            "not evaluated (unsupported): {}",
                            crate::vpol::Feature::OnlineLibrary(lib).reason()
                        ),
                    ));
                }
                continue;
            }
            if matches!(rule.body, Body::Vap(_) | Body::Ivpol(_)) {
                // ValidatingPolicy autogen: a pod controller is judged through its pod template.
                let pod_info;
                let (vinfo, vtarget) =
                    if !rule.autogen.is_empty() && rule.autogen.iter().any(|c| c == info.kind) {
                        pod_info = ResInfo {
                            kind: "Pod",
                            group: "",
                            version: "v1",
                            ..info.clone()
                        };
                        let pod = pod.get_or_init(|| crate::autogen::pod_of(obj, info.kind));
                        match pod_target
                            .get_or_init(|| pod.as_ref().map(|p| Target::new(p, input, &namespace)))
                            .as_ref()
                        {
                            Some(t) => (&pod_info, t),
                            None => (&info, &main),
                        }
                    } else {
                        (&info, &main)
                    };
                if let Body::Ivpol(iv) = &rule.body {
                    use crate::images::IvpolOutcome;
                    match iv.eval(
                        vinfo,
                        vtarget.obj,
                        vtarget.cel(),
                        input.image_verifier.as_ref(),
                    ) {
                        IvpolOutcome::NotMatched => {
                            if mode == Mode::Test {
                                out.push(mk(
                                    RuleResult::Skip,
                                    "policy does not match the resource".into(),
                                ));
                            }
                        }
                        IvpolOutcome::Unsupported => {
                            if mode == Mode::Test {
                                out.push(mk(
                                    RuleResult::Skip,
                                    format!(
                                        "{}: {}",
                                        crate::test_runner::UNSUPPORTED_PREFIX,
                                        crate::images::NO_VERIFIER
                                    ),
                                ));
                            } else {
                                out.push(mk(
                                    RuleResult::Error,
                                    format!("no image verifier: {}", crate::images::NO_VERIFIER),
                                ));
                            }
                        }
                        IvpolOutcome::Pass => out.push(mk(RuleResult::Pass, String::new())),
                        IvpolOutcome::Fail(m) => out.push(mk(RuleResult::Fail, m)),
                        IvpolOutcome::Error(e) if iv.vap.fail_closed => {
                            out.push(mk(RuleResult::Error, e))
                        }
                        IvpolOutcome::Error(e) => {
                            out.push(mk(RuleResult::Skip, format!("failurePolicy Ignore: {e}")))
                        }
                    }
                    continue;
                }
                let Body::Vap(vap) = &rule.body else {
                    continue;
                };
                match vap.eval(vinfo, vtarget.cel()) {
                    VapOutcome::NotMatched => {
                        if mode == Mode::Test {
                            out.push(mk(
                                RuleResult::Skip,
                                "policy does not match the resource".into(),
                            ));
                        }
                    }
                    VapOutcome::Pass => out.push(mk(RuleResult::Pass, String::new())),
                    VapOutcome::Fail(m) => out.push(mk(RuleResult::Fail, m)),
                    VapOutcome::Error(e) if vap.fail_closed => out.push(mk(RuleResult::Error, e)),
                    VapOutcome::Error(e) => {
                        out.push(mk(RuleResult::Skip, format!("failurePolicy Ignore: {e}")))
                    }
                }
                continue;
            }
            // Which object the rule judges: the request's, or (autogen) its pod template.
            let target: Option<&Target> = if rule_selects(rule, &info) {
                Some(&main)
            } else if rule.autogen.iter().any(|c| c == info.kind) {
                let pod_info = ResInfo {
                    kind: "Pod",
                    group: "",
                    version: "v1",
                    ..info.clone()
                };
                if rule_selects(rule, &pod_info) {
                    let pod = pod.get_or_init(|| crate::autogen::pod_of(obj, info.kind));
                    pod_target
                        .get_or_init(|| pod.as_ref().map(|p| Target::new(p, input, &namespace)))
                        .as_ref()
                } else {
                    None
                }
            } else {
                None
            };
            let Some(target) = target else {
                if mode == Mode::Test {
                    out.push(mk(
                        RuleResult::Skip,
                        "rule does not match the resource".into(),
                    ));
                }
                continue;
            };
            if mode == Mode::Admission && matches!(rule.body, Body::Generate(_)) {
                continue;
            }
            if let Body::Unsupported(reason) = &rule.body {
                out.push(mk(
                    RuleResult::Skip,
                    format!("not evaluated (unsupported): {reason}"),
                ));
                continue;
            }
            let values: Cow<Values> =
                match input.rule_values.get(&format!("{}/{}", p.name, rule.name)) {
                    Some(rv) => {
                        let mut v = input.values.clone();
                        v.extend(rv.iter().map(|(k, x)| (k.clone(), x.clone())));
                        Cow::Owned(v)
                    }
                    None => Cow::Borrowed(&input.values),
                };
            let (result, message) = run_rule(rule, target, &values);
            out.push(mk(result, message));
            if p.apply_one && result != RuleResult::Skip {
                break;
            }
        }
    }
    out
}

fn rule_selects(rule: &Rule, info: &ResInfo) -> bool {
    rule.matcher.as_ref().is_some_and(|m| m.matches(info))
        && !rule.exclude.as_ref().is_some_and(|e| e.matches(info))
}

type Values = BTreeMap<String, Value>;

/// Binds supplied values, then `context` variables in order (one whose value is supplied is not
/// computed).
fn bind_context(ctx: &Ctx, vars_: &[ContextVar], values: &Values) -> Result<Ctx, String> {
    let mut ctx = ctx.clone();
    for (k, v) in values {
        ctx = ctx.with_json(k, v);
    }
    for v in vars_ {
        if values.contains_key(&v.name) {
            continue;
        }
        let mut value = match (&v.value, &v.jmes_path) {
            (Some(val), Some(q)) => {
                let base = vars::substitute(val, &ctx)?;
                let c = Ctx::new(&base);
                q.search(&c)?
            }
            (Some(val), None) => vars::substitute(val, &ctx)?,
            (None, Some(q)) => q.search(&ctx)?,
            (None, None) => Value::Null,
        };
        if value.is_null()
            && let Some(d) = &v.default
        {
            value = vars::substitute(d, &ctx)?;
        }
        ctx = ctx.with_json(&v.name, &value);
    }
    Ok(ctx)
}

/// The JMESPath context of a rule, built only when something needs it (a pattern without variables
/// never does).
struct LazyCtx<'a> {
    init: Option<(&'a Target<'a>, &'a [ContextVar], &'a Values)>,
    cell: OnceCell<Result<Ctx, String>>,
}

impl<'a> LazyCtx<'a> {
    fn new(target: &'a Target<'a>, vars: &'a [ContextVar], values: &'a Values) -> LazyCtx<'a> {
        LazyCtx {
            init: Some((target, vars, values)),
            cell: OnceCell::new(),
        }
    }

    fn ready(ctx: Ctx) -> LazyCtx<'a> {
        let cell = OnceCell::new();
        let _ = cell.set(Ok(ctx));
        LazyCtx { init: None, cell }
    }

    fn get(&self) -> Result<&Ctx, String> {
        self.cell
            .get_or_init(|| match self.init {
                Some((t, vars, values)) => {
                    bind_context(t.jctx(), vars, values).map_err(|e| format!("context: {e}"))
                }
                None => Err("no context".into()),
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

fn run_rule(rule: &Rule, target: &Target, values: &Values) -> (RuleResult, String) {
    if let Some(c) = rule
        .context
        .iter()
        .find(|c| c.external.is_some() && !values.contains_key(&c.name))
    {
        return (
            RuleResult::Skip,
            format!(
                "not evaluated (unsupported): {}",
                crate::load::external_reason(c)
            ),
        );
    }
    let ctx = LazyCtx::new(target, &rule.context, values);
    if let Some(pre) = &rule.preconditions {
        let c = match ctx.get() {
            Ok(c) => c,
            Err(e) => return (RuleResult::Error, e),
        };
        match pre.eval(c) {
            Ok(true) => {}
            Ok(false) => {
                let why = pre.messages().next().unwrap_or("preconditions not met");
                return (RuleResult::Skip, why.to_string());
            }
            Err(e) => return (RuleResult::Error, format!("preconditions: {e}")),
        }
    }
    match &rule.body {
        Body::Validate { message, check } => match run_check(check, &ctx, target.obj, 0) {
            Verdict::Pass => (RuleResult::Pass, String::new()),
            Verdict::Fail(detail) => {
                let msg = match (message.as_deref(), ctx.get()) {
                    (Some(m), Ok(c)) => vars::substitute_message(m, c),
                    (Some(m), Err(_)) => m.to_string(),
                    (None, _) => String::new(),
                };
                let m = if msg.is_empty() {
                    detail
                } else {
                    format!("{msg} ({detail})")
                };
                (RuleResult::Fail, m)
            }
            Verdict::Skip(why) => (RuleResult::Skip, why),
            Verdict::Error(e) => (RuleResult::Error, e),
        },
        Body::Cel(c) => match c.eval(target.cel(), None) {
            CelOutcome::Pass => (RuleResult::Pass, String::new()),
            CelOutcome::Fail(m) => (RuleResult::Fail, m),
            CelOutcome::Error(e) => (RuleResult::Error, e),
        },
        Body::Generate(_) => (
            RuleResult::Pass,
            "generation would apply (not done by moat)".into(),
        ),
        Body::VerifyImages(entries) => {
            use crate::images::{ImageVerdict, run_verify_images};
            match run_verify_images(entries, target.obj, target.input.image_verifier.as_deref()) {
                ImageVerdict::Pass(_) => (RuleResult::Pass, String::new()),
                ImageVerdict::Fail(m) => (RuleResult::Fail, m),
                ImageVerdict::Skip(m) => (RuleResult::Skip, m),
                ImageVerdict::Error(e) => (RuleResult::Error, e),
            }
        }
        Body::Vap(_)
        | Body::Ivpol(_)
        | Body::Gpol(_)
        | Body::Unsupported(_)
        | Body::Mutate(_)
        | Body::Mpol(_) => (RuleResult::Skip, "not evaluated".into()),
    }
}

enum Verdict {
    Pass,
    Fail(String),
    Skip(String),
    Error(String),
}

fn pattern_verdict(resource: &Value, pattern: &Value, ctx: &LazyCtx) -> Verdict {
    let substituted;
    let p = if vars::value_has_vars(pattern) {
        match ctx.get().and_then(|c| vars::substitute(pattern, c)) {
            Ok(p) => {
                substituted = p;
                &substituted
            }
            Err(e) => return Verdict::Error(format!("pattern variables: {e}")),
        }
    } else {
        pattern
    };
    match pattern::validate(resource, p) {
        Ok(()) => Verdict::Pass,
        Err(Miss::Fail { path, reason }) => {
            Verdict::Fail(format!("failed at path {path}: {reason}"))
        }
        Err(Miss::Skip { reason }) => Verdict::Skip(reason),
    }
}

fn run_check(check: &Check, ctx: &LazyCtx, resource: &Value, depth: usize) -> Verdict {
    match check {
        Check::Pattern(p) => pattern_verdict(resource, p, ctx),
        Check::AnyPattern(ps) => {
            let mut fails = Vec::new();
            let mut skips = 0;
            for (i, p) in ps.iter().enumerate() {
                match pattern_verdict(resource, p, ctx) {
                    Verdict::Pass => return Verdict::Pass,
                    Verdict::Fail(d) => fails.push(format!("anyPattern[{i}] {d}")),
                    Verdict::Skip(_) => skips += 1,
                    Verdict::Error(e) => return Verdict::Error(e),
                }
            }
            if fails.is_empty() && skips > 0 {
                Verdict::Skip("no pattern applies".into())
            } else {
                Verdict::Fail(fails.join("; "))
            }
        }
        Check::Deny(conds) => match ctx.get().and_then(|c| conds.eval(c)) {
            Ok(true) => Verdict::Fail("deny conditions are met".into()),
            Ok(false) => Verdict::Pass,
            Err(e) => Verdict::Error(format!("deny conditions: {e}")),
        },
        Check::Foreach(list) => {
            let mut applied = 0;
            let ctx = match ctx.get() {
                Ok(c) => c,
                Err(e) => return Verdict::Error(e),
            };
            for fe in list {
                match foreach(fe, ctx, depth) {
                    Ok(n) => applied += n,
                    Err(v) => return v,
                }
            }
            if applied == 0 {
                Verdict::Skip("no element to validate".into())
            } else {
                Verdict::Pass
            }
        }
    }
}

/// Runs one foreach entry; Ok(number of elements judged) or Err(a failing verdict).
fn foreach(fe: &Foreach, ctx: &Ctx, depth: usize) -> Result<usize, Verdict> {
    let elements = match fe.list.search(ctx) {
        Ok(Value::Array(a)) => a,
        Ok(Value::Null) => return Ok(0),
        Ok(other) => vec![other],
        Err(_) => return Ok(0),
    };
    let mut applied = 0;
    for (i, el) in elements.iter().enumerate() {
        let ev = vars::to_var(el);
        let idx = vars::to_var(&json!(i));
        let ectx = ctx
            .with("element", ev.clone())
            .with("elementIndex", idx.clone())
            .with(&format!("element{depth}"), ev)
            .with(&format!("elementIndex{depth}"), idx);
        let ectx = bind_context(&ectx, &fe.context, &Values::new())
            .map_err(|e| Verdict::Error(format!("foreach context: {e}")))?;
        if let Some(pre) = &fe.preconditions {
            match pre.eval(&ectx) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => return Err(Verdict::Error(format!("foreach preconditions: {e}"))),
            }
        }
        let element_scope = fe.element_scope.unwrap_or(true);
        let resource_owned;
        let resource = if element_scope {
            el
        } else {
            resource_owned = ctx_request_object(&ectx);
            &resource_owned
        };
        match run_check(&fe.check, &LazyCtx::ready(ectx), resource, depth + 1) {
            Verdict::Pass => applied += 1,
            Verdict::Skip(_) => {}
            Verdict::Fail(d) => return Err(Verdict::Fail(format!("foreach element {i}: {d}"))),
            Verdict::Error(e) => return Err(Verdict::Error(e)),
        }
    }
    Ok(applied)
}

fn ctx_request_object(ctx: &Ctx) -> Value {
    ctx.get("request")
        .map(|r| vars::to_json(&r))
        .and_then(|r| r.get("object").cloned())
        .unwrap_or(Value::Null)
}

/// Kyverno's `images` variable: per container list, per container name, the parsed image reference.
fn images_of(obj: &Value) -> Value {
    let spec = match obj.get("kind").and_then(Value::as_str) {
        Some("Pod") => obj.get("spec"),
        Some("CronJob") => obj.pointer("/spec/jobTemplate/spec/template/spec"),
        _ => obj.pointer("/spec/template/spec"),
    };
    let mut out = serde_json::Map::new();
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        let mut m = serde_json::Map::new();
        for c in spec
            .and_then(|s| s.get(list))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let (Some(name), Some(image)) = (
                c.get("name").and_then(Value::as_str),
                c.get("image").and_then(Value::as_str),
            ) {
                m.insert(name.to_string(), image_info(image));
            }
        }
        if !m.is_empty() {
            out.insert(list.to_string(), Value::Object(m));
        }
    }
    Value::Object(out)
}

/// Splits an image reference into registry, path, name, tag and digest (Docker Hub by default).
pub(crate) fn image_info(reference: &str) -> Value {
    let (rest, digest) = match reference.split_once('@') {
        Some((r, d)) => (r, d),
        None => (reference, ""),
    };
    let (registry, remainder) = match rest.split_once('/') {
        Some((first, r)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            (first, r)
        }
        _ => ("docker.io", rest),
    };
    let (path, tag) = match remainder.rsplit_once(':') {
        Some((p, t)) if !t.contains('/') => (p, t),
        _ => (remainder, ""),
    };
    let tag = if tag.is_empty() && digest.is_empty() {
        "latest"
    } else {
        tag
    };
    let name = path.rsplit('/').next().unwrap_or(path);
    json!({
        "reference": reference,
        "referenceWithTag": format!("{registry}/{path}:{tag}"),
        "registry": registry,
        "path": path,
        "name": name,
        "tag": tag,
        "digest": digest,
    })
}

/// What each GeneratingPolicy would create for the request.
pub(crate) fn generated(policies: &[Policy], input: &AdmissionInput) -> Vec<(String, Vec<Value>)> {
    let obj = &input.object;
    let namespace = input
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .or_else(|| {
            obj.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_default();
    let mut info = ResInfo::of(obj);
    info.operation = &input.operation;
    info.namespace = &namespace;
    info.namespace_labels = Some(&input.namespace_labels);
    info.user_info = Some(&input.user_info);
    let target = Target::new(obj, input, &namespace);
    let mut out = Vec::new();
    for p in policies {
        for rule in &p.rules {
            if let Body::Gpol(g) = &rule.body
                && let crate::gpol::GpolOutcome::Generated(list) = g.eval(&info, target.cel())
            {
                out.push((p.name.clone(), list));
            }
            if let Body::Generate(g) = &rule.body
                && rule_selects(rule, &info)
                && let Some(r) = classic_generated(
                    rule,
                    g,
                    &target,
                    &match input.rule_values.get(&format!("{}/{}", p.name, rule.name)) {
                        Some(rv) => {
                            let mut v = input.values.clone();
                            v.extend(rv.iter().map(|(k, x)| (k.clone(), x.clone())));
                            v
                        }
                        None => input.values.clone(),
                    },
                )
            {
                out.push((p.name.clone(), vec![r]));
            }
        }
    }
    out
}

/// The resource a classic `generate` rule with `data` would create (None: `clone`/`cloneList`,
/// which read the cluster, preconditions not met, or variables that cannot be resolved).
fn classic_generated(rule: &Rule, g: &Value, target: &Target, values: &Values) -> Option<Value> {
    let data = g.get("data")?;
    if rule
        .context
        .iter()
        .any(|c| c.external.is_some() && !values.contains_key(&c.name))
    {
        return None;
    }
    let ctx = bind_context(target.jctx(), &rule.context, values).ok()?;
    if let Some(pre) = &rule.preconditions
        && !pre.eval(&ctx).ok()?
    {
        return None;
    }
    let s = |k: &str| -> Option<Value> {
        let v = g.get(k)?;
        vars::substitute(v, &ctx).ok()
    };
    let mut obj = vars::substitute(data, &ctx).ok()?;
    let m = obj.as_object_mut()?;
    m.insert("apiVersion".into(), s("apiVersion")?);
    m.insert("kind".into(), s("kind")?);
    let meta = m
        .entry("metadata")
        .or_insert_with(|| json!({}))
        .as_object_mut()?;
    meta.insert("name".into(), s("name")?);
    if let Some(ns) = s("namespace").filter(|n| n.as_str().is_some_and(|x| !x.is_empty())) {
        meta.insert("namespace".into(), ns);
    }
    Some(obj)
}

/// Writes a mutated pod back into a controller's pod template.
fn write_back_template(obj: &mut Value, kind: &str, pod: &Value, template_had_ns: bool) {
    let ptr = if kind == "CronJob" {
        "/spec/jobTemplate/spec/template"
    } else {
        "/spec/template"
    };
    let Some(t) = obj.pointer_mut(ptr).and_then(Value::as_object_mut) else {
        return;
    };
    let mut meta = pod.get("metadata").cloned().unwrap_or(Value::Null);
    if !template_had_ns && let Some(m) = meta.as_object_mut() {
        m.remove("namespace");
    }
    if meta.as_object().is_some_and(|m| !m.is_empty()) || t.contains_key("metadata") {
        t.insert("metadata".into(), meta);
    }
    t.insert(
        "spec".into(),
        pod.get("spec").cloned().unwrap_or(Value::Null),
    );
}

/// Applies every mutate rule and MutatingPolicy in order, each seeing the object as the previous
/// ones left it: (the mutated object, one outcome per mutation that selects the request, plus
/// non-matching ones as Skip when `report_all`).
pub(crate) fn mutate(
    policies: &[Policy],
    input: &AdmissionInput,
    report_all: bool,
) -> (Value, Vec<RuleOutcome>) {
    let mut cur = input.object.clone();
    let mut out = Vec::new();
    if cur.is_null() || crate::load::depth(&cur, 0) > crate::MAX_DEPTH {
        return (cur, out);
    }
    let namespace: String = input
        .namespace
        .clone()
        .filter(|n| !n.is_empty())
        .or_else(|| {
            cur.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_default();
    let object = object_id(&cur);
    for p in policies {
        if let Some(ns) = &p.namespace
            && ns != &namespace
            && !(namespace.is_empty() && ns == "default")
        {
            continue;
        }
        for rule in &p.rules {
            let pins = match &rule.body {
                Body::VerifyImages(e) => {
                    input.image_verifier.is_some() && e.iter().any(|x| x.mutate_digest)
                }
                _ => false,
            };
            if !matches!(rule.body, Body::Mutate(_) | Body::Mpol(_)) && !pins {
                continue;
            }
            let mk = |result: RuleResult, message: String| RuleOutcome {
                policy: p.name.clone(),
                rule: rule.name.clone(),
                result,
                message,
                enforce: false,
                severity: p.severity,
                title: p.title.clone(),
                object: object.clone(),
            };
            let step = AdmissionInput {
                object: cur.clone(),
                ..input.clone()
            };
            let mut info = ResInfo::of(&step.object);
            info.operation = &input.operation;
            info.namespace = &namespace;
            info.namespace_labels = Some(&input.namespace_labels);
            info.user_info = Some(&input.user_info);
            let (result, message, next) = match &rule.body {
                Body::Mpol(mp) => {
                    let target = Target::new(&step.object, &step, &namespace);
                    let rebuild = |o: &Value| Target::new(o, &step, &namespace).cel().clone();
                    match mp.apply(&info, &step.object, target.cel(), &rebuild) {
                        crate::mpol::MpolOutcome::NotMatched => (
                            RuleResult::Skip,
                            "policy does not match the resource".to_string(),
                            None,
                        ),
                        crate::mpol::MpolOutcome::Mutated(v) => {
                            (RuleResult::Pass, "mutated".to_string(), Some(v))
                        }
                        crate::mpol::MpolOutcome::Error(e) => (RuleResult::Error, e, None),
                    }
                }
                Body::VerifyImages(entries) => {
                    // mutateDigest: verified images are pinned to the digest that was verified.
                    let selects =
                        rule_selects(rule, &info) || rule.autogen.iter().any(|c| c == info.kind);
                    if !selects {
                        continue;
                    }
                    match crate::images::run_verify_images(
                        entries,
                        &cur,
                        input.image_verifier.as_deref(),
                    ) {
                        crate::images::ImageVerdict::Pass(d) if !d.is_empty() => {
                            let next = crate::images::pin_digests(&cur, &d);
                            if next == cur {
                                continue;
                            }
                            (
                                RuleResult::Pass,
                                "image digests pinned".to_string(),
                                Some(next),
                            )
                        }
                        crate::images::ImageVerdict::Error(e) => (RuleResult::Error, e, None),
                        _ => continue,
                    }
                }
                Body::Mutate(m) => {
                    let autogen_kind = (!rule_selects(rule, &info)
                        && rule.autogen.iter().any(|c| c == info.kind))
                    .then_some(info.kind);
                    let pod_info = ResInfo {
                        kind: "Pod",
                        group: "",
                        version: "v1",
                        ..info.clone()
                    };
                    let pod = match autogen_kind {
                        Some(k) if rule_selects(rule, &pod_info) => crate::autogen::pod_of(&cur, k),
                        _ => None,
                    };
                    if autogen_kind.is_none() && !rule_selects(rule, &info)
                        || autogen_kind.is_some() && pod.is_none()
                    {
                        if report_all {
                            out.push(mk(
                                RuleResult::Skip,
                                "rule does not match the resource".into(),
                            ));
                        }
                        continue;
                    }
                    let obj = pod.as_ref().unwrap_or(&step.object);
                    let values: Cow<Values> =
                        match input.rule_values.get(&format!("{}/{}", p.name, rule.name)) {
                            Some(rv) => {
                                let mut v = input.values.clone();
                                v.extend(rv.iter().map(|(k, x)| (k.clone(), x.clone())));
                                Cow::Owned(v)
                            }
                            None => Cow::Borrowed(&input.values),
                        };
                    let target = Target::new(obj, &step, &namespace);
                    match mutate_rule(rule, m, &target, &values) {
                        (RuleResult::Pass, msg, Some(v)) => match autogen_kind {
                            Some(k) => {
                                let had_ns = obj.pointer("/metadata/namespace").is_some()
                                    && cur
                                        .pointer(if k == "CronJob" {
                                            "/spec/jobTemplate/spec/template/metadata/namespace"
                                        } else {
                                            "/spec/template/metadata/namespace"
                                        })
                                        .is_some();
                                let mut next = cur.clone();
                                write_back_template(&mut next, k, &v, had_ns);
                                (RuleResult::Pass, msg, Some(next))
                            }
                            None => (RuleResult::Pass, msg, Some(v)),
                        },
                        (r, msg, _) => (r, msg, None),
                    }
                }
                _ => continue,
            };
            if let Some(v) = next {
                cur = v;
            }
            out.push(mk(result, message));
        }
    }
    (cur, out)
}

/// One classic mutate rule on one object: (result, message, the mutated object when it changed).
fn mutate_rule(
    rule: &Rule,
    m: &crate::mutate::MutateRule,
    target: &Target,
    values: &Values,
) -> (RuleResult, String, Option<Value>) {
    if let Some(c) = rule
        .context
        .iter()
        .find(|c| c.external.is_some() && !values.contains_key(&c.name))
    {
        return (
            RuleResult::Skip,
            format!(
                "not evaluated (unsupported): {}",
                crate::load::external_reason(c)
            ),
            None,
        );
    }
    let ctx = match bind_context(target.jctx(), &rule.context, values) {
        Ok(c) => c,
        Err(e) => return (RuleResult::Error, format!("context: {e}"), None),
    };
    if let Some(pre) = &rule.preconditions {
        match pre.eval(&ctx) {
            Ok(true) => {}
            Ok(false) => {
                let why = pre.messages().next().unwrap_or("preconditions not met");
                return (RuleResult::Skip, why.to_string(), None);
            }
            Err(e) => return (RuleResult::Error, format!("preconditions: {e}"), None),
        }
    }
    let bind = |c: &Ctx, vars_: &[ContextVar]| bind_context(c, vars_, &Values::new());
    match m.apply(target.obj, &ctx, &bind) {
        Ok(crate::mutate::Mutated::Applied(v)) if &v == target.obj => (
            RuleResult::Skip,
            "the mutation changes nothing".into(),
            None,
        ),
        Ok(crate::mutate::Mutated::Applied(v)) => (RuleResult::Pass, "mutated".into(), Some(v)),
        Ok(crate::mutate::Mutated::Skipped(why)) => (RuleResult::Skip, why, None),
        Err(e) => (RuleResult::Error, e, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references() {
        let i = image_info("nginx");
        assert_eq!(
            (
                i["registry"].as_str(),
                i["path"].as_str(),
                i["tag"].as_str()
            ),
            (Some("docker.io"), Some("nginx"), Some("latest"))
        );
        let i = image_info("myregistry.azurecr.io/team/web:1.2@sha256:abc");
        assert_eq!(i["registry"], "myregistry.azurecr.io");
        assert_eq!(i["path"], "team/web");
        assert_eq!(i["name"], "web");
        assert_eq!(i["tag"], "1.2");
        assert_eq!(i["digest"], "sha256:abc");
        let i = image_info("localhost:5000/app");
        assert_eq!(
            (i["registry"].as_str(), i["tag"].as_str()),
            (Some("localhost:5000"), Some("latest"))
        );
    }
}
