//! One generation at a time per thread, with a lease the generator renews; the thread shows
//! whether a reply is being generated.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, eventually, random_user,
    sse::read_chat,
    turns::{dead_generator, thread_turn},
};

/// Starts a slow chat and returns its response once the first chunk has arrived.
async fn start_slow(app: &TestApp, token: &str, body: &Value) -> reqwest::Response {
    let mut resp = app
        .client
        .post(app.url("/api/chat"))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.chunk().await.unwrap().is_some());
    resp
}

#[tokio::test]
async fn a_second_turn_on_a_generating_thread_gets_409_and_the_thread_shows_it() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let thread = app.new_thread_id(&token, "busy").await;
    let slow = start_slow(
        &app,
        &token,
        &thread_turn(&thread, "m-1", "long [[mock tokens=8 inter_token_ms=100]]"),
    )
    .await;
    let active = slow.headers()["x-message-id"].to_str().unwrap().to_owned();

    let second = app
        .chat(&token, thread_turn(&thread, "m-2", "meanwhile"))
        .await;
    let (_, page) = app.get(&format!("/api/threads/{thread}"), &token).await;
    let (_, list) = app.get("/api/threads", &token).await;

    assert_eq!(second.status, StatusCode::CONFLICT);
    assert_eq!(second.json["error"]["code"], "generation_in_progress");
    assert_eq!(second.header("x-message-id"), active);
    assert_eq!(page["thread"]["status"], "streaming");
    assert_eq!(page["thread"]["activeMessageId"], active.as_str());
    assert_eq!(list["threads"][0]["status"], "streaming");
    assert_eq!(app.mock.calls(), 1, "the refused turn reached the model");

    let rest = read_chat(slow).await;
    assert_eq!(rest.last_data(), Some("[DONE]"));
    let (_, page) = app.get(&format!("/api/threads/{thread}"), &token).await;
    assert_eq!(page["thread"]["status"], "idle");
    assert!(page["thread"].get("activeMessageId").is_none());
    // The refused turn stored nothing; the thread is free again.
    assert_eq!(page["messages"].as_array().unwrap().len(), 2);
    let third = app.chat(&token, thread_turn(&thread, "m-2", "now")).await;
    assert_eq!(third.status, StatusCode::OK);
}

#[tokio::test]
async fn a_thread_whose_last_reply_failed_shows_error() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let broken = app
        .chat(&token, json!({ "messages": [{ "role": "user", "content": "x [[mock tokens=4 cut_after=2]]" }] }))
        .await;
    let thread = broken.header("x-thread-id").to_owned();
    let (_, page) = app.get(&format!("/api/threads/{thread}"), &token).await;
    assert_eq!(page["thread"]["status"], "error");
    let refused = app
        .chat(&token, thread_turn(&thread, "m-9", "x [[mock status=500]]"))
        .await;
    assert_eq!(refused.status, StatusCode::BAD_GATEWAY);
    let (_, page) = app.get(&format!("/api/threads/{thread}"), &token).await;
    assert_eq!(
        page["thread"]["status"], "error",
        "a failure before the first token too"
    );
    app.chat(&token, thread_turn(&thread, "m-10", "fine")).await;
    let (_, page) = app.get(&format!("/api/threads/{thread}"), &token).await;
    assert_eq!(page["thread"]["status"], "idle");
}

#[tokio::test]
async fn a_crashed_generator_frees_the_thread_when_its_lease_runs_out() {
    let app = TestApp::spawn().await;
    let user = random_user();
    let token = app.token_for(&user);
    let thread = app.new_thread_id(&token, "crash").await;
    // A generator that took the thread and died: nobody renews or releases its lease.
    let (crashed, _) = dead_generator(&app, &user, &thread, Duration::from_millis(800)).await;

    let blocked = app
        .chat(&token, thread_turn(&thread, "m-1", "hello?"))
        .await;
    assert_eq!(blocked.status, StatusCode::CONFLICT);
    assert_eq!(blocked.header("x-message-id"), crashed.as_str());

    let freed = eventually(Duration::from_secs(5), || async {
        let reply = app
            .chat(&token, thread_turn(&thread, "m-1", "hello?"))
            .await;
        (reply.status == StatusCode::OK).then_some(reply)
    })
    .await
    .expect("the lease never ran out");
    assert_eq!(freed.last_data(), Some("[DONE]"));
}

#[tokio::test]
async fn a_reply_longer_than_the_lease_keeps_the_thread_busy_while_it_runs() {
    let app = TestApp::spawn_with(|config| {
        config.chat.generation_lease = Duration::from_millis(600);
    })
    .await;
    let token = app.token_for(&random_user());
    let thread = app.new_thread_id(&token, "long").await;
    // About 2.4 s of reply against a 600 ms lease: only renewals keep the thread busy.
    let slow = start_slow(
        &app,
        &token,
        &thread_turn(&thread, "m-1", "go [[mock tokens=7 inter_token_ms=400]]"),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let second = app
        .chat(&token, thread_turn(&thread, "m-2", "me too"))
        .await;

    assert_eq!(second.status, StatusCode::CONFLICT, "{}", second.json);
    let rest = read_chat(slow).await;
    assert_eq!(rest.last_data(), Some("[DONE]"));
}
