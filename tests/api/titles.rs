//! Titles written by the model after a thread's first reply (and on demand), sent to AI SDK
//! clients as a transient data part when ready in time; a user's own title wins.

use std::time::Duration;

use buddahbot::chat::title::clean;
use mock_upstream::reply_text;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, eventually, random_user, turns::chat_id};

/// An app whose threads are titled by the model (the tests' default is off).
async fn titled() -> TestApp {
    TestApp::spawn_with(|config| config.chat.auto_title = true).await
}

async fn title_of(app: &TestApp, token: &str, thread: &str) -> String {
    let (_, page) = app.get(&format!("/api/threads/{thread}"), token).await;
    page["thread"]["title"].as_str().unwrap().to_owned()
}

/// The title the mock's answer of `tokens` words makes.
fn expected(tokens: usize) -> String {
    clean(&reply_text(tokens)).unwrap().as_str().to_owned()
}

#[tokio::test]
async fn a_first_turn_gets_a_model_written_title_and_later_turns_keep_it() {
    let app = titled().await;
    let token = app.token_for(&random_user());
    let first = "Plan a trip [[mock tokens=6]]";
    let reply = app
        .chat(
            &token,
            json!({ "messages": [{ "role": "user", "content": first }] }),
        )
        .await;
    let thread = reply.header("x-thread-id").to_owned();
    let want = expected(6);
    let got = eventually(Duration::from_secs(5), || async {
        let title = title_of(&app, &token, &thread).await;
        (title == want).then_some(title)
    })
    .await;
    assert_eq!(
        got.as_deref(),
        Some(want.as_str()),
        "the model's title replaced the provisional one"
    );
    let titling = app
        .mock
        .requests()
        .into_iter()
        .find(|r| {
            r["messages"][0]["content"]
                .as_str()
                .unwrap_or_default()
                .starts_with("Name the conversation")
        })
        .expect("the model was asked for a title");
    assert_eq!(titling["messages"][1]["content"], first);

    // A second turn asks for no title.
    let calls = app.mock.calls();
    app.chat(
        &token,
        json!({ "threadId": thread, "messages": [
        { "role": "user", "content": first },
        { "role": "assistant", "content": reply.text() },
        { "role": "user", "content": "more [[mock tokens=3]]" },
    ] }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(app.mock.calls(), calls + 1);
}

#[tokio::test]
async fn the_ui_stream_carries_the_title_when_it_is_ready_before_the_end() {
    let app = titled().await;
    let token = app.token_for(&random_user());
    let chat = chat_id();
    // The reply streams 80 words over 1.6 s; the title (24 words at most) is ready well
    // before.
    let reply = app
        .chat(
            &token,
            json!({ "id": chat, "messages": [{ "id": "u1", "role": "user", "parts": [
            { "type": "text", "text": "Slow one [[mock tokens=80 inter_token_ms=20]]" },
        ] }] }),
        )
        .await;
    let parts: Vec<Value> = reply
        .events
        .iter()
        .filter(|e| e.data != "[DONE]")
        .map(|e| e.json())
        .filter(|c| c["type"] == "data-thread-title")
        .collect();
    assert_eq!(parts.len(), 1, "one title part");
    assert_eq!(parts[0]["transient"], true);
    assert_eq!(parts[0]["data"]["threadId"], chat.as_str());
    assert_eq!(parts[0]["data"]["title"], expected(24));
    assert_eq!(title_of(&app, &token, &chat).await, expected(24));
}

#[tokio::test]
async fn a_users_rename_wins_over_a_late_title_and_auto_title_can_be_off() {
    let app = titled().await;
    let token = app.token_for(&random_user());
    let thread = "renamed-early";
    let body = json!({ "threadId": thread, "messages": [{ "role": "user", "content": "Slow title [[mock ttft_ms=600]]" }] });
    // An empty thread named by nobody yet: its first turn is titled by the model.
    app.request(
        Method::POST,
        "/api/threads",
        Some(&token),
        Some(json!({ "id": thread })),
    )
    .await;
    let chatting = {
        let app_client = app.client.clone();
        let url = app.url("/api/chat");
        let token = token.clone();
        tokio::spawn(async move {
            app_client
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(150)).await;
    let (status, _) = app.rename(&token, thread, "Mine").await;
    assert_eq!(status, StatusCode::OK);
    chatting.await.unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(title_of(&app, &token, thread).await, "Mine");

    // On demand, the model's title replaces even the user's.
    let (status, named) = app
        .request(
            Method::POST,
            &format!("/api/threads/{thread}/title"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{named}");
    assert_ne!(named["title"], "Mine");
    assert_eq!(
        title_of(&app, &token, thread).await,
        named["title"].as_str().unwrap()
    );
    let (status, _) = app
        .request(Method::POST, "/api/threads/nope/title", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let quiet = TestApp::spawn_with(|config| config.chat.auto_title = false).await;
    let token = quiet.token_for(&random_user());
    let reply = quiet
        .chat(
            &token,
            json!({ "messages": [{ "role": "user", "content": "Keep my words" }] }),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let thread = reply.header("x-thread-id").to_owned();
    assert_eq!(title_of(&quiet, &token, &thread).await, "Keep my words");
    assert_eq!(quiet.mock.calls(), 1, "no title was asked for");
}
