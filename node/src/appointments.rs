//! Appointments (预约, SZDB/Z 176 §9.4): which days and time slots a station offers, how
//! many places each slot has, and the booking codes applicants keep.
//!
//! Pure rules, no I/O: callers pass today's date and the time of day, so the same inputs
//! always give the same slots (and tests can fix them). Days come from the shipped
//! working-day calendar, so a public holiday takes no appointments and a make-up working
//! day on a weekend (调休上班) does. Appointments are local to the station; they are not
//! synced (see `store/appointments`).

use std::fmt;

use yizhan_sync::domain::calendar::{Calendar, Date};

/// A time of day in whole minutes since midnight (China Standard Time), shown as `HH:MM`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Minute(u16);

impl Minute {
    /// `HH:MM` with two digits each, from `00:00` to `24:00` (the end of a day).
    pub fn parse(s: &str) -> Option<Minute> {
        let (h, m) = s.split_once(':')?;
        if h.len() != 2 || m.len() != 2 || !(h.bytes().chain(m.bytes())).all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
        (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(Minute(h * 60 + m))
    }

    pub fn of_day(minutes: u16) -> Minute {
        Minute(minutes.min(24 * 60))
    }

    pub fn minutes(self) -> u16 {
        self.0
    }

    /// The time of day of a Unix time, in China Standard Time.
    pub fn from_unix_ms_cst(unix_ms: i64) -> Minute {
        let cst = unix_ms + 8 * 3_600_000;
        Minute((cst.rem_euclid(86_400_000) / 60_000) as u16)
    }
}

impl fmt::Display for Minute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}:{:02}", self.0 / 60, self.0 % 60)
    }
}

/// When a station takes appointments, checked from the `[appointments]` config section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    pub open: Minute,
    pub close: Minute,
    /// A break without slots (午休), inside opening hours.
    pub lunch: Option<(Minute, Minute)>,
    pub slot_minutes: u16,
    /// Bookings one slot takes: counters taking appointments × bookings per counter.
    pub capacity: u32,
    /// How many working days ahead one may book, today included when it is one.
    pub days_ahead: u32,
    /// Saturday opening hours (周六上午), when the station opens on Saturdays outside
    /// holiday stretches; `None`: closed on Saturdays. A Saturday the calendar makes a
    /// working day (调休上班) has the weekday hours.
    pub saturday: Option<(Minute, Minute)>,
}

/// One bookable slot: the day and the time it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Slot {
    pub day: Date,
    pub start: Minute,
}

impl Schedule {
    /// The start of every slot of a working day, in order: from opening, every
    /// `slot_minutes`, each ending by closing and none overlapping the lunch break.
    pub fn starts(&self) -> Vec<Minute> {
        self.starts_between(self.open, self.close)
    }

    /// The slot starts of `day`: a working day's, an open Saturday's (its own hours), or
    /// none on a day the station is closed.
    pub fn starts_on(&self, calendar: &Calendar, day: Date) -> Vec<Minute> {
        if calendar.is_working_day(day) {
            self.starts()
        } else if let Some((open, close)) = self.saturday.filter(|_| open_saturday(calendar, day)) {
            self.starts_between(open, close)
        } else {
            Vec::new()
        }
    }

    fn starts_between(&self, open: Minute, close: Minute) -> Vec<Minute> {
        let step = self.slot_minutes.max(1);
        let mut out = Vec::new();
        let mut start = open.0;
        while start + step <= close.0 {
            let end = start + step;
            let in_lunch = self
                .lunch
                .is_some_and(|(from, to)| start < to.0 && end > from.0);
            if in_lunch {
                // Resume at the end of the break, on the break's own grid.
                start = self.lunch.map_or(end, |(_, to)| to.0.max(end));
                continue;
            }
            out.push(Minute(start));
            start = end;
        }
        out
    }

    /// The days that take appointments, from `today`: the next `days_ahead` working days
    /// of the calendar, today included when it is a working day, and the open Saturdays
    /// among them.
    pub fn days(&self, calendar: &Calendar, today: Date) -> Vec<Date> {
        let mut days = Vec::new();
        let mut working = 0;
        let mut day = today;
        // A window of working days never spans more than twice its length and a holiday.
        let horizon = self.days_ahead as i32 * 2 + 30;
        while working < self.days_ahead
            && day.days_since_epoch() - today.days_since_epoch() < horizon
        {
            if calendar.is_working_day(day) {
                working += 1;
                days.push(day);
            } else if !self.starts_on(calendar, day).is_empty() {
                days.push(day);
            }
            day = day.succ();
        }
        days
    }

    /// The slots one may book now: on the bookable days, and today only those that have
    /// not started yet.
    pub fn open_slots(&self, calendar: &Calendar, today: Date, now: Minute) -> Vec<Slot> {
        self.days(calendar, today)
            .into_iter()
            .flat_map(|day| {
                self.starts_on(calendar, day)
                    .into_iter()
                    .filter(move |start| day != today || *start > now)
                    .map(move |start| Slot { day, start })
            })
            .collect()
    }

    /// Why `slot` cannot be booked now, if it cannot.
    pub fn refuse(
        &self,
        calendar: &Calendar,
        today: Date,
        now: Minute,
        slot: Slot,
    ) -> Option<Refusal> {
        if slot.day < today || (slot.day == today && slot.start <= now) {
            return Some(Refusal::Past);
        }
        let starts = self.starts_on(calendar, slot.day);
        if starts.is_empty() {
            return Some(Refusal::Closed);
        }
        if !self.days(calendar, today).contains(&slot.day) {
            return Some(Refusal::TooFar);
        }
        if !starts.contains(&slot.start) {
            return Some(Refusal::NoSuchSlot);
        }
        None
    }
}

/// Whether a Saturday that is no working day is an ordinary one, open for Saturday
/// hours, rather than part of a public-holiday stretch (春节, 国庆…): the shipped calendar
/// tells working days only, and a Saturday inside a holiday stretch has a weekday off
/// beside it (the Friday before or the Monday after).
fn open_saturday(calendar: &Calendar, day: Date) -> bool {
    use yizhan_sync::domain::calendar::Weekday;
    day.weekday() == Weekday::Sat
        && !calendar.is_working_day(day)
        && calendar.is_working_day(day.add_days(-1))
        && calendar.is_working_day(day.add_days(2))
}

/// Why a slot cannot be booked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// It has started or is over.
    Past,
    /// A weekend or a public holiday.
    Closed,
    /// Beyond the days one may book ahead.
    TooFar,
    /// Not a slot start of this station's hours.
    NoSuchSlot,
}

impl Refusal {
    /// The i18n key of the message.
    pub fn key(self) -> &'static str {
        match self {
            Refusal::Past => "appointment.error.past",
            Refusal::Closed => "appointment.error.closed",
            Refusal::TooFar => "appointment.error.too_far",
            Refusal::NoSuchSlot => "appointment.error.no_slot",
        }
    }
}

/// Characters of booking codes: digits and capitals without 0/O, 1/I/L, 2/Z, 5/S, 8/B,
/// so a code read out over the phone or from a screenshot is never mistaken.
const CODE_ALPHABET: &[u8] = b"34679ACDEFGHJKMNPQRTUVWXY";
/// 8 characters of 25 give 37 bits: guessing a code to see a booking is hopeless.
pub const CODE_LEN: usize = 8;

/// A fresh random booking code.
pub fn new_code() -> String {
    let mut code = String::with_capacity(CODE_LEN);
    while code.len() < CODE_LEN {
        let mut bytes = [0u8; 16];
        crate::accounts::fill_random(&mut bytes);
        // 250 = 10 × 25: dropping 250..=255 keeps every character equally likely.
        for b in bytes
            .iter()
            .filter(|b| **b < 250)
            .take(CODE_LEN - code.len())
        {
            code.push(CODE_ALPHABET[usize::from(*b) % CODE_ALPHABET.len()] as char);
        }
    }
    code
}

/// A code as typed: trimmed, upper case, only if it could be one of ours.
pub fn normalize_code(typed: &str) -> Option<String> {
    let code = typed.trim().to_ascii_uppercase();
    (code.len() == CODE_LEN && code.bytes().all(|b| CODE_ALPHABET.contains(&b))).then_some(code)
}

/// A phone as the counter list shows it: everything but the last four digits hidden.
pub fn mask_phone(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    let keep = digits.len().min(4);
    let mut out: String = "*".repeat(digits.len() - keep);
    out.extend(&digits[digits.len() - keep..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(open: &str, close: &str, lunch: Option<(&str, &str)>, slot: u16) -> Schedule {
        Schedule {
            open: Minute::parse(open).unwrap(),
            close: Minute::parse(close).unwrap(),
            lunch: lunch.map(|(a, b)| (Minute::parse(a).unwrap(), Minute::parse(b).unwrap())),
            slot_minutes: slot,
            capacity: 2,
            days_ahead: 3,
            saturday: None,
        }
    }

    fn times(s: &Schedule) -> Vec<String> {
        s.starts().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn times_of_day_parse_strictly() {
        for (text, minutes) in [
            ("00:00", Some(0)),
            ("09:30", Some(570)),
            ("24:00", Some(1440)),
            ("24:01", None),
            ("9:30", None),
            ("09:60", None),
            ("0930", None),
            ("+9:30", None),
            ("", None),
        ] {
            assert_eq!(Minute::parse(text).map(Minute::minutes), minutes, "{text}");
        }
        assert_eq!(Minute::parse("08:05").unwrap().to_string(), "08:05");
        // 2026-03-02 01:30 UTC is 09:30 in China.
        let ms = (Date::from_ymd(2026, 3, 2).unwrap().days_since_epoch() as i64 * 86_400 + 90 * 60)
            * 1000;
        assert_eq!(Minute::from_unix_ms_cst(ms).to_string(), "09:30");
    }

    #[test]
    fn slots_follow_opening_hours_slot_size_and_lunch() {
        let table: &[(Schedule, &[&str])] = &[
            (
                schedule("09:00", "11:00", None, 30),
                &["09:00", "09:30", "10:00", "10:30"],
            ),
            (schedule("09:00", "11:00", None, 60), &["09:00", "10:00"]),
            // A slot that would run past closing is not offered.
            (
                schedule("09:00", "10:45", None, 30),
                &["09:00", "09:30", "10:00"],
            ),
            (
                schedule("09:00", "15:00", Some(("12:00", "14:00")), 60),
                &["09:00", "10:00", "11:00", "14:00"],
            ),
            // A slot overlapping the start of lunch is skipped; the afternoon starts at
            // the end of the break.
            (
                schedule("09:00", "15:00", Some(("11:30", "13:30")), 60),
                &["09:00", "10:00", "13:30"],
            ),
            (schedule("09:00", "09:20", None, 30), &[]),
        ];
        for (s, expected) in table {
            assert_eq!(times(s), *expected, "{s:?}");
        }
    }

    #[test]
    fn days_come_from_the_calendar() {
        let calendar = Calendar::china();
        let d = |s: &str| s.parse::<Date>().unwrap();
        let s = schedule("09:00", "10:00", None, 30);
        let table: &[(&str, &[&str])] = &[
            // A Monday: today and the two working days after it.
            ("2026-03-02", &["2026-03-02", "2026-03-03", "2026-03-04"]),
            // A Friday: the weekend is skipped.
            ("2026-03-06", &["2026-03-06", "2026-03-09", "2026-03-10"]),
            // A Saturday: not today.
            ("2026-03-07", &["2026-03-09", "2026-03-10", "2026-03-11"]),
            // National Day holiday 2026 (10-01..10-07 off, 10-10 Saturday a make-up day).
            ("2026-09-30", &["2026-09-30", "2026-10-08", "2026-10-09"]),
            ("2026-10-09", &["2026-10-09", "2026-10-10", "2026-10-12"]),
        ];
        for (today, expected) in table {
            let days: Vec<String> = s
                .days(calendar, d(today))
                .iter()
                .map(ToString::to_string)
                .collect();
            assert_eq!(days, *expected, "from {today}");
        }
    }

    /// Saturday mornings open when the hours say so (周六 9:00-12:00), outside holiday
    /// stretches; a make-up working Saturday has the weekday hours.
    #[test]
    fn saturday_mornings_are_bookable() {
        let calendar = Calendar::china();
        let d = |s: &str| s.parse::<Date>().unwrap();
        let m = |s: &str| Minute::parse(s).unwrap();
        let s = Schedule {
            saturday: Some((m("09:00"), m("12:00"))),
            ..schedule("09:00", "17:00", Some(("12:00", "14:00")), 60)
        };
        let starts = |day: &str| -> Vec<String> {
            s.starts_on(calendar, d(day))
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(
            starts("2026-03-07"),
            ["09:00", "10:00", "11:00"],
            "a Saturday"
        );
        assert!(starts("2026-03-08").is_empty(), "a Sunday");
        assert!(starts("2026-10-03").is_empty(), "National Day");
        assert_eq!(starts("2026-10-10").len(), 6, "a make-up working Saturday");
        let days: Vec<String> = s
            .days(calendar, d("2026-03-06"))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            days,
            ["2026-03-06", "2026-03-07", "2026-03-09", "2026-03-10"]
        );
        assert_eq!(
            s.refuse(
                calendar,
                d("2026-03-06"),
                m("10:00"),
                Slot {
                    day: d("2026-03-07"),
                    start: m("10:00")
                }
            ),
            None
        );
        assert_eq!(
            s.refuse(
                calendar,
                d("2026-03-06"),
                m("10:00"),
                Slot {
                    day: d("2026-03-07"),
                    start: m("14:00")
                }
            ),
            Some(Refusal::NoSuchSlot)
        );
    }

    #[test]
    fn what_may_be_booked_now() {
        let calendar = Calendar::china();
        let d = |s: &str| s.parse::<Date>().unwrap();
        let m = |s: &str| Minute::parse(s).unwrap();
        let s = schedule("09:00", "10:00", None, 30);
        let today = d("2026-03-02");
        let slot = |day: &str, start: &str| Slot {
            day: d(day),
            start: m(start),
        };
        // At 09:10 the 09:00 slot has started: only 09:30 is left today.
        let open = s.open_slots(calendar, today, m("09:10"));
        assert_eq!(open.first(), Some(&slot("2026-03-02", "09:30")));
        assert_eq!(open.len(), 1 + 2 + 2);
        for (day, start, refusal) in [
            ("2026-03-02", "09:30", None),
            ("2026-03-02", "09:00", Some(Refusal::Past)),
            ("2026-02-27", "09:30", Some(Refusal::Past)),
            ("2026-03-07", "09:00", Some(Refusal::Closed)),
            ("2026-03-05", "09:00", Some(Refusal::TooFar)),
            ("2026-03-03", "09:15", Some(Refusal::NoSuchSlot)),
            ("2026-03-03", "10:00", Some(Refusal::NoSuchSlot)),
        ] {
            assert_eq!(
                s.refuse(calendar, today, m("09:10"), slot(day, start)),
                refusal,
                "{day} {start}"
            );
        }
    }

    #[test]
    fn codes_are_unambiguous_and_phones_masked() {
        for _ in 0..100 {
            let code = new_code();
            assert_eq!(code.len(), CODE_LEN);
            assert!(!code.contains(['0', 'O', '1', 'I', 'L', '2', 'Z', '5', 'S', '8', 'B']));
            assert_eq!(
                normalize_code(&format!(" {} ", code.to_lowercase())),
                Some(code)
            );
        }
        assert_eq!(normalize_code("ABC"), None);
        assert_eq!(mask_phone("13800138000"), "*******8000");
        assert_eq!(mask_phone("0755-1234 5678"), "********5678");
        assert_eq!(mask_phone("12"), "12");
    }
}
