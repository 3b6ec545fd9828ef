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
use yizhan_sync::domain::codes::ImplCode;
use yizhan_sync::domain::draft::{
    ChecklistAnswer, DraftKind, DraftStatus, FieldChange, SIMPLIFICATION, diff,
};
use yizhan_sync::domain::item::PowerKind;
use yizhan_sync::engine::{AuthoringAct, may_author, may_review};

use super::cases::{Fields, field};
use super::{Chrome, Ctx, StaffForm, WebState, render, store_failed};
use crate::clock::minute_cst;
use crate::i18n::{Tr, Words};
use crate::store::{Draft, DraftEdit, Review, Staff, StoreError, authoring_refused};

/// How many drafts the list shows at most.
const LIST_LIMIT: u32 = 300;
/// Empty rows the form offers below the materials and procedures it has.
const SPARE_ROWS: usize = 3;

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

impl DraftPage<'_> {
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
const FORM_FIELDS: [&str; 28] = [
    "impl_code",
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
    let rows = |prefix: &str| {
        let filled = (0..200)
            .take_while(|i| values.iter().any(|(k, _)| k == &format!("{prefix}_{i}")))
            .count();
        (0..filled + SPARE_ROWS).collect::<Vec<_>>()
    };
    let material_rows = rows("m_name");
    let procedure_rows = rows("p_name");
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
    for (i, m) in body["materials"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        put(&format!("m_name_{i}"), text(&m["name"]));
        put(&format!("m_originals_{i}"), text(&m["originals"]));
        put(&format!("m_copies_{i}"), text(&m["copies"]));
        put(
            &format!("m_required_{i}"),
            if m["required"] == true {
                "on".into()
            } else {
                String::new()
            },
        );
        put(&format!("m_condition_{i}"), text(&m["condition"]));
        put(&format!("m_note_{i}"), text(&m["note"]));
    }
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
    let mut fees = Vec::new();
    for line in raw("fees").lines().filter(|l| !l.trim().is_empty()) {
        let parts = split(line);
        let part = |i: usize| parts.get(i).cloned().unwrap_or_default();
        fees.push(json!({ "name": part(0), "standard": part(1), "basis": part(2) }));
    }
    body["fees"] = keep_rest(&stored["fees"], fees, "name");
    let mut materials = Vec::new();
    let mut procedures = Vec::new();
    for i in 0..200 {
        let name = raw(&format!("m_name_{i}"));
        if !name.trim().is_empty() {
            let optional = |k: &str| {
                let v = raw(&format!("m_{k}_{i}"));
                if v.trim().is_empty() {
                    Value::Null
                } else {
                    json!(v.trim())
                }
            };
            materials.push(json!({
                "name": name.trim(),
                "originals": number(&format!("m_originals_{i}"), &mut errors),
                "copies": number(&format!("m_copies_{i}"), &mut errors),
                "required": !raw(&format!("m_required_{i}")).is_empty(),
                "condition": optional("condition"),
                "note": optional("note"),
            }));
        }
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
    body["materials"] = keep_rest(&stored["materials"], materials, "name");
    body["special_procedures"] = keep_rest(&stored["special_procedures"], procedures, "name");
    // Numbers refused inside a row are shown at the rows' field.
    for (field, _) in errors.iter_mut() {
        if field.starts_with("m_") {
            *field = "materials".into();
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
