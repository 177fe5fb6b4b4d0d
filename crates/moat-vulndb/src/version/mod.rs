//! Version orderings, one file per scheme. Each comparator is total (never fails): advisory data and
//! installed versions are both hostile, and a version that does not parse still has to be placed
//! somewhere, the way the ecosystem's own tool would place it.

mod apk;
mod dpkg;
mod go;
mod maven;
mod pep440;
mod rpm;
mod semver;

use std::cmp::Ordering;

pub use apk::compare as compare_apk;
pub use dpkg::compare as compare_dpkg;
pub use go::compare as compare_go;
pub use maven::compare as compare_maven;
pub use pep440::compare as compare_pep440;
pub use rpm::compare as compare_rpm;
pub use semver::compare as compare_semver;

/// Which ordering an ecosystem's versions follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Debian and Ubuntu (`dpkg --compare-versions`).
    Dpkg,
    /// Alpine (`apk version -t`).
    Apk,
    /// RPM distributions (`rpmvercmp`).
    Rpm,
    /// PyPI (PEP 440, with legacy versions below every PEP 440 version).
    Pep440,
    /// SemVer 2 with OSV's leniency: a leading `v`, fewer or more than three components.
    Semver,
    /// Go modules: SemVer with `v`, pseudo-versions, `+incompatible`; `go1.21.0` for the toolchain.
    Go,
    /// Maven `ComparableVersion`.
    Maven,
}

impl Scheme {
    /// The ordering of an OSV ecosystem (`Debian:11`, `Alpine:v3.18`, `PyPI`...). Unknown ecosystems
    /// fall back to SemVer ordering, which is what OSV's `SEMVER` ranges use anyway.
    pub fn for_ecosystem(ecosystem: &str) -> Scheme {
        let base = ecosystem.split(':').next().unwrap_or(ecosystem);
        match base {
            "Debian" | "Ubuntu" => Scheme::Dpkg,
            "Alpine" | "Chainguard" | "Wolfi" => Scheme::Apk,
            "Red Hat" | "Rocky Linux" | "AlmaLinux" | "openSUSE" | "SUSE" | "Mageia"
            | "openEuler" => Scheme::Rpm,
            "PyPI" => Scheme::Pep440,
            "Go" => Scheme::Go,
            "Maven" => Scheme::Maven,
            _ => Scheme::Semver,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Scheme::Dpkg => "dpkg",
            Scheme::Apk => "apk",
            Scheme::Rpm => "rpm",
            Scheme::Pep440 => "pep440",
            Scheme::Semver => "semver",
            Scheme::Go => "go",
            Scheme::Maven => "maven",
        }
    }

    /// Compares two versions in this ordering.
    pub fn compare(self, a: &str, b: &str) -> Ordering {
        match self {
            Scheme::Dpkg => dpkg::compare(a, b),
            Scheme::Apk => apk::compare(a, b),
            Scheme::Rpm => rpm::compare(a, b),
            Scheme::Pep440 => pep440::compare(a, b),
            Scheme::Semver => semver::compare(a, b),
            Scheme::Go => go::compare(a, b),
            Scheme::Maven => maven::compare(a, b),
        }
    }
}

/// Compares two unsigned decimal digit strings of any length by value.
pub(crate) fn cmp_digits(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_compare_by_value() {
        assert_eq!(cmp_digits("010", "9"), Ordering::Greater);
        assert_eq!(cmp_digits("000", ""), Ordering::Equal);
        assert_eq!(
            cmp_digits(
                "999999999999999999999999999991",
                "999999999999999999999999999999"
            ),
            Ordering::Less
        );
    }

    #[test]
    fn go_versions() {
        let g = Scheme::Go;
        assert_eq!(g.compare("go1.20.3", "1.20.10"), Ordering::Less);
        assert_eq!(
            g.compare(
                "v0.0.0-20220906165146-f3363e06e74c",
                "v0.0.0-20220101000000-aaaaaaaaaaaa"
            ),
            Ordering::Greater
        );
        assert_eq!(
            g.compare("v0.0.0-20220906165146-f3363e06e74c", "0.1.0"),
            Ordering::Less
        );
        assert_eq!(g.compare("v2.0.0+incompatible", "2.0.0"), Ordering::Equal);
        assert_eq!(g.compare("v1.19.0-0", "1.19.0"), Ordering::Less);
    }
}
