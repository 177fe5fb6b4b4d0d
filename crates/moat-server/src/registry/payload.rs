//! Registry notification payloads: the CNCF distribution envelope (`{"events": [...]}`, media type
//! `application/vnd.docker.distribution.events.v1+json` / `v2+json`) and Harbor's webhook (`type:
//! PUSH_ARTIFACT`, Default format or CloudEvents structured mode).
//!
//! Parsing is lenient where registries differ (unknown fields, `size`/`length`, a missing tag, OCI and
//! Docker media types) and strict where it matters: a push must name a repository and a `sha256:`
//! digest. Every push is only a hint; the pipeline re-resolves the digest against the registry.

use serde::Deserialize;
use serde_json::Value;

/// Where a push hint came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Distribution,
    Harbor,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Distribution => "distribution",
            Source::Harbor => "harbor",
        }
    }
}

/// One manifest push as a registry reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushHint {
    pub source: Source,
    /// The key a retried delivery of the same event repeats (distribution's event id; for Harbor's
    /// Default format, which has none, `type/digest/occur_at`).
    pub event_key: String,
    /// Registry host as the event names it (`127.0.0.1:5000`, `harbor.example`), if it does.
    pub host: Option<String>,
    pub repository: String,
    pub digest: String,
    pub tag: Option<String>,
    /// Manifest media type as reported (an index is expanded into its platforms by the pipeline).
    pub media_type: Option<String>,
}

/// What a notification body held: the pushes to act on and how many events were ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    pub pushes: Vec<PushHint>,
    /// Pulls, mounts, deletes, blob pushes and other event types.
    pub ignored: usize,
}

/// A body that is not a registry notification moat understands. The message names the field.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct PayloadError(pub String);

/// Media types of manifests and indexes (what a scan is triggered by); anything else pushed is a blob.
pub const MANIFEST_TYPES: [&str; 4] = [
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];

/// Whether `media_type` names an image index (a multi-platform list).
pub fn is_index(media_type: &str) -> bool {
    media_type == MANIFEST_TYPES[1] || media_type == MANIFEST_TYPES[3]
}

/// Parses a notification body: the distribution envelope, a Harbor Default payload or a Harbor
/// CloudEvents (structured) payload, told apart by their fields.
pub fn parse(body: &[u8]) -> Result<Parsed, PayloadError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| PayloadError(format!("body is not JSON: {e}")))?;
    let Some(obj) = v.as_object() else {
        return Err(PayloadError(
            "body is not a JSON object (expected {\"events\": [...]} or a Harbor webhook payload)"
                .into(),
        ));
    };
    if obj.contains_key("events") {
        return parse_distribution(&v);
    }
    if obj.get("specversion").is_some() {
        return parse_harbor_cloudevent(&v);
    }
    if obj.get("type").is_some() && obj.get("event_data").is_some() {
        return parse_harbor_default(&v);
    }
    Err(PayloadError(
        "unknown payload: neither a distribution envelope (field `events`) nor a Harbor webhook (fields `type` and `event_data`, or CloudEvents `specversion`)".into(),
    ))
}

#[derive(Deserialize)]
struct DistEvent {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    target: Option<DistTarget>,
}

#[derive(Deserialize)]
struct DistTarget {
    #[serde(default, rename = "mediaType")]
    media_type: Option<String>,
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    repository: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    tag: Option<String>,
}

fn parse_distribution(v: &Value) -> Result<Parsed, PayloadError> {
    let Some(events) = v.get("events").and_then(Value::as_array) else {
        return Err(PayloadError("`events` is not an array".into()));
    };
    let mut out = Parsed::default();
    for (i, e) in events.iter().enumerate() {
        let e: DistEvent = serde_json::from_value(e.clone())
            .map_err(|err| PayloadError(format!("events[{i}]: {err}")))?;
        if e.action.as_deref() != Some("push") {
            out.ignored += 1;
            continue;
        }
        let Some(t) = e.target else {
            return Err(PayloadError(format!("events[{i}]: push without `target`")));
        };
        let media = t.media_type.clone().unwrap_or_default();
        if !MANIFEST_TYPES.contains(&media.as_str()) {
            // Layer and config blob pushes (and unknown artifact types) are not images to scan.
            out.ignored += 1;
            continue;
        }
        let repository = t
            .repository
            .filter(|r| !r.is_empty())
            .ok_or_else(|| PayloadError(format!("events[{i}].target.repository is missing")))?;
        let digest = t
            .digest
            .ok_or_else(|| PayloadError(format!("events[{i}].target.digest is missing")))?;
        check_digest(&digest, &format!("events[{i}].target.digest"))?;
        let id = e.id.filter(|s| !s.is_empty()).unwrap_or_else(|| {
            // No id (some forks): the content identifies the event.
            format!("{repository}@{digest}:{}", t.tag.as_deref().unwrap_or(""))
        });
        out.pushes.push(PushHint {
            source: Source::Distribution,
            event_key: id,
            host: t.url.as_deref().and_then(url_host),
            repository,
            digest,
            tag: t.tag.filter(|t| !t.is_empty()),
            media_type: Some(media),
        });
    }
    Ok(out)
}

#[derive(Deserialize)]
struct HarborData {
    #[serde(default)]
    resources: Vec<HarborResource>,
    #[serde(default)]
    repository: Option<HarborRepository>,
}

#[derive(Deserialize)]
struct HarborResource {
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default)]
    resource_url: Option<String>,
}

#[derive(Deserialize)]
struct HarborRepository {
    #[serde(default)]
    repo_full_name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

fn parse_harbor_default(v: &Value) -> Result<Parsed, PayloadError> {
    let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
    if kind != "PUSH_ARTIFACT" {
        return Ok(Parsed {
            pushes: vec![],
            ignored: 1,
        });
    }
    let occur = v.get("occur_at").map(|o| o.to_string()).unwrap_or_default();
    let data = v.get("event_data").cloned().unwrap_or(Value::Null);
    harbor_resources(data, "event_data", |digest| {
        format!("PUSH_ARTIFACT/{digest}/{occur}")
    })
}

fn parse_harbor_cloudevent(v: &Value) -> Result<Parsed, PayloadError> {
    if v.get("specversion").and_then(Value::as_str) != Some("1.0") {
        return Err(PayloadError(
            "specversion: only CloudEvents 1.0 is accepted".into(),
        ));
    }
    let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
    if kind != "harbor.artifact.pushed" {
        return Ok(Parsed {
            pushes: vec![],
            ignored: 1,
        });
    }
    let id = v
        .get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| PayloadError("id: a CloudEvent needs an id".into()))?
        .to_string();
    let data = v.get("data").cloned().unwrap_or(Value::Null);
    harbor_resources(data, "data", |digest| format!("{id}/{digest}"))
}

fn harbor_resources(
    data: Value,
    field: &str,
    key: impl Fn(&str) -> String,
) -> Result<Parsed, PayloadError> {
    let data: HarborData =
        serde_json::from_value(data).map_err(|e| PayloadError(format!("{field}: {e}")))?;
    let repo = data.repository.as_ref();
    let full = repo
        .and_then(|r| r.repo_full_name.clone())
        .or_else(|| {
            let r = repo?;
            Some(format!(
                "{}/{}",
                r.namespace.as_deref()?,
                r.name.as_deref()?
            ))
        })
        .filter(|s| !s.is_empty());
    let mut out = Parsed::default();
    for (i, r) in data.resources.into_iter().enumerate() {
        let at = format!("{field}.resources[{i}]");
        let digest = r
            .digest
            .ok_or_else(|| PayloadError(format!("{at}.digest is missing")))?;
        check_digest(&digest, &format!("{at}.digest"))?;
        // resource_url is `host/namespace/name:tag` or `host/namespace/name@digest`.
        let (host, url_repo) = r
            .resource_url
            .as_deref()
            .map(split_resource_url)
            .unwrap_or((None, None));
        let repository = full.clone().or(url_repo).ok_or_else(|| {
            PayloadError(format!(
                "{field}.repository.repo_full_name is missing (and {at}.resource_url names no repository)"
            ))
        })?;
        out.pushes.push(PushHint {
            source: Source::Harbor,
            event_key: key(&digest),
            host,
            repository,
            digest,
            tag: r.tag.filter(|t| !t.is_empty()),
            media_type: None,
        });
    }
    Ok(out)
}

fn check_digest(d: &str, field: &str) -> Result<(), PayloadError> {
    let ok = d
        .strip_prefix("sha256:")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    if ok {
        Ok(())
    } else {
        Err(PayloadError(format!(
            "{field}: {:?} is not a sha256 digest",
            d.chars().take(80).collect::<String>()
        )))
    }
}

/// `http://127.0.0.1:5000/v2/...` → `127.0.0.1:5000`.
fn url_host(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let host = rest.split('/').next()?;
    (!host.is_empty()).then(|| host.to_string())
}

/// `harbor.example/team-a/payments:1.4.2` → (`harbor.example`, `team-a/payments`).
fn split_resource_url(u: &str) -> (Option<String>, Option<String>) {
    let u = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"))
        .unwrap_or(u);
    let Some((host, path)) = u.split_once('/') else {
        return (None, None);
    };
    let path = path.split('@').next().unwrap_or(path);
    let path = match path.rfind(':') {
        Some(i) if !path[i..].contains('/') => &path[..i],
        _ => path,
    };
    (
        Some(host.to_string()),
        (!path.is_empty()).then(|| path.to_string()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The research doc's distribution example (§5.1), plus a pull, a layer push and a mount in the
    /// same envelope.
    const DISTRIBUTION: &str = r#"{
      "events": [
        {
          "id": "320678d8-ca14-430f-8bb6-4ca139cd83f7",
          "timestamp": "2026-08-22T14:44:26.402973972Z",
          "action": "push",
          "target": {
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": "sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf",
            "size": 708,
            "length": 708,
            "repository": "team-a/payments",
            "url": "https://registry.example/v2/team-a/payments/manifests/sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf",
            "tag": "1.4.2"
          },
          "request": { "id": "6df24a34-0959-4923-81ca-14f09767db19", "addr": "10.0.0.7:42961",
                       "host": "registry.example", "method": "PUT", "useragent": "buildkit/v0.17" },
          "actor": { "name": "ci-bot" },
          "source": { "addr": "registry-0:5000", "instanceID": "a53db899-3b4b-4a62-a067-8dd013beaca4" }
        },
        {"id": "p1", "action": "pull", "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
          "digest": "sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf", "repository": "team-a/payments"}},
        {"id": "b1", "action": "push", "target": {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
          "digest": "sha256:1111111111111111111111111111111111111111111111111111111111111111", "repository": "team-a/payments"}},
        {"id": "m1", "action": "mount", "target": {"mediaType": "application/octet-stream",
          "digest": "sha256:2222222222222222222222222222222222222222222222222222222222222222", "repository": "team-b/x", "fromRepository": "team-a/payments"}}
      ]
    }"#;

    #[test]
    fn distribution_envelope_keeps_manifest_pushes_only() {
        let p = parse(DISTRIBUTION.as_bytes()).expect("parses");
        assert_eq!(p.ignored, 3);
        assert_eq!(
            p.pushes,
            vec![PushHint {
                source: Source::Distribution,
                event_key: "320678d8-ca14-430f-8bb6-4ca139cd83f7".into(),
                host: Some("registry.example".into()),
                repository: "team-a/payments".into(),
                digest: "sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf"
                    .into(),
                tag: Some("1.4.2".into()),
                media_type: Some("application/vnd.oci.image.manifest.v1+json".into()),
            }]
        );
    }

    #[test]
    fn harbor_default_push_artifact() {
        let body = r#"{
          "type": "PUSH_ARTIFACT",
          "occur_at": 1680501893,
          "operator": "robot$team-a+ci",
          "event_data": {
            "resources": [
              {
                "digest": "sha256:954b378c375d852eb3c63ab88978f640b4348b01c1b3456a024a81536dafbbf4",
                "tag": "1.4.2",
                "resource_url": "harbor.example/team-a/payments:1.4.2"
              }
            ],
            "repository": {
              "date_created": 1680501893,
              "name": "payments",
              "namespace": "team-a",
              "repo_full_name": "team-a/payments",
              "repo_type": "private"
            }
          }
        }"#;
        let p = parse(body.as_bytes()).expect("parses");
        assert_eq!(p.ignored, 0);
        let h = &p.pushes[0];
        assert_eq!(h.source, Source::Harbor);
        assert_eq!(h.host.as_deref(), Some("harbor.example"));
        assert_eq!(h.repository, "team-a/payments");
        assert_eq!(h.tag.as_deref(), Some("1.4.2"));
        assert_eq!(
            h.event_key,
            "PUSH_ARTIFACT/sha256:954b378c375d852eb3c63ab88978f640b4348b01c1b3456a024a81536dafbbf4/1680501893"
        );
    }

    #[test]
    fn harbor_scan_completed_and_pulls_are_ignored() {
        let body = r#"{"type": "SCANNING_COMPLETED", "occur_at": 1615880572, "operator": "auto",
          "event_data": {"resources": [{"digest": "sha256:6094a54444067d21929be0d741291b6eed82caa455be3a347c6e514f2794d803",
            "tag": "", "resource_url": "harbor.example/team-a/payments@sha256:6094a54444067d21929be0d741291b6eed82caa455be3a347c6e514f2794d803"}],
            "repository": {"name": "payments", "namespace": "team-a", "repo_full_name": "team-a/payments", "repo_type": "private"}}}"#;
        let p = parse(body.as_bytes()).expect("parses");
        assert!(p.pushes.is_empty());
        assert_eq!(p.ignored, 1);
    }

    #[test]
    fn harbor_cloudevents_push_without_tag() {
        let body = r#"{"specversion": "1.0", "id": "4b2e9c5a-0000-4000-8000-000000000001",
          "requestid": "r1", "source": "/projects/1/webhook/policies/2", "type": "harbor.artifact.pushed",
          "datacontenttype": "application/json", "time": "2026-08-22T14:44:26Z", "operator": "admin",
          "data": {"resources": [{"digest": "sha256:954b378c375d852eb3c63ab88978f640b4348b01c1b3456a024a81536dafbbf4",
            "tag": "", "resource_url": "harbor.example/team-a/payments@sha256:954b378c375d852eb3c63ab88978f640b4348b01c1b3456a024a81536dafbbf4"}],
            "repository": {"name": "payments", "namespace": "team-a"}}}"#;
        let p = parse(body.as_bytes()).expect("parses");
        let h = &p.pushes[0];
        assert_eq!(h.repository, "team-a/payments");
        assert_eq!(h.tag, None);
        assert!(h.event_key.starts_with("4b2e9c5a-"));
    }

    #[test]
    fn hostile_and_unknown_bodies_name_the_field() {
        let e = parse(b"[1,2]").unwrap_err();
        assert!(e.0.contains("not a JSON object"), "{e}");
        let e = parse(b"{\"hello\": 1}").unwrap_err();
        assert!(e.0.contains("unknown payload"), "{e}");
        let e = parse(b"{\"events\": 3}").unwrap_err();
        assert!(e.0.contains("`events` is not an array"), "{e}");
        let bad = r#"{"events": [{"id": "x", "action": "push", "target": {"mediaType":
            "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:../../etc", "repository": "a"}}]}"#;
        let e = parse(bad.as_bytes()).unwrap_err();
        assert!(e.0.contains("events[0].target.digest"), "{e}");
        let no_repo = r#"{"events": [{"id": "x", "action": "push", "target": {"mediaType":
            "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf"}}]}"#;
        let e = parse(no_repo.as_bytes()).unwrap_err();
        assert!(e.0.contains("events[0].target.repository"), "{e}");
        assert!(parse(b"not json").unwrap_err().0.contains("not JSON"));
    }

    #[test]
    fn resource_urls() {
        assert_eq!(
            split_resource_url("harbor.example/team-a/payments:1.4.2"),
            (
                Some("harbor.example".into()),
                Some("team-a/payments".into())
            )
        );
        assert_eq!(
            split_resource_url("127.0.0.1:5000/a/b@sha256:00"),
            (Some("127.0.0.1:5000".into()), Some("a/b".into()))
        );
        assert_eq!(
            url_host("http://127.0.0.1:5000/v2/a/manifests/x").as_deref(),
            Some("127.0.0.1:5000")
        );
    }
}
