-- The month's assessment (issue 14 point 5) reads the supervision notices issued in a
-- month. Its case figures read, at a hall, covering indexes only halls hold
-- (`store::hall::HALL_INDEXES`, created when a hall's store opens), and at a station the
-- indexes it already has. A notice is written once and rarely (a hall's few a day), so
-- this costs no station's case writes anything.
CREATE INDEX supervision_notices_issued ON supervision_notices (issued_ms);

-- A hall's notifications (通报, §10.3): record documents in the hall's catalog scope, so
-- each reaches every node below the hall; derived here by one rule at every node that
-- holds it (`store::notification::store_notification_row`), never changed.
CREATE TABLE notifications (
    id            TEXT PRIMARY KEY,
    division      TEXT NOT NULL,
    node          TEXT NOT NULL,
    staff         TEXT NOT NULL,
    month         TEXT NOT NULL,
    title         TEXT NOT NULL,
    published_ms  INTEGER NOT NULL,
    body_json     TEXT NOT NULL
) STRICT;
CREATE INDEX notifications_published ON notifications (published_ms);
CREATE TRIGGER notifications_are_immutable BEFORE UPDATE ON notifications
BEGIN
    SELECT RAISE(ABORT, 'notifications are never changed; publish a new one');
END;
