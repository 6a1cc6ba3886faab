//! The contract and the server agree: the OpenAPI document the generated adapter emits matches
//! `openapi.yaml` (same operations, methods, paths, parameters, bodies and response schemas).

use agora_tests::contract_diff;

#[test]
fn served_document_matches_the_contract() {
    let contract = contract_diff::parse(agora_api::CONTRACT_YAML).expect("the contract parses");
    let api = agora_api::stub_api_description().expect("the generated API description builds");
    let version = semver(agora_api::CONTRACT_VERSION);
    let emitted = api
        .openapi(agora_api::CONTRACT_TITLE, version)
        .json()
        .expect("Dropshot emits the document");
    let drift = contract_diff::diff(&contract, &emitted);
    assert!(
        drift.is_empty(),
        "the server drifted from openapi.yaml:\n  {}\n\nemitted document:\n{}",
        drift.join("\n  "),
        serde_json::to_string_pretty(&emitted).unwrap_or_default()
    );
}

fn semver(v: &str) -> semver::Version {
    semver::Version::parse(v).expect("info.version is semver")
}
