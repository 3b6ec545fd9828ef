//! The guide elements of the national implementation list beyond SZDB/Z 176 §9.1.2's nine
//! (DOMAIN §4): ways to apply, booking, each material's source, form and acceptance
//! standard with its blank form and sample, the steps' limits and posts, and the
//! situations (情形) that change the materials, worded for the guide page; and the
//! download of a guide's attachments, public as the guide is.

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use yizhan_sync::domain::item::{Item, Material, MaterialSource};

use super::{Ctx, WebState, store_failed};
use crate::i18n::Tr;

/// The elements the guide page shows beside the item, in the page's language.
#[derive(Debug)]
pub(super) struct GuideExtras {
    /// 办理形式, joined; empty when the item names none.
    pub handling_forms: String,
    /// 是否支持预约.
    pub booking: String,
    pub materials: Vec<MaterialLine>,
    pub steps: Vec<StepLine>,
    pub situations: Vec<SituationLine>,
}

/// One material with its elements worded.
#[derive(Debug)]
pub(super) struct MaterialLine {
    pub material: Material,
    /// 来源渠道 with the issuer; empty when not published.
    pub source: String,
    /// 形式 and 纸质规格; empty when not published.
    pub form: String,
    /// Links to the blank form and the sample: (words, address).
    pub files: Vec<(String, String)>,
}

#[derive(Debug)]
pub(super) struct StepLine {
    pub name: String,
    /// The step's limit in words, empty when it has none.
    pub days: String,
    pub post: String,
}

#[derive(Debug)]
pub(super) struct SituationLine {
    pub name: String,
    pub adds: Vec<MaterialLine>,
    pub not_needed: String,
}

pub(super) fn extras(t: &Tr, item: &Item) -> GuideExtras {
    let line = |m: &Material| material_line(t, item, m);
    GuideExtras {
        handling_forms: item
            .handling_forms
            .iter()
            .map(|f| t.get(&format!("handling_form.{}", f.as_str())).into_owned())
            .collect::<Vec<_>>()
            .join("、"),
        booking: t
            .get(if item.booking {
                "item.booking_yes"
            } else {
                "item.booking_no"
            })
            .into_owned(),
        materials: item.materials.iter().map(line).collect(),
        steps: item
            .process
            .iter()
            .map(|step| StepLine {
                name: step.name.clone(),
                days: match step.days {
                    None => String::new(),
                    Some(0) => t.get("item.step_same_day").into_owned(),
                    Some(days) => format!("{days} {}", t.get("item.working_days")),
                },
                post: step.post.clone().unwrap_or_default(),
            })
            .collect(),
        situations: item
            .situations
            .iter()
            .map(|s| SituationLine {
                name: s.name.clone(),
                adds: s.adds.iter().map(line).collect(),
                not_needed: s.not_needed.join("、"),
            })
            .collect(),
    }
}

fn material_line(t: &Tr, item: &Item, m: &Material) -> MaterialLine {
    let source = match (m.source, m.issuer.as_deref()) {
        (Some(MaterialSource::Government), Some(issuer)) => {
            t.with("material.issued_by", "issuer", issuer)
        }
        (Some(source), _) => t
            .get(&format!("material.source.{}", source.as_str()))
            .into_owned(),
        (None, _) => String::new(),
    };
    let mut form = m
        .form
        .map(|f| t.get(&format!("material.form.{}", f.as_str())).into_owned())
        .unwrap_or_default();
    if let Some(spec) = &m.paper_spec {
        if !form.is_empty() {
            form.push('；');
        }
        form.push_str(&t.with("material.paper_spec", "spec", spec));
    }
    let files = [
        ("material.blank_form", &m.blank_form),
        ("material.sample", &m.sample),
    ]
    .into_iter()
    .filter_map(|(words, id)| {
        id.as_ref().map(|id| {
            (
                t.get(words).into_owned(),
                crate::catalog::attachment_path(item.impl_code.as_str(), id),
            )
        })
    })
    .collect();
    MaterialLine {
        material: m.clone(),
        source,
        form,
        files,
    }
}

/// `GET /catalog/{code}/attachments/{id}`: a blank form or sample the item's guide offers,
/// without a session (guides are public, §8.6.1.2). Only an attachment the item names is
/// served, as the file it was published as, never sniffed into something else.
pub(super) async fn download(
    State(state): State<WebState>,
    ctx: Ctx,
    Path((code, id)): Path<(String, String)>,
) -> Response {
    let item = match state.store.get_item(code).await {
        Ok(item) => item,
        Err(e) => return store_failed(&ctx, e),
    };
    let offered = item
        .materials
        .iter()
        .chain(item.situations.iter().flat_map(|s| &s.adds))
        .any(|m| m.blank_form.as_deref() == Some(&id) || m.sample.as_deref() == Some(&id));
    if !offered {
        return store_failed(
            &ctx,
            crate::store::StoreError::NotFound {
                what: format!("attachment {id}"),
            },
        );
    }
    match state.store.get_attachment(id).await {
        Ok((attachment, bytes)) => attachment_response(&attachment, bytes),
        Err(e) => store_failed(&ctx, e),
    }
}

/// A file as a download: its own type, its name for saving (RFC 6266, UTF-8 encoded),
/// and no sniffing by the browser.
pub fn attachment_response(
    attachment: &yizhan_sync::domain::attachment::Attachment,
    bytes: Vec<u8>,
) -> Response {
    let disposition = crate::catalog::download_disposition(&attachment.name);
    let mut response = (StatusCode::OK, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(attachment.content_type.mime()),
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400, immutable"),
    );
    response
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct SheetQuery {
    sheet: Option<String>,
}

/// `GET /catalog/export.xlsx`: the catalog as the workbook `import-catalog` reads.
pub(super) async fn export_xlsx(State(state): State<WebState>, ctx: Ctx) -> Response {
    let items = match state.store.all_items().await {
        Ok(items) => items,
        Err(e) => return store_failed(&ctx, e),
    };
    match tokio::task::spawn_blocking(move || crate::catalog::sheets::to_xlsx(&items)).await {
        Ok(Ok(bytes)) => file_download(
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "catalog.xlsx",
            bytes,
        ),
        Ok(Err(problems)) => not_exportable(&ctx, problems),
        Err(e) => store_failed(&ctx, crate::store::StoreError::Internal(e.to_string())),
    }
}

/// `GET /catalog/export.csv?sheet=NAME`: one sheet of the catalog as CSV.
pub(super) async fn export_csv(
    State(state): State<WebState>,
    ctx: Ctx,
    axum::extract::Query(query): axum::extract::Query<SheetQuery>,
) -> Response {
    let items = match state.store.all_items().await {
        Ok(items) => items,
        Err(e) => return store_failed(&ctx, e),
    };
    let wanted = query.sheet.unwrap_or_else(|| "事项".into());
    match crate::catalog::sheets::to_sheets(&items) {
        Ok(sheets) => match sheets.into_iter().find(|s| s.name == wanted) {
            Some(sheet) => file_download(
                "text/csv; charset=utf-8",
                &format!("{wanted}.csv"),
                crate::catalog::sheets::to_csv(&sheet),
            ),
            None => store_failed(
                &ctx,
                crate::store::StoreError::NotFound {
                    what: format!("sheet {wanted}"),
                },
            ),
        },
        Err(problems) => not_exportable(&ctx, problems),
    }
}

fn file_download(content_type: &'static str, file: &str, bytes: Vec<u8>) -> Response {
    let mut response = (StatusCode::OK, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(value) = HeaderValue::from_str(&crate::catalog::download_disposition(file)) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

fn not_exportable(ctx: &Ctx, problems: Vec<String>) -> Response {
    store_failed(
        ctx,
        crate::store::StoreError::Conflict(
            crate::i18n::Words::new("catalog_not_exportable").text("problems", problems.join("; ")),
        ),
    )
}
