//! The document model: how items and cases live in Automerge documents, and the
//! queryable rows derived from them.
//!
//! Layout of every document's root map:
//!
//! | key      | value                                                        |
//! |----------|--------------------------------------------------------------|
//! | `schema` | integer, currently [`SCHEMA`]                                |
//! | `kind`   | `"item"` or `"case"`                                         |
//! | `scope`  | e.g. `"case/440399001001"`                                   |
//! | `item`   | (items) the whole [`Item`] as a JSON string                  |
//! | `intake` | (cases) the [`Intake`] as a JSON string, written once        |
//! | `events` | (cases) map from event id to the [`Event`] as a JSON string  |
//! | `meta`   | (attachments) the [`Attachment`] as a JSON string           |
//! | `content`| (attachments) the file's bytes                              |
//!
//! Why JSON strings and not nested Automerge maps: an item version is published as one
//! consistent unit, so it is a last-writer-wins register as a whole, never a field-by-field
//! merge of two drafts; a case's intake and each event are immutable once written. Keyed
//! by unique ids, concurrent events from different nodes merge without conflict. Opaque
//! strings keep documents small (a case with 5 events is about 1.5 KB saved) and loading
//! cheap, and the JSON is the same serde form the rest of the code uses.
//!
//! Materialized rows ([`CaseRow`], [`EventRow`], [`ItemRow`]) are a pure function of a
//! document and the calendar, so any node, or `yizhan rebuild`, derives identical rows.

use std::borrow::Cow;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{Automerge, AutomergeError, ObjType, ROOT, ReadDoc, ScalarValueRef, ValueRef};

use crate::auth::NodeRecord;
use crate::domain::attachment::Attachment;
use crate::domain::calendar::{Calendar, Date, Deadlines, WarningLevel};
use crate::domain::case::{self, Event, Intake};
use crate::domain::item::Item;
use crate::ids::{DocId, DocKind, Origin, Scope};

/// Version of the document layout above. A node refuses documents of a newer schema
/// rather than misreading them.
pub const SCHEMA: i64 = 1;

/// A document could not be written or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DocError {
    #[error("automerge: {0}")]
    Automerge(#[from] AutomergeError),
    #[error("document has no {0:?}")]
    Missing(&'static str),
    #[error("document is a {found}, not a {expected}")]
    WrongKind {
        expected: &'static str,
        found: String,
    },
    #[error("document schema {0} is newer than this node understands ({SCHEMA}); upgrade the node")]
    NewerSchema(i64),
    #[error("not a valid change: {0}")]
    BadChange(String),
    #[error("the change depends on {0} changes this node does not have")]
    MissingDependencies(usize),
    #[error("{field} is not valid: {source}")]
    BadJson {
        field: String,
        #[source]
        source: serde_json::Error,
    },
}

/// The contents of a case document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseDoc {
    pub scope: Scope,
    pub intake: Intake,
    /// Events in id order (which is the order `derive` applies them).
    pub events: Vec<Event>,
    /// Events of a kind this version does not know (written by a newer node): kept in
    /// the document and passed on by sync, shown as such, but not counted until this
    /// node is upgraded. Nothing else about the case stops working meanwhile.
    pub newer: Vec<NewerEvent>,
}

/// An event of a kind this version does not know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewerEvent {
    pub id: String,
    pub kind: String,
}

/// The contents of an item document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemDoc {
    pub scope: Scope,
    pub item: Item,
}

fn commit_options(unix_ms: u64, message: &str) -> CommitOptions {
    // Automerge's change time is advisory and in seconds; Rust does not fill it in.
    CommitOptions::default()
        .with_time((unix_ms / 1000) as i64)
        .with_message(message.to_string())
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("domain types always serialize")
}

fn new_doc(origin: &Origin) -> Automerge {
    let mut doc = Automerge::new();
    doc.set_actor(origin.actor());
    doc
}

/// Creates a case document with its intake, in one change.
pub fn new_case(
    origin: &Origin,
    scope: &Scope,
    intake: &Intake,
) -> Result<(DocId, Automerge), DocError> {
    let mut doc = new_doc(origin);
    doc.transact_with(
        |_| commit_options(intake.submitted_at.unix_ms(), "submit"),
        |tx| {
            tx.put(ROOT, "schema", SCHEMA)?;
            tx.put(ROOT, "kind", DocKind::Case.as_str())?;
            tx.put(ROOT, "scope", scope.as_str())?;
            tx.put(ROOT, "intake", to_json(intake))?;
            tx.put_object(ROOT, "events", ObjType::Map)?;
            Ok::<_, AutomergeError>(())
        },
    )
    .map_err(|f| f.error)?;
    Ok((intake.doc_id(), doc))
}

/// Appends events to a case document, in one change.
pub fn add_events(doc: &mut Automerge, origin: &Origin, events: &[Event]) -> Result<(), DocError> {
    let events_obj = match doc.get(ROOT, "events")? {
        Some((automerge::Value::Object(ObjType::Map), id)) => id,
        _ => return Err(DocError::Missing("events")),
    };
    let Some(last) = events.last() else {
        return Ok(());
    };
    let message = events
        .iter()
        .map(|e| e.action.kind().as_str())
        .collect::<Vec<_>>()
        .join("+");
    doc.set_actor(origin.actor());
    doc.transact_with(
        |_| commit_options(last.at.unix_ms(), &message),
        |tx| {
            for event in events {
                tx.put(&events_obj, event.id(), to_json(event))?;
            }
            Ok::<_, AutomergeError>(())
        },
    )
    .map_err(|f| f.error)?;
    Ok(())
}

/// Creates an item document holding its first version.
pub fn new_item(
    origin: &Origin,
    scope: &Scope,
    item: &Item,
    unix_ms: u64,
) -> Result<(DocId, Automerge), DocError> {
    let mut doc = new_doc(origin);
    doc.transact_with(
        |_| commit_options(unix_ms, "publish"),
        |tx| {
            tx.put(ROOT, "schema", SCHEMA)?;
            tx.put(ROOT, "kind", DocKind::Item.as_str())?;
            tx.put(ROOT, "scope", scope.as_str())?;
            tx.put(ROOT, "item", to_json(item))?;
            Ok::<_, AutomergeError>(())
        },
    )
    .map_err(|f| f.error)?;
    Ok((Item::doc_id_for(&item.impl_code), doc))
}

/// Replaces the item in an item document with a new version.
pub fn put_item(
    doc: &mut Automerge,
    origin: &Origin,
    item: &Item,
    unix_ms: u64,
) -> Result<(), DocError> {
    doc.set_actor(origin.actor());
    doc.transact_with(
        |_| commit_options(unix_ms, "publish"),
        |tx| tx.put(ROOT, "item", to_json(item)),
    )
    .map_err(|f| f.error)?;
    Ok(())
}

/// The root map of a document, read in one pass. Each `get` is a seek through the ops, and
/// reading a case that way took eight of them: a sixth of a hall's time applying a sync.
struct Root<'a> {
    schema: Option<i64>,
    /// Borrowed from the document: a case's intake is its largest text, read for every
    /// change a hall receives.
    texts: Vec<(Cow<'a, str>, Cow<'a, str>)>,
    maps: Vec<(Cow<'a, str>, automerge::ObjId)>,
}

impl<'a> Root<'a> {
    fn read(doc: &'a Automerge) -> Root<'a> {
        let mut root = Root {
            schema: None,
            texts: Vec::new(),
            maps: Vec::new(),
        };
        for entry in doc.map_range(ROOT, ..) {
            match entry.value {
                ValueRef::Scalar(ScalarValueRef::Int(n)) if entry.key == "schema" => {
                    root.schema = Some(n)
                }
                ValueRef::Scalar(ScalarValueRef::Str(text)) => root.texts.push((entry.key, text)),
                ValueRef::Object(ObjType::Map) => {
                    let id = entry.id();
                    root.maps.push((entry.key, id))
                }
                _ => {}
            }
        }
        root
    }

    fn text(&self, key: &'static str) -> Result<&str, DocError> {
        self.texts
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_ref())
            .ok_or(DocError::Missing(key))
    }

    fn map(&self, key: &'static str) -> Result<&automerge::ObjId, DocError> {
        self.maps
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .ok_or(DocError::Missing(key))
    }

    /// The kind and scope, after checking the schema.
    fn header(&self) -> Result<(DocKind, Scope), DocError> {
        let schema = self.schema.ok_or(DocError::Missing("schema"))?;
        if schema > SCHEMA {
            return Err(DocError::NewerSchema(schema));
        }
        let kind_text = self.text("kind")?;
        let kind = DocKind::parse(kind_text).ok_or_else(|| DocError::WrongKind {
            expected: "item or case",
            found: kind_text.to_string(),
        })?;
        let scope = Scope::parse(self.text("scope")?).ok_or(DocError::Missing("scope"))?;
        Ok((kind, scope))
    }

    fn expect_kind(&self, expected: DocKind) -> Result<Scope, DocError> {
        let (kind, scope) = self.header()?;
        if kind != expected {
            return Err(DocError::WrongKind {
                expected: expected.as_str(),
                found: kind.as_str().to_string(),
            });
        }
        Ok(scope)
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(field: &str, text: &str) -> Result<T, DocError> {
    serde_json::from_str(text).map_err(|source| DocError::BadJson {
        field: field.to_string(),
        source,
    })
}

/// The kind and scope of a document, after checking its schema.
pub fn header(doc: &Automerge) -> Result<(DocKind, Scope), DocError> {
    Root::read(doc).header()
}

/// Reads only the intake of a case document (what receivers check events against).
pub fn read_intake(doc: &Automerge) -> Result<Intake, DocError> {
    let root = Root::read(doc);
    root.expect_kind(DocKind::Case)?;
    parse_json("intake", root.text("intake")?)
}

/// What judging a received event needs of a case's intake, read without building the
/// rest of it: the department its item's acceptance was delegated by (代为受理), and the
/// department that decides it (§5.7.2).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
pub struct ItemRules {
    #[serde(default)]
    pub delegated_by: Option<String>,
    #[serde(default)]
    pub decided_by: Option<crate::domain::department::Decider>,
    /// A combined item's parts: a case with parts and no single deciding department is a
    /// whole that only its parts decide (`domain::combined`).
    #[serde(default)]
    pub parts: Vec<crate::domain::combined::PartSnapshot>,
    /// The item version's fee lines (§9.5): what a payment or an exemption may name.
    #[serde(default)]
    pub fees: Vec<crate::domain::item::FeeLine>,
}

/// Reads a case's [`ItemRules`].
pub fn read_item_rules(doc: &Automerge) -> Result<ItemRules, DocError> {
    #[derive(serde::Deserialize)]
    struct IntakeItem {
        item: ItemRules,
    }
    let root = Root::read(doc);
    root.expect_kind(DocKind::Case)?;
    let intake: IntakeItem = parse_json("intake", root.text("intake")?)?;
    Ok(intake.item)
}

/// Reads a case document.
pub fn read_case(doc: &Automerge) -> Result<CaseDoc, DocError> {
    read_case_root(doc, &Root::read(doc))
}

fn read_case_root(doc: &Automerge, root: &Root<'_>) -> Result<CaseDoc, DocError> {
    let scope = root.expect_kind(DocKind::Case)?;
    let intake: Intake = parse_json("intake", root.text("intake")?)?;
    let mut events = Vec::new();
    let mut newer = Vec::new();
    for entry in doc.map_range(root.map("events")?, ..) {
        let ValueRef::Scalar(ScalarValueRef::Str(text)) = &entry.value else {
            return Err(DocError::Missing("event text"));
        };
        let event: Event = match parse_json(&format!("events.{}", entry.key), text) {
            Ok(event) => event,
            Err(e) => match newer_kind(text) {
                Some(kind) => {
                    newer.push(NewerEvent {
                        id: entry.key.to_string(),
                        kind,
                    });
                    continue;
                }
                None => return Err(e),
            },
        };
        if event.id() != entry.key {
            return Err(DocError::Missing("event under its own id"));
        }
        events.push(event);
    }
    Ok(CaseDoc {
        scope,
        intake,
        events,
        newer,
    })
}

/// The kind of an event this version cannot read because the kind is new to it: an
/// object whose `kind` is a name none of this version's kinds has. Anything else that
/// fails to read is damage, not news.
fn newer_kind(text: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let kind = value.get("kind")?.as_str()?;
    let known = crate::domain::case::ActionKind::parse(kind).is_some();
    (!known && !kind.is_empty() && kind.len() <= 64).then(|| kind.to_string())
}

/// Reads an item document.
pub fn read_item(doc: &Automerge) -> Result<ItemDoc, DocError> {
    let root = Root::read(doc);
    let scope = root.expect_kind(DocKind::Item)?;
    let item = parse_json("item", root.text("item")?)?;
    Ok(ItemDoc { scope, item })
}

/// Every version of an item its document holds, oldest first, read from the document's
/// history at each change (only the item's author writes it, so the history is its
/// versions in order): the versions a node held are derived again from the document,
/// never kept beside it.
pub fn item_versions(doc: &Automerge) -> Result<Vec<Item>, DocError> {
    let mut versions: Vec<Item> = Vec::new();
    for change in doc.get_changes(&[]) {
        let heads = [change.hash()];
        let Some((automerge::Value::Scalar(value), _)) = doc.get_at(ROOT, "item", &heads)? else {
            continue;
        };
        let automerge::ScalarValue::Str(text) = value.as_ref() else {
            continue;
        };
        let item: Item = parse_json("item", text)?;
        if versions
            .last()
            .is_none_or(|last| last.version != item.version)
        {
            versions.push(item);
        }
    }
    Ok(versions)
}

/// Heads as one byte string: the sorted 32-byte hashes, concatenated, so two sets of heads
/// compare equal exactly when the bytes do.
pub fn heads_bytes(doc: &Automerge) -> Vec<u8> {
    let mut heads = doc.get_heads();
    heads.sort();
    heads.iter().flat_map(|h| h.0).collect()
}

/// The `cases` row of a case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseRow {
    pub id: String,
    /// A sub-case's parent and part (并联审批, `domain::combined`), from its intake.
    pub part_of: Option<(String, u32)>,
    /// A combined case whose status its parts decide: written again as they change.
    pub combined_parent: bool,
    pub scope: String,
    pub impl_code: String,
    pub item_name: String,
    pub item_version: u32,
    pub case_type: &'static str,
    pub status: &'static str,
    /// Concurrent incompatible events wait for a person.
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
    /// First days of the yellow, red and legal-breach levels of an open case, so a query
    /// derives the level from today's date. A suspended case's level is frozen at the day
    /// its clock stopped; its dates then encode that level with [`LEVEL_REACHED`] and
    /// [`LEVEL_NOT_REACHED`]. Closed cases have none.
    pub yellow_on: Option<String>,
    pub red_on: Option<String>,
    pub breach_on: Option<String>,
    /// While suspended, the day the clock stopped.
    pub clock_stopped_on: Option<String>,
    pub closed_on: Option<String>,
    pub calendar: Option<String>,
    /// False when a deadline fell in a year the calendar has no figures for.
    pub calendar_covered: bool,
    /// HLC of the newest event (or of the intake), as 16 hex digits.
    pub updated_hlc: String,
    /// Where the case was last transferred (转办): the office, its node if a hall, and
    /// the day it signed for the case.
    pub holder: Option<String>,
    pub holder_node: Option<String>,
    pub signed_on: Option<String>,
    /// 好差评: the level (1–5) and day; a bad one's rectification deadline and closing day.
    pub rating: Option<u8>,
    pub rated_on: Option<String>,
    pub rectify_due: Option<String>,
    pub rectified_on: Option<String>,
    /// The applicant's query code ([`crate::domain::query_code`]).
    pub query_code: String,
    /// The full identity number or credit code, and the phone's digits, to find the
    /// case by.
    pub applicant_id: String,
    pub phone_digits: String,
    /// The last transfer was signed for by its sender on a department's behalf.
    pub signed_on_behalf: bool,
    /// The process step the open case is in (§9.2.2), counted from 1, and its name.
    pub step_no: Option<u32>,
    pub step_name: Option<String>,
    /// That step's deadline and the first days of its yellow and red warnings, when it has
    /// a limit of its own: stored as the case's own are ([`CaseRow::yellow_on`]), frozen
    /// alike while the clock is stopped, so a query derives the step's level from today.
    pub step_due: Option<String>,
    pub step_yellow_on: Option<String>,
    pub step_red_on: Option<String>,
    /// The payments and exemptions that count (§9.5), for the fee statistics.
    pub fees: Vec<FeeRow>,
}

/// One `case_fees` row: a payment or an exemption that counts (neither voided nor in
/// conflict), as `derive` applied it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeeRow {
    pub event_id: String,
    /// `pay` or `exempt`, as the event kinds.
    pub kind: &'static str,
    pub fee: String,
    pub amount_fen: u64,
    pub method: Option<&'static str>,
    pub receipt: Option<String>,
    /// The day it was recorded, China time.
    pub on: String,
    pub staff: String,
}

/// One `case_events` row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventRow {
    pub case_id: String,
    pub event_id: String,
    pub at_hlc: String,
    pub at_ms: i64,
    pub node: String,
    pub staff: String,
    pub kind: &'static str,
    /// The event did not apply where it fell in the merged order.
    pub conflict: bool,
    pub body_json: String,
    /// A lead's resolution voided the event.
    pub voided: bool,
}

/// A warning date before every real date: the level was reached.
pub const LEVEL_REACHED: &str = "0000-01-01";
/// A warning date after every real date: the level is not reached.
pub const LEVEL_NOT_REACHED: &str = "9999-12-31";

/// The three warning dates of a case as stored: real dates while the clock runs, the
/// frozen level while suspended, none once closed.
fn warning_dates(state: &case::CaseState, deadlines: Option<&Deadlines>) -> [Option<String>; 3] {
    let Some(d) = deadlines else {
        return [None, None, None];
    };
    if state.status.is_closed() {
        return [None, None, None];
    }
    match (state.clock_frozen, state.suspended_since) {
        (true, Some(since)) => {
            let level = d.level_on(since);
            [
                WarningLevel::Yellow,
                WarningLevel::Red,
                WarningLevel::LegalBreach,
            ]
            .map(|l| {
                Some(
                    if level >= l {
                        LEVEL_REACHED
                    } else {
                        LEVEL_NOT_REACHED
                    }
                    .to_string(),
                )
            })
        }
        _ => [d.yellow_on, d.red_on, d.breach_on].map(|date| Some(date.to_string())),
    }
}

/// The current step of a case as stored: its number and name, and its deadline and warning
/// dates (real dates while the clock runs, the frozen level while it is stopped), by the
/// rule the case's own warning dates follow ([`warning_dates`]).
#[allow(clippy::type_complexity)]
fn step_columns(
    state: &case::CaseState,
    intake: &case::Intake,
    calendar: &Calendar,
) -> (Option<u32>, Option<String>, [Option<String>; 3]) {
    let Some(number) = state.current_step() else {
        return (None, None, [None, None, None]);
    };
    let Some(rule) = intake.item.steps.get(number as usize - 1) else {
        return (None, None, [None, None, None]);
    };
    let (started_on, days) = match (state.steps.last(), rule.days) {
        (Some(record), Some(days)) => (record.started_on, days),
        _ => return (Some(number), Some(rule.name.clone()), [None, None, None]),
    };
    let step = crate::domain::calendar::StepDeadline::compute(
        calendar,
        started_on,
        days,
        intake.item.yellow,
        &state.suspensions,
    );
    let dates = match (state.clock_frozen, state.suspended_since) {
        (true, Some(since)) => {
            let level = step.level_on(since);
            let mark = |l: WarningLevel| {
                Some(
                    if level >= l {
                        LEVEL_REACHED
                    } else {
                        LEVEL_NOT_REACHED
                    }
                    .to_string(),
                )
            };
            [
                Some(step.due.to_string()),
                mark(WarningLevel::Yellow),
                mark(WarningLevel::Red),
            ]
        }
        _ => [
            Some(step.due.to_string()),
            Some(step.yellow_on.to_string()),
            Some(step.red_on.to_string()),
        ],
    };
    (Some(number), Some(rule.name.clone()), dates)
}

/// The payments and exemptions of a case's fee lines, one row each.
fn fee_rows(fees: &crate::domain::fee::CaseFees) -> Vec<FeeRow> {
    let mut rows = Vec::new();
    for line in &fees.lines {
        if let Some(p) = &line.payment {
            rows.push(FeeRow {
                event_id: p.event_id.clone(),
                kind: "pay",
                fee: line.line.name.clone(),
                amount_fen: p.amount_fen,
                method: Some(p.method.as_str()),
                receipt: Some(p.receipt.clone()),
                on: p.on.to_string(),
                staff: p.staff.clone(),
            });
        }
        if let Some(e) = &line.exemption {
            rows.push(FeeRow {
                event_id: e.event_id.clone(),
                kind: "exempt",
                fee: line.line.name.clone(),
                amount_fen: e.amount_fen,
                method: None,
                receipt: None,
                on: e.on.to_string(),
                staff: e.staff.clone(),
            });
        }
    }
    rows
}

/// Derives the rows of a case from its own document. A combined case's row is derived
/// as if none of its parts were held; the store writes it again with the parts it holds
/// ([`case_rows_with_parts`]).
pub fn case_rows(id: &DocId, case_doc: &CaseDoc, calendar: &Calendar) -> (CaseRow, Vec<EventRow>) {
    case_rows_with_parts(id, case_doc, &[], calendar)
}

/// Derives the rows of a case; a combined case's status and decision come from its parts
/// as this node holds them (`combined::combine`, 行政许可法 §26), as its page shows them,
/// so lists, warnings and statistics count the whole as decided once every part is.
pub fn case_rows_with_parts(
    id: &DocId,
    case_doc: &CaseDoc,
    parts: &[Option<crate::domain::combined::PartState>],
    calendar: &Calendar,
) -> (CaseRow, Vec<EventRow>) {
    let intake = &case_doc.intake;
    let state =
        crate::domain::combined::combine(intake, case::derive(intake, &case_doc.events), parts);
    let deadlines = if state.status.has_deadlines() {
        state.deadlines(intake, calendar)
    } else {
        None
    };
    let [yellow_on, red_on, breach_on] = warning_dates(&state, deadlines.as_ref());
    let (step_no, step_name, [step_due, step_yellow_on, step_red_on]) =
        step_columns(&state, intake, calendar);
    let date = |d: Date| d.to_string();
    let row = CaseRow {
        id: id.to_string(),
        part_of: intake.part_of.as_ref().map(|p| (p.parent.clone(), p.index)),
        combined_parent: intake.is_parent(),
        scope: case_doc.scope.to_string(),
        impl_code: intake.item.impl_code.to_string(),
        item_name: intake.item.name.clone(),
        item_version: intake.item.version,
        case_type: match intake.item.case_type {
            crate::domain::item::CaseType::Instant => "instant",
            crate::domain::item::CaseType::Committed => "committed",
        },
        status: state.status.as_str(),
        conflict: !state.conflicts.is_empty(),
        serial_no: state.serial_no.as_ref().map(|s| s.to_string()),
        applicant_name: intake.applicant.name().to_string(),
        applicant_id_masked: intake.applicant.id_masked(),
        phone_tail: intake.applicant.phone().tail(),
        counter: intake.counter.clone(),
        staff: intake.staff.clone(),
        node: intake.node.to_hex(),
        created_ms: intake.submitted_at.unix_ms() as i64,
        created_on: date(Date::from_unix_ms_cst(intake.submitted_at.unix_ms() as i64)),
        accepted_on: state.accepted_on.map(date),
        committed_due: deadlines.as_ref().map(|d| date(d.committed_due)),
        legal_due: deadlines.as_ref().map(|d| date(d.legal_due)),
        yellow_on,
        red_on,
        breach_on,
        clock_stopped_on: state.suspended_since.map(date),
        closed_on: state.closed_on.map(date),
        // The calendar the deadlines were counted on now (a year the halls published since
        // acceptance counts), else the one named at acceptance.
        calendar: deadlines
            .as_ref()
            .map(|_| calendar.version().to_string())
            .or_else(|| state.calendar.clone()),
        calendar_covered: deadlines.as_ref().is_none_or(|d| d.calendar_covered),
        updated_hlc: state.last_event_at.unwrap_or(intake.submitted_at).to_hex(),
        holder: state.holder.clone(),
        holder_node: state.holder_node.map(|n| n.to_hex()),
        signed_on: state.signed_for.as_ref().map(|s| date(s.on)),
        rating: state.rating.as_ref().map(|r| r.level),
        rated_on: state.rating.as_ref().map(|r| date(r.on)),
        rectify_due: state.rectification.as_ref().map(|r| date(r.due(calendar))),
        rectified_on: state
            .rectification
            .as_ref()
            .and_then(|r| r.closed_on)
            .map(date),
        query_code: crate::domain::query_code::of_case(id.as_str()),
        applicant_id: match &intake.applicant {
            crate::domain::case::Applicant::NaturalPerson { id_number, .. } => {
                id_number.as_str().to_string()
            }
            crate::domain::case::Applicant::LegalPerson { credit_code, .. } => {
                credit_code.as_str().to_string()
            }
        },
        phone_digits: intake
            .applicant
            .phone()
            .as_str()
            .chars()
            .filter(char::is_ascii_digit)
            .collect(),
        signed_on_behalf: state
            .signed_for
            .as_ref()
            .is_some_and(|s| s.on_behalf_of.is_some()),
        step_no,
        step_name,
        step_due,
        step_yellow_on,
        step_red_on,
        fees: fee_rows(&state.fees),
    };
    let conflicting: Vec<&str> = state
        .conflicts
        .iter()
        .map(|c| c.event_id.as_str())
        .collect();
    let events = case_doc
        .events
        .iter()
        .map(|event| {
            let event_id = event.id();
            EventRow {
                case_id: id.to_string(),
                conflict: conflicting.contains(&event_id.as_str()),
                voided: state.voided.contains(&event_id),
                event_id,
                at_hlc: event.at.to_hex(),
                at_ms: event.at.unix_ms() as i64,
                node: event.node.to_hex(),
                staff: event.staff.clone(),
                kind: event.action.kind().as_str(),
                body_json: to_json(&event.action),
            }
        })
        .collect();
    (row, events)
}

/// The `items` row of an item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemRow {
    pub id: String,
    pub scope: String,
    pub impl_code: String,
    pub basic_code: String,
    pub name: String,
    pub category: String,
    pub kind: &'static str,
    pub level: &'static str,
    pub case_type: &'static str,
    pub legal_days: u32,
    pub committed_days: u32,
    pub status: &'static str,
    pub version: u32,
    /// What the catalog search matches: name, category, subject and codes.
    pub search_text: String,
    pub body_json: String,
}

/// Derives the row of an item.
pub fn item_row(id: &DocId, item_doc: &ItemDoc) -> ItemRow {
    let item = &item_doc.item;
    ItemRow {
        id: id.to_string(),
        scope: item_doc.scope.to_string(),
        impl_code: item.impl_code.to_string(),
        basic_code: item.basic_code().to_string(),
        name: item.name.clone(),
        category: item.category.clone(),
        kind: item.kind.code(),
        level: item.level().zh(),
        case_type: match item.case_type {
            crate::domain::item::CaseType::Instant => "instant",
            crate::domain::item::CaseType::Committed => "committed",
        },
        legal_days: item.legal_limit_days,
        committed_days: item.committed_limit_days,
        status: match item.status {
            crate::domain::item::ItemStatus::Published => "published",
            crate::domain::item::ItemStatus::Cancelled => "cancelled",
        },
        version: item.version,
        search_text: [
            item.name.as_str(),
            &item.category,
            &item.subject.name,
            item.impl_code.as_str(),
        ]
        .join("\u{1f}"),
        body_json: to_json(item),
    }
}

/// The contents of a registry document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegistryDoc {
    pub scope: Scope,
    /// The records, in node-id order. Records for nodes outside the registry's division
    /// are left out: a hall vouches only for its subtree.
    pub records: Vec<NodeRecord>,
}

/// The document id of a hall's registry.
pub fn registry_doc_id(division: &crate::domain::codes::DivisionCode) -> DocId {
    DocId::parse(&format!("r-{division}")).expect("digits are a valid id")
}

/// Creates a hall's registry document with its first records.
pub fn new_registry(
    origin: &Origin,
    scope: &Scope,
    records: &[NodeRecord],
    unix_ms: u64,
) -> Result<(DocId, Automerge), DocError> {
    let mut doc = new_doc(origin);
    doc.transact_with(
        |_| commit_options(unix_ms, "enroll"),
        |tx| {
            tx.put(ROOT, "schema", SCHEMA)?;
            tx.put(ROOT, "kind", DocKind::Registry.as_str())?;
            tx.put(ROOT, "scope", scope.as_str())?;
            let nodes = tx.put_object(ROOT, "nodes", ObjType::Map)?;
            for record in records {
                tx.put(&nodes, record.node.to_hex(), to_json(record))?;
            }
            Ok::<_, AutomergeError>(())
        },
    )
    .map_err(|f| f.error)?;
    Ok((registry_doc_id(&scope.division()), doc))
}

/// Adds or replaces records (enrollment, revocation) in a registry document.
pub fn put_records(
    doc: &mut Automerge,
    origin: &Origin,
    records: &[NodeRecord],
    unix_ms: u64,
) -> Result<(), DocError> {
    let nodes = match doc.get(ROOT, "nodes")? {
        Some((automerge::Value::Object(ObjType::Map), id)) => id,
        _ => return Err(DocError::Missing("nodes")),
    };
    doc.set_actor(origin.actor());
    doc.transact_with(
        |_| commit_options(unix_ms, "enroll"),
        |tx| {
            for record in records {
                tx.put(&nodes, record.node.to_hex(), to_json(record))?;
            }
            Ok::<_, AutomergeError>(())
        },
    )
    .map_err(|f| f.error)?;
    Ok(())
}

/// Reads a registry document.
pub fn read_registry(doc: &Automerge) -> Result<RegistryDoc, DocError> {
    let root = Root::read(doc);
    let scope = root.expect_kind(DocKind::Registry)?;
    let division = scope.division();
    let mut records = Vec::new();
    for entry in doc.map_range(root.map("nodes")?, ..) {
        let ValueRef::Scalar(ScalarValueRef::Str(text)) = &entry.value else {
            return Err(DocError::Missing("node record text"));
        };
        let record: NodeRecord = parse_json(&format!("nodes.{}", entry.key), text)?;
        if record.node.to_hex() == entry.key
            && record.is_consistent()
            && record.division.is_within(&division)
        {
            records.push(record);
        }
    }
    Ok(RegistryDoc { scope, records })
}

/// Applies a change received from another node to a document (a new, empty one when the
/// document is new here). Everything is checked before the document is touched: bytes that
/// are not a change, or a change whose dependencies the document lacks, leave it as it was.
pub fn apply_change(doc: &mut Automerge, bytes: &[u8]) -> Result<(), DocError> {
    let change = automerge::Change::from_bytes(bytes.to_vec())
        .map_err(|e| DocError::BadChange(e.to_string()))?;
    apply_parsed(doc, change)
}

/// [`apply_change`] for a change already parsed.
pub fn apply_parsed(doc: &mut Automerge, change: automerge::Change) -> Result<(), DocError> {
    if doc.get_change_by_hash(&change.hash()).is_some() {
        return Ok(());
    }
    let missing = doc.get_missing_deps(change.deps());
    if !missing.is_empty() {
        return Err(DocError::MissingDependencies(missing.len()));
    }
    doc.apply_changes([change])?;
    Ok(())
}

/// The contents of a record document (a notice, a supervision notice or reply, a
/// calendar year): a few text fields beside the header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordDoc {
    pub kind: DocKind,
    pub scope: Scope,
    pub fields: std::collections::BTreeMap<String, String>,
}

impl RecordDoc {
    /// A field's text, empty when absent.
    pub fn field(&self, name: &str) -> &str {
        self.fields.get(name).map_or("", String::as_str)
    }
}

/// The fields each kind of record document holds.
pub fn record_fields(kind: DocKind) -> &'static [&'static str] {
    match kind {
        DocKind::Notice => &["content", "digest", "seal"],
        DocKind::Supervision | DocKind::Reply | DocKind::Notification | DocKind::Department => {
            &["body"]
        }
        DocKind::Calendar => &["text"],
        DocKind::Staff => &["account"],
        DocKind::Item | DocKind::Case | DocKind::Registry | DocKind::Attachment => &[],
    }
}

/// Creates a record document with its fields, in one change.
pub fn new_record(
    origin: &Origin,
    scope: &Scope,
    kind: DocKind,
    fields: &[(&str, String)],
    unix_ms: u64,
) -> Result<Automerge, DocError> {
    let mut doc = new_doc(origin);
    doc.transact_with(
        |_| commit_options(unix_ms, kind.as_str()),
        |tx| {
            tx.put(ROOT, "schema", SCHEMA)?;
            tx.put(ROOT, "kind", kind.as_str())?;
            tx.put(ROOT, "scope", scope.as_str())?;
            for (name, value) in fields {
                tx.put(ROOT, *name, value.as_str())?;
            }
            Ok::<_, AutomergeError>(())
        },
    )
    .map_err(|f| f.error)?;
    Ok(doc)
}

/// Replaces a field of a record document that may change (a calendar year's text).
pub fn put_record_field(
    doc: &mut Automerge,
    origin: &Origin,
    field: &str,
    value: &str,
    unix_ms: u64,
) -> Result<(), DocError> {
    doc.set_actor(origin.actor());
    doc.transact_with(
        |_| commit_options(unix_ms, "publish"),
        |tx| tx.put(ROOT, field, value),
    )
    .map_err(|f| f.error)?;
    Ok(())
}

/// Reads a record document.
pub fn read_record(doc: &Automerge) -> Result<RecordDoc, DocError> {
    let root = Root::read(doc);
    let (kind, scope) = root.header()?;
    let names = record_fields(kind);
    if names.is_empty() {
        return Err(DocError::WrongKind {
            expected: "a record",
            found: kind.as_str().to_string(),
        });
    }
    let mut fields = std::collections::BTreeMap::new();
    for name in names {
        fields.insert(name.to_string(), root.text(name)?.to_string());
    }
    Ok(RecordDoc {
        kind,
        scope,
        fields,
    })
}

/// The derived rows of any document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rows {
    Item(Box<ItemRow>),
    Case(Box<CaseRow>, Vec<EventRow>),
    Registry(RegistryDoc),
    Record(RecordDoc),
    /// An attachment's record, without its bytes.
    Attachment(Scope, Attachment),
}

/// Reads a document of any kind and derives its rows.
pub fn rows(id: &DocId, doc: &Automerge, calendar: &Calendar) -> Result<Rows, DocError> {
    let root = Root::read(doc);
    let (kind, _) = root.header()?;
    Ok(match kind {
        DocKind::Item => Rows::Item(Box::new(item_row(id, &read_item(doc)?))),
        DocKind::Case => {
            let (case, events) = case_rows(id, &read_case_root(doc, &root)?, calendar);
            Rows::Case(Box::new(case), events)
        }
        DocKind::Registry => Rows::Registry(read_registry(doc)?),
        DocKind::Notice
        | DocKind::Supervision
        | DocKind::Reply
        | DocKind::Calendar
        | DocKind::Notification
        | DocKind::Staff
        | DocKind::Department => Rows::Record(read_record(doc)?),
        DocKind::Attachment => {
            let (scope, attachment) = read_attachment_meta(doc)?;
            Rows::Attachment(scope, attachment)
        }
    })
}

/// Creates an attachment document: its record and its bytes, in one change that is never
/// followed by another.
pub fn new_attachment(
    origin: &Origin,
    scope: &Scope,
    attachment: &Attachment,
    bytes: &[u8],
    unix_ms: u64,
) -> Result<(DocId, Automerge), DocError> {
    let mut doc = new_doc(origin);
    doc.transact_with(
        |_| commit_options(unix_ms, "attach"),
        |tx| {
            tx.put(ROOT, "schema", SCHEMA)?;
            tx.put(ROOT, "kind", DocKind::Attachment.as_str())?;
            tx.put(ROOT, "scope", scope.as_str())?;
            tx.put(ROOT, "meta", to_json(attachment))?;
            tx.put(ROOT, "content", bytes.to_vec())?;
            Ok::<_, AutomergeError>(())
        },
    )
    .map_err(|f| f.error)?;
    Ok((attachment.doc_id(&scope.division()), doc))
}

/// Reads an attachment's scope and record, leaving its bytes in the document.
pub fn read_attachment_meta(doc: &Automerge) -> Result<(Scope, Attachment), DocError> {
    let root = Root::read(doc);
    let scope = root.expect_kind(DocKind::Attachment)?;
    Ok((scope, parse_json("meta", root.text("meta")?)?))
}

/// Reads an attachment's record and bytes.
pub fn read_attachment(doc: &Automerge) -> Result<(Scope, Attachment, Vec<u8>), DocError> {
    let (scope, attachment) = read_attachment_meta(doc)?;
    let bytes = match doc.get(ROOT, "content")? {
        Some((automerge::Value::Scalar(value), _)) => match value.as_ref() {
            automerge::ScalarValue::Bytes(bytes) => bytes.clone(),
            _ => return Err(DocError::Missing("content")),
        },
        _ => return Err(DocError::Missing("content")),
    };
    Ok((scope, attachment, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::case::{Action, Applicant, MaterialReceived, NewCase, Phone};
    use crate::domain::codes::{DivisionCode, ResidentId};
    use crate::domain::hlc::Hlc;
    use crate::domain::item::tests::sample_item;
    use crate::domain::serial::SerialNo;
    use crate::ids::NodeId;

    fn origin(n: u8) -> Origin {
        Origin {
            node: NodeId([n; 16]),
            epoch: 1,
        }
    }

    fn intake() -> Intake {
        Intake::new(
            &sample_item(),
            NewCase {
                situations: Vec::new(),
                applicant: Applicant::NaturalPerson {
                    name: "李四".into(),
                    id_number: ResidentId::parse("11010519491231002X").unwrap(),
                    phone: Phone::parse("13800138000").unwrap(),
                },
                agent: None,
                materials: vec![MaterialReceived {
                    name: "户口簿".into(),
                    originals: 1,
                    copies: 1,
                }],
                counter: "1".into(),
                note: String::new(),
            },
            "worker",
            origin(1).node,
            DivisionCode::parse("440399001001").unwrap(),
            Hlc::new(1_772_413_200_000, 0),
        )
        .unwrap()
    }

    fn accept_event(node: u8, ms: u64) -> Event {
        Event {
            at: Hlc::new(ms, 0),
            node: NodeId([node; 16]),
            staff: "w".into(),
            counter: String::new(),
            stand_in_for: None,
            action: Action::Accept {
                serial_no: SerialNo::parse("11440399990000017K4000599301000202603029900100110001")
                    .unwrap(),
                calendar: Calendar::china().version().into(),
            },
        }
    }

    #[test]
    fn case_round_trip_through_save_and_load() {
        let scope = Scope::parse("case/440399001001").unwrap();
        let (id, mut doc) = new_case(&origin(1), &scope, &intake()).unwrap();
        assert!(id.as_str().starts_with("c-"));
        add_events(&mut doc, &origin(1), &[accept_event(1, 1_772_413_300_000)]).unwrap();
        assert_eq!(doc.get_changes(&[]).len(), 2);
        let loaded = Automerge::load(&doc.save()).unwrap();
        let case_doc = read_case(&loaded).unwrap();
        assert_eq!(case_doc.intake, intake());
        assert_eq!(case_doc.events.len(), 1);
        let (row, events) = case_rows(&id, &case_doc, Calendar::china());
        assert_eq!(row.status, "accepted");
        assert_eq!(row.accepted_on.as_deref(), Some("2026-03-02"));
        assert_eq!(row.committed_due.as_deref(), Some("2026-03-30"));
        assert_eq!(row.phone_tail, "8000");
        assert_eq!(row.applicant_id_masked, "110105********002X");
        assert_eq!(events.len(), 1);
        assert!(!row.conflict);
    }

    /// An event of a kind from a newer version is kept and named, and the rest of the
    /// case reads as before; damaged event text is still an error.
    #[test]
    fn events_of_a_newer_kind_are_kept_and_do_not_count() {
        let scope = Scope::parse("case/440399001001").unwrap();
        let (id, mut doc) = new_case(&origin(1), &scope, &intake()).unwrap();
        add_events(&mut doc, &origin(1), &[accept_event(1, 1_772_413_300_000)]).unwrap();
        let events = match doc.get(ROOT, "events").unwrap() {
            Some((automerge::Value::Object(ObjType::Map), events)) => events,
            other => panic!("{other:?}"),
        };
        let mut with_newer = doc.fork();
        with_newer
            .transact::<_, _, AutomergeError>(|tx| {
                tx.put(
                    &events,
                    "0000000000000001-02020202020202020202020202020202",
                    r#"{"at":"0000000000000001","node":"02020202020202020202020202020202","staff":"x","kind":"terminate","reason":"终止"}"#,
                )?;
                Ok(())
            })
            .unwrap();
        let case_doc = read_case(&with_newer).unwrap();
        assert_eq!(case_doc.events.len(), 1);
        assert_eq!(case_doc.newer.len(), 1);
        assert_eq!(case_doc.newer[0].kind, "terminate");
        let (row, rows) = case_rows(&id, &case_doc, Calendar::china());
        assert_eq!(row.status, "accepted");
        assert_eq!(rows.len(), 1);

        let mut damaged = doc.fork();
        damaged
            .transact::<_, _, AutomergeError>(|tx| {
                tx.put(
                    &events,
                    "0000000000000001-02020202020202020202020202020202",
                    "{not json",
                )?;
                tx.put(
                    &events,
                    "0000000000000002-02020202020202020202020202020202",
                    r#"{"kind":"accept"}"#,
                )?;
                Ok(())
            })
            .unwrap();
        assert!(read_case(&damaged).is_err());
    }

    #[test]
    fn warning_dates_freeze_while_suspended_and_vanish_when_closed() {
        let scope = Scope::parse("case/440399001001").unwrap();
        let (id, mut doc) = new_case(&origin(1), &scope, &intake()).unwrap();
        add_events(&mut doc, &origin(1), &[accept_event(1, 1_772_413_300_000)]).unwrap();
        // Suspended on 2026-03-28, after the yellow day (03-25) and before red (03-31).
        let day_ms =
            |d: &str| (d.parse::<Date>().unwrap().days_since_epoch() as u64 * 86_400 + 3600) * 1000;
        let suspend = Event {
            at: Hlc::new(day_ms("2026-03-28"), 0),
            node: NodeId([1; 16]),
            staff: "w".into(),
            counter: String::new(),
            stand_in_for: None,
            action: Action::Suspend {
                procedure: "专家评审".into(),
                reason: "需专家评审，期限未定".into(),
            },
        };
        add_events(&mut doc, &origin(1), &[suspend]).unwrap();
        let (row, _) = case_rows(&id, &read_case(&doc).unwrap(), Calendar::china());
        assert_eq!(row.status, "suspended");
        assert_eq!(row.clock_stopped_on.as_deref(), Some("2026-03-28"));
        assert_eq!(row.yellow_on.as_deref(), Some(LEVEL_REACHED));
        assert_eq!(row.red_on.as_deref(), Some(LEVEL_NOT_REACHED));
        assert_eq!(row.breach_on.as_deref(), Some(LEVEL_NOT_REACHED));
        assert_eq!(row.committed_due.as_deref(), Some("2026-03-30"));

        let resume = Event {
            at: Hlc::new(day_ms("2026-04-08"), 0),
            node: NodeId([1; 16]),
            staff: "w".into(),
            counter: String::new(),
            stand_in_for: None,
            action: Action::Resume {
                note: String::new(),
            },
        };
        let withdraw = Event {
            at: Hlc::new(day_ms("2026-04-09"), 0),
            node: NodeId([1; 16]),
            staff: "w".into(),
            counter: String::new(),
            stand_in_for: None,
            action: Action::Withdraw {
                reason: "申请人撤回".into(),
            },
        };
        add_events(&mut doc, &origin(1), &[resume]).unwrap();
        let (row, _) = case_rows(&id, &read_case(&doc).unwrap(), Calendar::china());
        // Days 18 and 19 were 03-26 and 03-27; suspended from 03-28 until 04-08, so the
        // 20th working day is 04-08 itself (03-30 to 04-07 no longer count).
        assert_eq!(row.committed_due.as_deref(), Some("2026-04-08"));
        assert_eq!(row.red_on.as_deref(), Some("2026-04-09"));
        add_events(&mut doc, &origin(1), &[withdraw]).unwrap();
        let (row, _) = case_rows(&id, &read_case(&doc).unwrap(), Calendar::china());
        assert_eq!(
            (row.status, row.yellow_on, row.closed_on.as_deref()),
            ("withdrawn", None, Some("2026-04-09"))
        );
    }

    #[test]
    fn concurrent_events_from_two_nodes_merge() {
        let scope = Scope::parse("case/440399001001").unwrap();
        let (id, mut station) = new_case(&origin(1), &scope, &intake()).unwrap();
        add_events(
            &mut station,
            &origin(1),
            &[accept_event(1, 1_772_413_300_000)],
        )
        .unwrap();
        let mut hall = Automerge::load(&station.save()).unwrap();
        let withdraw = Event {
            at: Hlc::new(1_772_500_000_000, 0),
            node: NodeId([1; 16]),
            staff: "w".into(),
            counter: String::new(),
            stand_in_for: None,
            action: Action::Withdraw {
                reason: "申请人撤回".into(),
            },
        };
        let decide = Event {
            at: Hlc::new(1_772_500_000_000, 0),
            node: NodeId([2; 16]),
            staff: "h".into(),
            counter: String::new(),
            stand_in_for: None,
            action: Action::Decide {
                approved: true,
                reason: "".into(),
                basis: "".into(),
                remedies: "".into(),
                on_behalf_of: None,
            },
        };
        add_events(&mut station, &origin(1), std::slice::from_ref(&withdraw)).unwrap();
        add_events(&mut hall, &origin(2), std::slice::from_ref(&decide)).unwrap();
        let to_hall = station.get_changes(&hall.get_heads());
        let to_station = hall.get_changes(&station.get_heads());
        hall.apply_changes(to_hall).unwrap();
        station.apply_changes(to_station).unwrap();
        assert_eq!(heads_bytes(&hall), heads_bytes(&station));
        let rows_a = case_rows(&id, &read_case(&station).unwrap(), Calendar::china());
        let rows_b = case_rows(&id, &read_case(&hall).unwrap(), Calendar::china());
        assert_eq!(rows_a, rows_b);
        assert!(rows_a.0.conflict);
        assert_eq!(rows_a.1.iter().filter(|e| e.conflict).count(), 1);
    }

    #[test]
    fn items_round_trip_and_new_versions_replace_old() {
        let scope = Scope::parse("catalog/440399").unwrap();
        let mut item = sample_item();
        let (id, mut doc) = new_item(&origin(9), &scope, &item, 1_000).unwrap();
        item.version = 2;
        item.name = "最低生活保障审核确认".into();
        put_item(&mut doc, &origin(9), &item, 2_000).unwrap();
        let read = read_item(&Automerge::load(&doc.save()).unwrap()).unwrap();
        assert_eq!(read.item, item);
        let row = item_row(&id, &read);
        assert_eq!(
            (row.version, row.kind, row.case_type),
            (2, "05", "committed")
        );
        assert!(row.search_text.contains("审核确认"));
        // Every version held is read again from the history, from a saved copy too.
        let versions = item_versions(&Automerge::load(&doc.save()).unwrap()).unwrap();
        let held: Vec<(u32, &str)> = versions
            .iter()
            .map(|i| (i.version, i.name.as_str()))
            .collect();
        assert_eq!(held, [(1, "最低生活保障申请"), (2, "最低生活保障审核确认")]);
    }

    #[test]
    fn malformed_documents_are_errors_not_panics() {
        let scope = Scope::parse("catalog/440399").unwrap();
        let (_, item_doc) = new_item(&origin(9), &scope, &sample_item(), 1_000).unwrap();
        assert!(matches!(
            read_case(&item_doc),
            Err(DocError::WrongKind { .. })
        ));

        let mut doc = Automerge::new();
        doc.transact(|tx| {
            tx.put(ROOT, "schema", 1)?;
            tx.put(ROOT, "kind", "case")?;
            tx.put(ROOT, "scope", "case/440399001001")?;
            tx.put(ROOT, "intake", "{not json")?;
            Ok::<_, AutomergeError>(())
        })
        .unwrap();
        assert!(matches!(read_case(&doc), Err(DocError::BadJson { .. })));

        let mut newer = Automerge::new();
        newer.transact(|tx| tx.put(ROOT, "schema", 99)).unwrap();
        assert!(matches!(header(&newer), Err(DocError::NewerSchema(99))));
        assert!(matches!(
            header(&Automerge::new()),
            Err(DocError::Missing("schema"))
        ));
    }
}
