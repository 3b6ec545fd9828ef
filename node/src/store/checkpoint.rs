//! The WAL is copied into the database (SQLite's checkpoint) on a thread of its own, not
//! by the writer on the commit that crossed the threshold.
//!
//! A checkpoint copies up to 16 MiB of pages and syncs the database file. On the writer it
//! held up every write queued behind it, a counter's receipt or a received batch: a
//! sixth of the writer's time in a hall's catch-up (profiled, docs/benchmarks.md).
//!
//! The writer's WAL hook, called after each commit with the WAL's length in pages, wakes
//! this thread each time the WAL has grown by [`WAL_CHECKPOINT_BYTES`]; the thread runs a
//! PASSIVE checkpoint on its own connection, which copies what no reader still needs
//! while the writer goes on appending. The WAL starts over at the first write after a
//! checkpoint that copied everything. Should the writer never pause long enough for that
//! (the WAL reaches [`LIMIT`] times the threshold), the writer waits for one checkpoint
//! between two of its writes, so the WAL stays bounded; and should this thread be gone,
//! the writer checkpoints as SQLite would have.
//!
//! [`WAL_CHECKPOINT_BYTES`]: super::WAL_CHECKPOINT_BYTES

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::{OpenStoreError, Synchronous};

/// How many thresholds the WAL may grow to before the writer waits for a checkpoint.
const LIMIT: i32 = 4;

/// How long the writer waits for that checkpoint's answer before it goes on (and says
/// so); before that, handing the ask over may wait for the checkpoint under way.
const WAIT: Duration = Duration::from_secs(60);

/// What the writer asks of the checkpoint thread.
enum Ask {
    /// The WAL grew by a threshold: copy it when you can.
    Copy,
    /// The WAL reached its limit: copy it now and answer; the writer waits.
    CopyAndAnswer(SyncSender<()>),
}

/// The checkpoint thread; it ends when the writer's connection drops its hook.
#[derive(Debug)]
pub(super) struct Checkpointer {
    thread: Option<JoinHandle<()>>,
    /// Checkpoints run on the thread (tests read it).
    runs: Arc<AtomicU64>,
    /// Checkpoints that failed (`/metrics`): the WAL then grows until one succeeds.
    failures: Arc<AtomicU64>,
}

impl Checkpointer {
    /// Installs the hook on the writer's connection `writer` and starts the thread on its
    /// own connection to `path`, syncing as the writer does.
    pub(super) fn start(
        writer: &mut Connection,
        path: &Path,
        synchronous: Synchronous,
    ) -> Result<Checkpointer, OpenStoreError> {
        let due = super::checkpoint_pages(writer)?;
        Checkpointer::start_every(writer, path, synchronous, due as i32)
    }

    /// [`Checkpointer::start`] with a threshold of `due` pages.
    pub(super) fn start_every(
        writer: &mut Connection,
        path: &Path,
        synchronous: Synchronous,
        due: i32,
    ) -> Result<Checkpointer, OpenStoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| OpenStoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        // The same durability as the writer's.
        super::set_synchronous(&conn, synchronous)?;
        let (asks, queue) = sync_channel::<Ask>(1);
        let runs = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(AtomicU64::new(0));
        let thread = {
            let (runs, failures) = (runs.clone(), failures.clone());
            std::thread::Builder::new()
                .name("yizhan-checkpoint".into())
                .spawn(move || checkpoint_loop(conn, queue, &runs, &failures))
                .map_err(OpenStoreError::Thread)?
        };
        Hook::new(asks, due).install(writer)?;
        Ok(Checkpointer {
            thread: Some(thread),
            runs,
            failures,
        })
    }

    /// The count of failed checkpoints, shared with the store for `/metrics`.
    pub(super) fn failures(&self) -> Arc<AtomicU64> {
        self.failures.clone()
    }

    /// Checkpoints the thread has run.
    #[cfg(test)]
    pub(super) fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    /// Removes the hook from the writer's connection, which ends the thread, and waits
    /// for it: the writer then checkpoints the rest itself as it closes.
    pub(super) fn stop(mut self, writer: &mut Connection) {
        let _ = writer.wal_hook(None::<fn(&mut rusqlite::hooks::Wal, i32) -> rusqlite::Result<()>>);
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the checkpoint thread panicked");
        }
        tracing::debug!(
            checkpoints = self.runs.load(Ordering::Relaxed),
            "checkpoint thread stopped"
        );
    }
}

/// The writer's side: when to ask, and when to wait.
struct Hook {
    asks: SyncSender<Ask>,
    due: i32,
    /// The WAL's length (pages) when the thread was last asked to copy, and when the
    /// writer last waited; both start over with the WAL.
    asked_at: i32,
    waited_at: i32,
    last: i32,
    /// The writer waited for a checkpoint and the WAL has not started over since (a reader
    /// may have held its frames): ask again after every commit, as SQLite's own hook
    /// would, rather than only after four more thresholds.
    behind: bool,
}

impl Hook {
    fn new(asks: SyncSender<Ask>, due: i32) -> Hook {
        Hook {
            asks,
            due: due.max(1),
            asked_at: 0,
            waited_at: 0,
            last: 0,
            behind: false,
        }
    }

    /// Makes this the WAL hook of `writer` (SQLite calls it after each commit).
    fn install(mut self, writer: &mut Connection) -> rusqlite::Result<()> {
        writer.wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, pages: i32| {
            self.committed(wal, pages);
            Ok(())
        }))
    }

    fn committed(&mut self, wal: &mut rusqlite::hooks::Wal, pages: i32) {
        if pages < self.last {
            // The WAL started over.
            self.asked_at = 0;
            self.waited_at = 0;
            self.behind = false;
        }
        self.last = pages;
        if pages
            >= self
                .waited_at
                .saturating_add(LIMIT.saturating_mul(self.due))
        {
            self.waited_at = pages;
            self.asked_at = pages;
            self.behind = true;
            let (answer, answered) = sync_channel(1);
            let waited = self
                .asks
                .send(Ask::CopyAndAnswer(answer))
                .is_ok()
                .then(|| answered.recv_timeout(WAIT));
            match waited {
                Some(Ok(())) => {}
                Some(Err(_)) => tracing::warn!(
                    wal.pages = pages,
                    "the checkpoint thread did not answer in time; the writer goes on"
                ),
                None => self.copy_here(wal, pages),
            }
        } else if self.behind || pages >= self.asked_at.saturating_add(self.due) {
            self.asked_at = pages;
            match self.asks.try_send(Ask::Copy) {
                // Full: the thread has an ask queued that it has not taken yet.
                Ok(()) | Err(TrySendError::Full(_)) => {}
                Err(TrySendError::Disconnected(_)) => self.copy_here(wal, pages),
            }
        }
    }

    /// The thread is gone (it can only have panicked): checkpoint as SQLite would have.
    fn copy_here(&self, wal: &mut rusqlite::hooks::Wal, pages: i32) {
        tracing::warn!(
            wal.pages = pages,
            "the checkpoint thread is gone; the writer checkpoints"
        );
        if let Err(e) = wal.checkpoint() {
            tracing::warn!(error = %e, "checkpoint failed");
        }
    }
}

fn checkpoint_loop(conn: Connection, queue: Receiver<Ask>, runs: &AtomicU64, failures: &AtomicU64) {
    while let Ok(ask) = queue.recv() {
        let answer = match ask {
            Ask::Copy => None,
            Ask::CopyAndAnswer(answer) => Some(answer),
        };
        // PASSIVE: copies what it can without waiting for readers or the writer.
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        }) {
            // Busy: another connection held the checkpoint lock; the next ask tries again.
            Ok((busy, wal_pages, copied)) => {
                tracing::trace!(busy, wal.pages = wal_pages, copied, "checkpoint");
            }
            Err(e) => {
                failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "checkpoint failed; the WAL grows until one succeeds");
            }
        }
        runs.fetch_add(1, Ordering::Relaxed);
        if let Some(answer) = answer {
            let _ = answer.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wal_len(path: &Path) -> u64 {
        std::fs::metadata(path.with_extension("db-wal")).map_or(0, |m| m.len())
    }

    /// Writes `rows` rows of 30,000 bytes (eight pages each), one commit each; returns the
    /// largest the WAL file grew to.
    fn write_rows(writer: &Connection, path: &Path, rows: i64) -> u64 {
        let mut largest = 0;
        for i in 0..rows {
            writer
                .execute(
                    "INSERT INTO t (id, bytes) VALUES (?1, zeroblob(30000))",
                    [i],
                )
                .unwrap();
            largest = largest.max(wal_len(path));
        }
        largest
    }

    fn open(path: &Path) -> Connection {
        let conn = Connection::open(path).unwrap();
        conn.execute_batch(
            "PRAGMA page_size = 4096; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
             CREATE TABLE t (id INTEGER PRIMARY KEY, bytes BLOB);",
        )
        .unwrap();
        conn
    }

    /// 2,000 commits of 8 pages each (64 MB of WAL written), with a threshold of 64
    /// pages: the thread runs the checkpoints, and the WAL file never holds more than the
    /// limit and a commit, though the writer never pauses.
    #[test]
    fn the_thread_checkpoints_and_the_wal_stays_bounded_under_steady_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut writer = open(&path);
        let checkpointer =
            Checkpointer::start_every(&mut writer, &path, Synchronous::Normal, 64).unwrap();
        let largest = write_rows(&writer, &path, 2_000);
        assert!(checkpointer.runs() >= 10, "{} runs", checkpointer.runs());
        // Four thresholds ([`LIMIT`]), one more, and a commit's pages.
        let bound = (5 * 64 + 16) * (4096 + 24);
        assert!(
            largest <= bound,
            "WAL reached {largest} bytes, bound {bound}"
        );
        checkpointer.stop(&mut writer);
        // Every row is in the database once the WAL is copied and gone.
        writer
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
        assert_eq!(wal_len(&path), 0);
        let rows: i64 = writer
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 2_000);
    }

    /// Without the thread (it panicked), the writer checkpoints itself: the WAL stays
    /// bounded all the same.
    #[test]
    fn without_the_thread_the_writer_checkpoints_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut writer = open(&path);
        let (asks, queue) = sync_channel::<Ask>(1);
        drop(queue);
        Hook::new(asks, 64).install(&mut writer).unwrap();
        let largest = write_rows(&writer, &path, 500);
        let bound = (64 + 16) * (4096 + 24);
        assert!(
            largest <= bound,
            "WAL reached {largest} bytes, bound {bound}"
        );
    }
}
