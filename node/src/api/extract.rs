//! Extractors that turn every malformed request into a clear [`ApiError`] instead of
//! axum's plain-text rejections, and the bearer-token check.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::ApiState;
use super::error::ApiError;
use crate::accounts::hash_token;
use crate::store::UserRecord;

/// A JSON request body.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Body(value)),
            Err(rejection) => Err(json_error(rejection)),
        }
    }
}

fn json_error(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(e) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
            // The source names the field path and the problem, e.g.
            // "applicant: unknown field `nickname`, expected one of …".
            std::error::Error::source(&e).map_or_else(|| e.body_text(), |s| s.to_string()),
        ),
        JsonRejection::JsonSyntaxError(e) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            format!(
                "the body is not valid JSON: {}",
                std::error::Error::source(&e).map_or_else(|| e.body_text(), |s| s.to_string())
            ),
        ),
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with the header Content-Type: application/json",
        ),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "the request body is larger than this node accepts (http.max_body_bytes)",
            )
        }
        other => ApiError::new(other.status(), "bad_request", other.body_text()),
    }
}

/// Query-string parameters.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e: QueryRejection| {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", e.body_text())
            })
    }
}

/// Path parameters.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|e: PathRejection| {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", e.body_text())
            })
    }
}

/// The staff member a request's bearer token belongs to.
#[derive(Debug, Clone)]
pub struct Authenticated(pub UserRecord);

impl Authenticated {
    /// Refuses (403, worded in the request's language) unless this person sets up the
    /// node (`engine::may_administer`): its accounts, counters and calendars.
    pub fn administers(&self) -> Result<(), ApiError> {
        yizhan_sync::engine::may_administer(self.0.role).map_err(|refused| {
            ApiError::words(StatusCode::FORBIDDEN, crate::i18n::Words::from(&refused))
        })
    }
}

impl<S> FromRequestParts<S> for Authenticated
where
    S: Send + Sync,
    ApiState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let state = ApiState::from_ref(state);
        let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
            ApiError::unauthorized(
                "this endpoint needs a token: send `Authorization: Bearer TOKEN` (an admin creates one with `yizhan token create --user NAME`)",
            )
        })?;
        let token = header
            .to_str()
            .ok()
            // The scheme name is case-insensitive (RFC 9110 §11.1).
            .and_then(|v| {
                v.get(..7)
                    .filter(|s| s.eq_ignore_ascii_case("bearer "))
                    .map(|_| &v[7..])
            })
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be `Bearer TOKEN`")
            })?;
        let invalid = || ApiError::unauthorized("the token is not valid, or its user is disabled");
        let hash = hash_token(token).ok_or_else(invalid)?;
        let user = state.store.token_owner(hash).await?.ok_or_else(invalid)?;
        Ok(Authenticated(user))
    }
}

/// A number from a query within the bounds the OpenAPI document states, or a 400 that
/// says them.
pub fn bounded(name: &str, value: u32, low: u32, high: u32) -> Result<u32, ApiError> {
    if (low..=high).contains(&value) {
        Ok(value)
    } else {
        Err(ApiError::words(
            axum::http::StatusCode::BAD_REQUEST,
            crate::i18n::Words::new("bad_query")
                .text("name", name)
                .text("low", low.to_string())
                .text("high", high.to_string()),
        ))
    }
}
