//! The web UI against a real `yizhan demo` process: sessions, roles, CSRF, the sign-in
//! throttle (slowing guessers, never the user's own browser) and the logs over plain
//! HTTP; then a counter worker's path in real headless Chromium.

use std::time::Duration;

use yizhan_tests::visitor::{Visitor, hidden};
use yizhan_tests::webdriver::Browser;
use yizhan_tests::{Node, client, get, temp_dir};

const RELIEF: &str = "11440399990000017K4000599301000";
/// 居住证申领: a committed item the station decides itself.
const RESIDENCE: &str = "1144039999000005XU5001099602000";
/// 特困人员救助供养认定: the station decides it; 公示 stops the clock; no extension.
const SUPPORT: &str = "11440399990000017K4000599302000";

#[test]
fn pages_need_a_session_and_roles_decide_what_opens() {
    let dir = temp_dir();
    let node = Node::demo(dir.path());
    let mut anonymous = Visitor::new(&node);
    for path in [
        "/admin/users",
        "/worklist",
        "/cases/new?item=x",
        "/cases/c-1",
        "/notices/TZ-000001",
    ] {
        let (status, _, location) = anonymous.get(path);
        assert_eq!(status, 303, "{path}");
        assert!(
            location.unwrap().starts_with("/signin?next="),
            "{path} sends to sign-in"
        );
    }
    // The start page, sign-in, the catalog, the guides and the notification sheet are
    // public.
    for path in [
        "/",
        "/signin",
        "/catalog",
        &format!("/catalog/{RELIEF}"),
        &format!("/catalog/{RELIEF}/notice"),
        "/static/app.css",
        "/verify",
        "/verify?code=YZN1%2Fjunk",
    ] {
        let (status, _, _) = anonymous.get(path);
        assert_eq!(status, 200, "{path}");
    }
    // The notification sheet lists every material of the item.
    let (_, item) = get(
        &client(),
        &node.url(&format!("/api/v1/items/{RELIEF}")),
        None,
    )
    .unwrap();
    let (_, sheet, _) = anonymous.get(&format!("/catalog/{RELIEF}/notice"));
    assert!(sheet.contains("一次性告知单"));
    for material in item["materials"].as_array().unwrap() {
        assert!(
            sheet.contains(material["name"].as_str().unwrap()),
            "{material}"
        );
    }
    // Browse by handling level: every row shown is of that level.
    let (_, all, _) = anonymous.get("/catalog");
    let level_of = |html: &str| -> Vec<String> {
        html.split("class=\"item-level\">")
            .skip(1)
            .map(|rest| rest.split('<').next().unwrap().to_string())
            .collect()
    };
    let levels = level_of(&all);
    let level = levels.first().expect("items have levels").clone();
    let (_, some, _) = anonymous.get(&format!("/catalog?level={}", percent(&level)));
    let shown = level_of(&some);
    assert!(!shown.is_empty() && shown.iter().all(|l| *l == level));
    assert_eq!(shown.len(), levels.iter().filter(|l| **l == level).count());
    let (status, _, _) = anonymous.get("/catalog/00000000000000000000000000000000");
    assert_eq!(status, 404);

    let mut worker = Visitor::new(&node);
    let (status, _, location) = worker.sign_in("worker", &node.demo_password("worker"));
    assert_eq!((status, location.as_deref()), (303, Some("/")));
    // Staff land on their work list.
    let (status, _, location) = worker.get("/");
    assert_eq!((status, location.as_deref()), (303, Some("/worklist")));
    let (status, home, _) = worker.get("/worklist");
    assert_eq!(status, 200);
    assert!(home.contains("您好"), "{home}");
    let (status, refused, _) = worker.get("/admin/users");
    assert_eq!(status, 403);
    assert!(refused.contains("无权访问"));

    let mut admin = Visitor::new(&node);
    admin.sign_in("admin", &node.demo_password("admin"));
    let (status, users, _) = admin.get("/admin/users");
    assert_eq!(status, 200);
    assert!(users.contains("worker") && users.contains("lead"));
}

#[test]
fn forms_without_the_right_csrf_token_change_nothing() {
    let dir = temp_dir();
    let node = Node::demo(dir.path());
    let password = node.demo_password("worker");
    // Sign-in without the form's secret (a cross-site post): refused, no session.
    let mut forger = Visitor::new(&node);
    let (status, _, _) = forger.post(
        "/signin",
        &[
            ("username", "worker"),
            ("password", &password),
            ("csrf", "0000"),
        ],
    );
    assert_eq!(status, 403);
    assert!(!forger.cookies.contains_key("yz_session"));

    let mut worker = Visitor::new(&node);
    worker.sign_in("worker", &password);
    let csrf = worker.session_csrf();
    for wrong in ["", "deadbeef", &csrf[..csrf.len() - 1]] {
        let (status, page, _) = worker.post("/signout", &[("csrf", wrong)]);
        assert_eq!(status, 403, "csrf {wrong:?}");
        assert!(page.contains("未做任何更改"));
        let (status, _, _) = worker.get("/worklist");
        assert_eq!(status, 200, "still signed in");
    }
    let (status, _, location) = worker.post("/signout", &[("csrf", &csrf)]);
    assert_eq!((status, location.as_deref()), (303, Some("/signin")));
    let (status, _, _) = worker.get("/worklist");
    assert_eq!(status, 303, "signed out");
}

#[test]
fn repeated_wrong_passwords_slow_the_guesser_and_never_the_users_own_browser() {
    let dir = temp_dir();
    let node = Node::demo(dir.path());
    // The worker's own browser has signed in before, and keeps its device cookie.
    let mut own = Visitor::new(&node);
    let (status, _, _) = own.sign_in("worker", &node.demo_password("worker"));
    assert_eq!(status, 303);
    assert!(own.cookies.contains_key("yz_device"));
    own.cookies.remove("yz_session");

    let mut guesser = Visitor::new(&node);
    for n in 1..5 {
        let (status, page, _) = guesser.sign_in("worker", &format!("guess-{n}"));
        assert_eq!(status, 401, "attempt {n}");
        assert!(page.contains("用户名或密码不正确"));
    }
    for n in 5..30 {
        let (status, page, _) = guesser.sign_in("worker", &format!("guess-{n}"));
        assert_eq!(status, 429, "attempt {n}");
        assert!(page.contains("请等待"), "{page}");
    }
    // The guesser's browser waits even with the right password.
    let (status, _, _) = guesser.sign_in("worker", &node.demo_password("worker"));
    assert_eq!(status, 429);
    assert!(!guesser.cookies.contains_key("yz_session"));
    // The worker's own browser, from the same address, is not held up.
    let (status, _, _) = own.sign_in("worker", &node.demo_password("worker"));
    assert_eq!(status, 303);
    assert!(own.cookies.contains_key("yz_session"));
    // Other accounts are not affected.
    let mut lead = Visitor::new(&node);
    let (status, _, _) = lead.sign_in("lead", &node.demo_password("lead"));
    assert_eq!(status, 303);
    // An unknown name gets the same answer as a wrong password.
    let (status, _, _) = Visitor::new(&node).sign_in("nobody", "whatever");
    assert_eq!(status, 401);
}

#[test]
fn no_password_or_token_reaches_the_log() {
    let dir = temp_dir();
    let log = dir.path().join("node.log");
    let data = dir.path().join("data");
    let node = Node::demo_logged(&data, &log);
    let password = node.demo_password("worker");
    let api_token = node
        .printed_after("API token of `worker`:")
        .expect("the demo prints a token");
    let mut worker = Visitor::new(&node);
    worker.sign_in("worker", "Wrong-Secret-4711");
    worker.sign_in("worker", &password);
    let session = worker.cookies.get("yz_session").cloned().unwrap();
    let csrf = worker.session_csrf();
    let (status, _) = get(&client(), &node.url("/api/v1/cases"), Some(&api_token)).unwrap();
    assert_eq!(status, 200);
    worker.post("/signout", &[("csrf", &csrf)]);
    drop(node);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("signed in"),
        "the log records sign-ins: {text}"
    );
    assert!(text.contains("failed sign-in"));
    for secret in [
        password.as_str(),
        "Wrong-Secret-4711",
        api_token.as_str(),
        &session,
        &csrf,
    ] {
        assert!(!text.contains(secret), "a secret reached the log");
    }
}

#[test]
fn a_counter_worker_signs_in_finds_items_and_switches_language() {
    let dir = temp_dir();
    let node = Node::demo(dir.path());
    let browser = Browser::start();
    // The start page is for applicants, with a way in for staff.
    browser.goto(&node.url("/"));
    browser.wait_text("#home-title", |t| !t.is_empty());
    browser.screenshot("00-public-home");
    browser.find("#staff-signin").click();
    browser.wait_text("#signin-submit", |t| !t.is_empty());
    browser.find("#username").type_text("worker");
    browser
        .find("#password")
        .type_text(&node.demo_password("worker"));
    browser.screenshot("01-signin");
    browser.find("#signin-submit").click();
    let greeting = browser.wait_text("#greeting", |t| t.contains("您好"));
    assert!(
        greeting.chars().count() > 3,
        "the greeting names the worker: {greeting}"
    );
    browser.screenshot("02-work-list");
    browser.goto(&node.url("/catalog"));

    // A Chinese keyword.
    browser.find("#q").type_text("救助");
    browser.find("form.search button").click();
    // The results' address: the page before (the whole catalog) lists this item too, and
    // a wait that matched it would read the list before the search.
    yizhan_tests::wait_for("the search results", Duration::from_secs(10), || {
        browser.current_url().contains("q=").then_some(())
    });
    let found = browser.wait_texts("#items .item-link", |found| {
        found.iter().any(|n| n == "临时救助申请（一般程序）")
    });
    assert!(
        found
            .iter()
            .all(|n| n.contains("救助") || n.contains("最低生活保障")),
        "{found:?}"
    );
    browser.screenshot("03-search-keyword");

    // Pinyin initials of the way people say it: dbsq → 低保申请 → 最低生活保障申请.
    let q = browser.find("#q");
    q.clear();
    q.type_text("dbsq");
    browser.find("#search-submit").click();
    browser.wait_texts("#items .item-link", |found| found == ["最低生活保障申请"]);
    browser.screenshot("04-search-pinyin");

    // The guide, with 承诺件 wording and the fee line.
    browser.find("#items .item-link").click();
    browser.wait_text("#item-name", |t| t == "最低生活保障申请");
    assert!(browser.find("#case-type").text().contains("承诺件"));
    assert!(browser.find("#time-limits").text().contains("个工作日"));
    assert_eq!(browser.find("#fees").text(), "不收费");
    browser.screenshot("05-guide");

    // English and back.
    browser.find("#lang-switch").click();
    browser.wait_text("#case-type", |t| t.contains("Committed"));
    assert!(browser.find("#time-limits").text().contains("working days"));
    browser.screenshot("06-guide-english");
    browser.find("#lang-switch").click();
    browser.wait_text("#case-type", |t| t.contains("承诺件"));
    browser.goto(&node.url(&format!("/catalog/{RELIEF}/notice")));
    browser.wait_text("h1", |t| t.contains("一次性告知单"));
    browser.screenshot("07-notice-sheet");
}

/// Signs in through the browser.
fn browser_sign_in(browser: &Browser, node: &Node, user: &str) {
    browser.goto(&node.url("/signin"));
    browser.find("#username").type_text(user);
    browser
        .find("#password")
        .type_text(&node.demo_password(user));
    browser.find("#signin-submit").click();
    browser.wait_text("#greeting", |t| t.contains("您好"));
}

/// Fills the applicant of the application form (a natural person).
fn fill_applicant(browser: &Browser, name: &str) {
    browser.find("#name").type_text(name);
    browser.find("#id_number").type_text("11010519491231002X");
    browser.find("#phone").type_text("13800138000");
}

/// A day as the notices print it: 2026-03-05 → 2026年3月5日.
fn human(iso: &str) -> String {
    let parts: Vec<u32> = iso.split('-').map(|p| p.parse().unwrap()).collect();
    format!("{}年{}月{}日", parts[0], parts[1], parts[2])
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn accepting_applications_issues_sealed_notices_that_verify() {
    let dir = temp_dir();
    let node = Node::demo(dir.path());
    let (_, item) = get(
        &client(),
        &node.url(&format!("/api/v1/items/{RELIEF}")),
        None,
    )
    .unwrap();
    let first = item["materials"][0]["name"].as_str().unwrap().to_string();
    assert_eq!(item["materials"][0]["required"], true);
    let browser = Browser::start();
    browser_sign_in(&browser, &node, "worker");

    // One required material missing → the one-time notice lists exactly that one.
    browser.goto(&node.url(&format!("/cases/new?item={RELIEF}")));
    fill_applicant(&browser, "张三");
    for checkbox in browser.find_all("#materials-form input[type=checkbox]:not([name$='_0'])") {
        checkbox.click();
    }
    browser.screenshot("10-application-form");
    browser.find("#case-submit").click();
    // The one-time notice at once, to print; the case is a click away.
    browser.wait_text("#notice-title", |t| t == "一次性告知书");
    browser.find("#notice-case").click();
    browser.wait_text("#case-status", |t| t == "待补正");
    let case_url = browser.current_url();
    // The work list shows it among those awaiting materials, and opens it again.
    browser.find("#nav-worklist").click();
    browser.wait_text("#view-today", |t| !t.is_empty());
    browser.find("#view-awaiting").click();
    let case_id = case_url.rsplit('/').next().unwrap().to_string();
    // The awaiting view's own tab, current: the view before lists cases too.
    browser.wait_text("#view-awaiting[aria-current=page]", |t| !t.is_empty());
    browser.wait_texts("#worklist .case-link", |links| !links.is_empty());
    browser.screenshot("10b-work-list");
    browser.goto(&node.url(&format!("/cases/{case_id}")));
    browser.wait_text("#case-status", |t| t == "待补正");
    browser.find("#notices .notice-link").click();
    browser.wait_text("#notice-title", |t| t == "一次性告知书");
    let missing = browser.wait_texts("#notice-missing .missing-name", |m| !m.is_empty());
    assert_eq!(missing, vec![first.clone()]);
    browser.screenshot("11-one-time-notice");

    // Supplement → accepted, with the receipt showing the serial number and both dates.
    browser.goto(&case_url);
    for checkbox in browser.find_all("#supplement-form input[type=checkbox]") {
        checkbox.click();
    }
    browser.find("#supplement-submit").click();
    browser.wait_text("#notice-title", |t| t == "受理回执");
    browser.find("#notice-case").click();
    browser.wait_text("#case-status", |t| t == "办理中");
    let serial = browser.find("#serial-no").text();
    assert!(serial.starts_with(RELIEF), "{serial}");
    let committed = browser.find("#committed-due").text();
    let legal = browser.find("#legal-due").text();
    assert!(committed.starts_with("20") && legal.starts_with("20") && committed <= legal);
    let receipt_link = browser
        .find_all("#notices .notice-link")
        .into_iter()
        .find(|l| l.text().contains("受理回执"))
        .expect("a receipt");
    receipt_link.click();
    browser.wait_text("#notice-title", |t| t == "受理回执");
    // The station accepts this item on the district bureau's behalf (§5.5.2), and says so.
    let delegated = browser.find("#accepted-for").text();
    assert!(
        delegated.contains("代为受理") && delegated.contains("示范区民政局"),
        "{delegated}"
    );
    assert_eq!(browser.find("#notice-serial").text(), serial);
    // On paper, dates as people write them.
    assert_eq!(browser.find("#notice-committed").text(), human(&committed));
    assert_eq!(browser.find("#notice-legal").text(), human(&legal));
    let qr = browser.find("#qr-text").text();
    browser.screenshot("12-receipt");

    // The seal verifies; a changed one does not.
    browser.goto(&node.url(&format!("/verify?code={}", percent(&qr))));
    browser.wait_text("#verdict-title", |t| t == "有效");
    browser.screenshot("13-verify-valid");
    let flip = |c: char| if c == '0' { '1' } else { '0' };
    let mut tampered_sig = qr.clone();
    let last = tampered_sig.pop().unwrap();
    tampered_sig.push(flip(last));
    browser.goto(&node.url(&format!("/verify?code={}", percent(&tampered_sig))));
    browser.wait_text("#verdict-title", |t| t == "无效");
    assert!(browser.find("#verdict-why").text().contains("不符"));
    browser.screenshot("14-verify-tampered");
    let renumbered = qr.replacen("-0000", "-9999", 1);
    assert_ne!(renumbered, qr);
    browser.goto(&node.url(&format!("/verify?code={}", percent(&renumbered))));
    browser.wait_text("#verdict-title", |t| t == "无效");

    // An on-the-spot item completes at once.
    let (_, list) = get(&client(), &node.url("/api/v1/items?limit=500"), None).unwrap();
    let instant = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["case_type"] == "instant")
        .expect("the demo has an on-the-spot item")["impl_code"]
        .as_str()
        .unwrap()
        .to_string();
    browser.goto(&node.url(&format!("/cases/new?item={instant}")));
    fill_applicant(&browser, "李四");
    for checkbox in browser.find_all("#materials-form input[type=checkbox]") {
        checkbox.click();
    }
    browser.find("#case-submit").click();
    browser.wait_text("#notice-title", |t| t == "受理回执");
    browser.find("#notice-case").click();
    browser.wait_text("#case-status", |t| t == "已办结");
    browser.screenshot("15-instant-completed");

    // A refusal without its reasons is blocked with a message; with them, a notice.
    browser.goto(&node.url(&format!("/cases/new?item={RELIEF}")));
    fill_applicant(&browser, "王五");
    browser.find("#case-submit").click();
    browser.wait_text("#notice-title", |t| t == "一次性告知书");
    browser.find("#notice-case").click();
    browser.wait_text("#case-status", |t| t == "待补正");
    browser.find("#refuse-submit").click();
    browser.wait_text("#form-errors", |t| t.contains("理由"));
    assert_eq!(browser.find("#case-status").text(), "待补正");
    browser.find("#reason").type_text("申请人户籍不在本社区");
    browser
        .find("#basis")
        .type_text("《社会救助暂行办法》第十一条");
    browser
        .find("#competent_authority")
        .type_text("户籍所在地街道办事处");
    browser.find("#refuse-submit").click();
    browser.wait_text("#case-status", |t| t == "不予受理");
    browser
        .find_all("#notices .notice-link")
        .into_iter()
        .find(|l| l.text().contains("不予受理通知书"))
        .expect("a refusal notice")
        .click();
    let refusal = browser.wait_text("#notice-refusal", |t| t.contains("户籍"));
    assert!(refusal.contains("行政复议"), "{refusal}");
    browser.screenshot("16-refusal-notice");
}

#[test]
fn bad_applications_get_clear_messages_and_store_nothing() {
    let dir = temp_dir();
    let node = Node::demo(dir.path());
    let token = node
        .printed_after("API token of `worker`:")
        .expect("a token");
    let count = || {
        let (_, list) = get(
            &client(),
            &node.url("/api/v1/cases?limit=200"),
            Some(&token),
        )
        .unwrap();
        list["cases"].as_array().unwrap().len()
    };
    let before = count();
    let mut worker = Visitor::new(&node);
    worker.sign_in("worker", &node.demo_password("worker"));
    let (status, form, _) = worker.get(&format!("/cases/new?item={RELIEF}"));
    assert_eq!(status, 200);
    let csrf = hidden(&form, "csrf");
    let form_id = hidden(&form, "form_id");
    let base = |overrides: &[(&'static str, &'static str)]| {
        let mut fields: Vec<(&str, String)> = vec![
            ("csrf", csrf.clone()),
            ("form_id", form_id.clone()),
            ("item", RELIEF.to_string()),
            ("applicant_type", "natural_person".into()),
            ("name", "张三".into()),
            ("id_number", "11010519491231002X".into()),
            ("phone", "13800138000".into()),
        ];
        for (k, v) in overrides {
            fields.retain(|(name, _)| name != k);
            fields.push((k, v.to_string()));
        }
        fields
    };
    let send = |worker: &mut Visitor, fields: Vec<(&str, String)>| {
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        worker.post("/cases", &pairs)
    };
    for (overrides, says) in [
        (
            vec![("id_number", "110105194912310021")],
            "居民身份证号码有误",
        ),
        (vec![("name", "  ")], "请填写申请人姓名"),
        (
            vec![
                ("applicant_type", "legal_person"),
                ("credit_code", "91440300MA5FXXXX0X"),
                ("contact_name", "赵六"),
            ],
            "统一社会信用代码有误",
        ),
        (vec![("phone", "12")], "联系电话有误"),
    ] {
        let (status, page, _) = send(&mut worker, base(&overrides));
        assert_eq!(status, 422, "{overrides:?}");
        assert!(page.contains(says), "{overrides:?}: {says}");
        // What was typed stays in the form.
        assert!(page.contains("13800138000") || overrides.iter().any(|(k, _)| *k == "phone"));
    }
    let (status, page, _) = send(
        &mut worker,
        base(&[("item", "00000000000000000000000000000000")]),
    );
    assert_eq!(status, 422);
    assert!(page.contains("没有该事项"));
    assert_eq!(count(), before, "nothing stored");

    // The same form sent twice makes one case.
    let (status, _, first) = send(&mut worker, base(&[]));
    assert_eq!(status, 303);
    let (status, _, second) = send(&mut worker, base(&[]));
    assert_eq!(status, 303);
    assert_eq!(first, second);
    assert!(first.unwrap().starts_with("/notices/"), "the receipt first");
    assert_eq!(count(), before + 1);

    // Without the session's CSRF token nothing is created.
    let (status, _, _) = send(
        &mut worker,
        base(&[("csrf", "forged"), ("form_id", "other")]),
    );
    assert_eq!(status, 403);
    assert_eq!(count(), before + 1);
}

#[test]
fn the_work_list_shows_each_view_as_the_api_counts_it() {
    let dir = temp_dir();
    let node = Node::demo(dir.path());
    let token = node
        .printed_after("API token of `worker`:")
        .expect("a token");
    let api_count = |query: &str| {
        let (status, list) = get(
            &client(),
            &node.url(&format!("/api/v1/cases?limit=50&{query}")),
            Some(&token),
        )
        .unwrap();
        assert_eq!(status, 200, "{list}");
        list["cases"].as_array().unwrap().len()
    };
    let mut anonymous = Visitor::new(&node);
    assert_eq!(anonymous.get("/worklist").0, 303);
    let mut worker = Visitor::new(&node);
    worker.sign_in("worker", &node.demo_password("worker"));
    let mut seen_any = false;
    for (view, query) in [
        ("awaiting", "status=awaiting_supplement"),
        ("due_soon", "status=accepted&level=yellow"),
        ("overdue", "status=accepted&level=red"),
        ("breach", "status=accepted&level=legal_breach"),
    ] {
        let (status, page, _) = worker.get(&format!("/worklist?view={view}"));
        assert_eq!(status, 200, "{view}");
        let rows = page.matches("class=\"case-link\"").count();
        assert_eq!(rows, api_count(query), "{view}");
        seen_any |= rows > 0;
        assert!(page.contains("aria-current=\"page\""));
    }
    assert!(seen_any, "the demo has cases to show");
    // An unknown view falls back to today's; a junk cursor is a clear 4xx, not a crash.
    assert_eq!(worker.get("/worklist?view=nonsense").0, 200);
    let (status, _, _) = worker.get("/worklist?view=overdue&cursor=%22junk");
    assert_eq!(status, 400);
}

#[test]
fn a_correction_is_a_new_notice_and_the_old_one_stays_as_issued() {
    let dir = temp_dir();
    let node = Node::demo(dir.path());
    let mut worker = Visitor::new(&node);
    worker.sign_in("worker", &node.demo_password("worker"));
    let (_, form, _) = worker.get(&format!("/cases/new?item={RELIEF}"));
    let (csrf, form_id) = (hidden(&form, "csrf"), hidden(&form, "form_id"));
    let (status, _, case) = worker.post(
        "/cases",
        &[
            ("csrf", &csrf),
            ("form_id", &form_id),
            ("item", RELIEF),
            ("applicant_type", "natural_person"),
            ("name", "张三"),
            ("id_number", "11010519491231002X"),
            ("phone", "13800138000"),
        ],
    );
    assert_eq!(status, 303);
    let old = case
        .unwrap()
        .strip_prefix("/notices/")
        .expect("the notice first")
        .to_string();
    let (_, old_page, _) = worker.get(&format!("/notices/{old}"));
    let old_qr = old_page
        .split("id=\"qr-text\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_string();
    // Without the CSRF token: refused, no new notice.
    let (status, _, _) = worker.post(&format!("/notices/{old}/correct"), &[("csrf", "x")]);
    assert_eq!(status, 403);
    // A correction says why, and the worker confirms the old notice is void.
    for fields in [
        vec![("csrf", csrf.as_str())],
        vec![("csrf", csrf.as_str()), ("reason", "申请人姓名有误")],
        vec![("csrf", csrf.as_str()), ("confirm", "yes")],
    ] {
        let (status, page, _) = worker.post(&format!("/notices/{old}/correct"), &fields);
        assert_eq!(status, 422, "{fields:?}");
        assert!(page.contains("更正理由"), "{page}");
    }
    let correct = [
        ("csrf", csrf.as_str()),
        ("reason", "申请人姓名有误"),
        ("confirm", "yes"),
    ];
    let (status, _, new) = worker.post(&format!("/notices/{old}/correct"), &correct);
    assert_eq!(status, 303);
    let new = new.unwrap();
    assert_ne!(new, format!("/notices/{old}"));
    let (_, new_page, _) = worker.get(&new);
    assert!(new_page.contains(&format!("更正并取代 {old}")));
    assert!(new_page.contains("申请人姓名有误"), "the reason is printed");
    let (_, old_again, _) = worker.get(&format!("/notices/{old}"));
    assert!(old_again.contains("已被更正"));
    // Only the newest notice of a line is corrected.
    let (status, again, _) = worker.post(&format!("/notices/{old}/correct"), &correct);
    assert_eq!(status, 409);
    assert!(again.contains("已由"));
    // The old notice is unchanged: its seal still verifies, and /verify says it was
    // corrected and shows what was sealed.
    let (_, verdict, _) = worker.get(&format!("/verify?code={}", percent(&old_qr)));
    assert!(verdict.contains("id=\"verdict-title\">有效"), "{verdict}");
    assert!(verdict.contains("id=\"verdict-superseded\""));
    assert!(verdict.contains("110105********002X") && verdict.contains("一次性告知书"));
}

#[test]
fn disabling_an_account_ends_its_sessions_at_once() {
    let dir = temp_dir();
    let node = Node::demo(dir.path());
    let mut worker = Visitor::new(&node);
    worker.sign_in("worker", &node.demo_password("worker"));
    assert_eq!(worker.get("/worklist").0, 200);
    yizhan_tests::run_ok(&[
        "user",
        "disable",
        "worker",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    let (status, _, location) = worker.get("/worklist");
    assert_eq!(status, 303, "the session ended");
    assert!(location.unwrap().starts_with("/signin"));
    let (status, _, _) = Visitor::new(&node).sign_in("worker", &node.demo_password("worker"));
    assert_eq!(status, 401, "a disabled account cannot sign in");

    // A new password ends the sessions opened with the old one.
    let mut lead = Visitor::new(&node);
    lead.sign_in("lead", &node.demo_password("lead"));
    assert_eq!(lead.get("/worklist").0, 200);
    let out = yizhan_tests::run_ok(&[
        "user",
        "passwd",
        "lead",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    let new_password = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("new password of lead: "))
        .expect("passwd prints the new password")
        .trim()
        .to_string();
    assert_eq!(lead.get("/worklist").0, 303, "the old session ended");
    let (status, _, _) = Visitor::new(&node).sign_in("lead", &new_password);
    assert_eq!(status, 303, "the new password works: {out}");
}

#[test]
fn the_admin_status_page_shows_the_node_and_the_nodes_on_the_lan() {
    let (dir_a, dir_b) = (temp_dir(), temp_dir());
    let a = Node::demo(dir_a.path());
    let b = Node::demo(dir_b.path());
    let b_token = b.printed_after("API token of `worker`:").expect("a token");
    let (_, b_info) = get(&client(), &b.url("/api/v1/node"), Some(&b_token)).unwrap();
    let b_id = b_info["node_id"].as_str().expect("a node id").to_string();
    let mut worker = Visitor::new(&a);
    worker.sign_in("worker", &a.demo_password("worker"));
    assert_eq!(worker.get("/admin/status").0, 403);
    let mut admin = Visitor::new(&a);
    admin.sign_in("admin", &a.demo_password("admin"));
    let (status, page, _) = admin.get("/admin/status");
    assert_eq!(status, 200);
    assert!(page.contains("节点状态") && page.contains("数据大小"));
    // Both demos listen on loopback, so they advertise there (mDNS) and find each other.
    yizhan_tests::wait_for(
        "node B on node A's status page",
        Duration::from_secs(20),
        || {
            let (_, page, _) = admin.get("/admin/status");
            page.contains(&b_id).then_some(())
        },
    );
}

#[test]
fn follow_up_actions_go_through_the_state_machine_with_clear_refusals() {
    let dir = temp_dir();
    let node = Node::demo(dir.path());
    let mut worker = Visitor::new(&node);
    worker.sign_in("worker", &node.demo_password("worker"));
    let (case, csrf) = accepted_case_of(&node, &mut worker, SUPPORT, "张三");
    let act = format!("{case}/act");
    let status_of = |worker: &mut Visitor| {
        let (_, page, _) = worker.get(&case);
        page.split("id=\"case-status\">")
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap()
            .to_string()
    };
    assert_eq!(status_of(&mut worker), "办理中");

    // Refusals say why and change nothing.
    let (status, page, _) = worker.post(
        &act,
        &[
            ("csrf", &csrf),
            ("kind", "request_extension"),
            ("days", "abc"),
            ("reason", "x"),
        ],
    );
    assert_eq!(status, 422);
    assert!(page.contains("正整数"));
    let (status, page, _) = worker.post(
        &act,
        &[
            ("csrf", &csrf),
            ("kind", "request_extension"),
            ("days", "999"),
            ("reason", "情况复杂"),
        ],
    );
    // The same status and words as the API's (extension_too_long).
    assert_eq!(status, 422);
    assert!(
        page.contains("form-errors") && page.contains("超过法律允许的期限"),
        "{page}"
    );
    // Extending is a lead's act (行政许可法 §42): a worker asks.
    let (status, page, _) = worker.post(
        &act,
        &[
            ("csrf", &csrf),
            ("kind", "extend"),
            ("days", "1"),
            ("reason", "情况复杂"),
        ],
    );
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("form-errors"), "{page}");
    let (status, _, _) = worker.post(
        &act,
        &[
            ("csrf", &csrf),
            ("kind", "complete"),
            ("result", " "),
            ("delivery", "窗口领取"),
        ],
    );
    assert_eq!(status, 422, "a missing result, as the API answers it");
    let (status, _, _) = worker.post(
        &act,
        &[("csrf", "forged"), ("kind", "withdraw"), ("reason", "x")],
    );
    assert_eq!(status, 403);
    assert_eq!(status_of(&mut worker), "办理中");

    // A special procedure stops the clock, then it runs again.
    let (_, page, _) = worker.get(&case);
    let procedure = page
        .split("<select id=\"procedure\" name=\"procedure\"><option>")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("the item has a special procedure that stops the clock")
        .to_string();
    {
        let (status, _, _) = worker.post(
            &act,
            &[
                ("csrf", &csrf),
                ("kind", "suspend"),
                ("procedure", &procedure),
                ("reason", "需公示"),
            ],
        );
        assert_eq!(status, 303);
        assert_eq!(status_of(&mut worker), "特别程序中");
        let (status, _, _) = worker.post(&act, &[("csrf", &csrf), ("kind", "resume")]);
        assert_eq!(status, 303);
        assert_eq!(status_of(&mut worker), "办理中");
    }
    let (status, _, _) = worker.post(
        &act,
        &[
            ("csrf", &csrf),
            ("kind", "complete"),
            ("result", "准予"),
            ("delivery", "窗口领取"),
        ],
    );
    assert_eq!(status, 303);
    assert_eq!(status_of(&mut worker), "已办结");
    // Nothing follows completion.
    let (status, page, _) = worker.post(
        &act,
        &[
            ("csrf", &csrf),
            ("kind", "withdraw"),
            ("reason", "申请人撤回"),
        ],
    );
    assert_eq!(status, 409);
    assert!(page.contains("form-errors"));
}

/// An applicant books a slot on the public page; the counter finds it on that day's list,
/// starts the case from it in one step, and the appointment shows as arrived. The node
/// runs on the real date, so the test books the first slot the page offers and opens
/// the list on that day (today when today still has a slot).
#[test]
fn an_applicant_books_and_the_counter_starts_the_case_from_it() {
    let dir = temp_dir();
    let node = Node::demo(dir.path());
    let browser = Browser::start();

    // The applicant, not signed in: the item, the first free slot, name and phone.
    browser.goto(&node.url("/appointments/book"));
    let items = browser.wait_texts("#bookable-items .book-item", |items| !items.is_empty());
    assert!(items.iter().any(|i| i == "最低生活保障申请"), "{items:?}");
    browser.goto(&node.url(&format!("/appointments/book?item={RELIEF}")));
    browser.wait_text("#book-item-name", |t| t == "最低生活保障申请");
    let first_day = browser.find(".day-label").text();
    browser
        .find("#book-form input[type=radio]:not([disabled])")
        .click();
    browser.find("#name").type_text("赵六");
    browser.find("#phone").type_text("13912345678");
    browser.screenshot("20-appointment-form");
    browser.find("#book-submit").click();
    let code = browser.wait_text("#booking-code", |t| t.len() == 8);
    let day = browser.find("#booking-day").text();
    assert_eq!(
        day, first_day,
        "the first slot offered is on the first day shown"
    );
    assert_eq!(browser.find("#booking-item").text(), "最低生活保障申请");
    assert_eq!(browser.find("#booking-status").text(), "已预约");
    assert!(
        !browser.find_all("#booking-materials tbody tr").is_empty(),
        "what to bring is listed"
    );
    browser.screenshot("21-appointment-booked");
    let day = day.get(..10).unwrap().to_string();

    // The counter: the applicant shows the code; typed in lower case, it opens the list
    // of the booking's day with its line marked.
    browser_sign_in(&browser, &node, "worker");
    browser.find("#nav-appointments").click();
    browser.wait_text("#list-day", |t| !t.is_empty());
    browser.find("#code").type_text(&code.to_lowercase());
    browser.find("#code-find").click();
    browser.wait_text("#appointments tr.found .appointment-name", |t| t == "赵六");
    assert!(browser.find("#list-day").text().starts_with(&day));
    browser.screenshot("25-appointment-found-by-code");
    // A code that cannot be one is a 400, one that books nothing a 404, each saying so.
    let mut counter = Visitor::new(&node);
    counter.sign_in("worker", &node.demo_password("worker"));
    let (status, page, _) = counter.get("/appointments?code=12%2B");
    assert_eq!(status, 400);
    assert!(page.contains("预约码为 8 位字母或数字"), "{page}");
    let unknown = if code == "33333333" {
        "44444444"
    } else {
        "33333333"
    };
    let (status, page, _) = counter.get(&format!("/appointments?code={unknown}"));
    assert_eq!(status, 404);
    assert!(page.contains("没有找到这个预约"), "{page}");
    browser.goto(&node.url(&format!("/appointments?day={day}")));
    let names = browser.wait_texts("#appointments .appointment-name", |n| !n.is_empty());
    assert_eq!(names, vec!["赵六".to_string()]);
    let row = browser.find("#appointments tbody tr").text();
    assert!(
        row.contains("*******5678") && !row.contains("13912345678"),
        "{row}"
    );
    assert!(row.contains("已预约"), "{row}");
    browser.screenshot("22-appointment-list");

    // 受理: the intake form opens with the item and the applicant; the counter adds the
    // identity number and the materials, and the case is made from the appointment.
    browser.find("#appointments .start-case").click();
    browser.wait_text("#from-appointment", |t| !t.is_empty());
    browser.find("#id_number").type_text("11010519491231002X");
    for checkbox in browser.find_all("#materials-form input[type=checkbox]") {
        checkbox.click();
    }
    browser.screenshot("23-case-from-appointment");
    browser.find("#case-submit").click();
    browser.wait_text("#notice-title", |t| t == "受理回执");
    browser.find("#notice-case").click();
    browser.wait_text("#case-status", |t| t == "办理中");
    assert_eq!(browser.find("#case-appointment").text(), code);
    let case_url = browser.current_url();

    // The appointment is arrived, with a link to its case.
    browser.goto(&node.url(&format!("/appointments?day={day}")));
    browser.wait_text("#appointments .appointment-status", |t| t == "已到场受理");
    browser.find("#appointments .case-link").click();
    browser.wait_text("#case-status", |t| t == "办理中");
    assert_eq!(browser.current_url(), case_url);
    browser.screenshot("24-appointment-arrived");
}

/// Receives an application with every material through the form; it is accepted at once.
/// Returns the case's path and the worker's CSRF token.
fn accepted_case(node: &Node, worker: &mut Visitor, name: &str) -> (String, String) {
    accepted_case_of(node, worker, RELIEF, name)
}

/// [`accepted_case`] of another item.
fn accepted_case_of(node: &Node, worker: &mut Visitor, code: &str, name: &str) -> (String, String) {
    let (_, item) = get(&client(), &node.url(&format!("/api/v1/items/{code}")), None).unwrap();
    let (_, form, _) = worker.get(&format!("/cases/new?item={code}"));
    let (csrf, form_id) = (hidden(&form, "csrf"), hidden(&form, "form_id"));
    let mut fields: Vec<(String, String)> = vec![
        ("csrf".into(), csrf.clone()),
        ("form_id".into(), form_id),
        ("item".into(), code.into()),
        ("applicant_type".into(), "natural_person".into()),
        ("name".into(), name.into()),
        ("id_number".into(), "11010519491231002X".into()),
        ("phone".into(), "13800138000".into()),
    ];
    for (n, m) in item["materials"].as_array().unwrap().iter().enumerate() {
        if m["originals"].as_u64().unwrap() > 0 {
            fields.push((format!("m_o_{n}"), "on".into()));
        }
        if m["copies"].as_u64().unwrap() > 0 {
            fields.push((format!("m_c_{n}"), "on".into()));
        }
    }
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (status, _, notice) = worker.post("/cases", &pairs);
    assert_eq!(status, 303);
    // The receipt comes first; it links to its case.
    let (_, receipt, _) = worker.get(&notice.unwrap());
    let case = receipt
        .split("id=\"notice-case\" href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the receipt links to its case")
        .to_string();
    (case, csrf)
}

/// The text of the element with `id` (up to the next tag).
fn text_of(page: &str, id: &str) -> String {
    page.split(&format!("id=\"{id}\">"))
        .nth(1)
        .unwrap_or_else(|| panic!("no #{id}"))
        .split('<')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn applicants_see_their_case_with_the_phone_digits_and_rate_it_once() {
    let dir = temp_dir();
    let node = Node::demo(dir.path());
    let mut worker = Visitor::new(&node);
    worker.sign_in("worker", &node.demo_password("worker"));
    let (case, csrf) = accepted_case_of(&node, &mut worker, RESIDENCE, "张三");
    let (_, page, _) = worker.get(&case);
    let serial = text_of(&page, "serial-no");
    assert!(serial.starts_with(RESIDENCE), "{serial}");

    // The right digits show the status and nothing personal.
    let mut applicant = Visitor::new(&node);
    let (status, page, _) = applicant.post("/status", &[("serial", &serial), ("phone4", "8000")]);
    assert_eq!(status, 200);
    assert_eq!(text_of(&page, "public-status"), "办理中");
    for personal in ["张三", "110105", "13800138000", "worker"] {
        assert!(!page.contains(personal), "{personal} shown");
    }
    // Not completed: no rating form, and a rating without a ticket is refused.
    assert!(!page.contains("rating-form"));
    let (status, _, _) = applicant.post("/status/rate", &[("ticket", "x"), ("level", "5")]);
    assert_eq!(status, 403);

    // Completed: the applicant rates it in the browser, with no level chosen for them.
    let (status, _, _) = worker.post(
        &format!("{case}/act"),
        &[
            ("csrf", &csrf),
            ("kind", "complete"),
            ("result", "准予"),
            ("delivery", "窗口领取"),
        ],
    );
    assert_eq!(status, 303);
    let browser = Browser::start();
    // On a phone on the station's Wi-Fi: nothing wider than the screen.
    browser.set_window_size(390, 844);
    browser.goto(&node.url("/status"));
    browser.find("#serial").type_text(&serial);
    browser.find("#phone4").type_text("8000");
    browser.find("#lookup-submit").click();
    browser.wait_text("#public-status", |t| t == "已办结");
    assert!(browser.find_all("#rating-form input:checked").is_empty());
    assert_eq!(browser.find_all("#rating-form input[name=level]").len(), 5);
    browser.screenshot("40-applicant-rating-form");
    let overflow = browser.eval(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
    );
    assert_eq!(
        overflow.as_i64(),
        Some(0),
        "the page scrolls sideways on a phone"
    );
    // The other pages applicants open on a phone fit too.
    let status_page = browser.current_url();
    for path in [
        "/status".to_string(),
        "/appointments/book".to_string(),
        "/catalog".to_string(),
        format!("/catalog/{RELIEF}"),
    ] {
        browser.goto(&node.url(&path));
        let overflow = browser.eval(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
        );
        assert_eq!(
            overflow.as_i64(),
            Some(0),
            "{path} scrolls sideways on a phone"
        );
    }
    browser.goto(&status_page);
    browser.find("#serial").type_text(&serial);
    browser.find("#phone4").type_text("8000");
    browser.find("#lookup-submit").click();
    browser.wait_text("#public-status", |t| t == "已办结");
    browser.find("#level-2").click();
    browser.find("#rating-comment").type_text("等候时间太长");
    browser.find("#rating-submit").click();
    browser.wait_text("#rated-message", |t| t.contains("整改"));
    // Rated once: the next lookup shows the rating and no form.
    browser.goto(&node.url("/status"));
    browser.find("#serial").type_text(&serial);
    browser.find("#phone4").type_text("8000");
    browser.find("#lookup-submit").click();
    browser.wait_text("#already-rated", |t| t.contains("不满意"));
    assert!(browser.find_all("#rating-form").is_empty());

    // The bad rating opened a rectification, due 15 working days later; a lead closes it.
    let today = yizhan_sync::domain::calendar::Date::from_unix_ms_cst(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64,
    );
    let due = yizhan_sync::domain::calendar::Calendar::china().add_working_days(today, 15, &[]);
    browser.set_window_size(1366, 768);
    browser_sign_in(&browser, &node, "lead");
    // The lead's dashboard tracks it until it is closed.
    browser.goto(&node.url("/dashboard"));
    let open = browser.wait_texts("#dash-rectifications tbody tr", |r| !r.is_empty());
    assert!(
        open.iter()
            .any(|r| r.contains(&serial) && r.contains(&due.to_string())),
        "{open:?}"
    );
    assert!(browser.find("#dash-bad").text().starts_with("1 "));
    browser.goto(&node.url(&case));
    browser.wait_text("#case-rating", |t| {
        t.contains("不满意") && t.contains("等候时间太长")
    });
    let open = browser.find("#rectification").text();
    assert!(open.contains(&due.to_string()), "{open} vs {due}");
    browser
        .find("#rectify-response")
        .type_text("已调整窗口排班，并电话回访申请人");
    browser.find("#rectify-submit").click();
    browser.wait_text("#rectification-closed", |t| t.contains("已调整窗口排班"));
    let timeline = browser.wait_texts("#timeline li", |r| !r.is_empty());
    assert!(
        timeline
            .iter()
            .any(|r| r.contains("好差评") && r.contains("不满意"))
    );
    browser.screenshot("41-rectification-closed");
    browser.goto(&node.url("/dashboard"));
    browser.wait_text("#dash-rectifications-total", |t| t == "0");
    // Closed, the reply shows on the applicant's status page.
    browser.goto(&node.url("/status"));
    browser.find("#serial").type_text(&serial);
    browser.find("#phone4").type_text("8000");
    browser.find("#lookup-submit").click();
    browser.wait_text("#rectification-reply", |t| t.contains("已调整窗口排班"));
    browser.screenshot("44-applicant-sees-the-reply");

    // Guessing: a wrong number and wrong digits get the same answer.
    let (status, miss, _) = applicant.post("/status", &[("serial", &serial), ("phone4", "0000")]);
    assert_eq!(status, 404);
    assert!(!miss.contains("public-status") && !miss.contains("居住证申领"));
    let (status, unknown, _) = applicant.post(
        "/status",
        &[
            ("serial", &format!("{RESIDENCE}20260101990010001")),
            ("phone4", "8000"),
        ],
    );
    assert_eq!(status, 404);
    assert_eq!(
        text_of(&miss, "lookup-error"),
        text_of(&unknown, "lookup-error")
    );
    // Five misses from one address (two above, three here) stop its lookups for a while,
    // even with the right digits.
    for digits in ["0001", "0002", "0003"] {
        let (status, _, _) = applicant.post("/status", &[("serial", &serial), ("phone4", digits)]);
        assert_eq!(status, 404);
    }
    let (status, page, _) = applicant.post("/status", &[("serial", &serial), ("phone4", "8000")]);
    assert_eq!(status, 429);
    assert!(!page.contains("public-status"));
    // Malformed input is a clear 4xx, never a 5xx.
    let mut other = Visitor::new(&node);
    let (status, _, _) = other.post("/status/rate", &[("ticket", "x"), ("level", "9")]);
    assert_eq!(status, 422);
}

/// The CSV's records after its byte-order mark (fields here hold no quoted line breaks).
fn csv_records(body: &str) -> Vec<Vec<String>> {
    let body = body
        .strip_prefix('\u{feff}')
        .expect("CSV starts with a BOM");
    body.split("\r\n")
        .filter(|line| !line.is_empty())
        .map(|line| line.split(',').map(str::to_string).collect())
        .collect()
}

/// GET with the cookies of `visitor`: status, headers and the raw body.
fn download(visitor: &Visitor, path: &str) -> (u16, ureq::http::HeaderMap, Vec<u8>) {
    let mut response = visitor
        .http
        .get(&format!("{}{path}", visitor.base))
        .header("Cookie", &visitor.cookie_header())
        .call()
        .unwrap();
    let headers = response.headers().clone();
    let body = response.body_mut().read_to_vec().unwrap();
    (response.status().as_u16(), headers, body)
}

#[test]
fn the_dashboard_is_for_leads_and_admins_and_exports_its_month() {
    let dir = temp_dir();
    let node = Node::demo(dir.path());
    let paths = [
        "/dashboard",
        "/dashboard/cases.csv",
        "/dashboard/cases.xlsx",
        "/dashboard/monthly.csv",
        "/dashboard/monthly.xlsx",
        "/dashboard/open.csv",
        "/dashboard/open.xlsx",
        "/dashboard/overdue.csv",
        "/dashboard/overdue.xlsx",
    ];
    let mut anonymous = Visitor::new(&node);
    for path in paths {
        let (status, _, location) = anonymous.get(path);
        assert_eq!(status, 303, "{path}");
        assert!(location.unwrap().starts_with("/signin?next="), "{path}");
    }
    let mut worker = Visitor::new(&node);
    worker.sign_in("worker", &node.demo_password("worker"));
    for path in paths {
        let (status, page, _) = worker.get(path);
        assert_eq!(status, 403, "{path}");
        assert!(page.contains("看板只对现场负责人和管理员开放"), "{path}");
    }
    assert!(!worker.get("/worklist").1.contains("nav-dashboard"));

    let mut lead = Visitor::new(&node);
    lead.sign_in("lead", &node.demo_password("lead"));
    assert!(lead.get("/worklist").1.contains("id=\"nav-dashboard\""));
    let (status, page, _) = lead.get("/dashboard");
    assert_eq!(status, 200);
    assert_eq!(page.matches("role=\"img\"").count(), 3, "three charts");
    assert!(!page.contains("<script"));
    let month = hidden(&page, "month");
    assert_eq!(month.len(), 7, "this month, YYYY-MM: {month}");
    for bad in ["2026-13", "2026-3", "junk", "2026-03-01", "%E4%BB%8A"] {
        for path in [
            "/dashboard",
            "/dashboard/cases.csv",
            "/dashboard/monthly.xlsx",
        ] {
            let (status, page, _) = lead.get(&format!("{path}?month={bad}"));
            assert_eq!(status, 400, "{path}?month={bad}");
            assert!(page.contains("例如 2026-03"), "{page}");
        }
    }
    let mut admin = Visitor::new(&node);
    admin.sign_in("admin", &node.demo_password("admin"));
    assert_eq!(admin.get("/dashboard?month=2025-01").0, 200);

    // The month's case list: every case the API finds received in the month, once.
    let token = node
        .printed_after("API token of `worker`:")
        .expect("a token");
    let (status, headers, body) = download(&lead, &format!("/dashboard/cases.csv?month={month}"));
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        headers["content-disposition"],
        format!("attachment; filename=\"yizhan-cases-{month}.csv\"").as_str()
    );
    let records = csv_records(&String::from_utf8(body).unwrap());
    assert_eq!(records[0][0], "办件编号");
    let (year, number) = month.split_once('-').unwrap();
    let (year, number): (u32, u32) = (year.parse().unwrap(), number.parse().unwrap());
    let last_day = match number {
        2 if year % 4 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    let (status, listed) = get(
        &client(),
        &node.url(&format!(
            "/api/v1/cases?limit=200&from={month}-01&to={month}-{last_day}"
        )),
        Some(&token),
    )
    .unwrap();
    assert_eq!(status, 200, "{listed}");
    assert_eq!(
        records.len() - 1,
        listed["cases"].as_array().unwrap().len(),
        "one row per case received in {month}"
    );
    // The last twelve months hold every demo case.
    let (_, all) = get(
        &client(),
        &node.url("/api/v1/cases?limit=200"),
        Some(&token),
    )
    .unwrap();
    let (status, _, body) = download(&lead, &format!("/dashboard/monthly.csv?month={month}"));
    assert_eq!(status, 200);
    let records = csv_records(&String::from_utf8(body).unwrap());
    assert_eq!(records.len(), 13);
    assert_eq!(records[12][0], month);
    let received: usize = records[1..]
        .iter()
        .map(|r| r[1].parse::<usize>().unwrap())
        .sum();
    assert_eq!(received, all["cases"].as_array().unwrap().len());
    // What is open today, and what of it is overdue: every open case the API lists, once,
    // soonest deadline first; the overdue ones are those past their committed date.
    let (_, open) = get(
        &client(),
        &node.url("/api/v1/cases?open=true&limit=200"),
        Some(&token),
    )
    .unwrap();
    let open = open["cases"].as_array().unwrap();
    let (status, headers, body) = download(&lead, "/dashboard/open.csv");
    assert_eq!(status, 200);
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .contains("yizhan-open-")
    );
    let records = csv_records(&String::from_utf8(body).unwrap());
    assert_eq!(records.len() - 1, open.len(), "one row per open case");
    let due_column = records[0].iter().position(|h| h == "承诺办结日期").unwrap();
    let dues: Vec<&str> = records[1..]
        .iter()
        .map(|r| r[due_column].as_str())
        .filter(|d| !d.is_empty())
        .collect();
    assert!(dues.windows(2).all(|w| w[0] <= w[1]), "{dues:?}");
    let overdue = open
        .iter()
        .filter(|c| matches!(c["warning_level"].as_str(), Some("red" | "legal_breach")))
        .count();
    let (_, _, body) = download(&lead, "/dashboard/overdue.csv");
    let records = csv_records(&String::from_utf8(body).unwrap());
    assert_eq!(records.len() - 1, overdue, "one row per overdue case");
    assert!(overdue > 0, "the demo has overdue cases");
    for stem in ["cases", "monthly"] {
        let (status, headers, body) =
            download(&lead, &format!("/dashboard/{stem}.xlsx?month={month}"));
        assert_eq!(status, 200);
        assert_eq!(
            headers["content-type"],
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        );
        assert!(
            headers["content-disposition"]
                .to_str()
                .unwrap()
                .contains(&format!("yizhan-{stem}-{month}.xlsx"))
        );
        assert!(body.starts_with(b"PK"), "an .xlsx is a zip file");
    }
    for stem in ["open", "overdue"] {
        let (status, headers, body) = download(&lead, &format!("/dashboard/{stem}.xlsx"));
        assert_eq!(status, 200);
        assert!(
            headers["content-disposition"]
                .to_str()
                .unwrap()
                .contains(&format!("yizhan-{stem}-")),
            "named by today"
        );
        assert!(body.starts_with(b"PK"), "an .xlsx is a zip file");
    }
}

#[test]
fn a_lead_opens_the_dashboard_sees_counts_and_charts_and_gets_the_csv() {
    let dir = temp_dir();
    let node = Node::demo(dir.path());
    let browser = Browser::start();
    browser_sign_in(&browser, &node, "lead");
    browser.find("#nav-dashboard").click();
    let total = browser.wait_text("#dash-open-total", |t| !t.is_empty());
    let by_status: u64 = browser
        .find_all("#dash-open tbody td.num")
        .iter()
        .map(|cell| cell.text().parse::<u64>().unwrap())
        .sum();
    assert!(by_status > 0, "the demo has open cases");
    assert_eq!(total, by_status.to_string());
    assert_eq!(browser.find_all("svg[role=img]").len(), 3);
    assert_eq!(
        browser.find_all("#chart-levels rect").len(),
        4 + 3,
        "4 bars, 3 patterns"
    );
    assert_eq!(browser.find_all("#chart-satisfaction g.bar").len(), 5);
    assert!(
        !browser.find_all("#dash-overdue .case-link").is_empty(),
        "the demo has overdue cases"
    );
    browser.screenshot("20-dashboard");

    // The CSV link, fetched with the browser's own session.
    let href = browser.find("#export-cases-csv").attribute("href");
    assert!(href.contains("/dashboard/cases.csv?month="), "{href}");
    let url = if href.starts_with("http") {
        href
    } else {
        node.url(&href)
    };
    let mut response = client()
        .get(&url)
        .header(
            "Cookie",
            &format!("yz_session={}", browser.cookie("yz_session")),
        )
        .call()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body = response.body_mut().read_to_string().unwrap();
    assert!(body.starts_with("\u{feff}办件编号,"), "{body}");
    // What is open and what is overdue, in both formats, from the same list of exports.
    for (id, path) in [
        ("#export-open-csv", "/dashboard/open.csv"),
        ("#export-open-xlsx", "/dashboard/open.xlsx"),
        ("#export-overdue-csv", "/dashboard/overdue.csv"),
        ("#export-overdue-xlsx", "/dashboard/overdue.xlsx"),
    ] {
        assert!(browser.find(id).attribute("href").ends_with(path), "{id}");
    }

    // Another month, through the form's links.
    let prev = browser.find("#prev-month").attribute("href");
    let prev = prev.rsplit('=').next().unwrap().to_string();
    browser.find("#prev-month").click();
    // The previous month's heading: the page before the click has the same heading, with
    // its own month.
    browser.wait_text("#dash-period h2", |t| t.contains(&prev));
    assert!(browser.current_url().contains("month="));
}

/// Suspend, resume, extend and complete in the browser, each with its reason on the
/// timeline and its effect on the time limits; and a withdrawal at the applicant's request.
#[test]
fn follow_up_actions_in_the_browser_show_on_the_timeline_and_the_limits() {
    let dir = temp_dir();
    let node = Node::demo(dir.path());
    let mut worker = Visitor::new(&node);
    worker.sign_in("worker", &node.demo_password("worker"));
    let (case, _) = accepted_case(&node, &mut worker, "赵六");
    let (withdrawn, _) = accepted_case(&node, &mut worker, "钱七");
    let browser = Browser::start();
    browser_sign_in(&browser, &node, "worker");
    browser.goto(&node.url(&case));
    browser.wait_text("#case-status", |t| t == "办理中");
    let committed = browser.find("#committed-due").text();
    let legal = browser.find("#legal-due").text();
    // The page names the calendar the deadlines count on (issue 13, point 13).
    let calendar = browser.find("#limit-calendar").text();
    assert!(
        calendar.starts_with("按工作日历") && calendar.contains("cn-mainland:2026."),
        "{calendar}"
    );
    assert!(
        browser
            .find("#case-delegated")
            .text()
            .contains("示范区民政局")
    );

    // 特别程序: the clock stops from today, and the page says so.
    browser.find("#procedure option").click();
    browser.find("#suspend-reason").type_text("入户调查后公示");
    browser.find("#suspend-submit").click();
    // The applicant is told in writing (特别程序告知书), and the case page is a click away.
    browser.wait_text("#notice-title", |t| t == "特别程序告知书");
    assert!(browser.find("#notice-procedure").text().contains("公示"));
    browser.find("#notice-case").click();
    browser.wait_text("#case-status", |t| t == "特别程序中");
    assert!(browser.find("#limit-notes").text().contains("计时暂停自"));
    browser.find("#resume-submit").click();
    browser.wait_text("#case-status", |t| t == "办理中");

    // 延期: the worker asks; a refusal (too long) says why and changes nothing.
    browser.find("#extend-days").type_text("99");
    browser.find("#extend-reason").type_text("情况复杂");
    browser.find("#extend-submit").click();
    browser.wait_text("#form-errors", |t| t.contains("超过法律允许的期限"));
    assert_eq!(browser.find("#committed-due").text(), committed);
    browser.find("#extend-days").clear();
    browser.find("#extend-days").type_text("5");
    browser
        .find("#extend-reason")
        .type_text("需补充核对家庭经济状况");
    browser.find("#extend-submit").click();
    browser.wait_text("#extension-request-days", |t| t == "5");
    assert_eq!(browser.find("#committed-due").text(), committed);
    // The lead approves it (行政许可法 §42): both deadlines move.
    browser_sign_in(&browser, &node, "lead");
    browser.goto(&node.url(&case));
    browser.find("#approve-extension-submit").click();
    // 延期通知书 with the new dates and the reason.
    browser.wait_text("#notice-title", |t| t == "延期通知书");
    assert_eq!(
        browser.find("#notice-extension-reason").text(),
        "需补充核对家庭经济状况"
    );
    browser.find("#notice-case").click();
    browser.wait_text("#limit-notes", |t| t.contains("延长工作日： 5"));
    let (committed_after, legal_after) = (
        browser.find("#committed-due").text(),
        browser.find("#legal-due").text(),
    );
    assert!(committed_after > committed && legal_after > legal);

    // 代为受理: the district bureau decides. The case goes to it, the station signs for it
    // on its behalf and enters its decision, then completes the case.
    browser_sign_in(&browser, &node, "worker");
    browser.goto(&node.url(&case));
    browser.find("#transfer-target option[value=dept]").click();
    // The department the item is accepted for is filled in already.
    assert_eq!(
        browser.find("#transfer-dept").attribute("value"),
        "示范区民政局"
    );
    browser.find("#transfer-reason").type_text("由区民政局审批");
    browser.find("#transfer-submit").click();
    browser.wait_text("#case-holder", |t| t.contains("示范区民政局"));
    browser.find("#sign-for-submit").click();
    // "登记签收", not "签收": the page before the submit says 尚未签收, and a wait that
    // matched it let the next click land on a page being replaced (seen in CI).
    browser.wait_text("#signed-state", |t| t.contains("登记签收"));
    browser.find("#decide-yes").click();
    browser.find("#decide-submit").click();
    browser.wait_text("#case-status", |t| t == "已决定");
    browser
        .find("#complete-result")
        .type_text("准予享受最低生活保障");
    browser.find("#complete-delivery").type_text("窗口领取");
    browser.find("#complete-submit").click();
    browser.wait_text("#case-status", |t| t == "已办结");
    // The limits stay on the page, counted up to the day it was completed.
    assert_eq!(browser.find("#committed-due").text(), committed_after);
    let timeline = browser.wait_texts("#timeline li", |r| r.len() >= 5);
    for (what, written) in [
        ("受理", RELIEF),
        ("特别程序开始", "入户调查后公示"),
        ("特别程序结束", ""),
        ("申请延期", "需补充核对家庭经济状况"),
        ("延期", "需补充核对家庭经济状况"),
        ("作出决定", "示范区民政局"),
        ("办结", "窗口领取"),
    ] {
        assert!(
            timeline.iter().any(|r| r.contains(what)
                && r.contains(written)
                && r.contains("worker")
                || r.contains(what) && r.contains(written) && r.contains("lead")),
            "{what} {written}: {timeline:?}"
        );
    }
    browser.screenshot("42-case-timeline");

    // 撤回 at the applicant's request.
    browser.goto(&node.url(&withdrawn));
    browser
        .find("#withdraw-reason")
        .type_text("申请人书面申请撤回");
    browser.find("#withdraw-submit").click();
    browser.wait_text("#case-status", |t| t == "已撤回");
    let timeline = browser.wait_texts("#timeline li", |r| r.len() >= 2);
    assert!(
        timeline
            .iter()
            .any(|r| r.contains("撤回") && r.contains("申请人书面申请撤回"))
    );
    assert!(browser.find("#limits-none").text().contains("结束"));
}

/// Point 14: Saturday mornings are bookable (the demo opens 09:00-12:00 on Saturdays), and
/// only in the morning; Sundays never.
#[test]
fn saturday_mornings_are_offered_for_booking() {
    let dir = temp_dir();
    let node = Node::demo(dir.path());
    let browser = Browser::start();
    browser.goto(&node.url(&format!("/appointments/book?item={RELIEF}")));
    let days = browser.wait_texts("#book-form .day-label", |d| !d.is_empty());
    // Seven working days always span a weekend; only a holiday stretch closes its Saturday.
    assert!(days.iter().any(|d| d.contains("周六")), "{days:?}");
    assert!(!days.iter().any(|d| d.contains("周日")), "{days:?}");
    let saturday_times: Vec<String> = browser
        .eval(
            "return [...document.querySelectorAll('#book-form details.day')]
               .filter(d => d.querySelector('.day-label').textContent.includes('周六'))
               .flatMap(d => [...d.querySelectorAll('.slot-time')].map(s => s.textContent.trim()));",
        )
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect();
    assert!(!saturday_times.is_empty());
    assert!(
        saturday_times
            .iter()
            .all(|t| t.as_str() >= "09:00" && t.as_str() < "12:00"),
        "{saturday_times:?}"
    );
    browser.screenshot("26-appointment-saturday");
}

/// Point 11: an admin adds an account on the page (its password shown once), changes its
/// role and counter, resets its password and disables it; the last admin stays one, and a
/// form the page never sends is a clear 400.
#[test]
fn an_admin_manages_accounts_on_the_page() {
    let dir = temp_dir();
    let node = Node::demo(dir.path());
    let browser = Browser::start();
    browser_sign_in(&browser, &node, "admin");
    browser.goto(&node.url("/admin/users"));
    browser.find("#new-username").type_text("zhouqi");
    browser.find("#new-display-name").type_text("周七");
    browser.find("#new-counter").type_text("3号窗口");
    browser.find("#add-user-submit").click();
    let first = browser.wait_text("#new-password", |t| t.len() >= 8);
    assert!(browser.find("#users-notice").text().contains("zhouqi"));
    assert!(browser.find("#user-zhouqi").text().contains("周七"));
    browser.screenshot("60-admin-users-added");
    let mut zhouqi = Visitor::new(&node);
    assert_eq!(zhouqi.sign_in("zhouqi", &first).0, 303, "it signs in");
    assert_eq!(zhouqi.get("/dashboard").0, 403, "a worker's");

    // Role and counter; a session open already follows them at once.
    browser.find("#role-zhouqi option[value=lead]").click();
    browser.find("#counter-zhouqi").clear();
    browser.find("#counter-zhouqi").type_text("5号窗口");
    browser.find("#save-zhouqi").click();
    browser.wait_text("#user-zhouqi .role-now", |t| t == "现场负责人 · 5号窗口");
    assert_eq!(zhouqi.get("/dashboard").0, 200, "a lead's now");
    let (_, page, _) = zhouqi.get("/worklist");
    assert!(text_of(&page, "greeting").contains("5号窗口"), "{page}");
    assert!(
        browser.find_all("#new-password").is_empty(),
        "a password shows once"
    );

    // A new password; the old one stops working.
    browser.find("#reset-zhouqi").click();
    let second = browser.wait_text("#new-password", |t| t.len() >= 8);
    assert_ne!(first, second);
    assert_eq!(Visitor::new(&node).sign_in("zhouqi", &first).0, 401);
    assert_eq!(Visitor::new(&node).sign_in("zhouqi", &second).0, 303);

    // Disabled, then it cannot sign in.
    browser.find("#toggle-zhouqi").click();
    browser.wait_text("#user-zhouqi .user-state", |t| t == "停用");
    assert_eq!(Visitor::new(&node).sign_in("zhouqi", &second).0, 401);

    // The demo's only admin cannot be disabled or demoted.
    browser.find("#toggle-admin").click();
    let why = browser.wait_text("#users-error", |t| !t.is_empty());
    assert!(why.contains("最后一个启用的管理员"), "{why}");
    browser.screenshot("61-admin-users-last-admin");
    let mut admin = Visitor::new(&node);
    admin.sign_in("admin", &node.demo_password("admin"));
    let (_, page, _) = admin.get("/admin/users");
    let csrf = hidden(&page, "csrf");
    let (status, page, _) = admin.post(
        "/admin/users/admin/role",
        &[("csrf", &csrf), ("role", "worker"), ("counter", "")],
    );
    assert_eq!(status, 409);
    assert!(page.contains("最后一个启用的管理员"));
    // Bad input: a role that does not exist, a user name out of form, an unknown user.
    let (status, page, _) = admin.post(
        "/admin/users/zhouqi/role",
        &[("csrf", &csrf), ("role", "boss"), ("counter", "")],
    );
    assert_eq!(status, 400);
    assert!(page.contains("表单内容不是本系统页面发出的"), "{page}");
    let (status, page, _) = admin.post(
        "/admin/users",
        &[("csrf", &csrf), ("username", "Zhou Qi"), ("role", "worker")],
    );
    assert_eq!(status, 400);
    assert!(page.contains("不符合要求"), "{page}");
    let (status, _, _) = admin.post(
        "/admin/users/nobody/state",
        &[("csrf", &csrf), ("disabled", "1")],
    );
    assert_eq!(status, 404);
    // Only admins.
    let mut lead = Visitor::new(&node);
    lead.sign_in("lead", &node.demo_password("lead"));
    let csrf = lead.session_csrf();
    let (status, _, _) = lead.post(
        "/admin/users/worker/state",
        &[("csrf", &csrf), ("disabled", "1")],
    );
    assert_eq!(status, 403);
}

/// Point 15: a fresh station shows how to enroll (catalog and status page); enrolled, the
/// status page says in words what it is and that its link is up; when the hall goes away
/// the page says the parent is lost within one sync interval.
#[test]
fn a_station_shows_how_to_enroll_and_notices_a_lost_parent() {
    use yizhan_tests::{enroll_code, init_node, run_ok, set_config};
    let root = temp_dir();
    let (hall_dir, station_dir) = (root.path().join("hall"), root.path().join("station"));
    init_node(&hall_dir, "district", "440304", "福田区行政服务中心");
    let password = init_node(&station_dir, "station", "440304001001", "园岭社区");
    const INTERVAL: Duration = Duration::from_secs(4);
    set_config(
        &station_dir,
        "interval_secs",
        &INTERVAL.as_secs().to_string(),
    );
    let browser = Browser::start();
    let sign_in = |node: &Node| {
        browser.goto(&node.url("/signin"));
        browser.find("#username").type_text("admin");
        browser.find("#password").type_text(&password);
        browser.find("#signin-submit").click();
        browser.wait_text("#greeting", |t| !t.is_empty());
    };

    let station = Node::serve(&station_dir);
    browser.goto(&station.url("/catalog"));
    browser.wait_text("#enroll-steps h2", |t| t == "本站尚未登记到上级大厅");
    sign_in(&station);
    browser.goto(&station.url("/admin/status"));
    let link = browser.wait_text("#parent-link", |t| !t.is_empty());
    assert!(link.contains("本站尚未登记到上级大厅"), "{link}");
    assert!(!browser.find_all("#status-facts").is_empty());
    assert!(browser.find("#status-facts").text().contains("服务站"));
    assert!(
        browser
            .find("#enroll-steps")
            .text()
            .contains("yizhan enroll")
    );
    browser.screenshot("62-status-not-enrolled");
    station.kill9();

    let hall = Node::serve(&hall_dir);
    let code = enroll_code(&hall_dir, "440304001001", "station");
    run_ok(&[
        "enroll",
        &hall.base,
        &code,
        "--data-dir",
        station_dir.to_str().unwrap(),
    ]);
    let station = Node::serve(&station_dir);
    sign_in(&station);
    let status_text = |css: &str| {
        browser.goto(&station.url("/admin/status"));
        browser.find(css).text()
    };
    yizhan_tests::wait_for("the link up", Duration::from_secs(30), || {
        status_text("#parent-link").contains("正常").then_some(())
    });
    let peers = browser.find("#status-peers").text();
    assert!(
        peers.contains("上级") && peers.contains("区（县）大厅"),
        "{peers}"
    );
    assert!(browser.find_all("#enroll-steps").is_empty());
    browser.screenshot("63-status-link-up");

    hall.kill9();
    let lost = std::time::Instant::now();
    let words = yizhan_tests::wait_for("the parent lost", INTERVAL * 3, || {
        let text = status_text("#parent-link");
        text.contains("已断开").then_some(text)
    });
    // One interval until the next session, and a few seconds for this polling page.
    assert!(
        lost.elapsed() < INTERVAL + Duration::from_secs(3),
        "{:?}: {words}",
        lost.elapsed()
    );
    assert!(words.contains("连接不上上级节点"), "{words}");
    browser.screenshot("64-status-parent-lost");
    browser.goto(&station.url("/lang/en?back=/admin/status"));
    let words = browser.wait_text("#parent-link", |t| t.contains("Lost"));
    assert!(words.contains("cannot be reached"), "{words}");
}

/// Point 1: the work list opens on every open case, soonest deadline first, and its one
/// search box finds a case by the tail of its serial number and by the applicant's name.
#[test]
fn the_open_view_and_one_search_box_find_every_case() {
    let dir = temp_dir();
    let node = Node::demo(dir.path());
    let token = node
        .printed_after("API token of `worker`:")
        .expect("a token");
    let (_, open) = get(
        &client(),
        &node.url("/api/v1/cases?open=true&limit=200"),
        Some(&token),
    )
    .unwrap();
    let open = open["cases"].as_array().unwrap().clone();
    assert!(!open.is_empty(), "the demo has open cases");
    let browser = Browser::start();
    browser_sign_in(&browser, &node, "worker");
    assert_eq!(
        browser.find("#view-open").attribute("aria-current"),
        "page",
        "sign-in lands on the open cases"
    );
    let dues = browser.wait_texts("#worklist td.due", |d| !d.is_empty());
    let given: Vec<&String> = dues.iter().filter(|d| !d.is_empty()).collect();
    assert!(given.windows(2).all(|w| w[0] <= w[1]), "{dues:?}");
    browser.screenshot("08-open-cases");
    // A case accepted long ago, by the tail of its serial number and by name.
    let case = open
        .iter()
        .find(|c| c["serial_no"].is_string())
        .expect("an accepted open case");
    let serial = case["serial_no"].as_str().unwrap();
    let tail = &serial[serial.len() - 6..];
    browser.find("#work-q").type_text(tail);
    browser.find("#work-search-submit").click();
    // The results' heading, which names what was looked for: the open cases before the
    // search are listed with the same links and names.
    browser.wait_text("#search-title", |t| t.contains(tail));
    let found = browser.wait_texts("#worklist .case-link", |f| !f.is_empty());
    assert!(found.iter().any(|f| f == serial), "{found:?}");
    let name = case["applicant_name"].as_str().unwrap();
    browser.goto(&node.url("/worklist"));
    browser.find("#work-q").type_text(name);
    browser.find("#work-search-submit").click();
    browser.wait_text("#search-title", |t| t.contains(name));
    let names = browser.wait_texts("#worklist .applicant", |f| !f.is_empty());
    assert!(names.iter().all(|n| n.contains(name)), "{names:?}");
}

/// Point 10: a complete application from the work list to its receipt, once with the mouse
/// and once with the keyboard alone. Typing the applicant's data is not counted; every
/// click, every typed search and every other key is. The counts are printed (and recorded
/// in docs/benchmarks.md) and held to the issue's targets: ≤ 8 interactions, ≤ 30 keys.
#[test]
fn a_complete_application_reaches_its_receipt_in_few_steps() {
    const TAB: &str = "\u{E004}";
    const ENTER: &str = "\u{E007}";
    let dir = temp_dir();
    let node = Node::demo(dir.path());
    let browser = Browser::start();
    browser_sign_in(&browser, &node, "worker");

    // The mouse.
    let mut interactions = 0;
    assert_eq!(
        browser.focused_id(),
        "work-q",
        "the search box has the focus"
    );
    browser.find("#work-q").type_text("dbsq");
    interactions += 1;
    browser.find("#work-search-submit").click();
    interactions += 1;
    browser.wait_text("#item-hits .accept-item", |t| {
        t.contains("最低生活保障申请")
    });
    browser.find("#item-hits .accept-item").click();
    interactions += 1;
    browser.wait_text("#intake-form legend", |t| !t.is_empty());
    assert_eq!(
        browser.focused_id(),
        "name",
        "the first field has the focus"
    );
    browser.find("#name").type_text("钱七");
    browser.find("#id_number").click();
    interactions += 1;
    browser.find("#id_number").type_text("11010519491231002X");
    browser.find("#phone").click();
    interactions += 1;
    browser.find("#phone").type_text("13912345678");
    browser.find("#all-materials").click();
    interactions += 1;
    browser.find("#case-submit-all").click();
    interactions += 1;
    browser.wait_text("#notice-title", |t| t == "受理回执");

    // The keyboard alone.
    browser.goto(&node.url("/worklist"));
    browser.wait_text("#greeting", |t| !t.is_empty());
    let mut keys = 0;
    let mut press = |k: &str| {
        browser.press(k);
        keys += k.chars().count();
    };
    press(&format!("dbsq{ENTER}"));
    browser.wait_text("#item-hits .accept-item", |t| {
        t.contains("最低生活保障申请")
    });
    assert_eq!(browser.focused_id(), "work-q");
    press(&format!("{TAB}{TAB}{ENTER}"));
    browser.wait_text("#intake-form legend", |t| !t.is_empty());
    assert_eq!(browser.focused_id(), "name");
    browser.find(":focus").type_text("孙八");
    press(TAB);
    assert_eq!(browser.focused_id(), "id_number");
    browser.press("11010519491231002X");
    press(TAB);
    assert_eq!(browser.focused_id(), "phone");
    browser.press("13912345678");
    press(TAB);
    assert_eq!(browser.focused_id(), "all-materials");
    press(" ");
    press(TAB);
    assert_eq!(browser.focused_id(), "case-submit-all");
    press(ENTER);
    browser.wait_text("#notice-title", |t| t == "受理回执");
    println!(
        "point 10: work list to receipt: {interactions} interactions with the mouse, \
         {keys} key presses with the keyboard alone (beyond typing the applicant's data)"
    );
    assert!(interactions <= 8, "{interactions} interactions");
    assert!(keys <= 30, "{keys} key presses");
}

/// Points 4 to 7: the main pages of every role in zh-CN show no untranslated key; an
/// unknown address and a missing case are HTML pages in the reader's language, not JSON;
/// the receipt's QR holds a short link to /verify that shows the sealed content, and its
/// query code finds the case on a phone.
#[test]
fn pages_speak_one_language_errors_are_pages_and_the_qr_opens_verify() {
    let dir = temp_dir();
    let node = Node::demo(dir.path());
    let browser = Browser::start();
    let body_text = || {
        browser
            .eval("return document.body.innerText;")
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let walk = |paths: &[String]| {
        for path in paths {
            browser.goto(&node.url(path));
            browser.wait_text("h1", |t| !t.is_empty());
            let text = body_text();
            assert!(
                !text.contains('⟦'),
                "{path} has an untranslated key: {text}"
            );
            let title = browser.eval("return document.title;");
            let title = title.as_str().unwrap_or_default();
            assert!(!title.contains(['⟦', '<']), "{path}: title {title}");
        }
    };
    // The applicants' pages.
    walk(&[
        "/".into(),
        "/catalog".into(),
        format!("/catalog/{RELIEF}"),
        format!("/catalog/{RELIEF}/notice"),
        "/appointments/book".into(),
        format!("/appointments/book?item={RELIEF}"),
        "/status".into(),
        "/verify".into(),
    ]);
    // The counter's.
    browser_sign_in(&browser, &node, "worker");
    let case = browser.find("#worklist .case-link").attribute("href");
    walk(&[
        "/worklist".into(),
        "/worklist?view=overdue".into(),
        "/worklist?q=dbsq".into(),
        format!("/cases/new?item={RELIEF}"),
        case.replace(&node.base, ""),
        "/appointments".into(),
        "/transfers".into(),
    ]);

    // Errors are pages, in the reader's language.
    for path in ["/no-such-page", "/cases/00000000000000000000000000000000"] {
        browser.goto(&node.url(path));
        let title = browser.wait_text("h1", |t| !t.is_empty());
        assert_eq!(title, "未找到", "{path}");
        let kind = browser.eval("return document.contentType;");
        assert_eq!(kind.as_str(), Some("text/html"), "{path}");
    }

    // The receipt's QR is a short link a phone camera opens: /verify?c=…
    browser.goto(&node.url(&format!("/cases/new?item={RELIEF}")));
    browser.wait_text("#intake-form legend", |t| !t.is_empty());
    fill_applicant(&browser, "吴九");
    browser.find("#all-materials").click();
    browser.find("#case-submit-all").click();
    browser.wait_text("#notice-title", |t| t == "受理回执");
    let link = browser.find("#qr-link").text();
    assert!(
        link.starts_with(&format!("{}/verify?c=", node.base)) && link.len() < 160,
        "{link}"
    );
    // Point 7: the short query code on the receipt, typed on a phone in lower case with
    // the phone's last four digits, finds the case.
    let query_code = browser.find("#notice-query-code").text();
    assert_eq!(query_code.chars().count(), 8, "{query_code}");
    browser.goto(&link);
    browser.wait_text("#verdict-title", |t| t == "有效");
    assert!(browser.find("#verdict-content").text().contains("吴九"));
    browser.screenshot("15-verify-from-qr");
    browser.set_window_size(390, 844);
    browser.goto(&node.url("/status"));
    browser
        .find("#serial")
        .type_text(&query_code.to_lowercase());
    browser.find("#phone4").type_text("8000");
    browser.find("#lookup-submit").click();
    browser.wait_text("#public-status", |t| t == "办理中");
    browser.screenshot("43-status-by-query-code");
    browser.set_window_size(1366, 768);

    // The lead's and the admin's pages.
    for (user, paths) in [
        (
            "lead",
            vec!["/dashboard".to_string(), "/worklist".to_string()],
        ),
        (
            "admin",
            vec!["/admin/status".to_string(), "/admin/users".to_string()],
        ),
    ] {
        browser.find("form[action='/signout'] button").click();
        // The sign-in page that signing out leads to: every page before it has an h1 too, and
        // going to /signin before the sign-out's POST left could cancel it.
        browser.wait_text("#signin-submit", |t| !t.is_empty());
        browser_sign_in(&browser, &node, user);
        walk(&paths);
    }
}
