//! Working-day calendar and time limits (时限).
//!
//! Time limits are counted in working days (工作日, 行政许可法 §82), starting on the working
//! day after acceptance (the day of acceptance does not count), on a calendar of weekends,
//! public holidays and make-up working days that fall on weekends (调休上班). Suspended time
//! (特别程序, §45) does not count and pushes both deadlines. Supervision (SZDB/Z 176 §10.2)
//! raises a yellow warning before the committed deadline, a red one after it, and a legal
//! breach after the legal deadline; the dates at which each level begins are computed once
//! here, so a store can derive the level from today's date without recomputing anything.
//!
//! The calendar is data, not code: one text file per year under `calendars/`, embedded at
//! build time, each naming its source and whether it is `official` or `provisional`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;

/// China Standard Time is UTC+8 all year (no daylight saving).
const CST_OFFSET_MS: i64 = 8 * 3600 * 1000;
const MS_PER_DAY: i64 = 86_400_000;

/// A civil date in the proleptic Gregorian calendar, stored as days since 1970-01-01.
///
/// Dates are the unit of every time limit; keeping them as a day number makes working-day
/// arithmetic plain integer steps and lets them sort and compare as integers.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(i32);

/// Day of the week; Monday is the first (GB/T 7408).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Date {
    /// The date for a year, month (1-12) and day, or `None` if no such day exists.
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<Date> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(Date(days_from_civil(year, month, day)))
    }

    pub fn from_days(days_since_epoch: i32) -> Date {
        Date(days_since_epoch)
    }

    pub fn days_since_epoch(self) -> i32 {
        self.0
    }

    /// `(year, month, day)` of this date.
    pub fn ymd(self) -> (i32, u32, u32) {
        civil_from_days(self.0)
    }

    pub fn year(self) -> i32 {
        self.ymd().0
    }

    pub fn weekday(self) -> Weekday {
        // 1970-01-01 was a Thursday.
        match (self.0 as i64 + 3).rem_euclid(7) {
            0 => Weekday::Mon,
            1 => Weekday::Tue,
            2 => Weekday::Wed,
            3 => Weekday::Thu,
            4 => Weekday::Fri,
            5 => Weekday::Sat,
            _ => Weekday::Sun,
        }
    }

    pub fn is_weekend(self) -> bool {
        matches!(self.weekday(), Weekday::Sat | Weekday::Sun)
    }

    pub fn add_days(self, n: i32) -> Date {
        Date(self.0 + n)
    }

    pub fn succ(self) -> Date {
        self.add_days(1)
    }

    /// `YYYYMMDD`, the form used inside serial numbers (DOMAIN §3).
    pub fn compact(self) -> String {
        let (y, m, d) = self.ymd();
        format!("{y:04}{m:02}{d:02}")
    }

    /// Parses `YYYYMMDD`.
    pub fn parse_compact(s: &str) -> Option<Date> {
        if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let year = s[0..4].parse().ok()?;
        let month = s[4..6].parse().ok()?;
        let day = s[6..8].parse().ok()?;
        Date::from_ymd(year, month, day)
    }

    /// The local date in China Standard Time (UTC+8, no daylight saving) of a Unix time in
    /// milliseconds. Mainland China has one time zone, so every node derives the same date
    /// from the same instant, which keeps derived deadlines identical on every node.
    pub fn from_unix_ms_cst(unix_ms: i64) -> Date {
        Date((unix_ms + CST_OFFSET_MS).div_euclid(MS_PER_DAY) as i32)
    }

    /// The first millisecond of this date in China Standard Time: the dates
    /// [`from_unix_ms_cst`](Self::from_unix_ms_cst) gives `self` are exactly
    /// `start_unix_ms_cst() .. succ().start_unix_ms_cst()`. A case's intake date is derived
    /// that way from its intake time, so a range of intake dates is a range of times, which
    /// the case list reads from its time index.
    pub fn start_unix_ms_cst(self) -> i64 {
        i64::from(self.0) * MS_PER_DAY - CST_OFFSET_MS
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

impl fmt::Debug for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The input was not a valid `YYYY-MM-DD` date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid date (expected YYYY-MM-DD): {0:?}")]
pub struct ParseDateError(pub String);

impl FromStr for Date {
    type Err = ParseDateError;

    fn from_str(s: &str) -> Result<Date, ParseDateError> {
        let err = || ParseDateError(s.to_string());
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(err());
        }
        let digits = |r: std::ops::Range<usize>| -> Result<u32, ParseDateError> {
            let part = &s[r];
            if !part.bytes().all(|c| c.is_ascii_digit()) {
                return Err(err());
            }
            part.parse().map_err(|_| err())
        };
        let (y, m, d) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
        Date::from_ymd(y as i32, m, d).ok_or_else(err)
    }
}

impl serde::Serialize for Date {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Date {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

// Howard Hinnant's `days_from_civil` / `civil_from_days`, exact for the proleptic
// Gregorian calendar.
fn days_from_civil(year: i32, month: u32, day: u32) -> i32 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy as i32;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i32) -> (i32, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i32::from(month <= 2);
    (year, month, day)
}

/// Whether a year's figures come from the official notice or only from the statutory rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum YearStatus {
    Official,
    Provisional,
}

/// What the calendar knows about one year.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CalendarYear {
    pub year: i32,
    pub version: String,
    pub status: YearStatus,
    pub source: String,
}

/// A working-day calendar: weekends are days off unless listed as `work`, weekdays are
/// working days unless listed as `off`.
///
/// Years the calendar does not cover fall back to plain weekends; [`Calendar::covers`]
/// says whether a date was covered, so callers can flag deadlines computed beyond it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Calendar {
    name: String,
    years: BTreeMap<i32, CalendarYear>,
    off: BTreeSet<Date>,
    work: BTreeSet<Date>,
    version: String,
}

/// A calendar file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("calendar line {line}: {message}")]
pub struct CalendarError {
    pub line: usize,
    pub message: String,
}

/// The calendar files shipped in the binary, oldest year first.
const SHIPPED: &[&str] = &[
    include_str!("calendars/cn-2026.txt"),
    include_str!("calendars/cn-2027.txt"),
];

impl Calendar {
    /// The mainland China calendar shipped with this build.
    pub fn china() -> &'static Calendar {
        static CHINA: OnceLock<Calendar> = OnceLock::new();
        CHINA.get_or_init(|| {
            Calendar::from_files(SHIPPED).expect("shipped calendar files are valid")
        })
    }

    /// The shipped calendar with years published by the halls (calendar documents, one
    /// year file each) in place of the shipped figures for those years: a new year's
    /// State Council notice reaches every node without a new binary. When two texts give
    /// the same year, the caller has already chosen one (the highest hall's, then the
    /// highest version).
    pub fn china_with(published: &[&str]) -> Result<Calendar, CalendarError> {
        let mut replaced = std::collections::BTreeSet::new();
        for text in published {
            let year = Calendar::from_files(&[text])?
                .years()
                .map(|y| y.year)
                .next()
                .ok_or(CalendarError {
                    line: 0,
                    message: "a published calendar holds no year".into(),
                })?;
            if !replaced.insert(year) {
                return Err(CalendarError {
                    line: 0,
                    message: format!("year {year} is published twice"),
                });
            }
        }
        let mut files: Vec<&str> = SHIPPED
            .iter()
            .copied()
            .filter(|text| {
                Calendar::from_files(&[text])
                    .map(|c| c.years().all(|y| !replaced.contains(&y.year)))
                    .unwrap_or(false)
            })
            .collect();
        files.extend_from_slice(published);
        files.sort_by_key(|text| {
            Calendar::from_files(&[text])
                .ok()
                .and_then(|c| c.years().map(|y| y.year).next())
        });
        Calendar::from_files(&files)
    }

    /// Builds a calendar from year files (format described in `calendars/cn-2026.txt`).
    pub fn from_files(files: &[&str]) -> Result<Calendar, CalendarError> {
        let mut calendar = Calendar {
            name: String::new(),
            years: BTreeMap::new(),
            off: BTreeSet::new(),
            work: BTreeSet::new(),
            version: String::new(),
        };
        for text in files {
            calendar.add_file(text)?;
        }
        calendar.version = format!(
            "{}:{}",
            calendar.name,
            calendar
                .years
                .values()
                .map(|y| match y.status {
                    YearStatus::Official => y.version.clone(),
                    YearStatus::Provisional => format!("{}p", y.version),
                })
                .collect::<Vec<_>>()
                .join("+")
        );
        Ok(calendar)
    }

    fn add_file(&mut self, text: &str) -> Result<(), CalendarError> {
        let mut year: Option<i32> = None;
        let mut version = None;
        let mut status = None;
        let mut source = None;
        for (idx, raw) in text.lines().enumerate() {
            let line_no = idx + 1;
            let err = |message: String| CalendarError {
                line: line_no,
                message,
            };
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (keyword, rest) = line.split_once(' ').unwrap_or((line, ""));
            let rest = rest.trim();
            match keyword {
                "calendar" => {
                    if !self.name.is_empty() && self.name != rest {
                        return Err(err(format!(
                            "calendar {rest:?} cannot be merged into {:?}",
                            self.name
                        )));
                    }
                    self.name = rest.to_string();
                }
                "year" => {
                    let y: i32 = rest
                        .parse()
                        .map_err(|_| err(format!("bad year {rest:?}")))?;
                    if self.years.contains_key(&y) {
                        return Err(err(format!("year {y} is given twice")));
                    }
                    year = Some(y);
                }
                "version" => version = Some(rest.to_string()),
                "status" => {
                    status = Some(match rest {
                        "official" => YearStatus::Official,
                        "provisional" => YearStatus::Provisional,
                        other => {
                            return Err(err(format!(
                                "status must be official or provisional, not {other:?}"
                            )));
                        }
                    })
                }
                "source" => source = Some(rest.to_string()),
                "off" | "work" => {
                    let y = year.ok_or_else(|| err("`year` must come before dates".into()))?;
                    let mut parts = rest.split_whitespace();
                    let first = parse_date_in(parts.next(), y).map_err(err)?;
                    let second = parts.next();
                    let last = match second {
                        Some(s) if s.parse::<Date>().is_ok() => {
                            parse_date_in(Some(s), y).map_err(err)?
                        }
                        _ => first,
                    };
                    if last < first {
                        return Err(err(format!("range {first}..{last} runs backwards")));
                    }
                    let mut d = first;
                    while d <= last {
                        let (target, other) = if keyword == "off" {
                            (&mut self.off, &self.work)
                        } else {
                            (&mut self.work, &self.off)
                        };
                        if other.contains(&d) {
                            return Err(err(format!("{d} is listed both as off and as work")));
                        }
                        if keyword == "work" && !d.is_weekend() {
                            return Err(err(format!(
                                "{d} is a weekday; only weekend days can be make-up working days"
                            )));
                        }
                        target.insert(d);
                        d = d.succ();
                    }
                }
                other => return Err(err(format!("unknown keyword {other:?}"))),
            }
        }
        let line = text.lines().count();
        let missing = |what: &str| CalendarError {
            line,
            message: format!("file lacks a `{what}` line"),
        };
        let year = year.ok_or_else(|| missing("year"))?;
        self.years.insert(
            year,
            CalendarYear {
                year,
                version: version.ok_or_else(|| missing("version"))?,
                status: status.ok_or_else(|| missing("status"))?,
                source: source.ok_or_else(|| missing("source"))?,
            },
        );
        Ok(())
    }

    /// A short identifier of exactly which figures this calendar holds, recorded with
    /// every deadline so a later reader knows which table produced it (DOMAIN §11).
    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn years(&self) -> impl Iterator<Item = &CalendarYear> {
        self.years.values()
    }

    /// Whether the calendar has official figures for the year of `date`. A provisional
    /// year (statutory holidays only, make-up days not yet announced) is not covered:
    /// deadlines in it may still move.
    pub fn covers(&self, date: Date) -> bool {
        self.years
            .get(&date.year())
            .is_some_and(|y| y.status == YearStatus::Official)
    }

    pub fn is_working_day(&self, date: Date) -> bool {
        if self.work.contains(&date) {
            true
        } else if self.off.contains(&date) {
            false
        } else {
            !date.is_weekend()
        }
    }

    /// The working days strictly after `start`, in order, skipping the days in `excluded`.
    pub fn working_days_after<'a>(
        &'a self,
        start: Date,
        excluded: &'a [DateSpan],
    ) -> impl Iterator<Item = Date> + 'a {
        let mut day = start;
        std::iter::from_fn(move || {
            loop {
                day = day.succ();
                if self.is_working_day(day) && !excluded.iter().any(|s| s.contains(day)) {
                    return Some(day);
                }
            }
        })
    }

    /// The date `n` counted working days after `start` (`start` itself when `n` is 0).
    pub fn add_working_days(&self, start: Date, n: u32, excluded: &[DateSpan]) -> Date {
        if n == 0 {
            return start;
        }
        self.working_days_after(start, excluded)
            .nth(n as usize - 1)
            .expect("working days never run out")
    }

    /// The number of counted working days in `(start, end]`.
    pub fn working_days_between(&self, start: Date, end: Date, excluded: &[DateSpan]) -> u32 {
        if end <= start {
            return 0;
        }
        self.working_days_after(start, excluded)
            .take_while(|d| *d <= end)
            .count() as u32
    }
}

fn parse_date_in(part: Option<&str>, year: i32) -> Result<Date, String> {
    let part = part.ok_or("a date is missing")?;
    let date: Date = part.parse().map_err(|e: ParseDateError| e.to_string())?;
    if date.year() != year {
        return Err(format!("{date} is outside the file's year {year}"));
    }
    Ok(date)
}

/// A run of days on which the clock was stopped: from `start` (inclusive) to `end`
/// (exclusive). A case suspended and resumed on the same day loses no time; one suspended on
/// Wednesday and resumed on Friday does not count Wednesday or Thursday.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateSpan {
    pub start: Date,
    pub end: Date,
}

impl DateSpan {
    pub fn contains(&self, date: Date) -> bool {
        self.start <= date && date < self.end
    }
}

/// When the yellow warning starts (电子监察 预警), configurable per item (DOMAIN §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "rule", content = "value", rename_all = "snake_case")]
pub enum YellowThreshold {
    /// Yellow from this many working days before the committed deadline.
    WorkingDaysBefore(u32),
    /// Yellow once this percentage of the committed limit has been used.
    PercentUsed(u32),
}

impl Default for YellowThreshold {
    fn default() -> Self {
        YellowThreshold::WorkingDaysBefore(1)
    }
}

/// The limits a case was accepted under, frozen from its item (DOMAIN §11).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// 承诺办结时限, working days; 0 for 即办件.
    pub committed_days: u32,
    /// 法定办结时限, working days.
    pub legal_days: u32,
    pub yellow: YellowThreshold,
}

/// Both deadlines of a case and the first day of each warning level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deadlines {
    pub committed_due: Date,
    pub legal_due: Date,
    /// First day of the yellow warning.
    pub yellow_on: Date,
    /// First day of the red warning: the day after the committed deadline.
    pub red_on: Date,
    /// First day of the legal breach: the day after the legal deadline.
    pub breach_on: Date,
    /// False when a deadline lies in a year the calendar has no figures for, so it was
    /// computed on weekends alone and may move when that year's figures arrive.
    pub calendar_covered: bool,
}

/// Warning level of an open case on a given day (§10.2 电子监察).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WarningLevel {
    Normal,
    Yellow,
    Red,
    LegalBreach,
}

impl WarningLevel {
    pub const ALL: [WarningLevel; 4] = [
        WarningLevel::Normal,
        WarningLevel::Yellow,
        WarningLevel::Red,
        WarningLevel::LegalBreach,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WarningLevel::Normal => "normal",
            WarningLevel::Yellow => "yellow",
            WarningLevel::Red => "red",
            WarningLevel::LegalBreach => "legal_breach",
        }
    }

    pub fn parse(s: &str) -> Option<WarningLevel> {
        WarningLevel::ALL.into_iter().find(|l| l.as_str() == s)
    }
}

impl Deadlines {
    /// Computes the deadlines of a case accepted on `accepted_on`.
    ///
    /// `excluded` are the closed suspensions; `extension_days` are working days added to
    /// both limits by approved extensions (延期, 行政许可法 §42).
    pub fn compute(
        calendar: &Calendar,
        accepted_on: Date,
        limits: Limits,
        excluded: &[DateSpan],
        extension_days: u32,
    ) -> Deadlines {
        let committed_days = limits.committed_days + extension_days;
        let legal_days = limits.legal_days.max(limits.committed_days) + extension_days;
        let (committed_due, yellow_on) = due_and_yellow(
            calendar,
            accepted_on,
            committed_days,
            limits.yellow,
            excluded,
        );
        let legal_due = calendar.add_working_days(accepted_on, legal_days, excluded);
        Deadlines {
            committed_due,
            legal_due,
            yellow_on,
            red_on: committed_due.succ(),
            breach_on: legal_due.succ(),
            calendar_covered: calendar.covers(committed_due) && calendar.covers(legal_due),
        }
    }

    /// The warning level on `today`.
    pub fn level_on(&self, today: Date) -> WarningLevel {
        level_on(today, self.yellow_on, self.red_on, Some(self.breach_on))
    }
}

/// The limit of one process step (环节时限, SZDB/Z 176 §9.2.2 办理流程; DOMAIN §6): its
/// deadline and warning days, counted like a case's committed limit (the same yellow
/// threshold, red from the day after), from the day the step started. A step has no legal
/// limit of its own, so it never reaches [`WarningLevel::LegalBreach`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepDeadline {
    pub due: Date,
    pub yellow_on: Date,
    pub red_on: Date,
    /// False when the deadline lies in a year the calendar has no figures for.
    pub calendar_covered: bool,
}

impl StepDeadline {
    /// The deadline of a step of `days` working days that started on `started_on`, with
    /// the item's yellow threshold; `excluded` are the case's suspensions, which stop a
    /// step's clock as they stop the case's.
    pub fn compute(
        calendar: &Calendar,
        started_on: Date,
        days: u32,
        yellow: YellowThreshold,
        excluded: &[DateSpan],
    ) -> StepDeadline {
        let (due, yellow_on) = due_and_yellow(calendar, started_on, days, yellow, excluded);
        StepDeadline {
            due,
            yellow_on,
            red_on: due.succ(),
            calendar_covered: calendar.covers(due),
        }
    }

    /// The warning level on `today`, by the rule of a case's own ([`Deadlines::level_on`]).
    pub fn level_on(&self, today: Date) -> WarningLevel {
        level_on(today, self.yellow_on, self.red_on, None)
    }
}

/// The one rule for a limit's deadline and the first day of its yellow warning: `days`
/// working days counted after `start`, yellow by the item's threshold (DOMAIN §7). Both a
/// case's committed limit and a step's limit count by it.
fn due_and_yellow(
    calendar: &Calendar,
    start: Date,
    days: u32,
    yellow: YellowThreshold,
    excluded: &[DateSpan],
) -> (Date, Date) {
    let due = calendar.add_working_days(start, days, excluded);
    let yellow_after = match yellow {
        YellowThreshold::WorkingDaysBefore(n) => days.saturating_sub(n),
        YellowThreshold::PercentUsed(p) => {
            // The day on which at least p% of the limit is used; at least one day in.
            let used = (u64::from(days) * u64::from(p.min(100))).div_ceil(100);
            (used as u32).max(1).min(days)
        }
    };
    let yellow_on = if yellow_after == 0 {
        start
    } else {
        calendar.add_working_days(start, yellow_after, excluded)
    };
    (due, yellow_on)
}

/// The one rule for a warning level on `today` from the first day of each level (§10.2
/// 预警): a case's and a step's warnings are decided here alike.
fn level_on(today: Date, yellow_on: Date, red_on: Date, breach_on: Option<Date>) -> WarningLevel {
    if breach_on.is_some_and(|breach_on| today >= breach_on) {
        WarningLevel::LegalBreach
    } else if today >= red_on {
        WarningLevel::Red
    } else if today >= yellow_on {
        WarningLevel::Yellow
    } else {
        WarningLevel::Normal
    }
}

#[cfg(test)]
mod tests {

    /// A year published by a hall replaces the shipped figures for that year only, and
    /// the version says so.
    #[test]
    fn a_published_year_replaces_the_shipped_one() {
        let official_2027 = "calendar cn-mainland\nyear 2027\nversion 2027.1\nstatus official\nsource 国务院办公厅关于2027年部分节假日安排的通知\noff 2027-01-01 元旦\nwork 2027-02-20 春节调休上班\noff 2027-02-05 2027-02-11 春节\n";
        let calendar = Calendar::china_with(&[official_2027]).unwrap();
        let day = |s: &str| s.parse::<Date>().unwrap();
        assert!(calendar.covers(day("2027-03-01")), "2027 is official now");
        assert!(!Calendar::china().covers(day("2027-03-01")));
        assert!(
            calendar.is_working_day(day("2027-02-20")),
            "a make-up Saturday"
        );
        assert!(!calendar.is_working_day(day("2027-02-11")));
        // 2026 is untouched.
        for d in ["2026-10-01", "2026-10-09", "2026-03-02"] {
            assert_eq!(
                calendar.is_working_day(day(d)),
                Calendar::china().is_working_day(day(d)),
                "{d}"
            );
        }
        assert!(calendar.version().contains("2027.1") && !calendar.version().contains("2027.0p"));
        assert!(Calendar::china_with(&[official_2027, official_2027]).is_err());
        assert_eq!(Calendar::china_with(&[]).unwrap(), *Calendar::china());
    }

    use super::*;

    fn d(s: &str) -> Date {
        s.parse().unwrap()
    }

    #[test]
    fn civil_round_trip_and_weekdays() {
        for days in -800_000..800_000 {
            let date = Date::from_days(days);
            let (y, m, dd) = date.ymd();
            assert_eq!(Date::from_ymd(y, m, dd), Some(date));
        }
        assert_eq!(d("2026-11-28").weekday(), Weekday::Sat);
        assert_eq!(d("2026-02-14").weekday(), Weekday::Sat);
        assert_eq!(d("2000-02-29").weekday(), Weekday::Tue);
        assert_eq!(Date::from_ymd(2026, 2, 29), None);
        assert_eq!(
            Date::from_ymd(2028, 2, 29).map(|x| x.to_string()),
            Some("2028-02-29".into())
        );
    }

    #[test]
    fn date_parsing_rejects_malformed_input() {
        for bad in [
            "2026-1-01",
            "2026-13-01",
            "2026-02-30",
            "20260101",
            "2026-01-0x",
            "",
            "２０２６-01-01",
        ] {
            assert!(bad.parse::<Date>().is_err(), "{bad}");
        }
        assert_eq!(Date::parse_compact("20260305"), Some(d("2026-03-05")));
        assert_eq!(Date::parse_compact("20260230"), None);
    }

    #[test]
    fn cst_date_of_instant() {
        // 2026-03-05T15:59:59Z is 23:59:59 in Beijing; one second later is the next day.
        let ms = 1_772_726_399_000; // 2026-03-05T15:59:59Z
        assert_eq!(Date::from_unix_ms_cst(ms), d("2026-03-05"));
        assert_eq!(Date::from_unix_ms_cst(ms + 1000), d("2026-03-06"));
    }

    #[test]
    fn a_cst_date_starts_at_its_first_millisecond() {
        // (date, its first millisecond as UTC): midnight in Beijing is 16:00 the day before.
        for (day, start) in [
            ("2026-03-06", 1_772_726_400_000), // 2026-03-05T16:00:00Z
            ("1970-01-01", -28_800_000),
            ("2024-02-29", 1_709_136_000_000), // 2024-02-28T16:00:00Z
        ] {
            let date = d(day);
            assert_eq!(date.start_unix_ms_cst(), start, "{day}");
            assert_eq!(Date::from_unix_ms_cst(start), date, "{day}");
            assert_eq!(
                Date::from_unix_ms_cst(start - 1),
                date.add_days(-1),
                "{day}"
            );
            let next = date.succ().start_unix_ms_cst();
            assert_eq!(Date::from_unix_ms_cst(next - 1), date, "{day}");
        }
    }

    #[test]
    fn shipped_calendar_days() {
        let cal = Calendar::china();
        let table = [
            ("2026-01-01", false, "元旦"),
            ("2026-01-02", false, "元旦 (Friday off)"),
            ("2026-01-04", true, "Sunday make-up day"),
            ("2026-02-13", true, "ordinary Friday"),
            ("2026-02-14", true, "Saturday make-up day before 春节"),
            ("2026-02-16", false, "春节"),
            ("2026-02-23", false, "春节, Monday"),
            ("2026-02-24", true, "first day back"),
            ("2026-02-28", true, "Saturday make-up day after 春节"),
            ("2026-03-01", false, "ordinary Sunday"),
            ("2026-05-05", false, "劳动节, Tuesday"),
            ("2026-05-09", true, "Saturday make-up day"),
            ("2026-09-20", true, "Sunday make-up day"),
            ("2026-10-07", false, "国庆节"),
            ("2026-10-10", true, "Saturday make-up day"),
            ("2027-02-09", false, "provisional 2027 春节 in lieu"),
            ("2027-02-11", true, "ordinary Thursday"),
            ("2028-01-03", true, "uncovered year: weekday"),
            ("2028-01-01", false, "uncovered year: Saturday"),
        ];
        for (date, working, why) in table {
            assert_eq!(cal.is_working_day(d(date)), working, "{date}: {why}");
        }
        assert!(cal.covers(d("2026-12-31")));
        assert!(!cal.covers(d("2027-01-01")), "2027 is provisional");
        assert!(!cal.covers(d("2028-01-01")));
        assert_eq!(cal.version(), "cn-mainland:2026.1+2027.0p");
        let statuses: Vec<_> = cal.years().map(|y| (y.year, y.status)).collect();
        assert_eq!(
            statuses,
            vec![
                (2026, YearStatus::Official),
                (2027, YearStatus::Provisional)
            ]
        );
    }

    #[test]
    fn calendar_file_errors_name_the_line() {
        let cases = [
            (
                "calendar x\nyear 2026\nversion 1\nstatus official\nsource s\noff 2026-02-30 bad",
                6,
                "not a valid date",
            ),
            (
                "calendar x\nyear 2026\nversion 1\nstatus official\nsource s\nwork 2026-02-16 x",
                6,
                "weekday",
            ),
            (
                "calendar x\nyear 2026\nversion 1\nstatus maybe\nsource s",
                4,
                "official or provisional",
            ),
            ("calendar x\noff 2026-01-01 x", 2, "`year` must come before"),
            (
                "calendar x\nyear 2026\nversion 1\nstatus official\nsource s\noff 2027-01-01 x",
                6,
                "outside the file's year",
            ),
            (
                "calendar x\nyear 2026\nversion 1\nstatus official",
                4,
                "lacks a `source`",
            ),
            (
                "calendar x\nyear 2026\nversion 1\nstatus official\nsource s\nholiday 2026-01-01",
                6,
                "unknown keyword",
            ),
        ];
        for (text, line, needle) in cases {
            let err = Calendar::from_files(&[text]).unwrap_err();
            assert_eq!(err.line, line, "{text}");
            assert!(
                err.message.contains(needle),
                "{err} should mention {needle}"
            );
        }
    }

    fn limits(committed: u32, legal: u32) -> Limits {
        Limits {
            committed_days: committed,
            legal_days: legal,
            yellow: YellowThreshold::WorkingDaysBefore(1),
        }
    }

    #[test]
    fn deadlines_table() {
        let cal = Calendar::china();
        // (accepted, committed, legal, suspensions, extension, committed due, legal due, why)
        type Row = (
            &'static str,
            u32,
            u32,
            &'static [(&'static str, &'static str)],
            u32,
            &'static str,
            &'static str,
            &'static str,
        );
        let table: &[Row] = &[
            (
                "2026-03-02",
                5,
                10,
                &[],
                0,
                "2026-03-09",
                "2026-03-16",
                "plain weeks, counted from the next day",
            ),
            (
                "2026-03-06",
                1,
                1,
                &[],
                0,
                "2026-03-09",
                "2026-03-09",
                "accepted Friday: day 1 is Monday",
            ),
            (
                "2026-03-07",
                1,
                1,
                &[],
                0,
                "2026-03-09",
                "2026-03-09",
                "accepted on a Saturday",
            ),
            (
                "2026-02-12",
                5,
                20,
                &[],
                0,
                "2026-02-26",
                "2026-03-18",
                "spans 春节: 13, 14 (make-up Saturday), then 24, 25, 26",
            ),
            (
                "2026-02-26",
                2,
                3,
                &[],
                0,
                "2026-02-28",
                "2026-03-02",
                "make-up Saturday is day 2",
            ),
            (
                "2026-04-30",
                3,
                3,
                &[],
                0,
                "2026-05-08",
                "2026-05-08",
                "劳动节 5 days off",
            ),
            (
                "2026-09-18",
                3,
                5,
                &[],
                0,
                "2026-09-22",
                "2026-09-24",
                "Sunday 9-20 is a working day",
            ),
            (
                "2026-03-02",
                0,
                0,
                &[],
                0,
                "2026-03-02",
                "2026-03-02",
                "即办件: due the same day",
            ),
            (
                "2026-03-02",
                0,
                3,
                &[],
                0,
                "2026-03-02",
                "2026-03-05",
                "即办 with a legal limit",
            ),
            (
                "2026-03-02",
                5,
                10,
                &[("2026-03-04", "2026-03-06")],
                0,
                "2026-03-11",
                "2026-03-18",
                "suspended Wed-Thu pushes both deadlines by two working days",
            ),
            (
                "2026-03-02",
                5,
                10,
                &[("2026-03-04", "2026-03-04")],
                0,
                "2026-03-09",
                "2026-03-16",
                "suspended and resumed the same day loses nothing",
            ),
            (
                "2026-03-02",
                5,
                10,
                &[("2026-03-06", "2026-03-09")],
                0,
                "2026-03-10",
                "2026-03-17",
                "suspension over a weekend costs only the Friday",
            ),
            (
                "2026-03-02",
                5,
                10,
                &[],
                3,
                "2026-03-12",
                "2026-03-19",
                "extension pushes both",
            ),
            (
                "2026-12-28",
                5,
                5,
                &[],
                0,
                "2027-01-05",
                "2027-01-05",
                "into the next year's calendar",
            ),
        ];
        for (accepted, committed, legal, spans, ext, committed_due, legal_due, why) in table {
            let spans: Vec<DateSpan> = spans
                .iter()
                .map(|(s, e)| DateSpan {
                    start: d(s),
                    end: d(e),
                })
                .collect();
            let dl = Deadlines::compute(cal, d(accepted), limits(*committed, *legal), &spans, *ext);
            assert_eq!(dl.committed_due, d(committed_due), "committed: {why}");
            assert_eq!(dl.legal_due, d(legal_due), "legal: {why}");
            assert_eq!(dl.red_on, dl.committed_due.succ());
            assert_eq!(dl.breach_on, dl.legal_due.succ());
        }
    }

    /// A step's limit (环节时限) counts like a case's committed limit: working days after
    /// its start, over weekends, holidays and make-up days, skipping suspensions, yellow
    /// by the item's threshold, red the day after; never a legal breach.
    #[test]
    fn step_deadlines_over_weekends_holidays_and_suspensions() {
        let cal = Calendar::china();
        let before = YellowThreshold::WorkingDaysBefore(1);
        #[allow(clippy::type_complexity)]
        let table: &[(
            &str,
            u32,
            YellowThreshold,
            &[(&str, &str)],
            &str,
            &str,
            &str,
        )] = &[
            (
                "2026-03-02",
                2,
                before,
                &[],
                "2026-03-04",
                "2026-03-03",
                "Monday, two days",
            ),
            (
                "2026-03-06",
                2,
                before,
                &[],
                "2026-03-10",
                "2026-03-09",
                "Friday: over the weekend",
            ),
            (
                "2026-04-30",
                2,
                before,
                &[],
                "2026-05-07",
                "2026-05-06",
                "over 劳动节 1-5 May",
            ),
            (
                "2026-10-09",
                2,
                before,
                &[],
                "2026-10-12",
                "2026-10-10",
                "the make-up Saturday counts",
            ),
            (
                "2026-03-02",
                2,
                before,
                &[("2026-03-03", "2026-03-05")],
                "2026-03-06",
                "2026-03-05",
                "a suspension Tuesday-Wednesday pushes it two working days",
            ),
            (
                "2026-03-02",
                10,
                YellowThreshold::PercentUsed(80),
                &[],
                "2026-03-16",
                "2026-03-12",
                "yellow once 80% is used",
            ),
            (
                "2026-03-02",
                0,
                before,
                &[],
                "2026-03-02",
                "2026-03-02",
                "a step of no day",
            ),
        ];
        for (start, days, yellow, spans, due, yellow_on, why) in table {
            let spans: Vec<DateSpan> = spans
                .iter()
                .map(|(s, e)| DateSpan {
                    start: d(s),
                    end: d(e),
                })
                .collect();
            let step = StepDeadline::compute(cal, d(start), *days, *yellow, &spans);
            assert_eq!(step.due, d(due), "due: {why}");
            assert_eq!(step.yellow_on, d(yellow_on), "yellow: {why}");
            assert_eq!(step.red_on, step.due.succ(), "{why}");
            if step.yellow_on > d(start) {
                assert_eq!(step.level_on(d(start)), WarningLevel::Normal, "{why}");
            }
            assert_eq!(step.level_on(step.yellow_on), WarningLevel::Yellow, "{why}");
            assert_eq!(step.level_on(step.due.succ()), WarningLevel::Red, "{why}");
            assert_eq!(
                step.level_on(step.due.add_days(400)),
                WarningLevel::Red,
                "no legal breach: {why}"
            );
            // The same rule as a case's committed limit of the same days.
            let case = Deadlines::compute(
                cal,
                d(start),
                Limits {
                    committed_days: *days,
                    legal_days: *days + 20,
                    yellow: *yellow,
                },
                &spans,
                0,
            );
            assert_eq!(
                (case.committed_due, case.yellow_on),
                (step.due, step.yellow_on),
                "{why}"
            );
        }
    }

    #[test]
    fn warning_levels_on_each_day() {
        let cal = Calendar::china();
        // Committed 5 (due Mon 03-09), legal 10 (due Mon 03-16), yellow 1 working day before.
        let dl = Deadlines::compute(cal, d("2026-03-02"), limits(5, 10), &[], 0);
        assert_eq!(dl.yellow_on, d("2026-03-06"));
        let table = [
            ("2026-03-02", WarningLevel::Normal),
            ("2026-03-05", WarningLevel::Normal),
            ("2026-03-06", WarningLevel::Yellow),
            ("2026-03-08", WarningLevel::Yellow),
            ("2026-03-09", WarningLevel::Yellow),
            ("2026-03-10", WarningLevel::Red),
            ("2026-03-16", WarningLevel::Red),
            ("2026-03-17", WarningLevel::LegalBreach),
            ("2027-01-01", WarningLevel::LegalBreach),
        ];
        for (today, level) in table {
            assert_eq!(dl.level_on(d(today)), level, "{today}");
        }
    }

    #[test]
    fn yellow_thresholds() {
        let cal = Calendar::china();
        let at = |yellow| {
            let l = Limits {
                committed_days: 20,
                legal_days: 30,
                yellow,
            };
            Deadlines::compute(cal, d("2026-03-02"), l, &[], 0).yellow_on
        };
        // 20 working days from Mon 03-02: day 18 is Thu 03-26, day 20 is Mon 03-30.
        assert_eq!(at(YellowThreshold::PercentUsed(90)), d("2026-03-26"));
        assert_eq!(at(YellowThreshold::WorkingDaysBefore(2)), d("2026-03-26"));
        assert_eq!(at(YellowThreshold::WorkingDaysBefore(0)), d("2026-03-30"));
        assert_eq!(at(YellowThreshold::WorkingDaysBefore(40)), d("2026-03-02"));
        assert_eq!(at(YellowThreshold::PercentUsed(0)), d("2026-03-03"));
        // 即办: yellow from the day of acceptance, red the next day.
        let instant = Deadlines::compute(cal, d("2026-03-02"), limits(0, 0), &[], 0);
        assert_eq!(instant.level_on(d("2026-03-02")), WarningLevel::Yellow);
        assert_eq!(instant.level_on(d("2026-03-03")), WarningLevel::LegalBreach);
    }

    #[test]
    fn working_days_between_counts_the_same_days_as_adding() {
        let cal = Calendar::china();
        let start = d("2026-01-20");
        for n in 0..120 {
            let end = cal.add_working_days(start, n, &[]);
            assert_eq!(cal.working_days_between(start, end, &[]), n);
        }
    }

    #[test]
    fn uncovered_years_are_flagged() {
        let cal = Calendar::china();
        let dl = Deadlines::compute(cal, d("2027-12-20"), limits(10, 20), &[], 0);
        assert!(!dl.calendar_covered);
        let dl = Deadlines::compute(cal, d("2026-12-01"), limits(10, 20), &[], 0);
        assert!(dl.calendar_covered);
    }
}
