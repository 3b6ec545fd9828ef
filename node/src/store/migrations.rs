//! Numbered schema migrations, applied in order, each in its own immediate transaction
//! together with the bump of `PRAGMA user_version`; a crash mid-migration leaves the
//! database at the previous version. A database from a newer build is refused.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::OpenStoreError;

/// `(version, name, sql)`; versions are 1, 2, 3, … with no gaps.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "documents", include_str!("migrations/001_documents.sql")),
    (2, "accounts", include_str!("migrations/002_accounts.sql")),
    (3, "sync", include_str!("migrations/003_sync.sql")),
    (4, "run_heads", include_str!("migrations/004_run_heads.sql")),
    (
        5,
        "peer_vectors",
        include_str!("migrations/005_peer_vectors.sql"),
    ),
    (6, "notices", include_str!("migrations/006_notices.sql")),
    (
        7,
        "clock_offset",
        include_str!("migrations/007_clock_offset.sql"),
    ),
    (8, "follow_up", include_str!("migrations/008_follow_up.sql")),
    (
        9,
        "appointments",
        include_str!("migrations/009_appointments.sql"),
    ),
    (10, "engine", include_str!("migrations/010_engine.sql")),
    (11, "station", include_str!("migrations/011_station.sql")),
    (
        12,
        "notices_supervision",
        include_str!("migrations/012_notices_supervision.sql"),
    ),
    (
        13,
        "hall_view",
        include_str!("migrations/013_hall_view.sql"),
    ),
    (
        14,
        "snapshots",
        include_str!("migrations/014_snapshots.sql"),
    ),
    (
        15,
        "assessment",
        include_str!("migrations/015_assessment.sql"),
    ),
    (
        16,
        "changes_doc",
        include_str!("migrations/016_changes_doc.sql"),
    ),
    (
        17,
        "item_drafts",
        include_str!("migrations/017_item_drafts.sql"),
    ),
    // Given to the branch `guide` of issue 15, which needed no table: the number stays
    // empty, so the numbering stays whole.
    (18, "unused", ""),
    (19, "staff", include_str!("migrations/019_staff.sql")),
    (
        20,
        "departments",
        include_str!("migrations/020_departments.sql"),
    ),
    (
        21,
        "case_parts",
        include_str!("migrations/021_case_parts.sql"),
    ),
    (
        22,
        "case_steps",
        include_str!("migrations/022_case_steps.sql"),
    ),
    (
        23,
        "case_fees",
        include_str!("migrations/023_case_fees.sql"),
    ),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database up to [`SCHEMA_VERSION`].
pub fn run(conn: &mut Connection, path: &Path) -> Result<(), OpenStoreError> {
    apply_up_to(conn, path, SCHEMA_VERSION)
}

/// Fails unless the database is exactly at [`SCHEMA_VERSION`] (or new and empty, which
/// is not allowed either: only `serve` creates and migrates).
pub(super) fn check_current(conn: &Connection, path: &Path) -> Result<(), OpenStoreError> {
    let found = user_version(conn)?;
    if found > SCHEMA_VERSION {
        return Err(OpenStoreError::NewerSchema {
            path: path.to_path_buf(),
            found,
            known: SCHEMA_VERSION,
        });
    }
    if found < SCHEMA_VERSION {
        return Err(OpenStoreError::NeedsMigration {
            path: path.to_path_buf(),
            found,
            needed: SCHEMA_VERSION,
        });
    }
    Ok(())
}

pub(super) fn apply_up_to(
    conn: &mut Connection,
    path: &Path,
    target: i64,
) -> Result<(), OpenStoreError> {
    let found = user_version(conn)?;
    if found > SCHEMA_VERSION {
        return Err(OpenStoreError::NewerSchema {
            path: path.to_path_buf(),
            found,
            known: SCHEMA_VERSION,
        });
    }
    for &(version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 <= target) {
        let fail = |source| OpenStoreError::Migration { version, source };
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail)?;
        // Read again inside the transaction: another process may have migrated meanwhile.
        let current: i64 = tx
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(fail)?;
        if current >= version {
            continue;
        }
        tx.execute_batch(sql).map_err(fail)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(fail)?;
        tx.commit().map_err(fail)?;
        tracing::info!(
            schema.version = version,
            schema.name = name,
            "applied database migration"
        );
    }
    Ok(())
}

pub(super) fn user_version(conn: &Connection) -> Result<i64, rusqlite::Error> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(conn: &Connection) -> Vec<(String, String)> {
        let mut stmt = conn
            .prepare(
                "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY type, name",
            )
            .unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn versions_are_numbered_without_gaps() {
        for (i, (version, _, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*version, i as i64 + 1);
        }
    }

    /// From an empty database and from every earlier version, migrating ends at the same
    /// schema, and rows written under an earlier version survive.
    #[test]
    fn every_earlier_version_migrates_to_the_same_schema() {
        let path = Path::new("test.db");
        let mut fresh = Connection::open_in_memory().unwrap();
        run(&mut fresh, path).unwrap();
        assert_eq!(user_version(&fresh).unwrap(), SCHEMA_VERSION);
        let expected = schema(&fresh);
        for start in 0..SCHEMA_VERSION {
            let mut conn = Connection::open_in_memory().unwrap();
            apply_up_to(&mut conn, path, start).unwrap();
            assert_eq!(user_version(&conn).unwrap(), start);
            if start >= 1 {
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('probe', ?1)",
                    [start.to_string()],
                )
                .unwrap();
            }
            run(&mut conn, path).unwrap();
            assert_eq!(schema(&conn), expected, "migrating from version {start}");
            if start >= 1 {
                let kept: String = conn
                    .query_row("SELECT value FROM meta WHERE key = 'probe'", [], |r| {
                        r.get(0)
                    })
                    .unwrap();
                assert_eq!(kept, start.to_string());
            }
            // Running again is a no-op.
            run(&mut conn, path).unwrap();
            assert_eq!(schema(&conn), expected);
        }
    }

    #[test]
    fn a_newer_database_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let err = run(&mut conn, Path::new("future.db")).unwrap_err();
        assert!(matches!(err, OpenStoreError::NewerSchema { .. }));
        assert!(err.to_string().contains("newer yizhan"), "{err}");
    }

    #[test]
    fn a_failed_migration_leaves_the_previous_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        apply_up_to(&mut conn, Path::new("t.db"), 1).unwrap();
        // Make migration 2 fail: its table already exists.
        conn.execute_batch("CREATE TABLE users (x)").unwrap();
        let err = run(&mut conn, Path::new("t.db")).unwrap_err();
        assert!(
            matches!(err, OpenStoreError::Migration { version: 2, .. }),
            "{err}"
        );
        assert_eq!(user_version(&conn).unwrap(), 1);
        let tokens: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'api_tokens'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            tokens, 0,
            "the failed migration's other statements were rolled back"
        );
    }
}
