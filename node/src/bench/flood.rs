//! `yizhan bench flood`: a counter worker's work list while the node is attacked. A
//! station with 20,000 cases runs as its own `yizhan serve` process on loopback with its
//! default limits; this process then holds 3,000 slow connections open against it (each
//! sends a request head one byte a second and connects again when the node closes it)
//! and runs 40 oversize uploads (`POST /sync/v1/push` claiming 64 MiB from a node the
//! station does not know, the body sent as fast as the node takes it, again and again),
//! while a signed-in worker loads `/worklist` over and over, on a kept-alive connection
//! and on a new connection each time. Printed: the work list's latency before and during
//! the attack, the node's peak RSS, and what the attackers achieved.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use yizhan_sync::domain::codes::DivisionCode;
use yizhan_sync::ids::{NodeId, Scope};
use yizhan_sync::request::RequestClaim;

use super::web::{fetch, proc_kb, sign_in};
use crate::config::Role;
use crate::data_dir::{DataDir, create_data_dir};
use crate::demo::{DEMO_DISTRICT, DEMO_DIVISION, demo_catalog};
use crate::node::OpenNode;
use crate::store::{NewUser, Role as StaffRole};

#[derive(Debug, Args)]
pub struct FloodBenchArgs {
    /// Cases in the station's store
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub cases: u64,
    /// Slow connections held open
    #[arg(long, default_value_t = 3_000, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub slow: u64,
    /// Oversize uploads running at once
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u64).range(0..=1_000))]
    pub uploads: u64,
    /// Seconds of attack while the work list is timed
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub seconds: u64,
}

/// The page timed.
const WORK_LIST: &str = "/worklist?view=overdue";

/// What the body of an oversize upload claims to be.
const UPLOAD_BYTES: u64 = 64 * 1024 * 1024;

/// What the attackers did and achieved.
#[derive(Debug, Default)]
struct Attack {
    /// Slow connections open right now, and the most at once.
    slow_open: AtomicU64,
    slow_peak: AtomicU64,
    /// Slow connections the node closed.
    slow_closed: AtomicU64,
    uploads: AtomicU64,
    /// Body bytes written into the sockets before the node answered.
    upload_bytes: AtomicU64,
    /// Uploads answered with 401, and answered at all.
    refused_401: AtomicU64,
    answered: AtomicU64,
    /// Milliseconds from the end of the head to the answer, summed.
    answer_ms: AtomicU64,
    stop: AtomicBool,
}

pub async fn flood(args: FloodBenchArgs) -> anyhow::Result<()> {
    let root = super::tempfile_dir()?;
    let dir = DataDir::new(root.join("station"));
    create_data_dir(
        &dir,
        &super::loopback_config(Role::Station, DEMO_DIVISION, "bench station")?,
    )?;
    let password = "bench-password-4711";
    {
        let (_lock, node) = OpenNode::exclusive(&dir)?;
        let now = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
        let span_ms: u64 = (420 * 86_400_000u64).min(args.cases * 360_000);
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
                    now - span_ms,
                )
                .await?;
        }
        super::fill_cases(
            &node.store,
            Arc::new(items),
            args.cases,
            16,
            now - span_ms,
            span_ms,
        )
        .await?;
        node.store
            .add_user(
                NewUser {
                    username: "bench".into(),
                    display_name: "压测".into(),
                    role: StaffRole::Worker,
                    counter: "1号窗口".into(),
                    password_hash: crate::accounts::hash_password(password)?,
                },
                now,
            )
            .await?;
        node.store.shutdown().await;
    }

    let exe = std::env::current_exe()?;
    let (mut server, base) = super::spawn_serve(&exe, &dir.path)?;
    let pid = server.id();
    let result = run(&args, &base, pid, password).await;
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&root);
    result
}

async fn run(args: &FloodBenchArgs, base: &str, pid: u32, password: &str) -> anyhow::Result<()> {
    let addr: std::net::SocketAddr = base.trim_start_matches("http://").parse()?;
    crate::tls::install_crypto_provider();
    let kept = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()?;
    // A browser that opens a new connection for each page: the node must still accept.
    let fresh = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(60))
        .build()?;
    let cookie = sign_in(&kept, base, password).await?;
    for _ in 0..50 {
        fetch(&kept, base, WORK_LIST, &cookie).await?;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss = proc_kb(pid, "VmRSS:");
    let quiet = time_work_list(&kept, &fresh, base, &cookie, Duration::from_secs(5)).await?;

    let attack = Arc::new(Attack::default());
    let mut attackers = Vec::new();
    for n in 0..args.slow {
        let attack = attack.clone();
        attackers.push(tokio::spawn(async move {
            // Spread the first connections over two seconds.
            tokio::time::sleep(Duration::from_millis(n % 2000)).await;
            slow_connection(addr, &attack).await;
        }));
    }
    for n in 0..args.uploads {
        let attack = attack.clone();
        attackers.push(tokio::spawn(async move {
            oversize_uploads(addr, n, &attack).await;
        }));
    }
    // Let the attack build up, then time the work list under it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_samples = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sampler = {
        let (attack, samples) = (attack.clone(), rss_samples.clone());
        tokio::spawn(async move {
            while !attack.stop.load(Ordering::Relaxed) {
                let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count());
                samples
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((proc_kb(pid, "VmRSS:").unwrap_or(0), fds));
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };
    let attacked = time_work_list(
        &kept,
        &fresh,
        base,
        &cookie,
        Duration::from_secs(args.seconds),
    )
    .await;
    attack.stop.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    for attacker in attackers {
        attacker.abort();
    }
    let peak_rss = proc_kb(pid, "VmHWM:");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_rss = proc_kb(pid, "VmRSS:");
    let attacked = attacked?;
    let samples = rss_samples
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let max_fds = samples.iter().map(|s| s.1).max().unwrap_or(0);

    let mb = |kb: Option<u64>| {
        kb.map_or("unknown".into(), |kb| {
            format!("{:.1} MB", kb as f64 / 1024.0)
        })
    };
    println!(
        "flood bench: a station with {} cases (its own `yizhan serve`, default limits) on loopback",
        args.cases
    );
    println!(
        "  attack: {} slow connections (a head byte a second, connecting again when closed) and {} oversize uploads ({} MiB claimed, unknown node) for {} s",
        args.slow,
        args.uploads,
        UPLOAD_BYTES >> 20,
        args.seconds
    );
    for (label, timings) in [("quiet", &quiet), ("under attack", &attacked)] {
        for (how, times) in [("kept-alive", &timings.0), ("new connection", &timings.1)] {
            let (median, p99, max) = summary(times);
            println!(
                "  work list, {label:<12} {how:<14} {:>6} requests  median {median:>7.2} ms  p99 {p99:>7.2} ms  max {max:>7.2} ms",
                times.len()
            );
        }
    }
    println!(
        "  node RSS: idle {}, peak {} (VmHWM), 2 s after the attack {}; open files at most {max_fds}",
        mb(idle_rss),
        mb(peak_rss),
        mb(after_rss)
    );
    let answered = attack.answered.load(Ordering::Relaxed).max(1);
    println!(
        "  slow connections: {} open at most, {} closed by the node",
        attack.slow_peak.load(Ordering::Relaxed),
        attack.slow_closed.load(Ordering::Relaxed)
    );
    println!(
        "  oversize uploads: {} sent, {} answered ({} with 401) after {:.1} ms on average; {:.1} KB of body written into the sockets per upload before the answer",
        attack.uploads.load(Ordering::Relaxed),
        attack.answered.load(Ordering::Relaxed),
        attack.refused_401.load(Ordering::Relaxed),
        attack.answer_ms.load(Ordering::Relaxed) as f64 / answered as f64,
        attack.upload_bytes.load(Ordering::Relaxed) as f64
            / 1e3
            / attack.uploads.load(Ordering::Relaxed).max(1) as f64,
    );
    Ok(())
}

/// Work-list timings in microseconds: (kept-alive, new connection each time).
type Timings = (Vec<u64>, Vec<u64>);

/// Loads the work list for `span`, alternating a kept-alive client and one that opens a
/// new connection each time.
async fn time_work_list(
    kept: &reqwest::Client,
    fresh: &reqwest::Client,
    base: &str,
    cookie: &str,
    span: Duration,
) -> anyhow::Result<Timings> {
    let mut timings: Timings = (Vec::new(), Vec::new());
    let until = Instant::now() + span;
    let mut n = 0u64;
    while Instant::now() < until {
        let (client, into) = if n.is_multiple_of(2) {
            (kept, &mut timings.0)
        } else {
            (fresh, &mut timings.1)
        };
        let sent = Instant::now();
        fetch(client, base, WORK_LIST, cookie).await?;
        into.push(sent.elapsed().as_micros() as u64);
        n += 1;
        // A worker clicks; the node is not a load test here.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(timings)
}

fn summary(times: &[u64]) -> (f64, f64, f64) {
    let mut sorted = times.to_vec();
    sorted.sort_unstable();
    if sorted.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let at =
        |q: f64| sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)] as f64 / 1000.0;
    (at(0.5), at(0.99), sorted[sorted.len() - 1] as f64 / 1000.0)
}

/// A client that sends a request head one byte a second, and connects again whenever the
/// node closes the connection.
async fn slow_connection(addr: std::net::SocketAddr, attack: &Attack) {
    const HEAD: &[u8] = b"GET /worklist HTTP/1.1\r\nHost: station\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    while !attack.stop.load(Ordering::Relaxed) {
        let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let open = attack.slow_open.fetch_add(1, Ordering::Relaxed) + 1;
        attack.slow_peak.fetch_max(open, Ordering::Relaxed);
        let mut sent = 0;
        let mut buf = [0u8; 256];
        let closed = loop {
            if attack.stop.load(Ordering::Relaxed) {
                break false;
            }
            let byte = &HEAD[sent % HEAD.len()..sent % HEAD.len() + 1];
            if stream.write_all(byte).await.is_err() {
                break true;
            }
            sent += 1;
            // Wait a second, noticing a close meanwhile.
            match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => break true,
                Ok(Ok(_)) => break true,
                Err(_) => {}
            }
        };
        attack.slow_open.fetch_sub(1, Ordering::Relaxed);
        if closed {
            attack.slow_closed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Pushes a 64 MiB batch as an unknown node, again and again, sending the body as fast as
/// the node takes it until it answers or closes.
async fn oversize_uploads(addr: std::net::SocketAddr, n: u64, attack: &Attack) {
    // A well-formed claim by a key the station never enrolled.
    let mut seed = [0u8; 32];
    crate::accounts::fill_random(&mut seed);
    let key = crate::identity::NodeKey::from_seed(seed);
    let chunk = vec![0x5a_u8; 64 * 1024];
    let mut round = 0u64;
    while !attack.stop.load(Ordering::Relaxed) {
        round += 1;
        let Ok(mut stream) = tokio::net::TcpStream::connect(addr).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        attack.uploads.fetch_add(1, Ordering::Relaxed);
        let time = crate::clock::Clock::now_ms(&crate::clock::SystemClock) as i64;
        let mut nonce = [0u8; 16];
        nonce[..8].copy_from_slice(&n.to_le_bytes());
        nonce[8..].copy_from_slice(&round.to_le_bytes());
        let claim = RequestClaim {
            node: NodeId::from_public_key(&key.public_key()),
            time_ms: time,
            nonce,
            body_len: UPLOAD_BYTES,
            body_sha256: [7; 32],
        };
        let signature = key.sign(&claim.message("POST", "/sync/v1/push"));
        let mut head = format!(
            "POST /sync/v1/push HTTP/1.1\r\nHost: station\r\nContent-Type: application/x-yizhan-sync\r\nContent-Length: {UPLOAD_BYTES}\r\n"
        );
        for (name, value) in claim.headers(&signature) {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        if stream.write_all(head.as_bytes()).await.is_err() {
            continue;
        }
        let head_sent = Instant::now();
        let (mut reader, mut writer) = stream.into_split();
        let sent = AtomicU64::new(0);
        let sending = async {
            while sent.load(Ordering::Relaxed) < UPLOAD_BYTES {
                if writer.write_all(&chunk).await.is_err() {
                    break;
                }
                sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
        };
        let answer = async {
            let mut buf = [0u8; 512];
            match reader.read(&mut buf).await {
                Ok(n) if n > 0 => Some(String::from_utf8_lossy(&buf[..n]).to_string()),
                _ => None,
            }
        };
        let answer = tokio::select! {
            answer = answer => answer,
            () = sending => None,
        };
        let elapsed = head_sent.elapsed().as_millis() as u64;
        if let Some(answer) = answer {
            attack.answered.fetch_add(1, Ordering::Relaxed);
            attack.answer_ms.fetch_add(elapsed, Ordering::Relaxed);
            if answer.starts_with("HTTP/1.1 401") {
                attack.refused_401.fetch_add(1, Ordering::Relaxed);
            }
        }
        // What went into the sockets before the answer (kernel buffers on both sides;
        // the node's own memory is what its RSS shows).
        attack
            .upload_bytes
            .fetch_add(sent.load(Ordering::Relaxed), Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
