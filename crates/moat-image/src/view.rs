use std::collections::BTreeMap;

/// What kind of filesystem entry a path is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum EntryKind {
    File,
    Dir,
    /// A symbolic link and its target as written (it is never followed outside the image).
    Symlink(String),
    /// A hard link to another path in the image.
    Hardlink(String),
    Other,
}

/// An entry's metadata, as the tar header or the directory says.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileMeta {
    /// Normalised path relative to the image root: no leading `/` or `./`, no `..`, `/`-separated.
    pub path: String,
    pub kind: EntryKind,
    pub size: u64,
    /// Permission bits including setuid/setgid/sticky (`0o4755`).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

/// What a caller wants of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Select {
    Skip,
    /// Keep the metadata (for checks on modes, owners, presence).
    Meta,
    /// Keep the metadata and read the content into memory (bounded by `Limits::max_file_content`).
    Content,
}

/// A file in the final view of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    pub meta: FileMeta,
    /// Index of the layer the surviving version came from (0 = base).
    pub layer_index: usize,
    /// The layer's diff id (uncompressed digest) where known.
    pub layer: Option<String>,
    /// The content, when the selector asked for it.
    pub content: Option<Vec<u8>>,
}

/// How a later layer took a file out of the container's view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// A whiteout (`.wh.<name>`, or an opaque `.wh..wh..opq` of its directory) deleted it.
    Deleted,
    /// The later layer wrote another entry at the same path.
    Replaced,
}

/// A selected file with content that a later layer deleted or replaced: gone from what a container
/// sees, still in the earlier layer's blob (anyone who pulls the image can read it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shadowed {
    /// The file as the earlier layer added it (`layer_index`, `layer` name that layer).
    pub entry: FileEntry,
    /// The layer that deleted or replaced it.
    pub by_layer_index: usize,
    pub by_layer: Option<String>,
    pub how: Removal,
}

/// The selected files of an image after all layers and whiteouts: what a container would see.
#[derive(Debug, Clone, Default)]
pub struct FileView {
    files: BTreeMap<String, FileEntry>,
    /// Selected files with content that later layers deleted or replaced, in the order it happened.
    /// Their bytes were charged when read and are never refunded, so keeping them costs no budget.
    shadowed: Vec<Shadowed>,
    /// The diff id of each layer read so far, by index.
    layer_ids: BTreeMap<usize, String>,
    /// Every symbolic link of the image (selected or not), with the layer it came from, so that paths
    /// through linked directories (`lib -> usr/lib`) resolve as in a container.
    links: BTreeMap<String, (String, usize)>,
    /// Content bytes kept so far, every copy (a hard link's too) counted, never refunded.
    kept: u64,
}

/// Why a path could not be resolved safely.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Unresolved {
    /// A link's target climbs above the image root.
    Escapes,
    /// More than [`MAX_HOPS`] links (a loop).
    Loop,
}

/// Most symbolic links followed for one path, as Linux allows.
const MAX_HOPS: usize = 40;

/// Removes `key` and everything below `key/` from `map` when `doomed_if` says so; returns what it
/// removed.
fn drop_tree<V>(
    map: &mut BTreeMap<String, V>,
    dir: &str,
    include_self: bool,
    doomed_if: impl Fn(&V) -> bool,
) -> Vec<V> {
    let mut gone = Vec::new();
    if include_self && map.get(dir).is_some_and(&doomed_if) {
        gone.extend(map.remove(dir));
    }
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    let doomed: Vec<String> = map
        .range(prefix.clone()..)
        .take_while(|(k, _)| k.starts_with(&prefix))
        .filter(|(_, v)| doomed_if(v))
        .map(|(k, _)| k.clone())
        .collect();
    for k in doomed {
        gone.extend(map.remove(&k));
    }
    gone
}

impl FileView {
    pub fn new() -> Self {
        FileView::default()
    }

    /// Charges `n` content bytes against `max`; the new total, or the total it would have been.
    pub(crate) fn charge_content(&mut self, n: u64, max: u64) -> Result<u64, u64> {
        let total = self.kept.saturating_add(n);
        if total > max {
            return Err(total);
        }
        self.kept = total;
        Ok(total)
    }

    /// Adds or replaces an entry (a later layer's version wins).
    pub fn insert(&mut self, entry: FileEntry) {
        match &entry.meta.kind {
            EntryKind::Symlink(t) => {
                self.links
                    .insert(entry.meta.path.clone(), (t.clone(), entry.layer_index));
            }
            _ => {
                self.links.remove(&entry.meta.path);
            }
        }
        let by = entry.layer_index;
        if let Some(old) = self.files.insert(entry.meta.path.clone(), entry)
            && old.layer_index < by
        {
            self.shadow(old, by, Removal::Replaced);
        }
    }

    /// Records a symbolic link the caller did not select, so paths through it still resolve.
    pub(crate) fn note_link(&mut self, path: &str, target: &str, layer_index: usize) {
        self.links
            .insert(path.to_string(), (target.to_string(), layer_index));
    }

    /// Applies a whiteout: removes `path` and everything below it.
    pub fn remove_tree(&mut self, path: &str) {
        drop_tree(&mut self.files, path, true, |_| true);
        drop_tree(&mut self.links, path, true, |_| true);
    }

    /// Names layer `index` by its diff id, for [`Shadowed::by_layer`].
    pub fn set_layer_id(&mut self, index: usize, id: Option<String>) {
        match id {
            Some(id) => self.layer_ids.insert(index, id),
            None => self.layer_ids.remove(&index),
        };
    }

    /// Keeps a removed entry that had content as [`Shadowed`].
    fn shadow(&mut self, entry: FileEntry, by_layer_index: usize, how: Removal) {
        if entry.content.is_some() && entry.meta.kind == EntryKind::File {
            self.shadowed.push(Shadowed {
                entry,
                by_layer_index,
                by_layer: self.layer_ids.get(&by_layer_index).cloned(),
                how,
            });
        }
    }

    /// Applies an opaque whiteout: removes everything below `dir` that came from layers before `layer_index`.
    pub fn clear_dir_before(&mut self, dir: &str, layer_index: usize) {
        for e in drop_tree(&mut self.files, dir, false, |e| e.layer_index < layer_index) {
            self.shadow(e, layer_index, Removal::Deleted);
        }
        drop_tree(&mut self.links, dir, false, |l| l.1 < layer_index);
    }

    /// Removes `path` itself if it came from a layer before `layer_index` (a later layer replaced it).
    pub fn remove_before(&mut self, path: &str, layer_index: usize) {
        self.remove_before_as(path, layer_index, Removal::Replaced);
    }

    fn remove_before_as(&mut self, path: &str, layer_index: usize, how: Removal) {
        if self
            .files
            .get(path)
            .is_some_and(|e| e.layer_index < layer_index)
            && let Some(e) = self.files.remove(path)
        {
            self.shadow(e, layer_index, how);
        }
        if self.links.get(path).is_some_and(|l| l.1 < layer_index) {
            self.links.remove(path);
        }
    }

    /// Applies a whiteout from layer `layer_index`: removes `path` and everything below it that came
    /// from lower layers (a whiteout never hides its own layer's entries).
    pub fn remove_tree_before(&mut self, path: &str, layer_index: usize) {
        self.remove_before_as(path, layer_index, Removal::Deleted);
        if !path.is_empty() {
            self.clear_dir_before(path, layer_index);
        }
    }

    pub fn get(&self, path: &str) -> Option<&FileEntry> {
        self.files.get(path.trim_start_matches('/'))
    }

    /// Entries in path order.
    pub fn iter(&self) -> impl Iterator<Item = &FileEntry> {
        self.files.values()
    }

    /// Selected files with content that later layers deleted or replaced, in layer order.
    pub fn shadowed(&self) -> &[Shadowed] {
        &self.shadowed
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Follows symbolic links in every component of `path`, inside the image only: absolute targets
    /// start again at the image root, `..` never climbs above it. Returns the final path and the links
    /// followed (for error messages).
    fn walk(
        &self,
        path: &str,
        clamp: bool,
    ) -> Result<(String, Vec<String>), (Unresolved, Vec<String>)> {
        let mut todo: std::collections::VecDeque<String> =
            path.split('/').map(str::to_string).collect();
        let mut done: Vec<String> = Vec::new();
        let mut chain: Vec<String> = Vec::new();
        while let Some(seg) = todo.pop_front() {
            match seg.as_str() {
                "" | "." => continue,
                ".." => {
                    if done.pop().is_none() && !clamp {
                        return Err((Unresolved::Escapes, chain));
                    }
                    continue;
                }
                _ => done.push(seg),
            }
            let cur = done.join("/");
            if let Some((target, _)) = self.links.get(&cur) {
                chain.push(format!("{cur} -> {target}"));
                if chain.len() > MAX_HOPS {
                    return Err((Unresolved::Loop, chain));
                }
                done.pop();
                if target.starts_with('/') {
                    done.clear();
                }
                for (i, part) in target.split('/').enumerate() {
                    todo.insert(i, part.to_string());
                }
            }
        }
        Ok((done.join("/"), chain))
    }

    /// The path a container would open for `path`, all links followed inside the image (`..` clamped at
    /// the root as the kernel does in a chroot); `None` for a loop.
    pub fn resolve_path(&self, path: &str) -> Option<String> {
        self.walk(path, true).ok().map(|(p, _)| p)
    }

    /// Follows symlinks inside the view (at most 40 hops, never above the root) to the entry a
    /// container would open at `path`. Hard links lead to their target when their own entry has no
    /// content. Only entries that were selected are returned.
    pub fn resolve(&self, path: &str) -> Option<&FileEntry> {
        let p = self.resolve_path(path)?;
        self.hardlink_target(self.files.get(&p)?)
    }

    fn hardlink_target<'a>(&'a self, e: &'a FileEntry) -> Option<&'a FileEntry> {
        match &e.meta.kind {
            EntryKind::Hardlink(t) if e.content.is_none() => self.files.get(t).or(Some(e)),
            _ => Some(e),
        }
    }

    /// Like [`FileView::resolve`], but a path whose links leave the image (a chain that climbs above
    /// the root), loop, or end at something not in the image is an error naming the chain, for callers
    /// that must not silently read something else. `Ok(None)` when `path` itself is absent.
    pub fn resolve_checked(&self, path: &str) -> Result<Option<&FileEntry>, crate::ImageError> {
        let (p, chain) = self.walk(path, false).map_err(|(why, chain)| crate::ImageError::Invalid {
            what: format!("symlink chain {}", chain.join(", ")),
            why: match why {
                Unresolved::Escapes => format!("resolving {path:?} climbs above the image root; refusing to follow it out of the image"),
                Unresolved::Loop => format!("resolving {path:?} follows more than {MAX_HOPS} links (a loop)"),
            },
        })?;
        match self.files.get(&p) {
            Some(e) => Ok(self.hardlink_target(e)),
            None if chain.is_empty() => Ok(None),
            None => Err(crate::ImageError::Invalid {
                what: format!("symlink chain {}", chain.join(", ")),
                why: format!("{path:?} leads to /{p}, which is not in the image"),
            }),
        }
    }
}

/// Normalises a path inside an image: strips leading `/` and `./`, folds `.` and `..` (clamped at the
/// root, as the kernel does inside a chroot). Returns `None` for an empty result.
pub fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    if parts.is_empty() {
        None
    } else {
        Some(parts.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, layer: usize) -> FileEntry {
        FileEntry {
            meta: FileMeta {
                path: path.into(),
                kind: EntryKind::File,
                size: 0,
                mode: 0o644,
                uid: 0,
                gid: 0,
            },
            layer_index: layer,
            layer: None,
            content: None,
        }
    }

    #[test]
    fn whiteouts_and_resolution() {
        let mut v = FileView::new();
        v.insert(file("etc/a", 0));
        v.insert(file("etc/b/c", 0));
        v.insert(file("etcx", 0));
        v.remove_tree("etc/b");
        assert!(v.get("etc/b/c").is_none());
        assert!(v.get("etcx").is_some());
        v.insert(file("etc/new", 1));
        v.clear_dir_before("etc", 1);
        assert!(v.get("etc/a").is_none());
        assert!(v.get("etc/new").is_some());
        // An absolute link that climbs above the root: clamped by `resolve` (as the kernel does in a
        // chroot), refused by `resolve_checked`.
        let mut link = file("lib", 1);
        link.meta.kind = EntryKind::Symlink("/../../etc".into());
        v.insert(link);
        assert_eq!(
            v.resolve("/lib/new").map(|e| e.meta.path.as_str()),
            Some("etc/new")
        );
        assert!(v.resolve_checked("lib/new").is_err());
        // Relative links through directories, and a chain.
        v.note_link("usr/lib64", "lib", 1);
        v.insert(file("usr/lib/libc.so", 1));
        let mut l = file("lib64", 1);
        l.meta.kind = EntryKind::Symlink("usr/lib64".into());
        v.insert(l);
        assert_eq!(
            v.resolve_checked("lib64/libc.so")
                .ok()
                .flatten()
                .map(|e| e.meta.path.as_str()),
            Some("usr/lib/libc.so")
        );
        // A loop and a dangling link.
        v.note_link("a", "b", 1);
        v.note_link("b", "a", 1);
        assert!(v.resolve("a").is_none());
        let e = v
            .resolve_checked("a/x")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("loop"), "{e}");
        v.note_link("etc/shadow-link", "/etc/shadow", 1);
        let e = v
            .resolve_checked("etc/shadow-link")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("not in the image"), "{e}");
        assert!(matches!(v.resolve_checked("etc/none"), Ok(None)));
        // A whiteout removes links too.
        v.remove_tree_before("usr", 2);
        assert!(v.resolve("lib64/libc.so").is_none());
        assert_eq!(
            normalize("/../../etc/./passwd").as_deref(),
            Some("etc/passwd")
        );
    }
}
