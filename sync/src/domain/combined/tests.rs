use super::*;
use crate::domain::calendar::{Calendar, Date, Deadlines};
use crate::domain::case::tests::{HALL, STATION, event, intake, ms, serial};
use crate::domain::case::{Action, Event, derive};
use crate::domain::hlc::Hlc;
use crate::domain::item::tests::sample_item;
use crate::ids::NodeId;

const OTHER_HALL: NodeId = NodeId([3; 16]);

fn part(department: &str, limit_days: Option<u32>) -> ItemPart {
    ItemPart {
        department: department.into(),
        name: format!("{department} 审查"),
        limit_days,
    }
}

fn decider(code: &str) -> Decider {
    Decider {
        code: code.into(),
        name: format!("{code}局"),
        hall: HALL,
    }
}

/// A parent intake of three parts (the sample item's 20/30/15 days), the second with
/// its own 10-day limit.
fn parent() -> Intake {
    let mut parent = intake();
    parent.item.parts = ["GHJ", "XFJ", "HBJ"]
        .iter()
        .zip([30, 10, 30])
        .map(|(code, limit_days)| PartSnapshot {
            decider: decider(code),
            name: format!("{code} 审查"),
            limit_days,
        })
        .collect();
    parent
}

fn parent_id(intake: &Intake) -> String {
    intake.doc_id().to_string()
}

fn sub(parent: &Intake, index: usize) -> Intake {
    parent.part(
        &parent_id(parent),
        index,
        Hlc::new(ms("2026-03-02", 9), 1 + index as u16),
    )
}

#[test]
fn a_combined_items_parts_are_checked_as_codes() {
    type Edit = fn(&mut Item);
    // (what is changed on a valid combined item, the code refused or none)
    let rows: Vec<(&str, Edit, Option<&str>)> = vec![
        ("three parts", |_| {}, None),
        ("not combined at all", |i| i.parts.clear(), None),
        ("one part", |i| i.parts.truncate(1), Some("too_few")),
        (
            "the same department twice, in another case",
            |i| i.parts[2].department = "ghj".into(),
            Some("department_twice"),
        ),
        (
            "not a department code",
            |i| i.parts[1].department = "消防".into(),
            Some("bad_department"),
        ),
        ("no name", |i| i.parts[0].name = " ".into(), Some("no_name")),
        (
            "a part limit of 0",
            |i| i.parts[0].limit_days = Some(0),
            Some("limit"),
        ),
        (
            "a part limit above the item's 30",
            |i| i.parts[0].limit_days = Some(31),
            Some("limit"),
        ),
        (
            "a part limit equal to the item's",
            |i| i.parts[0].limit_days = Some(30),
            None,
        ),
        (
            "a part limit above 45 on an item of 60 days",
            |i| {
                i.legal_limit_days = 60;
                i.parts[0].limit_days = Some(46);
            },
            Some("limit"),
        ),
        (
            "decided by one department as well",
            |i| i.decided_by = Some("GHJ".into()),
            Some("decided_by_one"),
        ),
        (
            "an instant item",
            |i| {
                i.case_type = crate::domain::item::CaseType::Instant;
                i.committed_limit_days = 0;
            },
            Some("instant"),
        ),
    ];
    for (what, edit, code) in rows {
        let mut item = sample_item();
        item.parts = vec![part("GHJ", None), part("XFJ", Some(10)), part("HBJ", None)];
        edit(&mut item);
        let checked = check_parts(&item);
        assert_eq!(checked.as_ref().err().map(|e| e.code()), code, "{what}");
        // The item's own validation carries the same refusal.
        assert_eq!(item.validate().is_ok(), code.is_none(), "{what}");
    }
}

#[test]
fn the_whole_has_45_working_days_and_15_more_unless_the_item_says_less() {
    // (the item's committed, legal and extension days; the whole's)
    let rows = [
        ((20, 60, 30), (20, 45, 15)),
        ((30, 40, 10), (30, 40, 10)),
        ((50, 60, 15), (45, 45, 15)),
        ((10, 45, 20), (10, 45, 15)),
        ((45, 45, 0), (45, 45, 0)),
    ];
    for ((committed, legal, extension), want) in rows {
        let got = whole_limits(committed, legal, extension);
        assert_eq!(
            (got.committed_days, got.legal_days, got.extension_days),
            want,
            "{committed}/{legal}/{extension}"
        );
    }
    // A part: its own limit when shorter, never longer than the whole's.
    let whole = whole_limits(30, 45, 15);
    let rows = [
        (None, (30, 45, 15)),
        (Some(20), (20, 20, 15)),
        (Some(40), (30, 40, 15)),
        (Some(60), (30, 45, 15)),
    ];
    for (own, want) in rows {
        let got = part_limits(whole, own);
        assert_eq!(
            (got.committed_days, got.legal_days, got.extension_days),
            want,
            "{own:?}"
        );
    }
}

#[test]
fn deadlines_of_the_whole_and_its_parts_count_working_days_over_holidays() {
    let calendar = Calendar::china();
    let d = |s: &str| s.parse::<Date>().unwrap();
    // (accepted on, the item's committed/legal/extension days, a part's own limit, days
    // extended, the legal deadline). Counted by hand on the shipped 2026 and 2027 tables:
    // from 2026-09-18 (a Friday) the 20th September is a make-up working day (调休上班),
    // 25–27 September (中秋) and 1–7 October (国庆) are off, 10 October is worked.
    type Row<'a> = (&'a str, (u32, u32, u32), Option<u32>, u32, &'a str);
    let rows: [Row<'_>; 8] = [
        // The whole: 45 days, though the item says 60.
        ("2026-09-18", (20, 60, 30), None, 0, "2026-11-26"),
        // The whole extended by its 15 (行政许可法 §26).
        ("2026-09-18", (20, 60, 30), None, 15, "2026-12-17"),
        // The item says less: 30 days.
        ("2026-09-18", (20, 30, 15), None, 0, "2026-11-05"),
        // A part with its own 10 days, across 中秋 and 国庆 and the worked Sunday.
        ("2026-09-18", (20, 60, 30), Some(10), 0, "2026-10-09"),
        // A part without a limit of its own has the whole's.
        ("2026-09-18", (20, 30, 15), None, 0, "2026-11-05"),
        // Across the new year into the 2027 table.
        ("2026-12-15", (20, 45, 15), None, 0, "2027-02-23"),
        ("2026-12-15", (20, 45, 15), None, 15, "2027-03-16"),
        ("2026-03-02", (20, 45, 15), Some(20), 0, "2026-03-30"),
    ];
    for (accepted, (committed, legal, extension), own, extended, due) in rows {
        let whole = whole_limits(committed, legal, extension);
        let limits = match own {
            Some(_) => part_limits(whole, own),
            None => whole,
        };
        assert!(extended <= limits.extension_days);
        let deadlines = Deadlines::compute(
            calendar,
            d(accepted),
            crate::domain::calendar::Limits {
                committed_days: limits.committed_days,
                legal_days: limits.legal_days,
                yellow: Default::default(),
            },
            &[],
            extended,
        );
        assert_eq!(
            deadlines.legal_due,
            d(due),
            "{accepted} {legal} {own:?} +{extended}"
        );
    }
}

#[test]
fn a_parts_intake_is_its_parents_bound_to_its_department_and_limit() {
    let parent = parent();
    let second = sub(&parent, 1);
    assert_eq!(second.item.decided_by, Some(decider("XFJ")));
    assert_eq!(second.item.legal_limit_days, 10);
    assert_eq!(second.item.committed_limit_days, 10);
    assert_eq!(
        second.part_of,
        Some(PartOf {
            parent: parent_id(&parent),
            index: 1
        })
    );
    assert_ne!(second.doc_id(), parent.doc_id());
    assert!(parent.is_parent() && !second.is_parent());
    // Its limits are the sub-case's own: the deadlines come from its snapshot.
    let accepted = derive(
        &second,
        &[event(
            STATION,
            "2026-03-02",
            10,
            Action::Accept {
                serial_no: serial(),
                calendar: "2026.1".into(),
            },
        )],
    );
    let due = accepted
        .deadlines(&second, Calendar::china())
        .unwrap()
        .legal_due;
    assert_eq!(due, "2026-03-16".parse().unwrap());
}

#[test]
fn a_binding_that_does_not_match_its_parents_item_is_refused() {
    let parent = parent();
    let earlier = |id: &str| id == parent_id(&parent);
    type Edit = fn(&mut Intake);
    // (the intake: the parent or part 1, what is changed, refused?)
    let rows: Vec<(&str, bool, Edit, bool)> = vec![
        ("the parent", false, |_| {}, false),
        ("a part", true, |_| {}, false),
        (
            "a part decided by another department than its part's",
            true,
            |i| i.item.decided_by = Some(decider("GHJ")),
            true,
        ),
        (
            "a part decided at another hall",
            true,
            |i| {
                i.item.decided_by = Some(Decider {
                    hall: OTHER_HALL,
                    ..decider("XFJ")
                })
            },
            true,
        ),
        (
            "a part decided by no department (by the station)",
            true,
            |i| i.item.decided_by = None,
            true,
        ),
        (
            "a part the item does not have",
            true,
            |i| i.part_of.as_mut().unwrap().index = 3,
            true,
        ),
        (
            "a part with a longer limit than its part's",
            true,
            |i| i.item.legal_limit_days = 30,
            true,
        ),
        (
            "a part of a parent that is not an earlier case of its node",
            true,
            |i| i.part_of.as_mut().unwrap().parent = "c-0000000000000001-00".into(),
            true,
        ),
        (
            "a parent decided by one department",
            false,
            |i| i.item.decided_by = Some(decider("GHJ")),
            // With parts and a decider, it reads as a part without `part_of`: refused.
            true,
        ),
        (
            "a parent of more than 45 days",
            false,
            |i| i.item.legal_limit_days = 46,
            true,
        ),
        (
            "a parent extended by more than 15",
            false,
            |i| i.item.legal_extension_days = 16,
            true,
        ),
        (
            "a parent whose part is longer than the whole",
            false,
            |i| i.item.parts[0].limit_days = 31,
            true,
        ),
        (
            "a parent with one part",
            false,
            |i| i.item.parts.truncate(1),
            true,
        ),
        (
            "a parent with one department twice",
            false,
            |i| i.item.parts[2].decider = decider("GHJ"),
            true,
        ),
    ];
    for (what, is_part, edit, refused) in rows {
        let mut intake = if is_part {
            sub(&parent, 1)
        } else {
            parent.clone()
        };
        edit(&mut intake);
        let checked = check_binding(&intake, earlier);
        assert_eq!(checked.is_err(), refused, "{what}: {checked:?}");
    }
}

#[test]
fn only_a_sub_case_bound_to_the_parent_counts_for_it() {
    let parent = parent();
    let id = parent_id(&parent);
    type Edit = fn(&mut Intake);
    let rows: Vec<(&str, Edit, Option<usize>)> = vec![
        ("its own part", |_| {}, Some(1)),
        (
            "of another parent",
            |i| i.part_of.as_mut().unwrap().parent = "c-x".into(),
            None,
        ),
        ("of another item version", |i| i.item.version += 1, None),
        (
            "decided by another department",
            |i| i.item.decided_by = Some(decider("GHJ")),
            None,
        ),
        ("made by another node", |i| i.node = HALL, None),
        ("not a part", |i| i.part_of = None, None),
    ];
    for (what, edit, counts) in rows {
        let mut sub = sub(&parent, 1);
        edit(&mut sub);
        assert_eq!(counts_for(&id, &parent, &sub), counts, "{what}");
    }
}

#[test]
fn the_parent_is_decided_only_when_every_part_is_and_approved_only_if_all_are() {
    let parent = parent();
    let accept = event(
        STATION,
        "2026-03-02",
        10,
        Action::Accept {
            serial_no: serial(),
            calendar: "2026.1".into(),
        },
    );
    let complete = event(
        STATION,
        "2026-03-20",
        10,
        Action::Complete {
            result: "准予".into(),
            delivery: "窗口领取".into(),
        },
    );
    let withdraw = event(
        STATION,
        "2026-03-03",
        10,
        Action::Withdraw {
            reason: "申请人撤回".into(),
        },
    );
    let p = |status: Status, decision: Option<bool>| Some(PartState { status, decision });
    let yes = p(Status::Decided, Some(true));
    let no = p(Status::Decided, Some(false));
    let delivered = p(Status::Completed, Some(true));
    let open = p(Status::Accepted, None);
    // (the parent's own events, its parts as held here, the status and decision)
    type Row = (Vec<Event>, Vec<Option<PartState>>, Status, Option<bool>);
    let rows: Vec<Row> = vec![
        (vec![], vec![None, None, None], Status::Submitted, None),
        (
            vec![accept.clone()],
            vec![None, None, None],
            Status::Accepted,
            None,
        ),
        (vec![accept.clone()], vec![], Status::Accepted, None),
        (
            vec![accept.clone()],
            vec![yes.clone(), None, open.clone()],
            Status::Accepted,
            None,
        ),
        (
            vec![accept.clone()],
            vec![yes.clone(), delivered.clone(), open.clone()],
            Status::Accepted,
            None,
        ),
        // Two of three: still in progress.
        (
            vec![accept.clone()],
            vec![yes.clone(), yes.clone()],
            Status::Accepted,
            None,
        ),
        (
            vec![accept.clone()],
            vec![yes.clone(), delivered.clone(), yes.clone()],
            Status::Decided,
            Some(true),
        ),
        // One part denied: the whole is denied, once all are in.
        (
            vec![accept.clone()],
            vec![yes.clone(), no.clone(), open.clone()],
            Status::Accepted,
            None,
        ),
        (
            vec![accept.clone()],
            vec![yes.clone(), no.clone(), yes.clone()],
            Status::Decided,
            Some(false),
        ),
        // The station's completion, held back until every part is here.
        (
            vec![accept.clone(), complete.clone()],
            vec![yes.clone(), yes.clone(), yes.clone()],
            Status::Completed,
            Some(true),
        ),
        (
            vec![complete.clone(), accept.clone()],
            vec![yes.clone(), None, yes.clone()],
            Status::Accepted,
            None,
        ),
        // Withdrawn as a whole.
        (
            vec![accept.clone(), withdraw.clone()],
            vec![yes.clone(), yes.clone(), yes.clone()],
            Status::Withdrawn,
            None,
        ),
    ];
    for (n, (events, parts, status, decision)) in rows.into_iter().enumerate() {
        let state = combine(&parent, derive(&parent, &events), &parts);
        assert_eq!(
            (state.status, state.decision),
            (status, decision),
            "row {n}"
        );
        if !status.is_closed() {
            assert_eq!(state.closed_on, None, "row {n}");
        }
    }
    // A sub-case, or an ordinary case, is its own state whatever is passed.
    let second = sub(&parent, 1);
    let own = derive(&second, std::slice::from_ref(&accept));
    assert_eq!(
        combine(&second, own.clone(), std::slice::from_ref(&yes)),
        own
    );
}
