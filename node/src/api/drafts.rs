//! `/api/v1/items/drafts`: a hall's item drafts and their review (§8.4.1). The same store
//! calls as the pages, so the same rules and the same codes: drafting is an item editor's
//! or an admin's, review an item reviewer's and never the drafter's or last editor's
//! (`engine::may_author`, `engine::may_review`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa::ToSchema;
use yizhan_sync::domain::draft::{ChecklistAnswer, DraftKind, diff};
use yizhan_sync::engine::{AuthoringAct, may_author};

use super::ApiState;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Authenticated, Body, Path};
use crate::clock::rfc3339_cst;
use crate::i18n::{Tr, Words};
use crate::store::{Draft, DraftEdit, Review, Staff, StoreError, UserRecord, authoring_refused};

/// How many drafts the list gives at most.
const LIST_LIMIT: u32 = 500;

/// Starts a draft.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDraft {
    /// `new` (新增, a blank item), `change` (变更) or `cancel` (取消) of a published item.
    pub kind: String,
    /// For a change or cancellation: the published item's implementation code or id.
    #[serde(default)]
    pub item: Option<String>,
}

/// One answer of the §9.2.2 checklist.
#[derive(Debug, serde::Serialize, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChecklistEntry {
    /// `standards_suffice`, `no_legal_basis`, `law_changed`, `duplicate_review`,
    /// `checked_before` or `one_step_enough` (the six situations of §9.2.2, in order).
    pub situation: String,
    /// Whether the situation applies to the item's approval steps.
    pub applies: bool,
    /// What was done about it (needed when it applies).
    #[serde(default)]
    pub note: String,
}

/// An editor's save.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftUpdate {
    /// The revision the editor loaded; a save over a newer one is refused (`draft_edited`).
    pub revision: u32,
    /// The item as drafted, in the catalog file's form; `version` and `status` are set on
    /// approval from the draft's kind.
    #[schema(value_type = Object)]
    pub item: serde_json::Value,
    #[serde(default)]
    pub checklist: Vec<ChecklistEntry>,
}

/// Submits or approves the revision the caller read.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AtRevision {
    pub revision: u32,
}

/// Sends a draft back.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rejection {
    pub revision: u32,
    /// Why, for the editors (required).
    pub reason: String,
}

/// One field that differs from the published version.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct FieldChangeView {
    pub field: String,
    pub before: String,
    pub after: String,
}

/// A draft in a list.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct DraftSummary {
    pub id: i64,
    /// `new`, `change` or `cancel`.
    pub kind: String,
    /// `editing`, `submitted`, `rejected` or `published`.
    pub status: String,
    pub impl_code: String,
    pub name: String,
    pub revision: u32,
    pub edited_by: String,
    pub updated_at: String,
}

#[derive(Debug, serde::Serialize, ToSchema)]
pub struct DraftList {
    pub drafts: Vec<DraftSummary>,
}

/// One draft, what stops it being published, and its difference from the published
/// version, field by field.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct DraftView {
    pub id: i64,
    pub kind: String,
    pub status: String,
    /// '' while a new draft has not named its item.
    pub impl_code: String,
    /// The published version it was made from; 0 for a new item.
    pub base_version: u32,
    /// Goes up with every save; send it back with the next save, submission or review.
    pub revision: u32,
    pub drafted_by: String,
    pub edited_by: String,
    pub reviewed_by: String,
    /// Why a reviewer sent it back.
    pub reason: String,
    /// The version its approval published.
    pub published_version: Option<u32>,
    pub created_at: String,
    pub updated_at: String,
    /// The item as drafted, in the catalog file's form.
    #[schema(value_type = Object)]
    pub item: serde_json::Value,
    pub checklist: Vec<ChecklistEntry>,
    /// Each rule the item breaks now, at its field; empty when it can be submitted.
    pub problems: Vec<ProblemView>,
    /// The fields that differ from the published version (every field for a new item).
    pub diff: Vec<FieldChangeView>,
}

/// A rule a draft's item breaks.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ProblemView {
    /// The item's field, as the catalog file names it: `materials[1].issuer` (empty: the
    /// draft as a whole).
    pub field: String,
    /// Stable and machine-readable, e.g. `item_material_issuer`.
    pub code: String,
    /// What is wrong, in the request's `Accept-Language` (zh-CN when absent).
    pub message: String,
}

fn staff(user: &UserRecord) -> Staff {
    Staff {
        username: user.username.clone(),
        counter: user.counter.clone(),
        role: user.role,
    }
}

/// Drafts are read by whoever drafts or reviews here.
fn may_read(state: &ApiState, user: &UserRecord) -> ApiResult<()> {
    let node = state.store.own_record();
    if may_author(node, user.role, None, AuthoringAct::Review).is_ok() {
        return Ok(());
    }
    may_author(node, user.role, None, AuthoringAct::Draft).map_err(|e| authoring_refused(e).into())
}

fn summary(draft: Draft) -> DraftSummary {
    DraftSummary {
        id: draft.id,
        kind: draft.kind.as_str().into(),
        status: draft.status.as_str().into(),
        name: draft.name().to_string(),
        impl_code: if draft.impl_code.is_empty() {
            draft.body["impl_code"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        } else {
            draft.impl_code.clone()
        },
        revision: draft.revision,
        edited_by: draft.edited_by,
        updated_at: rfc3339_cst(draft.updated_ms),
    }
}

fn view(draft: Draft, base: Option<serde_json::Value>) -> DraftView {
    let t = Tr::of(super::error::request_language());
    let problems = match draft.item() {
        Ok(_) => Vec::new(),
        Err(StoreError::Item(invalid)) => invalid
            .problems
            .iter()
            .map(|p| ProblemView {
                field: p.field.clone(),
                code: p.code.to_string(),
                message: t.words(&Words::from(p)),
            })
            .collect(),
        Err(other) => {
            let words = other.words();
            vec![ProblemView {
                field: String::new(),
                code: words.code.to_string(),
                message: t.words(&words),
            }]
        }
    };
    DraftView {
        diff: diff(base.as_ref(), &draft.body)
            .into_iter()
            .map(|c| FieldChangeView {
                field: c.field,
                before: c.before,
                after: c.after,
            })
            .collect(),
        problems,
        id: draft.id,
        kind: draft.kind.as_str().into(),
        status: draft.status.as_str().into(),
        impl_code: draft.impl_code,
        base_version: draft.base_version,
        revision: draft.revision,
        drafted_by: draft.drafted_by,
        edited_by: draft.edited_by,
        reviewed_by: draft.reviewed_by,
        reason: draft.reason,
        published_version: draft.published_version,
        created_at: rfc3339_cst(draft.created_ms),
        updated_at: rfc3339_cst(draft.updated_ms),
        item: draft.body,
        checklist: draft
            .checklist
            .into_iter()
            .map(|a| ChecklistEntry {
                situation: a.situation,
                applies: a.applies,
                note: a.note,
            })
            .collect(),
    }
}

async fn show_draft(state: &ApiState, id: i64) -> ApiResult<Json<DraftView>> {
    let (draft, base) = state.store.draft(id).await?;
    Ok(Json(view(draft, base)))
}

/// List the item drafts of this hall
#[utoipa::path(get, path = "/api/v1/items/drafts", tag = "authoring",
    responses((status = 200, body = DraftList), (status = 403, body = ErrorBody)),
    security(("token" = [])))]
pub async fn index(
    State(state): State<ApiState>,
    user: Authenticated,
) -> ApiResult<Json<DraftList>> {
    may_read(&state, &user.0)?;
    let drafts = state.store.drafts(LIST_LIMIT).await?;
    Ok(Json(DraftList {
        drafts: drafts.into_iter().map(summary).collect(),
    }))
}

/// Start a draft: a new item, or a change or cancellation of a published one
#[utoipa::path(post, path = "/api/v1/items/drafts", tag = "authoring", request_body = NewDraft,
    responses(
        (status = 201, body = DraftView),
        (status = 403, body = ErrorBody, description = "Not an item editor or admin, a station, or an item at a level this hall does not author"),
        (status = 404, body = ErrorBody, description = "No such published item"),
        (status = 400, body = ErrorBody, description = "`draft_needs_item`: a change or cancellation names no item"),
        (status = 422, body = ErrorBody)),
    security(("token" = [])))]
pub async fn create(
    State(state): State<ApiState>,
    user: Authenticated,
    Body(new): Body<NewDraft>,
) -> ApiResult<(StatusCode, Json<DraftView>)> {
    let kind = DraftKind::parse(&new.kind).ok_or_else(|| {
        ApiError::words(StatusCode::UNPROCESSABLE_ENTITY, Words::new("draft_kind"))
    })?;
    let draft = state
        .store
        .create_draft(kind, new.item, staff(&user.0), state.clock.now_ms())
        .await?;
    Ok((StatusCode::CREATED, show_draft(&state, draft.id).await?))
}

/// One draft, with its problems and its difference from the published version
#[utoipa::path(get, path = "/api/v1/items/drafts/{id}", tag = "authoring",
    params(("id" = i64, Path, description = "Draft number")),
    responses((status = 200, body = DraftView), (status = 400, body = ErrorBody, description = "The id is not a number"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("token" = [])))]
pub async fn show(
    State(state): State<ApiState>,
    user: Authenticated,
    Path(id): Path<i64>,
) -> ApiResult<Json<DraftView>> {
    may_read(&state, &user.0)?;
    show_draft(&state, id).await
}

/// Save a draft being written or sent back
#[utoipa::path(put, path = "/api/v1/items/drafts/{id}", tag = "authoring", request_body = DraftUpdate,
    params(("id" = i64, Path, description = "Draft number")),
    responses(
        (status = 200, body = DraftView),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Submitted or published (`draft_state`), or saved by someone else since (`draft_edited`)"),
        (status = 400, body = ErrorBody, description = "`draft_item_fixed`: a change tried to change its item's code"),
        (status = 422, body = ErrorBody, description = "The body does not read as a draft update")),
    security(("token" = [])))]
pub async fn update(
    State(state): State<ApiState>,
    user: Authenticated,
    Path(id): Path<i64>,
    Body(update): Body<DraftUpdate>,
) -> ApiResult<Json<DraftView>> {
    let edit = DraftEdit {
        body: update.item,
        checklist: update
            .checklist
            .into_iter()
            .map(|a| ChecklistAnswer {
                situation: a.situation,
                applies: a.applies,
                note: a.note,
            })
            .collect(),
        revision: update.revision,
    };
    state
        .store
        .save_draft(id, edit, staff(&user.0), state.clock.now_ms())
        .await?;
    show_draft(&state, id).await
}

/// Submit a draft for review
///
/// The item must pass every catalog rule and, for a new item or a change, the §9.2.2
/// checklist must be answered in full.
#[utoipa::path(post, path = "/api/v1/items/drafts/{id}/submit", tag = "authoring", request_body = AtRevision,
    params(("id" = i64, Path, description = "Draft number")),
    responses(
        (status = 200, body = DraftView),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`draft_state`, `draft_edited`, `draft_stale` or `draft_exists`"),
        (status = 422, body = ErrorBody, description = "`invalid_item`: the item breaks a catalog rule, each problem naming its field"),
        (status = 400, body = ErrorBody, description = "`draft_unreadable` (the draft does not read as an item), `draft_checklist` or `draft_checklist_note`")),
    security(("token" = [])))]
pub async fn submit(
    State(state): State<ApiState>,
    user: Authenticated,
    Path(id): Path<i64>,
    Body(at): Body<AtRevision>,
) -> ApiResult<Json<DraftView>> {
    state
        .store
        .submit_draft(id, at.revision, staff(&user.0), state.clock.now_ms())
        .await?;
    show_draft(&state, id).await
}

/// Approve a submitted draft, which publishes it
///
/// By an item reviewer who neither drafted nor last edited it. The version goes down the
/// tree like any other; cases already accepted keep theirs.
#[utoipa::path(post, path = "/api/v1/items/drafts/{id}/approve", tag = "authoring", request_body = AtRevision,
    params(("id" = i64, Path, description = "Draft number")),
    responses(
        (status = 200, body = DraftView),
        (status = 403, body = ErrorBody, description = "`authoring_reviewers_only` or `authoring_four_eyes`"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`draft_state`, `draft_edited`, `draft_stale`, `draft_exists` or `draft_effective_later`"),
        (status = 422, body = ErrorBody, description = "`invalid_item`"),
        (status = 400, body = ErrorBody, description = "`draft_unreadable`, or the id is not a number")),
    security(("token" = [])))]
pub async fn approve(
    State(state): State<ApiState>,
    user: Authenticated,
    Path(id): Path<i64>,
    Body(at): Body<AtRevision>,
) -> ApiResult<Json<DraftView>> {
    state
        .store
        .review_draft(
            id,
            at.revision,
            Review::Approve,
            staff(&user.0),
            state.clock.now_ms(),
        )
        .await?;
    show_draft(&state, id).await
}

/// Send a submitted draft back to its editors, with a reason
#[utoipa::path(post, path = "/api/v1/items/drafts/{id}/reject", tag = "authoring", request_body = Rejection,
    params(("id" = i64, Path, description = "Draft number")),
    responses(
        (status = 200, body = DraftView),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "The reason holds a control or layout character"),
        (status = 400, body = ErrorBody, description = "`draft_reason`: no reason given")),
    security(("token" = [])))]
pub async fn reject(
    State(state): State<ApiState>,
    user: Authenticated,
    Path(id): Path<i64>,
    Body(rejection): Body<Rejection>,
) -> ApiResult<Json<DraftView>> {
    state
        .store
        .review_draft(
            id,
            rejection.revision,
            Review::Reject {
                reason: rejection.reason,
            },
            staff(&user.0),
            state.clock.now_ms(),
        )
        .await?;
    show_draft(&state, id).await
}
