//! Parallel approval (并联审批, SZDB/Z 176 §7.5; 行政许可法 §26; issue 15, point 5) over a
//! three-tier tree of real processes: the district's catalog has the demo's combined item
//! (小型餐饮店开业, three parts); the sub-district hall defines its three departments, each
//! with a member; a station below accepts the application.
//!
//! One acceptance makes one case the applicant sees and a sub-case per department, sent
//! to the hall. The departments decide there one by one; the whole is decided only after
//! the third, at the hall and, once synced, at the station, on its case page and for the
//! applicant's query; the station then completes it. Before that the station may neither
//! decide nor complete the whole, nor decide a part.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use yizhan_node::identity::NodeKey;
use yizhan_tests::visitor::Visitor;
use yizhan_tests::{
    Node, add_user, admin_token, client, enroll_code, get, init_node, post, run_ok, set_config,
    temp_dir, wait_for,
};

/// The demo catalog's combined item (see node/data/demo-catalog.toml, COM-04).
const ITEM: &str = "11440399990000025E4000799701000";
const WAIT: Duration = Duration::from_secs(60);
const DISTRICT: &str = "440399";
const SUB: &str = "440399001";
const STATION: &str = "440399001001";
/// The parts' departments, in the item's order: code, name, the member's username.
const DEPARTMENTS: [(&str, &str, &str); 3] = [
    ("SCJ", "区市场监督管理局", "shichang"),
    ("XFJ", "区消防救援大队", "xiaofang"),
    ("CGJ", "区城市管理局", "chengguan"),
];

fn arg(dir: &Path) -> &str {
    dir.to_str().unwrap()
}

fn token_of(dir: &Path, user: &str) -> String {
    run_ok(&["token", "create", "--user", user, "--data-dir", arg(dir)])
        .lines()
        .find(|l| l.starts_with("yz_"))
        .expect("a token is printed")
        .to_string()
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

fn event(node: &Node, token: &str, id: &str, body: Value) -> (u16, Value) {
    post(
        &client(),
        &node.url(&format!("/api/v1/cases/{id}/events")),
        Some(token),
        &body,
    )
    .unwrap()
}

/// The text of the element with `id` (up to the next tag).
fn text_of(page: &str, id: &str) -> String {
    page.split(&format!("id=\"{id}\">"))
        .nth(1)
        .unwrap_or_else(|| panic!("no #{id} in {page}"))
        .split('<')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn a_combined_case_with_three_departments_completes_only_when_all_three_have_decided() {
    let root = temp_dir();
    let [d, s, a] = [DISTRICT, SUB, STATION].map(|n| root.path().join(n));
    // The district, with the demo catalog.
    init_node(&d, "district", DISTRICT, "示范区政务服务中心");
    set_config(&d, "interval_secs", "1");
    run_ok(&[
        "import-catalog",
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../node/data/demo-catalog.toml"
        ),
        "--data-dir",
        arg(&d),
    ]);
    let district = Node::serve(&d);
    // The sub-district hall, its departments' members, and its departments.
    init_node(&s, "subdistrict", SUB, "示范街道行政服务大厅");
    set_config(&s, "interval_secs", "1");
    let code = enroll_code(&d, SUB, "subdistrict");
    run_ok(&["enroll", &district.base, &code, "--data-dir", arg(&s)]);
    let mut passwords = Vec::new();
    for (_, name, user) in DEPARTMENTS {
        let added = run_ok(&[
            "user",
            "add",
            user,
            "--role",
            "department",
            "--counter",
            name,
            "--data-dir",
            arg(&s),
        ]);
        passwords.push(
            added
                .lines()
                .find_map(|l| l.trim().strip_prefix("password: "))
                .expect("a password is printed")
                .to_string(),
        );
    }
    let members: Vec<String> = DEPARTMENTS
        .iter()
        .map(|(_, _, user)| token_of(&s, user))
        .collect();
    let hall_token = admin_token(&s);
    let hall = Node::serve(&s);
    let hall_node = NodeKey::load(&s.join("node.key"))
        .unwrap()
        .node_id()
        .to_hex();
    let http = client();
    for (code, name, _) in DEPARTMENTS {
        let (status, made) = post(
            &http,
            &hall.url("/api/v1/departments"),
            Some(&hall_token),
            &json!({"code": code, "name": name}),
        )
        .unwrap();
        assert_eq!(status, 201, "{made}");
    }
    // The station, once it holds the item and the departments.
    init_node(&a, "station", STATION, "示范社区党群服务中心");
    set_config(&a, "interval_secs", "1");
    let code = enroll_code(&s, STATION, "station");
    run_ok(&["enroll", &hall.base, &code, "--data-dir", arg(&a)]);
    let station_token = admin_token(&a);
    let clerk = add_user(&a, "clerk", "worker");
    let station = Node::serve(&a);
    wait_for("the item and its departments at the station", WAIT, || {
        let (_, item) = get(&http, &station.url(&format!("/api/v1/items/{ITEM}")), None).ok()?;
        let known = DEPARTMENTS.iter().all(|(code, _, _)| {
            get(
                &http,
                &station.url(&format!("/api/v1/departments/{code}")),
                Some(&station_token),
            )
            .is_ok_and(|(status, _)| status == 200)
        });
        (known && item["parts"].as_array().is_some_and(|p| p.len() == 3)).then_some(())
    });

    // The OpenAPI document describes the parts of an item and of a case.
    let (_, doc) = get(&http, &station.url("/api/v1/openapi.json"), None).unwrap();
    let schemas = &doc["components"]["schemas"];
    assert!(
        schemas["ItemView"]["properties"]["parts"].is_object(),
        "{}",
        schemas["ItemView"]
    );
    assert!(
        schemas["CaseView"]["properties"]["parts"].is_object(),
        "{}",
        schemas["CaseView"]
    );
    assert!(schemas["CaseView"]["properties"]["part_of"].is_object());
    assert!(
        schemas["PartOut"]["properties"]["department"].is_object(),
        "{schemas}"
    );

    // One acceptance: one case with three parts, each a sub-case sent to the hall.
    let (_, item) = get(&http, &station.url(&format!("/api/v1/items/{ITEM}")), None).unwrap();
    let materials: Vec<Value> = item["materials"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| json!({"name": m["name"], "originals": m["originals"], "copies": m["copies"]}))
        .collect();
    let (status, received) = post(
        &http,
        &station.url("/api/v1/cases"),
        Some(&station_token),
        &json!({
            "item": ITEM,
            "applicant": {"type": "natural_person", "name": "王五", "id_number": "11010519491231002X", "phone": "13800138000"},
            "materials": materials,
        }),
    )
    .unwrap();
    assert_eq!(status, 201, "{received}");
    // The creation answers with the parent and its parts, not yet made into sub-cases.
    let parent = received["id"].as_str().unwrap().to_string();
    assert_eq!(
        received["parts"].as_array().map(Vec::len),
        Some(3),
        "{received}"
    );
    assert!(received["parts"][0]["case_id"].is_null(), "{received}");
    let (status, accepted) = event(&station, &station_token, &parent, json!({"kind": "accept"}));
    assert_eq!(status, 200, "{accepted}");
    let view = case_at(&station, &station_token, &parent).unwrap();
    assert_eq!(view["status"], "accepted", "{view}");
    let parts = view["parts"].as_array().unwrap().clone();
    assert_eq!(parts.len(), 3, "{view}");
    let mut subs = Vec::new();
    for (part, (code, name, _)) in parts.iter().zip(DEPARTMENTS) {
        assert_eq!(part["department_code"], code, "{part}");
        assert_eq!(part["department"], name, "{part}");
        assert_eq!(part["status"], "accepted", "{part}");
        subs.push(part["case_id"].as_str().unwrap().to_string());
    }
    // The whole has the law's 45 working days, the fire check its own 10.
    assert_eq!(view["item"]["legal_limit_days"], 45, "{view}");
    assert_eq!(parts[1]["limit_days"], 10);
    let first = case_at(&station, &station_token, &subs[0]).unwrap();
    assert_eq!(first["part_of"]["parent"], parent.as_str(), "{first}");
    assert_eq!(first["decided_by"]["code"], "SCJ", "{first}");
    assert_eq!(first["holder_node"], hall_node.as_str(), "{first}");
    // One receipt, the parent's: the applicant holds one query code and one notice.
    assert_eq!(
        accepted["notices"].as_array().map(Vec::len),
        Some(1),
        "{accepted}"
    );
    assert_eq!(
        first["notices"].as_array().map(Vec::len),
        Some(0),
        "{first}"
    );
    // The station decides neither the whole nor a part, nor completes the whole.
    let decide = json!({"kind": "decide", "approved": true, "reason": "符合条件", "basis": "《行政许可法》"});
    let complete = json!({"kind": "complete", "result": "准予", "delivery": "窗口领取"});
    for (id, body, code) in [
        (&parent, &decide, "decided_by_parts"),
        (&parent, &complete, "decided_by_parts"),
        (&subs[0], &decide, "not_deciding_department"),
    ] {
        let (status, refused) = event(&station, &station_token, id, body.clone());
        assert!(
            status == 403 || status == 409 || status == 422,
            "{status} {refused}"
        );
        assert_eq!(refused["error"], code, "{refused}");
    }

    // At the hall, a department's member finds the parts among the cases sent there,
    // each page naming the case it is a part of.
    wait_for("the parts at the hall", WAIT, || {
        subs.iter()
            .all(|sub| case_at(&hall, &members[0], sub).is_some())
            .then_some(())
    });
    let mut member = Visitor::new(&hall);
    member.sign_in(DEPARTMENTS[0].2, &passwords[0]);
    let (status, page, _) = member.get("/transfers");
    assert_eq!(status, 200);
    let received = page
        .split("id=\"transfers-received\"")
        .nth(1)
        .expect("cases sent here");
    for sub in &subs {
        assert!(
            received.contains(&format!("/cases/{sub}")),
            "{sub} not on {page}"
        );
    }
    let (status, page, _) = member.get(&format!("/cases/{}", subs[0]));
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!("href=\"/cases/{parent}\"")),
        "{page}"
    );

    // The departments decide at the hall, one by one.
    for (n, (sub, token)) in subs.iter().zip(&members).enumerate() {
        wait_for("the part at the hall", WAIT, || {
            case_at(&hall, token, sub).filter(|c| c["holder_node"] == hall_node.as_str())
        });
        // Another department's member may not decide this part.
        let other = &members[(n + 1) % 3];
        let (status, refused) = event(&hall, other, sub, decide.clone());
        assert_ne!(status, 200, "{refused}");
        let (status, body) = event(&hall, token, sub, json!({"kind": "sign_for"}));
        assert_eq!(status, 200, "{body}");
        let (status, decided) = event(&hall, token, sub, decide.clone());
        assert_eq!(status, 200, "{decided}");
        assert_eq!(decided["status"], "decided", "{decided}");
        let whole = case_at(&hall, &hall_token, &parent).unwrap();
        if n < 2 {
            assert_eq!(whole["status"], "accepted", "after {} of 3: {whole}", n + 1);
            assert_eq!(whole["decision"], Value::Null, "{whole}");
        } else {
            assert_eq!(whole["status"], "decided", "after all three: {whole}");
            assert_eq!(whole["decision"], true, "{whole}");
        }
        assert_eq!(whole["parts"][n]["status"], "decided", "{whole}");
    }

    // At the station, once synced: decided; the station completes and delivers it.
    let whole = wait_for("the decided whole at the station", WAIT, || {
        case_at(&station, &station_token, &parent).filter(|c| c["status"] == "decided")
    });
    assert_eq!(whole["decision"], true, "{whole}");
    // The station's list counts the whole decided too: its row follows the parts it
    // received, not only its own document.
    let (status, listed) = get(
        &client(),
        &station.url("/api/v1/cases?status=decided"),
        Some(&station_token),
    )
    .unwrap();
    assert_eq!(status, 200, "{listed}");
    assert!(
        listed["cases"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == parent.as_str()),
        "the whole is not listed as decided: {listed}"
    );
    assert!(
        whole["allowed_actions"]
            .as_array()
            .unwrap()
            .contains(&json!("complete")),
        "{whole}"
    );
    let (status, done) = event(&station, &station_token, &parent, complete);
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["status"], "completed", "{done}");

    // The applicant sees the one case, with each department's part.
    let mut applicant = Visitor::new(&station);
    let (status, page, _) = applicant.post(
        "/status",
        &[
            ("code", done["query_code"].as_str().unwrap()),
            ("phone4", "8000"),
        ],
    );
    assert_eq!(status, 200, "{page}");
    assert_eq!(text_of(&page, "public-status"), "已办结");
    let parts_shown = page.split("id=\"public-parts\"").nth(1).unwrap();
    for (_, name, _) in DEPARTMENTS {
        assert!(parts_shown.contains(name), "{name} not on {page}");
    }
    assert_eq!(parts_shown.matches("已决定 · 准予").count(), 3, "{page}");
    // And the station's case page shows the parts to its staff.
    let mut worker = Visitor::new(&station);
    worker.sign_in("clerk", &clerk);
    let (status, page, _) = worker.get(&format!("/cases/{parent}"));
    assert_eq!(status, 200);
    assert_eq!(text_of(&page, "case-status"), "已办结");
    assert_eq!(page.matches("class=\"case-part\"").count(), 3, "{page}");
}
