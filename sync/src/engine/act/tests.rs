//! Who may do what: a table over relation, role and the case's state.

use super::*;
use crate::auth::NodeRole;
use crate::domain::case::tests::{HALL, STATION, event, intake, sample_action};
use crate::domain::codes::DivisionCode;
use crate::domain::hlc::HlcClock;
use crate::ids::NodeId;

fn node(id: NodeId, role: NodeRole, division: &str) -> NodeRecord {
    NodeRecord {
        node: id,
        public_key: [0; 32],
        role,
        division: DivisionCode::parse(division).unwrap(),
        name: String::new(),
        enrolled_by: id,
        enrolled_ms: 0,
        revoked: None,
        segment: None,
    }
}

fn staff(role: StaffRole) -> Person {
    Person::Staff {
        username: "w".into(),
        counter: "1".into(),
        role,
        chief: false,
    }
}

/// The case after these events (all at the station unless the event says otherwise).
fn state_after(kinds: &[ActionKind]) -> CaseState {
    let events: Vec<Event> = kinds
        .iter()
        .enumerate()
        .map(|(i, kind)| event(STATION, "2026-03-03", 9 + i as u64, sample_action(*kind)))
        .collect();
    case::derive(&intake(), &events)
}

/// Who, as whom, on which case, what, and whether it is allowed (or the error's code).
type Row<'a> = (
    &'a NodeRecord,
    &'a Person,
    &'a CaseState,
    ActionKind,
    Result<(), &'static str>,
);

#[test]
fn who_may_do_what() {
    let station = node(STATION, NodeRole::Station, "440399001001");
    let hall = node(HALL, NodeRole::Subdistrict, "440399001");
    let neighbour = node(NodeId([3; 16]), NodeRole::Station, "440399001002");
    let worker = staff(StaffRole::Worker);
    let lead = staff(StaffRole::Lead);
    let supervisor = staff(StaffRole::Supervisor);
    let applicant = Person::Applicant;
    use ActionKind as A;
    let submitted = state_after(&[]);
    let accepted = state_after(&[A::Accept]);
    let completed = state_after(&[A::Accept, A::Complete]);
    // Sent to the hall (转办 to its node).
    let sent = case::derive(
        &intake(),
        &[
            event(STATION, "2026-03-03", 9, sample_action(A::Accept)),
            event(
                STATION,
                "2026-03-03",
                10,
                Action::Transfer {
                    to: "园岭街道".into(),
                    reason: "需街道审批".into(),
                    to_node: Some(HALL),
                },
            ),
        ],
    );
    // (who, as whom, case, action, allowed or the error's code)
    let table: Vec<Row> = vec![
        (&station, &worker, &submitted, A::Accept, Ok(())),
        (&hall, &worker, &submitted, A::Accept, Err("not_this_nodes")),
        (
            &neighbour,
            &lead,
            &accepted,
            A::Decide,
            Err("not_this_nodes"),
        ),
        // A hall acts only on what a station sent it; the others it supervises.
        (&hall, &worker, &accepted, A::Decide, Err("not_sent_here")),
        (&hall, &lead, &accepted, A::Suspend, Err("not_sent_here")),
        (&hall, &worker, &accepted, A::Complete, Err("not_sent_here")),
        (&hall, &worker, &sent, A::SignFor, Ok(())),
        (&hall, &worker, &sent, A::Decide, Ok(())),
        (&hall, &lead, &sent, A::Suspend, Ok(())),
        (&station, &worker, &sent, A::SignFor, Err("not_the_holder")),
        // A case's steps are finished where it lies (§9.2.2): the station until it sends
        // it to a hall, then that hall; never before acceptance, a neighbour or a
        // supervisor.
        (&station, &worker, &accepted, A::FinishStep, Ok(())),
        (
            &station,
            &worker,
            &submitted,
            A::FinishStep,
            Err("not_allowed"),
        ),
        (
            &station,
            &worker,
            &completed,
            A::FinishStep,
            Err("not_allowed"),
        ),
        (
            &hall,
            &worker,
            &accepted,
            A::FinishStep,
            Err("not_sent_here"),
        ),
        (&hall, &worker, &sent, A::FinishStep, Ok(())),
        (
            &station,
            &worker,
            &sent,
            A::FinishStep,
            Err("steps_lie_elsewhere"),
        ),
        (
            &neighbour,
            &worker,
            &accepted,
            A::FinishStep,
            Err("not_this_nodes"),
        ),
        (
            &hall,
            &supervisor,
            &sent,
            A::FinishStep,
            Err("supervisors_supervise_only"),
        ),
        (
            &hall,
            &worker,
            &accepted,
            A::Withdraw,
            Err("not_this_nodes"),
        ),
        (&station, &worker, &accepted, A::Withdraw, Ok(())),
        (&station, &worker, &completed, A::Rate, Err("leads_only")),
        (&station, &lead, &completed, A::Rate, Ok(())),
        (&station, &applicant, &completed, A::Rate, Ok(())),
        (
            &station,
            &applicant,
            &accepted,
            A::Complete,
            Err("applicants_rate_only"),
        ),
        (&station, &applicant, &accepted, A::Rate, Err("not_allowed")),
        (
            &station,
            &lead,
            &accepted,
            A::Resolve,
            Err("nothing_to_resolve"),
        ),
        (
            &station,
            &worker,
            &submitted,
            A::Complete,
            Err("not_allowed"),
        ),
    ];
    for (node, person, state, kind, expected) in table {
        let actor = Actor { node, person };
        let got = may(actor, &intake(), state, kind).map_err(|e| e.code());
        assert_eq!(
            got,
            expected,
            "{} as {person:?}: {kind:?}",
            node.role.as_str()
        );
        // What is offered is exactly what is allowed.
        assert_eq!(
            allowed_actions(actor, &intake(), state).contains(&kind),
            expected.is_ok()
        );
    }
}

#[test]
fn an_open_conflict_allows_only_its_resolution_by_a_lead() {
    let station = node(STATION, NodeRole::Station, "440399001001");
    let hall = node(HALL, NodeRole::Subdistrict, "440399001");
    let events = vec![
        event(STATION, "2026-03-03", 9, sample_action(ActionKind::Accept)),
        event(
            STATION,
            "2026-03-05",
            9,
            sample_action(ActionKind::Withdraw),
        ),
        event(HALL, "2026-03-05", 9, sample_action(ActionKind::Decide)),
    ];
    let state = case::derive(&intake(), &events);
    assert!(!state.conflicts.is_empty());
    for node in [&station, &hall] {
        let lead = staff(StaffRole::Lead);
        let actor = Actor {
            node,
            person: &lead,
        };
        assert_eq!(
            allowed_actions(actor, &intake(), &state),
            vec![ActionKind::Resolve]
        );
        let worker = staff(StaffRole::Worker);
        let actor = Actor {
            node,
            person: &worker,
        };
        assert!(allowed_actions(actor, &intake(), &state).is_empty());
    }
}

#[test]
fn act_fills_in_acceptance_and_refuses_what_may_not_be_done() {
    let station = node(STATION, NodeRole::Station, "440399001001");
    let hall = node(HALL, NodeRole::Subdistrict, "440399001");
    let case_doc = CaseDoc {
        scope: crate::ids::Scope::cases(&station.division),
        intake: intake(),
        events: Vec::new(),
        newer: Vec::new(),
    };
    let mut clock = HlcClock::default();
    let now = crate::domain::case::tests::ms("2026-03-03", 10);
    let worker = staff(StaffRole::Worker);
    let mut issued = 0;
    let events = act::<CaseError>(
        &case_doc,
        vec![
            Request::Accept,
            Request::Do(sample_action(ActionKind::Complete)),
        ],
        Actor {
            node: &station,
            person: &worker,
        },
        &mut || Ok(clock.tick(now)),
        &mut |code, date| {
            issued += 1;
            Ok(SerialNo::issue(code, date, &station.serial_segment(), 1, issued).unwrap())
        },
    )
    .unwrap();
    assert_eq!(events.len(), 2);
    assert!(
        matches!(&events[0].action, Action::Accept { serial_no, .. } if serial_no.as_str().contains("20260303"))
    );
    assert_eq!(events[1].node, STATION);
    // The hall may not accept for the station, and nothing is issued for a refusal.
    let refused = act::<CaseError>(
        &case_doc,
        vec![Request::Accept],
        Actor {
            node: &hall,
            person: &worker,
        },
        &mut || Ok(clock.tick(now)),
        &mut |_, _| panic!("no serial number for a refused acceptance"),
    );
    assert_eq!(
        refused.unwrap_err(),
        CaseError::NotThisNodes {
            action: ActionKind::Accept
        }
    );
}

/// 行政许可法 §42: a worker asks, a lead approves or declines; a request is approved once.
#[test]
fn an_extension_is_a_workers_request_and_a_leads_approval() {
    use ActionKind as A;
    let station = node(STATION, NodeRole::Station, "440399001001");
    let worker = staff(StaffRole::Worker);
    let lead = staff(StaffRole::Lead);
    let accepted = state_after(&[A::Accept]);
    let requested = state_after(&[A::Accept, A::RequestExtension]);
    let as_worker = Actor {
        node: &station,
        person: &worker,
    };
    let as_lead = Actor {
        node: &station,
        person: &lead,
    };
    let table: Vec<(Actor, &CaseState, ActionKind, Result<(), &str>)> = vec![
        (as_worker, &accepted, A::Extend, Err("leads_only")),
        (as_worker, &accepted, A::RequestExtension, Ok(())),
        (
            as_worker,
            &requested,
            A::RequestExtension,
            Err("extension_pending"),
        ),
        (
            as_worker,
            &requested,
            A::DeclineExtension,
            Err("leads_only"),
        ),
        (as_lead, &accepted, A::Extend, Ok(())),
        (
            as_lead,
            &accepted,
            A::RequestExtension,
            Err("leads_extend_directly"),
        ),
        (
            as_lead,
            &accepted,
            A::DeclineExtension,
            Err("no_extension_request"),
        ),
        (as_lead, &requested, A::DeclineExtension, Ok(())),
        (as_lead, &requested, A::Extend, Ok(())),
    ];
    for (actor, state, kind, expected) in table {
        assert_eq!(
            may(actor, &intake(), state, kind).map_err(|e| e.code()),
            expected,
            "{:?}: {kind:?}",
            actor.person
        );
    }
    let request = requested.extension_request.clone().expect("pending");
    assert_eq!(request.days, 5);
    // The lead's approval names the request, moves both limits and clears it.
    let approve = Action::Extend {
        days: request.days,
        reason: request.reason.clone(),
        request: Some(request.event_id.clone()),
    };
    let mut events: Vec<Event> = [A::Accept, A::RequestExtension]
        .iter()
        .enumerate()
        .map(|(i, k)| event(STATION, "2026-03-03", 9 + i as u64, sample_action(*k)))
        .collect();
    assert_eq!(case::validate(&intake(), &requested, &approve), Ok(()));
    events.push(event(STATION, "2026-03-04", 9, approve.clone()));
    let approved = case::derive(&intake(), &events);
    assert_eq!(approved.extension_days, 5);
    assert!(approved.extension_request.is_none() && approved.conflicts.is_empty());
    // A second lead approving the same request elsewhere at the same time conflicts
    // rather than doubling the extension.
    events.push(event(HALL, "2026-03-04", 10, approve));
    let twice = case::derive(&intake(), &events);
    assert_eq!(twice.extension_days, 5);
    assert_eq!(twice.conflicts.len(), 1);
}

fn delegated() -> Intake {
    let mut intake = intake();
    intake.item.delegated_by = Some("示范区民政局".into());
    intake
}

/// 代为受理: the department decides. The station transfers the case to it, signs for it on
/// its behalf (the department runs no node) and enters its decision on its behalf.
#[test]
fn a_station_enters_the_decision_of_the_department_it_accepts_for() {
    use ActionKind as A;
    let station = node(STATION, NodeRole::Station, "440399001001");
    let hall = node(HALL, NodeRole::Subdistrict, "440399001");
    let worker = staff(StaffRole::Worker);
    let at_station = Actor {
        node: &station,
        person: &worker,
    };
    let at_hall = Actor {
        node: &hall,
        person: &worker,
    };
    let intake = delegated();
    let accept = event(STATION, "2026-03-03", 9, sample_action(A::Accept));
    let accepted = case::derive(&intake, std::slice::from_ref(&accept));
    assert_eq!(
        may(at_station, &intake, &accepted, A::Decide).map_err(|e| e.code()),
        Err("delegated_decision")
    );
    assert_eq!(
        may(at_station, &intake, &accepted, A::Complete).map_err(|e| e.code()),
        Err("delegated_decision")
    );
    assert!(!allowed_actions(at_station, &intake, &accepted).contains(&A::Decide));
    assert_eq!(
        may(at_hall, &intake, &accepted, A::Decide).map_err(|e| e.code()),
        Err("not_sent_here")
    );
    let to_department = Action::Transfer {
        to: "示范区民政局".into(),
        reason: "由区民政局审批".into(),
        to_node: None,
    };
    let case_doc = CaseDoc {
        scope: crate::ids::Scope::cases(&station.division),
        intake: intake.clone(),
        events: vec![
            accept,
            event(STATION, "2026-03-03", 10, to_department.clone()),
        ],
        newer: Vec::new(),
    };
    let transferred = case::derive(&intake, &case_doc.events);
    // Only the sender signs for a department without a node.
    assert_eq!(
        may(at_hall, &intake, &transferred, A::SignFor).map_err(|e| e.code()),
        Err("not_the_sender")
    );
    let mut clock = HlcClock::default();
    let now = crate::domain::case::tests::ms("2026-03-05", 10);
    let events = act::<CaseError>(
        &case_doc,
        vec![
            Request::Do(sample_action(A::SignFor)),
            Request::Do(sample_action(A::Decide)),
            Request::Do(sample_action(A::Complete)),
        ],
        at_station,
        &mut || Ok(clock.tick(now)),
        &mut |_, _| panic!("no acceptance here"),
    )
    .unwrap();
    for e in &events[..2] {
        let behalf = match &e.action {
            Action::SignFor { on_behalf_of, .. } | Action::Decide { on_behalf_of, .. } => {
                on_behalf_of.as_deref()
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(behalf, Some("示范区民政局"), "{:?}", e.action.kind());
        // Receivers judge it by the same rule.
        assert!(auth::may_record(
            auth::CaseRelation::Owner,
            auth::Recording::of(&e.action, &intake.item)
        ));
    }
    let mut all = case_doc.events.clone();
    all.extend(events);
    let done = case::derive(&intake, &all);
    assert_eq!(done.status, case::Status::Completed);
    assert_eq!(done.decided_on_behalf_of.as_deref(), Some("示范区民政局"));
    assert_eq!(
        done.signed_for.and_then(|s| s.on_behalf_of).as_deref(),
        Some("示范区民政局")
    );
}

/// Department staff at a hall (issue 14, point 7) sign for and decide only the cases sent
/// to their department (the account's counter names it), and do nothing else.
#[test]
fn department_staff_act_only_on_what_was_sent_to_their_department() {
    use ActionKind as A;
    let hall = node(HALL, NodeRole::Subdistrict, "440399001");
    let department = |name: &str| Person::Staff {
        username: "d".into(),
        counter: name.into(),
        role: StaffRole::Department,
        chief: false,
    };
    let accept = event(STATION, "2026-03-03", 9, sample_action(A::Accept));
    let to_hall = Action::Transfer {
        to: "区民政局".into(),
        reason: "由区民政局审批".into(),
        to_node: Some(HALL),
    };
    let sent = case::derive(
        &intake(),
        &[accept.clone(), event(STATION, "2026-03-03", 10, to_hall)],
    );
    let not_sent = case::derive(&intake(), std::slice::from_ref(&accept));
    let ours = department("区民政局");
    let theirs = department("区人社局");
    let at = |person| Actor {
        node: &hall,
        person,
    };
    // The item lists steps: the department finishes the ones of the case sent to it.
    assert_eq!(
        allowed_actions(at(&ours), &intake(), &sent),
        vec![A::Decide, A::SignFor, A::FinishStep]
    );
    assert_eq!(
        may(at(&ours), &intake(), &sent, A::SignFor).map_err(|e| e.code()),
        Ok(())
    );
    for (person, state) in [(&theirs, &sent), (&ours, &not_sent)] {
        for kind in [A::SignFor, A::Decide, A::FinishStep] {
            assert_eq!(
                may(at(person), &intake(), state, kind).map_err(|e| e.code()),
                Err("departments_cases_only")
            );
        }
    }
    assert!(may(at(&ours), &intake(), &sent, A::Extend).is_err());
    for kind in [A::Transfer, A::Complete, A::Suspend] {
        assert_eq!(
            may(at(&ours), &intake(), &sent, kind).map_err(|e| e.code()),
            Err("departments_cases_only"),
            "{kind:?}"
        );
    }
    assert_eq!(
        StaffRole::offered_at(NodeRole::Station),
        vec![StaffRole::Worker, StaffRole::Lead, StaffRole::Admin]
    );
    assert!(StaffRole::offered_at(NodeRole::District).contains(&StaffRole::Department));
}

/// A department's chief representative (首席代表, §7.5) approves or declines an extension
/// of a case sent to the department (行政许可法 §42), as a lead would; the flag gives
/// nothing else, and nothing on another department's case or one not sent to it.
#[test]
fn a_chief_representative_extends_the_departments_cases_and_nothing_more() {
    use ActionKind as A;
    let hall = node(HALL, NodeRole::Subdistrict, "440399001");
    let member = |name: &str, chief: bool| Person::Staff {
        username: "d".into(),
        counter: name.into(),
        role: StaffRole::Department,
        chief,
    };
    let accept = event(STATION, "2026-03-03", 9, sample_action(A::Accept));
    let to_hall = Action::Transfer {
        to: "区民政局".into(),
        reason: "由区民政局审批".into(),
        to_node: Some(HALL),
    };
    let sent = case::derive(
        &intake(),
        &[accept.clone(), event(STATION, "2026-03-03", 10, to_hall)],
    );
    let not_sent = case::derive(&intake(), std::slice::from_ref(&accept));
    let at = |person| Actor {
        node: &hall,
        person,
    };
    let chief = member("区民政局", true);
    // (person, case, action, expected)
    let table = [
        (&chief, &sent, A::Extend, Ok(())),
        // The role allows it; the case has no request to decline.
        (
            &chief,
            &sent,
            A::DeclineExtension,
            Err("no_extension_request"),
        ),
        (
            &member("区民政局", false),
            &sent,
            A::DeclineExtension,
            Err("leads_only"),
        ),
        (&chief, &sent, A::Decide, Ok(())),
        (&chief, &sent, A::Complete, Err("departments_cases_only")),
        (&chief, &sent, A::Resolve, Err("leads_only")),
        (&chief, &not_sent, A::Extend, Err("departments_cases_only")),
        (
            &member("区民政局", false),
            &sent,
            A::Extend,
            Err("leads_only"),
        ),
        (
            &member("区人社局", true),
            &sent,
            A::Extend,
            Err("departments_cases_only"),
        ),
    ];
    for (person, state, kind, expected) in table {
        assert_eq!(
            may(at(person), &intake(), state, kind).map_err(|e| e.code()),
            expected,
            "{person:?} {kind:?}"
        );
    }
    assert!(allowed_actions(at(&chief), &intake(), &sent).contains(&A::Extend));
    assert!(
        !allowed_actions(at(&member("区民政局", false)), &intake(), &sent).contains(&A::Extend)
    );
}

/// A supervisor at a hall (§10.2) issues supervision notices (`engine::may_supervise`)
/// and records no act on any case, not even on one sent to the hall; the role is offered
/// only at halls.
#[test]
fn supervisors_record_no_act_on_a_case() {
    let hall = node(HALL, NodeRole::District, "440399");
    let supervisor = Person::Staff {
        username: "s".into(),
        counter: "督办科".into(),
        role: StaffRole::Supervisor,
        chief: false,
    };
    let actor = Actor {
        node: &hall,
        person: &supervisor,
    };
    let accept = event(STATION, "2026-03-03", 9, sample_action(ActionKind::Accept));
    let to_hall = Action::Transfer {
        to: "区民政局".into(),
        reason: "由区民政局审批".into(),
        to_node: Some(HALL),
    };
    let sent = case::derive(
        &intake(),
        &[accept, event(STATION, "2026-03-03", 10, to_hall)],
    );
    assert_eq!(allowed_actions(actor, &intake(), &sent), vec![]);
    for kind in ActionKind::ALL {
        assert_eq!(
            role_may(StaffRole::Supervisor, kind).map_err(|e| e.code()),
            Err("supervisors_supervise_only"),
            "{kind:?}"
        );
    }
    assert!(StaffRole::offered_at(NodeRole::District).contains(&StaffRole::Supervisor));
    assert!(!StaffRole::offered_at(NodeRole::Station).contains(&StaffRole::Supervisor));
}

/// §5.7.2: a case whose item a department decides is decided only by a member of that
/// department (a Department account whose counter names it) at the hall where it works;
/// the station that accepted it, even on the department's behalf (代为受理), a lead or
/// worker at that hall, another department, and another hall are all refused.
#[test]
fn only_the_deciding_department_at_its_hall_decides() {
    use ActionKind as A;
    let station = node(STATION, NodeRole::Station, "440399001001");
    let hall = node(HALL, NodeRole::Subdistrict, "440399001");
    let district = node(NodeId([7; 16]), NodeRole::District, "440399");
    let as_department = |name: &str| Person::Staff {
        username: "d".into(),
        counter: name.into(),
        role: StaffRole::Department,
        chief: false,
    };
    let mut intake = delegated();
    intake.item.decided_by = Some(crate::domain::department::Decider {
        code: "MZJ".into(),
        name: "区民政局".into(),
        hall: HALL,
    });
    let accept = event(STATION, "2026-03-03", 9, sample_action(A::Accept));
    let to = |node: NodeId| Action::Transfer {
        to: "区民政局".into(),
        reason: "由区民政局审批".into(),
        to_node: Some(node),
    };
    let accepted = case::derive(&intake, std::slice::from_ref(&accept));
    let sent = case::derive(
        &intake,
        &[accept.clone(), event(STATION, "2026-03-03", 10, to(HALL))],
    );
    let sent_to_district = case::derive(
        &intake,
        &[accept, event(STATION, "2026-03-03", 10, to(district.node))],
    );
    let member = as_department("区民政局");
    let other_department = as_department("区人社局");
    let (lead, worker, admin) = (
        staff(StaffRole::Lead),
        staff(StaffRole::Worker),
        staff(StaffRole::Admin),
    );
    let rows: Vec<Row<'_>> = vec![
        (&hall, &member, &sent, A::Decide, Ok(())),
        (
            &station,
            &lead,
            &accepted,
            A::Decide,
            Err("not_deciding_department"),
        ),
        (
            &station,
            &admin,
            &accepted,
            A::Decide,
            Err("not_deciding_department"),
        ),
        (
            &station,
            &member,
            &accepted,
            A::Decide,
            Err("not_deciding_department"),
        ),
        (
            &station,
            &worker,
            &accepted,
            A::Complete,
            Err("delegated_decision"),
        ),
        (
            &hall,
            &lead,
            &sent,
            A::Decide,
            Err("not_deciding_department"),
        ),
        (
            &hall,
            &admin,
            &sent,
            A::Decide,
            Err("not_deciding_department"),
        ),
        (
            &hall,
            &worker,
            &sent,
            A::Decide,
            Err("not_deciding_department"),
        ),
        (
            &hall,
            &other_department,
            &sent,
            A::Decide,
            Err("not_deciding_department"),
        ),
        (
            &district,
            &member,
            &sent_to_district,
            A::Decide,
            Err("not_deciding_department"),
        ),
        // Signing for stays the department's at its hall.
        (&hall, &member, &sent, A::SignFor, Ok(())),
    ];
    for (node, person, state, kind, expected) in rows {
        let actor = Actor { node, person };
        assert_eq!(
            may(actor, &intake, state, kind).map_err(|e| e.code()),
            expected,
            "{:?} {person:?} {kind:?}",
            node.role
        );
        // The receivers' half of the rule, by node alone.
        if kind == A::Decide {
            assert_eq!(
                auth::may_decide(node.node, intake.item.decided_by.as_ref()),
                node.node == HALL
            );
        }
    }
    assert!(
        !allowed_actions(
            Actor {
                node: &station,
                person: &lead
            },
            &intake,
            &accepted
        )
        .contains(&A::Decide)
    );
}

/// 并联审批 (§7.5; 行政许可法 §26): each part is decided by its own department's member at
/// its hall, never by another department's; the whole is never decided as such, and the
/// station completes it only once every part is decided.
#[test]
fn a_combined_case_is_decided_by_its_parts_departments_and_completed_after_all() {
    use crate::domain::combined::{PartSnapshot, PartState, combine};
    use crate::domain::department::Decider;
    use ActionKind as A;
    let station = node(STATION, NodeRole::Station, "440399001001");
    let hall = node(HALL, NodeRole::Subdistrict, "440399001");
    let as_department = |name: &str| Person::Staff {
        username: "d".into(),
        counter: name.into(),
        role: StaffRole::Department,
        chief: false,
    };
    let mut parent = intake();
    parent.item.parts = [
        ("GHJ", "区规划局"),
        ("XFJ", "区消防局"),
        ("HBJ", "区环保局"),
    ]
    .iter()
    .map(|(code, name)| PartSnapshot {
        decider: Decider {
            code: (*code).into(),
            name: (*name).into(),
            hall: HALL,
        },
        name: format!("{name}审查"),
        limit_days: 20,
    })
    .collect();
    let fire = parent.part(
        parent.doc_id().as_str(),
        1,
        crate::domain::hlc::Hlc::new(crate::domain::case::tests::ms("2026-03-02", 9), 1),
    );
    let accept = event(STATION, "2026-03-03", 9, sample_action(A::Accept));
    let sent = case::derive(
        &fire,
        &[
            accept.clone(),
            event(
                STATION,
                "2026-03-03",
                10,
                Action::Transfer {
                    to: "区消防局".into(),
                    reason: "并联审批".into(),
                    to_node: Some(HALL),
                },
            ),
        ],
    );
    let own = case::derive(&parent, std::slice::from_ref(&accept));
    let decided = |approved| {
        Some(PartState {
            status: case::Status::Decided,
            decision: Some(approved),
        })
    };
    let two_of_three = combine(&parent, own.clone(), &[decided(true), decided(true), None]);
    let all_three = combine(
        &parent,
        own.clone(),
        &[decided(true), decided(false), decided(true)],
    );
    assert_eq!(all_three.decision, Some(false));
    let (fire_member, planning_member) = (as_department("区消防局"), as_department("区规划局"));
    let (lead, worker) = (staff(StaffRole::Lead), staff(StaffRole::Worker));
    // (where, who, the part or the whole, as it stands, what, allowed or the code)
    type Row<'a> = (
        &'a NodeRecord,
        &'a Person,
        &'a Intake,
        &'a CaseState,
        ActionKind,
        Result<(), &'a str>,
    );
    let rows: Vec<Row<'_>> = vec![
        (&hall, &fire_member, &fire, &sent, A::Decide, Ok(())),
        (
            &hall,
            &planning_member,
            &fire,
            &sent,
            A::Decide,
            Err("not_deciding_department"),
        ),
        (
            &station,
            &lead,
            &fire,
            &sent,
            A::Decide,
            Err("not_deciding_department"),
        ),
        (
            &station,
            &lead,
            &parent,
            &own,
            A::Decide,
            Err("decided_by_parts"),
        ),
        (
            &hall,
            &fire_member,
            &parent,
            &own,
            A::Decide,
            Err("decided_by_parts"),
        ),
        (
            &station,
            &worker,
            &parent,
            &own,
            A::Complete,
            Err("decided_by_parts"),
        ),
        (
            &station,
            &worker,
            &parent,
            &two_of_three,
            A::Complete,
            Err("decided_by_parts"),
        ),
        (&station, &worker, &parent, &all_three, A::Complete, Ok(())),
        // The whole is still accepted, suspended and extended at the station.
        (&station, &lead, &parent, &own, A::Extend, Ok(())),
    ];
    for (node, person, intake, state, kind, expected) in rows {
        let actor = Actor { node, person };
        assert_eq!(
            may(actor, intake, state, kind).map_err(|e| e.code()),
            expected,
            "{:?} {person:?} {kind:?}",
            node.role
        );
    }
    // `act_combined` derives the whole with its parts: completion once all are decided.
    let case_doc = CaseDoc {
        scope: crate::ids::Scope::cases(&station.division),
        intake: parent.clone(),
        events: vec![accept],
        newer: Vec::new(),
    };
    let complete = || vec![Request::Do(sample_action(A::Complete))];
    let mut clock = HlcClock::default();
    let now = crate::domain::case::tests::ms("2026-03-20", 10);
    let actor = Actor {
        node: &station,
        person: &worker,
    };
    let early = act_combined::<CaseError>(
        &case_doc,
        &[decided(true), decided(true), None],
        complete(),
        actor,
        &mut || Ok(clock.tick(now)),
        &mut |_, _| panic!("no serial number"),
    );
    assert_eq!(early.unwrap_err().code(), "decided_by_parts");
    let done = act_combined::<CaseError>(
        &case_doc,
        &[decided(true), decided(true), decided(true)],
        complete(),
        actor,
        &mut || Ok(clock.tick(now)),
        &mut |_, _| panic!("no serial number"),
    )
    .unwrap();
    assert_eq!(done.len(), 1);
}
