//! Catalog authoring in the pages (§8.4.1): `/catalog/drafts` lists a hall's item drafts
//! and starts one (a new item, or a change or cancellation of a published one);
//! `/catalog/drafts/{id}` is the draft's form for its editors (the whole item: lists one
//! entry per line, materials and special procedures as rows, the §9.2.2 checklist), and
//! the review for a second person (the field diff, the checklist, approve or send back
//! with a reason). The rules are the engine's and the store's, as for the API
//! (`/api/v1/items/drafts`); a refused form comes back with the typed input kept and each
//! problem next to its field.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Value, json};
use yizhan_sync::domain::attachment::{AttachmentError, MAX_BYTES};
use yizhan_sync::domain::codes::{DivisionCode, ImplCode};
use yizhan_sync::domain::draft::{
    ChecklistAnswer, DraftKind, DraftStatus, FieldChange, SIMPLIFICATION, diff,
};
use yizhan_sync::domain::item::{HandlingForm, PowerKind};
use yizhan_sync::engine::{AuthoringAct, may_author, may_review};
use yizhan_sync::ids::Scope;

use super::cases::{Fields, field};
use super::{Chrome, Ctx, StaffForm, WebState, render, store_failed};
use crate::clock::minute_cst;
use crate::i18n::{Tr, Words};
use crate::store::{Draft, DraftEdit, Review, Staff, StoreError, authoring_refused};

/// How many drafts the list shows at most.
const LIST_LIMIT: u32 = 300;
/// Empty rows the form offers below the materials and procedures it has.
const SPARE_ROWS: usize = 3;
/// Empty rows below a situation's added materials, and empty situations below the list.
const SPARE_SITUATION_ROWS: usize = 2;
const SPARE_SITUATIONS: usize = 1;
/// Rows of one list the form reads at most.
const MAX_ROWS: usize = 200;

#[derive(Template)]
#[template(path = "drafts.html")]
struct DraftsPage<'a> {
    chrome: Chrome<'a>,
    t: &'static Tr,
    csrf: &'a str,
    drafts: Vec<Draft>,
    may_draft: bool,
    error: Option<String>,
}

impl DraftsPage<'_> {
    fn time(&self, draft: &Draft) -> String {
        minute_cst(draft.updated_ms)
    }

    fn code(&self, draft: &Draft) -> String {
        code_of(draft)
    }
}

#[derive(Template)]
#[template(path = "draft.html")]
struct DraftPage<'a> {
    chrome: Chrome<'a>,
    t: &'static Tr,
    csrf: &'a str,
    draft: Draft,
    /// Whether this person edits it now, and reviews it now.
    editable: bool,
    reviewable: bool,
    /// The form's values: the stored draft's, or a refused form's as typed.
    values: Fields,
    material_rows: Vec<usize>,
    procedure_rows: Vec<usize>,
    /// The situations' rows: each with its added materials' rows.
    situation_rows: Vec<SituationRows>,
    /// The departments the hall knows, to choose the deciding one: (code, name).
    departments: Vec<(String, String)>,
    /// The names of the attachments the materials name, to show and link them.
    files: Vec<(String, String)>,
    handling_forms: Vec<&'static str>,
    /// Problems by field (`""`: the draft as a whole).
    errors: Vec<(String, String)>,
    changes: Vec<FieldChange>,
    is_new: bool,
    kinds: Vec<(String, String)>,
    natures: Vec<&'static str>,
    depths: Vec<&'static str>,
    situations: Vec<&'static str>,
    /// What the reviewer typed as a reason, after a refused rejection.
    reason: String,
}

/// One situation of the form: its index, its materials' row prefix and rows.
struct SituationRows {
    k: usize,
    prefix: String,
    rows: Vec<usize>,
}

impl DraftPage<'_> {
    /// A material row's field: `{prefix}_{field}_{i}`.
    fn mrow(&self, prefix: &str, field: &str, i: impl std::fmt::Display) -> &str {
        self.v(&format!("{prefix}_{field}_{i}"))
    }

    /// The names of the item's own materials, as the form holds them, for the situations
    /// to leave out.
    fn own_materials(&self) -> Vec<&str> {
        (0..MAX_ROWS)
            .map(|i| self.v(&format!("m_name_{i}")).trim())
            .filter(|name| !name.is_empty())
            .collect()
    }

    /// Whether situation `k` leaves out the material `name`.
    fn leaves_out(&self, k: impl std::fmt::Display, name: &str) -> bool {
        let key = format!("s_not_{k}");
        self.values.iter().any(|(f, v)| f == &key && v == name)
    }

    /// An attachment's file name, or its id when it is not held here.
    fn file_name<'b>(&'b self, id: &'b str) -> &'b str {
        self.files
            .iter()
            .find(|(known, _)| known == id)
            .map_or(id, |(_, name)| name.as_str())
    }

    fn v(&self, name: &str) -> &str {
        self.values
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    fn row(&self, prefix: &str, i: &usize) -> &str {
        self.v(&format!("{prefix}_{i}"))
    }

    fn ticked(&self, name: &str) -> bool {
        !self.v(name).is_empty()
    }

    fn row_ticked(&self, prefix: &str, i: &usize) -> bool {
        !self.row(prefix, i).is_empty()
    }

    fn errors_for(&self, name: &str) -> Vec<&str> {
        self.errors
            .iter()
            .filter(|(f, _)| f == name)
            .map(|(_, e)| e.as_str())
            .collect()
    }

    /// Problems of fields the form has no place for, and of the draft as a whole.
    fn general_errors(&self) -> Vec<&str> {
        self.errors
            .iter()
            .filter(|(f, _)| !FORM_FIELDS.contains(&f.as_str()))
            .map(|(_, e)| e.as_str())
            .collect()
    }

    fn applies(&self, key: &str) -> &str {
        self.v(&format!("cl_{key}"))
    }

    fn note(&self, key: &str) -> &str {
        self.v(&format!("cl_note_{key}"))
    }

    fn answer(&self, key: &str) -> Option<&ChecklistAnswer> {
        self.draft.checklist.iter().find(|a| a.situation == key)
    }

    fn item_code(&self) -> String {
        code_of(&self.draft)
    }

    /// An item field's name in the reader's language; a field this build has no words
    /// for (a newer item's) shows as it is named in the catalog file.
    fn label(&self, field: &str) -> String {
        let words = self.t.get(&format!("item_field.{field}")).into_owned();
        if words.contains('⟦') {
            field.to_string()
        } else {
            words
        }
    }
}

/// The item's fields the form edits and shows problems beside.
const FORM_FIELDS: [&str; 34] = [
    "impl_code",
    "parts",
    "decided_by",
    "handling_forms",
    "booking",
    "situations",
    "yellow",
    "effective_date",
    "name",
    "kind",
    "category",
    "subject",
    "delegated_by",
    "service_objects",
    "legal_basis",
    "conditions",
    "place",
    "process",
    "case_type",
    "legal_limit_days",
    "legal_extension_days",
    "committed_limit_days",
    "materials",
    "special_procedures",
    "online_depth",
    "fees",
    "query_channels",
    "consultation",
    "complaint",
    "remedies",
    "result",
    "visits",
    "checklist",
    "reason",
];

fn code_of(draft: &Draft) -> String {
    if draft.impl_code.is_empty() {
        draft.body["impl_code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    } else {
        draft.impl_code.clone()
    }
}

fn staff_of(session: &super::session::Session) -> Staff {
    Staff {
        username: session.username.clone(),
        counter: session.counter.clone(),
        role: session.role,
    }
}

/// Whether a person of this role reads the drafts here (drafts or reviews them).
fn may_read(state: &WebState, role: crate::store::Role) -> Result<(), StoreError> {
    let node = state.store.own_record();
    if may_author(node, role, None, AuthoringAct::Review).is_ok() {
        return Ok(());
    }
    may_author(node, role, None, AuthoringAct::Draft).map_err(authoring_refused)
}

/// `GET /catalog/drafts`: the drafts, and the forms that start one.
pub async fn index(State(state): State<WebState>, ctx: Ctx) -> Response {
    list(&state, &ctx, StatusCode::OK, None).await
}

async fn list(state: &WebState, ctx: &Ctx, status: StatusCode, error: Option<String>) -> Response {
    let Some(session) = ctx.session.as_ref() else {
        return ctx.to_signin();
    };
    if let Err(e) = may_read(state, session.role) {
        return store_failed(ctx, e);
    }
    let drafts = match state.store.drafts(LIST_LIMIT).await {
        Ok(drafts) => drafts,
        Err(e) => return store_failed(ctx, e),
    };
    let may_draft = may_author(
        state.store.own_record(),
        session.role,
        None,
        AuthoringAct::Draft,
    )
    .is_ok();
    render(
        ctx.t,
        status,
        DraftsPage {
            chrome: ctx.chrome(),
            t: ctx.t,
            csrf: &session.csrf,
            drafts,
            may_draft,
            error,
        },
    )
}

/// `POST /catalog/drafts`: starts a draft (kind, and the item for a change or cancellation).
pub async fn create(
    State(state): State<WebState>,
    StaffForm { ctx, staff, form }: StaffForm<Fields>,
) -> Response {
    let kind = DraftKind::parse(field(&form, "kind")).unwrap_or(DraftKind::New);
    let item = Some(field(&form, "item").to_string()).filter(|s| !s.is_empty());
    match state
        .store
        .create_draft(kind, item, staff_of(&staff), state.clock.now_ms())
        .await
    {
        Ok(draft) => Redirect::to(&format!("/catalog/drafts/{}", draft.id)).into_response(),
        Err(e) if e.class().status() < 500 => {
            let status = StatusCode::from_u16(e.class().status())
                .unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            list(&state, &ctx, status, Some(ctx.t.words(&e.words()))).await
        }
        Err(e) => store_failed(&ctx, e),
    }
}

/// `GET /catalog/drafts/{id}`: the draft's form, or its review, or its result.
pub async fn show(State(state): State<WebState>, ctx: Ctx, Path(id): Path<String>) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return super::not_found(ctx).await;
    };
    page(
        &state,
        &ctx,
        id,
        StatusCode::OK,
        None,
        Vec::new(),
        String::new(),
    )
    .await
}

async fn page(
    state: &WebState,
    ctx: &Ctx,
    id: i64,
    status: StatusCode,
    typed: Option<Fields>,
    mut errors: Vec<(String, String)>,
    reason: String,
) -> Response {
    let Some(session) = ctx.session.as_ref() else {
        return ctx.to_signin();
    };
    if let Err(e) = may_read(state, session.role) {
        return store_failed(ctx, e);
    }
    let (draft, base) = match state.store.draft(id).await {
        Ok(found) => found,
        Err(e) => return store_failed(ctx, e),
    };
    let node = state.store.own_record();
    let editable = matches!(draft.status, DraftStatus::Editing | DraftStatus::Rejected)
        && may_author(node, session.role, draft.level(), AuthoringAct::Draft).is_ok();
    let reviewable = draft.status == DraftStatus::Submitted
        && may_review(
            node,
            session.role,
            draft.level(),
            &session.username,
            &draft.drafted_by,
            &draft.edited_by,
        )
        .is_ok();
    // What stops the stored draft being published, shown beside its fields (unless a
    // refusal just named them).
    if typed.is_none() && editable && errors.is_empty() {
        errors.extend(problems(ctx.t, &draft));
    }
    let values = typed.unwrap_or_else(|| form_values(&draft.body, &draft.checklist));
    // Rows up to the last named one, and spare ones below.
    let filled = |prefix: &str| {
        (0..MAX_ROWS)
            .rev()
            .find(|i| {
                let key = format!("{prefix}_{i}");
                values
                    .iter()
                    .any(|(k, v)| k == &key && !v.trim().is_empty())
            })
            .map_or(0, |last| last + 1)
    };
    let material_rows = (0..filled("m_name") + SPARE_ROWS).collect();
    let procedure_rows = (0..filled("p_name") + SPARE_ROWS).collect();
    let situation_rows = (0..filled("s_name") + SPARE_SITUATIONS)
        .map(|k| {
            let prefix = format!("s{k}m");
            let rows = (0..filled(&format!("{prefix}_name")) + SPARE_SITUATION_ROWS).collect();
            SituationRows { k, prefix, rows }
        })
        .collect();
    let mut departments: Vec<(String, String)> = Vec::new();
    match state.store.departments().await {
        Ok(known) => {
            for d in known {
                if !departments.iter().any(|(code, _)| code == &d.code) {
                    departments.push((d.code, d.name));
                }
            }
        }
        Err(e) => return store_failed(ctx, e),
    }
    // A department this node does not know (yet) stays chosen, never silently dropped.
    let chosen = field(&values, "decided_by").to_string();
    if !chosen.is_empty() && !departments.iter().any(|(code, _)| code == &chosen) {
        departments.push((chosen.clone(), chosen));
    }
    let mut files: Vec<(String, String)> = Vec::new();
    for (key, id) in &values {
        let is_file = key.starts_with('m') || key.starts_with('s');
        let is_file = is_file
            && (key.contains("_blank_") || key.contains("_sample_"))
            && !key.contains("_drop_");
        if !is_file || id.trim().is_empty() || files.iter().any(|(known, _)| known == id) {
            continue;
        }
        match state.store.get_attachment(id.trim().to_string()).await {
            Ok((attachment, _)) => files.push((id.clone(), attachment.name)),
            // Not held here (or not an attachment): shown as its id, and validation
            // says what is wrong with it.
            Err(e) if e.class().status() == 404 => {}
            Err(e) => return store_failed(ctx, e),
        }
    }
    let changes = diff(base.as_ref(), &draft.body);
    render(
        ctx.t,
        status,
        DraftPage {
            chrome: ctx.chrome(),
            t: ctx.t,
            csrf: &session.csrf,
            is_new: draft.kind == DraftKind::New,
            draft,
            editable,
            reviewable,
            values,
            material_rows,
            procedure_rows,
            situation_rows,
            departments,
            files,
            handling_forms: HandlingForm::ALL.iter().map(|f| f.as_str()).collect(),
            errors,
            changes,
            kinds: PowerKind::ALL
                .iter()
                .map(|k| (snake(k), format!("power.{}", k.code())))
                .collect(),
            natures: vec![
                "statutory_body",
                "authorised_organisation",
                "entrusted_organisation",
            ],
            depths: vec![
                "none",
                "consultation",
                "submission",
                "pre_review",
                "acceptance",
                "handling",
                "result_online",
                "electronic_certificate",
            ],
            situations: SIMPLIFICATION.to_vec(),
            reason,
        },
    )
}

/// `POST /catalog/drafts/{id}`: saves the form, and submits it when asked.
pub async fn save(
    State(state): State<WebState>,
    Path(id): Path<String>,
    StaffForm { ctx, staff, form }: StaffForm<Fields>,
) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return super::not_found(ctx).await;
    };
    let (stored, _) = match state.store.draft(id).await {
        Ok(found) => found,
        Err(e) => return store_failed(&ctx, e),
    };
    let (body, checklist, errors) = read_form(ctx.t, &form, &stored.body);
    if !errors.is_empty() {
        return page(
            &state,
            &ctx,
            id,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(form),
            errors,
            String::new(),
        )
        .await;
    }
    let revision = field(&form, "revision").parse().unwrap_or(0);
    let now = state.clock.now_ms();
    let edit = DraftEdit {
        body,
        checklist,
        revision,
    };
    let saved = state
        .store
        .save_draft(id, edit, staff_of(&staff), now)
        .await;
    let result = match saved {
        Ok(saved) if field(&form, "then") == "submit" => state
            .store
            .submit_draft(id, saved.revision, staff_of(&staff), now)
            .await
            .map(|_| ())
            // Saved but not submitted: the form shows the saved draft and why.
            .map_err(|e| (e, true)),
        Ok(_) => Ok(()),
        Err(e) => Err((e, false)),
    };
    match result {
        Ok(()) => Redirect::to(&format!("/catalog/drafts/{id}")).into_response(),
        Err((e, _)) if e.class().status() >= 500 => store_failed(&ctx, e),
        Err((e, saved)) => {
            let status = StatusCode::from_u16(e.class().status())
                .unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            let errors = located(ctx.t, &e);
            // After a save the form holds the new revision; before, what was typed.
            let typed = (!saved).then_some(form);
            page(&state, &ctx, id, status, typed, errors, String::new()).await
        }
    }
}

/// `POST /catalog/drafts/{id}/review`: approve, or send back with a reason.
pub async fn review(
    State(state): State<WebState>,
    Path(id): Path<String>,
    StaffForm { ctx, staff, form }: StaffForm<Fields>,
) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return super::not_found(ctx).await;
    };
    let revision = field(&form, "revision").parse().unwrap_or(0);
    let reason = field(&form, "reason").to_string();
    let decision = if field(&form, "decision") == "approve" {
        Review::Approve
    } else {
        Review::Reject {
            reason: reason.clone(),
        }
    };
    match state
        .store
        .review_draft(
            id,
            revision,
            decision,
            staff_of(&staff),
            state.clock.now_ms(),
        )
        .await
    {
        Ok(_) => Redirect::to(&format!("/catalog/drafts/{id}")).into_response(),
        Err(e) if e.class().status() >= 500 => store_failed(&ctx, e),
        Err(e) => {
            let status = StatusCode::from_u16(e.class().status())
                .unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            let message = ctx.t.words(&e.words());
            let at = if e.words().code == "draft_reason" {
                "reason"
            } else {
                ""
            };
            page(
                &state,
                &ctx,
                id,
                status,
                None,
                vec![(at.into(), message)],
                reason,
            )
            .await
        }
    }
}

/// `?name=` of an upload: the file name people download it as.
#[derive(Debug, serde::Deserialize)]
pub struct UploadQuery {
    #[serde(default)]
    name: String,
}

/// `POST /catalog/attachments?name=…`: the draft page's upload of a blank form or sample
/// (空表/样表). The body is the file itself with its type as `Content-Type` and the
/// session's CSRF token in `X-CSRF-Token` (a form cannot send a file's own bytes, and
/// axum here reads no multipart); it is published by the store's one call the API's
/// `POST /api/v1/attachments` makes, by the same rule of who may (the engine's
/// `may_author` for drafting), and answers `201` with the attachment's id and name, or
/// the refusal as a page whose message the script shows beside the file.
pub async fn upload(
    State(state): State<WebState>,
    ctx: Ctx,
    axum::extract::Query(query): axum::extract::Query<UploadQuery>,
    request: axum::extract::Request,
) -> Response {
    let Some(session) = ctx.session.as_ref() else {
        return ctx.to_signin();
    };
    let sent = request
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if let Some(refused) = super::refuse_without_csrf(&ctx, session, &sent) {
        return refused;
    }
    if let Err(e) = may_author(
        state.store.own_record(),
        session.role,
        None,
        AuthoringAct::Draft,
    ) {
        return store_failed(&ctx, authoring_refused(e));
    }
    let content_type = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    // At most one byte more than an attachment holds, to tell an oversize file.
    let Ok(bytes) = axum::body::to_bytes(request.into_body(), MAX_BYTES + 1).await else {
        let words = Words::from(&AttachmentError::TooLarge {
            size: MAX_BYTES as u64 + 1,
        });
        return super::message(
            &ctx,
            StatusCode::PAYLOAD_TOO_LARGE,
            "error.invalid",
            ctx.t.words(&words),
        );
    };
    let division = match DivisionCode::parse(&state.node.division) {
        Ok(division) => division,
        Err(e) => return store_failed(&ctx, StoreError::Internal(e.to_string())),
    };
    match state
        .store
        .publish_attachment(
            Scope::catalog(&division),
            query.name,
            content_type,
            bytes.to_vec(),
            state.clock.now_ms(),
        )
        .await
    {
        Ok((id, attachment)) => (
            StatusCode::CREATED,
            axum::Json(json!({ "id": id.to_string(), "name": attachment.name })),
        )
            .into_response(),
        Err(e) => store_failed(&ctx, e),
    }
}

/// `GET /catalog/attachments/{id}`: a blank form or sample for those who read the drafts,
/// before any published item offers it (a guide serves the published ones, publicly).
pub async fn attachment(
    State(state): State<WebState>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Response {
    let Some(session) = ctx.session.as_ref() else {
        return ctx.to_signin();
    };
    if let Err(e) = may_read(&state, session.role) {
        return store_failed(&ctx, e);
    }
    match state.store.get_attachment(id).await {
        Ok((attachment, bytes)) => {
            let mut response = super::guide::attachment_response(&attachment, bytes);
            // Staff-only: never kept by a shared cache.
            response.headers_mut().insert(
                axum::http::header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("private, no-store"),
            );
            response
        }
        Err(e) => store_failed(&ctx, e),
    }
}

/// What stops `draft` being published, each problem at its field.
fn problems(t: &Tr, draft: &Draft) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let code = code_of(draft);
    if let Err(e) = ImplCode::parse(&code) {
        found.push(("impl_code".to_string(), t.words(&Words::from(&e))));
        return found;
    }
    if let Err(e) = draft.item() {
        found.extend(located(t, &e));
    }
    found
}

/// A store's refusal in the reader's language, at the field it names: an invalid item's
/// problems each at their field, anything else at the draft as a whole (or the
/// checklist).
fn located(t: &Tr, e: &StoreError) -> Vec<(String, String)> {
    match e {
        StoreError::Item(invalid) => invalid
            .problems
            .iter()
            .map(|p| (field_of(&p.field), t.words(&Words::from(p))))
            .collect(),
        other => {
            let words = other.words();
            let at = match words.code {
                "draft_checklist" | "draft_checklist_note" => "checklist",
                _ => "",
            };
            vec![(at.to_string(), t.words(&words))]
        }
    }
}

/// The form's field for an item problem's path (`materials[1].name` → `materials`).
fn field_of(problem: &str) -> String {
    problem
        .chars()
        .take_while(|c| c.is_ascii_lowercase() || *c == '_')
        .collect()
}

fn snake<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// A list of texts as lines.
fn lines_of(value: &Value) -> String {
    value
        .as_array()
        .map(|a| a.iter().map(text).collect::<Vec<_>>().join("\n"))
        .unwrap_or_default()
}

/// A list of objects as lines of `|`-separated fields.
fn rows_of(value: &Value, keys: &[&str]) -> String {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .map(|entry| {
                    let parts: Vec<String> = keys.iter().map(|k| text(&entry[*k])).collect();
                    let trimmed = parts
                        .iter()
                        .rposition(|p| !p.is_empty())
                        .map_or(0, |last| last + 1);
                    parts[..trimmed.max(1)].join(" | ")
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

/// The form's values for a stored draft.
fn form_values(body: &Value, checklist: &[ChecklistAnswer]) -> Fields {
    let mut values: Fields = Vec::new();
    let mut put = |k: &str, v: String| values.push((k.to_string(), v));
    for key in [
        "impl_code",
        "name",
        "kind",
        "category",
        "delegated_by",
        "case_type",
        "legal_limit_days",
        "legal_extension_days",
        "committed_limit_days",
        "online_depth",
        "remedies",
        "result",
        "visits",
    ] {
        put(key, text(&body[key]));
    }
    put("effective_date", text(&body["effective_date"]));
    put("subject_name", text(&body["subject"]["name"]));
    put("subject_nature", text(&body["subject"]["nature"]));
    put("place_address", text(&body["place"]["address"]));
    put("place_hours", text(&body["place"]["hours"]));
    for object in ["natural_person", "legal_person"] {
        let on = body["service_objects"]
            .as_array()
            .is_some_and(|a| a.iter().any(|o| o == object));
        put(
            &format!("obj_{object}"),
            if on { "on".into() } else { String::new() },
        );
    }
    for key in ["conditions", "query_channels", "consultation", "complaint"] {
        put(key, lines_of(&body[key]));
    }
    put(
        "legal_basis",
        rows_of(&body["legal_basis"], &["title", "article"]),
    );
    put(
        "process",
        rows_of(&body["process"], &["name", "days", "post"]),
    );
    put(
        "fees",
        rows_of(&body["fees"], &["name", "standard", "basis"]),
    );
    put(
        "parts",
        rows_of(&body["parts"], &["department", "name", "limit_days"]),
    );
    put_materials(&mut put, "m", &body["materials"]);
    for (k, situation) in body["situations"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        put(&format!("s_name_{k}"), text(&situation["name"]));
        for name in situation["not_needed"].as_array().into_iter().flatten() {
            put(&format!("s_not_{k}"), text(name));
        }
        put_materials(&mut put, &format!("s{k}m"), &situation["adds"]);
    }
    for form in HandlingForm::ALL {
        let on = body["handling_forms"]
            .as_array()
            .is_some_and(|a| a.iter().any(|f| f == form.as_str()));
        put(
            &format!("hf_{}", form.as_str()),
            if on { "on".into() } else { String::new() },
        );
    }
    put(
        "booking",
        if body["booking"] == true {
            "on".into()
        } else {
            String::new()
        },
    );
    put("decided_by", text(&body["decided_by"]));
    put("yellow_rule", text(&body["yellow"]["rule"]));
    put("yellow_value", text(&body["yellow"]["value"]));
    for (i, p) in body["special_procedures"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        put(&format!("p_name_{i}"), text(&p["name"]));
        put(&format!("p_max_{i}"), text(&p["max_days"]));
        put(
            &format!("p_counted_{i}"),
            if p["counted"] == true {
                "on".into()
            } else {
                String::new()
            },
        );
    }
    for answer in checklist {
        put(
            &format!("cl_{}", answer.situation),
            if answer.applies { "yes" } else { "no" }.into(),
        );
        put(
            &format!("cl_note_{}", answer.situation),
            answer.note.clone(),
        );
    }
    values
}

/// A material's optional texts: (the form's name for it, the item's field). Absent
/// fields are left out of the item, as the item writes them (`skip_serializing_if`), so
/// an unchanged material is no change in the diff.
const MATERIAL_TEXTS: [(&str, &str); 7] = [
    ("source", "source"),
    ("issuer", "issuer"),
    ("form", "form"),
    ("paper", "paper_spec"),
    ("standard", "standard"),
    ("blank", "blank_form"),
    ("sample", "sample"),
];

/// Puts a list of materials into the form as rows `{prefix}_{field}_{i}`: the item's own
/// (`m`) and each situation's additions (`s{k}m`) take the same row.
fn put_materials(put: &mut impl FnMut(&str, String), prefix: &str, materials: &Value) {
    for (i, m) in materials.as_array().into_iter().flatten().enumerate() {
        put(&format!("{prefix}_name_{i}"), text(&m["name"]));
        put(&format!("{prefix}_originals_{i}"), text(&m["originals"]));
        put(&format!("{prefix}_copies_{i}"), text(&m["copies"]));
        put(
            &format!("{prefix}_required_{i}"),
            if m["required"] == true {
                "on".into()
            } else {
                String::new()
            },
        );
        put(&format!("{prefix}_condition_{i}"), text(&m["condition"]));
        put(&format!("{prefix}_note_{i}"), text(&m["note"]));
        for (form, field) in MATERIAL_TEXTS {
            put(&format!("{prefix}_{form}_{i}"), text(&m[field]));
        }
    }
}

/// Reads the material rows `{prefix}_…_{i}` (rows without a name are not kept) over the
/// stored list, each row's numbers refused at `at`.
fn read_materials(
    t: &Tr,
    raw: &dyn Fn(&str) -> String,
    prefix: &str,
    stored: &Value,
    at: &str,
    errors: &mut Vec<(String, String)>,
) -> Value {
    let mut rows = Vec::new();
    for i in 0..MAX_ROWS {
        let name = raw(&format!("{prefix}_name_{i}"));
        if name.trim().is_empty() {
            continue;
        }
        let trimmed = |k: &str| raw(&format!("{prefix}_{k}_{i}")).trim().to_string();
        let optional = |k: &str| match trimmed(k) {
            v if v.is_empty() => Value::Null,
            v => json!(v),
        };
        let mut number = |k: &str| match trimmed(k).parse::<u32>() {
            Ok(n) => json!(n),
            Err(_) => {
                errors.push((at.to_string(), t.words(&Words::new("draft_number"))));
                json!(0)
            }
        };
        let mut row = json!({
            "name": name.trim(),
            "originals": number("originals"),
            "copies": number("copies"),
            "required": !trimmed("required").is_empty(),
            "condition": optional("condition"),
            "note": optional("note"),
        });
        for (form, field) in MATERIAL_TEXTS {
            let dropped = !trimmed(&format!("{form}_drop")).is_empty();
            row[field] = if dropped { Value::Null } else { optional(form) };
        }
        rows.push(row);
    }
    let mut merged = keep_rest(stored, rows, "name");
    for entry in merged.as_array_mut().into_iter().flatten() {
        if let Some(fields) = entry.as_object_mut() {
            for (_, field) in MATERIAL_TEXTS {
                if fields.get(field) == Some(&Value::Null) {
                    fields.remove(field);
                }
            }
        }
    }
    merged
}

/// Reads the form into the item's JSON form, over the stored body (so fields the form
/// does not show are kept), and the checklist; numbers that do not read are refused
/// at their field.
fn read_form(
    t: &Tr,
    form: &Fields,
    stored: &Value,
) -> (Value, Vec<ChecklistAnswer>, Vec<(String, String)>) {
    let mut errors: Vec<(String, String)> = Vec::new();
    let mut body = stored.clone();
    if !body.is_object() {
        body = json!({});
    }
    let raw = |name: &str| -> String {
        form.iter()
            .find(|(k, _)| k == name)
            .map_or(String::new(), |(_, v)| v.clone())
    };
    let number = |name: &str, errors: &mut Vec<(String, String)>| -> Value {
        let typed = raw(name);
        match typed.trim().parse::<u32>() {
            Ok(n) => json!(n),
            Err(_) => {
                errors.push((name.to_string(), t.words(&Words::new("draft_number"))));
                json!(0)
            }
        }
    };
    let lines = |name: &str| -> Value {
        Value::Array(
            raw(name)
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|l| json!(l))
                .collect(),
        )
    };
    let split = |line: &str| -> Vec<String> {
        line.split(['|', '｜'])
            .map(|p| p.trim().to_string())
            .collect()
    };
    let code = raw("impl_code").trim().to_string();
    if let Err(e) = ImplCode::parse(&code) {
        errors.push(("impl_code".into(), t.words(&Words::from(&e))));
    }
    body["impl_code"] = json!(code);
    for key in [
        "name",
        "kind",
        "category",
        "case_type",
        "online_depth",
        "result",
    ] {
        body[key] = json!(raw(key).trim());
    }
    body["remedies"] = json!(raw("remedies").trim());
    match raw("effective_date").trim() {
        "" => {
            body.as_object_mut().map(|o| o.remove("effective_date"));
        }
        date => {
            if date.parse::<yizhan_sync::domain::calendar::Date>().is_err() {
                errors.push(("effective_date".into(), t.words(&Words::new("draft_date"))));
            }
            body["effective_date"] = json!(date);
        }
    }
    match raw("delegated_by").trim() {
        "" => {
            body.as_object_mut().map(|o| o.remove("delegated_by"));
        }
        department => body["delegated_by"] = json!(department),
    }
    body["subject"] =
        json!({ "name": raw("subject_name").trim(), "nature": raw("subject_nature").trim() });
    body["place"] =
        json!({ "address": raw("place_address").trim(), "hours": raw("place_hours").trim() });
    body["service_objects"] = Value::Array(
        ["natural_person", "legal_person"]
            .into_iter()
            .filter(|o| !raw(&format!("obj_{o}")).is_empty())
            .map(|o| json!(o))
            .collect(),
    );
    for key in ["conditions", "query_channels", "consultation", "complaint"] {
        body[key] = lines(key);
    }
    for key in [
        "legal_limit_days",
        "legal_extension_days",
        "committed_limit_days",
        "visits",
    ] {
        body[key] = number(key, &mut errors);
    }
    let mut basis = Vec::new();
    for line in raw("legal_basis").lines().filter(|l| !l.trim().is_empty()) {
        let parts = split(line);
        basis.push(
            json!({ "title": parts[0], "article": parts.get(1).cloned().unwrap_or_default() }),
        );
    }
    body["legal_basis"] = keep_rest(&stored["legal_basis"], basis, "title");
    let mut steps = Vec::new();
    for line in raw("process").lines().filter(|l| !l.trim().is_empty()) {
        let parts = split(line);
        let days = match parts.get(1).map(String::as_str) {
            None | Some("") => Value::Null,
            Some(days) => match days.parse::<u32>() {
                Ok(n) => json!(n),
                Err(_) => {
                    errors.push(("process".into(), t.words(&Words::new("draft_number"))));
                    Value::Null
                }
            },
        };
        let post = parts
            .get(2)
            .filter(|p| !p.is_empty())
            .map_or(Value::Null, |p| json!(p));
        steps.push(json!({ "name": parts[0], "days": days, "post": post }));
    }
    body["process"] = keep_rest(&stored["process"], steps, "name");
    // A step without a post has none, as the item writes it (no `post` at all).
    for step in body["process"].as_array_mut().into_iter().flatten() {
        if step["post"].is_null()
            && let Some(fields) = step.as_object_mut()
        {
            fields.remove("post");
        }
    }
    let mut fees = Vec::new();
    for line in raw("fees").lines().filter(|l| !l.trim().is_empty()) {
        let parts = split(line);
        let part = |i: usize| parts.get(i).cloned().unwrap_or_default();
        fees.push(json!({ "name": part(0), "standard": part(1), "basis": part(2) }));
    }
    body["fees"] = keep_rest(&stored["fees"], fees, "name");
    // 并联审批 (§7.5): one part a line, department code | what it decides | its own limit.
    let mut parts = Vec::new();
    for line in raw("parts").lines().filter(|l| !l.trim().is_empty()) {
        let cells = split(line);
        let cell = |i: usize| cells.get(i).cloned().unwrap_or_default();
        let mut part = json!({ "department": cell(0), "name": cell(1) });
        match cells.get(2).map(String::as_str) {
            None | Some("") => {}
            Some(days) => match days.parse::<u32>() {
                Ok(n) => part["limit_days"] = json!(n),
                Err(_) => errors.push(("parts".into(), t.words(&Words::new("draft_number")))),
            },
        }
        parts.push(part);
    }
    // No parts: none at all, as the item writes it.
    if parts.is_empty() {
        if let Some(fields) = body.as_object_mut() {
            fields.remove("parts");
        }
    } else {
        body["parts"] = Value::Array(parts);
    }
    body["materials"] =
        read_materials(t, &raw, "m", &stored["materials"], "materials", &mut errors);
    let mut procedures = Vec::new();
    for i in 0..MAX_ROWS {
        let name = raw(&format!("p_name_{i}"));
        if !name.trim().is_empty() {
            let max = raw(&format!("p_max_{i}"));
            let max_days = if max.trim().is_empty() {
                Value::Null
            } else {
                number(&format!("p_max_{i}"), &mut errors)
            };
            procedures.push(json!({
                "name": name.trim(),
                "max_days": max_days,
                "counted": !raw(&format!("p_counted_{i}")).is_empty(),
            }));
        }
    }
    body["special_procedures"] = keep_rest(&stored["special_procedures"], procedures, "name");
    let mut situations = Vec::new();
    for k in 0..MAX_ROWS {
        let name = raw(&format!("s_name_{k}"));
        if name.trim().is_empty() {
            continue;
        }
        let stored_situation = stored["situations"]
            .as_array()
            .and_then(|all| all.iter().find(|s| s["name"] == name.trim()))
            .unwrap_or(&Value::Null);
        let not_needed: Vec<Value> = form
            .iter()
            .filter(|(key, v)| key == &format!("s_not_{k}") && !v.trim().is_empty())
            .map(|(_, v)| json!(v.trim()))
            .collect();
        let adds = read_materials(
            t,
            &raw,
            &format!("s{k}m"),
            &stored_situation["adds"],
            "situations",
            &mut errors,
        );
        let mut situation = json!({ "name": name.trim() });
        if adds.as_array().is_some_and(|a| !a.is_empty()) {
            situation["adds"] = adds;
        }
        if !not_needed.is_empty() {
            situation["not_needed"] = Value::Array(not_needed);
        }
        situations.push(situation);
    }
    let forms: Vec<Value> = HandlingForm::ALL
        .iter()
        .filter(|f| !raw(&format!("hf_{}", f.as_str())).is_empty())
        .map(|f| json!(f.as_str()))
        .collect();
    let object = body.as_object_mut().expect("made an object above");
    // Left out when empty, as the item writes them, so an unchanged item is no change.
    for (key, value) in [
        ("situations", Value::Array(situations)),
        ("handling_forms", Value::Array(forms)),
        ("booking", json!(!raw("booking").is_empty())),
        ("decided_by", json!(raw("decided_by").trim())),
    ] {
        let nothing = match &value {
            Value::Array(a) => a.is_empty(),
            Value::Bool(b) => !b,
            Value::String(s) => s.is_empty(),
            _ => false,
        };
        if nothing {
            object.remove(key);
        } else {
            object.insert(key.to_string(), value);
        }
    }
    match raw("yellow_rule").trim() {
        // A form from before the rule was on it keeps the stored one.
        "" => {}
        rule => {
            let value = number("yellow_value", &mut errors);
            body["yellow"] = json!({ "rule": rule, "value": value });
        }
    }
    // Numbers refused inside a row are shown at the rows' field.
    for (field, _) in errors.iter_mut() {
        if field.starts_with("m_") {
            *field = "materials".into();
        } else if field.starts_with("yellow_") {
            *field = "yellow".into();
        } else if field.starts_with("p_") {
            *field = "special_procedures".into();
        }
    }
    let checklist = SIMPLIFICATION
        .iter()
        .filter_map(|key| {
            let applies = raw(&format!("cl_{key}"));
            (!applies.is_empty()).then(|| ChecklistAnswer {
                situation: key.to_string(),
                applies: applies == "yes",
                note: raw(&format!("cl_note_{key}")).trim().to_string(),
            })
        })
        .collect();
    (body, checklist, errors)
}

/// The form's rows over the stored entries: each row keeps the fields of the stored entry
/// it edits (the one of the same name, else the one at its place) that the form does not
/// show, such as a material's source or blank form, so saving the form never drops them.
fn keep_rest(stored: &Value, rows: Vec<Value>, key: &str) -> Value {
    let stored: Vec<&serde_json::Map<String, Value>> = stored
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_object).collect())
        .unwrap_or_default();
    let names: Vec<&Value> = rows.iter().map(|r| &r[key]).collect();
    let mut used = vec![false; stored.len()];
    let merged = rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let same_name = stored
                .iter()
                .enumerate()
                .position(|(j, s)| !used[j] && s.get(key) == Some(&row[key]));
            let same_place = (i < stored.len()
                && !used[i]
                && !names.contains(&stored[i].get(key).unwrap_or(&Value::Null)))
            .then_some(i);
            let mut entry = match same_name.or(same_place) {
                Some(j) => {
                    used[j] = true;
                    stored[j].clone()
                }
                None => serde_json::Map::new(),
            };
            if let Some(fields) = row.as_object() {
                for (k, v) in fields {
                    entry.insert(k.clone(), v.clone());
                }
            }
            Value::Object(entry)
        })
        .collect();
    Value::Array(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every demo item, put into the form and read back unchanged, is the same item:
    /// the form shows every element a guide prints and drops none, so saving an
    /// untouched form is no change in the review's diff.
    #[test]
    fn every_demo_item_reads_back_from_its_form_unchanged() {
        let t = Tr::of(crate::i18n::Lang::Zh);
        for item in crate::demo::demo_catalog() {
            let body = serde_json::to_value(&item).unwrap();
            let values = form_values(&body, &[]);
            // What the browser sends: the form's fields as the page fills them.
            let (read, _, errors) = read_form(t, &values, &body);
            assert!(errors.is_empty(), "{}: {errors:?}", item.name);
            assert_eq!(diff(Some(&body), &read), vec![], "{}", item.name);
            let back: yizhan_sync::domain::item::Item = serde_json::from_value(read).unwrap();
            assert_eq!(back, item);
            // Read over nothing stored (a new draft), the same item too: the form alone
            // carries every element.
            let (fresh, _, _) = read_form(
                t,
                &values,
                &json!({ "version": item.version, "status": "published" }),
            );
            let fresh: yizhan_sync::domain::item::Item = serde_json::from_value(fresh).unwrap();
            assert_eq!(fresh, item, "{}", item.name);
        }
    }

    /// Saving the form keeps what it does not show (a material's source and blank form, a
    /// step's post), follows a row by its name when rows move, and drops a removed row.
    #[test]
    fn the_form_keeps_the_fields_it_does_not_show() {
        let stored = json!([
            { "name": "户口簿", "copies": 1, "source": "government", "blank_form": "a1" },
            { "name": "委托书", "copies": 0, "source": "applicant" },
            { "name": "收入证明", "copies": 1, "sample": "a2" },
        ]);
        let rows = vec![
            json!({ "name": "收入证明", "copies": 2 }),
            json!({ "name": "户口簿", "copies": 1 }),
            json!({ "name": "新材料", "copies": 0 }),
        ];
        let merged = keep_rest(&stored, rows, "name");
        assert_eq!(
            merged,
            json!([
                { "name": "收入证明", "copies": 2, "sample": "a2" },
                { "name": "户口簿", "copies": 1, "source": "government", "blank_form": "a1" },
                { "name": "新材料", "copies": 0 },
            ])
        );
        // A renamed row in its place keeps its other fields.
        let merged = keep_rest(
            &stored,
            vec![json!({ "name": "户口本", "copies": 1 })],
            "name",
        );
        assert_eq!(merged[0]["blank_form"], "a1");
    }
}
