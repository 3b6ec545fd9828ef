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
    let applicant = Person::Applicant;
    use ActionKind as A;
    let submitted = state_after(&[]);
    let accepted = state_after(&[A::Accept]);
    let completed = state_after(&[A::Accept, A::Complete]);
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
        (&hall, &worker, &accepted, A::Decide, Ok(())),
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
