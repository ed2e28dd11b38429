//! `Server-Timing` on every response: the server's own time by phase, in milliseconds.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, random_user};

/// The header's metrics as `(name, dur)`, each checked to be a non-negative number.
fn metrics(resp: &reqwest::Response) -> Vec<(String, f64)> {
    let value = resp
        .headers()
        .get("server-timing")
        .unwrap_or_else(|| panic!("no server-timing on {} {}", resp.status(), resp.url()))
        .to_str()
        .unwrap();
    value
        .split(", ")
        .map(|metric| {
            let (name, dur) = metric.split_once(";dur=").unwrap();
            let dur: f64 = dur.parse().unwrap();
            assert!(dur >= 0.0 && dur.is_finite(), "{metric}");
            (name.to_owned(), dur)
        })
        .collect()
}

fn names(metrics: &[(String, f64)]) -> Vec<&str> {
    metrics.iter().map(|(name, _)| name.as_str()).collect()
}

#[tokio::test]
async fn every_route_tells_where_its_time_went() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let thread = app.new_thread_id(&token, "timed").await;
    let send = |method: Method, path: &str, auth: bool, body: Option<serde_json::Value>| {
        let mut request = app.client.request(method, app.url(path));
        if auth {
            request = request.bearer_auth(&token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send()
    };

    // A streamed turn: auth, Redis and the model's first chunk, all before the head left.
    let resp = send(
        Method::POST,
        "/api/chat",
        true,
        Some(json!({ "threadId": thread, "messages": [{ "role": "user", "content": "hi" }] })),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let chat = metrics(&resp);
    assert_eq!(names(&chat), ["auth", "store", "upstream", "total"]);
    let dur = |name: &str| chat.iter().find(|(n, _)| n == name).unwrap().1;
    assert!(dur("store") > 0.0, "a turn waits for Redis: {chat:?}");
    assert!(dur("upstream") > 0.0, "and for the model: {chat:?}");
    assert!(dur("total") >= dur("upstream") + dur("store"), "{chat:?}");
    resp.text().await.unwrap();

    // A turn answered whole.
    let resp = send(
        Method::POST,
        "/api/chat/completions",
        true,
        Some(json!({
            "threadId": thread, "stream": false,
            "messages": [{ "role": "user", "content": "again" }],
        })),
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        names(&metrics(&resp)),
        ["auth", "store", "upstream", "total"]
    );

    // Every other route, whatever it answers.
    let cases = [
        (Method::GET, "/api/health".to_owned(), false, StatusCode::OK),
        (Method::GET, "/api/threads".to_owned(), true, StatusCode::OK),
        (
            Method::GET,
            format!("/api/threads/{thread}"),
            true,
            StatusCode::OK,
        ),
        (
            Method::GET,
            "/api/threads/nope".to_owned(),
            true,
            StatusCode::NOT_FOUND,
        ),
        (
            Method::GET,
            format!("/api/chat/{thread}/stream"),
            true,
            StatusCode::NO_CONTENT,
        ),
        (
            Method::POST,
            format!("/api/chat/{thread}/stop"),
            true,
            StatusCode::OK,
        ),
        (
            Method::GET,
            "/api/threads".to_owned(),
            false,
            StatusCode::UNAUTHORIZED,
        ),
        (
            Method::GET,
            "/api/nothing-here".to_owned(),
            false,
            StatusCode::NOT_FOUND,
        ),
        (
            Method::PUT,
            "/api/threads".to_owned(),
            true,
            StatusCode::METHOD_NOT_ALLOWED,
        ),
    ];
    for (method, path, auth, status) in cases {
        let resp = send(method.clone(), &path, auth, None).await.unwrap();
        assert_eq!(resp.status(), status, "{method} {path}");
        let got = metrics(&resp);
        assert_eq!(names(&got), ["auth", "store", "total"], "{method} {path}");
    }

    // A CORS preflight too.
    let resp = app
        .client
        .request(Method::OPTIONS, app.url("/api/threads"))
        .header("origin", "http://localhost:5173")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    assert_eq!(names(&metrics(&resp)), ["auth", "store", "total"]);
}
