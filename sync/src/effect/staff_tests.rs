//! Staff accounts (§8.6.3) as every receiver judges them: only the hall whose scope holds
//! an account, by an admin, writes or changes it.

use automerge::transaction::Transactable;

use super::*;
use crate::auth::NodeRole;
use crate::auth::tests::record;
use crate::domain::codes::DivisionCode;
use crate::ids::Origin;

const T0: u64 = 1_772_413_200_000;

fn origin_of(node: &NodeRecord) -> Origin {
    Origin {
        node: node.node,
        epoch: 1,
    }
}

fn district() -> NodeRecord {
    record(2, NodeRole::District, "440304")
}

fn sub() -> NodeRecord {
    record(3, NodeRole::Subdistrict, "440304001")
}

fn station() -> NodeRecord {
    record(4, NodeRole::Station, "440304001001")
}

fn sibling() -> NodeRecord {
    record(6, NodeRole::Subdistrict, "440304002")
}

fn account(hall: &NodeRecord) -> StaffAccount {
    StaffAccount {
        username: "li.ming".into(),
        display_name: "李明".into(),
        role: "worker".into(),
        counter: "3".into(),
        sign_in_at: vec![],
        verifier: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".into(),
        disabled: false,
        generation: 1,
        stand_in: None,
        chief: false,
        hall: hall.node,
        by: "admin".into(),
        by_role: "admin".into(),
    }
}

fn judge_of(
    by: &NodeRecord,
    id: &DocId,
    scope: &Scope,
    change: &Change,
    held: Option<&Automerge>,
) -> Judgement {
    let envelope = Envelope {
        origin: origin_of(by),
        seq: 1,
        prev: 0,
        doc: id.clone(),
        kind: DocKind::Staff,
        scope: scope.clone(),
        hash: change.hash().0,
        change: change.raw_bytes().to_vec(),
        refused: None,
    };
    judge(by, &envelope, change, held, &|_| false)
}

/// `by` writes `account` as a new document in `scope`.
fn create(by: &NodeRecord, scope: &Scope, account: &StaffAccount) -> (Automerge, Change) {
    let document = doc::new_record(
        &origin_of(by),
        scope,
        DocKind::Staff,
        &[("account", serde_json::to_string(account).unwrap())],
        T0,
    )
    .unwrap();
    let change = document.get_changes(&[])[0].clone();
    (document, change)
}

/// `by` writes `account` as the next version of `held`.
fn replace(by: &NodeRecord, held: &Automerge, account: &StaffAccount) -> Change {
    let mut copy = held.fork();
    doc::put_record_field(
        &mut copy,
        &origin_of(by),
        "account",
        &serde_json::to_string(account).unwrap(),
        T0 + 1,
    )
    .unwrap();
    copy.get_last_local_change().unwrap()
}

fn refused_as(judgement: &Judgement, code: &str) -> bool {
    matches!(judgement, Judgement::Refuse(r) if r.code() == code)
}

#[test]
fn accounts_are_written_only_by_the_hall_of_their_scope_by_an_admin() {
    let hall = sub();
    let scope = Scope::catalog(&hall.division);
    let honest = account(&hall);
    let id = StaffAccount::doc_id_for(&hall.division, &honest.username).unwrap();
    let (_, creation) = create(&hall, &scope, &honest);
    assert_eq!(
        judge_of(&hall, &id, &scope, &creation, None),
        Judgement::Allow
    );
    let in_name_of = |node: &NodeRecord| StaffAccount {
        hall: node.node,
        ..honest.clone()
    };
    // (who writes, into which scope, under which id, what, the refusal's code)
    let table: Vec<(NodeRecord, Scope, DocId, StaffAccount, &str)> = vec![
        // A station below, into the hall's scope or its own.
        (
            station(),
            scope.clone(),
            id.clone(),
            in_name_of(&station()),
            "not_authorized",
        ),
        (
            station(),
            Scope::catalog(&station().division),
            StaffAccount::doc_id_for(&station().division, "li.ming").unwrap(),
            in_name_of(&station()),
            "not_authorized",
        ),
        // A sibling hall into this hall's scope.
        (
            sibling(),
            scope.clone(),
            id.clone(),
            in_name_of(&sibling()),
            "not_authorized",
        ),
        // The parent hall into its child's scope: each hall writes only its own accounts.
        (
            district(),
            scope.clone(),
            id.clone(),
            in_name_of(&district()),
            "not_authorized",
        ),
        // A foreign district.
        (
            record(9, NodeRole::District, "440305"),
            scope.clone(),
            id.clone(),
            in_name_of(&record(9, NodeRole::District, "440305")),
            "not_authorized",
        ),
        // The hall itself, but in another node's name.
        (
            hall.clone(),
            scope.clone(),
            id.clone(),
            in_name_of(&district()),
            "forbidden_effect",
        ),
        // Under another account's id.
        (
            hall.clone(),
            scope.clone(),
            StaffAccount::doc_id_for(&hall.division, "wang").unwrap(),
            honest.clone(),
            "forbidden_effect",
        ),
        // Written by a lead, or by a role no node knows.
        (
            hall.clone(),
            scope.clone(),
            id.clone(),
            StaffAccount {
                by_role: "lead".into(),
                ..honest.clone()
            },
            "event_not_allowed",
        ),
        (
            hall.clone(),
            scope.clone(),
            id.clone(),
            StaffAccount {
                by_role: "root".into(),
                ..honest.clone()
            },
            "event_not_allowed",
        ),
        // An account with a role no node knows, a password instead of a verifier, or a
        // place outside the hall.
        (
            hall.clone(),
            scope.clone(),
            id.clone(),
            StaffAccount {
                role: "superuser".into(),
                ..honest.clone()
            },
            "forbidden_effect",
        ),
        (
            hall.clone(),
            scope.clone(),
            id.clone(),
            StaffAccount {
                verifier: "hunter2hunter2".into(),
                ..honest.clone()
            },
            "forbidden_effect",
        ),
        (
            hall.clone(),
            scope.clone(),
            id.clone(),
            StaffAccount {
                sign_in_at: vec![DivisionCode::parse("440304002001").unwrap()],
                ..honest.clone()
            },
            "forbidden_effect",
        ),
    ];
    for (author, scope, id, account, code) in table {
        let (_, change) = create(&author, &scope, &account);
        let judged = judge_of(&author, &id, &scope, &change, None);
        assert!(
            refused_as(&judged, code),
            "{} {id} {:?}: {judged:?}",
            author.division,
            account.by_role
        );
    }
}

#[test]
fn only_its_hall_changes_an_account_and_a_reset_bumps_the_generation() {
    let hall = sub();
    let scope = Scope::catalog(&hall.division);
    let honest = account(&hall);
    let id = StaffAccount::doc_id_for(&hall.division, &honest.username).unwrap();
    let (held, _) = create(&hall, &scope, &honest);
    let disabled = StaffAccount {
        disabled: true,
        ..honest.clone()
    };
    let reset = StaffAccount {
        verifier: "$argon2id$v=19$m=19456,t=2,p=1$b3RoZXJzYWx0$bmV3aGFzaA".into(),
        generation: 2,
        ..honest.clone()
    };
    for next in [&disabled, &reset] {
        let change = replace(&hall, &held, next);
        assert_eq!(
            judge_of(&hall, &id, &scope, &change, Some(&held)),
            Judgement::Allow
        );
    }
    // The parent hall, a station below and a sibling may not disable or re-enable it.
    for other in [district(), station(), sibling()] {
        let change = replace(
            &other,
            &held,
            &StaffAccount {
                hall: other.node,
                ..disabled.clone()
            },
        );
        let judged = judge_of(&other, &id, &scope, &change, Some(&held));
        assert!(
            refused_as(&judged, "not_authorized"),
            "{}: {judged:?}",
            other.division
        );
    }
    // A new verifier under the old generation would leave old tokens working.
    let sneaky = StaffAccount {
        generation: 1,
        ..reset.clone()
    };
    let judged = judge_of(
        &hall,
        &id,
        &scope,
        &replace(&hall, &held, &sneaky),
        Some(&held),
    );
    assert!(refused_as(&judged, "forbidden_effect"), "{judged:?}");
    // Renaming the account inside its document, or writing another field.
    let renamed = StaffAccount {
        username: "wang".into(),
        ..honest.clone()
    };
    let judged = judge_of(
        &hall,
        &id,
        &scope,
        &replace(&hall, &held, &renamed),
        Some(&held),
    );
    assert!(refused_as(&judged, "forbidden_effect"), "{judged:?}");
    let mut copy = held.fork();
    copy.set_actor(origin_of(&hall).actor());
    copy.transact(|tx| tx.put(ROOT, "password", "hunter2"))
        .unwrap();
    let stray = copy.get_last_local_change().unwrap();
    let judged = judge_of(&hall, &id, &scope, &stray, Some(&held));
    assert!(refused_as(&judged, "forbidden_effect"), "{judged:?}");
}
