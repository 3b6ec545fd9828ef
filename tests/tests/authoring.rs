//! Catalog authoring with review (issue 15, point 1), over a tree of real processes: a
//! district, a sub-district below it and a station below that, enrolled as technicians
//! do. At the district an item editor drafts a new item and submits it; the editor cannot
//! approve it (four eyes); an item reviewer does, and the item reaches the station, which
//! accepts a case under it. A change is drafted, approved and reaches the station too,
//! while the case keeps the version it was accepted under. The sub-district's editor
//! cannot draft a district-level item, but drafts and reviews one at its own level, which
//! the station below takes too.
//!
//! A new item approved with tomorrow's effective date (生效日期) reaches the station,
//! which refuses applications for it until its clock reaches that day.
//!
//! `yizhan import-catalog` works while the district serves: the file goes to the running
//! node over its control socket, all or nothing, and the new version reaches a station.
//!
//! In Chromium: an item editor drafts a change on the page, a number that does not read
//! comes back beside its field with the typed input kept, the editor answers the §9.2.2
//! checklist and submits; an item reviewer sees the diff and the checklist, approves, and
//! the new version shows in the catalog. An editor authors every element a guide shows
//! on the page (a government-issued material, a situation, a step, a fee) and uploads a
//! blank form, which the station's guide offers once a reviewer approves.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use yizhan_tests::webdriver::Browser;
use yizhan_tests::{
    Node, accepted_case, add_user, admin_token, client, enroll_code, get, init_node, post, put,
    run_ok, sign_in, temp_dir, wait_for,
};

const CATALOG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../node/data/demo-catalog.toml"
);
/// A district-level item of the demo catalog, whose guide the new item starts from.
const TEMPLATE: &str = "11440399990000017K4000599301000";
/// The new item: the same implementing body and level, another basic code.
const NEW_ITEM: &str = "11440399990000017K4000599399000";
/// An item handled at the sub-district's level (the 19th character, 5).
const SUB_ITEM: &str = "11440399990000017K5000599398000";
const WAIT: Duration = Duration::from_secs(60);

const DISTRICT: &str = "440304";
const SUB: &str = "440304001";
const STATION: &str = "440304001001";

const SITUATIONS: [&str; 6] = [
    "standards_suffice",
    "no_legal_basis",
    "law_changed",
    "duplicate_review",
    "checked_before",
    "one_step_enough",
];

fn dir_arg(dir: &Path) -> &str {
    dir.to_str().unwrap()
}

/// A token of `user` on the node in `dir` (stopped).
fn token_of(dir: &Path, user: &str) -> String {
    let out = run_ok(&[
        "token",
        "create",
        "--user",
        user,
        "--data-dir",
        dir_arg(dir),
    ]);
    out.lines()
        .find(|l| l.starts_with("yz_"))
        .expect("a token is printed")
        .to_string()
}

fn checklist() -> Value {
    Value::Array(
        SITUATIONS
            .iter()
            .enumerate()
            .map(|(i, s)| {
                json!({
                    "situation": s,
                    "applies": i == 3,
                    "note": if i == 3 { "合并初审与复审为一个环节" } else { "" },
                })
            })
            .collect(),
    )
}

/// POSTs `body` to `url` and expects `status`; returns the answer.
fn posted(url: &str, token: &str, body: Value, status: u16) -> Value {
    let (got, answer) = post(&client(), url, Some(token), &body).unwrap();
    assert_eq!(got, status, "{url} {body} → {answer}");
    answer
}

/// Drafts `body` (as a draft of `kind`, from `item`) at `base` as `editor`, submits it
/// and returns the draft's URL and revision.
fn draft_and_submit(
    base: &str,
    editor: &str,
    start: Value,
    edit: impl FnOnce(&mut Value),
) -> (String, u64) {
    let drafts = format!("{base}/api/v1/items/drafts");
    let draft = posted(&drafts, editor, start, 201);
    let url = format!("{drafts}/{}", draft["id"]);
    let mut item = draft["item"].clone();
    edit(&mut item);
    let (status, saved) = put(
        &client(),
        &url,
        Some(editor),
        &json!({ "revision": draft["revision"], "item": item, "checklist": checklist() }),
    )
    .unwrap();
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["problems"], json!([]), "{saved}");
    let submitted = posted(
        &format!("{url}/submit"),
        editor,
        json!({ "revision": saved["revision"] }),
        200,
    );
    assert_eq!(submitted["status"], "submitted");
    (url, submitted["revision"].as_u64().unwrap())
}

fn item_at(node: &Node, code: &str) -> Option<Value> {
    let (status, item) = get(&client(), &node.url(&format!("/api/v1/items/{code}")), None).ok()?;
    (status == 200).then_some(item)
}

#[test]
fn a_district_drafts_an_item_a_second_person_approves_it_and_it_reaches_a_station() {
    let root = temp_dir();
    let d = root.path().join(DISTRICT);
    init_node(&d, "district", DISTRICT, "福田区行政服务中心");
    run_ok(&["import-catalog", CATALOG, "--data-dir", dir_arg(&d)]);
    add_user(&d, "bianji", "item_editor");
    add_user(&d, "shenhe", "item_reviewer");
    let editor = token_of(&d, "bianji");
    let reviewer = token_of(&d, "shenhe");
    let district = Node::serve(&d);

    let s = root.path().join(SUB);
    init_node(&s, "subdistrict", SUB, "园岭街道");
    let code = enroll_code(&d, SUB, "subdistrict");
    run_ok(&["enroll", &district.base, &code, "--data-dir", dir_arg(&s)]);
    add_user(&s, "jiedao_bianji", "item_editor");
    add_user(&s, "jiedao_shenhe", "item_reviewer");
    let sub_editor = token_of(&s, "jiedao_bianji");
    let sub_reviewer = token_of(&s, "jiedao_shenhe");
    let sub = Node::serve(&s);

    let a = root.path().join(STATION);
    init_node(&a, "station", STATION, "红荔社区");
    let code = enroll_code(&s, STATION, "station");
    run_ok(&["enroll", &sub.base, &code, "--data-dir", dir_arg(&a)]);
    let station_token = admin_token(&a);
    let station = Node::serve(&a);
    wait_for("the demo catalog at the station", WAIT, || {
        item_at(&station, TEMPLATE)
    });

    // The guide of a published item, in the catalog file's form, from a change draft.
    let template = posted(
        &district.url("/api/v1/items/drafts"),
        &editor,
        json!({ "kind": "change", "item": TEMPLATE }),
        201,
    )["item"]
        .clone();

    // The sub-district drafts no district-level item.
    let refused = posted(
        &sub.url("/api/v1/items/drafts"),
        &sub_editor,
        json!({ "kind": "change", "item": TEMPLATE }),
        403,
    );
    assert_eq!(refused["error"], "item_other_scope", "{refused}");
    let blank = posted(
        &sub.url("/api/v1/items/drafts"),
        &sub_editor,
        json!({ "kind": "new" }),
        201,
    );
    let mut district_item = template.clone();
    district_item["impl_code"] = json!(NEW_ITEM);
    let (status, refused) = put(
        &client(),
        &sub.url(&format!("/api/v1/items/drafts/{}", blank["id"])),
        Some(&sub_editor),
        &json!({ "revision": blank["revision"], "item": district_item, "checklist": [] }),
    )
    .unwrap();
    assert_eq!(
        (status, refused["error"].as_str()),
        (403, Some("authoring_level")),
        "{refused}"
    );
    // An item at the sub-district's own level it drafts and reviews itself, and the
    // station below takes it (every receiver checks the level against the author).
    let (url, revision) =
        draft_and_submit(&sub.base, &sub_editor, json!({ "kind": "new" }), |item| {
            *item = template.clone();
            item["impl_code"] = json!(SUB_ITEM);
            item["name"] = json!("街道层级的新事项");
        });
    posted(
        &format!("{url}/approve"),
        &sub_reviewer,
        json!({ "revision": revision }),
        200,
    );
    let at_station = wait_for("the sub-district's item at the station", WAIT, || {
        item_at(&station, SUB_ITEM)
    });
    assert_eq!(at_station["name"], "街道层级的新事项");

    // A new item at the district: drafted and submitted by the editor …
    let (url, revision) =
        draft_and_submit(&district.base, &editor, json!({ "kind": "new" }), |item| {
            *item = template.clone();
            item["impl_code"] = json!(NEW_ITEM);
            item["name"] = json!("示范新事项（起草审核）");
        });
    // … whom four eyes keep from approving it …
    let refused = posted(
        &format!("{url}/approve"),
        &editor,
        json!({ "revision": revision }),
        403,
    );
    assert_eq!(refused["error"], "authoring_reviewers_only");
    assert!(item_at(&district, NEW_ITEM).is_none());
    // … and approved by the reviewer, which publishes it.
    let approved = posted(
        &format!("{url}/approve"),
        &reviewer,
        json!({ "revision": revision }),
        200,
    );
    assert_eq!(
        (
            approved["status"].as_str(),
            approved["published_version"].as_u64()
        ),
        (Some("published"), Some(1))
    );
    assert_eq!(approved["checklist"][3]["note"], "合并初审与复审为一个环节");

    // Down the tree to the station, which accepts an application for it.
    let at_station = wait_for("the new item at the station", WAIT, || {
        item_at(&station, NEW_ITEM)
    });
    assert_eq!(
        (at_station["name"].as_str(), at_station["version"].as_u64()),
        (Some("示范新事项（起草审核）"), Some(1))
    );
    let case = accepted_case(&station.base, &station_token, NEW_ITEM, "起草审核申请人");

    // A change: the committed limit lengthened, approved, and version 2 reaches the station.
    let committed = template["committed_limit_days"].as_u64().unwrap();
    let (url, revision) = draft_and_submit(
        &district.base,
        &editor,
        json!({ "kind": "change", "item": NEW_ITEM }),
        |item| {
            item["committed_limit_days"] = json!(committed + 1);
        },
    );
    let review = get(&client(), &url, Some(&reviewer)).unwrap().1;
    assert_eq!(
        review["diff"],
        json!([{ "field": "committed_limit_days", "before": committed.to_string(), "after": (committed + 1).to_string() }])
    );
    posted(
        &format!("{url}/approve"),
        &reviewer,
        json!({ "revision": revision }),
        200,
    );
    let changed = wait_for("version 2 at the station", WAIT, || {
        item_at(&station, NEW_ITEM).filter(|i| i["version"] == 2)
    });
    assert_eq!(
        changed["committed_limit_days"].as_u64(),
        Some(committed + 1)
    );
    // The case keeps the version it was accepted under.
    let (status, case) = get(
        &client(),
        &station.url(&format!("/api/v1/cases/{case}")),
        Some(&station_token),
    )
    .unwrap();
    assert_eq!(status, 200, "{case}");
    assert_eq!(
        (
            case["item"]["version"].as_u64(),
            case["item"]["committed_limit_days"].as_u64()
        ),
        (Some(1), Some(committed))
    );
}

#[test]
fn an_editor_drafts_on_the_page_and_a_reviewer_approves_it_in_chromium() {
    let root = temp_dir();
    let d = root.path().join(DISTRICT);
    init_node(&d, "district", DISTRICT, "福田区行政服务中心");
    run_ok(&["import-catalog", CATALOG, "--data-dir", dir_arg(&d)]);
    let editor_password = add_user(&d, "bianji", "item_editor");
    let reviewer_password = add_user(&d, "shenhe", "item_reviewer");
    let worker_password = add_user(&d, "chuangkou", "worker");
    let district = Node::serve(&d);
    let browser = Browser::start();

    // A worker is not offered the drafts.
    sign_in(&browser, &district, "chuangkou", &worker_password);
    assert!(browser.find_all("#nav-drafts").is_empty());
    sign_out(&browser);

    // The editor starts a change of a published item from the drafts list.
    sign_in(&browser, &district, "bianji", &editor_password);
    browser.find("#nav-drafts").click();
    browser.wait_text("#drafts-title", |t| t.contains("事项草稿"));
    browser.find("#draft-from-item").type_text(TEMPLATE);
    browser.find("#draft-from-submit").click();
    browser.wait_text("#draft-status", |t| t == "编辑中");
    let draft_url = browser.current_url();
    browser.find("#f-name").clear();
    browser
        .find("#f-name")
        .type_text("最低生活保障申请（审核后）");
    // A limit that is not a number comes back beside its field, as typed.
    browser.find("#f-committed_limit_days").clear();
    browser.find("#f-committed_limit_days").type_text("十五");
    browser.find("#draft-save").click();
    let refused = browser.wait_text("#err-committed_limit_days", |t| !t.is_empty());
    assert!(refused.contains("整数"), "{refused}");
    assert_eq!(
        browser.find("#f-committed_limit_days").attribute("value"),
        "十五"
    );
    assert_eq!(
        browser.find("#f-name").attribute("value"),
        "最低生活保障申请（审核后）"
    );
    browser.screenshot("authoring-01-refused-field");
    browser.find("#f-committed_limit_days").clear();
    browser.find("#f-committed_limit_days").type_text("25");
    // Submitting without the checklist is refused at the checklist.
    browser.find("#draft-submit").click();
    browser.wait_text("#err-checklist", |t| t.contains("9.2.2"));
    for (i, key) in SITUATIONS.iter().enumerate() {
        let answer = if i == 5 { "yes" } else { "no" };
        browser.find(&format!("#cl-{key}-{answer}")).click();
    }
    browser
        .find("#cl-one_step_enough-note")
        .type_text("初审与复审合并为一个环节");
    browser.find("#draft-submit").click();
    browser.wait_text("#draft-status", |t| t == "待审核");
    // The editor sees the draft but cannot review it.
    assert!(browser.find_all("#draft-approve-submit").is_empty());
    sign_out(&browser);

    // The reviewer reads the diff and the checklist, and approves.
    sign_in(&browser, &district, "shenhe", &reviewer_password);
    browser.find("#nav-drafts").click();
    browser.wait_text("#drafts-list .draft-status", |t| t == "待审核");
    browser.goto(&draft_url);
    let changed: Vec<String> = browser
        .wait_texts("#draft-diff th[scope=row]", |t| !t.is_empty())
        .to_vec();
    assert_eq!(changed, ["承诺办结时限", "事项名称"]);
    assert_eq!(
        browser.find("#draft-diff .diff-name .diff-after").text(),
        "最低生活保障申请（审核后）"
    );
    assert_eq!(
        browser
            .find("#draft-diff .diff-committed_limit_days .diff-before")
            .text(),
        "20"
    );
    let notes: Vec<String> = browser
        .find_all("#draft-checklist .cl-note")
        .iter()
        .map(|e| e.text())
        .collect();
    assert_eq!(notes, ["初审与复审合并为一个环节"]);
    browser.screenshot("authoring-02-review");
    browser.find("#draft-approve-submit").click();
    let published = browser.wait_text("#draft-published", |t| !t.is_empty());
    assert!(published.contains("第 2 版"), "{published}");
    browser.find("#draft-see-item").click();
    browser.wait_text("h1", |t| t.contains("最低生活保障申请（审核后）"));
    browser.screenshot("authoring-03-published");
    let at_district = item_at(&district, TEMPLATE).unwrap();
    assert_eq!(
        (
            at_district["version"].as_u64(),
            at_district["committed_limit_days"].as_u64()
        ),
        (Some(2), Some(25))
    );
}

/// Every element a guide shows, authored on the page in Chromium: an item editor adds a
/// material a government body issues with its issuer, a situation that adds a material
/// and leaves one out, a step with its days and post and a fee line, and uploads a blank
/// form (the page's script sends the file; the form keeps working at a phone's width);
/// a reviewer approves, and the station's guide shows the situation, the issuer, the step
/// and the fee, and offers the blank form, byte for byte.
#[test]
fn an_editor_authors_every_guide_element_and_a_station_offers_the_blank_form_in_chromium() {
    let root = temp_dir();
    let d = root.path().join(DISTRICT);
    init_node(&d, "district", DISTRICT, "福田区行政服务中心");
    run_ok(&["import-catalog", CATALOG, "--data-dir", dir_arg(&d)]);
    let editor_password = add_user(&d, "bianji", "item_editor");
    let reviewer_password = add_user(&d, "shenhe", "item_reviewer");
    let district = Node::serve(&d);
    let a = root.path().join(STATION);
    init_node(&a, "station", STATION, "红荔社区");
    let code = enroll_code(&d, STATION, "station");
    run_ok(&["enroll", &district.base, &code, "--data-dir", dir_arg(&a)]);
    let station = Node::serve(&a);
    wait_for("the demo catalog at the station", WAIT, || {
        item_at(&station, TEMPLATE)
    });
    let pdf = "%PDF-1.4\n% 最低生活保障申请审批表（空表）\n%%EOF\n"
        .as_bytes()
        .to_vec();
    let file = root.path().join("申请审批表（空表）.pdf");
    std::fs::write(&file, &pdf).unwrap();
    let browser = Browser::start();

    sign_in(&browser, &district, "bianji", &editor_password);
    browser.find("#nav-drafts").click();
    browser.wait_text("#drafts-title", |t| t.contains("事项草稿"));
    browser.find("#draft-from-item").type_text(TEMPLATE);
    browser.find("#draft-from-submit").click();
    browser.wait_text("#draft-status", |t| t == "编辑中");
    let draft_url = browser.current_url();

    // A wrong file is refused beside the material, in words; a PDF is taken.
    let wrong = root.path().join("note.txt");
    std::fs::write(&wrong, "not a form").unwrap();
    browser
        .find("#up-m_blank_0")
        .type_text(wrong.to_str().unwrap());
    let refused = browser.wait_text("#uperr-m_blank_0", |t| t.contains("不接受"));
    assert!(refused.contains("文件"), "{refused}");
    assert_eq!(
        browser.find("#drop-m_blank_0").text(),
        "",
        "no file yet, nothing to remove"
    );
    browser
        .find("#up-m_blank_0")
        .type_text(file.to_str().unwrap());
    browser.wait_text("#link-m_blank_0", |t| t == "申请审批表（空表）.pdf");
    assert_eq!(browser.find("#drop-m_blank_0").text(), "从本材料移除");
    assert_eq!(browser.find("#uperr-m_blank_0").text(), "");

    // A material a government body issues, with its issuer, in the first empty row.
    browser.find("#f-m_name_4").type_text("居住证明");
    browser
        .find("#f-m_source_4 option[value=government]")
        .click();
    browser.find("#f-m_issuer_4").type_text("福田区公安分局");
    browser.find("#f-m_form_4 option[value=paper]").click();
    // A second situation: it adds a material and leaves one of the item's out.
    browser.find("#f-s_name_1").type_text("申请人为重度残疾人");
    browser
        .find("#situation-1 input[name=s_not_1][value=\"家庭收入证明\"]")
        .click();
    browser.find("#f-s1m_name_0").type_text("残疾人证");
    // A step with its days and post (the committed limit grows to hold it), a fee line.
    browser.find("#f-committed_limit_days").clear();
    browser.find("#f-committed_limit_days").type_text("25");
    browser
        .find("#f-process")
        .type_text("\u{E007}区民政复核 | 5 | 区民政局复核岗");
    browser
        .find("#f-fees")
        .type_text("证书工本费 | 10元/证 | 《深圳市行政事业性收费目录》");
    for (i, key) in SITUATIONS.iter().enumerate() {
        let answer = if i == 5 { "yes" } else { "no" };
        browser.find(&format!("#cl-{key}-{answer}")).click();
    }
    browser
        .find("#cl-one_step_enough-note")
        .type_text("初审与复审合并为一个环节");
    // At a phone's width the form still fits: no sideways scroll of the page.
    browser.set_window_size(390, 844);
    let overflow = browser.eval(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
    );
    let wide = browser.eval(
        "var w = document.documentElement.clientWidth; return Array.from(document.querySelectorAll('body *')).filter(function (e) { var r = e.getBoundingClientRect(); return r.right > w + 1 && !e.closest('.table-wrap'); }).slice(0, 12).map(function (e) { return e.tagName + '#' + e.id + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right); });",
    );
    assert!(overflow.as_i64().unwrap() <= 0, "{overflow}: {wide}");
    browser.screenshot("authoring-04-form-390px");
    browser.set_window_size(1366, 768);
    browser.find("#draft-submit").click();
    browser.wait_text("#draft-status", |t| t == "待审核");
    sign_out(&browser);

    // The reviewer reads the new elements in the diff and approves.
    sign_in(&browser, &district, "shenhe", &reviewer_password);
    browser.goto(&draft_url);
    let changed: Vec<String> = browser
        .wait_texts("#draft-diff th[scope=row]", |t| !t.is_empty())
        .to_vec();
    for field in ["申请材料", "办理情形", "办理流程", "收费"] {
        assert!(changed.iter().any(|c| c == field), "{field} in {changed:?}");
    }
    let situations = browser
        .find("#draft-diff .diff-situations .diff-after")
        .text();
    assert!(situations.contains("申请人为重度残疾人"), "{situations}");
    // The blank form is there to read before approving.
    let file_link = browser.find("#draft-files a");
    assert_eq!(file_link.text(), "申请审批表（空表）.pdf");
    let before_approval = district.url(&file_link.attribute("href"));
    // Not to anyone without a session: the file is not public before an item names it.
    let mut anonymous = client().get(&before_approval).call().unwrap();
    assert_ne!(anonymous.body_mut().read_to_vec().unwrap(), pdf);
    browser.find("#draft-approve-submit").click();
    browser.wait_text("#draft-published", |t| t.contains("第 2 版"));

    // The station's guide: the situation, the issuer, the step, the fee, the blank form.
    wait_for("version 2 at the station", WAIT, || {
        item_at(&station, TEMPLATE).filter(|i| i["version"] == 2)
    });
    sign_out(&browser);
    browser.goto(&station.url(&format!("/catalog/{TEMPLATE}")));
    browser.wait_text("h1", |t| t.contains("最低生活保障申请"));
    let situations: Vec<String> = browser
        .find_all(".situation h3")
        .iter()
        .map(|e| e.text())
        .collect();
    assert!(
        situations.iter().any(|s| s == "申请人为重度残疾人"),
        "{situations:?}"
    );
    assert!(browser.find("#materials").text().contains("福田区公安分局"));
    let process = browser.find("#process").text();
    assert!(
        process.contains("区民政复核")
            && process.contains("区民政局复核岗")
            && process.contains('5'),
        "{process}"
    );
    assert!(browser.find("#fees").text().contains("证书工本费"));
    let link = browser.find("#materials a.attachment");
    assert_eq!(link.text(), "空表");
    let href = link.attribute("href");
    browser.screenshot("authoring-05-station-guide");
    let mut response = client().get(&station.url(&href)).call().unwrap();
    assert_eq!(response.status().as_u16(), 200, "{href}");
    assert_eq!(response.body_mut().read_to_vec().unwrap(), pdf);
}

fn sign_out(browser: &Browser) {
    browser.find("header form.inline button").click();
    browser.wait_text("#signin-submit", |_| true);
}

/// The demo catalog with `edits` applied to the items they name, written to `to`.
fn catalog_with(to: &Path, edits: &[(&str, u32, &str)]) {
    let mut catalog: toml::Value =
        toml::from_str(&std::fs::read_to_string(CATALOG).unwrap()).unwrap();
    for (code, version, name) in edits {
        let item = catalog["items"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|i| i["impl_code"].as_str() == Some(code))
            .unwrap();
        item["version"] = toml::Value::Integer(i64::from(*version));
        item["name"] = toml::Value::String(name.to_string());
    }
    std::fs::write(to, toml::to_string(&catalog).unwrap()).unwrap();
}

#[test]
fn import_catalog_works_while_the_node_runs() {
    let root = temp_dir();
    let d = root.path().join(DISTRICT);
    init_node(&d, "district", DISTRICT, "福田区行政服务中心");
    run_ok(&["import-catalog", CATALOG, "--data-dir", dir_arg(&d)]);
    let district = Node::serve(&d);
    let a = root.path().join(STATION);
    init_node(&a, "station", STATION, "红荔社区");
    let code = enroll_code(&d, STATION, "station");
    run_ok(&["enroll", &district.base, &code, "--data-dir", dir_arg(&a)]);
    let station = Node::serve(&a);
    wait_for("the demo catalog at the station", WAIT, || {
        item_at(&station, TEMPLATE)
    });

    // A file where one item changes with a new version and another changes but keeps its
    // version: refused as a whole, nothing published.
    const OTHER: &str = "11440399990000017K4000599302000";
    let bad = root.path().join("bad.toml");
    catalog_with(
        &bad,
        &[
            (TEMPLATE, 2, "低保（新版）"),
            (OTHER, 1, "改了名字却没升版本"),
        ],
    );
    let out = yizhan_tests::run(&[
        "import-catalog",
        bad.to_str().unwrap(),
        "--data-dir",
        dir_arg(&d),
    ]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(OTHER) && said.contains("nothing was published"),
        "{said}"
    );
    assert_eq!(item_at(&district, TEMPLATE).unwrap()["version"], 1);

    // A good one is published by the running node and flows down.
    let good = root.path().join("good.toml");
    catalog_with(&good, &[(TEMPLATE, 2, "低保（新版）")]);
    let said = run_ok(&[
        "import-catalog",
        good.to_str().unwrap(),
        "--data-dir",
        dir_arg(&d),
    ]);
    assert!(said.contains("0 new, 1 changed, 24 unchanged"), "{said}");
    assert_eq!(
        item_at(&district, TEMPLATE).unwrap()["name"],
        "低保（新版）"
    );
    wait_for("version 2 at the station", WAIT, || {
        item_at(&station, TEMPLATE).filter(|i| i["version"] == 2)
    });
    // The node kept serving throughout.
    let (status, _) = get(&client(), &district.url("/api/v1/item-categories"), None).unwrap();
    assert_eq!(status, 200);
}

/// Today in China Standard Time, as the nodes count it.
fn today_cst() -> yizhan_sync::domain::calendar::Date {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    yizhan_sync::domain::calendar::Date::from_unix_ms_cst(ms)
}

#[test]
fn a_new_item_is_taken_at_a_station_only_from_its_effective_date() {
    let root = temp_dir();
    let d = root.path().join(DISTRICT);
    init_node(&d, "district", DISTRICT, "福田区行政服务中心");
    run_ok(&["import-catalog", CATALOG, "--data-dir", dir_arg(&d)]);
    add_user(&d, "bianji", "item_editor");
    add_user(&d, "shenhe", "item_reviewer");
    let editor = token_of(&d, "bianji");
    let reviewer = token_of(&d, "shenhe");
    let district = Node::serve(&d);
    let a = root.path().join(STATION);
    init_node(&a, "station", STATION, "红荔社区");
    let code = enroll_code(&d, STATION, "station");
    run_ok(&["enroll", &district.base, &code, "--data-dir", dir_arg(&a)]);
    let station_token = admin_token(&a);
    let station = Node::serve(&a);
    wait_for("the demo catalog at the station", WAIT, || {
        item_at(&station, TEMPLATE)
    });

    let template = posted(
        &district.url("/api/v1/items/drafts"),
        &editor,
        json!({ "kind": "change", "item": TEMPLATE }),
        201,
    )["item"]
        .clone();
    let tomorrow = today_cst().succ().to_string();
    let (url, revision) =
        draft_and_submit(&district.base, &editor, json!({ "kind": "new" }), |item| {
            *item = template.clone();
            item["impl_code"] = json!(NEW_ITEM);
            item["name"] = json!("明日生效的新事项");
            item["effective_date"] = json!(tomorrow);
        });
    posted(
        &format!("{url}/approve"),
        &reviewer,
        json!({ "revision": revision }),
        200,
    );
    let at_station = wait_for("the new item at the station", WAIT, || {
        item_at(&station, NEW_ITEM)
    });
    assert_eq!(at_station["effective_date"], json!(tomorrow));

    // Today the station refuses an application for it, saying from when.
    let body = json!({
        "item": NEW_ITEM,
        "applicant": {"type": "natural_person", "name": "早到的申请人", "id_number": "11010519491231002X", "phone": "13800138000"},
        "materials": [],
    });
    let (status, refused) = post(
        &client(),
        &station.url("/api/v1/cases"),
        Some(&station_token),
        &body,
    )
    .unwrap();
    assert_eq!(
        (status, refused["error"].as_str()),
        (422, Some("item_not_yet_effective")),
        "{refused}"
    );
    assert!(
        refused["message"].as_str().unwrap().contains(&tomorrow),
        "{refused}"
    );

    // Tomorrow (the station's clock moved a day on) it takes one.
    let base = station.base.clone();
    drop(station);
    let station = Node::restart_days_later(&a, &base, 1);
    accepted_case(&station.base, &station_token, NEW_ITEM, "次日的申请人");
}
