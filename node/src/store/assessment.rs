//! The month's assessment (考核, standard §10.1 and §7.4.3.4): per station, sub-district,
//! department, counter or member of staff, the month's figures beside the previous
//! month's, computed once here for the page, its downloads and the API.
//!
//! Every figure is read from the derived `cases` rows and the supervision records, with
//! the definitions the dashboard (`stats`) and the overview (`hall`) use, each dated by
//! its own day:
//! - received: created in the month; completed: completed in the month (whenever
//!   received); on time: of those with a committed date, completed on or before it;
//! - working days: from acceptance to completion, counted on the calendar the case's
//!   deadlines count on (its division's, with the years its halls published), the days
//!   a suspension stopped the clock included;
//! - overdue: completed in the month after the committed date, or still open today
//!   past it with the first overdue day (`red_on`) in the month; past the legal limit
//!   likewise with the legal date and `breach_on` (so a case counts once, in the month it
//!   was finished late or, while open, fell late);
//! - ratings given in the month by level; of the bad ones (1 and 2, 差评) how many were
//!   rectified on or before their rectification day, and how many after;
//! - supervision notices issued in the month and how many were answered on time, counted
//!   on the issuing hall's calendar as the supervision lists count it.
//!
//! A case belongs to the station of its scope, its counter and staff are the intake's,
//! its department the one it was sent to (`holder`; none when it was never sent). A
//! notice about a station as a whole counts for the station and its sub-district only.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rusqlite::{Connection, params};
use yizhan_sync::auth::NodeRecord;
use yizhan_sync::domain::calendar::{Calendar, Date};
use yizhan_sync::domain::codes::{DivisionCode, DivisionLevel};
use yizhan_sync::domain::supervision::ReplyState;
use yizhan_sync::engine::{StaffRole, may_assess};
use yizhan_sync::ids::Scope;

use super::hall::hall_index;
use super::stats::Month;
use super::{Store, StoreError};
use crate::i18n::Words;

/// What the lines of an assessment are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AssessmentBy {
    Station,
    Subdistrict,
    Department,
    Counter,
    Staff,
}

impl AssessmentBy {
    pub const ALL: [AssessmentBy; 5] = [
        AssessmentBy::Station,
        AssessmentBy::Subdistrict,
        AssessmentBy::Department,
        AssessmentBy::Counter,
        AssessmentBy::Staff,
    ];

    /// Its name in queries, the API and the pages' word keys.
    pub fn as_str(self) -> &'static str {
        match self {
            AssessmentBy::Station => "station",
            AssessmentBy::Subdistrict => "subdistrict",
            AssessmentBy::Department => "department",
            AssessmentBy::Counter => "counter",
            AssessmentBy::Staff => "staff",
        }
    }

    pub fn parse(s: &str) -> Option<AssessmentBy> {
        AssessmentBy::ALL.into_iter().find(|by| by.as_str() == s)
    }

    /// The groupings a node of this kind offers: a station assesses its own counters and
    /// staff; a hall every grouping of its subtree.
    pub fn offered(hall: bool) -> &'static [AssessmentBy] {
        if hall {
            &AssessmentBy::ALL
        } else {
            &[AssessmentBy::Counter, AssessmentBy::Staff]
        }
    }
}

/// One month's figures of one line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AssessmentFigures {
    pub received: u64,
    pub completed: u64,
    /// Completed with a committed date, and of them on or before it.
    pub with_deadline: u64,
    pub on_time: u64,
    /// Completed after acceptance: how many, and their working days summed.
    pub timed: u64,
    pub working_days: u64,
    pub overdue: u64,
    pub legal_breach: u64,
    /// Ratings given in the month, per level (index 0 is level 1, 非常不满意).
    pub ratings: [u64; 5],
    /// Of the month's bad ratings, rectified by their day and after it.
    pub rectified_on_time: u64,
    pub rectified_late: u64,
    /// Supervision notices issued in the month, and of them answered by their day.
    pub supervision: u64,
    pub supervision_on_time: u64,
}

impl AssessmentFigures {
    /// Takes out what `o` counted (a combined case's parts, counted among all cases).
    fn subtract(&mut self, o: &AssessmentFigures) {
        let less = |a: &mut u64, b: u64| *a = a.saturating_sub(b);
        less(&mut self.received, o.received);
        less(&mut self.completed, o.completed);
        less(&mut self.with_deadline, o.with_deadline);
        less(&mut self.on_time, o.on_time);
        less(&mut self.timed, o.timed);
        less(&mut self.working_days, o.working_days);
        less(&mut self.overdue, o.overdue);
        less(&mut self.legal_breach, o.legal_breach);
        for (sum, n) in self.ratings.iter_mut().zip(o.ratings) {
            less(sum, n);
        }
        less(&mut self.rectified_on_time, o.rectified_on_time);
        less(&mut self.rectified_late, o.rectified_late);
        less(&mut self.supervision, o.supervision);
        less(&mut self.supervision_on_time, o.supervision_on_time);
    }

    fn add(&mut self, o: &AssessmentFigures) {
        self.received += o.received;
        self.completed += o.completed;
        self.with_deadline += o.with_deadline;
        self.on_time += o.on_time;
        self.timed += o.timed;
        self.working_days += o.working_days;
        self.overdue += o.overdue;
        self.legal_breach += o.legal_breach;
        for (sum, n) in self.ratings.iter_mut().zip(o.ratings) {
            *sum += n;
        }
        self.rectified_on_time += o.rectified_on_time;
        self.rectified_late += o.rectified_late;
        self.supervision += o.supervision;
        self.supervision_on_time += o.supervision_on_time;
    }

    /// `None` when nothing was completed with a committed date.
    pub fn on_time_rate(&self) -> Option<f64> {
        (self.with_deadline > 0).then(|| self.on_time as f64 / self.with_deadline as f64)
    }

    /// Average working days from acceptance to completion.
    pub fn average_days(&self) -> Option<f64> {
        (self.timed > 0).then(|| self.working_days as f64 / self.timed as f64)
    }

    pub fn rated(&self) -> u64 {
        self.ratings.iter().sum()
    }

    /// Levels 4 and 5 (满意, 非常满意).
    pub fn satisfied(&self) -> u64 {
        self.ratings[3] + self.ratings[4]
    }

    pub fn satisfaction(&self) -> Option<f64> {
        let rated = self.rated();
        (rated > 0).then(|| self.satisfied() as f64 / rated as f64)
    }

    /// Levels 1 and 2 (差评, DOMAIN §8).
    pub fn bad(&self) -> u64 {
        self.ratings[0] + self.ratings[1]
    }

    /// Of the month's notices, the share answered on time.
    pub fn supervision_rate(&self) -> Option<f64> {
        (self.supervision > 0).then(|| self.supervision_on_time as f64 / self.supervision as f64)
    }
}

/// One line: a station, sub-district, department, counter or member of staff.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssessmentLine {
    /// The division of the station or sub-district; for a counter or staff line, its
    /// station's; empty for a department.
    pub division: String,
    /// The counter, staff member or department named (empty for a station or
    /// sub-district line, and for cases never sent to a department).
    pub name: String,
    pub month: AssessmentFigures,
    pub previous: AssessmentFigures,
}

/// The month's assessment: its lines in key order and their total.
#[derive(Clone, Debug)]
pub struct Assessment {
    pub month: Month,
    pub by: AssessmentBy,
    pub lines: Vec<AssessmentLine>,
    pub total: AssessmentFigures,
    pub previous_total: AssessmentFigures,
}

/// The finest key a figure is counted under: a station, and the intake's counter and
/// staff and the department of a case (`None` for a notice about the whole station).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Fine {
    division: String,
    case: Option<(String, String, String)>,
    /// A part of a combined application (并联审批, §7.5): the department's work, counted
    /// in department lines only; the application counts once, as its whole.
    part: bool,
}

impl Store {
    /// The month's assessment grouped `by`, each line beside the month before, for a
    /// person of `role` here (`engine::may_assess`); open cases counted as of `today`.
    pub async fn assessment(
        &self,
        month: Month,
        by: AssessmentBy,
        role: StaffRole,
        today: Date,
    ) -> Result<Assessment, StoreError> {
        may_assess(self.own_record(), role).map_err(|e| StoreError::Forbidden(Words::from(&e)))?;
        let current = self.fine_figures(month, today).await?;
        let previous = self.fine_figures(month.prev(), today).await?;
        let group = |fine: &BTreeMap<Fine, AssessmentFigures>| {
            let mut lines: BTreeMap<(String, String), AssessmentFigures> = BTreeMap::new();
            for (key, figures) in fine {
                if let Some(line) = line_key(key, by) {
                    lines.entry(line).or_default().add(figures);
                }
            }
            lines
        };
        let (now, before) = (group(&current), group(&previous));
        let mut keys: Vec<&(String, String)> = now.keys().chain(before.keys()).collect();
        keys.sort();
        keys.dedup();
        let lines = keys
            .into_iter()
            .map(|key| AssessmentLine {
                division: key.0.clone(),
                name: key.1.clone(),
                month: now.get(key).cloned().unwrap_or_default(),
                previous: before.get(key).cloned().unwrap_or_default(),
            })
            .collect();
        // The total is the sum of the lines shown (a notice about a station as a whole has
        // no counter, member of staff or department, so it is in no such line).
        let sum = |lines: &BTreeMap<(String, String), AssessmentFigures>| {
            let mut total = AssessmentFigures::default();
            lines.values().for_each(|f| total.add(f));
            total
        };
        Ok(Assessment {
            month,
            by,
            lines,
            total: sum(&now),
            previous_total: sum(&before),
        })
    }

    /// The month's figures under their finest keys.
    async fn fine_figures(
        &self,
        month: Month,
        today: Date,
    ) -> Result<BTreeMap<Fine, AssessmentFigures>, StoreError> {
        let own = self.own_record().clone();
        let (mut fine, spans) = self
            .read(move |conn| case_figures(conn, &own, month, today))
            .await?;
        // Working days on each case's own calendar, once per station and pair of days.
        let mut calendars: HashMap<String, Arc<Calendar>> = HashMap::new();
        for (key, accepted, closed, n) in spans {
            let calendar = calendars.entry(key.division.clone()).or_insert_with(|| {
                DivisionCode::parse(&key.division)
                    .map(|d| self.calendar_for(&d))
                    .unwrap_or_else(|_| self.calendar())
            });
            let days = calendar.working_days_between(accepted, closed, &[]);
            let figures = fine.entry(key).or_default();
            figures.timed += n;
            figures.working_days += u64::from(days) * n;
        }
        // Supervision notices issued in the month (China time), as the lists count them.
        let from_ms = cst_midnight_ms(month.first_day());
        let to_ms = cst_midnight_ms(month.next().first_day());
        let notices = self
            .supervision_issued_between(from_ms, to_ms, today)
            .await?;
        let cases: Vec<String> = notices
            .iter()
            .filter_map(|n| n.notice.case.as_ref().map(|c| c.to_string()))
            .collect();
        let attributes = self.read(move |conn| case_attributes(conn, &cases)).await?;
        for view in notices {
            let case = view
                .notice
                .case
                .as_ref()
                .and_then(|c| attributes.get(c.as_str()).cloned());
            let figures = fine
                .entry(Fine {
                    division: view.station.to_string(),
                    case,
                    part: false,
                })
                .or_default();
            figures.supervision += 1;
            figures.supervision_on_time += u64::from(view.state == ReplyState::AnsweredOnTime);
        }
        Ok(fine)
    }
}

/// The line a finest key counts in, or `None` when it counts in none of this grouping
/// (a notice about a whole station, grouped by counter, staff or department).
fn line_key(key: &Fine, by: AssessmentBy) -> Option<(String, String)> {
    if key.part && by != AssessmentBy::Department {
        return None;
    }
    let division = key.division.clone();
    match (by, &key.case) {
        (AssessmentBy::Station, _) => Some((division, String::new())),
        (AssessmentBy::Subdistrict, _) => {
            let above = match DivisionCode::parse(&division) {
                Ok(d) if d.level() == DivisionLevel::Community => division[..9].to_string(),
                _ => division,
            };
            Some((above, String::new()))
        }
        (_, None) => None,
        (AssessmentBy::Counter, Some((counter, _, _))) => Some((division, counter.clone())),
        (AssessmentBy::Staff, Some((_, staff, _))) => Some((division, staff.clone())),
        (AssessmentBy::Department, Some((_, _, holder))) => Some((String::new(), holder.clone())),
    }
}

/// Unix milliseconds of midnight China Standard Time at the start of `day`.
fn cst_midnight_ms(day: Date) -> i64 {
    i64::from(day.days_since_epoch()) * 86_400_000 - 8 * 3_600_000
}

/// A case's station, counter, staff and department.
const KEY_COLUMNS: &str = "scope, counter, staff, coalesce(holder, '')";

fn fine_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<Fine>> {
    let scope: String = r.get(0)?;
    let case = Some((r.get(1)?, r.get(2)?, r.get(3)?));
    Ok(Scope::parse(&scope).map(|s| Fine {
        division: s.division().to_string(),
        case,
        part: false,
    }))
}

const OPEN: &str =
    "status IN ('submitted', 'awaiting_supplement', 'accepted', 'suspended', 'decided')";

/// Working days wanted: a station's key, acceptance and completion days, and how many
/// cases share them.
type Spans = Vec<(Fine, Date, Date, u64)>;

/// Every figure of the month counted from the case rows, and the spans whose working
/// days the caller counts on the calendars.
fn case_figures(
    conn: &Connection,
    own: &NodeRecord,
    month: Month,
    today: Date,
) -> Result<(BTreeMap<Fine, AssessmentFigures>, Spans), StoreError> {
    let (mut fine, spans) = counted_figures(conn, Some(own), month, today)?;
    // 并联审批 (§7.5): a combined application counts once, as its whole. Its parts, counted
    // above among all cases, move to keys of their own that only department lines read;
    // the parts are few, so they are counted again on their own rather than filtered out
    // of every row of the hall's covering indexes.
    let (parts, part_spans) = counted_figures(conn, None, month, today)?;
    for (key, figures) in parts {
        if let Some(whole) = fine.get_mut(&key) {
            whole.subtract(&figures);
        }
        fine.entry(Fine { part: true, ..key })
            .or_default()
            .add(&figures);
    }
    let mut spans = spans;
    for (key, accepted, closed, n) in part_spans {
        if let Some(span) = spans
            .iter_mut()
            .find(|(k, a, c, _)| *k == key && *a == accepted && *c == closed)
        {
            span.3 = span.3.saturating_sub(n);
        }
        spans.push((Fine { part: true, ..key }, accepted, closed, n));
    }
    spans.retain(|span| span.3 > 0);
    Ok((fine, spans))
}

/// The figures of [`case_figures`] over every case (`own`, whose indexes to read), or
/// over the parts of combined cases only (`None`).
fn counted_figures(
    conn: &Connection,
    own: Option<&NodeRecord>,
    month: Month,
    today: Date,
) -> Result<(BTreeMap<Fine, AssessmentFigures>, Spans), StoreError> {
    let (from, to) = (month.first_day().to_string(), month.last_day().to_string());
    let today_s = today.to_string();
    let count = |n: i64| n.max(0) as u64;
    let mut fine: BTreeMap<Fine, AssessmentFigures> = BTreeMap::new();
    // A hall reads covering indexes of its own (`hall::HALL_INDEXES`): a month of a 1 M-case
    // subtree without touching the case rows. A station, with a few thousand cases a month
    // at most, reads its creation index and lets SQLite choose for the rest.
    const PARTS: &str = " JOIN case_parts ON case_parts.id = cases.id";
    let (received_index, completed_index, rated_index) = match own {
        None => (PARTS.to_string(), PARTS.to_string(), PARTS.to_string()),
        Some(own) if own.role.is_hall() => (
            hall_index(own, "cases_assess_received"),
            hall_index(own, "cases_assess_completed"),
            hall_index(own, "cases_assess_rated"),
        ),
        Some(_) => (
            " INDEXED BY cases_created".to_string(),
            String::new(),
            String::new(),
        ),
    };
    // Received: by the creation time.
    {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {KEY_COLUMNS}, count(*) FROM cases{received_index}
             WHERE created_ms >= ?1 AND created_ms < ?2 GROUP BY 1, 2, 3, 4"
        ))?;
        let from_ms = cst_midnight_ms(month.first_day());
        let to_ms = cst_midnight_ms(month.next().first_day());
        let mut rows = stmt.query(params![from_ms, to_ms])?;
        while let Some(row) = rows.next()? {
            if let Some(key) = fine_of(row)? {
                fine.entry(key).or_default().received += count(row.get(4)?);
            }
        }
    }
    // Completed: on time, late, past the legal limit, and the spans to count.
    let mut spans: Spans = Vec::new();
    {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {KEY_COLUMNS}, accepted_on, closed_on, count(*),
                    coalesce(sum(committed_due IS NOT NULL), 0),
                    coalesce(sum(closed_on <= committed_due), 0),
                    coalesce(sum(closed_on > committed_due), 0),
                    coalesce(sum(closed_on > legal_due), 0)
             FROM cases{completed_index}
             WHERE status = 'completed' AND closed_on BETWEEN ?1 AND ?2
             GROUP BY 1, 2, 3, 4, 5, 6"
        ))?;
        let mut rows = stmt.query(params![from, to])?;
        while let Some(row) = rows.next()? {
            let Some(key) = fine_of(row)? else {
                continue;
            };
            let accepted: Option<String> = row.get(4)?;
            let closed: String = row.get(5)?;
            let n = count(row.get(6)?);
            let f = fine.entry(key.clone()).or_default();
            f.completed += n;
            f.with_deadline += count(row.get(7)?);
            f.on_time += count(row.get(8)?);
            f.overdue += count(row.get(9)?);
            f.legal_breach += count(row.get(10)?);
            if let (Some(Ok(accepted)), Ok(closed)) =
                (accepted.map(|a| a.parse::<Date>()), closed.parse::<Date>())
            {
                spans.push((key, accepted, closed, n));
            }
        }
    }
    // Still open today, and fell overdue (or past the legal limit) in the month.
    for (column, index) in [("red_on", "cases_red"), ("breach_on", "cases_breach")] {
        let index = match own {
            None => PARTS.to_string(),
            Some(_) => format!(" INDEXED BY {index}"),
        };
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {KEY_COLUMNS}, count(*) FROM cases{index}
             WHERE {column} BETWEEN ?1 AND ?2 AND {column} <= ?3 AND {OPEN}
             GROUP BY 1, 2, 3, 4"
        ))?;
        let mut rows = stmt.query(params![from, to, today_s])?;
        while let Some(row) = rows.next()? {
            if let Some(key) = fine_of(row)? {
                let f = fine.entry(key).or_default();
                let n = count(row.get(4)?);
                if column == "red_on" {
                    f.overdue += n;
                } else {
                    f.legal_breach += n;
                }
            }
        }
    }
    // Ratings given in the month, and the bad ones' rectifications.
    {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {KEY_COLUMNS}, rating, count(*),
                    coalesce(sum(rectified_on <= rectify_due), 0),
                    coalesce(sum(rectified_on > rectify_due), 0)
             FROM cases{rated_index}
             WHERE rating IS NOT NULL AND rated_on BETWEEN ?1 AND ?2 AND rating BETWEEN 1 AND 5
             GROUP BY 1, 2, 3, 4, 5"
        ))?;
        let mut rows = stmt.query(params![from, to])?;
        while let Some(row) = rows.next()? {
            let Some(key) = fine_of(row)? else {
                continue;
            };
            let rating: i64 = row.get(4)?;
            let f = fine.entry(key).or_default();
            if let Ok(level @ 1..=5) = usize::try_from(rating) {
                f.ratings[level - 1] += count(row.get(5)?);
                if level <= 2 {
                    f.rectified_on_time += count(row.get(6)?);
                    f.rectified_late += count(row.get(7)?);
                }
            }
        }
    }
    Ok((fine, spans))
}

/// The counter, staff and department of each case named, by id.
fn case_attributes(
    conn: &Connection,
    ids: &[String],
) -> Result<HashMap<String, (String, String, String)>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT counter, staff, coalesce(holder, '') FROM cases WHERE id = ?1")?;
    let mut found = HashMap::new();
    for id in ids {
        let mut rows = stmt.query([id])?;
        if let Some(row) = rows.next()? {
            found.insert(id.clone(), (row.get(0)?, row.get(1)?, row.get(2)?));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::AssessmentBy;

    #[test]
    fn groupings_parse_by_name_and_stations_offer_their_own() {
        for by in AssessmentBy::ALL {
            assert_eq!(AssessmentBy::parse(by.as_str()), Some(by));
        }
        assert_eq!(AssessmentBy::parse("Station"), None);
        assert_eq!(
            AssessmentBy::offered(false),
            [AssessmentBy::Counter, AssessmentBy::Staff]
        );
    }
}
