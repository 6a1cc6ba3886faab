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

/// Dropshot's document cannot carry the `x-agora-*` policy extensions, so the round trip adds
/// them from what the generated adapter enforces (`agora_api::OPERATIONS`), by operationId:
/// compat-check then reports any policy the adapter does not enforce as the contract says.
fn with_generated_policy(mut emitted: serde_json::Value) -> serde_json::Value {
    let Some(paths) = emitted
        .get_mut("paths")
        .and_then(serde_json::Value::as_object_mut)
    else {
        return emitted;
    };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for op in item.values_mut() {
            let Some(id) = op.get("operationId").and_then(serde_json::Value::as_str) else {
                continue;
            };
            let Some(policy) = agora_api::OPERATIONS.iter().find(|o| o.id == id) else {
                continue;
            };
            for (key, value) in [
                ("x-agora-role", policy.role),
                ("x-agora-rate-limit", policy.rate_limit),
                ("x-agora-feature", policy.feature),
            ] {
                if let (Some(value), Some(op)) = (value, op.as_object_mut()) {
                    op.insert(key.to_owned(), value.into());
                }
            }
        }
    }
    emitted
}

fn semver(v: &str) -> semver::Version {
    semver::Version::parse(v).expect("info.version is semver")
}

/// The same round trip through compat-check, in both directions: neither document may break the
/// other at the wire level. Dropshot's representation differences (listed in
/// `agora_tests::contract_diff`) are normalized first.
#[test]
fn compat_check_finds_no_break_either_way() {
    let contract = contract_diff::parse(agora_api::CONTRACT_YAML).expect("the contract parses");
    let api = agora_api::stub_api_description().expect("the generated API description builds");
    let emitted = api
        .openapi(
            agora_api::CONTRACT_TITLE,
            semver(agora_api::CONTRACT_VERSION),
        )
        .json()
        .expect("Dropshot emits the document");
    let emitted = with_generated_policy(contract_diff::align_representation(&contract, emitted));
    let contract_doc = compat_check::Document::from_str(
        "openapi.yaml",
        &serde_json::to_string(&contract).expect("json"),
    )
    .expect("loads");
    let emitted_doc = compat_check::Document::from_str(
        "emitted",
        &serde_json::to_string(&emitted).expect("json"),
    )
    .expect("loads");
    let options = compat_check::Options {
        level: compat_check::Level::Wire,
        ..Default::default()
    };
    for (name, old, new) in [
        ("contract -> served", &contract_doc, &emitted_doc),
        ("served -> contract", &emitted_doc, &contract_doc),
    ] {
        let report = compat_check::compare_documents(old, new, &options);
        assert!(
            !report.has_breaking(),
            "{name}:\n{}",
            report.render(compat_check::Format::Text)
        );
    }
}

/// The golden list of every operation's security and policy (`x-agora-*`), and of every client
/// frame's: a change to who may call what, which budget it spends or which flag gates it shows
/// up in review as a diff of `snapshots/contract__policy.snap`.
#[test]
fn policy_golden_file() {
    let mut table = format!(
        "{:<24} {:<7} {:<36} {:<9} {:<6} {:<11} {}\n",
        "operation", "method", "route", "security", "role", "rate_limit", "feature"
    );
    for op in agora_api::OPERATIONS {
        table.push_str(&format!(
            "{:<24} {:<7} {:<36} {:<9} {:<6} {:<11} {}\n",
            op.id,
            op.method,
            op.route,
            if op.secured { "bearer" } else { "public" },
            op.role.unwrap_or("-"),
            op.rate_limit.unwrap_or("-"),
            op.feature.unwrap_or("-"),
        ));
    }
    table.push_str(&format!(
        "\n{:<24} {:<13} {:<11} {}\n",
        "channel", "client frame", "rate_limit", "feature"
    ));
    for (channel, frame) in agora_api::CLIENT_FRAMES {
        table.push_str(&format!(
            "{:<24} {:<13} {:<11} {}\n",
            channel,
            frame.name,
            frame.rate_limit.unwrap_or("-"),
            frame.feature.unwrap_or("-"),
        ));
    }
    insta::assert_snapshot!("policy", table);
}

/// The released contracts are immutable and each is compatible with its predecessor unless its
/// major number grew (the same check as `compat-check history` in CI); the working contract is
/// at least the newest release's version.
#[test]
fn release_history_is_sound() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi/released");
    let history = compat_check::release::History::load(&dir).expect("the history loads");
    let problems = history.verify().expect("the history verifies");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let newest = history.newest().expect("at least one release");
    let current = semver(agora_api::CONTRACT_VERSION);
    assert!(
        current >= newest.version,
        "openapi.yaml is {current}, older than the released {}",
        newest.version
    );
}

/// The error codes the server can answer (`agora_api::rt::ErrorCode`, the closed enum every error
/// constructor goes through) are exactly the contract's `ApiError.error_code` list, each with a
/// description; and nothing in the server spells a code as a string past that enum.
#[test]
fn every_error_code_is_in_the_contract() {
    let doc: serde_json::Value =
        serde_yaml::from_str(agora_api::CONTRACT_YAML).expect("the contract parses");
    let field = &doc["components"]["schemas"]["ApiError"]["properties"]["error_code"];
    let listed: Vec<&str> = field["x-extensible-enum"]
        .as_array()
        .expect("x-extensible-enum")
        .iter()
        .filter_map(serde_json::Value::as_str)
        .collect();
    let descriptions = field["x-enum-descriptions"]
        .as_array()
        .expect("x-enum-descriptions");
    assert_eq!(descriptions.len(), listed.len(), "one description per code");
    let emitted: Vec<&str> = agora_api::rt::ErrorCode::ALL
        .iter()
        .map(|c| c.as_str())
        .collect();
    assert_eq!(emitted, listed, "ErrorCode::ALL and the contract disagree");

    // The scan: outside the enum, no source file assigns an `error_code` from a string literal.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let pattern = scan_for_literal_codes(&[root.join("src"), root.join("server/src")]);
    assert!(
        pattern.is_empty(),
        "error codes spelt outside ErrorCode: {pattern:?}"
    );
}

/// `error_code: "…"` or `error_code = "…"` in non-test Rust sources under `dirs`.
fn scan_for_literal_codes(dirs: &[std::path::PathBuf]) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack: Vec<std::path::PathBuf> = dirs.to_vec();
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            // Test modules assert on codes; they are not constructors.
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for (n, line) in code.lines().enumerate() {
                let compact: String = line.split_whitespace().collect();
                if compact.contains("error_code:\"") || compact.contains("error_code=\"") {
                    hits.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                }
            }
        }
    }
    hits
}
