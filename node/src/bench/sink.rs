//! `yizhan bench sink`: a city hall's cases into PostgreSQL. Rows per second from a
//! backlog, the sink's lag while the city ingests a live sync, and the size in
//! PostgreSQL.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;

use yizhan_sync::auth::NodeRole;
use yizhan_sync::domain::codes::DivisionCode;
use yizhan_sync::ids::Scope;

use super::tree;
use crate::config::Synchronous;
use crate::metrics::SinkState;
use crate::sink::Sink;
use crate::store::postgres::Postgres;

#[derive(Debug, Args)]
pub struct SinkBenchArgs {
    /// PostgreSQL server to measure against; the bench creates a database of its own
    /// there and drops it afterwards (the role needs CREATEDB)
    #[arg(long, env = "YIZHAN_BENCH_POSTGRES", value_name = "URL")]
    pub postgres: String,
    /// Cases the city holds before the sink starts (from 10 stations in 10 districts)
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(10..))]
    pub cases: u64,
    /// Cases the city receives from its districts while the sink runs
    #[arg(long, default_value_t = 100_000)]
    pub live_cases: u64,
    /// Changes per PostgreSQL transaction ([sink] batch_changes)
    #[arg(long, default_value_t = 8192)]
    pub batch_changes: u32,
    /// Keep the nodes' data dirs and the PostgreSQL database
    #[arg(long)]
    pub keep: bool,
}

/// Builds a city with `--cases` cases from its stations, streams them into PostgreSQL
/// (timed), then streams a live sync of `--live-cases` more while sampling the lag.
pub async fn sink(args: SinkBenchArgs) -> anyhow::Result<()> {
    let (database_url, database) = create_database(&args.postgres).await?;
    let root = super::tempfile_dir()?;
    let result = run(&args, &root, &database_url).await;
    if !args.keep {
        let _ = std::fs::remove_dir_all(&root);
        drop_database(&args.postgres, &database).await;
    } else {
        println!("kept: {} and database {database}", root.display());
    }
    result
}

/// Districts the backlog comes from, each with one station (a city enrolls only districts;
/// each district its stations). A city with a million cases takes several GB of SQLite.
const STATIONS: u64 = 10;

async fn run(args: &SinkBenchArgs, root: &std::path::Path, url: &str) -> anyhow::Result<()> {
    let now = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
    let span_ms: u64 = 420 * 86_400_000;
    let live_span = 3 * 86_400_000;
    let prepared = Instant::now();
    // Preparation is not measured: the nodes' durability settings do not matter here.
    let city = tree::open_node(root, 1, NodeRole::City, "440300", Synchronous::Normal).await?;
    for item in crate::demo::demo_catalog() {
        city.store
            .publish_item(
                Scope::catalog(&DivisionCode::parse("440300").expect("valid")),
                item,
                now - span_ms - 86_400_000,
            )
            .await?;
    }
    let items = Arc::new(
        crate::demo::demo_catalog()
            .into_iter()
            .filter(|i| i.case_type == yizhan_sync::domain::item::CaseType::Committed)
            .collect::<Vec<_>>(),
    );
    let district_at = |n: u64| format!("4403{:02}", n + 2);
    let per_station = args.cases / STATIONS;
    let backlog_span = (span_ms - live_span - 86_400_000) / STATIONS;
    // Concurrent writers record cases out of time order by up to `concurrency` cases'
    // spacing; with few cases that spacing is hours, so fewer writers keep it under the
    // store's six-hour clock check.
    let concurrency = (per_station * 3 * 3_600_000 / backlog_span).clamp(1, 16);
    // Each district with its one station is filled, synced up to the city and deleted
    // in turn, so the disk holds the city and one district and station at a time.
    let mut seed = 2u8;
    let mut branch = |n: u64| {
        let (district_seed, station_seed) = (seed, seed + 1);
        seed += 2;
        let district = district_at(n);
        let root = root.to_path_buf();
        let city = city.clone();
        async move {
            let hall = tree::open_node(
                &root,
                district_seed,
                NodeRole::District,
                &district,
                Synchronous::Normal,
            )
            .await?;
            tree::enroll(&city, &hall, now - span_ms).await?;
            let station = tree::open_node(
                &root,
                station_seed,
                NodeRole::Station,
                &format!("{district}001001"),
                Synchronous::Normal,
            )
            .await?;
            tree::enroll(&hall, &station, now - span_ms).await?;
            tree::transfer(&city, &hall).await?;
            tree::transfer(&hall, &station).await?;
            anyhow::Ok((hall, station))
        }
    };
    for n in 0..STATIONS {
        let (hall, station) = branch(n).await?;
        let start = now - span_ms + n * backlog_span;
        super::fill_cases(
            &station.store,
            items.clone(),
            per_station,
            concurrency,
            start,
            backlog_span,
        )
        .await?;
        tree::transfer(&station, &hall).await?;
        tree::transfer(&hall, &city).await?;
        for node in [station, hall] {
            node.store.shutdown().await;
            if let Some(dir) = node.store.path().parent() {
                std::fs::remove_dir_all(dir)?;
            }
        }
    }
    // The live part waits at a district of its own until the city takes it in, below.
    let (live, live_station) = branch(STATIONS).await?;
    super::fill_cases(
        &live_station.store,
        items.clone(),
        args.live_cases,
        (args.live_cases * 3 * 3_600_000 / (live_span / 2)).clamp(1, 16),
        now - live_span,
        live_span / 2,
    )
    .await?;
    tree::transfer(&live_station, &live).await?;
    let city_store = city.store.clone();
    let cases_at_city = city_store.case_count().await?;
    println!(
        "sink bench: a city hall with {cases_at_city} cases from {STATIONS} stations in {STATIONS} districts; preparing took {:.0} s (not measured)",
        prepared.elapsed().as_secs_f64()
    );
    let city_node = city;
    let city = city_store;

    // The backlog: everything the city holds, from an empty database.
    let state = Arc::new(Mutex::new(SinkState::default()));
    let sink = tokio::spawn(
        Sink {
            store: city.clone(),
            url: url.to_string(),
            batch_changes: args.batch_changes,
            timeout: Duration::from_secs(120),
            state: state.clone(),
        }
        .run(),
    );
    let head = city.feed_head().await?;
    let cpu_before = super::cpu_secs("self");
    let started = Instant::now();
    wait_until(&state, head, Duration::from_secs(3600)).await?;
    let backlog_secs = started.elapsed().as_secs_f64();
    let cpu = super::cpu_secs("self") - cpu_before;
    let rows = state.lock().unwrap_or_else(|e| e.into_inner()).rows_written;
    let postgres = Postgres::connect(url, Duration::from_secs(30)).await?;
    let pg_cases = postgres.row_count("cases").await?;
    let pg_events = postgres.row_count("case_events").await?;
    println!(
        "  backlog:   {pg_cases} case rows and {pg_events} event rows ({rows} rows in all, {head} changes) in {backlog_secs:.1} s"
    );
    println!(
        "             {:.0} case rows/s, {:.0} rows/s; batches of {} changes; CPU of this process (node side) {cpu:.1} s",
        cases_at_city as f64 / backlog_secs,
        rows as f64 / backlog_secs,
        args.batch_changes
    );

    // Live: the districts push what their stations sent while the sink runs.
    let samples = Arc::new(Mutex::new(Vec::<(f64, u64, u64)>::new()));
    let sampling = {
        let (city, state, samples) = (city.clone(), state.clone(), samples.clone());
        let t0 = Instant::now();
        tokio::spawn(async move {
            // Bounded by the abort below and by an hour.
            for _ in 0..36_000 {
                let head = city.feed_head().await.unwrap_or(0);
                let position = state.lock().unwrap_or_else(|e| e.into_inner()).position;
                samples.lock().unwrap_or_else(|e| e.into_inner()).push((
                    t0.elapsed().as_secs_f64(),
                    head,
                    position,
                ));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let ingest_started = Instant::now();
    let received = tree::transfer(&live, &city_node).await?;
    let ingest_secs = ingest_started.elapsed().as_secs_f64();
    let head = city.feed_head().await?;
    wait_until(&state, head, Duration::from_secs(3600)).await?;
    let caught_up_secs = ingest_started.elapsed().as_secs_f64();
    sampling.abort();
    let samples = samples.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let lags: Vec<u64> = samples
        .iter()
        .map(|(_, h, p)| h.saturating_sub(*p))
        .collect();
    // How old the newest change in PostgreSQL is: when the log first reached the
    // position PostgreSQL holds, against now.
    let delays: Vec<f64> = samples
        .iter()
        .map(|(t, _, position)| {
            let reached = samples
                .iter()
                .find(|(_, h, _)| h >= position)
                .map_or(*t, |(t0, _, _)| *t0);
            (t - reached).max(0.0)
        })
        .collect();
    let max_lag = lags.iter().copied().max().unwrap_or(0);
    let mut sorted = lags.clone();
    sorted.sort_unstable();
    let median_lag = sorted.get(sorted.len() / 2).copied().unwrap_or(0);
    let max_delay = delays.iter().copied().fold(0.0, f64::max);
    println!(
        "  live sync: the city took in {received} changes ({} cases) in {ingest_secs:.1} s ({:.0} changes/s) while the sink ran",
        args.live_cases,
        received as f64 / ingest_secs
    );
    println!(
        "             sink lag: median {median_lag} changes, max {max_lag} changes; newest row in PostgreSQL at most {max_delay:.1} s behind the city's log; all in PostgreSQL {:.1} s after the ingest ended",
        caught_up_secs - ingest_secs
    );
    let (total, tables) = postgres.sizes().await?;
    let cases_now = city.case_count().await?;
    println!(
        "  PostgreSQL: {:.0} MB for {cases_now} cases ({:.2} KB per case, indexes included); the city's SQLite: {:.0} MB",
        total as f64 / 1e6,
        total as f64 / 1e3 / cases_now.max(1) as f64,
        city.disk_bytes() as f64 / 1e6
    );
    for (table, bytes) in tables.iter().filter(|(_, b)| *b > 1_000_000) {
        println!("              {table}: {:.0} MB", *bytes as f64 / 1e6);
    }
    // The documented month query, timed on the last full month.
    let month = crate::store::Month::of(yizhan_sync::domain::calendar::Date::from_unix_ms_cst(
        now as i64,
    ))
    .prev()
    .to_string();
    let doc = include_str!("../../../docs/sink.md");
    if let Some(sql) = doc
        .split("<!-- month-statistics -->")
        .nth(1)
        .and_then(|rest| rest.split("```sql").nth(1))
        .and_then(|rest| rest.split("```").next())
    {
        let started = Instant::now();
        let rows = postgres.query_text(sql, &[&month]).await?;
        println!(
            "  month statistics (docs/sink.md) for {month}: {} districts in {:.2} s",
            rows.len(),
            started.elapsed().as_secs_f64()
        );
    }
    sink.abort();
    live.store.shutdown().await;
    live_station.store.shutdown().await;
    city.shutdown().await;
    Ok(())
}

async fn wait_until(
    state: &Arc<Mutex<SinkState>>,
    head: u64,
    limit: Duration,
) -> anyhow::Result<()> {
    let started = Instant::now();
    while started.elapsed() < limit {
        {
            let s = state.lock().unwrap_or_else(|e| e.into_inner());
            if s.up && s.position >= head {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let s = state.lock().unwrap_or_else(|e| e.into_inner()).clone();
    anyhow::bail!("the sink did not reach {head} within {limit:?}: {s:?}")
}

/// A new database on the server of `url`; returns its URL and name.
async fn create_database(url: &str) -> anyhow::Result<(String, String)> {
    let mut suffix = [0u8; 4];
    crate::accounts::fill_random(&mut suffix);
    let name = format!("yizhan_bench_{}", yizhan_sync::ids::hex(&suffix));
    let admin = Postgres::connect(url, Duration::from_secs(30))
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.detail()))?;
    admin
        .create_database(&name)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.detail()))?;
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let server = base.rsplit_once('/').map_or(base, |(s, _)| s);
    let with_db = if query.is_empty() {
        format!("{server}/{name}")
    } else {
        format!("{server}/{name}?{query}")
    };
    Ok((with_db, name))
}

async fn drop_database(url: &str, name: &str) {
    if let Ok(admin) = Postgres::connect(url, Duration::from_secs(30)).await {
        let _ = admin.drop_database(name).await;
    }
}
