//! Streams one layer (gzip, zstd or plain tar) into the file view: whiteouts applied, paths checked,
//! only selected contents kept, every byte hashed against the layer's digests.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::io::{self, Read};
use std::rc::Rc;

use crate::digest::{Digest, HashingReader, LimitReader, Tally, over_limit};
use crate::layout::LayerRef;
use crate::view::{EntryKind, FileEntry, FileMeta, FileView, Select};
use crate::{ImageError, Limits};

/// A reader shared between the decompressor and the code that drains what the decompressor left.
struct Shared<R>(Rc<RefCell<R>>);

impl<R: Read> Read for Shared<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.borrow_mut().read(buf)
    }
}

/// Marker error: a compressed stream expanded beyond the allowed ratio.
#[derive(Debug)]
struct RatioExceeded {
    max_ratio: u64,
    out: u64,
    stored: u64,
}

impl std::fmt::Display for RatioExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "expands more than {}:1", self.max_ratio)
    }
}

impl std::error::Error for RatioExceeded {}

/// Stops a decompressor whose output outgrows its input by more than `max_ratio` (after `after` bytes).
struct RatioGuard {
    inner: Box<dyn Read>,
    stored: Rc<RefCell<Tally>>,
    out: u64,
    max_ratio: u64,
    after: u64,
}

impl Read for RatioGuard {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out += n as u64;
        if self.out > self.after {
            let stored = self.stored.borrow().bytes;
            if self.out > stored.saturating_mul(self.max_ratio) {
                return Err(io::Error::other(RatioExceeded {
                    max_ratio: self.max_ratio,
                    out: self.out,
                    stored,
                }));
            }
        }
        Ok(n)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Reads up to `n` bytes (fewer only at end of stream) to sniff the compression.
fn peek(r: &mut dyn Read, n: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    let mut got = 0;
    while got < n {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    Ok(buf)
}

fn sniff(magic: &[u8]) -> Result<Compression, String> {
    match magic {
        [0x1f, 0x8b, ..] => Ok(Compression::Gzip),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Ok(Compression::Zstd),
        [b'B', b'Z', b'h', ..] => Err("bzip2-compressed layers are not supported".into()),
        [0xfd, b'7', b'z', b'X', ..] => Err("xz-compressed layers are not supported".into()),
        _ => Ok(Compression::None),
    }
}

/// Where a layer's entries go and under which rules.
pub(crate) struct Apply<'a> {
    pub(crate) view: &'a mut FileView,
    pub(crate) select: &'a dyn Fn(&FileMeta) -> Select,
    pub(crate) limits: &'a Limits,
    /// Index of this layer (0 = base).
    pub(crate) index: usize,
    /// Name of the layer in error messages (file, member or URL).
    pub(crate) name: String,
    /// The layer's diff id, stamped on the entries it contributes.
    pub(crate) layer_id: Option<String>,
    /// Paths whose content is wanted because a selected link leads to them.
    pub(crate) follow: &'a mut BTreeSet<String>,
    /// Links (symbolic or hard) whose content the caller asked for.
    pub(crate) content_links: &'a mut BTreeSet<String>,
    /// The caller's answers: recorded on the first pass, replayed on later ones.
    pub(crate) decisions: Decisions<'a>,
    /// When the layer is being recorded for the layer cache: every change made to the view.
    pub(crate) record: Option<&'a mut Vec<crate::cache::LayerOp>>,
}

/// What the selector said about each (layer, path) it did not skip.
pub(crate) type Answers = HashMap<(usize, String), Select>;

pub(crate) enum Decisions<'a> {
    Record(&'a mut Answers),
    Replay(&'a Answers),
}

/// Path of an entry inside the image. Entries that climb with `..` are refused: no legitimate image
/// has them, and a tool that extracts layers would write outside its target.
fn entry_path(raw: &str, layer: &str) -> Result<Option<String>, ImageError> {
    if raw.split('/').any(|s| s == "..") {
        return Err(ImageError::Invalid {
            what: format!("{layer}: entry {raw:?}"),
            why: "path climbs out of the image root with '..'; layer refused".into(),
        });
    }
    Ok(crate::view::normalize(raw))
}

impl Apply<'_> {
    /// Streams `raw` (the stored bytes) through decompression and tar, then checks digests and sizes.
    pub(crate) fn run(&mut self, raw: Box<dyn Read>, layer: &LayerRef) -> Result<(), ImageError> {
        let (hashing, stored) = HashingReader::new(raw);
        let shared = Rc::new(RefCell::new(hashing));
        let mut head_src = Shared(shared.clone());
        let head = peek(&mut head_src, 6).map_err(|e| self.read_error(&e))?;
        let comp =
            sniff(&head).map_err(|why| ImageError::Unsupported(format!("{}: {why}", self.name)))?;
        let joined = io::Cursor::new(head).chain(head_src);
        let decoded: Box<dyn Read> = match comp {
            Compression::None => Box::new(joined),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(joined)),
            Compression::Zstd => {
                Box::new(zstd::stream::read::Decoder::new(joined).map_err(|e| self.read_error(&e))?)
            }
        };
        let decoded: Box<dyn Read> =
            if comp == Compression::None || self.limits.max_compression_ratio == 0 {
                decoded
            } else {
                Box::new(RatioGuard {
                    inner: decoded,
                    stored: stored.clone(),
                    out: 0,
                    max_ratio: self.limits.max_compression_ratio,
                    after: self.limits.ratio_check_after,
                })
            };
        let limited = LimitReader::new(decoded, self.limits.max_layer_size);
        // An uncompressed layer's diff_id is its stored digest: hash those bytes once.
        let (diff_reader, diff) = if comp == Compression::None {
            HashingReader::counting(limited)
        } else {
            HashingReader::new(limited)
        };
        let guarded = crate::targuard::TarGuard::new(diff_reader, self.limits.max_tar_extension);
        let mut archive = tar::Archive::new(guarded);
        self.entries(&mut archive)?;
        // Hash what follows the end-of-archive marker too, so digests cover the whole stream.
        let mut rest = archive.into_inner().into_inner();
        io::copy(&mut rest, &mut io::sink()).map_err(|e| self.read_error(&e))?;
        drop(rest);
        io::copy(&mut Shared(shared.clone()), &mut io::sink()).map_err(|e| self.read_error(&e))?;
        let (stored_bytes, stored_digest) = {
            let mut t = stored.borrow_mut();
            (t.bytes, t.finish())
        };
        let diff_digest = if comp == Compression::None {
            stored_digest.clone()
        } else {
            diff.borrow_mut().finish()
        };
        self.check(
            &stored_digest,
            stored_bytes,
            layer.digest.as_ref(),
            layer.size,
            "stored blob",
        )?;
        self.check(
            &diff_digest,
            0,
            layer.diff_id.as_ref(),
            None,
            "uncompressed layer (diff_id)",
        )?;
        Ok(())
    }

    fn check(
        &self,
        got: &Digest,
        bytes: u64,
        want: Option<&Digest>,
        size: Option<u64>,
        what: &str,
    ) -> Result<(), ImageError> {
        if let Some(size) = size
            && bytes != size
        {
            return Err(ImageError::Invalid {
                what: self.name.clone(),
                why: format!(
                    "{what} is {bytes} bytes but the manifest says {size} (truncated or replaced)"
                ),
            });
        }
        if let Some(want) = want
            && got != want
        {
            return Err(ImageError::Invalid {
                what: self.name.clone(),
                why: format!("{what} does not match its digest: expected {want}, got {got}"),
            });
        }
        Ok(())
    }

    fn read_error(&self, e: &io::Error) -> ImageError {
        if let Some(x) = crate::targuard::extension_too_large(e) {
            return ImageError::Limit {
                what: self.name.clone(),
                why: format!("{x}; raise it with MOAT_MAX_TAR_EXTENSION"),
            };
        }
        if let Some(r) = e.get_ref().and_then(|i| i.downcast_ref::<RatioExceeded>()) {
            return ImageError::Limit {
                what: self.name.clone(),
                why: format!(
                    "layer expands more than {}:1 ({} bytes out of {} compressed; max_compression_ratio): a decompression bomb",
                    r.max_ratio, r.out, r.stored
                ),
            };
        }
        if let Some(limit) = over_limit(e) {
            return ImageError::Limit {
                what: self.name.clone(),
                why: format!(
                    "layer decompresses to more than {limit} bytes (max_layer_size; a decompression bomb or a huge layer)"
                ),
            };
        }
        if e.kind() == io::ErrorKind::TimedOut || e.to_string().contains("timeout") {
            return ImageError::Invalid {
                what: self.name.clone(),
                why: format!("timed out while reading the layer ({e})"),
            };
        }
        ImageError::Invalid {
            what: self.name.clone(),
            why: format!("cannot read layer (truncated or corrupt): {e}"),
        }
    }

    fn entries<R: Read>(&mut self, archive: &mut tar::Archive<R>) -> Result<(), ImageError> {
        let mut count: u64 = 0;
        let entries = archive.entries().map_err(|e| self.read_error(&e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| self.read_error(&e))?;
            count += 1;
            if count > self.limits.max_entries {
                return Err(ImageError::Limit {
                    what: self.name.clone(),
                    why: format!("more than {} entries", self.limits.max_entries),
                });
            }
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let Some(path) = entry_path(&raw, &self.name)? else {
                continue;
            };
            let (parent, base) = match path.rsplit_once('/') {
                Some((p, b)) => (p.to_string(), b.to_string()),
                None => (String::new(), path.clone()),
            };
            if let Some(name) = base.strip_prefix(".wh.") {
                self.whiteout(&parent, name, &raw)?;
                continue;
            }
            let header = entry.header();
            let kind = match header.entry_type() {
                tar::EntryType::Regular
                | tar::EntryType::Continuous
                | tar::EntryType::GNUSparse => EntryKind::File,
                tar::EntryType::Directory => EntryKind::Dir,
                tar::EntryType::Symlink => EntryKind::Symlink(
                    entry
                        .link_name_bytes()
                        .map(|l| String::from_utf8_lossy(&l).into_owned())
                        .unwrap_or_default(),
                ),
                tar::EntryType::Link => {
                    let t = entry
                        .link_name_bytes()
                        .map(|l| String::from_utf8_lossy(&l).into_owned())
                        .unwrap_or_default();
                    match entry_path(&t, &self.name)? {
                        Some(t) => EntryKind::Hardlink(t),
                        None => {
                            return Err(ImageError::Invalid {
                                what: format!("{}: entry {raw:?}", self.name),
                                why: "hard link to the image root".into(),
                            });
                        }
                    }
                }
                _ => EntryKind::Other,
            };
            // A hard link carries its target's content: its size is the target's, so a selector's
            // byte budget charges every link again (status.d entries linked 3,000 times to one file).
            let size = match &kind {
                EntryKind::File => entry.size(),
                EntryKind::Hardlink(t) => self.view.get(t).map_or(0, |e| e.meta.size),
                _ => 0,
            };
            let meta = FileMeta {
                path: path.clone(),
                size,
                mode: header.mode().unwrap_or(0) & 0o7777,
                uid: header.uid().unwrap_or(0),
                gid: header.gid().unwrap_or(0),
                kind,
            };
            // Anything but a directory hides what lower layers had below the same path.
            if meta.kind != EntryKind::Dir {
                self.view.clear_dir_before(&path, self.index);
                if let Some(r) = self.record.as_deref_mut() {
                    r.push(crate::cache::LayerOp::ClearDir { path: path.clone() });
                }
            }
            // The caller is asked once per entry (it may keep budgets or track what it selected): later
            // passes replay its first answers. A link target is read either way.
            let asked = match &mut self.decisions {
                Decisions::Record(map) => {
                    let a = (self.select)(&meta);
                    if a != Select::Skip {
                        map.insert((self.index, path.clone()), a);
                    }
                    a
                }
                Decisions::Replay(map) => map
                    .get(&(self.index, path.clone()))
                    .copied()
                    .unwrap_or(Select::Skip),
            };
            let want = if self.follow.contains(&path) {
                Select::Content
            } else {
                asked
            };
            if want == Select::Skip {
                // This layer's version replaces a lower one the caller may have kept.
                self.view.remove_before(&path, self.index);
                if let Some(r) = self.record.as_deref_mut() {
                    r.push(crate::cache::LayerOp::Remove { path: path.clone() });
                }
                if let EntryKind::Symlink(t) = &meta.kind {
                    self.view.note_link(&path, t, self.index);
                    if let Some(r) = self.record.as_deref_mut() {
                        r.push(crate::cache::LayerOp::NoteLink {
                            path: path.clone(),
                            target: t.clone(),
                        });
                    }
                }
                continue;
            }
            let is_link = matches!(meta.kind, EntryKind::Symlink(_) | EntryKind::Hardlink(_));
            if want == Select::Content && is_link {
                self.content_links.insert(path.clone());
            } else {
                self.content_links.remove(&path);
            }
            let content = match (&meta.kind, want) {
                (EntryKind::File, Select::Content) => {
                    let max = self.limits.max_file_content;
                    if meta.size > max {
                        return Err(ImageError::Limit {
                            what: format!("{}: {path}", self.name),
                            why: format!(
                                "file is {} bytes, over the {max} byte content limit",
                                meta.size
                            ),
                        });
                    }
                    self.charge(&path, meta.size)?;
                    let mut buf = Vec::with_capacity(meta.size.min(1 << 20) as usize);
                    (&mut entry)
                        .take(max)
                        .read_to_end(&mut buf)
                        .map_err(|e| self.read_error(&e))?;
                    Some(buf)
                }
                // A hard link shares its target's content, which is available when the target was selected.
                (EntryKind::Hardlink(t), Select::Content) => {
                    let n = self
                        .view
                        .get(t)
                        .and_then(|e| e.content.as_ref())
                        .map(|c| c.len() as u64);
                    match n {
                        Some(n) => {
                            self.charge(&path, n)?;
                            self.view.get(t).and_then(|e| e.content.clone())
                        }
                        None => None,
                    }
                }
                _ => None,
            };
            let symlink = matches!(meta.kind, EntryKind::Symlink(_));
            if let Some(r) = self.record.as_deref_mut() {
                r.push(crate::cache::LayerOp::Insert {
                    meta: meta.clone(),
                    content: content.clone(),
                    content_link: want == Select::Content && is_link,
                });
            }
            self.view.insert(FileEntry {
                meta,
                layer_index: self.index,
                layer: self.layer_id.clone(),
                content,
            });
            if symlink && want == Select::Content {
                // Keep what the link leads to when it comes later in the stream.
                if let Some(target) = self.view.resolve_path(&path) {
                    self.follow.insert(target);
                }
            }
        }
        Ok(())
    }

    /// Charges `n` kept bytes for `path` to the image's total content budget.
    fn charge(&mut self, path: &str, n: u64) -> Result<(), ImageError> {
        let max = self.limits.max_total_content;
        self.view
            .charge_content(n, max)
            .map(|_| ())
            .map_err(|total| ImageError::Limit {
                what: format!("{}: {path}", self.name),
                why: format!(
                    "file content kept from the image would reach {total} bytes, over the {max} byte limit (max_total_content, every copy and hard link counted; raise it with MOAT_MAX_TOTAL_CONTENT)"
                ),
            })
    }

    fn whiteout(&mut self, parent: &str, name: &str, raw: &str) -> Result<(), ImageError> {
        if name == ".wh..opq" {
            self.view.clear_dir_before(parent, self.index);
            if let Some(r) = self.record.as_deref_mut() {
                r.push(crate::cache::LayerOp::ClearDir {
                    path: parent.to_string(),
                });
            }
            return Ok(());
        }
        if name.starts_with(".wh.") {
            // Other aufs metadata (`.wh..wh.plnk`, `.wh..wh.aufs`): not content.
            return Ok(());
        }
        if name.is_empty() || name == "." || name == ".." {
            return Err(ImageError::Invalid {
                what: format!("{}: entry {raw:?}", self.name),
                why: format!(
                    "whiteout of {name:?} would delete outside its directory; layer refused"
                ),
            });
        }
        let target = if parent.is_empty() {
            name.to_string()
        } else {
            format!("{parent}/{name}")
        };
        self.view.remove_tree_before(&target, self.index);
        if let Some(r) = self.record.as_deref_mut() {
            r.push(crate::cache::LayerOp::RemoveTree { path: target });
        }
        Ok(())
    }
}
