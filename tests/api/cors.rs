//! CORS for the configured origins, and CSRF protection for cookie-authenticated requests.

use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code, into_parts, random_user};

const APP_ORIGIN: &str = "https://app.example.com";
const EVIL_ORIGIN: &str = "https://evil.example";

async fn spawn() -> TestApp {
    TestApp::spawn_with(|config| {
        config.http.allowed_origins = vec![header::HeaderValue::from_static(APP_ORIGIN)];
    })
    .await
}

fn allow_origin(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        .map(|v| v.to_str().unwrap().to_owned())
}

fn list(resp: &reqwest::Response, name: header::HeaderName) -> String {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_lowercase())
        .unwrap_or_default()
}

#[tokio::test]
async fn an_allowed_origin_gets_a_full_preflight_answer_on_every_route() {
    let app = spawn().await;
    for path in [
        "/api/chat",
        "/api/chat/completions",
        "/api/threads",
        "/api/threads/abc",
        "/api/chat/abc/stream",
        "/api/chat/abc/stop",
        "/api/health",
    ] {
        let resp = app
            .client
            .request(Method::OPTIONS, app.url(path))
            .header(header::ORIGIN, APP_ORIGIN)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(
                header::ACCESS_CONTROL_REQUEST_HEADERS,
                "authorization, content-type, x-thread-id, last-event-id",
            )
            .send()
            .await
            .unwrap();

        assert!(resp.status().is_success(), "{path}: {}", resp.status());
        assert_eq!(allow_origin(&resp).as_deref(), Some(APP_ORIGIN), "{path}");
        assert_eq!(
            list(&resp, header::ACCESS_CONTROL_ALLOW_CREDENTIALS),
            "true",
            "{path}"
        );
        let methods = list(&resp, header::ACCESS_CONTROL_ALLOW_METHODS);
        for method in ["get", "post", "patch", "delete"] {
            assert!(methods.contains(method), "{path}: {methods}");
        }
        let headers = list(&resp, header::ACCESS_CONTROL_ALLOW_HEADERS);
        for name in [
            "authorization",
            "content-type",
            "x-thread-id",
            "last-event-id",
        ] {
            assert!(headers.contains(name), "{path}: {headers}");
        }
        assert!(list(&resp, header::VARY).contains("origin"), "{path}");
    }
}

#[tokio::test]
async fn responses_to_an_allowed_origin_expose_the_api_headers() {
    let app = spawn().await;
    let token = app.token_for(&random_user());
    let resp = app
        .client
        .post(app.url("/api/chat"))
        .bearer_auth(&token)
        .header(header::ORIGIN, APP_ORIGIN)
        .json(&json!({ "messages": [{ "role": "user", "content": "hi" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(allow_origin(&resp).as_deref(), Some(APP_ORIGIN));
    let exposed = list(&resp, header::ACCESS_CONTROL_EXPOSE_HEADERS);
    for name in [
        "x-thread-id",
        "x-message-id",
        "retry-after",
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
    ] {
        assert!(exposed.contains(name), "{exposed}");
    }
    // Errors are readable cross-origin too.
    let resp = app
        .client
        .get(app.url("/api/threads"))
        .header(header::ORIGIN, APP_ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(allow_origin(&resp).as_deref(), Some(APP_ORIGIN));
}

#[tokio::test]
async fn other_origins_get_no_cors_headers() {
    let app = spawn().await;
    let preflight = app
        .client
        .request(Method::OPTIONS, app.url("/api/threads"))
        .header(header::ORIGIN, EVIL_ORIGIN)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(allow_origin(&preflight), None);
    let token = app.token_for(&random_user());
    let resp = app
        .client
        .get(app.url("/api/threads"))
        .bearer_auth(&token)
        .header(header::ORIGIN, EVIL_ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(allow_origin(&resp), None);
    // Without ALLOWED_ORIGIN nothing is allowed cross-origin.
    let same_origin_only = TestApp::spawn().await;
    let resp = same_origin_only
        .client
        .request(Method::OPTIONS, same_origin_only.url("/api/threads"))
        .header(header::ORIGIN, APP_ORIGIN)
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(allow_origin(&resp), None);
}

/// A cookie holding a valid Auth.js session for a fresh user.
fn session_cookie(app: &TestApp) -> (String, String) {
    let user = random_user();
    let token = app.session_token_for(&user, "authjs.session-token");
    (user, format!("authjs.session-token={token}"))
}

#[tokio::test]
async fn a_cookie_authenticated_write_from_a_foreign_origin_is_refused() {
    let app = spawn().await;
    let (user, cookie) = session_cookie(&app);
    type Headers<'a> = Vec<(header::HeaderName, &'a str)>;
    let cases: [(&str, Headers<'_>, StatusCode); 6] = [
        (
            "foreign origin",
            vec![(header::ORIGIN, EVIL_ORIGIN)],
            StatusCode::FORBIDDEN,
        ),
        (
            "cross-site fetch",
            vec![(
                header::HeaderName::from_static("sec-fetch-site"),
                "cross-site",
            )],
            StatusCode::FORBIDDEN,
        ),
        (
            "opaque origin",
            vec![(header::ORIGIN, "null")],
            StatusCode::FORBIDDEN,
        ),
        (
            "allowed origin",
            vec![(header::ORIGIN, APP_ORIGIN)],
            StatusCode::CREATED,
        ),
        (
            "same origin",
            vec![(header::ORIGIN, &app.address)],
            StatusCode::CREATED,
        ),
        ("not a browser", vec![], StatusCode::CREATED),
    ];
    for (case, headers, want) in cases {
        let mut req = app
            .client
            .post(app.url("/api/threads"))
            .header(header::COOKIE, &cookie)
            .json(&json!({ "title": case }));
        for (name, value) in headers {
            req = req.header(name, value);
        }
        let (status, body) = into_parts(req.send().await.unwrap()).await;
        assert_eq!(status, want, "{case}: {body}");
        if want == StatusCode::FORBIDDEN {
            assert_eq!(error_code(&body), "csrf_rejected", "{case}");
        }
    }
    // Reading is not a state change: a foreign page still cannot read the answer (no CORS),
    // but the request itself is harmless.
    let resp = app
        .client
        .get(app.url("/api/threads"))
        .header(header::COOKIE, &cookie)
        .header(header::ORIGIN, EVIL_ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (_, list) = into_parts(resp).await;
    let titles: Vec<&str> = list["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles.len(),
        3,
        "only the admitted writes happened: {titles:?} for {user}"
    );
}

#[tokio::test]
async fn a_bearer_write_from_an_allowed_foreign_origin_works() {
    let app = spawn().await;
    let token = app.token_for(&random_user());
    let resp = app
        .client
        .post(app.url("/api/threads"))
        .bearer_auth(&token)
        .header(header::ORIGIN, APP_ORIGIN)
        .header("sec-fetch-site", "cross-site")
        .json(&json!({ "title": "from the app" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(allow_origin(&resp).as_deref(), Some(APP_ORIGIN));
}

#[tokio::test]
async fn a_bearer_write_is_not_subject_to_the_csrf_check() {
    let app = spawn().await;
    let token = app.token_for(&random_user());
    let (status, body): (StatusCode, Value) = into_parts(
        app.client
            .post(app.url("/api/threads"))
            .bearer_auth(&token)
            .header(header::ORIGIN, EVIL_ORIGIN)
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    // The browser will not let the foreign page read it, but a bearer token cannot be
    // forged by a foreign page in the first place.
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn a_cross_site_cookie_stop_is_refused_and_a_same_site_one_reaches_the_thread() {
    let app = spawn().await;
    let (_, cookie) = session_cookie(&app);
    for (origin, want) in [
        (EVIL_ORIGIN, StatusCode::FORBIDDEN),
        // Past the check, an unknown thread is a 404.
        (APP_ORIGIN, StatusCode::NOT_FOUND),
    ] {
        let resp = app
            .client
            .post(app.url("/api/chat/nothread/stop"))
            .header(header::COOKIE, &cookie)
            .header(header::ORIGIN, origin)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), want, "{origin}");
    }
}
