//! The web dashboard of `moat server` (issue 12): server-rendered pages at `/`, every asset embedded in
//! the binary and served from `/static/`, a strict Content-Security-Policy (no inline script or style,
//! nothing from another origin), sign-in with a read-scope server token turned into a session cookie
//! (`HttpOnly`, `SameSite=Strict`, `Secure` when TLS is on), and a CSRF token on every POST form.
//!
//! Routes are a plain `Router` with their own state, so the server core merges them outside its
//! bearer-token layer: `router.merge(web::routes(WebState::new(pool, tls, verifier)))`.

pub mod data;
pub mod pages;
pub mod views;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{Form, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::Markup;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use sqlx::AnyPool;

use views::{AlertQuery, ImageQuery};

/// What a token check answers: the token's id and scopes.
pub type Verified<'a> = Pin<Box<dyn Future<Output = Option<(String, Vec<String>)>> + Send + 'a>>;

/// Checks server tokens for sign-in. The server core implements it over its token store.
pub trait TokenVerifier: Send + Sync + 'static {
    /// The token's id and scopes when `secret` is a live token, else None.
    fn verify<'a>(&'a self, secret: &'a str) -> Verified<'a>;
    /// Whether the token `id` still exists and is not revoked (a revoked token ends its sessions).
    fn is_live<'a>(&'a self, id: &'a str) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>>;
}

/// How long a session lasts without being used again.
const SESSION_MS: i64 = 8 * 3600 * 1000;
/// Sessions kept at most (the oldest are dropped first), so sign-ins cannot exhaust memory.
const MAX_SESSIONS: usize = 10_000;

struct Session {
    token_id: String,
    csrf: String,
    expires_ms: i64,
}

/// What the web routes need: the store's pool, whether TLS is on, and the token check.
#[derive(Clone)]
pub struct WebState {
    pool: AnyPool,
    tls: bool,
    verifier: Arc<dyn TokenVerifier>,
    /// The server's vulnerability database, for remediation plans (see [`WebState::with_db`]).
    db: Option<std::path::PathBuf>,
    /// The overview's portfolio figures, computed at most every [`PORTFOLIO_FRESH`].
    portfolio: Portfolio,
    /// SHA-256 of the session cookie value -> session. A stolen memory dump holds no usable cookie.
    sessions: Arc<Mutex<HashMap<String, Session>>>,
}

/// How long the overview's portfolio figures are served before a view recomputes them. Aggregates over every
/// open finding cost seconds on 10,000 images; a view never waits for them once they exist: a stale copy is
/// served while one background task computes the next (stale-while-revalidate).
pub const PORTFOLIO_FRESH: std::time::Duration = std::time::Duration::from_secs(10);

/// The cached portfolio figures and whether a refresh is running.
#[derive(Clone, Default)]
struct Portfolio {
    cached: Arc<tokio::sync::Mutex<Option<(std::time::Instant, views::Overview)>>>,
    refreshing: Arc<std::sync::atomic::AtomicBool>,
}

impl Portfolio {
    /// The figures: computed now when there are none yet, else the cached ones (refreshed in the
    /// background when older than [`PORTFOLIO_FRESH`]).
    async fn get(&self, pool: &AnyPool) -> Result<views::Overview, data::DataError> {
        use std::sync::atomic::Ordering;
        let mut guard = self.cached.lock().await;
        match guard.as_ref() {
            None => {
                let o = data::portfolio(pool, now_ms()).await?;
                *guard = Some((std::time::Instant::now(), o.clone()));
                Ok(o)
            }
            Some((at, o)) => {
                let o = o.clone();
                if at.elapsed() >= PORTFOLIO_FRESH && !self.refreshing.swap(true, Ordering::AcqRel)
                {
                    let (me, pool) = (self.clone(), pool.clone());
                    tokio::spawn(async move {
                        if let Ok(fresh) = data::portfolio(&pool, now_ms()).await {
                            *me.cached.lock().await = Some((std::time::Instant::now(), fresh));
                        }
                        me.refreshing.store(false, Ordering::Release);
                    });
                }
                Ok(o)
            }
        }
    }
}

impl WebState {
    pub fn new(pool: AnyPool, tls: bool, verifier: Arc<dyn TokenVerifier>) -> WebState {
        WebState {
            pool,
            tls,
            verifier,
            db: None,
            portfolio: Portfolio::default(),
            sessions: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The vulnerability database the server judges with: image pages then show the same remediation
    /// plan as the API (advisories re-matched at candidate versions).
    pub fn with_db(mut self, db: std::path::PathBuf) -> WebState {
        self.db = Some(db);
        self
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn random_hex() -> String {
    let mut b = [0u8; 32];
    // The OS RNG failing is not recoverable for a security token: an all-zero value would be guessable.
    getrandom::fill(&mut b).expect("OS random number generator");
    hex::encode(b)
}

fn hash(v: &str) -> String {
    hex::encode(Sha256::digest(v.as_bytes()))
}

/// Constant-time equality for tokens.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The router: pages, sign-in/out, assets, live counts.
pub fn routes<S: Clone + Send + Sync + 'static>(state: WebState) -> Router<S> {
    Router::new()
        .route("/", get(overview))
        .route("/images", get(images))
        .route("/images/{digest}", get(image))
        .route("/advisories/{id}", get(advisory))
        .route("/runtime", get(runtime))
        .route("/runtime/alerts/{id}", get(alert))
        .route("/admission", get(admission))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/ui/live.json", get(live))
        .route("/static/{file}", get(asset))
        .route(
            "/favicon.ico",
            get(|| async { Redirect::permanent("/static/favicon.svg") }),
        )
        .layer(middleware::from_fn(security_headers))
        .with_state(state)
}

/// Headers on every dashboard response: the CSP forbids inline script/style and other origins.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// The embedded assets.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../../web/app.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../../web/app.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../../web/favicon.svg"),
    ),
];

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == file) {
        Some((_, ctype, body)) => (
            [
                (header::CONTENT_TYPE, *ctype),
                (header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| {
            let (k, v) = kv.trim().split_once('=')?;
            (k == name).then(|| v.to_string())
        })
}

const SESSION_COOKIE: &str = "moat_session";
const LOGIN_CSRF_COOKIE: &str = "moat_login_csrf";

fn set_cookie(state: &WebState, name: &str, value: &str, max_age_s: i64) -> HeaderValue {
    let secure = if state.tls { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("moat_invalid=1"))
}

/// A signed-in request: the session's CSRF token for the page's forms.
struct Signed {
    csrf: String,
}

/// The session of a request, refreshed; None means "sign in first".
async fn session(state: &WebState, headers: &HeaderMap) -> Option<Signed> {
    let v = cookie(headers, SESSION_COOKIE)?;
    let key = hash(&v);
    let token_id = {
        let mut s = state.sessions.lock().ok()?;
        let now = now_ms();
        let sess = s.get_mut(&key)?;
        if sess.expires_ms < now {
            s.remove(&key);
            return None;
        }
        sess.expires_ms = now + SESSION_MS;
        sess.token_id.clone()
    };
    if !state.verifier.is_live(&token_id).await {
        if let Ok(mut s) = state.sessions.lock() {
            s.remove(&key);
        }
        return None;
    }
    let s = state.sessions.lock().ok()?;
    s.get(&key).map(|x| Signed {
        csrf: x.csrf.clone(),
    })
}

fn to_login(uri_path: &str) -> Response {
    Redirect::to(&format!("/login?next={}", pages::seg(uri_path))).into_response()
}

fn html(m: Markup) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        m.into_string(),
    )
        .into_response()
}

fn failure(status: StatusCode, title: &str, text: &str, csrf: &str) -> Response {
    (
        status,
        html(pages::message(title, text, &pages::Ctx { csrf })),
    )
        .into_response()
}

fn store_down(e: data::DataError, csrf: &str) -> Response {
    eprintln!("moat server: dashboard query failed: {e}");
    failure(
        StatusCode::SERVICE_UNAVAILABLE,
        "Store unavailable",
        "The store did not answer; try again.",
        csrf,
    )
}

macro_rules! signed_in {
    ($state:expr, $headers:expr, $path:expr) => {
        match session(&$state, &$headers).await {
            Some(s) => s,
            None => return to_login($path),
        }
    };
}

async fn overview(State(st): State<WebState>, headers: HeaderMap) -> Response {
    let s = signed_in!(st, headers, "/");
    let ctx = pages::Ctx { csrf: &s.csrf };
    let mut o = match st.portfolio.get(&st.pool).await {
        Ok(o) => o,
        Err(e) => return store_down(e, &s.csrf),
    };
    if let Err(e) = data::overview_live(&st.pool, &mut o).await {
        return store_down(e, &s.csrf);
    }
    let stamp = match data::live(&st.pool).await {
        Ok((_, _, stamp)) => stamp,
        Err(e) => return store_down(e, &s.csrf),
    };
    html(pages::overview(&o, &stamp, &ctx))
}

async fn live(State(st): State<WebState>, headers: HeaderMap) -> Response {
    if session(&st, &headers).await.is_none() {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({"error": "sign in first"})),
        )
            .into_response();
    }
    match data::live(&st.pool).await {
        Ok((alerts, denials, stamp)) => {
            axum::Json(serde_json::json!({"alerts": alerts, "denials": denials, "stamp": stamp}))
                .into_response()
        }
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

#[derive(Deserialize, Default)]
struct ImagesParams {
    q: Option<String>,
    verdict: Option<String>,
    sort: Option<String>,
    dir: Option<String>,
    page: Option<String>,
    per_page: Option<String>,
}

/// Parses the image list's query; anything invalid falls back to the default (never an error page).
fn image_query(p: ImagesParams) -> ImageQuery {
    let sort = p
        .sort
        .filter(|s| data::SORTS.iter().any(|(k, _)| k == s))
        .unwrap_or_else(|| "scanned".into());
    let desc = match p.dir.as_deref() {
        Some("asc") => false,
        Some("desc") => true,
        _ => sort != "repository" && sort != "tag",
    };
    ImageQuery {
        q: p.q.unwrap_or_default().chars().take(200).collect(),
        verdict: p
            .verdict
            .filter(|v| ["allow", "block", "pending"].contains(&v.as_str()))
            .unwrap_or_default(),
        sort,
        desc,
        page: p
            .page
            .and_then(|v| v.parse().ok())
            .filter(|n: &i64| (1..=1_000_000).contains(n))
            .unwrap_or(1),
        per_page: p
            .per_page
            .and_then(|v| v.parse().ok())
            .filter(|&n: &i64| (1..=100).contains(&n))
            .unwrap_or(50),
    }
}

async fn images(
    State(st): State<WebState>,
    headers: HeaderMap,
    Query(p): Query<ImagesParams>,
) -> Response {
    let s = signed_in!(st, headers, "/images");
    match data::images(&st.pool, &image_query(p)).await {
        Ok(l) => html(pages::images(&l, &pages::Ctx { csrf: &s.csrf })),
        Err(e) => store_down(e, &s.csrf),
    }
}

async fn image(
    State(st): State<WebState>,
    headers: HeaderMap,
    Path(digest): Path<String>,
) -> Response {
    let s = signed_in!(st, headers, &format!("/images/{digest}"));
    match data::image(&st.pool, &digest, st.db.as_deref()).await {
        Ok(Some(d)) => html(pages::image(&d, &pages::Ctx { csrf: &s.csrf })),
        Ok(None) => failure(
            StatusCode::NOT_FOUND,
            "Image not found",
            &format!("The server never stored {digest}."),
            &s.csrf,
        ),
        Err(e) => store_down(e, &s.csrf),
    }
}

async fn advisory(
    State(st): State<WebState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let s = signed_in!(st, headers, &format!("/advisories/{id}"));
    match data::advisory(&st.pool, &id).await {
        Ok(Some(a)) => html(pages::advisory(&a, &pages::Ctx { csrf: &s.csrf })),
        Ok(None) => failure(
            StatusCode::NOT_FOUND,
            "Advisory not found",
            &format!("No stored image is affected by {id}."),
            &s.csrf,
        ),
        Err(e) => store_down(e, &s.csrf),
    }
}

#[derive(Deserialize, Default)]
struct AlertParams {
    priority: Option<String>,
    rule: Option<String>,
    namespace: Option<String>,
    pod: Option<String>,
    image: Option<String>,
    mitre: Option<String>,
    page: Option<String>,
}

fn clip(v: Option<String>) -> String {
    v.unwrap_or_default().chars().take(300).collect()
}

async fn runtime(
    State(st): State<WebState>,
    headers: HeaderMap,
    Query(p): Query<AlertParams>,
) -> Response {
    let s = signed_in!(st, headers, "/runtime");
    let q = AlertQuery {
        priority: clip(p.priority),
        rule: clip(p.rule),
        namespace: clip(p.namespace),
        pod: clip(p.pod),
        image: clip(p.image),
        mitre: clip(p.mitre),
        page: p
            .page
            .and_then(|v| v.parse().ok())
            .filter(|&n: &i64| n >= 1)
            .unwrap_or(1),
    };
    match data::runtime(&st.pool, &q).await {
        Ok(rt) => html(pages::runtime(&rt, &pages::Ctx { csrf: &s.csrf })),
        Err(e) => store_down(e, &s.csrf),
    }
}

async fn alert(State(st): State<WebState>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let s = signed_in!(st, headers, &format!("/runtime/alerts/{id}"));
    match data::alert(&st.pool, &id).await {
        Ok(Some(a)) => html(pages::alert(&a, &pages::Ctx { csrf: &s.csrf })),
        Ok(None) => failure(
            StatusCode::NOT_FOUND,
            "Alert not found",
            "No such runtime alert.",
            &s.csrf,
        ),
        Err(e) => store_down(e, &s.csrf),
    }
}

async fn admission(State(st): State<WebState>, headers: HeaderMap) -> Response {
    let s = signed_in!(st, headers, "/admission");
    match data::admission(&st.pool).await {
        Ok(a) => html(pages::admission(&a, &pages::Ctx { csrf: &s.csrf })),
        Err(e) => store_down(e, &s.csrf),
    }
}

#[derive(Deserialize, Default)]
struct LoginParams {
    next: Option<String>,
}

/// Only a local path is a valid place to go after sign-in (no open redirect).
fn safe_next(next: Option<String>) -> String {
    next.filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\'))
        .unwrap_or_else(|| "/".into())
}

async fn login_page(State(st): State<WebState>, Query(p): Query<LoginParams>) -> Response {
    let csrf = random_hex();
    let mut res = html(pages::login(&csrf, &safe_next(p.next), None));
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&st, LOGIN_CSRF_COOKIE, &csrf, 600),
    );
    res
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
    csrf: String,
    next: Option<String>,
}

async fn login(
    State(st): State<WebState>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let next = safe_next(f.next);
    // Double-submit: the form's token must equal the cookie set with the sign-in page.
    let ok_csrf = cookie(&headers, LOGIN_CSRF_COOKIE).is_some_and(|c| same(&c, &f.csrf));
    if !ok_csrf {
        return (
            StatusCode::FORBIDDEN,
            "CSRF token missing or wrong: reload the sign-in page",
        )
            .into_response();
    }
    let again = |msg: &str| {
        let csrf = random_hex();
        let mut res = (
            StatusCode::UNAUTHORIZED,
            html(pages::login(&csrf, &next, Some(msg))),
        )
            .into_response();
        res.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(&st, LOGIN_CSRF_COOKIE, &csrf, 600),
        );
        res
    };
    let Some((token_id, scopes)) = st.verifier.verify(f.token.trim()).await else {
        return again("That token is not valid.");
    };
    if !scopes.iter().any(|s| s == "read" || s == "admin") {
        return again("That token has no read scope.");
    }
    let value = random_hex();
    if let Ok(mut s) = st.sessions.lock() {
        let now = now_ms();
        s.retain(|_, v| v.expires_ms >= now);
        if s.len() >= MAX_SESSIONS
            && let Some(oldest) = s
                .iter()
                .min_by_key(|(_, v)| v.expires_ms)
                .map(|(k, _)| k.clone())
        {
            s.remove(&oldest);
        }
        s.insert(
            hash(&value),
            Session {
                token_id,
                csrf: random_hex(),
                expires_ms: now + SESSION_MS,
            },
        );
    }
    let mut res = Redirect::to(&next).into_response();
    let h = res.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(&st, SESSION_COOKIE, &value, SESSION_MS / 1000),
    );
    h.append(
        header::SET_COOKIE,
        set_cookie(&st, LOGIN_CSRF_COOKIE, "", 0),
    );
    res
}

#[derive(Deserialize)]
struct LogoutForm {
    csrf: String,
}

async fn logout(
    State(st): State<WebState>,
    headers: HeaderMap,
    Form(f): Form<LogoutForm>,
) -> Response {
    let Some(v) = cookie(&headers, SESSION_COOKIE) else {
        return Redirect::to("/login").into_response();
    };
    let key = hash(&v);
    let ok = st
        .sessions
        .lock()
        .ok()
        .and_then(|s| s.get(&key).map(|x| same(&x.csrf, &f.csrf)))
        .unwrap_or(false);
    if !ok {
        return (StatusCode::FORBIDDEN, "CSRF token missing or wrong").into_response();
    }
    if let Ok(mut s) = st.sessions.lock() {
        s.remove(&key);
    }
    let mut res = Redirect::to("/login").into_response();
    res.headers_mut()
        .append(header::SET_COOKIE, set_cookie(&st, SESSION_COOKIE, "", 0));
    res
}

/// An empty body (helps tests build requests).
#[doc(hidden)]
pub fn empty() -> Body {
    Body::empty()
}

/// Sign-in checks the server's own token store (tokens are stored only as hashes there).
impl TokenVerifier for crate::store::Store {
    fn verify<'a>(&'a self, secret: &'a str) -> Verified<'a> {
        Box::pin(async move {
            let t = self.verify_token(secret).await.ok().flatten()?;
            Some((
                t.id,
                t.scopes.iter().map(|s| s.as_str().to_string()).collect(),
            ))
        })
    }
    fn is_live<'a>(&'a self, id: &'a str) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>> {
        Box::pin(async move { self.token_exists(id).await.unwrap_or(false) })
    }
}
