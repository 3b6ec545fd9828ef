//! The store's side of sync: the signed change log, version vectors, answering pulls,
//! applying batches in one transaction, the registry of node keys, enrollment codes,
//! and quarantine.

use std::collections::{BTreeMap, HashMap};

use rusqlite::{Connection, OptionalExtension, params};
use sha2::{Digest, Sha256};
use yizhan_sync::auth::{self, NodeRecord, NodeRole, Registry, Revocation};
use yizhan_sync::doc::{self, Rows};
use yizhan_sync::domain::calendar::Calendar;
use yizhan_sync::domain::codes::DivisionCode;
use yizhan_sync::domain::hlc::Hlc;
use yizhan_sync::envelope::{self, CHAIN_START, ChainHash, Envelope};
use yizhan_sync::feed::{
    self, Ack, Batch, LogEntry, ParsedBatch, Pull, RunState, Verdict, VersionVector,
};
use yizhan_sync::ids::{DocId, DocKind, NodeId, Origin, Scope, ScopeKind};
use yizhan_sync::wire::Message;

use super::writer::{WriteCtx, store_case_rows, store_item_row};
use super::{OpenStoreError, Store, StoreError};
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

/// A change this node refused for good.
#[derive(Clone, Debug)]
pub struct QuarantinedChange {
    pub received_ms: i64,
    pub origin: String,
    pub seq: u64,
    pub scope: String,
    pub doc_id: String,
    pub reason: String,
}

fn scope_kind_doc(scope: &Scope) -> DocKind {
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
        "INSERT INTO changes (origin_node, origin_epoch, seq, prev, doc_id, scope, hash, bytes, chain, signature)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
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
    ])?;
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
            doc,
            kind: scope_kind_doc(&scope),
            scope,
            hash,
            change: Vec::new(),
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
        self.read(load_vector).await
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
                "SELECT origin_node, origin_epoch, seq, prev, doc_id, scope, hash, bytes, signature
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
                            doc,
                            kind: scope_kind_doc(&scope),
                            scope,
                            hash: bytes32(Some(row.get(6)?)).unwrap_or([0; 32]),
                            change: row.get(7)?,
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
    /// pulled from the parent or read from a bundle. It wakes nothing: the parent has it.
    pub async fn receive_parsed(&self, parsed: ParsedBatch) -> Result<Ack, StoreError> {
        self.receive_from(parsed, false).await
    }

    /// [`Store::receive_parsed`] for a batch a child pushed: what it brings that is new
    /// here may be new to the parent too, so once it is committed the sync driver is woken
    /// to pass it on (see [`Store::outgoing`]). A push of duplicates wakes nothing.
    pub async fn receive_pushed(&self, parsed: ParsedBatch) -> Result<Ack, StoreError> {
        self.receive_from(parsed, true).await
    }

    async fn receive_from(&self, parsed: ParsedBatch, pushed: bool) -> Result<Ack, StoreError> {
        if parsed.changes.len() != parsed.batch.envelopes.len() {
            return Err(StoreError::Internal(
                "a parsed batch needs one change per envelope".into(),
            ));
        }
        self.write(move |ctx| {
            let ack = receive(ctx, parsed)?;
            if pushed && ack.applied > 0 {
                ctx.pass_on();
            }
            Ok(ack)
        })
        .await
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
            Ok(())
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
                "SELECT received_ms, origin_node, origin_epoch, seq, scope, doc_id, reason FROM quarantine
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
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
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

    /// Enrolls a child with a one-time code: checks the code, records the child in this
    /// hall's registry (a signed change that flows to the subtree and up), pins it.
    /// Returns the records the child should pin: this hall and the nodes above it.
    pub async fn enroll_child(
        &self,
        code: String,
        mut child: NodeRecord,
        now: u64,
    ) -> Result<Vec<NodeRecord>, StoreError> {
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
            let refused = |why: &str| StoreError::Forbidden(format!("enrollment refused: {why}"));
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
                return Err(StoreError::Invalid("the node id does not match its public key".into()));
            }
            let own = ctx.identity.record.clone();
            if !auth::may_vouch(&own, &child) {
                return Err(refused("that division is not inside this hall's division"));
            }
            child.enrolled_by = own.node;
            child.enrolled_ms = now;
            child.revoked = None;
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
            let mut chain = vec![own];
            let mut stmt = ctx.conn.prepare_cached("SELECT record_json FROM peers WHERE relation IN ('parent', 'ancestor')")?;
            for json in stmt.query_map([], |r| r.get::<_, String>(0))? {
                if let Ok(record) = serde_json::from_str(&json?) {
                    chain.push(record);
                }
            }
            Ok(chain)
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
                return Err(StoreError::Forbidden(format!("node {node} is not below this hall; revoke it from the hall that enrolled it")));
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

/// Checks and applies a batch inside the writer's transaction.
fn receive(ctx: &mut WriteCtx, parsed: ParsedBatch) -> Result<Ack, StoreError> {
    let mut ack = Ack::default();
    let ParsedBatch { batch, changes } = parsed;
    let mut pending = batch.envelopes;
    let mut pending_changes = changes;
    let signatures = batch.signatures;
    let own = ctx.identity.record.clone();
    // Documents changed by this batch, out of the cache until they are saved once each.
    let mut working: BTreeMap<DocId, (Scope, automerge::Automerge)> = BTreeMap::new();
    let received_ms = now_ms();
    // Changes whose origin is unknown may become checkable once a registry in the same
    // batch is applied: retry them while that makes progress.
    for _round in 0..8 {
        let registry = load_registry(&ctx.conn)?;
        let current = Batch {
            envelopes: pending,
            signatures: signatures.clone(),
            more: false,
        };
        let verdicts = {
            let conn = &ctx.conn;
            feed::check_batch(
                &current,
                &|scope, origin| run_state(conn, scope, origin).unwrap_or_default(),
                &registry,
            )
        };
        let mut deferred = Vec::new();
        let mut deferred_changes = Vec::new();
        let mut applied = 0;
        let mut registries_changed = false;
        // The newest seq applied per run, written to `run_heads` once per round.
        let mut heads: HashMap<(Scope, Origin), u64> = HashMap::new();
        let arrived = current.envelopes.into_iter().zip(pending_changes);
        for ((envelope, change), verdict) in arrived.zip(verdicts) {
            match verdict {
                Verdict::Duplicate => ack.duplicates += 1,
                Verdict::Defer(_) => {
                    deferred.push(envelope);
                    deferred_changes.push(change);
                }
                Verdict::Quarantine(reason) => {
                    quarantine(&ctx.conn, &envelope, &reason, received_ms)?
                }
                Verdict::Apply { chain, signature } => {
                    if !auth::may_read(&own, &envelope.scope) {
                        quarantine(
                            &ctx.conn,
                            &envelope,
                            &format!("{} is not meant for this node", envelope.scope),
                            received_ms,
                        )?;
                        continue;
                    }
                    if !working.contains_key(&envelope.doc) {
                        let document = ctx.take_doc(&envelope.doc)?.unwrap_or_default();
                        working.insert(envelope.doc.clone(), (envelope.scope.clone(), document));
                    }
                    let (_, document) = working.get_mut(&envelope.doc).expect("inserted above");
                    let result = match change {
                        Some(change) => doc::apply_parsed(document, change),
                        None => Err(doc::DocError::BadChange(
                            "the bytes are not an Automerge change".into(),
                        )),
                    };
                    match result {
                        Ok(()) => {
                            insert_change_row(&ctx.conn, &envelope, &chain, signature.as_ref())?;
                            let head = heads
                                .entry((envelope.scope.clone(), envelope.origin))
                                .or_default();
                            *head = (*head).max(envelope.seq);
                            registries_changed |= envelope.scope.kind() == ScopeKind::Registry;
                            applied += 1;
                        }
                        Err(e) => quarantine(&ctx.conn, &envelope, &e.to_string(), received_ms)?,
                    }
                }
            }
        }
        for ((scope, origin), seq) in heads {
            advance_run_head(&ctx.conn, &scope, &origin, seq)?;
        }
        ack.applied += applied;
        if deferred.is_empty() || applied == 0 {
            ack.deferred += deferred.len() as u32;
            break;
        }
        // Derived registry rows first, so the next round knows the new keys.
        if registries_changed {
            for (scope, document) in working.values() {
                if scope.kind() == ScopeKind::Registry
                    && let Ok(registry) = doc::read_registry(document)
                {
                    store_registry_rows(&ctx.conn, "", &registry)?;
                }
            }
        }
        pending = deferred;
        pending_changes = deferred_changes;
    }
    let mut newest = Hlc::default();
    for (id, (scope, document)) in working {
        if document.get_heads().is_empty() {
            continue;
        }
        if let Some(hlc) = materialize(ctx, &id, &scope, &document)? {
            newest = newest.max(hlc);
        }
        ctx.put_back(id, document);
    }
    ctx.observe(newest);
    ack.quarantined = ctx
        .conn
        .query_row("SELECT count(*) FROM quarantine", [], |r| r.get(0))?;
    ack.have = load_vector(&ctx.conn)?;
    Ok(ack)
}

fn quarantine(
    conn: &Connection,
    envelope: &Envelope,
    reason: &str,
    received_ms: i64,
) -> Result<(), StoreError> {
    tracing::warn!(
        sync.origin = %envelope.origin,
        sync.seq = envelope.seq,
        sync.scope = %envelope.scope,
        sync.reason = reason,
        "quarantined a change"
    );
    conn.prepare_cached(
        "INSERT OR IGNORE INTO quarantine (received_ms, origin_node, origin_epoch, seq, scope, doc_id, reason, change)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
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
    ])?;
    Ok(())
}

/// Saves a document changed by received changes and refreshes its derived rows. Returns
/// the newest event time of a case, for the node's clock.
fn materialize(
    ctx: &mut WriteCtx,
    id: &DocId,
    scope: &Scope,
    document: &automerge::Automerge,
) -> Result<Option<Hlc>, StoreError> {
    ctx.save_received(id, scope_kind_doc(scope), scope, document)?;
    match doc::rows(id, document, Calendar::china()) {
        Ok(Rows::Item(row)) => {
            store_item_row(&ctx.conn, "", &row)?;
            ctx.forget_items();
            Ok(None)
        }
        Ok(Rows::Case(row, events)) => {
            store_case_rows(&ctx.conn, "", &row, &events)?;
            Ok(Hlc::parse_hex(&row.updated_hlc))
        }
        Ok(Rows::Registry(registry)) => {
            store_registry_rows(&ctx.conn, "", &registry)?;
            Ok(None)
        }
        Err(e) => {
            // The changes are authentic but their content does not read (a newer schema,
            // say): keep them, log it, and leave the rows as they were.
            tracing::warn!(doc.id = %id, error = %e, "a synced document cannot be read yet");
            Ok(None)
        }
    }
}

/// How many changes here `peer` may read and lacks beyond `have`: one indexed count per
/// run it is behind on.
fn count_lacking(
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
mod tests;
