//! What the logs hold at `info` (the default `RUST_LOG`), read from the function binaries'
//! own stderr as the platform collects it: never a bearer token, a secret, a user's or the
//! model's text, or a share token.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    Frozen, SECRET, TestApp, functions::LoggedFunction, random_user, set_var, sse::read_chat,
    test_vars_with_upstream, turns::user_turn,
};

#[tokio::test]
async fn the_info_log_of_a_turn_and_a_share_read_holds_no_token_secret_text_or_share_token() {
    // Arrange: the chat, thread and shared functions, each alone, logging at `info`.
    let app = TestApp::spawn().await;
    let mut vars = test_vars_with_upstream(&app.redis.url(), &app.mock.base_url());
    set_var(&mut vars, "RUST_LOG", "info");
    let chat = LoggedFunction::start(env!("CARGO_BIN_EXE_chat"), vars.clone()).await;
    let thread = LoggedFunction::start(env!("CARGO_BIN_EXE_threads-id"), vars.clone()).await;
    let shared = LoggedFunction::start(env!("CARGO_BIN_EXE_shared"), vars).await;
    let token = app.token_for(&random_user());
    let client = reqwest::Client::new();
    let question = "my private question about the pelican 4711";

    // Act: a full turn (the model says the text back), a turn the model fails (an error is
    // logged), a request with a forged token, a share, its public read, and a read that
    // fails (Redis frozen: logged with its path).
    let turn = client
        .post(chat.url("/api/chat"))
        .bearer_auth(&token)
        .json(&user_turn(&format!("[[mock echo=1]] {question}")))
        .send()
        .await
        .unwrap();
    let turn = read_chat(turn).await;
    let thread_id = turn.header("x-thread-id").to_owned();
    let failed = client
        .post(chat.url("/api/chat"))
        .bearer_auth(&token)
        .json(&user_turn(&format!("[[mock status=500]] {question}")))
        .send()
        .await
        .unwrap()
        .status();
    let forged = format!("{token}x");
    let refused = client
        .get(thread.url(&format!("/api/threads/{thread_id}?id={thread_id}")))
        .bearer_auth(&forged)
        .send()
        .await
        .unwrap()
        .status();
    let link: Value = client
        .post(thread.url(&format!(
            "/api/threads/{thread_id}/share?id={thread_id}&action=share"
        )))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let share_token = link["token"].as_str().unwrap().to_owned();
    let read = client
        .get(shared.url(&format!("/api/shared/{share_token}?token={share_token}")))
        .send()
        .await
        .unwrap();
    let read_status = read.status();
    let snapshot: Value = read.json().await.unwrap();
    // A read that fails is logged with its path.
    let frozen = Frozen::redis(&app.redis);
    let failed_read = client
        .get(shared.url(&format!("/api/shared/{share_token}?token={share_token}")))
        .send()
        .await
        .unwrap()
        .status();
    drop(frozen);
    let log = [chat.log(), thread.log(), shared.log()].join("\n");

    // Assert: everything happened, something was logged, and none of it is in the log.
    assert_eq!(turn.last_data(), Some("[DONE]"));
    assert!(turn.text().contains("pelican"), "{}", turn.text());
    assert_eq!(failed, StatusCode::BAD_GATEWAY);
    assert_eq!(refused, StatusCode::UNAUTHORIZED);
    assert_eq!(read_status, StatusCode::OK);
    assert_eq!(failed_read, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        log.contains("/api/shared/:token"),
        "the failed read was not logged: {log}"
    );
    assert!(
        snapshot["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("pelican")
    );
    assert!(
        log.contains("upstream"),
        "the model's failure was not logged: {log}"
    );
    eprintln!(
        "info log of the three functions ({} lines):\n{log}",
        log.lines().count()
    );
    for (what, secret) in [
        ("the bearer token", token.as_str()),
        (
            "the bearer token's signature",
            token.rsplit('.').next().unwrap(),
        ),
        ("the forged token", forged.as_str()),
        ("AUTH_SECRET", SECRET),
        ("the message text", "pelican"),
        ("the share token", share_token.as_str()),
    ] {
        assert!(!log.contains(secret), "{what} is in the log:\n{log}");
    }
}
