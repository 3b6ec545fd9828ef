//! `/api/v1/notices/{number}`: a sealed notice's content, digest and seal, at every node
//! that holds it (the station that issued it and every hall above, since notices travel
//! up with their cases), with whether its seal holds here.

use axum::Json;
use axum::extract::State;
use utoipa::ToSchema;
use yizhan_sync::ids::hex;

use super::ApiState;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Authenticated, Path};
use crate::notice::{self, QrSeal};
use yizhan_sync::domain::department::SealCheck;

/// A sealed notice as this node holds it.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct NoticeView {
    pub number: String,
    /// receipt, one_time, refusal, extension, suspension or decision.
    pub kind: String,
    pub case_id: String,
    /// The issuing node (32 hex digits) and its office name as sealed.
    pub node: String,
    pub office: String,
    /// When it was issued (RFC 3339, China Standard Time), as sealed.
    pub issued_at: String,
    /// SHA-256 digest of the canonical content (hex) and the issuing node's Ed25519 seal
    /// over number and digest (hex).
    pub digest: String,
    pub seal: String,
    /// Whether the seal holds here: the issuing node's key is known and not revoked, the
    /// signature holds (for a department's seal: by a key the issuing hall certified),
    /// and the content still hashes to the digest.
    pub valid: bool,
    /// The department whose approval seal (审批专用章, SZDB/Z 176 §9.6) the notice
    /// carries, when a department's seal signs it rather than the node's key.
    pub department: Option<DepartmentSealView>,
    /// The number of the notice it corrects, if any; and of the one correcting it.
    pub supersedes: Option<String>,
    pub superseded_by: Option<String>,
    /// The sealed content, every field as issued.
    #[schema(value_type = Object)]
    pub content: serde_json::Value,
}

/// A department's approval seal on a notice, as certified by its hall.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct DepartmentSealView {
    /// The department's code and name.
    pub code: String,
    pub name: String,
    /// The hall that certified the seal (32 hex digits) and the seal's key number.
    pub hall: String,
    pub key_no: u32,
    /// The seal's public key (hex).
    pub public_key: String,
    /// Whether the chain holds here: the notice's signature by the seal key, the key
    /// certified by the hall, the hall's key as this node's registry knows it.
    pub certified: bool,
}

/// Get a sealed notice
///
/// Any node holding the notice answers: the station that issued it and every hall above.
#[utoipa::path(get, path = "/api/v1/notices/{number}", tag = "cases",
    params(("number" = String, Path, description = "The notice number, e.g. TZ07070707E1-000001",
        max_length = 64, pattern = "^[A-Za-z0-9-]{1,64}$")),
    responses(
        (status = 200, body = NoticeView),
        (status = 404, body = ErrorBody, description = "No such notice here, or not a notice number"),
        (status = 401, body = ErrorBody)),
    security(("token" = [])))]
pub async fn show(
    State(state): State<ApiState>,
    _user: Authenticated,
    Path(number): Path<String>,
) -> ApiResult<Json<NoticeView>> {
    let not_found = || ApiError::not_found(format!("notice {number} not found"));
    yizhan_sync::domain::notice::doc_id(&number).ok_or_else(not_found)?;
    let stored = state
        .store
        .notice(number.clone())
        .await?
        .ok_or_else(not_found)?;
    let record = state.store.node_record(stored.content.node.clone()).await?;
    let seal = QrSeal {
        node: stored.content.node.clone(),
        number: stored.content.number.clone(),
        digest: stored.digest,
        signature: stored.signature,
    };
    let check = record.as_ref().map(|record| {
        if stored.content.seal.is_some() && !record.role.is_hall() {
            SealCheck::NotCertified
        } else {
            notice::seal_check(stored.content.seal.as_ref(), &seal, &record.public_key)
        }
    });
    let valid = record.as_ref().is_some_and(|r| r.revoked.is_none())
        && check == Some(SealCheck::Genuine)
        && stored.content.digest() == stored.digest;
    let department = stored.content.seal.as_ref().map(|s| DepartmentSealView {
        code: s.department.clone(),
        name: s.certificate.name.clone(),
        hall: s.certificate.hall.to_hex(),
        key_no: s.certificate.key_no,
        public_key: hex(&s.certificate.public_key),
        certified: check.is_some_and(|c| c != SealCheck::NotCertified),
    });
    let superseded_by = state
        .store
        .notices_of_case(stored.content.case_id.clone())
        .await?
        .into_iter()
        .find(|n| n.content.supersedes.as_deref() == Some(stored.content.number.as_str()))
        .map(|n| n.content.number);
    let content = serde_json::to_value(&stored.content)
        .map_err(|e| ApiError::from(crate::store::StoreError::Internal(e.to_string())))?;
    let c = stored.content;
    Ok(Json(NoticeView {
        number: c.number,
        kind: c.kind.as_str().to_string(),
        case_id: c.case_id,
        node: c.node,
        office: c.office,
        issued_at: c.issued_at,
        digest: hex(&stored.digest),
        seal: hex(&stored.signature),
        valid,
        department,
        supersedes: c.supersedes,
        superseded_by,
        content,
    }))
}
