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
use yizhan_sync::feed::{self, Ack, Hello, ParsedBatch, Pull, VersionVector};
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
    pub quarantined: u32,
    pub bytes_down: u64,
    pub bytes_up: u64,
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

/// A session that counts into `report` as it goes, so a session cut short still tells
/// how far it got (the driver retries a link that moves data sooner than a dead one).
async fn session_into(
    store: &Store,
    client: &Client,
    own: &Hello,
    peer: &NodeRecord,
    batch_bytes: u32,
    report: &mut SessionReport,
) -> Result<(), LinkError> {
    // The hello carries this node's clock as of now, not as of when the driver started.
    let mut own = own.clone();
    own.now_ms = client.clock.now_ms();
    let asked = std::time::Instant::now();
    let sent_ms = own.now_ms;
    let theirs = client.hello(&own).await?;
    // The parent's clock against ours, taking its answer as sent half-way through.
    let half_trip = asked.elapsed().as_millis() as i64 / 2;
    report.clock_offset_ms = Some(theirs.now_ms as i64 - (sent_ms as i64 + half_trip));
    feed::compatible(&theirs).map_err(LinkError::Protocol)?;
    if theirs.node != peer.node {
        return Err(LinkError::Protocol(format!(
            "the node at this address is {} but the pinned parent is {}; check the parent URL",
            theirs.node, peer.node
        )));
    }
    // Pull until the parent has nothing more (bounded: a session never loops forever).
    for _ in 0..100_000 {
        let pull = Pull {
            scopes: Vec::new(),
            have: store.vector().await?,
            max_bytes: batch_bytes,
        };
        let (parsed, size) = client.pull(&pull).await?;
        report.bytes_down += size;
        if parsed.batch.envelopes.is_empty() {
            break;
        }
        let more = parsed.batch.more;
        let ack = store.receive_parsed(parsed).await?;
        report.pulled_batches += 1;
        report.pulled += ack.applied;
        report.quarantined = ack.quarantined;
        if !more || ack.applied == 0 {
            break;
        }
    }
    // Push what the parent lacks. The next batch is read and encoded while the parent
    // applies the previous one, assuming it takes all of it; if its answer says otherwise
    // (it quarantined or deferred something), the prepared batch is dropped and the next
    // one is built from what it really has.
    let have = client.vector().await?;
    report.parent_have = Some(have.clone());
    let mut next = prepare_push(store, peer, have.clone(), batch_bytes).await?;
    for _ in 0..100_000 {
        let Some(prepared) = next.take() else { break };
        let more = prepared.more;
        let expected = prepared.expected.clone();
        let ahead = async {
            if more {
                prepare_push(store, peer, expected.clone(), batch_bytes).await
            } else {
                Ok(None)
            }
        };
        let (ack, ahead) = tokio::join!(client.push_encoded(prepared.bytes.clone()), ahead);
        let ack = ack?;
        report.parent_have = Some(ack.have.clone());
        report.bytes_up += prepared.bytes.len() as u64;
        report.pushed_batches += 1;
        report.pushed += ack.applied;
        if !more {
            break;
        }
        if covers(&ack.have, &expected) {
            next = ahead?;
        } else if ack.applied == 0 {
            // No progress: the rest waits for a later session (quarantined changes are
            // reported by the parent's status).
            break;
        } else {
            next = prepare_push(store, peer, ack.have, batch_bytes).await?;
        }
    }
    Ok(())
}

/// A batch ready to push: its bytes, and the parent's vector once it is applied.
struct Prepared {
    bytes: Vec<u8>,
    more: bool,
    expected: VersionVector,
}

/// Reads and encodes what `peer` lacks beyond `have`, off the async threads; `None` when
/// it lacks nothing.
async fn prepare_push(
    store: &Store,
    peer: &NodeRecord,
    have: VersionVector,
    batch_bytes: u32,
) -> Result<Option<Prepared>, LinkError> {
    let batch = store
        .serve_pull(
            peer.clone(),
            Pull {
                scopes: Vec::new(),
                have: have.clone(),
                max_bytes: batch_bytes,
            },
        )
        .await?;
    if batch.envelopes.is_empty() {
        return Ok(None);
    }
    let prepared = tokio::task::spawn_blocking(move || {
        let mut expected = have;
        for e in &batch.envelopes {
            expected.advance(&e.scope, &e.origin, e.seq);
        }
        Prepared {
            bytes: batch.encode(),
            more: batch.more,
            expected,
        }
    })
    .await
    .map_err(|e| LinkError::Protocol(format!("encoding a batch failed: {e}")))?;
    Ok(Some(prepared))
}

/// Whether `have` is at or beyond `want` for every run `want` names.
fn covers(have: &VersionVector, want: &VersionVector) -> bool {
    want.iter()
        .all(|(scope, origin, seq)| have.get(scope, origin) >= seq)
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
