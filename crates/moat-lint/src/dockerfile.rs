//! The Dockerfile front-end: physical lines → parser directives, comments and logical instructions, with
//! BuildKit's rules for line continuations (the `escape` directive), comment and blank lines inside a
//! continuation, here-documents (`RUN <<EOF`), instruction flags, exec (JSON) and shell forms, and
//! `ONBUILD`. Every instruction keeps its first line and column, so every finding can point at it.

use crate::LintError;

/// Instructions BuildKit knows. Anything else is a parse error, as in `docker build`.
pub const KEYWORDS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Longest accepted file: a generated Dockerfile of 16 MiB is already absurd; beyond it is hostile.
pub const MAX_BYTES: usize = 16 << 20;

/// A parsed Dockerfile.
#[derive(Debug, Clone)]
pub struct Dockerfile {
    /// The escape character: `\` unless a `# escape=` directive says otherwise.
    pub escape: char,
    /// Parser directives (`syntax`, `escape`, `check`), lower-cased name → value.
    pub directives: Vec<(String, String)>,
    pub instructions: Vec<Instruction>,
    /// Every comment line, with its text after `#` (untrimmed inner text trimmed of outer whitespace).
    pub comments: Vec<Comment>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub line: u32,
    pub text: String,
}

/// An instruction flag such as `--mount=type=cache,target=/root/.cache` or `--link`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    pub name: String,
    /// The value with one pair of outer quotes removed.
    pub value: Option<String>,
    /// The value as written.
    pub raw: String,
}

/// A BuildKit here-document attached to an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    pub name: String,
    /// The body, lines joined with `\n` (leading tabs removed for `<<-`).
    pub body: String,
    /// First line of the body.
    pub line: u32,
}

/// One logical instruction.
#[derive(Debug, Clone)]
pub struct Instruction {
    /// Upper-cased keyword (`RUN`).
    pub keyword: String,
    /// 1-based line and column of the keyword.
    pub line: u32,
    pub column: u32,
    /// Last physical line of the instruction (including here-document bodies).
    pub end_line: u32,
    pub flags: Vec<Flag>,
    /// Everything after the keyword and the flags, continuations joined, trimmed.
    pub args: String,
    /// 1-based column of `args` on the first line (best effort: continuation joins shift it).
    pub args_column: u32,
    pub heredocs: Vec<Heredoc>,
    /// The triggered instruction of an `ONBUILD`.
    pub onbuild: Option<Box<Instruction>>,
}

impl Instruction {
    pub fn is(&self, kw: &str) -> bool {
        self.keyword == kw
    }

    pub fn flag(&self, name: &str) -> Option<&Flag> {
        self.flags
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))
    }

    pub fn flag_value(&self, name: &str) -> Option<&str> {
        self.flag(name).and_then(|f| f.value.as_deref())
    }

    /// The JSON (exec) form's strings, when the arguments are a JSON array of strings.
    pub fn exec_form(&self) -> Option<Vec<String>> {
        exec_form(&self.args)
    }

    /// The `--mount` flags of a `RUN`, parsed.
    pub fn mounts(&self) -> Vec<Mount> {
        self.flags
            .iter()
            .filter(|f| f.name.eq_ignore_ascii_case("mount"))
            .filter_map(|f| f.value.as_deref())
            .map(Mount::parse)
            .collect()
    }
}

/// A `RUN --mount=...` flag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mount {
    pub kind: String,
    pub target: String,
    pub from: Option<String>,
    pub id: Option<String>,
}

impl Mount {
    pub fn parse(v: &str) -> Mount {
        let mut m = Mount {
            kind: "bind".into(),
            ..Default::default()
        };
        for part in v.split(',') {
            let (k, val) = part.split_once('=').unwrap_or((part, ""));
            let val = unquote(val.trim());
            match k.trim().to_ascii_lowercase().as_str() {
                "type" => m.kind = val.to_ascii_lowercase(),
                "target" | "dst" | "destination" => m.target = val,
                "from" => m.from = Some(val),
                "id" => m.id = Some(val),
                _ => {}
            }
        }
        m
    }
}

/// Strips one pair of matching outer quotes.
pub fn unquote(s: &str) -> String {
    let b = s.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        s[1..s.len() - 1].to_string()
    } else {
        s.to_string()
    }
}

/// A JSON array of strings, as BuildKit accepts for exec forms.
pub fn exec_form(args: &str) -> Option<Vec<String>> {
    let t = args.trim();
    if !t.starts_with('[') || !t.ends_with(']') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(t).ok()
}

fn is_directive(line: &str) -> Option<(String, String)> {
    let t = line.trim_start();
    let rest = t.strip_prefix('#')?;
    let (k, v) = rest.split_once('=')?;
    let k = k.trim();
    if k.is_empty()
        || !k
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return None;
    }
    let k = k.to_ascii_lowercase();
    if !matches!(k.as_str(), "syntax" | "escape" | "check") {
        return None;
    }
    Some((k, v.trim().to_string()))
}

/// Whether a physical line ends with the escape character (a continuation), and the line without it.
fn continuation(line: &str, escape: char) -> Option<&str> {
    let t = line.trim_end_matches([' ', '\t']);
    let stripped = t.strip_suffix(escape)?;
    Some(stripped)
}

/// Finds here-document markers (`<<EOF`, `<<-EOF`, `<<"EOF"`) outside quotes in an instruction's
/// arguments: (name, strip leading tabs).
fn heredoc_markers(args: &str, escape: char) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let chars: Vec<char> = args.chars().collect();
    let mut i = 0;
    let mut quote: Option<char> = None;
    while i < chars.len() {
        let c = chars[i];
        if let Some(q) = quote {
            if c == q {
                quote = None;
            } else if c == escape && q == '"' {
                i += 1;
            }
            i += 1;
            continue;
        }
        if c == escape {
            i += 2;
            continue;
        }
        if c == '"' || c == '\'' {
            quote = Some(c);
            i += 1;
            continue;
        }
        // A marker starts a word (optionally after a file-descriptor number): `$((x<<y))` is not one.
        let word_start = {
            let mut k = i;
            while k > 0 && chars[k - 1].is_ascii_digit() {
                k -= 1;
            }
            k == 0 || chars[k - 1].is_whitespace()
        };
        if c == '<'
            && word_start
            && chars.get(i + 1) == Some(&'<')
            && chars.get(i + 2) != Some(&'<')
        {
            let mut j = i + 2;
            let mut strip = false;
            if chars.get(j) == Some(&'-') {
                strip = true;
                j += 1;
            }
            let q = match chars.get(j) {
                Some(&'"') | Some(&'\'') => {
                    j += 1;
                    Some(chars[j - 1])
                }
                _ => None,
            };
            let start = j;
            while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            if j > start && !chars[start].is_ascii_digit() {
                let name: String = chars[start..j].iter().collect();
                if let Some(q) = q
                    && chars.get(j) == Some(&q)
                {
                    j += 1;
                }
                let ends_word = chars
                    .get(j)
                    .is_none_or(|c| c.is_whitespace() || ";|&)>".contains(*c));
                if !ends_word {
                    i = j;
                    continue;
                }
                out.push((name, strip));
                i = j;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// Splits the leading `--flag[=value]` words off an instruction's arguments.
fn split_flags(rest: &str) -> (Vec<Flag>, &str) {
    let mut flags = Vec::new();
    let mut s = rest.trim_start();
    while let Some(after) = s.strip_prefix("--") {
        // A flag is one word; values may be quoted.
        let mut end = 0;
        let mut quote: Option<char> = None;
        for (i, c) in after.char_indices() {
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None if c == '"' || c == '\'' => quote = Some(c),
                None if c.is_whitespace() => {
                    end = i;
                    break;
                }
                None => {}
            }
            end = i + c.len_utf8();
        }
        let word = &after[..end];
        if word.is_empty() {
            break;
        }
        let (name, value, raw) = match word.split_once('=') {
            Some((n, v)) => (n.to_string(), Some(unquote(v)), v.to_string()),
            None => (word.to_string(), None, String::new()),
        };
        flags.push(Flag { name, value, raw });
        s = after[end..].trim_start();
    }
    (flags, s)
}

/// Parses Dockerfile text. `name` is only used in error messages.
pub fn parse(name: &str, bytes: &[u8]) -> Result<Dockerfile, LintError> {
    if bytes.len() > MAX_BYTES {
        return Err(LintError::Input(format!(
            "{name}: {} bytes is larger than the {MAX_BYTES}-byte limit for a Dockerfile",
            bytes.len()
        )));
    }
    if let Some(pos) = bytes.iter().position(|&b| b == 0) {
        return Err(LintError::Input(format!(
            "{name}: not a Dockerfile: binary data (NUL byte at offset {pos})"
        )));
    }
    // BuildKit reads bytes: a Latin-1 comment does not stop `docker build`, so it does not stop moat
    // either. Binary data does: NUL bytes (above) or mostly undecodable bytes and control characters.
    let decoded = String::from_utf8_lossy(bytes);
    let total = decoded.chars().count().max(1);
    let junk = decoded
        .chars()
        .filter(|&c| {
            c == '\u{fffd}' || (c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\x0c'))
        })
        .count();
    if junk * 10 > total {
        return Err(LintError::Input(format!(
            "{name}: not a Dockerfile: binary data ({junk} of {total} characters are not text)"
        )));
    }
    let text: &str = &decoded;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let mut df = Dockerfile {
        escape: '\\',
        directives: Vec::new(),
        instructions: Vec::new(),
        comments: Vec::new(),
    };
    let mut i = 0;
    while i < lines.len() {
        match is_directive(lines[i]) {
            Some((k, v)) => {
                if k == "escape" {
                    match v.as_str() {
                        "`" => df.escape = '`',
                        "\\" => df.escape = '\\',
                        _ => {
                            return Err(LintError::Input(format!(
                                "{name}:{}: invalid escape directive {v:?}: must be ` or \\",
                                i + 1
                            )));
                        }
                    }
                }
                df.comments.push(Comment {
                    line: i as u32 + 1,
                    text: lines[i].trim_start()[1..].trim().to_string(),
                });
                df.directives.push((k, v));
                i += 1;
            }
            None => break,
        }
    }
    let esc = df.escape;
    while i < lines.len() {
        let line = lines[i];
        let t = line.trim_start();
        if t.is_empty() {
            i += 1;
            continue;
        }
        if let Some(c) = t.strip_prefix('#') {
            df.comments.push(Comment {
                line: i as u32 + 1,
                text: c.trim().to_string(),
            });
            i += 1;
            continue;
        }
        let start = i;
        let column = (line.len() - t.len()) as u32 + 1;
        let mut logical = String::new();
        let mut cur = t;
        loop {
            match continuation(cur, esc) {
                Some(body) => {
                    logical.push_str(body);
                    i += 1;
                    // Blank and comment lines inside a continuation are dropped.
                    while i < lines.len() {
                        let n = lines[i].trim_start();
                        if n.is_empty() {
                            i += 1;
                        } else if let Some(c) = n.strip_prefix('#') {
                            df.comments.push(Comment {
                                line: i as u32 + 1,
                                text: c.trim().to_string(),
                            });
                            i += 1;
                        } else {
                            break;
                        }
                    }
                    if i >= lines.len() {
                        break;
                    }
                    cur = lines[i];
                }
                None => {
                    logical.push_str(cur);
                    break;
                }
            }
        }
        let end = i.min(lines.len().saturating_sub(1));
        i = end + 1;
        let mut ins = parse_instruction(name, &logical, start as u32 + 1, column)?;
        ins.end_line = end as u32 + 1;
        // Here-documents: bodies follow the logical line.
        let target = if ins.keyword == "ONBUILD" {
            ins.onbuild.as_deref().map(|o| o.keyword.as_str())
        } else {
            Some(ins.keyword.as_str())
        };
        if matches!(target, Some("RUN" | "COPY" | "ADD")) {
            let markers = heredoc_markers(&ins.args, esc);
            let mut docs = Vec::new();
            for (hname, strip) in markers {
                let body_line = i as u32 + 1;
                let mut body = Vec::new();
                let mut closed = false;
                while i < lines.len() {
                    let l = lines[i];
                    i += 1;
                    let cmp = if strip { l.trim_start_matches('\t') } else { l };
                    if cmp == hname {
                        closed = true;
                        break;
                    }
                    body.push(if strip { cmp } else { l });
                }
                // BuildKit accepts an unterminated here-document as running to the end of the file.
                let _ = closed;
                docs.push(Heredoc {
                    name: hname,
                    body: body.join("\n"),
                    line: body_line,
                });
            }
            if !docs.is_empty() {
                ins.end_line = i as u32;
                match ins.onbuild.as_deref_mut() {
                    Some(o) => o.heredocs = docs,
                    None => ins.heredocs = docs,
                }
            }
        }
        df.instructions.push(ins);
    }
    if df.instructions.is_empty() {
        return Err(LintError::Input(format!(
            "{name}: not a Dockerfile: no instructions"
        )));
    }
    Ok(df)
}

/// Deepest `ONBUILD ONBUILD ...` chain accepted.
pub const MAX_ONBUILD_NESTING: usize = 8;

fn parse_instruction(
    name: &str,
    logical: &str,
    line: u32,
    column: u32,
) -> Result<Instruction, LintError> {
    let t = logical.trim();
    let kw_end = t.find(|c: char| c.is_whitespace()).unwrap_or(t.len());
    let kw = &t[..kw_end];
    let keyword = kw.to_ascii_uppercase();
    if !KEYWORDS.contains(&keyword.as_str()) {
        let shown: String = kw.chars().take(40).collect();
        return Err(LintError::Input(format!(
            "{name}:{line}:{column}: unknown instruction {shown:?}"
        )));
    }
    let rest = &t[kw_end..];
    let (flags, args) = if matches!(
        keyword.as_str(),
        "ONBUILD"
            | "ENV"
            | "LABEL"
            | "ARG"
            | "MAINTAINER"
            | "USER"
            | "WORKDIR"
            | "EXPOSE"
            | "STOPSIGNAL"
            | "VOLUME"
            | "CMD"
            | "ENTRYPOINT"
            | "SHELL"
    ) {
        (Vec::new(), rest.trim())
    } else {
        let (f, a) = split_flags(rest);
        (f, a.trim())
    };
    let args_column =
        column + (logical.trim_start().len() - args.len().min(logical.trim_start().len())) as u32;
    let args_column = args_column.max(column);
    let onbuild = if keyword == "ONBUILD" && !args.is_empty() {
        // BuildKit refuses `ONBUILD ONBUILD`; hadolint parses it. A few are accepted, but nesting is
        // bounded: a few thousand nested ONBUILDs overflowed the stack.
        let mut nested = 0usize;
        let mut rest = args;
        while let Some(r) = rest
            .get(..7)
            .filter(|k| k.eq_ignore_ascii_case("ONBUILD"))
            .and_then(|_| rest.get(7..))
            .filter(|r| r.is_empty() || r.starts_with(char::is_whitespace))
        {
            nested += 1;
            if nested > MAX_ONBUILD_NESTING {
                return Err(LintError::Input(format!(
                    "{name}:{line}:{column}: ONBUILD nested more than {MAX_ONBUILD_NESTING} deep (nesting depth limit; BuildKit refuses `ONBUILD ONBUILD`)"
                )));
            }
            rest = r.trim_start();
        }
        Some(Box::new(parse_instruction(
            name,
            args,
            line,
            column + kw_end as u32 + 1,
        )?))
    } else {
        None
    };
    Ok(Instruction {
        keyword,
        line,
        column,
        end_line: line,
        flags,
        args: args.to_string(),
        args_column,
        heredocs: Vec::new(),
        onbuild,
    })
}

/// Splits words the way BuildKit does for `ENV`, `LABEL`, `ARG`: whitespace separates words outside
/// quotes; quotes are removed; the escape character escapes the next character (inside double quotes
/// only `"`, `$`, the escape character itself).
pub fn words(s: &str, esc: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut have = false;
    let mut quote: Option<char> = None;
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match quote {
            Some(q) if c == q => quote = None,
            Some('"') if c == esc => match it.peek() {
                Some(&n) if n == '"' || n == '$' || n == esc => {
                    cur.push(n);
                    it.next();
                }
                _ => cur.push(c),
            },
            Some(_) => cur.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                have = true;
            }
            None if c == esc => {
                if let Some(n) = it.next() {
                    cur.push(n);
                    have = true;
                }
            }
            None if c.is_whitespace() => {
                if have || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    have = false;
                }
            }
            None => {
                cur.push(c);
                have = true;
            }
        }
    }
    if have || !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Splits on whitespace only, keeping quotes (how BuildKit splits `COPY`/`ADD` shell-form arguments).
pub fn raw_words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_string).collect()
}

/// `KEY=VALUE` pairs of `ENV`/`LABEL` (or the legacy `ENV KEY VALUE` form).
pub fn key_values(args: &str, esc: char) -> Vec<(String, String)> {
    let ws = words(args, esc);
    let Some(first) = ws.first() else {
        return Vec::new();
    };
    if !first.contains('=') {
        // Legacy form: the first word is the key, the rest of the line is the value.
        let rest = args.trim_start()[raw_first_len(args.trim_start())..].trim();
        let v = words(rest, esc).join(" ");
        return vec![(first.clone(), v)];
    }
    ws.iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (w.clone(), String::new()),
        })
        .collect()
}

fn raw_first_len(s: &str) -> usize {
    s.find(char::is_whitespace).unwrap_or(s.len())
}

/// A `FROM` instruction's parts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BaseImage {
    /// The image reference as written, without tag and digest (`docker.io/library/debian`).
    pub image: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
    pub alias: Option<String>,
    pub platform: Option<String>,
}

impl BaseImage {
    pub fn parse(ins: &Instruction) -> BaseImage {
        let ws = raw_words(&ins.args);
        let mut b = BaseImage {
            platform: ins.flag_value("platform").map(str::to_string),
            ..Default::default()
        };
        let Some(reference) = ws.first() else {
            return b;
        };
        if ws.len() >= 3 && ws[1].eq_ignore_ascii_case("as") {
            b.alias = Some(ws[2].clone());
        }
        let (rest, digest) = match reference.split_once('@') {
            Some((r, d)) => (r, Some(d.to_string())),
            None => (reference.as_str(), None),
        };
        b.digest = digest;
        let last_slash = rest.rfind('/').map(|p| p + 1).unwrap_or(0);
        match rest[last_slash..].rfind(':') {
            Some(p) => {
                b.image = rest[..last_slash + p].to_string();
                b.tag = Some(rest[last_slash + p + 1..].to_string());
            }
            None => b.image = rest.to_string(),
        }
        b
    }

    /// The registry host when the first path component looks like one (`.` or `:` or `localhost`).
    pub fn registry(&self) -> Option<&str> {
        let (first, rest) = self.image.split_once('/')?;
        let _ = rest;
        if first.contains('.') || first.contains(':') || first == "localhost" {
            Some(first)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Dockerfile {
        parse("t", s.as_bytes()).unwrap()
    }

    #[test]
    fn continuations_comments_and_positions() {
        let d = p(
            "# syntax=docker/dockerfile:1\nFROM debian:12 AS build\n\n  RUN apt-get update \\\n# inner comment\n\n    && apt-get install -y curl\nUSER app\n",
        );
        assert_eq!(
            d.directives,
            vec![("syntax".into(), "docker/dockerfile:1".into())]
        );
        assert_eq!(d.instructions.len(), 3);
        let run = &d.instructions[1];
        assert_eq!((run.line, run.column, run.end_line), (4, 3, 7));
        assert_eq!(run.args, "apt-get update     && apt-get install -y curl");
        assert_eq!(
            d.comments.iter().map(|c| c.line).collect::<Vec<_>>(),
            vec![1, 5]
        );
        let b = BaseImage::parse(&d.instructions[0]);
        assert_eq!(
            (b.image.as_str(), b.tag.as_deref(), b.alias.as_deref()),
            ("debian", Some("12"), Some("build"))
        );
    }

    #[test]
    fn escape_directive_windows() {
        let d = p(
            "# escape=`\nFROM mcr.microsoft.com/windows/servercore:ltsc2022\nRUN powershell -Command `\n    Write-Host C:\\path\\x\nCOPY app C:\\app\\\n",
        );
        assert_eq!(d.escape, '`');
        assert_eq!(
            d.instructions[1].args,
            "powershell -Command     Write-Host C:\\path\\x"
        );
        assert_eq!(d.instructions[2].args, "app C:\\app\\");
    }

    #[test]
    fn heredocs_flags_exec_and_onbuild() {
        let d = p(
            "FROM alpine:3.20\nRUN --mount=type=cache,target=/var/cache/apk <<EOF\napk add curl\necho hi\nEOF\nCOPY <<-EOT /etc/x.conf\n\tkey=1\n\tEOT\nCMD [\"/bin/app\", \"--flag\"]\nONBUILD RUN make\n",
        );
        let run = &d.instructions[1];
        assert_eq!(run.mounts()[0].target, "/var/cache/apk");
        assert_eq!(run.heredocs[0].body, "apk add curl\necho hi");
        assert_eq!((run.line, run.end_line), (2, 5));
        assert_eq!(d.instructions[2].heredocs[0].body, "key=1");
        assert_eq!(
            d.instructions[3].exec_form(),
            Some(vec!["/bin/app".to_string(), "--flag".to_string()])
        );
        assert_eq!(d.instructions[4].onbuild.as_ref().unwrap().args, "make");
    }

    #[test]
    fn onbuild_nesting_is_bounded_and_many_stages_parse_in_linear_time() {
        // Issue 17: thousands of nested ONBUILDs overflowed the stack.
        let deep = format!("FROM a\n{}RUN true\n", "ONBUILD ".repeat(5000));
        let err = parse("Dockerfile", deep.as_bytes()).expect_err("too deep");
        let LintError::Input(m) = err;
        assert!(
            m.starts_with("Dockerfile:2:1:") && m.contains("more than 8 deep"),
            "{m}"
        );
        let ok = format!(
            "FROM a\n{}RUN true\n",
            "ONBUILD ".repeat(MAX_ONBUILD_NESTING)
        );
        let df = parse("Dockerfile", ok.as_bytes()).expect("8 deep is accepted");
        let mut ins = &df.instructions[1];
        for _ in 0..MAX_ONBUILD_NESTING {
            ins = ins.onbuild.as_deref().expect("nested");
        }
        assert!(ins.is("RUN"));
        // 10^5 stages: the parse is one pass (the whole Dockerfile is 3.6 MB).
        let mut big = String::from("FROM alpine:3.20 AS s0\n");
        for i in 1..100_000 {
            big.push_str(&format!("FROM s{} AS s{i}\nRUN echo {i}\n", i - 1));
        }
        let t = std::time::Instant::now();
        let df = parse("Dockerfile", big.as_bytes()).expect("big");
        assert_eq!(df.instructions.len(), 199_999);
        eprintln!("10^5 stages parsed in {:?}", t.elapsed());
    }

    #[test]
    fn junk_is_rejected_with_the_file_name() {
        let latin1 = parse(
            "latin1.Dockerfile",
            b"FROM debian:12\n# Maintainer: Ren\xe9 \xc0 Paris\nRUN echo \xe9t\xe9\n",
        )
        .unwrap();
        assert_eq!(latin1.instructions.len(), 2);
        let shift = parse("x", b"FROM a\nRUN echo $((x<<y))\nUSER 1\n").unwrap();
        assert_eq!(shift.instructions.len(), 3);
        for bad in [
            &b""[..],
            b"\n\n# only a comment\n",
            b"\x00\x01\x02ELF",
            b"\xff\xfe\xfa\x80\x81 garbage\xff\xfe\xfa\x80",
            b"hello world\n",
        ] {
            let e = parse("bad.Dockerfile", bad).unwrap_err().to_string();
            assert!(e.contains("bad.Dockerfile"), "{e}");
        }
        let d = parse("x", b"FROM a\nRUN cat <<EOF\nno end\n").unwrap();
        assert_eq!(d.instructions[1].heredocs[0].body, "no end\n");
    }

    #[test]
    fn env_forms() {
        assert_eq!(
            key_values("A=1 B=\"two words\" C", '\\'),
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "two words".into()),
                ("C".into(), "".into())
            ]
        );
        assert_eq!(
            key_values("PATH /usr/bin:$PATH", '\\'),
            vec![("PATH".into(), "/usr/bin:$PATH".into())]
        );
    }
}
