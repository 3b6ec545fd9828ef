-- Appointments applicants booked on this station's public pages (预约, SZDB/Z 176 §9.4).
-- They are local to the station and never sync: a booking only matters at the counter
-- that receives the applicant; the case made from it syncs as any other case.
-- The full phone is kept for the counter to call; pages mask it and logs never see it.
CREATE TABLE appointments (
    id            INTEGER PRIMARY KEY,
    -- The booking code the applicant keeps (unambiguous characters).
    code          TEXT NOT NULL UNIQUE,
    impl_code     TEXT NOT NULL,
    item_name     TEXT NOT NULL,
    day           TEXT NOT NULL,            -- YYYY-MM-DD, China Standard Time
    slot          TEXT NOT NULL,            -- HH:MM, the start of the slot
    name          TEXT NOT NULL,
    phone         TEXT NOT NULL,
    -- Digits only, for the one-booking-per-phone rule whatever the spacing typed.
    phone_digits  TEXT NOT NULL,
    created_ms    INTEGER NOT NULL,
    status        TEXT NOT NULL DEFAULT 'booked' CHECK (status IN ('booked', 'cancelled', 'arrived')),
    -- The case the counter started from it (status 'arrived').
    case_id       TEXT UNIQUE,
    changed_ms    INTEGER NOT NULL,
    CHECK ((status = 'arrived') = (case_id IS NOT NULL))
) STRICT;
-- Places taken per slot, and the counter's list of a day.
CREATE INDEX appointments_slot ON appointments (day, slot) WHERE status <> 'cancelled';
-- One live booking per phone, day and item: a second one is refused, not stored.
CREATE UNIQUE INDEX appointments_one_per_phone
    ON appointments (day, impl_code, phone_digits) WHERE status <> 'cancelled';
