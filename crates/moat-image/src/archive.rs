//! Random access to the members of an uncompressed tar (oci-archive, docker-archive) by seeking: the
//! archive is indexed once (headers only) and blobs are streamed from their offsets, never extracted.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::ImageError;
use crate::view::normalize;

enum Member {
    File {
        offset: u64,
        size: u64,
    },
    /// A symbolic or hard link to another member (already resolved to an archive path).
    Link(String),
    Dir,
}

/// The member table of a tar file.
pub(crate) struct TarIndex {
    path: PathBuf,
    members: HashMap<String, Member>,
}

/// Most members an image archive may have (it holds blobs, not file trees).
const MAX_MEMBERS: usize = 1_000_000;

impl TarIndex {
    pub(crate) fn index(path: &Path) -> Result<TarIndex, ImageError> {
        let what = path.display().to_string();
        let file = crate::digest::open_checked(path, moat_fsio::Follow::Always)?;
        let mut magic = [0u8; 4];
        let n = (&file)
            .read(&mut magic)
            .map_err(|e| ImageError::io(path, e))?;
        if n >= 2 && magic[..2] == [0x1f, 0x8b] || n >= 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
            return Err(ImageError::Invalid {
                what,
                why: "the archive is compressed; decompress it first (moat reads image archives by seeking in a plain tar)".into(),
            });
        }
        (&file)
            .seek(SeekFrom::Start(0))
            .map_err(|e| ImageError::io(path, e))?;
        let max_ext = crate::Limits::default().max_tar_extension;
        let mut archive = tar::Archive::new(crate::targuard::TarGuard::new(file, max_ext));
        let bad = |e: std::io::Error| match crate::targuard::extension_too_large(&e) {
            Some(x) => ImageError::Limit {
                what: what.clone(),
                why: format!("archive member {x}; raise it with MOAT_MAX_TAR_EXTENSION"),
            },
            None => ImageError::Invalid {
                what: what.clone(),
                why: format!("not a readable tar archive: {e}"),
            },
        };
        let mut members = HashMap::new();
        for entry in archive.entries_with_seek().map_err(bad)? {
            let entry = entry.map_err(bad)?;
            if members.len() >= MAX_MEMBERS {
                return Err(ImageError::Limit {
                    what: what.clone(),
                    why: format!("more than {MAX_MEMBERS} members"),
                });
            }
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let Some(name) = normalize(&raw) else {
                continue;
            };
            let link = entry
                .link_name_bytes()
                .map(|l| String::from_utf8_lossy(&l).into_owned());
            let member = match entry.header().entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => Member::File {
                    offset: entry.raw_file_position(),
                    size: entry.size(),
                },
                tar::EntryType::Directory => Member::Dir,
                tar::EntryType::Symlink => {
                    let target = link.unwrap_or_default();
                    let joined = if target.starts_with('/') {
                        target
                    } else {
                        match name.rsplit_once('/') {
                            Some((dir, _)) => format!("{dir}/{target}"),
                            None => target,
                        }
                    };
                    Member::Link(normalize(&joined).unwrap_or_default())
                }
                tar::EntryType::Link => {
                    Member::Link(normalize(&link.unwrap_or_default()).unwrap_or_default())
                }
                _ => continue,
            };
            members.insert(name, member);
        }
        Ok(TarIndex {
            path: path.to_path_buf(),
            members,
        })
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        self.locate(name).is_ok()
    }

    fn locate(&self, name: &str) -> Result<(u64, u64), ImageError> {
        let mut cur = normalize(name).unwrap_or_default();
        for _ in 0..16 {
            match self.members.get(&cur) {
                Some(Member::File { offset, size }) => return Ok((*offset, *size)),
                Some(Member::Link(t)) => cur = t.clone(),
                Some(Member::Dir) => break,
                None => {
                    return Err(ImageError::Invalid {
                        what: self.path.display().to_string(),
                        why: format!("archive has no member {name:?}"),
                    });
                }
            }
        }
        Err(ImageError::Invalid {
            what: self.path.display().to_string(),
            why: format!("member {name:?} is not a file"),
        })
    }

    /// Streams one member's bytes from its offset in the archive.
    pub(crate) fn open(&self, name: &str) -> Result<(Box<dyn Read>, u64), ImageError> {
        let (offset, size) = self.locate(name)?;
        let mut f = File::open(&self.path).map_err(|e| ImageError::io(&self.path, e))?;
        f.seek(SeekFrom::Start(offset))
            .map_err(|e| ImageError::io(&self.path, e))?;
        Ok((Box::new(f.take(size)), size))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}
