//! Kyverno's `MutatingPolicy` and `NamespacedMutatingPolicy` (`policies.kyverno.io`): the matching of
//! a ValidatingAdmissionPolicy (`matchConstraints`, `matchConditions`, `variables`) and a list of
//! `mutations`, each a CEL expression producing either RFC 6902 operations (`JSONPatch{op, path,
//! value}`) or an apply configuration (`Object{...}`) merged the way server-side apply merges it.
//! Mutations apply in order, each seeing the object as the previous ones left it.

use std::collections::BTreeMap;
use std::sync::Arc;

use cel::common::types::{CelInt, CelMap, CelMapKey, CelString, Type};
use cel::common::value::{CowVal, Val};
use cel::{Env, ExecutionError, StructType, Value as CelValue};
use serde_json::Value;

use crate::PolicyError;
use crate::celrule::{CelInput, Expr, Vap, compile_vap_body};
use crate::matcher::ResInfo;

/// A struct literal type (`Object.spec{...}`, `JSONPatch{...}`) that builds a plain CEL map.
struct MapStruct {
    ty: Type,
}

impl StructType for MapStruct {
    fn get_type(&self) -> &Type {
        &self.ty
    }

    fn new_value<'b, 'v>(
        &self,
        fields: BTreeMap<String, CowVal<'b, 'v>>,
    ) -> Result<Box<dyn Val + 'v>, ExecutionError> {
        let mut map: std::collections::HashMap<CelMapKey<'v>, Box<dyn Val + 'v>> =
            std::collections::HashMap::with_capacity(fields.len());
        for (k, v) in fields {
            map.insert(CelMapKey::from(k), v.into_owned());
        }
        Ok(Box::new(CelMap::from(map)))
    }
}

fn list_index_of<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let [list, needle]: [CowVal; 2] = args
        .try_into()
        .map_err(|_| ExecutionError::function_error("indexOf", "expects one argument"))?;
    let list = CelValue::try_from(list.as_ref())?;
    let needle = CelValue::try_from(needle.as_ref())?;
    let idx = match list {
        CelValue::List(l) => l.iter().position(|x| *x == needle).map_or(-1, |i| i as i64),
        _ => return Err(ExecutionError::function_error("indexOf", "not a list")),
    };
    Ok(CowVal::Owned(Box::new(CelInt::from(idx))))
}

fn escape_key<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let s = match args.first().map(|a| CelValue::try_from(a.as_ref())) {
        Some(Ok(CelValue::String(s))) => s.to_string(),
        _ => {
            return Err(ExecutionError::function_error(
                "jsonpatch.escapeKey",
                "expects a string",
            ));
        }
    };
    Ok(CowVal::Owned(Box::new(CelString::from(
        crate::mutate::escape(&s),
    ))))
}

/// Kyverno's image library: `image(ref)` parses a reference into a map its accessors read
/// (`registry()`, `repository()`, `tag()`, `digest()`, `identifier()`).
fn image_fn<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let s = match args.first().map(|a| CelValue::try_from(a.as_ref())) {
        Some(Ok(CelValue::String(s))) => s.to_string(),
        _ => return Err(ExecutionError::function_error("image", "expects a string")),
    };
    let info = crate::eval::image_info(&s);
    let g = |k: &str| info[k].as_str().unwrap_or("").to_string();
    let ident = if g("digest").is_empty() {
        g("tag")
    } else {
        g("digest")
    };
    let mut m: std::collections::HashMap<String, CelValue> = std::collections::HashMap::new();
    for (k, v) in [
        ("registry", g("registry")),
        ("repository", g("path")),
        ("tag", g("tag")),
        ("digest", g("digest")),
        ("identifier", ident),
        ("reference", s.clone()),
    ] {
        m.insert(format!("@image.{k}"), CelValue::String(Arc::new(v)));
    }
    let v: Box<dyn Val> = CelValue::from(m).try_into()?;
    Ok(CowVal::Owned(v))
}

fn image_part<'b, 'v>(
    args: Vec<CowVal<'b, 'v>>,
    part: &str,
) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let this = match args.first().map(|a| CelValue::try_from(a.as_ref())) {
        Some(Ok(CelValue::Map(m))) => m,
        _ => return Err(ExecutionError::function_error(part, "expects an image")),
    };
    let key = format!("@image.{part}");
    let v = this
        .map
        .iter()
        .find(|(k, _)| matches!(k, cel::objects::Key::String(s) if **s == key))
        .map(|(_, v)| v.clone())
        .ok_or_else(|| ExecutionError::function_error(part, "not an image"))?;
    let v: Box<dyn Val> = v.try_into()?;
    Ok(CowVal::Owned(v))
}

macro_rules! image_accessor {
    ($name:ident, $part:literal) => {
        fn $name<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
            image_part(args, $part)
        }
    };
}
image_accessor!(image_registry, "registry");
image_accessor!(image_repository, "repository");
image_accessor!(image_tag, "tag");
image_accessor!(image_digest, "digest");
image_accessor!(image_identifier, "identifier");

/// Struct type names an expression constructs: `Object`, `Object.spec.containers`, `JSONPatch`.
fn struct_names(src: &str, out: &mut Vec<String>) {
    let b = src.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_alphabetic()
            && (i == 0
                || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_' || b[i - 1] == b'.'))
        {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'.') {
                i += 1;
            }
            let name = &src[start..i];
            let mut j = i;
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            if j < b.len()
                && b[j] == b'{'
                && (name == "JSONPatch" || name == "Object" || name.starts_with("Object."))
                && !out.iter().any(|n| n == name)
            {
                out.push(name.to_string());
            }
        } else {
            i += 1;
        }
    }
}

/// The CEL environment of one MutatingPolicy: the standard one plus the struct types its
/// expressions construct, `jsonpatch.escapeKey` and `list.indexOf`.
fn policy_env(spec: &Value) -> Result<Env, String> {
    let mut env = Env::stdlib();
    env.add_extension(cel::extensions::strings)
        .map_err(|e| e.to_string())?;
    let mut names = Vec::new();
    for m in spec
        .get("mutations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for p in ["/applyConfiguration/expression", "/jsonPatch/expression"] {
            if let Some(s) = m.pointer(p).and_then(Value::as_str) {
                struct_names(s, &mut names);
            }
        }
    }
    for n in names {
        env.add_type(MapStruct {
            ty: Type::new_struct(n),
        })
        .map_err(|e| e.to_string())?;
    }
    env.add_overload(
        "jsonpatch.escapeKey",
        "jsonpatch_escapeKey_string",
        vec![cel::common::types::STRING_TYPE],
        escape_key,
    )
    .map_err(|e| e.to_string())?;
    env.add_overload(
        "image",
        "image_string",
        vec![cel::common::types::STRING_TYPE],
        image_fn,
    )
    .map_err(|e| e.to_string())?;
    type Accessor = for<'b, 'v> fn(Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError>;
    let accessors: [(&str, Accessor); 5] = [
        ("registry", image_registry),
        ("repository", image_repository),
        ("tag", image_tag),
        ("digest", image_digest),
        ("identifier", image_identifier),
    ];
    for (name, f) in accessors {
        env.add_member_overload(
            name,
            &format!("image_{name}"),
            cel::common::types::MAP_TYPE,
            vec![],
            f,
        )
        .map_err(|e| e.to_string())?;
    }
    env.add_member_overload(
        "indexOf",
        "list_indexOf_dyn",
        cel::common::types::LIST_TYPE,
        vec![cel::common::types::DYN_TYPE],
        list_index_of,
    )
    .map_err(|e| e.to_string())?;
    Ok(env)
}

#[derive(Debug)]
pub(crate) enum Mutation {
    JsonPatch(Expr),
    ApplyConfiguration(Expr),
}

/// A compiled MutatingPolicy.
pub(crate) struct Mpol {
    pub vap: Vap,
    env: Arc<Env>,
    mutations: Vec<Mutation>,
}

impl std::fmt::Debug for Mpol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mpol")
            .field("mutations", &self.mutations)
            .finish()
    }
}

/// What a MutatingPolicy did to one object.
pub(crate) enum MpolOutcome {
    NotMatched,
    Mutated(Value),
    Error(String),
}

/// CEL to JSON (what a mutation expression returns).
pub(crate) fn cel_json(v: &CelValue) -> Result<Value, String> {
    Ok(match v {
        CelValue::Null => Value::Null,
        CelValue::Bool(b) => Value::Bool(*b),
        CelValue::Int(i) => Value::from(*i),
        CelValue::UInt(u) => Value::from(*u),
        CelValue::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .ok_or_else(|| format!("{f} is not a JSON number"))?,
        CelValue::String(s) => Value::String(s.to_string()),
        CelValue::List(l) => Value::Array(l.iter().map(cel_json).collect::<Result<_, _>>()?),
        CelValue::Map(m) => {
            let mut o = serde_json::Map::new();
            for (k, x) in m.map.iter() {
                let key = match k {
                    cel::objects::Key::String(s) => s.to_string(),
                    other => format!("{other:?}"),
                };
                o.insert(key, cel_json(x)?);
            }
            Value::Object(o)
        }
        other => return Err(format!("{other:?} is not representable as JSON")),
    })
}

impl Mpol {
    pub(crate) fn compile(doc: &Value, source: &str) -> Result<Mpol, PolicyError> {
        let spec = doc.get("spec").unwrap_or(&Value::Null);
        let env =
            policy_env(spec).map_err(|e| PolicyError::invalid(source, "spec.mutations", e))?;
        let vap = compile_vap_body(doc, source, &env)?;
        let mut mutations = Vec::new();
        for (i, m) in spec
            .get("mutations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let field = format!("spec.mutations[{i}]");
            let kind = m.get("patchType").and_then(Value::as_str).unwrap_or("");
            let (ptr, ctor): (&str, fn(Expr) -> Mutation) = match kind {
                "JSONPatch" => ("/jsonPatch/expression", Mutation::JsonPatch),
                "ApplyConfiguration" => (
                    "/applyConfiguration/expression",
                    Mutation::ApplyConfiguration,
                ),
                other => {
                    return Err(PolicyError::invalid(
                        source,
                        format!("{field}.patchType"),
                        format!("`{other}` is neither JSONPatch nor ApplyConfiguration"),
                    ));
                }
            };
            let Some(e) = m.pointer(ptr).and_then(Value::as_str) else {
                return Err(PolicyError::invalid(
                    source,
                    format!("{field}{}", ptr.replace('/', ".")),
                    "missing",
                ));
            };
            mutations.push(ctor(Expr::compile_in(
                &env,
                e,
                source,
                &format!("{field}{}", ptr.replace('/', ".")),
            )?));
        }
        if mutations.is_empty() {
            return Err(PolicyError::invalid(
                source,
                "spec.mutations",
                "a MutatingPolicy needs at least one mutation",
            ));
        }
        Ok(Mpol {
            vap,
            env: Arc::new(env),
            mutations,
        })
    }

    /// Applies the mutations to `obj` (whose CEL view is `input`, built by the caller for `obj`);
    /// `rebuild` makes the CEL view of an object changed by an earlier mutation.
    pub(crate) fn apply(
        &self,
        info: &ResInfo,
        obj: &Value,
        input: &CelInput,
        rebuild: &dyn Fn(&Value) -> CelInput,
    ) -> MpolOutcome {
        match self.vap.matched_context(info, &self.env, input) {
            Ok(Some(_)) => {}
            Ok(None) => return MpolOutcome::NotMatched,
            Err(e) if self.vap.fail_closed => return MpolOutcome::Error(e),
            Err(_) => return MpolOutcome::NotMatched,
        }
        let mut cur = obj.clone();
        for (i, m) in self.mutations.iter().enumerate() {
            let view = rebuild(&cur);
            let mut ctx = crate::celrule::context_in(&self.env, &view);
            crate::celrule::bind_variables(&mut ctx, self.vap.variables());
            let (expr, is_patch) = match m {
                Mutation::JsonPatch(e) => (e, true),
                Mutation::ApplyConfiguration(e) => (e, false),
            };
            let v = match expr.run(&ctx) {
                Ok(v) => v,
                Err(e) => {
                    return MpolOutcome::Error(format!("mutation {i} `{}`: {e}", expr.src.trim()));
                }
            };
            let v = match cel_json(&v) {
                Ok(v) => v,
                Err(e) => return MpolOutcome::Error(format!("mutation {i}: {e}")),
            };
            if is_patch {
                let ops = match v {
                    Value::Array(a) => a,
                    Value::Null => Vec::new(),
                    other => vec![other],
                };
                match crate::mutate::apply_patch(&cur, &ops) {
                    Ok(n) => cur = n,
                    Err(e) => return MpolOutcome::Error(format!("mutation {i}: {e}")),
                }
            } else if v.is_object() {
                cur = crate::mutate::apply_configuration(&cur, &v);
            } else if !v.is_null() {
                return MpolOutcome::Error(format!(
                    "mutation {i}: an apply configuration must be an object, got {v}"
                ));
            }
        }
        MpolOutcome::Mutated(cur)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_literals_are_found() {
        let mut n = Vec::new();
        struct_names(
            "Object{ spec: Object.spec{ containers: [Object.spec.containers{name: 'a'}] } } + [JSONPatch {op: 'add'}]",
            &mut n,
        );
        assert_eq!(
            n,
            vec![
                "Object",
                "Object.spec",
                "Object.spec.containers",
                "JSONPatch"
            ]
        );
    }
}
