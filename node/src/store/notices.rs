//! Sealed notices: issued once, never changed (the table refuses updates). Each is a
//! record document in the case scope of its station (`n-<number>`), so it travels up to
//! every hall above; the `notices` table holds the notices of every such document this
//! node has, its own and received ones alike, derived by one rule ([`notice_row`]).

use rusqlite::{Connection, OptionalExtension, params};
use yizhan_sync::auth::NodeRecord;
use yizhan_sync::doc::{self, RecordDoc};
use yizhan_sync::ids::{DocId, DocKind, Scope, hex, unhex};

use super::{Store, StoreError};
use yizhan_sync::domain::case::Action;
use yizhan_sync::domain::item::Item;

use super::CaseDetail;
use crate::clock::rfc3339_cst;
use crate::i18n::Words;
use crate::notice::{MaterialLine, MissingLine, NoticeContent, NoticeKind, RefusalLine};
use yizhan_sync::domain::case::CaseError;

/// A notice as stored, with its seal.
#[derive(Clone, Debug)]
pub struct StoredNotice {
    pub content: NoticeContent,
    pub digest: [u8; 32],
    pub signature: [u8; 64],
    pub issued_ms: i64,
}

impl Store {
    /// Issues a notice: numbers it (`PREFIX-000123`, in this node's sequence for that
    /// prefix), lets `build` fill the content for that number, seals it with `sign`, and
    /// stores it as a document of the case's scope and as its row, all in one transaction.
    pub async fn issue_notice(
        &self,
        prefix: String,
        build: impl FnOnce(String) -> NoticeContent + Send + 'static,
        sign: impl FnOnce(&[u8]) -> [u8; 64] + Send + 'static,
        now_ms: u64,
    ) -> Result<StoredNotice, StoreError> {
        self.write(move |ctx| {
            let stored = seal(&ctx.conn, &prefix, build, sign)?;
            publish(ctx, &stored, now_ms)?;
            Ok(stored)
        })
        .await
    }

    /// Publishes as documents the notices this node issued before notices were
    /// documents (their rows came through migration 012 as they were): their seals hold
    /// under this node's key, so the halls above take them like any new one. Run at every
    /// start; only the first start after the migration, which marks a node that had
    /// notices, reads the table. Returns how many it published.
    pub async fn publish_local_notices(&self, now_ms: u64) -> Result<u64, StoreError> {
        self.write(move |ctx| {
            let pending: Option<String> = ctx
                .conn
                .query_row(
                    "SELECT value FROM meta WHERE key = 'notices_to_publish'",
                    [],
                    |r| r.get(0),
                )
                .optional()?;
            if pending.is_none() {
                return Ok(0);
            }
            ctx.conn
                .execute("DELETE FROM meta WHERE key = 'notices_to_publish'", [])?;
            let this_node = ctx.identity.record.node.to_hex();
            let rows: Vec<(String, NoticeRow)> = ctx
                .conn
                .prepare(
                    "SELECT number, content_json, digest, signature, issued_ms FROM notices
                     WHERE node = ?1 AND doc_id NOT IN (SELECT id FROM documents WHERE kind = 'notice')
                     ORDER BY number",
                )?
                .query_map([&this_node], |r| {
                    Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
                })?
                .collect::<Result<_, _>>()?;
            let mut published = 0;
            for (number, row) in rows {
                let stored = stored(&number, row)?;
                // A notice of a case this node no longer holds stays a row only.
                if case_scope(&ctx.conn, &stored.content.case_id)?.is_none() {
                    continue;
                }
                publish(ctx, &stored, now_ms)?;
                published += 1;
            }
            Ok(published)
        })
        .await
    }

    /// What this node knows of a node's key: itself, its peers, and the registries it
    /// holds (so a station can check notices of its hall, and a hall those of its
    /// stations). The sync server looks up each caller with it before reading a byte of
    /// the request's body: one small read for that node alone.
    pub async fn node_record(&self, node_hex: String) -> Result<Option<NodeRecord>, StoreError> {
        self.read(move |conn| record_of(conn, &node_hex)).await
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
                     WHERE case_id = ?1 ORDER BY issued_ms, number",
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
}

/// Who issues a notice: the office (this node's name) and the staff member at the counter.
#[derive(Clone, Debug)]
pub struct Issuer {
    pub office: String,
    pub counter: String,
    /// The staff member's name as the notice prints it.
    pub staff: String,
}

/// A notice that corrects an earlier one: its number and why (更正理由).
#[derive(Clone, Debug)]
pub struct Correction {
    pub supersedes: String,
    pub reason: String,
}

impl Store {
    /// The decision notice (准予/不予…决定书, 行政许可法 §38) of a case whose item a
    /// department decides (§5.7.2), issued at that department's hall once its member
    /// recorded the decision, sealed with the department's approval seal (§9.6); `None`
    /// for a case no department decides (its decision stays an event of the case).
    pub async fn issue_decision_notice(
        &self,
        issuer: Issuer,
        id: DocId,
        now_ms: u64,
    ) -> Result<Option<StoredNotice>, StoreError> {
        let today = yizhan_sync::domain::calendar::Date::from_unix_ms_cst(now_ms as i64);
        let detail = self.get_case(id.to_string(), today).await?;
        let ours = detail
            .intake
            .item
            .decided_by
            .as_ref()
            .is_some_and(|d| d.hall == self.origin().node);
        if !ours || detail.state.decision.is_none() {
            return Ok(None);
        }
        self.issue_case_notice(issuer, id, NoticeKind::Decision, None, now_ms)
            .await
            .map(Some)
    }

    /// Seals and stores a notice of `kind` about the case as it is now, for the web pages
    /// and the API alike: numbered in this node's sequence (the epoch keeps numbers unique
    /// after a restore from a backup), sealed with this node's key.
    pub async fn issue_case_notice(
        &self,
        issuer: Issuer,
        id: DocId,
        kind: NoticeKind,
        correction: Option<Correction>,
        now_ms: u64,
    ) -> Result<StoredNotice, StoreError> {
        let today = yizhan_sync::domain::calendar::Date::from_unix_ms_cst(now_ms as i64);
        let detail = self.get_case(id.to_string(), today).await?;
        let item = self
            .get_item(detail.intake.item.impl_code.to_string())
            .await?;
        let origin = self.origin();
        let node_id = origin.node.to_hex();
        let mut content =
            notice_content(&node_id, &issuer, &item, &detail, kind, correction, now_ms);
        let prefix =
            format!("TZ{}E{}", node_id.get(..8).unwrap_or("NODE"), origin.epoch).to_uppercase();
        // A decision of the department that decides the item is sealed with its approval
        // seal (§9.6), at its hall only; the other notices with this node's key.
        let department_seal = match (&detail.intake.item.decided_by, kind) {
            (Some(decider), NoticeKind::Decision) => {
                if decider.hall != origin.node {
                    return Err(StoreError::Forbidden(Words::from(
                        &CaseError::NotDecidingDepartment {
                            department: decider.name.clone(),
                        },
                    )));
                }
                Some(self.current_seal(decider.code.clone()).await?)
            }
            _ => None,
        };
        if let Some((seal, _)) = &department_seal {
            content.seal = Some(seal.clone());
        }
        self.write(move |ctx| {
            use ed25519_dalek::Signer;
            let key = match department_seal {
                Some((_, key)) => key,
                None => ctx.identity.key.clone(),
            };
            let stored = seal(
                &ctx.conn,
                &prefix,
                move |number| NoticeContent { number, ..content },
                move |message| key.sign(message).to_bytes(),
            )?;
            publish(ctx, &stored, now_ms)?;
            Ok(stored)
        })
        .await
    }
}

/// Numbers a notice in `prefix`'s sequence (zero-padded, so the largest is the last
/// issued; `.` sorts right after `-`), fills it in and seals it.
fn seal(
    conn: &Connection,
    prefix: &str,
    build: impl FnOnce(String) -> NoticeContent,
    sign: impl FnOnce(&[u8]) -> [u8; 64],
) -> Result<StoredNotice, StoreError> {
    let last: Option<String> = conn
        .prepare_cached("SELECT MAX(number) FROM notices WHERE number > ?1 AND number < ?2")?
        .query_row(params![format!("{prefix}-"), format!("{prefix}.")], |r| {
            r.get(0)
        })?;
    let next = last
        .and_then(|n| n.rsplit_once('-').and_then(|(_, n)| n.parse::<u64>().ok()))
        .unwrap_or(0)
        + 1;
    let content = build(format!("{prefix}-{next:06}"));
    let digest = content.digest();
    let signature = sign(&crate::notice::sealed_message(&content.number, &digest));
    Ok(StoredNotice {
        issued_ms: issued_ms(&content.issued_at),
        content,
        digest,
        signature,
    })
}

/// What a notice about a case says, as the case is now: the content a receipt, a
/// one-time notice, a refusal, an extension or a special-procedure notice seals.
pub fn notice_content(
    node_id: &str,
    issuer: &Issuer,
    item: &Item,
    detail: &CaseDetail,
    kind: NoticeKind,
    correction: Option<Correction>,
    now: u64,
) -> NoticeContent {
    // What the latest extension and suspension said, for their own notices.
    let applied = |e: &&crate::store::EventView| !e.conflict && !e.voided;
    let extension = detail
        .events
        .iter()
        .rev()
        .filter(applied)
        .find_map(|e| match &e.action {
            Action::Extend { days, reason, .. } => Some(crate::notice::ExtensionLine {
                days: *days,
                reason: reason.clone(),
                approved_by: e.staff.clone(),
            }),
            _ => None,
        });
    let suspension = detail
        .events
        .iter()
        .rev()
        .filter(applied)
        .find_map(|e| match &e.action {
            Action::Suspend { procedure, reason } => Some(crate::notice::SuspensionLine {
                procedure: procedure.clone(),
                reason: reason.clone(),
                since: yizhan_sync::domain::calendar::Date::from_unix_ms_cst(e.at_ms).to_string(),
                max_days: detail
                    .intake
                    .item
                    .procedure(procedure)
                    .and_then(|p| p.max_days),
            }),
            _ => None,
        });
    let refusal = detail.events.iter().rev().find_map(|e| match &e.action {
        Action::Refuse {
            reason,
            basis,
            remedies,
            competent_authority,
        } => Some(RefusalLine {
            reason: reason.clone(),
            basis: basis.clone(),
            remedies: remedies.clone(),
            competent_authority: competent_authority.clone(),
        }),
        _ => None,
    });
    let missing = detail.events.iter().rev().find_map(|e| match &e.action {
        Action::NotifyMissing { missing, .. } => Some(missing.clone()),
        _ => None,
    });
    let decision = detail
        .events
        .iter()
        .rev()
        .filter(applied)
        .find_map(|e| match &e.action {
            Action::Decide {
                approved,
                reason,
                basis,
                remedies,
                ..
            } => Some(crate::notice::DecisionLine {
                approved: *approved,
                reason: reason.clone(),
                basis: basis.clone(),
                remedies: remedies.clone(),
            }),
            _ => None,
        });
    let result = detail.events.iter().rev().find_map(|e| match &e.action {
        Action::Complete { result, .. } => Some(result.clone()),
        _ => None,
    });
    NoticeContent {
        format: 1,
        number: String::new(),
        kind,
        node: node_id.to_string(),
        office: issuer.office.clone(),
        case_id: detail.summary.id.clone(),
        serial_no: detail.summary.serial_no.clone(),
        item_name: detail.intake.item.name.clone(),
        impl_code: detail.intake.item.impl_code.to_string(),
        item_version: detail.intake.item.version,
        case_type: detail.intake.item.case_type.zh().to_string(),
        applicant: detail.intake.applicant.name().to_string(),
        applicant_id_masked: detail.intake.applicant.id_masked(),
        received: detail
            .received
            .iter()
            .map(|m| MaterialLine {
                name: m.name.clone(),
                originals: m.originals,
                copies: m.copies,
            })
            .collect(),
        missing: match kind {
            NoticeKind::OneTime => missing
                .unwrap_or_default()
                .into_iter()
                .map(|m| MissingLine {
                    name: m.name,
                    reason: m.reason,
                })
                .collect(),
            _ => Vec::new(),
        },
        committed_due: detail.summary.committed_due.clone(),
        legal_due: detail.summary.legal_due.clone(),
        result: if kind == NoticeKind::Receipt {
            result
        } else {
            None
        },
        refusal: if kind == NoticeKind::Refusal {
            refusal
        } else {
            None
        },
        counter: issuer.counter.clone(),
        staff: issuer.staff.clone(),
        consultation: item.consultation.clone(),
        complaint: item.complaint.clone(),
        issued_at: rfc3339_cst(now as i64),
        supersedes: correction.as_ref().map(|c| c.supersedes.clone()),
        accepted_for: detail.intake.item.delegated_by.clone(),
        query_code: Some(detail.query_code()),
        extension: extension.filter(|_| kind == NoticeKind::Extension),
        suspension: suspension.filter(|_| kind == NoticeKind::Suspension),
        correction_reason: correction.map(|c| c.reason),
        decision: decision.filter(|_| kind == NoticeKind::Decision),
        seal: None,
    }
}

/// Stores a notice this node sealed as its document, in the scope of its case, and as its
/// row (derived from the document, as a received one is).
fn publish(
    ctx: &mut super::writer::WriteCtx,
    stored: &StoredNotice,
    now_ms: u64,
) -> Result<(), StoreError> {
    let number = &stored.content.number;
    let id = yizhan_sync::domain::notice::doc_id(number).ok_or_else(|| {
        StoreError::Internal(format!("notice number {number} is not a document id"))
    })?;
    let scope =
        case_scope(&ctx.conn, &stored.content.case_id)?.ok_or_else(|| StoreError::NotFound {
            what: format!("case {}", stored.content.case_id),
        })?;
    let content = String::from_utf8(stored.content.canonical())
        .map_err(|_| StoreError::Internal("notice content is not UTF-8".into()))?;
    let fields = [
        ("content", content),
        ("digest", hex(&stored.digest)),
        ("seal", hex(&stored.signature)),
    ];
    // The change carries the sealed issue time, so a notice published later (an older
    // node's) says when it was issued.
    let change_ms = u64::try_from(stored.issued_ms).unwrap_or(now_ms);
    let origin = ctx.origin;
    let document = doc::new_record(&origin, &scope, DocKind::Notice, &fields, change_ms)
        .map_err(|e| StoreError::Internal(e.to_string()))?;
    let record = doc::read_record(&document).map_err(|e| StoreError::Corrupt {
        id: id.to_string(),
        message: e.to_string(),
    })?;
    ctx.insert_doc(id.clone(), document);
    ctx.persist_local_change(&id, DocKind::Notice, &scope, now_ms)?;
    let row = notice_row(&id, &record).map_err(|message| StoreError::Corrupt {
        id: id.to_string(),
        message,
    })?;
    store_notice_row(&ctx.conn, "", &row)
}

/// The scope of a case this node holds.
fn case_scope(conn: &Connection, case_id: &str) -> Result<Option<Scope>, StoreError> {
    let scope: Option<String> = conn
        .prepare_cached("SELECT scope FROM documents WHERE id = ?1 AND kind = 'case'")?
        .query_row([case_id], |r| r.get(0))
        .optional()?;
    Ok(scope.and_then(|s| Scope::parse(&s)))
}

/// The row of a notice document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct NoticeDocRow {
    pub number: String,
    pub doc_id: String,
    pub case_id: String,
    pub node: String,
    pub kind: String,
    pub content_json: String,
    pub digest: [u8; 32],
    pub signature: [u8; 64],
    pub issued_ms: i64,
    pub supersedes: Option<String>,
}

/// Derives a notice document's row: the sealed content as it was written, its digest and
/// seal, and what the lists need of it. The engine checked the seal on arrival.
pub(super) fn notice_row(id: &DocId, record: &RecordDoc) -> Result<NoticeDocRow, String> {
    let content_json = record.field("content").to_string();
    let content: NoticeContent = serde_json::from_str(&content_json)
        .map_err(|e| format!("the notice's content does not read: {e}"))?;
    let digest: [u8; 32] = unhex(record.field("digest"))
        .and_then(|d| d.try_into().ok())
        .ok_or("the notice's digest is not 32 bytes")?;
    let signature: [u8; 64] = unhex(record.field("seal"))
        .and_then(|d| d.try_into().ok())
        .ok_or("the notice's seal is not 64 bytes")?;
    Ok(NoticeDocRow {
        number: content.number.clone(),
        doc_id: id.to_string(),
        case_id: content.case_id.clone(),
        node: content.node.to_ascii_lowercase(),
        kind: content.kind.as_str().to_string(),
        content_json,
        digest,
        signature,
        issued_ms: issued_ms(&content.issued_at),
        supersedes: content.supersedes.clone(),
    })
}

/// Writes a notice's row into `{prefix}notices` (`rebuilt_` while rebuilding); a row
/// already there stays as it is (a notice never changes).
pub(super) fn store_notice_row(
    conn: &Connection,
    prefix: &str,
    row: &NoticeDocRow,
) -> Result<(), StoreError> {
    conn.prepare_cached(&format!(
        "INSERT OR IGNORE INTO {prefix}notices
         (number, doc_id, case_id, node, kind, content_json, digest, signature, issued_ms, supersedes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    ))?
    .execute(params![
        row.number,
        row.doc_id,
        row.case_id,
        row.node,
        row.kind,
        row.content_json,
        &row.digest[..],
        &row.signature[..],
        row.issued_ms,
        row.supersedes,
    ])?;
    Ok(())
}

/// The sealed issue time (`2026-03-02T10:00:00+08:00`) in milliseconds since the epoch,
/// 0 if it does not read: what every node derives alike from the content.
pub(super) fn issued_ms(issued_at: &str) -> i64 {
    let parse = || -> Option<i64> {
        let date: yizhan_sync::domain::calendar::Date = issued_at.get(..10)?.parse().ok()?;
        let time = issued_at.get(11..19)?;
        let mut parts = time.split(':').map(|p| p.parse::<i64>().ok());
        let (h, m, s) = (parts.next()??, parts.next()??, parts.next()??);
        let offset_ms = match issued_at.get(19..)? {
            "Z" => 0,
            zone => {
                let sign = if zone.starts_with('-') { -1 } else { 1 };
                let hours: i64 = zone.get(1..3)?.parse().ok()?;
                let minutes: i64 = zone.get(4..6)?.parse().ok()?;
                sign * (hours * 60 + minutes) * 60_000
            }
        };
        Some(
            i64::from(date.days_since_epoch()) * 86_400_000 + ((h * 60 + m) * 60 + s) * 1000
                - offset_ms,
        )
    };
    parse().unwrap_or(0)
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

/// The record this node holds of a node key (hex): every record of the key; a revocation
/// anywhere wins, as it does for sync (auth::Registry).
pub(super) fn record_of(
    conn: &rusqlite::Connection,
    node_hex: &str,
) -> Result<Option<NodeRecord>, StoreError> {
    let records: Vec<NodeRecord> = conn
        .prepare_cached(
            "SELECT record_json FROM peers WHERE node_id = ?1
             UNION ALL SELECT record_json FROM registry_records WHERE node_id = ?1",
        )?
        .query_map([node_hex], |r| r.get::<_, String>(0))?
        .filter_map(|j| j.ok().and_then(|j| serde_json::from_str(&j).ok()))
        .collect();
    let revoked = records.iter().find(|r| r.revoked.is_some()).cloned();
    Ok(revoked.or_else(|| records.into_iter().next()))
}
