//! Output templates: `Shell spawned | user=%user.name cmd=%proc.cmdline`, compiled once into literal
//! and field segments.

use serde_json::{Map, Value};

use super::compile::{CompileError, resolve_field};
use super::cond::RawField;
use super::fields::{self, FieldRef};
use crate::event::Event;

#[derive(Debug)]
enum Seg {
    Lit(String),
    Field(FieldRef),
}

/// A compiled output template.
#[derive(Debug)]
pub struct Template {
    segs: Vec<Seg>,
}

fn field_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'.'
}

impl Template {
    pub fn compile(src: &str) -> Result<Template, CompileError> {
        let b = src.as_bytes();
        let mut segs = Vec::new();
        let mut lit = String::new();
        let mut i = 0;
        let mut last = 0;
        while i < b.len() {
            if b[i] == b'%'
                && i + 1 < b.len()
                && (b[i + 1].is_ascii_alphabetic() || b[i + 1] == b'(')
            {
                lit.push_str(&src[last..i]);
                let paren = b[i + 1] == b'(';
                let mut j = i + 1 + paren as usize;
                let st = j;
                while j < b.len() && field_char(b[j]) {
                    j += 1;
                }
                let mut name = &src[st..j];
                // A sentence-ending dot is not part of the field.
                while name.ends_with('.') {
                    name = &name[..name.len() - 1];
                    j -= 1;
                }
                let mut arg = None;
                if j < b.len()
                    && b[j] == b'['
                    && let Some(close) = src[j..].find(']')
                {
                    arg = Some(src[j + 1..j + close].to_string());
                    j += close + 1;
                }
                if paren {
                    if j < b.len() && b[j] == b')' {
                        j += 1;
                    } else {
                        return Err(CompileError(format!("unterminated '%(' at offset {i}")));
                    }
                }
                if !lit.is_empty() {
                    segs.push(Seg::Lit(std::mem::take(&mut lit)));
                }
                let f = resolve_field(&RawField {
                    name: name.to_string(),
                    arg,
                    transform: None,
                })?;
                segs.push(Seg::Field(f));
                i = j;
                last = j;
                continue;
            }
            i += 1;
        }
        lit.push_str(&src[last..]);
        if !lit.is_empty() {
            segs.push(Seg::Lit(lit));
        }
        Ok(Template { segs })
    }

    /// Renders the text and the `output_fields` map (field name → value, null when absent).
    pub fn render(&self, ev: &Event) -> (String, Map<String, Value>) {
        let mut out = String::new();
        let mut map = Map::new();
        for s in &self.segs {
            match s {
                Seg::Lit(l) => out.push_str(l),
                Seg::Field(f) => {
                    let v = fields::extract(ev, f);
                    out.push_str(&v.render());
                    map.insert(f.text.to_string(), v.to_json());
                }
            }
        }
        (out.trim().to_string(), map)
    }
}

/// RFC 3339 UTC with nanoseconds, from ns since the epoch.
pub fn rfc3339(ns: u64) -> String {
    let secs = (ns / 1_000_000_000) as i64;
    let nanos = ns % 1_000_000_000;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_format() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339(1_700_000_000_123_000_000),
            "2023-11-14T22:13:20.123000000Z"
        );
    }

    #[test]
    fn template_fields_and_unknowns() {
        let t = Template::compile("x %proc.name y=%proc.aname[2]. %(user.name)!").unwrap();
        let mut ev = Event {
            evt_type: "execve".into(),
            ..Default::default()
        };
        ev.proc.name = "bash".into();
        ev.prepare();
        let (s, m) = t.render(&ev);
        assert_eq!(s, "x bash y=<NA>. <NA>!");
        assert_eq!(m.get("proc.name"), Some(&Value::String("bash".into())));
        assert!(Template::compile("%k8s.deployment.name").is_err());
        assert!(Template::compile("100% sure").is_ok());
    }
}
