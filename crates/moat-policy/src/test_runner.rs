//! Kyverno's test format (`kyverno-test.yaml`): policies, resources and expected results per
//! policy, rule and resource. `moat policy test` runs these unchanged.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::load::{parse_yaml_documents, read_file};
use crate::{AdmissionInput, PolicyError, PolicySet, Unsupported};

/// How an outcome moat did not evaluate (an unsupported feature) starts its message.
pub const UNSUPPORTED_PREFIX: &str = "not evaluated (unsupported)";

/// One expected result compared with moat's.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TestRow {
    pub policy: String,
    pub rule: String,
    pub resource: String,
    pub kind: String,
    pub expected: String,
    pub actual: String,
    pub ok: bool,
    /// moat did not evaluate the rule (a feature it does not support): counted as skipped-unsupported.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unsupported: bool,
    /// The test file the row comes from.
    #[serde(skip)]
    pub test_file: String,
    /// moat's message for the result.
    #[serde(skip)]
    pub message: String,
}

/// All rows of the tests below a directory.
#[derive(Debug, Default)]
pub struct TestReport {
    pub rows: Vec<TestRow>,
    pub unsupported: Vec<Unsupported>,
    /// Test files that could not be run, with the reason (naming the file).
    pub errors: Vec<String>,
}

impl TestReport {
    pub fn mismatches(&self) -> usize {
        self.rows.iter().filter(|r| !r.ok).count()
    }

    /// Rows moat did not evaluate because the rule uses a feature it does not support.
    pub fn skipped_unsupported(&self) -> usize {
        self.rows.iter().filter(|r| r.unsupported).count()
    }
}

/// Every `kyverno-test.yaml` below `dir` (hidden `.kyverno-test/` folders included), sorted.
pub fn find_test_files(dir: &Path) -> Result<Vec<PathBuf>, PolicyError> {
    let meta = std::fs::metadata(dir).map_err(|e| PolicyError::Io {
        path: dir.display().to_string(),
        message: e.to_string(),
    })?;
    if meta.is_file() {
        return Ok(vec![dir.to_path_buf()]);
    }
    let mut out = Vec::new();
    walk(dir, 0, &mut out);
    out.sort();
    Ok(out)
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
    if depth > 32 {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        let p = e.path();
        if ft.is_dir() {
            walk(&p, depth + 1, out);
        } else if p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n == "kyverno-test.yaml" || n == "kyverno-test.yml")
        {
            out.push(p);
        }
    }
}

/// Runs every test file below `dir`; a test file that cannot be read is listed in `errors`.
pub fn run_dir(dir: &Path) -> Result<TestReport, PolicyError> {
    let mut report = TestReport::default();
    let files = find_test_files(dir)?;
    if files.is_empty() {
        report
            .errors
            .push(format!("{}: no kyverno-test.yaml found", dir.display()));
    }
    for f in files {
        match run_test_file(&f) {
            Ok((rows, unsupported)) => {
                report.rows.extend(rows);
                report.unsupported.extend(unsupported);
            }
            Err(e) => report.errors.push(e.to_string()),
        }
    }
    report.unsupported.sort();
    report.unsupported.dedup();
    Ok(report)
}

fn str_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn load_docs(
    base: &Path,
    rel: &str,
    test: &str,
    field: &str,
) -> Result<Vec<(String, Value)>, PolicyError> {
    if rel.contains("://") {
        return Err(PolicyError::invalid(
            test,
            field,
            format!("{rel}: remote files are not fetched (offline)"),
        ));
    }
    let path = base.join(rel);
    // A test reads only files under its own directory or the one above it (Kyverno's layout puts
    // the policy beside `.kyverno-test/`): never `/etc/passwd` or a link out of the tree, so no host
    // file is read, and no line of one can appear in an error (issue 17).
    let root = base
        .canonicalize()
        .map(|b| b.parent().map(Path::to_path_buf).unwrap_or(b))
        .map_err(|e| PolicyError::invalid(test, field, format!("{}: {e}", base.display())))?;
    let inside = |p: &Path| p.canonicalize().is_ok_and(|c| c.starts_with(&root));
    let exists = std::fs::symlink_metadata(&path).is_ok();
    if Path::new(rel).is_absolute() || exists && !inside(&path) {
        return Err(PolicyError::invalid(
            test,
            field,
            format!(
                "{rel}: outside the test's directory tree {} (a test reads only the files beside it); not read",
                root.display()
            ),
        ));
    }
    let files = crate::load::collect_files(&path)
        .map_err(|e| PolicyError::invalid(test, field, format!("{}: {e}", path.display())))?;
    let mut out = Vec::new();
    for f in files {
        if !inside(&f) {
            return Err(PolicyError::invalid(
                test,
                field,
                format!(
                    "{}: a link out of the test's directory tree {}; not read",
                    f.display(),
                    root.display()
                ),
            ));
        }
        let text = read_file(&f)?;
        let name = f.display().to_string();
        for d in parse_yaml_documents(&text, &name)? {
            out.push((name.clone(), d));
        }
    }
    Ok(out)
}

/// Values file: per-resource `request.operation`, namespace labels.
#[derive(Default)]
struct Values {
    global: BTreeMap<String, Value>,
    per_resource: BTreeMap<String, BTreeMap<String, Value>>,
    /// `policies[].rules[].values`, keyed `policy/rule`.
    per_rule: BTreeMap<String, BTreeMap<String, Value>>,
    namespace_labels: BTreeMap<String, BTreeMap<String, String>>,
    /// `namespaces`: the Namespace objects themselves (for CEL's `namespaceObject`).
    namespaces: Vec<Value>,
}

fn parse_values(doc: &Value) -> Values {
    let mut v = Values::default();
    let obj_map = |x: Option<&Value>| -> BTreeMap<String, Value> {
        x.and_then(Value::as_object)
            .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    };
    v.global = obj_map(doc.get("globalValues"));
    for p in doc
        .get("policies")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let pname = p.get("name").and_then(Value::as_str).unwrap_or("");
        for r in p
            .get("rules")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(n) = r.get("name").and_then(Value::as_str) {
                v.per_rule
                    .entry(format!("{pname}/{n}"))
                    .or_default()
                    .extend(obj_map(r.get("values")));
            }
        }
        for r in p
            .get("resources")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(n) = r.get("name").and_then(Value::as_str) {
                v.per_resource
                    .entry(n.to_string())
                    .or_default()
                    .extend(obj_map(r.get("values")));
            }
        }
    }
    // `namespaces`: whole Namespace objects; their labels feed namespaceSelector and namespaceObject.
    for ns in doc
        .get("namespaces")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        v.namespaces.push(ns.clone());
        if let Some(n) = ns.pointer("/metadata/name").and_then(Value::as_str) {
            let labels = ns
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .map(|o| {
                    o.iter()
                        .map(|(k, x)| (k.clone(), x.as_str().unwrap_or("").to_string()))
                        .collect()
                })
                .unwrap_or_default();
            v.namespace_labels.insert(n.to_string(), labels);
        }
    }
    for ns in doc
        .get("namespaceSelector")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(n) = ns.get("name").and_then(Value::as_str) {
            let labels = ns
                .get("labels")
                .and_then(Value::as_object)
                .map(|o| {
                    o.iter()
                        .map(|(k, x)| (k.clone(), x.as_str().unwrap_or("").to_string()))
                        .collect()
                })
                .unwrap_or_default();
            v.namespace_labels.insert(n.to_string(), labels);
        }
    }
    v
}

struct Evaluated {
    kind: String,
    name: String,
    namespace: String,
    outcomes: Vec<crate::RuleOutcome>,
    /// The resource after every mutation of the test's policies.
    patched: Value,
    /// What each GeneratingPolicy would create for the resource.
    generated: Vec<(String, Vec<Value>)>,
}

/// Kyverno's `FixupGenerateLabels` (labels `generate.kyverno.io/*` dropped, managed-by set) and
/// `TidyObject`, so a generated resource compares with the test's `generatedResource`.
fn fixup_generated(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        let mut labels: serde_json::Map<String, Value> = m
            .get("labels")
            .and_then(Value::as_object)
            .map(|l| {
                l.iter()
                    .filter(|(k, _)| !k.starts_with("generate.kyverno.io/"))
                    .map(|(k, x)| (k.clone(), x.clone()))
                    .collect()
            })
            .unwrap_or_default();
        labels.insert(
            "app.kubernetes.io/managed-by".into(),
            Value::String("kyverno".into()),
        );
        m.insert("labels".into(), Value::Object(labels));
    }
    tidy(&v).unwrap_or(Value::Null)
}

/// The document of `docs` that is the patched form of the resource (same kind, name and, where
/// both have one, namespace).
fn find_patched<'a>(docs: &'a [(String, Value)], e: &Evaluated) -> Option<&'a Value> {
    docs.iter().map(|(_, d)| d).find(|d| {
        let s = |p: &str| d.pointer(p).and_then(Value::as_str).unwrap_or("");
        s("/kind") == e.kind
            && s("/metadata/name") == e.name
            && (s("/metadata/namespace").is_empty()
                || e.namespace.is_empty()
                || s("/metadata/namespace") == e.namespace)
    })
}

/// Kyverno's `TidyObject`: nulls, empty maps and empty lists dropped, recursively (both sides are
/// tidied before a patched resource is compared).
pub(crate) fn tidy(v: &Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::Object(m) => {
            let o: serde_json::Map<String, Value> = m
                .iter()
                .filter_map(|(k, x)| tidy(x).map(|x| (k.clone(), x)))
                .collect();
            (!o.is_empty()).then_some(Value::Object(o))
        }
        Value::Array(a) => {
            let l: Vec<Value> = a.iter().filter_map(tidy).collect();
            (!l.is_empty()).then_some(Value::Array(l))
        }
        x => Some(x.clone()),
    }
}

/// Compares a mutated resource with the test's patched resource as Kyverno does (both tidied; a
/// resource without a namespace is in `default`). None when equal, else where they differ.
fn compare_patched(got: &Value, want: &Value) -> Option<String> {
    let mut got = got.clone();
    if got.pointer("/metadata/namespace").is_none()
        && want.pointer("/metadata/namespace").and_then(Value::as_str) == Some("default")
        && let Some(m) = got.get_mut("metadata").and_then(Value::as_object_mut)
    {
        m.insert("namespace".into(), Value::String("default".into()));
    }
    let (g, w) = (
        tidy(&got).unwrap_or(Value::Null),
        tidy(want).unwrap_or(Value::Null),
    );
    (g != w).then(|| first_difference(&g, &w))
}

/// Where two resources first differ (a JSON pointer and both values), for mismatch messages.
fn first_difference(got: &Value, want: &Value) -> String {
    match crate::mutate::diff(got, want).first() {
        Some(op) => {
            let path = op.get("path").and_then(Value::as_str).unwrap_or("");
            let at = |v: &Value| {
                v.pointer(path)
                    .map(|x| x.to_string())
                    .unwrap_or("<missing>".into())
            };
            format!(
                "patched resource differs at {}: moat has {}, the test expects {}",
                if path.is_empty() { "/" } else { path },
                at(got),
                at(want)
            )
        }
        None => String::new(),
    }
}

/// Runs one test file: (rows, unsupported features of its policies).
pub fn run_test_file(path: &Path) -> Result<(Vec<TestRow>, Vec<Unsupported>), PolicyError> {
    let test_name = path.display().to_string();
    let text = read_file(path)?;
    let docs = parse_yaml_documents(&text, &test_name)?;
    let Some(test) = docs.into_iter().next() else {
        return Err(PolicyError::invalid(
            &test_name,
            "(document)",
            "empty test file",
        ));
    };
    // A test file that parses but is not a test (a list, a scalar, `results: 5`) is an input error,
    // never an empty list of results.
    if !test.is_object() {
        return Err(PolicyError::invalid(
            &test_name,
            "(document)",
            "not a Kyverno test: expected a mapping with policies, resources and results",
        ));
    }
    for key in ["policies", "resources"] {
        match test.get(key) {
            None | Some(Value::String(_)) => {}
            Some(Value::Array(a)) if a.iter().all(Value::is_string) => {}
            Some(_) => {
                return Err(PolicyError::invalid(
                    &test_name,
                    key,
                    "expected a list of file paths",
                ));
            }
        }
    }
    match test.get("results") {
        // Kyverno accepts a test without results (it only applies the policies).
        None => {}
        Some(Value::Array(a)) if a.iter().all(Value::is_object) => {}
        Some(_) => {
            return Err(PolicyError::invalid(
                &test_name,
                "results",
                "expected a list of result mappings",
            ));
        }
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let mut policy_docs = Vec::new();
    for (i, p) in str_list(test.get("policies")).iter().enumerate() {
        for (n, d) in load_docs(base, p, &test_name, &format!("policies[{i}]"))? {
            policy_docs.push((n, d));
        }
    }
    let set = PolicySet::from_documents(policy_docs)?;
    let mut resources = Vec::new();
    for (i, r) in str_list(test.get("resources")).iter().enumerate() {
        resources.extend(
            load_docs(base, r, &test_name, &format!("resources[{i}]"))?
                .into_iter()
                .map(|(_, d)| d),
        );
    }
    let values = match test.get("variables").and_then(Value::as_str) {
        Some(v) => {
            let docs = load_docs(base, v, &test_name, "variables")?;
            docs.first()
                .map(|(_, d)| parse_values(d))
                .unwrap_or_default()
        }
        None => Values::default(),
    };
    let user_info = match test.get("userinfo").and_then(Value::as_str) {
        Some(u) => {
            let docs = load_docs(base, u, &test_name, "userinfo")?;
            let d = docs
                .into_iter()
                .next()
                .map(|(_, d)| d)
                .unwrap_or(Value::Null);
            let mut ui = d
                .get("userInfo")
                .cloned()
                .unwrap_or_else(|| serde_json::json!({}));
            if let Some(o) = ui.as_object_mut() {
                for k in ["roles", "clusterRoles"] {
                    if let Some(x) = d.get(k) {
                        o.insert(k.to_string(), x.clone());
                    }
                }
            }
            ui
        }
        None => Value::Null,
    };

    // Context file (`cli.kyverno.io` Context): resources and image metadata policies read offline.
    let mut offline = crate::OfflineData::default();
    if let Some(c) = test.get("context").and_then(Value::as_str) {
        for (_, d) in load_docs(base, c, &test_name, "context")? {
            let list = |k: &str| {
                d.pointer(&format!("/spec/{k}"))
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
            };
            offline.resources.extend(list("resources"));
            offline.images.extend(list("images"));
        }
    }
    offline.resources.extend(values.namespaces.iter().cloned());
    let offline = std::sync::Arc::new(offline);
    let mut evaluated = Vec::new();
    for r in resources {
        let name = r
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let kind = r
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let namespace = r
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let mut input = AdmissionInput::create(r);
        input.user_info = user_info.clone();
        let mut vals = values.global.clone();
        if let Some(pr) = values.per_resource.get(&name) {
            vals.extend(pr.clone());
        }
        if let Some(op) = vals.get("request.operation").and_then(Value::as_str) {
            input.operation = op.to_string();
        }
        input.values = vals;
        input.offline = Some(std::sync::Arc::clone(&offline));
        input.rule_values = values.per_rule.clone();
        let ns_key = if kind == "Namespace" {
            name.clone()
        } else {
            namespace.clone()
        };
        if let Some(l) = values.namespace_labels.get(&ns_key) {
            input.namespace_labels = l.clone();
        }
        let generated = set.generate(&input);
        let mutation = set.mutate_all(&input);
        let mut outcomes = mutation.outcomes;
        outcomes.extend(set.evaluate_all(&input));
        evaluated.push(Evaluated {
            kind,
            name,
            namespace,
            outcomes,
            patched: mutation.object,
            generated,
        });
    }

    let mut rows = Vec::new();
    for res in test
        .get("results")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let policy = res
            .get("policy")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let rule = res
            .get("rule")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let kind = res
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let expected = res
            .get("result")
            .or_else(|| res.get("status"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_lowercase();
        let is_vap = res
            .get("isValidatingAdmissionPolicy")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let mut names = str_list(res.get("resources"));
        if let Some(r) = res.get("resource").and_then(Value::as_str) {
            names.push(r.to_string());
        }
        let lookup_rule = rule
            .strip_prefix("autogen-cronjob-")
            .or_else(|| rule.strip_prefix("autogen-"))
            .unwrap_or(&rule);
        let policy_name = policy.rsplit('/').next().unwrap_or(&policy);
        let patched_docs = match res
            .get("patchedResources")
            .or_else(|| res.get("patchedResource"))
            .and_then(Value::as_str)
        {
            Some(p) => Some(load_docs(
                base,
                p,
                &test_name,
                "results[].patchedResources",
            )?),
            None => None,
        };
        let generated_docs = match res
            .get("generatedResource")
            .or_else(|| res.get("generatedResources"))
            .and_then(Value::as_str)
        {
            Some(p) => Some(load_docs(
                base,
                p,
                &test_name,
                "results[].generatedResource",
            )?),
            None => None,
        };
        for rname in names {
            let (want_ns, want_name) = match rname.rsplit_once('/') {
                Some((ns, n)) => (Some(ns.rsplit('/').next().unwrap_or(ns)), n),
                None => (None, rname.as_str()),
            };
            let found = evaluated.iter().find(|e| {
                e.name == want_name
                    && (kind.is_empty() || e.kind == kind)
                    && want_ns.is_none_or(|ns| {
                        ns == e.namespace || e.namespace.is_empty() && ns == "default"
                    })
            });
            let (actual, message) = match found {
                None => (
                    "not found".to_string(),
                    format!("no resource {rname} of kind {kind} in the test's resources"),
                ),
                Some(e) => match e.outcomes.iter().find(|o| {
                    o.policy == policy_name
                        && (is_vap || rule.is_empty() || o.rule == lookup_rule || o.rule == rule)
                }) {
                    Some(o) => match &patched_docs {
                        // Kyverno compares a mutation that applied with the expected patched resource.
                        Some(docs) if o.result == crate::RuleResult::Pass => {
                            // A file without this resource leaves the result as it is
                            // (Kyverno's library relies on that: one patched file for many).
                            match find_patched(docs, e).and_then(|w| compare_patched(&e.patched, w))
                            {
                                Some(diff) => ("fail".to_string(), diff),
                                None => ("pass".to_string(), o.message.clone()),
                            }
                        }
                        _ => match &generated_docs {
                            // A generation that applies must create each expected resource.
                            Some(docs) if o.result == crate::RuleResult::Pass => {
                                let made: Vec<Value> = e
                                    .generated
                                    .iter()
                                    .filter(|(p, _)| p == policy_name)
                                    .flat_map(|(_, l)| l.iter().map(fixup_generated))
                                    .collect();
                                match docs
                                    .iter()
                                    .map(|(_, d)| d)
                                    .find(|d| !made.contains(&fixup_generated(d)))
                                {
                                    Some(missing) => (
                                        "fail".to_string(),
                                        format!(
                                            "the policy does not generate the expected {} {}",
                                            missing
                                                .get("kind")
                                                .and_then(Value::as_str)
                                                .unwrap_or(""),
                                            missing
                                                .pointer("/metadata/name")
                                                .and_then(Value::as_str)
                                                .unwrap_or("")
                                        ),
                                    ),
                                    None => ("pass".to_string(), o.message.clone()),
                                }
                            }
                            _ => (o.result.as_str().to_string(), o.message.clone()),
                        },
                    },
                    None => (
                        "not found".to_string(),
                        format!("no policy {policy} rule {rule} in the test's policies"),
                    ),
                },
            };
            let ok = actual == expected;
            let unsupported = message.starts_with(UNSUPPORTED_PREFIX);
            rows.push(TestRow {
                unsupported,
                policy: policy.clone(),
                rule: rule.clone(),
                resource: rname.clone(),
                kind: kind.clone(),
                expected: expected.clone(),
                actual,
                ok,
                test_file: test_name.clone(),
                message,
            });
        }
    }
    Ok((rows, set.unsupported().to_vec()))
}
