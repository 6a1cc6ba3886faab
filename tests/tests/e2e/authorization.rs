//! The authorization sweep: every operation of the contract, called the ways an attacker would —
//! with no token, an expired token, a revoked token and, where the contract declares a role, a
//! plain user's token — answers 401/401/401/403 with the right `error_code` and
//! `WWW-Authenticate`, and writes nothing (only the audit log records the refused role checks).
//!
//! The list of operations comes from the generated code (`agora_api::OPERATIONS`, which carries
//! each operation's security and `x-agora-*` policy) and is checked against the contract itself:
//! an operation that is neither public (`security: []`) nor swept fails the test. Requests carry
//! no body and placeholder path values, so the sweep also proves that authentication and the
//! role check come before validation: nobody unauthorised learns a body schema.

use std::collections::BTreeSet;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::e2e_both_backends;
use crate::support::{TEST_JWT_KID, TEST_JWT_SECRET, TestApp};

/// How one refused call must answer.
struct Expect {
    status: u16,
    error_code: &'static str,
    www_authenticate: Option<&'static str>,
}

const NO_TOKEN: Expect = Expect {
    status: 401,
    error_code: "unauthenticated",
    www_authenticate: Some("Bearer"),
};
const REFUSED_TOKEN: Expect = Expect {
    status: 401,
    error_code: "unauthenticated",
    www_authenticate: Some("Bearer error=\"invalid_token\""),
};
const NO_ROLE: Expect = Expect {
    status: 403,
    error_code: "forbidden",
    www_authenticate: None,
};

/// Operation ids and whether each is public, read from `openapi.yaml` itself (not from the
/// generated code), so the sweep's list cannot silently shrink. An operation tagged `admin` must
/// declare `x-agora-role: admin`: dropping the role from one fails here, not in production.
fn contract_operations() -> Vec<(String, bool)> {
    let doc: Value = serde_yaml::from_str(agora_api::CONTRACT_YAML).expect("the contract parses");
    let global_public = doc["security"].as_array().is_none_or(Vec::is_empty);
    let mut ops = Vec::new();
    for item in doc["paths"].as_object().expect("paths").values() {
        for (method, op) in item.as_object().expect("path item") {
            let Some(id) = op.get("operationId").and_then(Value::as_str) else {
                continue;
            };
            assert!(
                [
                    "get", "put", "post", "delete", "patch", "head", "options", "trace"
                ]
                .contains(&method.as_str()),
                "{id}"
            );
            let tagged_admin = op["tags"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t == "admin"));
            if tagged_admin {
                assert_eq!(
                    op.get("x-agora-role").and_then(Value::as_str),
                    Some("admin"),
                    "{id} is tagged admin but does not declare x-agora-role: admin"
                );
            }
            let public = match op.get("security") {
                Some(s) => s.as_array().is_some_and(Vec::is_empty),
                None => global_public,
            };
            ops.push((id.to_owned(), public));
        }
    }
    ops
}

/// The route with every `{variable}` filled with a well-formed but unknown id.
fn concrete(route: &str) -> String {
    route
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                uuid::Uuid::now_v7().to_string()
            } else {
                segment.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn claims_of(access_token: &str) -> Value {
    let payload = access_token.split('.').nth(1).expect("a JWT has a payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64")).expect("json")
}

/// A token signed with the server's key exactly as it signs, but expired an hour ago (past any
/// leeway).
fn expired_like(access_token: &str) -> String {
    let mut claims = claims_of(access_token);
    let now = jsonwebtoken::get_current_timestamp();
    claims["iat"] = json!(now - 7200);
    claims["exp"] = json!(now - 3600);
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(TEST_JWT_KID.to_owned());
    jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_secret(TEST_JWT_SECRET.as_bytes()),
    )
    .expect("sign")
}

async fn call(
    app: &TestApp,
    op: &agora_api::rt::Operation,
    token: Option<&str>,
    why: &str,
    expect: &Expect,
) {
    if channels().contains(&op.id.to_owned()) {
        return refused_channel(app, op, token, why).await;
    }
    let method = reqwest::Method::from_bytes(op.method.as_bytes()).expect("method");
    let mut request =
        reqwest::Client::new().request(method, format!("{}{}", app.base_url, concrete(op.route)));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let www = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let at = format!("{} {} ({}) {why}", op.method, op.route, op.id);
    assert_eq!(status, expect.status, "{at}: {body}");
    assert_eq!(body["error_code"], expect.error_code, "{at}: {body}");
    assert_eq!(www.as_deref(), expect.www_authenticate, "{at}");
}

/// The operations that are WebSocket channels (`x-dropshot-websocket`).
fn channels() -> Vec<String> {
    let contract: Value =
        serde_yaml::from_str(agora_api::CONTRACT_YAML).expect("the contract parses");
    let mut out = Vec::new();
    for item in contract["paths"]
        .as_object()
        .into_iter()
        .flat_map(|p| p.values())
    {
        if let Some(op) = item.get("get")
            && op.get("x-dropshot-websocket").is_some()
            && let Some(id) = op["operationId"].as_str()
        {
            out.push(id.to_owned());
        }
    }
    out
}

/// A channel refuses after the upgrade: the socket closes with 1008 (policy) and nothing else.
async fn refused_channel(
    app: &TestApp,
    op: &agora_api::rt::Operation,
    token: Option<&str>,
    why: &str,
) {
    use agora_client::realtime::{Event, Realtime};
    let at = format!("{} {} ({}) {why}", op.method, op.route, op.id);
    let mut socket = Realtime::connect_with(&app.base_url, token)
        .await
        .unwrap_or_else(|e| panic!("{at}: the upgrade succeeds: {e}"));
    let event = tokio::time::timeout(std::time::Duration::from_secs(10), socket.next())
        .await
        .unwrap_or_else(|_| panic!("{at}: closes in time"))
        .unwrap_or_else(|e| panic!("{at}: {e}"));
    match event {
        Event::Closed { code, .. } => assert_eq!(code, Some(1008), "{at}"),
        Event::Frame(frame) => panic!("{at}: a refused socket got {frame:?}"),
        Event::Unknown { text, .. } => panic!("{at}: a refused socket got {text}"),
    }
}

/// Waits until `signed_up` events are stored `n` times and no analytics batch waits.
async fn settle_analytics(db: &agora_db::Db, n: i64) {
    let waiting = agora_db::jobs::JobFilter {
        kind: Some("write_analytics".into()),
        state: Some(agora_db::jobs::JobState::Ready),
        ..Default::default()
    };
    agora_db::testing::eventually("analytics to settle", async || {
        let stored = db.count_analytics_events("signed_up").await.ok()?;
        let pending = db.list_jobs(&waiting, None, 1).await.ok()?;
        (stored == n && pending.is_empty()).then_some(())
    })
    .await;
}

async fn sweep(app: &TestApp) {
    // The generated list and the contract agree on what exists and what is public.
    let generated: BTreeSet<(String, bool)> = agora_api::OPERATIONS
        .iter()
        .map(|op| (op.id.to_owned(), !op.secured))
        .collect();
    let contract: BTreeSet<(String, bool)> = contract_operations().into_iter().collect();
    assert_eq!(
        generated, contract,
        "agora_api::OPERATIONS drifted from openapi.yaml"
    );

    let plain = app.register("sweeper").await;
    let plain_token = plain.tokens.access_token.clone();
    let expired = expired_like(&plain_token);
    let revoked = app.register("revoked").await;
    app.client_with_token(&revoked.tokens.access_token)
        .logout()
        .send()
        .await
        .expect("logout");
    let revoked_token = revoked.tokens.access_token;

    let db = app.database().await;
    // The two sign-ups' analytics events are written in the background: wait for them (and the
    // job that wrote them) so the counts below change only if a refused call wrote something.
    settle_analytics(&db, 2).await;
    let before = agora_db::testing::row_counts(&db).await.expect("counts");

    let mut swept = BTreeSet::new();
    let mut role_gated = 0;
    for op in agora_api::OPERATIONS {
        if !op.secured {
            continue;
        }
        call(app, op, None, "without a token", &NO_TOKEN).await;
        call(
            app,
            op,
            Some(&expired),
            "with an expired token",
            &REFUSED_TOKEN,
        )
        .await;
        call(
            app,
            op,
            Some(&revoked_token),
            "with a revoked token",
            &REFUSED_TOKEN,
        )
        .await;
        if op.role.is_some() {
            call(app, op, Some(&plain_token), "as a plain user", &NO_ROLE).await;
            role_gated += 1;
        }
        swept.insert(op.id);
    }

    // Coverage: every operation is public or was swept.
    for (id, public) in contract_operations() {
        assert!(
            public || swept.contains(id.as_str()),
            "{id} is neither public (security: []) nor covered by the sweep"
        );
    }
    assert!(role_gated > 0, "the contract has admin operations");

    // Nothing was written, except one `admin_denied` audit event per refused role check. A
    // refused `track_events` that buffered anyway would show up after one flush interval.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    settle_analytics(&db, 2).await;
    let mut after = agora_db::testing::row_counts(&db).await.expect("counts");
    let audited = after.get("audit_events").copied().unwrap_or(0)
        - before.get("audit_events").copied().unwrap_or(0);
    assert_eq!(
        audited, role_gated,
        "one admin_denied event per role refusal"
    );
    after.insert(
        "audit_events".into(),
        before.get("audit_events").copied().unwrap_or(0),
    );
    assert_eq!(after, before, "a refused call wrote something");
}

e2e_both_backends!(
    every_operation_refuses_the_unauthorised,
    &[
        ("AGORA_AUTH__KEYS", crate::support::TEST_JWT_KEYS),
        // On here (TestApp switches it off): a refused `track_events` must buffer nothing.
        ("AGORA_ANALYTICS__ENABLED", "true"),
        ("AGORA_ANALYTICS__FLUSH_INTERVAL_MS", "20"),
    ],
    |app| async move { sweep(&app).await }
);
