//! `/api/v1/items/drafts` in-process: a change drafted, refused by every rule with its
//! code, approved by a second person and published; a new item from blank.

use super::*;
use crate::store::Staff;
use yizhan_sync::domain::draft::SIMPLIFICATION;

async fn token_for(api: &Api, name: &str, role: Role) -> String {
    let user = NewUser {
        username: name.into(),
        display_name: name.into(),
        role,
        counter: String::new(),
        password_hash: "unused".into(),
    };
    api.store.add_user(user, 0).await.unwrap();
    let (token, hash) = generate_token();
    api.store
        .add_token(name.into(), hash, "test".into(), 0)
        .await
        .unwrap();
    token
}

fn checklist() -> Value {
    Value::Array(
        SIMPLIFICATION
            .iter()
            .map(|s| json!({ "situation": s, "applies": false, "note": "" }))
            .collect(),
    )
}

async fn call(
    api: &Api,
    method: Method,
    uri: &str,
    token: &str,
    body: Value,
) -> (StatusCode, Value) {
    let body = (!body.is_null()).then(|| serde_json::to_vec(&body).unwrap());
    let (status, value, _) = api.send(method, uri, Some(token), body).await;
    (status, value)
}

#[tokio::test]
async fn a_change_is_drafted_reviewed_and_published_with_every_refusal_coded() {
    let district = api("district").await;
    let editor = token_for(&district, "editor", Role::ItemEditor).await;
    let reviewer = token_for(&district, "reviewer", Role::ItemReviewer).await;
    let item = demo_catalog()
        .into_iter()
        .find(|i| i.level() == yizhan_sync::domain::codes::HandlingLevel::District)
        .unwrap();
    let code = item.impl_code.to_string();
    let drafts = "/api/v1/items/drafts";

    // Who may start one, and what.
    let table = [
        (
            &district.worker,
            json!({ "kind": "change", "item": code }),
            StatusCode::FORBIDDEN,
            "authoring_editors_only",
        ),
        (
            &reviewer,
            json!({ "kind": "new" }),
            StatusCode::FORBIDDEN,
            "authoring_editors_only",
        ),
        (
            &editor,
            json!({ "kind": "rename" }),
            StatusCode::UNPROCESSABLE_ENTITY,
            "draft_kind",
        ),
        (
            &editor,
            json!({ "kind": "change" }),
            StatusCode::BAD_REQUEST,
            "draft_needs_item",
        ),
        (
            &editor,
            json!({ "kind": "change", "item": "11440399990000017K4000599399000" }),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ];
    for (token, body, status, error) in table {
        let (got, value) = call(&district, Method::POST, drafts, token, body.clone()).await;
        assert_eq!(
            (got, value["error"].as_str()),
            (status, Some(error)),
            "{body}: {value}"
        );
    }
    let (status, draft) = call(
        &district,
        Method::POST,
        drafts,
        &editor,
        json!({ "kind": "change", "item": code }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{draft}");
    assert_eq!(draft["diff"], json!([]));
    let id = draft["id"].as_i64().unwrap();
    let one = format!("{drafts}/{id}");
    let mut body = draft["item"].clone();
    body["name"] = json!(format!("{}（新）", item.name));
    let (status, saved) = call(
        &district,
        Method::PUT,
        &one,
        &editor,
        json!({ "revision": 1, "item": body, "checklist": checklist() }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!(saved["revision"], json!(2));
    assert_eq!(saved["diff"][0]["field"], json!("name"));
    assert_eq!(saved["diff"][0]["before"], json!(item.name));
    assert_eq!(saved["problems"], json!([]));
    // A save over an older revision, an approval before submission.
    let (status, value) = call(
        &district,
        Method::PUT,
        &one,
        &editor,
        json!({ "revision": 1, "item": body, "checklist": checklist() }),
    )
    .await;
    assert_eq!(
        (status, value["error"].as_str()),
        (StatusCode::CONFLICT, Some("draft_edited"))
    );
    let (status, value) = call(
        &district,
        Method::POST,
        &format!("{one}/approve"),
        &reviewer,
        json!({ "revision": 2 }),
    )
    .await;
    assert_eq!(
        (status, value["error"].as_str()),
        (StatusCode::CONFLICT, Some("draft_state"))
    );
    let (status, value) = call(
        &district,
        Method::POST,
        &format!("{one}/submit"),
        &editor,
        json!({ "revision": 2 }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{value}");
    assert_eq!(value["status"], json!("submitted"));
    // Review: not the editor, not an admin, not without a reason, not an old revision.
    let table = [
        (
            &editor,
            "approve",
            json!({ "revision": 2 }),
            StatusCode::FORBIDDEN,
            "authoring_reviewers_only",
        ),
        (
            &district.admin,
            "approve",
            json!({ "revision": 2 }),
            StatusCode::FORBIDDEN,
            "authoring_reviewers_only",
        ),
        (
            &reviewer,
            "approve",
            json!({ "revision": 1 }),
            StatusCode::CONFLICT,
            "draft_edited",
        ),
        (
            &reviewer,
            "reject",
            json!({ "revision": 2, "reason": "" }),
            StatusCode::BAD_REQUEST,
            "draft_reason",
        ),
        (
            &editor,
            "submit",
            json!({ "revision": 2 }),
            StatusCode::CONFLICT,
            "draft_state",
        ),
    ];
    for (token, act, body, status, error) in table {
        let (got, value) = call(
            &district,
            Method::POST,
            &format!("{one}/{act}"),
            token,
            body.clone(),
        )
        .await;
        assert_eq!(
            (got, value["error"].as_str()),
            (status, Some(error)),
            "{act} {body}: {value}"
        );
    }
    assert_eq!(
        district.store.get_item(code.clone()).await.unwrap().version,
        1
    );
    let (status, value) = call(
        &district,
        Method::POST,
        &format!("{one}/approve"),
        &reviewer,
        json!({ "revision": 2 }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{value}");
    assert_eq!(
        (
            value["status"].as_str(),
            value["published_version"].as_u64()
        ),
        (Some("published"), Some(2))
    );
    let (status, published, _) = district
        .send(Method::GET, &format!("/api/v1/items/{code}"), None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (published["version"].as_u64(), published["name"].as_str()),
        (Some(2), Some(format!("{}（新）", item.name).as_str()))
    );
    // Both versions the district holds, the second with what it changed.
    let (status, history, _) = district
        .send(
            Method::GET,
            &format!("/api/v1/items/{code}/versions"),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{history}");
    let versions = history["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2, "{history}");
    let changed: Vec<&str> = versions[1]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(changed, ["effective_date", "name"]);
    assert_eq!(versions[1]["effective_date"], json!("2026-03-02"));
    // The list; a worker reads none of it; a station authors nothing.
    let (status, list) = call(&district, Method::GET, drafts, &reviewer, Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["drafts"][0]["status"], json!("published"));
    let (status, value) = call(&district, Method::GET, &one, &district.worker, Value::Null).await;
    assert_eq!(
        (status, value["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("authoring_editors_only"))
    );
    let station = api("station").await;
    let (status, value) = call(
        &station,
        Method::POST,
        drafts,
        &station.admin,
        json!({ "kind": "new" }),
    )
    .await;
    assert_eq!(
        (status, value["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("authoring_station"))
    );
    // In the OpenAPI document.
    let doc = serde_json::to_value(crate::api::openapi_document()).unwrap();
    for path in [
        drafts,
        "/api/v1/items/drafts/{id}",
        "/api/v1/items/drafts/{id}/submit",
        "/api/v1/items/drafts/{id}/approve",
        "/api/v1/items/drafts/{id}/reject",
    ] {
        assert!(doc["paths"][path].is_object(), "{path}");
    }
}

#[tokio::test]
async fn a_new_item_from_blank_names_its_problems_until_it_is_complete() {
    let district = api("district").await;
    let editor = token_for(&district, "editor", Role::ItemEditor).await;
    let (status, draft) = call(
        &district,
        Method::POST,
        "/api/v1/items/drafts",
        &editor,
        json!({ "kind": "new" }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{draft}");
    assert!(!draft["problems"].as_array().unwrap().is_empty());
    let id = draft["id"].as_i64().unwrap();
    let (status, value) = call(
        &district,
        Method::POST,
        &format!("/api/v1/items/drafts/{id}/submit"),
        &editor,
        json!({ "revision": 1 }),
    )
    .await;
    assert_eq!(
        (status, value["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("draft_unreadable")),
        "{value}"
    );
    // A valid new item with a committed limit above the legal one: the field is named.
    let mut item = serde_json::to_value(demo_catalog().into_iter().next().unwrap()).unwrap();
    let committed = item["committed_limit_days"].clone();
    item["impl_code"] = json!("11440399990000017K4000599399000");
    item["committed_limit_days"] = json!(400);
    let (status, saved) = call(
        &district,
        Method::PUT,
        &format!("/api/v1/items/drafts/{id}"),
        &editor,
        json!({ "revision": 1, "item": item, "checklist": [] }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    let problems = saved["problems"].to_string();
    assert!(problems.contains("committed_limit_days"), "{problems}");
    let (status, value) = call(
        &district,
        Method::POST,
        &format!("/api/v1/items/drafts/{id}/submit"),
        &editor,
        json!({ "revision": 2 }),
    )
    .await;
    assert_eq!(
        (status, value["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_item")),
        "{value}"
    );
    item["committed_limit_days"] = committed;
    let (_, saved) = call(
        &district,
        Method::PUT,
        &format!("/api/v1/items/drafts/{id}"),
        &editor,
        json!({ "revision": 2, "item": item, "checklist": [] }),
    )
    .await;
    let (status, value) = call(
        &district,
        Method::POST,
        &format!("/api/v1/items/drafts/{id}/submit"),
        &editor,
        json!({ "revision": saved["revision"] }),
    )
    .await;
    assert_eq!(
        (status, value["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("draft_checklist")),
        "{value}"
    );
    assert!(
        saved["diff"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["before"] == json!(""))
    );
}

/// The pages in-process: the drafts are linked and open only for whom the engine lets
/// draft or review, a refused form comes back with each problem at its field and the
/// typed input kept, and a refusal of the review is a page in the reader's language.
#[tokio::test]
async fn the_pages_refuse_with_words_at_the_field_and_keep_what_was_typed() {
    let district = api("district").await;
    let password = "correct-horse-battery";
    for (name, role) in [("bianji", Role::ItemEditor), ("chuangkou", Role::Worker)] {
        district
            .store
            .add_user(
                NewUser {
                    username: name.into(),
                    display_name: name.into(),
                    role,
                    counter: String::new(),
                    password_hash: crate::accounts::hash_password(password).unwrap(),
                },
                0,
            )
            .await
            .unwrap();
    }
    let csrf_of = |page: &str| {
        let marker = "name=\"csrf\" value=\"";
        let start = page.find(marker).unwrap() + marker.len();
        page[start..].split('"').next().unwrap().to_string()
    };

    let mut worker = Browser::new(&district.state, "10.0.0.7");
    worker.sign_in("chuangkou", password).await;
    let (_, _, home) = worker.send(Method::GET, "/catalog", None).await;
    assert!(!home.contains("nav-drafts"));
    let (status, _, page) = worker.send(Method::GET, "/catalog/drafts", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("只有事项编辑或管理员可以起草事项"), "{page}");

    let mut editor = Browser::new(&district.state, "10.0.0.8");
    editor.sign_in("bianji", password).await;
    let (status, _, list) = editor.send(Method::GET, "/catalog/drafts", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(list.contains("nav-drafts"));
    let csrf = csrf_of(&list);
    let (status, _, _) = editor
        .send(
            Method::POST,
            "/catalog/drafts",
            Some(format!("csrf={csrf}&kind=new")),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, page) = editor.send(Method::GET, "/catalog/drafts/1", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("id=\"draft-form\""), "{page}");
    // A wrong check character and a limit that is not a number: both at their fields,
    // nothing saved, what was typed kept.
    let form = format!(
        "csrf={csrf}&revision=1&then=save&impl_code=11440399990000017X4000599399000&name=%E6%96%B0%E4%BA%8B%E9%A1%B9&legal_limit_days=30&legal_extension_days=0&committed_limit_days=%E5%8D%81%E4%BA%94&visits=1"
    );
    let (status, _, page) = editor
        .send(Method::POST, "/catalog/drafts/1", Some(form))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("id=\"err-impl_code\""), "{page}");
    assert!(page.contains("校验位不符"), "{page}");
    assert!(page.contains("id=\"err-committed_limit_days\""), "{page}");
    assert!(page.contains("value=\"十五\""), "{page}");
    assert!(page.contains("value=\"新事项\""), "{page}");
    let (draft, _) = district.store.draft(1).await.unwrap();
    assert_eq!(draft.revision, 1);
    // In English, the same refusal in English.
    let (_, _, _) = editor.send(Method::GET, "/lang/en?back=/", None).await;
    let form = format!(
        "csrf={csrf}&revision=1&then=save&impl_code=11440399990000017X4000599399000&legal_limit_days=30&legal_extension_days=0&committed_limit_days=1&visits=1"
    );
    let (_, _, page) = editor
        .send(Method::POST, "/catalog/drafts/1", Some(form))
        .await;
    assert!(page.contains("check character does not match"), "{page}");
    // The editor may not review: the page says so.
    let (status, _, page) = editor
        .send(
            Method::POST,
            "/catalog/drafts/1/review",
            Some(format!("csrf={csrf}&revision=1&decision=approve")),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        page.contains("Only an item reviewer reviews item drafts"),
        "{page}"
    );
}

/// A signed-in page session of a person of `role` at `node`, and its CSRF token.
async fn page_session(node: &Api, name: &str, role: Role, address: &str) -> (Browser, String) {
    let password = "correct-horse-battery";
    node.store
        .add_user(
            NewUser {
                username: name.into(),
                display_name: name.into(),
                role,
                counter: String::new(),
                password_hash: crate::accounts::hash_password(password).unwrap(),
            },
            0,
        )
        .await
        .unwrap();
    let mut browser = Browser::new(&node.state, address);
    browser.sign_in(name, password).await;
    let (_, _, page) = browser.send(Method::GET, "/catalog", None).await;
    let marker = "name=\"csrf\" value=\"";
    let csrf = match page.find(marker) {
        Some(start) => page[start + marker.len()..]
            .split('"')
            .next()
            .unwrap()
            .to_string(),
        None => String::new(),
    };
    (browser, csrf)
}

/// The page's refusal message: the text of its `p.message`.
fn message_of(page: &[u8]) -> String {
    let page = String::from_utf8_lossy(page);
    let start = page.find("class=\"message\"").expect("a message page");
    let text = &page[start..];
    text[text.find('>').unwrap() + 1..text.find("</p>").unwrap()].to_string()
}

fn form_body(fields: &[(String, String)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The fields a browser sends for the page's `#draft-form` as it is filled: its text and
/// hidden inputs, ticked boxes and radios, chosen options and text areas.
fn form_of(page: &str) -> Vec<(String, String)> {
    let start = page.find("id=\"draft-form\"").expect("the draft form");
    let form = &page[start..start + page[start..].find("</form>").unwrap()];
    let unescape = |s: &str| {
        s.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&#34;", "\"")
            .replace("&#39;", "'")
            .replace("&#x27;", "'")
            .replace("&amp;", "&")
    };
    let attr = |tag: &str, name: &str| -> Option<String> {
        let marker = format!(" {name}=\"");
        let at = tag.find(&marker)? + marker.len();
        Some(unescape(&tag[at..at + tag[at..].find('"')?]))
    };
    let mut fields = Vec::new();
    let mut rest = form;
    while let Some(at) = rest.find('<') {
        rest = &rest[at..];
        let tag = &rest[..rest.find('>').unwrap() + 1];
        if tag.starts_with("<input ") {
            if let Some(name) = attr(tag, "name") {
                let kind = attr(tag, "type").unwrap_or_default();
                let value = attr(tag, "value");
                let ticked = tag.contains(" checked");
                match kind.as_str() {
                    "checkbox" | "radio" if !ticked => {}
                    "checkbox" | "radio" => fields.push((name, value.unwrap_or("on".into()))),
                    _ => fields.push((name, value.unwrap_or_default())),
                }
            }
        } else if tag.starts_with("<textarea ") {
            let body = &rest[tag.len()..];
            let text = &body[..body.find("</textarea>").unwrap()];
            fields.push((attr(tag, "name").unwrap(), unescape(text)));
        } else if tag.starts_with("<select ") {
            let body = &rest[tag.len()..rest.find("</select>").unwrap()];
            let options: Vec<&str> = body.split("<option").skip(1).collect();
            let chosen = options
                .iter()
                .find(|o| o.contains(" selected"))
                .or(options.first())
                .unwrap();
            fields.push((attr(tag, "name").unwrap(), attr(chosen, "value").unwrap()));
        }
        rest = &rest[tag.len()..];
    }
    fields
}

fn set(fields: &mut Vec<(String, String)>, key: &str, value: &str) {
    fields.retain(|(k, _)| k != key);
    fields.push((key.to_string(), value.to_string()));
}

const PDF: &[u8] = b"%PDF-1.4\n% a blank application form\n%%EOF\n";

/// The draft page's upload: an item editor's PDF is published (the same file twice is
/// the same attachment) and downloadable from the drafts; a wrong type, an oversize
/// file, a missing CSRF token, a worker and a station are refused with a page whose
/// message a person reads, and change nothing.
#[tokio::test]
async fn the_draft_page_uploads_blank_forms_by_the_drafting_rule() {
    let district = api("district").await;
    let station = api("station").await;
    let (editor, csrf) = page_session(&district, "bianji", Role::ItemEditor, "10.0.0.8").await;
    let (worker, worker_csrf) =
        page_session(&district, "chuangkou", Role::Worker, "10.0.0.9").await;
    let (station_admin, station_csrf) =
        page_session(&station, "zhanzhang", Role::Admin, "10.0.0.10").await;
    let upload = "/catalog/attachments?name=%E7%A9%BA%E8%A1%A8.pdf"; // 空表.pdf
    let before = district.store.content_digest().await.unwrap();
    let oversize = [
        PDF,
        &vec![b' '; yizhan_sync::domain::attachment::MAX_BYTES][..],
    ]
    .concat();
    // Who sends (0 the editor, 1 a worker, 2 a station's admin), the type, whether the
    // session's own CSRF token goes with it, the file, and what comes back.
    let mut browsers = [editor, worker, station_admin];
    let tokens = [csrf.clone(), worker_csrf, station_csrf];
    let pdf = "application/pdf";
    type Refusal<'a> = (usize, &'a str, bool, Vec<u8>, StatusCode, &'a str);
    let refusals: Vec<Refusal> = vec![
        (
            0,
            "text/html",
            true,
            b"<html></html>".to_vec(),
            StatusCode::BAD_REQUEST,
            "text/html",
        ),
        (
            0,
            pdf,
            true,
            b"<html></html>".to_vec(),
            StatusCode::BAD_REQUEST,
            "声明",
        ),
        (
            0,
            pdf,
            true,
            oversize,
            StatusCode::PAYLOAD_TOO_LARGE,
            "2097152",
        ),
        (0, pdf, false, PDF.to_vec(), StatusCode::FORBIDDEN, ""),
        (
            1,
            pdf,
            true,
            PDF.to_vec(),
            StatusCode::FORBIDDEN,
            "只有事项编辑或管理员可以起草事项",
        ),
        (2, pdf, true, PDF.to_vec(), StatusCode::FORBIDDEN, ""),
    ];
    for (who, content_type, with_token, body, status, says) in refusals {
        let token = if with_token {
            tokens[who].as_str()
        } else {
            "forged"
        };
        let headers = [("content-type", content_type), ("x-csrf-token", token)];
        let (got, answered, page) = browsers[who].send_raw(upload, &headers, body).await;
        assert_eq!(got, status, "{says}: {}", String::from_utf8_lossy(&page));
        assert!(answered.starts_with("text/html"), "{answered}");
        let message = message_of(&page);
        assert!(!message.is_empty() && message.contains(says), "{message}");
    }
    let [mut editor, mut worker, _] = browsers;
    let pdf = [("content-type", pdf), ("x-csrf-token", csrf.as_str())];
    assert_eq!(district.store.content_digest().await.unwrap(), before);

    let (status, content_type, body) = editor.send_raw(upload, &pdf, PDF.to_vec()).await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(content_type.starts_with("application/json"));
    let published: Value = serde_json::from_slice(&body).unwrap();
    let id = published["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("a-440399-"), "{id}");
    assert_eq!(published["name"], "空表.pdf");
    let (_, _, again) = editor.send_raw(upload, &pdf, PDF.to_vec()).await;
    assert_eq!(
        serde_json::from_slice::<Value>(&again).unwrap()["id"],
        json!(id)
    );
    let (attachment, bytes) = district.store.get_attachment(id.clone()).await.unwrap();
    assert_eq!(
        (attachment.name.as_str(), bytes.as_slice()),
        ("空表.pdf", PDF)
    );
    // Downloadable by the drafts' readers before any item names it; not by a worker.
    let (status, _, page) = editor
        .send(Method::GET, &format!("/catalog/attachments/{id}"), None)
        .await;
    assert_eq!((status, page.as_bytes()), (StatusCode::OK, PDF));
    let (status, _, _) = worker
        .send(Method::GET, &format!("/catalog/attachments/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// The draft form edits every element a guide shows: each field typed is saved into the
/// item and shown again on the form, the review's diff names the new fields, a material's
/// blank form can be removed again, and a refused form comes back with what was typed
/// and the problem at its field.
#[tokio::test]
async fn the_draft_form_round_trips_every_guide_element() {
    let district = api("district").await;
    let admin = Staff {
        username: "admin".into(),
        counter: String::new(),
        role: Role::Admin,
    };
    district
        .store
        .create_department("MZJ".into(), "区民政局".into(), admin, 0)
        .await
        .unwrap();
    let (mut editor, csrf) = page_session(&district, "bianji", Role::ItemEditor, "10.0.0.8").await;
    let item = demo_catalog()
        .into_iter()
        .find(|i| {
            i.level() == yizhan_sync::domain::codes::HandlingLevel::District
                && i.case_type == yizhan_sync::domain::item::CaseType::Committed
                && i.materials.len() >= 2
                && i.situations.is_empty()
        })
        .unwrap();
    let code = item.impl_code.to_string();
    let (status, _, _) = editor
        .send(
            Method::POST,
            "/catalog/drafts",
            Some(format!("csrf={csrf}&kind=change&item={code}")),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let pdf = [
        ("content-type", "application/pdf"),
        ("x-csrf-token", csrf.as_str()),
    ];
    let (_, _, body) = editor
        .send_raw("/catalog/attachments?name=blank.pdf", &pdf, PDF.to_vec())
        .await;
    let blank: String = serde_json::from_slice::<Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .into();

    // The form as the page fills it, with every element typed in.
    // Sent back untouched, the page's form is no change at all.
    let (_, _, page) = editor.send(Method::GET, "/catalog/drafts/1", None).await;
    let mut untouched = form_of(&page);
    set(&mut untouched, "then", "save");
    let (status, _, _) = editor
        .send(
            Method::POST,
            "/catalog/drafts/1",
            Some(form_body(&untouched)),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, page) = editor.send(Method::GET, "/catalog/drafts/1", None).await;
    assert!(page.contains("id=\"draft-no-changes\""), "{page}");
    let mut form = form_of(&page);
    let first = item.materials[0].name.clone();
    let second = item.materials[1].name.clone();
    for (key, value) in [
        ("csrf", csrf.as_str()),
        ("revision", "2"),
        ("then", "save"),
        ("m_source_0", "government"),
        ("m_issuer_0", "区公安分局"),
        ("m_form_0", "paper"),
        ("m_paper_0", "A4"),
        ("m_standard_0", "原件与复印件一致"),
        ("m_blank_0", &blank),
        ("m_source_1", "applicant"),
        ("m_form_1", "both"),
        ("s_name_0", "委托他人代办"),
        ("s_not_0", &second),
        ("s0m_name_0", "授权委托书"),
        ("s0m_originals_0", "1"),
        ("s0m_copies_0", "0"),
        ("s0m_required_0", "on"),
        ("s0m_source_0", "applicant"),
        ("s0m_sample_0", &blank),
        ("hf_window", "on"),
        ("hf_post", "on"),
        ("decided_by", "MZJ"),
        ("yellow_rule", "percent_used"),
        ("yellow_value", "80"),
        ("process", "受理 | 1 | 综合窗口\n审核 | 1 | 民政科"),
        ("fees", "工本费 | 10元/证 | 某省收费标准文件"),
        ("legal_basis", "《社会救助暂行办法》 | 第十一条"),
    ] {
        set(&mut form, key, value);
    }
    // Booking the other way round from the published item.
    if item.booking {
        form.retain(|(k, _)| k != "booking");
    } else {
        set(&mut form, "booking", "on");
    }
    let (status, _, page) = editor
        .send(Method::POST, "/catalog/drafts/1", Some(form_body(&form)))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    let (draft, _) = district.store.draft(1).await.unwrap();
    let saved = draft.item().unwrap();
    use yizhan_sync::domain::item::{HandlingForm, MaterialForm, MaterialSource, ProcessStep};
    let m = &saved.materials[0];
    assert_eq!(m.source, Some(MaterialSource::Government));
    assert_eq!(m.issuer.as_deref(), Some("区公安分局"));
    assert_eq!(m.form, Some(MaterialForm::Paper));
    assert_eq!(m.paper_spec.as_deref(), Some("A4"));
    assert_eq!(m.standard.as_deref(), Some("原件与复印件一致"));
    assert_eq!(m.blank_form.as_deref(), Some(blank.as_str()));
    assert_eq!(saved.materials[1].form, Some(MaterialForm::Both));
    assert_eq!(saved.materials[1].issuer, None);
    assert_eq!(saved.situations.len(), 1);
    let situation = &saved.situations[0];
    assert_eq!(situation.name, "委托他人代办");
    assert_eq!(situation.not_needed, vec![second.clone()]);
    assert_eq!(situation.adds[0].name, "授权委托书");
    assert_eq!(situation.adds[0].sample.as_deref(), Some(blank.as_str()));
    assert_eq!(
        saved.handling_forms,
        vec![HandlingForm::Window, HandlingForm::Post]
    );
    assert_eq!(saved.booking, !item.booking);
    assert_eq!(saved.decided_by.as_deref(), Some("MZJ"));
    assert_eq!(
        saved.yellow,
        yizhan_sync::domain::calendar::YellowThreshold::PercentUsed(80)
    );
    assert_eq!(
        saved.process[1],
        ProcessStep {
            name: "审核".into(),
            days: Some(1),
            post: Some("民政科".into()),
        }
    );
    assert_eq!(saved.fees[0].basis, "某省收费标准文件");
    assert_eq!(saved.legal_basis[0].article, "第十一条");
    saved.validate().unwrap();

    // Shown again on the form, with the file by its name, and in the diff.
    let (_, _, page) = editor.send(Method::GET, "/catalog/drafts/1", None).await;
    for shown in [
        "value=\"区公安分局\"".to_string(),
        "value=\"A4\"".into(),
        "value=\"原件与复印件一致\"".into(),
        format!("href=\"/catalog/attachments/{blank}\">blank.pdf</a>"),
        "value=\"委托他人代办\"".into(),
        format!("name=\"s_not_0\" value=\"{second}\" checked"),
        format!("name=\"s_not_0\" value=\"{first}\">"),
        "value=\"授权委托书\"".into(),
        "name=\"hf_window\" id=\"f-hf_window\" checked".into(),
        "name=\"hf_online\" id=\"f-hf_online\">".into(),
        if item.booking {
            "name=\"booking\" id=\"f-booking\">"
        } else {
            "name=\"booking\" id=\"f-booking\" checked"
        }
        .into(),
        "<option value=\"MZJ\" selected>区民政局 (MZJ)</option>".into(),
        "<option value=\"percent_used\" selected>".into(),
        "value=\"government\" selected".into(),
        "value=\"paper\" selected".into(),
        "class=\"diff-situations\"".into(),
        "class=\"diff-handling_forms\"".into(),
        "class=\"diff-booking\"".into(),
        "class=\"diff-decided_by\"".into(),
        "class=\"diff-materials\"".into(),
    ] {
        assert!(page.contains(&shown), "{shown} in {page}");
    }
    // Untouched elements are no change: only what was typed is in the diff.
    assert!(!page.contains("class=\"diff-complaint\""), "{page}");

    // A refused form: a number that is not one, and a government material without an
    // issuer; nothing saved, the typed text kept, the problems at their fields.
    let mut refused = form_of(&page);
    for (key, value) in [
        ("csrf", csrf.as_str()),
        ("revision", "3"),
        ("then", "save"),
        ("s0m_copies_0", "两份"),
        ("m_issuer_0", "新的出具单位"),
    ] {
        set(&mut refused, key, value);
    }
    let (status, _, page) = editor
        .send(Method::POST, "/catalog/drafts/1", Some(form_body(&refused)))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("id=\"err-situations\""), "{page}");
    assert!(page.contains("value=\"两份\""), "{page}");
    assert!(page.contains("value=\"新的出具单位\""), "{page}");
    assert_eq!(district.store.draft(1).await.unwrap().0.revision, 3);
    // Saved with a problem: the issuer cleared on a government material is named at the
    // materials when the form comes back.
    let mut unnamed = refused.clone();
    set(&mut unnamed, "s0m_copies_0", "0");
    set(&mut unnamed, "m_issuer_0", "");
    let (status, _, _) = editor
        .send(Method::POST, "/catalog/drafts/1", Some(form_body(&unnamed)))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, page) = editor.send(Method::GET, "/catalog/drafts/1", None).await;
    let at = page.find("id=\"err-materials\"").expect(&page);
    assert!(page[at..].contains("issuer"), "{page}");

    // The blank form's reference removed, the situation removed: both gone from the item.
    let (_, _, page) = editor.send(Method::GET, "/catalog/drafts/1", None).await;
    let mut removed = form_of(&page);
    for (key, value) in [
        ("csrf", csrf.as_str()),
        ("revision", "4"),
        ("then", "save"),
        ("m_issuer_0", "区公安分局"),
        ("m_blank_drop_0", "on"),
        ("s_name_0", ""),
    ] {
        set(&mut removed, key, value);
    }
    let (status, _, page) = editor
        .send(Method::POST, "/catalog/drafts/1", Some(form_body(&removed)))
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    let (draft, _) = district.store.draft(1).await.unwrap();
    let saved = draft.item().unwrap();
    assert_eq!(saved.materials[0].blank_form, None);
    assert_eq!(saved.materials[0].issuer.as_deref(), Some("区公安分局"));
    assert!(saved.situations.is_empty());
    assert!(draft.body.get("situations").is_none(), "{}", draft.body);
}
