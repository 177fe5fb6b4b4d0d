//! Durable alert delivery with the real `moat server` binary, on SQLite and on a real PostgreSQL:
//! a loopback webhook receiver that fails 3 times then succeeds gets the alert exactly once (4
//! attempts, same bytes and Idempotency-Key each time, status queryable); `kill -9` while alerts are
//! pending, restart, and every pending alert is delivered exactly once.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

fn deliveries(port: u16) -> Value {
    let (st, b) = get(port, "/api/v1/alerts/deliveries?limit=1000");
    assert_eq!(st, 200, "{b}");
    serde_json::from_str(&b).expect("deliveries JSON")
}

fn metric(port: u16, name: &str) -> u64 {
    let (st, b) = get(port, "/metrics");
    assert_eq!(st, 200);
    b.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics:\n{b}"))
}

fn fails_three_times_then_once(store: &str) {
    let dir = tempfile::tempdir().expect("tmp");
    let rx = Receiver::start(|n, _| if n < 3 { 500 } else { 200 });
    let cfg = alert_config(dir.path(), rx.port, 100, "");
    let s = start(
        store,
        dir.path(),
        &["--config", cfg.to_str().expect("utf8")],
    );
    let p = s.port;
    // One matching alert, the same alert again (a duplicate), and one the rule does not match.
    let alert = falco_alert(1, "Terminal shell in container", "prod");
    let (st, b) = post(p, "/api/v1/runtime/alerts", alert.to_string().as_bytes());
    assert_eq!(st, 202, "{b}");
    assert_eq!(b, json!({"accepted": 1, "duplicates": 0}));
    let (st, b) = post(p, "/api/v1/runtime/alerts", alert.to_string().as_bytes());
    assert_eq!(st, 202, "{b}");
    assert_eq!(b, json!({"accepted": 0, "duplicates": 1}));
    let other = falco_alert(2, "Terminal shell in container", "dev");
    let (st, _) = post(p, "/api/v1/runtime/alerts", other.to_string().as_bytes());
    assert_eq!(st, 202);

    assert!(
        wait_for(
            Duration::from_secs(20),
            || deliveries(p)["counts"]["delivered"] == 1
        ),
        "not delivered: {} / receiver {:?} / log {}",
        deliveries(p),
        rx.received().len(),
        s.log_text()
    );
    // Nothing more arrives afterwards (the poll interval is 50 ms; retries were 100-400 ms apart).
    std::thread::sleep(Duration::from_millis(1500));
    let got = rx.received();
    assert_eq!(
        got.iter().map(|r| r.status).collect::<Vec<_>>(),
        [500, 500, 500, 200],
        "three failures then one success, nothing after"
    );
    assert!(!got[0].idempotency_key.is_empty());
    assert!(
        got.iter()
            .all(|r| r.idempotency_key == got[0].idempotency_key && r.body == got[0].body),
        "every retry sends the same bytes and key"
    );
    let body: Value = serde_json::from_slice(&got[3].body).expect("webhook JSON");
    assert_eq!(body["rule"]["id"], "shell-in-prod");
    assert_eq!(body["event"], "runtime.alert");
    assert_eq!(body["data"]["namespace"], "prod");
    assert_eq!(body["data"]["rule"], "Terminal shell in container");
    assert_eq!(body["id"], got[0].idempotency_key.as_str());

    let d = deliveries(p);
    let rows = d["deliveries"].as_array().expect("rows");
    assert_eq!(rows.len(), 1, "only the prod alert matched: {d}");
    assert_eq!(rows[0]["state"], "delivered");
    assert_eq!(rows[0]["attempts"], 4);
    assert_eq!(rows[0]["target"], "receiver");
    assert_eq!(rows[0]["last_error"], Value::Null);
    assert_eq!(metric(p, "moat_alerts_sent_total"), 1);
    assert_eq!(metric(p, "moat_alerts_failed_total"), 3);
    // Status is filterable.
    let (st, b) = get(p, "/api/v1/alerts/deliveries?state=failed");
    assert_eq!(st, 200);
    assert!(b.contains("\"deliveries\":[]"), "{b}");
    let (st, b) = get(p, "/api/v1/alerts/deliveries?state=sent");
    assert_eq!(st, 400, "{b}");
}

fn kill9_with_pending_alerts(store: &str) {
    const N: usize = 40;
    let dir = tempfile::tempdir().expect("tmp");
    // The receiver refuses everything until the first server is dead, then accepts.
    let accepting = Arc::new(AtomicBool::new(false));
    let a2 = accepting.clone();
    let rx = Receiver::start(
        move |_, _| {
            if a2.load(Ordering::SeqCst) { 200 } else { 503 }
        },
    );
    let cfg = alert_config(dir.path(), rx.port, 100, "");
    let cfg = cfg.to_str().expect("utf8").to_string();
    let mut s = start(store, dir.path(), &["--config", &cfg]);
    let p = s.port;
    // Four requests: an array, NDJSON, an array, one object.
    let alerts: Vec<Value> = (0..N)
        .map(|i| falco_alert(100 + i, "Terminal shell in container", "prod-eu"))
        .collect();
    let bodies = [
        serde_json::to_string(&alerts[0..15]).expect("json"),
        alerts[15..30]
            .iter()
            .map(|a| a.to_string() + "\n")
            .collect::<String>(),
        serde_json::to_string(&alerts[30..39]).expect("json"),
        alerts[39].to_string(),
    ];
    let mut accepted = 0;
    for b in &bodies {
        let (st, v) = post(p, "/api/v1/runtime/alerts", b.as_bytes());
        assert_eq!(st, 202, "{v}");
        accepted += v["accepted"].as_u64().expect("accepted");
    }
    assert_eq!(accepted as usize, N);
    // Every alert has been tried at least once and refused: all are pending.
    assert!(
        wait_for(Duration::from_secs(20), || {
            let keys: std::collections::BTreeSet<String> = rx
                .received()
                .into_iter()
                .map(|r| r.idempotency_key)
                .collect();
            keys.len() == N
        }),
        "not every alert was attempted: {}",
        s.log_text()
    );
    s.kill9();
    // Requests the dead process had already written are still answered (503) by the receiver: let
    // them drain first, so every 2xx below answers the restarted server. (A request the receiver
    // accepted just before a kill would be sent again: delivery is at-least-once, and the stable
    // Idempotency-Key is what lets a receiver drop that one duplicate.)
    let drained = rx.count.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        wait_for(Duration::from_secs(5), || {
            let before = rx.count.load(Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(300));
            rx.count.load(Ordering::SeqCst) == before
        }),
        "receiver still busy after the kill ({drained} requests)"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        rx.accepted_per_key().len(),
        0,
        "nothing accepted before the kill"
    );
    accepting.store(true, Ordering::SeqCst);

    let s2 = start(store, dir.path(), &["--config", &cfg]);
    let p2 = s2.port;
    // Deliveries the dead process held ('sending') wait for their lease (target timeout + 5 s).
    assert!(
        wait_for(Duration::from_secs(40), || rx.accepted_per_key().len() == N),
        "after restart only {} of {N} alerts delivered: {}",
        rx.accepted_per_key().len(),
        s2.log_text()
    );
    assert!(wait_for(Duration::from_secs(10), || {
        deliveries(p2)["counts"]["delivered"] == N
    }));
    // Give a wrong duplicate time to show up, then check: each alert accepted exactly once.
    std::thread::sleep(Duration::from_millis(1500));
    let per_key = rx.accepted_per_key();
    assert_eq!(per_key.len(), N);
    for (k, n) in &per_key {
        assert_eq!(*n, 1, "alert {k} accepted {n} times");
    }
    let d = deliveries(p2);
    for r in d["deliveries"].as_array().expect("rows") {
        assert_eq!(r["state"], "delivered", "{r}");
        assert!(r["attempts"].as_i64().expect("attempts") >= 2, "{r}");
    }
    // The events and alerts themselves survived the kill too.
    let (st, v) = post(p2, "/api/v1/runtime/alerts", bodies[0].as_bytes());
    assert_eq!(st, 202);
    assert_eq!(v, json!({"accepted": 0, "duplicates": 15}));
}

/// A receiver that keeps failing: after `max_attempts` the delivery is `failed` with the receiver's
/// answer as its last error; an admin retry sends it again.
#[test]
fn delivery_gives_up_and_is_retried_by_an_admin() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = format!("sqlite:{}", dir.path().join("s.db").display());
    let up = Arc::new(AtomicBool::new(false));
    let u2 = up.clone();
    let rx = Receiver::start(move |_, _| if u2.load(Ordering::SeqCst) { 204 } else { 502 });
    let cfg = alert_config(dir.path(), rx.port, 50, "");
    let text = std::fs::read_to_string(&cfg).expect("config");
    std::fs::write(&cfg, text.replace("max_attempts: 50", "max_attempts: 3")).expect("config");
    let s = start(
        &store,
        dir.path(),
        &["--config", cfg.to_str().expect("utf8")],
    );
    let p = s.port;
    let (st, _) = post(
        p,
        "/api/v1/runtime/alerts",
        falco_alert(5, "Terminal shell in container", "prod")
            .to_string()
            .as_bytes(),
    );
    assert_eq!(st, 202);
    assert!(
        wait_for(
            Duration::from_secs(20),
            || deliveries(p)["counts"]["failed"] == 1
        ),
        "{}",
        deliveries(p)
    );
    let d = deliveries(p);
    let row = &d["deliveries"][0];
    assert_eq!(row["attempts"], 3);
    assert!(
        row["last_error"]
            .as_str()
            .expect("last_error")
            .contains("attempt 3")
            && row["last_error"]
                .as_str()
                .expect("last_error")
                .contains("HTTP 502"),
        "{row}"
    );
    assert_eq!(rx.received().len(), 3, "no attempt after the last one");
    up.store(true, Ordering::SeqCst);
    let id = row["id"].as_str().expect("id").to_string();
    let (st, v) = post(p, &format!("/api/v1/alerts/deliveries/{id}/retry"), b"");
    assert_eq!(st, 202, "{v}");
    assert!(wait_for(
        Duration::from_secs(10),
        || deliveries(p)["counts"]["delivered"] == 1
    ));
    assert_eq!(
        rx.accepted_per_key().values().copied().collect::<Vec<_>>(),
        [1]
    );
    let (st, _) = post(p, &format!("/api/v1/alerts/deliveries/{id}/retry"), b"");
    assert_eq!(st, 404, "a delivered alert is not retried");
}

#[test]
fn delivery_retries_on_sqlite() {
    let dir = tempfile::tempdir().expect("tmp");
    fails_three_times_then_once(&format!("sqlite:{}", dir.path().join("s.db").display()));
}

#[test]
fn delivery_retries_on_postgres() {
    let Some(pg) = moat_testkit::postgres::Postgres::start() else {
        return;
    };
    fails_three_times_then_once(&pg.url());
}

#[test]
fn delivery_survives_kill9_on_sqlite() {
    let dir = tempfile::tempdir().expect("tmp");
    kill9_with_pending_alerts(&format!("sqlite:{}", dir.path().join("s.db").display()));
}

#[test]
fn delivery_survives_kill9_on_postgres() {
    let Some(pg) = moat_testkit::postgres::Postgres::start() else {
        return;
    };
    kill9_with_pending_alerts(&pg.url());
}
