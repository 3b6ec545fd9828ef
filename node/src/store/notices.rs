//! Sealed notices: issued once, never changed (the table refuses updates).

use rusqlite::{OptionalExtension, params};
use yizhan_sync::auth::NodeRecord;

use super::{Store, StoreError};
use crate::notice::NoticeContent;

/// A notice as stored, with its seal.
#[derive(Clone, Debug)]
pub struct StoredNotice {
    pub content: NoticeContent,
    pub digest: [u8; 32],
    pub signature: [u8; 64],
    pub issued_ms: i64,
}

impl Store {
    /// Issues a notice: numbers it (`PREFIX-000123`, in this node's sequence), lets
    /// `build` fill the content for that number, seals it with `sign`, and stores it, all
    /// in one transaction.
    pub async fn issue_notice(
        &self,
        prefix: String,
        build: impl FnOnce(String) -> NoticeContent + Send + 'static,
        sign: impl FnOnce(&[u8]) -> [u8; 64] + Send + 'static,
        now_ms: u64,
    ) -> Result<StoredNotice, StoreError> {
        self.write(move |ctx| {
            let next: i64 = ctx
                .conn
                .query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM notices", [], |r| r.get(0))?;
            let content = build(format!("{prefix}-{next:06}"));
            let digest = content.digest();
            let signature = sign(&crate::notice::sealed_message(&content.number, &digest));
            ctx.conn.execute(
                "INSERT INTO notices (id, number, case_id, kind, content_json, digest, signature, issued_ms, supersedes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    next,
                    content.number,
                    content.case_id,
                    content.kind.as_str(),
                    String::from_utf8(content.canonical()).unwrap_or_default(),
                    &digest[..],
                    &signature[..],
                    now_ms as i64,
                    content.supersedes,
                ],
            )?;
            Ok(StoredNotice {
                content,
                digest,
                signature,
                issued_ms: now_ms as i64,
            })
        })
        .await
    }

    /// A notice by its number.
    pub async fn notice(&self, number: String) -> Result<Option<StoredNotice>, StoreError> {
        self.read(move |conn| {
            let row: Option<NoticeRow> = conn
                .prepare_cached(
                    "SELECT content_json, digest, signature, issued_ms FROM notices WHERE number = ?1",
                )?
                .query_row([&number], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .optional()?;
            row.map(|row| stored(&number, row)).transpose()
        })
        .await
    }

    /// The notices of a case, oldest first.
    pub async fn notices_of_case(&self, case_id: String) -> Result<Vec<StoredNotice>, StoreError> {
        self.read(move |conn| {
            let rows: Vec<(String, NoticeRow)> = conn
                .prepare_cached(
                    "SELECT number, content_json, digest, signature, issued_ms FROM notices
                     WHERE case_id = ?1 ORDER BY id",
                )?
                .query_map([&case_id], |r| {
                    Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
                })?
                .collect::<Result<_, _>>()?;
            rows.into_iter()
                .map(|(number, row)| stored(&number, row))
                .collect()
        })
        .await
    }

    /// What this node knows of a node's key: itself, its peers, and the registries it
    /// holds (so a station can check notices of its hall, and a hall those of its
    /// stations). The sync server looks up each caller with it before reading a byte of
    /// the request's body: one small read for that node alone.
    pub async fn node_record(&self, node_hex: String) -> Result<Option<NodeRecord>, StoreError> {
        self.read(move |conn| {
            // Every record this node holds of the key; a revocation anywhere wins, as it
            // does for sync (auth::Registry).
            let records: Vec<NodeRecord> = conn
                .prepare_cached(
                    "SELECT record_json FROM peers WHERE node_id = ?1
                     UNION ALL SELECT record_json FROM registry_records WHERE node_id = ?1",
                )?
                .query_map([&node_hex], |r| r.get::<_, String>(0))?
                .filter_map(|j| j.ok().and_then(|j| serde_json::from_str(&j).ok()))
                .collect();
            let revoked = records.iter().find(|r| r.revoked.is_some()).cloned();
            Ok(revoked.or_else(|| records.into_iter().next()))
        })
        .await
    }
}

/// Content JSON, digest, signature and issue time, as read from the table.
type NoticeRow = (String, Vec<u8>, Vec<u8>, i64);

fn stored(
    number: &str,
    (json, digest, signature, issued_ms): NoticeRow,
) -> Result<StoredNotice, StoreError> {
    let corrupt = |message: &str| StoreError::Corrupt {
        id: number.to_string(),
        message: message.to_string(),
    };
    let content: NoticeContent =
        serde_json::from_str(&json).map_err(|_| corrupt("notice content does not read"))?;
    Ok(StoredNotice {
        content,
        digest: digest
            .try_into()
            .map_err(|_| corrupt("digest is not 32 bytes"))?,
        signature: signature
            .try_into()
            .map_err(|_| corrupt("signature is not 64 bytes"))?,
        issued_ms,
    })
}
