//! A node's counters for its admin (`/admin/counters`, SZDB/Z 176 §7.4): number, name and
//! what each serves. The rules are the store's (`store::counters`).

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::cases::{Fields, field};
use super::{Chrome, Ctx, StaffForm, WebState, render, store_failed};
use crate::i18n::Tr;
use crate::store::{Counter, StoreError};

#[derive(Template)]
#[template(path = "admin_counters.html")]
struct CountersPage<'a> {
    chrome: Chrome<'a>,
    t: &'static Tr,
    csrf: &'a str,
    counters: Vec<Counter>,
    notice: Option<String>,
    error: Option<String>,
}

async fn page(
    state: &WebState,
    ctx: &Ctx,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    if let Some(refused) = ctx.refuse_unless_admin() {
        return refused;
    }
    let Some(staff) = ctx.session.as_ref() else {
        return ctx.to_signin();
    };
    match state.store.counters().await {
        Ok(counters) => render(
            ctx.t,
            status,
            CountersPage {
                chrome: ctx.chrome(),
                t: ctx.t,
                csrf: &staff.csrf,
                counters,
                notice,
                error,
            },
        ),
        Err(e) => store_failed(ctx, e),
    }
}

/// `GET /admin/counters`: the counters and the forms to manage them (admins only).
pub async fn index(State(state): State<WebState>, ctx: Ctx) -> Response {
    page(&state, &ctx, StatusCode::OK, None, None).await
}

/// `POST /admin/counters`: `action` `save` (add or rename) or `remove`.
pub async fn change(
    State(state): State<WebState>,
    StaffForm { ctx, form, .. }: StaffForm<Fields>,
) -> Response {
    if let Some(refused) = ctx.refuse_unless_admin() {
        return refused;
    }
    let number = field(&form, "number").to_string();
    let result = match field(&form, "action") {
        "remove" => state.store.remove_counter(number.clone()).await,
        _ => {
            let counter = Counter {
                number: number.clone(),
                name: field(&form, "name").to_string(),
                serves: field(&form, "serves").to_string(),
            };
            state.store.put_counter(counter, state.clock.now_ms()).await
        }
    };
    match result {
        Ok(()) => {
            let notice = ctx.t.with("counters.saved", "name", &number);
            page(&state, &ctx, StatusCode::OK, Some(notice), None).await
        }
        Err(e) => {
            let status = StatusCode::from_u16(e.class().status())
                .unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
            if status.is_server_error() {
                return store_failed(&ctx, e);
            }
            let why = ctx.t.words(&StoreError::words(&e));
            page(&state, &ctx, status, None, Some(why)).await
        }
    }
}
