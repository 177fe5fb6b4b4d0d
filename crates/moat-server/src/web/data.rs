//! The dashboard's read queries, over the server core's schema (migrations/0001_core.sql), through
//! the same sqlx `Any` pool as the API: one SQL text for SQLite and PostgreSQL, `$n` placeholders,
//! portable types only. Every list is paginated in SQL and filtered on indexed columns.

use std::collections::BTreeMap;

use serde_json::Value;
use sqlx::any::AnyRow;
// Dynamic SQL here is assembled only from fixed fragments, column names from a fixed list, numbers
// and `$n` placeholders; every value is bound.
use sqlx::{AnyPool, AssertSqlSafe, Row};

use super::views::*;

/// A query failed; the page answers 503 with this message (never the SQL).
#[derive(Debug, thiserror::Error)]
#[error("store: {0}")]
pub struct DataError(#[from] sqlx::Error);

type R<T> = Result<T, DataError>;

fn s(r: &AnyRow, i: usize) -> String {
    r.try_get::<Option<String>, _>(i)
        .ok()
        .flatten()
        .unwrap_or_default()
}

fn n(r: &AnyRow, i: usize) -> i64 {
    r.try_get::<Option<i64>, _>(i).ok().flatten().unwrap_or(0)
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Like a LIKE pattern matching `q` anywhere, with the wildcards in `q` taken literally.
fn contains_pattern(q: &str) -> String {
    let mut p = String::from("%");
    for c in q.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

const DAY_MS: i64 = 86_400_000;

/// Open-findings counts per severity for a set of images (one grouped query on `finding_open`).
async fn counts_for(pool: &AnyPool, digests: &[String]) -> R<BTreeMap<String, SeverityCounts>> {
    let mut out = BTreeMap::new();
    if digests.is_empty() {
        return Ok(out);
    }
    let marks: Vec<String> = (1..=digests.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT digest, severity, COUNT(*) FROM finding WHERE resolved_ms IS NULL \
         AND kind = 'vulnerability' AND digest IN ({}) GROUP BY digest, severity",
        marks.join(",")
    );
    let mut q = sqlx::query(AssertSqlSafe(sql));
    for d in digests {
        q = q.bind(d);
    }
    for r in q.fetch_all(pool).await? {
        let c: &mut SeverityCounts = out.entry(s(&r, 0)).or_default();
        if let Ok(i) = usize::try_from(n(&r, 1))
            && i < 6
        {
            c.0[i] += n(&r, 2);
        }
    }
    Ok(out)
}

/// The overview: the portfolio figures and what changes by the second (alerts, denials, deliveries).
pub async fn overview(pool: &AnyPool, now_ms: i64) -> R<Overview> {
    let mut o = portfolio(pool, now_ms).await?;
    overview_live(pool, &mut o).await?;
    Ok(o)
}

/// The portfolio figures of the overview: images by verdict, open findings by severity and fixability,
/// the 30-day trend and the most urgent images. Each is an aggregate over every open finding, so the web
/// layer computes them once and serves them for a few seconds (see `web::Portfolio`), the way
/// Dependency-Track serves portfolio metrics from a periodic computation.
pub async fn portfolio(pool: &AnyPool, now_ms: i64) -> R<Overview> {
    let mut o = Overview {
        computed_ms: now_ms,
        ..Overview::default()
    };
    for r in sqlx::query(
        "SELECT verdict, COUNT(*) FROM artifact WHERE deleted_ms IS NULL GROUP BY verdict",
    )
    .fetch_all(pool)
    .await?
    {
        o.images += n(&r, 1);
        *o.verdicts.entry(s(&r, 0)).or_default() += n(&r, 1);
    }
    for r in sqlx::query(
        "SELECT f.severity, f.fixable, COUNT(*) FROM finding f JOIN artifact a ON a.digest = f.digest \
         WHERE f.resolved_ms IS NULL AND f.kind = 'vulnerability' AND a.deleted_ms IS NULL \
         GROUP BY f.severity, f.fixable",
    )
    .fetch_all(pool)
    .await?
    {
        let (sev, fix, c) = (n(&r, 0), n(&r, 1), n(&r, 2));
        if let Ok(i) = usize::try_from(sev)
            && i < 6
        {
            if fix != 0 {
                o.fixable.0[i] += c;
            } else {
                o.unfixable.0[i] += c;
            }
        }
    }
    // Trend: open findings at the end of each of the last 30 days, from when each finding was first
    // seen and when it was resolved (both recorded by scans and re-evaluations).
    let start = (now_ms / DAY_MS - 29) * DAY_MS;
    let before: i64 = sqlx::query(
        "SELECT COUNT(*) FROM finding WHERE kind = 'vulnerability' AND first_seen_ms < $1 \
         AND (resolved_ms IS NULL OR resolved_ms >= $1)",
    )
    .bind(start)
    .fetch_one(pool)
    .await
    .map(|r| n(&r, 0))?;
    let mut delta = [0i64; 30];
    for r in sqlx::query(
        "SELECT (first_seen_ms - $1) / 86400000, COUNT(*) FROM finding WHERE kind = 'vulnerability' \
         AND first_seen_ms >= $1 GROUP BY (first_seen_ms - $1) / 86400000",
    )
    .bind(start)
    .fetch_all(pool)
    .await?
    {
        if let Ok(d) = usize::try_from(n(&r, 0))
            && d < 30
        {
            delta[d] += n(&r, 1);
        }
    }
    for r in sqlx::query(
        "SELECT (resolved_ms - $1) / 86400000, COUNT(*) FROM finding WHERE kind = 'vulnerability' \
         AND resolved_ms >= $1 AND first_seen_ms < resolved_ms GROUP BY (resolved_ms - $1) / 86400000",
    )
    .bind(start)
    .fetch_all(pool)
    .await?
    {
        if let Ok(d) = usize::try_from(n(&r, 0))
            && d < 30
        {
            delta[d] -= n(&r, 1);
        }
    }
    let mut open = before;
    for (d, change) in delta.iter().enumerate() {
        open += change;
        o.trend.push((start + d as i64 * DAY_MS, open));
    }
    // Most urgent: severity-weighted open findings x (1 + workloads that run the image).
    let rows = sqlx::query(
        "SELECT a.digest, a.repository, a.tag, s.score, COALESCE(w.n, 0) FROM \
         (SELECT digest, CAST(SUM(CASE severity WHEN 5 THEN 1000 WHEN 4 THEN 100 WHEN 3 THEN 10 \
           WHEN 2 THEN 1 ELSE 0 END) AS BIGINT) AS score FROM finding \
           WHERE resolved_ms IS NULL AND kind = 'vulnerability' GROUP BY digest) s \
         JOIN artifact a ON a.digest = s.digest \
         LEFT JOIN (SELECT digest, COUNT(*) AS n FROM (SELECT DISTINCT digest, cluster, namespace, pod \
           FROM workload_image) d GROUP BY digest) w ON w.digest = s.digest \
         WHERE a.deleted_ms IS NULL AND s.score > 0 \
         ORDER BY s.score * (1 + COALESCE(w.n, 0)) DESC, a.digest LIMIT 10",
    )
    .fetch_all(pool)
    .await?;
    let digests: Vec<String> = rows.iter().map(|r| s(r, 0)).collect();
    let counts = counts_for(pool, &digests).await?;
    for r in rows {
        let d = s(&r, 0);
        o.urgent.push(UrgentImage {
            counts: counts.get(&d).cloned().unwrap_or_default(),
            repository: s(&r, 1),
            tag: s(&r, 2),
            score: n(&r, 3) * (1 + n(&r, 4)),
            workloads: n(&r, 4),
            digest: d,
        });
    }
    Ok(o)
}

/// The parts of the overview that are cheap and change by the second: latest alerts and denials, their
/// counts, alert delivery by state.
pub async fn overview_live(pool: &AnyPool, o: &mut Overview) -> R<()> {
    o.alerts = alerts_page(pool, &AlertQuery::default(), 8).await?.0;
    o.alert_count = count(pool, "SELECT COUNT(*) FROM runtime_alert").await?;
    o.denial_count = count(
        pool,
        "SELECT COUNT(*) FROM admission_decision WHERE allowed = 0",
    )
    .await?;
    o.denials = admission_rows(pool, true, 8).await?;
    for r in sqlx::query(
        "SELECT rule_id, state, COUNT(*) FROM alert_delivery GROUP BY rule_id, state ORDER BY rule_id, state",
    )
    .fetch_all(pool)
    .await?
    {
        o.delivery.push((s(&r, 0), s(&r, 1), n(&r, 2)));
    }
    Ok(())
}

async fn count(pool: &AnyPool, sql: &'static str) -> R<i64> {
    Ok(sqlx::query(sql).fetch_one(pool).await.map(|r| n(&r, 0))?)
}

/// (alerts, denials, a stamp that changes when either does) for live updates.
pub async fn live(pool: &AnyPool) -> R<(i64, i64, String)> {
    let a = sqlx::query("SELECT COUNT(*), MAX(received_ms) FROM runtime_alert")
        .fetch_one(pool)
        .await?;
    let d = sqlx::query("SELECT COUNT(*), MAX(ts_ms) FROM admission_decision WHERE allowed = 0")
        .fetch_one(pool)
        .await?;
    Ok((
        n(&a, 0),
        n(&d, 0),
        format!("{}-{}-{}-{}", n(&a, 0), n(&a, 1), n(&d, 0), n(&d, 1)),
    ))
}

pub const SORTS: &[(&str, &str)] = &[
    ("scanned", "a.last_scanned_ms"),
    ("repository", "a.repository"),
    ("tag", "a.tag"),
    ("packages", "a.package_count"),
    ("verdict", "a.verdict"),
    ("digest", "a.digest"),
];

pub async fn images(pool: &AnyPool, q: &ImageQuery) -> R<ImageList> {
    let col = SORTS
        .iter()
        .find(|(k, _)| *k == q.sort)
        .map_or("a.last_scanned_ms", |(_, c)| c);
    let dir = if q.desc { "DESC" } else { "ASC" };
    let mut wh = vec!["a.deleted_ms IS NULL".to_string()];
    let mut binds: Vec<String> = Vec::new();
    if !q.q.is_empty() {
        binds.push(contains_pattern(&q.q));
        let i = binds.len();
        wh.push(format!(
            "(a.repository LIKE ${i} ESCAPE '\\' OR a.tag LIKE ${i} ESCAPE '\\' OR a.digest LIKE ${i} ESCAPE '\\')"
        ));
    }
    if !q.verdict.is_empty() {
        binds.push(q.verdict.clone());
        wh.push(format!("a.verdict = ${}", binds.len()));
    }
    let wh = wh.join(" AND ");
    let csql = format!("SELECT COUNT(*) FROM artifact a WHERE {wh}");
    let cq = bind_all(sqlx::query(AssertSqlSafe(csql)), &binds);
    let total = cq.fetch_one(pool).await.map(|r| n(&r, 0))?;
    let sql = format!(
        "SELECT a.digest, a.repository, a.tag, a.os, a.package_count, a.verdict, a.signature, \
         a.last_scanned_ms, a.snapshot_digest FROM artifact a WHERE {wh} \
         ORDER BY {col} {dir}, a.digest {dir} LIMIT {} OFFSET {}",
        q.per_page,
        (q.page.max(1) - 1) * q.per_page
    );
    let rows = bind_all(sqlx::query(AssertSqlSafe(sql)), &binds)
        .fetch_all(pool)
        .await?;
    let mut list: Vec<ImageRow> = rows.iter().map(image_row).collect();
    let digests: Vec<String> = list.iter().map(|r| r.digest.clone()).collect();
    let counts = counts_for(pool, &digests).await?;
    for r in &mut list {
        r.counts = counts.get(&r.digest).cloned().unwrap_or_default();
    }
    Ok(ImageList {
        query: q.clone(),
        rows: list,
        total,
    })
}

fn bind_all<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    binds: &'q [String],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    for b in binds {
        q = q.bind(b.as_str());
    }
    q
}

fn image_row(r: &AnyRow) -> ImageRow {
    ImageRow {
        digest: s(r, 0),
        repository: s(r, 1),
        tag: s(r, 2),
        os: s(r, 3),
        packages: n(r, 4),
        verdict: s(r, 5),
        signature: s(r, 6),
        last_scanned_ms: n(r, 7),
        snapshot: s(r, 8),
        counts: SeverityCounts::default(),
    }
}

fn finding_row(data: &Value, severity: i64, kind: &str) -> FindingRow {
    let g = |p: &str| {
        data.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    FindingRow {
        id: g("/id"),
        aliases: strings(data.get("aliases").unwrap_or(&Value::Null)),
        severity: severity_name(severity).to_string(),
        title: g("/title"),
        package: g("/package/name"),
        version: g("/package/version"),
        fixed_versions: strings(
            data.pointer("/vulnerability/fixed_versions")
                .unwrap_or(&Value::Null),
        ),
        kind: kind.to_string(),
        message: g("/message"),
        fix: g("/fix"),
        layer: g("/location/layer"),
    }
}

/// One image. `db` is the server's vulnerability database: the remediation plan re-matches each
/// package's advisories at candidate versions there (the same plan as `GET /api/v1/images/{digest}/remediation`);
/// without it the plan compares the findings' own fixed versions.
pub async fn image(
    pool: &AnyPool,
    digest: &str,
    db: Option<&std::path::Path>,
) -> R<Option<ImageDetail>> {
    let Some(r) = sqlx::query(
        "SELECT digest, repository, tag, os, package_count, verdict, signature, last_scanned_ms, \
         snapshot_digest, arch, config_user, labels FROM artifact WHERE digest = $1",
    )
    .bind(digest)
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let mut d = ImageDetail {
        row: image_row(&r),
        arch: s(&r, 9),
        user: s(&r, 10),
        ..Default::default()
    };
    if let Value::Object(m) = json(&s(&r, 11)) {
        d.labels = m
            .into_iter()
            .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_string)))
            .collect();
    }
    d.row.counts = counts_for(pool, &[digest.to_string()])
        .await?
        .remove(digest)
        .unwrap_or_default();
    for r in sqlx::query(
        "SELECT p.name, p.version, p.purl, p.data FROM image_package ip JOIN package p ON p.id = ip.package_id \
         WHERE ip.digest = $1 ORDER BY p.name, p.version LIMIT 5000",
    )
    .bind(digest)
    .fetch_all(pool)
    .await?
    {
        let data = json(&s(&r, 3));
        d.packages.push(PackageRow {
            name: s(&r, 0),
            version: s(&r, 1),
            purl: s(&r, 2),
            kind: data.get("kind").and_then(Value::as_str).unwrap_or_default().to_string(),
        });
    }
    let mut groups: BTreeMap<(String, String), Vec<FindingRow>> = BTreeMap::new();
    let mut model_findings: Vec<moat_model::Finding> = Vec::new();
    for r in sqlx::query(
        "SELECT kind, severity, data FROM finding WHERE digest = $1 AND resolved_ms IS NULL \
         ORDER BY severity DESC, vuln_id",
    )
    .bind(digest)
    .fetch_all(pool)
    .await?
    {
        let kind = s(&r, 0);
        let data = s(&r, 2);
        let f = finding_row(&json(&data), n(&r, 1), &kind);
        if kind == "vulnerability" {
            if let Ok(m) = serde_json::from_str::<moat_model::Finding>(&data) {
                model_findings.push(m);
            }
            groups
                .entry((f.package.clone(), f.version.clone()))
                .or_default()
                .push(f);
        } else {
            d.checks.push(f);
        }
    }
    let plans = remediation_plans(model_findings, db).await;
    for ((package, version), findings) in groups {
        let plan = plans.iter().find(|pl| {
            pl.installed_version == version
                && (pl.name == package
                    || pl
                        .packages
                        .iter()
                        .any(|p| p == &package || p.contains(&format!("/{package}@"))))
        });
        let remediation = plan.and_then(|pl| pl.target_version.clone());
        let left_open = plan
            .map(|pl| pl.left_open.iter().map(|o| o.id.clone()).collect())
            .unwrap_or_default();
        d.by_package.push(PackageFindings {
            package,
            version,
            findings,
            remediation,
            left_open,
        });
    }
    // Worst package first.
    d.by_package.sort_by_key(|p| {
        std::cmp::Reverse(
            p.findings
                .iter()
                .map(|f| {
                    SEVERITIES
                        .iter()
                        .position(|s| *s == f.severity)
                        .unwrap_or(0)
                })
                .max()
                .unwrap_or(0),
        )
    });
    for r in sqlx::query(
        "SELECT decision, reasons, policy, snapshot_digest, decided_ms FROM verdict WHERE digest = $1 \
         ORDER BY decided_ms DESC LIMIT 50",
    )
    .bind(digest)
    .fetch_all(pool)
    .await?
    {
        d.verdicts.push(VerdictRow {
            decision: s(&r, 0),
            reasons: strings(&json(&s(&r, 1))),
            policy: s(&r, 2),
            snapshot: s(&r, 3),
            decided_ms: n(&r, 4),
        });
    }
    d.workloads = workloads(pool, digest).await?;
    d.alerts = alerts_page(
        pool,
        &AlertQuery {
            image: digest.to_string(),
            ..Default::default()
        },
        20,
    )
    .await?
    .0;
    Ok(Some(d))
}

/// The remediation plans of one image's open findings: the server's one implementation
/// ([`crate::reeval::remediation`], what the API serves). Without a database path (a dashboard built without
/// one) the planner compares each finding's own fixed versions.
async fn remediation_plans(
    findings: Vec<moat_model::Finding>,
    db: Option<&std::path::Path>,
) -> Vec<moat_vulndb::remediation::PackagePlan> {
    match db {
        Some(db) => crate::reeval::remediation(db, findings)
            .await
            .map(|r| r.plans)
            .unwrap_or_default(),
        None => moat_vulndb::remediation::plan(&findings, &[]),
    }
}

async fn workloads(pool: &AnyPool, digest: &str) -> R<Vec<WorkloadRow>> {
    let mut out = Vec::new();
    for r in sqlx::query(
        "SELECT cluster, namespace, workload, pod, container, source, last_seen_ms FROM workload_image \
         WHERE digest = $1 ORDER BY namespace, pod, container LIMIT 500",
    )
    .bind(digest)
    .fetch_all(pool)
    .await?
    {
        out.push(WorkloadRow {
            cluster: s(&r, 0),
            namespace: s(&r, 1),
            workload: s(&r, 2),
            pod: s(&r, 3),
            container: s(&r, 4),
            source: s(&r, 5),
            last_seen_ms: n(&r, 6),
        });
    }
    Ok(out)
}

pub async fn advisory(pool: &AnyPool, id: &str) -> R<Option<Advisory>> {
    // By OSV id or by any alias.
    let mut ids: Vec<String> = vec![id.to_string()];
    for r in sqlx::query("SELECT vuln_id FROM vuln_alias WHERE alias = $1 ORDER BY vuln_id")
        .bind(id)
        .fetch_all(pool)
        .await?
    {
        let v = s(&r, 0);
        if !ids.contains(&v) {
            ids.push(v);
        }
    }
    let marks: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT f.digest, a.repository, a.tag, f.severity, f.data FROM finding f JOIN artifact a ON a.digest = f.digest \
         WHERE f.vuln_id IN ({}) AND f.resolved_ms IS NULL AND a.deleted_ms IS NULL \
         ORDER BY a.repository, a.tag, f.digest LIMIT 1000",
        marks.join(",")
    );
    let rows = bind_all(sqlx::query(AssertSqlSafe(sql)), &ids)
        .fetch_all(pool)
        .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let mut adv = Advisory {
        id: id.to_string(),
        ..Default::default()
    };
    let mut digests = Vec::new();
    for r in &rows {
        let data = json(&s(r, 4));
        let g = |p: &str| {
            data.pointer(p)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        if adv.title.is_empty() {
            adv.id = g("/id");
            adv.title = g("/title");
            adv.details = g("/message");
            adv.aliases = strings(data.get("aliases").unwrap_or(&Value::Null));
            adv.references = strings(data.get("references").unwrap_or(&Value::Null));
            adv.severities.push((
                if g("/vulnerability/severity_source").is_empty() {
                    "moat".into()
                } else {
                    g("/vulnerability/severity_source")
                },
                severity_name(n(r, 3)).to_string(),
            ));
            if let Some(cv) = data
                .pointer("/vulnerability/cvss")
                .and_then(Value::as_array)
            {
                for c in cv {
                    adv.severities.push((
                        c.get("version")
                            .and_then(Value::as_str)
                            .unwrap_or("CVSS")
                            .to_string(),
                        format!(
                            "{} {}",
                            c.get("score").map(Value::to_string).unwrap_or_default(),
                            c.get("vector").and_then(Value::as_str).unwrap_or_default()
                        ),
                    ));
                }
            }
            if let Some(recs) = data
                .pointer("/vulnerability/records")
                .and_then(Value::as_array)
            {
                for rec in recs {
                    let rid = rec.get("id").and_then(Value::as_str).unwrap_or_default();
                    let src = rec
                        .get("source")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    adv.severities
                        .push((format!("record {rid}"), src.to_string()));
                }
            }
        }
        let fixed = strings(
            data.pointer("/vulnerability/fixed_versions")
                .unwrap_or(&Value::Null),
        );
        for v in &fixed {
            if !adv.fixed_versions.contains(v) {
                adv.fixed_versions.push(v.clone());
            }
        }
        let d = s(r, 0);
        if !digests.contains(&d) {
            digests.push(d.clone());
        }
        adv.affected.push(AffectedRow {
            digest: d,
            repository: s(r, 1),
            tag: s(r, 2),
            package: g("/package/name"),
            version: g("/package/version"),
            fixed_versions: fixed,
            severity: severity_name(n(r, 3)).to_string(),
            why: g("/why"),
            matched: format!(
                "{} {}: {} ({})",
                g("/vulnerability/matched/ecosystem"),
                g("/vulnerability/matched/queried_name"),
                g("/vulnerability/matched/entry"),
                g("/vulnerability/matched/comparison")
            ),
        });
    }
    for d in digests {
        for w in workloads(pool, &d).await? {
            adv.workloads.push((d.clone(), w));
        }
    }
    Ok(Some(adv))
}

fn alert_row(r: &AnyRow) -> AlertRow {
    AlertRow {
        id: s(r, 0),
        ts_ms: n(r, 1),
        rule: s(r, 2),
        priority: s(r, 3),
        namespace: s(r, 4),
        pod: s(r, 5),
        container_id: s(r, 6),
        image: s(r, 7),
        digest: s(r, 8),
        output: s(r, 9),
    }
}

/// Falco priorities, most severe first; a filter `priority=X` keeps X and worse.
pub const PRIORITIES: [&str; 8] = [
    "Emergency",
    "Alert",
    "Critical",
    "Error",
    "Warning",
    "Notice",
    "Informational",
    "Debug",
];

fn alert_filter(q: &AlertQuery) -> (String, Vec<String>) {
    let mut wh = vec!["1 = 1".to_string()];
    let mut binds: Vec<String> = Vec::new();
    if let Some(i) = PRIORITIES
        .iter()
        .position(|p| p.eq_ignore_ascii_case(&q.priority))
    {
        let keep: Vec<String> = PRIORITIES[..=i]
            .iter()
            .flat_map(|p| [p.to_string(), p.to_uppercase()])
            .map(|p| {
                binds.push(p);
                format!("${}", binds.len())
            })
            .collect();
        wh.push(format!("priority IN ({})", keep.join(",")));
    }
    for (val, col) in [
        (&q.rule, "rule"),
        (&q.namespace, "namespace"),
        (&q.pod, "pod"),
    ] {
        if !val.is_empty() {
            binds.push(val.clone());
            wh.push(format!("{col} = ${}", binds.len()));
        }
    }
    if !q.image.is_empty() {
        binds.push(q.image.clone());
        let i = binds.len();
        wh.push(format!("(digest = ${i} OR image = ${i})"));
    }
    if !q.mitre.is_empty() {
        binds.push(contains_pattern(&format!("\"{}", q.mitre)));
        wh.push(format!("data LIKE ${} ESCAPE '\\'", binds.len()));
    }
    (wh.join(" AND "), binds)
}

/// One page of alerts (newest first) and the total that match.
pub async fn alerts_page(pool: &AnyPool, q: &AlertQuery, per_page: i64) -> R<(Vec<AlertRow>, i64)> {
    let (wh, binds) = alert_filter(q);
    let sql = format!(
        "SELECT id, ts_ms, rule, priority, namespace, pod, container_id, image, digest, output FROM runtime_alert \
         WHERE {wh} ORDER BY ts_ms DESC, id DESC LIMIT {per_page} OFFSET {}",
        (q.page.max(1) - 1) * per_page
    );
    let rows = bind_all(sqlx::query(AssertSqlSafe(sql)), &binds)
        .fetch_all(pool)
        .await?;
    let csql = format!("SELECT COUNT(*) FROM runtime_alert WHERE {wh}");
    let total = bind_all(sqlx::query(AssertSqlSafe(csql)), &binds)
        .fetch_one(pool)
        .await
        .map(|r| n(&r, 0))?;
    Ok((rows.iter().map(alert_row).collect(), total))
}

pub async fn runtime(pool: &AnyPool, q: &AlertQuery) -> R<Runtime> {
    let (rows, total) = alerts_page(pool, q, 50).await?;
    let mut rt = Runtime {
        query: q.clone(),
        rows,
        total,
        ..Default::default()
    };
    for r in sqlx::query("SELECT DISTINCT rule FROM runtime_alert ORDER BY rule LIMIT 500")
        .fetch_all(pool)
        .await?
    {
        rt.rules.push(s(&r, 0));
    }
    for r in sqlx::query(
        "SELECT DISTINCT namespace FROM runtime_alert WHERE namespace IS NOT NULL ORDER BY namespace LIMIT 500",
    )
    .fetch_all(pool)
    .await?
    {
        rt.namespaces.push(s(&r, 0));
    }
    // Widgets over the filtered alerts (the newest 5,000, bounded).
    let (wh, binds) = alert_filter(q);
    let sql =
        format!("SELECT rule, data FROM runtime_alert WHERE {wh} ORDER BY ts_ms DESC LIMIT 5000");
    let mut container: BTreeMap<String, i64> = BTreeMap::new();
    let mut process: BTreeMap<String, i64> = BTreeMap::new();
    let mut net: BTreeMap<String, i64> = BTreeMap::new();
    for r in bind_all(sqlx::query(AssertSqlSafe(sql)), &binds)
        .fetch_all(pool)
        .await?
    {
        let rule = s(&r, 0);
        let data = json(&s(&r, 1));
        let tags = strings(data.get("tags").unwrap_or(&Value::Null));
        let has = |t: &str| tags.iter().any(|x| x.eq_ignore_ascii_case(t));
        if has("container") || data.get("container").is_some_and(|c| !c.is_null()) {
            *container.entry(rule.clone()).or_default() += 1;
        }
        if has("process") || has("shell") || data.pointer("/output_fields/proc.cmdline").is_some() {
            *process.entry(rule.clone()).or_default() += 1;
        }
        let f = data.get("output_fields");
        let addr = ["fd.sip", "fd.rip", "fd.name"]
            .iter()
            .find_map(|k| f.and_then(|f| f.get(*k)).and_then(Value::as_str))
            .filter(|a| !a.is_empty());
        if let Some(a) = addr {
            let port = ["fd.sport", "fd.rport"]
                .iter()
                .find_map(|k| f.and_then(|f| f.get(*k)))
                .map(|p| p.as_str().map_or_else(|| p.to_string(), str::to_string));
            let key = match port {
                Some(p) if !a.contains("->") => format!("{a}:{p}"),
                _ => a.to_string(),
            };
            *net.entry(key).or_default() += 1;
        }
    }
    let top = |m: BTreeMap<String, i64>| {
        let mut v: Vec<(String, i64)> = m.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(10);
        v
    };
    rt.container_threats = top(container);
    rt.process_anomalies = top(process);
    rt.connections = top(net);
    Ok(rt)
}

pub async fn alert(pool: &AnyPool, id: &str) -> R<Option<AlertDetail>> {
    let Some(r) = sqlx::query(
        "SELECT id, ts_ms, rule, priority, namespace, pod, container_id, image, digest, output, source, data \
         FROM runtime_alert WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    let data = json(&s(&r, 11));
    let f = data.get("output_fields").cloned().unwrap_or(Value::Null);
    let fs = |k: &str| {
        f.get(k)
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .unwrap_or_default()
    };
    let mut tree = vec![(fs("proc.name"), fs("proc.cmdline"))];
    if !fs("proc.pname").is_empty() {
        tree.push((fs("proc.pname"), fs("proc.pcmdline")));
    }
    for i in 2..8 {
        let a = fs(&format!("proc.aname[{i}]"));
        if a.is_empty() {
            break;
        }
        tree.push((a, String::new()));
    }
    tree.retain(|(n, c)| !n.is_empty() || !c.is_empty());
    let container = data
        .get("container")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().map_or_else(|| v.to_string(), str::to_string),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let fields = f
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().map_or_else(|| v.to_string(), str::to_string),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Some(AlertDetail {
        row: alert_row(&r),
        source: s(&r, 10),
        hostname: data
            .get("hostname")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        cmdline: fs("proc.cmdline"),
        tree,
        mitre: strings(data.get("mitre").unwrap_or(&Value::Null)),
        tags: strings(data.get("tags").unwrap_or(&Value::Null)),
        response: data
            .get("response")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        container,
        fields,
    }))
}

async fn admission_rows(pool: &AnyPool, denied_only: bool, limit: i64) -> R<Vec<AdmissionRow>> {
    let sql = format!(
        "SELECT id, ts_ms, allowed, namespace, kind, name, images, reasons FROM admission_decision {} \
         ORDER BY ts_ms DESC, id DESC LIMIT {limit}",
        if denied_only { "WHERE allowed = 0" } else { "" }
    );
    let mut out = Vec::new();
    for r in sqlx::query(AssertSqlSafe(sql)).fetch_all(pool).await? {
        out.push(AdmissionRow {
            id: s(&r, 0),
            ts_ms: n(&r, 1),
            allowed: n(&r, 2) != 0,
            namespace: s(&r, 3),
            kind: s(&r, 4),
            name: s(&r, 5),
            images: strings(&json(&s(&r, 6))),
            reasons: strings(&json(&s(&r, 7))),
        });
    }
    Ok(out)
}

/// The rule a denial reason names: its text up to the first `:` (`disallow-privileged: ...`).
fn reason_rule(reason: &str) -> String {
    reason
        .split_once(':')
        .map_or(reason, |(r, _)| r)
        .trim()
        .chars()
        .take(80)
        .collect()
}

pub async fn admission(pool: &AnyPool) -> R<Admission> {
    let rows = admission_rows(pool, false, 100).await?;
    let mut by_rule: BTreeMap<String, i64> = BTreeMap::new();
    for r in sqlx::query(
        "SELECT reasons FROM admission_decision WHERE allowed = 0 ORDER BY ts_ms DESC LIMIT 5000",
    )
    .fetch_all(pool)
    .await?
    {
        for reason in strings(&json(&s(&r, 0))) {
            *by_rule.entry(reason_rule(&reason)).or_default() += 1;
        }
    }
    let mut by_rule: Vec<(String, i64)> = by_rule.into_iter().collect();
    by_rule.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut by_namespace = Vec::new();
    for r in sqlx::query(
        "SELECT namespace, CAST(SUM(allowed) AS BIGINT), CAST(SUM(1 - allowed) AS BIGINT) FROM admission_decision \
         GROUP BY namespace ORDER BY namespace",
    )
    .fetch_all(pool)
    .await?
    {
        by_namespace.push((s(&r, 0), n(&r, 1), n(&r, 2)));
    }
    Ok(Admission {
        rows,
        by_rule,
        by_namespace,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_take_wildcards_literally() {
        assert_eq!(contains_pattern("a%b_c"), "%a\\%b\\_c%");
    }
}
