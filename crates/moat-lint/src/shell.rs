//! A small POSIX-shell reader for `RUN` scripts: enough structure for rules to see commands and their
//! arguments rather than substrings. It understands quoting, escapes, `$VAR`/`${..}`/`$(..)`/backtick
//! expansions (commands inside substitutions are found too), pipelines, `&&`, `||`, `;`, `&`, subshells,
//! brace groups, `if`/`while`/`until`/`for`/`case`, redirections, comments and assignment prefixes.
//!
//! Arguments are "simplified" words: quotes removed, every expansion replaced by `${VAR}` — a rule can
//! tell that a word is variable but never guesses its value. This mirrors what hadolint (via ShellCheck)
//! hands to its rules, which is what keeps moat's DL rules in agreement with it.

/// One simple command.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Command {
    /// The command name as written (`apt-get`, `/usr/bin/pip3`).
    pub name: String,
    /// Arguments after the name, simplified.
    pub args: Vec<String>,
    /// `NAME=value` assignments before the name.
    pub env: Vec<(String, String)>,
    /// Arguments as written (quotes and expansions kept), parallel to `args`.
    pub raw_args: Vec<String>,
}

impl Command {
    /// Flags in hadolint's sense: `--name[=v]` gives `name`; `-abc` gives `a`, `b`, `c`; with the index
    /// of the argument they came from.
    pub fn flags(&self) -> Vec<(String, usize)> {
        let mut out = Vec::new();
        for (i, a) in self.args.iter().enumerate() {
            if a == "--" || a == "-" {
                continue;
            }
            if let Some(l) = a.strip_prefix("--") {
                out.push((l.split('=').next().unwrap_or("").to_string(), i));
            } else if let Some(s) = a.strip_prefix('-') {
                for c in s.chars() {
                    out.push((c.to_string(), i));
                }
            }
        }
        out
    }

    pub fn has_flag(&self, f: &str) -> bool {
        self.flags().iter().any(|(n, _)| n == f)
    }

    pub fn has_any_flag(&self, fs: &[&str]) -> bool {
        self.flags().iter().any(|(n, _)| fs.contains(&n.as_str()))
    }

    pub fn has_arg(&self, a: &str) -> bool {
        self.args.iter().any(|x| x == a)
    }

    pub fn has_any_arg(&self, a: &[&str]) -> bool {
        self.args.iter().any(|x| a.contains(&x.as_str()))
    }

    /// `name` is this command and one of `args` is among its arguments.
    pub fn is_with(&self, name: &str, args: &[&str]) -> bool {
        self.name == name && self.has_any_arg(args)
    }

    /// Arguments that are not flags.
    pub fn args_no_flags(&self) -> Vec<&str> {
        self.args_no_flags_dropping(&[])
    }

    /// Arguments that are not flags, also dropping the value argument that follows any of `value_flags`
    /// (e.g. `-t stable` for apt-get).
    pub fn args_no_flags_dropping(&self, value_flags: &[&str]) -> Vec<&str> {
        let flags = self.flags();
        let flag_idx: Vec<usize> = flags.iter().map(|(_, i)| *i).collect();
        let mut drop: Vec<usize> = Vec::new();
        for (n, i) in &flags {
            if value_flags.contains(&n.as_str()) && !self.args[*i].contains('=') {
                // The value is the next argument that is not itself a flag-bearing argument index.
                drop.push(i + 1);
            }
        }
        self.args
            .iter()
            .enumerate()
            .filter(|(i, _)| !flag_idx.contains(i) && !drop.contains(i))
            .map(|(_, a)| a.as_str())
            .collect()
    }

    /// The command a wrapper runs (`sudo -u app chmod ...` → `chmod ...`); itself when not wrapped.
    /// Used by moat's own rules, which look through `sudo`, `env`, `exec`, `nohup`, `nice`, `gosu` and
    /// `su-exec` (hadolint's rules do not).
    pub fn unwrapped(&self) -> Command {
        let mut cur = self.clone();
        for _ in 0..4 {
            let (skip_values, takes_user): (&[&str], bool) = match cur.basename() {
                "sudo" => (
                    &["-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U"],
                    false,
                ),
                "env" => (&["-u", "-C", "-S"], false),
                "exec" | "nohup" | "time" | "command" => (&[], false),
                "nice" => (&["-n"], false),
                "gosu" | "su-exec" | "chroot" => (&[], true),
                _ => return cur,
            };
            let mut i = 0;
            let args = &cur.args;
            while i < args.len() {
                let a = &args[i];
                if a == "--" {
                    i += 1;
                    break;
                }
                if skip_values.contains(&a.as_str()) {
                    i += 2;
                } else if a.starts_with('-') || (cur.basename() == "env" && a.contains('=')) {
                    i += 1;
                } else {
                    break;
                }
            }
            if takes_user {
                i += 1;
            }
            if i >= cur.args.len() {
                return cur;
            }
            cur = Command {
                name: cur.args[i].clone(),
                args: cur.args[i + 1..].to_vec(),
                env: Vec::new(),
                raw_args: cur
                    .raw_args
                    .get(i + 1..)
                    .map(<[String]>::to_vec)
                    .unwrap_or_default(),
            };
        }
        cur
    }

    /// Base name of the command (`/usr/bin/bash` → `bash`).
    pub fn basename(&self) -> &str {
        self.name.rsplit('/').next().unwrap_or(&self.name)
    }
}

/// A parsed script.
#[derive(Debug, Clone, Default)]
pub struct Script {
    pub commands: Vec<Command>,
    /// A `|` or `|&` pipeline appears.
    pub has_pipes: bool,
    /// Pipelines as lists of command indices, for rules about `curl | sh`.
    pub pipelines: Vec<Vec<usize>>,
}

impl Script {
    pub fn any(&self, f: impl Fn(&Command) -> bool) -> bool {
        self.commands.iter().any(f)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word {
        raw: String,
        val: String,
        inner: Vec<String>,
    },
    Op(&'static str),
    Newline,
}

const MAX_DEPTH: usize = 32;

struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
}

impl<'a> Lexer<'a> {
    fn peek(&self, o: usize) -> u8 {
        *self.s.get(self.i + o).unwrap_or(&0)
    }

    /// Finds the end of a `$(`...`)` starting after `$(`, honoring quotes and nesting; returns the index of
    /// the closing paren.
    fn match_paren(&self, mut j: usize) -> usize {
        let mut depth = 1;
        while j < self.s.len() {
            match self.s[j] {
                b'\\' => j += 1,
                b'\'' => {
                    j += 1;
                    while j < self.s.len() && self.s[j] != b'\'' {
                        j += 1;
                    }
                }
                b'"' => {
                    j += 1;
                    while j < self.s.len() && self.s[j] != b'"' {
                        if self.s[j] == b'\\' {
                            j += 1;
                        }
                        j += 1;
                    }
                }
                b'(' => depth += 1,
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        return j;
                    }
                }
                _ => {}
            }
            j += 1;
        }
        self.s.len()
    }

    /// Reads a `$...` expansion at `self.i` (which points at `$`), returning inner script text if it is a
    /// command substitution.
    fn dollar(&mut self, inner: &mut Vec<String>) -> bool {
        let n = self.peek(1);
        if n == b'(' {
            if self.peek(2) == b'(' {
                // Arithmetic: skip to the matching `))`.
                let end = self.match_paren(self.i + 2);
                self.i = (end + 2).min(self.s.len());
                return true;
            }
            let end = self.match_paren(self.i + 2);
            inner.push(
                String::from_utf8_lossy(&self.s[self.i + 2..end.min(self.s.len())]).into_owned(),
            );
            self.i = (end + 1).min(self.s.len());
            return true;
        }
        if n == b'{' {
            let mut j = self.i + 2;
            let mut depth = 1;
            while j < self.s.len() {
                match self.s[j] {
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    b'\\' => j += 1,
                    _ => {}
                }
                j += 1;
            }
            self.i = (j + 1).min(self.s.len());
            return true;
        }
        if n.is_ascii_alphabetic() || n == b'_' {
            let mut j = self.i + 1;
            while j < self.s.len() && (self.s[j].is_ascii_alphanumeric() || self.s[j] == b'_') {
                j += 1;
            }
            self.i = j;
            return true;
        }
        if n.is_ascii_digit() || b"@*#?$!-".contains(&n) && n != 0 {
            self.i += 2;
            return true;
        }
        if n == b'\'' {
            // $'...' ANSI-C string: treat like a single-quoted word.
            return false;
        }
        false
    }

    fn next(&mut self) -> Option<Tok> {
        // Skip blanks and comments.
        loop {
            let c = self.peek(0);
            if c == b' ' || c == b'\t' || c == b'\r' {
                self.i += 1;
            } else if c == b'\\' && self.peek(1) == b'\n' {
                self.i += 2;
            } else if c == b'#' {
                while self.i < self.s.len() && self.s[self.i] != b'\n' {
                    self.i += 1;
                }
            } else {
                break;
            }
        }
        if self.i >= self.s.len() {
            return None;
        }
        let c = self.peek(0);
        let two = [c, self.peek(1)];
        let op: Option<&'static str> = match &two {
            b"&&" => Some("&&"),
            b"||" => Some("||"),
            b";;" => Some(";;"),
            b"|&" => Some("|&"),
            b">>" => Some(">>"),
            b">&" => Some(">&"),
            b"<&" => Some("<&"),
            b"&>" => Some("&>"),
            b">|" => Some(">|"),
            b"<>" => Some("<>"),
            b"<<" => {
                if self.peek(2) == b'<' {
                    Some("<<<")
                } else if self.peek(2) == b'-' {
                    Some("<<-")
                } else {
                    Some("<<")
                }
            }
            _ => None,
        };
        if let Some(o) = op {
            self.i += o.len();
            if o == ";;" && self.peek(0) == b'&' {
                self.i += 1;
            }
            return Some(Tok::Op(o));
        }
        let single: Option<&'static str> = match c {
            b'|' => Some("|"),
            b'&' => Some("&"),
            b';' => Some(";"),
            b'(' => Some("("),
            b')' => Some(")"),
            b'<' => Some("<"),
            b'>' => Some(">"),
            _ => None,
        };
        if let Some(o) = single {
            self.i += 1;
            return Some(Tok::Op(o));
        }
        if c == b'\n' {
            self.i += 1;
            return Some(Tok::Newline);
        }
        // A word.
        let start = self.i;
        let mut val: Vec<u8> = Vec::new();
        let mut inner = Vec::new();
        while self.i < self.s.len() {
            let c = self.s[self.i];
            match c {
                b' ' | b'\t' | b'\n' | b'\r' | b'|' | b'&' | b';' | b'<' | b'>' | b'(' | b')' => {
                    break;
                }
                b'\\' => {
                    if self.peek(1) == b'\n' {
                        self.i += 2;
                    } else {
                        if self.i + 1 < self.s.len() {
                            val.push(self.s[self.i + 1]);
                        }
                        self.i += 2;
                    }
                }
                b'\'' => {
                    self.i += 1;
                    while self.i < self.s.len() && self.s[self.i] != b'\'' {
                        val.push(self.s[self.i]);
                        self.i += 1;
                    }
                    self.i += 1;
                }
                b'"' => {
                    self.i += 1;
                    while self.i < self.s.len() && self.s[self.i] != b'"' {
                        let d = self.s[self.i];
                        if d == b'\\' && matches!(self.peek(1), b'"' | b'\\' | b'$' | b'`' | b'\n')
                        {
                            if self.peek(1) != b'\n' {
                                val.push(self.peek(1));
                            }
                            self.i += 2;
                        } else if d == b'$' && self.dollar(&mut inner) {
                            val.extend_from_slice(b"${VAR}");
                        } else if d == b'`' {
                            self.backtick(&mut inner);
                            val.extend_from_slice(b"${VAR}");
                        } else {
                            val.push(d);
                            self.i += 1;
                        }
                    }
                    self.i += 1;
                }
                b'$' => {
                    if self.peek(1) == b'\'' {
                        self.i += 2;
                        while self.i < self.s.len() && self.s[self.i] != b'\'' {
                            if self.s[self.i] == b'\\' {
                                self.i += 1;
                            }
                            if self.i < self.s.len() {
                                val.push(self.s[self.i]);
                            }
                            self.i += 1;
                        }
                        self.i += 1;
                    } else if self.dollar(&mut inner) {
                        val.extend_from_slice(b"${VAR}");
                    } else {
                        val.push(b'$');
                        self.i += 1;
                    }
                }
                b'`' => {
                    self.backtick(&mut inner);
                    val.extend_from_slice(b"${VAR}");
                }
                _ => {
                    val.push(c);
                    self.i += 1;
                }
            }
        }
        let end = self.i.min(self.s.len());
        // An IO number (`2>&1`): part of the redirection, not a word.
        if end > start
            && self.s[start..end].iter().all(u8::is_ascii_digit)
            && matches!(self.peek(0), b'<' | b'>')
        {
            return self.next();
        }
        Some(Tok::Word {
            raw: String::from_utf8_lossy(&self.s[start..end]).into_owned(),
            val: String::from_utf8_lossy(&val).into_owned(),
            inner,
        })
    }

    fn backtick(&mut self, inner: &mut Vec<String>) {
        let mut j = self.i + 1;
        while j < self.s.len() && self.s[j] != b'`' {
            if self.s[j] == b'\\' {
                j += 1;
            }
            j += 1;
        }
        inner.push(String::from_utf8_lossy(&self.s[self.i + 1..j.min(self.s.len())]).into_owned());
        self.i = (j + 1).min(self.s.len());
    }
}

fn is_assignment(raw: &str) -> Option<(String, String)> {
    let (k, _) = raw.split_once('=')?;
    let k = k.strip_suffix('+').unwrap_or(k);
    if !k.is_empty()
        && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !k.as_bytes()[0].is_ascii_digit()
    {
        Some((k.to_string(), String::new()))
    } else {
        None
    }
}

/// Parses a shell script. Never fails: unknown constructs degrade to words.
pub fn parse(script: &str) -> Script {
    let mut out = Script::default();
    parse_into(script, 0, &mut out);
    out
}

fn parse_into(script: &str, depth: usize, out: &mut Script) {
    if depth > MAX_DEPTH {
        return;
    }
    let mut lx = Lexer {
        s: script.as_bytes(),
        i: 0,
        depth,
    };
    let _ = lx.depth;
    let mut toks = Vec::new();
    while let Some(t) = lx.next() {
        toks.push(t);
    }
    // Walk tokens.
    #[derive(PartialEq)]
    enum Mode {
        Start,
        InCommand,
        ForHead,
        CaseWord,
        CasePattern,
        DoubleBracket,
    }
    let mut mode = Mode::Start;
    let mut single_bracket = false;
    let mut cur: Option<Command> = None;
    let mut cur_inner: Vec<String> = Vec::new();
    let mut pipeline: Vec<usize> = Vec::new();
    let mut skip_next_word = false;
    let mut pending_heredocs = 0usize;
    let finish = |cur: &mut Option<Command>,
                  inner: &mut Vec<String>,
                  out: &mut Script,
                  pipeline: &mut Vec<usize>| {
        if let Some(c) = cur.take()
            && !c.name.is_empty()
        {
            out.commands.push(c);
            pipeline.push(out.commands.len() - 1);
        }
        for s in inner.drain(..) {
            parse_into(&s, depth + 1, out);
        }
    };
    let end_pipeline = |pipeline: &mut Vec<usize>, out: &mut Script| {
        if pipeline.len() > 1 {
            out.pipelines.push(std::mem::take(pipeline));
        } else {
            pipeline.clear();
        }
    };
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        i += 1;
        match t {
            Tok::Newline => {
                let _ = pending_heredocs;
                pending_heredocs = 0;
                finish(&mut cur, &mut cur_inner, out, &mut pipeline);
                end_pipeline(&mut pipeline, out);
                if mode == Mode::ForHead || mode == Mode::InCommand {
                    mode = Mode::Start;
                }
            }
            Tok::Op(o) => {
                let o = *o;
                if mode == Mode::DoubleBracket {
                    continue;
                }
                if mode == Mode::CasePattern {
                    if o == ")" {
                        mode = Mode::Start;
                    }
                    continue;
                }
                match o {
                    "<" | ">" | ">>" | ">&" | "<&" | "&>" | ">|" | "<>" | "<<<" => {
                        skip_next_word = true;
                    }
                    "<<" | "<<-" => {
                        skip_next_word = true;
                        pending_heredocs += 1;
                    }
                    "|" | "|&" => {
                        out.has_pipes = true;
                        finish(&mut cur, &mut cur_inner, out, &mut pipeline);
                        mode = Mode::Start;
                    }
                    "(" => {
                        // Subshell, or a function definition `name ( )`.
                        if mode == Mode::InCommand && matches!(toks.get(i), Some(Tok::Op(")"))) {
                            cur = None;
                            i += 1;
                        }
                        mode = Mode::Start;
                    }
                    ";;" => {
                        finish(&mut cur, &mut cur_inner, out, &mut pipeline);
                        end_pipeline(&mut pipeline, out);
                        mode = Mode::CasePattern;
                    }
                    _ => {
                        finish(&mut cur, &mut cur_inner, out, &mut pipeline);
                        end_pipeline(&mut pipeline, out);
                        mode = Mode::Start;
                    }
                }
            }
            Tok::Word { raw, val, inner } => {
                if skip_next_word {
                    skip_next_word = false;
                    // Substitutions in redirection targets still run.
                    cur_inner.extend(inner.iter().cloned());
                    continue;
                }
                match mode {
                    Mode::DoubleBracket => {
                        if raw == "]]" || (single_bracket && raw == "]") {
                            mode = Mode::InCommand;
                        }
                        cur_inner.extend(inner.iter().cloned());
                        continue;
                    }
                    Mode::ForHead => {
                        if raw == "do" {
                            mode = Mode::Start;
                        }
                        continue;
                    }
                    Mode::CaseWord => {
                        if raw == "in" {
                            mode = Mode::CasePattern;
                        }
                        cur_inner.extend(inner.iter().cloned());
                        continue;
                    }
                    Mode::CasePattern => {
                        if raw == "esac" {
                            mode = Mode::InCommand;
                        }
                        continue;
                    }
                    Mode::Start => {
                        match raw.as_str() {
                            "if" | "then" | "else" | "elif" | "do" | "while" | "until" | "{"
                            | "!" => continue,
                            // ShellCheck (so hadolint) sees `time` as a command of its own besides
                            // the command it times.
                            "time" => {
                                out.commands.push(Command {
                                    name: "time".into(),
                                    ..Default::default()
                                });
                                continue;
                            }
                            "fi" | "done" | "}" => {
                                mode = Mode::InCommand;
                                continue;
                            }
                            "esac" => {
                                mode = Mode::InCommand;
                                continue;
                            }
                            "for" | "select" => {
                                mode = Mode::ForHead;
                                continue;
                            }
                            "case" => {
                                mode = Mode::CaseWord;
                                continue;
                            }
                            // Conditions are not commands (ShellCheck parses `[ .. ]` and `[[ .. ]]`
                            // as conditions, so hadolint's rules never see them).
                            "[[" | "[" => {
                                single_bracket = raw == "[";
                                mode = Mode::DoubleBracket;
                                continue;
                            }
                            "function" => {
                                // `function name {` : skip the name.
                                i += 1;
                                continue;
                            }
                            _ => {}
                        }
                        if raw.starts_with("((") {
                            continue;
                        }
                        let c = cur.get_or_insert_with(Command::default);
                        cur_inner.extend(inner.iter().cloned());
                        if c.name.is_empty() {
                            if let Some((k, _)) = is_assignment(raw) {
                                let v = val
                                    .split_once('=')
                                    .map(|(_, v)| v.to_string())
                                    .unwrap_or_default();
                                c.env.push((k, v));
                                continue;
                            }
                            c.name = val.clone();
                            mode = Mode::InCommand;
                        }
                    }
                    Mode::InCommand => {
                        cur_inner.extend(inner.iter().cloned());
                        match cur.as_mut() {
                            Some(c) => {
                                c.args.push(val.clone());
                                c.raw_args.push(raw.clone());
                            }
                            None => {
                                // After `fi`/`done`/`}`: trailing words are unusual; ignore.
                            }
                        }
                    }
                }
            }
        }
    }
    finish(&mut cur, &mut cur_inner, out, &mut pipeline);
    end_pipeline(&mut pipeline, out);
}

/// Whether the script has a syntax error that stops a shell parser outright: an unterminated quote,
/// backtick or `$(`, an unclosed `(`, a control operator with no command after it (`a &&` at the end,
/// `a | | b`). ShellCheck gives hadolint no commands for such a script, and `sh` would not
/// run it; rules then see no commands either. A stray `)` only stops parsing late, so it is not fatal.
pub fn has_fatal_error(script: &str) -> bool {
    let b = script.as_bytes();
    let mut i = 0;
    let mut depth: i64 = 0;
    let word_start = |i: usize| {
        i == 0
            || matches!(
                b[i - 1],
                b' ' | b'\t' | b'\n' | b';' | b'&' | b'|' | b'(' | b')'
            )
    };
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'\'' => match b[i + 1..].iter().position(|&c| c == b'\'') {
                Some(p) => i += p + 2,
                None => return true,
            },
            b'"' => {
                let mut j = i + 1;
                while j < b.len() && b[j] != b'"' {
                    if b[j] == b'\\' {
                        j += 1;
                    }
                    j += 1;
                }
                if j >= b.len() {
                    return true;
                }
                i = j + 1;
            }
            b'`' => match b[i + 1..].iter().position(|&c| c == b'`') {
                Some(p) => i += p + 2,
                None => return true,
            },
            b'#' if word_start(i) => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'(' => {
                depth += 1;
                i += 1;
            }
            b')' => {
                depth -= 1;
                i += 1;
            }
            _ => i += 1,
        }
    }
    if depth > 0 {
        return true;
    }
    // Control operators with no command on one side.
    let mut lx = Lexer {
        s: b,
        i: 0,
        depth: 0,
    };
    let control = |o: &str| matches!(o, "&&" | "||" | "|" | "|&" | ";" | "&");
    let mut prev: Option<&'static str> = Some(";");
    while let Some(t) = lx.next() {
        match t {
            Tok::Op(o) if control(o) || o == ";;" => {
                // An operator that needs a command after it (`&&`, `||`, `|`) followed by another
                // operator is fatal; after `;` or `&` ShellCheck only stops parsing late.
                if matches!(prev, Some("&&" | "||" | "|" | "|&")) {
                    return true;
                }
                prev = Some(o);
            }
            // A newline after `&&`, `||` or `|` continues the command list.
            Tok::Newline => {}
            _ => prev = None,
        }
    }
    matches!(prev, Some("&&" | "||" | "|" | "|&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: &str) -> Vec<String> {
        parse(s).commands.into_iter().map(|c| c.name).collect()
    }

    #[test]
    fn commands_and_operators() {
        assert_eq!(
            names("apt-get update && apt-get install -y curl; rm -rf /var/lib/apt/lists/*"),
            ["apt-get", "apt-get", "rm"]
        );
        let s = parse("curl -fsSL https://x | sh");
        assert!(s.has_pipes);
        assert_eq!(s.pipelines, vec![vec![0, 1]]);
        assert!(!parse("a || b").has_pipes);
        let c =
            &parse("FOO=1 BAR=\"x y\" pip install 'a==1' \"$HOME/x\" >/dev/null 2>&1").commands[0];
        assert_eq!(c.name, "pip");
        assert_eq!(c.args, ["install", "a==1", "${VAR}/x"]);
        assert_eq!(c.env.len(), 2);
    }

    #[test]
    fn compound_commands() {
        assert_eq!(
            names(
                "set -eux; arch=\"$(dpkg --print-architecture)\"; case \"$arch\" in amd64) url=x ;; arm64|aarch64) echo a ;; *) exit 1 ;; esac; for f in a b; do chmod +x \"$f\"; done; if [ -f x ]; then rm x; fi"
            ),
            ["set", "dpkg", "echo", "exit", "chmod", "rm"]
        );
        assert_eq!(
            names("( cd /x && make ) || { echo fail; exit 1; }"),
            ["cd", "make", "echo", "exit"]
        );
        assert_eq!(names("echo `uname -m` $(( 1 + 2 ))"), ["echo", "uname"]);
        assert_eq!(names("[[ -n $x ]] && echo y"), ["echo"]);
    }

    #[test]
    fn fatal_syntax_errors() {
        for bad in [
            "a && echo it's",
            "a && echo \"x",
            "a && (echo x",
            "a &&",
            "a | | b",
            "a && || b",
            "echo `x",
            "echo $(x",
        ] {
            assert!(has_fatal_error(bad), "{bad}");
        }
        for good in [
            "a & && b",
            "a && b",
            "a &&\n b",
            "a && echo x)",
            "echo \"it's\" 'a\"b'",
            "case x in a) b ;; esac",
            "a; b &\nc",
            "a & && b",
            "echo $((1+2)) # it's",
            "x=$(echo \"$(y)\")",
            "",
        ] {
            assert!(!has_fatal_error(good), "{good}");
        }
    }

    #[test]
    fn wrappers_are_seen_through() {
        let c = parse("sudo -u app -E chmod -R 777 /x").commands[0].unwrapped();
        assert_eq!((c.name.as_str(), c.args.len()), ("chmod", 3));
        assert_eq!(
            parse("gosu app env A=1 curl x").commands[0]
                .unwrapped()
                .name,
            "curl"
        );
        assert_eq!(parse("ls -l").commands[0].unwrapped().name, "ls");
    }

    #[test]
    fn flags_like_hadolint() {
        let c = &parse("apt-get install -yq --no-install-recommends -t stable foo=1").commands[0];
        let f: Vec<String> = c.flags().into_iter().map(|x| x.0).collect();
        assert_eq!(f, ["y", "q", "no-install-recommends", "t"]);
        assert_eq!(c.args_no_flags_dropping(&["t"]), ["install", "foo=1"]);
    }
}
