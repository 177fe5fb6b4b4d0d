//! Mutation: RFC 6902 JSON patches (apply and diff), Kyverno's `patchStrategicMerge` with its anchors
//! (`(k)` conditional, `<(k)` global, `+(k)` add-if-absent), `patchesJson6902`, `foreach` mutations,
//! and the server-side-apply merge of a MutatingPolicy's `ApplyConfiguration`.
//!
//! Everything works on `serde_json::Value`; the admission webhook returns [`diff`] of the original and
//! the mutated object as its JSONPatch.

use serde_json::{Map, Value, json};

use crate::cond::Conditions;
use crate::load::ContextVar;
use crate::pattern::{Anchor, parse_key};
use crate::vars::{self, Ctx, Query};

/// Keys that identify the elements of a list of maps (kyaml's associative keys, which Kyverno's
/// strategic merge uses where no schema says otherwise), in order of preference.
const ASSOCIATIVE_KEYS: &[&str] = &[
    "name",
    "mountPath",
    "devicePath",
    "ip",
    "type",
    "topologyKey",
    "containerPort",
];

// ---------------------------------------------------------------------------------------------
// RFC 6902

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// The escaped form of one JSON-pointer token.
pub(crate) fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn tokens(path: &str) -> Result<Vec<String>, String> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = path.strip_prefix('/') else {
        return Err(format!("JSON pointer `{path}` does not start with /"));
    };
    Ok(rest.split('/').map(unescape).collect())
}

fn index_of(tok: &str, len: usize, allow_end: bool) -> Result<usize, String> {
    if allow_end && tok == "-" {
        return Ok(len);
    }
    let i: usize = tok
        .parse()
        .map_err(|_| format!("`{tok}` is not an array index"))?;
    if i > len || (!allow_end && i == len) {
        return Err(format!("array index {i} out of range (length {len})"));
    }
    Ok(i)
}

/// The parent container of `toks` (all but the last token), creating missing maps when `ensure`.
fn parent_mut<'a>(
    doc: &'a mut Value,
    toks: &[String],
    ensure: bool,
) -> Result<&'a mut Value, String> {
    parent_mut_for(doc, toks, ensure, None)
}

/// Like `parent_mut`; `leaf` is the token added below the parent (a missing parent of `-` or an
/// index is created as a list).
fn parent_mut_for<'a>(
    doc: &'a mut Value,
    toks: &[String],
    ensure: bool,
    leaf: Option<&str>,
) -> Result<&'a mut Value, String> {
    let mut cur = doc;
    for (n, t) in toks.iter().enumerate() {
        let next = toks.get(n + 1).map(String::as_str).or(leaf);
        let next_is_index = next.is_some_and(|x| x == "-" || x.parse::<usize>().is_ok());
        cur = match cur {
            Value::Object(m) => {
                if !m.contains_key(t) {
                    if !ensure {
                        return Err(format!("path segment `{t}` does not exist"));
                    }
                    m.insert(t.clone(), if next_is_index { json!([]) } else { json!({}) });
                }
                m.get_mut(t).ok_or("unreachable")?
            }
            Value::Array(a) => {
                let i = index_of(t, a.len(), false)?;
                &mut a[i]
            }
            Value::Null if ensure => {
                *cur = if t.parse::<usize>().is_ok() {
                    json!([])
                } else {
                    json!({})
                };
                return parent_mut_for(cur, &toks[n..], ensure, leaf);
            }
            _ => return Err(format!("path segment `{t}` is under a scalar")),
        };
    }
    Ok(cur)
}

fn get<'a>(doc: &'a Value, toks: &[String]) -> Option<&'a Value> {
    let mut cur = doc;
    for t in toks {
        cur = match cur {
            Value::Object(m) => m.get(t)?,
            Value::Array(a) => a.get(t.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn add(doc: &mut Value, toks: &[String], value: Value, ensure: bool) -> Result<(), String> {
    let Some((last, parent)) = toks.split_last() else {
        *doc = value;
        return Ok(());
    };
    match parent_mut_for(doc, parent, ensure, Some(last))? {
        Value::Object(m) => {
            m.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(a) => {
            let i = index_of(last, a.len(), true)?;
            a.insert(i, value);
            Ok(())
        }
        _ => Err(format!("cannot add `{last}` under a scalar")),
    }
}

fn remove(doc: &mut Value, toks: &[String], allow_missing: bool) -> Result<Option<Value>, String> {
    let Some((last, parent)) = toks.split_last() else {
        return Ok(Some(std::mem::replace(doc, Value::Null)));
    };
    let p = match parent_mut(doc, parent, false) {
        Ok(p) => p,
        Err(_) if allow_missing => return Ok(None),
        Err(e) => return Err(e),
    };
    match p {
        Value::Object(m) => match m.remove(last) {
            Some(v) => Ok(Some(v)),
            None if allow_missing => Ok(None),
            None => Err(format!("cannot remove missing `{last}`")),
        },
        Value::Array(a) => match index_of(last, a.len(), false) {
            Ok(i) => Ok(Some(a.remove(i))),
            Err(_) if allow_missing => Ok(None),
            Err(e) => Err(e),
        },
        _ => Err(format!("cannot remove `{last}` under a scalar")),
    }
}

/// How lenient a patch application is.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PatchOptions {
    /// `add` creates missing parent maps (Kyverno applies `patchesJson6902` with
    /// `EnsurePathExistsOnAdd`).
    pub ensure_path_on_add: bool,
    /// `remove` of a missing path is not an error (`AllowMissingPathOnRemove`).
    pub allow_missing_on_remove: bool,
}

/// Applies RFC 6902 operations to `doc`.
pub fn apply_patch(doc: &Value, ops: &[Value]) -> Result<Value, String> {
    apply_patch_with(doc, ops, PatchOptions::default())
}

pub(crate) fn apply_patch_with(
    doc: &Value,
    ops: &[Value],
    opts: PatchOptions,
) -> Result<Value, String> {
    let mut out = doc.clone();
    for (i, op) in ops.iter().enumerate() {
        let s = |k: &str| op.get(k).and_then(Value::as_str);
        let name = s("op").ok_or(format!("patch operation {i}: no `op`"))?;
        let path = s("path").ok_or(format!("patch operation {i}: no `path`"))?;
        let toks = tokens(path).map_err(|e| format!("patch operation {i}: {e}"))?;
        let value = || {
            op.get("value")
                .cloned()
                .ok_or(format!("patch operation {i} ({name} {path}): no `value`"))
        };
        let ctx = |e: String| format!("patch operation {i} ({name} {path}): {e}");
        match name {
            "add" => add(&mut out, &toks, value()?, opts.ensure_path_on_add).map_err(ctx)?,
            "remove" => {
                remove(&mut out, &toks, opts.allow_missing_on_remove).map_err(ctx)?;
            }
            "replace" => {
                if get(&out, &toks).is_none() {
                    return Err(ctx("path does not exist".into()));
                }
                remove(&mut out, &toks, false).map_err(ctx)?;
                add(&mut out, &toks, value()?, false).map_err(ctx)?;
            }
            "move" | "copy" => {
                let from = tokens(s("from").ok_or(ctx("no `from`".into()))?).map_err(ctx)?;
                let v = if name == "move" {
                    remove(&mut out, &from, false)
                        .map_err(ctx)?
                        .unwrap_or(Value::Null)
                } else {
                    get(&out, &from)
                        .cloned()
                        .ok_or(ctx("`from` does not exist".into()))?
                };
                add(&mut out, &toks, v, false).map_err(ctx)?;
            }
            "test" => {
                if get(&out, &toks) != Some(&value()?) {
                    return Err(ctx("test failed".into()));
                }
            }
            other => return Err(format!("patch operation {i}: unknown op `{other}`")),
        }
    }
    Ok(out)
}

/// An RFC 6902 patch that turns `from` into `to` (maps recursively; lists of equal length element
/// by element, others replaced whole).
pub fn diff(from: &Value, to: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    diff_at(from, to, "", &mut out);
    out
}

fn diff_at(a: &Value, b: &Value, path: &str, out: &mut Vec<Value>) {
    if a == b {
        return;
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys() {
                if !y.contains_key(k) {
                    out.push(json!({"op": "remove", "path": format!("{path}/{}", escape(k))}));
                }
            }
            for (k, v) in y {
                let p = format!("{path}/{}", escape(k));
                match x.get(k) {
                    Some(old) => diff_at(old, v, &p, out),
                    None => out.push(json!({"op": "add", "path": p, "value": v})),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (o, n)) in x.iter().zip(y).enumerate() {
                diff_at(o, n, &format!("{path}/{i}"), out);
            }
        }
        (Value::Array(x), Value::Array(y)) if y.len() > x.len() && y[..x.len()] == x[..] => {
            for v in &y[x.len()..] {
                out.push(json!({"op": "add", "path": format!("{path}/-"), "value": v}));
            }
        }
        _ => out.push(json!({"op": "replace", "path": path, "value": b})),
    }
}

// ---------------------------------------------------------------------------------------------
// Strategic merge with Kyverno's anchors

/// Why a strategic-merge overlay was not applied.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NotApplied {
    /// A conditional anchor does not hold (the enclosing list element, or the rule, is skipped).
    Condition(String),
    /// A global anchor does not hold: the whole rule is skipped.
    Global(String),
}

fn is_anchored(k: &str) -> bool {
    !matches!(parse_key(k).0, Anchor::None)
}

fn has_anchors(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.iter().any(|(k, x)| is_anchored(k) || has_anchors(x)),
        Value::Array(a) => a.iter().any(has_anchors),
        _ => false,
    }
}

/// The overlay with its anchors removed (conditions dropped, `+(k)` become `k`).
fn strip(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, x) in m {
                match parse_key(k) {
                    (Anchor::Conditional | Anchor::Global | Anchor::Negation, _) => {}
                    (_, key) => {
                        out.insert(key.to_string(), strip(x));
                    }
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(strip).collect()),
        x => x.clone(),
    }
}

/// Applies a `patchStrategicMerge` overlay to `resource`.
pub(crate) fn strategic_merge(resource: &Value, patch: &Value) -> Result<Value, NotApplied> {
    merge_value(Some(resource), patch, 0).map(|v| v.unwrap_or(Value::Null))
}

fn check_condition(
    r: &Map<String, Value>,
    key: &str,
    pattern: &Value,
    global: bool,
) -> Result<(), NotApplied> {
    let mut p = Map::new();
    p.insert(key.to_string(), pattern.clone());
    let ok = r.contains_key(key)
        && crate::pattern::validate(&Value::Object(r.clone()), &Value::Object(p)).is_ok();
    if ok {
        Ok(())
    } else if global {
        Err(NotApplied::Global(format!(
            "global anchor <({key}) does not hold"
        )))
    } else {
        Err(NotApplied::Condition(format!(
            "conditional anchor ({key}) does not hold"
        )))
    }
}

fn merge_value(r: Option<&Value>, p: &Value, depth: usize) -> Result<Option<Value>, NotApplied> {
    if depth > crate::MAX_DEPTH {
        return Err(NotApplied::Condition("overlay nested too deep".into()));
    }
    match p {
        Value::Object(pm) => {
            if pm.get("$patch").and_then(Value::as_str) == Some("delete") {
                return Ok(None);
            }
            let empty = Map::new();
            let rm = match r {
                Some(Value::Object(m)) => m,
                _ => &empty,
            };
            // Conditions first: a failing one leaves this map untouched.
            for (k, pv) in pm {
                match parse_key(k) {
                    (Anchor::Conditional, key) => check_condition(rm, key, pv, false)?,
                    (Anchor::Global, key) => check_condition(rm, key, pv, true)?,
                    _ => {}
                }
            }
            let mut out = rm.clone();
            for (k, pv) in pm {
                if k == "$patch" {
                    continue;
                }
                match parse_key(k) {
                    (Anchor::Conditional | Anchor::Global | Anchor::Negation, key) => {
                        // A condition whose value holds nested mutations applies them too.
                        if (pv.is_object() || pv.is_array())
                            && let Some(rv) = rm.get(key)
                            && let Some(v) = merge_value(Some(rv), pv, depth + 1)?
                        {
                            out.insert(key.to_string(), v);
                        }
                    }
                    (Anchor::Add, key) => {
                        if !rm.contains_key(key) {
                            out.insert(key.to_string(), strip(pv));
                        }
                    }
                    (_, key) => {
                        if pv.is_null() {
                            out.remove(key);
                            continue;
                        }
                        match merge_value(rm.get(key), pv, depth + 1)? {
                            Some(v) => {
                                out.insert(key.to_string(), v);
                            }
                            None => {
                                out.remove(key);
                            }
                        }
                    }
                }
            }
            Ok(Some(Value::Object(out)))
        }
        Value::Array(pa) => merge_list(r, pa, depth).map(Some),
        leaf => Ok(Some(leaf.clone())),
    }
}

fn merge_list(r: Option<&Value>, pa: &[Value], depth: usize) -> Result<Value, NotApplied> {
    let ra: Vec<Value> = match r {
        Some(Value::Array(a)) => a.clone(),
        _ => Vec::new(),
    };
    let anchored: Vec<&Value> = pa.iter().filter(|e| has_anchors(e)).collect();
    let plain: Vec<&Value> = pa.iter().filter(|e| !has_anchors(e)).collect();
    if !anchored.is_empty() {
        // Kyverno: an element with anchors is applied to every resource element it holds for.
        let mut out = ra.clone();
        for pe in &anchored {
            for el in out.iter_mut() {
                match merge_value(Some(el), pe, depth + 1) {
                    Ok(Some(v)) => *el = v,
                    Ok(None) => {}
                    Err(NotApplied::Condition(_)) => {}
                    Err(g) => return Err(g),
                }
            }
        }
        if plain.is_empty() {
            return Ok(Value::Array(out));
        }
        return merge_plain(out, &plain, depth);
    }
    merge_plain(ra, &plain, depth)
}

fn merge_key(items: &[&Value]) -> Option<&'static str> {
    if items.is_empty() || !items.iter().all(|e| e.is_object()) {
        return None;
    }
    ASSOCIATIVE_KEYS
        .iter()
        .find(|k| items.iter().all(|e| e.get(**k).is_some()))
        .copied()
}

fn merge_plain(mut ra: Vec<Value>, plain: &[&Value], depth: usize) -> Result<Value, NotApplied> {
    let Some(key) = merge_key(plain) else {
        // A list without an identifying key is replaced (atomic).
        return Ok(Value::Array(plain.iter().map(|v| strip(v)).collect()));
    };
    for pe in plain {
        let id = pe.get(key);
        match ra.iter().position(|e| e.get(key) == id) {
            Some(i) => match merge_value(Some(&ra[i]), pe, depth + 1)? {
                Some(v) => ra[i] = v,
                None => {
                    ra.remove(i);
                }
            },
            None => {
                if pe.get("$patch").and_then(Value::as_str) != Some("delete") {
                    ra.push(strip(pe));
                }
            }
        }
    }
    Ok(Value::Array(ra))
}

// ---------------------------------------------------------------------------------------------
// Server-side apply (MutatingPolicy ApplyConfiguration)

/// Merges an apply configuration into `obj` the way server-side apply does for these objects: maps
/// field by field, lists of maps by their identifying key (`name`, ...), other lists replaced.
pub(crate) fn apply_configuration(obj: &Value, config: &Value) -> Value {
    apply_at(Some(obj), config, 0)
}

fn apply_at(obj: Option<&Value>, c: &Value, depth: usize) -> Value {
    if depth > crate::MAX_DEPTH {
        return c.clone();
    }
    match (obj, c) {
        (Some(Value::Object(o)), Value::Object(cm)) => {
            let mut out = o.clone();
            for (k, v) in cm {
                let merged = apply_at(o.get(k), v, depth + 1);
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Some(Value::Array(oa)), Value::Array(ca)) => {
            let items: Vec<&Value> = ca.iter().collect();
            match merge_key(&items) {
                Some(key) => {
                    let mut out = oa.clone();
                    for ce in ca {
                        match out.iter().position(|e| e.get(key) == ce.get(key)) {
                            Some(i) => out[i] = apply_at(Some(&out[i].clone()), ce, depth + 1),
                            None => out.push(ce.clone()),
                        }
                    }
                    Value::Array(out)
                }
                None => c.clone(),
            }
        }
        _ => c.clone(),
    }
}

// ---------------------------------------------------------------------------------------------
// Classic `mutate` rules

/// A compiled classic `mutate` block.
#[derive(Debug)]
pub(crate) struct MutateRule {
    pub smp: Option<Value>,
    pub json6902: Option<String>,
    pub foreach: Vec<MutForeach>,
}

/// Rebinds a foreach element's `context` entries over a context.
pub(crate) type BindFn<'a> = dyn Fn(&Ctx, &[ContextVar]) -> Result<Ctx, String> + 'a;

/// One `mutate.foreach` entry.
#[derive(Debug)]
pub(crate) struct MutForeach {
    pub list: Query,
    pub preconditions: Option<Conditions>,
    pub context: Vec<ContextVar>,
    pub smp: Option<Value>,
    pub json6902: Option<String>,
    pub descending: bool,
    pub nested: Vec<MutForeach>,
}

/// The result of a classic mutation on one object.
pub(crate) enum Mutated {
    /// The new object (equal to the input when nothing changed).
    Applied(Value),
    /// The rule does not apply (anchors or foreach preconditions), with the reason.
    Skipped(String),
}

fn json6902_ops(text: &str, ctx: &Ctx) -> Result<Vec<Value>, String> {
    let substituted = if vars::has_vars(text) {
        match vars::substitute_str(text, ctx)? {
            Value::String(s) => s,
            other => other.to_string(),
        }
    } else {
        text.to_string()
    };
    let docs = crate::load::parse_yaml_documents(&substituted, "patchesJson6902")
        .map_err(|e| format!("patchesJson6902: {e}"))?;
    match docs.into_iter().next() {
        Some(Value::Array(a)) => Ok(a),
        Some(Value::Null) | None => Ok(Vec::new()),
        Some(_) => Err("patchesJson6902 is not a list of operations".into()),
    }
}

const LENIENT: PatchOptions = PatchOptions {
    ensure_path_on_add: true,
    allow_missing_on_remove: true,
};

fn apply_one(
    obj: &Value,
    smp: Option<&Value>,
    json6902: Option<&str>,
    ctx: &Ctx,
) -> Result<Result<Value, NotApplied>, String> {
    let mut cur = obj.clone();
    if let Some(p) = smp {
        let p = if vars::value_has_vars(p) {
            substitute_keys(&vars::substitute(p, ctx)?, ctx, 0)?
        } else {
            p.clone()
        };
        match strategic_merge(&cur, &p) {
            Ok(v) => cur = v,
            Err(n) => return Ok(Err(n)),
        }
    }
    if let Some(t) = json6902 {
        let ops = json6902_ops(t, ctx)?;
        cur = apply_patch_with(&cur, &ops, LENIENT)?;
    }
    Ok(Ok(cur))
}

/// Substitutes `{{ }}` variables in map keys (values are substituted by `vars::substitute`),
/// keeping the key's anchor.
fn substitute_keys(v: &Value, ctx: &Ctx, depth: usize) -> Result<Value, String> {
    if depth > crate::MAX_DEPTH {
        return Err("overlay nested too deep".into());
    }
    Ok(match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, x) in m {
                let key = if vars::has_vars(k) {
                    match vars::substitute_str(k, ctx)? {
                        Value::String(s) => s,
                        other => other.to_string(),
                    }
                } else {
                    k.clone()
                };
                out.insert(key, substitute_keys(x, ctx, depth + 1)?);
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| substitute_keys(x, ctx, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        x => x.clone(),
    })
}

impl MutateRule {
    /// Applies the rule to `obj`; `ctx` is the rule's JMESPath context (request, context entries),
    /// `bind` rebuilds a context for an object changed by an earlier foreach element.
    pub(crate) fn apply(&self, obj: &Value, ctx: &Ctx, bind: &BindFn) -> Result<Mutated, String> {
        let mut cur = obj.clone();
        if self.smp.is_some() || self.json6902.is_some() {
            match apply_one(&cur, self.smp.as_ref(), self.json6902.as_deref(), ctx)? {
                Ok(v) => cur = v,
                Err(NotApplied::Condition(r) | NotApplied::Global(r)) => {
                    return Ok(Mutated::Skipped(r));
                }
            }
        }
        if !self.foreach.is_empty() {
            let mut applied = 0;
            for fe in &self.foreach {
                applied += foreach(fe, &mut cur, ctx, bind, 0)?;
            }
            if applied == 0 && self.smp.is_none() && self.json6902.is_none() {
                return Ok(Mutated::Skipped("no foreach element to mutate".into()));
            }
        }
        Ok(Mutated::Applied(cur))
    }
}

fn foreach(
    fe: &MutForeach,
    cur: &mut Value,
    ctx: &Ctx,
    bind: &BindFn,
    depth: usize,
) -> Result<usize, String> {
    if depth > 8 {
        return Err("foreach nested deeper than 8".into());
    }
    let elements = match fe.list.search(ctx) {
        Ok(Value::Array(a)) => a,
        Ok(Value::Null) | Err(_) => return Ok(0),
        Ok(other) => vec![other],
    };
    let mut order: Vec<usize> = (0..elements.len()).collect();
    if fe.descending {
        order.reverse();
    }
    let mut applied = 0;
    for i in order {
        let el = &elements[i];
        let ev = vars::to_var(el);
        let idx = vars::to_var(&json!(i));
        let ectx = ctx
            .with_json("request.object", cur)
            .with("element", ev.clone())
            .with("elementIndex", idx.clone())
            .with(&format!("element{depth}"), ev)
            .with(&format!("elementIndex{depth}"), idx);
        let ectx = bind(&ectx, &fe.context).map_err(|e| format!("foreach context: {e}"))?;
        if let Some(pre) = &fe.preconditions {
            match pre.eval(&ectx) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => return Err(format!("foreach preconditions: {e}")),
            }
        }
        if fe.smp.is_some() || fe.json6902.is_some() {
            match apply_one(cur, fe.smp.as_ref(), fe.json6902.as_deref(), &ectx)? {
                Ok(v) => {
                    *cur = v;
                    applied += 1;
                }
                Err(NotApplied::Condition(_)) => {}
                Err(NotApplied::Global(_)) => {}
            }
        }
        for n in &fe.nested {
            applied += foreach(n, cur, &ectx, bind, depth + 1)?;
        }
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_patch_round_trip() {
        let a = json!({"metadata": {"name": "x", "labels": {"a": "1"}}, "spec": {"list": [1, 2]}});
        let b = json!({"metadata": {"name": "x", "labels": {"a/b": "2"}}, "spec": {"list": [1, 2, 3]}, "n": null});
        let p = diff(&a, &b);
        assert_eq!(apply_patch(&a, &p).unwrap(), b);
        let ops = vec![json!({"op": "add", "path": "/spec/list/0", "value": 0})];
        assert_eq!(
            apply_patch(&a, &ops).unwrap()["spec"]["list"],
            json!([0, 1, 2])
        );
        assert!(apply_patch(&a, &[json!({"op": "replace", "path": "/nope", "value": 1})]).is_err());
    }

    #[test]
    fn strategic_merge_with_anchors() {
        let pod = json!({"spec": {"containers": [
            {"name": "a", "image": "nginx:latest"},
            {"name": "b", "image": "redis:7"}
        ]}});
        let patch = json!({"spec": {"containers": [
            {"(image)": "*:latest", "imagePullPolicy": "Always"}
        ]}});
        let out = strategic_merge(&pod, &patch).unwrap();
        assert_eq!(out["spec"]["containers"][0]["imagePullPolicy"], "Always");
        assert!(
            out["spec"]["containers"][1]
                .get("imagePullPolicy")
                .is_none()
        );
        let add = json!({"metadata": {"labels": {"+(team)": "x"}}});
        let with = json!({"metadata": {"labels": {"team": "y"}}});
        assert_eq!(
            strategic_merge(&with, &add).unwrap()["metadata"]["labels"]["team"],
            "y"
        );
        assert_eq!(
            strategic_merge(&json!({}), &add).unwrap()["metadata"]["labels"]["team"],
            "x"
        );
        let global =
            json!({"spec": {"<(hostNetwork)": true, "dnsPolicy": "ClusterFirstWithHostNet"}});
        assert!(matches!(
            strategic_merge(&pod, &global),
            Err(NotApplied::Global(_))
        ));
        // Merge by name: a new container is appended, an existing one merged.
        let p2 = json!({"spec": {"containers": [{"name": "b", "tty": true}, {"name": "c", "image": "x"}]}});
        let out = strategic_merge(&pod, &p2).unwrap();
        assert_eq!(out["spec"]["containers"].as_array().unwrap().len(), 3);
        assert_eq!(out["spec"]["containers"][1]["tty"], true);
        assert_eq!(out["spec"]["containers"][1]["image"], "redis:7");
    }

    #[test]
    fn apply_configuration_merges_by_name() {
        let pod = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}});
        let cfg = json!({"spec": {"containers": [{"name": "b", "image": "reg/y"}]}});
        let out = apply_configuration(&pod, &cfg);
        assert_eq!(out["spec"]["containers"][0]["image"], "x");
        assert_eq!(out["spec"]["containers"][1]["image"], "reg/y");
    }
}
