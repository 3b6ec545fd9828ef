-- A case is loaded from its snapshot and the changes after it (migration 014), found by
-- document. Without an index on the document the log was read from the snapshot's
-- position to its end: reading an old case cost a scan of every change written since
-- (47 ms a change when a 100,000-case hall took edits to old cases, and rebuild grew with
-- the square of the log). The row id (local_seq) closes the key, so the index gives the
-- changes in order. Inserts: a new case's id starts with its creation time, so most land at
-- the index's right edge.
CREATE INDEX changes_doc ON changes (doc_id);
