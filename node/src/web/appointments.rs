//! Appointments (预约, SZDB/Z 176 §9.4): applicants book a time slot for an item on a
//! public page (no sign-in, phone-sized), keep a booking code, and may cancel with it;
//! the counter lists a day's appointments and starts a case from one in one step
//! (the intake form opens prefilled; see `cases::new_form` and `cases::create`).
//!
//! Public forms have no session, so their CSRF secret is a double-submit cookie
//! (`yz_book`, like the sign-in form's), and bookings per client address go through the
//! sign-in throttle under `book:` keys.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use yizhan_sync::domain::calendar::{Date, Weekday};
use yizhan_sync::domain::case::Phone;
use yizhan_sync::domain::item::{Item, ItemStatus, Material};

use super::WebState;
use super::{Chrome, Ctx, cookie_in, message, render, session, store_failed};
use crate::appointments::{Minute, Schedule, Slot, mask_phone, normalize_code};
use crate::i18n::Tr;
use crate::store::{
    Appointment, AppointmentStatus, BookingRefused, CancelRefused, ItemFilter, NewAppointment,
};

/// The public forms' CSRF secret (double-submit cookie), for `/appointments/…` only.
const BOOK_COOKIE: &str = "yz_book";

/// A form's fields, in order.
type Fields = Vec<(String, String)>;

fn field<'a>(fields: &'a Fields, name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
        .trim()
}

/// The schedule, or the page saying this station takes no appointments.
fn schedule_or_refuse(
    state: &WebState,
    ctx: &Ctx,
) -> Result<std::sync::Arc<Schedule>, Box<Response>> {
    state.appointments.clone().ok_or_else(|| {
        Box::new(message(
            ctx,
            StatusCode::NOT_FOUND,
            "appointment.title",
            ctx.t.get("appointment.off").into_owned(),
        ))
    })
}

/// The visitor's CSRF secret: the one in their cookie (so two open tabs both work), or a
/// fresh one.
fn book_secret(headers: &HeaderMap) -> String {
    cookie_in(headers, BOOK_COOKIE)
        .filter(|c| c.len() == 64 && c.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(session::random_token)
}

fn with_book_cookie(mut response: Response, secret: &str, tls: bool) -> Response {
    let secure = if tls { "; Secure" } else { "" };
    if let Ok(value) = HeaderValue::from_str(&format!(
        "{BOOK_COOKIE}={secret}; Path=/appointments; HttpOnly; SameSite=Strict; Max-Age=7200{secure}"
    )) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// `None` when the form carries the cookie's secret.
fn refuse_without_book_secret(ctx: &Ctx, headers: &HeaderMap, sent: &str) -> Option<Response> {
    match cookie_in(headers, BOOK_COOKIE) {
        Some(secret) if session::same_secret(&secret, sent) => None,
        _ => Some(message(
            ctx,
            StatusCode::FORBIDDEN,
            "appointment.title",
            ctx.t.get("appointment.error.expired").into_owned(),
        )),
    }
}

fn weekday(t: &Tr, day: Date) -> String {
    let key = match day.weekday() {
        Weekday::Mon => "appointment.weekday.mon",
        Weekday::Tue => "appointment.weekday.tue",
        Weekday::Wed => "appointment.weekday.wed",
        Weekday::Thu => "appointment.weekday.thu",
        Weekday::Fri => "appointment.weekday.fri",
        Weekday::Sat => "appointment.weekday.sat",
        Weekday::Sun => "appointment.weekday.sun",
    };
    t.with("appointment.day_label", "day", &day.to_string())
        .replace("{weekday}", &t.get(key))
}

fn status_label(t: &Tr, status: AppointmentStatus) -> String {
    t.get(match status {
        AppointmentStatus::Booked => "appointment.status.booked",
        AppointmentStatus::Cancelled => "appointment.status.cancelled",
        AppointmentStatus::Arrived => "appointment.status.arrived",
    })
    .into_owned()
}

fn until(schedule: &Schedule, start: Minute) -> Minute {
    Minute::of_day(start.minutes() + schedule.slot_minutes)
}

/// The time of day now, China Standard Time.
fn now_minute(state: &WebState) -> Minute {
    Minute::from_unix_ms_cst(state.clock.now_ms() as i64)
}

// ---------------------------------------------------------------- booking

/// One slot of the booking form.
#[derive(Debug)]
struct SlotView {
    /// The radio value, `YYYY-MM-DDTHH:MM`.
    value: String,
    /// An id safe in CSS selectors, `slot-YYYYMMDD-HHMM`.
    id: String,
    time: String,
    left: u32,
    checked: bool,
}

#[derive(Debug)]
struct DayView {
    label: String,
    slots: Vec<SlotView>,
    /// Shown unfolded: the first day with a free place, and the day of the slot chosen.
    /// The others fold away (`<details>`, no script), so a phone shows one day at a time.
    open: bool,
    /// Free places that day.
    free: u32,
}

#[derive(Template)]
#[template(path = "appointment_book.html")]
struct BookPage<'a> {
    chrome: Chrome<'a>,
    t: &'static Tr,
    csrf: String,
    /// Without an item: the items one may book.
    items: Vec<(String, String, String)>,
    item: Option<Item>,
    days: Vec<DayView>,
    name: String,
    phone: String,
    errors: Vec<String>,
}

#[derive(Debug, serde::Deserialize)]
pub struct BookQuery {
    item: Option<String>,
}

/// `GET /appointments/book[?item=CODE]`: pick an item, then a day and a slot.
pub async fn book_form(
    State(state): State<WebState>,
    ctx: Ctx,
    headers: HeaderMap,
    Query(query): Query<BookQuery>,
) -> Response {
    let schedule = match schedule_or_refuse(&state, &ctx) {
        Ok(s) => s,
        Err(refused) => return *refused,
    };
    let secret = book_secret(&headers);
    let item = match query.item.filter(|c| !c.is_empty()) {
        None => None,
        Some(code) => match bookable_item(&state, &ctx, code).await {
            Ok(item) => Some(item),
            Err(refused) => return *refused,
        },
    };
    let response = book_page(
        &state,
        &ctx,
        &schedule,
        StatusCode::OK,
        item,
        Filled {
            csrf: secret.clone(),
            values: Fields::new(),
            errors: Vec::new(),
        },
    )
    .await;
    with_book_cookie(response, &secret, state.tls)
}

/// A published item of this node's catalog (the items this station accepts), or the
/// page saying it cannot be booked.
async fn bookable_item(state: &WebState, ctx: &Ctx, code: String) -> Result<Item, Box<Response>> {
    match state.store.get_item(code).await {
        Ok(item) if item.status == ItemStatus::Published => Ok(item),
        Ok(_) | Err(crate::store::StoreError::NotFound { .. }) => Err(Box::new(message(
            ctx,
            StatusCode::NOT_FOUND,
            "appointment.title",
            ctx.t.get("appointment.error.item").into_owned(),
        ))),
        Err(e) => Err(Box::new(store_failed(ctx, e))),
    }
}

/// What the booking form shows besides the slots: its secret, the values sent and the
/// problems with them.
struct Filled {
    csrf: String,
    values: Fields,
    errors: Vec<String>,
}

async fn book_page(
    state: &WebState,
    ctx: &Ctx,
    schedule: &Schedule,
    status: StatusCode,
    item: Option<Item>,
    filled: Filled,
) -> Response {
    let Filled {
        csrf,
        values,
        errors,
    } = filled;
    let t = ctx.t;
    let mut items = Vec::new();
    let mut days = Vec::new();
    if item.is_none() {
        let filter = ItemFilter {
            limit: 500,
            ..ItemFilter::default()
        };
        match state.store.list_items(filter).await {
            Ok((found, _)) => {
                items = found
                    .into_iter()
                    .map(|i| (i.impl_code, i.name, i.category))
                    .collect()
            }
            Err(e) => return store_failed(ctx, e),
        }
    } else {
        let today = state.today();
        let open = schedule.open_slots(&state.store.calendar(), today, now_minute(state));
        let taken = match open.last() {
            Some(last) => match state.store.appointments_taken(today, last.day).await {
                Ok(taken) => taken,
                Err(e) => return store_failed(ctx, e),
            },
            None => Default::default(),
        };
        let chosen = field(&values, "slot");
        for slot in open {
            let value = format!("{}T{}", slot.day, slot.start);
            let view = SlotView {
                id: format!(
                    "slot-{}-{}",
                    slot.day.compact(),
                    slot.start.to_string().replace(':', "")
                ),
                time: format!("{}–{}", slot.start, until(schedule, slot.start)),
                left: schedule
                    .capacity
                    .saturating_sub(taken.get(&slot).copied().unwrap_or(0)),
                checked: value == chosen,
                value,
            };
            let label = weekday(t, slot.day);
            match days.last_mut() {
                Some(DayView {
                    label: l, slots, ..
                }) if *l == label => slots.push(view),
                _ => days.push(DayView {
                    label,
                    slots: vec![view],
                    open: false,
                    free: 0,
                }),
            }
        }
        for day in &mut days {
            day.free = day.slots.iter().map(|s| s.left).sum();
        }
        let first_free = days.iter().position(|d| d.free > 0);
        for (n, day) in days.iter_mut().enumerate() {
            day.open = Some(n) == first_free || day.slots.iter().any(|s| s.checked);
        }
    }
    render(
        ctx.t,
        status,
        BookPage {
            chrome: ctx.chrome(),
            t,
            csrf,
            items,
            item,
            days,
            name: field(&values, "name").to_string(),
            phone: field(&values, "phone").to_string(),
            errors,
        },
    )
}

/// `POST /appointments/book`: checks the item, the slot (a working day within reach, not
/// started yet, with a place left), the name and the phone, then books and shows the code.
pub async fn book(
    State(state): State<WebState>,
    ctx: Ctx,
    headers: HeaderMap,
    axum::Form(fields): axum::Form<Fields>,
) -> Response {
    let schedule = match schedule_or_refuse(&state, &ctx) {
        Ok(s) => s,
        Err(refused) => return *refused,
    };
    if let Some(refused) = refuse_without_book_secret(&ctx, &headers, field(&fields, "csrf")) {
        return refused;
    }
    let now = state.clock.now_ms();
    // Every attempt from an address counts (a place is worth having, so failing ones too).
    let keys: Vec<String> = ctx
        .client
        .map(|ip| format!("book:{}", super::session::address_key(Some(ip))))
        .into_iter()
        .collect();
    if let Err(until) = state.throttle.begin(&keys, now) {
        let minutes = until.saturating_sub(now).div_ceil(60_000).to_string();
        return message(
            &ctx,
            StatusCode::TOO_MANY_REQUESTS,
            "appointment.title",
            ctx.t
                .with("appointment.error.too_many", "minutes", &minutes),
        );
    }
    let response = book_checked(&state, &ctx, &schedule, &headers, fields).await;
    state.throttle.end(&keys, None, now);
    response
}

async fn book_checked(
    state: &WebState,
    ctx: &Ctx,
    schedule: &Schedule,
    headers: &HeaderMap,
    fields: Fields,
) -> Response {
    let t = ctx.t;
    let item = match bookable_item(state, ctx, field(&fields, "item").to_string()).await {
        Ok(item) => item,
        Err(refused) => return *refused,
    };
    let mut errors = Vec::new();
    let slot = field(&fields, "slot")
        .split_once('T')
        .and_then(|(day, start)| {
            Some(Slot {
                day: day.parse().ok()?,
                start: Minute::parse(start)?,
            })
        });
    match slot {
        None => errors.push(t.get("appointment.error.pick").into_owned()),
        Some(slot) => {
            if let Some(refusal) = schedule.refuse(
                &state.store.calendar(),
                state.today(),
                now_minute(state),
                slot,
            ) {
                errors.push(t.get(refusal.key()).into_owned());
            }
        }
    }
    let name = field(&fields, "name");
    if name.is_empty() || name.chars().count() > 50 {
        errors.push(t.get("appointment.error.name").into_owned());
    } else if let Err(refused) = yizhan_sync::domain::text::line("name", name) {
        errors.push(super::cases::text_refused(t, &refused));
    }
    let phone = Phone::parse(field(&fields, "phone"))
        .map_err(|_| errors.push(t.get("appointment.error.phone").into_owned()))
        .ok();
    let secret = book_secret(headers);
    let (Some(slot), Some(phone), true) = (slot, phone, errors.is_empty()) else {
        return book_page(
            state,
            ctx,
            schedule,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(item),
            Filled {
                csrf: secret,
                values: fields,
                errors,
            },
        )
        .await;
    };
    let new = NewAppointment {
        impl_code: item.impl_code.to_string(),
        item_name: item.name.clone(),
        slot,
        name: name.to_string(),
        phone,
    };
    match state
        .store
        .book_appointment(new, schedule.capacity, state.clock.now_ms())
        .await
    {
        Ok(Ok(booked)) => {
            tracing::info!(appointment.id = booked.id, item = %booked.impl_code, day = %booked.day, slot = %booked.slot, "appointment booked");
            Redirect::to(&format!("/appointments/b/{}", booked.code)).into_response()
        }
        Ok(Err(refused)) => {
            let key = match refused {
                BookingRefused::Full => "appointment.error.full",
                BookingRefused::PhoneHasOne => "appointment.error.phone_has_one",
            };
            book_page(
                state,
                ctx,
                schedule,
                StatusCode::CONFLICT,
                Some(item),
                Filled {
                    csrf: secret,
                    values: fields,
                    errors: vec![t.get(key).into_owned()],
                },
            )
            .await
        }
        Err(e) => store_failed(ctx, e),
    }
}

// ---------------------------------------------------------------- the booking's own page

#[derive(Template)]
#[template(path = "appointment_booked.html")]
struct BookedPage<'a> {
    chrome: Chrome<'a>,
    t: &'static Tr,
    csrf: String,
    a: Appointment,
    day: String,
    time: String,
    status: String,
    /// The name with all but its first character hidden.
    name: String,
    materials: Vec<Material>,
    place: String,
    notice: Option<String>,
}

/// `GET /appointments/b/{code}`: the booking, what to bring, and the way to cancel it. The
/// code is the key (37 random bits); the page shows no phone and only the name's first
/// character.
pub async fn booked(
    State(state): State<WebState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(code): Path<String>,
) -> Response {
    booked_page(&state, &ctx, &headers, &code, StatusCode::OK, None).await
}

async fn booked_page(
    state: &WebState,
    ctx: &Ctx,
    headers: &HeaderMap,
    code: &str,
    status: StatusCode,
    notice: Option<String>,
) -> Response {
    let schedule = match schedule_or_refuse(state, ctx) {
        Ok(s) => s,
        Err(refused) => return *refused,
    };
    let found = match normalize_code(code) {
        Some(code) => match state.store.appointment_by_code(code).await {
            Ok(found) => found,
            Err(e) => return store_failed(ctx, e),
        },
        None => None,
    };
    let Some(a) = found else {
        return message(
            ctx,
            StatusCode::NOT_FOUND,
            "appointment.title",
            ctx.t.get("appointment.error.no_booking").into_owned(),
        );
    };
    // The item as published now: what to bring may have changed since the booking.
    let (materials, place) = match state.store.get_item(a.impl_code.clone()).await {
        Ok(item) => (item.materials, item.place.address),
        Err(crate::store::StoreError::NotFound { .. }) => (Vec::new(), String::new()),
        Err(e) => return store_failed(ctx, e),
    };
    let secret = book_secret(headers);
    let page = BookedPage {
        chrome: ctx.chrome(),
        t: ctx.t,
        csrf: secret.clone(),
        day: weekday(ctx.t, a.day),
        time: format!("{}–{}", a.slot, until(&schedule, a.slot)),
        status: status_label(ctx.t, a.status),
        name: a
            .name
            .chars()
            .enumerate()
            .map(|(i, c)| if i == 0 { c } else { '*' })
            .collect(),
        materials,
        place,
        notice,
        a,
    };
    with_book_cookie(render(ctx.t, status, page), &secret, state.tls)
}

#[derive(Debug, serde::Deserialize)]
pub struct CancelForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    tail: String,
}

/// `POST /appointments/b/{code}/cancel`: cancels with the last four digits of the phone,
/// which frees the place.
pub async fn cancel(
    State(state): State<WebState>,
    ctx: Ctx,
    headers: HeaderMap,
    Path(code): Path<String>,
    axum::Form(form): axum::Form<CancelForm>,
) -> Response {
    if let Err(refused) = schedule_or_refuse(&state, &ctx) {
        return *refused;
    }
    if let Some(refused) = refuse_without_book_secret(&ctx, &headers, &form.csrf) {
        return refused;
    }
    let Some(code) = normalize_code(&code) else {
        return booked_page(&state, &ctx, &headers, &code, StatusCode::NOT_FOUND, None).await;
    };
    let now = state.clock.now_ms();
    // Guessing the last four digits is throttled per booking from one address, and per
    // address: never per booking alone, or a stranger's misses would stop the person who
    // booked from cancelling.
    let place = super::session::address_key(ctx.client);
    let keys: Vec<String> = vec![
        format!("cancel:{code}@{place}"),
        format!("cancel-addr:{place}"),
    ];
    if let Err(until) = state.throttle.begin(&keys, now) {
        let minutes = until.saturating_sub(now).div_ceil(60_000).to_string();
        return message(
            &ctx,
            StatusCode::TOO_MANY_REQUESTS,
            "appointment.title",
            ctx.t
                .with("appointment.error.too_many", "minutes", &minutes),
        );
    }
    let result = state
        .store
        .cancel_appointment(code.clone(), form.tail.trim().to_string(), now)
        .await;
    let (status, key) = match result {
        Ok(Ok(())) => {
            state.throttle.end(&keys, Some(&keys[0]), now);
            (StatusCode::OK, "appointment.cancelled")
        }
        Ok(Err(CancelRefused::NotFound)) => {
            state.throttle.end(&keys, None, now);
            (StatusCode::FORBIDDEN, "appointment.error.tail")
        }
        Ok(Err(CancelRefused::NotBooked)) => {
            state.throttle.end(&keys, Some(&keys[0]), now);
            (StatusCode::CONFLICT, "appointment.error.not_booked")
        }
        Err(e) => {
            state.throttle.end(&keys, Some(&keys[0]), now);
            return store_failed(&ctx, e);
        }
    };
    booked_page(
        &state,
        &ctx,
        &headers,
        &code,
        status,
        Some(ctx.t.get(key).into_owned()),
    )
    .await
}

// ---------------------------------------------------------------- the counter's list

/// One line of the counter's list.
#[derive(Debug)]
struct Line {
    id: i64,
    time: String,
    item: String,
    impl_code: String,
    name: String,
    phone: String,
    status: String,
    booked: bool,
    case_id: Option<String>,
}

#[derive(Template)]
#[template(path = "appointments.html")]
struct DayPage<'a> {
    chrome: Chrome<'a>,
    t: &'static Tr,
    day: String,
    label: String,
    prev: String,
    next: String,
    is_today: bool,
    lines: Vec<Line>,
    summary: String,
    /// The booking code looked up, as typed, and the line it found.
    code: String,
    found: Option<i64>,
    /// Why a looked-up code found nothing.
    error: Option<String>,
}

impl DayPage<'_> {
    /// Whether `id` is the booking a looked-up code found.
    fn is_found(&self, id: &i64) -> bool {
        self.found == Some(*id)
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct DayQuery {
    day: Option<String>,
    /// A booking code an applicant shows at the counter: the list opens on its day.
    code: Option<String>,
}

/// `GET /appointments[?day=YYYY-MM-DD][&code=CODE]`: a day's appointments for the counter,
/// today by default, each booked one with the button that starts its case. With a booking
/// code the list opens on that booking's day with its line marked, so the counter finds an
/// applicant's booking from the code on the phone; a code that cannot be one is a 400, one
/// that books nothing a 404, both on today's list.
pub async fn day_list(
    State(state): State<WebState>,
    ctx: Ctx,
    Query(query): Query<DayQuery>,
) -> Response {
    if ctx.session.is_none() {
        return ctx.to_signin();
    }
    let schedule = match schedule_or_refuse(&state, &ctx) {
        Ok(s) => s,
        Err(refused) => return *refused,
    };
    let today = state.today();
    let day = match query
        .day
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
    {
        None => today,
        Some(text) => match text.parse::<Date>() {
            Ok(day) => day,
            Err(_) => {
                return message(
                    &ctx,
                    StatusCode::BAD_REQUEST,
                    "error.invalid",
                    ctx.t.get("appointment.error.day").into_owned(),
                );
            }
        },
    };
    let typed = query.code.as_deref().map(str::trim).unwrap_or_default();
    let (day, found_id, status, error) = if typed.is_empty() {
        (day, None, StatusCode::OK, None)
    } else {
        match normalize_code(typed) {
            None => (
                day,
                None,
                StatusCode::BAD_REQUEST,
                Some("appointment.error.code_form"),
            ),
            Some(code) => match state.store.appointment_by_code(code).await {
                Ok(Some(a)) => (a.day, Some(a.id), StatusCode::OK, None),
                Ok(None) => (
                    day,
                    None,
                    StatusCode::NOT_FOUND,
                    Some("appointment.error.no_booking"),
                ),
                Err(e) => return store_failed(&ctx, e),
            },
        }
    };
    let found = match state.store.appointments_on(day).await {
        Ok(found) => found,
        Err(e) => return store_failed(&ctx, e),
    };
    let booked = found
        .iter()
        .filter(|a| a.status != AppointmentStatus::Cancelled)
        .count();
    let lines = found
        .into_iter()
        .map(|a| Line {
            id: a.id,
            time: format!("{}–{}", a.slot, until(&schedule, a.slot)),
            item: a.item_name,
            impl_code: a.impl_code,
            name: a.name,
            phone: mask_phone(&a.phone),
            status: status_label(ctx.t, a.status),
            booked: a.status == AppointmentStatus::Booked,
            case_id: a.case_id,
        })
        .collect();
    render(
        ctx.t,
        status,
        DayPage {
            chrome: ctx.chrome(),
            t: ctx.t,
            day: day.to_string(),
            label: weekday(ctx.t, day),
            prev: day.add_days(-1).to_string(),
            next: day.add_days(1).to_string(),
            is_today: day == today,
            lines,
            summary: ctx
                .t
                .with("appointment.count", "count", &booked.to_string()),
            code: typed.chars().take(40).collect(),
            found: found_id,
            error: error.map(|key| ctx.t.get(key).into_owned()),
        },
    )
}
