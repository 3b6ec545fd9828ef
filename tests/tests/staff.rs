//! Staff accounts across the tree (issue 15, SZDB/Z 176 §8.6.3), over real processes: a
//! district, the sub-district hall enrolled with it and a station enrolled with the
//! sub-district. The sub-district's admin writes one account for its area through the API;
//! the person signs in with it at the hall and at the station; disabled at the hall, it is
//! refused at both after a sync, and the session already open at the station ends. In
//! headless Chromium, the hall's admin writes an account on the admin page and the person
//! signs in at the station with the password the page showed once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;
use yizhan_tests::visitor::Visitor;
use yizhan_tests::webdriver::Browser;
use yizhan_tests::{
    Node, admin_token, client, enroll_code, get, init_node, post, run_ok, sign_in, temp_dir,
    wait_for,
};

const WAIT: Duration = Duration::from_secs(60);
const DISTRICT: &str = "440304";
const SUB: &str = "440304001";
const STATION: &str = "440304001001";

fn dir_arg(dir: &Path) -> &str {
    dir.to_str().unwrap()
}

/// A node initialised and enrolled with the hall in `hall_dir` (served at `hall`), then
/// served: its data dir, node, an admin token and the admin's password.
fn child(
    root: &Path,
    hall_dir: &Path,
    hall: &Node,
    role: &str,
    division: &str,
    name: &str,
) -> (PathBuf, Node, String, String) {
    let dir = root.join(division);
    let password = init_node(&dir, role, division, name);
    let code = enroll_code(hall_dir, division, role);
    run_ok(&["enroll", &hall.base, &code, "--data-dir", dir_arg(&dir)]);
    let token = admin_token(&dir);
    let node = Node::serve(&dir);
    (dir, node, token, password)
}

/// District → sub-district → station, serving.
struct Tree {
    _root: tempfile::TempDir,
    _district: Node,
    sub: Node,
    sub_token: String,
    sub_password: String,
    station: Node,
    station_token: String,
    station_password: String,
}

fn tree() -> Tree {
    let root = temp_dir();
    let d = root.path().join(DISTRICT);
    init_node(&d, "district", DISTRICT, "福田区行政服务中心");
    let district = Node::serve(&d);
    let (s_dir, sub, sub_token, sub_password) =
        child(root.path(), &d, &district, "subdistrict", SUB, "园岭街道");
    let (_, station, station_token, station_password) =
        child(root.path(), &s_dir, &sub, "station", STATION, "红荔社区");
    Tree {
        _root: root,
        _district: district,
        sub,
        sub_token,
        sub_password,
        station,
        station_token,
        station_password,
    }
}

/// The account `username` as `node` lists it, once it is there.
fn account_at(node: &Node, token: &str, username: &str) -> Option<serde_json::Value> {
    let (status, body) = get(
        &client(),
        &node.url(&format!("/api/v1/staff/{username}")),
        Some(token),
    )
    .ok()?;
    (status == 200).then_some(body)
}

#[test]
fn one_staff_account_signs_in_at_two_nodes_and_disabled_at_the_hall_is_refused_at_both() {
    let tree = tree();
    let (status, written) = post(
        &client(),
        &tree.sub.url("/api/v1/staff"),
        Some(&tree.sub_token),
        &json!({"username": "li.ming", "display_name": "李明", "role": "worker", "counter": "3"}),
    )
    .unwrap();
    assert_eq!(status, 201, "{written}");
    let password = written["password"].as_str().unwrap().to_string();
    assert_eq!(written["account"]["standing"], "here");
    assert!(
        !written.to_string().contains("argon2"),
        "no verifier leaves the API"
    );
    // The station's admin may not write the tree's accounts.
    let (status, refused) = post(
        &client(),
        &tree.station.url("/api/v1/staff"),
        Some(&tree.station_token),
        &json!({"username": "wang", "role": "worker"}),
    )
    .unwrap();
    assert_eq!(
        (status, refused["error"].as_str()),
        (403, Some("staff_admins_only"))
    );

    let at_station = wait_for("the account at the station", WAIT, || {
        account_at(&tree.station, &tree.station_token, "li.ming")
    });
    assert_eq!(
        (
            at_station["source"].as_str(),
            at_station["standing"].as_str()
        ),
        (Some("tree"), Some("here"))
    );
    // The station's admin sees it beside the station's own accounts, read-only.
    let mut station_admin = Visitor::new(&tree.station);
    station_admin.sign_in("admin", &tree.station_password);
    let (status, users, _) = station_admin.get("/admin/users");
    assert_eq!(status, 200);
    let tree_table = users
        .split("id=\"tree-users\"")
        .nth(1)
        .expect("the tree's accounts");
    assert!(tree_table.contains("li.ming") && tree_table.contains(SUB));
    let (status, page, _) = station_admin.get("/admin/staff");
    assert_eq!(status, 200);
    assert!(page.contains("li.ming") && !page.contains("id=\"add-staff\""));
    // The same account signs in at the hall and at the station.
    let mut at_hall = Visitor::new(&tree.sub);
    let mut below = Visitor::new(&tree.station);
    for visitor in [&mut at_hall, &mut below] {
        let (status, _, location) = visitor.sign_in("li.ming", &password);
        assert_eq!((status, location.as_deref()), (303, Some("/")));
        let (status, page, _) = visitor.get("/worklist");
        assert_eq!(status, 200);
        assert!(page.contains("李明"), "{page}");
    }

    // Disabled at the hall: its session there ends at once.
    let (status, disabled) = yizhan_tests::patch(
        &client(),
        &tree.sub.url("/api/v1/staff/li.ming"),
        Some(&tree.sub_token),
        &json!({"disabled": true}),
    )
    .unwrap();
    assert_eq!(
        (status, &disabled["account"]["disabled"]),
        (200, &json!(true)),
        "{disabled}"
    );
    let (status, _, location) = at_hall.get("/worklist");
    assert_eq!(status, 303, "the hall's session ends at once");
    assert!(location.unwrap().starts_with("/signin"));
    // After the sync, the station's open session ends too.
    wait_for("the station's session to end", WAIT, || {
        let (status, _, location) = below.get("/worklist");
        (status == 303 && location.is_some_and(|l| l.starts_with("/signin"))).then_some(())
    });
    let at_station = account_at(&tree.station, &tree.station_token, "li.ming").unwrap();
    assert_eq!(at_station["disabled"], true);
    // Neither node lets it sign in again.
    for node in [&tree.sub, &tree.station] {
        let mut again = Visitor::new(node);
        let (status, _, _) = again.sign_in("li.ming", &password);
        assert_eq!(status, 401, "refused at {}", node.base);
    }
    // The station's own admin still signs in (its local account is untouched).
    let (status, list) = get(
        &client(),
        &tree.station.url("/api/v1/staff"),
        Some(&tree.station_token),
    )
    .unwrap();
    assert_eq!(status, 200);
    let sources: Vec<(&str, &str)> = list["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["username"].as_str().unwrap(),
                a["source"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(sources.contains(&("admin", "local")) && sources.contains(&("li.ming", "tree")));
}

#[test]
fn the_halls_admin_writes_an_account_in_chromium_and_the_person_signs_in_at_the_station() {
    let tree = tree();
    let browser = Browser::start();
    sign_in(&browser, &tree.sub, "admin", &tree.sub_password);
    browser.goto(&tree.sub.url("/admin/users"));
    browser.find("#tree-staff-link").click();
    browser.wait_text("#add-staff-submit", |t| !t.is_empty());
    browser.find("#new-username").type_text("zhou.fang");
    browser.find("#new-display-name").type_text("周芳");
    browser.find("#new-counter").type_text("2");
    browser.find("#add-staff-submit").click();
    let password = browser.wait_text("#new-password", |t| t.len() == 16);
    assert!(browser.find("#tree-staff").text().contains("周芳"));

    wait_for("the account at the station", WAIT, || {
        account_at(&tree.station, &tree.station_token, "zhou.fang")
    });
    let person = Browser::start();
    sign_in(&person, &tree.station, "zhou.fang", &password);
    assert!(person.find("#greeting").text().contains("周芳"));
}
