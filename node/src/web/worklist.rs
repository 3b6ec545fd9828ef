//! The counter's work list (`/worklist`), where a signed-in worker lands: every open case
//! (在办, soonest deadline first), today's, those awaiting materials, due soon, overdue,
//! past the legal limit, in conflict; and one search box that finds a case by serial
//! number (or its tail), applicant name, identity number, phone or query code, and the
//! items to receive a new application for (with a 受理 link each).

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use yizhan_sync::domain::calendar::WarningLevel;
use yizhan_sync::domain::case::Status;
use yizhan_sync::domain::supervision::ReplyState;

use super::{Chrome, Ctx, WebState, render, store_failed};
use crate::i18n::Tr;
use crate::store::{CaseFilter, CaseSearch, Order};

/// The work list's views (tabs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    /// 在办: every case not closed, soonest committed deadline first.
    Open,
    /// Received today.
    Today,
    /// 待补正: waiting for materials.
    Awaiting,
    /// Due soon (yellow).
    DueSoon,
    /// Past the committed date (red).
    Overdue,
    /// Past the legal limit.
    Breach,
    /// Concurrent incompatible events waiting for a lead.
    Conflicts,
}

impl View {
    pub const ALL: [View; 7] = [
        View::Open,
        View::Today,
        View::Awaiting,
        View::DueSoon,
        View::Overdue,
        View::Breach,
        View::Conflicts,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            View::Open => "open",
            View::Today => "today",
            View::Awaiting => "awaiting",
            View::DueSoon => "due_soon",
            View::Overdue => "overdue",
            View::Breach => "breach",
            View::Conflicts => "conflicts",
        }
    }

    fn parse(s: &str) -> Option<View> {
        View::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// One row of the work list.
#[derive(Debug)]
struct WorkRow {
    id: String,
    serial_no: Option<String>,
    applicant: String,
    item_name: String,
    status: String,
    received: String,
    committed_due: String,
    level: String,
    level_class: &'static str,
    /// The step the case is in (§9.2.2) and its due day, and its warning class.
    step: String,
    step_class: &'static str,
    counter: String,
    conflict: bool,
}

/// An item the search found, to receive a new application for.
#[derive(Debug)]
struct ItemHit {
    impl_code: String,
    name: String,
}

#[derive(Template)]
#[template(path = "worklist.html")]
struct WorkListPage<'a> {
    chrome: Chrome<'a>,
    t: &'static Tr,
    /// 您好，name（counter）.
    greeting: String,
    view: View,
    tabs: Vec<(&'static str, String, bool)>,
    mine: bool,
    /// The open view's order: by deadline (`due`) or by when received (`received`).
    sort: &'static str,
    /// The search box's text; when set, the rows are what it found.
    q: String,
    items: Vec<ItemHit>,
    rows: Vec<WorkRow>,
    next: Option<String>,
    /// Supervision notices not answered yet (督办): the work list says how many.
    supervision_waiting: String,
}

#[derive(Debug, serde::Deserialize)]
pub struct WorkQuery {
    view: Option<String>,
    mine: Option<String>,
    cursor: Option<String>,
    sort: Option<String>,
    q: Option<String>,
}

/// `GET /worklist`: 50 cases a page, in the view's order (fast at 100k cases: each list
/// walks an index), or what the search box found.
pub async fn show(
    State(state): State<WebState>,
    ctx: Ctx,
    Query(query): Query<WorkQuery>,
) -> Response {
    let Some(staff) = ctx.session.as_ref() else {
        return ctx.to_signin();
    };
    let q: String = query
        .q
        .unwrap_or_default()
        .trim()
        .chars()
        .take(60)
        .collect();
    let search = CaseSearch::parse(&q);
    let view = query
        .view
        .as_deref()
        .and_then(View::parse)
        .unwrap_or(View::Open);
    let mine = query.mine.as_deref() == Some("1");
    let sort = if query.sort.as_deref() == Some("received") {
        "received"
    } else {
        "due"
    };
    let today = state.today();
    let mut filter = CaseFilter {
        counter: mine.then(|| staff.counter.clone()),
        cursor: query.cursor.filter(|c| !c.is_empty() && c.len() < 200),
        ..CaseFilter::all(today)
    };
    if search.is_some() {
        // A search looks at every case, newest first, whatever the tab.
        filter.search = search;
    } else {
        match view {
            View::Open => {
                filter.open_only = true;
                filter.order = Some(if sort == "received" {
                    Order::Created
                } else {
                    Order::Deadline
                });
            }
            View::Today => {
                filter.created_from = Some(today);
                filter.created_to = Some(today);
            }
            View::Awaiting => filter.status = Some(Status::AwaitingSupplement),
            View::DueSoon => {
                filter.status = Some(Status::Accepted);
                filter.level = Some(WarningLevel::Yellow);
            }
            View::Overdue => {
                filter.status = Some(Status::Accepted);
                filter.level = Some(WarningLevel::Red);
            }
            View::Breach => {
                filter.status = Some(Status::Accepted);
                filter.level = Some(WarningLevel::LegalBreach);
            }
            View::Conflicts => filter.conflict_only = true,
        }
    }
    let page = match state.store.list_cases(filter).await {
        Ok(page) => page,
        Err(e) => return store_failed(&ctx, e),
    };
    // The same box starts a new application: the items the text finds.
    let items = if q.is_empty() {
        Vec::new()
    } else {
        match super::find_items(&state, &q, "").await {
            Ok((found, _)) => found
                .into_iter()
                .take(8)
                .map(|i| ItemHit {
                    impl_code: i.impl_code,
                    name: i.name,
                })
                .collect(),
            Err(e) => return store_failed(&ctx, e),
        }
    };
    let t = ctx.t;
    // A station's notices waiting for its reply; at a hall, those overdue (escalated).
    let hall = state.store.own_record().role.is_hall();
    let waiting = match state
        .store
        .supervision_list(
            crate::store::SupervisionFilter {
                unanswered: true,
                ..Default::default()
            },
            today,
            500,
        )
        .await
    {
        Ok(list) => list
            .iter()
            .filter(|v| match v.state {
                ReplyState::Overdue => true,
                ReplyState::Open => !hall,
                _ => false,
            })
            .count(),
        Err(e) => return store_failed(&ctx, e),
    };
    let key = if hall {
        "work.supervision_overdue"
    } else {
        "work.supervision_waiting"
    };
    let supervision_waiting = if waiting == 0 {
        String::new()
    } else {
        t.with(key, "n", &waiting.to_string())
    };
    let rows = page
        .cases
        .into_iter()
        .map(|c| {
            let (level, level_class) = match c.level {
                Some(WarningLevel::Normal) => (t.get("level.normal"), "lv-normal"),
                Some(WarningLevel::Yellow) => (t.get("level.yellow"), "lv-yellow"),
                Some(WarningLevel::Red) => (t.get("level.red"), "lv-red"),
                Some(WarningLevel::LegalBreach) => (t.get("level.legal_breach"), "lv-breach"),
                None => (std::borrow::Cow::Borrowed(""), ""),
            };
            let (step, step_class) = step_cell(t, c.step.as_ref());
            WorkRow {
                step,
                step_class,
                serial_no: c.serial_no,
                applicant: format!("{}（{}）", c.applicant_name, c.applicant_id_masked),
                item_name: c.item_name,
                status: t.get(&format!("status.{}", c.status.as_str())).into_owned(),
                received: crate::clock::minute_cst(c.created_ms),
                committed_due: c.committed_due.unwrap_or_default(),
                level: level.into_owned(),
                level_class,
                counter: c.counter,
                conflict: c.conflict,
                id: c.id,
            }
        })
        .collect();
    let who = if staff.counter.is_empty() {
        staff.display_name.clone()
    } else {
        format!("{}（{}）", staff.display_name, staff.counter)
    };
    let greeting = t.with("home.greeting", "name", &who);
    let mine_arg = if mine { "&mine=1" } else { "" };
    let tabs = View::ALL
        .into_iter()
        .map(|v| {
            (
                v.as_str(),
                t.get(&format!("work.view.{}", v.as_str())).into_owned(),
                v == view && q.is_empty(),
            )
        })
        .collect();
    let next = page.next_cursor.map(|c| {
        let search_arg = if q.is_empty() {
            String::new()
        } else {
            format!("&q={}", super::urlencode(&q))
        };
        format!(
            "/worklist?view={}&sort={sort}{mine_arg}{search_arg}&cursor={}",
            view.as_str(),
            super::urlencode(&c)
        )
    });
    render(
        ctx.t,
        StatusCode::OK,
        WorkListPage {
            chrome: ctx.chrome(),
            t,
            greeting,
            view,
            tabs,
            mine,
            sort,
            q,
            items,
            rows,
            next,
            supervision_waiting,
        },
    )
}

/// The worklist's step cell: "2. 审查 · due …" and its warning class, by the step's level
/// as the store derived it (the case's rule, `domain::calendar::StepDeadline`).
pub(super) fn step_cell(
    t: &Tr,
    step: Option<&crate::store::StepSummary>,
) -> (String, &'static str) {
    let Some(step) = step else {
        return (String::new(), "");
    };
    let mut text = t
        .get("step.numbered")
        .replace("{n}", &step.number.to_string())
        .replace("{name}", &step.name);
    if let Some(due) = &step.due {
        text.push_str(" · ");
        text.push_str(&t.with("step.due_on", "date", due));
    }
    let class = match step.level {
        Some(WarningLevel::Yellow) => "lv-yellow",
        Some(WarningLevel::Red | WarningLevel::LegalBreach) => "lv-red",
        Some(WarningLevel::Normal) => "lv-normal",
        None => "",
    };
    (text, class)
}
