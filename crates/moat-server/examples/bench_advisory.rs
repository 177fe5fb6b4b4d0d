//! "Which images have CVE-X" on an already seeded store (e.g. the one `bench_server --store` left):
//! `store::query::advisory` for the CVEs with open findings, each in turn, p50/p95/p99, so the query
//! can be measured again without seeding and re-evaluating 10,000 images first.
//!
//! usage: bench_advisory --store URL [--queries N] [--limit L]
//! Prints one JSON object (latencies in ms, images per answer, the answer's JSON size).

use std::time::Instant;

use moat_server::store::{Store, query};
use serde_json::json;
use sqlx::Row;

fn arg(name: &str) -> Option<String> {
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        if a == name {
            return it.next();
        }
    }
    None
}

/// The p-th percentile (nearest rank) of sorted values.
fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

type E = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> Result<(), E> {
    let url = arg("--store").ok_or("--store URL is required")?;
    let queries: usize = arg("--queries").map_or(Ok(2_000), |v| v.parse())?;
    let limit: i64 = arg("--limit").map_or(Ok(10_000), |v| v.parse())?;
    let store = Store::connect(&url).await?;
    // The same CVE list and order as bench_server.
    let cves: Vec<String> = sqlx::query(
        "SELECT DISTINCT va.alias FROM vuln_alias va WHERE va.alias LIKE 'CVE-%' ORDER BY va.alias",
    )
    .fetch_all(store.pool())
    .await?
    .iter()
    .filter_map(|r| r.try_get::<String, _>(0).ok())
    .collect();
    if cves.is_empty() {
        return Err("no CVE aliases in the store: seed it with bench_server first".into());
    }
    let mut lat = Vec::with_capacity(queries);
    let mut hits = Vec::with_capacity(queries);
    let mut bytes = Vec::with_capacity(queries);
    let mut slowest = (0.0f64, String::new());
    for i in 0..queries {
        let id = &cves[(i * 7919) % cves.len()];
        let t = Instant::now();
        let v = query::advisory(&store, id, limit).await?;
        let body = serde_json::to_vec(&v)?;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        if ms > slowest.0 {
            slowest = (ms, id.clone());
        }
        lat.push(ms);
        bytes.push(body.len());
        hits.push(v.map_or(0, |v| v.image_count));
    }
    lat.sort_by(|x, y| x.total_cmp(y));
    hits.sort();
    bytes.sort();
    let out = json!({
        "store": url.split(':').next(),
        "cves": cves.len(),
        "queries": lat.len(),
        "limit": limit,
        "p50_ms": pct(&lat, 50.0),
        "p95_ms": pct(&lat, 95.0),
        "p99_ms": pct(&lat, 99.0),
        "max_ms": pct(&lat, 100.0),
        "slowest": slowest.1,
        "images_per_answer_p50": hits[hits.len() / 2],
        "images_per_answer_max": hits[hits.len() - 1],
        "answer_bytes_max": bytes[bytes.len() - 1],
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    store.close().await;
    Ok(())
}
