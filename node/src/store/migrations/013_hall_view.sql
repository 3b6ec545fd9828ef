-- The hall's view of its subtree (issue 14): every open case below the hall by station,
-- and the per-station overview. A case's station is its scope (`case/<division>`).
--
-- The subtree list filtered by station walks one station's open cases in urgency order
-- (the level filters' orders: red_on, breach_on; the open view's: committed deadline).
CREATE INDEX cases_scope_red ON cases (scope, red_on, id) WHERE red_on IS NOT NULL;
CREATE INDEX cases_scope_breach ON cases (scope, breach_on, id) WHERE breach_on IS NOT NULL;
-- The open list's order is an expression (no deadline sorts last); these indexes hold it,
-- for the whole subtree and for one station (the store names them with INDEXED BY: with
-- no statistics SQLite would sort every open case instead).
CREATE INDEX cases_open_deadline ON cases (COALESCE(committed_due, '9999-12-31'), id)
    WHERE status IN ('submitted', 'awaiting_supplement', 'accepted', 'suspended', 'decided');
CREATE INDEX cases_scope_deadline ON cases (scope, COALESCE(committed_due, '9999-12-31'), id)
    WHERE status IN ('submitted', 'awaiting_supplement', 'accepted', 'suspended', 'decided');
-- The overview counts each station's open cases by level from this index alone (status is
-- in it, so SQLite reads no row: one random read per open case in a file of gigabytes).
CREATE INDEX cases_open_levels ON cases (scope, status, yellow_on, red_on, breach_on)
    WHERE status IN ('submitted', 'awaiting_supplement', 'accepted', 'suspended', 'decided');
-- The month's completions (on time or not) and ratings per station, and the last change
-- heard from each station (the newest event's clock).
CREATE INDEX cases_completed_scope ON cases (closed_on, scope, committed_due, status)
    WHERE status = 'completed';
CREATE INDEX cases_rated_scope ON cases (rated_on, scope, rating) WHERE rating IS NOT NULL;
CREATE INDEX cases_rectify_scope ON cases (scope, rectified_on, rating)
    WHERE rectify_due IS NOT NULL;
CREATE INDEX cases_scope_updated ON cases (scope, updated_hlc);
-- Cases by the department they were sent to (the list's department filter).
CREATE INDEX cases_holder_name ON cases (holder, committed_due) WHERE holder IS NOT NULL;
