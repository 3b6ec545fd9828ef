//! The wiring: a data dir opened into a node (config, key, store, with a backup before
//! any migration), and the running server around it.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow};
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use tokio::net::TcpListener;

use crate::api::{self, ApiState};
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::data_dir::{DataDir, DirLock};
use crate::identity::{NodeKey, ThisNode};
use crate::metrics::SinkState;
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

/// How long a `/sync/v1` request may take in all: what the sync client waits
/// (`link::Client`), so the node never works on an answer nobody waits for.
const SYNC_REQUEST_DEADLINE: Duration = Duration::from_secs(120);

/// Bounds the time a request may take, its body included, so a client that sends its
/// body slowly holds its connection for a while, not for ever. `/sync/v1` requests read
/// their bodies within their own deadline (by size), so they get `sync` for the whole
/// answer (a push may wait for the writer); the long-poll ends itself. The answer says
/// the node took too long, which for a slow sender is beside the point.
async fn deadline(
    axum::extract::State((pages, sync)): axum::extract::State<(Duration, Duration)>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(
            || request.uri().path().to_string(),
            |p| p.as_str().to_string(),
        );
    let limit = if route == "/sync/v1/wait" {
        return next.run(request).await;
    } else if route.starts_with("/sync/v1/") {
        sync
    } else {
        pages
    };
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(http.route = %route, "a request took longer than its deadline");
            api::error::ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                format!("the request took longer than {} s", limit.as_secs()),
            )
            .into_response()
        }
    }
}

/// What the HTTP server allows a connection (`[http]` in the config).
#[derive(Clone, Copy, Debug)]
pub struct ServerLimits {
    /// Connections served at once; more wait in the kernel's queue until one closes.
    pub max_connections: usize,
    /// Time a connection has to send a complete request head, counted from when it
    /// opens or its last answer was sent: it bounds slow headers and idle connections.
    pub header_timeout: Duration,
    /// Largest request head (request line and headers), in bytes.
    pub max_header_bytes: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_connections: 4096,
            header_timeout: Duration::from_secs(10),
            max_header_bytes: 64 * 1024,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets open requests
/// finish (for at most ten seconds).
///
/// Our own accept loop rather than `axum::serve`, which has no connection limit and
/// arms no header timer: at most `limits.max_connections` connections are served (the
/// semaphore is taken before accepting, as mini-redis does), and hyper closes a connection
/// that has not sent a complete request head within `limits.header_timeout`, whether it
/// sends slowly or sits idle. A connection costs a task and hyper's buffers (about 10 KB
/// while idle), so thousands of slow ones leave the node's pages responsive
/// (`yizhan bench flood`, docs/benchmarks.md).
pub async fn serve<L>(
    mut listener: L,
    router: Router,
    limits: ServerLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let (closing, closed) = tokio::sync::watch::channel(false);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true);
    tokio::pin!(shutdown);
    let mut warned_full: Option<std::time::Instant> = None;
    loop {
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if warned_full.is_none_or(|at| at.elapsed() > Duration::from_secs(60)) {
                    tracing::warn!(
                        http.max_connections = limits.max_connections,
                        "the connection limit is reached; new connections wait"
                    );
                    warned_full = Some(std::time::Instant::now());
                }
                tokio::select! {
                    permit = permits.clone().acquire_owned() => permit.expect("never closed"),
                    () = &mut shutdown => break,
                }
            }
        };
        let (io, remote) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let router = router.clone();
        // Handlers see the client's address (the sign-in throttle counts per address).
        let service = hyper::service::service_fn(
            move |mut request: hyper::Request<hyper::body::Incoming>| {
                request
                    .extensions_mut()
                    .insert(axum::extract::ConnectInfo(ClientAddr(remote)));
                tower::ServiceExt::oneshot(router.clone(), request.map(axum::body::Body::new))
            },
        );
        let connection = http.serve_connection(hyper_util::rt::TokioIo::new(io), service);
        let mut closed = closed.clone();
        tokio::spawn(async move {
            let _permit = permit;
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(peer = %remote, error = %e, "connection ended");
                    }
                    return;
                }
                _ = closed.wait_for(|closing| *closing) => {}
            }
            // Finish the request in flight, then close.
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        });
    }
    let _ = closing.send(true);
    let all = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    if tokio::time::timeout(Duration::from_secs(10), permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!("requests still open 10 s after shutdown began; stopping anyway");
    }
    Ok(())
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
        });
        let links = Arc::new(crate::links::Links::default());
        let sink = Arc::new(Mutex::new(SinkState {
            enabled: !self.config.sink.postgres.is_empty(),
            ..SinkState::default()
        }));
        let backup_dir =
            (!self.config.backup.dir.is_empty()).then(|| PathBuf::from(&self.config.backup.dir));
        let rectify_days = self.config.service.rectify_days;
        let stale_sync_hours = self.config.service.stale_sync_hours;
        AppState {
            api: ApiState {
                store: self.store.clone(),
                clock: clock.clone(),
                node: node.clone(),
                links: links.clone(),
                sink: sink.clone(),
                duplicates_received: Default::default(),
                applied_received: Default::default(),
                metrics: Default::default(),
                sync: Arc::new(api::sync::SyncServer::new(api::sync::SyncLimits {
                    max_push_bytes: self.config.sync.max_push_bytes,
                    body_budget_bytes: self.config.sync.body_budget_bytes,
                    max_sessions: self.config.sync.max_sessions,
                })),
                backup_dir: backup_dir.clone(),
                rectify_days,
                stale_sync_hours,
            },
            web: WebState {
                store: self.store.clone(),
                clock,
                node,
                links,
                sink,
                backup_dir,
                discovery: None,
                tls: self.config.http.tls,
                public_url: self.config.http.public_url(),
                key: Arc::new(self.key.duplicate()),
                rectify_days,
                stale_sync_hours,
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

    /// The clock of the pages and the API: the system's, or moved by the offset in the file
    /// `YIZHAN_CLOCK_FILE` names (read on every call: browser tests that cross midnight; see
    /// [`crate::clock::FileClock`]) or by `YIZHAN_CLOCK_OFFSET_DAYS` whole days (process
    /// tests of deadlines; [`crate::clock::OffsetClock`]), said in the log since nobody
    /// should run a station so.
    fn page_clock() -> Arc<dyn Clock> {
        if let Some(file) = std::env::var_os("YIZHAN_CLOCK_FILE") {
            tracing::warn!(
                clock.file = %std::path::Path::new(&file).display(),
                "the pages and the API count time from the system clock moved by the offset in YIZHAN_CLOCK_FILE"
            );
            return Arc::new(crate::clock::FileClock::new(file.into()));
        }
        match std::env::var("YIZHAN_CLOCK_OFFSET_DAYS")
            .ok()
            .and_then(|days| days.trim().parse::<i64>().ok())
        {
            Some(days) if days != 0 => {
                tracing::warn!(
                    clock.offset_days = days,
                    "the pages and the API count time {days} day(s) from the system clock (YIZHAN_CLOCK_OFFSET_DAYS)"
                );
                Arc::new(crate::clock::OffsetClock {
                    offset_ms: days * 86_400_000,
                })
            }
            _ => Arc::new(SystemClock),
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
        let mut state = self.app_state(Self::page_clock());
        // Notices sealed before they were documents (migration 012) go up like new ones.
        match self.store.publish_local_notices(SystemClock.now_ms()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                notices.published = n,
                "published older notices as documents"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "older notices could not be published as documents; they are served here")
            }
        }
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
                boot: SystemClock.now_ms(),
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
                links: state.api.links.clone(),
                interval: std::time::Duration::from_secs(self.config.sync.interval_secs.max(1)),
                batch_bytes: self.config.sync.batch_bytes.max(1024),
                metrics: state.api.metrics.clone(),
                lan: state.web.discovery.as_ref().map(|d| d.events()),
            }
            .run(),
        );
        // The PostgreSQL sink runs beside the server and never holds it up: when
        // PostgreSQL is away it only falls behind (`sink`).
        let sink = (!self.config.sink.postgres.is_empty()).then(|| {
            tokio::spawn(
                crate::sink::Sink {
                    store: self.store.clone(),
                    url: self.config.sink.postgres.clone(),
                    batch_changes: self.config.sink.batch_changes.max(1),
                    timeout: std::time::Duration::from_secs(self.config.sink.timeout_secs.max(1)),
                    state: state.api.sink.clone(),
                }
                .run(),
            )
        });
        // A hall whose rules say so supervises red (or legally breached) cases by itself.
        let auto_supervision = match (
            self.config.supervision.auto.threshold(),
            self.store.own_record().role.is_hall(),
        ) {
            (Some(threshold), true) => Some(tokio::spawn(auto_supervise(
                self.store.clone(),
                state.api.clock.clone(),
                threshold,
                self.config.supervision.reply_days,
            ))),
            _ => None,
        };
        let data_dir = DataDir::new(self.key_path.parent().unwrap_or(Path::new(".")));
        let control = match crate::control::Control::bind(&data_dir.control_socket()) {
            Ok(control) => Some(tokio::spawn(
                control
                    .with_catalog(state.api.store.clone())
                    .serve(state.api.links.clone()),
            )),
            Err(e) => {
                tracing::warn!(error = %e, "the control socket could not start; `yizhan sync now` and the live part of `yizhan status` will not reach this node");
                None
            }
        };
        // Children's long-polls end as soon as shutting down begins.
        let links = state.api.links.clone();
        let shutdown = async move {
            shutdown.await;
            links.close();
        };
        let backups = (!self.config.backup.dir.is_empty()).then(|| {
            tokio::spawn(crate::backup::schedule(
                data_dir.clone(),
                PathBuf::from(&self.config.backup.dir),
                self.config.backup.every_hours,
                self.config.backup.keep,
            ))
        });
        let http = &self.config.http;
        let router =
            router(state, http.max_body_bytes).layer(axum::middleware::from_fn_with_state(
                (
                    Duration::from_secs(http.request_timeout_secs.max(1)),
                    SYNC_REQUEST_DEADLINE,
                ),
                deadline,
            ));
        let limits = ServerLimits {
            max_connections: http.max_connections.max(1),
            header_timeout: Duration::from_secs(http.header_timeout_secs.max(1)),
            ..ServerLimits::default()
        };
        let served = match tls {
            Some(config) => {
                serve(
                    crate::tls::TlsListener::new(listener, config)?,
                    router,
                    limits,
                    shutdown,
                )
                .await
            }
            None => serve(listener, router, limits, shutdown).await,
        };
        driver.abort();
        if let Some(sink) = sink {
            sink.abort();
        }
        if let Some(backups) = backups {
            backups.abort();
        }
        if let Some(auto) = auto_supervision {
            auto.abort();
        }
        if let Some(control) = control {
            control.abort();
            let _ = std::fs::remove_file(data_dir.control_socket());
        }
        served?;
        self.store.shutdown().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// How often a hall looks for cases to supervise by itself (`[supervision] auto`): warning
/// levels change by the day, so a few minutes late is soon enough.
const AUTO_SUPERVISION_EVERY: Duration = Duration::from_secs(300);

/// Opens supervision notices for the cases below this hall whose warning reached
/// `threshold`, a little after start and then every [`AUTO_SUPERVISION_EVERY`], by the
/// same rule as a person's (`engine::may_supervise`, as the hall's supervisor).
async fn auto_supervise(
    store: Store,
    clock: Arc<dyn Clock>,
    threshold: yizhan_sync::domain::calendar::WarningLevel,
    reply_days: u32,
) {
    let staff = crate::store::Staff {
        username: crate::i18n::Tr::of(crate::i18n::Lang::Zh)
            .get("record.auto_supervision_staff")
            .into_owned(),
        counter: String::new(),
        role: crate::store::Role::Supervisor,
    };
    tokio::time::sleep(Duration::from_secs(5)).await;
    loop {
        match store
            .auto_supervise(threshold, reply_days, staff.clone(), clock.now_ms(), 200)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                supervision.opened = n,
                "supervision notices opened by the hall's rules"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "automatic supervision failed; it tries again later")
            }
        }
        tokio::time::sleep(AUTO_SUPERVISION_EVERY).await;
    }
}

/// How long the start-up check of the database may read (`PRAGMA quick_check` reads
/// every page: about a second per GB on a station PC's SSD).
const CHECK_BUDGET: std::time::Duration = std::time::Duration::from_secs(5);

/// Refuses to open a damaged database (header, schema version, SQLite's quick check),
/// saying how to restore it, so a node never serves from a file that lost pages.
fn check_database(dir: &DataDir) -> anyhow::Result<()> {
    let db = dir.database();
    // After a clean close with the file untouched since, the pages were sound when the
    // last connection closed: only the header and schema are read (a large hall's file
    // takes seconds to read whole). After a crash or a kill, every page is checked.
    let checked = if crate::store::clean_close(&db).is_some() {
        crate::store::check_header(&db)
    } else {
        crate::store::check_file(&db, CHECK_BUDGET)
    };
    let checked = match checked {
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

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::data_dir::create_data_dir;

    /// A server with `limits` on a loopback port, answering `ok` on `/`; stops when the
    /// returned sender is dropped.
    async fn small_server(limits: ServerLimits) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve(listener, router, limits, async move {
            let _ = stopped.await;
        }));
        (addr, stop)
    }

    /// Reads until the server closes the connection or `within` passes; returns what
    /// was read and whether it closed.
    async fn read_until_closed(
        stream: &mut tokio::net::TcpStream,
        within: Duration,
    ) -> (String, bool) {
        let mut all = Vec::new();
        let mut buf = [0u8; 1024];
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&all).into(), true),
                Ok(Ok(n)) => all.extend_from_slice(&buf[..n]),
                Err(_) => return (String::from_utf8_lossy(&all).into(), false),
            }
        }
    }

    #[tokio::test]
    async fn slow_and_idle_connections_are_closed_after_the_header_timeout() {
        let (addr, _stop) = small_server(ServerLimits {
            header_timeout: Duration::from_millis(300),
            ..ServerLimits::default()
        })
        .await;
        // Half a request head, then nothing.
        let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET / HTTP/1.1\r\nHo").await.unwrap();
        let started = std::time::Instant::now();
        let (_, closed) = read_until_closed(&mut slow, Duration::from_secs(5)).await;
        assert!(closed, "a half-sent head keeps its connection");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        // A whole request is answered; the connection, idle after it, is closed too.
        let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
        idle.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let (answer, closed) = read_until_closed(&mut idle, Duration::from_secs(5)).await;
        assert!(
            answer.starts_with("HTTP/1.1 200") && answer.ends_with("ok"),
            "{answer}"
        );
        assert!(closed, "an idle kept-alive connection stays open");
        // A connection that never sends a byte goes the same way.
        let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (_, closed) = read_until_closed(&mut silent, Duration::from_secs(5)).await;
        assert!(closed);
    }

    #[tokio::test]
    async fn a_request_past_its_deadline_is_answered_503() {
        use tower::ServiceExt;
        let slow = || async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "late"
        };
        let router = Router::new()
            .route("/page", axum::routing::get(slow))
            .route("/sync/v1/wait", axum::routing::get(|| async { "held" }))
            .layer(axum::middleware::from_fn_with_state(
                (Duration::from_millis(100), Duration::from_millis(100)),
                deadline,
            ));
        let request = |uri: &str| {
            axum::http::Request::builder()
                .uri(uri)
                .body(axum::body::Body::empty())
                .unwrap()
        };
        let started = std::time::Instant::now();
        let response = router.clone().oneshot(request("/page")).await.unwrap();
        assert_eq!(
            response.status(),
            axum::http::StatusCode::SERVICE_UNAVAILABLE
        );
        assert!(started.elapsed() < Duration::from_secs(5));
        let response = router.oneshot(request("/sync/v1/wait")).await.unwrap();
        assert_eq!(response.status(), axum::http::StatusCode::OK);
    }

    #[tokio::test]
    async fn connections_beyond_the_limit_wait_for_a_free_place() {
        let (addr, _stop) = small_server(ServerLimits {
            max_connections: 2,
            header_timeout: Duration::from_secs(30),
            ..ServerLimits::default()
        })
        .await;
        let first = tokio::net::TcpStream::connect(addr).await.unwrap();
        let _second = tokio::net::TcpStream::connect(addr).await.unwrap();
        // Let the server accept both before the third arrives.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut third = tokio::net::TcpStream::connect(addr).await.unwrap();
        third
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let (answer, _) = read_until_closed(&mut third, Duration::from_millis(500)).await;
        assert_eq!(answer, "", "a third connection was served beside two");
        drop(first);
        let (answer, closed) = read_until_closed(&mut third, Duration::from_secs(5)).await;
        assert!(answer.starts_with("HTTP/1.1 200") && closed, "{answer}");
    }

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
            sink: Default::default(),
            supervision: Default::default(),
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
