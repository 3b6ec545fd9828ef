//! `yizhan rebuild`: regenerates every materialized table from the documents, and a
//! digest of the store's contents used to prove that nothing changed.

use rusqlite::Connection;
use sha2::{Digest, Sha256};
use yizhan_sync::doc;
use yizhan_sync::ids::{DocId, DocKind};

use super::writer::{store_case_rows, store_item_row};
use super::{Store, StoreError};

pub(super) use self::rebuild_rows as rebuild_in_transaction;

/// What a rebuild did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RebuildReport {
    pub items: u64,
    pub cases: u64,
    pub events: u64,
    /// Rows that differed between the old and the rebuilt tables (in either direction).
    pub rows_differing: u64,
    /// Documents that could not be read, with the reason. Their existing rows are kept,
    /// so nothing disappears from the lists because of a rebuild.
    pub unreadable: Vec<(String, String)>,
}

/// The derived tables, and the column that names a row's document (registry rows are
/// found by the registry's scope, `registry/<division>` for document `r-<division>`).
const TABLES: [(&str, &str); 12] = [
    ("items", "id"),
    ("cases", "id"),
    ("case_parts", "id"),
    ("case_events", "case_id"),
    ("case_fees", "case_id"),
    ("registry_records", "scope"),
    ("notices", "doc_id"),
    ("supervision_notices", "id"),
    ("supervision_replies", "id"),
    ("notifications", "id"),
    ("staff_accounts", "doc_id"),
    ("departments", "id"),
];

impl Store {
    /// Rebuilds the materialized tables from the documents, in one transaction.
    pub async fn rebuild(&self) -> Result<RebuildReport, StoreError> {
        self.write(|ctx| rebuild_rows(&ctx.conn)).await
    }

    /// SHA-256 over every row of every table, in primary-key order: equal digests mean
    /// equal contents. Used to show that refused input changed nothing.
    pub async fn content_digest(&self) -> Result<String, StoreError> {
        self.read(|conn| {
            let mut hasher = Sha256::new();
            let tables: Vec<String> = conn
                .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            for table in tables {
                hasher.update(table.as_bytes());
                let columns: i64 = conn.query_row(
                    &format!("SELECT count(*) FROM pragma_table_info('{table}')"),
                    [],
                    |r| r.get(0),
                )?;
                let order = if columns > 1 { "1, 2" } else { "1" };
                // How many rebuilds changed rows is bookkeeping for the PostgreSQL sink
                // (store::feed), not content: a rebuild that repairs damage leaves the
                // content as it was before the damage.
                let filter = if table == "meta" {
                    format!("WHERE key <> '{}'", super::feed::GENERATION_KEY)
                } else {
                    String::new()
                };
                let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\" {filter} ORDER BY {order}"))?;
                let columns = stmt.column_count();
                let mut rows = stmt.query([])?;
                while let Some(row) = rows.next()? {
                    for i in 0..columns {
                        let value = row.get_ref(i)?;
                        hasher.update(format!("{value:?}").as_bytes());
                    }
                }
            }
            Ok(yizhan_sync::ids::hex(&hasher.finalize()))
        })
        .await
    }
}

/// Rebuilds the materialized tables on `conn`, inside the caller's transaction, streaming
/// one document at a time so memory stays bounded however many there are.
pub(super) fn rebuild_rows(conn: &Connection) -> Result<RebuildReport, StoreError> {
    for (table, _) in TABLES {
        conn.execute_batch(&format!(
            "DROP TABLE IF EXISTS temp.rebuilt_{table};
             CREATE TEMP TABLE rebuilt_{table} AS SELECT * FROM main.{table} WHERE 0;"
        ))?;
    }
    conn.execute_batch(
        "CREATE UNIQUE INDEX temp.rebuilt_cases_id ON rebuilt_cases (id);
         CREATE UNIQUE INDEX temp.rebuilt_case_parts_id ON rebuilt_case_parts (id);
         CREATE UNIQUE INDEX temp.rebuilt_case_events_id ON rebuilt_case_events (case_id, event_id);
         CREATE UNIQUE INDEX temp.rebuilt_case_fees_id ON rebuilt_case_fees (case_id, event_id);
         CREATE UNIQUE INDEX temp.rebuilt_items_id ON rebuilt_items (id);
         CREATE UNIQUE INDEX temp.rebuilt_registry_records_id ON rebuilt_registry_records (scope, node_id);
         CREATE UNIQUE INDEX temp.rebuilt_notices_number ON rebuilt_notices (number);
         CREATE UNIQUE INDEX temp.rebuilt_supervision_notices_id ON rebuilt_supervision_notices (id);
         CREATE UNIQUE INDEX temp.rebuilt_supervision_replies_id ON rebuilt_supervision_replies (id);
         CREATE UNIQUE INDEX temp.rebuilt_notifications_id ON rebuilt_notifications (id);
         CREATE UNIQUE INDEX temp.rebuilt_staff_accounts_id ON rebuilt_staff_accounts (doc_id);

         CREATE UNIQUE INDEX temp.rebuilt_departments_id ON rebuilt_departments (id);",
    )?;
    let mut report = RebuildReport::default();
    let calendars = super::calendars::Calendars::load(conn)?;
    let mut stmt = conn.prepare("SELECT id, kind, bytes, upto FROM documents ORDER BY id")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let (id, kind, bytes, upto): (String, String, Vec<u8>, i64) =
            (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
        match rebuild_one(conn, &calendars, &id, &kind, (&bytes, upto), &mut report) {
            Ok(()) => {}
            Err(reason) => {
                // Keep what the rows said before rather than dropping the document from view.
                let registry_scope = id
                    .strip_prefix("r-")
                    .map(|division| format!("registry/{division}"));
                for (table, key) in TABLES {
                    let name = if key == "scope" {
                        registry_scope.clone().unwrap_or_default()
                    } else {
                        id.clone()
                    };
                    conn.execute(&format!("INSERT OR IGNORE INTO rebuilt_{table} SELECT * FROM main.{table} WHERE {key} = ?1"), [&name])?;
                }
                report.unreadable.push((id, reason));
            }
        }
    }
    drop(rows);
    drop(stmt);
    // A notice sealed before notices were documents and never published (its case is not
    // held here, see `Store::publish_local_notices`) has only its row: a rebuild keeps it.
    conn.execute_batch(
        "INSERT OR IGNORE INTO rebuilt_notices SELECT * FROM main.notices
         WHERE doc_id NOT IN (SELECT id FROM documents)",
    )?;
    for (table, _) in TABLES {
        let differing: i64 = conn.query_row(
            &format!(
                "SELECT (SELECT count(*) FROM (SELECT * FROM main.{table} EXCEPT SELECT * FROM rebuilt_{table}))
                      + (SELECT count(*) FROM (SELECT * FROM rebuilt_{table} EXCEPT SELECT * FROM main.{table}))"
            ),
            [],
            |r| r.get(0),
        )?;
        report.rows_differing += differing as u64;
        conn.execute_batch(&format!(
            "DELETE FROM main.{table};
             INSERT INTO main.{table} SELECT * FROM rebuilt_{table};
             DROP TABLE rebuilt_{table};"
        ))?;
    }
    if report.rows_differing > 0 {
        // Rows changed without a change in the log: a PostgreSQL sink must read the whole
        // feed again (store::feed).
        super::feed::bump_generation(conn)?;
    }
    Ok(report)
}

/// Derives one document's rows into the rebuilt tables; `Err` is why it is unreadable.
fn rebuild_one(
    conn: &Connection,
    calendars: &super::calendars::Calendars,
    id: &str,
    kind: &str,
    (bytes, upto): (&[u8], i64),
    report: &mut RebuildReport,
) -> Result<(), String> {
    let doc_id = DocId::parse(id).ok_or("invalid id")?;
    let (document, _) = super::snapshot::load_from(conn, id, bytes, upto).map_err(|e| match e {
        StoreError::Corrupt { message, .. } => message,
        other => other.to_string(),
    })?;
    let sql = |e: StoreError| e.to_string();
    match DocKind::parse(kind) {
        Some(DocKind::Item) => {
            let item_doc = doc::read_item(&document).map_err(|e| e.to_string())?;
            store_item_row(conn, "rebuilt_", &doc::item_row(&doc_id, &item_doc)).map_err(sql)?;
            report.items += 1;
        }
        Some(DocKind::Case) => {
            let case_doc = doc::read_case(&document).map_err(|e| e.to_string())?;
            let calendar = calendars.for_division(&case_doc.scope.division());
            let (case_row, events) = doc::case_rows(&doc_id, &case_doc, &calendar);
            store_case_rows(conn, "rebuilt_", &case_row, &events, &calendar).map_err(sql)?;
            report.cases += 1;
            report.events += events.len() as u64;
        }
        Some(DocKind::Registry) => {
            let registry = doc::read_registry(&document).map_err(|e| e.to_string())?;
            super::sync::store_registry_rows(conn, "rebuilt_", &registry).map_err(sql)?;
        }
        Some(DocKind::Notice) => {
            let record = doc::read_record(&document).map_err(|e| e.to_string())?;
            let row = super::notices::notice_row(&doc_id, &record)?;
            super::notices::store_notice_row(conn, "rebuilt_", &row).map_err(sql)?;
        }
        Some(DocKind::Supervision | DocKind::Reply) => {
            let record = doc::read_record(&document).map_err(|e| e.to_string())?;
            super::supervision::store_supervision_rows(conn, "rebuilt_", &doc_id, &record)
                .map_err(sql)?;
        }
        Some(DocKind::Notification) => {
            let record = doc::read_record(&document).map_err(|e| e.to_string())?;
            super::notification::notification_record_row(conn, "rebuilt_", &doc_id, &record)
                .map_err(|e| e.to_string())?;
        }
        Some(DocKind::Staff) => {
            let record = doc::read_record(&document).map_err(|e| e.to_string())?;
            super::staff::store_staff_row(
                conn,
                "rebuilt_",
                &doc_id,
                &record.scope,
                record.field("account"),
            )
            .map_err(|e| e.to_string())?;
        }
        Some(DocKind::Department) => {
            let record = doc::read_record(&document).map_err(|e| e.to_string())?;
            super::departments::department_record_row(conn, "rebuilt_", &doc_id, &record)
                .map_err(|e| e.to_string())?;
        }
        // Calendar years have no rows of their own; they must read.
        Some(DocKind::Calendar) => {
            doc::read_record(&document).map_err(|e| e.to_string())?;
        }
        // Attachments are read from their documents, with no rows; they must read.
        Some(DocKind::Attachment) => {
            doc::read_attachment(&document).map_err(|e| e.to_string())?;
        }
        None => return Err(format!("unknown kind {kind:?}")),
    }
    Ok(())
}
