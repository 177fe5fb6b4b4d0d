//! A pass-through reader that watches the block structure of a tar stream and refuses an extension
//! header (GNU long name `L`, GNU long link `K`, PAX `x`) larger than a budget *before* the `tar` crate
//! reads it: `tar` reads those bodies whole into memory (`read_all`), so a 3 GB long name in an 11 KB
//! zstd layer would otherwise be a 3 GB allocation.
//!
//! The guard follows the stream exactly as `tar` 0.4 does (header, data rounded up to 512 bytes, PAX
//! `size` overriding the next entry's size, GNU sparse extension blocks) and only ever *refuses*; it
//! never changes a byte, so a stream it could not follow is left to `tar`'s own checks.

use std::io::{self, Read, Seek, SeekFrom};

const BLOCK: u64 = 512;

/// Marker error: an extension header over the budget.
#[derive(Debug)]
pub(crate) struct ExtensionTooLarge {
    pub(crate) kind: &'static str,
    pub(crate) size: u64,
    pub(crate) max: u64,
    /// Byte offset of the header in the (uncompressed) tar stream.
    pub(crate) offset: u64,
}

impl std::fmt::Display for ExtensionTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} header at offset {} claims {} bytes, over the {} byte limit (max_tar_extension)",
            self.kind, self.offset, self.size, self.max
        )
    }
}

impl std::error::Error for ExtensionTooLarge {}

/// The extension-header error carried by `e`, if any.
pub(crate) fn extension_too_large(e: &io::Error) -> Option<&ExtensionTooLarge> {
    e.get_ref()
        .and_then(|i| i.downcast_ref::<ExtensionTooLarge>())
}

enum State {
    /// Collecting the next 512-byte header.
    Header,
    /// Inside an entry's data (`left` bytes including padding; `payload` bytes before the padding).
    Data { left: u64, payload: u64 },
    /// GNU sparse extension blocks follow; then `data` bytes of data.
    SparseExt { data: u64 },
    /// End of archive seen, a header `tar` will refuse, or a seek the guard cannot follow.
    Done,
}

/// The block-structure tracker; used by [`TarGuard`] for plain streams and seekable files.
pub(crate) struct TarScan {
    max_ext: u64,
    state: State,
    hdr: [u8; 512],
    fill: usize,
    pos: u64,
    header_pos: u64,
    /// The PAX body being collected (bounded by `max_ext`).
    pax: Option<Vec<u8>>,
    /// `size` from the last PAX header, applied to the next non-extension entry.
    pax_size: Option<u64>,
}

impl TarScan {
    pub(crate) fn new(max_ext: u64) -> TarScan {
        TarScan {
            max_ext,
            state: State::Header,
            hdr: [0; 512],
            fill: 0,
            pos: 0,
            header_pos: 0,
            pax: None,
            pax_size: None,
        }
    }

    /// Accounts for `buf`, the next bytes of the stream.
    pub(crate) fn feed(&mut self, mut buf: &[u8]) -> Result<(), ExtensionTooLarge> {
        while !buf.is_empty() {
            match &mut self.state {
                State::Done => return Ok(()),
                State::Data { left, payload } => {
                    let n = (buf.len() as u64).min(*left);
                    let in_payload = n.min(*payload) as usize;
                    if let Some(p) = &mut self.pax {
                        p.extend_from_slice(&buf[..in_payload]);
                    }
                    *payload -= in_payload as u64;
                    *left -= n;
                    let finished = *left == 0;
                    buf = &buf[n as usize..];
                    self.pos += n;
                    if finished {
                        self.end_data();
                    }
                }
                State::Header | State::SparseExt { .. } => {
                    let n = (512 - self.fill).min(buf.len());
                    self.hdr[self.fill..self.fill + n].copy_from_slice(&buf[..n]);
                    self.fill += n;
                    buf = &buf[n..];
                    self.pos += n as u64;
                    if self.fill == 512 {
                        self.fill = 0;
                        self.block()?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Accounts for `n` bytes skipped without being read (a seek over entry data).
    fn skip(&mut self, n: u64) {
        match &mut self.state {
            State::Data { left, payload } if n <= *left && self.pax.is_none() => {
                *left -= n;
                *payload = payload.saturating_sub(n);
                self.pos += n;
                if *left == 0 {
                    self.end_data();
                }
            }
            State::Done => {}
            _ if n == 0 => {}
            _ => self.state = State::Done,
        }
    }

    fn end_data(&mut self) {
        if let Some(body) = self.pax.take() {
            // As `tar` does: the first `size` record, when it parses; otherwise the header's size.
            self.pax_size = pax_size(&body);
        }
        self.state = State::Header;
    }

    fn block(&mut self) -> Result<(), ExtensionTooLarge> {
        if let State::SparseExt { data } = self.state {
            // A `GnuExtSparseHeader`: 21 sparse entries of 24 bytes, then `isextended`.
            if self.hdr[504] == 0 {
                self.start_data(data);
            }
            return Ok(());
        }
        self.header_pos = self.pos - BLOCK;
        if self.hdr.iter().all(|b| *b == 0) {
            // `tar` stops at the first zero block.
            self.state = State::Done;
            return Ok(());
        }
        let header = tar::Header::from_byte_slice(&self.hdr);
        let sum: u32 = self.hdr[..148]
            .iter()
            .chain(&self.hdr[156..])
            .map(|b| u32::from(*b))
            .sum::<u32>()
            + 8 * 32;
        let Ok(size) = header.entry_size() else {
            self.state = State::Done;
            return Ok(());
        };
        if header.cksum().ok() != Some(sum) {
            // `tar` refuses the archive here.
            self.state = State::Done;
            return Ok(());
        }
        let ty = header.entry_type();
        let recognized = header.as_gnu().is_some() || header.as_ustar().is_some();
        let kind = if ty.is_gnu_longname() {
            Some("GNU long-name")
        } else if ty.is_gnu_longlink() {
            Some("GNU long-link")
        } else if ty.is_pax_local_extensions() {
            Some("PAX extended")
        } else {
            None
        };
        let is_extension = kind.is_some() || ty.is_pax_global_extensions();
        let mut size = size;
        if !is_extension && let Some(p) = self.pax_size {
            size = p;
        }
        if !(recognized && kind.is_some()) {
            // `tar` hands any other entry (a global `g` too) the pending PAX record, which ends there.
            self.pax_size = None;
        }
        if let Some(kind) = kind
            && size > self.max_ext
        {
            self.state = State::Done;
            return Err(ExtensionTooLarge {
                kind,
                size,
                max: self.max_ext,
                offset: self.header_pos,
            });
        }
        if ty.is_pax_local_extensions() && recognized {
            self.pax = Some(Vec::with_capacity(size as usize));
        }
        if ty.is_gnu_sparse()
            && let Some(gnu) = header.as_gnu()
            && gnu.is_extended()
        {
            self.state = State::SparseExt { data: size };
            return Ok(());
        }
        self.start_data(size);
        Ok(())
    }

    fn start_data(&mut self, size: u64) {
        let Some(padded) = size.checked_add(BLOCK - 1).map(|s| s & !(BLOCK - 1)) else {
            self.state = State::Done;
            return;
        };
        if padded == 0 {
            self.end_data();
        } else {
            self.state = State::Data {
                left: padded,
                payload: size,
            };
        }
    }
}

fn pax_size(body: &[u8]) -> Option<u64> {
    for ext in tar::PaxExtensions::new(body) {
        let ext = ext.ok()?;
        if ext.key() != Ok("size") {
            continue;
        }
        return ext.value().ok()?.parse::<u64>().ok();
    }
    None
}

/// Wraps the reader a `tar::Archive` reads from.
pub(crate) struct TarGuard<R> {
    inner: R,
    scan: TarScan,
}

impl<R> TarGuard<R> {
    pub(crate) fn new(inner: R, max_ext: u64) -> TarGuard<R> {
        TarGuard {
            inner,
            scan: TarScan::new(max_ext),
        }
    }

    pub(crate) fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for TarGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.scan.feed(&buf[..n]).map_err(io::Error::other)?;
        Ok(n)
    }
}

impl<R: Seek> Seek for TarGuard<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let before = self.scan.pos;
        let after = self.inner.seek(pos)?;
        match after.checked_sub(before) {
            Some(n) => self.scan.skip(n),
            None => self.scan.state = State::Done,
        }
        Ok(after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn long_name_tar(name_len: usize) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        let name = "d/".repeat(name_len / 2) + "f";
        b.append_data(&mut h, &name, &b"abc"[..]).expect("append");
        let mut h = tar::Header::new_ustar();
        h.set_size(2);
        h.set_mode(0o644);
        b.append_data(&mut h, "x", &b"hi"[..]).expect("append");
        b.into_inner().expect("tar")
    }

    fn read_through(data: &[u8], max: u64, chunk: usize) -> Result<Vec<String>, String> {
        struct Chunked<'a>(&'a [u8], usize);
        impl Read for Chunked<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(buf.len()).min(self.1);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut a = tar::Archive::new(TarGuard::new(Chunked(data, chunk), max));
        let mut names = Vec::new();
        for e in a.entries().map_err(|e| e.to_string())? {
            let e = e.map_err(|e| e.to_string())?;
            names.push(String::from_utf8_lossy(&e.path_bytes()).into_owned());
        }
        Ok(names)
    }

    #[test]
    fn a_long_name_under_the_budget_passes_and_one_over_is_refused() {
        let t = long_name_tar(3000);
        for chunk in [1, 7, 512, 4096, 1 << 20] {
            let names = read_through(&t, 4096, chunk).expect("under the budget");
            assert_eq!(names.len(), 2);
            assert_eq!(names[1], "x");
            let err = read_through(&t, 1024, chunk).expect_err("over the budget");
            assert!(
                err.contains("GNU long-name") && err.contains("1024"),
                "{err}"
            );
        }
    }

    #[test]
    fn pax_size_override_is_followed() {
        // A PAX record that sets the next entry's size, then a long-name entry that must be seen.
        fn push(raw: &mut Vec<u8>, h: &mut tar::Header, data: &[u8]) {
            h.set_cksum();
            raw.extend_from_slice(h.as_bytes());
            raw.extend_from_slice(data);
            raw.resize(raw.len().div_ceil(512) * 512, 0);
        }
        let mut raw = Vec::new();
        let rec = "size=5\n";
        let pax = format!("{} {rec}", rec.len() + 3);
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(tar::EntryType::XHeader);
        h.set_size(pax.len() as u64);
        push(&mut raw, &mut h, pax.as_bytes());
        // Header size says 0 but PAX says 5: the data is 5 bytes (one padded block).
        let mut h = tar::Header::new_ustar();
        h.set_path("five").expect("path");
        h.set_size(0);
        push(&mut raw, &mut h, b"hello");
        let mut b = tar::Builder::new(raw);
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        b.append_data(&mut h, "n/".repeat(400) + "z", &b"z"[..])
            .expect("long");
        let raw = b.into_inner().expect("tar");
        let names = read_through(&raw, 4096, 100).expect("ok");
        assert_eq!(names.len(), 2, "{names:?}");
        let err = read_through(&raw, 200, 100).expect_err("long name over 200");
        assert!(err.contains("GNU long-name"), "{err}");
    }
}
