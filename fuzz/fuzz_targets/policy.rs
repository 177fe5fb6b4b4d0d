#![no_main]
//! Kyverno / ValidatingAdmissionPolicy documents: YAML parsing and policy compilation.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(docs) = moat_policy::parse_yaml_documents(&text, "fuzz.yaml") {
        let docs = docs.into_iter().map(|d| ("fuzz.yaml".to_string(), d)).collect();
        let _ = moat_policy::PolicySet::from_documents(docs);
    }
});
