//! The SQLite store syncing with itself: two and three real stores exchanging batches
//! through their own functions (the HTTP layer is tested in tests/).

use yizhan_sync::auth::NodeRole;
use yizhan_sync::domain::case::{Action, CaseError, Status};
use yizhan_sync::domain::codes::DivisionCode;
use yizhan_sync::feed::{ParsedBatch, Pull};
use yizhan_sync::ids::Scope;

use super::Relation;
use crate::config::Synchronous;
use crate::demo::demo_catalog;
use crate::store::tests::{at, complete_application, identity, item, lead, staff};
use crate::store::{NewAction, Store, StoreError, StoreOptions};

pub(crate) struct Node {
    _dir: tempfile::TempDir,
    pub(crate) store: Store,
}

pub(crate) fn node(seed: u8, role: NodeRole, division: &str) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        identity: identity(seed, role, division),
        doc_cache: 16,
        readers: 2,
        synchronous: Synchronous::Normal,
        migrate: true,
    };
    let store = Store::open(&dir.path().join("yizhan.db"), options).unwrap();
    Node { _dir: dir, store }
}

async fn record(node: &Node) -> yizhan_sync::auth::NodeRecord {
    node.store
        .peers()
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.relation == Relation::Own)
        .unwrap()
        .record
}

/// Enrolls `child` with `parent` through a one-time code, as the CLI does.
pub(crate) async fn enroll(parent: &Node, child: &Node) {
    let child_record = record(child).await;
    // One code per child, so a hall enrolls several.
    let code = format!("code-{}", child_record.division);
    parent
        .store
        .create_enroll_code(
            code.clone(),
            child_record.division.clone(),
            child_record.role,
            at("2026-12-31"),
        )
        .await
        .unwrap();
    let above = parent
        .store
        .enroll_child(code, child_record, at("2026-03-01"))
        .await
        .unwrap();
    for (n, record) in above.chain.into_iter().enumerate() {
        let relation = if n == 0 {
            Relation::Parent
        } else {
            Relation::Ancestor
        };
        child.store.pin_peer(record, relation, None).await.unwrap();
    }
}

/// A district, a sub-district and a station enrolled below each other, the demo catalog
/// published at the district (not yet synced down): the tree most store tests start from.
pub(crate) async fn tree_with_demo_catalog() -> [Node; 3] {
    let district = node(1, NodeRole::District, "440399");
    let sub = node(2, NodeRole::Subdistrict, "440399001");
    let station = node(3, NodeRole::Station, "440399001001");
    enroll(&district, &sub).await;
    enroll(&sub, &station).await;
    let scope = Scope::catalog(&DivisionCode::parse("440399").unwrap());
    for item in demo_catalog() {
        district
            .store
            .publish_item(scope.clone(), item, at("2026-03-01"))
            .await
            .unwrap();
    }
    [district, sub, station]
}

/// One pull by `child` from `parent` and one push the other way, until both have nothing.
pub(crate) async fn sync(parent: &Node, child: &Node) -> (u32, u32) {
    let (parent_record, child_record) = (record(parent).await, record(child).await);
    let (mut down, mut up) = (0, 0);
    for _ in 0..100 {
        let pull = Pull {
            scopes: vec![],
            have: child.store.vector().await.unwrap(),
            max_bytes: 4096,
        };
        let batch = parent
            .store
            .serve_pull(child_record.clone(), pull)
            .await
            .unwrap();
        let more_down = batch.more;
        if !batch.envelopes.is_empty() {
            down += child.store.receive_batch(batch).await.unwrap().applied;
        }
        let push = Pull {
            scopes: vec![],
            have: parent.store.vector().await.unwrap(),
            max_bytes: 4096,
        };
        let batch = child
            .store
            .serve_pull(parent_record.clone(), push)
            .await
            .unwrap();
        let more_up = batch.more;
        let empty = batch.envelopes.is_empty();
        if !empty {
            up += parent.store.receive_batch(batch).await.unwrap().applied;
        }
        if !more_down && !more_up && empty {
            break;
        }
    }
    (down, up)
}

#[tokio::test]
async fn catalogs_go_down_cases_go_up_and_decisions_come_back() {
    let [district, sub, station] = tree_with_demo_catalog().await;
    sync(&district, &sub).await;
    sync(&sub, &station).await;
    let (items, total) = station.store.list_items(Default::default()).await.unwrap();
    assert_eq!(total as usize, demo_catalog().len(), "{items:?}");

    let residence = item("居住证申领");
    let id = station
        .store
        .create_case(
            residence.impl_code.to_string(),
            complete_application(&residence),
            staff(),
            at("2026-03-02"),
        )
        .await
        .unwrap();
    station
        .store
        .act_on_case(
            id.clone(),
            vec![NewAction::Accept],
            staff(),
            at("2026-03-02"),
        )
        .await
        .unwrap();
    sync(&sub, &station).await;
    sync(&district, &sub).await;
    let at_district = district
        .store
        .get_case(id.to_string(), "2026-03-03".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(at_district.summary.status, Status::Accepted);

    // The district decides once the station sent it the case (转办 to its node).
    let district_node = record(&district).await.node;
    let refused = district
        .store
        .act_on_case(
            id.clone(),
            vec![NewAction::Do(Action::Decide {
                approved: true,
                reason: String::new(),
                basis: String::new(),
                remedies: String::new(),
                on_behalf_of: None,
            })],
            staff(),
            at("2026-03-04"),
        )
        .await;
    assert!(
        matches!(
            refused,
            Err(StoreError::Case(CaseError::NotSentHere { .. }))
        ),
        "{refused:?}"
    );
    station
        .store
        .act_on_case(
            id.clone(),
            vec![NewAction::Do(Action::Transfer {
                to: "福田区行政服务中心".into(),
                reason: "需区级审批".into(),
                to_node: Some(district_node),
            })],
            staff(),
            at("2026-03-04"),
        )
        .await
        .unwrap();
    sync(&sub, &station).await;
    sync(&district, &sub).await;
    let decide = Action::Decide {
        approved: true,
        reason: String::new(),
        basis: String::new(),
        remedies: String::new(),
        on_behalf_of: None,
    };
    district
        .store
        .act_on_case(
            id.clone(),
            vec![NewAction::Do(decide)],
            staff(),
            at("2026-03-05"),
        )
        .await
        .unwrap();
    sync(&district, &sub).await;
    sync(&sub, &station).await;
    let back = station
        .store
        .get_case(id.to_string(), "2026-03-05".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(back.summary.status, Status::Decided);
    assert_eq!(back.events.len(), 3);

    // Nothing left to send, nothing quarantined, and every store rebuilds to the same rows.
    assert_eq!(sync(&district, &sub).await, (0, 0));
    for node in [&district, &sub, &station] {
        assert!(node.store.quarantined(10).await.unwrap().is_empty());
        let before = node.store.content_digest().await.unwrap();
        assert_eq!(node.store.rebuild().await.unwrap().rows_differing, 0);
        assert_eq!(node.store.content_digest().await.unwrap(), before);
    }
    // The district knows the station's key from the sub-district's registry.
    let station_id = record(&station).await.node;
    assert!(
        district
            .store
            .registry()
            .await
            .unwrap()
            .get(&station_id)
            .is_some()
    );
}

#[tokio::test]
async fn enrollment_codes_are_single_use_and_checked() {
    let district = node(1, NodeRole::District, "440399");
    let station = node(3, NodeRole::Station, "440399001001");
    let sub = node(2, NodeRole::Subdistrict, "440399001");
    let sub_record = record(&sub).await;
    district
        .store
        .create_enroll_code(
            "abc".into(),
            sub_record.division.clone(),
            NodeRole::Subdistrict,
            at("2026-03-02"),
        )
        .await
        .unwrap();
    let station_record = record(&station).await;
    let err = district
        .store
        .enroll_child("abc".into(), station_record, at("2026-03-01"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("is for a subdistrict"), "{err}");
    let err = district
        .store
        .enroll_child("abc".into(), sub_record.clone(), at("2026-03-03"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("expired"), "{err}");
    let err = district
        .store
        .enroll_child("zzz".into(), sub_record.clone(), at("2026-03-01"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not known"), "{err}");
    district
        .store
        .enroll_child("abc".into(), sub_record.clone(), at("2026-03-01"))
        .await
        .unwrap();
    let err = district
        .store
        .enroll_child("abc".into(), sub_record, at("2026-03-01"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already used"), "{err}");
}

#[tokio::test]
async fn a_revoked_station_is_refused_after_what_was_received() {
    let sub = node(2, NodeRole::Subdistrict, "440399001");
    let station = node(3, NodeRole::Station, "440399001001");
    enroll(&sub, &station).await;
    // The station needs a catalog: the sub-district authors items of its own division.
    let mut item = item("居住证申领");
    item.version = 1;
    sub.store
        .publish_item(
            Scope::catalog(&DivisionCode::parse("440399001").unwrap()),
            item.clone(),
            at("2026-03-01"),
        )
        .await
        .unwrap();
    sync(&sub, &station).await;
    let first = station
        .store
        .create_case(
            item.impl_code.to_string(),
            complete_application(&item),
            staff(),
            at("2026-03-02"),
        )
        .await
        .unwrap();
    sync(&sub, &station).await;
    let station_id = record(&station).await.node;
    sub.store
        .revoke(station_id, "PC stolen".into(), at("2026-03-03"))
        .await
        .unwrap();
    let second = station
        .store
        .create_case(
            item.impl_code.to_string(),
            complete_application(&item),
            staff(),
            at("2026-03-04"),
        )
        .await
        .unwrap();
    sync(&sub, &station).await;
    assert!(
        sub.store
            .get_case(first.to_string(), "2026-03-04".parse().unwrap())
            .await
            .is_ok()
    );
    assert!(
        sub.store
            .get_case(second.to_string(), "2026-03-04".parse().unwrap())
            .await
            .is_err()
    );
    let quarantined = sub.store.quarantined(10).await.unwrap();
    assert!(
        quarantined.iter().any(|q| q.reason.contains("revoked")),
        "{quarantined:?}"
    );
}

/// Whether the store's `outgoing` signal fired since it was last looked at (it keeps one
/// permit, so a fired signal is seen at once; one that did not fire times out).
async fn woken(store: &Store) -> bool {
    let outgoing = store.outgoing();
    tokio::time::timeout(std::time::Duration::from_millis(100), outgoing.notified())
        .await
        .is_ok()
}

/// A write triggers a sync soon: the writer wakes the sync driver after each commit with
/// changes to pass on, a local change or something new a child pushed. It stays silent for
/// what was pulled from the parent, for duplicate pushes and for writes that are no change,
/// so the driver's own sessions never set off another (no session storm).
#[tokio::test]
async fn the_writer_wakes_the_sync_driver_only_for_changes_to_pass_on() {
    let hall = node(2, NodeRole::Subdistrict, "440399001");
    let station = node(3, NodeRole::Station, "440399001001");
    enroll(&hall, &station).await;
    assert!(
        woken(&hall.store).await,
        "enrolling writes the hall's registry"
    );
    assert!(!woken(&station.store).await, "pinning peers is no change");
    let scope = Scope::catalog(&DivisionCode::parse("440399001").unwrap());
    let residence = item("居住证申领");
    hall.store
        .publish_item(scope, residence.clone(), at("2026-03-01"))
        .await
        .unwrap();
    assert!(
        woken(&hall.store).await,
        "a published item is a local change"
    );
    assert!(!woken(&hall.store).await, "one commit, one wake-up");

    // The station pulls the hall's registry and item: nothing to pass back up.
    let (hall_record, station_record) = (record(&hall).await, record(&station).await);
    let pull = Pull {
        scopes: vec![],
        have: station.store.vector().await.unwrap(),
        max_bytes: 1 << 20,
    };
    let station_node = station_record.node;
    let down = hall.store.serve_pull(station_record, pull).await.unwrap();
    let ack = station
        .store
        .receive_parsed(ParsedBatch::parse(down))
        .await
        .unwrap();
    assert!(ack.applied > 0);
    assert!(!woken(&station.store).await, "a pulled batch wakes nothing");

    // A case at the station is a local change; its push is new to the hall.
    station
        .store
        .create_case(
            residence.impl_code.to_string(),
            complete_application(&residence),
            staff(),
            at("2026-03-02"),
        )
        .await
        .unwrap();
    assert!(woken(&station.store).await, "a new case is a local change");
    let push = Pull {
        scopes: vec![],
        have: hall.store.vector().await.unwrap(),
        max_bytes: 1 << 20,
    };
    let up = station.store.serve_pull(hall_record, push).await.unwrap();
    let ack = hall
        .store
        .receive_pushed(station_node, ParsedBatch::parse(up.clone()))
        .await
        .unwrap();
    assert!(ack.applied > 0);
    assert!(woken(&hall.store).await, "a child's new changes travel on");
    let again = hall
        .store
        .receive_pushed(station_node, ParsedBatch::parse(up))
        .await
        .unwrap();
    assert_eq!((again.applied, again.duplicates > 0), (0, true));
    assert!(
        !woken(&hall.store).await,
        "a push of duplicates wakes nothing"
    );

    // The driver's own notes are writes, not changes.
    let station_id = record(&station).await.node;
    hall.store
        .record_peer_vector(station_id, station.store.vector().await.unwrap())
        .await
        .unwrap();
    assert!(!woken(&hall.store).await, "notes about peers wake nothing");
}

/// Whoever follows the change log hears of every commit that appends to it, with the runs
/// it advanced: a local change, a batch pulled from the parent and a child's push alike
/// (a hall's children must hear of what it pulled). Duplicates and notes say nothing. The
/// shared vector is never older than what was told.
#[tokio::test]
async fn every_commit_that_appends_to_the_log_is_told_with_its_runs() {
    let hall = node(2, NodeRole::Subdistrict, "440399001");
    let station = node(3, NodeRole::Station, "440399001001");
    enroll(&hall, &station).await;
    let mut at_hall = hall.store.subscribe_log();
    let mut at_station = station.store.subscribe_log();
    let told = |receiver: &mut tokio::sync::broadcast::Receiver<crate::store::Advanced>| {
        let mut runs = Vec::new();
        while let Ok(advanced) = receiver.try_recv() {
            runs.extend(
                advanced
                    .iter()
                    .map(|(scope, _, seq)| (scope.to_string(), *seq)),
            );
        }
        runs
    };
    let scope = Scope::catalog(&DivisionCode::parse("440399001").unwrap());
    let residence = item("居住证申领");
    hall.store
        .publish_item(scope.clone(), residence.clone(), at("2026-03-01"))
        .await
        .unwrap();
    let runs = told(&mut at_hall);
    assert!(
        runs.iter().any(|(s, _)| s == "catalog/440399001"),
        "{runs:?}"
    );
    let vector = hall.store.shared_vector().await.unwrap();
    let origin = hall.store.origin();
    assert_eq!(
        vector.get(&scope, &origin),
        runs.iter()
            .find(|(s, _)| s == "catalog/440399001")
            .unwrap()
            .1
    );

    // Pulled by the station: told there too.
    let pull = Pull {
        scopes: vec![],
        have: station.store.vector().await.unwrap(),
        max_bytes: 1 << 20,
    };
    let down = hall
        .store
        .serve_pull(record(&station).await, pull)
        .await
        .unwrap();
    station
        .store
        .receive_parsed(ParsedBatch::parse(down.clone()))
        .await
        .unwrap();
    let runs = told(&mut at_station);
    assert!(
        runs.iter().any(|(s, _)| s == "catalog/440399001"),
        "{runs:?}"
    );
    assert_eq!(
        station
            .store
            .shared_vector()
            .await
            .unwrap()
            .get(&scope, &origin),
        hall.store
            .shared_vector()
            .await
            .unwrap()
            .get(&scope, &origin)
    );
    // The same batch again appends nothing and tells nothing.
    station
        .store
        .receive_parsed(ParsedBatch::parse(down))
        .await
        .unwrap();
    assert_eq!(told(&mut at_station), vec![]);
    station
        .store
        .record_peer_vector(record(&hall).await.node, hall.store.vector().await.unwrap())
        .await
        .unwrap();
    assert_eq!(told(&mut at_station), vec![]);
}

/// A calendar year is data: the district publishes the State Council's 2027 notice, it
/// reaches the station with the catalog, and the station's open case is counted on it at
/// once (issue 13, point 13); the station cannot publish one itself.
#[tokio::test]
async fn a_published_calendar_year_recounts_open_deadlines_below() {
    use yizhan_sync::domain::calendar::{Calendar, Deadlines};
    let [district, sub, station] = tree_with_demo_catalog().await;
    sync(&district, &sub).await;
    sync(&sub, &station).await;

    // An acceptance day whose committed deadline the official 2027 figures move.
    let residence = item("居住证申领");
    let official = Calendar::china_with(&[crate::store::calendars::OFFICIAL_2027]).unwrap();
    let due = |calendar: &Calendar, day: yizhan_sync::domain::calendar::Date| {
        let limits = yizhan_sync::domain::calendar::Limits {
            committed_days: residence.committed_limit_days,
            legal_days: residence.legal_limit_days,
            yellow: residence.yellow,
        };
        Deadlines::compute(calendar, day, limits, &[], 0).committed_due
    };
    let accepted = (0..40)
        .map(|n| {
            "2027-01-04"
                .parse::<yizhan_sync::domain::calendar::Date>()
                .unwrap()
                .add_days(n)
        })
        .find(|day| {
            Calendar::china().is_working_day(*day)
                && due(Calendar::china(), *day) != due(&official, *day)
        })
        .expect("the official figures move some deadline");
    let when = at(&accepted.to_string()) + 10 * 3_600_000;
    let id = station
        .store
        .create_case(
            residence.impl_code.to_string(),
            complete_application(&residence),
            staff(),
            when,
        )
        .await
        .unwrap();
    station
        .store
        .act_on_case(id.clone(), vec![NewAction::Accept], staff(), when)
        .await
        .unwrap();
    let before = station
        .store
        .get_case(id.to_string(), accepted)
        .await
        .unwrap();
    assert_eq!(
        before.summary.committed_due.as_deref(),
        Some(due(Calendar::china(), accepted).to_string().as_str())
    );
    assert!(before.calendar.as_deref().unwrap().contains("2027.0p"));

    // A station does not publish calendars.
    let refused = station
        .store
        .publish_calendar_year(crate::store::calendars::OFFICIAL_2027.into(), when)
        .await;
    assert!(
        matches!(refused, Err(crate::store::StoreError::Forbidden(_))),
        "{refused:?}"
    );

    let published = district
        .store
        .publish_calendar_year(crate::store::calendars::OFFICIAL_2027.into(), when)
        .await
        .unwrap();
    assert_eq!((published.year, published.official), (2027, true));
    assert!(district.store.calendar().version().contains("2027.1"));
    sync(&district, &sub).await;
    sync(&sub, &station).await;
    let after = station
        .store
        .get_case(id.to_string(), accepted)
        .await
        .unwrap();
    assert_eq!(
        after.summary.committed_due.as_deref(),
        Some(due(&official, accepted).to_string().as_str()),
        "the open case is counted on the published year"
    );
    assert!(after.calendar.as_deref().unwrap().contains("2027.1"));
    assert!(station.store.calendar().version().contains("2027.1"));
    assert_eq!(station.store.calendar_years().len(), 1);
    // The case went up before the year came down; the district counts it the same way.
    sync(&sub, &station).await;
    sync(&district, &sub).await;
    let at_district = district
        .store
        .get_case(id.to_string(), accepted)
        .await
        .unwrap();
    assert_eq!(
        at_district.summary.committed_due,
        after.summary.committed_due
    );
    // Publishing the same text again changes nothing and says so.
    assert!(matches!(
        district
            .store
            .publish_calendar_year(crate::store::calendars::OFFICIAL_2027.into(), when)
            .await,
        Err(crate::store::StoreError::Conflict(_))
    ));
    for node in [&district, &sub, &station] {
        assert!(node.store.quarantined(10).await.unwrap().is_empty());
        assert_eq!(node.store.rebuild().await.unwrap().rows_differing, 0);
    }
}

/// Issue 14: a receipt sealed at the station is a document that reaches the district
/// unchanged; a supervision notice from the district reaches the station, is answered
/// there, and the answer is seen at the district and the sub-district between; one left
/// unanswered is overdue at both halls once its deadline has passed.
#[tokio::test]
async fn notices_and_supervision_travel_the_tree() {
    use yizhan_sync::domain::supervision::ReplyState;

    use crate::store::{Issuer, NewSupervision, Role, Staff, SupervisionFilter};
    let [district, sub, station] = tree_with_demo_catalog().await;
    sync(&district, &sub).await;
    sync(&sub, &station).await;
    let residence = item("居住证申领");
    let id = station
        .store
        .create_case(
            residence.impl_code.to_string(),
            complete_application(&residence),
            staff(),
            at("2026-03-02"),
        )
        .await
        .unwrap();
    station
        .store
        .act_on_case(
            id.clone(),
            vec![NewAction::Accept],
            staff(),
            at("2026-03-02"),
        )
        .await
        .unwrap();
    let issuer = Issuer {
        office: "示例社区".into(),
        counter: "1号窗口".into(),
        staff: "李敏".into(),
    };
    let receipt = station
        .store
        .issue_case_notice(
            issuer,
            id.clone(),
            crate::notice::NoticeKind::Receipt,
            None,
            at("2026-03-02") + 1000,
        )
        .await
        .unwrap();
    sync(&sub, &station).await;
    sync(&district, &sub).await;
    let held = district
        .store
        .notice(receipt.content.number.clone())
        .await
        .unwrap()
        .expect("the receipt reached the district");
    assert_eq!(held.content, receipt.content);
    assert_eq!(
        (held.digest, held.signature),
        (receipt.digest, receipt.signature)
    );
    let station_record = record(&station).await;
    let seal = crate::notice::QrSeal {
        node: held.content.node.clone(),
        number: held.content.number.clone(),
        digest: held.digest,
        signature: held.signature,
    };
    assert!(crate::notice::signature_holds(
        &seal,
        &station_record.public_key
    ));
    assert_eq!(
        district
            .store
            .notices_of_case(id.to_string())
            .await
            .unwrap()
            .len(),
        1
    );

    // The district supervises the case and the station; only a supervisor or an admin
    // issues, only the station's lead or admin replies.
    let supervisor = Staff {
        username: "dubanyuan".into(),
        counter: String::new(),
        role: Role::Supervisor,
    };
    let station_division = DivisionCode::parse("440399001001").unwrap();
    let new = |case: Option<yizhan_sync::ids::DocId>, days| NewSupervision {
        station: station_division.clone(),
        case,
        reason: "已超过承诺时限".into(),
        todo: "三个工作日内办结并说明原因".into(),
        reply_days: days,
    };
    let refused = district
        .store
        .issue_supervision(new(Some(id.clone()), 3), staff(), at("2026-03-03"))
        .await
        .unwrap_err();
    assert_eq!(refused.words().code, "supervision_supervisors_only");
    let refused = station
        .store
        .issue_supervision(new(None, 3), lead(), at("2026-03-03"))
        .await
        .unwrap_err();
    assert_eq!(refused.words().code, "supervision_not_above");
    // Tuesday 2026-03-03: three working days, due Friday 03-06.
    let about_case = district
        .store
        .issue_supervision(
            new(Some(id.clone()), 3),
            supervisor.clone(),
            at("2026-03-03"),
        )
        .await
        .unwrap();
    assert_eq!(about_case.due.to_string(), "2026-03-06");
    assert_eq!(about_case.state, ReplyState::Open);
    let about_station = district
        .store
        .issue_supervision(new(None, 1), supervisor, at("2026-03-03") + 1000)
        .await
        .unwrap();
    sync(&district, &sub).await;
    sync(&sub, &station).await;
    let today: yizhan_sync::domain::calendar::Date = "2026-03-04".parse().unwrap();
    let at_station = station
        .store
        .supervision_list(SupervisionFilter::default(), today, 100)
        .await
        .unwrap();
    assert_eq!(at_station.len(), 2);
    let refused = station
        .store
        .reply_supervision(
            about_case.id.clone(),
            "已办结".into(),
            staff(),
            at("2026-03-04"),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.words().code, "supervision_leads_reply");
    let answered = station
        .store
        .reply_supervision(
            about_case.id.clone(),
            "已于当日办结，原因是材料核验延误".into(),
            lead(),
            at("2026-03-04"),
        )
        .await
        .unwrap();
    assert_eq!(answered.state, ReplyState::AnsweredOnTime);
    let refused = district
        .store
        .reply_supervision(about_case.id.clone(), "x".into(), lead(), at("2026-03-04"))
        .await
        .unwrap_err();
    assert_eq!(refused.words().code, "supervision_not_the_station");
    sync(&sub, &station).await;
    sync(&district, &sub).await;
    // A week later: the reply is seen at both halls; the notice about the station, due
    // Wednesday 03-04, is overdue (red) at both.
    let later: yizhan_sync::domain::calendar::Date = "2026-03-10".parse().unwrap();
    for hall in [&district, &sub] {
        let list = hall
            .store
            .supervision_list(SupervisionFilter::default(), later, 100)
            .await
            .unwrap();
        let state_of = |id: &str| list.iter().find(|v| v.id == id).map(|v| v.state);
        assert_eq!(state_of(&about_case.id), Some(ReplyState::AnsweredOnTime));
        assert_eq!(state_of(&about_station.id), Some(ReplyState::Overdue));
        let reply = &list.iter().find(|v| v.id == about_case.id).unwrap().replies;
        assert_eq!(reply.len(), 1);
        assert_eq!(reply[0].text, "已于当日办结，原因是材料核验延误");
        let overdue = hall
            .store
            .supervision_list(
                SupervisionFilter {
                    state: Some(ReplyState::Overdue),
                    ..Default::default()
                },
                later,
                100,
            )
            .await
            .unwrap();
        assert_eq!(overdue.len(), 1);
        let of_case = hall
            .store
            .supervision_list(
                SupervisionFilter {
                    case_id: Some(id.to_string()),
                    ..Default::default()
                },
                later,
                100,
            )
            .await
            .unwrap();
        assert_eq!(of_case.len(), 1);
    }
    // A late reply to the notice about the station, and a notice issued today; then the
    // district's feed into PostgreSQL: each supervision notice with the due day and the
    // state the node's own list gives today.
    station
        .store
        .reply_supervision(
            about_station.id.clone(),
            "已整改".into(),
            lead(),
            at("2026-03-10"),
        )
        .await
        .unwrap();
    sync(&sub, &station).await;
    sync(&district, &sub).await;
    let now_ms = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
    let supervisor = Staff {
        username: "dubanyuan".into(),
        counter: String::new(),
        role: Role::Supervisor,
    };
    district
        .store
        .issue_supervision(new(None, 5), supervisor, now_ms)
        .await
        .unwrap();
    if let Some(url) = crate::store::postgres::tests::test_database("supervision").await {
        let mut pg =
            crate::store::postgres::Postgres::connect(&url, std::time::Duration::from_secs(10))
                .await
                .unwrap();
        pg.migrate().await.unwrap();
        let mut reader = district.store.feed_reader().unwrap();
        let identity = reader.identity().unwrap();
        let head = reader.head().unwrap();
        let mut after = pg.start_feed(&identity, head).await.unwrap();
        while after < head {
            let batch = reader.read(after, 16).unwrap();
            pg.write(&identity, &batch).await.unwrap();
            after = batch.through;
        }
        let today = yizhan_sync::domain::calendar::Date::from_unix_ms_cst(now_ms as i64);
        let mut expected: Vec<Vec<Option<String>>> = district
            .store
            .supervision_list(SupervisionFilter::default(), today, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|v| {
                vec![
                    Some(v.id),
                    Some(v.due.to_string()),
                    Some(v.state.as_str().to_string()),
                ]
            })
            .collect();
        expected.sort();
        let states: Vec<&str> = expected
            .iter()
            .filter_map(|row| row[2].as_deref())
            .collect();
        assert_eq!(states.len(), 3);
        for state in ["answered_on_time", "answered_late", "open"] {
            assert!(states.contains(&state), "{state} in {states:?}");
        }
        let in_pg = pg
            .query_text(
                "SELECT id, reply_due, state FROM yizhan.v_supervision ORDER BY id",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(in_pg, expected);
        let (rows, duplicated) = pg.mirror_rows().await.unwrap();
        assert!(duplicated.is_empty(), "{duplicated:?}");
        let on_node = district.store.mirror_rows().await.unwrap();
        assert_eq!(rows.differences(&on_node, 5), Vec::<String>::new());
    }
    // Nothing refused anywhere, and every node rebuilds its rows to the same.
    for node in [&district, &sub, &station] {
        assert!(node.store.quarantined(10).await.unwrap().is_empty());
        let before = node.store.content_digest().await.unwrap();
        assert_eq!(node.store.rebuild().await.unwrap().rows_differing, 0);
        assert_eq!(node.store.content_digest().await.unwrap(), before);
    }
}

/// `[supervision] auto`: a hall opens one notice per case whose warning reached its
/// threshold, worded in the record words, and never a second.
#[tokio::test]
async fn a_hall_supervises_red_and_breached_cases_by_itself() {
    use yizhan_sync::domain::calendar::WarningLevel;

    use crate::store::{Role, Staff, SupervisionFilter};
    let [district, sub, station] = tree_with_demo_catalog().await;
    sync(&district, &sub).await;
    sync(&sub, &station).await;
    let residence = item("居住证申领");
    let mut ids = Vec::new();
    for day in ["2026-03-02", "2026-04-29"] {
        let id = station
            .store
            .create_case(
                residence.impl_code.to_string(),
                complete_application(&residence),
                staff(),
                at(day),
            )
            .await
            .unwrap();
        station
            .store
            .act_on_case(id.clone(), vec![NewAction::Accept], staff(), at(day))
            .await
            .unwrap();
        ids.push(id);
    }
    sync(&sub, &station).await;
    sync(&district, &sub).await;
    let auto = Staff {
        username: "自动督办".into(),
        counter: String::new(),
        role: Role::Supervisor,
    };
    let now = at("2026-04-30");
    // The first case is long past both deadlines, the second within them.
    let opened = district
        .store
        .auto_supervise(WarningLevel::Red, 3, auto.clone(), now, 100)
        .await
        .unwrap();
    assert_eq!(opened, 1);
    let again = district
        .store
        .auto_supervise(WarningLevel::Red, 3, auto.clone(), now, 100)
        .await
        .unwrap();
    assert_eq!(again, 0, "one automatic notice per case and hall");
    let opened = sub
        .store
        .auto_supervise(WarningLevel::LegalBreach, 5, auto.clone(), now, 100)
        .await
        .unwrap();
    assert_eq!(opened, 1);
    // A station supervises nobody.
    let none = station
        .store
        .auto_supervise(WarningLevel::Red, 3, auto, now, 100)
        .await
        .unwrap();
    assert_eq!(none, 0);
    sync(&district, &sub).await;
    sync(&sub, &station).await;
    let today = "2026-04-30".parse().unwrap();
    let at_station = station
        .store
        .supervision_list(SupervisionFilter::default(), today, 100)
        .await
        .unwrap();
    assert_eq!(at_station.len(), 2);
    assert!(
        at_station
            .iter()
            .all(|v| v.notice.case.as_ref() == Some(&ids[0]))
    );
    let reasons: Vec<&str> = at_station
        .iter()
        .map(|v| v.notice.reason.as_str())
        .collect();
    assert!(
        reasons.contains(&"办件已超过法定时限，系统自动督办"),
        "{reasons:?}"
    );
}

/// A supervision notice's reply deadline counts on the calendar of the hall that issued
/// it, the same at the station and every hall between, even where a hall between
/// publishes a year of its own for its stations.
#[tokio::test]
async fn reply_deadlines_count_on_the_issuing_halls_calendar_everywhere() {
    use crate::store::{NewSupervision, Role, Staff, SupervisionFilter};
    let district = node(1, NodeRole::District, "440399");
    let sub = node(2, NodeRole::Subdistrict, "440399001");
    let station = node(3, NodeRole::Station, "440399001001");
    enroll(&district, &sub).await;
    enroll(&sub, &station).await;
    // The sub-district gives its stations a day off on Wednesday 2026-03-04.
    let year = include_str!("../../../../sync/src/domain/calendars/cn-2026.txt")
        .replace("version 2026.1", "version 2026.9")
        + "off 2026-03-04 街道调休\n";
    sub.store
        .publish_calendar_year(year, at("2026-03-01"))
        .await
        .unwrap();
    sync(&district, &sub).await;
    sync(&sub, &station).await;
    let station_division = DivisionCode::parse("440399001001").unwrap();
    let wednesday = "2026-03-04".parse().unwrap();
    assert!(
        !station
            .store
            .calendar_for(&station_division)
            .is_working_day(wednesday),
        "the station counts its cases on the sub-district's year"
    );
    let supervisor = Staff {
        username: "dubanyuan".into(),
        counter: String::new(),
        role: Role::Supervisor,
    };
    // Tuesday 03-03, three working days on the district's calendar: Friday 03-06 (on the
    // station's own calendar it would be Monday 03-09).
    let issued = district
        .store
        .issue_supervision(
            NewSupervision {
                station: DivisionCode::parse("440399001001").unwrap(),
                case: None,
                reason: "窗口等候时间过长".into(),
                todo: "整改并报告".into(),
                reply_days: 3,
            },
            supervisor,
            at("2026-03-03"),
        )
        .await
        .unwrap();
    assert_eq!(issued.due.to_string(), "2026-03-06");
    sync(&district, &sub).await;
    sync(&sub, &station).await;
    for node in [&sub, &station] {
        let list = node
            .store
            .supervision_list(
                SupervisionFilter::default(),
                "2026-03-04".parse().unwrap(),
                10,
            )
            .await
            .unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].due.to_string(), "2026-03-06");
    }
}

/// The month's assessment against figures worked out by hand (issue 14 point 5): three
/// stations under a district (two in sub-district 440399001, one in 440399002), cases of
/// 老年人优待证办理 (committed 5 working days, legal 10, counted from acceptance) made
/// through the stores and synced up, supervision from the district answered down there.
/// April 2026 is assessed (Qingming: 4–6 April off), beside March; May's case and
/// everything of March stay out of April's figures. Read at the district on 6 May.
#[tokio::test]
async fn the_months_assessment_matches_a_hand_computed_fixture() {
    use yizhan_sync::domain::calendar::Date;

    use crate::store::{
        AssessmentBy, AssessmentFigures, NewSupervision, Role, Staff, stats::Month,
    };

    let district = node(1, NodeRole::District, "440399");
    let s1 = node(2, NodeRole::Station, "440399001001");
    let s2 = node(3, NodeRole::Station, "440399001002");
    let s3 = node(4, NodeRole::Station, "440399002001");
    for station in [&s1, &s2, &s3] {
        enroll(&district, station).await;
    }
    let scope = Scope::catalog(&DivisionCode::parse("440399").unwrap());
    for item in demo_catalog() {
        district
            .store
            .publish_item(scope.clone(), item, at("2026-03-01"))
            .await
            .unwrap();
    }
    for station in [&s1, &s2, &s3] {
        sync(&district, station).await;
    }
    let card = item("老年人优待证办理");
    let desk = |username: &str, counter: &str| Staff {
        username: username.into(),
        counter: counter.into(),
        role: Role::Worker,
    };
    // Each store writes in time order; `n` keeps same-day writes apart.
    let mut n = 0u64;
    let mut tick = |date: &str| {
        n += 1;
        at(date) + n * 60_000
    };
    let receive = async |station: &Node, who: Staff, now: u64| {
        let mut application = complete_application(&card);
        application.counter = who.counter.clone();
        station
            .store
            .create_case(card.impl_code.to_string(), application, who, now)
            .await
            .unwrap()
    };
    let act = async |station: &Node, id: &yizhan_sync::ids::DocId, action: NewAction, now| {
        station
            .store
            .act_on_case(id.clone(), vec![action], lead(), now)
            .await
            .unwrap();
    };
    let complete = || {
        NewAction::Do(Action::Complete {
            result: "已办结".into(),
            delivery: "窗口领取".into(),
        })
    };
    let rate = |level| {
        NewAction::Do(Action::Rate {
            level,
            comment: String::new(),
            rectify_days: 5,
        })
    };
    let rectify = || {
        NewAction::Do(Action::Rectify {
            response: "已回访并整改".into(),
        })
    };
    let supervisor = Staff {
        username: "dubanyuan".into(),
        counter: String::new(),
        role: Role::Supervisor,
    };
    let notice = |station: &str, case: Option<yizhan_sync::ids::DocId>, days| NewSupervision {
        station: DivisionCode::parse(station).unwrap(),
        case,
        reason: "本月考核发现问题".into(),
        todo: "限期整改并答复".into(),
        reply_days: days,
    };

    // March at S3 (qian, 1号窗口): I received 03-10, done 03-16 on time (4 working
    // days), rated 5; J received 03-20 (due 03-27, legal 04-03), done 04-01: late, not
    // past the legal limit, 8 working days, April's.
    let i = receive(&s3, desk("qian", "1号窗口"), tick("2026-03-10")).await;
    act(&s3, &i, NewAction::Accept, tick("2026-03-10")).await;
    act(&s3, &i, complete(), tick("2026-03-16")).await;
    act(&s3, &i, rate(5), tick("2026-03-16")).await;
    let j = receive(&s3, desk("qian", "1号窗口"), tick("2026-03-20")).await;
    act(&s3, &j, NewAction::Accept, tick("2026-03-20")).await;
    // N3 to S3 on 03-25, 3 working days (due 03-30), answered 03-26: on time, March's.
    let n3 = district
        .store
        .issue_supervision(
            notice("440399002001", None, 3),
            supervisor.clone(),
            tick("2026-03-25"),
        )
        .await
        .unwrap();
    sync(&district, &s3).await;
    s3.store
        .reply_supervision(n3.id.clone(), "已整改".into(), lead(), tick("2026-03-26"))
        .await
        .unwrap();
    // S1: D (wang, 1号窗口) received 03-30 (due 04-07, legal 04-14), done 04-03 on time
    // (4 working days), rated 4: received in March, completed in April.
    let d = receive(&s1, desk("wang", "1号窗口"), tick("2026-03-30")).await;
    act(&s1, &d, NewAction::Accept, tick("2026-03-30")).await;
    act(&s3, &j, complete(), tick("2026-04-01")).await;
    // S2: E (zhao, 1号窗口) received 04-01 (due 04-09, legal 04-16), done 04-20: late and
    // past the legal limit, 12 working days; rated 2 (rectify by 04-27), rectified 04-29.
    let e = receive(&s2, desk("zhao", "1号窗口"), tick("2026-04-01")).await;
    act(&s2, &e, NewAction::Accept, tick("2026-04-01")).await;
    // S1: A (wang, 1号窗口) and B (li, 2号窗口) received 04-02 (due 04-10 over Qingming,
    // legal 04-17). A done 04-09 on time (4 working days), rated 5. B done 04-14 late
    // (7 working days), rated 1 (rectify by 04-21), rectified 04-20: on time.
    let a = receive(&s1, desk("wang", "1号窗口"), tick("2026-04-02")).await;
    act(&s1, &a, NewAction::Accept, tick("2026-04-02")).await;
    let b = receive(&s1, desk("li", "2号窗口"), tick("2026-04-02")).await;
    act(&s1, &b, NewAction::Accept, tick("2026-04-02")).await;
    act(&s1, &d, complete(), tick("2026-04-03")).await;
    act(&s1, &d, rate(4), tick("2026-04-03")).await;
    // S2: H (zhao) received, accepted and done 04-08 (0 working days), rated 3.
    let h = receive(&s2, desk("zhao", "1号窗口"), tick("2026-04-08")).await;
    act(&s2, &h, NewAction::Accept, tick("2026-04-08")).await;
    act(&s2, &h, complete(), tick("2026-04-08")).await;
    act(&s2, &h, rate(3), tick("2026-04-08")).await;
    act(&s1, &a, complete(), tick("2026-04-09")).await;
    act(&s1, &a, rate(5), tick("2026-04-09")).await;
    // S1: C (zhang, 1号窗口) received 04-13 (due 04-20, legal 04-27), still open on 05-06:
    // overdue from 04-21 and past the legal limit from 04-28, both in April.
    let c = receive(&s1, desk("zhang", "1号窗口"), tick("2026-04-13")).await;
    act(&s1, &c, NewAction::Accept, tick("2026-04-13")).await;
    act(&s1, &b, complete(), tick("2026-04-14")).await;
    act(&s1, &b, rate(1), tick("2026-04-14")).await;
    act(&s1, &b, rectify(), tick("2026-04-20")).await;
    act(&s2, &e, complete(), tick("2026-04-20")).await;
    act(&s2, &e, rate(2), tick("2026-04-20")).await;
    // The district supervises C (N1, 5 days: due 04-29, answered 04-28 on time) and S2 as
    // a whole (N2, due 04-29, answered 04-30: late).
    sync(&district, &s1).await;
    let n1 = district
        .store
        .issue_supervision(
            notice("440399001001", Some(c.clone()), 5),
            supervisor.clone(),
            tick("2026-04-22"),
        )
        .await
        .unwrap();
    let n2 = district
        .store
        .issue_supervision(
            notice("440399001002", None, 5),
            supervisor.clone(),
            tick("2026-04-22"),
        )
        .await
        .unwrap();
    sync(&district, &s1).await;
    sync(&district, &s2).await;
    s1.store
        .reply_supervision(
            n1.id.clone(),
            "已督促办结".into(),
            lead(),
            tick("2026-04-28"),
        )
        .await
        .unwrap();
    act(&s2, &e, rectify(), tick("2026-04-29")).await;
    // F (zhao) received 04-30, never accepted: received in April, nothing more.
    receive(&s2, desk("zhao", "1号窗口"), tick("2026-04-30")).await;
    s2.store
        .reply_supervision(
            n2.id.clone(),
            "已说明情况".into(),
            lead(),
            tick("2026-04-30"),
        )
        .await
        .unwrap();
    // G (zhao) in May: counts in no figure of April's.
    let g = receive(&s2, desk("zhao", "1号窗口"), tick("2026-05-06")).await;
    act(&s2, &g, NewAction::Accept, tick("2026-05-06")).await;
    act(&s2, &g, complete(), tick("2026-05-06")).await;
    act(&s2, &g, rate(1), tick("2026-05-06")).await;
    for station in [&s1, &s2, &s3] {
        sync(&district, station).await;
    }

    let today: Date = "2026-05-06".parse().unwrap();
    let april = Month::parse("2026-04").unwrap();
    let assess = async |by| {
        district
            .store
            .assessment(april, by, Role::Supervisor, today)
            .await
            .unwrap()
    };
    /// received, completed, (on time, with deadline), (working days, timed), overdue,
    /// breach, ratings, (rectified on time, late), (supervision on time, notices).
    #[allow(clippy::too_many_arguments)]
    fn fig(
        received: u64,
        completed: u64,
        on_time: (u64, u64),
        days: (u64, u64),
        overdue: u64,
        legal_breach: u64,
        ratings: [u64; 5],
        rectified: (u64, u64),
        supervision: (u64, u64),
    ) -> AssessmentFigures {
        AssessmentFigures {
            received,
            completed,
            on_time: on_time.0,
            with_deadline: on_time.1,
            working_days: days.0,
            timed: days.1,
            overdue,
            legal_breach,
            ratings,
            rectified_on_time: rectified.0,
            rectified_late: rectified.1,
            supervision_on_time: supervision.0,
            supervision: supervision.1,
        }
    }
    let none = AssessmentFigures::default();
    let lines = |a: &crate::store::Assessment| -> Vec<(String, String, AssessmentFigures, AssessmentFigures)> {
        a.lines
            .iter()
            .map(|l| (l.division.clone(), l.name.clone(), l.month.clone(), l.previous.clone()))
            .collect()
    };
    let s1_april = fig(3, 3, (2, 3), (15, 3), 2, 1, [1, 0, 0, 1, 1], (1, 0), (1, 1));
    let s2_april = fig(3, 2, (1, 2), (12, 2), 1, 1, [0, 1, 1, 0, 0], (0, 1), (0, 1));
    let s3_april = fig(0, 1, (0, 1), (8, 1), 1, 0, [0; 5], (0, 0), (0, 0));
    let s1_march = fig(1, 0, (0, 0), (0, 0), 0, 0, [0; 5], (0, 0), (0, 0));
    let s3_march = fig(2, 1, (1, 1), (4, 1), 0, 0, [0, 0, 0, 0, 1], (0, 0), (1, 1));
    let by_station = assess(AssessmentBy::Station).await;
    assert_eq!(
        lines(&by_station),
        [
            (
                "440399001001".into(),
                String::new(),
                s1_april.clone(),
                s1_march.clone()
            ),
            (
                "440399001002".into(),
                String::new(),
                s2_april.clone(),
                none.clone()
            ),
            (
                "440399002001".into(),
                String::new(),
                s3_april.clone(),
                s3_march.clone()
            ),
        ]
    );
    assert_eq!(
        by_station.total,
        fig(6, 6, (3, 6), (35, 6), 4, 2, [1, 1, 1, 1, 1], (1, 1), (1, 2))
    );
    assert_eq!(
        by_station.previous_total,
        fig(3, 1, (1, 1), (4, 1), 0, 0, [0, 0, 0, 0, 1], (0, 0), (1, 1))
    );
    let t = &by_station.total;
    assert_eq!(t.on_time_rate(), Some(0.5));
    assert_eq!(t.average_days().map(|d| (d * 100.0).round()), Some(583.0));
    assert_eq!(
        (t.satisfied(), t.bad(), t.satisfaction()),
        (2, 2, Some(0.4))
    );
    assert_eq!(t.supervision_rate(), Some(0.5));

    let by_sub = assess(AssessmentBy::Subdistrict).await;
    assert_eq!(
        lines(&by_sub),
        [
            (
                "440399001".into(),
                String::new(),
                fig(6, 5, (3, 5), (27, 5), 3, 2, [1, 1, 1, 1, 1], (1, 1), (1, 2)),
                s1_march,
            ),
            ("440399002".into(), String::new(), s3_april, s3_march),
        ]
    );

    // By counter: the notice about S2 as a whole counts at no counter.
    let by_counter = assess(AssessmentBy::Counter).await;
    assert_eq!(
        lines(&by_counter),
        [
            (
                "440399001001".into(),
                "1号窗口".into(),
                fig(2, 2, (2, 2), (8, 2), 1, 1, [0, 0, 0, 1, 1], (0, 0), (1, 1)),
                fig(1, 0, (0, 0), (0, 0), 0, 0, [0; 5], (0, 0), (0, 0)),
            ),
            (
                "440399001001".into(),
                "2号窗口".into(),
                fig(1, 1, (0, 1), (7, 1), 1, 0, [1, 0, 0, 0, 0], (1, 0), (0, 0)),
                none.clone(),
            ),
            (
                "440399001002".into(),
                "1号窗口".into(),
                fig(3, 2, (1, 2), (12, 2), 1, 1, [0, 1, 1, 0, 0], (0, 1), (0, 0)),
                none.clone(),
            ),
            (
                "440399002001".into(),
                "1号窗口".into(),
                fig(0, 1, (0, 1), (8, 1), 1, 0, [0; 5], (0, 0), (0, 0)),
                fig(2, 1, (1, 1), (4, 1), 0, 0, [0, 0, 0, 0, 1], (0, 0), (0, 0)),
            ),
        ]
    );
    // Its total is the sum of its lines: the notice about S2 as a whole is in none.
    assert_eq!(
        by_counter.total,
        fig(6, 6, (3, 6), (35, 6), 4, 2, [1, 1, 1, 1, 1], (1, 1), (1, 1))
    );

    // By staff: wang (A, D), zhang (C, and the notice about it), li (B), zhao, qian.
    let by_staff = assess(AssessmentBy::Staff).await;
    assert_eq!(
        lines(&by_staff),
        [
            (
                "440399001001".into(),
                "li".into(),
                fig(1, 1, (0, 1), (7, 1), 1, 0, [1, 0, 0, 0, 0], (1, 0), (0, 0)),
                none.clone(),
            ),
            (
                "440399001001".into(),
                "wang".into(),
                fig(1, 2, (2, 2), (8, 2), 0, 0, [0, 0, 0, 1, 1], (0, 0), (0, 0)),
                fig(1, 0, (0, 0), (0, 0), 0, 0, [0; 5], (0, 0), (0, 0)),
            ),
            (
                "440399001001".into(),
                "zhang".into(),
                fig(1, 0, (0, 0), (0, 0), 1, 1, [0; 5], (0, 0), (1, 1)),
                none.clone(),
            ),
            (
                "440399001002".into(),
                "zhao".into(),
                fig(3, 2, (1, 2), (12, 2), 1, 1, [0, 1, 1, 0, 0], (0, 1), (0, 0)),
                none.clone(),
            ),
            (
                "440399002001".into(),
                "qian".into(),
                fig(0, 1, (0, 1), (8, 1), 1, 0, [0; 5], (0, 0), (0, 0)),
                fig(2, 1, (1, 1), (4, 1), 0, 0, [0, 0, 0, 0, 1], (0, 0), (0, 0)),
            ),
        ]
    );

    // Nothing was sent to a department: one line of every case, without one.
    let by_department = assess(AssessmentBy::Department).await;
    assert_eq!(by_department.lines.len(), 1);
    assert_eq!(by_department.lines[0].name, "");
    assert_eq!(by_department.lines[0].month.received, 6);

    // A station assesses its own; a worker, or a lead at a hall, does not.
    let own = s1
        .store
        .assessment(april, AssessmentBy::Staff, Role::Lead, today)
        .await
        .unwrap();
    assert_eq!(own.lines.len(), 3);
    assert_eq!(own.total.received, 3);
    for (store, role) in [(&s1.store, Role::Worker), (&district.store, Role::Lead)] {
        let refused = store
            .assessment(april, AssessmentBy::Station, role, today)
            .await
            .unwrap_err();
        assert_eq!(refused.words().code, "assessment_role");
    }
}

/// A notification (通报) published at a district reaches the sub-district and the station
/// below it in the district's catalog scope; the station it names gets a supervision
/// notice referring to its number; rebuild derives the same row; only a supervisor or an
/// admin publishes, only stations below may be named.
#[tokio::test]
async fn a_notification_published_at_a_district_reaches_the_stations_below() {
    use crate::store::{NewNotification, Role, Staff, SupervisionFilter};

    let district = node(1, NodeRole::District, "440399");
    let sub = node(2, NodeRole::Subdistrict, "440399001");
    let station = node(3, NodeRole::Station, "440399001001");
    enroll(&district, &sub).await;
    enroll(&sub, &station).await;
    sync(&district, &sub).await;
    sync(&sub, &station).await;
    let supervisor = Staff {
        username: "dubanyuan".into(),
        counter: String::new(),
        role: Role::Supervisor,
    };
    let new = NewNotification {
        month: "2026-04".into(),
        title: "2026年4月政务服务情况通报".into(),
        text: "4月逾期办件较多，点名站点限期整改。".into(),
        figures: "月度考核 2026-04（按站点）".into(),
        rectify: vec![DivisionCode::parse("440399001001").unwrap()],
        reply_days: 5,
    };
    let refused = district
        .store
        .publish_notification(new.clone(), lead(), at("2026-05-06"))
        .await
        .unwrap_err();
    assert_eq!(refused.words().code, "supervision_supervisors_only");
    let refused = district
        .store
        .publish_notification(
            NewNotification {
                rectify: vec![DivisionCode::parse("440305001001").unwrap()],
                ..new.clone()
            },
            supervisor.clone(),
            at("2026-05-06"),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.words().code, "notification_station");
    let refused = station
        .store
        .publish_notification(new.clone(), lead(), at("2026-05-06"))
        .await
        .unwrap_err();
    assert_eq!(refused.words().code, "supervision_not_above");
    let published = district
        .store
        .publish_notification(new, supervisor, at("2026-05-06"))
        .await
        .unwrap();
    assert!(published.id.starts_with("b-"), "{}", published.id);
    sync(&district, &sub).await;
    sync(&sub, &station).await;
    for below in [&sub, &station] {
        let held = below.store.notifications(10).await.unwrap();
        assert_eq!(held.len(), 1);
        assert_eq!(held[0].id, published.id);
        assert_eq!(held[0].division, "440399");
        assert_eq!(held[0].notification, published.notification);
    }
    let today: yizhan_sync::domain::calendar::Date = "2026-05-06".parse().unwrap();
    let notices = station
        .store
        .supervision_list(SupervisionFilter::default(), today, 10)
        .await
        .unwrap();
    assert_eq!(notices.len(), 1);
    assert!(
        notices[0].notice.reason.contains(&published.id),
        "{}",
        notices[0].notice.reason
    );
    assert_eq!(notices[0].notice.reply_days, 5);
    // The station's row is derived alike by rebuild.
    let before = station.store.content_digest().await.unwrap();
    let report = station.store.rebuild().await.unwrap();
    assert_eq!(report.rows_differing, 0);
    assert_eq!(station.store.content_digest().await.unwrap(), before);
}

/// `[supervision] auto = "red"` also supervises a case whose step is past its limit
/// though the case is on time (环节超时, §10.2; DOMAIN §7), naming the step; the hall's
/// list names the late step and how late it is. A legal-breach threshold leaves it.
#[tokio::test]
async fn a_hall_supervises_a_late_step_of_a_case_still_on_time() {
    use yizhan_sync::domain::calendar::WarningLevel;

    use crate::store::{Role, Staff, SupervisionFilter};
    let [district, sub, station] = tree_with_demo_catalog().await;
    sync(&district, &sub).await;
    sync(&sub, &station).await;
    // 就业困难人员认定: 社区受理 takes one working day, the case ten.
    let hard = item("就业困难人员认定");
    let id = station
        .store
        .create_case(
            hard.impl_code.to_string(),
            complete_application(&hard),
            staff(),
            at("2026-03-02"),
        )
        .await
        .unwrap();
    station
        .store
        .act_on_case(
            id.clone(),
            vec![NewAction::Accept],
            staff(),
            at("2026-03-02"),
        )
        .await
        .unwrap();
    sync(&sub, &station).await;
    sync(&district, &sub).await;
    let auto = Staff {
        username: "自动督办".into(),
        counter: String::new(),
        role: Role::Supervisor,
    };
    // Tuesday the 3rd the step is due: nothing yet.
    let opened = district
        .store
        .auto_supervise(WarningLevel::Red, 3, auto.clone(), at("2026-03-03"), 100)
        .await
        .unwrap();
    assert_eq!(opened, 0);
    // Thursday the 5th it is two working days late; the case is due the 16th.
    let now = at("2026-03-05");
    let opened = sub
        .store
        .auto_supervise(WarningLevel::LegalBreach, 5, auto.clone(), now, 100)
        .await
        .unwrap();
    assert_eq!(opened, 0, "a legal-breach threshold leaves a late step");
    let opened = district
        .store
        .auto_supervise(WarningLevel::Red, 3, auto.clone(), now, 100)
        .await
        .unwrap();
    assert_eq!(opened, 1);
    let again = district
        .store
        .auto_supervise(WarningLevel::Red, 3, auto, now, 100)
        .await
        .unwrap();
    assert_eq!(again, 0, "one automatic notice per case and hall");
    let today = "2026-03-05".parse().unwrap();
    let list = district
        .store
        .supervision_list(SupervisionFilter::default(), today, 100)
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert!(
        list[0].notice.reason.contains("第 1 步（社区受理）"),
        "{}",
        list[0].notice.reason
    );
    let late = list[0].late_step.clone().unwrap();
    assert_eq!(
        (
            late.number,
            late.name.as_str(),
            late.due.to_string(),
            late.late_days
        ),
        (1, "社区受理", "2026-03-03".to_string(), 2)
    );
    let case = district
        .store
        .get_case(id.to_string(), today)
        .await
        .unwrap();
    assert_ne!(
        case.summary.level,
        Some(WarningLevel::Red),
        "the case is on time"
    );
}

/// 并联审批 (§7.5) across the tree: a station's combined application is one open case in
/// the district's per-station overview (its parts are the departments' work, not three
/// more applications of the station); the departments decide the parts at the district,
/// and once their decisions come down the station's row of the whole reads decided, as its
/// page does, so the station's lists and statistics follow.
#[tokio::test]
async fn a_combined_application_counts_once_up_the_tree_and_its_parts_decide_it_below() {
    use crate::store::tests::{combined_item, create_part_departments, department_approves};
    let [district, sub, station] = tree_with_demo_catalog().await;
    let combined = combined_item();
    create_part_departments(&district.store, &combined, "2026-03-01").await;
    sync(&district, &sub).await;
    sync(&sub, &station).await;
    let id = station
        .store
        .create_case(
            combined.impl_code.to_string(),
            complete_application(&combined),
            staff(),
            at("2026-03-02"),
        )
        .await
        .unwrap();
    station
        .store
        .act_on_case(
            id.clone(),
            vec![NewAction::Accept],
            staff(),
            at("2026-03-02"),
        )
        .await
        .unwrap();
    sync(&sub, &station).await;
    sync(&district, &sub).await;
    let day = |d: &str| -> yizhan_sync::domain::calendar::Date { d.parse().unwrap() };
    let overview = district
        .store
        .station_overview(day("2026-03-03"))
        .await
        .unwrap();
    let line = overview
        .lines
        .iter()
        .find(|l| l.node.division == "440399001001")
        .expect("the station's line");
    assert_eq!(line.figures.open, 1, "{line:?}");

    let whole = district
        .store
        .get_case(id.to_string(), day("2026-03-03"))
        .await
        .unwrap();
    for (n, part) in whole.parts.iter().enumerate() {
        let sub_case = yizhan_sync::ids::DocId::parse(part.case_id.as_deref().unwrap()).unwrap();
        department_approves(&district.store, &sub_case, n, "2026-03-05").await;
    }
    sync(&district, &sub).await;
    sync(&sub, &station).await;
    let below = station
        .store
        .get_case(id.to_string(), day("2026-03-05"))
        .await
        .unwrap();
    assert_eq!(below.state.status, Status::Decided);
    assert_eq!(below.summary.status, Status::Decided, "the station's row");
    let listed = station
        .store
        .list_cases(crate::store::CaseFilter {
            status: Some(Status::Decided),
            ..crate::store::CaseFilter::all(day("2026-03-05"))
        })
        .await
        .unwrap()
        .cases;
    assert!(listed.iter().any(|c| c.id == id.as_str()), "{listed:?}");

    // The city's SQL (docs/sink.md) counts it once too, and PostgreSQL holds exactly the
    // district's rows, each part naming its whole.
    sync(&district, &sub).await;
    if let Some(url) = crate::store::postgres::tests::test_database("parts").await {
        let mut pg =
            crate::store::postgres::Postgres::connect(&url, std::time::Duration::from_secs(10))
                .await
                .unwrap();
        pg.migrate().await.unwrap();
        let mut reader = district.store.feed_reader().unwrap();
        let identity = reader.identity().unwrap();
        let head = reader.head().unwrap();
        let mut after = pg.start_feed(&identity, head).await.unwrap();
        while after < head {
            let batch = reader.read(after, 16).unwrap();
            pg.write(&identity, &batch).await.unwrap();
            after = batch.through;
        }
        let parts = pg
            .query_text(
                "SELECT count(*)::text FROM yizhan.v_cases WHERE part_of = $1",
                &[id.as_str()],
            )
            .await
            .unwrap();
        assert_eq!(parts, vec![vec![Some("3".to_string())]]);
        let (rows, duplicated) = pg.mirror_rows().await.unwrap();
        assert!(duplicated.is_empty(), "{duplicated:?}");
        let on_node = district.store.mirror_rows().await.unwrap();
        assert_eq!(rows.differences(&on_node, 5), Vec::<String>::new());
        let figures =
            crate::sink::tests::month_query_matches_the_dashboard(&pg, &district.store, "2026-03")
                .await;
        assert_eq!((figures.received, figures.accepted), (1, 1));
    }
}
