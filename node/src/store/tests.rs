//! Store tests against real SQLite files in temporary directories.

use std::collections::HashSet;

use yizhan_sync::domain::calendar::{Date, WarningLevel};
use yizhan_sync::domain::case::{
    Action, Applicant, CaseError, MaterialReceived, NewCase, Phone, Status,
};
use yizhan_sync::domain::codes::{DivisionCode, ResidentId};
use yizhan_sync::domain::item::Item;
use yizhan_sync::ids::{DocId, Scope};

use super::*;
use crate::demo::demo_catalog;

pub fn identity(seed: u8, role: yizhan_sync::auth::NodeRole, division: &str) -> Identity {
    crate::identity::NodeKey::from_seed([seed; 32]).identity(
        role,
        DivisionCode::parse(division).unwrap(),
        &format!("node {seed}"),
    )
}

/// Makes the database at `path` look one schema version old (7, before case follow-up
/// and appointments), for the test that a node backs up before it migrates.
pub(crate) fn downgrade_to_schema_7(path: &Path) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(
        "DROP INDEX IF EXISTS cases_scope_red; DROP INDEX IF EXISTS cases_scope_breach; DROP INDEX cases_open_deadline; DROP INDEX IF EXISTS cases_scope_deadline;
         DROP INDEX IF EXISTS cases_open_levels; DROP INDEX IF EXISTS cases_completed_scope;
         DROP INDEX IF EXISTS cases_rated_scope; DROP INDEX IF EXISTS cases_rectify_scope; DROP INDEX IF EXISTS cases_scope_updated; DROP INDEX cases_holder_name;
         DROP INDEX cases_query_code; DROP INDEX cases_applicant_id;
         DROP INDEX cases_phone_digits; DROP INDEX cases_open_due;
         ALTER TABLE cases DROP COLUMN query_code; ALTER TABLE cases DROP COLUMN applicant_id;
         ALTER TABLE cases DROP COLUMN phone_digits; ALTER TABLE cases DROP COLUMN signed_on_behalf;
         DROP TABLE refused_hashes; DROP TABLE peer_refusals; DROP TABLE underived;
         ALTER TABLE changes DROP COLUMN refused; ALTER TABLE changes DROP COLUMN kind; ALTER TABLE quarantine DROP COLUMN code; ALTER TABLE quarantine DROP COLUMN via;
         DROP INDEX cases_serial;
         DROP TABLE appointments;
         DROP INDEX cases_holder; DROP INDEX cases_rectify;
         ALTER TABLE cases DROP COLUMN holder; ALTER TABLE cases DROP COLUMN holder_node;
         ALTER TABLE cases DROP COLUMN signed_on; ALTER TABLE cases DROP COLUMN rating;
         ALTER TABLE cases DROP COLUMN rated_on; ALTER TABLE cases DROP COLUMN rectify_due;
         ALTER TABLE cases DROP COLUMN rectified_on;
         ALTER TABLE case_events DROP COLUMN voided; ALTER TABLE documents DROP COLUMN upto;
         DROP TABLE supervision_notices; DROP TABLE supervision_replies; DROP TABLE notices;
         DROP TABLE notifications; DROP TABLE departments;
         CREATE TABLE notices (
             id INTEGER PRIMARY KEY, number TEXT NOT NULL UNIQUE, case_id TEXT NOT NULL,
             kind TEXT NOT NULL CHECK (kind IN ('receipt', 'one_time', 'refusal')),
             content_json TEXT NOT NULL, digest BLOB NOT NULL, signature BLOB NOT NULL,
             issued_ms INTEGER NOT NULL, supersedes TEXT) STRICT;
         DROP INDEX IF EXISTS changes_doc;
         DROP TABLE staff_accounts; DROP TABLE staff_tokens; DROP TABLE counters;
         ALTER TABLE cases DROP COLUMN step_no; ALTER TABLE cases DROP COLUMN step_name;
         ALTER TABLE cases DROP COLUMN step_due; ALTER TABLE cases DROP COLUMN step_yellow_on;
         ALTER TABLE cases DROP COLUMN step_red_on;
         DROP TABLE case_parts;
         DROP TABLE case_fees;
         PRAGMA user_version = 7;",
    )
    .unwrap();
}

pub fn options() -> StoreOptions {
    StoreOptions {
        identity: identity(7, yizhan_sync::auth::NodeRole::Station, "440399001001"),
        doc_cache: 64,
        readers: 2,
        synchronous: Synchronous::Normal,
        migrate: true,
    }
}

pub fn open_temp() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("yizhan.db"), options()).unwrap();
    (dir, store)
}

/// 10:00 China Standard Time on `date`, in Unix milliseconds.
pub fn at(date: &str) -> u64 {
    let d: Date = date.parse().unwrap();
    (d.days_since_epoch() as u64 * 86_400 + 2 * 3600) * 1000
}

pub fn item(name: &str) -> Item {
    demo_catalog().into_iter().find(|i| i.name == name).unwrap()
}

pub async fn publish_catalog(store: &Store) {
    let scope = Scope::catalog(&DivisionCode::parse("440399").unwrap());
    for item in demo_catalog() {
        store
            .publish_item(scope.clone(), item, at("2026-01-05"))
            .await
            .unwrap();
    }
}

/// The station's lead (现场负责人), who also enters ratings and closes rectifications.
pub fn lead() -> Staff {
    Staff {
        role: crate::store::Role::Lead,
        ..staff()
    }
}

pub fn staff() -> Staff {
    Staff {
        username: "worker".into(),
        counter: "1号窗口".into(),
        role: crate::store::Role::Worker,
    }
}

/// An application for `item` with all its required materials.
pub fn complete_application(item: &Item) -> NewCase {
    NewCase {
        situations: Vec::new(),
        applicant: Applicant::NaturalPerson {
            name: "张三".into(),
            id_number: ResidentId::parse("11010519491231002X").unwrap(),
            phone: Phone::parse("13800138000").unwrap(),
        },
        agent: None,
        materials: item
            .materials
            .iter()
            .filter(|m| m.required)
            .map(|m| MaterialReceived {
                name: m.name.clone(),
                originals: m.originals,
                copies: m.copies,
            })
            .collect(),
        counter: "1号窗口".into(),
        note: String::new(),
    }
}

async fn receive(store: &Store, item: &Item, date: &str) -> DocId {
    store
        .create_case(
            item.impl_code.to_string(),
            complete_application(item),
            staff(),
            at(date),
        )
        .await
        .unwrap()
}

async fn accept(store: &Store, id: &DocId, date: &str) {
    store
        .act_on_case(
            id.clone(),
            vec![NewAction::Accept],
            staff(),
            at(date) + 60_000,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_case_is_received_accepted_and_read_back() {
    let (_dir, store) = open_temp();
    publish_catalog(&store).await;
    let dibao = item("最低生活保障申请");
    let id = receive(&store, &dibao, "2026-03-02").await;
    accept(&store, &id, "2026-03-02").await;
    let case = store
        .get_case(id.to_string(), "2026-03-03".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(case.summary.status, Status::Accepted);
    let serial = case.summary.serial_no.clone().unwrap();
    assert!(serial.starts_with(dibao.impl_code.as_str()));
    assert!(serial.contains("20260302"));
    assert_eq!(case.summary.committed_due.as_deref(), Some("2026-03-30"));
    assert_eq!(case.summary.legal_due.as_deref(), Some("2026-04-14"));
    assert_eq!(case.summary.level, Some(WarningLevel::Normal));
    assert_eq!(case.events.len(), 1);
    assert!(case.missing.is_empty());
    let by_serial = store
        .get_case_by_serial(
            yizhan_sync::domain::serial::SerialNo::parse(&serial).unwrap(),
            "2026-03-03".parse().unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(by_serial.summary.id, id.to_string());
    // One change per write, numbered 1, 2, … for this node's origin.
    let seqs: Vec<i64> = store
        .read(|conn| {
            let mut stmt = conn.prepare("SELECT seq FROM changes ORDER BY local_seq")?;
            Ok(stmt
                .query_map([], |r| r.get(0))?
                .collect::<Result<Vec<_>, _>>()?)
        })
        .await
        .unwrap();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
    assert_eq!(seqs.len(), demo_catalog().len() + 2);
}

/// A node restarted mid-sequence continues its serial numbers; none is issued twice.
#[tokio::test]
async fn serial_numbers_are_never_reissued_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("yizhan.db");
    let residence = item("居住证申领");
    let mut serials = Vec::new();
    for round in 0..3 {
        let store = Store::open(&path, options()).unwrap();
        if round == 0 {
            publish_catalog(&store).await;
        }
        for _ in 0..4 {
            let id = receive(&store, &residence, "2026-03-02").await;
            accept(&store, &id, "2026-03-02").await;
            let case = store
                .get_case(id.to_string(), "2026-03-02".parse().unwrap())
                .await
                .unwrap();
            serials.push(case.summary.serial_no.unwrap());
        }
        // A refused acceptance in between does not burn or reuse a number.
        let mut short = complete_application(&residence);
        short.materials.clear();
        let id = store
            .create_case(
                residence.impl_code.to_string(),
                short,
                staff(),
                at("2026-03-02"),
            )
            .await
            .unwrap();
        let err = store
            .act_on_case(id, vec![NewAction::Accept], staff(), at("2026-03-02"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Case(CaseError::MaterialsMissing { .. })),
            "{err}"
        );
        store.shutdown().await;
    }
    let sequences: Vec<u32> = serials.iter().map(|s| s[48..].parse().unwrap()).collect();
    assert_eq!(sequences, (1..=12).collect::<Vec<_>>());
    assert_eq!(serials.iter().collect::<HashSet<_>>().len(), serials.len());
}

/// Writes queued together commit together, but a failing one is rolled back alone and
/// leaves no trace, not even in the document cache.
#[tokio::test]
async fn a_failing_write_in_a_group_leaves_the_others_alone() {
    let (_dir, store) = open_temp();
    publish_catalog(&store).await;
    let residence = item("居住证申领");
    let id = receive(&store, &residence, "2026-03-02").await;
    let mut handles = Vec::new();
    for n in 0..40u64 {
        let store = store.clone();
        let (id, residence) = (id.clone(), residence.clone());
        handles.push(tokio::spawn(async move {
            if n % 2 == 0 {
                // Not allowed: a submitted case cannot be resumed.
                store
                    .act_on_case(
                        id,
                        vec![NewAction::Do(Action::Resume {
                            note: String::new(),
                        })],
                        staff(),
                        at("2026-03-02"),
                    )
                    .await
                    .map(|_| ())
            } else {
                store
                    .create_case(
                        residence.impl_code.to_string(),
                        complete_application(&residence),
                        staff(),
                        at("2026-03-02") + n,
                    )
                    .await
                    .map(|_| ())
            }
        }));
    }
    let mut refused = 0;
    for (n, handle) in handles.into_iter().enumerate() {
        match handle.await.unwrap() {
            Ok(()) => assert!(n % 2 == 1),
            Err(StoreError::Case(CaseError::NotAllowed { .. })) => refused += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(refused, 20);
    let page = store
        .list_cases(CaseFilter {
            limit: 200,
            ..CaseFilter::all("2026-03-02".parse().unwrap())
        })
        .await
        .unwrap();
    assert_eq!(page.cases.len(), 21);
    let first = store
        .get_case(id.to_string(), "2026-03-02".parse().unwrap())
        .await
        .unwrap();
    assert!(
        first.events.is_empty(),
        "the refused events left nothing behind"
    );
    // The cached document was not left holding a refused event either.
    accept(&store, &id, "2026-03-03").await;
    let after = store
        .get_case(id.to_string(), "2026-03-03".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(after.events.len(), 1);
}

/// A write sent alone (a received batch) runs in a transaction of its own, with no
/// savepoint, while the writes queued around it still commit in groups; a failing one is
/// rolled back whole and takes nothing else with it.
#[tokio::test]
async fn a_write_alone_commits_by_itself_and_its_failure_takes_nothing_else() {
    let (_dir, store) = open_temp();
    publish_catalog(&store).await;
    let residence = item("居住证申领");
    let mut handles = Vec::new();
    for n in 0..40u64 {
        let store = store.clone();
        let residence = residence.clone();
        handles.push(tokio::spawn(async move {
            if n % 4 == 0 {
                store
                    .write_alone(move |ctx| {
                        // Inside a group this names the write's own savepoint.
                        let grouped = ctx.conn.execute_batch("ROLLBACK TO job").is_ok();
                        ctx.conn.execute(
                            "INSERT INTO meta (key, value) VALUES (?1, 'alone')",
                            [format!("alone-{n}")],
                        )?;
                        if n % 8 == 0 {
                            return Err(StoreError::Internal("refused on purpose".into()));
                        }
                        Ok(grouped)
                    })
                    .await
            } else {
                store
                    .create_case(
                        residence.impl_code.to_string(),
                        complete_application(&residence),
                        staff(),
                        at("2026-03-02") + n,
                    )
                    .await
                    .map(|_| false)
            }
        }));
    }
    let mut refused = 0;
    for (n, handle) in handles.into_iter().enumerate() {
        match handle.await.unwrap() {
            Ok(grouped) => assert!(!grouped, "write {n} ran alone"),
            Err(StoreError::Internal(_)) if n % 8 == 0 => refused += 1,
            Err(e) => panic!("write {n}: {e}"),
        }
    }
    assert_eq!(refused, 5);
    let kept: Vec<String> = store
        .read(|conn| {
            let mut rows =
                conn.prepare("SELECT key FROM meta WHERE value = 'alone' ORDER BY key")?;
            let keys = rows
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            Ok(keys)
        })
        .await
        .unwrap();
    assert_eq!(
        kept,
        ["alone-12", "alone-20", "alone-28", "alone-36", "alone-4"],
        "the failing ones left nothing"
    );
    let page = store
        .list_cases(CaseFilter {
            limit: 200,
            ..CaseFilter::all("2026-03-02".parse().unwrap())
        })
        .await
        .unwrap();
    assert_eq!(
        page.cases.len(),
        30,
        "every local write around them committed"
    );
}

#[tokio::test]
async fn refused_writes_change_nothing() {
    let (_dir, store) = open_temp();
    publish_catalog(&store).await;
    let residence = item("居住证申领");
    let id = receive(&store, &residence, "2026-03-02").await;
    let before = store.content_digest().await.unwrap();
    let staff = staff();
    let attempts: Vec<(NewAction, &str)> = vec![
        (
            NewAction::Do(Action::Complete {
                result: "x".into(),
                delivery: "y".into(),
            }),
            "cannot complete",
        ),
        (
            NewAction::Do(Action::Refuse {
                reason: "".into(),
                basis: "b".into(),
                remedies: "r".into(),
                competent_authority: None,
            }),
            "legal basis",
        ),
        (
            NewAction::Do(Action::Extend {
                days: 3,
                reason: "r".into(),
                request: None,
            }),
            "only a lead",
        ),
    ];
    for (action, needle) in attempts {
        let err = store
            .act_on_case(id.clone(), vec![action], staff.clone(), at("2026-03-02"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains(needle), "{err}");
    }
    let unknown = DocId::parse("c-0000000000000000-00000000000000000000000000000000").unwrap();
    assert!(matches!(
        store
            .act_on_case(
                unknown,
                vec![NewAction::Accept],
                staff.clone(),
                at("2026-03-02")
            )
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store
            .create_case(
                "no-such-item".into(),
                complete_application(&residence),
                staff.clone(),
                at("2026-03-02")
            )
            .await,
        Err(StoreError::NotFound { .. })
    ));
    let mut bad_item = residence.clone();
    bad_item.version = 2;
    bad_item.committed_limit_days = bad_item.legal_limit_days + 1;
    let scope = Scope::catalog(&DivisionCode::parse("440399").unwrap());
    assert!(matches!(
        store
            .publish_item(scope.clone(), bad_item, at("2026-03-02"))
            .await,
        Err(StoreError::Item(_))
    ));
    let stale = residence.clone();
    assert!(matches!(
        store.publish_item(scope, stale, at("2026-03-02")).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.content_digest().await.unwrap(), before);
}

/// Rebuilding from the documents gives exactly the rows the writes produced, and repairs
/// rows that were damaged.
#[tokio::test]
async fn rebuild_reproduces_every_row() {
    let (_dir, store) = open_temp();
    publish_catalog(&store).await;
    // A combined item needs its departments, which a station alone has not: its own
    // test (`a_combined_case_is_decided_by_its_parts_and_rebuilt`) covers it.
    let items: Vec<Item> = demo_catalog()
        .into_iter()
        .filter(|i| i.parts.is_empty())
        .collect();
    // Writes in time order, as a node makes them: receive all, accept most, suspend some.
    let mut ids = Vec::new();
    for item in &items {
        ids.push(receive(&store, item, "2026-02-10").await);
    }
    for (n, id) in ids.iter().enumerate() {
        if n % 3 != 0 {
            accept(&store, id, "2026-02-11").await;
        }
    }
    let mut suspended = 0;
    for (n, (id, item)) in ids.iter().zip(&items).enumerate() {
        let Some(procedure) = item.special_procedures.iter().find(|p| !p.counted) else {
            continue;
        };
        if n % 3 == 0 {
            continue;
        }
        let suspend = Action::Suspend {
            procedure: procedure.name.clone(),
            reason: "按规定办理".into(),
        };
        store
            .act_on_case(
                id.clone(),
                vec![NewAction::Do(suspend)],
                staff(),
                at("2026-02-12"),
            )
            .await
            .unwrap();
        suspended += 1;
    }
    assert!(suspended >= 3);
    // The accepted cases of items with steps finish their first step (§9.2.2): the step
    // each is in and its warning days are derived rows too.
    let mut stepped = 0;
    for (n, (id, item)) in ids.iter().zip(&items).enumerate() {
        if n % 3 == 0 || item.process.len() < 2 {
            continue;
        }
        let finish = Action::FinishStep {
            step: 1,
            note: String::new(),
        };
        store
            .act_on_case(
                id.clone(),
                vec![NewAction::Do(finish)],
                staff(),
                at("2026-02-13"),
            )
            .await
            .unwrap();
        stepped += 1;
    }
    assert!(stepped >= 3);
    let in_step_two: i64 = rusqlite::Connection::open(store.path())
        .unwrap()
        .query_row(
            "SELECT count(*) FROM cases WHERE step_no = 2 AND step_name IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(in_step_two, stepped);
    let before = store.content_digest().await.unwrap();
    let report = store.rebuild().await.unwrap();
    assert_eq!(report.rows_differing, 0);
    assert!(report.unreadable.is_empty());
    assert_eq!(report.items as usize, demo_catalog().len());
    assert_eq!(report.cases as usize, items.len());
    assert_eq!(store.content_digest().await.unwrap(), before);
    // A rebuild that changed nothing leaves a PostgreSQL sink's position valid.
    let generation = || store.feed_reader().unwrap().identity().unwrap().generation;
    assert_eq!(generation(), 0);

    // Damage a row behind the store's back; rebuild notices and repairs it.
    let path = store.path().to_path_buf();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE cases SET status = 'completed', red_on = NULL WHERE rowid = 1",
        [],
    )
    .unwrap();
    conn.execute(
        "UPDATE cases SET step_no = NULL, step_red_on = NULL WHERE step_no = 2",
        [],
    )
    .unwrap();
    conn.execute(
        "DELETE FROM case_events WHERE rowid IN (SELECT rowid FROM case_events LIMIT 1)",
        [],
    )
    .ok();
    drop(conn);
    assert_ne!(store.content_digest().await.unwrap(), before);
    let report = store.rebuild().await.unwrap();
    assert!(report.rows_differing >= 2, "{report:?}");
    assert_eq!(store.content_digest().await.unwrap(), before);
    // One that changed rows makes the sink write the whole feed again.
    assert_eq!(generation(), 1);
}

#[tokio::test]
async fn documents_are_reloaded_when_the_cache_is_small() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        &dir.path().join("yizhan.db"),
        StoreOptions {
            doc_cache: 1,
            ..options()
        },
    )
    .unwrap();
    publish_catalog(&store).await;
    let residence = item("居住证申领");
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(receive(&store, &residence, "2026-03-02").await);
    }
    for id in &ids {
        accept(&store, id, "2026-03-03").await;
    }
    for id in &ids {
        let case = store
            .get_case(id.to_string(), "2026-03-03".parse().unwrap())
            .await
            .unwrap();
        assert_eq!(case.summary.status, Status::Accepted);
    }
}

fn filter(today: &str) -> CaseFilter {
    CaseFilter::all(today.parse().unwrap())
}

/// Warning levels come from today's date at query time, each level lists in order of
/// urgency, and cursors walk every page exactly once.
#[tokio::test]
async fn lists_filter_by_level_and_page_with_cursors() {
    let (_dir, store) = open_temp();
    publish_catalog(&store).await;
    // 老年人优待证: committed 5, legal 10, yellow 1 working day before.
    let card = item("老年人优待证办理");
    let dates = [
        "2026-03-02",
        "2026-03-03",
        "2026-03-04",
        "2026-03-09",
        "2026-03-10",
        "2026-03-16",
        "2026-03-17",
    ];
    let mut ids = Vec::new();
    for date in dates {
        for _ in 0..3 {
            let id = receive(&store, &card, date).await;
            accept(&store, &id, date).await;
            ids.push(id);
        }
    }
    // Never accepted: no level at all.
    receive(&store, &card, "2026-03-17").await;
    let today = "2026-03-17";
    // Accepted 03-02: committed due 03-09, legal 03-16 → breach. 03-03: due 03-10 / 03-17
    // → red. 03-04: 03-11 / 03-18 → red. 03-09: 03-16 / 03-23 → red. 03-10: 03-17 →
    // yellow (due today). 03-16: due 03-23, yellow from 03-20 → normal. 03-17 → normal.
    let expected = [
        (WarningLevel::LegalBreach, 3),
        (WarningLevel::Red, 9),
        (WarningLevel::Yellow, 3),
        (WarningLevel::Normal, 6),
    ];
    for (level, count) in expected {
        let page = store
            .list_cases(CaseFilter {
                level: Some(level),
                ..filter(today)
            })
            .await
            .unwrap();
        assert_eq!(page.cases.len(), count, "{level:?}");
        assert!(page.cases.iter().all(|c| c.level == Some(level)));
        let keys: Vec<_> = page
            .cases
            .iter()
            .map(|c| {
                if level >= WarningLevel::Red {
                    c.legal_due.clone()
                } else {
                    c.committed_due.clone()
                }
            })
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted, "{level:?} is listed most urgent first");
        // The same filter with the status filter the counter uses.
        let with_status = store
            .list_cases(CaseFilter {
                level: Some(level),
                status: Some(Status::Accepted),
                ..filter(today)
            })
            .await
            .unwrap();
        assert_eq!(with_status.cases.len(), count);
    }
    // The level moves with the calendar, without any write: on 03-11 the 03-10 cases turn red.
    let later = store
        .list_cases(CaseFilter {
            level: Some(WarningLevel::Red),
            ..filter("2026-03-18")
        })
        .await
        .unwrap();
    assert_eq!(
        later.cases.len(),
        9,
        "03-03 cases breach, 03-10 cases turn red"
    );

    for (level, page_size) in [
        (None, 4),
        (Some(WarningLevel::Red), 2),
        (Some(WarningLevel::Normal), 5),
    ] {
        let mut seen = Vec::new();
        let mut cursor = None;
        for _ in 0..50 {
            let page = store
                .list_cases(CaseFilter {
                    level,
                    cursor: cursor.clone(),
                    limit: page_size,
                    ..filter(today)
                })
                .await
                .unwrap();
            seen.extend(page.cases.iter().map(|c| c.id.clone()));
            cursor = page.next_cursor;
            if cursor.is_none() {
                break;
            }
        }
        let all = store
            .list_cases(CaseFilter {
                level,
                limit: 200,
                ..filter(today)
            })
            .await
            .unwrap();
        let all: Vec<_> = all.cases.into_iter().map(|c| c.id).collect();
        assert_eq!(seen, all, "paging {level:?} by {page_size}");
    }
    let newest_first = store.list_cases(filter(today)).await.unwrap();
    assert_eq!(newest_first.cases.len(), 22);
    assert_eq!(newest_first.cases[0].status, Status::Submitted);
    let err = store
        .list_cases(CaseFilter {
            cursor: Some("d~2026-03-01~x".into()),
            ..filter(today)
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cursor"), "{err}");
    let submitted = store
        .list_cases(CaseFilter {
            status: Some(Status::Submitted),
            ..filter(today)
        })
        .await
        .unwrap();
    assert_eq!(submitted.cases.len(), 1);
    assert_eq!(submitted.cases[0].level, None);
    let ranged = store
        .list_cases(CaseFilter {
            created_from: Some("2026-03-04".parse().unwrap()),
            created_to: Some("2026-03-10".parse().unwrap()),
            ..filter(today)
        })
        .await
        .unwrap();
    assert_eq!(ranged.cases.len(), 9);
}

#[tokio::test]
async fn refuses_a_database_of_another_node() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("yizhan.db");
    let store = Store::open(&path, options()).unwrap();
    store.shutdown().await;
    drop(store);
    let other = StoreOptions {
        identity: identity(8, yizhan_sync::auth::NodeRole::Station, "440399001001"),
        ..options()
    };
    let err = Store::open(&path, other).unwrap_err();
    assert!(matches!(err, OpenStoreError::WrongNode { .. }), "{err}");
    assert!(err.to_string().contains("do not match"));
}

#[tokio::test]
async fn accounts_and_tokens() {
    let (_dir, store) = open_temp();
    let user = NewUser {
        username: "li".into(),
        display_name: "李敏".into(),
        role: Role::Worker,
        counter: "2号窗口".into(),
        password_hash: "$argon2id$fake".into(),
    };
    store.add_user(user.clone(), 1).await.unwrap();
    assert!(matches!(
        store.add_user(user, 1).await,
        Err(StoreError::Conflict(_))
    ));
    store
        .add_token("li".into(), [9; 32], "test".into(), 1)
        .await
        .unwrap();
    assert_eq!(
        store.token_owner([9; 32]).await.unwrap().unwrap().username,
        "li"
    );
    assert!(store.token_owner([8; 32]).await.unwrap().is_none());
    store.set_disabled("li".into(), true).await.unwrap();
    assert!(
        store.token_owner([9; 32]).await.unwrap().is_none(),
        "a disabled user's tokens stop working"
    );
    assert!(matches!(
        store.set_disabled("nobody".into(), true).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store
            .add_token("nobody".into(), [1; 32], "x".into(), 1)
            .await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn rebuild_keeps_the_rows_of_documents_it_cannot_read() {
    let (_dir, store) = open_temp();
    publish_catalog(&store).await;
    let residence = item("居住证申领");
    let id = receive(&store, &residence, "2026-03-02").await;
    let conn = rusqlite::Connection::open(store.path()).unwrap();
    conn.execute(
        "UPDATE documents SET bytes = x'00ff00' WHERE id = ?1",
        [id.as_str()],
    )
    .unwrap();
    drop(conn);
    let report = store.rebuild().await.unwrap();
    assert_eq!(report.unreadable.len(), 1);
    assert_eq!(report.unreadable[0].0, id.as_str());
    assert_eq!(
        report.rows_differing, 0,
        "the unreadable case keeps its rows"
    );
    let page = store.list_cases(filter("2026-03-02")).await.unwrap();
    assert!(page.cases.iter().any(|c| c.id == id.as_str()));
}

#[tokio::test]
async fn writes_stop_when_the_clock_is_far_behind_recorded_time() {
    let (_dir, store) = open_temp();
    publish_catalog(&store).await;
    let residence = item("居住证申领");
    receive(&store, &residence, "2026-03-02").await;
    // Three hours back is tolerated (events keep the newest time)...
    let earlier = at("2026-03-02") - 3 * 3_600_000;
    store
        .create_case(
            residence.impl_code.to_string(),
            complete_application(&residence),
            staff(),
            earlier,
        )
        .await
        .unwrap();
    // ...a day back is refused with what to do.
    let err = store
        .create_case(
            residence.impl_code.to_string(),
            complete_application(&residence),
            staff(),
            at("2026-03-01"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::ClockBehind { .. }), "{err}");
    assert!(err.to_string().contains("set the clock right"), "{err}");
}

#[tokio::test]
async fn a_new_calendar_recomputes_every_deadline_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("yizhan.db");
    let store = Store::open(&path, options()).unwrap();
    publish_catalog(&store).await;
    let residence = item("居住证申领");
    let id = receive(&store, &residence, "2026-03-02").await;
    accept(&store, &id, "2026-03-02").await;
    let right = store
        .get_case(id.to_string(), "2026-03-02".parse().unwrap())
        .await
        .unwrap()
        .summary
        .committed_due;
    store.shutdown().await;
    drop(store);
    // As if the deadlines had been computed by an older build with other figures.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE cases SET committed_due = '2026-01-01', red_on = '2026-01-02'",
        [],
    )
    .unwrap();
    conn.execute(
        "UPDATE meta SET value = 'cn-mainland:2026.0' WHERE key = 'calendar'",
        [],
    )
    .unwrap();
    drop(conn);
    let store = Store::open(&path, options()).unwrap();
    let case = store
        .get_case(id.to_string(), "2026-03-02".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(case.summary.committed_due, right);
    // A command that does not migrate does not recompute either, and refuses an old schema.
    store.shutdown().await;
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 1).unwrap();
    drop(conn);
    let err = Store::open(
        &path,
        StoreOptions {
            migrate: false,
            ..options()
        },
    )
    .unwrap_err();
    assert!(
        matches!(err, OpenStoreError::NeedsMigration { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("yizhan serve"), "{err}");
}

#[tokio::test]
async fn a_new_database_uses_4k_pages_and_checkpoints_every_16_mib() {
    let (dir, store) = open_temp();
    store.shutdown().await;
    let conn = rusqlite::Connection::open(dir.path().join("yizhan.db")).unwrap();
    let page_size: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    assert_eq!(page_size, 4096);

    // The checkpoint comes at 16 MiB of WAL whatever the page size: a new file's 4 KiB
    // pages, or an older file's 8 KiB ones.
    for (made_with, pages) in [(None, 4096), (Some(8192), 2048)] {
        let dir = tempfile::tempdir().unwrap();
        let conn = rusqlite::Connection::open(dir.path().join("yizhan.db")).unwrap();
        if let Some(size) = made_with {
            conn.execute_batch(&format!(
                "PRAGMA page_size = {size}; PRAGMA journal_mode = WAL; CREATE TABLE t (x);"
            ))
            .unwrap();
        }
        super::configure(&conn, super::Synchronous::Full).unwrap();
        let autocheckpoint: i64 = conn
            .query_row("PRAGMA wal_autocheckpoint", [], |r| r.get(0))
            .unwrap();
        assert_eq!(autocheckpoint, pages, "made with {made_with:?}");
    }
}

/// A reader that keeps the WAL from starting over lets it grow past the checkpoint
/// threshold; once it is done and a checkpoint has copied the WAL, the next commit cuts the
/// file back to the threshold instead of keeping its length until the node stops.
#[test]
fn the_wal_file_shrinks_back_after_a_burst() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("yizhan.db");
    let wal_len = || std::fs::metadata(path.with_extension("db-wal")).map_or(0, |m| m.len());
    let writer = rusqlite::Connection::open(&path).unwrap();
    super::configure(&writer, super::Synchronous::Normal).unwrap();
    writer
        .execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, bytes BLOB)")
        .unwrap();
    let reader = rusqlite::Connection::open(&path).unwrap();
    reader
        .execute_batch("BEGIN; SELECT COUNT(*) FROM t;")
        .unwrap();
    let threshold = super::WAL_CHECKPOINT_BYTES as u64;
    let insert = |i: i64| {
        writer
            .execute(
                "INSERT INTO t (id, bytes) VALUES (?1, zeroblob(30000))",
                [i],
            )
            .unwrap();
    };
    // 24 MiB of rows, one commit each, while the reader holds its snapshot.
    for i in 0..840 {
        insert(i);
    }
    let grown = wal_len();
    assert!(
        grown > threshold + (4 << 20),
        "the WAL grew to {grown} bytes"
    );
    reader.execute_batch("COMMIT").unwrap();
    writer
        .execute_batch("PRAGMA wal_checkpoint(PASSIVE)")
        .unwrap();
    insert(840);
    let after = wal_len();
    assert!(
        after <= threshold + (64 << 10),
        "the WAL file kept {after} bytes (it had grown to {grown})"
    );
}

#[tokio::test]
async fn notices_are_numbered_in_sequence_sealed_and_never_changed() {
    let (dir, store) = open_temp();
    publish_catalog(&store).await;
    let residence = item("居住证申领");
    let (c1, c2) = (
        receive(&store, &residence, "2026-03-02").await,
        receive(&store, &residence, "2026-03-02").await,
    );
    // The node's own key: a notice is a document its receivers check under that key.
    let key = crate::identity::NodeKey::from_seed([7; 32]);
    let public = key.public_key();
    let node = key.node_id().to_hex();
    let signer = std::sync::Arc::new(key);
    let mut numbers = Vec::new();
    for case in [c1.to_string(), c1.to_string(), c2.to_string()] {
        let sign = signer.clone();
        let node = node.clone();
        let issued = store
            .issue_notice(
                "TZTEST".into(),
                move |number| crate::notice::NoticeContent {
                    number,
                    case_id: case,
                    node,
                    ..crate::notice::tests::sample("")
                },
                move |message| sign.sign(message),
                at("2026-03-02"),
            )
            .await
            .unwrap();
        let seal = crate::notice::parse_qr(&crate::notice::qr_text(
            &issued.content.node,
            &issued.content.number,
            &issued.digest,
            &issued.signature,
        ))
        .unwrap();
        assert!(crate::notice::signature_holds(&seal, &public));
        numbers.push(issued.content.number);
    }
    assert_eq!(numbers, ["TZTEST-000001", "TZTEST-000002", "TZTEST-000003"]);
    let of_case = store.notices_of_case(c1.to_string()).await.unwrap();
    assert_eq!(of_case.len(), 2);
    let read = store.notice("TZTEST-000002".into()).await.unwrap().unwrap();
    assert_eq!(read.content.digest(), read.digest);
    // Each is a document too, and its row is what the document derives.
    let before = store.content_digest().await.unwrap();
    assert_eq!(store.rebuild().await.unwrap().rows_differing, 0);
    assert_eq!(store.content_digest().await.unwrap(), before);
    // Nothing of this node's is left to publish.
    assert_eq!(
        store.publish_local_notices(at("2026-03-03")).await.unwrap(),
        0
    );
    store.shutdown().await;
    // The table refuses any change.
    let conn = rusqlite::Connection::open(dir.path().join("yizhan.db")).unwrap();
    let changed = conn.execute(
        "UPDATE notices SET content_json = '{}' WHERE number = 'TZTEST-000001'",
        [],
    );
    assert!(changed.unwrap_err().to_string().contains("never changed"));
}

/// A node upgraded with notices in its table (schema 11, before notices were documents)
/// keeps them as they were sealed and publishes them as documents at its next start.
#[tokio::test]
async fn notices_of_an_older_node_are_kept_and_published_as_documents() {
    let (dir, store) = open_temp();
    publish_catalog(&store).await;
    let case = receive(&store, &item("居住证申领"), "2026-03-02").await;
    let key = crate::identity::NodeKey::from_seed([7; 32]);
    let content = crate::notice::NoticeContent {
        number: "TZ0LD-000001".into(),
        case_id: case.to_string(),
        node: key.node_id().to_hex(),
        ..crate::notice::tests::sample("")
    };
    let digest = content.digest();
    let signature = key.sign(&crate::notice::sealed_message(&content.number, &digest));
    store.shutdown().await;
    let path = dir.path().join("yizhan.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP TABLE notices;
             CREATE TABLE notices (
                 id INTEGER PRIMARY KEY, number TEXT NOT NULL UNIQUE, case_id TEXT NOT NULL,
                 kind TEXT NOT NULL, content_json TEXT NOT NULL, digest BLOB NOT NULL,
                 signature BLOB NOT NULL, issued_ms INTEGER NOT NULL, supersedes TEXT) STRICT;
             DROP TABLE supervision_notices; DROP TABLE supervision_replies;
             DROP TABLE notifications; DROP TABLE departments;
             DROP INDEX IF EXISTS cases_scope_red; DROP INDEX IF EXISTS cases_scope_breach;
             DROP INDEX cases_open_deadline; DROP INDEX IF EXISTS cases_scope_deadline;
             DROP INDEX IF EXISTS cases_open_levels; DROP INDEX IF EXISTS cases_completed_scope;
             DROP INDEX IF EXISTS cases_rated_scope; DROP INDEX IF EXISTS cases_rectify_scope;
             DROP INDEX IF EXISTS cases_scope_updated; DROP INDEX cases_holder_name;
             ALTER TABLE documents DROP COLUMN upto;
             DROP INDEX IF EXISTS changes_doc;
             DROP TABLE staff_accounts; DROP TABLE staff_tokens; DROP TABLE counters;
             ALTER TABLE cases DROP COLUMN step_no; ALTER TABLE cases DROP COLUMN step_name;
             ALTER TABLE cases DROP COLUMN step_due;
             ALTER TABLE cases DROP COLUMN step_yellow_on;
             ALTER TABLE cases DROP COLUMN step_red_on;
             DROP TABLE case_parts;
             DROP TABLE case_fees;
             PRAGMA user_version = 11;",
        )
        .unwrap();
        conn.execute(
            "INSERT INTO notices VALUES (1, ?1, ?2, 'receipt', ?3, ?4, ?5, ?6, NULL)",
            rusqlite::params![
                content.number,
                content.case_id,
                String::from_utf8(content.canonical()).unwrap(),
                &digest[..],
                &signature[..],
                at("2026-03-02") as i64 + 123,
            ],
        )
        .unwrap();
        // One about a case this node does not hold (any more): it stays a row.
        let orphan = crate::notice::NoticeContent {
            number: "TZ0LD-000009".into(),
            case_id: "c-0000000000000009-09090909090909090909090909090909".into(),
            ..content.clone()
        };
        conn.execute(
            "INSERT INTO notices VALUES (9, ?1, ?2, 'receipt', ?3, ?4, ?5, 0, NULL)",
            rusqlite::params![
                orphan.number,
                orphan.case_id,
                String::from_utf8(orphan.canonical()).unwrap(),
                &orphan.digest()[..],
                &signature[..],
            ],
        )
        .unwrap();
    }
    let store = Store::open(&path, options()).unwrap();
    let held = store.notice("TZ0LD-000001".into()).await.unwrap().unwrap();
    assert_eq!(
        (held.content.clone(), held.signature),
        (content.clone(), signature)
    );
    // The sealed issue time, to the second, as a rebuild derives it.
    assert_eq!(held.issued_ms, at("2026-03-02") as i64);
    assert_eq!(
        store.publish_local_notices(at("2026-03-03")).await.unwrap(),
        1
    );
    assert_eq!(
        store.publish_local_notices(at("2026-03-03")).await.unwrap(),
        0
    );
    let before = store.content_digest().await.unwrap();
    assert_eq!(store.rebuild().await.unwrap().rows_differing, 0);
    assert_eq!(store.content_digest().await.unwrap(), before);
    assert!(store.notice("TZ0LD-000009".into()).await.unwrap().is_some());
    // Its numbers go on after the highest.
    let next = store
        .issue_notice(
            "TZ0LD".into(),
            move |number| crate::notice::NoticeContent { number, ..content },
            move |message| key.sign(message),
            at("2026-03-03"),
        )
        .await
        .unwrap();
    assert_eq!(next.content.number, "TZ0LD-000010");
}

// ---------------------------------------------------------------- appointments

fn booking(item: &Item, day: &str, start: &str, phone: &str) -> NewAppointment {
    NewAppointment {
        impl_code: item.impl_code.to_string(),
        item_name: item.name.clone(),
        slot: crate::appointments::Slot {
            day: day.parse().unwrap(),
            start: crate::appointments::Minute::parse(start).unwrap(),
        },
        name: "李四".into(),
        phone: Phone::parse(phone).unwrap(),
    }
}

/// Many bookings for one slot at once: exactly `capacity` succeed, the rest are told the
/// slot is full, and the store holds exactly `capacity` of them.
#[tokio::test]
async fn concurrent_bookings_never_overbook_a_slot() {
    let (_dir, store) = open_temp();
    publish_catalog(&store).await;
    let relief = item("最低生活保障申请");
    let capacity = 3;
    let attempts = (0..40).map(|n| {
        let store = store.clone();
        let new = booking(&relief, "2026-03-03", "09:30", &format!("138{n:08}"));
        tokio::spawn(async move {
            store
                .book_appointment(new, capacity, at("2026-03-02"))
                .await
        })
    });
    let mut booked = Vec::new();
    let mut full = 0;
    for attempt in attempts {
        match attempt.await.unwrap().unwrap() {
            Ok(a) => booked.push(a),
            Err(BookingRefused::Full) => full += 1,
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!((booked.len(), full), (3, 37));
    let codes: HashSet<_> = booked.iter().map(|a| a.code.clone()).collect();
    assert_eq!(codes.len(), 3, "codes are unique");
    let day: Date = "2026-03-03".parse().unwrap();
    assert_eq!(store.appointments_on(day).await.unwrap().len(), 3);
    let taken = store.appointments_taken(day, day).await.unwrap();
    assert_eq!(taken.values().copied().collect::<Vec<_>>(), vec![3]);
    // Another slot of the same day still has every place.
    let other = booking(&relief, "2026-03-03", "10:00", "13900000000");
    assert!(
        store
            .book_appointment(other, capacity, 0)
            .await
            .unwrap()
            .is_ok()
    );
}

#[tokio::test]
async fn a_phone_holds_one_booking_per_day_and_item_until_it_cancels() {
    let (_dir, store) = open_temp();
    publish_catalog(&store).await;
    let relief = item("最低生活保障申请");
    let other_item = demo_catalog()
        .into_iter()
        .find(|i| i.impl_code != relief.impl_code)
        .unwrap();
    let first = store
        .book_appointment(booking(&relief, "2026-03-03", "09:00", "13800138000"), 2, 0)
        .await
        .unwrap()
        .unwrap();
    let before = store.content_digest().await.unwrap();
    // The same number typed with spaces is the same phone, even for another slot.
    let again = booking(&relief, "2026-03-03", "15:00", "138 0013 8000");
    assert_eq!(
        store.book_appointment(again.clone(), 2, 0).await.unwrap(),
        Err(BookingRefused::PhoneHasOne)
    );
    assert_eq!(
        store.content_digest().await.unwrap(),
        before,
        "nothing stored"
    );
    // Another day or another item is fine.
    for new in [
        booking(&relief, "2026-03-04", "09:00", "13800138000"),
        booking(&other_item, "2026-03-03", "09:00", "13800138000"),
    ] {
        assert!(store.book_appointment(new, 2, 0).await.unwrap().is_ok());
    }
    // Cancelling needs the last four digits; then the phone may book that day again and
    // the place is free.
    assert_eq!(
        store
            .cancel_appointment(first.code.clone(), "0000".into(), 1)
            .await
            .unwrap(),
        Err(CancelRefused::NotFound)
    );
    assert_eq!(
        store
            .cancel_appointment(first.code.clone(), "8000".into(), 1)
            .await
            .unwrap(),
        Ok(())
    );
    assert_eq!(
        store
            .cancel_appointment(first.code.clone(), "8000".into(), 2)
            .await
            .unwrap(),
        Err(CancelRefused::NotBooked)
    );
    let found = store
        .appointment_by_code(first.code)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.status, AppointmentStatus::Cancelled);
    assert!(store.book_appointment(again, 2, 0).await.unwrap().is_ok());
}

#[tokio::test]
async fn an_appointment_becomes_one_case() {
    let (_dir, store) = open_temp();
    publish_catalog(&store).await;
    let relief = item("最低生活保障申请");
    let a = store
        .book_appointment(booking(&relief, "2026-03-03", "09:00", "13800138000"), 2, 0)
        .await
        .unwrap()
        .unwrap();
    let start = |store: Store| {
        let relief = relief.clone();
        async move {
            store
                .create_case_from_appointment(
                    a.id,
                    relief.impl_code.to_string(),
                    complete_application(&relief),
                    staff(),
                    at("2026-03-03"),
                )
                .await
        }
    };
    // Two counters start it at once: one case, and the other is refused.
    let (one, two) = tokio::join!(start(store.clone()), start(store.clone()));
    let (made, refused) = match (one, two) {
        (Ok(id), Err(e)) | (Err(e), Ok(id)) => (id, e),
        other => panic!("exactly one start succeeds: {other:?}"),
    };
    assert!(matches!(refused, StoreError::Conflict(_)), "{refused}");
    assert_eq!(store.case_count().await.unwrap(), 1);
    let a = store.appointment(a.id).await.unwrap().unwrap();
    assert_eq!(a.status, AppointmentStatus::Arrived);
    assert_eq!(a.case_id.as_deref(), Some(made.to_string().as_str()));
    let of_case = store.appointment_of_case(made.to_string()).await.unwrap();
    assert_eq!(of_case.map(|a| a.code), Some(a.code));
    // A refused case (bad item) leaves the appointment booked.
    let b = store
        .book_appointment(booking(&relief, "2026-03-03", "09:00", "13900139000"), 2, 0)
        .await
        .unwrap()
        .unwrap();
    let err = store
        .create_case_from_appointment(
            b.id,
            "no-such-item".into(),
            complete_application(&relief),
            staff(),
            at("2026-03-03"),
        )
        .await;
    assert!(err.is_err());
    let b = store.appointment(b.id).await.unwrap().unwrap();
    assert_eq!((b.status, b.case_id), (AppointmentStatus::Booked, None));
    assert_eq!(store.case_count().await.unwrap(), 1);
}

#[test]
fn sqlite_errors_are_sorted_into_the_cases_callers_tell_apart() {
    let failure = |code| rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None);
    for (code, busy, full) in [
        (rusqlite::ffi::SQLITE_BUSY, true, false),
        (rusqlite::ffi::SQLITE_LOCKED, true, false),
        (rusqlite::ffi::SQLITE_FULL, false, true),
        (rusqlite::ffi::SQLITE_CORRUPT, false, false),
    ] {
        let e = StoreError::from(failure(code));
        assert_eq!(matches!(e, StoreError::Busy(_)), busy, "{code}: {e:?}");
        assert_eq!(matches!(e, StoreError::DiskFull(_)), full, "{code}: {e:?}");
        assert!(e.to_string().starts_with("database error: "), "{e}");
    }
}

/// Makes the database "full" for the writer: it may not grow past `extra_pages` more
/// pages (SQLite's `max_page_count`, a per-connection limit that answers SQLITE_FULL as a
/// full disk does). `None` lifts the limit, as freeing disk space would.
pub(crate) async fn limit_growth(store: &Store, extra_pages: Option<i64>) {
    store
        .write(move |ctx| {
            let pages: i64 = ctx.conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
            let limit = extra_pages.map_or(i64::from(u32::MAX - 1), |extra| pages + extra);
            ctx.conn
                .query_row(&format!("PRAGMA max_page_count = {limit}"), [], |_| Ok(()))?;
            Ok(())
        })
        .await
        .unwrap();
}

/// On a full disk every write is refused as `DiskFull`, nothing confirmed before is lost,
/// and the store writes again once there is room, without a restart.
#[tokio::test]
async fn a_full_disk_refuses_writes_and_keeps_what_was_confirmed() {
    let (_dir, store) = open_temp();
    publish_catalog(&store).await;
    let relief = item("最低生活保障申请");
    let mut confirmed = Vec::new();
    for _ in 0..3 {
        let id = store
            .create_case(
                relief.impl_code.to_string(),
                complete_application(&relief),
                staff(),
                at("2026-03-02"),
            )
            .await
            .unwrap();
        confirmed.push(id);
    }
    let before = store.content_digest().await.unwrap();
    limit_growth(&store, Some(0)).await;
    let mut refused = 0;
    for n in 0..50 {
        match store
            .create_case(
                relief.impl_code.to_string(),
                complete_application(&relief),
                staff(),
                at("2026-03-02") + n,
            )
            .await
        {
            Err(StoreError::DiskFull(_)) => refused += 1,
            Ok(id) => confirmed.push(id),
            Err(e) => panic!("a full disk gave {e:?}"),
        }
    }
    assert!(
        refused > 40,
        "only {refused} of 50 writes met the full disk"
    );
    for id in &confirmed {
        store
            .get_case(id.to_string(), "2026-03-02".parse().unwrap())
            .await
            .unwrap();
    }
    if confirmed.len() == 3 {
        assert_eq!(store.content_digest().await.unwrap(), before);
    }
    limit_growth(&store, None).await;
    store
        .create_case(
            relief.impl_code.to_string(),
            complete_application(&relief),
            staff(),
            at("2026-03-03"),
        )
        .await
        .unwrap();
    assert_eq!(
        store.case_count().await.unwrap(),
        confirmed.len() as u64 + 1
    );
}

/// A case is kept as a snapshot plus the changes after it: a new case's snapshot is empty
/// (it is read from its changes alone), the first is written at `SNAPSHOT_EVERY` changes
/// and then every `SNAPSHOT_EVERY` more, and a case read from the database (after a
/// restart, by a page, by a rebuild) holds every change all the same.
#[tokio::test]
async fn a_case_reads_whole_from_its_snapshot_and_the_changes_after_it() {
    use super::snapshot::SNAPSHOT_EVERY;
    let (dir, store) = open_temp();
    publish_catalog(&store).await;
    let items = demo_catalog();
    let (item, procedure) = items
        .iter()
        .find_map(|i| Some((i, i.special_procedures.iter().find(|p| !p.counted)?)))
        .expect("a demo item with an uncounted special procedure");
    let id = receive(&store, item, "2026-02-10").await;
    accept(&store, &id, "2026-02-10").await;
    let path = dir.path().join("yizhan.db");
    let snapshot_upto = |id: &DocId| -> (i64, i64, i64) {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.query_row(
            "SELECT upto, (SELECT count(*) FROM changes c WHERE c.doc_id = d.id AND c.local_seq > d.upto),
               length(bytes)
             FROM documents d WHERE id = ?1",
            [id.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
    };
    let base = store
        .get_case(id.to_string(), "2026-02-10".parse().unwrap())
        .await
        .unwrap()
        .events
        .len();
    let (created_upto, after, bytes) = snapshot_upto(&id);
    assert_eq!(
        (created_upto, after, bytes),
        (0, 2, 0),
        "no snapshot yet: the intake and the acceptance wait in the log"
    );
    // Read cold before any snapshot: a restarted store, its cache empty.
    store.shutdown().await;
    drop(store);
    let store = Store::open(&path, options()).unwrap();
    let cold = store
        .get_case(id.to_string(), "2026-02-10".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(cold.events.len(), base);
    // Suspend and resume, over and over: more changes than one snapshot interval.
    let rounds = SNAPSHOT_EVERY as usize + 4;
    for n in 0..rounds {
        let action = if n % 2 == 0 {
            Action::Suspend {
                procedure: procedure.name.clone(),
                reason: format!("第{n}次"),
            }
        } else {
            Action::Resume {
                note: format!("第{n}次"),
            }
        };
        store
            .act_on_case(
                id.clone(),
                vec![NewAction::Do(action)],
                lead(),
                at("2026-02-11") + n as u64 * 60_000,
            )
            .await
            .unwrap();
    }
    let (upto, after, bytes) = snapshot_upto(&id);
    assert!(upto > created_upto && bytes > 0, "a snapshot was written");
    assert!(
        after < i64::from(SNAPSHOT_EVERY),
        "{after} changes after the snapshot"
    );
    let events_now = store
        .get_case(id.to_string(), "2026-02-12".parse().unwrap())
        .await
        .unwrap()
        .events
        .len();
    assert_eq!(events_now, base + rounds);

    // Read cold: a restarted store, its cache empty.
    store.shutdown().await;
    drop(store);
    let store = Store::open(&path, options()).unwrap();
    let case = store
        .get_case(id.to_string(), "2026-02-12".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(case.events.len(), base + rounds);
    // The writer loads it the same way to change it again.
    store
        .act_on_case(
            id.clone(),
            vec![NewAction::Do(Action::Suspend {
                procedure: procedure.name.clone(),
                reason: "再次".into(),
            })],
            lead(),
            at("2026-02-12"),
        )
        .await
        .unwrap();
    let case = store
        .get_case(id.to_string(), "2026-02-12".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(case.events.len(), base + 1 + rounds);
    let report = store.rebuild().await.unwrap();
    assert_eq!(report.rows_differing, 0);
    assert!(report.unreadable.is_empty());
}

/// The writer's cached statements keep their plans whatever is bound: without the query
/// planner stability guarantee this SQLite re-prepares them on every new binding.
#[tokio::test]
async fn the_writer_never_prepares_a_cached_statement_again_for_new_values() {
    let (_dir, store) = open_temp();
    use rusqlite::OptionalExtension;
    let reprepared = store
        .write(|ctx| {
            let mut statement = ctx.conn.prepare(
                "SELECT seq FROM changes WHERE scope = ?1 AND origin_node = ?2 AND origin_epoch = ?3
                 ORDER BY seq DESC LIMIT 1",
            )?;
            for n in 0..3u8 {
                statement
                    .query_row(
                        rusqlite::params![format!("case/44030{n}"), vec![n; 16], n],
                        |_| Ok(()),
                    )
                    .optional()?;
            }
            Ok(statement.get_status(rusqlite::StatementStatus::RePrepare))
        })
        .await
        .unwrap();
    assert_eq!(reprepared, 0);
}

/// A clean close leaves a marker that spares the next start the page check; a close
/// without shutdown, a later open, or any change to the file takes it away.
#[tokio::test]
async fn only_a_clean_close_with_the_file_untouched_spares_the_page_check() {
    let (dir, store) = open_temp();
    let path = dir.path().join("yizhan.db");
    publish_catalog(&store).await;
    store.shutdown().await;
    drop(store);
    assert!(
        crate::store::clean_close(&path).is_some(),
        "looking leaves the marker"
    );
    assert!(
        crate::store::take_clean_close(&path).is_some(),
        "closed cleanly"
    );
    assert!(
        crate::store::take_clean_close(&path).is_none(),
        "the marker is used once"
    );

    // Closed cleanly, then opened again: the open takes the marker away.
    let store = Store::open(&path, options()).unwrap();
    store.shutdown().await;
    drop(store);
    let store = Store::open(&path, options()).unwrap();
    drop(store);
    assert!(
        crate::store::take_clean_close(&path).is_none(),
        "opened since"
    );

    // Dropped without shutdown (as a crash would leave it): no marker.
    let store = Store::open(&path, options()).unwrap();
    drop(store);
    assert!(
        crate::store::take_clean_close(&path).is_none(),
        "no clean close"
    );

    // Closed cleanly, then the file written behind the store's back.
    let store = Store::open(&path, options()).unwrap();
    store.shutdown().await;
    drop(store);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xFF;
    std::thread::sleep(Duration::from_millis(5));
    std::fs::write(&path, &bytes).unwrap();
    assert!(
        crate::store::take_clean_close(&path).is_none(),
        "written since"
    );
}

/// The writer's clock never goes back across a restart, whether the store closed cleanly
/// (the marker carries the clock, and the cases are not read) or not (the clock is read
/// from the cases), even when the wall clock went back meanwhile.
#[tokio::test]
async fn a_restart_never_issues_an_earlier_time() {
    use yizhan_sync::domain::hlc::Hlc;
    const HOUR: u64 = 3_600_000;
    let dibao = item("最低生活保障申请");
    let receive_at = |store: Store, ms: u64| {
        let dibao = dibao.clone();
        async move {
            store
                .create_case(
                    dibao.impl_code.to_string(),
                    complete_application(&dibao),
                    staff(),
                    ms,
                )
                .await
                .unwrap()
        }
    };
    for clean in [true, false] {
        let (dir, store) = open_temp();
        let path = dir.path().join("yizhan.db");
        publish_catalog(&store).await;
        let later = receive_at(store.clone(), at("2026-03-10") + 2 * HOUR).await;
        if clean {
            store.shutdown().await;
        }
        drop(store);
        let marker = crate::store::clean_close(&path);
        assert_eq!(marker.is_some(), clean);
        let updated = |id: &DocId| -> Hlc {
            let conn = rusqlite::Connection::open(&path).unwrap();
            let hex: String = conn
                .query_row(
                    "SELECT updated_hlc FROM cases WHERE id = ?1",
                    [id.to_string()],
                    |r| r.get(0),
                )
                .unwrap();
            Hlc::parse_hex(&hex).unwrap()
        };
        // The start takes the clean close's clock as it finds it: one moved on by two
        // hours (the file untouched, so the marker still holds) shows the cases are not
        // read.
        let mut floor = updated(&later);
        if let Some(marker) = marker {
            assert!(marker.clock.is_some_and(|c| c >= floor));
            let marker_path = path.with_extension("db.closed");
            let recorded = std::fs::read_to_string(&marker_path).unwrap();
            let (stamp, _) = recorded.rsplit_once(' ').unwrap();
            floor = Hlc::new(at("2026-03-10") + 4 * HOUR, 0);
            std::fs::write(&marker_path, format!("{stamp} {}", floor.to_hex())).unwrap();
            assert_eq!(
                crate::store::clean_close(&path).and_then(|m| m.clock),
                Some(floor)
            );
        }

        // The wall clock is now two hours earlier than the first case.
        let store = Store::open(&path, options()).unwrap();
        let earlier = receive_at(store.clone(), at("2026-03-10")).await;
        store.shutdown().await;
        drop(store);
        assert!(
            updated(&earlier) > floor,
            "clean close {clean}: {:?} after {floor:?}",
            updated(&earlier),
        );
    }
}

/// The start-up check: a sound file passes, and each kind of damage is named.
#[tokio::test]
async fn the_start_up_check_names_what_is_wrong_with_a_file() {
    let (dir, store) = open_temp();
    publish_catalog(&store).await;
    store.shutdown().await;
    let sound = dir.path().join("yizhan.db");
    let budget = Duration::from_secs(5);
    let checked = check_file(&sound, budget).unwrap();
    assert_eq!(checked.schema_version, SCHEMA_VERSION);
    assert!(checked.finished);
    let bytes = std::fs::read(&sound).unwrap();
    let page = usize::from(u16::from_be_bytes([bytes[16], bytes[17]]));
    assert!(bytes.len() >= 6 * page, "{} bytes", bytes.len());

    let copy = |name: &str, edit: &dyn Fn(&mut Vec<u8>)| {
        let path = dir.path().join(name);
        let mut damaged = bytes.clone();
        edit(&mut damaged);
        std::fs::write(&path, damaged).unwrap();
        path
    };
    type Edit = Box<dyn Fn(&mut Vec<u8>)>;
    let table: Vec<(&str, Edit, &str)> = vec![
        (
            "text",
            Box::new(|b| *b = b"not a database at all".repeat(10)),
            "SQLite header",
        ),
        ("short", Box::new(|b| b.truncate(60)), "too short"),
        (
            "cut",
            Box::new(|b| b.truncate(b.len() - 100)),
            "whole number",
        ),
        (
            "pages",
            Box::new(move |b| {
                let pages = b.len() / page;
                for byte in &mut b[page * (pages / 3)..page * (2 * pages / 3)] {
                    *byte = 0xA5;
                }
            }),
            "SQLite's check",
        ),
        (
            "page size",
            Box::new(|b| b[16..18].copy_from_slice(&[0x03, 0x00])),
            "impossible page size",
        ),
    ];
    for (name, edit, needle) in table {
        let path = copy(name, &*edit);
        match check_file(&path, budget) {
            Err(e @ FileError::DamagedFile { .. }) => {
                assert!(e.to_string().contains(needle), "{name}: {e}")
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    // A newer build's file, and a new one.
    let newer = copy("newer", &|_| {});
    Connection::open(&newer)
        .unwrap()
        .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    assert!(matches!(
        check_file(&newer, budget),
        Err(FileError::Newer { .. })
    ));
    let fresh = check_file(&dir.path().join("none.db"), budget).unwrap();
    assert_eq!((fresh.schema_version, fresh.finished), (0, true));
}

/// A day's cases are those received from 00:00 to 23:59:59.999 in Beijing, to the
/// millisecond: the list bounds the intake time by the dates as well as the dates.
#[tokio::test]
async fn a_days_cases_start_and_end_at_midnight_in_beijing() {
    let (_dir, store) = open_temp();
    publish_catalog(&store).await;
    let residence = item("居住证申领");
    let midnight = at("2026-03-03") - 10 * 3600 * 1000; // 2026-03-03 00:00 CST
    let mut ids = Vec::new();
    for when in [
        midnight - 1,
        midnight,
        midnight + 86_400_000 - 1,
        midnight + 86_400_000,
    ] {
        let id = store
            .create_case(
                residence.impl_code.to_string(),
                complete_application(&residence),
                staff(),
                when,
            )
            .await
            .unwrap();
        ids.push(id.to_string());
    }
    for (from, to, expected) in [
        ("2026-03-03", "2026-03-03", &ids[1..3]),
        ("2026-03-02", "2026-03-02", &ids[0..1]),
        ("2026-03-02", "2026-03-04", &ids[..]),
        ("2026-03-04", "2026-03-04", &ids[3..]),
        ("2026-03-05", "2026-03-01", &ids[..0]),
    ] {
        let listed = store
            .list_cases(CaseFilter {
                created_from: Some(from.parse().unwrap()),
                created_to: Some(to.parse().unwrap()),
                ..filter("2026-03-04")
            })
            .await
            .unwrap();
        let mut got: Vec<String> = listed.cases.into_iter().map(|c| c.id).collect();
        got.sort();
        let mut want = expected.to_vec();
        want.sort();
        assert_eq!(got, want, "{from}..={to}");
    }
}

/// A case accepted at 23:50 is still on the open list (在办) after midnight, which runs
/// soonest committed deadline first with cases not yet accepted last; and one search box
/// finds a case by its serial number or its tail, the applicant's name, identity number,
/// phone or query code.
#[tokio::test]
async fn open_cases_list_by_deadline_and_search_finds_them_every_way() {
    let (_dir, store) = open_temp();
    publish_catalog(&store).await;
    let residence = item("居住证申领");
    for name in ["就业困难人员认定", "困难残疾人生活补贴"] {
        let other = item(name);
        let other_id = receive(&store, &other, "2026-03-02").await;
        store
            .act_on_case(other_id, vec![NewAction::Accept], staff(), at("2026-03-02"))
            .await
            .unwrap();
    }
    let late = at("2026-03-02") + (13 * 60 + 50) * 60 * 1000; // 23:50 CST
    let id = store
        .create_case(
            residence.impl_code.to_string(),
            complete_application(&residence),
            staff(),
            late,
        )
        .await
        .unwrap();
    store
        .act_on_case(id.clone(), vec![NewAction::Accept], staff(), late)
        .await
        .unwrap();
    let short = NewCase {
        situations: Vec::new(),
        materials: Vec::new(),
        ..complete_application(&residence)
    };
    let waiting = store
        .create_case(
            residence.impl_code.to_string(),
            short,
            staff(),
            at("2026-03-03"),
        )
        .await
        .unwrap();
    let next_day = "2026-03-03";
    let today_only = store
        .list_cases(CaseFilter {
            created_from: Some(next_day.parse().unwrap()),
            created_to: Some(next_day.parse().unwrap()),
            ..filter(next_day)
        })
        .await
        .unwrap();
    assert!(!today_only.cases.iter().any(|c| c.id == id.to_string()));
    let open = store
        .list_cases(CaseFilter {
            open_only: true,
            order: Some(Order::Deadline),
            ..filter(next_day)
        })
        .await
        .unwrap();
    let ids: Vec<&str> = open.cases.iter().map(|c| c.id.as_str()).collect();
    assert!(ids.contains(&id.as_str()), "{ids:?}");
    assert_eq!(
        ids.last(),
        Some(&waiting.as_str()),
        "not yet accepted: last"
    );
    let dues: Vec<&str> = open
        .cases
        .iter()
        .filter_map(|c| c.committed_due.as_deref())
        .collect();
    assert!(dues.windows(2).all(|w| w[0] <= w[1]), "{dues:?}");
    assert_eq!(dues.len(), 3);
    // Paging by deadline visits every open case once.
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .list_cases(CaseFilter {
                open_only: true,
                order: Some(Order::Deadline),
                limit: 1,
                cursor,
                ..filter(next_day)
            })
            .await
            .unwrap();
        seen.extend(page.cases.into_iter().map(|c| c.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 4);

    let detail = store
        .get_case(id.to_string(), next_day.parse().unwrap())
        .await
        .unwrap();
    let serial = detail.summary.serial_no.clone().unwrap();
    let code = detail.query_code();
    for q in [
        serial.as_str(),
        &serial[serial.len() - 6..],
        "张",
        "11010519491231002x",
        "138 0013 8000",
        "8000",
        &code.to_lowercase(),
    ] {
        let found = store
            .list_cases(CaseFilter {
                search: CaseSearch::parse(q),
                ..filter(next_day)
            })
            .await
            .unwrap();
        assert!(
            found.cases.iter().any(|c| c.id == id.to_string()),
            "{q} finds the case"
        );
    }
    for q in ["王五", "11010519491231003X", "%", "ZZZZZZZZ"] {
        let found = store
            .list_cases(CaseFilter {
                search: CaseSearch::parse(q),
                ..filter(next_day)
            })
            .await
            .unwrap();
        assert!(found.cases.is_empty(), "{q} finds nothing");
    }
}

/// Accounts keep an enabled admin: the last one is neither disabled nor given another
/// role, whether the admin page or `yizhan user` asks.
#[tokio::test]
async fn the_last_admin_stays_an_admin() {
    let (_dir, store) = open_temp();
    for (name, role) in [("root", Role::Admin), ("li.min", Role::Worker)] {
        store
            .add_user(
                NewUser {
                    username: name.into(),
                    display_name: name.into(),
                    role,
                    counter: String::new(),
                    password_hash: "x".into(),
                },
                0,
            )
            .await
            .unwrap();
    }
    for refused in [
        store.set_disabled("root".into(), true).await,
        store
            .set_role_and_counter("root".into(), Role::Lead, "1号窗口".into())
            .await,
    ] {
        assert!(
            matches!(&refused, Err(StoreError::Conflict(w)) if w.code == "last_admin"),
            "{refused:?}"
        );
    }
    store
        .set_role_and_counter("li.min".into(), Role::Admin, "2号窗口".into())
        .await
        .unwrap();
    store.set_disabled("root".into(), true).await.unwrap();
    let users = store.list_users().await.unwrap();
    let li = users.iter().find(|u| u.username == "li.min").unwrap();
    assert_eq!((li.role, li.counter.as_str()), (Role::Admin, "2号窗口"));
    assert!(
        users
            .iter()
            .find(|u| u.username == "root")
            .unwrap()
            .disabled
    );
    assert!(matches!(
        store
            .set_role_and_counter("li.min".into(), Role::Admin, "\u{202E}x".into())
            .await,
        Err(StoreError::Case(_))
    ));
}

/// The hall's scope-prefixed indexes exist only at a hall (a station holds one scope, so
/// they would only cost writes there), and every query that names them still answers at
/// a station; the same file reopened as a hall gets them.
#[tokio::test]
async fn hall_indexes_exist_only_at_halls_and_every_query_answers_without_them() {
    let (dir, store) = open_temp();
    publish_catalog(&store).await;
    let residence = item("居住证申领");
    let id = receive(&store, &residence, "2026-03-02").await;
    accept(&store, &id, "2026-03-02").await;
    async fn hall_indexes(store: &Store) -> Vec<String> {
        store
            .read(|conn| {
                let mut stmt = conn.prepare(
                    "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'cases'
                     AND name IN ('cases_scope_red', 'cases_scope_breach', 'cases_scope_deadline',
                       'cases_open_levels', 'cases_completed_scope', 'cases_rated_scope',
                       'cases_rectify_scope', 'cases_scope_updated', 'cases_assess_received',
                       'cases_assess_completed', 'cases_assess_rated')
                     ORDER BY name",
                )?;
                let names = stmt.query_map([], |r| r.get(0))?;
                Ok(names.collect::<Result<Vec<String>, _>>()?)
            })
            .await
            .unwrap()
    }
    async fn answers(store: &Store, id: &DocId, hall: bool) {
        let today = "2026-03-03";
        for division in ["440399001001", "440399001"] {
            for (level, order) in [
                (None, Some(Order::Deadline)),
                (Some(WarningLevel::Normal), None),
            ] {
                let page = store
                    .list_cases(CaseFilter {
                        division: Some(DivisionCode::parse(division).unwrap()),
                        open_only: true,
                        level,
                        order,
                        ..filter(today)
                    })
                    .await
                    .unwrap();
                let ids: Vec<&str> = page.cases.iter().map(|c| c.id.as_str()).collect();
                assert_eq!(ids, [id.as_str()], "{division} {level:?}");
            }
        }
        let heard = store
            .last_heard(DivisionCode::parse("440399001001").unwrap())
            .await
            .unwrap();
        assert!(heard.is_some());
        let overview = store
            .station_overview(today.parse().unwrap())
            .await
            .unwrap();
        // A station has no stations below it; the hall counts the case at its station.
        assert_eq!(overview.total.open, u64::from(hall), "{overview:?}");
    }
    assert_eq!(hall_indexes(&store).await, Vec::<String>::new());
    answers(&store, &id, false).await;
    store.shutdown().await;
    drop(store);
    // A hall's file from before holds two indexes no longer made.
    Connection::open(dir.path().join("yizhan.db"))
        .unwrap()
        .execute_batch(
            "CREATE INDEX cases_completed_scope ON cases (closed_on, scope, committed_due, status)
               WHERE status = 'completed';
             CREATE INDEX cases_rated_scope ON cases (rated_on, scope, rating)
               WHERE rating IS NOT NULL;",
        )
        .unwrap();
    let mut as_hall = options();
    as_hall.identity = identity(7, yizhan_sync::auth::NodeRole::District, "440399");
    let hall = Store::open(&dir.path().join("yizhan.db"), as_hall).unwrap();
    assert_eq!(
        hall_indexes(&hall).await,
        [
            "cases_assess_completed",
            "cases_assess_rated",
            "cases_assess_received",
            "cases_open_levels",
            "cases_rectify_scope",
            "cases_scope_breach",
            "cases_scope_deadline",
            "cases_scope_red",
            "cases_scope_updated"
        ]
    );
    answers(&hall, &id, true).await;
}

/// The subtree list offers the departments cases were sent to, each once, in order.
#[tokio::test]
async fn the_departments_cases_were_sent_to_are_listed_once_each() {
    let (_dir, store) = open_temp();
    publish_catalog(&store).await;
    let residence = item("居住证申领");
    assert_eq!(
        store.case_departments().await.unwrap(),
        Vec::<String>::new()
    );
    let mut ids = Vec::new();
    for _ in 0..3 {
        let id = receive(&store, &residence, "2026-03-02").await;
        accept(&store, &id, "2026-03-02").await;
        ids.push(id);
    }
    for (n, (id, to)) in ids
        .into_iter()
        .zip(["区民政局", "区人社局", "区民政局"])
        .enumerate()
    {
        store
            .act_on_case(
                id,
                vec![NewAction::Do(Action::Transfer {
                    to: to.into(),
                    reason: format!("转办 {n}"),
                    to_node: None,
                })],
                staff(),
                at("2026-03-03"),
            )
            .await
            .unwrap();
    }
    assert_eq!(
        store.case_departments().await.unwrap(),
        ["区人社局", "区民政局"]
    );
}

/// The demo catalog's combined item (并联审批, §7.5) and the names its three deciding
/// departments get in the tests.
pub fn combined_item() -> Item {
    demo_catalog()
        .into_iter()
        .find(|i| !i.parts.is_empty())
        .expect("the demo catalog has a combined item")
}

pub const PART_DEPARTMENTS: [&str; 3] = ["区市场监督管理局", "区消防救援大队", "区城市管理局"];

/// Creates at the hall `store` the departments that decide `item`'s parts.
pub async fn create_part_departments(store: &Store, item: &Item, date: &str) {
    let admin = Staff {
        role: crate::store::Role::Admin,
        ..staff()
    };
    for (part, name) in item.parts.iter().zip(PART_DEPARTMENTS) {
        store
            .create_department(
                part.department.clone(),
                name.into(),
                admin.clone(),
                at(date),
            )
            .await
            .unwrap();
    }
}

/// A member of the `n`th part's department signs for the sub-case `sub` and approves it.
pub async fn department_approves(store: &Store, sub: &DocId, n: usize, date: &str) {
    let member = Staff {
        username: format!("dept{n}"),
        counter: PART_DEPARTMENTS[n].into(),
        role: crate::store::Role::Department,
    };
    store
        .act_on_case(
            sub.clone(),
            vec![
                NewAction::Do(Action::SignFor {
                    note: String::new(),
                    on_behalf_of: None,
                }),
                NewAction::Do(Action::Decide {
                    approved: true,
                    reason: "符合条件".into(),
                    basis: "《行政许可法》".into(),
                    remedies: String::new(),
                    on_behalf_of: None,
                }),
            ],
            member,
            at(date),
        )
        .await
        .unwrap();
}

/// 并联审批 (SZDB/Z 176 §7.5; 行政许可法 §26) in the store, at a hall whose departments
/// decide: one acceptance of the demo's combined item makes its three sub-cases, each
/// accepted and sent to its department; the whole is decided only once the third part
/// is, its limits are the law's 45 days, and a rebuild derives the parts' rows again.
#[tokio::test]
async fn a_combined_case_is_decided_by_its_parts_and_rebuilt() {
    use yizhan_sync::auth::NodeRole;
    let day = |d: &str| -> Date { d.parse().unwrap() };
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options();
    opts.identity = identity(9, NodeRole::Subdistrict, "440399001");
    let store = Store::open(&dir.path().join("yizhan.db"), opts).unwrap();
    publish_catalog(&store).await;
    let combined = combined_item();
    let admin = Staff {
        role: crate::store::Role::Admin,
        ..staff()
    };
    // Without its departments the intake is refused, naming the first unknown one.
    let refused = store
        .create_case(
            combined.impl_code.to_string(),
            complete_application(&combined),
            staff(),
            at("2026-03-02"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, StoreError::Case(CaseError::UnknownDecidingDepartment { code }) if code == "SCJ"),
        "{refused:?}"
    );
    create_part_departments(&store, &combined, "2026-03-02").await;
    let names = PART_DEPARTMENTS;
    let id = receive(&store, &combined, "2026-03-02").await;
    let received = store
        .get_case(id.to_string(), day("2026-03-02"))
        .await
        .unwrap();
    assert_eq!(received.parts.len(), 3);
    assert!(received.parts.iter().all(|p| p.case_id.is_none()));
    assert_eq!(received.intake.item.legal_limit_days, 45);
    assert_eq!(received.intake.item.legal_extension_days, 15);
    accept(&store, &id, "2026-03-02").await;
    let accepted = store
        .get_case(id.to_string(), day("2026-03-02"))
        .await
        .unwrap();
    assert_eq!(accepted.state.status, Status::Accepted);
    // 45 working days from 2 March 2026 (清明 and 劳动节 off, 9 May worked).
    assert_eq!(accepted.summary.legal_due.as_deref(), Some("2026-05-08"));
    let subs: Vec<DocId> = accepted
        .parts
        .iter()
        .map(|p| DocId::parse(p.case_id.as_deref().expect("made at acceptance")).unwrap())
        .collect();
    for (n, (sub, name)) in subs.iter().zip(names).enumerate() {
        let part = store
            .get_case(sub.to_string(), day("2026-03-03"))
            .await
            .unwrap();
        assert_eq!(part.state.status, Status::Accepted);
        assert_eq!(part.state.holder.as_deref(), Some(name));
        assert!(part.summary.serial_no.is_some());
        // The fire check's own 10 days: 16 March.
        if n == 1 {
            assert_eq!(part.summary.legal_due.as_deref(), Some("2026-03-16"));
        }
        // The whole is never decided as such, nor completed before its parts.
        let early = store
            .act_on_case(
                id.clone(),
                vec![NewAction::Do(Action::Complete {
                    result: "准予".into(),
                    delivery: "窗口领取".into(),
                })],
                admin.clone(),
                at("2026-03-10"),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(early, StoreError::Case(CaseError::DecidedByParts { .. })),
            "{early:?}"
        );
        let before = store.feed_head().await.unwrap();
        department_approves(&store, sub, n, "2026-03-10").await;
        let whole = store
            .get_case(id.to_string(), day("2026-03-10"))
            .await
            .unwrap();
        let expected = if n < 2 {
            Status::Accepted
        } else {
            Status::Decided
        };
        assert_eq!(whole.state.status, expected, "after part {n}");
        // The row lists, warnings and statistics read says the same as the page.
        assert_eq!(whole.summary.status, expected, "the row after part {n}");
        // The sink's feed brings the whole's row again with the part's change, though the
        // whole's document did not change.
        let batch = store.feed_reader().unwrap().read(before, 1_000).unwrap();
        let fed = batch.cases.iter().find(|c| c.id == id.as_str());
        assert_eq!(
            fed.map(|c| c.status.as_str()),
            Some(expected.as_str()),
            "the feed after part {n}"
        );
        assert_eq!(whole.parts[n].status, Some(Status::Decided));
    }
    let whole = store
        .get_case(id.to_string(), day("2026-03-10"))
        .await
        .unwrap();
    assert_eq!(whole.state.decision, Some(true));
    store
        .act_on_case(
            id.clone(),
            vec![NewAction::Do(Action::Complete {
                result: "准予".into(),
                delivery: "窗口领取".into(),
            })],
            admin,
            at("2026-03-11"),
        )
        .await
        .unwrap();
    let report = store.rebuild().await.unwrap();
    assert_eq!(report.rows_differing, 0, "{report:?}");
    let bound: i64 = store
        .read(|conn| Ok(conn.query_row("SELECT count(*) FROM case_parts", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert_eq!(bound, 3);
    let done = store
        .get_case(id.to_string(), day("2026-03-11"))
        .await
        .unwrap();
    assert_eq!(done.state.status, Status::Completed);
    assert_eq!(done.summary.status, Status::Completed);
    assert_eq!(done.summary.closed_on.as_deref(), Some("2026-03-11"));

    // The statistics count the application once, as its whole; its parts are the
    // departments' work, counted in the assessment's department lines only.
    let march = crate::store::Month::parse("2026-03").unwrap();
    let (_, figures) = store.monthly_stats(march, 1).await.unwrap().pop().unwrap();
    assert_eq!(
        (figures.received, figures.accepted, figures.completed),
        (1, 1, 1)
    );
    let period = store.period_stats(march).await.unwrap();
    let received: u64 = period.per_counter.iter().map(|w| w.received).sum();
    assert_eq!(received, 1);
    let assess = |by| store.assessment(march, by, crate::store::Role::Admin, day("2026-03-11"));
    let by_station = assess(crate::store::AssessmentBy::Station).await.unwrap();
    assert_eq!(
        (by_station.total.received, by_station.total.completed),
        (1, 1)
    );
    let by_department = assess(crate::store::AssessmentBy::Department)
        .await
        .unwrap();
    let mut lines: Vec<(String, u64)> = by_department
        .lines
        .iter()
        .map(|l| (l.name.clone(), l.month.received))
        .collect();
    lines.sort();
    let mut expected: Vec<(String, u64)> = names.iter().map(|n| (n.to_string(), 1)).collect();
    // The whole itself was never sent to a department.
    expected.push((String::new(), 1));
    expected.sort();
    assert_eq!(lines, expected);
}

/// An application for a combined item withdrawn whole is withdrawn at each department
/// still deciding its part (in the same write), so no part stays open and falls overdue
/// there; a part already decided stays decided.
#[tokio::test]
async fn withdrawing_a_combined_case_withdraws_its_open_parts() {
    use yizhan_sync::auth::NodeRole;
    let day = |d: &str| -> Date { d.parse().unwrap() };
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options();
    opts.identity = identity(9, NodeRole::Subdistrict, "440399001");
    let store = Store::open(&dir.path().join("yizhan.db"), opts).unwrap();
    publish_catalog(&store).await;
    let combined = combined_item();
    create_part_departments(&store, &combined, "2026-03-02").await;
    let id = receive(&store, &combined, "2026-03-02").await;
    accept(&store, &id, "2026-03-02").await;
    let accepted = store
        .get_case(id.to_string(), day("2026-03-02"))
        .await
        .unwrap();
    let subs: Vec<String> = accepted
        .parts
        .iter()
        .map(|p| p.case_id.clone().expect("made at acceptance"))
        .collect();
    // The first department decides its part before the applicant withdraws.
    department_approves(&store, &DocId::parse(&subs[0]).unwrap(), 0, "2026-03-04").await;
    store
        .act_on_case(
            id.clone(),
            vec![NewAction::Do(Action::Withdraw {
                reason: "申请人撤回申请".into(),
            })],
            staff(),
            at("2026-03-05"),
        )
        .await
        .unwrap();
    let whole = store
        .get_case(id.to_string(), day("2026-03-05"))
        .await
        .unwrap();
    assert_eq!(whole.state.status, Status::Withdrawn);
    assert_eq!(whole.summary.status, Status::Withdrawn);
    let statuses: Vec<Option<Status>> = whole.parts.iter().map(|p| p.status).collect();
    assert_eq!(
        statuses,
        [
            Some(Status::Decided),
            Some(Status::Withdrawn),
            Some(Status::Withdrawn)
        ]
    );
    for sub in &subs[1..] {
        let part = store
            .get_case(sub.clone(), day("2026-03-05"))
            .await
            .unwrap();
        assert_eq!(part.summary.status, Status::Withdrawn);
        assert_eq!(part.summary.level, None, "a withdrawn part never warns");
        assert_eq!(part.summary.closed_on.as_deref(), Some("2026-03-05"));
    }
    let report = store.rebuild().await.unwrap();
    assert_eq!(report.rows_differing, 0, "{report:?}");
}

/// §9.5: payments and exemptions are recorded on the case, derived into `case_fees`,
/// counted by item in the month's statistics, and rebuilt from the documents alike; an
/// item that charges nothing takes none.
#[tokio::test]
async fn fees_are_recorded_counted_and_rebuilt() {
    use yizhan_sync::domain::fee::{FeeRefused, PayMethod};
    let (_dir, store) = open_temp();
    publish_catalog(&store).await;
    let permit = item("居住证申领");
    assert!(!permit.fees.is_empty());
    let pay = |amount_fen, receipt: &str| {
        NewAction::Do(Action::Pay {
            fee: permit.fees[0].name.clone(),
            amount_fen,
            method: PayMethod::Mobile,
            receipt: receipt.into(),
        })
    };
    let first = receive(&store, &permit, "2026-02-10").await;
    accept(&store, &first, "2026-02-10").await;
    store
        .act_on_case(
            first.clone(),
            vec![
                pay(2000, "粤财0001"),
                NewAction::Do(Action::Exempt {
                    fee: permit.fees[0].name.clone(),
                    amount_fen: 500,
                    reason: "低保户".into(),
                    basis: "民政部门减免规定".into(),
                }),
            ],
            staff(),
            at("2026-02-11"),
        )
        .await
        .unwrap();
    let second = receive(&store, &permit, "2026-02-12").await;
    store
        .act_on_case(
            second.clone(),
            vec![pay(1500, "粤财0002")],
            staff(),
            at("2026-02-12"),
        )
        .await
        .unwrap();
    // Twice the same line: refused, nothing written.
    let before = store.content_digest().await.unwrap();
    let twice = store
        .act_on_case(
            second.clone(),
            vec![pay(1500, "粤财0003")],
            staff(),
            at("2026-02-13"),
        )
        .await;
    assert!(
        matches!(
            twice,
            Err(StoreError::Case(CaseError::Fee(
                FeeRefused::AlreadyPaid { .. }
            )))
        ),
        "{twice:?}"
    );
    // An item without fees (不收费) takes no payment.
    let free = demo_catalog()
        .into_iter()
        .find(|i| i.fees.is_empty())
        .unwrap();
    let other = receive(&store, &free, "2026-02-13").await;
    let before_free = store.content_digest().await.unwrap();
    let refused = store
        .act_on_case(
            other,
            vec![NewAction::Do(Action::Pay {
                fee: "工本费".into(),
                amount_fen: 2000,
                method: PayMethod::Cash,
                receipt: "1".into(),
            })],
            staff(),
            at("2026-02-13"),
        )
        .await;
    assert!(
        matches!(
            refused,
            Err(StoreError::Case(CaseError::Fee(FeeRefused::NoFees)))
        ),
        "{refused:?}"
    );
    assert_eq!(store.content_digest().await.unwrap(), before_free);
    assert_ne!(before, before_free);

    let detail = store
        .get_case(first.to_string(), "2026-02-11".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(detail.state.fees.paid_fen(), 2000);
    assert_eq!(detail.state.fees.exempt_fen(), 500);
    let figures = store
        .fee_stats(Month::parse("2026-02").unwrap())
        .await
        .unwrap();
    assert_eq!(
        figures,
        vec![crate::store::FeeFigures {
            impl_code: permit.impl_code.to_string(),
            item_name: permit.name.clone(),
            collected_fen: 3500,
            paid_cases: 2,
            exemptions: 1,
            exempt_fen: 500,
        }]
    );
    assert!(
        store
            .fee_stats(Month::parse("2026-03").unwrap())
            .await
            .unwrap()
            .is_empty()
    );
    let period = store
        .period_stats(Month::parse("2026-02").unwrap())
        .await
        .unwrap();
    assert_eq!(period.fees, figures);
    let digest = store.content_digest().await.unwrap();
    let report = store.rebuild().await.unwrap();
    assert_eq!(report.rows_differing, 0);
    assert_eq!(store.content_digest().await.unwrap(), digest);
}

/// The month figures read the cases in one pass. The grouped count per date column they
/// replaced is kept here as the definition they must agree with, on cases whose dates,
/// statuses and ratings are set at random in, across and outside the months asked for,
/// some of them parts of a combined application (counted only as their whole).
#[tokio::test]
async fn the_month_figures_agree_with_a_grouped_count_per_date_column() {
    use crate::store::Month;
    let (dir, store) = open_temp();
    publish_catalog(&store).await;
    let residence = item("居住证申领");
    let mut ids = Vec::new();
    for i in 0..80 {
        let id = store
            .create_case(
                residence.impl_code.to_string(),
                complete_application(&residence),
                staff(),
                at("2026-03-02") + i,
            )
            .await
            .unwrap();
        ids.push(id.to_string());
    }
    // The rows are derived data; set directly, they reach every combination at once.
    let days = [
        None,
        Some("2025-12-31"),
        Some("2026-01-01"),
        Some("2026-01-31"),
        Some("2026-02-01"),
        Some("2026-02-28"),
        Some("2026-03-01"),
        Some("2026-03-15"),
        Some("2026-03-31"),
        Some("2026-04-01"),
    ];
    let statuses = [
        "accepted",
        "completed",
        "refused",
        "withdrawn",
        "decided",
        "suspended",
    ];
    let ratings = [None, Some(0), Some(1), Some(3), Some(4), Some(5), Some(6)];
    let conn = rusqlite::Connection::open(dir.path().join("yizhan.db")).unwrap();
    let mut seed: u64 = 0x5eed;
    let mut pick = |n: usize| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) as usize % n
    };
    for (i, id) in ids.iter().enumerate() {
        let created = days[1 + pick(days.len() - 1)];
        let status = statuses[pick(statuses.len())];
        // A case has a closing date when it is closed, and only then (`doc::rows`).
        let closed = days[pick(days.len())]
            .filter(|_| matches!(status, "completed" | "refused" | "withdrawn"));
        conn.execute(
            "UPDATE cases SET created_on = ?2, accepted_on = ?3, closed_on = ?4, status = ?5,
                    committed_due = ?6, rated_on = ?7, rating = ?8, rectified_on = ?9,
                    counter = ?10, staff = ?11
              WHERE id = ?1",
            rusqlite::params![
                id,
                created,
                days[pick(days.len())],
                closed,
                status,
                days[pick(days.len())],
                days[pick(days.len())],
                ratings[pick(ratings.len())],
                days[pick(days.len())],
                ["1号窗口", "2号窗口", "综合窗口"][pick(3)],
                ["张三", "李四", "王五"][pick(3)],
            ],
        )
        .unwrap();
        if i % 9 == 0 {
            conn.execute(
                "INSERT INTO case_parts (id, parent_id, part_index) VALUES (?1, ?2, 0)",
                rusqlite::params![id, ids[0]],
            )
            .unwrap();
        }
    }
    drop(conn);

    for (last, n) in [
        ("2026-03", 1),
        ("2026-02", 1),
        ("2026-03", 3),
        ("2026-04", 12),
    ] {
        let last = Month::parse(last).unwrap();
        let shipped = store.monthly_stats(last, n).await.unwrap();
        let defined = store
            .read(move |conn| grouped_month_figures(conn, last, n))
            .await
            .unwrap();
        assert_eq!(shipped, defined, "{last:?} and {n} months before");
    }
    // The month's workload per counter and per person, and its rated count, likewise.
    let mut busy = (0, 0, 0);
    for month in ["2026-01", "2026-02", "2026-03", "2026-04"] {
        let month = Month::parse(month).unwrap();
        let shipped = store.period_stats(month).await.unwrap();
        let (rated, per_counter, per_staff) = store
            .read(move |conn| grouped_workload(conn, month))
            .await
            .unwrap();
        assert_eq!(shipped.completed_rated, rated, "{month:?}");
        assert_eq!(shipped.per_counter, per_counter, "{month:?}");
        assert_eq!(shipped.per_staff, per_staff, "{month:?}");
        for line in &per_counter {
            busy.0 += line.received;
            busy.1 += line.completed;
            busy.2 += line.open;
        }
    }
    assert!(busy.0 > 0 && busy.1 > 0 && busy.2 > 0, "{busy:?}");
    // The random rows reach every measure.
    let all = store
        .monthly_stats(Month::parse("2026-04").unwrap(), 12)
        .await
        .unwrap();
    let sum = |f: &dyn Fn(&MonthFigures) -> u64| all.iter().map(|(_, m)| f(m)).sum::<u64>();
    for (measure, total) in [
        ("received", sum(&|m| m.received)),
        ("accepted", sum(&|m| m.accepted)),
        ("completed", sum(&|m| m.completed)),
        ("refused", sum(&|m| m.refused)),
        ("withdrawn", sum(&|m| m.withdrawn)),
        ("with_deadline", sum(&|m| m.with_deadline)),
        ("on_time", sum(&|m| m.on_time)),
        ("rated", sum(&|m| m.rated())),
        ("rectified", sum(&|m| m.rectified)),
    ] {
        assert!(total > 0, "no case counted as {measure}");
    }
}

/// The month figures as the store counted them before one pass: a grouped count per date
/// column (the definition `store::stats::monthly` must agree with).
fn grouped_month_figures(
    conn: &rusqlite::Connection,
    last: crate::store::Month,
    n: u32,
) -> Result<Vec<(crate::store::Month, MonthFigures)>, StoreError> {
    use crate::store::Month;
    let whole = "NOT EXISTS (SELECT 1 FROM case_parts WHERE case_parts.id = cases.id)";
    let months = last.last_n(n.max(1));
    let from = months[0].first_day().to_string();
    let to = last.last_day().to_string();
    let mut figures: Vec<(Month, MonthFigures)> = months
        .iter()
        .map(|m| (*m, MonthFigures::default()))
        .collect();
    let mut stmt = conn.prepare(&format!(
        "SELECT 'received', substr(created_on, 1, 7), count(*), 0 FROM cases
           WHERE created_on BETWEEN ?1 AND ?2 AND {whole} GROUP BY 2
         UNION ALL
         SELECT 'accepted', substr(accepted_on, 1, 7), count(*), 0 FROM cases
           WHERE accepted_on BETWEEN ?1 AND ?2 AND {whole} GROUP BY 2
         UNION ALL
         SELECT status, substr(closed_on, 1, 7), count(*), 0 FROM cases
           WHERE closed_on BETWEEN ?1 AND ?2 AND {whole} GROUP BY 1, 2
         UNION ALL
         SELECT 'with_deadline', substr(closed_on, 1, 7), count(*),
                sum(closed_on <= committed_due) FROM cases
           WHERE status = 'completed' AND committed_due IS NOT NULL
             AND closed_on BETWEEN ?1 AND ?2 AND {whole} GROUP BY 2
         UNION ALL
         SELECT 'rating', substr(rated_on, 1, 7), count(*), rating FROM cases
           WHERE rated_on BETWEEN ?1 AND ?2 AND rating BETWEEN 1 AND 5 AND {whole} GROUP BY 2, 4
         UNION ALL
         SELECT 'rectified', substr(rectified_on, 1, 7), count(*), 0 FROM cases
           WHERE rectified_on BETWEEN ?1 AND ?2 AND {whole} GROUP BY 2"
    ))?;
    let rows = stmt.query_map(rusqlite::params![from, to], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, i64>(3)?,
        ))
    })?;
    for row in rows {
        let (measure, month, n, extra) = row?;
        let Some(slot) = Month::parse(&month)
            .and_then(|m| figures.iter_mut().find(|(fm, _)| *fm == m))
            .map(|(_, f)| f)
        else {
            continue;
        };
        let (n, extra) = (n as u64, extra as u64);
        match measure.as_str() {
            "received" => slot.received = n,
            "accepted" => slot.accepted = n,
            "completed" => slot.completed = n,
            "with_deadline" => {
                slot.with_deadline = n;
                slot.on_time = extra;
            }
            "refused" => slot.refused = n,
            "withdrawn" => slot.withdrawn = n,
            "rating" => {
                if let level @ 1..=5 = extra {
                    slot.ratings[level as usize - 1] = n;
                }
            }
            "rectified" => slot.rectified = n,
            _ => {}
        }
    }
    Ok(figures)
}

/// The month's rated count and workload tables as the store counted them before one pass:
/// a scan and a grouped count per table (the definition `store::stats::period_stats` must
/// agree with).
#[allow(clippy::type_complexity)]
fn grouped_workload(
    conn: &rusqlite::Connection,
    month: crate::store::Month,
) -> Result<
    (
        u64,
        Vec<crate::store::Workload>,
        Vec<crate::store::Workload>,
    ),
    StoreError,
> {
    let whole = "NOT EXISTS (SELECT 1 FROM case_parts WHERE case_parts.id = cases.id)";
    let closed = "('completed', 'refused', 'withdrawn')";
    let (from, to) = (month.first_day().to_string(), month.last_day().to_string());
    let rated: i64 = conn.query_row(
        &format!(
            "SELECT count(rating) FROM cases
             WHERE status = 'completed' AND closed_on BETWEEN ?1 AND ?2 AND {whole}"
        ),
        rusqlite::params![from, to],
        |r| r.get(0),
    )?;
    let workload = |column: &str| -> Result<Vec<crate::store::Workload>, StoreError> {
        let mut stmt = conn.prepare(&format!(
            "SELECT {column},
                    sum(created_on BETWEEN ?1 AND ?2),
                    sum(status = 'completed' AND closed_on BETWEEN ?1 AND ?2),
                    sum(created_on BETWEEN ?1 AND ?2 AND status NOT IN {closed})
             FROM cases
             WHERE (created_on BETWEEN ?1 AND ?2 OR closed_on BETWEEN ?1 AND ?2) AND {whole}
             GROUP BY {column} ORDER BY {column}"
        ))?;
        let rows = stmt.query_map(rusqlite::params![from, to], |r| {
            Ok(crate::store::Workload {
                name: r.get(0)?,
                received: r.get::<_, i64>(1)? as u64,
                completed: r.get::<_, i64>(2)? as u64,
                open: r.get::<_, i64>(3)? as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    };
    Ok((rated as u64, workload("counter")?, workload("staff")?))
}
