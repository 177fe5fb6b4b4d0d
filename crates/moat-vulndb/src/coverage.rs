//! What the database can say about a scanned target: per OSV ecosystem of the target's packages,
//! whether the database holds records for it (how many, the newest record's date); whether the
//! target's OS release is past its end of life (an embedded table, sources cited below); and how old
//! the database is. A scan that finds nothing where the database knows nothing must say so.

use std::collections::BTreeMap;

use moat_model::OsRelease;
use serde::{Deserialize, Serialize};

use crate::store::{Meta, civil_from_days};

/// The database's coverage of one ecosystem of the target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcosystemCoverage {
    /// The OSV ecosystem (`Debian:12`, `PyPI`).
    pub ecosystem: String,
    /// Packages of the target looked up in it.
    pub packages: usize,
    /// Records the database holds for it.
    pub records: usize,
    /// The newest record's `modified` date, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest: Option<String>,
    pub covered: bool,
}

/// Coverage of every ecosystem the target's packages were looked up in, sorted by ecosystem.
pub fn coverage(meta: &Meta, queried: &BTreeMap<String, usize>) -> Vec<EcosystemCoverage> {
    queried
        .iter()
        .map(|(eco, &packages)| {
            let records = meta.ecosystems.get(eco).copied().unwrap_or(0);
            EcosystemCoverage {
                ecosystem: eco.clone(),
                packages,
                records,
                newest: meta.newest.get(eco).cloned(),
                covered: records > 0,
            }
        })
        .collect()
}

/// The warning for an ecosystem the database does not cover, naming the releases of the same
/// distribution it does have.
pub fn uncovered_warning(c: &EcosystemCoverage, meta: &Meta) -> String {
    let family = c.ecosystem.split(':').next().unwrap_or(&c.ecosystem);
    let mut others: Vec<&str> = meta
        .ecosystems
        .keys()
        .filter(|e| e.as_str() != c.ecosystem && e.split(':').next() == Some(family))
        .map(String::as_str)
        .collect();
    others.sort_by_key(|e| version_key(e));
    let has = if others.is_empty() {
        String::new()
    } else {
        let shown: Vec<&str> = others.iter().rev().take(4).rev().copied().collect();
        format!(
            " (it has {}{})",
            if others.len() > shown.len() {
                "…, "
            } else {
                ""
            },
            shown.join(", ")
        )
    };
    format!(
        "the vulnerability database has no {} records{has}: {} package(s) of the target were not checked against any advisory, so no finding for them means nothing; `moat db update --ecosystem {family}` fetches them",
        c.ecosystem, c.packages
    )
}

fn version_key(eco: &str) -> Vec<u64> {
    eco.split(':')
        .nth(1)
        .unwrap_or("")
        .split('.')
        .map(|p| p.parse().unwrap_or(0))
        .collect()
}

/// One release's end of life: the day after which the distribution publishes no more security
/// updates for it (for Debian the end of LTS; for Ubuntu the end of standard support, without
/// the paid ESM; for Alpine the end of its main repository's support).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EolEntry {
    pub distro: &'static str,
    pub release: &'static str,
    pub name: &'static str,
    /// `YYYY-MM-DD`.
    pub eol: &'static str,
    pub source: &'static str,
}

const DEBIAN: &str = "https://wiki.debian.org/DebianReleases and https://wiki.debian.org/LTS";
const UBUNTU: &str = "https://ubuntu.com/about/release-cycle";
const ALPINE: &str = "https://alpinelinux.org/releases/";

/// The embedded end-of-life table (checked 2026-12 against the pages named in `source`).
pub const EOL: &[EolEntry] = &[
    EolEntry {
        distro: "debian",
        release: "7",
        name: "wheezy",
        eol: "2018-05-31",
        source: DEBIAN,
    },
    EolEntry {
        distro: "debian",
        release: "8",
        name: "jessie",
        eol: "2020-06-30",
        source: DEBIAN,
    },
    EolEntry {
        distro: "debian",
        release: "9",
        name: "stretch",
        eol: "2022-06-30",
        source: DEBIAN,
    },
    EolEntry {
        distro: "debian",
        release: "10",
        name: "buster",
        eol: "2024-06-30",
        source: DEBIAN,
    },
    EolEntry {
        distro: "debian",
        release: "11",
        name: "bullseye",
        eol: "2026-08-31",
        source: DEBIAN,
    },
    EolEntry {
        distro: "debian",
        release: "12",
        name: "bookworm",
        eol: "2028-06-30",
        source: DEBIAN,
    },
    EolEntry {
        distro: "debian",
        release: "13",
        name: "trixie",
        eol: "2030-06-30",
        source: DEBIAN,
    },
    EolEntry {
        distro: "ubuntu",
        release: "14.04",
        name: "trusty",
        eol: "2019-04-30",
        source: UBUNTU,
    },
    EolEntry {
        distro: "ubuntu",
        release: "16.04",
        name: "xenial",
        eol: "2021-04-30",
        source: UBUNTU,
    },
    EolEntry {
        distro: "ubuntu",
        release: "18.04",
        name: "bionic",
        eol: "2023-05-31",
        source: UBUNTU,
    },
    EolEntry {
        distro: "ubuntu",
        release: "20.04",
        name: "focal",
        eol: "2025-05-31",
        source: UBUNTU,
    },
    EolEntry {
        distro: "ubuntu",
        release: "22.04",
        name: "jammy",
        eol: "2027-04-30",
        source: UBUNTU,
    },
    EolEntry {
        distro: "ubuntu",
        release: "24.04",
        name: "noble",
        eol: "2029-04-30",
        source: UBUNTU,
    },
    EolEntry {
        distro: "alpine",
        release: "3.3",
        name: "v3.3",
        eol: "2017-05-01",
        source: ALPINE,
    },
    EolEntry {
        distro: "alpine",
        release: "3.4",
        name: "v3.4",
        eol: "2018-05-01",
        source: ALPINE,
    },
    EolEntry {
        distro: "alpine",
        release: "3.5",
        name: "v3.5",
        eol: "2018-11-01",
        source: ALPINE,
    },
    EolEntry {
        distro: "alpine",
        release: "3.6",
        name: "v3.6",
        eol: "2019-05-01",
        source: ALPINE,
    },
    EolEntry {
        distro: "alpine",
        release: "3.7",
        name: "v3.7",
        eol: "2019-11-01",
        source: ALPINE,
    },
    EolEntry {
        distro: "alpine",
        release: "3.8",
        name: "v3.8",
        eol: "2020-05-01",
        source: ALPINE,
    },
    EolEntry {
        distro: "alpine",
        release: "3.9",
        name: "v3.9",
        eol: "2020-11-01",
        source: ALPINE,
    },
    EolEntry {
        distro: "alpine",
        release: "3.10",
        name: "v3.10",
        eol: "2021-05-01",
        source: ALPINE,
    },
    EolEntry {
        distro: "alpine",
        release: "3.11",
        name: "v3.11",
        eol: "2021-11-01",
        source: ALPINE,
    },
    EolEntry {
        distro: "alpine",
        release: "3.12",
        name: "v3.12",
        eol: "2022-05-01",
        source: ALPINE,
    },
    EolEntry {
        distro: "alpine",
        release: "3.13",
        name: "v3.13",
        eol: "2022-11-01",
        source: ALPINE,
    },
    EolEntry {
        distro: "alpine",
        release: "3.14",
        name: "v3.14",
        eol: "2023-05-01",
        source: ALPINE,
    },
    EolEntry {
        distro: "alpine",
        release: "3.15",
        name: "v3.15",
        eol: "2023-11-01",
        source: ALPINE,
    },
    EolEntry {
        distro: "alpine",
        release: "3.16",
        name: "v3.16",
        eol: "2024-05-23",
        source: ALPINE,
    },
    EolEntry {
        distro: "alpine",
        release: "3.17",
        name: "v3.17",
        eol: "2024-11-22",
        source: ALPINE,
    },
    EolEntry {
        distro: "alpine",
        release: "3.18",
        name: "v3.18",
        eol: "2025-05-09",
        source: ALPINE,
    },
    EolEntry {
        distro: "alpine",
        release: "3.19",
        name: "v3.19",
        eol: "2025-11-01",
        source: ALPINE,
    },
    EolEntry {
        distro: "alpine",
        release: "3.20",
        name: "v3.20",
        eol: "2026-04-01",
        source: ALPINE,
    },
    EolEntry {
        distro: "alpine",
        release: "3.21",
        name: "v3.21",
        eol: "2026-11-01",
        source: ALPINE,
    },
    EolEntry {
        distro: "alpine",
        release: "3.22",
        name: "v3.22",
        eol: "2027-05-01",
        source: ALPINE,
    },
];

/// The table's entry for an OS release (`debian` `11`, `alpine` `3.19.1`, `ubuntu` `22.04`), or a
/// Debian codename without a number.
pub fn eol_of(os: &OsRelease) -> Option<&'static EolEntry> {
    let id = os.id.to_ascii_lowercase();
    let version = os.version_id.as_deref().unwrap_or("");
    let release = match id.as_str() {
        "alpine" => version.split('.').take(2).collect::<Vec<_>>().join("."),
        "debian" => version.split('.').next().unwrap_or("").to_string(),
        _ => version.to_string(),
    };
    EOL.iter().find(|e| {
        e.distro == id
            && (e.release == release
                || (release.is_empty() && os.version_codename.as_deref() == Some(e.name)))
    })
}

/// Today in UTC as `YYYY-MM-DD`.
pub fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, m, d) = civil_from_days((secs / 86400) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` (or RFC 3339) date; `None` when it is not one.
pub fn day_number(date: &str) -> Option<i64> {
    let d = date.get(..10)?;
    let mut it = d.split('-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: i64 = it.next()?.parse().ok()?;
    let day: i64 = it.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    // H. Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// Whole days from `from` to `to` (dates or RFC 3339 timestamps).
pub fn days_between(from: &str, to: &str) -> Option<i64> {
    Some(day_number(to)? - day_number(from)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(id: &str, v: &str) -> OsRelease {
        OsRelease {
            id: id.into(),
            version_id: Some(v.into()),
            version_codename: None,
            pretty_name: None,
        }
    }

    #[test]
    fn eol_table_finds_releases_by_their_version() {
        assert_eq!(
            eol_of(&os("debian", "11")).map(|e| e.eol),
            Some("2026-08-31")
        );
        assert_eq!(
            eol_of(&os("alpine", "3.19.1")).map(|e| e.release),
            Some("3.19")
        );
        assert_eq!(
            eol_of(&os("ubuntu", "22.04")).map(|e| e.name),
            Some("jammy")
        );
        assert!(eol_of(&os("fedora", "40")).is_none());
        // Dates are strictly increasing per distribution, so the table has no typo'd year.
        for d in ["debian", "ubuntu", "alpine"] {
            let days: Vec<i64> = EOL
                .iter()
                .filter(|e| e.distro == d)
                .map(|e| day_number(e.eol).expect("date"))
                .collect();
            assert!(days.windows(2).all(|w| w[0] < w[1]), "{d}: {days:?}");
        }
    }

    #[test]
    fn day_arithmetic_round_trips() {
        for n in [0i64, 365, 19_000, 20_789] {
            let (y, m, d) = civil_from_days(n);
            assert_eq!(day_number(&format!("{y:04}-{m:02}-{d:02}")), Some(n));
        }
        assert_eq!(days_between("2026-11-25T10:00:00Z", "2026-12-02"), Some(7));
        assert_eq!(day_number("2026-13-01"), None);
    }
}
