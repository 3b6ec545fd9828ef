//! Fees (SZDB/Z 176 §9.5) over a three-tier tree of real processes: a district, a
//! sub-district and a station, enrolled and linked as technicians do. The station records
//! a payment and an exemption on a case of the demo catalog's one item with a fee line
//! (居住证申领); a payment on a line the item lacks and one on an item that charges
//! nothing are refused there; after the sync, the case's fees read the same at the
//! district, and the month's fee figures of both halls (their subtree) and of the station
//! count the payment and the exemption.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use yizhan_tests::webdriver::Browser;
use yizhan_tests::{
    Node, accepted_case, admin_token, client, enroll_code, get, init_node, post, run_ok, sign_in,
    temp_dir, wait_for,
};

const CATALOG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../node/data/demo-catalog.toml"
);
/// 居住证申领: one fee line (补领或换领工本费).
const ITEM: &str = "1144039999000005XU5001099602000";
/// 最低生活保障申请: no fee line (不收费).
const FREE_ITEM: &str = "11440399990000017K4000599301000";
const WAIT: Duration = Duration::from_secs(60);

const DISTRICT: &str = "440304";
const SUB: &str = "440304001";
const STATION: &str = "440304001001";

fn dir_arg(dir: &Path) -> &str {
    dir.to_str().unwrap()
}

/// A node enrolled with the hall in `hall_dir` (served at `hall`), serving, with an admin
/// token.
fn child(
    root: &Path,
    hall_dir: &Path,
    hall: &Node,
    role: &str,
    division: &str,
) -> (PathBuf, Node, String) {
    let dir = root.join(division);
    init_node(&dir, role, division, division);
    let code = enroll_code(hall_dir, division, role);
    run_ok(&["enroll", &hall.base, &code, "--data-dir", dir_arg(&dir)]);
    let token = admin_token(&dir);
    let node = Node::serve(&dir);
    (dir, node, token)
}

fn fees_of(base: &str, token: &str, id: &str) -> Option<Value> {
    let (status, fees) = get(
        &client(),
        &format!("{base}/api/v1/cases/{id}/fees"),
        Some(token),
    )
    .ok()?;
    (status == 200).then_some(fees)
}

fn report(base: &str, token: &str, month: &str) -> Value {
    let (status, report) = get(
        &client(),
        &format!("{base}/api/v1/fees?month={month}"),
        Some(token),
    )
    .unwrap();
    assert_eq!(status, 200, "{report}");
    report
}

#[test]
fn a_stations_payment_and_exemption_are_counted_up_the_tree() {
    let root = temp_dir();
    let d = root.path().join(DISTRICT);
    init_node(&d, "district", DISTRICT, "福田区行政服务中心");
    run_ok(&["import-catalog", CATALOG, "--data-dir", dir_arg(&d)]);
    let district_token = admin_token(&d);
    let district = Node::serve(&d);
    let (sub_dir, sub, sub_token) = child(root.path(), &d, &district, "subdistrict", SUB);
    let (_station_dir, station, token) = child(root.path(), &sub_dir, &sub, "station", STATION);
    for item in [ITEM, FREE_ITEM] {
        wait_for("the catalog at the station", WAIT, || {
            let (status, _) = get(
                &client(),
                &station.url(&format!("/api/v1/items/{item}")),
                None,
            )
            .ok()?;
            (status == 200).then_some(())
        });
    }

    let id = accepted_case(&station.base, &token, ITEM, "缴费申请人");
    let fees_url = station.url(&format!("/api/v1/cases/{id}/fees"));
    let listed = fees_of(&station.base, &token, &id).unwrap();
    let line = listed["lines"][0]["name"].as_str().unwrap().to_string();
    assert_eq!(listed["settled"], false);

    // Refused at the station, with their codes.
    let (status, refused) = post(
        &client(),
        &fees_url,
        Some(&token),
        &json!({"kind": "pay", "fee": "办证费", "amount_fen": 2000, "method": "cash", "receipt": "1"}),
    )
    .unwrap();
    assert_eq!(
        (status, refused["error"].as_str()),
        (422, Some("unknown_fee_line")),
        "{refused}"
    );
    let free = accepted_case(&station.base, &token, FREE_ITEM, "不收费申请人");
    let (status, refused) = post(
        &client(),
        &station.url(&format!("/api/v1/cases/{free}/fees")),
        Some(&token),
        &json!({"kind": "pay", "fee": line, "amount_fen": 2000, "method": "cash", "receipt": "1"}),
    )
    .unwrap();
    assert_eq!(
        (status, refused["error"].as_str()),
        (422, Some("no_fees")),
        "{refused}"
    );

    // The payment and the exemption.
    let (status, paid) = post(
        &client(),
        &fees_url,
        Some(&token),
        &json!({"kind": "pay", "fee": line, "amount_fen": 2000, "method": "mobile", "receipt": "粤财0001"}),
    )
    .unwrap();
    assert_eq!(status, 201, "{paid}");
    let (status, exempted) = post(
        &client(),
        &fees_url,
        Some(&token),
        &json!({"kind": "exempt", "fee": line, "amount_fen": 500, "reason": "低保户", "basis": "民政减免规定"}),
    )
    .unwrap();
    assert_eq!(status, 201, "{exempted}");
    assert_eq!(
        (
            exempted["paid_fen"].as_u64(),
            exempted["exempt_fen"].as_u64()
        ),
        (Some(2000), Some(500))
    );
    let month = paid["lines"][0]["payment"]["on"].as_str().unwrap()[..7].to_string();

    // Up the tree: the district holds the case with its fees as the station recorded them.
    let at_district = wait_for("the fees at the district", WAIT, || {
        fees_of(&district.base, &district_token, &id).filter(|f| f["exempt_fen"] == 500)
    });
    assert_eq!(at_district["lines"][0]["payment"]["receipt"], "粤财0001");
    assert_eq!(at_district["lines"][0]["payment"]["method"], "mobile");
    assert_eq!(at_district["lines"][0]["exemption"]["reason"], "低保户");

    // The month's figures: the station's own, and each hall's over its subtree.
    for (base, token, what) in [
        (&station.base, &token, "station"),
        (&sub.base, &sub_token, "sub-district"),
        (&district.base, &district_token, "district"),
    ] {
        let figures = wait_for(&format!("the fee figures at the {what}"), WAIT, || {
            let r = report(base, token, &month);
            (r["total"]["exemptions"] == 1).then_some(r)
        });
        assert_eq!(
            figures["items"].as_array().unwrap().len(),
            1,
            "{what}: {figures}"
        );
        let item = &figures["items"][0];
        assert_eq!(item["impl_code"], ITEM, "{what}");
        assert_eq!(item["collected_fen"], 2000, "{what}");
        assert_eq!(item["paid_cases"], 1, "{what}");
        assert_eq!(item["exemptions"], 1, "{what}");
        assert_eq!(item["exempt_fen"], 500, "{what}");
    }
}

/// §9.5 on the case page, as the worker at the counter does it, in Chromium: the fee line
/// reads as due; an amount typed wrong is refused in words beside the form and nothing is
/// recorded; the payment (by phone, with its receipt number) and an exemption with its
/// reason and basis are recorded on the forms; the line reads settled, and the API says
/// the same. At a phone's width the fee forms fit without sideways scroll.
#[test]
fn a_worker_records_a_payment_and_an_exemption_on_the_case_page_in_chromium() {
    let dir = temp_dir();
    let node = Node::demo(dir.path());
    let token = node
        .printed
        .iter()
        .find_map(|l| l.split("API token of `worker`: ").nth(1))
        .expect("the demo prints the worker's token")
        .trim()
        .to_string();
    let id = accepted_case(&node.base, &token, ITEM, "缴费申请人");
    let browser = Browser::start();
    sign_in(&browser, &node, "worker", &node.demo_password("worker"));
    browser.goto(&node.url(&format!("/cases/{id}")));
    // The demo's line names its standard in words (20元/证), not as a fixed amount.
    assert_eq!(browser.find(".fee-state").text(), "待缴费（按收费标准）");

    browser.find("#pay-amount").type_text("二十");
    browser.find("#pay-method option[value=mobile]").click();
    browser.find("#pay-receipt").type_text("粤财0001");
    browser.find("#pay-submit").click();
    let refused = browser.wait_text("#form-errors", |t| !t.is_empty());
    assert!(refused.contains("请按元填写金额"), "{refused}");
    let untouched = fees_of(&node.base, &token, &id).unwrap();
    assert_eq!(untouched["paid_fen"], 0, "{untouched}");

    browser.goto(&node.url(&format!("/cases/{id}")));
    browser.find("#pay-amount").type_text("15.00");
    browser.find("#pay-method option[value=mobile]").click();
    browser.find("#pay-receipt").type_text("粤财0001");
    browser.find("#pay-submit").click();
    let state = browser.wait_text(".fee-state", |t| t == "已结清");
    assert_eq!(state, "已结清");
    let paid = browser.find(".fee-paid").text();
    assert!(
        paid.contains("已缴 ¥15.00") && paid.contains("粤财0001"),
        "{paid}"
    );

    browser.find("#exempt-amount").type_text("5");
    browser.find("#exempt-reason").type_text("低保户");
    browser.find("#exempt-basis").type_text("民政减免规定");
    browser.find("#exempt-submit").click();
    let exempted = browser.wait_text(".fee-exempted", |t| !t.is_empty());
    assert!(
        exempted.contains("减免 ¥5.00") && exempted.contains("低保户"),
        "{exempted}"
    );
    let fees = fees_of(&node.base, &token, &id).unwrap();
    assert_eq!(
        (
            fees["paid_fen"].as_u64(),
            fees["exempt_fen"].as_u64(),
            fees["settled"].as_bool()
        ),
        (Some(1500), Some(500), Some(true)),
        "{fees}"
    );

    browser.set_window_size(390, 844);
    browser.goto(&node.url(&format!("/cases/{id}")));
    browser.find("#fees");
    let overflow = browser.eval(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
    );
    let wide = browser.eval(
        "var w = document.documentElement.clientWidth; return Array.from(document.querySelectorAll('body *')).filter(function (e) { var r = e.getBoundingClientRect(); return r.right > w + 1 && !e.closest('.table-wrap'); }).slice(0, 12).map(function (e) { return e.tagName + '#' + e.id + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right) + ' ' + e.textContent.slice(0, 80); });",
    );
    browser.eval("document.getElementById('fees').scrollIntoView(); return 0;");
    browser.screenshot("fees-case-page-390px");
    assert!(overflow.as_i64().unwrap() <= 0, "{overflow}: {wide}");
}
