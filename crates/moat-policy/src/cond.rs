//! Kyverno conditions (`preconditions`, `deny.conditions`): `any`/`all` lists of `key operator value`.

use serde_json::Value;

use crate::PolicyError;
use crate::vars::{self, Ctx};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operator {
    Equals,
    NotEquals,
    In,
    NotIn,
    AnyIn,
    AllIn,
    AnyNotIn,
    AllNotIn,
    GreaterThan,
    GreaterThanOrEquals,
    LessThan,
    LessThanOrEquals,
    DurationGreaterThan,
    DurationGreaterThanOrEquals,
    DurationLessThan,
    DurationLessThanOrEquals,
}

impl Operator {
    fn parse(s: &str) -> Option<Operator> {
        use Operator::*;
        Some(match s.to_ascii_lowercase().as_str() {
            "equal" | "equals" => Equals,
            "notequal" | "notequals" => NotEquals,
            "in" => In,
            "notin" => NotIn,
            "anyin" => AnyIn,
            "allin" => AllIn,
            "anynotin" => AnyNotIn,
            "allnotin" => AllNotIn,
            "greaterthan" => GreaterThan,
            "greaterthanorequals" => GreaterThanOrEquals,
            "lessthan" => LessThan,
            "lessthanorequals" => LessThanOrEquals,
            "durationgreaterthan" => DurationGreaterThan,
            "durationgreaterthanorequals" => DurationGreaterThanOrEquals,
            "durationlessthan" => DurationLessThan,
            "durationlessthanorequals" => DurationLessThanOrEquals,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Condition {
    key: Value,
    op: Operator,
    value: Value,
    dynamic: bool,
    pub message: Option<String>,
}

/// `any` (at least one holds) and `all` (every one holds); a plain list is `all`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Conditions {
    any: Option<Vec<Condition>>,
    all: Option<Vec<Condition>>,
}

impl Conditions {
    pub(crate) fn compile(v: &Value, source: &str, field: &str) -> Result<Conditions, PolicyError> {
        match v {
            Value::Null => Ok(Conditions::default()),
            Value::Array(list) => Ok(Conditions {
                any: None,
                all: Some(compile_list(list, source, field)?),
            }),
            Value::Object(o) => {
                let mut c = Conditions::default();
                for (k, x) in o {
                    let list = match x {
                        Value::Array(l) => compile_list(l, source, &format!("{field}.{k}"))?,
                        Value::Null => Vec::new(),
                        _ => {
                            return Err(PolicyError::invalid(
                                source,
                                format!("{field}.{k}"),
                                "must be a list of conditions",
                            ));
                        }
                    };
                    match k.as_str() {
                        "any" => c.any = Some(list),
                        "all" => c.all = Some(list),
                        _ => {
                            return Err(PolicyError::invalid(
                                source,
                                format!("{field}.{k}"),
                                "expected `any` or `all`",
                            ));
                        }
                    }
                }
                Ok(c)
            }
            _ => Err(PolicyError::invalid(
                source,
                field,
                "conditions must be a list or an any/all map",
            )),
        }
    }

    /// Whether the conditions hold; Err when a variable cannot be resolved.
    pub(crate) fn eval(&self, ctx: &Ctx) -> Result<bool, String> {
        if let Some(any) = &self.any {
            let mut hit = false;
            for c in any {
                if c.eval(ctx)? {
                    hit = true;
                    break;
                }
            }
            if !hit {
                return Ok(false);
            }
        }
        if let Some(all) = &self.all {
            for c in all {
                if !c.eval(ctx)? {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// The first message of a failing condition (Kyverno reports it for preconditions).
    pub(crate) fn messages(&self) -> impl Iterator<Item = &str> {
        self.any
            .iter()
            .chain(self.all.iter())
            .flatten()
            .filter_map(|c| c.message.as_deref())
    }
}

fn compile_list(list: &[Value], source: &str, field: &str) -> Result<Vec<Condition>, PolicyError> {
    let mut out = Vec::new();
    for (i, c) in list.iter().enumerate() {
        let f = format!("{field}[{i}]");
        let op_s = c.get("operator").and_then(Value::as_str).unwrap_or("");
        let Some(op) = Operator::parse(op_s) else {
            return Err(PolicyError::invalid(
                source,
                format!("{f}.operator"),
                format!("unknown operator `{op_s}`"),
            ));
        };
        let key = c.get("key").cloned().unwrap_or(Value::Null);
        let value = c.get("value").cloned().unwrap_or(Value::Null);
        for (what, v) in [("key", &key), ("value", &value)] {
            check_vars(v, source, &format!("{f}.{what}"))?;
        }
        let dynamic = vars::value_has_vars(&key) || vars::value_has_vars(&value);
        let message = c.get("message").and_then(Value::as_str).map(str::to_string);
        out.push(Condition {
            key,
            op,
            value,
            dynamic,
            message,
        });
    }
    Ok(out)
}

/// Rejects unparsable `{{ }}` expressions at load time.
fn check_vars(v: &Value, source: &str, field: &str) -> Result<(), PolicyError> {
    match v {
        Value::String(s) if vars::has_vars(s) => {
            let ctx = Ctx::new(&Value::Null);
            match vars::substitute_str(s, &ctx) {
                Err(e)
                    if e.contains("JMESPath") && !e.contains("Runtime") && is_parse_error(&e) =>
                {
                    Err(PolicyError::invalid(source, field, e))
                }
                _ => Ok(()),
            }
        }
        Value::Array(a) => a.iter().try_for_each(|x| check_vars(x, source, field)),
        Value::Object(o) => o.values().try_for_each(|x| check_vars(x, source, field)),
        _ => Ok(()),
    }
}

fn is_parse_error(e: &str) -> bool {
    e.contains("Parse error") || e.contains("Syntax error") || e.contains("Lex")
}

impl Condition {
    fn eval(&self, ctx: &Ctx) -> Result<bool, String> {
        let (key, value);
        let (k, v) = if self.dynamic {
            key = vars::substitute(&self.key, ctx)?;
            value = vars::substitute(&self.value, ctx)?;
            (&key, &value)
        } else {
            (&self.key, &self.value)
        };
        Ok(evaluate(self.op, k, v))
    }
}

/// Applies an operator to a resolved key and value.
pub(crate) fn evaluate(op: Operator, key: &Value, value: &Value) -> bool {
    use Operator::*;
    match op {
        Equals => equals(key, value),
        NotEquals => !equals(key, value),
        In => keys(key).iter().all(|k| in_value(k, value)) && !keys(key).is_empty(),
        NotIn => {
            let ks = keys(key);
            ks.is_empty() || !ks.iter().all(|k| in_value(k, value))
        }
        AnyIn => keys(key).iter().any(|k| in_value(k, value)),
        AllIn => {
            let ks = keys(key);
            !ks.is_empty() && ks.iter().all(|k| in_value(k, value))
        }
        AnyNotIn => keys(key).iter().any(|k| !in_value(k, value)),
        AllNotIn => {
            let ks = keys(key);
            !ks.is_empty() && ks.iter().all(|k| !in_value(k, value))
        }
        GreaterThan | GreaterThanOrEquals | LessThan | LessThanOrEquals => {
            let (Some(a), Some(b)) = (number_of(key), number_of(value)) else {
                return false;
            };
            compare(op, a, b)
        }
        DurationGreaterThan
        | DurationGreaterThanOrEquals
        | DurationLessThan
        | DurationLessThanOrEquals => {
            let (Some(a), Some(b)) = (duration_of(key), duration_of(value)) else {
                return false;
            };
            let op = match op {
                DurationGreaterThan => GreaterThan,
                DurationGreaterThanOrEquals => GreaterThanOrEquals,
                DurationLessThan => LessThan,
                _ => LessThanOrEquals,
            };
            compare(op, a, b)
        }
    }
}

fn compare(op: Operator, a: f64, b: f64) -> bool {
    match op {
        Operator::GreaterThan => a > b,
        Operator::GreaterThanOrEquals => a >= b,
        Operator::LessThan => a < b,
        _ => a <= b,
    }
}

/// The key as a list of elements (a scalar is a list of one; null is empty).
fn keys(key: &Value) -> Vec<&Value> {
    match key {
        Value::Array(a) => a.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

fn equals(key: &Value, value: &Value) -> bool {
    match (key, value) {
        (Value::String(k), Value::String(v)) => {
            if let (Some(a), Some(b)) = (parse_duration(k), parse_duration(v)) {
                return a == b;
            }
            if let (Some(a), Some(b)) = (parse_quantity(k), parse_quantity(v)) {
                return a == b;
            }
            wildcard(v, k)
        }
        (Value::Number(_), _) | (_, Value::Number(_)) => match (number_of(key), number_of(value)) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        },
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Bool(a), Value::String(b)) | (Value::String(b), Value::Bool(a)) => {
            b == if *a { "true" } else { "false" }
        }
        _ => key == value,
    }
}

/// Whether one key element is in the value (a list, a wildcard string, a `min-max` range, or a JSON
/// list in a string).
fn in_value(k: &Value, value: &Value) -> bool {
    let ks = scalar_string(k);
    match value {
        Value::Array(a) => a.iter().any(|v| match (scalar_string(v), &ks) {
            (Some(vs), Some(ks)) => wildcard(&vs, ks),
            _ => v == k,
        }),
        Value::String(s) => {
            let Some(ks) = ks else { return false };
            if let Some((lo, hi)) = parse_range(s) {
                return ks.parse::<f64>().is_ok_and(|n| n >= lo && n <= hi);
            }
            if let Some(not) = s.strip_prefix('!')
                && let Some((lo, hi)) = parse_range(not)
            {
                return ks.parse::<f64>().is_ok_and(|n| n < lo || n > hi);
            }
            if s.trim_start().starts_with('[')
                && let Ok(Value::Array(a)) = serde_json::from_str::<Value>(s)
            {
                return in_value(k, &Value::Array(a));
            }
            wildcard(s, &ks)
        }
        Value::Null => false,
        other => scalar_string(other).zip(ks).is_some_and(|(v, k)| v == k),
    }
}

fn parse_range(s: &str) -> Option<(f64, f64)> {
    let s = s.trim();
    let start = usize::from(s.starts_with('-'));
    let dash = s[start..].find('-')? + start;
    let lo = s[..dash].trim().parse::<f64>().ok()?;
    let hi = s[dash + 1..].trim().parse::<f64>().ok()?;
    Some((lo, hi))
}

/// A scalar as Go's `fmt.Sprint` writes it.
pub(crate) fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(number_string(n)),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => None,
        _ => None,
    }
}

pub(crate) fn number_string(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{}", f as i64)
    } else {
        f.to_string()
    }
}

/// Wildcard match (`*`, `?`) of a pattern against a text.
pub(crate) fn wildcard(pattern: &str, text: &str) -> bool {
    if !pattern.contains(['*', '?']) {
        return pattern == text;
    }
    wildmatch::WildMatch::new(pattern).matches(text)
}

/// A number, a numeric string, or a Kubernetes quantity, as f64.
pub(crate) fn number_of(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => parse_quantity(s).or_else(|| parse_duration(s)),
        _ => None,
    }
}

fn duration_of(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => parse_duration(s).or_else(|| s.trim().parse().ok()),
        _ => None,
    }
}

/// Kubernetes resource quantity (`100m`, `1.5Gi`, `2e3`) as a number.
pub(crate) fn parse_quantity(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(n) = s.parse::<f64>() {
        return n.is_finite().then_some(n);
    }
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))?;
    let (num, suffix) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let mult = match suffix {
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        _ => return None,
    };
    Some(n * mult)
}

/// Go duration (`1h30m`, `10s`, `250ms`) in seconds.
pub(crate) fn parse_duration(s: &str) -> Option<f64> {
    let s = s.trim();
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest.is_empty() {
        return None;
    }
    if rest == "0" {
        return Some(0.0);
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        if num_end == 0 {
            return None;
        }
        let n: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        total += n * match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
    }
    Some(if neg { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn set_operators() {
        assert!(evaluate(
            Operator::AnyNotIn,
            &json!([80]),
            &json!("5000-6000")
        ));
        assert!(!evaluate(
            Operator::AnyNotIn,
            &json!([5500]),
            &json!("5000-6000")
        ));
        assert!(!evaluate(
            Operator::AnyNotIn,
            &json!([]),
            &json!("5000-6000")
        ));
        assert!(!evaluate(Operator::AnyNotIn, &json!([0]), &json!([0])));
        assert!(evaluate(Operator::AnyNotIn, &json!("ALL"), &json!([])));
        assert!(!evaluate(
            Operator::AnyNotIn,
            &json!("ALL"),
            &json!(["ALL"])
        ));
        assert!(evaluate(
            Operator::AnyIn,
            &json!(["a", "b"]),
            &json!(["b*"])
        ));
        assert!(!evaluate(
            Operator::AllIn,
            &json!(["a", "b"]),
            &json!(["b*"])
        ));
        assert!(evaluate(
            Operator::AllNotIn,
            &json!(["a", "c"]),
            &json!(["b"])
        ));
    }

    #[test]
    fn equality_and_numbers() {
        assert!(evaluate(Operator::Equals, &json!("1Gi"), &json!("1024Mi")));
        assert!(evaluate(Operator::NotEquals, &json!(2), &json!(1)));
        assert!(evaluate(
            Operator::Equals,
            &json!("nginx:1.2"),
            &json!("nginx:*")
        ));
        assert!(evaluate(Operator::GreaterThan, &json!("2"), &json!(1)));
        assert!(evaluate(
            Operator::DurationGreaterThan,
            &json!("1h"),
            &json!("30m")
        ));
        assert!(!evaluate(
            Operator::NotEquals,
            &json!("CREATE"),
            &json!("CREATE")
        ));
    }
}
