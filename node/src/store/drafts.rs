//! A hall's drafts of catalog items (§8.4.1): created blank, from a published item (a
//! change) or as its cancellation; edited; submitted; approved by a second person, which
//! publishes the version through the one publication path ([`super::items::publish_in`]),
//! or rejected with a reason.
//!
//! Drafts are the hall's local working data (a plain table, never synced, not derived).
//! Who may do what is the engine's (`engine::may_author`, `engine::may_review`, the
//! draft's states in `domain::draft`); this module keeps the rules that need the stored
//! rows: a draft's revision (two editors never overwrite each other unseen, a reviewer
//! approves exactly the revision read) and its base version (a change of a version that
//! has moved on is stale).

use rusqlite::{OptionalExtension, Row, params};
use yizhan_sync::domain::codes::{HandlingLevel, ImplCode};
use yizhan_sync::domain::draft::{
    ChecklistAnswer, DraftAct, DraftError, DraftKind, DraftStatus, check_checklist, draft_allows,
    effective_on_approval,
};
use yizhan_sync::domain::item::{Item, ItemStatus};
use yizhan_sync::engine::{AuthoringAct, AuthoringError, may_author, may_review};
use yizhan_sync::ids::{DocId, Scope};

use super::writer::Staff;
use super::{Store, StoreError};
use crate::i18n::Words;

/// A draft as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Draft {
    pub id: i64,
    pub kind: DraftKind,
    /// '' while a new draft has not named its item.
    pub impl_code: String,
    /// The published version it was made from; 0 for a new item.
    pub base_version: u32,
    /// The item as drafted, in the catalog file's JSON form (it may not be valid yet).
    pub body: serde_json::Value,
    pub checklist: Vec<ChecklistAnswer>,
    pub status: DraftStatus,
    pub revision: u32,
    pub drafted_by: String,
    pub edited_by: String,
    pub reviewed_by: String,
    /// Why a reviewer sent it back.
    pub reason: String,
    pub published_version: Option<u32>,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub reviewed_ms: Option<i64>,
}

impl Draft {
    /// The item's name as drafted, for lists.
    pub fn name(&self) -> &str {
        self.body["name"].as_str().unwrap_or_default()
    }

    /// The level the implementation code names, once it is a valid code.
    pub fn level(&self) -> Option<HandlingLevel> {
        ImplCode::parse(self.code_in_body()).ok().map(|c| c.level())
    }

    fn code_in_body(&self) -> &str {
        if self.impl_code.is_empty() {
            self.body["impl_code"].as_str().unwrap_or_default()
        } else {
            &self.impl_code
        }
    }

    /// The item this draft publishes when approved: the body read as an item, with the
    /// version and status the draft's kind gives it (the drafter sets neither), checked
    /// by every rule of a published item.
    pub fn item(&self) -> Result<Item, StoreError> {
        let mut body = self.body.clone();
        if let Some(object) = body.as_object_mut() {
            object.insert(
                "version".into(),
                serde_json::json!(self.base_version.saturating_add(1)),
            );
            if !self.impl_code.is_empty() {
                object.insert("impl_code".into(), serde_json::json!(self.impl_code));
            }
            let status = match self.kind {
                DraftKind::Cancel => ItemStatus::Cancelled,
                DraftKind::New | DraftKind::Change => ItemStatus::Published,
            };
            object.insert(
                "status".into(),
                serde_json::to_value(status).unwrap_or_default(),
            );
        }
        let item: Item = serde_json::from_value(body).map_err(|e| {
            StoreError::Invalid(Words::new("draft_unreadable").text("detail", e.to_string()))
        })?;
        item.validate()?;
        Ok(item)
    }
}

/// What an editor saves.
#[derive(Clone, Debug)]
pub struct DraftEdit {
    pub body: serde_json::Value,
    pub checklist: Vec<ChecklistAnswer>,
    /// The revision the editor loaded.
    pub revision: u32,
}

/// What a reviewer decides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Review {
    Approve,
    Reject { reason: String },
}

/// Words for a refusal of the authoring rules.
pub fn authoring_refused(e: AuthoringError) -> StoreError {
    StoreError::Forbidden(Words::from(&e))
}

/// Words for a refusal of the draft's rules: the draft's state is a conflict, the
/// request's content is unprocessable.
pub fn draft_refused(e: DraftError) -> StoreError {
    let words = Words::from(&e);
    if e.is_conflict() {
        StoreError::Conflict(words)
    } else {
        StoreError::Invalid(words)
    }
}

const COLUMNS: &str = "id, kind, impl_code, base_version, body_json, checklist_json, status, revision, \
     drafted_by, edited_by, reviewed_by, reason, published_version, created_ms, updated_ms, reviewed_ms";

fn draft_from_row(r: &Row<'_>) -> rusqlite::Result<Draft> {
    let text = |i: usize| r.get::<_, String>(i);
    let json_error = |i: usize, e: serde_json::Error| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    };
    Ok(Draft {
        id: r.get(0)?,
        kind: DraftKind::parse(&text(1)?).unwrap_or(DraftKind::New),
        impl_code: text(2)?,
        base_version: r.get(3)?,
        body: serde_json::from_str(&text(4)?).map_err(|e| json_error(4, e))?,
        checklist: serde_json::from_str(&text(5)?).map_err(|e| json_error(5, e))?,
        status: DraftStatus::parse(&text(6)?).unwrap_or(DraftStatus::Editing),
        revision: r.get(7)?,
        drafted_by: text(8)?,
        edited_by: text(9)?,
        reviewed_by: text(10)?,
        reason: text(11)?,
        published_version: r.get(12)?,
        created_ms: r.get(13)?,
        updated_ms: r.get(14)?,
        reviewed_ms: r.get(15)?,
    })
}

fn load(conn: &rusqlite::Connection, id: i64) -> Result<Draft, StoreError> {
    conn.prepare_cached(&format!("SELECT {COLUMNS} FROM item_drafts WHERE id = ?1"))?
        .query_row([id], draft_from_row)
        .optional()?
        .ok_or_else(|| StoreError::NotFound {
            what: format!("draft {id}"),
        })
}

/// The published version of an item held here, with its catalog scope and JSON form.
fn published(
    conn: &rusqlite::Connection,
    impl_code: &str,
) -> Result<Option<(u32, String, serde_json::Value)>, StoreError> {
    let row: Option<(u32, String, String)> = conn
        .prepare_cached("SELECT version, scope, body_json FROM items WHERE impl_code = ?1")?
        .query_row([impl_code], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    row.map(|(version, scope, body)| {
        let value = serde_json::from_str(&body).map_err(|e| StoreError::Corrupt {
            id: impl_code.to_string(),
            message: e.to_string(),
        })?;
        Ok((version, scope, value))
    })
    .transpose()
}

/// A change or cancellation must still start from the published version, and a new item
/// must still be new.
fn check_base(conn: &rusqlite::Connection, draft: &Draft, code: &str) -> Result<(), StoreError> {
    let current = published(conn, code)?.map(|(version, _, _)| version);
    match (draft.kind, current) {
        (DraftKind::New, None) => Ok(()),
        (DraftKind::New, Some(_)) => Err(draft_refused(DraftError::Exists {
            item: code.to_string(),
        })),
        (_, Some(current)) if current == draft.base_version => Ok(()),
        (_, current) => Err(draft_refused(DraftError::Stale {
            base: draft.base_version,
            current: current.unwrap_or(0),
        })),
    }
}

fn check_revision(draft: &Draft, revision: u32) -> Result<(), StoreError> {
    if draft.revision != revision {
        return Err(draft_refused(DraftError::Edited {
            revision: draft.revision,
        }));
    }
    Ok(())
}

impl Store {
    /// Starts a draft: blank for a new item, or from the published item `from` (its
    /// implementation code or id) for a change or a cancellation.
    pub async fn create_draft(
        &self,
        kind: DraftKind,
        from: Option<String>,
        staff: Staff,
        now_ms: u64,
    ) -> Result<Draft, StoreError> {
        let node = self.own_record().clone();
        may_author(&node, staff.role, None, AuthoringAct::Draft).map_err(authoring_refused)?;
        let scope = Scope::catalog(&node.division).to_string();
        self.write(move |ctx| {
            let (impl_code, base_version, body) = match (kind, from) {
                (DraftKind::New, _) => (String::new(), 0, blank_item()),
                (_, None) => {
                    return Err(StoreError::Invalid(Words::new("draft_needs_item")));
                }
                (_, Some(key)) => {
                    let code: Option<String> = ctx
                        .conn
                        .query_row(
                            "SELECT impl_code FROM items WHERE id = ?1 OR impl_code = ?1",
                            [&key],
                            |r| r.get(0),
                        )
                        .optional()?;
                    let code = code.ok_or_else(|| StoreError::NotFound {
                        what: format!("item {key}"),
                    })?;
                    let (version, item_scope, body) =
                        published(&ctx.conn, &code)?.ok_or_else(|| StoreError::NotFound {
                            what: format!("item {key}"),
                        })?;
                    // Only the hall whose catalog holds the item publishes its versions.
                    if item_scope != scope {
                        return Err(StoreError::Forbidden(
                            Words::new("item_other_scope")
                                .text("item", code.clone())
                                .text("scope", item_scope)
                                .text("wanted", scope.clone()),
                        ));
                    }
                    let level = ImplCode::parse(&code).ok().map(|c| c.level());
                    may_author(&node, staff.role, level, AuthoringAct::Draft)
                        .map_err(authoring_refused)?;
                    (code, version, body)
                }
            };
            ctx.conn.execute(
                "INSERT INTO item_drafts (kind, impl_code, base_version, body_json, status, drafted_by, edited_by, created_ms, updated_ms)
                 VALUES (?1, ?2, ?3, ?4, 'editing', ?5, ?5, ?6, ?6)",
                params![kind.as_str(), impl_code, base_version, body.to_string(), staff.username, now_ms as i64],
            )?;
            load(&ctx.conn, ctx.conn.last_insert_rowid())
        })
        .await
    }

    /// The drafts, the most recently changed first.
    pub async fn drafts(&self, limit: u32) -> Result<Vec<Draft>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM item_drafts ORDER BY updated_ms DESC, id DESC LIMIT ?1"
            ))?;
            let rows = stmt
                .query_map([limit.clamp(1, 1000)], draft_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// One draft, with the published version it changes (if any), in the catalog file's
    /// JSON form, for the diff.
    pub async fn draft(&self, id: i64) -> Result<(Draft, Option<serde_json::Value>), StoreError> {
        self.read(move |conn| {
            let draft = load(conn, id)?;
            let code = draft.code_in_body().to_string();
            let base = if draft.kind == DraftKind::New {
                None
            } else {
                published(conn, &code)?.map(|(_, _, body)| body)
            };
            Ok((draft, base))
        })
        .await
    }

    /// Saves an editor's changes to a draft being written or sent back.
    pub async fn save_draft(
        &self,
        id: i64,
        edit: DraftEdit,
        staff: Staff,
        now_ms: u64,
    ) -> Result<Draft, StoreError> {
        let node = self.own_record().clone();
        self.write(move |ctx| {
            let draft = load(&ctx.conn, id)?;
            let mut edited = draft.clone();
            edited.body = edit.body;
            may_author(&node, staff.role, edited.level(), AuthoringAct::Draft)
                .map_err(authoring_refused)?;
            draft_allows(draft.status, DraftAct::Edit).map_err(draft_refused)?;
            check_revision(&draft, edit.revision)?;
            // A change keeps the item it changes.
            if draft.kind != DraftKind::New
                && edited.body["impl_code"].as_str() != Some(draft.impl_code.as_str())
            {
                return Err(StoreError::Invalid(
                    Words::new("draft_item_fixed").text("item", draft.impl_code.clone()),
                ));
            }
            ctx.conn.execute(
                "UPDATE item_drafts SET body_json = ?2, checklist_json = ?3, revision = revision + 1,
                    edited_by = ?4, updated_ms = ?5
                 WHERE id = ?1",
                params![
                    id,
                    edited.body.to_string(),
                    serde_json::to_string(&edit.checklist)
                        .map_err(|e| StoreError::Internal(e.to_string()))?,
                    staff.username,
                    now_ms as i64
                ],
            )?;
            load(&ctx.conn, id)
        })
        .await
    }

    /// Submits a draft for review: it must make a valid item, answer the §9.2.2 checklist
    /// (a new item or a change), and still start from the published version.
    pub async fn submit_draft(
        &self,
        id: i64,
        revision: u32,
        staff: Staff,
        now_ms: u64,
    ) -> Result<Draft, StoreError> {
        let node = self.own_record().clone();
        self.write(move |ctx| {
            let draft = load(&ctx.conn, id)?;
            may_author(&node, staff.role, draft.level(), AuthoringAct::Draft)
                .map_err(authoring_refused)?;
            draft_allows(draft.status, DraftAct::Submit).map_err(draft_refused)?;
            check_revision(&draft, revision)?;
            let item = draft.item()?;
            if draft.kind != DraftKind::Cancel {
                check_checklist(&draft.checklist).map_err(draft_refused)?;
            }
            check_base(&ctx.conn, &draft, item.impl_code.as_str())?;
            // Submitting is the editor's last edit: whoever submits answers for it.
            ctx.conn.execute(
                "UPDATE item_drafts SET status = 'submitted', impl_code = ?2, reason = '',
                    edited_by = ?3, updated_ms = ?4
                 WHERE id = ?1",
                params![id, item.impl_code.as_str(), staff.username, now_ms as i64],
            )?;
            load(&ctx.conn, id)
        })
        .await
    }

    /// A reviewer's decision on a submitted draft, at the revision the reviewer read.
    /// Approval publishes the version in this hall's catalog, in the same transaction
    /// (the version then flows down the tree like any other).
    pub async fn review_draft(
        &self,
        id: i64,
        revision: u32,
        review: Review,
        staff: Staff,
        now_ms: u64,
    ) -> Result<(Draft, Option<DocId>), StoreError> {
        let node = self.own_record().clone();
        let scope = Scope::catalog(&node.division);
        self.write(move |ctx| {
            let draft = load(&ctx.conn, id)?;
            may_review(
                &node,
                staff.role,
                draft.level(),
                &staff.username,
                &draft.drafted_by,
                &draft.edited_by,
            )
            .map_err(authoring_refused)?;
            let act = match review {
                Review::Approve => DraftAct::Approve,
                Review::Reject { .. } => DraftAct::Reject,
            };
            draft_allows(draft.status, act).map_err(draft_refused)?;
            check_revision(&draft, revision)?;
            match review {
                Review::Reject { reason } => {
                    let reason = reason.trim().to_string();
                    if reason.is_empty() {
                        return Err(draft_refused(DraftError::ReasonMissing));
                    }
                    yizhan_sync::domain::text::lines("reason", &reason).map_err(|e| {
                        StoreError::Case(yizhan_sync::domain::case::CaseError::Text(e))
                    })?;
                    ctx.conn.execute(
                        "UPDATE item_drafts SET status = 'rejected', reason = ?2, reviewed_by = ?3,
                            reviewed_ms = ?4, updated_ms = ?4
                         WHERE id = ?1",
                        params![id, reason, staff.username, now_ms as i64],
                    )?;
                    Ok((load(&ctx.conn, id)?, None))
                }
                Review::Approve => {
                    let mut item = draft.item()?;
                    let today =
                        yizhan_sync::domain::calendar::Date::from_unix_ms_cst(now_ms as i64);
                    item.effective_date = Some(
                        effective_on_approval(draft.kind, item.effective_date, today)
                            .map_err(draft_refused)?,
                    );
                    check_base(&ctx.conn, &draft, item.impl_code.as_str())?;
                    let version = item.version;
                    let doc = super::items::publish_in(ctx, &scope, item, now_ms)?;
                    ctx.conn.execute(
                        "UPDATE item_drafts SET status = 'published', published_version = ?2,
                            reviewed_by = ?3, reason = '', reviewed_ms = ?4, updated_ms = ?4
                         WHERE id = ?1",
                        params![id, version, staff.username, now_ms as i64],
                    )?;
                    Ok((load(&ctx.conn, id)?, Some(doc)))
                }
            }
        })
        .await
    }
}

/// A new draft's starting point: every field of an item, empty, in the catalog file's
/// form, so the form and the API show what there is to fill in.
fn blank_item() -> serde_json::Value {
    serde_json::json!({
        "impl_code": "",
        "version": 1,
        "status": "published",
        "name": "",
        "kind": "public_service",
        "category": "",
        "subject": { "name": "", "nature": "statutory_body" },
        "service_objects": ["natural_person"],
        "legal_basis": [],
        "conditions": [],
        "place": { "address": "", "hours": "" },
        "process": [],
        "case_type": "committed",
        "legal_limit_days": 20,
        "legal_extension_days": 0,
        "committed_limit_days": 10,
        "materials": [],
        "online_depth": "none",
        "query_channels": [],
        "consultation": [],
        "complaint": [],
        "remedies": "",
        "result": "",
        "visits": 1
    })
}

#[cfg(test)]
mod tests;
