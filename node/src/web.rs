//! The web UI for people: counter workers, leads, admins, and applicants reading guides.
//!
//! Pages are rendered on the node from the templates in `web/templates` (compiled in by
//! askama), with strings from `web/i18n` and one stylesheet; nothing comes from the
//! internet, and the only script is the draft form's upload of blank forms and samples
//! (`web/static/draft.js`, served from here; everything else works without it). Handlers stay thin: read the request, call the store,
//! fill a view model, render.
//!
//! Public: sign-in, the catalog and its guides, the printable notification sheet, and the
//! appointment booking pages ([`appointments`], whose forms carry a cookie-bound token
//! instead). Every other page needs a session ([`session`]); every form carries the
//! session's CSRF token.

pub mod appointments;
pub mod assessment;
pub mod cases;
pub mod counters;
pub mod dashboard;
pub mod departments;
pub mod drafts;
pub mod export;
pub mod follow;
mod guide;
pub mod hall;
pub mod notifications;
pub mod staff;
pub mod supervision;
pub mod tree_staff;

pub mod session;
pub mod worklist;

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use askama::Template;
use axum::Router;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use pinyin::ToPinyin;
use yizhan_sync::domain::item::{CaseType, Item};

use crate::accounts;
use crate::clock::Clock;
use crate::i18n::{Lang, Tr};
use crate::identity::{NodeKey, ThisNode};
use crate::links::{Links, ParentLink};
use crate::metrics::SinkState;
use crate::store::{ItemFilter, Role, Store, StoreError};
use session::Session;

const SESSION_COOKIE: &str = "yz_session";
const LANG_COOKIE: &str = "yz_lang";
/// The sign-in form's CSRF secret, before there is a session (double-submit cookie).
const PRE_COOKIE: &str = "yz_pre";
/// A browser that signed in before ([`session::Device`]), for the sign-in throttle.
const DEVICE_COOKIE: &str = "yz_device";

/// What the web UI's handlers see: the store and what the node knows about itself, and
/// the state only pages have (sessions, throttles, once-only forms, the applicants'
/// limits, the appointment schedule). The JSON API sees none of the latter.
#[derive(Clone)]
pub struct WebState {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub node: Arc<ThisNode>,
    /// The sync links (the status page), and the way to ask for a sync now.
    pub links: Arc<Links>,
    /// The state of the PostgreSQL sink (the status page).
    pub sink: Arc<Mutex<SinkState>>,
    /// Where scheduled backups go, for the status page.
    pub backup_dir: Option<PathBuf>,
    /// LAN discovery, while it runs.
    pub discovery: Option<Arc<crate::discovery::Discovery>>,
    /// Whether the node serves HTTPS (session cookies are then `Secure`).
    pub tls: bool,
    /// The address phones reach this node by (`[http] public_url`), for the QR link on
    /// notices; `None`: the address the request came by.
    pub public_url: Option<String>,
    /// The node key, which seals notices.
    pub key: Arc<NodeKey>,
    /// Working days allowed to rectify after a bad rating (`[service]` in the config).
    pub rectify_days: u32,
    /// Hours after which a station not heard from stands out on the hall's overview
    /// (`[service] stale_sync_hours`).
    pub stale_sync_hours: u32,
    /// Staff sessions.
    pub sessions: Arc<session::Sessions>,
    /// Failed sign-ins: growing waits per account and place, address and account.
    pub guesses: Arc<session::Guesses>,
    /// Bookings per address, cancellations per booking and address.
    pub throttle: Arc<session::Throttle>,
    /// Application forms already turned into cases, so a form sent twice makes one case.
    pub submitted_forms: Arc<session::FormOnce>,
    /// Rate limits and rating tickets of the applicants' status pages.
    pub applicants: Arc<follow::Applicants>,
    /// When applicants may book appointments; `None` when the station takes none.
    pub appointments: Option<Arc<crate::appointments::Schedule>>,
}

impl std::fmt::Debug for WebState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebState")
            .field("store", &self.store)
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl WebState {
    /// Today in China Standard Time, for warning levels.
    pub fn today(&self) -> yizhan_sync::domain::calendar::Date {
        yizhan_sync::domain::calendar::Date::from_unix_ms_cst(self.clock.now_ms() as i64)
    }
}

/// The routes of the web UI, merged into the node's router (`node::router`) with the
/// API's; any state works that gives a [`WebState`].
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    WebState: FromRef<S>,
{
    Router::new()
        .route("/", get(home))
        .route("/signin", get(signin_form).post(signin))
        .route("/signout", post(signout))
        .route("/catalog", get(catalog))
        .route("/catalog/drafts", get(drafts::index).post(drafts::create))
        .route("/catalog/drafts/{id}", get(drafts::show).post(drafts::save))
        .route("/catalog/drafts/{id}/review", post(drafts::review))
        .route("/catalog/attachments", post(drafts::upload))
        .route("/catalog/attachments/{id}", get(drafts::attachment))
        .route("/catalog/{code}", get(item_guide))
        .route("/catalog/{code}/notice", get(notice_sheet))
        .route("/catalog/{code}/attachments/{id}", get(guide::download))
        .route("/catalog/export.xlsx", get(guide::export_xlsx))
        .route("/catalog/export.csv", get(guide::export_csv))
        .route("/admin/users", get(staff::index).post(staff::add))
        .route(
            "/admin/users/{username}/password",
            post(staff::reset_password),
        )
        .route("/admin/users/{username}/state", post(staff::set_state))
        .route("/admin/users/{username}/role", post(staff::set_role))
        .route("/admin/staff", get(tree_staff::index).post(tree_staff::add))
        .route(
            "/admin/counters",
            get(counters::index).post(counters::change),
        )
        .route("/admin/staff/{username}", post(tree_staff::change))
        .route("/admin/status", get(admin_status))
        .route("/admin/sync", post(admin_sync))
        .route("/cases", post(cases::create))
        .route("/cases/new", get(cases::new_form))
        .route("/cases/{id}", get(cases::show))
        .route("/cases/{id}/supplement", post(cases::supplement))
        .route("/cases/{id}/refuse", post(cases::refuse))
        .route("/cases/{id}/act", post(cases::act))
        .route("/notices/{number}", get(cases::notice_page))
        .route("/notices/{number}/correct", post(cases::correct_notice))
        .route("/verify", get(cases::verify))
        .route("/worklist", get(worklist::show))
        .route(
            "/supervision",
            get(supervision::index).post(supervision::issue),
        )
        .route("/supervision/{id}/reply", post(supervision::reply))
        .route(
            "/notifications",
            get(notifications::index).post(notifications::publish),
        )
        .route(
            "/departments",
            get(departments::index).post(departments::create),
        )
        .route("/departments/{code}/rotate", post(departments::rotate))
        .route("/hall", get(hall::show))
        .route("/hall/stations", get(hall::stations))
        .route("/hall/assessment", get(assessment::show))
        .route("/hall/assessment.csv", get(assessment::csv))
        .route("/hall/assessment.xlsx", get(assessment::xlsx))
        .route("/hall/stations.csv", get(hall::stations_csv))
        .route("/hall/stations.xlsx", get(hall::stations_xlsx))
        .route("/transfers", get(follow::transfers))
        .route(
            "/status",
            get(follow::status_form).post(follow::status_lookup),
        )
        .route("/status/rate", post(follow::rate))
        .route("/appointments", get(appointments::day_list))
        .route(
            "/appointments/book",
            get(appointments::book_form).post(appointments::book),
        )
        .route("/appointments/b/{code}", get(appointments::booked))
        .route("/appointments/b/{code}/cancel", post(appointments::cancel))
        .route("/dashboard", get(dashboard::show))
        .route("/dashboard/cases.csv", get(dashboard::cases_csv))
        .route("/dashboard/cases.xlsx", get(dashboard::cases_xlsx))
        .route("/dashboard/monthly.csv", get(dashboard::monthly_csv))
        .route("/dashboard/monthly.xlsx", get(dashboard::monthly_xlsx))
        .route("/dashboard/open.csv", get(dashboard::open_csv))
        .route("/dashboard/open.xlsx", get(dashboard::open_xlsx))
        .route("/dashboard/overdue.csv", get(dashboard::overdue_csv))
        .route("/dashboard/overdue.xlsx", get(dashboard::overdue_xlsx))
        .route("/lang/{code}", get(switch_lang))
        .route("/static/app.css", get(stylesheet))
        .route("/static/draft.js", get(draft_script))
        .layer(axum::middleware::from_fn(security_headers))
}

/// What every page needs: the language, the node's name, and who is signed in.
#[derive(Debug)]
pub struct Ctx {
    pub t: &'static Tr,
    pub session: Option<Session>,
    /// The path and query of this request, to come back to after sign-in or a switch.
    pub here: String,
    pub node_name: String,
    /// The node's role and division, for the enrollment hint.
    pub node_role: String,
    pub node_division: String,
    /// Whether this node takes appointments (`[appointments] enabled`).
    pub appointments: bool,
    /// The client's address, when the server knows it (for the sign-in throttle).
    pub client: Option<std::net::IpAddr>,
}

impl<S> FromRequestParts<S> for Ctx
where
    S: Send + Sync,
    WebState: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = WebState::from_ref(state);
        let lang = cookie(parts, LANG_COOKIE)
            .and_then(|c| Lang::parse(&c))
            .unwrap_or_default();
        let token = cookie(parts, SESSION_COOKIE);
        let mut session = token
            .as_ref()
            .and_then(|token| state.sessions.touch(token, state.clock.now_ms()));
        // The account may have been disabled or given another role or counter since sign-in.
        if let Some(s) = session.as_mut() {
            match state.store.user_standing(s.user_id).await {
                Ok(Some(standing))
                    if !standing.disabled
                        && session::credential_of(&standing.password_hash) == s.credential =>
                {
                    s.role = standing.role;
                    s.counter = standing.counter;
                }
                Ok(_) => {
                    state.sessions.end_all_of(s.user_id);
                    session = None;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot check a session's account");
                    session = None;
                }
            }
        }
        let here = parts
            .uri
            .path_and_query()
            .map_or("/".to_string(), |p| p.as_str().to_string());
        let client = parts
            .extensions
            .get::<axum::extract::ConnectInfo<crate::tls::ClientAddr>>()
            .map(|info| info.0.0.ip());
        Ok(Ctx {
            t: Tr::of(lang),
            session,
            here,
            node_name: state.node.name.clone(),
            node_role: state.node.role.clone(),
            node_division: state.node.division.clone(),
            appointments: state.appointments.is_some(),
            client,
        })
    }
}

impl Ctx {
    /// `None` for a signed-in admin; otherwise the sign-in page or a 403 page.
    fn refuse_unless_admin(&self) -> Option<Response> {
        self.refuse_unless(yizhan_sync::engine::may_administer)
    }

    /// `None` when the signed-in person passes the engine's `rule`; otherwise the sign-in
    /// page or a 403 page in the reader's language.
    fn refuse_unless(
        &self,
        rule: fn(Role) -> Result<(), yizhan_sync::engine::NodeAdminError>,
    ) -> Option<Response> {
        match &self.session {
            None => Some(self.to_signin()),
            Some(staff) => match rule(staff.role) {
                Ok(()) => None,
                Err(refused) => Some(message(
                    self,
                    StatusCode::FORBIDDEN,
                    "error.forbidden",
                    self.t.words(&crate::i18n::Words::from(&refused)),
                )),
            },
        }
    }

    /// `None` for a signed-in lead or admin (the dashboard's readers); otherwise the
    /// sign-in page or a 403 page.
    fn refuse_unless_lead(&self) -> Option<Response> {
        self.refuse_unless(yizhan_sync::engine::may_read_dashboard)
    }

    /// The way to the sign-in page, coming back here after.
    fn to_signin(&self) -> Response {
        Redirect::to(&format!("/signin?next={}", urlencode(&self.here))).into_response()
    }

    /// The header of every page.
    fn chrome(&self) -> Chrome<'_> {
        let other = self.t.lang.other();
        Chrome {
            t: self.t,
            lang: self.t.lang.code(),
            node_name: &self.node_name,
            role: &self.node_role,
            division: &self.node_division,
            appointments: self.appointments,
            user: self.session.as_ref(),
            switch_href: format!("/lang/{}?back={}", other.code(), urlencode(&self.here)),
            switch_label: Tr::of(other).get("lang.name").into_owned(),
        }
    }
}

/// The shared header and footer (`base.html`).
#[derive(Debug)]
pub struct Chrome<'a> {
    pub t: &'static Tr,
    pub lang: &'static str,
    pub node_name: &'a str,
    /// This node's role (`station`, …) and division code.
    pub role: &'a str,
    pub division: &'a str,
    /// Whether this node takes appointments (links to them are shown only then).
    pub appointments: bool,
    pub user: Option<&'a Session>,
    pub switch_href: String,
    pub switch_label: String,
}

impl Chrome<'_> {
    pub fn is_admin(&self) -> bool {
        self.user
            .is_some_and(|u| yizhan_sync::engine::may_administer(u.role).is_ok())
    }

    /// A hall (sub-district, district, city): its staff work on the subtree view.
    pub fn is_hall(&self) -> bool {
        yizhan_sync::auth::NodeRole::parse(self.role).is_some_and(|r| r.is_hall())
    }

    /// Whether the signed-in person may read the month's assessment here (the engine's rule).
    pub fn may_assess(&self) -> bool {
        let node = yizhan_sync::auth::NodeRole::parse(self.role);
        self.user.is_some_and(|u| {
            node.is_some_and(|n| yizhan_sync::engine::assessment_open_to(n, u.role))
        })
    }

    /// Whether the signed-in person drafts or reviews catalog items here (the engine's
    /// rule), so the navigation links the drafts.
    pub fn may_author(&self) -> bool {
        use yizhan_sync::engine::{AuthoringAct, authoring_open_to};
        let node = yizhan_sync::auth::NodeRole::parse(self.role);
        self.user.is_some_and(|u| {
            node.is_some_and(|n| {
                authoring_open_to(n, u.role, AuthoringAct::Draft)
                    || authoring_open_to(n, u.role, AuthoringAct::Review)
            })
        })
    }

    /// Leads and admins see the dashboard.
    pub fn is_lead(&self) -> bool {
        self.user
            .is_some_and(|u| yizhan_sync::engine::may_read_dashboard(u.role).is_ok())
    }
}

fn cookie(parts: &Parts, name: &str) -> Option<String> {
    cookie_in(&parts.headers, name)
}

fn cookie_in(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_string())
}

fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Only paths on this node: never `//host`, `https://…`, or anything a browser might
/// read as another host after dropping tabs or newlines (no open redirects).
fn local_path(target: Option<&str>) -> &str {
    match target {
        Some(t)
            if t.starts_with('/')
                && !t.starts_with("//")
                && t.len() <= 512
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/_.~%?=&-+,:".contains(&b)) =>
        {
            t
        }
        _ => "/",
    }
}

fn render(t: &Tr, status: StatusCode, page: impl Template) -> Response {
    match page.render() {
        Ok(html) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                t.get("error.render_failed").into_owned(),
            )
                .into_response()
        }
    }
}

/// A page that says what went wrong and what to do.
#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    chrome: Chrome<'a>,
    t: &'static Tr,
    title: Cow<'static, str>,
    message: String,
}

fn message(ctx: &Ctx, status: StatusCode, title_key: &'static str, message: String) -> Response {
    render(
        ctx.t,
        status,
        MessagePage {
            chrome: ctx.chrome(),
            t: ctx.t,
            title: ctx.t.get(title_key).into_owned().into(),
            message,
        },
    )
}

/// A store error as a page in the reader's language, with the status the API answers
/// with; failures of the node itself are logged and say only that.
fn store_failed(ctx: &Ctx, e: StoreError) -> Response {
    use crate::store::ErrorClass;
    let class = e.class();
    let title = match class {
        ErrorClass::NotFound => "error.not_found",
        ErrorClass::Forbidden => "error.forbidden",
        ErrorClass::BadRequest => "error.invalid",
        ErrorClass::Failed => {
            tracing::error!(error = %e, "a page's store call failed");
            "error.internal"
        }
        ErrorClass::Unavailable => "error.unavailable",
        ErrorClass::DiskFull => {
            tracing::error!(error = %e, "the disk is full; a page's write was refused");
            "error.disk_full"
        }
        ErrorClass::Conflict | ErrorClass::Unprocessable => "case.error.title",
    };
    message(
        ctx,
        StatusCode::from_u16(class.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        title,
        ctx.t.words(&e.words()),
    )
}

/// `GET` of a path no page or API route takes: a page in the reader's language.
pub async fn not_found(ctx: Ctx) -> Response {
    message(
        &ctx,
        StatusCode::NOT_FOUND,
        "error.not_found",
        ctx.t.get("error.not_found_text").into_owned(),
    )
}

/// A page's path with a method it does not take.
pub async fn method_not_allowed(ctx: Ctx) -> Response {
    message(
        &ctx,
        StatusCode::METHOD_NOT_ALLOWED,
        "error.invalid",
        ctx.t.get("error.method_text").into_owned(),
    )
}

/// Browsers get pages, never the plain-text or JSON refusals of axum's extractors: a form
/// that is not a form, too big, or missing fields, a query or path that does not parse.
/// The node wires it around the web routes (it needs the state for the page's header).
pub async fn html_errors(State(state): State<WebState>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let (method, uri, headers) = (
        parts.method.clone(),
        parts.uri.clone(),
        parts.headers.clone(),
    );
    let client = parts
        .extensions
        .get::<axum::extract::ConnectInfo<crate::tls::ClientAddr>>()
        .cloned();
    let response = next.run(Request::from_parts(parts, body)).await;
    let status = response.status();
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_html {
        return response;
    }
    let mut again = Request::new(axum::body::Body::empty());
    *again.method_mut() = method;
    *again.uri_mut() = uri;
    *again.headers_mut() = headers;
    if let Some(client) = client {
        again.extensions_mut().insert(client);
    }
    let (mut parts, _) = again.into_parts();
    let Ok(ctx) = Ctx::from_request_parts(&mut parts, &state).await;
    let (title, text) = match status {
        StatusCode::NOT_FOUND => ("error.not_found", "error.not_found_text"),
        StatusCode::METHOD_NOT_ALLOWED => ("error.invalid", "error.method_text"),
        StatusCode::PAYLOAD_TOO_LARGE => ("error.invalid", "error.too_large_text"),
        s if s.is_server_error() => ("error.internal", "error.internal_text"),
        _ => ("error.invalid", "error.bad_form_text"),
    };
    message(&ctx, status, title, ctx.t.get(text).into_owned())
}

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    // Pages can show personal data: never keep them in a shared cache.
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// The one script: the draft form's uploads of blank forms and samples, which a form
/// cannot send as a file's own bytes (`web/static/draft.js`).
async fn draft_script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../web/static/draft.js"),
    )
        .into_response()
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../web/static/app.css"),
    )
        .into_response()
}

#[derive(Debug, serde::Deserialize)]
struct Back {
    back: Option<String>,
}

/// `GET /lang/{code}`: remembers the language for a year and goes back.
async fn switch_lang(Path(code): Path<String>, Query(back): Query<Back>) -> Response {
    let lang = Lang::parse(&code).unwrap_or_default();
    let target = local_path(back.back.as_deref()).to_string();
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, target),
            (
                header::SET_COOKIE,
                format!(
                    "{LANG_COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax",
                    lang.code()
                ),
            ),
        ],
    )
        .into_response()
}

// ---------------------------------------------------------------- sign-in

#[derive(Template)]
#[template(path = "signin.html")]
struct SigninPage<'a> {
    chrome: Chrome<'a>,
    t: &'static Tr,
    csrf: String,
    next: String,
    username: String,
    error: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
struct NextQuery {
    next: Option<String>,
}

/// The sign-in form, with a fresh pre-session CSRF secret in a cookie and the form.
fn signin_page(
    ctx: &Ctx,
    status: StatusCode,
    next: &str,
    username: String,
    error: Option<String>,
) -> Response {
    let csrf = session::random_token();
    let mut response = render(
        ctx.t,
        status,
        SigninPage {
            chrome: ctx.chrome(),
            t: ctx.t,
            csrf: csrf.clone(),
            next: local_path(Some(next)).to_string(),
            username,
            error,
        },
    );
    if let Ok(value) = HeaderValue::from_str(&format!(
        "{PRE_COOKIE}={csrf}; Path=/signin; HttpOnly; SameSite=Strict; Max-Age=3600"
    )) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

async fn signin_form(ctx: Ctx, Query(next): Query<NextQuery>) -> Response {
    signin_page(
        &ctx,
        StatusCode::OK,
        next.next.as_deref().unwrap_or("/"),
        String::new(),
        None,
    )
}

#[derive(serde::Deserialize)]
struct SigninForm {
    username: String,
    password: String,
    csrf: String,
    #[serde(default)]
    next: String,
}

impl std::fmt::Debug for SigninForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password never reaches a log.
        f.debug_struct("SigninForm")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// `POST /signin`: checks the password (Argon2, off the async threads), counts failures,
/// and starts a session.
async fn signin(
    State(state): State<WebState>,
    ctx: Ctx,
    parts: axum::http::HeaderMap,
    axum::Form(form): axum::Form<SigninForm>,
) -> Response {
    let now = state.clock.now_ms();
    let pre = cookie_in(&parts, PRE_COOKIE);
    let username = form.username.trim().to_string();
    if pre.is_none_or(|pre| !session::same_secret(&pre, &form.csrf)) {
        return signin_page(
            &ctx,
            StatusCode::FORBIDDEN,
            &form.next,
            username,
            Some(ctx.t.get("signin.expired").into_owned()),
        );
    }
    // A browser that signed in to this account before counts only its own failures.
    let device = cookie_in(&parts, DEVICE_COOKIE)
        .and_then(|value| session::Device::from_cookie(&value, &state.key));
    let known = device
        .as_ref()
        .filter(|d| d.knows(&username))
        .map(|d| d.id.clone());
    let keys = session::sign_in_keys(&username, ctx.client, known.as_deref());
    // Each attempt takes a slot before the password is checked, so attempts sent all at
    // once cannot slip past the waits while Argon2 runs.
    if let Err(until) = state.guesses.begin(&keys, now) {
        return slowed(&ctx, &form.next, username, until, now);
    }
    let found = match state.store.user_with_password(username.clone()).await {
        Ok(found) => found,
        Err(e) => {
            state.guesses.end(&keys, session::Attempt::Unchecked, now);
            return store_failed(&ctx, e);
        }
    };
    let password = form.password;
    let (user, ok) = tokio::task::spawn_blocking(move || match found {
        Some((user, hash)) => {
            let ok = accounts::verify_password(&password, &hash) && !user.disabled;
            (Some((user, session::credential_of(&hash))), ok)
        }
        None => {
            // The same work as for a real account, so timing does not tell names apart.
            let _ = accounts::verify_password(&password, accounts::dummy_hash());
            (None, false)
        }
    })
    .await
    .unwrap_or((None, false));
    match (user, ok) {
        (Some((user, credential)), true) => {
            state.guesses.end(&keys, session::Attempt::Succeeded, now);
            tracing::info!(user.name = %user.username, "signed in");
            let token = state.sessions.start(&user, credential, now);
            let secure = if state.tls { "; Secure" } else { "" };
            let mut response = Redirect::to(local_path(Some(&form.next))).into_response();
            if let Ok(value) = HeaderValue::from_str(&format!(
                "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{secure}"
            )) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            // This browser is known for this account from now on.
            let device = device.unwrap_or_default().with_account(&user.username);
            if let Ok(value) = HeaderValue::from_str(&format!(
                "{DEVICE_COOKIE}={}; Path=/signin; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
                device.to_cookie(&state.key),
                session::Device::MAX_AGE_SECS
            )) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            response
        }
        _ => {
            tracing::warn!(user.name = %username, "failed sign-in");
            match state.guesses.end(&keys, session::Attempt::Failed, now) {
                Some(until) => slowed(&ctx, &form.next, username, until, now),
                None => signin_page(
                    &ctx,
                    StatusCode::UNAUTHORIZED,
                    &form.next,
                    username,
                    Some(ctx.t.get("signin.wrong").into_owned()),
                ),
            }
        }
    }
}

/// The sign-in page saying how long to wait before the next attempt.
fn slowed(ctx: &Ctx, next: &str, username: String, until: u64, now: u64) -> Response {
    let wait_ms = until.saturating_sub(now);
    let wait = if wait_ms < 120_000 {
        ctx.t
            .with("time.seconds", "n", &wait_ms.div_ceil(1000).to_string())
    } else {
        ctx.t
            .with("time.minutes", "n", &wait_ms.div_ceil(60_000).to_string())
    };
    let mut response = signin_page(
        ctx,
        StatusCode::TOO_MANY_REQUESTS,
        next,
        username,
        Some(ctx.t.with("signin.slowed", "wait", &wait)),
    );
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(wait_ms.div_ceil(1000)),
    );
    response
}

/// A form that carries nothing but the CSRF token (sign-out, correcting a notice).
#[derive(Debug, serde::Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// A form's CSRF token, wherever the form keeps it.
pub trait CsrfToken {
    fn csrf(&self) -> &str;
}

impl CsrfToken for CsrfForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// Forms whose fields vary (checkboxes per material) carry it as the field `csrf`.
impl CsrfToken for Vec<(String, String)> {
    fn csrf(&self) -> &str {
        cases::field(self, "csrf")
    }
}

/// A form a signed-in staff member sent, with the session's CSRF token checked: the
/// preamble of every staff form, done once. Without a session the request is answered
/// with the way to the sign-in page, without the right token with a refusal page, and
/// the handler never runs, so nothing changes. A body that is not a form is refused as
/// `axum::Form` refuses it.
#[derive(Debug)]
pub struct StaffForm<T> {
    pub ctx: Ctx,
    /// The session, also in `ctx` for the page's header.
    pub staff: Session,
    pub form: T,
}

impl<S, T> FromRequest<S> for StaffForm<T>
where
    S: Send + Sync,
    WebState: FromRef<S>,
    T: serde::de::DeserializeOwned + CsrfToken + Send,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let Ok(ctx) = Ctx::from_request_parts(&mut parts, state).await;
        let request = Request::from_parts(parts, body);
        staff_form(ctx, request, state).await
    }
}

/// A staff form about one case (`/cases/{id}/…`): [`StaffForm`] plus the case's id,
/// checked before the handler runs (an id that cannot name a case is a 404 page).
#[derive(Debug)]
pub struct CaseForm<T> {
    pub ctx: Ctx,
    pub staff: Session,
    /// The id as the path gave it (for redirects and pages).
    pub id: String,
    pub case: yizhan_sync::ids::DocId,
    pub form: T,
}

impl<S, T> FromRequest<S> for CaseForm<T>
where
    S: Send + Sync,
    WebState: FromRef<S>,
    T: serde::de::DeserializeOwned + CsrfToken + Send,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Response> {
        // In the order the handlers took them: the page context, the path, the form.
        let (mut parts, body) = request.into_parts();
        let Ok(ctx) = Ctx::from_request_parts(&mut parts, state).await;
        let Path(id) = Path::<String>::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let request = Request::from_parts(parts, body);
        let StaffForm { ctx, staff, form } = staff_form(ctx, request, state).await?;
        let Some(case) = yizhan_sync::ids::DocId::parse(&id) else {
            return Err(store_failed(&ctx, StoreError::NotFound { what: id }));
        };
        Ok(CaseForm {
            ctx,
            staff,
            id,
            case,
            form,
        })
    }
}

async fn staff_form<S, T>(ctx: Ctx, request: Request, state: &S) -> Result<StaffForm<T>, Response>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned + CsrfToken + Send,
{
    let axum::Form(form) = axum::Form::<T>::from_request(request, state)
        .await
        .map_err(IntoResponse::into_response)?;
    let Some(staff) = ctx.session.clone() else {
        return Err(ctx.to_signin());
    };
    if let Some(refused) = refuse_without_csrf(&ctx, &staff, form.csrf()) {
        return Err(refused);
    }
    Ok(StaffForm { ctx, staff, form })
}

/// `None` when a form carries the session's CSRF token, else the page refusing it.
fn refuse_without_csrf(ctx: &Ctx, staff: &Session, sent: &str) -> Option<Response> {
    if session::same_secret(&staff.csrf, sent) {
        return None;
    }
    tracing::warn!(user.name = %staff.username, "a form without a valid CSRF token was refused");
    Some(message(
        ctx,
        StatusCode::FORBIDDEN,
        "error.csrf",
        ctx.t.get("error.csrf_text").into_owned(),
    ))
}

/// `POST /signout`.
async fn signout(
    State(state): State<WebState>,
    headers: axum::http::HeaderMap,
    StaffForm { staff, .. }: StaffForm<CsrfForm>,
) -> Response {
    let token = cookie_in(&headers, SESSION_COOKIE);
    if let Some(token) = token {
        state.sessions.end(&token);
    }
    tracing::info!(user.name = %staff.username, "signed out");
    let mut response = Redirect::to("/signin").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static("yz_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    response
}

// ---------------------------------------------------------------- home, admin

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage<'a> {
    chrome: Chrome<'a>,
    t: &'static Tr,
    /// The catalog is empty: this node has not received one yet (not enrolled).
    no_catalog: bool,
}

/// `GET /`: applicants get the public pages (the catalog, booking, their case's status)
/// and a link for staff to sign in; signed-in staff go to their work list.
async fn home(State(state): State<WebState>, ctx: Ctx) -> Response {
    if ctx.session.is_some() {
        // A hall's staff start from the cases below it, a station's from the counter.
        let hall =
            yizhan_sync::auth::NodeRole::parse(&state.node.role).is_some_and(|r| r.is_hall());
        return Redirect::to(if hall { "/hall" } else { "/worklist" }).into_response();
    }
    let no_catalog = match state.store.item_categories().await {
        Ok(categories) => categories.is_empty(),
        Err(e) => return store_failed(&ctx, e),
    };
    render(
        ctx.t,
        StatusCode::OK,
        HomePage {
            chrome: ctx.chrome(),
            t: ctx.t,
            no_catalog,
        },
    )
}

/// One peer line of the status page.
#[derive(Debug)]
struct PeerLine {
    relation: String,
    name: String,
    node: String,
    role: String,
    division: String,
    state: String,
    pending: String,
    /// "Live" for the parent while a long-poll to it is open, and for a child holding
    /// one here; a dash otherwise.
    live: String,
    last_connected: String,
}

/// A change this node sent that a peer refused or waits on, worded for the page.
struct RefusalLine {
    peer: String,
    noted: String,
    doc: String,
    what: String,
}

#[derive(Template)]
#[template(path = "admin_status.html")]
struct StatusPage<'a> {
    chrome: Chrome<'a>,
    t: &'static Tr,
    facts: Vec<(String, String)>,
    peers: Vec<PeerLine>,
    refusals: Vec<RefusalLine>,
    seen: Vec<crate::discovery::Seen>,
    discovery_note: String,
    /// Halls seen on the LAN, offered for enrollment when this node has no parent.
    enroll_hint: Option<String>,
    /// Offer "sync now" (the node has a parent).
    has_parent: bool,
    /// A sync was just asked for with the button.
    sync_started: bool,
    /// A station with no parent yet: the page shows how to enroll it.
    station_alone: bool,
    /// The link to the parent: whether it works, and in words.
    link_ok: bool,
    link_words: String,
}

#[derive(Debug, serde::Deserialize)]
struct StatusQuery {
    #[serde(default)]
    sync: Option<String>,
}

/// `POST /admin/sync`: a technician asks for a session with the parent now (admins
/// only); the status page then says it started.
async fn admin_sync(
    State(state): State<WebState>,
    StaffForm { ctx, .. }: StaffForm<CsrfForm>,
) -> Response {
    if let Some(refused) = ctx.refuse_unless_admin() {
        return refused;
    }
    state.links.request_sync();
    tracing::info!("a sync with the parent was asked for on the status page");
    Redirect::to("/admin/status?sync=started").into_response()
}

/// `GET /admin/status`: what a technician checks first (admins only).
async fn admin_status(
    State(state): State<WebState>,
    Query(query): Query<StatusQuery>,
    ctx: Ctx,
) -> Response {
    if let Some(refused) = ctx.refuse_unless_admin() {
        return refused;
    }
    let t = ctx.t;
    let (peers, quarantined) = match (
        state.store.peers().await,
        state.store.quarantine_count().await,
    ) {
        (Ok(p), Ok(q)) => (p, q),
        (Err(e), _) | (_, Err(e)) => return store_failed(&ctx, e),
    };
    let (refused_counts, refused, underived) = match (
        state.store.peer_refusal_counts().await,
        state.store.peer_refusals(20).await,
        state.store.underived_count().await,
    ) {
        (Ok(c), Ok(r), Ok(u)) => (c, r, u),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return store_failed(&ctx, e),
    };
    // What peers refused of what this node sent, in the page's language.
    let refusals: Vec<RefusalLine> = refused
        .into_iter()
        .map(|r| RefusalLine {
            peer: peers
                .iter()
                .find(|p| p.record.node.to_hex() == r.peer)
                .map_or_else(|| r.peer.clone(), |p| p.record.name.clone()),
            noted: crate::clock::rfc3339_cst(r.noted_ms),
            doc: r.doc_id,
            what: if r.waiting {
                t.get("sync.reason.waiting").into_owned()
            } else {
                t.get(&format!("sync.reason.{}", r.code)).into_owned()
            },
        })
        .collect();
    let backup = match state.backup_dir.as_deref() {
        None => t.get("status.backup_off").into_owned(),
        Some(dir) => match crate::backup::newest(dir) {
            Some((archive, at)) => format!(
                "{} ({} h)",
                archive
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default(),
                at.elapsed().map_or(0, |d| d.as_secs() / 3600)
            ),
            None => t.get("status.backup_none").into_owned(),
        },
    };
    let free = crate::backup::free_bytes(state.store.path())
        .map_or("?".into(), |b| format!("{:.0} MB", b as f64 / 1e6));
    let link = state.links.parent();
    let children = state.links.children();
    let when =
        |ms: Option<u64>| ms.map_or("—".to_string(), |ms| crate::clock::rfc3339_cst(ms as i64));
    let sink = state.sink.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let sink_fact = if !sink.enabled {
        t.get("status.sink_off").into_owned()
    } else if sink.up {
        t.get("status.sink_up")
            .replace("{lag}", &sink.lag().to_string())
            .replace(
                "{at}",
                &sink
                    .last_success_ms
                    .map_or("—".into(), |ms| crate::clock::rfc3339_cst(ms as i64)),
            )
    } else {
        t.get("status.sink_down")
            .replace("{lag}", &sink.lag().to_string())
            .replace("{error}", sink.last_error.as_deref().unwrap_or("—"))
    };
    let facts = vec![
        (
            t.get("status.node").into_owned(),
            format!(
                "{} · {} · {}",
                state.node.name,
                t.get(&format!("node_role.{}", state.node.role)),
                state.node.division
            ),
        ),
        (
            t.get("status.node_id").into_owned(),
            state.node.node_id.clone(),
        ),
        (
            t.get("status.version").into_owned(),
            format!(
                "{} · {}",
                state.node.version,
                state.store.calendar().version()
            ),
        ),
        (
            t.get("status.data_size").into_owned(),
            format!("{:.1} MB", state.store.disk_bytes() as f64 / 1e6),
        ),
        (t.get("status.disk_free").into_owned(), free),
        (
            t.get("status.quarantined").into_owned(),
            quarantined.to_string(),
        ),
        (
            t.get("status.refused_by_peers").into_owned(),
            t.get("status.refused_by_peers_value")
                .replace("{refused}", &refused_counts.0.to_string())
                .replace("{waiting}", &refused_counts.1.to_string()),
        ),
        (
            t.get("status.underived").into_owned(),
            underived.to_string(),
        ),
        (t.get("status.last_backup").into_owned(), backup),
        (
            t.get("status.clock_offset").into_owned(),
            link.clock_offset_ms
                .map_or("—".into(), |ms| format!("{:+.1} s", ms as f64 / 1000.0)),
        ),
        (
            t.get("status.last_connected").into_owned(),
            when(link.last_connected_ms),
        ),
        (t.get("status.sink").into_owned(), sink_fact),
    ];
    let has_parent = peers
        .iter()
        .any(|p| p.relation == crate::store::Relation::Parent);
    let (link_ok, link_words) = parent_link(t, &link, has_parent, state.clock.now_ms());
    let peers: Vec<PeerLine> = peers
        .into_iter()
        .filter(|p| p.relation != crate::store::Relation::Own)
        .map(|p| PeerLine {
            relation: t
                .get(&format!("relation.{}", p.relation.as_str()))
                .into_owned(),
            name: p.record.name.clone(),
            node: p.record.node.to_hex(),
            role: t
                .get(&format!("node_role.{}", p.record.role.as_str()))
                .into_owned(),
            division: p.record.division.to_string(),
            state: if p.record.revoked.is_some() {
                t.get("status.revoked").into_owned()
            } else {
                // The failure's text is the sync client's English: the log keeps it.
                match (p.last_ok_ms, p.last_error_ms) {
                    (_, Some(err)) if p.last_ok_ms.is_none_or(|ok| err > ok) => {
                        t.with("status.peer_failed", "time", &crate::clock::minute_cst(err))
                    }
                    (Some(ok), _) => {
                        t.with("status.peer_ok", "time", &crate::clock::minute_cst(ok))
                    }
                    (None, _) => "—".into(),
                }
            },
            pending: p.pending.map_or("—".into(), |(n, _)| n.to_string()),
            live: match p.relation {
                crate::store::Relation::Parent if link.live => t.get("status.live").into_owned(),
                crate::store::Relation::Child
                    if children.get(&p.record.node).is_some_and(|c| c.live) =>
                {
                    t.get("status.live").into_owned()
                }
                _ => "—".into(),
            },
            last_connected: match p.relation {
                crate::store::Relation::Parent => when(link.last_connected_ms),
                crate::store::Relation::Child => {
                    when(children.get(&p.record.node).map(|c| c.last_connected_ms))
                }
                _ => "—".into(),
            },
        })
        .collect();
    let (seen, discovery_note) = match &state.discovery {
        Some(d) => (d.seen(), d.status().map_or(String::new(), str::to_string)),
        None => (Vec::new(), t.get("status.discovery_off").into_owned()),
    };
    let enroll_hint = (!has_parent && state.node.role == "station")
        .then(|| {
            seen.iter()
                .filter(|s| s.role != "station")
                .filter_map(|s| {
                    s.addresses
                        .first()
                        .map(|a| format!("yizhan enroll http://{a}:{} CODE", s.port))
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .filter(|h| !h.is_empty());
    render(
        ctx.t,
        StatusCode::OK,
        StatusPage {
            chrome: ctx.chrome(),
            t,
            facts,
            peers,
            refusals,
            seen,
            discovery_note,
            enroll_hint,
            has_parent,
            sync_started: query.sync.as_deref() == Some("started"),
            station_alone: !has_parent && state.node.role == "station",
            link_ok,
            link_words,
        },
    )
}

/// The link to the parent in words, and whether it works: none yet (not enrolled), up
/// (with the last sync, and live while a long-poll is open), or lost, with why and when
/// the next attempt is. A parent silent for longer than two sync intervals counts as lost
/// even while a request still hangs on it, so the page notices a lost parent that never
/// closed its connections.
fn parent_link(t: &Tr, link: &ParentLink, has_parent: bool, now_ms: u64) -> (bool, String) {
    let time = |ms: u64| crate::clock::minute_cst(ms as i64);
    if !has_parent {
        return (false, t.get("status.link_none").into_owned());
    }
    let heard = link.last_connected_ms.max(link.last_success_ms);
    let silent = link.interval_ms > 0
        && heard.is_some_and(|at| now_ms.saturating_sub(at) > link.interval_ms.saturating_mul(2));
    match (link.up, link.error_code, link.last_success_ms) {
        (true, _, _) if !silent && heard.is_some() => {
            let ok = link.last_success_ms.or(heard).unwrap_or_default();
            let mut words = t.with("status.link_up_since", "time", &time(ok));
            if link.live {
                words.push_str(" · ");
                words.push_str(&t.get("status.link_live"));
            }
            (true, words)
        }
        (_, code, last) if code.is_some() || link.failure.is_some() || silent => {
            let mut why = match (code, link.failure) {
                (Some(code), _) => t.get(&format!("link.error.{code}")).into_owned(),
                (None, Some(failure)) => t
                    .get(&format!("status.failure.{}", failure.as_str()))
                    .replace("{error}", link.last_error.as_deref().unwrap_or("")),
                (None, None) => t.get("link.error.silent").into_owned(),
            };
            if let Some(ms) = link.retry_delay_ms {
                why = t
                    .get("status.link_failing")
                    .replace("{why}", &why)
                    .replace("{seconds}", &format!("{:.0}", ms as f64 / 1000.0));
            }
            let since = last.map_or_else(|| t.get("status.link_never").into_owned(), time);
            (
                false,
                t.get("status.link_lost")
                    .replace("{since}", &since)
                    .replace("{why}", &why),
            )
        }
        _ => (false, t.get("status.link_waiting").into_owned()),
    }
}

// ---------------------------------------------------------------- catalog

/// One line of the catalog list.
#[derive(Debug)]
struct ItemLine {
    impl_code: String,
    name: String,
    category: String,
    level: String,
    case_type: Cow<'static, str>,
    limits: String,
}

#[derive(Template)]
#[template(path = "catalog.html")]
struct CatalogPage<'a> {
    chrome: Chrome<'a>,
    t: &'static Tr,
    q: String,
    category: String,
    categories: Vec<(String, u64)>,
    level: String,
    levels: Vec<String>,
    items: Vec<ItemLine>,
    summary: String,
    /// The node holds no item at all: it has not been enrolled (or synced) yet.
    no_catalog: bool,
}

impl CatalogPage<'_> {
    fn level_label(&self, published: &str) -> String {
        level_label(self.t, published)
    }
}

#[derive(Debug, serde::Deserialize)]
struct CatalogQuery {
    q: Option<String>,
    category: Option<String>,
    /// 办理层级, as the catalog names it (e.g. 村（社区）级).
    level: Option<String>,
}

/// The pinyin initials of a name: 低保申请 → `dbsq`. Other characters are kept as they
/// are (lowercased), so `dbsq` and mixed names still match.
pub fn pinyin_initials(name: &str) -> String {
    name.chars()
        .flat_map(|c| match c.to_pinyin() {
            Some(p) => p.first_letter().chars().collect::<Vec<_>>(),
            None => c.to_lowercase().collect(),
        })
        .collect()
}

/// Common short forms (简称) people say at the counter, with the full words catalog names
/// use: searching for 低保 (or `dbsq`) finds 最低生活保障申请.
const SHORT_FORMS: &[(&str, &str)] = &[
    ("最低生活保障", "低保"),
    ("医疗保险", "医保"),
    ("社会保障卡", "社保卡"),
    ("社会保险", "社保"),
    ("特困人员", "特困"),
    ("计划生育", "计生"),
    ("残疾人证", "残疾证"),
];

/// The name and its spoken forms with short forms in place of the full words.
fn spoken_forms(name: &str) -> Vec<String> {
    let mut forms = vec![name.to_string()];
    for (full, short) in SHORT_FORMS {
        if name.contains(full) {
            forms.push(name.replace(full, short));
        }
    }
    forms
}

/// The query with short forms spelled out (低保 → 最低生活保障), when it has any.
fn spelled_out(q: &str) -> Option<String> {
    let mut out = q.to_string();
    for (full, short) in SHORT_FORMS {
        if !out.contains(full) {
            out = out.replace(short, full);
        }
    }
    (out != q).then_some(out)
}

/// Whether the query is meant as pinyin initials (letters only).
fn is_initials(q: &str) -> bool {
    !q.is_empty() && q.chars().all(|c| c.is_ascii_alphabetic())
}

/// The items a query finds in `category` (all when empty): by Chinese words, with short
/// forms spelled out (低保), and by pinyin initials (dbsq); and every item of the category.
async fn find_items(
    state: &WebState,
    q: &str,
    category: &str,
) -> Result<
    (
        Vec<crate::store::ItemSummary>,
        Vec<crate::store::ItemSummary>,
    ),
    StoreError,
> {
    let filter = |q: Option<String>| ItemFilter {
        q,
        category: (!category.is_empty()).then(|| category.to_string()),
        include_cancelled: false,
        limit: 500,
        offset: 0,
    };
    let (mut found, _) = state
        .store
        .list_items(filter((!q.is_empty()).then(|| q.to_string())))
        .await?;
    if let Some(full) = spelled_out(q) {
        let (items, _) = state.store.list_items(filter(Some(full))).await?;
        for item in items {
            if !found.iter().any(|f| f.impl_code == item.impl_code) {
                found.push(item);
            }
        }
    }
    let (all, _) = state.store.list_items(filter(None)).await?;
    if is_initials(q) {
        let wanted = q.to_lowercase();
        for item in &all {
            let matches = spoken_forms(&item.name)
                .iter()
                .any(|form| pinyin_initials(form).contains(&wanted));
            if matches && !found.iter().any(|f| f.impl_code == item.impl_code) {
                found.push(item.clone());
            }
        }
    }
    Ok((found, all))
}

/// `GET /catalog`: browse by category, search by Chinese words or pinyin initials.
async fn catalog(
    State(state): State<WebState>,
    ctx: Ctx,
    Query(query): Query<CatalogQuery>,
) -> Response {
    let t = ctx.t;
    let q = query
        .q
        .unwrap_or_default()
        .trim()
        .chars()
        .take(100)
        .collect::<String>();
    let category = query.category.unwrap_or_default();
    let level = query.level.unwrap_or_default();
    let (mut found, all) = match find_items(&state, &q, &category).await {
        Ok(found) => found,
        Err(e) => return store_failed(&ctx, e),
    };
    let mut levels: Vec<String> = all.iter().map(|i| i.level.clone()).collect();
    levels.sort();
    levels.dedup();
    let no_catalog = all.is_empty() && category.is_empty();
    let categories = match state.store.item_categories().await {
        Ok(c) => c,
        Err(e) => return store_failed(&ctx, e),
    };
    if !level.is_empty() {
        found.retain(|i| i.level == level);
    }
    let items: Vec<ItemLine> = found
        .into_iter()
        .map(|i| ItemLine {
            level: level_label(t, &i.level),
            case_type: if i.case_type == "instant" {
                t.get("item.instant")
            } else {
                t.get("item.committed")
            }
            .into_owned()
            .into(),
            limits: if i.case_type == "instant" {
                t.get("item.on_the_spot").into_owned()
            } else {
                t.with(
                    "item.limits_short",
                    "committed",
                    &i.committed_days.to_string(),
                )
                .replace("{legal}", &i.legal_days.to_string())
            },
            impl_code: i.impl_code,
            name: i.name,
            category: i.category,
        })
        .collect();
    let summary = t.with("catalog.found", "count", &items.len().to_string());
    render(
        ctx.t,
        StatusCode::OK,
        CatalogPage {
            chrome: ctx.chrome(),
            t,
            q,
            category,
            categories,
            level,
            levels,
            items,
            summary,
            no_catalog,
        },
    )
}

/// The handling level (行使层级) of an item as the catalog writes it (`县级（区）`), in the
/// page's language; anything else as published.
fn level_label(t: &Tr, published: &str) -> String {
    use yizhan_sync::domain::codes::HandlingLevel;
    HandlingLevel::ALL
        .into_iter()
        .find(|l| l.zh() == published)
        .map_or_else(
            || published.to_string(),
            |l| t.get(&format!("handling.{}", l.digit())).into_owned(),
        )
}

/// An item, ready for the guide and the notification sheet.
#[derive(Debug)]
struct GuideView {
    item: Item,
    /// 事项类型 in the page's language.
    kind: String,
    case_type: String,
    limits: String,
    fees: String,
    objects: String,
    /// The implementation-list elements beyond §9.1.2's (DOMAIN §4).
    extra: guide::GuideExtras,
}

fn guide_view(t: &Tr, item: Item) -> GuideView {
    let case_type = match item.case_type {
        CaseType::Instant => t.get("item.instant").into_owned(),
        CaseType::Committed => t.get("item.committed").into_owned(),
    };
    let limits = match item.case_type {
        CaseType::Instant => t.get("item.instant_limits").into_owned(),
        CaseType::Committed => t
            .with(
                "item.limits",
                "committed",
                &item.committed_limit_days.to_string(),
            )
            .replace("{legal}", &item.legal_limit_days.to_string()),
    };
    let fees = if item.fees.is_empty() {
        t.get("item.free").into_owned()
    } else {
        item.fees
            .iter()
            .map(|f| format!("{}：{}（{}）", f.name, f.standard, f.basis))
            .collect::<Vec<_>>()
            .join("；")
    };
    let objects = item
        .service_objects
        .iter()
        .map(|o| match o {
            yizhan_sync::domain::item::ServiceObject::NaturalPerson => t.get("item.natural_person"),
            yizhan_sync::domain::item::ServiceObject::LegalPerson => t.get("item.legal_person"),
        })
        .collect::<Vec<_>>()
        .join("、");
    GuideView {
        kind: t.get(&format!("power.{}", item.kind.code())).into_owned(),
        extra: guide::extras(t, &item),
        item,
        case_type,
        limits,
        fees,
        objects,
    }
}

#[derive(Template)]
#[template(path = "item.html")]
struct ItemPage<'a> {
    chrome: Chrome<'a>,
    t: &'static Tr,
    g: GuideView,
}

/// `GET /catalog/{code}`: the service guide (办事指南) with every element of §9.1.2.
async fn item_guide(State(state): State<WebState>, ctx: Ctx, Path(code): Path<String>) -> Response {
    match state.store.get_item(code).await {
        Ok(item) => render(
            ctx.t,
            StatusCode::OK,
            ItemPage {
                chrome: ctx.chrome(),
                t: ctx.t,
                g: guide_view(ctx.t, item),
            },
        ),
        Err(e) => store_failed(&ctx, e),
    }
}

#[derive(Template)]
#[template(path = "notice_sheet.html")]
struct NoticeSheet<'a> {
    chrome: Chrome<'a>,
    t: &'static Tr,
    g: GuideView,
    printed_on: String,
}

/// `GET /catalog/{code}/notice`: the printable one-time notification sheet (一次性告知单)
/// listing every material of the item (§7.5 一次性告知制度).
async fn notice_sheet(
    State(state): State<WebState>,
    ctx: Ctx,
    Path(code): Path<String>,
) -> Response {
    match state.store.get_item(code).await {
        Ok(item) => render(
            ctx.t,
            StatusCode::OK,
            NoticeSheet {
                chrome: ctx.chrome(),
                t: ctx.t,
                g: guide_view(ctx.t, item),
                printed_on: state.today().to_string(),
            },
        ),
        Err(e) => store_failed(&ctx, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parent link in words: none, up, lost with why, and lost when silent for more
    /// than one interval past the next session's due time although no session failed yet.
    #[test]
    fn the_parent_link_in_words() {
        let t = Tr::of(Lang::Zh);
        let minute = 60_000;
        let link = |up, code, last| ParentLink {
            up,
            last_success_ms: last,
            error_code: code,
            interval_ms: minute,
            ..ParentLink::default()
        };
        let now = 1_772_726_400_000;
        assert_eq!(
            parent_link(t, &link(false, None, None), false, now),
            (false, "未连接：本站尚未登记到上级大厅".into())
        );
        let (ok, words) = parent_link(t, &link(true, None, Some(now - minute)), true, now);
        assert!(ok && words.starts_with("正常"), "{words}");
        let (ok, words) = parent_link(
            t,
            &link(false, Some("unreachable"), Some(now - minute)),
            true,
            now,
        );
        assert!(
            !ok && words.contains("已断开") && words.contains("连接不上"),
            "{words}"
        );
        let (ok, words) = parent_link(t, &link(true, None, Some(now - 3 * minute)), true, now);
        assert!(!ok && words.contains("没有应答"), "{words}");
        let (ok, words) = parent_link(t, &link(false, None, None), true, now);
        assert!(!ok && words.contains("第一次同步"), "{words}");
        for lang in Lang::ALL {
            for code in [
                "unreachable",
                "dropped",
                "refused",
                "busy",
                "protocol",
                "store",
                "silent",
            ] {
                let key = format!("link.error.{code}");
                assert!(!Tr::of(lang).get(&key).contains('⟦'), "{key} in {lang:?}");
            }
        }
    }

    #[test]
    fn pinyin_initials_of_item_names() {
        for (name, initials) in [
            ("低保申请", "dbsq"),
            ("最低生活保障申请", "zdshbzsq"),
            ("居住证签注", "jzzqz"),
            ("《残疾人证》办理", "《cjrz》bl"),
            ("ABC证明", "abczm"),
        ] {
            assert_eq!(pinyin_initials(name), initials, "{name}");
        }
        assert!(
            is_initials("dbsq")
                && !is_initials("低保")
                && !is_initials("db sq")
                && !is_initials("")
        );
        // Short forms: 低保 is how people say 最低生活保障.
        let forms = spoken_forms("最低生活保障申请");
        assert!(
            forms.iter().any(|f| pinyin_initials(f) == "dbsq"),
            "{forms:?}"
        );
        assert_eq!(spelled_out("低保"), Some("最低生活保障".to_string()));
        assert_eq!(spelled_out("最低生活保障"), None);
        assert_eq!(spelled_out("救助"), None);
    }

    #[test]
    fn redirects_stay_on_this_node() {
        for (target, expected) in [
            (Some("/catalog?q=x"), "/catalog?q=x"),
            (Some("//evil.example/x"), "/"),
            (Some("https://evil.example/"), "/"),
            (Some("/\\evil"), "/"),
            (Some("/\t/evil.example"), "/"),
            (Some("/x\r\nSet-Cookie: a=b"), "/"),
            (None, "/"),
        ] {
            assert_eq!(local_path(target), expected, "{target:?}");
        }
        assert_eq!(urlencode("/catalog?q=低"), "/catalog%3Fq%3D%E4%BD%8E");
    }
}
