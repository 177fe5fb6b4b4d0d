//! Image signature verification in policy: Kyverno's classic `verifyImages` rule (cosign public keys,
//! `required`, `verifyDigest`, `mutateDigest`) and the `ImageValidatingPolicy` kind
//! (`matchImageReferences`, cosign key `attestors`, CEL `validations` calling
//! `verifyImageSignatures(image, [attestors.x])`). Both go through one [`crate::ImageVerifier`]: the
//! admission webhook supplies moat-sign's verifier against the registry; where none is supplied
//! (`moat policy test` offline) the rules are skipped as unsupported, never passed.

use std::collections::BTreeMap;
use std::sync::Arc;

use cel::common::types::{CelInt, LIST_TYPE, STRING_TYPE};
use cel::common::value::CowVal;
use cel::{Env, ExecutionError, Value as CelValue};
use serde_json::{Value, json};

use crate::celrule::{CelInput, Vap, compile_vap_body};
use crate::cond::wildcard;
use crate::matcher::ResInfo;
use crate::{ImageCheck, ImageVerifier, PolicyError};

/// Why an image rule was not evaluated: no verifier (no registry access).
pub(crate) const NO_VERIFIER: &str = "image signature verification needs the registry: evaluated by the admission webhook (moat-sign), not offline";

/// The container images of a pod spec, by list (`containers`, `initContainers`,
/// `ephemeralContainers`): (list, index, image).
pub(crate) fn pod_images(pod: &Value) -> Vec<(&'static str, usize, String)> {
    let spec = match pod.get("kind").and_then(Value::as_str) {
        Some("Pod") | None => pod.get("spec"),
        Some("CronJob") => pod.pointer("/spec/jobTemplate/spec/template/spec"),
        _ => pod.pointer("/spec/template/spec"),
    };
    let mut out = Vec::new();
    for list in ["initContainers", "containers", "ephemeralContainers"] {
        for (i, c) in spec
            .and_then(|s| s.get(list))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if let Some(im) = c.get("image").and_then(Value::as_str) {
                out.push((list, i, im.to_string()));
            }
        }
    }
    out
}

fn has_digest(image: &str) -> bool {
    image.contains("@sha256:")
}

// ---------------------------------------------------------------------------------------------
// classic verifyImages

/// One `verifyImages` entry.
#[derive(Debug)]
pub(crate) struct VerifyEntry {
    pub refs: Vec<String>,
    /// Attestor sets: each is (required count, entries' public keys); every set must hold.
    pub attestors: Vec<(usize, Vec<String>)>,
    pub required: bool,
    pub verify_digest: bool,
    pub mutate_digest: bool,
}

/// Compiles `verifyImages`; Ok(Err(reason)) for features moat does not verify.
pub(crate) fn compile_verify_images(
    v: &Value,
    source: &str,
    field: &str,
) -> Result<Result<Vec<VerifyEntry>, String>, PolicyError> {
    let Value::Array(list) = v else {
        return Err(PolicyError::invalid(source, field, "must be a list"));
    };
    let mut out = Vec::new();
    for (i, e) in list.iter().enumerate() {
        let f = format!("{field}[{i}]");
        let mut refs: Vec<String> = Vec::new();
        for k in ["imageReferences", "image"] {
            match e.get(k) {
                Some(Value::Array(a)) => {
                    refs.extend(a.iter().filter_map(|x| x.as_str().map(str::to_string)))
                }
                Some(Value::String(s)) => refs.push(s.clone()),
                _ => {}
            }
        }
        if refs.is_empty() {
            return Err(PolicyError::invalid(
                source,
                format!("{f}.imageReferences"),
                "no image references",
            ));
        }
        if e.get("attestations")
            .is_some_and(|a| a.as_array().is_some_and(|a| !a.is_empty()))
        {
            return Ok(Err(
                "verifyImages.attestations: attestation verification is not supported".into(),
            ));
        }
        if e.get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| t != "Cosign")
        {
            return Ok(Err(format!(
                "verifyImages type {}: only Cosign signatures are verified",
                e["type"]
            )));
        }
        let mut attestors = Vec::new();
        let mut legacy_key = e
            .get("key")
            .and_then(Value::as_str)
            .map(|k| vec![k.to_string()]);
        for (ai, a) in e
            .get("attestors")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let mut keys = Vec::new();
            for (ei, en) in a
                .get("entries")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                match en.pointer("/keys/publicKeys").and_then(Value::as_str) {
                    Some(pk) if pk.contains("BEGIN PUBLIC KEY") => keys.push(pk.to_string()),
                    _ => {
                        let what = ["keyless", "certificates", "attestor"]
                            .into_iter()
                            .find(|k| en.get(*k).is_some())
                            .map(|k| k.to_string())
                            .unwrap_or_else(|| {
                                "keys (kms, secret or an inline key moat cannot read)".into()
                            });
                        return Ok(Err(format!(
                            "verifyImages attestors[{ai}].entries[{ei}] uses {what}: only cosign public keys are verified"
                        )));
                    }
                }
            }
            let count = a
                .get("count")
                .and_then(Value::as_u64)
                .map(|c| c as usize)
                .unwrap_or(keys.len());
            attestors.push((count, keys));
        }
        if let Some(k) = legacy_key.take() {
            attestors.push((1, k));
        }
        if attestors.is_empty() {
            return Ok(Err(
                "verifyImages without attestors: nothing moat can verify".into(),
            ));
        }
        let b = |k: &str| e.get(k).and_then(Value::as_bool).unwrap_or(true);
        out.push(VerifyEntry {
            refs,
            attestors,
            required: b("required"),
            verify_digest: b("verifyDigest"),
            mutate_digest: b("mutateDigest"),
        });
    }
    Ok(Ok(out))
}

/// Outcome of a verifyImages rule on one pod: Pass/Fail/Error messages and the digests verified.
pub(crate) enum ImageVerdict {
    Pass(BTreeMap<String, String>),
    Fail(String),
    Skip(String),
    Error(String),
}

fn verify_with(
    verifier: &dyn ImageVerifier,
    image: &str,
    keys: &[String],
) -> Result<Result<String, String>, String> {
    match verifier.verify(image, keys) {
        ImageCheck::Verified { digest } => Ok(Ok(digest)),
        ImageCheck::NotVerified(why) => Ok(Err(why)),
        ImageCheck::Error(e) => Err(e),
    }
}

pub(crate) fn run_verify_images(
    entries: &[VerifyEntry],
    pod: &Value,
    verifier: Option<&dyn ImageVerifier>,
) -> ImageVerdict {
    let images = pod_images(pod);
    let mut digests = BTreeMap::new();
    let mut any = false;
    for e in entries {
        for (_, _, image) in &images {
            if !e.refs.iter().any(|r| wildcard(r, image)) {
                continue;
            }
            any = true;
            let Some(v) = verifier else {
                return ImageVerdict::Skip(format!(
                    "{}: {NO_VERIFIER}",
                    crate::test_runner::UNSUPPORTED_PREFIX
                ));
            };
            for (ai, (count, keys)) in e.attestors.iter().enumerate() {
                let mut ok = 0;
                let mut why = Vec::new();
                for (ki, k) in keys.iter().enumerate() {
                    match verify_with(v, image, std::slice::from_ref(k)) {
                        Ok(Ok(d)) => {
                            ok += 1;
                            digests.insert(image.clone(), d);
                        }
                        Ok(Err(w)) => why.push(format!(".attestors[{ai}].entries[{ki}].keys: {w}")),
                        Err(err) => {
                            return ImageVerdict::Error(format!(
                                "failed to verify image {image}: {err}"
                            ));
                        }
                    }
                }
                if ok < *count.max(&1).min(&keys.len().max(1)) && e.required {
                    return ImageVerdict::Fail(format!(
                        "failed to verify image {image}: {}",
                        why.join("; ")
                    ));
                }
            }
            if e.verify_digest && !e.mutate_digest && !has_digest(image) {
                return ImageVerdict::Fail(format!("missing digest for {image}"));
            }
        }
    }
    if !any {
        return ImageVerdict::Skip("no image matches the rule's image references".into());
    }
    ImageVerdict::Pass(digests)
}

/// `mutateDigest`: the pod (or template) with every verified image pinned to its digest.
pub(crate) fn pin_digests(obj: &Value, digests: &BTreeMap<String, String>) -> Value {
    let mut out = obj.clone();
    let base = match obj.get("kind").and_then(Value::as_str) {
        Some("Pod") => "/spec",
        Some("CronJob") => "/spec/jobTemplate/spec/template/spec",
        _ => "/spec/template/spec",
    };
    for (list, i, image) in pod_images(obj) {
        if has_digest(&image) {
            continue;
        }
        if let Some(d) = digests.get(&image)
            && let Some(slot) = out.pointer_mut(&format!("{base}/{list}/{i}/image"))
        {
            *slot = json!(format!("{image}@{d}"));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// ImageValidatingPolicy

/// A compiled ImageValidatingPolicy.
pub(crate) struct Ivpol {
    pub vap: Vap,
    env: Arc<Env>,
    refs: Vec<String>,
    /// attestor name → cosign public keys.
    attestors: BTreeMap<String, Vec<String>>,
}

impl std::fmt::Debug for Ivpol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ivpol")
            .field("refs", &self.refs)
            .field("attestors", &self.attestors.keys())
            .finish()
    }
}

/// The thread-local verifier and keys `verifyImageSignatures` reads while an ImageValidatingPolicy
/// is evaluated (CEL functions are plain `fn`s).
struct Scope {
    verifier: Arc<dyn ImageVerifier>,
    attestors: BTreeMap<String, Vec<String>>,
    failure: Option<String>,
}

thread_local! {
    static SCOPE: std::cell::RefCell<Option<Scope>> = const { std::cell::RefCell::new(None) };
}

fn verify_image_signatures<'b, 'v>(
    args: Vec<CowVal<'b, 'v>>,
) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let err = |m: String| ExecutionError::function_error("verifyImageSignatures", m);
    let (image, list) = match (args.first(), args.get(1)) {
        (Some(i), Some(l)) => (
            CelValue::try_from(i.as_ref())?,
            CelValue::try_from(l.as_ref())?,
        ),
        _ => return Err(err("expects (image, [attestors])".into())),
    };
    let CelValue::String(image) = image else {
        return Err(err("the image must be a string".into()));
    };
    let CelValue::List(names) = list else {
        return Err(err("attestors must be a list".into()));
    };
    let count = SCOPE.with(|s| -> Result<i64, ExecutionError> {
        let mut s = s.borrow_mut();
        let Some(scope) = s.as_mut() else {
            return Err(err("no verifier".into()));
        };
        let mut n = 0;
        for a in names.iter() {
            let name = match a {
                CelValue::String(x) => x.to_string(),
                CelValue::Map(m) => m
                    .map
                    .iter()
                    .find(
                        |(k, _)| matches!(k, cel::objects::Key::String(s) if s.as_str() == "name"),
                    )
                    .and_then(|(_, v)| match v {
                        CelValue::String(x) => Some(x.to_string()),
                        _ => None,
                    })
                    .unwrap_or_default(),
                _ => String::new(),
            };
            let Some(keys) = scope.attestors.get(&name) else {
                return Err(err(format!("unknown attestor {name:?}")));
            };
            match verify_with(scope.verifier.as_ref(), &image, keys) {
                Ok(Ok(_)) => n += 1,
                Ok(Err(why)) => {
                    scope
                        .failure
                        .get_or_insert(format!("{image}: attestor {name}: {why}"));
                }
                Err(e) => return Err(err(format!("{image}: {e}"))),
            }
        }
        Ok(n)
    })?;
    Ok(CowVal::Owned(Box::new(CelInt::from(count))))
}

/// What an ImageValidatingPolicy says about a request.
pub(crate) enum IvpolOutcome {
    NotMatched,
    Pass,
    Fail(String),
    Error(String),
    /// No verifier (offline): not evaluated.
    Unsupported,
}

impl Ivpol {
    pub(crate) fn compile(doc: &Value, source: &str) -> Result<Result<Ivpol, String>, PolicyError> {
        let spec = doc.get("spec").unwrap_or(&Value::Null);
        let mut refs = Vec::new();
        for (i, m) in spec
            .get("matchImageReferences")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            match m.get("glob").and_then(Value::as_str) {
                Some(g) => refs.push(g.to_string()),
                None if m.get("expression").is_some() => {
                    return Ok(Err(format!(
                        "ImageValidatingPolicy matchImageReferences[{i}].expression: CEL image matching is not supported (use glob)"
                    )));
                }
                None => {
                    return Err(PolicyError::invalid(
                        source,
                        format!("spec.matchImageReferences[{i}]"),
                        "needs glob or expression",
                    ));
                }
            }
        }
        if spec
            .get("attestations")
            .is_some_and(|a| a.as_array().is_some_and(|a| !a.is_empty()))
        {
            return Ok(Err(
                "ImageValidatingPolicy attestations: attestation verification is not supported"
                    .into(),
            ));
        }
        let mut attestors = BTreeMap::new();
        for (i, a) in spec
            .get("attestors")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let name = a
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if name.is_empty() {
                return Err(PolicyError::invalid(
                    source,
                    format!("spec.attestors[{i}].name"),
                    "an attestor needs a name",
                ));
            }
            match a.pointer("/cosign/key/data").and_then(Value::as_str) {
                Some(k) if k.contains("BEGIN PUBLIC KEY") => {
                    attestors.insert(name, vec![k.to_string()]);
                }
                _ => {
                    let what = if a.get("notary").is_some() {
                        "notary certificates"
                    } else if a.pointer("/cosign/keyless").is_some() {
                        "cosign keyless"
                    } else {
                        "a key moat cannot read (kms, secretRef, expression)"
                    };
                    return Ok(Err(format!(
                        "ImageValidatingPolicy attestor {name} uses {what}: only cosign public keys (cosign.key.data) are verified"
                    )));
                }
            }
        }
        let mut env = Env::stdlib();
        env.add_extension(cel::extensions::strings)
            .map_err(|e| PolicyError::invalid(source, "spec", e.to_string()))?;
        env.add_overload(
            "verifyImageSignatures",
            "verifyImageSignatures_string_list",
            vec![STRING_TYPE, LIST_TYPE],
            verify_image_signatures,
        )
        .map_err(|e| PolicyError::invalid(source, "spec", e.to_string()))?;
        let vap = compile_vap_body(doc, source, &env)?;
        if vap.validations_len() == 0 {
            return Err(PolicyError::invalid(
                source,
                "spec.validations",
                "an ImageValidatingPolicy needs validations",
            ));
        }
        Ok(Ok(Ivpol {
            vap,
            env: Arc::new(env),
            refs,
            attestors,
        }))
    }

    pub(crate) fn eval(
        &self,
        info: &ResInfo,
        pod: &Value,
        input: &CelInput,
        verifier: Option<&Arc<dyn ImageVerifier>>,
    ) -> IvpolOutcome {
        let mut ctx = match self.vap.matched_context(info, &self.env, input) {
            Ok(Some(c)) => c,
            Ok(None) => return IvpolOutcome::NotMatched,
            Err(e) => return IvpolOutcome::Error(e),
        };
        let mut by_list: BTreeMap<&str, Vec<CelValue>> = BTreeMap::new();
        let mut any = false;
        for (list, _, image) in pod_images(pod) {
            if self.refs.is_empty() || self.refs.iter().any(|r| wildcard(r, &image)) {
                any = true;
                by_list
                    .entry(list)
                    .or_default()
                    .push(CelValue::String(Arc::new(image)));
            }
        }
        if !any {
            return IvpolOutcome::NotMatched;
        }
        let Some(verifier) = verifier else {
            return IvpolOutcome::Unsupported;
        };
        let mut images: std::collections::HashMap<String, CelValue> =
            std::collections::HashMap::new();
        for l in ["containers", "initContainers", "ephemeralContainers"] {
            images.insert(
                l.to_string(),
                CelValue::List(Arc::new(by_list.remove(l).unwrap_or_default())),
            );
        }
        ctx.add_variable_from_value("images", CelValue::from(images));
        let names: std::collections::HashMap<String, CelValue> = self
            .attestors
            .keys()
            .map(|k| (k.clone(), CelValue::String(Arc::new(k.clone()))))
            .collect();
        ctx.add_variable_from_value("attestors", CelValue::from(names));
        SCOPE.with(|s| {
            *s.borrow_mut() = Some(Scope {
                verifier: Arc::clone(verifier),
                attestors: self.attestors.clone(),
                failure: None,
            })
        });
        let outcome = crate::celrule::run_validations(&ctx, self.vap.validations(), None);
        let failure = SCOPE.with(|s| s.borrow_mut().take().and_then(|s| s.failure));
        match outcome {
            crate::celrule::CelOutcome::Pass => IvpolOutcome::Pass,
            crate::celrule::CelOutcome::Fail(m) => IvpolOutcome::Fail(match failure {
                Some(f) => format!("{} ({f})", m.trim()),
                None => m.trim().to_string(),
            }),
            crate::celrule::CelOutcome::Error(e) => IvpolOutcome::Error(e),
        }
    }
}
