//! Durable alert delivery: the dispatcher that turns outbox events into alerts and sends them.
//!
//! Two steps, each crash-safe on its own:
//!
//! 1. **Route.** Claim a batch of outbox events (leased, so a dead dispatcher's claim expires and
//!    another one takes it), match every configured rule against each event, and — in the one
//!    transaction that marks the events done — write one `alert_delivery` row per (rule, subject,
//!    target). `UNIQUE (dedupe_key, target)` with `dedupe_key = rule + subject` ([`dedupe_subject`]:
//!    the image for `image.scanned`, image + finding for `finding.new`, ...) is the dedupe: a second
//!    event about the same subject for the same rule adds nothing, so an alert is sent once.
//! 2. **Deliver.** Claim due delivery rows (`pending` with `next_ms <= now`, or `sending` whose lease
//!    expired because the process that held it died), POST them, then record `delivered`, or
//!    `pending` again with `next_ms` pushed by exponential backoff and `last_error`, or `failed`
//!    after the last attempt. The body is rebuilt from the stored alert, so every retry sends the
//!    same bytes and the same `Idempotency-Key`.
//!
//! Delivery is at-least-once by construction: the one window for a duplicate is a process killed
//! after the receiver answered 2xx and before the `delivered` row committed; the stable alert id
//! (`Idempotency-Key`, CloudEvents `id`, Alertmanager labels) lets the receiver drop it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::Row;

use super::rules::{Event, EventType, RuleError, RuleSet, Target};
use super::targets::{self, Alert};
use crate::metrics::Metrics;
use crate::store::{self, Backend, Store, StoreError, now_ms, outbox};

/// How failed deliveries are retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Wait after the first failed attempt; doubled after each further one.
    pub initial: Duration,
    /// Longest wait between two attempts.
    pub max: Duration,
    /// Attempts before a delivery is given up (`failed`).
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(300),
            max_attempts: 20,
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (1-based): `initial * 2^(attempt-1)`, capped,
    /// with up to 10 % random jitter so many failed deliveries do not retry in lockstep.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(30);
        let base = self
            .initial
            .saturating_mul(1u32 << exp.min(20))
            .min(self.max);
        let mut r = [0u8; 2];
        let jitter = if getrandom::fill(&mut r).is_ok() {
            u16::from_le_bytes(r) as f64 / u16::MAX as f64 * 0.1
        } else {
            0.0
        };
        base.mul_f64(1.0 + jitter).min(self.max.max(self.initial))
    }
}

/// `alerts:` of the server configuration file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertsConfig {
    /// Rule files (YAML, see [`super::rules`]); relative paths are relative to the configuration file.
    pub rule_files: Vec<PathBuf>,
    pub retry: RetryPolicy,
    /// How often the dispatcher looks for new events and due retries when idle.
    pub poll: Duration,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlerts {
    #[serde(default)]
    rules: Vec<PathBuf>,
    #[serde(default)]
    retry: Option<RawRetry>,
    #[serde(default)]
    poll_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetry {
    #[serde(default)]
    initial_ms: Option<u64>,
    #[serde(default)]
    max_ms: Option<u64>,
    #[serde(default)]
    max_attempts: Option<u32>,
}

impl AlertsConfig {
    /// The defaults: no rules, retries from 1 s doubling to 5 min, 20 attempts, 250 ms idle poll.
    pub fn new() -> AlertsConfig {
        AlertsConfig {
            rule_files: Vec::new(),
            retry: RetryPolicy::default(),
            poll: Duration::from_millis(250),
        }
    }

    /// Reads the `alerts:` section of a configuration file's text (other sections belong to other
    /// parts of the server and are skipped); `file` names it in errors, which carry its line, and rule
    /// paths are resolved against its directory. No `alerts:` section: the defaults, no rules.
    pub fn from_config_text(file: &Path, text: &str) -> Result<AlertsConfig, RuleError> {
        #[derive(Deserialize)]
        struct Top {
            #[serde(default)]
            alerts: Option<RawAlerts>,
        }
        let name = file.display().to_string();
        if text.trim().is_empty() {
            return Ok(AlertsConfig::new());
        }
        let top: Top = serde_saphyr::from_str(text).map_err(|e| {
            let at = e
                .location()
                .map(|l| format!("{name}:{}:{}", l.line(), l.column()))
                .unwrap_or_else(|| name.clone());
            let msg = e.to_string();
            let first = msg.lines().next().unwrap_or(&msg).to_string();
            RuleError(format!("{at}: alerts: {first}"))
        })?;
        let Some(raw) = top.alerts else {
            return Ok(AlertsConfig::new());
        };
        let base = file.parent().unwrap_or(Path::new("."));
        let mut c = AlertsConfig::new();
        c.rule_files = raw
            .rules
            .into_iter()
            .map(|p| if p.is_absolute() { p } else { base.join(p) })
            .collect();
        if let Some(r) = raw.retry {
            if let Some(ms) = r.initial_ms {
                c.retry.initial = Duration::from_millis(ms.max(1));
            }
            if let Some(ms) = r.max_ms {
                c.retry.max = Duration::from_millis(ms.max(1));
            }
            if let Some(n) = r.max_attempts {
                if n == 0 {
                    return Err(RuleError(format!(
                        "{name}: alerts.retry.max_attempts must be at least 1"
                    )));
                }
                c.retry.max_attempts = n;
            }
            if c.retry.max < c.retry.initial {
                return Err(RuleError(format!(
                    "{name}: alerts.retry.max_ms is below alerts.retry.initial_ms"
                )));
            }
        }
        if let Some(ms) = raw.poll_ms {
            if !(10..=60_000).contains(&ms) {
                return Err(RuleError(format!(
                    "{name}: alerts.poll_ms must be 10..=60000, not {ms}"
                )));
            }
            c.poll = Duration::from_millis(ms);
        }
        Ok(c)
    }

    /// Loads and validates the rule files (errors name file:line).
    pub fn load_rules(&self) -> Result<RuleSet, RuleError> {
        RuleSet::load(&self.rule_files)
    }
}

/// The state of one delivery, as the API and dashboard show it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub id: String,
    pub alert_id: String,
    pub rule: String,
    pub target: String,
    pub event_type: String,
    pub subject: String,
    /// `pending`, `sending`, `delivered` or `failed`.
    pub state: String,
    pub attempts: i64,
    pub next_ms: i64,
    pub last_error: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub delivered_ms: Option<i64>,
}

/// Filters of [`list`].
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DeliveryQuery {
    pub state: Option<String>,
    pub subject: Option<String>,
    pub rule: Option<String>,
    pub limit: Option<i64>,
}

const RECORD_COLS: &str = "id, alert_id, rule_id, target, event_type, subject, state, attempts, \
     next_ms, last_error, created_ms, updated_ms, delivered_ms";

fn record(r: &sqlx::any::AnyRow) -> Result<DeliveryRecord, StoreError> {
    Ok(DeliveryRecord {
        id: r.try_get(0)?,
        alert_id: r.try_get(1)?,
        rule: r.try_get(2)?,
        target: r.try_get(3)?,
        event_type: r.try_get(4)?,
        subject: r.try_get(5)?,
        state: r.try_get(6)?,
        attempts: r.try_get(7)?,
        next_ms: r.try_get(8)?,
        last_error: r.try_get(9)?,
        created_ms: r.try_get(10)?,
        updated_ms: r.try_get(11)?,
        delivered_ms: r.try_get(12)?,
    })
}

/// Deliveries, newest first.
pub async fn list(store: &Store, q: &DeliveryQuery) -> Result<Vec<DeliveryRecord>, StoreError> {
    if let Some(s) = &q.state
        && !matches!(s.as_str(), "pending" | "sending" | "delivered" | "failed")
    {
        return Err(StoreError::Invalid(format!(
            "state {s:?} is not one of pending, sending, delivered, failed"
        )));
    }
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {RECORD_COLS} FROM alert_delivery WHERE ($1 IS NULL OR state = $1) \
         AND ($2 IS NULL OR subject = $2) AND ($3 IS NULL OR rule_id = $3) \
         ORDER BY created_ms DESC, id DESC LIMIT {limit}"
    )))
    .bind(q.state.as_deref())
    .bind(q.subject.as_deref())
    .bind(q.rule.as_deref())
    .fetch_all(store.pool())
    .await?;
    rows.iter().map(record).collect()
}

/// Puts a `failed` delivery back to `pending` (due now), keeping its attempt count and last error;
/// false when there is no failed delivery with this id.
pub async fn retry(store: &Store, id: &str) -> Result<bool, StoreError> {
    let now = now_ms();
    let mut tx = store.begin().await?;
    let n = sqlx::query(
        "UPDATE alert_delivery SET state = 'pending', next_ms = $1, updated_ms = $1 \
         WHERE id = $2 AND state = 'failed'",
    )
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(n > 0)
}

/// Deliveries per state (`pending`, `sending`, `delivered`, `failed`).
pub async fn counts(store: &Store) -> Result<BTreeMap<String, i64>, StoreError> {
    let rows = sqlx::query(
        "SELECT state, CAST(COUNT(*) AS BIGINT) FROM alert_delivery GROUP BY state ORDER BY state",
    )
    .fetch_all(store.pool())
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

/// The alert id: stable for a (rule, subject), whatever the process or attempt.
pub fn alert_id(rule_id: &str, subject: &str) -> String {
    let d = store::content_digest(format!("{rule_id}\u{1f}{subject}").as_bytes());
    d.trim_start_matches("sha256:")[..32].to_string()
}

/// What "the same alert" means per event type (an alert is sent once per rule and this key):
/// - `image.scanned`: the image digest — one push alert per image, however often it is rescanned;
/// - `finding.new`: the image digest, the finding id and its package — each new finding once;
/// - `image.verdict.changed`: the event itself — every change of verdict is news;
/// - `runtime.alert`, `admission.denied`: the alert's / decision's content digest (their subject).
pub fn dedupe_subject(ev: &outbox::OutboxEvent) -> String {
    match ev.event_type.as_str() {
        "finding.new" => {
            let f = ev.payload.get("finding").unwrap_or(&Value::Null);
            let s = |k: &str| f.get(k).and_then(Value::as_str).unwrap_or("");
            format!("{}\u{1f}{}\u{1f}{}", ev.subject, s("id"), s("purl"))
        }
        "image.verdict.changed" => format!("{}\u{1f}{}", ev.subject, ev.id),
        _ => ev.subject.clone(),
    }
}

/// One claimed delivery.
struct Claimed {
    id: String,
    target: String,
    alert: Alert,
    attempts: i64,
}

const CLAIM_PG: &str = "UPDATE alert_delivery SET state = 'sending', lease_owner = $1, \
     lease_until_ms = $2, attempts = attempts + 1, updated_ms = $3 WHERE id IN (SELECT d.id FROM \
     alert_delivery d WHERE (d.state = 'pending' AND d.next_ms <= $3) OR (d.state = 'sending' AND \
     d.lease_until_ms < $3) ORDER BY d.next_ms, d.id LIMIT $4 FOR UPDATE SKIP LOCKED) \
     RETURNING id, target, rule_id, event_type, subject, alert, created_ms, attempts, alert_id";

const CLAIM_SQLITE: &str = "UPDATE alert_delivery SET state = 'sending', lease_owner = $1, \
     lease_until_ms = $2, attempts = attempts + 1, updated_ms = $3 WHERE id IN (SELECT d.id FROM \
     alert_delivery d WHERE (d.state = 'pending' AND d.next_ms <= $3) OR (d.state = 'sending' AND \
     d.lease_until_ms < $3) ORDER BY d.next_ms, d.id LIMIT $4) \
     RETURNING id, target, rule_id, event_type, subject, alert, created_ms, attempts, alert_id";

/// The dispatcher: one per process that runs workers; many may share a store.
pub struct Dispatcher {
    store: Store,
    metrics: Arc<Metrics>,
    rules: Arc<RuleSet>,
    config: AlertsConfig,
    owner: String,
    /// Outbox events claimed per routing transaction.
    pub outbox_batch: i64,
    /// How long an outbox claim holds before another dispatcher may take the events.
    pub outbox_lease: Duration,
    /// Deliveries in flight at once.
    pub concurrency: usize,
}

impl Dispatcher {
    pub fn new(
        store: Store,
        metrics: Arc<Metrics>,
        rules: Arc<RuleSet>,
        config: AlertsConfig,
    ) -> Dispatcher {
        Dispatcher {
            store,
            metrics,
            rules,
            config,
            owner: format!("dispatch-{}", store::new_id()),
            outbox_batch: 256,
            outbox_lease: Duration::from_secs(10),
            concurrency: 16,
        }
    }

    /// Claims outbox events and writes the deliveries their matching rules ask for; returns the number
    /// of events handled.
    pub async fn route_once(&self) -> Result<usize, StoreError> {
        let events = self
            .store
            .claim_outbox(
                &self.owner,
                self.outbox_batch,
                self.outbox_lease.as_millis() as i64,
            )
            .await?;
        if events.is_empty() {
            return Ok(0);
        }
        let now = now_ms();
        let mut tx = self.store.begin().await?;
        // Mark the whole batch done in one statement (the same condition as `outbox::done_tx`): the
        // ids it returns are the events this dispatcher still owns; one whose claim expired and was
        // taken by another dispatcher is routed there, not here.
        let mut owned = std::collections::HashSet::new();
        for chunk in events.chunks(500) {
            let list: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 3)).collect();
            let sql = format!(
                "UPDATE outbox SET state = 'done', done_ms = $1, lease_owner = NULL, lease_until_ms = NULL \
                 WHERE state = 'claimed' AND lease_owner = $2 AND id IN ({}) RETURNING id",
                list.join(",")
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(now)
                .bind(&self.owner);
            for ev in chunk {
                q = q.bind(ev.id.clone());
            }
            for r in q.fetch_all(&mut *tx).await? {
                owned.insert(r.try_get::<String, _>(0)?);
            }
        }
        let mut handled = 0;
        for ev in &events {
            if !owned.contains(&ev.id) {
                continue;
            }
            handled += 1;
            // An event type no rule can name (a newer producer) is done without alerts.
            let Some(event_type) = EventType::parse(&ev.event_type) else {
                continue;
            };
            let event = Event {
                event_type,
                subject: ev.subject.clone(),
                payload: ev.payload.clone(),
            };
            let key = dedupe_subject(ev);
            for (rule, matched) in self.rules.matching(&event) {
                let dedupe = format!("{}\u{1f}{key}", rule.id);
                let stored = json!({
                    "rule_description": rule.description,
                    "event": ev.payload,
                    "matched": matched,
                })
                .to_string();
                let aid = alert_id(&rule.id, &key);
                for target in &rule.targets {
                    sqlx::query(
                        "INSERT INTO alert_delivery (id, alert_id, dedupe_key, rule_id, target, outbox_id, \
                         event_type, subject, alert, state, attempts, next_ms, created_ms, updated_ms) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', 0, $10, $11, $10) \
                         ON CONFLICT (dedupe_key, target) DO NOTHING",
                    )
                    .bind(store::new_id())
                    .bind(&aid)
                    .bind(&dedupe)
                    .bind(&rule.id)
                    .bind(target)
                    .bind(&ev.id)
                    .bind(&ev.event_type)
                    .bind(&ev.subject)
                    .bind(&stored)
                    .bind(now)
                    .bind(ev.created_ms)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(handled)
    }

    fn delivery_lease(&self) -> Duration {
        let longest = self
            .rules
            .targets
            .values()
            .map(|t| t.timeout)
            .max()
            .unwrap_or(Duration::from_secs(10));
        longest + Duration::from_secs(5)
    }

    async fn claim_deliveries(&self, limit: usize) -> Result<Vec<Claimed>, StoreError> {
        let now = now_ms();
        let sql = match self.store.backend() {
            Backend::Postgres => CLAIM_PG,
            Backend::Sqlite => CLAIM_SQLITE,
        };
        let mut tx = self.store.begin().await?;
        let rows = sqlx::query(sql)
            .bind(&self.owner)
            .bind(now + self.delivery_lease().as_millis() as i64)
            .bind(now)
            .bind(limit.max(1) as i64)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let stored: String = r.try_get(5)?;
            let v: Value = serde_json::from_str(&stored)
                .map_err(|e| StoreError::Corrupt(format!("alert_delivery.alert: {e}")))?;
            out.push(Claimed {
                id: r.try_get(0)?,
                target: r.try_get(1)?,
                attempts: r.try_get(7)?,
                alert: Alert {
                    id: r.try_get(8)?,
                    rule_id: r.try_get(2)?,
                    rule_description: v
                        .get("rule_description")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    event_type: r.try_get(3)?,
                    subject: r.try_get(4)?,
                    event: v.get("event").cloned().unwrap_or(Value::Null),
                    matched: v.get("matched").cloned().unwrap_or(Value::Null),
                    created_ms: r.try_get(6)?,
                },
            });
        }
        Ok(out)
    }

    /// Records the outcome of one attempt (only if this dispatcher still holds the lease).
    async fn finish(&self, c: &Claimed, outcome: Result<(), String>) -> Result<(), StoreError> {
        let now = now_ms();
        let mut tx = self.store.begin().await?;
        let n = match &outcome {
            Ok(()) => {
                sqlx::query(
                    "UPDATE alert_delivery SET state = 'delivered', delivered_ms = $1, updated_ms = $1, \
                     lease_owner = NULL, lease_until_ms = NULL, last_error = NULL \
                     WHERE id = $2 AND state = 'sending' AND lease_owner = $3",
                )
                .bind(now)
                .bind(&c.id)
                .bind(&self.owner)
                .execute(&mut *tx)
                .await?
            }
            Err(e) => {
                let attempts = c.attempts.max(1) as u32;
                let (state, next) = if attempts >= self.config.retry.max_attempts {
                    ("failed", now)
                } else {
                    (
                        "pending",
                        now + self.config.retry.backoff(attempts).as_millis() as i64,
                    )
                };
                let msg: String = e.chars().take(1000).collect();
                sqlx::query(
                    "UPDATE alert_delivery SET state = $1, next_ms = $2, updated_ms = $3, last_error = $4, \
                     lease_owner = NULL, lease_until_ms = NULL \
                     WHERE id = $5 AND state = 'sending' AND lease_owner = $6",
                )
                .bind(state)
                .bind(next)
                .bind(now)
                .bind(format!("attempt {attempts}: {msg}"))
                .bind(&c.id)
                .bind(&self.owner)
                .execute(&mut *tx)
                .await?
            }
        }
        .rows_affected();
        tx.commit().await?;
        if n == 0 {
            eprintln!(
                "moat server: alert delivery {} to {}: lease lost before the outcome was recorded",
                c.id, c.target
            );
        }
        match outcome {
            Ok(()) => self.metrics.alerts_sent.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.metrics.alerts_failed.fetch_add(1, Ordering::Relaxed),
        };
        Ok(())
    }

    async fn deliver(self: &Arc<Self>, c: Claimed) {
        let outcome = match self.rules.targets.get(&c.target).cloned() {
            None => Err(format!(
                "target {:?} is no longer configured (rule files changed)",
                c.target
            )),
            Some(t) => send_blocking(t, c.alert.clone()).await,
        };
        if let Err(e) = &outcome {
            eprintln!(
                "moat server: alert {} ({}) to {}: {e}",
                c.alert.id, c.alert.rule_id, c.target
            );
        }
        let mut tries = 0;
        while let Err(e) = self.finish(&c, outcome.clone()).await {
            // The store is briefly unavailable: the lease keeps the row ours for a while; give up
            // after that and let the lease expire (the delivery is retried, never lost).
            self.metrics.store_error();
            tries += 1;
            if tries > 10 {
                eprintln!("moat server: alert delivery {}: {e}", c.id);
                break;
            }
            tokio::time::sleep(Duration::from_millis(200 * tries)).await;
        }
    }

    /// Runs until the process ends: routes events and delivers alerts, `concurrency` sends in flight.
    pub async fn run(self) {
        let me = Arc::new(self);
        let mut inflight = tokio::task::JoinSet::new();
        loop {
            // Reap finished sends, so `inflight.len()` counts only the running ones.
            while inflight.try_join_next().is_some() {}
            let mut busy = false;
            match me.route_once().await {
                Ok(n) => busy |= n > 0,
                Err(e) => {
                    me.metrics.store_error();
                    eprintln!("moat server: alert routing: {e}");
                }
            }
            let free = me.concurrency.saturating_sub(inflight.len());
            if free > 0 {
                match me.claim_deliveries(free).await {
                    Ok(claimed) => {
                        busy |= !claimed.is_empty();
                        for c in claimed {
                            let d = me.clone();
                            inflight.spawn(async move { d.deliver(c).await });
                        }
                    }
                    Err(e) => {
                        me.metrics.store_error();
                        eprintln!("moat server: alert delivery claim: {e}");
                    }
                }
            }
            if busy && inflight.len() < me.concurrency {
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(me.config.poll) => {}
                Some(_) = inflight.join_next(), if !inflight.is_empty() => {}
            }
        }
    }
}

async fn send_blocking(t: Target, a: Alert) -> Result<(), String> {
    match tokio::task::spawn_blocking(move || targets::send(&t, &a)).await {
        Ok(r) => r,
        Err(e) => Err(format!("send task: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(1000),
            max_attempts: 5,
        };
        let ms = |n| p.backoff(n).as_millis();
        assert!((100..=110).contains(&ms(1)), "{}", ms(1));
        assert!((200..=220).contains(&ms(2)), "{}", ms(2));
        assert!((400..=440).contains(&ms(3)), "{}", ms(3));
        assert_eq!(ms(10), 1000);
        assert_eq!(ms(u32::MAX), 1000);
    }

    #[test]
    fn alerts_section_resolves_rule_paths_and_checks_values() {
        let c = AlertsConfig::from_config_text(
            Path::new("/etc/moat/server.yaml"),
            "gate: {deny_root: false}\nalerts:\n  rules: [rules/a.yaml, /abs/b.yaml]\n  retry: {initial_ms: 50, max_ms: 500, max_attempts: 4}\n  poll_ms: 20\n",
        )
        .expect("valid");
        assert_eq!(
            c.rule_files,
            [
                PathBuf::from("/etc/moat/rules/a.yaml"),
                PathBuf::from("/abs/b.yaml")
            ]
        );
        assert_eq!(c.retry.max_attempts, 4);
        assert_eq!(c.poll, Duration::from_millis(20));
        let e = AlertsConfig::from_config_text(
            Path::new("s.yaml"),
            "alerts:\n  retry: {max_attempts: 0}\n",
        )
        .unwrap_err();
        assert!(e.0.starts_with("s.yaml: alerts.retry.max_attempts"), "{e}");
        let e = AlertsConfig::from_config_text(Path::new("s.yaml"), "alerts:\n  rulez: []\n")
            .unwrap_err();
        assert!(e.0.starts_with("s.yaml:2"), "{e}");
        assert_eq!(
            AlertsConfig::from_config_text(Path::new("s.yaml"), "gate: {}\n").expect("no section"),
            AlertsConfig::new()
        );
    }

    #[test]
    fn dedupe_keys_per_event_type() {
        let ev = |t: &str, id: &str, payload: Value| outbox::OutboxEvent {
            id: id.into(),
            event_type: t.into(),
            subject: "sha256:aa".into(),
            payload,
            created_ms: 0,
            attempts: 1,
        };
        assert_eq!(
            dedupe_subject(&ev("image.scanned", "1", json!({}))),
            "sha256:aa"
        );
        assert_eq!(
            dedupe_subject(&ev("image.scanned", "1", json!({}))),
            dedupe_subject(&ev("image.scanned", "2", json!({}))),
            "a rescan is the same push alert"
        );
        let f = |id: &str| json!({"finding": {"id": id, "purl": "pkg:npm/lodash@4.17.15"}});
        assert_ne!(
            dedupe_subject(&ev("finding.new", "1", f("GHSA-1"))),
            dedupe_subject(&ev("finding.new", "2", f("GHSA-2"))),
            "each new finding of an image alerts"
        );
        assert_eq!(
            dedupe_subject(&ev("finding.new", "1", f("GHSA-1"))),
            dedupe_subject(&ev("finding.new", "2", f("GHSA-1")))
        );
        assert_ne!(
            dedupe_subject(&ev("image.verdict.changed", "1", json!({}))),
            dedupe_subject(&ev("image.verdict.changed", "2", json!({}))),
            "every verdict change alerts"
        );
    }

    #[test]
    fn alert_ids_are_stable_per_rule_and_subject() {
        assert_eq!(alert_id("r", "sha256:aa"), alert_id("r", "sha256:aa"));
        assert_ne!(alert_id("r", "sha256:aa"), alert_id("r2", "sha256:aa"));
        assert_eq!(alert_id("r", "s").len(), 32);
    }
}
