//! `yizhan bench longpoll`: what a hall pays for children that hold a long-poll open,
//! and how fast one change at the hall reaches all of them (issue "Live links", 2).
//!
//! A district hall runs as its own `yizhan serve` process on loopback with its default
//! limits and the demo catalog; 500 sub-district children are enrolled in its registry.
//! This process plays the children as their link drivers do: each asks the hall's
//! vector, then holds `/sync/v1/wait` open with it. With every child waiting, an admin
//! publishes a new version of one catalog item through the API (one request), and each
//! child, told "pull now", pulls as the link does (honouring the hall's "busy, come back
//! in N s"). Printed: the hall's RSS idle and with every child waiting (per child), and
//! the times from the publish to each child being told and to each child holding the
//! change.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use yizhan_sync::auth::NodeRole;
use yizhan_sync::domain::codes::DivisionCode;
use yizhan_sync::feed::Pull;

use super::web::proc_kb;
use crate::clock::{Clock, SystemClock};
use crate::config::Role;
use crate::data_dir::{DataDir, create_data_dir};
use crate::demo::{DEMO_DISTRICT, demo_catalog};
use crate::identity::NodeKey;
use crate::link::{Client, LinkError};
use crate::node::OpenNode;
use crate::store::{NewUser, Relation, Role as StaffRole};

#[derive(Debug, Args)]
pub struct LongPollBenchArgs {
    /// Children holding a long-poll to the hall
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(1..=999))]
    pub children: u64,
    /// Changes published one after another (each timed to all children)
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=20))]
    pub rounds: u64,
}

pub async fn longpoll(args: LongPollBenchArgs) -> anyhow::Result<()> {
    let root = super::tempfile_dir()?;
    let result = run(&args, &root).await;
    let _ = std::fs::remove_dir_all(&root);
    result
}

async fn run(args: &LongPollBenchArgs, root: &std::path::Path) -> anyhow::Result<()> {
    let dir = DataDir::new(root.join("district"));
    create_data_dir(
        &dir,
        &super::loopback_config(Role::District, DEMO_DISTRICT, "bench district")?,
    )?;
    let now = SystemClock.now_ms();
    let items = demo_catalog();
    let district = DivisionCode::parse(DEMO_DISTRICT).expect("valid");
    let (token, hash) = crate::accounts::generate_token();
    let mut children = Vec::new();
    {
        let (_lock, node) = OpenNode::exclusive(&dir)?;
        for item in &items {
            node.store
                .publish_item(
                    yizhan_sync::ids::Scope::catalog(&district),
                    item.clone(),
                    now - 86_400_000,
                )
                .await?;
        }
        node.store
            .add_user(
                NewUser {
                    username: "admin".into(),
                    display_name: "管理员".into(),
                    role: StaffRole::Admin,
                    counter: String::new(),
                    password_hash: crate::accounts::hash_password("bench-password-4711")?,
                },
                now,
            )
            .await?;
        node.store
            .add_token("admin".into(), hash, "bench".into(), now)
            .await?;
        for n in 1..=args.children {
            let mut seed = [0x42u8; 32];
            seed[..8].copy_from_slice(&n.to_le_bytes());
            let key = NodeKey::from_seed(seed);
            let division = DivisionCode::parse(&format!("{DEMO_DISTRICT}{n:03}"))?;
            let record = key
                .identity(NodeRole::Subdistrict, division, &format!("街道 {n}"))
                .record;
            node.store.pin_peer(record, Relation::Child, None).await?;
            children.push(Arc::new(key));
        }
        node.store.shutdown().await;
    }

    let exe = std::env::current_exe()?;
    let (mut server, base) = super::spawn_serve(&exe, &dir.path)?;
    let pid = server.id();
    let result = measure(args, &base, pid, &token, &items, children).await;
    let _ = server.kill();
    let _ = server.wait();
    result
}

/// One child as its link driver runs it: a client of its own for the hall.
struct Child {
    client: Client,
}

impl Child {
    /// Retries what the hall asks to retry later (busy), as the link does, within bounds.
    async fn patiently<T, F: std::future::Future<Output = Result<T, LinkError>>>(
        &self,
        call: impl Fn() -> F,
    ) -> anyhow::Result<T> {
        for _ in 0..50 {
            match call().await {
                Ok(value) => return Ok(value),
                Err(LinkError::Busy {
                    retry_after_secs, ..
                }) => {
                    // The link jitters its waits; so do the children here.
                    let mut jitter = [0u8; 2];
                    crate::accounts::fill_random(&mut jitter);
                    let ms = u64::from(retry_after_secs) * 1000 / 2
                        + u64::from(u16::from_le_bytes(jitter)) % 1000;
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
        anyhow::bail!("the hall stayed busy for 50 attempts")
    }
}

async fn measure(
    args: &LongPollBenchArgs,
    base: &str,
    pid: u32,
    token: &str,
    items: &[yizhan_sync::domain::item::Item],
    keys: Vec<Arc<NodeKey>>,
) -> anyhow::Result<()> {
    let clock: Arc<dyn crate::link::ClockDebug> = Arc::new(SystemClock);
    let admin = reqwest::Client::new();
    let count = keys.len();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss = proc_kb(pid, "VmRSS:").unwrap_or(0);
    let mut item = items
        .iter()
        .find(|i| i.case_type == yizhan_sync::domain::item::CaseType::Committed)
        .unwrap_or(&items[0])
        .clone();

    // Each child runs as its link does once up to date: learn what the hall holds, hold
    // a long-poll; told "pull now", pull, and hold the next long-poll at once.
    let (report, mut reports) = tokio::sync::mpsc::unbounded_channel();
    let mut children = Vec::new();
    for key in keys {
        let child = Child {
            client: Client::new(base, [0; 32], key, clock.clone()),
        };
        let report = report.clone();
        children.push(tokio::spawn(async move {
            let mut have = child.patiently(|| child.client.vector()).await?;
            loop {
                if !child.patiently(|| child.client.wait(&have)).await? {
                    continue; // held for its whole time: ask again
                }
                let told = Instant::now();
                let pull = Pull {
                    scopes: Vec::new(),
                    have: have.clone(),
                    max_bytes: 0,
                };
                let (batch, _) = child.patiently(|| child.client.pull(&pull)).await?;
                anyhow::ensure!(
                    !batch.batch.envelopes.is_empty(),
                    "told to pull, the child found nothing new"
                );
                for envelope in &batch.batch.envelopes {
                    have.advance(&envelope.scope, &envelope.origin, envelope.seq);
                }
                if report.send((told, Instant::now())).is_err() {
                    return anyhow::Ok(());
                }
            }
        }));
    }
    drop(report);

    println!(
        "long-poll bench: a district hall (its own `yizhan serve`, default limits) with {count} sub-district children, all on loopback"
    );
    let result = async {
        for round in 1..=args.rounds {
            // Let every child be holding its long-poll again.
            tokio::time::sleep(Duration::from_secs(4)).await;
            if let Ok(early) = reports.try_recv() {
                anyhow::bail!("a child was told to pull before anything changed: {early:?}");
            }
            if let Some(failed) = children.iter().position(|c| c.is_finished()) {
                anyhow::bail!("child {failed} stopped early");
            }
            let waiting_rss = proc_kb(pid, "VmRSS:").unwrap_or(0);
            item.version += 1;
            let published = Instant::now();
            let response = admin
                .put(format!("{base}/api/v1/items/{}", item.impl_code))
                .bearer_auth(token)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(serde_json::to_vec(&item)?)
                .send()
                .await?;
            anyhow::ensure!(
                response.status().is_success(),
                "publishing the item: {} {}",
                response.status(),
                response.text().await.unwrap_or_default()
            );
            let answered = published.elapsed();
            let mut told = Vec::new();
            let mut pulled = Vec::new();
            while told.len() < count {
                let (told_at, pulled_at) = tokio::time::timeout(Duration::from_secs(60), reports.recv())
                    .await
                    .map_err(|_| anyhow::anyhow!("{} children did not have the change within 60 s", count - told.len()))?
                    .ok_or_else(|| anyhow::anyhow!("a child stopped"))?;
                told.push(told_at.saturating_duration_since(published).as_micros() as u64);
                pulled.push(pulled_at.saturating_duration_since(published).as_micros() as u64);
            }
            told.sort_unstable();
            pulled.sort_unstable();
            let at = |v: &[u64], q: f64| {
                v[((v.len() as f64 * q) as usize).min(v.len() - 1)] as f64 / 1e3
            };
            println!(
                "  round {round}: publish answered in {:.1} ms; told to pull: median {:.1} ms, last {:.1} ms; holding the change: median {:.1} ms, p99 {:.1} ms, last {:.1} ms",
                answered.as_secs_f64() * 1e3,
                at(&told, 0.5),
                at(&told, 1.0),
                at(&pulled, 0.5),
                at(&pulled, 0.99),
                at(&pulled, 1.0),
            );
            println!(
                "    hall RSS: {:.1} MB before any child, {:.1} MB with {count} waiting: {:.1} KB per waiting child",
                idle_rss as f64 / 1024.0,
                waiting_rss as f64 / 1024.0,
                (waiting_rss as f64 - idle_rss as f64) / count as f64
            );
        }
        anyhow::Ok(())
    }
    .await;
    for child in children {
        child.abort();
    }
    result?;
    println!(
        "  hall peak RSS (VmHWM): {:.1} MB",
        proc_kb(pid, "VmHWM:").unwrap_or(0) as f64 / 1024.0
    );
    Ok(())
}
