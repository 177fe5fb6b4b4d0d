//! Container images as a read-only, layered file view.
//!
//! A [`Target`] names where an image lives; [`Image::open`] resolves it to a manifest, a config and
//! layers; [`Image::collect`] streams every layer once, in order, applies whiteouts, and hands back the
//! final view of just the files a caller selected. Nothing is ever unpacked to disk and no link is
//! followed out of the image.
#![forbid(unsafe_code)]

mod archive;
pub mod cache;
mod digest;
mod dir;
mod error;
mod layer;
mod layout;
mod progress;
pub mod registry;
mod target;
mod targuard;
mod view;

use std::collections::BTreeSet;
use std::time::Duration;

use moat_model::{ImageInfo, TargetInfo};
use serde::{Deserialize, Serialize};

pub use cache::{LayerCache, LayerCacheHandle, LayerChanges, LayerOp};
pub use error::ImageError;
pub use target::Target;
pub use view::{EntryKind, FileEntry, FileMeta, FileView, Removal, Select, Shadowed};

/// Bounds that keep hostile images from exhausting memory or time.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest single file whose content a caller may have read into memory.
    pub max_file_content: u64,
    /// Largest uncompressed size of one layer (gzip/zstd bombs stop here).
    pub max_layer_size: u64,
    /// Most tar entries in one layer.
    pub max_entries: u64,
    /// Largest uncompressed:compressed ratio of a layer once more than `ratio_check_after` bytes have
    /// come out of the decompressor; 0 disables. Real layers compress 2–20:1; a bomb is caught after
    /// about `ratio_check_after` bytes instead of running to `max_layer_size`.
    pub max_compression_ratio: u64,
    /// Uncompressed bytes after which `max_compression_ratio` applies.
    pub ratio_check_after: u64,
    /// Largest GNU long-name / long-link or PAX extended header in a layer or image archive: `tar`
    /// reads these whole into memory, so they are refused above this before any of it is read.
    pub max_tar_extension: u64,
    /// All file content kept from one image, every copy counted (a hard link's copy of its target
    /// too): a layer of 3,000 hard links to one selected 100 MB file stops here.
    pub max_total_content: u64,
}

/// A budget from the environment (`MOAT_MAX_...`), or `default` when unset or not a number.
fn env_limit(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(default)
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_content: env_limit("MOAT_MAX_FILE_CONTENT", 256 << 20),
            max_layer_size: env_limit("MOAT_MAX_LAYER_SIZE", 32 << 30),
            max_entries: env_limit("MOAT_MAX_LAYER_ENTRIES", 5_000_000),
            max_compression_ratio: 100,
            ratio_check_after: 1 << 30,
            max_tar_extension: env_limit("MOAT_MAX_TAR_EXTENSION", 1 << 20),
            max_total_content: env_limit("MOAT_MAX_TOTAL_CONTENT", 4 << 30),
        }
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
    /// Registry credentials in the Docker `config.json` format (`auths`); when unset:
    /// `$REGISTRY_AUTH_FILE`, `$DOCKER_CONFIG/config.json`, then `~/.docker/config.json`.
    pub auth_file: Option<std::path::PathBuf>,
    /// Where what each layer did to the selected view is kept (by diff_id), so layers already read
    /// for another image are replayed instead of read ([`cache`]). None: every layer is read.
    pub layer_cache: Option<LayerCacheHandle>,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            platform: "linux/amd64".into(),
            insecure_registry: false,
            timeout: Duration::from_secs(30),
            limits: Limits::default(),
            progress: false,
            auth_file: None,
            layer_cache: None,
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

impl ImageConfig {
    /// Reads an OCI/Docker image config JSON document, as `Image::open` does; errors name `name`.
    pub fn from_json(name: &str, bytes: &[u8]) -> Result<ImageConfig, ImageError> {
        layout::parse_image_config(bytes, name)
    }
}

enum Source {
    Dir(std::path::PathBuf),
    Layers {
        store: layout::Store,
        layers: Vec<layout::LayerRef>,
    },
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
                    return Err(ImageError::Invalid {
                        what: path.display().to_string(),
                        why: "not a directory".into(),
                    });
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
            Target::Oci { path, tag } => {
                let index = path.join("index.json");
                if !index.is_file() {
                    return Err(ImageError::Invalid {
                        what: path.display().to_string(),
                        why: "not an OCI image layout (no index.json)".into(),
                    });
                }
                let (store, r) =
                    layout::open_oci(layout::Store::OciDir(path.clone()), tag.as_deref(), options)?;
                Ok(Image::layered(target, store, r, options))
            }
            Target::OciArchive(path) => {
                let index = archive::TarIndex::index(path)?;
                if !index.contains("index.json") {
                    let hint = if index.contains("manifest.json") {
                        " (it has manifest.json: use docker-archive:)"
                    } else {
                        ""
                    };
                    return Err(ImageError::Invalid {
                        what: path.display().to_string(),
                        why: format!("no index.json: not an OCI archive{hint}"),
                    });
                }
                let (store, r) = layout::open_oci(layout::Store::Tar(index), None, options)?;
                Ok(Image::layered(target, store, r, options))
            }
            Target::DockerArchive(path) => {
                let (store, r) = layout::open_docker(path)?;
                Ok(Image::layered(target, store, r, options))
            }
            Target::Registry(reference) => {
                layout::parse_platform(&options.platform)?;
                let reference = registry::Reference::parse(reference)?;
                let reg = registry::Registry::new(reference.clone(), options);
                let (bytes, ct) = reg.manifest(&reference.reference)?;
                let digest = digest::Digest::of(&bytes);
                let store = layout::Store::Registry(Box::new(reg));
                let (mdigest, layers, cdigest) =
                    layout::resolve_document(&store, bytes, digest, ct, options)?;
                let tag = if reference.reference.starts_with("sha256:") {
                    format!(
                        "{}/{}@{}",
                        reference.host, reference.repo, reference.reference
                    )
                } else {
                    format!(
                        "{}/{}:{}",
                        reference.host, reference.repo, reference.reference
                    )
                };
                let r = layout::from_manifest(&store, mdigest, layers, cdigest, vec![tag])?;
                Ok(Image::layered(target, store, r, options))
            }
            Target::Sbom(p) => Err(ImageError::Target(format!(
                "sbom:{}: an SBOM document is not an image",
                p.display()
            ))),
        }
    }

    fn layered(
        target: &Target,
        store: layout::Store,
        r: layout::Resolved,
        options: &OpenOptions,
    ) -> Image {
        Image {
            target: target.clone(),
            name: target.to_string(),
            info: r.info,
            config: Some(r.config),
            source: Source::Layers {
                store,
                layers: r.layers,
            },
            options: options.clone(),
        }
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// What reports say about the target.
    pub fn target_info(&self) -> TargetInfo {
        TargetInfo {
            name: self.name.clone(),
            kind: self.target.kind().to_string(),
        }
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
            Source::Dir(root) => {
                dir::collect(root, select, &self.options.limits, self.options.progress)
            }
            Source::Layers { store, layers } => {
                let progress = progress::Progress::new(self.options.progress, layers.len());
                // Links the caller selected with content lead to files that may come earlier in the
                // stream than the link: those are read in another pass (rare; at most a few).
                let mut wanted: BTreeSet<String> = BTreeSet::new();
                let mut answers = layer::Answers::new();
                let mut pass = 0;
                // The layer cache serves the first pass only; a pass that needs link targets again
                // starts over reading every layer (the cached layers' selector answers are not known).
                let mut cache = self.options.layer_cache.clone();
                let view = loop {
                    pass += 1;
                    let mut view = FileView::new();
                    let mut follow = wanted.clone();
                    let mut content_links = BTreeSet::new();
                    let mut replayed = false;
                    let mut restart = false;
                    for (index, layer) in layers.iter().enumerate() {
                        let layer_id = layer.diff_id.as_ref().map(|d| d.to_string());
                        view.set_layer_id(index, layer_id.clone());
                        let key = match (&cache, &layer_id) {
                            (Some(c), Some(id)) if pass == 1 => Some(c.key(id)),
                            _ => None,
                        };
                        if let (Some(c), Some(k)) = (&cache, &key)
                            && let Some(changes) = c.cache.get(k)
                        {
                            let served = replay(
                                &mut view,
                                &changes,
                                index,
                                layer_id.clone(),
                                select,
                                &mut follow,
                                &mut content_links,
                                &self.options.limits,
                            )?;
                            if served {
                                replayed = true;
                                continue;
                            }
                            // The selector now wants content the cached layer did not keep: read
                            // every layer again, without the cache.
                            restart = true;
                            break;
                        }
                        let name = format!("layer {index} ({})", store.describe(&layer.location));
                        let (raw, len) = store.open(&layer.location)?;
                        let raw = progress.wrap(raw, index, layer.size.or(len));
                        let mut ops = Vec::new();
                        let mut apply = layer::Apply {
                            view: &mut view,
                            select,
                            limits: &self.options.limits,
                            index,
                            name,
                            layer_id,
                            follow: &mut follow,
                            content_links: &mut content_links,
                            decisions: if pass == 1 {
                                layer::Decisions::Record(&mut answers)
                            } else {
                                layer::Decisions::Replay(&answers)
                            },
                            record: key.is_some().then_some(&mut ops),
                        };
                        apply.run(raw, layer)?;
                        // Stored only now: the blob and its diff_id were verified to the last byte.
                        if let (Some(c), Some(k)) = (&cache, &key) {
                            c.cache.put(k, &LayerChanges { ops });
                        }
                    }
                    let missing = missing_link_targets(&view, &content_links);
                    if !restart && (pass >= 4 || missing.is_subset(&wanted)) {
                        break view;
                    }
                    if replayed || restart {
                        cache = None;
                        pass = 0;
                        answers = layer::Answers::new();
                        wanted.clear();
                        continue;
                    }
                    wanted.extend(missing);
                };
                progress.finish();
                Ok(view)
            }
        }
    }
}

/// Applies a cached layer's changes to the view as reading the layer did. The selector is asked
/// again about every entry the layer kept (selectors keep state about what they claimed), and its
/// answer holds; false when it wants content the cache does not have (the layer must be read).
#[allow(clippy::too_many_arguments)]
fn replay(
    view: &mut FileView,
    changes: &LayerChanges,
    index: usize,
    layer_id: Option<String>,
    select: &dyn Fn(&FileMeta) -> Select,
    follow: &mut BTreeSet<String>,
    content_links: &mut BTreeSet<String>,
    limits: &Limits,
) -> Result<bool, ImageError> {
    for op in &changes.ops {
        match op {
            LayerOp::ClearDir { path } => view.clear_dir_before(path, index),
            LayerOp::Remove { path } => view.remove_before(path, index),
            LayerOp::RemoveTree { path } => view.remove_tree_before(path, index),
            LayerOp::NoteLink { path, target } => view.note_link(path, target, index),
            LayerOp::Insert {
                meta,
                content,
                content_link,
            } => {
                let asked = select(meta);
                let want = if follow.contains(&meta.path) {
                    Select::Content
                } else {
                    asked
                };
                let has_content = meta.kind == EntryKind::File;
                let content = match want {
                    Select::Skip => {
                        view.remove_before(&meta.path, index);
                        continue;
                    }
                    Select::Meta => &None,
                    Select::Content if has_content && content.is_none() => return Ok(false),
                    Select::Content => content,
                };
                let content_link = &(*content_link && want == Select::Content);
                if let Some(c) = content {
                    view.charge_content(c.len() as u64, limits.max_total_content)
                        .map_err(|total| ImageError::Limit {
                            what: format!("layer {index} (cached): {}", meta.path),
                            why: format!(
                                "file content kept from the image would reach {total} bytes, over the {} byte limit",
                                limits.max_total_content
                            ),
                        })?;
                }
                if *content_link {
                    content_links.insert(meta.path.clone());
                } else {
                    content_links.remove(&meta.path);
                }
                let symlink = matches!(meta.kind, EntryKind::Symlink(_));
                let path = meta.path.clone();
                view.insert(FileEntry {
                    meta: meta.clone(),
                    layer_index: index,
                    layer: layer_id.clone(),
                    content: content.clone(),
                });
                if symlink
                    && *content_link
                    && let Some(target) = view.resolve_path(&path)
                {
                    follow.insert(target);
                }
            }
        }
    }
    Ok(true)
}

/// Targets of content-selected links whose content is not in the view.
fn missing_link_targets(view: &FileView, links: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for l in links {
        let Some(e) = view.get(l) else { continue };
        match &e.meta.kind {
            EntryKind::Hardlink(t)
                if e.content.is_none()
                    && view.get(t).and_then(|t| t.content.as_ref()).is_none() =>
            {
                out.insert(t.clone());
            }
            EntryKind::Symlink(_) => {
                if let Some(p) = view.resolve_path(l).filter(|p| view.get(p).is_none()) {
                    out.insert(p);
                }
            }
            _ => {}
        }
    }
    out
}
