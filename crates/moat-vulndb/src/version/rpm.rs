//! RPM version ordering (`rpmvercmp`, with `~` pre-releases and `^` snapshots), over
//! `[epoch:]version[-release]`. An "epoch" that is not all digits is part of the version.

use std::cmp::Ordering;

fn skippable(c: u8) -> bool {
    !c.is_ascii_alphanumeric() && c != b'~' && c != b'^'
}

/// `rpmvercmp` on one segment (epoch, version or release).
pub fn vercmp(a: &str, b: &str) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, false) => return Ordering::Less,
        (false, true) => return Ordering::Greater,
        _ => {}
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    loop {
        while i < a.len() && skippable(a[i]) {
            i += 1;
        }
        while j < b.len() && skippable(b[j]) {
            j += 1;
        }
        let (at, bt) = (a.get(i) == Some(&b'~'), b.get(j) == Some(&b'~'));
        if at && bt {
            i += 1;
            j += 1;
            continue;
        }
        if at {
            return Ordering::Less;
        }
        if bt {
            return Ordering::Greater;
        }
        let (ac, bc) = (a.get(i) == Some(&b'^'), b.get(j) == Some(&b'^'));
        if ac && bc {
            i += 1;
            j += 1;
            continue;
        }
        if ac {
            return if j == b.len() {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        if bc {
            return if i == a.len() {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        if i == a.len() || j == b.len() {
            break;
        }
        let digit = a[i].is_ascii_digit();
        let run = |s: &[u8], mut k: usize| {
            let start = k;
            while k < s.len()
                && if digit {
                    s[k].is_ascii_digit()
                } else {
                    s[k].is_ascii_alphabetic()
                }
            {
                k += 1;
            }
            (start, k)
        };
        let (sa, ea) = run(a, i);
        let (sb, eb) = run(b, j);
        i = ea;
        j = eb;
        if sb == eb {
            return if digit {
                Ordering::Greater
            } else {
                Ordering::Less
            };
        }
        let (mut x, mut y) = (&a[sa..ea], &b[sb..eb]);
        if digit {
            while x.first() == Some(&b'0') {
                x = &x[1..];
            }
            while y.first() == Some(&b'0') {
                y = &y[1..];
            }
            match x.len().cmp(&y.len()) {
                Ordering::Equal => {}
                o => return o,
            }
        }
        match x.cmp(y) {
            Ordering::Equal => {}
            o => return o,
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

struct Evr<'a> {
    epoch: &'a str,
    version: &'a str,
    release: String,
}

fn parse(s: &str) -> Evr<'_> {
    let (epoch, vr) = match s.split_once(':') {
        Some((e, r)) if e.bytes().all(|c| c.is_ascii_digit()) => (e, r),
        _ => ("", s),
    };
    let (version, release) = match vr.split_once('-') {
        Some((v, r)) => (v, format!("-{r}")),
        None => (vr, String::new()),
    };
    Evr {
        epoch: if epoch.is_empty() { "0" } else { epoch },
        version,
        release,
    }
}

/// Compares two RPM `[epoch:]version[-release]` strings.
pub fn compare(a: &str, b: &str) -> Ordering {
    let (x, y) = (parse(a), parse(b));
    vercmp(x.epoch, y.epoch)
        .then_with(|| vercmp(x.version, y.version))
        .then_with(|| vercmp(&x.release, &y.release))
}
