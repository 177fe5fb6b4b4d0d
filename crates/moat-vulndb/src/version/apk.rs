//! Alpine package version ordering (`apk version -t`):
//! `number{.number}...{letter}{_suffix{number}}...{~hash}{-r#}`.
//!
//! Suffix weights: `alpha < beta < pre < rc < (none) < cvs < svn < git < hg < p`. A version with
//! trailing text that fits none of the parts is "invalid": two invalid versions compare as strings,
//! and an invalid one sorts below an otherwise equal valid one.

use std::cmp::Ordering;

use super::cmp_digits;

const SUFFIXES: [&str; 10] = [
    "alpha", "beta", "pre", "rc", "", "cvs", "svn", "git", "hg", "p",
];
const NO_SUFFIX: usize = 4;

#[derive(Debug)]
struct Apk<'a> {
    original: &'a str,
    invalid: bool,
    /// (digits, index within the version).
    numbers: Vec<(&'a str, usize)>,
    letter: Option<u8>,
    suffixes: Vec<(usize, &'a str)>,
    build: &'a str,
    remainder: &'a str,
}

fn digits_len(s: &str) -> usize {
    s.bytes().take_while(u8::is_ascii_digit).count()
}

/// Finds `_(alpha|beta|pre|rc|cvs|svn|git|hg|p)(\d*)` anywhere in `s`, leftmost first, non-overlapping.
fn find_suffixes(s: &str) -> Vec<(usize, usize, usize, &str)> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'_' {
            let rest = &s[i + 1..];
            // Alternation order matters for a leftmost-first regex: "pre" before "p".
            let found = ["alpha", "beta", "pre", "rc", "cvs", "svn", "git", "hg", "p"]
                .iter()
                .find(|w| rest.starts_with(**w));
            if let Some(w) = found {
                let nstart = i + 1 + w.len();
                let n = digits_len(&s[nstart..]);
                let weight = SUFFIXES.iter().position(|x| x == w).unwrap_or(NO_SUFFIX);
                out.push((i, nstart + n, weight, &s[nstart..nstart + n]));
                i = nstart + n;
                continue;
            }
        }
        i += 1;
    }
    out
}

fn parse(s: &str) -> Apk<'_> {
    let mut v = Apk {
        original: s,
        invalid: false,
        numbers: Vec::new(),
        letter: None,
        suffixes: Vec::new(),
        build: "0",
        remainder: "",
    };
    // ^((\d+)\.?)*
    let mut end = 0;
    loop {
        let n = digits_len(&s[end..]);
        if n == 0 {
            break;
        }
        end += n;
        if s.as_bytes().get(end) == Some(&b'.') {
            end += 1;
        }
    }
    for (i, d) in s[..end].split('.').enumerate() {
        if d.is_empty() {
            break;
        }
        v.numbers.push((d, i));
    }
    let mut rest = &s[end..];
    if let Some(&c) = rest.as_bytes().first()
        && c.is_ascii_lowercase()
    {
        v.letter = Some(c);
        rest = &rest[1..];
    }
    let s_rest = rest;
    for (start, stop, weight, num) in find_suffixes(s_rest) {
        v.suffixes.push((weight, num));
        // A suffix found further in still counts, but only text at the very front is consumed,
        // which is how apk itself treats malformed versions.
        let text = &s_rest[start..stop];
        if let Some(r) = rest.strip_prefix(text) {
            rest = r;
        }
    }
    if let Some(h) = rest.strip_prefix('~') {
        let n = h
            .bytes()
            .take_while(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
            .count();
        if n > 0 {
            rest = &h[n..];
        }
    }
    if !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("-r") {
            let n = digits_len(r);
            v.build = if n == 0 { "0" } else { &r[..n] };
            rest = &r[n..];
        } else {
            v.invalid = true;
        }
    }
    v.remainder = rest;
    v
}

fn cmp_number(a: (&str, usize), b: (&str, usize)) -> Ordering {
    // After the first component, a leading zero makes the comparison textual (1.02 < 1.1).
    if a.1 != 0 && b.1 != 0 && (a.0.starts_with('0') || b.0.starts_with('0')) {
        return a.0.cmp(b.0);
    }
    cmp_digits(a.0, b.0)
}

/// Compares two Alpine package versions.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (x, y) = (parse(a), parse(b));
    if x.invalid && y.invalid {
        return x.original.cmp(y.original);
    }
    for i in 0..x.numbers.len().max(y.numbers.len()) {
        let na = x.numbers.get(i).copied().unwrap_or(("0", 0));
        let nb = y.numbers.get(i).copied().unwrap_or(("0", 0));
        let c = cmp_number(na, nb);
        if c != Ordering::Equal {
            return c;
        }
    }
    let c = match (x.letter, y.letter) {
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (a, b) => a.cmp(&b),
    };
    if c != Ordering::Equal {
        return c;
    }
    for i in 0..x.suffixes.len().max(y.suffixes.len()) {
        let sa = x.suffixes.get(i).copied().unwrap_or((NO_SUFFIX, "0"));
        let sb = y.suffixes.get(i).copied().unwrap_or((NO_SUFFIX, "0"));
        let c = sa.0.cmp(&sb.0).then_with(|| cmp_digits(sa.1, sb.1));
        if c != Ordering::Equal {
            return c;
        }
    }
    let c = cmp_digits(x.build, y.build);
    if c != Ordering::Equal {
        return c;
    }
    match (x.remainder.is_empty(), y.remainder.is_empty()) {
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => Ordering::Equal,
    }
}
