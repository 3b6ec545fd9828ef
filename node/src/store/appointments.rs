//! Appointments (预约): bookings of time slots, local to this station and never synced.
//!
//! Places are counted and taken in the writer's transaction, so concurrent bookings for
//! one slot never exceed its capacity; a partial unique index keeps one live booking per
//! phone, day and item. Starting a case from an appointment creates the case and marks
//! the appointment in the same transaction.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, Row, params};
use yizhan_sync::domain::calendar::Date;
use yizhan_sync::domain::case::{NewCase, Phone};
use yizhan_sync::ids::DocId;

use super::cases::create_case_in;
use super::writer::Staff;
use super::{Store, StoreError};
use crate::appointments::{Minute, Slot};
use crate::i18n::Words;

/// A booking as asked for; the store adds the code.
#[derive(Clone)]
pub struct NewAppointment {
    pub impl_code: String,
    pub item_name: String,
    pub slot: Slot,
    pub name: String,
    pub phone: Phone,
}

impl std::fmt::Debug for NewAppointment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The phone and the name never reach a log.
        f.debug_struct("NewAppointment")
            .field("impl_code", &self.impl_code)
            .field("slot", &self.slot)
            .finish_non_exhaustive()
    }
}

/// Where an appointment stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppointmentStatus {
    Booked,
    Cancelled,
    /// The applicant came and the counter started a case.
    Arrived,
}

impl AppointmentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AppointmentStatus::Booked => "booked",
            AppointmentStatus::Cancelled => "cancelled",
            AppointmentStatus::Arrived => "arrived",
        }
    }

    fn parse(s: &str) -> AppointmentStatus {
        match s {
            "cancelled" => AppointmentStatus::Cancelled,
            "arrived" => AppointmentStatus::Arrived,
            _ => AppointmentStatus::Booked,
        }
    }
}

/// A stored appointment.
#[derive(Clone, PartialEq, Eq)]
pub struct Appointment {
    pub id: i64,
    pub code: String,
    pub impl_code: String,
    pub item_name: String,
    pub day: Date,
    pub slot: Minute,
    pub name: String,
    /// The full number, for the counter; pages mask it.
    pub phone: String,
    pub created_ms: i64,
    pub status: AppointmentStatus,
    pub case_id: Option<String>,
}

impl std::fmt::Debug for Appointment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Appointment")
            .field("id", &self.id)
            .field("impl_code", &self.impl_code)
            .field("day", &self.day)
            .field("slot", &self.slot)
            .field("status", &self.status)
            .field("case_id", &self.case_id)
            .finish_non_exhaustive()
    }
}

/// Why a booking was not stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BookingRefused {
    /// Every place of the slot is taken.
    Full,
    /// This phone already holds a booking for the item that day.
    PhoneHasOne,
}

/// Why a cancellation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelRefused {
    /// No booking with that code and those last four digits.
    NotFound,
    /// Already cancelled, or the applicant came and a case was started.
    NotBooked,
}

const COLUMNS: &str =
    "id, code, impl_code, item_name, day, slot, name, phone, created_ms, status, case_id";

fn from_row(r: &Row<'_>) -> rusqlite::Result<Appointment> {
    let day: String = r.get(4)?;
    let slot: String = r.get(5)?;
    let status: String = r.get(9)?;
    Ok(Appointment {
        id: r.get(0)?,
        code: r.get(1)?,
        impl_code: r.get(2)?,
        item_name: r.get(3)?,
        day: day.parse().unwrap_or(Date::from_days(0)),
        slot: Minute::parse(&slot).unwrap_or(Minute::of_day(0)),
        name: r.get(6)?,
        phone: r.get(7)?,
        created_ms: r.get(8)?,
        status: AppointmentStatus::parse(&status),
        case_id: r.get(10)?,
    })
}

fn digits(phone: &Phone) -> String {
    phone
        .as_str()
        .chars()
        .filter(char::is_ascii_digit)
        .collect()
}

impl Store {
    /// Books a slot if it has a place left (`capacity` places in all) and the phone holds
    /// no other booking for the item that day. The count and the insert run in the
    /// writer's transaction, so concurrent bookings cannot overbook.
    pub async fn book_appointment(
        &self,
        new: NewAppointment,
        capacity: u32,
        now_ms: u64,
    ) -> Result<Result<Appointment, BookingRefused>, StoreError> {
        self.write(move |ctx| {
            let day = new.slot.day.to_string();
            let slot = new.slot.start.to_string();
            let phone_digits = digits(&new.phone);
            let taken: i64 = ctx.conn.prepare_cached(
                "SELECT count(*) FROM appointments WHERE day = ?1 AND slot = ?2 AND status <> 'cancelled'",
            )?
            .query_row(params![day, slot], |r| r.get(0))?;
            if taken >= i64::from(capacity) {
                return Ok(Err(BookingRefused::Full));
            }
            let has_one: bool = ctx.conn.prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM appointments
                 WHERE day = ?1 AND impl_code = ?2 AND phone_digits = ?3 AND status <> 'cancelled')",
            )?
            .query_row(params![day, new.impl_code, phone_digits], |r| r.get(0))?;
            if has_one {
                return Ok(Err(BookingRefused::PhoneHasOne));
            }
            // A code already in use (a one-in-billions draw) is drawn again.
            let code = loop {
                let code = crate::appointments::new_code();
                let used: bool = ctx
                    .conn
                    .prepare_cached("SELECT EXISTS (SELECT 1 FROM appointments WHERE code = ?1)")?
                    .query_row([&code], |r| r.get(0))?;
                if !used {
                    break code;
                }
            };
            let id = ctx.conn.prepare_cached(
                "INSERT INTO appointments (code, impl_code, item_name, day, slot, name, phone, phone_digits, created_ms, changed_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9) RETURNING id",
            )?
            .query_row(
                params![code, new.impl_code, new.item_name, day, slot, new.name, new.phone.as_str(), phone_digits, now_ms as i64],
                |r| r.get(0),
            )?;
            Ok(Ok(Appointment {
                id,
                code,
                impl_code: new.impl_code,
                item_name: new.item_name,
                day: new.slot.day,
                slot: new.slot.start,
                name: new.name,
                phone: new.phone.as_str().to_string(),
                created_ms: now_ms as i64,
                status: AppointmentStatus::Booked,
                case_id: None,
            }))
        })
        .await
    }

    /// Places taken per slot on the days from `from` to `to` (inclusive), all items.
    pub async fn appointments_taken(
        &self,
        from: Date,
        to: Date,
    ) -> Result<HashMap<Slot, u32>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT day, slot, count(*) FROM appointments
                 WHERE day >= ?1 AND day <= ?2 AND status <> 'cancelled' GROUP BY day, slot",
            )?;
            let rows = stmt
                .query_map(params![from.to_string(), to.to_string()], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows
                .into_iter()
                .filter_map(|(day, slot, n)| {
                    Some((
                        Slot {
                            day: day.parse().ok()?,
                            start: Minute::parse(&slot)?,
                        },
                        n.max(0) as u32,
                    ))
                })
                .collect())
        })
        .await
    }

    /// The appointments of a day, by time, cancelled ones included.
    pub async fn appointments_on(&self, day: Date) -> Result<Vec<Appointment>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM appointments WHERE day = ?1 ORDER BY slot, id"
            ))?;
            let rows = stmt
                .query_map([day.to_string()], from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// An appointment by its id.
    pub async fn appointment(&self, id: i64) -> Result<Option<Appointment>, StoreError> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(&format!("SELECT {COLUMNS} FROM appointments WHERE id = ?1"))?
                .query_row([id], from_row)
                .optional()?)
        })
        .await
    }

    /// An appointment by its booking code.
    pub async fn appointment_by_code(
        &self,
        code: String,
    ) -> Result<Option<Appointment>, StoreError> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM appointments WHERE code = ?1"
                ))?
                .query_row([code], from_row)
                .optional()?)
        })
        .await
    }

    /// The appointment a case was started from, if any.
    pub async fn appointment_of_case(
        &self,
        case_id: String,
    ) -> Result<Option<Appointment>, StoreError> {
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM appointments WHERE case_id = ?1"
                ))?
                .query_row([case_id], from_row)
                .optional()?)
        })
        .await
    }

    /// Cancels a booking by its code and the last four digits of its phone.
    pub async fn cancel_appointment(
        &self,
        code: String,
        phone_tail: String,
        now_ms: u64,
    ) -> Result<Result<(), CancelRefused>, StoreError> {
        self.write(move |ctx| {
            let found: Option<(String, String)> = ctx
                .conn
                .prepare_cached("SELECT phone_digits, status FROM appointments WHERE code = ?1")?
                .query_row([&code], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            match found {
                Some((digits, _)) if phone_tail.len() != 4 || !digits.ends_with(&phone_tail) => {
                    Ok(Err(CancelRefused::NotFound))
                }
                None => Ok(Err(CancelRefused::NotFound)),
                Some((_, status)) if status != "booked" => Ok(Err(CancelRefused::NotBooked)),
                Some(_) => {
                    ctx.conn.execute(
                        "UPDATE appointments SET status = 'cancelled', changed_ms = ?2 WHERE code = ?1",
                        params![code, now_ms as i64],
                    )?;
                    Ok(Ok(()))
                }
            }
        })
        .await
    }

    /// Starts a case from a booked appointment: creates the case and marks the appointment
    /// arrived with the case's id, in one transaction, so there is never a case without the
    /// mark or a mark without the case. An appointment that is no longer booked is refused
    /// (a second start of the same appointment makes no second case).
    pub async fn create_case_from_appointment(
        &self,
        appointment_id: i64,
        item_key: String,
        new: NewCase,
        staff: Staff,
        now_ms: u64,
    ) -> Result<DocId, StoreError> {
        self.write(move |ctx| {
            let found: Option<(String, Option<String>)> = ctx
                .conn
                .prepare_cached("SELECT status, case_id FROM appointments WHERE id = ?1")?
                .query_row([appointment_id], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            match found {
                None => {
                    return Err(StoreError::NotFound {
                        what: format!("appointment {appointment_id}"),
                    });
                }
                Some((_, Some(case_id))) => {
                    return Err(StoreError::Conflict(
                        Words::new("appointment_started").text("case", case_id),
                    ));
                }
                Some((status, None)) if status != "booked" => {
                    return Err(StoreError::Conflict(
                        Words::new("appointment_not_booked").text("status", status),
                    ));
                }
                Some(_) => {}
            }
            let id = create_case_in(ctx, &item_key, new, &staff, now_ms)?;
            ctx.conn.execute(
                "UPDATE appointments SET status = 'arrived', case_id = ?2, changed_ms = ?3 WHERE id = ?1",
                params![appointment_id, id.to_string(), now_ms as i64],
            )?;
            Ok(id)
        })
        .await
    }
}
