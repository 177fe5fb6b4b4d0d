//! Image layouts: the OCI image layout (directory or tar), `docker save` archives, and registries all
//! resolve to the same thing — a verified config and an ordered list of layers to stream.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use moat_model::{ImageInfo, LayerInfo};
use serde::Deserialize;

use crate::archive::TarIndex;
use crate::digest::{Digest, read_bounded, verify};
use crate::registry::Registry;
use crate::{HistoryEntry, ImageConfig, ImageError, OpenOptions};

/// Largest manifest, index or config accepted (real ones are a few KiB).
pub(crate) const MAX_DOCUMENT: u64 = 8 << 20;

pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Where the bytes of an image live.
pub(crate) enum Store {
    OciDir(PathBuf),
    Tar(TarIndex),
    Registry(Box<Registry>),
}

/// Where one layer's bytes are.
#[derive(Debug, Clone)]
pub(crate) enum Location {
    /// A content-addressed blob (OCI layouts, registries).
    Blob(Digest),
    /// A member of a docker archive.
    Member(String),
}

/// One layer to stream, with what it must hash to.
#[derive(Debug, Clone)]
pub(crate) struct LayerRef {
    pub(crate) location: Location,
    /// Digest of the stored (possibly compressed) bytes, when known.
    pub(crate) digest: Option<Digest>,
    /// Digest of the uncompressed tar (`rootfs.diff_ids`), when known.
    pub(crate) diff_id: Option<Digest>,
    pub(crate) size: Option<u64>,
}

impl Store {
    /// A human name for a blob in error messages.
    pub(crate) fn describe(&self, loc: &Location) -> String {
        match (self, loc) {
            (Store::OciDir(dir), Location::Blob(d)) => format!("blob {d} in {}", dir.display()),
            (Store::Tar(t), Location::Blob(d)) => format!("blob {d} in {}", t.path().display()),
            (Store::Tar(t), Location::Member(m)) => format!("{m} in {}", t.path().display()),
            (Store::Registry(r), Location::Blob(d)) => r.blob_url(d),
            (_, Location::Member(m)) => m.clone(),
        }
    }

    /// Opens a blob or member for streaming; the returned size is what the store says it holds.
    pub(crate) fn open(&self, loc: &Location) -> Result<(Box<dyn Read>, Option<u64>), ImageError> {
        match (self, loc) {
            (Store::OciDir(dir), Location::Blob(d)) => {
                let p = dir.join(d.blob_path());
                let f = crate::digest::open_regular(&p).map_err(|e| ImageError::Invalid {
                    what: p.display().to_string(),
                    why: format!(
                        "blob {d} cannot be opened: {}",
                        match e {
                            ImageError::Io { source, .. } => source.to_string(),
                            ImageError::Invalid { why, .. } => why,
                            other => other.to_string(),
                        }
                    ),
                })?;
                let len = f.metadata().ok().map(|m| m.len());
                Ok((Box::new(f), len))
            }
            (Store::Tar(t), Location::Blob(d)) => t.open(&d.blob_path()).map(|(r, s)| (r, Some(s))),
            (Store::Tar(t), Location::Member(m)) => t.open(m).map(|(r, s)| (r, Some(s))),
            (Store::Registry(r), Location::Blob(d)) => r.open_blob(d),
            (_, Location::Member(m)) => Err(ImageError::Invalid {
                what: m.clone(),
                why: "not in an archive".into(),
            }),
        }
    }

    /// Reads a small blob (config) whole and checks it against its digest.
    fn read_blob(&self, d: &Digest) -> Result<Vec<u8>, ImageError> {
        let loc = Location::Blob(d.clone());
        let what = self.describe(&loc);
        let (r, _) = self.open(&loc)?;
        let bytes = read_bounded(r, MAX_DOCUMENT, &what)?;
        verify(&bytes, d, &what)?;
        Ok(bytes)
    }

    /// Reads a manifest or index by digest (registries serve these from a separate endpoint) and verifies it.
    fn read_manifest(&self, d: &Digest) -> Result<(Vec<u8>, Option<String>), ImageError> {
        match self {
            Store::Registry(r) => r.manifest(&d.to_string()),
            _ => Ok((self.read_blob(d)?, None)),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Platform {
    #[serde(default)]
    pub(crate) os: String,
    #[serde(default)]
    pub(crate) architecture: String,
    #[serde(default)]
    pub(crate) variant: Option<String>,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub(crate) media_type: Option<String>,
    pub(crate) digest: String,
    #[serde(default)]
    pub(crate) size: Option<u64>,
    #[serde(default)]
    pub(crate) platform: Option<Platform>,
    #[serde(default)]
    pub(crate) annotations: Option<BTreeMap<String, String>>,
}

impl Descriptor {
    fn ref_name(&self) -> Option<&str> {
        self.annotations
            .as_ref()?
            .get("org.opencontainers.image.ref.name")
            .map(String::as_str)
    }
}

/// An index or a manifest; which one is told by `mediaType` when present, else by its fields (umoci
/// omits `mediaType`).
#[derive(Debug, Deserialize)]
struct Document {
    #[serde(rename = "schemaVersion", default)]
    schema_version: Option<u64>,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
}

#[derive(Debug, Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    architecture: Option<String>,
    #[serde(default)]
    os: Option<String>,
    #[serde(default)]
    config: Option<ContainerConfig>,
    #[serde(default)]
    rootfs: Option<RootFs>,
    #[serde(default)]
    history: Option<Vec<HistoryEntry>>,
}

#[derive(Debug, Default, Deserialize)]
struct RootFs {
    #[serde(default)]
    diff_ids: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ContainerConfig {
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    env: Option<Vec<String>>,
    #[serde(default)]
    entrypoint: Option<Vec<String>>,
    #[serde(default)]
    cmd: Option<Vec<String>>,
    #[serde(default)]
    working_dir: Option<String>,
    #[serde(default)]
    exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    healthcheck: Option<Healthcheck>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Healthcheck {
    #[serde(default)]
    test: Option<Vec<String>>,
}

/// What resolving a target yields.
pub(crate) struct Resolved {
    pub(crate) info: ImageInfo,
    pub(crate) config: ImageConfig,
    pub(crate) layers: Vec<LayerRef>,
}

fn image_config(c: ContainerConfig, history: Vec<HistoryEntry>) -> ImageConfig {
    ImageConfig {
        user: c.user.filter(|u| !u.is_empty()),
        env: c.env.unwrap_or_default(),
        entrypoint: c.entrypoint.unwrap_or_default(),
        cmd: c.cmd.unwrap_or_default(),
        working_dir: c.working_dir.filter(|w| !w.is_empty()),
        exposed_ports: c.exposed_ports.unwrap_or_default().into_keys().collect(),
        labels: c.labels.unwrap_or_default(),
        healthcheck: c.healthcheck.and_then(|h| h.test),
        history,
    }
}

/// Parses an image config blob on its own (for callers that hold one without an image), with the
/// same reading as [`crate::Image::open`]; errors name `what`.
pub(crate) fn parse_image_config(bytes: &[u8], what: &str) -> Result<ImageConfig, ImageError> {
    let cfg: ConfigFile = parse_json(bytes, what)?;
    Ok(image_config(
        cfg.config.unwrap_or_default(),
        cfg.history.unwrap_or_default(),
    ))
}

fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, ImageError> {
    serde_json::from_slice(bytes).map_err(|e| ImageError::Invalid {
        what: what.to_string(),
        why: format!("invalid JSON: {e}"),
    })
}

/// Parses `os/arch[/variant]`.
pub(crate) fn parse_platform(s: &str) -> Result<Platform, ImageError> {
    let parts: Vec<&str> = s.split('/').collect();
    match parts.as_slice() {
        [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(Platform {
            os: os.to_string(),
            architecture: arch.to_string(),
            variant: None,
        }),
        [os, arch, v] if !os.is_empty() && !arch.is_empty() && !v.is_empty() => Ok(Platform {
            os: os.to_string(),
            architecture: arch.to_string(),
            variant: Some(v.to_string()),
        }),
        _ => Err(ImageError::Target(format!(
            "platform {s:?}: expected OS/ARCH[/VARIANT], e.g. linux/amd64"
        ))),
    }
}

fn platform_matches(want: &Platform, have: &Platform) -> bool {
    want.os == have.os
        && want.architecture == have.architecture
        && (want.variant.is_none() || want.variant == have.variant)
}

/// Picks the descriptor for the wanted platform among an index's entries.
fn pick_platform<'a>(
    list: &'a [Descriptor],
    want: &Platform,
    what: &str,
) -> Result<&'a Descriptor, ImageError> {
    if let Some(d) = list.iter().find(|d| {
        d.platform
            .as_ref()
            .is_some_and(|p| platform_matches(want, p))
    }) {
        return Ok(d);
    }
    // An index without platforms and a single entry (common for single-image layouts).
    if list.len() == 1 && list[0].platform.is_none() {
        return Ok(&list[0]);
    }
    let have: Vec<String> = list
        .iter()
        .filter_map(|d| d.platform.as_ref().map(|p| p.to_string()))
        .collect();
    Err(ImageError::Invalid {
        what: what.to_string(),
        why: if have.is_empty() {
            format!(
                "index lists {} images and none names a platform",
                list.len()
            )
        } else {
            format!(
                "no image for platform {want}; available: {}",
                have.join(", ")
            )
        },
    })
}

fn is_index(doc: &Document, content_type: Option<&str>) -> bool {
    let mt = doc.media_type.as_deref().or(content_type);
    match mt {
        Some(OCI_INDEX | DOCKER_LIST) => true,
        Some(OCI_MANIFEST | DOCKER_MANIFEST) => false,
        _ => doc.manifests.is_some() && doc.layers.is_none(),
    }
}

/// Follows indexes down to one image manifest, verifying each document's digest.
pub(crate) fn resolve_document(
    store: &Store,
    mut bytes: Vec<u8>,
    mut digest: Digest,
    mut content_type: Option<String>,
    options: &OpenOptions,
) -> Result<(Digest, Vec<Descriptor>, Digest), ImageError> {
    let want = parse_platform(&options.platform)?;
    for _ in 0..4 {
        let what = format!("manifest {digest}");
        let doc: Document = parse_json(&bytes, &what)?;
        if doc.schema_version == Some(1) {
            return Err(ImageError::Unsupported(format!(
                "{what}: Docker schema 1 manifests are obsolete"
            )));
        }
        if is_index(&doc, content_type.as_deref()) {
            let list = doc.manifests.unwrap_or_default();
            let d = pick_platform(&list, &want, &what)?;
            let next = Digest::parse(&d.digest, &what)?;
            let (b, ct) = store.read_manifest(&next)?;
            bytes = b;
            content_type = ct.or_else(|| d.media_type.clone());
            digest = next;
            continue;
        }
        let Some(config) = doc.config else {
            return Err(ImageError::Invalid {
                what,
                why: "manifest has no config".into(),
            });
        };
        let config_digest = Digest::parse(&config.digest, &format!("{what}: config"))?;
        return Ok((digest, doc.layers.unwrap_or_default(), config_digest));
    }
    Err(ImageError::Invalid {
        what: format!("manifest {digest}"),
        why: "indexes nested more than 4 deep".into(),
    })
}

/// Builds the image description from a verified config and the manifest's layer list.
fn assemble(
    store: &Store,
    manifest_digest: Option<Digest>,
    config_digest: Digest,
    config_bytes: &[u8],
    mut layers: Vec<LayerRef>,
    layer_sizes: Vec<u64>,
    repo_tags: Vec<String>,
) -> Result<Resolved, ImageError> {
    let what = format!("config {config_digest}");
    let cfg: ConfigFile = parse_json(config_bytes, &what)?;
    let diff_ids: Vec<Digest> = cfg
        .rootfs
        .and_then(|r| r.diff_ids)
        .unwrap_or_default()
        .iter()
        .map(|d| Digest::parse(d, &format!("{what}: rootfs.diff_ids")))
        .collect::<Result<_, _>>()?;
    if !diff_ids.is_empty() && diff_ids.len() != layers.len() {
        return Err(ImageError::Invalid {
            what,
            why: format!(
                "config lists {} diff_ids but the manifest has {} layers",
                diff_ids.len(),
                layers.len()
            ),
        });
    }
    for (l, d) in layers.iter_mut().zip(&diff_ids) {
        l.diff_id = Some(d.clone());
    }
    let history = cfg.history.unwrap_or_default();
    let mut created_by = history
        .iter()
        .filter(|h| !h.empty_layer)
        .map(|h| h.created_by.clone());
    let infos = layers
        .iter()
        .zip(layer_sizes)
        .map(|(l, size)| LayerInfo {
            digest: l
                .digest
                .as_ref()
                .or(l.diff_id.as_ref())
                .map(|d| d.to_string())
                .unwrap_or_else(|| store.describe(&l.location)),
            diff_id: l.diff_id.as_ref().map(|d| d.to_string()),
            size,
            created_by: created_by.next().flatten(),
        })
        .collect();
    let config = image_config(cfg.config.unwrap_or_default(), history);
    let info = ImageInfo {
        manifest_digest: manifest_digest.map(|d| d.to_string()),
        config_digest: Some(config_digest.to_string()),
        repo_tags,
        architecture: cfg.architecture,
        os: cfg.os,
        layers: infos,
    };
    Ok(Resolved {
        info,
        config,
        layers,
    })
}

/// From an image manifest's layer descriptors and config digest to a full description.
pub(crate) fn from_manifest(
    store: &Store,
    manifest_digest: Digest,
    layer_descs: Vec<Descriptor>,
    config_digest: Digest,
    repo_tags: Vec<String>,
) -> Result<Resolved, ImageError> {
    let config_bytes = store.read_blob(&config_digest)?;
    let mut layers = Vec::new();
    let mut sizes = Vec::new();
    for (i, l) in layer_descs.iter().enumerate() {
        let d = Digest::parse(&l.digest, &format!("manifest {manifest_digest}: layer {i}"))?;
        if let Some(mt) = &l.media_type
            && (mt.contains("nondistributable") || mt.contains("foreign"))
        {
            return Err(ImageError::Unsupported(format!(
                "layer {d} has media type {mt} (foreign layers are not fetched)"
            )));
        }
        sizes.push(l.size.unwrap_or(0));
        layers.push(LayerRef {
            location: Location::Blob(d.clone()),
            digest: Some(d),
            diff_id: None,
            size: l.size,
        });
    }
    assemble(
        store,
        Some(manifest_digest),
        config_digest,
        &config_bytes,
        layers,
        sizes,
        repo_tags,
    )
}

/// `oci:DIR[:TAG]` and `oci-archive:FILE`: index.json, then the manifest for the tag (or the only one).
pub(crate) fn open_oci(
    store: Store,
    tag: Option<&str>,
    options: &OpenOptions,
) -> Result<(Store, Resolved), ImageError> {
    let (index_bytes, index_what) = match &store {
        Store::OciDir(dir) => {
            let p = dir.join("index.json");
            let f = crate::digest::open_regular(&p)?;
            (
                read_bounded(f, MAX_DOCUMENT, &p.display().to_string())?,
                p.display().to_string(),
            )
        }
        Store::Tar(t) => {
            let what = format!("{}: index.json", t.path().display());
            let (r, _) = t.open("index.json")?;
            (read_bounded(r, MAX_DOCUMENT, &what)?, what)
        }
        Store::Registry(_) => return Err(ImageError::Target("not an OCI layout".into())),
    };
    let index: Document = parse_json(&index_bytes, &index_what)?;
    let list = index.manifests.unwrap_or_default();
    let candidates: Vec<&Descriptor> = match tag {
        Some(t) => list
            .iter()
            .filter(|d| {
                d.ref_name()
                    .is_some_and(|n| n == t || n.rsplit_once(':').is_some_and(|(_, nt)| nt == t))
            })
            .collect(),
        None => list.iter().collect(),
    };
    let tags: Vec<String> = list
        .iter()
        .filter_map(|d| d.ref_name().map(str::to_string))
        .collect();
    let chosen: &Descriptor = match candidates.as_slice() {
        [] => {
            return Err(ImageError::Invalid {
                what: index_what,
                why: match tag {
                    Some(t) => format!(
                        "no image tagged {t:?}; tags: {}",
                        if tags.is_empty() {
                            "none".into()
                        } else {
                            tags.join(", ")
                        }
                    ),
                    None => "lists no images".into(),
                },
            });
        }
        [one] => one,
        many => {
            let owned: Vec<Descriptor> = many.iter().map(|d| (*d).clone()).collect();
            let want = parse_platform(&options.platform)?;
            if owned.iter().all(|d| d.platform.is_some()) {
                let d = pick_platform(&owned, &want, &index_what)?;
                many.iter()
                    .find(|c| c.digest == d.digest)
                    .copied()
                    .unwrap_or(many[0])
            } else {
                return Err(ImageError::Invalid {
                    what: index_what,
                    why: format!(
                        "lists {} images; name one with :TAG (tags: {})",
                        many.len(),
                        tags.join(", ")
                    ),
                });
            }
        }
    };
    let digest = Digest::parse(&chosen.digest, &index_what)?;
    let (bytes, _) = store.read_manifest(&digest)?;
    let (mdigest, layers, cdigest) =
        resolve_document(&store, bytes, digest, chosen.media_type.clone(), options)?;
    let repo_tags = chosen
        .ref_name()
        .map(|t| vec![t.to_string()])
        .unwrap_or_default();
    let resolved = from_manifest(&store, mdigest, layers, cdigest, repo_tags)?;
    Ok((store, resolved))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// `docker-archive:FILE`: manifest.json names the config and the layer members.
pub(crate) fn open_docker(path: &Path) -> Result<(Store, Resolved), ImageError> {
    let index = TarIndex::index(path)?;
    let base = path.display().to_string();
    if !index.contains("manifest.json") {
        let hint = if index.contains("index.json") {
            " (it has index.json: use oci-archive:)"
        } else {
            ""
        };
        return Err(ImageError::Invalid {
            what: base,
            why: format!("no manifest.json: not a docker archive{hint}"),
        });
    }
    let what = format!("{base}: manifest.json");
    let (r, _) = index.open("manifest.json")?;
    let entries: Vec<DockerManifestEntry> =
        parse_json(&read_bounded(r, MAX_DOCUMENT, &what)?, &what)?;
    let Some(entry) = entries.into_iter().next() else {
        return Err(ImageError::Invalid {
            what,
            why: "lists no images".into(),
        });
    };
    let cwhat = format!("{base}: {}", entry.config);
    let (r, _) = index.open(&entry.config)?;
    let config_bytes = read_bounded(r, MAX_DOCUMENT, &cwhat)?;
    let config_digest = Digest::of(&config_bytes);
    // The config member is named after its digest (`HEX.json` or `blobs/sha256/HEX`): check it.
    if let Some(named) = digest_in_name(&entry.config) {
        verify(&config_bytes, &named, &cwhat)?;
    }
    let mut layers = Vec::new();
    let mut sizes = Vec::new();
    for name in &entry.layers {
        let (_, size) = index.open(name)?;
        sizes.push(size);
        layers.push(LayerRef {
            location: Location::Member(name.clone()),
            digest: digest_in_name(name),
            diff_id: None,
            size: Some(size),
        });
    }
    let store = Store::Tar(index);
    let resolved = assemble(
        &store,
        None,
        config_digest,
        &config_bytes,
        layers,
        sizes,
        entry.repo_tags.unwrap_or_default(),
    )?;
    Ok((store, resolved))
}

/// `blobs/sha256/HEX` and `HEX.tar` / `HEX.json` members are named after the digest of their bytes;
/// legacy `ID/layer.tar` members are not.
fn digest_in_name(name: &str) -> Option<Digest> {
    let n = name.trim_start_matches("./");
    let hex = if let Some(h) = n.strip_prefix("blobs/sha256/") {
        h
    } else if !n.contains('/') {
        n.strip_suffix(".tar").or_else(|| n.strip_suffix(".json"))?
    } else {
        return None;
    };
    Digest::parse(&format!("sha256:{hex}"), name).ok()
}
