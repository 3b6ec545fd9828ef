//! The tree's trust, tried with real nodes over HTTP as a hostile station would, with
//! nothing but its own enrolled key (issue "Trust of the tree"): changes are judged by the
//! document they land in and what they do there, what a hall refuses the sender learns,
//! and two stations of one community never issue the same serial number.

use std::path::Path;
use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{Automerge, ReadDoc};
use serde_json::Value;
use yizhan_node::identity::NodeKey;
use yizhan_sync::auth::{NodeRecord, NodeRole};
use yizhan_sync::domain::codes::DivisionCode;
use yizhan_sync::envelope::{self, CHAIN_START, Envelope};
use yizhan_sync::feed::{Ack, Batch, SignedSeq};
use yizhan_sync::ids::{DocId, DocKind, Origin, Scope};
use yizhan_sync::wire::Message;
use yizhan_tests::{
    Node, accepted_case, admin_token, client, database, enroll_code, get, held_document, init_node,
    post_signed, run_ok, set_config, temp_dir, wait_for,
};

const CATALOG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../node/data/demo-catalog.toml"
);
const ITEM: &str = "1144039999000005XU5001099602000";
const WAIT: Duration = Duration::from_secs(60);

fn arg(dir: &Path) -> &str {
    dir.to_str().unwrap()
}

fn quick_sync(dir: &Path) {
    set_config(dir, "interval_secs", "1");
}

/// `yizhan init` + `yizhan enroll` of a station of `division` under the hall in `hall`.
fn enrolled_station(dir: &Path, hall_dir: &Path, hall: &Node, division: &str, name: &str) {
    init_node(dir, "station", division, name);
    quick_sync(dir);
    let code = enroll_code(hall_dir, division, "station");
    run_ok(&["enroll", &hall.base, &code, "--data-dir", arg(dir)]);
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

fn item_name(base: &str) -> String {
    let (_, item) = get(&client(), &format!("{base}/api/v1/items/{ITEM}"), None).unwrap();
    item["name"].as_str().unwrap_or_default().to_string()
}

fn case_ids(base: &str, token: &str) -> Vec<String> {
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
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

/// How many registry rows name `node` in the database of `data_dir`.
fn registry_rows(data_dir: &Path, node: &str) -> i64 {
    let conn = rusqlite::Connection::open_with_flags(
        database(data_dir),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    conn.query_row(
        "SELECT count(*) FROM registry_records WHERE node_id = ?1",
        [node],
        |r| r.get(0),
    )
    .unwrap()
}

/// One change to `document`, written by `origin`'s actor, enveloped under the given
/// labels and signed by `key`, pushed to `base`: what a hostile node can send.
#[allow(clippy::too_many_arguments)]
fn push_forged(
    base: &str,
    key: &NodeKey,
    origin: Origin,
    seq: u64,
    document: &Automerge,
    doc: &str,
    kind: DocKind,
    scope: &str,
    write: impl FnOnce(&mut automerge::transaction::Transaction<'_>),
) -> Ack {
    let mut copy = document.fork();
    copy.set_actor(origin.actor());
    copy.transact::<_, _, automerge::AutomergeError>(|tx| {
        write(tx);
        Ok(())
    })
    .unwrap();
    let change = copy.get_last_local_change().unwrap();
    let envelope = Envelope {
        origin,
        seq,
        prev: seq - 1,
        doc: DocId::parse(doc).unwrap(),
        kind,
        scope: Scope::parse(scope).unwrap(),
        hash: change.hash().0,
        change: change.raw_bytes().to_vec(),
        refused: None,
    };
    // A run of one change, starting fresh (its own epoch for every forgery).
    assert_eq!(seq, 1);
    let chain = envelope::chain_next(&CHAIN_START, &envelope);
    let signature = yizhan_sync::envelope::sign(
        &key.identity(
            NodeRole::Station,
            DivisionCode::parse("440304001001").unwrap(),
            "x",
        )
        .key,
        &origin,
        seq,
        &chain,
    );
    let batch = Batch {
        signatures: vec![SignedSeq {
            scope: envelope.scope.clone(),
            origin,
            seq,
            signature,
        }],
        envelopes: vec![envelope],
        more: false,
    };
    let (status, body) = post_signed(base, key, "/sync/v1/push", batch.encode());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    Ack::decode(&body).unwrap()
}

/// The attack that broke the first release, replayed against real nodes: a station with
/// its own key pushes a change labelled as its own case that lands in the hall's registry
/// (adding a district-level key of its own), and catalog writes; the hall refuses them,
/// never forwards them, and genuine changes keep flowing both ways.
#[test]
fn a_station_cannot_rewrite_what_it_holds() {
    let root = temp_dir();
    let [d, s, a, b, c] =
        ["district", "sub", "station-a", "station-b", "station-c"].map(|n| root.path().join(n));
    init_node(&d, "district", "440304", "福田区行政服务中心");
    quick_sync(&d);
    run_ok(&["import-catalog", CATALOG, "--data-dir", arg(&d)]);
    let district_token = admin_token(&d);
    let district = Node::serve(&d);
    init_node(&s, "subdistrict", "440304001", "园岭街道行政服务大厅");
    quick_sync(&s);
    let code = enroll_code(&d, "440304001", "subdistrict");
    run_ok(&["enroll", &district.base, &code, "--data-dir", arg(&s)]);
    let sub_token = admin_token(&s);
    let sub = Node::serve(&s);
    enrolled_station(&a, &s, &sub, "440304001001", "园岭社区");
    enrolled_station(&b, &s, &sub, "440304001002", "百花社区");
    let token_a = admin_token(&a);
    let station_a = Node::serve(&a);
    let station_b = Node::serve(&b);
    for station in [&station_a, &station_b] {
        wait_for("the catalog and the registry at the stations", WAIT, || {
            (item_name(&station.base) == "居住证申领").then_some(())
        });
    }
    let item_id = format!("i-{}", ITEM.to_ascii_lowercase());
    wait_for("the documents in station A's database", WAIT, || {
        let conn = rusqlite::Connection::open(database(&a)).unwrap();
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM documents WHERE id IN ('r-440304001', ?1)",
                [&item_id],
                |r| r.get(0),
            )
            .unwrap();
        (n == 2).then_some(())
    });

    // Station A's key, and a fresh epoch of its own for each forgery (so its own later
    // changes keep their numbers).
    let key_a = NodeKey::load(&a.join("node.key")).unwrap();
    let forger = |epoch: u32| Origin {
        node: key_a.node_id(),
        epoch,
    };
    let usurper_key = NodeKey::from_seed([42; 32]);
    let usurper = NodeRecord {
        node: usurper_key.node_id(),
        public_key: usurper_key.public_key(),
        role: NodeRole::District,
        division: DivisionCode::parse("440304").unwrap(),
        name: "伪造的区级节点".into(),
        enrolled_by: key_a.node_id(),
        enrolled_ms: 0,
        revoked: None,
        segment: None,
    };
    let registry = held_document(&a, "r-440304001");
    let vouch = |tx: &mut automerge::transaction::Transaction<'_>| {
        let nodes = tx.get(automerge::ROOT, "nodes").unwrap().unwrap().1;
        tx.put(
            &nodes,
            usurper.node.to_hex(),
            serde_json::to_string(&usurper).unwrap(),
        )
        .unwrap();
    };
    let item = held_document(&a, &item_id);
    let rename = |tx: &mut automerge::transaction::Transaction<'_>| {
        let (text, _) = tx.get(automerge::ROOT, "item").unwrap().unwrap();
        let mut item: Value = serde_json::from_str(text.as_str().unwrap()).unwrap();
        item["name"] = "伪造的事项名称".into();
        tx.put(automerge::ROOT, "item", item.to_string()).unwrap();
    };
    let attempts = [
        (
            "the registry, labelled as its own case",
            push_forged(
                &sub.base,
                &key_a,
                forger(91),
                1,
                &registry,
                "r-440304001",
                DocKind::Case,
                "case/440304001001",
                vouch,
            ),
            "mislabelled",
        ),
        (
            "the registry, labelled truly",
            push_forged(
                &sub.base,
                &key_a,
                forger(92),
                1,
                &registry,
                "r-440304001",
                DocKind::Registry,
                "registry/440304001",
                vouch,
            ),
            "not_authorized",
        ),
        (
            "a district item, labelled as its own case",
            push_forged(
                &sub.base,
                &key_a,
                forger(93),
                1,
                &item,
                &item_id,
                DocKind::Case,
                "case/440304001001",
                rename,
            ),
            "mislabelled",
        ),
        (
            "a district item, labelled truly",
            push_forged(
                &sub.base,
                &key_a,
                forger(94),
                1,
                &item,
                &item_id,
                DocKind::Item,
                "catalog/440304",
                rename,
            ),
            "not_authorized",
        ),
    ];
    for (what, ack, code) in &attempts {
        assert_eq!(ack.applied, 0, "{what}");
        assert!(
            ack.notes.iter().any(|n| n.code == *code && !n.waiting),
            "{what}: the sender is told why ({code}): {:?}",
            ack.notes
        );
    }
    let codes: Vec<String> = sync_status(&sub.base, &sub_token)["recent_quarantine"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["code"].as_str().unwrap().to_string())
        .collect();
    assert!(
        codes.iter().filter(|c| *c == "mislabelled").count() >= 2,
        "{codes:?}"
    );

    // Genuine changes still flow both ways: a new station enrolled at the sub-district
    // reaches station B and the district; a new case at A reaches the district.
    enrolled_station(&c, &s, &sub, "440304001003", "新洲社区");
    let key_c = NodeKey::load(&c.join("node.key"))
        .unwrap()
        .node_id()
        .to_hex();
    let case = accepted_case(&station_a.base, &token_a, ITEM, "张三");
    wait_for("the new case at the district", WAIT, || {
        case_ids(&district.base, &district_token)
            .contains(&case)
            .then_some(())
    });
    for (name, dir) in [("district", &d), ("station B", &b)] {
        wait_for(&format!("station C's key at {name}"), WAIT, || {
            (registry_rows(dir, &key_c) > 0).then_some(())
        });
    }
    // Nothing forged landed or travelled anywhere.
    for dir in [&s, &d, &b] {
        assert_eq!(registry_rows(dir, &usurper.node.to_hex()), 0, "{dir:?}");
    }
    for node in [&sub, &district, &station_b] {
        assert_eq!(item_name(&node.base), "居住证申领", "{}", node.base);
    }
    assert_eq!(
        sync_status(&district.base, &district_token)["quarantined"],
        0,
        "nothing refused at the sub-district was forwarded to the district"
    );
    // The usurper's key opens nothing.
    let (status, _) = post_signed(&sub.base, &usurper_key, "/sync/v1/hello", Vec::new());
    assert_eq!(status, 401);
}

/// A failure to apply one change at the hall (injected: its rows cannot be written) is
/// seen at the station that sent it within one sync session, and does not stop the rest.
#[test]
fn a_failure_at_the_hall_is_seen_at_the_station() {
    let root = temp_dir();
    let [s, a] = ["district", "station-a"].map(|n| root.path().join(n));
    init_node(&s, "district", "440304", "福田区行政服务中心");
    quick_sync(&s);
    run_ok(&["import-catalog", CATALOG, "--data-dir", arg(&s)]);
    let sub_token = admin_token(&s);
    // The hall's database refuses the rows of one applicant's case.
    {
        let conn = rusqlite::Connection::open(database(&s)).unwrap();
        conn.execute_batch(
            "CREATE TRIGGER injected_failure BEFORE INSERT ON cases
             WHEN NEW.applicant_name = '故障注入'
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        )
        .unwrap();
    }
    let sub = Node::serve(&s);
    enrolled_station(&a, &s, &sub, "440304001001", "园岭社区");
    let token_a = admin_token(&a);
    let station_a = Node::serve(&a);
    wait_for("the catalog at station A", WAIT, || {
        (item_name(&station_a.base) == "居住证申领").then_some(())
    });
    let failing = accepted_case(&station_a.base, &token_a, ITEM, "故障注入");
    let fine = accepted_case(&station_a.base, &token_a, ITEM, "李四");
    let seen = wait_for("the refusal at station A", WAIT, || {
        let status = sync_status(&station_a.base, &token_a);
        status["recent_refusals_by_peers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["code"] == "cannot_derive" && r["document"] == failing.as_str())
            .cloned()
    });
    assert!(
        seen["reason"]
            .as_str()
            .unwrap()
            .contains("injected failure"),
        "{seen}"
    );
    // The rest went on: the other case is at the hall.
    wait_for("the other case at the hall", WAIT, || {
        case_ids(&sub.base, &sub_token)
            .contains(&fine)
            .then_some(())
    });
    let metrics = client()
        .get(&format!("{}/metrics", station_a.base))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("yizhan_sync_refused_by_peers ") && !l.ends_with(" 0")),
        "{metrics}"
    );
    let status = run_ok(&["status", "--data-dir", arg(&a)]);
    assert!(status.contains("refused by peers: 1"), "{status}");
}

/// Two stations enrolled for the same community, both offline, accept the same item on
/// the same day: their serial numbers differ, fit the platforms' 50 characters, and both
/// stations' cases reach the hall.
#[test]
fn two_stations_in_one_community_never_share_a_serial_number() {
    let root = temp_dir();
    let [d, s, a1, a2] = ["district", "sub", "station-1", "station-2"].map(|n| root.path().join(n));
    init_node(&d, "district", "440304", "福田区行政服务中心");
    quick_sync(&d);
    run_ok(&["import-catalog", CATALOG, "--data-dir", arg(&d)]);
    let district = Node::serve(&d);
    init_node(&s, "subdistrict", "440304001", "园岭街道行政服务大厅");
    quick_sync(&s);
    let code = enroll_code(&d, "440304001", "subdistrict");
    run_ok(&["enroll", &district.base, &code, "--data-dir", arg(&s)]);
    let sub_token = admin_token(&s);
    let sub = Node::serve(&s);
    let sub_base = sub.base.clone();
    enrolled_station(&a1, &s, &sub, "440304001001", "园岭社区（一号机）");
    enrolled_station(&a2, &s, &sub, "440304001001", "园岭社区（二号机）");
    let tokens = [admin_token(&a1), admin_token(&a2)];
    let stations = [Node::serve(&a1), Node::serve(&a2)];
    for station in &stations {
        wait_for("the catalog at the station", WAIT, || {
            (item_name(&station.base) == "居住证申领").then_some(())
        });
    }
    // The hall goes away; both stations work on.
    sub.kill9();
    let mut serials = Vec::new();
    let mut ids = Vec::new();
    for (station, token) in stations.iter().zip(&tokens) {
        for n in 0..3 {
            let id = accepted_case(&station.base, token, ITEM, &format!("申请人{n}"));
            let (_, case) = get(
                &client(),
                &format!("{}/api/v1/cases/{id}", station.base),
                Some(token),
            )
            .unwrap();
            serials.push(case["serial_no"].as_str().unwrap().to_string());
            ids.push(id);
        }
    }
    let mut distinct = serials.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), serials.len(), "{serials:?}");
    assert!(serials.iter().all(|s| s.len() <= 50), "{serials:?}");
    // The two machines' numbers differ in the node segment the hall gave each.
    assert_ne!(serials[0][39..45], serials[3][39..45]);
    let sub = Node::restart(&s, &sub_base);
    wait_for("both stations' cases at the hall", WAIT, || {
        let held = case_ids(&sub.base, &sub_token);
        ids.iter().all(|id| held.contains(id)).then_some(())
    });
}
