//! The SQLite store syncing with itself: two and three real stores exchanging batches
//! through their own functions (the HTTP layer is tested in tests/).

use yizhan_sync::auth::NodeRole;
use yizhan_sync::domain::case::{Action, Status};
use yizhan_sync::domain::codes::DivisionCode;
use yizhan_sync::feed::{ParsedBatch, Pull};
use yizhan_sync::ids::Scope;

use super::Relation;
use crate::config::Synchronous;
use crate::demo::demo_catalog;
use crate::store::tests::{at, complete_application, identity, item, lead, staff};
use crate::store::{NewAction, Store, StoreOptions};

struct Node {
    _dir: tempfile::TempDir,
    store: Store,
}

fn node(seed: u8, role: NodeRole, division: &str) -> Node {
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
async fn enroll(parent: &Node, child: &Node) {
    let child_record = record(child).await;
    parent
        .store
        .create_enroll_code(
            "code-1234".into(),
            child_record.division.clone(),
            child_record.role,
            at("2026-12-31"),
        )
        .await
        .unwrap();
    let above = parent
        .store
        .enroll_child("code-1234".into(), child_record, at("2026-03-01"))
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

/// One pull by `child` from `parent` and one push the other way, until both have nothing.
async fn sync(parent: &Node, child: &Node) -> (u32, u32) {
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
    assert_eq!(back.events.len(), 2);

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
