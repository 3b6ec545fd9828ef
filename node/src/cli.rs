//! The `yizhan` command line: argument definitions and what each command does.

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use crate::accounts::{generate_password, generate_token, hash_password, validate_username};
use crate::clock::{Clock, SystemClock};
use crate::config::{self, Config, HttpSection, NodeSection, Role, StoreSection};
use crate::data_dir::{self, DEFAULT_DATA_DIR, DataDir};
use crate::node::OpenNode;
use crate::store::{NewUser, Role as StaffRole, Store};

/// Yizhan (驿站): offline-first node for community public service stations and service halls.
#[derive(Debug, Parser)]
#[command(name = "yizhan", version, max_term_width = 100)]
pub struct Cli {
    /// The node's data directory [default: /var/lib/yizhan; for `demo`, a new temporary directory]
    #[arg(long, global = true, env = "YIZHAN_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a node: data dir, key pair, config and the first admin account
    Init(InitArgs),
    /// Run the node
    Serve {
        /// Address and port to listen on, overriding the config (port 0 picks a free port)
        #[arg(long, value_name = "ADDR:PORT")]
        listen: Option<SocketAddr>,
    },
    /// Run a demo station with a built-in catalog and example cases
    Demo {
        /// Address and port to listen on (port 0 picks a free port)
        #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
    },
    /// Regenerate every materialized table from the documents (the node must be stopped)
    Rebuild,
    /// Issue a one-time code for a node to enroll with this hall
    EnrollCode {
        /// The new node's division code
        #[arg(long, value_name = "CODE")]
        division: String,
        /// The new node's role
        #[arg(long, value_enum)]
        role: Role,
        /// Hours the code stays valid
        #[arg(long, default_value_t = 24)]
        valid_hours: u64,
    },
    /// Enroll this node with its parent hall, using a code from `yizhan enroll-code`
    Enroll {
        /// The parent's address, e.g. http://192.168.1.10:8080
        url: String,
        /// The one-time code the hall printed
        code: String,
    },
    /// Revoke a node this hall enrolled (the node must be stopped here)
    Revoke {
        /// The node id (32 hex digits, see `yizhan status`)
        node: String,
        #[arg(long, default_value = "revoked by the hall")]
        reason: String,
    },
    /// Show this node, its peers and its sync state
    Status,
    /// Sync with the parent while the node serves
    #[command(subcommand)]
    Sync(SyncCommand),
    /// List the Yizhan nodes on this LAN (mDNS), e.g. to find the hall to enroll with
    Peers {
        /// How long to listen
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=60))]
        seconds: u64,
    },
    /// Back up the node (database, config and key) into DIR while it serves
    Backup {
        /// Where the archive and its .sha256 go (e.g. a USB disk)
        dir: PathBuf,
    },
    /// Restore a backup into --data-dir (empty, or with --replace); the node then starts a new epoch
    Restore {
        /// The .tar.gz written by `yizhan backup` (its .sha256 must sit beside it)
        archive: PathBuf,
        /// Replace the node in --data-dir (stopped), keeping its files in DIR/replaced-TIME
        #[arg(long)]
        replace: bool,
    },
    /// Publish the items of a catalog file in this hall's catalog, all or nothing (a
    /// serving node publishes them through its control socket): an .xlsx workbook in the
    /// layout the catalog exports (sheets 事项, 申请材料, 办理情形, 办理流程, 设定依据,
    /// 特别程序, 收费项目), a folder of those sheets as CSV files (事项.csv, …) or one of
    /// them, or a TOML catalog file
    ImportCatalog { file: PathBuf },
    /// Publish a working-day calendar year file (the State Council's notice) as this
    /// hall's; it flows down with the catalog and open deadlines are counted again (the
    /// node must be stopped; a running hall takes `PUT /api/v1/calendars/{year}`)
    PublishCalendar { file: PathBuf },
    /// Write everything a node may read to a file, for a technician to carry to it
    ExportBundle {
        /// The node the bundle is for (32 hex digits)
        #[arg(long = "for", value_name = "NODE")]
        for_node: String,
        file: PathBuf,
    },
    /// Apply a bundle made by `yizhan export-bundle` (the node must be stopped)
    ImportBundle { file: PathBuf },
    /// Manage staff accounts
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens
    #[command(subcommand)]
    Token(TokenCommand),
    /// Measure performance
    #[command(subcommand)]
    Bench(BenchCommand),
    /// The PostgreSQL sink ([sink] in the config)
    #[command(subcommand)]
    Sink(SinkCommand),
}

#[derive(Debug, Subcommand)]
pub enum SinkCommand {
    /// Test the connection to PostgreSQL and its schema; show the sink's position and lag
    Check,
    /// Compare PostgreSQL's rows with this node's, row by row (best with the node stopped)
    Verify,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// What this node is in the tree
    #[arg(long, value_enum)]
    pub role: Role,
    /// Division code: 12 digits (station), 9 (sub-district), 6 (district or city)
    #[arg(long, value_name = "CODE")]
    pub division: String,
    /// Name printed on receipts, e.g. 园岭社区党群服务中心
    #[arg(long)]
    pub name: String,
    /// Address and port the node will listen on
    #[arg(long, value_name = "ADDR:PORT", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account; prints a generated password once
    Add {
        username: String,
        /// worker (窗口工作人员), lead (现场负责人), admin, or supervisor (督办人员, at a hall)
        #[arg(long, default_value = "worker")]
        role: String,
        /// Name shown on pages and receipts [default: the username]
        #[arg(long)]
        display_name: Option<String>,
        /// The counter (窗口) this person usually staffs
        #[arg(long, default_value = "")]
        counter: String,
    },
    /// Set a new password: generated and printed, or read from standard input
    Passwd {
        username: String,
        /// Read the new password from standard input instead of generating one
        #[arg(long)]
        password_stdin: bool,
    },
    /// Stop an account from signing in or using its tokens
    Disable { username: String },
    /// Allow a disabled account again
    Enable { username: String },
    /// Give an account another role and counter (the last admin stays an admin)
    Set {
        username: String,
        /// worker (窗口工作人员), lead (现场负责人), admin, or supervisor (督办人员, at a hall)
        #[arg(long)]
        role: String,
        /// The counter (窗口) this person usually staffs
        #[arg(long, default_value = "")]
        counter: String,
    },
    /// List accounts
    List,
}

#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Ask the running node for a session with its parent now (cutting any retry wait
    /// short) and print how it went
    Now,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token for a user; printed once, stored only as a hash
    Create {
        #[arg(long)]
        user: String,
        /// What the token is for
        #[arg(long, default_value = "api")]
        label: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Create and accept cases through the store, then time the counter's list query
    Store(crate::bench::StoreBenchArgs),
    /// Push a station's cases to a hall over loopback HTTP, then a 1% catch-up
    Sync(crate::bench::SyncBenchArgs),
    /// Time the counter's pages with many cases and concurrent clients
    Web(crate::bench::WebBenchArgs),
    /// Stream a city hall's cases into PostgreSQL: rows/s, lag under a live sync, size
    Sink(crate::bench::SinkBenchArgs),
    /// Time a worker's work list while slow connections and oversize uploads hit the node
    Flood(crate::bench::FloodBenchArgs),
    /// Time one change at a hall reaching 500 children that hold long-polls, and their memory
    Longpoll(crate::bench::LongPollBenchArgs),
    /// A district holding many stations' cases: its subtree list and per-station overview
    Hall(crate::bench::HallBenchArgs),
    /// A simulated Shenzhen day: 645 stations, 74 sub-districts, 10 districts and the city
    /// syncing with cut links, checked to converge exactly
    City(crate::bench::CityBenchArgs),
    /// A large hall kept by another bench: start-up to serving and idle memory, after a
    /// clean stop and after a kill
    Start(crate::bench::StartBenchArgs),
}

/// What to log: `YIZHAN_LOG` (or `RUST_LOG`) as a level or `target=level` list, else
/// `info`. `Targets` rather than `EnvFilter`: the same syntax for levels and targets
/// without the regular-expression engine EnvFilter brings into the binary (issue
/// "Faster and smaller", footprint). A value it cannot read is returned beside `info`
/// so the start-up says so rather than logging nothing.
fn log_filter(setting: Option<String>) -> (tracing_subscriber::filter::Targets, Option<String>) {
    let info = || {
        tracing_subscriber::filter::Targets::new()
            .with_default(tracing_subscriber::filter::LevelFilter::INFO)
    };
    match setting.as_deref().map(str::trim) {
        None | Some("") => (info(), None),
        Some(text) => match text.parse() {
            Ok(targets) => (targets, None),
            Err(err) => (info(), Some(format!("{text:?}: {err}"))),
        },
    }
}

/// mimalloc (the allocator of both binaries) keeps freed memory for a second before it
/// gives it back to the system. A hall applying a push frees a batch's documents about
/// every second, so its RSS rose by 15-20 MB and fell each second; 250 ms took the hall's
/// peak on a 100,000-case push from 94-113 MB to 86-92 MB at the same CPU
/// (docs/benchmarks.md).
///
/// mimalloc reads the setting from the environment as the process starts, before `main`,
/// and setting it from code needs `unsafe`, which the workspace forbids. So a process
/// started without the variable runs itself again with it set, with `exec`: the same
/// process (id, arguments, open files), before any thread or file of ours exists. A
/// value already in the environment is kept, so an operator can choose another. A binary
/// that cannot be run again as it was (replaced by an upgrade since it started, or run
/// through the dynamic loader) goes on with mimalloc's default.
fn purge_sooner() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os(PURGE_DELAY).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let loader = exe
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with("ld-") || n.starts_with("ld.so"));
    if loader || !exe.is_file() {
        return;
    }
    let mut args = std::env::args_os();
    let mut again = std::process::Command::new(exe);
    if let Some(arg0) = args.next() {
        again.arg0(arg0);
    }
    // Returns only if the exec failed. By then std has set SIGPIPE back to its default
    // for the new program, and putting it back needs `unsafe`: going on would let a
    // closed pipe kill the node. So say what to do and stop.
    let error = again.args(args).env(PURGE_DELAY, "250").exec();
    eprintln!(
        "yizhan: cannot start itself again with {PURGE_DELAY}=250 ({error}); \
         set {PURGE_DELAY} in the environment (250, or 1000 for mimalloc's default) and start it again"
    );
    std::process::exit(1);
}

/// mimalloc's setting of how long freed memory is kept, in milliseconds.
const PURGE_DELAY: &str = "MIMALLOC_PURGE_DELAY";

/// The whole program: parse the command line, set up logging, run the command.
pub fn main() -> std::process::ExitCode {
    use std::io::IsTerminal;
    // mimalloc asks Linux for transparent huge pages, and each 2 MiB page the hall's
    // bulk apply touches is zeroed and counted whole: without them the hall's peak RSS
    // on `bench sync` fell by about a fifth at the same CPU (docs/benchmarks.md). A
    // kernel without the setting is no reason not to start.
    let _ = rustix::thread::disable_transparent_huge_pages(true);
    purge_sooner();
    let cli = Cli::parse();
    crate::tls::install_crypto_provider();
    // Logs go to stderr, one line per event (journald adds its own timestamps); stdout is
    // kept for what commands print for people and scripts.
    let (filter, bad_filter) = log_filter(
        std::env::var("YIZHAN_LOG")
            .or_else(|_| std::env::var("RUST_LOG"))
            .ok(),
    );
    {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_target(false),
            )
            .with(filter)
            .init();
    }
    if let Some(problem) = bad_filter {
        tracing::warn!(%problem, "YIZHAN_LOG not understood, logging at info; write a level (`debug`) or targets and levels (`info,yizhan_node::link=debug`)");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Store reads wait for one of a few reader connections on blocking threads; an
        // unbounded pool under load grew to hundreds of threads, each with its own
        // allocator heap (420 MB RSS at 50 clients, `yizhan bench web`). A few more
        // threads than readers keep the cores busy.
        .max_blocking_threads(16)
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let explicit_dir = cli.data_dir.clone();
    let data_dir = DataDir::new(
        cli.data_dir
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
    );
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match cli.command {
        Command::Init(args) => init(&data_dir, args, clock.now_ms()).await,
        Command::Serve { listen } => {
            let (_lock, node) = OpenNode::exclusive(&data_dir)?;
            node.serve(listen, shutdown_signal()).await
        }
        Command::Demo { listen } => crate::demo::run(explicit_dir, listen, shutdown_signal()).await,
        Command::Rebuild => {
            let (_lock, node) = OpenNode::exclusive(&data_dir)?;
            let report = node.store.rebuild().await?;
            println!(
                "rebuilt {} items, {} cases, {} events; rows differing from before: {}",
                report.items, report.cases, report.events, report.rows_differing
            );
            for (id, reason) in &report.unreadable {
                println!("unreadable document {id}: {reason}");
            }
            node.store.shutdown().await;
            if !report.unreadable.is_empty() {
                bail!(
                    "{} documents could not be read; restore them from a backup or from the parent node",
                    report.unreadable.len()
                );
            }
            Ok(())
        }
        Command::EnrollCode {
            division,
            role,
            valid_hours,
        } => {
            let node = OpenNode::shared(&data_dir)?;
            let result = crate::commands::enroll_code(
                &node,
                &division,
                role.into(),
                valid_hours,
                clock.now_ms(),
            )
            .await;
            node.store.shutdown().await;
            result
        }
        Command::Enroll { url, code } => {
            let node = OpenNode::shared(&data_dir)?;
            let result = crate::commands::enroll(&node, &url, &code).await;
            node.store.shutdown().await;
            result
        }
        Command::Revoke {
            node: target,
            reason,
        } => {
            let (_lock, node) = OpenNode::exclusive(&data_dir)?;
            let result = crate::commands::revoke(&node, &target, &reason, clock.now_ms()).await;
            node.store.shutdown().await;
            result
        }
        Command::Peers { seconds } => {
            let port = Config::load(&data_dir.config()).map_or(5353, |c| c.discovery.port);
            let discovery = crate::discovery::Discovery::browse_only(&crate::discovery::Options {
                port,
                loopback_only: false,
            })
            .map_err(|e| anyhow::anyhow!("LAN discovery (mDNS) could not start: {e}"))?;
            tokio::time::sleep(std::time::Duration::from_secs(seconds)).await;
            let seen = discovery.seen();
            if let Some(why) = discovery.status() {
                println!("{why}");
            }
            if seen.is_empty() {
                println!("no Yizhan node answered on this LAN within {seconds} s");
            }
            for s in seen {
                println!(
                    "{} {:<11} {:<12} http://{}:{}  (protocol {})",
                    s.node_id,
                    s.role,
                    s.division,
                    s.addresses.first().map_or("?", String::as_str),
                    s.port,
                    s.protocol
                );
            }
            println!(
                "(what mDNS says is a hint; a node's identity is the key pinned at enrollment)"
            );
            Ok(())
        }
        Command::Backup { dir } => {
            if !data_dir.is_initialized() {
                bail!(
                    "{} is not a node's data dir; pass the node's --data-dir",
                    data_dir.path.display()
                );
            }
            let archive = crate::backup::backup(&data_dir, &dir, clock.now_ms(), true)?;
            println!("backup written: {}", archive.display());
            println!(
                "  with its checksum: {}.sha256 (keep both together)",
                archive.display()
            );
            Ok(())
        }
        Command::Restore { archive, replace } => {
            if explicit_dir.is_none() {
                bail!(
                    "name the directory to restore into with --data-dir (empty or new, or the node to replace with --replace)"
                );
            }
            let restored = crate::backup::restore(&archive, &data_dir, replace, clock.now_ms())?;
            if restored.finished_interrupted {
                println!(
                    "finished the restore that was interrupted while it moved files into place"
                );
            }
            println!(
                "restored node {} from its backup of {} into {}",
                restored.manifest.node_id,
                restored.manifest.created_at,
                data_dir.path.display()
            );
            println!(
                "  it now writes as epoch {} (was {}), so no change or serial number is ever reused",
                restored.epoch, restored.manifest.epoch
            );
            if let Some(replaced) = &restored.replaced {
                println!(
                    "  the replaced node's files are kept in {}",
                    replaced.display()
                );
            }
            println!(
                "  start it with `yizhan serve`; it fetches what it wrote since the backup from its parent"
            );
            Ok(())
        }
        Command::Status => {
            let node = OpenNode::shared(&data_dir)?;
            let result = crate::commands::status(&node, &data_dir).await;
            node.store.shutdown().await;
            result
        }
        Command::Sync(SyncCommand::Now) => {
            let node = OpenNode::shared(&data_dir)?;
            let result = crate::commands::sync_now(&node, &data_dir).await;
            node.store.shutdown().await;
            result
        }
        Command::ImportCatalog { file } => {
            // A serving node publishes it through its own writer; otherwise this command
            // opens the node alone.
            if std::os::unix::net::UnixStream::connect(data_dir.control_socket()).is_ok() {
                return crate::commands::import_catalog_live(&data_dir, &file).await;
            }
            let (_lock, node) = OpenNode::exclusive(&data_dir)?;
            let result = crate::commands::import_catalog(&node, &file, clock.now_ms()).await;
            node.store.shutdown().await;
            result
        }
        Command::PublishCalendar { file } => {
            let (_lock, node) = OpenNode::exclusive(&data_dir)?;
            let result = crate::commands::publish_calendar(&node, &file, clock.now_ms()).await;
            node.store.shutdown().await;
            result
        }
        Command::ExportBundle { for_node, file } => {
            let node = OpenNode::shared(&data_dir)?;
            let result = crate::commands::export_bundle(&node, &for_node, &file).await;
            node.store.shutdown().await;
            result
        }
        Command::ImportBundle { file } => {
            let (_lock, node) = OpenNode::exclusive(&data_dir)?;
            let result = crate::commands::import_bundle(&node, &file).await;
            node.store.shutdown().await;
            result
        }
        Command::User(command) => {
            let node = OpenNode::shared(&data_dir)?;
            let result = user(&node.store, command, clock.now_ms()).await;
            node.store.shutdown().await;
            result
        }
        Command::Token(TokenCommand::Create { user, label }) => {
            let node = OpenNode::shared(&data_dir)?;
            let (token, hash) = generate_token();
            let result = node
                .store
                .add_token(user.clone(), hash, label, clock.now_ms())
                .await;
            node.store.shutdown().await;
            result.with_context(|| {
                format!("cannot create a token for {user}; list accounts with `yizhan user list`")
            })?;
            println!("token for {user} (shown once; send it as `Authorization: Bearer TOKEN`):");
            println!("{token}");
            Ok(())
        }
        Command::Sink(command) => {
            let node = OpenNode::shared(&data_dir)?;
            let result = match command {
                SinkCommand::Check => crate::commands::sink_check(&node).await,
                SinkCommand::Verify => crate::commands::sink_verify(&node).await,
            };
            node.store.shutdown().await;
            result
        }
        Command::Bench(BenchCommand::Store(args)) => crate::bench::store(args).await,
        Command::Bench(BenchCommand::Sync(args)) => crate::bench::sync(args).await,
        Command::Bench(BenchCommand::Web(args)) => crate::bench::web(args).await,
        Command::Bench(BenchCommand::Sink(args)) => crate::bench::sink(args).await,
        Command::Bench(BenchCommand::Flood(args)) => crate::bench::flood(args).await,
        Command::Bench(BenchCommand::Longpoll(args)) => crate::bench::longpoll(args).await,
        Command::Bench(BenchCommand::Hall(args)) => crate::bench::hall(args).await,
        Command::Bench(BenchCommand::City(args)) => crate::bench::city(args).await,
        Command::Bench(BenchCommand::Start(args)) => crate::bench::start(args).await,
    }
}

async fn init(data_dir: &DataDir, args: InitArgs, now_ms: u64) -> anyhow::Result<()> {
    let division = config::division_for_role(args.role, &args.division)
        .map_err(|e| anyhow::anyhow!("--division: {e}"))?;
    if args.name.trim().is_empty() {
        bail!("--name must not be empty; it is printed on receipts");
    }
    yizhan_sync::domain::text::line("--name", &args.name)?;
    let config = Config {
        node: NodeSection {
            role: args.role,
            division: division.to_string(),
            name: args.name.trim().to_string(),
        },
        http: HttpSection {
            listen: args.listen,
            ..HttpSection::default()
        },
        store: StoreSection::default(),
        sync: Default::default(),
        backup: Default::default(),
        discovery: Default::default(),
        service: Default::default(),
        appointments: Default::default(),
        sink: Default::default(),
        supervision: Default::default(),
    };
    data_dir::ensure_empty(&data_dir.path)?;
    let existed = data_dir.path.exists();
    let result = async {
        let key = data_dir::create_data_dir(data_dir, &config)?;
        let (_lock, opened) = OpenNode::exclusive(data_dir)?;
        let password = generate_password();
        opened
            .store
            .add_user(
                NewUser {
                    username: "admin".into(),
                    display_name: "管理员".into(),
                    role: StaffRole::Admin,
                    counter: String::new(),
                    password_hash: hash_password(&password)?,
                },
                now_ms,
            )
            .await?;
        opened.store.shutdown().await;
        anyhow::Ok((key, password))
    }
    .await;
    let (key, password) = match result {
        Ok(done) => done,
        Err(e) => {
            // The dir was empty or new: leave nothing half-made behind.
            data_dir::remove_partial(&data_dir.path);
            if !existed {
                let _ = std::fs::remove_dir(&data_dir.path);
            }
            return Err(e);
        }
    };
    println!(
        "initialized {} node {} ({} {}) in {}",
        config.node.role.as_str(),
        key.node_id(),
        config.node.division,
        config.node.name,
        data_dir.path.display()
    );
    println!("  config: {}", data_dir.config().display());
    println!("admin account: admin");
    println!("  password: {password}");
    println!("  (shown once; change it with `yizhan user passwd admin`)");
    println!(
        "start the node with: yizhan serve --data-dir {}",
        data_dir.path.display()
    );
    Ok(())
}

/// A role this kind of node offers its accounts (the engine's `StaffRole::offered_at`, as
/// the accounts page offers them), or an error naming those it does.
fn offered_role(store: &Store, role: &str) -> anyhow::Result<StaffRole> {
    let offered = StaffRole::offered_at(store.own_record().role);
    StaffRole::parse(role)
        .filter(|r| offered.contains(r))
        .with_context(|| {
            let names: Vec<&str> = offered.iter().map(|r| r.as_str()).collect();
            format!(
                "--role {role:?}: a {} offers {}",
                store.own_record().role.as_str(),
                names.join(", ")
            )
        })
}

async fn user(store: &Store, command: UserCommand, now_ms: u64) -> anyhow::Result<()> {
    match command {
        UserCommand::Add {
            username,
            role,
            display_name,
            counter,
        } => {
            validate_username(&username)?;
            crate::accounts::validate_names(display_name.as_deref().unwrap_or_default(), &counter)?;
            let role = offered_role(store, &role)?;
            let password = generate_password();
            let user = store
                .add_user(
                    NewUser {
                        display_name: display_name.unwrap_or_else(|| username.clone()),
                        username,
                        role,
                        counter,
                        password_hash: hash_password(&password)?,
                    },
                    now_ms,
                )
                .await?;
            println!(
                "created {} {} ({})",
                user.role.as_str(),
                user.username,
                user.display_name
            );
            println!("  password: {password}");
            println!(
                "  (shown once; change it with `yizhan user passwd {}`)",
                user.username
            );
        }
        UserCommand::Passwd {
            username,
            password_stdin,
        } => {
            let password = if password_stdin {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("cannot read the password from standard input")?;
                text.trim_end_matches(['\r', '\n']).to_string()
            } else {
                generate_password()
            };
            store
                .set_password(username.clone(), hash_password(&password)?)
                .await
                .with_context(|| format!("cannot change the password of {username}; list accounts with `yizhan user list`"))?;
            if password_stdin {
                println!("password of {username} changed");
            } else {
                println!("new password of {username}: {password}");
                println!("  (shown once)");
            }
        }
        UserCommand::Disable { username } => {
            store.set_disabled(username.clone(), true).await?;
            println!("{username} can no longer sign in or use tokens");
        }
        UserCommand::Enable { username } => {
            store.set_disabled(username.clone(), false).await?;
            println!("{username} is enabled");
        }
        UserCommand::Set {
            username,
            role,
            counter,
        } => {
            let role = offered_role(store, &role)?;
            store
                .set_role_and_counter(username.clone(), role, counter.clone())
                .await?;
            println!("{username} is a {} at {counter:?}", role.as_str());
        }
        UserCommand::List => {
            println!(
                "{:<20} {:<7} {:<9} {:<10} name",
                "username", "role", "status", "counter"
            );
            for user in store.list_users().await? {
                println!(
                    "{:<20} {:<7} {:<9} {:<10} {}",
                    user.username,
                    user.role.as_str(),
                    if user.disabled { "disabled" } else { "active" },
                    user.counter,
                    user.display_name
                );
            }
        }
    }
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM (what systemd sends on stop).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::log_filter;

    #[test]
    fn the_log_setting_reads_levels_and_targets_and_names_what_it_cannot_read() {
        // (setting, (target, level) pairs that must be logged / must not, understood?)
        type Logged<'a> = &'a [(&'a str, Level)];
        let cases: &[(Option<&str>, Logged, Logged, bool)] = &[
            (
                None,
                &[("yizhan_node::link", Level::INFO)],
                &[("yizhan_node", Level::DEBUG)],
                true,
            ),
            (
                Some(""),
                &[("yizhan_node", Level::INFO)],
                &[("yizhan_node", Level::DEBUG)],
                true,
            ),
            (
                Some("warn"),
                &[("yizhan_node", Level::WARN)],
                &[("yizhan_node", Level::INFO)],
                true,
            ),
            (
                Some("info,yizhan_node::link=debug"),
                &[("yizhan_node::link", Level::DEBUG), ("hyper", Level::INFO)],
                &[("yizhan_node::store", Level::DEBUG)],
                true,
            ),
            (
                Some("yizhan_node=loud"),
                &[("yizhan_node", Level::INFO)],
                &[("yizhan_node", Level::DEBUG)],
                false,
            ),
        ];
        for (setting, on, off, understood) in cases {
            let (filter, problem) = log_filter(setting.map(str::to_string));
            assert_eq!(problem.is_none(), *understood, "{setting:?}: {problem:?}");
            for (target, level) in *on {
                assert!(
                    filter.would_enable(target, level),
                    "{setting:?}: {target} {level}"
                );
            }
            for (target, level) in *off {
                assert!(
                    !filter.would_enable(target, level),
                    "{setting:?}: {target} {level}"
                );
            }
        }
    }
}
