//! Process steps (环节, SZDB/Z 176 §9.2.2) as a case derives them, and their limits and
//! warnings (§10.2) on the case's calendar.

use super::tests::{HALL, STATION, event, intake, serial};
use super::*;

/// An intake whose item lists three steps: 受理审查 2 days, 审核 3 days (a post), 决定
/// without a limit of its own; yellow one working day before.
fn stepped() -> Intake {
    let mut intake = intake();
    intake.item.yellow = YellowThreshold::WorkingDaysBefore(1);
    intake.item.steps = vec![
        StepRule {
            name: "受理审查".into(),
            days: Some(2),
            post: None,
        },
        StepRule {
            name: "审核".into(),
            days: Some(3),
            post: Some("科长".into()),
        },
        StepRule {
            name: "决定".into(),
            days: None,
            post: None,
        },
    ];
    intake
}

fn accept(date: &str) -> Event {
    event(
        STATION,
        date,
        9,
        Action::Accept {
            serial_no: serial(),
            calendar: "cn".into(),
        },
    )
}

fn finish(node: NodeId, date: &str, hour: u64, step: u32) -> Event {
    event(
        node,
        date,
        hour,
        Action::FinishStep {
            step,
            note: String::new(),
        },
    )
}

fn day(s: &str) -> Date {
    s.parse().unwrap()
}

/// The snapshot keeps the item version's steps; an intake written before steps were kept
/// reads with none.
#[test]
fn the_snapshot_freezes_the_items_steps() {
    let item = crate::domain::item::tests::sample_item();
    let snapshot = ItemSnapshot::of(&item);
    let frozen: Vec<(&str, Option<u32>)> = snapshot
        .steps
        .iter()
        .map(|s| (s.name.as_str(), s.days))
        .collect();
    assert_eq!(
        frozen,
        vec![("社区代为申请", None), ("区民政确认", Some(10))]
    );
    let mut old = serde_json::to_value(&snapshot).unwrap();
    old.as_object_mut().unwrap().remove("steps");
    let read: ItemSnapshot = serde_json::from_value(old).unwrap();
    assert!(read.steps.is_empty());
    // Without steps nothing is written, so an old reader sees the snapshot it knew.
    let none = ItemSnapshot {
        steps: Vec::new(),
        ..snapshot
    };
    assert!(serde_json::to_value(&none).unwrap().get("steps").is_none());
}

/// Which step is under way after each list of events, and what each step recorded.
#[test]
fn steps_derive_from_the_acceptance_and_the_finishing_events() {
    let intake = stepped();
    // (what, events, current step, finished steps, conflicts)
    #[allow(clippy::type_complexity)]
    let table: Vec<(&str, Vec<Event>, Option<u32>, usize, usize)> = vec![
        ("received only: no step has started", vec![], None, 0, 0),
        (
            "the acceptance starts the first",
            vec![accept("2026-03-02")],
            Some(1),
            0,
            0,
        ),
        (
            "finishing it starts the second",
            vec![accept("2026-03-02"), finish(STATION, "2026-03-03", 10, 1)],
            Some(2),
            1,
            0,
        ),
        (
            "all three finished: none under way",
            vec![
                accept("2026-03-02"),
                finish(STATION, "2026-03-03", 10, 1),
                finish(STATION, "2026-03-04", 10, 2),
                finish(STATION, "2026-03-05", 10, 3),
            ],
            None,
            3,
            0,
        ),
        (
            "two people finish the same step at once: the second changes nothing",
            vec![
                accept("2026-03-02"),
                finish(STATION, "2026-03-03", 10, 1),
                finish(HALL, "2026-03-03", 11, 1),
            ],
            Some(2),
            1,
            0,
        ),
        (
            "a step out of order is a conflict, kept for a person",
            vec![accept("2026-03-02"), finish(STATION, "2026-03-03", 10, 2)],
            Some(1),
            0,
            1,
        ),
        (
            "a finishing after the case closed is a conflict",
            vec![
                accept("2026-03-02"),
                event(
                    STATION,
                    "2026-03-03",
                    10,
                    Action::Complete {
                        result: "准予".into(),
                        delivery: "窗口领取".into(),
                    },
                ),
                finish(HALL, "2026-03-03", 11, 1),
            ],
            None,
            0,
            1,
        ),
    ];
    for (what, events, current, finished, conflicts) in table {
        let state = derive(&intake, &events);
        assert_eq!(state.current_step(), current, "{what}");
        assert_eq!(
            state.steps.iter().filter(|s| s.finished.is_some()).count(),
            finished,
            "{what}"
        );
        assert_eq!(state.conflicts.len(), conflicts, "{what}");
        // Events from several nodes in any order give the same steps.
        let mut reversed = events.clone();
        reversed.reverse();
        assert_eq!(derive(&intake, &reversed), state, "{what}: order");
    }
    // Each step starts the day the one before finished, and says who finished it.
    let state = derive(
        &intake,
        &[accept("2026-03-02"), finish(HALL, "2026-03-04", 10, 1)],
    );
    assert_eq!(state.steps[0].started_on, day("2026-03-02"));
    let done = state.steps[0].finished.as_ref().unwrap();
    assert_eq!((done.on, done.node), (day("2026-03-04"), HALL));
    assert_eq!(state.steps[1].started_on, day("2026-03-04"));
    // An item without steps has none to finish.
    let plain = Intake {
        item: ItemSnapshot {
            steps: Vec::new(),
            ..intake.item.clone()
        },
        ..intake.clone()
    };
    let state = derive(&plain, &[accept("2026-03-02")]);
    assert!(state.steps.is_empty());
    assert_eq!(
        validate(
            &plain,
            &state,
            &Action::FinishStep {
                step: 1,
                note: String::new()
            }
        ),
        Err(CaseError::NoStepUnderWay)
    );
}

/// A person may finish only the step under way; the receivers' rule is the same one.
#[test]
fn only_the_step_under_way_finishes() {
    let intake = stepped();
    let state = derive(&intake, &[accept("2026-03-02")]);
    let finishing = |step| Action::FinishStep {
        step,
        note: String::new(),
    };
    assert_eq!(validate(&intake, &state, &finishing(1)), Ok(()));
    for step in [0, 2, 3, 4] {
        assert_eq!(
            validate(&intake, &state, &finishing(step)),
            Err(CaseError::NotCurrentStep { step, current: 1 }),
            "{step}"
        );
    }
    let received = derive(&intake, &[]);
    assert_eq!(
        validate(&intake, &received, &finishing(1)),
        Err(CaseError::NotAllowed {
            action: ActionKind::FinishStep,
            status: Status::Submitted
        })
    );
    let bad_note = Action::FinishStep {
        step: 1,
        note: "\u{202E}".into(),
    };
    assert!(matches!(
        validate(&intake, &state, &bad_note),
        Err(CaseError::Text(_))
    ));
}

/// Each step's deadline, level and lateness on a day, on the case's calendar: over a
/// weekend, over a holiday, with a suspension (closed, capped, open-ended) and after it
/// finished late.
#[test]
fn step_deadlines_warn_like_the_cases_own() {
    let intake = stepped();
    let cal = Calendar::china();
    let suspend = |date: &str, procedure: &str| {
        event(
            STATION,
            date,
            10,
            Action::Suspend {
                procedure: procedure.into(),
                reason: "按规定".into(),
            },
        )
    };
    let resume = |date: &str| {
        event(
            STATION,
            date,
            10,
            Action::Resume {
                note: String::new(),
            },
        )
    };
    // (what, events, today, step asked, its due, its level, late days)
    #[allow(clippy::type_complexity)]
    let table: Vec<(&str, Vec<Event>, &str, u32, Option<&str>, WarningLevel, u32)> = vec![
        (
            "Monday: due Wednesday, normal on Monday",
            vec![accept("2026-03-02")],
            "2026-03-02",
            1,
            Some("2026-03-04"),
            WarningLevel::Normal,
            0,
        ),
        (
            "yellow one working day before",
            vec![accept("2026-03-02")],
            "2026-03-03",
            1,
            Some("2026-03-04"),
            WarningLevel::Yellow,
            0,
        ),
        (
            "red the day after, late by the working days past",
            vec![accept("2026-03-02")],
            "2026-03-09",
            1,
            Some("2026-03-04"),
            WarningLevel::Red,
            3,
        ),
        (
            "accepted on Friday: over the weekend",
            vec![accept("2026-03-06")],
            "2026-03-10",
            1,
            Some("2026-03-10"),
            WarningLevel::Yellow,
            0,
        ),
        (
            "accepted before 劳动节: the holiday does not count",
            vec![accept("2026-04-30")],
            "2026-05-06",
            1,
            Some("2026-05-07"),
            WarningLevel::Yellow,
            0,
        ),
        (
            "the second step counts from the day the first finished",
            vec![accept("2026-03-02"), finish(STATION, "2026-03-05", 10, 1)],
            "2026-03-12",
            2,
            Some("2026-03-10"),
            WarningLevel::Red,
            2,
        ),
        (
            "a step without a limit never warns",
            vec![
                accept("2026-03-02"),
                finish(STATION, "2026-03-03", 10, 1),
                finish(STATION, "2026-03-04", 10, 2),
            ],
            "2026-06-01",
            3,
            None,
            WarningLevel::Normal,
            0,
        ),
        (
            "a closed suspension (公示, at most 7 days) does not count",
            vec![
                accept("2026-03-02"),
                suspend("2026-03-03", "公示"),
                resume("2026-03-05"),
            ],
            "2026-03-06",
            1,
            Some("2026-03-06"),
            WarningLevel::Yellow,
            0,
        ),
        (
            "an open-ended procedure freezes the level at the day the clock stopped",
            vec![accept("2026-03-02"), suspend("2026-03-04", "专家评审")],
            "2026-04-01",
            1,
            Some("2026-03-04"),
            WarningLevel::Yellow,
            0,
        ),
        (
            "finished late: lateness counted to the day it finished, no warning after",
            vec![accept("2026-03-02"), finish(STATION, "2026-03-06", 10, 1)],
            "2026-03-20",
            1,
            Some("2026-03-04"),
            WarningLevel::Normal,
            2,
        ),
    ];
    for (what, events, today, step, due, level, late) in table {
        let state = derive(&intake, &events);
        let times = state.step_times(&intake, cal, day(today));
        assert_eq!(times.len(), 3, "{what}");
        let t = &times[step as usize - 1];
        assert_eq!(t.number, step, "{what}");
        assert_eq!(t.deadline.map(|d| d.due), due.map(day), "{what}: due");
        assert_eq!(t.level, level, "{what}: level");
        assert_eq!(t.late_days, late, "{what}: late days");
        // The step's dates are those of the case's own rule over the same days.
        if let (Some(deadline), Some(days), Some(started)) = (t.deadline, t.rule.days, t.started_on)
        {
            let same = Deadlines::compute(
                cal,
                started,
                Limits {
                    committed_days: days,
                    legal_days: days,
                    yellow: intake.item.yellow,
                },
                &state.suspensions,
                0,
            );
            assert_eq!(
                (deadline.due, deadline.yellow_on),
                (same.committed_due, same.yellow_on)
            );
        }
    }
    // Once the case closes, no step warns.
    let closed = derive(
        &intake,
        &[
            accept("2026-03-02"),
            event(
                STATION,
                "2026-03-03",
                10,
                Action::Withdraw {
                    reason: "申请人撤回".into(),
                },
            ),
        ],
    );
    let times = closed.step_times(&intake, cal, day("2026-06-01"));
    assert!(
        times
            .iter()
            .all(|t| !t.current && t.level == WarningLevel::Normal)
    );
    assert_eq!(times[0].started_on, Some(day("2026-03-02")));
}
