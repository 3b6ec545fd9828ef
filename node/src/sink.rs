//! The PostgreSQL sink's driver: streams the rows of the node's change feed into
//! PostgreSQL, batch by batch, for as long as the node serves (`docs/sink.md`).
//!
//! It never blocks the node. It reads the feed on a thread and a read-only connection of
//! its own (`store::FeedReader`), writes to PostgreSQL on its own task, and when
//! PostgreSQL is down or slow it only falls behind: the node keeps serving and syncing,
//! the lag shows in [`SinkState`], and the sink resumes from the position PostgreSQL
//! recorded once it answers again. Reading the next batch overlaps writing the last one.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::metrics::SinkState;
use crate::store::postgres::{Postgres, SinkError};
use crate::store::{FeedBatch, FeedIdentity, Store};

/// How often an idle feed is read again: the most a change waits before the sink sees it.
const POLL: Duration = Duration::from_millis(250);

/// How often an idle sink checks that PostgreSQL still holds the position it wrote.
const CHECK_IDLE: Duration = Duration::from_secs(2);

/// The longest wait between two attempts to reach PostgreSQL.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Batches read ahead of the one being written.
const READ_AHEAD: usize = 2;

/// A running sink: what it feeds from and into, and where it reports.
#[derive(Debug, Clone)]
pub struct Sink {
    pub store: Store,
    /// The `[sink] postgres` URL.
    pub url: String,
    /// Changes per batch (`[sink] batch_changes`).
    pub batch_changes: u32,
    /// How long PostgreSQL may take to connect or to take a batch.
    pub timeout: Duration,
    pub state: Arc<Mutex<SinkState>>,
}

impl Sink {
    /// Streams until the task is dropped, reconnecting with backoff after any failure.
    pub async fn run(self) {
        self.update(|s| s.enabled = true);
        let mut backoff = Duration::from_millis(500);
        loop {
            let error = self.session().await;
            let detail = error.detail();
            if matches!(error, SinkError::Rederived) {
                // Not a failure: start again at once from the new generation's start.
                tracing::info!("{detail}");
                continue;
            }
            tracing::warn!(error = %detail, retry.secs = backoff.as_secs_f32(), "the PostgreSQL sink stopped; the node keeps serving and the sink tries again");
            self.update(|s| {
                s.up = false;
                s.last_error = Some(detail);
            });
            self.wait_counting_lag(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            if self.state.lock().unwrap_or_else(|e| e.into_inner()).up {
                backoff = Duration::from_millis(500);
            }
        }
    }

    /// Waits out a backoff while keeping the head current, so the lag shown in `status`,
    /// `/metrics` and the admin page grows while PostgreSQL is away instead of freezing.
    async fn wait_counting_lag(&self, backoff: Duration) {
        let until = tokio::time::Instant::now() + backoff;
        loop {
            match self.store.feed_head().await {
                Ok(head) => self.update(|s| s.head = head),
                Err(e) => tracing::debug!(error = %e, "the sink cannot read the feed's head"),
            }
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return;
            }
            tokio::time::sleep(left.min(Duration::from_secs(1))).await;
        }
    }

    /// Connects, migrates, finds where to resume, and streams until something fails.
    async fn session(&self) -> SinkError {
        match self.stream().await {
            Ok(never) => match never {},
            Err(e) => e,
        }
    }

    async fn stream(&self) -> Result<std::convert::Infallible, SinkError> {
        let mut postgres = Postgres::connect(&self.url, self.timeout).await?;
        self.timed(postgres.migrate()).await?;
        // A second connection writes a batch while the first commits the one before.
        let second = Postgres::connect(&self.url, self.timeout).await?;
        let reader = self.store.feed_reader()?;
        let identity = reader.identity()?;
        let head = reader.head()?;
        let after = self.timed(postgres.start_feed(&identity, head)).await?;
        tracing::info!(
            sink.position = after,
            sink.head = head,
            "the PostgreSQL sink is streaming"
        );
        self.update(|s| {
            s.up = true;
            s.position = after;
            s.head = head;
            s.last_error = None;
        });
        let mut batches = spawn_reader(reader, after, self.batch_changes);
        let mut writers = Writers {
            idle: vec![second, postgres],
            running: std::collections::VecDeque::new(),
            committed: None,
            previous_creates_partitions: false,
        };
        let result = self
            .stream_batches(&identity, &mut batches, &mut writers)
            .await;
        // A batch still in flight either commits in order or rolls back; either way the
        // next session resumes from the position PostgreSQL holds.
        for (task, _) in writers.running.drain(..) {
            task.abort();
        }
        result
    }

    async fn stream_batches(
        &self,
        identity: &FeedIdentity,
        batches: &mut tokio::sync::mpsc::Receiver<Result<FeedBatch, crate::store::StoreError>>,
        writers: &mut Writers,
    ) -> Result<std::convert::Infallible, SinkError> {
        let mut last_check = std::time::Instant::now();
        loop {
            let waited = std::time::Instant::now();
            let received = batches.recv().await;
            let waited = waited.elapsed().as_secs_f64();
            self.update(|s| s.feed_wait_secs += waited);
            let batch = match received {
                Some(Ok(batch)) if batch.generation != identity.generation => {
                    return Err(SinkError::Rederived);
                }
                Some(Ok(batch)) => batch,
                Some(Err(e)) => return Err(e.into()),
                None => {
                    return Err(SinkError::Feed(crate::store::StoreError::Internal(
                        "the reader thread stopped".into(),
                    )));
                }
            };
            if !batch.is_empty() {
                if writers.idle.is_empty() {
                    self.finish_oldest(writers).await?;
                }
                let Some(mut postgres) = writers.idle.pop() else {
                    return Err(SinkError::PositionMoved);
                };
                let (done, committed) = tokio::sync::oneshot::channel::<bool>();
                let before = writers.committed.replace(committed);
                let (identity, timeout) = (identity.clone(), self.timeout);
                let (through, head) = (batch.through, batch.head);
                // A batch that creates a month partition holds its parent table's lock
                // until it commits: the next one waits for that commit before it starts.
                let after_exclusive = std::mem::replace(
                    &mut writers.previous_creates_partitions,
                    postgres.creates_partitions(&batch),
                );
                let task = tokio::spawn(async move {
                    // The wait for the batch before has its own bound, so this batch's
                    // time limit is its own work's (the outer one allows both).
                    let before = async move {
                        match before {
                            Some(committed) => tokio::time::timeout(timeout, committed)
                                .await
                                .is_ok_and(|r| r.unwrap_or(false)),
                            None => true,
                        }
                    };
                    let written = tokio::time::timeout(
                        timeout * 2,
                        postgres.write_after(&identity, &batch, before, after_exclusive),
                    )
                    .await
                    .map_err(|_| SinkError::Timeout(timeout))
                    .and_then(|r| r);
                    let _ = done.send(written.is_ok());
                    tracing::debug!(
                        sink.through = batch.through,
                        sink.ok = written.is_ok(),
                        "batch written"
                    );
                    (postgres, written)
                });
                writers.running.push_back((task, (through, head)));
                last_check = std::time::Instant::now();
                continue;
            }
            // The feed is at its head: everything in flight first.
            while !writers.running.is_empty() {
                self.finish_oldest(writers).await?;
            }
            if last_check.elapsed() >= CHECK_IDLE {
                // An idle sink still asks PostgreSQL where it is: a dead connection shows
                // as down rather than as caught up, and a PostgreSQL that lost its last
                // commits (a crash with synchronous_commit off, a restore) is written again
                // from the position it holds.
                let Some(postgres) = writers.idle.first() else {
                    return Err(SinkError::PositionMoved);
                };
                let held = self.timed(postgres.position()).await?;
                if held.map(|p| p.local_seq) != Some(batch.through) {
                    return Err(SinkError::PositionMoved);
                }
                last_check = std::time::Instant::now();
            }
            let now = now_ms();
            self.update(|s| {
                s.up = true;
                s.position = batch.through;
                s.head = batch.head.max(batch.through);
                s.last_success_ms = Some(now);
                s.last_error = None;
            });
        }
    }

    /// Waits for the oldest batch in flight and takes its connection back.
    async fn finish_oldest(&self, writers: &mut Writers) -> Result<(), SinkError> {
        let Some((task, (through, head))) = writers.running.pop_front() else {
            return Ok(());
        };
        let waited = std::time::Instant::now();
        let (postgres, written) = task.await.map_err(|e| {
            SinkError::Feed(crate::store::StoreError::Internal(format!(
                "the sink's writer task failed: {e}"
            )))
        })?;
        let written = written?;
        writers.idle.push(postgres);
        let waited = waited.elapsed().as_secs_f64();
        let now = now_ms();
        self.update(|s| {
            s.write_secs += waited;
            s.rows_written += written.rows;
            s.up = true;
            s.position = through;
            s.head = head.max(through);
            s.last_success_ms = Some(now);
            s.last_error = None;
        });
        Ok(())
    }

    async fn timed<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, SinkError>>,
    ) -> Result<T, SinkError> {
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| SinkError::Timeout(self.timeout))?
    }

    fn update(&self, f: impl FnOnce(&mut SinkState)) {
        f(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

/// The sink's two connections: idle ones, and the batches in flight (oldest first, each
/// with the position it reaches and the head it saw), and whether the newest one
/// committed.
struct Writers {
    idle: Vec<Postgres>,
    running: std::collections::VecDeque<(WriteTask, (u64, u64))>,
    committed: Option<tokio::sync::oneshot::Receiver<bool>>,
    /// Whether the last batch handed out creates a month partition (see
    /// `Postgres::creates_partitions`).
    previous_creates_partitions: bool,
}

/// A batch being written: gives its connection back with what it wrote.
type WriteTask =
    tokio::task::JoinHandle<(Postgres, Result<crate::store::postgres::Written, SinkError>)>;

/// Reads batches after `after` on a thread of its own and hands them over, a few ahead;
/// when the feed is idle, an empty batch every [`POLL`] carries the head. The thread ends
/// when the receiver is dropped.
fn spawn_reader(
    mut reader: crate::store::FeedReader,
    mut after: u64,
    batch_changes: u32,
) -> tokio::sync::mpsc::Receiver<Result<FeedBatch, crate::store::StoreError>> {
    let (sender, receiver) = tokio::sync::mpsc::channel(READ_AHEAD);
    let spawned = std::thread::Builder::new()
        .name("yizhan-sink-feed".into())
        .spawn(move || {
            loop {
                let batch = reader.read(after, batch_changes);
                let idle = match &batch {
                    Ok(batch) => {
                        after = batch.through;
                        batch.is_empty()
                    }
                    Err(_) => true,
                };
                let failed = batch.is_err();
                if sender.blocking_send(batch).is_err() || failed {
                    return;
                }
                if idle {
                    std::thread::sleep(POLL);
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the sink's reader thread");
    }
    receiver
}

/// What `yizhan status` and `yizhan sink check` report about PostgreSQL.
#[derive(Debug, Clone)]
pub struct SinkReport {
    pub server_version: String,
    pub schema: i32,
    pub schema_known: i32,
    pub position: Option<crate::store::postgres::FeedPosition>,
    /// The node's newest position in its change log.
    pub head: u64,
    pub identity: FeedIdentity,
}

impl SinkReport {
    /// Changes not yet in PostgreSQL, when PostgreSQL's position counts this node's log.
    pub fn lag(&self) -> Option<u64> {
        let position = self.position.as_ref()?;
        (position.node_id == self.identity.node_id
            && position.epoch == self.identity.epoch
            && position.generation == self.identity.generation)
            .then(|| self.head.saturating_sub(position.local_seq))
    }
}

/// Connects to PostgreSQL and reads what it holds about this node's feed, without
/// changing anything.
pub async fn report(store: &Store, url: &str, timeout: Duration) -> Result<SinkReport, SinkError> {
    let postgres = Postgres::connect(url, timeout).await?;
    let server_version = postgres.server_version().await?;
    let schema = postgres.schema_version().await?;
    let position = if schema >= 1 {
        postgres.position().await?
    } else {
        None
    };
    let reader = store.feed_reader()?;
    let identity = reader.identity()?;
    let head = reader.head()?;
    Ok(SinkReport {
        server_version,
        schema,
        schema_known: crate::store::postgres::PG_SCHEMA_VERSION,
        position,
        head,
        identity,
    })
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
pub(crate) mod tests;
