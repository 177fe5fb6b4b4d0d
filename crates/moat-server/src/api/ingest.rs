//! Ingest of what the sensors and the admission webhook saw, and alert delivery status:
//!
//! - `POST /api/v1/runtime/alerts` (ingest): a JSON array of runtime alerts, NDJSON of them, or one
//!   object. An alert is moat's own (`moat runtime watch --format json`: `time`, `rule`, `priority`,
//!   `output`, `output_fields`, `container`, `mitre`...) or Falco's / Falcosidekick's (`http_output`:
//!   `uuid`, `time`, `rule`, `priority`, `output`, `output_fields`, `hostname`, `tags`). Idempotent per
//!   alert content digest (its JSON with keys sorted); one transaction for the whole body inserts the
//!   `runtime_alert` rows, the `workload_image` rows (which image runs where) and one `runtime.alert`
//!   outbox event per new alert, in multi-row statements. 202 `{"accepted":N,"duplicates":M}`.
//! - `POST /api/v1/admission/decisions` (ingest): moat admission decision records or AdmissionReview
//!   request+response pairs; `admission_decision` rows, `workload_image` rows for admitted workloads,
//!   an `admission.denied` outbox event per denial.
//! - `GET /api/v1/alerts/deliveries` (read): the delivery records (state, attempts, last error).
//!
//! Any error stores nothing (the transaction is dropped) and answers 400 naming the item and field.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use moat_model::Severity;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sqlx::Row;

use crate::AppState;
use crate::alerts::delivery;
use crate::api::ApiError;
use crate::auth::Principal;
use crate::store::images::severity_rank;
use crate::store::{Scope, StoreError, Tx, content_digest, new_id, now_ms};

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/api/v1/runtime/alerts", post(post_runtime_alerts))
        .route(
            "/api/v1/admission/decisions",
            post(post_admission_decisions),
        )
        .route("/api/v1/alerts/deliveries", get(get_deliveries))
        .route("/api/v1/sboms", post(post_sbom))
        .route(
            "/api/v1/alerts/deliveries/{id}/retry",
            post(post_delivery_retry),
        )
}

// ---------------------------------------------------------------------------------------------
// Body framing

/// The items of a body: a JSON array, one JSON object, or NDJSON (one object per line). Each item comes
/// with where it was (`item 3`, `line 7`) for messages.
fn items(body: &[u8], what: &str) -> Result<Vec<(String, Value)>, ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|e| ApiError::bad_request(format!("{what}: body is not UTF-8: {e}")))?;
    let t = text.trim_start();
    if t.is_empty() {
        return Err(ApiError::bad_request(format!("{what}: empty body")));
    }
    let out: Vec<(String, Value)> = if t.starts_with('[') {
        let v: Vec<Value> = serde_json::from_str(text).map_err(|e| {
            ApiError::bad_request(format!(
                "{what}: JSON array: line {}, column {}: {e}",
                e.line(),
                e.column()
            ))
        })?;
        v.into_iter()
            .enumerate()
            .map(|(i, v)| (format!("item {i}"), v))
            .collect()
    } else {
        match serde_json::from_str::<Value>(text) {
            Ok(v) => vec![("item 0".to_string(), v)],
            Err(whole) => {
                let mut out = Vec::new();
                for (n, line) in text.lines().enumerate() {
                    let l = line.trim();
                    if l.is_empty() {
                        continue;
                    }
                    let v: Value = serde_json::from_str(l).map_err(|e| {
                        ApiError::bad_request(format!(
                            "{what}: line {}, column {}: {e}",
                            n + 1,
                            e.column()
                        ))
                    })?;
                    out.push((format!("line {}", n + 1), v));
                }
                if out.len() <= 1 {
                    // Not NDJSON either: report the error of the whole body.
                    return Err(ApiError::bad_request(format!(
                        "{what}: line {}, column {}: {whole}",
                        whole.line(),
                        whole.column()
                    )));
                }
                out
            }
        }
    };
    if out.is_empty() {
        return Err(ApiError::bad_request(format!(
            "{what}: no items in the body"
        )));
    }
    for (at, v) in &out {
        if !v.is_object() {
            return Err(ApiError::bad_request(format!(
                "{what}: {at}: expected a JSON object, got {}",
                kind_of(v)
            )));
        }
    }
    Ok(out)
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The JSON text with every object's keys sorted: the content digest does not depend on key order.
fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let sorted: BTreeMap<&String, Value> =
                m.iter().map(|(k, v)| (k, canonical(v))).collect();
            let mut out = Map::new();
            for (k, v) in sorted {
                out.insert(k.clone(), v);
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

fn digest_of(v: &Value) -> String {
    content_digest(canonical(v).to_string().as_bytes())
}

/// RFC 3339 (`2026-08-22T12:00:01.000000000Z`, `...+02:00`) to unix ms.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        if !t.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut frac_ms = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return None;
        }
        let digits = &s[start..i.min(start + 3)];
        frac_ms = digits.parse::<i64>().ok()? * 10i64.pow(3 - digits.len() as u32);
    }
    let offset_min = match s.get(i..)? {
        "Z" | "z" => 0,
        tz if tz.len() == 6 && (tz.starts_with('+') || tz.starts_with('-')) => {
            let oh: i64 = tz.get(1..3)?.parse().ok()?;
            let om: i64 = tz.get(4..6)?.parse().ok()?;
            let sign = if tz.starts_with('-') { -1 } else { 1 };
            sign * (oh * 60 + om)
        }
        _ => return None,
    };
    // Howard Hinnant's days_from_civil.
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60) * 1000) + frac_ms)
}

fn is_digest(s: &str) -> bool {
    s.strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|c| c.is_ascii_hexdigit()))
}

/// (repository, tag, digest) of an image reference `repo[:tag][@sha256:...]`.
fn split_ref(image: &str) -> (String, Option<String>, Option<String>) {
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d.to_string()).filter(|d| is_digest(d))),
        None => (image, None),
    };
    match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') && !tag.is_empty() => {
            (repo.to_string(), Some(tag.to_string()), digest)
        }
        _ => (name.to_string(), None, digest),
    }
}

/// The digest the server knows for `repo:tag` (the tag table, filled by reports and pushes).
async fn tag_digest<'c, E>(
    db: E,
    cache: &mut HashMap<(String, String), Option<String>>,
    repo: &str,
    tag: &str,
) -> Result<Option<String>, StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    let k = (repo.to_string(), tag.to_string());
    if let Some(d) = cache.get(&k) {
        return Ok(d.clone());
    }
    let d = sqlx::query("SELECT digest FROM tag WHERE repository = $1 AND tag = $2")
        .bind(repo)
        .bind(tag)
        .fetch_optional(db)
        .await?
        .map(|r| r.try_get::<String, _>(0))
        .transpose()?;
    cache.insert(k, d.clone());
    Ok(d)
}

/// One `workload_image` row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Workload {
    cluster: String,
    namespace: String,
    pod: String,
    container: String,
    digest: String,
    source: &'static str,
    workload: String,
    image: String,
}

/// Upserts workload rows (deduplicated and sorted, so concurrent upserts lock in one order).
async fn upsert_workloads(tx: &mut Tx, rows: BTreeMap<Workload, i64>) -> Result<(), StoreError> {
    let rows: Vec<(Workload, i64)> = rows.into_iter().collect();
    for chunk in rows.chunks(500) {
        let mut sql = String::from(
            "INSERT INTO workload_image (cluster, namespace, workload, pod, container, image, digest, source, \
             last_seen_ms) VALUES ",
        );
        for i in 0..chunk.len() {
            let b = i * 9;
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "(${},${},${},${},${},${},${},${},${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6,
                b + 7,
                b + 8,
                b + 9
            ));
        }
        sql.push_str(
            " ON CONFLICT (cluster, namespace, pod, container, digest, source) DO UPDATE SET \
             workload = excluded.workload, image = excluded.image, last_seen_ms = CASE WHEN \
             excluded.last_seen_ms > workload_image.last_seen_ms THEN excluded.last_seen_ms \
             ELSE workload_image.last_seen_ms END",
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (w, ts) in chunk {
            q = q
                .bind(w.cluster.clone())
                .bind(w.namespace.clone())
                .bind(w.workload.clone())
                .bind(w.pod.clone())
                .bind(w.container.clone())
                .bind(w.image.clone())
                .bind(w.digest.clone())
                .bind(w.source)
                .bind(*ts);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// How the outbox rows of [`insert_outbox`] are kept unique.
#[derive(Debug, Clone, Copy)]
enum Dedupe {
    /// `event_type:subject` in the outbox's unique `dedupe_key`.
    PerSubject,
    /// The caller writes an event only for a row its own unique key just inserted (no `dedupe_key`:
    /// one random-keyed index entry less per event).
    Caller,
}

/// Outbox events in the caller's transaction, many rows per statement (same columns and dedupe as
/// `store::outbox::insert`).
async fn insert_outbox(
    tx: &mut Tx,
    event_type: &str,
    events: &[(String, String)],
    dedupe: Dedupe,
) -> Result<(), StoreError> {
    let now = now_ms();
    for chunk in events.chunks(1000) {
        let mut sql = String::from(
            "INSERT INTO outbox (id, created_ms, event_type, subject, payload, dedupe_key, state, attempts) VALUES ",
        );
        for i in 0..chunk.len() {
            let b = i * 6;
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "(${},${},${},${},${},${},'pending',0)",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6
            ));
        }
        sql.push_str(" ON CONFLICT (dedupe_key) DO NOTHING");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (subject, payload) in chunk {
            q = q
                .bind(new_id())
                .bind(now)
                .bind(event_type.to_string())
                .bind(subject.clone())
                .bind(payload.clone())
                .bind(match dedupe {
                    Dedupe::PerSubject => Some(format!("{event_type}:{subject}")),
                    Dedupe::Caller => None,
                });
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

#[derive(Debug, Deserialize, Default)]
struct IngestQuery {
    /// The cluster the sender watches (workload rows); `default` when not given.
    cluster: Option<String>,
}

fn cluster_name(q: &IngestQuery) -> Result<String, ApiError> {
    let c = q.cluster.clone().unwrap_or_else(|| "default".into());
    if c.is_empty()
        || c.len() > 253
        || !c
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(ApiError::bad_request(format!(
            "query `cluster` {c:?}: letters, digits, '-', '_' or '.', at most 253"
        )));
    }
    Ok(c)
}

async fn commit(st: &AppState, tx: Tx) -> Result<(), ApiError> {
    tx.commit()
        .await
        .map_err(StoreError::from)
        .inspect_err(|_| st.metrics.store_error())?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Runtime alerts

/// A runtime alert, normalised from moat's or Falco's JSON.
#[derive(Debug, Clone)]
struct RuntimeAlert {
    content_digest: String,
    ts_ms: i64,
    source: String,
    rule: String,
    priority: &'static str,
    severity: Severity,
    namespace: Option<String>,
    pod: Option<String>,
    container_id: Option<String>,
    container_name: Option<String>,
    image: Option<String>,
    repository: Option<String>,
    tag: Option<String>,
    digest: Option<String>,
    output: String,
    sender: &'static str,
    data: Value,
}

/// Falco's priority, spelled as Falco prints it, and the severity moat gives it.
fn priority(s: &str) -> Option<(&'static str, Severity)> {
    Some(match s.trim().to_ascii_lowercase().as_str() {
        "emergency" => ("Emergency", Severity::Critical),
        "alert" => ("Alert", Severity::Critical),
        "critical" => ("Critical", Severity::Critical),
        "error" => ("Error", Severity::High),
        "warning" | "warn" => ("Warning", Severity::Medium),
        "notice" => ("Notice", Severity::Low),
        "informational" | "info" => ("Informational", Severity::Info),
        "debug" => ("Debug", Severity::Info),
        _ => return None,
    })
}

/// A string field, or None when absent, null, empty or Falco's `<NA>`.
fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() && s != "<NA>" => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn parse_runtime_alert(at: &str, v: &Value) -> Result<RuntimeAlert, String> {
    let need = |k: &str| -> Result<String, String> {
        match v.get(k) {
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
            Some(other) => Err(format!(
                "{at}: field `{k}` must be a non-empty string, got {}",
                kind_of(other)
            )),
            None => Err(format!(
                "{at}: field `{k}` is missing (a runtime alert has rule, priority, output, time and \
                 output_fields, as moat runtime watch and Falco's json_output write them)"
            )),
        }
    };
    let rule = need("rule")?;
    let prio_text = need("priority")?;
    let (prio, severity) = priority(&prio_text).ok_or_else(|| {
        format!(
            "{at}: field `priority` is {prio_text:?}, not one of Emergency, Alert, Critical, Error, \
             Warning, Notice, Informational, Debug"
        )
    })?;
    let output = need("output")?;
    let time = need("time")?;
    let ts_ms = parse_rfc3339(&time)
        .ok_or_else(|| format!("{at}: field `time` is {time:?}, not an RFC 3339 time"))?;
    let empty = Map::new();
    let of = match v.get("output_fields") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(m)) => m,
        Some(other) => {
            return Err(format!(
                "{at}: field `output_fields` must be an object, got {}",
                kind_of(other)
            ));
        }
    };
    let c = match v.get("container") {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m),
        Some(other) => {
            return Err(format!(
                "{at}: field `container` must be an object, got {}",
                kind_of(other)
            ));
        }
    };
    let cf = |k: &str| c.and_then(|c| text(c.get(k)));
    let of_ = |k: &str| text(of.get(k));
    let namespace = cf("k8s_ns").or_else(|| of_("k8s.ns.name"));
    let pod = cf("k8s_pod").or_else(|| of_("k8s.pod.name"));
    let container_id = cf("id").or_else(|| of_("container.id"));
    let container_name = cf("name")
        .or_else(|| of_("k8s.container.name"))
        .or_else(|| of_("container.name"));
    let image = cf("image").or_else(|| of_("container.image")).or_else(|| {
        of_("container.image.repository").map(|r| match of_("container.image.tag") {
            Some(t) => format!("{r}:{t}"),
            None => r,
        })
    });
    let (ref_repo, ref_tag, ref_digest) = image
        .as_deref()
        .map(split_ref)
        .map(|(r, t, d)| (Some(r), t, d))
        .unwrap_or_default();
    let repository = cf("image_repository")
        .or_else(|| of_("container.image.repository"))
        .or(ref_repo);
    let tag = cf("image_tag")
        .or_else(|| of_("container.image.tag"))
        .or(ref_tag);
    let digest = of_("container.image.digest")
        .or_else(|| cf("image_digest"))
        .filter(|d| is_digest(d))
        .or(ref_digest);
    let sender = if c.is_some() || v.get("mitre").is_some() {
        "moat"
    } else {
        "falco"
    };
    Ok(RuntimeAlert {
        content_digest: digest_of(v),
        ts_ms,
        source: text(v.get("source")).unwrap_or_else(|| "syscall".into()),
        rule,
        priority: prio,
        severity,
        namespace,
        pod,
        container_id,
        container_name,
        image,
        repository,
        tag,
        digest,
        output,
        sender,
        data: v.clone(),
    })
}

impl RuntimeAlert {
    /// What alert rules see (`runtime.alert` outbox payload).
    fn event(&self, id: &str) -> Value {
        let v = &self.data;
        json!({
            "id": id,
            "content_digest": self.content_digest,
            "rule": self.rule,
            "priority": self.priority,
            "severity": self.severity.as_str(),
            "output": self.output,
            "time": v.get("time"),
            "ts_ms": self.ts_ms,
            "source": self.source,
            "sender": self.sender,
            "hostname": v.get("hostname"),
            "namespace": self.namespace,
            "pod": self.pod,
            "container_id": self.container_id,
            "container": self.container_name,
            "image": self.image,
            "repository": self.repository,
            "tag": self.tag,
            "digest": self.digest,
            "tags": v.get("tags"),
            "mitre": v.get("mitre"),
            "output_fields": v.get("output_fields"),
        })
    }
}

const ALERT_COLS: usize = 15;

/// An alert with its row id and the texts written for it, prepared outside the write transaction.
struct AlertRow<'a> {
    alert: &'a RuntimeAlert,
    id: String,
    data: String,
    event: String,
}

async fn post_runtime_alerts(
    State(st): State<AppState>,
    p: Principal,
    Query(q): Query<IngestQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    p.require(Scope::Ingest)?;
    let cluster = cluster_name(&q)?;
    let mut alerts = Vec::new();
    for (at, v) in items(&body, "runtime alerts")? {
        alerts.push(
            parse_runtime_alert(&at, &v)
                .map_err(|e| ApiError::bad_request(format!("runtime alerts: {e}")))?,
        );
    }
    let total = alerts.len();
    // The same alert twice in one body counts once.
    let mut seen = std::collections::HashSet::new();
    alerts.retain(|a| seen.insert(a.content_digest.clone()));
    let received = now_ms();
    // Everything but the writes happens before the write transaction, so the store's one writer
    // (SQLite) is held only for the inserts: the digest from the alert, else from the tags the
    // server knows (reports, pushes), then each alert's row text and outbox event.
    let mut tags = HashMap::new();
    for a in &mut alerts {
        if a.digest.is_none()
            && let (Some(r), Some(t)) = (&a.repository, &a.tag)
        {
            a.digest = tag_digest(st.store.pool(), &mut tags, r, t)
                .await
                .inspect_err(|_| st.metrics.store_error())?;
        }
    }
    let rows: Vec<AlertRow> = alerts
        .iter()
        .map(|a| {
            let id = new_id();
            AlertRow {
                event: a.event(&id).to_string(),
                data: a.data.to_string(),
                id,
                alert: a,
            }
        })
        .collect();
    let mut tx = st
        .store
        .begin()
        .await
        .inspect_err(|_| st.metrics.store_error())?;
    let mut inserted = std::collections::HashSet::new();
    for chunk in rows.chunks(500) {
        let mut sql = String::from(
            "INSERT INTO runtime_alert (id, content_digest, ts_ms, source, rule, priority, severity, namespace, \
             pod, container_id, image, digest, output, data, received_ms) VALUES ",
        );
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push(',');
            }
            sql.push('(');
            for c in 0..ALERT_COLS {
                if c > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!("${}", i * ALERT_COLS + c + 1));
            }
            sql.push(')');
        }
        // The unique key of migration 0006: ts_ms is parsed from the content, so this refuses
        // exactly the alerts a key on the content digest alone would.
        sql.push_str(" ON CONFLICT (ts_ms, content_digest) DO NOTHING RETURNING content_digest");
        let mut qy = sqlx::query(sqlx::AssertSqlSafe(sql));
        for r in chunk {
            let a = r.alert;
            qy = qy
                .bind(r.id.clone())
                .bind(a.content_digest.clone())
                .bind(a.ts_ms)
                .bind(a.source.clone())
                .bind(a.rule.clone())
                .bind(a.priority)
                .bind(severity_rank(a.severity))
                .bind(a.namespace.clone())
                .bind(a.pod.clone())
                .bind(a.container_id.clone())
                .bind(a.image.clone())
                .bind(a.digest.clone())
                .bind(a.output.clone())
                .bind(r.data.clone())
                .bind(received);
        }
        for r in qy
            .fetch_all(&mut *tx)
            .await
            .map_err(StoreError::from)
            .inspect_err(|_| st.metrics.store_error())?
        {
            inserted.insert(r.try_get::<String, _>(0).map_err(StoreError::from)?);
        }
    }
    // Where each image runs.
    let mut workloads: BTreeMap<Workload, i64> = BTreeMap::new();
    let mut events = Vec::new();
    for r in rows {
        let a = r.alert;
        if !inserted.contains(&a.content_digest) {
            continue;
        }
        if let Some(d) = &a.digest {
            let pod = a
                .pod
                .clone()
                .or_else(|| a.container_name.clone())
                .or_else(|| a.container_id.clone())
                .unwrap_or_default();
            let w = Workload {
                cluster: cluster.clone(),
                namespace: a.namespace.clone().unwrap_or_default(),
                workload: if a.pod.is_some() {
                    format!("Pod/{pod}")
                } else {
                    format!("Container/{pod}")
                },
                pod,
                container: a
                    .container_name
                    .clone()
                    .or_else(|| a.container_id.clone())
                    .unwrap_or_default(),
                digest: d.clone(),
                source: "runtime",
                image: a.image.clone().unwrap_or_default(),
            };
            let ts = workloads.entry(w).or_insert(a.ts_ms);
            *ts = (*ts).max(a.ts_ms);
        }
        events.push((a.content_digest.clone(), r.event));
    }
    upsert_workloads(&mut tx, workloads)
        .await
        .inspect_err(|_| st.metrics.store_error())?;
    // One event per alert this request inserted (a duplicate inserted nothing above).
    insert_outbox(&mut tx, "runtime.alert", &events, Dedupe::Caller)
        .await
        .inspect_err(|_| st.metrics.store_error())?;
    commit(&st, tx).await?;
    let accepted = inserted.len();
    st.metrics
        .runtime_alerts
        .fetch_add(accepted as u64, Ordering::Relaxed);
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"accepted": accepted, "duplicates": total - accepted})),
    )
        .into_response())
}

// ---------------------------------------------------------------------------------------------
// Admission decisions

#[derive(Debug, Clone)]
struct Container {
    name: String,
    image: String,
    digest: Option<String>,
}

#[derive(Debug, Clone)]
struct AdmissionDecision {
    content_digest: String,
    ts_ms: i64,
    allowed: bool,
    operation: String,
    namespace: Option<String>,
    kind: Option<String>,
    name: Option<String>,
    uid: Option<String>,
    /// `Kind/name` of the workload (a Pod's owner when it has one).
    workload: String,
    containers: Vec<Container>,
    reasons: Vec<String>,
    warnings: Vec<String>,
    data: Value,
}

/// The containers of a Kubernetes object (Pod, a pod template owner, CronJob).
fn containers_of(obj: &Value) -> Vec<Container> {
    let spec = [
        "/spec/jobTemplate/spec/template/spec",
        "/spec/template/spec",
        "/spec",
    ]
    .iter()
    .find_map(|p| obj.pointer(p).filter(|s| s.get("containers").is_some()));
    let Some(spec) = spec else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for k in ["initContainers", "containers", "ephemeralContainers"] {
        for c in spec.get(k).and_then(Value::as_array).into_iter().flatten() {
            if let Some(image) = text(c.get("image")) {
                out.push(Container {
                    name: text(c.get("name")).unwrap_or_default(),
                    digest: split_ref(&image).2,
                    image,
                });
            }
        }
    }
    out
}

fn strings(v: Option<&Value>, at: &str, field: &str) -> Result<Vec<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .enumerate()
            .map(|(i, s)| {
                s.as_str().map(str::to_string).ok_or_else(|| {
                    format!("{at}: `{field}[{i}]` must be a string, got {}", kind_of(s))
                })
            })
            .collect(),
        Some(other) => Err(format!(
            "{at}: field `{field}` must be an array of strings, got {}",
            kind_of(other)
        )),
    }
}

fn parse_decision(at: &str, v: &Value, received: i64) -> Result<AdmissionDecision, String> {
    let cd = digest_of(v);
    if v.get("kind").and_then(Value::as_str) == Some("AdmissionReview") {
        // What the webhook saw and answered: request + response.
        let req = v
            .get("request")
            .filter(|r| r.is_object())
            .ok_or_else(|| format!("{at}: AdmissionReview has no `request`"))?;
        let resp = v.get("response").filter(|r| r.is_object()).ok_or_else(|| {
            format!("{at}: AdmissionReview has no `response` (send the answer the webhook gave)")
        })?;
        let allowed = resp
            .get("allowed")
            .and_then(Value::as_bool)
            .ok_or_else(|| format!("{at}: field `response.allowed` must be a boolean"))?;
        let obj = req.get("object").cloned().unwrap_or(Value::Null);
        let kind = req
            .pointer("/kind/kind")
            .and_then(Value::as_str)
            .or_else(|| obj.get("kind").and_then(Value::as_str))
            .map(str::to_string);
        let name = text(req.get("name"))
            .or_else(|| text(obj.pointer("/metadata/name")))
            .or_else(|| text(obj.pointer("/metadata/generateName")));
        let namespace =
            text(req.get("namespace")).or_else(|| text(obj.pointer("/metadata/namespace")));
        let reasons = if allowed {
            Vec::new()
        } else {
            let msg = resp
                .pointer("/status/message")
                .and_then(Value::as_str)
                .unwrap_or("denied");
            let msg = msg.strip_prefix("moat denied the request: ").unwrap_or(msg);
            msg.split("; ").map(str::to_string).collect()
        };
        let warnings = strings(resp.get("warnings"), at, "response.warnings")?;
        let workload = owner_of(&obj, kind.as_deref(), name.as_deref());
        return Ok(AdmissionDecision {
            content_digest: cd,
            ts_ms: received,
            allowed,
            operation: text(req.get("operation")).unwrap_or_default(),
            namespace,
            kind,
            name,
            uid: text(req.get("uid")),
            workload,
            containers: containers_of(&obj),
            reasons,
            warnings,
            data: v.clone(),
        });
    }
    // moat's decision record.
    let allowed = match v.get("allowed") {
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(format!(
                "{at}: field `allowed` must be a boolean, got {}",
                kind_of(other)
            ));
        }
        None => {
            return Err(format!(
                "{at}: field `allowed` is missing (an admission decision is {{allowed, kind, name, \
                 namespace, images or containers, reasons}} or an AdmissionReview with its response)"
            ));
        }
    };
    let ts_ms = match v.get("time") {
        None | Some(Value::Null) => received,
        Some(Value::String(t)) => parse_rfc3339(t)
            .ok_or_else(|| format!("{at}: field `time` is {t:?}, not an RFC 3339 time"))?,
        Some(other) => {
            return Err(format!(
                "{at}: field `time` must be an RFC 3339 string, got {}",
                kind_of(other)
            ));
        }
    };
    let mut containers = Vec::new();
    match v.get("containers") {
        None | Some(Value::Null) => {}
        Some(Value::Array(a)) => {
            for (i, c) in a.iter().enumerate() {
                let image = text(c.get("image")).ok_or_else(|| {
                    format!("{at}: `containers[{i}].image` must be a non-empty string")
                })?;
                let digest = match text(c.get("digest")) {
                    Some(d) if is_digest(&d) => Some(d),
                    Some(d) => {
                        return Err(format!(
                            "{at}: `containers[{i}].digest` {d:?} is not sha256:<64 hex>"
                        ));
                    }
                    None => split_ref(&image).2,
                };
                containers.push(Container {
                    name: text(c.get("name")).unwrap_or_default(),
                    image,
                    digest,
                });
            }
        }
        Some(other) => {
            return Err(format!(
                "{at}: field `containers` must be an array, got {}",
                kind_of(other)
            ));
        }
    }
    for image in strings(v.get("images"), at, "images")? {
        if !containers.iter().any(|c| c.image == image) {
            containers.push(Container {
                name: String::new(),
                digest: split_ref(&image).2,
                image,
            });
        }
    }
    if let Some(obj) = v.get("object").filter(|o| o.is_object()) {
        for c in containers_of(obj) {
            if !containers.iter().any(|x| x.image == c.image) {
                containers.push(c);
            }
        }
    }
    let mut reasons = strings(v.get("reasons"), at, "reasons")?;
    reasons.extend(strings(v.get("denials"), at, "denials")?);
    if !allowed && reasons.is_empty() {
        return Err(format!(
            "{at}: a denial needs its `reasons` (the checks that failed)"
        ));
    }
    let kind = text(v.get("kind"));
    let name = text(v.get("name"));
    Ok(AdmissionDecision {
        content_digest: cd,
        ts_ms,
        allowed,
        operation: text(v.get("operation")).unwrap_or_default(),
        namespace: text(v.get("namespace")),
        workload: text(v.get("workload")).unwrap_or_else(|| {
            owner_of(
                v.get("object").unwrap_or(&Value::Null),
                kind.as_deref(),
                name.as_deref(),
            )
        }),
        kind,
        name,
        uid: text(v.get("uid")),
        containers,
        reasons,
        warnings: strings(v.get("warnings"), at, "warnings")?,
        data: v.clone(),
    })
}

/// `Kind/name` of what owns the object (a Pod's first owner reference), else of the object itself.
fn owner_of(obj: &Value, kind: Option<&str>, name: Option<&str>) -> String {
    if let Some(o) = obj
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        && let (Some(k), Some(n)) = (text(o.get("kind")), text(o.get("name")))
    {
        return format!("{k}/{n}");
    }
    format!("{}/{}", kind.unwrap_or("Object"), name.unwrap_or(""))
}

async fn post_admission_decisions(
    State(st): State<AppState>,
    p: Principal,
    Query(q): Query<IngestQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    p.require(Scope::Ingest)?;
    let cluster = cluster_name(&q)?;
    let received = now_ms();
    let mut decisions = Vec::new();
    for (at, v) in items(&body, "admission decisions")? {
        decisions.push(
            parse_decision(&at, &v, received)
                .map_err(|e| ApiError::bad_request(format!("admission decisions: {e}")))?,
        );
    }
    let total = decisions.len();
    let mut tx = st
        .store
        .begin()
        .await
        .inspect_err(|_| st.metrics.store_error())?;
    let mut accepted = 0;
    let mut tags = HashMap::new();
    let mut workloads = BTreeMap::new();
    let mut events = Vec::new();
    for mut d in decisions {
        let images: Vec<String> = d.containers.iter().map(|c| c.image.clone()).collect();
        let id = new_id();
        let row = sqlx::query(
            "INSERT INTO admission_decision (id, content_digest, ts_ms, allowed, namespace, kind, name, images, \
             reasons, data) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (content_digest) DO NOTHING RETURNING id",
        )
        .bind(&id)
        .bind(&d.content_digest)
        .bind(d.ts_ms)
        .bind(d.allowed as i64)
        .bind(d.namespace.clone())
        .bind(d.kind.clone())
        .bind(d.name.clone())
        .bind(json!(images).to_string())
        .bind(json!(d.reasons).to_string())
        .bind(d.data.to_string())
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::from)
        .inspect_err(|_| st.metrics.store_error())?;
        if row.is_none() {
            continue;
        }
        accepted += 1;
        for c in &mut d.containers {
            if c.digest.is_none()
                && let (r, Some(t), _) = split_ref(&c.image)
            {
                c.digest = tag_digest(&mut *tx, &mut tags, &r, &t)
                    .await
                    .inspect_err(|_| st.metrics.store_error())?;
            }
        }
        // Only an admitted workload runs; a denied one is recorded as a decision and an event.
        if d.allowed && !d.operation.eq_ignore_ascii_case("DELETE") {
            let is_pod = d.kind.as_deref() == Some("Pod");
            for c in &d.containers {
                if let Some(dg) = &c.digest {
                    let w = Workload {
                        cluster: cluster.clone(),
                        namespace: d.namespace.clone().unwrap_or_default(),
                        pod: if is_pod {
                            d.name.clone().unwrap_or_default()
                        } else {
                            String::new()
                        },
                        container: c.name.clone(),
                        digest: dg.clone(),
                        source: "admission",
                        workload: d.workload.clone(),
                        image: c.image.clone(),
                    };
                    let ts = workloads.entry(w).or_insert(d.ts_ms);
                    *ts = (*ts).max(d.ts_ms);
                }
            }
        }
        if !d.allowed {
            let containers: Vec<Value> = d
                .containers
                .iter()
                .map(|c| json!({"name": c.name, "image": c.image, "digest": c.digest}))
                .collect();
            events.push((
                d.content_digest.clone(),
                json!({
                    "id": id,
                    "content_digest": d.content_digest,
                    "cluster": cluster,
                    "namespace": d.namespace,
                    "kind": d.kind,
                    "name": d.name,
                    "workload": d.workload,
                    "operation": d.operation,
                    "uid": d.uid,
                    "ts_ms": d.ts_ms,
                    "images": images,
                    "containers": containers,
                    "reasons": d.reasons,
                    "warnings": d.warnings,
                })
                .to_string(),
            ));
        }
    }
    upsert_workloads(&mut tx, workloads)
        .await
        .inspect_err(|_| st.metrics.store_error())?;
    insert_outbox(&mut tx, "admission.denied", &events, Dedupe::PerSubject)
        .await
        .inspect_err(|_| st.metrics.store_error())?;
    commit(&st, tx).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"accepted": accepted, "duplicates": total - accepted})),
    )
        .into_response())
}

// ---------------------------------------------------------------------------------------------
// SBOMs

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SbomQuery {
    /// The image the SBOM describes (`sha256:<64 hex>`); without it, the SBOM's content digest.
    digest: Option<String>,
    repository: Option<String>,
    tag: Option<String>,
}

/// A temporary file that is removed when dropped (moat's engine reads `sbom:FILE` targets).
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn create(bytes: &[u8]) -> std::io::Result<TempFile> {
        use std::io::Write;
        let p = std::env::temp_dir().join(format!("moat-server-sbom-{}.json", new_id()));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&p)?;
        let t = TempFile(p);
        f.write_all(bytes)?;
        f.sync_all()?;
        Ok(t)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `POST /api/v1/sboms`: a CycloneDX or SPDX JSON SBOM (read by moat-sbom) matched against the
/// server's vulnerability database by moat's scan engine (the `sbom:` target of `moat scan`), then
/// stored and judged like a pushed image's scan (`pipeline::record::record_scan`: SBOM, package
/// index, findings, verdict, `image.scanned`), in one transaction. Idempotent per (body, digest).
async fn post_sbom(
    State(st): State<AppState>,
    p: Principal,
    Query(q): Query<SbomQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    p.require(Scope::Ingest)?;
    let text = std::str::from_utf8(&body)
        .map_err(|e| ApiError::bad_request(format!("sbom: body is not UTF-8: {e}")))?;
    if let Some(d) = &q.digest
        && !is_digest(d)
    {
        return Err(ApiError::bad_request(format!(
            "query `digest` {d:?} is not sha256:<64 hex digits>"
        )));
    }
    for (k, v) in [("repository", &q.repository), ("tag", &q.tag)] {
        if let Some(v) = v
            && (v.is_empty()
                || v.len() > 512
                || v.bytes().any(|b| b.is_ascii_control() || b == b' '))
        {
            return Err(ApiError::bad_request(format!(
                "query `{k}` {v:?} is not an image {k}"
            )));
        }
    }
    // Parse first: a body that is not an SBOM is a 400 naming line and column, before any work.
    let inv = moat_sbom::format::read::read_sbom_str(text, "sbom")
        .map_err(|e| ApiError::bad_request(format!("sbom: {e}")))?;
    if inv.packages.is_empty() {
        return Err(ApiError::bad_request(
            "sbom: no packages in the document (a CycloneDX `components` or SPDX `packages` list)",
        ));
    }
    let digest = q.digest.clone().unwrap_or_else(|| content_digest(&body));
    let upload_key = content_digest(format!("{digest}\n{text}").as_bytes());
    let db = st.config.db.clone();
    let file = TempFile::create(&body).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("sbom: temporary file: {e}"),
        )
    })?;
    let target = format!("sbom:{}", file.0.display());
    let outcome = tokio::task::spawn_blocking(move || {
        let mut req = moat_engine::ScanRequest::new(target);
        req.ignore = moat_engine::IgnoreChoice::None;
        req.scanners.config = false;
        req.db = moat_engine::DbChoice {
            path: db,
            explicit: true,
        };
        moat_engine::scan(&req)
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, format!("scan task: {e}")))?
    .map_err(|e| ApiError::bad_request(format!("sbom: {e}")))?;
    drop(file);
    if !outcome.vulnerabilities_checked() {
        // Fail closed: an SBOM whose packages were not matched is never judged or stored.
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the server has no vulnerability database at {} (moat db update / moat db import --db on the server); nothing stored",
                st.config.db.display()
            ),
        ));
    }
    let policy = crate::pipeline::gate::GatePolicy::load(st.config.pipeline.gate.clone())
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let mut report = outcome.report;
    report.target.name = match (&q.repository, &q.tag) {
        (Some(r), Some(t)) => format!("sbom:{r}:{t}@{digest}"),
        (Some(r), None) => format!("sbom:{r}@{digest}"),
        _ => format!("sbom:{digest}"),
    };
    let meta = crate::store::images::ImageMeta {
        digest: digest.clone(),
        repository: q.repository.clone(),
        tag: q.tag.clone(),
        ..Default::default()
    };
    let mut tx = st
        .store
        .begin()
        .await
        .inspect_err(|_| st.metrics.store_error())?;
    // The upload itself, keyed by its content: a retried upload is a duplicate.
    let fresh = sqlx::query(
        "INSERT INTO report (id, content_digest, kind, digest, target, body, received_ms) \
         VALUES ($1, $2, 'sbom', $3, $4, $5, $6) ON CONFLICT (content_digest) DO NOTHING RETURNING id",
    )
    .bind(new_id())
    .bind(&upload_key)
    .bind(&digest)
    .bind(&report.target.name)
    .bind(text)
    .bind(now_ms())
    .fetch_optional(&mut *tx)
    .await
    .map_err(StoreError::from)
    .inspect_err(|_| st.metrics.store_error())?;
    let Some(row) = fresh else {
        drop(tx);
        let v = st.store.verdict(&digest).await?;
        return Ok((
            StatusCode::OK,
            Json(json!({"digest": digest, "duplicate": true, "verdict": v.map(|v| v.decision)})),
        )
            .into_response());
    };
    let id: String = row.try_get(0).map_err(StoreError::from)?;
    let rec = crate::pipeline::record::record_scan(
        &mut tx,
        &meta,
        &report,
        &outcome.inventory,
        false,
        &policy,
        &crate::pipeline::gate::SignatureStatus::NotChecked,
        &json!({"source": "sbom"}),
    )
    .await
    .inspect_err(|_| st.metrics.store_error())?;
    commit(&st, tx).await?;
    st.metrics.sboms_ingested.fetch_add(1, Ordering::Relaxed);
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": id,
            "digest": digest,
            "duplicate": false,
            "packages": outcome.inventory.packages.len(),
            "findings": report.findings.len(),
            "new_findings": rec.new_findings,
            "verdict": rec.verdict.decision.as_str(),
            "reasons": rec.verdict.reasons,
            "snapshot": report.metadata.get("db_digest"),
        })),
    )
        .into_response())
}

// ---------------------------------------------------------------------------------------------
// Delivery status

async fn get_deliveries(
    State(st): State<AppState>,
    p: Principal,
    Query(q): Query<delivery::DeliveryQuery>,
) -> Result<Response, ApiError> {
    p.require(Scope::Read)?;
    let rows = delivery::list(&st.store, &q).await?;
    let counts = delivery::counts(&st.store).await?;
    Ok(Json(json!({"counts": counts, "deliveries": rows})).into_response())
}

/// `POST /api/v1/alerts/deliveries/{id}/retry` (admin): a delivery that gave up goes back to pending.
async fn post_delivery_retry(
    State(st): State<AppState>,
    p: Principal,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    p.require(Scope::Admin)?;
    if delivery::retry(&st.store, &id).await? {
        Ok((
            StatusCode::ACCEPTED,
            Json(json!({"id": id, "state": "pending"})),
        )
            .into_response())
    } else {
        Err(ApiError::not_found(format!("no failed delivery {id}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2026-08-22T14:44:26.402Z"),
            Some(1_787_409_866_402)
        );
        assert_eq!(
            parse_rfc3339("2026-08-22T14:44:26.402123456Z"),
            Some(1_787_409_866_402)
        );
        assert_eq!(
            parse_rfc3339("2026-08-22T16:44:26.4+02:00"),
            Some(1_787_409_866_400)
        );
        assert_eq!(parse_rfc3339("2000-02-29T00:00:00Z"), Some(951_782_400_000));
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-08-22T14:44:26",
            "2026-08-22T14:44:26.Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn falco_and_moat_alerts_normalise_alike() {
        // The Falcosidekick sample of docs/security-center-research.md §5.4.
        let falco = json!({
            "uuid": "0c5f1a9e-6a6e-4d8e-9d59-5a1f3d1b2c3d",
            "output": "12:00:01.000000000: Warning Shell spawned in a container (user=root container=payments-7d9 shell=sh)",
            "priority": "Warning",
            "rule": "Terminal shell in container",
            "time": "2026-08-22T12:00:01.000000000Z",
            "source": "syscall",
            "tags": ["container", "shell", "mitre_execution"],
            "hostname": "node-3",
            "output_fields": {
                "container.id": "3ad7b26ded6d", "container.image.repository": "harbor.example/team-a/payments",
                "k8s.ns.name": "prod", "k8s.pod.name": "payments-7d9c6f7b9-x2l8q", "proc.cmdline": "sh", "user.name": "root"
            }
        });
        let a = parse_runtime_alert("item 0", &falco).expect("falco alert");
        assert_eq!(a.sender, "falco");
        assert_eq!(a.priority, "Warning");
        assert_eq!(a.severity, Severity::Medium);
        assert_eq!(a.namespace.as_deref(), Some("prod"));
        assert_eq!(a.pod.as_deref(), Some("payments-7d9c6f7b9-x2l8q"));
        assert_eq!(a.container_id.as_deref(), Some("3ad7b26ded6d"));
        assert_eq!(
            a.repository.as_deref(),
            Some("harbor.example/team-a/payments")
        );
        assert_eq!(a.ts_ms, parse_rfc3339("2026-08-22T12:00:01Z").unwrap());
        let moat = json!({
            "time": "2026-08-22T12:00:01.5Z", "rule": "Terminal shell in container", "priority": "Notice",
            "output": "shell", "output_fields": {"proc.name": "sh"}, "tags": [], "source": "syscall",
            "hostname": "n1",
            "container": {"id": "abc123abc123", "runtime": "podman", "image": "reg.example/shop/web:1.0",
                          "k8s_ns": "shop", "k8s_pod": "web-1", "start_ts": 0}
        });
        let m = parse_runtime_alert("line 1", &moat).expect("moat alert");
        assert_eq!(m.sender, "moat");
        assert_eq!(m.severity, Severity::Low);
        assert_eq!(m.repository.as_deref(), Some("reg.example/shop/web"));
        assert_eq!(m.tag.as_deref(), Some("1.0"));
        // Key order does not change the content digest.
        let mut reordered = Map::new();
        for (k, v) in moat.as_object().unwrap().iter().rev() {
            reordered.insert(k.clone(), v.clone());
        }
        assert_eq!(
            parse_runtime_alert("x", &Value::Object(reordered))
                .unwrap()
                .content_digest,
            m.content_digest
        );
        let mut bad = falco.clone();
        bad["priority"] = json!("Severe");
        let e = parse_runtime_alert("item 4", &bad).unwrap_err();
        assert!(
            e.starts_with("item 4: field `priority` is \"Severe\""),
            "{e}"
        );
        let e = parse_runtime_alert("line 2", &json!({"rule": "r"})).unwrap_err();
        assert!(e.starts_with("line 2: field `priority` is missing"), "{e}");
    }

    #[test]
    fn bodies_array_object_and_ndjson() {
        assert_eq!(items(b"[{\"a\":1},{\"a\":2}]", "x").unwrap().len(), 2);
        assert_eq!(items(b"{\n  \"a\": 1\n}\n", "x").unwrap().len(), 1);
        let nd = items(b"{\"a\":1}\n\n{\"a\":2}\r\n{\"a\":3}\n", "x").unwrap();
        assert_eq!(nd.len(), 3);
        assert_eq!(nd[2].0, "line 4");
        let e = items(b"{\"a\":1}\n{\"a\":\n", "x").unwrap_err();
        assert!(e.message.starts_with("x: line 2"), "{}", e.message);
        let e = items(b"[1]", "x").unwrap_err();
        assert!(
            e.message.contains("item 0: expected a JSON object"),
            "{}",
            e.message
        );
        assert!(items(b"  ", "x").is_err());
    }

    #[test]
    fn admission_review_pairs_and_records() {
        let review = json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u1", "kind": {"kind": "Pod"}, "namespace": "shop", "operation": "CREATE",
                "object": {"kind": "Pod", "metadata": {"name": "web-1", "ownerReferences": [{"kind": "ReplicaSet", "name": "web-5d"}]},
                    "spec": {"containers": [{"name": "app", "image": "reg.example/shop/web@sha256:".to_string() + &"a".repeat(64)}]}}},
            "response": {"uid": "u1", "allowed": false, "status": {"message": "moat denied the request: image-scanned: verdict is block; no-root: runs as root"}}
        });
        let d = parse_decision("item 0", &review, 5).expect("review");
        assert!(!d.allowed);
        assert_eq!(
            d.reasons,
            ["image-scanned: verdict is block", "no-root: runs as root"]
        );
        assert_eq!(d.workload, "ReplicaSet/web-5d");
        assert_eq!(
            d.containers[0].digest.as_deref().map(|s| &s[..7]),
            Some("sha256:")
        );
        let rec = json!({"allowed": true, "kind": "Deployment", "name": "api", "namespace": "shop",
            "time": "2026-08-22T12:00:00Z", "containers": [{"name": "api", "image": "reg.example/shop/api:2"}]});
        let d = parse_decision("item 1", &rec, 5).expect("record");
        assert!(d.allowed);
        assert_eq!(d.workload, "Deployment/api");
        assert_eq!(d.containers[0].digest, None);
        let e = parse_decision("item 2", &json!({"allowed": false, "kind": "Pod"}), 5).unwrap_err();
        assert!(e.contains("reasons"), "{e}");
        let e = parse_decision("item 3", &json!({"kind": "Pod"}), 5).unwrap_err();
        assert!(e.starts_with("item 3: field `allowed` is missing"), "{e}");
    }
}
