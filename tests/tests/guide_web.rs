//! The guide's new elements and situations (情形) in real headless Chromium: the guide
//! shows steps with their posts and the situations in both languages, and choosing a
//! situation at intake changes the materials the form lists and the receipt names.

use yizhan_tests::webdriver::Browser;
use yizhan_tests::{Node, temp_dir};

/// 居住证申领: with the situations 以连续就读为由申领 (adds 在读证明) and 本站居住登记记录可查
/// (居住登记记录 not needed).
const RESIDENCE: &str = "1144039999000005XU5001099602000";

fn materials(browser: &Browser) -> Vec<String> {
    browser
        .find_all("#materials-form tbody tr td:first-child")
        .iter()
        .map(|cell| cell.text())
        .collect()
}

#[test]
fn choosing_a_situation_at_intake_changes_the_listed_materials() {
    let dir = temp_dir();
    let node = Node::demo(dir.path());
    let browser = Browser::start();

    // The guide: steps with their limits and posts, the situations, in both languages.
    browser.goto(&node.url(&format!("/catalog/{RESIDENCE}")));
    browser.wait_text("#item-name", |t| t == "居住证申领");
    let steps = browser.find("#process").text();
    assert!(
        steps.contains("区公安分局人口管理岗") && steps.contains("6 个工作日"),
        "{steps}"
    );
    assert!(browser.find("#handling-forms").text().contains("窗口办理"));
    let situations: Vec<String> = browser
        .find_all(".situation h3")
        .iter()
        .map(|h| h.text())
        .collect();
    assert_eq!(situations, ["以连续就读为由申领", "本站居住登记记录可查"]);
    browser.screenshot("guide-01-situations");
    browser.find("#lang-switch").click();
    browser.wait_text("#booking", |t| t == "Can be booked");
    assert!(browser.find("#process").text().contains("6 working days"));
    browser.find("#lang-switch").click();
    browser.wait_text("#booking", |t| t == "支持预约");

    // Intake: the item's own list, then the situations' lists.
    browser.goto(&node.url("/signin"));
    browser.find("#username").type_text("worker");
    browser
        .find("#password")
        .type_text(&node.demo_password("worker"));
    browser.find("#signin-submit").click();
    browser.wait_text("#greeting", |t| t.contains("您好"));
    browser.goto(&node.url(&format!("/cases/new?item={RESIDENCE}")));
    browser.wait_text("#situation-apply", |t| !t.is_empty());
    let own = materials(&browser);
    assert_eq!(own, ["身份证", "居住登记记录", "住所证明", "近期免冠照片"]);
    browser.find("#situation_0").click();
    browser.find("#situation_1").click();
    browser.find("#situation-apply").click();
    browser.wait_text("#situations-chosen", |t| t.contains("以连续就读为由申领"));
    assert_eq!(
        materials(&browser),
        ["身份证", "住所证明", "近期免冠照片", "在读证明"]
    );
    browser.screenshot("guide-02-intake-situations");

    // Received with everything the chosen situations ask for: accepted, and the receipt
    // names what was received.
    browser.find("#name").type_text("赵六");
    browser.find("#id_number").type_text("11010519491231002X");
    browser.find("#phone").type_text("13800138000");
    browser.find("#all-materials").click();
    browser.find("#case-submit-all").click();
    // The intake form itself speaks of 告知书: wait for the notice page's own title.
    browser.wait_text("#notice-title", |t| t == "受理回执");
    let receipt = browser.wait_text("main", |t| t.contains("受理回执"));
    assert!(receipt.contains("在读证明"), "{receipt}");
    assert!(!receipt.contains("居住登记记录"), "{receipt}");
    browser.screenshot("guide-03-receipt");
}
