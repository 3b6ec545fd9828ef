//! Cases: receiving applications, recording events, and the counter's lists.

use rusqlite::{Connection, OptionalExtension, Row, params};
use yizhan_sync::auth::NodeRecord;
use yizhan_sync::doc;
use yizhan_sync::doc::{CaseRow, EventRow};
use yizhan_sync::domain::calendar::{Calendar, Date, WarningLevel};
use yizhan_sync::domain::case::{
    self, Action, ActionKind, CaseState, Event, Intake, MaterialReceived, NewCase, Shortfall,
    Status,
};
use yizhan_sync::domain::codes::{DivisionCode, ImplCode};
use yizhan_sync::domain::combined::{self, PartState};
use yizhan_sync::domain::serial::SerialNo;
use yizhan_sync::engine::{self, Actor, Person};
use yizhan_sync::ids::{DocId, DocKind, Scope};

use super::hall::hall_index;
use super::writer::{Staff, WriteCtx, store_case_rows};
use super::{Store, StoreError};
use crate::i18n::Words;

/// An action a person asks for (the engine's `Request`): acceptance is the one whose
/// content the node fills in, the serial number and the calendar.
pub use yizhan_sync::engine::Request as NewAction;

/// The order of a case list. Level filters sort by urgency so the first page holds the
/// cases that need attention first; that order also lets the query walk an index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Newest first.
    Created,
    /// Soonest committed deadline first.
    DueSoon,
    /// Soonest (or oldest) legal deadline first.
    LegalDue,
    /// Soonest committed deadline first, cases without one (not yet accepted) last: the
    /// open cases (在办) as the counter works through them.
    Deadline,
}

impl Order {
    fn for_level(level: Option<WarningLevel>) -> Order {
        match level {
            None => Order::Created,
            Some(WarningLevel::Normal | WarningLevel::Yellow) => Order::DueSoon,
            Some(WarningLevel::Red | WarningLevel::LegalBreach) => Order::LegalDue,
        }
    }

    fn letter(self) -> char {
        match self {
            Order::Created => 'c',
            Order::DueSoon => 'd',
            Order::LegalDue => 'l',
            Order::Deadline => 'o',
        }
    }
}

/// Which cases to list.
#[derive(Clone, Debug)]
pub struct CaseFilter {
    pub status: Option<Status>,
    pub level: Option<WarningLevel>,
    pub impl_code: Option<ImplCode>,
    pub counter: Option<String>,
    /// Only the cases of this division and the divisions below it: one station's (its
    /// 12-digit code) or a sub-district's (9 digits), at a hall.
    pub division: Option<yizhan_sync::domain::codes::DivisionCode>,
    /// Only the cases sent to this department (转办 to it, its name as the transfer says).
    pub holder: Option<String>,
    pub created_from: Option<Date>,
    pub created_to: Option<Date>,
    pub conflict_only: bool,
    /// Only cases still open (在办): received, awaiting materials, accepted, suspended or
    /// decided.
    pub open_only: bool,
    /// What a search box asked for: the cases matching any of it.
    pub search: Option<CaseSearch>,
    /// The order, when not the one the level filter implies.
    pub order: Option<Order>,
    pub cursor: Option<String>,
    pub limit: u32,
    /// The day warning levels are computed for.
    pub today: Date,
}

impl CaseFilter {
    /// Every case, newest first, 50 a page.
    pub fn all(today: Date) -> CaseFilter {
        CaseFilter {
            status: None,
            level: None,
            impl_code: None,
            counter: None,
            division: None,
            holder: None,
            created_from: None,
            created_to: None,
            conflict_only: false,
            open_only: false,
            search: None,
            order: None,
            cursor: None,
            limit: 50,
            today,
        }
    }
}

/// What the text of a search box can mean; a case matches when it matches any of it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaseSearch {
    /// The applicant's query code, well formed with its check character.
    pub query_code: Option<String>,
    /// A full resident identity number or credit code.
    pub applicant_id: Option<String>,
    /// A phone number's digits (7 to 15).
    pub phone: Option<String>,
    /// Four digits: the last of the applicant's phone.
    pub phone_tail: Option<String>,
    /// A serial number or its last characters (at least four).
    pub serial_tail: Option<String>,
    /// Part of the applicant's name.
    pub name: Option<String>,
}

impl CaseSearch {
    /// What `text` can mean; `None` for an empty box.
    pub fn parse(text: &str) -> Option<CaseSearch> {
        use yizhan_sync::domain::codes::{CreditCode, ResidentId};
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        if compact.is_empty() {
            return None;
        }
        let compact: String = compact.chars().take(60).collect();
        let upper = compact.to_uppercase();
        let digits: String = compact.chars().filter(char::is_ascii_digit).collect();
        let phone_like = compact
            .chars()
            .all(|c| c.is_ascii_digit() || c == '-' || c == '+');
        let alphanumeric = upper.chars().all(|c| c.is_ascii_alphanumeric());
        Some(CaseSearch {
            query_code: yizhan_sync::domain::query_code::normalize(&compact),
            applicant_id: (ResidentId::parse(&upper).is_ok() || CreditCode::parse(&upper).is_ok())
                .then(|| upper.clone()),
            phone: (phone_like && (7..=15).contains(&digits.len())).then(|| digits.clone()),
            phone_tail: (compact.len() == 4 && digits.len() == 4).then(|| digits.clone()),
            serial_tail: (alphanumeric && upper.len() >= 4).then(|| upper.clone()),
            // Anything with a letter or a character may be part of a name.
            name: (!phone_like).then(|| text.trim().chars().take(60).collect()),
        })
    }
}

/// A case as lists show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseSummary {
    pub id: String,
    pub serial_no: Option<String>,
    pub status: Status,
    pub conflict: bool,
    pub impl_code: String,
    pub item_name: String,
    pub case_type: String,
    pub applicant_name: String,
    pub applicant_id_masked: String,
    pub counter: String,
    pub staff: String,
    pub created_ms: i64,
    pub accepted_on: Option<String>,
    pub committed_due: Option<String>,
    pub legal_due: Option<String>,
    /// Warning level today; `None` for cases without running time limits.
    pub level: Option<WarningLevel>,
    pub clock_stopped_on: Option<String>,
    pub closed_on: Option<String>,
    /// The division whose cases it is (its station's), in lists; `None` elsewhere.
    pub division: Option<String>,
    /// The process step the open case is in (§9.2.2), if its item lists steps.
    pub step: Option<StepSummary>,
}

/// A case's step past its limit (环节超期), as supervision names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LateStep {
    /// Counted from 1.
    pub number: u32,
    pub name: String,
    pub due: Date,
    /// Working days past `due`, today.
    pub late_days: u32,
}

/// The step a case is in, as lists show it (derived as `doc::case_rows` stores it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepSummary {
    /// Counted from 1.
    pub number: u32,
    pub name: String,
    /// Its deadline, when it has a limit of its own.
    pub due: Option<String>,
    /// Its warning level today by the case's rule (never a legal breach); `None` without
    /// a limit.
    pub level: Option<WarningLevel>,
}

/// One page of a case list.
#[derive(Clone, Debug)]
pub struct CaseListPage {
    pub cases: Vec<CaseSummary>,
    /// Pass back to get the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// An event as the case page shows it.
#[derive(Clone, Debug)]
pub struct EventView {
    pub id: String,
    pub at_ms: i64,
    pub node: String,
    pub staff: String,
    /// Whom `staff` acted for as their stand-in (B角), if anyone.
    pub stand_in_for: Option<String>,
    pub action: Action,
    /// The event did not apply where it fell in the merged order.
    pub conflict: bool,
    /// A lead's resolution voided it.
    pub voided: bool,
}

/// Everything about one case.
#[derive(Clone, Debug)]
pub struct CaseDetail {
    pub summary: CaseSummary,
    pub intake: Intake,
    pub events: Vec<EventView>,
    /// Materials received at intake and in supplements, summed per material.
    pub received: Vec<MaterialReceived>,
    pub missing: Vec<Shortfall>,
    /// Everything derived from the events: conflicts, suspensions, rating, transfer.
    pub state: CaseState,
    /// Kinds of events written by a newer version, which this node keeps but cannot
    /// count until it is upgraded.
    pub newer: Vec<String>,
    /// The calendar version the deadlines count on (see `store::calendars`).
    pub calendar: Option<String>,
    pub calendar_covered: bool,
    /// Where the case is: the calendar of this division counts its working days.
    pub division: yizhan_sync::domain::codes::DivisionCode,
    /// A bad rating's rectification deadline, on that calendar.
    pub rectify_due: Option<String>,
    /// A combined case's parts (并联审批, §7.5), one per part of its item, as this node
    /// holds their sub-cases; `state` is the whole's, derived with them.
    pub parts: Vec<PartView>,
}

/// One part of a combined case as its page and the API show it: the department that
/// decides it and where its sub-case stands.
#[derive(Clone, Debug)]
pub struct PartView {
    pub index: u32,
    pub name: String,
    /// The deciding department's name and code.
    pub department: String,
    pub department_code: String,
    pub limit_days: u32,
    /// The sub-case, once this node holds it.
    pub case_id: Option<String>,
    pub status: Option<Status>,
    pub decision: Option<bool>,
    pub legal_due: Option<String>,
}

impl CaseDetail {
    /// What `person` may record on the case at `node` as it stands: the engine's
    /// `allowed_actions`, which pages and the API offer exactly.
    pub fn allowed_actions(
        &self,
        node: &yizhan_sync::auth::NodeRecord,
        person: impl Into<Person>,
    ) -> Vec<yizhan_sync::domain::case::ActionKind> {
        let person = person.into();
        engine::allowed_actions(
            Actor {
                node,
                person: &person,
            },
            &self.intake,
            &self.state,
        )
    }

    /// The applicant's query code (查询码).
    pub fn query_code(&self) -> String {
        yizhan_sync::domain::query_code::of_case(&self.summary.id)
    }
}

/// The statuses of a case still open (在办), as SQL.
const OPEN_STATUSES: &str =
    "'submitted', 'awaiting_supplement', 'accepted', 'suspended', 'decided'";
/// Sorts the open cases without a deadline last.
const NO_DEADLINE: &str = "9999-12-31";
/// Marks the deadline order's cursor key (not a column index).
const DEADLINE_KEY: usize = usize::MAX;

pub(super) const SUMMARY_COLUMNS: &str =
    "id, serial_no, status, conflict, impl_code, item_name, case_type, applicant_name,
    applicant_id_masked, counter, staff, created_ms, accepted_on, committed_due, legal_due,
    CASE WHEN breach_on IS NULL THEN NULL
         WHEN breach_on <= ?1 THEN 'legal_breach'
         WHEN red_on <= ?1 THEN 'red'
         WHEN yellow_on <= ?1 THEN 'yellow'
         ELSE 'normal' END,
    clock_stopped_on, closed_on, red_on, breach_on,
    step_no, step_name, step_due,
    CASE WHEN step_red_on IS NULL THEN NULL
         WHEN step_red_on <= ?1 THEN 'red'
         WHEN step_yellow_on <= ?1 THEN 'yellow'
         ELSE 'normal' END";

/// How many columns [`SUMMARY_COLUMNS`] selects: a query's own columns follow them.
pub(super) const SUMMARY_LEN: usize = 24;

pub(super) fn summary_from_row(r: &Row<'_>) -> rusqlite::Result<CaseSummary> {
    let status: String = r.get(2)?;
    let level: Option<String> = r.get(15)?;
    Ok(CaseSummary {
        id: r.get(0)?,
        serial_no: r.get(1)?,
        status: Status::parse(&status).unwrap_or(Status::Submitted),
        conflict: r.get(3)?,
        impl_code: r.get(4)?,
        item_name: r.get(5)?,
        case_type: r.get(6)?,
        applicant_name: r.get(7)?,
        applicant_id_masked: r.get(8)?,
        counter: r.get(9)?,
        staff: r.get(10)?,
        created_ms: r.get(11)?,
        accepted_on: r.get(12)?,
        committed_due: r.get(13)?,
        legal_due: r.get(14)?,
        level: level.as_deref().and_then(WarningLevel::parse),
        clock_stopped_on: r.get(16)?,
        closed_on: r.get(17)?,
        division: None,
        step: match r.get::<_, Option<u32>>(20)? {
            Some(number) => {
                let level: Option<String> = r.get(23)?;
                Some(StepSummary {
                    number,
                    name: r.get::<_, Option<String>>(21)?.unwrap_or_default(),
                    due: r.get(22)?,
                    level: level.as_deref().and_then(WarningLevel::parse),
                })
            }
            None => None,
        },
    })
}

impl Store {
    /// Receives an application for an item (收件) and returns the new case's id.
    pub async fn create_case(
        &self,
        item_key: String,
        new: NewCase,
        staff: Staff,
        now_ms: u64,
    ) -> Result<DocId, StoreError> {
        self.write(move |ctx| create_case_in(ctx, &item_key, new, &staff, now_ms))
            .await
    }

    /// Records one or more actions on a case, in order, as one change, by the engine's
    /// rules (who may do what, the state machine, serial numbers): see `engine::act`.
    pub async fn act_on_case(
        &self,
        case_id: DocId,
        actions: Vec<NewAction>,
        person: impl Into<Person>,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let person = person.into();
        self.write(move |ctx| {
            let person = with_chief(&ctx.conn, &ctx.division, person)?;
            let case_doc =
                doc::read_case(ctx.case_doc_mut(&case_id)?).map_err(|e| StoreError::Corrupt {
                    id: case_id.to_string(),
                    message: e.to_string(),
                })?;
            let node = ctx.identity.record.clone();
            // A combined case is judged with its parts (并联审批, `domain::combined`).
            let parts = if case_doc.intake.is_parent() {
                parts_of(&ctx.conn, case_id.as_str(), &case_doc.intake)?.0
            } else {
                Vec::new()
            };
            let new_events = {
                let ctx = std::cell::RefCell::new(&mut *ctx);
                engine::act_combined::<StoreError>(
                    &case_doc,
                    &parts,
                    actions,
                    Actor {
                        node: &node,
                        person: &person,
                    },
                    &mut || ctx.borrow_mut().tick(now_ms),
                    &mut |code, date| issue_serial(&mut ctx.borrow_mut(), code, date),
                )?
            };
            // A stand-in's acts on the case of the one they stand in for say so (§7.4.1.3).
            let mut new_events = new_events;
            if let Person::Staff { username, .. } = &person {
                let firsts = super::staff::stands_in_for(&ctx.conn, username)?;
                let first = engine::stand_in_for(&case_doc, username, &firsts);
                for event in &mut new_events {
                    event.stand_in_for = first.clone();
                }
            }
            let origin = ctx.origin;
            doc::add_events(ctx.doc_mut(&case_id)?, &origin, &new_events)
                .map_err(|e| StoreError::Internal(e.to_string()))?;
            let accepted_now = new_events
                .iter()
                .any(|e| matches!(e.action, Action::Accept { .. }));
            let withdrawn_now = new_events.iter().find_map(|e| match &e.action {
                Action::Withdraw { reason } => Some(reason.clone()),
                _ => None,
            });
            let mut events = case_doc.events.clone();
            events.extend(new_events);
            let case_doc = doc::CaseDoc { events, ..case_doc };
            finish_case_write(ctx, &case_id, &case_doc, now_ms)?;
            // One acceptance of a combined item makes its sub-cases, in the same
            // transaction: each accepted and sent to its department's hall (§7.5).
            if accepted_now && case_doc.intake.is_parent() {
                create_parts(ctx, &case_id, &case_doc, &person, now_ms)?;
            }
            // An application withdrawn whole is withdrawn at every department still
            // deciding its part, in the same transaction, so no part stays open and
            // falls overdue there.
            if let Some(reason) = withdrawn_now
                && case_doc.intake.is_parent()
            {
                withdraw_parts(ctx, &case_id, &case_doc, &person, &reason, now_ms)?;
            }
            Ok(())
        })
        .await
    }

    /// The person `staff` acts as here, with what their tree account adds (a chief
    /// representative's flag): what pages and the API offer is what `act_on_case` allows.
    pub async fn person(&self, staff: Staff) -> Result<Person, StoreError> {
        let division = self.own_record().division.clone();
        self.read(move |conn| with_chief(conn, &division, staff.into()))
            .await
    }

    /// How many cases this node holds.
    pub async fn case_count(&self) -> Result<u64, StoreError> {
        self.read(|conn| {
            let n: i64 = conn.query_row("SELECT count(*) FROM cases", [], |r| r.get(0))?;
            Ok(n.max(0) as u64)
        })
        .await
    }

    pub async fn get_case(&self, id: String, today: Date) -> Result<CaseDetail, StoreError> {
        self.read(move |conn| read_detail(conn, "id", &id, today))
            .await
    }

    /// The step of case `id` that is late on `today` (red by the case's warning rule,
    /// §10.2: a 环节 overrunning its limit although the case may still be on time), with
    /// how many working days, counted on the case's calendar by the core
    /// (`CaseState::step_times`). `None` when no step of it is late or it is not held
    /// here. The stored warning day finds late ones without reading the document.
    pub async fn late_step(&self, id: String, today: Date) -> Result<Option<LateStep>, StoreError> {
        let key = id.clone();
        let red_on: Option<String> = self
            .read(move |conn| {
                Ok(conn
                    .prepare_cached("SELECT step_red_on FROM cases WHERE id = ?1")?
                    .query_row([&key], |r| r.get::<_, Option<String>>(0))
                    .optional()?
                    .flatten())
            })
            .await?;
        if red_on.is_none_or(|red_on| red_on.as_str() > today.to_string().as_str()) {
            return Ok(None);
        }
        let d = self.get_case(id, today).await?;
        let calendar = self.calendar_for(&d.division);
        Ok(d.state
            .step_times(&d.intake, &calendar, today)
            .into_iter()
            .find(|s| s.current && s.level >= WarningLevel::Red)
            .and_then(|s| {
                Some(LateStep {
                    number: s.number,
                    name: s.rule.name,
                    due: s.deadline?.due,
                    late_days: s.late_days,
                })
            }))
    }

    pub async fn get_case_by_serial(
        &self,
        serial: SerialNo,
        today: Date,
    ) -> Result<CaseDetail, StoreError> {
        self.read(move |conn| read_detail(conn, "serial_no", serial.as_str(), today))
            .await
    }

    /// The case with this query code whose applicant's phone ends in `phone_tail`, for the
    /// applicants' status page. Codes repeat across many cases now and then; with the
    /// phone's digits one matches (two would both be hidden: the lookup says not found).
    pub async fn get_case_by_query_code(
        &self,
        query_code: String,
        phone_tail: String,
        today: Date,
    ) -> Result<Option<CaseDetail>, StoreError> {
        self.read(move |conn| {
            let ids: Vec<String> = conn
                .prepare_cached(
                    "SELECT id FROM cases WHERE query_code = ?1 AND phone_tail = ?2 LIMIT 2",
                )?
                .query_map(params![query_code, phone_tail], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            match &ids[..] {
                [id] => read_detail(conn, "id", id, today).map(Some),
                _ => Ok(None),
            }
        })
        .await
    }

    pub async fn list_cases(&self, filter: CaseFilter) -> Result<CaseListPage, StoreError> {
        let own = self.own_record().clone();
        self.read(move |conn| list(conn, &own, &filter)).await
    }
}

/// Saves the changed case document, logs the change and refreshes its rows from
/// `case_doc`, the document's contents after the change.
/// Creates a case inside a write (shared with starting a case from an appointment, which
/// must happen in the same transaction).
pub(super) fn create_case_in(
    ctx: &mut WriteCtx,
    item_key: &str,
    new: NewCase,
    staff: &Staff,
    now_ms: u64,
) -> Result<DocId, StoreError> {
    let item = ctx.item(item_key)?;
    let submitted_at = ctx.tick(now_ms)?;
    let intake = Intake::new(
        &item,
        new,
        &staff.username,
        ctx.origin.node,
        ctx.division.clone(),
        submitted_at,
    )?;
    // The department that decides (§5.7.2), as this node knows it, frozen into the case.
    let decider = match &item.decided_by {
        Some(code) => super::departments::department_for(&ctx.conn, code, &ctx.division)?,
        None => None,
    };
    let intake = intake.with_decider(&item, decider.as_ref())?;
    // A combined item's parts (并联审批, §7.5), each with its department as this node
    // knows it; an unknown one refuses the intake as for `decided_by`.
    let mut departments = Vec::with_capacity(item.parts.len());
    for part in &item.parts {
        departments.push(super::departments::department_for(
            &ctx.conn,
            &part.department,
            &ctx.division,
        )?);
    }
    let intake = intake.with_parts(&item, |code| {
        departments
            .iter()
            .flatten()
            .find(|d| d.code.eq_ignore_ascii_case(code))
            .cloned()
    })?;
    let scope = Scope::cases(&ctx.division);
    let origin = ctx.origin;
    let (id, document) =
        doc::new_case(&origin, &scope, &intake).map_err(|e| StoreError::Internal(e.to_string()))?;
    ctx.insert_doc(id.clone(), document);
    let case_doc = doc::CaseDoc {
        scope,
        intake,
        events: Vec::new(),
        newer: Vec::new(),
    };
    finish_case_write(ctx, &id, &case_doc, now_ms)?;
    Ok(id)
}

/// `person` with the chief representative's flag of their tree account here.
fn with_chief(conn: &Connection, own: &DivisionCode, person: Person) -> Result<Person, StoreError> {
    Ok(match person {
        Person::Staff {
            username,
            counter,
            role,
            ..
        } => Person::Staff {
            chief: super::staff::is_chief(conn, own, &username)?,
            username,
            counter,
            role,
        },
        Person::Applicant => Person::Applicant,
    })
}

fn finish_case_write(
    ctx: &mut WriteCtx,
    id: &DocId,
    case_doc: &doc::CaseDoc,
    now_ms: u64,
) -> Result<(), StoreError> {
    ctx.persist_local_change(id, DocKind::Case, &case_doc.scope, now_ms)?;
    let calendar = ctx.calendar_for(&case_doc.scope);
    let (row, events) = doc::case_rows(id, case_doc, &calendar);
    store_case_rows(&ctx.conn, "", &row, &events, &calendar)
}

/// The next serial number for an item on `date`, counted in the same transaction as the
/// acceptance that uses it (§8.5.1).
fn issue_serial(
    ctx: &mut WriteCtx,
    impl_code: &ImplCode,
    date: Date,
) -> Result<SerialNo, StoreError> {
    let sequence: u32 = ctx
        .conn
        .prepare_cached(
            "INSERT INTO serial_counters (epoch, impl_code, day, last) VALUES (?1, ?2, ?3, 1)
             ON CONFLICT (epoch, impl_code, day) DO UPDATE SET last = last + 1
             RETURNING last",
        )?
        .query_row(
            params![ctx.origin.epoch, impl_code.as_str(), date.to_string()],
            |r| r.get(0),
        )?;
    Ok(SerialNo::issue(
        impl_code,
        date,
        &ctx.identity.record.serial_segment(),
        ctx.origin.epoch,
        sequence,
    )?)
}

/// The parts of the combined case `parent_id` as this node holds their sub-cases: one
/// entry per part of its item (`None`/empty where none is held yet); of two sub-cases
/// bound to one part (only a misbehaving node makes two), the first by id counts.
fn parts_of(
    conn: &Connection,
    parent_id: &str,
    parent: &Intake,
) -> Result<(Vec<Option<PartState>>, Vec<PartView>), StoreError> {
    parts_in(conn, "", parent_id, parent)
}

/// The rows of the combined case `parent_id` with its parts as the `prefix` tables hold
/// them (`doc::case_rows_with_parts`); `None` when the whole is not held here or is not a
/// combined case.
pub(super) fn rows_of_combined(
    conn: &Connection,
    prefix: &str,
    parent_id: &str,
    calendar: &Calendar,
) -> Result<Option<(CaseRow, Vec<EventRow>)>, StoreError> {
    let Some(id) = DocId::parse(parent_id) else {
        return Ok(None);
    };
    let held: Option<(Vec<u8>, i64)> = conn
        .prepare_cached("SELECT bytes, upto FROM documents WHERE id = ?1 AND kind = 'case'")?
        .query_row([parent_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((bytes, upto)) = held else {
        return Ok(None);
    };
    let (document, _) = super::snapshot::load_from(conn, parent_id, &bytes, upto)?;
    let parent = doc::read_case(&document).map_err(|e| StoreError::Corrupt {
        id: parent_id.to_string(),
        message: e.to_string(),
    })?;
    if !parent.intake.is_parent() {
        return Ok(None);
    }
    let (states, _) = parts_in(conn, prefix, parent_id, &parent.intake)?;
    Ok(Some(doc::case_rows_with_parts(
        &id, &parent, &states, calendar,
    )))
}

/// `parts_of` over the `prefix` tables (the live ones, or a rebuild's).
fn parts_in(
    conn: &Connection,
    prefix: &str,
    parent_id: &str,
    parent: &Intake,
) -> Result<(Vec<Option<PartState>>, Vec<PartView>), StoreError> {
    let mut states: Vec<Option<PartState>> = vec![None; parent.item.parts.len()];
    let mut views: Vec<PartView> = parent
        .item
        .parts
        .iter()
        .enumerate()
        .map(|(index, part)| PartView {
            index: index as u32,
            name: part.name.clone(),
            department: part.decider.name.clone(),
            department_code: part.decider.code.clone(),
            limit_days: part.limit_days,
            case_id: None,
            status: None,
            decision: None,
            legal_due: None,
        })
        .collect();
    let held: Vec<(String, Vec<u8>, i64, Option<String>)> = conn
        .prepare_cached(&format!(
            "SELECT p.id, d.bytes, d.upto, c.legal_due FROM {prefix}case_parts p
             JOIN documents d ON d.id = p.id LEFT JOIN {prefix}cases c ON c.id = p.id
             WHERE p.parent_id = ?1 ORDER BY p.part_index, p.id"
        ))?
        .query_map([parent_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?
        .collect::<Result<_, _>>()?;
    for (id, bytes, upto, legal_due) in held {
        let (document, _) = super::snapshot::load_from(conn, &id, &bytes, upto)?;
        let sub = doc::read_case(&document).map_err(|e| StoreError::Corrupt {
            id: id.clone(),
            message: e.to_string(),
        })?;
        let Some(index) = combined::counts_for(parent_id, parent, &sub.intake) else {
            continue;
        };
        if states[index].is_some() {
            continue;
        }
        let state = case::derive(&sub.intake, &sub.events);
        views[index].case_id = Some(id);
        views[index].status = Some(state.status);
        views[index].decision = state.decision;
        views[index].legal_due = legal_due;
        states[index] = Some(PartState {
            status: state.status,
            decision: state.decision,
        });
    }
    Ok((states, views))
}

/// Withdraws the parts of the combined case `parent_id` that may still be withdrawn (a
/// part its department has decided stays decided), each by `person` with the whole's
/// reason, by the engine's rules as any withdrawal.
fn withdraw_parts(
    ctx: &mut WriteCtx,
    parent_id: &DocId,
    parent: &doc::CaseDoc,
    person: &Person,
    reason: &str,
    now_ms: u64,
) -> Result<(), StoreError> {
    let (_, views) = parts_of(&ctx.conn, parent_id.as_str(), &parent.intake)?;
    let node = ctx.identity.record.clone();
    let origin = ctx.origin;
    for id in views.into_iter().filter_map(|v| v.case_id) {
        let Some(id) = DocId::parse(&id) else {
            continue;
        };
        let sub = doc::read_case(ctx.case_doc_mut(&id)?).map_err(|e| StoreError::Corrupt {
            id: id.to_string(),
            message: e.to_string(),
        })?;
        let actor = Actor {
            node: &node,
            person,
        };
        let state = case::derive(&sub.intake, &sub.events);
        if engine::may(actor, &sub.intake, &state, ActionKind::Withdraw).is_err() {
            continue;
        }
        let events = {
            let ctx = std::cell::RefCell::new(&mut *ctx);
            engine::act::<StoreError>(
                &sub,
                vec![NewAction::Do(Action::Withdraw {
                    reason: reason.to_string(),
                })],
                actor,
                &mut || ctx.borrow_mut().tick(now_ms),
                &mut |code, date| issue_serial(&mut ctx.borrow_mut(), code, date),
            )?
        };
        doc::add_events(ctx.doc_mut(&id)?, &origin, &events)
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        let mut all = sub.events.clone();
        all.extend(events);
        let sub = doc::CaseDoc { events: all, ..sub };
        finish_case_write(ctx, &id, &sub, now_ms)?;
    }
    Ok(())
}

/// The sub-cases of a combined case just accepted (并联审批, §7.5): one per part, bound to
/// the parent and the part's department, accepted by the same person (each with its own
/// serial number) and sent (转办) to the department at its hall, where its members decide
/// it. All in the parent's acceptance's transaction.
fn create_parts(
    ctx: &mut WriteCtx,
    parent_id: &DocId,
    parent: &doc::CaseDoc,
    person: &Person,
    now_ms: u64,
) -> Result<(), StoreError> {
    let origin = ctx.origin;
    let node = ctx.identity.record.clone();
    for (index, part) in parent.intake.item.parts.iter().enumerate() {
        let submitted_at = ctx.tick(now_ms)?;
        let intake = parent.intake.part(parent_id.as_str(), index, submitted_at);
        let scope = parent.scope.clone();
        let (id, document) = doc::new_case(&origin, &scope, &intake)
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        ctx.insert_doc(id.clone(), document);
        let sub = doc::CaseDoc {
            scope,
            intake,
            events: Vec::new(),
            newer: Vec::new(),
        };
        finish_case_write(ctx, &id, &sub, now_ms)?;
        let events = {
            let ctx = std::cell::RefCell::new(&mut *ctx);
            engine::act::<StoreError>(
                &sub,
                vec![
                    NewAction::Accept,
                    NewAction::Do(Action::Transfer {
                        to: part.decider.name.clone(),
                        reason: part.name.clone(),
                        to_node: Some(part.decider.hall),
                    }),
                ],
                Actor {
                    node: &node,
                    person,
                },
                &mut || ctx.borrow_mut().tick(now_ms),
                &mut |code, date| issue_serial(&mut ctx.borrow_mut(), code, date),
            )?
        };
        doc::add_events(ctx.doc_mut(&id)?, &origin, &events)
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        let sub = doc::CaseDoc { events, ..sub };
        finish_case_write(ctx, &id, &sub, now_ms)?;
    }
    Ok(())
}

fn read_detail(
    conn: &Connection,
    column: &str,
    key: &str,
    today: Date,
) -> Result<CaseDetail, StoreError> {
    let found = conn
        .prepare_cached(&format!(
            "SELECT {SUMMARY_COLUMNS}, calendar, calendar_covered, d.bytes, cases.rectify_due, d.upto
             FROM cases JOIN documents d USING (id) WHERE cases.{column} = ?2"
        ))?
        .query_row(params![today.to_string(), key], |r| {
            Ok((
                summary_from_row(r)?,
                r.get::<_, Option<String>>(SUMMARY_LEN)?,
                r.get::<_, bool>(SUMMARY_LEN + 1)?,
                r.get::<_, Vec<u8>>(SUMMARY_LEN + 2)?,
                r.get::<_, Option<String>>(SUMMARY_LEN + 3)?,
                r.get::<_, i64>(SUMMARY_LEN + 4)?,
            ))
        })
        .optional()?;
    let (summary, calendar, calendar_covered, bytes, rectify_due, upto) =
        found.ok_or_else(|| StoreError::NotFound {
            what: format!("case {key}"),
        })?;
    // The document is the record: intake and events come from it, not from the rows.
    let corrupt = |message: String| StoreError::Corrupt {
        id: summary.id.clone(),
        message,
    };
    let (document, _) = super::snapshot::load_from(conn, &summary.id, &bytes, upto)?;
    let case_doc = doc::read_case(&document).map_err(|e| corrupt(e.to_string()))?;
    let own: CaseState = case::derive(&case_doc.intake, &case_doc.events);
    let (part_states, parts) = if case_doc.intake.is_parent() {
        parts_of(conn, &summary.id, &case_doc.intake)?
    } else {
        (Vec::new(), Vec::new())
    };
    let state = combined::combine(&case_doc.intake, own, &part_states);
    let conflicting: Vec<&str> = state
        .conflicts
        .iter()
        .map(|c| c.event_id.as_str())
        .collect();
    let mut ordered: Vec<&Event> = case_doc.events.iter().collect();
    ordered.sort_by_key(|e| (e.at, e.node));
    let events = ordered
        .into_iter()
        .map(|event| {
            let id = event.id();
            EventView {
                conflict: conflicting.contains(&id.as_str()),
                voided: state.voided.contains(&id),
                id,
                at_ms: event.at.unix_ms() as i64,
                node: event.node.to_hex(),
                staff: event.staff.clone(),
                stand_in_for: event.stand_in_for.clone(),
                action: event.action.clone(),
            }
        })
        .collect();
    Ok(CaseDetail {
        summary,
        received: state.received.clone(),
        missing: state.missing.clone(),
        newer: case_doc.newer.iter().map(|n| n.kind.clone()).collect(),
        division: case_doc.scope.division(),
        rectify_due,
        parts,
        intake: case_doc.intake,
        state,
        events,
        calendar,
        calendar_covered,
    })
}

fn list(
    conn: &Connection,
    own: &NodeRecord,
    filter: &CaseFilter,
) -> Result<CaseListPage, StoreError> {
    let order = filter
        .order
        .unwrap_or_else(|| Order::for_level(filter.level));
    let limit = filter.limit.clamp(1, 200);
    // ?1 is today; filters follow.
    let mut args: Vec<rusqlite::types::Value> = vec![filter.today.to_string().into()];
    let mut conditions: Vec<String> = Vec::new();
    let mut arg = |value: rusqlite::types::Value| {
        args.push(value);
        format!("?{}", args.len())
    };
    if let Some(status) = filter.status {
        // With a level filter the warning-date index gives the order and few rows; the
        // unary plus keeps SQLite from preferring the status index and sorting instead.
        let column = if filter.level.is_some() {
            "+status"
        } else {
            "status"
        };
        conditions.push(format!(
            "{column} = {}",
            arg(status.as_str().to_string().into())
        ));
    }
    match filter.level {
        None => {}
        Some(WarningLevel::Normal) => conditions.push("yellow_on > ?1 AND red_on > ?1".into()),
        Some(WarningLevel::Yellow) => conditions.push("yellow_on <= ?1 AND red_on > ?1".into()),
        Some(WarningLevel::Red) => conditions.push("red_on <= ?1 AND breach_on > ?1".into()),
        Some(WarningLevel::LegalBreach) => conditions.push("breach_on <= ?1".into()),
    }
    if let Some(code) = &filter.impl_code {
        conditions.push(format!("impl_code = {}", arg(code.to_string().into())));
    }
    if let Some(counter) = &filter.counter {
        conditions.push(format!("counter = {}", arg(counter.clone().into())));
    }
    if let Some(division) = &filter.division {
        let scope = Scope::cases(division).to_string();
        if division.as_str().len() >= 12 {
            // A station: equality lets its (scope, level date) index give the order.
            conditions.push(format!("scope = {}", arg(scope.into())));
        } else {
            // A sub-district: its own cases and those of every division below it, named
            // one by one so each station's (scope, level date) index slice is read, not
            // the whole subtree's level (a range over scopes would scan it).
            let scopes = scopes_within(conn, own, &scope)?;
            if scopes.is_empty() {
                conditions.push("0".into());
            } else {
                let list: Vec<String> = scopes.into_iter().map(|s| arg(s.into())).collect();
                conditions.push(format!("scope IN ({})", list.join(", ")));
            }
        }
    }
    if let Some(holder) = &filter.holder {
        conditions.push(format!("holder = {}", arg(holder.clone().into())));
    }
    // The intake date is derived from the intake time (`doc::rows`), so a range of dates is
    // also a range of times, which the time index (`cases_created`) reads: without the time
    // bound the list of today's cases read every case by time to find fewer than a page of
    // them (9 ms at 30,000 cases, most of `bench web`'s counter load).
    if let Some(from) = filter.created_from {
        conditions.push(format!("created_on >= {}", arg(from.to_string().into())));
        conditions.push(format!(
            "created_ms >= {}",
            arg(from.start_unix_ms_cst().into())
        ));
    }
    if let Some(to) = filter.created_to {
        conditions.push(format!("created_on <= {}", arg(to.to_string().into())));
        conditions.push(format!(
            "created_ms < {}",
            arg(to.succ().start_unix_ms_cst().into())
        ));
    }
    if filter.conflict_only {
        conditions.push("conflict = 1".into());
    }
    if filter.open_only {
        conditions.push(format!("status IN ({OPEN_STATUSES})"));
    }
    if let Some(search) = &filter.search {
        let like = |text: &str| {
            text.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        };
        let mut any: Vec<String> = Vec::new();
        if let Some(code) = &search.query_code {
            any.push(format!("query_code = {}", arg(code.clone().into())));
        }
        if let Some(id) = &search.applicant_id {
            any.push(format!("applicant_id = {}", arg(id.clone().into())));
        }
        if let Some(phone) = &search.phone {
            any.push(format!("phone_digits = {}", arg(phone.clone().into())));
        }
        if let Some(tail) = &search.phone_tail {
            any.push(format!("phone_tail = {}", arg(tail.clone().into())));
        }
        if let Some(tail) = &search.serial_tail {
            any.push(format!(
                "serial_no LIKE '%' || {} ESCAPE '\\'",
                arg(like(tail).into())
            ));
        }
        if let Some(name) = &search.name {
            any.push(format!(
                "applicant_name LIKE '%' || {} || '%' ESCAPE '\\'",
                arg(like(name).into())
            ));
        }
        if any.is_empty() {
            any.push("0".into());
        }
        conditions.push(format!("({})", any.join(" OR ")));
    }
    let (order_sql, key_index) = match order {
        Order::Created => ("created_ms DESC, id DESC", 11),
        Order::DueSoon => ("red_on ASC, id ASC", 18),
        Order::LegalDue => ("breach_on ASC, id ASC", 19),
        Order::Deadline => (
            "COALESCE(committed_due, '9999-12-31') ASC, id ASC",
            DEADLINE_KEY,
        ),
    };
    if let Some(cursor) = &filter.cursor {
        let (key, id) = parse_cursor(order, cursor)?;
        let (key_arg, id_arg) = (arg(key), arg(id.into()));
        conditions.push(match order {
            Order::Created => format!("(created_ms, id) < ({key_arg}, {id_arg})"),
            Order::DueSoon => format!("(red_on, id) > ({key_arg}, {id_arg})"),
            Order::LegalDue => format!("(breach_on, id) > ({key_arg}, {id_arg})"),
            Order::Deadline => {
                format!("(COALESCE(committed_due, '9999-12-31'), id) > ({key_arg}, {id_arg})")
            }
        });
    }
    let where_sql = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    // The open cases by deadline walk the deadline index (the subtree's, or one
    // station's) rather than sorting every open case: without statistics SQLite would
    // pick the status index and sort (migration 013).
    let indexed = if order == Order::Deadline && filter.open_only && filter.status.is_none() {
        match &filter.division {
            Some(division) if division.as_str().len() >= 12 => {
                hall_index(own, "cases_scope_deadline")
            }
            _ => " INDEXED BY cases_open_deadline".to_string(),
        }
    } else {
        String::new()
    };
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS}, scope FROM cases{indexed} {where_sql} ORDER BY {order_sql} LIMIT {}",
        limit + 1
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(rusqlite::params_from_iter(&args))?;
    let mut cases = Vec::with_capacity(limit as usize);
    let mut next_cursor = None;
    let mut last_key = String::new();
    while let Some(row) = rows.next()? {
        if cases.len() == limit as usize {
            let last: &CaseSummary = cases.last().expect("limit is at least 1");
            next_cursor = Some(cursor_after(order, last, &last_key));
            break;
        }
        last_key = match key_index {
            11 => row.get::<_, i64>(11)?.to_string(),
            DEADLINE_KEY => row
                .get::<_, Option<String>>(13)?
                .unwrap_or_else(|| NO_DEADLINE.to_string()),
            i => row.get::<_, Option<String>>(i)?.unwrap_or_default(),
        };
        let mut summary = summary_from_row(row)?;
        summary.division =
            Scope::parse(&row.get::<_, String>(SUMMARY_LEN)?).map(|s| s.division().to_string());
        cases.push(summary);
    }
    Ok(CaseListPage { cases, next_cursor })
}

/// The case scopes held here that are `scope` or lie below it (`~` sorts after every
/// digit), found by one index seek each.
fn scopes_within(
    conn: &Connection,
    own: &NodeRecord,
    scope: &str,
) -> Result<Vec<String>, StoreError> {
    let end = format!("{scope}~");
    let mut found: Vec<String> = Vec::new();
    let indexed = hall_index(own, "cases_scope_updated");
    let held: Option<i64> = conn
        .prepare_cached(&format!(
            "SELECT 1 FROM cases{indexed} WHERE scope = ?1 LIMIT 1"
        ))?
        .query_row([scope], |r| r.get(0))
        .optional()?;
    if held.is_some() {
        found.push(scope.to_string());
    }
    let mut next = conn.prepare_cached(&format!(
        "SELECT min(scope) FROM cases{indexed} WHERE scope > ?1 AND scope < ?2"
    ))?;
    let mut from = scope.to_string();
    // Bounded: a sub-district has at most 999 divisions below it.
    for _ in 0..1000 {
        let Some(scope) = next.query_row(params![from, end], |r| r.get::<_, Option<String>>(0))?
        else {
            break;
        };
        from = scope.clone();
        found.push(scope);
    }
    Ok(found)
}

fn cursor_after(order: Order, last: &CaseSummary, key: &str) -> String {
    format!("{}~{}~{}", order.letter(), key, last.id)
}

fn parse_cursor(
    order: Order,
    cursor: &str,
) -> Result<(rusqlite::types::Value, String), StoreError> {
    let bad = || StoreError::Invalid(Words::new("bad_cursor"));
    let mut parts = cursor.splitn(3, '~');
    let (letter, key, id) = (
        parts.next().ok_or_else(bad)?,
        parts.next().ok_or_else(bad)?,
        parts.next().ok_or_else(bad)?,
    );
    if letter.len() != 1 || !letter.starts_with(order.letter()) || DocId::parse(id).is_none() {
        return Err(bad());
    }
    let key = match order {
        Order::Created => rusqlite::types::Value::Integer(key.parse().map_err(|_| bad())?),
        Order::DueSoon | Order::LegalDue | Order::Deadline => {
            let valid = key.parse::<Date>().is_ok()
                || key == doc::LEVEL_REACHED
                || key == doc::LEVEL_NOT_REACHED;
            if !valid {
                return Err(bad());
            }
            rusqlite::types::Value::Text(key.to_string())
        }
    };
    Ok((key, id.to_string()))
}
