//! The PostgreSQL side of the sink: its numbered migrations, its position in the node's
//! change feed, and the batched upserts that carry the feed's rows (`store::feed`) into
//! the tables analysts and the city's systems read (`docs/sink.md`).
//!
//! Exactly once: each batch is one PostgreSQL transaction that upserts the rows and moves
//! the position, guarded by the position it started from. A crash of either side before
//! the commit leaves neither; after it, both. Rows are keyed by the documents' ids, so
//! even a batch read again writes the same rows, never a second copy.
//!
//! Batching: one `INSERT … SELECT FROM unnest($1, $2, …)` per table and batch, each column
//! sent as one array parameter in the binary protocol: one round trip and one statement
//! for thousands of rows, with `ON CONFLICT … DO UPDATE` for the upsert (COPY cannot
//! upsert without a staging table; see docs/benchmarks.md for the figures).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls};
use yizhan_sync::domain::calendar::Date;

use super::feed::{
    FeedBatch, FeedCase, FeedEvent, FeedIdentity, FeedItem, FeedNotice, FeedReply, FeedSupervision,
};
use crate::config::{check_postgres_url, redact_postgres_url};

/// `(version, name, sql)`; versions are 1, 2, 3, … with no gaps. A migration is never
/// edited once released: a change is a new one.
const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "base", include_str!("postgres/001_base.sql")),
    (2, "views", include_str!("postgres/002_views.sql")),
    (
        3,
        "notices_supervision",
        include_str!("postgres/003_notices_supervision.sql"),
    ),
    (
        4,
        "partition_notices_due",
        include_str!("postgres/004_partition_notices_due.sql"),
    ),
    (5, "fees", include_str!("postgres/005_fees.sql")),
    (6, "parts", include_str!("postgres/006_parts.sql")),
];

/// The PostgreSQL schema version this build writes.
pub const PG_SCHEMA_VERSION: i32 = MIGRATIONS.len() as i32;

/// Serializes migrations between two sinks (or a sink and `yizhan sink check`) that start
/// at once; any constant works, this one spells "yz".
const MIGRATION_LOCK: i64 = 0x797a;

/// A sink operation on PostgreSQL failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    #[error("the [sink] postgres URL is not valid: {0}")]
    Url(String),
    #[error("cannot reach PostgreSQL: {0}")]
    Connect(#[source] tokio_postgres::Error),
    #[error(
        "the PostgreSQL schema is at version {found}, newer than this yizhan knows ({known}); upgrade yizhan on this node"
    )]
    NewerSchema { found: i32, known: i32 },
    #[error(
        "this PostgreSQL database is fed by node {other}; give each feeding node a database of its own"
    )]
    OtherNode { other: String },
    #[error(
        "the feed position in PostgreSQL is not where this sink left it (another writer, or PostgreSQL lost or restored commits); resuming from the position it holds"
    )]
    PositionMoved,
    #[error(
        "the node derived its rows again (a rebuild, or deadlines for a new calendar year); the sink writes its whole feed again"
    )]
    Rederived,
    #[error("PostgreSQL did not answer within {0:?}")]
    Timeout(Duration),
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// The node's own side: its change log could not be read.
    #[error("cannot read the node's change log: {0}")]
    Feed(#[from] super::StoreError),
}

impl SinkError {
    /// The message with the server's own detail when PostgreSQL gave one (its `Display`
    /// alone often says only "db error").
    pub fn detail(&self) -> String {
        match self {
            SinkError::Postgres(e) | SinkError::Connect(e) => match e.as_db_error() {
                Some(db) => format!("PostgreSQL: {}: {}", db.code().code(), db.message()),
                None => self.to_string(),
            },
            other => other.to_string(),
        }
    }
}

/// Where the sink is, as PostgreSQL records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedPosition {
    pub node_id: String,
    pub epoch: u32,
    pub generation: i64,
    pub local_seq: u64,
}

/// A station's cases in PostgreSQL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StationCases {
    pub station: Option<String>,
    pub name: Option<String>,
    pub subdistrict: Option<String>,
    pub district: Option<String>,
    pub cases: u64,
}

/// What one batch wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Written {
    pub rows: u64,
    pub cases: u64,
}

/// A connection to the sink's PostgreSQL database.
pub struct Postgres {
    client: Client,
    /// Month partitions known to exist (created by an earlier, committed batch).
    partitions: HashSet<String>,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Postgres").finish_non_exhaustive()
    }
}

impl Postgres {
    /// Connects, waiting at most `timeout`. The connection's I/O runs on its own task.
    pub async fn connect(url: &str, timeout: Duration) -> Result<Postgres, SinkError> {
        let mut config = tokio_postgres::Config::from_str(url)
            .map_err(|e| SinkError::Url(format!("{}: {e}", redact_postgres_url(url))))?;
        check_postgres_url(url).map_err(SinkError::Url)?;
        config
            .connect_timeout(timeout)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            .application_name("yizhan-sink");
        let (client, connection) = tokio::time::timeout(timeout, config.connect(NoTls))
            .await
            .map_err(|_| SinkError::Timeout(timeout))?
            .map_err(SinkError::Connect)?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "the PostgreSQL connection closed");
            }
        });
        Ok(Postgres {
            client,
            partitions: HashSet::new(),
        })
    }

    /// The server's version string, for `yizhan sink check`.
    pub async fn server_version(&self) -> Result<String, SinkError> {
        let row = self.client.query_one("SHOW server_version", &[]).await?;
        Ok(row.get(0))
    }

    /// The schema version PostgreSQL holds (0 for none).
    pub async fn schema_version(&self) -> Result<i32, SinkError> {
        let exists = self
            .client
            .query_one(
                "SELECT to_regclass('yizhan.sink_migrations') IS NOT NULL",
                &[],
            )
            .await?;
        if !exists.get::<_, bool>(0) {
            return Ok(0);
        }
        let row = self
            .client
            .query_one(
                "SELECT coalesce(max(version), 0) FROM yizhan.sink_migrations",
                &[],
            )
            .await?;
        Ok(row.get(0))
    }

    /// Applies the migrations PostgreSQL lacks, each in the same transaction as its
    /// record; returns how many it applied.
    pub async fn migrate(&mut self) -> Result<u32, SinkError> {
        self.migrate_to(PG_SCHEMA_VERSION).await
    }

    /// Applies the migrations PostgreSQL lacks up to version `last`.
    async fn migrate_to(&mut self, last: i32) -> Result<u32, SinkError> {
        let tx = self.client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        tx.batch_execute(
            "CREATE SCHEMA IF NOT EXISTS yizhan;
             CREATE TABLE IF NOT EXISTS yizhan.sink_migrations (
                 version    integer PRIMARY KEY,
                 name       text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now()
             );",
        )
        .await?;
        let found: i32 = tx
            .query_one(
                "SELECT coalesce(max(version), 0) FROM yizhan.sink_migrations",
                &[],
            )
            .await?
            .get(0);
        if found > PG_SCHEMA_VERSION {
            return Err(SinkError::NewerSchema {
                found,
                known: PG_SCHEMA_VERSION,
            });
        }
        let mut applied = 0;
        for (version, name, sql) in MIGRATIONS
            .iter()
            .filter(|(v, _, _)| *v > found && *v <= last)
        {
            tx.batch_execute(sql).await?;
            tx.execute(
                "INSERT INTO yizhan.sink_migrations (version, name) VALUES ($1, $2)",
                &[version, name],
            )
            .await?;
            tracing::info!(
                sink.schema = version,
                sink.migration = name,
                "PostgreSQL migrated"
            );
            applied += 1;
        }
        tx.commit().await?;
        Ok(applied)
    }

    /// The position recorded for the node that feeds this database, if any.
    pub async fn position(&self) -> Result<Option<FeedPosition>, SinkError> {
        let rows = self
            .client
            .query(
                "SELECT node_id, epoch, generation, local_seq FROM yizhan.feed_position ORDER BY node_id",
                &[],
            )
            .await?;
        Ok(rows.first().map(|row| FeedPosition {
            node_id: row.get(0),
            epoch: row.get::<_, i32>(1) as u32,
            generation: row.get(2),
            local_seq: row.get::<_, i64>(3).max(0) as u64,
        }))
    }

    /// Where to resume for this node: the recorded position when it belongs to the same
    /// epoch and generation and the node's log reaches it (`head`), otherwise the start
    /// of the feed (the whole feed is written again; upserts make that harmless).
    pub async fn start_feed(
        &mut self,
        identity: &FeedIdentity,
        head: u64,
    ) -> Result<u64, SinkError> {
        let tx = self.client.transaction().await?;
        tx.execute("LOCK TABLE yizhan.feed_position IN EXCLUSIVE MODE", &[])
            .await?;
        let rows = tx
            .query(
                "SELECT node_id, epoch, generation, local_seq FROM yizhan.feed_position",
                &[],
            )
            .await?;
        if let Some(other) = rows
            .iter()
            .map(|r| r.get::<_, String>(0))
            .find(|n| *n != identity.node_id)
        {
            return Err(SinkError::OtherNode { other });
        }
        let resume = match rows.first() {
            Some(row)
                if row.get::<_, i32>(1) as u32 == identity.epoch
                    && row.get::<_, i64>(2) == identity.generation
                    && row.get::<_, i64>(3).max(0) as u64 <= head =>
            {
                row.get::<_, i64>(3).max(0) as u64
            }
            Some(row) => {
                tracing::warn!(
                    sink.epoch.was = row.get::<_, i32>(1),
                    sink.epoch = identity.epoch,
                    sink.generation.was = row.get::<_, i64>(2),
                    sink.generation = identity.generation,
                    sink.position.was = row.get::<_, i64>(3),
                    sink.head = head,
                    "the node's change log is not the one PostgreSQL's position counts (restored or rebuilt); writing the whole feed again"
                );
                tx.execute(
                    "UPDATE yizhan.feed_position SET epoch = $2, generation = $3, local_seq = 0, updated_at = now()
                     WHERE node_id = $1",
                    &[&identity.node_id, &(identity.epoch as i32), &identity.generation],
                )
                .await?;
                0
            }
            None => {
                tx.execute(
                    "INSERT INTO yizhan.feed_position (node_id, epoch, generation, local_seq) VALUES ($1, $2, $3, 0)",
                    &[&identity.node_id, &(identity.epoch as i32), &identity.generation],
                )
                .await?;
                0
            }
        };
        tx.commit().await?;
        Ok(resume)
    }

    /// Writes a batch and moves the position from `batch.after` to `batch.through`, in
    /// one transaction.
    pub async fn write(
        &mut self,
        identity: &FeedIdentity,
        batch: &FeedBatch,
    ) -> Result<Written, SinkError> {
        self.write_after(identity, batch, std::future::ready(true), false)
            .await
    }

    /// Whether writing `batch` may run while another connection writes the batch before
    /// it: their rows do not overlap (`FeedBatch::overlaps_previous`) and every month
    /// partition it needs exists already (creating one locks its table).
    pub fn may_overlap(&self, batch: &FeedBatch) -> bool {
        !batch.overlaps_previous && !self.creates_partitions(batch)
    }

    /// Whether writing `batch` creates a month partition this connection has not seen:
    /// `CREATE TABLE … PARTITION OF` locks the parent table until the commit, so the batch
    /// after it must not start before (it would hold the parent's lock the other waits for,
    /// while it waits for that commit itself).
    pub fn creates_partitions(&self, batch: &FeedBatch) -> bool {
        partitions_of(batch)
            .iter()
            .any(|(name, _, _)| !self.partitions.contains(name))
    }

    /// [`Postgres::write`] on one of two connections: the rows first, then, once `before`
    /// says the batch before this one committed (on the other connection), the position
    /// and the commit. The position still moves only from where the previous batch left
    /// it, so batches commit in the feed's order or not at all. A batch that may not
    /// overlap ([`Postgres::may_overlap`]) waits for `before` before it starts.
    pub async fn write_after(
        &mut self,
        identity: &FeedIdentity,
        batch: &FeedBatch,
        before: impl std::future::Future<Output = bool>,
        after_exclusive: bool,
    ) -> Result<Written, SinkError> {
        let mut before = std::pin::pin!(before);
        // After a batch that creates partitions (`after_exclusive`), this one starts only
        // once it committed.
        let overlap = !after_exclusive && self.may_overlap(batch);
        if !overlap && !before.as_mut().await {
            return Err(SinkError::PositionMoved);
        }
        let mut created = Vec::new();
        let tx = self.client.transaction().await?;
        for (name, table, month) in partitions_of(batch) {
            if self.partitions.contains(&name) {
                continue;
            }
            let Some(from) = Date::from_str(&format!("{month}-01")).ok() else {
                continue;
            };
            let (y, m, _) = from.ymd();
            let to = if m == 12 {
                format!("{}-01-01", y + 1)
            } else {
                format!("{y:04}-{:02}-01", m + 1)
            };
            tx.batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS yizhan.{name} PARTITION OF yizhan.{table}
                 FOR VALUES FROM ('{month}-01') TO ('{to}')"
            ))
            .await?;
            created.push(name);
        }
        let mut written = Written::default();
        if !batch.cases.is_empty() {
            written.rows += upsert_cases(&tx, &batch.cases).await?;
            written.cases = batch.cases.len() as u64;
        }
        if !batch.events.is_empty() {
            written.rows += upsert_events(&tx, &batch.events).await?;
        }
        if !batch.items.is_empty() {
            written.rows += upsert_items(&tx, &batch.items).await?;
        }
        if !batch.item_versions.is_empty() {
            let v = &batch.item_versions;
            let id: Vec<&str> = v.iter().map(|r| r.id.as_str()).collect();
            let version: Vec<i64> = v.iter().map(|r| r.version).collect();
            let impl_code: Vec<&str> = v.iter().map(|r| r.impl_code.as_str()).collect();
            let name: Vec<&str> = v.iter().map(|r| r.name.as_str()).collect();
            let status: Vec<&str> = v.iter().map(|r| r.status.as_str()).collect();
            let body: Vec<&str> = v.iter().map(|r| r.body_json.as_str()).collect();
            written.rows += tx
                .execute(
                    "INSERT INTO yizhan.item_versions AS t (id, version, impl_code, name, status, body)
                     SELECT id, version::int, impl_code, name, status, body::jsonb
                     FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[])
                          AS u(id, version, impl_code, name, status, body)
                     ON CONFLICT (id, version) DO UPDATE SET impl_code = excluded.impl_code,
                         name = excluded.name, status = excluded.status, body = excluded.body
                     WHERE (t.*) IS DISTINCT FROM (excluded.*)",
                    &[&id, &version, &impl_code, &name, &status, &body],
                )
                .await?;
        }
        if !batch.registries.is_empty() {
            let scopes: Vec<&str> = batch.registries.iter().map(|r| r.scope.as_str()).collect();
            tx.execute(
                "DELETE FROM yizhan.node_records WHERE scope = ANY($1)",
                &[&scopes],
            )
            .await?;
            let mut columns: [Vec<String>; 7] = Default::default();
            let mut revoked: Vec<bool> = Vec::new();
            for registry in &batch.registries {
                for (node_id, json) in &registry.records {
                    let record: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
                    let field = |k: &str| record[k].as_str().unwrap_or_default().to_string();
                    columns[0].push(registry.scope.clone());
                    columns[1].push(node_id.clone());
                    columns[2].push(field("role"));
                    columns[3].push(field("division"));
                    columns[4].push(field("name"));
                    columns[5].push(field("enrolled_by"));
                    columns[6].push(json.clone());
                    revoked.push(!record["revoked"].is_null());
                }
            }
            written.rows += tx
                .execute(
                    "INSERT INTO yizhan.node_records (scope, node_id, role, division, name, enrolled_by, revoked, record)
                     SELECT scope, node_id, role, division, name, enrolled_by, revoked, record::jsonb
                     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bool[], $8::text[])
                          AS u(scope, node_id, role, division, name, enrolled_by, revoked, record)",
                    &[
                        &columns[0], &columns[1], &columns[2], &columns[3], &columns[4],
                        &columns[5], &revoked, &columns[6],
                    ],
                )
                .await?;
        }
        if !batch.notices.is_empty() {
            written.rows += upsert_notices(&tx, &batch.notices).await?;
        }
        if !batch.supervision.is_empty() {
            written.rows += upsert_supervision(&tx, &batch.supervision).await?;
        }
        if !batch.replies.is_empty() {
            written.rows += upsert_replies(&tx, &batch.replies).await?;
        }
        // The rows are in; what every batch touches (the origins' rows, the position) waits
        // for the batch before, so the two connections never wait on each other.
        if overlap && !before.as_mut().await {
            return Err(SinkError::PositionMoved);
        }
        if !batch.origins.is_empty() {
            let node: Vec<&str> = batch.origins.iter().map(|o| o.node.as_str()).collect();
            let epoch: Vec<i64> = batch.origins.iter().map(|o| i64::from(o.epoch)).collect();
            let seq: Vec<i64> = batch.origins.iter().map(|o| o.seq as i64).collect();
            tx.execute(
                "INSERT INTO yizhan.feed_origins AS t (origin_node, origin_epoch, seq)
                 SELECT n, e::int, s FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS u(n, e, s)
                 ON CONFLICT (origin_node, origin_epoch) DO UPDATE
                     SET seq = greatest(t.seq, excluded.seq), updated_at = now()",
                &[&node, &epoch, &seq],
            )
            .await?;
        }
        let moved = tx
            .execute(
                "UPDATE yizhan.feed_position SET local_seq = $2, updated_at = now()
                 WHERE node_id = $1 AND local_seq = $3 AND epoch = $4 AND generation = $5",
                &[
                    &identity.node_id,
                    &(batch.through as i64),
                    &(batch.after as i64),
                    &(identity.epoch as i32),
                    &identity.generation,
                ],
            )
            .await?;
        if moved != 1 {
            return Err(SinkError::PositionMoved);
        }
        tx.commit().await?;
        self.partitions.extend(created);
        Ok(written)
    }

    /// Forgets which node feeds this database, keeping its rows, so another node's sink
    /// may take it over (the benchmark's live part after `--from`).
    pub async fn release_feed(&self) -> Result<(), SinkError> {
        self.client
            .execute("DELETE FROM yizhan.feed_position", &[])
            .await?;
        Ok(())
    }

    /// The process id of the server backend serving another connection of `application`.
    pub async fn backend_of(&self, application: &str) -> Result<Option<i32>, SinkError> {
        let row = self
            .client
            .query_opt(
                "SELECT pid FROM pg_stat_activity
                 WHERE application_name = $1 AND pid <> pg_backend_pid() LIMIT 1",
                &[&application],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Bytes PostgreSQL uses for the database, and for each table (partitions summed),
    /// indexes included.
    pub async fn sizes(&self) -> Result<(u64, Vec<(String, u64)>), SinkError> {
        let total: i64 = self
            .client
            .query_one("SELECT pg_database_size(current_database())", &[])
            .await?
            .get(0);
        let rows = self
            .client
            .query(
                "SELECT c.relname,
                        (pg_total_relation_size(c.oid)
                         + coalesce((SELECT sum(pg_total_relation_size(i.inhrelid))
                                     FROM pg_inherits i WHERE i.inhparent = c.oid), 0))::bigint
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = 'yizhan' AND c.relkind IN ('r', 'p')
                   AND NOT c.relispartition
                 ORDER BY 2 DESC",
                &[],
            )
            .await?;
        Ok((
            total.max(0) as u64,
            rows.iter()
                .map(|r| (r.get(0), r.get::<_, i64>(1).max(0) as u64))
                .collect(),
        ))
    }

    /// Every mirrored row PostgreSQL holds, for comparison with the node's
    /// ([`super::Store::mirror_rows`]), and the rows that share a key with another.
    pub async fn mirror_rows(&self) -> Result<(MirrorRows, Vec<String>), SinkError> {
        let mut rows = MirrorRows::default();
        for r in self
            .client
            .query(
                "SELECT id, scope, impl_code, item_name, item_version::bigint, case_type, status, conflict,
                        serial_no, applicant_name, applicant_id_masked, phone_tail, counter, staff, node,
                        created_ms, created_on::text, accepted_on::text, committed_due::text, legal_due::text,
                        yellow_on, red_on, breach_on, clock_stopped_on::text, closed_on::text, calendar,
                        calendar_covered, updated_hlc, holder, holder_node, signed_on::text,
                        rating::bigint, rated_on::text, rectify_due::text, rectified_on::text,
                        part_of
                 FROM yizhan.cases",
                &[],
            )
            .await?
        {
            rows.add_case(&FeedCase {
                id: r.get(0),
                scope: r.get(1),
                impl_code: r.get(2),
                item_name: r.get(3),
                item_version: r.get(4),
                case_type: r.get(5),
                status: r.get(6),
                conflict: r.get(7),
                serial_no: r.get(8),
                applicant_name: r.get(9),
                applicant_id_masked: r.get(10),
                phone_tail: r.get(11),
                counter: r.get(12),
                staff: r.get(13),
                node: r.get(14),
                created_ms: r.get(15),
                created_on: r.get(16),
                accepted_on: r.get(17),
                committed_due: r.get(18),
                legal_due: r.get(19),
                yellow_on: r.get(20),
                red_on: r.get(21),
                breach_on: r.get(22),
                clock_stopped_on: r.get(23),
                closed_on: r.get(24),
                calendar: r.get(25),
                calendar_covered: r.get(26),
                updated_hlc: r.get(27),
                holder: r.get(28),
                holder_node: r.get(29),
                signed_on: r.get(30),
                rating: r.get(31),
                rated_on: r.get(32),
                rectify_due: r.get(33),
                rectified_on: r.get(34),
                part_of: r.get(35),
            });
        }
        for r in self
            .client
            .query(
                "SELECT case_id, event_id, at_hlc, at_ms, node, staff, kind, conflict, voided, body::text
                 FROM yizhan.case_events",
                &[],
            )
            .await?
        {
            rows.add_event(&FeedEvent {
                case_id: r.get(0),
                event_id: r.get(1),
                at_hlc: r.get(2),
                at_ms: r.get(3),
                node: r.get(4),
                staff: r.get(5),
                kind: r.get(6),
                conflict: r.get(7),
                voided: r.get(8),
                body_json: r.get(9),
            });
        }
        for r in self
            .client
            .query(
                "SELECT id, scope, impl_code, basic_code, name, category, kind, level, case_type,
                        legal_days::bigint, committed_days::bigint, status, version::bigint, search_text, body::text
                 FROM yizhan.items",
                &[],
            )
            .await?
        {
            rows.add_item(&FeedItem {
                id: r.get(0),
                scope: r.get(1),
                impl_code: r.get(2),
                basic_code: r.get(3),
                name: r.get(4),
                category: r.get(5),
                kind: r.get(6),
                level: r.get(7),
                case_type: r.get(8),
                legal_days: r.get(9),
                committed_days: r.get(10),
                status: r.get(11),
                version: r.get(12),
                search_text: r.get(13),
                body_json: r.get(14),
            });
        }
        for r in self
            .client
            .query(
                "SELECT scope, node_id, record::text FROM yizhan.node_records",
                &[],
            )
            .await?
        {
            rows.add_record(
                &r.get::<_, String>(0),
                &r.get::<_, String>(1),
                &r.get::<_, String>(2),
            );
        }
        for r in self
            .client
            .query(
                "SELECT number, doc_id, case_id, 'case/' || division, node, kind, issued_ms,
                        supersedes, digest, seal, content
                 FROM yizhan.notices",
                &[],
            )
            .await?
        {
            rows.add_notice(&FeedNotice {
                number: r.get(0),
                doc_id: r.get(1),
                case_id: r.get(2),
                scope: r.get(3),
                node: r.get(4),
                kind: r.get(5),
                issued_ms: r.get(6),
                supersedes: r.get(7),
                digest: r.get(8),
                seal: r.get(9),
                content_json: r.get(10),
            });
        }
        for r in self
            .client
            .query(
                "SELECT id, 'case/' || division, case_id, node, staff, reason, todo,
                        reply_days::bigint, issued_ms, coalesce(reply_due::text, ''), body::text
                 FROM yizhan.supervision_notices",
                &[],
            )
            .await?
        {
            rows.add_supervision(&FeedSupervision {
                id: r.get(0),
                scope: r.get(1),
                case_id: r.get(2),
                node: r.get(3),
                staff: r.get(4),
                reason: r.get(5),
                todo: r.get(6),
                reply_days: r.get(7),
                issued_ms: r.get(8),
                reply_due: r.get(9),
                body_json: r.get(10),
            });
        }
        for r in self
            .client
            .query(
                "SELECT id, notice_id, node, staff, text, replied_ms, body::text
                 FROM yizhan.supervision_replies",
                &[],
            )
            .await?
        {
            rows.add_reply(&FeedReply {
                id: r.get(0),
                notice_id: r.get(1),
                node: r.get(2),
                staff: r.get(3),
                text: r.get(4),
                replied_ms: r.get(5),
                body_json: r.get(6),
            });
        }
        let mut duplicated = Vec::new();
        for (what, sql) in [
            (
                "case",
                "SELECT id FROM yizhan.cases GROUP BY id HAVING count(*) > 1",
            ),
            (
                "event",
                "SELECT case_id || ' ' || event_id FROM yizhan.case_events GROUP BY case_id, event_id HAVING count(*) > 1",
            ),
            (
                "notice",
                "SELECT number FROM yizhan.notices GROUP BY number HAVING count(*) > 1",
            ),
            (
                "supervision notice",
                "SELECT id FROM yizhan.supervision_notices GROUP BY id HAVING count(*) > 1",
            ),
            (
                "reply",
                "SELECT id FROM yizhan.supervision_replies GROUP BY id HAVING count(*) > 1",
            ),
        ] {
            for r in self.client.query(sql, &[]).await? {
                duplicated.push(format!("{what} {}", r.get::<_, String>(0)));
            }
        }
        Ok((rows, duplicated))
    }

    /// Rows in a table or view of schema `yizhan`.
    pub async fn row_count(&self, relation: &str) -> Result<u64, SinkError> {
        let relation = plain_identifier(relation)?;
        let n: i64 = self
            .client
            .query_one(&format!("SELECT count(*) FROM yizhan.{relation}"), &[])
            .await?
            .get(0);
        Ok(n.max(0) as u64)
    }

    /// Cases per station as analysts see them (`v_cases`): station, its name,
    /// sub-district, district and the count.
    pub async fn cases_by_station(&self) -> Result<Vec<StationCases>, SinkError> {
        let rows = self
            .client
            .query(
                "SELECT station, station_name, subdistrict, district, count(*)
                 FROM yizhan.v_cases GROUP BY 1, 2, 3, 4 ORDER BY 1, 2",
                &[],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| StationCases {
                station: r.get(0),
                name: r.get(1),
                subdistrict: r.get(2),
                district: r.get(3),
                cases: r.get::<_, i64>(4).max(0) as u64,
            })
            .collect())
    }

    /// Creates a database on this server (for benchmarks); `name` is letters, digits and
    /// underscores.
    pub async fn create_database(&self, name: &str) -> Result<(), SinkError> {
        let name = plain_identifier(name)?;
        self.client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await?;
        Ok(())
    }

    /// Drops a database made by [`Postgres::create_database`].
    pub async fn drop_database(&self, name: &str) -> Result<(), SinkError> {
        let name = plain_identifier(name)?;
        self.client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
            .await?;
        Ok(())
    }

    /// Runs a read-only query and returns its rows as text, for documented queries
    /// (`docs/sink.md`) that tests check against the node's own figures.
    pub async fn query_text(
        &self,
        sql: &str,
        params: &[&str],
    ) -> Result<Vec<Vec<Option<String>>>, SinkError> {
        let params: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
        let statement = self.client.prepare(sql).await?;
        let n = statement.columns().len();
        let wrapped = format!(
            "SELECT {} FROM ({sql}) AS q",
            (0..n)
                .map(|i| format!("q.\"{}\"::text", statement.columns()[i].name()))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let rows = self.client.query(&wrapped, &params).await?;
        Ok(rows
            .iter()
            .map(|r| (0..n).map(|i| r.get::<_, Option<String>>(i)).collect())
            .collect())
    }
}

fn plain_identifier(name: &str) -> Result<&str, SinkError> {
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(name)
    } else {
        Err(SinkError::Url(format!(
            "{name:?} is not a plain database name"
        )))
    }
}

/// The month partitions a batch writes into: `(partition, table, YYYY-MM)`.
fn partitions_of(batch: &FeedBatch) -> Vec<(String, &'static str, String)> {
    let day_of_ms = |ms: i64| Date::from_unix_ms_cst(ms).to_string();
    let mut months: BTreeSet<(&'static str, String)> = BTreeSet::new();
    months.extend(
        batch
            .cases
            .iter()
            .map(|c| ("cases", month_of(&c.created_on))),
    );
    months.extend(
        batch
            .events
            .iter()
            .map(|e| ("case_events", month_of(&event_day(e)))),
    );
    months.extend(
        batch
            .notices
            .iter()
            .map(|n| ("notices", month_of(&day_of_ms(n.issued_ms)))),
    );
    months.extend(
        batch
            .supervision
            .iter()
            .map(|n| ("supervision_notices", month_of(&day_of_ms(n.issued_ms)))),
    );
    months.extend(
        batch
            .replies
            .iter()
            .map(|r| ("supervision_replies", month_of(&day_of_ms(r.replied_ms)))),
    );
    months
        .into_iter()
        .filter(|(_, month)| month.len() == 7)
        .map(|(table, month)| {
            (
                format!("{table}_y{}m{}", &month[..4], &month[5..7]),
                table,
                month,
            )
        })
        .collect()
}

/// `YYYY-MM` of a `YYYY-MM-DD` day.
fn month_of(day: &str) -> String {
    day.get(..7).unwrap_or("0000-01").to_string()
}

/// The China day of an event, its partition key.
fn event_day(event: &FeedEvent) -> String {
    Date::from_unix_ms_cst(event.at_ms).to_string()
}

/// Where a case was received, and that division's station, sub-district and district.
fn places(scope: &str) -> (String, Option<String>, Option<String>, Option<String>) {
    let division = scope.split_once('/').map_or(scope, |(_, d)| d).to_string();
    let prefix = |n: usize| (division.len() >= n).then(|| division[..n].to_string());
    let district = prefix(6).filter(|d| !d.ends_with("00"));
    (
        division.clone(),
        (division.len() == 12).then(|| division.clone()),
        prefix(9),
        district,
    )
}

async fn upsert_cases(
    tx: &tokio_postgres::Transaction<'_>,
    cases: &[FeedCase],
) -> Result<u64, SinkError> {
    macro_rules! col {
        ($f:ident) => {
            cases.iter().map(|c| c.$f.clone()).collect::<Vec<_>>()
        };
    }
    let places: Vec<_> = cases.iter().map(|c| places(&c.scope)).collect();
    let division: Vec<String> = places.iter().map(|p| p.0.clone()).collect();
    let station: Vec<Option<String>> = places.iter().map(|p| p.1.clone()).collect();
    let subdistrict: Vec<Option<String>> = places.iter().map(|p| p.2.clone()).collect();
    let district: Vec<Option<String>> = places.iter().map(|p| p.3.clone()).collect();
    let (id, scope, impl_code, item_name, item_version, case_type, status, conflict) = (
        col!(id),
        col!(scope),
        col!(impl_code),
        col!(item_name),
        col!(item_version),
        col!(case_type),
        col!(status),
        col!(conflict),
    );
    let (serial_no, applicant_name, applicant_id_masked, phone_tail, counter, staff, node) = (
        col!(serial_no),
        col!(applicant_name),
        col!(applicant_id_masked),
        col!(phone_tail),
        col!(counter),
        col!(staff),
        col!(node),
    );
    let (created_ms, created_on, accepted_on, committed_due, legal_due) = (
        col!(created_ms),
        col!(created_on),
        col!(accepted_on),
        col!(committed_due),
        col!(legal_due),
    );
    let (yellow_on, red_on, breach_on, clock_stopped_on, closed_on, calendar) = (
        col!(yellow_on),
        col!(red_on),
        col!(breach_on),
        col!(clock_stopped_on),
        col!(closed_on),
        col!(calendar),
    );
    let (calendar_covered, updated_hlc, holder, holder_node, signed_on) = (
        col!(calendar_covered),
        col!(updated_hlc),
        col!(holder),
        col!(holder_node),
        col!(signed_on),
    );
    let (rating, rated_on, rectify_due, rectified_on, part_of) = (
        col!(rating),
        col!(rated_on),
        col!(rectify_due),
        col!(rectified_on),
        col!(part_of),
    );
    let columns: [&(dyn ToSql + Sync); 40] = [
        &id,
        &scope,
        &division,
        &station,
        &subdistrict,
        &district,
        &impl_code,
        &item_name,
        &item_version,
        &case_type,
        &status,
        &conflict,
        &serial_no,
        &applicant_name,
        &applicant_id_masked,
        &phone_tail,
        &counter,
        &staff,
        &node,
        &created_ms,
        &created_on,
        &accepted_on,
        &committed_due,
        &legal_due,
        &yellow_on,
        &red_on,
        &breach_on,
        &clock_stopped_on,
        &closed_on,
        &calendar,
        &calendar_covered,
        &updated_hlc,
        &holder,
        &holder_node,
        &signed_on,
        &rating,
        &rated_on,
        &rectify_due,
        &rectified_on,
        &part_of,
    ];
    upsert(
        tx,
        "cases",
        &[
            ("id", "text", ""),
            ("scope", "text", ""),
            ("division", "text", ""),
            ("station", "text", ""),
            ("subdistrict", "text", ""),
            ("district", "text", ""),
            ("impl_code", "text", ""),
            ("item_name", "text", ""),
            ("item_version", "bigint", "int"),
            ("case_type", "text", ""),
            ("status", "text", ""),
            ("conflict", "bool", ""),
            ("serial_no", "text", ""),
            ("applicant_name", "text", ""),
            ("applicant_id_masked", "text", ""),
            ("phone_tail", "text", ""),
            ("counter", "text", ""),
            ("staff", "text", ""),
            ("node", "text", ""),
            ("created_ms", "bigint", ""),
            ("created_on", "text", "date"),
            ("accepted_on", "text", "date"),
            ("committed_due", "text", "date"),
            ("legal_due", "text", "date"),
            ("yellow_on", "text", ""),
            ("red_on", "text", ""),
            ("breach_on", "text", ""),
            ("clock_stopped_on", "text", "date"),
            ("closed_on", "text", "date"),
            ("calendar", "text", ""),
            ("calendar_covered", "bool", ""),
            ("updated_hlc", "text", ""),
            ("holder", "text", ""),
            ("holder_node", "text", ""),
            ("signed_on", "text", "date"),
            ("rating", "bigint", "smallint"),
            ("rated_on", "text", "date"),
            ("rectify_due", "text", "date"),
            ("rectified_on", "text", "date"),
            ("part_of", "text", ""),
        ],
        "id, created_on",
        &columns,
    )
    .await
}

async fn upsert_events(
    tx: &tokio_postgres::Transaction<'_>,
    events: &[FeedEvent],
) -> Result<u64, SinkError> {
    macro_rules! col {
        ($f:ident) => {
            events.iter().map(|e| e.$f.clone()).collect::<Vec<_>>()
        };
    }
    let at_on: Vec<String> = events.iter().map(event_day).collect();
    let (case_id, event_id, at_hlc, at_ms, node, staff, kind, conflict, voided, body) = (
        col!(case_id),
        col!(event_id),
        col!(at_hlc),
        col!(at_ms),
        col!(node),
        col!(staff),
        col!(kind),
        col!(conflict),
        col!(voided),
        col!(body_json),
    );
    upsert(
        tx,
        "case_events",
        &[
            ("case_id", "text", ""),
            ("event_id", "text", ""),
            ("at_hlc", "text", ""),
            ("at_ms", "bigint", ""),
            ("at_on", "text", "date"),
            ("node", "text", ""),
            ("staff", "text", ""),
            ("kind", "text", ""),
            ("conflict", "bool", ""),
            ("voided", "bool", ""),
            ("body", "text", "jsonb"),
        ],
        "case_id, event_id, at_on",
        &[
            &case_id, &event_id, &at_hlc, &at_ms, &at_on, &node, &staff, &kind, &conflict, &voided,
            &body,
        ],
    )
    .await
}

async fn upsert_items(
    tx: &tokio_postgres::Transaction<'_>,
    items: &[FeedItem],
) -> Result<u64, SinkError> {
    macro_rules! col {
        ($f:ident) => {
            items.iter().map(|i| i.$f.clone()).collect::<Vec<_>>()
        };
    }
    upsert(
        tx,
        "items",
        &[
            ("id", "text", ""),
            ("scope", "text", ""),
            ("impl_code", "text", ""),
            ("basic_code", "text", ""),
            ("name", "text", ""),
            ("category", "text", ""),
            ("kind", "text", ""),
            ("level", "text", ""),
            ("case_type", "text", ""),
            ("legal_days", "bigint", "int"),
            ("committed_days", "bigint", "int"),
            ("status", "text", ""),
            ("version", "bigint", "int"),
            ("search_text", "text", ""),
            ("body", "text", "jsonb"),
        ],
        "id",
        &[
            &col!(id),
            &col!(scope),
            &col!(impl_code),
            &col!(basic_code),
            &col!(name),
            &col!(category),
            &col!(kind),
            &col!(level),
            &col!(case_type),
            &col!(legal_days),
            &col!(committed_days),
            &col!(status),
            &col!(version),
            &col!(search_text),
            &col!(body_json),
        ],
    )
    .await
}

async fn upsert_notices(
    tx: &tokio_postgres::Transaction<'_>,
    notices: &[FeedNotice],
) -> Result<u64, SinkError> {
    macro_rules! col {
        ($f:ident) => {
            notices.iter().map(|n| n.$f.clone()).collect::<Vec<_>>()
        };
    }
    let mut places_of: [Vec<Option<String>>; 3] = Default::default();
    let mut division = Vec::new();
    for notice in notices {
        let (d, station, subdistrict, district) = places(&notice.scope);
        division.push(d);
        places_of[0].push(station);
        places_of[1].push(subdistrict);
        places_of[2].push(district);
    }
    let issued_on: Vec<String> = notices
        .iter()
        .map(|n| Date::from_unix_ms_cst(n.issued_ms).to_string())
        .collect();
    upsert(
        tx,
        "notices",
        &[
            ("number", "text", ""),
            ("doc_id", "text", ""),
            ("case_id", "text", ""),
            ("division", "text", ""),
            ("station", "text", ""),
            ("subdistrict", "text", ""),
            ("district", "text", ""),
            ("node", "text", ""),
            ("kind", "text", ""),
            ("issued_ms", "bigint", ""),
            ("issued_on", "text", "date"),
            ("supersedes", "text", ""),
            ("digest", "text", ""),
            ("seal", "text", ""),
            ("content", "text", ""),
        ],
        "number, issued_on",
        &[
            &col!(number),
            &col!(doc_id),
            &col!(case_id),
            &division,
            &places_of[0],
            &places_of[1],
            &places_of[2],
            &col!(node),
            &col!(kind),
            &col!(issued_ms),
            &issued_on,
            &col!(supersedes),
            &col!(digest),
            &col!(seal),
            &col!(content_json),
        ],
    )
    .await
}

async fn upsert_supervision(
    tx: &tokio_postgres::Transaction<'_>,
    notices: &[FeedSupervision],
) -> Result<u64, SinkError> {
    macro_rules! col {
        ($f:ident) => {
            notices.iter().map(|n| n.$f.clone()).collect::<Vec<_>>()
        };
    }
    let mut places_of: [Vec<Option<String>>; 3] = Default::default();
    let mut division = Vec::new();
    for notice in notices {
        let (d, station, subdistrict, district) = places(&notice.scope);
        division.push(d);
        places_of[0].push(station);
        places_of[1].push(subdistrict);
        places_of[2].push(district);
    }
    let issued_on: Vec<String> = notices
        .iter()
        .map(|n| Date::from_unix_ms_cst(n.issued_ms).to_string())
        .collect();
    upsert(
        tx,
        "supervision_notices",
        &[
            ("id", "text", ""),
            ("division", "text", ""),
            ("station", "text", ""),
            ("subdistrict", "text", ""),
            ("district", "text", ""),
            ("case_id", "text", ""),
            ("node", "text", ""),
            ("staff", "text", ""),
            ("reason", "text", ""),
            ("todo", "text", ""),
            ("reply_days", "bigint", "int"),
            ("issued_ms", "bigint", ""),
            ("issued_on", "text", "date"),
            ("reply_due", "text", "date"),
            ("body", "text", "jsonb"),
        ],
        "id, issued_on",
        &[
            &col!(id),
            &division,
            &places_of[0],
            &places_of[1],
            &places_of[2],
            &col!(case_id),
            &col!(node),
            &col!(staff),
            &col!(reason),
            &col!(todo),
            &col!(reply_days),
            &col!(issued_ms),
            &issued_on,
            &col!(reply_due),
            &col!(body_json),
        ],
    )
    .await
}

async fn upsert_replies(
    tx: &tokio_postgres::Transaction<'_>,
    replies: &[FeedReply],
) -> Result<u64, SinkError> {
    macro_rules! col {
        ($f:ident) => {
            replies.iter().map(|r| r.$f.clone()).collect::<Vec<_>>()
        };
    }
    let replied_on: Vec<String> = replies
        .iter()
        .map(|r| Date::from_unix_ms_cst(r.replied_ms).to_string())
        .collect();
    upsert(
        tx,
        "supervision_replies",
        &[
            ("id", "text", ""),
            ("notice_id", "text", ""),
            ("node", "text", ""),
            ("staff", "text", ""),
            ("text", "text", ""),
            ("replied_ms", "bigint", ""),
            ("replied_on", "text", "date"),
            ("body", "text", "jsonb"),
        ],
        "id, replied_on",
        &[
            &col!(id),
            &col!(notice_id),
            &col!(node),
            &col!(staff),
            &col!(text),
            &col!(replied_ms),
            &replied_on,
            &col!(body_json),
        ],
    )
    .await
}

/// Upserts the rows of `columns` (one array each) into `yizhan.TABLE`, for columns
/// `(name, type sent, cast in SQL or "")` keyed by `key`, in one statement.
///
/// Measured against a binary `COPY` into a temporary staging table and one `INSERT …
/// SELECT` from it (docs/benchmarks.md, "Sink"): the same PostgreSQL CPU within noise
/// (the executor, the indexes and the WAL cost the same either way) and more on the
/// node's side, so the arrays stay.
async fn upsert(
    tx: &tokio_postgres::Transaction<'_>,
    table: &str,
    spec: &[(&str, &str, &str)],
    key: &str,
    columns: &[&(dyn ToSql + Sync)],
) -> Result<u64, SinkError> {
    Ok(tx.execute(&upsert_sql(table, spec, key), columns).await?)
}

/// `INSERT INTO yizhan.TABLE (…) SELECT … FROM unnest($1::T1[], …) ON CONFLICT (KEY) DO
/// UPDATE …`. Rows that would not change are left alone, so writing a batch again makes
/// no dead tuples.
fn upsert_sql(table: &str, columns: &[(&str, &str, &str)], key: &str) -> String {
    let names: Vec<&str> = columns.iter().map(|c| c.0).collect();
    let selected: Vec<String> = columns
        .iter()
        .map(|(name, _, cast)| {
            if cast.is_empty() {
                name.to_string()
            } else {
                format!("{name}::{cast}")
            }
        })
        .collect();
    let arrays: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, (_, ty, _))| format!("${}::{ty}[]", i + 1))
        .collect();
    let keys: Vec<&str> = key.split(", ").collect();
    let updates: Vec<String> = names
        .iter()
        .filter(|n| !keys.contains(n))
        .map(|n| format!("{n} = excluded.{n}"))
        .collect();
    format!(
        "INSERT INTO yizhan.{table} AS t ({names}) SELECT {selected} FROM unnest({arrays}) AS u({names})
         ON CONFLICT ({key}) DO UPDATE SET {updates} WHERE (t.*) IS DISTINCT FROM (excluded.*)",
        names = names.join(", "),
        selected = selected.join(", "),
        arrays = arrays.join(", "),
        updates = updates.join(", "),
    )
}

/// The rows the sink mirrors, per table, keyed by primary key, each as comparable text.
/// JSON is compared by value (PostgreSQL's jsonb orders keys its own way).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MirrorRows {
    pub tables: BTreeMap<&'static str, BTreeMap<String, String>>,
}

impl MirrorRows {
    pub fn add_case(&mut self, case: &FeedCase) {
        self.tables
            .entry("cases")
            .or_default()
            .insert(case.id.clone(), format!("{case:?}"));
    }

    pub fn add_event(&mut self, event: &FeedEvent) {
        let event = FeedEvent {
            body_json: canonical_json(&event.body_json),
            ..event.clone()
        };
        self.tables.entry("case_events").or_default().insert(
            format!("{} {}", event.case_id, event.event_id),
            format!("{event:?}"),
        );
    }

    pub fn add_item(&mut self, item: &FeedItem) {
        let item = FeedItem {
            body_json: canonical_json(&item.body_json),
            ..item.clone()
        };
        self.tables
            .entry("items")
            .or_default()
            .insert(item.id.clone(), format!("{item:?}"));
    }

    pub fn add_record(&mut self, scope: &str, node_id: &str, json: &str) {
        self.tables
            .entry("node_records")
            .or_default()
            .insert(format!("{scope} {node_id}"), canonical_json(json));
    }

    pub fn add_notice(&mut self, notice: &FeedNotice) {
        self.tables
            .entry("notices")
            .or_default()
            .insert(notice.number.clone(), format!("{notice:?}"));
    }

    pub fn add_supervision(&mut self, notice: &FeedSupervision) {
        let notice = FeedSupervision {
            body_json: canonical_json(&notice.body_json),
            ..notice.clone()
        };
        self.tables
            .entry("supervision_notices")
            .or_default()
            .insert(notice.id.clone(), format!("{notice:?}"));
    }

    pub fn add_reply(&mut self, reply: &FeedReply) {
        let reply = FeedReply {
            body_json: canonical_json(&reply.body_json),
            ..reply.clone()
        };
        self.tables
            .entry("supervision_replies")
            .or_default()
            .insert(reply.id.clone(), format!("{reply:?}"));
    }

    /// Rows per table.
    pub fn counts(&self) -> Vec<(&'static str, usize)> {
        self.tables
            .iter()
            .map(|(t, rows)| (*t, rows.len()))
            .collect()
    }

    /// What differs from `other` (the node's rows), at most `limit` lines.
    pub fn differences(&self, node: &MirrorRows, limit: usize) -> Vec<String> {
        let mut out = Vec::new();
        let tables: BTreeSet<&&str> = self.tables.keys().chain(node.tables.keys()).collect();
        let empty = BTreeMap::new();
        for table in tables {
            let ours = self.tables.get(*table).unwrap_or(&empty);
            let theirs = node.tables.get(*table).unwrap_or(&empty);
            for (key, row) in theirs {
                match ours.get(key) {
                    None => out.push(format!("{table} {key}: missing in PostgreSQL")),
                    Some(pg) if pg != row => out.push(format!(
                        "{table} {key}: differs\n  node:       {row}\n  PostgreSQL: {pg}"
                    )),
                    Some(_) => {}
                }
            }
            for key in ours.keys().filter(|k| !theirs.contains_key(*k)) {
                out.push(format!("{table} {key}: in PostgreSQL, not on the node"));
            }
        }
        out.truncate(limit);
        out
    }
}

/// JSON text with object keys sorted at every level, so equal values compare equal.
fn canonical_json(text: &str) -> String {
    fn sorted(value: serde_json::Value) -> serde_json::Value {
        match value {
            serde_json::Value::Object(map) => {
                let ordered: BTreeMap<String, serde_json::Value> =
                    map.into_iter().map(|(k, v)| (k, sorted(v))).collect();
                serde_json::Value::Object(ordered.into_iter().collect())
            }
            serde_json::Value::Array(items) => {
                serde_json::Value::Array(items.into_iter().map(sorted).collect())
            }
            other => other,
        }
    }
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(value) => sorted(value).to_string(),
        Err(_) => text.to_string(),
    }
}

#[cfg(test)]
pub(crate) mod tests;
