//! Departments and their seals (issue 15, points 2 and 4), over a three-tier tree of real
//! processes: a district authors the catalog, where one item names the department that
//! decides it (`decided_by`); the sub-district hall defines that department with its
//! approval seal (审批专用章, SZDB/Z 176 §9.6), certified by the hall's key; a station
//! below accepts the applications.
//!
//! * A station's decision on such a case is refused by the station's own engine and, when
//!   forged past it (a decision event signed with the station's key and pushed to the
//!   hall), by the hall's sync core; the department's member at the hall decides, and the
//!   decision is applied and flows down to the station and up to the district (§5.7.2).
//! * The decision notice is sealed with the department's key and verifies at the station
//!   and at the district (`/api/v1/notices/{n}` and `/verify`), naming the department and
//!   the key number; a notice sealed with a key the hall never certified is refused by the
//!   hall's core, and a code signed by such a key does not verify.

use std::path::{Path, PathBuf};
use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{Automerge, ReadDoc};
use serde_json::{Value, json};
use yizhan_node::identity::NodeKey;
use yizhan_sync::auth::NodeRole;
use yizhan_sync::domain::case::{Action, Event};
use yizhan_sync::domain::codes::DivisionCode;
use yizhan_sync::domain::department::{NoticeSeal, SealCertificate, certificate_message};
use yizhan_sync::domain::hlc::Hlc;
use yizhan_sync::envelope::{self, CHAIN_START, Envelope};
use yizhan_sync::feed::{Ack, Batch, SignedSeq};
use yizhan_sync::ids::{DocId, DocKind, Origin, Scope, hex};
use yizhan_sync::wire::Message;
use yizhan_tests::webdriver::Browser;
use yizhan_tests::{
    Node, accepted_case, admin_token, client, enroll_code, get, held_document, init_node, post,
    post_signed, run_ok, set_config, temp_dir, wait_for,
};

const CATALOG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../node/data/demo-catalog.toml"
);
/// 居住证申领, here decided by the sub-district's 区民政局 (code MZJ).
const ITEM: &str = "1144039999000005XU5001099602000";
const WAIT: Duration = Duration::from_secs(60);
const DISTRICT: &str = "440304";
const SUB: &str = "440304001";
const STATION: &str = "440304001001";
const DEPARTMENT: &str = "区民政局";

fn arg(dir: &Path) -> &str {
    dir.to_str().unwrap()
}

/// The tree, serving, with the case accepted at the station and the department's member's
/// token at the hall.
struct Tree {
    _root: tempfile::TempDir,
    district: Node,
    district_token: String,
    sub_dir: PathBuf,
    sub: Node,
    sub_token: String,
    department_token: String,
    station_dir: PathBuf,
    station: Node,
    station_token: String,
    case: String,
}

fn token_of(dir: &Path, user: &str) -> String {
    run_ok(&["token", "create", "--user", user, "--data-dir", arg(dir)])
        .lines()
        .find(|l| l.starts_with("yz_"))
        .expect("a token is printed")
        .to_string()
}

fn tree() -> Tree {
    tree_with(|sub, token, _| {
        let (status, made) = post(
            &client(),
            &sub.url("/api/v1/departments"),
            Some(token),
            &json!({"code": "MZJ", "name": DEPARTMENT}),
        )
        .unwrap();
        assert_eq!(status, 201, "{made}");
    })
}

/// The tree, with the department defined at the hall by `define` (given the hall, its
/// admin's token and password).
fn tree_with(define: impl FnOnce(&Node, &str, &str)) -> Tree {
    let root = temp_dir();
    let [d, s, a] = [DISTRICT, SUB, STATION].map(|n| root.path().join(n));
    // The district's catalog, with the item naming its deciding department.
    let catalog = std::fs::read_to_string(CATALOG).unwrap().replacen(
        &format!("impl_code = \"{ITEM}\"\nversion = 1\n"),
        &format!("impl_code = \"{ITEM}\"\nversion = 1\ndecided_by = \"MZJ\"\n"),
        1,
    );
    assert!(catalog.contains("decided_by = \"MZJ\""));
    let catalog_file = root.path().join("catalog.toml");
    std::fs::write(&catalog_file, catalog).unwrap();
    init_node(&d, "district", DISTRICT, "福田区行政服务中心");
    set_config(&d, "interval_secs", "1");
    run_ok(&["import-catalog", arg(&catalog_file), "--data-dir", arg(&d)]);
    let district_token = admin_token(&d);
    let district = Node::serve(&d);
    let sub_password = init_node(&s, "subdistrict", SUB, "园岭街道行政服务大厅");
    set_config(&s, "interval_secs", "1");
    let code = enroll_code(&d, SUB, "subdistrict");
    run_ok(&["enroll", &district.base, &code, "--data-dir", arg(&s)]);
    // The department's member: a Department account whose counter names it.
    run_ok(&[
        "user",
        "add",
        "minzheng",
        "--role",
        "department",
        "--counter",
        DEPARTMENT,
        "--data-dir",
        arg(&s),
    ]);
    let department_token = token_of(&s, "minzheng");
    let sub_token = admin_token(&s);
    let sub = Node::serve(&s);
    init_node(&a, "station", STATION, "园岭社区工作站");
    set_config(&a, "interval_secs", "1");
    let code = enroll_code(&s, STATION, "station");
    run_ok(&["enroll", &sub.base, &code, "--data-dir", arg(&a)]);
    let station_token = admin_token(&a);
    let station = Node::serve(&a);
    let http = client();
    // The hall's admin defines the department; it reaches the station with the catalog.
    define(&sub, &sub_token, &sub_password);
    wait_for("the department and the item at the station", WAIT, || {
        let (status, _) = get(
            &http,
            &station.url("/api/v1/departments/MZJ"),
            Some(&station_token),
        )
        .ok()?;
        let (_, item) = get(&http, &station.url(&format!("/api/v1/items/{ITEM}")), None).ok()?;
        (status == 200 && item["name"] == "居住证申领").then_some(())
    });
    let case = accepted_case(&station.base, &station_token, ITEM, "张三");
    let (_, view) = get(
        &http,
        &station.url(&format!("/api/v1/cases/{case}")),
        Some(&station_token),
    )
    .unwrap();
    assert_eq!(view["decided_by"]["name"], DEPARTMENT, "{view}");
    assert_eq!(
        view["decided_by"]["hall"],
        NodeKey::load(&s.join("node.key"))
            .unwrap()
            .node_id()
            .to_hex()
    );
    Tree {
        _root: root,
        district,
        district_token,
        sub_dir: s,
        sub,
        sub_token,
        department_token,
        station_dir: a,
        station,
        station_token,
        case,
    }
}

fn event(base: &str, token: &str, id: &str, body: Value) -> (u16, Value) {
    post(
        &client(),
        &format!("{base}/api/v1/cases/{id}/events"),
        Some(token),
        &body,
    )
    .unwrap()
}

fn case_at(node: &Node, token: &str, id: &str) -> Option<Value> {
    let (status, case) = get(
        &client(),
        &node.url(&format!("/api/v1/cases/{id}")),
        Some(token),
    )
    .ok()?;
    (status == 200).then_some(case)
}

/// One change to `document` by `origin`'s actor, enveloped and signed by the station's
/// `key`, pushed to `base`: what a hostile station can send past its own engine.
fn push_forged(
    base: &str,
    key: &NodeKey,
    origin: Origin,
    document: &Automerge,
    doc: &str,
    kind: DocKind,
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
    push_change(base, key, origin, &change, doc, kind)
}

/// `change`, the first of `origin`'s run, enveloped and signed by `key`, pushed to `base`.
fn push_change(
    base: &str,
    key: &NodeKey,
    origin: Origin,
    change: &automerge::Change,
    doc: &str,
    kind: DocKind,
) -> Ack {
    let envelope = Envelope {
        origin,
        seq: 1,
        prev: 0,
        doc: DocId::parse(doc).unwrap(),
        kind,
        scope: Scope::parse(&format!("case/{STATION}")).unwrap(),
        hash: change.hash().0,
        change: change.raw_bytes().to_vec(),
        refused: None,
    };
    let chain = envelope::chain_next(&CHAIN_START, &envelope);
    let signature = envelope::sign(
        &key.identity(
            NodeRole::Station,
            DivisionCode::parse(STATION).unwrap(),
            "x",
        )
        .key,
        &origin,
        1,
        &chain,
    );
    let batch = Batch {
        signatures: vec![SignedSeq {
            scope: envelope.scope.clone(),
            origin,
            seq: 1,
            signature,
        }],
        envelopes: vec![envelope],
        more: false,
    };
    let (status, body) = post_signed(base, key, "/sync/v1/push", batch.encode());
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    Ack::decode(&body).unwrap()
}

fn refused_as(ack: &Ack, code: &str) -> bool {
    ack.applied == 0 && ack.notes.iter().any(|n| n.code == code && !n.waiting)
}

/// The case sent to the department at the hall, signed for and decided there by its
/// member; returns the decision notice's number.
fn department_decides(t: &Tree) -> String {
    let sub_node = NodeKey::load(&t.sub_dir.join("node.key"))
        .unwrap()
        .node_id()
        .to_hex();
    let (status, body) = event(
        &t.station.base,
        &t.station_token,
        &t.case,
        json!({"kind": "transfer", "to": DEPARTMENT, "reason": "由区民政局审批", "to_node": sub_node}),
    );
    assert_eq!(status, 200, "{body}");
    wait_for("the transfer at the hall", WAIT, || {
        case_at(&t.sub, &t.department_token, &t.case)
            .filter(|c| c["holder_node"] == sub_node.as_str())
    });
    let (status, body) = event(
        &t.sub.base,
        &t.department_token,
        &t.case,
        json!({"kind": "sign_for"}),
    );
    assert_eq!(status, 200, "{body}");
    let (status, decided) = event(
        &t.sub.base,
        &t.department_token,
        &t.case,
        json!({"kind": "decide", "approved": true, "reason": "符合条件", "basis": "《居住证暂行条例》"}),
    );
    assert_eq!(status, 200, "{decided}");
    assert_eq!(decided["status"], "decided", "{decided}");
    // The case's notices: the station's receipt and the department's decision notice.
    let numbers = decided["notices"].as_array().unwrap();
    numbers
        .iter()
        .filter_map(|n| n.as_str())
        .find(|n| {
            let (_, notice) = get(
                &client(),
                &t.sub.url(&format!("/api/v1/notices/{n}")),
                Some(&t.sub_token),
            )
            .unwrap();
            notice["kind"] == "decision"
        })
        .unwrap_or_else(|| panic!("no decision notice among {numbers:?}"))
        .to_string()
}

#[test]
fn a_stations_decision_on_a_department_decided_item_is_refused_by_the_core_and_the_departments_decision_at_the_hall_flows_down()
 {
    let t = tree();
    // The station's own engine refuses, with the words of the rule.
    let (status, refused) = event(
        &t.station.base,
        &t.station_token,
        &t.case,
        json!({"kind": "decide", "approved": true}),
    );
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["error"], "not_deciding_department", "{refused}");
    assert!(refused["message"].as_str().unwrap().contains(DEPARTMENT));
    // Forged past the engine: a decision event signed with the station's own key, pushed
    // to the hall once the hall holds the case. The hall's core refuses it by effect.
    wait_for("the case at the hall", WAIT, || {
        case_at(&t.sub, &t.sub_token, &t.case)
    });
    let key = NodeKey::load(&t.station_dir.join("node.key")).unwrap();
    let case_doc = held_document(&t.station_dir, &t.case);
    let decision = Event {
        at: Hlc::new(4_000_000_000_000, 0),
        node: key.node_id(),
        staff: "admin".into(),
        counter: "1号窗口".into(),
        action: Action::Decide {
            approved: true,
            reason: String::new(),
            basis: String::new(),
            remedies: String::new(),
            on_behalf_of: Some(DEPARTMENT.into()),
        },
        stand_in_for: None,
    };
    let ack = push_forged(
        &t.sub.base,
        &key,
        Origin {
            node: key.node_id(),
            epoch: 91,
        },
        &case_doc,
        &t.case,
        DocKind::Case,
        |tx| {
            let events = tx.get(automerge::ROOT, "events").unwrap().unwrap().1;
            tx.put(
                &events,
                decision.id(),
                serde_json::to_string(&decision).unwrap(),
            )
            .unwrap();
        },
    );
    assert!(refused_as(&ack, "event_not_allowed"), "{:?}", ack.notes);
    let at_hall = case_at(&t.sub, &t.sub_token, &t.case).unwrap();
    assert_ne!(at_hall["status"], "decided", "{at_hall}");
    // Nor can it drop the deciding department from a new case's intake to decide that
    // one itself: the hall holds the item and knows which department decides it.
    let mut intake = yizhan_sync::doc::read_intake(&case_doc).unwrap();
    intake.item.decided_by = None;
    intake.submitted_at = Hlc::new(4_000_000_000_000, 1);
    let forger = Origin {
        node: key.node_id(),
        epoch: 93,
    };
    let scope = Scope::parse(&format!("case/{STATION}")).unwrap();
    let (forged_id, forged_case) = yizhan_sync::doc::new_case(&forger, &scope, &intake).unwrap();
    let creation = forged_case.get_changes(&[])[0].clone();
    let ack = push_change(
        &t.sub.base,
        &key,
        forger,
        &creation,
        forged_id.as_str(),
        DocKind::Case,
    );
    assert!(refused_as(&ack, "forbidden_effect"), "{:?}", ack.notes);
    // The hall's admin is no member of the department either.
    let (status, refused) = event(
        &t.sub.base,
        &t.sub_token,
        &t.case,
        json!({"kind": "decide", "approved": true}),
    );
    assert_eq!(status, 403, "{refused}");
    // The department's member at the hall decides; it flows down and up.
    department_decides(&t);
    for (node, token, name) in [
        (&t.station, &t.station_token, "the station"),
        (&t.district, &t.district_token, "the district"),
    ] {
        wait_for(&format!("the decision at {name}"), WAIT, || {
            case_at(node, token, &t.case).filter(|c| c["status"] == "decided")
        });
    }
    // The station completes it once decided.
    let (status, body) = event(
        &t.station.base,
        &t.station_token,
        &t.case,
        json!({"kind": "complete", "result": "已制证", "delivery": "窗口领取"}),
    );
    assert_eq!(status, 200, "{body}");
}

#[test]
fn a_notice_sealed_by_a_department_verifies_at_the_station_and_the_district_and_a_forged_seal_key_is_refused()
 {
    let t = tree();
    let number = department_decides(&t);
    let http = client();
    let mut seal_hex = String::new();
    for (node, token, name) in [
        (&t.station, &t.station_token, "the station"),
        (&t.district, &t.district_token, "the district"),
    ] {
        let notice = wait_for(&format!("the decision notice at {name}"), WAIT, || {
            get(
                &http,
                &node.url(&format!("/api/v1/notices/{number}")),
                Some(token),
            )
            .ok()
            .filter(|(status, _)| *status == 200)
            .map(|(_, n)| n)
        });
        assert_eq!(notice["valid"], true, "{name}: {notice}");
        assert_eq!(notice["department"]["name"], DEPARTMENT, "{notice}");
        assert_eq!(notice["department"]["code"], "MZJ", "{notice}");
        assert_eq!(notice["department"]["key_no"], 1, "{notice}");
        assert_eq!(notice["department"]["certified"], true, "{notice}");
        seal_hex = notice["seal"].as_str().unwrap().to_string();
        // The public page a phone opens from the printed QR link.
        let signature: [u8; 64] = yizhan_sync::ids::unhex(&seal_hex)
            .unwrap()
            .try_into()
            .unwrap();
        let short = yizhan_node::notice::short_code(&number, &signature);
        let page = http
            .get(&node.url(&format!("/verify?c={short}")))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        assert!(
            page.contains("id=\"verdict\" class=\"valid\""),
            "{name}: {page}"
        );
        assert!(page.contains("id=\"verdict-department\""), "{name}: {page}");
        assert!(page.contains(DEPARTMENT), "{name}");
    }
    // A rotated seal: notices sealed with key 1 still verify.
    let (status, rotated) = post(
        &http,
        &t.sub.url("/api/v1/departments/MZJ/rotate"),
        Some(&t.sub_token),
        &json!({}),
    )
    .unwrap();
    assert_eq!(status, 200, "{rotated}");
    wait_for("the rotated seal at the district", WAIT, || {
        let (_, d) = get(
            &http,
            &t.district.url("/api/v1/departments/MZJ"),
            Some(&t.district_token),
        )
        .ok()?;
        (d["seals"].as_array()?.len() == 2).then_some(())
    });
    let (_, again) = get(
        &http,
        &t.district.url(&format!("/api/v1/notices/{number}")),
        Some(&t.district_token),
    )
    .unwrap();
    assert_eq!(again["valid"], true, "{again}");

    // A forged seal key: the station makes up a key and a certificate in the hall's name
    // and pushes a notice sealed with it. The hall's core refuses it.
    let key = NodeKey::load(&t.station_dir.join("node.key")).unwrap();
    let sub_key = NodeKey::load(&t.sub_dir.join("node.key")).unwrap();
    let forged_key = NodeKey::from_seed([66; 32]);
    let department = format!("d-{SUB}-mzj");
    let forged_public = forged_key.public_key();
    let message = certificate_message(
        &department,
        DEPARTMENT,
        &sub_key.node_id(),
        &forged_public,
        1,
        0,
    );
    let forged_seal = NoticeSeal {
        department: "MZJ".into(),
        certificate: SealCertificate {
            department,
            name: DEPARTMENT.into(),
            hall: sub_key.node_id(),
            public_key: forged_public,
            key_no: 1,
            valid_from_ms: 0,
            // Signed by the forged key, not by the hall's.
            signature: forged_key.sign(&message),
        },
    };
    let forged_number = format!("TZ{}E1-000099", &sub_key.node_id().to_hex()[..8]).to_uppercase();
    // In its own name (a notice in another node's name is refused anyway), carrying the
    // made-up certificate of the hall's department.
    let content = json!({
        "format": 1, "number": forged_number, "kind": "decision", "case_id": t.case,
        "node": key.node_id().to_hex(), "seal": forged_seal,
    })
    .to_string();
    let digest = yizhan_sync::domain::notice::digest(content.as_bytes());
    let signature = forged_key.sign(&yizhan_sync::domain::notice::sealed_message(
        &forged_number,
        &digest,
    ));
    let notice_id = yizhan_sync::domain::notice::doc_id(&forged_number).unwrap();
    let ack = push_forged(
        &t.sub.base,
        &key,
        Origin {
            node: key.node_id(),
            epoch: 92,
        },
        &Automerge::new(),
        notice_id.as_str(),
        DocKind::Notice,
        |tx| {
            tx.put(automerge::ROOT, "schema", yizhan_sync::doc::SCHEMA)
                .unwrap();
            tx.put(automerge::ROOT, "kind", "notice").unwrap();
            tx.put(automerge::ROOT, "scope", format!("case/{STATION}"))
                .unwrap();
            tx.put(automerge::ROOT, "content", content.clone()).unwrap();
            tx.put(automerge::ROOT, "digest", hex(&digest)).unwrap();
            tx.put(automerge::ROOT, "seal", hex(&signature)).unwrap();
        },
    );
    assert!(refused_as(&ack, "forbidden_effect"), "{:?}", ack.notes);
    let (status, _) = get(
        &http,
        &t.sub.url(&format!("/api/v1/notices/{forged_number}")),
        Some(&t.sub_token),
    )
    .unwrap();
    assert_eq!(status, 404, "the forged notice is held nowhere");
    // The genuine notice's printed code re-signed with the forged key does not verify,
    // at the station or the district, and says so in plain words.
    let (_, genuine) = get(
        &http,
        &t.district.url(&format!("/api/v1/notices/{number}")),
        Some(&t.district_token),
    )
    .unwrap();
    let genuine_digest: [u8; 32] = yizhan_sync::ids::unhex(genuine["digest"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let resigned = forged_key.sign(&yizhan_sync::domain::notice::sealed_message(
        &number,
        &genuine_digest,
    ));
    let code = yizhan_node::notice::qr_text(
        &sub_key.node_id().to_hex(),
        &number,
        &genuine_digest,
        &resigned,
    );
    for node in [&t.station, &t.district] {
        let page = http
            .get(&node.url("/verify"))
            .query("code", &code)
            .header("Accept-Language", "en")
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        assert!(page.contains("id=\"verdict\" class=\"invalid\""), "{page}");
        assert!(!page.contains("id=\"verdict-department\""), "{page}");
    }
    assert_ne!(hex(&resigned), seal_hex);

    // The seal keys are kept like the node key: owner-only, in the backup, restored.
    let keys = t.sub_dir.join("seals.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&keys).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let backups = t._root.path().join("backups");
    let out = run_ok(&["backup", arg(&backups), "--data-dir", arg(&t.sub_dir)]);
    let archive = out
        .lines()
        .find_map(|l| l.strip_prefix("backup written: "))
        .expect("the archive is named")
        .to_string();
    let restored = t._root.path().join("restored");
    run_ok(&["restore", &archive, "--data-dir", arg(&restored)]);
    assert_eq!(
        std::fs::read(restored.join("seals.key")).unwrap(),
        std::fs::read(&keys).unwrap()
    );
}

/// In Chromium: the hall's admin creates the department on its page (a worker is offered
/// no form), and once its member decided, the decision notice's QR link opened at the
/// station shows the department's seal on `/verify`.
#[test]
fn in_the_browser_a_hall_admin_creates_a_department_and_its_seal_shows_on_verify_at_the_station() {
    let browser = Browser::start();
    let t = tree_with(|sub, _, password| {
        browser.goto(&sub.url("/signin"));
        browser.find("#username").type_text("admin");
        browser.find("#password").type_text(password);
        browser.find("#signin-submit").click();
        browser.wait_text("#greeting", |t| !t.is_empty());
        browser.find("#nav-departments").click();
        browser.wait_text("#departments-title", |t| !t.is_empty());
        assert!(!browser.find_all("#departments-empty").is_empty());
        browser.find("#dept-code").type_text("MZJ");
        browser.find("#dept-name").type_text(DEPARTMENT);
        browser.screenshot("departments-01-create");
        browser.find("#dept-create").click();
        let names = browser.wait_texts("#departments-list td.dept-name", |t| !t.is_empty());
        assert_eq!(names, [DEPARTMENT]);
        let seals = browser.find("#departments-list td.dept-seals").text();
        assert!(seals.contains('1'), "{seals}");
        // A code taken already is refused on the page, in words.
        browser.find("#dept-code").type_text("mzj");
        browser.find("#dept-name").type_text("区人社局");
        browser.find("#dept-create").click();
        let why = browser.wait_text("#form-errors", |t| !t.is_empty());
        assert!(why.contains("MZJ") || why.contains("mzj"), "{why}");
        // A rotation adds key 2.
        browser.find(".dept-rotate").click();
        browser.wait_texts("#departments-list .dept-seal", |t| t.len() == 2);
        browser.screenshot("departments-02-rotated");
    });
    let number = department_decides(&t);
    let (_, notice) = wait_for("the decision notice at the station", WAIT, || {
        get(
            &client(),
            &t.station.url(&format!("/api/v1/notices/{number}")),
            Some(&t.station_token),
        )
        .ok()
        .filter(|(status, _)| *status == 200)
    });
    assert_eq!(notice["department"]["key_no"], 2, "{notice}");
    let signature: [u8; 64] = yizhan_sync::ids::unhex(notice["seal"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let short = yizhan_node::notice::short_code(&number, &signature);
    browser.goto(&t.station.url(&format!("/verify?c={short}")));
    let seal = browser.wait_text("#verdict-department", |t| !t.is_empty());
    assert!(seal.contains(DEPARTMENT) && seal.contains('2'), "{seal}");
    assert_eq!(browser.find("#verdict").attribute("class"), "valid");
    assert!(!browser.find("#verdict-kind").text().is_empty());
    browser.screenshot("departments-03-verify-at-station");
}
