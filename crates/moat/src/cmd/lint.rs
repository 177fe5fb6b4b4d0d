//! `moat lint PATH... | -`: build-time checks. Every input is classified first — a Dockerfile, a
//! Kubernetes manifest (YAML/JSON), or an image target — and dispatched to the judge for its kind; the
//! findings of all inputs go into one report.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use moat_lint::Config;
use moat_model::{Finding, Severity, TargetInfo};
use moat_report::{Gate, InputFailure, Report, Verdict};

use crate::common::{GateArgs, InputError, OutputArgs};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Sarif,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Dockerfiles, directories to search for them (Dockerfile, Containerfile, *.Dockerfile,
    /// *.dockerfile, Dockerfile.*), Kubernetes manifests, `-` for standard input, or images
    /// (oci:, oci-archive:, docker-archive:, registry:, docker:, podman:, dir: for a root file
    /// system) for the image-configuration checks.
    #[arg(value_name = "PATH")]
    pub paths: Vec<String>,
    /// List every rule (id, aliases, severity, description, fix) instead of linting.
    #[arg(long)]
    pub list_rules: bool,
    /// Output format. Default: table on a terminal, json otherwise.
    #[arg(long, short = 'f', value_enum)]
    pub format: Option<Format>,
    /// A hadolint configuration file (default: .hadolint.yaml in the current directory, then
    /// ~/.config/hadolint.yaml, then ~/.hadolint.yaml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Ignore a rule (repeatable), as hadolint's --ignore.
    #[arg(long = "ignore", value_name = "RULE")]
    pub ignore: Vec<String>,
    /// Only allow base images from this registry (repeatable), as hadolint's --trusted-registry.
    #[arg(long = "trusted-registry", value_name = "REGISTRY")]
    pub trusted_registries: Vec<String>,
    #[command(flatten)]
    pub kube: super::lint_kube::KubeArgs,
    #[command(flatten)]
    pub out: OutputArgs,
    #[command(flatten)]
    pub gate: GateArgs,
}

/// What an input is, decided before anything is parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A Dockerfile: its display name and where to read it (`None` = standard input).
    Dockerfile { name: String, path: Option<PathBuf> },
    /// A Kubernetes manifest (YAML or JSON).
    Kubernetes { name: String, path: PathBuf },
    /// An image target (`oci:DIR`, `docker-archive:FILE`, ...).
    Image { target: String },
}

const IMAGE_PREFIXES: &[&str] = &[
    "oci:",
    "oci-archive:",
    "docker-archive:",
    "registry:",
    "docker:",
    "podman:",
    "dir:",
];

fn is_dockerfile_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower == "dockerfile"
        || lower == "containerfile"
        || lower.ends_with(".dockerfile")
        || lower.ends_with(".containerfile")
        || lower.starts_with("dockerfile.")
        || lower.starts_with("containerfile.")
}

fn is_manifest_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".yaml") || lower.ends_with(".yml") || lower.ends_with(".json")
}

/// Classifies the command-line inputs, searching directories for Dockerfiles.
pub fn classify(paths: &[String]) -> anyhow::Result<Vec<Input>> {
    let mut out = Vec::new();
    for p in paths {
        if p == "-" {
            out.push(Input::Dockerfile {
                name: "-".into(),
                path: None,
            });
            continue;
        }
        if IMAGE_PREFIXES.iter().any(|pre| p.starts_with(pre)) {
            out.push(Input::Image { target: p.clone() });
            continue;
        }
        let path = PathBuf::from(p);
        let meta = std::fs::metadata(&path).map_err(|e| InputError(format!("{p}: {e}")))?;
        if meta.is_dir() {
            let mut found = Vec::new();
            walk(&path, 0, &mut found)?;
            found.sort();
            // Kubernetes manifests in the directory too (`moat lint deploy/`).
            let manifests = super::lint_kube::manifest_files(&path)?;
            if found.is_empty() && manifests.is_empty() {
                return Err(InputError(format!(
                    "{p}: no Dockerfile or Kubernetes manifest found in this directory"
                ))
                .into());
            }
            out.extend(found.into_iter().map(|f| Input::Dockerfile {
                name: f.display().to_string(),
                path: Some(f),
            }));
            out.extend(manifests.into_iter().map(|f| Input::Kubernetes {
                name: f.display().to_string(),
                path: f,
            }));
        } else {
            let file = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if is_manifest_name(&file) && !is_dockerfile_name(&file) {
                out.push(Input::Kubernetes {
                    name: p.clone(),
                    path,
                });
            } else {
                out.push(Input::Dockerfile {
                    name: p.clone(),
                    path: Some(path),
                });
            }
        }
    }
    Ok(out)
}

fn walk(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if depth > 32 {
        return Ok(());
    }
    let rd = std::fs::read_dir(dir).map_err(|e| InputError(format!("{}: {e}", dir.display())))?;
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            if matches!(
                name.as_str(),
                ".git" | "node_modules" | "target" | ".venv" | "vendor"
            ) {
                continue;
            }
            walk(&e.path(), depth + 1, found)?;
        } else if ft.is_file() && is_dockerfile_name(&name) {
            found.push(e.path());
        }
    }
    Ok(())
}

fn load_config(a: &Args) -> anyhow::Result<Config> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    let explicit = a.config.is_some();
    if let Some(c) = &a.config {
        candidates.push(c.clone());
    } else {
        candidates.push(PathBuf::from(".hadolint.yaml"));
        candidates.push(PathBuf::from(".hadolint.yml"));
        if let Some(home) = std::env::var_os("HOME") {
            let home = PathBuf::from(home);
            let xdg = std::env::var_os("XDG_CONFIG_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| home.join(".config"));
            candidates.push(xdg.join("hadolint.yaml"));
            candidates.push(home.join(".hadolint.yaml"));
        }
    }
    let mut cfg = Config::default();
    for c in candidates {
        match read_bounded(&c, MAX_CONFIG_BYTES) {
            Ok(text) => {
                cfg = Config::from_yaml(&c.display().to_string(), &text)
                    .map_err(|e| InputError(e.to_string()))?;
                break;
            }
            Err(e) if explicit => return Err(InputError(format!("{}: {e}", c.display())).into()),
            Err(_) => {}
        }
    }
    cfg.ignored
        .extend(a.ignore.iter().map(|s| s.trim().to_ascii_uppercase()));
    cfg.trusted_registries
        .extend(a.trusted_registries.iter().cloned());
    Ok(cfg)
}

impl Args {
    /// The one default every moat report shares: a table for people, JSON for pipes and files.
    fn output_format(&self) -> Format {
        self.format.unwrap_or(if self.out.is_terminal() {
            Format::Table
        } else {
            Format::Json
        })
    }
}

/// A hadolint configuration is a few lines; anything larger is refused rather than read into memory.
const MAX_CONFIG_BYTES: u64 = 4 << 20;

fn read_bounded(path: &std::path::Path, limit: u64) -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::other(format!(
            "larger than the {limit}-byte limit for a configuration file"
        )));
    }
    String::from_utf8(bytes).map_err(|_| std::io::Error::other("not UTF-8 text"))
}

fn list_rules(a: &Args) -> anyhow::Result<Verdict> {
    let text = match a.output_format() {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&serde_json::json!({
                "severity_mapping": {"error": "HIGH", "warning": "MEDIUM", "info": "LOW", "style": "INFO"},
                "rules": moat_lint::RULES
                    .iter()
                    .map(serde_json::to_value)
                    .collect::<Result<Vec<_>, _>>()?
                    .into_iter()
                    .chain(super::lint_kube::rules_json()?)
                    .collect::<Vec<_>>(),
            }))?;
            s.push('\n');
            s
        }
        _ => {
            let mut s = String::from(
                "Severity mapping for hadolint levels: error → HIGH, warning → MEDIUM, info → LOW, style → INFO.\n\n",
            );
            for r in moat_lint::RULES {
                let al = if r.aliases.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", r.aliases.join(", "))
                };
                s.push_str(&format!(
                    "{}{al} [{}] {}\n    why: {}\n    fix: {}\n",
                    r.id, r.severity, r.title, r.why, r.fix
                ));
            }
            s.push_str(&super::lint_kube::rules_text());
            s
        }
    };
    a.out.write(&text)?;
    Ok(Verdict::Pass)
}

/// An input that could not be read at all: no position, the reason as the message.
fn unreadable(name: &str, e: impl std::fmt::Display) -> InputFailure {
    InputFailure {
        file: name.to_string(),
        line: None,
        column: None,
        message: e.to_string(),
    }
}

/// A Dockerfile the parser refused, with the line and column it names.
fn unparseable(name: &str, e: &moat_lint::LintError) -> InputFailure {
    let p = e.position(name);
    InputFailure {
        file: name.to_string(),
        line: p.line,
        column: p.column,
        message: p.message,
    }
}

fn lint_dockerfile(
    name: &str,
    path: Option<&Path>,
    cfg: &Config,
) -> anyhow::Result<Result<Vec<Finding>, InputFailure>> {
    let mut bytes = Vec::new();
    match path {
        Some(p) => {
            let read = std::fs::File::open(p).and_then(|f| {
                f.take(moat_lint::dockerfile::MAX_BYTES as u64 + 1)
                    .read_to_end(&mut bytes)
            });
            if let Err(e) = read {
                return Ok(Err(unreadable(name, e)));
            }
        }
        None => {
            std::io::stdin()
                .lock()
                .take(moat_lint::dockerfile::MAX_BYTES as u64 + 1)
                .read_to_end(&mut bytes)
                .context("cannot read standard input")?;
        }
    }
    Ok(moat_lint::lint_dockerfile(name, &bytes, cfg).map_err(|e| unparseable(name, &e)))
}

/// Reads a Kubernetes manifest (bounded); the manifests are judged together after all inputs are read
/// (a NetworkPolicy in one file selects a Deployment in another).
fn read_manifest(name: &str, path: &Path) -> Result<(String, String), InputFailure> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| {
            f.take(moat_kube::MAX_MANIFEST_BYTES as u64 + 1)
                .read_to_end(&mut bytes)
        })
        .map_err(|e| unreadable(name, e))?;
    let text = String::from_utf8(bytes).map_err(|_| unreadable(name, "not UTF-8 text"))?;
    Ok((name.to_string(), text))
}

/// Image-configuration checks: the image config (user, healthcheck, env, history) and the metadata of
/// the files the checks need (setuid/setgid, world-writable, package-manager caches).
fn lint_image(target: &str) -> Result<Vec<Finding>, InputFailure> {
    let t = moat_image::Target::parse(target).map_err(|e| unreadable(target, e))?;
    let image = moat_image::Image::open(&t, &moat_image::OpenOptions::default())
        .map_err(|e| unreadable(target, e))?;
    let view = image
        .collect(&moat_lint::image::wants)
        .map_err(|e| unreadable(target, e))?;
    Ok(moat_lint::image::check_image(target, image.config(), &view))
}

pub fn run(a: Args) -> anyhow::Result<Verdict> {
    if a.list_rules {
        return list_rules(&a);
    }
    if a.paths.is_empty() {
        return Err(InputError("moat lint: give at least one PATH (a Dockerfile, a directory, or - for standard input)".into()).into());
    }
    // Kubernetes flags are checked even when only Dockerfiles or images are linted.
    a.kube.validate()?;
    let cfg = load_config(&a)?;
    let inputs = classify(&a.paths)?;
    let mut findings = Vec::new();
    // Inputs that could not be judged: reported with the rest, and exit 2 at the end.
    let mut failures: Vec<InputFailure> = Vec::new();
    let mut kinds = Vec::new();
    let mut manifests: Vec<(String, String)> = Vec::new();
    for input in &inputs {
        // The dispatch point: one judge per kind of input.
        match input {
            // Standard input is a Kubernetes manifest when it says so (`helm template ... | moat lint -`).
            Input::Dockerfile { name, path: None } => {
                let mut bytes = Vec::new();
                std::io::stdin()
                    .lock()
                    .take(moat_kube::MAX_MANIFEST_BYTES as u64 + 1)
                    .read_to_end(&mut bytes)
                    .context("cannot read standard input")?;
                match std::str::from_utf8(&bytes) {
                    Ok(text) if super::lint_kube::is_kubernetes_input(name, text) => {
                        manifests.push((name.clone(), text.to_string()));
                        kinds.push("kubernetes");
                    }
                    _ => {
                        match moat_lint::lint_dockerfile(name, &bytes, &cfg) {
                            Ok(f) => findings.extend(f),
                            Err(e) => failures.push(unparseable(name, &e)),
                        }
                        kinds.push("dockerfile");
                    }
                }
            }
            Input::Dockerfile { name, path } => {
                match lint_dockerfile(name, path.as_deref(), &cfg)? {
                    Ok(f) => findings.extend(f),
                    Err(e) => failures.push(e),
                }
                kinds.push("dockerfile");
            }
            Input::Kubernetes { name, path } => {
                match read_manifest(name, path) {
                    Ok(m) => manifests.push(m),
                    Err(e) => failures.push(e),
                }
                kinds.push("kubernetes");
            }
            Input::Image { target } => {
                match lint_image(target) {
                    Ok(f) => findings.extend(f),
                    Err(e) => failures.push(e),
                }
                kinds.push("image");
            }
        }
    }
    if !manifests.is_empty() {
        let (f, bad) = super::lint_kube::lint(&manifests, &a.kube)?;
        findings.extend(f);
        failures.extend(bad);
    }
    failures.sort();
    kinds.sort();
    kinds.dedup();
    let name = match inputs.as_slice() {
        [Input::Dockerfile { name, .. }] | [Input::Kubernetes { name, .. }] => name.clone(),
        [Input::Image { target }] => target.clone(),
        many => format!("{} inputs", many.len()),
    };
    let mut report = Report::new(
        TargetInfo {
            name,
            kind: kinds.join("+"),
        },
        findings,
    );
    if !manifests.is_empty() {
        report.metadata.extend(super::lint_kube::metadata(&a.kube));
    }
    report.errors = failures;
    let text = match a.output_format() {
        Format::Table => moat_report::to_table(&report),
        Format::Json => report.to_json(),
        Format::Sarif => moat_report::to_sarif(&report),
    };
    a.out.write(&text)?;
    if !report.errors.is_empty() {
        // Fail closed: a gate cannot pass inputs it could not read, whatever the other findings say.
        for e in &report.errors {
            eprintln!("moat: error: {e}");
        }
        return Err(InputError(format!(
            "{} of {} inputs could not be linted (listed as errors in the report)",
            report.errors.len(),
            inputs.len()
        ))
        .into());
    }
    // --fail-on wins; else a failure-threshold from the hadolint configuration.
    let fail_on: Option<Severity> = a.gate.fail_on.or(cfg.failure_threshold.flatten());
    Ok(Gate::new(fail_on).judge(&report.findings))
}
