//! Severity sources for CVE ids: NVD CVE API 2.0 records (the `cve` object of the API and of the NVD
//! feeds, one per file as `fkie-cad/nvd-json-data-feeds` stores them, or an API response holding
//! `vulnerabilities[].cve`) and CVE JSON 5 records (the CVE list, `CVEProject/cvelistV5`), with the
//! CNA container's metrics and each ADP container's (CISA's "Vulnrichment").
//!
//! Only what rates a CVE is kept: who rated it, the CVSS vectors with their scores, or a text rating
//! (`High`, `Moderate`) when the rater gave no vector. OSV records (Debian DSA/DLA, Alpine secdb, Go)
//! carry no severity; a finding joins these ratings by its CVE ids (see [`crate::severity`]).

use std::str::FromStr;

use moat_model::Severity;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One source's rating of one CVE.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CveRating {
    /// `CVE-2022-0778`.
    pub cve: String,
    /// `nvd`, `cna` or `adp`.
    pub source: String,
    /// Who rated: the NVD metric's `source` (`nvd@nist.gov`), the CNA's or ADP's `shortName`.
    pub provider: String,
    /// CVSS vectors, best version first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cvss: Vec<CvssScore>,
    /// A rating in words when the rater gave no vector (OpenSSL's `High`, `Moderate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// `lastModified` / `dateUpdated` of the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified: Option<String>,
}

/// One CVSS vector as the rater wrote it, with its base score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CvssScore {
    /// `CVSS_V4`, `CVSS_V3`, `CVSS_V2` (the OSV names).
    pub version: String,
    pub vector: String,
    pub score: f64,
    /// NVD's `Primary` or `Secondary` metric, when from NVD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

impl CveRating {
    /// The rating's severity: the best CVSS version's score (v2: Low/Medium/High), else the words.
    pub fn severity(&self) -> Option<(Severity, Option<&CvssScore>)> {
        if let Some(c) = self.cvss.first() {
            let s = if c.version == "CVSS_V2" {
                match c.score {
                    s if s >= 7.0 => Severity::High,
                    s if s >= 4.0 => Severity::Medium,
                    s if s > 0.0 => Severity::Low,
                    _ => Severity::Unknown,
                }
            } else {
                Severity::from_cvss_score(c.score)
            };
            if s != Severity::Unknown {
                return Some((s, Some(c)));
            }
        }
        let s = self.text.as_deref()?.parse::<Severity>().ok()?;
        (s != Severity::Unknown).then_some((s, None))
    }
}

/// What kind of JSON document a record file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Osv,
    /// An NVD CVE API 2.0 `cve` object, or an API response / feed holding `vulnerabilities[].cve`.
    Nvd,
    /// A CVE JSON 5 record (`dataType: CVE_RECORD`).
    Cve5,
}

/// Tells the formats apart by their required fields.
pub fn detect(v: &Value) -> Format {
    if v.get("dataType").and_then(Value::as_str) == Some("CVE_RECORD")
        || (v.get("cveMetadata").is_some() && v.get("containers").is_some())
    {
        return Format::Cve5;
    }
    if v.get("vulnerabilities").is_some_and(Value::is_array)
        && (v.get("format").and_then(Value::as_str) == Some("NVD_CVE")
            || v.get("resultsPerPage").is_some())
    {
        return Format::Nvd;
    }
    let is_cve = v
        .get("id")
        .and_then(Value::as_str)
        .is_some_and(|id| id.starts_with("CVE-"));
    // NVD records carry `affected` too (from the CVE list) but never OSV's required `modified`.
    if is_cve
        && (v.get("vulnStatus").is_some() || v.get("sourceIdentifier").is_some())
        && v.get("modified").is_none()
    {
        return Format::Nvd;
    }
    Format::Osv
}

fn osv_version(v: &str) -> Option<&'static str> {
    match v {
        "4.0" => Some("CVSS_V4"),
        "3.0" | "3.1" => Some("CVSS_V3"),
        "2.0" => Some("CVSS_V2"),
        _ => None,
    }
}

fn version_rank(v: &str) -> u8 {
    match v {
        "CVSS_V4" => 3,
        "CVSS_V3" => 2,
        _ => 1,
    }
}

/// A vector's base score: the one given, checked against the vector by the `cvss` crate when it
/// parses (a score that disagrees with its own vector is replaced by the computed one).
fn score_of(vector: &str, given: Option<f64>) -> Option<f64> {
    let computed = cvss::Cvss::from_str(vector.trim()).ok().map(|c| c.score());
    match (computed, given) {
        (Some(c), _) => Some(c),
        (None, g) => g,
    }
}

/// The ratings in an NVD API 2.0 `cve` object: one per metric `source` (NVD's own `Primary` metric
/// is `nvd`; a `Secondary` metric from a CNA is `cna`, named by its source).
pub fn from_nvd_cve(cve: &Value) -> Result<Vec<CveRating>, String> {
    let id = cve
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| s.starts_with("CVE-"))
        .ok_or("no CVE `id`")?;
    let modified = cve
        .get("lastModified")
        .and_then(Value::as_str)
        .map(String::from);
    let mut by_source: Vec<CveRating> = Vec::new();
    let Some(metrics) = cve.get("metrics").and_then(Value::as_object) else {
        return Ok(Vec::new());
    };
    for (key, list) in metrics {
        let version_hint = match key.as_str() {
            "cvssMetricV40" => "4.0",
            "cvssMetricV31" => "3.1",
            "cvssMetricV30" => "3.0",
            "cvssMetricV2" => "2.0",
            _ => continue,
        };
        for m in list.as_array().into_iter().flatten() {
            let data = m.get("cvssData");
            let Some(vector) = data
                .and_then(|d| d.get("vectorString"))
                .and_then(Value::as_str)
            else {
                continue;
            };
            let v = data
                .and_then(|d| d.get("version"))
                .and_then(Value::as_str)
                .unwrap_or(version_hint);
            let Some(version) = osv_version(v) else {
                continue;
            };
            let given = data
                .and_then(|d| d.get("baseScore"))
                .and_then(Value::as_f64);
            let Some(score) = score_of(vector, given) else {
                continue;
            };
            let kind = m.get("type").and_then(Value::as_str).map(String::from);
            let provider = m
                .get("source")
                .and_then(Value::as_str)
                .unwrap_or("nvd@nist.gov")
                .to_string();
            let source = if kind.as_deref() == Some("Secondary") && provider != "nvd@nist.gov" {
                "cna"
            } else {
                "nvd"
            };
            let entry = CvssScore {
                version: version.to_string(),
                vector: vector.trim().to_string(),
                score,
                kind,
            };
            match by_source
                .iter_mut()
                .find(|r| r.source == source && r.provider == provider)
            {
                Some(r) => r.cvss.push(entry),
                None => by_source.push(CveRating {
                    cve: id.to_string(),
                    source: source.to_string(),
                    provider,
                    cvss: vec![entry],
                    text: None,
                    modified: modified.clone(),
                }),
            }
        }
    }
    for r in &mut by_source {
        r.cvss
            .sort_by_key(|c| std::cmp::Reverse(version_rank(&c.version)));
    }
    Ok(by_source)
}

/// The ratings of an NVD document: a single `cve` object or an API response / feed.
pub fn from_nvd(v: &Value) -> Result<Vec<CveRating>, String> {
    match v.get("vulnerabilities").and_then(Value::as_array) {
        Some(items) => {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let cve = item.get("cve").unwrap_or(item);
                out.extend(from_nvd_cve(cve).map_err(|e| format!("vulnerabilities[{i}]: {e}"))?);
            }
            Ok(out)
        }
        None => from_nvd_cve(v),
    }
}

/// One CVE JSON 5 container's metrics (`cvssV4_0`, `cvssV3_1`, `cvssV3_0`, `cvssV2_0`, or an `other`
/// text rating).
fn container_rating(
    id: &str,
    source: &str,
    c: &Value,
    modified: Option<String>,
) -> Option<CveRating> {
    let provider = c
        .get("providerMetadata")
        .and_then(|p| p.get("shortName"))
        .and_then(Value::as_str)
        .unwrap_or(source)
        .to_string();
    let mut cvss = Vec::new();
    let mut text = None;
    for m in c
        .get("metrics")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        for (key, version) in [
            ("cvssV4_0", "CVSS_V4"),
            ("cvssV3_1", "CVSS_V3"),
            ("cvssV3_0", "CVSS_V3"),
            ("cvssV2_0", "CVSS_V2"),
        ] {
            let Some(d) = m.get(key) else { continue };
            let Some(vector) = d.get("vectorString").and_then(Value::as_str) else {
                continue;
            };
            let given = d.get("baseScore").and_then(Value::as_f64);
            if let Some(score) = score_of(vector, given) {
                cvss.push(CvssScore {
                    version: version.to_string(),
                    vector: vector.trim().to_string(),
                    score,
                    kind: None,
                });
            }
        }
        // `other`: { type, content: { value | text } } — OpenSSL's "High", "Moderate".
        if text.is_none()
            && let Some(content) = m.get("other").and_then(|o| o.get("content"))
        {
            let words = content
                .get("value")
                .or_else(|| content.get("text"))
                .and_then(Value::as_str);
            if let Some(w) = words.filter(|w| w.parse::<Severity>().is_ok()) {
                text = Some(w.to_string());
            }
        }
    }
    if cvss.is_empty() && text.is_none() {
        return None;
    }
    cvss.sort_by_key(|c| std::cmp::Reverse(version_rank(&c.version)));
    Some(CveRating {
        cve: id.to_string(),
        source: source.to_string(),
        provider,
        cvss,
        text,
        modified,
    })
}

/// The ratings in a CVE JSON 5 record: the CNA container's, then each ADP container's.
pub fn from_cve5(v: &Value) -> Result<Vec<CveRating>, String> {
    let meta = v.get("cveMetadata").ok_or("no `cveMetadata`")?;
    let id = meta
        .get("cveId")
        .and_then(Value::as_str)
        .filter(|s| s.starts_with("CVE-"))
        .ok_or("no `cveMetadata.cveId`")?;
    let modified = meta
        .get("dateUpdated")
        .and_then(Value::as_str)
        .map(String::from);
    let containers = v.get("containers").ok_or("no `containers`")?;
    let mut out = Vec::new();
    if let Some(cna) = containers.get("cna") {
        out.extend(container_rating(id, "cna", cna, modified.clone()));
    }
    for adp in containers
        .get("adp")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.extend(container_rating(id, "adp", adp, modified.clone()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(rel: &str) -> Option<Value> {
        let p = format!(
            "{}/../../../shared/data/nvd/{rel}",
            env!("CARGO_MANIFEST_DIR")
        );
        match std::fs::read(&p) {
            Ok(b) => Some(serde_json::from_slice(&b).expect("json")),
            Err(_) => {
                eprintln!("SKIPPED: {p} missing");
                None
            }
        }
    }

    #[test]
    fn nvd_record_gives_nvds_primary_cvss() {
        let Some(v) = shared("nvd/CVE-2022-0778.json") else {
            return;
        };
        assert_eq!(detect(&v), Format::Nvd);
        let r = from_nvd(&v).expect("parse");
        let nvd = r.iter().find(|r| r.source == "nvd").expect("nvd rating");
        assert_eq!(nvd.provider, "nvd@nist.gov");
        let (sev, c) = nvd.severity().expect("rated");
        assert_eq!(sev, Severity::High);
        let c = c.expect("cvss");
        assert_eq!(c.vector, "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H");
        assert_eq!(c.score, 7.5);
        // The v2 vector is kept after the v3.1 one.
        assert_eq!(nvd.cvss.last().map(|c| c.version.as_str()), Some("CVSS_V2"));
    }

    #[test]
    fn cve5_record_gives_cna_words_and_adp_cvss() {
        let Some(v) = shared("cve5/CVE-2022-1292.json") else {
            return;
        };
        assert_eq!(detect(&v), Format::Cve5);
        let r = from_cve5(&v).expect("parse");
        let cna = r.iter().find(|r| r.source == "cna").expect("cna");
        assert_eq!(cna.provider, "openssl");
        assert_eq!(cna.text.as_deref(), Some("Moderate"));
        assert_eq!(cna.severity().map(|s| s.0), Some(Severity::Medium));
        let adp = r.iter().find(|r| r.source == "adp").expect("adp");
        assert_eq!(adp.provider, "CISA-ADP");
        assert_eq!(adp.severity().map(|s| s.0), Some(Severity::Critical));
    }

    #[test]
    fn an_osv_record_is_not_mistaken_for_nvd() {
        let v: Value = serde_json::from_str(
            r#"{"id":"CVE-2020-1","modified":"2020-01-01T00:00:00Z","affected":[]}"#,
        )
        .expect("json");
        assert_eq!(detect(&v), Format::Osv);
        let v: Value = serde_json::from_str(
            r#"{"resultsPerPage":1,"format":"NVD_CVE","vulnerabilities":[{"cve":{"id":"CVE-2020-2","vulnStatus":"Analyzed","metrics":{"cvssMetricV31":[{"source":"nvd@nist.gov","type":"Primary","cvssData":{"version":"3.1","vectorString":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H","baseScore":9.8}}]}}}]}"#,
        )
        .expect("json");
        assert_eq!(detect(&v), Format::Nvd);
        let r = from_nvd(&v).expect("parse");
        assert_eq!(r[0].severity().map(|s| s.0), Some(Severity::Critical));
        // Newer NVD records carry the CVE list's `affected` too: still NVD, not an OSV record.
        if let Some(v) = shared("nvd/CVE-2021-33574.json") {
            assert!(v.get("affected").is_some());
            assert_eq!(detect(&v), Format::Nvd);
        }
    }
}
