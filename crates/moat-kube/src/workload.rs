//! Where the pod template sits in each workload kind.

use serde_json::Value;

/// The pod metadata and spec of a workload, with their field paths inside the object.
#[derive(Debug, Clone, Copy)]
pub struct PodTemplate<'a> {
    /// `metadata` for a Pod, `spec.template.metadata` for a Deployment...
    pub meta_path: &'static str,
    pub spec_path: &'static str,
    pub meta: Option<&'a Value>,
    pub spec: &'a Value,
}

/// The (metadata, spec) paths of the pod a kind runs, or None when the kind runs no pod.
pub fn pod_paths(kind: &str) -> Option<(&'static str, &'static str)> {
    Some(match kind {
        "Pod" => ("metadata", "spec"),
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "Job"
        | "ReplicationController" => ("spec.template.metadata", "spec.template.spec"),
        "CronJob" => (
            "spec.jobTemplate.spec.template.metadata",
            "spec.jobTemplate.spec.template.spec",
        ),
        "PodTemplate" => ("template.metadata", "template.spec"),
        _ => return None,
    })
}

/// Looks up a dotted path (no indexes) in a value.
pub fn get_path<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for seg in path.split('.').filter(|s| !s.is_empty()) {
        cur = cur.get(seg)?;
    }
    Some(cur)
}

/// Finds the pod template of a workload object. A workload whose spec is missing or not an object
/// yields None (nothing to judge; the API server would reject it).
pub fn pod_template<'a>(obj: &'a Value, kind: &str) -> Option<PodTemplate<'a>> {
    let (meta_path, spec_path) = pod_paths(kind)?;
    let spec = get_path(obj, spec_path).filter(|s| s.is_object())?;
    let meta = get_path(obj, meta_path).filter(|m| m.is_object());
    Some(PodTemplate {
        meta_path,
        spec_path,
        meta,
        spec,
    })
}
