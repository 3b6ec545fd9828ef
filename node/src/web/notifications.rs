//! Notifications (通报, §10.3) in the pages: `/notifications` lists those held here (a
//! hall's own and its halls' above; at a station every hall's above it), each with the
//! stations it names for rectification, and offers the publish form where
//! `engine::may_issue_supervision` allows it. Publishing issues a supervision notice to
//! each station named (the store does both in one transaction).

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use yizhan_sync::domain::codes::{DivisionCode, DivisionLevel};
use yizhan_sync::engine::may_issue_supervision;

use super::cases::{Fields, field};
use super::{Chrome, Ctx, StaffForm, WebState, render, store_failed};
use crate::clock::minute_cst;
use crate::i18n::Tr;
use crate::store::{Month, NewNotification, NotificationView, Staff, SubtreeNode};

/// How many notifications the list shows at most.
const LIST_LIMIT: usize = 200;

#[derive(Template)]
#[template(path = "notifications.html")]
struct NotificationsPage<'a> {
    chrome: Chrome<'a>,
    t: &'static Tr,
    csrf: &'a str,
    rows: Vec<NotificationView>,
    /// Whether the publish form is offered, and the stations it may name.
    may_publish: bool,
    stations: Vec<SubtreeNode>,
    /// Values to show again after a refused form.
    month: String,
    title: String,
    text: String,
    figures: String,
    named: Vec<String>,
    reply_days: String,
    errors: Vec<String>,
}

impl NotificationsPage<'_> {
    fn time(&self, row: &NotificationView) -> String {
        minute_cst(row.notification.at.unix_ms() as i64)
    }

    fn is_named(&self, division: &str) -> bool {
        self.named.iter().any(|d| d == division)
    }
}

/// What a refused form sends back to show again.
#[derive(Default)]
struct Form {
    status: Option<StatusCode>,
    errors: Vec<String>,
    month: String,
    title: String,
    text: String,
    figures: String,
    named: Vec<String>,
    reply_days: String,
}

/// `GET /notifications`: the list, with the publish form where it is offered.
pub async fn index(State(state): State<WebState>, ctx: Ctx) -> Response {
    if ctx.session.is_none() {
        return ctx.to_signin();
    }
    page(&state, &ctx, Form::default()).await
}

async fn page(state: &WebState, ctx: &Ctx, form: Form) -> Response {
    let Some(session) = ctx.session.as_ref() else {
        return ctx.to_signin();
    };
    let rows = match state.store.notifications(LIST_LIMIT).await {
        Ok(rows) => rows,
        Err(e) => return store_failed(ctx, e),
    };
    let may_publish = may_issue_supervision(state.store.own_record(), session.role).is_ok();
    let stations = if may_publish {
        match state.store.subtree_nodes().await {
            Ok(nodes) => nodes
                .into_iter()
                .filter(|n| {
                    DivisionCode::parse(&n.division).map(|d| d.level())
                        == Ok(DivisionLevel::Community)
                })
                .collect(),
            Err(e) => return store_failed(ctx, e),
        }
    } else {
        Vec::new()
    };
    render(
        ctx.t,
        form.status.unwrap_or(StatusCode::OK),
        NotificationsPage {
            chrome: ctx.chrome(),
            t: ctx.t,
            csrf: &session.csrf,
            rows,
            may_publish,
            stations,
            month: if form.month.is_empty() {
                Month::of(state.today()).prev().to_string()
            } else {
                form.month
            },
            title: form.title,
            text: form.text,
            figures: form.figures,
            named: form.named,
            reply_days: if form.reply_days.is_empty() {
                "5".into()
            } else {
                form.reply_days
            },
            errors: form.errors,
        },
    )
}

/// `POST /notifications`: publish one (month, title, text, figures, stations, days).
pub async fn publish(
    State(state): State<WebState>,
    StaffForm { ctx, staff, form }: StaffForm<Fields>,
) -> Response {
    let named: Vec<String> = form
        .iter()
        .filter(|(k, _)| k == "station")
        .map(|(_, v)| v.trim().to_string())
        .collect();
    let mut refused = Form {
        status: None,
        errors: Vec::new(),
        month: field(&form, "month").trim().to_string(),
        title: field(&form, "title").to_string(),
        text: field(&form, "text").to_string(),
        figures: field(&form, "figures").to_string(),
        named: named.clone(),
        reply_days: field(&form, "reply_days").trim().to_string(),
    };
    let mut rectify = Vec::new();
    for division in &named {
        match DivisionCode::parse(division) {
            Ok(d) => rectify.push(d),
            Err(e) => {
                refused.status = Some(StatusCode::UNPROCESSABLE_ENTITY);
                refused
                    .errors
                    .push(ctx.t.words(&crate::i18n::Words::from(&e)));
                return page(&state, &ctx, refused).await;
            }
        }
    }
    let new = NewNotification {
        month: refused.month.clone(),
        title: refused.title.clone(),
        text: refused.text.clone(),
        figures: refused.figures.trim().to_string(),
        rectify,
        // An unreadable number is out of range: the core's refusal words it.
        reply_days: refused.reply_days.parse().unwrap_or(0),
    };
    let staff = Staff {
        username: staff.username.clone(),
        counter: staff.counter.clone(),
        role: staff.role,
    };
    match state
        .store
        .publish_notification(new, staff, state.clock.now_ms())
        .await
    {
        Ok(_) => Redirect::to("/notifications").into_response(),
        Err(e) => {
            let status = StatusCode::from_u16(e.class().status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            if status.is_server_error() {
                return store_failed(&ctx, e);
            }
            refused.status = Some(status);
            refused.errors.push(ctx.t.words(&e.words()));
            page(&state, &ctx, refused).await
        }
    }
}
