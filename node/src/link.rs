//! The link to the parent node: the HTTP client of the sync protocol and the driver that
//! keeps it in sync.
//!
//! A session is: hello (versions, clocks), pull until the parent has nothing more, then
//! push what the parent lacks until it has everything. The driver runs a session shortly
//! after the store signals a commit with changes to pass on (`Store::outgoing`: local
//! writes, and what children pushed; debounced), every `interval` otherwise, and backs off
//! exponentially (capped) while the parent cannot be reached. Each batch commits on its own, so a session
//! cut at any point resumes where it stopped.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use yizhan_sync::auth::NodeRecord;
use yizhan_sync::engine::session::{self, Input, Session, Want};
use yizhan_sync::feed::{self, Ack, Batch, Hello, ParsedBatch, Pull, VersionVector};
use yizhan_sync::request::{
    CONTENT_TYPE, NODE_HEADER, SIGNATURE_HEADER, TIME_HEADER, request_message,
};
use yizhan_sync::wire::Message;

use crate::clock::Clock;
use crate::identity::NodeKey;
use crate::metrics::{LinkState, SessionReportView};
use crate::store::{Relation, Store};

/// Why a session with a peer failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("cannot reach {url}: {source}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the connection to {url} dropped mid-answer (what was committed stays): {source}")]
    Dropped {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url} answered {status}: {message}")]
    Refused {
        url: String,
        status: u16,
        message: String,
    },
    #[error("{0}")]
    Protocol(String),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
}

impl LinkError {
    /// The kind of failure, a key under `link.error.` in `web/i18n`.
    pub fn code(&self) -> &'static str {
        match self {
            LinkError::Unreachable { .. } => "unreachable",
            LinkError::Dropped { .. } => "dropped",
            LinkError::Refused { .. } => "refused",
            LinkError::Protocol(_) => "protocol",
            LinkError::Store(_) => "store",
        }
    }
}

/// A client for one peer's `/sync/v1`.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    key: Arc<NodeKey>,
    clock: Arc<dyn ClockDebug>,
}

/// A clock usable in `Debug` structs.
pub trait ClockDebug: Clock + std::fmt::Debug {}
impl<T: Clock + std::fmt::Debug> ClockDebug for T {}

impl Client {
    /// A client for the peer at `base` whose node key is `peer_key`; on `https://` URLs
    /// the TLS handshake must prove that key (see [`crate::tls`]).
    pub fn new(
        base: &str,
        peer_key: [u8; 32],
        key: Arc<NodeKey>,
        clock: Arc<dyn ClockDebug>,
    ) -> Client {
        let http =
            crate::tls::http_client(crate::tls::Pin::Key(peer_key), Duration::from_secs(120));
        Client {
            http,
            base: base.trim_end_matches('/').to_string(),
            key,
            clock,
        }
    }

    async fn call(&self, path: &str, body: Vec<u8>) -> Result<Vec<u8>, LinkError> {
        let url = format!("{}{path}", self.base);
        let time = self.clock.now_ms() as i64;
        let signature = self.key.sign(&request_message("POST", path, time, &body));
        let response = self
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            // Refusals go to the log and the status page, which word them anew.
            .header(reqwest::header::ACCEPT_LANGUAGE, "en")
            .header(NODE_HEADER, self.key.node_id().to_hex())
            .header(TIME_HEADER, time.to_string())
            .header(SIGNATURE_HEADER, yizhan_sync::ids::hex(&signature))
            .body(body)
            .send()
            .await
            .map_err(|source| LinkError::Unreachable {
                url: url.clone(),
                source,
            })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|source| LinkError::Dropped {
                url: url.clone(),
                source,
            })?;
        if !status.is_success() {
            let message = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(200).collect());
            return Err(LinkError::Refused {
                url,
                status: status.as_u16(),
                message,
            });
        }
        Ok(bytes.to_vec())
    }

    async fn message<In: Message, Out: Message>(
        &self,
        path: &str,
        message: &In,
    ) -> Result<Out, LinkError> {
        let bytes = self.call(path, message.encode()).await?;
        Out::decode(&bytes).map_err(|e| LinkError::Protocol(format!("{path}: {e}")))
    }

    pub async fn hello(&self, hello: &Hello) -> Result<Hello, LinkError> {
        self.message("/sync/v1/hello", hello).await
    }

    /// The batch, and its size on the wire.
    pub async fn pull(&self, pull: &Pull) -> Result<(ParsedBatch, u64), LinkError> {
        let bytes = self.call("/sync/v1/pull", pull.encode()).await?;
        let size = bytes.len() as u64;
        let parsed = tokio::task::spawn_blocking(move || ParsedBatch::decode(&bytes))
            .await
            .map_err(|e| LinkError::Protocol(format!("decoding a batch failed: {e}")))?
            .map_err(|e| LinkError::Protocol(format!("/sync/v1/pull: {e}")))?;
        Ok((parsed, size))
    }

    /// Pushes a batch already encoded (see [`Message::encode`]).
    pub async fn push_encoded(&self, batch: Vec<u8>) -> Result<Ack, LinkError> {
        let bytes = self.call("/sync/v1/push", batch).await?;
        Ack::decode(&bytes).map_err(|e| LinkError::Protocol(format!("/sync/v1/push: {e}")))
    }

    pub async fn vector(&self) -> Result<VersionVector, LinkError> {
        let ack: Ack = Ack::decode(&self.call("/sync/v1/vector", Vec::new()).await?)
            .map_err(|e| LinkError::Protocol(e.to_string()))?;
        Ok(ack.have)
    }
}

/// What one session moved.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SessionReport {
    /// What the parent said it holds, last in the session (for pending-up counts).
    pub parent_have: Option<VersionVector>,
    /// The parent's clock minus this node's, in milliseconds, from the hello.
    pub clock_offset_ms: Option<i64>,
    pub pulled_batches: u32,
    pub pulled: u32,
    pub pushed_batches: u32,
    pub pushed: u32,
    pub bytes_down: u64,
    pub bytes_up: u64,
    /// What the parent refused (or waits on) of what this node pushed, with why.
    pub refused_up: Vec<feed::ChangeNote>,
}

impl SessionReport {
    fn update(&mut self, from: &session::SessionReport) {
        self.parent_have.clone_from(&from.parent_have);
        self.pulled_batches = from.pulled_batches;
        self.pulled = from.pulled;
        self.pushed_batches = from.pushed_batches;
        self.pushed = from.pushed;
        self.bytes_down = from.bytes_down;
        self.bytes_up = from.bytes_up;
        self.refused_up.clone_from(&from.push_notes);
    }
}

/// Runs one full session with `peer` through `client`.
pub async fn session(
    store: &Store,
    client: &Client,
    own: &Hello,
    peer: &NodeRecord,
    batch_bytes: u32,
) -> Result<SessionReport, LinkError> {
    let mut report = SessionReport::default();
    session_into(store, client, own, peer, batch_bytes, &mut report).await?;
    Ok(report)
}

/// A session run by the engine's session machine over HTTP, counting into `report` as it
/// goes, so a session cut short still tells how far it got (the driver retries a link
/// that moves data sooner than a dead one).
async fn session_into(
    store: &Store,
    client: &Client,
    own: &Hello,
    peer: &NodeRecord,
    batch_bytes: u32,
    report: &mut SessionReport,
) -> Result<(), LinkError> {
    // The hello carries this node's clock as of now, not as of when the driver started,
    // and what it refused lately of what the parent sent, so the parent learns of it.
    let mut own = own.clone();
    own.now_ms = client.clock.now_ms();
    own.refused = store.recent_refusals(50).await?;
    let mut machine = Session::new(own, batch_bytes);
    let mut want = machine.start();
    // The next batch, read and encoded while the parent applies the previous one.
    let mut prefetched: Option<(Batch, Vec<u8>)> = None;
    for _step in 0..4 * session::MAX_BATCHES {
        if let Want::Done(result) = want {
            report.update(machine.report());
            return result.map(|_| ()).map_err(LinkError::Protocol);
        }
        let outcome = step(store, client, peer, batch_bytes, want, &mut prefetched).await;
        let input = match outcome {
            Ok((input, offset)) => {
                if offset.is_some() {
                    report.clock_offset_ms = offset;
                }
                input
            }
            Err(error) => {
                report.update(machine.report());
                return Err(error);
            }
        };
        want = machine.on(input);
        report.update(machine.report());
    }
    Err(LinkError::Protocol("the sync session did not end".into()))
}

/// Does what the session wants over HTTP; returns what to hand back and, after a hello,
/// the parent's clock offset.
async fn step(
    store: &Store,
    client: &Client,
    peer: &NodeRecord,
    batch_bytes: u32,
    want: Want,
    prefetched: &mut Option<(Batch, Vec<u8>)>,
) -> Result<(Input, Option<i64>), LinkError> {
    let input = match want {
        Want::Hello(hello) => {
            let asked = std::time::Instant::now();
            let theirs = client.hello(&hello).await?;
            // The parent's clock against ours, taking its answer as sent half-way.
            let half_trip = asked.elapsed().as_millis() as i64 / 2;
            let offset = theirs.now_ms as i64 - (hello.now_ms as i64 + half_trip);
            if theirs.node != peer.node {
                return Err(LinkError::Protocol(format!(
                    "the node at this address is {} but the pinned parent is {}; check the parent URL",
                    theirs.node, peer.node
                )));
            }
            return Ok((Input::Hello(theirs), Some(offset)));
        }
        Want::LocalVector => Input::LocalVector(store.vector().await?),
        Want::Pull(pull) => {
            let (batch, wire_bytes) = client.pull(&pull).await?;
            Input::Pulled { batch, wire_bytes }
        }
        Want::Apply(batch) => Input::Applied(store.receive_parsed(batch).await?),
        Want::ParentVector => Input::ParentVector(client.vector().await?),
        Want::Build { have, max_bytes } => {
            Input::Built(build_push(store, peer, have, max_bytes).await?)
        }
        Want::Push { batch, next_have } => {
            let bytes = match prefetched.take() {
                Some((ready, bytes)) if ready == batch => bytes,
                _ => encode(batch).await?,
            };
            let ahead = async {
                let Some(have) = next_have else {
                    return Ok(None);
                };
                let Some(next) = build_push(store, peer, have, batch_bytes).await? else {
                    return Ok(None);
                };
                let bytes = encode(next.clone()).await?;
                Ok::<_, LinkError>(Some((next, bytes)))
            };
            let (ack, ahead) = tokio::join!(client.push_encoded(bytes.clone()), ahead);
            let ack = ack?;
            let ahead = ahead?;
            let next = ahead.as_ref().map(|(batch, _)| batch.clone());
            *prefetched = ahead;
            Input::Pushed {
                ack,
                wire_bytes: bytes.len() as u64,
                ahead: next,
            }
        }
        Want::Done(_) => return Err(LinkError::Protocol("the session is over".into())),
    };
    Ok((input, None))
}

/// What `peer` lacks beyond `have`, read off the async threads; `None` when it lacks
/// nothing.
async fn build_push(
    store: &Store,
    peer: &NodeRecord,
    have: VersionVector,
    max_bytes: u32,
) -> Result<Option<Batch>, LinkError> {
    let batch = store
        .serve_pull(
            peer.clone(),
            Pull {
                scopes: Vec::new(),
                have,
                max_bytes,
            },
        )
        .await?;
    Ok((!batch.envelopes.is_empty()).then_some(batch))
}

async fn encode(batch: Batch) -> Result<Vec<u8>, LinkError> {
    tokio::task::spawn_blocking(move || batch.encode())
        .await
        .map_err(|e| LinkError::Protocol(format!("encoding a batch failed: {e}")))
}

/// Keeps this node in sync with its parent while the node runs.
#[derive(Debug)]
pub struct Driver {
    pub store: Store,
    pub key: Arc<NodeKey>,
    pub own: Hello,
    pub clock: Arc<dyn ClockDebug>,
    /// Notified after each commit with changes to pass on ([`Store::outgoing`]); a session
    /// starts half a second later.
    pub signal: Arc<Notify>,
    pub state: Arc<Mutex<LinkState>>,
    /// Time between sessions when nothing happens.
    pub interval: Duration,
    pub batch_bytes: u32,
    /// Sync bytes and changes, for `/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl Driver {
    /// Runs until the task is dropped.
    pub async fn run(self) {
        let Driver {
            store,
            key,
            own,
            clock,
            signal,
            state,
            interval,
            batch_bytes,
            metrics,
        } = self;
        state.lock().unwrap_or_else(|e| e.into_inner()).interval_ms =
            u64::try_from(interval.as_millis()).unwrap_or(u64::MAX);
        let mut backoff = Duration::from_secs(2);
        loop {
            let parent = match store.peers().await {
                Ok(peers) => peers
                    .into_iter()
                    .find(|p| p.relation == Relation::Parent && p.url.is_some()),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the peers");
                    None
                }
            };
            let Some(parent) = parent else {
                // No parent (a root hall, or a station not enrolled yet): wait to be told.
                tokio::select! {
                    () = signal.notified() => {}
                    () = tokio::time::sleep(interval) => {}
                }
                continue;
            };
            let url = parent.url.clone().unwrap_or_default();
            let client = Client::new(&url, parent.record.public_key, key.clone(), clock.clone());
            let mut report = SessionReport::default();
            let result = session_into(
                &store,
                &client,
                &own,
                &parent.record,
                batch_bytes,
                &mut report,
            )
            .await;
            let wait = match &result {
                Ok(()) => {
                    if report.pulled + report.pushed > 0 {
                        tracing::info!(
                            peer.id = %parent.record.node,
                            sync.pulled = report.pulled,
                            sync.pushed = report.pushed,
                            sync.bytes_down = report.bytes_down,
                            sync.bytes_up = report.bytes_up,
                            "sync session finished"
                        );
                    }
                    let mut link = state.lock().unwrap_or_else(|e| e.into_inner());
                    link.up = true;
                    link.last_success_ms = Some(clock.now_ms());
                    link.last_error = None;
                    link.last_error_code = None;
                    link.clock_offset_ms = report.clock_offset_ms;
                    link.last_report = Some(SessionReportView {
                        pulled: report.pulled,
                        pushed: report.pushed,
                        bytes_down: report.bytes_down,
                        bytes_up: report.bytes_up,
                    });
                    backoff = Duration::from_secs(2);
                    interval
                }
                Err(e) => {
                    let moved = report.pulled_batches + report.pushed_batches;
                    tracing::warn!(peer.id = %parent.record.node, peer.url = %url, sync.batches = moved, error = %e, "sync session failed");
                    let mut link = state.lock().unwrap_or_else(|e| e.into_inner());
                    link.up = false;
                    link.last_error = Some(e.to_string());
                    link.last_error_code = Some(e.code());
                    if moved > 0 {
                        // The link carries data but drops: committed batches stay, so try
                        // again soon instead of backing off as from a dead link.
                        backoff = Duration::from_secs(2);
                    }
                    let wait = backoff;
                    backoff = (backoff * 2).min(Duration::from_secs(300));
                    wait
                }
            };
            {
                use std::sync::atomic::Ordering::Relaxed;
                metrics.sync_bytes_in.fetch_add(report.bytes_down, Relaxed);
                metrics.sync_bytes_out.fetch_add(report.bytes_up, Relaxed);
                metrics
                    .sync_changes_in
                    .fetch_add(u64::from(report.pulled), Relaxed);
                metrics
                    .sync_changes_out
                    .fetch_add(u64::from(report.pushed), Relaxed);
            }
            if let Some(offset) = report.clock_offset_ms {
                let _ = store.record_clock_offset(parent.record.node, offset).await;
            }
            if let Some(have) = report.parent_have.take() {
                let _ = store.record_peer_vector(parent.record.node, have).await;
            }
            if !report.refused_up.is_empty() {
                let notes = std::mem::take(&mut report.refused_up);
                if let Err(e) = store.record_peer_notes(parent.record.node, notes).await {
                    tracing::warn!(error = %e, "cannot record what the parent refused");
                }
            }
            let _ = store
                .record_link_result(
                    parent.record.node,
                    result.map(|_| ()).map_err(|e| e.to_string()),
                )
                .await;
            tokio::select! {
                () = signal.notified() => {
                    // Let a burst of writes settle into one session.
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}
