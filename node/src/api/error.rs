//! The one error type of the HTTP edge: a status, a stable code and a message a person can
//! act on, always sent as JSON `{ "error": code, "message": text }`.
//!
//! The message is worded from `web/i18n` in the caller's language: the `Accept-Language`
//! of the request ([`with_language`] keeps it for the request), Chinese when it names
//! neither language. The code is the same in every language.

use crate::i18n::{Lang, Tr, Words};
use crate::store::{ErrorClass, StoreError};
use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// The code (`words.code`) and what the message says.
    pub words: Words,
    /// Seconds after which the caller may try again (`Retry-After`), for answers that
    /// push back on load rather than report a failure.
    pub retry_after_secs: Option<u32>,
}

/// The JSON body of every error answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code, e.g. `not_found`, `invalid_body`, `not_allowed`.
    pub error: &'static str,
    /// What went wrong and, where possible, how to fix it, in the language of the
    /// request's `Accept-Language` (zh-CN when absent).
    pub message: String,
}

pub type ApiResult<T> = Result<T, ApiError>;

tokio::task_local! {
    /// The language of the request being answered.
    static LANGUAGE: Lang;
}

/// The language of the request being answered (zh-CN outside one), for answers that word
/// problems in a body of their own, as a draft's problems.
pub fn request_language() -> Lang {
    LANGUAGE.try_with(|lang| *lang).unwrap_or_default()
}

/// Keeps the request's language for the errors its answer may carry.
pub async fn with_language(request: Request, next: Next) -> Response {
    let lang = accept_language(
        request
            .headers()
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    LANGUAGE.scope(lang, next.run(request)).await
}

/// The language an `Accept-Language` header prefers among ours: the highest-weighted
/// range that is Chinese or English; Chinese when it names neither.
pub fn accept_language(header: Option<&str>) -> Lang {
    let Some(header) = header else {
        return Lang::Zh;
    };
    let mut best: Option<(f32, Lang)> = None;
    for part in header.split(',') {
        let mut pieces = part.trim().split(';');
        let range = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
        let weight = pieces
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let lang = if range == "zh" || range.starts_with("zh-") {
            Lang::Zh
        } else if range == "en" || range.starts_with("en-") {
            Lang::En
        } else {
            continue;
        };
        if weight > 0.0 && best.is_none_or(|(w, _)| weight > w) {
            best = Some((weight, lang));
        }
    }
    best.map_or(Lang::Zh, |(_, lang)| lang)
}

impl ApiError {
    /// An error whose words are `error.CODE` with the technical `detail` as a parameter.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            words: Words::new(code).text("detail", detail),
            retry_after_secs: None,
        }
    }

    /// `503 Service Unavailable` with `Retry-After`: the node is busy, the caller should
    /// come back in `secs` seconds.
    pub fn busy(secs: u32, detail: impl Into<String>) -> ApiError {
        ApiError {
            retry_after_secs: Some(secs),
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", detail)
        }
    }

    pub fn words(status: StatusCode, words: Words) -> ApiError {
        ApiError {
            status,
            words,
            retry_after_secs: None,
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", detail)
    }

    pub fn invalid(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    pub fn code(&self) -> &'static str {
        self.words.code
    }

    /// The message in `lang`.
    pub fn message(&self, lang: Lang) -> String {
        Tr::of(lang).words(&self.words)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let lang = request_language();
        // Pushing back on load is the node working as meant, not failing.
        if self.status.is_server_error() && self.retry_after_secs.is_none() {
            tracing::error!(http.status = self.status.as_u16(), error.code = self.code(), error.message = %self.words, "request failed");
        }
        let retry_after_secs = self.retry_after_secs;
        let mut response = (
            self.status,
            Json(ErrorBody {
                error: self.code(),
                message: self.message(lang),
            }),
        )
            .into_response();
        if let Some(secs) = retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
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
        let class = e.class();
        let status =
            StatusCode::from_u16(class.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        match class {
            ErrorClass::Failed => tracing::error!(error = %e, "store failure"),
            ErrorClass::DiskFull => {
                tracing::error!(error = %e, "the disk is full; a write was refused")
            }
            _ => {}
        }
        ApiError::words(status, e.words())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_language_is_the_callers_best_of_ours() {
        for (header, lang) in [
            (None, Lang::Zh),
            (Some(""), Lang::Zh),
            (Some("en"), Lang::En),
            (Some("en-US,en;q=0.9"), Lang::En),
            (Some("zh-CN,zh;q=0.9,en;q=0.8"), Lang::Zh),
            (Some("fr-FR, en;q=0.5"), Lang::En),
            (Some("de"), Lang::Zh),
            (Some("en;q=0.2, zh-TW;q=0.8"), Lang::Zh),
            (Some("en;q=0"), Lang::Zh),
        ] {
            assert_eq!(accept_language(header), lang, "{header:?}");
        }
    }
}
