//! Just enough of the SQLite file format (<https://www.sqlite.org/fileformat.html>) to read the blobs of
//! rpm's `Packages` table from memory: table b-trees, overflow chains and records. Every page number
//! and length is checked, every page is visited at most once, so a hostile file cannot loop or
//! read out of bounds. The write-ahead log (`-wal`) is not read: a database in an image is checkpointed.

use std::collections::HashSet;

use super::DbError;

struct Db<'a> {
    bytes: &'a [u8],
    page_size: usize,
    usable: usize,
}

fn err(why: impl Into<String>) -> DbError {
    DbError(format!("sqlite: {}", why.into()))
}

fn varint(b: &[u8], mut at: usize) -> Result<(u64, usize), DbError> {
    let mut v: u64 = 0;
    for i in 0..9 {
        let byte = *b.get(at).ok_or_else(|| err("varint beyond the page"))?;
        at += 1;
        if i == 8 {
            return Ok(((v << 8) | u64::from(byte), at));
        }
        v = (v << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            return Ok((v, at));
        }
    }
    Ok((v, at))
}

fn be16(b: &[u8], at: usize) -> Result<usize, DbError> {
    b.get(at..at + 2)
        .map(|s| usize::from(u16::from_be_bytes([s[0], s[1]])))
        .ok_or_else(|| err("page header beyond the page"))
}

fn be32(b: &[u8], at: usize) -> Result<u32, DbError> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| err("pointer beyond the page"))
}

impl<'a> Db<'a> {
    fn open(bytes: &'a [u8]) -> Result<Db<'a>, DbError> {
        if bytes.len() < 100 || &bytes[..16] != b"SQLite format 3\0" {
            return Err(err("not an SQLite 3 database (bad magic)"));
        }
        let ps = be16(bytes, 16)?;
        let page_size = if ps == 1 { 65_536 } else { ps };
        if !page_size.is_power_of_two() || !(512..=65_536).contains(&page_size) {
            return Err(err(format!("page size {page_size} is invalid")));
        }
        let reserved = usize::from(bytes[20]);
        let usable = page_size
            .checked_sub(reserved)
            .filter(|u| *u >= 480)
            .ok_or_else(|| err("reserved space leaves no usable page"))?;
        Ok(Db {
            bytes,
            page_size,
            usable,
        })
    }

    fn page(&self, n: u32) -> Result<&'a [u8], DbError> {
        if n == 0 {
            return Err(err("page number 0"));
        }
        let start = (n as usize - 1)
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

    /// Every record payload of the table b-tree rooted at `root`, in rowid order.
    fn table(
        &self,
        root: u32,
        mut each: impl FnMut(u64, Vec<u8>) -> Result<(), DbError>,
    ) -> Result<(), DbError> {
        let mut seen = HashSet::new();
        let mut stack = vec![root];
        let max_pages = self.bytes.len() / self.page_size + 1;
        while let Some(n) = stack.pop() {
            if !seen.insert(n) || seen.len() > max_pages {
                return Err(err(format!("page {n} is reached twice (corrupt b-tree)")));
            }
            let page = self.page(n)?;
            let hdr = if n == 1 { 100 } else { 0 };
            let kind = *page.get(hdr).ok_or_else(|| err("empty page"))?;
            let cells = be16(page, hdr + 3)?;
            match kind {
                0x05 => {
                    // Interior: children left to right, then the right-most pointer. Pushed in reverse
                    // so rows come out in order.
                    let mut kids = Vec::with_capacity(cells + 1);
                    for i in 0..cells {
                        let ptr = be16(page, hdr + 12 + 2 * i)?;
                        kids.push(be32(page, ptr)?);
                    }
                    kids.push(be32(page, hdr + 8)?);
                    stack.extend(kids.into_iter().rev());
                }
                0x0d => {
                    for i in 0..cells {
                        let ptr = be16(page, hdr + 8 + 2 * i)?;
                        let (len, at) = varint(page, ptr)?;
                        let (rowid, at) = varint(page, at)?;
                        let payload = self.payload(page, at, len as usize, &mut seen)?;
                        each(rowid, payload)?;
                    }
                }
                k => {
                    return Err(err(format!(
                        "page {n} has type {k:#x}, expected a table b-tree page"
                    )));
                }
            }
        }
        Ok(())
    }

    /// A cell's payload: the local part, then the overflow chain.
    fn payload(
        &self,
        page: &[u8],
        at: usize,
        len: usize,
        seen: &mut HashSet<u32>,
    ) -> Result<Vec<u8>, DbError> {
        if len > self.bytes.len() {
            return Err(err(format!(
                "record of {len} bytes is larger than the file"
            )));
        }
        let u = self.usable;
        let x = u - 35;
        let local = if len <= x {
            len
        } else {
            let m = ((u - 12) * 32 / 255) - 23;
            let k = m + ((len - m) % (u - 4));
            if k <= x { k } else { m }
        };
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(
            page.get(at..at + local)
                .ok_or_else(|| err("cell beyond the page"))?,
        );
        if local < len {
            let mut next = be32(page, at + local)?;
            while out.len() < len {
                if !seen.insert(next) {
                    return Err(err(format!("overflow page {next} is reached twice")));
                }
                let p = self.page(next)?;
                next = be32(p, 0)?;
                let take = (len - out.len()).min(u - 4);
                out.extend_from_slice(
                    p.get(4..4 + take)
                        .ok_or_else(|| err("overflow page too short"))?,
                );
                if next == 0 && out.len() < len {
                    return Err(err("overflow chain ends before the record does"));
                }
            }
        }
        Ok(out)
    }
}

/// A record's column values; only what rpm's tables use.
#[derive(Debug)]
enum Value<'a> {
    Null,
    Int(i64),
    Bytes(&'a [u8]),
}

fn record(p: &[u8]) -> Result<Vec<Value<'_>>, DbError> {
    let (hlen, mut at) = varint(p, 0)?;
    let hlen = hlen as usize;
    if hlen > p.len() {
        return Err(err("record header longer than the record"));
    }
    let mut body = hlen;
    let mut out = Vec::new();
    while at < hlen {
        let (st, next) = varint(p, at)?;
        at = next;
        let size = match st {
            0 | 8 | 9 => 0,
            1..=4 => st as usize,
            5 => 6,
            6 | 7 => 8,
            n if n >= 12 => ((n - 12) / 2) as usize,
            n => return Err(err(format!("reserved serial type {n}"))),
        };
        let bytes = p
            .get(body..body + size)
            .ok_or_else(|| err("column beyond the record"))?;
        body += size;
        out.push(match st {
            0 => Value::Null,
            8 => Value::Int(0),
            9 => Value::Int(1),
            1..=6 => {
                let mut v: i64 = if bytes.first().is_some_and(|b| b & 0x80 != 0) {
                    -1
                } else {
                    0
                };
                for b in bytes {
                    v = (v << 8) | i64::from(*b);
                }
                Value::Int(v)
            }
            _ => Value::Bytes(bytes),
        });
    }
    Ok(out)
}

/// The header blobs of rpm's `Packages` table.
pub fn blobs(bytes: &[u8]) -> Result<Vec<Vec<u8>>, DbError> {
    let db = Db::open(bytes)?;
    let mut root = None;
    db.table(1, |_, payload| {
        let cols = record(&payload)?;
        if let (
            Some(Value::Bytes(b"table")),
            Some(Value::Bytes(b"Packages")),
            Some(Value::Int(r)),
        ) = (cols.first(), cols.get(1), cols.get(3))
        {
            root = Some(*r);
        }
        Ok(())
    })?;
    let root = root.ok_or_else(|| err("no Packages table (not an rpm database)"))?;
    let root = u32::try_from(root)
        .map_err(|_| err(format!("Packages table root page {root} is invalid")))?;
    let mut out = Vec::new();
    let mut quota = super::Quota::new();
    db.table(root, |_, payload| {
        let cols = record(&payload)?;
        if let Some(Value::Bytes(b)) = cols.get(1) {
            quota.take(b.len() as u64, &format!("Packages row {}", out.len() + 1))?;
            out.push(b.to_vec());
        }
        Ok(())
    })?;
    Ok(out)
}
