//! API tests: the router driven in-process, no sockets (axum's `oneshot`).

use std::sync::Arc;

use axum::body::Body as HttpBody;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::ApiState;
use crate::accounts::generate_token;
use crate::clock::FixedClock;
use crate::demo::demo_catalog;
use crate::identity::ThisNode;
use crate::node::{AppState, router};
use crate::store::tests::{at, open_temp, publish_catalog};
use crate::store::{NewUser, Role, Store};
use crate::web::WebState;

struct Api {
    _dir: tempfile::TempDir,
    store: Store,
    state: AppState,
    worker: String,
    admin: String,
}

async fn api(role: &str) -> Api {
    let (dir, store) = if role == "district" {
        // A district's own store (the catalog and calendar author).
        let dir = tempfile::tempdir().unwrap();
        let options = crate::store::StoreOptions {
            identity: crate::store::tests::identity(
                7,
                yizhan_sync::auth::NodeRole::District,
                "440399",
            ),
            ..crate::store::tests::options()
        };
        let store = Store::open(&dir.path().join("yizhan.db"), options).unwrap();
        (dir, store)
    } else {
        open_temp()
    };
    publish_catalog(&store).await;
    let mut tokens = Vec::new();
    for (name, staff_role) in [("worker", Role::Worker), ("admin", Role::Admin)] {
        let user = NewUser {
            username: name.into(),
            display_name: name.into(),
            role: staff_role,
            counter: "1号窗口".into(),
            password_hash: "unused".into(),
        };
        store.add_user(user, 0).await.unwrap();
        let (token, hash) = generate_token();
        store
            .add_token(name.into(), hash, "test".into(), 0)
            .await
            .unwrap();
        tokens.push(token);
    }
    let clock: Arc<dyn crate::clock::Clock> = Arc::new(FixedClock(at("2026-03-02")));
    let node = Arc::new(ThisNode {
        node_id: "07070707070707070707070707070707".into(),
        role: role.into(),
        division: if role == "station" {
            "440399001001".into()
        } else {
            "440399".into()
        },
        name: "测试节点".into(),
        version: "test".into(),
    });
    let links: Arc<crate::links::Links> = Default::default();
    let state = AppState {
        api: ApiState {
            store: store.clone(),
            clock: clock.clone(),
            node: node.clone(),
            links: links.clone(),
            sink: Default::default(),
            duplicates_received: Default::default(),
            applied_received: Default::default(),
            metrics: Default::default(),
            sync: Default::default(),
            backup_dir: None,
            rectify_days: 15,
            stale_sync_hours: 24,
        },
        web: WebState {
            store: store.clone(),
            clock,
            node,
            links,
            sink: Default::default(),
            backup_dir: None,
            discovery: None,
            tls: false,
            public_url: Some("http://station.example:8080".into()),
            key: Arc::new(crate::identity::NodeKey::from_seed([7; 32])),
            rectify_days: 15,
            stale_sync_hours: 24,
            sessions: Default::default(),
            guesses: Default::default(),
            throttle: Default::default(),
            submitted_forms: Default::default(),
            applicants: Default::default(),
            appointments: Some(Arc::new(
                crate::config::AppointmentsSection::default()
                    .schedule()
                    .unwrap(),
            )),
        },
    };
    let admin = tokens.pop().unwrap();
    let worker = tokens.pop().unwrap();
    Api {
        _dir: dir,
        store,
        state,
        worker,
        admin,
    }
}

impl Api {
    async fn send(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> (StatusCode, Value, header::HeaderMap) {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(body.map_or_else(HttpBody::empty, HttpBody::from))
            .unwrap();
        let response = router(self.state.clone(), 64 * 1024)
            .oneshot(request)
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or(Value::Null)
        };
        (status, value, headers)
    }

    async fn get(&self, uri: &str, token: Option<&str>) -> (StatusCode, Value) {
        let (status, value, _) = self.send(Method::GET, uri, token, None).await;
        (status, value)
    }

    async fn post(&self, uri: &str, token: Option<&str>, body: &Value) -> (StatusCode, Value) {
        let (status, value, _) = self
            .send(
                Method::POST,
                uri,
                token,
                Some(serde_json::to_vec(body).unwrap()),
            )
            .await;
        (status, value)
    }
}

fn application(item: &str) -> Value {
    let item = demo_catalog().into_iter().find(|i| i.name == item).unwrap();
    json!({
        "item": item.impl_code.to_string(),
        "applicant": {"type": "natural_person", "name": "王五", "id_number": "11010519491231002X", "phone": "13800138000"},
        "materials": item.materials.iter().filter(|m| m.required)
            .map(|m| json!({"name": m.name, "originals": m.originals, "copies": m.copies})).collect::<Vec<_>>(),
    })
}

#[tokio::test]
async fn the_catalog_is_public_and_searchable() {
    let api = api("station").await;
    let (status, list) = api.get("/api/v1/items?limit=500", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["total"], demo_catalog().len());
    let (_, found) = api.get("/api/v1/items?q=%E6%95%91%E5%8A%A9", None).await; // 救助
    let expected = demo_catalog()
        .iter()
        .filter(|i| {
            i.name.contains("救助")
                || i.category.contains("救助")
                || i.subject.name.contains("救助")
        })
        .count();
    assert!(expected >= 4);
    assert_eq!(found["total"], expected);
    let (_, both) = api
        .get(
            "/api/v1/items?q=%E6%95%91%E5%8A%A9%20%E5%8C%BB%E7%96%97",
            None,
        )
        .await; // 救助 医疗
    assert_eq!(both["total"], 1);
    assert_eq!(both["items"][0]["name"], "医疗救助申请");

    for entry in list["items"].as_array().unwrap() {
        let (status, item) = api
            .get(
                &format!("/api/v1/items/{}", entry["id"].as_str().unwrap()),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        // Every SZDB/Z 176 §9.1.2 element is filled.
        for element in ["name", "fee_text", "limit_text", "remedies", "result"] {
            assert!(
                !item[element].as_str().unwrap().is_empty(),
                "{element} of {}",
                item["name"]
            );
        }
        assert!(!item["kind"]["name"].as_str().unwrap().is_empty());
        assert!(!item["place"]["address"].as_str().unwrap().is_empty());
        for list in [
            "legal_basis",
            "conditions",
            "process",
            "materials",
            "query_channels",
            "consultation",
            "complaint",
        ] {
            assert!(
                !item[list].as_array().unwrap().is_empty(),
                "{list} of {}",
                item["name"]
            );
        }
    }
    // 委托部门 and 决定部门 are shown as the catalog has them (§5.5.2, §5.7.2).
    let mut delegated = 0;
    for item in demo_catalog() {
        let (_, view) = api
            .get(&format!("/api/v1/items/{}", item.impl_code), None)
            .await;
        assert_eq!(
            (view["delegated_by"].as_str(), view["decided_by"].as_str()),
            (item.delegated_by.as_deref(), item.decided_by.as_deref()),
            "{}",
            item.name
        );
        delegated += usize::from(item.delegated_by.is_some());
    }
    assert!(
        delegated > 0,
        "the demo has an item accepted on a department's behalf"
    );
    let code = demo_catalog()[0].impl_code.to_string();
    let (status, by_code) = api.get(&format!("/api/v1/items/{code}"), None).await;
    assert_eq!(
        (status, by_code["impl_code"].as_str()),
        (StatusCode::OK, Some(code.as_str()))
    );
    let (status, missing) = api.get("/api/v1/items/i-nothing", None).await;
    assert_eq!(
        (status, missing["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (status, categories) = api.get("/api/v1/item-categories", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(categories.as_array().unwrap().len(), 6);
}

#[tokio::test]
async fn case_endpoints_need_a_valid_token() {
    let api = api("station").await;
    let routes = [
        (Method::GET, "/api/v1/cases"),
        (Method::POST, "/api/v1/cases"),
        (Method::GET, "/api/v1/cases/c-1"),
        (Method::GET, "/api/v1/cases/by-serial/x"),
        (Method::POST, "/api/v1/cases/c-1/events"),
        (Method::GET, "/api/v1/node"),
        (Method::PUT, "/api/v1/items/x"),
    ];
    for (method, uri) in routes {
        for token in [
            None,
            Some("yz_0000000000000000000000000000000000000000000000000000000000000000"),
            Some("garbage"),
        ] {
            let body = (method != Method::GET).then(|| b"{}".to_vec());
            let (status, value, headers) = api.send(method.clone(), uri, token, body).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {uri} with {token:?}"
            );
            assert_eq!(value["error"], "unauthorized");
            assert!(headers.contains_key(header::WWW_AUTHENTICATE));
        }
    }
    let (status, _) = api.get("/healthz", None).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_case_through_the_api() {
    let api = api("station").await;
    let token = Some(api.worker.as_str());
    let (status, created, headers) = api
        .send(
            Method::POST,
            "/api/v1/cases",
            token,
            Some(serde_json::to_vec(&application("最低生活保障申请")).unwrap()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(headers[header::LOCATION], format!("/api/v1/cases/{id}"));
    assert_eq!(created["status"], "submitted");
    assert_eq!(created["counter"], "1号窗口");
    assert_eq!(created["applicant"]["id_number"], "11010519491231002X");

    let (status, accepted) = api
        .post(
            &format!("/api/v1/cases/{id}/events"),
            token,
            &json!({"kind": "accept"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{accepted}");
    assert_eq!(accepted["status"], "accepted");
    assert_eq!(accepted["committed_due"], "2026-03-30");
    assert_eq!(accepted["legal_due"], "2026-04-14");
    assert_eq!(accepted["warning_level"], "normal");
    let serial = accepted["serial_no"].as_str().unwrap().to_string();
    assert_eq!(accepted["events"][0]["kind"], "accept");
    assert_eq!(
        accepted["events"][0]["details"]["serial_no"],
        serial.as_str()
    );

    let (status, by_serial) = api
        .get(&format!("/api/v1/cases/by-serial/{serial}"), token)
        .await;
    assert_eq!(
        (status, by_serial["id"].as_str()),
        (StatusCode::OK, Some(id.as_str()))
    );
    let (status, list) = api
        .get("/api/v1/cases?status=accepted&level=normal", token)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        list["cases"][0]["applicant_id_masked"],
        "110105********002X"
    );
    assert!(
        list["cases"][0].get("applicant").is_none(),
        "lists never carry the full identity number"
    );

    // 即办件: accepted and completed in one step.
    let (_, instant) = api
        .post("/api/v1/cases", token, &application("居住登记"))
        .await;
    let instant_id = instant["id"].as_str().unwrap();
    let (status, done) = api
        .post(
            &format!("/api/v1/cases/{instant_id}/events"),
            token,
            &json!({"kind": "accept", "complete": {"result": "居住登记回执", "delivery": "当场领取"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["status"], "completed");
    assert_eq!(done["events"].as_array().unwrap().len(), 2);

    // A one-time notice, then the supplement, then acceptance.
    let mut short = application("残疾人证新办");
    short["materials"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["name"] != "近期免冠照片");
    let (_, case) = api.post("/api/v1/cases", token, &short).await;
    let case_id = case["id"].as_str().unwrap();
    assert_eq!(case["materials_missing"][0]["name"], "近期免冠照片");
    let events = format!("/api/v1/cases/{case_id}/events");
    let (status, err) = api.post(&events, token, &json!({"kind": "accept"})).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("materials_missing"))
    );
    let notice = json!({"kind": "notify_missing", "missing": [{"name": "近期免冠照片", "reason": "制证需要"}]});
    let (status, notified) = api.post(&events, token, &notice).await;
    assert_eq!(
        (status, notified["status"].as_str()),
        (StatusCode::OK, Some("awaiting_supplement"))
    );
    let supplement =
        json!({"kind": "supplement", "materials": [{"name": "近期免冠照片", "copies": 1}]});
    let (status, supplemented) = api.post(&events, token, &supplement).await;
    assert_eq!(
        (status, supplemented["status"].as_str()),
        (StatusCode::OK, Some("submitted"))
    );
    assert!(
        supplemented["materials_missing"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let (status, accepted) = api.post(&events, token, &json!({"kind": "accept"})).await;
    assert_eq!(
        (status, accepted["status"].as_str()),
        (StatusCode::OK, Some("accepted"))
    );
}

/// Each kind of bad input gets its own clear 4xx with a JSON body, and none changes the
/// store in any way.
#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let api = api("station").await;
    let token = Some(api.worker.as_str());
    let (_, case) = api
        .post("/api/v1/cases", token, &application("居住证申领"))
        .await;
    let events = format!("/api/v1/cases/{}/events", case["id"].as_str().unwrap());
    let before = api.store.content_digest().await.unwrap();

    let mut bad_id = application("居住证申领");
    bad_id["applicant"]["id_number"] = json!("110105194912310021");
    let mut unknown_field = application("居住证申领");
    unknown_field["applicant"]["nickname"] = json!("小王");
    let mut unknown_item = application("居住证申领");
    unknown_item["item"] = json!("11440399990000017K4000599399000");
    let mut bad_credit = application("居住证申领");
    bad_credit["applicant"] = json!({"type": "legal_person", "name": "某公司", "credit_code": "91350100M000100Y44", "contact_name": "赵六", "phone": "0755-12345678"});
    let mut empty_name = application("居住证申领");
    empty_name["applicant"]["name"] = json!("  ");
    let mut unknown_material = application("居住证申领");
    unknown_material["materials"] = json!([{"name": "护照", "originals": 1}]);
    let mut oversize = application("居住证申领");
    oversize["note"] = json!("很".repeat(30_000));
    let mut rlo_name = application("居住证申领");
    rlo_name["applicant"]["name"] = json!("王\u{202E}五");
    let mut nul_note = application("居住证申领");
    nul_note["note"] = json!("备注\u{0}");
    // Ids of documents of other kinds, given where a case id belongs.
    let item_id = yizhan_sync::domain::item::Item::doc_id_for(
        &demo_catalog()
            .into_iter()
            .find(|i| i.name == "居住证申领")
            .unwrap()
            .impl_code,
    );
    let item_events = format!("/api/v1/cases/{item_id}/events");
    let registry_events = "/api/v1/cases/r-440399/events".to_string();
    let own_registry_events = "/api/v1/cases/r-440399001001/events".to_string();

    type Case<'a> = (
        &'a str,
        &'a str,
        Option<&'a str>,
        Vec<u8>,
        StatusCode,
        &'a str,
    );
    let body = |v: &Value| serde_json::to_vec(v).unwrap();
    let table: Vec<Case> = vec![
        (
            "malformed JSON",
            "/api/v1/cases",
            token,
            b"{\"item\": ".to_vec(),
            StatusCode::BAD_REQUEST,
            "malformed_json",
        ),
        (
            "unknown item",
            "/api/v1/cases",
            token,
            body(&unknown_item),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "unknown field",
            "/api/v1/cases",
            token,
            body(&unknown_field),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "wrong ID check digit",
            "/api/v1/cases",
            token,
            body(&bad_id),
            StatusCode::UNPROCESSABLE_ENTITY,
            "code_check_character",
        ),
        (
            "wrong credit code",
            "/api/v1/cases",
            token,
            body(&bad_credit),
            StatusCode::UNPROCESSABLE_ENTITY,
            "code_check_character",
        ),
        (
            "empty name",
            "/api/v1/cases",
            token,
            body(&empty_name),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            "unknown material",
            "/api/v1/cases",
            token,
            body(&unknown_material),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_material",
        ),
        (
            "a right-to-left override in a name",
            "/api/v1/cases",
            token,
            body(&rlo_name),
            StatusCode::UNPROCESSABLE_ENTITY,
            "control_character",
        ),
        (
            "a NUL in a note",
            "/api/v1/cases",
            token,
            body(&nul_note),
            StatusCode::UNPROCESSABLE_ENTITY,
            "control_character",
        ),
        (
            "an escape in a reason",
            &events,
            token,
            body(&json!({"kind": "refuse", "reason": "\u{1b}[2J", "basis": "x", "remedies": "y"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "control_character",
        ),
        (
            "an event on an item's id",
            &item_events,
            token,
            body(&json!({"kind": "accept"})),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "an event on a registry's id",
            &registry_events,
            token,
            body(&json!({"kind": "accept"})),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "an event on this node's own registry",
            &own_registry_events,
            token,
            body(&json!({"kind": "withdraw", "reason": "x"})),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "missing token",
            "/api/v1/cases",
            None,
            body(&application("居住证申领")),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
        (
            "oversize body",
            "/api/v1/cases",
            token,
            body(&oversize),
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
        ),
        (
            "wrong JSON type",
            "/api/v1/cases",
            token,
            b"[1, 2]".to_vec(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "event not allowed",
            &events,
            token,
            body(&json!({"kind": "complete", "result": "x", "delivery": "y"})),
            StatusCode::CONFLICT,
            "not_allowed",
        ),
        (
            "unknown event",
            &events,
            token,
            body(&json!({"kind": "approve"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            "refusal without reason",
            &events,
            token,
            body(&json!({"kind": "refuse", "reason": "", "basis": "x", "remedies": "y"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            "instant completion of a committed item",
            &events,
            token,
            body(&json!({"kind": "accept", "complete": {"result": "x", "delivery": "y"}})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "instant_only",
        ),
        (
            "event on an unknown case",
            "/api/v1/cases/c-nothing/events",
            token,
            body(&json!({"kind": "accept"})),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "event on a malformed id",
            "/api/v1/cases/..%2F..%2Fetc/events",
            token,
            body(&json!({"kind": "accept"})),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            "item published on a station",
            "/api/v1/items/x",
            Some(api.admin.as_str()),
            body(&json!({})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
    ];
    for (why, uri, token, payload, status, code) in table {
        let method = if uri.starts_with("/api/v1/items") {
            Method::PUT
        } else {
            Method::POST
        };
        let (got, value, _) = api.send(method, uri, token, Some(payload)).await;
        assert_eq!(got, status, "{why}: {value}");
        assert_eq!(value["error"], code, "{why}: {value}");
        assert!(
            value["message"].as_str().is_some_and(|m| m.len() > 10),
            "{why}: {value}"
        );
    }
    let item_id_path = format!("/api/v1/cases/{item_id}");
    let case_as_item = format!("/api/v1/items/{}", case["id"].as_str().unwrap());
    for (why, uri, status) in [
        (
            "unknown status",
            "/api/v1/cases?status=lost",
            StatusCode::BAD_REQUEST,
        ),
        (
            "unknown level",
            "/api/v1/cases?level=orange",
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad date",
            "/api/v1/cases?from=2026-02-30",
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad cursor",
            "/api/v1/cases?cursor=zzz",
            StatusCode::BAD_REQUEST,
        ),
        (
            "unknown query parameter",
            "/api/v1/cases?colour=red",
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad limit",
            "/api/v1/cases?limit=-1",
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad serial",
            "/api/v1/cases/by-serial/123",
            StatusCode::BAD_REQUEST,
        ),
        (
            "unknown case",
            "/api/v1/cases/c-nothing",
            StatusCode::NOT_FOUND,
        ),
        (
            "an item's id as a case",
            &item_id_path,
            StatusCode::NOT_FOUND,
        ),
        (
            "a registry's id as a case",
            "/api/v1/cases/r-440399001001",
            StatusCode::NOT_FOUND,
        ),
        (
            "a case's id as an item",
            &case_as_item,
            StatusCode::NOT_FOUND,
        ),
        (
            "a registry's id as an item",
            "/api/v1/items/r-440399001001",
            StatusCode::NOT_FOUND,
        ),
        ("unknown route", "/api/v1/nothing", StatusCode::NOT_FOUND),
    ] {
        let (got, value) = api.get(uri, token).await;
        assert_eq!(got, status, "{why}: {value}");
        assert!(value["error"].is_string(), "{why}: {value}");
    }
    let (got, value, _) = api.send(Method::POST, "/api/v1/cases", token, None).await;
    assert_eq!(
        (got, value["error"].as_str()),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some("unsupported_media_type")
        )
    );
    assert_eq!(api.store.content_digest().await.unwrap(), before);
}

#[tokio::test]
async fn catalog_publishing_is_for_admins_on_authoring_nodes() {
    let district = api("district").await;
    let mut item = serde_json::to_value(
        demo_catalog()
            .into_iter()
            .find(|i| i.name == "居住证申领")
            .unwrap(),
    )
    .unwrap();
    let code = item["impl_code"].as_str().unwrap().to_string();
    let uri = format!("/api/v1/items/{code}");
    let put = |token: String, body: Value| {
        let (district, uri) = (&district, uri.clone());
        async move {
            district
                .send(
                    Method::PUT,
                    &uri,
                    Some(&token),
                    Some(serde_json::to_vec(&body).unwrap()),
                )
                .await
        }
    };
    let before = district.store.content_digest().await.unwrap();
    item["version"] = json!(2);
    item["committed_limit_days"] = json!(16);
    let (status, value, _) = put(district.admin.clone(), item.clone()).await;
    assert_eq!(
        (status, value["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_item")),
        "{value}"
    );
    assert!(
        value["message"]
            .as_str()
            .unwrap()
            .contains("承诺时限不能超过法定时限")
    );
    item["committed_limit_days"] = json!(8);
    let (status, value, _) = put(district.worker.clone(), item.clone()).await;
    assert_eq!(
        (status, value["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("authoring_admins_only"))
    );
    item["version"] = json!(1);
    let (status, value, _) = put(district.admin.clone(), item.clone()).await;
    assert_eq!(
        (status, value["error"].as_str()),
        (StatusCode::CONFLICT, Some("item_version")),
        "{value}"
    );
    assert_eq!(district.store.content_digest().await.unwrap(), before);
    item["version"] = json!(2);
    let (status, value, _) = put(district.admin.clone(), item.clone()).await;
    assert_eq!(status, StatusCode::OK, "{value}");
    assert_eq!(
        (
            value["version"].as_u64(),
            value["committed_limit_days"].as_u64()
        ),
        (Some(2), Some(8))
    );

    let station = api("station").await;
    let (status, value, _) = station
        .send(
            Method::PUT,
            &uri,
            Some(&station.admin),
            Some(serde_json::to_vec(&item).unwrap()),
        )
        .await;
    assert_eq!(
        (status, value["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("authoring_station"))
    );
}

async fn put_calendar(api: &Api, token: String, uri: &str, text: &str) -> (StatusCode, Value) {
    let body = serde_json::to_vec(&json!({ "text": text })).unwrap();
    let (status, value, _) = api.send(Method::PUT, uri, Some(&token), Some(body)).await;
    (status, value)
}

/// A district admin publishes a calendar year through the API; a worker, a station, a
/// file that does not read or names another year are refused with reasons.
#[tokio::test]
async fn calendar_years_are_published_by_hall_admins() {
    let official = crate::store::calendars::OFFICIAL_2027;
    let district = api("district").await;
    let (status, shown) = district
        .get("/api/v1/calendars", Some(&district.worker))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        shown["version"].as_str().unwrap().contains("2027.0p"),
        "{shown}"
    );
    assert_eq!(shown["years"][1]["source"], "shipped");
    let before = district.store.content_digest().await.unwrap();
    for (why, token, uri, text, expected) in [
        (
            "a worker",
            district.worker.clone(),
            "/api/v1/calendars/2027",
            official,
            StatusCode::FORBIDDEN,
        ),
        (
            "another year's path",
            district.admin.clone(),
            "/api/v1/calendars/2028",
            official,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "not a calendar",
            district.admin.clone(),
            "/api/v1/calendars/2027",
            "year 2027\nbogus",
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (status, value) = put_calendar(&district, token, uri, text).await;
        assert_eq!(status, expected, "{why}: {value}");
        assert!(
            value["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{why}: {value}"
        );
    }
    assert_eq!(district.store.content_digest().await.unwrap(), before);
    let (status, value) = put_calendar(
        &district,
        district.admin.clone(),
        "/api/v1/calendars/2027",
        official,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{value}");
    assert!(
        value["version"].as_str().unwrap().contains("2027.1"),
        "{value}"
    );
    assert_eq!(value["years"][1]["source"], "440399");
    assert_eq!(value["years"][1]["status"], "official");
    let (status, _) = put_calendar(
        &district,
        district.admin.clone(),
        "/api/v1/calendars/2027",
        official,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);

    let station = api("station").await;
    let (status, value) = put_calendar(
        &station,
        station.admin.clone(),
        "/api/v1/calendars/2027",
        official,
    )
    .await;
    assert_eq!(
        (status, value["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("calendar_not_author")),
        "{value}"
    );
}

/// The node serves a committed document (`docs/openapi.json`) so that its binary does not
/// carry the code that generates one; this keeps the two equal. After changing a
/// handler's annotations or a wire type, write it again with
/// `YIZHAN_WRITE_OPENAPI=1 cargo test -p yizhan-node the_served_openapi_document`.
#[test]
fn the_served_openapi_document_is_the_one_the_code_describes() {
    let generated = serde_json::to_string_pretty(&crate::api::openapi_document()).unwrap() + "\n";
    if std::env::var_os("YIZHAN_WRITE_OPENAPI").is_some() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    assert!(
        generated == crate::api::OPENAPI_JSON,
        "docs/openapi.json is not the document the code describes; write it again with \
         `YIZHAN_WRITE_OPENAPI=1 cargo test -p yizhan-node the_served_openapi_document` \
         and commit it"
    );
}

#[tokio::test]
async fn the_openapi_document_covers_every_route() {
    let api = api("station").await;
    let (status, doc) = api.get("/api/v1/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/healthz",
        "/api/v1/node",
        "/api/v1/items",
        "/api/v1/items/{id}",
        "/api/v1/items/{impl_code}",
        "/api/v1/item-categories",
        "/api/v1/cases",
        "/api/v1/cases/{id}",
        "/api/v1/cases/by-serial/{serial}",
        "/api/v1/cases/{id}/events",
        "/api/v1/calendars",
        "/api/v1/calendars/{year}",
        "/api/v1/departments",
        "/api/v1/departments/{code}",
        "/api/v1/departments/{code}/rotate",
        "/api/v1/cases/{id}/fees",
        "/api/v1/fees",
    ] {
        assert!(paths.contains_key(path), "{path} is documented");
    }
    assert!(doc["components"]["schemas"]["CreateCase"].is_object());
    assert!(doc["components"]["securitySchemes"]["token"].is_object());
}

/// §9.5 through the API: a case's fee lines, a payment and an exemption recorded and
/// listed, every bad request refused with its code and nothing written, and the month's
/// figures for the station's lead or admin only.
#[tokio::test]
async fn fees_through_the_api() {
    let api = api("station").await;
    let token = Some(api.worker.as_str());
    let (_, case) = api
        .post("/api/v1/cases", token, &application("居住证申领"))
        .await;
    let id = case["id"].as_str().unwrap().to_string();
    let line = case["fees"]["lines"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(case["fees"]["settled"], false);
    assert!(
        case["allowed_actions"]
            .as_array()
            .unwrap()
            .contains(&json!("pay"))
    );
    let fees = format!("/api/v1/cases/{id}/fees");
    let before = api.store.content_digest().await.unwrap();
    for (body, status, code) in [
        (
            json!({"kind": "pay", "fee": "办证费", "amount_fen": 2000, "method": "cash", "receipt": "1"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_fee_line",
        ),
        (
            json!({"kind": "pay", "fee": line, "amount_fen": 0, "method": "cash", "receipt": "1"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "fee_amount_zero",
        ),
        (
            json!({"kind": "pay", "fee": line, "amount_fen": 2000, "method": "cash", "receipt": " "}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            json!({"kind": "exempt", "fee": line, "amount_fen": 500, "reason": "低保户", "basis": ""}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
        ),
        (
            json!({"kind": "pay", "fee": line, "amount_fen": -5, "method": "cash", "receipt": "1"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
        (
            json!({"kind": "pay", "fee": line, "amount_fen": 2000, "method": "cheque", "receipt": "1"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_body",
        ),
    ] {
        let (got, answer) = api.post(&fees, token, &body).await;
        assert_eq!(
            (got, answer["error"].as_str()),
            (status, Some(code)),
            "{body}: {answer}"
        );
        assert!(answer["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(api.store.content_digest().await.unwrap(), before);

    let (status, paid) = api
        .post(
            &fees,
            token,
            &json!({"kind": "pay", "fee": line, "amount_fen": 2000, "method": "mobile", "receipt": "粤财 No.0001"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{paid}");
    assert_eq!(paid["paid_fen"], 2000);
    assert_eq!(paid["lines"][0]["payment"]["receipt"], "粤财 No.0001");
    assert_eq!(paid["lines"][0]["payment"]["method"], "mobile");
    assert_eq!(paid["lines"][0]["payment"]["staff"], "worker");
    assert_eq!(paid["settled"], true);
    let (status, twice) = api
        .post(
            &fees,
            token,
            &json!({"kind": "pay", "fee": line, "amount_fen": 2000, "method": "cash", "receipt": "2"}),
        )
        .await;
    assert_eq!(
        (status, twice["error"].as_str()),
        (StatusCode::CONFLICT, Some("fee_already_paid"))
    );
    // The same act as an event.
    let (status, exempted) = api
        .post(
            &format!("/api/v1/cases/{id}/events"),
            token,
            &json!({"kind": "exempt", "fee": line, "amount_fen": 500, "reason": "低保户", "basis": "民政减免规定"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{exempted}");
    assert_eq!(exempted["fees"]["exempt_fen"], 500);
    let (status, listed) = api.get(&fees, token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["lines"][0]["exemption"]["reason"], "低保户");

    // An item that charges nothing.
    let (_, free) = api
        .post("/api/v1/cases", token, &application("最低生活保障申请"))
        .await;
    assert_eq!(free["fees"]["lines"], json!([]));
    assert!(
        !free["allowed_actions"]
            .as_array()
            .unwrap()
            .contains(&json!("pay"))
    );
    let (status, refused) = api
        .post(
            &format!("/api/v1/cases/{}/fees", free["id"].as_str().unwrap()),
            token,
            &json!({"kind": "pay", "fee": line, "amount_fen": 2000, "method": "cash", "receipt": "1"}),
        )
        .await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("no_fees"))
    );

    // The month's figures: the admin reads them, a worker does not.
    let (status, report) = api
        .get("/api/v1/fees?month=2026-03", Some(&api.admin))
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["items"][0]["collected_fen"], 2000);
    assert_eq!(report["items"][0]["paid_cases"], 1);
    assert_eq!(report["items"][0]["exemptions"], 1);
    assert_eq!(report["total"]["exempt_fen"], 500);
    let (status, _) = api.get("/api/v1/fees?month=2026-03", token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = api.get("/api/v1/fees?month=2026-3", Some(&api.admin)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

mod fuzz {
    use proptest::prelude::*;

    use super::*;

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "[a-z_]{0,12}".prop_map(Value::from),
            Just(json!("11010519491231002X")),
            Just(json!("居住证申领")),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                proptest::collection::hash_map(
                    prop_oneof![
                        Just("kind".to_string()),
                        Just("item".to_string()),
                        Just("applicant".to_string()),
                        Just("materials".to_string()),
                        "[a-z]{1,8}"
                    ],
                    inner,
                    0..5
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        /// No body, however odd, makes the API fail with a 5xx.
        #[test]
        fn no_body_causes_a_server_error(body in json_value(), event in any::<bool>()) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async {
                let api = api("station").await;
                let uri = if event {
                    let (_, case) = api.post("/api/v1/cases", Some(&api.worker), &application("居住证申领")).await;
                    format!("/api/v1/cases/{}/events", case["id"].as_str().unwrap())
                } else {
                    "/api/v1/cases".to_string()
                };
                let (status, _) = api.post(&uri, Some(&api.worker), &body).await;
                prop_assert!(status.is_client_error() || status.is_success(), "{status} for {body}");
                Ok(())
            })?;
        }
    }
}

#[tokio::test]
async fn a_clock_far_behind_is_a_clear_503() {
    let mut api = api("station").await;
    let token = api.worker.clone();
    let (status, _) = api
        .post("/api/v1/cases", Some(&token), &application("居住证申领"))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let behind: Arc<dyn crate::clock::Clock> = Arc::new(FixedClock(at("2026-03-01")));
    api.state.api.clock = behind.clone();
    api.state.web.clock = behind;
    let (status, value) = api
        .post("/api/v1/cases", Some(&token), &application("居住证申领"))
        .await;
    assert_eq!(
        (status, value["error"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("clock_behind")),
        "{value}"
    );
}

/// A body that records whether anyone read it, and never ends: a request the server
/// refuses on its headers alone must leave it untouched.
struct Untouched(Arc<std::sync::atomic::AtomicBool>);

impl axum::body::HttpBody for Untouched {
    type Data = axum::body::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        std::task::Poll::Pending
    }
}

/// A signed sync request as a node makes it. `sign` may change the claim before it is
/// signed (a caller declaring a length), `alter` after (someone in between).
#[allow(clippy::too_many_arguments)]
fn signed_request(
    signer: &crate::identity::NodeKey,
    node: yizhan_sync::ids::NodeId,
    time: i64,
    nonce: u8,
    path: &str,
    body: &[u8],
    sign: impl FnOnce(&mut yizhan_sync::request::RequestClaim),
    alter: impl FnOnce(&mut yizhan_sync::request::RequestClaim),
) -> axum::http::request::Builder {
    let mut claim = yizhan_sync::request::RequestClaim::for_body(node, time, [nonce; 16], body);
    sign(&mut claim);
    let signature = signer.sign(&claim.message("POST", path));
    alter(&mut claim);
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::CONTENT_LENGTH, claim.body_len);
    for (name, value) in claim.headers(&signature) {
        request = request.header(name, value);
    }
    request
}

#[tokio::test]
async fn sync_requests_must_be_signed_by_a_known_node() {
    use yizhan_sync::feed::Hello;
    use yizhan_sync::wire::Message;
    let api = api("subdistrict").await;
    let child = crate::identity::NodeKey::from_seed([5; 32]);
    let stranger = crate::identity::NodeKey::from_seed([6; 32]);
    let record = child
        .identity(
            yizhan_sync::auth::NodeRole::Station,
            yizhan_sync::domain::codes::DivisionCode::parse("440399001001").unwrap(),
            "c",
        )
        .record;
    api.store
        .pin_peer(record.clone(), crate::store::Relation::Child, None)
        .await
        .unwrap();
    let hello = Hello {
        protocol: yizhan_sync::feed::PROTOCOL_VERSION,
        min_protocol: yizhan_sync::feed::MIN_PROTOCOL_VERSION,
        node: record.node,
        role: record.role,
        division: record.division.clone(),
        name: "c".into(),
        now_ms: at("2026-03-02"),
        capabilities: vec![],
        refused: vec![],
    }
    .encode();
    let now = at("2026-03-02") as i64;
    let path = "/sync/v1/hello";
    let send = |request: axum::http::request::Builder| {
        let body = HttpBody::from(hello.clone());
        let state = api.state.clone();
        async move {
            let response = router(state, 64 * 1024)
                .oneshot(request.body(body).unwrap())
                .await
                .unwrap();
            let status = response.status();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8_lossy(&bytes).to_string())
        }
    };
    let node = record.node;
    let cases: Vec<(&str, axum::http::request::Builder, StatusCode, &str)> = vec![
        (
            "signed by the node",
            signed_request(&child, node, now, 1, path, &hello, |_| {}, |_| {}),
            StatusCode::OK,
            "",
        ),
        (
            "the same nonce again",
            signed_request(&child, node, now, 1, path, &hello, |_| {}, |_| {}),
            StatusCode::UNAUTHORIZED,
            "nonce",
        ),
        (
            "signed by another key",
            signed_request(&stranger, node, now, 2, path, &hello, |_| {}, |_| {}),
            StatusCode::UNAUTHORIZED,
            "does not verify",
        ),
        (
            "an hour old",
            signed_request(
                &child,
                node,
                now - 3_600_000,
                3,
                path,
                &hello,
                |_| {},
                |_| {},
            ),
            StatusCode::UNAUTHORIZED,
            "clock",
        ),
        (
            "six minutes ahead",
            signed_request(&child, node, now + 360_000, 4, path, &hello, |_| {}, |_| {}),
            StatusCode::UNAUTHORIZED,
            "clock",
        ),
        (
            "an unknown node",
            signed_request(
                &stranger,
                stranger.node_id(),
                now,
                5,
                path,
                &hello,
                |_| {},
                |_| {},
            ),
            StatusCode::UNAUTHORIZED,
            "not known",
        ),
        (
            "the digest of another body",
            signed_request(
                &child,
                node,
                now,
                6,
                path,
                b"other",
                |_| {},
                |c| c.body_len = hello.len() as u64,
            ),
            StatusCode::UNAUTHORIZED,
            "does not verify",
        ),
        (
            "a digest altered after signing",
            signed_request(
                &child,
                node,
                now,
                7,
                path,
                &hello,
                |_| {},
                |c| c.body_sha256[0] ^= 1,
            ),
            StatusCode::UNAUTHORIZED,
            "does not verify",
        ),
        (
            "signed for another path",
            signed_request(
                &child,
                node,
                now,
                8,
                "/sync/v1/vector",
                &hello,
                |_| {},
                |_| {},
            )
            .uri(path),
            StatusCode::UNAUTHORIZED,
            "does not verify",
        ),
        (
            "unsigned (an older node)",
            Request::builder()
                .method(Method::POST)
                .uri(path)
                .header(header::CONTENT_LENGTH, hello.len()),
            StatusCode::UNAUTHORIZED,
            "upgrade",
        ),
    ];
    for (what, request, expected, says) in cases {
        let (status, body) = send(request).await;
        assert_eq!(status, expected, "{what}: {body}");
        assert!(body.contains(says), "{what}: {body}");
    }
}

/// Nothing of a refused request's body is read: not from an unknown node, not over the
/// route's limit, not without a length. What is read must match the signed digest.
#[tokio::test]
async fn sync_request_bodies_are_read_only_after_the_caller_is_known() {
    let api = api("subdistrict").await;
    let child = crate::identity::NodeKey::from_seed([5; 32]);
    let stranger = crate::identity::NodeKey::from_seed([6; 32]);
    let record = child
        .identity(
            yizhan_sync::auth::NodeRole::Station,
            yizhan_sync::domain::codes::DivisionCode::parse("440399001001").unwrap(),
            "c",
        )
        .record;
    api.store
        .pin_peer(record.clone(), crate::store::Relation::Child, None)
        .await
        .unwrap();
    let now = at("2026-03-02") as i64;
    let huge = 64 * 1024 * 1024 + 1;
    let cases = [
        (
            "an unknown node",
            signed_request(
                &stranger,
                stranger.node_id(),
                now,
                1,
                "/sync/v1/push",
                b"",
                |c| c.body_len = huge,
                |_| {},
            ),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "a push over the limit",
            signed_request(
                &child,
                record.node,
                now,
                2,
                "/sync/v1/push",
                b"",
                |c| c.body_len = huge,
                |_| {},
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "a pull over the limit",
            signed_request(
                &child,
                record.node,
                now,
                3,
                "/sync/v1/pull",
                b"",
                |c| c.body_len = 5 << 20,
                |_| {},
            ),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ];
    for (what, request, expected) in cases {
        let read = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let body = HttpBody::new(Untouched(read.clone()));
        let response = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            router(api.state.clone(), 64 * 1024).oneshot(request.body(body).unwrap()),
        )
        .await
        .expect("answered at once, without waiting for the body")
        .unwrap();
        assert_eq!(response.status(), expected, "{what}");
        assert!(
            !read.load(std::sync::atomic::Ordering::SeqCst),
            "{what}: the body was read"
        );
    }
    // A body that differs from the signed digest is read, then refused.
    let signed = signed_request(
        &child,
        record.node,
        now,
        4,
        "/sync/v1/vector",
        b"abc",
        |_| {},
        |_| {},
    );
    let response = router(api.state.clone(), 64 * 1024)
        .oneshot(signed.body(HttpBody::from("abd")).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let text = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "{}",
        String::from_utf8_lossy(&text)
    );
    assert!(String::from_utf8_lossy(&text).contains("digest"));
}

/// The public booking form, driven in-process: every kind of bad input gets a 4xx page
/// that says what is wrong, and changes nothing in the store. The clock is fixed at
/// Monday 2026-03-02 10:00 China time; the schedule is the default one (09:00–18:00, lunch
/// 12:00–14:00, Saturdays 09:00–12:00, 30-minute slots, 2 places, 7 working days).
#[tokio::test]
async fn bad_bookings_are_refused_with_a_message_and_store_nothing() {
    let api = api("station").await;
    let relief = demo_catalog()
        .into_iter()
        .find(|i| i.name == "最低生活保障申请")
        .unwrap();
    let code = relief.impl_code.to_string();
    let web = |method: Method, uri: String, cookie: Option<String>, form: Option<String>| {
        let state = api.state.clone();
        async move {
            let mut request = Request::builder().method(method).uri(uri);
            if let Some(cookie) = cookie {
                request = request.header(header::COOKIE, cookie);
            }
            if form.is_some() {
                request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            }
            let response = router(state, 64 * 1024)
                .oneshot(
                    request
                        .body(form.map_or_else(HttpBody::empty, HttpBody::from))
                        .unwrap(),
                )
                .await
                .unwrap();
            let status = response.status();
            let headers = response.headers().clone();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8_lossy(&bytes).to_string(), headers)
        }
    };
    let (status, page, headers) = web(
        Method::GET,
        format!("/appointments/book?item={code}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Today's slots before 10:00 are gone; 10:00 itself has started too.
    assert!(!page.contains("2026-03-02T09:30") && !page.contains("2026-03-02T10:00"));
    assert!(page.contains("2026-03-02T10:30") && page.contains("2026-03-10T17:30"));
    // Saturday mornings only; no Sunday; nothing past the seventh working day.
    assert!(page.contains("2026-03-07T09:00") && page.contains("2026-03-07T11:30"));
    assert!(!page.contains("2026-03-07T12:00") && !page.contains("2026-03-07T14:00"));
    assert!(!page.contains("2026-03-08T") && !page.contains("2026-03-11T"));
    assert!(
        !page.contains("2026-03-03T12:30"),
        "no slot in the lunch break"
    );
    let cookie = headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let secret = cookie.split_once('=').unwrap().1.to_string();
    let form = |item: &str, slot: &str, phone: &str| {
        format!(
            "csrf={secret}&item={item}&slot={}&name=%E6%9D%8E%E5%9B%9B&phone={phone}",
            slot.replace(':', "%3A")
        )
    };
    let before = api.store.content_digest().await.unwrap();
    for (body, cookie, status, says) in [
        (
            form(&code, "2026-03-02T09:30", "13800138000"),
            Some(cookie.clone()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "已经开始或已过去",
        ),
        (
            form(&code, "2026-03-08T09:30", "13800138000"),
            Some(cookie.clone()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "法定节假日",
        ),
        // Saturdays open in the morning only.
        (
            form(&code, "2026-03-07T14:00", "13800138000"),
            Some(cookie.clone()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "没有这个时段",
        ),
        (
            form(&code, "2026-03-20T09:30", "13800138000"),
            Some(cookie.clone()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "超出可预约的范围",
        ),
        (
            form(&code, "2026-03-03T12:30", "13800138000"),
            Some(cookie.clone()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "没有这个时段",
        ),
        (
            form(&code, "", "13800138000"),
            Some(cookie.clone()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "请选择一个预约时段",
        ),
        (
            form(&code, "2026-03-03T09:30", "12ab"),
            Some(cookie.clone()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "手机号码格式不正确",
        ),
        (
            form(
                "11440399990000017K4000599309999",
                "2026-03-03T09:30",
                "13800138000",
            ),
            Some(cookie.clone()),
            StatusCode::NOT_FOUND,
            "不存在或已停止受理",
        ),
        // Without the cookie's secret (another site's form): refused.
        (
            form(&code, "2026-03-03T09:30", "13800138000"),
            None,
            StatusCode::FORBIDDEN,
            "页面已过期",
        ),
    ] {
        let (got, page, _) = web(
            Method::POST,
            "/appointments/book".into(),
            cookie,
            Some(body.clone()),
        )
        .await;
        assert_eq!(got, status, "{body}");
        assert!(page.contains(says), "{body}: {page}");
        assert_eq!(api.store.content_digest().await.unwrap(), before, "{body}");
    }
    // Two places in a slot: the third booking is told it is full.
    let mut codes = Vec::new();
    for phone in ["13800138001", "13800138002"] {
        let (status, _, headers) = web(
            Method::POST,
            "/appointments/book".into(),
            Some(cookie.clone()),
            Some(form(&code, "2026-03-03T09:30", phone)),
        )
        .await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        codes.push(headers[header::LOCATION].to_str().unwrap().to_string());
    }
    let full = api.store.content_digest().await.unwrap();
    let (status, page, _) = web(
        Method::POST,
        "/appointments/book".into(),
        Some(cookie.clone()),
        Some(form(&code, "2026-03-03T09:30", "13800138003")),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(page.contains("已约满"));
    assert_eq!(api.store.content_digest().await.unwrap(), full);
    // The same phone again that day for the item: refused.
    let (status, page, _) = web(
        Method::POST,
        "/appointments/book".into(),
        Some(cookie.clone()),
        Some(form(&code, "2026-03-03T15:00", "13800138001")),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(page.contains("不能重复预约"));
    assert_eq!(api.store.content_digest().await.unwrap(), full);
    // The form shows the full slot as such.
    let (_, page, _) = web(
        Method::GET,
        format!("/appointments/book?item={code}"),
        Some(cookie.clone()),
        None,
    )
    .await;
    assert!(
        page.contains("value=\"2026-03-03T09:30\" disabled"),
        "{page}"
    );
    // The confirmation: code, day, time, item and what to bring; no phone.
    let (status, page, _) = web(Method::GET, codes[0].clone(), None, None).await;
    assert_eq!(status, StatusCode::OK);
    let booking_code = codes[0].rsplit('/').next().unwrap();
    assert!(
        page.contains(booking_code) && page.contains("2026-03-03") && page.contains("09:30–10:00")
    );
    assert!(page.contains(&relief.name) && page.contains(&relief.materials[0].name));
    assert!(!page.contains("13800138001"));
    let (status, _, _) = web(Method::GET, "/appointments/b/ZZZZZZZZ".into(), None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Cancelling takes the last four digits of the phone, and frees the place.
    let cancel = format!("{}/cancel", codes[1]);
    let (status, page, _) = web(
        Method::POST,
        cancel.clone(),
        Some(cookie.clone()),
        Some(format!("csrf={secret}&tail=0000")),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("后四位不符"));
    assert_eq!(api.store.content_digest().await.unwrap(), full);
    let (status, page, _) = web(
        Method::POST,
        cancel.clone(),
        Some(cookie.clone()),
        Some(format!("csrf={secret}&tail=8002")),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("预约已取消") && page.contains("已取消"));
    let (status, _, _) = web(
        Method::POST,
        "/appointments/book".into(),
        Some(cookie.clone()),
        Some(form(&code, "2026-03-03T09:30", "13800138003")),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "the freed place is taken");
    // The counter's list needs a session.
    let (status, _, headers) = web(Method::GET, "/appointments".into(), None, None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        headers[header::LOCATION]
            .to_str()
            .unwrap()
            .starts_with("/signin")
    );
}

/// Ratings entered for an applicant and closing a rectification are a lead's (or an
/// admin's), through the API as on the pages; a worker's token is refused and nothing
/// changes. Signing for a transfer to another node's hall is refused here.
#[tokio::test]
async fn ratings_and_rectifications_through_the_api_are_for_leads() {
    let api = api("station").await;
    let (worker, admin) = (Some(api.worker.as_str()), Some(api.admin.as_str()));
    let (status, created) = api
        .post("/api/v1/cases", worker, &application("最低生活保障申请"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let events = format!("/api/v1/cases/{}/events", created["id"].as_str().unwrap());
    // 代为受理: the station cannot decide (nor complete undecided) a case of an item it
    // accepts for the district bureau; it sends the case there, signs for it and enters
    // the bureau's decision on its behalf.
    let (status, _) = api.post(&events, worker, &json!({"kind": "accept"})).await;
    assert_eq!(status, StatusCode::OK);
    for body in [
        json!({"kind": "decide", "approved": true}),
        json!({"kind": "complete", "result": "准予", "delivery": "窗口领取"}),
    ] {
        let (status, refused) = api.post(&events, worker, &body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
        assert_eq!(refused["error"], "delegated_decision");
    }
    for body in [
        json!({"kind": "transfer", "to": "示范区民政局", "reason": "由区民政局审批"}),
        json!({"kind": "sign_for"}),
        json!({"kind": "decide", "approved": true}),
        json!({"kind": "complete", "result": "准予", "delivery": "窗口领取"}),
    ] {
        let (status, answer) = api.post(&events, worker, &body).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    let before = api.store.content_digest().await.unwrap();
    for body in [
        json!({"kind": "rate", "level": 5}),
        json!({"kind": "rectify", "response": "已整改"}),
        json!({"kind": "resolve", "void": ["x"], "reason": "核实"}),
    ] {
        let (status, answer) = api.post(&events, worker, &body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
        assert_eq!(answer["error"], "leads_only", "{answer}");
    }
    assert_eq!(api.store.content_digest().await.unwrap(), before);
    // An admin may: a bad rating opens a rectification, closed once.
    let (status, rated) = api
        .post(
            &events,
            admin,
            &json!({"kind": "rate", "level": 1, "comment": "态度差"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rated}");
    assert_eq!(rated["rating"], 1);
    // Rated on 2026-03-02 (the test clock): 15 working days later.
    assert_eq!(rated["rectify_due"], "2026-03-23");
    assert_eq!(rated["rectified_on"], Value::Null);
    assert_eq!(rated["delegated_by"], "示范区民政局");
    let (status, again) = api
        .post(&events, admin, &json!({"kind": "rate", "level": 5}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    let (status, closed) = api
        .post(
            &events,
            admin,
            &json!({"kind": "rectify", "response": "已约谈并回访"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{closed}");
    assert_eq!(closed["rectified_on"], "2026-03-02");
    let (status, _) = api
        .post(
            &events,
            admin,
            &json!({"kind": "rectify", "response": "再次"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    // Nothing to resolve: a clear refusal.
    let (status, nothing) = api
        .post(
            &events,
            admin,
            &json!({"kind": "resolve", "void": ["x"], "reason": "核实"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{nothing}");
    assert_eq!(nothing["error"], "nothing_to_resolve", "{nothing}");

    // A transfer to another node's hall: only that node signs for it.
    let (_, other) = api
        .post("/api/v1/cases", worker, &application("最低生活保障申请"))
        .await;
    let events = format!("/api/v1/cases/{}/events", other["id"].as_str().unwrap());
    api.post(&events, worker, &json!({"kind": "accept"})).await;
    let (status, sent) = api
        .post(
            &events,
            worker,
            &json!({"kind": "transfer", "to": "园岭街道", "reason": "需街道审核", "to_node": "02".repeat(16)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{sent}");
    assert_eq!(sent["holder_node"], "02".repeat(16));
    assert_eq!(sent["signed_on"], Value::Null);
    let (status, refused) = api
        .post(&events, worker, &json!({"kind": "sign_for"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert_eq!(refused["error"], "not_the_holder");
}

/// A station that takes no appointments links to none, and its booking page says so.
#[tokio::test]
async fn a_station_without_appointments_shows_no_links_to_them() {
    let api = api("station").await;
    let page = |state: AppState, uri: &'static str| async move {
        let response = router(state, 64 * 1024)
            .oneshot(Request::builder().uri(uri).body(HttpBody::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&bytes).to_string())
    };
    let (_, with) = page(api.state.clone(), "/signin").await;
    assert!(with.contains("nav-book"));
    let mut without = api.state.clone();
    without.web.appointments = None;
    let (status, signin) = page(without.clone(), "/signin").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!signin.contains("nav-book") && !signin.contains("/appointments"));
    assert!(signin.contains("nav-status-public"));
    let (status, _) = page(without, "/appointments/book").await;
    assert!(status.is_client_error(), "{status}");
}

/// Every staff form goes through one extractor (`web::StaffForm`, `web::CaseForm`):
/// without a session it leads to the sign-in page, with a wrong CSRF token it is refused
/// with a 403 page, a case id that names no case is a 404 page, and none of them changes
/// anything.
#[tokio::test]
async fn staff_forms_need_a_session_and_its_csrf_token() {
    let api = api("station").await;
    let (status, created) = api
        .post(
            "/api/v1/cases",
            Some(&api.worker),
            &application("居住证申领"),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = created["id"].as_str().unwrap().to_string();
    let users = api.store.list_users().await.unwrap();
    let worker = users.iter().find(|u| u.username == "worker").unwrap();
    let now = at("2026-03-02");
    let sessions = &api.state.web.sessions;
    let token = sessions.start(worker, crate::web::session::credential_of("unused"), now);
    let csrf = sessions.touch(&token, now).unwrap().csrf;
    let post = |uri: String, cookie: Option<String>, form: String| {
        let state = api.state.clone();
        async move {
            let mut request = Request::builder()
                .method(Method::POST)
                .uri(uri)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            if let Some(cookie) = cookie {
                request = request.header(header::COOKIE, cookie);
            }
            let response = router(state, 64 * 1024)
                .oneshot(request.body(HttpBody::from(form)).unwrap())
                .await
                .unwrap();
            let status = response.status();
            let location = response
                .headers()
                .get(header::LOCATION)
                .map(|l| l.to_str().unwrap().to_string());
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (
                status,
                location,
                String::from_utf8_lossy(&bytes).to_string(),
            )
        }
    };
    let before = api.store.content_digest().await.unwrap();
    let cookie = format!("yz_session={token}");
    for path in [
        "/cases".to_string(),
        format!("/cases/{id}/supplement"),
        format!("/cases/{id}/act"),
        format!("/cases/{id}/refuse"),
        "/notices/TZ0-1/correct".to_string(),
        "/signout".to_string(),
    ] {
        let form = format!("csrf={csrf}&kind=withdraw&reason=x&basis=x&remedies=x&s_0=1");
        let (status, location, _) = post(path.clone(), None, form).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{path} without a session");
        assert!(location.unwrap().starts_with("/signin?next="), "{path}");
        let form = "csrf=0000&kind=withdraw&reason=x&basis=x&remedies=x&s_0=1".to_string();
        let (status, _, page) = post(path.clone(), Some(cookie.clone()), form).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path} with a wrong token");
        assert!(page.contains("未做任何更改"), "{path}: {page}");
    }
    let (status, _, _) = post(
        "/cases/not-a-case/act".to_string(),
        Some(cookie.clone()),
        format!("csrf={csrf}&kind=withdraw&reason=x"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Ids of an item or a registry name no case: a 404 page on every case path.
    let item = demo_catalog().into_iter().next().unwrap();
    let item_id = yizhan_sync::domain::item::Item::doc_id_for(&item.impl_code).to_string();
    for other in [item_id.as_str(), "r-440399001001", "r-440399"] {
        for action in ["act", "supplement", "refuse"] {
            let (status, _, page) = post(
                format!("/cases/{other}/{action}"),
                Some(cookie.clone()),
                format!("csrf={csrf}&kind=withdraw&reason=x&basis=x&remedies=x&s_0=1"),
            )
            .await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{other}/{action}: {page}");
        }
        let response = router(api.state.clone(), 64 * 1024)
            .oneshot(
                Request::builder()
                    .uri(format!("/cases/{other}"))
                    .header(header::COOKIE, cookie.clone())
                    .body(HttpBody::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "/cases/{other}");
    }
    // A reason with a right-to-left override: a 422 page saying which field and which
    // character, in the page's language.
    let (status, _, page) = post(
        format!("/cases/{id}/act"),
        Some(cookie.clone()),
        format!("csrf={csrf}&kind=withdraw&reason=%E2%80%AEx"),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(
        page.contains("理由含有不可见的控制字符") && page.contains("U+202E"),
        "{page}"
    );
    assert_eq!(api.store.content_digest().await.unwrap(), before);
    assert!(sessions.touch(&token, now).is_some(), "still signed in");
}

/// Each link's state is visible: the admin page (with a "sync now" button that reaches
/// the driver), `/api/v1/sync/status` and `/metrics` show whether the parent link and a
/// child's link are live, when they last connected, and the retry delay while failing.
#[tokio::test]
async fn every_link_shows_whether_it_is_live_and_a_sync_can_be_asked_for() {
    let api = api("subdistrict").await;
    let parent = crate::identity::NodeKey::from_seed([11; 32])
        .identity(
            yizhan_sync::auth::NodeRole::District,
            yizhan_sync::domain::codes::DivisionCode::parse("440300").unwrap(),
            "区中心",
        )
        .record;
    let child = crate::identity::NodeKey::from_seed([12; 32])
        .identity(
            yizhan_sync::auth::NodeRole::Station,
            yizhan_sync::domain::codes::DivisionCode::parse("440399001001").unwrap(),
            "社区站",
        )
        .record;
    api.store
        .pin_peer(
            parent.clone(),
            crate::store::Relation::Parent,
            Some("http://hall".into()),
        )
        .await
        .unwrap();
    api.store
        .pin_peer(child.clone(), crate::store::Relation::Child, None)
        .await
        .unwrap();
    let links = api.state.api.links.clone();
    let now = at("2026-03-02");
    links.update_parent(|link| {
        link.up = true;
        link.live = true;
        link.last_connected_ms = Some(now);
    });
    let _held = links.child_waiting(child.node, now);

    let (status, sync) = api.get("/api/v1/sync/status", Some(&api.admin)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(sync["parent_link_live"], true, "{sync}");
    let peer = |relation: &str| {
        sync["peers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["relation"] == relation)
            .unwrap()
            .clone()
    };
    assert_eq!(peer("parent")["live"], true);
    assert_eq!(peer("child")["live"], true);
    assert!(peer("child")["last_connected_at"].is_string(), "{sync}");

    let users = api.store.list_users().await.unwrap();
    let sessions = &api.state.web.sessions;
    let session = |name: &str| {
        let user = users.iter().find(|u| u.username == name).unwrap();
        let token = sessions.start(user, crate::web::session::credential_of("unused"), now);
        let csrf = sessions.touch(&token, now).unwrap().csrf;
        (format!("yz_session={token}"), csrf)
    };
    let (admin, csrf) = session("admin");
    let web = |method: Method, uri: &str, cookie: &str, form: Option<String>| {
        let state = api.state.clone();
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::COOKIE, cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(form.map_or_else(HttpBody::empty, HttpBody::from))
            .unwrap();
        async move {
            let response = router(state, 64 * 1024).oneshot(request).await.unwrap();
            let status = response.status();
            let location = response
                .headers()
                .get(header::LOCATION)
                .map(|l| l.to_str().unwrap().to_string());
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (
                status,
                location,
                String::from_utf8_lossy(&bytes).to_string(),
            )
        }
    };
    let (status, _, page) = web(Method::GET, "/admin/status", &admin, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("实时连接：上级收到的本站相关变更会立即同步到本机"),
        "{page}"
    );
    assert!(
        page.contains("<td>实时</td>"),
        "the child's row says live: {page}"
    );
    assert!(page.contains("立即同步"));

    // The button asks the driver for a session; without the token, or as a worker,
    // nothing is asked.
    let (worker, worker_csrf) = session("worker");
    let (status, _, _) = web(
        Method::POST,
        "/admin/sync",
        &worker,
        Some(format!("csrf={worker_csrf}")),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = web(Method::POST, "/admin/sync", &admin, Some("csrf=0".into())).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let asked = tokio::time::timeout(std::time::Duration::from_millis(50), links.sync_requested());
    assert!(asked.await.is_err(), "nothing was asked yet");
    let (status, location, _) = web(
        Method::POST,
        "/admin/sync",
        &admin,
        Some(format!("csrf={csrf}")),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location.as_deref(), Some("/admin/status?sync=started"));
    tokio::time::timeout(std::time::Duration::from_secs(1), links.sync_requested())
        .await
        .expect("the driver is asked for a session");
    let (_, _, page) = web(Method::GET, "/admin/status?sync=started", &admin, None).await;
    assert!(page.contains("已开始与上级节点同步"), "{page}");

    // A failing link shows why and the wait before the next attempt.
    links.update_parent(|link| {
        link.up = false;
        link.live = false;
        link.failure = Some(crate::links::Failure::Unreachable);
        link.retry_delay_ms = Some(4_000);
    });
    let (_, _, page) = web(Method::GET, "/admin/status", &admin, None).await;
    assert!(page.contains("无法连接上级节点；4 秒后重试"), "{page}");
    let (_, sync) = api.get("/api/v1/sync/status", Some(&api.admin)).await;
    assert_eq!(
        (
            sync["parent_failure"].as_str(),
            sync["parent_retry_delay_secs"].as_f64()
        ),
        (Some("unreachable"), Some(4.0))
    );
    let response = router(api.state.clone(), 64 * 1024)
        .oneshot(
            Request::builder()
                .uri("/metrics")
                .body(HttpBody::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let text = String::from_utf8(
        response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    for line in [
        "yizhan_sync_parent_link_live 0",
        "yizhan_sync_parent_retry_delay_seconds 4",
        "yizhan_sync_children_live 1",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
}

/// A station of the hall, pinned as its child, and its key.
async fn child_of(
    api: &Api,
    seed: u8,
    division: &str,
) -> (crate::identity::NodeKey, yizhan_sync::auth::NodeRecord) {
    let key = crate::identity::NodeKey::from_seed([seed; 32]);
    let record = key
        .identity(
            yizhan_sync::auth::NodeRole::Station,
            yizhan_sync::domain::codes::DivisionCode::parse(division).unwrap(),
            "c",
        )
        .record;
    api.store
        .pin_peer(record.clone(), crate::store::Relation::Child, None)
        .await
        .unwrap();
    (key, record)
}

/// A signed sync request by `key` to `path` with `body`, sent to the router.
fn sync_call(
    api: &Api,
    key: &crate::identity::NodeKey,
    nonce: u8,
    path: &'static str,
    body: Vec<u8>,
) -> impl std::future::Future<Output = axum::response::Response> + use<> {
    let request = signed_request(
        key,
        key.node_id(),
        at("2026-03-02") as i64,
        nonce,
        path,
        &body,
        |_| {},
        |_| {},
    )
    .body(HttpBody::from(body))
    .unwrap();
    let state = api.state.clone();
    async move { router(state, 64 * 1024).oneshot(request).await.unwrap() }
}

/// A hall that serves as many sessions as it takes lets the next child wait a moment for
/// a place (one frees when a child's session ends with its long-poll), and after that
/// tells it when to come back: 503 with a `Retry-After` of 2 to 8 s.
#[tokio::test]
async fn a_full_hall_queues_a_session_briefly_then_says_when_to_come_back() {
    use yizhan_sync::wire::Message;
    let mut api = api("subdistrict").await;
    api.state.api.sync = Arc::new(super::sync::SyncServer::new(super::sync::SyncLimits {
        max_sessions: 1,
        ..Default::default()
    }));
    let (a, _) = child_of(&api, 21, "440399001001").await;
    let (b, _) = child_of(&api, 22, "440399001002").await;
    let (c, _) = child_of(&api, 23, "440399001003").await;
    let empty = yizhan_sync::feed::Pull {
        scopes: vec![],
        have: Default::default(),
        max_bytes: 0,
    }
    .encode();
    let response = sync_call(&api, &a, 1, "/sync/v1/vector", Vec::new()).await;
    assert_eq!(response.status(), StatusCode::OK, "a takes the only place");
    let b_waits = tokio::spawn(sync_call(&api, &b, 1, "/sync/v1/vector", Vec::new()));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!b_waits.is_finished(), "b waits for the place");
    // a's session ends: it asks for news.
    let a_holds = tokio::spawn(sync_call(&api, &a, 2, "/sync/v1/wait", empty));
    let response = tokio::time::timeout(std::time::Duration::from_secs(2), b_waits)
        .await
        .expect("b gets the place a gave back")
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let started = std::time::Instant::now();
    let response = sync_call(&api, &c, 1, "/sync/v1/vector", Vec::new()).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(2),
        "c waited in the queue first"
    );
    let retry: u32 = response.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((2..=8).contains(&retry), "{retry}");
    let body: Value =
        serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert_eq!(body["error"], "busy", "{body}");
    a_holds.abort();
}

/// A child's long-poll answers as soon as the hall has something the child may read
/// beyond what it holds, and not for what it may not read.
#[tokio::test]
async fn a_long_poll_answers_when_something_for_the_child_arrives() {
    use yizhan_sync::wire::Message;
    let api = api("subdistrict").await;
    let (child, _) = child_of(&api, 31, "440399001001").await;
    let pull = |have| {
        yizhan_sync::feed::Pull {
            scopes: vec![],
            have,
            max_bytes: 0,
        }
        .encode()
    };
    // Behind the hall: answered at once.
    let response = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        sync_call(&api, &child, 1, "/sync/v1/wait", pull(Default::default())),
    )
    .await
    .expect("answered at once");
    assert_eq!(response.status(), StatusCode::OK);
    // Up to date: held.
    let have = api.store.vector().await.unwrap();
    let waiting = tokio::spawn(sync_call(&api, &child, 2, "/sync/v1/wait", pull(have)));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!waiting.is_finished());
    let elsewhere = yizhan_sync::ids::Scope::catalog(
        &yizhan_sync::domain::codes::DivisionCode::parse("440398").unwrap(),
    );
    let mut other = crate::store::tests::item("居住证申领");
    other.impl_code =
        yizhan_sync::domain::codes::ImplCode::parse("1144039899000001754000599301000").unwrap();
    api.store
        .publish_item(elsewhere, other, at("2026-03-02"))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "another district's catalog is not news here"
    );
    let own = yizhan_sync::ids::Scope::catalog(
        &yizhan_sync::domain::codes::DivisionCode::parse("440399").unwrap(),
    );
    let mut item = crate::store::tests::item("居住证申领");
    item.version += 1;
    api.store
        .publish_item(own, item, at("2026-03-02"))
        .await
        .unwrap();
    let response = tokio::time::timeout(std::time::Duration::from_secs(2), waiting)
        .await
        .expect("news answers the long-poll")
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// A full disk: the API answers 507 `disk_full`, a page 507 in its language, nothing
/// confirmed before is lost, and writes work again once there is room.
#[tokio::test]
async fn a_full_disk_is_a_507_that_loses_nothing() {
    let api = api("station").await;
    let token = Some(api.worker.as_str());
    let (status, kept) = api
        .post("/api/v1/cases", token, &application("居住证申领"))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let kept = format!("/api/v1/cases/{}", kept["id"].as_str().unwrap());
    // A few pages more than the file holds, so that several cases fit whatever the free
    // pages the catalog left: each withdrawal below then has a case.
    crate::store::tests::limit_growth(&api.store, Some(4)).await;
    // Writes fill the free pages left inside the file, then meet the full disk.
    let mut confirmed = vec![kept.clone()];
    let value = loop {
        let (status, value) = api
            .post("/api/v1/cases", token, &application("居住证申领"))
            .await;
        match status {
            StatusCode::CREATED => {
                confirmed.push(format!("/api/v1/cases/{}", value["id"].as_str().unwrap()));
                assert!(confirmed.len() < 100, "the disk never filled");
            }
            StatusCode::INSUFFICIENT_STORAGE => break value,
            other => panic!("{other}: {value}"),
        }
    };
    assert_eq!(value["error"], "disk_full");
    assert!(
        value["message"].as_str().unwrap().contains("磁盘已满"),
        "{value}"
    );

    // The same through a page, in Chinese and in English.
    let users = api.store.list_users().await.unwrap();
    let worker = users.iter().find(|u| u.username == "worker").unwrap();
    let now = at("2026-03-02");
    let session =
        api.state
            .web
            .sessions
            .start(worker, crate::web::session::credential_of("unused"), now);
    let csrf = api.state.web.sessions.touch(&session, now).unwrap().csrf;
    // A withdrawal writes far less than a new case: it may still fit in pages left free,
    // and is then confirmed like any write; the first that does not is a 507.
    let mut to_withdraw = confirmed.clone().into_iter();
    for (lang, words) in [("zh-CN", "磁盘已满"), ("en", "The disk is full")] {
        let page = loop {
            let case = to_withdraw
                .next()
                .expect("the disk fills before every case is withdrawn");
            let case_id = case.rsplit('/').next().unwrap().to_string();
            let before = api.store.content_digest().await.unwrap();
            let response = router(api.state.clone(), 64 * 1024)
                .oneshot(
                    Request::builder()
                        .method(Method::POST)
                        .uri(format!("/cases/{case_id}/act"))
                        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                        .header(
                            header::COOKIE,
                            format!("yz_session={session}; yz_lang={lang}"),
                        )
                        .body(HttpBody::from(format!(
                            "csrf={csrf}&kind=withdraw&reason=%E6%9C%AC%E4%BA%BA%E8%A6%81%E6%B1%82"
                        )))
                        .unwrap(),
                )
                .await
                .unwrap();
            match response.status() {
                StatusCode::SEE_OTHER => continue,
                StatusCode::INSUFFICIENT_STORAGE => {
                    assert_eq!(api.store.content_digest().await.unwrap(), before);
                    let bytes = response.into_body().collect().await.unwrap().to_bytes();
                    break String::from_utf8_lossy(&bytes).into_owned();
                }
                other => panic!("{lang}: {other}"),
            }
        };
        assert!(page.contains(words), "{lang}: {page}");
    }
    for case in &confirmed {
        let (status, _) = api.get(case, token).await;
        assert_eq!(status, StatusCode::OK, "{case}");
    }

    crate::store::tests::limit_growth(&api.store, None).await;
    let (status, _) = api
        .post("/api/v1/cases", token, &application("居住证申领"))
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

/// A browser over the router: cookies kept, a client address of its own.
struct Browser {
    state: AppState,
    address: std::net::SocketAddr,
    cookies: std::collections::BTreeMap<String, String>,
}

impl Browser {
    fn new(state: &AppState, address: &str) -> Browser {
        Browser {
            state: state.clone(),
            address: std::net::SocketAddr::new(address.parse().unwrap(), 40_000),
            cookies: Default::default(),
        }
    }

    /// Sends a request; returns the status, the `Retry-After` seconds and the body.
    async fn send(
        &mut self,
        method: Method,
        uri: &str,
        form: Option<String>,
    ) -> (StatusCode, Option<u64>, String) {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::COOKIE, cookie);
        if form.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        let mut request = request
            .body(form.map_or_else(HttpBody::empty, HttpBody::from))
            .unwrap();
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(crate::tls::ClientAddr(
                self.address,
            )));
        let response = router(self.state.clone(), 64 * 1024)
            .oneshot(request)
            .await
            .unwrap();
        for value in response.headers().get_all(header::SET_COOKIE) {
            let text = value.to_str().unwrap();
            let (name, value) = text.split(';').next().unwrap().split_once('=').unwrap();
            if value.is_empty() || text.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_string(), value.to_string());
            }
        }
        let status = response.status();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().parse().unwrap());
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            retry_after,
            String::from_utf8_lossy(&bytes).to_string(),
        )
    }

    /// Sends any body with the given headers (a script's `fetch`); returns the status,
    /// the content type and the body.
    async fn send_raw(
        &mut self,
        uri: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (StatusCode, String, Vec<u8>) {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(header::COOKIE, cookie);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut request = request.body(HttpBody::from(body)).unwrap();
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(crate::tls::ClientAddr(
                self.address,
            )));
        let response = router(self.state.clone(), 64 * 1024)
            .oneshot(request)
            .await
            .unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, content_type, bytes.to_vec())
    }

    /// Signs in through the form, as a browser does.
    async fn sign_in(&mut self, username: &str, password: &str) -> (StatusCode, Option<u64>) {
        let (_, _, form) = self.send(Method::GET, "/signin", None).await;
        let marker = "name=\"csrf\" value=\"";
        let start = form.find(marker).unwrap() + marker.len();
        let csrf = form[start..].split('"').next().unwrap().to_string();
        let (status, retry_after, _) = self
            .send(
                Method::POST,
                "/signin",
                Some(format!(
                    "username={username}&password={password}&csrf={csrf}&next=/"
                )),
            )
            .await;
        (status, retry_after)
    }
}

/// Sign-in and the applicant's status page under attack from other addresses: the
/// attacker is slowed, the real user still signs in and still sees their case.
#[tokio::test]
async fn an_attackers_failures_never_keep_the_real_user_out() {
    let api = api("station").await;
    let password = "correct-horse-battery";
    api.store
        .add_user(
            NewUser {
                username: "li".into(),
                display_name: "李敏".into(),
                role: Role::Worker,
                counter: "1号窗口".into(),
                password_hash: crate::accounts::hash_password(password).unwrap(),
            },
            0,
        )
        .await
        .unwrap();
    // The user's own counter PC has signed in before.
    let mut counter = Browser::new(&api.state, "10.0.0.5");
    assert_eq!(
        counter.sign_in("li", password).await.0,
        StatusCode::SEE_OTHER
    );
    assert!(counter.cookies.contains_key("yz_device"));
    counter.cookies.remove("yz_session");

    // A guesser on the station's Wi-Fi: the fifth wrong password already says to wait,
    // and the right password from that browser waits too.
    let mut thief = Browser::new(&api.state, "10.0.0.66");
    let mut statuses = Vec::new();
    for n in 0..40 {
        statuses.push(thief.sign_in("li", &format!("guess-{n}")).await.0);
    }
    assert!(
        statuses[..4].iter().all(|s| *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    assert!(
        statuses[4..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    let (status, wait) = thief.sign_in("li", password).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(wait.is_some_and(|w| w >= 1));
    // And from many other addresses at once, enough to slow the account everywhere.
    for n in 0..8 {
        let mut botnet = Browser::new(&api.state, &format!("198.51.100.{n}"));
        for m in 0..3 {
            botnet.sign_in("li", &format!("bot-{n}-{m}")).await;
        }
    }

    // The user's counter PC signs in at once, even from a new address (DHCP).
    assert_eq!(
        counter.sign_in("li", password).await.0,
        StatusCode::SEE_OTHER
    );
    counter.address = "10.0.0.77:40000".parse().unwrap();
    counter.cookies.remove("yz_session");
    assert_eq!(
        counter.sign_in("li", password).await.0,
        StatusCode::SEE_OTHER
    );
    // A browser the user never used waits a while, then signs in: slowed, not locked.
    let mut new_browser = Browser::new(&api.state, "10.0.0.5");
    let (status, wait) = new_browser.sign_in("li", password).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let wait = wait.unwrap();
    assert!(wait <= 5 * 60, "{wait} s");
    let mut later = api.state.clone();
    later.web.clock = Arc::new(FixedClock(at("2026-03-02") + wait * 1000));
    new_browser.state = later;
    assert_eq!(
        new_browser.sign_in("li", password).await.0,
        StatusCode::SEE_OTHER
    );

    // The applicant's status page: a stranger misses many times on the case's number
    // from several addresses; the applicant still sees the case from theirs.
    let token = Some(api.worker.as_str());
    let (_, created) = api
        .post("/api/v1/cases", token, &application("居住证申领"))
        .await;
    let id = created["id"].as_str().unwrap();
    let (_, accepted) = api
        .post(
            &format!("/api/v1/cases/{id}/events"),
            token,
            &json!({"kind": "accept"}),
        )
        .await;
    let serial = accepted["serial_no"].as_str().unwrap().to_string();
    let lookup = |digits: &str| Some(format!("serial={serial}&phone4={digits}"));
    let mut stranger = Browser::new(&api.state, "2001:db8:7:7::1");
    for n in 0..10 {
        let (status, _, _) = stranger
            .send(Method::POST, "/status", lookup(&format!("{n:04}")))
            .await;
        let expected = if n < 5 {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::TOO_MANY_REQUESTS
        };
        assert_eq!(status, expected, "miss {n}");
    }
    // Another address in the stranger's /64 is the same place.
    let mut same_64 = Browser::new(&api.state, "2001:db8:7:7:ffff::2");
    let (status, _, _) = same_64.send(Method::POST, "/status", lookup("8000")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    for n in 0..6 {
        let mut elsewhere = Browser::new(&api.state, &format!("203.0.113.{n}"));
        for m in 0..4 {
            elsewhere
                .send(Method::POST, "/status", lookup(&format!("9{n}{m}0")))
                .await;
        }
    }
    let mut applicant = Browser::new(&api.state, "10.0.0.9");
    let (status, _, page) = applicant
        .send(Method::POST, "/status", lookup("8000"))
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("public-status"), "{page}");
}

/// An error's `message` is in the caller's `Accept-Language` (Chinese when absent), its
/// `error` code the same in every language; unknown API paths answer JSON, unknown
/// pages a page in the reader's language.
#[tokio::test]
async fn error_messages_follow_accept_language_with_the_same_code() {
    let api = api("station").await;
    let token = Some(api.worker.as_str());
    let (_, created) = api
        .post("/api/v1/cases", token, &application("居住证申领"))
        .await;
    let events = format!("/api/v1/cases/{}/events", created["id"].as_str().unwrap());
    let resume = serde_json::to_vec(&json!({"kind": "resume"})).unwrap();
    let mut answers = Vec::new();
    for language in [None, Some("zh-CN,zh;q=0.9"), Some("en-US,en;q=0.8")] {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(&events)
            .header(header::AUTHORIZATION, format!("Bearer {}", api.worker))
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(language) = language {
            request = request.header(header::ACCEPT_LANGUAGE, language);
        }
        let response = router(api.state.clone(), 64 * 1024)
            .oneshot(request.body(HttpBody::from(resume.clone())).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CONFLICT);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        answers.push(serde_json::from_slice::<Value>(&bytes).unwrap());
    }
    for answer in &answers {
        assert_eq!(answer["error"], "not_allowed", "{answer}");
    }
    let (zh, zh_asked, en) = (
        &answers[0]["message"],
        &answers[1]["message"],
        &answers[2]["message"],
    );
    assert_eq!(zh, zh_asked);
    assert_eq!(zh, "本件当前为“已收件”，不能“结束特别程序”。");
    assert_eq!(
        en,
        "This case is “Received”: “End the special procedure” is not possible now."
    );
    // Unknown paths: JSON under the API, a page elsewhere.
    let (status, value, headers) = api.send(Method::GET, "/api/v1/nothing", None, None).await;
    assert_eq!(
        (status, value["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .contains("json")
    );
    let response = router(api.state.clone(), 64 * 1024)
        .oneshot(
            Request::get("/no/such/page")
                .body(HttpBody::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let page = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(
        page.contains("<html lang=\"zh-CN\">") && page.contains("没有找到"),
        "{page}"
    );
}

/// `?open=true` lists the open cases, `?q=` finds one, and a case says what its caller
/// may record on it (the engine's allowed actions, exactly what the events route takes).
#[tokio::test]
async fn open_cases_search_and_allowed_actions_through_the_api() {
    let api = api("station").await;
    let token = Some(api.worker.as_str());
    let (_, received) = api
        .post("/api/v1/cases", token, &application("居住证申领"))
        .await;
    // All materials in: acceptance is offered, refusal too, nothing of a later stage.
    let allowed: Vec<&str> = received["allowed_actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert!(
        allowed.contains(&"accept") && allowed.contains(&"refuse"),
        "{allowed:?}"
    );
    assert!(!allowed.contains(&"resume") && !allowed.contains(&"extend"));
    let id = received["id"].as_str().unwrap().to_string();
    let (_, accepted) = api
        .post(
            &format!("/api/v1/cases/{id}/events"),
            token,
            &json!({"kind": "accept"}),
        )
        .await;
    let allowed = accepted["allowed_actions"].to_string();
    assert!(
        allowed.contains("request_extension") && !allowed.contains("\"extend\""),
        "a worker asks for an extension: {allowed}"
    );
    let (_, withdrawn) = api
        .post("/api/v1/cases", token, &application("居住证申领"))
        .await;
    let other = withdrawn["id"].as_str().unwrap();
    api.post(
        &format!("/api/v1/cases/{other}/events"),
        token,
        &json!({"kind": "withdraw", "reason": "申请人撤回"}),
    )
    .await;
    let (status, open) = api.get("/api/v1/cases?open=true", token).await;
    assert_eq!(status, StatusCode::OK, "{open}");
    let open_ids: Vec<&str> = open["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert!(open_ids.contains(&id.as_str()) && !open_ids.contains(&other));
    let code = accepted["query_code"].as_str().unwrap();
    assert_eq!(code.len(), 8);
    let (_, found) = api
        .get(&format!("/api/v1/cases?q={}", code.to_lowercase()), token)
        .await;
    let found: Vec<&str> = found["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(found, vec![id.as_str()]);
}

/// One rule, one place (issue "One engine"): a worker's lead-only act (extending the
/// limits directly, rather than asking a lead) is refused by the engine once, with the
/// same code and the same words through the API and on the case page, and changes
/// nothing.
#[tokio::test]
async fn a_workers_lead_only_act_is_refused_alike_by_the_api_and_the_page() {
    use yizhan_sync::domain::case::{ActionKind, CaseError};
    let api = api("station").await;
    let password = "correct-horse-battery";
    api.store
        .add_user(
            NewUser {
                username: "li".into(),
                display_name: "李敏".into(),
                role: Role::Worker,
                counter: "1号窗口".into(),
                password_hash: crate::accounts::hash_password(password).unwrap(),
            },
            0,
        )
        .await
        .unwrap();
    let (token, hash) = generate_token();
    api.store
        .add_token("li".into(), hash, "test".into(), 0)
        .await
        .unwrap();
    let li = Some(token.as_str());
    let (status, created) = api
        .post("/api/v1/cases", li, &application("居住证申领"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let events = format!("/api/v1/cases/{id}/events");
    let (status, accepted) = api.post(&events, li, &json!({"kind": "accept"})).await;
    assert_eq!(status, StatusCode::OK, "{accepted}");
    let before = api.store.content_digest().await.unwrap();
    let expected = crate::i18n::Tr::of(crate::i18n::Lang::Zh).words(&crate::i18n::Words::from(
        &CaseError::LeadsOnly {
            action: ActionKind::Extend,
        },
    ));

    let (status, answer) = api
        .post(
            &events,
            li,
            &json!({"kind": "extend", "days": 5, "reason": "需要现场核查"}),
        )
        .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("leads_only")),
        "{answer}"
    );
    assert_eq!(answer["message"], expected.as_str(), "{answer}");

    let mut browser = Browser::new(&api.state, "10.0.0.5");
    assert_eq!(
        browser.sign_in("li", password).await.0,
        StatusCode::SEE_OTHER
    );
    let (status, _, page) = browser
        .send(Method::GET, &format!("/cases/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !page.contains("name=\"kind\" value=\"extend\""),
        "the page does not offer a worker the lead's act"
    );
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).unwrap() + marker.len();
    let csrf = page[start..].split('"').next().unwrap().to_string();
    let (status, _, refused) = browser
        .send(
            Method::POST,
            &format!("/cases/{id}/act"),
            Some(format!("csrf={csrf}&kind=extend&days=5&reason=x")),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    assert!(refused.contains(&expected), "{expected} not in the page");
    assert_eq!(api.store.content_digest().await.unwrap(), before);
}

/// Issue 14: a case accepted through the API gets its sealed receipt, which
/// `/api/v1/notices/{number}` serves with its seal checked.
#[tokio::test]
async fn an_acceptance_through_the_api_seals_a_receipt() {
    let api = api("station").await;
    let token = Some(api.worker.as_str());
    let (status, created) = api
        .post("/api/v1/cases", token, &application("居住证申领"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["notices"], json!([]));
    let id = created["id"].as_str().unwrap();
    let (status, accepted) = api
        .post(
            &format!("/api/v1/cases/{id}/events"),
            token,
            &json!({"kind": "accept"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{accepted}");
    let numbers = accepted["notices"].as_array().unwrap();
    assert_eq!(numbers.len(), 1, "{accepted}");
    let number = numbers[0].as_str().unwrap();
    let (status, notice) = api.get(&format!("/api/v1/notices/{number}"), token).await;
    assert_eq!(status, StatusCode::OK, "{notice}");
    assert_eq!(notice["kind"], "receipt");
    assert_eq!(notice["case_id"], id);
    assert_eq!(notice["valid"], true, "{notice}");
    assert_eq!(notice["content"]["serial_no"], accepted["serial_no"]);
    assert_eq!(notice["content"]["staff"], "worker");
    let (status, _) = api.get(&format!("/api/v1/notices/{number}"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for bad in ["TZ-999999", "a%20b", &"A".repeat(65)] {
        let (status, body) = api.get(&format!("/api/v1/notices/{bad}"), token).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found")),
            "{bad}"
        );
    }
}

/// Issue 14: supervision through the API at a district: who may issue, the bounds, the
/// list and its filters; a hall does not reply for its station.
#[tokio::test]
async fn supervision_is_issued_listed_and_refused_by_the_engines_rules() {
    let api = api("district").await;
    let (admin, worker) = (Some(api.admin.as_str()), Some(api.worker.as_str()));
    let notice = json!({
        "station": "440399001001",
        "reason": "本月逾期办件较多",
        "todo": "五个工作日内说明原因并整改",
        "reply_days": 5,
    });
    let (status, body) = api.post("/api/v1/supervision", worker, &notice).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("supervision_supervisors_only"))
    );
    let mut elsewhere = notice.clone();
    elsewhere["station"] = json!("440305001001");
    let (status, body) = api.post("/api/v1/supervision", admin, &elsewhere).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("supervision_not_above"))
    );
    for (field, value, code) in [
        ("reply_days", json!(0), "supervision_reply_days"),
        ("reply_days", json!(61), "supervision_reply_days"),
        ("reason", json!(" "), "supervision_text"),
        ("todo", json!("\u{202E}x"), "control_character"),
        ("station", json!("44"), "division_code_length"),
    ] {
        let mut bad = notice.clone();
        bad[field] = value;
        let (status, body) = api.post("/api/v1/supervision", admin, &bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {body}");
        if field != "station" {
            assert_eq!(body["error"], code, "{field}");
        }
    }
    let (status, issued) = api.post("/api/v1/supervision", admin, &notice).await;
    assert_eq!(status, StatusCode::CREATED, "{issued}");
    // Monday 2026-03-02 and five working days: Monday 03-09.
    assert_eq!(issued["due"], "2026-03-09");
    assert_eq!(
        (issued["state"].as_str(), issued["level"].as_str()),
        (Some("open"), Some("normal"))
    );
    let id = issued["id"].as_str().unwrap();
    let (status, shown) = api.get(&format!("/api/v1/supervision/{id}"), worker).await;
    assert_eq!(
        (status, &shown["reason"]),
        (StatusCode::OK, &notice["reason"])
    );
    let (_, list) = api.get("/api/v1/supervision?state=open", worker).await;
    assert_eq!(list["notices"].as_array().unwrap().len(), 1);
    let (_, list) = api.get("/api/v1/supervision?state=overdue", worker).await;
    assert_eq!(list["notices"].as_array().unwrap().len(), 0);
    for bad in ["state=late", "limit=0", "limit=501", "bogus=1"] {
        let (status, _) = api.get(&format!("/api/v1/supervision?{bad}"), worker).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    }
    let (status, body) = api
        .post(
            &format!("/api/v1/supervision/{id}/replies"),
            admin,
            &json!({"text": "已整改"}),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("supervision_not_the_station"))
    );
    for missing in ["s-nothing", "c-1", "x"] {
        let (status, _) = api
            .get(&format!("/api/v1/supervision/{missing}"), worker)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    }
}

/// The month's assessment through the router (issue 14 point 5): the page in both
/// languages with last month's figures beside this month's, the CSV and .xlsx, and the
/// API; a worker is refused by the engine's rule alike by the page and the API.
#[tokio::test]
async fn the_months_assessment_as_a_page_a_download_and_json() {
    use yizhan_sync::domain::case::Action;

    use crate::store::NewAction;
    use crate::store::tests::{complete_application, item, lead};

    let api = api("district").await;
    let password = "correct-horse-battery";
    for (username, role) in [("dubanyuan", Role::Supervisor), ("li", Role::Worker)] {
        api.store
            .add_user(
                NewUser {
                    username: username.into(),
                    display_name: username.into(),
                    role,
                    counter: String::new(),
                    password_hash: crate::accounts::hash_password(password).unwrap(),
                },
                0,
            )
            .await
            .unwrap();
    }
    // February: one case received 02-10, accepted, completed 02-12 (two working days,
    // on time), rated 5. March: one received 03-02, still waiting.
    let card = item("老年人优待证办理");
    let feb = api
        .store
        .create_case(
            card.impl_code.to_string(),
            complete_application(&card),
            crate::store::tests::staff(),
            at("2026-02-10"),
        )
        .await
        .unwrap();
    for (action, day) in [
        (NewAction::Accept, "2026-02-10"),
        (
            NewAction::Do(Action::Complete {
                result: "已办结".into(),
                delivery: "窗口领取".into(),
            }),
            "2026-02-12",
        ),
        (
            NewAction::Do(Action::Rate {
                level: 5,
                comment: String::new(),
                rectify_days: 15,
            }),
            "2026-02-12",
        ),
    ] {
        api.store
            .act_on_case(feb.clone(), vec![action], lead(), at(day) + 60_000)
            .await
            .unwrap();
    }
    api.store
        .create_case(
            card.impl_code.to_string(),
            complete_application(&card),
            crate::store::tests::staff(),
            at("2026-03-02"),
        )
        .await
        .unwrap();

    let mut supervisor = Browser::new(&api.state, "10.0.0.5");
    assert_eq!(
        supervisor.sign_in("dubanyuan", password).await.0,
        StatusCode::SEE_OTHER
    );
    let (status, _, page) = supervisor
        .send(
            Method::GET,
            "/hall/assessment?month=2026-03&by=station",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("<h1>月度考核 2026-03</h1>"), "{page}");
    assert!(page.contains("data-division=\"440399\""), "{page}");
    // Received: 1 in March, 1 in February; completed: 0, 1; on time: none, 100.0%.
    let cells = |page: &str| -> Vec<String> {
        let row = page.split("data-division=\"440399\"").nth(1).unwrap();
        let row = row.split("</tr>").next().unwrap();
        row.split("<td class=\"num\">")
            .skip(1)
            .map(|cell| cell.split("</td>").next().unwrap().to_string())
            .collect()
    };
    let march = cells(&page);
    let before = |now: &str, then: &str| {
        format!("{now}<span class=\"before\" title=\"2026-02\">{then}</span>")
    };
    assert_eq!(march[0], before("1", "1"));
    assert_eq!(march[1], before("0", "1"));
    assert_eq!(march[2], before("", "100.0%"));
    assert_eq!(march[3], before("", "2.0"));
    assert_eq!(march[6], before("0", "1"), "非常满意");
    assert_eq!(march[11], before("", "100.0%"), "满意率");
    supervisor.cookies.insert("yz_lang".into(), "en".into());
    let (status, _, page) = supervisor
        .send(
            Method::GET,
            "/hall/assessment?month=2026-03&by=station",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("<h1>Monthly assessment 2026-03</h1>"),
        "{page}"
    );
    assert!(page.contains("Average working days") && page.contains("Answered on time"));
    assert_eq!(cells(&page), march);
    // Every grouping a hall offers shows; a bad month or grouping is a clear 400.
    for by in ["subdistrict", "department", "counter", "staff"] {
        let (status, _, _) = supervisor
            .send(
                Method::GET,
                &format!("/hall/assessment?month=2026-03&by={by}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{by}");
    }
    for bad in ["month=2026-13", "month=26-03", "by=nobody"] {
        let (status, _, page) = supervisor
            .send(Method::GET, &format!("/hall/assessment?{bad}"), None)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert!(page.contains("is not valid"), "{bad}: {page}");
    }

    // The downloads: each figure, then last month's.
    supervisor.cookies.insert("yz_lang".into(), "zh-CN".into());
    let (status, _, csv) = supervisor
        .send(
            Method::GET,
            "/hall/assessment.csv?month=2026-02&by=station",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let lines: Vec<&str> = csv.trim_start_matches('\u{feff}').split("\r\n").collect();
    assert!(
        lines[0]
            .starts_with("站点,区划代码,收件数,收件数（上月）,办结数,办结数（上月）,按时办结率,"),
        "{}",
        lines[0]
    );
    assert_eq!(
        lines[1],
        "测试节点,440399,1,0,1,0,100.0%,,2.0,,0,0,0,0,1,0,0,0,0,0,0,0,0,0,100.0%,,0,0,0,0,0,0,0,0,0,0"
    );
    assert!(lines[2].starts_with("合计,,1,0,1,0,"), "{}", lines[2]);
    let response = router(api.state.clone(), 64 * 1024)
        .oneshot(
            Request::builder()
                .uri("/hall/assessment.xlsx?month=2026-02&by=station")
                .header(
                    header::COOKIE,
                    format!("yz_session={}", supervisor.cookies["yz_session"]),
                )
                .body(HttpBody::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .contains("yizhan-assessment-2026-02-station.xlsx")
    );
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    assert!(bytes.starts_with(b"PK"), "an .xlsx is a zip");

    // A worker is refused, by the page and by the API, with the engine's code.
    let mut worker = Browser::new(&api.state, "10.0.0.6");
    worker.sign_in("li", password).await;
    let (status, _, page) = worker
        .send(Method::GET, "/hall/assessment?month=2026-03", None)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(page.contains("督办人员、管理员"), "{page}");
    // Nor does the navigation offer it to the worker; it does to the supervisor.
    assert!(!page.contains("id=\"nav-assessment\""), "{page}");
    let (_, _, page) = supervisor.send(Method::GET, "/hall", None).await;
    assert!(page.contains("id=\"nav-assessment\""), "{page}");
    let (status, body) = api
        .get("/api/v1/assessment?month=2026-02", Some(&api.worker))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("assessment_role"))
    );

    // The API: the same figures.
    let (status, body) = api
        .get(
            "/api/v1/assessment?month=2026-02&by=station",
            Some(&api.admin),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (body["month"].as_str(), body["previous_month"].as_str()),
        (Some("2026-02"), Some("2026-01"))
    );
    let line = &body["lines"][0];
    assert_eq!(line["division"], "440399");
    assert_eq!(line["month"]["received"], 1);
    assert_eq!(line["month"]["on_time_rate"], 1.0);
    assert_eq!(line["month"]["average_working_days"], 2.0);
    assert_eq!(line["month"]["ratings"], json!([0, 0, 0, 0, 1]));
    assert_eq!(line["previous"]["received"], 0);
    assert_eq!(body["total"]["completed"], 1);
    for bad in [
        "",
        "?month=2026-13",
        "?month=1999-12",
        "?month=2026-1",
        "?month=2026-02&by=nobody",
        "?month=2026-02&bogus=1",
    ] {
        let (status, body) = api
            .get(&format!("/api/v1/assessment{bad}"), Some(&api.admin))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }
}

/// A notification (通报) published through the page at a district: listed there in both
/// languages; a worker sees no form and cannot publish; a station elsewhere is refused.
#[tokio::test]
async fn a_notification_is_published_and_listed_through_the_pages() {
    let api = api("district").await;
    let password = "correct-horse-battery";
    for (username, role) in [("dubanyuan", Role::Supervisor), ("li", Role::Worker)] {
        api.store
            .add_user(
                NewUser {
                    username: username.into(),
                    display_name: username.into(),
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
    let mut supervisor = Browser::new(&api.state, "10.0.0.5");
    supervisor.sign_in("dubanyuan", password).await;
    let (status, _, page) = supervisor.send(Method::GET, "/notifications", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("id=\"notification-publish\""), "{page}");
    assert!(
        page.contains("value=\"2026-02\""),
        "last month by default: {page}"
    );
    let csrf = csrf_of(&page);
    let (status, _, page) = supervisor
        .send(
            Method::POST,
            "/notifications",
            Some(format!(
                "csrf={csrf}&month=2026-02&title=%E4%BA%8C%E6%9C%88%E9%80%9A%E6%8A%A5&text=%E9%80%BE%E6%9C%9F%E8%BE%83%E5%A4%9A&figures=&station=440305001001&reply_days=5"
            )),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("不是本大厅辖区内的服务站"), "{page}");
    let (status, _, _) = supervisor
        .send(
            Method::POST,
            "/notifications",
            Some(format!(
                "csrf={csrf}&month=2026-02&title=%E4%BA%8C%E6%9C%88%E9%80%9A%E6%8A%A5&text=%E9%80%BE%E6%9C%9F%E8%BE%83%E5%A4%9A&figures=&reply_days=5"
            )),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, page) = supervisor.send(Method::GET, "/notifications", None).await;
    assert!(
        page.contains("二月通报") && page.contains("逾期较多"),
        "{page}"
    );
    assert!(page.contains("class=\"nt-number\">b-"), "{page}");
    supervisor.cookies.insert("yz_lang".into(), "en".into());
    let (_, _, page) = supervisor.send(Method::GET, "/notifications", None).await;
    assert!(
        page.contains("Publish a notification") && page.contains("二月通报"),
        "{page}"
    );

    let mut worker = Browser::new(&api.state, "10.0.0.6");
    worker.sign_in("li", password).await;
    let (status, _, page) = worker.send(Method::GET, "/notifications", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("二月通报") && !page.contains("notification-publish"));
    let csrf = csrf_of(&page);
    let (status, _, page) = worker
        .send(
            Method::POST,
            "/notifications",
            Some(format!(
                "csrf={csrf}&month=2026-02&title=x&text=y&reply_days=5"
            )),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{page}");
    assert_eq!(api.store.notifications(10).await.unwrap().len(), 1);
}

mod drafts;
/// `/api/v1/staff` (§8.6.3): a hall's admin writes the tree's accounts; the same store
/// rules and codes as the admin page; no verifier ever leaves the API.
#[tokio::test]
async fn a_halls_admin_writes_tree_accounts_through_the_api() {
    let api = api("district").await;
    let body =
        json!({"username": "li.ming", "display_name": "李明", "role": "worker", "counter": "3"});
    let (status, refused) = api.post("/api/v1/staff", Some(&api.worker), &body).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    let (status, written, headers) = api
        .send(
            Method::POST,
            "/api/v1/staff",
            Some(&api.admin),
            Some(serde_json::to_vec(&body).unwrap()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{written}");
    assert_eq!(headers[header::LOCATION], "/api/v1/staff/li.ming");
    assert_eq!(written["password"].as_str().unwrap().len(), 16);
    assert_eq!(
        (
            &written["account"]["source"],
            &written["account"]["standing"],
            &written["account"]["generation"],
            &written["account"]["own"]
        ),
        (&json!("tree"), &json!("here"), &json!(1), &json!(true))
    );
    assert!(!written.to_string().contains("argon2"));

    // (body, status, code): every refusal is a code people read in their language.
    let table = [
        (body.clone(), StatusCode::CONFLICT, "staff_name_taken"),
        (
            json!({"username": "worker", "role": "worker"}),
            StatusCode::CONFLICT,
            "staff_name_taken",
        ),
        (
            json!({"username": "Li Ming", "role": "worker"}),
            StatusCode::BAD_REQUEST,
            "bad_username",
        ),
        (
            json!({"username": "wang", "role": "root"}),
            StatusCode::BAD_REQUEST,
            "staff_role",
        ),
        (
            json!({"username": "wang", "role": "worker", "chief": true}),
            StatusCode::BAD_REQUEST,
            "staff_chief_department",
        ),
        (
            json!({"username": "wang", "role": "worker", "sign_in_at": ["440305001001"]}),
            StatusCode::BAD_REQUEST,
            "staff_place",
        ),
        (
            json!({"username": "wang", "role": "worker", "password": "short"}),
            StatusCode::BAD_REQUEST,
            "weak_password",
        ),
    ];
    for (body, status, code) in table {
        let (got, answer) = api.post("/api/v1/staff", Some(&api.admin), &body).await;
        assert_eq!(
            (got, answer["error"].as_str()),
            (status, Some(code)),
            "{body}"
        );
        assert!(!answer["message"].as_str().unwrap().is_empty());
    }
    let (status, answer) = api
        .post(
            "/api/v1/staff",
            Some(&api.admin),
            &json!({"username": "wang", "role": "worker", "password_hash": "$argon2id$x"}),
        )
        .await;
    assert!(status.is_client_error(), "{status} {answer}");

    // Listed beside the local accounts; one by name.
    let (status, list) = api.get("/api/v1/staff", Some(&api.admin)).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<(String, String)> = list["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["username"].as_str().unwrap().into(),
                a["source"].as_str().unwrap().into(),
            )
        })
        .collect();
    for expected in [("admin", "local"), ("worker", "local"), ("li.ming", "tree")] {
        assert!(
            names.contains(&(expected.0.into(), expected.1.into())),
            "{names:?}"
        );
    }
    let (status, _) = api.get("/api/v1/staff", Some(&api.worker)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, one) = api.get("/api/v1/staff/li.ming", Some(&api.admin)).await;
    assert_eq!(
        (status, &one["display_name"]),
        (StatusCode::OK, &json!("李明"))
    );
    let (status, _) = api.get("/api/v1/staff/nobody", Some(&api.admin)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A reset answers a new password once and bumps the generation; disabling holds.
    let patch = |body: Value| {
        let api = &api;
        async move {
            let (status, value, _) = api
                .send(
                    Method::PATCH,
                    "/api/v1/staff/li.ming",
                    Some(&api.admin),
                    Some(serde_json::to_vec(&body).unwrap()),
                )
                .await;
            (status, value)
        }
    };
    let (status, reset) = patch(json!({"reset_password": true})).await;
    assert_eq!(status, StatusCode::OK, "{reset}");
    assert_eq!(reset["account"]["generation"], 2);
    assert_ne!(reset["password"], written["password"]);
    let (status, refused) = patch(json!({"stand_in": "wang"})).await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("staff_stand_in_unknown")),
        "a stand-in is an account of the hall"
    );
    let (status, _) = api
        .post(
            "/api/v1/staff",
            Some(&api.admin),
            &json!({"username": "wang", "role": "worker", "password": "a long password"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, disabled) = patch(json!({"disabled": true, "stand_in": "wang"})).await;
    assert_eq!(status, StatusCode::OK, "{disabled}");
    assert_eq!(
        (
            &disabled["account"]["disabled"],
            &disabled["account"]["stand_in"]
        ),
        (&json!(true), &json!("wang"))
    );
    assert!(disabled.get("password").is_none());
    let (status, refused) = patch(json!({"stand_in": "li.ming"})).await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("staff_stand_in"))
    );
    let (status, _, _) = api
        .send(
            Method::PATCH,
            "/api/v1/staff/nobody",
            Some(&api.admin),
            Some(b"{}".to_vec()),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A station's admin manages its local accounts only.
    let station = api_station_admin().await;
    let (status, refused) = station
        .post(
            "/api/v1/staff",
            Some(&station.admin),
            &json!({"username": "wang", "role": "worker"}),
        )
        .await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("staff_admins_only"))
    );
}

async fn api_station_admin() -> Api {
    api("station").await
}

/// The pages of the tree's accounts and of the counters: a hall's admin writes accounts,
/// a station's admin reads them; counters are an admin's.
#[tokio::test]
async fn tree_account_and_counter_pages_follow_the_same_rules() {
    async fn page(
        api: &Api,
        method: Method,
        uri: &str,
        cookie: &str,
        form: Option<String>,
    ) -> (StatusCode, String) {
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::COOKIE, cookie);
        if form.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        }
        let response = router(api.state.clone(), 64 * 1024)
            .oneshot(
                request
                    .body(form.map_or_else(HttpBody::empty, HttpBody::from))
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&bytes).to_string())
    }
    async fn session(api: &Api, name: &str) -> (String, String) {
        let users = api.store.list_users().await.unwrap();
        let user = users.into_iter().find(|u| u.username == name).unwrap();
        let now = at("2026-03-02");
        let sessions = &api.state.web.sessions;
        let token = sessions.start(&user, crate::web::session::credential_of("unused"), now);
        let csrf = sessions.touch(&token, now).unwrap().csrf;
        (format!("yz_session={token}"), csrf)
    }

    let hall = api("district").await;
    let (cookie, csrf) = session(&hall, "admin").await;
    let (status, html) = page(&hall, Method::GET, "/admin/staff", &cookie, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("id=\"add-staff\""),
        "a hall's admin writes accounts"
    );
    let (status, html) = page(
        &hall,
        Method::POST,
        "/admin/staff",
        &cookie,
        Some(format!(
            "csrf={csrf}&username=zhou&display_name=%E5%91%A8&role=worker&counter=2"
        )),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("id=\"new-password\"") && html.contains("周"));
    let (status, html) = page(
        &hall,
        Method::POST,
        "/admin/staff/zhou",
        &cookie,
        Some(format!("csrf={csrf}&action=disable")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        hall.store
            .tree_account("zhou".into())
            .await
            .unwrap()
            .unwrap()
            .account
            .disabled
    );
    let (status, html) = page(
        &hall,
        Method::POST,
        "/admin/staff",
        &cookie,
        Some(format!("csrf={csrf}&username=worker&role=worker")),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(html.contains("已被"), "worded in Chinese: {html}");
    let (worker_cookie, _) = session(&hall, "worker").await;
    let (status, html) = page(&hall, Method::GET, "/admin/counters", &worker_cookie, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // One rule (`engine::may_administer`), one refusal: the page and the API word the
    // same code the same way.
    let admins_only = crate::i18n::Tr::of(crate::i18n::Lang::Zh).words(&crate::i18n::Words::from(
        &yizhan_sync::engine::NodeAdminError::AdminsOnly,
    ));
    assert!(html.contains(&admins_only), "{html}");
    let (status, body, _) = hall
        .send(
            Method::DELETE,
            "/api/v1/counters/7",
            Some(&hall.worker),
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str(), body["message"].as_str()),
        (
            StatusCode::FORBIDDEN,
            Some("admins_only"),
            Some(admins_only.as_str())
        ),
        "{body}"
    );
    let (status, html) = page(
        &hall,
        Method::POST,
        "/admin/counters",
        &cookie,
        Some(format!(
            "csrf={csrf}&action=save&number=7&name=%E7%A4%BE%E4%BF%9D&serves=x"
        )),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("社保"));

    let station = api("station").await;
    let (cookie, csrf) = session(&station, "admin").await;
    let (status, html) = page(&station, Method::GET, "/admin/staff", &cookie, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!html.contains("id=\"add-staff\""), "read-only at a station");
    let (status, _) = page(
        &station,
        Method::POST,
        "/admin/staff",
        &cookie,
        Some(format!("csrf={csrf}&username=zhou&role=worker")),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// The guide's attachments and situations through the API and the pages.
mod guide {
    use axum::body::Body as HttpBody;
    use axum::http::{Method, Request, StatusCode, header};
    use http_body_util::BodyExt;
    use serde_json::{Value, json};
    use tower::ServiceExt;
    use yizhan_sync::domain::attachment::MAX_BYTES;

    use super::{Api, api, application};
    use crate::demo::demo_catalog;
    use crate::node::router;

    /// A request with any body and content type; the answer's status, headers and bytes.
    async fn raw(
        api: &Api,
        method: Method,
        uri: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> (StatusCode, header::HeaderMap, Vec<u8>) {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if !content_type.is_empty() {
            request = request.header(header::CONTENT_TYPE, content_type);
        }
        let response = router(api.state.clone(), 64 * 1024)
            .oneshot(request.body(HttpBody::from(body)).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, bytes.to_vec())
    }

    fn code(bytes: &[u8]) -> Value {
        serde_json::from_slice::<Value>(bytes).map_or(Value::Null, |v| v["error"].clone())
    }

    const PDF: &[u8] = b"%PDF-1.4\n% residence permit form (blank)\n%%EOF\n";

    /// Uploads by the wrong role, of the wrong type, too large or empty are coded 4xx that
    /// change nothing; a hall admin's file is published once, named by an item, shown on its
    /// guide and downloaded without a session as what it is.
    #[tokio::test]
    async fn attachments_are_published_by_item_drafters_and_offered_by_the_guide() {
        let district = api("district").await;
        let station = api("station").await;
        let upload = "/api/v1/attachments?name=%E7%A9%BA%E8%A1%A8.pdf"; // 空表.pdf
        let before = district.store.content_digest().await.unwrap();
        let oversize = [PDF, &vec![b' '; MAX_BYTES][..]].concat();
        type Refusal<'a> = (&'a Api, &'a str, &'a str, Vec<u8>, StatusCode, &'a str);
        let refusals: Vec<Refusal> = vec![
            (
                &district,
                &district.worker,
                "application/pdf",
                PDF.to_vec(),
                StatusCode::FORBIDDEN,
                "authoring_editors_only",
            ),
            (
                &station,
                &station.admin,
                "application/pdf",
                PDF.to_vec(),
                StatusCode::FORBIDDEN,
                "authoring_station",
            ),
            (
                &district,
                &district.admin,
                "text/html",
                b"<html></html>".to_vec(),
                StatusCode::BAD_REQUEST,
                "attachment_type",
            ),
            (
                &district,
                &district.admin,
                "application/pdf",
                b"<html></html>".to_vec(),
                StatusCode::BAD_REQUEST,
                "attachment_contents",
            ),
            (
                &district,
                &district.admin,
                "application/pdf",
                Vec::new(),
                StatusCode::BAD_REQUEST,
                "attachment_empty",
            ),
            (
                &district,
                &district.admin,
                "application/pdf",
                oversize,
                StatusCode::PAYLOAD_TOO_LARGE,
                "attachment_too_large",
            ),
        ];
        for (node, token, content_type, body, status, expected) in refusals {
            let (got, _, bytes) =
                raw(node, Method::POST, upload, Some(token), content_type, body).await;
            assert_eq!((got, code(&bytes)), (status, json!(expected)), "{expected}");
        }
        assert_eq!(district.store.content_digest().await.unwrap(), before);
        let (status, _, bytes) = raw(
            &district,
            Method::POST,
            upload,
            None,
            "application/pdf",
            PDF.to_vec(),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(code(&bytes).is_string());

        let (status, _, bytes) = raw(
            &district,
            Method::POST,
            upload,
            Some(&district.admin),
            "application/pdf",
            PDF.to_vec(),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        let published: Value = serde_json::from_slice(&bytes).unwrap();
        let id = published["id"].as_str().unwrap().to_string();
        assert!(id.starts_with("a-440399-"), "{id}");
        assert_eq!(published["size"], PDF.len());
        // The same file again is the same attachment, not a second document.
        let (status, _, again) = raw(
            &district,
            Method::POST,
            upload,
            Some(&district.admin),
            "application/pdf",
            PDF.to_vec(),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(
            serde_json::from_slice::<Value>(&again).unwrap()["id"],
            id.as_str()
        );

        // An item may name only an attachment held here.
        let mut naming_none = demo_catalog()
            .into_iter()
            .find(|i| i.name == "居住证申领")
            .unwrap();
        naming_none.version += 1;
        naming_none.materials[0].sample = Some(format!("a-440399-{}", "1".repeat(64)));
        let (status, _, bytes) = raw(
            &district,
            Method::PUT,
            &format!("/api/v1/items/{}", naming_none.impl_code),
            Some(&district.admin),
            "application/json",
            serde_json::to_vec(&naming_none).unwrap(),
        )
        .await;
        assert_eq!(
            (status, code(&bytes)),
            (StatusCode::BAD_REQUEST, json!("attachment_unknown"))
        );
        // An item names it as a material's blank form.
        let mut item = demo_catalog()
            .into_iter()
            .find(|i| i.name == "居住证申领")
            .unwrap();
        item.version += 1;
        item.materials[0].blank_form = Some(id.clone());
        let code_of_item = item.impl_code.to_string();
        let (status, _, bytes) = raw(
            &district,
            Method::PUT,
            &format!("/api/v1/items/{code_of_item}"),
            Some(&district.admin),
            "application/json",
            serde_json::to_vec(&item).unwrap(),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&bytes)
        );
        let (_, guide) = district
            .get(&format!("/api/v1/items/{code_of_item}"), None)
            .await;
        let url = guide["materials"][0]["blank_form"]["url"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(url, format!("/catalog/{code_of_item}/attachments/{id}"));
        assert_eq!(guide["materials"][0]["source"], "government");
        assert_eq!(guide["process"][1]["post"], "区公安分局人口管理岗");
        assert_eq!(guide["handling_forms"], json!(["window"]));
        assert_eq!(guide["situations"][0]["name"], "以连续就读为由申领");

        let (status, headers, body) = raw(&district, Method::GET, &url, None, "", Vec::new()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, PDF);
        assert_eq!(headers[header::CONTENT_TYPE], "application/pdf");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(
            headers[header::CONTENT_DISPOSITION],
            "attachment; filename*=UTF-8''%E7%A9%BA%E8%A1%A8.pdf"
        );
        // The guide page links it; an id the item does not name is not served under it.
        let (_, _, page) = raw(
            &district,
            Method::GET,
            &format!("/catalog/{code_of_item}"),
            None,
            "",
            Vec::new(),
        )
        .await;
        let page = String::from_utf8(page).unwrap();
        assert!(
            page.contains(&format!("href=\"{url}\"")),
            "the guide links the blank form"
        );
        assert!(page.contains("区公安分局人口管理岗") && page.contains("以连续就读为由申领"));
        // The printable one-time notification sheet lists the situations' materials too.
        let (_, _, sheet) = raw(
            &district,
            Method::GET,
            &format!("/catalog/{code_of_item}/notice"),
            None,
            "",
            Vec::new(),
        )
        .await;
        let sheet = String::from_utf8(sheet).unwrap();
        assert!(sheet.contains("以连续就读为由申领") && sheet.contains("在读证明"));
        let other = format!(
            "/catalog/{code_of_item}/attachments/a-440399-{}",
            "0".repeat(64)
        );
        let (status, _, _) = raw(&district, Method::GET, &other, None, "", Vec::new()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let elsewhere = demo_catalog()
            .into_iter()
            .find(|i| i.name == "失业登记")
            .unwrap();
        let (status, _, _) = raw(
            &district,
            Method::GET,
            &format!("/catalog/{}/attachments/{id}", elsewhere.impl_code),
            None,
            "",
            Vec::new(),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    /// An application in a situation is checked against that situation's materials, and a
    /// situation the item lacks is refused with its code.
    #[tokio::test]
    async fn an_application_in_a_situation_needs_that_situations_materials() {
        let api = api("station").await;
        let token = Some(api.worker.as_str());
        let mut body = application("居住证申领");
        body["situations"] = json!(["以连续就读为由申领"]);
        let (status, created) = api.post("/api/v1/cases", token, &body).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let (_, case) = api
            .get(
                &format!("/api/v1/cases/{}", created["id"].as_str().unwrap()),
                token,
            )
            .await;
        assert_eq!(case["situations"], json!(["以连续就读为由申领"]));
        let missing: Vec<&str> = case["materials_missing"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap())
            .collect();
        assert_eq!(missing, ["在读证明"]);

        // Leaving out what a situation does not need.
        let mut body = application("居住证申领");
        body["situations"] = json!(["本站居住登记记录可查"]);
        body["materials"]
            .as_array_mut()
            .unwrap()
            .retain(|m| m["name"] != "居住登记记录");
        let (status, created) = api.post("/api/v1/cases", token, &body).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let (_, case) = api
            .get(
                &format!("/api/v1/cases/{}", created["id"].as_str().unwrap()),
                token,
            )
            .await;
        assert_eq!(case["materials_missing"], json!([]));

        let before = api.store.content_digest().await.unwrap();
        body["situations"] = json!(["没有的情形"]);
        let (status, refused) = api.post("/api/v1/cases", token, &body).await;
        assert_eq!(
            (status, refused["error"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("unknown_situation")),
            "{refused}"
        );
        assert!(refused["message"].as_str().unwrap().contains("没有的情形"));
        assert_eq!(api.store.content_digest().await.unwrap(), before);
    }
}

/// A hall's admin creates a department and rotates its seal through the API; a worker, a
/// station, a bad code or name and a taken code are refused with codes, and change nothing.
#[tokio::test]
async fn departments_are_created_listed_and_rotated_by_a_halls_admin() {
    let hall = api("district").await;
    let before = hall.store.content_digest().await.unwrap();
    for (why, token, body, status, code) in [
        (
            "a worker",
            hall.worker.clone(),
            json!({"code": "MZJ", "name": "区民政局"}),
            StatusCode::FORBIDDEN,
            "departments_admins_only",
        ),
        (
            "a bad code",
            hall.admin.clone(),
            json!({"code": "M Z", "name": "区民政局"}),
            StatusCode::BAD_REQUEST,
            "department_code",
        ),
        (
            "an empty name",
            hall.admin.clone(),
            json!({"code": "MZJ", "name": ""}),
            StatusCode::BAD_REQUEST,
            "department_name",
        ),
        (
            "an unknown field",
            hall.admin.clone(),
            json!({"code": "MZJ", "name": "区民政局", "hall": "x"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "",
        ),
    ] {
        let (got, value) = hall.post("/api/v1/departments", Some(&token), &body).await;
        assert_eq!(got, status, "{why}: {value}");
        if !code.is_empty() {
            assert_eq!(value["error"], code, "{why}: {value}");
        }
        assert!(value["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert_eq!(hall.store.content_digest().await.unwrap(), before);
    let (status, made) = hall
        .post(
            "/api/v1/departments",
            Some(&hall.admin),
            &json!({"code": "MZJ", "name": "区民政局"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(made["id"], "d-440399-mzj");
    assert_eq!(made["seals"].as_array().unwrap().len(), 1);
    let (status, value) = hall
        .post(
            "/api/v1/departments",
            Some(&hall.admin),
            &json!({"code": "mzj", "name": "区人社局"}),
        )
        .await;
    assert_eq!(
        (status, value["error"].as_str()),
        (StatusCode::CONFLICT, Some("department_exists"))
    );
    let (status, rotated) = hall
        .post(
            "/api/v1/departments/MZJ/rotate",
            Some(&hall.admin),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let seals = rotated["seals"].as_array().unwrap();
    assert_eq!(seals.len(), 2);
    assert_eq!(seals[0], made["seals"][0]);
    assert_eq!(seals[1]["key_no"], 2);
    let (status, value) = hall
        .post(
            "/api/v1/departments/MZJ/rotate",
            Some(&hall.worker),
            &json!({}),
        )
        .await;
    assert_eq!(
        (status, value["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("departments_admins_only"))
    );
    let (status, value) = hall
        .post(
            "/api/v1/departments/RSJ/rotate",
            Some(&hall.admin),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{value}");
    let (status, listed) = hall.get("/api/v1/departments", Some(&hall.worker)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0], rotated);
    let (status, shown) = hall
        .get("/api/v1/departments/mzj", Some(&hall.worker))
        .await;
    assert_eq!((status, &shown), (StatusCode::OK, &rotated));
    let (status, _) = hall
        .get("/api/v1/departments/RSJ", Some(&hall.worker))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = hall.get("/api/v1/departments", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // No seal's private key is ever in an answer.
    let key = hall
        .store
        .seal_keys()
        .get("d-440399-mzj", 2)
        .unwrap()
        .unwrap();
    assert!(
        !rotated
            .to_string()
            .contains(&yizhan_sync::ids::hex(key.as_bytes()))
    );
    // A station has no departments of its own.
    let station = api("station").await;
    let (status, value) = station
        .post(
            "/api/v1/departments",
            Some(&station.admin),
            &json!({"code": "MZJ", "name": "民政局"}),
        )
        .await;
    assert_eq!(
        (status, value["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("departments_halls_only"))
    );
}

/// The departments page at a hall: the admin is offered the forms and creates one (a bad
/// code comes back as a page in words, nothing stored); a worker sees the list without
/// the forms, and a worker's forged post is refused by the engine's rule.
#[tokio::test]
async fn departments_are_created_through_the_pages_by_the_halls_admin_only() {
    let api = api("district").await;
    let password = "correct-horse-battery";
    for (username, role) in [("guanli", Role::Admin), ("li", Role::Worker)] {
        api.store
            .add_user(
                NewUser {
                    username: username.into(),
                    display_name: username.into(),
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
    let mut admin = Browser::new(&api.state, "10.0.0.5");
    admin.sign_in("guanli", password).await;
    let (status, _, page) = admin.send(Method::GET, "/departments", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("id=\"department-create\""), "{page}");
    let csrf = csrf_of(&page);
    let before = api.store.content_digest().await.unwrap();
    let (status, _, page) = admin
        .send(
            Method::POST,
            "/departments",
            Some(format!(
                "csrf={csrf}&code=M%20Z&name=%E5%8C%BA%E6%B0%91%E6%94%BF%E5%B1%80"
            )),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(page.contains("部门代码为1至32位字母"), "{page}");
    assert_eq!(api.store.content_digest().await.unwrap(), before);
    let (status, _, _) = admin
        .send(
            Method::POST,
            "/departments",
            Some(format!(
                "csrf={csrf}&code=MZJ&name=%E5%8C%BA%E6%B0%91%E6%94%BF%E5%B1%80"
            )),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, page) = admin.send(Method::GET, "/departments", None).await;
    assert!(page.contains("class=\"dept-name\">区民政局"), "{page}");
    assert!(page.contains("class=\"dept-rotate\""), "{page}");
    let (status, _, _) = admin
        .send(
            Method::POST,
            "/departments/MZJ/rotate",
            Some(format!("csrf={csrf}")),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        api.store
            .department("MZJ".into())
            .await
            .unwrap()
            .unwrap()
            .seals
            .len(),
        2
    );

    let mut worker = Browser::new(&api.state, "10.0.0.6");
    worker.sign_in("li", password).await;
    let (status, _, page) = worker.send(Method::GET, "/departments", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("区民政局"), "{page}");
    assert!(!page.contains("id=\"department-create\""), "{page}");
    assert!(!page.contains("class=\"dept-rotate\""), "{page}");
    let csrf = csrf_of(&page);
    let before = api.store.content_digest().await.unwrap();
    for (path, body) in [
        ("/departments", format!("csrf={csrf}&code=RSJ&name=x")),
        ("/departments/MZJ/rotate", format!("csrf={csrf}")),
    ] {
        let (status, _, page) = worker.send(Method::POST, path, Some(body)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {page}");
        assert!(page.contains("只有大厅管理员"), "{page}");
    }
    assert_eq!(api.store.content_digest().await.unwrap(), before);
    // Without a session the page sends to sign-in.
    let mut anonymous = Browser::new(&api.state, "10.0.0.7");
    let (status, _, _) = anonymous.send(Method::GET, "/departments", None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}

/// §7.4: the counters are records an admin keeps through the API as on the admin page;
/// a worker reads them, a counter an account works at is not removed, bad numbers are
/// refused with words.
#[tokio::test]
async fn counters_are_kept_by_the_admin_and_read_by_staff() {
    let api = api("station").await;
    let put = |token: String, number: &str, body: Value| {
        let uri = format!("/api/v1/counters/{number}");
        let api = &api;
        async move {
            let (status, value, _) = api
                .send(
                    Method::PUT,
                    &uri,
                    Some(&token),
                    Some(serde_json::to_vec(&body).unwrap()),
                )
                .await;
            (status, value)
        }
    };
    let (status, body) = put(
        api.admin.clone(),
        "7",
        json!({ "name": "七号窗口", "serves": "社保、医保" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["name"], "七号窗口");
    let (status, _) = put(api.worker.clone(), "8", json!({ "name": "八" })).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = put(api.admin.clone(), "%20x", json!({})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("counter_number")),
        "{body}"
    );
    let (status, body) = put(api.admin.clone(), "9", json!({ "colour": "red" })).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    let (status, list) = api.get("/api/v1/counters", Some(&api.worker)).await;
    assert_eq!(status, StatusCode::OK);
    let numbers: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["number"].as_str().unwrap())
        .collect();
    assert!(numbers.contains(&"7"), "{list}");
    assert!(!numbers.contains(&"8"), "{list}");
    let (status, _) = api.get("/api/v1/counters", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // The worker's account works at a counter: it stays.
    let worker_counter = api
        .store
        .counters()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.number != "7")
        .expect("the test accounts' counter is a record")
        .number;
    let (status, body, _) = api
        .send(
            Method::DELETE,
            &format!(
                "/api/v1/counters/{}",
                worker_counter
                    .bytes()
                    .map(|b| format!("%{b:02X}"))
                    .collect::<String>()
            ),
            Some(&api.admin),
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("counter_in_use")),
        "{body}"
    );
    for (token, expected) in [
        (&api.worker, StatusCode::FORBIDDEN),
        (&api.admin, StatusCode::NO_CONTENT),
        (&api.admin, StatusCode::NOT_FOUND),
    ] {
        let (status, _, _) = api
            .send(Method::DELETE, "/api/v1/counters/7", Some(token), None)
            .await;
        assert_eq!(status, expected);
    }
}
/// A case's process steps through the API (§9.2.2, §10.2): listed with their limits from
/// the item version the case froze, finished in order by `finish_step` (anything else
/// refused with its code, nothing recorded), each next step counted from the day the one
/// before finished, and a step past its limit red with its working days late, in the case
/// view and in the list, counted on the days the clock says.
#[tokio::test]
async fn steps_are_listed_finished_in_order_and_warned_through_the_api() {
    let mut api = api("station").await;
    let worker = api.worker.clone();
    let token = Some(worker.as_str());
    let (status, created) = api
        .post("/api/v1/cases", token, &application("就业困难人员认定"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(
        created["current_step"],
        Value::Null,
        "no step before acceptance"
    );
    let events = format!("/api/v1/cases/{id}/events");
    let (status, accepted) = api.post(&events, token, &json!({"kind": "accept"})).await;
    assert_eq!(status, StatusCode::OK, "{accepted}");
    // Accepted on Monday 2 March 2026: the first step (one working day) is due Tuesday.
    assert_eq!(accepted["current_step"], 1);
    let steps = accepted["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 3);
    assert_eq!(
        (&steps[0]["name"], &steps[0]["days"], &steps[0]["post"]),
        (&json!("社区受理"), &json!(1), &json!("综合窗口受理岗"))
    );
    assert_eq!(steps[0]["started_on"], "2026-03-02");
    assert_eq!(steps[0]["due"], "2026-03-03");
    assert_eq!(steps[0]["warning_level"], "normal");
    assert_eq!(steps[1]["due"], Value::Null);
    assert!(
        accepted["allowed_actions"]
            .as_array()
            .unwrap()
            .contains(&json!("finish_step"))
    );

    // Out of order, twice or malformed: refused with a code, nothing recorded.
    for (body, status_expected, code) in [
        (
            json!({"kind": "finish_step", "step": 2}),
            StatusCode::CONFLICT,
            "not_current_step",
        ),
        (
            json!({"kind": "finish_step", "step": 0}),
            StatusCode::CONFLICT,
            "not_current_step",
        ),
        (
            json!({"kind": "finish_step"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "",
        ),
        (
            json!({"kind": "finish_step", "step": "一"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "",
        ),
    ] {
        let (status, refused) = api.post(&events, token, &body).await;
        assert_eq!(status, status_expected, "{body} → {refused}");
        assert!(
            !refused["message"].as_str().unwrap_or_default().is_empty(),
            "{refused}"
        );
        if !code.is_empty() {
            assert_eq!(refused["error"], code, "{refused}");
        }
    }
    let (_, unchanged) = api.get(&format!("/api/v1/cases/{id}"), token).await;
    assert_eq!(unchanged["events"].as_array().unwrap().len(), 1);

    // Finished on Monday: the second step (four working days) is due Friday.
    let (status, finished) = api
        .post(
            &events,
            token,
            &json!({"kind": "finish_step", "step": 1, "note": "材料齐全"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{finished}");
    assert_eq!(finished["current_step"], 2);
    assert_eq!(finished["steps"][0]["finished_on"], "2026-03-02");
    assert_eq!(finished["steps"][0]["finished_by"], "worker");
    assert_eq!(finished["steps"][1]["started_on"], "2026-03-02");
    assert_eq!(finished["steps"][1]["due"], "2026-03-06");
    let last = finished["events"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["kind"], "finish_step");
    assert_eq!(last["details"]["step"], 1);
    let (status, again) = api
        .post(&events, token, &json!({"kind": "finish_step", "step": 1}))
        .await;
    assert_eq!(
        (status, &again["error"]),
        (StatusCode::CONFLICT, &json!("not_current_step"))
    );

    // Thursday the 12th: the step is four working days late and red; the case itself
    // (ten working days, due the 16th) is still on time, not red.
    api.state.api.clock = Arc::new(FixedClock(at("2026-03-12")));
    let (_, late) = api.get(&format!("/api/v1/cases/{id}"), token).await;
    assert_eq!(late["steps"][1]["warning_level"], "red", "{late}");
    assert_eq!(late["steps"][1]["late_days"], 4);
    assert_eq!(late["steps"][0]["late_days"], 0);
    assert_ne!(late["warning_level"], "red");
    let (_, list) = api.get("/api/v1/cases?open=true", token).await;
    let entry = list["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        entry["step"],
        json!({"number": 2, "name": "街道初审", "due": "2026-03-06", "warning_level": "red"})
    );
    // The OpenAPI document describes the steps.
    let (_, doc) = api.get("/api/v1/openapi.json", None).await;
    for schema in ["StepView", "StepSummaryView", "LateStepView"] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
}

/// The case page shows the steps and finishes the one under way with its form; a step out
/// of order is refused on the page with the core's words and changes nothing; the work
/// list shows the step a case is in.
#[tokio::test]
async fn the_case_page_lists_the_steps_and_finishes_the_one_under_way() {
    use yizhan_sync::domain::case::CaseError;
    let api = api("station").await;
    let password = "correct-horse-battery";
    api.store
        .add_user(
            NewUser {
                username: "li".into(),
                display_name: "李敏".into(),
                role: Role::Worker,
                counter: "1号窗口".into(),
                password_hash: crate::accounts::hash_password(password).unwrap(),
            },
            0,
        )
        .await
        .unwrap();
    let token = Some(api.worker.as_str());
    let (_, created) = api
        .post("/api/v1/cases", token, &application("就业困难人员认定"))
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    let (status, _) = api
        .post(
            &format!("/api/v1/cases/{id}/events"),
            token,
            &json!({"kind": "accept"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

    let mut browser = Browser::new(&api.state, "10.0.0.6");
    assert_eq!(
        browser.sign_in("li", password).await.0,
        StatusCode::SEE_OTHER
    );
    let (status, _, page) = browser
        .send(Method::GET, &format!("/cases/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("id=\"steps\""), "{page}");
    assert!(page.contains("第 1 步（共 3 步）：社区受理"), "{page}");
    assert!(page.contains("2026-03-03 到期"), "{page}");
    assert!(page.contains("name=\"kind\" value=\"finish_step\""));
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).unwrap() + marker.len();
    let csrf = page[start..].split('"').next().unwrap().to_string();

    let before = api.store.content_digest().await.unwrap();
    let (status, _, refused) = browser
        .send(
            Method::POST,
            &format!("/cases/{id}/act"),
            Some(format!("csrf={csrf}&kind=finish_step&step=2")),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    let expected = crate::i18n::Tr::of(crate::i18n::Lang::Zh).words(&crate::i18n::Words::from(
        &CaseError::NotCurrentStep {
            step: 2,
            current: 1,
        },
    ));
    assert!(refused.contains(&expected), "{expected} not in the page");
    assert_eq!(api.store.content_digest().await.unwrap(), before);

    let (status, _, _) = browser
        .send(
            Method::POST,
            &format!("/cases/{id}/act"),
            Some(format!("csrf={csrf}&kind=finish_step&step=1&note=齐全")),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, page) = browser
        .send(Method::GET, &format!("/cases/{id}"), None)
        .await;
    assert!(page.contains("第 2 步（共 3 步）：街道初审"), "{page}");
    assert!(page.contains("环节办结"), "the timeline names the event");
    assert!(page.contains("1. 社区受理"), "and the step it finished");
    let (_, _, list) = browser.send(Method::GET, "/worklist", None).await;
    assert!(list.contains("2. 街道初审 · 2026-03-06 到期"), "{list}");
}

/// §9.5 on the case page: the fee lines and what is due, the payment and exemption forms
/// with their errors in both languages (an amount that is not yuan, no way of paying, no
/// receipt, a line paid twice), nothing written by a refused form, and the worker told of
/// an unpaid fee beside the completion form.
#[tokio::test]
async fn the_case_page_records_fees_and_says_what_is_wrong() {
    let api = api("station").await;
    let password = "correct-horse-battery";
    api.store
        .add_user(
            NewUser {
                username: "li".into(),
                display_name: "李敏".into(),
                role: Role::Worker,
                counter: "1号窗口".into(),
                password_hash: crate::accounts::hash_password(password).unwrap(),
            },
            0,
        )
        .await
        .unwrap();
    let (_, created) = api
        .post(
            "/api/v1/cases",
            Some(&api.worker),
            &application("居住证申领"),
        )
        .await;
    let id = created["id"].as_str().unwrap().to_string();
    let (status, _) = api
        .post(
            &format!("/api/v1/cases/{id}/events"),
            Some(&api.worker),
            &json!({"kind": "accept"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let line = created["fees"]["lines"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let fee = url_encode(&line);
    let mut browser = Browser::new(&api.state, "10.0.0.5");
    assert_eq!(
        browser.sign_in("li", password).await.0,
        StatusCode::SEE_OTHER
    );
    let (status, _, page) = browser
        .send(Method::GET, &format!("/cases/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    for part in [
        "id=\"fees\"",
        "id=\"pay-form\"",
        "id=\"exempt-form\"",
        "待缴费（按收费标准）",
        "id=\"fee-warning\"",
        "扫码支付",
    ] {
        assert!(page.contains(part), "{part} not on the page");
    }
    let marker = "name=\"csrf\" value=\"";
    let start = page.find(marker).unwrap() + marker.len();
    let csrf = page[start..].split('"').next().unwrap().to_string();
    let act = format!("/cases/{id}/act");
    let before = api.store.content_digest().await.unwrap();
    for (lang, form, says) in [
        (
            "zh-CN",
            format!("kind=pay&fee={fee}&amount=12.505&method=cash&receipt=1"),
            "请按元填写金额",
        ),
        (
            "en",
            format!("kind=pay&fee={fee}&amount=abc&method=cash&receipt=1"),
            "Enter the amount in yuan",
        ),
        (
            "zh-CN",
            format!("kind=pay&fee={fee}&amount=20&method=&receipt=1"),
            "请选择缴费方式",
        ),
        (
            "en",
            format!("kind=pay&fee={fee}&amount=20&method=cash&receipt=+"),
            "Enter the number of the receipt",
        ),
        (
            "zh-CN",
            format!("kind=pay&fee={fee}&amount=0&method=cash&receipt=1"),
            "金额须大于零",
        ),
        (
            "en",
            "kind=pay&fee=%E5%8A%9E%E8%AF%81%E8%B4%B9&amount=20&method=cash&receipt=1".to_string(),
            "is not one of this item&#39;s fees",
        ),
        (
            "zh-CN",
            format!("kind=exempt&fee={fee}&amount=5&reason=%E4%BD%8E%E4%BF%9D&basis="),
            "请写明减免理由和减免依据",
        ),
    ] {
        browser.cookies.insert("yz_lang".into(), lang.into());
        let (status, _, page) = browser
            .send(Method::POST, &act, Some(format!("csrf={csrf}&{form}")))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{form}");
        assert!(page.contains(says), "{lang} {form}: {says} not in the page");
        assert!(page.contains("id=\"pay-form\""), "the form again");
    }
    assert_eq!(api.store.content_digest().await.unwrap(), before);
    browser.cookies.insert("yz_lang".into(), "zh-CN".into());
    let (status, _, _) = browser
        .send(
            Method::POST,
            &act,
            Some(format!("csrf={csrf}&kind=pay&fee={fee}&amount=%C2%A520.00&method=mobile&receipt=%E7%B2%A4%E8%B4%A20001")),
        )
        .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, page) = browser
        .send(Method::GET, &format!("/cases/{id}"), None)
        .await;
    assert!(
        page.contains("已缴 ¥20.00") && page.contains("粤财0001") && page.contains("已结清"),
        "{page}"
    );
    assert!(!page.contains("id=\"fee-warning\""));
    assert!(page.contains("缴费"), "the timeline names the payment");
    let (status, _, page) = browser
        .send(
            Method::POST,
            &act,
            Some(format!(
                "csrf={csrf}&kind=pay&fee={fee}&amount=20&method=cash&receipt=2"
            )),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(page.contains("已登记缴费，不能重复登记"), "{page}");
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
