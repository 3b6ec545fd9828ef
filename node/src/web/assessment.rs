//! The month's assessment (`/hall/assessment`, issue 14 point 5): the store's figures per
//! station, sub-district, department, counter or member of staff, each beside the month
//! before, printable, and as CSV or .xlsx through [`super::export::download`]. A hall's
//! supervisors and admins read their subtree's; a station's lead and admin their own
//! counters' and staff's (the store asks `engine::may_assess`).

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::export::{Cell, Download, Table, decimal, download, percent};
use super::{Chrome, Ctx, WebState, message, render, store_failed};
use crate::i18n::Tr;
use crate::store::{Assessment, AssessmentBy, AssessmentFigures, Month};

/// The page's query, as the form sends it (empty means the default).
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct AssessmentQuery {
    month: String,
    by: String,
}

/// One figure as the page shows it: this month's, and the month before's.
#[derive(Debug)]
struct Shown {
    now: String,
    before: String,
}

/// One line of the table.
#[derive(Debug)]
struct Row {
    name: String,
    division: String,
    cells: Vec<Shown>,
}

#[derive(Template)]
#[template(path = "hall_assessment.html")]
struct AssessmentPage<'a> {
    chrome: Chrome<'a>,
    t: &'static Tr,
    month: String,
    previous: String,
    by: &'static str,
    by_label: String,
    /// The groupings offered here, with their words.
    groupings: Vec<(&'static str, String)>,
    headers: Vec<String>,
    rows: Vec<Row>,
    total: Row,
    /// `month=…&by=…`, for the download links.
    args: String,
}

/// The columns, in order: their word keys and how each is read from the figures.
type Column = (&'static str, fn(&AssessmentFigures) -> Cell);

const COLUMNS: [Column; 17] = [
    ("assessment.col.received", |f| Cell::Count(f.received)),
    ("assessment.col.completed", |f| Cell::Count(f.completed)),
    ("assessment.col.on_time", |f| Cell::Share(f.on_time_rate())),
    ("assessment.col.days", |f| Cell::Decimal(f.average_days())),
    ("assessment.col.overdue", |f| Cell::Count(f.overdue)),
    ("assessment.col.breach", |f| Cell::Count(f.legal_breach)),
    ("assessment.col.level5", |f| Cell::Count(f.ratings[4])),
    ("assessment.col.level4", |f| Cell::Count(f.ratings[3])),
    ("assessment.col.level3", |f| Cell::Count(f.ratings[2])),
    ("assessment.col.level2", |f| Cell::Count(f.ratings[1])),
    ("assessment.col.level1", |f| Cell::Count(f.ratings[0])),
    ("assessment.col.satisfaction", |f| {
        Cell::Share(f.satisfaction())
    }),
    ("assessment.col.bad", |f| Cell::Count(f.bad())),
    ("assessment.col.rectified_on_time", |f| {
        Cell::Count(f.rectified_on_time)
    }),
    ("assessment.col.rectified_late", |f| {
        Cell::Count(f.rectified_late)
    }),
    ("assessment.col.supervision", |f| Cell::Count(f.supervision)),
    ("assessment.col.supervision_on_time", |f| {
        Cell::Count(f.supervision_on_time)
    }),
];

fn shown(cell: &Cell) -> String {
    match cell {
        Cell::Count(n) => n.to_string(),
        Cell::Share(s) => percent(*s),
        Cell::Decimal(n) => decimal(*n),
        Cell::Text(text) => text.clone(),
        Cell::Date(d) => d.map(|d| d.to_string()).unwrap_or_default(),
    }
}

/// The month and grouping asked for, or the word key of the field that is wrong. The
/// month defaults to the last whole month, the grouping to the first offered here.
fn parse(
    query: &AssessmentQuery,
    today: yizhan_sync::domain::calendar::Date,
    hall: bool,
) -> Result<(Month, AssessmentBy), &'static str> {
    let month = match query.month.trim() {
        "" => Month::of(today).prev(),
        text => Month::parse(text).ok_or("assessment.field.month")?,
    };
    let offered = AssessmentBy::offered(hall);
    let by = match query.by.trim() {
        "" => offered[0],
        text => AssessmentBy::parse(text)
            .filter(|by| offered.contains(by))
            .ok_or("assessment.field.by")?,
    };
    Ok((month, by))
}

/// The assessment asked for, or the page that says why not.
async fn load(
    state: &WebState,
    ctx: &Ctx,
    query: &AssessmentQuery,
) -> Result<(Assessment, HashMap<String, String>), Response> {
    let Some(staff) = ctx.session.as_ref() else {
        return Err(ctx.to_signin());
    };
    let t = ctx.t;
    let hall = ctx.chrome().is_hall();
    let (month, by) = parse(query, state.today(), hall).map_err(|field| {
        message(
            ctx,
            StatusCode::BAD_REQUEST,
            "error.invalid",
            t.with("assessment.bad_query", "name", &t.get(field)),
        )
    })?;
    let assessment = state
        .store
        .assessment(month, by, staff.role, state.today())
        .await
        .map_err(|e| store_failed(ctx, e))?;
    let mut names: HashMap<String, String> = state
        .store
        .subtree_nodes()
        .await
        .map_err(|e| store_failed(ctx, e))?
        .into_iter()
        .map(|n| (n.division, n.name))
        .collect();
    names.insert(state.node.division.clone(), state.node.name.clone());
    Ok((assessment, names))
}

/// What a line is called: a station or sub-district by its name (its division when no
/// registry here names it), a counter or member of staff after its station, a department
/// by its name.
fn line_name(
    t: &Tr,
    by: AssessmentBy,
    division: &str,
    name: &str,
    names: &HashMap<String, String>,
) -> String {
    let place = names
        .get(division)
        .cloned()
        .unwrap_or_else(|| division.to_string());
    match by {
        AssessmentBy::Station | AssessmentBy::Subdistrict => place,
        AssessmentBy::Counter | AssessmentBy::Staff => format!("{place} · {name}"),
        AssessmentBy::Department if name.is_empty() => {
            t.get("assessment.no_department").into_owned()
        }
        AssessmentBy::Department => name.to_string(),
    }
}

fn row(name: String, division: String, now: &AssessmentFigures, before: &AssessmentFigures) -> Row {
    Row {
        name,
        division,
        cells: COLUMNS
            .iter()
            .map(|(_, read)| Shown {
                now: shown(&read(now)),
                before: shown(&read(before)),
            })
            .collect(),
    }
}

/// `GET /hall/assessment?month=YYYY-MM&by=station|subdistrict|department|counter|staff`.
pub async fn show(
    State(state): State<WebState>,
    ctx: Ctx,
    Query(query): Query<AssessmentQuery>,
) -> Response {
    let (assessment, names) = match load(&state, &ctx, &query).await {
        Ok(loaded) => loaded,
        Err(page) => return page,
    };
    let t = ctx.t;
    let by = assessment.by;
    let rows = assessment
        .lines
        .iter()
        .map(|l| {
            row(
                line_name(t, by, &l.division, &l.name, &names),
                l.division.clone(),
                &l.month,
                &l.previous,
            )
        })
        .collect();
    let total = row(
        t.get("hall.total").into_owned(),
        String::new(),
        &assessment.total,
        &assessment.previous_total,
    );
    let groupings = AssessmentBy::offered(ctx.chrome().is_hall())
        .iter()
        .map(|by| {
            (
                by.as_str(),
                t.get(&format!("assessment.by.{}", by.as_str()))
                    .into_owned(),
            )
        })
        .collect();
    let month = assessment.month.to_string();
    render(
        t,
        StatusCode::OK,
        AssessmentPage {
            chrome: ctx.chrome(),
            t,
            previous: assessment.month.prev().to_string(),
            args: format!("month={month}&by={}", by.as_str()),
            month,
            by: by.as_str(),
            by_label: t
                .get(&format!("assessment.by.{}", by.as_str()))
                .into_owned(),
            groupings,
            headers: COLUMNS.iter().map(|(k, _)| t.get(k).into_owned()).collect(),
            rows,
            total,
        },
    )
}

/// The assessment as a table: each figure, then the month before's.
fn table(t: &Tr, assessment: &Assessment, names: &HashMap<String, String>) -> Table {
    let mut headers = vec![
        t.get(&format!("assessment.by.{}", assessment.by.as_str()))
            .into_owned(),
        t.get("hall.col.division").into_owned(),
    ];
    for (key, _) in COLUMNS {
        let header = t.get(key);
        headers.push(header.to_string());
        headers.push(t.with("assessment.col.before", "name", &header));
    }
    let line =
        |name: String, division: String, now: &AssessmentFigures, before: &AssessmentFigures| {
            let mut cells = vec![Cell::Text(name), Cell::Text(division)];
            for (_, read) in COLUMNS {
                cells.push(read(now));
                cells.push(read(before));
            }
            cells
        };
    let mut rows: Vec<Vec<Cell>> = assessment
        .lines
        .iter()
        .map(|l| {
            line(
                line_name(t, assessment.by, &l.division, &l.name, names),
                l.division.clone(),
                &l.month,
                &l.previous,
            )
        })
        .collect();
    rows.push(line(
        t.get("hall.total").into_owned(),
        String::new(),
        &assessment.total,
        &assessment.previous_total,
    ));
    Table {
        sheet: format!("{} {}", t.get("assessment.title"), assessment.month)
            .chars()
            .take(31)
            .collect(),
        headers,
        rows,
    }
}

/// `GET /hall/assessment.csv`.
pub async fn csv(
    State(state): State<WebState>,
    ctx: Ctx,
    Query(query): Query<AssessmentQuery>,
) -> Response {
    export(state, ctx, query, Download::Csv).await
}

/// `GET /hall/assessment.xlsx`.
pub async fn xlsx(
    State(state): State<WebState>,
    ctx: Ctx,
    Query(query): Query<AssessmentQuery>,
) -> Response {
    export(state, ctx, query, Download::Xlsx).await
}

async fn export(state: WebState, ctx: Ctx, query: AssessmentQuery, form: Download) -> Response {
    let (assessment, names) = match load(&state, &ctx, &query).await {
        Ok(loaded) => loaded,
        Err(page) => return page,
    };
    let table = table(ctx.t, &assessment, &names);
    let name = format!("assessment-{}-{}", assessment.month, assessment.by.as_str());
    download(&ctx, table, form, &name).await
}
