-- Notices become documents (issue 14): every sealed notice is a record document in the
-- case scope of its station, and this table holds the notices of every such document
-- this node has, its own and those received from below, derived by one rule
-- (store::notices::notice_row). A notice is named by its number; the issuing node's
-- numbers are the largest of its own prefix (store::notices), so received notices no
-- longer share a row counter with local ones. The kind is not checked here: a notice of
-- a kind a newer node issues is kept as its document and reported as underived.
-- issued_ms is the sealed issue time (its `issued_at`, whole seconds), so a rebuild gives
-- the same rows; a node's older rows are taken over as they are and published as
-- documents at the next start (Store::publish_local_notices).
CREATE TABLE notices_new (
    number        TEXT PRIMARY KEY,
    doc_id        TEXT NOT NULL UNIQUE,
    case_id       TEXT NOT NULL,
    node          TEXT NOT NULL,
    kind          TEXT NOT NULL,
    content_json  TEXT NOT NULL,
    digest        BLOB NOT NULL,
    signature     BLOB NOT NULL,
    issued_ms     INTEGER NOT NULL,
    supersedes    TEXT
) STRICT;
INSERT INTO notices_new
SELECT number, 'n-' || lower(number), case_id, lower(json_extract(content_json, '$.node')), kind,
       content_json, digest, signature,
       unixepoch(json_extract(content_json, '$.issued_at')) * 1000, supersedes
FROM notices;
DROP TABLE notices;
ALTER TABLE notices_new RENAME TO notices;
CREATE INDEX notices_case ON notices (case_id, issued_ms, number);
-- Store::publish_local_notices runs at start while this is set, and clears it.
INSERT INTO meta (key, value) SELECT 'notices_to_publish', '1' WHERE EXISTS (SELECT 1 FROM notices);
CREATE TRIGGER notices_are_immutable BEFORE UPDATE ON notices
BEGIN
    SELECT RAISE(ABORT, 'notices are never changed; issue a new one that supersedes it');
END;

-- Supervision notices (督办, §10.2) and the stations' replies, derived from their record
-- documents (store::supervision). What is due when, and whether a notice is open,
-- answered or overdue, is never stored: it is counted at read time on the calendar
-- (sync::domain::supervision::reply_state), so a calendar year published later moves it
-- at every node alike.
CREATE TABLE supervision_notices (
    id          TEXT PRIMARY KEY,
    station     TEXT NOT NULL,
    case_id     TEXT,
    node        TEXT NOT NULL,
    staff       TEXT NOT NULL,
    reason      TEXT NOT NULL,
    todo        TEXT NOT NULL,
    reply_days  INTEGER NOT NULL,
    issued_ms   INTEGER NOT NULL,
    body_json   TEXT NOT NULL
) STRICT;
CREATE INDEX supervision_notices_station ON supervision_notices (station, issued_ms);
CREATE INDEX supervision_notices_case ON supervision_notices (case_id) WHERE case_id IS NOT NULL;

CREATE TABLE supervision_replies (
    id          TEXT PRIMARY KEY,
    notice_id   TEXT NOT NULL,
    node        TEXT NOT NULL,
    staff       TEXT NOT NULL,
    text        TEXT NOT NULL,
    replied_ms  INTEGER NOT NULL,
    body_json   TEXT NOT NULL
) STRICT;
CREATE INDEX supervision_replies_notice ON supervision_replies (notice_id, replied_ms);

CREATE TRIGGER supervision_notices_are_immutable BEFORE UPDATE ON supervision_notices
BEGIN
    SELECT RAISE(ABORT, 'supervision notices are never changed; issue a new one');
END;
CREATE TRIGGER supervision_replies_are_immutable BEFORE UPDATE ON supervision_replies
BEGIN
    SELECT RAISE(ABORT, 'replies are never changed; reply again');
END;

-- Staff roles are the engine's (`engine::StaffRole`); the table no longer lists them, so
-- a new role (here the hall's supervisor, 督办人员) needs no rebuild: the store reads a
-- role it does not know as a worker's. SQLite cannot drop a CHECK, so both account tables
-- are rebuilt with the same rows (the tokens first, so no row ever lacks its user).
CREATE TABLE users_new (
    id            INTEGER PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    role          TEXT NOT NULL,
    counter       TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_ms    INTEGER NOT NULL
) STRICT;
INSERT INTO users_new SELECT * FROM users;
CREATE TABLE api_tokens_new (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users_new (id),
    token_hash   BLOB NOT NULL UNIQUE,
    label        TEXT NOT NULL,
    created_ms   INTEGER NOT NULL
) STRICT;
INSERT INTO api_tokens_new SELECT * FROM api_tokens;
DROP TABLE api_tokens;
DROP TABLE users;
ALTER TABLE users_new RENAME TO users;
ALTER TABLE api_tokens_new RENAME TO api_tokens;
CREATE INDEX api_tokens_user ON api_tokens (user_id);
