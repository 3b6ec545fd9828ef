//! A tree of nodes in one process, each a store in its own directory: a city, its
//! districts and their stations, enrolled as `yizhan enroll` would, with changes moved
//! between them in batches as sync sessions move them (without HTTP). The sink's
//! benchmark and tests use it to give a city hall cases from several districts.

use std::path::Path;

use yizhan_sync::auth::{NodeRecord, NodeRole};
use yizhan_sync::domain::codes::DivisionCode;
use yizhan_sync::feed::Pull;
use yizhan_sync::ids::Scope;

use crate::config::Synchronous;
use crate::demo::demo_catalog;
use crate::store::{Relation, Store, StoreOptions};

/// One node of the tree.
#[derive(Debug, Clone)]
pub struct TreeNode {
    pub store: Store,
    pub record: NodeRecord,
}

/// A city, its districts and their stations.
#[derive(Debug)]
pub struct Tree {
    pub city: TreeNode,
    pub districts: Vec<TreeNode>,
    /// Per district, its stations.
    pub stations: Vec<Vec<TreeNode>>,
}

/// The role and division of the one hall's data dir (`city-…`, `district-…` or
/// `subdistrict-…` holding a `yizhan.db`) under `dir`, as the benches' `--keep` leave it.
pub fn find_hall(dir: &Path) -> anyhow::Result<(NodeRole, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        let Some((role, division)) = name.split_once('-') else {
            continue;
        };
        let role = match role {
            "city" => NodeRole::City,
            "district" => NodeRole::District,
            "subdistrict" => NodeRole::Subdistrict,
            _ => continue,
        };
        if dir.join(&name).join("yizhan.db").is_file() {
            found.push((role, division.to_string()));
        }
    }
    match <[_; 1]>::try_from(found) {
        Ok([hall]) => Ok(hall),
        Err(found) => anyhow::bail!(
            "{} should hold one hall's data dir (city-DIVISION or district-DIVISION with a yizhan.db), found {}",
            dir.display(),
            found.len()
        ),
    }
}

/// Opens a store for a node of `role` in `division` under `root`; `seed` makes its key.
pub async fn open_node(
    root: &Path,
    seed: u8,
    role: NodeRole,
    division: &str,
    synchronous: Synchronous,
) -> anyhow::Result<TreeNode> {
    open_node_with(
        root,
        [seed; 32],
        role,
        division,
        synchronous,
        NodeCaches {
            doc_cache: 512,
            readers: 2,
        },
    )
    .await
}

/// How much a node of the tree keeps open: a city of 645 stations in one process keeps
/// its stations' caches small (each has one writer and few documents in use at a time).
#[derive(Debug, Clone, Copy)]
pub struct NodeCaches {
    pub doc_cache: usize,
    pub readers: usize,
}

/// [`open_node`] with the whole key seed and the caches given: for trees of more than
/// 255 nodes.
pub async fn open_node_with(
    root: &Path,
    seed: [u8; 32],
    role: NodeRole,
    division: &str,
    synchronous: Synchronous,
    caches: NodeCaches,
) -> anyhow::Result<TreeNode> {
    let division = DivisionCode::parse(division).map_err(|e| anyhow::anyhow!("{e}"))?;
    let dir = root.join(format!("{}-{division}", role.as_str()));
    std::fs::create_dir_all(&dir)?;
    let identity = crate::identity::NodeKey::from_seed(seed).identity(
        role,
        division.clone(),
        &format!("{} {division}", role.as_str()),
    );
    let record = identity.record.clone();
    // Opening migrates and syncs the new file: off the runtime's threads, so that a
    // tree's nodes open concurrently.
    let path = dir.join("yizhan.db");
    let store = tokio::task::spawn_blocking(move || {
        Store::open(
            &path,
            StoreOptions {
                identity,
                doc_cache: caches.doc_cache,
                readers: caches.readers,
                synchronous,
                migrate: true,
            },
        )
    })
    .await??;
    Ok(TreeNode { store, record })
}

/// Builds the tree: the city enrolls each district of `districts`, each district enrolls
/// `stations` stations (`DDDDDD001001`, `…001002`, …); the city publishes the demo
/// catalog, which reaches every station.
pub async fn build(
    root: &Path,
    districts: &[&str],
    stations: usize,
    synchronous: Synchronous,
    now: u64,
) -> anyhow::Result<Tree> {
    let city_division = format!("{}00", &districts[0][..4]);
    let city = open_node(root, 1, NodeRole::City, &city_division, synchronous).await?;
    let mut tree = Tree {
        city,
        districts: Vec::new(),
        stations: Vec::new(),
    };
    for item in demo_catalog() {
        tree.city
            .store
            .publish_item(
                Scope::catalog(&DivisionCode::parse(&city_division).expect("valid")),
                item,
                now,
            )
            .await?;
    }
    let mut seed = 2u8;
    for district in districts {
        let hall = open_node(root, seed, NodeRole::District, district, synchronous).await?;
        seed += 1;
        enroll(&tree.city, &hall, now).await?;
        let mut below = Vec::new();
        for n in 1..=stations {
            let division = format!("{district}001{n:03}");
            let station = open_node(root, seed, NodeRole::Station, &division, synchronous).await?;
            seed += 1;
            enroll(&hall, &station, now).await?;
            below.push(station);
        }
        tree.districts.push(hall);
        tree.stations.push(below);
    }
    // Down: the catalog and the registries; then up, so the city knows every key.
    for (d, district) in tree.districts.iter().enumerate() {
        transfer(&tree.city, district).await?;
        for station in &tree.stations[d] {
            transfer(district, station).await?;
        }
    }
    tree.sync_up().await?;
    Ok(tree)
}

impl Tree {
    /// Moves everything new at the stations up to their district, then the districts'
    /// up to the city; returns the changes the city received.
    pub async fn sync_up(&self) -> anyhow::Result<u64> {
        for (d, district) in self.districts.iter().enumerate() {
            for station in &self.stations[d] {
                transfer(station, district).await?;
            }
        }
        let mut to_city = 0;
        for district in &self.districts {
            to_city += transfer(district, &self.city).await?;
        }
        Ok(to_city)
    }

    /// Every store, for shutting down.
    pub fn stores(&self) -> Vec<Store> {
        let mut all = vec![self.city.store.clone()];
        all.extend(self.districts.iter().map(|n| n.store.clone()));
        all.extend(self.stations.iter().flatten().map(|n| n.store.clone()));
        all
    }
}

/// `hall` enrolls `child`, and `child` pins the hall and the nodes above it.
pub async fn enroll(hall: &TreeNode, child: &TreeNode, now: u64) -> anyhow::Result<()> {
    let code = format!("tree-{}", child.record.node.to_hex());
    hall.store
        .create_enroll_code(
            code.clone(),
            child.record.division.clone(),
            child.record.role,
            now + 3_600_000,
        )
        .await?;
    let enrolled = hall
        .store
        .enroll_child(code, child.record.clone(), now)
        .await?;
    for (n, record) in enrolled.chain.into_iter().enumerate() {
        let relation = if n == 0 {
            Relation::Parent
        } else {
            Relation::Ancestor
        };
        child.store.pin_peer(record, relation, None).await?;
    }
    if let Some(segment) = enrolled.record.segment {
        child.store.set_own_segment(segment).await?;
    }
    Ok(())
}

/// Moves what `to` may read and lacks from `from`, batch by batch, as a sync session
/// would; returns the changes moved.
pub async fn transfer(from: &TreeNode, to: &TreeNode) -> anyhow::Result<u64> {
    Ok(transfer_measured(from, to, false).await?.changes)
}

/// What one [`transfer_measured`] moved.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Moved {
    pub changes: u64,
    pub batches: u64,
    /// The batches' size in the wire encoding (`yizhan_sync::wire`), had they gone over
    /// `/sync/v1`; 0 unless asked for.
    pub wire_bytes: u64,
    /// Time spent encoding for that count, in seconds (not part of a real transfer's
    /// receiving side, reported beside it).
    pub encode_secs: f64,
}

impl std::ops::AddAssign for Moved {
    fn add_assign(&mut self, other: Moved) {
        self.changes += other.changes;
        self.batches += other.batches;
        self.wire_bytes += other.wire_bytes;
        self.encode_secs += other.encode_secs;
    }
}

/// [`transfer`], also counting batches and, if `wire` is set, the bytes each batch takes
/// in the wire encoding (encoded here only to be measured: the receiver takes the batch
/// as [`transfer`] hands it over).
pub async fn transfer_measured(
    from: &TreeNode,
    to: &TreeNode,
    wire: bool,
) -> anyhow::Result<Moved> {
    use yizhan_sync::wire::Message;
    let mut moved = Moved::default();
    // Bounded: each batch moves at least one change, or the loop ends.
    for _ in 0..1_000_000 {
        let pull = Pull {
            scopes: vec![],
            have: to.store.vector().await?,
            max_bytes: 2 << 20,
        };
        let batch = from.store.serve_pull(to.record.clone(), pull).await?;
        if batch.envelopes.is_empty() {
            break;
        }
        moved.changes += batch.envelopes.len() as u64;
        moved.batches += 1;
        let batch = if wire {
            let started = std::time::Instant::now();
            let (batch, bytes) = tokio::task::spawn_blocking(move || {
                let bytes = batch.encode().len() as u64;
                (batch, bytes)
            })
            .await?;
            moved.wire_bytes += bytes;
            moved.encode_secs += started.elapsed().as_secs_f64();
            batch
        } else {
            batch
        };
        to.store.receive_batch(batch).await?;
    }
    Ok(moved)
}
