-- Staff accounts across the tree (SZDB/Z 176 §8.6.3) and counters as records (§7.4).
--
-- staff_accounts is derived from the staff documents held here (a hall's own and those
-- of the halls above), so `yizhan rebuild` gives it again. `id` is the account's number
-- in sessions: negative, fixed by the document id, so it never meets a local account's.
CREATE TABLE staff_accounts (
    doc_id        TEXT PRIMARY KEY,
    id            INTEGER NOT NULL UNIQUE,
    username      TEXT NOT NULL,
    hall_division TEXT NOT NULL,
    account_json  TEXT NOT NULL
) STRICT;
CREATE INDEX staff_accounts_username ON staff_accounts (username);

-- API tokens of tree accounts, issued at this node and kept here only. A token holds
-- while its account's generation is the one it was issued under.
CREATE TABLE staff_tokens (
    token_hash   BLOB PRIMARY KEY,
    account_doc  TEXT NOT NULL,
    generation   INTEGER NOT NULL,
    label        TEXT NOT NULL,
    created_ms   INTEGER NOT NULL
) STRICT;

-- A node's counters (窗口): number, name and what they serve, managed by its admin.
-- The counters accounts named before are kept as records.
CREATE TABLE counters (
    number      TEXT PRIMARY KEY,
    name        TEXT NOT NULL DEFAULT '',
    serves      TEXT NOT NULL DEFAULT '',
    created_ms  INTEGER NOT NULL
) STRICT;
INSERT OR IGNORE INTO counters (number, created_ms)
    SELECT DISTINCT counter, 0 FROM users WHERE counter <> '' AND role <> 'department';
