//! The files of a data dir, and nothing that opens them.
//!
//! Layout of a data dir:
//!
//! ```text
//! yizhan.toml   configuration (documented; written by `yizhan init`)
//! node.key      Ed25519 private key, mode 0600
//! yizhan.db     SQLite store (with -wal and -shm beside it while open)
//! lock          held by the process that serves the node, so no second one writes
//! control.sock  the serving node's control socket (`yizhan status`, `yizhan sync now`)
//! ```
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

    /// The Unix socket the serving node listens on for `yizhan status` and `yizhan sync
    /// now`; only the data dir's owner can reach it.
    pub fn control_socket(&self) -> PathBuf {
        self.path.join("control.sock")
    }

    fn lock_file(&self) -> PathBuf {
        self.path.join("lock")
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

    /// Fails with what to do unless `yizhan init` has run here.
    pub fn ensure_initialized(&self) -> anyhow::Result<()> {
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
        "control.sock",
    ] {
        let _ = fs::remove_file(dir.join(name));
    }
}
