//! Kyverno's CEL policy kinds (`policies.kyverno.io` v1alpha1, v1beta1, v1): `ValidatingPolicy` and
//! `NamespacedValidatingPolicy`. Their spec is a ValidatingAdmissionPolicy's (`matchConstraints`,
//! `matchConditions`, `variables`, `validations`, `auditAnnotations`) plus Kyverno's own
//! `validationActions` and `autogen`, so they compile to the same [`crate::celrule::Vap`] body.
//!
//! Kyverno's CEL libraries that need a cluster, a registry or the network are not available offline:
//! a policy that calls one is listed as unsupported (by the library's name) and never evaluated.

use serde_json::Value;

use crate::load::{DEFAULT_CONTROLLERS, Policy};
use crate::{PolicyError, Unsupported};

/// Kinds of the `policies.kyverno.io` group, with what moat does with each.
pub(crate) const KYVERNO_CEL_KINDS: &[(&str, Support)] = &[
    ("ValidatingPolicy", Support::Validate),
    ("NamespacedValidatingPolicy", Support::Validate),
    ("ImageValidatingPolicy", Support::Images),
    ("NamespacedImageValidatingPolicy", Support::Images),
    ("MutatingPolicy", Support::Mutate),
    ("NamespacedMutatingPolicy", Support::Mutate),
    ("GeneratingPolicy", Support::Generate),
    ("NamespacedGeneratingPolicy", Support::Generate),
    ("DeletingPolicy", Support::Unsupported(Feature::Deletion)),
    (
        "NamespacedDeletingPolicy",
        Support::Unsupported(Feature::Deletion),
    ),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Support {
    Validate,
    Mutate,
    Images,
    Generate,
    Unsupported(Feature),
}

/// A policy feature moat does not evaluate, with the reason shown to users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Feature {
    Deletion,
    /// A Kyverno CEL library that reads the cluster, a registry or the network.
    OnlineLibrary(&'static str),
}

impl Feature {
    pub(crate) fn reason(self) -> String {
        match self {
            Feature::Deletion => {
                "DeletingPolicy: cleanup runs on a schedule against a live cluster".into()
            }
            Feature::OnlineLibrary(lib) => format!(
                "CEL library `{lib}`: reads {} at evaluation time, which moat does not reach{}",
                match lib {
                    "resource" => "the cluster's API",
                    "image" => "an image registry",
                    "http" => "an HTTP endpoint",
                    "globalContext" => "Kyverno's global context",
                    _ => "outside data",
                },
                if OFFLINE_LIBRARIES.contains(&lib) {
                    "; evaluated only over a kyverno test Context file"
                } else {
                    " offline"
                }
            ),
        }
    }
}

/// Libraries moat evaluates over offline data (a `kyverno test` Context file).
pub(crate) const OFFLINE_LIBRARIES: &[&str] = &["resource", "image"];

/// Kyverno CEL library receivers and the functions that need outside data.
const ONLINE_LIBRARIES: &[(&str, &[&str])] = &[
    ("resource", &["Get", "List", "Post"]),
    ("image", &["GetMetadata"]),
    ("http", &["Get", "Post", "Client"]),
    ("globalContext", &["Get"]),
    ("imagedata", &["Get"]),
];

/// The online library an expression calls, if any: `<library>.<Function>(` not preceded by a field access.
pub(crate) fn online_library(expr: &str) -> Option<&'static str> {
    for (lib, funcs) in ONLINE_LIBRARIES {
        let mut from = 0;
        while let Some(i) = expr[from..].find(lib) {
            let at = from + i;
            from = at + lib.len();
            let before = expr[..at].chars().next_back();
            if before.is_some_and(|c| c == '.' || c.is_alphanumeric() || c == '_') {
                continue;
            }
            let rest = expr[at + lib.len()..].trim_start();
            let Some(rest) = rest.strip_prefix('.') else {
                continue;
            };
            let rest = rest.trim_start();
            if funcs.iter().any(|f| {
                rest.strip_prefix(f)
                    .is_some_and(|r| r.trim_start().starts_with('('))
            }) {
                return Some(lib);
            }
        }
    }
    None
}

/// Every CEL expression of a spec (variables, validations, messages, conditions, annotations).
fn expressions(spec: &Value) -> Vec<&str> {
    let mut out = Vec::new();
    for list in [
        "variables",
        "validations",
        "matchConditions",
        "auditAnnotations",
    ] {
        for e in spec
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for k in ["expression", "messageExpression", "valueExpression"] {
                if let Some(s) = e.get(k).and_then(Value::as_str) {
                    out.push(s);
                }
            }
        }
    }
    out
}

/// Pod controllers a ValidatingPolicy also judges through their pod template:
/// `spec.autogen.podControllers.controllers` when given (an empty list disables), else Kyverno's default.
fn autogen_controllers(spec: &Value) -> Vec<String> {
    match spec
        .pointer("/autogen/podControllers/controllers")
        .and_then(Value::as_array)
    {
        Some(list) => list
            .iter()
            .filter_map(Value::as_str)
            .map(|c| {
                // Kyverno lists resources (`deployments`) here; moat matches kinds.
                DEFAULT_CONTROLLERS
                    .iter()
                    .find(|k| {
                        crate::celrule::plural(k) == c.to_ascii_lowercase()
                            || k.eq_ignore_ascii_case(c)
                    })
                    .map(|k| k.to_string())
                    .unwrap_or_else(|| c.to_string())
            })
            .collect(),
        None => DEFAULT_CONTROLLERS.iter().map(|s| s.to_string()).collect(),
    }
}

/// Whether the policy selects Pods (and only by resource rules, so autogen applies).
fn selects_pods(spec: &Value) -> bool {
    spec.pointer("/matchConstraints/resourceRules")
        .and_then(Value::as_array)
        .is_some_and(|rules| {
            !rules.is_empty()
                && rules.iter().all(|r| {
                    r.get("resources")
                        .and_then(Value::as_array)
                        .is_some_and(|res| res.iter().all(|x| x.as_str() == Some("pods")))
                })
        })
}

/// Compiles a ValidatingPolicy or NamespacedValidatingPolicy.
pub(crate) fn compile_validating_policy(
    doc: &Value,
    kind: &str,
    source: &str,
    unsupported: &mut Vec<Unsupported>,
) -> Result<Policy, PolicyError> {
    let spec = doc.get("spec").unwrap_or(&Value::Null);
    let mut policy = crate::celrule::compile_vap(doc, source, unsupported)?;
    if kind.starts_with("Namespaced") {
        policy.namespace = Some(
            doc.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("default")
                .to_string(),
        );
    }
    if let Some(t) = doc
        .pointer("/metadata/annotations/policies.kyverno.io~1title")
        .and_then(Value::as_str)
    {
        policy.title = t.to_string();
    }
    // validationActions: Deny blocks; Audit and Warn report only (Kyverno's default is Deny).
    let enforce = spec
        .get("validationActions")
        .and_then(Value::as_array)
        .is_none_or(|a| a.is_empty() || a.iter().any(|x| x.as_str() == Some("Deny")));
    let online = expressions(spec).into_iter().find_map(online_library);
    let autogen = if selects_pods(spec) {
        autogen_controllers(spec)
    } else {
        Vec::new()
    };
    for r in policy.rules.iter_mut() {
        r.enforce = enforce;
        r.autogen = autogen.clone();
        if let Some(lib) = online {
            let reason = Feature::OnlineLibrary(lib).reason();
            unsupported.push(Unsupported {
                policy: policy.name.clone(),
                rule: r.name.clone(),
                reason: reason.clone(),
            });
            if OFFLINE_LIBRARIES.contains(&lib) {
                r.needs_offline = Some(lib);
            } else {
                r.body = crate::load::Body::Unsupported(reason);
            }
        }
    }
    Ok(policy)
}

/// Compiles a MutatingPolicy or NamespacedMutatingPolicy into a one-rule policy.
pub(crate) fn compile_mutating_policy(
    doc: &Value,
    kind: &str,
    source: &str,
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
    let mpol = crate::mpol::Mpol::compile(doc, source)?;
    let title = doc
        .pointer("/metadata/annotations/policies.kyverno.io~1title")
        .and_then(Value::as_str)
        .unwrap_or(&name)
        .to_string();
    Ok(Policy {
        name: name.clone(),
        namespace: kind.starts_with("Namespaced").then(|| {
            doc.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("default")
                .to_string()
        }),
        severity: moat_model::Severity::Medium,
        title,
        rules: vec![crate::load::Rule {
            name,
            matcher: None,
            exclude: None,
            preconditions: None,
            context: Vec::new(),
            body: crate::load::Body::Mpol(Box::new(mpol)),
            enforce: false,
            enforce_explicit: true,
            autogen: Vec::new(),
            needs_offline: None,
        }],
        overrides: Vec::new(),
        scored: true,
        apply_one: false,
    })
}

/// Compiles an ImageValidatingPolicy (or its namespaced form) into a one-rule policy; features moat
/// does not verify (notary, keyless, attestations) make it unsupported, with the reason.
pub(crate) fn compile_image_policy(
    doc: &Value,
    kind: &str,
    source: &str,
    unsupported: &mut Vec<Unsupported>,
) -> Result<Policy, PolicyError> {
    let spec = doc.get("spec").unwrap_or(&Value::Null);
    let mut policy = match crate::images::Ivpol::compile(doc, source)? {
        Ok(iv) => {
            let mut p = compile_mutating_shell(doc, kind, source)?;
            p.rules[0].body = crate::load::Body::Ivpol(Box::new(iv));
            p
        }
        Err(reason) => {
            let mut p = compile_mutating_shell(doc, kind, source)?;
            unsupported.push(Unsupported {
                policy: p.name.clone(),
                rule: p.name.clone(),
                reason: reason.clone(),
            });
            p.rules[0].body = crate::load::Body::Unsupported(reason);
            p
        }
    };
    let enforce = spec
        .get("validationActions")
        .and_then(Value::as_array)
        .is_none_or(|a| a.is_empty() || a.iter().any(|x| x.as_str() == Some("Deny")));
    policy.rules[0].enforce = enforce;
    if selects_pods(spec) {
        policy.rules[0].autogen = autogen_controllers(spec);
    }
    if let Some(s) = doc
        .pointer("/metadata/annotations/policies.kyverno.io~1severity")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
    {
        policy.severity = s;
    }
    Ok(policy)
}

/// Compiles a GeneratingPolicy: evaluated (what it would generate), never applied. One that reads
/// the cluster (`resource.Get` of a source to clone) or the network is unsupported, with the reason.
pub(crate) fn compile_generating_policy(
    doc: &Value,
    kind: &str,
    source: &str,
    unsupported: &mut Vec<Unsupported>,
) -> Result<Policy, PolicyError> {
    let spec = doc.get("spec").unwrap_or(&Value::Null);
    let mut p = compile_mutating_shell(doc, kind, source)?;
    let online = expressions(spec)
        .into_iter()
        .chain(crate::gpol::Gpol::expressions(spec))
        .find_map(online_library);
    if let Some(lib) = online {
        let reason = format!("GeneratingPolicy: {}", Feature::OnlineLibrary(lib).reason());
        unsupported.push(Unsupported {
            policy: p.name.clone(),
            rule: p.name.clone(),
            reason: reason.clone(),
        });
        p.rules[0].body = crate::load::Body::Unsupported(reason);
    } else {
        p.rules[0].body =
            crate::load::Body::Gpol(Box::new(crate::gpol::Gpol::compile(doc, source)?));
    }
    Ok(p)
}

/// A one-rule policy named after the document, with no body yet.
fn compile_mutating_shell(doc: &Value, kind: &str, source: &str) -> Result<Policy, PolicyError> {
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
    let title = doc
        .pointer("/metadata/annotations/policies.kyverno.io~1title")
        .and_then(Value::as_str)
        .unwrap_or(&name)
        .to_string();
    Ok(Policy {
        name: name.clone(),
        namespace: kind.starts_with("Namespaced").then(|| {
            doc.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("default")
                .to_string()
        }),
        severity: moat_model::Severity::Medium,
        title,
        rules: vec![crate::load::Rule {
            name,
            matcher: None,
            exclude: None,
            preconditions: None,
            context: Vec::new(),
            body: crate::load::Body::Unsupported(String::new()),
            enforce: false,
            enforce_explicit: true,
            autogen: Vec::new(),
            needs_offline: None,
        }],
        overrides: Vec::new(),
        scored: true,
        apply_one: false,
    })
}

/// A Kyverno CEL kind moat does not evaluate: one unsupported entry, and a policy whose single rule
/// reports Skip with the reason wherever it would be asked.
pub(crate) fn unsupported_kind(
    doc: &Value,
    feature: Feature,
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
    let reason = feature.reason();
    unsupported.push(Unsupported {
        policy: name.clone(),
        rule: name.clone(),
        reason: reason.clone(),
    });
    Ok(Policy {
        name: name.clone(),
        namespace: None,
        severity: moat_model::Severity::Medium,
        title: name.clone(),
        rules: vec![crate::load::Rule {
            name,
            matcher: None,
            exclude: None,
            preconditions: None,
            context: Vec::new(),
            body: crate::load::Body::Unsupported(reason),
            enforce: false,
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
    fn online_libraries_are_found_by_call() {
        assert_eq!(
            online_library("resource.Get('v1', 'namespaces', '', request.namespace)"),
            Some("resource")
        );
        assert_eq!(
            online_library("image.GetMetadata(c.image).config"),
            Some("image")
        );
        assert_eq!(online_library("c.image.contains(':')"), None);
        assert_eq!(online_library("object.spec.resource.Get"), None);
    }
}
