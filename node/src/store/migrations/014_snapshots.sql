-- A case document is kept as a snapshot plus the changes after it (`store::snapshot`):
-- upto is the newest changes.local_seq its snapshot holds. Existing snapshots hold every
-- change of their document; they start at 0 all the same, which stays correct (loading
-- applies the document's changes after upto, and Automerge skips those it holds) and
-- spares rewriting every document of a large hall during the upgrade; each document's
-- next snapshot sets its real value.
ALTER TABLE documents ADD COLUMN upto INTEGER NOT NULL DEFAULT 0;
