//! `/api/v1/counters`: the node's counters (窗口, SZDB/Z 176 §7.4) as records, for the
//! systems around a hall that schedule staff or drive queue screens. The rules are the
//! store's (`store::counters`), as for the admin page `/admin/counters`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa::ToSchema;

use super::ApiState;
use super::error::{ApiResult, ErrorBody};
use super::extract::{Authenticated, Body, Path};
use crate::store::Counter;

/// One counter of this node.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct CounterView {
    /// What accounts and cases name it by (`3`, `1号窗口`).
    pub number: String,
    pub name: String,
    /// What it serves (items, kinds of applicant), as the admin wrote it.
    pub serves: String,
}

impl From<Counter> for CounterView {
    fn from(c: Counter) -> CounterView {
        CounterView {
            number: c.number,
            name: c.name,
            serves: c.serves,
        }
    }
}

/// A counter's name and what it serves.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutCounter {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub serves: String,
}

/// The counters of this node
#[utoipa::path(get, path = "/api/v1/counters", tag = "staff",
    responses((status = 200, body = Vec<CounterView>), (status = 401, body = ErrorBody)),
    security(("token" = [])))]
pub async fn index(
    State(state): State<ApiState>,
    _user: Authenticated,
) -> ApiResult<Json<Vec<CounterView>>> {
    let counters = state.store.counters().await?;
    Ok(Json(counters.into_iter().map(CounterView::from).collect()))
}

/// Add a counter, or rename one (admins)
#[utoipa::path(put, path = "/api/v1/counters/{number}", tag = "staff",
    params(("number" = String, Path, description = "The counter's number, 1-40 characters")),
    request_body = PutCounter,
    responses(
        (status = 200, body = CounterView, description = "Saved"),
        (status = 400, body = ErrorBody, description = "A number or text the rules refuse"),
        (status = 422, body = ErrorBody, description = "The body does not read (an unknown field, a wrong type)"),
        (status = 403, body = ErrorBody, description = "Not an admin"),
        (status = 401, body = ErrorBody)),
    security(("token" = [])))]
pub async fn put(
    State(state): State<ApiState>,
    user: Authenticated,
    Path(number): Path<String>,
    Body(body): Body<PutCounter>,
) -> ApiResult<Json<CounterView>> {
    user.administers()?;
    let counter = Counter {
        number,
        name: body.name,
        serves: body.serves,
    };
    state
        .store
        .put_counter(counter.clone(), state.clock.now_ms())
        .await?;
    Ok(Json(counter.into()))
}

/// Remove a counter no account names (admins)
#[utoipa::path(delete, path = "/api/v1/counters/{number}", tag = "staff",
    params(("number" = String, Path, description = "The counter's number")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, body = ErrorBody, description = "No such counter"),
        (status = 409, body = ErrorBody, description = "An account of this node works at it"),
        (status = 403, body = ErrorBody, description = "Not an admin"),
        (status = 401, body = ErrorBody)),
    security(("token" = [])))]
pub async fn remove(
    State(state): State<ApiState>,
    user: Authenticated,
    Path(number): Path<String>,
) -> ApiResult<StatusCode> {
    user.administers()?;
    state.store.remove_counter(number).await?;
    Ok(StatusCode::NO_CONTENT)
}
