//! `yizhan bench city`: a simulated Shenzhen day through four tiers (issue 16, point 5).
//!
//! The city, its districts, their sub-districts and stations in their real fan-out (10,
//! 74 and 645 by default), each a real store in its own directory, enrolled tier by tier as
//! `yizhan enroll` would; the city publishes the demo catalog and it reaches every station.
//! One working day's cases are made at the stations through the store's own write path,
//! one action per change, busy and quiet stations alike, a few sent to their district
//! (转办, §5.5.4); then the tree syncs in rounds in which each link is cut at random, the
//! districts deciding the cases sent to them as they arrive (the decisions flow back
//! down), and a final catch-up with every link up runs until nothing moves. Changes move as sync sessions move them (`tree::transfer`:
//! `serve_pull` at the sender, `receive_batch` at the receiver), so every receiver runs the
//! shipped engine (`engine::apply_batch`: authenticity, authorization by effect, apply).
//!
//! The check is exact: every hall holds exactly the case documents of its subtree, with
//! the stations' Automerge heads, and the same `cases` rows; the city holds everything;
//! every node the city's catalog; no node quarantined a change or left a document
//! underived. A difference is an error naming the first node and document that differ.
//!
//! Every store stays open for the whole run (730 by default: one writer thread each, and
//! for a station a small document cache and one reader).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use tokio::task::JoinSet;
use yizhan_sync::auth::NodeRole;
use yizhan_sync::domain::calendar::Date;
use yizhan_sync::domain::case::{Action, MaterialReceived, MissingMaterial};
use yizhan_sync::domain::item::Item;
use yizhan_sync::ids::{DocId, DocKind, NodeId, Scope};

use super::tree::{Moved, NodeCaches, TreeNode, enroll, open_node_with, transfer_measured};
use crate::config::Synchronous;
use crate::demo::demo_catalog;
use crate::store::{NewAction, Role, Staff, StoreError};

#[derive(Debug, Args)]
pub struct CityBenchArgs {
    /// Districts below the city (Shenzhen: 10)
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=90))]
    pub districts: u64,
    /// Sub-districts (街道) in all, spread unevenly over the districts (Shenzhen: 74)
    #[arg(long, default_value_t = 74, value_parser = clap::value_parser!(u64).range(1..))]
    pub subdistricts: u64,
    /// Stations (社区工作站) in all, spread unevenly over the sub-districts (Shenzhen: 645)
    #[arg(long, default_value_t = 645, value_parser = clap::value_parser!(u64).range(1..))]
    pub stations: u64,
    /// The day's cases in all, spread unevenly over the stations
    #[arg(long, default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub cases: u64,
    /// Seed of the fan-out, the cases and the cut links: one seed, one run
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The chance that a link is down in a round (0 to 1)
    #[arg(long, default_value_t = 0.2)]
    pub cut: f64,
    /// Sync rounds with cut links before the final catch-up with every link up
    #[arg(long, default_value_t = 4)]
    pub rounds: u32,
    /// The stores' sync mode: full (as configured nodes run) or normal
    #[arg(long, default_value = "full")]
    pub synchronous: String,
    /// Stations (or links) worked at once
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub concurrency: u64,
    /// Keep the nodes' data in this (new or empty) directory instead of deleting them
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
}

/// The shape of a simulated day and its randomness: one config, one run.
#[derive(Debug, Clone)]
pub struct CityConfig {
    pub districts: usize,
    pub subdistricts: usize,
    pub stations: usize,
    pub cases: u64,
    pub seed: u64,
    pub cut: f64,
    pub rounds: u32,
    pub synchronous: Synchronous,
    pub concurrency: usize,
    /// Encode every batch in the wire encoding to count its bytes.
    pub wire: bool,
}

const DAY_MS: u64 = 86_400_000;
const HOUR_MS: u64 = 3_600_000;
const MINUTE_MS: u64 = 60_000;

/// A small deterministic generator (SplitMix64): the fan-out, the cases and the cuts
/// replay from the seed (no crate for it).
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64, stream: u64) -> Rng {
        let mut rng = Rng(seed ^ stream.wrapping_mul(0xD1B5_4A32_D192_ED03));
        rng.next_u64();
        rng
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A number in [low, high).
    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next_u64() % (high - low).max(1)
    }
}

/// Splits `total` over `bins`, each at least `min`, unevenly: bin weights run from 1 to
/// `1 + skew` (most bins light, a few heavy), the remainder going by largest fraction.
fn spread(total: u64, bins: usize, min: u64, skew: f64, rng: &mut Rng) -> Vec<u64> {
    let weights: Vec<f64> = (0..bins).map(|_| 1.0 + skew * rng.unit().powi(3)).collect();
    let sum: f64 = weights.iter().sum();
    let rest = total - min * bins as u64;
    let exact: Vec<f64> = weights.iter().map(|w| rest as f64 * w / sum).collect();
    let mut counts: Vec<u64> = exact.iter().map(|e| min + e.floor() as u64).collect();
    let mut left = total - counts.iter().sum::<u64>();
    let mut order: Vec<usize> = (0..bins).collect();
    order.sort_by(|&a, &b| {
        let (fa, fb) = (exact[a] - exact[a].floor(), exact[b] - exact[b].floor());
        fb.total_cmp(&fa).then(a.cmp(&b))
    });
    for &i in order.iter().cycle() {
        if left == 0 {
            break;
        }
        counts[i] += 1;
        left -= 1;
    }
    counts
}

/// The tiers of the tree, leaves first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Station,
    Subdistrict,
    District,
    City,
}

impl Tier {
    const ALL: [Tier; 4] = [Tier::Station, Tier::Subdistrict, Tier::District, Tier::City];

    fn name(self) -> &'static str {
        match self {
            Tier::Station => "station",
            Tier::Subdistrict => "sub-district",
            Tier::District => "district",
            Tier::City => "city",
        }
    }
}

/// The city and everything below it, with each node's parent by index.
#[derive(Debug)]
pub struct City {
    pub city: TreeNode,
    pub districts: Vec<TreeNode>,
    pub subdistricts: Vec<TreeNode>,
    /// Per sub-district, the index of its district.
    pub sub_district: Vec<usize>,
    pub stations: Vec<TreeNode>,
    /// Per station, the index of its sub-district.
    pub station_sub: Vec<usize>,
}

/// A node as the report names it: role and division.
fn name(node: &TreeNode) -> String {
    format!(
        "{} {}",
        node.record.role.as_str(),
        node.record.division.as_str()
    )
}

/// The districts' codes: Shenzhen's own (罗湖 440303 … 光明 440311), then more of the
/// same form.
fn district_code(d: usize) -> String {
    format!("4403{:02}", d + 3)
}

/// The key seed of the `index`-th node of `role`: distinct for every node of a run.
fn key_seed(seed: u64, role: NodeRole, index: usize) -> [u8; 32] {
    let mut key = [0x5a; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&(index as u64).to_le_bytes());
    key[16] = role as u8;
    key
}

/// Small caches for stations (730 stores share one process, and a station works on one
/// case at a time), the defaults for halls.
fn caches(role: NodeRole) -> NodeCaches {
    match role {
        NodeRole::Station => NodeCaches {
            doc_cache: 2,
            readers: 1,
        },
        _ => NodeCaches {
            doc_cache: crate::config::StoreSection::default().doc_cache,
            readers: 2,
        },
    }
}

/// Runs `work` on every element of `inputs`, at most `limit` at once; results in input
/// order.
async fn bounded<I, T, F, Fut>(inputs: Vec<I>, limit: usize, work: F) -> anyhow::Result<Vec<T>>
where
    I: Send + 'static,
    T: Send + 'static,
    F: Fn(I) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>> + Send + 'static,
{
    let mut results: Vec<Option<T>> = (0..inputs.len()).map(|_| None).collect();
    let mut running = JoinSet::new();
    for (i, input) in inputs.into_iter().enumerate() {
        if running.len() >= limit.max(1) {
            let (j, out) = running.join_next().await.expect("a task runs")?;
            results[j] = Some(out?);
        }
        let fut = work(input);
        running.spawn(async move { (i, fut.await) });
    }
    while let Some(done) = running.join_next().await {
        let (j, out) = done?;
        results[j] = Some(out?);
    }
    Ok(results
        .into_iter()
        .map(|r| r.expect("every task reported"))
        .collect())
}

/// Opens and enrolls the tree under `root`, the city publishing the demo catalog at `at`;
/// then moves the catalog and the registries down and the registries up with every link
/// up, as the nodes' first sessions would; returns the tree and what that first sync
/// moved.
pub async fn build(root: &Path, config: &CityConfig, at: u64) -> anyhow::Result<(City, Figures)> {
    anyhow::ensure!(
        config.districts >= 1
            && config.subdistricts >= config.districts
            && config.stations >= config.subdistricts,
        "every district needs a sub-district and every sub-district a station: {} districts, {} sub-districts, {} stations",
        config.districts,
        config.subdistricts,
        config.stations
    );
    check_open_files(config)?;
    let mut rng = Rng::new(config.seed, 1);
    let subs_per_district = spread(
        config.subdistricts as u64,
        config.districts,
        1,
        2.0,
        &mut rng,
    );
    let mut sub_district = Vec::new();
    for (d, n) in subs_per_district.iter().enumerate() {
        sub_district.extend(std::iter::repeat_n(d, *n as usize));
    }
    let stations_per_sub = spread(
        config.stations as u64,
        config.subdistricts,
        1,
        4.0,
        &mut rng,
    );
    let mut station_sub = Vec::new();
    for (s, n) in stations_per_sub.iter().enumerate() {
        station_sub.extend(std::iter::repeat_n(s, *n as usize));
    }
    let open = |role: NodeRole, index: usize, division: String| {
        let root = root.to_path_buf();
        let (seed, synchronous) = (config.seed, config.synchronous);
        async move {
            open_node_with(
                &root,
                key_seed(seed, role, index),
                role,
                &division,
                synchronous,
                caches(role),
            )
            .await
        }
    };
    let city = open(NodeRole::City, 0, "440300".into()).await?;
    let catalog = Scope::catalog(&city.record.division);
    for item in demo_catalog() {
        city.store.publish_item(catalog.clone(), item, at).await?;
    }
    let mut districts = Vec::new();
    for d in 0..config.districts {
        let district = open(NodeRole::District, d, district_code(d)).await?;
        enroll(&city, &district, at).await?;
        districts.push(district);
    }
    // Sub-district and station codes number from 001 within their parent.
    let mut sub_codes = Vec::new();
    let mut within = vec![0usize; config.districts];
    for &d in &sub_district {
        within[d] += 1;
        sub_codes.push(format!("{}{:03}", district_code(d), within[d]));
    }
    let subdistricts = bounded(
        sub_codes.into_iter().enumerate().collect(),
        config.concurrency,
        |(s, code)| {
            let node = open(NodeRole::Subdistrict, s, code);
            let parent = districts[sub_district[s]].clone();
            async move {
                let node = node.await?;
                enroll(&parent, &node, at).await?;
                Ok(node)
            }
        },
    )
    .await?;
    let mut station_codes = Vec::new();
    let mut within = vec![0usize; config.subdistricts];
    for &s in &station_sub {
        within[s] += 1;
        station_codes.push(format!(
            "{}{:03}",
            subdistricts[s].record.division.as_str(),
            within[s]
        ));
    }
    let stations = bounded(
        station_codes.into_iter().enumerate().collect(),
        config.concurrency,
        |(n, code)| {
            let node = open(NodeRole::Station, n, code);
            let parent = subdistricts[station_sub[n]].clone();
            async move {
                let node = node.await?;
                enroll(&parent, &node, at).await?;
                Ok(node)
            }
        },
    )
    .await?;
    let city = City {
        city,
        districts,
        subdistricts,
        sub_district,
        stations,
        station_sub,
    };
    let all_up = Links::all_up(&city);
    let mut first = Figures::default();
    city.pass(Direction::Down, &all_up, config, &mut first)
        .await?;
    city.pass(Direction::Up, &all_up, config, &mut first)
        .await?;
    Ok((city, first))
}

/// Refuses to start when the process may not open the files every store needs open at
/// once (the database, its WAL and shared memory for each connection), rather than
/// failing midway.
fn check_open_files(config: &CityConfig) -> anyhow::Result<()> {
    let halls = 1 + config.districts + config.subdistricts;
    // A connection holds the database, its WAL and its shared memory; a store's writer
    // and readers are connections.
    let needed = (halls * 3 + config.stations * 2) * 3 + 256;
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|n| n.parse::<usize>().ok());
    if let Some(soft) = soft {
        anyhow::ensure!(
            soft >= needed,
            "{} stores need about {needed} open files and the limit is {soft}: raise it (ulimit -n) or run fewer stations",
            halls + config.stations
        );
    }
    Ok(())
}

/// Which way a pass moves changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    /// From the stations towards the city.
    Up,
    /// From the city towards the stations.
    Down,
}

/// Which links are up in a round: per station, sub-district and district, its link to
/// its parent.
#[derive(Debug, Clone)]
struct Links {
    station: Vec<bool>,
    sub: Vec<bool>,
    district: Vec<bool>,
}

impl Links {
    fn all_up(city: &City) -> Links {
        Links {
            station: vec![true; city.stations.len()],
            sub: vec![true; city.subdistricts.len()],
            district: vec![true; city.districts.len()],
        }
    }

    /// Each link down with probability `cut`.
    fn draw(city: &City, cut: f64, rng: &mut Rng) -> Links {
        let mut draw = |n: usize| (0..n).map(|_| rng.unit() >= cut).collect::<Vec<_>>();
        Links {
            station: draw(city.stations.len()),
            sub: draw(city.subdistricts.len()),
            district: draw(city.districts.len()),
        }
    }

    fn down(&self) -> usize {
        [&self.station, &self.sub, &self.district]
            .iter()
            .map(|l| l.iter().filter(|up| !**up).count())
            .sum()
    }
}

/// What one tier received, and the wall time it spent receiving (the steps in which
/// its nodes were the receivers; its nodes receive concurrently within a step).
#[derive(Debug, Clone, Copy, Default)]
pub struct Received {
    pub moved: Moved,
    pub secs: f64,
}

/// What the sync moved, per tier (index: [`Tier`] order), from below and from above.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    pub from_below: [Received; 4],
    pub from_above: [Received; 4],
    /// Links down, summed over the rounds.
    pub links_cut: usize,
    /// Cases the districts decided once their stations' transfers reached them.
    pub decided_at_halls: u64,
}

impl City {
    /// Every node, the city first.
    pub fn nodes(&self) -> impl Iterator<Item = &TreeNode> {
        std::iter::once(&self.city)
            .chain(&self.districts)
            .chain(&self.subdistricts)
            .chain(&self.stations)
    }

    /// The (child, parent) pairs of one tier's links to the tier above, where up.
    fn links(&self, child: Tier, up: &Links) -> Vec<(TreeNode, TreeNode)> {
        match child {
            Tier::Station => self
                .stations
                .iter()
                .zip(&self.station_sub)
                .zip(&up.station)
                .filter(|(_, up)| **up)
                .map(|((s, p), _)| (s.clone(), self.subdistricts[*p].clone()))
                .collect(),
            Tier::Subdistrict => self
                .subdistricts
                .iter()
                .zip(&self.sub_district)
                .zip(&up.sub)
                .filter(|(_, up)| **up)
                .map(|((s, p), _)| (s.clone(), self.districts[*p].clone()))
                .collect(),
            Tier::District => self
                .districts
                .iter()
                .zip(&up.district)
                .filter(|(_, up)| **up)
                .map(|(d, _)| (d.clone(), self.city.clone()))
                .collect(),
            Tier::City => Vec::new(),
        }
    }

    /// One pass over every tier of links that are up: upwards the stations' links first
    /// (so a change made at a station reaches the city in one pass), downwards the
    /// city's. Links of one tier move concurrently.
    async fn pass(
        &self,
        direction: Direction,
        up: &Links,
        config: &CityConfig,
        figures: &mut Figures,
    ) -> anyhow::Result<u64> {
        let tiers = match direction {
            Direction::Up => [Tier::Station, Tier::Subdistrict, Tier::District],
            Direction::Down => [Tier::District, Tier::Subdistrict, Tier::Station],
        };
        let mut moved = 0;
        for child in tiers {
            let pairs = self.links(child, up);
            let wire = config.wire;
            let started = Instant::now();
            let results = bounded(pairs, config.concurrency, |(child, parent)| async move {
                match direction {
                    Direction::Up => transfer_measured(&child, &parent, wire).await,
                    Direction::Down => transfer_measured(&parent, &child, wire).await,
                }
            })
            .await?;
            let secs = started.elapsed().as_secs_f64();
            let mut sum = Moved::default();
            for r in results {
                sum += r;
            }
            moved += sum.changes;
            let (receiver, slot) = match direction {
                Direction::Up => (child as usize + 1, &mut figures.from_below),
                Direction::Down => (child as usize, &mut figures.from_above),
            };
            slot[receiver].moved += sum;
            slot[receiver].secs += secs;
        }
        Ok(moved)
    }

    /// One round: the links drawn for it, up; the districts deciding the cases sent to
    /// them that reached them (at `at`); down. Returns the changes moved and made.
    async fn round(
        &self,
        up: &Links,
        config: &CityConfig,
        figures: &mut Figures,
        sent: &mut Vec<(usize, DocId)>,
        at: u64,
    ) -> anyhow::Result<u64> {
        figures.links_cut += up.down();
        let moved = self.pass(Direction::Up, up, config, figures).await?;
        let decided = self.hall_work(sent, at).await?;
        figures.decided_at_halls += decided;
        Ok(moved + decided + self.pass(Direction::Down, up, config, figures).await?)
    }

    /// The index of station `s`'s district.
    fn district_of(&self, s: usize) -> usize {
        self.sub_district[self.station_sub[s]]
    }

    /// Each district decides the cases of `pending` (station, case) that have reached it,
    /// as its staff would on its work list; the others stay pending. Returns how many.
    async fn hall_work(&self, pending: &mut Vec<(usize, DocId)>, at: u64) -> anyhow::Result<u64> {
        let staff = Staff {
            username: "bench-qu".into(),
            counter: "区级窗口".into(),
            role: Role::Lead,
        };
        let today = Date::from_unix_ms_cst(at as i64);
        let mut decided = 0;
        let mut waiting = Vec::new();
        for (s, id) in pending.drain(..) {
            let district = &self.districts[self.district_of(s)];
            match district
                .store
                .get_case(id.as_str().to_string(), today)
                .await
            {
                Ok(_) => {}
                Err(StoreError::NotFound { .. }) => {
                    waiting.push((s, id));
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
            district
                .store
                .act_on_case(
                    id.clone(),
                    vec![NewAction::Do(Action::Decide {
                        approved: true,
                        reason: "经区级审查，符合法定条件".into(),
                        basis: "《行政许可法》第三十八条".into(),
                        remedies: "如不服，可依法申请行政复议或者提起行政诉讼".into(),
                        on_behalf_of: None,
                    })],
                    staff.clone(),
                    at,
                )
                .await
                .map_err(|e| anyhow::anyhow!("{} deciding {id}: {e}", name(district)))?;
            decided += 1;
        }
        *pending = waiting;
        Ok(decided)
    }

    /// Every store, for shutting down.
    pub async fn shutdown(self) {
        for node in self.nodes() {
            node.store.shutdown().await;
        }
    }
}

/// What the stations made.
#[derive(Debug, Clone, Default)]
pub struct Made {
    /// Per station, the cases it made, in the order made.
    pub cases: Vec<Vec<DocId>>,
    /// Changes written: intakes and actions.
    pub changes: u64,
    /// Actions the case's state did not allow when their time came, skipped as the page
    /// would not offer them, by the code of the refusal (none in the planned day: a
    /// refusal here means the plan asks for something a counter could not do).
    pub skipped: std::collections::BTreeMap<&'static str, u64>,
    /// Cases a station sent to its district (转办, §5.5.4), by station index: the
    /// district decides them once they reach it, and the decision flows back down.
    pub sent: Vec<(usize, DocId)>,
}

/// The share of cases a station sends to its district to decide (转办 to the hall's
/// node: the hall may act on a case only once a station sent it there).
const SENT_TO_HALL: f64 = 0.02;

/// The items stations take applications for: a delegated item's cases are decided by its
/// department and a combined one's by its parts' departments, not at the station.
fn station_items() -> Vec<Item> {
    demo_catalog()
        .into_iter()
        .filter(|i| i.delegated_by.is_none())
        .filter(|i| i.parts.is_empty())
        .collect()
}

/// Makes the day's cases at the stations, spread unevenly over them, `concurrency`
/// stations at once.
pub async fn make_cases(city: &City, config: &CityConfig, day_start: u64) -> anyhow::Result<Made> {
    let mut rng = Rng::new(config.seed, 2);
    let per_station = spread(config.cases, city.stations.len(), 0, 15.0, &mut rng);
    let items = Arc::new(station_items());
    let inputs: Vec<(usize, u64)> = per_station.into_iter().enumerate().collect();
    let results = bounded(inputs, config.concurrency, |(s, n)| {
        let station = city.stations[s].clone();
        let district = &city.districts[city.district_of(s)];
        let hall = (
            format!("{} 行政服务中心", district.record.division.as_str()),
            district.record.node,
        );
        let items = items.clone();
        let seed = config.seed;
        async move {
            fill_station(
                &station,
                &items,
                n,
                &hall,
                Rng::new(seed, 100 + s as u64),
                day_start,
            )
            .await
        }
    })
    .await?;
    let mut made = Made::default();
    for (s, filled) in results.into_iter().enumerate() {
        made.cases.push(filled.ids);
        made.changes += filled.changes;
        for (code, n) in filled.skipped {
            *made.skipped.entry(code).or_insert(0) += n;
        }
        made.sent.extend(filled.sent.into_iter().map(|id| (s, id)));
    }
    Ok(made)
}

/// One thing a station records: receiving case `i`, or an action on it.
enum Step {
    Receive { item: usize },
    Act(NewAction),
}

/// The day of case `i` received at `t`: an intake and its acceptance, some after a
/// notice of missing materials and their supplement (一次性告知, then 补正, §7.5); then a
/// realistic share of later events the same day: a special procedure suspending and
/// resuming the clock, a decision and most often the completion, a withdrawal. The rest
/// stay open at the end of the day. Times only grow, and never pass the day's end.
fn plan(
    item: &Item,
    t: u64,
    day_end: u64,
    hall: &(String, NodeId),
    rng: &mut Rng,
) -> Vec<(u64, NewAction)> {
    let mut at = t;
    let mut next = |low: u64, high: u64, rng: &mut Rng| {
        at = (at + rng.between(low, high)).min(day_end);
        at
    };
    let mut steps = Vec::new();
    if rng.unit() < 0.08
        && let Some(material) = item.materials.first()
    {
        steps.push((
            next(2 * MINUTE_MS, 5 * MINUTE_MS, rng),
            NewAction::Do(Action::NotifyMissing {
                missing: vec![MissingMaterial {
                    name: material.name.clone(),
                    reason: "复印件不清晰".into(),
                }],
                note: String::new(),
            }),
        ));
        steps.push((
            next(20 * MINUTE_MS, 120 * MINUTE_MS, rng),
            NewAction::Do(Action::Supplement {
                materials: vec![MaterialReceived {
                    name: material.name.clone(),
                    originals: material.originals,
                    copies: material.copies,
                }],
            }),
        ));
    }
    steps.push((next(MINUTE_MS, 4 * MINUTE_MS, rng), NewAction::Accept));
    let roll = rng.unit();
    if roll < SENT_TO_HALL {
        steps.push((
            next(30 * MINUTE_MS, 120 * MINUTE_MS, rng),
            NewAction::Do(Action::Transfer {
                to: hall.0.clone(),
                reason: "需区级审批".into(),
                to_node: Some(hall.1),
            }),
        ));
        return steps;
    }
    let roll = rng.unit();
    if roll < 0.03 {
        steps.push((
            next(10 * MINUTE_MS, 180 * MINUTE_MS, rng),
            NewAction::Do(Action::Withdraw {
                reason: "申请人主动撤回".into(),
            }),
        ));
    } else if roll < 0.08
        && let Some(procedure) = item.special_procedures.first()
    {
        // A special procedure the item lists (特别程序): the clock stops, then runs again.
        steps.push((
            next(30 * MINUTE_MS, 120 * MINUTE_MS, rng),
            NewAction::Do(Action::Suspend {
                procedure: procedure.name.clone(),
                reason: "需现场核查申请材料".into(),
            }),
        ));
        steps.push((
            next(30 * MINUTE_MS, 180 * MINUTE_MS, rng),
            NewAction::Do(Action::Resume {
                note: "核查完毕".into(),
            }),
        ));
    } else if roll < 0.50 {
        steps.push((
            next(30 * MINUTE_MS, 300 * MINUTE_MS, rng),
            NewAction::Do(Action::Decide {
                approved: rng.unit() >= 0.05,
                reason: "经审查，材料齐全，符合法定条件".into(),
                basis: "《行政许可法》第三十八条".into(),
                remedies: "如不服，可依法申请行政复议或者提起行政诉讼".into(),
                on_behalf_of: None,
            }),
        ));
        if rng.unit() < 0.85 {
            steps.push((
                next(10 * MINUTE_MS, 60 * MINUTE_MS, rng),
                NewAction::Do(Action::Complete {
                    result: "已办结".into(),
                    delivery: "窗口领取".into(),
                }),
            ));
        }
    }
    steps
}

/// Makes `n` cases at `station`, received between 09:00 and 17:00 of the day starting at
/// `day_start` (09:00 China time), each action one change, all in time order as the
/// counters record them; `hall` (name and node) is the district a few are sent to.
async fn fill_station(
    station: &TreeNode,
    items: &[Item],
    n: u64,
    hall: &(String, NodeId),
    mut rng: Rng,
    day_start: u64,
) -> anyhow::Result<Filled> {
    let day_end = day_start + 9 * HOUR_MS;
    let mut steps: Vec<(u64, u64, Step)> = Vec::new();
    for i in 0..n {
        let t = day_start + rng.between(0, 8 * HOUR_MS);
        let item = rng.between(0, items.len() as u64) as usize;
        steps.push((t, i, Step::Receive { item }));
        for (at, action) in plan(&items[item], t, day_end, hall, &mut rng) {
            steps.push((at, i, Step::Act(action)));
        }
    }
    // Stable: a case's own steps keep their order at equal times.
    steps.sort_by_key(|(at, _, _)| *at);
    let staff = Staff {
        username: "bench".into(),
        counter: "1号窗口".into(),
        role: Role::Lead,
    };
    let store = &station.store;
    let mut ids: Vec<Option<DocId>> = vec![None; n as usize];
    let (mut changes, mut skipped, mut sent) =
        (0u64, std::collections::BTreeMap::new(), Vec::new());
    for (at, i, step) in steps {
        match step {
            Step::Receive { item } => {
                let item = &items[item];
                let new = super::full_application(item, i, "137");
                let id = store
                    .create_case(item.impl_code.to_string(), new, staff.clone(), at)
                    .await?;
                ids[i as usize] = Some(id);
                changes += 1;
            }
            Step::Act(action) => {
                let id = ids[i as usize].clone().expect("received before acted on");
                let transfer = matches!(action, NewAction::Do(Action::Transfer { .. }));
                match store
                    .act_on_case(id.clone(), vec![action], staff.clone(), at)
                    .await
                {
                    Ok(()) => {
                        changes += 1;
                        if transfer {
                            sent.push(id);
                        }
                    }
                    Err(StoreError::Case(refused)) => {
                        *skipped.entry(refused.code()).or_insert(0) += 1
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    let ids = ids
        .into_iter()
        .map(|id| id.expect("every case made"))
        .collect();
    Ok(Filled {
        ids,
        changes,
        skipped,
        sent,
    })
}

/// What [`fill_station`] made at one station.
struct Filled {
    ids: Vec<DocId>,
    changes: u64,
    skipped: std::collections::BTreeMap<&'static str, u64>,
    sent: Vec<DocId>,
}

/// What a node holds of the cases: each case document with its heads, and each `cases`
/// row, both in id order.
#[derive(Debug, Default)]
struct Holding {
    heads: Vec<(String, Vec<u8>)>,
    rows: Vec<(String, String)>,
}

async fn holding(node: TreeNode) -> anyhow::Result<Holding> {
    Ok(Holding {
        heads: node.store.document_heads(DocKind::Case).await?,
        rows: node.store.case_rows().await?,
    })
}

/// The union of the holdings of a hall's children, in id order.
fn union<'a>(parts: impl Iterator<Item = &'a Holding>) -> Holding {
    let mut all = Holding::default();
    for part in parts {
        all.heads.extend(part.heads.iter().cloned());
        all.rows.extend(part.rows.iter().cloned());
    }
    all.heads.sort();
    all.rows.sort();
    all
}

/// The first difference between what `node` holds and what it should, as an error
/// naming the node and the document.
fn compare<T: PartialEq + std::fmt::Debug>(
    node: &str,
    what: &str,
    held: &[(String, T)],
    expected: &[(String, T)],
) -> anyhow::Result<()> {
    let (mut h, mut e) = (held.iter().peekable(), expected.iter().peekable());
    loop {
        match (h.peek(), e.peek()) {
            (None, None) => return Ok(()),
            (Some((id, _)), None) => {
                anyhow::bail!("{node}: holds {what} {id}, which nothing below it holds")
            }
            (None, Some((id, _))) => anyhow::bail!("{node}: lacks {what} {id} held below it"),
            (Some((hid, hv)), Some((eid, ev))) => {
                if hid < eid {
                    anyhow::bail!("{node}: holds {what} {hid}, which nothing below it holds")
                }
                if eid < hid {
                    anyhow::bail!("{node}: lacks {what} {eid} held below it")
                }
                if hv != ev {
                    anyhow::bail!(
                        "{node}: {what} {hid} differs from below: here {hv:?}, below {ev:?}"
                    )
                }
                h.next();
                e.next();
            }
        }
    }
}

/// What the check counted.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    /// Per tier, the cases its nodes hold in all.
    pub cases: [u64; 4],
    /// Catalog items every node holds.
    pub items: usize,
}

/// Checks that the tree converged exactly (see the module's comment); `made`, if given,
/// is what each station made, which it must hold exactly.
pub async fn check(
    city: &City,
    made: Option<&Made>,
    concurrency: usize,
) -> anyhow::Result<Checked> {
    let mut checked = Checked::default();
    // Nothing refused, nothing underived, anywhere.
    let nodes: Vec<TreeNode> = city.nodes().cloned().collect();
    let counts = bounded(nodes.clone(), concurrency, |node| async move {
        Ok((
            node.store.quarantine_count().await?,
            node.store.underived_count().await?,
        ))
    })
    .await?;
    for (node, (quarantined, underived)) in nodes.iter().zip(counts) {
        anyhow::ensure!(
            quarantined == 0,
            "{}: {quarantined} changes quarantined",
            name(node)
        );
        anyhow::ensure!(
            underived == 0,
            "{}: {underived} documents underived",
            name(node)
        );
    }
    // The city's catalog, everywhere.
    let catalog = city.city.store.document_heads(DocKind::Item).await?;
    anyhow::ensure!(!catalog.is_empty(), "the city holds no catalog");
    checked.items = catalog.len();
    let catalogs = bounded(nodes.clone(), concurrency, |node| async move {
        Ok(node.store.document_heads(DocKind::Item).await?)
    })
    .await?;
    for (node, held) in nodes.iter().zip(catalogs) {
        compare(&name(node), "catalog item", &held, &catalog)?;
    }
    // The stations' cases, which each hall above must hold exactly.
    let stations = bounded(city.stations.clone(), concurrency, holding).await?;
    if let Some(made) = made {
        for ((node, held), ids) in city.stations.iter().zip(&stations).zip(&made.cases) {
            let mut ids: Vec<(String, ())> =
                ids.iter().map(|id| (id.as_str().to_string(), ())).collect();
            ids.sort();
            let held: Vec<(String, ())> =
                held.heads.iter().map(|(id, _)| (id.clone(), ())).collect();
            compare(&name(node), "case", &held, &ids)?;
        }
    }
    checked.cases[Tier::Station as usize] = stations.iter().map(|s| s.heads.len() as u64).sum();
    let subs = bounded(city.subdistricts.clone(), concurrency, holding).await?;
    for (s, (node, held)) in city.subdistricts.iter().zip(&subs).enumerate() {
        let expected = union(
            stations
                .iter()
                .zip(&city.station_sub)
                .filter(|(_, p)| **p == s)
                .map(|(h, _)| h),
        );
        compare(&name(node), "case", &held.heads, &expected.heads)?;
        compare(&name(node), "cases row", &held.rows, &expected.rows)?;
        checked.cases[Tier::Subdistrict as usize] += held.heads.len() as u64;
    }
    drop(stations);
    let districts = bounded(city.districts.clone(), concurrency, holding).await?;
    for (d, (node, held)) in city.districts.iter().zip(&districts).enumerate() {
        let expected = union(
            subs.iter()
                .zip(&city.sub_district)
                .filter(|(_, p)| **p == d)
                .map(|(h, _)| h),
        );
        compare(&name(node), "case", &held.heads, &expected.heads)?;
        compare(&name(node), "cases row", &held.rows, &expected.rows)?;
        checked.cases[Tier::District as usize] += held.heads.len() as u64;
    }
    drop(subs);
    let held = holding(city.city.clone()).await?;
    let expected = union(districts.iter());
    compare(&name(&city.city), "case", &held.heads, &expected.heads)?;
    compare(&name(&city.city), "cases row", &held.rows, &expected.rows)?;
    checked.cases[Tier::City as usize] = held.heads.len() as u64;
    Ok(checked)
}

/// The wall time of each phase, in seconds.
#[derive(Debug, Clone, Default)]
pub struct Phases {
    pub build: f64,
    pub make: f64,
    pub rounds: f64,
    pub catch_up: f64,
    pub check: f64,
    /// The process's resident memory (KiB) at the end of build, make, rounds, catch-up.
    pub rss: [Option<u64>; 4],
}

/// A whole simulated day.
#[derive(Debug)]
pub struct Day {
    pub city: City,
    /// What the first sync after enrollment moved: the catalog and registries down, the
    /// registries up.
    pub initial: Figures,
    pub made: Made,
    pub figures: Figures,
    pub phases: Phases,
    pub catch_up_rounds: u32,
}

/// Final catch-up rounds at most: with every link up, one round moves everything made
/// before it to the city and back down, so a second finds nothing.
const CATCH_UP_ROUNDS: u32 = 8;

/// Builds the tree under `root`, makes the day starting at `day_start` (09:00 China
/// time), syncs in rounds with cut links and catches up; not yet checked.
pub async fn simulate(root: &Path, config: &CityConfig, day_start: u64) -> anyhow::Result<Day> {
    let mut phases = Phases::default();
    let started = Instant::now();
    let (city, initial) = build(root, config, day_start - DAY_MS).await?;
    phases.build = started.elapsed().as_secs_f64();
    phases.rss[0] = rss_now();
    let started = Instant::now();
    let made = make_cases(&city, config, day_start).await?;
    phases.make = started.elapsed().as_secs_f64();
    phases.rss[1] = rss_now();
    let mut figures = Figures::default();
    let mut rng = Rng::new(config.seed, 3);
    let mut sent = made.sent.clone();
    // The districts decide in the evening, after the stations' day.
    let evening = day_start + 9 * HOUR_MS + 30 * MINUTE_MS;
    let started = Instant::now();
    for _ in 0..config.rounds {
        let up = Links::draw(&city, config.cut, &mut rng);
        city.round(&up, config, &mut figures, &mut sent, evening)
            .await?;
    }
    phases.rounds = started.elapsed().as_secs_f64();
    phases.rss[2] = rss_now();
    let started = Instant::now();
    let all_up = Links::all_up(&city);
    let mut catch_up_rounds = 0;
    loop {
        anyhow::ensure!(
            catch_up_rounds < CATCH_UP_ROUNDS,
            "the tree did not settle: changes still moved after {CATCH_UP_ROUNDS} rounds with every link up"
        );
        catch_up_rounds += 1;
        if city
            .round(&all_up, config, &mut figures, &mut sent, evening)
            .await?
            == 0
        {
            break;
        }
    }
    anyhow::ensure!(
        sent.is_empty(),
        "{} cases sent to a district never reached it",
        sent.len()
    );
    phases.catch_up = started.elapsed().as_secs_f64();
    phases.rss[3] = rss_now();
    Ok(Day {
        city,
        initial,
        made,
        figures,
        phases,
        catch_up_rounds,
    })
}

/// 09:00 China time of the last working day (Monday to Friday) before today.
fn last_working_day(now_ms: u64) -> u64 {
    let mut day = Date::from_unix_ms_cst(now_ms as i64).add_days(-1);
    while day.is_weekend() {
        day = day.add_days(-1);
    }
    day_start(day)
}

/// 09:00 China time (UTC+8) of `day`.
fn day_start(day: Date) -> u64 {
    let midnight_cst = day.days_since_epoch() as i64 * DAY_MS as i64 - 8 * HOUR_MS as i64;
    (midnight_cst + 9 * HOUR_MS as i64) as u64
}

/// Runs the bench and prints its figures for docs/benchmarks.md.
pub async fn city(args: CityBenchArgs) -> anyhow::Result<()> {
    let synchronous = match args.synchronous.as_str() {
        "full" => Synchronous::Full,
        "normal" => Synchronous::Normal,
        other => anyhow::bail!("--synchronous {other:?}: use full or normal"),
    };
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.cut),
        "--cut {}: a chance, from 0 to 1",
        args.cut
    );
    let config = CityConfig {
        districts: args.districts as usize,
        subdistricts: args.subdistricts as usize,
        stations: args.stations as usize,
        cases: args.cases,
        seed: args.seed,
        cut: args.cut,
        rounds: args.rounds,
        synchronous,
        concurrency: args.concurrency as usize,
        wire: true,
    };
    let root = match &args.keep {
        Some(dir) => {
            crate::data_dir::ensure_empty(dir)?;
            std::fs::create_dir_all(dir)?;
            dir.clone()
        }
        None => super::tempfile_dir()?,
    };
    let now = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
    let result = run(&root, &config, last_working_day(now), &args).await;
    if args.keep.is_none() {
        std::fs::remove_dir_all(&root).ok();
    }
    result
}

async fn run(
    root: &Path,
    config: &CityConfig,
    day_start: u64,
    args: &CityBenchArgs,
) -> anyhow::Result<()> {
    let total = Instant::now();
    let mut day = simulate(root, config, day_start).await?;
    let started = Instant::now();
    let checked = check(&day.city, Some(&day.made), config.concurrency).await?;
    day.phases.check = started.elapsed().as_secs_f64();
    let total = total.elapsed().as_secs_f64();
    let city = &day.city;
    println!(
        "city bench: a Shenzhen day through four tiers: 1 city, {} districts, {} sub-districts, {} stations; seed {}, cut {}, {} rounds and {} of catch-up, synchronous={}, {} at once",
        city.districts.len(),
        city.subdistricts.len(),
        city.stations.len(),
        config.seed,
        config.cut,
        config.rounds,
        day.catch_up_rounds,
        args.synchronous,
        config.concurrency
    );
    let per_station: Vec<usize> = day.made.cases.iter().map(Vec::len).collect();
    println!(
        "  made            {} cases, {} changes ({:.1} a case; actions the case's state no longer allowed, skipped: {:?}); per station {} to {}",
        checked.cases[Tier::Station as usize],
        day.made.changes,
        day.made.changes as f64 / checked.cases[Tier::Station as usize].max(1) as f64,
        day.made.skipped,
        per_station.iter().min().unwrap_or(&0),
        per_station.iter().max().unwrap_or(&0)
    );
    println!(
        "  sent to a hall  {} cases sent to their district (转办), decided there and back at their stations",
        day.figures.decided_at_halls
    );
    println!(
        "  links cut       {} link-rounds of {} (each of {} links, {} rounds)",
        day.figures.links_cut,
        config.rounds as usize
            * (city.stations.len() + city.subdistricts.len() + city.districts.len()),
        city.stations.len() + city.subdistricts.len() + city.districts.len(),
        config.rounds
    );
    println!(
        "  converged       exactly: every hall its subtree's {} case documents (ids and heads) and cases rows; the city all {}; every node the catalog's {} items; nothing quarantined or underived",
        checked.cases[Tier::Subdistrict as usize],
        checked.cases[Tier::City as usize],
        checked.items
    );
    println!(
        "  {:<13} {:>8} {:>10} {:>9} {:>10} {:>12} {:>10}",
        "tier (from below)", "cases", "changes", "secs", "cases/s", "changes/s", "wire MB"
    );
    for tier in [Tier::Subdistrict, Tier::District, Tier::City] {
        let r = day.figures.from_below[tier as usize];
        let cases = checked.cases[tier as usize];
        println!(
            "  {:<17} {:>8} {:>10} {:>9.1} {:>10.0} {:>12.0} {:>10.1}",
            tier.name(),
            cases,
            r.moved.changes,
            r.secs,
            cases as f64 / r.secs.max(1e-9),
            r.moved.changes as f64 / r.secs.max(1e-9),
            r.moved.wire_bytes as f64 / 1e6
        );
    }
    for tier in Tier::ALL {
        let r = day.figures.from_above[tier as usize];
        if r.moved.changes > 0 {
            println!(
                "  {:<17} from above: {} changes (the districts' decisions) in {:.1} s, {:.2} MB on the wire",
                tier.name(),
                r.moved.changes,
                r.secs,
                r.moved.wire_bytes as f64 / 1e6
            );
        }
    }
    let first = |r: &[Received; 4]| {
        r.iter().fold(Moved::default(), |mut sum, r| {
            sum += r.moved;
            sum
        })
    };
    let (down, up) = (
        first(&day.initial.from_above),
        first(&day.initial.from_below),
    );
    println!(
        "  first sync      the catalog and registries down ({} changes, {:.1} MB on the wire), the registries up ({} changes), in the build's time",
        down.changes,
        down.wire_bytes as f64 / 1e6,
        up.changes
    );
    let encode: f64 = day
        .figures
        .from_below
        .iter()
        .chain(&day.figures.from_above)
        .map(|r| r.moved.encode_secs)
        .sum();
    let p = &day.phases;
    println!(
        "  wall time       build tree {:.1} s, make cases {:.1} s, sync rounds {:.1} s, final catch-up {:.1} s, check {:.1} s; total {total:.1} s",
        p.build, p.make, p.rounds, p.catch_up, p.check
    );
    println!(
        "                  (the sync times include {encode:.1} s spent encoding batches only to count their wire bytes)"
    );
    println!(
        "  peak RSS        {} for {} stores in one process",
        super::peak_rss().map_or("unknown".into(), |kb| format!(
            "{:.0} MB",
            kb as f64 / 1024.0
        )),
        city.nodes().count()
    );
    let mb = |kb: Option<u64>| {
        kb.map_or("unknown".into(), |kb| {
            format!("{:.0} MB", kb as f64 / 1024.0)
        })
    };
    println!(
        "  RSS             after build {}, after making cases {}, after the rounds {}, after catch-up {}",
        mb(p.rss[0]),
        mb(p.rss[1]),
        mb(p.rss[2]),
        mb(p.rss[3])
    );
    println!("  load average    {}", load_average());
    let Day { city, .. } = day;
    city.shutdown().await;
    Ok(())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// The process's resident memory now, in KiB (Linux), from /proc/self/status.
fn rss_now() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use yizhan_sync::domain::codes::DivisionCode;

    /// Two districts, four sub-districts, eight stations, a few hundred cases, cut links.
    fn small(seed: u64) -> CityConfig {
        CityConfig {
            districts: 2,
            subdistricts: 4,
            stations: 8,
            cases: 240,
            seed,
            cut: 0.3,
            rounds: 3,
            synchronous: Synchronous::Normal,
            concurrency: 4,
            wire: true,
        }
    }

    /// A Monday, 09:00 China time.
    fn monday() -> u64 {
        day_start(Date::from_ymd(2026, 3, 2).expect("a date"))
    }

    #[test]
    fn the_fan_out_is_uneven_but_replays_from_the_seed() {
        let a = spread(645, 74, 1, 4.0, &mut Rng::new(1, 1));
        let b = spread(645, 74, 1, 4.0, &mut Rng::new(1, 1));
        let c = spread(645, 74, 1, 4.0, &mut Rng::new(2, 1));
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a.iter().sum::<u64>(), 645);
        assert!(a.iter().all(|n| *n >= 1));
        assert!(a.iter().max() > a.iter().min(), "{a:?}");
        let cases = spread(30_000, 645, 0, 15.0, &mut Rng::new(1, 2));
        assert_eq!(cases.iter().sum::<u64>(), 30_000);
        assert!(cases.iter().max().unwrap() > &(3 * cases.iter().min().unwrap()));
    }

    #[test]
    fn division_codes_are_valid_at_every_tier() {
        for d in 0..90 {
            let code = district_code(d);
            let parsed = DivisionCode::parse(&code).unwrap();
            assert_eq!(
                parsed.level(),
                yizhan_sync::domain::codes::DivisionLevel::District
            );
        }
        assert_eq!(district_code(0), "440303");
    }

    /// The CI size of the bench: a day through four tiers with cut links converges
    /// exactly, every tier holding what it should.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_small_city_converges_through_four_tiers() {
        let root = tempfile::tempdir().unwrap();
        let config = small(7);
        let day = simulate(root.path(), &config, monday()).await.unwrap();
        assert!(day.figures.links_cut > 0, "no link was cut");
        let checked = check(&day.city, Some(&day.made), 4).await.unwrap();
        assert_eq!(checked.cases, [240; 4]);
        assert!(checked.items > 0);
        // Every tier received from below, and the wire was counted.
        for tier in [Tier::Subdistrict, Tier::District, Tier::City] {
            let r = day.figures.from_below[tier as usize];
            assert!(r.moved.changes >= day.made.changes, "{tier:?}: {r:?}");
            assert!(r.moved.wire_bytes > 0);
        }
        // Later events were made, not only intakes and acceptances, and every planned
        // action was one the case allowed.
        assert!(day.made.changes > 2 * 240, "{:?}", day.made.changes);
        assert!(day.made.skipped.is_empty(), "{:?}", day.made.skipped);
        // The cases sent to a district were decided there, and the decision is back at
        // the station that sent them.
        assert!(!day.made.sent.is_empty());
        assert_eq!(day.figures.decided_at_halls, day.made.sent.len() as u64);
        for (s, id) in &day.made.sent {
            let case = day.city.stations[*s]
                .store
                .get_case(
                    id.as_str().to_string(),
                    Date::from_unix_ms_cst(monday() as i64),
                )
                .await
                .unwrap();
            assert_eq!(
                case.summary.status,
                yizhan_sync::domain::case::Status::Decided,
                "{id}"
            );
        }
        day.city.shutdown().await;
    }

    /// The check fails, naming the node and the document, when a hall lacks a case its
    /// subtree holds: a case made after the tree converged goes up one link only.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_check_names_a_hall_that_lacks_a_document() {
        let root = tempfile::tempdir().unwrap();
        let config = CityConfig {
            cases: 40,
            rounds: 1,
            ..small(11)
        };
        let day = simulate(root.path(), &config, monday()).await.unwrap();
        let city = &day.city;
        check(city, Some(&day.made), 4).await.unwrap();
        let station = &city.stations[0];
        let sub = &city.subdistricts[city.station_sub[0]];
        let district = &city.districts[city.sub_district[city.station_sub[0]]];
        let lead = Staff {
            username: "bench".into(),
            counter: "1号窗口".into(),
            role: Role::Lead,
        };
        let item = &station_items()[0];
        let late = station
            .store
            .create_case(
                item.impl_code.to_string(),
                crate::bench::full_application(item, 1, "137"),
                lead.clone(),
                monday() + DAY_MS,
            )
            .await
            .unwrap();
        let ids = [late];
        transfer_measured(station, sub, false).await.unwrap();
        let error = check(city, None, 4).await.unwrap_err().to_string();
        assert!(
            error.contains(&format!("district {}", district.record.division.as_str()))
                && error.contains(ids[0].as_str())
                && error.contains("lacks"),
            "{error}"
        );
        // A case changed at a station after its hall took it: the heads differ.
        transfer_measured(sub, district, false).await.unwrap();
        transfer_measured(district, &city.city, false)
            .await
            .unwrap();
        check(city, None, 4).await.unwrap();
        station
            .store
            .act_on_case(
                ids[0].clone(),
                vec![NewAction::Do(Action::Withdraw {
                    reason: "申请人主动撤回".into(),
                })],
                lead,
                monday() + DAY_MS + 8 * HOUR_MS,
            )
            .await
            .unwrap();
        let error = check(city, None, 4).await.unwrap_err().to_string();
        assert!(
            error.contains(&format!("subdistrict {}", sub.record.division.as_str()))
                && error.contains(ids[0].as_str())
                && error.contains("differs"),
            "{error}"
        );
        let Day { city, .. } = day;
        city.shutdown().await;
    }
}
