//! The commands that link nodes: enrollment, revocation, status, catalog import and
//! sneakernet bundles.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use yizhan_sync::auth::NodeRole;
use yizhan_sync::domain::codes::DivisionCode;
use yizhan_sync::feed::{ParsedBatch, Pull, VersionVector};
use yizhan_sync::ids::{NodeId, Scope, hex};
use yizhan_sync::request::{EnrollRequest, EnrollResponse};
use yizhan_sync::wire::Message;

use crate::clock::rfc3339_cst;
use crate::data_dir::DataDir;
use crate::node::OpenNode;
use crate::store::Relation;

/// A short fingerprint of a public key, to compare by eye when enrolling.
pub fn fingerprint(public_key: &[u8; 32]) -> String {
    let digest = Sha256::digest(public_key);
    let text = hex(&digest[..8]);
    format!(
        "{}-{}-{}-{}",
        &text[0..4],
        &text[4..8],
        &text[8..12],
        &text[12..16]
    )
}

/// `yizhan enroll-code`: a one-time code for a child of this hall.
pub async fn enroll_code(
    node: &OpenNode,
    division: &str,
    role: NodeRole,
    valid_hours: u64,
    now_ms: u64,
) -> anyhow::Result<()> {
    let own_role: NodeRole = node.config.node.role.into();
    if !own_role.is_hall() {
        bail!("this node is a station; enrollment codes come from the hall above it");
    }
    let division =
        DivisionCode::parse(division).with_context(|| format!("--division {division}"))?;
    if division.level() != role.division_level() {
        bail!(
            "--division {division} does not fit --role {}",
            role.as_str()
        );
    }
    let own_division = node.config.division();
    if !division.is_within(&own_division) || division == own_division {
        bail!(
            "{division} is not below this hall's division {own_division}; enroll it from the hall above it"
        );
    }
    let code = enrollment_code();
    let expires = now_ms + valid_hours.clamp(1, 24 * 30) * 3_600_000;
    node.store
        .create_enroll_code(code.clone(), division.clone(), role, expires)
        .await?;
    println!(
        "enrollment code for a {} of {division}: {code}",
        role.as_str()
    );
    println!(
        "  valid until {} and for one enrollment only",
        rfc3339_cst(expires as i64)
    );
    println!(
        "  this hall: {} (node {}), key fingerprint {}",
        node.config.node.name,
        node.key.node_id(),
        fingerprint(&node.key.public_key())
    );
    println!("on the new node run: yizhan enroll http://THIS-HALL:PORT {code}");
    Ok(())
}

fn enrollment_code() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 12];
    crate::accounts::fill_random(&mut bytes);
    let chars: Vec<char> = bytes
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// `yizhan enroll URL CODE`: exchanges keys with the parent hall.
pub async fn enroll(node: &OpenNode, url: &str, code: &str) -> anyhow::Result<()> {
    let url = url.trim_end_matches('/');
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        bail!(
            "the parent's address must start with http:// or https:// (e.g. http://192.168.1.10:8080)"
        );
    }
    let own = node
        .key
        .identity(
            node.config.node.role.into(),
            node.config.division(),
            &node.config.node.name,
        )
        .record;
    let (own_node, own_key) = (own.node, own.public_key);
    let request = EnrollRequest {
        code: code.trim().to_string(),
        record: own,
    };
    let body = serde_json::to_vec(&serde_json_request(&request)).expect("serializes");
    // The hall's key is not known yet: TLS records the key the handshake proves, and the
    // answer must name that same key.
    let proved = Arc::new(Mutex::new(None));
    let response = crate::tls::http_client(
        crate::tls::Pin::Record(proved.clone()),
        std::time::Duration::from_secs(30),
    )
    .post(format!("{url}/sync/v1/enroll"))
    .header(reqwest::header::CONTENT_TYPE, "application/json")
    // The command line speaks English.
    .header(reqwest::header::ACCEPT_LANGUAGE, "en")
    .body(body)
    .send()
    .await
    .with_context(|| {
        format!("cannot reach {url}; check the address and that the hall is running")
    })?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if !status.is_success() {
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or(text);
        bail!("the hall refused the enrollment ({status}): {message}");
    }
    let answer: EnrollResponse =
        serde_json::from_str(&text).context("the hall's answer cannot be read")?;
    if !answer.parent.is_consistent() {
        bail!("the hall's record is inconsistent (its id does not match its key); not enrolling");
    }
    if url.starts_with("https://") {
        let proved = *proved.lock().unwrap_or_else(|e| e.into_inner());
        if proved != Some(answer.parent.public_key) {
            bail!(
                "the TLS connection was made with a different key than the hall's node key (someone may be in between); not enrolling"
            );
        }
    }
    node.store
        .pin_peer(
            answer.parent.clone(),
            Relation::Parent,
            Some(url.to_string()),
        )
        .await?;
    for record in answer.above {
        node.store
            .pin_peer(record, Relation::Ancestor, None)
            .await?;
    }
    // The serial-number segment the hall gave this node, for the numbers it issues.
    if let Some(segment) = answer
        .record
        .filter(|r| r.node == own_node && r.public_key == own_key)
        .and_then(|r| r.segment)
    {
        node.store.set_own_segment(segment).await?;
    }
    println!(
        "enrolled with {} ({} {}), node {}",
        answer.parent.name,
        answer.parent.role.as_str(),
        answer.parent.division,
        answer.parent.node
    );
    println!(
        "  its key fingerprint: {} (compare it with what `yizhan enroll-code` printed there)",
        fingerprint(&answer.parent.public_key)
    );
    println!("  this node syncs with it while `yizhan serve` runs");
    Ok(())
}

fn serde_json_request(request: &EnrollRequest) -> serde_json::Value {
    serde_json::json!({ "code": request.code, "record": request.record })
}

/// `yizhan revoke NODE`: refuses the node's later changes everywhere.
pub async fn revoke(
    node: &OpenNode,
    target: &str,
    reason: &str,
    now_ms: u64,
) -> anyhow::Result<()> {
    let id = NodeId::parse_hex(target).with_context(|| {
        format!("{target:?} is not a node id (32 hex digits; see `yizhan status`)")
    })?;
    let record = node.store.revoke(id, reason.to_string(), now_ms).await?;
    let kept = record
        .revoked
        .as_ref()
        .map(|r| r.accepted_up_to.clone())
        .unwrap_or_default();
    println!(
        "revoked {} ({} {})",
        record.name,
        record.role.as_str(),
        record.division
    );
    println!(
        "  its changes up to {kept:?} (epoch: seq) stay valid; later ones are refused wherever the revocation reaches"
    );
    Ok(())
}

/// `yizhan sync now`: asks the running node for a session with its parent and prints
/// how it ended.
pub async fn sync_now(node: &OpenNode, data_dir: &DataDir) -> anyhow::Result<()> {
    let has_parent = node
        .store
        .peers()
        .await?
        .iter()
        .any(|p| p.relation == Relation::Parent && p.url.is_some());
    if !has_parent {
        bail!(
            "this node has no parent to sync with; enroll it first with `yizhan enroll URL CODE` (the code comes from the hall's `yizhan enroll-code`)"
        );
    }
    println!("asking the running node for a session with its parent …");
    let outcome: crate::control::SyncOutcome = crate::control::ask(
        &data_dir.control_socket(),
        "sync-now",
        crate::control::SYNC_NOW_TIMEOUT + std::time::Duration::from_secs(5),
    )
    .await?;
    if !outcome.ok {
        bail!(
            "the session failed: {}; `yizhan status` shows the link and when it tries again",
            outcome.message
        );
    }
    println!("synced: {}", outcome.message);
    Ok(())
}

/// The link of a peer in words, from what the running node reports.
fn link_words(
    relation: Relation,
    live: &crate::control::LiveStatus,
    node: &NodeId,
) -> Option<String> {
    let when = |ms: u64| rfc3339_cst(ms as i64);
    match relation {
        Relation::Parent => {
            let parent = &live.parent;
            let state = if parent.live {
                "live (a long-poll is open: what the parent gets arrives at once)".to_string()
            } else if parent.up {
                "up".to_string()
            } else if let Some(failure) = &parent.failure {
                format!(
                    "{failure}; next attempt in {:.0} s",
                    parent.retry_delay_ms.unwrap_or(0) as f64 / 1000.0
                )
            } else {
                "no session yet".to_string()
            };
            let contact = parent
                .last_connected_ms
                .map_or("never since start".to_string(), when);
            Some(format!("link: {state}; last contact {contact}"))
        }
        Relation::Child => {
            let hex = node.to_hex();
            let child = live
                .children
                .iter()
                .find(|(id, _)| *id == hex)
                .map(|(_, c)| c);
            Some(match child {
                Some(c) if c.live => format!(
                    "link: live (holds a long-poll here); last contact {}",
                    when(c.last_connected_ms)
                ),
                Some(c) => format!("link: not live; last contact {}", when(c.last_connected_ms)),
                None => "link: not live; no contact since this node started".to_string(),
            })
        }
        _ => None,
    }
}

/// `yizhan status`.
pub async fn status(node: &OpenNode, data_dir: &DataDir) -> anyhow::Result<()> {
    let config = &node.config;
    // The live part comes from the running node, if it runs.
    let live: Option<crate::control::LiveStatus> = crate::control::ask(
        &data_dir.control_socket(),
        "status",
        std::time::Duration::from_secs(3),
    )
    .await
    .ok();
    println!(
        "{} — {} {} (node {})",
        config.node.name,
        config.node.role.as_str(),
        config.node.division,
        node.key.node_id()
    );
    println!(
        "  version {}, calendar {}",
        env!("CARGO_PKG_VERSION"),
        node.store.calendar().version()
    );
    println!(
        "  database {} ({:.1} MB; {} free on its disk)",
        node.store.path().display(),
        node.store.disk_bytes() as f64 / 1e6,
        crate::backup::free_bytes(node.store.path())
            .map_or("?".to_string(), |b| format!("{:.0} MB", b as f64 / 1e6))
    );
    let (_, items) = node
        .store
        .list_items(crate::store::ItemFilter {
            limit: 1,
            ..Default::default()
        })
        .await?;
    println!("  catalog items: {items}");
    let cases = node.store.case_count().await?;
    println!("  cases: {cases}");
    let vector = node.store.vector().await?;
    let changes: u64 = vector.iter().map(|(_, _, seq)| seq).sum();
    println!(
        "  change runs: {} (about {changes} changes by sequence)",
        vector.len()
    );
    println!("peers:");
    for peer in node.store.peers().await? {
        if peer.relation == Relation::Own {
            continue;
        }
        let state = match (&peer.last_ok_ms, &peer.last_error_ms) {
            (Some(ok), Some(err)) if err > ok => format!(
                "failing since {}: {}",
                rfc3339_cst(*err),
                peer.last_error.clone().unwrap_or_default()
            ),
            (Some(ok), _) => format!("last sync {}", rfc3339_cst(*ok)),
            (None, Some(err)) => format!(
                "never synced; last error {}: {}",
                rfc3339_cst(*err),
                peer.last_error.clone().unwrap_or_default()
            ),
            (None, None) => "no session yet".to_string(),
        };
        println!(
            "  {:<8} {} {} {} {}{}",
            peer.relation.as_str(),
            peer.record.node,
            peer.record.role.as_str(),
            peer.record.division,
            peer.url.clone().unwrap_or_default(),
            if peer.record.revoked.is_some() {
                " REVOKED"
            } else {
                ""
            }
        );
        println!("           {state}");
        if let Some(words) = live
            .as_ref()
            .and_then(|live| link_words(peer.relation, live, &peer.record.node))
        {
            println!("           {words}");
        }
        let direction = if peer.relation == Relation::Parent {
            "pending up"
        } else {
            "pending down"
        };
        if let Some(ms) = peer.clock_offset_ms {
            println!(
                "           clock offset: {:+.1} s (its clock minus this one's)",
                ms as f64 / 1000.0
            );
        }
        match peer.pending {
            Some((n, at)) => println!(
                "           {direction}: {n} changes (against what it held at {})",
                rfc3339_cst(at)
            ),
            None => println!("           {direction}: not known until it syncs"),
        }
    }
    if live.is_none() {
        println!(
            "(the node is not running here, or its control socket did not answer: links are shown as last recorded)"
        );
    }
    if node.config.backup.dir.is_empty() {
        println!("scheduled backups: off (set [backup] dir in the config)");
    } else {
        match crate::backup::newest(Path::new(&node.config.backup.dir)) {
            Some((archive, at)) => {
                let hours = at.elapsed().map_or(0, |d| d.as_secs() / 3600);
                println!("last backup: {} ({hours} h ago)", archive.display());
            }
            None => println!("last backup: none yet in {}", node.config.backup.dir),
        }
    }
    let (refused, waiting) = node.store.peer_refusal_counts().await?;
    if refused + waiting > 0 {
        println!("changes sent and refused by peers: {refused}; waiting at peers: {waiting}");
        for r in node.store.peer_refusals(10).await? {
            println!(
                "  {} by {}: {} #{} {} {}: {}",
                rfc3339_cst(r.noted_ms),
                r.peer,
                r.origin,
                r.seq,
                r.doc_id,
                if r.waiting { "waits" } else { "refused" },
                r.reason
            );
        }
    }
    let underived = node.store.underived_count().await?;
    if underived > 0 {
        println!(
            "documents whose rows could not be derived: {underived} (see the log; `yizhan rebuild` derives them again)"
        );
    }
    sink_status(node).await;
    let quarantined = node.store.quarantine_count().await?;
    println!("quarantined changes: {quarantined}");
    for q in node.store.quarantined(10).await? {
        println!(
            "  {} {} #{} {}: {}",
            rfc3339_cst(q.received_ms),
            q.origin,
            q.seq,
            q.scope,
            q.reason
        );
    }
    Ok(())
}

/// The sink's lines of `yizhan status`: asks PostgreSQL where the sink is (briefly; a
/// PostgreSQL that does not answer is reported, not waited for).
async fn sink_status(node: &OpenNode) {
    let url = &node.config.sink.postgres;
    if url.is_empty() {
        println!("PostgreSQL sink: off (set [sink] postgres in the config)");
        return;
    }
    let timeout = std::time::Duration::from_secs(node.config.sink.timeout_secs.clamp(1, 5));
    match crate::sink::report(&node.store, url, timeout).await {
        Ok(report) => match (report.lag(), &report.position) {
            (Some(lag), Some(position)) => println!(
                "PostgreSQL sink: {lag} changes behind (PostgreSQL holds up to {} of {}; schema {})",
                position.local_seq, report.head, report.schema
            ),
            _ => println!(
                "PostgreSQL sink: reachable, no position for this node's log yet ({} changes to write; schema {} of {})",
                report.head, report.schema, report.schema_known
            ),
        },
        Err(e) => println!(
            "PostgreSQL sink: cannot reach {}: {}",
            crate::config::redact_postgres_url(url),
            e.detail()
        ),
    }
}

/// `yizhan sink check`: the connection, the schema and the sink's position.
pub async fn sink_check(node: &OpenNode) -> anyhow::Result<()> {
    let url = &node.config.sink.postgres;
    if url.is_empty() {
        bail!("no [sink] postgres URL in the config; set one (docs/sink.md) and run this again");
    }
    let timeout = std::time::Duration::from_secs(node.config.sink.timeout_secs.max(1));
    let report = crate::sink::report(&node.store, url, timeout)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.detail()))
        .with_context(|| format!("checking {}", crate::config::redact_postgres_url(url)))?;
    println!(
        "PostgreSQL {} at {}: connected",
        report.server_version,
        crate::config::redact_postgres_url(url)
    );
    match report.schema.cmp(&report.schema_known) {
        std::cmp::Ordering::Equal => println!("  schema: version {}, current", report.schema),
        std::cmp::Ordering::Less => println!(
            "  schema: version {} of {}; the sink applies the rest when the node serves",
            report.schema, report.schema_known
        ),
        std::cmp::Ordering::Greater => bail!(
            "the schema in PostgreSQL (version {}) is newer than this yizhan knows ({}); upgrade yizhan",
            report.schema,
            report.schema_known
        ),
    }
    match (&report.position, report.lag()) {
        (Some(position), _) if position.node_id != report.identity.node_id => bail!(
            "this PostgreSQL database is fed by node {}, not by this node ({}); give each feeding node its own database",
            position.node_id,
            report.identity.node_id
        ),
        (Some(position), Some(lag)) => println!(
            "  position: {} of {} in this node's change log: {lag} changes behind",
            position.local_seq, report.head
        ),
        (Some(_), None) => println!(
            "  position: from an earlier epoch or rebuild of this node; the sink writes the whole feed again ({} changes)",
            report.head
        ),
        (None, _) => println!(
            "  position: none yet; the sink writes the whole feed ({} changes) when the node serves",
            report.head
        ),
    }
    Ok(())
}

/// `yizhan sink verify`: PostgreSQL's rows against the node's, row by row.
pub async fn sink_verify(node: &OpenNode) -> anyhow::Result<()> {
    let url = &node.config.sink.postgres;
    if url.is_empty() {
        bail!("no [sink] postgres URL in the config; set one (docs/sink.md) and run this again");
    }
    let timeout = std::time::Duration::from_secs(node.config.sink.timeout_secs.max(1));
    let postgres = crate::store::postgres::Postgres::connect(url, timeout)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.detail()))?;
    let (in_postgres, duplicated) = postgres
        .mirror_rows()
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.detail()))?;
    let on_node = node.store.mirror_rows().await?;
    if let Some(position) = postgres
        .position()
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.detail()))?
    {
        println!(
            "PostgreSQL holds this node's feed up to {} of {}",
            position.local_seq,
            node.store.feed_head().await?
        );
    }
    let differences = in_postgres.differences(&on_node, 20);
    for line in &duplicated {
        println!("duplicated in PostgreSQL: {line}");
    }
    for line in &differences {
        println!("{line}");
    }
    if !differences.is_empty() || !duplicated.is_empty() {
        bail!(
            "PostgreSQL does not hold exactly this node's rows (is the sink still catching up? see `yizhan status`)"
        );
    }
    let counts: Vec<String> = on_node
        .counts()
        .iter()
        .map(|(table, n)| format!("{table} {n}"))
        .collect();
    println!(
        "PostgreSQL holds exactly this node's rows, none duplicated: {}",
        counts.join(", ")
    );
    Ok(())
}

/// `yizhan import-catalog FILE`: validates every item, then publishes the new and
/// changed ones in this hall's catalog.
/// `yizhan publish-calendar FILE`: a hall publishes a calendar year.
pub async fn publish_calendar(node: &OpenNode, file: &Path, now_ms: u64) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let year = node
        .store
        .publish_calendar_year(text, now_ms)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    println!(
        "published calendar year {} (version {}, {}) as {}; deadlines now count on {}",
        year.year,
        year.version,
        if year.official {
            "official"
        } else {
            "provisional"
        },
        year.doc_id,
        node.store.calendar().version()
    );
    Ok(())
}

pub async fn import_catalog(node: &OpenNode, file: &Path, now_ms: u64) -> anyhow::Result<()> {
    let items = read_catalog_file(file)?;
    let counts = node
        .store
        .import_catalog(items, now_ms)
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e}; nothing was published", file.display()))?;
    report_import(file, counts, &Scope::catalog(&node.config.division()));
    Ok(())
}

/// `yizhan import-catalog FILE` beside a serving node: the file is read and checked here
/// first (every item valid), then its items are sent over the control socket, and the
/// node publishes them through its own writer, all or nothing.
pub async fn import_catalog_live(data_dir: &DataDir, file: &Path) -> anyhow::Result<()> {
    let items = read_catalog_file(file)?;
    let body = serde_json::to_vec(&items).context("the catalog's items as JSON")?;
    let outcome: crate::control::ImportOutcome = crate::control::ask_with(
        &data_dir.control_socket(),
        "import-catalog",
        &body,
        std::time::Duration::from_secs(120),
    )
    .await?;
    if !outcome.ok {
        bail!(
            "{}: {}; nothing was published",
            file.display(),
            outcome.message
        );
    }
    let counts: crate::store::ImportCounts = serde_json::from_str(&outcome.message)
        .with_context(|| format!("the running node answered {:?}", outcome.message))?;
    let config = crate::config::Config::load(&data_dir.config())?;
    report_import(file, counts, &Scope::catalog(&config.division()));
    Ok(())
}

fn report_import(file: &Path, counts: crate::store::ImportCounts, scope: &Scope) {
    println!(
        "catalog {}: {} new, {} changed, {} unchanged items published in {scope}",
        file.display(),
        counts.new,
        counts.changed,
        counts.unchanged
    );
}

/// The items of a catalog file: an .xlsx workbook, CSV files (a folder holding them, or
/// one of them, whose folder is read), or the TOML catalog file; every problem is
/// reported and none of it is returned unless the whole file is valid.
fn read_catalog_file(file: &Path) -> anyhow::Result<Vec<yizhan_sync::domain::item::Item>> {
    use crate::catalog::sheets;
    let extension = file
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let sheet_problems = |problems: Vec<sheets::CellProblem>| {
        let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
        anyhow::anyhow!(
            "{}: {} problems; nothing was published:\n  {}",
            file.display(),
            lines.len(),
            lines.join("\n  ")
        )
    };
    if file.is_dir() || extension.as_deref() == Some("csv") {
        let dir = if file.is_dir() {
            file
        } else {
            file.parent().unwrap_or(Path::new("."))
        };
        return sheets::read_csv_dir(dir).map_err(sheet_problems);
    }
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    if extension.as_deref() == Some("xlsx") {
        return sheets::read_xlsx(&bytes).map_err(sheet_problems);
    }
    let text = String::from_utf8(bytes)
        .with_context(|| format!("{} is not UTF-8 text (nor .xlsx or .csv)", file.display()))?;
    crate::catalog::parse(&text).map_err(|e| match e {
        crate::catalog::CatalogFileError::Syntax { line, message } => {
            anyhow::anyhow!("{}:{line}: {message}", file.display())
        }
        problems => anyhow::anyhow!("{}: {problems}", file.display()),
    })
}

/// `yizhan export-bundle --for NODE FILE`: everything the node may read, signed by this
/// node, for a technician to carry to it.
pub async fn export_bundle(node: &OpenNode, target: &str, file: &Path) -> anyhow::Result<()> {
    let id = NodeId::parse_hex(target).with_context(|| {
        format!("{target:?} is not a node id (32 hex digits; see `yizhan status`)")
    })?;
    let registry = node.store.registry().await?;
    let record = registry
        .get(&id)
        .cloned()
        .with_context(|| format!("node {id} is not known here"))?;
    let pull = Pull {
        scopes: Vec::new(),
        have: VersionVector::default(),
        max_bytes: u32::MAX,
    };
    let batch = node.store.serve_pull(record.clone(), pull).await?;
    let body = batch.encode();
    let out = yizhan_sync::bundle::Bundle::write(node.key.node_id(), node.key.sign(&body), &body);
    std::fs::write(file, &out).with_context(|| format!("cannot write {}", file.display()))?;
    println!(
        "wrote {} changes for {} ({} {}) to {} ({:.1} MB)",
        batch.envelopes.len(),
        record.name,
        record.role.as_str(),
        record.division,
        file.display(),
        out.len() as f64 / 1e6
    );
    Ok(())
}

/// `yizhan import-bundle FILE`: applies a bundle exactly as a sync batch.
pub async fn import_bundle(node: &OpenNode, file: &Path) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let bundle = yizhan_sync::bundle::Bundle::parse(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
    let registry = node.store.registry().await?;
    let sender = registry.get(&bundle.from).with_context(|| {
        format!(
            "the bundle comes from node {}, which is not known here",
            bundle.from
        )
    })?;
    if !bundle.verify(&sender.public_key) {
        bail!(
            "the bundle's signature does not match {}'s key; it was altered",
            sender.name
        );
    }
    let body = bundle.body;
    let parsed =
        ParsedBatch::decode(body).map_err(|e| anyhow::anyhow!("the bundle cannot be read: {e}"))?;
    let total = parsed.batch.envelopes.len();
    let ack = node.store.receive_bundle(parsed).await?;
    println!(
        "imported {} from {}: {} applied, {} already here, {} waiting for keys, {} quarantined in all",
        file.display(),
        sender.name,
        ack.applied,
        ack.duplicates,
        ack.deferred,
        ack.quarantined
    );
    if ack.applied == 0 && ack.duplicates == 0 && total > 0 {
        bail!(
            "nothing in the bundle could be applied; see `yizhan status` for quarantined changes"
        );
    }
    Ok(())
}
