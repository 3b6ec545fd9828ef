//! Tree accounts through real stores syncing: where they sign in, which name wins, and
//! how disabling or resetting one ends what it holds.

use yizhan_sync::auth::NodeRole;

use super::*;
use crate::store::sync::tests::{enroll, node, sync, tree_with_demo_catalog};
use crate::store::tests::at;
use crate::store::{NewUser, RebuildReport};

const HASH_1: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo";
const HASH_2: &str = "$argon2id$v=19$m=19456,t=2,p=1$b3RoZXJzYWx0$bmV3aGFzaA";

fn admin() -> Staff {
    Staff {
        username: "admin".into(),
        counter: String::new(),
        role: Role::Admin,
    }
}

fn new_staff(username: &str) -> NewStaff {
    NewStaff {
        username: username.into(),
        display_name: "李明".into(),
        role: Role::Worker,
        counter: "3".into(),
        sign_in_at: vec![],
        password_hash: HASH_1.into(),
        stand_in: None,
        chief: false,
    }
}

#[tokio::test]
async fn a_halls_account_signs_in_below_it_and_never_over_a_local_one() {
    let district = node(1, NodeRole::District, "440399");
    let sub = node(2, NodeRole::Subdistrict, "440399001");
    let station = node(3, NodeRole::Station, "440399001001");
    enroll(&district, &sub).await;
    enroll(&sub, &station).await;
    station
        .store
        .add_user(
            NewUser {
                username: "zhao".into(),
                display_name: "赵".into(),
                role: Role::Lead,
                counter: "1".into(),
                password_hash: "$argon2id$local".into(),
            },
            1,
        )
        .await
        .unwrap();

    // Only a hall's admin writes the tree's accounts.
    for (store, by) in [
        (&station.store, admin()),
        (
            &sub.store,
            Staff {
                role: Role::Lead,
                ..admin()
            },
        ),
    ] {
        let refused = store.create_staff(new_staff("li.ming"), by, 2).await;
        assert!(
            matches!(refused, Err(StoreError::Forbidden(_))),
            "{refused:?}"
        );
    }
    let before = sub.store.feed_head().await.unwrap();
    let created = sub
        .store
        .create_staff(new_staff("li.ming"), admin(), at("2026-03-02"))
        .await
        .unwrap();
    assert!(created.id < 0 && created.own);
    assert_eq!(
        created.standing,
        Standing::Here,
        "it signs in at its own hall"
    );
    // The PostgreSQL sink's feed passes the change by: verifiers never leave the tree.
    let batch = sub
        .store
        .feed_reader()
        .unwrap()
        .read(before, 10_000)
        .unwrap();
    assert_eq!(batch.changes, 1);
    assert_eq!(batch.rows(), 0, "{batch:?}");
    assert!(!format!("{batch:?}").contains("argon2"));
    // The same name again at the hall, or a local account under it there.
    assert!(matches!(
        sub.store
            .create_staff(new_staff("li.ming"), admin(), 3)
            .await,
        Err(StoreError::Conflict(_))
    ));
    // A tree account under the name of the station's local account.
    sub.store
        .create_staff(new_staff("zhao"), admin(), at("2026-03-02"))
        .await
        .unwrap();
    sync(&sub, &station).await;

    // At the station: the tree account signs in with its verifier, under its own number.
    let (user, verifier) = station
        .store
        .user_with_password("li.ming".into())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((user.id, verifier.as_str()), (created.id, HASH_1));
    assert!(!user.disabled);
    let standing = station.store.user_standing(user.id).await.unwrap().unwrap();
    assert!(!standing.disabled && standing.password_hash == HASH_1);
    // The local account keeps its name; the tree's is listed as shadowed.
    let (local, hash) = station
        .store
        .user_with_password("zhao".into())
        .await
        .unwrap()
        .unwrap();
    assert!(local.id > 0 && hash == "$argon2id$local");
    let listed = station.store.tree_accounts().await.unwrap();
    let standing_of = |name: &str| {
        listed
            .iter()
            .find(|a| a.account.username == name)
            .map(|a| (a.standing, a.own))
    };
    assert_eq!(
        standing_of("zhao"),
        Some((Standing::ShadowedByLocal, false))
    );
    assert_eq!(standing_of("li.ming"), Some((Standing::Here, false)));
    // The tree's names are reserved for local accounts.
    let taken = station
        .store
        .add_user(
            NewUser {
                username: "li.ming".into(),
                display_name: "冒名".into(),
                role: Role::Admin,
                counter: String::new(),
                password_hash: "$argon2id$x".into(),
            },
            4,
        )
        .await;
    assert!(
        matches!(&taken, Err(StoreError::Conflict(w)) if w.code == "staff_name_taken"),
        "{taken:?}"
    );
    // A token issued at the station holds under the account's generation.
    station
        .store
        .add_token("li.ming".into(), [7; 32], "kiosk".into(), 5)
        .await
        .unwrap();
    assert_eq!(
        station
            .store
            .token_owner([7; 32])
            .await
            .unwrap()
            .map(|u| u.id),
        Some(created.id)
    );

    // A reset at the hall: a new verifier and generation; the old token stops.
    let reset = sub
        .store
        .update_staff(
            "li.ming".into(),
            StaffPatch {
                password_hash: Some(HASH_2.into()),
                ..Default::default()
            },
            admin(),
            at("2026-03-03"),
        )
        .await
        .unwrap();
    assert_eq!(reset.account.generation, 2);
    sync(&sub, &station).await;
    let standing = station.store.user_standing(user.id).await.unwrap().unwrap();
    assert_eq!(
        standing.password_hash, HASH_2,
        "sessions see a new credential"
    );
    assert!(station.store.token_owner([7; 32]).await.unwrap().is_none());

    // Disabled at the hall: disabled at the station after a sync.
    sub.store
        .update_staff(
            "li.ming".into(),
            StaffPatch {
                disabled: Some(true),
                ..Default::default()
            },
            admin(),
            at("2026-03-04"),
        )
        .await
        .unwrap();
    assert!(
        sub.store
            .user_standing(user.id)
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
    sync(&sub, &station).await;
    assert!(
        station
            .store
            .user_standing(user.id)
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
    assert!(
        station
            .store
            .user_with_password("li.ming".into())
            .await
            .unwrap()
            .unwrap()
            .0
            .disabled
    );

    // The district above, not yet having heard of the sub-district's account, writes
    // its own under the same name: at the station both apply, so neither signs in, and
    // both are listed as a clash.
    district
        .store
        .create_staff(new_staff("li.ming"), admin(), at("2026-03-05"))
        .await
        .unwrap();
    sync(&district, &sub).await;
    sync(&sub, &station).await;
    assert!(
        station
            .store
            .user_with_password("li.ming".into())
            .await
            .unwrap()
            .is_none()
    );
    let clashing = station
        .store
        .tree_accounts()
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.account.username == "li.ming")
        .map(|a| a.standing)
        .collect::<Vec<_>>();
    assert_eq!(clashing, vec![Standing::Clash, Standing::Clash]);
    // Once it has heard of the sub-district's accounts (catalogs go up too), where they
    // do not sign in, it may not give their names to another account.
    let refused = district
        .store
        .create_staff(new_staff("zhao"), admin(), at("2026-03-06"))
        .await;
    assert!(
        matches!(&refused, Err(StoreError::Conflict(w)) if w.code == "staff_name_taken"),
        "{refused:?}"
    );
    let at_district = district.store.tree_accounts().await.unwrap();
    assert!(
        at_district
            .iter()
            .any(|a| !a.own && a.standing == Standing::NotHere),
        "{at_district:?}"
    );

    // The rows are derived: a rebuild gives them again.
    let report: RebuildReport = station.store.rebuild().await.unwrap();
    assert_eq!(report.rows_differing, 0, "{report:?}");
}

#[tokio::test]
async fn one_chief_representative_per_department_and_a_stand_in_by_name() {
    let district = node(1, NodeRole::District, "440399");
    let chief = |name: &str| NewStaff {
        role: Role::Department,
        counter: "民政局".into(),
        chief: true,
        ..new_staff(name)
    };
    district
        .store
        .create_staff(chief("wang"), admin(), 1)
        .await
        .unwrap();
    let second = district.store.create_staff(chief("li"), admin(), 2).await;
    assert!(
        matches!(&second, Err(StoreError::Conflict(w)) if w.code == "staff_chief_taken"),
        "{second:?}"
    );
    let li = district
        .store
        .create_staff(
            NewStaff {
                chief: false,
                stand_in: Some("wang".into()),
                ..chief("li")
            },
            admin(),
            3,
        )
        .await
        .unwrap();
    assert_eq!(li.account.stand_in.as_deref(), Some("wang"));
    // A chief of a worker's account is refused by the rule of the account.
    let worker_chief = district
        .store
        .update_staff(
            "li".into(),
            StaffPatch {
                role: Some(Role::Worker),
                chief: Some(true),
                ..Default::default()
            },
            admin(),
            4,
        )
        .await;
    assert!(
        matches!(&worker_chief, Err(StoreError::Invalid(w)) if w.code == "staff_chief_department"),
        "{worker_chief:?}"
    );
}

#[tokio::test]
async fn a_stand_ins_act_on_the_case_of_the_one_they_stand_in_for_says_so() {
    use crate::store::NewAction;
    use crate::store::tests::{complete_application, item};
    use yizhan_sync::domain::case::Action;

    let [district, sub, station] = tree_with_demo_catalog().await;
    sub.store
        .create_staff(new_staff("wang"), admin(), 1)
        .await
        .unwrap();
    sub.store
        .create_staff(
            NewStaff {
                stand_in: Some("wang".into()),
                ..new_staff("li.ming")
            },
            admin(),
            2,
        )
        .await
        .unwrap();
    sync(&district, &sub).await;
    sync(&sub, &station).await;

    let as_staff = |username: &str| Staff {
        username: username.into(),
        counter: "3".into(),
        role: Role::Worker,
    };
    let residence = item("居住证申领");
    let id = station
        .store
        .create_case(
            residence.impl_code.to_string(),
            complete_application(&residence),
            as_staff("li.ming"),
            at("2026-03-02"),
        )
        .await
        .unwrap();
    station
        .store
        .act_on_case(
            id.clone(),
            vec![NewAction::Accept],
            as_staff("li.ming"),
            at("2026-03-02"),
        )
        .await
        .unwrap();
    // Wang, li.ming's B角, transfers li.ming's case: the event says for whom.
    station
        .store
        .act_on_case(
            id.clone(),
            vec![NewAction::Do(Action::Transfer {
                to: "区民政局".into(),
                reason: "需区级审批".into(),
                to_node: None,
            })],
            as_staff("wang"),
            at("2026-03-03"),
        )
        .await
        .unwrap();
    let detail = station
        .store
        .get_case(id.to_string(), "2026-03-03".parse().unwrap())
        .await
        .unwrap();
    let recorded: Vec<(String, Option<String>)> = detail
        .events
        .iter()
        .map(|e| (e.staff.clone(), e.stand_in_for.clone()))
        .collect();
    assert_eq!(
        recorded,
        vec![
            ("li.ming".to_string(), None),
            ("wang".to_string(), Some("li.ming".to_string()))
        ]
    );
    // The hall above receives the event and keeps what it says.
    sync(&sub, &station).await;
    let at_hall = sub
        .store
        .get_case(id.to_string(), "2026-03-03".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(
        at_hall.events.last().unwrap().stand_in_for.as_deref(),
        Some("li.ming")
    );
}

/// §7.5: the department's chief representative at the hall extends a case sent to the
/// department; another member of it may not, nor the chief once the hall disables the
/// account. The flag comes from the tree account at each act, never from the caller.
#[tokio::test]
async fn a_chief_representative_extends_a_case_sent_to_the_department() {
    use crate::store::NewAction;
    use crate::store::tests::{complete_application, item};
    use yizhan_sync::domain::case::Action;

    let [district, sub, station] = tree_with_demo_catalog().await;
    let member = |name: &str, chief: bool| NewStaff {
        role: Role::Department,
        counter: "区民政局".into(),
        chief,
        ..new_staff(name)
    };
    for (n, (name, chief)) in [("wang", true), ("li", false)].into_iter().enumerate() {
        sub.store
            .create_staff(member(name, chief), admin(), n as u64 + 1)
            .await
            .unwrap();
    }
    sync(&district, &sub).await;
    sync(&sub, &station).await;

    let worker = Staff {
        username: "w".into(),
        counter: "3".into(),
        role: Role::Lead,
    };
    // 最低生活保障 has a legal extension (15 working days) to approve.
    let relief = item("最低生活保障申请");
    let id = station
        .store
        .create_case(
            relief.impl_code.to_string(),
            complete_application(&relief),
            worker.clone(),
            at("2026-03-02"),
        )
        .await
        .unwrap();
    let hall = sub.store.own_record().node;
    station
        .store
        .act_on_case(
            id.clone(),
            vec![
                NewAction::Accept,
                NewAction::Do(Action::Transfer {
                    to: "区民政局".into(),
                    reason: "需区级审批".into(),
                    to_node: Some(hall),
                }),
            ],
            worker,
            at("2026-03-02"),
        )
        .await
        .unwrap();
    sync(&sub, &station).await;

    let as_member = |name: &str| Staff {
        username: name.into(),
        counter: "区民政局".into(),
        role: Role::Department,
    };
    let extend = || {
        vec![NewAction::Do(Action::Extend {
            days: 5,
            reason: "需现场核查".into(),
            request: None,
        })]
    };
    let by_li = sub
        .store
        .act_on_case(id.clone(), extend(), as_member("li"), at("2026-03-03"))
        .await;
    assert!(
        matches!(&by_li, Err(StoreError::Case(e)) if e.code() == "leads_only"),
        "{by_li:?}"
    );
    assert!(matches!(
        sub.store.person(as_member("wang")).await.unwrap(),
        yizhan_sync::engine::Person::Staff { chief: true, .. }
    ));
    sub.store
        .act_on_case(id.clone(), extend(), as_member("wang"), at("2026-03-03"))
        .await
        .unwrap();

    // Disabled at the hall, the account is no chief any more.
    sub.store
        .update_staff(
            "wang".into(),
            StaffPatch {
                disabled: Some(true),
                ..Default::default()
            },
            admin(),
            9,
        )
        .await
        .unwrap();
    let after = sub
        .store
        .act_on_case(id.clone(), extend(), as_member("wang"), at("2026-03-04"))
        .await;
    assert!(
        matches!(&after, Err(StoreError::Case(e)) if e.code() == "leads_only"),
        "{after:?}"
    );
}
