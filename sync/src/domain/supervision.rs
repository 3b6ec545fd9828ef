//! Supervision (督办, SZDB/Z 176 §10.2): a hall tells a station below it, about one case or
//! about the station, what is wrong and what to do, with a reply deadline in working
//! days; the station replies with what was done. Both are written once and never changed
//! (a later notice or reply is a new record), and both travel with the station's cases,
//! so the station, its hall and every hall above see them.

use super::calendar::{Calendar, Date};
use super::codes::DivisionCode;
use super::hlc::Hlc;
use crate::ids::{DocId, NodeId};

/// A supervision notice.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SupervisionNotice {
    /// When and where it was issued: together they name it.
    pub at: Hlc,
    pub node: NodeId,
    pub staff: String,
    /// The case it is about, if it is about one case rather than the station's work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case: Option<DocId>,
    /// Why the hall supervises (e.g. the case is past its committed deadline).
    pub reason: String,
    /// What the station is to do.
    pub todo: String,
    /// Working days the station has to reply, counted from the day after issue.
    pub reply_days: u32,
}

/// A hall's notification (通报, §10.3): what its checks of a month found, published down
/// to every node below it in the hall's catalog scope, written once and never changed.
/// Each station it names for rectification also gets a supervision notice (which carries
/// the reply, deadline and escalation) referring to it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Notification {
    /// When and where it was published: together they name it.
    pub at: Hlc,
    pub node: NodeId,
    pub staff: String,
    /// The publisher's role (`engine::StaffRole::as_str`): every receiver checks it
    /// against the one rule for who publishes (`engine::may_issue_supervision`).
    pub role: String,
    /// The month it is about, `YYYY-MM`.
    pub month: String,
    pub title: String,
    pub text: String,
    /// The figures it is about (e.g. the assessment's grouping), if any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub figures: String,
    /// The stations named for rectification (each below the hall).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rectify: Vec<DivisionCode>,
    /// Working days the stations named have to reply to their supervision notices.
    pub reply_days: u32,
}

impl Notification {
    /// Its document id and number: `b-<time>-<node>`.
    pub fn doc_id(&self) -> DocId {
        DocId::parse(&format!("b-{}-{}", self.at.to_hex(), self.node.to_hex()))
            .expect("hex is a valid id")
    }

    /// The texts, the month and the stations as written; whether the stations lie below
    /// the hall is the effect's and the engine's to check, since it needs the hall.
    pub fn validate(&self) -> Result<(), SupervisionError> {
        written("title", &self.title, 200)?;
        written("notification_text", &self.text, 8000)?;
        if !self.figures.is_empty() {
            written("figures", &self.figures, 2000)?;
        }
        let (year, month) = self.month.split_once('-').unwrap_or_default();
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(year, 4)
            || !("2000"..="2999").contains(&year)
            || !digits(month, 2)
            || !("01"..="12").contains(&month)
        {
            return Err(SupervisionError::NotificationMonth(self.month.clone()));
        }
        if !(1..=60).contains(&self.reply_days) {
            return Err(SupervisionError::ReplyDays);
        }
        if self.rectify.len() > MAX_STATIONS {
            return Err(SupervisionError::NotificationStations { max: MAX_STATIONS });
        }
        let mut named = std::collections::HashSet::new();
        if let Some(twice) = self.rectify.iter().find(|s| !named.insert(*s)) {
            return Err(SupervisionError::NotificationStation(twice.to_string()));
        }
        staff_name(&self.staff)
    }

    /// Whether `hall` may name every station of it: each a station's division strictly
    /// below the hall's.
    pub fn stations_below(&self, hall: &DivisionCode) -> Result<(), SupervisionError> {
        for station in &self.rectify {
            if station == hall
                || !station.is_within(hall)
                || station.level() != super::codes::DivisionLevel::Community
            {
                return Err(SupervisionError::NotificationStation(station.to_string()));
            }
        }
        Ok(())
    }
}

/// A station's reply.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SupervisionReply {
    pub at: Hlc,
    pub node: NodeId,
    pub staff: String,
    /// The notice it answers.
    pub notice: DocId,
    /// What was done.
    pub text: String,
}

/// Why a supervision record is not valid.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SupervisionError {
    #[error("{field} must be written (1-{max} characters)")]
    Text { field: &'static str, max: usize },
    #[error("a reply is due in 1 to 60 working days")]
    ReplyDays,
    #[error("{0} is not a case")]
    NotACase(String),
    #[error("{0} is not a supervision notice")]
    NotANotice(String),
    /// A text holds a control or layout character (see [`text`](super::text)).
    #[error(transparent)]
    Control(#[from] super::text::Refused),
    /// Only a hall above a station supervises it.
    #[error("only a hall above the station issues its supervision notices")]
    NotAbove,
    /// Only supervisors and admins at the hall issue notices.
    #[error("only supervisors and admins issue supervision notices")]
    SupervisorsOnly,
    /// Only the station supervised replies.
    #[error("only the station supervised replies to its notices")]
    NotTheStation,
    /// At the station, its lead or admin replies.
    #[error("the station's lead or admin replies to supervision notices")]
    LeadsReply,
    /// The month's assessment is read at a hall by its supervisors and admins, at a
    /// station by its lead and admin.
    #[error("the assessment is for a hall's supervisors and admins and a station's lead and admin")]
    AssessmentRole,
    /// A notification's month is not `YYYY-MM`.
    #[error("{0} is not a month (YYYY-MM)")]
    NotificationMonth(String),
    /// A notification names a station that is not a station below the hall, or twice.
    #[error("{0} is not a station below this hall, or is named twice")]
    NotificationStation(String),
    /// A notification names more stations than one notification may.
    #[error("a notification names at most {max} stations")]
    NotificationStations { max: usize },
}

impl SupervisionError {
    /// A stable name for the error, which the UI words in the reader's language.
    pub fn code(&self) -> &'static str {
        match self {
            SupervisionError::Text { .. } => "supervision_text",
            SupervisionError::ReplyDays => "supervision_reply_days",
            SupervisionError::NotACase(_) => "supervision_not_a_case",
            SupervisionError::NotANotice(_) => "supervision_not_a_notice",
            SupervisionError::Control(_) => super::text::Refused::CODE,
            SupervisionError::NotAbove => "supervision_not_above",
            SupervisionError::SupervisorsOnly => "supervision_supervisors_only",
            SupervisionError::NotTheStation => "supervision_not_the_station",
            SupervisionError::LeadsReply => "supervision_leads_reply",
            SupervisionError::AssessmentRole => "assessment_role",
            SupervisionError::NotificationMonth(_) => "notification_month",
            SupervisionError::NotificationStation(_) => "notification_station",
            SupervisionError::NotificationStations { .. } => "notification_stations",
        }
    }
}

/// Most stations one notification names.
const MAX_STATIONS: usize = 500;

/// Who wrote a record, as every node below shows it: empty (written by the node itself) or
/// one line of at most 64 characters, by the one text rule.
fn staff_name(staff: &str) -> Result<(), SupervisionError> {
    if staff.chars().count() > 64 {
        return Err(SupervisionError::Text {
            field: "staff",
            max: 64,
        });
    }
    Ok(super::text::line("staff", staff)?)
}

fn written(field: &'static str, text: &str, max: usize) -> Result<(), SupervisionError> {
    let n = text.trim().chars().count();
    if n == 0 || text.chars().count() > max {
        return Err(SupervisionError::Text { field, max });
    }
    Ok(super::text::lines(field, text)?)
}

impl SupervisionNotice {
    /// Its document id: `s-<time>-<node>`.
    pub fn doc_id(&self) -> DocId {
        DocId::parse(&format!("s-{}-{}", self.at.to_hex(), self.node.to_hex()))
            .expect("hex is a valid id")
    }

    pub fn validate(&self) -> Result<(), SupervisionError> {
        written("reason", &self.reason, 2000)?;
        written("todo", &self.todo, 2000)?;
        if !(1..=60).contains(&self.reply_days) {
            return Err(SupervisionError::ReplyDays);
        }
        if let Some(case) = &self.case
            && crate::ids::DocKind::of_id(case) != Some(crate::ids::DocKind::Case)
        {
            return Err(SupervisionError::NotACase(case.to_string()));
        }
        staff_name(&self.staff)
    }

    /// The day it was issued (China Standard Time).
    pub fn issued_on(&self) -> Date {
        Date::from_unix_ms_cst(self.at.unix_ms() as i64)
    }

    /// The last day to reply.
    pub fn reply_due(&self, calendar: &Calendar) -> Date {
        calendar.add_working_days(self.issued_on(), self.reply_days, &[])
    }
}

impl SupervisionReply {
    /// Its document id: `sr-<time>-<node>`.
    pub fn doc_id(&self) -> DocId {
        DocId::parse(&format!("sr-{}-{}", self.at.to_hex(), self.node.to_hex()))
            .expect("hex is a valid id")
    }

    pub fn validate(&self) -> Result<(), SupervisionError> {
        written("text", &self.text, 4000)?;
        if crate::ids::DocKind::of_id(&self.notice) != Some(crate::ids::DocKind::Supervision) {
            return Err(SupervisionError::NotANotice(self.notice.to_string()));
        }
        staff_name(&self.staff)
    }
}

/// Where a notice stands on `today`: answered (on time or late), open, or overdue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyState {
    AnsweredOnTime,
    AnsweredLate,
    Open,
    Overdue,
}

impl ReplyState {
    pub const ALL: [ReplyState; 4] = [
        ReplyState::Open,
        ReplyState::Overdue,
        ReplyState::AnsweredOnTime,
        ReplyState::AnsweredLate,
    ];

    /// The state's name on the wire, in queries and in the pages' word keys.
    pub fn as_str(self) -> &'static str {
        match self {
            ReplyState::Open => "open",
            ReplyState::Overdue => "overdue",
            ReplyState::AnsweredOnTime => "answered_on_time",
            ReplyState::AnsweredLate => "answered_late",
        }
    }

    pub fn parse(s: &str) -> Option<ReplyState> {
        ReplyState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
    }
}

/// The state of `notice` given the replies to it, on `today`: the first reply counts.
pub fn reply_state(
    notice: &SupervisionNotice,
    replies: &[SupervisionReply],
    today: Date,
    calendar: &Calendar,
) -> ReplyState {
    let due = notice.reply_due(calendar);
    let first = replies
        .iter()
        .filter(|r| r.notice == notice.doc_id())
        .map(|r| Date::from_unix_ms_cst(r.at.unix_ms() as i64))
        .min();
    match first {
        Some(day) if day <= due => ReplyState::AnsweredOnTime,
        Some(_) => ReplyState::AnsweredLate,
        None if today > due => ReplyState::Overdue,
        None => ReplyState::Open,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(date: &str) -> Hlc {
        let d: Date = date.parse().unwrap();
        Hlc::new((d.days_since_epoch() as u64 * 86_400 + 2 * 3600) * 1000, 0)
    }

    fn notice(date: &str, days: u32) -> SupervisionNotice {
        SupervisionNotice {
            at: at(date),
            node: NodeId([2; 16]),
            staff: "督办员".into(),
            case: Some(
                DocId::parse("c-0000000000000001-01010101010101010101010101010101").unwrap(),
            ),
            reason: "已超过承诺时限".into(),
            todo: "三个工作日内办结并说明原因".into(),
            reply_days: days,
        }
    }

    #[test]
    fn replies_are_due_in_working_days_and_late_ones_count_as_late() {
        let calendar = Calendar::china();
        // Issued Friday 2026-09-25; 3 working days skip the weekend: due Wednesday 09-30.
        let n = notice("2026-09-25", 3);
        assert_eq!(n.reply_due(calendar).to_string(), "2026-09-30");
        let reply = |date: &str| SupervisionReply {
            at: at(date),
            node: NodeId([1; 16]),
            staff: "站长".into(),
            notice: n.doc_id(),
            text: "已办结".into(),
        };
        // (replies, today, state)
        let table = [
            (vec![], "2026-09-30", ReplyState::Open),
            (vec![], "2026-10-09", ReplyState::Overdue),
            (
                vec![reply("2026-09-29")],
                "2026-10-09",
                ReplyState::AnsweredOnTime,
            ),
            (
                vec![reply("2026-10-08")],
                "2026-10-09",
                ReplyState::AnsweredLate,
            ),
            (
                vec![reply("2026-10-08"), reply("2026-09-28")],
                "2026-10-09",
                ReplyState::AnsweredOnTime,
            ),
        ];
        for (replies, today, expected) in table {
            assert_eq!(
                reply_state(&n, &replies, today.parse().unwrap(), calendar),
                expected,
                "{today}"
            );
        }
    }

    /// Reply deadlines count working days on the calendar (holidays skipped, make-up
    /// Saturdays counted), from the day after issue; a notice escalates (is overdue) the
    /// day after its deadline, never on it.
    #[test]
    fn deadlines_skip_holidays_and_escalate_the_day_after() {
        let calendar = Calendar::china();
        // (issued, reply days, due)
        let table = [
            // Monday, 3 days: Thursday.
            ("2026-03-02", 3, "2026-03-05"),
            // Friday, 1 day: the next Monday.
            ("2026-03-06", 1, "2026-03-09"),
            // Tuesday 09-29, 3 days: 09-30, then the National Day holiday (10-01..07),
            // then 10-08.
            ("2026-09-29", 3, "2026-10-09"),
            // Issued on a holiday: the count starts after it, the make-up Saturday counts.
            ("2026-10-03", 1, "2026-10-08"),
            ("2026-10-08", 2, "2026-10-10"),
        ];
        for (issued, days, due) in table {
            let n = notice(issued, days);
            assert_eq!(n.reply_due(calendar).to_string(), due, "{issued} + {days}");
            let due: Date = due.parse().unwrap();
            let day_after = due.add_days(1);
            assert_eq!(reply_state(&n, &[], due, calendar), ReplyState::Open);
            assert_eq!(
                reply_state(&n, &[], day_after, calendar),
                ReplyState::Overdue,
                "{issued} + {days}"
            );
        }
    }

    #[test]
    fn records_must_say_something() {
        assert!(notice("2026-09-25", 3).validate().is_ok());
        let mut blank = notice("2026-09-25", 3);
        blank.todo = " ".into();
        assert_eq!(blank.validate().unwrap_err().code(), "supervision_text");
        let mut rlo = notice("2026-09-25", 3);
        rlo.todo = "\u{202E}请于三日内答复".into();
        assert_eq!(rlo.validate().unwrap_err().code(), "control_character");
        assert_eq!(
            notice("2026-09-25", 0).validate().unwrap_err().code(),
            "supervision_reply_days"
        );
        let mut wrong = notice("2026-09-25", 3);
        wrong.case = Some(DocId::parse("i-x").unwrap());
        assert!(wrong.validate().is_err());
    }
}

#[cfg(test)]
mod record_text_tests {
    use super::*;

    fn notification() -> Notification {
        Notification {
            at: Hlc::new(1_780_000_000_000, 0),
            node: NodeId([7; 16]),
            staff: "督办员".into(),
            role: "supervisor".into(),
            month: "2026-11".into(),
            title: "十一月通报".into(),
            text: "请整改".into(),
            figures: String::new(),
            rectify: vec![DivisionCode::parse("440304001001").unwrap()],
            reply_days: 5,
        }
    }

    /// What a hall writes into a notification every node below shows: the staff name by
    /// the text rule, a month of this millennium, each station once, at most 500.
    #[test]
    fn a_notification_is_refused_for_each_bad_field() {
        assert_eq!(notification().validate(), Ok(()));
        let station = |n: usize| {
            DivisionCode::parse(&format!("4403040{:02}{:03}", n / 999 + 1, n % 999 + 1)).unwrap()
        };
        let table: Vec<(Notification, &str)> = vec![
            (
                Notification {
                    staff: "督办\u{202E}员".into(),
                    ..notification()
                },
                "control_character",
            ),
            (
                Notification {
                    staff: "长".repeat(65),
                    ..notification()
                },
                "supervision_text",
            ),
            (
                Notification {
                    month: "0000-01".into(),
                    ..notification()
                },
                "notification_month",
            ),
            (
                Notification {
                    rectify: vec![station(1), station(1)],
                    ..notification()
                },
                "notification_station",
            ),
            (
                Notification {
                    rectify: (0..501).map(station).collect(),
                    ..notification()
                },
                "notification_stations",
            ),
        ];
        for (bad, code) in table {
            assert_eq!(bad.validate().map_err(|e| e.code()), Err(code), "{bad:?}");
        }
    }
}
