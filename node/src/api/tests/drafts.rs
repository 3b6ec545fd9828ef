//! `/api/v1/items/drafts` in-process: a change drafted, refused by every rule with its
//! code, approved by a second person and published; a new item from blank.

use super::*;
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
