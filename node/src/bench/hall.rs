//! `yizhan bench hall`: a district holding the cases of many stations, made at the
//! stations through the store's own write path (one action per change) and moved up as
//! sync sessions move them; then the hall's subtree list and per-station overview timed.
//!
//! The cases spread over a year before today with a mix of outcomes as a station sees
//! them: most older cases decided and completed (some late), some withdrawn, a share still
//! open and overdue, recent ones mostly open; a fifth of the completed ones rated, one
//! rating in twenty bad (opening a rectification). Stations are built one after another
//! and deleted once their cases are at the district, so the disk holds one station at a
//! time besides the district.

use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use yizhan_sync::auth::NodeRole;
use yizhan_sync::domain::calendar::{Date, WarningLevel};
use yizhan_sync::domain::case::Action;
use yizhan_sync::domain::codes::DivisionCode;
use yizhan_sync::domain::item::Item;
use yizhan_sync::ids::Scope;

use super::tree::{TreeNode, enroll, open_node, transfer};
use super::{percentiles, tempfile_dir};
use crate::config::Synchronous;
use crate::demo::{DEMO_DISTRICT, demo_catalog};
use crate::store::{CaseFilter, NewAction, Role, Staff};

#[derive(Debug, Args)]
pub struct HallBenchArgs {
    /// Cases in all, spread evenly over the stations
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub cases: u64,
    /// Stations below the district (at most 200), ten to a sub-district's division
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=200))]
    pub stations: u64,
    /// List queries to time
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub queries: u64,
    /// Stations built at once (each writes its changes in time order)
    #[arg(long, default_value_t = 4)]
    pub concurrency: u64,
    /// The stores' sync mode while building: normal (default, to build faster) or full
    #[arg(long, default_value = "normal")]
    pub synchronous: String,
    /// Keep the district's data in this directory instead of deleting it
    #[arg(long, value_name = "DIR")]
    pub keep: Option<std::path::PathBuf>,
    /// Build nothing: time the queries on the district kept earlier in DIR with --keep
    /// (opened, and migrated if this build is newer, in place)
    #[arg(long, value_name = "DIR", conflicts_with = "keep")]
    pub reuse: Option<std::path::PathBuf>,
}

const DAY_MS: u64 = 86_400_000;

/// Builds the district (or opens the one `--reuse` names) and times its pages' queries.
pub async fn hall(args: HallBenchArgs) -> anyhow::Result<()> {
    let synchronous = match args.synchronous.as_str() {
        "full" => Synchronous::Full,
        "normal" => Synchronous::Normal,
        other => anyhow::bail!("--synchronous {other:?}: use full or normal"),
    };
    let now = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
    let (root, district, stations) = match &args.reuse {
        Some(dir) => reuse(dir, synchronous).await?,
        None => build(&args, synchronous, now).await?,
    };
    let store = &district.store;
    println!(
        "  district db     {:.1} MB",
        store.disk_bytes() as f64 / 1e6
    );

    let today = Date::from_unix_ms_cst(now as i64);
    let levels = [
        WarningLevel::Normal,
        WarningLevel::Yellow,
        WarningLevel::Red,
        WarningLevel::LegalBreach,
    ];
    let mut times = Vec::with_capacity(args.queries as usize);
    let mut rows = 0usize;
    for q in 0..args.queries {
        let station = &stations[(q as usize * 7) % stations.len()];
        let level = levels[(q % 4) as usize];
        let started = Instant::now();
        let page = store
            .list_cases(CaseFilter {
                division: Some(DivisionCode::parse(station).expect("valid")),
                level: Some(level),
                open_only: true,
                limit: 50,
                ..CaseFilter::all(today)
            })
            .await?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        rows += page.cases.len();
    }
    let (p50, p99) = percentiles(&mut times);
    println!(
        "  subtree list (open, one station, one level, 50 rows): p50 {p50:.2} ms, p99 {p99:.2} ms over {} queries ({:.1} rows a page on average)",
        args.queries,
        rows as f64 / args.queries as f64
    );
    // The page a hall's staff land on: every open case below, soonest deadline first,
    // and the pages after it (keyset paging).
    let mut landing = Vec::new();
    let mut cursor = None;
    for _ in 0..args.queries.min(200) {
        let started = Instant::now();
        let page = store
            .list_cases(CaseFilter {
                open_only: true,
                order: Some(crate::store::Order::Deadline),
                cursor: cursor.take(),
                limit: 50,
                ..CaseFilter::all(today)
            })
            .await?;
        landing.push(started.elapsed().as_secs_f64() * 1000.0);
        cursor = page.next_cursor;
    }
    let (p50, p99) = percentiles(&mut landing);
    println!(
        "  subtree list (every open case, by deadline, pages 1 to {}): p50 {p50:.2} ms, p99 {p99:.2} ms",
        landing.len()
    );
    let mut one_station = Vec::new();
    for q in 0..args.queries.min(200) {
        let station = &stations[(q as usize * 7) % stations.len()];
        let started = Instant::now();
        store
            .list_cases(CaseFilter {
                division: Some(DivisionCode::parse(station).expect("valid")),
                open_only: true,
                order: Some(crate::store::Order::Deadline),
                limit: 50,
                ..CaseFilter::all(today)
            })
            .await?;
        one_station.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let (p50, p99) = percentiles(&mut one_station);
    println!(
        "  subtree list (one station's open cases, by deadline): p50 {p50:.2} ms, p99 {p99:.2} ms"
    );
    // The sub-district filter (a range of stations).
    let mut sub_times = Vec::new();
    for q in 0..args.queries.min(200) {
        let sub = &stations[(q as usize * 7) % stations.len()][..9];
        let started = Instant::now();
        store
            .list_cases(CaseFilter {
                division: Some(DivisionCode::parse(sub).expect("valid")),
                level: Some(levels[(q % 4) as usize]),
                open_only: true,
                limit: 50,
                ..CaseFilter::all(today)
            })
            .await?;
        sub_times.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    let (p50, p99) = percentiles(&mut sub_times);
    println!(
        "  subtree list (one sub-district, one level, 50 rows): p50 {p50:.2} ms, p99 {p99:.2} ms"
    );
    let mut overview_times = Vec::new();
    let mut lines = 0;
    for _ in 0..10 {
        let started = Instant::now();
        let overview = store.station_overview(today).await?;
        overview_times.push(started.elapsed().as_secs_f64() * 1000.0);
        lines = overview.lines.len();
        if overview_times.len() == 1 {
            let t = &overview.total;
            println!(
                "  overview totals open {} (yellow {}, red {}, legal breach {}), completed this month {} ({} on time), rated {} ({} satisfied), open rectifications {}",
                t.open,
                t.due_soon,
                t.overdue,
                t.legal_breach,
                t.completed_month,
                t.on_time_month,
                t.rated_month,
                t.satisfied_month,
                t.open_rectifications
            );
        }
    }
    let (p50, p99) = percentiles(&mut overview_times);
    println!("  per-station overview ({lines} lines): p50 {p50:.1} ms, max of 10 {p99:.1} ms");
    // The month's assessment (this month and the last whole one, each beside the month
    // before it), per grouping, as the page, its downloads and the API ask for it.
    let this_month = crate::store::Month::of(today);
    for month in [this_month.prev(), this_month] {
        for by in crate::store::AssessmentBy::ALL {
            let mut times = Vec::new();
            let mut lines = 0;
            let mut total = Default::default();
            for _ in 0..3 {
                let started = Instant::now();
                let assessment = store.assessment(month, by, Role::Admin, today).await?;
                times.push(started.elapsed().as_secs_f64() * 1000.0);
                lines = assessment.lines.len();
                total = assessment.total;
            }
            let (p50, max) = percentiles(&mut times);
            let total: crate::store::AssessmentFigures = total;
            println!(
                "  assessment {month} by {:<11} ({lines} lines; received {}, completed {}, rated {}, notices {}): p50 {p50:.0} ms, max of 3 {max:.0} ms",
                by.as_str(),
                total.received,
                total.completed,
                total.rated(),
                total.supervision
            );
        }
    }
    println!(
        "  peak RSS        {}",
        super::peak_rss().map_or("unknown".into(), |kb| format!(
            "{:.1} MB",
            kb as f64 / 1024.0
        ))
    );
    store.shutdown().await;
    if args.keep.is_none() && args.reuse.is_none() {
        std::fs::remove_dir_all(&root).ok();
    }
    Ok(())
}

/// Builds a district of `args.stations` stations holding `args.cases` cases made at the
/// stations and synced up; returns its directory, the district and the stations.
async fn build(
    args: &HallBenchArgs,
    synchronous: Synchronous,
    now: u64,
) -> anyhow::Result<(std::path::PathBuf, TreeNode, Vec<String>)> {
    let root = match &args.keep {
        Some(dir) => {
            crate::data_dir::ensure_empty(dir)?;
            std::fs::create_dir_all(dir)?;
            dir.clone()
        }
        None => tempfile_dir()?,
    };
    let start_ms = now - 365 * DAY_MS;
    let district = open_node(&root, 1, NodeRole::District, DEMO_DISTRICT, synchronous).await?;
    let items: Vec<Item> = demo_catalog()
        .into_iter()
        // The station may not decide a delegated item's cases (the department does).
        .filter(|i| i.delegated_by.is_none())
        // Nor a combined item's (its departments decide, 并联审批).
        .filter(|i| i.parts.is_empty())
        .collect();
    for item in &items {
        district
            .store
            .publish_item(
                Scope::catalog(&DivisionCode::parse(DEMO_DISTRICT).expect("valid")),
                item.clone(),
                start_ms - DAY_MS,
            )
            .await?;
    }
    let items = Arc::new(items);
    let built = Instant::now();
    let per_station = args.cases / args.stations;
    let mut stations = Vec::new();
    let mut changes_up = 0u64;
    let all: Vec<u64> = (0..args.stations).collect();
    for group in all.chunks(args.concurrency.max(1) as usize) {
        let mut tasks = Vec::new();
        for &s in group {
            let division = format!("{DEMO_DISTRICT}{:03}{:03}", s / 10 + 1, s % 10 + 1);
            let seed = (s + 2) as u8;
            let station = open_node(&root, seed, NodeRole::Station, &division, synchronous).await?;
            enroll(&district, &station, start_ms - DAY_MS).await?;
            transfer(&district, &station).await?;
            let n = per_station + u64::from(s < args.cases % args.stations);
            let (items, district) = (items.clone(), district.clone());
            let root = root.clone();
            tasks.push(tokio::spawn(async move {
                fill_station(&station.store, &items, n, start_ms, now).await?;
                let moved = transfer(&station, &district).await?;
                station.store.shutdown().await;
                std::fs::remove_dir_all(root.join(format!("station-{division}"))).ok();
                anyhow::Ok((division, moved))
            }));
        }
        for task in tasks {
            let (division, moved) = task.await??;
            changes_up += moved;
            stations.push(division);
        }
        println!(
            "  … {} stations, {} changes up, {:.0} s",
            stations.len(),
            changes_up,
            built.elapsed().as_secs_f64()
        );
    }
    // One supervision notice to each station, so the assessment counts some.
    let supervisor = Staff {
        username: "bench-duban".into(),
        counter: String::new(),
        role: Role::Supervisor,
    };
    for station in &stations {
        district
            .store
            .issue_supervision(
                crate::store::NewSupervision {
                    station: DivisionCode::parse(station).expect("valid"),
                    case: None,
                    reason: "月度考核发现逾期办件较多".into(),
                    todo: "五个工作日内说明原因并整改".into(),
                    reply_days: 5,
                },
                supervisor.clone(),
                now,
            )
            .await?;
    }
    let build_secs = built.elapsed().as_secs_f64();
    let store = &district.store;
    let held = store.case_count().await?;
    println!(
        "hall bench: a district holding {held} cases from {} stations ({} changes), synchronous={}",
        args.stations, changes_up, args.synchronous
    );
    println!(
        "  built in        {build_secs:.0} s ({:.0} cases/s, stations and district together)",
        held as f64 / build_secs
    );

    Ok((root, district, stations))
}

/// Opens the district kept in `dir` by an earlier `--keep` run, and names its stations.
async fn reuse(
    dir: &std::path::Path,
    synchronous: Synchronous,
) -> anyhow::Result<(std::path::PathBuf, TreeNode, Vec<String>)> {
    let opened = Instant::now();
    let district = open_node(dir, 1, NodeRole::District, DEMO_DISTRICT, synchronous).await?;
    let mut stations: Vec<String> = district
        .store
        .subtree_nodes()
        .await?
        .into_iter()
        .filter(|n| {
            DivisionCode::parse(&n.division)
                .is_ok_and(|d| d.level() == yizhan_sync::domain::codes::DivisionLevel::Community)
        })
        .map(|n| n.division)
        .collect();
    stations.sort();
    anyhow::ensure!(
        !stations.is_empty(),
        "{} holds no district with stations kept by `yizhan bench hall --keep`",
        dir.display()
    );
    let held = district.store.case_count().await?;
    println!(
        "hall bench: the district kept in {} holding {held} cases from {} stations (opened in {:.1} s)",
        dir.display(),
        stations.len(),
        opened.elapsed().as_secs_f64()
    );
    Ok((dir.to_path_buf(), district, stations))
}

/// What becomes of a case, by its number and how old it is today.
fn outcome(i: u64, age_days: u64) -> Vec<Action> {
    let roll = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 54; // 0..1024
    let decide = Action::Decide {
        approved: !roll.is_multiple_of(17),
        reason: "经审查，材料齐全，符合法定条件".into(),
        basis: "《行政许可法》第三十八条".into(),
        remedies: "如不服，可依法申请行政复议或者提起行政诉讼".into(),
        on_behalf_of: None,
    };
    let complete = Action::Complete {
        result: "已办结".into(),
        delivery: "窗口领取".into(),
    };
    let withdraw = Action::Withdraw {
        reason: "申请人主动撤回".into(),
    };
    let rate = |level: u8| Action::Rate {
        level,
        comment: String::new(),
        rectify_days: 15,
    };
    // Recent cases are mostly still open; older ones mostly done.
    let open_share = if age_days < 20 { 700 } else { 40 };
    match roll {
        r if r < open_share => Vec::new(),
        r if r < open_share + 30 => vec![withdraw],
        r if r < open_share + 60 => vec![decide],
        r => {
            let mut actions = vec![decide, complete];
            if r.is_multiple_of(5) {
                actions.push(rate(if r % 100 == 5 { 1 } else { 5 - (r % 3) as u8 }));
            }
            actions
        }
    }
}

/// One thing a station records: receiving case `i`, or an action on it.
enum Step {
    Receive,
    Act(NewAction),
}

/// Makes `n` cases at a station, received over the year before `now`, each taken through
/// its outcome one action (one change) at a time, every change in time order as the
/// counter records them (the node refuses to record far behind its newest event).
async fn fill_station(
    store: &crate::store::Store,
    items: &[Item],
    n: u64,
    start_ms: u64,
    now: u64,
) -> anyhow::Result<()> {
    let span_ms = now - start_ms - 2 * DAY_MS;
    let mut steps: Vec<(u64, u64, Step)> = Vec::new();
    for i in 0..n {
        let time = start_ms + span_ms * i / n;
        steps.push((time, i, Step::Receive));
        let mut at = time + 60_000;
        steps.push((at, i, Step::Act(NewAction::Accept)));
        let age_days = (now - time) / DAY_MS;
        // Decided and completed a few days apart, some late; never after now.
        let step = DAY_MS * (1 + i % 9);
        for action in outcome(i, age_days) {
            at = (at + step).min(now - 60_000);
            steps.push((at, i, Step::Act(NewAction::Do(action))));
        }
    }
    steps.sort_by_key(|(at, i, _)| (*at, *i));
    let staff = Staff {
        username: "bench".into(),
        counter: "1号窗口".into(),
        role: Role::Lead,
    };
    let mut ids: Vec<Option<yizhan_sync::ids::DocId>> = vec![None; n as usize];
    for (at, i, step) in steps {
        match step {
            Step::Receive => {
                let item = &items[(i % items.len() as u64) as usize];
                let new = super::full_application(item, i, "139");
                let id = store
                    .create_case(item.impl_code.to_string(), new, staff.clone(), at)
                    .await?;
                ids[i as usize] = Some(id);
            }
            Step::Act(action) => {
                let Some(id) = ids[i as usize].clone() else {
                    continue;
                };
                // Actions the case's state does not allow (an immediate item completed at
                // acceptance) are skipped, as the page would not offer them.
                if let Err(e) = store.act_on_case(id, vec![action], staff.clone(), at).await
                    && !matches!(e, crate::store::StoreError::Case(_))
                {
                    return Err(e.into());
                }
            }
        }
    }
    Ok(())
}
