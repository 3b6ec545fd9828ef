-- Sealed notices this node issued (§7.5): acceptance receipts, one-time notices and
-- refusal notices. Rows are only ever inserted: a correction is a new notice that names
-- the one it supersedes. The content is the canonical JSON the digest covers.
CREATE TABLE notices (
    id            INTEGER PRIMARY KEY,
    number        TEXT NOT NULL UNIQUE,
    case_id       TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('receipt', 'one_time', 'refusal')),
    content_json  TEXT NOT NULL,
    digest        BLOB NOT NULL,
    signature     BLOB NOT NULL,
    issued_ms     INTEGER NOT NULL,
    supersedes    TEXT
) STRICT;
CREATE INDEX notices_case ON notices (case_id, id);

CREATE TRIGGER notices_are_immutable BEFORE UPDATE ON notices
BEGIN
    SELECT RAISE(ABORT, 'notices are never changed; issue a new one that supersedes it');
END;
