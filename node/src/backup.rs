//! Backups and restores (DESIGN §4–§5, §9).
//!
//! `yizhan backup DIR` copies the database with SQLite's online backup API while the node
//! keeps serving (a consistent snapshot; writers are not stopped), and packs it with the
//! config, the node key and a manifest into one `.tar.gz`, with a `.sha256` beside it.
//! `yizhan restore ARCHIVE --data-dir DIR` checks both checksums, unpacks into an empty
//! directory and starts a **new epoch**, so the restored node never reuses a change
//! number, an Automerge actor or a serial number it issued after the backup was taken;
//! its next session pulls back from the parent what it wrote after the backup.

use std::fs::{self, File};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

use crate::data_dir::DataDir;
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
    let compact: String = stamp
        .chars()
        .filter(|c| c.is_ascii_digit())
        .take(14)
        .collect();
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

/// `yizhan restore ARCHIVE --data-dir DIR`: checks, unpacks into an empty `DIR` and
/// starts a new epoch. Returns the manifest and the new epoch.
pub fn restore(archive: &Path, data_dir: &DataDir) -> anyhow::Result<(Manifest, u32)> {
    crate::data_dir::ensure_empty(&data_dir.path)?;
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
    fs::create_dir_all(&data_dir.path)?;
    ensure_space(&data_dir.path, size.saturating_mul(8), "the restore")?;

    let file = File::open(archive)?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(BufReader::new(file)));
    let mut manifest: Option<Manifest> = None;
    let mut seen = Vec::new();
    for entry in tar.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.to_string_lossy().to_string();
        let target = match name.as_str() {
            MANIFEST => {
                let mut text = String::new();
                entry.read_to_string(&mut text)?;
                manifest = Some(serde_json::from_str(&text).context("the manifest does not read")?);
                continue;
            }
            DATABASE => data_dir.database(),
            CONFIG => data_dir.config(),
            KEY => data_dir.key(),
            // Never write anything else, wherever its name points.
            other => bail!("unexpected file {other:?} in the archive; not restoring"),
        };
        let mut out = File::create(&target)?;
        std::io::copy(&mut entry, &mut out)?;
        out.sync_all()?;
        set_private(&target)?;
        seen.push(name);
    }
    let manifest = manifest.ok_or_else(|| anyhow::anyhow!("the archive has no manifest"))?;
    for needed in [DATABASE, CONFIG, KEY] {
        if !seen.iter().any(|s| s == needed) {
            bail!("the archive lacks {needed}; not a complete backup");
        }
    }
    if sha256_file(&data_dir.database())? != manifest.database_sha256 {
        bail!("the database in the archive does not match its manifest; use another backup");
    }
    let key = NodeKey::load(&data_dir.key())?;
    if key.node_id().to_hex() != manifest.node_id {
        bail!("the key in the archive belongs to another node than its manifest says");
    }
    // The new epoch: the restored node writes under a new origin and Automerge actor.
    let next = crate::store::start_new_epoch(&data_dir.database(), manifest.epoch)?;
    Ok((manifest, next))
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
