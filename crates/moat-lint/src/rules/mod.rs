//! The rule engine's view of a Dockerfile: stages, the stage each instruction belongs to, and the parsed
//! shell of every `RUN` (and `ONBUILD RUN`). Rules are plain functions from this model to hits.

pub mod dl;
pub mod moat;

use std::collections::HashMap;

use crate::dockerfile::{BaseImage, Dockerfile, Instruction, exec_form, key_values, words};
use crate::shell::{self, Script};

/// A rule firing at an instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// The rule raised (its metadata: id, severity, title...).
    pub rule: &'static crate::catalog::RuleMeta,
    pub line: u32,
    pub column: u32,
    pub end_line: u32,
    pub message: String,
}

/// One build stage.
#[derive(Debug, Clone)]
pub struct Stage {
    /// Index of its `FROM` in the instruction list.
    pub from: usize,
    pub base: BaseImage,
    /// The stage this one builds on (`FROM <earlier alias>`).
    pub parent: Option<usize>,
}

/// The shell program of a `RUN`, with whether it came from an `ONBUILD`.
pub struct RunScript<'a> {
    pub index: usize,
    pub ins: &'a Instruction,
    pub script: Script,
    pub onbuild: bool,
}

pub struct Model<'a> {
    /// Index into `runs` of the plain `RUN` at each instruction.
    plain_run: Vec<Option<usize>>,
    /// First instruction declaring each `ARG` name.
    arg_first: HashMap<String, usize>,
    /// Per stage, first instruction setting each `ENV` name.
    env_first: Vec<HashMap<String, usize>>,
    /// The same for `ENV`s before the first `FROM`.
    env_before_from: HashMap<String, usize>,
    pub df: &'a Dockerfile,
    pub stages: Vec<Stage>,
    /// Stage index of each instruction (`None` before the first `FROM`).
    pub stage_of: Vec<Option<usize>>,
    pub runs: Vec<RunScript<'a>>,
}

/// The shell text a `RUN` executes: the exec form joined, the here-document bodies when the
/// instruction is only here-documents (or feeds them to a shell), else the command line.
pub fn run_text(ins: &Instruction) -> Option<String> {
    if let Some(v) = exec_form(&ins.args) {
        return Some(v.join(" "));
    }
    if ins.heredocs.is_empty() {
        return Some(ins.args.clone());
    }
    let a = ins.args.trim();
    let bodies: Vec<&str> = ins.heredocs.iter().map(|h| h.body.as_str()).collect();
    // The command line without its here-document markers.
    let rest: Vec<&str> = a
        .split_whitespace()
        .filter(|w| !w.starts_with("<<"))
        .collect();
    if rest.is_empty() {
        // `RUN <<EOF`: the body is the script (unless a shebang names another interpreter).
        let body = bodies.join("\n");
        if let Some(shebang) = body.strip_prefix("#!") {
            let interp = shebang.lines().next().unwrap_or("");
            let is_sh = ["sh", "bash", "ash", "dash", "zsh"].iter().any(|s| {
                interp
                    .split_whitespace()
                    .any(|w| w.rsplit('/').next() == Some(s))
            });
            if !is_sh {
                return None;
            }
        }
        return Some(body);
    }
    let first = rest[0].rsplit('/').next().unwrap_or(rest[0]);
    if ["sh", "bash", "ash", "dash", "zsh"].contains(&first) && !rest.contains(&"-c") {
        // A shell reading the here-document on standard input.
        return Some(format!("{a}\n{}", bodies.join("\n")));
    }
    Some(a.to_string())
}

/// The shell of a `RUN`: no commands at all when it has a fatal syntax error (the shell would not run
/// it, and hadolint's shell parser gives its rules nothing either). Here-document bodies are data and
/// are not checked.
fn read_script(ins: &Instruction, text: &str) -> Script {
    if ins.heredocs.is_empty() && exec_form(&ins.args).is_none() && shell::has_fatal_error(text) {
        return Script::default();
    }
    shell::parse(text)
}

impl<'a> Model<'a> {
    pub fn new(df: &'a Dockerfile) -> Model<'a> {
        let mut stages: Vec<Stage> = Vec::new();
        let mut stage_of = Vec::with_capacity(df.instructions.len());
        let mut runs = Vec::new();
        // Last stage of each alias (ASCII-lower-cased, as BuildKit compares them): a parent is found
        // in one lookup, not by scanning every earlier stage (quadratic in the stage count).
        let mut by_alias: HashMap<String, usize> = HashMap::new();
        for (i, ins) in df.instructions.iter().enumerate() {
            if ins.is("FROM") {
                let base = BaseImage::parse(ins);
                let parent = if base.tag.is_none() {
                    by_alias.get(&base.image.to_ascii_lowercase()).copied()
                } else {
                    None
                };
                if let Some(a) = &base.alias {
                    by_alias.insert(a.to_ascii_lowercase(), stages.len());
                }
                stages.push(Stage {
                    from: i,
                    base,
                    parent,
                });
            }
            stage_of.push(if stages.is_empty() {
                None
            } else {
                Some(stages.len() - 1)
            });
            if ins.is("RUN") {
                if let Some(t) = run_text(ins) {
                    runs.push(RunScript {
                        index: i,
                        ins,
                        script: read_script(ins, &t),
                        onbuild: false,
                    });
                }
            } else if let Some(inner) = ins.onbuild.as_deref()
                && inner.is("RUN")
                && let Some(t) = run_text(inner)
            {
                runs.push(RunScript {
                    index: i,
                    ins,
                    script: read_script(inner, &t),
                    onbuild: true,
                });
            }
        }
        let mut plain_run = vec![None; df.instructions.len()];
        for (k, r) in runs.iter().enumerate() {
            if !r.onbuild {
                plain_run[r.index] = Some(k);
            }
        }
        let mut arg_first: HashMap<String, usize> = HashMap::new();
        let mut env_first: Vec<HashMap<String, usize>> = vec![HashMap::new(); stages.len()];
        let mut env_before_from: HashMap<String, usize> = HashMap::new();
        for (i, ins) in df.instructions.iter().enumerate() {
            if ins.is("ARG") {
                for w in words(&ins.args, df.escape) {
                    let k = w.split('=').next().unwrap_or("").to_string();
                    arg_first.entry(k).or_insert(i);
                }
            } else if ins.is("ENV") {
                let first = match stage_of[i] {
                    Some(s) => &mut env_first[s],
                    None => &mut env_before_from,
                };
                for (k, _) in key_values(&ins.args, df.escape) {
                    first.entry(k).or_insert(i);
                }
            }
        }
        Model {
            df,
            stages,
            stage_of,
            runs,
            plain_run,
            arg_first,
            env_first,
            env_before_from,
        }
    }

    /// The parsed plain `RUN` at instruction `idx`.
    pub fn run_at(&self, idx: usize) -> Option<&RunScript<'a>> {
        self.plain_run
            .get(idx)
            .copied()
            .flatten()
            .map(|k| &self.runs[k])
    }

    /// Whether `name` is declared by an `ARG` anywhere before instruction `upto`.
    pub fn arg_declared(&self, upto: usize, name: &str) -> bool {
        self.arg_first.get(name).is_some_and(|&i| i < upto)
    }

    /// Whether `name` is declared by an `ARG` anywhere before instruction `upto`, or by an `ENV` of the
    /// stage of `upto` (or a stage it builds on) before it.
    pub fn var_declared(&self, upto: usize, name: &str) -> bool {
        if self.arg_first.get(name).is_some_and(|&i| i < upto) {
            return true;
        }
        match self.stage_of.get(upto).copied().flatten() {
            Some(s) => self
                .chain(s)
                .into_iter()
                .any(|st| self.env_first[st].get(name).is_some_and(|&i| i < upto)),
            None => self.env_before_from.get(name).is_some_and(|&i| i < upto),
        }
    }

    pub fn ins(&self) -> &'a [Instruction] {
        &self.df.instructions
    }

    pub fn hit(
        &self,
        rule: &'static crate::catalog::RuleMeta,
        ins: &Instruction,
        message: impl Into<String>,
    ) -> Hit {
        Hit {
            rule,
            line: ins.line,
            column: ins.column,
            end_line: ins.end_line,
            message: message.into(),
        }
    }

    /// Stage indices from `s` up through its parents (itself first).
    pub fn chain(&self, s: usize) -> Vec<usize> {
        let mut out = vec![s];
        let mut cur = s;
        while let Some(p) = self.stages.get(cur).and_then(|st| st.parent) {
            if out.contains(&p) || out.len() > 64 {
                break;
            }
            out.push(p);
            cur = p;
        }
        out
    }

    /// Instructions of a stage (by index into the instruction list).
    pub fn stage_instructions(
        &self,
        s: usize,
    ) -> impl Iterator<Item = (usize, &'a Instruction)> + '_ {
        // Stages are contiguous: from their FROM up to the next stage's FROM.
        let start = self
            .stages
            .get(s)
            .map(|st| st.from)
            .unwrap_or(self.df.instructions.len());
        let end = self
            .stages
            .get(s + 1)
            .map(|st| st.from)
            .unwrap_or(self.df.instructions.len());
        self.df.instructions[start..end]
            .iter()
            .enumerate()
            .map(move |(k, i)| (start + k, i))
    }

    /// The final stage's index.
    pub fn final_stage(&self) -> Option<usize> {
        self.stages.len().checked_sub(1)
    }
}

/// Variable names referenced by `$NAME` / `${NAME...}` in a word.
pub fn referenced_vars(s: &str) -> Vec<String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let mut j = i + 1;
            let braced = b.get(j) == Some(&b'{');
            if braced {
                j += 1;
            }
            let start = j;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                j += 1;
            }
            if j > start {
                out.push(s[start..j].to_string());
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

/// Splits `COPY`/`ADD` arguments into words: the JSON form's strings, else whitespace-separated words
/// with quotes kept (BuildKit and hadolint split the shell form on whitespace, quotes or not).
pub fn path_words(args: &str) -> Vec<String> {
    match exec_form(args) {
        Some(v) => v,
        None => args.split_whitespace().map(str::to_string).collect(),
    }
}

/// Drops surrounding quotes.
pub fn drop_quotes(s: &str) -> &str {
    s.trim_matches(|c| c == '"' || c == '\'')
}
