//! The hall (issue 14), over a three-tier tree of real processes: a district, two
//! sub-districts and three stations, enrolled and linked as technicians do.
//! Cases made at the stations appear in the right sub-district's and the district's
//! subtree lists (the API and the page in headless Chromium) with their station; the
//! per-station overview's figures for a small fixture are checked exactly. A receipt
//! sealed at a station verifies at the district (`/verify` and `/api/v1/notices/{number}`);
//! a supervision notice issued at the district reaches the station, is answered there in
//! Chromium by the station's lead, and the answer is seen at the district and at the
//! sub-district between (and not at the other sub-district); a notice left unanswered is
//! overdue and red at both halls once its deadline has passed (their pages' clock moved
//! ten days on with `YIZHAN_CLOCK_OFFSET_DAYS`), where the district's supervisor sees it.

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
/// 居住证申领: accepted, decided and completed at the station.
const ITEM: &str = "1144039999000005XU5001099602000";
const WAIT: Duration = Duration::from_secs(60);

const DISTRICT: &str = "440304";
const SUB_1: &str = "440304001";
const SUB_2: &str = "440304002";
const STATION_A: &str = "440304001001";
const STATION_B: &str = "440304001002";
const STATION_C: &str = "440304002001";

fn dir_arg(dir: &Path) -> &str {
    dir.to_str().unwrap()
}

/// A node initialised and enrolled with the hall in `hall_dir` (served at `hall`), not yet
/// serving: its data dir, an admin token and the admin's password.
fn enrolled(
    root: &Path,
    hall_dir: &Path,
    hall: &Node,
    role: &str,
    division: &str,
    name: &str,
) -> (PathBuf, String, String) {
    let dir = root.join(division);
    let password = init_node(&dir, role, division, name);
    let code = enroll_code(hall_dir, division, role);
    run_ok(&["enroll", &hall.base, &code, "--data-dir", dir_arg(&dir)]);
    let token = admin_token(&dir);
    (dir, token, password)
}

/// A node enrolled with the hall in `hall_dir` (served at `hall`), serving, and the
/// admin's password.
fn child(
    root: &Path,
    hall_dir: &Path,
    hall: &Node,
    role: &str,
    division: &str,
    name: &str,
) -> (PathBuf, Node, String, String) {
    let (dir, token, password) = enrolled(root, hall_dir, hall, role, division, name);
    let node = Node::serve(&dir);
    (dir, node, token, password)
}

/// The open cases below a node through the API: (id, station division, station name).
fn subtree(base: &str, token: &str, filter: &str) -> Vec<(String, String, String)> {
    let (status, list) = get(
        &client(),
        &format!("{base}/api/v1/cases?open=true&limit=200{filter}"),
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
                c["station"]["division"].as_str().unwrap().to_string(),
                c["station"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn event(base: &str, token: &str, id: &str, body: Value) {
    let (status, answer) = post(
        &client(),
        &format!("{base}/api/v1/cases/{id}/events"),
        Some(token),
        &body,
    )
    .unwrap();
    assert_eq!(status, 200, "{body} → {answer}");
}

/// A case decided, completed today (on time) and rated `level`.
fn completed_and_rated(base: &str, token: &str, name: &str, level: u8) -> String {
    let id = accepted_case(base, token, ITEM, name);
    event(
        base,
        token,
        &id,
        json!({"kind": "decide", "approved": true, "reason": "符合条件", "basis": "《居住证暂行条例》"}),
    );
    event(
        base,
        token,
        &id,
        json!({"kind": "complete", "result": "已制证", "delivery": "窗口领取"}),
    );
    event(base, token, &id, json!({"kind": "rate", "level": level}));
    id
}

fn stations(base: &str, token: &str) -> Vec<Value> {
    let (status, list) = get(&client(), &format!("{base}/api/v1/stations"), Some(token)).unwrap();
    assert_eq!(status, 200, "{list}");
    list["stations"].as_array().unwrap().clone()
}

fn line<'a>(lines: &'a [Value], division: &str) -> &'a Value {
    lines
        .iter()
        .find(|l| l["station"]["division"] == division)
        .unwrap_or_else(|| panic!("no line for {division} in {lines:?}"))
}

/// The figures of a line that the fixture fixes, in one tuple to compare.
fn figures(l: &Value) -> (u64, u64, u64, u64, u64, u64, u64, u64, u64) {
    let n = |k: &str| l[k].as_u64().unwrap_or_else(|| panic!("{k} in {l}"));
    (
        n("open"),
        n("due_soon"),
        n("overdue"),
        n("legal_breach"),
        n("completed_this_month"),
        n("on_time_this_month"),
        n("rated_this_month"),
        n("satisfied_this_month"),
        n("open_rectifications"),
    )
}

/// Polls `url` with `token` until `ready` holds of its JSON answer.
fn poll_api(url: &str, token: &str, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let http = client();
    wait_for(what, WAIT, || {
        get(&http, url, Some(token))
            .ok()
            .filter(|(status, body)| *status == 200 && ready(body))
            .map(|(_, body)| body)
    })
}

/// Reloads `url` until the texts at `css` satisfy `ready`.
fn poll_page(browser: &Browser, url: &str, css: &str, ready: impl Fn(&[String]) -> bool) {
    let deadline = Instant::now() + WAIT;
    loop {
        browser.goto(url);
        let texts: Vec<String> = browser.find_all(css).iter().map(|e| e.text()).collect();
        if ready(&texts) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "waited for {css} on {url}; last saw {texts:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn the_hall_sees_its_subtree_verifies_receipts_and_supervises_its_stations() {
    let root = temp_dir();
    let d = root.path().join(DISTRICT);
    let district_password = init_node(&d, "district", DISTRICT, "福田区行政服务中心");
    run_ok(&["import-catalog", CATALOG, "--data-dir", dir_arg(&d)]);
    let supervisor_password = add_user(&d, "duban", "supervisor");
    let district_token = admin_token(&d);
    let district = Node::serve(&d);
    let (s1_dir, sub1, sub1_token, _) =
        child(root.path(), &d, &district, "subdistrict", SUB_1, "园岭街道");
    let (_s2_dir, sub2, sub2_token, _) =
        child(root.path(), &d, &district, "subdistrict", SUB_2, "南园街道");
    let (a_dir, a_token, _) = enrolled(
        root.path(),
        &s1_dir,
        &sub1,
        "station",
        STATION_A,
        "红荔社区",
    );
    let lead_password = add_user(&a_dir, "lead", "lead");
    let a = Node::serve(&a_dir);
    let (_b_dir, b, b_token, b_password) = child(
        root.path(),
        &s1_dir,
        &sub1,
        "station",
        STATION_B,
        "百花社区",
    );
    let s2_dir = root.path().join(SUB_2);
    let (_c_dir, c, c_token, c_password) = child(
        root.path(),
        &s2_dir,
        &sub2,
        "station",
        STATION_C,
        "南华社区",
    );
    for (station, what) in [(&a, "A"), (&b, "B"), (&c, "C")] {
        wait_for(&format!("the catalog at station {what}"), WAIT, || {
            let (status, _) = get(
                &client(),
                &station.url(&format!("/api/v1/items/{ITEM}")),
                None,
            )
            .ok()?;
            (status == 200).then_some(())
        });
    }

    // The fixture: A has two open cases and two completed ones this month (rated 5 and
    // 1: one satisfied, one bad rating with its rectification open); B one open case; C
    // two open cases.
    let a_open: Vec<String> = (0..2)
        .map(|n| accepted_case(&a.base, &a_token, ITEM, &format!("红荔申请人{n}")))
        .collect();
    let a_done = [
        completed_and_rated(&a.base, &a_token, "红荔满意", 5),
        completed_and_rated(&a.base, &a_token, "红荔差评", 1),
    ];
    let b_open = accepted_case(&b.base, &b_token, ITEM, "百花申请人");
    let c_open: Vec<String> = (0..2)
        .map(|n| accepted_case(&c.base, &c_token, ITEM, &format!("南华申请人{n}")))
        .collect();

    // Up the tree: the sub-district sees its two stations' open cases, not C's.
    // (Three open cases is not enough to stop waiting: one of A's completed cases may have
    // arrived accepted, before its completion.)
    let at_sub1 = wait_for("A's and B's cases at sub-district 1", WAIT, || {
        let found = subtree(&sub1.base, &sub1_token, "");
        let ids: Vec<&String> = found.iter().map(|(id, _, _)| id).collect();
        (found.len() == 3 && a_open.iter().chain([&b_open]).all(|id| ids.contains(&id)))
            .then_some(found)
    });
    for id in &a_open {
        assert!(
            at_sub1.contains(&(id.clone(), STATION_A.into(), "红荔社区".into())),
            "{at_sub1:?}"
        );
    }
    assert!(at_sub1.contains(&(b_open.clone(), STATION_B.into(), "百花社区".into())));
    wait_for("C's cases at sub-district 2", WAIT, || {
        (subtree(&sub2.base, &sub2_token, "").len() == 2).then_some(())
    });
    // The district sees all five, each with its station, and filters by station and by
    // sub-district.
    let expected: Vec<&String> = a_open.iter().chain([&b_open]).chain(&c_open).collect();
    let at_district = wait_for("every open case at the district", WAIT, || {
        let found = subtree(&district.base, &district_token, "");
        let ids: Vec<&String> = found.iter().map(|(id, _, _)| id).collect();
        (found.len() == 5 && expected.iter().all(|id| ids.contains(id))).then_some(found)
    });
    for id in &c_open {
        assert!(at_district.contains(&(id.clone(), STATION_C.into(), "南华社区".into())));
    }
    // (A's completed cases may still be on their way up, open for a moment when they come.)
    let filtered = |filter: String, wanted: Vec<&String>| {
        wait_for(&format!("the open cases of {filter}"), WAIT, || {
            let found = subtree(&district.base, &district_token, &filter);
            let ids: Vec<&String> = found.iter().map(|(id, _, _)| id).collect();
            (ids.len() == wanted.len() && wanted.iter().all(|id| ids.contains(id))).then_some(())
        })
    };
    filtered(format!("&station={STATION_A}"), a_open.iter().collect());
    filtered(
        format!("&station={SUB_1}"),
        a_open.iter().chain([&b_open]).collect(),
    );
    let (status, bad) = get(
        &client(),
        &district.url("/api/v1/cases?station=12345"),
        Some(&district_token),
    )
    .unwrap();
    assert_eq!(status, 400, "{bad}");

    // The overview's figures, exactly, once the completions and ratings are up too.
    let lines = wait_for("the ratings at the district", WAIT, || {
        let lines = stations(&district.base, &district_token);
        let rated = lines
            .iter()
            .find(|l| l["station"]["division"] == STATION_A)
            .and_then(|l| l["rated_this_month"].as_u64());
        (rated == Some(2)).then_some(lines)
    });
    assert_eq!(
        figures(line(&lines, STATION_A)),
        (2, 0, 0, 0, 2, 2, 2, 1, 1)
    );
    assert_eq!(
        figures(line(&lines, STATION_B)),
        (1, 0, 0, 0, 0, 0, 0, 0, 0)
    );
    assert_eq!(
        figures(line(&lines, STATION_C)),
        (2, 0, 0, 0, 0, 0, 0, 0, 0)
    );
    // A sub-district's line sums its stations.
    assert_eq!(figures(line(&lines, SUB_1)), (3, 0, 0, 0, 2, 2, 2, 1, 1));
    assert_eq!(figures(line(&lines, SUB_2)), (2, 0, 0, 0, 0, 0, 0, 0, 0));
    let a_line = line(&lines, STATION_A);
    assert_eq!(a_line["station"]["name"], "红荔社区");
    assert_eq!(a_line["subdistrict"], SUB_1);
    assert_eq!(a_line["on_time_rate"], 1.0);
    assert_eq!(a_line["satisfaction"], 0.5);
    assert_eq!(a_line["stale"], false, "{a_line}");
    assert!(a_line["last_synced_at"].is_string());
    // Only a child of this hall has a count of changes it has yet to take.
    assert!(a_line["pending_changes"].is_null());
    let at_sub1_lines = stations(&sub1.base, &sub1_token);
    assert_eq!(at_sub1_lines.len(), 2, "{at_sub1_lines:?}");
    assert_eq!(
        figures(line(&at_sub1_lines, STATION_B)),
        (1, 0, 0, 0, 0, 0, 0, 0, 0)
    );
    let _ = a_done;

    // In Chromium: the district's admin lands on the subtree list, filters by station,
    // opens a case that came from a station, and reads the overview.
    let browser = Browser::start();
    browser.goto(&district.url("/signin"));
    browser.find("#username").type_text("admin");
    browser.find("#password").type_text(&district_password);
    browser.find("#signin-submit").click();
    browser.wait_text("h1", |t| t.contains("辖区办件"));
    let stations_shown = browser.wait_texts("#hall-cases td.station", |t| t.len() == 5);
    for name in ["红荔社区", "百花社区", "南华社区"] {
        assert!(
            stations_shown.iter().any(|s| s == name),
            "{stations_shown:?}"
        );
    }
    assert!(
        browser.find_all("#nav-worklist").is_empty(),
        "a hall's navigation leads to /hall"
    );
    browser.screenshot("hall-01-subtree");
    // The item filter is a list of the catalog's items; choosing one keeps it chosen.
    browser.goto(&district.url(&format!("/hall?item={ITEM}")));
    let by_item = browser.wait_texts("#hall-cases td.station", |t| t.len() == 5);
    assert_eq!(by_item.len(), 5);
    assert_eq!(
        browser
            .find(&format!("#hall-item option[value='{ITEM}']"))
            .attribute("selected"),
        "true"
    );
    assert!(browser.find_all("#hall-item option").len() > 10);
    browser.goto(&district.url(&format!("/hall?station={STATION_C}")));
    let only_c = browser.wait_texts("#hall-cases td.station", |t| t.len() == 2);
    assert!(only_c.iter().all(|s| s == "南华社区"), "{only_c:?}");
    browser.find("#hall-cases .case-link").click();
    let held = browser.wait_text("#case-station", |t| !t.is_empty());
    assert!(
        held.contains("南华社区") && held.contains(STATION_C),
        "{held}"
    );
    assert!(
        browser
            .find_all("#sync-state")
            .iter()
            .all(|e| !e.text().contains("仅在本节点"))
    );
    assert!(!browser.wait_text("#hall-may", |t| !t.is_empty()).is_empty());
    browser.screenshot("hall-02-case");
    browser.goto(&district.url("/hall/stations"));
    let open_a = browser.wait_text(&format!("#st-{STATION_A} td.open"), |t| !t.is_empty());
    assert_eq!(open_a, "2");
    assert_eq!(browser.find(&format!("#st-{SUB_1} td.open")).text(), "3");
    assert_eq!(browser.find("#st-total td.open").text(), "5");
    assert_eq!(
        browser
            .find(&format!("#st-{STATION_A} td.satisfaction"))
            .text(),
        "50.0%"
    );
    assert_eq!(browser.find_all("svg[role=img]").len(), 2);
    browser.screenshot("hall-03-stations");
    // The accounts page of a hall offers department staff (a station's does not).
    browser.goto(&district.url("/admin/users"));
    browser.wait_text("h1", |t| !t.is_empty());
    assert_eq!(
        browser.find_all("#new-role option[value=department]").len(),
        1
    );
    // The CSV of the overview, with the browser's session.
    let mut response = client()
        .get(&district.url("/hall/stations.csv"))
        .header(
            "Cookie",
            &format!("yz_session={}", browser.cookie("yz_session")),
        )
        .call()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let csv = response.body_mut().read_to_string().unwrap();
    assert!(csv.starts_with("\u{feff}站点,区划代码,在办"), "{csv}");
    assert!(
        csv.contains(&format!("红荔社区,{STATION_A},2,0,0,0,100.0%,50.0%,1,")),
        "{csv}"
    );

    // Receipts and supervision, with station A (below sub-district 1). A case accepted
    // through the station's API has its sealed receipt.
    let http = client();
    let case = a_open[0].clone();
    let (_, at_station) = get(
        &http,
        &format!("{}/api/v1/cases/{case}", a.base),
        Some(&a_token),
    )
    .unwrap();
    let number = at_station["notices"][0]
        .as_str()
        .expect("a receipt")
        .to_string();

    // It reaches the district, where its seal holds, through the API and on /verify.
    let notice = poll_api(
        &format!("{}/api/v1/notices/{number}", district.base),
        &district_token,
        "the receipt at the district",
        |n| n["valid"] == true,
    );
    assert_eq!(notice["kind"], "receipt");
    assert_eq!(notice["case_id"], case.as_str());
    assert_eq!(notice["office"], "红荔社区");
    let full_code = format!(
        "YZN1/{}/{}/{}/{}",
        notice["node"].as_str().unwrap(),
        number,
        notice["digest"].as_str().unwrap(),
        notice["seal"].as_str().unwrap()
    );
    browser.set_window_size(390, 844);
    browser.goto(&district.url(&format!("/verify?code={full_code}")));
    browser.wait_text("#verdict-title", |t| !t.is_empty());
    assert_eq!(browser.find("#verdict").attribute("class"), "valid");
    assert!(browser.find("#verdict-why").text().contains("红荔社区"));
    assert!(!browser.find("#verdict-kind").text().is_empty());

    // The district supervises the case; the notice reaches the station.
    let body = json!({
        "station": STATION_A,
        "case_id": case,
        "reason": "请说明办理进度",
        "todo": "三个工作日内答复办理情况",
        "reply_days": 3,
    });
    let (status, issued) = post(
        &http,
        &format!("{}/api/v1/supervision", district.base),
        Some(&district_token),
        &body,
    )
    .unwrap();
    assert_eq!(status, 201, "{issued}");
    let answered_id = issued["id"].as_str().unwrap().to_string();
    // A second one, about the station's work, due the next working day, stays unanswered.
    let (status, unanswered) = post(
        &http,
        &format!("{}/api/v1/supervision", district.base),
        Some(&district_token),
        &json!({"station": STATION_A, "reason": "窗口等候时间过长", "todo": "整改并报告", "reply_days": 1}),
    )
    .unwrap();
    assert_eq!(status, 201, "{unanswered}");
    let unanswered_id = unanswered["id"].as_str().unwrap().to_string();
    poll_api(
        &format!("{}/api/v1/supervision", a.base),
        &a_token,
        "both notices at the station",
        |list| list["notices"].as_array().is_some_and(|n| n.len() == 2),
    );

    // The station's lead answers the one about the case in the browser: the work list
    // says a notice waits, the supervision page has the reply form.
    sign_in(&browser, &a, "lead", &lead_password);
    browser.goto(&a.url("/worklist"));
    browser.wait_text("#work-supervision", |t| t.contains('2'));
    browser.goto(&a.url(&format!("/cases/{case}")));
    browser.wait_text("#case-supervision", |t| t.contains("请说明办理进度"));
    browser.goto(&a.url("/supervision"));
    browser.wait_text("#supervision-title", |t| t.contains("待答复"));
    let form = format!("#sv-{answered_id} form.sv-reply-form");
    browser
        .find(&format!("{form} textarea"))
        .type_text("已于今日办结，延误原因为材料核验");
    browser.find(&format!("{form} button")).click();
    browser.wait_text(&format!("#sv-{answered_id} .sv-reply"), |t| {
        t.contains("已于今日办结")
    });
    browser.wait_text(&format!("#sv-{answered_id} .sv-state"), |t| {
        t.contains("按期答复")
    });

    // The reply reaches the district and the sub-district between.
    for (node, token) in [(&district, &district_token), (&sub1, &sub1_token)] {
        let seen = poll_api(
            &format!("{}/api/v1/supervision/{answered_id}", node.base),
            token,
            "the reply at the halls",
            |n| n["replies"].as_array().is_some_and(|r| r.len() == 1),
        );
        assert_eq!(seen["state"], "answered_on_time", "{seen}");
        assert_eq!(
            seen["replies"][0]["text"],
            "已于今日办结，延误原因为材料核验"
        );
    }
    // Both halls hold the unanswered one before their clocks move on.
    poll_api(
        &format!("{}/api/v1/supervision/{unanswered_id}", sub1.base),
        &sub1_token,
        "the unanswered notice at the sub-district",
        |n| n["state"] == "open",
    );
    // The other sub-district's tree holds neither (a notice lives in its station's scope).
    let (status, elsewhere) = get(
        &http,
        &format!("{}/api/v1/supervision", sub2.base),
        Some(&sub2_token),
    )
    .unwrap();
    assert_eq!(status, 200, "{elsewhere}");
    assert_eq!(elsewhere["notices"].as_array().map(Vec::len), Some(0));

    // The month's assessment at the district, by station, read by its supervisor (at 390 px,
    // as the browser still is): each station's cases received this month (A four, B one, C
    // two), as the fixture above made them.
    sign_in(&browser, &district, "duban", &supervisor_password);
    // This month (the page opens on the last whole month by default).
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let month = &yizhan_sync::domain::calendar::Date::from_unix_ms_cst(now_ms).to_string()[..7];
    browser.goto(&district.url(&format!("/hall/assessment?by=station&month={month}")));
    browser.wait_text("#assessment-total", |t| !t.is_empty());
    for (station, received) in [(STATION_A, "4"), (STATION_B, "1"), (STATION_C, "2")] {
        let cell = browser
            .find(&format!(
                "#assessment tbody tr[data-division='{station}'] td:first-of-type"
            ))
            .text();
        assert!(cell.starts_with(received), "{station}: {cell}");
    }
    browser.screenshot("hall-04-assessment");
    // A notification (通报) published at the district names station B for rectification:
    // it reaches every station below, and B gets a supervision notice to answer.
    browser.goto(&district.url("/notifications"));
    browser.find("#nt-title").type_text("十一月办件情况通报");
    browser
        .find("#nt-text")
        .type_text("百花社区受理量偏低，请分析原因并整改。");
    browser
        .find(&format!("#nt-stations input[value='{STATION_B}']"))
        .click();
    browser.find("#nt-days").clear();
    browser.find("#nt-days").type_text("30");
    browser.find("#nt-publish").click();
    let published = browser.wait_texts("#notifications-list .nt-number", |n| n.len() == 1);
    let at_b = poll_api(
        &format!("{}/api/v1/supervision", b.base),
        &b_token,
        "the notification's supervision notice at station B",
        |list| list["notices"].as_array().is_some_and(|n| n.len() == 1),
    );
    assert!(
        at_b["notices"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains(published[0].as_str())),
        "{at_b}"
    );
    sign_in(&browser, &b, "admin", &b_password);
    poll_page(
        &browser,
        &b.url("/notifications"),
        "#notifications-list .nt-rectify",
        |flags| flags.len() == 1,
    );
    // Station C, under the other sub-district, holds the notification too, and no notice.
    sign_in(&browser, &c, "admin", &c_password);
    poll_page(
        &browser,
        &c.url("/notifications"),
        "#notifications-list .nt-number",
        |numbers| numbers == [published[0].clone()],
    );
    assert!(browser.find_all("#notifications-list .nt-rectify").len() == 1);
    let (_, at_c) = get(
        &http,
        &format!("{}/api/v1/supervision", c.base),
        Some(&c_token),
    )
    .unwrap();
    assert_eq!(at_c["notices"].as_array().map(Vec::len), Some(0), "{at_c}");

    // Ten days on, the unanswered notice is overdue and red at the district and at the
    // sub-district; the one answered stays answered on time.
    let (district_base, sub_base) = (district.base.clone(), sub1.base.clone());
    drop(district);
    drop(sub1);
    let district = Node::restart_days_later(&d, &district_base, 10);
    let sub1 = Node::restart_days_later(&s1_dir, &sub_base, 10);
    for (node, token) in [(&district, &district_token), (&sub1, &sub1_token)] {
        let (status, overdue) = get(
            &http,
            &format!("{}/api/v1/supervision?state=overdue", node.base),
            Some(token),
        )
        .unwrap();
        assert_eq!(status, 200);
        let notices = overdue["notices"].as_array().unwrap();
        assert_eq!(notices.len(), 1, "{overdue}");
        assert_eq!(notices[0]["id"], unanswered_id.as_str());
        assert_eq!(notices[0]["level"], "red");
        let (_, answered) = get(
            &http,
            &format!("{}/api/v1/supervision/{answered_id}", node.base),
            Some(token),
        )
        .unwrap();
        assert_eq!(answered["state"], "answered_on_time");
    }

    // The district's supervisor sees it red on the supervision list, and the work list
    // counts it.
    sign_in(&browser, &district, "duban", &supervisor_password);
    browser.goto(&district.url("/worklist"));
    browser.wait_text("#work-supervision", |t| t.contains('1'));
    poll_page(
        &browser,
        &district.url("/supervision?state=overdue"),
        "#supervision-list article.lv-red .sv-escalated",
        |texts| texts.len() == 1,
    );
    browser.wait_text(&format!("#sv-{unanswered_id} .sv-state"), |t| {
        t.contains("逾期未答复")
    });
    // A supervisor issues one from the case page's link, with the case filled in.
    browser.goto(&district.url(&format!("/cases/{case}")));
    browser.find("#case-supervision-link").click();
    browser.wait_text("#sv-station", |_| true);
    assert_eq!(browser.find("#sv-station").attribute("value"), STATION_A);
    browser.find("#sv-reason").type_text("复查");
    browser.find("#sv-todo").type_text("请补充说明");
    browser.find("#sv-issue").click();
    // On the page the submit loads (the case's notices): going to it with `goto` at once
    // could cancel the form's POST before it left, under load (seen in CI).
    browser.wait_texts("#supervision-list article", |texts| texts.len() == 2);
    assert!(
        browser
            .current_url()
            .ends_with(&format!("/supervision?case={case}")),
        "{}",
        browser.current_url()
    );
}
