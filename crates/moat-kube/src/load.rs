//! Loading Kubernetes manifests (YAML or JSON, multi-document, `List` kinds) into JSON values while
//! remembering the source line of every node, so a finding can name `file:line` and the field path.

use std::collections::HashMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use serde_saphyr::Spanned;

use crate::KubeError;

/// Hard limits for hostile input: a manifest larger than this is refused before parsing.
pub const MAX_MANIFEST_BYTES: usize = 64 * 1024 * 1024;
/// Deeper nesting than any real manifest has; refused so recursion stays bounded.
const MAX_DEPTH: usize = 200;

/// Kinds whose objects have no namespace (`kubectl api-resources --namespaced=false` of a cluster with
/// the usual add-ons), so that an object of another kind without `metadata.namespace` is in `default`.
const CLUSTER_SCOPED_KINDS: &[&str] = &[
    "Namespace",
    "Node",
    "PersistentVolume",
    "StorageClass",
    "VolumeAttachment",
    "CSIDriver",
    "CSINode",
    "ClusterRole",
    "ClusterRoleBinding",
    "PodSecurityPolicy",
    "PriorityClass",
    "RuntimeClass",
    "IngressClass",
    "CustomResourceDefinition",
    "APIService",
    "CertificateSigningRequest",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionPolicyBinding",
    "FlowSchema",
    "PriorityLevelConfiguration",
    "ComponentStatus",
    "TokenReview",
    "SelfSubjectAccessReview",
    "SelfSubjectRulesReview",
    "SubjectAccessReview",
    "ClusterPolicy",
    "ClusterCleanupPolicy",
    "ClusterIssuer",
    "GatewayClass",
];

/// One Kubernetes object from an input, with where it came from.
#[derive(Debug, Clone)]
pub struct Document {
    /// The file name as the user gave it (`-` for standard input).
    pub file: String,
    /// 0-based index of the YAML document in the file.
    pub index: u32,
    /// For objects inside a `List`, the path prefix of the item (`items[2]`), else empty.
    pub prefix: String,
    pub value: Value,
    /// Field path (relative to the object, like `spec.containers[0].image`) → 1-based line.
    pub lines: HashMap<String, u32>,
}

impl Document {
    /// Builds a document from a JSON value without source positions (admission requests).
    pub fn from_value(file: impl Into<String>, value: Value) -> Self {
        Document {
            file: file.into(),
            index: 0,
            prefix: String::new(),
            value,
            lines: HashMap::new(),
        }
    }

    pub fn kind(&self) -> &str {
        self.value.get("kind").and_then(Value::as_str).unwrap_or("")
    }

    pub fn api_version(&self) -> &str {
        self.value
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    pub fn name(&self) -> &str {
        self.value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    pub fn namespace(&self) -> Option<&str> {
        self.value
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
    }

    /// Whether objects of this kind live in a namespace (everything but the cluster-scoped kinds
    /// Kubernetes and the common add-ons define; an unknown kind, like most custom resources, is).
    pub fn is_namespaced(&self) -> bool {
        !CLUSTER_SCOPED_KINDS.contains(&self.kind())
    }

    /// The namespace the object is created in when the manifest is applied: `metadata.namespace`,
    /// else `default` for a namespaced kind — what `kubectl apply` without `-n` does in a fresh
    /// context, and how checkov, kube-score and `kyverno apply` read such an object. `None` for a
    /// cluster-scoped kind. Every judgement that depends on a namespace (relating objects, policy
    /// `match`/`exclude` by namespace, object names in reports) uses this one reading.
    pub fn effective_namespace(&self) -> Option<&str> {
        match self.namespace() {
            Some(ns) if !ns.is_empty() => Some(ns),
            _ if self.is_namespaced() => Some("default"),
            _ => None,
        }
    }

    /// `Kind/namespace/name` (the effective namespace: `Deployment/default/web` for a Deployment
    /// without one) or `Kind/name` for a cluster-scoped kind, naming the object in reports.
    pub fn object_ref(&self) -> String {
        match self.effective_namespace() {
            Some(ns) => format!("{}/{}/{}", self.kind(), ns, self.name()),
            None => format!("{}/{}", self.kind(), self.name()),
        }
    }

    /// The line of `path`, or of its nearest ancestor that exists in the source (a missing field is
    /// reported where it should have been written).
    pub fn line_of(&self, path: &str) -> Option<u32> {
        let mut p = path;
        loop {
            if let Some(l) = self.lines.get(p) {
                return Some(*l);
            }
            if p.is_empty() {
                return None;
            }
            p = parent_path(p);
        }
    }

    /// The full field path as the user sees it in the file (with the `items[i].` prefix of a List).
    pub fn display_path(&self, path: &str) -> String {
        match (self.prefix.is_empty(), path.is_empty()) {
            (true, _) => path.to_string(),
            (false, true) => self.prefix.clone(),
            (false, false) => format!("{}.{}", self.prefix, path),
        }
    }
}

/// `a.b[0].c` → `a.b[0]` → `a.b` → `a` → ``.
pub fn parent_path(p: &str) -> &str {
    if p.ends_with(']')
        && let Some(i) = p.rfind('[')
    {
        return &p[..i];
    }
    match p.rfind('.') {
        Some(i) => &p[..i],
        None => "",
    }
}

/// A YAML node with its children's positions, deserialized through serde-saphyr's `Spanned`.
enum Node {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<Node>>),
    /// Entries with the line of the key (where a person looks for the field).
    Map(Vec<(String, u32, Spanned<Node>)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::UInt(v))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Node, E> {
        Ok(Node::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
        let mut v = Vec::new();
        while let Some(x) = a.next_element::<Spanned<Node>>()? {
            v.push(x);
        }
        Ok(Node::Seq(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
        let mut v = Vec::new();
        while let Some(k) = a.next_key::<Spanned<Node>>()? {
            let key_line = k.referenced.line() as u32;
            let key = match k.value {
                Node::Str(s) => s,
                Node::Bool(b) => b.to_string(),
                Node::Int(i) => i.to_string(),
                Node::UInt(u) => u.to_string(),
                Node::Float(f) => f.to_string(),
                Node::Null => "null".to_string(),
                Node::Seq(_) | Node::Map(_) => {
                    return Err(de::Error::custom("a mapping key must be a scalar"));
                }
            };
            let val = a.next_value::<Spanned<Node>>()?;
            v.push((key, key_line, val));
        }
        Ok(Node::Map(v))
    }
}

fn to_value(
    node: Node,
    path: &str,
    depth: usize,
    lines: &mut HashMap<String, u32>,
) -> Result<Value, String> {
    if depth > MAX_DEPTH {
        return Err(format!("nesting deeper than {MAX_DEPTH} levels at {path}"));
    }
    Ok(match node {
        Node::Null => Value::Null,
        Node::Bool(b) => Value::Bool(b),
        Node::Int(i) => Value::Number(i.into()),
        Node::UInt(u) => Value::Number(u.into()),
        Node::Float(f) => Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        Node::Str(s) => Value::String(s),
        Node::Seq(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, it) in items.into_iter().enumerate() {
                let p = format!("{path}[{i}]");
                lines.insert(p.clone(), it.referenced.line() as u32);
                out.push(to_value(it.value, &p, depth + 1, lines)?);
            }
            Value::Array(out)
        }
        Node::Map(entries) => {
            let mut m = Map::new();
            for (k, key_line, v) in entries {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                let line = if key_line > 0 {
                    key_line
                } else {
                    v.referenced.line() as u32
                };
                lines.insert(p.clone(), line);
                let val = to_value(v.value, &p, depth + 1, lines)?;
                m.insert(k, val);
            }
            Value::Object(m)
        }
    })
}

/// Whether a text looks like Kubernetes manifests (for routing stdin): some line starts with
/// `apiVersion:` or `kind:` (YAML) or the text is JSON with both keys.
pub fn looks_like_kubernetes(text: &str) -> bool {
    let t = text.trim_start();
    if t.starts_with('{') || t.starts_with('[') {
        return t.contains("\"apiVersion\"") && t.contains("\"kind\"");
    }
    let mut api = false;
    let mut kind = false;
    for l in text.lines() {
        let l = l.trim_start_matches("- ").trim_start();
        api |= l.starts_with("apiVersion:");
        kind |= l.starts_with("kind:");
    }
    api && kind
}

/// A YAML/JSON syntax error as a typed parse error: the position where the parser stopped, and its
/// message on one line (without the source snippet, which a report entry does not need).
fn syntax_error(file: &str, e: &serde_saphyr::Error) -> KubeError {
    let loc = e.location();
    let (line, column) = match loc {
        Some(l) if l.line() > 0 => (
            u32::try_from(l.line()).ok(),
            u32::try_from(l.column()).ok().filter(|c| *c > 0),
        ),
        _ => (None, None),
    };
    let text = e.without_snippet().to_string();
    let first = text.lines().next().unwrap_or("").trim();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    // The parser's own "line N column M: " prefix repeats the position carried in the fields.
    let message = match (line, column) {
        (Some(l), Some(c)) => first
            .strip_prefix(&format!("line {l} column {c}: "))
            .unwrap_or(first),
        _ => first,
    };
    KubeError::Parse {
        file: file.to_string(),
        line,
        column,
        message: format!("not valid YAML/JSON: {message}"),
    }
}

/// Parses every document of a YAML or JSON text. `List` kinds (`v1/List`, `DeploymentList`...) are
/// expanded into their items. Documents that are not objects with a `kind` are skipped with a warning.
pub fn load_str(file: &str, text: &str) -> Result<(Vec<Document>, Vec<String>), KubeError> {
    if text.len() > MAX_MANIFEST_BYTES {
        return Err(KubeError::Input(format!(
            "{file}: manifest is {} bytes, more than the {MAX_MANIFEST_BYTES} byte limit",
            text.len()
        )));
    }
    let nodes: Vec<Spanned<Node>> =
        serde_saphyr::from_multiple(text).map_err(|e| syntax_error(file, &e))?;
    let mut docs = Vec::new();
    let mut warnings = Vec::new();
    for (index, n) in nodes.into_iter().enumerate() {
        let mut lines = HashMap::new();
        lines.insert(String::new(), n.referenced.line() as u32);
        let value = to_value(n.value, "", 0, &mut lines)
            .map_err(|e| KubeError::Input(format!("{file}: document {index}: {e}")))?;
        let index = index as u32;
        let Value::Object(_) = &value else {
            if !value.is_null() {
                warnings.push(format!(
                    "{file}: document {index} is not a Kubernetes object (not a mapping); skipped"
                ));
            }
            continue;
        };
        let kind = value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if kind.is_empty() {
            warnings.push(format!("{file}: document {index} has no `kind`; skipped"));
            continue;
        }
        if kind == "List"
            || (kind.ends_with("List") && value.get("items").is_some_and(Value::is_array))
        {
            let items = value
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for (i, item) in items.into_iter().enumerate() {
                let prefix = format!("items[{i}]");
                let mut sub = HashMap::new();
                for (p, l) in &lines {
                    if let Some(rest) = p.strip_prefix(&prefix) {
                        if rest.is_empty() {
                            sub.insert(String::new(), *l);
                        } else if let Some(r) = rest.strip_prefix('.') {
                            sub.insert(r.to_string(), *l);
                        }
                    }
                }
                if item
                    .get("kind")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    warnings.push(format!(
                        "{file}: document {index} {prefix} has no `kind`; skipped"
                    ));
                    continue;
                }
                docs.push(Document {
                    file: file.to_string(),
                    index,
                    prefix,
                    value: item,
                    lines: sub,
                });
            }
            continue;
        }
        docs.push(Document {
            file: file.to_string(),
            index,
            prefix: String::new(),
            value,
            lines,
        });
    }
    Ok((docs, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_paths_for_multi_document_yaml() {
        let text = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: a\nspec:\n  containers:\n  - name: c\n    securityContext:\n      privileged: true\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Service\n  metadata:\n    name: s\n";
        let (docs, warnings) = load_str("x.yaml", text).expect("parses");
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(docs.len(), 2);
        assert_eq!(
            docs[0].line_of("spec.containers[0].securityContext.privileged"),
            Some(9)
        );
        assert_eq!(
            docs[0].line_of("spec.containers[0].securityContext.runAsNonRoot"),
            Some(8)
        );
        assert_eq!(docs[1].index, 1);
        assert_eq!(docs[1].kind(), "Service");
        assert_eq!(
            docs[1].display_path("metadata.name"),
            "items[0].metadata.name"
        );
        assert_eq!(docs[1].line_of("metadata.name"), Some(17));
    }

    #[test]
    fn json_and_garbage() {
        let (docs, _) = load_str(
            "p.json",
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"}}"#,
        )
        .expect("json");
        assert_eq!(docs[0].name(), "p");
        let err = load_str("bad.yaml", "a: [1, 2\n").expect_err("unterminated flow sequence");
        assert!(err.to_string().contains("bad.yaml"), "{err}");
        assert!(looks_like_kubernetes("apiVersion: v1\nkind: Pod\n"));
        assert!(!looks_like_kubernetes("FROM debian\nRUN true\n"));
    }
}
