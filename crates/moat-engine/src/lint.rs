//! The lint pipeline: inputs classified (Dockerfile, Kubernetes manifest, image target; directories
//! searched for both) → the hadolint configuration found → one judge per kind → the manifests judged
//! together (profile, best practices, RBAC, Kyverno policies) → one report → the gate.
//!
//! Inputs that cannot be judged do not stop the others: they are the report's `errors` and typed
//! [`LintDiagnostic::Input`]s, and a caller must not pass a gate over them.

use std::io::Read;
use std::path::{Path, PathBuf};

use moat_kube::{LintOptions, Profile, PssOptions, PssVersion};
use moat_lint::Config;
use moat_model::{Finding, Severity, TargetInfo};
use moat_report::{Gate, InputFailure, Report, Verdict};

/// Where the hadolint configuration comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum LintConfig {
    /// `.hadolint.yaml` (or `.yml`) in the working directory, then `$XDG_CONFIG_HOME/hadolint.yaml`
    /// (`~/.config`), then `~/.hadolint.yaml`; none found is the default configuration.
    #[default]
    Discover,
    /// This file; it must exist and parse.
    File(PathBuf),
    /// The default configuration (an API call that sent none).
    None,
}

/// How Kubernetes manifests are judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeRequest {
    /// `pss-baseline`, `pss-restricted` or `all`; `None` is `all` (PSS restricted, best practices, RBAC).
    pub profile: Option<String>,
    /// `v1.N` or `latest`, as a namespace's `pod-security.kubernetes.io/enforce-version`.
    pub pss_version: String,
    /// Kyverno policy files or directories judged on every manifest, besides the profile.
    pub policies: Vec<PathBuf>,
}

impl Default for KubeRequest {
    fn default() -> Self {
        KubeRequest {
            profile: None,
            pss_version: "latest".into(),
            policies: Vec::new(),
        }
    }
}

/// One lint run, as flags or an API call describe it.
#[derive(Debug, Clone, Default)]
pub struct LintRequest {
    /// Dockerfiles, directories, Kubernetes manifests, `-` for standard input, or image targets
    /// (`oci:`, `oci-archive:`, `docker-archive:`, `registry:`, `docker:`, `podman:`, `dir:`).
    pub inputs: Vec<String>,
    pub config: LintConfig,
    /// Rule ids never reported (hadolint's `--ignore`), added to the configuration's.
    pub ignore: Vec<String>,
    /// Registries base images may come from (hadolint's `--trusted-registry`).
    pub trusted_registries: Vec<String>,
    pub kube: KubeRequest,
    /// The gate; `None` falls back to the configuration's `failure-threshold`.
    pub fail_on: Option<Severity>,
}

/// Why a lint run could not start. Every variant is exit 2 on the command line; inputs that
/// could not be judged once the run started are [`LintDiagnostic::Input`] instead.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LintError {
    #[error(
        "moat lint: give at least one PATH (a Dockerfile, a directory, or - for standard input)"
    )]
    NoInputs,
    /// A `--profile` or `--pss-version` that does not parse.
    #[error("{0}")]
    KubeOption(String),
    /// A policy path that cannot be loaded, or holds no policy.
    #[error("{message}")]
    Policy { path: PathBuf, message: String },
    /// The hadolint configuration cannot be read or parsed.
    #[error("{message}")]
    Config { path: PathBuf, message: String },
    /// A named input that does not exist or a directory that cannot be searched.
    #[error("{message}")]
    Input { path: PathBuf, message: String },
    #[error("cannot read standard input")]
    Stdin(#[source] std::io::Error),
}

/// Something a lint run met that the caller may want to show or branch on, in the order it arose.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LintDiagnostic {
    /// An input that could not be judged (also one of the report's `errors`): its file, and the
    /// line and column when the parser names them.
    Input(InputFailure),
    /// A note of the manifest loader on a document it still judged.
    Manifest(String),
    /// A rule of a `--policy` file that moat does not evaluate.
    Unsupported(moat_policy::Unsupported),
    /// A Kyverno `validate.podSecurity` subrule that moat does not evaluate, with why.
    UnsupportedPodSecurity(moat_policy::podsecurity::PodSecurityGap),
}

impl std::fmt::Display for LintDiagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LintDiagnostic::Input(e) => write!(f, "{e}"),
            LintDiagnostic::Manifest(w) => f.write_str(w),
            LintDiagnostic::Unsupported(u) => write!(
                f,
                "policy {} rule {} is not evaluated: {}",
                u.policy, u.rule, u.reason
            ),
            LintDiagnostic::UnsupportedPodSecurity(u) => {
                write!(f, "policy rule is not evaluated: {u}")
            }
        }
    }
}

/// What a lint run produced.
#[derive(Debug)]
pub struct LintOutcome {
    /// The findings of every input (sorted per kind), the inputs that failed as `errors`, and the
    /// metadata that pins a Kubernetes verdict.
    pub report: Report,
    /// The gate's judgement of the findings (meaningless when `report.errors` is not empty: a gate
    /// cannot pass inputs it could not read).
    pub verdict: Verdict,
    /// How many inputs were judged (a directory counts as the files found in it).
    pub inputs: usize,
    pub diagnostics: Vec<LintDiagnostic>,
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

fn input_error(path: &Path, message: String) -> LintError {
    LintError::Input {
        path: path.to_path_buf(),
        message,
    }
}

/// Classifies inputs as users write them, searching directories for Dockerfiles and manifests.
pub fn classify(paths: &[String]) -> Result<Vec<Input>, LintError> {
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
        let meta = std::fs::metadata(&path).map_err(|e| input_error(&path, format!("{p}: {e}")))?;
        if meta.is_dir() {
            let mut found = Vec::new();
            walk(&path, 0, &mut found)?;
            found.sort();
            // Kubernetes manifests in the directory too (`moat lint deploy/`).
            let manifests = manifest_files(&path)?;
            if found.is_empty() && manifests.is_empty() {
                return Err(input_error(
                    &path,
                    format!("{p}: no Dockerfile or Kubernetes manifest found in this directory"),
                ));
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

fn walk(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) -> Result<(), LintError> {
    if depth > 32 {
        return Ok(());
    }
    let rd =
        std::fs::read_dir(dir).map_err(|e| input_error(dir, format!("{}: {e}", dir.display())))?;
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

/// The manifest files under a directory (sorted, recursive, `.yaml`/`.yml`/`.json`, hidden
/// directories skipped), so that `moat lint deploy/` lints a whole directory deterministically.
pub fn manifest_files(dir: &Path) -> Result<Vec<PathBuf>, LintError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let unreadable = |e: std::io::Error| {
            input_error(&d, format!("cannot read directory {}: {e}", d.display()))
        };
        let rd = std::fs::read_dir(&d).map_err(unreadable)?;
        for e in rd {
            let e = e.map_err(unreadable)?;
            let p = e.path();
            let ft = e
                .file_type()
                .map_err(|err| input_error(&p, format!("{}: {err}", p.display())))?;
            if ft.is_dir() {
                if !e.file_name().to_string_lossy().starts_with('.') {
                    stack.push(p);
                }
            } else if ft.is_file() && is_manifest_name(&p.to_string_lossy()) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A hadolint configuration is a few lines; anything larger is refused rather than read into memory.
const MAX_CONFIG_BYTES: u64 = 4 << 20;

fn read_bounded(path: &Path, limit: u64) -> std::io::Result<String> {
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

/// The hadolint configuration the request names or the first one discovered, with the request's
/// ignored rules and trusted registries added.
pub fn load_config(req: &LintRequest) -> Result<Config, LintError> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    let explicit = matches!(req.config, LintConfig::File(_));
    match &req.config {
        LintConfig::File(c) => candidates.push(c.clone()),
        LintConfig::Discover => {
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
        LintConfig::None => {}
    }
    let mut cfg = Config::default();
    for c in candidates {
        match read_bounded(&c, MAX_CONFIG_BYTES) {
            Ok(text) => {
                cfg = Config::from_yaml(&c.display().to_string(), &text).map_err(|e| {
                    LintError::Config {
                        path: c.clone(),
                        message: e.to_string(),
                    }
                })?;
                break;
            }
            Err(e) if explicit => {
                return Err(LintError::Config {
                    message: format!("{}: {e}", c.display()),
                    path: c,
                });
            }
            Err(_) => {}
        }
    }
    cfg.ignored
        .extend(req.ignore.iter().map(|s| s.trim().to_ascii_uppercase()));
    cfg.trusted_registries
        .extend(req.trusted_registries.iter().cloned());
    Ok(cfg)
}

impl KubeRequest {
    /// The moat-kube options this request asks for.
    pub fn options(&self) -> Result<LintOptions, LintError> {
        let profile = match &self.profile {
            None => Profile::All,
            Some(p) => p.parse::<Profile>().map_err(LintError::KubeOption)?,
        };
        let pss_version = self
            .pss_version
            .parse::<PssVersion>()
            .map_err(LintError::KubeOption)?;
        Ok(LintOptions {
            profile,
            pss_version,
            pss: PssOptions::default(),
        })
    }

    /// Checks every option up front, whatever is being linted (a typo in a CI command line must not
    /// wait for a manifest to show up): the profile, the version, and that each policy path holds
    /// at least one policy (an empty file or directory is never silently "no policy").
    pub fn validate(&self) -> Result<(), LintError> {
        self.options()?;
        for p in &self.policies {
            let set = moat_policy::PolicySet::load_paths(std::slice::from_ref(p)).map_err(|e| {
                LintError::Policy {
                    path: p.clone(),
                    message: e.to_string(),
                }
            })?;
            if set.is_empty() && set.unsupported().is_empty() {
                return Err(LintError::Policy {
                    path: p.clone(),
                    message: format!(
                        "{}: no ClusterPolicy/Policy/ValidatingAdmissionPolicy found",
                        p.display()
                    ),
                });
            }
        }
        Ok(())
    }

    /// Facts that pin a Kubernetes verdict, for the report's metadata: the profile, the PSS version,
    /// the policies given.
    pub fn metadata(&self) -> Vec<(String, String)> {
        let mut m = vec![
            (
                "kubernetes_profile".to_string(),
                self.profile.clone().unwrap_or_else(|| "all".to_string()),
            ),
            ("pss_version".to_string(), self.pss_version.clone()),
        ];
        if !self.policies.is_empty() {
            let p: Vec<String> = self
                .policies
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            m.push(("policies".to_string(), p.join(",")));
        }
        m
    }
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

fn lint_dockerfile_file(
    name: &str,
    path: &Path,
    cfg: &Config,
) -> Result<Vec<Finding>, InputFailure> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| {
            f.take(moat_lint::dockerfile::MAX_BYTES as u64 + 1)
                .read_to_end(&mut bytes)
        })
        .map_err(|e| unreadable(name, e))?;
    moat_lint::lint_dockerfile(name, &bytes, cfg).map_err(|e| unparseable(name, &e))
}

/// Reads a Kubernetes manifest (bounded); the manifests are judged together after all inputs are
/// read (a NetworkPolicy in one file selects a Deployment in another).
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

/// Image-configuration checks: the image config (user, healthcheck, env, history) and the metadata
/// of the files the checks need (setuid/setgid, world-writable, package-manager caches).
fn lint_image(target: &str) -> Result<Vec<Finding>, InputFailure> {
    let t = moat_image::Target::parse(target).map_err(|e| unreadable(target, e))?;
    let image = moat_image::Image::open(&t, &moat_image::OpenOptions::default())
        .map_err(|e| unreadable(target, e))?;
    let view = image
        .collect(&moat_lint::image::wants)
        .map_err(|e| unreadable(target, e))?;
    Ok(moat_lint::image::check_image(target, image.config(), &view))
}

/// Whether a manifest's text holds nothing but blank lines, comments and document separators: a
/// truncated or empty file, which must not pass as "no findings".
fn is_empty_manifest(text: &str) -> bool {
    text.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || t == "---" || t == "..."
    })
}

/// Runs the lint pipeline over every input of the request. Standard input (`-`) is read from the
/// process's standard input.
pub fn lint(req: &LintRequest) -> Result<LintOutcome, LintError> {
    if req.inputs.is_empty() {
        return Err(LintError::NoInputs);
    }
    // Kubernetes options are checked even when only Dockerfiles or images are linted.
    req.kube.validate()?;
    let cfg = load_config(req)?;
    let inputs = classify(&req.inputs)?;
    let mut findings = Vec::new();
    let mut diagnostics = Vec::new();
    // Inputs that could not be judged: reported with the rest.
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
                    .map_err(LintError::Stdin)?;
                match std::str::from_utf8(&bytes) {
                    Ok(text) if moat_kube::looks_like_kubernetes(text) => {
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
            Input::Dockerfile {
                name,
                path: Some(path),
            } => {
                match lint_dockerfile_file(name, path, &cfg) {
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
        let (f, bad) = lint_manifests(&manifests, &req.kube, &mut diagnostics)?;
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
        report.metadata.extend(req.kube.metadata());
    }
    diagnostics.extend(failures.iter().cloned().map(LintDiagnostic::Input));
    report.errors = failures;
    // The request's gate wins; else a failure-threshold from the hadolint configuration.
    let fail_on: Option<Severity> = req.fail_on.or(cfg.failure_threshold.flatten());
    let verdict = Gate::new(fail_on).judge(&report.findings);
    Ok(LintOutcome {
        report,
        verdict,
        inputs: inputs.len(),
        diagnostics,
    })
}

/// Lints Kubernetes inputs (name, text): the findings (sorted) and the inputs that could not be
/// parsed (each with the file, line and column the parser names); the others are still judged.
fn lint_manifests(
    inputs: &[(String, String)],
    kube: &KubeRequest,
    diagnostics: &mut Vec<LintDiagnostic>,
) -> Result<(Vec<Finding>, Vec<InputFailure>), LintError> {
    let opts = kube.options()?;
    let mut docs = Vec::new();
    let mut failures = Vec::new();
    for (name, text) in inputs {
        if is_empty_manifest(text) {
            failures.push(unreadable(name, "no Kubernetes object (empty file)"));
            continue;
        }
        match moat_kube::load_str(name, text) {
            Ok((d, warnings)) => {
                diagnostics.extend(warnings.into_iter().map(LintDiagnostic::Manifest));
                docs.extend(d);
            }
            Err(moat_kube::KubeError::Parse {
                file,
                line,
                column,
                message,
            }) => failures.push(InputFailure {
                file,
                line,
                column,
                message,
            }),
            Err(e @ moat_kube::KubeError::Input(_)) => {
                // The report names the file in its own field.
                let text = e.to_string();
                let message = text
                    .strip_prefix(name.as_str())
                    .and_then(|r| r.strip_prefix(": "))
                    .unwrap_or(&text)
                    .to_string();
                failures.push(unreadable(name, message));
            }
        }
    }
    let mut findings = moat_kube::lint(&docs, &opts);
    if !kube.policies.is_empty() {
        findings.extend(policy_findings(&docs, &kube.policies, diagnostics)?);
    }
    findings.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    Ok((findings, failures))
}

/// Kyverno policies judged on every document, as if each were being created.
fn policy_findings(
    docs: &[moat_kube::Document],
    paths: &[PathBuf],
    diagnostics: &mut Vec<LintDiagnostic>,
) -> Result<Vec<Finding>, LintError> {
    let set = moat_policy::PolicySet::load_paths(paths).map_err(|e| LintError::Policy {
        path: paths.first().cloned().unwrap_or_default(),
        message: e.to_string(),
    })?;
    // What nothing evaluates; the podSecurity subrules the engine leaves out are judged below.
    diagnostics.extend(set.not_evaluated().into_iter().map(|n| match n {
        moat_policy::NotEvaluated::Rule(u) => LintDiagnostic::Unsupported(u.clone()),
        moat_policy::NotEvaluated::PodSecurity(g) => {
            LintDiagnostic::UnsupportedPodSecurity(g.clone())
        }
    }));
    let mut out = Vec::new();
    for d in docs {
        let mut input = moat_policy::AdmissionInput::create(d.value.clone());
        // A namespaced object without metadata.namespace is matched as in `default`, as
        // `kyverno apply` and the Kubernetes rules read it (Document::effective_namespace).
        input.namespace = d.effective_namespace().map(str::to_string);
        for o in set.evaluate(&input) {
            if !matches!(
                o.result,
                moat_policy::RuleResult::Fail | moat_policy::RuleResult::Error
            ) {
                continue;
            }
            let mut f = o.to_finding();
            f.location.file = Some(d.file.clone());
            f.location.document = Some(d.index);
            f.location.line = d.line_of("");
            if !d.prefix.is_empty() {
                f.location.field = Some(d.prefix.clone());
            }
            f.location.object = Some(d.object_ref());
            out.push(f);
        }
    }
    // Kyverno `validate.podSecurity` subrules: the same PSS evaluation, with the rule's exclusions.
    for d in docs {
        for r in &set.pod_security().rules {
            out.extend(r.findings(d));
        }
    }
    Ok(out)
}
