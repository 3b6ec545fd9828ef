//! The JSON edge: the API under `/api/v1`, its OpenAPI document, and the node-to-node
//! API under `/sync/v1`.
//!
//! Handlers are thin: extract, call the store, map the result. Wire types live here, never
//! in the domain. Every failure is an [`error::ApiError`] with a JSON body; malformed input
//! is a 4xx, never a 500.

pub mod assessment;
pub mod attachments;
pub mod calendars;
pub mod cases;
pub mod counters;
pub mod departments;
pub mod drafts;
pub mod error;
pub mod extract;
pub mod fees;
pub mod items;
pub mod notices;
pub mod staff;
pub mod stations;
pub mod supervision;
pub mod sync;

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::extract::{FromRef, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post, put};
use utoipa::OpenApi;
use yizhan_sync::domain::calendar::Date;

use crate::clock::{Clock, rfc3339_cst};
use crate::identity::ThisNode;
use crate::links::Links;
use crate::metrics::{Metrics, SinkState};
use crate::store::Store;
use error::ApiError;

/// What the JSON API and `/sync/v1` handlers see; the web UI's state is not here.
#[derive(Clone)]
pub struct ApiState {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub node: Arc<ThisNode>,
    /// The sync links: the parent's, kept by the sync driver; the children's, kept by
    /// `/sync/v1` as they call.
    pub links: Arc<Links>,
    /// The state of the PostgreSQL sink, kept by its driver.
    pub sink: Arc<Mutex<SinkState>>,
    /// Changes children pushed that this node already had, since start. Stays at zero
    /// when senders resume from the receiver's vector as they should.
    pub duplicates_received: Arc<AtomicU64>,
    /// Changes applied from pushes since start.
    pub applied_received: Arc<AtomicU64>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// What `/sync/v1` keeps between requests: nonces, the body budget, its limits.
    pub sync: Arc<sync::SyncServer>,
    /// Where scheduled backups go, for the backup age in `/metrics`.
    pub backup_dir: Option<PathBuf>,
    /// Working days allowed to rectify after a bad rating (`[service]` in the config).
    pub rectify_days: u32,
    /// Hours after which a station not heard from is marked stale in `/api/v1/stations`
    /// (`[service] stale_sync_hours`).
    pub stale_sync_hours: u32,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState")
            .field("store", &self.store)
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl ApiState {
    /// Today in China Standard Time, for warning levels.
    pub fn today(&self) -> Date {
        Date::from_unix_ms_cst(self.clock.now_ms() as i64)
    }
}

/// The node as `/api/v1/node` describes it.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct NodeInfo {
    pub node_id: String,
    pub role: String,
    pub division: String,
    pub name: String,
    pub version: String,
    pub calendar: String,
}

impl NodeInfo {
    /// What the node says of itself; the calendar is the one its deadlines count on now.
    fn of(node: &ThisNode, calendar: String) -> NodeInfo {
        NodeInfo {
            node_id: node.node_id.clone(),
            role: node.role.clone(),
            division: node.division.clone(),
            name: node.name.clone(),
            version: node.version.clone(),
            calendar,
        }
    }
}

/// The routes of the API, merged into the node's router (`node::router`) with the web
/// UI's; any state works that gives an [`ApiState`].
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    ApiState: FromRef<S>,
{
    let api = Router::new()
        .route("/node", get(node_info))
        .route("/openapi.json", get(openapi))
        .route("/items", get(items::index))
        .route("/items/drafts", get(drafts::index).post(drafts::create))
        .route("/items/drafts/{id}", get(drafts::show).put(drafts::update))
        .route("/items/drafts/{id}/submit", post(drafts::submit))
        .route("/items/drafts/{id}/approve", post(drafts::approve))
        .route("/items/drafts/{id}/reject", post(drafts::reject))
        .route("/items/{id}", get(items::show).put(items::publish))
        .route("/items/{id}/versions", get(items::versions))
        .route("/attachments", post(attachments::create))
        .route("/catalog/export", get(items::export))
        .route("/calendars", get(calendars::index))
        .route("/calendars/{year}", put(calendars::publish))
        .route(
            "/departments",
            get(departments::index).post(departments::create),
        )
        .route("/departments/{code}", get(departments::show))
        .route("/departments/{code}/rotate", post(departments::rotate))
        .route("/item-categories", get(items::categories))
        .route("/cases", get(cases::index).post(cases::create))
        .route("/cases/by-serial/{serial}", get(cases::by_serial))
        .route("/cases/{id}", get(cases::show))
        .route("/cases/{id}/events", post(cases::add_event))
        .route("/cases/{id}/fees", get(fees::show).post(fees::create))
        .route("/fees", get(fees::report))
        .route("/notices/{number}", get(notices::show))
        .route(
            "/supervision",
            get(supervision::index).post(supervision::create),
        )
        .route("/supervision/{id}", get(supervision::show))
        .route("/supervision/{id}/replies", post(supervision::reply))
        .route("/staff", get(staff::index).post(staff::create))
        .route("/staff/{username}", get(staff::show).patch(staff::update))
        .route("/counters", get(counters::index))
        .route(
            "/counters/{number}",
            put(counters::put).delete(counters::remove),
        )
        .route("/stations", get(stations::index))
        .route("/assessment", get(assessment::index))
        .route("/sync/status", get(sync_status));
    let sync_api = Router::new()
        .route("/hello", post(sync::hello))
        .route("/pull", post(sync::pull))
        .route("/push", post(sync::push))
        .route("/vector", post(sync::vector))
        .route("/wait", post(sync::wait))
        .route("/enroll", post(sync::enroll));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .nest("/api/v1", api)
        .nest("/sync/v1", sync_api)
}

/// One line per request, named by the matched route template (low cardinality); health
/// checks at debug level. Counts every request, pages too, into `metrics`.
pub async fn trace_request(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let micros = started.elapsed().as_micros() as u64;
    metrics.request(method.as_str(), &route, status, micros as f64 / 1e6);
    if route == "/healthz" {
        tracing::debug!(http.method = %method, http.route = %route, http.status = status, http.micros = micros, "request");
    } else {
        tracing::info!(http.method = %method, http.route = %route, http.status = status, http.micros = micros, "request");
    }
    response
}

/// `/metrics`: counters and gauges in the Prometheus text format (no personal data).
async fn metrics(State(state): State<ApiState>) -> Response {
    use axum::response::IntoResponse;
    let peers = state.store.peers().await.unwrap_or_default();
    let refusals = state.store.peer_refusal_counts().await.unwrap_or((0, 0));
    let children = state.links.children();
    let gauges = crate::metrics::Gauges {
        pending_changes: peers.iter().filter_map(|p| p.pending.map(|(n, _)| n)).sum(),
        quarantined: state.store.quarantine_count().await.unwrap_or(0),
        refused_by_peers: refusals.0,
        waiting_at_peers: refusals.1,
        underived: state.store.underived_count().await.unwrap_or(0),
        database_bytes: state.store.disk_bytes(),
        checkpoint_failures: state.store.checkpoint_failures(),
        backup_age_seconds: state
            .backup_dir
            .as_deref()
            .and_then(crate::backup::newest)
            .and_then(|(_, at)| at.elapsed().ok())
            .map(|age| age.as_secs()),
        parent: peers
            .iter()
            .any(|p| p.relation == crate::store::Relation::Parent)
            .then(|| {
                let parent = state.links.parent();
                crate::metrics::ParentGauges {
                    up: parent.up,
                    live: parent.live,
                    retry_delay_seconds: parent.retry_delay_ms.map(|ms| ms as f64 / 1000.0),
                    last_connected_seconds: parent.last_connected_ms.map(|ms| ms / 1000),
                }
            }),
        children_live: children.values().filter(|c| c.live).count() as u64,
        children_seen: children.len() as u64,
        sink: Some(state.sink.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .filter(|s| s.enabled),
    };
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(&gauges),
    )
        .into_response()
}

/// Whether a path is the API's (JSON answers) rather than a page's.
pub fn owns(path: &str) -> bool {
    ["/api/", "/sync/"].iter().any(|p| path.starts_with(p))
        || ["/api", "/sync", "/healthz", "/metrics"].contains(&path)
}

/// Any path no route takes under the API: a JSON 404 that says where it is described.
pub async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint; the API is described at /api/v1/openapi.json")
}

/// A known path with a method it does not take.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method; see /api/v1/openapi.json",
    )
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct Health {
    status: &'static str,
}

/// Liveness check
#[utoipa::path(get, path = "/healthz", tag = "node", responses((status = 200, body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Describe this node
#[utoipa::path(get, path = "/api/v1/node", tag = "node", responses((status = 200, body = NodeInfo), (status = 401, body = error::ErrorBody)), security(("token" = [])))]
async fn node_info(State(state): State<ApiState>, _user: extract::Authenticated) -> Json<NodeInfo> {
    Json(NodeInfo::of(
        &state.node,
        state.store.calendar().version().to_string(),
    ))
}

/// One peer's sync state.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct PeerSync {
    pub node_id: String,
    pub name: String,
    pub role: String,
    pub division: String,
    /// `parent`, `ancestor`, `child` or `self`.
    pub relation: String,
    pub url: Option<String>,
    pub revoked: bool,
    pub last_ok_at: Option<String>,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    /// Changes here that the peer lacks (pending up for the parent, down for a child),
    /// counted against what it last told us; null until it has.
    pub pending: Option<u64>,
    /// When the peer last told us what it holds.
    pub pending_as_of: Option<String>,
    /// The parent: a long-poll to it is open now. A child: it holds one here now. What
    /// reaches the upper node then reaches the lower one at once. Null for other peers.
    pub live: Option<bool>,
    /// When the parent last answered this node, or the child last called it, since this
    /// node started.
    pub last_connected_at: Option<String>,
    /// The parent, while the link fails: seconds until the next attempt is made.
    pub retry_delay_secs: Option<f64>,
}

/// The node's sync state.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SyncStatus {
    /// Whether the last session with the parent succeeded.
    pub parent_link_up: bool,
    /// Whether a long-poll to the parent is open now.
    pub parent_link_live: bool,
    /// While the link to the parent fails: why (`unreachable`, `refused`, `busy`), the
    /// wait before the next attempt, and when that is.
    pub parent_failure: Option<String>,
    pub parent_retry_delay_secs: Option<f64>,
    pub parent_next_attempt_at: Option<String>,
    /// When the parent last answered this node.
    pub parent_last_connected_at: Option<String>,
    /// The parent's clock minus this node's at the last session, in milliseconds.
    pub parent_clock_offset_ms: Option<i64>,
    pub last_success_at: Option<String>,
    pub last_error: Option<String>,
    pub peers: Vec<PeerSync>,
    /// Changes refused for good (forged, unauthorized, unreadable).
    pub quarantined: u64,
    pub recent_quarantine: Vec<QuarantineEntry>,
    /// Changes this node sent that peers refused, and that they wait on.
    pub refused_by_peers: u64,
    pub waiting_at_peers: u64,
    pub recent_refusals_by_peers: Vec<PeerRefusalEntry>,
    /// Changes applied from children's pushes since the node started.
    pub received_applied: u64,
    /// Changes children pushed that were already here, since the node started.
    pub received_duplicates: u64,
    /// The PostgreSQL sink; null when `[sink] postgres` is not set.
    pub sink: Option<SinkStatus>,
}

/// Where the PostgreSQL sink is in this node's change feed.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SinkStatus {
    /// Whether the last batch (or check of an idle feed) reached PostgreSQL.
    pub up: bool,
    /// Changes in this node's log whose rows are not yet in PostgreSQL.
    pub lag_changes: u64,
    /// The position (`local_seq`) PostgreSQL holds, and the newest in the log.
    pub position: u64,
    pub head: u64,
    pub last_success_at: Option<String>,
    pub last_error: Option<String>,
    /// Rows written since the node started.
    pub rows_written: u64,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct QuarantineEntry {
    pub received_at: String,
    pub origin: String,
    pub seq: u64,
    pub scope: String,
    pub document: String,
    /// The reason's code (e.g. `forbidden_effect`, `unverified`), stable for programs.
    pub code: String,
    pub reason: String,
}

/// A change this node sent that a peer refused or cannot apply yet.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct PeerRefusalEntry {
    /// The peer's node id.
    pub peer: String,
    pub noted_at: String,
    pub origin: String,
    pub seq: u64,
    pub scope: String,
    pub document: String,
    /// Waiting (for a key or a change it depends on), not refused.
    pub waiting: bool,
    pub code: String,
    pub reason: String,
}

/// Sync state of this node and its peers
#[utoipa::path(get, path = "/api/v1/sync/status", tag = "node",
    responses((status = 200, body = SyncStatus), (status = 401, body = error::ErrorBody)), security(("token" = [])))]
async fn sync_status(
    State(state): State<ApiState>,
    _user: extract::Authenticated,
) -> Result<Json<SyncStatus>, ApiError> {
    let link = state.links.parent();
    let children = state.links.children();
    let sink = state.sink.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let peers = state.store.peers().await?;
    let quarantine = state.store.quarantined(20).await?;
    let quarantined = state.store.quarantine_count().await?;
    let refused_by_peers = state.store.peer_refusals(50).await?;
    let (refused_count, waiting_count) = state.store.peer_refusal_counts().await?;
    Ok(Json(SyncStatus {
        parent_link_up: link.up,
        parent_link_live: link.live,
        parent_failure: link.failure.map(|f| f.as_str().to_string()),
        parent_retry_delay_secs: link.retry_delay_ms.map(|ms| ms as f64 / 1000.0),
        parent_next_attempt_at: link.next_attempt_ms.map(|ms| rfc3339_cst(ms as i64)),
        parent_last_connected_at: link.last_connected_ms.map(|ms| rfc3339_cst(ms as i64)),
        parent_clock_offset_ms: link.clock_offset_ms,
        last_success_at: link.last_success_ms.map(|ms| rfc3339_cst(ms as i64)),
        last_error: link.last_error,
        peers: peers
            .into_iter()
            .map(|p| {
                let (live, last_connected_ms, retry_delay_ms) = match p.relation {
                    crate::store::Relation::Parent => {
                        (Some(link.live), link.last_connected_ms, link.retry_delay_ms)
                    }
                    crate::store::Relation::Child => {
                        let child = children.get(&p.record.node);
                        (
                            Some(child.is_some_and(|c| c.live)),
                            child.map(|c| c.last_connected_ms),
                            None,
                        )
                    }
                    _ => (None, None, None),
                };
                PeerSync {
                    node_id: p.record.node.to_hex(),
                    name: p.record.name.clone(),
                    role: p.record.role.as_str().into(),
                    division: p.record.division.to_string(),
                    relation: p.relation.as_str().into(),
                    url: p.url,
                    revoked: p.record.revoked.is_some(),
                    last_ok_at: p.last_ok_ms.map(rfc3339_cst),
                    last_error: p.last_error,
                    last_error_at: p.last_error_ms.map(rfc3339_cst),
                    pending: p.pending.map(|(n, _)| n),
                    pending_as_of: p.pending.map(|(_, at)| rfc3339_cst(at)),
                    live,
                    last_connected_at: last_connected_ms.map(|ms| rfc3339_cst(ms as i64)),
                    retry_delay_secs: retry_delay_ms.map(|ms| ms as f64 / 1000.0),
                }
            })
            .collect(),
        quarantined,
        received_applied: state
            .applied_received
            .load(std::sync::atomic::Ordering::Relaxed),
        received_duplicates: state
            .duplicates_received
            .load(std::sync::atomic::Ordering::Relaxed),
        recent_quarantine: quarantine
            .into_iter()
            .map(|q| QuarantineEntry {
                received_at: rfc3339_cst(q.received_ms),
                origin: q.origin,
                seq: q.seq,
                scope: q.scope,
                document: q.doc_id,
                code: q.code,
                reason: q.reason,
            })
            .collect(),
        refused_by_peers: refused_count,
        waiting_at_peers: waiting_count,
        recent_refusals_by_peers: refused_by_peers
            .into_iter()
            .map(|r| PeerRefusalEntry {
                peer: r.peer,
                noted_at: rfc3339_cst(r.noted_ms),
                origin: r.origin,
                seq: r.seq,
                scope: r.scope,
                document: r.doc_id,
                waiting: r.waiting,
                code: r.code,
                reason: r.reason,
            })
            .collect(),
        sink: sink.enabled.then(|| SinkStatus {
            up: sink.up,
            lag_changes: sink.lag(),
            position: sink.position,
            head: sink.head,
            last_success_at: sink.last_success_ms.map(|ms| rfc3339_cst(ms as i64)),
            last_error: sink.last_error.clone(),
            rows_written: sink.rows_written,
        }),
    }))
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Yizhan node API", description = "JSON API of a Yizhan node (SZDB/Z 176-2016). \
        Catalog endpoints are public; case endpoints need `Authorization: Bearer TOKEN`. \
        Errors are `{ \"error\": code, \"message\": text }`."),
    paths(healthz, node_info, items::index, items::show, items::categories, items::publish, items::versions,
          drafts::index, drafts::create, drafts::show, drafts::update, drafts::submit, drafts::approve, drafts::reject,
          attachments::create, items::export,
          calendars::index, calendars::publish,
          departments::index, departments::create, departments::show, departments::rotate,
          cases::create, cases::index, cases::show, cases::by_serial, cases::add_event, fees::show, fees::create, fees::report, stations::index, assessment::index, sync_status,
          notices::show, supervision::index, supervision::create, supervision::show,
          supervision::reply, staff::index, staff::create, staff::show, staff::update,
          counters::index, counters::put, counters::remove),
    modifiers(&BearerAuth, &CommonResponses),
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
}

/// The answers every operation can give besides its own, so the document names every
/// status the server sends (schemathesis checks it in CI): a body that is not JSON of
/// the right shape (400), too large (413) or of another type (415); a missing or unknown
/// token (401) where one is needed; a busy or shutting-down node (503); a full disk
/// (507); and a failure of the node itself (500, logged).
struct CommonResponses;

impl utoipa::Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{RefOr, ResponseBuilder, content::Content};
        let error = |description: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(description)
                    .content(
                        "application/json",
                        Content::new(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody"))),
                    )
                    .build(),
            )
        };
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                let responses = &mut operation.responses.responses;
                let mut add = |code: &str, description: &str| {
                    responses
                        .entry(code.to_string())
                        .or_insert_with(|| error(description));
                };
                if operation.request_body.is_some() {
                    add("400", "The body is not JSON of the documented shape");
                    add("413", "The body is too large");
                    add("415", "The body is not application/json");
                }
                if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
                    add("401", "No valid API token (Authorization: Bearer TOKEN)");
                }
                add("500", "The node itself failed; it logged why");
                add(
                    "503",
                    "The node is busy or shutting down; try again shortly",
                );
                add("507", "The node's disk is full; nothing was saved");
            }
        }
    }
}

/// The OpenAPI 3 document, generated from the handlers and wire types.
///
/// Only the tests call it: the node serves [`OPENAPI_JSON`], which a test keeps equal to it.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document as served, committed as `docs/openapi.json`: the binary carries the JSON
/// instead of the code that builds it from the handlers' annotations, about 1 MB of a
/// station's binary (issue "Faster and smaller", footprint). The test
/// `the_served_openapi_document_is_the_one_the_code_describes` fails when they differ and
/// says how to write it again.
pub const OPENAPI_JSON: &str = include_str!("../../docs/openapi.json");

/// OpenAPI document of this API
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "node", responses((status = 200, description = "OpenAPI 3 JSON")))]
async fn openapi() -> Response {
    use axum::response::IntoResponse;
    let json = [(axum::http::header::CONTENT_TYPE, "application/json")];
    (json, OPENAPI_JSON).into_response()
}

#[cfg(test)]
mod tests;
