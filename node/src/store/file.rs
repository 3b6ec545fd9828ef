//! Work on a database file with no [`Store`](super::Store) open: the online copy a backup
//! takes while the node keeps serving, the schema version read before migrating, and the
//! new epoch a restored database starts. They live here because they are SQL; the
//! archives, checksums and disk checks around them are `backup`'s.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// Working on a database file failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    #[error("cannot open {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// The writer kept the database locked for minutes during a copy.
    #[error("the database stayed locked for minutes; try the backup again")]
    Locked,
    /// The copy fails SQLite's own check: the source may be damaged.
    #[error(
        "the copied database fails SQLite's check ({0}); the node's database may be damaged: run `yizhan status` and see the deploy guide"
    )]
    Damaged(String),
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
}

/// What a copy holds, for the backup's manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Copied {
    pub schema_version: i64,
    pub epoch: u32,
}

/// Copies the database at `source` into a new file `copy` with SQLite's online backup
/// API: a consistent snapshot while the node writes (writers are not stopped). Calls
/// `progress(pages, remaining)` after each step, and checks the copy with `quick_check`.
pub fn copy_database(
    source: &Path,
    copy: &Path,
    mut progress: impl FnMut(i32, i32),
) -> Result<Copied, FileError> {
    let from = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| FileError::Open {
        path: source.to_path_buf(),
        source: e,
    })?;
    from.busy_timeout(Duration::from_secs(10))?;
    let mut to = Connection::open(copy)?;
    {
        use rusqlite::backup::{Backup, StepResult};
        let backup = Backup::new(&from, &mut to)?;
        // Bounded: a step copies 512 pages; waits while the writer holds a lock are
        // short, and a database that stays locked for minutes is reported.
        let mut waits = 0;
        loop {
            match backup.step(512)? {
                StepResult::Done => break,
                StepResult::More => {}
                StepResult::Busy | StepResult::Locked => {
                    waits += 1;
                    if waits > 60_000 {
                        return Err(FileError::Locked);
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                _ => {}
            }
            let p = backup.progress();
            progress(p.pagecount, p.remaining);
        }
    }
    let schema_version: i64 = to.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let epoch: String = to.query_row("SELECT value FROM meta WHERE key = 'epoch'", [], |r| {
        r.get(0)
    })?;
    let check: String = to.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    if check != "ok" {
        return Err(FileError::Damaged(check));
    }
    Ok(Copied {
        schema_version,
        epoch: epoch.parse::<u32>().unwrap_or(1),
    })
}

/// The schema version of the database at `path` (0 for a new, empty file), read without
/// changing anything.
pub fn schema_version(path: &Path) -> Result<i64, FileError> {
    let conn =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|source| {
            FileError::Open {
                path: path.to_path_buf(),
                source,
            }
        })?;
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// Starts a new epoch in the restored database at `path`, past both the epoch it holds
/// and `backed_up` (the manifest's), so the node never reuses a change number, an
/// Automerge actor or a serial number it issued after the backup was taken. Returns it.
pub fn start_new_epoch(path: &Path, backed_up: u32) -> Result<u32, FileError> {
    let conn = Connection::open(path)?;
    let epoch: String = conn.query_row("SELECT value FROM meta WHERE key = 'epoch'", [], |r| {
        r.get(0)
    })?;
    let next = epoch.parse::<u32>().unwrap_or(backed_up).max(backed_up) + 1;
    conn.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'epoch'",
        [next.to_string()],
    )?;
    Ok(next)
}
