use serde::{Deserialize, Serialize};

use crate::Package;

/// What the user pointed moat at, as they spelled it and as moat resolved it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetInfo {
    /// The target as given on the command line (`docker-archive:img.tar`).
    pub name: String,
    /// `oci`, `oci-archive`, `docker-archive`, `dir`, `registry`, `sbom`.
    pub kind: String,
}

/// The distribution, from `/etc/os-release` or a fallback file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OsRelease {
    /// `ID`: `debian`, `alpine`, `ubuntu`, `rhel`...
    pub id: String,
    /// `VERSION_ID`: `12`, `3.18.4`, `22.04`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_codename: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pretty_name: Option<String>,
}

/// One layer of an image, in order from the base.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerInfo {
    /// The digest of the blob as stored (compressed).
    pub digest: String,
    /// The digest of the uncompressed tar (the config's `rootfs.diff_ids`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff_id: Option<String>,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
}

/// Image metadata that reports and image-configuration checks need.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInfo {
    /// Manifest digest, where the image has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_digest: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repo_tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layers: Vec<LayerInfo>,
}

/// The SBOM: everything the analyzers found in one target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    pub target: TargetInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os: Option<OsRelease>,
    pub packages: Vec<Package>,
    /// Problems that did not stop the scan (an unparseable lockfile), each naming the file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl Inventory {
    /// Sorts packages and warnings so that the same input always gives the same bytes out.
    pub fn normalize(&mut self) {
        self.packages
            .sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        self.packages.dedup();
        self.warnings.sort();
        self.warnings.dedup();
    }
}
