//! A person's action on a case: who may do what, decided once for the store, the API, the
//! web UI and the simulation.
//!
//! [`allowed_actions`] lists what an actor may record on a case as it stands, so pages
//! offer only that; [`act`] turns requested actions into events, refusing with a coded
//! [`CaseError`] anything the rules forbid. Both ask [`may`], which combines
//!
//! * the case's state ([`case::state_allows`]: the state machine, conflicts, what each
//!   kind needs of the case),
//! * the node's relation to the case ([`auth::may_record`]: a hall above decides, signs
//!   for and supervises, the counter's acts are the receiving office's), which every
//!   receiver also checks on what it is sent ([`crate::effect`]),
//! * the person's role ([`role_may`]): resolving conflicts, closing rectifications,
//!   entering a rating given on paper and extending limits are a lead's, a worker asks a
//!   lead for an extension; an applicant only rates.
//!
//! A signature for, or a decision on, a case that lies with a department without a node
//! is recorded on that department's behalf ([`on_behalf_of`]): the engine fills it in, as
//! it fills in the serial number of an acceptance.

use crate::auth::{self, NodeRecord};
use crate::doc::CaseDoc;
use crate::domain::calendar::{Calendar, Date};
use crate::domain::case::{self, Action, ActionKind, CaseError, CaseState, Event, Intake};
use crate::domain::codes::ImplCode;
use crate::domain::combined::{PartState, combine};
use crate::domain::hlc::Hlc;
use crate::domain::serial::SerialNo;
use crate::ids::NodeId;

/// A staff member's role at a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StaffRole {
    /// 窗口工作人员: receives and handles applications.
    Worker,
    /// 现场负责人: also supervises the counters, resolves conflicts, closes rectifications.
    Lead,
    /// Manages accounts and the node; may do what a lead does.
    Admin,
    /// 督办员 at a hall: issues supervision notices to the stations below (§10.2), and
    /// records no act on a case.
    Supervisor,
    /// 进驻部门 staff at a hall: sign for and decide the cases sent to their department
    /// (the account's counter field names the department, as transfers name it) and
    /// finish their process steps, and nothing else.
    Department,
    /// 事项编辑 at a hall: drafts new, changed and cancelled catalog items
    /// (`engine::may_author`, §8.4.1), and records no act on a case.
    ItemEditor,
    /// 事项审核 at a hall: approves or rejects the drafts others wrote (§8.4.1 审查), so
    /// nothing reaches the catalog on one person's word.
    ItemReviewer,
}

impl StaffRole {
    pub const ALL: [StaffRole; 7] = [
        StaffRole::Worker,
        StaffRole::Lead,
        StaffRole::Admin,
        StaffRole::Supervisor,
        StaffRole::Department,
        StaffRole::ItemEditor,
        StaffRole::ItemReviewer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StaffRole::Worker => "worker",
            StaffRole::Lead => "lead",
            StaffRole::Admin => "admin",
            StaffRole::Supervisor => "supervisor",
            StaffRole::Department => "department",
            StaffRole::ItemEditor => "item_editor",
            StaffRole::ItemReviewer => "item_reviewer",
        }
    }

    pub fn parse(s: &str) -> Option<StaffRole> {
        StaffRole::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether the role may do a lead's acts.
    pub fn leads(self) -> bool {
        matches!(self, StaffRole::Lead | StaffRole::Admin)
    }

    /// The roles a node of this kind offers its accounts: department staff, supervisors
    /// and the catalog's editors and reviewers work at halls.
    pub fn offered_at(node_role: crate::auth::NodeRole) -> Vec<StaffRole> {
        StaffRole::ALL
            .into_iter()
            .filter(|r| {
                !matches!(
                    r,
                    StaffRole::Department
                        | StaffRole::Supervisor
                        | StaffRole::ItemEditor
                        | StaffRole::ItemReviewer
                ) || node_role.is_hall()
            })
            .collect()
    }
}

/// Who records an action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Person {
    /// A signed-in staff member at a counter.
    Staff {
        username: String,
        counter: String,
        role: StaffRole,
        /// Whether the account is its department's chief representative (首席代表, §7.5),
        /// who approves extensions for the department ([`crate::engine::chief_authorizes`]).
        chief: bool,
    },
    /// The applicant, on the public pages (only ever a rating).
    Applicant,
}

impl Person {
    /// The name events carry.
    pub fn username(&self) -> &str {
        match self {
            Person::Staff { username, .. } => username,
            Person::Applicant => "applicant",
        }
    }

    fn counter(&self) -> &str {
        match self {
            Person::Staff { counter, .. } => counter,
            Person::Applicant => "",
        }
    }
}

/// A person at a node.
#[derive(Clone, Copy, Debug)]
pub struct Actor<'a> {
    pub node: &'a NodeRecord,
    pub person: &'a Person,
}

/// What a person asks for. Acceptance is the one action whose content the node fills in:
/// the serial number and the calendar come from the node, never from the caller.
#[derive(Clone, Debug)]
pub enum Request {
    Accept,
    Do(Action),
}

impl Request {
    pub fn kind(&self) -> ActionKind {
        match self {
            Request::Accept => ActionKind::Accept,
            Request::Do(action) => action.kind(),
        }
    }
}

/// Whether `actor` may record an action of `kind` on the case as it stands.
pub fn may(
    actor: Actor<'_>,
    intake: &Intake,
    state: &CaseState,
    kind: ActionKind,
) -> Result<(), CaseError> {
    let relation = auth::case_relation(actor.node, &intake.division)
        .ok_or(CaseError::NotThisNodes { action: kind })?;
    let delegated_by = intake.item.delegated_by.as_deref();
    // 并联审批 (§7.5; 行政许可法 §26): a combined case is decided by its parts' departments
    // (`state` is the parent's combined with its parts, `domain::combined::combine`); the
    // station completes it once they all have.
    if intake.is_parent()
        && (kind == ActionKind::Decide
            || (kind == ActionKind::Complete && state.status != case::Status::Decided))
    {
        return Err(CaseError::DecidedByParts {
            parts: intake.item.parts.len() as u32,
        });
    }
    // §5.7.2: a case a department decides is decided by its members at its hall alone;
    // every receiver checks the node's part ([`auth::may_decide`]).
    if kind == ActionKind::Decide
        && let Some(decider) = &intake.item.decided_by
    {
        let member = matches!(
            actor.person,
            Person::Staff { role: StaffRole::Department, counter, .. } if *counter == decider.name
        );
        if !auth::may_decide(actor.node.node, Some(decider)) || !member {
            return Err(CaseError::NotDecidingDepartment {
                department: decider.name.clone(),
            });
        }
    }
    let behalf = on_behalf_of(state, kind);
    let recording = auth::Recording {
        kind,
        on_behalf_of: behalf.as_deref(),
        delegated_by,
    };
    if !auth::may_record(relation, recording) {
        return Err(match (kind, delegated_by) {
            // 代为受理: the department decides; the station enters its decision once the
            // case has gone to it.
            (ActionKind::Decide, Some(department)) if relation == auth::CaseRelation::Owner => {
                CaseError::DelegatedDecision {
                    department: department.to_string(),
                }
            }
            _ => CaseError::NotThisNodes { action: kind },
        });
    }
    match actor.person {
        Person::Applicant if kind != ActionKind::Rate => return Err(CaseError::ApplicantsRateOnly),
        Person::Applicant => {}
        Person::Staff {
            role,
            counter,
            chief,
            ..
        } => {
            // A chief representative approves or declines extensions for the department
            // (§7.5, 行政许可法 §42), which the role alone leaves to a lead.
            if !super::chief_authorizes(*role, *chief, kind) {
                role_may(*role, kind)?;
            }
            // Department staff act only on what was sent to their department.
            if *role == StaffRole::Department && state.holder.as_deref() != Some(counter.as_str()) {
                return Err(CaseError::DepartmentsCasesOnly { action: kind });
            }
        }
    }
    // A hall acts on a case only once it was sent there (转办, §5.5.4): to the hall's own
    // node, or through it to a department without a node; on the others it supervises
    // (§10.2). Signing for has its own rule below, and resolving conflicts stays a lead's
    // wherever the case is. The local rule: receivers judge a hall's change by its
    // relation to the case (`auth::may_record`), since whether a case lay with the hall
    // depends on changes that may still be on their way.
    if relation == auth::CaseRelation::Above
        && !matches!(kind, ActionKind::SignFor | ActionKind::Resolve)
        && !lies_with(state, actor.node.node)
    {
        return Err(CaseError::NotSentHere { action: kind });
    }
    // A case's process steps are finished where it lies (§9.2.2): at the receiving office
    // until it is sent to a hall, then at that hall.
    if kind == ActionKind::FinishStep
        && relation == auth::CaseRelation::Owner
        && state
            .holder_node
            .is_some_and(|holder| holder != actor.node.node)
    {
        return Err(CaseError::StepsLieElsewhere);
    }
    case::state_allows(state, kind)?;
    // Nor may it complete one the department has not decided.
    if kind == ActionKind::Complete
        && relation == auth::CaseRelation::Owner
        && state.decision.is_none()
    {
        if let Some(department) = delegated_by {
            return Err(CaseError::DelegatedDecision {
                department: department.to_string(),
            });
        }
        if let Some(decider) = &intake.item.decided_by {
            return Err(CaseError::NotDecidingDepartment {
                department: decider.name.clone(),
            });
        }
    }
    if kind == ActionKind::SignFor {
        match state.holder_node {
            Some(holder) if holder != actor.node.node => return Err(CaseError::NotTheHolder),
            // A department without a node: the node that sent it signs on its behalf.
            None if state.transferred_by != Some(actor.node.node) => {
                return Err(CaseError::NotTheSender);
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether the case lies with `node`: sent to it, or sent by it to a department without a
/// node of its own (whose acts it enters on the department's behalf).
fn lies_with(state: &CaseState, node: NodeId) -> bool {
    match state.holder_node {
        Some(holder) => holder == node,
        None => state.holder.is_some() && state.transferred_by == Some(node),
    }
}

/// What a staff member's role allows: resolving conflicts, closing rectifications, entering
/// a rating given on paper, and extending the limits or declining a request to (行政许可法
/// §42: 经本行政机关负责人批准) are a lead's; a worker asks a lead for an extension, a lead
/// extends directly.
pub fn role_may(role: StaffRole, kind: ActionKind) -> Result<(), CaseError> {
    use ActionKind as A;
    // A supervisor's acts are supervision notices (`engine::may_supervise`), never a
    // counter's or a decider's act on the case itself (§10.2).
    if role == StaffRole::Supervisor {
        return Err(CaseError::SupervisorsSuperviseOnly { action: kind });
    }
    // The catalog's editors and reviewers author items (`engine::may_author`), never a
    // case (§8.4.1 is the catalog's management, not a counter's).
    if matches!(role, StaffRole::ItemEditor | StaffRole::ItemReviewer) {
        return Err(CaseError::CatalogStaffOnly { action: kind });
    }
    let leads_only = matches!(
        kind,
        A::Resolve | A::Rectify | A::Rate | A::Extend | A::DeclineExtension
    );
    if leads_only && !role.leads() {
        return Err(CaseError::LeadsOnly { action: kind });
    }
    if kind == A::RequestExtension && role.leads() {
        return Err(CaseError::LeadsExtendDirectly);
    }
    if role == StaffRole::Department && !matches!(kind, A::SignFor | A::Decide | A::FinishStep) {
        return Err(CaseError::DepartmentsCasesOnly { action: kind });
    }
    Ok(())
}

/// The department without a node of its own an event of `kind` is recorded for: a
/// signature for, or a decision on, a case that lies with such a department is entered on
/// its behalf by the node it was sent through.
pub fn on_behalf_of(state: &CaseState, kind: ActionKind) -> Option<String> {
    match kind {
        ActionKind::Decide | ActionKind::SignFor if state.holder_node.is_none() => {
            state.holder.clone()
        }
        _ => None,
    }
}

/// The kinds of action `actor` may record on the case as it stands, in the order of
/// [`ActionKind::ALL`]; the pages offer exactly these.
pub fn allowed_actions(actor: Actor<'_>, intake: &Intake, state: &CaseState) -> Vec<ActionKind> {
    ActionKind::ALL
        .into_iter()
        .filter(|kind| may(actor, intake, state, *kind).is_ok())
        .collect()
}

/// Turns requested actions into the events to record on a case, in order, each checked
/// against the case as it stands after the ones before it. `tick` gives each event its
/// time (the node's hybrid clock); `serial` issues the next serial number for an item on
/// a day, for an acceptance.
pub fn act<E: From<CaseError>>(
    case_doc: &CaseDoc,
    requests: Vec<Request>,
    actor: Actor<'_>,
    tick: &mut dyn FnMut() -> Result<Hlc, E>,
    serial: &mut dyn FnMut(&ImplCode, Date) -> Result<SerialNo, E>,
) -> Result<Vec<Event>, E> {
    act_combined(case_doc, &[], requests, actor, tick, serial)
}

/// [`act`] on a case whose state is combined with its parts' (a combined item's parent,
/// `domain::combined::combine`; `parts` has one entry per part, `None` where this node
/// holds no sub-case for it).
pub fn act_combined<E: From<CaseError>>(
    case_doc: &CaseDoc,
    parts: &[Option<PartState>],
    requests: Vec<Request>,
    actor: Actor<'_>,
    tick: &mut dyn FnMut() -> Result<Hlc, E>,
    serial: &mut dyn FnMut(&ImplCode, Date) -> Result<SerialNo, E>,
) -> Result<Vec<Event>, E> {
    let intake = &case_doc.intake;
    let mut events = case_doc.events.clone();
    events.sort_by_key(|e| (e.at, e.node));
    let derive = |events: &[Event]| combine(intake, case::derive(intake, events), parts);
    let mut state = derive(&events);
    let mut new_events = Vec::with_capacity(requests.len());
    for request in requests {
        may(actor, intake, &state, request.kind())?;
        let at = tick()?;
        let action = match request {
            Request::Accept => Action::Accept {
                serial_no: serial(
                    &intake.item.impl_code,
                    Date::from_unix_ms_cst(at.unix_ms() as i64),
                )?,
                calendar: Calendar::china().version().to_string(),
            },
            // A resolution records the sides it keeps, so a later opposite one made
            // elsewhere does not undo it (the first decision stands).
            Request::Do(Action::Resolve { void, reason, .. }) => {
                case::check_resolution(intake, &events, &void)?;
                let keep = case::kept_sides(&state, &void);
                Action::Resolve { void, reason, keep }
            }
            // A signature or a decision for a department without a node says so.
            Request::Do(Action::SignFor { note, .. }) => Action::SignFor {
                note,
                on_behalf_of: on_behalf_of(&state, ActionKind::SignFor),
            },
            Request::Do(Action::Decide {
                approved,
                reason,
                basis,
                remedies,
                ..
            }) => Action::Decide {
                approved,
                reason,
                basis,
                remedies,
                on_behalf_of: on_behalf_of(&state, ActionKind::Decide),
            },
            Request::Do(action) => action,
        };
        case::validate(intake, &state, &action)?;
        let event = Event {
            at,
            node: actor.node.node,
            staff: actor.person.username().to_string(),
            counter: actor.person.counter().to_string(),
            stand_in_for: None,
            action,
        };
        events.push(event.clone());
        new_events.push(event);
        state = derive(&events);
    }
    Ok(new_events)
}

#[cfg(test)]
mod tests;
