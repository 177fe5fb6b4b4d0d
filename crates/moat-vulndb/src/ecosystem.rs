//! Naming: which OSV ecosystem and package name a package is looked up by, and the normalisation
//! that makes a record's name and an inventory's name meet (PEP 503 for PyPI, Ubuntu's `:LTS`).

use moat_model::{Package, PackageKind, Purl};

use crate::version::Scheme;

/// The ecosystem string records are indexed under: Ubuntu's `:LTS` suffix dropped (the release is
/// what a host reports), everything else as written.
pub fn normalize_ecosystem(e: &str) -> String {
    let e = e.trim();
    if let Some(rest) = e.strip_prefix("Ubuntu:")
        && let Some(r) = rest.strip_suffix(":LTS")
    {
        return format!("Ubuntu:{r}");
    }
    e.to_string()
}

/// The ecosystem family (`Debian` for `Debian:11`).
pub fn family(e: &str) -> &str {
    e.split(':').next().unwrap_or(e)
}

/// The package name as indexed: PyPI names per PEP 503 (lowercase, runs of `-_.` as one `-`).
pub fn normalize_name(ecosystem: &str, name: &str) -> String {
    let name = name.trim();
    match family(ecosystem) {
        "PyPI" => {
            let mut out = String::with_capacity(name.len());
            let mut sep = false;
            for c in name.chars() {
                if matches!(c, '-' | '_' | '.') {
                    sep = true;
                } else {
                    if sep && !out.is_empty() {
                        out.push('-');
                    }
                    sep = false;
                    out.extend(c.to_lowercase());
                }
            }
            out
        }
        _ => name.to_string(),
    }
}

/// The index key of (ecosystem, name).
pub fn key(ecosystem: &str, name: &str) -> String {
    let e = normalize_ecosystem(ecosystem);
    let n = normalize_name(&e, name);
    format!("{e}\u{0}{n}")
}

/// What to look a package up by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    pub ecosystem: String,
    pub name: String,
    /// The version compared with the records (the source version for Debian when known).
    pub version: String,
    pub scheme: Scheme,
}

/// Why a package cannot be looked up: shown by `explain` and counted in reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmatchable(pub String);

fn major_minor(v: &str) -> Option<String> {
    let mut it = v.split('.');
    let a = it
        .next()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))?;
    let b = it
        .next()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))?;
    Some(format!("{a}.{b}"))
}

/// The release part of a `distro` qualifier: `debian-11` → `11`, `3.18.4` → `3.18.4`,
/// `ubuntu-22.04` → `22.04`.
fn distro_release(d: &str) -> &str {
    match d.rfind('-') {
        Some(i) if d[i + 1..].starts_with(|c: char| c.is_ascii_digit()) => &d[i + 1..],
        _ => d,
    }
}

/// The OSV ecosystem and name of a package, from its purl (and the OS release for OS packages when
/// the purl has no `distro`).
pub fn query_for(pkg: &Package, os: Option<&moat_model::OsRelease>) -> Result<Query, Unmatchable> {
    let purl = &pkg.purl;
    let version = pkg.version.clone();
    let ty = purl.ty.as_str();
    // Debian testing images carry only a codename; a release number is what advisories use.
    let os_version = os.and_then(|o| {
        o.version_id.clone().or_else(|| {
            let n = match o.version_codename.as_deref()? {
                "jessie" => "8",
                "stretch" => "9",
                "buster" => "10",
                "bullseye" => "11",
                "bookworm" => "12",
                "trixie" => "13",
                "forky" => "14",
                _ => return None,
            };
            Some(n.to_string())
        })
    });
    let os_id = os.map(|o| o.id.to_ascii_lowercase());
    let distro = purl.qualifier("distro").map(str::to_string);
    // Advisories name OS packages by source package.
    let source = || -> (String, Option<String>) {
        if let Some(s) = &pkg.source {
            return (
                s.name.clone(),
                Some(s.version.clone()).filter(|v| !v.is_empty()),
            );
        }
        if let Some(up) = purl.qualifier("upstream") {
            return match up.split_once('@') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (up.to_string(), None),
            };
        }
        (purl.name.clone(), None)
    };
    let q = |ecosystem: String, name: String, version: String| {
        let scheme = Scheme::for_ecosystem(&ecosystem);
        Ok(Query {
            ecosystem,
            name,
            version,
            scheme,
        })
    };
    // The distribution of an OS package: the purl's namespace and distro qualifier, else the image's
    // os-release.
    let ns = purl
        .namespace
        .clone()
        .or(os_id)
        .unwrap_or_default()
        .to_ascii_lowercase();
    let os_release = distro
        .as_deref()
        .map(distro_release)
        .map(str::to_string)
        .or(os_version);
    match ty {
        "deb" => {
            let rel = os_release;
            let Some(rel) = rel else {
                return Err(Unmatchable(
                    "no distribution release (purl has no distro qualifier and no os-release)"
                        .into(),
                ));
            };
            let (name, sv) = source();
            let version = sv.unwrap_or(version);
            match ns.as_str() {
                "debian" => {
                    let major = rel.split('.').next().unwrap_or(&rel).to_string();
                    q(format!("Debian:{major}"), name, version)
                }
                "ubuntu" => q(
                    format!("Ubuntu:{}", major_minor(&rel).unwrap_or(rel)),
                    name,
                    version,
                ),
                other => Err(Unmatchable(format!(
                    "no advisory source for deb namespace {other:?}"
                ))),
            }
        }
        "apk" => {
            let rel = os_release;
            let (name, _) = source();
            match ns.as_str() {
                "alpine" => match rel.as_deref().and_then(major_minor) {
                    Some(mm) => q(format!("Alpine:v{mm}"), name, version),
                    None => Err(Unmatchable(
                        "no Alpine release (purl has no distro qualifier and no os-release)".into(),
                    )),
                },
                "wolfi" => q("Wolfi".into(), name, version),
                "chainguard" => q("Chainguard".into(), name, version),
                other => Err(Unmatchable(format!(
                    "no advisory source for apk namespace {other:?}"
                ))),
            }
        }
        "rpm" => {
            let rel = os_release.unwrap_or_default();
            let (name, _) = source();
            let eco = match ns.as_str() {
                "opensuse" if !rel.is_empty() => format!("openSUSE:Leap {rel}"),
                "rocky" | "rocky-linux" if !rel.is_empty() => {
                    format!("Rocky Linux:{}", rel.split('.').next().unwrap_or(&rel))
                }
                "almalinux" if !rel.is_empty() => {
                    format!("AlmaLinux:{}", rel.split('.').next().unwrap_or(&rel))
                }
                other => {
                    return Err(Unmatchable(format!(
                        "no advisory source for rpm namespace {other:?} release {rel:?}"
                    )));
                }
            };
            let version = match purl.qualifier("epoch") {
                Some(e) if !version.contains(':') => format!("{e}:{version}"),
                _ => version,
            };
            q(eco, name, version)
        }
        "pypi" => q("PyPI".into(), normalize_name("PyPI", &purl.name), version),
        "npm" => {
            let name = match &purl.namespace {
                Some(ns) => format!("{ns}/{}", purl.name),
                None => purl.name.clone(),
            };
            q("npm".into(), name, version)
        }
        "cargo" => q("crates.io".into(), purl.name.clone(), version),
        "golang" => {
            let name = match &purl.namespace {
                Some(ns) => format!("{ns}/{}", purl.name),
                None => purl.name.clone(),
            };
            let name = if pkg.kind == PackageKind::GoStdlib || name == "go" {
                "stdlib".to_string()
            } else {
                name
            };
            q("Go".into(), name, version)
        }
        "maven" => match &purl.namespace {
            Some(ns) => q("Maven".into(), format!("{ns}:{}", purl.name), version),
            None => Err(Unmatchable("maven purl without a group".into())),
        },
        "gem" => q("RubyGems".into(), purl.name.clone(), version),
        "nuget" => q("NuGet".into(), purl.name.clone(), version),
        "composer" => q(
            "Packagist".into(),
            match &purl.namespace {
                Some(ns) => format!("{ns}/{}", purl.name),
                None => purl.name.clone(),
            },
            version,
        ),
        "pub" => q("Pub".into(), purl.name.clone(), version),
        "hex" => q("Hex".into(), purl.name.clone(), version),
        other => Err(Unmatchable(format!(
            "no advisory ecosystem for purl type {other:?}"
        ))),
    }
}

/// A package built from a bare purl (SBOM components): kind from the purl type.
pub fn package_from_purl(
    purl: Purl,
    name_hint: Option<&str>,
    version_hint: Option<&str>,
) -> Package {
    let kind = match purl.ty.as_str() {
        "deb" => PackageKind::Deb,
        "apk" => PackageKind::Apk,
        "rpm" => PackageKind::Rpm,
        "npm" => PackageKind::Npm,
        "pypi" => PackageKind::Python,
        "golang" if purl.name == "stdlib" => PackageKind::GoStdlib,
        "golang" => PackageKind::Go,
        "cargo" => PackageKind::Cargo,
        "maven" => PackageKind::Maven,
        "gem" => PackageKind::Gem,
        "nuget" => PackageKind::Nuget,
        _ => PackageKind::Composer,
    };
    Package {
        name: name_hint
            .map(str::to_string)
            .unwrap_or_else(|| purl.name.clone()),
        version: purl
            .version
            .clone()
            .or(version_hint.map(str::to_string))
            .unwrap_or_default(),
        kind,
        arch: purl.qualifier("arch").map(str::to_string),
        source: None,
        licenses: Vec::new(),
        purl,
        path: None,
        layer: None,
        direct: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pep503() {
        assert_eq!(normalize_name("PyPI", "Foo.Bar__baz"), "foo-bar-baz");
        assert_eq!(key("Ubuntu:22.04:LTS", "x"), "Ubuntu:22.04\u{0}x");
    }

    #[test]
    fn purl_mapping() {
        let p = |s: &str| package_from_purl(s.parse().expect("purl"), None, None);
        let q = query_for(&p("pkg:deb/debian/curl@7.74.0-1.3?distro=debian-11"), None).expect("q");
        assert_eq!(
            (q.ecosystem.as_str(), q.name.as_str()),
            ("Debian:11", "curl")
        );
        let q = query_for(&p("pkg:apk/alpine/musl@1.2.4-r1?distro=3.18.4"), None).expect("q");
        assert_eq!(q.ecosystem, "Alpine:v3.18");
        let os = moat_model::OsRelease {
            id: "debian".into(),
            version_codename: Some("trixie".into()),
            ..Default::default()
        };
        let mut pkg = p("pkg:deb/debian/bash@5.2-1");
        pkg.source = Some(moat_model::SourcePackage {
            name: "bash".into(),
            version: "5.2-1".into(),
        });
        assert_eq!(
            query_for(&pkg, Some(&os)).expect("q").ecosystem,
            "Debian:13"
        );
        let q = query_for(&p("pkg:npm/%40angular/core@16.0.0"), None).expect("q");
        assert_eq!(q.name, "@angular/core");
        let q = query_for(&p("pkg:maven/org.apache/commons@1.0"), None).expect("q");
        assert_eq!(q.name, "org.apache:commons");
        let q = query_for(&p("pkg:golang/stdlib@go1.20.1"), None).expect("q");
        assert_eq!((q.name.as_str(), q.scheme), ("stdlib", Scheme::Go));
        let q = query_for(
            &p("pkg:deb/debian/libssl3@3.0.11-1?distro=debian-12&upstream=openssl"),
            None,
        )
        .expect("q");
        assert_eq!(q.name, "openssl");
    }
}
