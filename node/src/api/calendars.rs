//! `/api/v1/calendars`: the working-day calendar deadlines count on, and a hall's
//! publishing of a year (the State Council's notice) without a new binary.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa::ToSchema;
use yizhan_sync::domain::calendar::YearStatus;

use super::ApiState;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Authenticated, Body, Path};
use crate::i18n::Words;
use crate::store::StoreError;

/// The calendar this node counts on.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct CalendarView {
    /// The version deadlines name, e.g. `cn-mainland:2026.1+2027.1`.
    pub version: String,
    pub years: Vec<CalendarYearView>,
}

/// One year of it.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct CalendarYearView {
    pub year: i32,
    /// The year's own version, e.g. `2027.1`.
    pub version: String,
    /// `official`, or `provisional` (statutory holidays only, until the notice).
    pub status: String,
    /// The hall that published it (its division code), or `shipped` with this build.
    pub source: String,
}

/// A calendar year to publish.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishCalendar {
    /// One year file, in the format of the shipped `calendars/cn-2026.txt`
    /// (`calendar`, `year`, `version`, `status`, `source`, then `off`/`work` lines).
    pub text: String,
}

fn view(state: &ApiState) -> CalendarView {
    let calendar = state.store.calendar();
    let published = state.store.calendar_years();
    let division = yizhan_sync::domain::codes::DivisionCode::parse(&state.node.division).ok();
    CalendarView {
        version: calendar.version().to_string(),
        years: calendar
            .years()
            .map(|y| CalendarYearView {
                year: y.year,
                version: y.version.clone(),
                status: match y.status {
                    YearStatus::Official => "official",
                    YearStatus::Provisional => "provisional",
                }
                .into(),
                source: published
                    .iter()
                    .filter(|p| {
                        p.year == y.year
                            && p.version == y.version
                            && division.as_ref().is_some_and(|d| d.is_within(&p.division))
                    })
                    .map(|p| p.division.to_string())
                    .next()
                    .unwrap_or_else(|| "shipped".into()),
            })
            .collect(),
    }
}

/// The working-day calendar this node counts on
#[utoipa::path(get, path = "/api/v1/calendars", tag = "catalog",
    responses((status = 200, body = CalendarView), (status = 401, body = ErrorBody)),
    security(("token" = [])))]
pub async fn index(State(state): State<ApiState>, _user: Authenticated) -> Json<CalendarView> {
    Json(view(&state))
}

/// Publish a calendar year (city and district halls)
///
/// The year travels down the tree with the catalog; here and at every node below, the
/// deadlines that count on it are derived again at once.
#[utoipa::path(put, path = "/api/v1/calendars/{year}", tag = "catalog",
    params(("year" = i32, Path, description = "The year the file publishes", minimum = 2000, maximum = 2100)),
    request_body = PublishCalendar,
    responses(
        (status = 200, body = CalendarView, description = "Published; the calendar now counted on"),
        (status = 403, body = ErrorBody, description = "Not an admin, or this node does not publish calendars"),
        (status = 409, body = ErrorBody, description = "This hall already publishes exactly this text"),
        (status = 422, body = ErrorBody, description = "The file does not read, or gives another year"),
        (status = 401, body = ErrorBody)),
    security(("token" = [])))]
pub async fn publish(
    State(state): State<ApiState>,
    user: Authenticated,
    Path(year): Path<i32>,
    Body(body): Body<PublishCalendar>,
) -> ApiResult<Json<CalendarView>> {
    user.administers()?;
    let calendar =
        yizhan_sync::domain::calendar::Calendar::from_files(&[&body.text]).map_err(|e| {
            ApiError::words(
                StatusCode::UNPROCESSABLE_ENTITY,
                Words::new("calendar_unreadable").text("detail", e.to_string()),
            )
        })?;
    let years: Vec<String> = calendar.years().map(|y| y.year.to_string()).collect();
    if years != [year.to_string()] {
        return Err(ApiError::words(
            StatusCode::UNPROCESSABLE_ENTITY,
            Words::new("calendar_year_mismatch")
                .text("wanted", year.to_string())
                .text("value", years.join(", ")),
        ));
    }
    state
        .store
        .publish_calendar_year(body.text, state.clock.now_ms())
        .await
        .map_err(|e| match e {
            StoreError::Invalid(words) => ApiError::words(StatusCode::UNPROCESSABLE_ENTITY, words),
            other => other.into(),
        })?;
    Ok(Json(view(&state)))
}
