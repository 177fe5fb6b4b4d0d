//! What each target kind receives, and the one HTTP send. Bodies are built from the stored alert (so a
//! retry sends the same bytes) and carry a stable id (`Idempotency-Key` header; the CloudEvent `id`;
//! the Alertmanager label set) so a receiver can drop the rare duplicate of a delivery whose answer was
//! lost.

use serde_json::{Value, json};

use super::rules::{Target, TargetKind};

/// One alert, as stored in the delivery table (target independent).
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Stable across retries and restarts: the delivery's dedupe key hashed.
    pub id: String,
    pub rule_id: String,
    pub rule_description: String,
    pub event_type: String,
    pub subject: String,
    /// The event payload (image digest, repository, tag, verdict, finding, runtime fields...).
    pub event: Value,
    /// The part of the event the rule matched (the findings), or the payload.
    pub matched: Value,
    pub created_ms: i64,
}

impl Alert {
    /// The worst severity among the matched findings (or the event's own severity).
    pub fn severity(&self) -> Option<String> {
        const ORDER: [&str; 6] = ["UNKNOWN", "INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL"];
        let rank = |s: &str| ORDER.iter().position(|o| o.eq_ignore_ascii_case(s));
        let worst = |v: &Value| v.get("severity").and_then(Value::as_str).and_then(rank);
        let mut best: Option<usize> = match &self.matched {
            Value::Array(a) => a.iter().filter_map(worst).max(),
            other => worst(other),
        };
        if best.is_none() {
            best = worst(&self.event);
        }
        best.map(|b| ORDER[b].to_string())
    }

    /// One line for chat and summaries.
    pub fn summary(&self) -> String {
        let e = &self.event;
        let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("");
        let image = if s("repository").is_empty() {
            self.subject.clone()
        } else if s("tag").is_empty() {
            format!("{}@{}", s("repository"), s("digest"))
        } else {
            format!("{}:{} ({})", s("repository"), s("tag"), s("digest"))
        };
        let count = self.matched.as_array().map_or(0, Vec::len);
        match self.event_type.as_str() {
            "image.scanned" => format!(
                "{count} finding(s) in {image}{}",
                self.severity()
                    .map(|s| format!(", worst {s}"))
                    .unwrap_or_default()
            ),
            "finding.new" => {
                let f = self.matched.get(0).unwrap_or(&Value::Null);
                let fs = |k: &str| f.get(k).and_then(Value::as_str).unwrap_or("");
                format!(
                    "new {} {} in {} {} of {image}",
                    fs("severity"),
                    fs("id"),
                    fs("package"),
                    fs("version")
                )
            }
            "image.verdict.changed" => {
                format!("verdict of {image}: {} -> {}", s("from"), s("to"))
            }
            "runtime.alert" => format!(
                "{} ({}) in {}/{}: {}",
                s("rule"),
                s("priority"),
                s("namespace"),
                s("pod"),
                s("output")
            ),
            "admission.denied" => format!(
                "admission denied {} {}/{}",
                s("kind"),
                s("namespace"),
                s("name")
            ),
            other => format!("{other} {}", self.subject),
        }
    }
}

/// `unix ms` → RFC 3339 UTC (`2026-08-22T14:44:26.402Z`).
pub fn rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// The body and content type a target receives.
pub fn render(target: &Target, alert: &Alert) -> (Vec<u8>, &'static str) {
    match target.kind {
        TargetKind::Webhook => (
            webhook_body(alert).to_string().into_bytes(),
            "application/json",
        ),
        TargetKind::Slack => (
            slack_body(alert).to_string().into_bytes(),
            "application/json",
        ),
        TargetKind::CloudEvents => (
            cloudevent_body(alert).to_string().into_bytes(),
            "application/cloudevents+json",
        ),
        TargetKind::Alertmanager => (
            alertmanager_body(alert).to_string().into_bytes(),
            "application/json",
        ),
    }
}

/// moat's generic webhook document.
pub fn webhook_body(a: &Alert) -> Value {
    json!({
        "id": a.id,
        "source": "moat-server",
        "rule": {"id": a.rule_id, "description": a.rule_description},
        "event": a.event_type,
        "subject": a.subject,
        "severity": a.severity(),
        "summary": a.summary(),
        "time": rfc3339(a.created_ms),
        "matched": a.matched,
        "data": a.event,
    })
}

/// Slack's incoming-webhook `{"text": ...}` (mrkdwn), with up to ten matched findings listed.
pub fn slack_body(a: &Alert) -> Value {
    let mut text = format!("*moat: {}* — {}", a.rule_id, a.summary());
    if let Some(list) = a.matched.as_array() {
        for f in list.iter().take(10) {
            let s = |k: &str| f.get(k).and_then(Value::as_str).unwrap_or("");
            let fixed = f
                .get("fixed_versions")
                .and_then(Value::as_array)
                .and_then(|v| v.first())
                .and_then(Value::as_str)
                .map(|v| format!(", fixed in {v}"))
                .unwrap_or_default();
            text.push_str(&format!(
                "\n• {} {} in {} {}{fixed}",
                s("severity"),
                s("id"),
                s("package"),
                s("version")
            ));
        }
        if list.len() > 10 {
            text.push_str(&format!("\n… and {} more", list.len() - 10));
        }
    }
    json!({"text": text})
}

/// CloudEvents 1.0 structured mode: `dev.moat.<event>.v1`.
pub fn cloudevent_body(a: &Alert) -> Value {
    json!({
        "specversion": "1.0",
        "id": a.id,
        "source": "moat-server",
        "type": format!("dev.moat.{}.v1", a.event_type),
        "subject": a.subject,
        "time": rfc3339(a.created_ms),
        "datacontenttype": "application/json",
        "data": {
            "rule": a.rule_id,
            "severity": a.severity(),
            "summary": a.summary(),
            "matched": a.matched,
            "event": a.event,
        },
    })
}

/// Alertmanager v2 `PostableAlerts`: one alert whose labels identify it (Alertmanager groups and
/// deduplicates on the label set).
pub fn alertmanager_body(a: &Alert) -> Value {
    let e = &a.event;
    let mut labels = serde_json::Map::new();
    labels.insert("alertname".into(), json!(a.rule_id));
    labels.insert("moat_event".into(), json!(a.event_type));
    labels.insert("subject".into(), json!(a.subject));
    if let Some(s) = a.severity() {
        labels.insert("severity".into(), json!(s.to_ascii_lowercase()));
    }
    for k in ["repository", "namespace", "pod"] {
        if let Some(v) = e.get(k).and_then(Value::as_str).filter(|v| !v.is_empty()) {
            labels.insert(k.into(), json!(v));
        }
    }
    json!([{
        "labels": labels,
        "annotations": {
            "summary": a.summary(),
            "description": a.rule_description,
            "moat_alert_id": a.id,
        },
        "startsAt": rfc3339(a.created_ms),
    }])
}

/// The URL a target is posted to (Alertmanager: `.../api/v2/alerts` appended unless given).
pub fn endpoint(target: &Target) -> String {
    match target.kind {
        TargetKind::Alertmanager
            if !target.url.trim_end_matches('/').ends_with("/api/v2/alerts") =>
        {
            format!("{}/api/v2/alerts", target.url.trim_end_matches('/'))
        }
        _ => target.url.clone(),
    }
}

/// `scheme://host[:port]/…`: a URL as errors and logs show it. The path and query are left out, since
/// for Slack-style webhooks they are the secret (`hooks.slack.com/services/T…/B…/…`).
pub fn redacted(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            // user:password@host: keep only the host.
            let host = host.rsplit('@').next().unwrap_or(host);
            let more = rest.len() > host.len() && rest.trim_start_matches(host) != "/";
            format!("{scheme}://{host}{}", if more { "/…" } else { "/" })
        }
        None => "(invalid URL)".into(),
    }
}

/// Posts one alert (blocking; run off the async workers). Ok on 2xx; the error says what the
/// receiver answered (never the headers or the URL's path, which may hold secrets).
pub fn send(target: &Target, alert: &Alert) -> Result<(), String> {
    let (body, content_type) = render(target, alert);
    let url = endpoint(target);
    let shown = redacted(&url);
    let t = Some(target.timeout);
    let mut cfg = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(t)
        .max_redirects(0)
        .user_agent(format!("moat-server/{}", moat_model::MOAT_VERSION));
    let loopback = url
        .split("://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .is_some_and(|h| {
            h.starts_with("127.") || h.starts_with("localhost") || h.starts_with("[::1]")
        });
    if loopback {
        cfg = cfg.proxy(None);
    }
    let agent = ureq::Agent::new_with_config(cfg.build());
    let mut req = agent
        .post(&url)
        .header("Content-Type", content_type)
        .header("Idempotency-Key", &alert.id);
    for (k, v) in &target.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let resp = req.send(&body[..]).map_err(|e| {
        // ureq's messages may quote the URL: keep only what `redacted` shows.
        let m = e.to_string().replace(&url, &shown);
        format!("POST {shown}: {m}")
    })?;
    let status = resp.status().as_u16();
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(format!("POST {shown}: HTTP {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn alert() -> Alert {
        Alert {
            id: "a1b2".into(),
            rule_id: "high".into(),
            rule_description: "HIGH in a pushed image".into(),
            event_type: "image.scanned".into(),
            subject: "sha256:aa".into(),
            event: json!({"digest": "sha256:aa", "repository": "moat/lang", "tag": "lang"}),
            matched: json!([
                {"id": "GHSA-35jh-r3h4-6jhm", "severity": "HIGH", "package": "lodash", "version": "4.17.15", "fixed_versions": ["4.17.21"]},
                {"id": "GHSA-p6mc-m468-83gw", "severity": "CRITICAL", "package": "lodash", "version": "4.17.15"}
            ]),
            created_ms: 1_787_409_866_402,
        }
    }

    fn target(kind: TargetKind, url: &str) -> Target {
        Target {
            name: "t".into(),
            kind,
            url: url.into(),
            headers: vec![],
            timeout: Duration::from_secs(2),
            origin: "f:1".into(),
        }
    }

    #[test]
    fn urls_in_errors_hide_their_path() {
        assert_eq!(
            redacted("https://hooks.slack.com/services/T000/B000/XXXXSECRET"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            redacted("http://u:pw@127.0.0.1:9093/api/v2/alerts"),
            "http://127.0.0.1:9093/…"
        );
        assert_eq!(redacted("http://127.0.0.1:9099"), "http://127.0.0.1:9099/");
        assert_eq!(redacted("http://127.0.0.1:9099/"), "http://127.0.0.1:9099/");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let t = target(
            TargetKind::Slack,
            &format!("http://127.0.0.1:{port}/services/T0/B0/SECRET"),
        );
        let e = send(&t, &alert()).unwrap_err();
        assert!(!e.contains("SECRET"), "{e}");
        assert!(
            e.starts_with(&format!("POST http://127.0.0.1:{port}/…")),
            "{e}"
        );
    }

    #[test]
    fn times() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_787_409_866_402), "2026-08-22T14:44:26.402Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn bodies_per_kind() {
        let a = alert();
        assert_eq!(a.severity().as_deref(), Some("CRITICAL"));
        let w = webhook_body(&a);
        assert_eq!(w["rule"]["id"], "high");
        assert_eq!(
            w["summary"],
            "2 finding(s) in moat/lang:lang (sha256:aa), worst CRITICAL"
        );
        let s = slack_body(&a);
        let text = s["text"].as_str().expect("text");
        assert!(
            text.contains("• HIGH GHSA-35jh-r3h4-6jhm in lodash 4.17.15, fixed in 4.17.21"),
            "{text}"
        );
        let c = cloudevent_body(&a);
        assert_eq!(c["specversion"], "1.0");
        assert_eq!(c["type"], "dev.moat.image.scanned.v1");
        assert_eq!(c["id"], "a1b2");
        assert_eq!(c["time"], "2026-08-22T14:44:26.402Z");
        let am = alertmanager_body(&a);
        assert_eq!(am[0]["labels"]["alertname"], "high");
        assert_eq!(am[0]["labels"]["severity"], "critical");
        assert_eq!(am[0]["labels"]["repository"], "moat/lang");
        assert_eq!(
            endpoint(&target(TargetKind::Alertmanager, "http://am.example:9093")),
            "http://am.example:9093/api/v2/alerts"
        );
        assert_eq!(
            endpoint(&target(
                TargetKind::Alertmanager,
                "http://am.example:9093/api/v2/alerts"
            )),
            "http://am.example:9093/api/v2/alerts"
        );
    }

    /// A loopback receiver: the first answer is 500, the second 200; each request's body is kept.
    #[test]
    fn send_to_a_loopback_receiver() {
        use std::io::{BufRead, BufReader, Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        let server = std::thread::spawn(move || {
            let mut got = Vec::new();
            for status in ["500 Internal Server Error", "200 OK"] {
                let (s, _) = l.accept().expect("accept");
                let mut r = BufReader::new(s.try_clone().expect("clone"));
                let mut len = 0usize;
                let mut headers = Vec::new();
                loop {
                    let mut line = String::new();
                    r.read_line(&mut line).expect("line");
                    if line == "\r\n" || line.is_empty() {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().expect("len");
                    }
                    headers.push(line);
                }
                let mut body = vec![0; len];
                r.read_exact(&mut body).expect("body");
                let mut s = s;
                write!(
                    s,
                    "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                )
                .expect("answer");
                got.push((headers, body));
            }
            got
        });
        let t = target(TargetKind::CloudEvents, &format!("http://{addr}/hook"));
        let e = send(&t, &alert()).unwrap_err();
        assert!(e.ends_with("HTTP 500"), "{e}");
        send(&t, &alert()).expect("second attempt accepted");
        let got = server.join().expect("receiver");
        let (headers, body) = &got[1];
        assert!(
            headers
                .iter()
                .any(|h| h.eq_ignore_ascii_case("idempotency-key: a1b2\r\n")),
            "{headers:?}"
        );
        assert!(headers.iter().any(|h| {
            h.to_ascii_lowercase()
                .starts_with("content-type: application/cloudevents+json")
        }));
        let v: Value = serde_json::from_slice(body).expect("json");
        assert_eq!(v["type"], "dev.moat.image.scanned.v1");
        assert_eq!(got[0].1, got[1].1, "a retry sends the same bytes");
    }
}
