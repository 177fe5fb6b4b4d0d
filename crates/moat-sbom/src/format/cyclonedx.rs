//! CycloneDX 1.6 JSON (<https://cyclonedx.org/docs/1.6/json/>), with our own serde model: the
//! `cyclonedx-bom` crate stops at 1.5. Optionally carries vulnerabilities (`moat scan --format cyclonedx`).

use std::collections::BTreeMap;

use moat_model::{Finding, Inventory, MOAT_VERSION, Package, Severity};
use serde::{Deserialize, Serialize};

use super::{WriteOptions, content_uuid, package_refs};

/// Property names moat writes on components; the reader understands them too.
pub const PROP_KIND: &str = "moat:package:kind";
pub const PROP_SOURCE_NAME: &str = "moat:package:source-name";
pub const PROP_SOURCE_VERSION: &str = "moat:package:source-version";
pub const PROP_LAYER: &str = "moat:package:layer";
pub const PROP_PATH: &str = "moat:package:path";
pub const PROP_DIRECT: &str = "moat:package:direct";

#[derive(Debug, Serialize, Deserialize)]
pub struct Bom {
    #[serde(rename = "$schema", default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    #[serde(rename = "bomFormat")]
    pub bom_format: String,
    #[serde(rename = "specVersion")]
    pub spec_version: String,
    #[serde(
        rename = "serialNumber",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub serial_number: Option<String>,
    #[serde(default = "one")]
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<Component>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dependencies: Vec<Dependency>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vulnerabilities: Vec<Vulnerability>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Metadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<Component>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<Property>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Component {
    #[serde(rename = "type")]
    pub ty: String,
    #[serde(rename = "bom-ref", default, skip_serializing_if = "Option::is_none")]
    pub bom_ref: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub licenses: Vec<LicenseChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purl: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<Property>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<Component>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LicenseChoice {
    License { license: License },
    Expression { expression: String },
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct License {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Property {
    pub name: String,
    #[serde(default)]
    pub value: String,
}

fn prop(name: &str, value: impl Into<String>) -> Property {
    Property {
        name: name.to_string(),
        value: value.into(),
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Dependency {
    #[serde(rename = "ref")]
    pub reference: String,
    #[serde(rename = "dependsOn", default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Vulnerability {
    #[serde(rename = "bom-ref")]
    pub bom_ref: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ratings: Vec<Rating>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommendation: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub advisories: Vec<Advisory>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub affects: Vec<Affect>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<Property>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Rating {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Advisory {
    pub url: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Affect {
    #[serde(rename = "ref")]
    pub reference: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub versions: Vec<AffectedVersion>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AffectedVersion {
    pub version: String,
    pub status: String,
}

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critical",
        Severity::High => "high",
        Severity::Medium => "medium",
        Severity::Low => "low",
        Severity::Info => "info",
        Severity::Unknown => "unknown",
    }
}

/// A single licence that is a valid SPDX expression is written as one (`[{"expression": "MIT"}]`);
/// anything else as names, one each (CycloneDX forbids mixing the two in one list).
fn licence_choices(licences: &[String]) -> Vec<LicenseChoice> {
    if let [one] = licences
        && let Some(e) = super::spdx_expression(one)
    {
        return vec![LicenseChoice::Expression {
            expression: e.to_string(),
        }];
    }
    licences
        .iter()
        .map(|l| LicenseChoice::License {
            license: License {
                id: None,
                name: Some(l.clone()),
            },
        })
        .collect()
}

fn component(p: &Package, bom_ref: String) -> Component {
    let mut properties = vec![prop(PROP_KIND, p.kind.as_str())];
    if let Some(s) = &p.source {
        properties.push(prop(PROP_SOURCE_NAME, &s.name));
        properties.push(prop(PROP_SOURCE_VERSION, &s.version));
    }
    if let Some(l) = &p.layer {
        properties.push(prop(PROP_LAYER, l));
    }
    if let Some(path) = &p.path {
        properties.push(prop(PROP_PATH, path));
    }
    if let Some(d) = p.direct {
        properties.push(prop(PROP_DIRECT, d.to_string()));
    }
    Component {
        ty: "library".into(),
        bom_ref: Some(bom_ref),
        name: p.name.clone(),
        version: Some(p.version.clone()),
        licenses: licence_choices(&p.licenses),
        purl: Some(p.purl.to_string()),
        properties,
        ..Component::default()
    }
}

/// The CycloneDX document for an inventory, with `findings` (vulnerabilities) when given. Components
/// are in the inventory's sorted order; each `bom-ref` is the package's purl.
pub fn bom(inv: &Inventory, findings: &[Finding], opts: &WriteOptions) -> Bom {
    let mut inv = inv.clone();
    inv.normalize();
    let refs = package_refs(&inv.packages);
    let mut components: Vec<Component> = Vec::new();
    let mut meta_props = Vec::new();
    if let Some(os) = &inv.os {
        let mut c = Component {
            ty: "operating-system".into(),
            bom_ref: Some(format!("os:{}", os.id)),
            name: os.id.clone(),
            ..Default::default()
        };
        c.version = os.version_id.clone();
        c.description = os.pretty_name.clone();
        components.push(c);
    }
    components.extend(
        inv.packages
            .iter()
            .zip(refs.iter())
            .map(|(p, r)| component(p, r.clone())),
    );
    let target_ty = match inv.target.kind.as_str() {
        "dir" => "file",
        "sbom" => "application",
        _ => "container",
    };
    let mut target = Component {
        ty: target_ty.into(),
        bom_ref: Some(format!("target:{}", inv.target.name)),
        name: inv.target.name.clone(),
        ..Default::default()
    };
    if let Some(img) = &inv.image {
        if let Some(d) = &img.manifest_digest {
            target.version = Some(d.clone());
            meta_props.push(prop("moat:image:manifest-digest", d));
        }
        if let Some(d) = &img.config_digest {
            meta_props.push(prop("moat:image:config-digest", d));
        }
        for t in &img.repo_tags {
            meta_props.push(prop("moat:image:repo-tag", t));
        }
        for l in &img.layers {
            meta_props.push(prop(
                "moat:image:layer",
                l.diff_id.as_deref().unwrap_or(&l.digest),
            ));
        }
    }
    meta_props.push(prop("moat:target:kind", &inv.target.kind));
    for w in &inv.warnings {
        meta_props.push(prop("moat:warning", w));
    }
    let vulnerabilities = vulnerabilities(&inv.packages, &refs, findings);
    let dependencies = vec![Dependency {
        reference: target.bom_ref.clone().unwrap_or_default(),
        depends_on: components
            .iter()
            .filter_map(|c| c.bom_ref.clone())
            .collect(),
    }];
    let mut b = Bom {
        schema: Some("http://cyclonedx.org/schema/bom-1.6.schema.json".into()),
        bom_format: "CycloneDX".into(),
        spec_version: "1.6".into(),
        serial_number: None,
        version: 1,
        metadata: Some(Metadata {
            timestamp: opts.timestamp.clone(),
            tools: Some(serde_json::json!({
                "components": [{"type": "application", "name": "moat", "version": MOAT_VERSION}]
            })),
            component: Some(target),
            properties: meta_props,
        }),
        components,
        dependencies,
        vulnerabilities,
    };
    // The serial number is a hash of everything else: same content, same serial.
    let body = serde_json::to_vec(&b).unwrap_or_default();
    b.serial_number = Some(format!("urn:uuid:{}", content_uuid(&body)));
    b
}

fn vulnerabilities(pkgs: &[Package], refs: &[String], findings: &[Finding]) -> Vec<Vulnerability> {
    let by_purl: BTreeMap<String, usize> = pkgs
        .iter()
        .enumerate()
        .map(|(i, p)| (p.purl.to_string(), i))
        .rev()
        .collect();
    let find_pkg = |f: &Finding| -> Option<usize> {
        let pr = f.package.as_ref()?;
        by_purl.get(&pr.purl.to_string()).copied().or_else(|| {
            pkgs.iter()
                .position(|p| p.name == pr.name && p.version == pr.version)
        })
    };
    // One entry per advisory id, affecting every package it matched.
    let mut grouped: BTreeMap<&str, Vec<&Finding>> = BTreeMap::new();
    for f in findings.iter().filter(|f| f.suppressed.is_none()) {
        grouped.entry(f.id.as_str()).or_default().push(f);
    }
    let mut out = Vec::new();
    for (id, fs) in grouped {
        let first = fs[0];
        let mut ratings = Vec::new();
        let worst = fs.iter().map(|f| f.severity).max().unwrap_or_default();
        ratings.push(Rating {
            score: None,
            severity: Some(severity(worst).into()),
            method: Some("other".into()),
            vector: None,
        });
        if let Some(v) = &first.vulnerability {
            for c in &v.cvss {
                let method = match c.version.as_str() {
                    "CVSS_V2" => "CVSSv2",
                    "CVSS_V4" => "CVSSv4",
                    _ if c.vector.starts_with("CVSS:3.1") => "CVSSv31",
                    _ => "CVSSv3",
                };
                let sev = if method == "CVSSv2" {
                    None
                } else {
                    Some(severity(Severity::from_cvss_score(c.score)).to_string())
                };
                ratings.push(Rating {
                    score: Some(c.score),
                    severity: sev,
                    method: Some(method.into()),
                    vector: Some(c.vector.clone()),
                });
            }
        }
        let mut affects: Vec<Affect> = Vec::new();
        let mut recs: Vec<String> = Vec::new();
        let mut props = Vec::new();
        for f in &fs {
            let Some(i) = find_pkg(f) else { continue };
            let p = &pkgs[i];
            if !affects.iter().any(|a| a.reference == refs[i]) {
                affects.push(Affect {
                    reference: refs[i].clone(),
                    versions: vec![AffectedVersion {
                        version: p.version.clone(),
                        status: "affected".into(),
                    }],
                });
            }
            if let Some(v) = &f.vulnerability
                && !v.fixed_versions.is_empty()
            {
                let r = format!("Upgrade {} to {}", p.name, v.fixed_versions.join(" or "));
                if !recs.contains(&r) {
                    recs.push(r);
                }
                for fv in &v.fixed_versions {
                    props.push(prop(
                        "moat:vulnerability:fixed-version",
                        format!("{}@{fv}", p.name),
                    ));
                }
            }
        }
        for a in &first.aliases {
            props.push(prop("moat:vulnerability:alias", a));
        }
        if let Some(why) = &first.why {
            props.push(prop("moat:vulnerability:why", why));
        }
        out.push(Vulnerability {
            bom_ref: format!("vuln:{id}"),
            id: id.to_string(),
            ratings,
            description: Some(first.title.clone()).filter(|s| !s.is_empty()),
            detail: Some(first.message.clone()).filter(|s| !s.is_empty()),
            recommendation: if recs.is_empty() {
                first.fix.clone()
            } else {
                Some(recs.join("; "))
            },
            advisories: first
                .references
                .iter()
                .filter(|u| u.contains("://"))
                .map(|u| Advisory { url: u.clone() })
                .collect(),
            published: first
                .vulnerability
                .as_ref()
                .and_then(|v| v.published.clone()),
            updated: first
                .vulnerability
                .as_ref()
                .and_then(|v| v.modified.clone()),
            affects,
            properties: props,
        });
    }
    out
}

/// CycloneDX 1.6 JSON text, pretty-printed, ending with a newline.
pub fn to_string(inv: &Inventory, findings: &[Finding], opts: &WriteOptions) -> String {
    let mut s = serde_json::to_string_pretty(&bom(inv, findings, opts)).unwrap_or_default();
    s.push('\n');
    s
}
