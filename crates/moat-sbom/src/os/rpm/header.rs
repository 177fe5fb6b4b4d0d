//! RPM header blobs as the package database stores them: a big-endian index of (tag, type, offset,
//! count) entries followed by a data store. Every offset is checked against the store.

use super::DbError;

const TYPE_INT32: u32 = 4;
const TYPE_STRING: u32 = 6;
const TYPE_STRING_ARRAY: u32 = 8;
const TYPE_I18NSTRING: u32 = 9;

pub const TAG_NAME: i32 = 1000;
pub const TAG_VERSION: i32 = 1001;
pub const TAG_RELEASE: i32 = 1002;
pub const TAG_EPOCH: i32 = 1003;
pub const TAG_VENDOR: i32 = 1011;
pub const TAG_LICENSE: i32 = 1014;
pub const TAG_ARCH: i32 = 1022;
pub const TAG_SOURCERPM: i32 = 1044;
pub const TAG_MODULARITYLABEL: i32 = 5096;

/// Bounds from rpm itself (`hdrblob`): at most 0xffff entries, 256 MiB of data.
const MAX_ENTRIES: usize = 0xffff;
const MAX_DATA: usize = 256 << 20;

/// The fields moat reads from one installed package's header.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RpmHeader {
    pub name: String,
    pub version: String,
    pub release: String,
    pub epoch: Option<i32>,
    pub arch: String,
    pub source_rpm: String,
    pub license: String,
    pub vendor: String,
    pub modularity_label: String,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

/// Parses a header blob (`il`, `dl`, index, data).
pub fn parse(blob: &[u8]) -> Result<RpmHeader, DbError> {
    let bad = |why: &str| DbError(format!("rpm header: {why}"));
    let il = be32(blob, 0).ok_or_else(|| bad("shorter than 8 bytes"))? as usize;
    let dl = be32(blob, 4).ok_or_else(|| bad("shorter than 8 bytes"))? as usize;
    if il == 0 || il > MAX_ENTRIES || dl > MAX_DATA {
        return Err(bad(&format!(
            "{il} entries and {dl} data bytes are out of bounds"
        )));
    }
    let data_start = 8 + il * 16;
    let data = blob.get(data_start..data_start + dl).ok_or_else(|| {
        bad(&format!(
            "blob of {} bytes is shorter than its index says ({})",
            blob.len(),
            data_start + dl
        ))
    })?;
    let mut h = RpmHeader::default();
    // Each field is read from its first entry only: a header of 65,535 entries all naming one tag
    // and one unterminated 16 MiB string would otherwise be scanned 65,535 times.
    let mut seen: Vec<i32> = Vec::with_capacity(9);
    for i in 0..il {
        let at = 8 + i * 16;
        let (Some(tag), Some(ty), Some(off), Some(count)) = (
            be32(blob, at),
            be32(blob, at + 4),
            be32(blob, at + 8),
            be32(blob, at + 12),
        ) else {
            return Err(bad("index entry out of bounds"));
        };
        let tag = tag as i32;
        let off = off as usize;
        if matches!(
            tag,
            TAG_NAME
                | TAG_VERSION
                | TAG_RELEASE
                | TAG_ARCH
                | TAG_SOURCERPM
                | TAG_LICENSE
                | TAG_VENDOR
                | TAG_MODULARITYLABEL
                | TAG_EPOCH
        ) {
            if seen.contains(&tag) {
                continue;
            }
            seen.push(tag);
        }
        let string = || -> Result<String, DbError> {
            if !matches!(ty, TYPE_STRING | TYPE_I18NSTRING | TYPE_STRING_ARRAY) {
                return Err(bad(&format!("tag {tag} has type {ty}, expected a string")));
            }
            let s = data
                .get(off..)
                .ok_or_else(|| bad(&format!("tag {tag} offset {off} beyond the data")))?;
            let end = s
                .iter()
                .position(|b| *b == 0)
                .ok_or_else(|| bad(&format!("tag {tag} string is not terminated")))?;
            Ok(String::from_utf8_lossy(&s[..end]).into_owned())
        };
        match tag {
            TAG_NAME => h.name = string()?,
            TAG_VERSION => h.version = string()?,
            TAG_RELEASE => h.release = string()?,
            TAG_ARCH => h.arch = string()?,
            TAG_SOURCERPM => h.source_rpm = string()?,
            TAG_LICENSE => h.license = string()?,
            TAG_VENDOR => h.vendor = string()?,
            TAG_MODULARITYLABEL => h.modularity_label = string()?,
            TAG_EPOCH => {
                if ty != TYPE_INT32 || count < 1 {
                    return Err(bad(&format!("epoch has type {ty}, expected int32")));
                }
                h.epoch = Some(
                    be32(data, off).ok_or_else(|| bad("epoch offset beyond the data"))? as i32,
                );
            }
            _ => {}
        }
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(entries: &[(i32, u32, &[u8])]) -> Vec<u8> {
        let mut data = Vec::new();
        let mut index = Vec::new();
        for (tag, ty, bytes) in entries {
            index.extend_from_slice(&tag.to_be_bytes());
            index.extend_from_slice(&ty.to_be_bytes());
            index.extend_from_slice(&(data.len() as u32).to_be_bytes());
            index.extend_from_slice(&1u32.to_be_bytes());
            data.extend_from_slice(bytes);
        }
        let mut out = (entries.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend(index);
        out.extend(data);
        out
    }

    #[test]
    fn sixty_five_thousand_name_tags_on_one_unterminated_string_stay_linear() {
        // Issue 17: 65,535 index entries all TAG_NAME at offset 0 of a 16 MiB string: each field is
        // read once, so this is one scan of the string, not 65,535.
        let dl = 16 << 20;
        let il = 0xffff;
        let mut b = Vec::with_capacity(8 + il * 16 + dl);
        b.extend_from_slice(&(il as u32).to_be_bytes());
        b.extend_from_slice(&(dl as u32).to_be_bytes());
        for _ in 0..il {
            b.extend_from_slice(&TAG_NAME.to_be_bytes());
            b.extend_from_slice(&TYPE_STRING.to_be_bytes());
            b.extend_from_slice(&0u32.to_be_bytes());
            b.extend_from_slice(&1u32.to_be_bytes());
        }
        b.resize(8 + il * 16 + dl, b'a');
        let t = std::time::Instant::now();
        let err = parse(&b).expect_err("unterminated");
        assert!(err.0.contains("not terminated"), "{}", err.0);
        // With the string terminated, the name is read from the first entry.
        *b.last_mut().expect("byte") = 0;
        let h = parse(&b).expect("parses");
        assert_eq!(h.name.len(), dl - 1);
        eprintln!("two parses of a 65,535-tag header in {:?}", t.elapsed());
    }

    #[test]
    fn parses_and_bounds_checks() {
        let b = blob(&[
            (TAG_NAME, TYPE_STRING, b"hello\0"),
            (TAG_EPOCH, TYPE_INT32, &1i32.to_be_bytes()),
            (TAG_VERSION, TYPE_STRING, b"0.0.1\0"),
        ]);
        let h = parse(&b).expect("parses");
        assert_eq!(
            (h.name.as_str(), h.epoch, h.version.as_str()),
            ("hello", Some(1), "0.0.1")
        );
        assert!(parse(&b[..b.len() - 3]).is_err());
        assert!(parse(&[0, 0, 0, 1]).is_err());
        let mut evil = b.clone();
        evil[16..20].copy_from_slice(&0xffff_fff0u32.to_be_bytes());
        assert!(parse(&evil).is_err());
    }
}
