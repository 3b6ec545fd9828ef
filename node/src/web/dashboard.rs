//! The lead dashboard (现场负责人看板), for leads and admins: the station's open cases
//! today, a month's figures (cases per counter and staff, the on-time rate, 好差评), the
//! open rectifications, and the exports of the month's cases and of monthly figures as
//! CSV and .xlsx.
//!
//! Charts are SVG drawn on the server (no script: the only one is the draft form's upload): black strokes, grey
//! hatching and a printed value on every bar, so they read the same on a laser printer.
//! The geometry is computed here; `dashboard.html` draws it.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use yizhan_sync::domain::calendar::{Date, WarningLevel};
use yizhan_sync::domain::fee::yuan;

use super::WebState;
use super::export::{Cell, Download, Table, download, percent};
use super::{Chrome, Ctx, message, render, store_failed};
use crate::i18n::Tr;
use crate::store::{CaseSummary, EXPORT_CAP, ExportCase, Month, MonthFigures, Workload};

/// How many cases each list on the page shows; "see all" leads to the work list.
const LIST_CAP: u32 = 20;
/// "Due soon" looks this many working days ahead.
const SOON_DAYS: u32 = 3;
/// Months in the chart of received cases, and in the monthly export.
const CHART_MONTHS: u32 = 6;
const EXPORT_MONTHS: u32 = 12;

#[derive(Debug, serde::Deserialize)]
pub struct PeriodQuery {
    month: Option<String>,
}

/// The month asked for (this month by default); `None` when it is not `YYYY-MM`.
fn period(today: Date, query: &PeriodQuery) -> Option<Month> {
    match query.month.as_deref().map(str::trim) {
        None | Some("") => Some(Month::of(today)),
        Some(text) => Month::parse(text),
    }
}

/// The 400 page for a month that is not `YYYY-MM`, saying how to write it.
fn bad_month(ctx: &Ctx) -> Response {
    message(
        ctx,
        StatusCode::BAD_REQUEST,
        "error.invalid",
        ctx.t.get("dashboard.bad_month").into_owned(),
    )
}

// ---------------------------------------------------------------- charts

/// A bar chart, laid out: every coordinate is in SVG user units.
#[derive(Debug)]
pub struct BarChart {
    pub id: &'static str,
    pub title: String,
    pub width: u32,
    pub height: u32,
    pub baseline_y: u32,
    pub label_y: u32,
    pub bars: Vec<Bar>,
}

#[derive(Debug)]
pub struct Bar {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
    /// The centre of the bar, where its value and label are written.
    pub cx: u32,
    pub value_y: u32,
    pub value: u64,
    pub label: String,
    /// An SVG paint: white, one of the chart's hatch patterns, or dark grey.
    pub fill: String,
}

/// The fills bars take, by `shade`: 0 white, 1 diagonal hatch, 2 cross-hatch, 3 dotted
/// grey, 4 dark grey. Patterns live in each chart's `<defs>` under `{id}-p{shade}`.
fn fill(id: &str, shade: u8) -> String {
    match shade {
        0 => "#ffffff".into(),
        1..=3 => format!("url(#{id}-p{shade})"),
        _ => "#404040".into(),
    }
}

/// Lays out vertical bars, one per `(label, value, shade)`, scaled to the largest value.
pub fn bar_chart(id: &'static str, title: String, items: Vec<(String, u64, u8)>) -> BarChart {
    const WIDTH: u32 = 560;
    const HEIGHT: u32 = 230;
    const TOP: u32 = 24; // room for the value above the tallest bar
    const BOTTOM: u32 = 36; // room for the labels
    const SIDE: u32 = 12;
    let slots = items.len().max(1) as u32;
    let slot = (WIDTH - 2 * SIDE) / slots;
    let bar_width = slot * 3 / 5;
    let plot = HEIGHT - TOP - BOTTOM;
    let baseline_y = HEIGHT - BOTTOM;
    let max = items.iter().map(|(_, v, _)| *v).max().unwrap_or(0).max(1);
    let bars = items
        .into_iter()
        .enumerate()
        .map(|(i, (label, value, shade))| {
            let h = (value * u64::from(plot) / max) as u32;
            let x = SIDE + i as u32 * slot + (slot - bar_width) / 2;
            Bar {
                x,
                y: baseline_y - h,
                w: bar_width,
                h,
                cx: x + bar_width / 2,
                value_y: baseline_y - h - 6,
                value,
                label,
                fill: fill(id, shade),
            }
        })
        .collect();
    BarChart {
        id,
        title,
        width: WIDTH,
        height: HEIGHT,
        baseline_y,
        label_y: baseline_y + 20,
        bars,
    }
}

// ---------------------------------------------------------------- the page

/// A case in the overdue and due-soon lists.
#[derive(Debug)]
struct CaseLine {
    id: String,
    serial_no: String,
    item_name: String,
    applicant: String,
    committed_due: String,
    legal_due: String,
    level: String,
    level_class: &'static str,
    counter: String,
}

#[derive(Debug)]
struct RectificationLine {
    id: String,
    serial_no: String,
    item_name: String,
    staff: String,
    rating: String,
    rated_on: String,
    rectify_due: String,
    overdue: bool,
}

/// One line of the satisfaction table.
#[derive(Debug)]
struct RatingLine {
    label: String,
    count: u64,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage<'a> {
    chrome: Chrome<'a>,
    t: &'static Tr,
    month: String,
    prev_month: String,
    next_month: String,
    today: String,
    open_by_status: Vec<(String, u64)>,
    open_total: u64,
    levels: Vec<(String, &'static str, u64)>,
    conflicts: u64,
    level_chart: BarChart,
    overdue: Vec<CaseLine>,
    overdue_total: u64,
    due_soon: Vec<CaseLine>,
    due_soon_total: u64,
    due_soon_rule: String,
    months_chart: BarChart,
    per_counter: Vec<Workload>,
    per_staff: Vec<Workload>,
    /// The month's fees by item (§9.5) as (item, collected, cases paid, exemptions,
    /// exempted), amounts as ¥; the last line is the total.
    fees: Vec<(String, String, u64, u64, String)>,
    on_time: String,
    on_time_of: String,
    ratings: Vec<RatingLine>,
    satisfaction_chart: BarChart,
    rated: u64,
    rated_share: String,
    rated_share_of: String,
    satisfaction_rate: String,
    bad: u64,
    bad_rate: String,
    rectifications: Vec<RectificationLine>,
    rectifications_total: u64,
    export_note: String,
}

fn share(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// "—" where there was nothing to count.
fn percent_or_dash(share: Option<f64>) -> String {
    share.map_or_else(|| "—".to_string(), |s| percent(Some(s)))
}

fn level_label(t: &Tr, level: Option<WarningLevel>) -> (String, &'static str) {
    match level {
        Some(WarningLevel::Normal) => (t.get("level.normal").into_owned(), "lv-normal"),
        Some(WarningLevel::Yellow) => (t.get("level.yellow").into_owned(), "lv-yellow"),
        Some(WarningLevel::Red) => (t.get("level.red").into_owned(), "lv-red"),
        Some(WarningLevel::LegalBreach) => (t.get("level.legal_breach").into_owned(), "lv-breach"),
        None => (String::new(), ""),
    }
}

fn case_line(t: &Tr, c: CaseSummary) -> CaseLine {
    let (level, level_class) = level_label(t, c.level);
    CaseLine {
        serial_no: c.serial_no.unwrap_or_else(|| "—".into()),
        item_name: c.item_name,
        applicant: format!("{}（{}）", c.applicant_name, c.applicant_id_masked),
        committed_due: c.committed_due.unwrap_or_default(),
        legal_due: c.legal_due.unwrap_or_default(),
        level,
        level_class,
        counter: c.counter,
        id: c.id,
    }
}

/// The five levels, best first, as people read them (5 = 非常满意 … 1 = 非常不满意).
fn rating_label(t: &Tr, level: u8) -> String {
    t.get(&format!("dashboard.rating.{level}")).into_owned()
}

/// `GET /dashboard?month=YYYY-MM`: the lead dashboard (leads and admins).
pub async fn show(
    State(state): State<WebState>,
    ctx: Ctx,
    Query(query): Query<PeriodQuery>,
) -> Response {
    if let Some(refused) = ctx.refuse_unless_lead() {
        return refused;
    }
    let today = state.today();
    let Some(month) = period(today, &query) else {
        return bad_month(&ctx);
    };
    let (snapshot, stats, months) = match tokio::try_join!(
        state.store.dashboard_snapshot(today, SOON_DAYS, LIST_CAP),
        state.store.period_stats(month),
        state.store.monthly_stats(month, CHART_MONTHS),
    ) {
        Ok(found) => found,
        Err(e) => return store_failed(&ctx, e),
    };
    let t = ctx.t;
    let open_by_status: Vec<(String, u64)> = snapshot
        .open_by_status
        .iter()
        .map(|(status, n)| {
            (
                t.get(&format!("status.{}", status.as_str())).into_owned(),
                *n,
            )
        })
        .collect();
    let levels: Vec<(String, &'static str, u64)> = [
        WarningLevel::Normal,
        WarningLevel::Yellow,
        WarningLevel::Red,
        WarningLevel::LegalBreach,
    ]
    .into_iter()
    .map(|level| {
        let (label, class) = level_label(t, Some(level));
        (label, class, snapshot.levels.of(level))
    })
    .collect();
    let level_chart = bar_chart(
        "chart-levels",
        t.get("dashboard.chart_levels").into_owned(),
        levels
            .iter()
            .zip([0, 1, 2, 4])
            .map(|((label, _, n), shade)| (label.clone(), *n, shade))
            .collect(),
    );
    let months_chart = bar_chart(
        "chart-months",
        t.get("dashboard.chart_months").into_owned(),
        months
            .iter()
            .map(|(m, f)| (m.to_string(), f.received, 3))
            .collect(),
    );
    let f = &stats.figures;
    let ratings: Vec<RatingLine> = (1..=5u8)
        .rev()
        .map(|level| RatingLine {
            label: rating_label(t, level),
            count: f.ratings[usize::from(level) - 1],
        })
        .collect();
    let satisfaction_chart = bar_chart(
        "chart-satisfaction",
        t.get("dashboard.chart_satisfaction").into_owned(),
        ratings
            .iter()
            .zip([0, 1, 3, 2, 4])
            .map(|(line, shade)| (line.label.clone(), line.count, shade))
            .collect(),
    );
    let of = |part: u64, whole: u64| {
        t.with("dashboard.of", "part", &part.to_string())
            .replace("{whole}", &whole.to_string())
    };
    let overdue_total = snapshot.levels.red + snapshot.levels.legal_breach;
    render(
        ctx.t,
        StatusCode::OK,
        DashboardPage {
            chrome: ctx.chrome(),
            t,
            month: month.to_string(),
            prev_month: month.prev().to_string(),
            next_month: month.next().to_string(),
            today: today.to_string(),
            open_total: open_by_status.iter().map(|(_, n)| n).sum(),
            open_by_status,
            levels,
            conflicts: snapshot.conflicts,
            level_chart,
            overdue: snapshot
                .overdue
                .into_iter()
                .map(|c| case_line(t, c))
                .collect(),
            overdue_total,
            due_soon: snapshot
                .due_soon
                .into_iter()
                .map(|c| case_line(t, c))
                .collect(),
            due_soon_total: snapshot.due_soon_total,
            due_soon_rule: t
                .with("dashboard.due_soon_rule", "days", &SOON_DAYS.to_string())
                .replace("{until}", &snapshot.due_soon_until.to_string()),
            months_chart,
            fees: if stats.fees.is_empty() {
                Vec::new()
            } else {
                let line = |name: String, f: &crate::store::FeeFigures| {
                    (
                        name,
                        yuan(f.collected_fen),
                        f.paid_cases,
                        f.exemptions,
                        yuan(f.exempt_fen),
                    )
                };
                stats
                    .fees
                    .iter()
                    .map(|f| line(f.item_name.clone(), f))
                    .chain(std::iter::once(line(
                        t.get("fee.stats.total").into_owned(),
                        &crate::store::FeeFigures::total(&stats.fees),
                    )))
                    .collect()
            },
            per_counter: stats.per_counter,
            per_staff: stats.per_staff,
            on_time: percent_or_dash(share(f.on_time, f.with_deadline)),
            on_time_of: of(f.on_time, f.with_deadline),
            satisfaction_chart,
            rated: f.rated(),
            rated_share: percent_or_dash(share(stats.completed_rated, f.completed)),
            rated_share_of: of(stats.completed_rated, f.completed),
            satisfaction_rate: percent_or_dash(share(f.satisfied(), f.rated())),
            bad: f.bad(),
            bad_rate: percent_or_dash(share(f.bad(), f.rated())),
            ratings,
            rectifications: snapshot
                .rectifications
                .into_iter()
                .map(|r| RectificationLine {
                    serial_no: r.serial_no.unwrap_or_else(|| "—".into()),
                    item_name: r.item_name,
                    staff: r.staff,
                    rating: rating_label(t, r.rating),
                    rated_on: r.rated_on,
                    rectify_due: r.rectify_due,
                    overdue: r.overdue,
                    id: r.id,
                })
                .collect(),
            rectifications_total: snapshot.rectifications_total,
            export_note: t.with("dashboard.export_note", "cap", &EXPORT_CAP.to_string()),
        },
    )
}

// ---------------------------------------------------------------- exports

/// The month's cases as a table, in the session's language; the applicant is shown as
/// the work list shows it (name and masked identity number).
fn cases_table(t: &Tr, cases: Vec<ExportCase>) -> Table {
    let headers = [
        "case.serial_no",
        "item.name",
        "case.status",
        "case.applicant",
        "users.counter",
        "dashboard.staff",
        "dashboard.received_on",
        "dashboard.accepted_on",
        "case.committed_due",
        "dashboard.legal_due",
        "dashboard.closed_on",
        "dashboard.level_today",
        "dashboard.rating",
    ]
    .iter()
    .map(|key| t.get(key).into_owned())
    .collect();
    let text = |s: Option<String>| Cell::Text(s.unwrap_or_default());
    let day = |s: Option<String>| Cell::Date(s.and_then(|s| s.parse().ok()));
    let rows = cases
        .into_iter()
        .map(|e| {
            let c = e.summary;
            vec![
                text(c.serial_no),
                Cell::Text(c.item_name),
                Cell::Text(t.get(&format!("status.{}", c.status.as_str())).into_owned()),
                Cell::Text(format!("{}（{}）", c.applicant_name, c.applicant_id_masked)),
                Cell::Text(c.counter),
                Cell::Text(c.staff),
                day(Some(e.received_on)),
                day(c.accepted_on),
                day(c.committed_due),
                day(c.legal_due),
                day(c.closed_on),
                Cell::Text(level_label(t, c.level).0),
                match e.rating {
                    Some(level) => Cell::Text(format!("{level} {}", rating_label(t, level))),
                    None => Cell::Text(String::new()),
                },
            ]
        })
        .collect();
    Table {
        sheet: t.get("dashboard.sheet_cases").into_owned(),
        headers,
        rows,
    }
}

/// Monthly figures as a table.
fn monthly_table(t: &Tr, months: Vec<(Month, MonthFigures)>) -> Table {
    let headers = [
        "dashboard.month",
        "dashboard.received",
        "dashboard.accepted",
        "dashboard.completed",
        "status.refused",
        "status.withdrawn",
        "dashboard.on_time_rate",
        "dashboard.rated",
        "dashboard.satisfaction_rate",
        "dashboard.bad",
        "dashboard.rectified",
    ]
    .iter()
    .map(|key| t.get(key).into_owned())
    .collect();
    let rows = months
        .into_iter()
        .map(|(m, f): (Month, MonthFigures)| {
            vec![
                Cell::Text(m.to_string()),
                Cell::Count(f.received),
                Cell::Count(f.accepted),
                Cell::Count(f.completed),
                Cell::Count(f.refused),
                Cell::Count(f.withdrawn),
                Cell::Share(share(f.on_time, f.with_deadline)),
                Cell::Count(f.rated()),
                Cell::Share(share(f.satisfied(), f.rated())),
                Cell::Count(f.bad()),
                Cell::Count(f.rectified),
            ]
        })
        .collect();
    Table {
        sheet: t.get("dashboard.sheet_monthly").into_owned(),
        headers,
        rows,
    }
}

/// Which export, in which format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Export {
    /// The cases received in the month.
    Cases,
    Monthly,
    /// Every case open today (在办).
    Open,
    /// The open cases past their committed date.
    Overdue,
}

async fn export(
    state: WebState,
    ctx: Ctx,
    query: PeriodQuery,
    what: Export,
    format: Download,
) -> Response {
    if let Some(refused) = ctx.refuse_unless_lead() {
        return refused;
    }
    let Some(month) = period(state.today(), &query) else {
        return bad_month(&ctx);
    };
    let table = match what {
        Export::Cases => state
            .store
            .export_cases(month, state.today(), EXPORT_CAP)
            .await
            .map(|cases| cases_table(ctx.t, cases)),
        Export::Monthly => state
            .store
            .monthly_stats(month, EXPORT_MONTHS)
            .await
            .map(|months| monthly_table(ctx.t, months)),
        Export::Open | Export::Overdue => state
            .store
            .export_open_cases(what == Export::Overdue, state.today(), EXPORT_CAP)
            .await
            .map(|cases| cases_table(ctx.t, cases)),
    };
    let table = match table {
        Ok(table) => table,
        Err(e) => return store_failed(&ctx, e),
    };
    let stem = match what {
        Export::Cases => "cases",
        Export::Monthly => "monthly",
        Export::Open => "open",
        Export::Overdue => "overdue",
    };
    // A list of what is open is as of today, not of a month.
    let period = match what {
        Export::Open | Export::Overdue => state.today().to_string(),
        Export::Cases | Export::Monthly => month.to_string(),
    };
    download(&ctx, table, format, &format!("{stem}-{period}")).await
}

/// `GET /dashboard/cases.csv?month=YYYY-MM`: the month's cases (at most [`EXPORT_CAP`]).
pub async fn cases_csv(
    State(state): State<WebState>,
    ctx: Ctx,
    Query(q): Query<PeriodQuery>,
) -> Response {
    export(state, ctx, q, Export::Cases, Download::Csv).await
}

/// `GET /dashboard/cases.xlsx?month=YYYY-MM`.
pub async fn cases_xlsx(
    State(state): State<WebState>,
    ctx: Ctx,
    Query(q): Query<PeriodQuery>,
) -> Response {
    export(state, ctx, q, Export::Cases, Download::Xlsx).await
}

/// `GET /dashboard/monthly.csv?month=YYYY-MM`: the twelve months ending with that one.
pub async fn monthly_csv(
    State(state): State<WebState>,
    ctx: Ctx,
    Query(q): Query<PeriodQuery>,
) -> Response {
    export(state, ctx, q, Export::Monthly, Download::Csv).await
}

/// `GET /dashboard/open.csv`: every case open today, soonest deadline first.
pub async fn open_csv(
    State(state): State<WebState>,
    ctx: Ctx,
    Query(q): Query<PeriodQuery>,
) -> Response {
    export(state, ctx, q, Export::Open, Download::Csv).await
}

/// `GET /dashboard/open.xlsx`.
pub async fn open_xlsx(
    State(state): State<WebState>,
    ctx: Ctx,
    Query(q): Query<PeriodQuery>,
) -> Response {
    export(state, ctx, q, Export::Open, Download::Xlsx).await
}

/// `GET /dashboard/overdue.csv`: the open cases past their committed date.
pub async fn overdue_csv(
    State(state): State<WebState>,
    ctx: Ctx,
    Query(q): Query<PeriodQuery>,
) -> Response {
    export(state, ctx, q, Export::Overdue, Download::Csv).await
}

/// `GET /dashboard/overdue.xlsx`.
pub async fn overdue_xlsx(
    State(state): State<WebState>,
    ctx: Ctx,
    Query(q): Query<PeriodQuery>,
) -> Response {
    export(state, ctx, q, Export::Overdue, Download::Xlsx).await
}

/// `GET /dashboard/monthly.xlsx?month=YYYY-MM`.
pub async fn monthly_xlsx(
    State(state): State<WebState>,
    ctx: Ctx,
    Query(q): Query<PeriodQuery>,
) -> Response {
    export(state, ctx, q, Export::Monthly, Download::Xlsx).await
}

#[cfg(test)]
mod tests {
    use yizhan_sync::domain::case::Action;

    use super::*;
    use crate::i18n::Lang;
    use crate::store::NewAction;
    use crate::store::tests::{at, complete_application, item, open_temp, publish_catalog, staff};
    use crate::web::export::tests::{assert_same, parse_csv, read_xlsx};

    /// Both exports, read back (the .xlsx with calamine), say the same as each other and
    /// as the store's list, row for row.
    #[tokio::test]
    async fn exports_match_the_list_row_for_row() {
        let (_dir, store) = open_temp();
        publish_catalog(&store).await;
        let card = item("老年人优待证办理");
        let mut ids = Vec::new();
        for (n, day) in ["2026-03-02", "2026-03-03", "2026-03-04"]
            .iter()
            .enumerate()
        {
            let mut application = complete_application(&card);
            // A name a spreadsheet would take for a formula stays text.
            if n == 1 {
                application.applicant = yizhan_sync::domain::case::Applicant::NaturalPerson {
                    name: "=1+1".into(),
                    id_number: yizhan_sync::domain::codes::ResidentId::parse("11010519491231002X")
                        .unwrap(),
                    phone: yizhan_sync::domain::case::Phone::parse("13800138000").unwrap(),
                };
            }
            let id = store
                .create_case(card.impl_code.to_string(), application, staff(), at(day))
                .await
                .unwrap();
            // Writes go in time order; the third case is never accepted.
            if n < 2 {
                store
                    .act_on_case(
                        id.clone(),
                        vec![NewAction::Accept],
                        staff(),
                        at(day) + 60_000,
                    )
                    .await
                    .unwrap();
            }
            ids.push(id);
        }
        for action in [
            Action::Complete {
                result: "已办结".into(),
                delivery: "窗口领取".into(),
            },
            Action::Rate {
                level: 4,
                comment: String::new(),
                rectify_days: 0,
            },
        ] {
            store
                .act_on_case(
                    ids[0].clone(),
                    vec![NewAction::Do(action)],
                    crate::store::tests::lead(),
                    at("2026-03-05"),
                )
                .await
                .unwrap();
        }
        let march = Month::parse("2026-03").unwrap();
        let listed = store
            .export_cases(march, "2026-03-20".parse().unwrap(), EXPORT_CAP)
            .await
            .unwrap();
        let t = Tr::of(Lang::Zh);
        let table = cases_table(t, listed.clone());
        let csv = parse_csv(&table.to_csv());
        let xlsx = read_xlsx(&table.to_xlsx().unwrap());
        assert_same(&xlsx, &csv);
        assert_eq!(csv.len(), listed.len() + 1, "a header and one row per case");
        assert_eq!(csv[0][0], "办件编号");
        for (row, case) in csv[1..].iter().zip(&listed) {
            assert_eq!(row[0], case.summary.serial_no.clone().unwrap_or_default());
            assert_eq!(row[6], case.received_on);
        }
        assert_eq!(csv[1][12], "4 满意");
        assert_eq!(csv[1][2], "已办结");
        assert!(csv[2][3].starts_with("'=1+1（"), "{:?}", csv[2][3]);
        assert!(matches!(&xlsx[2][3], calamine::Data::String(s) if s.starts_with("=1+1（")));
        assert_eq!(csv[3][11], "", "not accepted: no level");

        let months = store.monthly_stats(march, EXPORT_MONTHS).await.unwrap();
        let table = monthly_table(Tr::of(Lang::En), months);
        let csv = parse_csv(&table.to_csv());
        assert_same(&read_xlsx(&table.to_xlsx().unwrap()), &csv);
        assert_eq!(csv.len(), 13);
        let last = &csv[12];
        assert_eq!(last[0], "2026-03");
        // Received 3, accepted 2, completed 1 (on time), rated 1 (satisfied).
        assert_eq!(
            &last[1..],
            ["3", "2", "1", "0", "0", "100.0%", "1", "100.0%", "0", "0"]
        );
    }

    #[test]
    fn bars_scale_to_the_largest_value_and_keep_zero_bars_flat() {
        let chart = bar_chart(
            "chart-test",
            "t".into(),
            vec![("a".into(), 0, 0), ("b".into(), 5, 1), ("c".into(), 10, 4)],
        );
        let heights: Vec<u32> = chart.bars.iter().map(|b| b.h).collect();
        assert_eq!(heights[0], 0);
        assert_eq!(heights[2], 2 * heights[1]);
        assert!(chart.bars.iter().all(|b| b.y + b.h == chart.baseline_y));
        assert_eq!(chart.bars[1].fill, "url(#chart-test-p1)");
    }
}
