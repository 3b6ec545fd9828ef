//! The writer thread: owner of the read-write connection and the document cache.
//!
//! Callers send closures; the thread runs whatever is queued (up to [`MAX_GROUP`]) in one
//! `BEGIN IMMEDIATE` transaction, each closure in its own savepoint (none when it is alone),
//! commits once, and only then answers. A closure that fails (or panics) is rolled back to
//! its savepoint (or the transaction) and the documents it touched are dropped from the
//! cache, so the cache never holds a change that is not in the database. A received batch
//! always runs alone ([`WriterHandle::run_alone`]).

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, RwLock};
use std::thread::JoinHandle;

use automerge::Automerge;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::{Notify, oneshot};
use yizhan_sync::doc::{CaseRow, EventRow, ItemRow};
use yizhan_sync::domain::calendar::Calendar;
use yizhan_sync::domain::codes::DivisionCode;
use yizhan_sync::domain::hlc::{Hlc, HlcClock};
use yizhan_sync::domain::item::Item;
use yizhan_sync::envelope::{self, Envelope};
use yizhan_sync::ids::{DocId, DocKind, NodeId, Origin, Scope};

use super::cache::DocCache;
use super::calendars::Calendars;
use super::snapshot;
use super::{OpenStoreError, StoreError};
use crate::identity::Identity;

/// Most writes committed together. Bounds the latency a write waits behind others.
const MAX_GROUP: usize = 256;

/// How far the wall clock may lag behind the newest recorded event time before local
/// writes are refused. Within it, events keep the newest time and dates stay right but for
/// the hours around midnight; beyond it, dates on receipts would be wrong.
const MAX_CLOCK_LAG_MS: u64 = 6 * 3_600_000;

/// The staff member a write is made for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Staff {
    pub username: String,
    pub counter: String,
    /// What the engine lets them do (`engine::may`).
    pub role: super::Role,
}

impl From<Staff> for yizhan_sync::engine::Person {
    fn from(staff: Staff) -> yizhan_sync::engine::Person {
        yizhan_sync::engine::Person::Staff {
            username: staff.username,
            counter: staff.counter,
            role: staff.role,
            // Resolved from the tree account where it matters (`Store::person`).
            chief: false,
        }
    }
}

/// What a write closure works with on the writer thread.
pub struct WriteCtx {
    pub(super) conn: Connection,
    /// The thread that copies the WAL into the database (`store::checkpoint`); taken and
    /// stopped as the writer ends.
    checkpointer: Option<super::checkpoint::Checkpointer>,
    cache: DocCache,
    pub(super) origin: Origin,
    pub(super) division: DivisionCode,
    pub(super) identity: Identity,
    clock: HlcClock,
    /// Documents changed by the running closure; dropped from the cache if it fails.
    touched: Vec<DocId>,
    /// When the clock lag was last logged: at most every ten minutes, not per write.
    clock_lag_warned: Option<std::time::Instant>,
    /// Documents the running closure created; stored with a plain INSERT, so an id that
    /// already exists is an error, never an overwrite.
    created: Vec<DocId>,
    /// Published items by id and by implementation code, so receiving an application
    /// does not parse the item's JSON each time. Cleared whenever a write fails.
    items: HashMap<String, Arc<Item>>,
    /// Whether the running closure added changes this node should pass on (see
    /// [`WriteCtx::pass_on`]).
    pass_on: bool,
    /// The runs of the change log the running closure advanced (see
    /// [`WriteCtx::advanced`]).
    advanced: Vec<(Scope, Origin, u64)>,
    /// What the writer tells after a commit.
    signals: Signals,
    /// The calendar years held, as of the running transaction; readers get them once
    /// the transaction commits (see [`WriteCtx::calendars_changed`]).
    calendars: Arc<Calendars>,
    shared_calendars: Arc<RwLock<Arc<Calendars>>>,
    /// Whether the running job changed the calendar years.
    calendars_touched: bool,
    /// Whether received documents' rows are each written inside a savepoint (the second
    /// attempt at a batch whose first failed; see `Store::receive_from`).
    pub(super) isolate_rows: bool,
    /// The thread a received batch of cases is applied on while this one writes
    /// (`store::ingest`); `None`: this thread applies every batch alone.
    pub(super) applier: Option<super::ingest::Applier>,
    /// Batches applied on two threads since the store opened (tests check the path ran).
    pub(super) two_thread_batches: u64,
}

/// What the writer tells others after a commit, so nobody polls the database.
#[derive(Clone, Debug)]
pub(super) struct Signals {
    /// Notified after each commit that holds changes to pass on: it wakes the sync driver.
    pub(super) outgoing: Arc<Notify>,
    /// Every commit that appended to the change log, with the runs it advanced.
    pub(super) log: tokio::sync::broadcast::Sender<super::Advanced>,
    /// Raised after each such commit (before it is told on `log`), so a cached vector of
    /// an older generation is never used.
    pub(super) log_generation: Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for WriteCtx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteCtx")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl WriteCtx {
    fn cache_clear_items(&mut self) {
        self.items.clear();
    }

    /// The calendar the deadlines of a case in `scope` count on.
    pub(super) fn calendar_for(&self, scope: &Scope) -> Arc<Calendar> {
        self.calendars.for_division(&scope.division())
    }

    /// After a calendar year document was created or changed in this transaction: reads
    /// the years again and derives again every case whose dates may count on a changed
    /// year, so no open case keeps deadlines from the old figures.
    pub(super) fn calendars_changed(&mut self) -> Result<(), StoreError> {
        let fresh = Calendars::load(&self.conn)?;
        let changed = fresh.first_change(&self.calendars);
        self.calendars = Arc::new(fresh);
        self.calendars_touched = true;
        if let Some(year) = changed {
            let cases = super::calendars::rederive_cases(&self.conn, &self.calendars, year)?;
            if cases > 0 || super::feed::supervision_due_may_change(&self.conn, Some(year))? {
                super::feed::bump_generation(&self.conn)?;
            }
            tracing::info!(
                calendar.from_year = year,
                calendar.version = %self.calendars.fingerprint(),
                cases,
                "calendar years changed; deadlines derived again"
            );
        }
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES ('calendar', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [self.calendars.fingerprint()],
        )?;
        Ok(())
    }

    /// The calendar years held, as of the running transaction.
    pub(super) fn calendar_years(&self) -> Vec<super::calendars::PublishedYear> {
        self.calendars.years()
    }

    /// After a rollback: the calendar years are what the database holds again.
    fn reload_calendars(&mut self) {
        match Calendars::load(&self.conn) {
            Ok(calendars) => self.calendars = Arc::new(calendars),
            Err(e) => tracing::error!(error = %e, "reading the calendar years after a rollback"),
        }
    }

    /// Marks the running write as one whose changes should travel: after its group
    /// commits, the writer wakes the sync driver. Every local change is marked (see
    /// [`WriteCtx::persist_local_change`]); received ones only when a child pushed them.
    pub(super) fn pass_on(&mut self) {
        self.pass_on = true;
    }

    /// Notes that the running write advanced a run of the change log to `seq`: once the
    /// group commits, everyone who follows the log hears of it (`Store::subscribe_log`).
    pub(super) fn advanced(&mut self, scope: &Scope, origin: &Origin, seq: u64) {
        self.advanced.push((scope.clone(), *origin, seq));
    }

    /// Drops cached items after a received catalog change.
    pub(super) fn forget_items(&mut self) {
        self.items.clear();
    }

    /// Takes note of an event time seen in received changes, unless it is implausibly far
    /// ahead of this node's clock (a peer with a wrong clock must not drag this one along).
    pub(super) fn observe(&mut self, seen: Hlc) {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        if seen.unix_ms() <= wall + 5 * 60_000 {
            self.clock.observe(seen);
        }
    }

    /// Takes document `id` out of the cache (or loads it) to change it outside the cache,
    /// with how many changes it took since its snapshot; `None` if this node does not have
    /// it. Hand it back with [`WriteCtx::put_back`].
    pub(super) fn take_doc(&mut self, id: &DocId) -> Result<Option<(Automerge, u32)>, StoreError> {
        match self.doc_mut(id) {
            Ok(_) => Ok(self.cache.remove_entry(id)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Takes document `id` out of the cache if it is there, without loading it.
    pub(super) fn take_cached(&mut self, id: &DocId) -> Option<(Automerge, u32)> {
        let taken = self.cache.remove_entry(id)?;
        self.touched.push(id.clone());
        Some(taken)
    }

    /// Returns a document taken with [`WriteCtx::take_doc`] (it leaves the cache again if
    /// the write fails), with how many changes it took since its snapshot.
    pub(super) fn put_back(&mut self, id: DocId, doc: Automerge, since_snapshot: u32) {
        self.touched.push(id.clone());
        self.cache.insert_since(id, doc, since_snapshot);
    }

    /// The calendar years held, as of the running transaction: what a received batch's
    /// rows are derived on, on whichever thread derives them (`store::ingest`).
    pub(super) fn calendars(&self) -> Arc<Calendars> {
        self.calendars.clone()
    }

    /// A published item by its id or implementation code.
    pub(super) fn item(&mut self, key: &str) -> Result<Arc<Item>, StoreError> {
        if let Some(item) = self.items.get(key) {
            return Ok(item.clone());
        }
        let body: Option<String> = self
            .conn
            .prepare_cached("SELECT body_json FROM items WHERE id = ?1 OR impl_code = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?;
        let body = body.ok_or_else(|| StoreError::NotFound {
            what: format!("item {key}"),
        })?;
        let item: Item = serde_json::from_str(&body).map_err(|e| StoreError::Corrupt {
            id: key.to_string(),
            message: e.to_string(),
        })?;
        let item = Arc::new(item);
        self.remember_item(item.clone());
        Ok(item)
    }

    pub(super) fn remember_item(&mut self, item: Arc<Item>) {
        self.items
            .insert(Item::doc_id_for(&item.impl_code).to_string(), item.clone());
        self.items.insert(item.impl_code.to_string(), item);
    }

    /// A new HLC time for a local event at wall time `wall_ms`.
    ///
    /// Event times give acceptance dates, serial numbers and deadlines, and they never go
    /// backwards. If the wall clock is far behind the newest time this node has recorded
    /// (the clock was set back, or was once set far ahead), recording would stamp every new
    /// event with that old future time; the write is refused until a person fixes the clock.
    pub(super) fn tick(&mut self, wall_ms: u64) -> Result<Hlc, StoreError> {
        let last_ms = self.clock.last().unix_ms();
        if last_ms > wall_ms + MAX_CLOCK_LAG_MS {
            return Err(StoreError::ClockBehind { wall_ms, last_ms });
        }
        let lagging = last_ms > wall_ms + 5 * 60_000;
        let due = self
            .clock_lag_warned
            .is_none_or(|at| at.elapsed() >= std::time::Duration::from_secs(600));
        if lagging && due {
            self.clock_lag_warned = Some(std::time::Instant::now());
            tracing::warn!(
                clock.wall_ms = wall_ms,
                clock.last_ms = last_ms,
                "the system clock is behind the newest recorded event time; events keep the newer time"
            );
        }
        Ok(self.clock.tick(wall_ms))
    }

    /// The document `id`, from the cache or the database, ready to change.
    pub(super) fn doc_mut(&mut self, id: &DocId) -> Result<&mut Automerge, StoreError> {
        if self.cache.get_mut(id).is_none() {
            let (doc, since) =
                snapshot::load(&self.conn, id.as_str())?.ok_or_else(|| StoreError::NotFound {
                    what: format!("document {id}"),
                })?;
            self.cache.insert_since(id.clone(), doc, since);
        }
        self.touched.push(id.clone());
        Ok(self.cache.get_mut(id).expect("just inserted"))
    }

    /// The case `id`, ready to change. An id that names a document of another kind (an
    /// item, a registry) is not found, like an id that names nothing: a caller never
    /// reads an item as a case.
    pub(super) fn case_doc_mut(&mut self, id: &DocId) -> Result<&mut Automerge, StoreError> {
        let kind: Option<String> = self
            .conn
            .prepare_cached("SELECT kind FROM documents WHERE id = ?1")?
            .query_row([id.as_str()], |r| r.get(0))
            .optional()?;
        if kind.is_some_and(|kind| kind != DocKind::Case.as_str()) {
            return Err(StoreError::NotFound {
                what: format!("case {id}"),
            });
        }
        self.doc_mut(id)
    }

    /// Adds a document created by this write to the cache.
    pub(super) fn insert_doc(&mut self, id: DocId, doc: Automerge) {
        self.touched.push(id.clone());
        self.created.push(id.clone());
        self.cache.insert(id, doc);
    }

    /// Saves a document this node just changed and records its newest local change in the
    /// change log under this node's next sequence number. The change is to pass on, so the
    /// sync driver is woken once it is committed.
    pub(super) fn persist_local_change(
        &mut self,
        id: &DocId,
        kind: DocKind,
        scope: &Scope,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let origin = self.origin;
        let doc = self.cache.get_mut(id).ok_or_else(|| StoreError::NotFound {
            what: format!("document {id}"),
        })?;
        let change = doc.get_last_local_change().ok_or_else(|| {
            StoreError::Internal(format!("document {id} has no local change to record"))
        })?;
        let change_hash = change.hash();
        // Deflated when over 256 bytes; still a valid change chunk for `Change::from_bytes`
        // and `load_incremental`.
        let change_bytes = change.raw_bytes().to_vec();
        let seq: i64 = self
            .conn
            .prepare_cached(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM changes WHERE origin_node = ?1 AND origin_epoch = ?2",
            )?
            .query_row(params![&origin.node.0[..], origin.epoch], |r| r.get(0))?;
        let envelope = Envelope {
            origin,
            seq: seq as u64,
            prev: 0,
            doc: id.clone(),
            kind,
            scope: scope.clone(),
            hash: change_hash.0,
            change: change_bytes,
            refused: None,
        };
        let mut envelope = envelope;
        let run = super::sync::run_state(&self.conn, scope, &origin)?;
        envelope.prev = run.seq;
        let chain = envelope::chain_next(&run.chain, &envelope);
        let signature = envelope::sign(&self.identity.key, &origin, envelope.seq, &chain);
        super::sync::insert_change(&self.conn, &envelope, &chain, Some(&signature))?;
        // The change is in the log; the snapshot follows only when it pays off (a new
        // case starts with an empty one).
        let created = self.created.contains(id);
        let since = self.cache.since_snapshot(id).map_or(0, |s| *s) + 1;
        let since = if snapshot::due(kind, since) {
            let doc = self.cache.get_mut(id).ok_or_else(|| StoreError::NotFound {
                what: format!("document {id}"),
            })?;
            snapshot::write(&self.conn, id, kind, scope, doc, created, now_ms as i64)?;
            0
        } else {
            if created {
                snapshot::write_empty(&self.conn, id, kind, scope, now_ms as i64)?;
            }
            since
        };
        // Inserted once; a later change in the same write (a sub-case accepted as it is
        // made) updates it.
        if created {
            self.created.retain(|c| c != id);
        }
        if let Some(s) = self.cache.since_snapshot(id) {
            *s = since;
        }
        self.advanced(scope, &origin, envelope.seq);
        self.pass_on();
        Ok(())
    }
}

/// Writes the derived rows of a case into `{prefix}cases` and `{prefix}case_events`
/// (`prefix` is empty for the live tables and `rebuilt_` while rebuilding).
///
/// A combined case's row (并联审批) depends on its parts as this node holds them: writing
/// the whole's or a part's rows writes the whole's again from its document and its parts
/// (`cases::rows_of_combined`), whatever order they arrive in. `calendar` is the case's.
pub(super) fn store_case_rows(
    conn: &Connection,
    prefix: &str,
    row: &CaseRow,
    events: &[EventRow],
    calendar: &Calendar,
) -> Result<(), StoreError> {
    write_case_rows(conn, prefix, row, events)?;
    let parent = match &row.part_of {
        Some((parent, _)) => Some(parent.as_str()),
        None if row.combined_parent => Some(row.id.as_str()),
        None => None,
    };
    if let Some(parent) = parent
        && let Some((row, events)) = super::cases::rows_of_combined(conn, prefix, parent, calendar)?
    {
        write_case_rows(conn, prefix, &row, &events)?;
    }
    Ok(())
}

/// The columns of `cases` that later changes to a case may change, in the order of
/// [`updatable`]; the others (the case's identity, item and applicant) are fixed when it
/// is received.
const UPDATABLE: [&str; 27] = [
    "status",
    "conflict",
    "serial_no",
    "accepted_on",
    "committed_due",
    "legal_due",
    "yellow_on",
    "red_on",
    "breach_on",
    "clock_stopped_on",
    "closed_on",
    "calendar",
    "calendar_covered",
    "updated_hlc",
    "holder",
    "holder_node",
    "signed_on",
    "rating",
    "rated_on",
    "rectify_due",
    "rectified_on",
    "signed_on_behalf",
    "step_no",
    "step_name",
    "step_due",
    "step_yellow_on",
    "step_red_on",
];

/// `row`'s values of [`UPDATABLE`], as SQLite stores them.
fn updatable(row: &CaseRow) -> [Value; 27] {
    let text = |s: &Option<String>| s.clone().map_or(Value::Null, Value::Text);
    [
        Value::from(row.status.to_string()),
        Value::from(row.conflict),
        text(&row.serial_no),
        text(&row.accepted_on),
        text(&row.committed_due),
        text(&row.legal_due),
        text(&row.yellow_on),
        text(&row.red_on),
        text(&row.breach_on),
        text(&row.clock_stopped_on),
        text(&row.closed_on),
        text(&row.calendar),
        Value::from(row.calendar_covered),
        Value::from(row.updated_hlc.clone()),
        text(&row.holder),
        text(&row.holder_node),
        text(&row.signed_on),
        row.rating
            .map_or(Value::Null, |r| Value::from(i64::from(r))),
        text(&row.rated_on),
        text(&row.rectify_due),
        text(&row.rectified_on),
        Value::from(row.signed_on_behalf),
        row.step_no
            .map_or(Value::Null, |n| Value::from(i64::from(n))),
        text(&row.step_name),
        text(&row.step_due),
        text(&row.step_yellow_on),
        text(&row.step_red_on),
    ]
}

fn write_case_rows(
    conn: &Connection,
    prefix: &str,
    row: &CaseRow,
    events: &[EventRow],
) -> Result<(), StoreError> {
    let cases = format!("{prefix}cases");
    let case_events = format!("{prefix}case_events");
    let now = updatable(row);
    let held: Option<Vec<Value>> = conn
        .prepare_cached(&format!(
            "SELECT {} FROM {cases} WHERE id = ?1",
            UPDATABLE.join(", ")
        ))?
        .query_row([&row.id], |r| {
            (0..UPDATABLE.len()).map(|i| r.get::<_, Value>(i)).collect()
        })
        .optional()?;
    match held {
        // A case seen again is updated in the columns that changed only: SQLite rewrites
        // the entry of every index on a column the statement sets, changed or not, and
        // `cases` has up to 29 indexes at a hall, so setting every column dirtied a
        // random page in each of them (ten times the log written per update).
        Some(held) => {
            let changed: Vec<usize> = (0..UPDATABLE.len())
                .filter(|&i| held[i] != now[i])
                .collect();
            if !changed.is_empty() {
                let set: Vec<String> = changed
                    .iter()
                    .enumerate()
                    .map(|(n, &i)| format!("{} = ?{}", UPDATABLE[i], n + 2))
                    .collect();
                let mut update = conn.prepare_cached(&format!(
                    "UPDATE {cases} SET {} WHERE id = ?1",
                    set.join(", ")
                ))?;
                update.raw_bind_parameter(1, &row.id)?;
                for (n, &i) in changed.iter().enumerate() {
                    update.raw_bind_parameter(n + 2, &now[i])?;
                }
                update.raw_execute()?;
            }
        }
        None => {
            conn.prepare_cached(&format!(
                "INSERT INTO {cases} (id, scope, impl_code, item_name, item_version, case_type,
                    applicant_name, applicant_id_masked, phone_tail, counter, staff, node,
                    created_ms, created_on, query_code, applicant_id, phone_digits, {})
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                    ?17, {})",
                UPDATABLE.join(", "),
                (18..18 + UPDATABLE.len())
                    .map(|i| format!("?{i}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))?
            .execute(rusqlite::params_from_iter(
                [
                    Value::from(row.id.clone()),
                    Value::from(row.scope.clone()),
                    Value::from(row.impl_code.clone()),
                    Value::from(row.item_name.clone()),
                    Value::from(i64::from(row.item_version)),
                    Value::from(row.case_type.to_string()),
                    Value::from(row.applicant_name.clone()),
                    Value::from(row.applicant_id_masked.clone()),
                    Value::from(row.phone_tail.clone()),
                    Value::from(row.counter.clone()),
                    Value::from(row.staff.clone()),
                    Value::from(row.node.clone()),
                    Value::from(row.created_ms),
                    Value::from(row.created_on.clone()),
                    Value::from(row.query_code.clone()),
                    Value::from(row.applicant_id.clone()),
                    Value::from(row.phone_digits.clone()),
                ]
                .into_iter()
                .chain(now),
            ))?;
        }
    }
    // A sub-case's binding to its parent (并联审批): fixed at creation, written once.
    if let Some((parent, index)) = &row.part_of {
        conn.prepare_cached(&format!(
            "INSERT OR IGNORE INTO {prefix}case_parts (id, parent_id, part_index) VALUES (?1, ?2, ?3)"
        ))?
        .execute(params![row.id, parent, index])?;
    }
    // The payments and exemptions that count now (a resolution may void one): replaced
    // whole, as few as a case's fee lines.
    let case_fees = format!("{prefix}case_fees");
    conn.prepare_cached(&format!("DELETE FROM {case_fees} WHERE case_id = ?1"))?
        .execute([&row.id])?;
    let mut fee = conn.prepare_cached(&format!(
        "INSERT INTO {case_fees} (case_id, event_id, kind, fee, amount_fen, method, receipt, on_day, staff)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
    ))?;
    for f in &row.fees {
        fee.execute(params![
            row.id,
            f.event_id,
            f.kind,
            f.fee,
            f.amount_fen as i64,
            f.method,
            f.receipt,
            f.on,
            f.staff
        ])?;
    }
    // An event already held is written again only when its conflict or voiding changed:
    // a case taking one more event leaves its earlier rows (and their pages) alone.
    let mut insert = conn.prepare_cached(&format!(
        "INSERT INTO {case_events} (case_id, event_id, at_hlc, at_ms, node, staff, kind, conflict, body_json, voided)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (case_id, event_id) DO UPDATE SET conflict = excluded.conflict, voided = excluded.voided
         WHERE conflict IS NOT excluded.conflict OR voided IS NOT excluded.voided"
    ))?;
    for e in events {
        insert.execute(params![
            e.case_id,
            e.event_id,
            e.at_hlc,
            e.at_ms,
            e.node,
            e.staff,
            e.kind,
            e.conflict,
            e.body_json,
            e.voided
        ])?;
    }
    Ok(())
}

/// Writes the derived row of an item into `{prefix}items`, replacing what was there.
pub(super) fn store_item_row(
    conn: &Connection,
    prefix: &str,
    row: &ItemRow,
) -> Result<(), StoreError> {
    conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO {prefix}items (id, scope, impl_code, basic_code, name, category, kind, level, case_type,
            legal_days, committed_days, status, version, search_text, body_json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
    ))?
    .execute(params![
        row.id,
        row.scope,
        row.impl_code,
        row.basic_code,
        row.name,
        row.category,
        row.kind,
        row.level,
        row.case_type,
        row.legal_days,
        row.committed_days,
        row.status,
        row.version,
        row.search_text,
        row.body_json,
    ])?;
    Ok(())
}

/// Records `node_id` as the database's owner on first open; afterwards checks it.
/// Returns the node's current origin (its epoch is kept in the database, so a restored
/// backup can start a new one).
pub(super) fn claim_identity(
    conn: &mut Connection,
    node_id: NodeId,
) -> Result<Origin, OpenStoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let stored: Option<String> = tx
        .query_row("SELECT value FROM meta WHERE key = 'node_id'", [], |r| {
            r.get(0)
        })
        .optional()?;
    match stored {
        Some(found) if found != node_id.to_hex() => {
            return Err(OpenStoreError::WrongNode {
                expected: node_id,
                found,
            });
        }
        Some(_) => {}
        None => {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('node_id', ?1)",
                [node_id.to_hex()],
            )?;
            tx.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('epoch', '1')",
                [],
            )?;
        }
    }
    let epoch: String = tx.query_row("SELECT value FROM meta WHERE key = 'epoch'", [], |r| {
        r.get(0)
    })?;
    tx.commit()?;
    let epoch = epoch.parse().map_err(|_| {
        OpenStoreError::Setup(rusqlite::Error::InvalidColumnType(
            0,
            "epoch".into(),
            rusqlite::types::Type::Text,
        ))
    })?;
    Ok(Origin {
        node: node_id,
        epoch,
    })
}

/// A queued write: runs on the writer thread, then learns whether its group committed.
trait Job: Send {
    fn run(self: Box<Self>, ctx: &mut WriteCtx) -> Ran;
    fn abort(self: Box<Self>, error: StoreError);
    /// Whether the write runs in a transaction of its own, never grouped (see
    /// [`WriterHandle::run_alone`]).
    fn alone(&self) -> bool;
}

struct Ran {
    ok: bool,
    /// The write's own error, when it failed: a full disk stays a full disk for every
    /// write the rolled-back transaction takes with it.
    error: Option<StoreError>,
    complete: Box<dyn FnOnce(Result<(), StoreError>) + Send>,
}

struct Closure<T, F> {
    f: F,
    reply: oneshot::Sender<Result<T, StoreError>>,
    alone: bool,
}

impl<T, F> Job for Closure<T, F>
where
    T: Send + 'static,
    F: FnOnce(&mut WriteCtx) -> Result<T, StoreError> + Send,
{
    fn run(self: Box<Self>, ctx: &mut WriteCtx) -> Ran {
        let Closure { f, reply, .. } = *self;
        let result = catch_unwind(AssertUnwindSafe(|| f(ctx))).unwrap_or_else(|panic| {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(panic.message = %message, "a store write panicked; it was rolled back");
            Err(StoreError::Internal(
                "a write panicked; it was not saved".into(),
            ))
        });
        Ran {
            ok: result.is_ok(),
            error: result.as_ref().err().cloned(),
            complete: Box::new(move |commit| {
                let _ = reply.send(commit.and(result));
            }),
        }
    }

    fn abort(self: Box<Self>, error: StoreError) {
        let _ = self.reply.send(Err(error));
    }

    fn alone(&self) -> bool {
        self.alone
    }
}

/// The async side of the writer.
pub(super) struct WriterHandle {
    sender: Mutex<Option<Sender<Box<dyn Job>>>>,
    /// Returns the clock's last time when the thread ends (see [`WriterHandle::shutdown`]).
    thread: Mutex<Option<JoinHandle<Hlc>>>,
}

impl WriterHandle {
    pub(super) async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx) -> Result<T, StoreError> + Send + 'static,
    {
        self.send(f, false).await
    }

    /// Runs `f` in a transaction of its own, not grouped with other writes, so it needs no
    /// savepoint: for a received batch. Inside a savepoint SQLite keeps a copy of every
    /// page the write changes that the database held before (the statement journal, in
    /// memory here), and a batch of a thousand old cases touches thousands of index pages:
    /// 44 MB at a hall catching up (`docs/benchmarks.md`). Alone, a failure rolls back the
    /// transaction, which in WAL mode needs no copy at all; the batch costs one more sync
    /// when other writes wait, and a batch holds thousands of changes.
    pub(super) async fn run_alone<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx) -> Result<T, StoreError> + Send + 'static,
    {
        self.send(f, true).await
    }

    async fn send<T, F>(&self, f: F, alone: bool) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        {
            let sender = self.sender.lock().unwrap_or_else(|e| e.into_inner());
            let sender = sender.as_ref().ok_or(StoreError::Closed)?;
            sender
                .send(Box::new(Closure { f, reply, alone }))
                .map_err(|_| StoreError::Closed)?;
        }
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Stops the writer after the queued writes and returns the last time its clock
    /// issued or took note of, for the next start (`file::mark_clean_close`); `None` if
    /// it was already stopped or ended abnormally.
    pub(super) async fn shutdown(&self) -> Option<Hlc> {
        drop(self.sender.lock().unwrap_or_else(|e| e.into_inner()).take());
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()?;
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .ok()?
            .ok()
    }
}

/// The writer's read-write connection, with the thread that checkpoints its WAL.
pub(super) struct WriteConn {
    pub(super) conn: Connection,
    pub(super) checkpointer: super::checkpoint::Checkpointer,
}

pub(super) fn spawn(
    WriteConn { conn, checkpointer }: WriteConn,
    origin: Origin,
    identity: Identity,
    doc_cache: usize,
    signals: Signals,
    shared_calendars: Arc<RwLock<Arc<Calendars>>>,
    clock_at_close: Option<Hlc>,
) -> Result<WriterHandle, OpenStoreError> {
    let division = identity.record.division.clone();
    // The clock starts after the newest time stored, so a restart never issues an earlier
    // time even if the wall clock went back: the clock's last time as the writer left it
    // at a clean close (nothing has written since), else the newest time of any case,
    // which reads the whole table (a tenth of a second and the writer's page cache at a
    // million cases).
    let newest = match clock_at_close {
        Some(last) => last,
        None => {
            let newest: Option<String> =
                conn.query_row("SELECT MAX(updated_hlc) FROM cases", [], |r| r.get(0))?;
            newest.and_then(|h| Hlc::parse_hex(&h)).unwrap_or_default()
        }
    };
    let calendars = shared_calendars
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let ctx = WriteCtx {
        conn,
        checkpointer: Some(checkpointer),
        cache: DocCache::new(doc_cache),
        origin,
        division,
        identity,
        clock: HlcClock::starting_after(newest),
        touched: Vec::new(),
        created: Vec::new(),
        clock_lag_warned: None,
        items: HashMap::new(),
        pass_on: false,
        advanced: Vec::new(),
        signals,
        calendars,
        shared_calendars,
        calendars_touched: false,
        isolate_rows: false,
        applier: super::ingest::Applier::spawn(),
        two_thread_batches: 0,
    };
    let (sender, receiver) = channel();
    let thread = std::thread::Builder::new()
        .name("yizhan-writer".into())
        .spawn(move || writer_loop(ctx, receiver))
        .map_err(OpenStoreError::Thread)?;
    Ok(WriterHandle {
        sender: Mutex::new(Some(sender)),
        thread: Mutex::new(Some(thread)),
    })
}

fn writer_loop(mut ctx: WriteCtx, receiver: Receiver<Box<dyn Job>>) -> Hlc {
    // A write that runs alone, met while gathering a group: the next group, by itself.
    let mut next: Option<Box<dyn Job>> = None;
    loop {
        let first = match next.take() {
            Some(job) => job,
            None => match receiver.recv() {
                Ok(job) => job,
                Err(_) => break,
            },
        };
        // Everything already queued joins this group: one commit, one sync.
        let mut group = vec![first];
        while !group[0].alone() && group.len() < MAX_GROUP {
            match receiver.try_recv() {
                Ok(job) if job.alone() => {
                    next = Some(job);
                    break;
                }
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        run_group(&mut ctx, group);
    }
    // Leave a small WAL behind for the next start, once the checkpoint thread is done.
    if let Some(checkpointer) = ctx.checkpointer.take() {
        checkpointer.stop(&mut ctx.conn);
    }
    let _ = ctx.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
    ctx.clock.last()
}

fn run_group(ctx: &mut WriteCtx, group: Vec<Box<dyn Job>>) {
    if let Err(e) = ctx.conn.execute_batch("BEGIN IMMEDIATE") {
        let error = StoreError::from(e);
        for job in group {
            job.abort(error.clone());
        }
        return;
    }
    let mut committed = Vec::with_capacity(group.len());
    let mut touched = Vec::new();
    let mut pass_on = false;
    let mut calendars_touched = false;
    let mut advanced: Vec<(Scope, Origin, u64)> = Vec::new();
    // A write alone in its transaction needs no savepoint: its failure rolls back the
    // transaction (see `WriterHandle::run_alone`).
    let single = group.len() == 1;
    let mut jobs = group.into_iter();
    let mut lost: Option<StoreError> = None;
    for job in jobs.by_ref() {
        if !single && let Err(e) = ctx.conn.execute_batch("SAVEPOINT job") {
            job.abort(e.into());
            continue;
        }
        ctx.touched.clear();
        ctx.created.clear();
        ctx.pass_on = false;
        ctx.calendars_touched = false;
        ctx.advanced.clear();
        let ran = job.run(ctx);
        let full = ran
            .error
            .clone()
            .filter(|e| matches!(e, StoreError::DiskFull(_)));
        let released = ran.ok && (single || ctx.conn.execute_batch("RELEASE job").is_ok());
        if released {
            pass_on |= ctx.pass_on;
            calendars_touched |= ctx.calendars_touched;
            advanced.append(&mut ctx.advanced);
            touched.append(&mut ctx.touched);
            committed.push(ran.complete);
        } else {
            if !single {
                let _ = ctx.conn.execute_batch("ROLLBACK TO job; RELEASE job");
            } else if !ctx.conn.is_autocommit()
                && let Err(e) = ctx.conn.execute_batch("ROLLBACK")
            {
                // Left inside the transaction, every later write would fail to begin; say so.
                tracing::error!(error = %e, "rolling back a failed write failed");
            }
            for id in ctx.touched.drain(..) {
                ctx.cache.remove(&id);
            }
            ctx.items.clear();
            if ctx.calendars_touched {
                ctx.reload_calendars();
            }
            // The job's own error (or, if only RELEASE failed, a rollback) goes back now:
            // nothing of it will be committed.
            let outcome = if ran.ok {
                Err(StoreError::Internal("the write could not be saved".into()))
            } else {
                Ok(())
            };
            (ran.complete)(outcome);
            if single {
                // Rolled back whole: nothing is left to commit.
                return;
            }
        }
        // On a full disk or an I/O error SQLite may roll back the whole transaction. Then
        // the writes released so far are gone too, and the rest must not run outside it.
        if ctx.conn.is_autocommit() {
            lost = Some(full.unwrap_or_else(|| {
                StoreError::Internal(
                    "the database rolled back the transaction (I/O error); nothing was saved"
                        .into(),
                )
            }));
            break;
        }
    }
    let commit = match lost {
        Some(error) => Err(error),
        None => ctx.conn.execute_batch("COMMIT").map_err(StoreError::from),
    };
    if let Err(error) = &commit {
        if !ctx.conn.is_autocommit() {
            let _ = ctx.conn.execute_batch("ROLLBACK");
        }
        for id in touched {
            ctx.cache.remove(&id);
        }
        ctx.cache_clear_items();
        if calendars_touched {
            ctx.reload_calendars();
        }
        for job in jobs {
            job.abort(error.clone());
        }
    } else {
        if calendars_touched {
            *ctx.shared_calendars
                .write()
                .unwrap_or_else(|e| e.into_inner()) = ctx.calendars.clone();
        }
        // After COMMIT and before any caller hears back, so "written" implies "the
        // driver knows". Notify keeps one permit: a burst of commits wakes it once.
        if pass_on {
            ctx.signals.outgoing.notify_one();
        }
        if !advanced.is_empty() {
            ctx.signals
                .log_generation
                .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            // One entry per run, its newest seq; nobody listening is fine.
            let mut runs: HashMap<(Scope, Origin), u64> = HashMap::new();
            for (scope, origin, seq) in advanced {
                let newest = runs.entry((scope, origin)).or_default();
                *newest = (*newest).max(seq);
            }
            let runs: super::Advanced = runs
                .into_iter()
                .map(|((scope, origin), seq)| (scope, origin, seq))
                .collect();
            let _ = ctx.signals.log.send(runs);
        }
    }
    for complete in committed {
        complete(commit.clone());
    }
}
