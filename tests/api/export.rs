//! Export: every thread of the user as NDJSON or Markdown, streamed; one thread as JSON or
//! Markdown; always as an attachment, and only the caller's own.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, random_user};

async fn raw(app: &TestApp, token: &str, path: &str) -> (StatusCode, String, String, String) {
    let resp = app
        .client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    let (kind, disposition) = (header("content-type"), header("content-disposition"));
    (resp.status(), kind, disposition, resp.text().await.unwrap())
}

#[tokio::test]
async fn every_thread_exports_with_its_messages_and_one_thread_alone() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let mut ids = Vec::new();
    for i in 0..3 {
        let reply = app
            .chat(
                &token,
                json!({ "messages": [{ "role": "user", "content": format!("question {i}") }] }),
            )
            .await;
        ids.push(reply.header("x-thread-id").to_owned());
    }
    // Archived threads are exported too.
    app.request(
        Method::PATCH,
        &format!("/api/threads/{}", ids[0]),
        Some(&token),
        Some(json!({ "archived": true })),
    )
    .await;
    let (status, kind, disposition, body) = raw(&app, &token, "/api/export").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(kind, "application/x-ndjson");
    assert!(
        disposition.starts_with("attachment; filename=\"buddahbot-export-"),
        "{disposition}"
    );
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    let exported: Vec<&str> = lines
        .iter()
        .map(|l| l["thread"]["id"].as_str().unwrap())
        .collect();
    let mut want: Vec<&str> = ids.iter().map(String::as_str).rev().collect();
    want.sort_unstable();
    let mut got = exported.clone();
    got.sort_unstable();
    assert_eq!(got, want);
    for line in &lines {
        let id = line["thread"]["id"].as_str().unwrap();
        assert_eq!(
            line["messages"],
            Value::Array(app.messages(&token, id).await),
            "{id}"
        );
    }

    let (status, kind, _, markdown) = raw(&app, &token, "/api/export?format=markdown").await;
    assert_eq!(status, StatusCode::OK);
    assert!(kind.starts_with("text/markdown"));
    for i in 0..3 {
        assert!(markdown.contains(&format!("question {i}")));
    }
    assert_eq!(markdown.matches("\n---\n").count(), 3);

    let (status, _, disposition, one) =
        raw(&app, &token, &format!("/api/threads/{}/export", ids[1])).await;
    assert_eq!(status, StatusCode::OK);
    assert!(disposition.contains(&format!("thread-{}-", ids[1])));
    let one: Value = serde_json::from_str(&one).unwrap();
    assert_eq!(one["messages"][0]["content"], "question 1");
    let (status, _, _, md) = raw(
        &app,
        &token,
        &format!("/api/threads/{}/export?format=markdown", ids[1]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(md.starts_with("# question 1"));

    let (status, _, _, _) = raw(&app, &token, "/api/export?format=xml").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let other = app.token_for(&random_user());
    let (status, _, _, _) = raw(&app, &other, &format!("/api/threads/{}/export", ids[1])).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _, nothing) = raw(&app, &other, "/api/export").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        nothing.is_empty(),
        "another user's export holds none of these"
    );
}
