-- Sealed notices (回执, 告知书) and supervision notices (督办) with the stations' replies,
-- from the node's notices, supervision_notices and supervision_replies rows (issue 14).
-- All three are records written once: rows are upserted by document id, and a batch
-- written twice leaves the same rows. station, subdistrict and district are those of the
-- station whose case scope holds the record, as for cases.

CREATE TABLE yizhan.notices (
    number      text PRIMARY KEY,
    doc_id      text NOT NULL UNIQUE,
    case_id     text NOT NULL,
    division    text NOT NULL,
    station     text,
    subdistrict text,
    district    text,
    -- The issuing node (32 hex digits).
    node        text NOT NULL,
    kind        text NOT NULL,
    issued_ms   bigint NOT NULL,
    supersedes  text,
    -- SHA-256 of the canonical content and the issuing node's Ed25519 seal, hex.
    digest      text NOT NULL,
    seal        text NOT NULL,
    -- The sealed content exactly as issued (its bytes are what the digest covers).
    content     text NOT NULL
);
CREATE INDEX notices_case ON yizhan.notices (case_id);
CREATE INDEX notices_station ON yizhan.notices (station, issued_ms);

CREATE TABLE yizhan.supervision_notices (
    id          text PRIMARY KEY,
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
    body        jsonb NOT NULL
);
CREATE INDEX supervision_notices_station ON yizhan.supervision_notices (station, issued_ms);

CREATE TABLE yizhan.supervision_replies (
    id          text PRIMARY KEY,
    notice_id   text NOT NULL,
    node        text NOT NULL,
    staff       text NOT NULL,
    text        text NOT NULL,
    replied_ms  bigint NOT NULL,
    body        jsonb NOT NULL
);
CREATE INDEX supervision_replies_notice ON yizhan.supervision_replies (notice_id, replied_ms);

-- Notices with the name of the station that issued them, without the sealed content
-- (which names the applicant).
CREATE VIEW yizhan.v_notices AS
SELECT n.number, n.kind, n.case_id, c.serial_no AS unified_serial_no,
       n.division, n.station, s.name AS station_name, n.subdistrict, n.district,
       n.node, to_timestamp(n.issued_ms / 1000.0) AS issued_at, n.supersedes,
       (SELECT m.number FROM yizhan.notices m WHERE m.supersedes = n.number
        ORDER BY m.issued_ms LIMIT 1) AS superseded_by,
       n.digest, n.seal
FROM yizhan.notices n
LEFT JOIN yizhan.nodes s ON s.node_id = n.node
LEFT JOIN LATERAL (SELECT serial_no FROM yizhan.cases WHERE id = n.case_id LIMIT 1) c ON true;

-- Supervision notices with their first reply. The reply deadline counts working days on
-- the calendar, which PostgreSQL does not hold: the node's pages and
-- /api/v1/supervision say whether a notice is open, answered or overdue; here are the
-- facts it is counted from (issued_at, reply_days, first_reply_at).
CREATE VIEW yizhan.v_supervision AS
SELECT sn.id, sn.station, st.name AS station_name, sn.subdistrict, sn.district,
       sn.case_id, sn.node AS issued_by_node, h.name AS issued_by, sn.staff,
       sn.reason, sn.todo, sn.reply_days,
       to_timestamp(sn.issued_ms / 1000.0) AS issued_at,
       r.replies, to_timestamp(r.first_ms / 1000.0) AS first_reply_at
FROM yizhan.supervision_notices sn
LEFT JOIN yizhan.nodes h ON h.node_id = sn.node
LEFT JOIN LATERAL (SELECT name FROM yizhan.nodes WHERE division = sn.station AND role = 'station'
                   LIMIT 1) st ON true
LEFT JOIN LATERAL (SELECT count(*) AS replies, min(replied_ms) AS first_ms
                   FROM yizhan.supervision_replies WHERE notice_id = sn.id) r ON true;
