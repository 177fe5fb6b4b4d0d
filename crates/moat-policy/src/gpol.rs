//! Kyverno's `GeneratingPolicy` (and `NamespacedGeneratingPolicy`): the matching of a
//! ValidatingAdmissionPolicy plus `generate[].expression`s calling `generator.Apply(namespace,
//! resources)`. moat evaluates them over the request without a cluster: the resources a policy
//! would create are returned (each in the namespace it was applied to), which is what `kyverno
//! test` compares with `generatedResource`. Creating them needs a live cluster and is not done.

use std::cell::RefCell;
use std::sync::Arc;

use cel::common::types::{LIST_TYPE, STRING_TYPE};
use cel::common::value::CowVal;
use cel::{Env, ExecutionError, Value as CelValue};
use serde_json::Value;

use crate::PolicyError;
use crate::celrule::{CelInput, Expr, Vap, compile_vap_body};
use crate::matcher::ResInfo;

thread_local! {
    /// Resources `generator.Apply` was given while one policy is evaluated.
    static GENERATED: RefCell<Option<Vec<Value>>> = const { RefCell::new(None) };
}

fn apply<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let err = |m: &str| ExecutionError::function_error("generator.Apply", m);
    let (ns, list) = match (args.first(), args.get(1)) {
        (Some(n), Some(l)) => (
            CelValue::try_from(n.as_ref())?,
            CelValue::try_from(l.as_ref())?,
        ),
        _ => return Err(err("expects (namespace, [resources])")),
    };
    let CelValue::String(ns) = ns else {
        return Err(err("the namespace must be a string"));
    };
    let CelValue::List(items) = list else {
        return Err(err("the resources must be a list"));
    };
    let mut out = Vec::new();
    for it in items.iter() {
        let mut v = crate::mpol::cel_json(it).map_err(|e| err(&e))?;
        if !ns.is_empty()
            && let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut)
        {
            m.insert("namespace".into(), Value::String(ns.to_string()));
        }
        out.push(v);
    }
    GENERATED.with(|g| {
        if let Some(g) = g.borrow_mut().as_mut() {
            g.extend(out);
        }
    });
    Ok(CowVal::Owned(Box::new(cel::common::types::CelBool::from(
        true,
    ))))
}

/// A compiled GeneratingPolicy.
pub(crate) struct Gpol {
    pub vap: Vap,
    env: Arc<Env>,
    generate: Vec<Expr>,
}

impl std::fmt::Debug for Gpol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpol")
            .field("generate", &self.generate)
            .finish()
    }
}

/// What a GeneratingPolicy does for one request.
pub(crate) enum GpolOutcome {
    NotMatched,
    Generated(Vec<Value>),
    Error(String),
}

impl Gpol {
    pub(crate) fn compile(doc: &Value, source: &str) -> Result<Gpol, PolicyError> {
        let spec = doc.get("spec").unwrap_or(&Value::Null);
        let mut env = Env::stdlib();
        let bad = |e: String| PolicyError::invalid(source, "spec", e);
        env.add_extension(cel::extensions::strings)
            .map_err(|e| bad(e.to_string()))?;
        env.add_overload(
            "generator.Apply",
            "generator_Apply_string_list",
            vec![STRING_TYPE, LIST_TYPE],
            apply,
        )
        .map_err(|e| bad(e.to_string()))?;
        let vap = compile_vap_body(doc, source, &env)?;
        let mut generate = Vec::new();
        for (i, g) in spec
            .get("generate")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let field = format!("spec.generate[{i}].expression");
            let Some(e) = g.get("expression").and_then(Value::as_str) else {
                return Err(PolicyError::invalid(source, field, "missing"));
            };
            generate.push(Expr::compile_in(&env, e, source, &field)?);
        }
        if generate.is_empty() {
            return Err(PolicyError::invalid(
                source,
                "spec.generate",
                "a GeneratingPolicy needs at least one generate expression",
            ));
        }
        Ok(Gpol {
            vap,
            env: Arc::new(env),
            generate,
        })
    }

    /// Every CEL expression of the policy's spec (to find the online libraries it calls).
    pub(crate) fn expressions(spec: &Value) -> Vec<&str> {
        spec.get("generate")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|g| g.get("expression").and_then(Value::as_str))
            .collect()
    }

    pub(crate) fn eval(&self, info: &ResInfo, input: &CelInput) -> GpolOutcome {
        let ctx = match self.vap.matched_context(info, &self.env, input) {
            Ok(Some(c)) => c,
            Ok(None) => return GpolOutcome::NotMatched,
            Err(e) => return GpolOutcome::Error(e),
        };
        GENERATED.with(|g| *g.borrow_mut() = Some(Vec::new()));
        let mut failure = None;
        for (i, e) in self.generate.iter().enumerate() {
            if let Err(err) = e.run(&ctx) {
                failure = Some(format!("generate[{i}] `{}`: {err}", e.src.trim()));
                break;
            }
        }
        let out = GENERATED.with(|g| g.borrow_mut().take().unwrap_or_default());
        match failure {
            Some(f) => GpolOutcome::Error(f),
            None => GpolOutcome::Generated(out),
        }
    }
}
