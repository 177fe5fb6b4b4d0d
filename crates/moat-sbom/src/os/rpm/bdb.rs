//! rpm's Berkeley DB `Packages` (hash access method), read page by page from memory: every hash page's
//! values that live off-page (`H_OFFPAGE`) are package header blobs, spread over overflow-page chains.
//! Page layout from Berkeley DB's `dbinc/db_page.h`; either byte order.

use std::collections::HashSet;

use super::DbError;

const HASH_MAGIC: u32 = 0x0006_1561;
const PAGE_HEADER: usize = 26;
const P_HASH_UNSORTED: u8 = 2;
const P_OVERFLOW: u8 = 7;
const P_HASH: u8 = 13;
const H_OFFPAGE: u8 = 3;

fn err(why: impl Into<String>) -> DbError {
    DbError(format!("berkeley db: {}", why.into()))
}

struct Db<'a> {
    bytes: &'a [u8],
    page_size: usize,
    swapped: bool,
}

impl Db<'_> {
    fn u32(&self, b: &[u8], at: usize) -> Result<u32, DbError> {
        let s: [u8; 4] = b
            .get(at..at + 4)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| err("field beyond the page"))?;
        Ok(if self.swapped {
            u32::from_be_bytes(s)
        } else {
            u32::from_le_bytes(s)
        })
    }

    fn u16(&self, b: &[u8], at: usize) -> Result<usize, DbError> {
        let s: [u8; 2] = b
            .get(at..at + 2)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| err("field beyond the page"))?;
        Ok(usize::from(if self.swapped {
            u16::from_be_bytes(s)
        } else {
            u16::from_le_bytes(s)
        }))
    }

    fn page(&self, n: u32) -> Result<&[u8], DbError> {
        let start = (n as usize)
            .checked_mul(self.page_size)
            .ok_or_else(|| err("page number overflows"))?;
        self.bytes
            .get(start..start + self.page_size)
            .ok_or_else(|| {
                err(format!(
                    "page {n} is beyond the end of the file (truncated?)"
                ))
            })
    }
}

pub fn is_bdb_hash(bytes: &[u8]) -> bool {
    let m = bytes.get(12..16).map(|s| [s[0], s[1], s[2], s[3]]);
    m.is_some_and(|m| u32::from_le_bytes(m) == HASH_MAGIC || u32::from_be_bytes(m) == HASH_MAGIC)
}

pub fn blobs(bytes: &[u8]) -> Result<Vec<Vec<u8>>, DbError> {
    if !is_bdb_hash(bytes) {
        return Err(err("not a Berkeley DB hash database (bad magic)"));
    }
    let swapped = bytes
        .get(12..16)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        == Some(HASH_MAGIC);
    let mut db = Db {
        bytes,
        page_size: 0,
        swapped,
    };
    let ps = db.u32(bytes, 20)? as usize;
    if !ps.is_power_of_two() || !(512..=65_536).contains(&ps) {
        return Err(err(format!("page size {ps} is invalid")));
    }
    db.page_size = ps;
    if bytes.get(24) != Some(&0) {
        return Err(err("encrypted databases are not supported"));
    }
    let last = db.u32(bytes, 32)?;
    let mut out = Vec::new();
    let mut quota = super::Quota::new();
    for n in 0..=last {
        let page = db.page(n)?;
        let kind = page[25];
        if kind != P_HASH && kind != P_HASH_UNSORTED {
            continue;
        }
        let entries = db.u16(page, 20)?;
        // Entries alternate key, value; the index of 2-byte offsets follows the page header.
        for i in (1..entries).step_by(2) {
            let at = db.u16(page, PAGE_HEADER + 2 * i)?;
            if page.get(at) != Some(&H_OFFPAGE) {
                continue;
            }
            let first = db.u32(page, at + 4)?;
            let total = db.u32(page, at + 8)? as usize;
            if total > bytes.len() {
                return Err(err(format!(
                    "page {n}: value of {total} bytes is larger than the file"
                )));
            }
            quota.take(total as u64, &format!("bdb page {n} entry {i}"))?;
            let mut value = Vec::with_capacity(total);
            let mut seen = HashSet::new();
            let mut cur = first;
            while cur != 0 && value.len() < total {
                if !seen.insert(cur) {
                    return Err(err(format!("overflow page {cur} is reached twice")));
                }
                let p = db.page(cur)?;
                if p[25] != P_OVERFLOW {
                    return Err(err(format!("page {cur} should be an overflow page")));
                }
                let next = db.u32(p, 16)?;
                let used = if next == 0 {
                    db.u16(p, 22)?
                } else {
                    ps - PAGE_HEADER
                };
                let chunk = p
                    .get(PAGE_HEADER..PAGE_HEADER + used)
                    .ok_or_else(|| err(format!("overflow page {cur} claims more than a page")))?;
                value.extend_from_slice(chunk);
                cur = next;
            }
            value.truncate(total);
            out.push(value);
        }
    }
    Ok(out)
}
