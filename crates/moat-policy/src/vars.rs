//! `{{ }}` variables: JMESPath over the request context, with the Kyverno functions policies use.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock, RwLock};

use jmespath::functions::{ArgumentType, CustomFunction, Signature};
use jmespath::{Expression, Rcvar, Runtime, Variable};
use serde_json::Value;

static RUNTIME: LazyLock<Runtime> = LazyLock::new(|| {
    let mut rt = Runtime::new();
    rt.register_builtin_functions();
    register_kyverno_functions(&mut rt);
    rt
});

/// A compiled JMESPath expression.
#[derive(Clone)]
pub(crate) struct Query {
    expr: Arc<Expression<'static>>,
    /// The top-level names the expression reads (None: it reads the whole root, e.g. `@`). The
    /// jmespath crate copies its input on every search, so only these are handed to it.
    roots: Option<Arc<Vec<String>>>,
}

/// Collects the names an expression looks up at the root; false when it needs the whole root.
fn root_keys(ast: &jmespath::ast::Ast, out: &mut Vec<String>, depth: usize) -> bool {
    use jmespath::ast::Ast;
    if depth > 64 {
        return false;
    }
    match ast {
        Ast::Field { name, .. } => {
            if !out.contains(name) {
                out.push(name.clone());
            }
            true
        }
        Ast::Subexpr { lhs, .. } | Ast::Projection { lhs, .. } => root_keys(lhs, out, depth + 1),
        Ast::Flatten { node, .. } | Ast::ObjectValues { node, .. } | Ast::Not { node, .. } => {
            root_keys(node, out, depth + 1)
        }
        Ast::Or { lhs, rhs, .. } | Ast::And { lhs, rhs, .. } | Ast::Comparison { lhs, rhs, .. } => {
            root_keys(lhs, out, depth + 1) && root_keys(rhs, out, depth + 1)
        }
        Ast::MultiList { elements, .. } => elements.iter().all(|e| root_keys(e, out, depth + 1)),
        Ast::MultiHash { elements, .. } => elements
            .iter()
            .all(|kv| root_keys(&kv.value, out, depth + 1)),
        Ast::Function { args, .. } => args.iter().all(|a| root_keys(a, out, depth + 1)),
        Ast::Expref { .. } | Ast::Literal { .. } => true,
        _ => false,
    }
}

impl std::fmt::Debug for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Query({})", self.expr.as_str())
    }
}

impl Query {
    pub(crate) fn compile(src: &str) -> Result<Query, String> {
        let src = src.trim();
        if src.len() > 16 * 1024 {
            return Err("JMESPath expression longer than 16 KiB".into());
        }
        // The parser recurses once per nesting level: bounded before it runs (issue 17).
        let depth = nesting_depth(src);
        if depth > crate::budget::MAX_DEPTH {
            return Err(format!(
                "JMESPath expression nested {depth} deep, over the depth limit {}",
                crate::budget::MAX_DEPTH
            ));
        }
        RUNTIME
            .compile(src)
            .map(|expr| {
                let mut keys = Vec::new();
                let roots = root_keys(expr.as_ast(), &mut keys, 0).then(|| Arc::new(keys));
                Query {
                    expr: Arc::new(expr),
                    roots,
                }
            })
            .map_err(|e| format!("JMESPath `{src}`: {e}"))
    }

    pub(crate) fn search(&self, ctx: &Ctx) -> Result<Value, String> {
        crate::budget::jmes_begin();
        let narrowed;
        let data = match (&self.roots, &*ctx.root) {
            (Some(keys), Variable::Object(all)) => {
                let part: BTreeMap<String, Rcvar> = keys
                    .iter()
                    .filter_map(|k| all.get(k).map(|v| (k.clone(), v.clone())))
                    .collect();
                narrowed = Arc::new(Variable::Object(part));
                &narrowed
            }
            _ => &ctx.root,
        };
        let r = self
            .expr
            .search(data)
            .map_err(|e| match crate::budget::jmes_over() {
                Some(m) => format!("JMESPath `{}`: {m}", self.expr.as_str()),
                None => format!("JMESPath `{}`: {e}", self.expr.as_str()),
            })?;
        to_json_budgeted(&r).map_err(|e| format!("JMESPath `{}`: {e}", self.expr.as_str()))
    }
}

/// Deepest nesting of brackets, braces and parentheses outside quoted literals.
fn nesting_depth(src: &str) -> usize {
    let (mut depth, mut max, mut quote) = (0usize, 0usize, None::<char>);
    let mut escaped = false;
    for c in src.chars() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' | '`' => quote = Some(c),
            '(' | '[' | '{' => {
                depth += 1;
                max = max.max(depth);
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// [`to_json`] under the search's budget: one unit per node and per string byte, so a value that
/// shares one array 2^40 times is refused instead of expanded.
fn to_json_budgeted(v: &Variable) -> Result<Value, String> {
    fn walk(v: &Variable, depth: usize) -> Result<Value, String> {
        if depth > crate::budget::MAX_DEPTH {
            return Err(format!(
                "result nested deeper than {}",
                crate::budget::MAX_DEPTH
            ));
        }
        let n = match v {
            Variable::String(s) => s.len() as u64 + 1,
            _ => 1,
        };
        crate::budget::jmes_charge(n, "the result")?;
        Ok(match v {
            Variable::Array(a) => Value::Array(
                a.iter()
                    .map(|x| walk(x, depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            Variable::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, x)| walk(x, depth + 1).map(|x| (k.clone(), x)))
                    .collect::<Result<_, _>>()?,
            ),
            other => to_json(other),
        })
    }
    walk(v, 0)
}

/// Charges `n` to the search's budget as a JMESPath error.
fn charge(n: usize, what: &str) -> Result<(), jmespath::JmespathError> {
    crate::budget::jmes_charge(n as u64, what)
        .map_err(|m| jmespath::JmespathError::new("", 0, jmespath::ErrorReason::Parse(m)))
}

/// Strips one `{{ }}` around a foreach list expression, which Kyverno accepts either way.
pub(crate) fn strip_braces(s: &str) -> String {
    let t = s.trim();
    if let Some(inner) = t.strip_prefix("{{").and_then(|x| x.strip_suffix("}}")) {
        inner.trim().to_string()
    } else {
        t.to_string()
    }
}

pub(crate) fn to_json(v: &Variable) -> Value {
    match v {
        Variable::Null | Variable::Expref(_) => Value::Null,
        Variable::String(s) => Value::String(s.clone()),
        Variable::Bool(b) => Value::Bool(*b),
        Variable::Number(n) => Value::Number(n.clone()),
        Variable::Array(a) => Value::Array(a.iter().map(|x| to_json(x)).collect()),
        Variable::Object(o) => {
            Value::Object(o.iter().map(|(k, x)| (k.clone(), to_json(x))).collect())
        }
    }
}

pub(crate) fn to_var(v: &Value) -> Rcvar {
    Arc::new(match v {
        Value::Null => Variable::Null,
        Value::Bool(b) => Variable::Bool(*b),
        Value::Number(n) => Variable::Number(n.clone()),
        Value::String(s) => Variable::String(s.clone()),
        Value::Array(a) => Variable::Array(a.iter().map(to_var).collect()),
        Value::Object(o) => {
            Variable::Object(o.iter().map(|(k, x)| (k.clone(), to_var(x))).collect())
        }
    })
}

/// The variables a rule sees: `request.*`, `element`, `elementIndex`, context entries.
#[derive(Clone)]
pub(crate) struct Ctx {
    root: Rcvar,
}

impl Ctx {
    pub(crate) fn new(root: &Value) -> Ctx {
        Ctx { root: to_var(root) }
    }

    /// A copy with `name` set (a dotted name sets a nested field).
    pub(crate) fn with(&self, name: &str, value: Rcvar) -> Ctx {
        Ctx {
            root: set_path(&self.root, &name.split('.').collect::<Vec<_>>(), value),
        }
    }

    pub(crate) fn with_json(&self, name: &str, value: &Value) -> Ctx {
        self.with(name, to_var(value))
    }

    /// The value at a top-level name (e.g. `element`).
    pub(crate) fn get(&self, name: &str) -> Option<Rcvar> {
        match &*self.root {
            Variable::Object(o) => o.get(name).cloned(),
            _ => None,
        }
    }
}

fn set_path(base: &Rcvar, path: &[&str], value: Rcvar) -> Rcvar {
    let Some((first, rest)) = path.split_first() else {
        return value;
    };
    let mut map: BTreeMap<String, Rcvar> = match &**base {
        Variable::Object(o) => o.clone(),
        _ => BTreeMap::new(),
    };
    let child = map
        .get(*first)
        .cloned()
        .unwrap_or_else(|| Arc::new(Variable::Null));
    map.insert(first.to_string(), set_path(&child, rest, value));
    Arc::new(Variable::Object(map))
}

/// Whether a string holds a `{{ }}` variable.
pub(crate) fn has_vars(s: &str) -> bool {
    s.contains("{{")
}

pub(crate) fn value_has_vars(v: &Value) -> bool {
    match v {
        Value::String(s) => has_vars(s),
        Value::Array(a) => a.iter().any(value_has_vars),
        Value::Object(o) => o.iter().any(|(k, x)| has_vars(k) || value_has_vars(x)),
        _ => false,
    }
}

/// Spans of `{{ ... }}` in `s` (byte offsets of the whole variable, and the inner expression).
fn var_spans(s: &str) -> Vec<(usize, usize, &str)> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i] == b'{' && b[i + 1] == b'{' && (i == 0 || b[i - 1] != b'\\') {
            let start = i;
            let mut j = i + 2;
            let mut depth = 0i32;
            let mut end = None;
            while j < b.len() {
                match b[j] {
                    b'{' => depth += 1,
                    b'}' if depth > 0 => depth -= 1,
                    b'}' if j + 1 < b.len() && b[j + 1] == b'}' => {
                        end = Some(j);
                        break;
                    }
                    _ => {}
                }
                j += 1;
            }
            match end {
                Some(e) => {
                    out.push((start, e + 2, &s[start + 2..e]));
                    i = e + 2;
                }
                None => break,
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Resolves one variable expression.
fn resolve(expr: &str, ctx: &Ctx) -> Result<Value, String> {
    let expr = expr.trim();
    if expr.starts_with('@') && expr.len() == 1 {
        return Err("`{{@}}` is only meaningful in mutate rules".into());
    }
    if has_vars(expr) {
        // Nested `{{ }}`: Kyverno substitutes the inner variables first, as text, then evaluates the
        // outer expression. The result depends on the request, so it is compiled, not cached.
        let inner = match substitute_str(expr, ctx)? {
            Value::String(s) => s,
            other => other.to_string(),
        };
        return Query::compile(&inner)?.search(ctx);
    }
    cached(expr)?.search(ctx)
}

/// Compiled `{{ }}` expressions. They come from policies (never from requests), so the cache is
/// bounded by the policies loaded; it is cleared if it ever grows past a limit.
static CACHE: LazyLock<RwLock<HashMap<String, Query>>> =
    LazyLock::new(|| RwLock::new(HashMap::new()));

fn cached(expr: &str) -> Result<Query, String> {
    if let Ok(c) = CACHE.read()
        && let Some(q) = c.get(expr)
    {
        return Ok(q.clone());
    }
    let q = Query::compile(expr)?;
    if let Ok(mut c) = CACHE.write() {
        if c.len() > 10_000 {
            c.clear();
        }
        c.insert(expr.to_string(), q.clone());
    }
    Ok(q)
}

/// Substitutes variables in a string: a string that is exactly one variable becomes that variable's
/// value (any JSON type); otherwise each variable is replaced by its text.
pub(crate) fn substitute_str(s: &str, ctx: &Ctx) -> Result<Value, String> {
    let spans = var_spans(s);
    if spans.is_empty() {
        return Ok(Value::String(s.replace("\\{{", "{{")));
    }
    if spans.len() == 1 && spans[0].0 == 0 && spans[0].1 == s.len() {
        return resolve(spans[0].2, ctx);
    }
    let mut out = String::with_capacity(s.len());
    let mut last = 0;
    for (start, end, inner) in spans {
        out.push_str(&s[last..start]);
        match resolve(inner, ctx)? {
            Value::String(x) => out.push_str(&x),
            Value::Null => out.push_str("null"),
            other => out.push_str(&other.to_string()),
        }
        last = end;
    }
    out.push_str(&s[last..]);
    Ok(Value::String(out))
}

/// Substitutes variables everywhere in a value (strings only, not keys), bounded in depth.
pub(crate) fn substitute(v: &Value, ctx: &Ctx) -> Result<Value, String> {
    substitute_at(v, ctx, 0)
}

fn substitute_at(v: &Value, ctx: &Ctx, depth: usize) -> Result<Value, String> {
    if depth > crate::MAX_DEPTH {
        return Err("value nested too deeply".into());
    }
    Ok(match v {
        Value::String(s) if has_vars(s) => substitute_str(s, ctx)?,
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| substitute_at(x, ctx, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(o) => {
            let mut m = serde_json::Map::with_capacity(o.len());
            for (k, x) in o {
                m.insert(k.clone(), substitute_at(x, ctx, depth + 1)?);
            }
            Value::Object(m)
        }
        other => other.clone(),
    })
}

/// Substitutes variables in a message; on failure, leaves the message as written.
pub(crate) fn substitute_message(m: &str, ctx: &Ctx) -> String {
    if !has_vars(m) {
        return m.to_string();
    }
    match substitute_str(m, ctx) {
        Ok(Value::String(s)) => s,
        Ok(v) => v.to_string(),
        Err(_) => m.to_string(),
    }
}

fn s(v: &Rcvar) -> Option<&str> {
    match &**v {
        Variable::String(s) => Some(s),
        _ => None,
    }
}

fn string_fn(rt: &mut Runtime, name: &str, f: fn(&str) -> String) {
    rt.register_function(
        name,
        Box::new(CustomFunction::new(
            Signature::new(vec![ArgumentType::String], None),
            Box::new(move |args: &[Rcvar], _ctx: &mut jmespath::Context<'_>| {
                let x = s(&args[0]).unwrap_or("");
                charge(x.len() * 2 + 1, "a string function")?;
                Ok(Arc::new(Variable::String(f(x))))
            }),
        )),
    );
}

fn string2_fn(rt: &mut Runtime, name: &str, f: fn(&str, &str) -> Variable) {
    rt.register_function(
        name,
        Box::new(CustomFunction::new(
            Signature::new(vec![ArgumentType::String, ArgumentType::String], None),
            Box::new(move |args: &[Rcvar], _ctx: &mut jmespath::Context<'_>| {
                let (a, b) = (s(&args[0]).unwrap_or(""), s(&args[1]).unwrap_or(""));
                charge(a.len() + b.len() + 1, "a string function")?;
                Ok(Arc::new(f(a, b)))
            }),
        )),
    );
}

/// The Kyverno JMESPath extensions that policies commonly use.
fn register_kyverno_functions(rt: &mut Runtime) {
    // The builtins that build strings, under the search's budget (`join` doubling).
    rt.register_function(
        "join",
        Box::new(CustomFunction::new(
            Signature::new(
                vec![
                    ArgumentType::String,
                    ArgumentType::TypedArray(Box::new(ArgumentType::String)),
                ],
                None,
            ),
            Box::new(|args: &[Rcvar], _ctx: &mut jmespath::Context<'_>| {
                let glue = s(&args[0]).unwrap_or("");
                let parts: Vec<&str> = match &*args[1] {
                    Variable::Array(a) => a.iter().filter_map(|v| s(v)).collect(),
                    _ => Vec::new(),
                };
                let len = parts.iter().map(|p| p.len()).sum::<usize>()
                    + glue.len().saturating_mul(parts.len().saturating_sub(1));
                charge(len + 1, "join")?;
                Ok(Arc::new(Variable::String(parts.join(glue))))
            }),
        )),
    );
    rt.register_function(
        "to_string",
        Box::new(CustomFunction::new(
            Signature::new(vec![ArgumentType::Any], None),
            Box::new(|args: &[Rcvar], _ctx: &mut jmespath::Context<'_>| {
                if let Variable::String(x) = &*args[0] {
                    return Ok(Arc::new(Variable::String(x.clone())));
                }
                let v = to_json_budgeted(&args[0]).map_err(|m| {
                    jmespath::JmespathError::new("", 0, jmespath::ErrorReason::Parse(m))
                })?;
                Ok(Arc::new(Variable::String(v.to_string())))
            }),
        )),
    );
    string_fn(rt, "to_upper", |x| x.to_uppercase());
    string_fn(rt, "to_lower", |x| x.to_lowercase());
    string_fn(rt, "trim_space", |x| x.trim().to_string());
    string2_fn(rt, "trim", |x, cut| {
        Variable::String(x.trim_matches(|c| cut.contains(c)).to_string())
    });
    string2_fn(rt, "trim_prefix", |x, p| {
        Variable::String(x.strip_prefix(p).unwrap_or(x).to_string())
    });
    string2_fn(rt, "trim_suffix", |x, p| {
        Variable::String(x.strip_suffix(p).unwrap_or(x).to_string())
    });
    string2_fn(rt, "split", |x, sep| {
        Variable::Array(
            x.split(sep)
                .map(|p| Arc::new(Variable::String(p.to_string())))
                .collect(),
        )
    });
    string2_fn(rt, "equal_fold", |a, b| {
        Variable::Bool(a.to_lowercase() == b.to_lowercase())
    });
    string2_fn(rt, "regex_match", |re, x| {
        Variable::Bool(
            regex::Regex::new(re)
                .map(|r| r.is_match(x))
                .unwrap_or(false),
        )
    });
    string2_fn(rt, "pattern_match", |p, x| {
        Variable::Bool(wildmatch::WildMatch::new(p).matches(x))
    });
    string2_fn(rt, "compare", |a, b| {
        Variable::Number(serde_json::Number::from(match a.cmp(b) {
            std::cmp::Ordering::Less => -1,
            std::cmp::Ordering::Equal => 0,
            std::cmp::Ordering::Greater => 1,
        }))
    });
    string_fn(rt, "base64_encode", base64_encode);
    rt.register_function(
        "replace_all",
        Box::new(CustomFunction::new(
            Signature::new(
                vec![
                    ArgumentType::String,
                    ArgumentType::String,
                    ArgumentType::String,
                ],
                None,
            ),
            Box::new(|args: &[Rcvar], _ctx: &mut jmespath::Context<'_>| {
                let (x, from, to) = (
                    s(&args[0]).unwrap_or(""),
                    s(&args[1]).unwrap_or(""),
                    s(&args[2]).unwrap_or(""),
                );
                // The exact output size, charged before it is built (`replace` doubling).
                let out_len = if from.is_empty() {
                    x.chars().count() + 1
                } else {
                    x.matches(from).count()
                }
                .saturating_mul(to.len())
                .saturating_add(x.len());
                charge(out_len, "replace_all")?;
                Ok(Arc::new(Variable::String(x.replace(from, to))))
            }),
        )),
    );
    rt.register_function(
        "regex_replace_all",
        Box::new(CustomFunction::new(
            Signature::new(
                vec![
                    ArgumentType::String,
                    ArgumentType::Any,
                    ArgumentType::String,
                ],
                None,
            ),
            Box::new(|args: &[Rcvar], _ctx: &mut jmespath::Context<'_>| {
                let src = match &*args[1] {
                    Variable::String(x) => x.clone(),
                    other => to_json(other).to_string(),
                };
                let repl = s(&args[2]).unwrap_or("");
                charge(
                    (src.len() + 1)
                        .saturating_mul(repl.len())
                        .saturating_add(src.len()),
                    "regex_replace_all",
                )?;
                let out = match regex::Regex::new(s(&args[0]).unwrap_or("")) {
                    Ok(r) => r.replace_all(&src, s(&args[2]).unwrap_or("")).into_owned(),
                    Err(_) => src,
                };
                Ok(Arc::new(Variable::String(out)))
            }),
        )),
    );
    // Kyverno arithmetic over numbers and Kubernetes quantities (`divide('1Gi', '512Mi')` is 2).
    for (name, op) in [
        ("divide", arith_div as fn(f64, f64) -> Option<f64>),
        ("multiply", |a, b| Some(a * b)),
        ("add", |a, b| Some(a + b)),
        ("subtract", |a, b| Some(a - b)),
    ] {
        rt.register_function(
            name,
            Box::new(CustomFunction::new(
                Signature::new(vec![ArgumentType::Any, ArgumentType::Any], None),
                Box::new(move |args: &[Rcvar], _ctx: &mut jmespath::Context<'_>| {
                    let num = |v: &Rcvar| match &**v {
                        Variable::Number(n) => n.as_f64(),
                        Variable::String(x) => crate::cond::parse_quantity(x),
                        _ => None,
                    };
                    let out = match (num(&args[0]), num(&args[1])) {
                        (Some(a), Some(b)) => op(a, b)
                            .and_then(serde_json::Number::from_f64)
                            .map_or(Variable::Null, Variable::Number),
                        _ => Variable::Null,
                    };
                    Ok(Arc::new(out))
                }),
            )),
        );
    }
    rt.register_function(
        "truncate",
        Box::new(CustomFunction::new(
            Signature::new(vec![ArgumentType::String, ArgumentType::Number], None),
            Box::new(|args: &[Rcvar], _ctx: &mut jmespath::Context<'_>| {
                let x = s(&args[0]).unwrap_or("");
                let n = args[1].as_number().unwrap_or(0.0).max(0.0) as usize;
                Ok(Arc::new(Variable::String(x.chars().take(n).collect())))
            }),
        )),
    );
    rt.register_function(
        "parse_json",
        Box::new(CustomFunction::new(
            Signature::new(vec![ArgumentType::String], None),
            Box::new(|args: &[Rcvar], _ctx: &mut jmespath::Context<'_>| {
                let v: Value =
                    serde_json::from_str(s(&args[0]).unwrap_or("")).unwrap_or(Value::Null);
                Ok(to_var(&v))
            }),
        )),
    );
    rt.register_function(
        "label_match",
        Box::new(CustomFunction::new(
            Signature::new(vec![ArgumentType::Object, ArgumentType::Object], None),
            Box::new(|args: &[Rcvar], _ctx: &mut jmespath::Context<'_>| {
                let (Variable::Object(sel), Variable::Object(labels)) = (&*args[0], &*args[1])
                else {
                    return Ok(Arc::new(Variable::Bool(false)));
                };
                let ok = sel
                    .iter()
                    .all(|(k, v)| labels.get(k).is_some_and(|l| l == v));
                Ok(Arc::new(Variable::Bool(ok)))
            }),
        )),
    );
    rt.register_function(
        "items",
        Box::new(CustomFunction::new(
            Signature::new(
                vec![
                    ArgumentType::Object,
                    ArgumentType::String,
                    ArgumentType::String,
                ],
                None,
            ),
            Box::new(|args: &[Rcvar], _ctx: &mut jmespath::Context<'_>| {
                let Variable::Object(o) = &*args[0] else {
                    return Ok(Arc::new(Variable::Null));
                };
                let (kn, vn) = (s(&args[1]).unwrap_or("key"), s(&args[2]).unwrap_or("value"));
                let items = o
                    .iter()
                    .map(|(k, v)| {
                        let mut m = BTreeMap::new();
                        m.insert(kn.to_string(), Arc::new(Variable::String(k.clone())));
                        m.insert(vn.to_string(), v.clone());
                        Arc::new(Variable::Object(m))
                    })
                    .collect();
                Ok(Arc::new(Variable::Array(items)))
            }),
        )),
    );
}

fn arith_div(a: f64, b: f64) -> Option<f64> {
    (b != 0.0).then(|| a / b)
}

fn base64_encode(x: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = x.as_bytes();
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for chunk in b.chunks(3) {
        let n = (chunk[0] as u32) << 16
            | (*chunk.get(1).unwrap_or(&0) as u32) << 8
            | *chunk.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn whole_variable_keeps_type_and_embedded_becomes_text() {
        let ctx = Ctx::new(
            &json!({"request": {"object": {"spec": {"containers": [{"ports": [{"hostPort": 80}]}]}}, "operation": "CREATE"}}),
        );
        let v = substitute_str("{{ request.object.spec.[ephemeralContainers, initContainers, containers][].ports[].hostPort }}", &ctx).unwrap();
        assert_eq!(v, json!([80]));
        assert_eq!(
            substitute_str("op={{request.operation}}!", &ctx).unwrap(),
            json!("op=CREATE!")
        );
        assert_eq!(
            substitute_str("{{ request.operation || 'BACKGROUND' }}", &ctx).unwrap(),
            json!("CREATE")
        );
        assert_eq!(
            substitute_str("{{ request.nothing || 'BACKGROUND' }}", &ctx).unwrap(),
            json!("BACKGROUND")
        );
    }

    #[test]
    fn nested_variables_are_substituted_inner_first() {
        let ctx = Ctx::new(&json!({"element": {"limit": "2", "name": "web"}}));
        assert_eq!(
            substitute_str("{{ to_upper('{{ element.name }}') }}", &ctx).unwrap(),
            json!("WEB")
        );
        assert_eq!(
            substitute_str("{{ length('{{ element.missing || 'abc' }}') }}", &ctx).unwrap(),
            json!(3)
        );
    }

    #[test]
    fn kyverno_functions() {
        let ctx = Ctx::new(&json!({"element": {"drop": ["all", "net_raw"]}}));
        assert_eq!(
            substitute_str("{{ element.drop[].to_upper(@) || `[]` }}", &ctx).unwrap(),
            json!(["ALL", "NET_RAW"])
        );
        assert_eq!(base64_encode("ab"), "YWI=");
    }
}
