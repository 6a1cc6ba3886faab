//! Cross-origin access, which the generated adapter applies to every route. Raw HTTP: the
//! generated client cannot send `OPTIONS`.

use reqwest::Method;

use crate::support::TestApp;

const APP: &str = "https://app.example.com";

pub(crate) async fn request(
    app: &TestApp,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut builder = reqwest::Client::new().request(method, format!("{}{path}", app.base_url));
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.send().await.expect("answers")
}

pub(crate) fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

pub(crate) async fn error_code(response: reqwest::Response) -> String {
    let body: serde_json::Value = response.json().await.expect("a JSON error body");
    body["error_code"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn by_default_no_origin_is_allowed() {
    let app = TestApp::start().await;
    let preflight = request(
        &app,
        Method::OPTIONS,
        "/v1/me",
        &[("origin", APP), ("access-control-request-method", "GET")],
    )
    .await;
    assert_eq!(preflight.status().as_u16(), 403);
    assert!(header(&preflight, "access-control-allow-origin").is_none());
    assert!(header(&preflight, "x-request-id").is_some());
    assert_eq!(error_code(preflight).await, "forbidden");

    let simple = request(&app, Method::GET, "/healthz", &[("origin", APP)]).await;
    assert_eq!(simple.status().as_u16(), 200);
    assert!(header(&simple, "access-control-allow-origin").is_none());
}

#[tokio::test]
async fn an_allowed_origin_gets_preflights_and_readable_answers() {
    let origins = format!("[\"{APP}\"]");
    let app = TestApp::start_with(&[("AGORA_HTTP__CORS_ALLOWED_ORIGINS", &origins)]).await;

    let preflight = request(
        &app,
        Method::OPTIONS,
        "/v1/me",
        &[
            ("origin", APP),
            ("access-control-request-method", "PATCH"),
            (
                "access-control-request-headers",
                "authorization, content-type",
            ),
        ],
    )
    .await;
    assert_eq!(preflight.status().as_u16(), 204);
    assert_eq!(header(&preflight, "access-control-allow-origin"), Some(APP));
    assert_eq!(
        header(&preflight, "access-control-allow-methods"),
        Some("GET, PATCH, OPTIONS")
    );
    assert_eq!(header(&preflight, "access-control-max-age"), Some("600"));
    assert!(header(&preflight, "access-control-allow-credentials").is_none());

    // Routes with variables answer for any value.
    let with_variable = request(
        &app,
        Method::OPTIONS,
        &format!("/v1/users/{}", uuid::Uuid::now_v7()),
        &[("origin", APP), ("access-control-request-method", "GET")],
    )
    .await;
    assert_eq!(with_variable.status().as_u16(), 204);

    // What the route does not have, another origin, or an unlisted header: refused, and why.
    for (path, origin, method, headers) in [
        ("/v1/me", APP, "DELETE", ""),
        ("/v1/me", "https://evil.example", "GET", ""),
        ("/v1/me", APP, "GET", "x-evil"),
    ] {
        let refused = request(
            &app,
            Method::OPTIONS,
            path,
            &[
                ("origin", origin),
                ("access-control-request-method", method),
                ("access-control-request-headers", headers),
            ],
        )
        .await;
        // A browser fails any preflight that is not 2xx; the body says why, for the developer.
        assert_eq!(
            refused.status().as_u16(),
            403,
            "{origin} {method} {headers}"
        );
        if origin != APP {
            assert!(header(&refused, "access-control-allow-origin").is_none());
        }
        assert!(header(&refused, "access-control-allow-methods").is_none());
    }

    // An actual request: a browser may read the answer, errors and their headers included.
    let unauthenticated = request(&app, Method::GET, "/v1/me", &[("origin", APP)]).await;
    assert_eq!(unauthenticated.status().as_u16(), 401);
    assert_eq!(
        header(&unauthenticated, "access-control-allow-origin"),
        Some(APP)
    );
    assert_eq!(header(&unauthenticated, "vary"), Some("origin"));
    let exposed = header(&unauthenticated, "access-control-expose-headers").unwrap_or_default();
    for name in ["x-request-id", "retry-after", "ratelimit"] {
        assert!(exposed.contains(name), "{exposed}");
    }
    let other = request(
        &app,
        Method::GET,
        "/healthz",
        &[("origin", "https://evil.example")],
    )
    .await;
    assert!(header(&other, "access-control-allow-origin").is_none());

    // A plain OPTIONS (no Origin) lists the methods.
    let plain = request(&app, Method::OPTIONS, "/v1/me/sessions", &[]).await;
    assert_eq!(plain.status().as_u16(), 204);
    assert_eq!(header(&plain, "allow"), Some("GET, DELETE, OPTIONS"));
}

#[tokio::test]
async fn a_bad_origin_setting_is_a_configuration_error() {
    let err = agora_server::config::Config::load(&agora_server::config::Sources {
        file: None,
        env: Some(vec![(
            "AGORA_HTTP__CORS_ALLOWED_ORIGINS".into(),
            "[\"https://app.example.com/\"]".into(),
        )]),
    })
    .expect_err("a trailing slash is not an origin");
    assert!(
        err.to_string().contains("http.cors_allowed_origins"),
        "{err}"
    );
}
