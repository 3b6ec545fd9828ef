//! Accepting applications at the counter (一口受理, §7.5) and the sealed notices it
//! issues: the acceptance receipt, the one-time notice of missing materials and the
//! refusal notice; and `/verify`, where anyone checks a notice's seal.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use yizhan_sync::domain::case::{
    Action, ActionKind, Agent, Applicant, CaseError, MaterialReceived, MissingMaterial, NewCase,
    Phone, Status,
};
use yizhan_sync::domain::codes::{CreditCode, ResidentId};
use yizhan_sync::domain::fee::{CaseFees, LineFees, PayMethod, parse_yuan, yuan};
use yizhan_sync::domain::item::{CaseType, Item, Material, ServiceObject};
use yizhan_sync::domain::supervision::ReplyState;
use yizhan_sync::ids::DocId;

use super::WebState;
use super::{CaseForm, Chrome, Ctx, StaffForm, message, render, store_failed};
use crate::clock::minute_cst;
use crate::i18n::{Lang, Tr, Words};
use crate::notice::{self, NoticeContent, NoticeKind, QrSeal};
use crate::store::{CaseDetail, Correction, Issuer, NewAction, StoreError, StoredNotice};
use crate::web::session::Session;
use yizhan_sync::domain::department::SealCheck;

/// A form's fields, in order (checkbox names vary with the item's materials).
pub(super) type Fields = Vec<(String, String)>;

pub(super) fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
        .trim()
}

use super::follow::staff_of;

// ---------------------------------------------------------------- the application form

#[derive(Template)]
#[template(path = "case_new.html")]
struct NewCasePage<'a> {
    chrome: Chrome<'a>,
    t: &'static Tr,
    csrf: &'a str,
    form_id: String,
    item: Item,
    /// The item's situations (情形) chosen, and the materials they ask for.
    situations: Vec<String>,
    materials: Vec<Material>,
    /// Values to show again after a refused submission.
    values: Fields,
    errors: Vec<String>,
}

impl NewCasePage<'_> {
    fn value(&self, name: &str) -> &str {
        field(&self.values, name)
    }

    fn chosen(&self, situation: &str) -> bool {
        self.situations.iter().any(|s| s == situation)
    }

    /// Whether the material checkbox `m_KIND_N` was ticked on the refused submission.
    fn ticked(&self, kind: &str, n: &usize) -> bool {
        let name = format!("m_{kind}_{n}");
        self.values.iter().any(|(k, _)| *k == name)
    }

    fn legal_person(&self) -> bool {
        self.value("applicant_type") == "legal_person"
            || (self.serves_legal() && !self.serves_natural())
    }

    /// Which applicants the item serves: only their fields are shown (a natural person
    /// sees no legal-person fields).
    fn serves_natural(&self) -> bool {
        self.item
            .service_objects
            .contains(&ServiceObject::NaturalPerson)
    }

    fn serves_legal(&self) -> bool {
        self.item
            .service_objects
            .contains(&ServiceObject::LegalPerson)
    }

    fn serves_both(&self) -> bool {
        self.serves_natural() && self.serves_legal()
    }
}

/// The situations (情形) a form or query chose: every `situation` field.
fn situations_of(fields: &[(String, String)]) -> Vec<String> {
    fields
        .iter()
        .filter(|(k, v)| k == "situation" && !v.trim().is_empty())
        .map(|(_, v)| v.trim().to_string())
        .collect()
}

/// The situations chosen and the materials they ask for, or what is wrong with them in
/// the page's language (the engine's rule, `check_situations`, as the store will ask).
fn materials_in(
    t: &Tr,
    item: &Item,
    chosen: Vec<String>,
) -> Result<(Vec<String>, Vec<Material>), String> {
    let refused = |e: CaseError| t.words(&Words::from(&e));
    yizhan_sync::domain::case::check_situations(
        &chosen,
        item.situations.iter().map(|s| s.name.as_str()),
    )
    .map_err(refused)?;
    let materials = item
        .materials_for(&chosen)
        .map_err(|name| refused(CaseError::UnknownSituation { name }))?;
    Ok((chosen, materials))
}

/// `GET /cases/new?item=CODE[&situation=NAME…]`: receive an application for an item, in
/// the situations chosen (their materials are the form's).
pub async fn new_form(
    State(state): State<WebState>,
    ctx: Ctx,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let Some(staff) = ctx.session.as_ref() else {
        return ctx.to_signin();
    };
    let mut values = Vec::new();
    let mut code = Some(field(&query, "item").to_string()).filter(|c| !c.is_empty());
    if let Some(id) = Some(field(&query, "appointment")).filter(|a| !a.is_empty()) {
        let a = match appointment_to_start(&state, &ctx, id).await {
            Ok(a) => a,
            Err(refused) => return *refused,
        };
        code = Some(a.impl_code);
        values = vec![
            ("name".to_string(), a.name),
            ("phone".to_string(), a.phone),
            ("appointment".to_string(), a.id.to_string()),
        ];
    }
    let Some(code) = code else {
        return Redirect::to("/catalog").into_response();
    };
    let item = match state.store.get_item(code).await {
        Ok(item) => item,
        Err(e) => return store_failed(&ctx, e),
    };
    let (status, situations, materials, errors) =
        match materials_in(ctx.t, &item, situations_of(&query)) {
            Ok((situations, materials)) => (StatusCode::OK, situations, materials, Vec::new()),
            Err(error) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Vec::new(),
                item.materials.clone(),
                vec![error],
            ),
        };
    render(
        ctx.t,
        status,
        NewCasePage {
            chrome: ctx.chrome(),
            t: ctx.t,
            csrf: &staff.csrf,
            form_id: super::session::random_token(),
            item,
            situations,
            materials,
            values,
            errors,
        },
    )
}

/// A booked appointment to start a case from; one already started leads to its case.
async fn appointment_to_start(
    state: &WebState,
    ctx: &Ctx,
    id: &str,
) -> Result<crate::store::Appointment, Box<Response>> {
    let found = match id.parse::<i64>() {
        Ok(id) => state
            .store
            .appointment(id)
            .await
            .map_err(|e| Box::new(store_failed(ctx, e)))?,
        Err(_) => None,
    };
    match found {
        None => Err(Box::new(message(
            ctx,
            StatusCode::NOT_FOUND,
            "case.error.title",
            ctx.t.get("appointment.error.no_booking").into_owned(),
        ))),
        Some(a) => match (&a.case_id, a.status) {
            (Some(case_id), _) => Err(Box::new(
                Redirect::to(&format!("/cases/{case_id}")).into_response(),
            )),
            (None, crate::store::AppointmentStatus::Booked) => Ok(a),
            (None, _) => Err(Box::new(message(
                ctx,
                StatusCode::CONFLICT,
                "case.error.title",
                ctx.t.get("appointment.error.not_booked").into_owned(),
            ))),
        },
    }
}

/// Reads the applicant and the materials from the form; every problem, in words.
fn read_application(t: &Tr, item: &Item, fields: &Fields) -> Result<NewCase, Vec<String>> {
    let mut errors = Vec::new();
    let (situations, item_materials) =
        materials_in(t, item, situations_of(fields)).map_err(|error| vec![error])?;
    let name = field(fields, "name");
    if name.is_empty() {
        errors.push(t.get("case.error.name").into_owned());
    }
    // Each problem in the page's language: the rule a field breaks, or what is wrong
    // with a code (its length, a character, its check character).
    let case_words = |e: CaseError| t.words(&Words::from(&e));
    let code_words = |e: yizhan_sync::domain::codes::CodeError| t.words(&Words::from(&e));
    let phone = Phone::parse(field(fields, "phone"))
        .map_err(|e| errors.push(t.with("case.error.phone", "why", &case_words(e))))
        .ok();
    let applicant = if field(fields, "applicant_type") == "legal_person" {
        let code = CreditCode::parse(field(fields, "credit_code"))
            .map_err(|e| errors.push(code_words(e)))
            .ok();
        let contact = field(fields, "contact_name");
        if contact.is_empty() {
            errors.push(t.get("case.error.contact").into_owned());
        }
        code.zip(phone.clone())
            .map(|(credit_code, phone)| Applicant::LegalPerson {
                name: name.to_string(),
                credit_code,
                contact_name: contact.to_string(),
                phone,
            })
    } else {
        let id = ResidentId::parse(field(fields, "id_number"))
            .map_err(|e| errors.push(code_words(e)))
            .ok();
        id.zip(phone.clone())
            .map(|(id_number, phone)| Applicant::NaturalPerson {
                name: name.to_string(),
                id_number,
                phone,
            })
    };
    let agent = if field(fields, "agent_name").is_empty() {
        None
    } else {
        let id = ResidentId::parse(field(fields, "agent_id_number"))
            .map_err(|e| errors.push(t.with("case.error.agent", "why", &code_words(e))))
            .ok();
        let phone = Phone::parse(field(fields, "agent_phone"))
            .map_err(|e| errors.push(t.with("case.error.agent_phone", "why", &case_words(e))))
            .ok();
        id.zip(phone).map(|(id_number, phone)| Agent {
            name: field(fields, "agent_name").to_string(),
            id_number,
            phone,
        })
    };
    let mut materials = received_from(
        item_materials
            .iter()
            .map(|m| (&m.name, m.originals, m.copies)),
        fields,
        "m",
    );
    // "All materials received": every required material as the item asks for it, with
    // whatever else was ticked.
    if !field(fields, "all_materials").is_empty() {
        for m in item_materials.iter().filter(|m| m.required) {
            let full = MaterialReceived {
                name: m.name.clone(),
                originals: m.originals,
                copies: m.copies,
            };
            match materials.iter_mut().find(|r| r.name == m.name) {
                Some(r) => *r = full,
                None => materials.push(full),
            }
        }
    }
    match applicant {
        Some(applicant) if errors.is_empty() => Ok(NewCase {
            situations,
            applicant,
            agent,
            materials,
            counter: String::new(),
            note: field(fields, "note").chars().take(2000).collect(),
        }),
        _ => Err(errors),
    }
}

/// The materials ticked on a form: `PREFIX_o_N` for originals and `PREFIX_c_N` for
/// copies of the N-th material, each meaning "all the item asks for".
fn received_from<'a>(
    rules: impl Iterator<Item = (&'a String, u32, u32)>,
    fields: &Fields,
    prefix: &str,
) -> Vec<MaterialReceived> {
    rules
        .enumerate()
        .filter_map(|(n, (name, originals, copies))| {
            let has = |kind: &str| {
                fields
                    .iter()
                    .any(|(k, _)| *k == format!("{prefix}_{kind}_{n}"))
            };
            let received = MaterialReceived {
                name: name.clone(),
                originals: if has("o") { originals } else { 0 },
                copies: if has("c") { copies } else { 0 },
            };
            (received.originals + received.copies > 0).then_some(received)
        })
        .collect()
}

/// `POST /cases`: receives the application; with every required material it is
/// accepted at once (an instant item is completed too) and a receipt is issued, else a
/// one-time notice lists exactly what is missing.
pub async fn create(
    State(state): State<WebState>,
    StaffForm {
        ctx,
        staff,
        form: fields,
    }: StaffForm<Fields>,
) -> Response {
    let form_id = field(&fields, "form_id").to_string();
    match state.submitted_forms.claim(&form_id) {
        super::session::Claim::New => {}
        // The same form sent twice (a double click, a reload): the case exists already;
        // show what the first sending showed (its newest notice).
        super::session::Claim::Done(case_id) => {
            return match state.store.notices_of_case(case_id.clone()).await {
                Ok(notices) => match notices.last() {
                    Some(notice) => to_notice(notice),
                    None => Redirect::to(&format!("/cases/{case_id}")).into_response(),
                },
                Err(e) => store_failed(&ctx, e),
            };
        }
        super::session::Claim::InProgress => {
            return message(
                &ctx,
                StatusCode::CONFLICT,
                "case.error.title",
                ctx.t.get("case.error.in_progress").into_owned(),
            );
        }
    }
    let response = create_claimed(&state, &ctx, &staff, form_id.clone(), fields).await;
    // Unless a case was made (then the id is done), the form may be corrected and sent again.
    state.submitted_forms.release(&form_id);
    response
}

async fn create_claimed(
    state: &WebState,
    ctx: &Ctx,
    staff: &Session,
    form_id: String,
    fields: Fields,
) -> Response {
    let item = match state
        .store
        .get_item(field(&fields, "item").to_string())
        .await
    {
        Ok(item) => item,
        Err(StoreError::NotFound { .. }) => {
            return message(
                ctx,
                StatusCode::UNPROCESSABLE_ENTITY,
                "case.error.title",
                ctx.t.get("case.error.item").into_owned(),
            );
        }
        Err(e) => return store_failed(ctx, e),
    };
    let mut new = match read_application(ctx.t, &item, &fields) {
        Ok(new) => new,
        Err(errors) => {
            return render(
                ctx.t,
                StatusCode::UNPROCESSABLE_ENTITY,
                NewCasePage {
                    chrome: ctx.chrome(),
                    t: ctx.t,
                    csrf: &staff.csrf,
                    form_id,
                    situations: situations_of(&fields),
                    materials: item
                        .materials_for(&situations_of(&fields))
                        .unwrap_or_else(|_| item.materials.clone()),
                    item,
                    values: fields,
                    errors,
                },
            );
        }
    };
    new.counter = staff.counter.clone();
    let now = state.clock.now_ms();
    let appointment = field(&fields, "appointment");
    let created = if appointment.is_empty() {
        state
            .store
            .create_case(item.impl_code.to_string(), new, staff_of(staff), now)
            .await
    } else {
        // The case and the appointment's mark commit together; an appointment started
        // meanwhile from another form is refused and leads to its case.
        let a = match appointment_to_start(state, ctx, appointment).await {
            Ok(a) => a,
            Err(refused) => return *refused,
        };
        match state
            .store
            .create_case_from_appointment(
                a.id,
                item.impl_code.to_string(),
                new,
                staff_of(staff),
                now,
            )
            .await
        {
            Err(StoreError::Conflict(_)) => {
                return match appointment_to_start(state, ctx, appointment).await {
                    Ok(_) => message(
                        ctx,
                        StatusCode::CONFLICT,
                        "case.error.title",
                        ctx.t.get("appointment.error.not_booked").into_owned(),
                    ),
                    Err(refused) => *refused,
                };
            }
            created => created,
        }
    };
    let id = match created {
        Ok(id) => id,
        Err(e) => return case_refused(ctx, e),
    };
    state.submitted_forms.done(&form_id, id.to_string());
    match accept_or_notify(state, staff, &item, &id).await {
        // The receipt (or the one-time notice) at once, to print and hand over.
        Ok(notice) => to_notice(&notice),
        Err(e) => case_refused(ctx, e),
    }
}

/// The page of a notice just issued.
fn to_notice(notice: &StoredNotice) -> Response {
    Redirect::to(&format!("/notices/{}", notice.content.number)).into_response()
}

/// With every required material: accept (and for an instant item, complete) and issue
/// the receipt; otherwise record and issue the one-time notice of what is missing.
/// Returns the notice issued.
async fn accept_or_notify(
    state: &WebState,
    staff: &Session,
    item: &Item,
    id: &DocId,
) -> Result<StoredNotice, StoreError> {
    let now = state.clock.now_ms();
    let detail = state.store.get_case(id.to_string(), state.today()).await?;
    if detail.missing.is_empty() {
        let mut actions = vec![NewAction::Accept];
        if item.case_type == CaseType::Instant {
            actions.push(NewAction::Do(Action::Complete {
                result: record_words().with("record.instant_result", "result", &item.result),
                delivery: record_words().get("record.instant_delivery").into_owned(),
            }));
        }
        state
            .store
            .act_on_case(id.clone(), actions, staff_of(staff), now)
            .await?;
        issue(state, staff, id, NoticeKind::Receipt, None).await
    } else {
        let missing: Vec<MissingMaterial> = detail
            .missing
            .iter()
            .map(|s| MissingMaterial {
                name: s.name.clone(),
                reason: missing_reason(
                    item,
                    &s.name,
                    s.originals_needed.saturating_sub(s.originals_received),
                    s.copies_needed.saturating_sub(s.copies_received),
                ),
            })
            .collect();
        state
            .store
            .act_on_case(
                id.clone(),
                vec![NewAction::Do(Action::NotifyMissing {
                    missing,
                    note: String::new(),
                })],
                staff_of(staff),
                now,
            )
            .await?;
        issue(state, staff, id, NoticeKind::OneTime, None).await
    }
}

/// The words written into the case record and the notices: Chinese, whatever the page's
/// language, since other nodes and the printed notices read them.
fn record_words() -> &'static Tr {
    Tr::of(Lang::Zh)
}

/// Why a material is asked for, in the notice's words: what is short, and the item's note.
fn missing_reason(item: &Item, name: &str, originals: u32, copies: u32) -> String {
    let words = record_words();
    let mut parts = Vec::new();
    if originals > 0 {
        parts.push(words.with("record.short_originals", "count", &originals.to_string()));
    }
    if copies > 0 {
        parts.push(words.with("record.short_copies", "count", &copies.to_string()));
    }
    let what = parts.join(&words.get("record.list_separator"));
    let mut reason = words.with("record.missing_reason", "what", &what);
    if let Some(note) = item
        .materials
        .iter()
        .chain(item.situations.iter().flat_map(|s| &s.adds))
        .find(|m| m.name == name)
        .and_then(|m| m.note.as_deref())
    {
        reason.push_str(&words.get("record.note_separator"));
        reason.push_str(note);
    }
    reason
}

fn case_refused(ctx: &Ctx, e: StoreError) -> Response {
    match e {
        StoreError::Case(e) => {
            let (status, why) = case_error(ctx.t, &e);
            message(ctx, status, "case.error.title", why)
        }
        e => store_failed(ctx, e),
    }
}

/// How a page shows the engine's refusal of an action: its words in the page's language
/// and the status the API answers with (the same rule and code).
pub(super) fn case_error(t: &Tr, e: &CaseError) -> (StatusCode, String) {
    let class = StoreError::Case(e.clone()).class();
    (
        StatusCode::from_u16(class.status()).unwrap_or(StatusCode::CONFLICT),
        t.words(&Words::from(e)),
    )
}

/// The text rule's refusal in the page's language: which field, which character.
pub(super) fn text_refused(t: &Tr, refused: &yizhan_sync::domain::text::Refused) -> String {
    t.words(&Words::from(&CaseError::Text(*refused)))
}

/// Seals and stores a notice about the case as it is now (`Store::issue_case_notice`).
/// Who issues a notice from this page: this node's office and the signed-in staff.
fn issuer_of(state: &WebState, staff: &Session) -> Issuer {
    Issuer {
        office: state.node.name.clone(),
        counter: staff.counter.clone(),
        staff: staff.display_name.clone(),
    }
}

async fn issue(
    state: &WebState,
    staff: &Session,
    id: &DocId,
    kind: NoticeKind,
    correction: Option<Correction>,
) -> Result<StoredNotice, StoreError> {
    let issuer = issuer_of(state, staff);
    state
        .store
        .issue_case_notice(issuer, id.clone(), kind, correction, state.clock.now_ms())
        .await
}

// ---------------------------------------------------------------- the case page

#[derive(Template)]
#[template(path = "case.html")]
struct CasePage<'a> {
    chrome: Chrome<'a>,
    t: &'static Tr,
    csrf: &'a str,
    d: CaseDetail,
    status: String,
    notices: Vec<StoredNotice>,
    /// The supervision notices about the case: state, reply-by date, reason, overdue.
    supervision: Vec<(String, String, String, bool)>,
    /// The item's materials with what is still missing of each, for the supplement form.
    supplement: Vec<(usize, String, u32, u32, bool)>,
    /// Special procedures of the item that stop the clock (§7.3), for the suspend form.
    procedures: Vec<String>,
    errors: Vec<String>,
    x: super::follow::CaseExtras,
    received_at: String,
    /// The booking code of the appointment the case was started from (kept on this
    /// station only: appointments do not sync).
    appointment: Option<String>,
    /// The applicant's query code (查询码).
    query_code: String,
    /// A combined case's parts (并联审批, §7.5): what each decides, its department, its
    /// sub-case here (if held) and where it stands, in words.
    parts: Vec<PartRow>,
    /// The item's fee lines with what was paid and waived (§9.5); empty: 不收费.
    fees: Vec<FeeRow>,
    /// 待缴费 ¥25.00, or 已结清; empty when the item charges nothing.
    fee_summary: String,
    /// Whether something is still due.
    fee_due: bool,
    /// What the worker is told beside the completion form while a fee is unpaid.
    fee_warning: String,
    /// The ways to pay (code, words).
    pay_methods: Vec<(&'static str, String)>,
}

/// A part of a combined case, in words, for the case page and the applicant's status page.
#[derive(Clone, Debug)]
pub struct PartRow {
    pub name: String,
    pub department: String,
    pub case_id: Option<String>,
    pub state: String,
}

/// The parts of a combined case in the reader's words: the sub-case's status, with the
/// decision once decided; a part whose sub-case has not reached this node says so.
pub fn part_rows(t: &Tr, d: &CaseDetail) -> Vec<PartRow> {
    d.parts
        .iter()
        .map(|p| PartRow {
            name: p.name.clone(),
            department: p.department.clone(),
            case_id: p.case_id.clone(),
            state: match (p.status, p.decision) {
                (None, _) => t.get("case.part_not_here").into_owned(),
                (Some(status), decision) => {
                    let mut words = t.get(&format!("status.{}", status.as_str())).into_owned();
                    if let Some(approved) = decision {
                        words.push_str(" · ");
                        words.push_str(&t.get(if approved {
                            "case.part_approved"
                        } else {
                            "case.part_denied"
                        }));
                    }
                    words
                }
            },
        })
        .collect()
}

/// A fee line as the case page shows it.
struct FeeRow {
    name: String,
    standard: String,
    basis: String,
    /// 已缴 ¥20.00 · 现金 · 票据号 …, or empty.
    paid: String,
    /// 减免 ¥5.00 · reason (basis), or empty.
    exempted: String,
    /// 待缴费 ¥15.00, 待缴费（按收费标准） or 已结清.
    state: String,
    settled: bool,
}

/// The fee lines of a case in the reader's language: what each had and what is due.
fn fee_rows(t: &Tr, fees: &CaseFees) -> Vec<FeeRow> {
    fees.lines
        .iter()
        .map(|l| FeeRow {
            name: l.line.name.clone(),
            standard: l.line.standard.clone(),
            basis: l.line.basis.clone(),
            paid: l.payment.as_ref().map_or(String::new(), |p| {
                format!(
                    "{} · {} · {} {} · {}",
                    t.with("fee.paid", "amount", &yuan(p.amount_fen)),
                    t.get(&format!("fee.method.{}", p.method.as_str())),
                    t.get("fee.receipt"),
                    p.receipt,
                    t.with("fee.recorded_by", "staff", &p.staff)
                        .replace("{date}", &p.on.to_string()),
                )
            }),
            exempted: l.exemption.as_ref().map_or(String::new(), |e| {
                format!(
                    "{} · {}（{}）· {}",
                    t.with("fee.exempted", "amount", &yuan(e.amount_fen)),
                    e.reason,
                    e.basis,
                    t.with("fee.recorded_by", "staff", &e.staff)
                        .replace("{date}", &e.on.to_string()),
                )
            }),
            state: fee_state(t, l),
            settled: l.settled(),
        })
        .collect()
}

fn fee_state(t: &Tr, line: &LineFees) -> String {
    match line.outstanding_fen() {
        _ if line.settled() => t.get("fee.settled").into_owned(),
        Some(left) => t.with("fee.outstanding", "amount", &yuan(left)),
        None => t.get("fee.outstanding_open").into_owned(),
    }
}

impl CasePage<'_> {
    /// Whether the action of this kind is offered (`engine::allowed_actions`).
    fn may(&self, kind: &str) -> bool {
        self.x.may(kind)
    }

    /// Whether any follow-up action (beyond acceptance, supplements and refusal) is.
    fn any_follow_up(&self) -> bool {
        [
            "sign_for",
            "decide",
            "transfer",
            "suspend",
            "resume",
            "extend",
            "request_extension",
            "decline_extension",
            "complete",
            "withdraw",
        ]
        .iter()
        .any(|k| self.may(k))
    }

    fn notice_title(&self, n: &StoredNotice) -> String {
        self.t
            .get(&format!("notice.kind.{}", n.content.kind.as_str()))
            .into_owned()
    }
}

/// `GET /cases/{id}`.
pub async fn show(State(state): State<WebState>, ctx: Ctx, Path(id): Path<String>) -> Response {
    case_page(&state, &ctx, &id, StatusCode::OK, Vec::new()).await
}

async fn case_page(
    state: &WebState,
    ctx: &Ctx,
    id: &str,
    status: StatusCode,
    errors: Vec<String>,
) -> Response {
    let Some(staff) = ctx.session.as_ref() else {
        return ctx.to_signin();
    };
    let d = match state.store.get_case(id.to_string(), state.today()).await {
        Ok(d) => d,
        Err(e) => return store_failed(ctx, e),
    };
    let notices = match state.store.notices_of_case(d.summary.id.clone()).await {
        Ok(n) => n,
        Err(e) => return store_failed(ctx, e),
    };
    // Supervision of this case (督办): where each notice stands, seen at the station and
    // at every hall above; the list page has the issue and reply forms.
    let supervision = match state
        .store
        .supervision_list(
            crate::store::SupervisionFilter {
                case_id: Some(d.summary.id.clone()),
                state: None,
                unanswered: false,
            },
            state.today(),
            50,
        )
        .await
    {
        Ok(list) => list
            .into_iter()
            .map(|v| {
                let key = match v.state {
                    ReplyState::Open => "open",
                    ReplyState::Overdue => "overdue",
                    ReplyState::AnsweredOnTime => "answered_on_time",
                    ReplyState::AnsweredLate => "answered_late",
                };
                (
                    ctx.t.get(&format!("supervision.state.{key}")).into_owned(),
                    v.due.to_string(),
                    v.notice.reason,
                    v.state == ReplyState::Overdue,
                )
            })
            .collect(),
        Err(e) => return store_failed(ctx, e),
    };
    let d_created_ms = d.summary.created_ms;
    let x = match super::follow::case_extras(state, ctx.t, staff, &d).await {
        Ok(x) => x,
        Err(e) => return store_failed(ctx, e),
    };
    let supplement = d
        .intake
        .item
        .materials
        .iter()
        .enumerate()
        .map(|(n, rule)| {
            let missing = d.missing.iter().any(|m| m.name == rule.name);
            (n, rule.name.clone(), rule.originals, rule.copies, missing)
        })
        .collect();
    let procedures = d
        .intake
        .item
        .special_procedures
        .iter()
        .filter(|p| !p.counted)
        .map(|p| p.name.clone())
        .collect();
    let appointment = match state.store.appointment_of_case(d.summary.id.clone()).await {
        Ok(a) => a.map(|a| a.code),
        Err(e) => return store_failed(ctx, e),
    };
    let query_code = d.query_code();
    let parts = part_rows(ctx.t, &d);
    let t = ctx.t;
    let fees = fee_rows(t, &d.state.fees);
    let unsettled = d.state.fees.unsettled();
    let fee_due = !unsettled.is_empty();
    let fee_summary = if fees.is_empty() {
        String::new()
    } else if !fee_due {
        t.get("fee.settled").into_owned()
    } else if d.state.fees.outstanding_fen() > 0 {
        t.with(
            "fee.outstanding",
            "amount",
            &yuan(d.state.fees.outstanding_fen()),
        )
    } else {
        t.get("fee.outstanding_open").into_owned()
    };
    // §9.5.2: the worker is told before completing; completion is not refused, since a
    // fee line's standard may not apply to every applicant (a first issue free).
    let fee_warning = if fee_due && x.may("complete") {
        t.with(
            "fee.before_complete",
            "lines",
            &unsettled
                .iter()
                .map(|l| format!("{}（{}）", l.line.name, fee_state(t, l)))
                .collect::<Vec<_>>()
                .join(t.get("list.separator").as_ref()),
        )
    } else {
        String::new()
    };
    let pay_methods = PayMethod::ALL
        .into_iter()
        .map(|m| {
            (
                m.as_str(),
                t.get(&format!("fee.method.{}", m.as_str())).into_owned(),
            )
        })
        .collect();
    render(
        ctx.t,
        status,
        CasePage {
            chrome: ctx.chrome(),
            t: ctx.t,
            csrf: &staff.csrf,
            // The derived state's: a combined case's is the whole's, with its parts.
            status: ctx
                .t
                .get(&format!("status.{}", d.state.status.as_str()))
                .into_owned(),
            parts,
            d,
            notices,
            supervision,
            query_code,
            supplement,
            procedures,
            errors,
            x,
            received_at: minute_cst(d_created_ms),
            appointment,
            fees,
            fee_summary,
            fee_due,
            fee_warning,
            pay_methods,
        },
    )
}

async fn item_of(state: &WebState, d: &CaseDetail) -> Result<Item, StoreError> {
    state
        .store
        .get_item(d.intake.item.impl_code.to_string())
        .await
}

/// `POST /cases/{id}/supplement`: materials handed in later (补正); when nothing
/// required is missing any more, the case is accepted and the receipt issued.
pub async fn supplement(
    State(state): State<WebState>,
    CaseForm {
        ctx,
        staff,
        id,
        case: doc_id,
        form: fields,
    }: CaseForm<Fields>,
) -> Response {
    let d = match state.store.get_case(id.clone(), state.today()).await {
        Ok(d) => d,
        Err(e) => return store_failed(&ctx, e),
    };
    let materials = received_from(
        d.intake
            .item
            .materials
            .iter()
            .map(|m| (&m.name, m.originals, m.copies)),
        &fields,
        "s",
    );
    if materials.is_empty() {
        let errors = vec![ctx.t.get("case.error.supplement_empty").into_owned()];
        return case_page(&state, &ctx, &id, StatusCode::UNPROCESSABLE_ENTITY, errors).await;
    }
    let now = state.clock.now_ms();
    if let Err(e) = state
        .store
        .act_on_case(
            doc_id.clone(),
            vec![NewAction::Do(Action::Supplement { materials })],
            staff_of(&staff),
            now,
        )
        .await
    {
        return case_refused(&ctx, e);
    }
    let item = match item_of(&state, &d).await {
        Ok(item) => item,
        Err(e) => return store_failed(&ctx, e),
    };
    match accept_or_notify(&state, &staff, &item, &doc_id).await {
        Ok(notice) => to_notice(&notice),
        Err(e) => case_refused(&ctx, e),
    }
}

/// `POST /cases/{id}/act`: the follow-up actions on a case (§5.5, §7.3): suspend for a
/// special procedure, resume, extend, complete, withdraw, and those of
/// [`super::follow::follow_up_action`] (decide, transfer, sign for, resolve, rectify).
/// Each is checked by the state machine and refused with a message saying why.
pub async fn act(
    State(state): State<WebState>,
    CaseForm {
        ctx,
        staff,
        id,
        case: doc_id,
        form: fields,
    }: CaseForm<Fields>,
) -> Response {
    let text = |name: &str| field(&fields, name).to_string();
    if field(&fields, "kind") == "accept" {
        // 受理 a received application whose materials are all in: the receipt at once.
        let d = match state.store.get_case(id.clone(), state.today()).await {
            Ok(d) => d,
            Err(e) => return store_failed(&ctx, e),
        };
        let item = match item_of(&state, &d).await {
            Ok(item) => item,
            Err(e) => return store_failed(&ctx, e),
        };
        return match accept_or_notify(&state, &staff, &item, &doc_id).await {
            Ok(notice) => to_notice(&notice),
            Err(StoreError::Case(e)) => {
                let (status, why) = case_error(ctx.t, &e);
                case_page(&state, &ctx, &id, status, vec![why]).await
            }
            Err(e) => store_failed(&ctx, e),
        };
    }
    let action = match field(&fields, "kind") {
        "suspend" => Action::Suspend {
            procedure: text("procedure"),
            reason: text("reason"),
        },
        "resume" => Action::Resume { note: text("note") },
        "extend" | "request_extension" => match field(&fields, "days").parse::<u32>() {
            Ok(days) if field(&fields, "kind") == "request_extension" => Action::RequestExtension {
                days,
                reason: text("reason"),
            },
            Ok(days) => Action::Extend {
                days,
                reason: text("reason"),
                request: Some(text("request")).filter(|r| !r.is_empty()),
            },
            Err(_) => {
                let errors = vec![ctx.t.get("case.error.days").into_owned()];
                return case_page(&state, &ctx, &id, StatusCode::UNPROCESSABLE_ENTITY, errors)
                    .await;
            }
        },
        "complete" => Action::Complete {
            result: text("result"),
            delivery: text("delivery"),
        },
        "withdraw" => Action::Withdraw {
            reason: text("reason"),
        },
        "decline_extension" => Action::DeclineExtension {
            reason: text("reason"),
        },
        // §9.5: amounts are typed in yuan and kept in fen, exactly.
        kind @ ("pay" | "exempt") => {
            let Some(amount_fen) = parse_yuan(field(&fields, "amount")) else {
                let errors = vec![ctx.t.get("fee.error.amount").into_owned()];
                return case_page(&state, &ctx, &id, StatusCode::UNPROCESSABLE_ENTITY, errors)
                    .await;
            };
            if kind == "exempt" {
                Action::Exempt {
                    fee: text("fee"),
                    amount_fen,
                    reason: text("reason"),
                    basis: text("basis"),
                }
            } else {
                let Some(method) = PayMethod::parse(field(&fields, "method")) else {
                    let errors = vec![ctx.t.get("fee.error.method").into_owned()];
                    return case_page(&state, &ctx, &id, StatusCode::UNPROCESSABLE_ENTITY, errors)
                        .await;
                };
                Action::Pay {
                    fee: text("fee"),
                    amount_fen,
                    method,
                    receipt: text("receipt"),
                }
            }
        }
        other => match super::follow::follow_up_action(&state, ctx.t, other, &fields).await {
            Some(Ok(action)) => action,
            Some(Err((code, why))) => {
                return case_page(&state, &ctx, &id, code, vec![why]).await;
            }
            None => {
                let errors = vec![ctx.t.get("case.error.unknown_action").into_owned()];
                return case_page(&state, &ctx, &id, StatusCode::UNPROCESSABLE_ENTITY, errors)
                    .await;
            }
        },
    };
    let now = state.clock.now_ms();
    // An extension or a special procedure is told to the applicant in writing (行政许可法
    // §42, §45): its notice is issued and shown at once.
    let notice = match action.kind() {
        ActionKind::Extend => Some(NoticeKind::Extension),
        ActionKind::Suspend => Some(NoticeKind::Suspension),
        _ => None,
    };
    let decides = action.kind() == ActionKind::Decide;
    match state
        .store
        .act_on_case(
            doc_id.clone(),
            vec![NewAction::Do(action)],
            staff_of(&staff),
            now,
        )
        .await
    {
        Ok(()) => match notice {
            Some(kind) => match issue(&state, &staff, &doc_id, kind, None).await {
                Ok(notice) => to_notice(&notice),
                Err(e) => case_refused(&ctx, e),
            },
            // The deciding department's decision notice, under its seal (§9.6).
            None if decides => match state
                .store
                .issue_decision_notice(issuer_of(&state, &staff), doc_id.clone(), now)
                .await
            {
                Ok(Some(notice)) => to_notice(&notice),
                Ok(None) => Redirect::to(&format!("/cases/{id}")).into_response(),
                Err(e) => case_refused(&ctx, e),
            },
            None => Redirect::to(&format!("/cases/{id}")).into_response(),
        },
        // The engine's refusal, on the case page.
        Err(StoreError::Case(e)) => {
            let (status, why) = case_error(ctx.t, &e);
            case_page(&state, &ctx, &id, status, vec![why]).await
        }
        Err(e) => store_failed(&ctx, e),
    }
}

/// `POST /cases/{id}/refuse`: 不予受理 with reason, legal basis and remedies, and the
/// refusal notice.
pub async fn refuse(
    State(state): State<WebState>,
    CaseForm {
        ctx,
        staff,
        id,
        case: doc_id,
        form: fields,
    }: CaseForm<Fields>,
) -> Response {
    let (reason, basis, remedies) = (
        field(&fields, "reason"),
        field(&fields, "basis"),
        field(&fields, "remedies"),
    );
    if reason.is_empty() || basis.is_empty() || remedies.is_empty() {
        let errors = vec![ctx.t.get("case.error.refusal").into_owned()];
        return case_page(&state, &ctx, &id, StatusCode::UNPROCESSABLE_ENTITY, errors).await;
    }
    let authority = field(&fields, "competent_authority");
    let action = Action::Refuse {
        reason: reason.to_string(),
        basis: basis.to_string(),
        remedies: remedies.to_string(),
        competent_authority: (!authority.is_empty()).then(|| authority.to_string()),
    };
    let now = state.clock.now_ms();
    if let Err(e) = state
        .store
        .act_on_case(
            doc_id.clone(),
            vec![NewAction::Do(action)],
            staff_of(&staff),
            now,
        )
        .await
    {
        return case_refused(&ctx, e);
    }
    if let Err(e) = issue(&state, &staff, &doc_id, NoticeKind::Refusal, None).await {
        return case_refused(&ctx, e);
    }
    Redirect::to(&format!("/cases/{id}")).into_response()
}

// ---------------------------------------------------------------- notices

#[derive(Template)]
#[template(path = "notice.html")]
struct NoticePage<'a> {
    chrome: Chrome<'a>,
    t: &'static Tr,
    csrf: &'a str,
    /// Where to check it: this node's `/verify`, as the counter PC reached it.
    verify_address: String,
    /// The later notice that corrects this one, if any.
    superseded_by: Option<String>,
    n: NoticeContent,
    title: String,
    qr_svg: String,
    qr_text: String,
    /// The link the QR code holds.
    qr_link: String,
    /// When it was issued and the dates it states, as people write them.
    issued: String,
    dates: NoticeDates,
    digest: String,
}

/// Where phones reach this node: `[http] public_url`, or the address the request came by.
fn public_base(state: &WebState, headers: &axum::http::HeaderMap) -> String {
    if let Some(url) = &state.public_url {
        return url.clone();
    }
    let host = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".:-[]".contains(c))
        })
        .unwrap_or("");
    let scheme = if state.tls { "https" } else { "http" };
    format!("{scheme}://{host}")
}

/// A day as people write it: 2026年12月6日 (6 Dec 2026 in English).
pub(super) fn human_date(t: &Tr, iso: &str) -> String {
    let parts: Vec<&str> = iso.get(..10).unwrap_or(iso).split('-').collect();
    match parts[..] {
        [y, m, d] => t
            .get("date.format")
            .replace("{y}", y)
            .replace("{m}", m.trim_start_matches('0'))
            .replace("{d}", d.trim_start_matches('0'))
            .replace(
                "{mon}",
                &t.get(&format!("date.month.{}", m.trim_start_matches('0'))),
            ),
        _ => iso.to_string(),
    }
}

/// A day and a minute as people write them: 2026年12月6日 23:54.
pub(super) fn human_time(t: &Tr, rfc3339: &str) -> String {
    match rfc3339.get(11..16) {
        Some(hm) => format!("{} {hm}", human_date(t, rfc3339)),
        None => human_date(t, rfc3339),
    }
}

/// The dates a notice states, as people write them.
#[derive(Debug, Default)]
struct NoticeDates {
    committed_due: Option<String>,
    legal_due: Option<String>,
    since: Option<String>,
}

impl NoticeDates {
    fn of(t: &Tr, n: &NoticeContent) -> NoticeDates {
        NoticeDates {
            committed_due: n.committed_due.as_deref().map(|d| human_date(t, d)),
            legal_due: n.legal_due.as_deref().map(|d| human_date(t, d)),
            since: n.suspension.as_ref().map(|s| human_date(t, &s.since)),
        }
    }
}

/// `GET /notices/{number}`: a notice, printable, with its seal as a QR code.
pub async fn notice_page(
    State(state): State<WebState>,
    ctx: Ctx,
    headers: axum::http::HeaderMap,
    Path(number): Path<String>,
) -> Response {
    let Some(staff) = ctx.session.as_ref() else {
        return ctx.to_signin();
    };
    let stored = match state.store.notice(number).await {
        Ok(Some(stored)) => stored,
        Ok(None) => {
            return store_failed(
                &ctx,
                StoreError::NotFound {
                    what: "notice".into(),
                },
            );
        }
        Err(e) => return store_failed(&ctx, e),
    };
    let text = notice::qr_text(
        &stored.content.node,
        &stored.content.number,
        &stored.digest,
        &stored.signature,
    );
    // The QR is a link a phone camera opens: this node's public address, its verify page,
    // and the number with the seal.
    let base = public_base(&state, &headers);
    let link = format!(
        "{base}/verify?c={}",
        notice::short_code(&stored.content.number, &stored.signature)
    );
    let qr_svg =
        match qrcode::QrCode::with_error_correction_level(link.as_bytes(), qrcode::EcLevel::M) {
            Ok(code) => code
                .render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(200, 200)
                .build(),
            Err(_) => String::new(),
        };
    let superseded_by = match state
        .store
        .notices_of_case(stored.content.case_id.clone())
        .await
    {
        Ok(all) => all
            .into_iter()
            .find(|n| n.content.supersedes.as_deref() == Some(stored.content.number.as_str()))
            .map(|n| n.content.number),
        Err(e) => return store_failed(&ctx, e),
    };
    render(
        ctx.t,
        StatusCode::OK,
        NoticePage {
            chrome: ctx.chrome(),
            t: ctx.t,
            csrf: &staff.csrf,
            verify_address: format!("{base}/verify"),
            qr_link: link,
            issued: human_time(ctx.t, &stored.content.issued_at),
            dates: NoticeDates::of(ctx.t, &stored.content),
            superseded_by,
            title: ctx
                .t
                .get(&format!("notice.kind.{}", stored.content.kind.as_str()))
                .into_owned(),
            digest: yizhan_sync::ids::hex(&stored.digest),
            n: stored.content,
            qr_svg,
            qr_text: text,
        },
    )
}

/// `POST /notices/{number}/correct`: issues a new notice of the same kind from the case
/// as it is now, naming the one it corrects and why; the worker confirms that the old one
/// is void. The old notice stays as it was.
pub async fn correct_notice(
    State(state): State<WebState>,
    Path(number): Path<String>,
    StaffForm {
        ctx,
        staff,
        form: fields,
    }: StaffForm<Fields>,
) -> Response {
    let reason: String = field(&fields, "reason").chars().take(1000).collect();
    if reason.is_empty() || field(&fields, "confirm") != "yes" {
        return message(
            &ctx,
            StatusCode::UNPROCESSABLE_ENTITY,
            "case.error.title",
            ctx.t.get("notice.correct_needs").into_owned(),
        );
    }
    if let Err(refused) = yizhan_sync::domain::text::lines("reason", &reason) {
        return message(
            &ctx,
            StatusCode::UNPROCESSABLE_ENTITY,
            "case.error.title",
            text_refused(ctx.t, &refused),
        );
    }
    let old = match state.store.notice(number.clone()).await {
        Ok(Some(old)) => old,
        Ok(None) => return store_failed(&ctx, StoreError::NotFound { what: number }),
        Err(e) => return store_failed(&ctx, e),
    };
    let Some(case_id) = DocId::parse(&old.content.case_id) else {
        return store_failed(&ctx, StoreError::NotFound { what: number });
    };
    // Only the newest notice of a line is corrected, and only while it still fits the case.
    let (notices, detail) = match (
        state
            .store
            .notices_of_case(old.content.case_id.clone())
            .await,
        state
            .store
            .get_case(old.content.case_id.clone(), state.today())
            .await,
    ) {
        (Ok(n), Ok(d)) => (n, d),
        (Err(e), _) | (_, Err(e)) => return store_failed(&ctx, e),
    };
    if let Some(newer) = notices
        .iter()
        .find(|n| n.content.supersedes.as_deref() == Some(number.as_str()))
    {
        return message(
            &ctx,
            StatusCode::CONFLICT,
            "case.error.title",
            ctx.t
                .with("notice.already_corrected", "number", &newer.content.number),
        );
    }
    let fits = match old.content.kind {
        NoticeKind::OneTime => detail.summary.status == Status::AwaitingSupplement,
        NoticeKind::Refusal => detail.summary.status == Status::Refused,
        NoticeKind::Receipt => {
            detail.summary.serial_no.is_some()
                && !matches!(detail.summary.status, Status::Refused | Status::Withdrawn)
        }
        NoticeKind::Extension => {
            detail.state.extension_days > 0 && !detail.summary.status.is_closed()
        }
        NoticeKind::Suspension => detail.summary.status == Status::Suspended,
        NoticeKind::Decision => detail.state.decision.is_some(),
    };
    if !fits {
        return message(
            &ctx,
            StatusCode::CONFLICT,
            "case.error.title",
            ctx.t.get("notice.no_longer_fits").into_owned(),
        );
    }
    match issue(
        &state,
        &staff,
        &case_id,
        old.content.kind,
        Some(Correction {
            supersedes: number,
            reason,
        }),
    )
    .await
    {
        Ok(new) => Redirect::to(&format!("/notices/{}", new.content.number)).into_response(),
        Err(e) => case_refused(&ctx, e),
    }
}

// ---------------------------------------------------------------- verification

#[derive(Template)]
#[template(path = "verify.html")]
struct VerifyPage<'a> {
    chrome: Chrome<'a>,
    t: &'static Tr,
    code: String,
    verdict: Option<Verdict>,
}

/// What `/verify` found.
#[derive(Debug)]
struct Verdict {
    valid: bool,
    why: String,
    /// The sealed content, when this node holds it, so the reader can compare every line
    /// with the paper in hand.
    notice: Option<NoticeContent>,
    kind_title: String,
    superseded_by: Option<String>,
    /// The dates the notice states, as people write them.
    dates: NoticeDates,
    /// Whose approval seal (§9.6) it carries, worded, when a department's.
    department: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
pub struct VerifyQuery {
    /// The full code printed on a notice (`YZN1/…`), pasted or typed.
    code: Option<String>,
    /// The short code the QR link carries (`NUMBER.SEAL`).
    c: Option<String>,
}

/// `GET /verify?c=…` (public): the page a notice's QR link opens, showing the sealed
/// content this node holds; `GET /verify?code=…` checks the full printed code, offline.
pub async fn verify(
    State(state): State<WebState>,
    ctx: Ctx,
    Query(query): Query<VerifyQuery>,
) -> Response {
    if let Some(short) = query.c.as_deref().filter(|c| !c.trim().is_empty()) {
        let verdict = match check_short(&state, ctx.t, short).await {
            Ok(verdict) => verdict,
            Err(e) => return store_failed(&ctx, e),
        };
        return render(
            ctx.t,
            StatusCode::OK,
            VerifyPage {
                chrome: ctx.chrome(),
                t: ctx.t,
                code: String::new(),
                verdict: Some(verdict),
            },
        );
    }
    let code: String = query
        .code
        .unwrap_or_default()
        .trim()
        .chars()
        .take(1000)
        .collect();
    let verdict = if code.is_empty() {
        None
    } else {
        match check(&state, ctx.t, &code).await {
            Ok(verdict) => Some(verdict),
            Err(e) => return store_failed(&ctx, e),
        }
    };
    render(
        ctx.t,
        StatusCode::OK,
        VerifyPage {
            chrome: ctx.chrome(),
            t: ctx.t,
            code,
            verdict,
        },
    )
}

/// The QR link's check: the notice with that number as this node holds it, its seal the
/// one in the link and its content still what was sealed.
async fn check_short(state: &WebState, t: &Tr, short: &str) -> Result<Verdict, StoreError> {
    let invalid = |key: &str| Verdict {
        valid: false,
        why: t.get(key).into_owned(),
        notice: None,
        kind_title: String::new(),
        superseded_by: None,
        dates: NoticeDates::default(),
        department: None,
    };
    let Some((number, signature)) = notice::parse_short(short) else {
        return Ok(invalid("verify.not_a_seal"));
    };
    let Some(stored) = state.store.notice(number).await? else {
        return Ok(invalid("verify.not_held"));
    };
    let Some(record) = state.store.node_record(stored.content.node.clone()).await? else {
        return Ok(invalid("verify.unknown_key"));
    };
    let seal = QrSeal {
        node: stored.content.node.clone(),
        number: stored.content.number.clone(),
        digest: stored.digest,
        signature,
    };
    if signature != stored.signature {
        return Ok(invalid("verify.bad_signature"));
    }
    match sealed_by(stored.content.seal.as_ref(), &seal, &record) {
        SealCheck::Genuine => {}
        SealCheck::BadSignature => return Ok(invalid("verify.bad_signature")),
        SealCheck::NotCertified => return Ok(invalid("verify.not_certified")),
    }
    if record.revoked.is_some() {
        return Ok(invalid("verify.revoked"));
    }
    if stored.content.digest() != stored.digest {
        return Ok(invalid("verify.altered"));
    }
    held_verdict(state, t, &record.name, stored).await
}

/// A valid notice this node holds, with its content to compare and its correction.
async fn held_verdict(
    state: &WebState,
    t: &Tr,
    office: &str,
    stored: StoredNotice,
) -> Result<Verdict, StoreError> {
    let superseded_by = state
        .store
        .notices_of_case(stored.content.case_id.clone())
        .await?
        .into_iter()
        .find(|n| n.content.supersedes.as_deref() == Some(stored.content.number.as_str()))
        .map(|n| n.content.number);
    let department = stored.content.seal.as_ref().map(|s| department_words(t, s));
    Ok(Verdict {
        department,
        valid: true,
        why: t.with("verify.valid", "office", office),
        kind_title: t
            .get(&format!("notice.kind.{}", stored.content.kind.as_str()))
            .into_owned(),
        dates: NoticeDates::of(t, &stored.content),
        notice: Some(stored.content),
        superseded_by,
    })
}

async fn check(state: &WebState, t: &Tr, code: &str) -> Result<Verdict, StoreError> {
    let invalid = |key: &str| Verdict {
        valid: false,
        why: t.get(key).into_owned(),
        notice: None,
        kind_title: String::new(),
        superseded_by: None,
        dates: NoticeDates::default(),
        department: None,
    };
    let seal: QrSeal = match notice::parse_qr(code) {
        Ok(seal) => seal,
        Err(_) => return Ok(invalid("verify.not_a_seal")),
    };
    let Some(record) = state.store.node_record(seal.node.clone()).await? else {
        return Ok(invalid("verify.unknown_key"));
    };
    // Notices travel up with their cases: a hall holds its stations' as they do.
    let held = state
        .store
        .notice(seal.number.clone())
        .await?
        .filter(|stored| stored.content.node.eq_ignore_ascii_case(&seal.node));
    // The seal it carries: the one in the notice held here, else, for a code alone, the
    // hall's own key or one of the department seals it certified that this node knows.
    let department = match &held {
        Some(stored) => stored.content.seal.clone(),
        None if notice::signature_holds(&seal, &record.public_key) => None,
        None => state
            .store
            .seals_of_hall(seal.node.clone())
            .await?
            .into_iter()
            .map(|certificate| yizhan_sync::domain::department::NoticeSeal {
                department: String::new(),
                certificate,
            })
            .find(|s| sealed_by(Some(s), &seal, &record) == SealCheck::Genuine),
    };
    match sealed_by(department.as_ref(), &seal, &record) {
        SealCheck::Genuine => {}
        SealCheck::BadSignature => return Ok(invalid("verify.bad_signature")),
        SealCheck::NotCertified => return Ok(invalid("verify.not_certified")),
    }
    if record.revoked.is_some() {
        return Ok(invalid("verify.revoked"));
    }
    Ok(match held {
        Some(stored) if stored.content.digest() != seal.digest || stored.digest != seal.digest => {
            invalid("verify.altered")
        }
        Some(stored) => held_verdict(state, t, &record.name, stored).await?,
        None => Verdict {
            valid: true,
            why: t.with("verify.valid_elsewhere", "office", &record.name),
            notice: None,
            kind_title: String::new(),
            superseded_by: None,
            dates: NoticeDates::default(),
            department: department.as_ref().map(|s| department_words(t, s)),
        },
    })
}

/// How a notice's seal checks out against its issuing node's record: a department's
/// seal only at a hall, and only certified by it (SZDB/Z 176 §9.6).
fn sealed_by(
    department: Option<&yizhan_sync::domain::department::NoticeSeal>,
    seal: &QrSeal,
    record: &yizhan_sync::auth::NodeRecord,
) -> SealCheck {
    if department.is_some() && !record.role.is_hall() {
        return SealCheck::NotCertified;
    }
    notice::seal_check(department, seal, &record.public_key)
}

/// "The approval seal of 区民政局 (key 2)".
fn department_words(t: &Tr, seal: &yizhan_sync::domain::department::NoticeSeal) -> String {
    t.get("verify.department_seal")
        .replace("{name}", &seal.certificate.name)
        .replace("{key}", &seal.certificate.key_no.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reasons a one-time notice gives are sealed and synced: their words must not
    /// change with the page's language or a refactoring.
    #[test]
    fn missing_reasons_read_as_the_notices_always_did() {
        let mut item = crate::store::tests::item("居住证申领");
        let name = item.materials[0].name.clone();
        assert_eq!(
            missing_reason(&item, &name, 1, 2),
            "本事项必需材料（缺原件 1 份，缺复印件 2 份）"
        );
        item.materials[0].note = Some("需本人签名".into());
        assert_eq!(
            missing_reason(&item, &name, 0, 1),
            "本事项必需材料（缺复印件 1 份）；需本人签名"
        );
        assert_eq!(
            record_words().with("record.instant_result", "result", "居住证"),
            "准予办理：居住证"
        );
        assert_eq!(
            record_words().get("record.instant_delivery"),
            "窗口当场送达"
        );
    }
}
