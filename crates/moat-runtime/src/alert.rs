//! Alert sinks: Falco-shaped JSON lines or text on a writer, and an HTTP webhook with retries and a
//! bounded queue (an alert that does not fit is counted and reported, never silently lost).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::rules::Alert;

/// How alerts are written to a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Text,
}

/// One line for an alert.
pub fn format_alert(a: &Alert, f: Format) -> String {
    match f {
        Format::Json => serde_json::to_string(a).unwrap_or_default(),
        Format::Text => {
            let mut s = format!("{}: {} {}", a.time, a.priority.as_str(), a.output);
            if let Some(c) = &a.container {
                s.push_str(&format!(" container_id={}", c.id));
                if let Some(img) = &c.image {
                    s.push_str(&format!(" image={img}"));
                }
            }
            if !a.mitre.is_empty() {
                s.push_str(&format!(" mitre={}", a.mitre.join(",")));
            }
            s
        }
    }
}

/// Error of the webhook sink's configuration.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("webhook URL '{0}': only http://HOST[:PORT]/PATH is supported")]
    Url(String),
}

/// An HTTP webhook: alerts are POSTed as JSON by a background thread.
pub struct Webhook {
    tx: Option<SyncSender<String>>,
    dropped: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    worker: Option<JoinHandle<()>>,
}

struct Target {
    host: String,
    port: u16,
    path: String,
}

fn parse_url(url: &str) -> Option<Target> {
    let rest = url.strip_prefix("http://")?;
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().ok()?),
        None => (hostport, 80),
    };
    if host.is_empty() {
        return None;
    }
    Some(Target {
        host: host.to_string(),
        port,
        path: path.to_string(),
    })
}

fn post(t: &Target, body: &str) -> std::io::Result<u16> {
    let addr = (t.host.as_str(), t.port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other("host does not resolve"))?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    let req = format!(
        "POST {} HTTP/1.1\r\nHost: {}:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\nUser-Agent: moat\r\n\r\n{}",
        t.path,
        t.host,
        t.port,
        body.len(),
        body
    );
    s.write_all(req.as_bytes())?;
    // Read up to the end of the status line (bounded).
    let mut head = Vec::new();
    let mut buf = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < 4096 {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    line.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("no HTTP status"))
}

impl Webhook {
    /// Starts the sender; `queue` bounds alerts waiting to be sent.
    pub fn start(url: &str, queue: usize) -> Result<Webhook, WebhookError> {
        let target = parse_url(url).ok_or_else(|| WebhookError::Url(url.to_string()))?;
        let (tx, rx): (SyncSender<String>, Receiver<String>) = sync_channel(queue.max(1));
        let failed = Arc::new(AtomicU64::new(0));
        let f2 = failed.clone();
        let worker = std::thread::spawn(move || {
            for body in rx {
                let mut ok = false;
                for attempt in 0..4u32 {
                    match post(&target, &body) {
                        Ok(code) if (200..300).contains(&code) => {
                            ok = true;
                            break;
                        }
                        Ok(code) if (400..500).contains(&code) && code != 429 => break,
                        _ => std::thread::sleep(Duration::from_millis(200 << attempt)),
                    }
                }
                if !ok {
                    f2.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        Ok(Webhook {
            tx: Some(tx),
            dropped: Arc::new(AtomicU64::new(0)),
            failed,
            worker: Some(worker),
        })
    }

    /// Queues an alert; when the queue is full the alert is counted as dropped.
    pub fn send(&self, a: &Alert) {
        let body = format_alert(a, Format::Json);
        if let Some(tx) = &self.tx
            && let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = tx.try_send(body)
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// (dropped because the queue was full, failed after retries).
    pub fn losses(&self) -> (u64, u64) {
        (
            self.dropped.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }

    /// Sends what is queued and stops.
    pub fn finish(mut self) -> (u64, u64) {
        self.tx.take();
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
        self.losses()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn sample() -> Alert {
        let mut e = crate::rules::Engine::from_str_for_tests(
            "- rule: r\n  desc: d\n  condition: evt.type=execve\n  output: ran %proc.name\n  priority: WARNING\n",
        );
        let mut ev = crate::Event {
            evt_type: "execve".into(),
            ..Default::default()
        };
        ev.proc.name = "sh".into();
        e.process(&mut ev).pop().unwrap()
    }

    #[test]
    fn text_and_json_shapes() {
        let a = sample();
        let j: serde_json::Value = serde_json::from_str(&format_alert(&a, Format::Json)).unwrap();
        for k in [
            "time",
            "rule",
            "priority",
            "output",
            "output_fields",
            "tags",
        ] {
            assert!(j.get(k).is_some(), "{k}");
        }
        assert_eq!(j["priority"], "Warning");
        assert!(format_alert(&a, Format::Text).contains("Warning ran sh"));
    }

    #[test]
    fn webhook_posts_and_retries_on_server_error() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let mut bodies = Vec::new();
            for (i, s) in l.incoming().take(2).enumerate() {
                let mut s = s.unwrap();
                let mut req = Vec::new();
                let mut buf = [0u8; 4096];
                // Read the head and the Content-Length body.
                loop {
                    let n = s.read(&mut buf).unwrap();
                    req.extend_from_slice(&buf[..n]);
                    let t = String::from_utf8_lossy(&req).into_owned();
                    if let Some(h) = t.find("\r\n\r\n") {
                        let len: usize = t[..h]
                            .lines()
                            .find_map(|l| l.strip_prefix("Content-Length: "))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if req.len() >= h + 4 + len {
                            break;
                        }
                    }
                    if n == 0 {
                        break;
                    }
                }
                bodies.push(String::from_utf8_lossy(&req).into_owned());
                let status = if i == 0 { "500 Oops" } else { "200 OK" };
                let resp = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
                s.write_all(resp.as_bytes()).unwrap();
            }
            bodies
        });
        let w = Webhook::start(&format!("http://127.0.0.1:{port}/alerts"), 8).unwrap();
        w.send(&sample());
        let (dropped, failed) = w.finish();
        let bodies = server.join().unwrap();
        assert_eq!((dropped, failed), (0, 0));
        assert_eq!(bodies.len(), 2);
        assert!(bodies[1].starts_with("POST /alerts HTTP/1.1"));
        assert!(bodies[1].contains("\"rule\":\"r\""));
    }

    #[test]
    fn bad_urls_are_rejected() {
        assert!(Webhook::start("https://x/", 1).is_err());
        assert!(Webhook::start("http://:80/", 1).is_err());
    }
}
