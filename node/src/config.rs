//! The node's configuration file, `yizhan.toml` in the data dir.
//!
//! One documented struct with defaults for everything but the node's identity. Unknown keys
//! are errors: a misspelt setting that is silently ignored is worse than a refusal to start.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;

use yizhan_sync::domain::codes::{DivisionCode, DivisionLevel};

/// Name of the config file inside the data dir.
pub const CONFIG_FILE: &str = "yizhan.toml";

/// The whole configuration.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub node: NodeSection,
    #[serde(default)]
    pub http: HttpSection,
    #[serde(default)]
    pub store: StoreSection,
    #[serde(default)]
    pub sync: SyncSection,
    #[serde(default)]
    pub backup: BackupSection,
    #[serde(default)]
    pub discovery: DiscoverySection,
    #[serde(default)]
    pub service: ServiceSection,
    #[serde(default)]
    pub appointments: AppointmentsSection,
    #[serde(default)]
    pub sink: SinkSection,
    #[serde(default)]
    pub supervision: SupervisionSection,
}

/// Supervision notices a hall opens by itself (督办, SZDB/Z 176 §10.2): where the hall's
/// rules say so, a case below it whose warning reaches red, or the legal breach, gets a
/// notice to its station without anyone typing it. Only halls do this; at a station the
/// section is read and ignored.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupervisionSection {
    /// Which warnings open a notice: `off` (none, the default), `red` (past the committed
    /// deadline, and so also past the legal one, or a step past its limit, §10.2) or
    /// `legal_breach` (past the legal deadline only). One automatic notice per case and hall; a case the hall already
    /// supervises gets none.
    pub auto: AutoSupervision,
    /// Working days the station has to reply to an automatic notice, 1 to 60.
    pub reply_days: u32,
}

impl Default for SupervisionSection {
    fn default() -> Self {
        SupervisionSection {
            auto: AutoSupervision::Off,
            reply_days: 3,
        }
    }
}

/// Which warnings open a supervision notice by themselves (`[supervision] auto`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AutoSupervision {
    Off,
    Red,
    LegalBreach,
}

impl AutoSupervision {
    /// The warning level that opens a notice, or `None` when off.
    pub fn threshold(self) -> Option<yizhan_sync::domain::calendar::WarningLevel> {
        use yizhan_sync::domain::calendar::WarningLevel;
        match self {
            AutoSupervision::Off => None,
            AutoSupervision::Red => Some(WarningLevel::Red),
            AutoSupervision::LegalBreach => Some(WarningLevel::LegalBreach),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            AutoSupervision::Off => "off",
            AutoSupervision::Red => "red",
            AutoSupervision::LegalBreach => "legal_breach",
        }
    }
}

/// The PostgreSQL sink (`docs/sink.md`): the node streams its derived rows into a
/// PostgreSQL database the city already runs, exactly once and resumably.
#[derive(Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SinkSection {
    /// The database to feed, as a URL (`postgres://USER:PASSWORD@HOST:PORT/DB`, or
    /// `postgres://USER@localhost/DB?host=/run/postgresql` for a Unix socket). Empty
    /// turns the sink off.
    pub postgres: String,
    /// Changes of the node's log per PostgreSQL transaction; each commits the rows of the
    /// documents they touched together with the sink's position.
    pub batch_changes: u32,
    /// Seconds to wait for PostgreSQL to connect or answer a batch before trying again.
    pub timeout_secs: u64,
}

impl Default for SinkSection {
    fn default() -> Self {
        SinkSection {
            postgres: String::new(),
            batch_changes: 8192,
            timeout_secs: 30,
        }
    }
}

/// Written by hand so the password in the URL never reaches a log.
impl fmt::Debug for SinkSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SinkSection")
            .field("postgres", &redact_postgres_url(&self.postgres))
            .field("batch_changes", &self.batch_changes)
            .field("timeout_secs", &self.timeout_secs)
            .finish()
    }
}

/// Checks a `[sink] postgres` URL without connecting; `Err` says what is wrong.
pub fn check_postgres_url(url: &str) -> Result<(), String> {
    use std::str::FromStr;
    let config = tokio_postgres::Config::from_str(url).map_err(|e| e.to_string())?;
    if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
        return Err(
            "sslmode=require: this build speaks to PostgreSQL without TLS; connect over a Unix socket \
             (?host=/run/postgresql), loopback or a trusted LAN, or through a tunnel"
                .into(),
        );
    }
    Ok(())
}

/// A PostgreSQL URL with its password replaced, for logs and messages.
pub fn redact_postgres_url(url: &str) -> String {
    // postgres://user:password@host/… → postgres://user:***@host/…
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((userinfo, host)) = rest.rsplit_once('@')
        && let Some((user, _)) = userinfo.split_once(':')
    {
        return format!("{scheme}://{user}:***@{host}");
    }
    // The key=value form: password=… anywhere.
    url.split_whitespace()
        .map(|part| {
            if part.starts_with("password=") {
                "password=***"
            } else {
                part
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Local rules of service the standard leaves to each city.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceSection {
    /// Working days to rectify after a bad rating (差评整改; DOMAIN §8: set locally, 15 is
    /// the common figure). Written into each rating, so every node derives the same
    /// deadline even if this changes later.
    pub rectify_days: u32,
    /// Hours without news from a station (no change of its cases, no sync session here)
    /// after which the hall's overview marks it (`/hall/stations`, `/api/v1/stations`).
    pub stale_sync_hours: u32,
}

impl Default for ServiceSection {
    fn default() -> Self {
        ServiceSection {
            rectify_days: 15,
            stale_sync_hours: 24,
        }
    }
}

/// Appointments applicants book on the public pages (预约, SZDB/Z 176 §9.4). Defaults, so
/// config files written before appointments existed still load.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppointmentsSection {
    /// Offer the public booking pages.
    pub enabled: bool,
    /// Opening hours, `HH:MM` China Standard Time.
    pub open: String,
    pub close: String,
    /// A break without slots, `HH:MM-HH:MM`; empty for none.
    pub lunch: String,
    /// Saturday opening hours, `HH:MM-HH:MM` (周六上午); empty: closed on Saturdays. A
    /// Saturday in a holiday stretch is closed, a make-up working Saturday has the
    /// weekday hours.
    pub saturday: String,
    /// Length of a slot in minutes.
    pub slot_minutes: u16,
    /// Counters taking appointments.
    pub counters: u32,
    /// Bookings each counter takes per slot.
    pub per_counter: u32,
    /// How many working days ahead one may book, today included when it is one.
    pub days_ahead: u32,
}

impl Default for AppointmentsSection {
    fn default() -> Self {
        AppointmentsSection {
            enabled: true,
            open: "09:00".into(),
            close: "18:00".into(),
            lunch: "12:00-14:00".into(),
            saturday: "09:00-12:00".into(),
            slot_minutes: 30,
            counters: 2,
            per_counter: 1,
            days_ahead: 7,
        }
    }
}

impl AppointmentsSection {
    /// The checked schedule, or what is wrong as `(key, message)`.
    pub fn schedule(&self) -> Result<crate::appointments::Schedule, (&'static str, String)> {
        use crate::appointments::{Minute, Schedule};
        let time = |key: &'static str, text: &str| {
            Minute::parse(text.trim()).ok_or_else(|| {
                (
                    key,
                    format!(
                        "appointments.{key} must be a time of day like \"09:00\", not {text:?}"
                    ),
                )
            })
        };
        let open = time("open", &self.open)?;
        let close = time("close", &self.close)?;
        if open >= close {
            return Err((
                "close",
                format!(
                    "appointments.close ({}) must be later than appointments.open ({})",
                    self.close, self.open
                ),
            ));
        }
        let lunch = match self.lunch.trim() {
            "" => None,
            text => {
                let bad = || {
                    (
                        "lunch",
                        format!(
                            "appointments.lunch must be empty or a break like \"12:00-14:00\" within opening hours, not {text:?}"
                        ),
                    )
                };
                let (from, to) = text.split_once('-').ok_or_else(bad)?;
                let (from, to) = (
                    Minute::parse(from.trim()).ok_or_else(bad)?,
                    Minute::parse(to.trim()).ok_or_else(bad)?,
                );
                if !(open < from && from < to && to < close) {
                    return Err(bad());
                }
                Some((from, to))
            }
        };
        if !(5..=240).contains(&self.slot_minutes) {
            return Err((
                "slot_minutes",
                format!(
                    "appointments.slot_minutes must be between 5 and 240, not {}",
                    self.slot_minutes
                ),
            ));
        }
        // Every period of opening must split into whole slots, or its last slot would be
        // cut short (or silently dropped).
        let periods = match lunch {
            None => vec![(open, close)],
            Some((from, to)) => vec![(open, from), (to, close)],
        };
        if let Some((a, b)) = periods
            .iter()
            .find(|(a, b)| (b.minutes() - a.minutes()) % self.slot_minutes != 0)
        {
            return Err((
                "slot_minutes",
                format!(
                    "appointments.slot_minutes ({}) must divide the opening period {a}-{b} into whole slots",
                    self.slot_minutes
                ),
            ));
        }
        for (key, value) in [
            ("counters", self.counters),
            ("per_counter", self.per_counter),
            ("days_ahead", self.days_ahead),
        ] {
            if value == 0 {
                return Err((key, format!("appointments.{key} must be at least 1")));
            }
        }
        if self.days_ahead > 60 {
            return Err((
                "days_ahead",
                format!(
                    "appointments.days_ahead must be at most 60, not {}",
                    self.days_ahead
                ),
            ));
        }
        let saturday = match self.saturday.trim() {
            "" => None,
            text => {
                let bad = || {
                    (
                        "saturday",
                        format!(
                            "appointments.saturday must be empty or hours like \"09:00-12:00\" that split into whole slots, not {text:?}"
                        ),
                    )
                };
                let (from, to) = text.split_once('-').ok_or_else(bad)?;
                let (from, to) = (
                    Minute::parse(from.trim()).ok_or_else(bad)?,
                    Minute::parse(to.trim()).ok_or_else(bad)?,
                );
                if from >= to || (to.minutes() - from.minutes()) % self.slot_minutes != 0 {
                    return Err(bad());
                }
                Some((from, to))
            }
        };
        Ok(Schedule {
            open,
            close,
            lunch,
            saturday,
            slot_minutes: self.slot_minutes,
            capacity: self.counters.saturating_mul(self.per_counter),
            days_ahead: self.days_ahead,
        })
    }
}

/// LAN discovery (mDNS).
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DiscoverySection {
    /// Advertise this node and list the others on the LAN.
    pub enabled: bool,
    /// The mDNS port (5353 everywhere; another only for tests).
    pub port: u16,
}

impl Default for DiscoverySection {
    fn default() -> Self {
        DiscoverySection {
            enabled: true,
            port: 5353,
        }
    }
}

/// Scheduled backups while the node serves.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupSection {
    /// Where scheduled backups go; empty turns them off. Best on another disk.
    pub dir: String,
    /// Hours between backups.
    pub every_hours: u64,
    /// Backups kept; older ones are deleted after a new one is written.
    pub keep: usize,
}

impl Default for BackupSection {
    fn default() -> Self {
        BackupSection {
            dir: String::new(),
            every_hours: 24,
            keep: 7,
        }
    }
}

/// Sync with the parent node (set up with `yizhan enroll`).
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyncSection {
    /// Seconds between sessions with the parent when nothing else starts one (a local
    /// write, the parent's answer to the long-poll, a technician): the fallback.
    pub interval_secs: u64,
    /// Bytes of changes per batch. Smaller batches lose less on a link that drops often.
    pub batch_bytes: u32,
    /// Largest batch a child may push in one request, in bytes (checked before its body
    /// is read). Children cut their batches at their `batch_bytes`, far below it.
    pub max_push_bytes: u64,
    /// Bytes of sync request bodies this node reads and handles at once, from all
    /// children together; more waits, then gets "try again". Bounds the memory a burst of
    /// pushes can take.
    pub body_budget_bytes: u64,
    /// Children's sessions this node serves at once; a child that finds no place is told
    /// to come back in a few seconds. Long-polls are not sessions and are not counted.
    pub max_sessions: usize,
}

impl Default for SyncSection {
    fn default() -> Self {
        SyncSection {
            interval_secs: 60,
            batch_bytes: 2 * 1024 * 1024,
            max_push_bytes: 16 * 1024 * 1024,
            body_budget_bytes: 64 * 1024 * 1024,
            max_sessions: 16,
        }
    }
}

/// Who this node is.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSection {
    /// What the node does in the tree; decides what it authors and receives.
    pub role: Role,
    /// The division the node serves: 6 digits for a city or district hall, 9 for a
    /// sub-district hall, 12 for a community station.
    pub division: String,
    /// The name shown on pages and printed on receipts.
    pub name: String,
}

/// The HTTP server.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    /// Address and port to listen on. Port 0 picks a free port.
    pub listen: SocketAddr,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Serve HTTPS with a certificate made from the node key. Children of a hall reached
    /// over an untrusted network enroll with an `https://` URL and pin that key.
    pub tls: bool,
    /// Connections served at once; more wait until one closes. Each open file counts
    /// against the process's limit (the systemd unit sets `LimitNOFILE=65536`).
    pub max_connections: usize,
    /// Seconds a connection has to send a complete request head, from when it opens or
    /// from its last answer: it closes slow senders and idle connections alike.
    pub header_timeout_secs: u64,
    /// Seconds a page or API request may take, its body included (`/sync/v1` has its own
    /// bounds).
    pub request_timeout_secs: u64,
    /// The address applicants' phones reach this node by (`http://192.168.1.10:8080`),
    /// printed in the QR code of every notice as a link to its `/verify` page. Empty: the
    /// address the counter PC used, which is useless to a phone when it is `127.0.0.1`.
    pub public_url: String,
}

impl Default for HttpSection {
    fn default() -> Self {
        HttpSection {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 64 * 1024,
            tls: false,
            max_connections: 4096,
            header_timeout_secs: 10,
            request_timeout_secs: 60,
            public_url: String::new(),
        }
    }
}

impl HttpSection {
    /// The public address without a trailing slash, or `None` when not set.
    pub fn public_url(&self) -> Option<String> {
        let url = self.public_url.trim().trim_end_matches('/');
        (!url.is_empty()).then(|| url.to_string())
    }
}

/// The SQLite store.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    /// Automerge documents kept loaded in the writer: about 60 KB each for a case with its
    /// events. A document not held loads from its snapshot and later changes in well under
    /// a millisecond, so a counter's or a lead's working set is enough; 512 cost a hall
    /// 30 MB and its bulk apply nothing (`docs/benchmarks.md`).
    pub doc_cache: usize,
    /// Read-only database connections serving queries in parallel.
    pub readers: usize,
    /// `full`: every confirmed write survives a power cut. `normal`: the last writes
    /// may be lost on power loss (never corrupted), in exchange for faster single writes.
    pub synchronous: Synchronous,
}

impl Default for StoreSection {
    fn default() -> Self {
        StoreSection {
            doc_cache: 64,
            readers: 4,
            synchronous: Synchronous::Full,
        }
    }
}

/// The role of a node in the tree (DESIGN §3).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Station,
    Subdistrict,
    District,
    City,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Station => "station",
            Role::Subdistrict => "subdistrict",
            Role::District => "district",
            Role::City => "city",
        }
    }

    /// The division level a node of this role serves.
    pub fn division_level(self) -> DivisionLevel {
        match self {
            Role::Station => DivisionLevel::Community,
            Role::Subdistrict => DivisionLevel::Subdistrict,
            Role::District => DivisionLevel::District,
            Role::City => DivisionLevel::City,
        }
    }

    /// What a valid division code for this role looks like, for error messages.
    pub fn division_hint(self) -> &'static str {
        match self {
            Role::Station => "12 digits, a community (e.g. 440304001001)",
            Role::Subdistrict => "9 digits, a sub-district (e.g. 440304001)",
            Role::District => "6 digits not ending in 00, a district (e.g. 440304)",
            Role::City => "6 digits ending in 00, a city (e.g. 440300)",
        }
    }
}

impl From<Role> for yizhan_sync::auth::NodeRole {
    fn from(role: Role) -> Self {
        match role {
            Role::Station => yizhan_sync::auth::NodeRole::Station,
            Role::Subdistrict => yizhan_sync::auth::NodeRole::Subdistrict,
            Role::District => yizhan_sync::auth::NodeRole::District,
            Role::City => yizhan_sync::auth::NodeRole::City,
        }
    }
}

impl From<yizhan_sync::auth::NodeRole> for Role {
    fn from(role: yizhan_sync::auth::NodeRole) -> Self {
        match role {
            yizhan_sync::auth::NodeRole::Station => Role::Station,
            yizhan_sync::auth::NodeRole::Subdistrict => Role::Subdistrict,
            yizhan_sync::auth::NodeRole::District => Role::District,
            yizhan_sync::auth::NodeRole::City => Role::City,
        }
    }
}

/// Checks a division code against a role.
pub fn division_for_role(role: Role, code: &str) -> Result<DivisionCode, String> {
    let division = DivisionCode::parse(code)
        .map_err(|e| format!("{e}; a {} needs {}", role.as_str(), role.division_hint()))?;
    if division.level() != role.division_level() {
        return Err(format!(
            "division {code} does not fit role {}: it needs {}",
            role.as_str(),
            role.division_hint()
        ));
    }
    Ok(division)
}

/// A config file could not be used. The message names the file, the line and the fix.
#[derive(Debug)]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(line), Some(column)) => {
                write!(f, "{}:{line}:{column}: {}", self.file, self.message)
            }
            (Some(line), None) => write!(f, "{}:{line}: {}", self.file, self.message),
            _ => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            line: None,
            column: None,
            message: format!("cannot read the config file: {e}; create one with `yizhan init`"),
        })?;
        Config::parse(&text, &file)
    }

    /// Parses and checks config text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map(|span| line_col(text, span.start)).unzip();
            ConfigError {
                file: file.to_string(),
                line,
                column,
                message: e.message().trim().to_string(),
            }
        })?;
        if let Err(message) = division_for_role(config.node.role, &config.node.division) {
            let line = text
                .lines()
                .position(|l| l.trim_start().starts_with("division"))
                .map(|i| i + 1);
            return Err(ConfigError {
                file: file.to_string(),
                line,
                column: None,
                message,
            });
        }
        if !(1..=120).contains(&config.service.rectify_days) {
            let line = text
                .lines()
                .position(|l| l.trim_start().starts_with("rectify_days"))
                .map(|i| i + 1);
            return Err(ConfigError {
                file: file.to_string(),
                line,
                column: None,
                message: "service.rectify_days must be 1 to 120 working days".into(),
            });
        }
        if !(1..=60).contains(&config.supervision.reply_days) {
            let line = text
                .lines()
                .position(|l| l.trim_start().starts_with("reply_days"))
                .map(|i| i + 1);
            return Err(ConfigError {
                file: file.to_string(),
                line,
                column: None,
                message: "supervision.reply_days must be 1 to 60 working days".into(),
            });
        }
        if !(1..=8760).contains(&config.service.stale_sync_hours) {
            let line = text
                .lines()
                .position(|l| l.trim_start().starts_with("stale_sync_hours"))
                .map(|i| i + 1);
            return Err(ConfigError {
                file: file.to_string(),
                line,
                column: None,
                message: "service.stale_sync_hours must be 1 to 8760 hours".into(),
            });
        }
        let url = config.http.public_url.trim();
        if !url.is_empty()
            && !((url.starts_with("http://") || url.starts_with("https://"))
                && url.len() <= 200
                && url.bytes().all(|b| b.is_ascii_graphic()))
        {
            let line = text
                .lines()
                .position(|l| l.trim_start().starts_with("public_url"))
                .map(|i| i + 1);
            return Err(ConfigError {
                file: file.to_string(),
                line,
                column: None,
                message:
                    "http.public_url must be empty or an address like \"http://192.168.1.10:8080\""
                        .into(),
            });
        }
        if config.node.name.trim().is_empty() {
            let line = text
                .lines()
                .position(|l| l.trim_start().starts_with("name"))
                .map(|i| i + 1);
            return Err(ConfigError {
                file: file.to_string(),
                line,
                column: None,
                message: "node.name must not be empty; it is printed on receipts".into(),
            });
        }
        if !config.sink.postgres.is_empty() {
            let problem = check_postgres_url(&config.sink.postgres)
                .err()
                .or_else(|| {
                    (config.sink.batch_changes == 0)
                        .then(|| "sink.batch_changes must be at least 1".to_string())
                })
                .or_else(|| {
                    (config.sink.timeout_secs == 0)
                        .then(|| "sink.timeout_secs must be at least 1".to_string())
                });
            if let Some(problem) = problem {
                let line = text
                    .lines()
                    .position(|l| l.trim() == "[sink]")
                    .map(|i| i + 1);
                return Err(ConfigError {
                    file: file.to_string(),
                    line,
                    column: None,
                    message: format!("[sink] postgres: {problem}"),
                });
            }
        }
        if let Err((key, message)) = config.appointments.schedule() {
            // The key's line within the [appointments] section.
            let section = text
                .lines()
                .position(|l| l.trim() == "[appointments]")
                .unwrap_or(0);
            let line = text
                .lines()
                .enumerate()
                .skip(section)
                .find(|(_, l)| {
                    l.trim_start()
                        .strip_prefix(key)
                        .is_some_and(|rest| rest.trim_start().starts_with('='))
                })
                .map(|(i, _)| i + 1);
            return Err(ConfigError {
                file: file.to_string(),
                line,
                column: None,
                message,
            });
        }
        Ok(config)
    }

    pub fn division(&self) -> DivisionCode {
        DivisionCode::parse(&self.node.division).expect("checked when loaded")
    }

    /// The documented file `yizhan init` writes.
    pub fn render(&self) -> String {
        let synchronous = match self.store.synchronous {
            Synchronous::Full => "full",
            Synchronous::Normal => "normal",
        };
        format!(
            r#"# Yizhan node configuration. Unknown keys are refused, so a typo never goes unnoticed.
# Changes take effect when the node restarts.

[node]
# station | subdistrict | district | city
role = "{role}"
# 12 digits for a community station, 9 for a sub-district hall,
# 6 for a district (not ending in 00) or a city hall (ending in 00).
division = "{division}"
# Printed on receipts and notices.
name = {name}

[http]
# Address and port for the web UI and API. Port 0 picks a free port.
# Use 0.0.0.0:8080 so counter PCs on the station LAN can reach the node.
listen = "{listen}"
# Largest request body accepted, in bytes.
max_body_bytes = {max_body}
# true: serve HTTPS with a certificate made from the node key (no CA needed). Children
# then enroll with https://ADDR:PORT and check that key on every connection. Browsers
# will warn about the self-signed certificate; use it on halls reached across networks.
tls = {tls}
# Connections served at once; more wait until one closes. A hall holds one long-poll per
# child besides its staff's browsers.
max_connections = {max_connections}
# Seconds a connection has to send a whole request head, from when it opens or from its
# last answer: slow senders and idle connections are closed after it.
header_timeout_secs = {header_timeout}
# Seconds a page or API request may take, its body included.
request_timeout_secs = {request_timeout}
# The address phones on the station's network reach this node by, e.g.
# "http://192.168.1.10:8080": the QR code on every notice links to its /verify page there.
# Empty: the address the counter PC used (not reachable from a phone if it is 127.0.0.1).
public_url = {public_url}

[store]
# Automerge documents kept in memory (about 60 KB each for a case).
doc_cache = {doc_cache}
# Read-only database connections for parallel queries.
readers = {readers}
# "full": a confirmed write survives a power cut. "normal": faster, but the last
# writes may be lost on power loss (the database is never corrupted).
synchronous = "{synchronous}"

[sync]
# Seconds between sessions with the parent when nothing else starts one: the fallback.
# While the link is up a long-poll brings what the parent gets at once, and local writes
# go up within a second. The parent itself is set by `yizhan enroll`.
interval_secs = {interval}
# Bytes of changes per batch; each batch commits on its own, so a dropped link resumes
# after the last one. Smaller batches suit slow links that drop often.
batch_bytes = {batch_bytes}
# What this node takes from its children: the largest push, and the bytes of request
# bodies it reads at once from all of them (more wait, then are told to try again).
# Both are checked before a body is read; only enrolled children are read at all.
max_push_bytes = {max_push}
body_budget_bytes = {body_budget}
# Children's sessions served at once; more wait a moment, then are told when to come
# back. Children's long-polls (which keep their links live) are not counted.
max_sessions = {max_sessions}

[backup]
# Scheduled backups while the node serves, into this directory (best on another disk or
# a USB drive); empty turns them off. `yizhan backup DIR` takes one by hand.
dir = {backup_dir}
# Hours between backups, and how many to keep (older ones are deleted).
every_hours = {backup_every}
keep = {backup_keep}

[discovery]
# Advertise this node on the LAN (mDNS, _yizhan._tcp) and list the nodes it sees, so a
# technician finds the hall to enroll with. A hint only: identity comes from pinned keys.
enabled = {discovery_enabled}
port = {discovery_port}

[service]
# Working days allowed to rectify after a bad rating (差评整改), 1 to 120.
rectify_days = {rectify_days}
# At a hall: hours without news from a station (no change of its cases, no sync session)
# after which the station overview marks it, 1 to 8760.
stale_sync_hours = {stale_sync_hours}

[appointments]
# Applicants book a time slot for an item on the public page /appointments/book; the
# counter sees them on /appointments. Only working days of the calendar take bookings.
enabled = {appt_enabled}
# Opening hours (China Standard Time) and a break without slots ("" for none).
open = {appt_open}
close = {appt_close}
lunch = {appt_lunch}
# Saturday hours ("" for closed on Saturdays); holidays are closed, make-up working
# Saturdays have the weekday hours.
saturday = {appt_saturday}
# Minutes per slot; each opening period must split into whole slots.
slot_minutes = {appt_slot}
# Counters taking appointments, and bookings each takes per slot: a slot has
# counters × per_counter places.
counters = {appt_counters}
per_counter = {appt_per_counter}
# How many working days ahead one may book, today included.
days_ahead = {appt_days}

[sink]
# Stream this node's cases, events, items and nodes into PostgreSQL, exactly once and
# resumably (usually at the city hall; docs/sink.md describes the tables and views).
# A URL such as "postgres://yizhan:PASSWORD@db.example:5432/yizhan", or
# "postgres://yizhan@localhost/yizhan?host=/run/postgresql" for a Unix socket. There is
# no TLS: use a socket, loopback or a trusted LAN. Empty turns the sink off.
# `yizhan sink check` tests the connection and the schema.
postgres = {sink_postgres}
# Changes of this node's log per PostgreSQL transaction.
batch_changes = {sink_batch}
# Seconds to wait for PostgreSQL before trying again (the node keeps serving meanwhile).
timeout_secs = {sink_timeout}

[supervision]
# At a hall: which warnings open a supervision notice (督办) to the case's station by
# themselves: "off", "red" (past the committed deadline, or a step past its own limit)
# or "legal_breach" (past the legal deadline). One automatic notice per case and hall.
# Ignored at a station.
auto = "{supervision_auto}"
# Working days the station has to reply to an automatic notice, 1 to 60.
reply_days = {supervision_days}
"#,
            supervision_auto = self.supervision.auto.as_str(),
            supervision_days = self.supervision.reply_days,
            sink_postgres = toml_string(&self.sink.postgres),
            sink_batch = self.sink.batch_changes,
            sink_timeout = self.sink.timeout_secs,
            rectify_days = self.service.rectify_days,
            stale_sync_hours = self.service.stale_sync_hours,
            appt_enabled = self.appointments.enabled,
            appt_open = toml_string(&self.appointments.open),
            appt_close = toml_string(&self.appointments.close),
            appt_lunch = toml_string(&self.appointments.lunch),
            appt_saturday = toml_string(&self.appointments.saturday),
            appt_slot = self.appointments.slot_minutes,
            appt_counters = self.appointments.counters,
            appt_per_counter = self.appointments.per_counter,
            appt_days = self.appointments.days_ahead,
            interval = self.sync.interval_secs,
            batch_bytes = self.sync.batch_bytes,
            max_push = self.sync.max_push_bytes,
            body_budget = self.sync.body_budget_bytes,
            max_sessions = self.sync.max_sessions,
            max_connections = self.http.max_connections,
            header_timeout = self.http.header_timeout_secs,
            request_timeout = self.http.request_timeout_secs,
            backup_dir = toml_string(&self.backup.dir),
            backup_every = self.backup.every_hours,
            backup_keep = self.backup.keep,
            discovery_enabled = self.discovery.enabled,
            discovery_port = self.discovery.port,
            role = self.node.role.as_str(),
            division = self.node.division,
            name = toml_string(&self.node.name),
            listen = self.http.listen,
            max_body = self.http.max_body_bytes,
            tls = self.http.tls,
            public_url = toml_string(&self.http.public_url),
            doc_cache = self.store.doc_cache,
            readers = self.store.readers,
        )
    }
}

fn toml_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// How the writer syncs commits to disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// Every commit reaches the disk before it is confirmed (the default).
    Full,
    /// Commits may be lost on power loss (never corrupted); faster single writes.
    Normal,
}

#[cfg(test)]
mod tests {
    /// The example configs shipped in the .deb load and say what their names say.
    #[test]
    fn the_example_configs_load() {
        for (text, role) in [
            (
                include_str!("../../deploy/config/station.example.toml"),
                Role::Station,
            ),
            (
                include_str!("../../deploy/config/subdistrict.example.toml"),
                Role::Subdistrict,
            ),
            (
                include_str!("../../deploy/config/district.example.toml"),
                Role::District,
            ),
        ] {
            let config: Config = toml::from_str(text).unwrap();
            assert_eq!(config.node.role, role);
            assert_eq!(config.http.listen.to_string(), "0.0.0.0:8080");
            assert!(config.backup.dir.starts_with("/var/lib/yizhan"));
            // Those without an [appointments] section get the defaults, which are valid.
            assert!(config.appointments.schedule().is_ok());
        }
    }

    use super::*;

    fn config() -> Config {
        Config {
            node: NodeSection {
                role: Role::Station,
                division: "440304001001".into(),
                name: "园岭\"示范\"社区".into(),
            },
            http: HttpSection::default(),
            store: StoreSection::default(),
            sync: Default::default(),
            backup: Default::default(),
            discovery: Default::default(),
            service: Default::default(),
            appointments: Default::default(),
            sink: Default::default(),
            supervision: Default::default(),
        }
    }

    #[test]
    fn rendered_config_parses_back() {
        let config = config();
        let text = config.render();
        assert_eq!(Config::parse(&text, "yizhan.toml").unwrap(), config);
        assert!(text.contains("# station | subdistrict | district | city"));
    }

    #[test]
    fn errors_name_file_line_and_problem() {
        let good = config().render();
        let table = [
            (
                good.replace("listen = \"127.0.0.1:8080\"", "listen = \"localhost\""),
                "yizhan.toml:",
                "invalid socket address",
            ),
            (
                good.replace("readers = 4", "readers = 4\nreaderz = 2"),
                "yizhan.toml:",
                "unknown field `readerz`",
            ),
            (
                good.replace("role = \"station\"", "role = \"hall\""),
                "yizhan.toml:6:",
                "unknown variant `hall`",
            ),
            (
                good.replace("440304001001", "440304001"),
                "yizhan.toml:9:",
                "does not fit role station",
            ),
            (
                good.replace("440304001001", "44030400100X"),
                "yizhan.toml:9:",
                "not allowed",
            ),
            (
                good.replace("synchronous = \"full\"", "synchronous = full"),
                "yizhan.toml:",
                "invalid",
            ),
            (
                "[node]\nrole = \"station\"\n".to_string(),
                "yizhan.toml",
                "missing field `division`",
            ),
            (
                good.replace("close = \"18:00\"", "close = \"08:00\""),
                "yizhan.toml:",
                "appointments.close (08:00) must be later than appointments.open",
            ),
            (
                good.replace("open = \"09:00\"", "open = \"9 am\""),
                "yizhan.toml:",
                "appointments.open must be a time of day",
            ),
            (
                good.replace("slot_minutes = 30", "slot_minutes = 25"),
                "yizhan.toml:",
                "appointments.slot_minutes (25) must divide the opening period 09:00-12:00",
            ),
            (
                good.replace("counters = 2", "counters = 0"),
                "yizhan.toml:",
                "appointments.counters must be at least 1",
            ),
            (
                good.replace("lunch = \"12:00-14:00\"", "lunch = \"13:00-12:00\""),
                "yizhan.toml:",
                "appointments.lunch must be empty or a break",
            ),
            (
                good.replace("days_ahead = 7", "days_ahead = 0"),
                "yizhan.toml:",
                "appointments.days_ahead must be at least 1",
            ),
        ];
        for (text, location, needle) in table {
            let err = Config::parse(&text, "yizhan.toml").unwrap_err().to_string();
            assert!(err.starts_with(location), "{err}");
            assert!(err.contains(needle), "{err} should contain {needle}");
        }
    }

    #[test]
    fn divisions_must_fit_the_role() {
        let table = [
            (Role::Station, "440304001001", true),
            (Role::Station, "440304", false),
            (Role::Subdistrict, "440304001", true),
            (Role::District, "440304", true),
            (Role::District, "440300", false),
            (Role::City, "440300", true),
            (Role::City, "440304", false),
        ];
        for (role, code, ok) in table {
            assert_eq!(division_for_role(role, code).is_ok(), ok, "{role:?} {code}");
        }
    }
}
