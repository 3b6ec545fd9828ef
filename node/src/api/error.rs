//! The one error type of the HTTP edge: a status, a stable code and a message a person can
//! act on, always sent as JSON `{ "error": code, "message": text }`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use yizhan_sync::domain::case::CaseError;
use yizhan_sync::domain::serial::SerialError;

use crate::store::StoreError;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

/// The JSON body of every error answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `not_found`, `invalid_body`, `not_allowed`.
    pub error: &'static str,
    /// What went wrong and, where possible, how to fix it.
    pub message: String,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(http.status = self.status.as_u16(), error.code = self.code, error.message = %self.message, "request failed");
        }
        let mut response = (
            self.status,
            Json(ErrorBody {
                error: self.code,
                message: self.message,
            }),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"yizhan\""),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        use StatusCode as S;
        match &e {
            StoreError::NotFound { .. } => ApiError::new(S::NOT_FOUND, "not_found", e.to_string()),
            StoreError::Case(case) => match case {
                // Who may do what is the engine's rule: the same codes in the UI.
                case if case.is_forbidden() => {
                    ApiError::new(S::FORBIDDEN, case.code(), e.to_string())
                }
                CaseError::NotAllowed { .. } => {
                    ApiError::new(S::CONFLICT, "not_allowed", e.to_string())
                }
                CaseError::Conflicted => ApiError::new(S::CONFLICT, "case_conflict", e.to_string()),
                CaseError::AlreadyRated
                | CaseError::NotTheHolder
                | CaseError::NothingToResolve
                | CaseError::NothingToSignFor
                | CaseError::NoOpenRectification => {
                    ApiError::new(S::CONFLICT, "not_allowed", e.to_string())
                }
                CaseError::MaterialsMissing { .. } => {
                    ApiError::new(S::UNPROCESSABLE_ENTITY, "materials_missing", e.to_string())
                }
                _ => ApiError::new(S::UNPROCESSABLE_ENTITY, "invalid", e.to_string()),
            },
            StoreError::Item(_) => {
                ApiError::new(S::UNPROCESSABLE_ENTITY, "invalid_item", e.to_string())
            }
            StoreError::Serial(SerialError::Exhausted { .. }) => {
                ApiError::new(S::CONFLICT, "serial_exhausted", e.to_string())
            }
            StoreError::Serial(_) => ApiError::new(S::BAD_REQUEST, "bad_serial", e.to_string()),
            StoreError::Conflict(_) => ApiError::new(S::CONFLICT, "conflict", e.to_string()),
            StoreError::Forbidden(_) => ApiError::new(S::FORBIDDEN, "forbidden", e.to_string()),
            StoreError::Invalid(_) => ApiError::new(S::BAD_REQUEST, "bad_request", e.to_string()),
            StoreError::Closed => ApiError::new(
                S::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the node is shutting down; try again shortly",
            ),
            StoreError::Busy(_) => ApiError::new(
                S::SERVICE_UNAVAILABLE,
                "busy",
                "the database is busy; try again shortly",
            ),
            StoreError::ClockBehind { .. } => {
                ApiError::new(S::SERVICE_UNAVAILABLE, "clock_behind", e.to_string())
            }
            StoreError::Corrupt { .. }
            | StoreError::DiskFull(_)
            | StoreError::Sqlite(_)
            | StoreError::Internal(_) => {
                tracing::error!(error = %e, "store failure");
                ApiError::new(
                    S::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the node could not complete the request; it has been logged",
                )
            }
        }
    }
}
