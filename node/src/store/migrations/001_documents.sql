-- Documents, the change log, serial counters and the materialized tables.
-- Materialized tables (items, cases, case_events) are derived from documents and can be
-- rebuilt at any time with `yizhan rebuild`; documents and changes are the record.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE documents (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    scope      TEXT NOT NULL,
    bytes      BLOB NOT NULL,
    heads      BLOB NOT NULL,
    updated_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX documents_scope ON documents (scope);

-- Every Automerge change this node holds, under the (origin node, origin epoch, seq) its
-- author gave it. local_seq is the order in which this node stored it.
CREATE TABLE changes (
    local_seq    INTEGER PRIMARY KEY,
    origin_node  BLOB NOT NULL,
    origin_epoch INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    doc_id       TEXT NOT NULL,
    scope        TEXT NOT NULL,
    hash         BLOB NOT NULL UNIQUE,
    bytes        BLOB NOT NULL,
    UNIQUE (origin_node, origin_epoch, seq)
) STRICT;
CREATE INDEX changes_doc ON changes (doc_id);

-- Last serial-number sequence issued per epoch, item and day (SZDB/Z 176 §8.5).
CREATE TABLE serial_counters (
    epoch     INTEGER NOT NULL,
    impl_code TEXT NOT NULL,
    day       TEXT NOT NULL,
    last      INTEGER NOT NULL,
    PRIMARY KEY (epoch, impl_code, day)
) STRICT, WITHOUT ROWID;

CREATE TABLE items (
    id             TEXT PRIMARY KEY,
    scope          TEXT NOT NULL,
    impl_code      TEXT NOT NULL UNIQUE,
    basic_code     TEXT NOT NULL,
    name           TEXT NOT NULL,
    category       TEXT NOT NULL,
    kind           TEXT NOT NULL,
    level          TEXT NOT NULL,
    case_type      TEXT NOT NULL,
    legal_days     INTEGER NOT NULL,
    committed_days INTEGER NOT NULL,
    status         TEXT NOT NULL,
    version        INTEGER NOT NULL,
    search_text    TEXT NOT NULL,
    body_json      TEXT NOT NULL
) STRICT;
CREATE INDEX items_category ON items (category, name);

-- yellow_on / red_on / breach_on are the first days of each warning level of an open case,
-- so the level is derived from today's date at query time and is never stale. While a
-- case is suspended its level is frozen: the dates then encode that frozen level
-- ('0000-01-01' for a level reached, '9999-12-31' for one not reached) and the real
-- deadlines stay in committed_due and legal_due. Closed cases have no warning dates.
CREATE TABLE cases (
    id                  TEXT PRIMARY KEY,
    scope               TEXT NOT NULL,
    impl_code           TEXT NOT NULL,
    item_name           TEXT NOT NULL,
    item_version        INTEGER NOT NULL,
    case_type           TEXT NOT NULL,
    status              TEXT NOT NULL,
    conflict            INTEGER NOT NULL,
    serial_no           TEXT UNIQUE,
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
    updated_hlc         TEXT NOT NULL
) STRICT;
CREATE INDEX cases_created ON cases (created_ms, id);
CREATE INDEX cases_status_created ON cases (status, created_ms, id);
-- Only open cases with running limits have warning dates, so these two indexes hold just
-- the cases a level filter can match; a status filter on top discards few rows.
CREATE INDEX cases_red ON cases (red_on, id) WHERE red_on IS NOT NULL;
CREATE INDEX cases_breach ON cases (breach_on, id) WHERE breach_on IS NOT NULL;
CREATE INDEX cases_item ON cases (impl_code, created_ms);
CREATE INDEX cases_counter ON cases (counter, created_ms);
CREATE INDEX cases_phone_tail ON cases (phone_tail);
CREATE INDEX cases_conflict ON cases (created_ms) WHERE conflict = 1;

CREATE TABLE case_events (
    case_id   TEXT NOT NULL,
    event_id  TEXT NOT NULL,
    at_hlc    TEXT NOT NULL,
    at_ms     INTEGER NOT NULL,
    node      TEXT NOT NULL,
    staff     TEXT NOT NULL,
    kind      TEXT NOT NULL,
    conflict  INTEGER NOT NULL,
    body_json TEXT NOT NULL,
    PRIMARY KEY (case_id, event_id)
) STRICT, WITHOUT ROWID;
