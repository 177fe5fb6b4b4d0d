//! SemVer 2 ordering with the leniency OSV data needs (npm, crates.io, Go, `SEMVER` ranges): an
//! optional leading `v`, any number of numeric components (after the third they count as
//! pre-release text, as in OSV's reference), build metadata ignored.

use std::cmp::Ordering;

use super::cmp_digits;

struct Like<'a> {
    components: Vec<&'a str>,
    build: String,
}

fn parse(s: &str) -> Like<'_> {
    let s = s.strip_prefix('v').unwrap_or(s);
    let mut comps = Vec::new();
    let mut start = 0;
    let mut build = String::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() {
            i += 1;
            continue;
        }
        if i > start {
            comps.push(&s[start..i]);
        }
        if c == b'.' {
            i += 1;
            start = i;
            continue;
        }
        build = s[i..].to_string();
        start = b.len();
        break;
    }
    if build.is_empty() && start < b.len() {
        comps.push(&s[start..]);
    }
    if comps.len() > 3 {
        let extra: Vec<String> = comps[3..]
            .iter()
            .map(|c| format!(".{}", trim_num(c)))
            .collect();
        build.push_str(&extra.concat());
        comps.truncate(3);
    }
    Like {
        components: comps,
        build,
    }
}

fn trim_num(c: &str) -> &str {
    let t = c.trim_start_matches('0');
    if t.is_empty() { "0" } else { t }
}

fn is_num(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit())
}

fn compare_pre(a: &str, b: &str) -> Ordering {
    let a = a.split('+').next().unwrap_or("");
    let b = b.split('+').next().unwrap_or("");
    let a = a.strip_prefix('-').unwrap_or(a);
    let b = b.strip_prefix('-').unwrap_or(b);
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        _ => {}
    }
    let (xa, xb): (Vec<&str>, Vec<&str>) = (a.split('.').collect(), b.split('.').collect());
    for (p, q) in xa.iter().zip(xb.iter()) {
        let c = match (is_num(p), is_num(q)) {
            (true, true) => cmp_digits(p, q),
            (false, false) => p.cmp(q),
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
        };
        if c != Ordering::Equal {
            return c;
        }
    }
    xa.len().cmp(&xb.len())
}

/// Compares two SemVer-like versions.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (x, y) = (parse(a.trim()), parse(b.trim()));
    for i in 0..x.components.len().max(y.components.len()) {
        let c = cmp_digits(
            x.components.get(i).copied().unwrap_or("0"),
            y.components.get(i).copied().unwrap_or("0"),
        );
        if c != Ordering::Equal {
            return c;
        }
    }
    compare_pre(&x.build, &y.build)
}
