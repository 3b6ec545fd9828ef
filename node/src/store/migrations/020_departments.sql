-- Departments (进驻部门, SZDB/Z 176 §9.6): record documents in their hall's catalog
-- scope, so each reaches every node below the hall (and the halls above); derived here
-- by one rule at every node that holds one (`store::departments::store_department_row`).
-- A rotation republishes the document with one more seal, and the row follows it.
CREATE TABLE departments (
    id          TEXT PRIMARY KEY,
    division    TEXT NOT NULL,
    code        TEXT NOT NULL,
    name        TEXT NOT NULL,
    hall        TEXT NOT NULL,
    body_json   TEXT NOT NULL
) STRICT;
CREATE INDEX departments_code ON departments (code COLLATE NOCASE);
