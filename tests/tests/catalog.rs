//! The catalog's spreadsheets between real nodes: a district's catalog exported as .xlsx
//! (and as CSV) and imported into a fresh node is the same catalog, every field; a bad
//! workbook is refused with each bad cell named and publishes nothing.

use std::io::Read;
use std::path::Path;

use serde_json::Value;
use yizhan_tests::{Node, client, get, init_node, run, run_ok, temp_dir};

const CATALOG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../node/data/demo-catalog.toml"
);

fn dir_arg(dir: &Path) -> &str {
    dir.to_str().unwrap()
}

fn download(node: &Node, path: &str) -> Vec<u8> {
    let mut response = client().get(&node.url(path)).call().unwrap();
    assert_eq!(response.status().as_u16(), 200, "{path}");
    let mut bytes = Vec::new();
    response
        .body_mut()
        .as_reader()
        .read_to_end(&mut bytes)
        .unwrap();
    bytes
}

/// Every item's full guide as the API gives it, by implementation code.
fn guides(node: &Node) -> Vec<Value> {
    let agent = client();
    let (status, list) = get(&agent, &node.url("/api/v1/items?limit=500"), None).unwrap();
    assert_eq!(status, 200);
    let mut codes: Vec<String> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["impl_code"].as_str().unwrap().to_string())
        .collect();
    codes.sort();
    codes
        .iter()
        .map(|code| {
            get(&agent, &node.url(&format!("/api/v1/items/{code}")), None)
                .unwrap()
                .1
        })
        .collect()
}

#[test]
fn an_exported_catalog_imports_into_a_fresh_node_unchanged() {
    let root = temp_dir();
    let (a, b, c) = (
        root.path().join("a"),
        root.path().join("b"),
        root.path().join("c"),
    );
    init_node(&a, "district", "440399", "示范区行政服务中心");
    run_ok(&["import-catalog", CATALOG, "--data-dir", dir_arg(&a)]);
    let source = Node::serve(&a);
    let original = guides(&source);
    assert_eq!(original.len(), 25);
    // The workbook from the API and from the catalog page are the same file.
    let xlsx = download(&source, "/api/v1/catalog/export?format=xlsx");
    assert_eq!(download(&source, "/catalog/export.xlsx"), xlsx);
    let csv_dir = root.path().join("csv");
    std::fs::create_dir(&csv_dir).unwrap();
    for sheet in [
        "事项",
        "申请材料",
        "办理情形",
        "办理流程",
        "设定依据",
        "特别程序",
        "收费项目",
    ] {
        let path = format!(
            "/api/v1/catalog/export?format=csv&sheet={}",
            urlencode(sheet)
        );
        std::fs::write(
            csv_dir.join(format!("{sheet}.csv")),
            download(&source, &path),
        )
        .unwrap();
    }
    drop(source);
    let file = root.path().join("catalog.xlsx");
    std::fs::write(&file, &xlsx).unwrap();

    // A fresh node from the workbook.
    init_node(&b, "district", "440399", "示范区行政服务中心");
    let out = run_ok(&["import-catalog", dir_arg(&file), "--data-dir", dir_arg(&b)]);
    assert!(out.contains("25 new"), "{out}");
    let imported = Node::serve(&b);
    assert_eq!(guides(&imported), original);
    drop(imported);

    // And one from the CSV files.
    init_node(&c, "district", "440399", "示范区行政服务中心");
    let out = run_ok(&[
        "import-catalog",
        dir_arg(&csv_dir.join("事项.csv")),
        "--data-dir",
        dir_arg(&c),
    ]);
    assert!(out.contains("25 new"), "{out}");
    let from_csv = Node::serve(&c);
    assert_eq!(guides(&from_csv), original);
}

#[test]
fn a_bad_csv_names_each_bad_cell_and_publishes_nothing() {
    let root = temp_dir();
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    init_node(&a, "district", "440399", "示范区行政服务中心");
    run_ok(&["import-catalog", CATALOG, "--data-dir", dir_arg(&a)]);
    let source = Node::serve(&a);
    let csv_dir = root.path().join("csv");
    std::fs::create_dir(&csv_dir).unwrap();
    for sheet in [
        "事项",
        "申请材料",
        "办理情形",
        "办理流程",
        "设定依据",
        "特别程序",
        "收费项目",
    ] {
        let path = format!(
            "/api/v1/catalog/export?format=csv&sheet={}",
            urlencode(sheet)
        );
        let mut text = String::from_utf8(download(&source, &path)).unwrap();
        if sheet == "申请材料" {
            // The first material asks for "两份" originals.
            let line = text.lines().nth(1).unwrap().to_string();
            let mut fields: Vec<&str> = line.split(',').collect();
            fields[3] = "两份";
            text = text.replacen(&line, &fields.join(","), 1);
        }
        std::fs::write(csv_dir.join(format!("{sheet}.csv")), text).unwrap();
    }
    drop(source);
    init_node(&b, "district", "440399", "示范区行政服务中心");
    let output = run(&[
        "import-catalog",
        dir_arg(&csv_dir),
        "--data-dir",
        dir_arg(&b),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("sheet 申请材料, row 2, column 原件份数: \"两份\" is not a whole number")
            && stderr.contains("nothing was published"),
        "{stderr}"
    );
    let node = Node::serve(&b);
    let (_, list) = get(&client(), &node.url("/api/v1/items"), None).unwrap();
    assert_eq!(list["total"], 0);
}

fn urlencode(text: &str) -> String {
    text.bytes().map(|b| format!("%{b:02X}")).collect()
}

/// 居住证申领.
const RESIDENCE: &str = "1144039999000005XU5001099602000";

/// A blank form a district publishes and names in an item reaches its station with the
/// catalog, and the station's guide serves it, as published, to anyone.
#[test]
fn an_attachment_travels_down_with_the_catalog_and_the_station_serves_it() {
    use std::time::Duration;
    use yizhan_tests::{admin_token, enroll_code, post_bytes, put, wait_for};
    let root = temp_dir();
    let (d, s) = (root.path().join("district"), root.path().join("station"));
    init_node(&d, "district", "440304", "福田区行政服务中心");
    run_ok(&["import-catalog", CATALOG, "--data-dir", dir_arg(&d)]);
    let district_token = admin_token(&d);
    let district = Node::serve(&d);
    init_node(&s, "station", "440304001001", "园岭社区");
    let code = enroll_code(&d, "440304001001", "station");
    run_ok(&["enroll", &district.base, &code, "--data-dir", dir_arg(&s)]);
    set_interval(&s);
    let station = Node::serve(&s);

    let pdf = b"%PDF-1.4\n% blank form\n%%EOF\n".to_vec();
    let agent = client();
    let (status, body) = post_bytes(
        &agent,
        &district.url("/api/v1/attachments?name=form.pdf"),
        &[
            ("Authorization", format!("Bearer {district_token}")),
            ("Content-Type", "application/pdf".into()),
        ],
        pdf.clone(),
    )
    .unwrap();
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let id = serde_json::from_slice::<Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut catalog: toml::Value =
        toml::from_str(&std::fs::read_to_string(CATALOG).unwrap()).unwrap();
    let item = catalog["items"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|i| i["impl_code"].as_str() == Some(RESIDENCE))
        .unwrap();
    item["version"] = toml::Value::Integer(2);
    item["materials"][0]
        .as_table_mut()
        .unwrap()
        .insert("blank_form".into(), toml::Value::String(id.clone()));
    let (status, answer) = put(
        &agent,
        &district.url(&format!("/api/v1/items/{RESIDENCE}")),
        Some(&district_token),
        &serde_json::to_value(&*item).unwrap(),
    )
    .unwrap();
    assert_eq!(status, 200, "{answer}");

    let url = format!("/catalog/{RESIDENCE}/attachments/{id}");
    wait_for(
        "the blank form at the station",
        Duration::from_secs(30),
        || {
            let (_, guide) = get(
                &agent,
                &station.url(&format!("/api/v1/items/{RESIDENCE}")),
                None,
            )
            .ok()?;
            (guide["materials"][0]["blank_form"]["url"] == url.as_str()).then_some(())
        },
    );
    let mut response = agent.get(&station.url(&url)).call().unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/pdf"
    );
    assert_eq!(
        response.headers()["x-content-type-options"]
            .to_str()
            .unwrap(),
        "nosniff"
    );
    assert_eq!(response.body_mut().read_to_vec().unwrap(), pdf);
    // Nothing is derived from an attachment that a rebuild would find differing, and the
    // rebuilt station still reads it.
    drop(station);
    let out = run_ok(&["rebuild", "--data-dir", dir_arg(&s)]);
    assert!(out.contains("rows differing from before: 0"), "{out}");
    let station = Node::serve(&s);
    let mut response = agent.get(&station.url(&url)).call().unwrap();
    assert_eq!(response.body_mut().read_to_vec().unwrap(), pdf);
}

fn set_interval(dir: &Path) {
    yizhan_tests::set_config(dir, "interval_secs", "1");
}
