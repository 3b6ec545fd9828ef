//! The JSON edge: the API under `/api/v1`, its OpenAPI document, and the node-to-node
//! API under `/sync/v1`.
//!
//! Handlers are thin: extract, call the store, map the result. Wire types live here, never
//! in the domain. Every failure is an [`error::ApiError`] with a JSON body; malformed input
//! is a 4xx, never a 500.

pub mod cases;
pub mod error;
pub mod extract;
pub mod items;
pub mod sync;

use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use utoipa::OpenApi;
use yizhan_sync::domain::calendar::Date;

use crate::clock::{Clock, rfc3339_cst};
use crate::identity::ThisNode;
use crate::metrics::{LinkState, Metrics};
use crate::store::Store;
use error::ApiError;

/// What the JSON API and `/sync/v1` handlers see; the web UI's state is not here.
#[derive(Clone)]
pub struct ApiState {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub node: Arc<ThisNode>,
    /// The state of the link to the parent, kept by the sync driver.
    pub link: Arc<Mutex<LinkState>>,
    /// Changes children pushed that this node already had, since start. Stays at zero
    /// when senders resume from the receiver's vector as they should.
    pub duplicates_received: Arc<AtomicU64>,
    /// Changes applied from pushes since start.
    pub applied_received: Arc<AtomicU64>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Where scheduled backups go, for the backup age in `/metrics`.
    pub backup_dir: Option<PathBuf>,
    /// Working days allowed to rectify after a bad rating (`[service]` in the config).
    pub rectify_days: u32,
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

impl From<&ThisNode> for NodeInfo {
    fn from(node: &ThisNode) -> NodeInfo {
        NodeInfo {
            node_id: node.node_id.clone(),
            role: node.role.clone(),
            division: node.division.clone(),
            name: node.name.clone(),
            version: node.version.clone(),
            calendar: node.calendar.clone(),
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
        .route("/items/{id}", get(items::show).put(items::publish))
        .route("/item-categories", get(items::categories))
        .route("/cases", get(cases::index).post(cases::create))
        .route("/cases/by-serial/{serial}", get(cases::by_serial))
        .route("/cases/{id}", get(cases::show))
        .route("/cases/{id}/events", post(cases::add_event))
        .route("/sync/status", get(sync_status));
    let sync_api = Router::new()
        .route("/hello", post(sync::hello))
        .route("/pull", post(sync::pull))
        .route("/push", post(sync::push))
        .route("/vector", post(sync::vector))
        .route("/enroll", post(sync::enroll))
        .layer(DefaultBodyLimit::max(sync::MAX_SYNC_BODY));
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
    let gauges = crate::metrics::Gauges {
        pending_changes: peers.iter().filter_map(|p| p.pending.map(|(n, _)| n)).sum(),
        quarantined: state.store.quarantine_count().await.unwrap_or(0),
        refused_by_peers: refusals.0,
        waiting_at_peers: refusals.1,
        underived: state.store.underived_count().await.unwrap_or(0),
        database_bytes: state.store.disk_bytes(),
        backup_age_seconds: state
            .backup_dir
            .as_deref()
            .and_then(crate::backup::newest)
            .and_then(|(_, at)| at.elapsed().ok())
            .map(|age| age.as_secs()),
        parent_link_up: peers
            .iter()
            .any(|p| p.relation == crate::store::Relation::Parent)
            .then(|| state.link.lock().unwrap_or_else(|e| e.into_inner()).up),
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
    Json(NodeInfo::from(&*state.node))
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
}

/// The node's sync state.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct SyncStatus {
    /// Whether the last session with the parent succeeded.
    pub parent_link_up: bool,
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
    let link = state.link.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let peers = state.store.peers().await?;
    let quarantine = state.store.quarantined(20).await?;
    let quarantined = state.store.quarantine_count().await?;
    let refused_by_peers = state.store.peer_refusals(50).await?;
    let (refused_count, waiting_count) = state.store.peer_refusal_counts().await?;
    Ok(Json(SyncStatus {
        parent_link_up: link.up,
        parent_clock_offset_ms: link.clock_offset_ms,
        last_success_at: link.last_success_ms.map(|ms| rfc3339_cst(ms as i64)),
        last_error: link.last_error,
        peers: peers
            .into_iter()
            .map(|p| PeerSync {
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
    }))
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Yizhan node API", description = "JSON API of a Yizhan node (SZDB/Z 176-2016). \
        Catalog endpoints are public; case endpoints need `Authorization: Bearer TOKEN`. \
        Errors are `{ \"error\": code, \"message\": text }`."),
    paths(healthz, node_info, items::index, items::show, items::categories, items::publish,
          cases::create, cases::index, cases::show, cases::by_serial, cases::add_event, sync_status),
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
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// OpenAPI document of this API
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "node", responses((status = 200, description = "OpenAPI 3 JSON")))]
async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi_document())
}

#[cfg(test)]
mod tests;
