//! Work on a database file with no [`Store`](super::Store) open: the online copy a backup
//! takes while the node keeps serving, the schema version read before migrating, the
//! check `serve` runs before it opens a database, and the new epoch a restored database
//! starts. They live here because they are SQL; the archives, checksums and disk checks
//! around them are `backup`'s.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use yizhan_sync::domain::hlc::Hlc;

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
    /// A database file fails the check before it is opened ([`check_file`]).
    #[error("{} is damaged: {why}", path.display())]
    DamagedFile { path: PathBuf, why: String },
    /// A database file from a newer yizhan ([`check_file`]).
    #[error(
        "{} was written by a newer yizhan (schema {found}, this build knows up to {known}); install the newer version",
        path.display()
    )]
    Newer {
        path: PathBuf,
        found: i64,
        known: i64,
    },
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

/// What [`check_file`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileCheck {
    pub schema_version: i64,
    /// Whether SQLite's quick check ran to its end within the time allowed (on a large
    /// file it may not; what it read was sound).
    pub finished: bool,
}

/// The bytes every SQLite database file starts with.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Checks the database file at `path` before a node opens it: the SQLite header, the
/// schema version (not newer than this build's), and `PRAGMA quick_check` for at most
/// `budget` (it reads every page, minutes on a very large file; a check cut short by the
/// budget is reported as unfinished, not as damage). A missing or empty file is a new
/// database and passes.
pub fn check_file(path: &Path, budget: Duration) -> Result<FileCheck, FileError> {
    check(path, Some(budget))
}

/// [`check_file`] without SQLite's page check: for a file the store closed cleanly and
/// nothing changed since ([`take_clean_close`]), where reading every page would only
/// delay the start (seconds on a large hall) to find what the last close already knew.
pub fn check_header(path: &Path) -> Result<FileCheck, FileError> {
    check(path, None)
}

fn check(path: &Path, budget: Option<Duration>) -> Result<FileCheck, FileError> {
    let damaged = |why: String| FileError::DamagedFile {
        path: path.to_path_buf(),
        why,
    };
    let len = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(damaged(format!("it cannot be read ({e})"))),
    };
    if len == 0 {
        return Ok(FileCheck {
            schema_version: 0,
            finished: true,
        });
    }
    let mut header = [0u8; 100];
    {
        use std::io::Read;
        let mut file =
            std::fs::File::open(path).map_err(|e| damaged(format!("it cannot be read ({e})")))?;
        file.read_exact(&mut header).map_err(|_| {
            damaged(format!(
                "it is {len} bytes, too short for a SQLite database"
            ))
        })?;
    }
    if &header[..16] != SQLITE_MAGIC {
        return Err(damaged("it does not start with the SQLite header".into()));
    }
    // The page size: a power of two from 512 to 32768, or 1 for 65536.
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536,
        n if n >= 512 && n.is_power_of_two() => u64::from(n),
        n => {
            return Err(damaged(format!(
                "its header names an impossible page size ({n})"
            )));
        }
    };
    if len % page_size != 0 {
        return Err(damaged(format!(
            "its length ({len} bytes) is not a whole number of {page_size}-byte pages (cut short?)"
        )));
    }
    let conn = Connection::open(path).map_err(|source| FileError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let schema_version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| damaged(format!("SQLite cannot read it ({e})")))?;
    if schema_version > super::SCHEMA_VERSION {
        return Err(FileError::Newer {
            path: path.to_path_buf(),
            found: schema_version,
            known: super::SCHEMA_VERSION,
        });
    }
    let Some(budget) = budget else {
        return Ok(FileCheck {
            schema_version,
            finished: true,
        });
    };
    // The budget: a timer interrupts the check when it runs out.
    let interrupt = conn.get_interrupt_handle();
    let (done, finished_in_time) = std::sync::mpsc::channel::<()>();
    let timer = std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
            finished_in_time.recv_timeout(budget)
        {
            interrupt.interrupt();
        }
    });
    let problems: Result<Vec<String>, rusqlite::Error> =
        conn.prepare("PRAGMA quick_check(20)").and_then(|mut stmt| {
            stmt.query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()
        });
    drop(done);
    let _ = timer.join();
    match problems {
        Ok(rows) if rows == ["ok"] => Ok(FileCheck {
            schema_version,
            finished: true,
        }),
        Ok(rows) => Err(damaged(format!(
            "SQLite's check found: {}",
            rows.join("; ")
        ))),
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted) => {
            Ok(FileCheck {
                schema_version,
                finished: false,
            })
        }
        Err(e) => Err(damaged(format!("SQLite's check failed ({e})"))),
    }
}

/// The database at `path`, opened so that reading it changes nothing.
fn open_read_only(path: &Path) -> Result<Connection, FileError> {
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(|source| {
        FileError::Open {
            path: path.to_path_buf(),
            source,
        }
    })
}

/// The schema version of the database at `path` (0 for a new, empty file), read without
/// changing anything.
pub fn schema_version(path: &Path) -> Result<i64, FileError> {
    let conn = open_read_only(path)?;
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
}

/// About how many cases a database holds (the largest row number of `cases`), read
/// without changing anything and without reading the table (a count would read it all).
pub fn cases_held(path: &Path) -> Result<u64, FileError> {
    let conn = open_read_only(path)?;
    let cases: Option<i64> = conn.query_row("SELECT max(rowid) FROM cases", [], |r| r.get(0))?;
    Ok(cases.unwrap_or(0).max(0) as u64)
}

/// The node a database belongs to (its id in hex) and the epoch it writes in, read
/// without changing anything.
pub fn identity_of(path: &Path) -> Result<(String, u32), FileError> {
    let conn = open_read_only(path)?;
    let meta = |key: &str| -> Result<String, rusqlite::Error> {
        conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
    };
    let node_id = meta("node_id")?;
    let epoch = meta("epoch")?.parse::<u32>().unwrap_or(1);
    Ok((node_id, epoch))
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
    // A rollback journal, synced in full: the file alone holds the new epoch when the
    // connection closes, with no write-ahead log beside it to move along.
    conn.query_row("PRAGMA journal_mode = DELETE", [], |_| Ok(()))?;
    conn.execute_batch("PRAGMA synchronous = FULL")?;
    conn.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'epoch'",
        [next.to_string()],
    )?;
    conn.close().map_err(|(_, e)| e)?;
    Ok(next)
}

/// The marker a clean close leaves beside the database: the file's length and
/// modification time when the last connection closed.
fn clean_close_marker(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".closed");
    PathBuf::from(name)
}

/// What identifies the database file's content cheaply: its length and modification time
/// (nanoseconds), and that no write-ahead log is left beside it.
fn file_stamp(path: &Path) -> Option<String> {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    if std::fs::metadata(PathBuf::from(wal)).is_ok_and(|m| m.len() > 0) {
        return None;
    }
    let meta = std::fs::metadata(path).ok()?;
    let modified = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    Some(format!("{} {}", meta.len(), modified.as_nanos()))
}

/// Records that the store closed the database at `path` cleanly (every connection closed,
/// the log checkpointed), with the writer's last clock time when it has one. Best effort:
/// without the marker the next start checks every page and reads the clock from the
/// cases.
pub(super) fn mark_clean_close(path: &Path, clock: Option<Hlc>) {
    if let Some(stamp) = file_stamp(path) {
        let record = match clock {
            Some(clock) => format!("{stamp} {}", clock.to_hex()),
            None => stamp,
        };
        let _ = std::fs::write(clean_close_marker(path), record);
    }
}

/// What a clean close left for the next start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CleanClose {
    /// The writer's last clock time (none in a marker of an older build).
    pub clock: Option<Hlc>,
}

/// Whether the database at `path` was closed cleanly and not touched since (same length
/// and modification time, no log beside it), and what the close recorded. Leaves the
/// marker in place: the start-up check reads it before the store opens and takes it.
pub fn clean_close(path: &Path) -> Option<CleanClose> {
    let recorded = std::fs::read_to_string(clean_close_marker(path)).ok()?;
    let mut fields = recorded.split(' ');
    let (length, modified) = (fields.next()?, fields.next()?);
    if Some(format!("{length} {modified}")) != file_stamp(path) {
        return None;
    }
    let clock = match fields.next() {
        Some(hex) => Some(Hlc::parse_hex(hex)?),
        None => None,
    };
    fields.next().is_none().then_some(CleanClose { clock })
}

/// [`clean_close`], consuming the marker, so a node that then stops abruptly has its
/// pages checked at the next start; any open of the store takes it. Damage while the node
/// was stopped that leaves length and time unchanged (a disk that silently loses bits) is
/// not seen here; SQLite reports it when it reads the page, and every backup checks its
/// copy.
pub fn take_clean_close(path: &Path) -> Option<CleanClose> {
    let found = clean_close(path);
    let _ = std::fs::remove_file(clean_close_marker(path));
    found
}
