-- 收费 (SZDB/Z 176 §9.5): the payments and exemptions recorded on the cases, read from
-- their events (kinds `pay` and `exempt`, the amount in fen in the event's body), and the
-- month's figures per station and item. A payment in conflict or voided by a lead's
-- resolution does not count, as on the nodes (`domain::fee`).
CREATE VIEW yizhan.v_fees AS
SELECT e.case_id, c.serial_no AS unified_serial_no, c.station, c.subdistrict, c.district,
       c.impl_code, c.item_name, e.event_id, e.kind, e.at_on, e.staff,
       e.body->>'fee' AS fee,
       (e.body->>'amount_fen')::bigint AS amount_fen,
       e.body->>'method' AS method,
       e.body->>'receipt' AS receipt,
       e.body->>'reason' AS reason,
       e.body->>'basis' AS basis
FROM yizhan.case_events e
JOIN yizhan.cases c ON c.id = e.case_id
WHERE e.kind IN ('pay', 'exempt') AND NOT e.conflict AND NOT e.voided;

CREATE VIEW yizhan.v_fees_by_month AS
SELECT to_char(at_on, 'YYYY-MM') AS month, station, subdistrict, district, impl_code,
       max(item_name) AS item_name,
       coalesce(sum(amount_fen) FILTER (WHERE kind = 'pay'), 0) AS collected_fen,
       count(DISTINCT case_id) FILTER (WHERE kind = 'pay') AS paid_cases,
       count(*) FILTER (WHERE kind = 'exempt') AS exemptions,
       coalesce(sum(amount_fen) FILTER (WHERE kind = 'exempt'), 0) AS exempt_fen
FROM yizhan.v_fees
GROUP BY 1, station, subdistrict, district, impl_code;
