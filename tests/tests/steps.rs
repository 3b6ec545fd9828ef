//! Steps with limits (issue 15 point 6; SZDB/Z 176 §9.2.2 办理流程, §10.2 监督), over a
//! three-tier tree of real processes: a district, a sub-district and a station. A case of
//! an item with three steps is accepted at the station, whose worker finishes the first
//! step on the case page in Chromium; the case reaches the district in its second step.
//! The district supervises the case; with its clock moved three weeks on
//! (`YIZHAN_CLOCK_OFFSET_DAYS`), the second step is past its limit, and the district's
//! supervision (the API and the page its supervisor reads) names that step, how late it is,
//! and the case page says so too.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use yizhan_tests::webdriver::Browser;
use yizhan_tests::{
    Node, accepted_case, add_user, admin_token, client, enroll_code, get, init_node, post, run_ok,
    sign_in, temp_dir, wait_for,
};

const CATALOG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../node/data/demo-catalog.toml"
);
/// 就业困难人员认定: steps 社区受理 (1 working day), 街道初审 (4), 区人社认定 (5), within
/// a committed limit of 10.
const ITEM: &str = "11440399990000025E4000799104000";
const WAIT: Duration = Duration::from_secs(60);

const DISTRICT: &str = "440304";
const SUB: &str = "440304001";
const STATION: &str = "440304001001";

fn dir_arg(dir: &Path) -> &str {
    dir.to_str().unwrap()
}

/// A node enrolled with the hall in `hall_dir` (served at `hall`), serving: its data dir,
/// the node, an admin token and the admin's password.
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

fn case_view(node: &Node, token: &str, id: &str) -> Value {
    let (status, view) = get(
        &client(),
        &node.url(&format!("/api/v1/cases/{id}")),
        Some(token),
    )
    .unwrap();
    assert_eq!(status, 200, "{view}");
    view
}

/// Reloads `url` until the text at `css` satisfies `ready`.
fn poll_page(browser: &Browser, url: &str, css: &str, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        browser.goto(url);
        let texts: Vec<String> = browser.find_all(css).iter().map(|e| e.text()).collect();
        if let Some(text) = texts.iter().find(|t| ready(t)) {
            return text.clone();
        }
        assert!(
            Instant::now() < deadline,
            "waited for {css} on {url}; last saw {texts:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn a_station_cases_late_step_is_named_by_the_districts_supervision() {
    let root = temp_dir();
    let d = root.path().join(DISTRICT);
    init_node(&d, "district", DISTRICT, "福田区行政服务中心");
    run_ok(&["import-catalog", CATALOG, "--data-dir", dir_arg(&d)]);
    let supervisor_password = add_user(&d, "duban", "supervisor");
    let district_token = admin_token(&d);
    let district = Node::serve(&d);
    let (s_dir, sub, _sub_token, _) =
        child(root.path(), &d, &district, "subdistrict", SUB, "园岭街道");
    let (_a_dir, a, a_token, a_password) =
        child(root.path(), &s_dir, &sub, "station", STATION, "红荔社区");
    wait_for("the catalog at the station", WAIT, || {
        let (status, _) = get(&client(), &a.url(&format!("/api/v1/items/{ITEM}")), None).ok()?;
        (status == 200).then_some(())
    });

    // Accepted at the station: the case is in its first step, with the item's steps.
    let case = accepted_case(&a.base, &a_token, ITEM, "红荔申请人");
    let view = case_view(&a, &a_token, &case);
    assert_eq!(view["current_step"], 1, "{view}");
    let steps = view["steps"].as_array().unwrap();
    let names: Vec<&str> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["社区受理", "街道初审", "区人社认定"]);
    assert_eq!(steps[0]["days"], 1);
    assert!(steps[0]["due"].is_string() && steps[1]["due"].is_null());
    assert!(
        view["allowed_actions"]
            .as_array()
            .unwrap()
            .contains(&json!("finish_step"))
    );
    // A step out of order is refused with its code, and nothing is recorded.
    let (status, refused) = post(
        &client(),
        &a.url(&format!("/api/v1/cases/{case}/events")),
        Some(&a_token),
        &json!({"kind": "finish_step", "step": 2}),
    )
    .unwrap();
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"], "not_current_step", "{refused}");
    assert_eq!(case_view(&a, &a_token, &case)["current_step"], 1);

    // The station's worker finishes the first step on the case page.
    let browser = Browser::start();
    sign_in(&browser, &a, "admin", &a_password);
    browser.goto(&a.url(&format!("/cases/{case}")));
    browser.wait_text("#step-now", |t| t.contains("社区受理"));
    browser.find("#step-note").type_text("材料齐全，转街道初审");
    browser.find("#finish-step-submit").click();
    browser.wait_text("#step-now", |t| t.contains("街道初审"));
    assert!(browser.find("#step-1").text().contains("admin"));
    let at_station = case_view(&a, &a_token, &case);
    assert_eq!(at_station["current_step"], 2, "{at_station}");
    let due = at_station["steps"][1]["due"].as_str().unwrap().to_string();

    // Up the tree: the district holds the case in its second step, due the same day.
    wait_for("the case in its second step at the district", WAIT, || {
        let (status, list) = get(
            &client(),
            &district.url("/api/v1/cases?open=true&limit=200"),
            Some(&district_token),
        )
        .ok()?;
        (status == 200).then_some(())?;
        list["cases"]
            .as_array()?
            .iter()
            .find(|c| c["id"] == case.as_str() && c["step"]["number"] == 2)
            .map(|_| ())
    });
    let at_district = case_view(&district, &district_token, &case);
    assert_eq!(at_district["steps"][1]["due"], due.as_str());
    assert_eq!(at_district["steps"][0]["finished_by"], "admin");

    // The district supervises the case; its step is not late yet.
    let (status, issued) = post(
        &client(),
        &district.url("/api/v1/supervision"),
        Some(&district_token),
        &json!({
            "station": STATION,
            "case_id": case,
            "reason": "请说明办理进度",
            "todo": "三个工作日内答复办理情况",
            "reply_days": 3,
        }),
    )
    .unwrap();
    assert_eq!(status, 201, "{issued}");
    let notice = issued["id"].as_str().unwrap().to_string();
    assert!(issued["late_step"].is_null(), "{issued}");

    // Three weeks on at the district: the second step (four working days) is late, and
    // its supervision names it.
    let base = district.base.clone();
    drop(district);
    let district = Node::restart_days_later(&d, &base, 21);
    let (status, seen) = get(
        &client(),
        &district.url(&format!("/api/v1/supervision/{notice}")),
        Some(&district_token),
    )
    .unwrap();
    assert_eq!(status, 200, "{seen}");
    let late = &seen["late_step"];
    assert_eq!(late["number"], 2, "{seen}");
    assert_eq!(late["name"], "街道初审");
    assert_eq!(late["due"], due.as_str());
    let late_days = late["late_days"].as_u64().unwrap();
    assert!(late_days >= 1, "{seen}");
    // The case page's figures are the same ones.
    let at_district = case_view(&district, &district_token, &case);
    let second = &at_district["steps"][1];
    assert_eq!(second["current"], true);
    assert_eq!(second["warning_level"], "red", "{at_district}");
    assert_eq!(second["late_days"], late_days);
    assert_eq!(at_district["steps"][0]["late_days"], 0);

    // The district's supervisor reads it on the supervision list and on the case page.
    sign_in(&browser, &district, "duban", &supervisor_password);
    let line = poll_page(
        &browser,
        &district.url(&format!("/supervision?case={case}")),
        &format!("#sv-{notice} .sv-late-step"),
        |t| t.contains("街道初审"),
    );
    assert!(line.contains(&late_days.to_string()), "{line}");
    browser.goto(&district.url(&format!("/cases/{case}")));
    let now = browser.wait_text("#step-now", |t| t.contains("街道初审"));
    assert!(now.contains("第 2 步") && now.contains("超期"), "{now}");
    assert!(
        browser.find_all("#finish-step").is_empty(),
        "a supervisor only supervises"
    );
}
