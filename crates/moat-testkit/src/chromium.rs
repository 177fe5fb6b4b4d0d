//! A real headless Chromium driven over the DevTools protocol (CDP), for tests of moat's web pages.
//!
//! Debian's `chromium` (scripts/deps.d/75-chromium.sh) is started with a fresh profile and
//! `--remote-debugging-port=0`; the port is read from the profile's `DevToolsActivePort` file and one
//! tab is driven through a flattened session on the browser's websocket. The client is deliberately
//! thin — JSON commands over `tungstenite`, no generated protocol bindings — so it builds in seconds.
//!
//! What a page does is recorded while it loads: console errors, uncaught exceptions, browser log
//! errors (CSP violations land there) and failed requests (network errors and HTTP status >= 400), so
//! a test can assert that a page loaded cleanly, then read the DOM with [`Browser::eval`].

use std::collections::{BTreeMap, VecDeque};
use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

/// How long one command or page load may take before the harness gives up.
const TIMEOUT: Duration = Duration::from_secs(30);

/// What can go wrong driving the browser.
#[derive(Debug)]
pub enum Error {
    /// No Chromium binary (install it with scripts/deps.d/75-chromium.sh).
    NotInstalled(String),
    /// The browser did not start or its DevTools endpoint did not answer.
    Launch(String),
    /// A DevTools command failed or the connection broke.
    Protocol(String),
    /// Nothing arrived in time.
    Timeout(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::NotInstalled(m) => write!(f, "chromium not installed: {m}"),
            Error::Launch(m) => write!(f, "chromium did not start: {m}"),
            Error::Protocol(m) => write!(f, "devtools: {m}"),
            Error::Timeout(m) => write!(f, "devtools: timed out waiting for {m}"),
        }
    }
}

impl std::error::Error for Error {}

/// The Chromium binary: `MOAT_CHROMIUM`, else `chromium` on PATH.
pub fn chromium_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MOAT_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|d| ["chromium", "chromium-browser"].map(|n| d.join(n)))
        .find(|p| p.is_file())
}

/// One entry of a page's load record.
#[derive(Debug, Clone, Default)]
pub struct PageLog {
    /// Console errors, uncaught exceptions and browser log errors (e.g. CSP violations).
    pub console_errors: Vec<String>,
    /// Requests that failed at the network level or answered with HTTP status >= 400: `STATUS URL`.
    pub failed_requests: Vec<String>,
    /// Every request the page made (URL), in order.
    pub requests: Vec<String>,
    /// Bytes received per request (encoded, as on the wire), summed by [`PageLog::bytes`].
    pub received: BTreeMap<String, u64>,
    /// The main document's HTTP status.
    pub status: Option<u16>,
}

impl PageLog {
    /// Total bytes the page transferred, all of its requests included.
    pub fn bytes(&self) -> u64 {
        self.received.values().sum()
    }
}

/// A running headless Chromium with one tab.
pub struct Browser {
    child: Child,
    ws: WebSocket<TcpStream>,
    session: String,
    next_id: u64,
    /// Events received and not yet consumed by a wait.
    pending: VecDeque<Value>,
    /// Request id -> URL, and those still in flight.
    urls: BTreeMap<String, String>,
    inflight: BTreeMap<String, ()>,
    log: PageLog,
    profile: PathBuf,
}

impl Browser {
    /// Starts Chromium headless with a fresh profile under `work` (created) and opens one tab.
    pub fn launch(work: &Path) -> Result<Browser, Error> {
        let bin = chromium_binary().ok_or_else(|| {
            Error::NotInstalled("no `chromium` on PATH (MOAT_CHROMIUM unset)".into())
        })?;
        let profile = work.join(format!("chromium-profile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&profile);
        std::fs::create_dir_all(&profile)
            .map_err(|e| Error::Launch(format!("{}: {e}", profile.display())))?;
        let stderr = std::fs::File::create(profile.join("stderr.log"))
            .map_err(|e| Error::Launch(format!("stderr log: {e}")))?;
        let mut child = Command::new(&bin)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--disable-default-apps",
                "--hide-scrollbars",
                "--mute-audio",
                "--password-store=basic",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| Error::NotInstalled(format!("{}: {e}", bin.display())))?;

        // Chromium writes "PORT\n/devtools/browser/ID" once its endpoint listens.
        let active = profile.join("DevToolsActivePort");
        let deadline = Instant::now() + TIMEOUT;
        let (port, path) = loop {
            if let Ok(s) = std::fs::read_to_string(&active) {
                let mut lines = s.lines();
                if let (Some(p), Some(path)) = (lines.next(), lines.next())
                    && let Ok(port) = p.trim().parse::<u16>()
                {
                    break (port, path.trim().to_string());
                }
            }
            if let Ok(Some(st)) = child.try_wait() {
                let err = std::fs::read_to_string(profile.join("stderr.log")).unwrap_or_default();
                return Err(Error::Launch(format!("exited with {st}: {}", tail(&err))));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Error::Launch("no DevToolsActivePort after 30 s".into()));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let stream = TcpStream::connect(("127.0.0.1", port))
            .map_err(|e| Error::Launch(format!("connect 127.0.0.1:{port}: {e}")))?;
        let url = format!("ws://127.0.0.1:{port}{path}");
        let (ws, _) = tungstenite::client(url.as_str(), stream)
            .map_err(|e| Error::Launch(format!("websocket {url}: {e}")))?;
        let mut b = Browser {
            child,
            ws,
            session: String::new(),
            next_id: 0,
            pending: VecDeque::new(),
            urls: BTreeMap::new(),
            inflight: BTreeMap::new(),
            log: PageLog::default(),
            profile,
        };
        let target = b.browser_call("Target.createTarget", json!({"url": "about:blank"}))?;
        let target_id = str_of(&target, "targetId")?;
        let attached = b.browser_call(
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        )?;
        b.session = str_of(&attached, "sessionId")?;
        for m in [
            "Page.enable",
            "Runtime.enable",
            "Log.enable",
            "Network.enable",
        ] {
            b.call(m, json!({}))?;
        }
        // No cache: every load is measured and checked as a first visit.
        b.call("Network.setCacheDisabled", json!({"cacheDisabled": true}))?;
        Ok(b)
    }

    /// Sets the viewport (CSS pixels); `mobile` emulates a phone (touch, mobile viewport meta).
    pub fn set_viewport(&mut self, width: u32, height: u32, mobile: bool) -> Result<(), Error> {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
        )?;
        Ok(())
    }

    /// Ignores the page's Content-Security-Policy (to check that escaping alone keeps markup inert).
    pub fn bypass_csp(&mut self, on: bool) -> Result<(), Error> {
        self.call("Page.setBypassCSP", json!({"enabled": on}))?;
        Ok(())
    }

    /// Loads `url` and waits until the page has loaded and its network is quiet; returns the load record.
    pub fn navigate(&mut self, url: &str) -> Result<PageLog, Error> {
        self.begin_load();
        let r = self.call("Page.navigate", json!({"url": url}))?;
        if let Some(e) = r.get("errorText").and_then(Value::as_str) {
            return Err(Error::Protocol(format!("navigate {url}: {e}")));
        }
        self.finish_load(url)
    }

    /// Clicks the first element matching `selector` (a link or a submit button) and waits for the
    /// page it leads to, as [`Browser::navigate`] does.
    pub fn click_and_wait(&mut self, selector: &str) -> Result<PageLog, Error> {
        self.begin_load();
        let sel = serde_json::to_string(selector).unwrap_or_default();
        let found = self.eval(&format!(
            "(() => {{ const e = document.querySelector({sel}); if (!e) return false; e.click(); return true; }})()"
        ))?;
        if found != Value::Bool(true) {
            return Err(Error::Protocol(format!("no element matches {selector}")));
        }
        self.finish_load(selector)
    }

    /// Evaluates a JavaScript expression in the page and returns its value (promises awaited).
    pub fn eval(&mut self, expression: &str) -> Result<Value, Error> {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        )?;
        if let Some(ex) = r.get("exceptionDetails") {
            return Err(Error::Protocol(format!(
                "evaluate `{expression}`: {}",
                describe_exception(ex)
            )));
        }
        Ok(r.pointer("/result/value").cloned().unwrap_or(Value::Null))
    }

    /// The trimmed text of the first element matching `selector`, or None.
    pub fn text(&mut self, selector: &str) -> Result<Option<String>, Error> {
        let sel = serde_json::to_string(selector).unwrap_or_default();
        let v = self.eval(&format!(
            "(() => {{ const e = document.querySelector({sel}); return e ? e.textContent.trim() : null; }})()"
        ))?;
        Ok(v.as_str().map(str::to_string))
    }

    /// The trimmed texts of every element matching `selector`.
    pub fn texts(&mut self, selector: &str) -> Result<Vec<String>, Error> {
        let sel = serde_json::to_string(selector).unwrap_or_default();
        let v = self.eval(&format!(
            "Array.from(document.querySelectorAll({sel}), e => e.textContent.trim())"
        ))?;
        Ok(v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// How many elements match `selector`.
    pub fn count(&mut self, selector: &str) -> Result<u64, Error> {
        let sel = serde_json::to_string(selector).unwrap_or_default();
        let v = self.eval(&format!("document.querySelectorAll({sel}).length"))?;
        Ok(v.as_u64().unwrap_or(0))
    }

    /// The page's current URL.
    pub fn url(&mut self) -> Result<String, Error> {
        Ok(self
            .eval("location.href")?
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// The cookies the browser holds for `url`, as CDP reports them (name, value, httpOnly, secure, sameSite...).
    pub fn cookies(&mut self, url: &str) -> Result<Vec<Value>, Error> {
        let r = self.call("Network.getCookies", json!({"urls": [url]}))?;
        Ok(r.get("cookies")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    }

    /// Forgets every cookie (signs the browser out).
    pub fn clear_cookies(&mut self) -> Result<(), Error> {
        self.call("Network.clearBrowserCookies", json!({}))?;
        Ok(())
    }

    /// Writes a PNG of the viewport (or of the whole page with `full_page`) to `path`.
    pub fn screenshot(&mut self, path: &Path, full_page: bool) -> Result<(), Error> {
        let r = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": full_page, "fromSurface": true}),
        )?;
        let data = str_of(&r, "data")?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(data.as_bytes())
            .map_err(|e| Error::Protocol(format!("screenshot data: {e}")))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::Protocol(format!("{}: {e}", dir.display())))?;
        }
        std::fs::write(path, png).map_err(|e| Error::Protocol(format!("{}: {e}", path.display())))
    }

    /// Sends a command on the tab's session and returns its result.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, Error> {
        let session = self.session.clone();
        self.send(method, params, Some(&session))
    }

    fn browser_call(&mut self, method: &str, params: Value) -> Result<Value, Error> {
        self.send(method, params, None)
    }

    fn send(&mut self, method: &str, params: Value, session: Option<&str>) -> Result<Value, Error> {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session.filter(|s| !s.is_empty()) {
            msg["sessionId"] = json!(s);
        }
        self.ws
            .send(Message::text(msg.to_string()))
            .map_err(|e| Error::Protocol(format!("{method}: send: {e}")))?;
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let m = self
                .recv(deadline)?
                .ok_or_else(|| Error::Timeout(format!("the answer to {method}")))?;
            if m.get("id").and_then(Value::as_u64) == Some(id) {
                if let Some(e) = m.get("error") {
                    return Err(Error::Protocol(format!("{method}: {e}")));
                }
                return Ok(m.get("result").cloned().unwrap_or(Value::Null));
            }
            if m.get("method").is_some() {
                self.absorb(&m);
                self.pending.push_back(m);
            }
        }
    }

    /// One message, or None when `deadline` passes first.
    fn recv(&mut self, deadline: Instant) -> Result<Option<Value>, Error> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            self.ws
                .get_mut()
                .set_read_timeout(Some(left))
                .map_err(|e| Error::Protocol(format!("socket: {e}")))?;
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    return serde_json::from_str(t.as_str())
                        .map(Some)
                        .map_err(|e| Error::Protocol(format!("bad message: {e}")));
                }
                Ok(Message::Close(_)) => {
                    return Err(Error::Protocol("browser closed the connection".into()));
                }
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
                {
                    return Ok(None);
                }
                Err(e) => return Err(Error::Protocol(format!("read: {e}"))),
            }
        }
    }

    fn begin_load(&mut self) {
        self.pending.clear();
        self.inflight.clear();
        self.log = PageLog::default();
    }

    /// Waits for the load event, then for a quiet network (no request in flight for 300 ms).
    fn finish_load(&mut self, what: &str) -> Result<PageLog, Error> {
        let deadline = Instant::now() + TIMEOUT;
        let mut loaded = false;
        while !loaded {
            if let Some(i) = self.pending.iter().position(|m| {
                m.get("method").and_then(Value::as_str) == Some("Page.loadEventFired")
            }) {
                self.pending.drain(..=i);
                loaded = true;
                continue;
            }
            match self.recv(deadline)? {
                Some(m) if m.get("method").is_some() => {
                    self.absorb(&m);
                    self.pending.push_back(m);
                }
                Some(_) => {}
                None => return Err(Error::Timeout(format!("the load of {what}"))),
            }
        }
        let mut quiet_since = Instant::now();
        loop {
            let now = Instant::now();
            if now > deadline {
                return Err(Error::Timeout(format!("a quiet network after {what}")));
            }
            if self.inflight.is_empty()
                && now.duration_since(quiet_since) >= Duration::from_millis(300)
            {
                break;
            }
            match self.recv((now + Duration::from_millis(100)).min(deadline))? {
                Some(m) if m.get("method").is_some() => {
                    self.absorb(&m);
                    if !self.inflight.is_empty() {
                        quiet_since = Instant::now();
                    }
                }
                _ => {}
            }
        }
        self.pending.clear();
        Ok(self.log.clone())
    }

    /// Records what an event says about the page's health.
    fn absorb(&mut self, m: &Value) {
        let method = m.get("method").and_then(Value::as_str).unwrap_or_default();
        let p = m.get("params").cloned().unwrap_or(Value::Null);
        let s = |k: &str| {
            p.pointer(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        match method {
            "Runtime.consoleAPICalled" if matches!(s("/type").as_str(), "error" | "assert") => {
                let args: Vec<String> = p
                    .get("args")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .map(|x| {
                                x.get("value")
                                    .map(|v| {
                                        v.as_str().map_or_else(|| v.to_string(), str::to_string)
                                    })
                                    .or_else(|| {
                                        x.get("description")
                                            .and_then(Value::as_str)
                                            .map(str::to_string)
                                    })
                                    .unwrap_or_default()
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                self.log
                    .console_errors
                    .push(format!("console.error: {}", args.join(" ")));
            }
            "Runtime.exceptionThrown" => {
                let ex = p.get("exceptionDetails").cloned().unwrap_or(Value::Null);
                self.log
                    .console_errors
                    .push(format!("exception: {}", describe_exception(&ex)));
            }
            "Log.entryAdded" if s("/entry/level") == "error" => {
                self.log.console_errors.push(format!(
                    "log ({}): {} {}",
                    s("/entry/source"),
                    s("/entry/text"),
                    s("/entry/url")
                ));
            }
            "Network.requestWillBeSent" => {
                let id = s("/requestId");
                let url = s("/request/url");
                self.log.requests.push(url.clone());
                self.urls.insert(id.clone(), url);
                self.inflight.insert(id, ());
            }
            "Network.responseReceived" => {
                let status = p
                    .pointer("/response/status")
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0) as u16;
                let url = s("/response/url");
                if s("/type") == "Document" && self.log.status.is_none() {
                    self.log.status = Some(status);
                }
                if status >= 400 {
                    self.log.failed_requests.push(format!("{status} {url}"));
                }
            }
            "Network.loadingFinished" => {
                let id = s("/requestId");
                let n = p
                    .get("encodedDataLength")
                    .and_then(Value::as_f64)
                    .unwrap_or(0.0) as u64;
                if let Some(url) = self.urls.get(&id) {
                    *self.log.received.entry(format!("{id} {url}")).or_default() += n;
                }
                self.inflight.remove(&id);
            }
            "Network.loadingFailed" => {
                let id = s("/requestId");
                let url = self.urls.get(&id).cloned().unwrap_or_default();
                // A navigation that replaced the page cancels its leftovers; that is not a failure.
                if !p.get("canceled").and_then(Value::as_bool).unwrap_or(false) {
                    self.log
                        .failed_requests
                        .push(format!("{} {url}", s("/errorText")));
                }
                self.inflight.remove(&id);
            }
            _ => {}
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.browser_call("Browser.close", json!({}));
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn str_of(v: &Value, k: &str) -> Result<String, Error> {
    v.get(k)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| Error::Protocol(format!("no `{k}` in {v}")))
}

fn describe_exception(ex: &Value) -> String {
    ex.pointer("/exception/description")
        .and_then(Value::as_str)
        .or_else(|| ex.get("text").and_then(Value::as_str))
        .unwrap_or("unknown exception")
        .to_string()
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

/// Reads a PNG's width and height from its IHDR chunk (to check screenshot sizes).
pub fn png_size(path: &Path) -> Option<(u32, u32)> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut head = [0u8; 24];
    f.read_exact(&mut head).ok()?;
    (&head[..8] == b"\x89PNG\r\n\x1a\n" && &head[12..16] == b"IHDR").then(|| {
        (
            u32::from_be_bytes([head[16], head[17], head[18], head[19]]),
            u32::from_be_bytes([head[20], head[21], head[22], head[23]]),
        )
    })
}
