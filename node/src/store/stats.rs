//! Figures for the lead's dashboard (现场负责人看板) and its exports: the open cases as of
//! today, and per-month figures, all read from the derived `cases` rows.
//!
//! Every date column holds a China Standard Time day as `YYYY-MM-DD`, so a month is the
//! string range from its first to its last day and grouping by month is
//! `substr(column, 1, 7)`: month boundaries are China's with no time-zone arithmetic here.
//! Warning levels are compared with today at query time, as the work list does; they are
//! never stored.

use std::collections::BTreeMap;
use std::fmt;

use rusqlite::{Connection, params};
use yizhan_sync::domain::calendar::{Date, WarningLevel};
use yizhan_sync::domain::case::Status;

use super::cases::{SUMMARY_COLUMNS, SUMMARY_LEN, summary_from_row};
use super::{CaseSummary, Store, StoreError};

/// At most this many rows go into one case-list export. A station receives a few hundred
/// cases a month, a hall a few thousand; the cap bounds memory for the .xlsx writer.
pub const EXPORT_CAP: u32 = 100_000;

/// A calendar month, in China time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    year: i32,
    month: u32,
}

impl Month {
    pub fn new(year: i32, month: u32) -> Option<Month> {
        ((2000..=2999).contains(&year) && (1..=12).contains(&month))
            .then_some(Month { year, month })
    }

    /// `YYYY-MM`, exactly (as `<input type="month">` sends it).
    pub fn parse(s: &str) -> Option<Month> {
        let (year, month) = s.split_once('-')?;
        if year.len() != 4
            || month.len() != 2
            || !(year.bytes().chain(month.bytes())).all(|b| b.is_ascii_digit())
        {
            return None;
        }
        Month::new(year.parse().ok()?, month.parse().ok()?)
    }

    /// The month a day falls in.
    pub fn of(date: Date) -> Month {
        let (year, month, _) = date.ymd();
        Month { year, month }
    }

    pub fn first_day(self) -> Date {
        Date::from_ymd(self.year, self.month, 1).expect("a valid month has a first day")
    }

    pub fn last_day(self) -> Date {
        self.next().first_day().add_days(-1)
    }

    pub fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                month: self.month + 1,
                ..self
            }
        }
    }

    pub fn prev(self) -> Month {
        if self.month == 1 {
            Month {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Month {
                month: self.month - 1,
                ..self
            }
        }
    }

    /// The `n` months ending with this one, oldest first.
    pub fn last_n(self, n: u32) -> Vec<Month> {
        let mut months: Vec<Month> = std::iter::successors(Some(self), |m| Some(m.prev()))
            .take(n as usize)
            .collect();
        months.reverse();
        months
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// Open cases per warning level today (only cases whose time limits run have one).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LevelCounts {
    pub normal: u64,
    pub yellow: u64,
    pub red: u64,
    pub legal_breach: u64,
}

impl LevelCounts {
    pub fn of(&self, level: WarningLevel) -> u64 {
        match level {
            WarningLevel::Normal => self.normal,
            WarningLevel::Yellow => self.yellow,
            WarningLevel::Red => self.red,
            WarningLevel::LegalBreach => self.legal_breach,
        }
    }
}

/// A rectification a bad rating opened and nobody has closed yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenRectification {
    pub id: String,
    pub serial_no: Option<String>,
    pub item_name: String,
    pub counter: String,
    pub staff: String,
    pub rating: u8,
    pub rated_on: String,
    pub rectify_due: String,
    /// Past its due day today.
    pub overdue: bool,
}

/// The state of the station today, whatever the period.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// Open cases per status, in the order of [`Status::ALL`], statuses with none left out.
    pub open_by_status: Vec<(Status, u64)>,
    pub levels: LevelCounts,
    /// Cases with concurrent incompatible events waiting for a lead.
    pub conflicts: u64,
    /// Red or past the legal limit, most urgent first (at most the cap asked for).
    pub overdue: Vec<CaseSummary>,
    /// Yellow, or due (committed) within the next few working days with the clock
    /// running; soonest first.
    pub due_soon: Vec<CaseSummary>,
    pub due_soon_total: u64,
    /// The last day the due-soon list looks ahead to.
    pub due_soon_until: Date,
    pub rectifications: Vec<OpenRectification>,
    pub rectifications_total: u64,
}

/// Cases at one counter or of one member of staff in a period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Workload {
    pub name: String,
    /// Received (收件) in the period.
    pub received: u64,
    /// Completed (办结) in the period, whenever received.
    pub completed: u64,
    /// Received in the period and still open today.
    pub open: u64,
}

/// The figures of one month.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MonthFigures {
    pub received: u64,
    pub accepted: u64,
    pub completed: u64,
    pub refused: u64,
    pub withdrawn: u64,
    /// Completed in the month with a committed deadline: how many, and how many on or
    /// before it.
    pub with_deadline: u64,
    pub on_time: u64,
    /// Ratings given in the month, per level (index 0 is level 1, 非常不满意).
    pub ratings: [u64; 5],
    pub rectified: u64,
}

impl MonthFigures {
    pub fn rated(&self) -> u64 {
        self.ratings.iter().sum()
    }

    /// Levels 4 and 5 (满意, 非常满意).
    pub fn satisfied(&self) -> u64 {
        self.ratings[3] + self.ratings[4]
    }

    /// Levels 1 and 2 (非常不满意, 不满意): 差评 (DOMAIN §8).
    pub fn bad(&self) -> u64 {
        self.ratings[0] + self.ratings[1]
    }
}

/// Everything the dashboard shows about one month.
#[derive(Clone, Debug)]
pub struct PeriodStats {
    pub month: Month,
    pub figures: MonthFigures,
    /// Of the cases completed in the month, how many have been rated (by now).
    pub completed_rated: u64,
    pub per_counter: Vec<Workload>,
    pub per_staff: Vec<Workload>,
    /// The fees collected and waived in the month, by item (§9.5).
    pub fees: Vec<FeeFigures>,
}

/// What one item's cases paid and had waived in a period (§9.5): counted from the
/// payments and exemptions that count (`case_fees`), by the day each was recorded. A hall
/// holds its subtree's cases, so its figures are the subtree's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeeFigures {
    pub impl_code: String,
    pub item_name: String,
    /// Fen collected.
    pub collected_fen: u64,
    /// Cases with a payment.
    pub paid_cases: u64,
    /// Exemptions (减免) and the fen they waived.
    pub exemptions: u64,
    pub exempt_fen: u64,
}

impl FeeFigures {
    /// The figures of all items together.
    pub fn total(all: &[FeeFigures]) -> FeeFigures {
        FeeFigures {
            impl_code: String::new(),
            item_name: String::new(),
            collected_fen: all.iter().map(|f| f.collected_fen).sum(),
            paid_cases: all.iter().map(|f| f.paid_cases).sum(),
            exemptions: all.iter().map(|f| f.exemptions).sum(),
            exempt_fen: all.iter().map(|f| f.exempt_fen).sum(),
        }
    }
}

/// A case as the export lists it.
#[derive(Clone, Debug)]
pub struct ExportCase {
    pub summary: CaseSummary,
    pub received_on: String,
    pub rating: Option<u8>,
}

impl Store {
    /// Open cases by status and level today, the overdue and due-soon lists (at most
    /// `cap` each) and the open rectifications. "Due soon" looks `soon_days` working days
    /// ahead by this node's calendar.
    pub async fn dashboard_snapshot(
        &self,
        today: Date,
        soon_days: u32,
        cap: u32,
    ) -> Result<Snapshot, StoreError> {
        let calendar = self.calendar();
        self.read(move |conn| snapshot(conn, &calendar, today, soon_days, cap))
            .await
    }

    /// The dashboard's figures for `month`.
    pub async fn period_stats(&self, month: Month) -> Result<PeriodStats, StoreError> {
        self.read(move |conn| period_stats(conn, month)).await
    }

    /// The fees collected and waived in `month`, by item (§9.5).
    pub async fn fee_stats(&self, month: Month) -> Result<Vec<FeeFigures>, StoreError> {
        self.read(move |conn| fee_stats(conn, month)).await
    }

    /// [`Store::fee_stats`] for a person of `role` here: the figures of a station's or a
    /// subtree's counters are read by whom the month's assessment is (`engine::may_assess`).
    pub async fn fee_report(
        &self,
        month: Month,
        role: yizhan_sync::engine::StaffRole,
    ) -> Result<Vec<FeeFigures>, StoreError> {
        yizhan_sync::engine::may_assess(self.own_record(), role)
            .map_err(|e| StoreError::Forbidden(crate::i18n::Words::from(&e)))?;
        self.fee_stats(month).await
    }

    /// The figures of each of the `n` months ending with `last`, oldest first.
    pub async fn monthly_stats(
        &self,
        last: Month,
        n: u32,
    ) -> Result<Vec<(Month, MonthFigures)>, StoreError> {
        self.read(move |conn| monthly(conn, last, n)).await
    }

    /// The cases received in `month`, oldest first, at most `cap` (and never more than
    /// [`EXPORT_CAP`]); levels as of `today`.
    pub async fn export_cases(
        &self,
        month: Month,
        today: Date,
        cap: u32,
    ) -> Result<Vec<ExportCase>, StoreError> {
        self.read(move |conn| export_cases(conn, month, today, cap.min(EXPORT_CAP)))
            .await
    }

    /// The cases still open today (在办), soonest committed deadline first (not yet
    /// accepted last); with `overdue_only`, those past their committed date (red or past
    /// the legal limit). At most `cap` (never more than [`EXPORT_CAP`]).
    pub async fn export_open_cases(
        &self,
        overdue_only: bool,
        today: Date,
        cap: u32,
    ) -> Result<Vec<ExportCase>, StoreError> {
        self.read(move |conn| {
            let condition = if overdue_only {
                "red_on <= ?1"
            } else {
                "status IN ('submitted', 'awaiting_supplement', 'accepted', 'suspended', 'decided')"
            };
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {SUMMARY_COLUMNS}, created_on, rating FROM cases WHERE {condition}
                 ORDER BY COALESCE(committed_due, '9999-12-31'), id LIMIT ?2"
            ))?;
            let rows = stmt.query_map(params![today.to_string(), cap.min(EXPORT_CAP)], |r| {
                Ok(ExportCase {
                    summary: summary_from_row(r)?,
                    received_on: r.get(SUMMARY_LEN)?,
                    rating: r.get(SUMMARY_LEN + 1)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }
}

const CLOSED: &str = "('completed', 'refused', 'withdrawn')";

fn count(n: i64) -> u64 {
    n.max(0) as u64
}

fn snapshot(
    conn: &Connection,
    calendar: &yizhan_sync::domain::calendar::Calendar,
    today: Date,
    soon_days: u32,
    cap: u32,
) -> Result<Snapshot, StoreError> {
    let today_s = today.to_string();
    let mut open: Vec<(Status, u64)> = Vec::new();
    {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT status, count(*) FROM cases WHERE status NOT IN {CLOSED} GROUP BY status"
        ))?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (status, n) = row?;
            if let Some(status) = Status::parse(&status) {
                open.push((status, count(n)));
            }
        }
    }
    open.sort_by_key(|(status, _)| Status::ALL.iter().position(|s| s == status));

    // Only open cases with running (or frozen) limits have warning dates; the partial
    // index on breach_on holds just those.
    let mut levels = LevelCounts::default();
    {
        let mut stmt = conn.prepare_cached(
            "SELECT CASE WHEN breach_on <= ?1 THEN 'legal_breach'
                         WHEN red_on <= ?1 THEN 'red'
                         WHEN yellow_on <= ?1 THEN 'yellow'
                         ELSE 'normal' END AS level, count(*)
             FROM cases WHERE breach_on IS NOT NULL GROUP BY level",
        )?;
        let rows = stmt.query_map([&today_s], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (level, n) = row?;
            match WarningLevel::parse(&level) {
                Some(WarningLevel::Normal) => levels.normal = count(n),
                Some(WarningLevel::Yellow) => levels.yellow = count(n),
                Some(WarningLevel::Red) => levels.red = count(n),
                Some(WarningLevel::LegalBreach) => levels.legal_breach = count(n),
                None => {}
            }
        }
    }
    let conflicts: i64 =
        conn.query_row("SELECT count(*) FROM cases WHERE conflict = 1", [], |r| {
            r.get(0)
        })?;

    let summaries =
        |sql: &str, args: &[&dyn rusqlite::ToSql]| -> Result<Vec<CaseSummary>, StoreError> {
            let mut stmt = conn.prepare_cached(sql)?;
            let rows = stmt.query_map(args, summary_from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        };
    let overdue = summaries(
        &format!(
            "SELECT {SUMMARY_COLUMNS} FROM cases WHERE red_on <= ?1
             ORDER BY breach_on, red_on, id LIMIT ?2"
        ),
        &[&today_s, &cap],
    )?;

    // Due soon: yellow today, or not yet yellow but due within `soon_days` working days
    // while the clock runs (a suspended case's committed date is not its real end yet).
    let until = calendar.add_working_days(today, soon_days, &[]);
    let until_s = until.to_string();
    let due_soon_where = "breach_on IS NOT NULL AND red_on > ?1
         AND (yellow_on <= ?1 OR (clock_stopped_on IS NULL AND committed_due <= ?2))";
    let due_soon = summaries(
        &format!(
            "SELECT {SUMMARY_COLUMNS} FROM cases WHERE {due_soon_where}
             ORDER BY committed_due, id LIMIT ?3"
        ),
        &[&today_s, &until_s, &cap],
    )?;
    let due_soon_total: i64 = conn.query_row(
        &format!("SELECT count(*) FROM cases WHERE {due_soon_where}"),
        params![today_s, until_s],
        |r| r.get(0),
    )?;

    let open_rectification = "rectify_due IS NOT NULL AND rectified_on IS NULL AND rating <= 2";
    let rectifications = {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT id, serial_no, item_name, counter, staff, rating, rated_on, rectify_due
             FROM cases WHERE {open_rectification} ORDER BY rectify_due, id LIMIT ?1"
        ))?;
        let rows = stmt.query_map([cap], |r| {
            let rectify_due: String = r.get(7)?;
            Ok(OpenRectification {
                id: r.get(0)?,
                serial_no: r.get(1)?,
                item_name: r.get(2)?,
                counter: r.get(3)?,
                staff: r.get(4)?,
                rating: r.get(5)?,
                rated_on: r.get::<_, Option<String>>(6)?.unwrap_or_default(),
                overdue: rectify_due < today_s,
                rectify_due,
            })
        })?;
        rows.collect::<Result<Vec<_>, _>>()?
    };
    let rectifications_total: i64 = conn.query_row(
        &format!("SELECT count(*) FROM cases WHERE {open_rectification}"),
        [],
        |r| r.get(0),
    )?;

    Ok(Snapshot {
        open_by_status: open,
        levels,
        conflicts: count(conflicts),
        overdue,
        due_soon,
        due_soon_total: count(due_soon_total),
        due_soon_until: until,
        rectifications,
        rectifications_total: count(rectifications_total),
    })
}

fn fee_stats(conn: &Connection, month: Month) -> Result<Vec<FeeFigures>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.impl_code, max(c.item_name),
                sum(CASE WHEN f.kind = 'pay' THEN f.amount_fen ELSE 0 END),
                count(DISTINCT CASE WHEN f.kind = 'pay' THEN f.case_id END),
                sum(f.kind = 'exempt'),
                sum(CASE WHEN f.kind = 'exempt' THEN f.amount_fen ELSE 0 END)
         FROM case_fees f JOIN cases c ON c.id = f.case_id
         WHERE f.on_day BETWEEN ?1 AND ?2
         GROUP BY c.impl_code ORDER BY c.impl_code",
    )?;
    let rows = stmt.query_map(
        params![month.first_day().to_string(), month.last_day().to_string()],
        |r| {
            Ok(FeeFigures {
                impl_code: r.get(0)?,
                item_name: r.get(1)?,
                collected_fen: count(r.get(2)?),
                paid_cases: count(r.get(3)?),
                exemptions: count(r.get(4)?),
                exempt_fen: count(r.get(5)?),
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A case counted in the month's statistics: not a part of a combined application
/// (并联审批, §7.5), which counts once, as its whole; its parts are its departments' work.
const WHOLE: &str = "NOT EXISTS (SELECT 1 FROM case_parts WHERE case_parts.id = cases.id)";

fn period_stats(conn: &Connection, month: Month) -> Result<PeriodStats, StoreError> {
    let figures = monthly(conn, month, 1)?
        .pop()
        .map(|(_, figures)| figures)
        .unwrap_or_default();
    let (from, to) = (month.first_day().to_string(), month.last_day().to_string());
    // One pass over the cases received or closed in the month, for the rated count and
    // both workload tables (each was a scan of the table of its own; see `monthly`). The
    // measures stay in SQL; a NULL among them (no closing date) counts as no.
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT counter, staff,
                created_on BETWEEN ?1 AND ?2,
                status = 'completed' AND closed_on BETWEEN ?1 AND ?2,
                created_on BETWEEN ?1 AND ?2 AND status NOT IN {CLOSED},
                rating IS NOT NULL
           FROM cases
          WHERE (created_on BETWEEN ?1 AND ?2 OR closed_on BETWEEN ?1 AND ?2) AND {WHOLE}"
    ))?;
    let mut rows = stmt.query(params![from, to])?;
    let mut per_counter: BTreeMap<String, Workload> = BTreeMap::new();
    let mut per_staff: BTreeMap<String, Workload> = BTreeMap::new();
    let mut completed_rated = 0;
    while let Some(row) = rows.next()? {
        let yes = |i: usize| -> Result<u64, rusqlite::Error> {
            Ok(u64::from(row.get::<_, Option<bool>>(i)?.unwrap_or(false)))
        };
        let (received, completed, open) = (yes(2)?, yes(3)?, yes(4)?);
        completed_rated += completed * yes(5)?;
        for (table, name) in [
            (&mut per_counter, row.get::<_, String>(0)?),
            (&mut per_staff, row.get(1)?),
        ] {
            let line = table.entry(name.clone()).or_insert_with(|| Workload {
                name,
                received: 0,
                completed: 0,
                open: 0,
            });
            line.received += received;
            line.completed += completed;
            line.open += open;
        }
    }
    Ok(PeriodStats {
        month,
        figures,
        completed_rated,
        per_counter: per_counter.into_values().collect(),
        per_staff: per_staff.into_values().collect(),
        fees: fee_stats(conn, month)?,
    })
}

fn monthly(
    conn: &Connection,
    last: Month,
    n: u32,
) -> Result<Vec<(Month, MonthFigures)>, StoreError> {
    let months = last.last_n(n.max(1));
    let from = months[0].first_day().to_string();
    let to = last.last_day().to_string();
    let mut figures: Vec<(Month, MonthFigures)> = months
        .iter()
        .map(|m| (*m, MonthFigures::default()))
        .collect();
    // One pass over the cases any of whose dates falls in the months, each measure counted
    // by the month of its own date; a combined application once, as its whole (`WHOLE`).
    // The table has no index on these dates (each would cost every write), so this reads
    // it once where a grouped count per date column read it six times (the dashboard reads
    // the figures twice: half its time at 100,000 cases).
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT created_on, accepted_on, closed_on, status, committed_due, rated_on, rating,
                rectified_on
           FROM cases
          WHERE (created_on BETWEEN ?1 AND ?2 OR accepted_on BETWEEN ?1 AND ?2
                 OR closed_on BETWEEN ?1 AND ?2 OR rated_on BETWEEN ?1 AND ?2
                 OR rectified_on BETWEEN ?1 AND ?2)
            AND {WHOLE}"
    ))?;
    let mut rows = stmt.query(params![from, to])?;
    while let Some(row) = rows.next()? {
        let created_on: Option<String> = row.get(0)?;
        let accepted_on: Option<String> = row.get(1)?;
        let closed_on: Option<String> = row.get(2)?;
        let status: String = row.get(3)?;
        let committed_due: Option<String> = row.get(4)?;
        let rated_on: Option<String> = row.get(5)?;
        let rating: Option<i64> = row.get(6)?;
        let rectified_on: Option<String> = row.get(7)?;
        if let Some(f) = month_of(&mut figures, &from, &to, &created_on) {
            f.received += 1;
        }
        if let Some(f) = month_of(&mut figures, &from, &to, &accepted_on) {
            f.accepted += 1;
        }
        if let Some(f) = month_of(&mut figures, &from, &to, &closed_on) {
            match status.as_str() {
                "completed" => {
                    f.completed += 1;
                    if let (Some(closed), Some(due)) = (&closed_on, &committed_due) {
                        f.with_deadline += 1;
                        f.on_time += u64::from(closed <= due);
                    }
                }
                "refused" => f.refused += 1,
                "withdrawn" => f.withdrawn += 1,
                _ => {}
            }
        }
        if let (Some(f), Some(level @ 1..=5)) =
            (month_of(&mut figures, &from, &to, &rated_on), rating)
        {
            f.ratings[level as usize - 1] += 1;
        }
        if let Some(f) = month_of(&mut figures, &from, &to, &rectified_on) {
            f.rectified += 1;
        }
    }
    Ok(figures)
}

/// The figures of the month `day` falls in, when it lies within `from..=to`.
fn month_of<'a>(
    figures: &'a mut [(Month, MonthFigures)],
    from: &str,
    to: &str,
    day: &Option<String>,
) -> Option<&'a mut MonthFigures> {
    let day = day.as_deref().filter(|d| *d >= from && *d <= to)?;
    let month = Month::parse(day.get(..7)?)?;
    figures
        .iter_mut()
        .find(|(m, _)| *m == month)
        .map(|(_, f)| f)
}

fn export_cases(
    conn: &Connection,
    month: Month,
    today: Date,
    cap: u32,
) -> Result<Vec<ExportCase>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {SUMMARY_COLUMNS}, created_on, rating FROM cases
         WHERE created_on BETWEEN ?2 AND ?3 AND {WHOLE} ORDER BY created_ms, id LIMIT ?4"
    ))?;
    let rows = stmt.query_map(
        params![
            today.to_string(),
            month.first_day().to_string(),
            month.last_day().to_string(),
            cap
        ],
        |r| {
            Ok(ExportCase {
                summary: summary_from_row(r)?,
                received_on: r.get(SUMMARY_LEN)?,
                rating: r.get(SUMMARY_LEN + 1)?,
            })
        },
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use yizhan_sync::domain::calendar::{Calendar, Date, WarningLevel};
    use yizhan_sync::domain::case::{Action, Status};
    use yizhan_sync::ids::DocId;

    use super::Month;
    use crate::store::tests::{at, complete_application, item, open_temp, publish_catalog};
    use crate::store::{NewAction, Staff, Store};

    fn desk(username: &str, counter: &str) -> Staff {
        Staff {
            username: username.into(),
            counter: counter.into(),
            role: crate::store::Role::Worker,
        }
    }

    /// Unix milliseconds of `hh:mm` China Standard Time on `date`.
    fn cst(date: &str, hour: u64, minute: u64) -> u64 {
        let d: Date = date.parse().unwrap();
        (d.days_since_epoch() as u64 * 86_400 + hour * 3600 + minute * 60) * 1000 - 8 * 3_600_000
    }

    async fn receive(store: &Store, staff: &Staff, now_ms: u64) -> DocId {
        let card = item("老年人优待证办理");
        let mut application = complete_application(&card);
        application.counter = staff.counter.clone();
        store
            .create_case(
                card.impl_code.to_string(),
                application,
                staff.clone(),
                now_ms,
            )
            .await
            .unwrap()
    }

    async fn act(store: &Store, id: &DocId, action: NewAction, now_ms: u64) {
        store
            .act_on_case(
                id.clone(),
                vec![action],
                Staff {
                    role: crate::store::Role::Lead,
                    ..desk("worker", "1号窗口")
                },
                now_ms,
            )
            .await
            .unwrap();
    }

    fn complete() -> NewAction {
        NewAction::Do(Action::Complete {
            result: "已办结".into(),
            delivery: "窗口领取".into(),
        })
    }

    fn rate(level: u8) -> NewAction {
        NewAction::Do(Action::Rate {
            level,
            comment: String::new(),
            rectify_days: 5,
        })
    }

    #[test]
    fn months_parse_strictly_and_step_over_years() {
        for bad in [
            "",
            "2026",
            "2026-3",
            "2026-13",
            "2026-00",
            "26-03",
            "2026/03",
            "２０２６-03",
            "1999-12",
        ] {
            assert_eq!(Month::parse(bad), None, "{bad:?}");
        }
        let march = Month::parse("2026-03").unwrap();
        assert_eq!(march.to_string(), "2026-03");
        assert_eq!(march.last_day().to_string(), "2026-03-31");
        assert_eq!(
            Month::parse("2028-02").unwrap().last_day().to_string(),
            "2028-02-29"
        );
        assert_eq!(
            Month::parse("2026-01").unwrap().prev().to_string(),
            "2025-12"
        );
        assert_eq!(
            Month::parse("2025-12").unwrap().next().to_string(),
            "2026-01"
        );
        let six: Vec<String> = march.last_n(6).iter().map(Month::to_string).collect();
        assert_eq!(
            six,
            [
                "2025-10", "2025-11", "2025-12", "2026-01", "2026-02", "2026-03"
            ]
        );
        assert_eq!(Month::of("2026-03-31".parse().unwrap()), march);
    }

    /// On-time rate, ratings, per-counter and per-staff counts, month boundaries in China
    /// time, and the open lists of the snapshot, on cases made through the store.
    #[tokio::test]
    async fn dashboard_figures_follow_the_cases() {
        let (_dir, store) = open_temp();
        publish_catalog(&store).await;
        let worker = desk("worker", "1号窗口");
        let other = desk("zhao", "2号窗口");
        // Writes go in time order: the node's clock never runs backwards.
        let a = receive(&store, &worker, at("2026-03-02")).await;
        act(&store, &a, NewAction::Accept, at("2026-03-02") + 60_000).await;
        let b = receive(&store, &other, at("2026-03-02") + 120_000).await;
        act(&store, &b, NewAction::Accept, at("2026-03-02") + 180_000).await;
        // 老年人优待证: committed 5 working days, so both are due 2026-03-09.
        act(&store, &a, complete(), at("2026-03-05")).await;
        act(&store, &a, rate(5), at("2026-03-05") + 60_000).await;
        act(&store, &b, complete(), at("2026-03-12")).await;
        act(&store, &b, rate(2), at("2026-03-12") + 60_000).await;
        // 23:30 on 31 March and 00:30 on 1 April, China time (15:30 and 16:30 UTC).
        let c = receive(&store, &worker, cst("2026-03-31", 23, 30)).await;
        let d = receive(&store, &worker, cst("2026-04-01", 0, 30)).await;
        act(&store, &d, NewAction::Accept, at("2026-04-02")).await;
        let withdrawn = receive(&store, &other, at("2026-04-02") + 60_000).await;
        act(
            &store,
            &withdrawn,
            NewAction::Do(Action::Withdraw {
                reason: "申请人撤回".into(),
            }),
            at("2026-04-02") + 120_000,
        )
        .await;

        let march = store
            .period_stats(Month::parse("2026-03").unwrap())
            .await
            .unwrap();
        let f = &march.figures;
        assert_eq!((f.received, f.accepted, f.completed), (3, 2, 2));
        assert_eq!((f.refused, f.withdrawn), (0, 0));
        assert_eq!(
            (f.on_time, f.with_deadline),
            (1, 2),
            "A on time, B three days late"
        );
        assert_eq!(f.ratings, [0, 1, 0, 0, 1]);
        assert_eq!(
            (f.rated(), f.satisfied(), f.bad(), f.rectified),
            (2, 1, 1, 0)
        );
        assert_eq!(march.completed_rated, 2);
        let workloads = |w: &[super::Workload]| -> Vec<(String, u64, u64, u64)> {
            w.iter()
                .map(|w| (w.name.clone(), w.received, w.completed, w.open))
                .collect()
        };
        assert_eq!(
            workloads(&march.per_counter),
            [("1号窗口".into(), 2, 1, 1), ("2号窗口".into(), 1, 1, 0)],
            "C, received at 23:30 on 31 March, is March's and still open"
        );
        assert_eq!(
            workloads(&march.per_staff),
            [("worker".into(), 2, 1, 1), ("zhao".into(), 1, 1, 0)]
        );

        let months = store
            .monthly_stats(Month::parse("2026-04").unwrap(), 12)
            .await
            .unwrap();
        assert_eq!(months.len(), 12);
        assert_eq!(months[0].0.to_string(), "2025-05");
        assert_eq!(months[10].1, march.figures, "the same figures either way");
        let april = &months[11].1;
        assert_eq!(
            (
                april.received,
                april.accepted,
                april.withdrawn,
                april.completed
            ),
            (2, 1, 1, 0),
            "D, received at 00:30 on 1 April, is April's"
        );
        assert!(months[..10].iter().all(|(_, f)| *f == Default::default()));

        // The export lists the month's cases, oldest first, with level and rating.
        let listed = store
            .export_cases(
                Month::parse("2026-03").unwrap(),
                "2026-04-02".parse().unwrap(),
                100,
            )
            .await
            .unwrap();
        let ids: Vec<&str> = listed.iter().map(|e| e.summary.id.as_str()).collect();
        assert_eq!(ids, [a.as_str(), b.as_str(), c.as_str()]);
        assert_eq!(listed[1].rating, Some(2));
        assert_eq!(listed[2].received_on, "2026-03-31");
        assert_eq!(listed[2].rating, None);
        let capped = store
            .export_cases(
                Month::parse("2026-03").unwrap(),
                "2026-04-02".parse().unwrap(),
                2,
            )
            .await
            .unwrap();
        assert_eq!(capped.len(), 2);

        // Today, 2 April: C waits for acceptance, D runs, B's rectification is overdue.
        let today: Date = "2026-04-02".parse().unwrap();
        let snapshot = store.dashboard_snapshot(today, 3, 20).await.unwrap();
        assert_eq!(
            snapshot.open_by_status,
            [(Status::Submitted, 1), (Status::Accepted, 1)]
        );
        assert_eq!(snapshot.levels.of(WarningLevel::Normal), 1);
        assert_eq!(snapshot.conflicts, 0);
        assert!(snapshot.overdue.is_empty() && snapshot.due_soon.is_empty());
        assert_eq!(snapshot.rectifications_total, 1);
        let open = &snapshot.rectifications[0];
        assert_eq!((open.id.as_str(), open.rating), (b.as_str(), 2));
        assert_eq!(open.rectify_due, "2026-03-19", "5 working days after 03-12");
        assert!(open.overdue);

        // D as its committed date comes near and passes.
        let detail = store.get_case(d.to_string(), today).await.unwrap();
        let due: Date = detail.summary.committed_due.unwrap().parse().unwrap();
        let legal: Date = detail.summary.legal_due.unwrap().parse().unwrap();
        let calendar = Calendar::china();
        let mut three_before = due;
        for _ in 0..3 {
            three_before = three_before.add_days(-1);
            while !calendar.is_working_day(three_before) {
                three_before = three_before.add_days(-1);
            }
        }
        for (day, soon, overdue) in [
            (three_before.add_days(-1), 0, 0),
            (three_before, 1, 0),
            (due, 1, 0),
            (due.add_days(1), 0, 1),
            (legal.add_days(1), 0, 1),
        ] {
            let s = store.dashboard_snapshot(day, 3, 20).await.unwrap();
            assert_eq!(
                (s.due_soon.len() as u64, s.due_soon_total, s.overdue.len()),
                (soon, soon, overdue),
                "on {day}"
            );
        }
        let breach = store
            .dashboard_snapshot(legal.add_days(1), 3, 20)
            .await
            .unwrap();
        assert_eq!(breach.levels.of(WarningLevel::LegalBreach), 1);
        assert_eq!(breach.overdue[0].level, Some(WarningLevel::LegalBreach));

        // Closing the rectification empties the list and counts in April.
        act(
            &store,
            &b,
            NewAction::Do(Action::Rectify {
                response: "已回访申请人并改进告知方式".into(),
            }),
            at("2026-04-02") + 180_000,
        )
        .await;
        let snapshot = store.dashboard_snapshot(today, 3, 20).await.unwrap();
        assert_eq!(snapshot.rectifications_total, 0);
        let april = store
            .period_stats(Month::parse("2026-04").unwrap())
            .await
            .unwrap();
        assert_eq!(april.figures.rectified, 1);
    }
}
