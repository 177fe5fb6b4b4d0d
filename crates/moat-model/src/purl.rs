//! Package URLs (<https://github.com/package-url/purl-spec>), the one identifier every SBOM format,
//! advisory database and report agrees on.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A parsed package URL. Qualifiers are kept sorted so the canonical string is deterministic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Purl {
    /// The package type, lowercase: `deb`, `apk`, `rpm`, `npm`, `pypi`, `golang`, `cargo`, `maven`...
    pub ty: String,
    /// Namespace segments joined by `/` (unencoded): `debian`, `github.com/foo`, `org.apache.commons`.
    pub namespace: Option<String>,
    pub name: String,
    pub version: Option<String>,
    pub qualifiers: BTreeMap<String, String>,
    pub subpath: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PurlError {
    #[error("package URL {0:?} does not start with \"pkg:\"")]
    MissingScheme(String),
    #[error("package URL {0:?} has no type")]
    MissingType(String),
    #[error("package URL {0:?} has no name")]
    MissingName(String),
    #[error("package URL {0:?} has a malformed percent-encoding")]
    BadEncoding(String),
}

impl Purl {
    pub fn new(ty: impl Into<String>, name: impl Into<String>) -> Self {
        Purl {
            ty: ty.into().to_ascii_lowercase(),
            namespace: None,
            name: name.into(),
            version: None,
            qualifiers: BTreeMap::new(),
            subpath: None,
        }
    }

    pub fn with_namespace(mut self, ns: impl Into<String>) -> Self {
        let ns = ns.into();
        self.namespace = if ns.is_empty() { None } else { Some(ns) };
        self
    }

    pub fn with_version(mut self, v: impl Into<String>) -> Self {
        self.version = Some(v.into());
        self
    }

    /// Adds a qualifier; empty values are dropped, as the spec requires.
    pub fn with_qualifier(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        let v = v.into();
        if !v.is_empty() {
            self.qualifiers.insert(k.into().to_ascii_lowercase(), v);
        }
        self
    }

    pub fn qualifier(&self, k: &str) -> Option<&str> {
        self.qualifiers.get(k).map(String::as_str)
    }
}

fn encode(s: &str, out: &mut String, keep_slash: bool) {
    for b in s.bytes() {
        let c = b as char;
        if c.is_ascii_alphanumeric()
            || matches!(c, '.' | '-' | '_' | '~' | ':')
            || (keep_slash && c == '/')
        {
            out.push(c);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

fn decode(s: &str, whole: &str) -> Result<String, PurlError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .ok_or_else(|| PurlError::BadEncoding(whole.to_string()))?;
            let v = u8::from_str_radix(hex, 16)
                .map_err(|_| PurlError::BadEncoding(whole.to_string()))?;
            out.push(v);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| PurlError::BadEncoding(whole.to_string()))
}

impl fmt::Display for Purl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::with_capacity(64);
        s.push_str("pkg:");
        s.push_str(&self.ty);
        s.push('/');
        if let Some(ns) = &self.namespace {
            for (i, seg) in ns.split('/').filter(|x| !x.is_empty()).enumerate() {
                if i > 0 {
                    s.push('/');
                }
                encode(seg, &mut s, false);
            }
            s.push('/');
        }
        encode(&self.name, &mut s, false);
        if let Some(v) = &self.version {
            s.push('@');
            encode(v, &mut s, false);
        }
        if !self.qualifiers.is_empty() {
            s.push('?');
            for (i, (k, v)) in self.qualifiers.iter().enumerate() {
                if i > 0 {
                    s.push('&');
                }
                s.push_str(k);
                s.push('=');
                encode(v, &mut s, false);
            }
        }
        if let Some(sp) = &self.subpath {
            s.push('#');
            encode(sp, &mut s, true);
        }
        f.write_str(&s)
    }
}

impl FromStr for Purl {
    type Err = PurlError;
    fn from_str(whole: &str) -> Result<Self, Self::Err> {
        let rest = whole
            .strip_prefix("pkg:")
            .ok_or_else(|| PurlError::MissingScheme(whole.to_string()))?
            .trim_start_matches('/');
        let (rest, subpath) = match rest.split_once('#') {
            Some((r, sp)) => (r, Some(decode(sp.trim_matches('/'), whole)?)),
            None => (rest, None),
        };
        let (rest, quals) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let mut qualifiers = BTreeMap::new();
        if let Some(q) = quals {
            for pair in q.split('&').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                let v = decode(v, whole)?;
                if !v.is_empty() {
                    qualifiers.insert(k.to_ascii_lowercase(), v);
                }
            }
        }
        let (ty, path) = rest
            .split_once('/')
            .ok_or_else(|| PurlError::MissingType(whole.to_string()))?;
        if ty.is_empty() {
            return Err(PurlError::MissingType(whole.to_string()));
        }
        let path = path.trim_end_matches('/');
        // The version is after the last '@' of the last path segment (npm scopes encode their '@').
        let (path, version) = match path.rfind('@') {
            Some(at) if !path[at..].contains('/') => {
                (&path[..at], Some(decode(&path[at + 1..], whole)?))
            }
            _ => (path, None),
        };
        let mut segs: Vec<String> = path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| decode(s, whole))
            .collect::<Result<_, _>>()?;
        let name = segs
            .pop()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| PurlError::MissingName(whole.to_string()))?;
        let namespace = if segs.is_empty() {
            None
        } else {
            Some(segs.join("/"))
        };
        Ok(Purl {
            ty: ty.to_ascii_lowercase(),
            namespace,
            name,
            version,
            qualifiers,
            subpath,
        })
    }
}

impl Serialize for Purl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Purl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deb_purl_round_trip() {
        let p = Purl::new("deb", "libc6")
            .with_namespace("debian")
            .with_version("2.36-9+deb12u4")
            .with_qualifier("distro", "debian-12")
            .with_qualifier("arch", "amd64");
        let s = p.to_string();
        assert_eq!(
            s,
            "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12"
        );
        assert_eq!(s.parse::<Purl>(), Ok(p));
    }

    #[test]
    fn npm_scope_and_go_paths() {
        let p: Purl = "pkg:npm/%40angular/core@16.0.0"
            .parse()
            .expect("valid purl");
        assert_eq!(p.namespace.as_deref(), Some("@angular"));
        assert_eq!(p.name, "core");
        assert_eq!(p.to_string(), "pkg:npm/%40angular/core@16.0.0");
        let g: Purl = "pkg:golang/github.com/foo/bar@v1.2.3"
            .parse()
            .expect("valid purl");
        assert_eq!(g.namespace.as_deref(), Some("github.com/foo"));
        assert_eq!(g.version.as_deref(), Some("v1.2.3"));
    }

    #[test]
    fn rejects_garbage() {
        assert!("deb/debian/x".parse::<Purl>().is_err());
        assert!("pkg:deb".parse::<Purl>().is_err());
        assert!("pkg:deb/debian/x@1%ZZ".parse::<Purl>().is_err());
    }
}
