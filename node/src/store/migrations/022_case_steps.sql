-- The process step an open case is in (环节, SZDB/Z 176 §9.2.2) and its limit, derived
-- from the case's document by `doc::case_rows` like the case's own deadline and warning
-- days (`yizhan rebuild` gives them again). Cases received before steps were kept have
-- none, so existing rows need no backfill.
ALTER TABLE cases ADD COLUMN step_no INTEGER;
ALTER TABLE cases ADD COLUMN step_name TEXT;
ALTER TABLE cases ADD COLUMN step_due TEXT;
ALTER TABLE cases ADD COLUMN step_yellow_on TEXT;
ALTER TABLE cases ADD COLUMN step_red_on TEXT;
