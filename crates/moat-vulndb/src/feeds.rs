//! The severity sources `moat db update` fetches besides OSV: NVD's JSON 2.0 feeds
//! (`<mirror>/nvdcve-2.0-<year|modified>.json.gz`, the API 2.0 response format holding
//! `vulnerabilities[].cve`) and the CVE list's bulk records (a zip of CVE JSON 5 records, such as
//! GitHub's archive of `CVEProject/cvelistV5` or a cvelistV5 release's `*_all_CVEs_at_midnight.zip.zip`,
//! whose one entry is itself a zip).
//!
//! Each download is checked whole before it counts: the gzip stream must end with its CRC and length
//! trailer, the feed's `totalResults` must match the records read, a zip's central directory and every
//! entry's CRC must read, and at least one record must be found. Anything else is an error naming
//! the URL, so a partial download never replaces a snapshot.

use std::io::{Cursor, Read, Seek};

use serde::Deserialize;
use serde_json::Value;

use crate::cve::{self, CveRating, Format};
use crate::import::{MAX_RECORD_BYTES, MAX_ZIP_ENTRIES, import_budget};

/// NVD's JSON 2.0 feeds (<https://nvd.nist.gov/vuln/data-feeds>).
pub const DEFAULT_NVD_MIRROR: &str = "https://nvd.nist.gov/feeds/json/cve/2.0";
/// The CVE list as one zip: GitHub's archive of the default branch of `CVEProject/cvelistV5` (a
/// stable URL; the daily release zips are named by date).
pub const DEFAULT_CVE_LIST: &str =
    "https://github.com/CVEProject/cvelistV5/archive/refs/heads/main.zip";
/// The first year NVD publishes a feed for (it holds the CVEs of 1999-2002).
pub const FIRST_NVD_YEAR: u32 = 2002;

/// Why a downloaded feed or archive is not accepted.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// The body does not decode whole (a gzip or zip cut short or damaged).
    #[error("download incomplete or damaged: {0}")]
    Damaged(String),
    /// It decodes but is not what the URL should hold.
    #[error("not {what}: {msg}")]
    Format { what: &'static str, msg: String },
    /// It holds no record at all (an empty feed never replaces ratings).
    #[error("no {0} records in it")]
    Empty(&'static str),
}

/// What one feed or archive gave.
#[derive(Debug, Default)]
pub struct RatingBatch {
    pub ratings: Vec<CveRating>,
    /// CVE records read (a record without any metric adds no rating but counts).
    pub records: usize,
    /// Records skipped, each naming the entry and the problem.
    pub warnings: Vec<String>,
}

/// The feeds fetched when none are named: every year from [`FIRST_NVD_YEAR`] to `this_year`, then
/// `modified` (the last eight days' changes, read last so they win over the yearly copies).
pub fn default_nvd_feeds(this_year: u32) -> Vec<String> {
    (FIRST_NVD_YEAR..=this_year.max(FIRST_NVD_YEAR))
        .map(|y| y.to_string())
        .chain(std::iter::once("modified".to_string()))
        .collect()
}

/// `<mirror>/nvdcve-2.0-<feed>.json.gz`.
pub fn nvd_feed_url(mirror: &str, feed: &str) -> String {
    format!("{}/nvdcve-2.0-{feed}.json.gz", mirror.trim_end_matches('/'))
}

/// A reader that counts what it gave and refuses to give more than `limit` bytes.
struct Bounded<R> {
    inner: R,
    read: u64,
    limit: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.limit {
            return Err(std::io::Error::other(format!(
                "decompresses to more than {} bytes (raise it with MOAT_MAX_IMPORT_BYTES)",
                self.limit
            )));
        }
        Ok(n)
    }
}

#[derive(Deserialize)]
struct Feed {
    format: Option<String>,
    #[serde(rename = "totalResults")]
    total_results: Option<u64>,
    vulnerabilities: Option<Vec<FeedItem>>,
}

#[derive(Deserialize)]
struct FeedItem {
    cve: Option<FeedCve>,
}

/// Only what rates a CVE; descriptions, configurations and references are skipped while parsing,
/// so a feed of hundreds of MB is never held as a JSON tree.
#[derive(Deserialize)]
struct FeedCve {
    id: Option<String>,
    #[serde(rename = "lastModified")]
    last_modified: Option<String>,
    metrics: Option<Value>,
}

const NVD_FEED: &str = "an NVD JSON 2.0 feed";

/// Reads one gzipped NVD JSON 2.0 feed.
pub fn read_nvd_feed(gz: &[u8]) -> Result<RatingBatch, FeedError> {
    let mut reader = Bounded {
        inner: flate2::read::GzDecoder::new(gz),
        read: 0,
        limit: import_budget(),
    };
    let feed = {
        let mut de = serde_json::Deserializer::from_reader(&mut reader);
        let feed = Feed::deserialize(&mut de).map_err(|e| json_error(NVD_FEED, e))?;
        de.end().map_err(|e| json_error(NVD_FEED, e))?;
        feed
    };
    // Read to the end of the stream: the gzip trailer (CRC-32, length) is checked only there.
    std::io::copy(&mut reader, &mut std::io::sink())
        .map_err(|e| FeedError::Damaged(format!("gzip: {e}")))?;
    if feed.format.as_deref().is_some_and(|f| f != "NVD_CVE") {
        return Err(FeedError::Format {
            what: NVD_FEED,
            msg: format!("format is {:?}", feed.format.unwrap_or_default()),
        });
    }
    let items = feed.vulnerabilities.ok_or(FeedError::Format {
        what: NVD_FEED,
        msg: "no `vulnerabilities`".into(),
    })?;
    if let Some(total) = feed.total_results
        && total != items.len() as u64
    {
        return Err(FeedError::Damaged(format!(
            "`totalResults` is {total} but {} records were read",
            items.len()
        )));
    }
    if items.is_empty() {
        return Err(FeedError::Empty("NVD"));
    }
    let mut out = RatingBatch::default();
    for (i, item) in items.into_iter().enumerate() {
        let Some(c) = item.cve else {
            out.warnings
                .push(format!("vulnerabilities[{i}]: no `cve` object"));
            continue;
        };
        let doc = serde_json::json!({
            "id": c.id,
            "lastModified": c.last_modified,
            "metrics": c.metrics,
        });
        match cve::from_nvd_cve(&doc) {
            Ok(r) => {
                out.records += 1;
                out.ratings.extend(r);
            }
            Err(e) => out.warnings.push(format!("vulnerabilities[{i}]: {e}")),
        }
    }
    if out.records == 0 {
        return Err(FeedError::Empty("NVD"));
    }
    Ok(out)
}

fn json_error(what: &'static str, e: serde_json::Error) -> FeedError {
    // An I/O error under the parser is the gzip stream failing (cut short, bad CRC): damage.
    if e.is_io() || e.is_eof() {
        FeedError::Damaged(e.to_string())
    } else {
        FeedError::Format {
            what,
            msg: e.to_string(),
        }
    }
}

const CVE_LIST: &str = "a zip of CVE JSON 5 records";

/// Reads a zip of CVE JSON 5 records (`CVE-*.json` entries at any depth; one level of nested zip,
/// as the cvelistV5 releases ship them). Other entries are ignored.
pub fn read_cve_list(zip_bytes: &[u8]) -> Result<RatingBatch, FeedError> {
    let mut out = RatingBatch::default();
    let mut budget = import_budget();
    read_cve_zip(Cursor::new(zip_bytes), "", 0, &mut budget, &mut out)?;
    if out.records == 0 {
        return Err(FeedError::Empty("CVE JSON 5"));
    }
    Ok(out)
}

fn read_cve_zip<R: Read + Seek>(
    r: R,
    prefix: &str,
    depth: usize,
    budget: &mut u64,
    out: &mut RatingBatch,
) -> Result<(), FeedError> {
    let damaged = |e: zip::result::ZipError| FeedError::Damaged(format!("{prefix}zip: {e}"));
    let mut z = zip::ZipArchive::new(r).map_err(|e| match e {
        zip::result::ZipError::InvalidArchive(_) | zip::result::ZipError::Io(_) => damaged(e),
        other => FeedError::Format {
            what: CVE_LIST,
            msg: other.to_string(),
        },
    })?;
    if z.len() > MAX_ZIP_ENTRIES {
        return Err(FeedError::Format {
            what: CVE_LIST,
            msg: format!("more than {MAX_ZIP_ENTRIES} entries"),
        });
    }
    for i in 0..z.len() {
        let mut e = z.by_index(i).map_err(damaged)?;
        if !e.is_file() {
            continue;
        }
        let entry = e
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| format!("entry {i}"));
        let file = entry.rsplit('/').next().unwrap_or(&entry);
        let nested = depth == 0 && file.ends_with(".zip");
        let record = file.starts_with("CVE-") && file.ends_with(".json");
        if !nested && !record {
            continue;
        }
        let limit = if nested { *budget } else { MAX_RECORD_BYTES };
        let mut buf = Vec::new();
        // Reading to the end checks the entry's CRC-32.
        (&mut e)
            .take(limit + 1)
            .read_to_end(&mut buf)
            .map_err(|err| FeedError::Damaged(format!("{prefix}{entry}: {err}")))?;
        let n = buf.len() as u64;
        if n > *budget {
            return Err(FeedError::Format {
                what: CVE_LIST,
                msg: format!(
                    "more than {} bytes of records (raise it with MOAT_MAX_IMPORT_BYTES)",
                    import_budget()
                ),
            });
        }
        *budget -= n;
        if nested {
            drop(e);
            read_cve_zip(
                Cursor::new(buf),
                &format!("{prefix}{entry}!"),
                depth + 1,
                budget,
                out,
            )?;
            continue;
        }
        if n > MAX_RECORD_BYTES {
            out.warnings.push(format!(
                "{prefix}{entry}: larger than {MAX_RECORD_BYTES} bytes, skipped"
            ));
            continue;
        }
        let parsed = serde_json::from_slice::<Value>(&buf)
            .map_err(|e| format!("not JSON: {e}"))
            .and_then(|v| match cve::detect(&v) {
                Format::Cve5 => cve::from_cve5(&v),
                _ => Err("not a CVE JSON 5 record".to_string()),
            });
        match parsed {
            Ok(r) => {
                out.records += 1;
                out.ratings.extend(r);
            }
            Err(msg) => out.warnings.push(format!("{prefix}{entry}: {msg}")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const RECORD: &str = r#"{"id":"CVE-2020-2","vulnStatus":"Analyzed","lastModified":"2020-02-02T00:00:00.000","descriptions":[{"lang":"en","value":"x"}],"metrics":{"cvssMetricV31":[{"source":"nvd@nist.gov","type":"Primary","cvssData":{"version":"3.1","vectorString":"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H","baseScore":9.8}}]}}"#;

    fn gz(s: &str) -> Vec<u8> {
        let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        w.write_all(s.as_bytes()).expect("gzip");
        w.finish().expect("gzip")
    }

    fn feed(records: &[&str], total: usize) -> String {
        format!(
            r#"{{"resultsPerPage":{total},"startIndex":0,"totalResults":{total},"format":"NVD_CVE","version":"2.0","timestamp":"2020-02-02T00:00:00.000","vulnerabilities":[{}]}}"#,
            records
                .iter()
                .map(|r| format!(r#"{{"cve":{r}}}"#))
                .collect::<Vec<_>>()
                .join(",")
        )
    }

    #[test]
    fn a_feed_gives_the_same_rating_as_the_record_alone() {
        let b = read_nvd_feed(&gz(&feed(&[RECORD], 1))).expect("feed");
        let alone = cve::from_nvd(&serde_json::from_str(RECORD).expect("json")).expect("nvd");
        assert_eq!(b.records, 1);
        assert_eq!(b.ratings, alone);
    }

    #[test]
    fn a_cut_or_miscounted_feed_is_refused() {
        let whole = gz(&feed(&[RECORD, RECORD], 2));
        for cut in [whole.len() - 4, whole.len() / 2, 10] {
            let e = read_nvd_feed(&whole[..cut]).expect_err("cut feed");
            assert!(matches!(e, FeedError::Damaged(_)), "{cut}: {e}");
        }
        let e = read_nvd_feed(&gz(&feed(&[RECORD], 2))).expect_err("short count");
        assert!(e.to_string().contains("totalResults"), "{e}");
        let e = read_nvd_feed(&gz(&feed(&[], 0))).expect_err("empty");
        assert!(matches!(e, FeedError::Empty(_)), "{e}");
        let e = read_nvd_feed(&gz(r#"{"format":"OSV"}"#)).expect_err("other");
        assert!(matches!(e, FeedError::Format { .. }), "{e}");
    }

    #[test]
    fn default_feeds_are_every_year_then_modified() {
        let f = default_nvd_feeds(2004);
        assert_eq!(f, ["2002", "2003", "2004", "modified"]);
        assert_eq!(
            nvd_feed_url("http://m/", "2003"),
            "http://m/nvdcve-2.0-2003.json.gz"
        );
    }

    #[test]
    fn a_nested_cve_list_zip_is_read_and_a_cut_one_refused() {
        let cve5 = r#"{"dataType":"CVE_RECORD","dataVersion":"5.1","cveMetadata":{"cveId":"CVE-2020-3","dateUpdated":"2020-03-03"},"containers":{"cna":{"providerMetadata":{"shortName":"openssl"},"metrics":[{"other":{"type":"x","content":{"text":"High"}}}]}}}"#;
        let zip_of = |entries: &[(&str, &[u8])]| {
            let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
            for (name, bytes) in entries {
                w.start_file(*name, zip::write::SimpleFileOptions::default())
                    .expect("entry");
                w.write_all(bytes).expect("write");
            }
            w.finish().expect("zip").into_inner()
        };
        let inner = zip_of(&[
            ("cves/2020/0xxx/CVE-2020-3.json", cve5.as_bytes()),
            ("cves/delta.json", b"{}"),
        ]);
        let outer = zip_of(&[("cves.zip", &inner)]);
        let b = read_cve_list(&outer).expect("list");
        assert_eq!(b.records, 1);
        assert_eq!(b.ratings[0].source, "cna");
        assert!(b.warnings.is_empty(), "{:?}", b.warnings);
        assert!(matches!(
            read_cve_list(&outer[..outer.len() - 30]),
            Err(FeedError::Damaged(_))
        ));
        assert!(matches!(
            read_cve_list(&zip_of(&[("README.md", b"x")])),
            Err(FeedError::Empty(_))
        ));
    }
}
