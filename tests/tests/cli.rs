//! The command line: init, accounts, tokens, and clear errors with the fix.

use std::fs;
use std::net::TcpListener;

use yizhan_tests::{Node, client, get, run, run_ok, temp_dir};

fn dir_arg(dir: &std::path::Path) -> &str {
    dir.to_str().unwrap()
}

fn stderr_of(args: &[&str]) -> String {
    let output = run(args);
    assert!(!output.status.success(), "yizhan {args:?} should fail");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn init_creates_a_node_that_serves() {
    let root = temp_dir();
    let dir = root.path().join("node");
    let out = run_ok(&[
        "init",
        "--role",
        "station",
        "--division",
        "440304001001",
        "--name",
        "园岭社区党群服务中心",
        "--data-dir",
        dir_arg(&dir),
    ]);
    assert!(out.contains("admin account: admin"), "{out}");
    let password = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("password: "))
        .unwrap();
    assert!(password.len() >= 12);
    let config = fs::read_to_string(dir.join("yizhan.toml")).unwrap();
    assert!(
        config.contains("division = \"440304001001\"")
            && config.contains("# station | subdistrict")
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(dir.join("node.key"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }

    let added = run_ok(&[
        "user",
        "add",
        "li.min",
        "--role",
        "worker",
        "--counter",
        "2号窗口",
        "--data-dir",
        dir_arg(&dir),
    ]);
    assert!(added.contains("password: "), "{added}");
    let token_out = run_ok(&[
        "token",
        "create",
        "--user",
        "li.min",
        "--data-dir",
        dir_arg(&dir),
    ]);
    let token = token_out
        .lines()
        .find(|l| l.starts_with("yz_"))
        .unwrap()
        .to_string();
    let list = run_ok(&["user", "list", "--data-dir", dir_arg(&dir)]);
    assert!(
        list.contains("admin") && list.contains("li.min") && list.contains("2号窗口"),
        "{list}"
    );

    let node = Node::serve(&dir);
    let http = client();
    let (status, info) = get(&http, &node.url("/api/v1/node"), Some(&token)).unwrap();
    assert_eq!((status, info["role"].as_str()), (200, Some("station")));
    let (status, _) = get(&http, &node.url("/api/v1/cases"), Some(&token)).unwrap();
    assert_eq!(status, 200);
    // A second process on the same data dir is refused.
    let err = stderr_of(&[
        "serve",
        "--data-dir",
        dir_arg(&dir),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(err.contains("another yizhan process is using"), "{err}");
    // Disabling an account stops its token at once.
    run_ok(&["user", "disable", "li.min", "--data-dir", dir_arg(&dir)]);
    let (status, _) = get(&http, &node.url("/api/v1/cases"), Some(&token)).unwrap();
    assert_eq!(status, 401);
    run_ok(&["user", "enable", "li.min", "--data-dir", dir_arg(&dir)]);
    let (status, _) = get(&http, &node.url("/api/v1/cases"), Some(&token)).unwrap();
    assert_eq!(status, 200);
    drop(node);

    let new_password = run_ok(&["user", "passwd", "li.min", "--data-dir", dir_arg(&dir)]);
    assert!(
        new_password.contains("new password of li.min"),
        "{new_password}"
    );

    // Role and counter, with the admin page's rules: the last admin stays one.
    let d = dir_arg(&dir);
    let err = stderr_of(&["user", "set", "admin", "--role", "lead", "--data-dir", d]);
    assert!(err.contains("last enabled admin"), "{err}");
    let err = stderr_of(&["user", "disable", "admin", "--data-dir", d]);
    assert!(err.contains("last enabled admin"), "{err}");
    let err = stderr_of(&["user", "set", "li.min", "--role", "boss", "--data-dir", d]);
    assert!(
        err.contains("a station offers worker, lead, admin"),
        "{err}"
    );
    // Hall roles are not offered at a station.
    let err = stderr_of(&[
        "user",
        "set",
        "li.min",
        "--role",
        "supervisor",
        "--data-dir",
        d,
    ]);
    assert!(err.contains("a station offers"), "{err}");
    run_ok(&[
        "user",
        "set",
        "li.min",
        "--role",
        "lead",
        "--counter",
        "3号窗口",
        "--data-dir",
        d,
    ]);
    let list = run_ok(&["user", "list", "--data-dir", d]);
    let line = list.lines().find(|l| l.starts_with("li.min")).unwrap();
    assert!(line.contains("lead") && line.contains("3号窗口"), "{list}");
}

#[test]
fn errors_say_what_is_wrong_and_how_to_fix_it() {
    let root = temp_dir();
    let fresh = root.path().join("fresh");
    let fresh = dir_arg(&fresh);

    let err = stderr_of(&[
        "init",
        "--role",
        "station",
        "--division",
        "4403040010",
        "--name",
        "x",
        "--data-dir",
        fresh,
    ]);
    assert!(
        err.contains("--division") && err.contains("12 digits"),
        "{err}"
    );
    let err = stderr_of(&[
        "init",
        "--role",
        "district",
        "--division",
        "440304001001",
        "--name",
        "x",
        "--data-dir",
        fresh,
    ]);
    assert!(
        err.contains("does not fit role district") && err.contains("6 digits"),
        "{err}"
    );
    let err = stderr_of(&[
        "init",
        "--role",
        "hall",
        "--division",
        "440304",
        "--name",
        "x",
        "--data-dir",
        fresh,
    ]);
    assert!(
        err.contains("invalid value 'hall'")
            && err.contains("station, subdistrict, district, city"),
        "{err}"
    );
    assert!(
        !root.path().join("fresh").exists(),
        "failed inits leave nothing behind"
    );

    let occupied = root.path().join("occupied");
    fs::create_dir(&occupied).unwrap();
    fs::write(occupied.join("notes.txt"), "keep me").unwrap();
    let err = stderr_of(&[
        "init",
        "--role",
        "station",
        "--division",
        "440304001001",
        "--name",
        "x",
        "--data-dir",
        dir_arg(&occupied),
    ]);
    assert!(
        err.contains("is not empty") && err.contains("--data-dir"),
        "{err}"
    );
    assert_eq!(
        fs::read_to_string(occupied.join("notes.txt")).unwrap(),
        "keep me"
    );

    let err = stderr_of(&["serve", "--data-dir", dir_arg(&occupied)]);
    assert!(
        err.contains("not a yizhan data dir") && err.contains("yizhan init"),
        "{err}"
    );

    let node_dir = root.path().join("node");
    run_ok(&[
        "init",
        "--role",
        "district",
        "--division",
        "440304",
        "--name",
        "福田区行政服务大厅",
        "--data-dir",
        dir_arg(&node_dir),
    ]);
    let config_path = node_dir.join("yizhan.toml");
    let good = fs::read_to_string(&config_path).unwrap();

    fs::write(
        &config_path,
        good.replace("readers = 4", "readers = \"four\""),
    )
    .unwrap();
    let err = stderr_of(&["serve", "--data-dir", dir_arg(&node_dir)]);
    let line = good.lines().position(|l| l.starts_with("readers")).unwrap() + 1;
    assert!(
        err.contains(&format!("yizhan.toml:{line}:")) && err.contains("invalid type"),
        "{err}"
    );

    fs::write(&config_path, good.replace("[store]", "[storage]")).unwrap();
    let err = stderr_of(&["serve", "--data-dir", dir_arg(&node_dir)]);
    assert!(err.contains("unknown field `storage`"), "{err}");
    fs::write(&config_path, &good).unwrap();

    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let err = stderr_of(&["serve", "--data-dir", dir_arg(&node_dir), "--listen", &addr]);
    assert!(
        err.contains("already in use") && err.contains("--listen"),
        "{err}"
    );

    let err = stderr_of(&[
        "token",
        "create",
        "--user",
        "nobody",
        "--data-dir",
        dir_arg(&node_dir),
    ]);
    assert!(
        err.contains("nobody") && err.contains("yizhan user list"),
        "{err}"
    );
    let err = stderr_of(&["user", "add", "Bad Name", "--data-dir", dir_arg(&node_dir)]);
    assert!(err.contains("username must be"), "{err}");
    let err = stderr_of(&[
        "user",
        "add",
        "someone",
        "--role",
        "boss",
        "--data-dir",
        dir_arg(&node_dir),
    ]);
    assert!(err.contains("offers worker, lead, admin"), "{err}");
}

/// The program sets mimalloc's purge delay itself (`cli::purge_sooner`, by running itself
/// again with the variable): a node started without it runs with 250 ms, in the process
/// that was started; one given a value keeps it.
#[test]
fn a_node_runs_with_a_short_purge_delay_unless_given_one() {
    const VAR: &str = "MIMALLOC_PURGE_DELAY";
    let environment = |node: &Node| {
        let bytes = fs::read(format!("/proc/{}/environ", node.pid())).unwrap();
        String::from_utf8_lossy(&bytes)
            .split('\0')
            .filter_map(|v| v.strip_prefix(&format!("{VAR}=")).map(str::to_string))
            .collect::<Vec<_>>()
    };
    // What this test process has, if anyone set it, is what a node it starts keeps.
    let inherited = std::env::var(VAR).unwrap_or_else(|_| "250".into());
    let root = temp_dir();
    let node = Node::demo(&root.path().join("plain"));
    assert_eq!(environment(&node), vec![inherited]);
    drop(node);
    let node = Node::demo_env(&root.path().join("given"), &[(VAR, "700")]);
    assert_eq!(environment(&node), vec!["700".to_string()]);
}

/// The benchmark command stays runnable (the figures themselves are in docs/benchmarks.md).
#[test]
fn the_store_benchmark_runs() {
    let out = run_ok(&[
        "bench",
        "store",
        "--cases",
        "300",
        "--queries",
        "5",
        "--concurrency",
        "4",
    ]);
    for needle in [
        "cases/s",
        "database size",
        "peak RSS",
        "legal_breach",
        "median",
    ] {
        assert!(out.contains(needle), "{needle} missing from:\n{out}");
    }
}

/// Copies the data dir made by the first released schema (version 2: the foundation's
/// `yizhan demo`, kept in tests/fixtures/schema-v2) into `to`.
fn first_schema_node(to: &std::path::Path) {
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/schema-v2");
    std::fs::create_dir_all(to).unwrap();
    for name in ["yizhan.db", "yizhan.toml", "node.key"] {
        std::fs::copy(fixture.join(name), to.join(name)).unwrap();
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(to.join("node.key"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
    }
}

#[test]
fn a_database_from_the_first_schema_is_backed_up_migrated_and_served() {
    let root = temp_dir();
    let dir = root.path().join("node");
    first_schema_node(&dir);
    let node = Node::serve(&dir);
    // Backed up before the migration.
    let backups: Vec<String> = std::fs::read_dir(dir.join("backups"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(
        backups.iter().any(|n| n.ends_with(".tar.gz")),
        "{backups:?}"
    );
    // Everything it held is served by this build.
    let (status, items) = get(&client(), &node.url("/api/v1/items?limit=500"), None).unwrap();
    assert_eq!(status, 200);
    assert_eq!(items["items"].as_array().unwrap().len(), 24);
    let out = run_ok(&[
        "token",
        "create",
        "--user",
        "admin",
        "--data-dir",
        dir_arg(&dir),
    ]);
    let token = out
        .lines()
        .find(|l| l.starts_with("yz_"))
        .unwrap()
        .to_string();
    let (status, cases) = get(
        &client(),
        &node.url("/api/v1/cases?limit=200"),
        Some(&token),
    )
    .unwrap();
    assert_eq!(status, 200, "{cases}");
    assert_eq!(cases["cases"].as_array().unwrap().len(), 10);
    drop(node);
    // The migrated rows are what the documents say.
    let rebuilt = run_ok(&["rebuild", "--data-dir", dir_arg(&dir)]);
    assert!(rebuilt.contains("rebuilt 24 items, 10 cases"), "{rebuilt}");
    assert!(!rebuilt.contains("unreadable document"), "{rebuilt}");

    // A database from a newer build is refused, and left as it was.
    let future = root.path().join("future");
    first_schema_node(&future);
    {
        let conn = rusqlite::Connection::open(future.join("yizhan.db")).unwrap();
        conn.execute_batch("PRAGMA user_version = 999;").unwrap();
    }
    let refused = stderr_of(&[
        "serve",
        "--data-dir",
        dir_arg(&future),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(refused.contains("newer"), "{refused}");
    let conn = rusqlite::Connection::open(future.join("yizhan.db")).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 999);
}
