-- The engine (sync::engine): refused changes keep their place in their origin's run, and
-- peers tell each other what they refused.

-- A refused change stays in the log as its place in the run: `refused` holds the reason,
-- `bytes` is empty and `hash` is the change hash the origin signed. It is forwarded as
-- such (never its bytes), so the origin's later changes still verify everywhere.
ALTER TABLE changes ADD COLUMN refused TEXT;

-- The kind the change's envelope names, which its chain covers: several kinds of
-- document now share a scope, so it is no longer implied by the scope (rows from before
-- hold NULL: their kind is the scope's).
ALTER TABLE changes ADD COLUMN kind TEXT;

-- Hashes of the changes refused here or on the way: a change built on one of them is
-- refused too (it would wait for ever otherwise). The change log has no hash index.
CREATE TABLE refused_hashes (
    hash BLOB PRIMARY KEY
) STRICT, WITHOUT ROWID;

-- The reason's code, for people's screens (auth::Refusal::code); older rows were all
-- refusals of changes that did not verify or were not authorized.
ALTER TABLE quarantine ADD COLUMN code TEXT NOT NULL DEFAULT 'unverified';
-- Where the refused change came from: 'parent' (pulled), a child's node id (pushed), or
-- 'file' (a bundle). A child tells its parent only what it refused of the parent's.
ALTER TABLE quarantine ADD COLUMN via TEXT NOT NULL DEFAULT 'parent';

-- What peers refused (or wait on) of what this node sent them: the parent's answers to
-- pushes, and what children refused of what they pulled. Shown in `status`, on the admin
-- page and in /metrics; a row goes once the peer holds the change's place after all.
CREATE TABLE peer_refusals (
    peer         TEXT NOT NULL,
    origin_node  BLOB NOT NULL,
    origin_epoch INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    scope        TEXT NOT NULL,
    doc_id       TEXT NOT NULL,
    waiting      INTEGER NOT NULL,
    code         TEXT NOT NULL,
    reason       TEXT NOT NULL,
    noted_ms     INTEGER NOT NULL,
    PRIMARY KEY (peer, origin_node, origin_epoch, seq, scope)
) STRICT, WITHOUT ROWID;

-- Serial numbers are unique by construction (hall-assigned node segments), but numbers
-- issued before that, or by a node before its enrollment, may meet at a hall: a clash must
-- never stop a case from being stored, so the serial index is no longer UNIQUE. The table
-- is derived; it is rebuilt with the same columns in the same order.
CREATE TABLE cases_new (
    id                  TEXT PRIMARY KEY,
    scope               TEXT NOT NULL,
    impl_code           TEXT NOT NULL,
    item_name           TEXT NOT NULL,
    item_version        INTEGER NOT NULL,
    case_type           TEXT NOT NULL,
    status              TEXT NOT NULL,
    conflict            INTEGER NOT NULL,
    serial_no           TEXT,
    applicant_name      TEXT NOT NULL,
    applicant_id_masked TEXT NOT NULL,
    phone_tail          TEXT NOT NULL,
    counter             TEXT NOT NULL,
    staff               TEXT NOT NULL,
    node                TEXT NOT NULL,
    created_ms          INTEGER NOT NULL,
    created_on          TEXT NOT NULL,
    accepted_on         TEXT,
    committed_due       TEXT,
    legal_due           TEXT,
    yellow_on           TEXT,
    red_on              TEXT,
    breach_on           TEXT,
    clock_stopped_on    TEXT,
    closed_on           TEXT,
    calendar            TEXT,
    calendar_covered    INTEGER NOT NULL,
    updated_hlc         TEXT NOT NULL,
    holder              TEXT,
    holder_node         TEXT,
    signed_on           TEXT,
    rating              INTEGER,
    rated_on            TEXT,
    rectify_due         TEXT,
    rectified_on        TEXT
) STRICT;
INSERT INTO cases_new SELECT * FROM cases;
DROP TABLE cases;
ALTER TABLE cases_new RENAME TO cases;
CREATE INDEX cases_serial ON cases (serial_no) WHERE serial_no IS NOT NULL;
CREATE INDEX cases_created ON cases (created_ms, id);
CREATE INDEX cases_status_created ON cases (status, created_ms, id);
CREATE INDEX cases_red ON cases (red_on, id) WHERE red_on IS NOT NULL;
CREATE INDEX cases_breach ON cases (breach_on, id) WHERE breach_on IS NOT NULL;
CREATE INDEX cases_item ON cases (impl_code, created_ms);
CREATE INDEX cases_counter ON cases (counter, created_ms);
CREATE INDEX cases_phone_tail ON cases (phone_tail);
CREATE INDEX cases_conflict ON cases (created_ms) WHERE conflict = 1;
CREATE INDEX cases_holder ON cases (holder_node, signed_on) WHERE holder IS NOT NULL;
CREATE INDEX cases_rectify ON cases (rectify_due) WHERE rectify_due IS NOT NULL;

-- Documents whose changes applied but whose derived rows could not be written (a
-- constraint, a bug): the data is kept and the failure shown until the rows derive again.
CREATE TABLE underived (
    doc_id TEXT PRIMARY KEY,
    error  TEXT NOT NULL,
    at_ms  INTEGER NOT NULL
) STRICT;
