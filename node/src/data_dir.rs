//! The files of a data dir, and nothing that opens them.
//!
//! Layout of a data dir:
//!
//! ```text
//! yizhan.toml   configuration (documented; written by `yizhan init`)
//! node.key      Ed25519 private key, mode 0600
//! yizhan.db     SQLite store (with -wal and -shm beside it while open)
//! lock          held by the process that serves the node, so no second one writes
//! backups/      backups taken before a schema migration
//! ```
//!
//! A restore (`backup::restore`) adds, while it runs:
//!
//! ```text
//! restore-staging/     the backup unpacked, checked and given its new epoch
//! restore-in-progress  the switch has begun: files are moving into place
//! replaced-TIME/       the files of the node a restore replaced (`--replace`), kept
//! ```
//!
//! The marker makes the switch atomic for everything that opens the node: while it
//! exists no command opens the data dir (it says how to finish), and the config moves
//! last, so a data dir without the marker holds either the old node or the whole
//! restored one.
//!
//! Opening the node a data dir holds (its store, with migrations) is `node`'s: this
//! module sits below the store, so backups and commands can name a data dir's files.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::config::{CONFIG_FILE, Config};
use crate::identity::NodeKey;

/// Default data dir when neither `--data-dir` nor `YIZHAN_DATA_DIR` is given; the systemd
/// unit's `StateDirectory=yizhan` creates it.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/yizhan";

/// Paths inside a data dir.
#[derive(Clone, Debug)]
pub struct DataDir {
    pub path: PathBuf,
}

impl DataDir {
    pub fn new(path: impl Into<PathBuf>) -> DataDir {
        DataDir { path: path.into() }
    }

    pub fn config(&self) -> PathBuf {
        self.path.join(CONFIG_FILE)
    }

    pub fn key(&self) -> PathBuf {
        self.path.join("node.key")
    }

    pub fn database(&self) -> PathBuf {
        self.path.join("yizhan.db")
    }

    fn lock_file(&self) -> PathBuf {
        self.path.join("lock")
    }

    /// Where a restore unpacks and checks a backup before switching it in.
    pub fn restore_staging(&self) -> PathBuf {
        self.path.join(RESTORE_STAGING)
    }

    /// Present while a restore moves its files into place.
    pub fn restore_marker(&self) -> PathBuf {
        self.path.join(RESTORE_MARKER)
    }

    /// Whether a restore into this data dir stopped before it finished, and from which
    /// archive.
    pub fn interrupted_restore(&self) -> Option<Interrupted> {
        if let Ok(text) = fs::read_to_string(self.restore_marker()) {
            let archive = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["archive"].as_str().map(str::to_string))
                .unwrap_or_else(|| "ARCHIVE".into());
            return Some(Interrupted::Switching { archive });
        }
        if self.restore_staging().is_dir() {
            let archive = fs::read_to_string(self.restore_staging().join(STAGED_FROM))
                .unwrap_or_else(|_| "ARCHIVE".into());
            return Some(Interrupted::Staging { archive });
        }
        None
    }

    /// Whether `yizhan init` has run here.
    pub fn is_initialized(&self) -> bool {
        self.config().exists()
    }

    /// Takes the data dir's lock for as long as the returned guard lives; fails with a
    /// clear message if another process holds it.
    pub fn lock(&self) -> anyhow::Result<DirLock> {
        let path = self.lock_file();
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(DirLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => bail!(
                "another yizhan process is using {}; stop it first (systemctl stop yizhan) or choose another --data-dir",
                self.path.display()
            ),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
    }

    /// Fails with what to do unless `yizhan init` (or a whole restore) has run here: a
    /// restore that stopped half-way leaves nothing any command opens.
    pub fn ensure_initialized(&self) -> anyhow::Result<()> {
        match self.interrupted_restore() {
            Some(Interrupted::Switching { archive }) => bail!(
                "a restore of {archive} into {dir} stopped while it moved files into place, so the node does not start; finish it with `yizhan restore {archive} --data-dir {dir}` (it uses what it already unpacked and checked)",
                dir = self.path.display()
            ),
            Some(Interrupted::Staging { archive }) if !self.is_initialized() => bail!(
                "a restore of {archive} into {dir} stopped before it finished, so there is no node here yet; run `yizhan restore {archive} --data-dir {dir}` again",
                dir = self.path.display()
            ),
            _ => {}
        }
        if !self.is_initialized() {
            bail!(
                "{} is not a yizhan data dir (no {CONFIG_FILE}); create one with `yizhan init --data-dir {}` or pass the right --data-dir",
                self.path.display(),
                self.path.display()
            );
        }
        Ok(())
    }
}

/// Holds a data dir's lock.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

/// The staging directory of a restore (see the module doc).
pub const RESTORE_STAGING: &str = "restore-staging";
/// The marker of a restore's switch (see the module doc).
pub const RESTORE_MARKER: &str = "restore-in-progress";
/// The file in the staging directory that names the archive being restored.
pub const STAGED_FROM: &str = "archive";

/// A restore that stopped before it finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interrupted {
    /// Still unpacking or checking: the data dir is as it was before.
    Staging { archive: String },
    /// Moving files into place: nothing opens the data dir until it finishes.
    Switching { archive: String },
}

/// Fails unless `path` is missing or an empty directory, so an existing node is never
/// overwritten.
pub fn ensure_empty(path: &Path) -> anyhow::Result<()> {
    if path.exists() {
        let mut entries =
            fs::read_dir(path).with_context(|| format!("cannot read {}", path.display()))?;
        // A `lock` file left by a command run on the empty dir does not count.
        if entries.any(|e| e.is_ok_and(|e| e.file_name() != "lock")) {
            bail!(
                "data dir {} is not empty (does it hold a node already?); choose an empty or new directory with --data-dir",
                path.display()
            );
        }
    }
    Ok(())
}

/// Creates a data dir with a key, a config and an empty store. Refuses a dir that is not
/// empty.
pub fn create_data_dir(dir: &DataDir, config: &Config) -> anyhow::Result<NodeKey> {
    ensure_empty(&dir.path)?;
    if !dir.path.exists() {
        fs::create_dir_all(&dir.path)
            .with_context(|| format!("cannot create {}", dir.path.display()))?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The data dir holds personal data and the node key: owner only (DESIGN §10).
        fs::set_permissions(&dir.path, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict {}", dir.path.display()))?;
    }
    let key = NodeKey::generate();
    key.save(&dir.key())?;
    let config_path = dir.config();
    fs::write(&config_path, config.render())
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    Ok(key)
}

/// Removes what [`create_data_dir`] made, after a failed init.
pub fn remove_partial(dir: &Path) {
    for name in [
        CONFIG_FILE,
        "node.key",
        "yizhan.db",
        "yizhan.db-wal",
        "yizhan.db-shm",
        "lock",
    ] {
        let _ = fs::remove_file(dir.join(name));
    }
}
