//! `/api/v1/items`: the public catalog (§8.6.1.2: item information is published).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use utoipa::{IntoParams, ToSchema};
use yizhan_sync::domain::calendar::YellowThreshold;
use yizhan_sync::domain::item::{
    CaseType, Item, ItemStatus, Material, OnlineDepth, ServiceObject, SubjectNature,
};

use super::ApiState;
use super::error::{ApiError, ApiResult, ErrorBody};
use super::extract::{Authenticated, Body, Path, Query};
use crate::store::{ItemFilter, ItemSummary, authoring_refused};
use yizhan_sync::domain::codes::DivisionCode;
use yizhan_sync::engine::{AuthoringAct, may_author};
use yizhan_sync::ids::Scope;

#[derive(Debug, serde::Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListItemsQuery {
    /// Chinese keywords; every word must occur in the name, category, subject or code.
    pub q: Option<String>,
    /// Only this category (主题分类).
    pub category: Option<String>,
    /// Page size, 1-500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// Items to skip, at most 100,000.
    #[param(minimum = 0, maximum = 100_000)]
    pub offset: Option<u32>,
}

/// One item in a list.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ItemListEntry {
    /// Document id; also accepted wherever an item is named.
    pub id: String,
    /// 实施编码 (31 characters).
    pub impl_code: String,
    pub name: String,
    pub category: String,
    /// Two-digit code of the kind of power (01 行政许可 … 20 公共服务).
    pub kind: String,
    pub level: String,
    /// `instant` (即办件) or `committed` (承诺件).
    pub case_type: String,
    pub legal_limit_days: u32,
    pub committed_limit_days: u32,
    pub status: String,
    pub version: u32,
}

impl From<ItemSummary> for ItemListEntry {
    fn from(s: ItemSummary) -> Self {
        ItemListEntry {
            id: s.id,
            impl_code: s.impl_code,
            name: s.name,
            category: s.category,
            kind: s.kind,
            level: s.level,
            case_type: s.case_type,
            legal_limit_days: s.legal_days,
            committed_limit_days: s.committed_days,
            status: s.status,
            version: s.version,
        }
    }
}

#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ItemList {
    pub items: Vec<ItemListEntry>,
    /// Matching items in all pages.
    pub total: u64,
}

/// List and search the catalog
#[utoipa::path(get, path = "/api/v1/items", tag = "catalog", params(ListItemsQuery),
    responses((status = 200, body = ItemList), (status = 400, body = ErrorBody)))]
pub async fn index(
    State(state): State<ApiState>,
    Query(query): Query<ListItemsQuery>,
) -> ApiResult<Json<ItemList>> {
    let (items, total) = state
        .store
        .list_items(ItemFilter {
            q: query.q,
            category: query.category,
            include_cancelled: false,
            limit: super::extract::bounded("limit", query.limit.unwrap_or(100), 1, 500)?,
            offset: super::extract::bounded("offset", query.offset.unwrap_or(0), 0, 100_000)?,
        })
        .await?;
    Ok(Json(ItemList {
        items: items.into_iter().map(Into::into).collect(),
        total,
    }))
}

/// A part of a combined item: the code of the department that decides it (see
/// `/api/v1/departments/{code}`), what it decides, and its own limit when shorter than
/// the whole's.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ItemPartView {
    pub department: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_days: Option<u32>,
}

/// One item's full service guide (办事指南) with every SZDB/Z 176 §9.1.2 element.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ItemView {
    pub id: String,
    pub impl_code: String,
    /// 基本编码 (12 characters).
    pub basic_code: String,
    pub version: u32,
    /// `published` or `cancelled`.
    pub status: String,
    /// 生效日期 (YYYY-MM-DD): a new item takes applications from it; absent when the
    /// version is in force from its publication.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effective_date: Option<String>,
    /// 事项名称.
    pub name: String,
    /// 事项性质: code and name of the kind of power.
    pub kind: KindView,
    pub category: String,
    /// 实施主体.
    pub subject: SubjectView,
    /// 委托部门: the department that delegated accepting this item to the office that
    /// publishes it (代为受理, §5.5.2); absent when the office accepts in its own right.
    pub delegated_by: Option<String>,
    /// 决定部门: the code of the department that decides its cases (§5.7.2, see
    /// `/api/v1/departments/{code}`); absent when the accepting office decides.
    pub decided_by: Option<String>,
    /// 并联审批 (SZDB/Z 176 §7.5; 行政许可法 §26): a combined item's parts, each decided by
    /// its department at the same time; empty for an ordinary item.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<ItemPartView>,
    /// 行使层级.
    pub level: String,
    /// 服务对象: `natural_person` and/or `legal_person`.
    pub service_objects: Vec<String>,
    /// 设立依据.
    pub legal_basis: Vec<LegalBasisView>,
    /// 办理条件.
    pub conditions: Vec<String>,
    /// 办理场所.
    pub place: PlaceView,
    /// 办理过程.
    pub process: Vec<ProcessStepView>,
    /// `instant` (即办件) or `committed` (承诺件).
    pub case_type: String,
    pub legal_limit_days: u32,
    pub legal_extension_days: u32,
    pub committed_limit_days: u32,
    /// The guide's wording of the time limit, e.g. 即办 or 自受理之日起 N 个工作日办结.
    pub limit_text: String,
    /// When supervision turns a case yellow.
    pub yellow_warning: String,
    pub materials: Vec<MaterialView>,
    pub special_procedures: Vec<SpecialProcedureView>,
    /// 网上办理深度.
    pub online_depth: String,
    /// 收费情况: empty means no fee.
    pub fees: Vec<FeeView>,
    /// 收费情况 as printed: 不收费, or each fee with its basis.
    pub fee_text: String,
    /// 查询渠道.
    pub query_channels: Vec<String>,
    /// 咨询方式.
    pub consultation: Vec<String>,
    /// 监督投诉方式.
    pub complaint: Vec<String>,
    /// 行政救济途径.
    pub remedies: String,
    /// 审批结果.
    pub result: String,
    /// 到办事现场次数.
    pub visits: u32,
    /// 办理形式: `window`, `online`, `self_service`, `post`.
    pub handling_forms: Vec<String>,
    /// 是否支持预约.
    pub booking: bool,
    /// 情形: variants that change the materials, chosen at intake.
    pub situations: Vec<SituationView>,
}

#[derive(Debug, serde::Serialize, ToSchema)]
pub struct SituationView {
    pub name: String,
    /// Materials it asks for on top of the item's own.
    pub adds: Vec<MaterialView>,
    /// Names of the item's materials it does not need.
    pub not_needed: Vec<String>,
}

/// A blank form or sample: its id and where the guide offers it for download.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct AttachmentRef {
    pub id: String,
    pub url: String,
}

#[derive(Debug, serde::Serialize, ToSchema)]
pub struct KindView {
    pub code: String,
    pub name: String,
}

#[derive(Debug, serde::Serialize, ToSchema)]
pub struct SubjectView {
    pub name: String,
    /// `statutory_body` 法定机关, `authorised_organisation` 授权组织, or `entrusted_organisation` 受委托组织.
    pub nature: String,
    pub credit_code: String,
}

#[derive(Debug, serde::Serialize, ToSchema)]
pub struct LegalBasisView {
    pub title: String,
    pub article: String,
}

#[derive(Debug, serde::Serialize, ToSchema)]
pub struct PlaceView {
    pub address: String,
    pub hours: String,
}

#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ProcessStepView {
    pub name: String,
    /// 环节时限, working days.
    pub days: Option<u32>,
    /// 责任岗位.
    pub post: Option<String>,
}

#[derive(Debug, serde::Serialize, ToSchema)]
pub struct MaterialView {
    pub name: String,
    pub originals: u32,
    pub copies: u32,
    pub required: bool,
    pub condition: Option<String>,
    pub note: Option<String>,
    /// 来源渠道: `applicant` or `government` (with `issuer`).
    pub source: Option<String>,
    pub issuer: Option<String>,
    /// 形式: `paper`, `electronic` or `both`.
    pub form: Option<String>,
    /// 纸质规格.
    pub paper_spec: Option<String>,
    /// 受理标准.
    pub standard: Option<String>,
    /// 空表.
    pub blank_form: Option<AttachmentRef>,
    /// 样表.
    pub sample: Option<AttachmentRef>,
}

fn material_view(impl_code: &str, m: &Material) -> MaterialView {
    let attachment = |id: &Option<String>| {
        id.as_ref().map(|id| AttachmentRef {
            id: id.clone(),
            url: crate::catalog::attachment_path(impl_code, id),
        })
    };
    MaterialView {
        name: m.name.clone(),
        originals: m.originals,
        copies: m.copies,
        required: m.required,
        condition: m.condition.clone(),
        note: m.note.clone(),
        source: m.source.map(|s| s.as_str().to_string()),
        issuer: m.issuer.clone(),
        form: m.form.map(|f| f.as_str().to_string()),
        paper_spec: m.paper_spec.clone(),
        standard: m.standard.clone(),
        blank_form: attachment(&m.blank_form),
        sample: attachment(&m.sample),
    }
}

#[derive(Debug, serde::Serialize, ToSchema)]
pub struct SpecialProcedureView {
    pub name: String,
    pub max_days: Option<u32>,
    /// 是否计算在法定办结时限内.
    pub counted: bool,
}

#[derive(Debug, serde::Serialize, ToSchema)]
pub struct FeeView {
    pub name: String,
    pub standard: String,
    pub basis: String,
}

fn snake<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

impl From<Item> for ItemView {
    fn from(item: Item) -> Self {
        ItemView {
            id: Item::doc_id_for(&item.impl_code).to_string(),
            impl_code: item.impl_code.to_string(),
            basic_code: item.basic_code().to_string(),
            version: item.version,
            effective_date: item.effective_date.map(|d| d.to_string()),
            status: match item.status {
                ItemStatus::Published => "published",
                ItemStatus::Cancelled => "cancelled",
            }
            .into(),
            kind: KindView {
                code: item.kind.code().into(),
                name: item.kind.zh().into(),
            },
            category: item.category.clone(),
            subject: SubjectView {
                name: item.subject.name.clone(),
                nature: snake::<SubjectNature>(&item.subject.nature),
                credit_code: item.impl_code.subject().to_string(),
            },
            delegated_by: item.delegated_by.clone(),
            decided_by: item.decided_by.clone(),
            parts: item
                .parts
                .iter()
                .map(|p| ItemPartView {
                    department: p.department.clone(),
                    name: p.name.clone(),
                    limit_days: p.limit_days,
                })
                .collect(),
            level: item.level().zh().into(),
            service_objects: item
                .service_objects
                .iter()
                .map(snake::<ServiceObject>)
                .collect(),
            legal_basis: item
                .legal_basis
                .iter()
                .map(|b| LegalBasisView {
                    title: b.title.clone(),
                    article: b.article.clone(),
                })
                .collect(),
            conditions: item.conditions.clone(),
            place: PlaceView {
                address: item.place.address.clone(),
                hours: item.place.hours.clone(),
            },
            process: item
                .process
                .iter()
                .map(|s| ProcessStepView {
                    name: s.name.clone(),
                    days: s.days,
                    post: s.post.clone(),
                })
                .collect(),
            case_type: snake::<CaseType>(&item.case_type),
            legal_limit_days: item.legal_limit_days,
            legal_extension_days: item.legal_extension_days,
            committed_limit_days: item.committed_limit_days,
            limit_text: item.limit_text(),
            yellow_warning: match item.yellow {
                YellowThreshold::WorkingDaysBefore(n) => {
                    format!("{n} working days before the committed deadline")
                }
                YellowThreshold::PercentUsed(p) => {
                    format!("when {p}% of the committed limit is used")
                }
            },
            materials: item
                .materials
                .iter()
                .map(|m| material_view(item.impl_code.as_str(), m))
                .collect(),
            special_procedures: item
                .special_procedures
                .iter()
                .map(|p| SpecialProcedureView {
                    name: p.name.clone(),
                    max_days: p.max_days,
                    counted: p.counted,
                })
                .collect(),
            online_depth: snake::<OnlineDepth>(&item.online_depth),
            fees: item
                .fees
                .iter()
                .map(|f| FeeView {
                    name: f.name.clone(),
                    standard: f.standard.clone(),
                    basis: f.basis.clone(),
                })
                .collect(),
            fee_text: item.fee_text(),
            query_channels: item.query_channels.clone(),
            consultation: item.consultation.clone(),
            complaint: item.complaint.clone(),
            remedies: item.remedies.clone(),
            result: item.result.clone(),
            visits: item.visits,
            handling_forms: item
                .handling_forms
                .iter()
                .map(|f| f.as_str().to_string())
                .collect(),
            booking: item.booking,
            situations: item
                .situations
                .iter()
                .map(|s| SituationView {
                    name: s.name.clone(),
                    adds: s
                        .adds
                        .iter()
                        .map(|m| material_view(item.impl_code.as_str(), m))
                        .collect(),
                    not_needed: s.not_needed.clone(),
                })
                .collect(),
            name: item.name,
        }
    }
}

/// Get one item's service guide
#[utoipa::path(get, path = "/api/v1/items/{id}", tag = "catalog",
    params(("id" = String, Path, description = "Item id or implementation code (实施编码)")),
    responses((status = 200, body = ItemView), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<Json<ItemView>> {
    Ok(Json(state.store.get_item(id).await?.into()))
}

#[derive(Debug, serde::Serialize, ToSchema)]
pub struct Category {
    pub name: String,
    pub items: u64,
}

/// List the catalog's categories
#[utoipa::path(get, path = "/api/v1/item-categories", tag = "catalog",
    responses((status = 200, body = Vec<Category>)))]
pub async fn categories(State(state): State<ApiState>) -> ApiResult<Json<Vec<Category>>> {
    let categories = state.store.item_categories().await?;
    Ok(Json(
        categories
            .into_iter()
            .map(|(name, items)| Category { name, items })
            .collect(),
    ))
}

/// Publish an item version (hall nodes that author the catalog)
///
/// The body is the item in the catalog-file form documented on `Item`
/// (sync/src/domain/item.rs); unknown fields are refused. The version must be higher than
/// the published one.
#[utoipa::path(put, path = "/api/v1/items/{impl_code}", tag = "catalog",
    params(("impl_code" = String, Path, description = "Implementation code (实施编码) of the item")),
    request_body(content = Object, description = "The item, as in a catalog file"),
    responses(
        (status = 200, body = ItemView, description = "Published"),
        (status = 403, body = ErrorBody, description = "Not an admin (`authoring_admins_only`), a station (`authoring_station`), or an item at a level this hall does not author (`authoring_level`)"),
        (status = 409, body = ErrorBody, description = "The version is not higher than the published one"),
        (status = 422, body = ErrorBody, description = "The item breaks a catalog rule, e.g. committed limit above the legal one"),
        (status = 401, body = ErrorBody)),
    security(("token" = [])))]
pub async fn publish(
    State(state): State<ApiState>,
    user: Authenticated,
    Path(impl_code): Path<String>,
    Body(item): Body<Item>,
) -> ApiResult<(StatusCode, Json<ItemView>)> {
    // Publishing without review is the admins' bulk path (§8.4.1): the engine's rule.
    may_author(
        state.store.own_record(),
        user.0.role,
        Some(item.level()),
        AuthoringAct::Publish,
    )
    .map_err(authoring_refused)?;
    if item.impl_code.as_str() != impl_code {
        return Err(ApiError::invalid(format!(
            "the path names {impl_code} but the body is item {}",
            item.impl_code
        )));
    }
    let division =
        DivisionCode::parse(&state.node.division).map_err(|e| ApiError::invalid(e.to_string()))?;
    state
        .store
        .publish_item(Scope::catalog(&division), item, state.clock.now_ms())
        .await?;
    Ok((
        StatusCode::OK,
        Json(state.store.get_item(impl_code).await?.into()),
    ))
}

/// One version of an item, with what changed from the version before it.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ItemVersionView {
    pub version: u32,
    /// `published` or `cancelled`.
    pub status: String,
    pub name: String,
    /// 生效日期, when the version carries one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effective_date: Option<String>,
    /// The fields that differ from the version before (every field for the first).
    pub changes: Vec<crate::api::drafts::FieldChangeView>,
}

#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ItemVersions {
    pub versions: Vec<ItemVersionView>,
}

/// The versions of an item this node holds, each with its field-by-field changes
#[utoipa::path(get, path = "/api/v1/items/{id}/versions", tag = "catalog",
    params(("id" = String, Path, description = "Item id or implementation code (实施编码)")),
    responses((status = 200, body = ItemVersions), (status = 404, body = ErrorBody)))]
pub async fn versions(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<Json<ItemVersions>> {
    let held = state.store.item_versions(id).await?;
    let mut before: Option<Item> = None;
    let mut versions = Vec::new();
    for item in held {
        let changes = yizhan_sync::domain::draft::diff_items(before.as_ref(), &item)
            .into_iter()
            .map(|c| crate::api::drafts::FieldChangeView {
                field: c.field,
                before: c.before,
                after: c.after,
            })
            .collect();
        versions.push(ItemVersionView {
            version: item.version,
            status: snake::<ItemStatus>(&item.status),
            name: item.name.clone(),
            effective_date: item.effective_date.map(|d| d.to_string()),
            changes,
        });
        before = Some(item);
    }
    Ok(Json(ItemVersions { versions }))
}

#[derive(Debug, serde::Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `xlsx` (every sheet in one workbook, the default) or `csv` (one sheet).
    pub format: Option<String>,
    /// With `csv`: the sheet (事项, 申请材料, 办理情形, 办理流程, 设定依据, 特别程序,
    /// 收费项目); 事项 by default.
    pub sheet: Option<String>,
}

/// Export the catalog as .xlsx or CSV
///
/// Every item held here, in the layout `yizhan import-catalog` reads: one row per item on
/// the sheet 事项 with the national list's element names as headers, materials,
/// situations, steps, legal bases, special procedures and fees on further sheets keyed by
/// 实施编码. As CSV, one sheet a request.
#[utoipa::path(get, path = "/api/v1/catalog/export", tag = "catalog", params(ExportQuery),
    responses(
        (status = 200, description = "The workbook or the sheet", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (status = 400, body = ErrorBody, description = "A malformed query"),
        (status = 422, body = ErrorBody, description = "An unknown format or sheet"),
        (status = 409, body = ErrorBody, description = "An item cannot be written in the layout")))]
pub async fn export(
    State(state): State<ApiState>,
    Query(query): Query<ExportQuery>,
) -> ApiResult<axum::response::Response> {
    use crate::catalog::sheets;
    use axum::response::IntoResponse;
    let items = state.store.all_items().await?;
    let not_exportable = |problems: Vec<String>| {
        ApiError::words(
            StatusCode::CONFLICT,
            crate::i18n::Words::new("catalog_not_exportable").text("problems", problems.join("; ")),
        )
    };
    let (content_type, file, bytes) = match query.format.as_deref().unwrap_or("xlsx") {
        "xlsx" => (
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "catalog.xlsx".to_string(),
            sheets::to_xlsx(&items).map_err(not_exportable)?,
        ),
        "csv" => {
            let wanted = query.sheet.as_deref().unwrap_or("事项");
            let sheet = sheets::to_sheets(&items)
                .map_err(not_exportable)?
                .into_iter()
                .find(|s| s.name == wanted)
                .ok_or_else(|| ApiError::invalid(format!("there is no sheet {wanted}")))?;
            (
                "text/csv; charset=utf-8",
                format!("{wanted}.csv"),
                sheets::to_csv(&sheet),
            )
        }
        other => {
            return Err(ApiError::invalid(format!(
                "format {other:?}: ask for xlsx or csv"
            )));
        }
    };
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, content_type.to_string()),
            (
                axum::http::header::CONTENT_DISPOSITION,
                crate::catalog::download_disposition(&file),
            ),
        ],
        bytes,
    )
        .into_response())
}
