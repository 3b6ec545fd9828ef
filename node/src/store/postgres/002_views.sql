-- The view layer for analysts (docs/sink.md). Views leave out the applicant's personal
-- data (name, masked id, phone tail), which stays in yizhan.cases for the systems that
-- are granted it; warning levels are derived from today's date in China, as on the node.

-- One row per node: its record in the registry of the hall that enrolled it (the longest
-- registry scope that holds it).
CREATE VIEW yizhan.nodes AS
SELECT DISTINCT ON (node_id)
       node_id, role, division, name, enrolled_by, revoked, record
FROM yizhan.node_records
ORDER BY node_id, length(scope) DESC, scope;

CREATE VIEW yizhan.v_cases AS
SELECT c.id                  AS case_id,
       -- 统一业务流水号: issued at acceptance from the item's implementation code.
       c.serial_no           AS unified_serial_no,
       -- 原系统业务流水号: the case's id in the system that handled it, which is Yizhan.
       c.id                  AS original_serial_no,
       -- 申报号: the number of an online declaration; counter intake has none.
       NULL::text            AS declaration_no,
       c.division, c.station, n.name AS station_name, c.subdistrict, c.district,
       c.impl_code, c.item_name, c.item_version, c.case_type, c.status, c.conflict,
       c.counter, c.staff, c.node,
       c.created_on          AS received_on,
       c.accepted_on, c.committed_due, c.legal_due, c.closed_on,
       CASE WHEN c.status = 'completed' AND c.committed_due IS NOT NULL
            THEN c.closed_on <= c.committed_due END AS completed_on_time,
       CASE WHEN c.breach_on IS NULL THEN NULL
            WHEN c.breach_on <= to_char(now() AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD') THEN 'legal_breach'
            WHEN c.red_on <= to_char(now() AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD') THEN 'red'
            WHEN c.yellow_on <= to_char(now() AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD') THEN 'yellow'
            ELSE 'normal' END AS level,
       c.holder, c.signed_on,
       c.rating, c.rated_on, c.rectify_due, c.rectified_on
FROM yizhan.cases c
LEFT JOIN yizhan.nodes n ON n.node_id = c.node;

CREATE VIEW yizhan.v_events AS
SELECT e.case_id, c.serial_no AS unified_serial_no, c.station, c.district,
       e.event_id, e.kind, e.at_on, to_timestamp(e.at_ms / 1000.0) AS at,
       e.node, e.staff, e.conflict, e.voided, e.body
FROM yizhan.case_events e
JOIN yizhan.cases c ON c.id = e.case_id;

-- 好差评: one rating per case, levels 1 (非常不满意) to 5 (非常满意); 1 and 2 are 差评.
CREATE VIEW yizhan.v_ratings AS
SELECT c.id AS case_id, c.serial_no AS unified_serial_no, c.station, c.subdistrict,
       c.district, c.impl_code, c.counter, c.staff,
       c.rating, c.rated_on, c.rating <= 2 AS bad
FROM yizhan.cases c
WHERE c.rating IS NOT NULL;

-- 差评整改: what each bad rating opened, when it was due and when it was closed.
CREATE VIEW yizhan.v_rectifications AS
SELECT c.id AS case_id, c.serial_no AS unified_serial_no, c.station, c.subdistrict,
       c.district, c.counter, c.staff, c.rating, c.rated_on,
       c.rectify_due, c.rectified_on,
       c.rectified_on IS NOT NULL AND c.rectified_on <= c.rectify_due AS on_time
FROM yizhan.cases c
WHERE c.rectify_due IS NOT NULL;
