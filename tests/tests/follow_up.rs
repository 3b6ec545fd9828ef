//! Following cases up across real nodes in real headless Chromium: a case transferred
//! from a station to its sub-district hall is signed for and decided there, and the
//! decision comes back to the station's timeline; a withdrawal at the station and an
//! approval at the hall made while the link was down show as a conflict on both nodes,
//! and a lead resolves it once. The link runs through a loopback proxy the test can cut.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use yizhan_tests::proxy::{Faults, LossyProxy};
use yizhan_tests::webdriver::Browser;
use yizhan_tests::{
    Node, accepted_case, add_user, admin_token, client, enroll_code, get, init_node, run_ok,
    send_to_hall, set_config, sign_in, temp_dir, wait_for,
};

const CATALOG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../node/data/demo-catalog.toml"
);
/// 居住证申领: a committed item (10 working days promised, 15 by law).
const ITEM: &str = "1144039999000005XU5001099602000";
const WAIT: Duration = Duration::from_secs(60);

fn dir_arg(dir: &Path) -> &str {
    dir.to_str().unwrap()
}

fn sign_out(browser: &Browser) {
    browser.find("header form.inline button").click();
    browser.wait_text("#signin-submit", |t| !t.is_empty());
}

/// Reloads `url` until the elements matching `css` satisfy `ready`.
fn poll(browser: &Browser, url: &str, css: &str, ready: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        browser.goto(url);
        let texts: Vec<String> = browser.find_all(css).iter().map(|e| e.text()).collect();
        if ready(&texts) {
            return texts;
        }
        assert!(
            Instant::now() < deadline,
            "waited for {css} on {url}; last saw {texts:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn new_case(base: &str, token: &str, name: &str) -> String {
    accepted_case(base, token, ITEM, name)
}

fn has_case(base: &str, token: &str, id: &str) -> bool {
    get(&client(), &format!("{base}/api/v1/cases/{id}"), Some(token))
        .map(|(status, _)| status == 200)
        .unwrap_or(false)
}

struct Tree {
    _root: tempfile::TempDir,
    _district: Node,
    sub: Node,
    sub_dir: std::path::PathBuf,
    station: Node,
    proxy: LossyProxy,
    sub_token: String,
    station_token: String,
    passwords: std::collections::HashMap<&'static str, String>,
}

/// A district authoring the catalog, its sub-district hall, and a station enrolled with
/// the hall through a proxy; a worker and a lead at the station, a clerk at the hall.
fn tree() -> Tree {
    let root = temp_dir();
    let [d, s, a] = ["district", "sub", "station"].map(|n| root.path().join(n));
    init_node(&d, "district", "440304", "福田区行政服务中心");
    run_ok(&["import-catalog", CATALOG, "--data-dir", dir_arg(&d)]);
    let district = Node::serve(&d);

    init_node(&s, "subdistrict", "440304001", "园岭街道行政服务大厅");
    set_config(&s, "interval_secs", "1");
    let code = enroll_code(&d, "440304001", "subdistrict");
    run_ok(&["enroll", &district.base, &code, "--data-dir", dir_arg(&s)]);
    let mut passwords = std::collections::HashMap::new();
    passwords.insert("clerk", add_user(&s, "clerk", "worker"));
    let sub_token = admin_token(&s);
    let sub = Node::serve(&s);

    // Faithful until told otherwise; then every connection is cut at once.
    let proxy = LossyProxy::start(
        &sub.base,
        Faults {
            latency: Duration::ZERO,
            bytes_per_sec: 1 << 30,
            cut_after: (1, 2),
        },
        7,
    );
    proxy.faulty.store(false, Ordering::Relaxed);
    init_node(&a, "station", "440304001001", "园岭社区");
    set_config(&a, "interval_secs", "1");
    let code = enroll_code(&s, "440304001001", "station");
    run_ok(&["enroll", &proxy.base, &code, "--data-dir", dir_arg(&a)]);
    passwords.insert("worker", add_user(&a, "worker", "worker"));
    passwords.insert("lead", add_user(&a, "lead", "lead"));
    let station_token = admin_token(&a);
    let station = Node::serve(&a);
    wait_for("the catalog at the station", WAIT, || {
        get(
            &client(),
            &format!("{}/api/v1/items/{ITEM}", station.base),
            None,
        )
        .ok()
        .filter(|(status, _)| *status == 200)
        .map(|_| ())
    });
    Tree {
        _root: root,
        _district: district,
        sub,
        sub_dir: s,
        station,
        proxy,
        sub_token,
        station_token,
        passwords,
    }
}

#[test]
fn transfers_decisions_and_conflicts_travel_between_a_station_and_its_hall() {
    let tree = tree();
    let browser = Browser::start();
    let pw = |user: &str| tree.passwords[user].clone();

    // ---- A transfer from the station to the hall, signed for and decided there.
    let id = new_case(&tree.station.base, &tree.station_token, "李四");
    let station_case = tree.station.url(&format!("/cases/{id}"));
    let hall_case = tree.sub.url(&format!("/cases/{id}"));
    sign_in(&browser, &tree.station, "worker", &pw("worker"));
    browser.goto(&station_case);
    browser.wait_text("#case-status", |t| t == "办理中");
    // Time limits in working days, and where the case has got to.
    let limits = browser.wait_texts("#limits tbody tr", |rows| rows.len() == 2);
    assert!(limits[0].contains("承诺办结日期"), "{limits:?}");
    poll(&browser, &station_case, "#sync-state", |t| {
        t.first()
            .is_some_and(|s| s.contains("已同步到园岭街道行政服务大厅"))
    });
    browser
        .find("#transfer-target option[value^='node:']")
        .click();
    browser.find("#transfer-reason").type_text("需街道审核");
    browser.find("#transfer-submit").click();
    browser.wait_text("#case-holder", |t| t.contains("园岭街道行政服务大厅"));
    assert_eq!(browser.find("#signed-state").text(), "尚未签收");
    browser.find("#nav-transfers").click();
    let sent = browser.wait_texts("#transfers-sent tbody tr", |r| !r.is_empty());
    assert!(sent[0].contains("园岭街道行政服务大厅") && sent[0].contains("尚未签收"));
    browser.screenshot("30-transfer-sent");
    sign_out(&browser);

    wait_for("the transfer at the hall", WAIT, || {
        get(
            &client(),
            &format!("{}/api/v1/cases/{id}", tree.sub.base),
            Some(&tree.sub_token),
        )
        .ok()
        .filter(|(_, case)| case["holder"].as_str().is_some())
        .map(|_| ())
    });
    sign_in(&browser, &tree.sub, "clerk", &pw("clerk"));
    browser.find("#nav-transfers").click();
    let received = browser.wait_texts("#transfers-received tbody tr", |r| !r.is_empty());
    assert!(received[0].contains("尚未签收"), "{received:?}");
    browser.find("#transfers-received .case-link").click();
    browser.wait_text("#case-origin", |t| t == "园岭社区");
    browser.find("#sign-note").type_text("材料齐全");
    browser.find("#sign-for-submit").click();
    browser.wait_text("#signed-state", |t| {
        t.contains("clerk") && t.contains("签收")
    });
    // Signing twice is not offered.
    assert!(browser.find_all("#sign-for-submit").is_empty());
    browser.find("#decide-yes").click();
    browser.find("#decide-submit").click();
    browser.wait_text("#case-status", |t| t == "已决定");
    browser.screenshot("31-hall-decided");
    sign_out(&browser);

    // The decision comes back: in the station's timeline, with who decided where.
    sign_in(&browser, &tree.station, "worker", &pw("worker"));
    let timeline = poll(&browser, &station_case, "#timeline li", |rows| {
        rows.iter().any(|r| r.contains("作出决定"))
    });
    assert!(
        timeline.iter().any(|r| r.contains("作出决定")
            && r.contains("园岭街道行政服务大厅")
            && r.contains("准予许可")),
        "{timeline:?}"
    );
    assert!(
        timeline
            .iter()
            .any(|r| r.contains("签收") && r.contains("材料齐全"))
    );
    assert!(
        timeline
            .iter()
            .any(|r| r.contains("转办") && r.contains("需街道审核"))
    );
    assert_eq!(browser.find("#case-status").text(), "已决定");
    assert_eq!(browser.find("#decided-by").text(), "园岭街道行政服务大厅");
    assert!(browser.find("#signed-state").text().contains("签收"));
    browser.screenshot("32-station-sees-decision");
    browser.find("#nav-transfers").click();
    let sent = browser.wait_texts("#transfers-sent tbody tr", |r| !r.is_empty());
    assert!(!sent[0].contains("尚未签收"), "{sent:?}");
    sign_out(&browser);

    // ---- A withdrawal and an approval made while the link is down.
    let id = new_case(&tree.station.base, &tree.station_token, "王五");
    wait_for("the second case at the hall", WAIT, || {
        has_case(&tree.sub.base, &tree.sub_token, &id).then_some(())
    });
    // It too goes to the hall for its decision (a hall decides only what it was sent).
    send_to_hall(
        &tree.station.base,
        &tree.station_token,
        &id,
        &tree.sub_dir,
        &tree.sub.base,
        &tree.sub_token,
    );
    tree.proxy.faulty.store(true, Ordering::Relaxed);
    let station_case = tree.station.url(&format!("/cases/{id}"));
    let hall_case_2 = tree.sub.url(&format!("/cases/{id}"));
    sign_in(&browser, &tree.station, "worker", &pw("worker"));
    browser.goto(&station_case);
    browser.find("#withdraw-reason").type_text("申请人不再申请");
    browser.find("#withdraw-submit").click();
    browser.wait_text("#case-status", |t| t == "已撤回");
    sign_out(&browser);
    sign_in(&browser, &tree.sub, "clerk", &pw("clerk"));
    browser.goto(&hall_case_2);
    browser.find("#decide-yes").click();
    browser.find("#decide-submit").click();
    browser.wait_text("#case-status", |t| t == "已决定");
    tree.proxy.faulty.store(false, Ordering::Relaxed);

    // Both nodes show the conflict, on the case and on the work list.
    poll(&browser, &hall_case_2, "#conflict-flag", |f| !f.is_empty());
    let branches = browser.find_all("#conflicts .branch");
    assert_eq!(branches.len(), 2);
    // A clerk sees both sides but cannot resolve.
    assert!(browser.find_all("#resolve-submit").is_empty());
    browser.goto(&tree.sub.url("/worklist?view=conflicts"));
    let listed = browser.wait_texts("#worklist tbody tr", |r| !r.is_empty());
    assert!(listed.iter().any(|r| r.contains("冲突")), "{listed:?}");
    browser.screenshot("33-hall-conflict");
    sign_out(&browser);

    sign_in(&browser, &tree.station, "lead", &pw("lead"));
    poll(&browser, &station_case, "#conflict-flag", |f| !f.is_empty());
    let sides = browser.wait_texts("#conflicts .branch", |b| b.len() == 2);
    assert!(
        sides[0].contains("撤回") && sides[0].contains("申请人不再申请"),
        "{sides:?}"
    );
    assert!(sides[1].contains("作出决定") && sides[1].contains("园岭街道行政服务大厅"));
    browser.screenshot("34-station-conflict");
    // Resolving without choosing a side changes nothing.
    browser
        .find("#resolve-reason")
        .type_text("经电话核实，申请人要求继续办理");
    browser.find("#resolve-submit").click();
    browser.wait_text("#form-errors", |t| t.contains("请为每个冲突选择"));
    // Keep the hall's approval: the withdrawal is voided and stays on record.
    browser.find("#keep-conflicting-1").click();
    browser
        .find("#resolve-reason")
        .type_text("经电话核实，申请人要求继续办理");
    browser.find("#resolve-submit").click();
    browser.wait_text("#case-status", |t| t == "已决定");
    assert!(browser.find_all("#conflict-flag").is_empty());
    let timeline = browser.wait_texts("#timeline li", |r| !r.is_empty());
    assert!(
        timeline
            .iter()
            .any(|r| r.contains("撤回") && r.contains("已作废"))
    );
    assert!(
        timeline
            .iter()
            .any(|r| r.contains("冲突裁定") && r.contains("经电话核实"))
    );
    browser.screenshot("35-station-resolved");
    sign_out(&browser);

    // The resolution reaches the hall: resolved there too, once.
    sign_in(&browser, &tree.sub, "clerk", &pw("clerk"));
    let timeline = poll(&browser, &hall_case_2, "#timeline li", |rows| {
        rows.iter().any(|r| r.contains("冲突裁定"))
    });
    assert_eq!(
        timeline.iter().filter(|r| r.contains("冲突裁定")).count(),
        1,
        "{timeline:?}"
    );
    assert!(browser.find_all("#conflict-flag").is_empty());
    assert_eq!(browser.find("#case-status").text(), "已决定");
    browser.goto(&tree.sub.url("/worklist?view=conflicts"));
    browser.wait_text("#worklist-empty", |t| !t.is_empty());
    // The first case is untouched by all this.
    browser.goto(&hall_case);
    browser.wait_text("#case-status", |t| t == "已决定");
}
