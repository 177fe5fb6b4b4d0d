//! Evaluation budgets for CEL and JMESPath (issue 17).
//!
//! **CEL.** The `cel` crate has no cost accounting, so moat does what Kubernetes' estimator does
//! before evaluation: a worst-case *cost* (operations) and *size* (elements plus string bytes) of
//! every expression, computed from its syntax tree, the measured size of the request's objects and
//! the sizes of the `variables` bound so far. An expression whose estimate passes the per-expression
//! limit, or an evaluation whose expressions together pass the runtime budget, is not run: the rule
//! errors with the expression and the limit (in the webhook, the request is answered as the failure
//! policy says). A variable that doubles another 45 times, a comprehension over 10^8 elements or a
//! nested list explosion is refused before anything is allocated.
//!
//! **JMESPath.** Kyverno's functions that build strings and lists (`join`, `replace_all`,
//! `to_string`, ...) charge what they would produce, before producing it, to a per-search budget;
//! the result of a search is converted under the same budget (a `[@, @]` nested 40 times shares
//! one value 2^40 times and would expand on conversion). Context variables that double each other
//! stop at the first search over the budget.

use std::cell::Cell;

use cel::Value as CelValue;
use cel::common::ast::{EntryExpr, Expr, IdedExpr, LiteralValue};

/// A limit from the environment, or `default`.
fn env_limit(var: &str, default: u64) -> u64 {
    std::env::var(var)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(default)
}

/// Estimated cost of one CEL expression (`MOAT_CEL_COST_LIMIT`).
pub const CEL_COST_LIMIT: u64 = 100_000_000;
/// Estimated size of one CEL value, elements plus string bytes (`MOAT_CEL_SIZE_LIMIT`); a 3 MiB
/// request object fits.
pub const CEL_SIZE_LIMIT: u64 = 4 << 20;
/// Estimated cost of all expressions of one evaluation of a rule or policy (`MOAT_CEL_RUNTIME_BUDGET`).
pub const CEL_RUNTIME_BUDGET: u64 = 1_000_000_000;
/// Units (bytes of strings, elements of lists and objects) one JMESPath search may produce
/// (`MOAT_JMESPATH_BUDGET`).
pub const JMESPATH_BUDGET: u64 = 16 << 20;
/// Deepest nesting of a JMESPath expression or a CEL expression tree walked here.
pub const MAX_DEPTH: usize = 256;

pub(crate) struct Limits {
    pub cost: f64,
    pub size: f64,
    pub runtime: f64,
}

/// The limits, read from the environment once per process (reading it per expression was a
/// measurable share of every CEL evaluation).
pub(crate) fn cel_limits() -> &'static Limits {
    static LIMITS: std::sync::LazyLock<Limits> = std::sync::LazyLock::new(|| Limits {
        cost: env_limit("MOAT_CEL_COST_LIMIT", CEL_COST_LIMIT) as f64,
        size: env_limit("MOAT_CEL_SIZE_LIMIT", CEL_SIZE_LIMIT) as f64,
        runtime: env_limit("MOAT_CEL_RUNTIME_BUDGET", CEL_RUNTIME_BUDGET) as f64,
    });
    &LIMITS
}

thread_local! {
    /// Measured size of the request's objects, for the evaluation running on this thread.
    static INPUT: Cell<f64> = const { Cell::new(1.0) };
    /// Estimated cost spent by this evaluation's expressions.
    static SPENT: Cell<f64> = const { Cell::new(0.0) };
    /// Estimated sizes of the `variables` bound so far (name, size).
    static VARS: std::cell::RefCell<Vec<(String, f64)>> = const { std::cell::RefCell::new(Vec::new()) };
    /// JMESPath units left in the current search.
    static JMES_LEFT: Cell<u64> = const { Cell::new(u64::MAX) };
    /// Why the current search went over its budget.
    static JMES_OVER: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Size of a CEL value: elements plus string/bytes length, at most `cap` (counting stops there).
pub(crate) fn cel_value_size(v: &CelValue, cap: f64) -> f64 {
    fn walk(v: &CelValue, acc: &mut f64, cap: f64) {
        if *acc > cap {
            return;
        }
        *acc += 1.0;
        match v {
            CelValue::String(s) => *acc += s.len() as f64,
            CelValue::Bytes(b) => *acc += b.len() as f64,
            CelValue::List(l) => {
                for x in l.iter() {
                    walk(x, acc, cap);
                }
            }
            CelValue::Map(m) => {
                for (_, x) in m.map.iter() {
                    walk(x, acc, cap);
                }
            }
            _ => {}
        }
    }
    let mut acc = 0.0;
    walk(v, &mut acc, cap);
    acc
}

/// The measured size of a request's values (at least 1), the estimator's input size.
pub(crate) fn cel_input_size(inputs: &[&CelValue]) -> f64 {
    inputs
        .iter()
        .map(|v| cel_value_size(v, 1e12))
        .sum::<f64>()
        .max(1.0)
}

/// Starts one evaluation: the measured input size, nothing spent, no variables.
#[cfg(test)]
pub(crate) fn cel_begin(inputs: &[&CelValue]) {
    cel_begin_sized(cel_input_size(inputs));
}

/// Starts one evaluation over inputs of measured size `n` (measured once per request, shared by
/// the policies that judge it).
pub(crate) fn cel_begin_sized(n: f64) {
    INPUT.with(|c| c.set(n));
    SPENT.with(|c| c.set(0.0));
    VARS.with(|v| v.borrow_mut().clear());
}

/// Records a bound variable's measured size.
pub(crate) fn cel_variable(name: &str, value: &CelValue) {
    let s = cel_value_size(value, 1e12);
    VARS.with(|v| v.borrow_mut().push((name.to_string(), s)));
}

/// Records a variable that was refused: its uses are estimated as over the limit.
pub(crate) fn cel_variable_refused(name: &str) {
    VARS.with(|v| v.borrow_mut().push((name.to_string(), f64::INFINITY)));
}

/// Checks one expression before it runs; the error names the expression and the limit.
pub(crate) fn cel_check(expr: &IdedExpr, src: &str) -> Result<(), String> {
    let limits = cel_limits();
    let input = INPUT.with(|c| c.get());
    let est = VARS.with(|v| {
        let vars = v.borrow();
        let mut env = Scope {
            input,
            vars: &vars,
            locals: Vec::new(),
        };
        estimate(expr, &mut env, 0)
    });
    // Only an error shows the expression: building it for every check was a cost of its own.
    let shown = || -> String { src.trim().chars().take(120).collect() };
    if est.size > limits.size {
        return Err(format!(
            "CEL expression `{}`: estimated result size {} is over the limit {} (MOAT_CEL_SIZE_LIMIT); not evaluated",
            shown(),
            fmt(est.size),
            limits.size
        ));
    }
    if est.cost > limits.cost {
        return Err(format!(
            "CEL expression `{}`: estimated cost {} is over the per-expression limit {} (MOAT_CEL_COST_LIMIT); not evaluated",
            shown(),
            fmt(est.cost),
            limits.cost
        ));
    }
    let spent = SPENT.with(|c| {
        let s = c.get() + est.cost;
        c.set(s);
        s
    });
    if spent > limits.runtime {
        return Err(format!(
            "CEL expression `{}`: the evaluation's estimated cost {} passes the runtime budget {} (MOAT_CEL_RUNTIME_BUDGET); not evaluated",
            shown(),
            fmt(spent),
            limits.runtime
        ));
    }
    Ok(())
}

fn fmt(x: f64) -> String {
    if x.is_finite() && x < 1e18 {
        format!("{}", x as u64)
    } else {
        "unbounded".into()
    }
}

struct Scope<'a, 'e> {
    input: f64,
    vars: &'a [(String, f64)],
    /// Comprehension variables in scope (name, size), named by the syntax tree.
    locals: Vec<(&'e str, f64)>,
}

impl Scope<'_, '_> {
    fn ident(&self, name: &str) -> f64 {
        if let Some((_, s)) = self.locals.iter().rev().find(|(n, _)| *n == name) {
            return *s;
        }
        match name {
            "variables" => self.vars.iter().map(|(_, s)| *s).sum::<f64>() + 1.0,
            _ => self.input,
        }
    }
    fn variable(&self, name: &str) -> f64 {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map_or(self.input, |(_, s)| *s)
    }
}

#[derive(Clone, Copy, Debug)]
struct Est {
    cost: f64,
    size: f64,
}

const UNBOUNDED: Est = Est {
    cost: f64::INFINITY,
    size: f64::INFINITY,
};

fn estimate<'e>(e: &'e IdedExpr, sc: &mut Scope<'_, 'e>, depth: usize) -> Est {
    if depth > MAX_DEPTH {
        return UNBOUNDED;
    }
    let d = depth + 1;
    match &e.expr {
        Expr::Unspecified => Est {
            cost: 1.0,
            size: 1.0,
        },
        Expr::Literal(l) => Est {
            cost: 1.0,
            size: 1.0
                + match l {
                    LiteralValue::String(s) => s.len() as f64,
                    LiteralValue::Bytes(b) => b.len() as f64,
                    _ => 0.0,
                },
        },
        Expr::Ident(n) => Est {
            cost: 1.0,
            size: sc.ident(n),
        },
        Expr::Select(s) => {
            if let Expr::Ident(root) = &s.operand.expr
                && root == "variables"
                && !sc.locals.iter().any(|(n, _)| *n == "variables")
            {
                return Est {
                    cost: 1.0,
                    size: sc.variable(&s.field),
                };
            }
            let o = estimate(&s.operand, sc, d);
            Est {
                cost: o.cost + 1.0,
                size: if s.test { 1.0 } else { o.size },
            }
        }
        Expr::List(l) => {
            let mut out = Est {
                cost: 1.0,
                size: 1.0,
            };
            for x in &l.elements {
                let x = estimate(x, sc, d);
                out.cost += x.cost + 1.0;
                out.size += x.size;
            }
            out
        }
        Expr::Map(m) => entries(&m.entries, sc, d),
        Expr::Struct(s) => entries(&s.entries, sc, d),
        Expr::Call(c) => {
            // One pass over the target and arguments, keeping what the cases below need (a list
            // of the parts per call node was an allocation per node per check).
            let (mut cost, mut sizes) = (0.0, 0.0);
            let mut first_cost = 0.0;
            let (mut rest_cost, mut rest_size) = (0.0f64, 1.0f64);
            let mut part_sizes = [1.0f64; 3];
            for (i, x) in c.target.as_deref().into_iter().chain(&c.args).enumerate() {
                let p = estimate(x, sc, d);
                cost += p.cost;
                sizes += p.size;
                if let Some(slot) = part_sizes.get_mut(i) {
                    *slot = p.size;
                }
                if i == 0 {
                    first_cost = p.cost;
                } else {
                    rest_cost = rest_cost.max(p.cost);
                    rest_size = rest_size.max(p.size);
                }
            }
            let s = |i: usize| part_sizes[i];
            match c.func_name.as_str() {
                "_+_" => Est {
                    cost: cost + sizes,
                    size: sizes,
                },
                "_?_:_" => Est {
                    cost: first_cost + rest_cost,
                    size: rest_size,
                },
                "_[_]" | "_[?_]" => Est {
                    cost: cost + 1.0,
                    size: s(0),
                },
                // `s.replace(old, new)`: every character of `s` may become `new`.
                "replace" => {
                    let size = s(0) * s(2).max(1.0);
                    Est {
                        cost: cost + size,
                        size,
                    }
                }
                // `list.join(sep)`: the strings and a separator between each two.
                "join" => {
                    let size = s(0) * (1.0 + s(1));
                    Est {
                        cost: cost + size,
                        size,
                    }
                }
                "split" | "lowerAscii" | "upperAscii" | "trim" | "reverse" | "string" | "bytes"
                | "substring" | "format" | "quote" => Est {
                    cost: cost + sizes,
                    size: sizes * 2.0,
                },
                _ => Est {
                    cost: cost + sizes,
                    size: if is_scalar_fn(&c.func_name) {
                        1.0
                    } else {
                        sizes
                    },
                },
            }
        }
        Expr::Comprehension(c) => {
            let range = estimate(&c.iter_range, sc, d);
            let init = estimate(&c.accu_init, sc, d);
            let r = range.size;
            let base = sc.locals.len();
            // The step with the element at its largest (the whole range) and at its smallest: the
            // elements' sizes add up to the range's, so with a step affine in its element the
            // whole loop is step(r) + (r - 1) * step(1), not r * step(r).
            let step_at = |elem: f64, accu: f64, sc: &mut Scope<'_, 'e>| {
                sc.locals.truncate(base);
                sc.locals.push((c.iter_var.as_str(), elem));
                if let Some(v2) = &c.iter_var2 {
                    sc.locals.push((v2.as_str(), elem));
                }
                sc.locals.push((c.accu_var.as_str(), accu));
                let step = estimate(&c.loop_step, sc, d);
                let cond = estimate(&c.loop_cond, sc, d);
                (step, cond)
            };
            let (big, big_cond) = step_at(r, init.size, sc);
            let (small, small_cond) = step_at(1.0, init.size, sc);
            let a2 = 2.0 * init.size + 1.0;
            let (big2, _) = step_at(r, a2, sc);
            // How the accumulator grows per iteration: by an amount (map, filter) or by a factor.
            let coef = (big2.size - big.size) / (a2 - init.size);
            let n = (r - 1.0).max(0.0);
            let accu = if coef > 1.0 + 1e-9 {
                if r > 2000.0 {
                    f64::INFINITY
                } else {
                    init.size * coef.powf(r)
                }
            } else {
                let grow_big = (big.size - coef * init.size).max(0.0);
                let grow_small = (small.size - coef * init.size).max(0.0);
                init.size + grow_big + n * grow_small
            };
            let loop_cost = big.cost + big_cond.cost + n * (small.cost + small_cond.cost + 1.0);
            sc.locals.truncate(base);
            sc.locals.push((c.accu_var.as_str(), accu));
            let result = estimate(&c.result, sc, d);
            sc.locals.truncate(base);
            Est {
                cost: range.cost + init.cost + loop_cost + result.cost,
                size: result.size,
            }
        }
    }
}

fn entries<'e>(es: &'e [cel::common::ast::IdedEntryExpr], sc: &mut Scope<'_, 'e>, d: usize) -> Est {
    let mut out = Est {
        cost: 1.0,
        size: 1.0,
    };
    for e in es {
        let (a, b) = match &e.expr {
            EntryExpr::StructField(f) => (
                Est {
                    cost: 1.0,
                    size: f.field.len() as f64,
                },
                estimate(&f.value, sc, d),
            ),
            EntryExpr::MapEntry(m) => (estimate(&m.key, sc, d), estimate(&m.value, sc, d)),
        };
        out.cost += a.cost + b.cost + 1.0;
        out.size += a.size + b.size;
    }
    out
}

/// Functions whose result is one scalar whatever their arguments' size.
fn is_scalar_fn(name: &str) -> bool {
    matches!(
        name,
        "_==_"
            | "_!=_"
            | "_<_"
            | "_<=_"
            | "_>_"
            | "_>=_"
            | "_&&_"
            | "_||_"
            | "!_"
            | "-_"
            | "_-_"
            | "_*_"
            | "_/_"
            | "_%_"
            | "@in"
            | "@not_strictly_false"
            | "size"
            | "contains"
            | "startsWith"
            | "endsWith"
            | "matches"
            | "has"
            | "int"
            | "uint"
            | "double"
            | "bool"
            | "type"
            | "exists"
            | "all"
            | "exists_one"
            | "indexOf"
            | "lastIndexOf"
            | "timestamp"
            | "duration"
    )
}

/// Starts one JMESPath search with the full budget.
pub(crate) fn jmes_begin() {
    JMES_LEFT.with(|c| c.set(env_limit("MOAT_JMESPATH_BUDGET", JMESPATH_BUDGET)));
    JMES_OVER.with(|o| o.borrow_mut().take());
}

/// The budget message of the current search, if it went over.
pub(crate) fn jmes_over() -> Option<String> {
    JMES_OVER.with(|o| o.borrow_mut().take())
}

/// Charges `n` units to the current search; the error names the limit.
pub(crate) fn jmes_charge(n: u64, what: &str) -> Result<(), String> {
    JMES_LEFT.with(|c| {
        let left = c.get();
        if n > left {
            c.set(0);
            let m = format!(
                "{what} would produce {n} more units (bytes or elements), over the JMESPath budget of {} per search (MOAT_JMESPATH_BUDGET)",
                env_limit("MOAT_JMESPATH_BUDGET", JMESPATH_BUDGET)
            );
            JMES_OVER.with(|o| *o.borrow_mut() = Some(m.clone()));
            Err(m)
        } else {
            c.set(left - n);
            Ok(())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(src: &str) -> Result<(), String> {
        let p = cel::Program::compile(src).expect("compiles");
        cel_begin(&[&CelValue::Null]);
        cel_check(p.expression(), src)
    }

    #[test]
    fn ordinary_expressions_pass() {
        for src in [
            "object.spec.containers.all(c, c.image.startsWith('registry.example/'))",
            "object.spec.containers.map(c, c.name).exists(n, n == 'app')",
            "has(object.metadata.labels) && 'app' in object.metadata.labels",
            "[1, 2, 3].filter(x, x > 1).size() == 2",
            "object.metadata.name.replace('-', '_').size() < 64",
        ] {
            check(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        }
    }

    #[test]
    fn explosions_are_refused_before_evaluation() {
        // A list explosion: 10 nested maps over a 10-element list is 10^10 elements.
        let ten = "[0,1,2,3,4,5,6,7,8,9]";
        let mut e = "x0".to_string();
        for i in (0..10).rev() {
            e = format!("{ten}.map(x{i}, {e})");
        }
        let err = check(&e).expect_err("explosion");
        assert!(
            err.contains("MOAT_CEL_SIZE_LIMIT") || err.contains("MOAT_CEL_COST_LIMIT"),
            "{err}"
        );
        // A string doubled 30 times in one expression (the source stays small: `x + x` is shared
        // through a comprehension's accumulator, which doubles per iteration).
        let err = check("[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30].map(i, 'ab').exists(x, x == 'c') && ['ab'].all(a, true)")
            .err();
        assert!(err.is_none(), "linear: {err:?}");
        let fold = cel::Program::compile("'ab'").expect("compiles");
        cel_begin(&[&CelValue::Null]);
        assert!(cel_check(fold.expression(), "'ab'").is_ok());
    }

    #[test]
    fn doubling_variables_are_refused_at_the_first_over_the_limit() {
        cel_begin(&[&CelValue::Null]);
        let mut size = 2.0;
        let mut refused_at = None;
        for i in 0..45 {
            let src = if i == 0 {
                "['a','a']".to_string()
            } else {
                format!("variables.v{} + variables.v{}", i - 1, i - 1)
            };
            let p = cel::Program::compile(&src).expect("compiles");
            match cel_check(p.expression(), &src) {
                Ok(()) => {
                    // Stand in for the measured size of the value it would bind.
                    VARS.with(|v| v.borrow_mut().push((format!("v{i}"), size)));
                    size *= 2.0;
                }
                Err(e) => {
                    assert!(e.contains("MOAT_CEL_SIZE_LIMIT"), "{e}");
                    refused_at = Some(i);
                    break;
                }
            }
        }
        let at = refused_at.expect("refused");
        assert!((20..=30).contains(&at), "refused at variable {at}");
    }

    #[test]
    fn jmespath_budget_is_per_search() {
        jmes_begin();
        assert!(jmes_charge(1 << 20, "join").is_ok());
        let err = jmes_charge(1 << 30, "join").expect_err("over");
        assert!(err.contains("MOAT_JMESPATH_BUDGET"), "{err}");
        jmes_begin();
        assert!(jmes_charge(1 << 20, "join").is_ok());
    }
}
