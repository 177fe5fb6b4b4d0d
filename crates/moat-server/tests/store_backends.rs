//! The store on both backends: SQLite (a temp file) and a real PostgreSQL 15 the test starts.
//! Tokens (hash only, scopes), the job queue (one digest never claimed twice, expired leases reclaimed,
//! dedupe keys), the outbox (claimed once), migrations re-run idempotently.

use std::collections::HashSet;

use moat_server::store::outbox;
use moat_server::store::queue::{self, LANE_PUSH, LANE_REEVAL, NewJob};
use moat_server::store::{Scope, Store};
use serde_json::json;

async fn exercise(url: &str) {
    let store = Store::connect(url).await.expect("connect");
    // Migrations again: a no-op.
    let again = Store::connect(url).await.expect("reconnect");
    drop(again);

    // Tokens: the secret is shown once; the store keeps its hash.
    let (info, secret) = store
        .create_token("ci", &[Scope::Ingest])
        .await
        .expect("token");
    assert!(secret.starts_with("moat_") && secret.len() > 40);
    let got = store.verify_token(&secret).await.unwrap().expect("valid");
    assert_eq!(got.id, info.id);
    assert!(got.allows(Scope::Ingest) && !got.allows(Scope::Read));
    assert!(store.verify_token("moat_wrong").await.unwrap().is_none());
    let stored: Vec<String> = sqlx::query_scalar("SELECT hash FROM token")
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert!(stored.iter().all(|h| !h.contains(&secret[5..])));
    assert!(store.revoke_token(&info.id).await.unwrap());
    assert!(store.verify_token(&secret).await.unwrap().is_none());

    // Queue: dedupe key, two jobs of one digest never running at once, lanes, priority.
    let mut tx = store.begin().await.unwrap();
    let a = queue::enqueue(
        &mut tx,
        &NewJob::new(LANE_PUSH, "sha256:aa", json!({"n": 1})).dedupe("ev-1"),
    )
    .await
    .unwrap();
    assert!(a.is_some());
    let dup = queue::enqueue(
        &mut tx,
        &NewJob::new(LANE_PUSH, "sha256:aa", json!({"n": 1})).dedupe("ev-1"),
    )
    .await
    .unwrap();
    assert!(dup.is_none(), "same dedupe key enqueued twice");
    queue::enqueue(
        &mut tx,
        &NewJob::new(LANE_PUSH, "sha256:aa", json!({"n": 2})),
    )
    .await
    .unwrap();
    queue::enqueue(
        &mut tx,
        &NewJob::new(LANE_PUSH, "sha256:bb", json!({"n": 3})),
    )
    .await
    .unwrap();
    queue::enqueue(
        &mut tx,
        &NewJob::new(LANE_REEVAL, "sha256:cc", json!({"n": 4})),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let j1 = store
        .claim(LANE_PUSH, "w1", 60_000)
        .await
        .unwrap()
        .expect("job");
    let j2 = store
        .claim(LANE_PUSH, "w2", 60_000)
        .await
        .unwrap()
        .expect("job");
    assert_ne!(
        j1.concurrency_key, j2.concurrency_key,
        "one digest claimed twice"
    );
    assert!(
        store
            .claim(LANE_PUSH, "w3", 60_000)
            .await
            .unwrap()
            .is_none(),
        "the second sha256:aa job must wait for the first"
    );
    // The re-evaluation lane is separate.
    let r = store
        .claim(LANE_REEVAL, "w4", 60_000)
        .await
        .unwrap()
        .expect("reeval");
    assert_eq!(r.concurrency_key, "sha256:cc");
    // Lost lease: complete by someone else fails; the owner completes.
    let mut tx = store.begin().await.unwrap();
    assert!(!queue::complete(&mut tx, &j1.id, "intruder").await.unwrap());
    assert!(queue::complete(&mut tx, &j1.id, "w1").await.unwrap());
    tx.commit().await.unwrap();
    // Now the second aa job can run; lease it for 1 ms and let it expire: another worker reclaims it.
    let j3 = store
        .claim(LANE_PUSH, "w5", 1)
        .await
        .unwrap()
        .expect("aa #2");
    assert_eq!(j3.concurrency_key, "sha256:aa");
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let j3b = store
        .claim(LANE_PUSH, "w6", 60_000)
        .await
        .unwrap()
        .expect("reclaimed");
    assert_eq!(j3b.id, j3.id);
    assert_eq!(j3b.attempts, 2);
    assert!(
        !store.heartbeat(&j3.id, "w5", 60_000).await.unwrap(),
        "old owner lost it"
    );
    assert!(store.heartbeat(&j3.id, "w6", 60_000).await.unwrap());
    // Retry to dead after max attempts.
    let st = store.retry(&j2.id, "w2", 0, "registry down").await.unwrap();
    assert_eq!(st.as_deref(), Some("queued"));
    let depth = store.queue_depth().await.unwrap();
    let push = depth
        .iter()
        .find(|d| d.lane == LANE_PUSH)
        .expect("push lane");
    assert_eq!((push.queued, push.running), (1, 1));

    // Concurrent claimers: 40 jobs over 10 digests, 4 claimers; every job done once, never two of a
    // digest running at once.
    let mut tx = store.begin().await.unwrap();
    for i in 0..40 {
        queue::enqueue(
            &mut tx,
            &NewJob::new("manual", format!("sha256:d{}", i % 10), json!({"i": i})),
        )
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let running = std::sync::Arc::new(std::sync::Mutex::new(HashSet::<String>::new()));
    let done = std::sync::Arc::new(std::sync::Mutex::new(Vec::<i64>::new()));
    let mut tasks = Vec::new();
    for w in 0..4 {
        let store = store.clone();
        let running = running.clone();
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let me = format!("c{w}");
            loop {
                let Some(job) = store.claim("manual", &me, 60_000).await.unwrap() else {
                    break;
                };
                assert!(
                    running.lock().unwrap().insert(job.concurrency_key.clone()),
                    "{} claimed while running",
                    job.concurrency_key
                );
                tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                running.lock().unwrap().remove(&job.concurrency_key);
                assert!(store.complete_job(&job.id, &me).await.unwrap());
                done.lock()
                    .unwrap()
                    .push(job.payload["i"].as_i64().unwrap());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // A claimer may stop early while the remaining jobs' digests were running: drain what is left.
    while let Some(job) = store.claim("manual", "drain", 60_000).await.unwrap() {
        assert!(store.complete_job(&job.id, "drain").await.unwrap());
        done.lock()
            .unwrap()
            .push(job.payload["i"].as_i64().unwrap());
    }
    let mut d = done.lock().unwrap().clone();
    d.sort();
    assert_eq!(d, (0..40).collect::<Vec<_>>(), "every job exactly once");

    // Outbox: written in a transaction, claimed once; an expired claim is re-claimable.
    let mut tx = store.begin().await.unwrap();
    assert!(
        outbox::insert(
            &mut tx,
            "finding.new",
            "sha256:aa",
            &json!({"x": 1}),
            Some("k1")
        )
        .await
        .unwrap()
    );
    assert!(
        !outbox::insert(
            &mut tx,
            "finding.new",
            "sha256:aa",
            &json!({"x": 1}),
            Some("k1")
        )
        .await
        .unwrap()
    );
    tx.commit().await.unwrap();
    let first = store.claim_outbox("d1", 10, 1).await.unwrap();
    assert_eq!(first.len(), 1);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let second = store.claim_outbox("d2", 10, 60_000).await.unwrap();
    assert_eq!(second.len(), 1, "expired claim reclaimed");
    assert!(
        store
            .claim_outbox("d3", 10, 60_000)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(!store.outbox_done(&first[0].id, "d1").await.unwrap());
    assert!(store.outbox_done(&second[0].id, "d2").await.unwrap());
    assert_eq!(store.outbox_pending().await.unwrap(), 0);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    exercise(&format!("sqlite:{}", dir.path().join("s.db").display())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_on_postgres() {
    let Some(pg) = moat_testkit::postgres::Postgres::start() else {
        return;
    };
    exercise(&pg.url()).await;
}
