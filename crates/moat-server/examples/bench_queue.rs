//! Queue benchmark behind bench/scale.sh: claim latency of the job queue (`Store::claim`: `FOR UPDATE SKIP
//! LOCKED` on PostgreSQL, one writer on SQLite) with C claimers racing over N queued push-lane jobs, each
//! claim followed by `complete_job`, as a worker does. Also checks that every job was claimed exactly once.
//!
//! usage: bench_queue --store URL [--jobs N] [--claimers C]
//! Prints one JSON object.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use moat_server::store::Store;
use moat_server::store::queue::{self, LANE_PUSH, NewJob};
use serde_json::json;

fn arg(name: &str) -> Option<String> {
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        if a == name {
            return it.next();
        }
    }
    None
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted
        .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0.0)
}

type E = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<(), E> {
    let store_url = arg("--store").ok_or("--store URL is required")?;
    let jobs: usize = arg("--jobs").map_or(Ok(10_000), |v| v.parse())?;
    let claimers: usize = arg("--claimers").map_or(Ok(3), |v| v.parse())?;
    let store = Store::connect(&store_url).await?;

    let t = Instant::now();
    for chunk in (0..jobs).collect::<Vec<_>>().chunks(1_000) {
        let mut tx = store.begin().await?;
        for i in chunk {
            let digest = format!("sha256:{i:064x}");
            queue::enqueue(
                &mut tx,
                &NewJob::new(LANE_PUSH, digest.clone(), json!({"digest": digest})).dedupe(digest),
            )
            .await?;
        }
        tx.commit().await?;
    }
    let enqueue_s = t.elapsed().as_secs_f64();

    let seen: Arc<Mutex<HashSet<String>>> = Arc::default();
    let dup = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let t = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..claimers {
        let (store, seen, dup) = (store.clone(), seen.clone(), dup.clone());
        tasks.push(tokio::spawn(async move {
            let worker = format!("bench-{c}");
            let mut lat = Vec::new();
            loop {
                let t = Instant::now();
                let Some(job) = store.claim(LANE_PUSH, &worker, 60_000).await? else {
                    break;
                };
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
                if !seen
                    .lock()
                    .map_err(|e| e.to_string())?
                    .insert(job.id.clone())
                {
                    dup.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                store.complete_job(&job.id, &worker).await?;
            }
            Ok::<_, E>(lat)
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await??);
    }
    let run_s = t.elapsed().as_secs_f64();
    lat.sort_by(|a, b| a.total_cmp(b));
    let claimed = seen.lock().map_err(|e| e.to_string())?.len();
    println!(
        "{}",
        json!({
            "store": store_url.split('@').next_back().unwrap_or(""),
            "jobs": jobs,
            "claimers": claimers,
            "enqueue_s": enqueue_s,
            "claimed": claimed,
            "claimed_twice": dup.load(std::sync::atomic::Ordering::Relaxed),
            "claims_per_s": lat.len() as f64 / run_s,
            "claim_ms": {"p50": pct(&lat, 0.5), "p95": pct(&lat, 0.95), "p99": pct(&lat, 0.99),
                "max": lat.last().copied().unwrap_or(0.0)},
        })
    );
    if claimed != jobs {
        return Err(format!("{claimed} of {jobs} jobs claimed").into());
    }
    Ok(())
}
