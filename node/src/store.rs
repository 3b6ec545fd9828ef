//! The SQLite store: the only module that contains SQL.
//!
//! One writer thread owns the only read-write connection and the cache of loaded Automerge
//! documents; every write is a closure sent to it. It commits several queued writes in one
//! transaction (group commit), each inside its own savepoint so one failing write never
//! takes the others with it, and answers each caller only after the commit, so nothing is
//! confirmed that a crash could lose. Reads run on a small pool of read-only connections
//! inside `spawn_blocking`, so neither side ever blocks the async runtime (crate-facts §4).
//!
//! Durability: WAL with `synchronous=FULL` on the writer. The foundation issue suggested
//! `NORMAL`, which in WAL mode may lose the last commits on power loss; a receipt already
//! printed must survive a power cut, so the writer syncs every commit and group commit keeps
//! the throughput (see docs/benchmarks.md). `store.synchronous = "normal"` is available for
//! nodes that accept the risk.

mod accounts;
mod appointments;
mod assessment;
mod attachments;
mod cache;
pub(crate) mod calendars;
mod cases;
mod checkpoint;
mod convergence;
mod counters;
mod departments;
mod drafts;
mod feed;
mod file;
mod follow_up;
mod hall;
mod ingest;
mod items;
mod migrations;
mod notices;
mod notification;
pub mod postgres;
mod rebuild;
mod snapshot;
mod staff;
mod stats;
mod supervision;
mod sync;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use yizhan_sync::domain::case::CaseError;
use yizhan_sync::domain::fee::FeeRefused;
use yizhan_sync::domain::item::ItemInvalid;
use yizhan_sync::domain::serial::SerialError;
use yizhan_sync::ids::{NodeId, Origin};

use crate::config::Synchronous;
use crate::i18n::{Param, Words};
use crate::identity::Identity;

pub use accounts::{NewUser, Role, TokenOwner, UserRecord, UserStanding};
pub use appointments::{
    Appointment, AppointmentStatus, BookingRefused, CancelRefused, NewAppointment,
};
pub use assessment::{Assessment, AssessmentBy, AssessmentFigures, AssessmentLine};
pub use calendars::PublishedYear;
pub use cases::{
    CaseDetail, CaseFilter, CaseListPage, CaseSearch, CaseSummary, EventView, LateStep, NewAction,
    Order, PartView, StepSummary,
};
pub use counters::Counter;
pub use drafts::{Draft, DraftEdit, Review, authoring_refused, draft_refused};
pub use feed::{
    FeedBatch, FeedCase, FeedEvent, FeedIdentity, FeedItem, FeedItemVersion, FeedReader,
    FeedRegistry, OriginSeq,
};
pub use file::{
    CleanClose, Copied, FileCheck, FileError, cases_held, check_file, check_header, clean_close,
    copy_database, identity_of, schema_version, start_new_epoch, take_clean_close,
};
pub use follow_up::{CaseSync, TransferRow, Transfers};
pub use hall::{Overview, OverviewLine, StationFigures, SubtreeNode};
pub use items::{ImportCounts, ItemFilter, ItemSummary};
pub use migrations::SCHEMA_VERSION;
pub use notices::{Correction, Issuer, StoredNotice, notice_content};
pub use notification::{NewNotification, NotificationView};
pub use rebuild::RebuildReport;
pub use staff::{NewStaff, StaffPatch, Standing, TreeAccount, staff_refused};
pub use stats::{
    EXPORT_CAP, ExportCase, FeeFigures, LevelCounts, Month, MonthFigures, OpenRectification,
    PeriodStats, Snapshot, Workload,
};
pub use supervision::{NewSupervision, SupervisionFilter, SupervisionView};
pub use sync::{Enrolled, PeerRefusal, PeerStatus, QuarantinedChange, Relation};
pub use writer::{Staff, WriteCtx};

/// How long a connection waits for a lock held by another process (a CLI command next to a
/// running node) before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// What the store needs to know about the node it belongs to.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// Who this node is: its signing key and its own record.
    pub identity: Identity,
    /// Automerge documents kept loaded in the writer.
    pub doc_cache: usize,
    /// Read-only connections.
    pub readers: usize,
    pub synchronous: Synchronous,
    /// Apply pending schema migrations. Only the process that serves the node migrates
    /// (it holds the data dir's lock); a CLI command beside a running node never changes
    /// the schema under it.
    pub migrate: bool,
}

/// Opening the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenStoreError {
    #[error("cannot open database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "database {path} was written by a newer yizhan (schema {found}, this build knows up to {known}); install the newer version or restore a backup made by this one"
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("migration to schema {version} failed: {source}")]
    Migration {
        version: i64,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "database belongs to node {found}, but this data dir's key is node {expected}; the key file and the database do not match"
    )]
    WrongNode { expected: NodeId, found: String },
    #[error("database setup failed: {0}")]
    Setup(#[from] rusqlite::Error),
    #[error("recomputing deadlines for the new calendar failed: {0}")]
    Calendar(String),
    #[error("cannot start the writer thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error(
        "database {path} is at schema {found} and this yizhan needs {needed}; start the node once with `yizhan serve` (it migrates at start), then run this command again"
    )]
    NeedsMigration {
        path: PathBuf,
        found: i64,
        needed: i64,
    },
}

/// A store operation failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("{what} not found")]
    NotFound { what: String },
    #[error(transparent)]
    Case(#[from] CaseError),
    #[error(transparent)]
    Item(#[from] ItemInvalid),
    #[error(transparent)]
    Serial(#[from] SerialError),
    /// The write clashes with what is stored (a user that exists, an appointment already
    /// started).
    #[error("{0}")]
    Conflict(Words),
    /// The caller may not do this (a child's enrollment with a bad code, say).
    #[error("{0}")]
    Forbidden(Words),
    #[error("{0}")]
    Invalid(Words),
    #[error("stored document {id} cannot be read: {message}")]
    Corrupt { id: String, message: String },
    /// Another connection (a CLI command beside the node) held the database past the
    /// busy timeout; trying again shortly works.
    #[error("database error: {0}")]
    Busy(Arc<rusqlite::Error>),
    /// The disk holding the database is full; nothing of the write was saved.
    #[error("database error: {0}")]
    DiskFull(Arc<rusqlite::Error>),
    #[error("database error: {0}")]
    Sqlite(Arc<rusqlite::Error>),
    #[error("the store is shut down")]
    Closed,
    /// The node itself failed; logged, and a 500 for API callers.
    #[error("internal error: {0}")]
    Internal(String),
    #[error(
        "the system clock ({wall}) is more than six hours behind the newest event this node recorded ({last}); \
         set the clock right (or find why it was ahead) before recording more",
        wall = crate::clock::rfc3339_cst(*wall_ms as i64),
        last = crate::clock::rfc3339_cst(*last_ms as i64)
    )]
    ClockBehind { wall_ms: u64, last_ms: u64 },
}

/// What kind of failure a [`StoreError`] is, which decides how the edges answer it (both
/// the API and the pages use [`ErrorClass::status`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    NotFound,
    /// The caller may not do this.
    Forbidden,
    /// The request is fine but the case or the stored data does not allow it now.
    Conflict,
    /// Something in the request is malformed (a cursor, a serial number).
    BadRequest,
    /// Something in the request breaks a rule of its content (a missing reason).
    Unprocessable,
    /// Try again shortly.
    Unavailable,
    /// The disk is full: nothing of the request was saved (507).
    DiskFull,
    /// The node itself failed; logged.
    Failed,
}

impl ErrorClass {
    /// The HTTP status both edges answer with.
    pub fn status(self) -> u16 {
        match self {
            ErrorClass::NotFound => 404,
            ErrorClass::Forbidden => 403,
            ErrorClass::Conflict => 409,
            ErrorClass::BadRequest => 400,
            ErrorClass::Unprocessable => 422,
            ErrorClass::Unavailable => 503,
            ErrorClass::DiskFull => 507,
            ErrorClass::Failed => 500,
        }
    }
}

impl StoreError {
    /// What kind of failure it is.
    pub fn class(&self) -> ErrorClass {
        use yizhan_sync::domain::serial::SerialError;
        match self {
            StoreError::NotFound { .. } => ErrorClass::NotFound,
            StoreError::Case(case) => match case {
                // Who may do what is the engine's rule: the same codes everywhere.
                case if case.is_forbidden() => ErrorClass::Forbidden,
                CaseError::MaterialsMissing { .. }
                | CaseError::Invalid { .. }
                | CaseError::UnknownMaterial { .. }
                | CaseError::UnknownSituation { .. }
                | CaseError::ItemCancelled { .. }
                | CaseError::NotYetEffective { .. }
                | CaseError::NotOnApplication { .. }
                | CaseError::ExtensionTooLong { .. }
                | CaseError::BadRating
                | CaseError::NotASide { .. }
                | CaseError::ResolutionIncomplete { .. }
                | CaseError::UnknownProcedure { .. }
                | CaseError::CountedProcedure { .. }
                | CaseError::WrongApplicant { .. }
                | CaseError::Text(_) => ErrorClass::Unprocessable,
                // A second payment or exemption of a line is the case's state; the rest is
                // what the request says.
                CaseError::Fee(
                    FeeRefused::AlreadyPaid { .. } | FeeRefused::AlreadyExempted { .. },
                ) => ErrorClass::Conflict,
                CaseError::Fee(_) => ErrorClass::Unprocessable,
                _ => ErrorClass::Conflict,
            },
            StoreError::Item(_) => ErrorClass::Unprocessable,
            StoreError::Serial(SerialError::Exhausted { .. } | SerialError::EpochsExhausted(_)) => {
                ErrorClass::Conflict
            }
            StoreError::Serial(_) | StoreError::Invalid(_) => ErrorClass::BadRequest,
            StoreError::Conflict(_) => ErrorClass::Conflict,
            StoreError::Forbidden(_) => ErrorClass::Forbidden,
            StoreError::Closed | StoreError::Busy(_) | StoreError::ClockBehind { .. } => {
                ErrorClass::Unavailable
            }
            StoreError::DiskFull(_) => ErrorClass::DiskFull,
            StoreError::Corrupt { .. } | StoreError::Sqlite(_) | StoreError::Internal(_) => {
                ErrorClass::Failed
            }
        }
    }

    /// What the error says, for the reader's language (the API's `error` code and the
    /// pages' message). Failures of the node itself say only that it failed.
    pub fn words(&self) -> Words {
        match self {
            StoreError::NotFound { .. } => Words::new("not_found"),
            StoreError::Case(e) => Words::from(e),
            StoreError::Item(e) => {
                Words::new("invalid_item").with("problems", Param::ItemProblems(e.problems.clone()))
            }
            StoreError::Serial(e) => Words::new(e.code()),
            StoreError::Conflict(words)
            | StoreError::Forbidden(words)
            | StoreError::Invalid(words) => words.clone(),
            StoreError::Closed => Words::new("shutting_down"),
            StoreError::Busy(_) => Words::new("busy"),
            StoreError::ClockBehind { wall_ms, last_ms } => Words::new("clock_behind")
                .text("wall", crate::clock::rfc3339_cst(*wall_ms as i64))
                .text("last", crate::clock::rfc3339_cst(*last_ms as i64)),
            StoreError::DiskFull(_) => Words::new("disk_full"),
            StoreError::Corrupt { .. } | StoreError::Sqlite(_) | StoreError::Internal(_) => {
                Words::new("internal")
            }
        }
    }

    /// Whether the error concerns the whole database (the disk, the file, the connection)
    /// rather than one row: then nothing of the transaction may be kept.
    pub fn is_fatal(&self) -> bool {
        use rusqlite::ErrorCode;
        match self {
            StoreError::Busy(_) | StoreError::DiskFull(_) | StoreError::Closed => true,
            StoreError::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(
                    ErrorCode::SystemIoFailure
                        | ErrorCode::CannotOpen
                        | ErrorCode::ReadOnly
                        | ErrorCode::DatabaseCorrupt
                        | ErrorCode::NotADatabase
                        | ErrorCode::OutOfMemory
                        | ErrorCode::OperationInterrupted
                )
            ),
            _ => false,
        }
    }
}

/// SQLite's errors, sorted into the cases callers tell apart, so no caller matches SQLite
/// error codes.
impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        match e.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
                StoreError::Busy(Arc::new(e))
            }
            Some(ErrorCode::DiskFull) => StoreError::DiskFull(Arc::new(e)),
            _ => StoreError::Sqlite(Arc::new(e)),
        }
    }
}

/// Handle to the store; cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish()
    }
}

struct Inner {
    path: PathBuf,
    writer: writer::WriterHandle,
    readers: ReaderPool,
    origin: Origin,
    signals: writer::Signals,
    /// The version vector as of a log generation (`Store::shared_vector`).
    vector_cache: Mutex<Option<(u64, Arc<yizhan_sync::feed::VersionVector>)>>,
    /// The calendar years held, as of the last commit (see `store::calendars`).
    calendars: Arc<std::sync::RwLock<Arc<calendars::Calendars>>>,
    /// This node's division: the calendar its own pages count on.
    division: yizhan_sync::domain::codes::DivisionCode,
    /// This node's own record, as the engine judges its acts.
    own: yizhan_sync::auth::NodeRecord,
    /// Checkpoints that failed on the checkpoint thread (`store::checkpoint`).
    checkpoint_failures: Arc<std::sync::atomic::AtomicU64>,
    /// Last, so it drops after every connection above has closed.
    close: ClosingMarker,
}

/// Leaves the clean-close marker (`store::take_clean_close`) when the store is dropped
/// after [`Store::shutdown`] finished: the writer joined and, since this field drops last,
/// every reader closed.
struct ClosingMarker {
    path: PathBuf,
    /// Set by [`Store::shutdown`] once the writer joined: with its clock's last time
    /// (`None` inside when the writer thread had ended abnormally).
    writer_joined: Mutex<Option<Option<yizhan_sync::domain::hlc::Hlc>>>,
}

impl Drop for ClosingMarker {
    fn drop(&mut self) {
        let joined = *self.writer_joined.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(clock) = joined {
            file::mark_clean_close(&self.path, clock);
        }
    }
}

/// The runs of the change log one commit advanced: (scope, origin, newest seq).
pub type Advanced = Arc<[(yizhan_sync::ids::Scope, Origin, u64)]>;

impl Store {
    /// Opens (creating if needed) the database at `path`, applies pending migrations and
    /// starts the writer. The first open records `options.node_id` as the owner.
    pub fn open(path: &Path, options: StoreOptions) -> Result<Store, OpenStoreError> {
        // From here on the file may change: a marker of an earlier clean close no longer
        // holds, whoever opens it.
        let clean = file::take_clean_close(path);
        let mut conn = Connection::open(path).map_err(|source| OpenStoreError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        configure(&conn, options.synchronous)?;
        // Each step of opening, timed at debug level: start-up must not grow with the data.
        let started = std::time::Instant::now();
        let step = |name: &str| {
            tracing::debug!(
                store.step = name,
                elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
                "opening the store"
            );
        };
        if options.migrate {
            migrations::run(&mut conn, path)?;
        } else {
            migrations::check_current(&conn, path)?;
        }
        step("migrations");
        let origin = writer::claim_identity(&mut conn, options.identity.node_id())?;
        let mut options = options;
        // The serial-number segment the enrolling hall gave this node (DESIGN §6).
        options.identity.record.segment = sync::own_segment(&conn, &options.identity.record)?;
        step("identity");
        let mut calendars_held = None;
        if options.migrate {
            calendars_held = Some(refresh_for_calendar(&mut conn)?);
            step("calendars");
            sync::sign_unsigned_changes(&mut conn, &options.identity, origin)?;
            step("signing");
            sync::pin_self(&conn, &options.identity.record)?;
            hall::keep_hall_indexes(&conn, options.identity.record.role.is_hall())?;
            step("hall indexes");
        }
        // From here on the WAL is copied into the database off the writer's thread.
        let checkpointer = checkpoint::Checkpointer::start(&mut conn, path, options.synchronous)?;
        let checkpoint_failures = checkpointer.failures();
        let readers = (0..options.readers.max(1))
            .map(|_| open_reader(path))
            .collect::<Result<Vec<_>, _>>()?;
        let signals = writer::Signals {
            outgoing: Arc::new(tokio::sync::Notify::new()),
            log: tokio::sync::broadcast::channel(1024).0,
            log_generation: Arc::default(),
        };
        let calendars = match calendars_held {
            Some(held) => held,
            None => calendars::Calendars::load(&conn)
                .map_err(|e| OpenStoreError::Calendar(e.to_string()))?,
        };
        let calendars = Arc::new(std::sync::RwLock::new(Arc::new(calendars)));
        let division = options.identity.record.division.clone();
        let own = options.identity.record.clone();
        step("readers");
        let writer = writer::spawn(
            writer::WriteConn { conn, checkpointer },
            origin,
            options.identity.clone(),
            options.doc_cache,
            signals.clone(),
            calendars.clone(),
            clean.and_then(|c| c.clock),
        )?;
        step("writer");
        Ok(Store {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer,
                readers: ReaderPool::new(readers),
                origin,
                signals,
                vector_cache: Mutex::new(None),
                calendars,
                division,
                own,
                checkpoint_failures,
                close: ClosingMarker {
                    path: path.to_path_buf(),
                    writer_joined: Mutex::new(None),
                },
            }),
        })
    }

    /// The calendar this node's own counting uses (work lists, appointments, the
    /// dashboard): the shipped years with those its halls published.
    pub fn calendar(&self) -> Arc<yizhan_sync::domain::calendar::Calendar> {
        self.calendar_for(&self.inner.division)
    }

    /// The calendar the deadlines of a case in `division` count on.
    pub fn calendar_for(
        &self,
        division: &yizhan_sync::domain::codes::DivisionCode,
    ) -> Arc<yizhan_sync::domain::calendar::Calendar> {
        self.inner
            .calendars
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .for_division(division)
    }

    /// The calendar years published by halls that this node holds.
    pub fn calendar_years(&self) -> Vec<PublishedYear> {
        self.inner
            .calendars
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .years()
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// This node's current origin (node id and epoch).
    pub fn origin(&self) -> Origin {
        self.inner.origin
    }

    /// This node's own record (role, division, serial segment): the node the engine
    /// asks `allowed_actions` for.
    pub fn own_record(&self) -> &yizhan_sync::auth::NodeRecord {
        &self.inner.own
    }

    /// Notified by the writer after each commit that holds changes to pass on: every
    /// local change, and what a child pushed that was new here. The sync driver waits on
    /// it, so a write travels soon without any handler telling it. Changes pulled from the
    /// parent, duplicates and writes that are no change (peer notes, accounts) stay
    /// silent, so the driver's own sessions never wake it again.
    pub fn outgoing(&self) -> Arc<tokio::sync::Notify> {
        self.inner.signals.outgoing.clone()
    }

    /// Runs `f` on the writer thread inside a savepoint of a group-committed transaction;
    /// resolves after the commit.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx) -> Result<T, StoreError> + Send + 'static,
    {
        self.inner.writer.run(f).await
    }

    /// Runs `f` on the writer in a transaction of its own (see `WriterHandle::run_alone`).
    async fn write_alone<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx) -> Result<T, StoreError> + Send + 'static,
    {
        self.inner.writer.run_alone(f).await
    }

    /// Runs `f` with a read-only connection on the blocking pool.
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let reader = inner.readers.take();
            f(reader.conn())
        })
        .await
        .map_err(|e| StoreError::Internal(format!("a read failed: {e}")))?
    }

    /// Checkpoints that failed since the store opened: the WAL grows until one succeeds
    /// (`/metrics`; each failure is logged).
    pub fn checkpoint_failures(&self) -> u64 {
        self.inner
            .checkpoint_failures
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Size of the database files (main file plus write-ahead log), in bytes.
    pub fn disk_bytes(&self) -> u64 {
        let main = std::fs::metadata(&self.inner.path)
            .map(|m| m.len())
            .unwrap_or(0);
        let mut wal = self.inner.path.clone().into_os_string();
        wal.push("-wal");
        main + std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0)
    }

    /// Waits for queued writes and stops the writer thread.
    pub async fn shutdown(&self) {
        let clock = self.inner.writer.shutdown().await;
        let mut joined = self
            .inner
            .close
            .writer_joined
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // A second shutdown finds the writer gone: it keeps the first one's clock.
        if joined.is_none() || clock.is_some() {
            *joined = Some(clock);
        }
    }
}

/// Deadlines are derived with the calendar shipped in the binary and the years the halls
/// published (see `store::calendars`). When an upgrade ships different figures, or the
/// years held changed without the writer noticing (a restore), every derived row is
/// recomputed once at start, so no open case keeps deadlines from the old figures.
fn refresh_for_calendar(conn: &mut Connection) -> Result<calendars::Calendars, OpenStoreError> {
    let held =
        calendars::Calendars::load(conn).map_err(|e| OpenStoreError::Calendar(e.to_string()))?;
    let shipped = held.fingerprint();
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let recorded: Option<String> = rusqlite::OptionalExtension::optional(tx.query_row(
        "SELECT value FROM meta WHERE key = 'calendar'",
        [],
        |r| r.get(0),
    ))?;
    if recorded.as_deref() != Some(shipped.as_str()) {
        let has_cases: bool =
            tx.query_row("SELECT EXISTS (SELECT 1 FROM cases)", [], |r| r.get(0))?;
        if has_cases {
            let report = rebuild::rebuild_in_transaction(&tx)
                .map_err(|e| OpenStoreError::Calendar(e.to_string()))?;
            tracing::info!(
                calendar.from = recorded.as_deref().unwrap_or("none"),
                calendar.to = %shipped,
                rebuild.cases = report.cases,
                rebuild.rows_differing = report.rows_differing,
                "calendar changed: recomputed every deadline"
            );
        }
        // Supervision notices' due dates are counted when the sink reads them: a new
        // calendar makes it write them (and so its whole feed) again.
        if feed::supervision_due_may_change(&tx, None)? {
            feed::bump_generation(&tx)?;
        }
        tx.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('calendar', ?1)",
            [&shipped],
        )?;
    }
    tx.commit()?;
    Ok(held)
}

fn configure(conn: &Connection, synchronous: Synchronous) -> Result<(), rusqlite::Error> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // The writer's statements stay prepared: a case row is updated in the columns that
    // changed (`writer::write_case_rows`), one statement per set of columns, beside the
    // few dozen others a write runs; rusqlite's default of 16 would prepare them again
    // and again.
    conn.set_prepared_statement_cache_capacity(256);
    // The query planner stability guarantee: a cached statement keeps its plan whatever is
    // bound to it. Without it this SQLite build marks statements to be prepared again on
    // every new binding (the change log's run lookup was re-parsed on each local write:
    // an eighth of the writer's time under `bench store`); our statements are written for
    // their indexes, not for the planner to reconsider per value.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    // 4 KiB pages. A new case lands on a random page in each of the station's search
    // indexes (query code, identity number, phone), and a commit writes each page it
    // dirtied whole, to the WAL and again at the checkpoint: 8 KiB pages wrote a third more
    // per case for the same disk, now that a document is a snapshot plus its changes
    // rather than re-saved per change (docs/benchmarks.md). Only takes effect on a new,
    // empty database (before WAL mode writes its header); an older 8 KiB file keeps its
    // pages.
    conn.execute_batch("PRAGMA page_size = 4096;")?;
    // journal_mode returns a row, so it is queried rather than executed.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(journal.mode = %mode, "database could not switch to WAL");
    }
    set_synchronous(conn, synchronous)?;
    conn.execute_batch(
        "PRAGMA foreign_keys = ON;
         -- Savepoint journals (one per write in a group) stay in memory: on disk they
         -- tripled the bytes written per case (docs/benchmarks.md).
         PRAGMA temp_store = MEMORY;
         -- 8 MiB of page cache for the writer, so a group's dirty pages never spill early.
         PRAGMA cache_size = -8192;",
    )?;
    // Checkpoint every 16 MiB of WAL rather than SQLite's 4: pages written again and
    // again (index tails) are copied into the database once per checkpoint. The setting
    // counts pages, and a database made before 4 KiB pages has 8 KiB ones. Once the store
    // is open, the writer's checkpoints run on a thread of their own at the same
    // threshold (`store::checkpoint`).
    let pages = checkpoint_pages(conn)?;
    conn.execute_batch(&format!("PRAGMA wal_autocheckpoint = {pages};"))?;
    // A WAL file keeps the length it grew to: after a burst that outran the checkpoints
    // (a hall's catch-up, up to four thresholds) or a long read that kept it from
    // starting over, 64 MiB or more would stay on a small PC's disk until the node
    // stops. With a limit, the first commit after the WAL starts over cuts the file back
    // to one threshold.
    conn.execute_batch(&format!(
        "PRAGMA journal_size_limit = {WAL_CHECKPOINT_BYTES};"
    ))
}

/// The configured durability on `conn`: the writer's, and its checkpoint thread's (a
/// checkpoint syncs the WAL before it copies and the database after, unless OFF).
fn set_synchronous(conn: &Connection, synchronous: Synchronous) -> rusqlite::Result<()> {
    conn.execute_batch(match synchronous {
        Synchronous::Full => "PRAGMA synchronous = FULL;",
        Synchronous::Normal => "PRAGMA synchronous = NORMAL;",
    })
}

/// [`WAL_CHECKPOINT_BYTES`] in pages of the database `conn` holds.
fn checkpoint_pages(conn: &Connection) -> Result<i64, rusqlite::Error> {
    let page_size: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    Ok(WAL_CHECKPOINT_BYTES / page_size.max(512))
}

/// The WAL's growth at which it is copied into the database (see `configure` and
/// `store::checkpoint`).
const WAL_CHECKPOINT_BYTES: i64 = 16 << 20;

fn open_reader(path: &Path) -> Result<Connection, OpenStoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(|source| OpenStoreError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // As for the writer (see `configure`): the pages' list queries keep their plans.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    Ok(conn)
}

/// A fixed set of read-only connections; a reader waits when all are in use.
struct ReaderPool {
    free: Mutex<Vec<Connection>>,
    available: Condvar,
}

impl ReaderPool {
    fn new(connections: Vec<Connection>) -> ReaderPool {
        ReaderPool {
            free: Mutex::new(connections),
            available: Condvar::new(),
        }
    }

    /// A connection, returned to the pool when the guard drops, even if the read panics.
    fn take(&self) -> PooledReader<'_> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(conn) = free.pop() {
                return PooledReader {
                    pool: self,
                    conn: Some(conn),
                };
            }
            free = self.available.wait(free).unwrap_or_else(|e| e.into_inner());
        }
    }
}

struct PooledReader<'a> {
    pool: &'a ReaderPool,
    conn: Option<Connection>,
}

impl PooledReader<'_> {
    fn conn(&self) -> &Connection {
        self.conn.as_ref().expect("present until dropped")
    }
}

impl Drop for PooledReader<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool
                .free
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(conn);
            self.pool.available.notify_one();
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
