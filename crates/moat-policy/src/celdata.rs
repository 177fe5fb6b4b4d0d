//! Kyverno's CEL libraries over data supplied offline: `resource.Get`/`resource.List` read the
//! resources of a `kyverno test` Context file, `image.GetMetadata` its `images`. Without such data
//! (the webhook, `moat lint`) a policy calling them is reported unsupported and not evaluated.

use std::sync::Arc;

use cel::extractors::{Arguments, This};
use cel::{Context, ExecutionError, Value as CelValue};
use serde_json::Value;

use crate::OfflineData;
use crate::celrule::{plural, to_cel};

fn arg_str(args: &[CelValue], i: usize) -> String {
    match args.get(i) {
        Some(CelValue::String(s)) => s.to_string(),
        _ => String::new(),
    }
}

fn matches_resource(r: &Value, api_version: &str, resource: &str, namespace: &str) -> bool {
    let s = |p: &str| r.pointer(p).and_then(Value::as_str).unwrap_or("");
    s("/apiVersion") == api_version
        && plural(s("/kind")) == resource.to_ascii_lowercase()
        && (namespace.is_empty() || s("/metadata/namespace") == namespace)
}

/// The same image reference, with Docker Hub's implied parts made explicit.
fn normalize(reference: &str) -> String {
    let info = crate::eval::image_info(reference);
    let s = |k: &str| info[k].as_str().unwrap_or("").to_string();
    let mut out = format!("{}/{}", s("registry"), s("path"));
    if out.starts_with("docker.io/") && !s("path").contains('/') {
        out = format!("docker.io/library/{}", s("path"));
    }
    if !s("tag").is_empty() {
        out.push(':');
        out.push_str(&s("tag"));
    }
    if !s("digest").is_empty() {
        out.push('@');
        out.push_str(&s("digest"));
    }
    out
}

/// Binds `resource` and `image` and their functions to a CEL context.
pub(crate) fn bind(ctx: &mut Context<'_, '_>, data: &Arc<OfflineData>) {
    ctx.add_variable_from_value(
        "resource",
        CelValue::from(std::collections::HashMap::<String, CelValue>::new()),
    );
    ctx.add_variable_from_value(
        "image",
        CelValue::from(std::collections::HashMap::<String, CelValue>::new()),
    );
    let d = Arc::clone(data);
    let _ = ctx.add_function(
        "Get",
        move |This(_lib): This<CelValue>,
              Arguments(args): Arguments|
              -> Result<CelValue, ExecutionError> {
            let (api, res, ns, name) = (
                arg_str(&args, 0),
                arg_str(&args, 1),
                arg_str(&args, 2),
                arg_str(&args, 3),
            );
            d.resources
                .iter()
                .find(|r| {
                    matches_resource(r, &api, &res, &ns)
                        && r.pointer("/metadata/name").and_then(Value::as_str)
                            == Some(name.as_str())
                })
                .map(to_cel)
                .ok_or_else(|| {
                    ExecutionError::function_error(
                        "resource.Get",
                        format!("{api} {res} {ns}/{name} not found in the test's context"),
                    )
                })
        },
    );
    let d = Arc::clone(data);
    let _ = ctx.add_function(
        "List",
        move |This(_lib): This<CelValue>, Arguments(args): Arguments| -> CelValue {
            let (api, res, ns) = (arg_str(&args, 0), arg_str(&args, 1), arg_str(&args, 2));
            let items: Vec<Value> = d
                .resources
                .iter()
                .filter(|r| matches_resource(r, &api, &res, &ns))
                .cloned()
                .collect();
            to_cel(&serde_json::json!({ "items": items }))
        },
    );
    let d = Arc::clone(data);
    let _ = ctx.add_function(
        "GetMetadata",
        move |This(_lib): This<CelValue>,
              reference: Arc<String>|
              -> Result<CelValue, ExecutionError> {
            let want = normalize(&reference);
            d.images
                .iter()
                .find(|i| {
                    i.get("image")
                        .and_then(Value::as_str)
                        .is_some_and(|x| normalize(x) == want)
                })
                .map(|i| {
                    let mut m = i.as_object().cloned().unwrap_or_default();
                    m.remove("image");
                    to_cel(&Value::Object(m))
                })
                .ok_or_else(|| {
                    ExecutionError::function_error(
                        "image.GetMetadata",
                        format!("image {reference} not found in the test's context"),
                    )
                })
        },
    );
}
