//! SPDX 2.3 JSON (<https://spdx.github.io/spdx-spec/v2.3/>), with our own serde model.
//!
//! Licences that are valid SPDX expressions are written as they are. Those that are not (`GPL-2+`,
//! `Artistic`, as Debian records them) each become a `LicenseRef-` with the text in
//! `hasExtractedLicensingInfos`: valid SPDX that loses nothing. SPDX requires a creation
//! time; without `--timestamp` it is `SOURCE_DATE_EPOCH` or the epoch.

use std::collections::BTreeMap;

use moat_model::{Inventory, MOAT_VERSION};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{WriteOptions, content_uuid, package_refs, reproducible_time};

#[derive(Debug, Serialize, Deserialize)]
pub struct Document {
    #[serde(rename = "spdxVersion")]
    pub spdx_version: String,
    #[serde(rename = "dataLicense", default)]
    pub data_license: String,
    #[serde(rename = "SPDXID", default)]
    pub spdx_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(rename = "documentNamespace", default)]
    pub document_namespace: String,
    #[serde(rename = "creationInfo", default)]
    pub creation_info: CreationInfo,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packages: Vec<SpdxPackage>,
    #[serde(
        rename = "hasExtractedLicensingInfos",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub extracted_licenses: Vec<ExtractedLicense>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relationships: Vec<Relationship>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct CreationInfo {
    #[serde(default)]
    pub created: String,
    #[serde(default)]
    pub creators: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct SpdxPackage {
    #[serde(rename = "SPDXID", default)]
    pub spdx_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(
        rename = "versionInfo",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub version_info: Option<String>,
    #[serde(rename = "downloadLocation", default)]
    pub download_location: String,
    #[serde(
        rename = "filesAnalyzed",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub files_analyzed: Option<bool>,
    #[serde(
        rename = "licenseConcluded",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub license_concluded: Option<String>,
    #[serde(
        rename = "licenseDeclared",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub license_declared: Option<String>,
    #[serde(
        rename = "copyrightText",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub copyright_text: Option<String>,
    #[serde(
        rename = "sourceInfo",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub source_info: Option<String>,
    #[serde(
        rename = "primaryPackagePurpose",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub primary_package_purpose: Option<String>,
    #[serde(
        rename = "externalRefs",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub external_refs: Vec<ExternalRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ExternalRef {
    #[serde(rename = "referenceCategory")]
    pub category: String,
    #[serde(rename = "referenceType")]
    pub ty: String,
    #[serde(rename = "referenceLocator")]
    pub locator: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ExtractedLicense {
    #[serde(rename = "licenseId")]
    pub license_id: String,
    #[serde(rename = "extractedText")]
    pub extracted_text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Relationship {
    #[serde(rename = "spdxElementId")]
    pub element: String,
    #[serde(rename = "relationshipType")]
    pub ty: String,
    #[serde(rename = "relatedSpdxElement")]
    pub related: String,
}

/// `SPDXRef-` ids allow only letters, digits, `.` and `-`.
fn id_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

fn short_hash(s: &str) -> String {
    hex::encode(&Sha256::digest(s.as_bytes())[..6])
}

fn license_ref(l: &str) -> String {
    format!(
        "LicenseRef-{}-{}",
        id_safe(l).trim_matches('-'),
        short_hash(l)
    )
}

pub fn document(inv: &Inventory, opts: &WriteOptions) -> Document {
    let mut inv = inv.clone();
    inv.normalize();
    let refs = package_refs(&inv.packages);
    let root_id = "SPDXRef-Target".to_string();
    let mut packages = vec![SpdxPackage {
        spdx_id: root_id.clone(),
        name: inv.target.name.clone(),
        version_info: inv.image.as_ref().and_then(|i| i.manifest_digest.clone()),
        download_location: "NOASSERTION".into(),
        files_analyzed: Some(false),
        primary_package_purpose: Some(
            if inv.target.kind == "dir" {
                "FILE"
            } else {
                "CONTAINER"
            }
            .into(),
        ),
        comment: Some(format!("target kind: {}", inv.target.kind)),
        ..Default::default()
    }];
    let mut relationships = vec![Relationship {
        element: "SPDXRef-DOCUMENT".into(),
        ty: "DESCRIBES".into(),
        related: root_id.clone(),
    }];
    let mut extracted: BTreeMap<String, String> = BTreeMap::new();
    if let Some(os) = &inv.os {
        let id = format!("SPDXRef-OperatingSystem-{}", id_safe(&os.id));
        packages.push(SpdxPackage {
            spdx_id: id.clone(),
            name: os.id.clone(),
            version_info: os.version_id.clone(),
            download_location: "NOASSERTION".into(),
            files_analyzed: Some(false),
            primary_package_purpose: Some("OPERATING_SYSTEM".into()),
            comment: os.pretty_name.clone(),
            ..Default::default()
        });
        relationships.push(Relationship {
            element: root_id.clone(),
            ty: "CONTAINS".into(),
            related: id,
        });
    }
    for (p, r) in inv.packages.iter().zip(&refs) {
        let id = format!(
            "SPDXRef-Package-{}-{}-{}",
            p.kind.as_str(),
            id_safe(&p.name),
            short_hash(r)
        );
        let declared = if p.licenses.is_empty() {
            "NOASSERTION".to_string()
        } else {
            let ids: Vec<String> = p
                .licenses
                .iter()
                .map(|l| match super::spdx_expression(l) {
                    // Valid SPDX as recorded; compound ones in parentheses so readers can split
                    // the list at its top-level ANDs.
                    Some(e) if e.contains(' ') => format!("({e})"),
                    Some(e) => e.to_string(),
                    None => {
                        let id = license_ref(l);
                        extracted.insert(id.clone(), l.clone());
                        id
                    }
                })
                .collect();
            ids.join(" AND ")
        };
        let mut comment = Vec::new();
        if let Some(l) = &p.layer {
            comment.push(format!("layer: {l}"));
        }
        if let Some(path) = &p.path {
            comment.push(format!("path: {path}"));
        }
        packages.push(SpdxPackage {
            spdx_id: id.clone(),
            name: p.name.clone(),
            version_info: Some(p.version.clone()),
            download_location: "NOASSERTION".into(),
            files_analyzed: Some(false),
            license_concluded: Some("NOASSERTION".into()),
            license_declared: Some(declared),
            copyright_text: Some("NOASSERTION".into()),
            source_info: p
                .source
                .as_ref()
                .map(|s| format!("built from source package {} {}", s.name, s.version)),
            primary_package_purpose: Some(
                if p.kind.is_os() { "INSTALL" } else { "LIBRARY" }.into(),
            ),
            external_refs: vec![ExternalRef {
                category: "PACKAGE-MANAGER".into(),
                ty: "purl".into(),
                locator: p.purl.to_string(),
            }],
            comment: if comment.is_empty() {
                None
            } else {
                Some(comment.join("; "))
            },
        });
        relationships.push(Relationship {
            element: root_id.clone(),
            ty: "CONTAINS".into(),
            related: id,
        });
    }
    let mut doc = Document {
        spdx_version: "SPDX-2.3".into(),
        data_license: "CC0-1.0".into(),
        spdx_id: "SPDXRef-DOCUMENT".into(),
        name: inv.target.name.clone(),
        document_namespace: String::new(),
        creation_info: CreationInfo {
            created: opts.timestamp.clone().unwrap_or_else(reproducible_time),
            creators: vec![format!("Tool: moat-{MOAT_VERSION}")],
            comment: if inv.warnings.is_empty() {
                None
            } else {
                Some(format!("warnings: {}", inv.warnings.join("; ")))
            },
        },
        packages,
        extracted_licenses: extracted
            .into_iter()
            .map(|(id, text)| ExtractedLicense {
                license_id: id,
                name: Some(text.clone()),
                extracted_text: text,
            })
            .collect(),
        relationships,
    };
    // The namespace must be unique per document: derive it from the content, not from a random number.
    let body = serde_json::to_vec(&doc).unwrap_or_default();
    let safe_name: String = inv
        .target
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-._".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    doc.document_namespace = format!(
        "https://moat.invalid/spdx/{safe_name}-{}",
        content_uuid(&body)
    );
    doc
}

/// SPDX 2.3 JSON text, pretty-printed, ending with a newline.
pub fn to_string(inv: &Inventory, opts: &WriteOptions) -> String {
    let mut s = serde_json::to_string_pretty(&document(inv, opts)).unwrap_or_default();
    s.push('\n');
    s
}
