//! Runtime alert ingest under `kill -9`: concurrent senders POST Falco-shaped alerts (arrays of
//! several sizes and single objects, as Falco's http_output sends one per request) to a real
//! `moat server`; the server is SIGKILLed mid-stream; after a restart every alert the dead server
//! had acknowledged with 202 is stored (sending it again is a duplicate) and has its `runtime.alert`
//! outbox event. On SQLite and on a real PostgreSQL.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

mod common;

use common::{ADMIN, falco_alert, http, start};

/// Senders, each posting its own distinct alerts until the server goes away.
const SENDERS: usize = 6;

fn kill9_mid_ingest(store: &str) {
    let dir = tempfile::tempdir().expect("tmp");
    // No rate limit: the senders go as fast as the server acknowledges.
    let cfg = dir.path().join("server.yaml");
    std::fs::write(&cfg, "limits:\n  requests_per_second: 0\n").expect("config");
    let cfg = cfg.to_str().expect("utf8").to_string();
    let mut s = start(store, dir.path(), &["--config", &cfg]);
    let port = s.port;
    // Every alert a sender got a 202 for, with the count the server said it accepted.
    let acked: Arc<Mutex<Vec<Value>>> = Arc::new(Mutex::new(Vec::new()));
    let mut senders = Vec::new();
    for t in 0..SENDERS {
        let acked = acked.clone();
        senders.push(std::thread::spawn(move || {
            // Batch sizes 1 (Falco's http_output), 7, 50 and 200, in turn.
            let sizes = [1usize, 7, 50, 200];
            let mut next = t * 10_000_000;
            for round in 0.. {
                let n = sizes[(round + t) % sizes.len()];
                let batch: Vec<Value> = (next..next + n)
                    .map(|i| falco_alert(i, "Terminal shell in container", "prod"))
                    .collect();
                next += n;
                let body = if n == 1 {
                    batch[0].to_string()
                } else {
                    serde_json::to_string(&batch).expect("json")
                };
                match http(
                    port,
                    "POST",
                    "/api/v1/runtime/alerts",
                    Some(ADMIN),
                    body.as_bytes(),
                ) {
                    Ok((202, _, b)) => {
                        let v: Value = serde_json::from_str(&b).expect("202 body");
                        assert_eq!(v["accepted"].as_u64(), Some(n as u64), "{b}");
                        acked.lock().expect("lock").extend(batch);
                    }
                    // The server was killed: the request may or may not have been stored, but it
                    // was not acknowledged.
                    _ => return,
                }
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(2500));
    s.kill9();
    for t in senders {
        t.join().expect("sender");
    }
    let acked = acked.lock().expect("lock").clone();
    assert!(
        acked.len() > 100,
        "too few alerts acknowledged before the kill: {}",
        acked.len()
    );

    let s2 = start(store, dir.path(), &["--config", &cfg]);
    // Every acknowledged alert is stored: posted again, each one is a duplicate.
    for chunk in acked.chunks(500) {
        let body = serde_json::to_string(chunk).expect("json");
        let (st, _, b) = http(
            s2.port,
            "POST",
            "/api/v1/runtime/alerts",
            Some(ADMIN),
            body.as_bytes(),
        )
        .expect("POST after restart");
        assert_eq!(st, 202, "{b}");
        let v: Value = serde_json::from_str(&b).expect("json");
        assert_eq!(
            v["accepted"], 0,
            "acknowledged alerts lost by kill -9 (stored again now): {b}"
        );
        assert_eq!(v["duplicates"].as_u64(), Some(chunk.len() as u64), "{b}");
    }
    drop(s2);
    // ... and each has its outbox event (written in the same transaction as the alert).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let st = rt
        .block_on(moat_server::store::Store::connect(store))
        .expect("store");
    let (alerts, events): (i64, i64) = rt.block_on(async {
        use sqlx::Row;
        let one = |sql: &'static str| {
            let pool = st.pool().clone();
            async move {
                sqlx::query(sql)
                    .fetch_one(&pool)
                    .await
                    .and_then(|r| r.try_get::<i64, _>(0))
                    .expect("count")
            }
        };
        (
            one("SELECT CAST(COUNT(*) AS BIGINT) FROM runtime_alert").await,
            one("SELECT CAST(COUNT(*) AS BIGINT) FROM outbox WHERE event_type = 'runtime.alert'")
                .await,
        )
    });
    rt.block_on(st.close());
    assert!(
        alerts >= acked.len() as i64,
        "{alerts} stored, {} acknowledged",
        acked.len()
    );
    assert_eq!(events, alerts, "an alert without its outbox event");
}

#[test]
fn acknowledged_alerts_survive_kill9_on_sqlite() {
    let dir = tempfile::tempdir().expect("tmp");
    kill9_mid_ingest(&format!(
        "sqlite:{}",
        dir.path().join("server.db").display()
    ));
}

#[test]
fn acknowledged_alerts_survive_kill9_on_postgres() {
    let Some(pg) = moat_testkit::postgres::Postgres::start() else {
        return;
    };
    kill9_mid_ingest(&pg.url());
}
