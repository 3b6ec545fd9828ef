-- Sync between nodes: chain values and signatures in the change log, the node registry,
-- pinned peers, enrollment codes and quarantined changes.

-- prev: the origin's previous seq in the same scope; chain: the run's chain value after
-- this change; signature: the origin's signature on it (always for this node's own
-- changes, for received ones where a received run ended).
ALTER TABLE changes ADD COLUMN prev INTEGER NOT NULL DEFAULT 0;
ALTER TABLE changes ADD COLUMN chain BLOB;
ALTER TABLE changes ADD COLUMN signature BLOB;
CREATE INDEX changes_run ON changes (scope, origin_node, origin_epoch, seq);

-- Records from the registry documents this node holds (derived; rebuilt with the rest).
-- A node can appear in two registries: its own (as itself) and its parent's.
CREATE TABLE registry_records (
    scope       TEXT NOT NULL,
    node_id     TEXT NOT NULL,
    record_json TEXT NOT NULL,
    PRIMARY KEY (scope, node_id)
) STRICT;

-- Nodes this node knows first-hand: itself, the parent it enrolled with and the nodes
-- above it (given at enrollment), and the children it enrolled.
CREATE TABLE peers (
    node_id       TEXT PRIMARY KEY,
    relation      TEXT NOT NULL CHECK (relation IN ('self', 'parent', 'ancestor', 'child')),
    record_json   TEXT NOT NULL,
    url           TEXT,
    last_ok_ms    INTEGER,
    last_error    TEXT,
    last_error_ms INTEGER
) STRICT;

-- One-time enrollment codes issued by a hall; only a hash is kept.
CREATE TABLE enroll_codes (
    code_hash  BLOB PRIMARY KEY,
    division   TEXT NOT NULL,
    role       TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    used_ms    INTEGER,
    used_by    TEXT
) STRICT;

-- Changes refused for good (forged, unauthorized, unreadable), kept for a person to see.
CREATE TABLE quarantine (
    id           INTEGER PRIMARY KEY,
    received_ms  INTEGER NOT NULL,
    origin_node  BLOB NOT NULL,
    origin_epoch INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    scope        TEXT NOT NULL,
    doc_id       TEXT NOT NULL,
    reason       TEXT NOT NULL,
    change       BLOB NOT NULL,
    UNIQUE (origin_node, origin_epoch, seq, scope)
) STRICT;
