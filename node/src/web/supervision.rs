//! Supervision notices (督办, §10.2) in the pages: `/supervision` lists them (at a hall,
//! those it and the halls below it issued, open, answered and overdue; at a station, those
//! it must answer), with the form to issue one where `engine::may_issue_supervision`
//! allows it and a reply form on each notice the station may answer
//! (`engine::may_supervise`). A case page links here with the case filled in.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use yizhan_sync::domain::codes::DivisionCode;
use yizhan_sync::domain::supervision::ReplyState;
use yizhan_sync::engine::{SupervisionAct, may_issue_supervision, may_supervise};
use yizhan_sync::ids::{DocId, DocKind};

use super::cases::{Fields, field};
use super::{Chrome, Ctx, StaffForm, WebState, render, store_failed};
use crate::clock::minute_cst;
use crate::i18n::Tr;
use crate::store::{NewSupervision, Staff, StoreError, SupervisionFilter, SupervisionView};
use crate::web::session::Session;

/// How many notices the list shows at most.
const LIST_LIMIT: usize = 200;

/// `?state=` and `?case=` of the list.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub case: Option<String>,
}

/// One notice as the page shows it.
struct Row {
    view: SupervisionView,
    /// Whether the signed-in person may reply to it here.
    may_reply: bool,
}

#[derive(Template)]
#[template(path = "supervision.html")]
struct SupervisionPage<'a> {
    chrome: Chrome<'a>,
    t: &'static Tr,
    csrf: &'a str,
    /// Whether this node is a hall (its list is of notices issued; a station's, to answer).
    hall: bool,
    rows: Vec<Row>,
    /// The state filter (`open`, …) or empty for all.
    state: String,
    /// The case the list is about, if any; the issue form names it.
    case: Option<String>,
    /// The station the issue form is for, when the case gives it.
    station: String,
    /// Whether the issue form is offered.
    may_issue: bool,
    /// Values to show again after a refused form.
    reason: String,
    todo: String,
    reply_days: String,
    errors: Vec<String>,
}

impl SupervisionPage<'_> {
    fn state_word(&self, row: &Row) -> String {
        self.t
            .get(&format!("supervision.state.{}", row.view.state.as_str()))
            .into_owned()
    }

    fn state_class(&self, row: &Row) -> &'static str {
        row.view.state.as_str()
    }

    /// The case's late step in words, when the notice is about a case with one (§10.2).
    fn late_step(&self, row: &Row) -> Option<String> {
        row.view.late_step.as_ref().map(|s| {
            self.t
                .get("step.late_line")
                .replace("{n}", &s.number.to_string())
                .replace("{name}", &s.name)
                .replace("{date}", &s.due.to_string())
                .replace("{days}", &s.late_days.to_string())
        })
    }

    /// Unanswered past its deadline: shown red (escalated).
    fn overdue(&self, row: &Row) -> bool {
        row.view.state == ReplyState::Overdue
    }

    fn is_current(&self, state: &str) -> bool {
        self.state == state
    }

    fn time(&self, unix_ms: u64) -> String {
        minute_cst(unix_ms as i64)
    }

    fn filter_href(&self, state: &str) -> String {
        let mut href = "/supervision".to_string();
        let mut sep = '?';
        if !state.is_empty() {
            href.push_str(&format!("{sep}state={state}"));
            sep = '&';
        }
        if let Some(case) = &self.case {
            href.push_str(&format!("{sep}case={case}"));
        }
        href
    }

    fn states(&self) -> [&'static str; 5] {
        ["", "open", "overdue", "answered_on_time", "answered_late"]
    }

    fn filter_word(&self, state: &str) -> String {
        if state.is_empty() {
            self.t.get("supervision.filter.all").into_owned()
        } else {
            self.t
                .get(&format!("supervision.state.{state}"))
                .into_owned()
        }
    }
}

fn staff_of(session: &Session) -> Staff {
    Staff {
        username: session.username.clone(),
        counter: session.counter.clone(),
        role: session.role,
    }
}

/// What a refused form sends back to show again.
#[derive(Default)]
struct Refused {
    status: Option<StatusCode>,
    errors: Vec<String>,
    reason: String,
    todo: String,
    reply_days: String,
}

/// `GET /supervision`: the list, with the issue form where it is offered.
pub async fn index(
    State(state): State<WebState>,
    ctx: Ctx,
    Query(query): Query<ListQuery>,
) -> Response {
    if ctx.session.is_none() {
        return ctx.to_signin();
    }
    page(&state, &ctx, query, Refused::default()).await
}

async fn page(state: &WebState, ctx: &Ctx, query: ListQuery, refused: Refused) -> Response {
    let Some(session) = ctx.session.as_ref() else {
        return ctx.to_signin();
    };
    let own = state.store.own_record();
    let filter_state = query.state.as_deref().and_then(ReplyState::parse);
    let case = query
        .case
        .as_deref()
        .and_then(DocId::parse)
        .filter(|id| DocKind::of_id(id) == Some(DocKind::Case));
    // The station of the case the list is about: the case's own division.
    let station = match &case {
        Some(id) => match state.store.get_case(id.to_string(), state.today()).await {
            Ok(detail) => detail.intake.division.to_string(),
            Err(e) => return store_failed(ctx, e),
        },
        None => String::new(),
    };
    let views = match state
        .store
        .supervision_list(
            SupervisionFilter {
                case_id: case.as_ref().map(DocId::to_string),
                state: filter_state,
                unanswered: false,
            },
            state.today(),
            LIST_LIMIT,
        )
        .await
    {
        Ok(views) => views,
        Err(e) => return store_failed(ctx, e),
    };
    let rows = views
        .into_iter()
        .map(|view| Row {
            may_reply: may_supervise(own, session.role, &view.station, SupervisionAct::Reply)
                .is_ok(),
            view,
        })
        .collect();
    let may_issue = match DivisionCode::parse(&station) {
        Ok(division) => may_supervise(own, session.role, &division, SupervisionAct::Issue).is_ok(),
        Err(_) => may_issue_supervision(own, session.role).is_ok(),
    };
    render(
        ctx.t,
        refused.status.unwrap_or(StatusCode::OK),
        SupervisionPage {
            chrome: ctx.chrome(),
            t: ctx.t,
            csrf: &session.csrf,
            hall: own.role.is_hall(),
            rows,
            state: filter_state
                .map(ReplyState::as_str)
                .unwrap_or("")
                .to_string(),
            case: case.map(|c| c.to_string()),
            station,
            may_issue,
            reason: refused.reason,
            todo: refused.todo,
            reply_days: if refused.reply_days.is_empty() {
                "3".into()
            } else {
                refused.reply_days
            },
            errors: refused.errors,
        },
    )
}

/// `POST /supervision`: issue a notice (station, case or none, reason, what to do, days).
pub async fn issue(
    State(state): State<WebState>,
    StaffForm { ctx, staff, form }: StaffForm<Fields>,
) -> Response {
    let case = Some(field(&form, "case").trim()).filter(|c| !c.is_empty());
    let query = ListQuery {
        state: None,
        case: case.map(str::to_string),
    };
    let reason = field(&form, "reason").to_string();
    let todo = field(&form, "todo").to_string();
    let days_text = field(&form, "reply_days").trim().to_string();
    let refuse = |status: StatusCode, error: String| Refused {
        status: Some(status),
        errors: vec![error],
        reason: reason.clone(),
        todo: todo.clone(),
        reply_days: days_text.clone(),
    };
    let station = match DivisionCode::parse(field(&form, "station").trim()) {
        Ok(station) => station,
        Err(e) => {
            let words = crate::i18n::Words::from(&e);
            let refused = refuse(StatusCode::UNPROCESSABLE_ENTITY, ctx.t.words(&words));
            return page(&state, &ctx, query, refused).await;
        }
    };
    let case_id = match case {
        None => None,
        Some(id) => match DocId::parse(id).filter(|d| DocKind::of_id(d) == Some(DocKind::Case)) {
            Some(id) => Some(id),
            None => {
                let e = StoreError::NotFound {
                    what: format!("case {id}"),
                };
                return store_failed(&ctx, e);
            }
        },
    };
    let new = NewSupervision {
        station,
        case: case_id,
        reason: reason.clone(),
        todo: todo.clone(),
        // An unreadable number is out of range: the core's refusal words it.
        reply_days: days_text.parse().unwrap_or(0),
    };
    match state
        .store
        .issue_supervision(new, staff_of(&staff), state.clock.now_ms())
        .await
    {
        Ok(_) => Redirect::to(&match case {
            Some(case) => format!("/supervision?case={case}"),
            None => "/supervision".to_string(),
        })
        .into_response(),
        Err(e) => {
            let status = StatusCode::from_u16(e.class().status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            if status.is_server_error() {
                return store_failed(&ctx, e);
            }
            let refused = refuse(status, ctx.t.words(&e.words()));
            page(&state, &ctx, query, refused).await
        }
    }
}

/// `POST /supervision/{id}/reply`: the station's reply (what was done).
pub async fn reply(
    State(state): State<WebState>,
    Path(id): Path<String>,
    StaffForm { ctx, staff, form }: StaffForm<Fields>,
) -> Response {
    if DocId::parse(&id).and_then(|d| DocKind::of_id(&d)) != Some(DocKind::Supervision) {
        return store_failed(
            &ctx,
            StoreError::NotFound {
                what: format!("supervision notice {id}"),
            },
        );
    }
    let text = field(&form, "text").to_string();
    match state
        .store
        .reply_supervision(id, text.clone(), staff_of(&staff), state.clock.now_ms())
        .await
    {
        Ok(_) => Redirect::to("/supervision").into_response(),
        Err(e) => {
            let status = StatusCode::from_u16(e.class().status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            if status.is_server_error() {
                return store_failed(&ctx, e);
            }
            let refused = Refused {
                status: Some(status),
                errors: vec![ctx.t.words(&e.words())],
                ..Refused::default()
            };
            page(&state, &ctx, ListQuery::default(), refused).await
        }
    }
}
