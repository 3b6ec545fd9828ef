//! The node's change feed as the PostgreSQL sink reads it: the derived rows of every
//! document that changed after a position in the change log.
//!
//! The position is `changes.local_seq`, the order in which this node stored its changes.
//! One writer commits changes and their derived rows together, in increasing `local_seq`,
//! so a read transaction that takes the changes after a position and then the rows of the
//! documents they touched sees rows at least as new as those changes, never older. The
//! sink upserts by document id, so rows read a little ahead are simply written again, the
//! same, when their later changes come round.
//!
//! The reader has its own read-only connection, so the sink never waits for (or takes) one
//! of the connections that serve pages and the API.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use automerge::ReadDoc;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use yizhan_sync::doc;
use yizhan_sync::domain::calendar::Date;
use yizhan_sync::domain::supervision::SupervisionNotice;
use yizhan_sync::ids::{DocId, DocKind, Scope, hex};

use super::{BUSY_TIMEOUT, Store, StoreError};

/// Which numbering a feed position belongs to. A position is only meaningful for the same
/// node, epoch and generation: a restore starts a new epoch (its log may differ from the
/// one the position counted), and a rebuild that changed derived rows bumps the
/// generation (rows changed without a change in the log).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedIdentity {
    /// This node's id, 32 hex digits.
    pub node_id: String,
    pub epoch: u32,
    pub generation: i64,
}

/// The newest sequence number of one origin in a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OriginSeq {
    pub node: String,
    pub epoch: u32,
    pub seq: u64,
}

/// A `cases` row as the sink writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedCase {
    pub id: String,
    pub scope: String,
    pub impl_code: String,
    pub item_name: String,
    pub item_version: i64,
    pub case_type: String,
    pub status: String,
    pub conflict: bool,
    pub serial_no: Option<String>,
    pub applicant_name: String,
    pub applicant_id_masked: String,
    pub phone_tail: String,
    pub counter: String,
    pub staff: String,
    pub node: String,
    pub created_ms: i64,
    pub created_on: String,
    pub accepted_on: Option<String>,
    pub committed_due: Option<String>,
    pub legal_due: Option<String>,
    pub yellow_on: Option<String>,
    pub red_on: Option<String>,
    pub breach_on: Option<String>,
    pub clock_stopped_on: Option<String>,
    pub closed_on: Option<String>,
    pub calendar: Option<String>,
    pub calendar_covered: bool,
    pub updated_hlc: String,
    pub holder: Option<String>,
    pub holder_node: Option<String>,
    pub signed_on: Option<String>,
    pub rating: Option<i64>,
    pub rated_on: Option<String>,
    pub rectify_due: Option<String>,
    pub rectified_on: Option<String>,
    /// The whole a part of a combined application belongs to (并联审批).
    pub part_of: Option<String>,
}

/// A `case_events` row as the sink writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedEvent {
    pub case_id: String,
    pub event_id: String,
    pub at_hlc: String,
    pub at_ms: i64,
    pub node: String,
    pub staff: String,
    pub kind: String,
    pub conflict: bool,
    pub voided: bool,
    pub body_json: String,
}

/// An `items` row as the sink writes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedItem {
    pub id: String,
    pub scope: String,
    pub impl_code: String,
    pub basic_code: String,
    pub name: String,
    pub category: String,
    pub kind: String,
    pub level: String,
    pub case_type: String,
    pub legal_days: i64,
    pub committed_days: i64,
    pub status: String,
    pub version: i64,
    pub search_text: String,
    pub body_json: String,
}

/// One version of an item, as a change to its document left it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedItemVersion {
    pub id: String,
    pub version: i64,
    pub impl_code: String,
    pub name: String,
    pub status: String,
    pub body_json: String,
}

/// The records of one registry document, which replace what PostgreSQL holds for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedRegistry {
    pub scope: String,
    /// `(node id, record JSON)`.
    pub records: Vec<(String, String)>,
}

/// A sealed notice's row, with the scope of the case that holds it (its station).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedNotice {
    pub number: String,
    pub doc_id: String,
    pub case_id: String,
    pub scope: String,
    pub node: String,
    pub kind: String,
    pub issued_ms: i64,
    pub supersedes: Option<String>,
    /// Hex.
    pub digest: String,
    pub seal: String,
    pub content_json: String,
}

/// A supervision notice's row, with the scope of the station it was sent to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedSupervision {
    pub id: String,
    pub scope: String,
    pub case_id: Option<String>,
    pub node: String,
    pub staff: String,
    pub reason: String,
    pub todo: String,
    pub reply_days: i64,
    pub issued_ms: i64,
    /// The last day to reply (`YYYY-MM-DD`), counted on the issuing hall's calendar as
    /// the node's pages count it (`SupervisionNotice::reply_due`).
    pub reply_due: String,
    pub body_json: String,
}

/// A station's reply to a supervision notice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedReply {
    pub id: String,
    pub notice_id: String,
    pub node: String,
    pub staff: String,
    pub text: String,
    pub replied_ms: i64,
    pub body_json: String,
}

/// What changed after a position: the rows of every document touched, once each.
#[derive(Clone, Debug, Default)]
pub struct FeedBatch {
    /// The position the batch starts after, and the one it reaches.
    pub after: u64,
    pub through: u64,
    /// The newest position in the node's log when the batch was read.
    pub head: u64,
    /// Changes the batch covers.
    pub changes: u64,
    pub origins: Vec<OriginSeq>,
    pub cases: Vec<FeedCase>,
    pub events: Vec<FeedEvent>,
    pub items: Vec<FeedItem>,
    pub item_versions: Vec<FeedItemVersion>,
    pub registries: Vec<FeedRegistry>,
    pub notices: Vec<FeedNotice>,
    pub supervision: Vec<FeedSupervision>,
    pub replies: Vec<FeedReply>,
    /// Cases the batch touched whose rows an earlier batch of the same reader already
    /// carried as they are now.
    pub cases_read_before: u64,
    /// Whether the batch writes a row the batch before it (read by the same reader) also
    /// writes: a case or record in both, or items or registries in either. Only batches
    /// that do not overlap are written while the one before commits.
    pub overlaps_previous: bool,
    /// The generation of the derived rows when the batch was read: when it differs from
    /// the one the sink started with, rows changed outside the log and the whole feed is
    /// written again.
    pub generation: i64,
}

impl FeedBatch {
    /// Whether the batch covers no change (the reader is at the head).
    pub fn is_empty(&self) -> bool {
        self.changes == 0
    }

    /// Rows the batch writes.
    pub fn rows(&self) -> u64 {
        (self.cases.len()
            + self.events.len()
            + self.items.len()
            + self.item_versions.len()
            + self
                .registries
                .iter()
                .map(|r| r.records.len())
                .sum::<usize>()
            + self.notices.len()
            + self.supervision.len()
            + self.replies.len()) as u64
    }
}

/// A read-only connection of its own that reads the feed; blocking, so callers run it on
/// a thread of their own.
pub struct FeedReader {
    conn: Connection,
    origin_node: String,
    origin_epoch: u32,
    /// Cases whose rows this reader has read, with the head of the snapshot it read them
    /// in: a later batch whose changes to the case are all at or before that head would
    /// read the same rows again, so it leaves them out (see [`FeedReader::read`]).
    read_at: HashMap<String, u64>,
    /// The cases and records the last batch wrote, and whether it wrote items or
    /// registries (for [`FeedBatch::overlaps_previous`]).
    last_written: HashSet<String>,
    last_shared: bool,
}

/// At most this many cases are remembered in [`FeedReader::read_at`] (about 100 MB at
/// most); beyond it, cases are simply read again.
const READ_AT_MAX: usize = 1_000_000;

impl std::fmt::Debug for FeedReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedReader")
            .field("node", &self.origin_node)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// A reader of the change feed with its own connection.
    pub fn feed_reader(&self) -> Result<FeedReader, StoreError> {
        let conn = Connection::open_with_flags(
            self.path(),
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let origin = self.origin();
        Ok(FeedReader {
            conn,
            origin_node: origin.node.to_hex(),
            origin_epoch: origin.epoch,
            read_at: HashMap::new(),
            last_written: HashSet::new(),
            last_shared: false,
        })
    }
}

/// The meta key counting rebuilds that changed derived rows.
pub(super) const GENERATION_KEY: &str = "derived_generation";

/// Records that derived rows changed without a change in the log (a rebuild, deadlines
/// derived again for a new calendar year): a PostgreSQL sink then writes the whole feed
/// again, since it only rereads the documents the log names.
pub(super) fn bump_generation(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?1, '1')
         ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
        [GENERATION_KEY],
    )?;
    Ok(())
}

/// Whether a supervision notice's reply deadline may count on calendar years from
/// `from_year` on (all years when `None`): those issued since the start of the year before
/// (a reply is due within 60 working days). The sink writes their due dates, so a change
/// to those years makes it write its feed again, as for cases' deadlines.
pub(super) fn supervision_due_may_change(
    conn: &Connection,
    from_year: Option<i32>,
) -> rusqlite::Result<bool> {
    let since_ms = match from_year {
        // Midnight in China (UTC+8) of the first day of the year before.
        Some(year) => Date::from_ymd(year - 1, 1, 1).map_or(0, |d| {
            i64::from(d.days_since_epoch()) * 86_400_000 - 8 * 3_600_000
        }),
        None => 0,
    };
    conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM supervision_notices WHERE issued_ms >= ?1)",
        [since_ms],
        |r| r.get(0),
    )
}

impl FeedReader {
    /// This node, its epoch and the generation of its derived rows.
    pub fn identity(&self) -> Result<FeedIdentity, StoreError> {
        Ok(FeedIdentity {
            node_id: self.origin_node.clone(),
            epoch: self.origin_epoch,
            generation: generation(&self.conn)?,
        })
    }

    /// The newest position in the log.
    pub fn head(&self) -> Result<u64, StoreError> {
        let head: Option<i64> =
            self.conn
                .query_row("SELECT max(local_seq) FROM changes", [], |r| r.get(0))?;
        Ok(head.unwrap_or(0).max(0) as u64)
    }

    /// The rows of the documents touched by at most `max_changes` changes after `after`,
    /// all read in one snapshot.
    ///
    /// A case whose rows this reader already read, in the snapshot of an earlier batch
    /// that held every change to it in this batch, is left out: those rows are the ones
    /// this batch would write, and they are in PostgreSQL before this batch's position
    /// is (batches commit in order, and a batch that fails ends the reader). A backlog
    /// then writes each case once, not once per batch its changes fall in.
    pub fn read(&mut self, after: u64, max_changes: u32) -> Result<FeedBatch, StoreError> {
        let FeedReader {
            conn,
            read_at,
            last_written,
            last_shared,
            ..
        } = self;
        if read_at.len() >= READ_AT_MAX {
            // Cases read at or before `after` will change again only after it.
            read_at.retain(|_, head| *head > after);
        }
        let tx = conn.transaction()?;
        let head: Option<i64> =
            tx.query_row("SELECT max(local_seq) FROM changes", [], |r| r.get(0))?;
        let mut batch = FeedBatch {
            after,
            through: after,
            head: head.unwrap_or(0).max(0) as u64,
            generation: generation(&tx)?,
            ..FeedBatch::default()
        };
        // Each case touched, with the newest of its changes in the batch.
        let mut cases: BTreeMap<String, u64> = BTreeMap::new();
        let mut items: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
        let mut registries = BTreeSet::new();
        let mut records: BTreeSet<(&'static str, String)> = BTreeSet::new();
        let mut origins: BTreeMap<(Vec<u8>, u32), u64> = BTreeMap::new();
        {
            let mut stmt = tx.prepare_cached(
                "SELECT local_seq, origin_node, origin_epoch, seq, doc_id, scope, hash, refused IS NOT NULL
                 FROM changes WHERE local_seq > ?1 ORDER BY local_seq LIMIT ?2",
            )?;
            let mut rows = stmt.query(params![after as i64, max_changes.max(1)])?;
            while let Some(row) = rows.next()? {
                let local_seq: i64 = row.get(0)?;
                let origin_node: Vec<u8> = row.get(1)?;
                let origin_epoch: u32 = row.get(2)?;
                let seq: i64 = row.get(3)?;
                let doc_id: String = row.get(4)?;
                let scope: String = row.get(5)?;
                let hash: Vec<u8> = row.get(6)?;
                let refused: bool = row.get(7)?;
                batch.through = local_seq as u64;
                batch.changes += 1;
                let newest = origins.entry((origin_node, origin_epoch)).or_default();
                *newest = (*newest).max(seq as u64);
                match DocId::parse(&doc_id).as_ref().and_then(DocKind::of_id) {
                    Some(DocKind::Case) => {
                        cases.insert(doc_id, local_seq as u64);
                    }
                    Some(DocKind::Item) => {
                        let hashes = items.entry(doc_id).or_default();
                        if !refused {
                            hashes.push(hash);
                        }
                    }
                    Some(DocKind::Registry) => {
                        registries.insert(scope);
                    }
                    Some(kind @ (DocKind::Notice | DocKind::Supervision | DocKind::Reply)) => {
                        records.insert((kind.as_str(), doc_id));
                    }
                    // Calendar years change deadlines, which reach the sink as the cases'
                    // rows; the sink keeps no notifications (通报) nor departments yet,
                    // which the halls' pages show; staff accounts (password verifiers)
                    // never leave the tree; nor attachments (files a guide offers, not
                    // figures); unknown kinds have nothing to write.
                    Some(
                        DocKind::Calendar
                        | DocKind::Notification
                        | DocKind::Department
                        | DocKind::Staff
                        | DocKind::Attachment,
                    )
                    | None => {}
                }
            }
        }
        batch.origins = origins
            .into_iter()
            .map(|((node, epoch), seq)| OriginSeq {
                node: hex(&node),
                epoch,
                seq,
            })
            .collect();
        for (id, newest) in cases {
            if read_at.get(&id).is_some_and(|head| newest <= *head) {
                batch.cases_read_before += 1;
                continue;
            }
            if let Some(case) = read_case(&tx, &id)? {
                batch.cases.push(case);
                read_events(&tx, &id, &mut batch.events)?;
                if read_at.len() < READ_AT_MAX {
                    read_at.insert(id, batch.head);
                }
            }
        }
        // A combined case's row follows its parts (并联审批, `cases::rows_of_combined`),
        // which change without a change to the whole's document: a part read here brings
        // its whole's row again (the part's row names it).
        let read: HashSet<String> = batch.cases.iter().map(|c| c.id.clone()).collect();
        let mut wholes: Vec<String> = batch
            .cases
            .iter()
            .filter_map(|c| c.part_of.clone())
            .filter(|parent| !read.contains(parent))
            .collect();
        wholes.sort();
        wholes.dedup();
        for id in wholes {
            if let Some(case) = read_case(&tx, &id)? {
                batch.cases.push(case);
                read_events(&tx, &id, &mut batch.events)?;
            }
        }
        for (id, hashes) in &items {
            if let Some(item) = read_item(&tx, id)? {
                batch.items.push(item);
            }
            batch.item_versions.extend(item_versions(&tx, id, hashes)?);
        }
        for scope in registries {
            let mut stmt = tx.prepare_cached(
                "SELECT node_id, record_json FROM registry_records WHERE scope = ?1 ORDER BY node_id",
            )?;
            let records = stmt
                .query_map([&scope], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<(String, String)>, _>>()?;
            batch.registries.push(FeedRegistry { scope, records });
        }
        let mut calendars = None;
        for (kind, id) in &records {
            if let Some(kind) = DocKind::parse(kind) {
                read_record(&tx, kind, id, &mut calendars, &mut batch)?;
            }
        }
        tx.finish()?;
        let written: HashSet<String> = batch
            .cases
            .iter()
            .map(|c| c.id.clone())
            .chain(records.into_iter().map(|(_, id)| id))
            .collect();
        let shared = !batch.items.is_empty()
            || !batch.item_versions.is_empty()
            || !batch.registries.is_empty();
        batch.overlaps_previous = shared || *last_shared || !written.is_disjoint(last_written);
        *last_written = written;
        *last_shared = shared;
        Ok(batch)
    }
}

/// The row of a notice, supervision notice or reply document, into its list of `batch`
/// (none when the document derived no row: a refused change's document). `calendars` is
/// read from `conn` (the same snapshot) at the first supervision notice.
fn read_record(
    conn: &Connection,
    kind: DocKind,
    id: &str,
    calendars: &mut Option<super::calendars::Calendars>,
    batch: &mut FeedBatch,
) -> Result<(), StoreError> {
    match kind {
        DocKind::Notice => {
            let row = conn
                .prepare_cached(
                    "SELECT n.number, n.doc_id, n.case_id, d.scope, n.node, n.kind, n.issued_ms,
                            n.supersedes, n.digest, n.signature, n.content_json
                     FROM notices n JOIN documents d ON d.id = n.doc_id WHERE n.doc_id = ?1",
                )?
                .query_row([id], |r| {
                    Ok(FeedNotice {
                        number: r.get(0)?,
                        doc_id: r.get(1)?,
                        case_id: r.get(2)?,
                        scope: r.get(3)?,
                        node: r.get(4)?,
                        kind: r.get(5)?,
                        issued_ms: r.get(6)?,
                        supersedes: r.get(7)?,
                        digest: hex(&r.get::<_, Vec<u8>>(8)?),
                        seal: hex(&r.get::<_, Vec<u8>>(9)?),
                        content_json: r.get(10)?,
                    })
                })
                .optional()?;
            batch.notices.extend(row);
        }
        DocKind::Supervision => {
            let row = conn
                .prepare_cached(
                    "SELECT s.id, d.scope, s.case_id, s.node, s.staff, s.reason, s.todo,
                            s.reply_days, s.issued_ms, s.body_json
                     FROM supervision_notices s JOIN documents d ON d.id = s.id WHERE s.id = ?1",
                )?
                .query_row([id], |r| {
                    Ok(FeedSupervision {
                        id: r.get(0)?,
                        scope: r.get(1)?,
                        case_id: r.get(2)?,
                        node: r.get(3)?,
                        staff: r.get(4)?,
                        reason: r.get(5)?,
                        todo: r.get(6)?,
                        reply_days: r.get(7)?,
                        issued_ms: r.get(8)?,
                        reply_due: String::new(),
                        body_json: r.get(9)?,
                    })
                })
                .optional()?;
            if let Some(mut row) = row {
                if calendars.is_none() {
                    *calendars = Some(super::calendars::Calendars::load(conn)?);
                }
                let calendars = calendars.as_ref().expect("loaded above");
                row.reply_due = reply_due(conn, calendars, &row)?.to_string();
                batch.supervision.push(row);
            }
        }
        DocKind::Reply => {
            let row = conn
                .prepare_cached(
                    "SELECT id, notice_id, node, staff, text, replied_ms, body_json
                     FROM supervision_replies WHERE id = ?1",
                )?
                .query_row([id], |r| {
                    Ok(FeedReply {
                        id: r.get(0)?,
                        notice_id: r.get(1)?,
                        node: r.get(2)?,
                        staff: r.get(3)?,
                        text: r.get(4)?,
                        replied_ms: r.get(5)?,
                        body_json: r.get(6)?,
                    })
                })
                .optional()?;
            batch.replies.extend(row);
        }
        _ => {}
    }
    Ok(())
}

/// The last day to reply to a supervision notice: on the calendar of the hall that issued
/// it (its division as this node's registries record it; the station's when this node
/// lacks the record, as the node's pages count it).
fn reply_due(
    conn: &Connection,
    calendars: &super::calendars::Calendars,
    row: &FeedSupervision,
) -> Result<Date, StoreError> {
    let notice: SupervisionNotice =
        serde_json::from_str(&row.body_json).map_err(|e| StoreError::Corrupt {
            id: row.id.clone(),
            message: format!("the supervision notice does not read: {e}"),
        })?;
    let station = Scope::parse(&row.scope)
        .map(|s| s.division())
        .ok_or_else(|| StoreError::Corrupt {
            id: row.id.clone(),
            message: format!("{} is not a scope", row.scope),
        })?;
    let hall = super::notices::record_of(conn, &row.node)?.map(|r| r.division);
    let calendar = calendars.for_division(hall.as_ref().unwrap_or(&station));
    Ok(notice.reply_due(&calendar))
}

fn generation(conn: &Connection) -> Result<i64, StoreError> {
    let value: Option<String> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [GENERATION_KEY],
            |r| r.get(0),
        )
        .optional()?;
    Ok(value.and_then(|v| v.parse().ok()).unwrap_or(0))
}

/// The columns of `cases`, in [`FeedCase`] order.
pub(super) const CASE_COLUMNS: &str =
    "id, scope, impl_code, item_name, item_version, case_type, status, conflict, serial_no,
     applicant_name, applicant_id_masked, phone_tail, counter, staff, node, created_ms, created_on,
     accepted_on, committed_due, legal_due, yellow_on, red_on, breach_on, clock_stopped_on,
     closed_on, calendar, calendar_covered, updated_hlc, holder, holder_node, signed_on, rating,
     rated_on, rectify_due, rectified_on,
     (SELECT parent_id FROM case_parts WHERE case_parts.id = cases.id)";

fn read_case(conn: &Connection, id: &str) -> Result<Option<FeedCase>, StoreError> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {CASE_COLUMNS} FROM cases WHERE id = ?1"))?;
    Ok(stmt.query_row([id], case_from_row).optional()?)
}

pub(super) fn case_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<FeedCase> {
    Ok(FeedCase {
        id: r.get(0)?,
        scope: r.get(1)?,
        impl_code: r.get(2)?,
        item_name: r.get(3)?,
        item_version: r.get(4)?,
        case_type: r.get(5)?,
        status: r.get(6)?,
        conflict: r.get(7)?,
        serial_no: r.get(8)?,
        applicant_name: r.get(9)?,
        applicant_id_masked: r.get(10)?,
        phone_tail: r.get(11)?,
        counter: r.get(12)?,
        staff: r.get(13)?,
        node: r.get(14)?,
        created_ms: r.get(15)?,
        created_on: r.get(16)?,
        accepted_on: r.get(17)?,
        committed_due: r.get(18)?,
        legal_due: r.get(19)?,
        yellow_on: r.get(20)?,
        red_on: r.get(21)?,
        breach_on: r.get(22)?,
        clock_stopped_on: r.get(23)?,
        closed_on: r.get(24)?,
        calendar: r.get(25)?,
        calendar_covered: r.get(26)?,
        updated_hlc: r.get(27)?,
        holder: r.get(28)?,
        holder_node: r.get(29)?,
        signed_on: r.get(30)?,
        rating: r.get(31)?,
        rated_on: r.get(32)?,
        rectify_due: r.get(33)?,
        rectified_on: r.get(34)?,
        part_of: r.get(35)?,
    })
}

/// The columns of `case_events`, in [`FeedEvent`] order.
pub(super) const EVENT_COLUMNS: &str =
    "case_id, event_id, at_hlc, at_ms, node, staff, kind, conflict, voided, body_json";

fn read_events(conn: &Connection, id: &str, out: &mut Vec<FeedEvent>) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {EVENT_COLUMNS} FROM case_events WHERE case_id = ?1"
    ))?;
    let rows = stmt.query_map([id], event_from_row)?;
    for row in rows {
        out.push(row?);
    }
    Ok(())
}

pub(super) fn event_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<FeedEvent> {
    Ok(FeedEvent {
        case_id: r.get(0)?,
        event_id: r.get(1)?,
        at_hlc: r.get(2)?,
        at_ms: r.get(3)?,
        node: r.get(4)?,
        staff: r.get(5)?,
        kind: r.get(6)?,
        conflict: r.get(7)?,
        voided: r.get(8)?,
        body_json: r.get(9)?,
    })
}

/// The columns of `items`, in [`FeedItem`] order.
pub(super) const ITEM_COLUMNS: &str =
    "id, scope, impl_code, basic_code, name, category, kind, level, case_type,
     legal_days, committed_days, status, version, search_text, body_json";

fn read_item(conn: &Connection, id: &str) -> Result<Option<FeedItem>, StoreError> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {ITEM_COLUMNS} FROM items WHERE id = ?1"))?;
    Ok(stmt.query_row([id], item_from_row).optional()?)
}

pub(super) fn item_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<FeedItem> {
    Ok(FeedItem {
        id: r.get(0)?,
        scope: r.get(1)?,
        impl_code: r.get(2)?,
        basic_code: r.get(3)?,
        name: r.get(4)?,
        category: r.get(5)?,
        kind: r.get(6)?,
        level: r.get(7)?,
        case_type: r.get(8)?,
        legal_days: r.get(9)?,
        committed_days: r.get(10)?,
        status: r.get(11)?,
        version: r.get(12)?,
        search_text: r.get(13)?,
        body_json: r.get(14)?,
    })
}

/// The item as each of `hashes` (changes to its document) left it: every version it was
/// published in, even when several came in one batch.
fn item_versions(
    conn: &Connection,
    id: &str,
    hashes: &[Vec<u8>],
) -> Result<Vec<FeedItemVersion>, StoreError> {
    if hashes.is_empty() {
        return Ok(Vec::new());
    }
    let bytes: Option<Vec<u8>> = conn
        .prepare_cached("SELECT bytes FROM documents WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    let Some(bytes) = bytes else {
        return Ok(Vec::new());
    };
    let document = automerge::Automerge::load(&bytes).map_err(|e| StoreError::Corrupt {
        id: id.to_string(),
        message: e.to_string(),
    })?;
    let doc_id = DocId::parse(id).ok_or_else(|| StoreError::Corrupt {
        id: id.to_string(),
        message: "invalid document id".into(),
    })?;
    let mut versions = Vec::new();
    for hash in hashes {
        let Ok(hash) = <[u8; 32]>::try_from(hash.as_slice()) else {
            continue;
        };
        let head = automerge::ChangeHash(hash);
        if document.get_change_by_hash(&head).is_none() {
            continue;
        }
        let then = document.fork_at(&[head]).map_err(|e| StoreError::Corrupt {
            id: id.to_string(),
            message: e.to_string(),
        })?;
        // A change that left no readable item (none so far) has no version to record.
        let Ok(item_doc) = doc::read_item(&then) else {
            continue;
        };
        let row = doc::item_row(&doc_id, &item_doc);
        versions.push(FeedItemVersion {
            id: row.id,
            version: i64::from(row.version),
            impl_code: row.impl_code,
            name: row.name,
            status: row.status.to_string(),
            body_json: row.body_json,
        });
    }
    Ok(versions)
}

impl Store {
    /// Every row the sink mirrors, as the node holds it, for a row-by-row comparison with
    /// PostgreSQL (`yizhan sink verify`). Reads everything into memory: a check for tests
    /// and for technicians, not for a city's full history.
    pub async fn mirror_rows(&self) -> Result<super::postgres::MirrorRows, StoreError> {
        self.read(|conn| {
            let mut rows = super::postgres::MirrorRows::default();
            let mut stmt = conn.prepare(&format!("SELECT {CASE_COLUMNS} FROM cases"))?;
            for case in stmt.query_map([], case_from_row)? {
                rows.add_case(&case?);
            }
            let mut stmt = conn.prepare(&format!("SELECT {EVENT_COLUMNS} FROM case_events"))?;
            for event in stmt.query_map([], event_from_row)? {
                rows.add_event(&event?);
            }
            let mut stmt = conn.prepare(&format!("SELECT {ITEM_COLUMNS} FROM items"))?;
            for item in stmt.query_map([], item_from_row)? {
                rows.add_item(&item?);
            }
            let mut stmt =
                conn.prepare("SELECT scope, node_id, record_json FROM registry_records")?;
            let records = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?;
            for record in records {
                let (scope, node_id, json) = record?;
                rows.add_record(&scope, &node_id, &json);
            }
            // The records the feed sends: those of documents this node holds.
            let mut batch = FeedBatch::default();
            let ids: Vec<(String, String)> = conn
                .prepare(
                    "SELECT kind, id FROM documents WHERE kind IN ('notice', 'supervision', 'reply')",
                )?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            let mut calendars = None;
            for (kind, id) in ids {
                if let Some(kind) = DocKind::parse(&kind) {
                    read_record(conn, kind, &id, &mut calendars, &mut batch)?;
                }
            }
            batch.notices.iter().for_each(|n| rows.add_notice(n));
            batch.supervision.iter().for_each(|n| rows.add_supervision(n));
            batch.replies.iter().for_each(|r| rows.add_reply(r));
            Ok(rows)
        })
        .await
    }

    /// The newest position in the change log (`changes.local_seq`), for the sink's lag.
    pub async fn feed_head(&self) -> Result<u64, StoreError> {
        self.read(|conn| {
            let head: Option<i64> =
                conn.query_row("SELECT max(local_seq) FROM changes", [], |r| r.get(0))?;
            Ok(head.unwrap_or(0).max(0) as u64)
        })
        .await
    }
}
