use std::collections::BTreeMap;

/// What kind of filesystem entry a path is.
#[derive(Debug, Clone, PartialEq, Eq)]
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
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// The selected files of an image after all layers and whiteouts: what a container would see.
#[derive(Debug, Clone, Default)]
pub struct FileView {
    files: BTreeMap<String, FileEntry>,
}

impl FileView {
    pub fn new() -> Self {
        FileView::default()
    }

    /// Adds or replaces an entry (a later layer's version wins).
    pub fn insert(&mut self, entry: FileEntry) {
        self.files.insert(entry.meta.path.clone(), entry);
    }

    /// Applies a whiteout: removes `path` and everything below it.
    pub fn remove_tree(&mut self, path: &str) {
        self.files.remove(path);
        let prefix = format!("{path}/");
        let doomed: Vec<String> = self
            .files
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.files.remove(&k);
        }
    }

    /// Applies an opaque whiteout: removes everything below `dir` that came from layers before `layer_index`.
    pub fn clear_dir_before(&mut self, dir: &str, layer_index: usize) {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let doomed: Vec<String> = self
            .files
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(_, e)| e.layer_index < layer_index)
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.files.remove(&k);
        }
    }

    /// Removes `path` itself if it came from a layer before `layer_index` (a later layer replaced it).
    pub fn remove_before(&mut self, path: &str, layer_index: usize) {
        if self
            .files
            .get(path)
            .is_some_and(|e| e.layer_index < layer_index)
        {
            self.files.remove(path);
        }
    }

    /// Applies a whiteout from layer `layer_index`: removes `path` and everything below it that came
    /// from lower layers (a whiteout never hides its own layer's entries).
    pub fn remove_tree_before(&mut self, path: &str, layer_index: usize) {
        self.remove_before(path, layer_index);
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

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Follows symlinks inside the view (at most 40 hops, never above the root) to the entry a
    /// container would open at `path`. Only links whose entries were selected can be followed.
    pub fn resolve(&self, path: &str) -> Option<&FileEntry> {
        let mut cur = normalize(path)?;
        for _ in 0..40 {
            let e = self.files.get(&cur)?;
            match &e.meta.kind {
                EntryKind::Symlink(t) | EntryKind::Hardlink(t) => {
                    let joined = if t.starts_with('/') {
                        t.clone()
                    } else {
                        match cur.rsplit_once('/') {
                            Some((parent, _)) => format!("{parent}/{t}"),
                            None => t.clone(),
                        }
                    };
                    cur = normalize(&joined)?;
                }
                _ => return Some(e),
            }
        }
        None
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
        let mut link = file("lib", 1);
        link.meta.kind = EntryKind::Symlink("/../../etc".into());
        v.insert(link);
        assert_eq!(v.resolve("/lib/new").map(|e| e.meta.path.as_str()), None);
        assert_eq!(v.resolve("/lib").map(|e| e.meta.path.as_str()), None);
        assert_eq!(
            normalize("/../../etc/./passwd").as_deref(),
            Some("etc/passwd")
        );
    }
}
