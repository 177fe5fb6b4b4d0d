//! Best practices beyond the Pod Security Standards (the kube-score / kubesec / Polaris class) and
//! RBAC least-privilege rules. Ids are stable: `MOAT-K8S-0xx` for workloads and services,
//! `MOAT-K8S-1xx` for RBAC.

use std::collections::BTreeMap;

use moat_model::{Finding, FindingKind, Severity};
use serde::Serialize;
use serde_json::Value;

use crate::{Document, finding_at, pod_template};

/// One rule, for `--list-rules` and documentation.
#[derive(Debug, Clone, Serialize)]
pub struct RuleInfo {
    pub id: &'static str,
    pub severity: Severity,
    pub title: &'static str,
    pub why: &'static str,
    pub fix: &'static str,
}

macro_rules! rules {
    ($($name:ident = $id:literal, $sev:ident, $title:literal, $why:literal, $fix:literal;)*) => {
        $(const $name: RuleInfo = RuleInfo { id: $id, severity: Severity::$sev, title: $title, why: $why, fix: $fix };)*
        /// Every best-practice and RBAC rule.
        pub fn rule_table() -> Vec<RuleInfo> { vec![$($name),*] }
    };
}

rules! {
    REQUESTS = "MOAT-K8S-001", Low, "Container has no CPU or memory requests",
        "Without requests the scheduler cannot place the pod sensibly and it is first to be evicted under pressure.",
        "Set resources.requests.cpu and resources.requests.memory.";
    LIMITS = "MOAT-K8S-002", Medium, "Container has no memory or CPU limit",
        "Without limits one container can exhaust the node's memory or CPU (a denial of service for its neighbours).",
        "Set resources.limits.memory (and resources.limits.cpu).";
    LIVENESS = "MOAT-K8S-003", Low, "Container has no liveness probe",
        "Without a liveness probe a hung process is never restarted.",
        "Add a livenessProbe (httpGet, tcpSocket, grpc or exec).";
    READINESS = "MOAT-K8S-004", Low, "Container has no readiness probe",
        "Without a readiness probe traffic is sent to the container before it can serve.",
        "Add a readinessProbe.";
    IMAGE_TAG = "MOAT-K8S-005", Medium, "Image uses the latest tag or no tag",
        "A mutable tag means what runs is not what was scanned or reviewed, and rollbacks are not reproducible.",
        "Pin the image to a version tag, better to a digest (image@sha256:...).";
    PULL_POLICY = "MOAT-K8S-006", Low, "imagePullPolicy is not Always for an image not pinned by digest",
        "With IfNotPresent a node may run a stale or tampered image cached under the same tag. Without imagePullPolicy Kubernetes defaults it from the tag: Always for :latest or no tag, IfNotPresent for any other tag.",
        "Pin the image by digest, or set imagePullPolicy: Always.";
    READ_ONLY_ROOT = "MOAT-K8S-007", Low, "Root filesystem is writable",
        "A writable root filesystem lets an attacker drop tools or modify binaries inside the container.",
        "Set securityContext.readOnlyRootFilesystem: true and mount emptyDir volumes where writes are needed.";
    AUTOMOUNT_TOKEN = "MOAT-K8S-008", Low, "Service account token is mounted automatically",
        "Most workloads never call the Kubernetes API; a mounted token is a credential an attacker can use.",
        "Set automountServiceAccountToken: false on the pod (or its service account) unless the API is needed.";
    RUNTIME_SOCKET = "MOAT-K8S-009", Critical, "Container runtime socket mounted",
        "Access to the Docker/containerd/CRI-O socket is full control of every container on the node.",
        "Remove the hostPath volume of the runtime socket.";
    SENSITIVE_HOST_PATH = "MOAT-K8S-010", High, "Sensitive host path mounted",
        "Mounting /, /etc, /proc, /sys, /root, /var/run, /var/lib/kubelet or similar gives the pod node secrets or control.",
        "Remove the hostPath volume, or mount a narrower path read-only.";
    DEFAULT_NAMESPACE = "MOAT-K8S-011", Low, "Object in the default namespace",
        "The default namespace mixes unrelated workloads under one policy and RBAC scope. An object without metadata.namespace lands in the namespace of whoever applies it, `default` unless kubectl -n or a kustomization says otherwise.",
        "Set metadata.namespace to a dedicated namespace.";
    NO_NETWORK_POLICY = "MOAT-K8S-012", Low, "No NetworkPolicy selects this workload",
        "Without a NetworkPolicy every pod can reach this workload and it can reach everything.",
        "Add a NetworkPolicy (in the same input) whose podSelector matches the pod labels.";
    NODE_PORT = "MOAT-K8S-013", Medium, "Service of type NodePort",
        "A NodePort opens the port on every node, outside ingress controls.",
        "Use a ClusterIP Service behind an Ingress or Gateway.";
    LOAD_BALANCER = "MOAT-K8S-014", Medium, "Service of type LoadBalancer",
        "A LoadBalancer Service exposes the workload outside the cluster, often to the internet.",
        "Use an Ingress/Gateway with TLS and authentication, or restrict loadBalancerSourceRanges.";
    PSP_REMOVED = "MOAT-K8S-015", Medium, "PodSecurityPolicy is removed from Kubernetes",
        "PodSecurityPolicy was deprecated in Kubernetes v1.21 and removed in v1.25: a cluster at v1.25 or later does not enforce this object at all, so the pods it was meant to restrict are admitted unchecked.",
        "Label the namespaces with pod-security.kubernetes.io/enforce: restricted (Pod Security Admission) or enforce the same rules with an admission policy; moat judges this object's fields as the Pod Security Standards checks they map to.";
    NETPOL_SPLIT_PEERS = "MOAT-K8S-016", Medium, "NetworkPolicy namespaceSelector and podSelector are separate peers",
        "Two peers in one from/to list are alternatives: a peer with only namespaceSelector admits every pod of the selected namespaces, and a peer with only podSelector admits the matching pods of the policy's own namespace. Written as one peer, both selectors must match.",
        "Put namespaceSelector and podSelector in the same peer (one list item) to allow only the matching pods of the selected namespaces.";
    RBAC_WILDCARD_VERBS = "MOAT-K8S-101", High, "RBAC rule grants all verbs",
        "A `*` verb includes delete, escalate, bind and impersonate, and verbs added in the future.",
        "List the verbs needed (get, list, watch...).";
    RBAC_WILDCARD_RESOURCES = "MOAT-K8S-102", High, "RBAC rule grants all resources",
        "A `*` resource includes secrets and every resource added later.",
        "List the resources needed.";
    RBAC_SECRETS = "MOAT-K8S-103", High, "RBAC rule grants read access to secrets",
        "Reading secrets exposes every credential in scope (service account tokens, TLS keys, passwords).",
        "Grant access to named secrets only (resourceNames), or avoid it.";
    RBAC_ESCALATE = "MOAT-K8S-104", Critical, "RBAC rule grants escalate, bind or impersonate",
        "These verbs let a subject grant itself any permission or act as another user: cluster-admin in steps.",
        "Remove escalate, bind and impersonate.";
    RBAC_EXEC = "MOAT-K8S-105", High, "RBAC rule allows exec or attach into pods",
        "pods/exec and pods/attach run commands in any pod in scope, with its service account and secrets.",
        "Remove create on pods/exec and pods/attach.";
    RBAC_CLUSTER_ADMIN = "MOAT-K8S-106", Critical, "Binding to cluster-admin",
        "cluster-admin is unrestricted control of the whole cluster.",
        "Bind a role with only the permissions the subject needs.";
    RBAC_EVERYONE = "MOAT-K8S-107", High, "Role bound to every authenticated or anonymous user",
        "The groups system:authenticated and system:unauthenticated (and the user system:anonymous) hold every account the cluster knows, or every request without credentials: the role's permissions are granted to anyone who can reach the API server.",
        "Bind the role to the service accounts, users or groups that need it.";
}

fn finding(doc: &Document, rule: &RuleInfo, path: &str, message: String) -> Finding {
    let mut f = finding_at(
        doc,
        rule.id,
        FindingKind::Kubernetes,
        rule.severity,
        rule.title,
        path,
    );
    f.message = message;
    f.why = Some(rule.why.to_string());
    f.fix = Some(rule.fix.to_string());
    f
}

fn field<'a>(v: &'a Value, k: &str) -> Option<&'a Value> {
    v.get(k).filter(|x| !x.is_null())
}

fn has_digest(image: &str) -> bool {
    image.contains("@sha256:") || image.contains("@sha512:")
}

/// The tag of an image reference, if any (a `:` after the last `/`).
fn image_tag(image: &str) -> Option<&str> {
    let name = image.split('@').next().unwrap_or(image);
    let last = name.rsplit('/').next().unwrap_or(name);
    last.split_once(':').map(|(_, t)| t)
}

/// The pull policy Kubernetes writes when a container has none: `Always` for `:latest` or no tag,
/// else `IfNotPresent` (a digest-pinned image is never asked about here). See
/// https://kubernetes.io/docs/concepts/containers/images/#imagepullpolicy-defaulting
fn default_pull_policy(image: &str) -> &'static str {
    match image_tag(image) {
        None | Some("latest") => "Always",
        Some(_) => "IfNotPresent",
    }
}

const RUNTIME_SOCKETS: &[&str] = &[
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/var/run/containerd/containerd.sock",
    "/run/containerd/containerd.sock",
    "/var/run/crio/crio.sock",
    "/run/crio/crio.sock",
    "/var/run/cri-dockerd.sock",
    "/run/podman/podman.sock",
];

const SENSITIVE_PATHS: &[&str] = &[
    "/",
    "/etc",
    "/proc",
    "/sys",
    "/root",
    "/home",
    "/boot",
    "/dev",
    "/var/run",
    "/run",
    "/var/lib/kubelet",
    "/var/lib/docker",
    "/var/lib/containerd",
    "/etc/kubernetes",
    "/var/log",
];

fn is_sensitive(path: &str) -> bool {
    let p = path.trim_end_matches('/');
    let p = if p.is_empty() { "/" } else { p };
    SENSITIVE_PATHS
        .iter()
        .any(|s| p == *s || (*s != "/" && p.starts_with(&format!("{s}/"))))
}

/// The labels of a workload's pods (its pod template's metadata).
fn pod_labels(meta: Option<&Value>) -> BTreeMap<String, String> {
    meta.and_then(|m| field(m, "labels"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a label selector (matchLabels + matchExpressions) selects a label set. An empty selector
/// selects everything, as in NetworkPolicy.
fn selects(selector: Option<&Value>, labels: &BTreeMap<String, String>) -> bool {
    let Some(sel) = selector else { return true };
    if let Some(ml) = field(sel, "matchLabels").and_then(Value::as_object) {
        for (k, v) in ml {
            if labels.get(k).map(String::as_str) != v.as_str() {
                return false;
            }
        }
    }
    if let Some(exprs) = field(sel, "matchExpressions").and_then(Value::as_array) {
        for e in exprs {
            let key = e.get("key").and_then(Value::as_str).unwrap_or("");
            let values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let have = labels.get(key);
            let ok = match e.get("operator").and_then(Value::as_str).unwrap_or("") {
                "In" => have.is_some_and(|h| values.contains(&h.as_str())),
                "NotIn" => have.is_none_or(|h| !values.contains(&h.as_str())),
                "Exists" => have.is_some(),
                "DoesNotExist" => have.is_none(),
                _ => false,
            };
            if !ok {
                return false;
            }
        }
    }
    true
}

const NAMESPACED_KINDS: &[&str] = &[
    "Pod",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "CronJob",
    "ReplicationController",
    "PodTemplate",
    "Service",
    "ConfigMap",
    "Secret",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "Ingress",
    "NetworkPolicy",
    "PersistentVolumeClaim",
];

/// The namespace an object is created in: its own, else `default` (see
/// [`Document::effective_namespace`]). Used by every rule that relates objects by namespace, so an
/// object without one and an object in `default` are the same.
fn effective_namespace(d: &Document) -> &str {
    d.effective_namespace().unwrap_or("default")
}

/// A `from`/`to` list with a namespaceSelector-only peer and a podSelector-only peer: an OR that
/// was almost always meant as an AND (one peer with both selectors).
fn split_peers(d: &Document, out: &mut Vec<Finding>) {
    for (dir, peers_key) in [("ingress", "from"), ("egress", "to")] {
        let Some(rules) = d
            .value
            .pointer(&format!("/spec/{dir}"))
            .and_then(Value::as_array)
        else {
            continue;
        };
        for (i, r) in rules.iter().enumerate() {
            let Some(peers) = field(r, peers_key).and_then(Value::as_array) else {
                continue;
            };
            let only = |p: &Value, k: &str| {
                field(p, k).is_some()
                    && p.as_object().is_some_and(|o| {
                        o.iter()
                            .filter(|(_, v)| !v.is_null())
                            .all(|(key, _)| key == k)
                    })
            };
            let ns_peer = peers.iter().position(|p| only(p, "namespaceSelector"));
            let pod_peer = peers.iter().position(|p| only(p, "podSelector"));
            if let (Some(n), Some(p)) = (ns_peer, pod_peer) {
                out.push(finding(
                    d,
                    &NETPOL_SPLIT_PEERS,
                    &format!("spec.{dir}[{i}].{peers_key}[{}]", n.max(p)),
                    format!(
                        "{} spec.{dir}[{i}].{peers_key}: peer {n} (namespaceSelector) and peer {p} (podSelector) are separate: every pod of the selected namespaces, or the matching pods of namespace {:?}, are allowed",
                        d.object_ref(),
                        effective_namespace(d)
                    ),
                ));
            }
        }
    }
}

/// Workload, service and namespace rules.
pub fn best_practices(docs: &[Document]) -> Vec<Finding> {
    let mut out = Vec::new();
    let policies: Vec<&Document> = docs
        .iter()
        .filter(|d| d.kind() == "NetworkPolicy")
        .collect();
    for d in docs {
        let kind = d.kind();
        if NAMESPACED_KINDS.contains(&kind) {
            match d.namespace() {
                Some("default") => out.push(finding(
                    d,
                    &DEFAULT_NAMESPACE,
                    "metadata.namespace",
                    format!("{} is in namespace \"default\"", d.object_ref()),
                )),
                None | Some("") => out.push(finding(
                    d,
                    &DEFAULT_NAMESPACE,
                    "metadata.namespace",
                    format!(
                        "{} has no metadata.namespace: it is created in \"default\" unless the one who applies it chooses another",
                        d.object_ref()
                    ),
                )),
                Some(_) => {}
            }
        }
        if kind == "NetworkPolicy" {
            split_peers(d, &mut out);
        }
        if kind == "PodSecurityPolicy" {
            out.push(finding(
                d,
                &PSP_REMOVED,
                "apiVersion",
                format!(
                    "{} ({}) is not enforced by Kubernetes v1.25 or later",
                    d.object_ref(),
                    d.api_version()
                ),
            ));
        }
        if kind == "Service" {
            match d.value.pointer("/spec/type").and_then(Value::as_str) {
                Some("NodePort") => out.push(finding(
                    d,
                    &NODE_PORT,
                    "spec.type",
                    format!("Service {} has type NodePort", d.name()),
                )),
                Some("LoadBalancer") => out.push(finding(
                    d,
                    &LOAD_BALANCER,
                    "spec.type",
                    format!("Service {} has type LoadBalancer", d.name()),
                )),
                _ => {}
            }
        }
        let Some(t) = pod_template(&d.value, kind) else {
            continue;
        };
        let sp = t.spec_path;
        let batch = matches!(kind, "Job" | "CronJob");

        // NetworkPolicy selection within the same input.
        let labels = pod_labels(t.meta);
        let ns = effective_namespace(d);
        let selected = policies.iter().any(|p| {
            effective_namespace(p) == ns
                && selects(
                    p.value
                        .pointer("/spec/podSelector")
                        .filter(|v| !v.is_null()),
                    &labels,
                )
        });
        if !selected {
            out.push(finding(
                d,
                &NO_NETWORK_POLICY,
                t.meta_path,
                format!(
                    "no NetworkPolicy in the input selects the pods of {}",
                    d.object_ref()
                ),
            ));
        }

        // The pod's own setting wins; without one, its ServiceAccount's (when in the same input) applies.
        let sa_name = field(t.spec, "serviceAccountName")
            .and_then(Value::as_str)
            .unwrap_or("default");
        let sa_off = docs.iter().any(|sa| {
            sa.kind() == "ServiceAccount"
                && sa.name() == sa_name
                && effective_namespace(sa) == ns
                && field(&sa.value, "automountServiceAccountToken").and_then(Value::as_bool)
                    == Some(false)
        });
        let pod_setting = field(t.spec, "automountServiceAccountToken").and_then(Value::as_bool);
        if pod_setting == Some(true) || (pod_setting.is_none() && !sa_off) {
            out.push(finding(
                d,
                &AUTOMOUNT_TOKEN,
                &format!("{sp}.automountServiceAccountToken"),
                format!(
                    "{} does not set automountServiceAccountToken: false",
                    d.object_ref()
                ),
            ));
        }

        if let Some(vols) = field(t.spec, "volumes").and_then(Value::as_array) {
            for (i, v) in vols.iter().enumerate() {
                let Some(path) = field(v, "hostPath")
                    .and_then(|h| h.get("path"))
                    .and_then(Value::as_str)
                else {
                    continue;
                };
                let vp = format!("{sp}.volumes[{i}].hostPath.path");
                let name = v.get("name").and_then(Value::as_str).unwrap_or("");
                let clean = path.trim_end_matches('/');
                if RUNTIME_SOCKETS.contains(&clean)
                    || clean.ends_with(".sock") && clean.contains("containerd")
                {
                    out.push(finding(
                        d,
                        &RUNTIME_SOCKET,
                        &vp,
                        format!("volume {name:?} mounts the container runtime socket {path}"),
                    ));
                } else if is_sensitive(path) {
                    out.push(finding(
                        d,
                        &SENSITIVE_HOST_PATH,
                        &vp,
                        format!("volume {name:?} mounts host path {path}"),
                    ));
                }
            }
        }

        for key in ["initContainers", "containers"] {
            let Some(cs) = field(t.spec, key).and_then(Value::as_array) else {
                continue;
            };
            for (i, c) in cs.iter().enumerate() {
                let cp = format!("{sp}.{key}[{i}]");
                let name = c.get("name").and_then(Value::as_str).unwrap_or("");
                let image = c.get("image").and_then(Value::as_str).unwrap_or("");
                if !image.is_empty() && !has_digest(image) {
                    match image_tag(image) {
                        None => out.push(finding(
                            d,
                            &IMAGE_TAG,
                            &format!("{cp}.image"),
                            format!("container {name:?} image {image:?} has no tag (means latest)"),
                        )),
                        Some("latest") => out.push(finding(
                            d,
                            &IMAGE_TAG,
                            &format!("{cp}.image"),
                            format!("container {name:?} uses {image:?}"),
                        )),
                        Some(_) => {}
                    }
                    let written = c.get("imagePullPolicy").and_then(Value::as_str);
                    let policy = written.unwrap_or_else(|| default_pull_policy(image));
                    if policy != "Always" {
                        let how = if written.is_some() {
                            "has"
                        } else {
                            "defaults to (no imagePullPolicy, a version tag)"
                        };
                        out.push(finding(
                            d,
                            &PULL_POLICY,
                            &format!("{cp}.imagePullPolicy"),
                            format!("container {name:?} {how} imagePullPolicy {policy} for an image not pinned by digest"),
                        ));
                    }
                }
                let res = field(c, "resources");
                let req = res.and_then(|r| field(r, "requests"));
                let lim = res.and_then(|r| field(r, "limits"));
                let missing_req: Vec<&str> = ["cpu", "memory"]
                    .into_iter()
                    .filter(|k| req.and_then(|r| field(r, k)).is_none())
                    .collect();
                if !missing_req.is_empty() {
                    out.push(finding(
                        d,
                        &REQUESTS,
                        &format!("{cp}.resources.requests"),
                        format!(
                            "container {name:?} has no {} request",
                            missing_req.join(" or ")
                        ),
                    ));
                }
                let missing_lim: Vec<&str> = ["cpu", "memory"]
                    .into_iter()
                    .filter(|k| lim.and_then(|r| field(r, k)).is_none())
                    .collect();
                if !missing_lim.is_empty() {
                    out.push(finding(
                        d,
                        &LIMITS,
                        &format!("{cp}.resources.limits"),
                        format!(
                            "container {name:?} has no {} limit",
                            missing_lim.join(" or ")
                        ),
                    ));
                }
                let sc = field(c, "securityContext");
                if sc
                    .and_then(|s| field(s, "readOnlyRootFilesystem"))
                    .and_then(Value::as_bool)
                    != Some(true)
                {
                    out.push(finding(
                        d,
                        &READ_ONLY_ROOT,
                        &format!("{cp}.securityContext.readOnlyRootFilesystem"),
                        format!("container {name:?} does not set readOnlyRootFilesystem: true"),
                    ));
                }
                if key == "containers" && !batch {
                    if field(c, "livenessProbe").is_none() {
                        out.push(finding(
                            d,
                            &LIVENESS,
                            &format!("{cp}.livenessProbe"),
                            format!("container {name:?} has no livenessProbe"),
                        ));
                    }
                    if field(c, "readinessProbe").is_none() {
                        out.push(finding(
                            d,
                            &READINESS,
                            &format!("{cp}.readinessProbe"),
                            format!("container {name:?} has no readinessProbe"),
                        ));
                    }
                }
            }
        }
    }
    out
}

fn strings(v: Option<&Value>) -> Vec<&str> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// A binding whose subjects include everyone who can reach the API server. Kubernetes' own default
/// bindings (`system:discovery`, `system:public-info-viewer`... named `system:` and binding a
/// `system:` role) are not findings.
fn everyone_binding(d: &Document, role: &str, out: &mut Vec<Finding>) {
    if d.name().starts_with("system:") && role.starts_with("system:") {
        return;
    }
    let Some(subjects) = d.value.get("subjects").and_then(Value::as_array) else {
        return;
    };
    for (i, s) in subjects.iter().enumerate() {
        let kind = s.get("kind").and_then(Value::as_str).unwrap_or("");
        let name = s.get("name").and_then(Value::as_str).unwrap_or("");
        let everyone = match kind {
            "Group" => matches!(name, "system:authenticated" | "system:unauthenticated"),
            "User" => name == "system:anonymous",
            _ => false,
        };
        if everyone {
            out.push(finding(
                d,
                &RBAC_EVERYONE,
                &format!("subjects[{i}].name"),
                format!("{} grants {role:?} to {kind} {name}", d.object_ref()),
            ));
        }
    }
}

/// Role, ClusterRole and binding rules.
pub fn rbac(docs: &[Document]) -> Vec<Finding> {
    let mut out = Vec::new();
    for d in docs {
        match d.kind() {
            "Role" | "ClusterRole" => {
                let Some(rules) = field(&d.value, "rules").and_then(Value::as_array) else {
                    continue;
                };
                for (i, r) in rules.iter().enumerate() {
                    let rp = format!("rules[{i}]");
                    let verbs = strings(r.get("verbs"));
                    let resources = strings(r.get("resources"));
                    let named = !strings(r.get("resourceNames")).is_empty();
                    let any_verb = verbs.contains(&"*");
                    let any_res = resources.contains(&"*");
                    let who = d.object_ref();
                    if any_verb {
                        out.push(finding(
                            d,
                            &RBAC_WILDCARD_VERBS,
                            &format!("{rp}.verbs"),
                            format!("{who} rule {i} grants verbs [\"*\"]"),
                        ));
                    }
                    if any_res {
                        out.push(finding(
                            d,
                            &RBAC_WILDCARD_RESOURCES,
                            &format!("{rp}.resources"),
                            format!("{who} rule {i} grants resources [\"*\"]"),
                        ));
                    }
                    let reads =
                        any_verb || verbs.iter().any(|v| matches!(*v, "get" | "list" | "watch"));
                    // Secrets live in the core group (""): `*` resources of other groups hold none.
                    // A rule without apiGroups is invalid; it is judged as if it named the core group.
                    let groups = r.get("apiGroups").filter(|g| !g.is_null());
                    let core = groups.is_none()
                        || strings(groups).iter().any(|g| g.is_empty() || *g == "*");
                    if reads && !named && core && (any_res || resources.contains(&"secrets")) {
                        out.push(finding(
                            d,
                            &RBAC_SECRETS,
                            &format!("{rp}.resources"),
                            format!("{who} rule {i} can read secrets ({})", verbs.join(", ")),
                        ));
                    }
                    let esc: Vec<&str> = verbs
                        .iter()
                        .copied()
                        .filter(|v| matches!(*v, "escalate" | "bind" | "impersonate"))
                        .collect();
                    if !esc.is_empty() {
                        out.push(finding(
                            d,
                            &RBAC_ESCALATE,
                            &format!("{rp}.verbs"),
                            format!("{who} rule {i} grants {}", esc.join(", ")),
                        ));
                    }
                    let creates = any_verb || verbs.contains(&"create") || verbs.contains(&"get");
                    let exec: Vec<&str> = resources
                        .iter()
                        .copied()
                        .filter(|x| matches!(*x, "pods/exec" | "pods/attach" | "pods/*"))
                        .collect();
                    if creates && !exec.is_empty() {
                        out.push(finding(
                            d,
                            &RBAC_EXEC,
                            &format!("{rp}.resources"),
                            format!("{who} rule {i} allows {}", exec.join(", ")),
                        ));
                    }
                }
            }
            "RoleBinding" | "ClusterRoleBinding" => {
                let role = d
                    .value
                    .pointer("/roleRef/name")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                everyone_binding(d, role, &mut out);
                if role == "cluster-admin" && !d.name().starts_with("system:") {
                    let subjects: Vec<String> = d
                        .value
                        .get("subjects")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .map(|s| {
                                    format!(
                                        "{} {}",
                                        s.get("kind").and_then(Value::as_str).unwrap_or(""),
                                        s.get("name").and_then(Value::as_str).unwrap_or("")
                                    )
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    out.push(finding(
                        d,
                        &RBAC_CLUSTER_ADMIN,
                        "roleRef.name",
                        format!(
                            "{} binds cluster-admin to {}",
                            d.object_ref(),
                            subjects.join(", ")
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_pull_policies() {
        assert_eq!(default_pull_policy("nginx"), "Always");
        assert_eq!(default_pull_policy("nginx:latest"), "Always");
        assert_eq!(default_pull_policy("registry:5000/nginx"), "Always");
        assert_eq!(default_pull_policy("nginx:1.25"), "IfNotPresent");
    }

    #[test]
    fn image_tags() {
        assert_eq!(image_tag("nginx"), None);
        assert_eq!(image_tag("registry:5000/nginx"), None);
        assert_eq!(image_tag("registry:5000/nginx:1.25"), Some("1.25"));
        assert_eq!(image_tag("nginx:latest"), Some("latest"));
        assert!(has_digest("nginx@sha256:abc"));
    }

    #[test]
    fn selectors() {
        let l: BTreeMap<String, String> = [("app".to_string(), "web".to_string())].into();
        assert!(selects(None, &l));
        assert!(selects(
            Some(&serde_json::json!({"matchLabels": {"app": "web"}})),
            &l
        ));
        assert!(!selects(
            Some(&serde_json::json!({"matchLabels": {"app": "db"}})),
            &l
        ));
        assert!(selects(
            Some(
                &serde_json::json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]})
            ),
            &l
        ));
        assert!(!selects(
            Some(&serde_json::json!({"matchExpressions": [{"key": "tier", "operator": "Exists"}]})),
            &l
        ));
    }
}
