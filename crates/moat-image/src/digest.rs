//! Content digests: parsing, and hashing while streaming so every blob is checked without buffering it.

use std::cell::RefCell;
use std::io::{self, Read};
use std::rc::Rc;

use sha2::{Digest as _, Sha256};

use crate::ImageError;

/// A validated `sha256:<64 lowercase hex>` digest. Only sha256 is accepted: it is what every registry and
/// tool writes, and a validated digest can be turned into a blob path without any risk of `../`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Digest {
    hex: String,
}

impl Digest {
    pub(crate) fn parse(s: &str, what: &str) -> Result<Digest, ImageError> {
        let bad = |why: &str| ImageError::Invalid {
            what: what.to_string(),
            why: format!("digest {s:?}: {why}"),
        };
        let Some((alg, hex)) = s.split_once(':') else {
            return Err(bad("expected ALGORITHM:HEX"));
        };
        if alg != "sha256" {
            return Err(bad("only sha256 digests are supported"));
        }
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(bad("not 64 lowercase hex digits"));
        }
        Ok(Digest {
            hex: hex.to_string(),
        })
    }

    pub(crate) fn of(bytes: &[u8]) -> Digest {
        Digest {
            hex: hex::encode(Sha256::digest(bytes)),
        }
    }

    /// Relative path of the blob in an OCI layout.
    pub(crate) fn blob_path(&self) -> String {
        format!("blobs/sha256/{}", self.hex)
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

/// Running sha256 and byte count of everything read through a [`HashingReader`].
#[derive(Default)]
pub(crate) struct Tally {
    hasher: Sha256,
    pub(crate) bytes: u64,
}

impl Tally {
    pub(crate) fn finish(&mut self) -> Digest {
        let h = std::mem::take(&mut self.hasher);
        Digest {
            hex: hex::encode(h.finalize()),
        }
    }
}

/// Hashes and counts bytes as they pass; the tally is shared so it can be read after the reader has been
/// handed to a decompressor or a tar parser.
pub(crate) struct HashingReader<R> {
    inner: R,
    tally: Rc<RefCell<Tally>>,
    /// False when another reader already hashes the same bytes (an uncompressed layer): count only.
    hash: bool,
}

impl<R: Read> HashingReader<R> {
    pub(crate) fn new(inner: R) -> (Self, Rc<RefCell<Tally>>) {
        let tally = Rc::new(RefCell::new(Tally::default()));
        (
            HashingReader {
                inner,
                tally: tally.clone(),
                hash: true,
            },
            tally,
        )
    }

    /// Counts bytes without hashing them.
    pub(crate) fn counting(inner: R) -> (Self, Rc<RefCell<Tally>>) {
        let tally = Rc::new(RefCell::new(Tally::default()));
        (
            HashingReader {
                inner,
                tally: tally.clone(),
                hash: false,
            },
            tally,
        )
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut t = self.tally.borrow_mut();
        if self.hash {
            t.hasher.update(&buf[..n]);
        }
        t.bytes += n as u64;
        Ok(n)
    }
}

/// Marker error for a stream that went over its size limit (a decompression bomb, or a huge layer).
#[derive(Debug)]
pub(crate) struct OverLimit(pub(crate) u64);

impl std::fmt::Display for OverLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "more than {} bytes", self.0)
    }
}

impl std::error::Error for OverLimit {}

/// Fails (instead of silently truncating) once more than `limit` bytes have been read.
pub(crate) struct LimitReader<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R: Read> LimitReader<R> {
    pub(crate) fn new(inner: R, limit: u64) -> Self {
        LimitReader {
            inner,
            left: limit,
            limit,
        }
    }
}

impl<R: Read> Read for LimitReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            // Probe one byte: reaching the limit exactly is fine, going past it is not.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::other(OverLimit(self.limit))),
            };
        }
        let max = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// True when an I/O error came from a [`LimitReader`].
pub(crate) fn over_limit(e: &io::Error) -> Option<u64> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<OverLimit>())
        .map(|o| o.0)
}

/// Opens a regular file; anything else (a FIFO that would block forever, a device, a directory) is
/// refused before it is opened.
///
/// Inside a layout no link is followed (a blob that is a symlink to `/proc/kmsg` or out of the layout
/// is refused, not read), and the type is checked on the descriptor opened without blocking.
pub(crate) fn open_regular(path: &std::path::Path) -> Result<std::fs::File, ImageError> {
    open_checked(path, moat_fsio::Follow::Never)
}

/// [`open_regular`] for a path the user named (an archive): a link they made is followed, the result
/// must still be a regular file.
pub(crate) fn open_checked(
    path: &std::path::Path,
    follow: moat_fsio::Follow,
) -> Result<std::fs::File, ImageError> {
    moat_fsio::open_regular(path, follow).map_err(|e| match e {
        moat_fsio::FsError::Io { source, .. } => ImageError::io(path, source),
        other => ImageError::Invalid {
            what: path.display().to_string(),
            why: match other {
                moat_fsio::FsError::Link { .. } => {
                    "is a symbolic link; moat does not follow links inside an image layout".into()
                }
                moat_fsio::FsError::NotRegular { kind, .. } => {
                    format!("is a {kind}, not a regular file; refused")
                }
                o => o.to_string(),
            },
        },
    })
}

/// Reads a small document (manifest, config, index) whole, failing beyond `max` bytes.
pub(crate) fn read_bounded(mut r: impl Read, max: u64, what: &str) -> Result<Vec<u8>, ImageError> {
    let mut buf = Vec::new();
    match LimitReader::new(&mut r, max).read_to_end(&mut buf) {
        Ok(_) => Ok(buf),
        Err(e) if over_limit(&e).is_some() => Err(ImageError::Limit {
            what: what.to_string(),
            why: format!("document is larger than {max} bytes"),
        }),
        Err(e) => Err(ImageError::Invalid {
            what: what.to_string(),
            why: format!("cannot read: {e}"),
        }),
    }
}

/// Checks bytes against the digest that named them.
pub(crate) fn verify(bytes: &[u8], expected: &Digest, what: &str) -> Result<(), ImageError> {
    let actual = Digest::of(bytes);
    if &actual != expected {
        return Err(ImageError::Invalid {
            what: what.to_string(),
            why: format!("content does not match its digest: expected {expected}, got {actual}"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_validated() {
        assert!(Digest::parse("sha256:../../etc/passwd", "x").is_err());
        assert!(Digest::parse("md5:abc", "x").is_err());
        let d = Digest::of(b"abc");
        assert_eq!(
            d.to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Digest::parse(&d.to_string(), "x").ok(), Some(d));
    }

    #[test]
    fn limit_reader_allows_exact_size_and_rejects_more() {
        let mut out = Vec::new();
        assert!(
            LimitReader::new(&b"abcd"[..], 4)
                .read_to_end(&mut out)
                .is_ok()
        );
        let e = LimitReader::new(&b"abcde"[..], 4)
            .read_to_end(&mut out)
            .expect_err("error");
        assert_eq!(over_limit(&e), Some(4));
    }
}
