//! The OpenAPI document matches the server: schemathesis, an OpenAPI-driven fuzzer, sends
//! a demo node requests made from the document (valid and invalid) and checks every answer
//! against it: no server error, every status and body documented, out-of-bounds input
//! refused, secured operations refusing callers without a token.
//!
//! `./test.sh` installs schemathesis (a pinned version in a virtualenv under `target/`)
//! and sets `YIZHAN_SCHEMATHESIS` to it; without it, `cargo test` prints how to run this
//! and skips, unless `YIZHAN_REQUIRE_TOOLS` is set (as `./test.sh` and CI do).

use std::process::Command;

use yizhan_tests::{Node, temp_dir};

/// The checks that must all pass; the stateful ones (resources that must exist after
/// creation) do not fit an API whose writes follow a state machine.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
    response_schema_conformance,response_headers_conformance,negative_data_rejection,\
    missing_required_header,unsupported_method,ignored_auth";

#[test]
fn the_openapi_document_matches_the_server() {
    let Some(schemathesis) = std::env::var_os("YIZHAN_SCHEMATHESIS") else {
        assert!(
            std::env::var_os("YIZHAN_REQUIRE_TOOLS").is_none(),
            "YIZHAN_SCHEMATHESIS is not set; run ./test.sh, which installs schemathesis"
        );
        eprintln!("skipped: schemathesis is not installed here; ./test.sh installs and runs it");
        return;
    };
    let dir = temp_dir();
    let node = Node::demo(dir.path());
    let token = node
        .printed
        .iter()
        .find_map(|l| l.strip_prefix("API token of `worker`: "))
        .expect("the demo prints a token")
        .trim()
        .to_string();
    // schemathesis keeps a cache where it runs: there, not in the repository.
    let output = Command::new(schemathesis)
        .current_dir(dir.path())
        .args([
            "run",
            &node.url("/api/v1/openapi.json"),
            "--url",
            &node.base,
            "--header",
            &format!("Authorization: Bearer {token}"),
            "--checks",
            CHECKS,
            "--max-examples",
            "40",
            "--seed",
            "20261206",
            "--workers",
            "1",
            "--no-color",
        ])
        .output()
        .expect("schemathesis runs");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found the server and its OpenAPI document apart:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        report.contains("passed") && !report.contains("failures"),
        "{report}"
    );
}
