//! The sink end to end, in one process: a city fed by districts and stations streams into
//! a real PostgreSQL (`./test.sh` starts one), and the documented month query matches the
//! city's own dashboard.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use yizhan_sync::domain::case::Action;

use super::Sink;
use crate::bench::tree::{self, Tree};
use crate::config::Synchronous;
use crate::metrics::SinkState;
use crate::store::postgres::Postgres;
use crate::store::postgres::tests::test_database;
use crate::store::tests::{at, complete_application, item};
use crate::store::{Month, NewAction, Staff, Store};

fn lead(counter: &str) -> Staff {
    Staff {
        username: "lead".into(),
        counter: counter.into(),
        role: crate::store::Role::Lead,
    }
}

/// What happens to case `n` received at `t`, as `(at, actions)` after its intake: completed
/// on time or late, rated, rectified, refused, withdrawn, or left open.
fn story(n: u64, t: u64) -> Vec<(u64, Vec<NewAction>)> {
    let complete = || {
        NewAction::Do(Action::Complete {
            result: "已办结".into(),
            delivery: "窗口领取".into(),
        })
    };
    let rate = |level: u8| {
        NewAction::Do(Action::Rate {
            level,
            comment: String::new(),
            rectify_days: 5,
        })
    };
    let day = 86_400_000;
    match n % 7 {
        0 => vec![(t + 1_000, vec![NewAction::Accept])],
        1 => vec![
            (t + 1_000, vec![NewAction::Accept]),
            (t + 2 * day, vec![complete(), rate(5)]),
        ],
        // 老年人优待证 is due in 5 working days: 12 days later is late.
        2 => vec![
            (t + 1_000, vec![NewAction::Accept]),
            (t + 12 * day, vec![complete(), rate(2)]),
            (
                t + 13 * day,
                vec![NewAction::Do(Action::Rectify {
                    response: "已整改".into(),
                })],
            ),
        ],
        3 => vec![(
            t + 1_000,
            vec![NewAction::Do(Action::Refuse {
                reason: "不属于受理范围".into(),
                basis: "《行政许可法》第三十二条".into(),
                remedies: "可依法申请行政复议或者提起行政诉讼".into(),
                competent_authority: None,
            })],
        )],
        4 => vec![(
            t + 1_000,
            vec![NewAction::Do(Action::Withdraw {
                reason: "申请人撤回".into(),
            })],
        )],
        5 => vec![
            (t + 1_000, vec![NewAction::Accept]),
            (t + 3 * day, vec![complete(), rate(4)]),
        ],
        _ => vec![],
    }
}

/// `n` cases at every station, received from `first` on, a few hours apart, each taken
/// through its [`story`]; every station writes in time order, as a real one does.
async fn cases(tree: &Tree, n: u64, first: u64) {
    let card = item("老年人优待证办理");
    for (d, stations) in tree.stations.iter().enumerate() {
        for (s, station) in stations.iter().enumerate() {
            // (at, case number, actions); None = the intake.
            let mut timeline: Vec<(u64, u64, Option<Vec<NewAction>>)> = Vec::new();
            for i in 0..n {
                let t = first + i * 5 * 3_600_000 + (d * 10 + s) as u64 * 60_000;
                timeline.push((t, i, None));
                for (at, actions) in story(i + d as u64 * 3 + s as u64, t) {
                    timeline.push((at, i, Some(actions)));
                }
            }
            timeline.sort_by_key(|(at, i, _)| (*at, *i));
            let mut ids = std::collections::HashMap::new();
            for (at, i, actions) in timeline {
                let staff = lead(&format!("{}号窗口", i % 3 + 1));
                match actions {
                    None => {
                        let id = station
                            .store
                            .create_case(
                                card.impl_code.to_string(),
                                complete_application(&card),
                                staff,
                                at,
                            )
                            .await
                            .unwrap();
                        ids.insert(i, id);
                    }
                    Some(actions) => {
                        station
                            .store
                            .act_on_case(ids[&i].clone(), actions, staff, at)
                            .await
                            .unwrap();
                    }
                }
            }
        }
    }
}

async fn start_sink(
    store: &Store,
    url: &str,
) -> (tokio::task::JoinHandle<()>, Arc<Mutex<SinkState>>) {
    let state = Arc::new(Mutex::new(SinkState::default()));
    let sink = Sink {
        store: store.clone(),
        url: url.to_string(),
        batch_changes: 25,
        timeout: Duration::from_secs(10),
        state: state.clone(),
    };
    (tokio::spawn(sink.run()), state)
}

/// Waits until the sink holds everything in the city's log; bounded.
async fn caught_up(store: &Store, state: &Arc<Mutex<SinkState>>) {
    let head = store.feed_head().await.unwrap();
    for _ in 0..600 {
        {
            let s = state.lock().unwrap();
            if s.up && s.position == head {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the sink did not catch up: {:?}", state.lock().unwrap());
}

async fn assert_same_rows(store: &Store, url: &str) {
    let pg = Postgres::connect(url, Duration::from_secs(10))
        .await
        .unwrap();
    let (in_pg, duplicated) = pg.mirror_rows().await.unwrap();
    assert!(duplicated.is_empty(), "{duplicated:?}");
    let on_node = store.mirror_rows().await.unwrap();
    assert_eq!(in_pg.differences(&on_node, 10), Vec::<String>::new());
}

/// Stations → districts → city, the city's sink streaming into PostgreSQL while more
/// cases arrive: PostgreSQL holds exactly the city's rows, with each case's station,
/// sub-district and district; the month query in docs/sink.md gives the dashboard's
/// figures for the same month.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_city_streams_its_tree_into_postgres() {
    let Some(url) = test_database("city").await else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let now = at("2026-01-05");
    let tree = tree::build(
        root.path(),
        &["440304", "440305"],
        2,
        Synchronous::Normal,
        now,
    )
    .await
    .unwrap();
    cases(&tree, 12, at("2026-02-02")).await;
    tree.sync_up().await.unwrap();
    let city = tree.city.store.clone();
    let (sink, state) = start_sink(&city, &url).await;
    caught_up(&city, &state).await;
    assert_same_rows(&city, &url).await;

    // More arrives while the sink runs (a later month, and later events on old cases).
    cases(&tree, 9, at("2026-03-02")).await;
    tree.sync_up().await.unwrap();
    caught_up(&city, &state).await;
    assert_same_rows(&city, &url).await;
    assert!(state.lock().unwrap().rows_written > 0);

    let pg = Postgres::connect(&url, Duration::from_secs(10))
        .await
        .unwrap();
    let stations = pg.cases_by_station().await.unwrap();
    let expected: Vec<crate::store::postgres::StationCases> = [
        "440304001001",
        "440304001002",
        "440305001001",
        "440305001002",
    ]
    .iter()
    .map(|s| crate::store::postgres::StationCases {
        station: Some(s.to_string()),
        // Station names come from the registries the city holds.
        name: Some(format!("station {s}")),
        subdistrict: Some(s[..9].to_string()),
        district: Some(s[..6].to_string()),
        cases: 21,
    })
    .collect();
    assert_eq!(stations, expected);

    // A calendar year published at the city derives the open cases' deadlines again
    // without a change to their documents; the sink writes them again.
    let head = city.feed_head().await.unwrap();
    city.publish_calendar_year(
        crate::store::calendars::OFFICIAL_2027.into(),
        at("2026-03-20"),
    )
    .await
    .unwrap();
    caught_up(&city, &state).await;
    assert!(state.lock().unwrap().position > head);
    assert_same_rows(&city, &url).await;
    let (in_pg, _) = pg.mirror_rows().await.unwrap();
    assert!(
        in_pg.tables["cases"]
            .values()
            .any(|row| row.contains("2027.1")),
        "no case in PostgreSQL counts on the published year"
    );

    for month in ["2026-02", "2026-03"] {
        let figures = month_query_matches_the_dashboard(&pg, &city, month).await;
        // The fixture makes every figure the query sums: none is compared at zero only.
        assert!(
            figures.received > 0 && figures.on_time > 0 && figures.with_deadline > figures.on_time
        );
    }
    sink.abort();
    for store in tree.stores() {
        store.shutdown().await;
    }
}

/// The query documented in docs/sink.md, run over the sink's tables, summed over the
/// districts, against the city's own dashboard figures (`store::stats`).
/// Returns the dashboard's figures it matched.
pub(crate) async fn month_query_matches_the_dashboard(
    pg: &Postgres,
    city: &Store,
    month: &str,
) -> crate::store::MonthFigures {
    let doc = include_str!("../../../docs/sink.md");
    let start = doc
        .find("<!-- month-statistics -->")
        .expect("docs/sink.md marks the month query");
    let sql = doc[start..]
        .split("```sql")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a ```sql block follows the mark");
    let rows = pg.query_text(sql, &[month]).await.unwrap();
    assert!(!rows.is_empty(), "{month}: no districts");
    let columns = [
        "received",
        "accepted",
        "completed",
        "refused",
        "withdrawn",
        "with_deadline",
        "on_time",
        "rated_1",
        "rated_2",
        "rated_3",
        "rated_4",
        "rated_5",
        "rectified",
    ];
    let mut sums = [0u64; 13];
    for row in &rows {
        // district, then the counts in `columns` order, then the rates.
        for (i, sum) in sums.iter_mut().enumerate() {
            *sum += row[i + 1]
                .as_deref()
                .unwrap_or("0")
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("{} is a count: {row:?}", columns[i]));
        }
    }
    let figures = city
        .period_stats(Month::parse(month).unwrap())
        .await
        .unwrap()
        .figures;
    let dashboard = [
        figures.received,
        figures.accepted,
        figures.completed,
        figures.refused,
        figures.withdrawn,
        figures.with_deadline,
        figures.on_time,
        figures.ratings[0],
        figures.ratings[1],
        figures.ratings[2],
        figures.ratings[3],
        figures.ratings[4],
        figures.rectified,
    ];
    assert_eq!(sums, dashboard, "{month}: {columns:?}");
    figures
}

/// With PostgreSQL unreachable the sink only reports it; it keeps trying.
#[tokio::test]
async fn an_unreachable_postgres_is_reported_not_waited_for() {
    let (_dir, store) = crate::store::tests::open_temp();
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "postgres://yizhan@localhost/none?host={}&connect_timeout=1",
        dir.path().display()
    );
    let (sink, state) = start_sink(&store, &url).await;
    for _ in 0..100 {
        if state.lock().unwrap().last_error.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let s = state.lock().unwrap().clone();
    assert!(s.enabled && !s.up, "{s:?}");
    assert!(s.last_error.unwrap().contains("PostgreSQL"));
    // The lag counts the whole log while nothing is confirmed in PostgreSQL.
    let head = store.feed_head().await.unwrap();
    for _ in 0..100 {
        if state.lock().unwrap().lag() == head {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(state.lock().unwrap().lag(), head);
    sink.abort();
    store.shutdown().await;
}
