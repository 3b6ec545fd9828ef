//! A node's data dir and its running server.
//!
//! Layout of a data dir:
//!
//! ```text
//! yizhan.toml   configuration (documented; written by `yizhan init`)
//! node.key      Ed25519 private key, mode 0600
//! yizhan.db     SQLite store (with -wal and -shm beside it while open)
//! lock          held by the process that serves the node, so no second one writes
//! ```

use std::fs::{self, File};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use tokio::net::TcpListener;

use crate::clock::{Clock, SystemClock};
use crate::config::{CONFIG_FILE, Config};
use crate::http::{self, AppState, NodeInfo};
use crate::identity::NodeKey;
use crate::store::{Store, StoreOptions};

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

    /// Takes the lock and opens the node to run it: migrations are applied.
    pub fn open_exclusive(&self) -> anyhow::Result<(DirLock, OpenNode)> {
        self.ensure_initialized()?;
        let lock = self.lock()?;
        self.backup_before_migration()?;
        Ok((lock, self.open(true)?))
    }

    /// Before migrations change an existing database, takes a backup into
    /// `backups/` in the data dir and checks the disk can hold the migration, so an
    /// upgrade can always be undone by restoring (the operations issue, §4).
    fn backup_before_migration(&self) -> anyhow::Result<()> {
        let db = self.database();
        if !db.exists() {
            return Ok(());
        }
        let version: i64 = {
            let conn = rusqlite::Connection::open_with_flags(
                &db,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .with_context(|| format!("cannot open {}", db.display()))?;
            conn.query_row("PRAGMA user_version", [], |r| r.get(0))?
        };
        if version == 0 || version >= crate::store::SCHEMA_VERSION {
            // New, current, or newer (which the store refuses with a clear message).
            return Ok(());
        }
        let size = fs::metadata(&db)?.len();
        // A migration may rewrite a table: room for the database once more.
        crate::backup::ensure_space(&self.path, size, "the schema migration")?;
        let now = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
        eprintln!(
            "the database is at schema version {version}; this build uses {}: backing it up before migrating",
            crate::store::SCHEMA_VERSION
        );
        let archive = crate::backup::backup(self, &self.path.join("backups"), now, true)
            .context("the backup before the migration failed; nothing was migrated")?;
        tracing::info!(backup = %archive.display(), schema.from = version, schema.to = crate::store::SCHEMA_VERSION, "backed up before migrating");
        eprintln!("backup written: {}", archive.display());
        Ok(())
    }

    /// Opens the node for a command that may run beside a serving node (accounts,
    /// tokens): the schema must already be current.
    pub fn open_shared(&self) -> anyhow::Result<OpenNode> {
        self.open(false)
    }

    fn ensure_initialized(&self) -> anyhow::Result<()> {
        if !self.is_initialized() {
            bail!(
                "{} is not a yizhan data dir (no {CONFIG_FILE}); create one with `yizhan init --data-dir {}` or pass the right --data-dir",
                self.path.display(),
                self.path.display()
            );
        }
        Ok(())
    }

    /// Loads the config and key and opens the store.
    fn open(&self, migrate: bool) -> anyhow::Result<OpenNode> {
        self.ensure_initialized()?;
        let config = Config::load(&self.config())?;
        let key = NodeKey::load(&self.key())?;
        let store = Store::open(
            &self.database(),
            StoreOptions {
                identity: key.identity(
                    config.node.role.into(),
                    config.division(),
                    &config.node.name,
                ),
                doc_cache: config.store.doc_cache,
                readers: config.store.readers,
                synchronous: config.store.synchronous,
                migrate,
            },
        )?;
        Ok(OpenNode {
            config,
            key,
            store,
            key_path: self.key(),
        })
    }
}

/// Holds a data dir's lock.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

/// A node's config, key and store, ready to use.
#[derive(Debug)]
pub struct OpenNode {
    pub config: Config,
    pub key: NodeKey,
    pub store: Store,
    key_path: PathBuf,
}

impl OpenNode {
    pub fn app_state(&self, clock: Arc<dyn Clock>) -> AppState {
        AppState {
            store: self.store.clone(),
            clock,
            sync_signal: Arc::new(tokio::sync::Notify::new()),
            link: Arc::new(std::sync::Mutex::new(crate::link::LinkState::default())),
            duplicates_received: Default::default(),
            applied_received: Default::default(),
            sessions: Default::default(),
            throttle: Default::default(),
            tls: self.config.http.tls,
            key: Arc::new(self.key.duplicate()),
            submitted_forms: Default::default(),
            metrics: Default::default(),
            backup_dir: (!self.config.backup.dir.is_empty())
                .then(|| PathBuf::from(&self.config.backup.dir)),
            discovery: None,
            rectify_days: self.config.service.rectify_days,
            applicants: Default::default(),
            appointments: self
                .config
                .appointments
                .enabled
                .then(|| self.config.appointments.schedule().ok().map(Arc::new))
                .flatten(),
            node: Arc::new(NodeInfo {
                node_id: self.key.node_id().to_hex(),
                role: self.config.node.role.as_str().into(),
                division: self.config.node.division.clone(),
                name: self.config.node.name.clone(),
                version: env!("CARGO_PKG_VERSION").into(),
                calendar: yizhan_sync::domain::calendar::Calendar::china()
                    .version()
                    .into(),
            }),
        }
    }

    /// Serves the node until `shutdown` resolves. Prints `listening on http://ADDR` on
    /// stdout once the socket is bound, so scripts and tests can find a port-0 address.
    pub async fn serve(
        &self,
        listen: Option<SocketAddr>,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let addr = listen.unwrap_or(self.config.http.listen);
        let listener = bind(addr).await?;
        let local = listener.local_addr()?;
        let scheme = if self.config.http.tls {
            "https"
        } else {
            "http"
        };
        tracing::info!(http.addr = %local, http.scheme = scheme, node.id = %self.key.node_id(), node.role = self.config.node.role.as_str(), "listening");
        let tls = if self.config.http.tls {
            let key = NodeKey::load(&self.key_path)?;
            Some(crate::tls::server_config(&key)?)
        } else {
            None
        };
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "listening on {scheme}://{local}")?;
            out.flush()?;
        }
        let mut state = self.app_state(Arc::new(SystemClock));
        if self.config.discovery.enabled {
            // A node that listens on loopback only cannot be reached from the LAN, so it
            // advertises on loopback only (the demo, tests).
            let options = crate::discovery::Options {
                port: self.config.discovery.port,
                loopback_only: local.ip().is_loopback(),
            };
            let advert = crate::discovery::Advert {
                node_id: self.key.node_id().to_hex(),
                role: self.config.node.role.as_str().into(),
                division: self.config.node.division.clone(),
                protocol: u32::from(yizhan_sync::feed::PROTOCOL_VERSION),
                port: local.port(),
            };
            match crate::discovery::Discovery::start(&advert, &options) {
                Ok(discovery) => state.discovery = Some(Arc::new(discovery)),
                Err(e) => {
                    tracing::warn!(error = %e, "LAN discovery (mDNS) could not start; the node runs without it")
                }
            }
        }
        let hello = http::sync::own_hello(&state).map_err(|e| anyhow!("{}", e.message))?;
        let driver = tokio::spawn(
            crate::link::Driver {
                store: self.store.clone(),
                key: Arc::new(NodeKey::load(&self.key_path)?),
                own: hello,
                clock: Arc::new(SystemClock),
                signal: state.sync_signal.clone(),
                state: state.link.clone(),
                interval: std::time::Duration::from_secs(self.config.sync.interval_secs.max(1)),
                batch_bytes: self.config.sync.batch_bytes.max(1024),
                metrics: state.metrics.clone(),
            }
            .run(),
        );
        let backups = (!self.config.backup.dir.is_empty()).then(|| {
            let data_dir = DataDir::new(self.key_path.parent().unwrap_or(Path::new(".")));
            tokio::spawn(crate::backup::schedule(
                data_dir,
                PathBuf::from(&self.config.backup.dir),
                self.config.backup.every_hours,
                self.config.backup.keep,
            ))
        });
        let router = http::router(state, self.config.http.max_body_bytes);
        let served = match tls {
            Some(config) => {
                http::serve(
                    crate::tls::TlsListener::new(listener, config)?,
                    router,
                    shutdown,
                )
                .await
            }
            None => http::serve(listener, router, shutdown).await,
        };
        driver.abort();
        if let Some(backups) = backups {
            backups.abort();
        }
        served?;
        self.store.shutdown().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Binds a listener, turning the usual failures into messages that say what to do.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        let fix = match e.kind() {
            std::io::ErrorKind::AddrInUse => {
                "the port is already in use; choose another with --listen ADDR:PORT (port 0 picks a free one) or stop the program using it"
            }
            std::io::ErrorKind::PermissionDenied => "ports below 1024 need privileges; use a port such as 8080",
            std::io::ErrorKind::AddrNotAvailable => "that address does not belong to this machine; use 0.0.0.0 or one of its addresses",
            _ => "check the --listen address",
        };
        anyhow!("cannot listen on {addr}: {e}; {fix}")
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_older_database_is_backed_up_before_it_is_migrated() {
        let root = tempfile::tempdir().unwrap();
        let dir = DataDir::new(root.path().join("node"));
        let config = Config {
            node: crate::config::NodeSection {
                role: crate::config::Role::Station,
                division: "440304001001".into(),
                name: "test".into(),
            },
            http: Default::default(),
            store: Default::default(),
            sync: Default::default(),
            backup: Default::default(),
            discovery: Default::default(),
            service: Default::default(),
            appointments: Default::default(),
        };
        create_data_dir(&dir, &config).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (_lock, node) = dir.open_exclusive().unwrap();
            node.store.shutdown().await;
        });
        assert!(
            !dir.path.join("backups").exists(),
            "a new database needs no backup"
        );
        // Make the database look one schema version old.
        {
            let conn = rusqlite::Connection::open(dir.database()).unwrap();
            conn.execute_batch(
                "DROP TABLE appointments;
                 DROP INDEX cases_holder; DROP INDEX cases_rectify;
                 ALTER TABLE cases DROP COLUMN holder; ALTER TABLE cases DROP COLUMN holder_node;
                 ALTER TABLE cases DROP COLUMN signed_on; ALTER TABLE cases DROP COLUMN rating;
                 ALTER TABLE cases DROP COLUMN rated_on; ALTER TABLE cases DROP COLUMN rectify_due;
                 ALTER TABLE cases DROP COLUMN rectified_on;
                 ALTER TABLE case_events DROP COLUMN voided; PRAGMA user_version = 7;",
            )
            .unwrap();
        }
        runtime.block_on(async {
            let (_lock, node) = dir.open_exclusive().unwrap();
            node.store.shutdown().await;
        });
        let archives: Vec<_> = fs::read_dir(dir.path.join("backups"))
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        assert!(
            archives.iter().any(|n| n.ends_with(".tar.gz")),
            "{archives:?}"
        );
        assert!(archives.iter().any(|n| n.ends_with(".tar.gz.sha256")));
        let conn = rusqlite::Connection::open(dir.database()).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, crate::store::SCHEMA_VERSION);
        // A current database is not backed up again.
        runtime.block_on(async {
            let (_lock, node) = dir.open_exclusive().unwrap();
            node.store.shutdown().await;
        });
        assert_eq!(fs::read_dir(dir.path.join("backups")).unwrap().count(), 2);
    }
}
