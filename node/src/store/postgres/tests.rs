//! The PostgreSQL side against a real server: `./test.sh` starts a throwaway cluster and
//! sets `YIZHAN_TEST_POSTGRES`; each test gets a database of its own.

use std::str::FromStr;
use std::time::Duration;

use super::{Postgres, SinkError};
use crate::store::tests::{complete_application, item, open_temp, publish_catalog, staff};
use crate::store::{NewAction, Store};

/// A fresh database on the test cluster, as a URL; `None` (with a note) when no cluster
/// is configured outside `./test.sh`. Under `./test.sh` or CI a missing cluster fails.
pub(crate) async fn test_database(hint: &str) -> Option<String> {
    let Ok(url) = std::env::var("YIZHAN_TEST_POSTGRES") else {
        assert!(
            std::env::var_os("YIZHAN_REQUIRE_TOOLS").is_none() && std::env::var_os("CI").is_none(),
            "YIZHAN_TEST_POSTGRES is not set: run the tests with ./test.sh, which starts a throwaway PostgreSQL"
        );
        eprintln!(
            "note: skipping a PostgreSQL test ({hint}): YIZHAN_TEST_POSTGRES is not set; ./test.sh starts a cluster and sets it"
        );
        return None;
    };
    let name = format!(
        "yizhan_{hint}_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    let (client, connection) = tokio_postgres::Config::from_str(&url)
        .unwrap()
        .connect(tokio_postgres::NoTls)
        .await
        .expect("the test PostgreSQL (YIZHAN_TEST_POSTGRES) accepts connections");
    tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    Some(with_database(&url, &name))
}

/// `url` with its database replaced by `name`.
pub(crate) fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let (server, _) = base.rsplit_once('/').expect("a URL with a database");
    if query.is_empty() {
        format!("{server}/{name}")
    } else {
        format!("{server}/{name}?{query}")
    }
}

async fn connect(url: &str) -> Postgres {
    Postgres::connect(url, Duration::from_secs(10))
        .await
        .unwrap()
}

async fn with_cases(n: usize) -> (tempfile::TempDir, Store) {
    let (dir, store) = open_temp();
    publish_catalog(&store).await;
    let card = item("老年人优待证办理");
    for i in 0..n {
        let at = crate::store::tests::at("2026-03-02") + i as u64 * 60_000;
        let id = store
            .create_case(
                card.impl_code.to_string(),
                complete_application(&card),
                staff(),
                at,
            )
            .await
            .unwrap();
        store
            .act_on_case(id.clone(), vec![NewAction::Accept], staff(), at + 1_000)
            .await
            .unwrap();
        // Each with its sealed receipt, as at the counter.
        let issuer = crate::store::Issuer {
            office: "示例社区".into(),
            counter: "1号窗口".into(),
            staff: "李敏".into(),
        };
        store
            .issue_case_notice(
                issuer,
                id,
                crate::notice::NoticeKind::Receipt,
                None,
                at + 2_000,
            )
            .await
            .unwrap();
    }
    (dir, store)
}

#[tokio::test]
async fn migrations_apply_once_in_order() {
    let Some(url) = test_database("migrate").await else {
        return;
    };
    let mut pg = connect(&url).await;
    assert_eq!(pg.schema_version().await.unwrap(), 0);
    assert_eq!(pg.migrate().await.unwrap(), super::PG_SCHEMA_VERSION as u32);
    assert_eq!(
        pg.migrate().await.unwrap(),
        0,
        "a second run applies nothing"
    );
    assert_eq!(pg.schema_version().await.unwrap(), super::PG_SCHEMA_VERSION);
    // The views analysts use exist and answer on empty tables.
    for view in [
        "nodes",
        "v_cases",
        "v_events",
        "v_ratings",
        "v_rectifications",
        "v_notices",
        "v_supervision",
    ] {
        let rows = pg
            .query_text(&format!("SELECT * FROM yizhan.{view}"), &[])
            .await
            .unwrap();
        assert!(rows.is_empty(), "{view}");
    }
}

/// A batch moves the position in the transaction that writes its rows: written again
/// (a sink that crashed after the commit but before it learnt of it), it is refused, and
/// a transaction cut before its commit leaves neither rows nor position.
#[tokio::test]
async fn a_batch_and_its_position_commit_together() {
    let Some(url) = test_database("batch").await else {
        return;
    };
    let (_dir, store) = with_cases(30).await;
    let mut reader = store.feed_reader().unwrap();
    let identity = reader.identity().unwrap();
    let head = reader.head().unwrap();
    let mut pg = connect(&url).await;
    pg.migrate().await.unwrap();
    assert_eq!(pg.start_feed(&identity, head).await.unwrap(), 0);

    // Cut before the commit: the future is dropped mid-transaction, the connection too.
    let first = reader.read(0, 20).unwrap();
    {
        let mut doomed = connect(&url).await;
        let write = doomed.write(&identity, &first);
        let _ = tokio::time::timeout(Duration::from_micros(50), write).await;
    }
    let pg_rows = pg.mirror_rows().await.unwrap().0;
    assert!(
        pg_rows.counts().iter().all(|(_, n)| *n == 0)
            || pg.position().await.unwrap().unwrap().local_seq == first.through,
        "rows without their position"
    );
    let resume = pg.start_feed(&identity, head).await.unwrap();
    let mut after = resume;
    // Bounded: each batch moves the position.
    for _ in 0..100 {
        let batch = reader.read(after, 20).unwrap();
        if batch.is_empty() {
            break;
        }
        let written = pg.write(&identity, &batch).await.unwrap();
        assert!(written.rows > 0);
        after = batch.through;
    }
    assert_eq!(after, head);
    assert!(matches!(
        pg.write(&identity, &first).await,
        Err(SinkError::PositionMoved)
    ));
    let (in_pg, duplicated) = pg.mirror_rows().await.unwrap();
    assert!(duplicated.is_empty(), "{duplicated:?}");
    let on_node = store.mirror_rows().await.unwrap();
    assert_eq!(in_pg.differences(&on_node, 5), Vec::<String>::new());
    assert_eq!(
        on_node
            .counts()
            .iter()
            .find(|(t, _)| *t == "cases")
            .unwrap()
            .1,
        30
    );
    // Every case's receipt, with its station.
    let receipts = pg
        .query_text(
            "SELECT count(*) FROM yizhan.notices WHERE kind = 'receipt' AND station = '440399001001'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(receipts[0][0].as_deref(), Some("30"));
    // Every published item version is there too (the demo catalog: version 1 each).
    let versions = pg
        .query_text("SELECT count(*) FROM yizhan.item_versions", &[])
        .await
        .unwrap();
    let published = crate::demo::demo_catalog().len().to_string();
    assert_eq!(versions[0][0].as_deref(), Some(published.as_str()));
    store.shutdown().await;
}

/// A position from another epoch or generation of the node's log, or beyond its head,
/// means the whole feed again; a second node is refused.
#[tokio::test]
async fn a_foreign_position_restarts_the_feed_or_is_refused() {
    let Some(url) = test_database("position").await else {
        return;
    };
    let mut pg = connect(&url).await;
    pg.migrate().await.unwrap();
    let identity = crate::store::FeedIdentity {
        node_id: "aa".repeat(16),
        epoch: 1,
        generation: 0,
    };
    assert_eq!(pg.start_feed(&identity, 100).await.unwrap(), 0);
    let empty = crate::store::FeedBatch {
        after: 0,
        through: 40,
        head: 100,
        changes: 40,
        ..Default::default()
    };
    pg.write(&identity, &empty).await.unwrap();
    assert_eq!(pg.start_feed(&identity, 100).await.unwrap(), 40);
    assert_eq!(
        pg.start_feed(&identity, 30).await.unwrap(),
        0,
        "log shorter than the position"
    );
    pg.write(&identity, &empty).await.unwrap();
    let restored = crate::store::FeedIdentity {
        epoch: 2,
        ..identity.clone()
    };
    assert_eq!(pg.start_feed(&restored, 100).await.unwrap(), 0);
    let rebuilt = crate::store::FeedIdentity {
        generation: 1,
        ..restored.clone()
    };
    assert_eq!(pg.start_feed(&rebuilt, 100).await.unwrap(), 0);
    let other = crate::store::FeedIdentity {
        node_id: "bb".repeat(16),
        ..identity
    };
    assert!(matches!(
        pg.start_feed(&other, 100).await,
        Err(SinkError::OtherNode { .. })
    ));
}

#[test]
fn urls_lose_their_password_in_messages() {
    use crate::config::redact_postgres_url;
    assert_eq!(
        redact_postgres_url("postgres://yizhan:s3cret@db:5432/city"),
        "postgres://yizhan:***@db:5432/city"
    );
    assert_eq!(
        redact_postgres_url("host=db user=yizhan password=s3cret dbname=city"),
        "host=db user=yizhan password=*** dbname=city"
    );
    assert_eq!(
        redact_postgres_url("postgres://yizhan@localhost/city?host=/run/postgresql"),
        "postgres://yizhan@localhost/city?host=/run/postgresql"
    );
    assert!(crate::config::check_postgres_url("postgres://db/city?sslmode=require").is_err());
    assert!(
        crate::config::check_postgres_url("postgres://yizhan@localhost/city?host=/run/postgresql")
            .is_ok()
    );
    assert_eq!(
        with_database("postgres://yizhan@localhost/postgres?host=/tmp/x", "t1"),
        "postgres://yizhan@localhost/t1?host=/tmp/x"
    );
}

/// Migration 4 moves the notices, supervision notices and replies of an older schema into
/// their month partitions, and sends the sink back to the start of its feed so every
/// supervision notice gets its due date.
#[tokio::test]
async fn notices_move_into_month_partitions() {
    let Some(url) = test_database("partition").await else {
        return;
    };
    let mut pg = connect(&url).await;
    assert_eq!(pg.migrate_to(3).await.unwrap(), 3);
    // 2026-03-31 23:30 in China is 15:30 UTC: its row belongs to March, not April.
    let march_31_late: i64 = 1_774_971_000_000;
    let april_2: i64 = march_31_late + 2 * 86_400_000;
    pg.client
        .execute(
            "INSERT INTO yizhan.feed_position (node_id, epoch, generation, local_seq)
             VALUES ('n1', 1, 0, 50)",
            &[],
        )
        .await
        .unwrap();
    for (number, ms) in [("N1", march_31_late), ("N2", april_2)] {
        pg.client
            .execute(
                "INSERT INTO yizhan.notices (number, doc_id, case_id, division, node, kind,
                     issued_ms, digest, seal, content)
                 VALUES ($1, 'n-' || $1, 'c-1', '440399001001', 'n1', 'receipt', $2, 'd', 's', '{}')",
                &[&number, &ms],
            )
            .await
            .unwrap();
    }
    pg.client
        .execute(
            "INSERT INTO yizhan.supervision_notices (id, division, node, staff, reason, todo,
                 reply_days, issued_ms, body)
             VALUES ('s-1', '440399001001', 'h1', 'x', 'r', 't', 3, $1, '{}')",
            &[&march_31_late],
        )
        .await
        .unwrap();
    pg.client
        .execute(
            "INSERT INTO yizhan.supervision_replies (id, notice_id, node, staff, text, replied_ms, body)
             VALUES ('sr-1', 's-1', 'n1', 'x', 'done', $1, '{}')",
            &[&april_2],
        )
        .await
        .unwrap();
    assert_eq!(pg.migrate_to(4).await.unwrap(), 1);
    let rows = pg
        .query_text(
            "SELECT c.relname, number, issued_on FROM yizhan.notices n
             JOIN pg_class c ON c.oid = n.tableoid ORDER BY number",
            &[],
        )
        .await
        .unwrap();
    let text = |v: &[&str]| v.iter().map(|s| Some(s.to_string())).collect::<Vec<_>>();
    assert_eq!(
        rows,
        vec![
            text(&["notices_y2026m03", "N1", "2026-03-31"]),
            text(&["notices_y2026m04", "N2", "2026-04-02"]),
        ]
    );
    let rows = pg
        .query_text(
            "SELECT c.relname, id, issued_on, reply_due FROM yizhan.supervision_notices n
             JOIN pg_class c ON c.oid = n.tableoid",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        rows,
        vec![vec![
            Some("supervision_notices_y2026m03".into()),
            Some("s-1".into()),
            Some("2026-03-31".into()),
            None
        ]]
    );
    let rows = pg
        .query_text(
            "SELECT c.relname, replied_on FROM yizhan.supervision_replies r
             JOIN pg_class c ON c.oid = r.tableoid",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        rows,
        vec![text(&["supervision_replies_y2026m04", "2026-04-02"])]
    );
    // No due date yet, so no state; the sink writes everything again from the start.
    let rows = pg
        .query_text("SELECT replies, state FROM yizhan.v_supervision", &[])
        .await
        .unwrap();
    assert_eq!(rows, vec![vec![Some("1".into()), None]]);
    assert_eq!(pg.position().await.unwrap().unwrap().local_seq, 0);
}

/// A reader leaves out a case whose rows it already read in a snapshot that held the
/// batch's changes to it, and reads it again once it changes after that snapshot.
#[tokio::test]
async fn a_case_read_whole_is_not_read_again_for_its_older_changes() {
    let (_dir, store) = with_cases(2).await;
    let mut reader = store.feed_reader().unwrap();
    // The first change to a case (the intake of the first) reads it as it is now,
    // accepted; the catalog's changes come before.
    let mut first = reader.read(0, 1).unwrap();
    for _ in 0..100 {
        if !first.cases.is_empty() {
            break;
        }
        first = reader.read(first.through, 1).unwrap();
    }
    assert_eq!(first.cases.len(), 1);
    assert_eq!(first.cases[0].status, "accepted");
    let id = first.cases[0].id.clone();
    let mut after = first.through;
    let mut again = 0;
    for _ in 0..100 {
        let batch = reader.read(after, 1).unwrap();
        if batch.is_empty() {
            break;
        }
        assert!(batch.cases.iter().all(|c| c.id != id), "read again");
        again += batch.cases_read_before;
        after = batch.through;
    }
    assert_eq!(again, 2, "the acceptance of each case");
    store
        .act_on_case(
            yizhan_sync::ids::DocId::parse(&id).unwrap(),
            vec![NewAction::Do(yizhan_sync::domain::case::Action::Withdraw {
                reason: "申请人撤回".into(),
            })],
            staff(),
            crate::store::tests::at("2026-03-03"),
        )
        .await
        .unwrap();
    let later = reader.read(after, 10).unwrap();
    assert_eq!(later.cases.len(), 1);
    assert_eq!(later.cases[0].id, id);
    store.shutdown().await;
}

/// §9.5 in the city's database: a station's payment and exemption reach PostgreSQL with
/// their case's events, and `v_fees_by_month` counts them per station and item as the
/// node's own figures do.
#[tokio::test]
async fn fees_reach_the_citys_figures() {
    use yizhan_sync::domain::case::Action;
    use yizhan_sync::domain::fee::PayMethod;
    let Some(url) = test_database("fees").await else {
        return;
    };
    let (_dir, store) = with_cases(1).await;
    let permit = item("居住证申领");
    let at = crate::store::tests::at("2026-03-03");
    let id = store
        .create_case(
            permit.impl_code.to_string(),
            complete_application(&permit),
            staff(),
            at,
        )
        .await
        .unwrap();
    store
        .act_on_case(
            id,
            vec![
                NewAction::Accept,
                NewAction::Do(Action::Pay {
                    fee: permit.fees[0].name.clone(),
                    amount_fen: 2000,
                    method: PayMethod::Card,
                    receipt: "粤财0001".into(),
                }),
                NewAction::Do(Action::Exempt {
                    fee: permit.fees[0].name.clone(),
                    amount_fen: 500,
                    reason: "低保户".into(),
                    basis: "民政减免规定".into(),
                }),
            ],
            staff(),
            at + 1_000,
        )
        .await
        .unwrap();
    let mut reader = store.feed_reader().unwrap();
    let identity = reader.identity().unwrap();
    let head = reader.head().unwrap();
    let mut pg = connect(&url).await;
    pg.migrate().await.unwrap();
    let mut after = pg.start_feed(&identity, head).await.unwrap();
    for _ in 0..100 {
        let batch = reader.read(after, 50).unwrap();
        if batch.is_empty() {
            break;
        }
        pg.write(&identity, &batch).await.unwrap();
        after = batch.through;
    }
    assert_eq!(after, head);
    let rows = pg
        .query_text(
            "SELECT month, station, impl_code, collected_fen, paid_cases, exemptions, exempt_fen
             FROM yizhan.v_fees_by_month ORDER BY impl_code",
            &[],
        )
        .await
        .unwrap();
    let text = |v: &str| Some(v.to_string());
    assert_eq!(
        rows,
        vec![vec![
            text("2026-03"),
            text("440399001001"),
            text(permit.impl_code.as_str()),
            text("2000"),
            text("1"),
            text("1"),
            text("500"),
        ]]
    );
    let node = store
        .fee_stats(crate::store::Month::parse("2026-03").unwrap())
        .await
        .unwrap();
    assert_eq!((node[0].collected_fen, node[0].exempt_fen), (2000, 500));
}
