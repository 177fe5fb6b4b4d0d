use std::collections::BTreeMap;

use moat_model::{Finding, MOAT_VERSION, Severity};
use serde_json::{Value, json};

use crate::Report;

fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info | Severity::Unknown => "note",
    }
}

/// GitHub code scanning ranks alerts by this numeric `security-severity` property.
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.5",
        Severity::High => "8.0",
        Severity::Medium => "5.5",
        Severity::Low => "2.0",
        Severity::Info | Severity::Unknown => "0.0",
    }
}

/// SARIF 2.1.0: one rule per finding id (advisory or check), one result per finding. Suppressed findings
/// carry a SARIF `suppressions` entry with the reason, so the evidence is kept.
pub fn to_sarif(report: &Report) -> String {
    let mut rules: BTreeMap<&str, &Finding> = BTreeMap::new();
    for f in &report.findings {
        let e = rules.entry(f.id.as_str()).or_insert(f);
        if f.severity > e.severity {
            *e = f;
        }
    }
    let rule_index: BTreeMap<&str, usize> =
        rules.keys().enumerate().map(|(i, k)| (*k, i)).collect();
    let rules_json: Vec<Value> = rules
        .values()
        .map(|f| {
            let mut r = json!({
                "id": f.id,
                "name": f.id,
                "shortDescription": {"text": f.title},
                "fullDescription": {"text": f.why.clone().unwrap_or_else(|| f.title.clone())},
                "defaultConfiguration": {"level": level(f.severity)},
                "help": {"text": f.fix.clone().unwrap_or_else(|| f.title.clone())},
                "properties": {
                    "tags": [f.kind.as_str(), "security"],
                    "security-severity": security_severity(f.severity),
                    "precision": "very-high"
                }
            });
            if let Some(url) = f.references.first() {
                r["helpUri"] = json!(url);
            }
            r
        })
        .collect();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let mut text = f.title.clone();
            if !f.message.is_empty() && f.message != f.title {
                text = format!("{}: {}", f.title, f.message);
            }
            if let Some(p) = &f.package {
                text = format!("{} ({} {})", text, p.name, p.version);
            }
            let uri = f
                .location
                .file
                .clone()
                .unwrap_or_else(|| report.target.name.clone());
            let mut phys = json!({"artifactLocation": {"uri": uri}});
            if let Some(line) = f.location.line {
                let mut region = json!({"startLine": line.max(1)});
                if let Some(c) = f.location.column {
                    region["startColumn"] = json!(c.max(1));
                }
                if let Some(el) = f.location.end_line {
                    region["endLine"] = json!(el.max(line.max(1)));
                }
                if let Some(ec) = f.location.end_column {
                    region["endColumn"] = json!(ec.max(1));
                }
                phys["region"] = region;
            }
            let mut loc = json!({"physicalLocation": phys});
            if let Some(field) = &f.location.field {
                loc["logicalLocations"] = json!([{"fullyQualifiedName": field, "kind": "member"}]);
            }
            let mut locations = vec![loc];
            // A package found in several files: one result, every file a location.
            if let Some(v) = &f.vulnerability {
                for l in v.locations.iter().filter(|l| **l != f.location) {
                    if let Some(file) = &l.file {
                        locations
                            .push(json!({"physicalLocation": {"artifactLocation": {"uri": file}}}));
                    }
                }
            }
            let mut r = json!({
                "ruleId": f.id,
                "ruleIndex": rule_index.get(f.id.as_str()).copied().unwrap_or(0),
                "level": level(f.severity),
                "message": {"text": text},
                "locations": locations,
            });
            if let Some(p) = &f.package {
                r["properties"] =
                    json!({"purl": p.purl.to_string(), "severity": f.severity.as_str()});
            }
            if let Some(v) = &f.vulnerability {
                let props = &mut r["properties"];
                if props.is_null() {
                    *props = json!({"severity": f.severity.as_str()});
                }
                props["records"] = json!(v.records.iter().map(|x| &x.id).collect::<Vec<_>>());
                props["fixedVersions"] = json!(v.fixed_versions);
                if let Some(target) = &v.remediation {
                    props["remediation"] = json!(target);
                }
                if let Some(rating) = &v.rating {
                    props["severitySource"] = json!(rating.source);
                    if !rating.record.is_empty() {
                        props["severityRecord"] = json!(rating.record);
                    }
                    if let Some(vec) = &rating.vector {
                        props["cvssVector"] = json!(vec);
                    }
                    if let Some(score) = rating.score {
                        props["cvssScore"] = json!(score);
                    }
                    if !rating.note.is_empty() {
                        props["severityNote"] = json!(rating.note);
                    }
                }
            }
            if let Some(reason) = &f.suppressed {
                r["suppressions"] = json!([{"kind": "external", "justification": reason}]);
            }
            r
        })
        .collect();
    let mut doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "moat",
                "version": MOAT_VERSION,
                "informationUri": "https://example.invalid/moat",
                "rules": rules_json
            }},
            "results": results
        }]
    });
    if !report.errors.is_empty() || !report.warnings.is_empty() {
        // Inputs that could not be judged are tool execution problems, not results (SARIF 3.58.6);
        // warnings (an ecosystem the database does not cover, a stale database) are notifications
        // of level "warning" of a run that still succeeded.
        let mut notes: Vec<Value> = report.errors.iter().map(failure_notification).collect();
        notes.extend(
            report
                .warnings
                .iter()
                .map(|w| json!({"level": "warning", "message": {"text": w}})),
        );
        doc["runs"][0]["invocations"] = json!([{
            "executionSuccessful": report.errors.is_empty(),
            "toolExecutionNotifications": notes
        }]);
    }
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}

fn failure_notification(e: &crate::InputFailure) -> Value {
    let mut phys = json!({"artifactLocation": {"uri": e.file}});
    if let Some(line) = e.line {
        let mut region = json!({"startLine": line.max(1)});
        if let Some(c) = e.column {
            region["startColumn"] = json!(c.max(1));
        }
        phys["region"] = region;
    }
    json!({
        "level": "error",
        "message": {"text": e.message},
        "locations": [{"physicalLocation": phys}]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use moat_model::{FindingKind, TargetInfo};

    fn sample() -> Report {
        let mut a = Finding::new(
            "DL3008",
            FindingKind::Dockerfile,
            Severity::Medium,
            "Pin versions in apt-get install",
        );
        a.location.file = Some("Dockerfile".into());
        a.location.line = Some(3);
        a.location.column = Some(1);
        let mut b = Finding::new(
            "CVE-2023-0001",
            FindingKind::Vulnerability,
            Severity::Critical,
            "overflow",
        );
        b.suppressed = Some("not reachable".into());
        Report::new(
            TargetInfo {
                name: "Dockerfile".into(),
                kind: "file".into(),
            },
            vec![a, b],
        )
    }

    #[test]
    fn sarif_validates_against_the_shared_schema() {
        let schema_path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/schemas/sarif/sarif-2.1/sarif-schema-2.1.0.json"
        );
        let Ok(schema_text) = std::fs::read_to_string(schema_path) else {
            eprintln!("SKIPPED: {schema_path} missing (../shared not beside the checkout)");
            return;
        };
        let schema: Value = serde_json::from_str(&schema_text).expect("schema is JSON");
        let doc: Value = serde_json::from_str(&to_sarif(&sample())).expect("sarif is JSON");
        let validator = jsonschema::validator_for(&schema).expect("schema compiles");
        let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "SARIF invalid: {errors:?}");
        assert!(doc["runs"][0].get("invocations").is_none());
        // Inputs that could not be parsed: tool execution notifications, still schema-valid.
        let mut with_errors = sample();
        with_errors.errors.push(crate::InputFailure {
            file: "Dockerfile.jq".into(),
            line: Some(1),
            column: Some(1),
            message: "unknown instruction \"{{\"".into(),
        });
        let doc: Value = serde_json::from_str(&to_sarif(&with_errors)).expect("sarif is JSON");
        let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "SARIF invalid: {errors:?}");
        let n = &doc["runs"][0]["invocations"][0];
        assert_eq!(n["executionSuccessful"], false);
        // A warning (the database does not cover an ecosystem) is a notification of a run that
        // succeeded, and the document stays valid.
        let mut warned = sample();
        warned
            .warnings
            .push("the vulnerability database has no Debian:12 records".into());
        let wdoc: Value = serde_json::from_str(&to_sarif(&warned)).expect("sarif is JSON");
        let errors: Vec<String> = validator
            .iter_errors(&wdoc)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "SARIF invalid: {errors:?}");
        let inv = &wdoc["runs"][0]["invocations"][0];
        assert_eq!(inv["executionSuccessful"], true);
        assert_eq!(inv["toolExecutionNotifications"][0]["level"], "warning");
        assert!(
            inv["toolExecutionNotifications"][0]["message"]["text"]
                .as_str()
                .is_some_and(|t| t.contains("Debian:12"))
        );
        let note = &n["toolExecutionNotifications"][0];
        assert_eq!(note["level"], "error");
        assert_eq!(
            note["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "Dockerfile.jq"
        );
        assert_eq!(
            note["locations"][0]["physicalLocation"]["region"]["startLine"],
            1
        );
        assert_eq!(doc["runs"][0]["results"].as_array().map(Vec::len), Some(2));
        let dl = doc["runs"][0]["results"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["ruleId"] == "DL3008"))
            .expect("DL3008 result");
        assert_eq!(
            dl["locations"][0]["physicalLocation"]["region"]["startLine"],
            3
        );
    }

    #[test]
    fn report_is_sorted_and_counted() {
        let r = sample();
        assert_eq!(r.summary.total, 1);
        assert_eq!(r.summary.suppressed, 1);
        assert_eq!(r.to_json(), sample().to_json());
    }
}
