//! Maven version ordering, as Maven's `ComparableVersion` defines it: tokens split on `.`, `-` and
//! digit/letter transitions; trailing "null" tokens trimmed; known qualifiers
//! `alpha < beta < milestone < rc < snapshot < "" < sp`, unknown ones after them alphabetically.

use std::cmp::Ordering;

use super::cmp_digits;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    prefix: char,
    value: String,
    null: bool,
}

const KEYWORDS: [&str; 7] = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"];

fn is_num(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit())
}

impl Token {
    fn same(&self, o: &Token) -> bool {
        self.prefix == o.prefix && self.value == o.value
    }

    fn kind_order(&self) -> u8 {
        match (is_num(&self.value), self.prefix) {
            (true, '-') => 2,
            (true, _) => 3,
            (false, '-') => 1,
            (false, _) => 0,
        }
    }

    fn less(&self, o: &Token) -> bool {
        if self.prefix != o.prefix {
            return self.kind_order() < o.kind_order();
        }
        let (an, bn) = (is_num(&self.value), is_num(&o.value));
        if an && bn {
            return cmp_digits(&self.value, &o.value) == Ordering::Less;
        }
        // Numbers sort after qualifiers, unless the number is padding.
        if an && !self.null {
            return false;
        }
        if bn && !o.null {
            return true;
        }
        let kw = |v: &str| {
            KEYWORDS
                .iter()
                .position(|k| *k == v)
                .unwrap_or(KEYWORDS.len())
        };
        let (l, r) = (kw(&self.value), kw(&o.value));
        if l == KEYWORDS.len() && r == KEYWORDS.len() {
            return self.value < o.value;
        }
        l < r
    }

    fn null_like(&self) -> Token {
        if self.prefix == '-' {
            Token {
                prefix: '-',
                value: String::new(),
                null: true,
            }
        } else {
            // `sp` is the one qualifier that sorts after the empty value.
            let value = if self.value == "sp" {
                String::new()
            } else {
                "0".to_string()
            };
            Token {
                prefix: '.',
                value,
                null: true,
            }
        }
    }
}

fn tokens(s: &str) -> Vec<Token> {
    let mut out: Vec<Token> = Vec::new();
    let mut prefix = '\0';
    for (i, raw) in s.split(['.', '-']).enumerate() {
        if i > 0 {
            // The delimiter that preceded this piece.
            let consumed: usize = s.split(['.', '-']).take(i).map(|p| p.len() + 1).sum();
            prefix = s[consumed - 1..].chars().next().unwrap_or('.');
        }
        // Split at digit/non-digit transitions.
        let mut pieces: Vec<&str> = Vec::new();
        let mut start = 0;
        let mut prev: Option<bool> = None;
        for (k, c) in raw.char_indices() {
            let d = c.is_ascii_digit();
            if let Some(p) = prev
                && p != d
            {
                pieces.push(&raw[start..k]);
                start = k;
            }
            prev = Some(d);
        }
        pieces.push(&raw[start..]);
        let n = pieces.len();
        for (j, piece) in pieces.into_iter().enumerate() {
            let p = if j > 0 { '-' } else { prefix };
            let mut cur = piece.to_lowercase();
            if cur.is_empty() {
                cur = "0".into();
            }
            match cur.as_str() {
                "cr" => cur = "rc".into(),
                "ga" | "final" | "release" => cur.clear(),
                _ => {}
            }
            if j + 1 != n {
                match cur.as_str() {
                    "a" => cur = "alpha".into(),
                    "b" => cur = "beta".into(),
                    "m" => cur = "milestone".into(),
                    _ => {}
                }
            }
            if is_num(&cur) {
                let t = cur.trim_start_matches('0');
                cur = if t.is_empty() {
                    "0".into()
                } else {
                    t.to_string()
                };
            }
            out.push(Token {
                prefix: p,
                value: cur,
                null: false,
            });
        }
    }
    // Trim trailing null values, then again before each remaining hyphen, from the end.
    let mut i = out.len() as isize - 1;
    while i > 0 {
        let t = &out[i as usize];
        if matches!(t.value.as_str(), "0" | "" | "final" | "ga") {
            out.remove(i as usize);
            i -= 1;
            continue;
        }
        while i >= 0 && out[i as usize].prefix != '-' {
            i -= 1;
        }
        i -= 1;
    }
    out
}

/// Compares two Maven versions.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (x, y) = (tokens(a.trim()), tokens(b.trim()));
    if x.len() == y.len() && x.iter().zip(&y).all(|(p, q)| p.same(q)) {
        return Ordering::Equal;
    }
    for i in 0..x.len().max(y.len()) {
        let l = match x.get(i) {
            Some(t) => t.clone(),
            None => y[i].null_like(),
        };
        let r = match y.get(i) {
            Some(t) => t.clone(),
            None => x[i].null_like(),
        };
        if l.same(&r) {
            continue;
        }
        return if l.less(&r) {
            Ordering::Less
        } else {
            Ordering::Greater
        };
    }
    Ordering::Greater
}
