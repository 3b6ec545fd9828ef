//! `/sync/v1`: the node-to-node API.
//!
//! Every request but enrollment proves the caller's node key before its body is read:
//! the headers carry the node id, the time, a nonce, the body's length and digest, and
//! an Ed25519 signature over them (`yizhan_sync::request`). The server checks the time
//! window, looks the node up (unknown keys get 401 at once, revoked ones 403), verifies
//! the signature, refuses a nonce it saw in the window (no replay) and a length over the
//! limit for the route (413), and waits for room in the body budget, the bytes of bodies
//! being read from all callers together (503 with `Retry-After` when it stays full);
//! only then does it read exactly that many bytes, within a deadline, and compare their
//! digest. So nobody unauthenticated makes the node read, store or parse anything, and
//! what authenticated nodes send at once is bounded. Bodies are the binary messages of
//! `yizhan_sync::wire`; errors are the usual JSON.
//!
//! A hall serves at most `max_sessions` children's sessions at once: a session holds a
//! place from its first request until the child's long-poll (or 15 s without a request),
//! and a child that finds no place is told to come back in a few seconds (503 with
//! `Retry-After`, jittered, which the child honours), so a hall that 645 stations find
//! again at once serves them in turn. The long-poll (`/sync/v1/wait`) is not a session:
//! holding one costs a connection and a small task.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRef, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use yizhan_sync::auth::{self, NodeRecord};
use yizhan_sync::feed::{self, Ack, Hello, ParsedBatch, Pull, VersionVector};
use yizhan_sync::ids::{NodeId, Origin, Scope};
use yizhan_sync::request::{
    CONTENT_TYPE, ClaimError, EnrollRequest, EnrollResponse, MAX_REQUEST_SKEW_MS, RequestClaim,
};
use yizhan_sync::wire::Message;

use super::ApiState;
use super::error::{ApiError, ApiResult};
use super::extract::Body;

/// Largest body of a sync message other than a push (a hello, a pull or wait with the
/// caller's vector): a vector of 50,000 runs fits.
pub const MAX_MESSAGE_BYTES: u64 = 4 * 1024 * 1024;

/// Requests one node may have being read and handled at once (a session sends one at a
/// time; a second covers a retry while the first is still being answered).
const MAX_IN_FLIGHT_PER_NODE: u32 = 2;

/// Most nonces remembered per node within the time window: far above what a node sends
/// in ten minutes (a bulk push of 100,000 cases is about 130 requests).
const MAX_NONCES_PER_NODE: usize = 4096;

/// A session's place is kept this long after the child's last request.
const SESSION_IDLE: Duration = Duration::from_secs(15);

/// How long a request waits for a session's place before it is told to come back later:
/// a few hundred quick pulls after one change queue briefly rather than retry seconds
/// later.
const SESSION_QUEUE: Duration = Duration::from_secs(3);

/// How long a child's long-poll is held before the answer "nothing yet" (204); the child
/// asks again at once. Below the idle timeouts of the NAT boxes between stations and halls.
pub const LONG_POLL: Duration = Duration::from_secs(40);

/// The limits of `/sync/v1`, from `[sync]` in the config.
#[derive(Clone, Debug)]
pub struct SyncLimits {
    /// Largest push body, in bytes. A sender cuts its batches far below it.
    pub max_push_bytes: u64,
    /// Bytes of request bodies being read or handled at once, from all callers together.
    pub body_budget_bytes: u64,
    /// Children's sessions served at once.
    pub max_sessions: usize,
}

impl Default for SyncLimits {
    fn default() -> Self {
        SyncLimits {
            max_push_bytes: 16 * 1024 * 1024,
            body_budget_bytes: 64 * 1024 * 1024,
            max_sessions: 16,
        }
    }
}

/// What `/sync/v1` keeps between requests: the nonces seen in the time window, the body
/// budget and the requests each node has in flight.
#[derive(Debug)]
pub struct SyncServer {
    limits: SyncLimits,
    /// Nonces seen per node, with the time each request claimed.
    nonces: Mutex<HashMap<NodeId, HashMap<[u8; 16], i64>>>,
    /// The body budget, in KiB.
    budget: Arc<Semaphore>,
    budget_kib: u32,
    in_flight: Arc<Mutex<HashMap<NodeId, u32>>>,
    /// Children in a session, with the time of their last request.
    sessions: Mutex<HashMap<NodeId, std::time::Instant>>,
    /// Told when a session's place is given back.
    session_freed: tokio::sync::Notify,
}

impl Default for SyncServer {
    fn default() -> Self {
        SyncServer::new(SyncLimits::default())
    }
}

impl SyncServer {
    pub fn new(limits: SyncLimits) -> SyncServer {
        let budget_kib = u32::try_from(limits.body_budget_bytes.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1024, Semaphore::MAX_PERMITS as u32);
        SyncServer {
            limits,
            nonces: Mutex::default(),
            budget: Arc::new(Semaphore::new(budget_kib as usize)),
            budget_kib,
            in_flight: Arc::default(),
            sessions: Mutex::default(),
            session_freed: tokio::sync::Notify::new(),
        }
    }

    /// A place for `node`'s session, kept while it makes requests. When every place is
    /// taken the request waits up to [`SESSION_QUEUE`] for one, then is told to come back
    /// in a few seconds.
    async fn enter_session(&self, node: NodeId) -> ApiResult<()> {
        let deadline = tokio::time::Instant::now() + SESSION_QUEUE;
        loop {
            // Listen before looking, so a place freed in between is not missed.
            let freed = self.session_freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if self.try_enter_session(node) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                break;
            }
            // Places also free by idling out, which nobody announces.
            tokio::select! {
                () = &mut freed => {}
                () = tokio::time::sleep(Duration::from_millis(250)) => {}
                () = tokio::time::sleep_until(deadline) => {}
            }
        }
        // 2 to 8 s, spread so the children turned away do not all come back at once.
        let mut byte = [0u8; 1];
        crate::accounts::fill_random(&mut byte);
        let secs = 2 + u32::from(byte[0]) % 7;
        Err(ApiError::busy(
            secs,
            format!(
                "this node serves {} sessions at once; try again in {secs} s",
                self.limits.max_sessions
            ),
        ))
    }

    fn try_enter_session(&self, node: NodeId) -> bool {
        let now = std::time::Instant::now();
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(last) = sessions.get_mut(&node) {
            *last = now;
            return true;
        }
        sessions.retain(|_, last| now.duration_since(*last) < SESSION_IDLE);
        if sessions.len() >= self.limits.max_sessions.max(1) {
            return false;
        }
        sessions.insert(node, now);
        true
    }

    /// `node`'s session is over (it holds a long-poll now).
    fn leave_session(&self, node: NodeId) {
        let left = self
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&node)
            .is_some();
        if left {
            self.session_freed.notify_waiters();
        }
    }

    /// The largest body the route at `path` takes.
    fn limit_for(&self, path: &str) -> u64 {
        if path.ends_with("/push") {
            self.limits.max_push_bytes
        } else {
            MAX_MESSAGE_BYTES
        }
    }

    /// Remembers `nonce` of `node`; refuses one seen within the window. Entries older
    /// than the window go, since their requests would be refused by their time anyway.
    fn check_nonce(
        &self,
        node: NodeId,
        nonce: [u8; 16],
        time_ms: i64,
        now_ms: i64,
    ) -> ApiResult<()> {
        let mut nonces = self.nonces.lock().unwrap_or_else(|e| e.into_inner());
        let seen = nonces.entry(node).or_default();
        if seen.len() >= 64 {
            seen.retain(|_, at| *at >= now_ms - MAX_REQUEST_SKEW_MS);
        }
        if seen.contains_key(&nonce) {
            return Err(ApiError::unauthorized(
                "this request was sent before (its nonce is spent); a node never sends one twice",
            ));
        }
        if seen.len() >= MAX_NONCES_PER_NODE {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                format!("node {node} sent more requests in the last minutes than this node takes"),
            ));
        }
        seen.insert(nonce, time_ms);
        Ok(())
    }

    /// Room for a body of `len` bytes from `node`: one of its few requests in flight, and
    /// its bytes in the budget (waiting a little for them). Held until the request is
    /// answered.
    async fn admit(&self, node: NodeId, len: u64) -> ApiResult<BodyTicket> {
        {
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            let n = in_flight.entry(node).or_default();
            if *n >= MAX_IN_FLIGHT_PER_NODE {
                return Err(ApiError::busy(
                    2,
                    format!("node {node} already has requests being answered; wait for them"),
                ));
            }
            *n += 1;
        }
        let mut ticket = BodyTicket {
            node,
            in_flight: self.in_flight.clone(),
            permit: None,
        };
        let kib = u32::try_from(len.div_ceil(1024))
            .unwrap_or(u32::MAX)
            .clamp(1, self.budget_kib);
        let permit = tokio::time::timeout(
            Duration::from_secs(10),
            self.budget.clone().acquire_many_owned(kib),
        )
        .await;
        match permit {
            Ok(Ok(permit)) => {
                ticket.permit = Some(permit);
                Ok(ticket)
            }
            _ => Err(ApiError::busy(
                5,
                "this node is reading as much sync data as it takes at once; try again shortly",
            )),
        }
    }
}

/// A request's place among those being read and handled; given back when dropped.
#[derive(Debug)]
struct BodyTicket {
    node: NodeId,
    in_flight: Arc<Mutex<HashMap<NodeId, u32>>>,
    permit: Option<OwnedSemaphorePermit>,
}

impl Drop for BodyTicket {
    fn drop(&mut self) {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = in_flight.get_mut(&self.node) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                in_flight.remove(&self.node);
            }
        }
    }
}

/// A request signed by a known, unrevoked node, its body read and checked against the
/// signed digest. Its place in the body budget is held while this lives.
#[derive(Debug)]
pub struct SignedBy {
    pub record: NodeRecord,
    pub body: Bytes,
    _ticket: BodyTicket,
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
        // HTTP/1.1: a request with neither a length nor chunked encoding has no body.
        let no_body = !parts.headers.contains_key(header::CONTENT_LENGTH)
            && !parts.headers.contains_key(header::TRANSFER_ENCODING);
        let (claim, signature) = RequestClaim::from_headers(|name| match name {
            "content-length" if no_body => Some("0"),
            _ => parts.headers.get(name).and_then(|v| v.to_str().ok()),
        })
        .map_err(|e| match e {
            ClaimError::NoLength => ApiError::new(
                StatusCode::LENGTH_REQUIRED,
                "length_required",
                e.to_string(),
            ),
            _ => ApiError::unauthorized(e.to_string()),
        })?;
        let now_ms = state.clock.now_ms() as i64;
        let skew = claim.time_ms - now_ms;
        if skew.abs() > MAX_REQUEST_SKEW_MS {
            return Err(ApiError::unauthorized(format!(
                "the request's time is {} s off this node's clock (at most {} s are taken); set the clocks right",
                skew / 1000,
                MAX_REQUEST_SKEW_MS / 1000
            )));
        }
        // One small read for this node alone, before anything of the body.
        let record = state.store.node_record(claim.node.to_hex()).await?.ok_or_else(|| {
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
        let key = ed25519_dalek::VerifyingKey::from_bytes(&record.public_key)
            .map_err(|_| ApiError::unauthorized("the node's key is not valid"))?;
        let signature = ed25519_dalek::Signature::from_bytes(&signature);
        let message = claim.message(parts.method.as_str(), &path);
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
        let limit = state.sync.limit_for(&path);
        if claim.body_len > limit {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!(
                    "the sync message is {} bytes and this node takes at most {limit} on {path}; send smaller batches ([sync] batch_bytes)",
                    claim.body_len
                ),
            ));
        }
        state
            .sync
            .check_nonce(claim.node, claim.nonce, claim.time_ms, now_ms)?;
        state.links.child_seen(claim.node, now_ms as u64);
        if path.ends_with("/wait") {
            state.sync.leave_session(claim.node);
        } else {
            state.sync.enter_session(claim.node).await?;
        }
        let ticket = state.sync.admit(claim.node, claim.body_len).await?;
        // A slow sender gets 30 s, plus a second per 64 KiB.
        let deadline = Duration::from_secs(30 + claim.body_len / (64 * 1024));
        let body = match tokio::time::timeout(
            deadline,
            axum::body::to_bytes(body, claim.body_len as usize),
        )
        .await
        {
            Ok(Ok(body)) => body,
            Ok(Err(_)) => {
                return Err(ApiError::bad_request(
                    "the sync message's body ended early or is longer than its Content-Length",
                ));
            }
            Err(_) => {
                return Err(ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "body_timeout",
                    format!("the body did not arrive within {} s", deadline.as_secs()),
                ));
            }
        };
        if !claim.matches(&body) {
            return Err(ApiError::bad_request(
                "the body does not match the signed digest (altered in transit?)",
            ));
        }
        Ok(SignedBy {
            record,
            body,
            _ticket: ticket,
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

/// `POST /sync/v1/wait`: a child's long-poll. The body is a pull whose vector is what the
/// child holds or was already offered; the answer is 200 ("pull now") as soon as this
/// node has something beyond it in a scope the child may read, whoever wrote it (a
/// decision here, a change pulled from above, a sibling's catalog change no), or 204
/// ("ask again") after [`LONG_POLL`], when a newer long-poll of the same child takes its
/// place, or when the node shuts down. It waits on the store's log signal, checking only
/// the runs each commit advanced: no thread and no database read per waiting child.
pub async fn wait(State(state): State<ApiState>, signed: SignedBy) -> ApiResult<StatusCode> {
    let SignedBy {
        record,
        body,
        _ticket,
    } = signed;
    let pull: Pull = decode(&body)?;
    // Waiting is not reading: its place among the requests in flight goes back now.
    drop((body, _ticket));
    let held = state.links.child_waiting(record.node, state.clock.now_ms());
    // Follow the log before reading the vector, so no commit falls between the two.
    let mut log = state.store.subscribe_log();
    let vector = state.store.shared_vector().await?;
    if news(&record, &pull.have, vector.iter()) {
        return Ok(StatusCode::OK);
    }
    let deadline = tokio::time::sleep(LONG_POLL);
    tokio::pin!(deadline);
    let mut closing = state.links.closing();
    loop {
        tokio::select! {
            advanced = log.recv() => match advanced {
                Ok(runs) => {
                    if news(&record, &pull.have, runs.iter().map(|(s, o, q)| (s, o, *q))) {
                        return Ok(StatusCode::OK);
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    let vector = state.store.shared_vector().await?;
                    if news(&record, &pull.have, vector.iter()) {
                        return Ok(StatusCode::OK);
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                    return Ok(StatusCode::NO_CONTENT);
                }
            },
            () = &mut deadline => return Ok(StatusCode::NO_CONTENT),
            () = held.superseded() => return Ok(StatusCode::NO_CONTENT),
            () = async {
                let _ = closing.wait_for(|closing| *closing).await;
            } => return Ok(StatusCode::NO_CONTENT),
        }
    }
}

/// Whether any of `heads` is beyond `have` in a scope `reader` may read: what a pull by
/// `reader` with `have` would return (the same rule as `Store::serve_pull`).
fn news<'a>(
    reader: &NodeRecord,
    have: &VersionVector,
    mut heads: impl Iterator<Item = (&'a Scope, &'a Origin, u64)>,
) -> bool {
    heads.any(|(scope, origin, seq)| seq > have.get(scope, origin) && auth::may_read(reader, scope))
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
