//! `dir:` targets: a root filesystem or any directory, read as a single layer.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::view::{EntryKind, FileEntry, FileMeta, FileView, Select};
use crate::{ImageError, Limits};

/// Pseudo-filesystems that are not part of a root filesystem's content.
const SKIP_AT_HOST_ROOT: [&str; 4] = ["proc", "sys", "dev", "run"];

pub(crate) fn collect(
    root: &Path,
    select: &dyn Fn(&FileMeta) -> Select,
    limits: &Limits,
    progress: bool,
) -> Result<FileView, ImageError> {
    let mut progress =
        crate::progress::WalkProgress::new(progress, &format!("dir:{}", root.display()));
    let view = walk(root, select, limits, &mut progress);
    progress.finish();
    view
}

fn walk(
    root: &Path,
    select: &dyn Fn(&FileMeta) -> Select,
    limits: &Limits,
    progress: &mut crate::progress::WalkProgress,
) -> Result<FileView, ImageError> {
    let mut view = FileView::new();
    let host_root = root
        .canonicalize()
        .map(|p| p == Path::new("/"))
        .unwrap_or(false);
    let root_dev = std::fs::symlink_metadata(root)
        .map_err(|e| ImageError::io(root, e))?
        .dev();
    let mut stack: Vec<(std::path::PathBuf, String)> = vec![(root.to_path_buf(), String::new())];
    let mut seen: u64 = 0;
    let mut content_links: Vec<String> = Vec::new();
    while let Some((dir, rel)) = stack.pop() {
        let rd = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            // An unreadable subdirectory is skipped, as `find` would; the root itself must be readable.
            Err(e) if rel.is_empty() => return Err(ImageError::io(&dir, e)),
            Err(_) => continue,
        };
        let mut children: Vec<_> = rd.filter_map(Result::ok).collect();
        children.sort_by_key(|e| e.file_name());
        for child in children {
            seen += 1;
            if seen > limits.max_entries {
                return Err(ImageError::Limit {
                    what: root.display().to_string(),
                    why: format!("more than {} entries", limits.max_entries),
                });
            }
            let name = child.file_name().to_string_lossy().into_owned();
            let path = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            if host_root && rel.is_empty() && SKIP_AT_HOST_ROOT.contains(&name.as_str()) {
                continue;
            }
            let Ok(md) = std::fs::symlink_metadata(child.path()) else {
                continue;
            };
            let ft = md.file_type();
            let kind = if ft.is_symlink() {
                EntryKind::Symlink(
                    std::fs::read_link(child.path())
                        .map(|t| t.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                )
            } else if ft.is_dir() {
                EntryKind::Dir
            } else if ft.is_file() {
                EntryKind::File
            } else {
                EntryKind::Other
            };
            let meta = FileMeta {
                path: path.clone(),
                kind: kind.clone(),
                size: if ft.is_file() { md.len() } else { 0 },
                mode: md.permissions().mode() & 0o7777,
                uid: u64::from(md.uid()),
                gid: u64::from(md.gid()),
            };
            progress.entry(&path, meta.size);
            // Never descend into another filesystem (mounts) or through a symlink.
            if kind == EntryKind::Dir && md.dev() == root_dev {
                stack.push((child.path(), path.clone()));
            }
            let want = select(&meta);
            if want == Select::Skip {
                if let EntryKind::Symlink(t) = &kind {
                    view.note_link(&path, t, 0);
                }
                continue;
            }
            if want == Select::Content && matches!(kind, EntryKind::Symlink(_)) {
                content_links.push(path.clone());
            }
            let content = if want == Select::Content && kind == EntryKind::File {
                if meta.size > limits.max_file_content {
                    return Err(ImageError::Limit {
                        what: child.path().display().to_string(),
                        why: format!(
                            "file is {} bytes, over the {} byte limit",
                            meta.size, limits.max_file_content
                        ),
                    });
                }
                let mut buf = Vec::with_capacity(meta.size.min(1 << 20) as usize);
                std::fs::File::open(child.path())
                    .and_then(|f| f.take(limits.max_file_content).read_to_end(&mut buf))
                    .map_err(|e| ImageError::io(&child.path(), e))?;
                progress.read(buf.len() as u64);
                Some(buf)
            } else {
                None
            };
            view.insert(FileEntry {
                meta,
                layer_index: 0,
                layer: None,
                content,
            });
        }
    }
    follow_links(root, &mut view, &content_links, limits)?;
    Ok(view)
}

/// Reads the files that content-selected symlinks lead to, resolved inside the tree (never through a
/// link on disk, so nothing outside `root` is read).
fn follow_links(
    root: &Path,
    view: &mut FileView,
    links: &[String],
    limits: &Limits,
) -> Result<(), ImageError> {
    for l in links {
        let Some(target) = view.resolve_path(l) else {
            continue;
        };
        if view.get(&target).is_some() {
            continue;
        }
        let mut cur = root.to_path_buf();
        let mut inside = true;
        for part in target.split('/') {
            cur.push(part);
            if std::fs::symlink_metadata(&cur)
                .map(|m| m.file_type().is_symlink())
                .unwrap_or(true)
            {
                inside = false;
                break;
            }
        }
        let Ok(md) = std::fs::symlink_metadata(&cur) else {
            continue;
        };
        if !inside || !md.is_file() || md.len() > limits.max_file_content {
            continue;
        }
        let mut buf = Vec::new();
        std::fs::File::open(&cur)
            .and_then(|f| f.take(limits.max_file_content).read_to_end(&mut buf))
            .map_err(|e| ImageError::io(&cur, e))?;
        let meta = FileMeta {
            path: target,
            kind: EntryKind::File,
            size: md.len(),
            mode: md.permissions().mode() & 0o7777,
            uid: u64::from(md.uid()),
            gid: u64::from(md.gid()),
        };
        view.insert(FileEntry {
            meta,
            layer_index: 0,
            layer: None,
            content: Some(buf),
        });
    }
    Ok(())
}
