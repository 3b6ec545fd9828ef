//! `/api/v1/supervision`: supervision notices (督办, §10.2) and the stations' replies. A
//! hall's supervisors and admins issue notices to the stations below; the station's lead
//! or admin replies; every node on the way sees both (`engine::may_supervise` decides).

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use utoipa::{IntoParams, ToSchema};
use yizhan_sync::domain::codes::DivisionCode;
use yizhan_sync::domain::supervision::ReplyState;
use yizhan_sync::ids::{DocId, DocKind};

use super::ApiState;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Authenticated, Body, Path, Query};
use crate::clock::rfc3339_cst;
use crate::i18n::Words;
use crate::store::{NewSupervision, Staff, SupervisionFilter, SupervisionView};

/// A supervision notice, with its replies and where it stands today.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct SupervisionNoticeView {
    pub id: String,
    /// The station supervised (its division code).
    pub station: String,
    /// The case it is about, if it is about one case.
    pub case_id: Option<String>,
    /// The hall that issued it (node id) and who.
    pub node: String,
    pub staff: String,
    pub issued_at: String,
    pub reason: String,
    pub todo: String,
    pub reply_days: u32,
    /// The last day to reply (YYYY-MM-DD), in working days on the station's calendar.
    pub due: String,
    /// open, overdue, answered_on_time or answered_late.
    pub state: String,
    /// `red` when unanswered past its deadline (escalated to the hall and the halls
    /// above), otherwise `normal`.
    pub level: String,
    pub replies: Vec<SupervisionReplyView>,
    /// For a notice about a case: the case's process step that is past its limit today
    /// (§9.2.2, §10.2), if one is.
    pub late_step: Option<LateStepView>,
}

/// A case's step past its limit (环节超期).
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct LateStepView {
    /// Counted from 1.
    pub number: u32,
    pub name: String,
    pub due: String,
    /// Working days past `due`, today, on the case's calendar.
    pub late_days: u32,
}

/// A station's reply.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct SupervisionReplyView {
    pub id: String,
    pub node: String,
    pub staff: String,
    pub replied_at: String,
    pub text: String,
}

/// The list.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct SupervisionList {
    pub notices: Vec<SupervisionNoticeView>,
}

/// A notice to issue.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueSupervision {
    /// The station's division code (12 digits), below this hall.
    pub station: String,
    /// A case of that station, if the notice is about one case.
    #[serde(default)]
    pub case_id: Option<String>,
    /// Why the hall supervises (1-2000 characters).
    pub reason: String,
    /// What the station is to do (1-2000 characters).
    pub todo: String,
    /// Working days to reply, counted from the day after issue.
    #[schema(minimum = 1, maximum = 60)]
    pub reply_days: u32,
}

/// A reply.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplySupervision {
    /// What was done (1-4000 characters).
    pub text: String,
}

/// Which notices.
#[derive(Debug, serde::Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListSupervisionQuery {
    /// open, overdue, answered_on_time or answered_late.
    pub state: Option<String>,
    /// Only notices about this case.
    pub case: Option<String>,
    /// At most this many, newest first, 1-500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

impl SupervisionNoticeView {
    fn of(v: SupervisionView) -> SupervisionNoticeView {
        SupervisionNoticeView {
            station: v.station.to_string(),
            case_id: v.notice.case.as_ref().map(DocId::to_string),
            node: v.notice.node.to_hex(),
            staff: v.notice.staff.clone(),
            issued_at: rfc3339_cst(v.notice.at.unix_ms() as i64),
            reason: v.notice.reason.clone(),
            todo: v.notice.todo.clone(),
            reply_days: v.notice.reply_days,
            due: v.due.to_string(),
            state: v.state.as_str().to_string(),
            level: if v.state == ReplyState::Overdue {
                "red"
            } else {
                "normal"
            }
            .to_string(),
            replies: v
                .replies
                .iter()
                .map(|r| SupervisionReplyView {
                    id: r.doc_id().to_string(),
                    node: r.node.to_hex(),
                    staff: r.staff.clone(),
                    replied_at: rfc3339_cst(r.at.unix_ms() as i64),
                    text: r.text.clone(),
                })
                .collect(),
            late_step: v.late_step.map(|s| LateStepView {
                number: s.number,
                name: s.name,
                due: s.due.to_string(),
                late_days: s.late_days,
            }),
            id: v.id,
        }
    }
}

fn staff_of(user: &Authenticated) -> Staff {
    Staff {
        username: user.0.username.clone(),
        counter: user.0.counter.clone(),
        role: user.0.role,
    }
}

fn bad(field: &str, detail: impl Into<String>) -> ApiError {
    ApiError::words(
        StatusCode::BAD_REQUEST,
        Words::new("bad_request").text("detail", format!("{field}: {}", detail.into())),
    )
}

/// List supervision notices
///
/// At a hall: the notices it and the halls below it issued to its stations; at a
/// station: those it received. Overdue ones are `red`.
#[utoipa::path(get, path = "/api/v1/supervision", tag = "supervision", params(ListSupervisionQuery),
    responses((status = 200, body = SupervisionList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("token" = [])))]
pub async fn index(
    State(state): State<ApiState>,
    _user: Authenticated,
    Query(q): Query<ListSupervisionQuery>,
) -> ApiResult<Json<SupervisionList>> {
    let filter = SupervisionFilter {
        case_id: q.case,
        state: match q.state.as_deref() {
            None => None,
            Some(s) => Some(ReplyState::parse(s).ok_or_else(|| bad("state", s))?),
        },
        unanswered: false,
    };
    let limit = super::extract::bounded("limit", q.limit.unwrap_or(100), 1, 500)?;
    let notices = state
        .store
        .supervision_list(filter, state.today(), limit as usize)
        .await?;
    Ok(Json(SupervisionList {
        notices: notices.into_iter().map(SupervisionNoticeView::of).collect(),
    }))
}

/// Issue a supervision notice (督办)
#[utoipa::path(post, path = "/api/v1/supervision", tag = "supervision", request_body = IssueSupervision,
    responses(
        (status = 201, body = SupervisionNoticeView, description = "Issued; it travels down to the station"),
        (status = 400, body = ErrorBody, description = "A text is empty, too long or holds control characters; reply days outside 1-60; not a division"),
        (status = 403, body = ErrorBody, description = "Not a supervisor or admin (supervision_supervisors_only), or the station is not below this hall (supervision_not_above)"),
        (status = 404, body = ErrorBody, description = "No such case of that station here"),
        (status = 422, body = ErrorBody, description = "The body does not read as a notice (an unknown field, a wrong type)"),
        (status = 401, body = ErrorBody)),
    security(("token" = [])))]
pub async fn create(
    State(state): State<ApiState>,
    user: Authenticated,
    Body(body): Body<IssueSupervision>,
) -> ApiResult<impl IntoResponse> {
    let station = DivisionCode::parse(&body.station).map_err(|e| bad("station", e.to_string()))?;
    let case = match body.case_id.as_deref() {
        None => None,
        Some(id) => Some(
            DocId::parse(id)
                .filter(|id| DocKind::of_id(id) == Some(DocKind::Case))
                .ok_or_else(|| ApiError::not_found(format!("case {id} not found")))?,
        ),
    };
    let view = state
        .store
        .issue_supervision(
            NewSupervision {
                station,
                case,
                reason: body.reason,
                todo: body.todo,
                reply_days: body.reply_days,
            },
            staff_of(&user),
            state.clock.now_ms(),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/v1/supervision/{}", view.id))],
        Json(SupervisionNoticeView::of(view)),
    ))
}

/// A supervision notice's id; anything else names none: 404.
fn notice_id(id: &str) -> ApiResult<DocId> {
    DocId::parse(id)
        .filter(|id| DocKind::of_id(id) == Some(DocKind::Supervision))
        .ok_or_else(|| ApiError::not_found(format!("supervision notice {id} not found")))
}

/// Get a supervision notice with its replies
#[utoipa::path(get, path = "/api/v1/supervision/{id}", tag = "supervision",
    params(("id" = String, Path, description = "The notice's id (s-…)")),
    responses((status = 200, body = SupervisionNoticeView), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("token" = [])))]
pub async fn show(
    State(state): State<ApiState>,
    _user: Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<SupervisionNoticeView>> {
    let id = notice_id(&id)?;
    let view = state
        .store
        .supervision_notice(id.to_string(), state.today())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("supervision notice {id} not found")))?;
    Ok(Json(SupervisionNoticeView::of(view)))
}

/// Reply to a supervision notice (the station)
#[utoipa::path(post, path = "/api/v1/supervision/{id}/replies", tag = "supervision",
    params(("id" = String, Path, description = "The notice's id (s-…)")),
    request_body = ReplySupervision,
    responses(
        (status = 201, body = SupervisionNoticeView, description = "Replied; the reply travels up to the halls"),
        (status = 400, body = ErrorBody, description = "The text is empty, too long or holds control characters"),
        (status = 403, body = ErrorBody, description = "Not the station's lead or admin (supervision_leads_reply), or not the station supervised (supervision_not_the_station)"),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "The body does not read as a reply (an unknown field, a wrong type)"),
        (status = 401, body = ErrorBody)),
    security(("token" = [])))]
pub async fn reply(
    State(state): State<ApiState>,
    user: Authenticated,
    Path(id): Path<String>,
    Body(body): Body<ReplySupervision>,
) -> ApiResult<impl IntoResponse> {
    let id = notice_id(&id)?;
    let view = state
        .store
        .reply_supervision(
            id.to_string(),
            body.text,
            staff_of(&user),
            state.clock.now_ms(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(SupervisionNoticeView::of(view))))
}
