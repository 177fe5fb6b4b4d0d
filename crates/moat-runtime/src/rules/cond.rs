//! Parser for Falco's condition language into an [`Ast`]. Lists are expanded here (they are textual
//! in Falco); macros stay as references and are resolved by the compiler so each macro is parsed once.
//!
//! Grammar (precedence low to high): `or`, `and`, `not`, then a parenthesised expression, a macro name,
//! or `field [op value]` where value is a quoted string, a bare word, a `(list, of, values)` or `val(field)`.

use std::collections::HashMap;

/// Parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Ast {
    And(Vec<Ast>),
    Or(Vec<Ast>),
    Not(Box<Ast>),
    Macro(String),
    Check {
        field: RawField,
        op: String,
        rhs: Rhs,
    },
}

/// A field as written: `tolower(proc.aname[2])`.
#[derive(Debug, Clone, PartialEq)]
pub struct RawField {
    pub name: String,
    pub arg: Option<String>,
    pub transform: Option<String>,
}

/// Right-hand side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Rhs {
    None,
    Value(String),
    List(Vec<String>),
    Field(RawField),
}

/// A syntax error with its byte offset in the condition.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub offset: usize,
    pub message: String,
}

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (at offset {})", self.message, self.offset)
    }
}

const UNARY_OPS: &[&str] = &["exists"];
const WORD_OPS: &[&str] = &[
    "contains",
    "icontains",
    "bcontains",
    "startswith",
    "bstartswith",
    "endswith",
    "glob",
    "iglob",
    "pmatch",
    "in",
    "intersects",
    "regex",
    "exists",
];
const TRANSFORMERS: &[&str] = &["tolower", "toupper", "b64", "basename", "len"];

/// Lists by name: raw item tokens as written in the YAML (`"(systemd)"` keeps its quotes).
pub type Lists = HashMap<String, Vec<String>>;

/// Parses a condition, expanding list names inside `( ... )`.
pub fn parse(src: &str, lists: &Lists) -> Result<Ast, SyntaxError> {
    if src.len() > 1 << 20 {
        return Err(SyntaxError {
            offset: 0,
            message: "condition longer than 1 MiB".into(),
        });
    }
    let mut p = Parser {
        s: src.as_bytes(),
        src,
        i: 0,
        lists,
        depth: 0,
    };
    let ast = p.or()?;
    p.ws();
    if p.i < p.s.len() {
        return Err(p.err(format!("unexpected '{}'", p.rest_word())));
    }
    Ok(ast)
}

struct Parser<'a> {
    s: &'a [u8],
    src: &'a str,
    i: usize,
    lists: &'a Lists,
    depth: usize,
}

fn is_bare(c: u8) -> bool {
    !(c.is_ascii_whitespace()
        || matches!(
            c,
            b'(' | b')' | b'"' | b'\'' | b'=' | b',' | b'<' | b'>' | b'!'
        ))
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

impl<'a> Parser<'a> {
    fn err(&self, message: String) -> SyntaxError {
        SyntaxError {
            offset: self.i,
            message,
        }
    }
    fn rest_word(&self) -> String {
        self.src[self.i..].chars().take(20).collect()
    }
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    /// Reads a keyword-like word `[A-Za-z0-9_.-]` without consuming when `consume` is false.
    fn word_at(&self, at: usize) -> &'a str {
        let mut j = at;
        while j < self.s.len()
            && (self.s[j].is_ascii_alphanumeric() || matches!(self.s[j], b'_' | b'.' | b'-'))
        {
            j += 1;
        }
        &self.src[at..j]
    }
    fn keyword(&mut self, kw: &str) -> bool {
        self.ws();
        // word_at is greedy, so "order" never reads as "or".
        if self.word_at(self.i) == kw {
            self.i += kw.len();
            return true;
        }
        false
    }
    fn enter(&mut self) -> Result<(), SyntaxError> {
        self.depth += 1;
        if self.depth > 200 {
            return Err(self.err("condition nested more than 200 levels".into()));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Ast, SyntaxError> {
        self.enter()?;
        let mut items = vec![self.and()?];
        while self.keyword("or") {
            items.push(self.and()?);
        }
        self.depth -= 1;
        Ok(if items.len() == 1 {
            items.pop().unwrap_or(Ast::Or(vec![]))
        } else {
            Ast::Or(items)
        })
    }
    fn and(&mut self) -> Result<Ast, SyntaxError> {
        let mut items = vec![self.not()?];
        while self.keyword("and") {
            items.push(self.not()?);
        }
        Ok(if items.len() == 1 {
            items.pop().unwrap_or(Ast::And(vec![]))
        } else {
            Ast::And(items)
        })
    }
    fn not(&mut self) -> Result<Ast, SyntaxError> {
        if self.keyword("not") {
            self.enter()?;
            let inner = self.not()?;
            self.depth -= 1;
            return Ok(Ast::Not(Box::new(inner)));
        }
        self.primary()
    }
    fn primary(&mut self) -> Result<Ast, SyntaxError> {
        self.ws();
        match self.peek() {
            None => Err(self.err("unexpected end of condition".into())),
            Some(b'(') => {
                self.i += 1;
                let e = self.or()?;
                self.ws();
                if self.peek() != Some(b')') {
                    return Err(self.err("expected ')'".into()));
                }
                self.i += 1;
                Ok(e)
            }
            Some(c) if is_ident_start(c) => {
                let start = self.i;
                let w = self.word_at(self.i);
                // transformer(field)
                if TRANSFORMERS.contains(&w) && self.s.get(self.i + w.len()) == Some(&b'(') {
                    self.i += w.len() + 1;
                    let mut f = self.field()?;
                    self.ws();
                    if self.peek() != Some(b')') {
                        return Err(self.err("expected ')' after transformer argument".into()));
                    }
                    self.i += 1;
                    f.transform = Some(w.to_string());
                    return self.check(f);
                }
                if !w.contains('.') {
                    // A macro reference.
                    self.i += w.len();
                    if w.is_empty() {
                        self.i = start;
                        return Err(self.err("expected a field or macro".into()));
                    }
                    return Ok(Ast::Macro(w.to_string()));
                }
                let f = self.field()?;
                self.check(f)
            }
            Some(_) => Err(self.err(format!(
                "expected a field, macro or '(' but found '{}'",
                self.rest_word()
            ))),
        }
    }
    fn field(&mut self) -> Result<RawField, SyntaxError> {
        self.ws();
        let mut j = self.i;
        while j < self.s.len()
            && (self.s[j].is_ascii_alphanumeric() || matches!(self.s[j], b'_' | b'.'))
        {
            j += 1;
        }
        if j == self.i {
            return Err(self.err("expected a field name".into()));
        }
        let name = self.src[self.i..j].trim_end_matches('.').to_string();
        self.i = j;
        let mut arg = None;
        if self.peek() == Some(b'[') {
            let close = self.src[self.i..]
                .find(']')
                .ok_or_else(|| self.err("unterminated '['".into()))?;
            arg = Some(self.src[self.i + 1..self.i + close].to_string());
            self.i += close + 1;
        }
        Ok(RawField {
            name,
            arg,
            transform: None,
        })
    }
    fn op(&mut self) -> Option<String> {
        self.ws();
        let two = self.src.get(self.i..self.i + 2).unwrap_or("");
        for o in ["==", "!=", "<=", ">="] {
            if two == o {
                self.i += 2;
                return Some(o.to_string());
            }
        }
        match self.peek() {
            Some(b'=') => {
                self.i += 1;
                return Some("=".into());
            }
            Some(b'<') => {
                self.i += 1;
                return Some("<".into());
            }
            Some(b'>') => {
                self.i += 1;
                return Some(">".into());
            }
            _ => {}
        }
        let w = self.word_at(self.i);
        if WORD_OPS.contains(&w) {
            self.i += w.len();
            return Some(w.to_string());
        }
        None
    }
    fn check(&mut self, field: RawField) -> Result<Ast, SyntaxError> {
        let save = self.i;
        let Some(op) = self.op() else {
            self.i = save;
            return Err(self.err(format!("expected an operator after '{}'", field.name)));
        };
        if UNARY_OPS.contains(&op.as_str()) {
            return Ok(Ast::Check {
                field,
                op,
                rhs: Rhs::None,
            });
        }
        self.ws();
        let rhs = if self.peek() == Some(b'(') {
            Rhs::List(self.list()?)
        } else if self.src[self.i..].starts_with("val(") {
            self.i += 4;
            let f = self.field()?;
            self.ws();
            if self.peek() != Some(b')') {
                return Err(self.err("expected ')' after val(".into()));
            }
            self.i += 1;
            Rhs::Field(f)
        } else {
            Rhs::Value(self.value()?)
        };
        Ok(Ast::Check { field, op, rhs })
    }
    /// A quoted string or a bare word.
    fn value(&mut self) -> Result<String, SyntaxError> {
        self.ws();
        match self.peek() {
            Some(q @ (b'"' | b'\'')) => {
                let (v, used) = unquote_at(&self.src[self.i..], q)
                    .ok_or_else(|| self.err("unterminated string".into()))?;
                self.i += used;
                Ok(v)
            }
            // A bare `<` or `>` (Falco's `evt.dir=<`): the direction value.
            Some(c @ (b'<' | b'>'))
                if self
                    .s
                    .get(self.i + 1)
                    .is_none_or(|n| n.is_ascii_whitespace() || *n == b')') =>
            {
                self.i += 1;
                Ok((c as char).to_string())
            }
            Some(c) if is_bare(c) => {
                let st = self.i;
                while self.i < self.s.len() && is_bare(self.s[self.i]) {
                    self.i += 1;
                }
                Ok(self.src[st..self.i].to_string())
            }
            _ => Err(self.err("expected a value".into())),
        }
    }
    fn list(&mut self) -> Result<Vec<String>, SyntaxError> {
        self.i += 1; // '('
        let mut out = Vec::new();
        loop {
            self.ws();
            if self.peek() == Some(b')') {
                self.i += 1;
                return Ok(out);
            }
            let quoted = matches!(self.peek(), Some(b'"' | b'\''));
            let v = self.value()?;
            if quoted {
                out.push(v);
            } else {
                expand(&v, self.lists, &mut out, 0).map_err(|m| self.err(m))?;
            }
            self.ws();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b')') => {}
                _ => return Err(self.err("expected ',' or ')' in list".into())),
            }
        }
    }
}

/// Appends a bare item, or the items of the list it names (recursively).
fn expand(item: &str, lists: &Lists, out: &mut Vec<String>, depth: usize) -> Result<(), String> {
    if depth > 50 {
        return Err(format!("list '{item}' nests too deeply (cycle?)"));
    }
    if out.len() > 200_000 {
        return Err(format!("list '{item}' expands to more than 200000 items"));
    }
    match lists.get(item) {
        Some(items) => {
            for it in items {
                let t = it.trim();
                if let Some(q @ (b'"' | b'\'')) = t.as_bytes().first().copied()
                    && let Some((v, used)) = unquote_at(t, q)
                    && used == t.len()
                {
                    out.push(v);
                    continue;
                }
                expand(t, lists, out, depth + 1)?;
            }
            Ok(())
        }
        None => {
            out.push(item.to_string());
            Ok(())
        }
    }
}

/// Unquotes a string starting with quote `q`; returns the value and the bytes consumed. `\"`, `\'`
/// and `\\` are escapes, as in Falco.
fn unquote_at(s: &str, q: u8) -> Option<(String, usize)> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 1;
    while i < b.len() {
        let c = b[i];
        if c == b'\\' && i + 1 < b.len() && (b[i + 1] == q || b[i + 1] == b'\\') {
            out.push(b[i + 1]);
            i += 2;
            continue;
        }
        if c == q {
            return Some((String::from_utf8_lossy(&out).into_owned(), i + 1));
        }
        out.push(c);
        i += 1;
    }
    None
}

/// Every macro name the AST references (for dependency reports).
pub fn macros_in(ast: &Ast, out: &mut Vec<String>) {
    match ast {
        Ast::And(v) | Ast::Or(v) => v.iter().for_each(|a| macros_in(a, out)),
        Ast::Not(a) => macros_in(a, out),
        Ast::Macro(m) => out.push(m.clone()),
        Ast::Check { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Ast {
        parse(s, &Lists::new()).unwrap()
    }
    fn chk(name: &str, op: &str, rhs: Rhs) -> Ast {
        Ast::Check {
            field: RawField {
                name: name.into(),
                arg: None,
                transform: None,
            },
            op: op.into(),
            rhs,
        }
    }

    #[test]
    fn precedence_and_not() {
        let a = p("a or b and not c");
        assert_eq!(
            a,
            Ast::Or(vec![
                Ast::Macro("a".into()),
                Ast::And(vec![
                    Ast::Macro("b".into()),
                    Ast::Not(Box::new(Ast::Macro("c".into())))
                ])
            ])
        );
    }

    #[test]
    fn comparisons_and_values() {
        assert_eq!(
            p("proc.name=bash"),
            chk("proc.name", "=", Rhs::Value("bash".into()))
        );
        assert_eq!(
            p("proc.name!=\"sshd\""),
            chk("proc.name", "!=", Rhs::Value("sshd".into()))
        );
        assert_eq!(
            p("fd.typechar='f'"),
            chk("fd.typechar", "=", Rhs::Value("f".into()))
        );
        assert_eq!(p("fd.num>=0"), chk("fd.num", ">=", Rhs::Value("0".into())));
        assert_eq!(p("fd.num=-1"), chk("fd.num", "=", Rhs::Value("-1".into())));
        assert_eq!(
            p("proc.pname exists"),
            chk("proc.pname", "exists", Rhs::None)
        );
        assert_eq!(
            p("proc.cmdline startswith \"sh -c \\\"x\\\"\""),
            chk(
                "proc.cmdline",
                "startswith",
                Rhs::Value("sh -c \"x\"".into())
            )
        );
    }

    #[test]
    fn lists_expand_recursively_and_keep_brackets() {
        let mut l = Lists::new();
        l.insert(
            "a".into(),
            vec!["x".into(), "b".into(), "\"(systemd)\"".into()],
        );
        l.insert("b".into(), vec!["y".into(), "\"10.0.0.0/8\"".into()]);
        let a = parse("proc.name in (a, runc:[0:PARENT], \"q w\")", &l).unwrap();
        let Ast::Check {
            rhs: Rhs::List(items),
            ..
        } = a
        else {
            panic!()
        };
        assert_eq!(
            items,
            vec![
                "x",
                "y",
                "10.0.0.0/8",
                "(systemd)",
                "runc:[0:PARENT]",
                "q w"
            ]
        );
    }

    #[test]
    fn field_args_and_transformers() {
        let a =
            p("proc.aname[2]=x and tolower(proc.name) = bash and evt.arg[flags] contains O_TRUNC");
        let Ast::And(v) = a else { panic!() };
        let Ast::Check { field, .. } = &v[0] else {
            panic!()
        };
        assert_eq!(field.arg.as_deref(), Some("2"));
        let Ast::Check { field, .. } = &v[1] else {
            panic!()
        };
        assert_eq!(field.transform.as_deref(), Some("tolower"));
    }

    #[test]
    fn keywords_need_a_boundary() {
        // "order" starts with "or", "andy" with "and", "nothing" with "not": they are macros.
        assert_eq!(p("nothing"), Ast::Macro("nothing".into()));
        assert_eq!(
            p("order and andy"),
            Ast::And(vec![Ast::Macro("order".into()), Ast::Macro("andy".into())])
        );
        assert_eq!(p("not(a)"), Ast::Not(Box::new(Ast::Macro("a".into()))));
    }

    #[test]
    fn errors_are_reported_with_offsets() {
        assert!(parse("proc.name =", &Lists::new()).is_err());
        assert!(parse("(a and b", &Lists::new()).is_err());
        assert!(parse("proc.name bogus x", &Lists::new()).is_err());
        assert!(parse("a b", &Lists::new()).is_err());
        let e = parse("proc.name in (a, b", &Lists::new()).unwrap_err();
        assert!(e.offset > 0);
        assert!(parse(&"(".repeat(10_000), &Lists::new()).is_err());
    }

    #[test]
    fn list_cycles_are_errors() {
        let mut l = Lists::new();
        l.insert("a".into(), vec!["b".into()]);
        l.insert("b".into(), vec!["a".into()]);
        assert!(parse("proc.name in (a)", &l).is_err());
    }
}
