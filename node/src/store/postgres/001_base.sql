-- The sink's tables in PostgreSQL, in schema `yizhan`. Every row comes from a row the
-- node derived from its documents (SQLite tables cases, case_events, items,
-- registry_records); primary keys are the documents' ids, so rows are upserted and a
-- batch written twice leaves the same rows. Tables that grow without bound are
-- partitioned by month; the sink creates each month's partition before its first row.

-- Where the sink is in the node's change feed: the node's `changes.local_seq` whose rows
-- are in PostgreSQL, written in the same transaction as those rows. One feeding node per
-- database. `epoch` and `generation` say which numbering `local_seq` belongs to: a
-- restored node (new epoch) or rebuilt derived rows (new generation) make the sink read
-- the whole feed again.
CREATE TABLE yizhan.feed_position (
    node_id    text PRIMARY KEY,
    epoch      integer NOT NULL,
    generation bigint NOT NULL,
    local_seq  bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Per origin (the node and epoch that authored a change): the newest sequence number
-- whose rows are in PostgreSQL, so an analyst sees how current each station's data is.
CREATE TABLE yizhan.feed_origins (
    origin_node  text NOT NULL,
    origin_epoch integer NOT NULL,
    seq          bigint NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (origin_node, origin_epoch)
);

-- Cases (办件), partitioned by the month they were received. `division` is where the
-- case was received (its scope); station, subdistrict and district are that division's
-- station, sub-district and district codes (NULL above its level). Warning dates keep
-- the node's encoding ('0000-01-01' reached, '9999-12-31' not reached while suspended),
-- so they are text; v_cases derives today's level from them.
CREATE TABLE yizhan.cases (
    id                  text NOT NULL,
    scope               text NOT NULL,
    division            text NOT NULL,
    station             text,
    subdistrict         text,
    district            text,
    impl_code           text NOT NULL,
    item_name           text NOT NULL,
    item_version        integer NOT NULL,
    case_type           text NOT NULL,
    status              text NOT NULL,
    conflict            boolean NOT NULL,
    serial_no           text,
    applicant_name      text NOT NULL,
    applicant_id_masked text NOT NULL,
    phone_tail          text NOT NULL,
    counter             text NOT NULL,
    staff               text NOT NULL,
    node                text NOT NULL,
    created_ms          bigint NOT NULL,
    created_on          date NOT NULL,
    accepted_on         date,
    committed_due       date,
    legal_due           date,
    yellow_on           text,
    red_on              text,
    breach_on           text,
    clock_stopped_on    date,
    closed_on           date,
    calendar            text,
    calendar_covered    boolean NOT NULL,
    updated_hlc         text NOT NULL,
    holder              text,
    holder_node         text,
    signed_on           date,
    rating              smallint,
    rated_on            date,
    rectify_due         date,
    rectified_on        date,
    PRIMARY KEY (id, created_on)
) PARTITION BY RANGE (created_on);
CREATE INDEX cases_serial ON yizhan.cases (serial_no);
CREATE INDEX cases_station ON yizhan.cases (station, created_on);

-- The events of each case, partitioned by the month of the event.
CREATE TABLE yizhan.case_events (
    case_id   text NOT NULL,
    event_id  text NOT NULL,
    at_hlc    text NOT NULL,
    at_ms     bigint NOT NULL,
    at_on     date NOT NULL,
    node      text NOT NULL,
    staff     text NOT NULL,
    kind      text NOT NULL,
    conflict  boolean NOT NULL,
    voided    boolean NOT NULL,
    body      jsonb NOT NULL,
    PRIMARY KEY (case_id, event_id, at_on)
) PARTITION BY RANGE (at_on);

-- The catalog as the node holds it now (one row per item) ...
CREATE TABLE yizhan.items (
    id             text PRIMARY KEY,
    scope          text NOT NULL,
    impl_code      text NOT NULL,
    basic_code     text NOT NULL,
    name           text NOT NULL,
    category       text NOT NULL,
    kind           text NOT NULL,
    level          text NOT NULL,
    case_type      text NOT NULL,
    legal_days     integer NOT NULL,
    committed_days integer NOT NULL,
    status         text NOT NULL,
    version        integer NOT NULL,
    search_text    text NOT NULL,
    body           jsonb NOT NULL
);

-- ... and every version of every item, read from each change to the item's document:
-- cases name the version they were received under (cases.item_version).
CREATE TABLE yizhan.item_versions (
    id        text NOT NULL,
    version   integer NOT NULL,
    impl_code text NOT NULL,
    name      text NOT NULL,
    status    text NOT NULL,
    body      jsonb NOT NULL,
    PRIMARY KEY (id, version)
);

-- Node records from the registries the node holds (a node appears in the registry of
-- the hall that enrolled it, and in its own if it is a hall).
CREATE TABLE yizhan.node_records (
    scope       text NOT NULL,
    node_id     text NOT NULL,
    role        text NOT NULL,
    division    text NOT NULL,
    name        text NOT NULL,
    enrolled_by text NOT NULL,
    revoked     boolean NOT NULL,
    record      jsonb NOT NULL,
    PRIMARY KEY (scope, node_id)
);
