//! Live links between real nodes on loopback, with their configs as `yizhan init` writes
//! them (a 60 s fallback timer; nothing shortened): a station notices its hall come back
//! within seconds, however long it was away, and what a district decides reaches a
//! station two levels down within seconds, with no local write anywhere to set it off.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use yizhan_tests::{
    Node, accepted_case, admin_token, client, enroll_code, get, init_node, post, run_ok,
    send_to_hall, temp_dir, wait_for,
};

const CATALOG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../node/data/demo-catalog.toml"
);
const ITEM: &str = "1144039999000005XU5001099602000";
const WAIT: Duration = Duration::from_secs(60);

/// The pre-change backoff cap: a station whose hall was away this long used to wait up to
/// this much more after the hall came back.
const OLD_BACKOFF_CAP: Duration = Duration::from_secs(300);

fn dir_arg(dir: &Path) -> &str {
    dir.to_str().unwrap()
}

fn sync_status(base: &str, token: &str) -> Value {
    let (status, value) = get(
        &client(),
        &format!("{base}/api/v1/sync/status"),
        Some(token),
    )
    .unwrap();
    assert_eq!(status, 200, "{value}");
    value
}

fn item_version(base: &str) -> Option<u64> {
    let (status, item) = get(&client(), &format!("{base}/api/v1/items/{ITEM}"), None).ok()?;
    (status == 200).then(|| item["version"].as_u64()).flatten()
}

fn metrics(base: &str) -> String {
    ureq::get(&format!("{base}/metrics"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap()
}

/// The demo catalog with the first item at version 2 (as a district publishes a change).
fn catalog_with_new_version(to: &Path) {
    let mut catalog: toml::Value =
        toml::from_str(&std::fs::read_to_string(CATALOG).unwrap()).unwrap();
    let item = catalog["items"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|i| i["impl_code"].as_str() == Some(ITEM))
        .unwrap();
    item["version"] = toml::Value::Integer(2);
    item["name"] = toml::Value::String("居住证申领（新版）".into());
    std::fs::write(to, toml::to_string(&catalog).unwrap()).unwrap();
}

/// Issue "live links", acceptance 1: a station with no local writes whose hall was down
/// for longer than the old backoff cap syncs within 10 s of the hall's return. The test
/// changes nothing but the outage (and gives the hall a catalog change to carry).
#[test]
fn a_station_syncs_within_10_s_of_its_hall_returning_from_a_long_outage() {
    let root = temp_dir();
    let (d, s) = (root.path().join("district"), root.path().join("station"));
    init_node(&d, "district", "440304", "福田区行政服务中心");
    run_ok(&["import-catalog", CATALOG, "--data-dir", dir_arg(&d)]);
    let district = Node::serve(&d);
    init_node(&s, "station", "440304001001", "园岭社区");
    let code = enroll_code(&d, "440304001001", "station");
    run_ok(&["enroll", &district.base, &code, "--data-dir", dir_arg(&s)]);
    let token = admin_token(&s);
    let station = Node::serve(&s);
    wait_for("the catalog at the station", WAIT, || {
        (item_version(&station.base) == Some(1)).then_some(())
    });

    let district_base = district.base.clone();
    district.kill9();
    let down_since = Instant::now();
    // While the hall is away it publishes nothing; a technician changes its catalog with
    // the node stopped.
    let changed = root.path().join("catalog-v2.toml");
    catalog_with_new_version(&changed);
    let imported = run_ok(&[
        "import-catalog",
        changed.to_str().unwrap(),
        "--data-dir",
        dir_arg(&d),
    ]);
    assert!(imported.contains("1 changed"), "{imported}");
    // The station keeps probing, never waiting more than 8 s, and says why.
    let mut longest_delay: f64 = 0.0;
    while down_since.elapsed() < OLD_BACKOFF_CAP + Duration::from_secs(5) {
        let status = sync_status(&station.base, &token);
        if let Some(delay) = status["parent_retry_delay_secs"].as_f64() {
            assert_eq!(status["parent_failure"], "unreachable", "{status}");
            assert!(!status["parent_link_up"].as_bool().unwrap());
            longest_delay = longest_delay.max(delay);
        }
        std::thread::sleep(Duration::from_secs(5));
    }
    assert!(
        longest_delay > 0.0 && longest_delay <= 8.0,
        "retry delays during the outage went up to {longest_delay} s"
    );
    assert_eq!(item_version(&station.base), Some(1));

    let _district = Node::restart(&d, &district_base);
    let back = Instant::now();
    wait_for("the new catalog version at the station", WAIT, || {
        (item_version(&station.base) == Some(2)).then_some(())
    });
    let took = back.elapsed();
    println!(
        "hall away {:.0} s; the station had its change {:.1} s after the hall's return (longest retry delay {longest_delay:.1} s)",
        (back - down_since).as_secs_f64(),
        took.as_secs_f64()
    );
    assert!(
        took <= Duration::from_secs(10),
        "the station synced {took:?} after the hall came back"
    );
    // The session that brought it ends (it may still be pushing when the item shows).
    let status = wait_for("the link up again", WAIT, || {
        let status = sync_status(&station.base, &token);
        (status["parent_link_up"] == true).then_some(status)
    });
    assert!(status["parent_retry_delay_secs"].is_null(), "{status}");
}

/// Issue "live links", acceptance 2: on district ← sub-district ← station, a decision made
/// at the district is at the station within 5 s while the links are up, with no local
/// write anywhere to trigger it. Also: each link shows it is live in the API, `/metrics`
/// and `yizhan status`, and `yizhan sync now` runs a session.
#[test]
fn a_decision_at_the_district_reaches_a_station_two_levels_down_within_5_s() {
    let root = temp_dir();
    let [d, sd, s] = ["district", "sub", "station"].map(|n| root.path().join(n));
    init_node(&d, "district", "440304", "福田区行政服务中心");
    run_ok(&["import-catalog", CATALOG, "--data-dir", dir_arg(&d)]);
    let district_token = admin_token(&d);
    let district = Node::serve(&d);
    init_node(&sd, "subdistrict", "440304001", "园岭街道行政服务大厅");
    let code = enroll_code(&d, "440304001", "subdistrict");
    run_ok(&["enroll", &district.base, &code, "--data-dir", dir_arg(&sd)]);
    let sub_token = admin_token(&sd);
    let sub = Node::serve(&sd);
    init_node(&s, "station", "440304001001", "园岭社区");
    let code = enroll_code(&sd, "440304001001", "station");
    run_ok(&["enroll", &sub.base, &code, "--data-dir", dir_arg(&s)]);
    let token = admin_token(&s);
    let station = Node::serve(&s);
    wait_for("the catalog at the station", WAIT, || {
        (item_version(&station.base) == Some(1)).then_some(())
    });

    // A case accepted at the station travels up (its local write starts that).
    let id = accepted_case(&station.base, &token, ITEM, "申请人");
    wait_for("the case at the district", WAIT, || {
        let (status, _) = get(
            &client(),
            &format!("{}/api/v1/cases/{id}", district.base),
            Some(&district_token),
        )
        .ok()?;
        (status == 200).then_some(())
    });
    // Both links are live: each child holds a long-poll to its parent.
    for (base, token) in [(&station.base, &token), (&sub.base, &sub_token)] {
        wait_for("a live link", WAIT, || {
            let status = sync_status(base, token);
            (status["parent_link_live"] == true).then_some(())
        });
    }
    wait_for("the station live at the sub-district", WAIT, || {
        let status = sync_status(&sub.base, &sub_token);
        status["peers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["relation"] == "child" && p["live"] == true)
            .then_some(())
    });
    // The station sends the case to the district (a hall decides only what it was sent).
    send_to_hall(
        &station.base,
        &token,
        &id,
        &d,
        &district.base,
        &district_token,
    );
    // Let every session of the case's way up end.
    std::thread::sleep(Duration::from_secs(2));

    let decided_at = Instant::now();
    let (status, decided) = post(
        &client(),
        &format!("{}/api/v1/cases/{id}/events", district.base),
        Some(&district_token),
        &json!({"kind": "decide", "approved": true}),
    )
    .unwrap();
    assert_eq!(status, 200, "{decided}");
    wait_for(
        "the decision at the station",
        Duration::from_secs(30),
        || {
            let (_, case) = get(
                &client(),
                &format!("{}/api/v1/cases/{id}", station.base),
                Some(&token),
            )
            .ok()?;
            (case["status"] == "decided").then_some(())
        },
    );
    let took = decided_at.elapsed();
    println!(
        "a decision at the district was at the station {:.2} s later",
        took.as_secs_f64()
    );
    assert!(took <= Duration::from_secs(5), "it took {took:?}");

    // What a technician sees.
    let station_metrics = metrics(&station.base);
    assert!(
        station_metrics.contains("yizhan_sync_parent_link_live 1"),
        "{station_metrics}"
    );
    let sub_metrics = metrics(&sub.base);
    assert!(
        sub_metrics.contains("yizhan_sync_children_live 1"),
        "{sub_metrics}"
    );
    let shown = run_ok(&["status", "--data-dir", dir_arg(&s)]);
    assert!(shown.contains("link: live"), "{shown}");
    let shown = run_ok(&["status", "--data-dir", dir_arg(&sd)]);
    assert!(shown.contains("holds a long-poll here"), "{shown}");
    let synced = run_ok(&["sync", "now", "--data-dir", dir_arg(&s)]);
    assert!(synced.contains("synced: pulled"), "{synced}");
    drop((station, sub, district));
}
