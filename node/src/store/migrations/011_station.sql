-- The station's second day (issue 13): every open case can be found again.
-- A case is found by the applicant's query code (sync::domain::query_code), by the full
-- identity number or credit code, and by the phone number (digits only); a transfer
-- signed for on a department's behalf says so on the follow-up list.
ALTER TABLE cases ADD COLUMN query_code TEXT NOT NULL DEFAULT '';
ALTER TABLE cases ADD COLUMN applicant_id TEXT NOT NULL DEFAULT '';
ALTER TABLE cases ADD COLUMN phone_digits TEXT NOT NULL DEFAULT '';
ALTER TABLE cases ADD COLUMN signed_on_behalf INTEGER NOT NULL DEFAULT 0;
CREATE INDEX cases_query_code ON cases (query_code);
CREATE INDEX cases_applicant_id ON cases (applicant_id);
CREATE INDEX cases_phone_digits ON cases (phone_digits);
-- The open cases by their committed deadline (the counter's 在办 view).
CREATE INDEX cases_open_due ON cases (committed_due, id)
    WHERE status IN ('submitted', 'awaiting_supplement', 'accepted', 'suspended', 'decided');
-- The new columns are derived from the documents: forgetting which calendar the rows were
-- derived with makes the next start recompute every row (store::refresh_for_calendar).
DELETE FROM meta WHERE key = 'calendar';

-- Extension and suspension notices (延期通知书, 特别程序告知书) join the kinds a notice may
-- be. SQLite cannot change a CHECK, so the table is rebuilt with the same rows, which stay
-- as issued (the trigger comes back with it).
CREATE TABLE notices_new (
    id            INTEGER PRIMARY KEY,
    number        TEXT NOT NULL UNIQUE,
    case_id       TEXT NOT NULL,
    kind          TEXT NOT NULL
                  CHECK (kind IN ('receipt', 'one_time', 'refusal', 'extension', 'suspension')),
    content_json  TEXT NOT NULL,
    digest        BLOB NOT NULL,
    signature     BLOB NOT NULL,
    issued_ms     INTEGER NOT NULL,
    supersedes    TEXT
) STRICT;
INSERT INTO notices_new SELECT * FROM notices;
DROP TABLE notices;
ALTER TABLE notices_new RENAME TO notices;
CREATE INDEX notices_case ON notices (case_id, id);
CREATE TRIGGER notices_are_immutable BEFORE UPDATE ON notices
BEGIN
    SELECT RAISE(ABORT, 'notices are never changed; issue a new one that supersedes it');
END;
