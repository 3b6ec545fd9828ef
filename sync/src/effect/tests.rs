//! Every forgery a node could try with its own key, judged against honest writes.

use automerge::transaction::Transactable;
use automerge::{AutomergeError, ObjType};

use super::*;
use crate::auth::NodeRole;
use crate::auth::tests::record;
use crate::domain::calendar::Calendar;
use crate::domain::case::{Action, Applicant, MaterialReceived, NewCase, Phone};
use crate::domain::codes::{DivisionCode, ResidentId};
use crate::domain::hlc::Hlc;
use crate::domain::item::tests::sample_item;
use crate::domain::serial::SerialNo;
use crate::ids::Origin;

pub(super) const T0: u64 = 1_772_413_200_000;

pub(super) fn origin_of(node: &NodeRecord) -> Origin {
    Origin {
        node: node.node,
        epoch: 1,
    }
}

pub(super) fn station() -> NodeRecord {
    record(4, NodeRole::Station, "440304001001")
}

pub(super) fn other_station() -> NodeRecord {
    record(5, NodeRole::Station, "440304001002")
}

pub(super) fn sub() -> NodeRecord {
    record(3, NodeRole::Subdistrict, "440304001")
}

fn district() -> NodeRecord {
    record(2, NodeRole::District, "440304")
}

pub(crate) fn intake(by: &NodeRecord) -> Intake {
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
        by.node,
        by.division.clone(),
        Hlc::new(T0, 0),
    )
    .unwrap()
}

fn envelope_for(
    by: &NodeRecord,
    doc: &DocId,
    kind: DocKind,
    scope: &Scope,
    change: &Change,
) -> Envelope {
    Envelope {
        origin: origin_of(by),
        seq: 1,
        prev: 0,
        doc: doc.clone(),
        kind,
        scope: scope.clone(),
        hash: change.hash().0,
        change: change.raw_bytes().to_vec(),
        refused: None,
    }
}

/// A case held by everyone: created by the station.
pub(super) fn held_case() -> (DocId, Scope, Automerge) {
    let station = station();
    let scope = Scope::cases(&station.division);
    let (id, document) = doc::new_case(&origin_of(&station), &scope, &intake(&station)).unwrap();
    (id, scope, document)
}

pub(super) fn event(by: &NodeRecord, ms: u64, action: Action) -> Event {
    Event {
        at: Hlc::new(ms, 0),
        node: by.node,
        staff: "x".into(),
        counter: String::new(),
        stand_in_for: None,
        action,
    }
}

pub(super) fn accept(by: &NodeRecord) -> Event {
    event(
        by,
        T0 + 1000,
        Action::Accept {
            serial_no: SerialNo::parse("11440399990000017K4000599301000202603029900100110001")
                .unwrap(),
            calendar: Calendar::china().version().into(),
        },
    )
}

fn decide(by: &NodeRecord) -> Event {
    event(
        by,
        T0 + 2000,
        Action::Decide {
            approved: true,
            reason: String::new(),
            basis: String::new(),
            remedies: String::new(),
            on_behalf_of: None,
        },
    )
}

/// `by`'s intake of an item delegated by the 民政局 and decided by it at the sub-district.
fn department_decided(by: &NodeRecord) -> Intake {
    let mut decided = intake(by);
    decided.item.delegated_by = Some("民政局".into());
    decided.item.decided_by = Some(crate::domain::department::Decider {
        code: "MZJ".into(),
        name: "民政局".into(),
        hall: sub().node,
    });
    decided
}

/// A copy of `held` with `by`'s acceptance added.
fn accepted_by(by: &NodeRecord, held: &Automerge) -> Automerge {
    let mut copy = held.fork();
    doc::add_events(&mut copy, &origin_of(by), &[accept(by)]).unwrap();
    copy
}

/// `by` adds events to a copy of `held` the honest way.
pub(super) fn add(by: &NodeRecord, held: &Automerge, events: &[Event]) -> Change {
    let mut copy = held.fork();
    doc::add_events(&mut copy, &origin_of(by), events).unwrap();
    copy.get_last_local_change().unwrap()
}

/// `by` makes an arbitrary change to a copy of `held`.
fn raw(
    by: &NodeRecord,
    held: &Automerge,
    f: impl FnOnce(&mut automerge::transaction::Transaction<'_>) -> Result<(), AutomergeError>,
) -> Change {
    let mut copy = held.fork();
    copy.set_actor(origin_of(by).actor());
    copy.transact(|tx| f(tx)).unwrap();
    copy.get_last_local_change().unwrap()
}

fn events_id(held: &Automerge) -> automerge::ObjId {
    held.get(ROOT, "events").unwrap().unwrap().1
}

fn never_refused(_: &[u8; 32]) -> bool {
    false
}

pub(super) fn check(
    by: &NodeRecord,
    change: &Change,
    doc_id: &DocId,
    kind: DocKind,
    scope: &Scope,
    held: Option<&Automerge>,
) -> Judgement {
    judge(
        by,
        &envelope_for(by, doc_id, kind, scope, change),
        change,
        held,
        &never_refused,
    )
}

pub(super) fn refused_as(judgement: &Judgement, code: &str) -> bool {
    matches!(judgement, Judgement::Refuse(r) if r.code() == code)
}

#[test]
fn honest_writes_are_allowed() {
    let station = station();
    let (id, scope, held) = held_case();
    let creation = held.get_changes(&[])[0].clone();
    assert_eq!(
        check(&station, &creation, &id, DocKind::Case, &scope, None),
        Judgement::Allow
    );
    let accepted = add(&station, &held, &[accept(&station)]);
    assert_eq!(
        check(&station, &accepted, &id, DocKind::Case, &scope, Some(&held)),
        Judgement::Allow
    );
    // Halls above may decide; the district two levels up too.
    for hall in [sub(), district()] {
        let decided = add(&hall, &held, &[decide(&hall)]);
        assert_eq!(
            check(&hall, &decided, &id, DocKind::Case, &scope, Some(&held)),
            Judgement::Allow,
            "{}",
            hall.name
        );
    }
}

/// Each forgery, as a table: who writes, what, into which document, with which label.
#[test]
fn forgeries_are_refused_with_their_reason() {
    let station = station();
    let hall = sub();
    let (case_id, case_scope, held) = held_case();
    let registry_scope = Scope::registry(&hall.division);
    let (registry_id, registry) = doc::new_registry(
        &origin_of(&hall),
        &registry_scope,
        &[hall.clone(), station.clone()],
        T0,
    )
    .unwrap();
    let catalog_scope = Scope::catalog(&district().division);
    let (item_id, item_doc) =
        doc::new_item(&origin_of(&district()), &catalog_scope, &sample_item(), T0).unwrap();

    // The attack that broke the first release: a station's change labelled as its own
    // case, landing in the hall's registry, adding a district-level key of its own.
    let mut forged_record = record(9, NodeRole::District, "440304");
    forged_record.enrolled_by = hall.node;
    let into_registry = raw(&station, &registry, |tx| {
        let nodes = tx.get(ROOT, "nodes")?.unwrap().1;
        tx.put(
            &nodes,
            forged_record.node.to_hex(),
            serde_json::to_string(&forged_record).unwrap(),
        )?;
        Ok(())
    });
    let judged = check(
        &station,
        &into_registry,
        &registry_id,
        DocKind::Case,
        &case_scope,
        Some(&registry),
    );
    assert!(refused_as(&judged, "mislabelled"), "{judged:?}");
    // Labelled honestly, it is refused all the same: stations write no registry.
    let judged = check(
        &station,
        &into_registry,
        &registry_id,
        DocKind::Registry,
        &registry_scope,
        Some(&registry),
    );
    assert!(refused_as(&judged, "not_authorized"), "{judged:?}");
    // Even the hall may not vouch for a node at or above its own level.
    let hall_vouches_up = raw(&hall, &registry, |tx| {
        let nodes = tx.get(ROOT, "nodes")?.unwrap().1;
        tx.put(
            &nodes,
            forged_record.node.to_hex(),
            serde_json::to_string(&forged_record).unwrap(),
        )?;
        Ok(())
    });
    let judged = check(
        &hall,
        &hall_vouches_up,
        &registry_id,
        DocKind::Registry,
        &registry_scope,
        Some(&registry),
    );
    assert!(refused_as(&judged, "bad_record"), "{judged:?}");

    let events = events_id(&held);
    let other = other_station();
    // (what, author, change, expected code)
    let table: Vec<(&str, &NodeRecord, Change, &str)> = vec![
        (
            "a station rewrites the applicant",
            &station,
            raw(&station, &held, |tx| {
                tx.put(ROOT, "intake", "{}")?;
                Ok(())
            }),
            "forbidden_effect",
        ),
        (
            "a hall rewrites an event the station wrote",
            &hall,
            {
                let accepted_id = accept(&station).id();
                let with_accept = {
                    let mut d = held.fork();
                    doc::add_events(&mut d, &origin_of(&station), &[accept(&station)]).unwrap();
                    d
                };
                let change = raw(&hall, &with_accept, |tx| {
                    let events = tx.get(ROOT, "events")?.unwrap().1;
                    tx.put(&events, &accepted_id, "{}")?;
                    Ok(())
                });
                // Judged against the document that holds the accepted event.
                let judged = check(
                    &hall,
                    &change,
                    &case_id,
                    DocKind::Case,
                    &case_scope,
                    Some(&with_accept),
                );
                assert!(refused_as(&judged, "forbidden_effect"), "{judged:?}");
                change
            },
            "",
        ),
        (
            "a station deletes the event list",
            &station,
            raw(&station, &held, |tx| {
                tx.delete(ROOT, "events")?;
                Ok(())
            }),
            "forbidden_effect",
        ),
        (
            "a station writes an event in the hall's name",
            &station,
            {
                let mut forged = decide(&hall);
                forged.node = hall.node;
                raw(&station, &held, |tx| {
                    tx.put(
                        &events,
                        forged.id(),
                        serde_json::to_string(&forged).unwrap(),
                    )?;
                    Ok(())
                })
            },
            "forbidden_effect",
        ),
        (
            "a hall accepts a station's case (a counter's act)",
            &hall,
            add(&hall, &held, &[accept(&hall)]),
            "event_not_allowed",
        ),
        (
            "another station decides the case",
            &other,
            add(&other, &held, &[decide(&other)]),
            "not_authorized",
        ),
        (
            "a station nests an object in the events",
            &station,
            raw(&station, &held, |tx| {
                tx.put_object(&events, "x", ObjType::Map)?;
                Ok(())
            }),
            "forbidden_effect",
        ),
    ];
    for (what, author, change, code) in table {
        if code.is_empty() {
            continue;
        }
        let judged = check(
            author,
            &change,
            &case_id,
            DocKind::Case,
            &case_scope,
            Some(&held),
        );
        assert!(refused_as(&judged, code), "{what}: {judged:?}");
    }

    // A station publishing into the district's catalog.
    let mut renamed = sample_item();
    renamed.name = "伪造".into();
    let item_forgery = raw(&station, &item_doc, |tx| {
        tx.put(ROOT, "item", serde_json::to_string(&renamed).unwrap())?;
        Ok(())
    });
    let judged = check(
        &station,
        &item_forgery,
        &item_id,
        DocKind::Item,
        &catalog_scope,
        Some(&item_doc),
    );
    assert!(refused_as(&judged, "not_authorized"), "{judged:?}");
    // The district publishing another item's content under this item's document.
    let mut elsewhere = sample_item();
    elsewhere.impl_code =
        crate::domain::codes::ImplCode::parse("11440399990000017K4000599302000").unwrap();
    let swapped = raw(&district(), &item_doc, |tx| {
        tx.put(ROOT, "item", serde_json::to_string(&elsewhere).unwrap())?;
        Ok(())
    });
    let judged = check(
        &district(),
        &swapped,
        &item_id,
        DocKind::Item,
        &catalog_scope,
        Some(&item_doc),
    );
    assert!(refused_as(&judged, "forbidden_effect"), "{judged:?}");
    // The city may write the district's catalog, but not rewrite an item the district
    // authored: only its author publishes its versions.
    let city = record(1, NodeRole::City, "440300");
    let by_city = raw(&city, &item_doc, |tx| {
        tx.put(ROOT, "item", serde_json::to_string(&renamed).unwrap())?;
        Ok(())
    });
    let judged = check(
        &city,
        &by_city,
        &item_id,
        DocKind::Item,
        &catalog_scope,
        Some(&item_doc),
    );
    assert!(refused_as(&judged, "not_authorized"), "{judged:?}");
    // A second node of the sub-district's own division may not write its registry.
    let twin = record(8, NodeRole::Subdistrict, "440304001");
    let mut by_twin = registry.fork();
    doc::put_records(
        &mut by_twin,
        &origin_of(&twin),
        std::slice::from_ref(&twin),
        T0,
    )
    .unwrap();
    let judged = check(
        &twin,
        &by_twin.get_last_local_change().unwrap(),
        &registry_id,
        DocKind::Registry,
        &registry_scope,
        Some(&registry),
    );
    assert!(refused_as(&judged, "not_authorized"), "{judged:?}");
}

#[test]
fn creations_must_agree_with_their_id_and_author() {
    let station = station();
    let other = other_station();
    let (id, scope, held) = held_case();
    let creation = held.get_changes(&[])[0].clone();
    // Another station replaying the creation under its own name is a foreign actor.
    let judged = judge(
        &other,
        &Envelope {
            origin: origin_of(&other),
            ..envelope_for(&station, &id, DocKind::Case, &scope, &creation)
        },
        &creation,
        None,
        &never_refused,
    );
    assert!(refused_as(&judged, "foreign_actor"), "{judged:?}");
    // A station creating a case in another station's scope.
    let other_scope = Scope::cases(&other.division);
    let (other_id, in_other) =
        doc::new_case(&origin_of(&station), &other_scope, &intake(&station)).unwrap();
    let judged = check(
        &station,
        &in_other.get_changes(&[])[0],
        &other_id,
        DocKind::Case,
        &other_scope,
        None,
    );
    assert!(refused_as(&judged, "not_authorized"), "{judged:?}");
    // A hall creating a case in its station's scope.
    let hall = sub();
    let mut hall_intake = intake(&hall);
    hall_intake.division = station.division.clone();
    let (hall_id, hall_case) = doc::new_case(&origin_of(&hall), &scope, &hall_intake).unwrap();
    let judged = check(
        &hall,
        &hall_case.get_changes(&[])[0],
        &hall_id,
        DocKind::Case,
        &scope,
        None,
    );
    assert!(refused_as(&judged, "forbidden_effect"), "{judged:?}");
    // The creation labelled under another id.
    let wrong_id = DocId::parse("c-0000000000000001-00000000000000000000000000000000").unwrap();
    let judged = check(&station, &creation, &wrong_id, DocKind::Case, &scope, None);
    assert!(refused_as(&judged, "forbidden_effect"), "{judged:?}");
    // An id of no known form.
    let judged = check(
        &station,
        &creation,
        &DocId::parse("x-1").unwrap(),
        DocKind::Case,
        &scope,
        None,
    );
    assert!(refused_as(&judged, "unknown_document"), "{judged:?}");
}

#[test]
fn missing_dependencies_wait_unless_they_were_refused() {
    let station = station();
    let (id, scope, held) = held_case();
    let accepted = add(&station, &held, &[accept(&station)]);
    // Not holding the case yet: wait for it.
    let judged = check(&station, &accepted, &id, DocKind::Case, &scope, None);
    assert!(matches!(judged, Judgement::Defer(_)), "{judged:?}");
    // Its creation was refused here: it will never come.
    let creation_hash = held.get_heads()[0].0;
    let judged = judge(
        &station,
        &envelope_for(&station, &id, DocKind::Case, &scope, &accepted),
        &accepted,
        None,
        &|h| *h == creation_hash,
    );
    assert!(refused_as(&judged, "builds_on_refused"), "{judged:?}");
}

#[test]
fn revocations_stand_and_halls_vouch_below_themselves() {
    let hall = sub();
    let station = station();
    let scope = Scope::registry(&hall.division);
    let (id, registry) = doc::new_registry(
        &origin_of(&hall),
        &scope,
        &[hall.clone(), station.clone()],
        T0,
    )
    .unwrap();
    let creation = registry.get_changes(&[])[0].clone();
    assert_eq!(
        check(&hall, &creation, &id, DocKind::Registry, &scope, None),
        Judgement::Allow
    );
    let mut revoked = station.clone();
    revoked.revoked = Some(crate::auth::Revocation {
        at_ms: T0,
        by: hall.node,
        reason: "stolen".into(),
        accepted_up_to: Default::default(),
    });
    let mut after = registry.fork();
    doc::put_records(
        &mut after,
        &origin_of(&hall),
        std::slice::from_ref(&revoked),
        T0,
    )
    .unwrap();
    let revocation = after.get_last_local_change().unwrap();
    assert_eq!(
        check(
            &hall,
            &revocation,
            &id,
            DocKind::Registry,
            &scope,
            Some(&registry)
        ),
        Judgement::Allow
    );
    let mut undo = after.fork();
    doc::put_records(
        &mut undo,
        &origin_of(&hall),
        std::slice::from_ref(&station),
        T0,
    )
    .unwrap();
    let undoing = undo.get_last_local_change().unwrap();
    let judged = check(
        &hall,
        &undoing,
        &id,
        DocKind::Registry,
        &scope,
        Some(&after),
    );
    assert!(refused_as(&judged, "forbidden_effect"), "{judged:?}");
    // The district may not write the sub-district's registry.
    let mut by_district = registry.fork();
    doc::put_records(&mut by_district, &origin_of(&district()), &[revoked], T0).unwrap();
    let judged = check(
        &district(),
        &by_district.get_last_local_change().unwrap(),
        &id,
        DocKind::Registry,
        &scope,
        Some(&registry),
    );
    assert!(refused_as(&judged, "not_authorized"), "{judged:?}");
    let _ = DivisionCode::parse("440304").unwrap();
}

#[test]
fn serial_numbers_and_segments_stay_in_their_owners_space() {
    use crate::domain::codes::DivisionLevel;
    use crate::domain::serial::Segment;
    let hall = sub();
    let mut station = station();
    let hall_segment = Segment::parse("040100").unwrap();
    station.segment = Some(hall_segment.child(DivisionLevel::Subdistrict, 1).unwrap());
    let (id, scope, held) = held_case();
    let accept_with = |segment: &Segment, epoch: u32| {
        event(
            &station,
            T0 + 1000,
            Action::Accept {
                serial_no: SerialNo::issue(
                    &sample_item().impl_code,
                    crate::domain::calendar::Date::from_unix_ms_cst(T0 as i64),
                    segment,
                    epoch,
                    1,
                )
                .unwrap(),
                calendar: Calendar::china().version().into(),
            },
        )
    };
    let own = add(
        &station,
        &held,
        &[accept_with(&station.serial_segment(), 1)],
    );
    assert_eq!(
        check(&station, &own, &id, DocKind::Case, &scope, Some(&held)),
        Judgement::Allow
    );
    // Numbers from before enrollment (the provisional segment) still pass.
    let provisional = Segment::provisional(&station.division, &station.node.0);
    let early = add(&station, &held, &[accept_with(&provisional, 1)]);
    assert_eq!(
        check(&station, &early, &id, DocKind::Case, &scope, Some(&held)),
        Judgement::Allow
    );
    let other_segment = hall_segment.child(DivisionLevel::Subdistrict, 2).unwrap();
    for (what, change) in [
        (
            "another node's segment",
            add(&station, &held, &[accept_with(&other_segment, 1)]),
        ),
        (
            "another epoch",
            add(
                &station,
                &held,
                &[accept_with(&station.serial_segment(), 2)],
            ),
        ),
    ] {
        let judged = check(&station, &change, &id, DocKind::Case, &scope, Some(&held));
        assert!(
            refused_as(&judged, "forbidden_effect"),
            "{what}: {judged:?}"
        );
    }

    // A hall gives only segments below its own, each once.
    let mut hall_record = hall.clone();
    hall_record.segment = Some(hall_segment.clone());
    let registry_scope = Scope::registry(&hall.division);
    let (registry_id, registry) = doc::new_registry(
        &origin_of(&hall),
        &registry_scope,
        &[hall_record.clone(), station.clone()],
        T0,
    )
    .unwrap();
    let vouch = |record: &NodeRecord| {
        let mut copy = registry.fork();
        doc::put_records(
            &mut copy,
            &origin_of(&hall),
            std::slice::from_ref(record),
            T0,
        )
        .unwrap();
        copy.get_last_local_change().unwrap()
    };
    let mut second = other_station();
    second.division = station.division.clone();
    second.segment = Some(other_segment.clone());
    assert_eq!(
        check(
            &hall_record,
            &vouch(&second),
            &registry_id,
            DocKind::Registry,
            &registry_scope,
            Some(&registry)
        ),
        Judgement::Allow,
        "a second node in one community gets its own segment"
    );
    for segment in [station.serial_segment(), Segment::parse("050101").unwrap()] {
        second.segment = Some(segment.clone());
        let judged = check(
            &hall_record,
            &vouch(&second),
            &registry_id,
            DocKind::Registry,
            &registry_scope,
            Some(&registry),
        );
        assert!(refused_as(&judged, "bad_record"), "{segment}: {judged:?}");
    }
}

/// 代为受理: a station's decision on an item it accepts for a department is refused by
/// receivers unless it is entered on that department's behalf; a hall's is not.
#[test]
fn a_decision_on_a_delegated_item_must_be_the_departments() {
    let station = station();
    let scope = Scope::cases(&station.division);
    let mut delegated_intake = intake(&station);
    delegated_intake.item.delegated_by = Some("示范区民政局".into());
    let (id, mut held) = doc::new_case(&origin_of(&station), &scope, &delegated_intake).unwrap();
    doc::add_events(&mut held, &origin_of(&station), &[accept(&station)]).unwrap();
    let own_decision = add(&station, &held, &[decide(&station)]);
    assert!(refused_as(
        &check(
            &station,
            &own_decision,
            &id,
            DocKind::Case,
            &scope,
            Some(&held)
        ),
        "event_not_allowed"
    ));
    let for_department = event(
        &station,
        T0 + 2000,
        Action::Decide {
            approved: true,
            reason: String::new(),
            basis: String::new(),
            remedies: String::new(),
            on_behalf_of: Some("示范区民政局".into()),
        },
    );
    let entered = add(&station, &held, &[for_department]);
    assert_eq!(
        check(&station, &entered, &id, DocKind::Case, &scope, Some(&held)),
        Judgement::Allow
    );
    let hall = sub();
    let by_hall = add(&hall, &held, &[decide(&hall)]);
    assert_eq!(
        check(&hall, &by_hall, &id, DocKind::Case, &scope, Some(&held)),
        Judgement::Allow
    );
}

#[test]
fn records_are_written_once_by_whom_they_belong_to() {
    use crate::domain::notice;
    use crate::domain::supervision::{SupervisionNotice, SupervisionReply};
    use ed25519_dalek::Signer;
    let station = station();
    let hall = sub();
    let (case_id, case_scope, _) = held_case();
    // A sealed receipt issued by the station, its seal under the station's key.
    let key = ed25519_dalek::SigningKey::from_bytes(&[4; 32]);
    let notice_doc = |number: &str, node: &NodeRecord, seal_key: &ed25519_dalek::SigningKey| {
        let content = serde_json::json!({
            "format": 1, "number": number, "case_id": case_id.as_str(), "node": node.node.to_hex(),
        })
        .to_string();
        let digest = notice::digest(content.as_bytes());
        let seal = seal_key
            .sign(&notice::sealed_message(number, &digest))
            .to_bytes();
        let id = notice::doc_id(number).unwrap();
        let document = doc::new_record(
            &origin_of(node),
            &case_scope,
            DocKind::Notice,
            &[
                ("content", content),
                ("digest", crate::ids::hex(&digest)),
                ("seal", crate::ids::hex(&seal)),
            ],
            T0,
        )
        .unwrap();
        (id, document)
    };
    let (id, receipt) = notice_doc("TZ4E1-000001", &station, &key);
    let creation = receipt.get_changes(&[])[0].clone();
    assert_eq!(
        check(&station, &creation, &id, DocKind::Notice, &case_scope, None),
        Judgement::Allow
    );
    // Sealed with another key, or changed after issue: refused.
    let (id2, forged) = notice_doc(
        "TZ4E1-000002",
        &station,
        &ed25519_dalek::SigningKey::from_bytes(&[8; 32]),
    );
    let judged = check(
        &station,
        &forged.get_changes(&[])[0],
        &id2,
        DocKind::Notice,
        &case_scope,
        None,
    );
    assert!(refused_as(&judged, "forbidden_effect"), "{judged:?}");
    let edit = raw(&station, &receipt, |tx| {
        tx.put(ROOT, "content", "{}")?;
        Ok(())
    });
    let judged = check(
        &station,
        &edit,
        &id,
        DocKind::Notice,
        &case_scope,
        Some(&receipt),
    );
    assert!(refused_as(&judged, "forbidden_effect"), "{judged:?}");

    // Supervision: a hall above issues it, the station replies; not the other way round.
    let supervision = SupervisionNotice {
        at: Hlc::new(T0 + 5_000, 0),
        node: hall.node,
        staff: "督办员".into(),
        case: Some(case_id.clone()),
        reason: "已超过承诺时限".into(),
        todo: "尽快办结".into(),
        reply_days: 3,
    };
    let record = |node: &NodeRecord, kind: DocKind, body: String| {
        doc::new_record(&origin_of(node), &case_scope, kind, &[("body", body)], T0).unwrap()
    };
    let issued = record(
        &hall,
        DocKind::Supervision,
        serde_json::to_string(&supervision).unwrap(),
    );
    assert_eq!(
        check(
            &hall,
            &issued.get_changes(&[])[0],
            &supervision.doc_id(),
            DocKind::Supervision,
            &case_scope,
            None
        ),
        Judgement::Allow
    );
    let mut by_station = supervision.clone();
    by_station.node = station.node;
    let self_issued = record(
        &station,
        DocKind::Supervision,
        serde_json::to_string(&by_station).unwrap(),
    );
    let judged = check(
        &station,
        &self_issued.get_changes(&[])[0],
        &by_station.doc_id(),
        DocKind::Supervision,
        &case_scope,
        None,
    );
    assert!(refused_as(&judged, "event_not_allowed"), "{judged:?}");
    let reply = SupervisionReply {
        at: Hlc::new(T0 + 9_000, 0),
        node: station.node,
        staff: "站长".into(),
        notice: supervision.doc_id(),
        text: "已办结".into(),
    };
    let replied = record(
        &station,
        DocKind::Reply,
        serde_json::to_string(&reply).unwrap(),
    );
    assert_eq!(
        check(
            &station,
            &replied.get_changes(&[])[0],
            &reply.doc_id(),
            DocKind::Reply,
            &case_scope,
            None
        ),
        Judgement::Allow
    );
    let mut hall_reply = reply.clone();
    hall_reply.node = hall.node;
    let by_hall = record(
        &hall,
        DocKind::Reply,
        serde_json::to_string(&hall_reply).unwrap(),
    );
    let judged = check(
        &hall,
        &by_hall.get_changes(&[])[0],
        &hall_reply.doc_id(),
        DocKind::Reply,
        &case_scope,
        None,
    );
    assert!(refused_as(&judged, "event_not_allowed"), "{judged:?}");

    // A calendar year: a hall of the catalog publishes it; its text must be the year its
    // id names.
    let catalog_scope = Scope::catalog(&district().division);
    let text = "calendar cn-mainland\nyear 2028\nversion 2028.1\nstatus official\nsource 国务院办公厅通知\noff 2028-01-03 元旦\n";
    let year_id = DocId::parse("y-440304-2028").unwrap();
    let published = doc::new_record(
        &origin_of(&district()),
        &catalog_scope,
        DocKind::Calendar,
        &[("text", text.into())],
        T0,
    )
    .unwrap();
    assert_eq!(
        check(
            &district(),
            &published.get_changes(&[])[0],
            &year_id,
            DocKind::Calendar,
            &catalog_scope,
            None
        ),
        Judgement::Allow
    );
    let judged = check(
        &station,
        &published.get_changes(&[])[0],
        &year_id,
        DocKind::Calendar,
        &catalog_scope,
        None,
    );
    assert!(matches!(judged, Judgement::Refuse(_)), "{judged:?}");
    let wrong_year = DocId::parse("y-440304-2029").unwrap();
    let judged = check(
        &district(),
        &published.get_changes(&[])[0],
        &wrong_year,
        DocKind::Calendar,
        &catalog_scope,
        None,
    );
    assert!(refused_as(&judged, "forbidden_effect"), "{judged:?}");
}

/// What people typed at another node is checked again on arrival, by the one text rule
/// (`domain::text`): a hostile or older node cannot put a control or layout character into
/// the notices, pages, exports and logs of every node above it.
#[test]
fn text_typed_elsewhere_is_checked_again_on_arrival() {
    let station = station();
    let (id, scope, held) = held_case();
    let suspend = |reason: &str| {
        event(
            &station,
            T0 + 3000,
            Action::Suspend {
                procedure: "听证".into(),
                reason: reason.into(),
            },
        )
    };
    // Honest text passes, line breaks included where the field has lines.
    let honest = add(&station, &held, &[suspend("按规定\n办理")]);
    let judged = check(&station, &honest, &id, DocKind::Case, &scope, Some(&held));
    assert_eq!(judged, Judgement::Allow);
    // A right-to-left override in a reason, an escape in the staff name, a line break in
    // the counter: each refused for what it does.
    let mut escaped = suspend("按规定办理");
    escaped.staff = "x\u{1b}[2J".into();
    let mut broken = suspend("按规定办理");
    broken.counter = "1号\n窗口".into();
    for bad in [suspend("附件.txt\u{202E}exe"), escaped, broken] {
        let change = add(&station, &held, &[bad]);
        let judged = check(&station, &change, &id, DocKind::Case, &scope, Some(&held));
        assert!(refused_as(&judged, "forbidden_effect"), "{judged:?}");
    }
    // A case created with a NUL in its intake note.
    let mut bad_intake = intake(&station);
    bad_intake.note = "备注\u{0}".into();
    let (bad_id, created) = doc::new_case(&origin_of(&station), &scope, &bad_intake).unwrap();
    let judged = check(
        &station,
        &created.get_changes(&[])[0],
        &bad_id,
        DocKind::Case,
        &scope,
        None,
    );
    assert!(refused_as(&judged, "forbidden_effect"), "{judged:?}");
}

/// An event a stand-in (B角, §7.4.1.3) records names another staff member by a sign-in
/// name; naming the actor or something that is no name is refused on arrival.
#[test]
fn an_event_for_another_staff_member_names_one() {
    let station = station();
    let (id, scope, held) = held_case();
    let for_whom = |first: Option<&str>| {
        let mut e = event(
            &station,
            T0 + 3000,
            Action::Suspend {
                procedure: "听证".into(),
                reason: "按规定办理".into(),
            },
        );
        e.stand_in_for = first.map(str::to_string);
        e
    };
    for (first, allowed) in [
        (None, true),
        (Some("li.ming"), true),
        (Some("x"), false),
        (Some("li.ming\u{202E}"), false),
    ] {
        let change = add(&station, &held, &[for_whom(first)]);
        let judged = check(&station, &change, &id, DocKind::Case, &scope, Some(&held));
        assert_eq!(judged == Judgement::Allow, allowed, "{first:?}: {judged:?}");
    }
    // The actor's own name ("x" in these events) is no stand-in's.
    let mut own = for_whom(Some("wang"));
    own.staff = "wang".into();
    let change = add(&station, &held, &[own]);
    let judged = check(&station, &change, &id, DocKind::Case, &scope, Some(&held));
    assert!(refused_as(&judged, "forbidden_effect"), "{judged:?}");
}

/// A notification (通报, §10.3) lives in its hall's catalog scope: only that hall
/// publishes it, by a role the engine lets publish, naming stations below it, once; a
/// hall above, a station, another's name, a worker's role, a station elsewhere and any
/// later change are all refused.
#[test]
fn notifications_come_only_from_the_hall_of_their_scope_and_never_change() {
    use crate::domain::supervision::Notification;
    let hall = district();
    let scope = Scope::catalog(&hall.division);
    let honest = Notification {
        at: Hlc::new(T0 + 1_000, 0),
        node: hall.node,
        staff: "督办员".into(),
        role: "supervisor".into(),
        month: "2026-04".into(),
        title: "2026年4月政务服务情况通报".into(),
        text: "逾期办件较多的站点限期整改。".into(),
        figures: "assessment 2026-04 by station".into(),
        rectify: vec![station().division],
        reply_days: 5,
    };
    let publish = |by: &NodeRecord, n: &Notification, scope: &Scope| {
        let document = doc::new_record(
            &origin_of(by),
            scope,
            DocKind::Notification,
            &[("body", serde_json::to_string(n).unwrap())],
            T0,
        )
        .unwrap();
        let change = document.get_changes(&[])[0].clone();
        (document, change)
    };
    let (published, creation) = publish(&hall, &honest, &scope);
    assert_eq!(
        check(
            &hall,
            &creation,
            &honest.doc_id(),
            DocKind::Notification,
            &scope,
            None
        ),
        Judgement::Allow
    );
    // (who writes, what it says, in which scope, the refusal's code)
    let by = |node: &NodeRecord| Notification {
        node: node.node,
        ..honest.clone()
    };
    let elsewhere = record(9, NodeRole::District, "440305");
    let table: Vec<(NodeRecord, Notification, Scope, &str)> = vec![
        // The sub-district below writes into the district's scope.
        (sub(), by(&sub()), scope.clone(), "not_authorized"),
        // A station publishes in its own catalog scope.
        (
            station(),
            by(&station()),
            Scope::catalog(&station().division),
            "not_authorized",
        ),
        // Another district into this one's scope.
        (
            elsewhere.clone(),
            by(&elsewhere),
            scope.clone(),
            "not_authorized",
        ),
        // In the district's own scope but in the sub-district's name.
        (hall.clone(), by(&sub()), scope.clone(), "forbidden_effect"),
        // A worker's or a lead's, which the engine does not let publish.
        (
            hall.clone(),
            Notification {
                role: "worker".into(),
                ..honest.clone()
            },
            scope.clone(),
            "event_not_allowed",
        ),
        (
            hall.clone(),
            Notification {
                role: "nobody".into(),
                ..honest.clone()
            },
            scope.clone(),
            "event_not_allowed",
        ),
        // Naming a station of another district, or the hall itself.
        (
            hall.clone(),
            Notification {
                rectify: vec![DivisionCode::parse("440305001001").unwrap()],
                ..honest.clone()
            },
            scope.clone(),
            "forbidden_effect",
        ),
        (
            hall.clone(),
            Notification {
                rectify: vec![hall.division.clone()],
                ..honest.clone()
            },
            scope.clone(),
            "forbidden_effect",
        ),
        // A month that is not one, or text with a bidi override.
        (
            hall.clone(),
            Notification {
                month: "2026-13".into(),
                ..honest.clone()
            },
            scope.clone(),
            "forbidden_effect",
        ),
        (
            hall.clone(),
            Notification {
                text: "\u{202E}整改".into(),
                ..honest.clone()
            },
            scope.clone(),
            "forbidden_effect",
        ),
    ];
    for (author, notification, scope, code) in table {
        let (_, change) = publish(&author, &notification, &scope);
        let judged = check(
            &author,
            &change,
            &notification.doc_id(),
            DocKind::Notification,
            &scope,
            None,
        );
        assert!(
            refused_as(&judged, code),
            "{} {:?}: {judged:?}",
            author.division,
            notification.role
        );
    }
    // Once published it never changes, not even by its hall.
    let edit = raw(&hall, &published, |tx| {
        tx.put(ROOT, "body", "{}")?;
        Ok(())
    });
    let judged = check(
        &hall,
        &edit,
        &honest.doc_id(),
        DocKind::Notification,
        &scope,
        Some(&published),
    );
    assert!(refused_as(&judged, "forbidden_effect"), "{judged:?}");
}

/// A hall publishes only the items handled at the levels it authors (§8.4.2): the level
/// is the 19th character of the implementation code, and every receiver checks it.
#[test]
fn a_hall_publishes_only_items_at_its_levels() {
    use crate::domain::codes::ImplCode;
    let sub = sub();
    let scope = Scope::catalog(&sub.division);
    let table = [
        ("11440399990000017K5000599301000", true),
        ("11440399990000017K4000599301000", false),
        ("11440399990000017K6000599301000", false),
    ];
    for (code, allowed) in table {
        let mut item = sample_item();
        item.impl_code = ImplCode::parse(code).unwrap();
        let (id, created) = doc::new_item(&origin_of(&sub), &scope, &item, T0).unwrap();
        let creation = created.get_changes(&[])[0].clone();
        let judged = check(&sub, &creation, &id, DocKind::Item, &scope, None);
        if allowed {
            assert_eq!(judged, Judgement::Allow, "{code}");
        } else {
            assert!(
                refused_as(&judged, "forbidden_effect"),
                "{code}: {judged:?}"
            );
        }
    }
}

/// An attachment comes only from the hall whose catalog scope holds it, carries exactly
/// the file its record and id describe, and is never changed, not even by its hall.
#[test]
fn attachments_come_only_from_their_hall_hold_their_file_and_never_change() {
    use crate::domain::attachment::{Attachment, ContentType};
    let hall = district();
    let scope = Scope::catalog(&hall.division);
    let pdf = b"%PDF-1.4\n% blank form\n%%EOF\n".to_vec();
    let honest = Attachment::check("空表.pdf", "application/pdf", &pdf).unwrap();
    let publish = |by: &NodeRecord, meta: &Attachment, bytes: &[u8], scope: &Scope| {
        let (_, document) = doc::new_attachment(&origin_of(by), scope, meta, bytes, T0).unwrap();
        let change = document.get_changes(&[])[0].clone();
        (document, change)
    };
    let id = honest.doc_id(&hall.division);
    let (published, creation) = publish(&hall, &honest, &pdf, &scope);
    assert_eq!(
        check(&hall, &creation, &id, DocKind::Attachment, &scope, None),
        Judgement::Allow
    );
    let elsewhere = record(9, NodeRole::District, "440305");
    let html = b"<html><script>alert(1)</script></html>".to_vec();
    let as_html = Attachment {
        sha256: crate::ids::hex(&<sha2::Sha256 as sha2::Digest>::digest(&html)),
        size: html.len() as u64,
        ..honest.clone()
    };
    // (who writes, its record, its bytes, in which scope, under which id, the refusal)
    type Forgery = (NodeRecord, Attachment, Vec<u8>, Scope, DocId, &'static str);
    let table: Vec<Forgery> = vec![
        // A station, in the hall's scope and in its own.
        (
            station(),
            honest.clone(),
            pdf.clone(),
            scope.clone(),
            id.clone(),
            "not_authorized",
        ),
        (
            station(),
            honest.clone(),
            pdf.clone(),
            Scope::catalog(&station().division),
            honest.doc_id(&station().division),
            "not_authorized",
        ),
        // The sub-district below, and another district, into this district's scope.
        (
            sub(),
            honest.clone(),
            pdf.clone(),
            scope.clone(),
            id.clone(),
            "not_authorized",
        ),
        (
            elsewhere,
            honest.clone(),
            pdf.clone(),
            scope.clone(),
            id.clone(),
            "not_authorized",
        ),
        // Its own hall, but other bytes than the record's digest, or a web page declared
        // as a PDF with a digest that matches it.
        (
            hall.clone(),
            honest.clone(),
            b"%PDF-1.4 another file".to_vec(),
            scope.clone(),
            id.clone(),
            "forbidden_effect",
        ),
        (
            hall.clone(),
            as_html.clone(),
            html.clone(),
            scope.clone(),
            as_html.doc_id(&hall.division),
            "forbidden_effect",
        ),
        // A type not taken, under a name that turns around.
        (
            hall.clone(),
            Attachment {
                name: "form\u{202E}fdp.exe".into(),
                ..honest.clone()
            },
            pdf.clone(),
            scope.clone(),
            id.clone(),
            "forbidden_effect",
        ),
        // Under another file's id.
        (
            hall.clone(),
            honest.clone(),
            pdf.clone(),
            scope.clone(),
            as_html.doc_id(&hall.division),
            "forbidden_effect",
        ),
    ];
    for (author, meta, bytes, scope, id, code) in table {
        let (_, change) = publish(&author, &meta, &bytes, &scope);
        let judged = check(&author, &change, &id, DocKind::Attachment, &scope, None);
        assert!(
            refused_as(&judged, code),
            "{} {}: {judged:?}",
            author.division,
            meta.name
        );
    }
    assert_eq!(ContentType::parse("text/html"), None);
    // Once published it never changes, not even by its hall.
    let edit = raw(&hall, &published, |tx| {
        tx.put(ROOT, "content", b"%PDF-1.4 swapped".to_vec())?;
        Ok(())
    });
    let judged = check(
        &hall,
        &edit,
        &id,
        DocKind::Attachment,
        &scope,
        Some(&published),
    );
    assert!(refused_as(&judged, "forbidden_effect"), "{judged:?}");
}

/// A case's intake may only choose situations its item version has, each once: every
/// receiver checks it against the snapshot the intake carries.
#[test]
fn an_intake_chooses_only_its_items_situations() {
    let station = station();
    let scope = Scope::cases(&station.division);
    let create = |intake: &Intake| {
        let (id, document) = doc::new_case(&origin_of(&station), &scope, intake).unwrap();
        (id, document.get_changes(&[])[0].clone())
    };
    let mut chosen = intake(&station);
    chosen.situations = vec!["申请人为残疾人".into()];
    let (id, change) = create(&chosen);
    assert_eq!(
        check(&station, &change, &id, DocKind::Case, &scope, None),
        Judgement::Allow
    );
    for situations in [
        vec!["没有的情形".to_string()],
        vec!["申请人为残疾人".into(), "申请人为残疾人".into()],
    ] {
        let mut forged = intake(&station);
        forged.situations = situations.clone();
        let (id, change) = create(&forged);
        let judged = check(&station, &change, &id, DocKind::Case, &scope, None);
        assert!(
            refused_as(&judged, "forbidden_effect"),
            "{situations:?}: {judged:?}"
        );
    }
}

/// A department (进驻部门, §9.6) lives in its hall's catalog scope: only that hall, by an
/// admin, defines it, with seals certified by its own key, and republishes it only to add
/// a seal. A forged seal key, a station, a sibling or foreign hall, a wrong role, another
/// node's name, and a later version that drops a seal are all refused.
#[test]
fn departments_come_only_from_their_hall_with_seals_it_certified() {
    use crate::domain::department::{Department, testing::certify};
    let hall = sub();
    let hall_key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
    let seal = |seed: u8| {
        ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
            .verifying_key()
            .to_bytes()
    };
    let scope = Scope::catalog(&hall.division);
    let honest = Department {
        code: "MZJ".into(),
        name: "民政局".into(),
        hall: hall.node,
        division: hall.division.clone(),
        role: "admin".into(),
        seals: vec![certify(
            &hall_key,
            &hall.division,
            "MZJ",
            "民政局",
            &seal(40),
            1,
        )],
    };
    let id = honest.doc_id().unwrap();
    let publish = |by: &NodeRecord, d: &Department, scope: &Scope| {
        let document = doc::new_record(
            &origin_of(by),
            scope,
            DocKind::Department,
            &[("body", serde_json::to_string(d).unwrap())],
            T0,
        )
        .unwrap();
        let change = document.get_changes(&[])[0].clone();
        (document, change)
    };
    let (published, creation) = publish(&hall, &honest, &scope);
    assert_eq!(
        check(&hall, &creation, &id, DocKind::Department, &scope, None),
        Judgement::Allow
    );
    let sibling = record(6, NodeRole::Subdistrict, "440304002");
    let foreign = record(9, NodeRole::District, "440305");
    let in_name_of = |node: &NodeRecord| Department {
        hall: node.node,
        division: node.division.clone(),
        ..honest.clone()
    };
    let mut forged_key = honest.clone();
    forged_key.seals[0].public_key = seal(66);
    let by_sibling_key = Department {
        seals: vec![certify(
            &ed25519_dalek::SigningKey::from_bytes(&[6; 32]),
            &hall.division,
            "MZJ",
            "民政局",
            &seal(40),
            1,
        )],
        ..honest.clone()
    };
    // (who writes, what it says, in which scope, the refusal's code)
    let table: Vec<(NodeRecord, Department, Scope, &str)> = vec![
        // A station, in its hall's scope and in its own.
        (
            station(),
            in_name_of(&station()),
            scope.clone(),
            "not_authorized",
        ),
        (
            station(),
            in_name_of(&station()),
            Scope::catalog(&station().division),
            "not_authorized",
        ),
        // A sibling hall and a foreign district into this hall's scope.
        (
            sibling.clone(),
            in_name_of(&sibling),
            scope.clone(),
            "not_authorized",
        ),
        (
            foreign.clone(),
            in_name_of(&foreign),
            scope.clone(),
            "not_authorized",
        ),
        // The district above writes into the sub-district's scope.
        (
            district(),
            in_name_of(&district()),
            scope.clone(),
            "not_authorized",
        ),
        // In the hall's own scope but in another node's name.
        (
            hall.clone(),
            in_name_of(&sibling),
            scope.clone(),
            "forbidden_effect",
        ),
        // A seal key the hall never certified, and a certificate by another hall's key.
        (hall.clone(), forged_key, scope.clone(), "forbidden_effect"),
        (
            hall.clone(),
            by_sibling_key,
            scope.clone(),
            "forbidden_effect",
        ),
        // A lead's or a department member's, which the engine does not let manage.
        (
            hall.clone(),
            Department {
                role: "lead".into(),
                ..honest.clone()
            },
            scope.clone(),
            "event_not_allowed",
        ),
        (
            hall.clone(),
            Department {
                role: "department".into(),
                ..honest.clone()
            },
            scope.clone(),
            "event_not_allowed",
        ),
    ];
    for (author, department, scope, code) in table {
        let (_, change) = publish(&author, &department, &scope);
        let judged = check(&author, &change, &id, DocKind::Department, &scope, None);
        assert!(
            refused_as(&judged, code),
            "{} {:?}: {judged:?}",
            author.division,
            department.role
        );
    }
    // A rotation adds key 2 and keeps key 1: allowed; dropping key 1 or renaming is not.
    let mut rotated = honest.clone();
    rotated.seals.push(certify(
        &hall_key,
        &hall.division,
        "MZJ",
        "民政局",
        &seal(41),
        2,
    ));
    let republish = |by: &NodeRecord, d: &Department| {
        raw(by, &published, |tx| {
            tx.put(ROOT, "body", serde_json::to_string(d).unwrap())?;
            Ok(())
        })
    };
    let judged = check(
        &hall,
        &republish(&hall, &rotated),
        &id,
        DocKind::Department,
        &scope,
        Some(&published),
    );
    assert_eq!(judged, Judgement::Allow);
    let mut dropped = rotated.clone();
    dropped.seals.remove(0);
    dropped.seals[0] = certify(&hall_key, &hall.division, "MZJ", "民政局", &seal(41), 1);
    for (author, department, code) in [
        (hall.clone(), dropped, "forbidden_effect"),
        // The district above rotates the sub-district's department.
        (district(), rotated.clone(), "not_authorized"),
    ] {
        let judged = check(
            &author,
            &republish(&author, &department),
            &id,
            DocKind::Department,
            &scope,
            Some(&published),
        );
        assert!(refused_as(&judged, code), "{judged:?}");
    }
    // Anything besides republishing its body.
    let edit = raw(&hall, &published, |tx| {
        tx.put(ROOT, "other", "x")?;
        Ok(())
    });
    let judged = check(
        &hall,
        &edit,
        &id,
        DocKind::Department,
        &scope,
        Some(&published),
    );
    assert!(refused_as(&judged, "forbidden_effect"), "{judged:?}");
}

/// §5.7.2 by effect: on a case whose item a department decides, a decision event is
/// applied only from the department's hall; the station (even on the department's
/// behalf), the district above and a sibling hall are refused, judged by the case's own
/// intake and the author node.
#[test]
fn a_decision_on_a_department_decided_case_comes_only_from_its_hall() {
    let station = station();
    let scope = Scope::cases(&station.division);
    let (id, held) =
        doc::new_case(&origin_of(&station), &scope, &department_decided(&station)).unwrap();
    let held = accepted_by(&station, &held);
    let on_behalf = |by: &NodeRecord| {
        let mut e = decide(by);
        if let Action::Decide { on_behalf_of, .. } = &mut e.action {
            *on_behalf_of = Some("民政局".into());
        }
        e
    };
    let sibling = record(6, NodeRole::Subdistrict, "440304002");
    for (author, event, expected) in [
        (sub(), decide(&sub()), None),
        (station.clone(), decide(&station), Some("event_not_allowed")),
        (
            station.clone(),
            on_behalf(&station),
            Some("event_not_allowed"),
        ),
        (district(), decide(&district()), Some("event_not_allowed")),
        (sibling.clone(), decide(&sibling), Some("not_authorized")),
    ] {
        let change = add(&author, &held, &[event]);
        let judged = check(&author, &change, &id, DocKind::Case, &scope, Some(&held));
        match expected {
            None => assert_eq!(judged, Judgement::Allow, "{}", author.division),
            Some(code) => assert!(refused_as(&judged, code), "{}: {judged:?}", author.division),
        }
    }
}

/// The engine judges a batch with one [`Memo`]: each case by its own item's rules, read
/// once, the same verdicts as judging every change afresh; a district may decide a plain
/// case but not one its item gives to a department of the sub-district.
#[test]
fn one_memo_judges_each_case_by_its_own_item() {
    let station = station();
    let (plain_id, scope, plain) = held_case();
    let mut decided = department_decided(&station);
    decided.submitted_at = Hlc::new(T0 + 1, 0);
    let (department_id, department) =
        doc::new_case(&origin_of(&station), &scope, &decided).unwrap();
    assert_ne!(plain_id, department_id);
    let (plain, department) = (
        accepted_by(&station, &plain),
        accepted_by(&station, &department),
    );
    let mut memo = Memo::default();
    // Twice over: the second pass reads every rule from the memo.
    for pass in 0..2 {
        for (id, held, district_may) in [
            (&plain_id, &plain, true),
            (&department_id, &department, false),
        ] {
            for (author, may) in [(sub(), true), (district(), district_may)] {
                let change = add(&author, held, &[decide(&author)]);
                let envelope = envelope_for(&author, id, DocKind::Case, &scope, &change);
                let fresh = judge(&author, &envelope, &change, Some(held), &never_refused);
                let remembered = judge_remembering(
                    &author,
                    &envelope,
                    &change,
                    Some(held),
                    &never_refused,
                    None,
                    &mut memo,
                );
                assert_eq!(remembered, fresh, "pass {pass}, {id}, {}", author.name);
                if may {
                    assert_eq!(remembered, Judgement::Allow, "{id}, {}", author.name);
                } else {
                    assert!(
                        refused_as(&remembered, "event_not_allowed"),
                        "{id}, {}: {remembered:?}",
                        author.name
                    );
                }
            }
        }
    }
    assert_eq!(memo.rules.len(), 2);
}

/// A notice sealed by a department (§9.6): signed by the department's seal key, carrying
/// the certificate its hall made; accepted from that hall, refused with a seal key the
/// hall never certified, a certificate of another hall, or from a station.
#[test]
fn a_department_sealed_notice_holds_only_under_its_halls_certificate() {
    use crate::domain::department::{NoticeSeal, testing::certify};
    use crate::domain::notice;
    use ed25519_dalek::Signer;
    let (case_id, case_scope, _) = held_case();
    let hall = sub();
    let hall_key = ed25519_dalek::SigningKey::from_bytes(&[3; 32]);
    let seal_key = ed25519_dalek::SigningKey::from_bytes(&[40; 32]);
    let certificate = |by: &ed25519_dalek::SigningKey, key: &ed25519_dalek::SigningKey| {
        certify(
            by,
            &hall.division,
            "MZJ",
            "民政局",
            &key.verifying_key().to_bytes(),
            1,
        )
    };
    let sealed = |number: &str,
                  node: &NodeRecord,
                  cert: crate::domain::department::SealCertificate,
                  signer: &ed25519_dalek::SigningKey| {
        let seal = NoticeSeal {
            department: "MZJ".into(),
            certificate: cert,
        };
        let content = serde_json::json!({
            "format": 1, "number": number, "case_id": case_id.as_str(),
            "node": node.node.to_hex(), "seal": seal,
        })
        .to_string();
        let digest = notice::digest(content.as_bytes());
        let signature = signer
            .sign(&notice::sealed_message(number, &digest))
            .to_bytes();
        let document = doc::new_record(
            &origin_of(node),
            &case_scope,
            DocKind::Notice,
            &[
                ("content", content),
                ("digest", crate::ids::hex(&digest)),
                ("seal", crate::ids::hex(&signature)),
            ],
            T0,
        )
        .unwrap();
        (
            notice::doc_id(number).unwrap(),
            document.get_changes(&[])[0].clone(),
        )
    };
    let forger = ed25519_dalek::SigningKey::from_bytes(&[66; 32]);
    let station_key = ed25519_dalek::SigningKey::from_bytes(&[4; 32]);
    let sibling_key = ed25519_dalek::SigningKey::from_bytes(&[6; 32]);
    // (author, certificate, signer, refused as)
    let table: Vec<(NodeRecord, _, &ed25519_dalek::SigningKey, Option<&str>)> = vec![
        (
            hall.clone(),
            certificate(&hall_key, &seal_key),
            &seal_key,
            None,
        ),
        // Signed by the hall's own key though it claims the department's seal.
        (
            hall.clone(),
            certificate(&hall_key, &seal_key),
            &hall_key,
            Some("forbidden_effect"),
        ),
        // A forged seal key with a certificate the hall never signed.
        (
            hall.clone(),
            {
                let mut c = certificate(&hall_key, &seal_key);
                c.public_key = forger.verifying_key().to_bytes();
                c
            },
            &forger,
            Some("forbidden_effect"),
        ),
        // A certificate by a sibling hall's key.
        (
            hall.clone(),
            certificate(&sibling_key, &seal_key),
            &seal_key,
            Some("forbidden_effect"),
        ),
        // A station certifying a "department" with its own key.
        (
            station(),
            certificate(&station_key, &seal_key),
            &seal_key,
            Some("forbidden_effect"),
        ),
    ];
    for (n, (author, cert, signer, expected)) in table.into_iter().enumerate() {
        let (id, change) = sealed(&format!("TZ3E1-00000{n}"), &author, cert, signer);
        let judged = check(&author, &change, &id, DocKind::Notice, &case_scope, None);
        match expected {
            None => assert_eq!(judged, Judgement::Allow, "row {n}"),
            Some(code) => assert!(refused_as(&judged, code), "row {n}: {judged:?}"),
        }
    }
}

/// What a receiver knows of the item a new case names: a station that drops or changes
/// the deciding department in its intake (to decide the case itself) is refused where
/// the receiver holds that item version; other versions it cannot check.
#[test]
fn a_new_case_keeps_the_deciding_department_its_catalog_names() {
    use crate::domain::department::Decider;
    let station = station();
    let scope = Scope::cases(&station.division);
    let honest_decider = Decider {
        code: "MZJ".into(),
        name: "民政局".into(),
        hall: sub().node,
    };
    let facts = ItemFacts {
        version: intake(&station).item.version,
        decided_by: Some("MZJ".into()),
        hall: Some(sub().node),
        parts: Vec::new(),
        fees: Vec::new(),
    };
    let with = |decider: Option<Decider>| {
        let mut i = intake(&station);
        i.item.decided_by = decider;
        i
    };
    let older = ItemFacts {
        version: facts.version + 1,
        ..facts.clone()
    };
    let undecided = ItemFacts {
        decided_by: None,
        hall: None,
        ..facts.clone()
    };
    // (the intake's decider, what the receiver knows, refused?)
    let rows: Vec<(Option<Decider>, Option<&ItemFacts>, bool)> = vec![
        (Some(honest_decider.clone()), Some(&facts), false),
        (None, Some(&facts), true),
        (
            Some(Decider {
                code: "RSJ".into(),
                ..honest_decider.clone()
            }),
            Some(&facts),
            true,
        ),
        (
            Some(Decider {
                hall: station.node,
                ..honest_decider.clone()
            }),
            Some(&facts),
            true,
        ),
        (Some(honest_decider.clone()), Some(&undecided), true),
        (None, Some(&undecided), false),
        // The receiver holds another version of the item, or none: nothing to check.
        (None, Some(&older), false),
        (None, None, false),
    ];
    for (n, (decider, known, refused)) in rows.into_iter().enumerate() {
        let (id, created) = doc::new_case(&origin_of(&station), &scope, &with(decider)).unwrap();
        let change = created.get_changes(&[])[0].clone();
        assert_eq!(
            created_case_item(&change),
            Some((intake(&station).item.impl_code.to_string(), facts.version))
        );
        let judged = judge_knowing(
            &station,
            &envelope_for(&station, &id, DocKind::Case, &scope, &change),
            &change,
            None,
            &never_refused,
            known,
        );
        if refused {
            assert!(
                refused_as(&judged, "forbidden_effect"),
                "row {n}: {judged:?}"
            );
        } else {
            assert_eq!(judged, Judgement::Allow, "row {n}");
        }
    }
}

/// 并联审批 (§7.5; 行政许可法 §26): a station's combined case and its sub-cases, each bound
/// to its part's department. The station's honest creation passes; a sub-case bound to
/// another department or to none (so the station could decide it), to a part the item
/// lacks, under a longer limit, or to a parent that is not the station's; a whole longer
/// than 45 days; parts that differ from the catalog's; a decision on a part by the station
/// or on the whole by anyone; and a rebinding after creation are all refused.
#[test]
fn a_combined_cases_parts_are_bound_to_their_departments_and_decided_only_there() {
    use crate::domain::combined::PartSnapshot;
    use crate::domain::department::Decider;
    let station = station();
    let scope = Scope::cases(&station.division);
    let hall = sub();
    let other_hall = record(6, NodeRole::Subdistrict, "440304002");
    let decider = |code: &str, hall: &NodeRecord| Decider {
        code: code.into(),
        name: format!("{code}局"),
        hall: hall.node,
    };
    let mut parent = intake(&station);
    parent.item.parts = ["GHJ", "XFJ", "HBJ"]
        .iter()
        .map(|code| PartSnapshot {
            decider: decider(code, &hall),
            name: format!("{code} 审查"),
            limit_days: 20,
        })
        .collect();
    let parent_id = parent.doc_id();
    let part =
        |index: usize| parent.part(parent_id.as_str(), index, Hlc::new(T0, 1 + index as u16));
    let facts = ItemFacts {
        version: parent.item.version,
        decided_by: None,
        hall: None,
        parts: ["GHJ", "XFJ", "HBJ"]
            .iter()
            .map(|c| (c.to_string(), Some(hall.node)))
            .collect(),
        fees: Vec::new(),
    };
    let reordered = ItemFacts {
        parts: ["XFJ", "GHJ", "HBJ"]
            .iter()
            .map(|c| (c.to_string(), Some(hall.node)))
            .collect(),
        ..facts.clone()
    };
    let no_parts = ItemFacts {
        parts: Vec::new(),
        ..facts.clone()
    };
    type Edit = Box<dyn Fn(&mut Intake)>;
    // (what, the intake created, what the receiver knows of the item, refused?)
    let rows: Vec<(&str, Intake, Edit, Option<&ItemFacts>, bool)> = vec![
        (
            "the parent",
            parent.clone(),
            Box::new(|_| {}),
            Some(&facts),
            false,
        ),
        ("a part", part(1), Box::new(|_| {}), Some(&facts), false),
        (
            "a part, the item unknown here",
            part(2),
            Box::new(|_| {}),
            None,
            false,
        ),
        (
            "a part bound to another department",
            part(1),
            Box::new(move |i| i.item.decided_by = Some(decider("GHJ", &sub()))),
            None,
            true,
        ),
        (
            "a part bound to no department, for the station to decide",
            part(1),
            Box::new(|i| i.item.decided_by = None),
            None,
            true,
        ),
        (
            "a part bound to its department at another hall",
            part(1),
            Box::new(move |i| i.item.decided_by = Some(decider("XFJ", &other_hall))),
            None,
            true,
        ),
        (
            "a part the item does not have",
            part(1),
            Box::new(|i| i.part_of.as_mut().unwrap().index = 7),
            None,
            true,
        ),
        (
            "a part with a longer limit than its part's",
            part(1),
            Box::new(|i| i.item.legal_limit_days = 30),
            None,
            true,
        ),
        (
            "a part of another station's case",
            part(1),
            Box::new(|i| {
                i.part_of.as_mut().unwrap().parent =
                    format!("c-0000000000000001-{}", other_station().node.to_hex())
            }),
            None,
            true,
        ),
        (
            "a whole of 46 days",
            parent.clone(),
            Box::new(|i| i.item.legal_limit_days = 46),
            None,
            true,
        ),
        (
            "a whole whose parts differ from the catalog's",
            parent.clone(),
            Box::new(|_| {}),
            Some(&reordered),
            true,
        ),
        (
            "a whole whose catalog item names no parts",
            parent.clone(),
            Box::new(|_| {}),
            Some(&no_parts),
            true,
        ),
    ];
    for (what, mut made, edit, known, refused) in rows {
        edit(&mut made);
        let (id, created) = doc::new_case(&origin_of(&station), &scope, &made).unwrap();
        let change = created.get_changes(&[])[0].clone();
        let judged = judge_knowing(
            &station,
            &envelope_for(&station, &id, DocKind::Case, &scope, &change),
            &change,
            None,
            &never_refused,
            known,
        );
        if refused {
            assert!(
                refused_as(&judged, "forbidden_effect"),
                "{what}: {judged:?}"
            );
        } else {
            assert_eq!(judged, Judgement::Allow, "{what}");
        }
    }
    // Decisions: a part only from its department's hall; the whole from nobody.
    let accepted = |intake: &Intake| {
        let (id, held) = doc::new_case(&origin_of(&station), &scope, intake).unwrap();
        let mut copy = held.fork();
        doc::add_events(&mut copy, &origin_of(&station), &[accept(&station)]).unwrap();
        (id, copy)
    };
    let (part_id, held_part) = accepted(&part(0));
    let (whole_id, held_whole) = accepted(&parent);
    let rows = [
        (
            "the department's hall decides its part",
            &part_id,
            &held_part,
            hall.clone(),
            None,
        ),
        (
            "the station decides a part",
            &part_id,
            &held_part,
            station.clone(),
            Some("event_not_allowed"),
        ),
        (
            "the district above decides a part",
            &part_id,
            &held_part,
            district(),
            Some("event_not_allowed"),
        ),
        (
            "the station decides the whole",
            &whole_id,
            &held_whole,
            station.clone(),
            Some("event_not_allowed"),
        ),
        (
            "the departments' hall decides the whole",
            &whole_id,
            &held_whole,
            hall.clone(),
            Some("event_not_allowed"),
        ),
    ];
    for (what, id, held, author, expected) in rows {
        let change = add(&author, held, &[decide(&author)]);
        let judged = check(&author, &change, id, DocKind::Case, &scope, Some(held));
        match expected {
            None => assert_eq!(judged, Judgement::Allow, "{what}"),
            Some(code) => assert!(refused_as(&judged, code), "{what}: {judged:?}"),
        }
    }
    // A rebinding after creation: the station rewrites its part's intake to bind it to
    // no department (or to another part) and is refused, whatever it writes.
    for rebound in [
        {
            let mut i = part(0);
            i.item.decided_by = None;
            i
        },
        part(1),
    ] {
        let text = serde_json::to_string(&rebound).unwrap();
        let change = raw(&station, &held_part, |tx| tx.put(ROOT, "intake", text));
        let judged = check(
            &station,
            &change,
            &part_id,
            DocKind::Case,
            &scope,
            Some(&held_part),
        );
        assert!(refused_as(&judged, "forbidden_effect"), "{judged:?}");
    }
}

/// §9.5: a payment or an exemption lands only on a case whose own item version lists the
/// fee line, above zero and within the line's fixed amount, recorded by the office that
/// received the case. Everything else a node could send with its own key is refused.
#[test]
fn payments_name_a_fee_line_of_the_cases_item_and_come_from_its_office() {
    let station = station();
    let scope = Scope::cases(&station.division);
    let fee_line = crate::domain::item::FeeLine {
        name: "工本费".into(),
        standard: "20元/证".into(),
        basis: "《居住证暂行条例》第十五条".into(),
        amount_fen: Some(2000),
    };
    let mut charging = intake(&station);
    charging.item.fees.push(fee_line);
    let (id, mut held) = doc::new_case(&origin_of(&station), &scope, &charging).unwrap();
    doc::add_events(&mut held, &origin_of(&station), &[accept(&station)]).unwrap();
    let (plain_id, mut plain) =
        doc::new_case(&origin_of(&station), &scope, &intake(&station)).unwrap();
    doc::add_events(&mut plain, &origin_of(&station), &[accept(&station)]).unwrap();
    let pay = |by: &NodeRecord, fee: &str, amount_fen: u64| {
        event(
            by,
            T0 + 3000,
            Action::Pay {
                fee: fee.into(),
                amount_fen,
                method: crate::domain::fee::PayMethod::Cash,
                receipt: "NO.0001".into(),
            },
        )
    };
    let exempt = |amount_fen: u64| {
        event(
            &station,
            T0 + 3000,
            Action::Exempt {
                fee: "工本费".into(),
                amount_fen,
                reason: "残疾人".into(),
                basis: "市政策".into(),
            },
        )
    };
    let judged = |by: &NodeRecord, doc_id: &DocId, held: &Automerge, e: Event| {
        check(
            by,
            &add(by, held, &[e]),
            doc_id,
            DocKind::Case,
            &scope,
            Some(held),
        )
    };
    // The honest ones.
    assert_eq!(
        judged(&station, &id, &held, pay(&station, "工本费", 2000)),
        Judgement::Allow
    );
    assert_eq!(judged(&station, &id, &held, exempt(2000)), Judgement::Allow);
    // A payment on an item without fees, on a line the item lacks, of nothing, beyond
    // the standard, and an exemption beyond it.
    for (what, doc_id, document, e) in [
        ("no fees", &plain_id, &plain, pay(&station, "工本费", 2000)),
        ("unknown line", &id, &held, pay(&station, "办证费", 2000)),
        ("zero", &id, &held, pay(&station, "工本费", 0)),
        ("too much", &id, &held, pay(&station, "工本费", 2001)),
        ("exempt too much", &id, &held, exempt(2001)),
    ] {
        let verdict = judged(&station, doc_id, document, e);
        assert!(
            refused_as(&verdict, "forbidden_effect"),
            "{what}: {verdict:?}"
        );
    }
    // A negative amount does not even read as a payment.
    let mut negative = serde_json::to_value(pay(&station, "工本费", 100)).unwrap();
    negative["amount_fen"] = serde_json::json!(-100);
    let key = pay(&station, "工本费", 100).id();
    let events = events_id(&held);
    let forged = raw(&station, &held, |tx| {
        tx.put(&events, key.as_str(), negative.to_string())
    });
    let verdict = check(&station, &forged, &id, DocKind::Case, &scope, Some(&held));
    assert!(
        refused_as(&verdict, "forbidden_effect"),
        "negative: {verdict:?}"
    );
    // The hall above does not collect the station's fees, and another station holds no
    // part of the case.
    let hall = sub();
    assert!(refused_as(
        &judged(&hall, &id, &held, pay(&hall, "工本费", 2000)),
        "event_not_allowed"
    ));
    let other = other_station();
    let verdict = judged(&other, &id, &held, pay(&other, "工本费", 2000));
    assert!(
        matches!(verdict, Judgement::Refuse(_)),
        "another station: {verdict:?}"
    );
}

/// §9.5.1: a new case freezes exactly the fee lines its item version lists, where the
/// receiver holds that version: a station cannot add a fee to an item that charges
/// nothing, raise one, or drop one.
#[test]
fn a_new_case_keeps_the_fee_lines_its_catalog_version_lists() {
    let station = station();
    let scope = Scope::cases(&station.division);
    let line = crate::domain::item::FeeLine {
        name: "工本费".into(),
        standard: "20元/证".into(),
        basis: "《居住证暂行条例》第十五条".into(),
        amount_fen: Some(2000),
    };
    let facts = |fees: Vec<crate::domain::item::FeeLine>| ItemFacts {
        version: intake(&station).item.version,
        decided_by: None,
        hall: None,
        parts: Vec::new(),
        fees,
    };
    let raised = crate::domain::item::FeeLine {
        amount_fen: Some(5000),
        ..line.clone()
    };
    // (the intake's fee lines, the catalog version's, refused?)
    let rows = [
        (vec![], vec![], false),
        (vec![line.clone()], vec![line.clone()], false),
        (vec![line.clone()], vec![], true),
        (vec![], vec![line.clone()], true),
        (vec![raised], vec![line.clone()], true),
    ];
    for (n, (frozen, catalog, refused)) in rows.into_iter().enumerate() {
        let mut forged = intake(&station);
        forged.item.fees = frozen;
        let (id, created) = doc::new_case(&origin_of(&station), &scope, &forged).unwrap();
        let change = created.get_changes(&[])[0].clone();
        let known = facts(catalog);
        let judged = judge_knowing(
            &station,
            &envelope_for(&station, &id, DocKind::Case, &scope, &change),
            &change,
            None,
            &never_refused,
            Some(&known),
        );
        if refused {
            assert!(
                refused_as(&judged, "forbidden_effect"),
                "row {n}: {judged:?}"
            );
        } else {
            assert_eq!(judged, Judgement::Allow, "row {n}");
        }
    }
}
