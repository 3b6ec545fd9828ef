-- The month's assessment (issue 14 point 5) reads the supervision notices issued in a
-- month; the case figures walk the indexes the overview already has (cases_created,
-- cases_completed_scope, cases_red, cases_breach, cases_rated_scope). A notice is written
-- once and rarely (a hall's few a day), so this costs no station's case writes anything.
CREATE INDEX supervision_notices_issued ON supervision_notices (issued_ms);
