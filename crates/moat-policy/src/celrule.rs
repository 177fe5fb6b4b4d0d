//! CEL: Kyverno `validate.cel` rules and Kubernetes `ValidatingAdmissionPolicy`.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use cel::common::types::CelNull;
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use cel::{Context, Env, Program, Value as CelValue};
use serde_json::Value;

use crate::PolicyError;
use crate::Unsupported;
use crate::load::{Body, Policy, Rule};
use crate::matcher::{ResInfo, Selector};

static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| {
    let mut env = Env::stdlib();
    let _ = env.add_extension(cel::extensions::strings);
    Arc::new(env)
});

/// A compiled CEL expression with its source text (for messages).
pub(crate) struct Expr {
    pub src: String,
    program: Program,
}

impl Expr {
    pub(crate) fn run(&self, ctx: &Context) -> Result<CelValue, cel::ExecutionError> {
        // The cost budget (issue 17): estimated before anything is evaluated.
        crate::budget::cel_check(self.program.expression(), &self.src)
            .map_err(|m| cel::ExecutionError::function_error("cost budget", m))?;
        self.program.execute(ctx)
    }
}

impl std::fmt::Debug for Expr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Expr({})", self.src)
    }
}

impl Expr {
    #[cfg(test)]
    fn compile(src: &str, source: &str, field: &str) -> Result<Expr, PolicyError> {
        Expr::compile_in(&ENV, src, source, field)
    }

    /// Compiles under another environment (MutatingPolicy adds its struct types and functions).
    pub(crate) fn compile_in(
        env: &Env,
        src: &str,
        source: &str,
        field: &str,
    ) -> Result<Expr, PolicyError> {
        if src.len() > 64 * 1024 {
            return Err(PolicyError::invalid(
                source,
                field,
                "CEL expression longer than 64 KiB",
            ));
        }
        let program = env
            .compile(src)
            .map_err(|e| PolicyError::invalid(source, field, format!("CEL: {e}")))?;
        Ok(Expr {
            src: src.to_string(),
            program,
        })
    }
}

#[derive(Debug)]
pub(crate) struct Validation {
    pub expr: Expr,
    pub message: Option<String>,
    pub message_expr: Option<Expr>,
}

/// Kyverno `validate.cel`.
#[derive(Debug)]
pub(crate) struct CelValidate {
    pub variables: Vec<(String, Expr)>,
    pub validations: Vec<Validation>,
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

fn compile_variables(
    v: Option<&Value>,
    source: &str,
    field: &str,
) -> Result<Vec<(String, Expr)>, PolicyError> {
    compile_variables_in(&ENV, v, source, field)
}

pub(crate) fn compile_variables_in(
    env: &Env,
    v: Option<&Value>,
    source: &str,
    field: &str,
) -> Result<Vec<(String, Expr)>, PolicyError> {
    let mut out = Vec::new();
    for (i, var) in v
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let name = str_at(var, "name").unwrap_or("").to_string();
        let Some(e) = str_at(var, "expression") else {
            return Err(PolicyError::invalid(
                source,
                format!("{field}[{i}].expression"),
                "missing",
            ));
        };
        out.push((
            name,
            Expr::compile_in(env, e, source, &format!("{field}[{i}].expression"))?,
        ));
    }
    Ok(out)
}

fn compile_validations(
    v: Option<&Value>,
    source: &str,
    field: &str,
) -> Result<Vec<Validation>, PolicyError> {
    compile_validations_in(&ENV, v, source, field)
}

fn compile_validations_in(
    env: &Env,
    v: Option<&Value>,
    source: &str,
    field: &str,
) -> Result<Vec<Validation>, PolicyError> {
    let mut out = Vec::new();
    for (i, x) in v
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let Some(e) = str_at(x, "expression") else {
            return Err(PolicyError::invalid(
                source,
                format!("{field}[{i}].expression"),
                "missing",
            ));
        };
        let message_expr = match str_at(x, "messageExpression") {
            Some(m) => Some(Expr::compile_in(
                env,
                m,
                source,
                &format!("{field}[{i}].messageExpression"),
            )?),
            None => None,
        };
        out.push(Validation {
            expr: Expr::compile_in(env, e, source, &format!("{field}[{i}].expression"))?,
            message: str_at(x, "message").map(str::to_string),
            message_expr,
        });
    }
    Ok(out)
}

impl CelValidate {
    /// Ok(Err(reason)) when the rule needs something moat does not support.
    pub(crate) fn compile(
        c: &Value,
        source: &str,
        field: &str,
    ) -> Result<Result<CelValidate, String>, PolicyError> {
        if c.get("paramKind").is_some() || c.get("paramRef").is_some() {
            return Ok(Err(
                "validate.cel with paramKind/paramRef: parameter resources are not supported"
                    .into(),
            ));
        }
        let variables =
            compile_variables(c.get("variables"), source, &format!("{field}.variables"))?;
        let validations = compile_validations(
            c.get("expressions"),
            source,
            &format!("{field}.expressions"),
        )?;
        if validations.is_empty() {
            return Err(PolicyError::invalid(
                source,
                format!("{field}.expressions"),
                "no expressions",
            ));
        }
        Ok(Ok(CelValidate {
            variables,
            validations,
        }))
    }
}

/// JSON to CEL, once per request.
pub(crate) fn to_cel(v: &Value) -> CelValue {
    match v {
        Value::Null => CelValue::Null,
        Value::Bool(b) => CelValue::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                CelValue::Int(i)
            } else if let Some(u) = n.as_u64() {
                CelValue::UInt(u)
            } else {
                CelValue::Float(n.as_f64().unwrap_or(0.0))
            }
        }
        Value::String(s) => CelValue::String(Arc::new(s.clone())),
        Value::Array(a) => CelValue::List(Arc::new(a.iter().map(to_cel).collect())),
        Value::Object(o) => {
            let m: HashMap<String, CelValue> =
                o.iter().map(|(k, x)| (k.clone(), to_cel(x))).collect();
            CelValue::from(m)
        }
    }
}

/// The CEL view of a request.
pub(crate) struct CelInput {
    pub object: CelValue,
    pub old_object: CelValue,
    pub request: CelValue,
    pub namespace_object: CelValue,
    /// Data for Kyverno's `resource` and `image` libraries (policy test), if supplied.
    pub offline: Option<Arc<crate::OfflineData>>,
    /// The same four values in the interpreter's own representation, converted once per request
    /// and borrowed by the context of every policy that judges it.
    vals: OnceCell<RequestVals>,
    /// Measured size of the four values (the cost estimator's input size), once per request.
    size: OnceCell<f64>,
}

impl Clone for CelInput {
    fn clone(&self) -> CelInput {
        CelInput::new(
            self.object.clone(),
            self.old_object.clone(),
            self.request.clone(),
            self.namespace_object.clone(),
            self.offline.clone(),
        )
    }
}

impl CelInput {
    pub(crate) fn new(
        object: CelValue,
        old_object: CelValue,
        request: CelValue,
        namespace_object: CelValue,
        offline: Option<Arc<crate::OfflineData>>,
    ) -> CelInput {
        CelInput {
            object,
            old_object,
            request,
            namespace_object,
            offline,
            vals: OnceCell::new(),
            size: OnceCell::new(),
        }
    }

    /// Elements plus string bytes of the request's values, as the cost estimator counts them.
    fn size(&self) -> f64 {
        *self.size.get_or_init(|| {
            crate::budget::cel_input_size(&[
                &self.object,
                &self.old_object,
                &self.request,
                &self.namespace_object,
            ])
        })
    }

    fn vals(&self) -> &RequestVals {
        self.vals.get_or_init(|| RequestVals {
            object: to_val(&self.object),
            old_object: to_val(&self.old_object),
            request: to_val(&self.request),
            namespace_object: to_val(&self.namespace_object),
        })
    }
}

fn to_val(v: &CelValue) -> Box<dyn Val> {
    Box::<dyn Val>::try_from(v.clone()).unwrap_or_else(|_| Box::new(CelNull))
}

/// `object`, `oldObject`, `request` and `namespaceObject` converted once, resolved by borrowing:
/// binding them into each policy's context instead converted the whole object again per policy.
struct RequestVals {
    object: Box<dyn Val>,
    old_object: Box<dyn Val>,
    request: Box<dyn Val>,
    namespace_object: Box<dyn Val>,
}

impl VariableResolver for RequestVals {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        let v = match variable {
            "object" => &self.object,
            "oldObject" => &self.old_object,
            "request" => &self.request,
            "namespaceObject" => &self.namespace_object,
            _ => return None,
        };
        Some(CowVal::Borrowed(v.as_ref()))
    }
}

/// How a set of CEL validations ended.
pub(crate) enum CelOutcome {
    Pass,
    Fail(String),
    Error(String),
}

/// The CEL context of a request under `env`: `object`, `oldObject`, `request`, `namespaceObject`
/// and, with offline data, Kyverno's `resource`/`image` libraries. The request's values are
/// borrowed from `input`, where they were converted once.
pub(crate) fn shared_context<'a>(env: &Arc<Env>, input: &'a CelInput) -> Context<'a, 'a> {
    crate::budget::cel_begin_sized(input.size());
    let mut ctx = Context::with_env(Arc::clone(env));
    ctx.set_variable_resolver(input.vals());
    if let Some(d) = &input.offline {
        crate::celdata::bind(&mut ctx, d);
    }
    ctx
}

/// The same context, owning its values (converted again): for callers that keep the context
/// beyond the borrow of `input`.
pub(crate) fn context_in(env: &Arc<Env>, input: &CelInput) -> Context<'static, 'static> {
    crate::budget::cel_begin_sized(input.size());
    let mut ctx = Context::with_env(Arc::clone(env));
    ctx.add_variable_from_value("object", input.object.clone());
    ctx.add_variable_from_value("oldObject", input.old_object.clone());
    ctx.add_variable_from_value("request", input.request.clone());
    ctx.add_variable_from_value("namespaceObject", input.namespace_object.clone());
    if let Some(d) = &input.offline {
        crate::celdata::bind(&mut ctx, d);
    }
    ctx
}

/// Binds `variables` in order, each seeing the ones before it.
pub(crate) fn bind_variables(ctx: &mut Context<'_, '_>, vars: &[(String, Expr)]) {
    bind_variables_as(ctx, vars, true)
}

/// Binds each variable under its qualified name `variables.<name>`, which the interpreter
/// resolves for `variables.<name>...` without a map; the `variables` map itself (rebuilt after
/// each variable) only when `whole_map`: some expression uses it other than by field
/// (`has(variables.x)`, `variables[k]`). Without it `variables` is an empty map, so a variable that
/// failed reads as a missing key, as it did with the map.
pub(crate) fn bind_variables_as(
    ctx: &mut Context<'_, '_>,
    vars: &[(String, Expr)],
    whole_map: bool,
) {
    let mut values: HashMap<String, CelValue> = HashMap::new();
    ctx.add_variable_from_value("variables", CelValue::from(values.clone()));
    for (name, e) in vars {
        // Kubernetes evaluates variables lazily: one that fails only matters where it is used. One
        // over the cost budget is not evaluated; its uses are estimated as over the budget too.
        if crate::budget::cel_check(e.program.expression(), &e.src).is_err() {
            crate::budget::cel_variable_refused(name);
            continue;
        }
        if let Ok(v) = e.program.execute(ctx) {
            crate::budget::cel_variable(name, &v);
            if whole_map {
                values.insert(name.clone(), v.clone());
                ctx.add_variable_from_value("variables", CelValue::from(values.clone()));
            }
            ctx.add_variable_from_value(format!("variables.{name}"), v);
        }
    }
}

/// Whether an expression names `variables` other than as `variables.<field>`.
fn uses_whole_variables(e: &cel::common::ast::IdedExpr) -> bool {
    use cel::common::ast::{EntryExpr, Expr as E};
    match &e.expr {
        E::Ident(n) => n == "variables",
        E::Select(s) => {
            if !s.test
                && let E::Ident(n) = &s.operand.expr
                && n == "variables"
            {
                return false;
            }
            uses_whole_variables(&s.operand)
        }
        E::Call(c) => {
            c.target.as_deref().is_some_and(uses_whole_variables)
                || c.args.iter().any(uses_whole_variables)
        }
        E::List(l) => l.elements.iter().any(uses_whole_variables),
        E::Map(m) => m.entries.iter().any(|x| match &x.expr {
            EntryExpr::MapEntry(me) => {
                uses_whole_variables(&me.key) || uses_whole_variables(&me.value)
            }
            EntryExpr::StructField(f) => uses_whole_variables(&f.value),
        }),
        E::Struct(st) => st.entries.iter().any(|x| match &x.expr {
            EntryExpr::MapEntry(me) => {
                uses_whole_variables(&me.key) || uses_whole_variables(&me.value)
            }
            EntryExpr::StructField(f) => uses_whole_variables(&f.value),
        }),
        E::Comprehension(c) => {
            c.iter_var == "variables"
                || c.accu_var == "variables"
                || [
                    &c.iter_range,
                    &c.accu_init,
                    &c.loop_cond,
                    &c.loop_step,
                    &c.result,
                ]
                .into_iter()
                .any(uses_whole_variables)
        }
        E::Literal(_) | E::Unspecified => false,
    }
}

pub(crate) fn run_validations(
    ctx: &Context<'_, '_>,
    validations: &[Validation],
    default_message: Option<&str>,
) -> CelOutcome {
    for v in validations {
        match v.expr.run(ctx) {
            Ok(CelValue::Bool(true)) => {}
            Ok(CelValue::Bool(false)) => {
                let msg = v
                    .message_expr
                    .as_ref()
                    .and_then(|m| match m.run(ctx) {
                        Ok(CelValue::String(s)) => Some(s.to_string()),
                        _ => None,
                    })
                    .or_else(|| v.message.clone())
                    .or_else(|| default_message.map(str::to_string))
                    .unwrap_or_else(|| format!("failed expression: {}", v.expr.src.trim()));
                return CelOutcome::Fail(msg);
            }
            Ok(other) => {
                return CelOutcome::Error(format!(
                    "expression `{}` returned {other:?}, not a bool",
                    v.expr.src.trim()
                ));
            }
            Err(e) => return CelOutcome::Error(format!("expression `{}`: {e}", v.expr.src.trim())),
        }
    }
    CelOutcome::Pass
}

impl CelValidate {
    pub(crate) fn eval(&self, input: &CelInput, default_message: Option<&str>) -> CelOutcome {
        let mut ctx = shared_context(&ENV, input);
        bind_variables(&mut ctx, &self.variables);
        run_validations(&ctx, &self.validations, default_message)
    }
}

/// `request` as CEL sees it.
pub(crate) fn request_value(
    operation: &str,
    namespace: &str,
    name: &str,
    kind: &Value,
    user_info: &Value,
) -> Value {
    serde_json::json!({
        "operation": operation,
        "namespace": namespace,
        "name": name,
        "kind": kind,
        "userInfo": if user_info.is_null() { serde_json::json!({}) } else { user_info.clone() },
        "dryRun": false,
    })
}

/// A resource rule of a ValidatingAdmissionPolicy.
#[derive(Debug, Default)]
pub(crate) struct ResourceRule {
    groups: Vec<String>,
    versions: Vec<String>,
    operations: Vec<String>,
    resources: Vec<String>,
    names: Vec<String>,
}

impl ResourceRule {
    fn parse(v: &Value) -> ResourceRule {
        let list = |k: &str| -> Vec<String> {
            v.get(k)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        ResourceRule {
            groups: list("apiGroups"),
            versions: list("apiVersions"),
            operations: list("operations"),
            resources: list("resources"),
            names: list("resourceNames"),
        }
    }

    fn matches(&self, info: &ResInfo) -> bool {
        let any = |l: &[String], x: &str| l.is_empty() || l.iter().any(|e| e == "*" || e == x);
        let plural = plural(info.kind);
        any(&self.groups, info.group)
            && any(&self.versions, info.version)
            && (self.operations.is_empty()
                || self
                    .operations
                    .iter()
                    .any(|o| o == "*" || o.eq_ignore_ascii_case(info.operation)))
            && (self.resources.is_empty()
                || self
                    .resources
                    .iter()
                    .any(|r| r == "*" || *r == plural || r.split('/').next() == Some("*")))
            && (self.names.is_empty() || self.names.iter().any(|n| n == info.name))
    }
}

/// The resource (plural) name of a kind, as the API server names it.
pub(crate) fn plural(kind: &str) -> String {
    let k = kind.to_ascii_lowercase();
    if k == "endpoints" {
        return k;
    }
    if k.ends_with('s') || k.ends_with('x') || k.ends_with("ch") || k.ends_with("sh") {
        format!("{k}es")
    } else if k.ends_with('y') && !k.ends_with("ay") && !k.ends_with("ey") && !k.ends_with("oy") {
        format!("{}ies", &k[..k.len() - 1])
    } else {
        format!("{k}s")
    }
}

/// A compiled ValidatingAdmissionPolicy.
#[derive(Debug)]
pub(crate) struct Vap {
    rules: Vec<ResourceRule>,
    exclude: Vec<ResourceRule>,
    namespace_selector: Option<Selector>,
    object_selector: Option<Selector>,
    match_conditions: Vec<(String, Expr)>,
    variables: Vec<(String, Expr)>,
    validations: Vec<Validation>,
    /// Some expression uses the `variables` map as a whole, not only its fields.
    whole_variables: bool,
    /// failurePolicy Fail (the default): an evaluation error denies.
    pub fail_closed: bool,
}

/// What a ValidatingAdmissionPolicy says about a request.
pub(crate) enum VapOutcome {
    NotMatched,
    Pass,
    Fail(String),
    Error(String),
}

impl Vap {
    pub(crate) fn eval(&self, info: &ResInfo, input: &CelInput) -> VapOutcome {
        if !self.selects(info) {
            return VapOutcome::NotMatched;
        }
        let mut ctx = shared_context(&ENV, input);
        bind_variables_as(&mut ctx, &self.variables, self.whole_variables);
        match self.conditions_hold(&ctx) {
            Ok(true) => {}
            Ok(false) => return VapOutcome::NotMatched,
            Err(e) => return VapOutcome::Error(e),
        }
        match run_validations(&ctx, &self.validations, None) {
            CelOutcome::Pass => VapOutcome::Pass,
            CelOutcome::Fail(m) => VapOutcome::Fail(m),
            CelOutcome::Error(e) => VapOutcome::Error(e),
        }
    }

    /// Whether the resource rules and selectors select the request.
    fn selects(&self, info: &ResInfo) -> bool {
        if !self.rules.iter().any(|r| r.matches(info))
            || self.exclude.iter().any(|r| r.matches(info))
        {
            return false;
        }
        if let Some(sel) = &self.object_selector {
            let labels = info.labels;
            if !sel.matches(&|k| {
                labels
                    .and_then(|l| l.get(k))
                    .and_then(|v| v.as_str().map(str::to_string))
            }) {
                return false;
            }
        }
        if let Some(sel) = &self.namespace_selector
            && !info.namespace.is_empty()
        {
            let nl = info.namespace_labels;
            if !sel.matches(&|k| nl.and_then(|l| l.get(k)).cloned()) {
                return false;
            }
        }
        true
    }

    /// The matchConditions over a context with `variables` bound: Err when one fails to evaluate
    /// under failurePolicy Fail.
    fn conditions_hold(&self, ctx: &Context<'_, '_>) -> Result<bool, String> {
        for (name, mc) in &self.match_conditions {
            match mc.run(ctx) {
                Ok(CelValue::Bool(true)) => {}
                Ok(CelValue::Bool(false)) => return Ok(false),
                Ok(_) | Err(_) if !self.fail_closed => return Ok(false),
                Ok(other) => return Err(format!("matchCondition {name} returned {other:?}")),
                Err(e) => return Err(format!("matchCondition {name}: {e}")),
            }
        }
        Ok(true)
    }

    /// The request's CEL context with `variables` bound when the policy matches it (resource rules,
    /// selectors, matchConditions); Ok(None) when it does not, Err when a matchCondition fails to
    /// evaluate under failurePolicy Fail.
    pub(crate) fn matched_context(
        &self,
        info: &ResInfo,
        env: &Arc<Env>,
        input: &CelInput,
    ) -> Result<Option<Context<'static, 'static>>, String> {
        if !self.selects(info) {
            return Ok(None);
        }
        let mut ctx = context_in(env, input);
        // Kyverno's policies may name `variables` in matchConditions: bind them first (lazily
        // failing, so a condition that does not use them is unaffected).
        bind_variables(&mut ctx, &self.variables);
        Ok(self.conditions_hold(&ctx)?.then_some(ctx))
    }

    pub(crate) fn validations(&self) -> &[Validation] {
        &self.validations
    }

    pub(crate) fn validations_len(&self) -> usize {
        self.validations.len()
    }

    /// The policy's `variables`, for re-binding after a mutation changed the object.
    pub(crate) fn variables(&self) -> &[(String, Expr)] {
        &self.variables
    }
}

/// A ValidatingAdmissionPolicyBinding: which actions apply to its policy.
#[derive(Debug)]
pub(crate) struct VapBinding {
    pub policy_name: String,
    pub deny: bool,
}

pub(crate) fn parse_binding(doc: &Value) -> VapBinding {
    let spec = doc.get("spec").unwrap_or(&Value::Null);
    let deny = spec
        .get("validationActions")
        .and_then(Value::as_array)
        .is_none_or(|a| a.iter().any(|x| x.as_str() == Some("Deny")));
    VapBinding {
        policy_name: str_at(spec, "policyName").unwrap_or("").to_string(),
        deny,
    }
}

/// The matching and validating parts of a ValidatingAdmissionPolicy-shaped spec (also a Kyverno
/// ValidatingPolicy's or MutatingPolicy's), compiled under `env`; `validations` may be empty.
pub(crate) fn compile_vap_body(doc: &Value, source: &str, env: &Env) -> Result<Vap, PolicyError> {
    let spec = doc.get("spec").unwrap_or(&Value::Null);
    let mc = spec.get("matchConstraints").unwrap_or(&Value::Null);
    let rules: Vec<ResourceRule> = mc
        .get("resourceRules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(ResourceRule::parse)
        .collect();
    let exclude = mc
        .get("excludeResourceRules")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(ResourceRule::parse)
        .collect();
    let namespace_selector = match mc
        .get("namespaceSelector")
        .filter(|v| v.as_object().is_some_and(|o| !o.is_empty()))
    {
        Some(s) => Some(Selector::compile(
            s,
            source,
            "spec.matchConstraints.namespaceSelector",
        )?),
        None => None,
    };
    let object_selector = match mc
        .get("objectSelector")
        .filter(|v| v.as_object().is_some_and(|o| !o.is_empty()))
    {
        Some(s) => Some(Selector::compile(
            s,
            source,
            "spec.matchConstraints.objectSelector",
        )?),
        None => None,
    };
    let mut match_conditions = Vec::new();
    for (i, c) in spec
        .get("matchConditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let e = str_at(c, "expression").unwrap_or("true");
        match_conditions.push((
            str_at(c, "name").unwrap_or("").to_string(),
            Expr::compile_in(
                env,
                e,
                source,
                &format!("spec.matchConditions[{i}].expression"),
            )?,
        ));
    }
    let variables = compile_variables_in(env, spec.get("variables"), source, "spec.variables")?;
    let validations =
        compile_validations_in(env, spec.get("validations"), source, "spec.validations")?;
    let fail_closed = str_at(spec, "failurePolicy") != Some("Ignore");
    let whole_variables = match_conditions
        .iter()
        .map(|(_, e)| e)
        .chain(variables.iter().map(|(_, e)| e))
        .chain(
            validations
                .iter()
                .flat_map(|v| std::iter::once(&v.expr).chain(v.message_expr.as_ref())),
        )
        .any(|e| uses_whole_variables(e.program.expression()));
    Ok(Vap {
        rules,
        exclude,
        namespace_selector,
        object_selector,
        match_conditions,
        variables,
        validations,
        whole_variables,
        fail_closed,
    })
}

/// Compiles a ValidatingAdmissionPolicy into a one-rule policy (the rule is named after the policy).
pub(crate) fn compile_vap(
    doc: &Value,
    source: &str,
    unsupported: &mut Vec<Unsupported>,
) -> Result<Policy, PolicyError> {
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
    let spec = doc.get("spec").unwrap_or(&Value::Null);
    let vap = compile_vap_body(doc, source, &ENV)?;
    let body = if spec.get("paramKind").is_some() {
        let reason =
            "ValidatingAdmissionPolicy with paramKind: parameter resources are not supported"
                .to_string();
        unsupported.push(Unsupported {
            policy: name.clone(),
            rule: name.clone(),
            reason: reason.clone(),
        });
        Body::Unsupported(reason)
    } else if vap.validations.is_empty() {
        let reason = "ValidatingAdmissionPolicy without validations (auditAnnotations only) is not evaluated".to_string();
        unsupported.push(Unsupported {
            policy: name.clone(),
            rule: name.clone(),
            reason: reason.clone(),
        });
        Body::Unsupported(reason)
    } else {
        Body::Vap(Box::new(vap))
    };
    let annotations = doc.pointer("/metadata/annotations");
    let severity = annotations
        .and_then(|a| a.get("policies.kyverno.io/severity"))
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
        .unwrap_or(moat_model::Severity::Medium);
    Ok(Policy {
        name: name.clone(),
        namespace: None,
        severity,
        title: name.clone(),
        rules: vec![Rule {
            name: name.clone(),
            matcher: None,
            exclude: None,
            preconditions: None,
            context: Vec::new(),
            body,
            enforce: true,
            enforce_explicit: true,
            autogen: Vec::new(),
            needs_offline: None,
        }],
        overrides: Vec::new(),
        scored: true,
        apply_one: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_syntax_and_macros() {
        let e = Expr::compile(
            "object.spec.containers.all(c, c.?securityContext.allowPrivilegeEscalation.orValue(true) == false)",
            "t",
            "f",
        )
        .unwrap();
        let input = CelInput::new(
            to_cel(
                &serde_json::json!({"spec": {"containers": [{"securityContext": {"allowPrivilegeEscalation": false}}]}}),
            ),
            CelValue::Null,
            CelValue::Null,
            CelValue::Null,
            None,
        );
        let ctx = shared_context(&ENV, &input);
        assert_eq!(e.program.execute(&ctx).unwrap(), CelValue::Bool(true));
        assert_eq!(plural("Ingress"), "ingresses");
        assert_eq!(plural("NetworkPolicy"), "networkpolicies");
    }
}
