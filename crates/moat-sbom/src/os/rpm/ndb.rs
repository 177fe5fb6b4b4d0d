//! rpm's "ndb" package database (`Packages.db`, SUSE): a 16-byte-slot index of (package, block
//! offset) after a small header, each block holding a blob header and the package's header blob.
//! Little-endian throughout. Layout from rpm's `lib/backend/ndb/rpmpkg.c`.

use super::DbError;

const HEADER_MAGIC: u32 = u32::from_le_bytes(*b"RpmP");
const SLOT_MAGIC: u32 = u32::from_le_bytes(*b"Slot");
const BLOB_MAGIC: u32 = u32::from_le_bytes(*b"BlbS");
const SLOTS_PER_PAGE: usize = 4096 / 16;
const BLOCK: usize = 16;
/// rpm refuses more slot pages than this too.
const MAX_SLOT_PAGES: usize = 2048;

fn le32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn err(why: impl Into<String>) -> DbError {
    DbError(format!("ndb: {}", why.into()))
}

pub fn is_ndb(bytes: &[u8]) -> bool {
    le32(bytes, 0) == Some(HEADER_MAGIC)
}

/// The header blobs, in slot order.
pub fn blobs(bytes: &[u8]) -> Result<Vec<Vec<u8>>, DbError> {
    if !is_ndb(bytes) {
        return Err(err("bad magic"));
    }
    let version = le32(bytes, 4).ok_or_else(|| err("truncated header"))?;
    let pages = le32(bytes, 12).ok_or_else(|| err("truncated header"))? as usize;
    if version != 0 || pages == 0 || pages > MAX_SLOT_PAGES {
        return Err(err(format!(
            "unsupported version {version} or {pages} slot pages"
        )));
    }
    let mut out = Vec::new();
    let mut quota = super::Quota::new();
    // The first two slots' worth of bytes are the header itself.
    for i in 2..pages * SLOTS_PER_PAGE {
        let at = i * 16;
        let (Some(magic), Some(pkg), Some(blk)) =
            (le32(bytes, at), le32(bytes, at + 4), le32(bytes, at + 8))
        else {
            return Err(err(format!(
                "slot {i} beyond the end of the file (truncated?)"
            )));
        };
        if magic != SLOT_MAGIC {
            return Err(err(format!("slot {i} has a bad magic {magic:#x}")));
        }
        if pkg == 0 {
            continue;
        }
        let off = blk as usize * BLOCK;
        let (Some(bmagic), Some(bpkg), Some(len)) = (
            le32(bytes, off),
            le32(bytes, off + 4),
            le32(bytes, off + 12),
        ) else {
            return Err(err(format!(
                "package {pkg}: block at byte {off} beyond the end of the file"
            )));
        };
        if bmagic != BLOB_MAGIC || bpkg != pkg {
            return Err(err(format!(
                "package {pkg}: block at byte {off} is not its blob"
            )));
        }
        let blob = bytes
            .get(off + 16..off + 16 + len as usize)
            .ok_or_else(|| {
                err(format!(
                    "package {pkg}: blob of {len} bytes runs past the end of the file"
                ))
            })?;
        quota.take(blob.len() as u64, &format!("ndb slot {i}"))?;
        out.push(blob.to_vec());
    }
    Ok(out)
}
