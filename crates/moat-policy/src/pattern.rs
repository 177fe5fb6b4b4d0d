//! Kyverno validation patterns: an overlay of the resource with anchors on keys — `=(k)` optional,
//! `X(k)` forbidden, `(k)` conditional, `<(k)` global condition, `^(k)` at least one list element,
//! `+(k)` (mutate only) — and wildcards, `|`/`&`, comparison operators and ranges in values.

use serde_json::{Map, Value};

use crate::PolicyError;
use crate::cond::{number_string, parse_duration, parse_quantity, wildcard};

/// Why a pattern did not pass.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Miss {
    /// The resource violates the pattern at `path`.
    Fail { path: String, reason: String },
    /// A conditional or global anchor did not hold: the pattern does not apply.
    Skip { reason: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Anchor {
    None,
    Conditional,
    Global,
    Equality,
    Negation,
    Existence,
    Add,
}

/// Splits an anchored key into its anchor and bare key.
pub(crate) fn parse_key(k: &str) -> (Anchor, &str) {
    fn inner(s: &str, pre: usize) -> Option<&str> {
        (s.len() > pre + 1 && s.ends_with(')')).then(|| &s[pre..s.len() - 1])
    }
    if let Some(x) = k.strip_prefix("=(").and(inner(k, 2)) {
        return (Anchor::Equality, x);
    }
    if let Some(x) = k.strip_prefix("X(").and(inner(k, 2)) {
        return (Anchor::Negation, x);
    }
    if let Some(x) = k.strip_prefix("<(").and(inner(k, 2)) {
        return (Anchor::Global, x);
    }
    if let Some(x) = k.strip_prefix("^(").and(inner(k, 2)) {
        return (Anchor::Existence, x);
    }
    if let Some(x) = k.strip_prefix("+(").and(inner(k, 2)) {
        return (Anchor::Add, x);
    }
    if let Some(x) = k.strip_prefix('(').and(inner(k, 1)) {
        return (Anchor::Conditional, x);
    }
    (Anchor::None, k)
}

/// Load-time checks: anchors well formed, lists not empty, depth bounded.
pub(crate) fn check_pattern(p: &Value, source: &str, field: &str) -> Result<(), PolicyError> {
    check_at(p, source, field, 0)
}

fn check_at(p: &Value, source: &str, field: &str, depth: usize) -> Result<(), PolicyError> {
    if depth > crate::MAX_DEPTH {
        return Err(PolicyError::invalid(
            source,
            field,
            "pattern nested too deeply",
        ));
    }
    match p {
        Value::Object(o) => {
            for (k, v) in o {
                let (a, bare) = parse_key(k);
                if bare.is_empty() {
                    return Err(PolicyError::invalid(
                        source,
                        format!("{field}.{k}"),
                        "empty key in anchor",
                    ));
                }
                if a == Anchor::Existence && !v.is_array() {
                    return Err(PolicyError::invalid(
                        source,
                        format!("{field}.{k}"),
                        "existence anchor ^() needs a list",
                    ));
                }
                check_at(v, source, &format!("{field}.{k}"), depth + 1)?;
            }
            Ok(())
        }
        Value::Array(a) => {
            if a.is_empty() {
                return Err(PolicyError::invalid(
                    source,
                    field,
                    "empty list in a pattern",
                ));
            }
            a.iter()
                .enumerate()
                .try_for_each(|(i, x)| check_at(x, source, &format!("{field}[{i}]"), depth + 1))
        }
        _ => Ok(()),
    }
}

/// Validates a resource against a pattern.
pub(crate) fn validate(resource: &Value, pattern: &Value) -> Result<(), Miss> {
    element(Some(resource), pattern, &Path::ROOT, 0)
}

/// Where in the resource the walk is; rendered (`/spec/containers/0/`) only when reporting a miss.
#[derive(Clone, Copy)]
struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    seg: Seg<'a>,
}

#[derive(Clone, Copy)]
enum Seg<'a> {
    Root,
    Key(&'a str),
    Index(usize),
}

impl<'a> Path<'a> {
    const ROOT: Path<'static> = Path {
        parent: None,
        seg: Seg::Root,
    };

    fn key(&'a self, k: &'a str) -> Path<'a> {
        Path {
            parent: Some(self),
            seg: Seg::Key(k),
        }
    }

    fn index(&'a self, i: usize) -> Path<'a> {
        Path {
            parent: Some(self),
            seg: Seg::Index(i),
        }
    }

    fn render(&self) -> String {
        let mut segs = Vec::new();
        let mut cur = Some(self);
        while let Some(p) = cur {
            match p.seg {
                Seg::Root => {}
                Seg::Key(k) => segs.push(k.to_string()),
                Seg::Index(i) => segs.push(i.to_string()),
            }
            cur = p.parent;
        }
        segs.reverse();
        let mut out = String::from("/");
        for s in segs {
            out.push_str(&s);
            out.push('/');
        }
        out
    }
}

fn fail(path: &Path, reason: impl Into<String>) -> Miss {
    Miss::Fail {
        path: path.render(),
        reason: reason.into(),
    }
}

fn element(
    resource: Option<&Value>,
    pattern: &Value,
    path: &Path,
    depth: usize,
) -> Result<(), Miss> {
    if depth > crate::MAX_DEPTH {
        return Err(fail(path, "nesting too deep"));
    }
    match pattern {
        Value::Object(p) => match resource {
            Some(Value::Object(r)) => map(r, p, path, depth),
            _ => Err(fail(path, "expected a map")),
        },
        Value::Array(p) => match resource {
            Some(Value::Array(r)) => array(r, p, path, depth),
            _ => Err(fail(path, "expected a list")),
        },
        // Kyverno applies a scalar pattern to each element of a list of scalars
        // (`supplementalGroups: ">0"` over `[32, 94]`).
        leaf if matches!(resource, Some(Value::Array(a)) if !a.is_empty() && a.iter().all(|x| !x.is_object() && !x.is_array())) =>
        {
            let Some(Value::Array(items)) = resource else {
                return Err(fail(path, "expected a list"));
            };
            match items.iter().position(|x| !value_matches(x, leaf)) {
                None => Ok(()),
                Some(i) => Err(fail(
                    path,
                    format!("element {i} ({}) does not match {leaf}", items[i]),
                )),
            }
        }
        leaf => {
            if value_matches(resource.unwrap_or(&Value::Null), leaf) {
                Ok(())
            } else {
                Err(fail(
                    path,
                    format!(
                        "value {} does not match {}",
                        resource
                            .map(|r| r.to_string())
                            .unwrap_or("<missing>".into()),
                        leaf
                    ),
                ))
            }
        }
    }
}

/// Replaces pattern keys holding wildcards by the resource keys they match.
fn expand_wildcard_keys<'a>(
    r: &Map<String, Value>,
    p: &'a Map<String, Value>,
) -> Vec<(Anchor, String, &'a Value)> {
    let mut out = Vec::with_capacity(p.len());
    for (k, v) in p {
        let (a, bare) = parse_key(k);
        if bare.contains(['*', '?']) {
            let hits: Vec<&String> = r.keys().filter(|rk| wildcard(bare, rk)).collect();
            if !hits.is_empty() {
                out.extend(hits.into_iter().map(|h| (a, h.clone(), v)));
                continue;
            }
        }
        out.push((a, bare.to_string(), v));
    }
    out
}

fn map(
    r: &Map<String, Value>,
    p: &Map<String, Value>,
    path: &Path,
    depth: usize,
) -> Result<(), Miss> {
    let entries = expand_wildcard_keys(r, p);
    // Conditions first: a condition that does not hold makes the whole map not apply.
    for (a, key, pv) in entries
        .iter()
        .filter(|e| matches!(e.0, Anchor::Conditional | Anchor::Global))
    {
        let sub = path.key(key);
        let ok = match r.get(key) {
            Some(rv) => element(Some(rv), pv, &sub, depth + 1),
            None => Err(fail(&sub, "missing")),
        };
        if let Err(e) = ok {
            let why = match e {
                Miss::Fail { path, reason } => format!(
                    "{} anchor at {path}: {reason}",
                    if *a == Anchor::Global {
                        "global"
                    } else {
                        "conditional"
                    }
                ),
                Miss::Skip { reason } => reason,
            };
            return Err(Miss::Skip { reason: why });
        }
    }
    for (a, key, pv) in entries.iter() {
        let sub = path.key(key);
        match a {
            Anchor::Conditional | Anchor::Global | Anchor::Add => {}
            Anchor::Equality => {
                if let Some(rv) = r.get(key) {
                    element(Some(rv), pv, &sub, depth + 1)?;
                }
            }
            Anchor::Negation => {
                if r.contains_key(key) {
                    return Err(fail(&sub, format!("field {key} is not allowed")));
                }
            }
            Anchor::Existence => {
                if let Some(rv) = r.get(key) {
                    let (Value::Array(rl), Value::Array(pl)) = (rv, pv) else {
                        return Err(fail(&sub, "existence anchor ^() applies to lists"));
                    };
                    let Some(first) = pl.first() else {
                        return Err(fail(&sub, "empty pattern list"));
                    };
                    if !rl
                        .iter()
                        .enumerate()
                        .any(|(i, e)| element(Some(e), first, &sub.index(i), depth + 2).is_ok())
                    {
                        return Err(fail(&sub, "no element matches the existence anchor"));
                    }
                }
            }
            Anchor::None => {
                let rv = r.get(key).filter(|v| !v.is_null());
                if pv.as_str() == Some("*") {
                    if rv.is_none() {
                        return Err(fail(&sub, format!("field {key} is required")));
                    }
                    continue;
                }
                element(rv, pv, &sub, depth + 1)?;
            }
        }
    }
    Ok(())
}

fn array(r: &[Value], p: &[Value], path: &Path, depth: usize) -> Result<(), Miss> {
    let Some(first) = p.first() else {
        return Err(fail(path, "empty pattern list"));
    };
    if first.is_object() {
        let mut applied = 0;
        let mut skipped = Vec::new();
        for (i, e) in r.iter().enumerate() {
            match element(Some(e), first, &path.index(i), depth + 1) {
                Ok(()) => applied += 1,
                Err(Miss::Skip { reason }) => skipped.push(reason),
                Err(f) => return Err(f),
            }
        }
        if applied == 0 && !skipped.is_empty() {
            return Err(Miss::Skip {
                reason: skipped.join("; "),
            });
        }
        return Ok(());
    }
    // A list of scalars (or lists): element by element.
    if r.len() < p.len() {
        return Err(fail(
            path,
            format!("expected at least {} elements", p.len()),
        ));
    }
    for (i, pe) in p.iter().enumerate() {
        element(r.get(i), pe, &path.index(i), depth + 1)?;
    }
    Ok(())
}

/// Whether a scalar resource value matches a scalar pattern value.
pub(crate) fn value_matches(v: &Value, pattern: &Value) -> bool {
    match pattern {
        Value::Bool(b) => v.as_bool() == Some(*b),
        Value::Number(n) => {
            let p = n.as_f64();
            match v {
                Value::Number(x) => x.as_f64() == p,
                Value::String(s) => s.trim().parse::<f64>().ok() == p,
                _ => false,
            }
        }
        Value::Null => match v {
            Value::Null => true,
            Value::String(s) => s.is_empty(),
            Value::Number(n) => n.as_f64() == Some(0.0),
            Value::Bool(b) => !b,
            _ => false,
        },
        Value::String(p) => string_pattern(v, p),
        // Nested structure compared as a whole.
        other => v == other,
    }
}

fn string_pattern(v: &Value, pattern: &str) -> bool {
    pattern
        .split('|')
        .any(|alt| alt.split('&').all(|c| single(v, c.trim())))
}

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

fn single(v: &Value, p: &str) -> bool {
    if p.is_empty() {
        return matches!(v, Value::Null) || v.as_str() == Some("");
    }
    if let Some(r) = range(v, p) {
        return r;
    }
    let (op, operand) = if let Some(x) = p.strip_prefix(">=") {
        (Op::Ge, x)
    } else if let Some(x) = p.strip_prefix("<=") {
        (Op::Le, x)
    } else if let Some(x) = p.strip_prefix('>') {
        (Op::Gt, x)
    } else if let Some(x) = p.strip_prefix('<') {
        (Op::Lt, x)
    } else if let Some(x) = p.strip_prefix('!') {
        (Op::Ne, x)
    } else {
        (Op::Eq, p)
    };
    let operand = operand.trim();
    // Numeric operands (numbers, quantities, durations) compare as numbers.
    if operand.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.')
        && let Some(pn) = parse_quantity(operand).or_else(|| parse_duration(operand))
    {
        let vn = match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => parse_quantity(s).or_else(|| parse_duration(s)),
            _ => None,
        };
        return match vn {
            Some(x) => match op {
                Op::Eq => x == pn,
                Op::Ne => x != pn,
                Op::Gt => x > pn,
                Op::Ge => x >= pn,
                Op::Lt => x < pn,
                Op::Le => x <= pn,
            },
            None => op == Op::Ne && !matches!(v, Value::Object(_) | Value::Array(_)),
        };
    }
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => number_string(n),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        _ => return false,
    };
    match op {
        Op::Eq => wildcard(operand, &text),
        Op::Ne => !wildcard(operand, &text),
        _ => false,
    }
}

/// `a-b` (in range) and `a!-b` (not in range) over numbers and quantities.
fn range(v: &Value, p: &str) -> Option<bool> {
    let (neg, lo, hi) = if let Some(i) = p.find("!-") {
        (true, &p[..i], &p[i + 2..])
    } else {
        let start = usize::from(p.starts_with('-'));
        let i = p[start..].find('-')? + start;
        (false, &p[..i], &p[i + 1..])
    };
    let lo = parse_quantity(lo.trim())?;
    let hi = parse_quantity(hi.trim())?;
    let x = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => parse_quantity(s)?,
        _ => return Some(neg),
    };
    let inside = x >= lo && x <= hi;
    Some(if neg { !inside } else { inside })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn anchors() {
        let p = json!({"spec": {"=(hostPID)": "false", "containers": [{"=(securityContext)": {"=(privileged)": "false"}}]}});
        assert!(validate(&json!({"spec": {"containers": [{"name": "a"}]}}), &p).is_ok());
        assert!(validate(&json!({"spec": {"hostPID": true, "containers": [{}]}}), &p).is_err());
        assert!(
            validate(
                &json!({"spec": {"containers": [{"securityContext": {"privileged": true}}]}}),
                &p
            )
            .is_err()
        );
        let neg = json!({"spec": {"X(externalIPs)": "null"}});
        assert!(validate(&json!({"spec": {"externalIPs": ["1.2.3.4"]}}), &neg).is_err());
        assert!(validate(&json!({"spec": {}}), &neg).is_ok());
        let cond = json!({"spec": {"containers": [{"(name)": "web", "image": "*:1.0"}]}});
        assert!(validate(&json!({"spec": {"containers": [{"name": "db", "image": "pg"}, {"name": "web", "image": "a:1.0"}]}}), &cond).is_ok());
        assert!(matches!(
            validate(&json!({"spec": {"containers": [{"name": "db"}]}}), &cond),
            Err(Miss::Skip { .. })
        ));
    }

    #[test]
    fn values() {
        assert!(value_matches(&json!(5500), &json!("5000-6000")));
        assert!(!value_matches(&json!(80), &json!("5000-6000")));
        assert!(value_matches(&json!("2Gi"), &json!(">1Gi")));
        assert!(value_matches(
            &json!("container_init_t"),
            &json!("container_t | container_init_t")
        ));
        assert!(value_matches(&json!("nginx:1.2"), &json!("!*:latest")));
        assert!(!value_matches(&json!("nginx:latest"), &json!("!*:latest")));
        assert!(value_matches(&json!(false), &json!("false")));
        assert!(!value_matches(&json!(true), &json!("false")));
        assert!(value_matches(
            &json!("/var/run/x.sock"),
            &json!("!/var/run/docker.sock")
        ));
        assert!(!value_matches(&Value::Null, &json!("?*")));
    }

    #[test]
    fn wildcard_keys() {
        let p = json!({"metadata": {"labels": {"pod-security.kubernetes.io/*": "?*"}}});
        assert!(validate(&json!({"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "baseline"}}}), &p).is_ok());
        assert!(validate(&json!({"metadata": {"labels": {"app": "x"}}}), &p).is_err());
    }
}
