//! A case document is kept as a snapshot plus the changes after it.
//!
//! Every change a node holds is already in the change log (`changes`), so saving the whole
//! Automerge document again after each one wrote every case several times over (a save
//! re-encodes the whole document: most of the writer's time and of the bytes written per
//! case). A case's snapshot (`documents.bytes`) is written only every [`SNAPSHOT_EVERY`]
//! changes; `documents.upto` is the newest `changes.local_seq` it holds, and loading
//! applies the applied changes after it. A case this node creates starts with an empty
//! snapshot (`upto` 0) and is loaded from its changes alone until it takes its
//! sixteenth; most cases close in about six, so at the station that made them most never
//! have one (a snapshot repeats what the changes hold: it was about a fifth of a
//! station's database, docs/benchmarks.md). A case received from another node gets its
//! snapshot when it arrives, for the hall's catch-up (`sync::Settled::prepare`).
//!
//! Only cases: items, registries, calendars, notices and supervision records change
//! rarely (or never) and are read whole by code that does not know about snapshots, so
//! each of their changes still saves the whole document.

use automerge::Automerge;
use rusqlite::{Connection, OptionalExtension, params};
use yizhan_sync::doc;
use yizhan_sync::ids::{DocId, DocKind, Scope};

use super::StoreError;

/// Changes a case takes after its snapshot (for a case this node created, the empty one it
/// starts with) before the next one is written: a case is created, accepted and decided in
/// about six, so most are loaded from a handful of changes, and none from more than this.
pub(super) const SNAPSHOT_EVERY: u32 = 16;

/// Whether documents of `kind` are kept as a snapshot plus later changes.
pub(super) fn deferred(kind: DocKind) -> bool {
    kind == DocKind::Case
}

/// Whether a document of `kind` that took `since` changes since its snapshot (a new
/// case: all of its changes) gets a new snapshot now.
pub(super) fn due(kind: DocKind, since: u32) -> bool {
    !deferred(kind) || since >= SNAPSHOT_EVERY
}

/// A snapshot's bytes and heads, made without the database: on the thread that applied
/// a received batch, while the writer writes (`store::ingest`).
pub(super) struct Saved {
    bytes: Vec<u8>,
    heads: Vec<u8>,
}

impl Saved {
    pub(super) fn of(document: &Automerge) -> Saved {
        // Uncompressed: DEFLATE was a fifth of a hall's time applying a batch (profiled
        // with `yizhan bench sync`), and case documents come out no larger (their columns
        // are mostly under Automerge's 256-byte compression threshold). Both forms load
        // alike.
        Saved {
            bytes: document.save_nocompress(),
            heads: doc::heads_bytes(document),
        }
    }
}

/// Loads the document `id` from its snapshot and the changes after it; `None` if this
/// node holds none. Also returns how many changes were applied after the snapshot.
pub(super) fn load(conn: &Connection, id: &str) -> Result<Option<(Automerge, u32)>, StoreError> {
    match Stored::read(conn, id)? {
        Some(stored) => Ok(Some(stored.load(id)?)),
        None => Ok(None),
    }
}

/// The changes of a document after its snapshot, through the document's index (which
/// holds `local_seq` as its row id, so in order): without `INDEXED BY`, SQLite may walk
/// the log from the snapshot's position to avoid a sort, and reading an old case would
/// read every change written since (47 ms a change at a 100,000-case hall).
const LATER_CHANGES: &str = "SELECT bytes FROM changes INDEXED BY changes_doc
     WHERE doc_id = ?1 AND local_seq > ?2 AND refused IS NULL ORDER BY local_seq";

/// Loads a document whose snapshot the caller already read (with its `upto`).
pub(super) fn load_from(
    conn: &Connection,
    id: &str,
    snapshot: &[u8],
    upto: i64,
) -> Result<(Automerge, u32), StoreError> {
    Stored::later(conn, id, snapshot.to_vec(), upto)?.load(id)
}

/// A document's bytes as stored (its snapshot and the changes after it), read on the
/// writer and loaded into a document on the thread that applies a batch (`store::ingest`).
pub(super) struct Stored {
    snapshot: Vec<u8>,
    later: Vec<u8>,
    count: u32,
}

impl Stored {
    /// The stored bytes of document `id`; `None` if this node holds none.
    pub(super) fn read(conn: &Connection, id: &str) -> Result<Option<Stored>, StoreError> {
        let row: Option<(Vec<u8>, i64)> = conn
            .prepare_cached("SELECT bytes, upto FROM documents WHERE id = ?1")?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        match row {
            Some((bytes, upto)) => Ok(Some(Stored::later(conn, id, bytes, upto)?)),
            None => Ok(None),
        }
    }

    fn later(
        conn: &Connection,
        id: &str,
        snapshot: Vec<u8>,
        upto: i64,
    ) -> Result<Stored, StoreError> {
        let mut later = conn.prepare_cached(LATER_CHANGES)?;
        let mut rows = later.query(params![id, upto])?;
        let mut chunks = Vec::new();
        let mut count = 0u32;
        while let Some(row) = rows.next()? {
            chunks.extend_from_slice(row.get_ref(0)?.as_blob().map_err(rusqlite::Error::from)?);
            count += 1;
        }
        Ok(Stored {
            snapshot,
            later: chunks,
            count,
        })
    }

    /// How many changes are stored after the snapshot.
    pub(super) fn count(&self) -> u32 {
        self.count
    }

    /// The document, and how many changes were applied after its snapshot.
    pub(super) fn load(self, id: &str) -> Result<(Automerge, u32), StoreError> {
        let corrupt = |message: String| StoreError::Corrupt {
            id: id.to_string(),
            message,
        };
        let mut document = Automerge::load(&self.snapshot).map_err(|e| corrupt(e.to_string()))?;
        if self.count > 0 {
            document
                .load_incremental(&self.later)
                .map_err(|e| corrupt(format!("a change after its snapshot: {e}")))?;
        }
        Ok((document, self.count))
    }
}

/// Writes the snapshot of `document`, holding every change of it up to the log's
/// newest `local_seq`. `create`: the document is new here (a plain insert, so an id that
/// exists already is an error rather than an overwrite).
pub(super) fn write(
    conn: &Connection,
    id: &DocId,
    kind: DocKind,
    scope: &Scope,
    document: &Automerge,
    create: bool,
    now_ms: i64,
) -> Result<(), StoreError> {
    write_saved(conn, id, kind, scope, &Saved::of(document), create, now_ms)
}

/// Records the case `id`, new here, with an empty snapshot (`upto` 0: every change of it
/// is after the snapshot). A plain insert: an id that exists already is an error.
pub(super) fn write_empty(
    conn: &Connection,
    id: &DocId,
    kind: DocKind,
    scope: &Scope,
    now_ms: i64,
) -> Result<(), StoreError> {
    debug_assert!(deferred(kind));
    conn.prepare_cached(
        "INSERT INTO documents (id, kind, scope, bytes, heads, updated_ms, upto)
         VALUES (?1, ?2, ?3, X'', X'', ?4, 0)",
    )?
    .execute(params![id.as_str(), kind.as_str(), scope.as_str(), now_ms])?;
    Ok(())
}

/// [`write`] with the snapshot made already.
pub(super) fn write_saved(
    conn: &Connection,
    id: &DocId,
    kind: DocKind,
    scope: &Scope,
    saved: &Saved,
    create: bool,
    now_ms: i64,
) -> Result<(), StoreError> {
    let upto: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(local_seq), 0) FROM changes")?
        .query_row([], |r| r.get(0))?;
    let sql = if create {
        "INSERT INTO documents (id, kind, scope, bytes, heads, updated_ms, upto) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
    } else {
        "INSERT INTO documents (id, kind, scope, bytes, heads, updated_ms, upto) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (id) DO UPDATE SET bytes = excluded.bytes, heads = excluded.heads,
            updated_ms = excluded.updated_ms, upto = excluded.upto"
    };
    conn.prepare_cached(sql)?.execute(params![
        id.as_str(),
        kind.as_str(),
        scope.as_str(),
        saved.bytes,
        saved.heads,
        now_ms,
        upto
    ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reading an old case reads its own changes, never the log written since.
    #[test]
    fn the_changes_after_a_snapshot_are_read_through_the_documents_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut conn = Connection::open(&path).unwrap();
        super::super::migrations::run(&mut conn, &path).unwrap();
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {LATER_CHANGES}"))
            .unwrap()
            .query_map(params!["c-x", 0], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter()
                .any(|p| p.starts_with("SEARCH changes USING INDEX changes_doc")),
            "{plan:?}"
        );
        assert!(!plan.iter().any(|p| p.contains("TEMP B-TREE")), "{plan:?}");
    }
}
