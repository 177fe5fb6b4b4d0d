//! OpenVEX (<https://github.com/openvex/spec>): statements that a product is `not_affected` by, or has
//! `fixed`, a vulnerability suppress the matching findings, with the justification as the reason.
//! `affected` and `under_investigation` statements change nothing.

use std::path::Path;

use moat_model::{Finding, Purl};
use serde_json::Value;

use crate::ignore::{ids_of, purl_matches};

#[derive(Debug, thiserror::Error)]
#[error("{path}: {msg}")]
pub struct VexError {
    pub path: String,
    pub msg: String,
}

/// One usable statement.
#[derive(Debug, Clone)]
pub struct Statement {
    pub vulnerability: Vec<String>,
    /// Package purls the statement is about; empty = every package of the product (an image).
    pub purls: Vec<Purl>,
    pub status: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default)]
pub struct VexDocument {
    pub path: String,
    pub statements: Vec<Statement>,
}

fn ids(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Object(o) => {
            let mut out: Vec<String> = Vec::new();
            for k in ["name", "@id"] {
                if let Some(s) = o.get(k).and_then(Value::as_str) {
                    out.push(s.to_string());
                }
            }
            if let Some(a) = o.get("aliases").and_then(Value::as_array) {
                out.extend(a.iter().filter_map(Value::as_str).map(str::to_string));
            }
            out
        }
        _ => Vec::new(),
    }
}

fn product_ids(v: Option<&Value>) -> Vec<String> {
    let mut out = Vec::new();
    for p in v.and_then(Value::as_array).into_iter().flatten() {
        match p {
            Value::String(s) => out.push(s.clone()),
            Value::Object(o) => {
                if let Some(s) = o.get("@id").and_then(Value::as_str) {
                    out.push(s.to_string());
                }
                if let Some(s) = o
                    .get("identifiers")
                    .and_then(|i| i.get("purl"))
                    .and_then(Value::as_str)
                {
                    out.push(s.to_string());
                }
            }
            _ => {}
        }
    }
    out
}

impl VexDocument {
    pub fn load(path: &Path) -> Result<VexDocument, VexError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| VexError {
            path: name.clone(),
            msg: e.to_string(),
        })?;
        Self::parse(&text, &name)
    }

    pub fn parse(text: &str, name: &str) -> Result<VexDocument, VexError> {
        let err = |msg: String| VexError {
            path: name.to_string(),
            msg,
        };
        let v: Value = serde_json::from_str(text).map_err(|e| {
            err(format!(
                "not JSON (line {}, column {}): {e}",
                e.line(),
                e.column()
            ))
        })?;
        let stmts = v
            .get("statements")
            .and_then(Value::as_array)
            .ok_or_else(|| err("not an OpenVEX document: no \"statements\" list".into()))?;
        let mut out = Vec::new();
        for (i, s) in stmts.iter().enumerate() {
            let status = s
                .get("status")
                .and_then(Value::as_str)
                .ok_or_else(|| err(format!("statement {}: no \"status\"", i + 1)))?;
            if !matches!(
                status,
                "not_affected" | "fixed" | "affected" | "under_investigation"
            ) {
                return Err(err(format!(
                    "statement {}: unknown status {status:?}",
                    i + 1
                )));
            }
            let vulnerability = s.get("vulnerability").map(ids).unwrap_or_default();
            if vulnerability.is_empty() {
                return Err(err(format!("statement {}: no vulnerability name", i + 1)));
            }
            let mut purls = Vec::new();
            let subs: Vec<String> = s
                .get("products")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .flat_map(|p| product_ids(p.get("subcomponents")))
                .collect();
            let products = product_ids(s.get("products"));
            let scope = if subs.is_empty() { products } else { subs };
            let mut whole_product = false;
            for p in scope {
                match p.parse::<Purl>() {
                    Ok(purl) if purl.ty != "oci" && purl.ty != "docker" => purls.push(purl),
                    _ => whole_product = true,
                }
            }
            if whole_product {
                purls.clear();
            }
            let reason = [
                s.get("justification"),
                s.get("impact_statement"),
                s.get("status_notes"),
            ]
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(": ");
            out.push(Statement {
                vulnerability,
                purls,
                status: status.to_string(),
                reason,
            });
        }
        Ok(VexDocument {
            path: name.to_string(),
            statements: out,
        })
    }

    /// Suppresses findings covered by a `not_affected` or `fixed` statement. Returns how many.
    pub fn apply(&self, findings: &mut [Finding]) -> usize {
        let mut n = 0;
        for st in self
            .statements
            .iter()
            .filter(|s| s.status == "not_affected" || s.status == "fixed")
        {
            for f in findings.iter_mut() {
                if f.suppressed.is_some()
                    || !ids_of(f).any(|id| st.vulnerability.iter().any(|v| v == id))
                {
                    continue;
                }
                if !st.purls.is_empty() {
                    let Some(pkg) = &f.package else { continue };
                    if !st.purls.iter().any(|p| purl_matches(p, &pkg.purl)) {
                        continue;
                    }
                }
                f.suppressed = Some(format!(
                    "VEX {}: {}{}",
                    self.path,
                    st.status,
                    if st.reason.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", st.reason)
                    }
                ));
                n += 1;
            }
        }
        n
    }
}
