-- The newest seq of every run (scope, origin) in the change log, which is this node's
-- version vector. Kept with every insert into the log (store::sync::insert_change; a
-- trigger here made each insert open a statement journal, a third of a hall's time), so
-- reading the vector after every received batch no longer scans the whole log (that was 7%
-- of a hall's time receiving 100,000 cases).
CREATE TABLE run_heads (
    scope        TEXT NOT NULL,
    origin_node  BLOB NOT NULL,
    origin_epoch INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    PRIMARY KEY (scope, origin_node, origin_epoch)
) STRICT, WITHOUT ROWID;

INSERT INTO run_heads (scope, origin_node, origin_epoch, seq)
    SELECT scope, origin_node, origin_epoch, MAX(seq) FROM changes
    GROUP BY scope, origin_node, origin_epoch;

-- The change log without its two indexes on random keys. Nothing looks changes up by
-- document or by hash, and each index cost a random B-tree insert per change: on a hall
-- receiving 100,000 cases, every batch rewrote most pages of the hash index, so the time per
-- batch grew with the size of the log. Automerge itself ignores a change it already has, and
-- (origin, seq) stays unique.
CREATE TABLE changes_new (
    local_seq    INTEGER PRIMARY KEY,
    origin_node  BLOB NOT NULL,
    origin_epoch INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    doc_id       TEXT NOT NULL,
    scope        TEXT NOT NULL,
    hash         BLOB NOT NULL,
    bytes        BLOB NOT NULL,
    prev         INTEGER NOT NULL DEFAULT 0,
    chain        BLOB,
    signature    BLOB,
    UNIQUE (origin_node, origin_epoch, seq)
) STRICT;
INSERT INTO changes_new (local_seq, origin_node, origin_epoch, seq, doc_id, scope, hash, bytes, prev, chain, signature)
    SELECT local_seq, origin_node, origin_epoch, seq, doc_id, scope, hash, bytes, prev, chain, signature
    FROM changes;
DROP TABLE changes;
ALTER TABLE changes_new RENAME TO changes;
CREATE INDEX changes_run ON changes (scope, origin_node, origin_epoch, seq);
