-- Indexes only halls hold (created when a hall's store opens, after the numbered
-- migrations; a station never has them, so its case writes pay nothing for them).
--
-- The month's assessment (store::assessment) reads one month of a hall's subtree from
-- these alone, in date order, without touching the case rows (a random read each in a
-- file of gigabytes at 1 M cases): the cases received, completed and rated in the month
-- with the columns they are grouped and counted by. Each costs the hall one more index
-- entry per case row written (a received case's change rewrites the row, so its entries
-- move when its dates or holder change).
CREATE INDEX IF NOT EXISTS cases_assess_received
    ON cases (created_ms, scope, counter, staff, holder);
CREATE INDEX IF NOT EXISTS cases_assess_completed
    ON cases (closed_on, scope, counter, staff, holder, accepted_on, committed_due, legal_due, status)
    WHERE status = 'completed';
CREATE INDEX IF NOT EXISTS cases_assess_rated
    ON cases (rated_on, scope, counter, staff, holder, rating, rectify_due, rectified_on)
    WHERE rating IS NOT NULL;
