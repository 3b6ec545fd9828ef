//! `/api/v1/assessment`: the month's assessment (§10.1) for the departments' and the
//! city's systems, the same figures as `/hall/assessment` (the store computes them once).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa::{IntoParams, ToSchema};

use super::ApiState;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Authenticated, Query};
use crate::i18n::Words;
use crate::store::{AssessmentBy, AssessmentFigures, Month};

/// What the lines are.
#[derive(Clone, Copy, Debug, serde::Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AssessmentGrouping {
    Station,
    Subdistrict,
    Department,
    Counter,
    Staff,
}

impl AssessmentGrouping {
    fn by(self) -> AssessmentBy {
        match self {
            AssessmentGrouping::Station => AssessmentBy::Station,
            AssessmentGrouping::Subdistrict => AssessmentBy::Subdistrict,
            AssessmentGrouping::Department => AssessmentBy::Department,
            AssessmentGrouping::Counter => AssessmentBy::Counter,
            AssessmentGrouping::Staff => AssessmentBy::Staff,
        }
    }
}

/// Which month, per what.
#[derive(Debug, serde::Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AssessmentQuery {
    /// The month, `YYYY-MM` (China time), 2000-01 to 2999-12.
    #[param(pattern = r"^[0-9]{4}-[0-9]{2}$")]
    pub month: String,
    /// station, subdistrict, department, counter or staff; at a hall `station` when
    /// absent, at a station `counter` (a station offers only counter and staff).
    #[param(inline)]
    pub by: Option<AssessmentGrouping>,
}

/// One month's figures of one line.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct Figures {
    /// Received in the month.
    pub received: u64,
    /// Completed in the month, whenever received.
    pub completed: u64,
    /// Of those completed, with a committed deadline, and of them on or before it.
    pub completed_with_deadline: u64,
    pub on_time: u64,
    /// `on_time / completed_with_deadline`; absent when none.
    pub on_time_rate: Option<f64>,
    /// Average working days from acceptance to completion (the case's calendar).
    pub average_working_days: Option<f64>,
    /// Completed late in the month, or still open and fallen overdue in it.
    pub overdue: u64,
    /// Likewise past the legal limit.
    pub legal_breach: u64,
    /// Ratings given in the month per level, `[1, 2, 3, 4, 5]` (1 非常不满意 … 5 非常满意).
    pub ratings: [u64; 5],
    /// Share of ratings at 4 or 5; absent when nobody rated.
    pub satisfaction: Option<f64>,
    /// Ratings at 1 or 2 (差评), and of them rectified by their day, and after it.
    pub bad_ratings: u64,
    pub rectified_on_time: u64,
    pub rectified_late: u64,
    /// Supervision notices issued in the month, and of them answered on time.
    pub supervision_notices: u64,
    pub supervision_answered_on_time: u64,
}

impl Figures {
    fn of(f: &AssessmentFigures) -> Figures {
        Figures {
            received: f.received,
            completed: f.completed,
            completed_with_deadline: f.with_deadline,
            on_time: f.on_time,
            on_time_rate: f.on_time_rate(),
            average_working_days: f.average_days(),
            overdue: f.overdue,
            legal_breach: f.legal_breach,
            ratings: f.ratings,
            satisfaction: f.satisfaction(),
            bad_ratings: f.bad(),
            rectified_on_time: f.rectified_on_time,
            rectified_late: f.rectified_late,
            supervision_notices: f.supervision,
            supervision_answered_on_time: f.supervision_on_time,
        }
    }
}

/// One line, beside the month before.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct AssessmentEntry {
    /// The station's or sub-district's division code (a counter's or staff member's
    /// station); empty for a department.
    pub division: String,
    /// The counter, staff member or department (empty for a station or sub-district,
    /// and for cases never sent to a department).
    pub name: String,
    pub month: Figures,
    pub previous: Figures,
}

/// The month's assessment.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct AssessmentReport {
    pub month: String,
    pub previous_month: String,
    pub by: String,
    pub lines: Vec<AssessmentEntry>,
    pub total: Figures,
    pub previous_total: Figures,
}

/// The month's assessment (考核)
///
/// Per station, sub-district, department, counter or staff member, each figure beside
/// the previous month's. For a hall's supervisors and admins and a station's lead and
/// admin (`assessment_role` otherwise).
#[utoipa::path(get, path = "/api/v1/assessment", tag = "cases", params(AssessmentQuery),
    responses(
        (status = 200, body = AssessmentReport),
        (status = 400, body = ErrorBody, description = "The month is not YYYY-MM from 2000-01 to 2999-12, or a grouping a station does not offer"),
        (status = 403, body = ErrorBody, description = "Not a hall's supervisor or admin, nor a station's lead or admin (assessment_role)"),
        (status = 401, body = ErrorBody)),
    security(("token" = [])))]
pub async fn index(
    State(state): State<ApiState>,
    user: Authenticated,
    Query(q): Query<AssessmentQuery>,
) -> ApiResult<Json<AssessmentReport>> {
    let bad = |name: &str, value: &str| {
        ApiError::words(
            StatusCode::BAD_REQUEST,
            Words::new("bad_request").text("detail", format!("{name}: {value}")),
        )
    };
    let month = Month::parse(&q.month).ok_or_else(|| bad("month", &q.month))?;
    let hall = state.store.own_record().role.is_hall();
    let offered = AssessmentBy::offered(hall);
    let by = q.by.map_or(offered[0], AssessmentGrouping::by);
    if !offered.contains(&by) {
        return Err(bad("by", by.as_str()));
    }
    let a = state
        .store
        .assessment(month, by, user.0.role, state.today())
        .await?;
    Ok(Json(AssessmentReport {
        month: a.month.to_string(),
        previous_month: a.month.prev().to_string(),
        by: a.by.as_str().to_string(),
        lines: a
            .lines
            .iter()
            .map(|l| AssessmentEntry {
                division: l.division.clone(),
                name: l.name.clone(),
                month: Figures::of(&l.month),
                previous: Figures::of(&l.previous),
            })
            .collect(),
        total: Figures::of(&a.total),
        previous_total: Figures::of(&a.previous_total),
    }))
}
