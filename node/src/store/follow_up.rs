//! Queries for following cases up: how far a case has travelled towards the parent,
//! the cases transferred and whether they were signed for, and the names of nodes.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, params};
use yizhan_sync::feed::Ack;
use yizhan_sync::ids::Scope;
use yizhan_sync::wire::Message;

use super::sync::origin_of;
use super::{Store, StoreError};

/// Where a case's changes have got to on the way up (the case page's sync state).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseSync {
    /// The parent this node enrolled with, if any.
    pub parent: Option<String>,
    /// Changes of the case this node holds.
    pub changes: u32,
    /// Of those, how many the parent said it holds at the last session.
    pub at_parent: u32,
    /// When the parent last said what it holds.
    pub known_ms: Option<i64>,
}

impl CaseSync {
    /// Every change of the case is known to be at the parent.
    pub fn reached_parent(&self) -> bool {
        self.parent.is_some() && self.changes > 0 && self.at_parent == self.changes
    }
}

/// A transferred case, for the follow-up list (转办跟踪).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransferRow {
    pub id: String,
    pub serial_no: Option<String>,
    pub item_name: String,
    pub status: String,
    pub conflict: bool,
    pub holder: String,
    pub holder_node: Option<String>,
    pub signed_on: Option<String>,
    /// Signed for by the sender on behalf of a department without a node.
    pub signed_on_behalf: bool,
    pub committed_due: Option<String>,
}

/// Which transfers to list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transfers {
    /// Cases this node holds that went to another office: not to `own_node`.
    Sent { own_node: String },
    /// Cases transferred to `own_node`.
    Received { own_node: String },
}

impl Store {
    /// How many of a case's changes the parent holds, by the vector it last sent.
    pub async fn case_sync(&self, case_id: String) -> Result<CaseSync, StoreError> {
        self.read(move |conn| {
            let parent: Option<(String, Option<Vec<u8>>, Option<i64>)> = conn
                .query_row(
                    "SELECT record_json, known_vector, known_vector_ms FROM peers
                     WHERE relation = 'parent' LIMIT 1",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            let have = parent
                .as_ref()
                .and_then(|(_, bytes, _)| bytes.as_ref())
                .and_then(|bytes| Ack::decode(bytes).ok())
                .map(|ack| ack.have);
            let mut changes = 0u32;
            let mut at_parent = 0u32;
            let mut stmt = conn.prepare_cached(
                "SELECT scope, origin_node, origin_epoch, seq FROM changes WHERE doc_id = ?1",
            )?;
            let mut rows = stmt.query([&case_id])?;
            while let Some(row) = rows.next()? {
                changes += 1;
                let (Some(have), Some(scope)) =
                    (have.as_ref(), Scope::parse(&row.get::<_, String>(0)?))
                else {
                    continue;
                };
                let origin = origin_of(row.get(1)?, row.get(2)?)?;
                if have.get(&scope, &origin) >= row.get::<_, i64>(3)? as u64 {
                    at_parent += 1;
                }
            }
            let name = parent.as_ref().map(|(json, _, _)| {
                serde_json::from_str::<yizhan_sync::auth::NodeRecord>(json)
                    .map(|r| r.name)
                    .unwrap_or_default()
            });
            Ok(CaseSync {
                parent: name,
                changes,
                at_parent,
                known_ms: parent.and_then(|(_, _, ms)| ms),
            })
        })
        .await
    }

    /// Names of the nodes this node knows (its own, its parent and ancestors, its
    /// children, and every node in the registries it holds), by node id in hex.
    pub async fn node_names(&self) -> Result<HashMap<String, String>, StoreError> {
        self.read(|conn| {
            let mut names = HashMap::new();
            for sql in [
                "SELECT node_id, record_json FROM registry_records",
                "SELECT node_id, record_json FROM peers",
            ] {
                let mut stmt = conn.prepare_cached(sql)?;
                let mut rows = stmt.query([])?;
                while let Some(row) = rows.next()? {
                    let json: String = row.get(1)?;
                    if let Ok(record) = serde_json::from_str::<yizhan_sync::auth::NodeRecord>(&json)
                    {
                        names.insert(row.get::<_, String>(0)?, record.name);
                    }
                }
            }
            Ok(names)
        })
        .await
    }

    /// The halls above this node a case can be transferred to: (node id hex, name).
    pub async fn transfer_targets(&self) -> Result<Vec<(String, String)>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT node_id, record_json FROM peers WHERE relation IN ('parent', 'ancestor')
                 ORDER BY relation DESC, node_id",
            )?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows
                .into_iter()
                .filter_map(|(id, json)| {
                    serde_json::from_str::<yizhan_sync::auth::NodeRecord>(&json)
                        .ok()
                        .filter(|r| r.revoked.is_none())
                        .map(|r| (id, r.name))
                })
                .collect())
        })
        .await
    }

    /// Transferred cases, those not yet signed for first, newest first; at most 500.
    pub async fn transfers(&self, which: Transfers) -> Result<Vec<TransferRow>, StoreError> {
        self.read(move |conn| {
            let (condition, node) = match &which {
                Transfers::Sent { own_node } => (
                    "holder IS NOT NULL AND (holder_node IS NULL OR holder_node != ?1)",
                    own_node,
                ),
                Transfers::Received { own_node } => ("holder_node = ?1", own_node),
            };
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT id, serial_no, item_name, status, conflict, holder, holder_node, signed_on,
                        committed_due, signed_on_behalf
                 FROM cases WHERE {condition}
                 ORDER BY signed_on IS NOT NULL, created_ms DESC, id LIMIT 500"
            ))?;
            let rows = stmt
                .query_map(params![node], |r| {
                    Ok(TransferRow {
                        id: r.get(0)?,
                        serial_no: r.get(1)?,
                        item_name: r.get(2)?,
                        status: r.get(3)?,
                        conflict: r.get(4)?,
                        holder: r.get(5)?,
                        holder_node: r.get(6)?,
                        signed_on: r.get(7)?,
                        committed_due: r.get(8)?,
                        signed_on_behalf: r.get(9)?,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }
}
