//! PyPI version ordering: PEP 440 (epoch, release, pre, post, dev, local) for valid versions, and the
//! old setuptools ordering for "legacy" versions, which sort below every PEP 440 version (what pip did
//! while it still accepted them; PyPI advisories still name such versions).

use std::cmp::Ordering;

use super::cmp_digits;

#[derive(Debug, Default)]
struct Pep440 {
    epoch: String,
    release: Vec<String>,
    /// (phase letter: a, b, rc; number)
    pre: Option<(String, String)>,
    post: Option<String>,
    dev: Option<String>,
    local: Vec<String>,
    /// Set for versions that are not PEP 440: the normalised legacy parts.
    legacy: Option<Vec<String>>,
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn digits(&mut self) -> Option<String> {
        let st = self.i;
        while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
            self.i += 1;
        }
        (self.i > st).then(|| String::from_utf8_lossy(&self.s[st..self.i]).into_owned())
    }
    fn sep(&self) -> usize {
        usize::from(matches!(self.s.get(self.i), Some(b'-' | b'_' | b'.')))
    }
    fn word(&self, at: usize, words: &[&'static str]) -> Option<&'static str> {
        let rest = &self.s[at.min(self.s.len())..];
        words
            .iter()
            .copied()
            .filter(|w| rest.starts_with(w.as_bytes()))
            .max_by_key(|w| w.len())
    }
    /// `[-_.]?WORD[-_.]?(\d+)?`: returns the word and the number.
    fn lettered(&mut self, words: &[&'static str]) -> Option<(&'static str, Option<String>)> {
        let save = self.i;
        let at = self.i + self.sep();
        let w = self.word(at, words)?;
        self.i = at + w.len();
        let before_sep = self.i;
        self.i += self.sep();
        let n = self.digits();
        // A separator with nothing after it belongs to this part only at the very end.
        if n.is_none() && self.i != self.s.len() {
            self.i = before_sep;
        }
        let _ = save;
        Some((w, n))
    }
}

fn parse_strict(s: &str) -> Option<Pep440> {
    let t = s.trim();
    let t = t.strip_prefix('v').unwrap_or(t);
    let mut c = Cursor {
        s: t.as_bytes(),
        i: 0,
    };
    let mut v = Pep440 {
        epoch: "0".into(),
        ..Default::default()
    };
    let first = c.digits()?;
    if c.s.get(c.i) == Some(&b'!') {
        c.i += 1;
        v.epoch = first;
        v.release.push(c.digits()?);
    } else {
        v.release.push(first);
    }
    while c.s.get(c.i) == Some(&b'.') && c.s.get(c.i + 1).is_some_and(u8::is_ascii_digit) {
        c.i += 1;
        v.release.push(c.digits()?);
    }
    if let Some((w, n)) = c.lettered(&["a", "b", "c", "rc", "alpha", "beta", "pre", "preview"]) {
        let l = match w {
            "alpha" | "a" => "a",
            "beta" | "b" => "b",
            _ => "rc",
        };
        v.pre = Some((l.into(), n.unwrap_or_else(|| "0".into())));
    }
    if c.s.get(c.i) == Some(&b'-') && c.s.get(c.i + 1).is_some_and(u8::is_ascii_digit) {
        c.i += 1;
        v.post = c.digits();
    } else if let Some((_, n)) = c.lettered(&["post", "rev", "r"]) {
        v.post = Some(n.unwrap_or_else(|| "0".into()));
    }
    if let Some((_, n)) = c.lettered(&["dev"]) {
        v.dev = Some(n.unwrap_or_else(|| "0".into()));
    }
    if c.s.get(c.i) == Some(&b'+') {
        let local = &t[c.i + 1..];
        let parts: Vec<&str> = local.split(['.', '_', '-']).collect();
        if parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_alphanumeric()))
        {
            return None;
        }
        v.local = parts.into_iter().map(str::to_string).collect();
        c.i = c.s.len();
    }
    (c.i == c.s.len()).then_some(v)
}

fn legacy_parts(s: &str) -> Vec<String> {
    let mut raw: Vec<String> = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let st = i;
        if b[i].is_ascii_digit() {
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
        } else if b[i].is_ascii_lowercase() {
            while i < b.len() && b[i].is_ascii_lowercase() {
                i += 1;
            }
        } else if b[i] == b'.' || b[i] == b'-' {
            i += 1;
        } else {
            i += 1;
            continue;
        }
        raw.push(s[st..i].to_string());
    }
    raw.push("final".into());
    let mut parts: Vec<String> = Vec::new();
    for p in raw {
        if p.is_empty() || p == "." {
            continue;
        }
        let p = match p.as_str() {
            "pre" | "preview" | "rc" => "c".to_string(),
            "-" => "final-".to_string(),
            "dev" => "@".to_string(),
            _ => p,
        };
        let p = if p.as_bytes()[0].is_ascii_digit() {
            format!("{p:0>8}")
        } else {
            format!("*{p}")
        };
        if p.starts_with('*') {
            if p.as_str() < "*final" {
                while parts.last().is_some_and(|l| l == "*final-") {
                    parts.pop();
                }
            }
            while parts.last().is_some_and(|l| l == "00000000") {
                parts.pop();
            }
        }
        parts.push(p);
    }
    parts
}

fn parse(s: &str) -> Pep440 {
    let lower = s.to_lowercase();
    match parse_strict(&lower) {
        Some(v) => v,
        None => Pep440 {
            legacy: Some(legacy_parts(&lower)),
            ..Default::default()
        },
    }
}

fn opt_num(a: &Option<String>, b: &Option<String>, none_first: bool) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => {
            if none_first {
                Ordering::Less
            } else {
                Ordering::Greater
            }
        }
        (Some(_), None) => {
            if none_first {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        (Some(x), Some(y)) => cmp_digits(x, y),
    }
}

fn pre_trick(v: &Pep440) -> bool {
    v.pre.is_none() && v.post.is_none() && v.dev.is_some()
}

/// Compares two PyPI versions.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (x, y) = (parse(a), parse(b));
    match (&x.legacy, &y.legacy) {
        (Some(p), Some(q)) => return p.concat().cmp(&q.concat()),
        (Some(_), None) => return Ordering::Less,
        (None, Some(_)) => return Ordering::Greater,
        (None, None) => {}
    }
    let c = cmp_digits(&x.epoch, &y.epoch);
    if c != Ordering::Equal {
        return c;
    }
    for i in 0..x.release.len().max(y.release.len()) {
        let c = cmp_digits(
            x.release.get(i).map_or("0", |s| s),
            y.release.get(i).map_or("0", |s| s),
        );
        if c != Ordering::Equal {
            return c;
        }
    }
    let c = match (pre_trick(&x), pre_trick(&y)) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ => match (&x.pre, &y.pre) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some((l, n)), Some((m, o))) => l.as_bytes()[0]
                .cmp(&m.as_bytes()[0])
                .then_with(|| cmp_digits(n, o)),
        },
    };
    if c != Ordering::Equal {
        return c;
    }
    let c = opt_num(&x.post, &y.post, true);
    if c != Ordering::Equal {
        return c;
    }
    let c = opt_num(&x.dev, &y.dev, false);
    if c != Ordering::Equal {
        return c;
    }
    for (p, q) in x.local.iter().zip(&y.local) {
        let (pn, qn) = (
            p.bytes().all(|c| c.is_ascii_digit()),
            q.bytes().all(|c| c.is_ascii_digit()),
        );
        let c = match (pn, qn) {
            (true, true) => cmp_digits(p, q),
            (false, false) => p.cmp(q),
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
        };
        if c != Ordering::Equal {
            return c;
        }
    }
    x.local.len().cmp(&y.local.len())
}
