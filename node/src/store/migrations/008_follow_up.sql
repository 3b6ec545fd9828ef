-- Case follow-up (转办 and 签收, 好差评 and 整改, resolved conflicts): more derived columns.
-- Like every derived column they are recomputed by `yizhan rebuild`.
ALTER TABLE cases ADD COLUMN holder TEXT;
ALTER TABLE cases ADD COLUMN holder_node TEXT;
ALTER TABLE cases ADD COLUMN signed_on TEXT;
ALTER TABLE cases ADD COLUMN rating INTEGER;
ALTER TABLE cases ADD COLUMN rated_on TEXT;
ALTER TABLE cases ADD COLUMN rectify_due TEXT;
ALTER TABLE cases ADD COLUMN rectified_on TEXT;
ALTER TABLE case_events ADD COLUMN voided INTEGER NOT NULL DEFAULT 0;
CREATE INDEX cases_holder ON cases (holder_node, signed_on) WHERE holder IS NOT NULL;
CREATE INDEX cases_rectify ON cases (rectify_due) WHERE rectify_due IS NOT NULL;
-- Rows derived before this version lack the new columns (a case may already have been
-- transferred): forgetting the calendar mark makes the next start rebuild every row.
DELETE FROM meta WHERE key = 'calendar';
