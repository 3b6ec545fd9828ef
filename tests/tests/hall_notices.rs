//! Issue 14, points 1 and 4, across real nodes (station → sub-district → district): a
//! receipt sealed at the station verifies at the district (`/verify` and
//! `/api/v1/notices/{number}`); a supervision notice issued at the district reaches the
//! station, is answered there in Chromium by the station's lead, and the answer is seen at
//! the district and at the sub-district between; a notice left unanswered is overdue and
//! red at both halls once its deadline has passed (their pages' clock moved ten days on
//! with `YIZHAN_CLOCK_OFFSET_DAYS`), where the district's supervisor sees it in Chromium.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use yizhan_tests::webdriver::Browser;
use yizhan_tests::{
    Node, accepted_case, admin_token, client, enroll_code, get, init_node, post, run_ok,
    set_config, temp_dir, wait_for,
};

const CATALOG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../node/data/demo-catalog.toml"
);
/// 居住证申领: a committed item.
const ITEM: &str = "1144039999000005XU5001099602000";
const STATION: &str = "440304001001";
const WAIT: Duration = Duration::from_secs(60);

fn dir_arg(dir: &Path) -> &str {
    dir.to_str().unwrap()
}

/// Adds an account and returns its password.
fn add_user(dir: &Path, username: &str, role: &str) -> String {
    let out = run_ok(&[
        "user",
        "add",
        username,
        "--role",
        role,
        "--counter",
        "1号窗口",
        "--data-dir",
        dir_arg(dir),
    ]);
    out.lines()
        .find_map(|l| l.trim().strip_prefix("password: "))
        .expect("a password is printed")
        .to_string()
}

fn sign_in(browser: &Browser, node: &Node, user: &str, password: &str) {
    browser.goto(&node.url("/signin"));
    browser.find("#username").type_text(user);
    browser.find("#password").type_text(password);
    browser.find("#signin-submit").click();
    browser.wait_text("#greeting", |t| !t.is_empty());
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
fn receipts_verify_above_and_supervision_goes_down_and_its_replies_up() {
    let root = temp_dir();
    let [d, s, a] = ["district", "sub", "station"].map(|n| root.path().join(n));
    init_node(&d, "district", "440304", "福田区行政服务中心");
    run_ok(&["import-catalog", CATALOG, "--data-dir", dir_arg(&d)]);
    let supervisor_password = add_user(&d, "duban", "supervisor");
    let district_token = admin_token(&d);
    let district = Node::serve(&d);

    init_node(&s, "subdistrict", "440304001", "园岭街道行政服务大厅");
    set_config(&s, "interval_secs", "1");
    let code = enroll_code(&d, "440304001", "subdistrict");
    run_ok(&["enroll", &district.base, &code, "--data-dir", dir_arg(&s)]);
    let sub_token = admin_token(&s);
    let sub = Node::serve(&s);

    init_node(&a, "station", STATION, "园岭社区");
    set_config(&a, "interval_secs", "1");
    let code = enroll_code(&s, STATION, "station");
    run_ok(&["enroll", &sub.base, &code, "--data-dir", dir_arg(&a)]);
    let lead_password = add_user(&a, "lead", "lead");
    let station_token = admin_token(&a);
    let station = Node::serve(&a);
    poll_api(
        &format!("{}/api/v1/items/{ITEM}", station.base),
        &station_token,
        "the catalog at the station",
        |_| true,
    );
    let http = client();

    // A case accepted through the station's API gets its sealed receipt.
    let case = accepted_case(&station.base, &station_token, ITEM, "赵六");
    let (_, at_station) = get(
        &http,
        &format!("{}/api/v1/cases/{case}", station.base),
        Some(&station_token),
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
    assert_eq!(notice["office"], "园岭社区");
    let full_code = format!(
        "YZN1/{}/{}/{}/{}",
        notice["node"].as_str().unwrap(),
        number,
        notice["digest"].as_str().unwrap(),
        notice["seal"].as_str().unwrap()
    );
    let browser = Browser::start();
    browser.set_window_size(390, 844);
    browser.goto(&district.url(&format!("/verify?code={full_code}")));
    browser.wait_text("#verdict-title", |t| !t.is_empty());
    assert_eq!(browser.find("#verdict").attribute("class"), "valid");
    assert!(browser.find("#verdict-why").text().contains("园岭社区"));
    assert!(!browser.find("#verdict-kind").text().is_empty());

    // The district supervises the case; the notice reaches the station.
    let body = json!({
        "station": STATION,
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
        &json!({"station": STATION, "reason": "窗口等候时间过长", "todo": "整改并报告", "reply_days": 1}),
    )
    .unwrap();
    assert_eq!(status, 201, "{unanswered}");
    let unanswered_id = unanswered["id"].as_str().unwrap().to_string();
    poll_api(
        &format!("{}/api/v1/supervision", station.base),
        &station_token,
        "both notices at the station",
        |list| list["notices"].as_array().is_some_and(|n| n.len() == 2),
    );

    // The station's lead answers the one about the case in the browser: the work list
    // says a notice waits, the supervision page has the reply form.
    sign_in(&browser, &station, "lead", &lead_password);
    browser.goto(&station.url("/worklist"));
    browser.wait_text("#work-supervision", |t| t.contains('2'));
    browser.goto(&station.url(&format!("/cases/{case}")));
    browser.wait_text("#case-supervision", |t| t.contains("请说明办理进度"));
    browser.goto(&station.url("/supervision"));
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
    for (node, token) in [(&district, &district_token), (&sub, &sub_token)] {
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
        &format!("{}/api/v1/supervision/{unanswered_id}", sub.base),
        &sub_token,
        "the unanswered notice at the sub-district",
        |n| n["state"] == "open",
    );

    // Ten days on, the unanswered notice is overdue and red at the district and at the
    // sub-district; the one answered stays answered on time.
    let (district_base, sub_base) = (district.base.clone(), sub.base.clone());
    drop(district);
    drop(sub);
    let district = Node::restart_days_later(&d, &district_base, 10);
    let sub = Node::restart_days_later(&s, &sub_base, 10);
    for (node, token) in [(&district, &district_token), (&sub, &sub_token)] {
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
    assert_eq!(browser.find("#sv-station").attribute("value"), STATION);
    browser.find("#sv-reason").type_text("复查");
    browser.find("#sv-todo").type_text("请补充说明");
    browser.find("#sv-issue").click();
    poll_page(
        &browser,
        &district.url(&format!("/supervision?case={case}")),
        "#supervision-list article",
        |texts| texts.len() == 2,
    );
}
