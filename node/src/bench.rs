//! `yizhan bench …`: performance figures printed for docs/benchmarks.md.

mod city;
mod flood;
mod hall;
mod longpoll;
mod sink;
mod start;
pub mod tree;
mod web;
pub use city::{CityBenchArgs, city};
pub use flood::{FloodBenchArgs, flood};
pub use hall::{HallBenchArgs, hall};
pub use longpoll::{LongPollBenchArgs, longpoll};
pub use sink::{SinkBenchArgs, sink};
pub use start::{StartBenchArgs, start};
pub use web::{WebBenchArgs, web};

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use clap::Args;
use yizhan_sync::domain::calendar::{Date, WarningLevel};
use yizhan_sync::domain::case::{Applicant, MaterialReceived, NewCase, Phone, Status};
use yizhan_sync::domain::codes::{DivisionCode, ResidentId};
use yizhan_sync::ids::Scope;

use crate::config::Synchronous;
use crate::demo::{DEMO_DISTRICT, DEMO_DIVISION, demo_catalog};
use crate::store::{CaseFilter, NewAction, Staff, Store, StoreOptions};

#[derive(Debug, Args)]
pub struct StoreBenchArgs {
    /// Cases to create and accept
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub cases: u64,
    /// Concurrent writers (counters)
    #[arg(long, default_value_t = 16)]
    pub concurrency: u64,
    /// List queries to time
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub queries: u64,
    /// The writer's sync mode: full (default, as configured nodes run) or normal
    #[arg(long, default_value = "full")]
    pub synchronous: String,
    /// Keep the benchmark database in this directory instead of deleting it
    #[arg(long, value_name = "DIR")]
    pub keep: Option<std::path::PathBuf>,
}

/// Creates and accepts cases through the store layer, then times the counter's list query.
pub async fn store(args: StoreBenchArgs) -> anyhow::Result<()> {
    let synchronous = match args.synchronous.as_str() {
        "full" => Synchronous::Full,
        "normal" => Synchronous::Normal,
        other => anyhow::bail!("--synchronous {other:?}: use full or normal"),
    };
    let dir = match &args.keep {
        Some(dir) => {
            crate::data_dir::ensure_empty(dir)?;
            std::fs::create_dir_all(dir)?;
            dir.clone()
        }
        None => tempfile_dir()?,
    };
    let path = dir.join("bench.db");
    let store = Store::open(
        &path,
        StoreOptions {
            identity: crate::identity::NodeKey::from_seed([0x42; 32]).identity(
                yizhan_sync::auth::NodeRole::Station,
                DivisionCode::parse(DEMO_DIVISION).expect("valid"),
                "bench",
            ),
            doc_cache: crate::config::StoreSection::default().doc_cache,
            readers: 4,
            synchronous,
            migrate: true,
        },
    )?;
    // A combined item (并联审批) needs its departments at a hall: not benchmarked here.
    let items: Vec<_> = demo_catalog()
        .into_iter()
        .filter(|i| i.parts.is_empty())
        .collect();
    // Cases arrive over about 14 months of working time, ending today, so the list holds
    // every warning level in realistic proportions.
    let now = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
    // One case every six minutes (100,000 cases fill about 14 months); writers run a few
    // cases apart, well within the clock's tolerance for out-of-order local times.
    let span_ms: u64 = (420 * 86_400_000u64).min(args.cases * 360_000);
    let start_ms = now - span_ms;
    for item in &items {
        store
            .publish_item(
                Scope::catalog(&DivisionCode::parse(DEMO_DISTRICT).expect("valid")),
                item.clone(),
                start_ms,
            )
            .await?;
    }
    let started = Instant::now();
    fill_cases(
        &store,
        Arc::new(items),
        args.cases,
        args.concurrency,
        start_ms,
        span_ms,
    )
    .await?;
    let write_secs = started.elapsed().as_secs_f64();
    let db_bytes = store.disk_bytes();
    // The WAL apart: while writes never pause its file reaches up to four checkpoint
    // thresholds (`store::checkpoint`), and is cut back to one when it starts over.
    let main_bytes = std::fs::metadata(&path).map_or(db_bytes, |m| m.len());
    let wal_bytes = db_bytes.saturating_sub(main_bytes);
    println!(
        "store bench: {} cases created and accepted, {} concurrent writers, synchronous={}",
        args.cases, args.concurrency, args.synchronous
    );
    println!("  write time      {write_secs:.2} s");
    println!(
        "  throughput      {:.0} cases/s ({:.0} writes/s)",
        args.cases as f64 / write_secs,
        2.0 * args.cases as f64 / write_secs
    );
    println!(
        "  database size   {:.1} MB ({:.0} bytes/case), and the WAL file {:.1} MB",
        main_bytes as f64 / 1e6,
        main_bytes as f64 / args.cases as f64,
        wal_bytes as f64 / 1e6
    );
    println!(
        "  peak RSS        {}",
        peak_rss().map_or("unknown".into(), |kb| format!(
            "{:.1} MB",
            kb as f64 / 1024.0
        ))
    );
    if let Some(written) = bytes_written() {
        println!(
            "  bytes written   {:.0} MB ({:.0} bytes/case, WAL and checkpoints)",
            written as f64 / 1e6,
            written as f64 / args.cases as f64
        );
    }

    let today = Date::from_unix_ms_cst(now as i64);
    let mut all = Vec::new();
    println!(
        "  counter list query: status=accepted, one warning level, 50 rows, {} queries per level",
        args.queries
    );
    for level in WarningLevel::ALL {
        let mut times = Vec::with_capacity(args.queries as usize);
        let mut rows = 0;
        for _ in 0..args.queries {
            let t = Instant::now();
            let page = store
                .list_cases(CaseFilter {
                    status: Some(Status::Accepted),
                    level: Some(level),
                    impl_code: None,
                    counter: None,
                    division: None,
                    holder: None,
                    created_from: None,
                    created_to: None,
                    conflict_only: false,
                    open_only: false,
                    search: None,
                    order: None,
                    cursor: None,
                    limit: 50,
                    today,
                })
                .await?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            rows = page.cases.len();
        }
        let (median, p99) = percentiles(&mut times);
        println!(
            "    {:<13} rows {rows:>2}   median {median:.3} ms   p99 {p99:.3} ms",
            level.as_str()
        );
        all.extend(times);
    }
    let (median, p99) = percentiles(&mut all);
    println!(
        "    {:<13}          median {median:.3} ms   p99 {p99:.3} ms",
        "all levels"
    );
    store.shutdown().await;
    drop(store);
    if args.keep.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

fn percentiles(times: &mut [f64]) -> (f64, f64) {
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99))
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let mut suffix = [0u8; 4];
    crate::accounts::fill_random(&mut suffix);
    let dir = std::env::temp_dir().join(format!("yizhan-bench-{}", yizhan_sync::ids::hex(&suffix)));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Creates and accepts `total_cases` cases through the store with `concurrency`
/// concurrent writers, spread evenly from `start_ms` over `span_ms`.
pub(crate) async fn fill_cases(
    store: &Store,
    items: Arc<Vec<yizhan_sync::domain::item::Item>>,
    total_cases: u64,
    concurrency: u64,
    start_ms: u64,
    span_ms: u64,
) -> anyhow::Result<()> {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (store, items, next, total) = (store.clone(), items.clone(), next.clone(), total_cases);
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return anyhow::Ok(());
                }
                let time = start_ms + span_ms * i / total;
                let item = &items[(i % items.len() as u64) as usize];
                let new = full_application(item, i, "138");
                let staff = Staff {
                    username: "bench".into(),
                    counter: String::new(),
                    role: crate::store::Role::Worker,
                };
                let id = store
                    .create_case(item.impl_code.to_string(), new, staff.clone(), time)
                    .await?;
                store
                    .act_on_case(id, vec![NewAction::Accept], staff, time + 60_000)
                    .await?;
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// The config of a node a bench runs as its own `yizhan serve`: loopback only, a free
/// port, every other section at its default.
pub(crate) fn loopback_config(
    role: crate::config::Role,
    division: &str,
    name: &str,
) -> anyhow::Result<crate::config::Config> {
    use crate::config::{Config, HttpSection, NodeSection};
    Ok(Config {
        node: NodeSection {
            role,
            division: division.into(),
            name: name.into(),
        },
        http: HttpSection {
            listen: "127.0.0.1:0".parse()?,
            ..HttpSection::default()
        },
        store: Default::default(),
        sync: Default::default(),
        backup: Default::default(),
        discovery: Default::default(),
        service: Default::default(),
        appointments: Default::default(),
        sink: Default::default(),
        supervision: Default::default(),
    })
}

/// Starts `yizhan serve` for `data_dir` on a free loopback port as a child process;
/// returns it and its base URL once it prints `listening on`.
pub(crate) fn spawn_serve(
    exe: &std::path::Path,
    data_dir: &std::path::Path,
) -> anyhow::Result<(std::process::Child, String)> {
    use std::io::BufRead;
    let mut child = std::process::Command::new(exe)
        .arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--listen", "127.0.0.1:0"])
        .env("YIZHAN_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().expect("piped");
    for line in std::io::BufReader::new(stdout).lines() {
        if let Some(base) = line?.strip_prefix("listening on ") {
            return Ok((child, base.to_string()));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    anyhow::bail!(
        "`yizhan serve --data-dir {}` did not start",
        data_dir.display()
    )
}

/// Bytes this process wrote through write(2) and friends (Linux), from /proc/self/io.
fn bytes_written() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    let line = io.lines().find(|l| l.starts_with("wchar:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Peak resident set size of this process in KiB (Linux), from /proc/self/status.
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[derive(Debug, Args)]
pub struct SyncBenchArgs {
    /// Cases the station holds (each: ~10 fields and 5 events, one change per action as
    /// the counter makes them: 6 changes)
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub cases: u64,
    /// Pack each case's events into 3 changes (intake; supplement + accept; suspend +
    /// resume + decide), the earlier shape of this benchmark, for comparison
    #[arg(long)]
    pub packed: bool,
    /// Bytes of changes per batch
    #[arg(long, default_value_t = 2 * 1024 * 1024)]
    pub batch_bytes: u32,
    /// Keep the two data dirs in this directory
    #[arg(long, value_name = "DIR")]
    pub keep: Option<std::path::PathBuf>,
}

/// A station pushes all its cases to a district hall running as a separate `yizhan serve`
/// process over loopback HTTP; then 1% of the cases, spread over the whole span, get one
/// more event and it pushes again.
pub async fn sync(args: SyncBenchArgs) -> anyhow::Result<()> {
    use std::sync::Arc;

    use yizhan_sync::auth::NodeRole;
    use yizhan_sync::domain::case::Action;
    use yizhan_sync::feed::Pull;

    use crate::config::{Role, SyncSection};
    use crate::data_dir::{DataDir, create_data_dir};
    use crate::node::OpenNode;
    use crate::store::Relation;

    let root = match &args.keep {
        Some(dir) => {
            crate::data_dir::ensure_empty(dir)?;
            std::fs::create_dir_all(dir)?;
            dir.clone()
        }
        None => tempfile_dir()?,
    };
    let make = |name: &str, role: Role, division: &str| -> anyhow::Result<DataDir> {
        let dir = DataDir::new(root.join(name));
        let mut config = loopback_config(role, division, name)?;
        config.sync = SyncSection {
            interval_secs: 3600,
            batch_bytes: args.batch_bytes,
            ..SyncSection::default()
        };
        create_data_dir(&dir, &config)?;
        Ok(dir)
    };
    let hall_dir = make("hall", Role::District, DEMO_DISTRICT)?;
    let station_dir = make("station", Role::Station, DEMO_DIVISION)?;
    let now = crate::clock::Clock::now_ms(&crate::clock::SystemClock);

    // Enroll and give the station the catalog, in process, before the clock starts.
    let station_record;
    {
        let (_hall_lock, hall) = OpenNode::exclusive(&hall_dir)?;
        let (_station_lock, station) = OpenNode::exclusive(&station_dir)?;
        let hall_record = hall
            .key
            .identity(NodeRole::District, hall.config.division(), "hall")
            .record;
        station_record = station
            .key
            .identity(NodeRole::Station, station.config.division(), "station")
            .record;
        hall.store
            .create_enroll_code(
                "bench".into(),
                station_record.division.clone(),
                NodeRole::Station,
                now + 3_600_000,
            )
            .await?;
        let above = hall
            .store
            .enroll_child("bench".into(), station_record.clone(), now)
            .await?;
        for (n, record) in above.chain.into_iter().enumerate() {
            station
                .store
                .pin_peer(
                    record,
                    if n == 0 {
                        Relation::Parent
                    } else {
                        Relation::Ancestor
                    },
                    None,
                )
                .await?;
        }
        for item in demo_catalog() {
            hall.store
                .publish_item(Scope::catalog(&hall.config.division()), item, now)
                .await?;
        }
        loop {
            let pull = Pull {
                scopes: vec![],
                have: station.store.vector().await?,
                max_bytes: 1 << 20,
            };
            let batch = hall.store.serve_pull(station_record.clone(), pull).await?;
            if batch.envelopes.is_empty() {
                break;
            }
            station.store.receive_batch(batch).await?;
        }
        let _ = hall_record;
        hall.store.shutdown().await;
        station.store.shutdown().await;
    }

    // The station's cases: intake; supplement + accept; suspend + resume + decide.
    let (_station_lock, station) = OpenNode::exclusive(&station_dir)?;
    let items: Vec<_> = demo_catalog()
        .into_iter()
        .filter(|i| {
            i.case_type == yizhan_sync::domain::item::CaseType::Committed
                && i.special_procedures.iter().any(|p| !p.counted)
                // The station decides these itself (no 代为受理 for a department).
                && i.delegated_by.is_none()
                // Nor a combined item's (its departments decide).
                && i.parts.is_empty()
        })
        .collect();
    let started = std::time::Instant::now();
    let span_ms: u64 = args.cases * 20_000;
    let start_ms = now - span_ms - 3_600_000;
    let next = Arc::new(AtomicU64::new(0));
    let items = Arc::new(items);
    // Every hundredth case, for the catch-up: 1 % of the cases, spread over the store's
    // whole span as later edits are in the field (old and new cases alike).
    let spread: Arc<std::sync::Mutex<Vec<yizhan_sync::ids::DocId>>> = Arc::default();
    let packed = args.packed;
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let spread = spread.clone();
        let (store, items, next, total) = (
            station.store.clone(),
            items.clone(),
            next.clone(),
            args.cases,
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return anyhow::Ok(());
                }
                let time = start_ms + span_ms * i / total;
                let item = &items[(i % items.len() as u64) as usize];
                let mut new = application(item, i);
                let held_back = new.materials.pop().expect("items ask for materials");
                let staff = Staff {
                    username: "bench".into(),
                    counter: format!("{}号窗口", i % 6 + 1),
                    role: crate::store::Role::Worker,
                };
                let id = store
                    .create_case(item.impl_code.to_string(), new, staff.clone(), time)
                    .await?;
                if i % 100 == 0 {
                    spread.lock().expect("not poisoned").push(id.clone());
                }
                let supplement = Action::Supplement {
                    materials: vec![held_back],
                };
                let accepting = vec![NewAction::Do(supplement), NewAction::Accept];
                record(&store, &id, accepting, &staff, time + 60_000, packed).await?;
                let procedure = item
                    .special_procedures
                    .iter()
                    .find(|p| !p.counted)
                    .expect("filtered")
                    .name
                    .clone();
                let later = vec![
                    NewAction::Do(Action::Suspend {
                        procedure,
                        reason: "按规定公示".into(),
                    }),
                    NewAction::Do(Action::Resume {
                        note: String::new(),
                    }),
                    NewAction::Do(Action::Decide {
                        approved: true,
                        reason: String::new(),
                        basis: String::new(),
                        remedies: String::new(),
                        on_behalf_of: None,
                    }),
                ];
                record(&store, &id, later, &staff, time + 120_000, packed).await?;
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let generated = started.elapsed().as_secs_f64();
    let local_changes: u64 = station
        .store
        .vector()
        .await?
        .iter()
        .map(|(_, _, seq)| seq)
        .max()
        .unwrap_or(0);

    // The hall, as its own process.
    let exe = std::env::current_exe()?;
    let (mut hall, base) = spawn_serve(&exe, &root.join("hall"))?;
    let hall_pid = hall.id();
    let result = async {
        let key = Arc::new(crate::identity::NodeKey::load(&station_dir.key())?);
        let parent = station
            .store
            .peers()
            .await?
            .into_iter()
            .find(|p| p.relation == Relation::Parent)
            .expect("enrolled")
            .record;
        let client = crate::link::Client::new(
            &base,
            parent.public_key,
            key,
            Arc::new(crate::clock::SystemClock),
        );
        let hello = yizhan_sync::feed::Hello {
            protocol: yizhan_sync::feed::PROTOCOL_VERSION,
            min_protocol: yizhan_sync::feed::MIN_PROTOCOL_VERSION,
            node: station_record.node,
            role: NodeRole::Station,
            division: station_record.division.clone(),
            name: "station".into(),
            now_ms: now,
            capabilities: vec![],
            refused: vec![],
        };
        reset_peak_rss();
        let cpu_before = (cpu_secs("self"), cpu_secs(&hall_pid.to_string()));
        let threads_before = thread_cpu_secs(hall_pid);
        let full_started = std::time::Instant::now();
        let full = crate::link::session(&station.store, &client, &hello, &parent, args.batch_bytes)
            .await?;
        let full_secs = full_started.elapsed().as_secs_f64();
        let cpu = (
            cpu_secs("self") - cpu_before.0,
            cpu_secs(&hall_pid.to_string()) - cpu_before.1,
        );
        let station_rss = peak_rss();
        let threads = thread_cpu_secs(hall_pid)
            .into_iter()
            .map(|(name, secs)| {
                let before = threads_before.get(&name).copied().unwrap_or(0.0);
                (name, secs - before)
            })
            .filter(|(_, secs)| *secs >= 0.01)
            .collect::<Vec<_>>();

        // 1% of the cases get one more event: every hundredth, over the whole span.
        let ids: Vec<yizhan_sync::ids::DocId> = spread.lock().expect("not poisoned").clone();
        let staff = Staff {
            username: "bench".into(),
            counter: "1号窗口".into(),
            role: crate::store::Role::Worker,
        };
        for id in &ids {
            let done = Action::Complete {
                result: "准予".into(),
                delivery: "窗口领取".into(),
            };
            station
                .store
                .act_on_case(id.clone(), vec![NewAction::Do(done)], staff.clone(), now)
                .await?;
        }
        let catch_started = std::time::Instant::now();
        let catch_up =
            crate::link::session(&station.store, &client, &hello, &parent, args.batch_bytes)
                .await?;
        let catch_secs = catch_started.elapsed().as_secs_f64();
        anyhow::Ok((
            full,
            full_secs,
            (cpu, threads),
            station_rss,
            ids.len(),
            catch_up,
            catch_secs,
        ))
    }
    .await;
    let hall_rss = std::fs::read_to_string(format!("/proc/{hall_pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        });
    let _ = hall.kill();
    let _ = hall.wait();
    let (full, full_secs, (cpu, threads), station_rss, touched, catch_up, catch_secs) = result?;
    let mb = |kb: Option<u64>| {
        kb.map_or("unknown".to_string(), |kb| {
            format!("{:.1} MB", kb as f64 / 1024.0)
        })
    };
    println!(
        "sync bench: station → district hall over loopback HTTP, {} cases ({local_changes} changes, {}), batches of {} KB",
        args.cases,
        if args.packed {
            "packed: 3 changes a case"
        } else {
            "one change per action, as counters make them"
        },
        args.batch_bytes / 1024
    );
    println!(
        "  generating the cases on the station took {generated:.1} s (not part of the figures)"
    );
    println!(
        "  full push:  {full_secs:.2} s, {} changes in {} batches",
        full.pushed, full.pushed_batches
    );
    println!(
        "              bytes on the wire {:.1} MB up, {:.1} MB down",
        full.bytes_up as f64 / 1e6,
        full.bytes_down as f64 / 1e6
    );
    println!(
        "              CPU time: station {:.2} s, hall {:.2} s (of {:.2} s on 2 cores)",
        cpu.0,
        cpu.1,
        2.0 * full_secs
    );
    println!(
        "              hall CPU by thread: {}",
        threads
            .iter()
            .map(|(name, secs)| format!("{name} {secs:.2} s"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "              peak RSS: station (during sync) {}, hall {}",
        mb(station_rss),
        mb(hall_rss)
    );
    println!(
        "  catch-up:   {catch_secs:.3} s for {touched} cases with one new event: {} changes, {:.1} KB up, {:.1} KB down",
        catch_up.pushed,
        catch_up.bytes_up as f64 / 1e3,
        catch_up.bytes_down as f64 / 1e3
    );
    signature_costs(local_changes, full.bytes_up)?;
    station.store.shutdown().await;
    if args.keep.is_none() {
        let _ = std::fs::remove_dir_all(&root);
    }
    Ok(())
}

/// Records `actions` on a case as a counter does, one change each a second apart, or (the
/// packed shape, `bench sync --packed`) all in one change at `at`.
async fn record(
    store: &Store,
    id: &yizhan_sync::ids::DocId,
    actions: Vec<NewAction>,
    staff: &Staff,
    at: u64,
    packed: bool,
) -> anyhow::Result<()> {
    if packed {
        store
            .act_on_case(id.clone(), actions, staff.clone(), at)
            .await?;
        return Ok(());
    }
    for (n, action) in actions.into_iter().enumerate() {
        store
            .act_on_case(
                id.clone(),
                vec![action],
                staff.clone(),
                at + n as u64 * 1_000,
            )
            .await?;
    }
    Ok(())
}

fn application(item: &yizhan_sync::domain::item::Item, i: u64) -> NewCase {
    NewCase {
        situations: Vec::new(),
        applicant: Applicant::NaturalPerson {
            name: format!("测试申请人{}", i % 1000),
            id_number: ResidentId::parse("11010519491231002X").expect("valid"),
            phone: Phone::parse(&format!("138{:08}", i % 100_000_000)).expect("valid"),
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
        counter: format!("{}号窗口", i % 6 + 1),
        note: String::new(),
    }
}

/// Resets the peak resident set size of this process (Linux), so a later reading covers
/// only what follows.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Why envelopes are signed per batch over a hash chain rather than one by one: times
/// both ways of checking `changes` changes on a sample, and the wire cost of a
/// signature per change, beside the bytes the real push sent.
fn signature_costs(changes: u64, wire_bytes: u64) -> anyhow::Result<()> {
    use anyhow::Context;
    use yizhan_sync::envelope::{self, CHAIN_START, Envelope};
    use yizhan_sync::ids::{DocId, DocKind, NodeId, Origin, Scope};

    const SAMPLE: u64 = 20_000;
    let seed = [5u8; 32];
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    let public = key.verifying_key().to_bytes();
    let origin = Origin {
        node: NodeId::from_public_key(&public),
        epoch: 1,
    };
    let template = Envelope {
        origin,
        seq: 0,
        prev: 0,
        doc: DocId::parse("c-0001-abc").context("sample document id")?,
        kind: DocKind::Case,
        scope: Scope::parse("case/440304001001").context("sample scope")?,
        hash: [7; 32],
        change: Vec::new(),
        refused: None,
    };
    // Per change: every envelope carries its own signature, and each is verified.
    let mut chains = Vec::with_capacity(SAMPLE as usize);
    let mut chain = CHAIN_START;
    for seq in 1..=SAMPLE {
        let e = Envelope {
            seq,
            ..template.clone()
        };
        chain = envelope::chain_next(&chain, &e);
        chains.push((seq, chain, envelope::sign(&key, &origin, seq, &chain)));
    }
    let started = std::time::Instant::now();
    let all_valid = chains
        .iter()
        .all(|(seq, chain, sig)| envelope::verify(&public, &origin, *seq, chain, sig));
    let per_change = started.elapsed().as_secs_f64() / SAMPLE as f64;
    // Chained: SHA-256 per change, one verification for the run.
    let started = std::time::Instant::now();
    let mut chain = CHAIN_START;
    for seq in 1..=SAMPLE {
        let e = Envelope {
            seq,
            ..template.clone()
        };
        chain = envelope::chain_next(&chain, &e);
    }
    let (last_seq, last_chain, last_sig) = chains[chains.len() - 1];
    let chained_valid =
        chain == last_chain && envelope::verify(&public, &origin, last_seq, &chain, &last_sig);
    let chained = started.elapsed().as_secs_f64() / SAMPLE as f64;
    anyhow::ensure!(
        all_valid && chained_valid,
        "the signature sample did not verify"
    );
    println!(
        "  signatures: checking {changes} changes one signature each would take {:.2} s of CPU; the per-origin chain takes {:.3} s (SHA-256 per change, one Ed25519 check per run; measured on {SAMPLE})",
        per_change * changes as f64,
        chained * changes as f64
    );
    println!(
        "              a signature per change would add {:.1} MB of incompressible bytes to the {:.1} MB pushed",
        (changes * 64) as f64 / 1e6,
        wire_bytes as f64 / 1e6
    );
    Ok(())
}

/// User plus system CPU seconds of a process (`self` or a pid), from `/proc`; 0 where
/// that cannot be read.
pub(crate) fn cpu_secs(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name, which is in parentheses and may hold spaces.
    let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU seconds of each thread of process `pid` so far, summed by thread name (the writer,
/// the apply thread, tokio's workers), so a benchmark shows which thread its time is on.
fn thread_cpu_secs(pid: u32) -> std::collections::BTreeMap<String, f64> {
    let mut by_name = std::collections::BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return by_name;
    };
    for task in tasks.flatten() {
        let tid = task.file_name().to_string_lossy().to_string();
        let name = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm"))
            .map(|n| n.trim().to_string())
            .unwrap_or_default();
        *by_name.entry(name).or_insert(0.0) += cpu_secs(&format!("{pid}/task/{tid}"));
    }
    by_name
}

/// The store's and the hall's benchmarks' `i`-th application for `item`: every listed
/// material handed in (the sync benchmark's [`application`] brings only the required
/// ones), at one of six counters, a phone number of its own under `phone_prefix`.
pub(crate) fn full_application(
    item: &yizhan_sync::domain::item::Item,
    i: u64,
    phone_prefix: &str,
) -> NewCase {
    NewCase {
        situations: Vec::new(),
        applicant: Applicant::NaturalPerson {
            name: "测试申请人".into(),
            id_number: ResidentId::parse("11010519491231002X").expect("valid"),
            phone: Phone::parse(&format!("{phone_prefix}{:08}", i % 100_000_000)).expect("valid"),
        },
        agent: None,
        materials: item
            .materials
            .iter()
            .map(|m| MaterialReceived {
                name: m.name.clone(),
                originals: m.originals,
                copies: m.copies,
            })
            .collect(),
        counter: format!("{}号窗口", i % 6 + 1),
        note: String::new(),
    }
}
