//! The hall's pages (issue 14): the subtree view (`/hall`), every open case below the
//! hall with its station, both deadlines and warning level, filtered and searched as at
//! the station and sorted by urgency; and the per-station overview (`/hall/stations`)
//! with SVG charts, a print layout and CSV/.xlsx downloads.
//!
//! A hall's navigation leads to `/hall` instead of the counter's work list. Paging is by
//! keyset (the store's cursors), so a page costs the same at any depth of 1 M cases.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use yizhan_sync::domain::calendar::{Date, WarningLevel};
use yizhan_sync::domain::case::Status;
use yizhan_sync::domain::codes::{DivisionCode, DivisionLevel, ImplCode};

use super::dashboard::{BarChart, bar_chart};
use super::export::{Cell, Download, Table, download, percent};
use super::{Chrome, Ctx, WebState, message, render, store_failed};
use crate::i18n::Tr;
use crate::store::{CaseFilter, CaseSearch, ItemFilter, Order, Overview, SubtreeNode};

/// One row of the subtree list.
#[derive(Debug)]
struct HallRow {
    id: String,
    serial_no: Option<String>,
    station: String,
    station_division: String,
    item_name: String,
    status: String,
    received: String,
    committed_due: String,
    legal_due: String,
    level: String,
    level_class: &'static str,
}

#[derive(Template)]
#[template(path = "hall.html")]
struct HallPage<'a> {
    chrome: Chrome<'a>,
    t: &'static Tr,
    /// 您好，name（counter）, as on the work list.
    greeting: String,
    /// The filters as asked, to fill the form again.
    f: HallQuery,
    stations: Vec<SubtreeNode>,
    subdistricts: Vec<SubtreeNode>,
    statuses: Vec<(&'static str, String)>,
    levels: Vec<(&'static str, String)>,
    /// The catalog's items (implementation code, name) and the departments cases here
    /// were sent to, for the filters' lists.
    items: Vec<(String, String)>,
    departments: Vec<String>,
    rows: Vec<HallRow>,
    next: Option<String>,
}

/// The subtree list's filters, as the form sends them (empty means any).
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct HallQuery {
    station: String,
    subdistrict: String,
    item: String,
    department: String,
    status: String,
    level: String,
    from: String,
    to: String,
    q: String,
    cursor: String,
}

impl HallQuery {
    /// The query string of these filters, without the cursor.
    fn args(&self) -> String {
        [
            ("station", &self.station),
            ("subdistrict", &self.subdistrict),
            ("item", &self.item),
            ("department", &self.department),
            ("status", &self.status),
            ("level", &self.level),
            ("from", &self.from),
            ("to", &self.to),
            ("q", &self.q),
        ]
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", super::urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
    }

    /// The store's filter, or the name of the first field that does not parse.
    fn filter(&self, today: Date) -> Result<CaseFilter, &'static str> {
        let text = |s: &str| s.trim().to_string();
        let some = |s: &str| Some(text(s)).filter(|s| !s.is_empty());
        let station = some(&self.station)
            .map(|s| DivisionCode::parse(&s).map_err(|_| "station"))
            .transpose()?;
        let subdistrict = some(&self.subdistrict)
            .map(|s| DivisionCode::parse(&s).map_err(|_| "subdistrict"))
            .transpose()?;
        let status = some(&self.status)
            .map(|s| Status::parse(&s).ok_or("status"))
            .transpose()?;
        let level = some(&self.level)
            .map(|s| WarningLevel::parse(&s).ok_or("level"))
            .transpose()?;
        let impl_code = some(&self.item)
            .map(|s| ImplCode::parse(&s).map_err(|_| "item"))
            .transpose()?;
        let date = |s: &str, name| {
            some(s)
                .map(|s| s.parse::<Date>().map_err(|_| name))
                .transpose()
        };
        let search = CaseSearch::parse(&self.q.chars().take(60).collect::<String>());
        let order = match (level, &search) {
            // A level sorts by its own urgency (the store's default for it).
            (Some(_), _) => None,
            (None, Some(_)) => Some(Order::Created),
            (None, None) => Some(Order::Deadline),
        };
        Ok(CaseFilter {
            status,
            level,
            impl_code,
            division: station.or(subdistrict),
            holder: some(&self.department).map(|d| d.chars().take(60).collect()),
            created_from: date(&self.from, "from")?,
            created_to: date(&self.to, "to")?,
            // Open cases unless a status says otherwise.
            open_only: status.is_none(),
            search,
            order,
            cursor: some(&self.cursor).filter(|c| c.len() < 200),
            ..CaseFilter::all(today)
        })
    }
}

/// The stations' names by division, and the stations and sub-districts for the filters.
fn names(nodes: &[SubtreeNode]) -> HashMap<String, String> {
    nodes
        .iter()
        .map(|n| (n.division.clone(), n.name.clone()))
        .collect()
}

fn level_words(t: &Tr, level: Option<WarningLevel>) -> (String, &'static str) {
    match level {
        Some(WarningLevel::Normal) => (t.get("level.normal").into_owned(), "lv-normal"),
        Some(WarningLevel::Yellow) => (t.get("level.yellow").into_owned(), "lv-yellow"),
        Some(WarningLevel::Red) => (t.get("level.red").into_owned(), "lv-red"),
        Some(WarningLevel::LegalBreach) => (t.get("level.legal_breach").into_owned(), "lv-breach"),
        None => (String::new(), ""),
    }
}

/// `GET /hall`: the open cases below this hall, 50 a page, most urgent first.
pub async fn show(
    State(state): State<WebState>,
    ctx: Ctx,
    Query(query): Query<HallQuery>,
) -> Response {
    let Some(staff) = ctx.session.as_ref() else {
        return ctx.to_signin();
    };
    let t = ctx.t;
    let who = if staff.counter.is_empty() {
        staff.display_name.clone()
    } else {
        format!("{}（{}）", staff.display_name, staff.counter)
    };
    let greeting = t.with("home.greeting", "name", &who);
    let filter = match query.filter(state.today()) {
        Ok(filter) => filter,
        Err(name) => {
            return message(
                &ctx,
                StatusCode::BAD_REQUEST,
                "error.invalid",
                t.with(
                    "hall.bad_filter",
                    "name",
                    &t.get(&format!("hall.filter.{name}")),
                ),
            );
        }
    };
    let every_item = ItemFilter {
        include_cancelled: true,
        limit: 500,
        ..ItemFilter::default()
    };
    let (nodes, page, items, departments) = match (
        state.store.subtree_nodes().await,
        state.store.list_cases(filter).await,
        state.store.list_items(every_item).await,
        state.store.case_departments().await,
    ) {
        (Ok(n), Ok(p), Ok((i, _)), Ok(d)) => (n, p, i, d),
        (Err(e), ..) | (_, Err(e), ..) | (.., Err(e), _) | (.., Err(e)) => {
            return store_failed(&ctx, e);
        }
    };
    // Each item once (a published item may have older versions), by name.
    let mut items: Vec<(String, String)> = items
        .into_iter()
        .map(|i| (i.impl_code, i.name))
        .collect::<HashMap<_, _>>()
        .into_iter()
        .collect();
    items.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
    let names = names(&nodes);
    let own = state.node.division.clone();
    let rows = page
        .cases
        .into_iter()
        .map(|c| {
            let division = c.division.clone().unwrap_or_default();
            let (level, level_class) = level_words(t, c.level);
            HallRow {
                station: if division == own {
                    state.node.name.clone()
                } else {
                    names
                        .get(&division)
                        .cloned()
                        .unwrap_or_else(|| division.clone())
                },
                station_division: division,
                serial_no: c.serial_no,
                item_name: c.item_name,
                status: t.get(&format!("status.{}", c.status.as_str())).into_owned(),
                received: crate::clock::minute_cst(c.created_ms),
                committed_due: c.committed_due.unwrap_or_default(),
                legal_due: c.legal_due.unwrap_or_default(),
                level,
                level_class,
                id: c.id,
            }
        })
        .collect();
    let next = page.next_cursor.map(|c| {
        let args = query.args();
        let sep = if args.is_empty() { "" } else { "&" };
        format!("/hall?{args}{sep}cursor={}", super::urlencode(&c))
    });
    let (stations, subdistricts): (Vec<SubtreeNode>, Vec<SubtreeNode>) =
        nodes.into_iter().partition(|n| {
            DivisionCode::parse(&n.division).map(|d| d.level()) == Ok(DivisionLevel::Community)
        });
    let statuses = Status::ALL
        .into_iter()
        .map(|s| {
            (
                s.as_str(),
                t.get(&format!("status.{}", s.as_str())).into_owned(),
            )
        })
        .collect();
    let levels = ["normal", "yellow", "red", "legal_breach"]
        .into_iter()
        .map(|l| (l, t.get(&format!("level.{l}")).into_owned()))
        .collect();
    render(
        t,
        StatusCode::OK,
        HallPage {
            chrome: ctx.chrome(),
            t,
            greeting,
            f: query,
            stations,
            subdistricts,
            statuses,
            levels,
            items,
            departments,
            rows,
            next,
        },
    )
}

// ---------------------------------------------------------------- the overview

/// One line of the overview as the page shows it.
#[derive(Debug)]
struct OverviewRow {
    name: String,
    division: String,
    /// A sub-district's line (its stations follow it, indented).
    group: bool,
    /// Under a sub-district.
    nested: bool,
    open: u64,
    due_soon: u64,
    overdue: u64,
    legal_breach: u64,
    on_time: String,
    satisfaction: String,
    rectifications: u64,
    last_heard: String,
    pending: String,
    /// Not heard from for longer than `[hall] stale_sync_hours`.
    stale: bool,
}

#[derive(Template)]
#[template(path = "hall_stations.html")]
struct StationsPage<'a> {
    chrome: Chrome<'a>,
    t: &'static Tr,
    today: String,
    month: String,
    stale_hours: u32,
    rows: Vec<OverviewRow>,
    total: OverviewRow,
    open_chart: BarChart,
    overdue_chart: BarChart,
}

fn overview_rows(
    t: &Tr,
    overview: &Overview,
    now_ms: i64,
    stale_hours: u32,
) -> (Vec<OverviewRow>, OverviewRow) {
    let stale_ms = i64::from(stale_hours) * 3_600_000;
    let groups: Vec<&str> = overview
        .lines
        .iter()
        .map(|l| l.node.division.as_str())
        .collect();
    let rows = overview
        .lines
        .iter()
        .map(|l| {
            let f = &l.figures;
            OverviewRow {
                name: l.node.name.clone(),
                division: l.node.division.clone(),
                group: DivisionCode::parse(&l.node.division).map(|d| d.level())
                    != Ok(DivisionLevel::Community),
                nested: l
                    .parent_division
                    .as_deref()
                    .is_some_and(|p| groups.contains(&p)),
                open: f.open,
                due_soon: f.due_soon,
                overdue: f.overdue,
                legal_breach: f.legal_breach,
                on_time: percent(f.on_time_rate()),
                satisfaction: percent(f.satisfaction()),
                rectifications: f.open_rectifications,
                last_heard: l.last_heard_ms.map_or_else(
                    || t.get("hall.never").into_owned(),
                    crate::clock::minute_cst,
                ),
                pending: l.pending.map_or("—".into(), |n| n.to_string()),
                stale: l.last_heard_ms.is_none_or(|ms| now_ms - ms > stale_ms),
            }
        })
        .collect();
    let f = &overview.total;
    let total = OverviewRow {
        name: t.get("hall.total").into_owned(),
        division: String::new(),
        group: true,
        nested: false,
        open: f.open,
        due_soon: f.due_soon,
        overdue: f.overdue,
        legal_breach: f.legal_breach,
        on_time: percent(f.on_time_rate()),
        satisfaction: percent(f.satisfaction()),
        rectifications: f.open_rectifications,
        last_heard: String::new(),
        pending: String::new(),
        stale: false,
    };
    (rows, total)
}

/// `GET /hall/stations`: every station and sub-district below with its figures.
pub async fn stations(State(state): State<WebState>, ctx: Ctx) -> Response {
    if ctx.session.is_none() {
        return ctx.to_signin();
    }
    let t = ctx.t;
    let today = state.today();
    let overview = match state.store.station_overview(today).await {
        Ok(o) => o,
        Err(e) => return store_failed(&ctx, e),
    };
    let now_ms = state.clock.now_ms() as i64;
    let (rows, total) = overview_rows(t, &overview, now_ms, state.stale_sync_hours);
    // The charts show the stations (sub-districts are their sums), at most 12 with the
    // most open cases, so labels stay legible.
    let mut stations: Vec<&OverviewRow> = rows.iter().filter(|r| !r.group).collect();
    stations.sort_by(|a, b| b.open.cmp(&a.open).then(a.division.cmp(&b.division)));
    stations.truncate(12);
    let label = |r: &OverviewRow| r.name.chars().take(6).collect::<String>();
    let open_chart = bar_chart(
        "hall-open-chart",
        t.get("hall.chart_open").into_owned(),
        stations.iter().map(|r| (label(r), r.open, 1)).collect(),
    );
    let overdue_chart = bar_chart(
        "hall-overdue-chart",
        t.get("hall.chart_overdue").into_owned(),
        stations
            .iter()
            .map(|r| (label(r), r.overdue + r.legal_breach, 4))
            .collect(),
    );
    render(
        t,
        StatusCode::OK,
        StationsPage {
            chrome: ctx.chrome(),
            t,
            today: today.to_string(),
            month: overview.month.map(|m| m.to_string()).unwrap_or_default(),
            stale_hours: state.stale_sync_hours,
            rows,
            total,
            open_chart,
            overdue_chart,
        },
    )
}

/// The overview as a table for the downloads.
fn overview_table(t: &Tr, rows: Vec<OverviewRow>, overview: &Overview) -> Table {
    let headers = [
        "hall.col.station",
        "hall.col.division",
        "hall.col.open",
        "hall.col.due_soon",
        "hall.col.overdue",
        "hall.col.breach",
        "hall.col.on_time",
        "hall.col.satisfaction",
        "hall.col.rectifications",
        "hall.col.last_heard",
        "hall.col.pending",
        "hall.col.stale",
    ]
    .iter()
    .map(|k| t.get(k).into_owned())
    .collect();
    let rows = rows
        .into_iter()
        .zip(&overview.lines)
        .map(|(r, l)| {
            vec![
                Cell::Text(r.name),
                Cell::Text(r.division),
                Cell::Count(r.open),
                Cell::Count(r.due_soon),
                Cell::Count(r.overdue),
                Cell::Count(r.legal_breach),
                Cell::Share(l.figures.on_time_rate()),
                Cell::Share(l.figures.satisfaction()),
                Cell::Count(r.rectifications),
                Cell::Text(r.last_heard),
                Cell::Text(r.pending),
                Cell::Text(if r.stale {
                    t.get("hall.stale").into_owned()
                } else {
                    String::new()
                }),
            ]
        })
        .collect();
    Table {
        sheet: t.get("hall.stations_title").chars().take(31).collect(),
        headers,
        rows,
    }
}

/// `GET /hall/stations.csv`.
pub async fn stations_csv(State(state): State<WebState>, ctx: Ctx) -> Response {
    stations_export(state, ctx, false).await
}

/// `GET /hall/stations.xlsx`.
pub async fn stations_xlsx(State(state): State<WebState>, ctx: Ctx) -> Response {
    stations_export(state, ctx, true).await
}

async fn stations_export(state: WebState, ctx: Ctx, xlsx: bool) -> Response {
    if ctx.session.is_none() {
        return ctx.to_signin();
    }
    let today = state.today();
    let overview = match state.store.station_overview(today).await {
        Ok(o) => o,
        Err(e) => return store_failed(&ctx, e),
    };
    let (rows, _) = overview_rows(
        ctx.t,
        &overview,
        state.clock.now_ms() as i64,
        state.stale_sync_hours,
    );
    let table = overview_table(ctx.t, rows, &overview);
    let form = if xlsx { Download::Xlsx } else { Download::Csv };
    download(&ctx, table, form, &format!("stations-{today}")).await
}
