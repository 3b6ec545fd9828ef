//! `/sync/v1`: the node-to-node API.
//!
//! Every request but enrollment proves the caller's node key: it carries the node id, the
//! time and an Ed25519 signature over the method, path, time and a hash of the body
//! (`yizhan_sync::request`). Unknown keys get 401, revoked ones 403. Bodies are the binary
//! messages of `yizhan_sync::wire`; errors are the usual JSON.

use axum::body::Bytes;
use axum::extract::{FromRef, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use yizhan_sync::auth::NodeRecord;
use yizhan_sync::feed::{self, Ack, Hello, ParsedBatch, Pull};
use yizhan_sync::ids::{NodeId, unhex};
use yizhan_sync::request::{
    CONTENT_TYPE, EnrollRequest, EnrollResponse, MAX_REQUEST_SKEW_MS, NODE_HEADER,
    SIGNATURE_HEADER, TIME_HEADER, request_message,
};
use yizhan_sync::wire::Message;

use super::ApiState;
use super::error::{ApiError, ApiResult};
use super::extract::Body;

/// Largest sync request body; a batch is cut well below it by its sender.
pub const MAX_SYNC_BODY: usize = 64 * 1024 * 1024;

/// A request signed by a known, unrevoked node.
#[derive(Debug)]
pub struct SignedBy {
    pub record: NodeRecord,
    pub body: Bytes,
}

impl<S> axum::extract::FromRequest<S> for SignedBy
where
    S: Send + Sync,
    ApiState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let state = ApiState::from_ref(state);
        let (parts, body) = request.into_parts();
        let claim = Claim::from_headers(&parts)?;
        let body = axum::body::to_bytes(body, MAX_SYNC_BODY)
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body_too_large",
                    "the sync message is larger than this node accepts",
                )
            })?;
        let registry = state.store.registry().await?;
        let record = registry.get(&claim.node).cloned().ok_or_else(|| {
            ApiError::unauthorized(format!(
                "node {} is not known here; enroll it with a code from this hall (`yizhan enroll-code`)",
                claim.node
            ))
        })?;
        // Nested routers see the path without their prefix; the signature covers the
        // path the caller sent.
        let path = parts
            .extensions
            .get::<axum::extract::OriginalUri>()
            .map(|uri| uri.0.path().to_string())
            .unwrap_or_else(|| parts.uri.path().to_string());
        let message = request_message(parts.method.as_str(), &path, claim.time_ms, &body);
        let key = ed25519_dalek::VerifyingKey::from_bytes(&record.public_key)
            .map_err(|_| ApiError::unauthorized("the node's key is not valid"))?;
        let signature = ed25519_dalek::Signature::from_bytes(&claim.signature);
        if ed25519_dalek::Verifier::verify(&key, &message, &signature).is_err() {
            return Err(ApiError::unauthorized(
                "the request signature does not verify with the node's pinned key",
            ));
        }
        if !record.is_active() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "revoked",
                format!("node {} is revoked", record.node),
            ));
        }
        let skew = claim.time_ms - state.clock.now_ms() as i64;
        if skew.abs() > MAX_REQUEST_SKEW_MS {
            return Err(ApiError::unauthorized(format!(
                "the request's time is {} minutes off this node's clock; set the clocks right",
                skew / 60_000
            )));
        }
        Ok(SignedBy { record, body })
    }
}

struct Claim {
    node: NodeId,
    time_ms: i64,
    signature: [u8; 64],
}

impl Claim {
    /// The caller's node, time and signature, from the request's headers.
    fn from_headers(parts: &Parts) -> Result<Self, ApiError> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let missing = || {
            ApiError::unauthorized(format!(
                "a sync request must be signed by a node key ({NODE_HEADER}, {TIME_HEADER}, {SIGNATURE_HEADER})"
            ))
        };
        let node = header(NODE_HEADER)
            .and_then(NodeId::parse_hex)
            .ok_or_else(missing)?;
        let time_ms = header(TIME_HEADER)
            .and_then(|t| t.parse().ok())
            .ok_or_else(missing)?;
        let signature = header(SIGNATURE_HEADER)
            .and_then(unhex)
            .and_then(|b| <[u8; 64]>::try_from(b).ok())
            .ok_or_else(missing)?;
        Ok(Claim {
            node,
            time_ms,
            signature,
        })
    }
}

fn decode<M: Message>(bytes: &[u8]) -> ApiResult<M> {
    M::decode(bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_message",
            format!("the {} message cannot be read: {e}", M::NAME),
        )
    })
}

fn binary(message: &impl Message) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], message.encode()).into_response()
}

/// `POST /sync/v1/hello`: versions and clocks.
pub async fn hello(State(state): State<ApiState>, signed: SignedBy) -> ApiResult<Response> {
    let theirs: Hello = decode(&signed.body)?;
    feed::compatible(&theirs).map_err(|message| {
        ApiError::new(StatusCode::UPGRADE_REQUIRED, "upgrade_needed", message)
    })?;
    // What the caller refused lately of what it pulled from here: nothing fails silently.
    if !theirs.refused.is_empty() {
        state
            .store
            .record_peer_notes(signed.record.node, theirs.refused)
            .await?;
    }
    let own = state
        .node
        .hello(state.clock.now_ms())
        .map_err(ApiError::invalid)?;
    Ok(binary(&own))
}

/// `POST /sync/v1/pull`: the changes the caller lacks, in the scopes it may read.
pub async fn pull(State(state): State<ApiState>, signed: SignedBy) -> ApiResult<Response> {
    let pull: Pull = decode(&signed.body)?;
    if pull.scopes.is_empty() {
        // What the child holds, for the pending-down count in status; not on the
        // child's critical path.
        let (store, node, have) = (state.store.clone(), signed.record.node, pull.have.clone());
        tokio::spawn(async move {
            if let Err(e) = store.record_peer_vector(node, have).await {
                tracing::warn!(peer.id = %node, error = %e, "cannot note a child's vector");
            }
        });
    }
    let batch = state.store.serve_pull(signed.record, pull).await?;
    let bytes = batch.encode();
    let metrics = &state.metrics;
    metrics
        .sync_bytes_out
        .fetch_add(bytes.len() as u64, std::sync::atomic::Ordering::Relaxed);
    metrics.sync_changes_out.fetch_add(
        batch.envelopes.len() as u64,
        std::sync::atomic::Ordering::Relaxed,
    );
    Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], bytes).into_response())
}

/// `POST /sync/v1/push`: a batch from the caller, checked and applied in one transaction.
pub async fn push(State(state): State<ApiState>, signed: SignedBy) -> ApiResult<Response> {
    // Decoding parses every change: a few milliseconds per batch, off the async threads.
    let body = signed.body;
    state
        .metrics
        .sync_bytes_in
        .fetch_add(body.len() as u64, std::sync::atomic::Ordering::Relaxed);
    let parsed = tokio::task::spawn_blocking(move || ParsedBatch::decode(&body))
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("decoding a batch failed: {e}"),
            )
        })?
        .map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_message",
                format!("the batch message cannot be read: {e}"),
            )
        })?;
    let ack = state
        .store
        .receive_pushed(signed.record.node, parsed)
        .await?;
    state
        .applied_received
        .fetch_add(u64::from(ack.applied), std::sync::atomic::Ordering::Relaxed);
    state
        .metrics
        .sync_changes_in
        .fetch_add(u64::from(ack.applied), std::sync::atomic::Ordering::Relaxed);
    state.duplicates_received.fetch_add(
        u64::from(ack.duplicates),
        std::sync::atomic::Ordering::Relaxed,
    );
    Ok(binary(&ack))
}

/// `POST /sync/v1/vector`: this node's vector, so the caller knows what to push.
pub async fn vector(State(state): State<ApiState>, _signed: SignedBy) -> ApiResult<Response> {
    let have = state.store.vector().await?;
    Ok(binary(&Ack {
        have,
        ..Ack::default()
    }))
}

/// `POST /sync/v1/enroll`: a one-time code exchanges keys with a new child.
pub async fn enroll(
    State(state): State<ApiState>,
    Body(request): Body<EnrollRequest>,
) -> ApiResult<axum::Json<EnrollResponse>> {
    let mut enrolled = state
        .store
        .enroll_child(request.code, request.record, state.clock.now_ms())
        .await?;
    let parent = enrolled.chain.remove(0);
    Ok(axum::Json(EnrollResponse {
        parent,
        above: enrolled.chain,
        record: Some(enrolled.record),
    }))
}

/// Whether a response carries a binary sync message.
pub fn is_binary(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        == Some(CONTENT_TYPE)
}
