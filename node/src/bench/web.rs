//! `yizhan bench web`: the counter's pages under load, and the node's footprint. A
//! station with 100,000 cases runs as its own `yizhan serve` process on loopback; 50
//! concurrent clients (this process, reqwest over HTTP/1.1 keep-alive) request the work
//! list and catalog searches with a signed-in session. Printed: the latency of each
//! page, the release binary's size, start-up time, idle RSS and peak RSS under load.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use yizhan_sync::domain::codes::DivisionCode;
use yizhan_sync::ids::Scope;

use crate::config::Role;
use crate::data_dir::{DataDir, create_data_dir};
use crate::demo::{DEMO_DISTRICT, DEMO_DIVISION, demo_catalog};
use crate::node::OpenNode;
use crate::store::{NewUser, Role as StaffRole};

#[derive(Debug, Args)]
pub struct WebBenchArgs {
    /// Cases in the station's store
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub cases: u64,
    /// Concurrent clients
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub clients: u64,
    /// Requests per page
    #[arg(long, default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub requests: u64,
}

/// The pages timed, as a counter worker uses them.
const PAGES: &[(&str, &str)] = &[
    ("work list, overdue (red)", "/worklist?view=overdue"),
    ("work list, due soon (yellow)", "/worklist?view=due_soon"),
    ("work list, received today", "/worklist?view=today"),
    ("catalog search 救助", "/catalog?q=%E6%95%91%E5%8A%A9"),
    ("catalog search dbsq (pinyin)", "/catalog?q=dbsq"),
];

/// A lead's pages: heavier and opened now and then, so timed one request at a time
/// after the load, with the month's cases (about 7,000 of 100,000).
const LEAD_PAGES: &[(&str, &str)] = &[
    ("lead dashboard", "/dashboard"),
    ("monthly statistics as .csv", "/dashboard/monthly.csv"),
    ("month's cases as .csv", "/dashboard/cases.csv"),
    ("month's cases as .xlsx", "/dashboard/cases.xlsx"),
];

pub async fn web(args: WebBenchArgs) -> anyhow::Result<()> {
    let root = super::tempfile_dir()?;
    let dir = DataDir::new(root.join("station"));
    create_data_dir(
        &dir,
        &super::loopback_config(Role::Station, DEMO_DIVISION, "bench station")?,
    )?;
    let (_lock, node) = OpenNode::exclusive(&dir)?;
    let now = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
    // The same spread as `bench store`: one case every six minutes up to today, so every
    // warning level is present.
    let span_ms: u64 = (420 * 86_400_000u64).min(args.cases * 360_000);
    let start_ms = now - span_ms;
    // A combined item (并联审批) needs its departments at a hall: not benchmarked here.
    let items: Vec<_> = demo_catalog()
        .into_iter()
        .filter(|i| i.parts.is_empty())
        .collect();
    for item in &items {
        node.store
            .publish_item(
                Scope::catalog(&DivisionCode::parse(DEMO_DISTRICT).expect("valid")),
                item.clone(),
                start_ms,
            )
            .await?;
    }
    let started = Instant::now();
    super::fill_cases(
        &node.store,
        Arc::new(items),
        args.cases,
        16,
        start_ms,
        span_ms,
    )
    .await?;
    let filled = started.elapsed().as_secs_f64();
    let password = "bench-password-4711";
    node.store
        .add_user(
            NewUser {
                username: "bench".into(),
                display_name: "压测".into(),
                // A lead sees the counter's pages and the dashboard.
                role: StaffRole::Lead,
                counter: "1号窗口".into(),
                password_hash: crate::accounts::hash_password(password)?,
            },
            now,
        )
        .await?;

    node.store.shutdown().await;
    drop(node);
    drop(_lock);

    // The node as a technician runs it: its own `yizhan serve` process. Start-up is the
    // time from spawning it to its "listening on" line, with the 100k cases in place.
    let exe = std::env::current_exe()?;
    let binary_bytes = std::fs::metadata(&exe)?.len();
    let spawned = Instant::now();
    let (mut server, base) = super::spawn_serve(&exe, &dir.path)?;
    let startup = spawned.elapsed().as_secs_f64();
    let server_pid = server.id();
    // Idle: give it a moment (first sync attempt, discovery) before reading its memory.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_rss = proc_kb(server_pid, "VmRSS:");

    crate::tls::install_crypto_provider();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(args.clients as usize)
        .timeout(Duration::from_secs(30))
        .build()?;
    let cookie = sign_in(&http, &base, password).await?;

    // Warm up the caches, then time.
    for (_, path) in PAGES {
        for _ in 0..20 {
            fetch(&http, &base, path, &cookie).await?;
        }
    }
    let total = args.requests * PAGES.len() as u64;
    let next = Arc::new(AtomicU64::new(0));
    let load_started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.clients {
        let (http, base, cookie, next) = (http.clone(), base.clone(), cookie.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut timings: Vec<(usize, u64)> = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    return anyhow::Ok(timings);
                }
                let page = (n % PAGES.len() as u64) as usize;
                let sent = Instant::now();
                fetch(&http, &base, PAGES[page].1, &cookie).await?;
                timings.push((page, sent.elapsed().as_micros() as u64));
            }
        }));
    }
    let mut per_page: Vec<Vec<u64>> = vec![Vec::new(); PAGES.len()];
    for task in tasks {
        for (page, micros) in task.await?? {
            per_page[page].push(micros);
        }
    }
    let load_secs = load_started.elapsed().as_secs_f64();
    let loaded_rss = proc_kb(server_pid, "VmHWM:");
    let mut lead_times: Vec<Vec<u64>> = Vec::new();
    let mut lead_rss: Vec<Option<u64>> = Vec::new();
    for (_, path) in LEAD_PAGES {
        let mut times = Vec::new();
        for _ in 0..10 {
            let sent = Instant::now();
            fetch(&http, &base, path, &cookie).await?;
            times.push(sent.elapsed().as_micros() as u64);
        }
        times.sort_unstable();
        lead_times.push(times);
        lead_rss.push(proc_kb(server_pid, "VmHWM:"));
    }
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&root);

    println!(
        "web bench: a station with {} cases (filled in {filled:.1} s), {} concurrent clients on loopback, {} requests per page",
        args.cases, args.clients, args.requests
    );
    println!(
        "  load tool: this command (reqwest, HTTP/1.1 keep-alive, signed-in session) against a separate `yizhan serve` process; {:.0} requests/s overall",
        total as f64 / load_secs
    );
    for (n, (name, path)) in PAGES.iter().enumerate() {
        let times = &mut per_page[n];
        times.sort_unstable();
        let at = |q: f64| {
            times[((times.len() as f64 * q) as usize).min(times.len() - 1)] as f64 / 1000.0
        };
        println!(
            "  {name:<30} median {:>6.2} ms   p99 {:>6.2} ms   ({path})",
            at(0.5),
            at(0.99)
        );
    }
    println!("  one request at a time, 10 each:");
    for (((name, path), times), rss) in LEAD_PAGES.iter().zip(&lead_times).zip(&lead_rss) {
        println!(
            "  {name:<30} median {:>6.2} ms   max {:>6.2} ms   peak RSS after {:>6.1} MB   ({path})",
            times[times.len() / 2] as f64 / 1000.0,
            times[times.len() - 1] as f64 / 1000.0,
            rss.map_or(0.0, |kb| kb as f64 / 1024.0)
        );
    }
    let mb = |kb: Option<u64>| {
        kb.map_or("unknown".into(), |kb| {
            format!("{:.1} MB", kb as f64 / 1024.0)
        })
    };
    println!(
        "footprint of the node process (`yizhan serve`, {} cases):",
        args.cases
    );
    println!(
        "  binary           {:.1} MB (this build; use --release)",
        binary_bytes as f64 / 1e6
    );
    println!("  start-up         {startup:.2} s to serving");
    println!("  idle RSS         {}", mb(idle_rss));
    println!(
        "  peak RSS         {} (under the load above)",
        mb(loaded_rss)
    );
    Ok(())
}

/// A `/proc/PID/status` field in kB.
pub(super) fn proc_kb(pid: u32, field: &str) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Signs in through the form and returns the cookie header for the session.
pub(super) async fn sign_in(
    http: &reqwest::Client,
    base: &str,
    password: &str,
) -> anyhow::Result<String> {
    let form = http.get(format!("{base}/signin")).send().await?;
    let pre = form
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("yz_pre="))
        .and_then(|c| c.split(';').next())
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("the sign-in page set no form cookie"))?;
    let body = form.text().await?;
    let marker = "name=\"csrf\" value=\"";
    let start = body
        .find(marker)
        .ok_or_else(|| anyhow::anyhow!("the sign-in page has no CSRF field"))?
        + marker.len();
    let csrf = body[start..].split('"').next().unwrap_or_default();
    let answer = http
        .post(format!("{base}/signin"))
        .header(reqwest::header::COOKIE, format!("yz_pre={pre}"))
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(format!(
            "username=bench&password={password}&csrf={csrf}&next=%2F"
        ))
        .send()
        .await?;
    answer
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("yz_session="))
        .and_then(|c| c.split(';').next())
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("signing in failed ({})", answer.status()))
}

pub(super) async fn fetch(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    cookie: &str,
) -> anyhow::Result<()> {
    let response = http
        .get(format!("{base}{path}"))
        .header(reqwest::header::COOKIE, cookie)
        .send()
        .await?;
    let status = response.status();
    let body = response.bytes().await?;
    anyhow::ensure!(status.is_success(), "{path} answered {status}");
    anyhow::ensure!(!body.is_empty(), "{path} answered an empty page");
    Ok(())
}
