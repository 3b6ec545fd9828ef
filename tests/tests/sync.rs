//! Four real nodes on loopback — a district, a sub-district and two stations — enrolled
//! through the command line and syncing over HTTP.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use yizhan_node::identity::NodeKey;
use yizhan_sync::auth::NodeRole;
use yizhan_sync::domain::codes::DivisionCode;
use yizhan_sync::envelope::{self, CHAIN_START, Envelope};
use yizhan_sync::feed::{Ack, Batch, SignedSeq};
use yizhan_sync::ids::{DocId, DocKind, Origin, Scope};
use yizhan_sync::wire::Message;
use yizhan_tests::{
    Node, accepted_case, admin_token, client, enroll_code, get, init_node, post, post_signed, put,
    run, run_ok, send_to_hall, set_config, temp_dir, wait_for,
};

const CATALOG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../node/data/demo-catalog.toml"
);
const WAIT: Duration = Duration::from_secs(60);

fn dir_arg(dir: &Path) -> &str {
    dir.to_str().unwrap()
}

fn quick_sync(dir: &Path) {
    set_config(dir, "interval_secs", "1");
    set_config(dir, "batch_bytes", "4096");
}

/// Cases the node at `base` holds, by id → status.
fn cases(base: &str, token: &str) -> Vec<(String, String)> {
    let (status, list) = get(
        &client(),
        &format!("{base}/api/v1/cases?limit=200"),
        Some(token),
    )
    .unwrap();
    assert_eq!(status, 200, "{list}");
    list["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn items(base: &str) -> Vec<Value> {
    let (_, list) = get(&client(), &format!("{base}/api/v1/items?limit=500"), None).unwrap();
    list["items"].as_array().cloned().unwrap_or_default()
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

/// Receives and accepts an application for the first item of the catalog.
fn new_case(base: &str, token: &str, n: u32) -> String {
    accepted_case(
        base,
        token,
        "1144039999000005XU5001099602000",
        &format!("申请人{n}"),
    )
}

/// A batch signed with `key` claiming `origin`, POSTed to `base`'s push endpoint by the
/// node whose key it is.
fn push_crafted(
    base: &str,
    sender: &NodeKey,
    envelopes: Vec<(Envelope, [u8; 64])>,
) -> (u16, Vec<u8>) {
    let batch = Batch {
        signatures: envelopes
            .iter()
            .map(|(e, signature)| SignedSeq {
                scope: e.scope.clone(),
                origin: e.origin,
                seq: e.seq,
                signature: *signature,
            })
            .collect(),
        envelopes: envelopes.into_iter().map(|(e, _)| e).collect(),
        more: false,
    };
    post_signed(base, sender, "/sync/v1/push", batch.encode())
}

/// An envelope of a fresh Automerge change in `scope`, chained from the start of its run.
fn envelope(
    origin: Origin,
    seq: u64,
    kind: DocKind,
    scope: &str,
    doc: &str,
) -> (Envelope, [u8; 32]) {
    let mut document = automerge::AutoCommit::new().with_actor(origin.actor());
    automerge::transaction::Transactable::put(&mut document, automerge::ROOT, "forged", true)
        .unwrap();
    let change = document.get_last_local_change().unwrap();
    let envelope = Envelope {
        origin,
        seq,
        prev: 0,
        doc: DocId::parse(doc).unwrap(),
        kind,
        scope: Scope::parse(scope).unwrap(),
        hash: change.hash().0,
        change: change.raw_bytes().to_vec(),
        refused: None,
    };
    let chain = envelope::chain_next(&CHAIN_START, &envelope);
    (envelope, chain)
}

#[test]
fn four_nodes_sync_through_the_tree() {
    let root = temp_dir();
    let [d, s, a, b] = ["district", "sub", "station-a", "station-b"].map(|n| root.path().join(n));

    // The district authors the catalog before it first starts.
    init_node(&d, "district", "440304", "福田区行政服务中心");
    quick_sync(&d);
    let imported = run_ok(&["import-catalog", CATALOG, "--data-dir", dir_arg(&d)]);
    assert!(imported.contains("25 new"), "{imported}");
    let district_token = admin_token(&d);
    let district = Node::serve(&d);
    let district_base = district.base.clone();

    init_node(&s, "subdistrict", "440304001", "园岭街道行政服务大厅");
    quick_sync(&s);
    let code = enroll_code(&d, "440304001", "subdistrict");
    let enrolled = run_ok(&["enroll", &district.base, &code, "--data-dir", dir_arg(&s)]);
    assert!(
        enrolled.contains("enrolled with 福田区行政服务中心"),
        "{enrolled}"
    );
    // A code works once.
    let again = run(&["enroll", &district.base, &code, "--data-dir", dir_arg(&s)]);
    assert!(
        !again.status.success() && String::from_utf8_lossy(&again.stderr).contains("already used")
    );
    let sub_token = admin_token(&s);
    let mut sub = Node::serve(&s);
    let sub_base = sub.base.clone();

    for (dir, division, name) in [
        (&a, "440304001001", "园岭社区"),
        (&b, "440304001002", "百花社区"),
    ] {
        init_node(dir, "station", division, name);
        quick_sync(dir);
        let code = enroll_code(&s, division, "station");
        run_ok(&["enroll", &sub.base, &code, "--data-dir", dir_arg(dir)]);
    }
    let (token_a, token_b) = (admin_token(&a), admin_token(&b));
    let station_a = Node::serve(&a);
    let station_b = Node::serve(&b);

    // The catalog flows down to both stations.
    for station in [&station_a, &station_b] {
        wait_for("the catalog at the stations", WAIT, || {
            (items(&station.base).len() == 25).then_some(())
        });
    }
    // Status counts what waits for the parent, against what it held at the last session.
    let pending_up = |base: &str, token: &str| {
        sync_status(base, token)["peers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["relation"] == "parent")
            .map(|p| p["pending"].as_u64())
            .unwrap()
    };
    // The catalog can arrive by a pull before the session's push is acknowledged: wait
    // until the parent has told station A what it holds, as the count below needs.
    wait_for(
        "a session that told station A what its parent holds",
        WAIT,
        || pending_up(&station_a.base, &token_a).map(|_| ()),
    );

    // Stations accept cases while their parent is stopped.
    sub.kill9();
    let mut ids_a: Vec<String> = (0..5)
        .map(|n| new_case(&station_a.base, &token_a, n))
        .collect();
    let ids_b: Vec<String> = (0..3)
        .map(|n| new_case(&station_b.base, &token_b, 100 + n))
        .collect();
    let waiting = pending_up(&station_a.base, &token_a).expect("a session ran before");
    assert!(waiting >= 5, "only {waiting} changes pending up");
    sub = Node::restart(&s, &sub_base);
    wait_for("every case at the district", WAIT, || {
        let held: HashSet<String> = cases(&district.base, &district_token)
            .into_iter()
            .map(|c| c.0)
            .collect();
        ids_a
            .iter()
            .chain(&ids_b)
            .all(|id| held.contains(id))
            .then_some(())
    });
    assert!(
        cases(&station_b.base, &token_b)
            .iter()
            .all(|(id, _)| !ids_a.contains(id)),
        "B never holds A's cases"
    );
    wait_for("nothing pending up at station A", WAIT, || {
        (pending_up(&station_a.base, &token_a) == Some(0)).then_some(())
    });

    // A decision at the district, on a case the station sent it, reaches the station.
    send_to_hall(
        &station_a.base,
        &token_a,
        &ids_a[0],
        &d,
        &district.base,
        &district_token,
    );
    let url = format!("{}/api/v1/cases/{}/events", district.base, ids_a[0]);
    let (status, decided) = post(
        &client(),
        &url,
        Some(&district_token),
        &json!({"kind": "decide", "approved": true}),
    )
    .unwrap();
    assert_eq!(status, 200, "{decided}");
    wait_for("the decision at station A", WAIT, || {
        cases(&station_a.base, &token_a)
            .iter()
            .any(|(id, status)| id == &ids_a[0] && status == "decided")
            .then_some(())
    });

    // A transfer made at the district (转办 onward to a department, of a case the station
    // sent it) reaches the station too.
    send_to_hall(
        &station_a.base,
        &token_a,
        &ids_a[1],
        &d,
        &district.base,
        &district_token,
    );
    let (status, transferred) = post(
        &client(),
        &format!("{}/api/v1/cases/{}/events", district.base, ids_a[1]),
        Some(&district_token),
        &json!({"kind": "transfer", "to": "福田区民政局", "reason": "需区级部门审批"}),
    )
    .unwrap();
    assert_eq!(status, 200, "{transferred}");
    wait_for("the transfer at station A", WAIT, || {
        let (_, case) = get(
            &client(),
            &format!("{}/api/v1/cases/{}", station_a.base, ids_a[1]),
            Some(&token_a),
        )
        .unwrap();
        (case["holder"] == "福田区民政局").then_some(case)
    });

    // A new catalog version published at the district reaches both stations.
    let (_, mut item) = get(
        &client(),
        &format!(
            "{}/api/v1/items/1144039999000005XU5001099602000",
            district.base
        ),
        None,
    )
    .unwrap();
    let catalog: toml::Value = toml::from_str(&std::fs::read_to_string(CATALOG).unwrap()).unwrap();
    let mut source = catalog["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["impl_code"].as_str() == item["impl_code"].as_str())
        .unwrap()
        .clone();
    source["version"] = toml::Value::Integer(2);
    source["name"] = toml::Value::String("居住证申领（新版）".into());
    let body: Value = serde_json::to_value(&source).unwrap();
    let (status, published) = put(
        &client(),
        &format!(
            "{}/api/v1/items/{}",
            district.base,
            item["impl_code"].as_str().unwrap()
        ),
        Some(&district_token),
        &body,
    )
    .unwrap();
    assert_eq!(status, 200, "{published}");
    for station in [&station_a, &station_b] {
        wait_for("version 2 at the stations", WAIT, || {
            let (_, now) = get(
                &client(),
                &format!(
                    "{}/api/v1/items/1144039999000005XU5001099602000",
                    station.base
                ),
                None,
            )
            .unwrap();
            (now["version"] == 2).then_some(())
        });
    }
    item["version"] = json!(2);

    // Station A tries to write the catalog, B's cases, and to forge B's writes.
    let key_a = NodeKey::load(&a.join("node.key")).unwrap();
    let key_b_id = NodeKey::load(&b.join("node.key")).unwrap().node_id();
    let identity_a = key_a.identity(
        NodeRole::Station,
        DivisionCode::parse("440304001001").unwrap(),
        "a",
    );
    let origin_a = Origin {
        node: key_a.node_id(),
        epoch: 1,
    };
    let (catalog_write, chain) = envelope(
        origin_a,
        1_000_001,
        DocKind::Item,
        "catalog/440304",
        "i-forged",
    );
    let catalog_sig = envelope::sign(&identity_a.key, &origin_a, 1_000_001, &chain);
    let (b_write, chain) = envelope(
        origin_a,
        1_000_002,
        DocKind::Case,
        "case/440304001002",
        "c-forged",
    );
    let b_sig = envelope::sign(&identity_a.key, &origin_a, 1_000_002, &chain);
    // A fresh epoch, so the run starts empty at the receiver and only the signature is wrong.
    let origin_b = Origin {
        node: key_b_id,
        epoch: 2,
    };
    let (forged, chain) = envelope(
        origin_b,
        1_000_003,
        DocKind::Case,
        "case/440304001002",
        "c-forged-b",
    );
    let forged_sig = envelope::sign(&identity_a.key, &origin_b, 1_000_003, &chain);
    for crafted in [
        (catalog_write, catalog_sig),
        (b_write, b_sig),
        (forged, forged_sig),
    ] {
        let (status, body) = push_crafted(&sub.base, &key_a, vec![crafted]);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let ack = Ack::decode(&body).unwrap();
        assert_eq!(ack.applied, 0);
    }
    let quarantine = sync_status(&sub.base, &sub_token);
    let reasons: Vec<String> = quarantine["recent_quarantine"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["reason"].as_str().unwrap().to_string())
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("may not write catalog/440304")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("may not write case/440304001002")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("does not verify")),
        "{reasons:?}"
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        sync_status(&district.base, &district_token)["quarantined"],
        0,
        "nothing refused was forwarded"
    );
    let (_, still) = get(
        &client(),
        &format!(
            "{}/api/v1/items/1144039999000005XU5001099602000",
            district.base
        ),
        None,
    )
    .unwrap();
    assert_eq!(still["name"], "居住证申领（新版）");

    // A transfer killed mid-stream resumes without resending what was acknowledged.
    let mut resumed = false;
    for attempt in 0..3 {
        sub.kill9();
        let batch_of: Vec<String> = (0..150 * (attempt + 1))
            .map(|n| new_case(&station_a.base, &token_a, 1000 + n))
            .collect();
        sub = Node::restart(&s, &sub_base);
        let seen = wait_for("the push to start", WAIT, || {
            let applied = sync_status(&sub.base, &sub_token)["received_applied"]
                .as_u64()
                .unwrap();
            (applied > 0).then_some(applied)
        });
        sub.kill9();
        sub = Node::restart(&s, &sub_base);
        wait_for("every pushed case at the sub-district", WAIT, || {
            let held: HashSet<String> = cases(&sub.base, &sub_token)
                .into_iter()
                .map(|c| c.0)
                .collect();
            batch_of.iter().all(|id| held.contains(id)).then_some(())
        });
        let status = sync_status(&sub.base, &sub_token);
        assert_eq!(
            status["received_duplicates"], 0,
            "acknowledged batches were sent again: {status}"
        );
        ids_a.extend(batch_of);
        // 300 changes at most per attempt; seeing fewer before the kill means it was cut.
        if seen < 2 * 150 * (attempt as u64 + 1) {
            resumed = true;
            break;
        }
    }
    assert!(
        resumed,
        "the transfer was never cut mid-stream in three attempts"
    );

    // A revoked station is refused.
    sub.kill9();
    let id_a = yizhan_node::identity::NodeKey::load(&a.join("node.key"))
        .unwrap()
        .node_id()
        .to_hex();
    let revoked = run_ok(&[
        "revoke",
        &id_a,
        "--reason",
        "PC stolen",
        "--data-dir",
        dir_arg(&s),
    ]);
    assert!(revoked.contains("revoked 园岭社区"), "{revoked}");
    sub = Node::restart(&s, &sub_base);
    let late = new_case(&station_a.base, &token_a, 9999);
    wait_for("station A to be refused", WAIT, || {
        let status = sync_status(&station_a.base, &token_a);
        status["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("revoked"))
            .then_some(())
    });
    assert!(
        cases(&sub.base, &sub_token)
            .iter()
            .all(|(id, _)| id != &late)
    );

    // Sneakernet: station B's cases reach the district, which never had a link to B.
    sub.kill9();
    let offline: Vec<String> = (0..2)
        .map(|n| new_case(&station_b.base, &token_b, 500 + n))
        .collect();
    let district_id = yizhan_node::identity::NodeKey::load(&d.join("node.key"))
        .unwrap()
        .node_id()
        .to_hex();
    let bundle = root.path().join("b-for-district.yzb");
    let exported = run_ok(&[
        "export-bundle",
        "--for",
        &district_id,
        bundle.to_str().unwrap(),
        "--data-dir",
        dir_arg(&b),
    ]);
    assert!(exported.contains("wrote"), "{exported}");
    drop(district);
    let imported = run_ok(&[
        "import-bundle",
        bundle.to_str().unwrap(),
        "--data-dir",
        dir_arg(&d),
    ]);
    assert!(imported.contains("applied"), "{imported}");
    let district = Node::restart(&d, &district_base);
    let held: HashSet<String> = cases(&district.base, &district_token)
        .into_iter()
        .map(|c| c.0)
        .collect();
    assert!(
        offline.iter().all(|id| held.contains(id)),
        "the bundle carried B's offline cases"
    );
    // Importing the same bundle again changes nothing.
    drop(district);
    let again = run_ok(&[
        "import-bundle",
        bundle.to_str().unwrap(),
        "--data-dir",
        dir_arg(&d),
    ]);
    assert!(again.contains("0 applied"), "{again}");
    drop((station_a, station_b));
}

/// Whether the database of a running node holds case `id` (read-only, beside the node).
fn db_has_case(dir: &Path, id: &str) -> bool {
    let conn = rusqlite::Connection::open_with_flags(
        yizhan_tests::database(dir),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    conn.query_row("SELECT count(*) FROM cases WHERE id = ?1", [id], |r| {
        r.get::<_, i64>(0)
    })
    .unwrap()
        == 1
}

#[test]
fn a_tls_hall_is_reached_through_its_pinned_node_key() {
    let root = temp_dir();
    let [d, a] = ["district", "station"].map(|n| root.path().join(n));
    init_node(&d, "district", "440304", "福田区行政服务中心");
    quick_sync(&d);
    set_config(&d, "tls", "true");
    run_ok(&["import-catalog", CATALOG, "--data-dir", dir_arg(&d)]);
    let district = Node::serve(&d);
    assert!(district.base.starts_with("https://"), "{}", district.base);

    init_node(&a, "station", "440304001001", "园岭社区");
    quick_sync(&a);
    let code = enroll_code(&d, "440304001001", "station");
    // Plain HTTP to a TLS hall fails clearly and does not use up the code.
    let plain = run(&[
        "enroll",
        &district.base.replace("https://", "http://"),
        &code,
        "--data-dir",
        dir_arg(&a),
    ]);
    assert!(!plain.status.success());
    assert!(
        String::from_utf8_lossy(&plain.stderr).contains("cannot reach"),
        "{}",
        String::from_utf8_lossy(&plain.stderr)
    );
    let enrolled = run_ok(&["enroll", &district.base, &code, "--data-dir", dir_arg(&a)]);
    assert!(
        enrolled.contains("enrolled with 福田区行政服务中心"),
        "{enrolled}"
    );
    let token = admin_token(&a);
    let station = Node::serve(&a);

    // Down (the catalog) and up (a case) over TLS.
    wait_for("the catalog at the station", WAIT, || {
        (items(&station.base).len() == 25).then_some(())
    });
    let id = new_case(&station.base, &token, 1);
    wait_for("the case at the hall", WAIT, || {
        db_has_case(&d, &id).then_some(())
    });
    let status = sync_status(&station.base, &token);
    assert_eq!(status["quarantined"], 0);
    // Both run on this machine: their clocks agree to within the round trip.
    let offset = status["parent_clock_offset_ms"]
        .as_i64()
        .expect("the offset is known after a session");
    assert!(offset.abs() < 2_000, "clock offset {offset} ms");
    let status = run_ok(&["status", "--data-dir", dir_arg(&a)]);
    assert!(status.contains("clock offset: "), "{status}");
}

#[test]
fn sync_converges_over_a_slow_lossy_link() {
    use std::sync::atomic::Ordering;
    use yizhan_tests::proxy::{Faults, LossyProxy};

    let root = temp_dir();
    let [d, a] = ["district", "station"].map(|n| root.path().join(n));
    init_node(&d, "district", "440304", "福田区行政服务中心");
    quick_sync(&d);
    run_ok(&["import-catalog", CATALOG, "--data-dir", dir_arg(&d)]);
    let district_token = admin_token(&d);
    let district = Node::serve(&d);

    // 30 ms per chunk each way, 64 KB/s, every connection cut after 2–24 KB.
    let proxy = LossyProxy::start(
        &district.base,
        Faults {
            latency: Duration::from_millis(30),
            bytes_per_sec: 64 * 1024,
            cut_after: (2_000, 24_000),
        },
        20261128,
    );
    // Enrollment is a one-off done by a technician; the faults are for the sync link.
    proxy.faulty.store(false, Ordering::Relaxed);
    init_node(&a, "station", "440304001001", "园岭社区");
    quick_sync(&a);
    let code = enroll_code(&d, "440304001001", "station");
    run_ok(&["enroll", &proxy.base, &code, "--data-dir", dir_arg(&a)]);
    proxy.faulty.store(true, Ordering::Relaxed);
    let token = admin_token(&a);
    let station = Node::serve(&a);

    let long = Duration::from_secs(180);
    wait_for("the catalog at the station", long, || {
        (items(&station.base).len() == 25).then_some(())
    });
    let ids: Vec<String> = (0..30)
        .map(|n| new_case(&station.base, &token, n))
        .collect();
    wait_for("every case at the district", long, || {
        let held: HashSet<String> = cases(&district.base, &district_token)
            .into_iter()
            .map(|c| c.0)
            .collect();
        ids.iter().all(|id| held.contains(id)).then_some(())
    });
    // Decisions flow back down the same bad link, on cases the station sent up.
    for id in &ids[..5] {
        send_to_hall(
            &station.base,
            &token,
            id,
            &d,
            &district.base,
            &district_token,
        );
    }
    for id in &ids[..5] {
        let (status, body) = post(
            &client(),
            &format!("{}/api/v1/cases/{id}/events", district.base),
            Some(&district_token),
            &json!({"kind": "decide", "approved": true}),
        )
        .unwrap();
        assert_eq!(status, 200, "{body}");
    }
    wait_for("the decisions at the station", long, || {
        let decided = cases(&station.base, &token)
            .into_iter()
            .filter(|(_, status)| status == "decided")
            .count();
        (decided == 5).then_some(())
    });

    // No duplicate effects: both ends hold exactly these cases with the same events. The
    // last cases' acceptances (and their receipts) may still be on their way up the bad
    // link when the decisions have come down: wait until both ends agree, then compare.
    let events_at = |base: &str, token: &str, id: &str| {
        let (status, case) =
            get(&client(), &format!("{base}/api/v1/cases/{id}"), Some(token)).unwrap();
        assert_eq!(status, 200, "{case}");
        case["events"].clone()
    };
    wait_for("the same events at both ends", long, || {
        ids.iter()
            .all(|id| {
                events_at(&station.base, &token, id)
                    == events_at(&district.base, &district_token, id)
            })
            .then_some(())
    });
    assert_eq!(cases(&district.base, &district_token).len(), ids.len());
    for id in &ids {
        let at = |base: &str, token: &str| events_at(base, token, id);
        let (here, there) = (
            at(&station.base, &token),
            at(&district.base, &district_token),
        );
        assert_eq!(here, there, "case {id}");
        let event_ids: HashSet<String> = here
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(event_ids.len(), here.as_array().unwrap().len());
    }
    // Once the station has pulled again, the district counts nothing pending down to it.
    wait_for("nothing pending down to the station", long, || {
        let status = sync_status(&district.base, &district_token);
        let child = status["peers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["relation"] == "child")
            .cloned()
            .unwrap();
        (child["pending"] == 0).then_some(())
    });
    assert_eq!(sync_status(&station.base, &token)["quarantined"], 0);
    assert_eq!(
        sync_status(&district.base, &district_token)["quarantined"],
        0
    );
    // Technicians see it in /metrics: routes by template, sync counters, gauges.
    let metrics = client()
        .get(&format!("{}/metrics", district.base))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{metrics}"))
    };
    assert!(value("yizhan_sync_received_changes_total") >= 30.0 * 2.0);
    assert!(value("yizhan_sync_sent_changes_total") > 0.0);
    assert!(value("yizhan_database_bytes") > 0.0);
    assert_eq!(value("yizhan_wal_checkpoint_failures_total"), 0.0);
    assert_eq!(value("yizhan_sync_quarantined_changes"), 0.0);
    assert!(metrics.contains(
        "yizhan_http_requests_total{method=\"POST\",route=\"/sync/v1/push\",status=\"200\"}"
    ));
    assert!(!metrics.contains("c-"), "no case id in a label");
    // The link really was bad.
    let cuts = proxy.stats.cuts.load(Ordering::Relaxed);
    assert!(cuts >= 3, "only {cuts} connections were cut");
    eprintln!(
        "lossy link: {} connections, {} cut, {} bytes",
        proxy.stats.connections.load(Ordering::Relaxed),
        cuts,
        proxy.stats.bytes.load(Ordering::Relaxed)
    );
}

/// Case ids a node holds.
fn case_ids(base: &str, token: &str) -> HashSet<String> {
    cases(base, token).into_iter().map(|c| c.0).collect()
}

#[test]
fn a_restored_station_starts_a_new_epoch_and_syncs_without_reusing_numbers() {
    let root = temp_dir();
    let [d, a, r1, r2] =
        ["district", "station", "restored-1", "restored-2"].map(|n| root.path().join(n));
    let backups = root.path().join("backups");
    init_node(&d, "district", "440304", "福田区行政服务中心");
    quick_sync(&d);
    run_ok(&["import-catalog", CATALOG, "--data-dir", dir_arg(&d)]);
    let district_token = admin_token(&d);
    // The district takes scheduled backups: the first one right after it starts.
    let scheduled = root.path().join("scheduled");
    set_config(&d, "dir", &format!("{:?}", scheduled.to_str().unwrap()));
    let district = Node::serve(&d);
    init_node(&a, "station", "440304001001", "园岭社区");
    quick_sync(&a);
    let code = enroll_code(&d, "440304001001", "station");
    run_ok(&["enroll", &district.base, &code, "--data-dir", dir_arg(&a)]);
    let token = admin_token(&a);
    let station = Node::serve(&a);
    wait_for("the catalog at the station", WAIT, || {
        (items(&station.base).len() == 25).then_some(())
    });
    wait_for("a scheduled backup of the district", WAIT, || {
        let names: Vec<String> = std::fs::read_dir(&scheduled)
            .ok()?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        names
            .iter()
            .any(|n| n.ends_with(".tar.gz.sha256"))
            .then_some(())
    });
    let status = run_ok(&["status", "--data-dir", dir_arg(&d)]);
    assert!(status.contains("last backup: "), "{status}");

    // A backup taken while the counter keeps writing is a consistent snapshot.
    let writer = {
        let base = station.base.clone();
        let token = token.clone();
        std::thread::spawn(move || {
            (0..12)
                .map(|n| new_case(&base, &token, n))
                .collect::<Vec<_>>()
        })
    };
    let during = run_ok(&[
        "backup",
        backups.join("during").to_str().unwrap(),
        "--data-dir",
        dir_arg(&a),
    ]);
    let mut written = writer.join().unwrap();
    let archive = |out: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix("backup written: "))
            .expect("the archive is named")
            .to_string()
    };
    run_ok(&["restore", &archive(&during), "--data-dir", dir_arg(&r1)]);
    let rebuilt = run_ok(&["rebuild", "--data-dir", dir_arg(&r1)]);
    assert!(
        rebuilt.contains("rows differing from before: 0"),
        "{rebuilt}"
    );

    // With the counter idle, the restored copy has exactly the node's documents and rows.
    wait_for("the cases at the district", WAIT, || {
        let held = case_ids(&district.base, &district_token);
        written.iter().all(|id| held.contains(id)).then_some(())
    });
    let quiet = run_ok(&[
        "backup",
        backups.join("quiet").to_str().unwrap(),
        "--data-dir",
        dir_arg(&a),
    ]);
    let rows_at_backup = yizhan_tests::materialized_rows(&yizhan_tests::database(&a));
    // Written after the backup: only the parent keeps these once the PC dies.
    let lost: Vec<String> = (0..3)
        .map(|n| new_case(&station.base, &token, 50 + n))
        .collect();
    wait_for("the late cases at the district", WAIT, || {
        let held = case_ids(&district.base, &district_token);
        lost.iter().all(|id| held.contains(id)).then_some(())
    });
    station.kill9();
    // A damaged archive is refused and leaves nothing behind.
    let quiet_archive = archive(&quiet);
    let damaged = root.path().join("damaged.tar.gz");
    let mut bytes = std::fs::read(&quiet_archive).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&damaged, bytes).unwrap();
    std::fs::copy(
        format!("{quiet_archive}.sha256"),
        root.path().join("damaged.tar.gz.sha256"),
    )
    .unwrap();
    let refused = run(&[
        "restore",
        damaged.to_str().unwrap(),
        "--data-dir",
        dir_arg(&r2),
    ]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("checksum"));
    assert!(
        !r2.join("yizhan.toml").exists() && !r2.join("restore-staging").exists(),
        "a refused restore leaves no node and nothing staged"
    );

    let restored = run_ok(&["restore", &quiet_archive, "--data-dir", dir_arg(&r2)]);
    assert!(restored.contains("epoch 2 (was 1)"), "{restored}");
    assert_eq!(
        yizhan_tests::materialized_rows(&yizhan_tests::database(&r2)),
        rows_at_backup
    );

    // The restored node gets back what it wrote after the backup, from its parent.
    let station = Node::serve(&r2);
    wait_for("the lost cases back at the restored station", WAIT, || {
        let held = case_ids(&station.base, &token);
        lost.iter().all(|id| held.contains(id)).then_some(())
    });
    // Its new writes use a new epoch: no reused seq, no quarantine, unique serials.
    let fresh: Vec<String> = (0..2)
        .map(|n| new_case(&station.base, &token, 80 + n))
        .collect();
    wait_for(
        "the restored station's new cases at the district",
        WAIT,
        || {
            let held = case_ids(&district.base, &district_token);
            fresh.iter().all(|id| held.contains(id)).then_some(())
        },
    );
    assert_eq!(
        sync_status(&district.base, &district_token)["quarantined"],
        0
    );
    assert_eq!(sync_status(&station.base, &token)["quarantined"], 0);
    written.extend(lost);
    written.extend(fresh);
    let (_, list) = get(
        &client(),
        &format!("{}/api/v1/cases?limit=200", district.base),
        Some(&district_token),
    )
    .unwrap();
    let serials: Vec<String> = list["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["serial_no"].as_str().map(str::to_string))
        .collect();
    let unique: HashSet<&String> = serials.iter().collect();
    assert_eq!(unique.len(), serials.len(), "no serial number issued twice");
    assert_eq!(serials.len(), written.len());
}
