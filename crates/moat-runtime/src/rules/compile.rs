//! Compiles a parsed condition into an [`Expr`]: fields resolved to ids, right-hand sides parsed to the
//! field's type once (numbers, addresses, hash sets, substring finders, globs), macros inlined, and
//! `evt.type` tests turned into bit sets so the engine can index rules by event type.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;

use memchr::memmem::Finder;

use super::cond::{self, Ast, Lists, RawField, Rhs};
use super::evttype::{self, TypeSet};
use super::fields::{self, F, FieldRef, Kind, Transform, V};
use crate::event::Event;

/// A compiled condition.
#[derive(Debug)]
pub enum Expr {
    And(Box<[Expr]>),
    Or(Box<[Expr]>),
    Not(Box<Expr>),
    Const(bool),
    /// `evt.type` is one of the set.
    Type(TypeSet),
    Pred(Box<Pred>),
}

/// One comparison.
#[derive(Debug)]
pub struct Pred {
    pub field: FieldRef,
    pub multi: bool,
    pub op: Op,
}

#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Op {
    Exists,
    Str(StrOp),
    Int(IntOp),
    Bool { value: bool, negate: bool },
    Ip { nets: Vec<Net>, negate: bool },
    Val { cmp: Cmp, other: FieldRef },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    StartsWith,
    EndsWith,
}

#[derive(Debug)]
pub enum StrOp {
    Cmp(Cmp, Box<str>),
    In(StrSet),
    Contains(Finder<'static>),
    IContains(Box<[u8]>),
    BContains(Finder<'static>),
    StartsWith(Box<str>),
    BStartsWith(Box<[u8]>),
    EndsWith(Box<str>),
    Glob(Box<[u8]>),
    IGlob(Box<[u8]>),
    PMatch(Vec<Box<str>>),
    Regex(regex::Regex),
}

#[derive(Debug)]
pub enum IntOp {
    Cmp(Cmp, i64),
    In(Vec<i64>),
}

/// An address or network: `10.0.0.0/8`, `::1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl Net {
    pub fn parse(s: &str) -> Option<Net> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim().parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= max)?,
            None => max,
        };
        Some(Net { addr, prefix })
    }
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.prefix as u32)
                };
                u32::from(n) & mask == u32::from(i) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.prefix as u32)
                };
                u128::from(n) & mask == u128::from(i) & mask
            }
            (IpAddr::V4(_), IpAddr::V6(i)) => i
                .to_ipv4_mapped()
                .is_some_and(|v4| self.contains(IpAddr::V4(v4))),
            _ => false,
        }
    }
}

/// FxHash: short keys, no DoS concern (keys come from rule files, not events).
#[derive(Default, Clone, Copy)]
pub struct Fx(u64);
impl Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(b))
                .wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A set of strings: linear for a handful, hashed beyond.
#[derive(Debug)]
pub enum StrSet {
    Small(Vec<Box<str>>),
    Hash(HashSet<Box<str>, BuildHasherDefault<Fx>>),
}

impl StrSet {
    fn new(items: Vec<String>) -> StrSet {
        if items.len() <= 6 {
            StrSet::Small(items.into_iter().map(Into::into).collect())
        } else {
            StrSet::Hash(items.into_iter().map(Into::into).collect())
        }
    }
    #[inline]
    pub fn contains(&self, s: &str) -> bool {
        match self {
            StrSet::Small(v) => v.iter().any(|x| &**x == s),
            StrSet::Hash(h) => h.contains(s),
        }
    }
}

/// A compile error (unknown field, bad value, undefined macro...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileError(pub String);

impl std::fmt::Display for CompileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the compiler needs: macros (name → condition text) and lists.
pub struct Scope<'a> {
    pub macros: &'a HashMap<String, String>,
    pub lists: &'a Lists,
    cache: HashMap<String, Result<Ast, CompileError>>,
    /// Nodes compiled for the current condition: bounds macro inlining blow-up.
    nodes: usize,
    /// Current nesting of the condition being compiled, macros inlined (bounded by [`MAX_DEPTH`]).
    depth: usize,
}

/// Deepest nesting of a condition once its macros are inlined. Falco's own rules stay under 40 levels;
/// the bound keeps compiling and evaluating (both recursive) far from the end of a thread's stack.
pub const MAX_DEPTH: usize = 256;

impl<'a> Scope<'a> {
    pub fn new(macros: &'a HashMap<String, String>, lists: &'a Lists) -> Self {
        Scope {
            macros,
            lists,
            cache: HashMap::new(),
            nodes: 0,
            depth: 0,
        }
    }

    /// Parses (once) the condition of a macro.
    pub fn macro_ast(&mut self, name: &str) -> Result<Ast, CompileError> {
        if let Some(r) = self.cache.get(name) {
            return r.clone();
        }
        let r = match self.macros.get(name) {
            None => Err(CompileError(format!("undefined macro '{name}'"))),
            Some(text) => cond::parse(text, self.lists)
                .map_err(|e| CompileError(format!("macro '{name}': syntax error: {e}"))),
        };
        self.cache.insert(name.to_string(), r.clone());
        r
    }

    /// Compiles a condition text.
    pub fn compile_text(&mut self, text: &str) -> Result<Expr, CompileError> {
        let ast = cond::parse(text, self.lists)
            .map_err(|e| CompileError(format!("syntax error: {e}")))?;
        self.compile(&ast)
    }

    pub fn compile(&mut self, ast: &Ast) -> Result<Expr, CompileError> {
        let mut stack = Vec::new();
        self.nodes = 0;
        self.depth = 0;
        let e = self.compile_in(ast, &mut stack)?;
        Ok(simplify(e))
    }

    fn compile_in(&mut self, ast: &Ast, stack: &mut Vec<String>) -> Result<Expr, CompileError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(CompileError(format!(
                "condition nests deeper than {MAX_DEPTH} levels once macros are inlined{}",
                stack
                    .last()
                    .map(|m| format!(" (in macro '{m}')"))
                    .unwrap_or_default()
            )));
        }
        let r = self.compile_node(ast, stack);
        self.depth -= 1;
        r
    }

    fn compile_node(&mut self, ast: &Ast, stack: &mut Vec<String>) -> Result<Expr, CompileError> {
        self.nodes += 1;
        if self.nodes > 1_000_000 {
            return Err(CompileError(
                "condition expands to more than 1000000 nodes (macro blow-up)".into(),
            ));
        }
        Ok(match ast {
            // Plain loops, not iterator adapters: each adapter is a stack frame per level in debug builds.
            Ast::And(v) | Ast::Or(v) => {
                let mut items = Vec::with_capacity(v.len());
                for a in v {
                    items.push(self.compile_in(a, stack)?);
                }
                if matches!(ast, Ast::And(_)) {
                    Expr::And(items.into())
                } else {
                    Expr::Or(items.into())
                }
            }
            Ast::Not(a) => Expr::Not(Box::new(self.compile_in(a, stack)?)),
            Ast::Macro(m) => {
                if stack.iter().any(|s| s == m) || stack.len() > 100 {
                    return Err(CompileError(format!("macro '{m}' references itself")));
                }
                let inner = self.macro_ast(m)?;
                stack.push(m.clone());
                let r = self.compile_in(&inner, stack).map_err(|e| {
                    if e.0.starts_with("macro '") {
                        e
                    } else {
                        CompileError(format!("macro '{m}': {}", e.0))
                    }
                });
                stack.pop();
                r?
            }
            Ast::Check { field, op, rhs } => compile_check(field, op, rhs)?,
        })
    }
}

/// Resolves a written field (with transformer) to a [`FieldRef`].
pub fn resolve_field(f: &RawField) -> Result<FieldRef, CompileError> {
    let mut r = fields::lookup(&f.name, f.arg.as_deref()).map_err(|e| CompileError(e.0))?;
    if let Some(t) = &f.transform {
        r.transform = Some(match t.as_str() {
            "tolower" => Transform::Lower,
            "toupper" => Transform::Upper,
            "basename" => Transform::Basename,
            "len" => Transform::Len,
            other => {
                return Err(CompileError(format!(
                    "transformer '{other}' is not provided by moat"
                )));
            }
        });
    }
    Ok(r)
}

fn values(rhs: &Rhs) -> Vec<String> {
    match rhs {
        Rhs::Value(v) => vec![v.clone()],
        Rhs::List(v) => v.clone(),
        _ => vec![],
    }
}

fn cmp_of(op: &str) -> Option<Cmp> {
    Some(match op {
        "=" | "==" => Cmp::Eq,
        "!=" => Cmp::Ne,
        "<" => Cmp::Lt,
        "<=" => Cmp::Le,
        ">" => Cmp::Gt,
        ">=" => Cmp::Ge,
        "contains" => Cmp::Contains,
        "startswith" => Cmp::StartsWith,
        "endswith" => Cmp::EndsWith,
        _ => return None,
    })
}

#[inline(never)]
fn compile_check(rf: &RawField, op: &str, rhs: &Rhs) -> Result<Expr, CompileError> {
    let field = resolve_field(rf)?;
    let multi = field.is_multi();
    let name = &field.text;
    if op == "exists" {
        return Ok(pred(field, multi, Op::Exists));
    }
    if let Rhs::Field(other) = rhs {
        let other = resolve_field(other)?;
        let cmp = cmp_of(op)
            .ok_or_else(|| CompileError(format!("operator '{op}' cannot compare with val()")))?;
        return Ok(pred(field, multi, Op::Val { cmp, other }));
    }
    let is_list_op = matches!(op, "in" | "intersects" | "pmatch");
    match (is_list_op, rhs) {
        (true, Rhs::List(_)) | (false, Rhs::Value(_)) => {}
        (true, _) => {
            return Err(CompileError(format!(
                "'{name} {op}' needs a (list) of values"
            )));
        }
        (false, _) => {
            return Err(CompileError(format!(
                "'{name} {op}' needs a single value, not a list"
            )));
        }
    }
    let vals = values(rhs);
    let one = || vals.first().cloned().unwrap_or_default();

    // evt.type: bit sets.
    if field.id == F::EvtType
        && field.transform.is_none()
        && matches!(op, "=" | "==" | "!=" | "in" | "intersects")
    {
        let mut set = TypeSet::default();
        let mut all_known = true;
        for v in &vals {
            let id = evttype::id_of(v);
            if id == 0 {
                all_known = false;
            }
            set.insert(id);
        }
        if all_known {
            return Ok(if op == "!=" {
                Expr::Not(Box::new(Expr::Type(set)))
            } else {
                Expr::Type(set)
            });
        }
    }

    let bad = |what: &str, v: &str| CompileError(format!("'{name} {op} {v}': {what}"));
    let o = match field.kind() {
        Kind::Str => Op::Str(match op {
            "=" | "==" | "!=" | "<" | "<=" | ">" | ">=" => {
                StrOp::Cmp(cmp_of(op).unwrap_or(Cmp::Eq), one().into())
            }
            "in" | "intersects" => StrOp::In(StrSet::new(vals.clone())),
            "contains" => StrOp::Contains(Finder::new(one().as_bytes()).into_owned()),
            "icontains" => StrOp::IContains(one().to_ascii_lowercase().into_bytes().into()),
            "bcontains" => StrOp::BContains(
                Finder::new(&hex_bytes(&one()).ok_or_else(|| bad("not hex", &one()))?).into_owned(),
            ),
            "startswith" => StrOp::StartsWith(one().into()),
            "bstartswith" => StrOp::BStartsWith(
                hex_bytes(&one())
                    .ok_or_else(|| bad("not hex", &one()))?
                    .into(),
            ),
            "endswith" => StrOp::EndsWith(one().into()),
            "glob" => StrOp::Glob(one().into_bytes().into()),
            "iglob" => StrOp::IGlob(one().to_ascii_lowercase().into_bytes().into()),
            "pmatch" => StrOp::PMatch(
                vals.iter()
                    .map(|v| v.trim_end_matches('/').into())
                    .collect(),
            ),
            "regex" => StrOp::Regex(
                regex::Regex::new(&one()).map_err(|e| bad(&format!("bad regex: {e}"), &one()))?,
            ),
            other => {
                return Err(CompileError(format!(
                    "operator '{other}' not supported on '{name}'"
                )));
            }
        }),
        Kind::Int => {
            let nums = vals
                .iter()
                .map(|v| parse_int(v).ok_or_else(|| bad("expected a number", v)))
                .collect::<Result<Vec<_>, _>>()?;
            Op::Int(match op {
                "in" | "intersects" => IntOp::In(nums),
                _ => match cmp_of(op) {
                    Some(c @ (Cmp::Eq | Cmp::Ne | Cmp::Lt | Cmp::Le | Cmp::Gt | Cmp::Ge)) => {
                        IntOp::Cmp(c, nums.first().copied().unwrap_or(0))
                    }
                    _ => {
                        return Err(CompileError(format!(
                            "operator '{op}' not supported on numeric '{name}'"
                        )));
                    }
                },
            })
        }
        Kind::Bool => {
            let b = match one().to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                v => return Err(bad("expected true or false", v)),
            };
            match op {
                "=" | "==" => Op::Bool {
                    value: b,
                    negate: false,
                },
                "!=" => Op::Bool {
                    value: b,
                    negate: true,
                },
                _ => {
                    return Err(CompileError(format!(
                        "operator '{op}' not supported on boolean '{name}'"
                    )));
                }
            }
        }
        Kind::Ip | Kind::Net => {
            let nets = vals
                .iter()
                .map(|v| Net::parse(v).ok_or_else(|| bad("expected an address or network", v)))
                .collect::<Result<Vec<_>, _>>()?;
            match op {
                "=" | "==" | "in" | "intersects" => Op::Ip {
                    nets,
                    negate: false,
                },
                "!=" => Op::Ip { nets, negate: true },
                _ => {
                    return Err(CompileError(format!(
                        "operator '{op}' not supported on address '{name}'"
                    )));
                }
            }
        }
    };
    if matches!(
        field.id,
        F::FdSipName | F::FdRipName | F::FdCipName | F::FdLipName
    ) {
        vals.iter().for_each(|v| super::dns::register(v));
    }
    Ok(pred(field, multi, o))
}

fn pred(field: FieldRef, multi: bool, op: Op) -> Expr {
    Expr::Pred(Box::new(Pred { field, multi, op }))
}

fn parse_int(v: &str) -> Option<i64> {
    let v = v.trim();
    if let Some(h) = v.strip_prefix("0x") {
        return i64::from_str_radix(h, 16).ok();
    }
    v.parse::<i64>()
        .ok()
        .or_else(|| v.parse::<u64>().ok().map(|u| u as i64))
}

fn hex_bytes(s: &str) -> Option<Vec<u8>> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Flattens nested and/or and folds constants.
fn simplify(e: Expr) -> Expr {
    match e {
        Expr::And(v) => {
            let mut out = Vec::new();
            for x in v.into_vec().into_iter().map(simplify) {
                match x {
                    Expr::Const(true) => {}
                    Expr::Const(false) => return Expr::Const(false),
                    Expr::And(inner) => out.extend(inner.into_vec()),
                    x => out.push(x),
                }
            }
            match out.len() {
                0 => Expr::Const(true),
                1 => out.pop().unwrap_or(Expr::Const(true)),
                _ => Expr::And(out.into()),
            }
        }
        Expr::Or(v) => {
            let mut out = Vec::new();
            for x in v.into_vec().into_iter().map(simplify) {
                match x {
                    Expr::Const(false) => {}
                    Expr::Const(true) => return Expr::Const(true),
                    Expr::Or(inner) => out.extend(inner.into_vec()),
                    x => out.push(x),
                }
            }
            match out.len() {
                0 => Expr::Const(false),
                1 => out.pop().unwrap_or(Expr::Const(false)),
                _ => Expr::Or(out.into()),
            }
        }
        Expr::Not(x) => match simplify(*x) {
            Expr::Const(b) => Expr::Const(!b),
            Expr::Not(inner) => *inner,
            x => Expr::Not(Box::new(x)),
        },
        x => x,
    }
}

/// The event types an expression can match (all when unconstrained).
pub fn types_of(e: &Expr) -> TypeSet {
    match e {
        Expr::And(v) => v
            .iter()
            .fold(TypeSet::all(), |acc, x| acc.intersect(types_of(x))),
        Expr::Or(v) => v
            .iter()
            .fold(TypeSet::default(), |acc, x| acc.union(types_of(x))),
        Expr::Not(x) => match &**x {
            Expr::Type(s) => s.complement(),
            _ => TypeSet::all(),
        },
        Expr::Type(s) => *s,
        Expr::Const(false) => TypeSet::default(),
        _ => TypeSet::all(),
    }
}

/// Evaluates an expression on a prepared event.
#[inline]
pub fn eval(e: &Expr, ev: &Event) -> bool {
    match e {
        Expr::And(v) => v.iter().all(|x| eval(x, ev)),
        Expr::Or(v) => v.iter().any(|x| eval(x, ev)),
        Expr::Not(x) => !eval(x, ev),
        Expr::Const(b) => *b,
        Expr::Type(s) => s.contains(ev.type_id()),
        Expr::Pred(p) => eval_pred(p, ev),
    }
}

fn eval_pred(p: &Pred, ev: &Event) -> bool {
    if p.multi {
        // Any-of, as Falco: "proc.aname != x" holds when some ancestor differs.
        return fields::any_value(ev, &p.field, |v| matches_value(&p.op, v, ev));
    }
    matches_value(&p.op, fields::extract(ev, &p.field), ev)
}

fn matches_value(op: &Op, v: V<'_>, ev: &Event) -> bool {
    match (op, v) {
        (_, V::None) => false,
        (Op::Exists, _) => true,
        (Op::Str(o), V::S(s)) => str_match(o, &s),
        (Op::Str(o), V::Bytes(b)) => bytes_match(o, b),
        (Op::Str(o), other) => str_match(o, &other.render()),
        (Op::Int(o), V::I(n)) => match o {
            IntOp::Cmp(c, x) => cmp_ord(*c, n.cmp(x)),
            IntOp::In(xs) => xs.contains(&n),
        },
        (Op::Bool { value, negate }, V::B(b)) => (b == *value) != *negate,
        (Op::Ip { nets, negate }, V::Ip(ip)) => nets.iter().any(|n| n.contains(ip)) != *negate,
        (Op::Val { cmp, other }, v) => {
            let o = fields::extract(ev, other);
            match (v, o) {
                (_, V::None) => false,
                (V::I(a), V::I(b)) => cmp_ord(*cmp, a.cmp(&b)),
                (a, b) => {
                    let (a, b) = (a.render(), b.render());
                    match cmp {
                        Cmp::Contains => a.contains(&b),
                        Cmp::StartsWith => a.starts_with(&b),
                        Cmp::EndsWith => a.ends_with(&b),
                        c => cmp_ord(*c, a.as_str().cmp(b.as_str())),
                    }
                }
            }
        }
        _ => false,
    }
}

fn cmp_ord(c: Cmp, o: std::cmp::Ordering) -> bool {
    use std::cmp::Ordering::*;
    match c {
        Cmp::Eq => o == Equal,
        Cmp::Ne => o != Equal,
        Cmp::Lt => o == Less,
        Cmp::Le => o != Greater,
        Cmp::Gt => o == Greater,
        Cmp::Ge => o != Less,
        _ => false,
    }
}

#[inline]
fn str_match(o: &StrOp, s: &str) -> bool {
    match o {
        StrOp::Cmp(Cmp::Eq, x) => s == &**x,
        StrOp::Cmp(Cmp::Ne, x) => s != &**x,
        StrOp::Cmp(c, x) => cmp_ord(*c, s.cmp(x)),
        StrOp::In(set) => set.contains(s),
        StrOp::Contains(f) | StrOp::BContains(f) => f.find(s.as_bytes()).is_some(),
        StrOp::IContains(n) => icontains(s.as_bytes(), n),
        StrOp::StartsWith(x) => s.starts_with(&**x),
        StrOp::BStartsWith(x) => s.as_bytes().starts_with(x),
        StrOp::EndsWith(x) => s.ends_with(&**x),
        StrOp::Glob(p) => glob(p, s.as_bytes()),
        StrOp::IGlob(p) => glob(p, s.to_ascii_lowercase().as_bytes()),
        StrOp::PMatch(prefixes) => prefixes.iter().any(|p| path_prefix(p, s)),
        StrOp::Regex(r) => r.is_match(s),
    }
}

/// Byte-level operators on a data buffer; text operators see its printable rendering.
fn bytes_match(o: &StrOp, b: &[u8]) -> bool {
    match o {
        StrOp::BContains(f) => f.find(b).is_some(),
        StrOp::BStartsWith(x) => b.starts_with(x),
        other => str_match(other, &V::Bytes(b).render()),
    }
}

/// ASCII case-insensitive substring search; `needle` is already lower case.
fn icontains(h: &[u8], needle: &[u8]) -> bool {
    let Some(&first) = needle.first() else {
        return true;
    };
    if h.len() < needle.len() {
        return false;
    }
    let last_start = h.len() - needle.len();
    let up = first.to_ascii_uppercase();
    let mut from = 0;
    while from <= last_start {
        let Some(off) = memchr::memchr2(first, up, &h[from..=last_start]) else {
            return false;
        };
        let at = from + off;
        if h[at..at + needle.len()].eq_ignore_ascii_case(needle) {
            return true;
        }
        from = at + 1;
    }
    false
}

/// `pmatch`: `path` equals `prefix` or lies below it (component-wise, so /etcx is not below /etc).
fn path_prefix(prefix: &str, path: &str) -> bool {
    if prefix.is_empty() {
        return path.starts_with('/');
    }
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Shell-style glob: `*` any run (including `/`), `?` one byte, `[abc]`/`[a-z]`/`[!x]` classes.
pub fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() {
            match p[pi] {
                b'*' => {
                    star = Some((pi, si));
                    pi += 1;
                    continue;
                }
                b'?' => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, next)) = class(&p[pi..], s[si])
                        && matched
                    {
                        pi += next;
                        si += 1;
                        continue;
                    }
                }
                b'\\' if pi + 1 < p.len() && p[pi + 1] == s[si] => {
                    pi += 2;
                    si += 1;
                    continue;
                }
                c if c == s[si] => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, ss)) => {
                pi = sp + 1;
                si = ss + 1;
                star = Some((sp, ss + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|c| *c == b'*')
}

/// Matches `c` against a `[...]` class at the start of `p`; returns (matched, class length).
fn class(p: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let neg = matches!(p.get(1), Some(b'!' | b'^'));
    if neg {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < p.len() {
        if p[i] == b']' && !first {
            return Some((matched != neg, i + 1));
        }
        first = false;
        if i + 2 < p.len() && p[i + 1] == b'-' && p[i + 2] != b']' {
            if p[i] <= c && c <= p[i + 2] {
                matched = true;
            }
            i += 3;
        } else {
            if p[i] == c {
                matched = true;
            }
            i += 1;
        }
    }
    None
}

/// True when the expression reads a field with the given id (for reports and tests).
pub fn uses_field(e: &Expr, id: F) -> bool {
    match e {
        Expr::And(v) | Expr::Or(v) => v.iter().any(|x| uses_field(x, id)),
        Expr::Not(x) => uses_field(x, id),
        Expr::Pred(p) => {
            p.field.id == id || matches!(&p.op, Op::Val { other, .. } if other.id == id)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_semantics() {
        assert!(glob(b"/home/*/.ssh/*", b"/home/bob/.ssh/id_rsa"));
        assert!(glob(b"*../*../*", b"/var/www/../../etc/passwd"));
        assert!(!glob(b"*../*../*", b"/var/www/../etc/passwd"));
        assert!(glob(b"a?c", b"abc"));
        assert!(glob(b"[a-c]x", b"bx"));
        assert!(!glob(b"[!a-c]x", b"bx"));
        assert!(glob(b"*", b""));
        assert!(!glob(b"a", b""));
        assert!(glob(b"**a**", b"xxa"));
    }

    #[test]
    fn icontains_and_pmatch() {
        assert!(icontains(b"grep -r BEGIN Private key", b"begin private"));
        assert!(!icontains(b"grep", b"grepx"));
        assert!(icontains(b"x", b""));
        assert!(path_prefix("/etc", "/etc/passwd"));
        assert!(path_prefix("/etc", "/etc"));
        assert!(!path_prefix("/etc", "/etcx/passwd"));
    }

    #[test]
    fn nets() {
        let n = Net::parse("10.0.0.0/8").unwrap();
        assert!(n.contains("10.1.2.3".parse().unwrap()));
        assert!(!n.contains("11.1.2.3".parse().unwrap()));
        assert!(Net::parse("1.2.3.4/33").is_none());
        assert!(Net::parse("::1").unwrap().contains("::1".parse().unwrap()));
        assert!(
            Net::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
    }

    #[test]
    fn hex() {
        assert_eq!(hex_bytes("7f454c46"), Some(vec![0x7f, b'E', b'L', b'F']));
        assert_eq!(hex_bytes("7f4"), None);
    }
}
