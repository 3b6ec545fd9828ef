//! `yizhan bench sink`: a city hall's cases into PostgreSQL. Rows per second from a
//! backlog, the sink's lag while the city ingests a live sync, and the size in
//! PostgreSQL.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;

use yizhan_sync::auth::NodeRole;
use yizhan_sync::domain::codes::DivisionCode;
use yizhan_sync::ids::Scope;

use super::tree::{self, TreeNode};
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
    /// Stream the backlog of a hall that already exists instead of preparing a city: a
    /// directory holding one `city-DIVISION` or `district-DIVISION` data dir (as
    /// `yizhan bench sink --keep` or `yizhan bench hall --keep` leave it, node key from
    /// seed 1). It is only opened, never written: the live sync then goes to a small city
    /// of its own whose sink takes over the same, already filled, database
    #[arg(long, value_name = "DIR")]
    pub from: Option<std::path::PathBuf>,
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
    let items = Arc::new(
        crate::demo::demo_catalog()
            .into_iter()
            .filter(|i| i.case_type == yizhan_sync::domain::item::CaseType::Committed)
            // A combined item (并联审批) needs its departments at a hall.
            .filter(|i| i.parts.is_empty())
            .collect::<Vec<_>>(),
    );
    let prepared = Instant::now();
    let (hall, mut live) = match &args.from {
        Some(dir) => (open_existing(dir).await?, None),
        None => {
            let (city, live) = prepare_city(args, root, now, &items).await?;
            (city, Some(live))
        }
    };
    let city = hall.store.clone();
    let cases_at_city = city.case_count().await?;
    let sqlite_bytes = city.disk_bytes();
    match &args.from {
        Some(dir) => println!(
            "sink bench: the {} hall in {} with {cases_at_city} cases",
            hall.record.role.as_str(),
            dir.display()
        ),
        None => println!(
            "sink bench: a city hall with {cases_at_city} cases from {STATIONS} stations in {STATIONS} districts; preparing took {:.0} s (not measured)",
            prepared.elapsed().as_secs_f64()
        ),
    }

    // The backlog: everything the hall holds, from an empty database.
    let state = Arc::new(Mutex::new(SinkState::default()));
    let mut sink = spawn_sink(&city, url, args.batch_changes, &state);
    let head = city.feed_head().await?;
    let cpu_before = super::cpu_secs("self");
    let started = Instant::now();
    let postgres = Postgres::connect(url, Duration::from_secs(30)).await?;
    // The sink's PostgreSQL backend, for its CPU time (the server runs on this machine).
    let backend = sink_backend(&postgres).await;
    wait_until(&state, head, Duration::from_secs(3600)).await?;
    let backlog_secs = started.elapsed().as_secs_f64();
    let cpu = super::cpu_secs("self") - cpu_before;
    let backend_cpu = backend.map(|pid| super::cpu_secs(&pid.to_string()));
    let (rows, feed_wait, write_secs) = {
        let s = state.lock().unwrap_or_else(|e| e.into_inner());
        (s.rows_written, s.feed_wait_secs, s.write_secs)
    };
    let pg_cases = postgres.row_count("cases").await?;
    let pg_events = postgres.row_count("case_events").await?;
    println!(
        "  backlog:   {pg_cases} case rows and {pg_events} event rows ({rows} rows in all, {head} changes) in {backlog_secs:.1} s"
    );
    println!(
        "             {:.0} case rows/s, {:.0} rows/s; batches of {} changes; CPU of this process (node side) {cpu:.1} s, of the sink's PostgreSQL backend {}",
        cases_at_city as f64 / backlog_secs,
        rows as f64 / backlog_secs,
        args.batch_changes,
        backend_cpu.map_or("unknown".into(), |s| format!("{s:.1} s"))
    );
    println!(
        "             the sink's writer waited {feed_wait:.1} s for the feed reader and {write_secs:.1} s for PostgreSQL; load average {}",
        load_average()
    );

    // With --from the hall is not written: a small city of its own takes over the
    // database (its rows stay) and ingests the live sync.
    let (city_node, city) = match live.take() {
        Some(branch) => {
            live = Some(branch);
            (hall, city)
        }
        None => {
            sink.abort();
            let taken = Postgres::connect(url, Duration::from_secs(30)).await?;
            taken.release_feed().await?;
            let (new_city, branch) = live_city(args, root, now, &items).await?;
            live = Some(branch);
            let store = new_city.store.clone();
            *state.lock().unwrap_or_else(|e| e.into_inner()) = SinkState::default();
            sink = spawn_sink(&store, url, args.batch_changes, &state);
            let head = store.feed_head().await?;
            wait_until(&state, head, Duration::from_secs(600)).await?;
            hall.store.shutdown().await;
            (new_city, store)
        }
    };
    let Some((live, live_station)) = live else {
        anyhow::bail!("no live branch");
    };

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
    let cases_now = postgres.row_count("cases").await?;
    println!(
        "  PostgreSQL: {:.0} MB for {cases_now} cases ({:.2} KB per case, indexes included); the hall's SQLite: {:.0} MB",
        total as f64 / 1e6,
        total as f64 / 1e3 / cases_now.max(1) as f64,
        sqlite_bytes as f64 / 1e6
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

/// Builds the city with the backlog (`--cases` from [`STATIONS`] districts, one station
/// each) and the district and station that hold the live sync, not yet at the city.
async fn prepare_city(
    args: &SinkBenchArgs,
    root: &std::path::Path,
    now: u64,
    items: &Arc<Vec<yizhan_sync::domain::item::Item>>,
) -> anyhow::Result<(TreeNode, (TreeNode, TreeNode))> {
    // Preparation is not measured: the nodes' durability settings do not matter here.
    let city = new_city(root, 1, now).await?;
    let per_station = args.cases / STATIONS;
    let backlog_span = (SPAN_MS - LIVE_SPAN_MS - 86_400_000) / STATIONS;
    // Concurrent writers record cases out of time order by up to `concurrency` cases'
    // spacing; with few cases that spacing is hours, so fewer writers keep it under the
    // store's six-hour clock check.
    let concurrency = (per_station * 3 * 3_600_000 / backlog_span).clamp(1, 16);
    // Each district with its one station is filled, synced up to the city and deleted
    // in turn, so the disk holds the city and one district and station at a time.
    for n in 0..STATIONS {
        let (hall, station) = branch(root, &city, n, 2 + 2 * n as u8, now).await?;
        let start = now - SPAN_MS + n * backlog_span;
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
    let live = live_branch(args, root, &city, 2 + 2 * STATIONS as u8, now, items).await?;
    Ok((city, live))
}

/// A small city of its own (no backlog) with the district and station of the live sync,
/// for `--from`.
async fn live_city(
    args: &SinkBenchArgs,
    root: &std::path::Path,
    now: u64,
    items: &Arc<Vec<yizhan_sync::domain::item::Item>>,
) -> anyhow::Result<(TreeNode, (TreeNode, TreeNode))> {
    // Seed 1 is the hall's of --from; this city's key differs.
    let city = new_city(root, 200, now).await?;
    let live = live_branch(args, root, &city, 201, now, items).await?;
    Ok((city, live))
}

/// The live part waits at a district of its own until the city takes it in.
async fn live_branch(
    args: &SinkBenchArgs,
    root: &std::path::Path,
    city: &TreeNode,
    seed: u8,
    now: u64,
    items: &Arc<Vec<yizhan_sync::domain::item::Item>>,
) -> anyhow::Result<(TreeNode, TreeNode)> {
    let (live, live_station) = branch(root, city, STATIONS, seed, now).await?;
    super::fill_cases(
        &live_station.store,
        items.clone(),
        args.live_cases,
        (args.live_cases * 3 * 3_600_000 / (LIVE_SPAN_MS / 2)).clamp(1, 16),
        now - LIVE_SPAN_MS,
        LIVE_SPAN_MS / 2,
    )
    .await?;
    tree::transfer(&live_station, &live).await?;
    Ok((live, live_station))
}

/// The cases span 14 months before now; the live ones the last three days.
const SPAN_MS: u64 = 420 * 86_400_000;
const LIVE_SPAN_MS: u64 = 3 * 86_400_000;

async fn new_city(root: &std::path::Path, seed: u8, now: u64) -> anyhow::Result<TreeNode> {
    let city = tree::open_node(root, seed, NodeRole::City, "440300", Synchronous::Normal).await?;
    for item in crate::demo::demo_catalog() {
        city.store
            .publish_item(
                Scope::catalog(&DivisionCode::parse("440300").expect("valid")),
                item,
                now - SPAN_MS - 86_400_000,
            )
            .await?;
    }
    Ok(city)
}

/// District `n` below `city` (`4403NN`, NN = n + 2) with its one station, enrolled and
/// holding the catalog; keys from `seed` and the one after it.
async fn branch(
    root: &std::path::Path,
    city: &TreeNode,
    n: u64,
    seed: u8,
    now: u64,
) -> anyhow::Result<(TreeNode, TreeNode)> {
    let district = format!("4403{:02}", n + 2);
    let hall = tree::open_node(
        root,
        seed,
        NodeRole::District,
        &district,
        Synchronous::Normal,
    )
    .await?;
    tree::enroll(city, &hall, now - SPAN_MS).await?;
    let station = tree::open_node(
        root,
        seed.wrapping_add(1),
        NodeRole::Station,
        &format!("{district}001001"),
        Synchronous::Normal,
    )
    .await?;
    tree::enroll(&hall, &station, now - SPAN_MS).await?;
    tree::transfer(city, &hall).await?;
    tree::transfer(&hall, &station).await?;
    Ok((hall, station))
}

/// Opens the one `city-…` or `district-…` data dir under `dir` (`--from`).
async fn open_existing(dir: &std::path::Path) -> anyhow::Result<TreeNode> {
    let (role, division) = tree::find_hall(dir)?;
    tree::open_node(dir, 1, role, &division, Synchronous::Normal).await
}

fn spawn_sink(
    store: &crate::store::Store,
    url: &str,
    batch_changes: u32,
    state: &Arc<Mutex<SinkState>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(
        Sink {
            store: store.clone(),
            url: url.to_string(),
            batch_changes,
            timeout: Duration::from_secs(120),
            state: state.clone(),
        }
        .run(),
    )
}

/// The process id of the sink's PostgreSQL backend, once it has connected.
async fn sink_backend(postgres: &Postgres) -> Option<i32> {
    for _ in 0..200 {
        if let Ok(Some(pid)) = postgres.backend_of("yizhan-sink").await {
            return Some(pid);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    None
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
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
