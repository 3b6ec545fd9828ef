//! `/api/v1/departments`: the departments (进驻部门) that work through a hall, each with its
//! approval seal (审批专用章, SZDB/Z 176 §9.6) certified by the hall. Every node lists the
//! departments it holds (its own hall's and those above it); a hall's admin creates one
//! and rotates its seal (`engine::may_manage_departments`, checked by the store).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa::ToSchema;
use yizhan_sync::domain::department::Department;
use yizhan_sync::ids::hex;

use super::ApiState;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Authenticated, Body, Path};
use crate::store::Staff;

/// A department and its seals.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct DepartmentView {
    /// Its code at its hall, and its document id.
    pub code: String,
    pub id: String,
    /// Its name, as transfers and Department accounts (their counter) name it.
    pub name: String,
    /// The hall node where it works (32 hex digits) and its division.
    pub hall: String,
    pub division: String,
    /// Its seal keys, oldest first; the last seals its notices now.
    pub seals: Vec<SealView>,
}

/// One seal key and its hall's certificate.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct SealView {
    pub key_no: u32,
    /// The public key (hex); the private key never leaves the hall's data dir.
    pub public_key: String,
    /// When it was certified (Unix milliseconds).
    pub valid_from_ms: u64,
    /// The hall's node-key signature over department id, name, hall, key, key number and
    /// valid-from (hex): checkable by anyone who knows the hall's key.
    pub certificate: String,
}

impl DepartmentView {
    fn of(d: Department) -> DepartmentView {
        DepartmentView {
            id: d.doc_id().map(|id| id.to_string()).unwrap_or_default(),
            code: d.code,
            name: d.name,
            hall: d.hall.to_hex(),
            division: d.division.to_string(),
            seals: d
                .seals
                .into_iter()
                .map(|s| SealView {
                    key_no: s.key_no,
                    public_key: hex(&s.public_key),
                    valid_from_ms: s.valid_from_ms,
                    certificate: hex(&s.signature),
                })
                .collect(),
        }
    }
}

/// A department to create at this hall.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDepartment {
    /// 1 to 32 letters, digits or `-`, unique at this hall.
    pub code: String,
    /// 1 to 60 characters; Department accounts name it as their counter.
    pub name: String,
}

fn staff_of(user: &Authenticated) -> Staff {
    Staff {
        username: user.0.username.clone(),
        counter: user.0.counter.clone(),
        role: user.0.role,
    }
}

/// The departments this node holds
#[utoipa::path(get, path = "/api/v1/departments", tag = "catalog",
    responses((status = 200, body = [DepartmentView]), (status = 401, body = ErrorBody)),
    security(("token" = [])))]
pub async fn index(
    State(state): State<ApiState>,
    _user: Authenticated,
) -> ApiResult<Json<Vec<DepartmentView>>> {
    let departments = state.store.departments().await?;
    Ok(Json(
        departments.into_iter().map(DepartmentView::of).collect(),
    ))
}

/// Create a department with its first seal key (a hall's admin)
#[utoipa::path(post, path = "/api/v1/departments", tag = "catalog",
    request_body = CreateDepartment,
    responses(
        (status = 201, body = DepartmentView, description = "Created, with seal key 1 certified by this hall"),
        (status = 403, body = ErrorBody, description = "Not an admin, or not a hall"),
        (status = 409, body = ErrorBody, description = "A department of this code or name exists at this hall"),
        (status = 400, body = ErrorBody, description = "A bad code or name"),
        (status = 422, body = ErrorBody, description = "A body that does not read (a field missing or unknown)"),
        (status = 401, body = ErrorBody)),
    security(("token" = [])))]
pub async fn create(
    State(state): State<ApiState>,
    user: Authenticated,
    Body(body): Body<CreateDepartment>,
) -> ApiResult<(StatusCode, Json<DepartmentView>)> {
    let department = state
        .store
        .create_department(body.code, body.name, staff_of(&user), state.clock.now_ms())
        .await?;
    Ok((StatusCode::CREATED, Json(DepartmentView::of(department))))
}

/// A department by its code, as this node sees it (its own hall's, else the nearest above)
#[utoipa::path(get, path = "/api/v1/departments/{code}", tag = "catalog",
    params(("code" = String, Path, description = "The department's code", max_length = 32,
        pattern = "^[A-Za-z0-9-]{1,32}$")),
    responses((status = 200, body = DepartmentView), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("token" = [])))]
pub async fn show(
    State(state): State<ApiState>,
    _user: Authenticated,
    Path(code): Path<String>,
) -> ApiResult<Json<DepartmentView>> {
    let department = state
        .store
        .department(code.clone())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("department {code} not found")))?;
    Ok(Json(DepartmentView::of(department)))
}

/// Rotate a department's seal: a new key number (a hall's admin)
///
/// Notices sealed with the older keys still verify: their certificates stay.
#[utoipa::path(post, path = "/api/v1/departments/{code}/rotate", tag = "catalog",
    params(("code" = String, Path, description = "The department's code at this hall", max_length = 32)),
    responses(
        (status = 200, body = DepartmentView, description = "Rotated; the last seal is the new key"),
        (status = 403, body = ErrorBody, description = "Not an admin, or not a hall"),
        (status = 404, body = ErrorBody, description = "No such department at this hall"),
        (status = 401, body = ErrorBody)),
    security(("token" = [])))]
pub async fn rotate(
    State(state): State<ApiState>,
    user: Authenticated,
    Path(code): Path<String>,
) -> ApiResult<Json<DepartmentView>> {
    let department = state
        .store
        .rotate_department_seal(code, staff_of(&user), state.clock.now_ms())
        .await?;
    Ok(Json(DepartmentView::of(department)))
}
