//! Backups and restores (DESIGN §4–§5, §9).
//!
//! `yizhan backup DIR` copies the database with SQLite's online backup API while the node
//! keeps serving (a consistent snapshot; writers are not stopped), and packs it with the
//! config, the node key and a manifest into one `.tar.gz`, with a `.sha256` beside it.
//! `yizhan restore ARCHIVE --data-dir DIR` checks both checksums, unpacks beside the
//! live files, checks again and starts a **new epoch** before anything moves, so the
//! restored node never reuses a change number, an Automerge actor or a serial number it
//! issued after the backup was taken; its next session pulls back from the parent what it
//! wrote after the backup. The switch into place is atomic for every command that opens
//! the node ([`restore`]).

use std::fs::{self, File};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

use crate::data_dir::{DataDir, Interrupted};
use crate::identity::NodeKey;
use crate::store::{Copied, FileError};

/// What an archive says about itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub node_id: String,
    pub epoch: u32,
    pub schema_version: i64,
    pub created_at: String,
    pub yizhan_version: String,
    /// SHA-256 of `yizhan.db` in the archive.
    pub database_sha256: String,
    pub database_bytes: u64,
}

const MANIFEST: &str = "MANIFEST.json";
const DATABASE: &str = "yizhan.db";
const CONFIG: &str = "yizhan.toml";
const KEY: &str = "node.key";
/// The departments' seal keys (`seals`), kept like the node key; a hall without
/// departments has none.
const SEALS: &str = crate::seals::FILE;

/// Bytes free for an unprivileged user on the filesystem holding `path`.
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    let stat = rustix::fs::statvfs(path).map_err(std::io::Error::from)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// Refuses work that needs `needed` bytes where fewer are free (with a margin), so a
/// backup or a migration never fills the disk under a running node.
pub fn ensure_space(path: &Path, needed: u64, what: &str) -> anyhow::Result<()> {
    let free = free_bytes(path)
        .with_context(|| format!("cannot read the free space of {}", path.display()))?;
    let wanted = needed.saturating_add(needed / 10).saturating_add(64 << 20);
    if free < wanted {
        bail!(
            "not enough disk space for {what} in {}: {:.0} MB free, about {:.0} MB needed; free some space or choose another directory",
            path.display(),
            free as f64 / 1e6,
            wanted as f64 / 1e6
        );
    }
    Ok(())
}

/// `yizhan backup DIR`: writes `yizhan-NODE-TIME.tar.gz` (and `.sha256`) into `dir`;
/// returns the archive's path. `now` names the archive and stamps the manifest.
pub fn backup(
    data_dir: &DataDir,
    dir: &Path,
    now_ms: u64,
    progress: bool,
) -> anyhow::Result<PathBuf> {
    // Never a backup of a data dir a restore is switching: its files belong to two nodes.
    data_dir.ensure_initialized()?;
    let key = NodeKey::load(&data_dir.key())?;
    let db_path = data_dir.database();
    if !db_path.exists() {
        bail!(
            "{} holds no database; is --data-dir the node's data directory?",
            &data_dir.path.display()
        );
    }
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let db_bytes = fs::metadata(&db_path)?.len()
        + fs::metadata(db_path.with_extension("db-wal")).map_or(0, |m| m.len());
    // The copy and the compressed archive both sit in `dir` for a moment.
    ensure_space(dir, db_bytes.saturating_mul(2), "the backup")?;

    let stamp = crate::clock::rfc3339_cst(now_ms as i64);
    let compact = compact_time(now_ms);
    let node_hex = key.node_id().to_hex();
    let name = format!("yizhan-{}-{compact}.tar.gz", &node_hex[..8]);
    let archive_path = dir.join(&name);
    if archive_path.exists() {
        bail!(
            "{} exists already; wait a second and run the backup again",
            archive_path.display()
        );
    }
    let staging = dir.join(format!(".{name}.db"));
    let _ = fs::remove_file(&staging);

    // The online backup: a consistent snapshot while the node writes.
    let mut last_shown = -1;
    let copied = crate::store::copy_database(&db_path, &staging, |pages, remaining| {
        if progress && pages > 0 {
            let done = 100 * (pages - remaining) / pages;
            if done / 5 != last_shown / 5 {
                last_shown = done;
                let bar = "#".repeat((done / 5) as usize);
                eprint!("\rbacking up the database [{bar:<20}] {done:>3}%");
            }
        }
    });
    if progress && matches!(copied, Ok(_) | Err(FileError::Damaged(_))) {
        eprintln!("\rbacking up the database [####################] 100%");
    }
    let Copied {
        schema_version,
        epoch,
    } = match copied {
        Ok(copied) => copied,
        Err(e) => {
            if matches!(e, FileError::Damaged(_)) {
                let _ = fs::remove_file(&staging);
            }
            return Err(e.into());
        }
    };

    let database_sha256 = sha256_file(&staging)?;
    let manifest = Manifest {
        format: 1,
        node_id: node_hex,
        epoch,
        schema_version,
        created_at: stamp,
        yizhan_version: env!("CARGO_PKG_VERSION").into(),
        database_sha256,
        database_bytes: fs::metadata(&staging)?.len(),
    };
    let result = (|| -> anyhow::Result<()> {
        let file = File::create(&archive_path)
            .with_context(|| format!("cannot write {}", archive_path.display()))?;
        let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        append_bytes(
            &mut tar,
            MANIFEST,
            &serde_json::to_vec_pretty(&manifest)?,
            0o600,
        )?;
        append_bytes(&mut tar, CONFIG, &fs::read(data_dir.config())?, 0o600)?;
        append_bytes(&mut tar, KEY, &fs::read(data_dir.key())?, 0o600)?;
        let seals = data_dir.path.join(SEALS);
        if seals.exists() {
            append_bytes(&mut tar, SEALS, &fs::read(&seals)?, 0o600)?;
        }
        let mut db = File::open(&staging)?;
        let mut header = tar::Header::new_gnu();
        header.set_size(manifest.database_bytes);
        header.set_mode(0o600);
        header.set_cksum();
        tar.append_data(&mut header, DATABASE, &mut db)?;
        let gz = tar.into_inner()?;
        let file = gz.finish()?;
        file.sync_all()?;
        Ok(())
    })();
    let _ = fs::remove_file(&staging);
    if let Err(e) = result {
        let _ = fs::remove_file(&archive_path);
        return Err(e);
    }
    let sum = sha256_file(&archive_path)?;
    let mut side = File::create(sidecar(&archive_path))?;
    writeln!(side, "{sum}  {name}")?;
    side.sync_all()?;
    Ok(archive_path)
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// What the archive says about itself.
    pub manifest: Manifest,
    /// The epoch the restored node writes in.
    pub epoch: u32,
    /// Where the files of the node it replaced were put, if it replaced one.
    pub replaced: Option<PathBuf>,
    /// Whether this run finished a restore that had stopped while switching.
    pub finished_interrupted: bool,
}

/// What the switch of a restore records before it moves anything
/// (`restore-in-progress`), so a later run can finish it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Switch {
    archive: String,
    manifest: Manifest,
    epoch: u32,
    /// The directory (in the data dir) the replaced node's files go to.
    replaced: String,
}

/// `yizhan restore ARCHIVE --data-dir DIR [--replace]`: restores a backup atomically.
///
/// The archive is unpacked into `DIR/restore-staging` and checked there (its checksum,
/// the manifest, the database's SHA-256, the node key, the config, SQLite's quick check
/// and schema version); the database gets its new epoch and every file is synced. Only
/// then does the switch begin: the marker `restore-in-progress` is written, the replaced
/// node's files (with `replace`) move into `DIR/replaced-TIME`, and the staged files move
/// in by rename, the config last; the marker goes last of all.
///
/// Killed at any moment, the data dir holds the old node untouched (or nothing, for a
/// new one), a marker that stops every command and says how to finish, or the whole
/// restored node with its new epoch; running the same restore again finishes or redoes
/// it. A refused archive leaves the data dir as it was.
pub fn restore(
    archive: &Path,
    data_dir: &DataDir,
    replace: bool,
    now_ms: u64,
) -> anyhow::Result<Restored> {
    if !data_dir.path.exists() {
        fs::create_dir_all(&data_dir.path)
            .with_context(|| format!("cannot create {}", data_dir.path.display()))?;
        set_private_dir(&data_dir.path)?;
    }
    // No node runs here while the files change, and no second restore.
    let _lock = data_dir.lock()?;
    let staging = data_dir.restore_staging();
    // As the messages will name it: a relative path would not work from another directory.
    let shown = match archive.is_relative() {
        true => fs::canonicalize(archive).unwrap_or_else(|_| archive.to_path_buf()),
        false => archive.to_path_buf(),
    }
    .display()
    .to_string();
    if let Some(Interrupted::Switching { archive: earlier }) = data_dir.interrupted_restore() {
        if !same_archive(&earlier, archive) {
            bail!(
                "a restore of {earlier} into {dir} stopped while it moved files into place; finish it first with `yizhan restore {earlier} --data-dir {dir}`, then restore another backup with --replace",
                dir = data_dir.path.display()
            );
        }
        let switch: Switch = serde_json::from_slice(&fs::read(data_dir.restore_marker())?)
            .context("the restore's marker cannot be read; remove restore-in-progress and restore-staging from the data dir and restore again with --replace")?;
        let replaced = finish_switch(data_dir, &switch)?;
        return Ok(Restored {
            manifest: switch.manifest,
            epoch: switch.epoch,
            replaced,
            finished_interrupted: true,
        });
    }
    // A marker half-written by a restore killed as its switch began: that switch had not
    // begun, since the marker counts only once renamed into place.
    let _ = fs::remove_file(temporary_of(&data_dir.restore_marker()));
    let _ = fs::remove_dir_all(temporary_of(&staging));
    if staging.exists() {
        // A restore stopped before its switch: the data dir is as it was; start over.
        fs::remove_dir_all(&staging)
            .with_context(|| format!("cannot remove {}", staging.display()))?;
    }
    let holds_node = [data_dir.config(), data_dir.key(), data_dir.database()]
        .iter()
        .any(|p| p.exists());
    if holds_node && !replace {
        bail!(
            "{dir} holds a node already; to replace it with this backup, stop it (systemctl stop yizhan) and run `yizhan restore {shown} --data-dir {dir} --replace` (its files are kept in {dir}/replaced-TIME), or restore into an empty directory",
            dir = data_dir.path.display()
        );
    }
    if !holds_node {
        ensure_only_restore_leftovers(&data_dir.path)?;
    }

    let staged = stage(archive, &shown, data_dir);
    let (manifest, epoch) = match staged {
        Ok(staged) => staged,
        Err(e) => {
            // Refused: nothing of it stays, and the data dir is as it was.
            let _ = fs::remove_dir_all(temporary_of(&staging));
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    // A directory of its own for the replaced files, even for two restores in a second.
    let stamp = compact_time(now_ms);
    let replaced = (1..)
        .map(|n| match n {
            1 => format!("replaced-{stamp}"),
            n => format!("replaced-{stamp}-{n}"),
        })
        .find(|name| !data_dir.path.join(name).exists())
        .expect("some name is free");
    let switch = Switch {
        archive: shown,
        manifest: manifest.clone(),
        epoch,
        replaced,
    };
    write_synced(
        &data_dir.restore_marker(),
        &serde_json::to_vec_pretty(&switch)?,
    )?;
    sync_dir(&data_dir.path)?;
    let replaced = finish_switch(data_dir, &switch)?;
    Ok(Restored {
        manifest,
        epoch,
        replaced,
        finished_interrupted: false,
    })
}

/// Unpacks `archive` (`shown` as messages name it) into the staging directory and checks
/// it; gives the staged database its new epoch and syncs everything. Returns the manifest
/// and the new epoch.
fn stage(archive: &Path, shown: &str, data_dir: &DataDir) -> anyhow::Result<(Manifest, u32)> {
    let side = sidecar(archive);
    let expected = fs::read_to_string(&side).with_context(|| {
        format!(
            "cannot read {} (the checksum written beside every backup); copy it along with the archive",
            side.display()
        )
    })?;
    let expected = expected
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    let actual = sha256_file(archive)?;
    if expected != actual {
        bail!(
            "{} does not match its checksum: the archive is damaged or incomplete; use another backup",
            archive.display()
        );
    }
    let size = fs::metadata(archive)?.len();
    ensure_space(&data_dir.path, size.saturating_mul(8), "the restore")?;

    // The staging directory appears with the archive's name in it, so an interrupted
    // restore can always say which archive to run again.
    let staging = data_dir.restore_staging();
    let forming = temporary_of(&staging);
    fs::create_dir(&forming).with_context(|| format!("cannot create {}", forming.display()))?;
    set_private_dir(&forming)?;
    write_synced(
        &forming.join(crate::data_dir::STAGED_FROM),
        shown.as_bytes(),
    )?;
    fs::rename(&forming, &staging)?;

    let file = File::open(archive)?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(BufReader::new(file)));
    let mut seen = Vec::new();
    for entry in tar.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.to_string_lossy().to_string();
        // Never write anything else, wherever its name points.
        if ![MANIFEST, DATABASE, CONFIG, KEY, SEALS].contains(&name.as_str()) {
            bail!("unexpected file {name:?} in the archive; not restoring");
        }
        if seen.contains(&name) {
            bail!("the archive holds {name} twice; not restoring");
        }
        let target = staging.join(&name);
        let mut out = File::create(&target)?;
        std::io::copy(&mut entry, &mut out)?;
        out.sync_all()?;
        set_private(&target)?;
        seen.push(name);
    }
    for needed in [MANIFEST, DATABASE, CONFIG, KEY] {
        if !seen.iter().any(|s| s == needed) {
            bail!("the archive lacks {needed}; not a complete backup");
        }
    }
    let manifest = read_manifest(&staging.join(MANIFEST))?;
    let database = staging.join(DATABASE);
    if sha256_file(&database)? != manifest.database_sha256 {
        bail!("the database in the archive does not match its manifest; use another backup");
    }
    let key = NodeKey::load(&staging.join(KEY))?;
    let node_id = key.node_id().to_hex();
    if node_id != manifest.node_id {
        bail!("the key in the archive belongs to another node than its manifest says");
    }
    crate::config::Config::load(&staging.join(CONFIG))
        .context("the config in the archive is refused by this yizhan")?;
    // A whole check: a restore may take its time, and a damaged copy must not start.
    let checked = crate::store::check_file(&database, std::time::Duration::from_secs(3600))?;
    if !checked.finished {
        bail!("the check of the database in the archive did not finish; use another backup");
    }
    let (owner, backed_up_epoch) = crate::store::identity_of(&database)?;
    if owner != node_id {
        bail!(
            "the database in the archive belongs to node {owner}, not to its key's node {node_id}; use another backup"
        );
    }
    // Past every epoch the node wrote in, here and in the backup, so no change number,
    // Automerge actor or serial number is ever reused.
    let live = data_dir.database();
    let live_epoch = if live.exists() {
        match crate::store::identity_of(&live) {
            Ok((owner, epoch)) if owner == node_id => epoch,
            Ok(_) => 0,
            Err(e) => {
                eprintln!(
                    "warning: the epoch of the database being replaced cannot be read ({e}); the restored node starts past the backup's epoch"
                );
                0
            }
        }
    } else {
        0
    };
    let epoch = crate::store::start_new_epoch(
        &database,
        manifest.epoch.max(backed_up_epoch).max(live_epoch),
    )?;
    File::open(&database)?.sync_all()?;
    sync_dir(&staging)?;
    Ok((manifest, epoch))
}

/// Moves the staged files into place, the replaced node's aside first, each by a rename;
/// the config last, then the marker goes. Safe to run again after any interruption: a
/// file still in the staging directory has not moved yet. Returns where the replaced
/// files went, if any.
fn finish_switch(data_dir: &DataDir, switch: &Switch) -> anyhow::Result<Option<PathBuf>> {
    let staging = data_dir.restore_staging();
    let aside = data_dir.path.join(&switch.replaced);
    let mut replaced = None;
    let mut move_aside = |name: &str| -> anyhow::Result<()> {
        let live = data_dir.path.join(name);
        if live.exists() {
            fs::create_dir_all(&aside)?;
            fs::rename(&live, aside.join(name))
                .with_context(|| format!("cannot move {} aside", live.display()))?;
            replaced = Some(aside.clone());
        }
        Ok(())
    };
    for name in [KEY, SEALS, DATABASE, CONFIG] {
        let staged = staging.join(name);
        if !staged.exists() {
            continue;
        }
        if name == DATABASE {
            // The old database's write-ahead log belongs to it, not to the new one.
            for part in [DATABASE, "yizhan.db-wal", "yizhan.db-shm"] {
                move_aside(part)?;
            }
        } else {
            move_aside(name)?;
        }
        if aside.exists() {
            sync_dir(&aside)?;
        }
        fs::rename(&staged, data_dir.path.join(name))
            .with_context(|| format!("cannot move the restored {name} into place"))?;
        sync_dir(&data_dir.path)?;
    }
    // What is left in the staging directory (the manifest, the archive's name) goes at
    // once by a rename, then the marker: a finished restore leaves neither behind.
    let leftover = temporary_of(&staging);
    if staging.exists() {
        let _ = fs::remove_dir_all(&leftover);
        fs::rename(&staging, &leftover)?;
    }
    let _ = fs::remove_dir_all(&leftover);
    fs::remove_file(data_dir.restore_marker())?;
    sync_dir(&data_dir.path)?;
    Ok(replaced.or_else(|| aside.exists().then_some(aside)))
}

/// Refuses a data dir that holds anything but what a restore or a command leaves.
fn ensure_only_restore_leftovers(path: &Path) -> anyhow::Result<()> {
    for entry in fs::read_dir(path).with_context(|| format!("cannot read {}", path.display()))? {
        let name = entry?.file_name().to_string_lossy().to_string();
        let ours = name == "lock"
            || name == "control.sock"
            || name == "backups"
            || name.starts_with("replaced-")
            || name.starts_with(crate::data_dir::RESTORE_STAGING);
        if !ours {
            bail!(
                "data dir {} is not empty ({name} is there) but holds no node; choose an empty or new directory with --data-dir",
                path.display()
            );
        }
    }
    Ok(())
}

fn read_manifest(path: &Path) -> anyhow::Result<Manifest> {
    let text = fs::read_to_string(path).context("the archive has no readable manifest")?;
    serde_json::from_str(&text).context("the manifest does not read")
}

/// Whether `earlier` (as a marker recorded it) names the same archive as `archive`.
fn same_archive(earlier: &str, archive: &Path) -> bool {
    let canonical = |p: &Path| fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    Path::new(earlier) == archive || canonical(Path::new(earlier)) == canonical(archive)
}

/// `YYYYMMDDhhmmss` in China time, for file names.
fn compact_time(now_ms: u64) -> String {
    crate::clock::rfc3339_cst(now_ms as i64)
        .chars()
        .filter(|c| c.is_ascii_digit())
        .take(14)
        .collect()
}

/// Writes `bytes` to `path` through a temporary file and a rename, synced: `path` either
/// does not exist or holds all of it.
fn write_synced(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let temporary = temporary_of(path);
    let mut file = File::create(&temporary)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    file.write_all(bytes)?;
    file.sync_all()?;
    fs::rename(&temporary, path)?;
    Ok(())
}

/// Where [`write_synced`] writes before its rename.
fn temporary_of(path: &Path) -> PathBuf {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    PathBuf::from(temporary)
}

/// Makes the entries of directory `path` (creations, renames, removals) durable.
fn sync_dir(path: &Path) -> anyhow::Result<()> {
    File::open(path)
        .and_then(|dir| dir.sync_all())
        .with_context(|| format!("cannot sync {}", path.display()))
}

fn sidecar(archive: &Path) -> PathBuf {
    let mut name = archive.as_os_str().to_owned();
    name.push(".sha256");
    PathBuf::from(name)
}

fn append_bytes<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    bytes: &[u8],
    mode: u32,
) -> anyhow::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(mode);
    header.set_cksum();
    tar.append_data(&mut header, name, bytes)?;
    Ok(())
}

fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let mut file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(yizhan_sync::ids::hex(&hasher.finalize()))
}

#[cfg(unix)]
fn set_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn set_private(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

/// The data dir holds personal data and the node key: owner only (DESIGN §10).
#[cfg(unix)]
fn set_private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o700))
}

#[cfg(not(unix))]
fn set_private_dir(_path: &Path) -> std::io::Result<()> {
    Ok(())
}

/// The newest backup archive in `dir` and when it was written.
pub fn newest(dir: &Path) -> Option<(PathBuf, std::time::SystemTime)> {
    archives(dir)
        .into_iter()
        .filter_map(|p| {
            let modified = fs::metadata(&p).and_then(|m| m.modified()).ok()?;
            Some((p, modified))
        })
        .max_by_key(|(_, modified)| *modified)
}

/// The backup archives in `dir`, oldest first (their names carry the time).
fn archives(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("yizhan-") && n.ends_with(".tar.gz"))
        })
        .collect();
    found.sort();
    found
}

/// Deletes all but the newest `keep` archives (and their checksums) in `dir`.
pub fn prune(dir: &Path, keep: usize) -> std::io::Result<usize> {
    let all = archives(dir);
    let excess = all.len().saturating_sub(keep.max(1));
    for old in &all[..excess] {
        fs::remove_file(old)?;
        let _ = fs::remove_file(sidecar(old));
    }
    Ok(excess)
}

/// Takes a backup every `every_hours` into `dir` while the node runs, keeping `keep`.
/// Runs until the task is dropped; a failed backup is logged and tried again an hour later.
pub async fn schedule(data_dir: DataDir, dir: PathBuf, every_hours: u64, keep: usize) {
    let every = std::time::Duration::from_secs(every_hours.max(1) * 3600);
    loop {
        let age = newest(&dir).and_then(|(_, at)| at.elapsed().ok());
        let wait = match age {
            Some(age) if age < every => every - age,
            _ => {
                let (data_dir, dir) = (data_dir.clone(), dir.clone());
                let now = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
                let done = tokio::task::spawn_blocking(move || {
                    let archive = backup(&data_dir, &dir, now, false)?;
                    let removed = prune(&dir, keep)?;
                    anyhow::Ok((archive, removed))
                })
                .await;
                match done {
                    Ok(Ok((archive, removed))) => {
                        tracing::info!(backup = %archive.display(), backup.removed = removed, "scheduled backup written");
                        every
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(error = %format!("{e:#}"), "scheduled backup failed; trying again in an hour");
                        std::time::Duration::from_secs(3600)
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "scheduled backup task failed");
                        std::time::Duration::from_secs(3600)
                    }
                }
            }
        };
        tokio::time::sleep(wait.min(std::time::Duration::from_secs(3600))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruning_keeps_the_newest_archives() {
        let dir = tempfile::tempdir().unwrap();
        for stamp in ["20261101", "20261102", "20261103", "20261104"] {
            let name = format!("yizhan-abcd1234-{stamp}020000.tar.gz");
            fs::write(dir.path().join(&name), b"x").unwrap();
            fs::write(dir.path().join(format!("{name}.sha256")), b"x").unwrap();
        }
        fs::write(dir.path().join("notes.txt"), b"not a backup").unwrap();
        assert_eq!(prune(dir.path(), 2).unwrap(), 2);
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "notes.txt",
                "yizhan-abcd1234-20261103020000.tar.gz",
                "yizhan-abcd1234-20261103020000.tar.gz.sha256",
                "yizhan-abcd1234-20261104020000.tar.gz",
                "yizhan-abcd1234-20261104020000.tar.gz.sha256",
            ]
        );
        assert!(newest(dir.path()).is_some());
    }

    #[test]
    fn too_little_space_is_refused_with_the_figures() {
        let dir = tempfile::tempdir().unwrap();
        let err = ensure_space(dir.path(), u64::MAX / 4, "the backup").unwrap_err();
        assert!(
            err.to_string()
                .contains("not enough disk space for the backup"),
            "{err}"
        );
        ensure_space(dir.path(), 1, "the backup").unwrap();
    }
}
