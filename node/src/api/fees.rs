//! `/api/v1/cases/{id}/fees` and `/api/v1/fees`: a case's fees (SZDB/Z 176 §9.5) — the
//! item's fee lines with what was paid, on which receipt, and what was waived — and the
//! month's fee figures by item. Recording goes through the engine like every case action
//! (`domain::fee` holds the rules), so a payment here and one sent as an event of kind
//! `pay` to `/api/v1/cases/{id}/events` are the same act.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa::{IntoParams, ToSchema};
use yizhan_sync::domain::case::Action;
use yizhan_sync::domain::fee::{CaseFees, LineFees, PayMethod};

use super::ApiState;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Authenticated, Body, Path, Query};
use crate::i18n::Words;
use crate::store::{FeeFigures, Month, NewAction, Staff};

/// A payment or an exemption to record on a case.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum FeeInput {
    /// 收费: one of the item's fee lines paid, in fen (分), how, and the number of the
    /// finance department's receipt (票据) handed over.
    Pay {
        fee: String,
        amount_fen: u64,
        #[schema(value_type = String, example = "mobile")]
        method: PayMethod,
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

impl FeeInput {
    pub(super) fn into_action(self) -> Action {
        match self {
            FeeInput::Pay {
                fee,
                amount_fen,
                method,
                receipt,
            } => Action::Pay {
                fee,
                amount_fen,
                method,
                receipt,
            },
            FeeInput::Exempt {
                fee,
                amount_fen,
                reason,
                basis,
            } => Action::Exempt {
                fee,
                amount_fen,
                reason,
                basis,
            },
        }
    }
}

/// A payment on record.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct PaymentView {
    pub amount_fen: u64,
    /// cash, card, mobile or bank_transfer.
    pub method: String,
    pub receipt: String,
    pub staff: String,
    /// The day it was recorded (China time).
    pub on: String,
    pub event: String,
}

/// An exemption on record.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ExemptionView {
    pub amount_fen: u64,
    pub reason: String,
    pub basis: String,
    pub staff: String,
    pub on: String,
    pub event: String,
}

/// One fee line of the case's item version, with what it has had.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct FeeLineView {
    pub name: String,
    pub standard: String,
    /// 收费依据.
    pub basis: String,
    /// The fixed amount, when the standard is one.
    pub amount_fen: Option<u64>,
    pub payment: Option<PaymentView>,
    pub exemption: Option<ExemptionView>,
    /// What is left to pay of a fixed amount; absent for a standard read by a person.
    pub outstanding_fen: Option<u64>,
    /// Nothing more is due: paid or exempted in full.
    pub settled: bool,
}

/// A case's fees: empty lines mean the item charges nothing (不收费).
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct CaseFeesView {
    pub lines: Vec<FeeLineView>,
    pub paid_fen: u64,
    pub exempt_fen: u64,
    /// The fixed amounts still to pay.
    pub outstanding_fen: u64,
    /// Every line settled (true when there is none).
    pub settled: bool,
}

impl CaseFeesView {
    pub(super) fn of(fees: &CaseFees) -> CaseFeesView {
        let line = |l: &LineFees| FeeLineView {
            name: l.line.name.clone(),
            standard: l.line.standard.clone(),
            basis: l.line.basis.clone(),
            amount_fen: l.line.amount_fen,
            payment: l.payment.as_ref().map(|p| PaymentView {
                amount_fen: p.amount_fen,
                method: p.method.as_str().to_string(),
                receipt: p.receipt.clone(),
                staff: p.staff.clone(),
                on: p.on.to_string(),
                event: p.event_id.clone(),
            }),
            exemption: l.exemption.as_ref().map(|e| ExemptionView {
                amount_fen: e.amount_fen,
                reason: e.reason.clone(),
                basis: e.basis.clone(),
                staff: e.staff.clone(),
                on: e.on.to_string(),
                event: e.event_id.clone(),
            }),
            outstanding_fen: l.outstanding_fen(),
            settled: l.settled(),
        };
        CaseFeesView {
            lines: fees.lines.iter().map(line).collect(),
            paid_fen: fees.paid_fen(),
            exempt_fen: fees.exempt_fen(),
            outstanding_fen: fees.outstanding_fen(),
            settled: fees.unsettled().is_empty(),
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

/// A case's fees (§9.5)
#[utoipa::path(get, path = "/api/v1/cases/{id}/fees", tag = "cases",
    params(("id" = String, Path, description = "Case id")),
    responses((status = 200, body = CaseFeesView), (status = 404, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("token" = [])))]
pub async fn show(
    State(state): State<ApiState>,
    _user: Authenticated,
    Path(id): Path<String>,
) -> ApiResult<Json<CaseFeesView>> {
    let id = super::cases::case_id(&id)?;
    let detail = state.store.get_case(id.to_string(), state.today()).await?;
    Ok(Json(CaseFeesView::of(&detail.state.fees)))
}

/// Record a payment or an exemption on a case (§9.5)
///
/// Only for a fee line of the case's item version, above zero, within its fixed amount,
/// once per line and kind; by the office that received the case.
#[utoipa::path(post, path = "/api/v1/cases/{id}/fees", tag = "cases", request_body = FeeInput,
    params(("id" = String, Path, description = "Case id")),
    responses(
        (status = 201, body = CaseFeesView, description = "Recorded; the case's fees as they are now"),
        (status = 403, body = ErrorBody, description = "Not this node's or this person's act (not_this_nodes, …)"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Not in the case's status (not_allowed), or the line already has one (fee_already_paid, fee_already_exempted)"),
        (status = 422, body = ErrorBody, description = "No fees (no_fees), an unknown line (unknown_fee_line), an amount of zero or beyond the line (fee_amount_zero, fee_too_much), no receipt or reason (invalid)"),
        (status = 401, body = ErrorBody)),
    security(("token" = [])))]
pub async fn create(
    State(state): State<ApiState>,
    user: Authenticated,
    Path(id): Path<String>,
    Body(body): Body<FeeInput>,
) -> ApiResult<(StatusCode, Json<CaseFeesView>)> {
    let id = super::cases::case_id(&id)?;
    state
        .store
        .act_on_case(
            id.clone(),
            vec![NewAction::Do(body.into_action())],
            staff_of(&user),
            state.clock.now_ms(),
        )
        .await?;
    let detail = state.store.get_case(id.to_string(), state.today()).await?;
    Ok((
        StatusCode::CREATED,
        Json(CaseFeesView::of(&detail.state.fees)),
    ))
}

/// Which month.
#[derive(Debug, serde::Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FeesQuery {
    /// The month, `YYYY-MM` (China time), 2000-01 to 2999-12.
    #[param(pattern = r"^[0-9]{4}-[0-9]{2}$")]
    pub month: String,
}

/// One item's fees in the month.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct FeeFiguresView {
    /// Empty in the total.
    pub impl_code: String,
    pub item_name: String,
    pub collected_fen: u64,
    /// Cases with a payment recorded in the month.
    pub paid_cases: u64,
    pub exemptions: u64,
    pub exempt_fen: u64,
}

impl FeeFiguresView {
    fn of(f: &FeeFigures) -> FeeFiguresView {
        FeeFiguresView {
            impl_code: f.impl_code.clone(),
            item_name: f.item_name.clone(),
            collected_fen: f.collected_fen,
            paid_cases: f.paid_cases,
            exemptions: f.exemptions,
            exempt_fen: f.exempt_fen,
        }
    }
}

/// The month's fees.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct FeeReport {
    pub month: String,
    pub items: Vec<FeeFiguresView>,
    pub total: FeeFiguresView,
}

/// The month's fees by item (收费统计, §9.5)
///
/// What was collected and waived, by the day each was recorded: a station's own cases,
/// a hall's whole subtree. For whom the assessment is (a hall's supervisors and admins, a
/// station's lead and admin; `assessment_role` otherwise).
#[utoipa::path(get, path = "/api/v1/fees", tag = "cases", params(FeesQuery),
    responses(
        (status = 200, body = FeeReport),
        (status = 400, body = ErrorBody, description = "The month is not YYYY-MM from 2000-01 to 2999-12"),
        (status = 403, body = ErrorBody, description = "Not a hall's supervisor or admin, nor a station's lead or admin (assessment_role)"),
        (status = 401, body = ErrorBody)),
    security(("token" = [])))]
pub async fn report(
    State(state): State<ApiState>,
    user: Authenticated,
    Query(q): Query<FeesQuery>,
) -> ApiResult<Json<FeeReport>> {
    let month = Month::parse(&q.month).ok_or_else(|| {
        ApiError::words(
            StatusCode::BAD_REQUEST,
            Words::new("bad_request").text("detail", format!("month: {}", q.month)),
        )
    })?;
    let figures = state.store.fee_report(month, user.0.role).await?;
    Ok(Json(FeeReport {
        month: month.to_string(),
        total: FeeFiguresView::of(&FeeFigures::total(&figures)),
        items: figures.iter().map(FeeFiguresView::of).collect(),
    }))
}
