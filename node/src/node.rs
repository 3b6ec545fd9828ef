//! The wiring: a data dir opened into a node (config, key, store, with a backup before
//! any migration), and the running server around it.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::{Context, anyhow};
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use tokio::net::TcpListener;

use crate::api::{self, ApiState};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::data_dir::{DataDir, DirLock};
use crate::identity::{NodeKey, ThisNode};
use crate::metrics::LinkState;
use crate::store::{Store, StoreOptions};
use crate::tls::ClientAddr;
use crate::web::{self, WebState};

/// The server's state. The JSON API and the web UI each take their own half (axum's
/// [`FromRef`]), so neither sees the other's: the API has no sessions, the pages have no
/// sync counters.
#[derive(Clone, Debug)]
pub struct AppState {
    pub api: ApiState,
    pub web: WebState,
}

impl FromRef<AppState> for ApiState {
    fn from_ref(state: &AppState) -> ApiState {
        state.api.clone()
    }
}

impl FromRef<AppState> for WebState {
    fn from_ref(state: &AppState) -> WebState {
        state.web.clone()
    }
}

/// The router with every route: the API's, the web UI's, a 404 for anything else (JSON
/// under the API's paths, a page in the reader's language elsewhere), the body limit, the
/// API's error language, and one trace line and metrics count per request. Tests call it
/// directly, with no socket.
pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    let metrics = state.api.metrics.clone();
    let pages = web::routes().layer(axum::middleware::from_fn_with_state(
        state.web.clone(),
        web::html_errors,
    ));
    Router::new()
        .merge(api::routes())
        .merge(pages)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn(api::error::with_language))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            api::trace_request,
        ))
        .with_state(state)
}

/// Any path no route takes: the API's JSON 404 under its paths, a page elsewhere.
async fn not_found(uri: axum::http::Uri, ctx: web::Ctx) -> axum::response::Response {
    use axum::response::IntoResponse;
    if api::owns(uri.path()) {
        api::not_found().await.into_response()
    } else {
        web::not_found(ctx).await
    }
}

/// A known path with a method it does not take, answered the same way.
async fn method_not_allowed(uri: axum::http::Uri, ctx: web::Ctx) -> axum::response::Response {
    use axum::response::IntoResponse;
    if api::owns(uri.path()) {
        api::method_not_allowed().await.into_response()
    } else {
        web::method_not_allowed(ctx).await
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then finishes open requests.
pub async fn serve<L>(
    listener: L,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
    ClientAddr: for<'a> axum::extract::connect_info::Connected<axum::serve::IncomingStream<'a, L>>,
{
    // Handlers see the client's address (the sign-in throttle counts per address).
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<ClientAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
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
    /// Takes the lock and opens the node to run it: migrations are applied.
    pub fn exclusive(dir: &DataDir) -> anyhow::Result<(DirLock, OpenNode)> {
        dir.ensure_initialized()?;
        let lock = dir.lock()?;
        if let Some(crate::data_dir::Interrupted::Staging { archive }) = dir.interrupted_restore() {
            tracing::warn!(restore.archive = %archive, "a restore stopped before its switch left restore-staging in the data dir; the node here is untouched; the next `yizhan restore` removes it");
        }
        check_database(dir)?;
        backup_before_migration(dir)?;
        Ok((lock, OpenNode::open(dir, true)?))
    }

    /// Opens the node for a command that may run beside a serving node (accounts,
    /// tokens): the schema must already be current.
    pub fn shared(dir: &DataDir) -> anyhow::Result<OpenNode> {
        OpenNode::open(dir, false)
    }

    /// Loads the config and key and opens the store.
    fn open(dir: &DataDir, migrate: bool) -> anyhow::Result<OpenNode> {
        dir.ensure_initialized()?;
        let config = Config::load(&dir.config())?;
        let key = NodeKey::load(&dir.key())?;
        let store = Store::open(
            &dir.database(),
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
            key_path: dir.key(),
        })
    }

    /// The server's state: the API's and the web UI's, sharing the store, the clock and
    /// what the node knows about itself.
    pub fn app_state(&self, clock: Arc<dyn Clock>) -> AppState {
        let node = Arc::new(ThisNode {
            node_id: self.key.node_id().to_hex(),
            role: self.config.node.role.as_str().into(),
            division: self.config.node.division.clone(),
            name: self.config.node.name.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            calendar: yizhan_sync::domain::calendar::Calendar::china()
                .version()
                .into(),
        });
        let link = Arc::new(Mutex::new(LinkState::default()));
        let backup_dir =
            (!self.config.backup.dir.is_empty()).then(|| PathBuf::from(&self.config.backup.dir));
        let rectify_days = self.config.service.rectify_days;
        AppState {
            api: ApiState {
                store: self.store.clone(),
                clock: clock.clone(),
                node: node.clone(),
                link: link.clone(),
                duplicates_received: Default::default(),
                applied_received: Default::default(),
                metrics: Default::default(),
                backup_dir: backup_dir.clone(),
                rectify_days,
            },
            web: WebState {
                store: self.store.clone(),
                clock,
                node,
                link,
                backup_dir,
                discovery: None,
                tls: self.config.http.tls,
                public_url: self.config.http.public_url(),
                key: Arc::new(self.key.duplicate()),
                rectify_days,
                sessions: Default::default(),
                guesses: Default::default(),
                throttle: Default::default(),
                submitted_forms: Default::default(),
                applicants: Default::default(),
                appointments: self
                    .config
                    .appointments
                    .enabled
                    .then(|| self.config.appointments.schedule().ok().map(Arc::new))
                    .flatten(),
            },
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
                Ok(discovery) => state.web.discovery = Some(Arc::new(discovery)),
                Err(e) => {
                    tracing::warn!(error = %e, "LAN discovery (mDNS) could not start; the node runs without it")
                }
            }
        }
        let hello = state
            .api
            .node
            .hello(SystemClock.now_ms())
            .map_err(|e| anyhow!("{e}"))?;
        let driver = tokio::spawn(
            crate::link::Driver {
                store: self.store.clone(),
                key: Arc::new(NodeKey::load(&self.key_path)?),
                own: hello,
                clock: Arc::new(SystemClock),
                signal: self.store.outgoing(),
                state: state.api.link.clone(),
                interval: std::time::Duration::from_secs(self.config.sync.interval_secs.max(1)),
                batch_bytes: self.config.sync.batch_bytes.max(1024),
                metrics: state.api.metrics.clone(),
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
        let router = router(state, self.config.http.max_body_bytes);
        let served = match tls {
            Some(config) => {
                serve(
                    crate::tls::TlsListener::new(listener, config)?,
                    router,
                    shutdown,
                )
                .await
            }
            None => serve(listener, router, shutdown).await,
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

/// How long the start-up check of the database may read (`PRAGMA quick_check` reads
/// every page: about a second per GB on a station PC's SSD).
const CHECK_BUDGET: std::time::Duration = std::time::Duration::from_secs(5);

/// Refuses to open a damaged database (header, schema version, SQLite's quick check),
/// saying how to restore it, so a node never serves from a file that lost pages.
fn check_database(dir: &DataDir) -> anyhow::Result<()> {
    let db = dir.database();
    let checked = match crate::store::check_file(&db, CHECK_BUDGET) {
        Ok(checked) => checked,
        Err(e @ crate::store::FileError::DamagedFile { .. }) => {
            let backups = Config::load(&dir.config())
                .ok()
                .filter(|c| !c.backup.dir.is_empty())
                .map(|c| PathBuf::from(c.backup.dir))
                .into_iter()
                .chain([dir.path.join("backups")]);
            let newest = backups
                .filter_map(|d| crate::backup::newest(&d))
                .max_by_key(|(_, at)| *at)
                .map(|(archive, _)| archive);
            let archive = newest
                .as_ref()
                .map_or("BACKUP.tar.gz".into(), |a| a.display().to_string());
            return Err(anyhow!(
                "{e}; the node does not start on a damaged database.\n\
                 Restore {} over it (the damaged files are kept aside in the data dir):\n  \
                 yizhan restore {archive} --data-dir {} --replace\n\
                 What the node wrote since that backup comes back from its parent hall at the first sync.",
                if newest.is_some() {
                    "the newest backup"
                } else {
                    "a backup made by `yizhan backup`"
                },
                dir.path.display()
            ));
        }
        Err(e) => return Err(e.into()),
    };
    if !checked.finished {
        tracing::warn!(
            check.budget_secs = CHECK_BUDGET.as_secs(),
            "the database check stopped at its time limit (a large file); it found nothing wrong in what it read"
        );
    }
    Ok(())
}

/// Before migrations change an existing database, takes a backup into
/// `backups/` in the data dir and checks the disk can hold the migration, so an
/// upgrade can always be undone by restoring (the operations issue, §4).
fn backup_before_migration(dir: &DataDir) -> anyhow::Result<()> {
    let db = dir.database();
    if !db.exists() {
        return Ok(());
    }
    let version = crate::store::schema_version(&db)?;
    if version == 0 || version >= crate::store::SCHEMA_VERSION {
        // New, current, or newer (which the store refuses with a clear message).
        return Ok(());
    }
    let size = std::fs::metadata(&db)?.len();
    // A migration may rewrite a table: room for the database once more.
    crate::backup::ensure_space(&dir.path, size, "the schema migration")?;
    let now = crate::clock::Clock::now_ms(&crate::clock::SystemClock);
    eprintln!(
        "the database is at schema version {version}; this build uses {}: backing it up before migrating",
        crate::store::SCHEMA_VERSION
    );
    let archive = crate::backup::backup(dir, &dir.path.join("backups"), now, true)
        .context("the backup before the migration failed; nothing was migrated")?;
    tracing::info!(backup = %archive.display(), schema.from = version, schema.to = crate::store::SCHEMA_VERSION, "backed up before migrating");
    eprintln!("backup written: {}", archive.display());
    Ok(())
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

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::data_dir::create_data_dir;

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
            let (_lock, node) = OpenNode::exclusive(&dir).unwrap();
            node.store.shutdown().await;
        });
        assert!(
            !dir.path.join("backups").exists(),
            "a new database needs no backup"
        );
        // Make the database look one schema version old.
        crate::store::tests::downgrade_to_schema_7(&dir.database());
        runtime.block_on(async {
            let (_lock, node) = OpenNode::exclusive(&dir).unwrap();
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
        let version = crate::store::schema_version(&dir.database()).unwrap();
        assert_eq!(version, crate::store::SCHEMA_VERSION);
        // A current database is not backed up again.
        runtime.block_on(async {
            let (_lock, node) = OpenNode::exclusive(&dir).unwrap();
            node.store.shutdown().await;
        });
        assert_eq!(fs::read_dir(dir.path.join("backups")).unwrap().count(), 2);
    }
}
