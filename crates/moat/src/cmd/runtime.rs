//! `moat runtime`: watch a live host with the eBPF sensor, replay recorded events, check rule files.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use moat_report::Verdict;
use moat_runtime::alert::{self, Format};
use moat_runtime::rules::{Engine, Priority};

use crate::common::{InputError, OutputArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub cmd: Sub,
}

#[derive(clap::Subcommand, Debug)]
pub enum Sub {
    /// Watch this host with the eBPF sensor and print alerts as they happen.
    Watch(WatchArgs),
    /// Evaluate recorded events (JSON lines in moat's event format) against rules.
    Replay(ReplayArgs),
    /// Evaluate Kubernetes audit events (audit.k8s.io/v1 Event or EventList JSON, or JSON lines of
    /// them, as the API server's audit log and webhook backends write) against Falco's k8s_audit rules.
    K8saudit(K8sAuditArgs),
    /// Rule files: validate and report what moat can evaluate.
    #[command(subcommand)]
    Rules(RulesSub),
}

#[derive(clap::Args, Debug)]
pub struct K8sAuditArgs {
    /// Audit input files; `-` reads standard input. Not with --listen.
    #[arg(
        value_name = "INPUT",
        required_unless_present = "listen",
        conflicts_with = "listen"
    )]
    pub inputs: Vec<PathBuf>,
    /// Receive the API server's audit webhook on ADDR (HOST:PORT) instead of reading files: POSTs of
    /// `audit.k8s.io/v1` EventList to `/` or `/k8s-audit`, evaluated as they arrive, until SIGINT/SIGTERM.
    #[arg(long, value_name = "ADDR", requires = "listen_token_file")]
    pub listen: Option<String>,
    /// The bearer token the API server must send (first line of FILE; the webhook kubeconfig's
    /// `users[].user.token`). Required with --listen.
    #[arg(long = "listen-token-file", value_name = "FILE", requires = "listen")]
    pub listen_token_file: Option<PathBuf>,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key); default plain HTTP.
    #[arg(long = "tls-cert", value_name = "PEM", requires_all = ["tls_key", "listen"])]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long = "tls-key", value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// With --listen: also send every alert to moat server at this URL through the durable spool, as
    /// `watch --output-server` does.
    #[arg(long = "output-server", value_name = "URL", requires_all = ["token_file", "listen"])]
    pub output_server: Option<String>,
    /// The `ingest` token for --output-server (first line of FILE).
    #[arg(long = "token-file", value_name = "FILE", requires = "output_server")]
    pub token_file: Option<PathBuf>,
    /// Spool directory for --output-server.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "/var/lib/moat/k8saudit-spool"
    )]
    pub spool: PathBuf,
    /// With --listen: stop after this many seconds (default: until interrupted).
    #[arg(long, value_name = "SECS", requires = "listen")]
    pub duration: Option<u64>,
    /// Write the bound address to this file once listening (for scripts and tests).
    #[arg(long, value_name = "FILE", hide = true)]
    pub ready_file: Option<PathBuf>,
    /// Rule files holding `source: k8s_audit` rules (Falco's k8s_audit_rules.yaml and your own),
    /// loaded in order; rules of other sources in them are ignored. Required.
    #[arg(long = "rules", value_name = "FILE", required = true)]
    pub rules: Vec<PathBuf>,
    /// Alert format. Default: text on a terminal, json (Falco's JSON lines) otherwise.
    #[arg(short = 'f', long, value_enum)]
    pub format: Option<OutFormat>,
    /// Exit 1 when an alert at or above this priority fires (emergency ... debug).
    #[arg(long = "fail-on", value_name = "PRIORITY")]
    pub fail_on: Option<String>,
    #[command(flatten)]
    pub out: OutputArgs,
}

fn k8saudit(a: K8sAuditArgs) -> anyhow::Result<Verdict> {
    use moat_runtime::rules::k8saudit as ka;
    let fail_on = parse_priority(&a.fail_on)?;
    let mut l = moat_runtime::Loader::new();
    for f in &a.rules {
        l.add_file(f).map_err(|e| InputError(e.to_string()))?;
    }
    // As Falco: an append to something never defined means the user's addition would not apply.
    if !l.invalid_appends().is_empty() {
        return Err(InputError(format!(
            "rule files refused: {}",
            l.invalid_appends().join("; ")
        ))
        .into());
    }
    let engine = l.build_k8saudit();
    for w in &engine.warnings {
        eprintln!("moat: warning: {w}");
    }
    for s in &engine.skipped {
        eprintln!("moat: rule skipped: {}: {}", s.rule, s.reason);
    }
    if engine.evaluable() == 0 {
        return Err(InputError(format!(
            "{}: no evaluable k8s_audit rules ({} skipped, {} rules of other sources)",
            names(&a.rules),
            engine.skipped.len(),
            engine.other_sources
        ))
        .into());
    }
    let fmt: Format = pick(a.format, a.out.is_terminal()).into();
    if let Some(listen) = &a.listen {
        return k8saudit_listen(&a, listen, engine, fmt, fail_on);
    }
    let budget = moat_fsio::Budget::new(
        ka::MAX_INPUT,
        "k8s audit input",
        "split the audit log into smaller files",
    );
    let mut out = String::new();
    let mut worst: Option<Priority> = None;
    let mut bad = Vec::new();
    for input in &a.inputs {
        let (name, bytes) = if input == Path::new("-") {
            let b = moat_fsio::read_bounded(std::io::stdin().lock(), input, &budget)
                .map_err(|e| InputError(e.to_string()))?;
            ("standard input".to_string(), b)
        } else {
            let b = moat_fsio::read_regular(input, moat_fsio::Follow::Always, &budget)
                .map_err(|e| InputError(e.to_string()))?;
            (input.display().to_string(), b)
        };
        let text = String::from_utf8(bytes).map_err(|e| {
            InputError(format!(
                "{name}: not UTF-8 text (byte {})",
                e.utf8_error().valid_up_to()
            ))
        })?;
        let (events, errors) = ka::parse_events(&name, &text);
        for ev in &events {
            for al in engine.process(ev) {
                worst = Some(worst.map_or(al.priority, |w| w.min(al.priority)));
                out.push_str(&alert::format_alert(&al, fmt));
                out.push('\n');
            }
        }
        bad.extend(errors);
    }
    a.out.write(&out)?;
    if !bad.is_empty() {
        for e in &bad {
            eprintln!("moat: {e}");
        }
        return Err(InputError(format!(
            "{} input document(s) not recognized as k8s audit events (alerts of the others were written)",
            bad.len()
        ))
        .into());
    }
    Ok(match (fail_on, worst) {
        (Some(f), Some(w)) if w <= f => Verdict::Fail,
        _ => Verdict::Pass,
    })
}

/// `k8saudit --listen`: the webhook listener; alerts to stdout (and the server spool) as they fire.
fn k8saudit_listen(
    a: &K8sAuditArgs,
    listen: &str,
    engine: moat_runtime::rules::k8saudit::K8sEngine,
    fmt: Format,
    fail_on: Option<Priority>,
) -> anyhow::Result<Verdict> {
    use moat_runtime::k8s_webhook as kw;
    let token_file = a
        .listen_token_file
        .as_deref()
        .ok_or_else(|| InputError("--listen needs --listen-token-file".into()))?;
    let token = moat_server::client::read_token(token_file).map_err(InputError)?;
    let spool = match (&a.output_server, &a.token_file) {
        (Some(url), Some(tf)) => Some(open_spool(url, tf, &a.spool, 256 << 20)?),
        _ => None,
    };
    let spool = std::sync::Arc::new(spool);
    let worst = std::sync::Arc::new(std::sync::Mutex::new(None::<Priority>));
    let (sp, w) = (spool.clone(), worst.clone());
    let sink: kw::AlertSink = std::sync::Arc::new(move |alerts| {
        let mut o = std::io::stdout().lock();
        for al in alerts {
            let _ = writeln!(o, "{}", alert::format_alert(al, fmt));
            if let Ok(mut g) = w.lock() {
                *g = Some(g.map_or(al.priority, |p: Priority| p.min(al.priority)));
            }
        }
        let _ = o.flush();
        if let Some(s) = sp.as_ref()
            && let Err(e) = s.push(alerts)
        {
            eprintln!("moat: error: {e} (alerts are still printed)");
        }
    });
    let cfg = kw::ListenConfig {
        listen: listen.to_string(),
        token,
        tls: a.tls_cert.clone().zip(a.tls_key.clone()),
        max_body: kw::MAX_BODY,
        ready_file: a.ready_file.clone(),
        duration: a.duration.map(std::time::Duration::from_secs),
    };
    eprintln!(
        "moat: k8s audit webhook on {}://{listen} ({} rules)",
        if cfg.tls.is_some() { "https" } else { "http" },
        engine.evaluable()
    );
    let stats = kw::serve(cfg, engine, sink).map_err(|e| InputError(e.to_string()))?;
    eprintln!(
        "moat: k8s audit webhook: {} requests, {} events, {} alerts, {} unauthorized, {} documents not audit events",
        stats.requests, stats.events, stats.alerts, stats.unauthorized, stats.not_audit
    );
    if let Ok(s) = std::sync::Arc::try_unwrap(spool)
        && let Some(s) = s
    {
        let f = s.finish(std::time::Duration::from_secs(10));
        eprintln!(
            "moat: server: {} alerts spooled, {} delivered, {} left in {}",
            f.spooled,
            f.delivered,
            f.left,
            a.spool.display()
        );
    }
    let worst = worst.lock().ok().and_then(|g| *g);
    Ok(match (fail_on, worst) {
        (Some(f), Some(w)) if w <= f => Verdict::Fail,
        _ => Verdict::Pass,
    })
}

/// The durable spool to moat server that `watch` and `k8saudit --listen` send alerts through.
fn open_spool(
    url: &str,
    token_file: &Path,
    dir: &Path,
    max_bytes: u64,
) -> anyhow::Result<moat_runtime::spool::Spool> {
    let token = moat_server::client::read_token(token_file).map_err(InputError)?;
    let sender = moat_runtime::spool::server_sender(url, token, std::time::Duration::from_secs(10))
        .map_err(InputError)?;
    let sp = moat_runtime::spool::Spool::start(
        moat_runtime::spool::SpoolConfig {
            dir: dir.to_path_buf(),
            max_bytes,
        },
        sender,
    )
    .map_err(|e| InputError(e.to_string()))?;
    let replayed = sp
        .stats()
        .replayed
        .load(std::sync::atomic::Ordering::Relaxed);
    if replayed > 0 {
        eprintln!(
            "moat: spool {}: {replayed} alerts of an earlier run are being sent first",
            dir.display()
        );
    }
    Ok(sp)
}

#[derive(clap::Subcommand, Debug)]
pub enum RulesSub {
    /// Load rule files (Falco's format) and report rules, evaluable rules and why others are skipped.
    /// Without FILE, checks moat's embedded default rules (those `watch` and `replay` use).
    Check(CheckArgs),
    /// List the rules of rule files (default: moat's embedded rules): name, priority, enabled, MITRE ids.
    List(CheckArgs),
    /// Show what one rule matches: event types, the condition as evaluated (with its exceptions),
    /// priority, where it was defined, MITRE ids and the response.
    Explain(ExplainArgs),
}

#[derive(clap::Args, Debug)]
pub struct ExplainArgs {
    /// The rule's name (e.g. "moat Shell in container").
    pub rule: String,
    /// Rule files, loaded in order. Default: moat's embedded rules.
    #[arg(long = "rules", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    #[command(flatten)]
    pub out: OutputArgs,
}

fn explain(a: ExplainArgs) -> anyhow::Result<Verdict> {
    let e = load(&a.files)?;
    let Some(r) = e.rules().iter().find(|r| r.name == a.rule) else {
        if let Some(s) = e.skipped.iter().find(|s| s.rule == a.rule) {
            return Err(InputError(format!(
                "rule '{}' is not evaluable by moat: {}",
                a.rule, s.reason
            ))
            .into());
        }
        return Err(InputError(format!("no rule named '{}'", a.rule)).into());
    };
    let types = match r.event_types() {
        Some(t) => t.join(", "),
        None => "any".into(),
    };
    let text = format!(
        "rule: {}\npriority: {}\nenabled: {}\ndefined at: {}\nevent types: {}\ndesc: {}\ncondition (as evaluated, exceptions included): {}\nmitre: {}\nresponse: {}\n",
        r.name,
        r.priority.as_str(),
        r.enabled,
        r.origin,
        types,
        r.desc,
        r.condition.split_whitespace().collect::<Vec<_>>().join(" "),
        r.mitre.join(", "),
        r.response.as_deref().unwrap_or("-"),
    );
    a.out.write(&text)?;
    Ok(Verdict::Pass)
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutFormat {
    Text,
    Json,
}

impl From<OutFormat> for Format {
    fn from(f: OutFormat) -> Format {
        match f {
            OutFormat::Text => Format::Text,
            OutFormat::Json => Format::Json,
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// Rule files, loaded in order (later files append to or override earlier ones).
    /// Default: moat's embedded rules.
    pub files: Vec<PathBuf>,
    /// Output format. Default: text on a terminal, json otherwise.
    #[arg(short = 'f', long, value_enum)]
    pub format: Option<OutFormat>,
    #[command(flatten)]
    pub out: OutputArgs,
}

/// The shared default: human text on a terminal, json into a pipe or file.
fn pick(format: Option<OutFormat>, terminal: bool) -> OutFormat {
    format.unwrap_or(if terminal {
        OutFormat::Text
    } else {
        OutFormat::Json
    })
}

/// Names a list of rule files in messages.
fn names(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Loads rule files; none means moat's embedded defaults. Exit 2 when the files hold no rule, macro or
/// list at all (an empty or truncated file must not pass as "0 rules").
fn load(files: &[PathBuf]) -> anyhow::Result<Engine> {
    let mut l = moat_runtime::Loader::new();
    if files.is_empty() {
        l.add_str("moat_rules.yaml", moat_runtime::rules::DEFAULT_RULES)
            .map_err(|e| InputError(e.to_string()))?;
    }
    for f in files {
        l.add_file(f).map_err(|e| InputError(e.to_string()))?;
    }
    if l.definitions() == 0 {
        return Err(InputError(format!("{}: no rules, macros or lists", names(files))).into());
    }
    Ok(l.build())
}

#[derive(clap::Args, Debug)]
pub struct RuleArgs {
    /// Rule files (Falco's format) to load instead of moat's default rules; repeatable.
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<PathBuf>,
    /// Also load moat's default rules when --rules is given.
    #[arg(long)]
    pub with_default_rules: bool,
    /// A path glob that is not drift (`/opt/app/plugins/*`): added to the `allowed_paths` exceptions
    /// of moat's drift rules; repeatable.
    #[arg(long = "drift-allow", value_name = "GLOB")]
    pub drift_allow: Vec<String>,
}

/// moat's drift rules and the field their `allowed_paths` exception matches.
const DRIFT_RULES: &[(&str, &str)] = &[
    ("moat Drift executable not in the image", "proc.exepath"),
    ("moat Drift script not in the image", "proc.script"),
];

/// Rule text appending `--drift-allow` globs to the drift rules' `allowed_paths` exceptions.
fn drift_allow_rules(globs: &[String]) -> String {
    let values: Vec<Vec<&str>> = globs.iter().map(|g| vec![g.as_str()]).collect();
    let values = serde_json::to_string(&values).unwrap_or_default();
    DRIFT_RULES
        .iter()
        .map(|(rule, _)| {
            format!(
                "- rule: {}\n  exceptions:\n    - name: allowed_paths\n      values: {values}\n  override:\n    exceptions: append\n",
                serde_json::to_string(rule).unwrap_or_default()
            )
        })
        .collect()
}

impl RuleArgs {
    fn engine(&self) -> anyhow::Result<Engine> {
        let defaults = self.rules.is_empty() || self.with_default_rules;
        if !self.drift_allow.is_empty() && !defaults {
            return Err(InputError(
                "--drift-allow applies to moat's drift rules: use it without --rules, or with --with-default-rules".into(),
            )
            .into());
        }
        if self.rules.is_empty() && self.drift_allow.is_empty() {
            return Ok(Engine::default_rules());
        }
        let mut l = moat_runtime::Loader::new();
        if defaults {
            l.add_str("moat_rules.yaml", moat_runtime::rules::DEFAULT_RULES)
                .map_err(|e| InputError(e.to_string()))?;
        }
        if !self.drift_allow.is_empty() {
            l.add_str("--drift-allow", &drift_allow_rules(&self.drift_allow))
                .map_err(|e| InputError(e.to_string()))?;
        }
        for f in &self.rules {
            l.add_file(f).map_err(|e| InputError(e.to_string()))?;
        }
        let e = l.build();
        // Zero rules would silently disable detection (a truncated or empty --rules file).
        let s = e.summary();
        if s.rules == 0 {
            return Err(InputError(format!(
                "{}: no rules loaded (no rules, macros or lists)",
                names(&self.rules)
            ))
            .into());
        }
        if s.evaluable == 0 {
            return Err(InputError(format!(
                "{}: none of the {} rules can be evaluated by moat (see `moat runtime rules check`)",
                names(&self.rules),
                s.rules
            ))
            .into());
        }
        for w in &e.warnings {
            eprintln!("moat: warning: {w}");
        }
        for s in &e.skipped {
            eprintln!("moat: rule skipped: {}: {}", s.rule, s.reason);
        }
        Ok(e)
    }
}

#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// Recorded events, one JSON object per line (`moat runtime watch --record FILE` writes them);
    /// `-` reads standard input.
    pub file: PathBuf,
    #[command(flatten)]
    pub rules: RuleArgs,
    /// Alert format. Default: text on a terminal, json (Falco's JSON lines) otherwise.
    #[arg(short = 'f', long, value_enum)]
    pub format: Option<OutFormat>,
    /// Exit 1 when an alert at or above this priority fires (emergency ... debug).
    #[arg(long = "fail-on", value_name = "PRIORITY")]
    pub fail_on: Option<String>,
    /// Benchmark: load the events once, evaluate them N times, print throughput to stderr, no alerts.
    #[arg(long, value_name = "N", hide = true)]
    pub bench: Option<u32>,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(clap::Args, Debug)]
pub struct WatchArgs {
    #[command(flatten)]
    pub rules: RuleArgs,
    /// Alert format. Default: text on a terminal, json (Falco's JSON lines) otherwise.
    #[arg(short = 'f', long, value_enum)]
    pub format: Option<OutFormat>,
    /// Also POST every alert as JSON to this URL (http://HOST:PORT/PATH), with retries.
    #[arg(long = "output-webhook", value_name = "URL")]
    pub webhook: Option<String>,
    /// Also send every alert to moat server at this URL (POST /api/v1/runtime/alerts), through a
    /// durable on-disk spool (--spool): alerts survive a crash, an unreachable server and a restart.
    #[arg(long = "output-server", value_name = "URL", requires = "token_file")]
    pub output_server: Option<String>,
    /// The token for --output-server (an `ingest` token from `moat server token create`): the file's
    /// first line.
    #[arg(long = "token-file", value_name = "FILE", requires = "output_server")]
    pub token_file: Option<PathBuf>,
    /// Spool directory for --output-server (created 0700; what is left there is sent on the next start).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "/var/lib/moat/runtime-spool"
    )]
    pub spool: PathBuf,
    /// Bound on the spool's size; past it new alerts are refused and counted (still printed).
    #[arg(long, value_name = "BYTES", default_value_t = 256 << 20)]
    pub spool_max_bytes: u64,
    /// Only report events from containers.
    #[arg(long)]
    pub container_only: bool,
    /// Stop after this many seconds (default: until interrupted).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<u64>,
    /// Record every event (JSON lines) to FILE for `moat runtime replay`.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Use the degraded proc-connector sensor (exec/exit only) instead of eBPF.
    #[arg(long)]
    pub degraded: bool,
    /// Serve the sensor's health on `GET http://ADDR/metrics` (Prometheus text): events, ring-buffer
    /// losses, rule evaluation time, detachments and re-attachments (e.g. 127.0.0.1:9376).
    #[arg(long = "metrics-listen", value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// Write a line to this file once the sensor is attached (for scripts and tests).
    #[arg(long, value_name = "FILE", hide = true)]
    pub ready_file: Option<PathBuf>,
}

fn parse_priority(s: &Option<String>) -> anyhow::Result<Option<Priority>> {
    match s {
        None => Ok(None),
        Some(p) => Priority::parse(p)
            .map(Some)
            .ok_or_else(|| InputError(format!("--fail-on: unknown priority '{p}'")).into()),
    }
}

pub fn run(a: Args) -> anyhow::Result<Verdict> {
    match a.cmd {
        Sub::Rules(RulesSub::Check(c)) => check(c),
        Sub::Rules(RulesSub::List(c)) => list(c),
        Sub::Rules(RulesSub::Explain(a)) => explain(a),
        Sub::Replay(r) => replay(r),
        Sub::Watch(w) => watch(w),
        Sub::K8saudit(a) => k8saudit(a),
    }
}

fn check(c: CheckArgs) -> anyhow::Result<Verdict> {
    let e = load(&c.files)?;
    let s = e.summary();
    for w in &s.warnings {
        if w.ends_with(": no rules, macros or lists") {
            eprintln!("moat: warning: {w}");
        }
    }
    let text = match pick(c.format, c.out.is_terminal()) {
        OutFormat::Json => serde_json::to_string_pretty(&s)? + "\n",
        OutFormat::Text => {
            let mut t = format!(
                "rules: {}  evaluable: {}  enabled: {}\n",
                s.rules, s.evaluable, s.enabled
            );
            for k in &s.skipped {
                t.push_str(&format!("skipped: {}: {}\n", k.rule, k.reason));
            }
            for w in &s.warnings {
                t.push_str(&format!("warning: {w}\n"));
            }
            t
        }
    };
    c.out.write(&text)?;
    Ok(Verdict::Pass)
}

fn list(c: CheckArgs) -> anyhow::Result<Verdict> {
    let e = load(&c.files)?;
    let text = match pick(c.format, c.out.is_terminal()) {
        OutFormat::Json => {
            let rules: Vec<_> = e
                .rules()
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "rule": r.name, "priority": r.priority.as_str(), "enabled": r.enabled,
                        "tags": r.tags, "mitre": r.mitre, "desc": r.desc, "source": r.origin.to_string(),
                    })
                })
                .collect();
            let s = e.summary();
            serde_json::to_string_pretty(
                &serde_json::json!({"rules": rules, "skipped": s.skipped}),
            )? + "\n"
        }
        OutFormat::Text => {
            let mut t = String::new();
            for r in e.rules() {
                t.push_str(&format!(
                    "{:<10} {}{}{}\n",
                    r.priority.as_str(),
                    r.name,
                    if r.enabled { "" } else { " (disabled)" },
                    if r.mitre.is_empty() {
                        String::new()
                    } else {
                        format!("  [{}]", r.mitre.join(", "))
                    }
                ));
            }
            for k in &e.summary().skipped {
                t.push_str(&format!("skipped    {}: {}\n", k.rule, k.reason));
            }
            t
        }
    };
    c.out.write(&text)?;
    Ok(Verdict::Pass)
}

/// Runs `each` over the events of `file`, or of standard input for `-`.
fn each_event(file: &Path, each: impl FnMut(moat_runtime::Event)) -> Result<usize, InputError> {
    let r = if file == Path::new("-") {
        moat_runtime::replay::for_each_event_in("standard input", std::io::stdin().lock(), each)
    } else {
        moat_runtime::replay::for_each_event(file, each)
    };
    r.map_err(|e| InputError(e.to_string()))
}

fn bench(r: &ReplayArgs, rounds: u32) -> anyhow::Result<Verdict> {
    let engine = r.rules.engine()?;
    let t0 = std::time::Instant::now();
    let mut events = Vec::new();
    each_event(&r.file, |e| events.push(e))?;
    for (i, e) in events.iter_mut().enumerate() {
        if e.num == 0 {
            e.num = i as u64 + 1;
        }
        e.prepare();
    }
    let parse = t0.elapsed();
    let t1 = std::time::Instant::now();
    let mut matches = 0usize;
    for _ in 0..rounds.max(1) {
        for e in &events {
            matches += engine.count_matches(e);
        }
    }
    let eval = t1.elapsed();
    // The sensor evaluates each event right after building it, while it is in cache: measure that too.
    let t2 = std::time::Instant::now();
    let mut hot_matches = 0usize;
    for e in &events {
        for _ in 0..rounds.max(1) {
            hot_matches += engine.count_matches(e);
        }
    }
    let hot = t2.elapsed();
    let n = events.len() as f64;
    eprintln!(
        "replay bench: {} events, {} rules evaluable; parse+prepare {:.0} events/s; evaluate {:.0} events/s \
         (whole recording per round, {} rounds, {} matches); evaluate-in-cache {:.0} events/s ({} matches); one core",
        events.len(),
        engine.rules().len(),
        n / parse.as_secs_f64().max(1e-9),
        n * rounds.max(1) as f64 / eval.as_secs_f64().max(1e-9),
        rounds.max(1),
        matches,
        n * rounds.max(1) as f64 / hot.as_secs_f64().max(1e-9),
        hot_matches
    );
    Ok(Verdict::Pass)
}

/// Where `replay` streams its alerts: standard output, a temporary sibling of `-o FILE` renamed over
/// it at the end (all or nothing, as every report), or a device/FIFO/link written in place.
enum Sink {
    Stdout(std::io::BufWriter<std::io::StdoutLock<'static>>),
    Atomic(std::io::BufWriter<moat_fsio::AtomicFile>, PathBuf),
    InPlace(std::io::BufWriter<std::fs::File>, PathBuf),
}

impl Sink {
    fn open(out: &OutputArgs) -> anyhow::Result<Sink> {
        let Some(path) = &out.output else {
            return Ok(Sink::Stdout(std::io::BufWriter::new(
                std::io::stdout().lock(),
            )));
        };
        let fail = |e: &dyn std::fmt::Display| -> anyhow::Error {
            InputError(format!("cannot write {}: {e}", path.display())).into()
        };
        if moat_fsio::link_is_planted(path).map_err(|e| fail(&e))? {
            return Err(InputError(format!(
                "cannot write {}: a symbolic link owned by another user in a shared directory; refused",
                path.display()
            ))
            .into());
        }
        let regular_or_new = match std::fs::symlink_metadata(path) {
            Ok(m) => m.file_type().is_file(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => return Err(fail(&e)),
        };
        Ok(if regular_or_new {
            let f = moat_fsio::AtomicFile::create(path, 0o644).map_err(|e| fail(&e))?;
            Sink::Atomic(std::io::BufWriter::new(f), path.clone())
        } else {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(path)
                .map_err(|e| fail(&e))?;
            Sink::InPlace(std::io::BufWriter::new(f), path.clone())
        })
    }

    fn line(&mut self, text: &str) -> std::io::Result<()> {
        let w: &mut dyn Write = match self {
            Sink::Stdout(w) => w,
            Sink::Atomic(w, _) => w,
            Sink::InPlace(w, _) => w,
        };
        w.write_all(text.as_bytes())?;
        w.write_all(b"\n")
    }

    fn finish(self) -> anyhow::Result<()> {
        let fail = |p: &Path, e: &dyn std::fmt::Display| -> anyhow::Error {
            InputError(format!("cannot write {}: {e}", p.display())).into()
        };
        match self {
            Sink::Stdout(mut w) => {
                let _ = w.flush();
                Ok(())
            }
            Sink::Atomic(w, p) => {
                let f = w.into_inner().map_err(|e| fail(&p, e.error()))?;
                f.commit().map_err(|e| fail(&p, &e))
            }
            Sink::InPlace(mut w, p) => w.flush().map_err(|e| fail(&p, &e)),
        }
    }
}

fn replay(r: ReplayArgs) -> anyhow::Result<Verdict> {
    if let Some(n) = r.bench {
        return bench(&r, n);
    }
    let fail_on = parse_priority(&r.fail_on)?;
    let mut engine = r.rules.engine()?;
    let fmt: Format = pick(r.format, r.out.is_terminal()).into();
    let mut worst: Option<Priority> = None;
    // Alerts stream as they fire, to standard output or to -o FILE's temporary sibling: memory stays
    // flat however many alerts there are (the file still appears whole or not at all).
    let mut sink = Sink::open(&r.out)?;
    let to_stdout = matches!(sink, Sink::Stdout(_));
    let mut broken = false;
    let mut write_error: Option<std::io::Error> = None;
    each_event(&r.file, |mut ev| {
        for a in engine.process(&mut ev) {
            worst = Some(worst.map_or(a.priority, |w| w.min(a.priority)));
            if broken || write_error.is_some() {
                continue;
            }
            if let Err(e) = sink.line(&alert::format_alert(&a, fmt)) {
                if to_stdout {
                    // A reader that stops early (`| head`) is not an error; keep the verdict.
                    broken = true;
                } else {
                    write_error = Some(e);
                }
            }
        }
    })?;
    if let Some(e) = write_error {
        let name = r
            .out
            .output
            .as_deref()
            .unwrap_or(Path::new("-"))
            .display()
            .to_string();
        return Err(InputError(format!("cannot write {name}: {e}")).into());
    }
    sink.finish()?;
    Ok(match (fail_on, worst) {
        (Some(f), Some(w)) if w <= f => Verdict::Fail,
        _ => Verdict::Pass,
    })
}

fn watch(w: WatchArgs) -> anyhow::Result<Verdict> {
    let engine = w.rules.engine()?;
    let fmt: Format = pick(w.format, std::io::stdout().is_terminal()).into();
    let webhook = match &w.webhook {
        Some(u) => Some(alert::Webhook::start(u, 4096).map_err(|e| InputError(e.to_string()))?),
        None => None,
    };
    let spool = match (&w.output_server, &w.token_file) {
        (Some(url), Some(tf)) => Some(open_spool(url, tf, &w.spool, w.spool_max_bytes)?),
        _ => None,
    };
    let mut spool_error_shown = false;
    let mut record = match &w.record {
        // A link planted at the recording's name is refused, not written through.
        Some(p) => Some(std::io::BufWriter::new(
            moat_fsio::create_truncate_nofollow(p, 0o644)
                .with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => None,
    };
    let opts = moat_runtime::sensor::Options {
        container_only: w.container_only,
        duration: w.duration.map(std::time::Duration::from_secs),
        degraded: w.degraded,
        ready_file: w.ready_file.clone(),
        metrics: Default::default(),
    };
    if let Some(addr) = &w.metrics_listen {
        let bound = moat_runtime::sensor::metrics::serve(addr, opts.metrics.clone())
            .map_err(|e| InputError(format!("--metrics-listen {addr}: {e}")))?;
        eprintln!("moat: metrics on http://{bound}/metrics");
    }
    let stdout = std::io::stdout();
    let stats = moat_runtime::sensor::run(engine, &opts, |ev, alerts| {
        if let Some(r) = record.as_mut() {
            let _ = serde_json::to_writer(&mut *r, ev);
            let _ = r.write_all(b"\n");
        }
        let mut o = stdout.lock();
        for a in alerts {
            let _ = writeln!(o, "{}", alert::format_alert(a, fmt));
            if let Some(h) = &webhook {
                h.send(a);
            }
        }
        if let Some(sp) = &spool
            && let Err(e) = sp.push(alerts)
            && !spool_error_shown
        {
            spool_error_shown = true;
            eprintln!("moat: error: {e} (alerts are still printed)");
        }
        let _ = o.flush();
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(mut r) = record {
        r.flush()?;
    }
    eprintln!(
        "moat: sensor {}: {} events, {} alerts, {} lost in the ring buffer",
        stats.sensor, stats.events, stats.alerts, stats.lost
    );
    if let Some(sp) = spool {
        let f = sp.finish(std::time::Duration::from_secs(10));
        eprintln!(
            "moat: server: {} alerts spooled, {} delivered, {} left in {} (sent on the next start), \
             {} rejected (kept as rejected-*.ndjson), {} refused (spool full), {} torn lines dropped",
            f.spooled,
            f.delivered,
            f.left,
            w.spool.display(),
            f.rejected,
            f.refused_full,
            f.torn
        );
        if let Some(e) = f.last_error.filter(|_| f.left > 0 || f.rejected > 0) {
            eprintln!("moat: server: last error: {e}");
        }
    }
    if let Some(h) = webhook {
        let (dropped, failed) = h.finish();
        if dropped + failed > 0 {
            eprintln!(
                "moat: webhook: {dropped} alerts dropped (queue full), {failed} failed after retries"
            );
        }
    }
    Ok(Verdict::Pass)
}
