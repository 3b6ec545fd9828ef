//! `yizhan bench …`: performance figures printed for docs/benchmarks.md.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use clap::Args;
use yizhan_sync::domain::calendar::{Date, WarningLevel};
use yizhan_sync::domain::case::{Applicant, MaterialReceived, NewCase, Phone, Status};
use yizhan_sync::domain::codes::{DivisionCode, ResidentId};
use yizhan_sync::ids::Scope;

use crate::demo::{DEMO_DISTRICT, DEMO_DIVISION, demo_catalog};
use crate::store::{CaseFilter, NewAction, Staff, Store, StoreOptions, Synchronous};

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
            crate::node::ensure_empty(dir)?;
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
            doc_cache: 512,
            readers: 4,
            synchronous,
            migrate: true,
        },
    )?;
    let items = demo_catalog();
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
    let items = Arc::new(items);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let (store, items, next, total) = (store.clone(), items.clone(), next.clone(), args.cases);
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return anyhow::Ok(());
                }
                let time = start_ms + span_ms * i / total;
                let item = &items[(i % items.len() as u64) as usize];
                let new = NewCase {
                    applicant: Applicant::NaturalPerson {
                        name: "测试申请人".into(),
                        id_number: ResidentId::parse("11010519491231002X").expect("valid"),
                        phone: Phone::parse(&format!("138{:08}", i % 100_000_000)).expect("valid"),
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
                };
                let staff = Staff {
                    username: "bench".into(),
                    counter: String::new(),
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
    let write_secs = started.elapsed().as_secs_f64();
    let db_bytes = store.disk_bytes();
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
        "  database size   {:.1} MB ({:.0} bytes/case)",
        db_bytes as f64 / 1e6,
        db_bytes as f64 / args.cases as f64
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
                    created_from: None,
                    created_to: None,
                    conflict_only: false,
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
