-- A hall's drafts of catalog items (SZDB/Z 176 §8.4.1: items are added, changed, cancelled
-- and reviewed in one managed system). They are the hall's local working copies: never
-- synced and not derived from documents, so `yizhan rebuild` leaves them alone. Only the
-- version a second person approves is published, as an item document like any other.
-- An approved draft stays (status 'published') as the record of its review and of the
-- §9.2.2 checklist answered for the version it published.
-- IF NOT EXISTS: a test replays the migrations after 7 over a database that keeps later tables.
CREATE TABLE IF NOT EXISTS item_drafts (
    id                INTEGER PRIMARY KEY,
    -- new | change | cancel (`domain::draft::DraftKind`).
    kind              TEXT NOT NULL,
    -- The item's implementation code; '' while a new draft has not named it.
    impl_code         TEXT NOT NULL,
    -- The published version the draft was made from; 0 for a new item.
    base_version      INTEGER NOT NULL,
    -- The item as drafted, in the catalog file's JSON form; it may not be valid yet.
    body_json         TEXT NOT NULL,
    -- The §9.2.2 answers (`domain::draft::ChecklistAnswer`).
    checklist_json    TEXT NOT NULL DEFAULT '[]',
    -- editing | submitted | rejected | published (`domain::draft::DraftStatus`).
    status            TEXT NOT NULL,
    -- Goes up with every save, so two editors never overwrite each other unseen and a
    -- reviewer approves exactly the revision read.
    revision          INTEGER NOT NULL DEFAULT 1,
    drafted_by        TEXT NOT NULL,
    edited_by         TEXT NOT NULL,
    reviewed_by       TEXT NOT NULL DEFAULT '',
    -- Why a reviewer sent it back.
    reason            TEXT NOT NULL DEFAULT '',
    -- The version an approval published.
    published_version INTEGER,
    created_ms        INTEGER NOT NULL,
    updated_ms        INTEGER NOT NULL,
    reviewed_ms       INTEGER
) STRICT;
CREATE INDEX IF NOT EXISTS item_drafts_updated ON item_drafts (updated_ms);
