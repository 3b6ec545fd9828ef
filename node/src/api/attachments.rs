//! `/api/v1/attachments`: a hall publishes the blank forms and samples (空表/样表) its
//! items name (DOMAIN §4); the guide pages offer them for download. Whoever drafts items
//! uploads them (the engine's `may_author`, as the draft page's upload in `web::drafts`):
//! an attachment is published as it is uploaded, but reaches a guide only once a reviewed
//! item version names it.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use utoipa::{IntoParams, ToSchema};
use yizhan_sync::domain::attachment::{AttachmentError, MAX_BYTES};
use yizhan_sync::domain::codes::DivisionCode;
use yizhan_sync::ids::Scope;

use super::ApiState;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Authenticated, Query};
use crate::i18n::Words;
use crate::store::authoring_refused;
use yizhan_sync::engine::{AuthoringAct, may_author};

#[derive(Debug, serde::Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The file name people download it as, e.g. 申请表（空表）.pdf.
    pub name: String,
}

/// A published attachment.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct AttachmentView {
    /// Its id (`a-…`), which an item's material names as `blank_form` or `sample`.
    pub id: String,
    pub name: String,
    pub content_type: String,
    pub size: u64,
    /// SHA-256 of the file, hex.
    pub sha256: String,
}

/// Publish a blank form or sample (item editors and admins at halls that author the catalog)
///
/// The body is the file itself, with its type in `Content-Type`: PDF, PNG, JPEG, Word
/// (.doc/.docx) or Excel (.xls/.xlsx), at most 2 MiB; its contents must be of that type.
/// The same file published again answers the same attachment.
#[utoipa::path(post, path = "/api/v1/attachments", tag = "catalog", params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream",
        description = "The file's bytes; send its own type (application/pdf, image/png, image/jpeg, application/msword, application/vnd.ms-excel or the OOXML types) as Content-Type"),
    responses(
        (status = 201, body = AttachmentView, description = "Published"),
        (status = 400, body = ErrorBody, description = "Empty, of a type not taken, or not what its type says"),
        (status = 413, body = ErrorBody, description = "Larger than 2 MiB"),
        (status = 403, body = ErrorBody, description = "Not an item editor or admin, or this node does not author the catalog"),
        (status = 401, body = ErrorBody)),
    security(("token" = [])))]
pub async fn create(
    State(state): State<ApiState>,
    user: Authenticated,
    Query(query): Query<UploadQuery>,
    request: Request,
) -> ApiResult<(StatusCode, Json<AttachmentView>)> {
    // The rule of who drafts the catalog (the engine's), as the draft page's upload.
    may_author(
        state.store.own_record(),
        user.0.role,
        None,
        AuthoringAct::Draft,
    )
    .map_err(authoring_refused)?;
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    // Read at most one byte more than an attachment holds, to tell an oversize file.
    let bytes = axum::body::to_bytes(request.into_body(), MAX_BYTES + 1)
        .await
        .map_err(|_| {
            ApiError::words(
                StatusCode::PAYLOAD_TOO_LARGE,
                Words::from(&AttachmentError::TooLarge {
                    size: MAX_BYTES as u64 + 1,
                }),
            )
        })?;
    let division =
        DivisionCode::parse(&state.node.division).map_err(|e| ApiError::invalid(e.to_string()))?;
    let (id, attachment) = state
        .store
        .publish_attachment(
            Scope::catalog(&division),
            query.name,
            content_type,
            bytes.to_vec(),
            state.clock.now_ms(),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(AttachmentView {
            id: id.to_string(),
            name: attachment.name,
            content_type: attachment.content_type.mime().to_string(),
            size: attachment.size,
            sha256: attachment.sha256,
        }),
    ))
}
