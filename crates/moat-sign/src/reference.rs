//! `HOST/REPO[:TAG|@DIGEST]` image references, with Docker Hub's defaults, and the comparison of the
//! `docker-reference` a signature claims with the repository it is found in.

use moat_image::registry::{split_name, valid_tag};

use crate::SignError;

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Registry host as written (`docker.io`, `127.0.0.1:5000`).
    pub host: String,
    /// Repository path (`library/debian`, `demo`).
    pub repo: String,
    /// The tag, when given or defaulted (`latest`).
    pub tag: Option<String>,
    /// The `sha256:` digest, when given.
    pub digest: Option<String>,
}

pub(crate) fn is_sha256_digest(d: &str) -> bool {
    d.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

impl ImageRef {
    /// Parses `HOST/REPO[:TAG][@DIGEST]` (a `registry:` prefix is allowed).
    pub fn parse(input: &str) -> Result<ImageRef, SignError> {
        let s = input.strip_prefix("registry:").unwrap_or(input);
        let bad = |why: &str| {
            SignError::Reference(format!(
                "registry:{s}: {why} (expected HOST/REPO[:TAG|@DIGEST])"
            ))
        };
        if s.len() > 512 {
            return Err(bad("too long"));
        }
        let (name, digest) = match s.split_once('@') {
            Some((n, d)) => {
                if !is_sha256_digest(d) {
                    return Err(bad("invalid digest (sha256:<64 lowercase hex>)"));
                }
                (n, Some(d.to_string()))
            }
            None => (s, None),
        };
        let slash = name.rfind('/').unwrap_or(0);
        let (name, tag) = match name.rfind(':') {
            Some(i) if i > slash => (&name[..i], Some(name[i + 1..].to_string())),
            _ => (name, None),
        };
        if let Some(t) = &tag
            && !valid_tag(t)
        {
            return Err(bad("invalid tag"));
        }
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_string())
        } else {
            tag
        };
        let (host, repo) = split_name(name).map_err(bad)?;
        Ok(ImageRef {
            host,
            repo,
            tag,
            digest,
        })
    }

    /// The repository as cosign writes it in `docker-reference` (go-containerregistry's
    /// `Repository.Name()`: Docker Hub as `index.docker.io`).
    pub fn repository_name(&self) -> String {
        let host = if self.host == "docker.io" {
            "index.docker.io"
        } else {
            &self.host
        };
        format!("{host}/{}", self.repo)
    }

    /// The tag or digest to fetch the image manifest by (the digest wins when both are given).
    pub(crate) fn manifest_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// Whether a signature's `docker-reference` names this repository: the claim may carry a tag or
    /// digest (containers/image writes one) and Docker Hub spellings are equivalent.
    pub fn same_repository(&self, claimed: &str) -> bool {
        match ImageRef::parse(claimed) {
            Ok(c) => c.host == self.host && c.repo == self.repo,
            Err(_) => false,
        }
    }
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.host, self.repo)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_compares() {
        let r = ImageRef::parse("registry:127.0.0.1:5000/demo:1").unwrap();
        assert_eq!(
            (r.host.as_str(), r.repo.as_str(), r.tag.as_deref()),
            ("127.0.0.1:5000", "demo", Some("1"))
        );
        assert_eq!(r.repository_name(), "127.0.0.1:5000/demo");
        assert!(r.same_repository("127.0.0.1:5000/demo"));
        assert!(r.same_repository("127.0.0.1:5000/demo:2"));
        assert!(!r.same_repository("127.0.0.1:5000/other"));
        assert!(!r.same_repository("127.0.0.1:5001/demo"));
        let h = ImageRef::parse("debian").unwrap();
        assert_eq!(h.repository_name(), "index.docker.io/library/debian");
        assert!(h.same_repository("index.docker.io/library/debian"));
        assert!(h.same_repository("docker.io/library/debian:12"));
        let d = format!("sha256:{}", "a".repeat(64));
        let r = ImageRef::parse(&format!("ghcr.io/x/y@{d}")).unwrap();
        assert_eq!(r.manifest_reference(), d);
        assert!(ImageRef::parse("h:5000/../x:1").is_err());
        assert!(ImageRef::parse("h:5000/x@sha256:zz").is_err());
        assert!(ImageRef::parse("h:5000/x:bad/tag").is_err());
    }
}
