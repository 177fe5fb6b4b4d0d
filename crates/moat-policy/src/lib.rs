//! Policy as code for moat: a Kyverno-compatible engine for `validate` rules (patterns with anchors,
//! `deny` conditions, `foreach`, `{{ }}` JMESPath variables, CEL expressions) and Kubernetes
//! `ValidatingAdmissionPolicy`, over plain `serde_json::Value` documents.
//!
//! Policies are compiled once at load ([`PolicySet::load_paths`], [`PolicySet::from_documents`]):
//! expressions are parsed, and every feature moat cannot evaluate is listed by [`PolicySet::unsupported`]
//! with its reason — such a rule is never silently passed. [`PolicySet::evaluate`] then judges one
//! admission request (or one manifest) without parsing anything.
#![forbid(unsafe_code)]

mod autogen;
pub mod budget;
mod celdata;
mod celrule;
mod cond;
mod error;
mod eval;
mod gpol;
mod images;
mod load;
mod matcher;
mod mpol;
pub mod mutate;
mod pattern;
pub mod podsecurity;
pub mod test_runner;

mod vars;
mod vpol;

use std::collections::BTreeMap;
use std::path::PathBuf;

use moat_model::{Finding, FindingKind, Location, Severity};

pub use error::PolicyError;
pub use load::parse_yaml_documents;

/// Deepest nesting accepted in a policy or resource document: deeper input is rejected (or judged an
/// error) instead of risking the stack.
pub const MAX_DEPTH: usize = 64;

/// A compiled set of policies, ready to judge admission requests.
#[derive(Debug, Default)]
pub struct PolicySet {
    policies: Vec<load::Policy>,
    unsupported: Vec<Unsupported>,
    /// Kyverno `validate.podSecurity` subrules, judged by moat-kube's PSS (not by `evaluate`).
    pod_security: podsecurity::PodSecurity,
}

/// A rule nothing in moat evaluates, by where it was left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotEvaluated<'a> {
    /// A feature the policy engine does not evaluate.
    Rule(&'a Unsupported),
    /// A `validate.podSecurity` subrule whose match or options moat cannot honour.
    PodSecurity(&'a podsecurity::PodSecurityGap),
}

/// A policy feature moat does not evaluate: the rule is left out of evaluation and reported here.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Unsupported {
    pub policy: String,
    pub rule: String,
    pub reason: String,
}

/// One admission request (or one manifest judged as a CREATE).
#[derive(Debug, Clone, Default)]
pub struct AdmissionInput {
    pub object: serde_json::Value,
    pub old_object: Option<serde_json::Value>,
    /// `CREATE`, `UPDATE`, `DELETE` or `CONNECT`.
    pub operation: String,
    pub namespace: Option<String>,
    /// The request's `userInfo` (`username`, `uid`, `groups`, `extra`), `Null` when unknown.
    pub user_info: serde_json::Value,
    /// Labels of the request's namespace, for `namespaceSelector`.
    pub namespace_labels: BTreeMap<String, String>,
    /// Variables supplied from outside (a `kyverno test` Values file: `globalValues` and per-resource
    /// `values`), set in every rule's context; a context entry of the same name is not computed.
    pub values: BTreeMap<String, serde_json::Value>,
    /// Per-rule values (`policies[].rules[].values`), keyed `policy/rule`.
    pub rule_values: BTreeMap<String, BTreeMap<String, serde_json::Value>>,
    /// Cluster resources and image metadata supplied offline (a `kyverno test` Context file), read by
    /// Kyverno's `resource` and `image` CEL libraries. None: policies that need them are skipped.
    pub offline: Option<std::sync::Arc<OfflineData>>,
    /// Verifies image signatures for `verifyImages` rules and ImageValidatingPolicies (the admission
    /// webhook supplies moat-sign's, against the registry). None: those rules are skipped as
    /// unsupported.
    pub image_verifier: Option<std::sync::Arc<dyn ImageVerifier>>,
}

/// The result of verifying one image against cosign public keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageCheck {
    /// A valid signature by one of the keys over the image's manifest digest.
    Verified { digest: String },
    /// No valid signature by these keys (unsigned, another key, a tampered payload), with why.
    NotVerified(String),
    /// Cannot tell: a bad reference or an unreachable registry.
    Error(String),
}

/// Verifies cosign signatures of images (implemented by moat-admission with moat-sign).
pub trait ImageVerifier: Send + Sync + std::fmt::Debug {
    /// Whether `image` carries a valid cosign signature by one of `public_keys` (PEM).
    fn verify(&self, image: &str, public_keys: &[String]) -> ImageCheck;
}

/// Data a policy would read from the cluster or a registry, supplied offline.
#[derive(Debug, Clone, Default)]
pub struct OfflineData {
    /// Resources `resource.Get`/`resource.List` find (by apiVersion, resource, namespace, name).
    pub resources: Vec<serde_json::Value>,
    /// `{image, config, manifest, ...}` entries `image.GetMetadata` returns (without `image`).
    pub images: Vec<serde_json::Value>,
}

impl AdmissionInput {
    /// A manifest judged as if it were being created.
    pub fn create(object: serde_json::Value) -> AdmissionInput {
        let namespace = object
            .pointer("/metadata/namespace")
            .and_then(|v| v.as_str())
            .map(str::to_string);
        AdmissionInput {
            object,
            operation: "CREATE".into(),
            namespace,
            ..Default::default()
        }
    }
}

/// What the mutations of a policy set do to one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Mutation {
    /// The object after every mutation.
    pub object: serde_json::Value,
    /// RFC 6902 operations from the request's object to `object` (empty: nothing changed).
    pub patch: Vec<serde_json::Value>,
    pub outcomes: Vec<RuleOutcome>,
}

/// The result of one rule on one request, as Kyverno reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleResult {
    Pass,
    Fail,
    Skip,
    Error,
    Warn,
}

impl RuleResult {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleResult::Pass => "pass",
            RuleResult::Fail => "fail",
            RuleResult::Skip => "skip",
            RuleResult::Error => "error",
            RuleResult::Warn => "warn",
        }
    }
}

impl std::fmt::Display for RuleResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One rule's outcome on one request.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RuleOutcome {
    pub policy: String,
    pub rule: String,
    pub result: RuleResult,
    pub message: String,
    /// Enforce (deny the request) rather than Audit (warn) when the rule fails.
    pub enforce: bool,
    /// The policy's `policies.kyverno.io/severity` annotation, MEDIUM when absent.
    pub severity: Severity,
    /// The policy's title annotation, or its name.
    pub title: String,
    /// The object judged (`Kind/namespace/name`).
    pub object: String,
}

impl RuleOutcome {
    /// This outcome as a moat finding (kind Policy): id `policy/rule`.
    pub fn to_finding(&self) -> Finding {
        let mut f = Finding::new(
            format!("{}/{}", self.policy, self.rule),
            FindingKind::Policy,
            self.severity,
            self.title.clone(),
        );
        f.message = self.message.clone();
        f.location = Location {
            object: (!self.object.is_empty()).then(|| self.object.clone()),
            ..Location::default()
        };
        f.why = Some(format!(
            "rule {} of policy {} returned {} ({})",
            self.rule,
            self.policy,
            self.result,
            if self.enforce { "Enforce" } else { "Audit" }
        ));
        f
    }
}

impl PolicySet {
    /// Loads every YAML/JSON document in `paths` (files, or directories walked recursively for
    /// `.yaml`, `.yml` and `.json` files); documents that are not policies are ignored.
    pub fn load_paths(paths: &[PathBuf]) -> Result<PolicySet, PolicyError> {
        let mut docs = Vec::new();
        for p in paths {
            for file in load::collect_files(p)? {
                let text = load::read_file(&file)?;
                let name = file.display().to_string();
                for (i, d) in parse_yaml_documents(&text, &name)?.into_iter().enumerate() {
                    docs.push((format!("{name}#{i}"), d));
                }
            }
        }
        PolicySet::from_documents(docs)
    }

    /// Compiles policy documents (`ClusterPolicy`, `Policy`, the same shape under another kind,
    /// `ValidatingAdmissionPolicy` and its bindings). Other documents are ignored; `List`s are expanded.
    pub fn from_documents(
        docs: Vec<(String, serde_json::Value)>,
    ) -> Result<PolicySet, PolicyError> {
        let mut set = PolicySet::default();
        let mut bindings = Vec::new();
        for (source, doc) in docs {
            podsecurity::compile(&doc, &mut set.pod_security);
            load::add_document(
                &mut set.policies,
                &mut set.unsupported,
                &mut bindings,
                &source,
                doc,
            )?;
        }
        load::apply_bindings(&mut set.policies, &bindings);
        set.unsupported.sort();
        set.unsupported.dedup();
        Ok(set)
    }

    /// Rules left out of evaluation, with the reason.
    pub fn unsupported(&self) -> &[Unsupported] {
        &self.unsupported
    }

    /// The `validate.podSecurity` subrules: those judged with moat-kube's Pod Security Standards
    /// (by whoever judges workloads) and those moat cannot honour.
    pub fn pod_security(&self) -> &podsecurity::PodSecurity {
        &self.pod_security
    }

    /// The rules no part of moat evaluates: [`PolicySet::unsupported`] without the `podSecurity`
    /// subrules (the policy engine leaves those to [`PolicySet::pod_security`]), then the
    /// `podSecurity` subrules that are not judged either.
    pub fn not_evaluated(&self) -> Vec<NotEvaluated<'_>> {
        self.unsupported
            .iter()
            .filter(|u| !self.pod_security.has_rule(&u.policy, &u.rule))
            .map(NotEvaluated::Rule)
            .chain(self.pod_security.gaps.iter().map(NotEvaluated::PodSecurity))
            .collect()
    }

    /// Number of policies loaded.
    pub fn len(&self) -> usize {
        self.policies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// Names of the policies loaded.
    pub fn names(&self) -> Vec<String> {
        self.policies.iter().map(|p| p.name.clone()).collect()
    }

    /// Judges one request with every validate rule (CEL and ValidatingAdmissionPolicy included).
    /// Rules that do not match the request are not reported; rules whose preconditions are false
    /// are reported as Skip.
    pub fn evaluate(&self, input: &AdmissionInput) -> Vec<RuleOutcome> {
        eval::evaluate(&self.policies, input, eval::Mode::Admission)
    }

    /// Applies every mutate rule (patchStrategicMerge, patchesJson6902, foreach) and MutatingPolicy
    /// in order: the mutated object, the RFC 6902 patch from the request's object to it, and one
    /// outcome per mutation that selects the request (Pass = applied, Skip = conditions do not hold
    /// or nothing changes, Error).
    pub fn mutate(&self, input: &AdmissionInput) -> Mutation {
        let (object, outcomes) = eval::mutate(&self.policies, input, false);
        let patch = mutate::diff(&input.object, &object);
        Mutation {
            object,
            patch,
            outcomes,
        }
    }

    /// Like [`PolicySet::mutate`], also reporting mutate rules that do not select the request
    /// (Skip), the way `kyverno test` does.
    pub fn mutate_all(&self, input: &AdmissionInput) -> Mutation {
        let (object, outcomes) = eval::mutate(&self.policies, input, true);
        let patch = mutate::diff(&input.object, &object);
        Mutation {
            object,
            patch,
            outcomes,
        }
    }

    /// What the GeneratingPolicies would create for a request, per policy (evaluated without a
    /// cluster; nothing is created): `(policy, resources)` for each policy that matches.
    pub fn generate(&self, input: &AdmissionInput) -> Vec<(String, Vec<serde_json::Value>)> {
        eval::generated(&self.policies, input)
    }

    /// Like [`PolicySet::evaluate`], but also reports rules that do not match (as Skip) and
    /// mutate/generate rules (whether they would apply), the way `kyverno test` does.
    pub fn evaluate_all(&self, input: &AdmissionInput) -> Vec<RuleOutcome> {
        eval::evaluate(&self.policies, input, eval::Mode::Test)
    }
}

// The webhook shares one compiled set across threads.
const _: fn() = || {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<PolicySet>();
};
