-- The payments and exemptions of the cases' fee lines (SZDB/Z 176 §9.5) that count:
-- derived from the case documents by `doc::case_rows` beside the `cases` row, and
-- rebuilt from them by `yizhan rebuild`. The fee statistics read them; the documents
-- stay the record.
CREATE TABLE case_fees (
    case_id    TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('pay', 'exempt')),
    fee        TEXT NOT NULL,
    amount_fen INTEGER NOT NULL CHECK (amount_fen > 0),
    method     TEXT,
    receipt    TEXT,
    on_day     TEXT NOT NULL,
    staff      TEXT NOT NULL,
    PRIMARY KEY (case_id, event_id)
);
CREATE INDEX case_fees_on_day ON case_fees (on_day);

-- Cases written before the fee lines existed charge nothing: nothing to derive.
