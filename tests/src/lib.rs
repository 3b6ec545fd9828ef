//! Harness for tests that run real `yizhan` processes: start one on a free loopback port
//! with its own data dir, talk to it over HTTP, kill it, run CLI commands against its dir.
//!
//! Every wait is bounded; a node that does not come up in time fails the test with what it
//! printed.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod proxy;
pub mod visitor;
pub mod webdriver;

/// How long a node may take to print `listening on`.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The `yizhan` binary under test. Cargo builds this crate's binary target before its
/// integration tests and puts it beside their `deps/` directory.
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("tests run from target/<profile>/deps");
    let binary = profile_dir.join(format!("yizhan-test-node{}", std::env::consts::EXE_SUFFIX));
    assert!(
        binary.exists(),
        "{} is missing; run the tests with `cargo test --workspace`",
        binary.display()
    );
    binary
}

/// Runs a `yizhan` command to completion.
pub fn run(args: &[&str]) -> Output {
    Command::new(binary())
        .args(args)
        .env("YIZHAN_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("the yizhan binary runs")
}

/// Runs a command that must succeed; returns its stdout.
pub fn run_ok(args: &[&str]) -> String {
    let output = run(args);
    assert!(
        output.status.success(),
        "yizhan {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

/// A running node process.
#[derive(Debug)]
pub struct Node {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Every line the node printed on stdout up to `listening on`.
    pub printed: Vec<String>,
    lines: Receiver<String>,
}

impl Node {
    /// `yizhan demo` on a free port in `data_dir`.
    pub fn demo(data_dir: &Path) -> Node {
        Node::start(&[
            "demo",
            "--data-dir",
            path(data_dir),
            "--listen",
            "127.0.0.1:0",
        ])
    }

    /// `yizhan demo` as [`Node::demo`] does, with extra environment variables (an injected
    /// clock: `YIZHAN_CLOCK_FILE`).
    pub fn demo_env(data_dir: &Path, env: &[(&str, &str)]) -> Node {
        Node::start_env(
            &[
                "demo",
                "--data-dir",
                path(data_dir),
                "--listen",
                "127.0.0.1:0",
            ],
            "warn",
            Stdio::inherit(),
            env,
        )
    }

    /// `yizhan serve` on a free port for an initialized `data_dir`.
    pub fn serve(data_dir: &Path) -> Node {
        Node::start(&[
            "serve",
            "--data-dir",
            path(data_dir),
            "--listen",
            "127.0.0.1:0",
        ])
    }

    /// `yizhan serve` for `data_dir` if it starts; otherwise what it printed on stderr
    /// before it exited (why it refused to start).
    pub fn try_serve(data_dir: &Path) -> Result<Node, String> {
        let mut child = Command::new(binary())
            .args([
                "serve",
                "--data-dir",
                path(data_dir),
                "--listen",
                "127.0.0.1:0",
            ])
            .env("YIZHAN_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the yizhan binary starts");
        let stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let errors = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
            text
        });
        let (sender, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut printed = Vec::new();
        loop {
            match lines.recv_timeout(START_TIMEOUT) {
                Ok(line) => {
                    let base = line.strip_prefix("listening on ").map(str::to_string);
                    printed.push(line);
                    if let Some(base) = base {
                        return Ok(Node {
                            child,
                            base,
                            printed,
                            lines,
                        });
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = child.wait();
                    return Err(errors.join().unwrap_or_default());
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("yizhan serve neither started nor exited; it printed {printed:?}");
                }
            }
        }
    }

    /// `yizhan serve` again on the address `previous` had, as a restarted node keeps its
    /// address (its children know it by that URL).
    pub fn restart(data_dir: &Path, previous: &str) -> Node {
        let addr = previous.trim_start_matches("http://");
        Node::start(&["serve", "--data-dir", path(data_dir), "--listen", addr])
    }

    /// `yizhan demo` with every log line (debug level) written to `log`.
    pub fn demo_logged(data_dir: &Path, log: &Path) -> Node {
        let file = std::fs::File::create(log).expect("log file");
        Node::start_with(
            &[
                "demo",
                "--data-dir",
                path(data_dir),
                "--listen",
                "127.0.0.1:0",
            ],
            "debug",
            Stdio::from(file),
        )
    }

    /// The password the demo printed for `user`.
    pub fn demo_password(&self, user: &str) -> String {
        self.printed
            .iter()
            .find_map(|l| {
                let words: Vec<&str> = l.split_whitespace().collect();
                (words.len() == 3 && words[0] == user).then(|| words[2].to_string())
            })
            .expect("the demo prints each account's password")
    }

    fn start(args: &[&str]) -> Node {
        Node::start_with(args, "warn", Stdio::inherit())
    }

    /// `yizhan serve` again on the address `previous` had, with its pages and API
    /// counting time `days` days ahead of the system clock (`YIZHAN_CLOCK_OFFSET_DAYS`):
    /// deadlines pass without waiting. Its links fail on request times, as with any
    /// clock set wrong: read what it holds, do not sync it any more.
    pub fn restart_days_later(data_dir: &Path, previous: &str, days: u32) -> Node {
        let addr = previous.trim_start_matches("http://");
        Node::start_env(
            &["serve", "--data-dir", path(data_dir), "--listen", addr],
            "warn",
            Stdio::inherit(),
            &[("YIZHAN_CLOCK_OFFSET_DAYS", &days.to_string())],
        )
    }

    fn start_with(args: &[&str], log_level: &str, stderr: Stdio) -> Node {
        Node::start_env(args, log_level, stderr, &[])
    }

    fn start_env(args: &[&str], log_level: &str, stderr: Stdio, env: &[(&str, &str)]) -> Node {
        let mut child = Command::new(binary())
            .args(args)
            .envs(env.iter().copied())
            .env("YIZHAN_LOG", log_level)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("the yizhan binary starts");
        let stdout = child.stdout.take().expect("piped");
        let (sender, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + START_TIMEOUT;
        let mut printed = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    let base = line.strip_prefix("listening on ").map(str::to_string);
                    printed.push(line);
                    if let Some(base) = base {
                        return Node {
                            child,
                            base,
                            printed,
                            lines,
                        };
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("yizhan {args:?} did not start listening; it printed {printed:?}");
                }
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The value printed after `prefix` on one of the start-up lines.
    pub fn printed_after(&self, prefix: &str) -> Option<String> {
        self.printed.iter().find_map(|l| {
            l.trim_start()
                .strip_prefix(prefix)
                .map(|v| v.trim().to_string())
        })
    }

    /// The node's process id (an `exec` keeps it).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process with SIGKILL: no shutdown code runs.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Lines printed after start-up (drained without waiting).
    pub fn later_output(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn path(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// An HTTP client that returns 4xx and 5xx answers instead of treating them as errors,
/// with a timeout on every request.
pub fn client() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

/// A response: status and JSON body (`Null` when the body is not JSON).
pub type Answer = (u16, Value);

/// GET with an optional bearer token.
pub fn get(agent: &ureq::Agent, url: &str, token: Option<&str>) -> Result<Answer, ureq::Error> {
    let mut request = agent.get(url);
    if let Some(token) = token {
        request = request.header("Authorization", &format!("Bearer {token}"));
    }
    let mut response = request.call()?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .read_json::<Value>()
        .unwrap_or(Value::Null);
    Ok((status, body))
}

/// POST JSON with an optional bearer token.
pub fn post(
    agent: &ureq::Agent,
    url: &str,
    token: Option<&str>,
    body: &Value,
) -> Result<Answer, ureq::Error> {
    let mut request = agent.post(url);
    if let Some(token) = token {
        request = request.header("Authorization", &format!("Bearer {token}"));
    }
    let mut response = request.send_json(body)?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .read_json::<Value>()
        .unwrap_or(Value::Null);
    Ok((status, body))
}

/// A small deterministic random number generator (xorshift), so failures replay.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `range`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next_u64() % (high - low).max(1)
    }
}

/// Every row of the materialized tables, as text, in primary-key order.
pub fn materialized_rows(db: &Path) -> Vec<String> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("database opens");
    let mut rows = Vec::new();
    for (table, order) in [
        ("items", "id"),
        ("cases", "id"),
        ("case_events", "case_id, event_id"),
    ] {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM {table} ORDER BY {order}"))
            .expect("table exists");
        let columns = stmt.column_count();
        let mut result = stmt.query([]).expect("query runs");
        while let Some(row) = result.next().expect("rows read") {
            let values: Vec<String> = (0..columns)
                .map(|i| format!("{:?}", row.get_ref(i).expect("value")))
                .collect();
            rows.push(format!("{table}: {}", values.join(" | ")));
        }
    }
    rows
}

/// A new temporary directory for a node.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("yizhan-test-")
        .tempdir()
        .expect("temporary directory")
}

/// Where a data dir keeps its database.
pub fn database(data_dir: &Path) -> PathBuf {
    data_dir.join("yizhan.db")
}

/// A document as the node in `data_dir` holds it, read from its database beside the
/// running node: its snapshot (empty for a case a station made with fewer than 16
/// changes) and the changes after it, as the store loads it (`store::snapshot`).
pub fn held_document(data_dir: &Path, id: &str) -> automerge::Automerge {
    let conn = rusqlite::Connection::open_with_flags(
        database(data_dir),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let (snapshot, upto): (Vec<u8>, i64) = conn
        .query_row(
            "SELECT bytes, upto FROM documents WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let mut document = automerge::Automerge::load(&snapshot).unwrap();
    let mut later = conn
        .prepare(
            "SELECT bytes FROM changes WHERE doc_id = ?1 AND local_seq > ?2 AND refused IS NULL
             ORDER BY local_seq",
        )
        .unwrap();
    let changes = later
        .query_map(rusqlite::params![id, upto], |r| r.get::<_, Vec<u8>>(0))
        .unwrap();
    for change in changes {
        document.load_incremental(&change.unwrap()).unwrap();
    }
    document
}

/// `yizhan init` in `dir`; returns the admin password.
pub fn init_node(dir: &Path, role: &str, division: &str, name: &str) -> String {
    let out = run_ok(&[
        "init",
        "--role",
        role,
        "--division",
        division,
        "--name",
        name,
        "--data-dir",
        path(dir),
        "--listen",
        "127.0.0.1:0",
    ]);
    out.lines()
        .find_map(|l| l.trim().strip_prefix("password: "))
        .expect("init prints the password")
        .to_string()
}

/// Replaces `key = …` in the config file of `dir` (the first such line).
pub fn set_config(dir: &Path, key: &str, value: &str) {
    let file = dir.join("yizhan.toml");
    let text = std::fs::read_to_string(&file).expect("config exists");
    let mut done = false;
    let lines: Vec<String> = text
        .lines()
        .map(|line| {
            if !done && line.trim_start().starts_with(&format!("{key} =")) {
                done = true;
                format!("{key} = {value}")
            } else {
                line.to_string()
            }
        })
        .collect();
    assert!(done, "{key} is in the config");
    std::fs::write(&file, lines.join("\n") + "\n").expect("config written");
}

/// A new API token of `admin` on the node in `dir`.
pub fn admin_token(dir: &Path) -> String {
    let out = run_ok(&[
        "token",
        "create",
        "--user",
        "admin",
        "--data-dir",
        path(dir),
    ]);
    out.lines()
        .find(|l| l.starts_with("yz_"))
        .expect("a token is printed")
        .to_string()
}

/// A one-time enrollment code from the hall in `hall`.
pub fn enroll_code(hall: &Path, division: &str, role: &str) -> String {
    let out = run_ok(&[
        "enroll-code",
        "--division",
        division,
        "--role",
        role,
        "--data-dir",
        path(hall),
    ]);
    out.lines()
        .find_map(|l| {
            l.strip_prefix("enrollment code for ")
                .and_then(|rest| rest.rsplit(": ").next())
        })
        .expect("a code is printed")
        .trim()
        .to_string()
}

/// Polls `check` until it returns `Some`, for at most `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// PATCH JSON with a bearer token.
pub fn patch(
    agent: &ureq::Agent,
    url: &str,
    token: Option<&str>,
    body: &Value,
) -> Result<Answer, ureq::Error> {
    let mut request = agent.patch(url);
    if let Some(token) = token {
        request = request.header("Authorization", &format!("Bearer {token}"));
    }
    let mut response = request.send_json(body)?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .read_json::<Value>()
        .unwrap_or(Value::Null);
    Ok((status, body))
}

/// PUT JSON with a bearer token.
pub fn put(
    agent: &ureq::Agent,
    url: &str,
    token: Option<&str>,
    body: &Value,
) -> Result<Answer, ureq::Error> {
    let mut request = agent.put(url);
    if let Some(token) = token {
        request = request.header("Authorization", &format!("Bearer {token}"));
    }
    let mut response = request.send_json(body)?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .read_json::<Value>()
        .unwrap_or(Value::Null);
    Ok((status, body))
}

/// POST raw bytes with headers; returns status and body bytes.
pub fn post_bytes(
    agent: &ureq::Agent,
    url: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
) -> Result<(u16, Vec<u8>), ureq::Error> {
    let mut request = agent.post(url);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let mut response = request.send(&body[..])?;
    let status = response.status().as_u16();
    let bytes = response.body_mut().read_to_vec()?;
    Ok((status, bytes))
}

/// Receives an application for `item` with every required material through the API and
/// accepts it; returns the case id.
pub fn accepted_case(base: &str, token: &str, item: &str, name: &str) -> String {
    let http = client();
    let (_, found) = get(&http, &format!("{base}/api/v1/items/{item}"), None).unwrap();
    let materials: Vec<Value> = found["materials"]
        .as_array()
        .expect("the item exists here")
        .iter()
        .filter(|m| m["required"] == true)
        .map(|m| serde_json::json!({"name": m["name"], "originals": m["originals"], "copies": m["copies"]}))
        .collect();
    let body = serde_json::json!({
        "item": item,
        "applicant": {"type": "natural_person", "name": name, "id_number": "11010519491231002X", "phone": "13800138000"},
        "materials": materials,
    });
    let (status, case) = post(&http, &format!("{base}/api/v1/cases"), Some(token), &body).unwrap();
    assert_eq!(status, 201, "{case}");
    let id = case["id"].as_str().unwrap().to_string();
    let (status, accepted) = post(
        &http,
        &format!("{base}/api/v1/cases/{id}/events"),
        Some(token),
        &serde_json::json!({"kind": "accept"}),
    )
    .unwrap();
    assert_eq!(status, 200, "{accepted}");
    id
}

/// POSTs a `/sync/v1` request to `base` signed by `sender`'s node key, as a node does (the
/// signed-request format of `yizhan_sync::request`): the way a test sends what a hostile
/// node would.
pub fn post_signed(
    base: &str,
    sender: &yizhan_node::identity::NodeKey,
    path: &'static str,
    body: Vec<u8>,
) -> (u16, Vec<u8>) {
    use yizhan_sync::request::RequestClaim;
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_millis() as i64;
    // Never the same twice: a node refuses a nonce it has seen.
    static SENT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = SENT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nonce = ((time as u128) << 32 | u128::from(n)).to_le_bytes();
    let claim = RequestClaim::for_body(sender.node_id(), time, nonce, &body);
    let signature = sender.sign(&claim.message("POST", path));
    let mut headers: Vec<(&str, String)> = claim.headers(&signature).into();
    headers.push(("content-type", "application/x-yizhan-sync".to_string()));
    post_bytes(&client(), &format!("{base}{path}"), &headers, body).expect("the node answers")
}

/// Sends case `id` from the station at `station` to the hall whose data dir is `hall_dir`
/// (转办 to the hall's node) and waits until the hall at `hall` holds the transfer: a hall
/// acts only on the cases a station sent it.
pub fn send_to_hall(
    station: &str,
    station_token: &str,
    id: &str,
    hall_dir: &Path,
    hall: &str,
    hall_token: &str,
) {
    let hall_node = yizhan_node::identity::NodeKey::load(&hall_dir.join("node.key"))
        .expect("the hall's key")
        .node_id()
        .to_hex();
    let http = client();
    let (status, body) = post(
        &http,
        &format!("{station}/api/v1/cases/{id}/events"),
        Some(station_token),
        &serde_json::json!({"kind": "transfer", "to": "上级大厅", "reason": "需上级审批", "to_node": hall_node}),
    )
    .expect("the station answers");
    assert_eq!(status, 200, "{body}");
    wait_for("the transfer at the hall", Duration::from_secs(60), || {
        let (status, case) = get(
            &http,
            &format!("{hall}/api/v1/cases/{id}"),
            Some(hall_token),
        )
        .ok()?;
        (status == 200 && case["holder_node"] == hall_node.as_str()).then_some(())
    });
}

/// Adds an account at the counter 1号窗口 with `yizhan user add` (the node stopped) and
/// returns its password.
pub fn add_user(dir: &Path, username: &str, role: &str) -> String {
    let out = run_ok(&[
        "user",
        "add",
        username,
        "--role",
        role,
        "--counter",
        "1号窗口",
        "--data-dir",
        path(dir),
    ]);
    out.lines()
        .find_map(|l| l.trim().strip_prefix("password: "))
        .expect("a password is printed")
        .to_string()
}

/// Signs `user` in on `node`'s sign-in page and waits for the greeting.
pub fn sign_in(browser: &webdriver::Browser, node: &Node, user: &str, password: &str) {
    browser.goto(&node.url("/signin"));
    browser.find("#username").type_text(user);
    browser.find("#password").type_text(password);
    browser.find("#signin-submit").click();
    browser.wait_text("#greeting", |t| !t.is_empty());
}
