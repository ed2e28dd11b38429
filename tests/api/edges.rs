//! Defects found at the edges (issue "Reliability"): a thread deleted and made again under
//! its id gets nothing of the old generation; a path segment is one id however it is spelled;
//! a header that is present is checked, never silently ignored.

use std::time::Duration;

use reqwest::{
    Method, StatusCode,
    header::{AUTHORIZATION, HeaderValue},
};
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, error_code, into_parts, random_user,
    turns::{open_chat, slow},
};

async fn create_t1(app: &TestApp, token: &str) {
    let body = json!({ "id": "t1" });
    let (status, _) = app
        .request(Method::POST, "/api/threads", Some(token), Some(body))
        .await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_thread_made_again_under_a_deleted_ones_id_gets_nothing_of_its_generation() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    create_t1(&app, &token).await;
    let mut old = open_chat(
        &app,
        &token,
        json!({ "threadId": "t1", "messages": [{ "role": "user", "content": slow(60, 50, "x") }] }),
    )
    .await;
    assert_eq!(old.take(2).await.len(), 2, "the old generation streams");

    let (status, _) = app
        .request(Method::DELETE, "/api/threads/t1", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    create_t1(&app, &token).await;
    // The old generation ends (stopped by the deletion, or at its last token).
    tokio::time::timeout(Duration::from_secs(10), old.rest())
        .await
        .expect("the old generation ends");

    let (status, page) = app.get("/api/threads/t1", &token).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["messages"], json!([]), "{page}");
    assert_eq!(page["thread"]["messageCount"], 0, "{page}");
    assert_eq!(page["thread"]["status"], "idle", "{page}");
    let resumed = app
        .client
        .get(app.url("/api/chat/t1/stream"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resumed.status(),
        StatusCode::NO_CONTENT,
        "no stream of the old generation"
    );
    // The new thread works as any other.
    let reply = app
        .chat(
            &token,
            json!({ "threadId": "t1", "messages": [{ "role": "user", "content": "hi" }] }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(app.messages(&token, "t1").await.len(), 2);
}

#[tokio::test]
async fn a_path_segment_is_one_id_however_it_is_spelled() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let target = app.new_thread_id(&token, "Keep me").await;
    for segment in [
        format!("bogus&id={target}"),
        format!("bogus%26id%3D{target}"),
        format!("{target}&id={target}"),
    ] {
        let path = format!("/api/threads/{segment}");
        let (status, body) = app
            .request(
                Method::PATCH,
                &path,
                Some(&token),
                Some(json!({ "title": "x" })),
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "PATCH {path}: {body}");
        let (status, body) = app.request(Method::DELETE, &path, Some(&token), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "DELETE {path}: {body}");
        let (status, body) = app
            .request(Method::GET, &format!("{path}/export"), Some(&token), None)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "GET {path}/export: {body}");
    }
    let (status, page) = app.get(&format!("/api/threads/{target}"), &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["thread"]["title"], "Keep me");
}

async fn chat_with(
    app: &TestApp,
    headers: &[(&str, HeaderValue)],
    token: &str,
) -> (StatusCode, Value) {
    let mut request = app
        .client
        .post(app.url("/api/chat"))
        .bearer_auth(token)
        .json(&json!({ "stream": false, "messages": [{ "role": "user", "content": "hi" }] }));
    for (name, value) in headers {
        request = request.header(*name, value.clone());
    }
    into_parts(request.send().await.unwrap()).await
}

#[tokio::test]
async fn a_header_that_is_present_is_checked() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    for raw in [&b"caf\xc3\xa9"[..], b"../x", b"a b"] {
        let value = HeaderValue::from_bytes(raw).unwrap();
        let (status, body) = chat_with(&app, &[("x-thread-id", value)], &token).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{raw:?}: {body}");
        assert_eq!(error_code(&body), "invalid_header", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("x-thread-id"),
            "{body}"
        );
    }
    let thread = app.new_thread_id(&token, "Fine").await;
    let value = HeaderValue::from_str(&thread).unwrap();
    let (status, body) = chat_with(&app, &[("x-thread-id", value)], &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(app.messages(&token, &thread).await.len(), 2);

    // Two `Authorization` headers, even the same one twice: refused, not "first wins".
    let other = app.token_for(&random_user());
    for second in [&other, &token] {
        let resp = app
            .client
            .get(app.url("/api/threads"))
            .header(AUTHORIZATION, format!("Bearer {token}"))
            .header(AUTHORIZATION, format!("Bearer {second}"))
            .send()
            .await
            .unwrap();
        let (status, body) = into_parts(resp).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(error_code(&body), "invalid_header", "{body}");
    }
}
