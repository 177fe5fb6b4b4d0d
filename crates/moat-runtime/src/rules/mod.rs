//! Falco's rule language: loading rule files (rules, macros, lists, `append`, `override`, exceptions,
//! `enabled`), compiling every rule's condition ([`compile`]), and evaluating events against the
//! compiled set ([`Engine`]). A rule that uses something moat does not provide (a field, a plugin
//! source, an operator) is reported in [`Engine::skipped`] with the reason and never evaluated.

pub mod compile;
pub mod cond;
pub mod dns;
pub mod evttype;
pub mod fields;
pub mod k8saudit;
pub mod output;

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::event::Event;
use compile::{Expr, Scope};
use cond::Lists;
use output::Template;

/// Falco priorities, most severe first.
/// Serialized as Falco's JSON output spells them (`Warning`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Priority {
    Emergency,
    Alert,
    Critical,
    Error,
    Warning,
    Notice,
    Informational,
    Debug,
}

impl Priority {
    pub fn parse(s: &str) -> Option<Priority> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "emergency" => Priority::Emergency,
            "alert" => Priority::Alert,
            "critical" => Priority::Critical,
            "error" => Priority::Error,
            "warning" | "warn" => Priority::Warning,
            "notice" => Priority::Notice,
            "informational" | "info" => Priority::Informational,
            "debug" => Priority::Debug,
            _ => return None,
        })
    }
    /// Falco's capitalised spelling (`Warning`).
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Emergency => "Emergency",
            Priority::Alert => "Alert",
            Priority::Critical => "Critical",
            Priority::Error => "Error",
            Priority::Warning => "Warning",
            Priority::Notice => "Notice",
            Priority::Informational => "Informational",
            Priority::Debug => "Debug",
        }
    }
}

/// A fatal problem with a rule file: it cannot be read or is not YAML of the expected shape.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: not valid YAML: {message}")]
    Yaml { file: String, message: String },
    #[error("{file}: expected a YAML sequence of rule, macro and list items at the top level")]
    Shape { file: String },
    #[error("{file}: larger than the {MAX_RULES_FILE}-byte (64 MiB) limit for a rules file")]
    TooLarge { file: String },
}

/// Largest rules file read (64 MiB): Falco's own files are well under 1 MiB; the bound keeps a hostile
/// or endless file (`/dev/zero`) from exhausting memory.
pub const MAX_RULES_FILE: u64 = 64 << 20;

/// Where an item was defined.
#[derive(Debug, Clone, Serialize)]
pub struct Origin {
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}", self.file, l),
            None => f.write_str(&self.file),
        }
    }
}

/// One exception block of a rule.
#[derive(Debug, Clone)]
struct Exception {
    name: String,
    fields: Vec<String>,
    single_field: bool,
    comps: Vec<String>,
    values: Vec<Value>,
}

#[derive(Debug, Clone)]
struct RuleDef {
    name: String,
    desc: String,
    condition: String,
    output: String,
    priority: Result<Priority, String>,
    tags: Vec<String>,
    enabled: bool,
    source: String,
    exceptions: Vec<Exception>,
    origin: Origin,
    mitre: Vec<String>,
    response: Option<String>,
    problem: Option<String>,
}

/// A rule the engine will not evaluate, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub rule: String,
    pub reason: String,
}

/// A compiled, evaluable rule.
#[derive(Debug)]
pub struct Rule {
    pub name: String,
    pub desc: String,
    pub priority: Priority,
    pub tags: Vec<String>,
    pub enabled: bool,
    pub origin: Origin,
    /// MITRE ATT&CK technique ids (from moat's `mitre:` key, or `T####` tags).
    pub mitre: Vec<String>,
    /// What to check and how to contain (moat's `response:` key).
    pub response: Option<String>,
    pub expr: Expr,
    pub output: Template,
    /// The condition as evaluated: the rule's text and its exceptions as `and not (...)`.
    pub condition: String,
}

impl Rule {
    /// The event types the rule can match (`None`: any event type).
    pub fn event_types(&self) -> Option<Vec<&'static str>> {
        let t = compile::types_of(&self.expr);
        if t == evttype::TypeSet::all() {
            return None;
        }
        Some(
            evttype::NAMES
                .iter()
                .enumerate()
                .filter(|(i, _)| *i > 0 && t.contains(*i as u16))
                .map(|(_, n)| *n)
                .collect(),
        )
    }
}

/// Collects rule files in order, applying Falco's redefinition, `append` and `override` semantics.
#[derive(Default)]
pub struct Loader {
    lists: Vec<(String, Vec<String>)>,
    macros: Vec<(String, String, Origin)>,
    rules: Vec<RuleDef>,
    warnings: Vec<String>,
    /// Items that append to or override something not defined before them (Falco refuses these files;
    /// moat warns, and [`Loader::invalid_appends`] lets a caller refuse too).
    missing_appends: Vec<String>,
    /// Rule, macro and list items seen in all files so far.
    definitions: usize,
}

fn as_str(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn str_list(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::Array(a) => a.iter().map(as_str).collect(),
        Value::Null => Some(vec![]),
        _ => None,
    }
}

/// Line numbers of the top-level sequence items (`- ` at column 0), in order.
fn item_lines(text: &str) -> Vec<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with("- ") || *l == "-")
        .map(|(i, _)| i + 1)
        .collect()
}

impl Loader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a rule file from disk, read with a bound of [`MAX_RULES_FILE`] bytes (a device or FIFO has
    /// no meaningful size in its metadata, so the bound is applied while reading).
    pub fn add_file(&mut self, path: &Path) -> Result<(), LoadError> {
        let file = path.display().to_string();
        // Non-blocking open, type checked on the descriptor: a FIFO or device is refused by name.
        let f = moat_fsio::open_regular(path, moat_fsio::Follow::Always).map_err(|e| {
            LoadError::Read {
                file: file.clone(),
                source: match e {
                    moat_fsio::FsError::Io { source, .. } => source,
                    other => std::io::Error::other(other.to_string()),
                },
            }
        })?;
        self.add_reader(&file, f)
    }

    /// Adds rule text read from `r` (a file, standard input), bounded by [`MAX_RULES_FILE`] bytes.
    pub fn add_reader(&mut self, file: &str, r: impl std::io::Read) -> Result<(), LoadError> {
        use std::io::Read;
        let mut bytes = Vec::new();
        r.take(MAX_RULES_FILE + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| LoadError::Read {
                file: file.into(),
                source,
            })?;
        if bytes.len() as u64 > MAX_RULES_FILE {
            return Err(LoadError::TooLarge { file: file.into() });
        }
        let text = String::from_utf8(bytes).map_err(|e| LoadError::Yaml {
            file: file.into(),
            message: format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
        })?;
        self.add_str(file, &text)
    }

    /// Rule, macro and list items loaded so far (0 means every file was empty or held none).
    pub fn definitions(&self) -> usize {
        self.definitions
    }

    /// Adds rule text; `file` names it in messages.
    pub fn add_str(&mut self, file: &str, text: &str) -> Result<(), LoadError> {
        let docs: Value = if text.trim().is_empty() {
            Value::Array(vec![])
        } else {
            serde_saphyr::from_str(text).map_err(|e| LoadError::Yaml {
                file: file.into(),
                message: e.to_string(),
            })?
        };
        let items = match docs {
            Value::Array(a) => a,
            Value::Null => vec![],
            _ => return Err(LoadError::Shape { file: file.into() }),
        };
        let found = items
            .iter()
            .filter(|i| i.get("rule").or(i.get("macro")).or(i.get("list")).is_some())
            .count();
        if found == 0 {
            self.warnings
                .push(format!("{file}: no rules, macros or lists"));
        }
        self.definitions += found;
        let lines = item_lines(text);
        let lines_ok = lines.len() == items.len();
        for (i, item) in items.iter().enumerate() {
            let origin = Origin {
                file: file.into(),
                line: if lines_ok { Some(lines[i]) } else { None },
            };
            self.add_item(item, origin);
        }
        Ok(())
    }

    fn warn(&mut self, origin: &Origin, msg: String) {
        self.warnings.push(format!("{origin}: {msg}"));
    }

    fn warn_missing(&mut self, origin: &Origin, msg: String) {
        self.missing_appends.push(format!("{origin}: {msg}"));
        self.warn(origin, msg);
    }

    /// Appends and overrides of lists, macros or rules that no earlier item defines. Falco refuses
    /// such a set of files (the exception or addition the user meant would silently not apply).
    pub fn invalid_appends(&self) -> &[String] {
        &self.missing_appends
    }

    fn add_item(&mut self, item: &Value, origin: Origin) {
        let Value::Object(m) = item else {
            self.warn(&origin, "item is not a mapping; ignored".into());
            return;
        };
        if let Some(name) = m.get("list") {
            let Some(name) = as_str(name) else {
                return self.warn(&origin, "list name is not a string".into());
            };
            let Some(items) = m.get("items").and_then(str_list) else {
                return self.warn(
                    &origin,
                    format!("list '{name}': 'items' must be a sequence of strings"),
                );
            };
            let append = is_append(m, "items");
            match self.lists.iter_mut().find(|(n, _)| *n == name) {
                Some((_, existing)) if append => existing.extend(items),
                Some((_, existing)) => *existing = items,
                None if append => self.warn_missing(
                    &origin,
                    format!("list '{name}' has append but no list by that name exists"),
                ),
                None => self.lists.push((name, items)),
            }
        } else if let Some(name) = m.get("macro") {
            let Some(name) = as_str(name) else {
                return self.warn(&origin, "macro name is not a string".into());
            };
            let Some(cond) = m.get("condition").and_then(as_str) else {
                return self.warn(&origin, format!("macro '{name}': missing 'condition'"));
            };
            let append = is_append(m, "condition");
            match self.macros.iter_mut().find(|(n, _, _)| *n == name) {
                Some((_, c, _)) if append => *c = format!("{c} {cond}"),
                Some((_, c, o)) => {
                    *c = cond;
                    *o = origin;
                }
                None if append => self.warn_missing(
                    &origin,
                    format!("macro '{name}' has append but no macro by that name exists"),
                ),
                None => self.macros.push((name, cond, origin)),
            }
        } else if let Some(name) = m.get("rule") {
            let Some(name) = as_str(name) else {
                return self.warn(&origin, "rule name is not a string".into());
            };
            self.add_rule(name, m, origin);
        } else if m.contains_key("required_engine_version")
            || m.contains_key("required_plugin_versions")
            || m.contains_key("engine_version")
        {
            // Version requirements of Falco's engine and plugins: moat implements the language itself.
        } else {
            let keys: Vec<_> = m.keys().cloned().collect();
            self.warn(&origin, format!("unknown item with keys {keys:?}; ignored"));
        }
    }

    fn add_rule(&mut self, name: String, m: &serde_json::Map<String, Value>, origin: Origin) {
        let overrides: HashMap<String, String> = match m.get("override") {
            Some(Value::Object(o)) => o
                .iter()
                .filter_map(|(k, v)| as_str(v).map(|v| (k.clone(), v)))
                .collect(),
            _ => HashMap::new(),
        };
        let legacy_append = m.get("append").and_then(Value::as_bool).unwrap_or(false);
        let mode = |key: &str| -> Option<&str> {
            if !m.contains_key(key) {
                return None;
            }
            match overrides.get(key).map(String::as_str) {
                Some("append") => Some("append"),
                Some(_) => Some("replace"),
                None if legacy_append => Some("append"),
                None => Some("define"),
            }
        };
        let existing = self.rules.iter().position(|r| r.name == name);
        let is_partial = legacy_append
            || !overrides.is_empty()
            || (!m.contains_key("condition") && existing.is_some());
        if is_partial {
            let Some(idx) = existing else {
                return self.warn_missing(
                    &origin,
                    format!("rule '{name}' appends/overrides but no rule by that name exists"),
                );
            };
            let exc = m.get("exceptions").map(|v| parse_exceptions(v, &name));
            let r = &mut self.rules[idx];
            for key in ["condition", "output", "desc"] {
                let Some(md) = mode(key) else { continue };
                let Some(v) = m.get(key).and_then(as_str) else {
                    continue;
                };
                let slot = match key {
                    "condition" => &mut r.condition,
                    "output" => &mut r.output,
                    _ => &mut r.desc,
                };
                if md == "append" {
                    *slot = format!("{slot} {v}");
                } else {
                    *slot = v;
                }
            }
            if let Some(md) = mode("tags")
                && let Some(t) = m.get("tags").and_then(str_list)
            {
                if md == "append" {
                    r.tags.extend(t)
                } else {
                    r.tags = t
                }
            }
            if let Some(p) = m.get("priority").and_then(as_str) {
                r.priority = Priority::parse(&p).ok_or(p);
            }
            if let Some(e) = m.get("enabled").and_then(Value::as_bool) {
                r.enabled = e;
            }
            if let Some(exc) = exc {
                match exc {
                    Ok(list) => {
                        if mode("exceptions") == Some("replace") {
                            r.exceptions = list;
                        } else {
                            for e in list {
                                match r.exceptions.iter_mut().find(|x| x.name == e.name) {
                                    Some(x) => x.values.extend(e.values),
                                    None => r.exceptions.push(e),
                                }
                            }
                        }
                    }
                    Err(msg) => r.problem = Some(msg),
                }
            }
            return;
        }
        let mut problem = None;
        let condition = m.get("condition").and_then(as_str).unwrap_or_else(|| {
            problem = Some("rule has no condition".into());
            String::new()
        });
        let output = m.get("output").and_then(as_str).unwrap_or_default();
        let pr = m
            .get("priority")
            .and_then(as_str)
            .unwrap_or_else(|| "informational".into());
        let exceptions = match m.get("exceptions").map(|v| parse_exceptions(v, &name)) {
            Some(Ok(e)) => e,
            Some(Err(msg)) => {
                problem = Some(msg);
                vec![]
            }
            None => vec![],
        };
        let tags = m.get("tags").and_then(str_list).unwrap_or_default();
        let mut mitre = m.get("mitre").and_then(str_list).unwrap_or_default();
        if mitre.is_empty() {
            mitre = tags.iter().filter(|t| is_technique(t)).cloned().collect();
        }
        let def = RuleDef {
            name: name.clone(),
            desc: m.get("desc").and_then(as_str).unwrap_or_default(),
            condition,
            output,
            priority: Priority::parse(&pr).ok_or(pr),
            tags,
            enabled: m.get("enabled").and_then(Value::as_bool).unwrap_or(true),
            source: m
                .get("source")
                .and_then(as_str)
                .unwrap_or_else(|| "syscall".into()),
            exceptions,
            origin,
            mitre,
            response: m.get("response").and_then(as_str),
            problem,
        };
        match existing {
            Some(i) => self.rules[i] = def,
            None => self.rules.push(def),
        }
    }

    /// Compiles everything loaded so far.
    pub fn build(self) -> Engine {
        let lists: Lists = self.lists.iter().cloned().collect();
        let macros: HashMap<String, String> = self
            .macros
            .iter()
            .map(|(n, c, _)| (n.clone(), c.clone()))
            .collect();
        let mut warnings = self.warnings;
        let mut scope = Scope::new(&macros, &lists);
        // Every macro must parse, used or not (a typo in an unused macro is still worth a warning).
        for (name, _, origin) in &self.macros {
            if let Err(e) = scope.macro_ast(name) {
                warnings.push(format!("{origin}: {e}"));
            }
        }
        let mut rules = Vec::new();
        let mut skipped = Vec::new();
        let total = self.rules.len();
        for def in self.rules {
            match compile_rule(&def, &mut scope) {
                Ok(r) => rules.push(r),
                Err(reason) => skipped.push(Skipped {
                    rule: def.name.clone(),
                    reason,
                }),
            }
        }
        Engine::new(rules, skipped, warnings, total)
    }
}

fn is_technique(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() >= 5 && (b[0] == b'T') && b[1..5].iter().all(u8::is_ascii_digit)
        || t.starts_with("TA0") && t.len() == 6
}

fn is_append(m: &serde_json::Map<String, Value>, key: &str) -> bool {
    m.get("append").and_then(Value::as_bool).unwrap_or(false)
        || m.get("override")
            .and_then(|o| o.get(key))
            .and_then(Value::as_str)
            == Some("append")
}

fn parse_exceptions(v: &Value, rule: &str) -> Result<Vec<Exception>, String> {
    let Value::Array(items) = v else {
        return Err(format!("rule '{rule}': 'exceptions' must be a sequence"));
    };
    let mut out = Vec::new();
    for it in items {
        let Value::Object(m) = it else {
            return Err(format!("rule '{rule}': exception is not a mapping"));
        };
        let name = m
            .get("name")
            .and_then(as_str)
            .ok_or(format!("rule '{rule}': exception without a name"))?;
        let (fields, single) = match m.get("fields") {
            Some(Value::String(s)) => (vec![s.clone()], true),
            Some(v @ Value::Array(_)) => (
                str_list(v).ok_or(format!(
                    "rule '{rule}', exception '{name}': fields must be strings"
                ))?,
                false,
            ),
            // An appended exception may give only values; it merges into the one with its name.
            _ => (vec![], false),
        };
        let comps = match m.get("comps") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(v @ Value::Array(_)) => {
                str_list(v).ok_or(format!("rule '{rule}', exception '{name}': bad comps"))?
            }
            _ => vec![],
        };
        let values = match m.get("values") {
            Some(Value::Array(a)) => a.clone(),
            None | Some(Value::Null) => vec![],
            _ => {
                return Err(format!(
                    "rule '{rule}', exception '{name}': 'values' must be a sequence"
                ));
            }
        };
        out.push(Exception {
            name,
            fields,
            single_field: single,
            comps,
            values,
        });
    }
    Ok(out)
}

/// Quotes a value for the condition language.
fn quote(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Renders an exception value: a list item name stays bare so lists expand; a sequence becomes `(a, b)`.
fn exc_value(v: &Value, lists: &Lists) -> Option<String> {
    match v {
        Value::Array(a) => {
            let items: Option<Vec<String>> = a.iter().map(|x| exc_value(x, lists)).collect();
            Some(format!("({})", items?.join(", ")))
        }
        other => {
            let s = as_str(other)?;
            if lists.contains_key(&s) {
                Some(s)
            } else {
                Some(quote(&s))
            }
        }
    }
}

/// Builds the condition text of a rule's exceptions: `not ((f1 c1 v1 and f2 c2 v2) or ...)`.
fn exceptions_condition(def: &RuleDef, lists: &Lists) -> Result<Option<String>, String> {
    let mut alts = Vec::new();
    for e in &def.exceptions {
        if e.fields.is_empty() {
            return Err(format!("exception '{}': missing 'fields'", e.name));
        }
        if e.single_field {
            if e.values.is_empty() {
                continue;
            }
            let comp = e.comps.first().cloned().unwrap_or_else(|| "in".into());
            let vals: Option<Vec<String>> = e.values.iter().map(|v| exc_value(v, lists)).collect();
            let vals = vals.ok_or(format!("exception '{}': values must be strings", e.name))?;
            let rhs = if comp == "in" || comp == "pmatch" || comp == "intersects" {
                format!("({})", vals.join(", "))
            } else {
                vals.join(" ")
            };
            alts.push(format!("{} {comp} {rhs}", e.fields[0]));
            continue;
        }
        for tuple in &e.values {
            let Value::Array(parts) = tuple else {
                return Err(format!(
                    "exception '{}': each value must be a sequence matching 'fields'",
                    e.name
                ));
            };
            if parts.len() != e.fields.len() {
                return Err(format!(
                    "exception '{}': value has {} items but there are {} fields",
                    e.name,
                    parts.len(),
                    e.fields.len()
                ));
            }
            let mut conj = Vec::new();
            for (i, (f, v)) in e.fields.iter().zip(parts).enumerate() {
                let comp = e.comps.get(i).cloned().unwrap_or_else(|| "=".into());
                let rhs = match (comp.as_str(), v) {
                    ("in" | "pmatch" | "intersects", Value::Array(_)) => exc_value(v, lists),
                    ("in" | "pmatch" | "intersects", other) => {
                        exc_value(other, lists).map(|x| format!("({x})"))
                    }
                    (_, other) => exc_value(other, lists),
                }
                .ok_or(format!("exception '{}': bad value", e.name))?;
                conj.push(format!("{f} {comp} {rhs}"));
            }
            alts.push(format!("({})", conj.join(" and ")));
        }
    }
    Ok(if alts.is_empty() {
        None
    } else {
        Some(format!("not ({})", alts.join(" or ")))
    })
}

fn compile_rule(def: &RuleDef, scope: &mut Scope<'_>) -> Result<Rule, String> {
    if let Some(p) = &def.problem {
        return Err(p.clone());
    }
    if def.source != "syscall" {
        return Err(format!(
            "event source '{}' is not provided by moat (only syscall)",
            def.source
        ));
    }
    let priority = def
        .priority
        .clone()
        .map_err(|p| format!("unknown priority '{p}'"))?;
    let mut cond = format!("({})", def.condition);
    if let Some(exc) = exceptions_condition(def, scope.lists)? {
        cond = format!("{cond} and {exc}");
    }
    let expr = scope.compile_text(&cond).map_err(|e| e.0)?;
    let output = Template::compile(&def.output).map_err(|e| format!("output: {e}"))?;
    Ok(Rule {
        name: def.name.clone(),
        desc: def.desc.trim().to_string(),
        priority,
        tags: def.tags.clone(),
        enabled: def.enabled,
        origin: def.origin.clone(),
        mitre: def.mitre.clone(),
        response: def.response.as_ref().map(|r| r.trim().to_string()),
        expr,
        output,
        condition: cond,
    })
}

/// A fired rule.
#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    /// RFC 3339 time of the event.
    pub time: String,
    pub rule: String,
    pub priority: Priority,
    pub output: String,
    pub output_fields: serde_json::Map<String, Value>,
    pub tags: Vec<String>,
    pub source: &'static str,
    pub hostname: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<crate::event::Container>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mitre: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
}

/// The compiled rule set, indexed by event type.
pub struct Engine {
    rules: Vec<Rule>,
    by_type: Vec<Vec<u32>>,
    pub skipped: Vec<Skipped>,
    pub warnings: Vec<String>,
    total: usize,
    seq: u64,
}

/// What `rules check` prints.
#[derive(Debug, Serialize)]
pub struct CheckSummary {
    pub rules: usize,
    pub evaluable: usize,
    pub enabled: usize,
    pub macros_and_lists_ok: bool,
    pub skipped: Vec<Skipped>,
    pub warnings: Vec<String>,
}

impl Engine {
    fn new(rules: Vec<Rule>, skipped: Vec<Skipped>, warnings: Vec<String>, total: usize) -> Engine {
        let mut by_type = vec![Vec::new(); 128];
        for (i, r) in rules.iter().enumerate() {
            if !r.enabled {
                continue;
            }
            let t = compile::types_of(&r.expr);
            for (id, slot) in by_type.iter_mut().enumerate() {
                if t.contains(id as u16) {
                    slot.push(i as u32);
                }
            }
        }
        Engine {
            rules,
            by_type,
            skipped,
            warnings,
            total,
            seq: 0,
        }
    }

    /// Loads and compiles files in order.
    pub fn from_files(paths: &[impl AsRef<Path>]) -> Result<Engine, LoadError> {
        let mut l = Loader::new();
        for p in paths {
            l.add_file(p.as_ref())?;
        }
        Ok(l.build())
    }

    /// moat's default rules (embedded).
    pub fn default_rules() -> Engine {
        let mut l = Loader::new();
        if let Err(e) = l.add_str("moat_rules.yaml", DEFAULT_RULES) {
            l.warnings.push(e.to_string());
        }
        l.build()
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn summary(&self) -> CheckSummary {
        CheckSummary {
            rules: self.total,
            evaluable: self.rules.len(),
            enabled: self.rules.iter().filter(|r| r.enabled).count(),
            macros_and_lists_ok: self.warnings.is_empty(),
            skipped: self.skipped.clone(),
            warnings: self.warnings.clone(),
        }
    }

    /// Enables or disables rules by name (for tests and `--disable`).
    pub fn set_enabled(&mut self, name: &str, enabled: bool) -> bool {
        let Some(r) = self.rules.iter_mut().find(|r| r.name == name) else {
            return false;
        };
        r.enabled = enabled;
        let rules = std::mem::take(&mut self.rules);
        let fresh = Engine::new(
            rules,
            std::mem::take(&mut self.skipped),
            std::mem::take(&mut self.warnings),
            self.total,
        );
        let seq = self.seq;
        *self = fresh;
        self.seq = seq;
        true
    }

    /// Indices of the rules that match the event (rules evaluated in file order; all matches reported).
    pub fn matching(&mut self, ev: &mut Event) -> Vec<usize> {
        self.seq += 1;
        if ev.num == 0 {
            ev.num = self.seq;
        }
        ev.prepare();
        let t = ev.type_id() as usize;
        let mut out = Vec::new();
        if let Some(idx) = self.by_type.get(t) {
            for &i in idx {
                if compile::eval(&self.rules[i as usize].expr, ev) {
                    out.push(i as usize);
                }
            }
        }
        out
    }

    /// Counts matches without building alerts (benchmarks).
    pub fn count_matches(&self, ev: &Event) -> usize {
        let t = ev.type_id() as usize;
        self.by_type.get(t).map_or(0, |idx| {
            idx.iter()
                .filter(|&&i| compile::eval(&self.rules[i as usize].expr, ev))
                .count()
        })
    }

    /// Evaluates an event and renders alerts for every matching rule.
    pub fn process(&mut self, ev: &mut Event) -> Vec<Alert> {
        let m = self.matching(ev);
        m.into_iter().map(|i| self.alert(i, ev)).collect()
    }

    /// Renders the alert of rule `i` for `ev`.
    pub fn alert(&self, i: usize, ev: &Event) -> Alert {
        let r = &self.rules[i];
        let (output, output_fields) = r.output.render(ev);
        Alert {
            time: output::rfc3339(ev.ts),
            rule: r.name.clone(),
            priority: r.priority,
            output,
            output_fields,
            tags: r.tags.clone(),
            source: "syscall",
            hostname: fields::hostname().to_string(),
            container: ev.container.clone(),
            mitre: r.mitre.clone(),
            response: r.response.clone(),
        }
    }
}

/// moat's default rules, embedded in the binary.
pub const DEFAULT_RULES: &str = include_str!("../../rules/moat_rules.yaml");

impl Engine {
    /// Compiles rule text (tests).
    #[doc(hidden)]
    pub fn from_str_for_tests(text: &str) -> Engine {
        let mut l = Loader::new();
        if let Err(e) = l.add_str("test.yaml", text) {
            l.warnings.push(e.to_string());
        }
        l.build()
    }
}
