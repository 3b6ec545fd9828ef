//! Departments (进驻部门, SZDB/Z 176 §9.6) in the pages: `/departments` lists those held
//! here with their seals, and offers a hall's admin the forms to create one and rotate a
//! seal where `engine::may_manage_departments` allows it; the store asks the same rule.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use yizhan_sync::domain::department::Department;
use yizhan_sync::engine::may_manage_departments;

use super::cases::{Fields, field};
use super::{Chrome, Ctx, StaffForm, WebState, render, store_failed};
use crate::clock::minute_cst;
use crate::i18n::Tr;
use crate::store::Staff;

#[derive(Template)]
#[template(path = "departments.html")]
struct DepartmentsPage<'a> {
    chrome: Chrome<'a>,
    t: &'static Tr,
    csrf: &'a str,
    rows: Vec<Department>,
    /// This hall's node (32 hex digits): its own departments get the rotate button.
    own: String,
    may_manage: bool,
    code: String,
    name: String,
    errors: Vec<String>,
}

impl DepartmentsPage<'_> {
    fn since(&self, ms: &u64) -> String {
        minute_cst(*ms as i64)
    }

    fn is_own(&self, d: &Department) -> bool {
        d.hall.to_hex() == self.own
    }

    fn seal_id(&self, d: &Department) -> String {
        d.doc_id().map(|id| id.to_string()).unwrap_or_default()
    }
}

/// `GET /departments`: the list, with the forms where offered.
pub async fn index(State(state): State<WebState>, ctx: Ctx) -> Response {
    page(
        &state,
        &ctx,
        StatusCode::OK,
        String::new(),
        String::new(),
        Vec::new(),
    )
    .await
}

async fn page(
    state: &WebState,
    ctx: &Ctx,
    status: StatusCode,
    code: String,
    name: String,
    errors: Vec<String>,
) -> Response {
    let Some(session) = ctx.session.as_ref() else {
        return ctx.to_signin();
    };
    let rows = match state.store.departments().await {
        Ok(rows) => rows,
        Err(e) => return store_failed(ctx, e),
    };
    let own = state.store.own_record();
    render(
        ctx.t,
        status,
        DepartmentsPage {
            chrome: ctx.chrome(),
            t: ctx.t,
            csrf: &session.csrf,
            rows,
            own: own.node.to_hex(),
            may_manage: may_manage_departments(own, session.role).is_ok(),
            code,
            name,
            errors,
        },
    )
}

fn staff_of(staff: &crate::web::session::Session) -> Staff {
    Staff {
        username: staff.username.clone(),
        counter: staff.counter.clone(),
        role: staff.role,
    }
}

/// `POST /departments`: create one (code, name) with its first seal.
pub async fn create(
    State(state): State<WebState>,
    StaffForm { ctx, staff, form }: StaffForm<Fields>,
) -> Response {
    let code = field(&form, "code").trim().to_string();
    let name = field(&form, "name").trim().to_string();
    match state
        .store
        .create_department(
            code.clone(),
            name.clone(),
            staff_of(&staff),
            state.clock.now_ms(),
        )
        .await
    {
        Ok(_) => Redirect::to("/departments").into_response(),
        Err(e) => refused(&state, &ctx, e, code, name).await,
    }
}

/// `POST /departments/{code}/rotate`: a new seal key for one of this hall's departments.
pub async fn rotate(
    State(state): State<WebState>,
    Path(code): Path<String>,
    StaffForm { ctx, staff, .. }: StaffForm<Fields>,
) -> Response {
    match state
        .store
        .rotate_department_seal(code, staff_of(&staff), state.clock.now_ms())
        .await
    {
        Ok(_) => Redirect::to("/departments").into_response(),
        Err(e) => refused(&state, &ctx, e, String::new(), String::new()).await,
    }
}

async fn refused(
    state: &WebState,
    ctx: &Ctx,
    e: crate::store::StoreError,
    code: String,
    name: String,
) -> Response {
    let status =
        StatusCode::from_u16(e.class().status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status.is_server_error() {
        return store_failed(ctx, e);
    }
    let why = ctx.t.words(&e.words());
    page(state, ctx, status, code, name, vec![why]).await
}
