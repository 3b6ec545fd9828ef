//! The PostgreSQL sink with real processes: two stations → a district → the city, the
//! city's sink on. While the stations keep writing, the city is killed with SIGKILL and
//! PostgreSQL is restarted at random points (a fixed seed), 20 times each; then
//! PostgreSQL stays down a while and the city keeps syncing and shows the sink behind;
//! afterwards PostgreSQL holds exactly the city's rows, none duplicated (`yizhan sink
//! verify`), each case with its station, and each case's sealed receipt with its station.
//!
//! Needs the throwaway PostgreSQL that `./test.sh` starts (`YIZHAN_TEST_POSTGRES`,
//! `YIZHAN_TEST_POSTGRES_DIR`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use yizhan_tests::visitor::Visitor;
use yizhan_tests::{
    Node, Rng, accepted_case, admin_token, client, enroll_code, get, init_node, run, run_ok,
    set_config, temp_dir, wait_for,
};

const CATALOG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../node/data/demo-catalog.toml"
);
const ITEM: &str = "1144039999000005XU5001099602000";
const ROUNDS: usize = 20;

/// The test cluster: its URL and its directory (for restarts), or `None` with a note
/// when it is not configured outside `./test.sh`.
fn cluster() -> Option<(String, PathBuf)> {
    match (
        std::env::var("YIZHAN_TEST_POSTGRES"),
        std::env::var("YIZHAN_TEST_POSTGRES_DIR"),
    ) {
        (Ok(url), Ok(dir)) => Some((url, PathBuf::from(dir))),
        _ => {
            assert!(
                std::env::var_os("YIZHAN_REQUIRE_TOOLS").is_none()
                    && std::env::var_os("CI").is_none(),
                "YIZHAN_TEST_POSTGRES(_DIR) is not set: run the tests with ./test.sh, which starts a throwaway PostgreSQL"
            );
            eprintln!(
                "note: skipping the sink's process test: YIZHAN_TEST_POSTGRES is not set; ./test.sh starts a cluster and sets it"
            );
            None
        }
    }
}

fn postgres_sh(command: &str, dir: &Path) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/postgres.sh");
    let status = Command::new("bash")
        .arg(script)
        .arg(command)
        .arg(dir)
        .status()
        .expect("bash runs");
    assert!(status.success(), "tests/postgres.sh {command} failed");
}

/// Runs SQL on the cluster with psql; returns the unaligned output.
fn psql(url: &str, sql: &str) -> String {
    let output = Command::new("psql")
        .args([
            url,
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .output()
        .expect("psql runs (Debian's postgresql-client)");
    assert!(
        output.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let (server, _) = base.rsplit_once('/').unwrap();
    if query.is_empty() {
        format!("{server}/{name}")
    } else {
        format!("{server}/{name}?{query}")
    }
}

fn arg(dir: &Path) -> &str {
    dir.to_str().unwrap()
}

fn quick_sync(dir: &Path) {
    set_config(dir, "interval_secs", "1");
    set_config(dir, "batch_bytes", "8192");
}

/// The city's sink state from `/api/v1/sync/status`.
fn sink_status(base: &str, token: &str) -> Option<serde_json::Value> {
    let (status, body) = get(
        &client(),
        &format!("{base}/api/v1/sync/status"),
        Some(token),
    )
    .ok()?;
    (status == 200).then(|| body["sink"].clone())
}

fn case_count(base: &str, token: &str) -> Option<u64> {
    // The city's own count, from its dashboard-free API: page through ids.
    let http = client();
    let mut n = 0;
    let mut cursor = String::new();
    for _ in 0..100 {
        let url = format!("{base}/api/v1/cases?limit=200{cursor}");
        let (status, page) = get(&http, &url, Some(token)).ok()?;
        if status != 200 {
            return None;
        }
        n += page["cases"].as_array()?.len() as u64;
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return Some(n),
        }
    }
    None
}

#[test]
fn the_city_sink_survives_kills_and_restarts_with_exactly_the_citys_rows() {
    let Some((cluster_url, cluster_dir)) = cluster() else {
        return;
    };
    let database = format!("yizhan_sink_process_{}", std::process::id());
    psql(&cluster_url, &format!("DROP DATABASE IF EXISTS {database}"));
    psql(&cluster_url, &format!("CREATE DATABASE {database}"));
    let url = with_database(&cluster_url, &database);

    let root = temp_dir();
    let [c, d, a, b] = ["city", "district", "station-a", "station-b"].map(|n| root.path().join(n));
    let city_password = init_node(&c, "city", "440300", "深圳市行政服务大厅");
    quick_sync(&c);
    // Small batches, so the stream is many transactions long and a kill lands in one.
    let text = std::fs::read_to_string(c.join("yizhan.toml")).unwrap();
    let text = text
        .replace("postgres = \"\"", &format!("postgres = \"{url}\""))
        .replace("batch_changes = 8192", "batch_changes = 7")
        .replace("timeout_secs = 30", "timeout_secs = 5");
    std::fs::write(c.join("yizhan.toml"), text).unwrap();
    let city_token = admin_token(&c);
    let mut city = Node::serve(&c);

    init_node(&d, "district", "440304", "福田区行政服务中心");
    quick_sync(&d);
    let imported = run_ok(&["import-catalog", CATALOG, "--data-dir", arg(&d)]);
    assert!(imported.contains("25 new"), "{imported}");
    let code = enroll_code(&c, "440304", "district");
    run_ok(&["enroll", &city.base, &code, "--data-dir", arg(&d)]);
    let district = Node::serve(&d);
    let mut tokens = Vec::new();
    let mut stations = Vec::new();
    for (dir, division, name) in [
        (&a, "440304001001", "园岭社区"),
        (&b, "440304001002", "百花社区"),
    ] {
        init_node(dir, "station", division, name);
        quick_sync(dir);
        let code = enroll_code(&d, division, "station");
        run_ok(&["enroll", &district.base, &code, "--data-dir", arg(dir)]);
        tokens.push(admin_token(dir));
        stations.push(Node::serve(dir));
    }
    for station in &stations {
        wait_for("the item at the stations", Duration::from_secs(60), || {
            let url = station.url(&format!("/api/v1/items/{ITEM}"));
            let (status, _) = get(&client(), &url, None).ok()?;
            (status == 200).then_some(())
        });
    }

    // The stations write for the whole test: the city's feed keeps growing.
    let stop = Arc::new(AtomicBool::new(false));
    let written: Vec<Arc<AtomicU64>> = (0..2).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let writers: Vec<_> = stations
        .iter()
        .zip(&tokens)
        .zip(&written)
        .enumerate()
        .map(|(n, ((station, token), count))| {
            let (base, token, count, stop) = (
                station.base.clone(),
                token.clone(),
                count.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || {
                // Bounded in count; stopped when the kills are over.
                for i in 0..400 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    accepted_case(&base, &token, ITEM, &format!("申请人{n}-{i}"));
                    count.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(40));
                }
            })
        })
        .collect();

    // SIGKILL the city and restart PostgreSQL at random points, 20 times each.
    let mut rng = Rng::new(20261206);
    // Each round waits a random time, then kills the city as soon as its sink is behind
    // (rows on their way to PostgreSQL), or after two seconds if it never is.
    let mut mid_stream = 0;
    for _ in 0..ROUNDS {
        std::thread::sleep(Duration::from_millis(rng.between(100, 600)));
        let behind = (0..100).any(|_| {
            let lag = sink_status(&city.base, &city_token)
                .and_then(|sink| sink["lag_changes"].as_u64())
                .unwrap_or(0);
            if lag == 0 {
                std::thread::sleep(Duration::from_millis(20));
            }
            lag > 0
        });
        mid_stream += u32::from(behind);
        let restart_postgres_while_down = rng.between(0, 2) == 0;
        let base = city.base.clone();
        city.kill9();
        if restart_postgres_while_down {
            postgres_sh("restart", &cluster_dir);
        }
        city = Node::restart(&c, &base);
        if !restart_postgres_while_down {
            std::thread::sleep(Duration::from_millis(rng.between(50, 500)));
            postgres_sh("restart", &cluster_dir);
        }
    }
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.join().unwrap();
    }
    assert!(
        mid_stream >= ROUNDS as u32 / 2,
        "only {mid_stream} of {ROUNDS} kills came while the sink was behind"
    );
    assert!(
        written
            .iter()
            .map(|w| w.load(Ordering::Relaxed))
            .sum::<u64>()
            >= 20,
        "the stations wrote too few cases"
    );

    // PostgreSQL away for longer: the city keeps serving and syncing, and its status, its
    // /metrics, its admin page and `yizhan status` show the sink down and falling behind.
    postgres_sh("stop", &cluster_dir);
    for i in 0..3 {
        accepted_case(&stations[0].base, &tokens[0], ITEM, &format!("停库时{i}"));
        written[0].fetch_add(1, Ordering::Relaxed);
    }
    let total: u64 = written.iter().map(|w| w.load(Ordering::Relaxed)).sum();
    wait_for(
        "every case at the city while PostgreSQL is down",
        Duration::from_secs(180),
        || (case_count(&city.base, &city_token)? == total).then_some(()),
    );
    let lag = wait_for(
        "the sink shown down and behind",
        Duration::from_secs(60),
        || {
            let sink = sink_status(&city.base, &city_token)?;
            let lag = sink["lag_changes"].as_u64()?;
            (sink["up"] == false && lag > 0).then_some(lag)
        },
    );
    let metrics = client()
        .get(&format!("{}/metrics", city.base))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(metrics.contains("\nyizhan_sink_up 0\n"), "{metrics}");
    let metric_lag: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("yizhan_sink_lag_changes "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no yizhan_sink_lag_changes in /metrics:\n{metrics}"));
    assert!(metric_lag >= lag, "{metric_lag} < {lag}");
    let mut admin = Visitor::new(&city);
    assert_eq!(admin.sign_in("admin", &city_password).0, 303);
    let (status, page, _) = admin.get("/admin/status");
    assert_eq!(status, 200);
    assert!(page.contains("无法连接 PostgreSQL"), "{page}");
    let status = run_ok(&["status", "--data-dir", arg(&c)]);
    assert!(status.contains("PostgreSQL sink: cannot reach"), "{status}");
    let check = run(&["sink", "check", "--data-dir", arg(&c)]);
    assert!(!check.status.success());
    postgres_sh("start", &cluster_dir);

    // Everything reaches the city, then PostgreSQL.
    wait_for("every case at the city", Duration::from_secs(180), || {
        (case_count(&city.base, &city_token)? == total).then_some(())
    });
    // The sink sees the log's head when it polls (every 250 ms): caught up twice, a second
    // apart, with nothing new arriving, is caught up.
    for _ in 0..2 {
        wait_for("the sink to catch up", Duration::from_secs(120), || {
            let sink = sink_status(&city.base, &city_token)?;
            (sink["up"] == true && sink["lag_changes"] == 0).then_some(())
        });
        std::thread::sleep(Duration::from_secs(1));
    }
    city.kill9();
    let verified = run(&["sink", "verify", "--data-dir", arg(&c)]);
    let out = String::from_utf8_lossy(&verified.stdout);
    assert!(
        verified.status.success() && out.contains("exactly this node's rows, none duplicated"),
        "{out}\n{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    // Each case with its station, sub-district and district.
    let per_station = psql(
        &url,
        "SELECT station || ' ' || subdistrict || ' ' || district || ' ' || count(*)
         FROM yizhan.cases GROUP BY station, subdistrict, district ORDER BY station",
    );
    let expected = format!(
        "440304001001 440304001 440304 {}\n440304001002 440304001 440304 {}",
        written[0].load(Ordering::Relaxed),
        written[1].load(Ordering::Relaxed)
    );
    assert_eq!(per_station, expected);
    // Every case was accepted through its station's API: each has its sealed receipt in
    // PostgreSQL, with the station that issued it (issue 14).
    let receipts = psql(
        &url,
        "SELECT station || ' ' || subdistrict || ' ' || district || ' ' || count(*)
         FROM yizhan.notices WHERE kind = 'receipt'
         GROUP BY station, subdistrict, district ORDER BY station",
    );
    assert_eq!(receipts, expected);
    let elsewhere = psql(
        &url,
        "SELECT count(*) FROM yizhan.notices n JOIN yizhan.cases c ON c.id = n.case_id
         WHERE c.station IS DISTINCT FROM n.station",
    );
    assert_eq!(elsewhere, "0");
    let unnamed = psql(
        &url,
        "SELECT count(*) FROM yizhan.v_notices WHERE station_name IS NULL OR unified_serial_no IS NULL",
    );
    assert_eq!(unnamed, "0");
    let events = psql(&url, "SELECT count(*) FROM yizhan.case_events");
    assert!(events.parse::<u64>().unwrap() >= total, "{events}");
    let checked = run_ok(&["sink", "check", "--data-dir", arg(&c)]);
    assert!(checked.contains("0 changes behind"), "{checked}");
    drop(stations);
    drop(district);
    psql(&cluster_url, &format!("DROP DATABASE IF EXISTS {database}"));
}
