//! The dashboard in a real headless Chromium (Debian's `chromium`, scripts/deps.d/75-chromium.sh),
//! over the DevTools protocol, against the dashboard's routes on a real loopback listener and a real
//! SQLite store created with the server's own migration.
//!
//! Seed: real `moat scan -f json` reports of the shared bookworm image and the language image
//! (tests/data/*.report.json), written into the store's tables as the server core's ingest does;
//! runtime alerts in moat's alert JSON shape, admission decisions, workloads, and a hostile image whose
//! package, label and alert command line carry HTML/JS.
//! NOTE: the seed goes through SQL, not `POST /api/v1/reports`: the server core's ingest API was not in
//! the tree when this test was written (see docs/dashboard.md).
//!
//! Checks: sign-in is required and sets a HttpOnly, SameSite=Strict cookie; a token without the read
//! scope is refused; every page loads with no console error (CSP violations included) and no failed
//! request, at 1440x900 and 390x844, with a screenshot of each under target/dashboard-screenshots/;
//! counts and names in the DOM; links image -> advisory -> image and alert -> image work; hostile
//! markup renders as text with the CSP bypassed (escaping alone keeps it inert); sign-out works.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use moat_server::web::{TokenVerifier, WebState, routes};
use moat_testkit::chromium::{Browser, Error, png_size};
use serde_json::{Value, json};
use sqlx::AnyPool;

const READ_TOKEN: &str = "moat_read_0123456789abcdef";
const INGEST_TOKEN: &str = "moat_ingest_0123456789abcdef";
const XSS: &str = "<script>window.__xss=1</script><img src=x onerror=\"window.__xss=2\">";
const LANG: &str = "sha256:ba2bcafcbb396c8f04f3d45b610225c38dc935ca78b8a06308ea1d21d3a4ce8b";
const BOOKWORM: &str = "sha256:9fa40a6a8b632eb99dd2f3e0a1481f162eba0722ae4634c4c1565d94dc441d29";
const EVIL: &str = "sha256:00000000000000000000000000000000000000000000000000000000000000ee";

/// Two fixed tokens with their scopes (the server core's token store plugs in the same trait).
struct Tokens;

impl TokenVerifier for Tokens {
    fn verify<'a>(&'a self, secret: &'a str) -> moat_server::web::Verified<'a> {
        Box::pin(async move {
            match secret {
                READ_TOKEN => Some(("t-read".into(), vec!["read".into()])),
                INGEST_TOKEN => Some(("t-ingest".into(), vec!["ingest".into()])),
                _ => None,
            }
        })
    }
    fn is_live<'a>(&'a self, id: &'a str) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>> {
        Box::pin(async move { id == "t-read" || id == "t-ingest" })
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

async fn exec(pool: &AnyPool, sql: &'static str, binds: Vec<Value>) {
    let mut q = sqlx::query(sql);
    for b in &binds {
        q = match b {
            Value::Number(n) => q.bind(n.as_i64().unwrap_or(0)),
            Value::Null => q.bind(None::<String>),
            Value::String(s) => q.bind(s.clone()),
            other => q.bind(other.to_string()),
        };
    }
    q.execute(pool).await.expect(sql);
}

fn sev_index(s: &str) -> i64 {
    ["UNKNOWN", "INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL"]
        .iter()
        .position(|x| x.eq_ignore_ascii_case(s))
        .unwrap_or(0) as i64
}

/// One image from a moat JSON report: the artifact, its findings, the packages they name, aliases.
async fn put_report(
    pool: &AnyPool,
    digest: &str,
    repo: &str,
    tag: &str,
    report: &Value,
    labels: Value,
) {
    let t = now_ms();
    let findings = report["findings"].as_array().cloned().unwrap_or_default();
    let mut pkgs = std::collections::BTreeSet::new();
    let mut block = false;
    for (i, f) in findings.iter().enumerate() {
        let kind = f["kind"].as_str().unwrap_or("vulnerability").to_string();
        let sev = sev_index(f["severity"].as_str().unwrap_or(""));
        let fixable = f
            .pointer("/vulnerability/fixed_versions")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        block |= kind == "vulnerability" && sev >= 4 && fixable;
        let name = f
            .pointer("/package/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let version = f
            .pointer("/package/version")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !name.is_empty() {
            pkgs.insert((
                name.to_string(),
                version.to_string(),
                f.pointer("/package/purl")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            ));
        }
        // First seen spread over the last days, so the trend has a shape; a few resolved.
        let first = t - (i as i64 % 20) * 86_400_000;
        let resolved = if i % 17 == 5 {
            json!(t - 86_400_000)
        } else {
            Value::Null
        };
        exec(
            pool,
            "INSERT INTO finding (digest, vuln_id, package_key, source, kind, severity, fixable, package_name, \
             package_version, data, first_seen_ms, snapshot_digest, resolved_ms) \
             VALUES ($1,$2,$3,'report',$4,$5,$6,$7,$8,$9,$10,'sha256:snap',$11)",
            vec![
                json!(digest),
                f["id"].clone(),
                json!(format!("{name}@{version}#{i}")),
                json!(kind),
                json!(sev),
                json!(i64::from(fixable)),
                json!(name),
                json!(version),
                json!(f.to_string()),
                json!(first),
                resolved,
            ],
        )
        .await;
        for a in f["aliases"].as_array().cloned().unwrap_or_default() {
            let _ = sqlx::query("INSERT INTO vuln_alias (alias, vuln_id) VALUES ($1, $2)")
                .bind(a.as_str().unwrap_or("").to_string())
                .bind(f["id"].as_str().unwrap_or("").to_string())
                .execute(pool)
                .await;
        }
    }
    for (name, version, purl) in &pkgs {
        let id = format!("{purl}|{name}|{version}");
        let _ = sqlx::query(
            "INSERT INTO package (id, vkey, purl, name, version, os, data) VALUES ($1,$2,$3,$4,$5,'',$6)",
        )
        .bind(id.clone())
        .bind(name.clone())
        .bind(purl.clone())
        .bind(name.clone())
        .bind(version.clone())
        .bind(json!({"kind": purl.split(['/', ':']).nth(1).unwrap_or("")}).to_string())
        .execute(pool)
        .await;
        exec(
            pool,
            "INSERT INTO image_package (digest, package_id) VALUES ($1, $2)",
            vec![json!(digest), json!(id)],
        )
        .await;
    }
    let verdict = if block { "block" } else { "allow" };
    exec(
        pool,
        "INSERT INTO artifact (digest, media_type, repository, tag, os, arch, config_user, labels, signature, \
         package_count, verdict, verdict_ms, snapshot_digest, first_seen_ms, last_scanned_ms) \
         VALUES ($1,'application/vnd.oci.image.manifest.v1+json',$2,$3,'debian 12','amd64','',$4,'unsigned',$5,$6,$7,'sha256:snap',$7,$7)",
        vec![
            json!(digest),
            json!(repo),
            json!(tag),
            json!(labels.to_string()),
            json!(pkgs.len() as i64),
            json!(verdict),
            json!(t),
        ],
    )
    .await;
    exec(
        pool,
        "INSERT INTO verdict (id, digest, decision, reasons, policy, snapshot_digest, decided_ms) \
         VALUES ($1,$2,$3,$4,'no-fixable:HIGH','sha256:snap',$5)",
        vec![
            json!(format!("v-{digest}")),
            json!(digest),
            json!(verdict),
            json!(
                json!([if block {
                    "fixable HIGH findings"
                } else {
                    "no fixable HIGH finding"
                }])
                .to_string()
            ),
            json!(t),
        ],
    )
    .await;
}

async fn put_alert(pool: &AnyPool, id: &str, ts: i64, alert: &Value, digest: &str) {
    let c = &alert["container"];
    exec(
        pool,
        "INSERT INTO runtime_alert (id, content_digest, ts_ms, source, rule, priority, severity, namespace, pod, \
         container_id, image, digest, output, data, received_ms) VALUES ($1,$2,$3,'syscall',$4,$5,3,$6,$7,$8,$9,$10,$11,$12,$3)",
        vec![
            json!(id),
            json!(format!("c-{id}")),
            json!(ts),
            alert["rule"].clone(),
            alert["priority"].clone(),
            c["k8s_ns"].clone(),
            c["k8s_pod"].clone(),
            c["id"].clone(),
            c["image"].clone(),
            json!(digest),
            alert["output"].clone(),
            json!(alert.to_string()),
        ],
    )
    .await;
}

fn alert_json(
    rule: &str,
    prio: &str,
    cmdline: &str,
    pod: &str,
    extra: Value,
    tags: &[&str],
    mitre: &[&str],
) -> Value {
    let mut fields = json!({"proc.name": "sh", "proc.cmdline": cmdline, "proc.pname": "python3",
        "proc.pcmdline": "python3 app.py", "proc.aname[2]": "conmon", "user.name": "root"});
    if let (Some(f), Some(e)) = (fields.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            f.insert(k.clone(), v.clone());
        }
    }
    json!({
        "time": "2026-12-02T09:00:00Z", "rule": rule, "priority": prio,
        "output": format!("{rule}: {cmdline}"), "output_fields": fields, "tags": tags,
        "source": "syscall", "hostname": "node-1",
        "container": {"id": "4f2a9c1d8e7b", "runtime": "podman", "name": pod, "image": "registry.local/shop/web:1.0",
            "k8s_ns": "shop", "k8s_pod": pod},
        "mitre": mitre,
        "response": "Isolate the pod (NetworkPolicy deny-all), capture the process tree, then rebuild the image."
    })
}

async fn seed(pool: &AnyPool) {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let read = |n: &str| -> Value {
        serde_json::from_slice(&std::fs::read(data.join(n)).expect("report")).expect("report JSON")
    };
    put_report(
        pool,
        LANG,
        "registry.local/shop/web",
        "1.0",
        &read("lang-image.report.json"),
        json!({"org.opencontainers.image.source": "https://example.invalid/shop"}),
    )
    .await;
    put_report(
        pool,
        BOOKWORM,
        "registry.local/base/debian",
        "bookworm",
        &read("bookworm.report.json"),
        json!({}),
    )
    .await;
    // The hostile image: a package, a label and (below) an alert command line carrying markup.
    let evil_report = json!({"findings": [{
        "id": "CVE-2099-0001", "kind": "vulnerability", "severity": "CRITICAL", "title": XSS,
        "package": {"name": XSS, "version": "1.0", "purl": "pkg:npm/evil@1.0"},
        "vulnerability": {"installed_version": "1.0", "ecosystem": "npm", "fixed_versions": ["1.1"],
            "matched": {"ecosystem": "npm", "queried_name": "evil", "by": "range", "entry": XSS, "comparison": XSS}}
    }]});
    put_report(
        pool,
        EVIL,
        &format!("registry.local/{XSS}"),
        "latest",
        &evil_report,
        json!({"description": XSS}),
    )
    .await;

    let t = now_ms();
    for (pod, digest) in [("web-1", LANG), ("web-2", LANG), ("base-1", BOOKWORM)] {
        exec(pool, "INSERT INTO workload_image (cluster, namespace, workload, pod, container, image, digest, source, last_seen_ms) \
            VALUES ('default','shop','Deployment/web',$1,'app','registry.local/shop/web:1.0',$2,'admission',$3)",
            vec![json!(pod), json!(digest), json!(t)]).await;
    }
    let alerts = [
        alert_json(
            "Terminal shell in container",
            "Notice",
            "sh -i",
            "web-1",
            json!({}),
            &["container", "shell", "process"],
            &["T1059"],
        ),
        alert_json(
            "Outbound connection to C2 port",
            "Critical",
            "nc 203.0.113.7 4444",
            "web-1",
            json!({"fd.sip": "203.0.113.7", "fd.sport": 4444}),
            &["network", "container"],
            &["T1071"],
        ),
        alert_json(
            "Outbound connection to C2 port",
            "Critical",
            "nc 203.0.113.7 4444",
            "web-2",
            json!({"fd.sip": "203.0.113.7", "fd.sport": 4444}),
            &["network", "container"],
            &["T1071"],
        ),
        alert_json(
            "Write below etc",
            "Error",
            XSS,
            "web-2",
            json!({"fd.name": "/etc/passwd"}),
            &["filesystem", "container"],
            &["T1098"],
        ),
    ];
    for (i, a) in alerts.iter().enumerate() {
        put_alert(
            pool,
            &format!("alert-{i}"),
            t - (10 - i as i64) * 60_000,
            a,
            LANG,
        )
        .await;
    }
    for (i, (allowed, ns, name, reasons)) in [
        (
            0,
            "shop",
            "web-3",
            json!(["disallow-privileged: privileged containers are not allowed"]),
        ),
        (
            0,
            "shop",
            "web-4",
            json!(["require-verdict: image sha256:ba2b is blocked by moat server"]),
        ),
        (1, "shop", "web-1", json!([])),
        (
            0,
            "batch",
            "job-1",
            json!(["disallow-privileged: privileged containers are not allowed"]),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        exec(pool, "INSERT INTO admission_decision (id, content_digest, ts_ms, allowed, namespace, kind, name, images, reasons, data) \
            VALUES ($1,$2,$3,$4,$5,'Pod',$6,$7,$8,'{}')",
            vec![json!(format!("adm-{i}")), json!(format!("c-adm-{i}")), json!(t - i as i64 * 1000), json!(allowed),
                json!(ns), json!(name), json!(json!(["registry.local/shop/web:1.0"]).to_string()), json!(reasons.to_string())]).await;
    }
    exec(pool, "INSERT INTO outbox (id, created_ms, event_type, subject, payload, state) VALUES ('o1',$1,'image.scanned',$2,'{}','done')",
        vec![json!(t), json!(LANG)]).await;
    exec(pool, "INSERT INTO outbox (id, created_ms, event_type, subject, payload, state) VALUES ('o2',$1,'runtime.alert','shop/web-1','{}','pending')",
        vec![json!(t)]).await;
}

async fn migrate(pool: &AnyPool) {
    let sql = include_str!("../migrations/0001_core.sql");
    let mut cur = String::new();
    for line in sql.lines() {
        let t = line.trim();
        if t.starts_with("--") || t.is_empty() {
            continue;
        }
        cur.push_str(line);
        cur.push('\n');
        if t.ends_with(';') {
            sqlx::query(sqlx::AssertSqlSafe(std::mem::take(&mut cur)))
                .execute(pool)
                .await
                .expect("migration");
        }
    }
}

fn screenshots_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/dashboard-screenshots")
}

fn clean(b: &mut Browser, url: &str) -> moat_testkit::chromium::PageLog {
    let log = b.navigate(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    assert!(
        log.console_errors.is_empty(),
        "{url}: console errors {:?}",
        log.console_errors
    );
    assert!(
        log.failed_requests.is_empty(),
        "{url}: failed requests {:?}",
        log.failed_requests
    );
    assert_eq!(log.status, Some(200), "{url}");
    log
}

fn text(b: &mut Browser, sel: &str) -> String {
    b.text(sel)
        .expect("eval")
        .unwrap_or_else(|| panic!("no element {sel}"))
}

#[test]
fn dashboard_in_headless_chromium() {
    let work = tempfile::tempdir().expect("tempdir");
    let mut b = match Browser::launch(work.path()) {
        Ok(b) => b,
        Err(Error::NotInstalled(m)) => {
            moat_testkit::skip(&format!("{m}: run scripts/deps.d/75-chromium.sh"));
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let db = work.path().join("store.db");
    let (base, pool) = rt.block_on(async {
        sqlx::any::install_default_drivers();
        let pool = AnyPool::connect(&format!("sqlite:{}?mode=rwc", db.display()))
            .await
            .expect("sqlite");
        migrate(&pool).await;
        seed(&pool).await;
        let app: axum::Router = routes(WebState::new(pool.clone(), false, Arc::new(Tokens)));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(l, app).await });
        (format!("http://127.0.0.1:{}", addr.port()), pool)
    });
    let _keep = pool;

    // Sign-in is required: every page sends the browser to the sign-in form.
    for p in [
        "/",
        "/images",
        &format!("/images/{LANG}"),
        "/runtime",
        "/admission",
    ] {
        b.navigate(&format!("{base}{p}")).expect("load");
        assert!(
            b.url().expect("url").contains("/login?next="),
            "{p} did not ask to sign in"
        );
    }
    let log = clean(&mut b, &format!("{base}/login"));
    assert!(log.bytes() > 0);
    // A token without the read scope is refused with a message.
    b.eval(&format!(
        "document.querySelector('#token').value = {:?}",
        INGEST_TOKEN
    ))
    .expect("type");
    b.click_and_wait("form button[type=submit]")
        .expect("submit");
    assert!(text(&mut b, "#login-error").contains("no read scope"));
    b.eval(&format!(
        "document.querySelector('#token').value = {:?}",
        READ_TOKEN
    ))
    .expect("type");
    b.click_and_wait("form button[type=submit]")
        .expect("submit");
    assert_eq!(b.url().expect("url"), format!("{base}/"));
    let cookies = b.cookies(&base).expect("cookies");
    let s = cookies
        .iter()
        .find(|c| c["name"] == "moat_session")
        .expect("session cookie");
    assert_eq!(s["httpOnly"], true);
    assert_eq!(s["sameSite"], "Strict");

    // Every page, clean, at both sizes, with screenshots.
    let shots = screenshots_dir();
    let pages = [
        ("overview", "/".to_string()),
        ("images", "/images".to_string()),
        ("image", format!("/images/{LANG}")),
        ("advisory", "/advisories/CVE-2021-23337".to_string()),
        ("runtime", "/runtime".to_string()),
        ("alert", "/runtime/alerts/alert-1".to_string()),
        ("admission", "/admission".to_string()),
    ];
    let mut weights = Vec::new();
    for (w, h, mobile) in [(1440, 900, false), (390, 844, true)] {
        b.set_viewport(w, h, mobile).expect("viewport");
        for (name, path) in &pages {
            let log = clean(&mut b, &format!("{base}{path}"));
            weights.push((name.to_string(), log.bytes()));
            let png = shots.join(format!("{name}-{w}x{h}.png"));
            b.screenshot(&png, false).expect("screenshot");
            assert_eq!(png_size(&png), Some((w, h)), "{}", png.display());
        }
    }
    for (name, bytes) in &weights {
        eprintln!("page weight {name}: {bytes} bytes");
        assert!(*bytes < 300_000, "{name} weighs {bytes} bytes");
    }
    b.set_viewport(1440, 900, false).expect("viewport");

    // Overview: counts and names.
    clean(&mut b, &format!("{base}/"));
    assert_eq!(text(&mut b, "#images-total"), "3");
    assert_eq!(
        text(&mut b, "#images-block"),
        "2",
        "lang (fixable HIGH) and the hostile image (CRITICAL)"
    );
    assert_eq!(text(&mut b, "#images-allow"), "1");
    let urgent = b.texts("#urgent a.image-link").expect("urgent");
    assert_eq!(
        urgent.first().map(String::as_str),
        Some("registry.local/shop/web:1.0"),
        "{urgent:?}"
    );
    assert_eq!(b.count("#latest-alerts tbody tr").expect("rows"), 4);
    assert_eq!(b.count("#latest-denials tbody tr").expect("rows"), 3);
    assert!(b.count("#trend polyline").expect("trend") == 1);

    // Images: search, sort, pagination.
    clean(&mut b, &format!("{base}/images?q=shop"));
    assert_eq!(text(&mut b, "#image-count"), "1 images");
    clean(
        &mut b,
        &format!("{base}/images?sort=repository&dir=asc&per_page=1&page=2"),
    );
    assert_eq!(text(&mut b, "#page"), "Page 2 of 3");
    assert_eq!(
        b.texts("#images a.image-link").expect("rows"),
        vec!["registry.local/base/debian"]
    );

    // Image -> advisory -> image.
    clean(&mut b, &format!("{base}/images?q=web"));
    b.click_and_wait("#images a.image-link")
        .expect("open image");
    assert_eq!(text(&mut b, "#digest"), LANG);
    let pkgs = b.texts("#by-package .pkg-name").expect("packages");
    assert!(pkgs.contains(&"lodash".to_string()), "{pkgs:?}");
    // The remediation clears every lodash finding: the highest of each finding's lowest fix, computed
    // here from the report itself.
    let report: Value = serde_json::from_slice(
        &std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/lang-image.report.json"),
        )
        .expect("report"),
    )
    .expect("json");
    let num = |v: &str| -> Vec<u64> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    let want = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f.pointer("/package/name") == Some(&json!("lodash")))
        .filter_map(|f| {
            f.pointer("/vulnerability/fixed_versions")?
                .as_array()?
                .iter()
                .filter_map(Value::as_str)
                .min_by_key(|v| num(v))
                .map(str::to_string)
        })
        .max_by_key(|v| num(v))
        .expect("lodash has fixed findings");
    assert_eq!(
        text(&mut b, "tr[data-package=lodash] .remediation code"),
        want
    );
    assert_eq!(b.count("#where tbody tr").expect("workloads"), 2);
    let log = b
        .click_and_wait("tr[data-package=lodash] a.advisory-link")
        .expect("open advisory");
    assert!(
        log.console_errors.is_empty() && log.failed_requests.is_empty(),
        "{log:?}"
    );
    assert!(text(&mut b, "#aliases").contains("CVE-2021-23337"));
    assert!(
        b.texts("#affected a.image-link")
            .expect("affected")
            .contains(&"registry.local/shop/web:1.0".to_string())
    );
    b.click_and_wait("#affected a.image-link")
        .expect("back to image");
    assert_eq!(text(&mut b, "#digest"), LANG);

    // Runtime: filters, widgets, alert -> image.
    clean(&mut b, &format!("{base}/runtime?priority=Critical"));
    assert_eq!(text(&mut b, "#alert-count"), "(2 alerts)");
    assert!(text(&mut b, "#connections").contains("203.0.113.7:4444"));
    clean(&mut b, &format!("{base}/runtime?mitre=T1059"));
    assert_eq!(text(&mut b, "#alert-count"), "(1 alerts)");
    b.click_and_wait("#timeline tbody a").expect("open alert");
    assert_eq!(text(&mut b, "#cmdline"), "sh -i");
    assert_eq!(text(&mut b, "#mitre"), "T1059");
    assert!(text(&mut b, "#playbook").contains("Isolate the pod"));
    assert_eq!(b.count("#process-tree li").expect("tree"), 3);
    b.click_and_wait("#alert-image").expect("alert -> image");
    assert_eq!(text(&mut b, "#digest"), LANG);

    // Admission.
    clean(&mut b, &format!("{base}/admission"));
    assert!(text(&mut b, "#denials-by-rule").contains("disallow-privileged"));
    assert_eq!(b.count("#decisions tbody tr").expect("rows"), 4);

    // Hostile markup is text on every page that shows it, even with the CSP switched off.
    b.bypass_csp(true).expect("bypass csp");
    for p in [
        "/".to_string(),
        "/images".to_string(),
        format!("/images/{EVIL}"),
        "/advisories/CVE-2099-0001".to_string(),
        "/runtime".to_string(),
        "/runtime/alerts/alert-3".to_string(),
        format!("/images/{LANG}"),
    ] {
        let log = b.navigate(&format!("{base}{p}")).expect("load");
        assert!(
            log.failed_requests.iter().all(|f| !f.contains("/x")),
            "{p}: markup made a request: {log:?}"
        );
        assert_eq!(
            b.eval("typeof window.__xss").expect("eval"),
            "undefined",
            "{p}: script ran"
        );
        assert_eq!(
            b.count("main script, main img[src=x]").expect("count"),
            0,
            "{p}: markup parsed"
        );
        let body = b.eval("document.body.textContent").expect("text");
        assert!(
            body.as_str()
                .unwrap_or("")
                .contains("<script>window.__xss=1</script>"),
            "{p}: payload not shown as text"
        );
    }
    b.navigate(&format!("{base}/images/{EVIL}"))
        .expect("evil image");
    assert_eq!(text(&mut b, "#labels .label-value"), XSS);
    assert_eq!(text(&mut b, "#by-package .pkg-name"), XSS);
    b.navigate(&format!("{base}/runtime/alerts/alert-3"))
        .expect("evil alert");
    assert_eq!(text(&mut b, "#cmdline"), XSS);
    b.bypass_csp(false).expect("csp back on");

    // Sign out (a CSRF-protected form), then pages need signing in again.
    clean(&mut b, &format!("{base}/"));
    b.click_and_wait("header form button").expect("sign out");
    assert!(b.url().expect("url").ends_with("/login"));
    b.navigate(&format!("{base}/images")).expect("load");
    assert!(b.url().expect("url").contains("/login?next="));
}
