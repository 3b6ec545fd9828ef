//! `/api/v1/cases`: receiving applications and recording what happens to them.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use utoipa::{IntoParams, ToSchema};
use yizhan_sync::domain::calendar::{Date, WarningLevel};
use yizhan_sync::domain::case::{
    Action, Agent, Applicant, MaterialReceived, MissingMaterial, NewCase, Phone, Status,
};
use yizhan_sync::domain::codes::{CreditCode, ImplCode, ResidentId};
use yizhan_sync::domain::item::CaseType;
use yizhan_sync::domain::serial::SerialNo;
use yizhan_sync::ids::DocId;

use super::ApiState;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Authenticated, Body, Path, Query};
use crate::clock::rfc3339_cst;
use crate::i18n::Words;
use crate::notice::NoticeKind;
use crate::store::{
    CaseDetail, CaseFilter, CaseSearch, CaseSummary, EventView, Issuer, NewAction, Order, Staff,
};

/// An application received at the counter (收件).
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCase {
    /// The item: its id or its implementation code (实施编码).
    pub item: String,
    pub applicant: ApplicantInput,
    /// Someone applying on the applicant's behalf.
    pub agent: Option<AgentInput>,
    /// Materials handed in, by the names the item lists.
    #[serde(default)]
    pub materials: Vec<MaterialInput>,
    /// Counter (窗口); defaults to the user's counter.
    pub counter: Option<String>,
    #[serde(default)]
    pub note: String,
    /// The item's situations (情形) the applicant is in, by name; the materials are
    /// checked against theirs.
    #[serde(default)]
    pub situations: Vec<String>,
}

#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ApplicantInput {
    /// A natural person, identified by the resident identity number.
    NaturalPerson {
        name: String,
        id_number: String,
        phone: String,
    },
    /// A legal person or other organisation, identified by its unified social credit code.
    LegalPerson {
        name: String,
        credit_code: String,
        contact_name: String,
        phone: String,
    },
}

#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentInput {
    pub name: String,
    pub id_number: String,
    pub phone: String,
}

#[derive(Debug, Clone, serde::Deserialize, serde::Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MaterialInput {
    pub name: String,
    #[serde(default)]
    pub originals: u32,
    #[serde(default)]
    pub copies: u32,
}

/// A field's value, or what is wrong with it in the caller's language (its code says
/// which rule it breaks; `field` names the field).
fn field<T, E>(name: &'static str, result: Result<T, E>) -> ApiResult<T>
where
    for<'e> &'e E: Into<Words>,
{
    result.map_err(|e| {
        ApiError::words(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            (&e).into().text("field", name),
        )
    })
}

impl CreateCase {
    fn into_domain(self, default_counter: &str) -> ApiResult<(String, NewCase)> {
        let applicant = match self.applicant {
            ApplicantInput::NaturalPerson {
                name,
                id_number,
                phone,
            } => Applicant::NaturalPerson {
                name: name.trim().to_string(),
                id_number: field("applicant.id_number", ResidentId::parse(id_number.trim()))?,
                phone: field("applicant.phone", Phone::parse(&phone))?,
            },
            ApplicantInput::LegalPerson {
                name,
                credit_code,
                contact_name,
                phone,
            } => Applicant::LegalPerson {
                name: name.trim().to_string(),
                credit_code: field(
                    "applicant.credit_code",
                    CreditCode::parse(credit_code.trim()),
                )?,
                contact_name: contact_name.trim().to_string(),
                phone: field("applicant.phone", Phone::parse(&phone))?,
            },
        };
        let agent = match self.agent {
            Some(a) => Some(Agent {
                name: a.name.trim().to_string(),
                id_number: field("agent.id_number", ResidentId::parse(a.id_number.trim()))?,
                phone: field("agent.phone", Phone::parse(&a.phone))?,
            }),
            None => None,
        };
        let new = NewCase {
            situations: self.situations,
            applicant,
            agent,
            materials: self.materials.into_iter().map(material).collect(),
            counter: self.counter.unwrap_or_else(|| default_counter.to_string()),
            note: self.note,
        };
        Ok((self.item, new))
    }
}

fn material(m: MaterialInput) -> MaterialReceived {
    MaterialReceived {
        name: m.name,
        originals: m.originals,
        copies: m.copies,
    }
}

fn staff_of(user: &Authenticated) -> Staff {
    Staff {
        username: user.0.username.clone(),
        counter: user.0.counter.clone(),
        role: user.0.role,
    }
}

/// Receive an application (收件)
#[utoipa::path(post, path = "/api/v1/cases", tag = "cases", request_body = CreateCase,
    responses(
        (status = 201, body = CaseView, description = "Received; Location names the new case"),
        (status = 404, body = ErrorBody, description = "Unknown item"),
        (status = 422, body = ErrorBody, description = "A field is invalid, e.g. an identity number's check digit"),
        (status = 401, body = ErrorBody)),
    security(("token" = [])))]
pub async fn create(
    State(state): State<ApiState>,
    user: Authenticated,
    Body(body): Body<CreateCase>,
) -> ApiResult<impl IntoResponse> {
    let (item, new) = body.into_domain(&user.0.counter)?;
    let id = state
        .store
        .create_case(item, new, staff_of(&user), state.clock.now_ms())
        .await?;
    let detail = state.store.get_case(id.to_string(), state.today()).await?;
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, format!("/api/v1/cases/{id}"))],
        Json(CaseView::of(detail, &state, &user).await?),
    ))
}

/// Something done to a case, validated by the state machine.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum EventInput {
    /// 一次性告知: tell the applicant, at once, every missing material and why.
    NotifyMissing {
        missing: Vec<MissingInput>,
        #[serde(default)]
        note: String,
    },
    /// 补正: materials handed in later.
    Supplement { materials: Vec<MaterialInput> },
    /// 受理: the node issues the serial number. For an instant item (即办件), `complete`
    /// records the result in the same step.
    Accept { complete: Option<CompleteInput> },
    /// 不予受理: reason, legal basis and remedies are all required.
    Refuse {
        reason: String,
        basis: String,
        remedies: String,
        /// Where to apply instead, when the application is outside this office's competence.
        competent_authority: Option<String>,
    },
    /// 特别程序开始: stops the clock.
    Suspend { procedure: String, reason: String },
    /// 特别程序结束: the clock runs again.
    Resume {
        #[serde(default)]
        note: String,
    },
    /// 延期: adds working days to both limits, within what the law allows. A lead's act
    /// (行政许可法 §42); `request` names the worker's request it approves.
    Extend {
        days: u32,
        reason: String,
        #[serde(default)]
        request: Option<String>,
    },
    /// 延期申请: a worker asks a lead to extend the limits.
    RequestExtension { days: u32, reason: String },
    /// A lead declines the pending extension request.
    DeclineExtension { reason: String },
    /// 决定: approval, or denial with reason, basis and remedies.
    Decide {
        approved: bool,
        #[serde(default)]
        reason: String,
        #[serde(default)]
        basis: String,
        #[serde(default)]
        remedies: String,
    },
    /// 办结: the result and how it was delivered.
    Complete { result: String, delivery: String },
    /// 撤回 at the applicant's request.
    Withdraw { reason: String },
    /// 转办 (§5.5.4): hand the case to another office (a department or a higher hall).
    Transfer {
        to: String,
        reason: String,
        /// The hall node's id (32 hex digits) when the case goes to a hall node.
        #[serde(default)]
        #[schema(value_type = Option<String>)]
        to_node: Option<yizhan_sync::ids::NodeId>,
    },
    /// 签收: the receiving office takes a transferred case in.
    SignFor {
        #[serde(default)]
        note: String,
    },
    /// 好差评, entered on the applicant's behalf (e.g. from a counter rating device).
    Rate {
        level: u8,
        #[serde(default)]
        comment: String,
    },
    /// 整改: the written response that closes a bad rating's rectification.
    Rectify { response: String },
    /// A lead's resolution of a conflict: the ids of the events decided against (one
    /// side of every conflict) and the reason. The node records the sides kept.
    Resolve { void: Vec<String>, reason: String },
    /// 环节办结 (§9.2.2): the step the case is in (`current_step`, counted from 1) is
    /// finished; the next starts today. Recorded where the case lies.
    FinishStep {
        step: u32,
        #[serde(default)]
        note: String,
    },
    /// 收费 (§9.5.2): a fee line of the item paid, in fen, how (cash, card, mobile or
    /// bank_transfer) and the receipt's number; as `POST /api/v1/cases/{id}/fees`.
    Pay {
        fee: String,
        amount_fen: u64,
        #[schema(value_type = String, example = "cash")]
        method: yizhan_sync::domain::fee::PayMethod,
        receipt: String,
    },
    /// 减免: part or all of a fee line waived, with the reason and the policy.
    Exempt {
        fee: String,
        amount_fen: u64,
        reason: String,
        basis: String,
    },
}

#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MissingInput {
    pub name: String,
    pub reason: String,
}

#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteInput {
    pub result: String,
    pub delivery: String,
}

impl EventInput {
    fn into_actions(self, rectify_days: u32) -> Vec<NewAction> {
        let one = |action| vec![NewAction::Do(action)];
        match self {
            EventInput::NotifyMissing { missing, note } => one(Action::NotifyMissing {
                missing: missing
                    .into_iter()
                    .map(|m| MissingMaterial {
                        name: m.name,
                        reason: m.reason,
                    })
                    .collect(),
                note,
            }),
            EventInput::Supplement { materials } => one(Action::Supplement {
                materials: materials.into_iter().map(material).collect(),
            }),
            EventInput::Accept { complete: None } => vec![NewAction::Accept],
            EventInput::Accept { complete: Some(c) } => vec![
                NewAction::Accept,
                NewAction::Do(Action::Complete {
                    result: c.result,
                    delivery: c.delivery,
                }),
            ],
            EventInput::Refuse {
                reason,
                basis,
                remedies,
                competent_authority,
            } => one(Action::Refuse {
                reason,
                basis,
                remedies,
                competent_authority,
            }),
            EventInput::Suspend { procedure, reason } => one(Action::Suspend { procedure, reason }),
            EventInput::Resume { note } => one(Action::Resume { note }),
            EventInput::Extend {
                days,
                reason,
                request,
            } => one(Action::Extend {
                days,
                reason,
                request,
            }),
            EventInput::RequestExtension { days, reason } => {
                one(Action::RequestExtension { days, reason })
            }
            EventInput::DeclineExtension { reason } => one(Action::DeclineExtension { reason }),
            EventInput::Decide {
                approved,
                reason,
                basis,
                remedies,
            } => one(Action::Decide {
                approved,
                reason,
                basis,
                remedies,
                // The engine fills it in for a case lying with a department without a node.
                on_behalf_of: None,
            }),
            EventInput::Complete { result, delivery } => one(Action::Complete { result, delivery }),
            EventInput::Withdraw { reason } => one(Action::Withdraw { reason }),
            EventInput::Transfer {
                to,
                reason,
                to_node,
            } => one(Action::Transfer {
                to,
                reason,
                to_node,
            }),
            EventInput::SignFor { note } => one(Action::SignFor {
                note,
                on_behalf_of: None,
            }),
            EventInput::Rate { level, comment } => one(Action::Rate {
                level,
                comment,
                rectify_days,
            }),
            EventInput::Rectify { response } => one(Action::Rectify { response }),
            EventInput::FinishStep { step, note } => one(Action::FinishStep { step, note }),
            EventInput::Resolve { void, reason } => one(Action::Resolve {
                void,
                reason,
                keep: Vec::new(),
            }),
            EventInput::Pay {
                fee,
                amount_fen,
                method,
                receipt,
            } => one(Action::Pay {
                fee,
                amount_fen,
                method,
                receipt,
            }),
            EventInput::Exempt {
                fee,
                amount_fen,
                reason,
                basis,
            } => one(Action::Exempt {
                fee,
                amount_fen,
                reason,
                basis,
            }),
        }
    }
}

/// A case's document id; anything else (an item's or a registry's id, or no id at all)
/// names no case: 404.
pub(super) fn case_id(id: &str) -> ApiResult<DocId> {
    DocId::parse(id)
        .filter(|id| yizhan_sync::effect::kind_of_id(id) == Some(yizhan_sync::ids::DocKind::Case))
        .ok_or_else(|| ApiError::not_found(format!("case {id} not found")))
}

/// Record an event on a case
#[utoipa::path(post, path = "/api/v1/cases/{id}/events", tag = "cases", request_body = EventInput,
    params(("id" = String, Path, description = "Case id")),
    responses(
        (status = 200, body = CaseView, description = "Recorded; the case as it is now"),
        (status = 403, body = ErrorBody, description = "Not this token's to do: a lead's act (leads_only), another office's (not_this_nodes)"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Not allowed in the case's status"),
        (status = 422, body = ErrorBody, description = "Missing reason, materials missing, …"),
        (status = 401, body = ErrorBody)),
    security(("token" = [])))]
pub async fn add_event(
    State(state): State<ApiState>,
    user: Authenticated,
    Path(id): Path<String>,
    Body(body): Body<EventInput>,
) -> ApiResult<Json<CaseView>> {
    let id = case_id(&id)?;
    if let EventInput::Accept { complete: Some(_) } = &body {
        let current = state.store.get_case(id.to_string(), state.today()).await?;
        if current.intake.item.case_type != CaseType::Instant {
            return Err(ApiError::words(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                Words::new("instant_only"),
            ));
        }
    }
    // What the applicant is told in writing gets its sealed notice, as at the counter:
    // the receipt of an acceptance, the one-time notice, the refusal, and the notices of
    // an extension or a special procedure (行政许可法 §32, §42, §45).
    let notice = match &body {
        EventInput::Accept { .. } => Some(NoticeKind::Receipt),
        EventInput::NotifyMissing { .. } => Some(NoticeKind::OneTime),
        EventInput::Refuse { .. } => Some(NoticeKind::Refusal),
        EventInput::Extend { .. } => Some(NoticeKind::Extension),
        EventInput::Suspend { .. } => Some(NoticeKind::Suspension),
        _ => None,
    };
    let decides = matches!(body, EventInput::Decide { .. });
    state
        .store
        .act_on_case(
            id.clone(),
            body.into_actions(state.rectify_days),
            staff_of(&user),
            state.clock.now_ms(),
        )
        .await?;
    let issuer = Issuer {
        office: state.node.name.clone(),
        counter: user.0.counter.clone(),
        staff: user.0.display_name.clone(),
    };
    if let Some(kind) = notice {
        state
            .store
            .issue_case_notice(issuer, id.clone(), kind, None, state.clock.now_ms())
            .await?;
    } else if decides {
        // The deciding department's decision notice, under its seal (§9.6).
        state
            .store
            .issue_decision_notice(issuer, id.clone(), state.clock.now_ms())
            .await?;
    }
    let detail = state.store.get_case(id.to_string(), state.today()).await?;
    Ok(Json(CaseView::of(detail, &state, &user).await?))
}

/// Get a case
#[utoipa::path(get, path = "/api/v1/cases/{id}", tag = "cases",
    params(("id" = String, Path, description = "Case id")),
    responses((status = 200, body = CaseView), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("token" = [])))]
pub async fn show(
    State(state): State<ApiState>,
    user: Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<CaseView>> {
    let id = case_id(&id)?;
    let detail = state.store.get_case(id.to_string(), state.today()).await?;
    Ok(Json(CaseView::of(detail, &state, &user).await?))
}

/// Get a case by its serial number (统一业务流水号)
#[utoipa::path(get, path = "/api/v1/cases/by-serial/{serial}", tag = "cases",
    params(("serial" = String, Path, description = "Serial number: 50 characters (52 for numbers issued before node segments were given out by halls)")),
    responses((status = 200, body = CaseView), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("token" = [])))]
pub async fn by_serial(
    State(state): State<ApiState>,
    user: Authenticated,
    Path(serial): Path<String>,
) -> ApiResult<Json<CaseView>> {
    let serial = SerialNo::parse(&serial)
        .map_err(|e| ApiError::words(StatusCode::BAD_REQUEST, Words::new(e.code())))?;
    let detail = state
        .store
        .get_case_by_serial(serial, state.today())
        .await?;
    Ok(Json(CaseView::of(detail, &state, &user).await?))
}

#[derive(Debug, serde::Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListCasesQuery {
    /// submitted, awaiting_supplement, accepted, suspended, decided, completed, refused or withdrawn.
    pub status: Option<String>,
    /// normal, yellow, red or legal_breach (open cases only). Lists sorted by urgency.
    pub level: Option<String>,
    /// Implementation code of the item.
    pub item: Option<String>,
    pub counter: Option<String>,
    /// At a hall: only the cases of this station (its 12-digit division code) or of this
    /// sub-district and its stations (9 digits).
    #[param(pattern = "^[0-9]{6,12}$")]
    pub station: Option<String>,
    /// Only the cases sent (转办) to this department, by the name the transfer gave.
    #[param(max_length = 60)]
    pub department: Option<String>,
    /// Received on or after this date (YYYY-MM-DD).
    pub from: Option<String>,
    /// Received on or before this date (YYYY-MM-DD).
    pub to: Option<String>,
    /// Only cases with conflicting concurrent events.
    pub conflict: Option<bool>,
    /// Only open cases (在办: received, awaiting materials, accepted, suspended, decided),
    /// soonest committed deadline first (cases not yet accepted last).
    pub open: Option<bool>,
    /// Find cases by serial number (or its last characters), applicant name, identity
    /// number or credit code, phone number (or its last four digits), or the applicant's
    /// query code.
    pub q: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1-200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

#[derive(Debug, serde::Serialize, ToSchema)]
pub struct CaseList {
    pub cases: Vec<CaseListEntry>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A case in a list; identity numbers are masked.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct CaseListEntry {
    pub id: String,
    pub serial_no: Option<String>,
    pub status: String,
    pub conflict: bool,
    pub item_impl_code: String,
    pub item_name: String,
    pub applicant_name: String,
    pub applicant_id_masked: String,
    pub counter: String,
    pub staff: String,
    pub created_at: String,
    pub accepted_on: Option<String>,
    pub committed_due: Option<String>,
    pub legal_due: Option<String>,
    /// normal, yellow, red or legal_breach today; absent when no limit runs.
    pub warning_level: Option<String>,
    pub clock_stopped_on: Option<String>,
    pub closed_on: Option<String>,
    /// The station that holds the case: the node of its division.
    pub station: StationRef,
    /// The process step the open case is in (§9.2.2), when its item lists steps.
    pub step: Option<StepSummaryView>,
}

/// The step a listed case is in: its number (from 1) and name, its deadline, and its
/// warning today (normal, yellow or red; absent when it has no limit of its own).
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct StepSummaryView {
    pub number: u32,
    pub name: String,
    pub due: Option<String>,
    pub warning_level: Option<String>,
}

/// A station (or any node below a hall) as lists name it.
#[derive(Clone, Debug, serde::Serialize, ToSchema)]
pub struct StationRef {
    /// The node id (32 hex digits); empty when no registry here names the division's node.
    pub node: String,
    pub name: String,
    /// Its division code (12 digits for a station).
    pub division: String,
}

impl CaseListEntry {
    /// The entry of a listed case, its station named from `stations` (by division).
    fn of(s: CaseSummary, stations: &std::collections::HashMap<String, StationRef>) -> Self {
        let division = s.division.clone().unwrap_or_default();
        let station = stations.get(&division).cloned().unwrap_or(StationRef {
            node: String::new(),
            name: division.clone(),
            division,
        });
        CaseListEntry {
            station,
            ..CaseListEntry::from(s)
        }
    }
}

impl From<CaseSummary> for CaseListEntry {
    fn from(s: CaseSummary) -> Self {
        CaseListEntry {
            station: StationRef {
                node: String::new(),
                name: String::new(),
                division: s.division.clone().unwrap_or_default(),
            },
            id: s.id,
            serial_no: s.serial_no,
            status: s.status.as_str().into(),
            conflict: s.conflict,
            item_impl_code: s.impl_code,
            item_name: s.item_name,
            applicant_name: s.applicant_name,
            applicant_id_masked: s.applicant_id_masked,
            counter: s.counter,
            staff: s.staff,
            created_at: rfc3339_cst(s.created_ms),
            accepted_on: s.accepted_on,
            committed_due: s.committed_due,
            legal_due: s.legal_due,
            warning_level: s.level.map(|l| l.as_str().into()),
            clock_stopped_on: s.clock_stopped_on,
            closed_on: s.closed_on,
            step: s.step.map(|step| StepSummaryView {
                number: step.number,
                name: step.name,
                due: step.due,
                warning_level: step.level.map(|l| l.as_str().into()),
            }),
        }
    }
}

/// A query parameter that does not parse, named with its value.
fn bad_parameter(name: &'static str, value: &str) -> ApiError {
    ApiError::words(
        StatusCode::BAD_REQUEST,
        Words::new("bad_parameter")
            .text("name", name)
            .text("value", value.chars().take(80).collect::<String>()),
    )
}

fn parse_date(name: &'static str, value: Option<String>) -> ApiResult<Option<Date>> {
    value
        .map(|v| v.parse::<Date>().map_err(|_| bad_parameter(name, &v)))
        .transpose()
}

/// List cases
#[utoipa::path(get, path = "/api/v1/cases", tag = "cases", params(ListCasesQuery),
    responses((status = 200, body = CaseList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("token" = [])))]
pub async fn index(
    State(state): State<ApiState>,
    _user: Authenticated,
    Query(q): Query<ListCasesQuery>,
) -> ApiResult<Json<CaseList>> {
    let status = q
        .status
        .map(|s| Status::parse(&s).ok_or_else(|| bad_parameter("status", &s)))
        .transpose()?;
    let level = q
        .level
        .map(|l| WarningLevel::parse(&l).ok_or_else(|| bad_parameter("level", &l)))
        .transpose()?;
    let impl_code = q
        .item
        .map(|c| ImplCode::parse(&c).map_err(|_| bad_parameter("item", &c)))
        .transpose()?;
    let division = q
        .station
        .map(|d| {
            yizhan_sync::domain::codes::DivisionCode::parse(&d)
                .map_err(|_| bad_parameter("station", &d))
        })
        .transpose()?;
    if q.department
        .as_ref()
        .is_some_and(|d| d.chars().count() > 60)
    {
        return Err(bad_parameter(
            "department",
            q.department.as_deref().unwrap_or(""),
        ));
    }
    let page = state
        .store
        .list_cases(CaseFilter {
            status,
            level,
            impl_code,
            counter: q.counter,
            division,
            holder: q.department,
            created_from: parse_date("from", q.from)?,
            created_to: parse_date("to", q.to)?,
            conflict_only: q.conflict.unwrap_or(false),
            open_only: q.open.unwrap_or(false),
            search: q.q.as_deref().and_then(CaseSearch::parse),
            // Open cases come soonest deadline first unless a level says otherwise.
            order: (q.open == Some(true) && level.is_none()).then_some(Order::Deadline),
            cursor: q.cursor,
            limit: super::extract::bounded("limit", q.limit.unwrap_or(50), 1, 200)?,
            today: state.today(),
        })
        .await?;
    let stations = super::stations::station_refs(&state).await?;
    Ok(Json(CaseList {
        cases: page
            .cases
            .into_iter()
            .map(|c| CaseListEntry::of(c, &stations))
            .collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Everything about a case, for signed-in staff (full identity numbers included).
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct CaseView {
    pub id: String,
    pub serial_no: Option<String>,
    pub status: String,
    /// Concurrent incompatible events wait for a lead to resolve them.
    pub conflict: bool,
    pub item: CaseItemView,
    pub applicant: serde_json::Value,
    pub agent: Option<serde_json::Value>,
    pub counter: String,
    pub staff: String,
    pub created_at: String,
    pub accepted_on: Option<String>,
    pub committed_due: Option<String>,
    pub legal_due: Option<String>,
    pub warning_level: Option<String>,
    /// While suspended, the day the clock stopped.
    pub clock_stopped_on: Option<String>,
    pub closed_on: Option<String>,
    /// Which calendar the deadlines count on.
    pub calendar: Option<String>,
    /// False when a deadline lies beyond the years the calendar covers.
    pub calendar_covered: bool,
    /// The item's situations (情形) chosen at intake; the materials are theirs.
    pub situations: Vec<String>,
    pub materials_received: Vec<MaterialInput>,
    pub materials_missing: Vec<ShortfallView>,
    /// The office the case was last transferred to (转办); none while it stays here.
    pub holder: Option<String>,
    /// The hall node it went to, if a node (32 hex digits), and the day it signed for it.
    pub holder_node: Option<String>,
    pub signed_on: Option<String>,
    /// The department that delegated accepting the item to this office (§5.5.2).
    pub delegated_by: Option<String>,
    /// The department that decides the case (§5.7.2), as frozen at intake: its code,
    /// name and hall node; only its members at that hall record the decision.
    pub decided_by: Option<DeciderView>,
    /// The decision: approved or not, once decided (a combined case's: approved only
    /// when every part is, 行政许可法 §26).
    pub decision: Option<bool>,
    /// 并联审批 (SZDB/Z 176 §7.5): a combined case's parts, one per department, with
    /// their sub-cases as this node holds them; the case is decided only when all are.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<PartOut>,
    /// A sub-case's parent (the case the applicant sees) and its part.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part_of: Option<PartOfOut>,
    /// 好差评: 1 (非常不满意) to 5 (非常满意), once completed and rated.
    pub rating: Option<u8>,
    /// The rectification a bad rating opened: its deadline and the day it was closed.
    pub rectify_due: Option<String>,
    pub rectified_on: Option<String>,
    pub note: String,
    pub events: Vec<EventOut>,
    /// The applicant's query code (查询码), printed on the notices: with the phone's last
    /// four digits it finds the case on `/status`.
    pub query_code: String,
    /// What the token's user may record on the case now (the engine's rule): exactly the
    /// `kind`s `POST /api/v1/cases/{id}/events` accepts from them.
    pub allowed_actions: Vec<String>,
    /// The numbers of the case's sealed notices this node holds, oldest first
    /// (`GET /api/v1/notices/{number}`).
    pub notices: Vec<String>,
    /// The item's process steps as the case ran them (§9.2.2), on the case's calendar
    /// today; empty when the item version lists none.
    pub steps: Vec<StepView>,
    /// The step the case is in now (counted from 1), if one is under way: the `step` a
    /// `finish_step` event names.
    pub current_step: Option<u32>,
    /// The item version's fee lines with what was paid and waived (§9.5).
    pub fees: super::fees::CaseFeesView,
}

/// A process step of a case (环节, SZDB/Z 176 §9.2.2): its limit and post as the item
/// version the case froze lists them, when it ran, and how it stands against its limit
/// (the warning rule of the case's own, §10.2).
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct StepView {
    /// Counted from 1.
    pub number: u32,
    pub name: String,
    /// 责任岗位.
    pub post: Option<String>,
    /// Its own limit in working days (环节时限), if it has one.
    pub days: Option<u32>,
    pub started_on: Option<String>,
    pub finished_on: Option<String>,
    /// Who finished it and at which node (32 hex digits).
    pub finished_by: Option<String>,
    pub finished_node: Option<String>,
    /// Its deadline, once started, when it has a limit.
    pub due: Option<String>,
    /// Whether the case is in this step now.
    pub current: bool,
    /// The current step's warning today: normal, yellow or red; absent for the others
    /// and for steps without a limit.
    pub warning_level: Option<String>,
    /// Working days past its deadline: today while it runs, at its end once finished.
    pub late_days: u32,
}

impl From<yizhan_sync::domain::case::StepTime> for StepView {
    fn from(s: yizhan_sync::domain::case::StepTime) -> Self {
        StepView {
            number: s.number,
            name: s.rule.name,
            post: s.rule.post,
            days: s.rule.days,
            started_on: s.started_on.map(|d| d.to_string()),
            finished_on: s.finished.as_ref().map(|f| f.on.to_string()),
            finished_by: s.finished.as_ref().map(|f| f.staff.clone()),
            finished_node: s.finished.as_ref().map(|f| f.node.to_hex()),
            due: s.deadline.map(|d| d.due.to_string()),
            current: s.current,
            warning_level: (s.current && s.deadline.is_some())
                .then(|| s.level.as_str().to_string()),
            late_days: s.late_days,
        }
    }
}

/// A part of a combined case.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct PartOut {
    pub index: u32,
    /// What the part decides.
    pub name: String,
    /// The deciding department's code and name.
    pub department_code: String,
    pub department: String,
    /// The part's limit in working days.
    pub limit_days: u32,
    /// Its sub-case (`GET /api/v1/cases/{id}`), once this node holds it.
    pub case_id: Option<String>,
    /// The sub-case's status, once held.
    pub status: Option<String>,
    pub decision: Option<bool>,
    pub legal_due: Option<String>,
}

/// What binds a sub-case to its parent.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct PartOfOut {
    pub parent: String,
    pub index: u32,
}

/// The department that decides a case.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct DeciderView {
    pub code: String,
    pub name: String,
    /// The hall node where it works (32 hex digits).
    pub hall: String,
}

/// The item as frozen into the case at submission.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct CaseItemView {
    pub impl_code: String,
    pub name: String,
    pub version: u32,
    pub case_type: String,
    pub committed_limit_days: u32,
    pub legal_limit_days: u32,
}

#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ShortfallView {
    pub name: String,
    pub originals_needed: u32,
    pub copies_needed: u32,
    pub originals_received: u32,
    pub copies_received: u32,
}

#[derive(Debug, serde::Serialize, ToSchema)]
pub struct EventOut {
    pub id: String,
    pub at: String,
    pub node: String,
    pub staff: String,
    /// Whom `staff` acted for as their stand-in (B角, SZDB/Z 176 §7.4.1.3), if anyone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stand_in_for: Option<String>,
    pub kind: String,
    /// The event's fields (reason, serial number, materials, …).
    pub details: serde_json::Value,
    /// The event did not apply where it fell in the merged order.
    pub conflict: bool,
    /// A lead's resolution voided it; it stays on record without effect.
    pub voided: bool,
}

impl From<EventView> for EventOut {
    fn from(e: EventView) -> Self {
        let mut details = serde_json::to_value(&e.action).unwrap_or_default();
        let kind = details
            .get("kind")
            .and_then(|k| k.as_str())
            .unwrap_or_default()
            .to_string();
        if let Some(map) = details.as_object_mut() {
            map.remove("kind");
        }
        EventOut {
            id: e.id,
            at: rfc3339_cst(e.at_ms),
            node: e.node,
            staff: e.staff,
            stand_in_for: e.stand_in_for,
            kind,
            details,
            conflict: e.conflict,
            voided: e.voided,
        }
    }
}

impl CaseView {
    /// The case as `user` sees it at this node, with its notices.
    async fn of(d: CaseDetail, state: &ApiState, user: &Authenticated) -> ApiResult<CaseView> {
        let person = state.store.person(staff_of(user)).await?;
        let allowed = d.allowed_actions(state.store.own_record(), person);
        let notices = state.store.notices_of_case(d.summary.id.clone()).await?;
        // The steps' deadlines count on the case's calendar, as its own limits do.
        let calendar = state.store.calendar_for(&d.division);
        let steps = d.state.step_times(&d.intake, &calendar, state.today());
        Ok(CaseView {
            allowed_actions: allowed.iter().map(|k| k.as_str().to_string()).collect(),
            notices: notices.into_iter().map(|n| n.content.number).collect(),
            current_step: d.state.current_step(),
            steps: steps.into_iter().map(StepView::from).collect(),
            ..CaseView::from(d)
        })
    }
}

impl From<CaseDetail> for CaseView {
    fn from(d: CaseDetail) -> Self {
        let query_code = d.query_code();
        let intake = d.intake;
        let s = d.summary;
        let item = &intake.item;
        CaseView {
            id: s.id,
            serial_no: s.serial_no,
            // The derived state's: a combined case's is the whole's, with its parts.
            status: d.state.status.as_str().into(),
            conflict: s.conflict,
            item: CaseItemView {
                impl_code: item.impl_code.to_string(),
                name: item.name.clone(),
                version: item.version,
                case_type: s.case_type,
                committed_limit_days: item.committed_limit_days,
                legal_limit_days: item.legal_limit_days,
            },
            applicant: serde_json::to_value(&intake.applicant).unwrap_or_default(),
            agent: intake
                .agent
                .as_ref()
                .and_then(|a| serde_json::to_value(a).ok()),
            counter: s.counter,
            staff: s.staff,
            created_at: rfc3339_cst(s.created_ms),
            accepted_on: s.accepted_on,
            committed_due: s.committed_due,
            legal_due: s.legal_due,
            warning_level: s.level.map(|l| l.as_str().into()),
            clock_stopped_on: s.clock_stopped_on,
            closed_on: s.closed_on,
            calendar: d.calendar,
            calendar_covered: d.calendar_covered,
            situations: intake.situations.clone(),
            materials_received: d
                .received
                .into_iter()
                .map(|m| MaterialInput {
                    name: m.name,
                    originals: m.originals,
                    copies: m.copies,
                })
                .collect(),
            holder: d.state.holder.clone(),
            holder_node: d.state.holder_node.map(|n| n.to_hex()),
            signed_on: d.state.signed_for.as_ref().map(|s| s.on.to_string()),
            delegated_by: intake.item.delegated_by.clone(),
            decided_by: intake.item.decided_by.as_ref().map(|d| DeciderView {
                code: d.code.clone(),
                name: d.name.clone(),
                hall: d.hall.to_hex(),
            }),
            decision: d.state.decision,
            parts: d
                .parts
                .into_iter()
                .map(|p| PartOut {
                    index: p.index,
                    name: p.name,
                    department_code: p.department_code,
                    department: p.department,
                    limit_days: p.limit_days,
                    case_id: p.case_id,
                    status: p.status.map(|s| s.as_str().to_string()),
                    decision: p.decision,
                    legal_due: p.legal_due,
                })
                .collect(),
            part_of: intake.part_of.as_ref().map(|p| PartOfOut {
                parent: p.parent.clone(),
                index: p.index,
            }),
            rating: d.state.rating.as_ref().map(|r| r.level),
            rectify_due: d.rectify_due,
            rectified_on: d
                .state
                .rectification
                .as_ref()
                .and_then(|r| r.closed_on)
                .map(|d| d.to_string()),
            materials_missing: d
                .missing
                .into_iter()
                .map(|m| ShortfallView {
                    name: m.name,
                    originals_needed: m.originals_needed,
                    copies_needed: m.copies_needed,
                    originals_received: m.originals_received,
                    copies_received: m.copies_received,
                })
                .collect(),
            note: intake.note.clone(),
            events: d.events.into_iter().map(Into::into).collect(),
            query_code,
            allowed_actions: Vec::new(),
            notices: Vec::new(),
            steps: Vec::new(),
            current_step: None,
            fees: super::fees::CaseFeesView::of(&d.state.fees),
        }
    }
}
