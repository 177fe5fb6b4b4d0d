use std::fmt;
use std::path::{Path, PathBuf};

use crate::ImageError;

/// Where an image (or a file tree, or an SBOM) lives, in the target syntax Trivy and syft users know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `oci:DIR[:TAG]` — an OCI image layout directory.
    Oci { path: PathBuf, tag: Option<String> },
    /// `oci-archive:FILE` — an OCI layout as a tar.
    OciArchive(PathBuf),
    /// `docker-archive:FILE` — `docker save` output.
    DockerArchive(PathBuf),
    /// `dir:PATH` — a root filesystem or any directory.
    Dir(PathBuf),
    /// `registry:HOST/REPO[:TAG|@DIGEST]`.
    Registry(String),
    /// `sbom:FILE` — a CycloneDX or SPDX JSON document.
    Sbom(PathBuf),
}

impl Target {
    /// Parses `KIND:REST`, or detects the kind of a bare path: a directory with `index.json` and
    /// `oci-layout` is an OCI layout, any other directory a file tree, a tar with `manifest.json` a
    /// docker archive, a tar with `index.json` an OCI archive.
    pub fn parse(s: &str) -> Result<Target, ImageError> {
        if s.is_empty() {
            return Err(ImageError::Target("empty target".into()));
        }
        let (kind, rest) = match s.split_once(':') {
            Some((k, r)) if KINDS.contains(&k) => (Some(k), r),
            _ => (None, s),
        };
        let need = |r: &str| -> Result<(), ImageError> {
            if r.is_empty() {
                Err(ImageError::Target(format!("{s}: nothing after the colon")))
            } else {
                Ok(())
            }
        };
        match kind {
            Some("oci") => {
                need(rest)?;
                // `oci:DIR:TAG` — the tag is after the last colon unless that names an existing path.
                if !Path::new(rest).exists()
                    && let Some((p, t)) = rest.rsplit_once(':')
                    && !t.contains('/')
                    && !p.is_empty()
                {
                    return Ok(Target::Oci {
                        path: p.into(),
                        tag: Some(t.to_string()),
                    });
                }
                Ok(Target::Oci {
                    path: rest.into(),
                    tag: None,
                })
            }
            Some("oci-archive") => need(rest).map(|_| Target::OciArchive(strip_tag(rest).into())),
            Some("docker-archive") => {
                need(rest).map(|_| Target::DockerArchive(strip_tag(rest).into()))
            }
            Some("dir") => need(rest).map(|_| Target::Dir(rest.into())),
            Some("registry") | Some("docker") => {
                need(rest)?;
                Ok(Target::Registry(rest.trim_start_matches("//").to_string()))
            }
            Some("sbom") => need(rest).map(|_| Target::Sbom(rest.into())),
            _ => detect(Path::new(s)),
        }
    }

    /// The target kind as spelled in the syntax (`oci`, `dir`...).
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Oci { .. } => "oci",
            Target::OciArchive(_) => "oci-archive",
            Target::DockerArchive(_) => "docker-archive",
            Target::Dir(_) => "dir",
            Target::Registry(_) => "registry",
            Target::Sbom(_) => "sbom",
        }
    }
}

const KINDS: [&str; 7] = [
    "oci",
    "oci-archive",
    "docker-archive",
    "dir",
    "registry",
    "docker",
    "sbom",
];

/// skopeo-style archive targets may carry `:REF` after the file; moat reads the first image.
fn strip_tag(rest: &str) -> &str {
    if Path::new(rest).exists() {
        return rest;
    }
    match rest.split_once(':') {
        Some((p, _)) if Path::new(p).exists() => p,
        _ => rest,
    }
}

fn detect(p: &Path) -> Result<Target, ImageError> {
    let meta = std::fs::metadata(p).map_err(|e| {
        ImageError::Target(format!(
            "{}: {e} (give a target as oci:DIR, oci-archive:FILE, docker-archive:FILE, dir:PATH, registry:REF or sbom:FILE)",
            p.display()
        ))
    })?;
    if meta.is_dir() {
        if p.join("index.json").is_file() && p.join("oci-layout").is_file() {
            return Ok(Target::Oci {
                path: p.into(),
                tag: None,
            });
        }
        return Ok(Target::Dir(p.into()));
    }
    // A file: peek at the tar's member names for manifest.json (docker) or index.json (OCI).
    if let Some(kind) = sniff_tar(p) {
        return Ok(kind);
    }
    if p.extension().is_some_and(|e| e == "json") {
        return Ok(Target::Sbom(p.into()));
    }
    Err(ImageError::Target(format!(
        "{}: cannot tell what kind of target this is; prefix it with oci-archive:, docker-archive: or sbom:",
        p.display()
    )))
}

fn sniff_tar(p: &Path) -> Option<Target> {
    use std::io::Read;
    let mut f = crate::digest::open_regular(p).ok()?;
    let mut names = Vec::new();
    // Walk tar headers without reading bodies; stop after a bounded number of entries.
    let mut header = [0u8; 512];
    for _ in 0..10_000 {
        f.read_exact(&mut header).ok()?;
        if header.iter().all(|b| *b == 0) {
            break;
        }
        let name_end = header[..100].iter().position(|b| *b == 0).unwrap_or(100);
        let name = String::from_utf8_lossy(&header[..name_end])
            .trim_start_matches("./")
            .to_string();
        let size_field = String::from_utf8_lossy(&header[124..136])
            .trim_matches(|c: char| c == '\0' || c == ' ')
            .to_string();
        let size = u64::from_str_radix(&size_field, 8).ok()?;
        names.push(name);
        let skip = size.div_ceil(512) * 512;
        std::io::copy(&mut (&mut f).take(skip), &mut std::io::sink()).ok()?;
    }
    if names.iter().any(|n| n == "manifest.json") {
        Some(Target::DockerArchive(p.into()))
    } else if names.iter().any(|n| n == "index.json") {
        Some(Target::OciArchive(p.into()))
    } else {
        None
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Oci { path, tag: Some(t) } => write!(f, "oci:{}:{t}", path.display()),
            Target::Oci { path, tag: None } => write!(f, "oci:{}", path.display()),
            Target::OciArchive(p) => write!(f, "oci-archive:{}", p.display()),
            Target::DockerArchive(p) => write!(f, "docker-archive:{}", p.display()),
            Target::Dir(p) => write!(f, "dir:{}", p.display()),
            Target::Registry(r) => write!(f, "registry:{r}"),
            Target::Sbom(p) => write!(f, "sbom:{}", p.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_prefixed_targets() {
        assert_eq!(
            Target::parse("dir:/tmp").ok(),
            Some(Target::Dir("/tmp".into()))
        );
        assert_eq!(
            Target::parse("oci:/nonexistent/layout:bookworm").ok(),
            Some(Target::Oci {
                path: "/nonexistent/layout".into(),
                tag: Some("bookworm".into())
            })
        );
        assert_eq!(
            Target::parse("registry:127.0.0.1:5000/debian:12").ok(),
            Some(Target::Registry("127.0.0.1:5000/debian:12".into()))
        );
        assert!(Target::parse("dir:").is_err());
        assert!(Target::parse("/definitely/not/here").is_err());
    }

    #[test]
    fn detects_a_bare_directory() {
        let d = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            Target::parse(&d.path().display().to_string()).ok(),
            Some(Target::Dir(d.path().into()))
        );
    }
}
