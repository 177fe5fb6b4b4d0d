//! Reads CycloneDX (1.2–1.6) and SPDX (2.2–2.3) JSON documents back into an [`Inventory`], so an SBOM
//! made elsewhere (or earlier) can be scanned as `sbom:FILE`. Components are identified by their purl;
//! a component without one cannot be matched against advisories and becomes a warning.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use moat_model::{Inventory, OsRelease, Package, PackageKind, Purl, SourcePackage, TargetInfo};
use serde_json::Value;

use super::cyclonedx::{PROP_DIRECT, PROP_LAYER, PROP_PATH, PROP_SOURCE_NAME, PROP_SOURCE_VERSION};

/// Largest SBOM document read (a 100k-component CycloneDX file is ~100 MB).
pub const MAX_SBOM_BYTES: u64 = 512 << 20;
/// Deepest nesting of CycloneDX `components` followed.
const MAX_DEPTH: usize = 32;

/// Why an SBOM document could not be read; always names the file.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not valid JSON (line {line}, column {column}): {why}")]
    Json {
        path: String,
        line: usize,
        column: usize,
        why: String,
    },
    #[error("{path}: {why}")]
    Invalid { path: String, why: String },
}

/// Reads a CycloneDX, SPDX or moat inventory JSON file.
pub fn read_sbom(path: &Path) -> Result<Inventory, ReadError> {
    let name = path.display().to_string();
    let f = std::fs::File::open(path).map_err(|e| ReadError::Io {
        path: name.clone(),
        source: e,
    })?;
    read_sbom_from(f, &name)
}

/// Reads an SBOM document from a stream (standard input for `sbom:-`), bounded like a file;
/// `name` is used in errors.
pub fn read_sbom_from(r: impl Read, name: &str) -> Result<Inventory, ReadError> {
    let mut buf = Vec::new();
    r.take(MAX_SBOM_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| ReadError::Io {
            path: name.to_string(),
            source: e,
        })?;
    if buf.len() as u64 > MAX_SBOM_BYTES {
        return Err(ReadError::Invalid {
            path: name.to_string(),
            why: format!("larger than the {MAX_SBOM_BYTES} byte limit for SBOM documents"),
        });
    }
    let text = String::from_utf8(buf).map_err(|e| ReadError::Invalid {
        path: name.to_string(),
        why: format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
    })?;
    read_sbom_str(&text, name)
}

/// moat's own JSON inventory (`moat sbom -f json`): an object with a `target` naming its `kind` and a
/// `packages` array, which neither CycloneDX nor SPDX has at the top level.
fn is_moat_inventory(v: &Value) -> bool {
    v.get("target")
        .and_then(|t| t.get("kind"))
        .is_some_and(Value::is_string)
        && v.get("packages").is_some_and(Value::is_array)
}

/// Reads a CycloneDX, SPDX or moat inventory JSON document from text; `name` is used in errors and as
/// the target name (a moat inventory keeps the target it records, so it round-trips exactly).
pub fn read_sbom_str(text: &str, name: &str) -> Result<Inventory, ReadError> {
    let v: Value = serde_json::from_str(text).map_err(|e| ReadError::Json {
        path: name.to_string(),
        line: e.line(),
        column: e.column(),
        why: e.to_string(),
    })?;
    let invalid = |why: String| ReadError::Invalid {
        path: name.to_string(),
        why,
    };
    if is_moat_inventory(&v) {
        let mut inv: Inventory = serde_json::from_value(v).map_err(|e| ReadError::Invalid {
            path: name.to_string(),
            why: format!("not a valid moat inventory: {e}"),
        })?;
        inv.normalize();
        return Ok(inv);
    }
    let mut inv = Inventory {
        target: TargetInfo {
            name: name.to_string(),
            kind: "sbom".into(),
        },
        ..Inventory::default()
    };
    if v.get("bomFormat").and_then(Value::as_str) == Some("CycloneDX") {
        read_cyclonedx(&v, &mut inv, name).map_err(invalid)?;
    } else if v
        .get("spdxVersion")
        .and_then(Value::as_str)
        .is_some_and(|s| s.starts_with("SPDX-2"))
    {
        read_spdx(&v, &mut inv).map_err(invalid)?;
    } else {
        return Err(invalid("neither a CycloneDX JSON document (no \"bomFormat\": \"CycloneDX\") nor SPDX 2.x JSON (no \"spdxVersion\") nor a moat inventory (no \"target\" and \"packages\")".into()));
    }
    if inv.os.is_none() {
        inv.os = os_from_purls(&inv.packages);
    }
    // Debian's VERSION_ID is the major release; some tools write the point release (`12.15`).
    if let Some(os) = inv.os.as_mut()
        && os.id == "debian"
        && let Some(v) = os.version_id.as_mut()
        && let Some((major, _)) = v.split_once('.')
    {
        *v = major.to_string();
    }
    inv.normalize();
    Ok(inv)
}

fn kind_of(purl: &Purl) -> Option<PackageKind> {
    Some(match purl.ty.as_str() {
        "deb" => PackageKind::Deb,
        "apk" | "alpine" => PackageKind::Apk,
        "rpm" => PackageKind::Rpm,
        "npm" => PackageKind::Npm,
        "pypi" => PackageKind::Python,
        "golang" if purl.name == "stdlib" && purl.namespace.is_none() => PackageKind::GoStdlib,
        "golang" => PackageKind::Go,
        "cargo" => PackageKind::Cargo,
        "maven" => PackageKind::Maven,
        "gem" => PackageKind::Gem,
        "nuget" => PackageKind::Nuget,
        "composer" => PackageKind::Composer,
        _ => return None,
    })
}

/// The package name as the ecosystem spells it: `group:artifact` for Maven, `@scope/name` for npm,
/// the full module path for Go, `vendor/name` for Composer; OS purls' namespace is the distribution.
fn ecosystem_name(purl: &Purl) -> String {
    match (purl.ty.as_str(), &purl.namespace) {
        ("maven", Some(ns)) => format!("{ns}:{}", purl.name),
        ("npm" | "golang" | "composer", Some(ns)) => format!("{ns}/{}", purl.name),
        _ => purl.name.clone(),
    }
}

/// Builds a package from a purl plus what the document says besides.
struct Extra<'a> {
    version: Option<&'a str>,
    licenses: Vec<String>,
    props: BTreeMap<String, String>,
}

fn package(purl: Purl, extra: Extra<'_>) -> Option<Package> {
    let kind = kind_of(&purl)?;
    let name = ecosystem_name(&purl);
    let mut version = purl
        .version
        .clone()
        .or_else(|| extra.version.map(str::to_string))
        .unwrap_or_default();
    // OS versions carry the epoch (`1:2.38.1-5`); purls may hold it in an `epoch` qualifier instead
    // (trivy for deb, everyone for rpm).
    if kind.is_os()
        && !version.contains(':')
        && let Some(e) = purl
            .qualifier("epoch")
            .filter(|e| !e.is_empty() && *e != "0")
    {
        version = format!("{e}:{version}");
    }
    let props = &extra.props;
    let mut source = match (props.get(PROP_SOURCE_NAME), props.get(PROP_SOURCE_VERSION)) {
        (Some(n), v) => Some(SourcePackage {
            name: n.clone(),
            version: v.cloned().unwrap_or_else(|| version.clone()),
        }),
        _ => None,
    };
    if source.is_none() {
        // Trivy writes its source fields as properties; syft as the purl `upstream` qualifier.
        if let Some(n) = props.get("aquasecurity:trivy:SrcName") {
            let mut v = props
                .get("aquasecurity:trivy:SrcVersion")
                .cloned()
                .unwrap_or_else(|| version.clone());
            if let Some(r) = props
                .get("aquasecurity:trivy:SrcRelease")
                .filter(|r| !r.is_empty())
            {
                v = format!("{v}-{r}");
            }
            if let Some(e) = props
                .get("aquasecurity:trivy:SrcEpoch")
                .filter(|e| !e.is_empty() && *e != "0")
            {
                v = format!("{e}:{v}");
            }
            source = Some(SourcePackage {
                name: n.clone(),
                version: v,
            });
        } else if let Some(up) = purl.qualifier("upstream") {
            source = Some(match up.split_once('@') {
                Some((n, v)) => SourcePackage {
                    name: n.to_string(),
                    version: v.to_string(),
                },
                None => SourcePackage {
                    name: up.to_string(),
                    version: version.clone(),
                },
            });
        } else if kind == PackageKind::Deb {
            source = Some(SourcePackage {
                name: name.clone(),
                version: version.clone(),
            });
        }
    }
    let layer = props
        .get(PROP_LAYER)
        .or_else(|| props.get("aquasecurity:trivy:LayerDiffID"))
        .cloned();
    Some(Package {
        arch: purl.qualifier("arch").map(str::to_string),
        name,
        version,
        kind,
        source,
        licenses: extra.licenses,
        path: props.get(PROP_PATH).cloned(),
        layer,
        direct: props.get(PROP_DIRECT).and_then(|d| d.parse().ok()),
        purl,
    })
}

fn str_of<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

fn read_cyclonedx(v: &Value, inv: &mut Inventory, name: &str) -> Result<(), String> {
    let spec = str_of(v, "specVersion").unwrap_or("");
    if !spec.starts_with("1.") {
        return Err(format!(
            "CycloneDX specVersion {spec:?} is not supported (1.2 to 1.6 are)"
        ));
    }
    if let Some(t) = v
        .pointer("/metadata/component/name")
        .and_then(Value::as_str)
    {
        inv.target.name = format!("{name} ({t})");
    }
    let mut stack: Vec<(&Value, usize)> = Vec::new();
    if let Some(cs) = v.get("components") {
        let arr = cs.as_array().ok_or("\"components\" is not an array")?;
        stack.extend(arr.iter().rev().map(|c| (c, 0)));
    }
    while let Some((c, depth)) = stack.pop() {
        if depth < MAX_DEPTH
            && let Some(arr) = c.get("components").and_then(Value::as_array)
        {
            stack.extend(arr.iter().rev().map(|x| (x, depth + 1)));
        }
        let cname = str_of(c, "name").unwrap_or("");
        if str_of(c, "type") == Some("operating-system") {
            if inv.os.is_none() && !cname.is_empty() {
                inv.os = Some(OsRelease {
                    id: cname.to_ascii_lowercase(),
                    version_id: str_of(c, "version").map(str::to_string),
                    pretty_name: str_of(c, "description").map(str::to_string),
                    ..Default::default()
                });
            }
            continue;
        }
        let Some(p) = str_of(c, "purl").filter(|p| !p.is_empty()) else {
            if matches!(
                str_of(c, "type"),
                Some("library" | "framework" | "application")
            ) {
                inv.warnings.push(format!(
                    "component {cname:?} has no purl: not matched against advisories"
                ));
            }
            continue;
        };
        let purl: Purl = match p.parse() {
            Ok(u) => u,
            Err(e) => {
                inv.warnings.push(format!("component {cname:?}: {e}"));
                continue;
            }
        };
        let mut licenses = Vec::new();
        for l in c
            .get("licenses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(e) = str_of(l, "expression") {
                licenses.push(e.to_string());
            } else if let Some(lic) = l.get("license")
                && let Some(s) = str_of(lic, "id").or_else(|| str_of(lic, "name"))
            {
                licenses.push(s.to_string());
            }
        }
        let props: BTreeMap<String, String> = c
            .get("properties")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| {
                Some((
                    str_of(p, "name")?.to_string(),
                    str_of(p, "value").unwrap_or("").to_string(),
                ))
            })
            .collect();
        let ty = purl.ty.clone();
        match package(
            purl,
            Extra {
                version: str_of(c, "version"),
                licenses,
                props,
            },
        ) {
            Some(pkg) => inv.packages.push(pkg),
            None => inv.warnings.push(format!(
                "component {cname:?}: purl type {ty:?} is not an ecosystem moat knows"
            )),
        }
    }
    Ok(())
}

fn read_spdx(v: &Value, inv: &mut Inventory) -> Result<(), String> {
    let extracted: BTreeMap<&str, &str> = v
        .get("hasExtractedLicensingInfos")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            Some((
                str_of(e, "licenseId")?,
                str_of(e, "name").or_else(|| str_of(e, "extractedText"))?,
            ))
        })
        .collect();
    let pkgs = match v.get("packages") {
        None => return Ok(()),
        Some(p) => p.as_array().ok_or("\"packages\" is not an array")?,
    };
    for p in pkgs {
        let pname = str_of(p, "name").unwrap_or("");
        if str_of(p, "primaryPackagePurpose") == Some("OPERATING_SYSTEM") {
            if inv.os.is_none() && !pname.is_empty() {
                inv.os = Some(OsRelease {
                    id: pname.to_ascii_lowercase(),
                    version_id: str_of(p, "versionInfo").map(str::to_string),
                    ..Default::default()
                });
            }
            continue;
        }
        let purl = p
            .get("externalRefs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find_map(|r| {
                (str_of(r, "referenceType") == Some("purl"))
                    .then(|| str_of(r, "referenceLocator"))
                    .flatten()
            });
        let Some(purl) = purl else {
            if !pname.is_empty() && str_of(p, "SPDXID") != Some("SPDXRef-Target") {
                inv.warnings.push(format!(
                    "package {pname:?} has no purl: not matched against advisories"
                ));
            }
            continue;
        };
        let purl: Purl = match purl.parse() {
            Ok(u) => u,
            Err(e) => {
                inv.warnings.push(format!("package {pname:?}: {e}"));
                continue;
            }
        };
        let mut licenses = Vec::new();
        if let Some(d) =
            str_of(p, "licenseDeclared").filter(|d| !matches!(*d, "NOASSERTION" | "NONE" | ""))
        {
            for part in super::split_top_level_and(d) {
                licenses.push(
                    extracted
                        .get(part.as_str())
                        .map(|s| s.to_string())
                        .unwrap_or(part),
                );
            }
        }
        let mut props = BTreeMap::new();
        if let Some(rest) =
            str_of(p, "sourceInfo").and_then(|s| s.strip_prefix("built from source package "))
            && let Some((n, ver)) = rest.split_once(' ')
        {
            props.insert(PROP_SOURCE_NAME.to_string(), n.to_string());
            props.insert(PROP_SOURCE_VERSION.to_string(), ver.to_string());
        }
        if let Some(c) = str_of(p, "comment") {
            for part in c.split("; ") {
                if let Some(l) = part.strip_prefix("layer: ") {
                    props.insert(PROP_LAYER.to_string(), l.to_string());
                } else if let Some(path) = part.strip_prefix("path: ") {
                    props.insert(PROP_PATH.to_string(), path.to_string());
                }
            }
        }
        let ty = purl.ty.clone();
        match package(
            purl,
            Extra {
                version: str_of(p, "versionInfo"),
                licenses,
                props,
            },
        ) {
            Some(pkg) => inv.packages.push(pkg),
            None => inv.warnings.push(format!(
                "package {pname:?}: purl type {ty:?} is not an ecosystem moat knows"
            )),
        }
    }
    Ok(())
}

/// The distribution from OS purls' `distro` qualifier: `debian-12`, `rhel-8.9`, or Alpine's bare
/// `3.18.4` (the namespace then names the distribution).
fn os_from_purls(pkgs: &[Package]) -> Option<OsRelease> {
    let p = pkgs
        .iter()
        .find(|p| p.kind.is_os() && p.purl.qualifier("distro").is_some())?;
    let distro = p.purl.qualifier("distro")?;
    let ns = p.purl.namespace.clone().unwrap_or_default();
    let (id, ver) = match distro.split_once('-') {
        Some((id, ver)) if id.chars().all(|c| c.is_ascii_alphabetic()) => {
            (id.to_string(), ver.to_string())
        }
        _ => (ns, distro.to_string()),
    };
    if id.is_empty() {
        return None;
    }
    Some(OsRelease {
        id: id.to_ascii_lowercase(),
        version_id: Some(ver),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_small_cyclonedx() {
        let doc = r#"{"bomFormat":"CycloneDX","specVersion":"1.5","components":[
            {"type":"library","name":"libc6","version":"2.36-9+deb12u4","purl":"pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&upstream=glibc&distro=debian-12"},
            {"type":"library","name":"core","purl":"pkg:npm/%40angular/core@16.0.0"},
            {"type":"library","name":"nopurl"}]}"#;
        let inv = read_sbom_str(doc, "x.json").expect("reads");
        assert_eq!(inv.packages.len(), 2);
        let deb = inv
            .packages
            .iter()
            .find(|p| p.kind == PackageKind::Deb)
            .expect("deb");
        assert_eq!(deb.source.as_ref().map(|s| s.name.as_str()), Some("glibc"));
        assert_eq!(deb.arch.as_deref(), Some("amd64"));
        assert_eq!(
            inv.os
                .as_ref()
                .map(|o| (o.id.as_str(), o.version_id.as_deref())),
            Some(("debian", Some("12")))
        );
        assert!(inv.packages.iter().any(|p| p.name == "@angular/core"));
        assert_eq!(inv.warnings.len(), 1);
    }

    #[test]
    fn epoch_qualifiers_and_point_releases() {
        let doc = r#"{"bomFormat":"CycloneDX","specVersion":"1.6","components":[
            {"type":"library","name":"bsdutils","version":"1:2.38.1-5+deb12u3","purl":"pkg:deb/debian/bsdutils@2.38.1-5%2Bdeb12u3?arch=amd64&distro=debian-12.15&epoch=1",
             "properties":[{"name":"aquasecurity:trivy:SrcName","value":"util-linux"},{"name":"aquasecurity:trivy:SrcVersion","value":"2.38.1"},{"name":"aquasecurity:trivy:SrcRelease","value":"5+deb12u3"},{"name":"aquasecurity:trivy:SrcEpoch","value":"1"}]},
            {"type":"library","name":"hello","purl":"pkg:rpm/redhat/hello@0.0.1-rls?arch=x86_64&epoch=1"}]}"#;
        let inv = read_sbom_str(doc, "trivy.json").expect("reads");
        let v: Vec<(&str, &str)> = inv
            .packages
            .iter()
            .map(|p| (p.name.as_str(), p.version.as_str()))
            .collect();
        assert_eq!(
            v,
            vec![("bsdutils", "1:2.38.1-5+deb12u3"), ("hello", "1:0.0.1-rls")]
        );
        assert_eq!(
            inv.packages[0].source.as_ref().map(|s| s.version.as_str()),
            Some("1:2.38.1-5+deb12u3")
        );
        assert_eq!(
            inv.os.as_ref().and_then(|o| o.version_id.as_deref()),
            Some("12")
        );
    }

    #[test]
    fn rejects_other_json_with_the_file_name() {
        let e = read_sbom_str("{\"a\":1}", "f.json").expect_err("not an SBOM");
        assert!(e.to_string().starts_with("f.json: neither"));
        let e = read_sbom_str("{\"a\":", "f.json").expect_err("bad json");
        assert!(e.to_string().contains("line 1"));
    }

    #[test]
    fn moat_inventory_round_trips_exactly() {
        let os = moat_model::OsRelease {
            id: "debian".into(),
            version_id: Some("12".into()),
            ..Default::default()
        };
        let text = concat!(
            "Package: zlib1g\nStatus: install ok installed\nSource: zlib\n",
            "Version: 1:1.2.13.dfsg-1\nArchitecture: amd64\n\n",
            "Package: bash\nStatus: install ok installed\nVersion: 5.2.15-2+b2\nArchitecture: amd64\n"
        );
        let pkgs = crate::os::dpkg::packages(text, true, Some(&os), None).expect("status parses");
        let mut inv = Inventory {
            target: TargetInfo {
                name: "docker-archive:img.tar".into(),
                kind: "docker-archive".into(),
            },
            os: Some(os),
            packages: pkgs,
            warnings: vec!["x/package.json (npm): line 3: bad".into()],
            ..Inventory::default()
        };
        inv.normalize();
        assert_eq!(inv.packages.len(), 2);
        let json = super::super::json::to_string(&inv);
        let back = read_sbom_str(&json, "inv.json").expect("reads moat's own inventory");
        assert_eq!(back, inv);
        assert_eq!(super::super::json::to_string(&back), json);
        // Through a stream, as `sbom:-` reads standard input.
        let back = read_sbom_from(json.as_bytes(), "standard input").expect("reads a stream");
        assert_eq!(back, inv);
        // A broken inventory names the file and the field.
        let e = read_sbom_str(
            r#"{"target":{"name":"x","kind":"dir"},"packages":[{"name":1}]}"#,
            "inv.json",
        )
        .expect_err("invalid package");
        assert!(
            e.to_string()
                .starts_with("inv.json: not a valid moat inventory"),
            "{e}"
        );
    }
}
