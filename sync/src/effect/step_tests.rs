//! Process steps (环节, SZDB/Z 176 §9.2.2) as every receiver judges them: a step finishes
//! only while it is the step the case is in, judged on the case as its author saw it, and
//! only from a node that may record on the case.

use super::tests::{
    T0, accept, add, check, event, held_case, other_station, refused_as, station, sub,
};
use super::*;
use crate::domain::case::Action;

fn finish(by: &NodeRecord, ms: u64, step: u32) -> Event {
    event(
        by,
        ms,
        Action::FinishStep {
            step,
            note: String::new(),
        },
    )
}

fn complete(by: &NodeRecord, ms: u64) -> Event {
    event(
        by,
        ms,
        Action::Complete {
            result: "准予".into(),
            delivery: "窗口领取".into(),
        },
    )
}

/// `held` with `events` added by `by`, as a receiver holds it afterwards.
fn with(by: &NodeRecord, held: &Automerge, events: &[Event]) -> Automerge {
    let mut copy = held.fork();
    doc::add_events(&mut copy, &super::tests::origin_of(by), events).unwrap();
    copy
}

/// Each step a node could try to finish, as a table: who, on which case, which step, and
/// whether every receiver takes it (`None`) or refuses it with a code.
#[test]
fn a_step_finishes_in_order_from_a_node_that_records_on_the_case() {
    let station = station();
    let other = other_station();
    let hall = sub();
    let (id, scope, created) = held_case();
    let accepted = with(&station, &created, &[accept(&station)]);
    let first_done = with(&station, &accepted, &[finish(&station, T0 + 5_000, 1)]);
    let closed = with(&station, &accepted, &[complete(&station, T0 + 5_000)]);
    let last_done = with(&station, &first_done, &[finish(&station, T0 + 6_000, 2)]);
    let table: Vec<(&str, &NodeRecord, &Automerge, u32, Option<&str>)> = vec![
        (
            "the station finishes its first step",
            &station,
            &accepted,
            1,
            None,
        ),
        ("then the second", &station, &first_done, 2, None),
        (
            "a hall above finishes one (its engine: only once the case is sent there)",
            &hall,
            &accepted,
            1,
            None,
        ),
        (
            "before the case was accepted: no step has started",
            &station,
            &created,
            1,
            Some("forbidden_effect"),
        ),
        (
            "a step that has not started yet",
            &station,
            &accepted,
            2,
            Some("forbidden_effect"),
        ),
        ("step 0", &station, &accepted, 0, Some("forbidden_effect")),
        (
            "a step past the item's last",
            &station,
            &last_done,
            3,
            Some("forbidden_effect"),
        ),
        (
            "a step already finished",
            &station,
            &first_done,
            1,
            Some("forbidden_effect"),
        ),
        (
            "after the case closed",
            &station,
            &closed,
            1,
            Some("forbidden_effect"),
        ),
        (
            "another station, on a case not its own",
            &other,
            &accepted,
            1,
            Some("not_authorized"),
        ),
    ];
    for (what, by, held, step, expected) in table {
        let change = add(by, held, &[finish(by, T0 + 9_000, step)]);
        let judged = check(by, &change, &id, DocKind::Case, &scope, Some(held));
        match expected {
            None => assert_eq!(judged, Judgement::Allow, "{what}"),
            Some(code) => assert!(refused_as(&judged, code), "{what}: {judged:?}"),
        }
    }
}

/// A step is judged on the case as its author saw it (the change's dependencies), so a
/// receiver that already holds a concurrent closing judges it as every other receiver
/// does; `derive` then orders the two, and a finishing that falls after the close is a
/// conflict for a person, never lost.
#[test]
fn a_step_is_judged_as_its_author_saw_the_case() {
    let station = station();
    let hall = sub();
    let (id, scope, created) = held_case();
    let accepted = with(&station, &created, &[accept(&station)]);
    // The hall finishes step 1 on the case as it knew it, while the station closes it.
    let late_finish = add(&hall, &accepted, &[finish(&hall, T0 + 9_000, 1)]);
    let closed = with(&station, &accepted, &[complete(&station, T0 + 5_000)]);
    for held in [&accepted, &closed] {
        assert_eq!(
            check(&hall, &late_finish, &id, DocKind::Case, &scope, Some(held)),
            Judgement::Allow
        );
    }
    let mut merged = closed.fork();
    merged.apply_changes([late_finish]).unwrap();
    let case = doc::read_case(&merged).unwrap();
    let state = crate::domain::case::derive(&case.intake, &case.events);
    assert_eq!(state.status, crate::domain::case::Status::Completed);
    assert_eq!(state.conflicts.len(), 1, "kept and flagged");
    assert_eq!(
        state.conflicts[0].action,
        crate::domain::case::ActionKind::FinishStep
    );
}
