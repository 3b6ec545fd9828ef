-- 并联审批 (SZDB/Z 176 §7.5): a part of a combined application is a case of its own (the
-- department's work) bound to the whole the applicant sees. `part_of` names the whole, so
-- that statistics count an application once, as the nodes do (`node/src/store/stats.rs`);
-- NULL for every other case. Parts exist only from sync protocol 6 on, so no row written
-- before this migration is one.
ALTER TABLE yizhan.cases ADD COLUMN part_of text;
CREATE INDEX cases_part_of ON yizhan.cases (part_of) WHERE part_of IS NOT NULL;

CREATE OR REPLACE VIEW yizhan.v_cases AS
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
       c.rating, c.rated_on, c.rectify_due, c.rectified_on,
       -- The whole a part of a combined application belongs to (NULL: not a part).
       c.part_of
FROM yizhan.cases c
LEFT JOIN yizhan.nodes n ON n.node_id = c.node;
