use serde::{Deserialize, Serialize};

use crate::Purl;

/// Where a package record came from. Decides which version ordering and which advisory ecosystem apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PackageKind {
    Deb,
    Apk,
    Rpm,
    Npm,
    Python,
    Go,
    GoStdlib,
    Cargo,
    Maven,
    Gem,
    Nuget,
    Composer,
}

impl PackageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PackageKind::Deb => "deb",
            PackageKind::Apk => "apk",
            PackageKind::Rpm => "rpm",
            PackageKind::Npm => "npm",
            PackageKind::Python => "python",
            PackageKind::Go => "go",
            PackageKind::GoStdlib => "go-stdlib",
            PackageKind::Cargo => "cargo",
            PackageKind::Maven => "maven",
            PackageKind::Gem => "gem",
            PackageKind::Nuget => "nuget",
            PackageKind::Composer => "composer",
        }
    }

    /// OS packages are judged per distribution release; the rest per language ecosystem.
    pub fn is_os(self) -> bool {
        matches!(self, PackageKind::Deb | PackageKind::Apk | PackageKind::Rpm)
    }
}

/// The source package an OS package was built from. Debian and Ubuntu advisories name source packages.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SourcePackage {
    pub name: String,
    pub version: String,
}

/// One installed or declared software package, as an analyzer found it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Package {
    pub name: String,
    /// The version exactly as recorded (for dpkg, with epoch: `1:2.3-4`).
    pub version: String,
    pub kind: PackageKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<SourcePackage>,
    /// Licence expressions or names as the package database records them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub licenses: Vec<String>,
    pub purl: Purl,
    /// The file the record was read from, relative to the image root (no leading `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The digest (diff id) of the layer that introduced this record, for images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<String>,
    /// Direct (true) or transitive (false) dependency, where a lockfile says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direct: Option<bool>,
}

impl Package {
    /// The sort key that makes every report deterministic.
    pub fn sort_key(&self) -> (PackageKind, &str, &str, Option<&str>, Option<&str>) {
        (
            self.kind,
            &self.name,
            &self.version,
            self.arch.as_deref(),
            self.path.as_deref(),
        )
    }
}
