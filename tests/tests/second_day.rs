//! The station on its second day, in headless Chromium, with the node's clock injected
//! (`YIZHAN_CLOCK_FILE`, moved while the node runs and the worker stays signed in): a case
//! accepted at 23:50 on New Year's Eve and one accepted at 00:10 on New Year's Day (a
//! holiday) each get their own day's serial number; "received today" turns over at
//! midnight without a restart; both are due on the same working day, the holiday and the
//! weekend skipped (hand-counted below); the case pages say the deadline lies in a year
//! whose calendar is still provisional; past the deadline both are overdue on the work
//! list, and a session left idle overnight has ended.

use std::path::Path;

use yizhan_tests::webdriver::Browser;
use yizhan_tests::{Node, temp_dir};

/// 居住证申领: committed limit 10 working days, legal limit 15.
const ITEM: &str = "居住证申领";

/// Unix milliseconds of a China Standard Time `YYYY-MM-DDTHH:MM`.
fn cst_ms(at: &str) -> i64 {
    let (date, time) = at.split_once('T').unwrap();
    let d: Vec<i64> = date.split('-').map(|p| p.parse().unwrap()).collect();
    let t: Vec<i64> = time.split(':').map(|p| p.parse().unwrap()).collect();
    // Days since 1970-01-01 (civil-from-days inverse, proleptic Gregorian).
    let (y, m) = if d[1] <= 2 {
        (d[0] - 1, d[1] + 9)
    } else {
        (d[0], d[1] - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (days * 86_400 + t[0] * 3600 + t[1] * 60 - 8 * 3600) * 1000
}

/// Moves the node's clock so that it reads `at` (China Standard Time) now.
fn set_clock(file: &Path, at: &str) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    std::fs::write(file, (cst_ms(at) - now).to_string()).unwrap();
}

fn sign_in(browser: &Browser, node: &Node) {
    browser.goto(&node.url("/signin"));
    browser.find("#username").type_text("worker");
    browser
        .find("#password")
        .type_text(&node.demo_password("worker"));
    browser.find("#signin-submit").click();
    browser.wait_text("#greeting", |t| !t.is_empty());
}

/// Accepts an application for [`ITEM`] from the work list, as the counter does.
fn accept(browser: &Browser, node: &Node, applicant: &str) {
    browser.goto(&node.url("/worklist"));
    browser.find("#work-q").type_text(ITEM);
    browser.find("#work-search-submit").click();
    browser.wait_texts("#item-hits .accept-item", |t| {
        t.iter().any(|t| t.contains(ITEM))
    });
    let hits = browser.find_all("#item-hits .accept-item");
    hits.iter()
        .find(|h| h.text().contains(ITEM))
        .expect("the item is found")
        .click();
    browser.wait_text("#intake-form legend", |t| !t.is_empty());
    browser.find("#name").type_text(applicant);
    browser.find("#id_number").type_text("11010519491231002X");
    browser.find("#phone").type_text("13912345678");
    browser.find("#all-materials").click();
    browser.find("#case-submit-all").click();
    browser.wait_text("#notice-title", |t| t == "受理回执");
}

/// The work list rows of `view` that name `applicant`: (serial number, due date).
fn rows(browser: &Browser, node: &Node, view: &str, applicant: &str) -> Vec<(String, String)> {
    browser.goto(&node.url(&format!("/worklist?view={view}")));
    browser.wait_text("#greeting", |t| !t.is_empty());
    let texts = |css: &str| -> Vec<String> {
        browser
            .find_all(&format!("#worklist tbody {css}"))
            .iter()
            .map(|e| e.text())
            .collect()
    };
    let (applicants, serials, dues) = (texts("td.applicant"), texts(".case-link"), texts("td.due"));
    assert_eq!(applicants.len(), serials.len());
    assert_eq!(applicants.len(), dues.len());
    applicants
        .iter()
        .zip(serials.into_iter().zip(dues))
        .filter(|(a, _)| a.starts_with(applicant))
        .map(|(_, row)| row)
        .collect()
}

#[test]
fn a_station_works_through_midnight_into_a_holiday_and_past_the_deadline() {
    let dir = temp_dir();
    let clock = dir.path().join("clock-offset");
    set_clock(&clock, "2026-12-31T23:50");
    let data = dir.path().join("node");
    let node = Node::demo_env(&data, &[("YIZHAN_CLOCK_FILE", clock.to_str().unwrap())]);
    let browser = Browser::start();
    sign_in(&browser, &node);

    // 23:50 on New Year's Eve (Thursday): the first case of the day for this item.
    accept(&browser, &node, "除夕申请人");
    let eve = rows(&browser, &node, "today", "除夕申请人");
    assert_eq!(eve.len(), 1, "{eve:?}");
    let (eve_serial, eve_due) = eve[0].clone();
    assert!(
        eve_serial.contains("20261231") && eve_serial.ends_with("0001"),
        "{eve_serial}"
    );
    // Ten working days after 2026-12-31: 1 January is a holiday, the 2nd and 3rd a
    // weekend, so the count runs 4–8 and 11–15 January.
    assert_eq!(eve_due, "2027-01-15");
    browser.find("#worklist tbody .case-link").click();
    browser.wait_text("#committed-due", |t| t == "2027-01-15");
    assert_eq!(browser.find("#legal-due").text(), "2027-01-22");
    // 2027's calendar ships provisional (the State Council's notice was not out), and
    // the case page says the deadline may move when it arrives.
    assert_eq!(browser.find_all("#limit-calendar-uncovered").len(), 1);

    // 00:10 on New Year's Day, the same session (twenty minutes later): "today" has turned
    // over without a restart, and yesterday's case is still open.
    set_clock(&clock, "2027-01-01T00:10");
    assert!(rows(&browser, &node, "today", "除夕申请人").is_empty());
    assert_eq!(browser.find_all("#worklist-empty").len(), 1);
    assert_eq!(rows(&browser, &node, "open", "除夕申请人").len(), 1);
    // A case accepted on the holiday: the new day's first number, and the same deadline
    // (counting starts on the next working day, 4 January, for both).
    accept(&browser, &node, "元旦申请人");
    let new_year = rows(&browser, &node, "today", "元旦申请人");
    assert_eq!(new_year.len(), 1, "{new_year:?}");
    let (serial, due) = new_year[0].clone();
    assert!(
        serial.contains("20270101") && serial.ends_with("0001"),
        "{serial}"
    );
    assert_eq!(due, "2027-01-15");

    // Monday 18 January, 09:00: the worker's session ended overnight; signed in again,
    // both cases are overdue (red from the 16th, the day after the deadline).
    set_clock(&clock, "2027-01-18T09:00");
    browser.goto(&node.url("/worklist"));
    browser.wait_text("#signin-submit", |_| true);
    sign_in(&browser, &node);
    for applicant in ["除夕申请人", "元旦申请人"] {
        let overdue = rows(&browser, &node, "overdue", applicant);
        assert_eq!(overdue.len(), 1, "{applicant}: {overdue:?}");
    }
    let levels: Vec<String> = browser
        .find_all("#worklist tbody td.lv-red")
        .iter()
        .map(|e| e.text())
        .collect();
    assert!(levels.len() >= 2, "{levels:?}");
    browser.screenshot("second-day-overdue");
}
