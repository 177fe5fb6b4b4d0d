//! Kyverno `match` / `exclude` blocks: resource kinds, names, namespaces, selectors, operations,
//! annotations, and request subjects.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::PolicyError;
use crate::cond::wildcard;

/// What matching needs to know about a request.
#[derive(Debug, Clone, Default)]
pub(crate) struct ResInfo<'a> {
    pub group: &'a str,
    pub version: &'a str,
    pub kind: &'a str,
    pub name: &'a str,
    pub namespace: &'a str,
    pub labels: Option<&'a serde_json::Map<String, Value>>,
    pub annotations: Option<&'a serde_json::Map<String, Value>>,
    pub operation: &'a str,
    pub namespace_labels: Option<&'a BTreeMap<String, String>>,
    pub user_info: Option<&'a Value>,
}

impl<'a> ResInfo<'a> {
    pub(crate) fn of(obj: &'a Value) -> ResInfo<'a> {
        let api = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        let (group, version) = match api.rsplit_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api),
        };
        let meta = obj.get("metadata");
        let s = |k: &str| {
            meta.and_then(|m| m.get(k))
                .and_then(Value::as_str)
                .unwrap_or("")
        };
        ResInfo {
            group,
            version,
            kind: obj.get("kind").and_then(Value::as_str).unwrap_or(""),
            name: if s("name").is_empty() {
                s("generateName")
            } else {
                s("name")
            },
            namespace: s("namespace"),
            labels: meta
                .and_then(|m| m.get("labels"))
                .and_then(Value::as_object),
            annotations: meta
                .and_then(|m| m.get("annotations"))
                .and_then(Value::as_object),
            ..ResInfo::default()
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Match {
    any: Vec<Filter>,
    all: Vec<Filter>,
}

#[derive(Debug, Clone, Default)]
struct Filter {
    res: Option<ResDesc>,
    subjects: Vec<Subject>,
    roles: Vec<String>,
    cluster_roles: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct ResDesc {
    kinds: Vec<KindSel>,
    names: Vec<String>,
    namespaces: Vec<String>,
    annotations: Vec<(String, String)>,
    selector: Option<Selector>,
    namespace_selector: Option<Selector>,
    operations: Vec<String>,
}

#[derive(Debug, Clone)]
struct KindSel {
    group: Option<String>,
    version: Option<String>,
    kind: String,
    subresource: Option<String>,
}

#[derive(Debug, Clone)]
struct Subject {
    kind: String,
    name: String,
    namespace: String,
}

/// A Kubernetes label selector (values may hold wildcards, as Kyverno allows).
#[derive(Debug, Clone, Default)]
pub(crate) struct Selector {
    labels: Vec<(String, String)>,
    exprs: Vec<(String, String, Vec<String>)>,
}

impl Selector {
    pub(crate) fn compile(v: &Value, source: &str, field: &str) -> Result<Selector, PolicyError> {
        let mut s = Selector::default();
        if let Some(ml) = v.get("matchLabels") {
            let Some(o) = ml.as_object() else {
                return Err(PolicyError::invalid(
                    source,
                    format!("{field}.matchLabels"),
                    "must be a map",
                ));
            };
            for (k, x) in o {
                s.labels.push((k.clone(), scalar(x)));
            }
        }
        if let Some(me) = v.get("matchExpressions") {
            let Some(list) = me.as_array() else {
                return Err(PolicyError::invalid(
                    source,
                    format!("{field}.matchExpressions"),
                    "must be a list",
                ));
            };
            for (i, e) in list.iter().enumerate() {
                let key = e
                    .get("key")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let op = e
                    .get("operator")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                if !matches!(op.as_str(), "In" | "NotIn" | "Exists" | "DoesNotExist") {
                    return Err(PolicyError::invalid(
                        source,
                        format!("{field}.matchExpressions[{i}].operator"),
                        format!("unknown operator `{op}`"),
                    ));
                }
                let values = e
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().map(scalar).collect())
                    .unwrap_or_default();
                s.exprs.push((key, op, values));
            }
        }
        Ok(s)
    }

    pub(crate) fn matches(&self, get: &dyn Fn(&str) -> Option<String>) -> bool {
        self.labels
            .iter()
            .all(|(k, v)| get(k).is_some_and(|x| wildcard(v, &x)))
            && self.exprs.iter().all(|(k, op, vals)| {
                let x = get(k);
                match op.as_str() {
                    "In" => x.is_some_and(|x| vals.iter().any(|v| wildcard(v, &x))),
                    "NotIn" => x.is_none_or(|x| !vals.iter().any(|v| wildcard(v, &x))),
                    "Exists" => x.is_some(),
                    _ => x.is_none(),
                }
            })
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => crate::cond::scalar_string(other).unwrap_or_default(),
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

impl Match {
    pub(crate) fn compile(v: &Value, source: &str, field: &str) -> Result<Match, PolicyError> {
        let mut m = Match {
            any: Vec::new(),
            all: Vec::new(),
        };
        if !v.is_object() {
            return Err(PolicyError::invalid(source, field, "must be a map"));
        }
        for (key, target) in [("any", &mut m.any), ("all", &mut m.all)] {
            if let Some(list) = v.get(key) {
                let Some(list) = list.as_array() else {
                    return Err(PolicyError::invalid(
                        source,
                        format!("{field}.{key}"),
                        "must be a list",
                    ));
                };
                for (i, f) in list.iter().enumerate() {
                    target.push(Filter::compile(f, source, &format!("{field}.{key}[{i}]"))?);
                }
            }
        }
        if m.any.is_empty() && m.all.is_empty() {
            let f = Filter::compile(v, source, field)?;
            if f.res.is_some()
                || !f.subjects.is_empty()
                || !f.roles.is_empty()
                || !f.cluster_roles.is_empty()
            {
                m.all.push(f);
            }
        }
        Ok(m)
    }

    /// Whether the block selects the request (for `match`); an empty block selects nothing.
    pub(crate) fn matches(&self, info: &ResInfo) -> bool {
        if self.any.is_empty() && self.all.is_empty() {
            return false;
        }
        (self.any.is_empty() || self.any.iter().any(|f| f.matches(info)))
            && (self.all.is_empty() || self.all.iter().all(|f| f.matches(info)))
    }
}

impl Filter {
    fn compile(v: &Value, source: &str, field: &str) -> Result<Filter, PolicyError> {
        let mut f = Filter::default();
        if let Some(r) = v.get("resources") {
            f.res = Some(ResDesc::compile(r, source, &format!("{field}.resources"))?);
        }
        if let Some(Value::Array(subs)) = v.get("subjects") {
            for s in subs {
                let g = |k: &str| s.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                f.subjects.push(Subject {
                    kind: g("kind"),
                    name: g("name"),
                    namespace: g("namespace"),
                });
            }
        }
        f.roles = strings(v.get("roles"));
        f.cluster_roles = strings(v.get("clusterRoles"));
        Ok(f)
    }

    fn matches(&self, info: &ResInfo) -> bool {
        if let Some(r) = &self.res
            && !r.matches(info)
        {
            return false;
        }
        let ui = info.user_info;
        let username = ui
            .and_then(|u| u.get("username"))
            .and_then(Value::as_str)
            .unwrap_or("");
        let groups = strings(ui.and_then(|u| u.get("groups")));
        if !self.subjects.is_empty()
            && !self.subjects.iter().any(|s| match s.kind.as_str() {
                "User" => wildcard(&s.name, username),
                "Group" => groups.iter().any(|g| wildcard(&s.name, g)),
                "ServiceAccount" => {
                    username == format!("system:serviceaccount:{}:{}", s.namespace, s.name)
                }
                _ => false,
            })
        {
            return false;
        }
        for (want, key) in [
            (&self.roles, "roles"),
            (&self.cluster_roles, "clusterRoles"),
        ] {
            if !want.is_empty() {
                let have = strings(ui.and_then(|u| u.get(key)));
                if !want.iter().any(|w| have.iter().any(|h| wildcard(w, h))) {
                    return false;
                }
            }
        }
        true
    }
}

impl ResDesc {
    fn compile(v: &Value, source: &str, field: &str) -> Result<ResDesc, PolicyError> {
        let mut d = ResDesc::default();
        for k in strings(v.get("kinds")) {
            let (base, sub) = match k.split_once('/') {
                // `Pod/exec` (a subresource) vs `apps/v1/Deployment`: a subresource starts lowercase.
                Some((b, s))
                    if !b.contains('.')
                        && s.chars().next().is_some_and(|c| c.is_lowercase())
                        && !k.contains("/v") =>
                {
                    (b.to_string(), Some(s.to_string()))
                }
                _ => (k.clone(), None),
            };
            let parts: Vec<&str> = base.split('/').collect();
            let sel = match parts.as_slice() {
                [kind] => KindSel {
                    group: None,
                    version: None,
                    kind: kind.to_string(),
                    subresource: sub,
                },
                [version, kind] => KindSel {
                    group: None,
                    version: Some(version.to_string()),
                    kind: kind.to_string(),
                    subresource: sub,
                },
                [group, version, kind] => KindSel {
                    group: Some(group.to_string()),
                    version: Some(version.to_string()),
                    kind: kind.to_string(),
                    subresource: sub,
                },
                _ => {
                    return Err(PolicyError::invalid(
                        source,
                        format!("{field}.kinds"),
                        format!("bad kind `{k}`"),
                    ));
                }
            };
            d.kinds.push(sel);
        }
        d.names = strings(v.get("names"));
        if let Some(n) = v.get("name").and_then(Value::as_str) {
            d.names.push(n.to_string());
        }
        d.namespaces = strings(v.get("namespaces"));
        if let Some(Value::Object(a)) = v.get("annotations") {
            d.annotations = a.iter().map(|(k, x)| (k.clone(), scalar(x))).collect();
        }
        if let Some(s) = v.get("selector").filter(|s| !s.is_null()) {
            d.selector = Some(Selector::compile(s, source, &format!("{field}.selector"))?);
        }
        if let Some(s) = v.get("namespaceSelector").filter(|s| !s.is_null()) {
            d.namespace_selector = Some(Selector::compile(
                s,
                source,
                &format!("{field}.namespaceSelector"),
            )?);
        }
        d.operations = strings(v.get("operations"));
        Ok(d)
    }

    fn matches(&self, info: &ResInfo) -> bool {
        if !self.kinds.is_empty()
            && !self.kinds.iter().any(|k| {
                k.subresource.is_none()
                    && (k.kind == "*" || wildcard(&k.kind, info.kind))
                    && k.group
                        .as_deref()
                        .is_none_or(|g| g == "*" || wildcard(g, info.group))
                    && k.version
                        .as_deref()
                        .is_none_or(|v| v == "*" || wildcard(v, info.version))
            })
        {
            return false;
        }
        if !self.names.is_empty() && !self.names.iter().any(|n| wildcard(n, info.name)) {
            return false;
        }
        if !self.namespaces.is_empty() {
            let ns = if info.kind == "Namespace" {
                info.name
            } else {
                info.namespace
            };
            if !self.namespaces.iter().any(|n| wildcard(n, ns)) {
                return false;
            }
        }
        if !self.operations.is_empty()
            && !self
                .operations
                .iter()
                .any(|o| o.eq_ignore_ascii_case(info.operation))
        {
            return false;
        }
        if !self.annotations.is_empty() {
            let Some(a) = info.annotations else {
                return false;
            };
            if !self.annotations.iter().all(|(k, v)| {
                a.iter()
                    .any(|(ak, av)| wildcard(k, ak) && wildcard(v, &scalar(av)))
            }) {
                return false;
            }
        }
        if let Some(sel) = &self.selector {
            let labels = info.labels;
            if !sel.matches(&|k| labels.and_then(|l| l.get(k)).map(scalar)) {
                return false;
            }
        }
        if let Some(sel) = &self.namespace_selector {
            if info.kind == "Namespace" {
                let labels = info.labels;
                if !sel.matches(&|k| labels.and_then(|l| l.get(k)).map(scalar)) {
                    return false;
                }
            } else {
                let nl = info.namespace_labels;
                if !sel.matches(&|k| nl.and_then(|l| l.get(k)).cloned()) {
                    return false;
                }
            }
        }
        true
    }
}
