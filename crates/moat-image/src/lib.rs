//! Container images as a read-only, layered file view.
//!
//! A [`Target`] names where an image lives; [`Image::open`] resolves it to a manifest, a config and
//! layers; [`Image::collect`] streams every layer once, in order, applies whiteouts, and hands back the
//! final view of just the files a caller selected. Nothing is ever unpacked to disk and no link is
//! followed out of the image.

mod dir;
mod error;
mod target;
mod view;

use std::time::Duration;

use moat_model::{ImageInfo, TargetInfo};
use serde::{Deserialize, Serialize};

pub use error::ImageError;
pub use target::Target;
pub use view::{EntryKind, FileEntry, FileMeta, FileView, Select};

/// Bounds that keep hostile images from exhausting memory or time.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest single file whose content a caller may have read into memory.
    pub max_file_content: u64,
    /// Largest uncompressed size of one layer (gzip/zstd bombs stop here).
    pub max_layer_size: u64,
    /// Most tar entries in one layer.
    pub max_entries: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_file_content: 256 << 20, max_layer_size: 32 << 30, max_entries: 5_000_000 }
    }
}

/// How to open a target.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// `os/arch[/variant]` picked from multi-platform indexes.
    pub platform: String,
    /// Allow plain HTTP to registries (loopback test registries).
    pub insecure_registry: bool,
    /// Network timeout for each registry request.
    pub timeout: Duration,
    pub limits: Limits,
    /// Show progress on stderr (only when it is a terminal).
    pub progress: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            platform: "linux/amd64".into(),
            insecure_registry: false,
            timeout: Duration::from_secs(30),
            limits: Limits::default(),
            progress: false,
        }
    }
}

/// One step of the image's build history, from its config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default)]
    pub empty_layer: bool,
}

/// The parts of an image configuration that checks and reports use.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub entrypoint: Vec<String>,
    #[serde(default)]
    pub cmd: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub exposed_ports: Vec<String>,
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// `Healthcheck.Test`, e.g. `["CMD-SHELL", "curl -f http://localhost/"]`; `["NONE"]` disables it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Vec<String>>,
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
}

enum Source {
    Dir(std::path::PathBuf),
}

/// An opened target: metadata now, file contents on [`Image::collect`].
pub struct Image {
    target: Target,
    name: String,
    info: ImageInfo,
    config: Option<ImageConfig>,
    source: Source,
    options: OpenOptions,
}

impl Image {
    /// Resolves a target to something that can be read. Fails with an error naming the file, blob or
    /// registry answer that is wrong.
    pub fn open(target: &Target, options: &OpenOptions) -> Result<Image, ImageError> {
        match target {
            Target::Dir(path) => {
                let meta = std::fs::metadata(path).map_err(|e| ImageError::io(path, e))?;
                if !meta.is_dir() {
                    return Err(ImageError::Invalid { what: path.display().to_string(), why: "not a directory".into() });
                }
                Ok(Image {
                    target: target.clone(),
                    name: target.to_string(),
                    info: ImageInfo::default(),
                    config: None,
                    source: Source::Dir(path.clone()),
                    options: options.clone(),
                })
            }
            other => Err(ImageError::Unsupported(other.to_string())),
        }
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// What reports say about the target.
    pub fn target_info(&self) -> TargetInfo {
        TargetInfo { name: self.name.clone(), kind: self.target.kind().to_string() }
    }

    /// Manifest and layer metadata (empty for `dir:` targets).
    pub fn info(&self) -> &ImageInfo {
        &self.info
    }

    /// The image configuration (none for `dir:` targets).
    pub fn config(&self) -> Option<&ImageConfig> {
        self.config.as_ref()
    }

    /// Reads every layer once, in order, and returns the final view of the selected files: whiteouts
    /// applied, later layers replacing earlier ones. `select` sees each entry's metadata and says
    /// whether to keep nothing, the metadata, or the content too.
    pub fn collect(&self, select: &dyn Fn(&FileMeta) -> Select) -> Result<FileView, ImageError> {
        match &self.source {
            Source::Dir(root) => dir::collect(root, select, &self.options.limits),
        }
    }
}
