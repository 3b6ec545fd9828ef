//! `yizhan demo` serves a complete catalog and example cases with no setup.

use std::collections::HashSet;

use yizhan_tests::{Node, client, get, temp_dir};

/// The acceptance check of the foundation issue: at least 20 items, every element of
/// SZDB/Z 176 §9.1.2 filled (name, nature, legal basis, conditions, place, process, fees,
/// query channel, consultation and complaint).
#[test]
fn the_demo_serves_a_complete_catalog_and_cases_in_every_state() {
    let dir = temp_dir();
    let node = Node::demo(dir.path());
    let http = client();
    let (status, list) = get(&http, &node.url("/api/v1/items?limit=500"), None).unwrap();
    assert_eq!(status, 200);
    let items = list["items"].as_array().unwrap();
    assert!(items.len() >= 20, "{} items", items.len());
    for entry in items {
        let (status, item) = get(
            &http,
            &node.url(&format!("/api/v1/items/{}", entry["id"].as_str().unwrap())),
            None,
        )
        .unwrap();
        assert_eq!(status, 200);
        let name = item["name"].as_str().unwrap();
        assert!(!name.is_empty());
        assert!(
            !item["kind"]["name"].as_str().unwrap().is_empty(),
            "{name}: nature"
        );
        assert!(
            !item["legal_basis"][0]["title"].as_str().unwrap().is_empty(),
            "{name}: legal basis"
        );
        assert!(
            !item["conditions"][0].as_str().unwrap().is_empty(),
            "{name}: conditions"
        );
        assert!(
            !item["place"]["address"].as_str().unwrap().is_empty(),
            "{name}: place"
        );
        assert!(
            !item["process"][0]["name"].as_str().unwrap().is_empty(),
            "{name}: process"
        );
        assert!(
            !item["fee_text"].as_str().unwrap().is_empty(),
            "{name}: fees"
        );
        assert!(
            !item["query_channels"][0].as_str().unwrap().is_empty(),
            "{name}: query channel"
        );
        assert!(
            !item["consultation"][0].as_str().unwrap().is_empty(),
            "{name}: consultation"
        );
        assert!(
            !item["complaint"][0].as_str().unwrap().is_empty(),
            "{name}: complaint"
        );
        assert!(
            !item["materials"].as_array().unwrap().is_empty(),
            "{name}: materials"
        );
        assert_eq!(item["impl_code"].as_str().unwrap().len(), 31);
    }

    let token = node
        .printed_after("API token of `worker`:")
        .expect("the demo prints a token");
    for account in ["admin", "lead", "worker"] {
        assert!(
            node.printed
                .iter()
                .any(|l| l.trim_start().starts_with(account)),
            "{account} is printed"
        );
    }
    let (status, cases) = get(&http, &node.url("/api/v1/cases?limit=100"), Some(&token)).unwrap();
    assert_eq!(status, 200);
    let statuses: HashSet<&str> = cases["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["status"].as_str().unwrap())
        .collect();
    for expected in [
        "submitted",
        "awaiting_supplement",
        "accepted",
        "suspended",
        "completed",
        "refused",
    ] {
        assert!(
            statuses.contains(expected),
            "a demo case is {expected}: {statuses:?}"
        );
    }
    let levels: HashSet<&str> = cases["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["warning_level"].as_str())
        .collect();
    assert!(
        levels.len() >= 3,
        "demo cases show several warning levels: {levels:?}"
    );

    // The same data dir starts again without seeding twice.
    drop(node);
    let again = Node::demo(dir.path());
    let (_, list) = get(&http, &again.url("/api/v1/items?limit=500"), None).unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), items.len());
    assert!(again.printed_after("API token of `worker`:").is_none());
}
