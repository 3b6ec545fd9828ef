//! The store's side of sync: the signed change log, version vectors, answering pulls,
//! applying batches in one transaction, the registry of node keys, enrollment codes,
//! and quarantine.

use std::collections::HashMap;
use std::sync::Arc;

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};
use yizhan_sync::auth::Refusal;
use yizhan_sync::auth::{self, NodeRecord, NodeRole, Registry, Revocation};
use yizhan_sync::doc::{self, Rows};
use yizhan_sync::domain::codes::DivisionCode;
use yizhan_sync::domain::hlc::Hlc;
use yizhan_sync::domain::serial::Segment;
use yizhan_sync::engine::{self, ChangeLog};
use yizhan_sync::envelope::{self, CHAIN_START, ChainHash, Envelope};
use yizhan_sync::feed::{
    self, Ack, Batch, ChangeNote, LogEntry, ParsedBatch, Pull, RunState, VersionVector,
};
use yizhan_sync::ids::{DocId, DocKind, NodeId, Origin, Scope, ScopeKind};
use yizhan_sync::wire::Message;

use super::writer::{WriteCtx, store_case_rows, store_item_row};
use super::{OpenStoreError, Store, StoreError};
use super::{ingest, snapshot};
use crate::i18n::Words;
use crate::identity::Identity;

/// How a node relates to a peer it knows first-hand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relation {
    /// This node.
    Own,
    /// The hall this node enrolled with.
    Parent,
    /// A node above the parent, known from enrollment.
    Ancestor,
    /// A node this hall enrolled.
    Child,
}

impl Relation {
    pub fn as_str(self) -> &'static str {
        match self {
            Relation::Own => "self",
            Relation::Parent => "parent",
            Relation::Ancestor => "ancestor",
            Relation::Child => "child",
        }
    }

    fn parse(s: &str) -> Relation {
        match s {
            "self" => Relation::Own,
            "parent" => Relation::Parent,
            "ancestor" => Relation::Ancestor,
            _ => Relation::Child,
        }
    }
}

/// A pinned peer and how syncing with it went.
#[derive(Clone, Debug)]
pub struct PeerStatus {
    pub record: NodeRecord,
    pub relation: Relation,
    pub url: Option<String>,
    pub last_ok_ms: Option<i64>,
    pub last_error: Option<String>,
    pub last_error_ms: Option<i64>,
    /// Changes here that the peer lacks, counted against the vector it last told us (the
    /// parent's answer in the last session, a child's last pull), and when it told us.
    /// Pending up for the parent, pending down for a child; `None` until it has told us.
    pub pending: Option<(u64, i64)>,
    /// The peer's clock minus this node's at the last session (the parent only).
    pub clock_offset_ms: Option<i64>,
}

/// A change a peer refused (or waits on) of what this node sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerRefusal {
    /// The peer's node id (hex).
    pub peer: String,
    pub origin: String,
    pub seq: u64,
    pub scope: String,
    pub doc_id: String,
    /// Only waiting (for a key, a document, a change it depends on), not refused.
    pub waiting: bool,
    /// The reason's code (see `auth::Refusal::code`), for people's screens.
    pub code: String,
    pub reason: String,
    pub noted_ms: i64,
}

/// Most notes kept from one message.
fn feed_notes_cap() -> usize {
    yizhan_sync::wire::MAX_NOTES
}

/// What a hall answers a child it enrolled.
#[derive(Clone, Debug)]
pub struct Enrolled {
    /// The hall, then the nodes above it, for the child to pin.
    pub chain: Vec<NodeRecord>,
    /// The child's record as the hall registered it, with its serial segment.
    pub record: NodeRecord,
}

/// A change this node refused for good.
#[derive(Clone, Debug)]
pub struct QuarantinedChange {
    pub received_ms: i64,
    pub origin: String,
    pub seq: u64,
    pub scope: String,
    pub doc_id: String,
    /// The reason's code (see `auth::Refusal::code`), for people's screens.
    pub code: String,
    pub reason: String,
}

/// The kind of a change logged before the log kept kinds: its scope's only kind then.
fn kind_of(scope: &Scope) -> DocKind {
    match scope.kind() {
        ScopeKind::Catalog => DocKind::Item,
        ScopeKind::Case => DocKind::Case,
        ScopeKind::Registry => DocKind::Registry,
    }
}

pub(super) fn origin_of(node: Vec<u8>, epoch: u32) -> Result<Origin, StoreError> {
    let node: [u8; 16] = node
        .try_into()
        .map_err(|_| StoreError::Internal("a stored origin is not 16 bytes".into()))?;
    Ok(Origin {
        node: NodeId(node),
        epoch,
    })
}

fn bytes32(bytes: Option<Vec<u8>>) -> Option<[u8; 32]> {
    bytes.and_then(|b| b.try_into().ok())
}

fn bytes64(bytes: Option<Vec<u8>>) -> Option<[u8; 64]> {
    bytes.and_then(|b| b.try_into().ok())
}

/// The last change this node holds of `origin` in `scope`, and the chain value after it.
pub(super) fn run_state(
    conn: &Connection,
    scope: &Scope,
    origin: &Origin,
) -> Result<RunState, StoreError> {
    let found: Option<(i64, Option<Vec<u8>>)> = conn
        .prepare_cached(
            "SELECT seq, chain FROM changes WHERE scope = ?1 AND origin_node = ?2 AND origin_epoch = ?3
             ORDER BY seq DESC LIMIT 1",
        )?
        .query_row(params![scope.as_str(), &origin.node.0[..], origin.epoch], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(match found {
        None => RunState::default(),
        Some((seq, chain)) => RunState {
            seq: seq as u64,
            chain: bytes32(chain).unwrap_or(CHAIN_START),
        },
    })
}

/// Appends a change to the log and advances its run's head.
pub(super) fn insert_change(
    conn: &Connection,
    envelope: &Envelope,
    chain: &ChainHash,
    signature: Option<&[u8; 64]>,
) -> Result<(), StoreError> {
    insert_change_row(conn, envelope, chain, signature)?;
    advance_run_head(conn, &envelope.scope, &envelope.origin, envelope.seq)
}

/// Appends a change to the log without touching `run_heads`: a received batch advances
/// each run's head once, after all its changes ([`advance_run_head`]).
fn insert_change_row(
    conn: &Connection,
    envelope: &Envelope,
    chain: &ChainHash,
    signature: Option<&[u8; 64]>,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO changes (origin_node, origin_epoch, seq, prev, doc_id, scope, hash, bytes, chain, signature, refused, kind)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
        &envelope.origin.node.0[..],
        envelope.origin.epoch,
        envelope.seq as i64,
        envelope.prev as i64,
        envelope.doc.as_str(),
        envelope.scope.as_str(),
        &envelope.hash[..],
        &envelope.change,
        &chain[..],
        signature.map(|s| &s[..]),
        envelope.refused.as_deref(),
        envelope.kind.as_str(),
    ])?;
    if envelope.refused.is_some() {
        conn.prepare_cached("INSERT OR IGNORE INTO refused_hashes (hash) VALUES (?1)")?
            .execute([&envelope.hash[..]])?;
    }
    Ok(())
}

/// Records `seq` as the newest of its run. Runs only grow by one seq at a time in order
/// (feed::check_batch), so the highest seq logged is the run's head.
fn advance_run_head(
    conn: &Connection,
    scope: &Scope,
    origin: &Origin,
    seq: u64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO run_heads (scope, origin_node, origin_epoch, seq) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (scope, origin_node, origin_epoch) DO UPDATE SET seq = max(seq, excluded.seq)",
    )?
    .execute(params![
        scope.as_str(),
        &origin.node.0[..],
        origin.epoch,
        seq as i64,
    ])?;
    Ok(())
}

/// Gives this node's own changes written before sync existed (schema 2) their chain
/// values, previous seqs and signatures, once, at start.
pub(super) fn sign_unsigned_changes(
    conn: &mut Connection,
    identity: &Identity,
    origin: Origin,
) -> Result<(), OpenStoreError> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let rows: Vec<(i64, i64, String, String, Vec<u8>)> = tx
        .prepare(
            "SELECT local_seq, seq, doc_id, scope, hash FROM changes
             WHERE origin_node = ?1 AND origin_epoch = ?2 AND chain IS NULL ORDER BY seq",
        )?
        .query_map(params![&origin.node.0[..], origin.epoch], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<Result<_, _>>()?;
    let mut runs: HashMap<String, RunState> = HashMap::new();
    for (local_seq, seq, doc_id, scope_text, hash) in rows {
        let (Some(scope), Some(doc), Some(hash)) = (
            Scope::parse(&scope_text),
            DocId::parse(&doc_id),
            bytes32(Some(hash)),
        ) else {
            continue;
        };
        let run = runs.entry(scope_text).or_default();
        let envelope = Envelope {
            origin,
            seq: seq as u64,
            prev: run.seq,
            kind: kind_of(&scope),
            doc,
            scope,
            hash,
            change: Vec::new(),
            refused: None,
        };
        let chain = envelope::chain_next(&run.chain, &envelope);
        let signature = envelope::sign(&identity.key, &origin, envelope.seq, &chain);
        tx.execute(
            "UPDATE changes SET prev = ?2, chain = ?3, signature = ?4 WHERE local_seq = ?1",
            params![local_seq, envelope.prev as i64, &chain[..], &signature[..]],
        )?;
        *run = RunState {
            seq: envelope.seq,
            chain,
        };
    }
    tx.commit()?;
    Ok(())
}

/// The serial-number segment of this node: the one its enrolling hall gave it (kept at
/// enrollment, or found in that hall's registry once synced, for a node enrolled before
/// halls gave segments out); `None` while no hall has given one.
pub(super) fn own_segment(
    conn: &Connection,
    own: &NodeRecord,
) -> rusqlite::Result<Option<Segment>> {
    let kept: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = 'segment'", [], |r| {
            r.get(0)
        })
        .optional()?;
    if let Some(segment) = kept.and_then(|s| Segment::parse(&s).ok()) {
        return Ok(Some(segment));
    }
    let mut stmt = conn.prepare_cached(
        "SELECT record_json FROM registry_records WHERE node_id = ?1 ORDER BY scope DESC",
    )?;
    let mut rows = stmt.query([own.node.to_hex()])?;
    while let Some(row) = rows.next()? {
        let json: String = row.get(0)?;
        if let Ok(record) = serde_json::from_str::<NodeRecord>(&json)
            && record.public_key == own.public_key
            && let Some(segment) = record.segment
        {
            return Ok(Some(segment));
        }
    }
    Ok(None)
}

/// Records (or refreshes) this node's own record among its peers.
pub(super) fn pin_self(conn: &Connection, record: &NodeRecord) -> Result<(), OpenStoreError> {
    let json = serde_json::to_string(record).expect("records serialize");
    conn.execute(
        "INSERT INTO peers (node_id, relation, record_json) VALUES (?1, 'self', ?2)
         ON CONFLICT (node_id) DO UPDATE SET record_json = excluded.record_json",
        params![record.node.to_hex(), json],
    )?;
    Ok(())
}

/// The keys this node trusts: its pinned peers and every record of the registries it holds.
pub(super) fn load_registry(conn: &Connection) -> Result<Registry, StoreError> {
    let mut registry = Registry::new();
    // A fixed order, so the same records always give the same view; a revocation wins
    // whatever the order (Registry::insert).
    for sql in [
        "SELECT record_json FROM registry_records ORDER BY scope, node_id",
        "SELECT record_json FROM peers ORDER BY node_id",
    ] {
        let mut stmt = conn.prepare_cached(sql)?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let json: String = row.get(0)?;
            if let Ok(record) = serde_json::from_str::<NodeRecord>(&json) {
                registry.insert(record);
            }
        }
    }
    Ok(registry)
}

/// This node's vector: the highest seq held per (scope, origin).
pub(super) fn load_vector(conn: &Connection) -> Result<VersionVector, StoreError> {
    let mut vector = VersionVector::default();
    let mut stmt =
        conn.prepare_cached("SELECT scope, origin_node, origin_epoch, seq FROM run_heads")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let scope: String = row.get(0)?;
        let Some(scope) = Scope::parse(&scope) else {
            continue;
        };
        let origin = origin_of(row.get(1)?, row.get(2)?)?;
        let seq: i64 = row.get(3)?;
        vector.advance(&scope, &origin, seq as u64);
    }
    Ok(vector)
}

/// Replaces the derived registry records of one registry document.
pub(super) fn store_registry_rows(
    conn: &Connection,
    prefix: &str,
    registry: &doc::RegistryDoc,
) -> Result<(), StoreError> {
    conn.prepare_cached(&format!(
        "DELETE FROM {prefix}registry_records WHERE scope = ?1"
    ))?
    .execute([registry.scope.as_str()])?;
    let mut insert = conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO {prefix}registry_records (scope, node_id, record_json) VALUES (?2, ?1, ?3)"
    ))?;
    for record in &registry.records {
        insert.execute(params![
            record.node.to_hex(),
            registry.scope.as_str(),
            serde_json::to_string(record).expect("records serialize")
        ])?;
    }
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Store {
    /// This node's version vector.
    pub async fn vector(&self) -> Result<VersionVector, StoreError> {
        Ok((*self.shared_vector().await?).clone())
    }

    /// This node's version vector, shared: read once per change to the log however many
    /// ask (a hall's children all asking after one change read it once). Kept by
    /// generation: the writer raises it after every commit that appends to the log, and
    /// a vector read while it moved is not kept. (Only this process's writer appends;
    /// commands that append changes run with the node stopped.)
    pub async fn shared_vector(&self) -> Result<Arc<VersionVector>, StoreError> {
        use std::sync::atomic::Ordering;
        let generation = self.inner.signals.log_generation.load(Ordering::Acquire);
        {
            let cached = self
                .inner
                .vector_cache
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some((at, vector)) = cached.as_ref()
                && *at == generation
            {
                return Ok(vector.clone());
            }
        }
        let vector = Arc::new(self.read(load_vector).await?);
        if self.inner.signals.log_generation.load(Ordering::Acquire) == generation {
            *self
                .inner
                .vector_cache
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some((generation, vector.clone()));
        }
        Ok(vector)
    }

    /// Hears of every commit that appends to the change log (local writes, children's
    /// pushes, batches pulled from the parent) with the runs it advanced, newest seq each.
    /// The `/sync/v1` server holds children's long-polls on it. A receiver that falls more
    /// than 1,024 commits behind is told it lagged and should read the vector again.
    pub fn subscribe_log(&self) -> tokio::sync::broadcast::Receiver<super::Advanced> {
        self.inner.signals.log.subscribe()
    }

    /// The keys this node trusts.
    pub async fn registry(&self) -> Result<Registry, StoreError> {
        self.read(load_registry).await
    }

    /// Answers a pull from `requester`: the changes it lacks among the scopes it may read,
    /// in storage order, cut as [`feed::build_batch`] cuts.
    pub async fn serve_pull(&self, requester: NodeRecord, pull: Pull) -> Result<Batch, StoreError> {
        self.read(move |conn| {
            let local = load_vector(conn)?;
            // The runs the requester lacks, and from which seq.
            let mut wanted: HashMap<(Scope, Origin), u64> = HashMap::new();
            for (scope, origin, seq) in local.iter() {
                let have = pull.have.get(scope, origin);
                let asked = pull.scopes.is_empty() || pull.scopes.contains(scope);
                if seq > have && asked && auth::may_read(&requester, scope) {
                    wanted.insert((scope.clone(), *origin), have);
                }
            }
            if wanted.is_empty() {
                return Ok(Batch::default());
            }
            let mut start = i64::MAX;
            for ((scope, origin), have) in &wanted {
                let first: Option<i64> = conn
                    .prepare_cached(
                        "SELECT MIN(local_seq) FROM changes
                         WHERE scope = ?1 AND origin_node = ?2 AND origin_epoch = ?3 AND seq > ?4",
                    )?
                    .query_row(
                        params![
                            scope.as_str(),
                            &origin.node.0[..],
                            origin.epoch,
                            *have as i64
                        ],
                        |r| r.get(0),
                    )?;
                if let Some(first) = first {
                    start = start.min(first);
                }
            }
            let mut stmt = conn.prepare_cached(
                "SELECT origin_node, origin_epoch, seq, prev, doc_id, scope, hash, bytes, signature, refused, kind
                 FROM changes WHERE local_seq >= ?1 ORDER BY local_seq",
            )?;
            let mut rows = stmt.query([start])?;
            let mut failure: Option<StoreError> = None;
            let entries = std::iter::from_fn(|| {
                loop {
                    let row = match rows.next() {
                        Ok(Some(row)) => row,
                        Ok(None) => return None,
                        Err(e) => {
                            failure = Some(e.into());
                            return None;
                        }
                    };
                    let entry = (|| -> Result<Option<LogEntry>, StoreError> {
                        let origin = origin_of(row.get(0)?, row.get(1)?)?;
                        let scope_text: String = row.get(5)?;
                        let Some(scope) = Scope::parse(&scope_text) else {
                            return Ok(None);
                        };
                        let seq = row.get::<_, i64>(2)? as u64;
                        match wanted.get(&(scope.clone(), origin)) {
                            Some(have) if seq > *have => {}
                            _ => return Ok(None),
                        }
                        let doc_text: String = row.get(4)?;
                        let doc = DocId::parse(&doc_text).ok_or_else(|| {
                            StoreError::Internal(format!("stored document id {doc_text:?}"))
                        })?;
                        let envelope = Envelope {
                            origin,
                            seq,
                            prev: row.get::<_, i64>(3)? as u64,
                            kind: row
                                .get::<_, Option<String>>(10)?
                                .and_then(|k| DocKind::parse(&k))
                                .unwrap_or_else(|| kind_of(&scope)),
                            doc,
                            scope,
                            hash: bytes32(Some(row.get(6)?)).unwrap_or([0; 32]),
                            change: row.get(7)?,
                            refused: row.get(9)?,
                        };
                        Ok(Some(LogEntry {
                            envelope,
                            signature: bytes64(row.get(8)?),
                        }))
                    })();
                    match entry {
                        Ok(Some(entry)) => return Some(entry),
                        Ok(None) => continue,
                        Err(e) => {
                            failure = Some(e);
                            return None;
                        }
                    }
                }
            });
            let batch = feed::build_batch(entries, pull.max_bytes.clamp(1024, 16 << 20) as usize);
            match failure {
                Some(e) => Err(e),
                None => Ok(batch),
            }
        })
        .await
    }

    /// Checks a batch and applies what passes, in one transaction: documents, change
    /// log, derived rows and vector move together, or not at all.
    pub async fn receive_batch(&self, batch: Batch) -> Result<Ack, StoreError> {
        let parsed = tokio::task::spawn_blocking(move || ParsedBatch::parse(batch))
            .await
            .map_err(|e| StoreError::Internal(format!("parsing a batch failed: {e}")))?;
        self.receive_parsed(parsed).await
    }

    /// [`Store::receive_batch`] for a batch whose changes were parsed at decoding: one
    /// pulled from the parent. It wakes nothing: the parent has it.
    pub async fn receive_parsed(&self, parsed: ParsedBatch) -> Result<Ack, StoreError> {
        self.receive_from(parsed, Via::Parent).await
    }

    /// A batch read from a sneakernet bundle.
    pub async fn receive_bundle(&self, parsed: ParsedBatch) -> Result<Ack, StoreError> {
        self.receive_from(parsed, Via::File).await
    }

    /// [`Store::receive_parsed`] for a batch `child` pushed: what it brings that is new
    /// here may be new to the parent too, so once it is committed the sync driver is woken
    /// to pass it on (see [`Store::outgoing`]). A push of duplicates wakes nothing.
    pub async fn receive_pushed(
        &self,
        child: NodeId,
        parsed: ParsedBatch,
    ) -> Result<Ack, StoreError> {
        self.receive_from(parsed, Via::Child(child)).await
    }

    async fn receive_from(&self, parsed: ParsedBatch, via: Via) -> Result<Ack, StoreError> {
        let pushed = matches!(via, Via::Child(_));
        if parsed.changes.len() != parsed.batch.envelopes.len() {
            return Err(StoreError::Internal(
                "a parsed batch needs one change per envelope".into(),
            ));
        }
        // Rows are written without a savepoint per document (a nested savepoint copies
        // every page it touches: it tripled the hall's time on a bulk push). Should a write
        // of derived rows fail all the same, the whole batch rolls back and runs once more
        // with each document's rows isolated, so the failure is reported for that document
        // and the rest of the batch goes on (see `materialize`).
        let again = parsed.batch.clone();
        let run = move |parsed: ParsedBatch, isolate: bool| {
            move |ctx: &mut WriteCtx| {
                ctx.isolate_rows = isolate;
                let ack = receive(ctx, parsed, via);
                ctx.isolate_rows = false;
                let ack = ack?;
                if pushed && ack.applied > 0 {
                    ctx.pass_on();
                }
                Ok(ack)
            }
        };
        // Alone in its transaction: no savepoint keeps a copy of every index page a
        // batch of old cases changes (`WriterHandle::run_alone`).
        match self.write_alone(run(parsed, false)).await {
            Err(error) if !error.is_fatal() => {
                tracing::warn!(error = %error, "applying a batch failed; applying it again with each document's rows isolated");
                let parsed = tokio::task::spawn_blocking(move || ParsedBatch::parse(again))
                    .await
                    .map_err(|e| StoreError::Internal(format!("parsing a batch failed: {e}")))?;
                self.write_alone(run(parsed, true)).await
            }
            other => other,
        }
    }

    /// Records a peer this node knows first-hand.
    pub async fn pin_peer(
        &self,
        record: NodeRecord,
        relation: Relation,
        url: Option<String>,
    ) -> Result<(), StoreError> {
        self.write(move |ctx| {
            ctx.conn.execute(
                "INSERT INTO peers (node_id, relation, record_json, url) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (node_id) DO UPDATE SET relation = excluded.relation,
                     record_json = excluded.record_json, url = COALESCE(excluded.url, peers.url)",
                params![
                    record.node.to_hex(),
                    relation.as_str(),
                    serde_json::to_string(&record).expect("serializes"),
                    url
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// The peers this node knows first-hand.
    pub async fn peers(&self) -> Result<Vec<PeerStatus>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT record_json, relation, url, last_ok_ms, last_error, last_error_ms, known_vector, known_vector_ms,
                        clock_offset_ms
                 FROM peers ORDER BY relation, node_id",
            )?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        (r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?),
                        (r.get(3)?, r.get(4)?, r.get(5)?),
                        (r.get::<_, Option<Vec<u8>>>(6)?, r.get::<_, Option<i64>>(7)?),
                        r.get::<_, Option<i64>>(8)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            let local = load_vector(conn)?;
            let mut peers = Vec::with_capacity(rows.len());
            for ((json, relation, url), (last_ok_ms, last_error, last_error_ms), known, clock_offset_ms) in rows {
                let Ok(record) = serde_json::from_str::<NodeRecord>(&json) else {
                    continue;
                };
                let pending = match known {
                    (Some(bytes), Some(at)) => match Ack::decode(&bytes) {
                        Ok(ack) => Some((count_lacking(conn, &local, &record, &ack.have)?, at)),
                        Err(_) => None,
                    },
                    _ => None,
                };
                peers.push(PeerStatus {
                    record,
                    relation: Relation::parse(&relation),
                    url,
                    last_ok_ms,
                    last_error,
                    last_error_ms,
                    pending,
                    clock_offset_ms,
                });
            }
            Ok(peers)
        })
        .await
    }

    /// Notes what a peer holds, as it just told us.
    pub async fn record_peer_vector(
        &self,
        node: NodeId,
        have: VersionVector,
    ) -> Result<(), StoreError> {
        let waits: Vec<(Vec<u8>, u32, i64, String)> = have
            .iter()
            .map(|(scope, origin, seq)| {
                (
                    origin.node.0.to_vec(),
                    origin.epoch,
                    seq as i64,
                    scope.to_string(),
                )
            })
            .collect();
        let bytes = Ack {
            have,
            ..Ack::default()
        }
        .encode();
        self.write(move |ctx| {
            ctx.conn.execute(
                "UPDATE peers SET known_vector = ?2, known_vector_ms = ?3 WHERE node_id = ?1",
                params![node.to_hex(), bytes, now_ms()],
            )?;
            // What the peer waited on and now holds is no longer news.
            let mut clear = ctx.conn.prepare_cached(
                "DELETE FROM peer_refusals WHERE peer = ?1 AND waiting = 1
                 AND origin_node = ?2 AND origin_epoch = ?3 AND seq <= ?4 AND scope = ?5",
            )?;
            for (origin_node, epoch, seq, scope) in &waits {
                clear.execute(params![node.to_hex(), origin_node, epoch, seq, scope])?;
            }
            Ok(())
        })
        .await
    }

    /// Keeps what a peer told us it refused of what this node sent it (or waits on).
    pub async fn record_peer_notes(
        &self,
        peer: NodeId,
        notes: Vec<ChangeNote>,
    ) -> Result<(), StoreError> {
        self.write(move |ctx| {
            let mut stmt = ctx.conn.prepare_cached(
                "INSERT INTO peer_refusals (peer, origin_node, origin_epoch, seq, scope, doc_id, waiting, code, reason, noted_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                 ON CONFLICT (peer, origin_node, origin_epoch, seq, scope) DO UPDATE SET
                     waiting = excluded.waiting, code = excluded.code, reason = excluded.reason,
                     noted_ms = excluded.noted_ms",
            )?;
            for note in notes.iter().take(feed_notes_cap()) {
                stmt.execute(params![
                    peer.to_hex(),
                    &note.origin.node.0[..],
                    note.origin.epoch,
                    note.seq as i64,
                    note.scope.as_str(),
                    note.doc.as_str(),
                    note.waiting,
                    note.code,
                    note.reason,
                    now_ms(),
                ])?;
            }
            Ok(())
        })
        .await
    }

    /// What peers refused (or wait on) of what this node sent them, newest first.
    pub async fn peer_refusals(&self, limit: u32) -> Result<Vec<PeerRefusal>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT peer, origin_node, origin_epoch, seq, scope, doc_id, waiting, code, reason, noted_ms
                 FROM peer_refusals ORDER BY noted_ms DESC LIMIT ?1",
            )?;
            let rows = stmt
                .query_map([limit], |r| {
                    let node: Vec<u8> = r.get(1)?;
                    Ok(PeerRefusal {
                        peer: r.get(0)?,
                        origin: format!("{}.{}", yizhan_sync::ids::hex(&node), r.get::<_, u32>(2)?),
                        seq: r.get::<_, i64>(3)? as u64,
                        scope: r.get(4)?,
                        doc_id: r.get(5)?,
                        waiting: r.get(6)?,
                        code: r.get(7)?,
                        reason: r.get(8)?,
                        noted_ms: r.get(9)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// How many changes peers refused, and how many they wait on, of what this node sent.
    pub async fn peer_refusal_counts(&self) -> Result<(u64, u64), StoreError> {
        self.read(|conn| {
            Ok(conn.query_row(
                "SELECT count(*) FILTER (WHERE NOT waiting), count(*) FILTER (WHERE waiting) FROM peer_refusals",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )?)
        })
        .await
    }

    /// The changes this node refused lately (30 days, newest first) of what it pulled from
    /// its parent, to tell the parent in the next hello.
    pub async fn recent_refusals(&self, limit: u32) -> Result<Vec<ChangeNote>, StoreError> {
        self.read(move |conn| {
            let since = now_ms() - 30 * 86_400_000;
            let mut stmt = conn.prepare_cached(
                "SELECT origin_node, origin_epoch, seq, scope, doc_id, code, reason FROM quarantine
                 WHERE received_ms >= ?1 AND via = 'parent' ORDER BY id DESC LIMIT ?2",
            )?;
            let mut rows = stmt.query(params![since, limit])?;
            let mut notes = Vec::new();
            while let Some(row) = rows.next()? {
                let origin = origin_of(row.get(0)?, row.get(1)?)?;
                let (Some(scope), Some(doc)) = (
                    Scope::parse(&row.get::<_, String>(3)?),
                    DocId::parse(&row.get::<_, String>(4)?),
                ) else {
                    continue;
                };
                notes.push(ChangeNote {
                    scope,
                    origin,
                    seq: row.get::<_, i64>(2)? as u64,
                    doc,
                    waiting: false,
                    code: row.get(5)?,
                    reason: row.get(6)?,
                });
            }
            Ok(notes)
        })
        .await
    }

    /// Notes the peer's clock minus this node's, as the last hello showed it.
    pub async fn record_clock_offset(
        &self,
        node: NodeId,
        offset_ms: i64,
    ) -> Result<(), StoreError> {
        self.write(move |ctx| {
            ctx.conn.execute(
                "UPDATE peers SET clock_offset_ms = ?2 WHERE node_id = ?1",
                params![node.to_hex(), offset_ms],
            )?;
            Ok(())
        })
        .await
    }

    /// Notes how the last sync with a peer went.
    pub async fn record_link_result(
        &self,
        node: NodeId,
        result: Result<(), String>,
    ) -> Result<(), StoreError> {
        self.write(move |ctx| {
            let now = now_ms();
            match result {
                Ok(()) => ctx.conn.execute(
                    "UPDATE peers SET last_ok_ms = ?2 WHERE node_id = ?1",
                    params![node.to_hex(), now],
                )?,
                Err(error) => ctx.conn.execute(
                    "UPDATE peers SET last_error = ?2, last_error_ms = ?3 WHERE node_id = ?1",
                    params![node.to_hex(), error, now],
                )?,
            };
            Ok(())
        })
        .await
    }

    /// Changes this node quarantined, newest first.
    pub async fn quarantined(&self, limit: u32) -> Result<Vec<QuarantinedChange>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT received_ms, origin_node, origin_epoch, seq, scope, doc_id, reason, code FROM quarantine
                 ORDER BY id DESC LIMIT ?1",
            )?;
            let rows = stmt
                .query_map([limit], |r| {
                    let node: Vec<u8> = r.get(1)?;
                    Ok(QuarantinedChange {
                        received_ms: r.get(0)?,
                        origin: format!("{}.{}", yizhan_sync::ids::hex(&node), r.get::<_, u32>(2)?),
                        seq: r.get::<_, i64>(3)? as u64,
                        scope: r.get(4)?,
                        doc_id: r.get(5)?,
                        reason: r.get(6)?,
                        code: r.get(7)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// How many documents have changes applied but rows not derived (see `underived`).
    pub async fn underived_count(&self) -> Result<u64, StoreError> {
        self.read(|conn| {
            Ok(
                conn.query_row("SELECT count(*) FROM underived", [], |r| r.get::<_, i64>(0))?
                    as u64,
            )
        })
        .await
    }

    pub async fn quarantine_count(&self) -> Result<u64, StoreError> {
        self.read(|conn| {
            Ok(conn.query_row("SELECT count(*) FROM quarantine", [], |r| {
                r.get::<_, i64>(0)
            })? as u64)
        })
        .await
    }

    /// Issues a one-time enrollment code for a child of `division` and `role`, valid
    /// until `expires_ms`; only its hash is stored.
    pub async fn create_enroll_code(
        &self,
        code: String,
        division: DivisionCode,
        role: NodeRole,
        expires_ms: u64,
    ) -> Result<(), StoreError> {
        self.write(move |ctx| {
            let hash: [u8; 32] = Sha256::digest(code.as_bytes()).into();
            ctx.conn.execute(
                "INSERT INTO enroll_codes (code_hash, division, role, created_ms, expires_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![&hash[..], division.as_str(), role.as_str(), now_ms(), expires_ms as i64],
            )?;
            Ok(())
        })
        .await
    }

    /// Enrolls a child with a one-time code: checks the code, gives the child its serial
    /// segment, records it in this hall's registry (a signed change that flows to the
    /// subtree and up), pins it. Returns the records the child should pin (this hall and
    /// the nodes above it) and the child's record as registered.
    pub async fn enroll_child(
        &self,
        code: String,
        mut child: NodeRecord,
        now: u64,
    ) -> Result<Enrolled, StoreError> {
        self.write(move |ctx| {
            let hash: [u8; 32] = Sha256::digest(code.trim().as_bytes()).into();
            let found: Option<(String, String, i64, Option<i64>)> = ctx
                .conn
                .query_row(
                    "SELECT division, role, expires_ms, used_ms FROM enroll_codes WHERE code_hash = ?1",
                    [&hash[..]],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            let refused = |why: &str| StoreError::Forbidden(Words::new("enrollment_refused").text("why", why));
            let (division, role, expires_ms, used_ms) = found.ok_or_else(|| refused("the code is not known here; ask the hall for a new one"))?;
            if used_ms.is_some() {
                return Err(refused("the code was already used; ask the hall for a new one"));
            }
            if (now as i64) > expires_ms {
                return Err(refused("the code has expired; ask the hall for a new one"));
            }
            if child.division.as_str() != division || child.role.as_str() != role {
                return Err(refused(&format!(
                    "the code is for a {role} of {division}, but this node is a {} of {}",
                    child.role.as_str(),
                    child.division
                )));
            }
            if !child.is_consistent() {
                return Err(StoreError::Invalid(Words::new("key_mismatch")));
            }
            let own = ctx.identity.record.clone();
            if !auth::may_vouch(&own, &child) {
                return Err(refused("that division is not inside this hall's division"));
            }
            child.enrolled_by = own.node;
            child.enrolled_ms = now;
            child.revoked = None;
            // The child's part of the serial numbers: the next this hall gives out. A hall
            // with no segment of its own yet (enrolled before halls gave them) gives none;
            // its children then number with provisional segments.
            let mut own_with_segment = own.clone();
            own_with_segment.segment = own_segment(&ctx.conn, &own)?;
            let root = matches!(
                own.division.level(),
                yizhan_sync::domain::codes::DivisionLevel::City
                    | yizhan_sync::domain::codes::DivisionLevel::District
            );
            child.segment = if own_with_segment.segment.is_some() || root {
                let registry = load_registry(&ctx.conn)?;
                Some(
                    auth::assign_segment(&own_with_segment, &child, registry.records())
                        .map_err(|e| refused(&e.to_string()))?,
                )
            } else {
                None
            };
            ctx.conn.execute(
                "UPDATE enroll_codes SET used_ms = ?2, used_by = ?3 WHERE code_hash = ?1",
                params![&hash[..], now as i64, child.node.to_hex()],
            )?;
            write_registry(ctx, &[child.clone()], now)?;
            ctx.conn.execute(
                "INSERT INTO peers (node_id, relation, record_json) VALUES (?1, 'child', ?2)
                 ON CONFLICT (node_id) DO UPDATE SET relation = 'child', record_json = excluded.record_json",
                params![child.node.to_hex(), serde_json::to_string(&child).expect("serializes")],
            )?;
            let mut chain = vec![own_with_segment];
            let mut stmt = ctx.conn.prepare_cached("SELECT record_json FROM peers WHERE relation IN ('parent', 'ancestor')")?;
            for json in stmt.query_map([], |r| r.get::<_, String>(0))? {
                if let Ok(record) = serde_json::from_str(&json?) {
                    chain.push(record);
                }
            }
            Ok(Enrolled { chain, record: child })
        })
        .await
    }

    /// Keeps the serial-number segment the enrolling hall gave this node; it takes effect
    /// at the next start (enrollment happens with the node stopped).
    pub async fn set_own_segment(&self, segment: Segment) -> Result<(), StoreError> {
        self.write(move |ctx| {
            ctx.conn.execute(
                "INSERT INTO meta (key, value) VALUES ('segment', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [segment.as_str()],
            )?;
            Ok(())
        })
        .await
    }

    /// Revokes a node this hall (or one below it) enrolled: its changes up to what this
    /// hall holds stay valid, later ones are refused everywhere the revocation reaches.
    pub async fn revoke(
        &self,
        node: NodeId,
        reason: String,
        now: u64,
    ) -> Result<NodeRecord, StoreError> {
        self.write(move |ctx| {
            let registry = load_registry(&ctx.conn)?;
            let mut record = registry
                .get(&node)
                .cloned()
                .ok_or_else(|| StoreError::NotFound { what: format!("node {node} in this hall's registry") })?;
            let own = ctx.identity.record.clone();
            if record.node == own.node || !record.division.is_within(&own.division) {
                return Err(StoreError::Forbidden(Words::new("not_below_this_hall").text("node", node.to_string())));
            }
            let mut accepted_up_to = std::collections::BTreeMap::new();
            let mut stmt = ctx.conn.prepare_cached("SELECT origin_epoch, MAX(seq) FROM changes WHERE origin_node = ?1 GROUP BY origin_epoch")?;
            for row in stmt.query_map([&node.0[..]], |r| Ok((r.get::<_, u32>(0)?, r.get::<_, i64>(1)?)))? {
                let (epoch, seq) = row?;
                accepted_up_to.insert(epoch, seq as u64);
            }
            drop(stmt);
            record.revoked = Some(Revocation { at_ms: now, by: own.node, reason, accepted_up_to });
            write_registry(ctx, std::slice::from_ref(&record), now)?;
            ctx.conn.execute(
                "UPDATE peers SET record_json = ?2 WHERE node_id = ?1",
                params![node.to_hex(), serde_json::to_string(&record).expect("serializes")],
            )?;
            Ok(record)
        })
        .await
    }
}

/// Writes records into this hall's registry document (creating it with its own record).
fn write_registry(ctx: &mut WriteCtx, records: &[NodeRecord], now: u64) -> Result<(), StoreError> {
    let own = ctx.identity.record.clone();
    let scope = Scope::registry(&own.division);
    let id = doc::registry_doc_id(&own.division);
    let origin = ctx.origin;
    match ctx.doc_mut(&id) {
        Ok(document) => doc::put_records(document, &origin, records, now)
            .map_err(|e| StoreError::Internal(e.to_string()))?,
        Err(StoreError::NotFound { .. }) => {
            let mut all = vec![own];
            all.extend_from_slice(records);
            let (_, document) = doc::new_registry(&origin, &scope, &all, now)
                .map_err(|e| StoreError::Internal(e.to_string()))?;
            ctx.insert_doc(id.clone(), document);
        }
        Err(e) => return Err(e),
    }
    ctx.persist_local_change(&id, DocKind::Registry, &scope, now)?;
    let registry =
        doc::read_registry(ctx.doc_mut(&id)?).map_err(|e| StoreError::Internal(e.to_string()))?;
    store_registry_rows(&ctx.conn, "", &registry)
}

/// Checks and applies a batch inside the writer's transaction, with the engine's rules.
fn receive(ctx: &mut WriteCtx, parsed: ParsedBatch, via: Via) -> Result<Ack, StoreError> {
    let own = ctx.identity.record.clone();
    let mut log = StoreLog {
        ctx,
        own,
        via,
        received_ms: now_ms(),
        heads: HashMap::new(),
        newest: Hlc::default(),
        last_applied: HashMap::new(),
        underived: Vec::new(),
        since_snapshot: HashMap::new(),
        applied: HashMap::new(),
        item_facts: HashMap::new(),
    };
    // A batch of cases is applied on two threads: the engine on the apply thread, its
    // writes here (`store::ingest`); the isolated retry and other kinds on this one.
    let two_threads = !log.ctx.isolate_rows && log.ctx.applier.is_some() && ingest::takes(&parsed);
    let mut ack = if two_threads {
        match ingest::receive_on_two_threads(&mut log, parsed)? {
            Ok(ack) => {
                log.ctx.two_thread_batches += 1;
                ack
            }
            Err(parsed) => engine::apply_batch(&mut log, parsed)?,
        }
    } else {
        engine::apply_batch(&mut log, parsed)?
    };
    let StoreLog {
        ctx,
        heads,
        newest,
        underived,
        ..
    } = log;
    for ((scope, origin), seq) in heads {
        advance_run_head(&ctx.conn, &scope, &origin, seq)?;
        ctx.advanced(&scope, &origin, seq);
    }
    ctx.observe(newest);
    ack.notes.extend(underived);
    ack.quarantined = ctx
        .conn
        .query_row("SELECT count(*) FROM quarantine", [], |r| r.get(0))?;
    ack.have = load_vector(&ctx.conn)?;
    Ok(ack)
}

/// The store as the engine's [`ChangeLog`], inside the writer's transaction.
pub(super) struct StoreLog<'a> {
    ctx: &'a mut WriteCtx,
    own: NodeRecord,
    /// Where the batch came from, kept with what is refused of it.
    via: Via,
    received_ms: i64,
    /// The newest seq appended per run, written to `run_heads` once, at the end.
    heads: HashMap<(Scope, Origin), u64>,
    /// The newest event time seen, for the node's clock.
    newest: Hlc,
    /// The last change applied to each document, to name it if its rows fail.
    last_applied: HashMap<DocId, Envelope>,
    /// Documents whose changes applied but whose rows could not be derived here.
    underived: Vec<ChangeNote>,
    /// Documents taken out of the cache for the batch, with the changes each had taken
    /// since its snapshot (`store::snapshot`); a document missing here is new.
    since_snapshot: HashMap<DocId, u32>,
    /// Changes applied per document in this batch.
    applied: HashMap<DocId, u32>,
    /// What [`ChangeLog::item_facts`] found, per item, version and division: read once
    /// per batch rather than once per new case (each read parsed the item's whole JSON).
    /// Exact, since item and department rows are written only after the engine is done
    /// with the batch (`put_doc`).
    item_facts: HashMap<(String, u32, DivisionCode), Option<yizhan_sync::effect::ItemFacts>>,
}

impl StoreLog<'_> {
    /// How many changes since its snapshot the document just taken had.
    pub(super) fn since_taken(&self, id: &DocId) -> u32 {
        self.since_snapshot.get(id).copied().unwrap_or(0)
    }

    /// Takes a document the batch changes out of the cache, or reads its stored bytes for
    /// the apply thread to load (`store::ingest`); `None` if this node holds none.
    pub(super) fn take_for_batch(
        &mut self,
        id: &DocId,
    ) -> Result<Option<ingest::Taken>, StoreError> {
        if let Some((document, since)) = self.ctx.take_cached(id) {
            self.since_snapshot.insert(id.clone(), since);
            return Ok(Some(ingest::Taken::Loaded(Box::new(document), since)));
        }
        Ok(
            snapshot::Stored::read(&self.ctx.conn, id.as_str())?.map(|stored| {
                self.since_snapshot.insert(id.clone(), stored.count());
                ingest::Taken::Stored(stored)
            }),
        )
    }

    /// Hands documents taken for the batch and never used back to the cache as they were.
    pub(super) fn put_back_untouched(&mut self, docs: HashMap<DocId, ingest::Taken>) {
        for (id, taken) in docs {
            self.since_snapshot.remove(&id);
            if let ingest::Taken::Loaded(document, since) = taken {
                self.ctx.put_back(id, *document, since);
            }
        }
    }

    /// The calendar years the batch's rows are derived on.
    pub(super) fn calendars(&self) -> Arc<super::calendars::Calendars> {
        self.ctx.calendars()
    }

    /// The apply thread, if there is one.
    pub(super) fn applier(&self) -> Option<&ingest::Applier> {
        self.ctx.applier.as_ref()
    }

    /// After the apply thread stopped: the writer applies every batch alone from now on.
    pub(super) fn forget_applier(&mut self) {
        tracing::error!("the apply thread stopped; the writer applies batches alone");
        self.ctx.applier = None;
    }

    /// What this node's items table says of an item version, for [`ChangeLog::item_facts`].
    fn read_item_facts(
        &mut self,
        impl_code: &str,
        version: u32,
        scope: &Scope,
    ) -> Result<Option<yizhan_sync::effect::ItemFacts>, StoreError> {
        let body: Option<String> = self
            .ctx
            .conn
            .prepare_cached("SELECT body_json FROM items WHERE impl_code = ?1 AND version = ?2")?
            .query_row(params![impl_code, version], |r| r.get(0))
            .optional()?;
        let Some(item) =
            body.and_then(|b| serde_json::from_str::<yizhan_sync::domain::item::Item>(&b).ok())
        else {
            return Ok(None);
        };
        let hall = match &item.decided_by {
            Some(code) => {
                super::departments::department_for(&self.ctx.conn, code, &scope.division())?
                    .map(|d| d.hall)
            }
            None => None,
        };
        let mut parts = Vec::with_capacity(item.parts.len());
        for part in &item.parts {
            let hall = super::departments::department_for(
                &self.ctx.conn,
                &part.department,
                &scope.division(),
            )?
            .map(|d| d.hall);
            parts.push((part.department.clone(), hall));
        }
        Ok(Some(yizhan_sync::effect::ItemFacts {
            version,
            decided_by: item.decided_by,
            hall,
            parts,
            fees: item.fees,
        }))
    }
}

impl ChangeLog for StoreLog<'_> {
    type Error = StoreError;

    fn own(&self) -> &NodeRecord {
        &self.own
    }

    fn own_origin(&self) -> Origin {
        self.ctx.origin
    }

    fn registry(&mut self) -> Result<Registry, StoreError> {
        load_registry(&self.ctx.conn)
    }

    fn run_state(&mut self, scope: &Scope, origin: &Origin) -> Result<RunState, StoreError> {
        run_state(&self.ctx.conn, scope, origin)
    }

    fn is_refused(&mut self, hash: &[u8; 32]) -> Result<bool, StoreError> {
        Ok(self
            .ctx
            .conn
            .prepare_cached("SELECT 1 FROM refused_hashes WHERE hash = ?1")?
            .query_row([&hash[..]], |_| Ok(()))
            .optional()?
            .is_some())
    }

    fn item_facts(
        &mut self,
        impl_code: &str,
        version: u32,
        scope: &Scope,
    ) -> Result<Option<yizhan_sync::effect::ItemFacts>, StoreError> {
        let key = (impl_code.to_string(), version, scope.division());
        if let Some(found) = self.item_facts.get(&key) {
            return Ok(found.clone());
        }
        let found = self.read_item_facts(impl_code, version, scope)?;
        self.item_facts.insert(key, found.clone());
        Ok(found)
    }

    fn take_doc(&mut self, id: &DocId) -> Result<Option<automerge::Automerge>, StoreError> {
        Ok(self.ctx.take_doc(id)?.map(|(document, since)| {
            self.since_snapshot.insert(id.clone(), since);
            document
        }))
    }

    fn append(&mut self, entry: LogEntry, chain: ChainHash) -> Result<(), StoreError> {
        let envelope = &entry.envelope;
        insert_change_row(&self.ctx.conn, envelope, &chain, entry.signature.as_ref())?;
        let head = self
            .heads
            .entry((envelope.scope.clone(), envelope.origin))
            .or_default();
        *head = (*head).max(envelope.seq);
        if envelope.refused.is_none() {
            *self.applied.entry(envelope.doc.clone()).or_default() += 1;
            self.last_applied
                .insert(envelope.doc.clone(), entry.envelope.clone());
        }
        Ok(())
    }

    fn quarantine(&mut self, envelope: &Envelope, refusal: &Refusal) -> Result<(), StoreError> {
        quarantine(
            &self.ctx.conn,
            envelope,
            refusal,
            self.received_ms,
            &self.via,
        )
    }

    fn registry_changed(
        &mut self,
        _id: &DocId,
        document: &automerge::Automerge,
    ) -> Result<(), StoreError> {
        if let Ok(registry) = doc::read_registry(document) {
            store_registry_rows(&self.ctx.conn, "", &registry)?;
        }
        Ok(())
    }

    fn put_doc(
        &mut self,
        id: DocId,
        kind: DocKind,
        scope: Scope,
        document: automerge::Automerge,
        changed: bool,
    ) -> Result<(), StoreError> {
        let held = self.since_snapshot.get(&id).copied();
        let applied = self.applied.get(&id).copied().unwrap_or(0);
        let calendars = self.ctx.calendars();
        let done = Settled::prepare(
            &calendars, id, kind, scope, document, changed, held, applied,
        );
        self.settle(done)
    }
}

impl StoreLog<'_> {
    /// Writes what [`Settled::prepare`] made of a document the batch is done with: its
    /// snapshot when due, its rows (or that they could not be derived), and hands it
    /// back to the cache.
    pub(super) fn settle(&mut self, done: Settled) -> Result<(), StoreError> {
        let Settled {
            id,
            kind,
            scope,
            document,
            changed,
            snapshot,
            rows,
        } = done;
        let held = self.since_snapshot.remove(&id);
        let mut since = held.unwrap_or(0);
        // Removed, not read: the engine may take the document again in a later round of the
        // batch and give it back once more.
        let applied = self.applied.remove(&id).unwrap_or(0);
        if changed {
            since = match snapshot {
                Some(saved) => {
                    snapshot::write_saved(
                        &self.ctx.conn,
                        &id,
                        kind,
                        &scope,
                        &saved,
                        false,
                        now_ms(),
                    )?;
                    0
                }
                None => held.map_or(0, |s| s + applied),
            };
            // The document and its changes are kept whatever happens to its rows: a
            // failure to derive them (a constraint, a bug) is reported, never a stall.
            let rows = rows.unwrap_or_else(|| {
                Err(StoreError::Internal(format!(
                    "the rows of {id} were not derived"
                )))
            });
            match materialize_rows(self.ctx, &id, rows)? {
                Ok(Some(hlc)) => self.newest = self.newest.max(hlc),
                Ok(None) => {}
                Err(error) if error.is_fatal() => return Err(error),
                Err(error) => {
                    tracing::error!(doc.id = %id, error = %error, "the rows of a received document could not be derived");
                    if let Some(envelope) = self.last_applied.get(&id) {
                        self.underived.push(ChangeNote {
                            scope: envelope.scope.clone(),
                            origin: envelope.origin,
                            seq: envelope.seq,
                            doc: id.clone(),
                            waiting: false,
                            code: "cannot_derive".into(),
                            reason: format!("applied, but its rows could not be derived: {error}"),
                        });
                    }
                    record_underived(&self.ctx.conn, &id, &error.to_string())?;
                }
            }
        }
        self.ctx.put_back(id, document, since);
        Ok(())
    }
}

/// A document a batch is done with, and the work on it that needs no database: its
/// snapshot's bytes when one is due and its derived rows. Made on whichever thread ran the
/// engine (`store::ingest`), written by [`StoreLog::settle`] on the writer.
pub(super) struct Settled {
    id: DocId,
    kind: DocKind,
    scope: Scope,
    document: automerge::Automerge,
    changed: bool,
    snapshot: Option<snapshot::Saved>,
    /// `None` when unchanged (nothing to derive).
    rows: Option<Result<Rows, StoreError>>,
}

impl Settled {
    /// `held`: the changes the document had taken since its snapshot when the batch took
    /// it (`None`: new here); `applied`: the changes the batch applied to it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn prepare(
        calendars: &super::calendars::Calendars,
        id: DocId,
        kind: DocKind,
        scope: Scope,
        document: automerge::Automerge,
        changed: bool,
        held: Option<u32>,
        applied: u32,
    ) -> Settled {
        let (snapshot, rows) = if changed {
            // A document new here gets its snapshot at once, unlike a case this node
            // creates: a hall reads a received case back whenever an event arrives for
            // it, and reading it from its changes instead cost a 100,000-case hall's
            // catch-up of 1,000 events about 0.15 s more (the writer reads every change
            // of every case; docs/benchmarks.md).
            let snapshot = match held {
                None => true,
                Some(held) => snapshot::due(kind, held + applied),
            }
            .then(|| snapshot::Saved::of(&document));
            (snapshot, Some(derive_rows(calendars, &id, &document)))
        } else {
            (None, None)
        };
        Settled {
            id,
            kind,
            scope,
            document,
            changed,
            snapshot,
            rows,
        }
    }
}

/// Notes a document whose rows could not be derived (shown in `status`; `yizhan rebuild`
/// derives them again).
fn record_underived(conn: &Connection, id: &DocId, error: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO underived (doc_id, error, at_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT (doc_id) DO UPDATE SET error = excluded.error, at_ms = excluded.at_ms",
    )?
    .execute(params![id.as_str(), error, now_ms()])?;
    Ok(())
}

/// Where a received batch came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    Parent,
    Child(NodeId),
    File,
}

impl Via {
    fn as_text(&self) -> String {
        match self {
            Via::Parent => "parent".into(),
            Via::Child(node) => node.to_hex(),
            Via::File => "file".into(),
        }
    }
}

fn quarantine(
    conn: &Connection,
    envelope: &Envelope,
    refusal: &Refusal,
    received_ms: i64,
    via: &Via,
) -> Result<(), StoreError> {
    let reason = refusal.to_string();
    tracing::warn!(
        sync.origin = %envelope.origin,
        sync.seq = envelope.seq,
        sync.scope = %envelope.scope,
        sync.code = refusal.code(),
        sync.reason = reason,
        "quarantined a change"
    );
    conn.prepare_cached(
        "INSERT OR IGNORE INTO quarantine (received_ms, origin_node, origin_epoch, seq, scope, doc_id, reason, change, code, via)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        received_ms,
        &envelope.origin.node.0[..],
        envelope.origin.epoch,
        envelope.seq as i64,
        envelope.scope.as_str(),
        envelope.doc.as_str(),
        reason,
        &envelope.change,
        refusal.code(),
        via.as_text(),
    ])?;
    Ok(())
}

/// Writes the derived rows of a document changed by received changes, as
/// [`derive_rows`] gave them. The outer error fails the batch (a full disk; or, outside
/// isolation, any failed write, so the batch runs again isolated: see
/// `Store::receive_from`); the inner one is a document whose rows could not be derived,
/// reported while the rest goes on. Isolated, each document's rows are written inside a
/// savepoint, so a failure leaves them as they were.
fn materialize_rows(
    ctx: &mut WriteCtx,
    id: &DocId,
    derived: Result<Rows, StoreError>,
) -> Result<Result<Option<Hlc>, StoreError>, StoreError> {
    // Deriving is pure: a document that does not derive has written nothing.
    let rows = match derived {
        Ok(rows) => rows,
        Err(error) => return Ok(Err(error)),
    };
    let written = if ctx.isolate_rows {
        ctx.conn.execute_batch("SAVEPOINT rows")?;
        let result = write_rows(ctx, id, rows);
        let end = if result.is_ok() {
            "RELEASE rows"
        } else {
            "ROLLBACK TO rows; RELEASE rows"
        };
        ctx.conn.execute_batch(end)?;
        match result {
            Err(error) if error.is_fatal() => return Err(error),
            other => other,
        }
    } else {
        Ok(write_rows(ctx, id, rows)?)
    };
    if written.is_ok() {
        ctx.conn
            .prepare_cached("DELETE FROM underived WHERE doc_id = ?1")?
            .execute([id.as_str()])?;
    }
    Ok(written)
}

/// The rows of a document, derived without writing anything: pure, so it runs on either
/// thread of a received batch (`store::ingest`).
pub(super) fn derive_rows(
    calendars: &super::calendars::Calendars,
    id: &DocId,
    document: &automerge::Automerge,
) -> Result<Rows, StoreError> {
    // A case counts on the calendar of where it is; other kinds use none.
    let calendar = match doc::header(document) {
        Ok((DocKind::Case, scope)) => calendars.for_division(&scope.division()),
        _ => super::calendars::shipped(),
    };
    doc::rows(id, document, &calendar).map_err(|e| StoreError::Corrupt {
        id: id.to_string(),
        message: e.to_string(),
    })
}

/// Writes derived rows; the newest event time of a case, for the node's clock.
fn write_rows(ctx: &mut WriteCtx, id: &DocId, rows: Rows) -> Result<Option<Hlc>, StoreError> {
    match rows {
        Rows::Item(row) => {
            store_item_row(&ctx.conn, "", &row)?;
            ctx.forget_items();
            Ok(None)
        }
        Rows::Case(row, events) => {
            let calendar = match Scope::parse(&row.scope) {
                Some(scope) => ctx.calendar_for(&scope),
                None => super::calendars::shipped(),
            };
            store_case_rows(&ctx.conn, "", &row, &events, &calendar)?;
            Ok(Hlc::parse_hex(&row.updated_hlc))
        }
        Rows::Registry(registry) => {
            store_registry_rows(&ctx.conn, "", &registry)?;
            Ok(None)
        }
        // Notices and supervision records derive their rows by the same rule as where
        // they were written; a calendar year changes the calendars and the deadlines that
        // count on them.
        Rows::Record(record) => {
            match record.kind {
                DocKind::Calendar => ctx.calendars_changed()?,
                DocKind::Notice => {
                    let row = super::notices::notice_row(id, &record).map_err(|message| {
                        StoreError::Corrupt {
                            id: id.to_string(),
                            message,
                        }
                    })?;
                    super::notices::store_notice_row(&ctx.conn, "", &row)?;
                }
                DocKind::Supervision | DocKind::Reply => {
                    super::supervision::store_supervision_rows(&ctx.conn, "", id, &record)?;
                }
                DocKind::Notification => {
                    super::notification::notification_record_row(&ctx.conn, "", id, &record)?;
                }
                DocKind::Staff => {
                    let own = ctx.identity.record.division.clone();
                    super::staff::received_staff_row(&ctx.conn, &own, id, &record)?;
                }
                DocKind::Department => {
                    super::departments::department_record_row(&ctx.conn, "", id, &record)?;
                }
                _ => {}
            }
            Ok(None)
        }
        // An attachment is served from its document; nothing is derived from it.
        Rows::Attachment(..) => Ok(None),
    }
}

/// How many changes here `peer` may read and lacks beyond `have`: one indexed count per
/// run it is behind on.
pub(super) fn count_lacking(
    conn: &Connection,
    local: &VersionVector,
    peer: &NodeRecord,
    have: &VersionVector,
) -> Result<u64, StoreError> {
    let mut total = 0u64;
    for (scope, origin, seq) in local.iter() {
        let theirs = have.get(scope, origin);
        if seq <= theirs || !auth::may_read(peer, scope) {
            continue;
        }
        let n: i64 = conn
            .prepare_cached(
                "SELECT count(*) FROM changes
                 WHERE scope = ?1 AND origin_node = ?2 AND origin_epoch = ?3 AND seq > ?4",
            )?
            .query_row(
                params![
                    scope.as_str(),
                    &origin.node.0[..],
                    origin.epoch,
                    theirs as i64
                ],
                |r| r.get(0),
            )?;
        total += n as u64;
    }
    Ok(total)
}

#[cfg(test)]
pub(crate) mod tests;
