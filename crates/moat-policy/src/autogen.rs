//! Kyverno "autogen": a rule written for Pods also judges pod controllers (Deployment, CronJob, ...)
//! through their pod template. moat does it by judging the template as a Pod, which is what
//! Kyverno's rewritten rules (`request.object.spec.template...`) compute.

use serde_json::{Map, Value, json};

/// Whether a rule can be applied to pod controllers: it selects Pods only, by kind alone.
pub(crate) fn eligible(rule: &Value) -> bool {
    let mut saw_pod = false;
    for block in ["match", "exclude"] {
        let Some(b) = rule.get(block) else { continue };
        let mut filters: Vec<&Value> = Vec::new();
        for key in ["any", "all"] {
            if let Some(Value::Array(l)) = b.get(key) {
                filters.extend(l.iter());
            }
        }
        if b.get("resources").is_some() {
            filters.push(b);
        }
        for f in filters {
            let Some(r) = f.get("resources") else {
                continue;
            };
            for k in ["name", "names", "selector", "annotations"] {
                if r.get(k).is_some_and(|v| !v.is_null()) {
                    return false;
                }
            }
            let kinds = r.get("kinds").and_then(Value::as_array);
            for k in kinds.into_iter().flatten() {
                match k.as_str() {
                    Some("Pod") | Some("v1/Pod") | Some("core/v1/Pod") | Some("/v1/Pod") => {
                        if block == "match" {
                            saw_pod = true;
                        }
                    }
                    _ => return false,
                }
            }
        }
    }
    saw_pod
}

/// The pod template of a controller, as a Pod object, or None when `obj` has none.
pub(crate) fn pod_of(obj: &Value, kind: &str) -> Option<Value> {
    let template = match kind {
        "CronJob" => obj.pointer("/spec/jobTemplate/spec/template")?,
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "Job"
        | "ReplicationController" => obj.pointer("/spec/template")?,
        _ => return None,
    };
    let mut meta = template
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_else(Map::new);
    if let Some(ns) = obj.pointer("/metadata/namespace")
        && !meta.contains_key("namespace")
    {
        meta.insert("namespace".into(), ns.clone());
    }
    Some(json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": Value::Object(meta),
        "spec": template.get("spec").cloned().unwrap_or(Value::Null),
    }))
}
