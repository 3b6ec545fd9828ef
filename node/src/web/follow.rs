//! Following a case up: what the case page shows beyond the intake (the timeline with
//! reasons, both time limits in working days, where the case has got to on the way up,
//! conflicts), the follow-up list of transferred cases (转办跟踪, §5.5.4), and the
//! applicant's pages: status by serial number and phone digits, and the rating (好差评,
//! §8.7) that may open a rectification.

use std::collections::HashMap;
use std::sync::Mutex;

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use yizhan_sync::domain::case::{Action, ActionKind, CaseError, Rating, Status, StepRule};
use yizhan_sync::domain::serial::SerialNo;
use yizhan_sync::ids::DocId;

use super::WebState;
use super::cases::field;
use super::{Chrome, Ctx, message, render, store_failed};
use crate::clock::minute_cst;
use crate::i18n::Tr;
use crate::store::{
    CaseDetail, CaseSync, EventView, NewAction, StoreError, TransferRow, Transfers,
};
use crate::web::session::{Session, address_key, random_token, same_secret};

/// The person a session acts as, for the engine.
pub(super) fn staff_of(session: &Session) -> crate::store::Staff {
    crate::store::Staff {
        username: session.username.clone(),
        counter: session.counter.clone(),
        role: session.role,
    }
}

// ---------------------------------------------------------------- the case page

/// One event as the timeline shows it: what, when, who, where, and what was written.
#[derive(Clone, Debug)]
pub struct TimelineRow {
    pub id: String,
    pub time: String,
    pub label: String,
    pub staff: String,
    pub node: String,
    pub details: Vec<(String, String)>,
    pub conflict: bool,
    pub voided: bool,
}

/// One of the two time limits, in working days on the case's calendar.
#[derive(Clone, Debug)]
pub struct LimitRow {
    /// `committed-due` or `legal-due`, the id of the due date's cell.
    pub dom_id: &'static str,
    pub label: String,
    pub due: String,
    pub used: u32,
    pub left: u32,
    /// Working days past the deadline (0 when not overdue).
    pub overdue: u32,
    /// Days left, or how far past the deadline, in words.
    pub left_text: String,
}

/// One process step of the case (§9.2.2): its rule, when it ran and how it stands.
#[derive(Clone, Debug)]
pub struct StepRow {
    pub number: u32,
    pub name: String,
    pub post: String,
    /// Its limit in words, or empty when it has none.
    pub days: String,
    pub started_on: String,
    /// When and by whom it finished, in words, or empty.
    pub finished: String,
    pub due: String,
    /// `normal`, `yellow` or `red` (the current step's warning, by the case's rule).
    pub level: &'static str,
    /// Where it stands in words: waiting, running, late by, finished late by.
    pub state: String,
    pub current: bool,
}

/// A conflict: the event that could not apply, and the one it ran into.
#[derive(Clone, Debug)]
pub struct ConflictView {
    pub event: TimelineRow,
    pub against: Option<TimelineRow>,
}

/// The rectification a bad rating opened.
#[derive(Clone, Debug)]
pub struct RectView {
    pub due: String,
    pub overdue: bool,
    pub closed_on: Option<String>,
    pub response: String,
}

/// Everything the case page shows besides the intake and the forms it always had.
#[derive(Clone, Debug)]
pub struct CaseExtras {
    pub timeline: Vec<TimelineRow>,
    pub limits: Vec<LimitRow>,
    pub level: Option<String>,
    pub suspended_days: u32,
    pub extension_days: u32,
    pub clock_stopped_on: Option<String>,
    pub sync: String,
    pub decided_by: Option<String>,
    pub origin: Option<String>,
    pub conflicts: Vec<ConflictView>,
    /// What the signed-in person may record on the case now (`engine::allowed_actions`):
    /// the page offers exactly these.
    pub allowed: Vec<ActionKind>,
    pub transfer_targets: Vec<(String, String)>,
    pub holder: Option<String>,
    /// The case lies with a department without a node: its signature and its decision
    /// are entered here on its behalf.
    pub holder_without_node: bool,
    pub signed: Option<String>,
    pub rating: Option<String>,
    pub rating_comment: String,
    pub rectification: Option<RectView>,
    /// At a hall, for a case of a division below it: which station holds it (name and
    /// division) and when that station last synced.
    pub station: Option<String>,
    /// At a hall: what this node may do on the case, from `allowed`, in words; a case
    /// not sent here it only supervises.
    pub hall_may: Option<String>,
    /// The item's process steps as the case ran them (empty when the item lists none).
    pub steps: Vec<StepRow>,
    /// The step the case is in, in one sentence ("step 2 of 4: 审查, due …, late by …").
    pub step_now: Option<String>,
}

impl CaseExtras {
    /// Whether the action of this kind (`accept`, `sign_for`, …) is offered.
    pub fn may(&self, kind: &str) -> bool {
        self.allowed.iter().any(|k| k.as_str() == kind)
    }
}

/// Builds the case page's extras from the case and what the node knows around it.
pub(super) async fn case_extras(
    state: &WebState,
    t: &'static Tr,
    staff: &Session,
    d: &CaseDetail,
) -> Result<CaseExtras, StoreError> {
    let names = state.store.node_names().await?;
    let sync = state.store.case_sync(d.summary.id.clone()).await?;
    let person = state.store.person(staff_of(staff)).await?;
    let allowed = d.allowed_actions(state.store.own_record(), person);
    let targets = if allowed.contains(&ActionKind::Transfer) {
        state.store.transfer_targets().await?
    } else {
        Vec::new()
    };
    let own = state.node.node_id.as_str();
    let name_of = |hex: &str| names.get(hex).cloned().unwrap_or_else(|| short(hex));
    let rows: Vec<TimelineRow> = d
        .events
        .iter()
        .map(|e| timeline_row(t, e, &name_of, &d.events, &d.intake.item.steps))
        .collect();
    let conflicts = d
        .state
        .conflicts
        .iter()
        .filter_map(|c| {
            let event = rows.iter().find(|r| r.id == c.event_id)?.clone();
            let against = c
                .against
                .as_ref()
                .and_then(|a| rows.iter().find(|r| &r.id == a))
                .cloned();
            Some(ConflictView { event, against })
        })
        .collect();
    let today = state.today();
    let calendar = state.store.calendar_for(&d.division);
    let calendar = &*calendar;
    // Used and left come from the core, on the case's calendar: one rule, one place.
    let used = d.state.time_used(&d.intake, calendar, today);
    let mut limits = Vec::new();
    if let Some(used) = used {
        for (key, dom_id, limit) in [
            ("case.committed_due", "committed-due", used.committed),
            ("case.legal_due", "legal-due", used.legal),
        ] {
            limits.push(LimitRow {
                dom_id,
                label: t.get(key).into_owned(),
                due: limit.due.to_string(),
                used: limit.used,
                left: limit.left,
                overdue: limit.overdue,
                left_text: if limit.overdue > 0 {
                    t.with("follow.overdue_by", "n", &limit.overdue.to_string())
                } else if d.state.closed_on.is_some() {
                    t.with("follow.left_at_close", "n", &limit.left.to_string())
                } else {
                    limit.left.to_string()
                },
            });
        }
    }
    let suspended_days = used.map_or(0, |u| u.suspended_days);
    let (steps, step_now) = step_rows(t, &d.state.step_times(&d.intake, calendar, today), &name_of);
    let decided_by = d
        .events
        .iter()
        .find(|e| matches!(e.action, Action::Decide { .. }) && !e.conflict && !e.voided)
        .map(|e| name_of(&e.node));
    let intake_node = d.intake.node.to_hex();
    let origin = (intake_node != own).then(|| name_of(&intake_node));
    let from_below = d.division.as_str() != state.node.division;
    let station = if from_below {
        let heard = state.store.last_heard(d.division.clone()).await?;
        let station = state
            .store
            .subtree_nodes()
            .await?
            .into_iter()
            .find(|n| n.division == d.division.as_str())
            .map_or_else(|| d.division.to_string(), |n| n.name);
        Some(
            t.get("hall.case_station")
                .replace("{station}", &station)
                .replace("{division}", d.division.as_str())
                .replace(
                    "{when}",
                    &heard.map_or_else(|| t.get("hall.never").into_owned(), minute_cst),
                ),
        )
    } else {
        None
    };
    let is_hall = yizhan_sync::auth::NodeRole::parse(&state.node.role).is_some_and(|r| r.is_hall());
    let hall_may = (is_hall && from_below && !d.summary.status.is_closed()).then(|| {
        let offered: Vec<String> = allowed
            .iter()
            .map(|k| t.get(&format!("action.{}", k.as_str())).into_owned())
            .collect();
        if !offered.is_empty() {
            format!(
                "{}{}",
                t.get("hall.may_do"),
                offered.join(&t.get("record.list_separator"))
            )
        } else {
            t.get("hall.may_supervise").into_owned()
        }
    });
    // A case that came from a station is not "only on this node" at a hall without a
    // parent: the station line says where it is.
    let sync_text = if from_below && sync.parent.is_none() {
        String::new()
    } else {
        sync_sentence(t, &sync)
    };
    let rectification = d.state.rectification.as_ref().map(|r| {
        let due = r.due(calendar);
        RectView {
            due: due.to_string(),
            overdue: r.closed_on.is_none() && today > due,
            closed_on: r.closed_on.map(|d| d.to_string()),
            response: r.response.clone(),
        }
    });
    Ok(CaseExtras {
        timeline: rows,
        limits,
        level: d
            .summary
            .level
            .map(|l| t.get(&format!("level.{}", l.as_str())).into_owned()),
        suspended_days,
        extension_days: d.state.extension_days,
        clock_stopped_on: d.summary.clock_stopped_on.clone(),
        sync: sync_text,
        decided_by,
        origin,
        conflicts,
        allowed,
        transfer_targets: targets,
        holder: d.state.holder.clone(),
        holder_without_node: d.state.holder.is_some() && d.state.holder_node.is_none(),
        signed: d.state.signed_for.as_ref().map(|s| {
            let key = if s.on_behalf_of.is_some() {
                "follow.signed_on_behalf"
            } else {
                "follow.signed_by"
            };
            t.get(key)
                .replace("{who}", &s.staff)
                .replace("{node}", &name_of(&s.node.to_hex()))
                .replace("{date}", &s.on.to_string())
                .replace("{dept}", s.on_behalf_of.as_deref().unwrap_or_default())
        }),
        rating: d
            .state
            .rating
            .as_ref()
            .map(|r| t.get(&format!("rating.level.{}", r.level)).into_owned()),
        rating_comment: d
            .state
            .rating
            .as_ref()
            .map_or(String::new(), |r| r.comment.clone()),
        rectification,
        station,
        hall_may,
        steps,
        step_now,
    })
}

/// The case's steps as the page shows them, and the sentence for the one it is in: the
/// core's [`yizhan_sync::domain::case::CaseState::step_times`], worded.
fn step_rows(
    t: &Tr,
    times: &[yizhan_sync::domain::case::StepTime],
    name_of: &dyn Fn(&str) -> String,
) -> (Vec<StepRow>, Option<String>) {
    use yizhan_sync::domain::calendar::WarningLevel;
    let total = times.len().to_string();
    let mut now = None;
    let rows = times
        .iter()
        .map(|s| {
            let due = s.deadline.map(|d| d.due.to_string()).unwrap_or_default();
            let state = if s.current && s.late_days > 0 {
                t.with("step.late_by", "n", &s.late_days.to_string())
            } else if s.current {
                t.get("step.running").into_owned()
            } else if s.finished.is_some() && s.late_days > 0 {
                t.with("step.finished_late", "n", &s.late_days.to_string())
            } else if s.finished.is_some() {
                t.get("step.finished_on_time").into_owned()
            } else if s.started_on.is_some() {
                // Started, never finished, and the case closed meanwhile.
                t.get("step.ended_with_case").into_owned()
            } else {
                t.get("step.waiting").into_owned()
            };
            if s.current {
                let mut sentence = t
                    .get("step.now")
                    .replace("{n}", &s.number.to_string())
                    .replace("{total}", &total)
                    .replace("{name}", &s.rule.name);
                if !due.is_empty() {
                    sentence.push_str(&t.get("record.list_separator"));
                    sentence.push_str(&t.with("step.due_on", "date", &due));
                }
                if s.late_days > 0 {
                    sentence.push_str(&t.get("record.list_separator"));
                    sentence.push_str(&state);
                }
                now = Some(sentence);
            }
            StepRow {
                number: s.number,
                name: s.rule.name.clone(),
                post: s.rule.post.clone().unwrap_or_default(),
                days: s
                    .rule
                    .days
                    .map(|n| t.with("step.days", "n", &n.to_string()))
                    .unwrap_or_default(),
                started_on: s.started_on.map(|d| d.to_string()).unwrap_or_default(),
                finished: s.finished.as_ref().map_or(String::new(), |f| {
                    t.get("step.finished_by")
                        .replace("{date}", &f.on.to_string())
                        .replace("{who}", &f.staff)
                        .replace("{node}", &name_of(&f.node.to_hex()))
                }),
                due,
                level: match s.level {
                    WarningLevel::Normal => "normal",
                    WarningLevel::Yellow => "yellow",
                    WarningLevel::Red | WarningLevel::LegalBreach => "red",
                },
                state,
                current: s.current,
            }
        })
        .collect();
    (rows, now)
}

fn short(hex: &str) -> String {
    hex.chars().take(8).collect()
}

fn sync_sentence(t: &Tr, sync: &CaseSync) -> String {
    match &sync.parent {
        None => t.get("follow.sync.no_parent").into_owned(),
        Some(parent) if sync.reached_parent() => t
            .get("follow.sync.reached")
            .replace("{parent}", parent)
            .replace("{when}", &sync.known_ms.map_or(String::new(), minute_cst)),
        Some(parent) => t
            .get("follow.sync.waiting")
            .replace("{parent}", parent)
            .replace("{n}", &(sync.changes - sync.at_parent).to_string()),
    }
}

fn timeline_row(
    t: &Tr,
    e: &EventView,
    name_of: &dyn Fn(&str) -> String,
    all: &[EventView],
    steps: &[StepRule],
) -> TimelineRow {
    TimelineRow {
        id: e.id.clone(),
        time: minute_cst(e.at_ms),
        label: t
            .get(&format!("event.{}", e.action.kind().as_str()))
            .into_owned(),
        // The applicant rates on the public pages; events name them by a fixed word.
        staff: if e.staff == yizhan_sync::engine::Person::Applicant.username() {
            t.get("follow.by_applicant").into_owned()
        } else if let Some(first) = &e.stand_in_for {
            // A stand-in's act (B角, §7.4.1.3) names whom it was for.
            t.with("follow.stand_in_for", "user", first)
                .replace("{staff}", &e.staff)
        } else {
            e.staff.clone()
        },
        node: name_of(&e.node),
        details: details(t, &e.action, all, steps),
        conflict: e.conflict,
        voided: e.voided,
    }
}

/// What was written with an event, as (label, text) pairs.
fn details(
    t: &Tr,
    action: &Action,
    all: &[EventView],
    steps: &[StepRule],
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut put = |key: &str, value: String| {
        if !value.trim().is_empty() {
            out.push((t.get(key).into_owned(), value));
        }
    };
    let materials = |list: &[yizhan_sync::domain::case::MaterialReceived]| {
        list.iter()
            .map(|m| {
                t.get("follow.material_count")
                    .replace("{name}", &m.name)
                    .replace("{originals}", &m.originals.to_string())
                    .replace("{copies}", &m.copies.to_string())
            })
            .collect::<Vec<_>>()
            .join("；")
    };
    match action {
        Action::NotifyMissing { missing, note } => {
            put(
                "follow.field.missing",
                missing
                    .iter()
                    .map(|m| format!("{}（{}）", m.name, m.reason))
                    .collect::<Vec<_>>()
                    .join("；"),
            );
            put("case.note", note.clone());
        }
        Action::Supplement { materials: list } => {
            put("follow.field.materials", materials(list));
        }
        Action::Accept { serial_no, .. } => put("case.serial_no", serial_no.to_string()),
        Action::Refuse {
            reason,
            basis,
            remedies,
            competent_authority,
        } => {
            put("follow.field.reason", reason.clone());
            put("case.refuse_basis", basis.clone());
            put("case.refuse_remedies", remedies.clone());
            put(
                "case.competent_authority",
                competent_authority.clone().unwrap_or_default(),
            );
        }
        Action::Suspend { procedure, reason } => {
            put("case.procedure", procedure.clone());
            put("follow.field.reason", reason.clone());
        }
        Action::Resume { note } => put("case.note", note.clone()),
        Action::Extend { days, reason, .. } | Action::RequestExtension { days, reason } => {
            put("case.extend_days", days.to_string());
            put("follow.field.reason", reason.clone());
        }
        Action::DeclineExtension { reason } => put("follow.field.reason", reason.clone()),
        Action::Decide {
            approved,
            reason,
            basis,
            remedies,
            on_behalf_of,
        } => {
            put(
                "follow.field.on_behalf_of",
                on_behalf_of.clone().unwrap_or_default(),
            );
            let key = if *approved {
                "follow.decide.approved"
            } else {
                "follow.decide.denied"
            };
            put("follow.field.decision", t.get(key).into_owned());
            put("follow.field.reason", reason.clone());
            put("case.refuse_basis", basis.clone());
            put("case.refuse_remedies", remedies.clone());
        }
        Action::Complete { result, delivery } => {
            put("item.result", result.clone());
            put("case.delivery", delivery.clone());
        }
        Action::Withdraw { reason } => put("follow.field.reason", reason.clone()),
        Action::Transfer { to, reason, .. } => {
            put("follow.field.to", to.clone());
            put("follow.field.reason", reason.clone());
        }
        Action::SignFor { note, on_behalf_of } => {
            put(
                "follow.field.on_behalf_of",
                on_behalf_of.clone().unwrap_or_default(),
            );
            put("case.note", note.clone());
        }
        Action::Resolve { void, reason, .. } => {
            let voided = void
                .iter()
                .map(|id| match all.iter().find(|e| &e.id == id) {
                    Some(e) => format!(
                        "{} {}",
                        t.get(&format!("event.{}", e.action.kind().as_str())),
                        minute_cst(e.at_ms)
                    ),
                    None => id.clone(),
                })
                .collect::<Vec<_>>()
                .join("；");
            put("follow.field.voided", voided);
            put("follow.field.reason", reason.clone());
        }
        Action::Pay {
            fee,
            amount_fen,
            method,
            receipt,
        } => {
            put("fee.line", fee.clone());
            put("fee.amount", yizhan_sync::domain::fee::yuan(*amount_fen));
            put(
                "fee.method",
                t.get(&format!("fee.method.{}", method.as_str()))
                    .into_owned(),
            );
            put("fee.receipt", receipt.clone());
        }
        Action::Exempt {
            fee,
            amount_fen,
            reason,
            basis,
        } => {
            put("fee.line", fee.clone());
            put("fee.amount", yizhan_sync::domain::fee::yuan(*amount_fen));
            put("follow.field.reason", reason.clone());
            put("fee.exempt_basis", basis.clone());
        }
        Action::Rate { level, comment, .. } => {
            put(
                "follow.field.rating",
                t.get(&format!("rating.level.{level}")).into_owned(),
            );
            put("follow.field.comment", comment.clone());
        }
        Action::Rectify { response } => put("follow.field.response", response.clone()),
        Action::FinishStep { step, note } => {
            let name = step
                .checked_sub(1)
                .and_then(|i| steps.get(i as usize))
                .map_or(String::new(), |s| s.name.clone());
            put(
                "follow.field.step",
                t.get("step.numbered")
                    .replace("{n}", &step.to_string())
                    .replace("{name}", &name),
            );
            put("case.note", note.clone());
        }
    }
    out
}

/// The action a follow-up form asks for, or the message saying what is wrong with it.
/// `kind` values beyond the basic ones of `cases::act`.
pub(super) async fn follow_up_action(
    state: &WebState,
    t: &Tr,
    kind: &str,
    fields: &[(String, String)],
) -> Option<Result<Action, (StatusCode, String)>> {
    let field = |name: &str| field(fields, name).to_string();
    let action = match kind {
        "decide" => {
            let approved = match field("approved").as_str() {
                "yes" => true,
                "no" => false,
                _ => {
                    return Some(Err((
                        StatusCode::UNPROCESSABLE_ENTITY,
                        t.get("follow.error.decision").into_owned(),
                    )));
                }
            };
            Action::Decide {
                approved,
                reason: field("reason"),
                basis: field("basis"),
                remedies: field("remedies"),
                on_behalf_of: None,
            }
        }
        "transfer" => {
            let target = field("target");
            let (to, to_node) = if let Some(hex) = target.strip_prefix("node:") {
                let targets = match state.store.transfer_targets().await {
                    Ok(targets) => targets,
                    Err(e) => {
                        return Some(Err((StatusCode::INTERNAL_SERVER_ERROR, e.to_string())));
                    }
                };
                match targets.into_iter().find(|(id, _)| id == hex) {
                    Some((id, name)) => (name, yizhan_sync::ids::NodeId::parse_hex(&id)),
                    None => {
                        return Some(Err((
                            StatusCode::UNPROCESSABLE_ENTITY,
                            t.get("follow.error.target").into_owned(),
                        )));
                    }
                }
            } else {
                (field("dept"), None)
            };
            Action::Transfer {
                to,
                reason: field("reason"),
                to_node,
            }
        }
        "sign_for" => Action::SignFor {
            note: field("note"),
            on_behalf_of: None,
        },
        "resolve" => {
            // One choice per conflict: the value names the event decided against.
            let void: Vec<String> = fields
                .iter()
                .filter(|(k, _)| k.starts_with("void_"))
                .map(|(_, v)| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .collect();
            if void.is_empty() {
                return Some(Err((
                    StatusCode::UNPROCESSABLE_ENTITY,
                    t.get("follow.error.choose_side").into_owned(),
                )));
            }
            // The store adds the sides kept (see `case::kept_sides`).
            Action::Resolve {
                void,
                reason: field("reason"),
                keep: Vec::new(),
            }
        }
        "rectify" => Action::Rectify {
            response: field("response"),
        },
        // The step the form names; a number that is not the current step's is the core's
        // to refuse with its words (`case::check_finish_step`).
        "finish_step" => Action::FinishStep {
            step: field("step").trim().parse().unwrap_or(0),
            note: field("note"),
        },
        _ => return None,
    };
    Some(Ok(action))
}

// ---------------------------------------------------------------- the follow-up list

#[derive(Template)]
#[template(path = "transfers.html")]
struct TransfersPage<'a> {
    chrome: Chrome<'a>,
    t: &'static Tr,
    sent: Vec<TransferRow>,
    received: Vec<TransferRow>,
    names: HashMap<String, String>,
}

impl TransfersPage<'_> {
    fn status(&self, s: &str) -> String {
        self.t.get(&format!("status.{s}")).into_owned()
    }

    fn node_name(&self, row: &TransferRow) -> String {
        match &row.holder_node {
            Some(hex) => self.names.get(hex).cloned().unwrap_or_else(|| short(hex)),
            None => String::new(),
        }
    }
}

/// `GET /transfers`: the cases sent on and whether the receiving end signed for them,
/// and the cases sent here that wait to be signed for.
pub async fn transfers(State(state): State<WebState>, ctx: Ctx) -> Response {
    if ctx.session.is_none() {
        return ctx.to_signin();
    }
    let own_node = state.node.node_id.clone();
    let lists = async {
        let sent = state
            .store
            .transfers(Transfers::Sent {
                own_node: own_node.clone(),
            })
            .await?;
        let received = state
            .store
            .transfers(Transfers::Received { own_node })
            .await?;
        let names = state.store.node_names().await?;
        Ok::<_, StoreError>((sent, received, names))
    };
    match lists.await {
        Ok((sent, received, names)) => render(
            ctx.t,
            StatusCode::OK,
            TransfersPage {
                chrome: ctx.chrome(),
                t: ctx.t,
                sent,
                received,
                names,
            },
        ),
        Err(e) => store_failed(&ctx, e),
    }
}

// ---------------------------------------------------------------- the applicant's pages

/// Lookups allowed per client address in [`WINDOW_MS`], found or not.
pub const MAX_LOOKUPS: u32 = 20;
/// Failed lookups allowed per client address (IPv6 by its /64) in [`WINDOW_MS`]. Four
/// phone digits have 10 000 values; five guesses per quarter hour from one place make
/// guessing them take weeks, while an applicant who mistypes twice is not stopped.
/// Never per serial number alone: a stranger's misses on a number would then lock the
/// applicant out of their own case.
pub const MAX_MISSES: u32 = 5;
pub const WINDOW_MS: u64 = 15 * 60 * 1000;
/// How long a rating form stays valid after the status was shown.
const TICKET_MS: u64 = 30 * 60 * 1000;

/// Counters and tickets of the applicants' pages, in memory (a restart forgets them).
#[derive(Debug, Default)]
pub struct Applicants {
    windows: Mutex<HashMap<String, (u32, u64)>>,
    tickets: Mutex<HashMap<String, (String, u64)>>,
}

impl Applicants {
    /// Counts one against every key, or none if any has reached its limit in the
    /// current window: checked and counted under one lock, so parallel requests cannot
    /// all pass before the first is counted.
    fn take(&self, keys: &[(&str, u32)], now_ms: u64) -> bool {
        let mut map = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 100_000 {
            map.retain(|_, (_, start)| now_ms.saturating_sub(*start) <= WINDOW_MS);
        }
        let used = |map: &HashMap<String, (u32, u64)>, key: &str| {
            map.get(key)
                .filter(|(_, start)| now_ms.saturating_sub(*start) <= WINDOW_MS)
                .map_or(0, |(n, _)| *n)
        };
        if keys.iter().any(|(key, limit)| used(&map, key) >= *limit) {
            return false;
        }
        for (key, _) in keys {
            let entry = map.entry(key.to_string()).or_insert((0, now_ms));
            if now_ms.saturating_sub(entry.1) > WINDOW_MS {
                *entry = (0, now_ms);
            }
            entry.0 += 1;
        }
        true
    }

    /// Gives back what [`Applicants::take`] counted against `keys` (a lookup that hit).
    fn give_back(&self, keys: &[&str]) {
        let mut map = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        for key in keys {
            if let Some(entry) = map.get_mut(*key) {
                entry.0 = entry.0.saturating_sub(1);
            }
        }
    }

    /// A one-use ticket for rating `case_id`.
    fn ticket(&self, case_id: &str, now_ms: u64) -> String {
        let token = random_token();
        let mut map = self.tickets.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 10_000 {
            map.retain(|_, (_, until)| *until > now_ms);
        }
        map.insert(token.clone(), (case_id.to_string(), now_ms + TICKET_MS));
        token
    }

    /// The case a ticket was issued for, using it up.
    fn redeem(&self, token: &str, now_ms: u64) -> Option<String> {
        // 256 random bits: a hash lookup gives nothing away worth timing.
        let mut map = self.tickets.lock().unwrap_or_else(|e| e.into_inner());
        let (case_id, until) = map.remove(token)?;
        (until > now_ms).then_some(case_id)
    }
}

/// What the applicant sees of a case: nothing personal beyond what they typed.
#[derive(Clone, Debug)]
pub struct PublicStatus {
    pub serial_no: String,
    pub item_name: String,
    pub impl_code: String,
    pub status: String,
    pub accepted_on: Option<String>,
    pub committed_due: Option<String>,
    pub closed_on: Option<String>,
    pub suspended: bool,
    pub missing: Vec<String>,
    pub rated: Option<String>,
    /// The rating form's ticket, when the case can be rated now.
    pub ticket: Option<String>,
    /// The notices issued to the applicant (newest first): what each says of the case,
    /// and the link to its sealed content.
    pub notices: Vec<PublicNotice>,
    /// The written response to a bad rating, once the lead has closed the rectification.
    pub reply: Option<(String, String)>,
    /// A combined case's parts (并联审批, §7.5): each department and where its part stands.
    pub parts: Vec<super::cases::PartRow>,
}

/// A notice as the applicant's status page lists it.
#[derive(Clone, Debug)]
pub struct PublicNotice {
    pub title: String,
    pub number: String,
    pub issued: String,
    /// The new dates or the procedure it announced, in words.
    pub says: String,
    /// `/verify?c=…`: the sealed notice.
    pub link: String,
}

#[derive(Template)]
#[template(path = "status_lookup.html")]
struct StatusPage<'a> {
    chrome: Chrome<'a>,
    t: &'static Tr,
    serial: String,
    error: Option<String>,
    found: Option<PublicStatus>,
}

fn status_page(
    ctx: &Ctx,
    code: StatusCode,
    serial: String,
    error: Option<String>,
    found: Option<PublicStatus>,
) -> Response {
    render(
        ctx.t,
        code,
        StatusPage {
            chrome: ctx.chrome(),
            t: ctx.t,
            serial,
            error,
            found,
        },
    )
}

/// `GET /status`: the form.
pub async fn status_form(ctx: Ctx) -> Response {
    status_page(&ctx, StatusCode::OK, String::new(), None, None)
}

/// `POST /status`: the status of one case, for whoever knows its serial number and the
/// last four digits of the applicant's phone. A miss says only that nothing matched.
pub async fn status_lookup(
    State(state): State<WebState>,
    ctx: Ctx,
    axum::Form(fields): axum::Form<Vec<(String, String)>>,
) -> Response {
    let get = |name: &str| field(&fields, name);
    // The query code printed on the notices, or the serial number.
    let typed = if get("code").is_empty() {
        get("serial")
    } else {
        get("code")
    };
    let serial: String = typed
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_uppercase();
    let digits = get("phone4");
    let now = state.clock.now_ms();
    let addr = format!("addr:{}", address_key(ctx.client));
    let miss_addr = format!("miss:{addr}");
    // A lookup, and a miss until it proves a hit, for the address.
    if !state
        .applicants
        .take(&[(&addr, MAX_LOOKUPS), (&miss_addr, MAX_MISSES)], now)
    {
        return status_page(
            &ctx,
            StatusCode::TOO_MANY_REQUESTS,
            String::new(),
            Some(ctx.t.get("applicant.too_many").into_owned()),
            None,
        );
    }
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        state.applicants.give_back(&[&miss_addr]);
        return status_page(
            &ctx,
            StatusCode::UNPROCESSABLE_ENTITY,
            serial,
            Some(ctx.t.get("applicant.error.digits").into_owned()),
            None,
        );
    }
    let found = if let Some(code) = yizhan_sync::domain::query_code::normalize(&serial) {
        match state
            .store
            .get_case_by_query_code(code, digits.to_string(), state.today())
            .await
        {
            Ok(found) => found,
            Err(e) => return store_failed(&ctx, e),
        }
    } else {
        match SerialNo::parse(&serial) {
            Ok(serial_no) => match state
                .store
                .get_case_by_serial(serial_no, state.today())
                .await
            {
                Ok(d) if same_secret(&d.intake.applicant.phone().tail(), digits) => Some(d),
                Ok(_) | Err(StoreError::NotFound { .. }) => None,
                Err(e) => return store_failed(&ctx, e),
            },
            Err(_) => None,
        }
    };
    let Some(d) = found else {
        return status_page(
            &ctx,
            StatusCode::NOT_FOUND,
            serial,
            Some(ctx.t.get("applicant.not_found").into_owned()),
            None,
        );
    };
    state.applicants.give_back(&[&miss_addr]);
    let notices = match state.store.notices_of_case(d.summary.id.clone()).await {
        Ok(notices) => notices,
        Err(e) => return store_failed(&ctx, e),
    };
    let view = public_status(&state, ctx.t, &d, notices, now);
    status_page(&ctx, StatusCode::OK, serial, None, Some(view))
}

fn public_status(
    state: &WebState,
    t: &Tr,
    d: &CaseDetail,
    notices: Vec<crate::store::StoredNotice>,
    now: u64,
) -> PublicStatus {
    use super::cases::{human_date, human_time};
    let notices = notices
        .into_iter()
        .rev()
        .map(|n| {
            let c = &n.content;
            let says = match (&c.extension, &c.suspension) {
                (Some(x), _) => t
                    .get("applicant.notice_extension")
                    .replace("{days}", &x.days.to_string())
                    .replace(
                        "{due}",
                        &c.committed_due
                            .as_deref()
                            .map(|d| human_date(t, d))
                            .unwrap_or_default(),
                    ),
                (_, Some(s)) => t
                    .get("applicant.notice_suspension")
                    .replace("{procedure}", &s.procedure)
                    .replace("{since}", &human_date(t, &s.since)),
                _ => String::new(),
            };
            PublicNotice {
                title: t
                    .get(&format!("notice.kind.{}", c.kind.as_str()))
                    .into_owned(),
                number: c.number.clone(),
                issued: human_time(t, &c.issued_at),
                says,
                link: format!(
                    "/verify?c={}",
                    crate::notice::short_code(&c.number, &n.signature)
                ),
            }
        })
        .collect();
    let reply = d.state.rectification.as_ref().and_then(|r| {
        r.closed_on
            .map(|on| (human_date(t, &on.to_string()), r.response.clone()))
    });
    let can_rate = d.summary.status == Status::Completed
        && d.state.rating.is_none()
        && d.state.conflicts.is_empty();
    PublicStatus {
        serial_no: d.summary.serial_no.clone().unwrap_or_default(),
        item_name: d.summary.item_name.clone(),
        impl_code: d.summary.impl_code.clone(),
        // The derived state's: a combined case's is the whole's, with its parts.
        status: t
            .get(&format!("status.{}", d.state.status.as_str()))
            .into_owned(),
        parts: super::cases::part_rows(t, d),
        accepted_on: d.summary.accepted_on.clone(),
        committed_due: d.summary.committed_due.clone(),
        closed_on: d.summary.closed_on.clone(),
        suspended: d.state.status == Status::Suspended,
        missing: d.missing.iter().map(|m| m.name.clone()).collect(),
        rated: d
            .state
            .rating
            .as_ref()
            .map(|r| t.get(&format!("rating.level.{}", r.level)).into_owned()),
        ticket: can_rate.then(|| state.applicants.ticket(&d.summary.id, now)),
        notices,
        reply,
    }
}

#[derive(Template)]
#[template(path = "rated.html")]
struct RatedPage<'a> {
    chrome: Chrome<'a>,
    t: &'static Tr,
    bad: bool,
}

/// `POST /status/rate`: the applicant's rating, once per completed case, with the ticket
/// the status page gave. No level is preselected and nothing steers the choice (GB/T
/// 39734 §4.1).
pub async fn rate(
    State(state): State<WebState>,
    ctx: Ctx,
    axum::Form(fields): axum::Form<Vec<(String, String)>>,
) -> Response {
    let get = |name: &str| field(&fields, name);
    let now = state.clock.now_ms();
    let level: Option<u8> = get("level").parse().ok().filter(|l| (1..=5).contains(l));
    let Some(level) = level else {
        return message(
            &ctx,
            StatusCode::UNPROCESSABLE_ENTITY,
            "applicant.rate_title",
            ctx.t.get("applicant.error.level").into_owned(),
        );
    };
    let comment = get("comment").to_string();
    if comment.chars().count() > 1000 {
        return message(
            &ctx,
            StatusCode::UNPROCESSABLE_ENTITY,
            "applicant.rate_title",
            ctx.t.get("applicant.error.comment").into_owned(),
        );
    }
    let Some(case_id) = state.applicants.redeem(get("ticket"), now) else {
        return message(
            &ctx,
            StatusCode::FORBIDDEN,
            "applicant.rate_title",
            ctx.t.get("applicant.error.ticket").into_owned(),
        );
    };
    let Some(doc_id) = DocId::parse(&case_id) else {
        return store_failed(&ctx, StoreError::NotFound { what: case_id });
    };
    let applicant = yizhan_sync::engine::Person::Applicant;
    let action = Action::Rate {
        level,
        comment,
        rectify_days: state.rectify_days,
    };
    match state
        .store
        .act_on_case(doc_id, vec![NewAction::Do(action)], applicant, now)
        .await
    {
        Ok(()) => render(
            ctx.t,
            StatusCode::OK,
            RatedPage {
                chrome: ctx.chrome(),
                t: ctx.t,
                bad: Rating::is_bad(level),
            },
        ),
        Err(StoreError::Case(CaseError::Text(refused))) => message(
            &ctx,
            StatusCode::UNPROCESSABLE_ENTITY,
            "applicant.rate_title",
            super::cases::text_refused(ctx.t, &refused),
        ),
        Err(StoreError::Case(_)) => message(
            &ctx,
            StatusCode::CONFLICT,
            "applicant.rate_title",
            ctx.t.get("applicant.error.rated").into_owned(),
        ),
        Err(e) => store_failed(&ctx, e),
    }
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_windows_count_and_expire() {
        let a = Applicants::default();
        for _ in 0..MAX_MISSES {
            assert!(a.take(&[("k", MAX_MISSES), ("addr", 100)], 1_000));
        }
        // All or nothing: a used-up key refuses the whole lookup and counts nothing.
        assert!(!a.take(&[("addr", 100), ("k", MAX_MISSES)], 1_000));
        assert!(a.take(&[("other", MAX_MISSES)], 1_000));
        // A hit gives its miss back.
        a.give_back(&["k"]);
        assert!(a.take(&[("k", MAX_MISSES)], 1_000));
        assert!(!a.take(&[("k", MAX_MISSES)], 1_000));
        // A new window starts after WINDOW_MS.
        assert!(a.take(&[("k", MAX_MISSES)], 1_000 + WINDOW_MS + 1));
    }

    /// Parallel guesses cannot pass together: exactly the limit gets through.
    #[test]
    fn parallel_lookups_are_counted_before_any_passes() {
        let a = std::sync::Arc::new(Applicants::default());
        let passed: u32 = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..50)
                .map(|_| {
                    let a = a.clone();
                    scope.spawn(move || a.take(&[("serial:x", MAX_MISSES)], 1_000) as u32)
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(passed, MAX_MISSES);
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let a: std::net::IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: std::net::IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        assert_eq!(address_key(Some(a)), address_key(Some(b)));
        let mapped: std::net::IpAddr = "::ffff:10.0.0.7".parse().unwrap();
        assert_eq!(address_key(Some(mapped)), "10.0.0.7");
    }

    #[test]
    fn tickets_are_used_once_and_expire() {
        let a = Applicants::default();
        let t = a.ticket("c-1", 0);
        assert_eq!(a.redeem("nope", 1), None);
        assert_eq!(a.redeem(&t, 1).as_deref(), Some("c-1"));
        assert_eq!(a.redeem(&t, 2), None);
        let late = a.ticket("c-2", 0);
        assert_eq!(a.redeem(&late, TICKET_MS + 1), None);
    }
}
