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
use yizhan_tests::{
    Node, accepted_case, admin_token, client, enroll_code, get, init_node, post, run_ok, temp_dir,
    wait_for,
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
