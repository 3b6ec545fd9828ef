-- Notices, supervision notices and replies grow without bound like cases and events:
-- partitioned by month of the China day they were issued (notices, supervision notices)
-- or written (replies), with keys that include that day as the other partitioned tables'
-- do. Existing rows move into the new tables; the sink creates later months' partitions
-- before their first row.
--
-- A supervision notice gets its reply's due date (`reply_due`), counted by the node on
-- the calendar of the hall that issued it (domain::supervision, as the node's own pages
-- count it) and written again whenever a calendar year changes it; v_supervision derives
-- the notice's state from it. Rows written before this migration have none until the
-- sink writes them again: the migration moves the sink's position back to the start of
-- the feed, so it writes its whole feed once more (rows that did not change are left
-- alone).

DROP VIEW yizhan.v_notices;
DROP VIEW yizhan.v_supervision;

ALTER TABLE yizhan.notices RENAME TO notices_unpartitioned;
ALTER TABLE yizhan.supervision_notices RENAME TO supervision_notices_unpartitioned;
ALTER TABLE yizhan.supervision_replies RENAME TO supervision_replies_unpartitioned;
DROP INDEX yizhan.notices_case, yizhan.notices_station, yizhan.supervision_notices_station,
    yizhan.supervision_replies_notice;
ALTER TABLE yizhan.notices_unpartitioned DROP CONSTRAINT notices_pkey,
    DROP CONSTRAINT notices_doc_id_key;
ALTER TABLE yizhan.supervision_notices_unpartitioned DROP CONSTRAINT supervision_notices_pkey;
ALTER TABLE yizhan.supervision_replies_unpartitioned DROP CONSTRAINT supervision_replies_pkey;

CREATE TABLE yizhan.notices (
    number      text NOT NULL,
    doc_id      text NOT NULL,
    case_id     text NOT NULL,
    division    text NOT NULL,
    station     text,
    subdistrict text,
    district    text,
    -- The issuing node (32 hex digits).
    node        text NOT NULL,
    kind        text NOT NULL,
    issued_ms   bigint NOT NULL,
    -- The China day of issued_ms: the partition key.
    issued_on   date NOT NULL,
    supersedes  text,
    -- SHA-256 of the canonical content and the issuing node's Ed25519 seal, hex.
    digest      text NOT NULL,
    seal        text NOT NULL,
    -- The sealed content exactly as issued (its bytes are what the digest covers).
    content     text NOT NULL,
    PRIMARY KEY (number, issued_on),
    UNIQUE (doc_id, issued_on)
) PARTITION BY RANGE (issued_on);
CREATE INDEX notices_case ON yizhan.notices (case_id);
CREATE INDEX notices_station ON yizhan.notices (station, issued_ms);
CREATE INDEX notices_supersedes ON yizhan.notices (supersedes) WHERE supersedes IS NOT NULL;

CREATE TABLE yizhan.supervision_notices (
    id          text NOT NULL,
    division    text NOT NULL,
    station     text,
    subdistrict text,
    district    text,
    case_id     text,
    -- The hall that issued it (node id) and who.
    node        text NOT NULL,
    staff       text NOT NULL,
    reason      text NOT NULL,
    todo        text NOT NULL,
    reply_days  integer NOT NULL,
    issued_ms   bigint NOT NULL,
    -- The China day of issued_ms: the partition key.
    issued_on   date NOT NULL,
    -- The last day to reply: reply_days working days after issued_on on the issuing
    -- hall's calendar (NULL only for rows the sink has not written again since
    -- migration 4).
    reply_due   date,
    body        jsonb NOT NULL,
    PRIMARY KEY (id, issued_on)
) PARTITION BY RANGE (issued_on);
CREATE INDEX supervision_notices_station ON yizhan.supervision_notices (station, issued_ms);
CREATE INDEX supervision_notices_id ON yizhan.supervision_notices (id);

CREATE TABLE yizhan.supervision_replies (
    id          text NOT NULL,
    notice_id   text NOT NULL,
    node        text NOT NULL,
    staff       text NOT NULL,
    text        text NOT NULL,
    replied_ms  bigint NOT NULL,
    -- The China day of replied_ms: the partition key.
    replied_on  date NOT NULL,
    body        jsonb NOT NULL,
    PRIMARY KEY (id, replied_on)
) PARTITION BY RANGE (replied_on);
CREATE INDEX supervision_replies_notice ON yizhan.supervision_replies (notice_id, replied_ms);

-- The month partitions the existing rows need, then the rows.
DO $$
DECLARE
    part record;
BEGIN
    FOR part IN
        SELECT DISTINCT t.name, date_trunc('month', t.day)::date AS first_day
        FROM (SELECT 'notices' AS name,
                     (to_timestamp(issued_ms / 1000.0) AT TIME ZONE 'Asia/Shanghai')::date AS day
              FROM yizhan.notices_unpartitioned
              UNION ALL
              SELECT 'supervision_notices',
                     (to_timestamp(issued_ms / 1000.0) AT TIME ZONE 'Asia/Shanghai')::date
              FROM yizhan.supervision_notices_unpartitioned
              UNION ALL
              SELECT 'supervision_replies',
                     (to_timestamp(replied_ms / 1000.0) AT TIME ZONE 'Asia/Shanghai')::date
              FROM yizhan.supervision_replies_unpartitioned) t
    LOOP
        EXECUTE format(
            'CREATE TABLE yizhan.%I PARTITION OF yizhan.%I FOR VALUES FROM (%L) TO (%L)',
            part.name || to_char(part.first_day, '"_y"YYYY"m"MM'), part.name,
            part.first_day, (part.first_day + interval '1 month')::date);
    END LOOP;
END
$$;

INSERT INTO yizhan.notices
SELECT number, doc_id, case_id, division, station, subdistrict, district, node, kind,
       issued_ms, (to_timestamp(issued_ms / 1000.0) AT TIME ZONE 'Asia/Shanghai')::date,
       supersedes, digest, seal, content
FROM yizhan.notices_unpartitioned;
INSERT INTO yizhan.supervision_notices
SELECT id, division, station, subdistrict, district, case_id, node, staff, reason, todo,
       reply_days, issued_ms, (to_timestamp(issued_ms / 1000.0) AT TIME ZONE 'Asia/Shanghai')::date,
       NULL, body
FROM yizhan.supervision_notices_unpartitioned;
INSERT INTO yizhan.supervision_replies
SELECT id, notice_id, node, staff, text, replied_ms,
       (to_timestamp(replied_ms / 1000.0) AT TIME ZONE 'Asia/Shanghai')::date, body
FROM yizhan.supervision_replies_unpartitioned;

DROP TABLE yizhan.notices_unpartitioned, yizhan.supervision_notices_unpartitioned,
    yizhan.supervision_replies_unpartitioned;

-- The whole feed once more, for the due dates (see above).
UPDATE yizhan.feed_position SET local_seq = 0, updated_at = now();

-- Notices with the name of the station that issued them, without the sealed content
-- (which names the applicant).
CREATE VIEW yizhan.v_notices AS
SELECT n.number, n.kind, n.case_id, c.serial_no AS unified_serial_no,
       n.division, n.station, s.name AS station_name, n.subdistrict, n.district,
       n.node, to_timestamp(n.issued_ms / 1000.0) AS issued_at, n.issued_on, n.supersedes,
       (SELECT m.number FROM yizhan.notices m WHERE m.supersedes = n.number
        ORDER BY m.issued_ms LIMIT 1) AS superseded_by,
       n.digest, n.seal
FROM yizhan.notices n
LEFT JOIN yizhan.nodes s ON s.node_id = n.node
LEFT JOIN LATERAL (SELECT serial_no FROM yizhan.cases WHERE id = n.case_id LIMIT 1) c ON true;

-- Supervision notices with their first reply, the reply's due date (counted by the node
-- on the issuing hall's calendar) and where the notice stands today in China, as the
-- node's pages and /api/v1/supervision say it (domain::supervision::reply_state): the
-- first reply counts; answered on time when it came on or before the due day, late
-- after it; unanswered, overdue from the day after the due day, open until then.
CREATE VIEW yizhan.v_supervision AS
SELECT sn.id, sn.station, st.name AS station_name, sn.subdistrict, sn.district,
       sn.case_id, sn.node AS issued_by_node, h.name AS issued_by, sn.staff,
       sn.reason, sn.todo, sn.reply_days,
       to_timestamp(sn.issued_ms / 1000.0) AS issued_at, sn.issued_on, sn.reply_due,
       r.replies, to_timestamp(r.first_ms / 1000.0) AS first_reply_at,
       r.first_on AS first_reply_on,
       CASE WHEN sn.reply_due IS NULL THEN NULL
            WHEN r.first_on IS NOT NULL AND r.first_on <= sn.reply_due THEN 'answered_on_time'
            WHEN r.first_on IS NOT NULL THEN 'answered_late'
            WHEN (now() AT TIME ZONE 'Asia/Shanghai')::date > sn.reply_due THEN 'overdue'
            ELSE 'open' END AS state
FROM yizhan.supervision_notices sn
LEFT JOIN yizhan.nodes h ON h.node_id = sn.node
LEFT JOIN LATERAL (SELECT name FROM yizhan.nodes WHERE division = sn.station AND role = 'station'
                   LIMIT 1) st ON true
LEFT JOIN LATERAL (SELECT count(*) AS replies, min(replied_ms) AS first_ms,
                          min(replied_on) AS first_on
                   FROM yizhan.supervision_replies WHERE notice_id = sn.id) r ON true;
