//! The response cache: an identical `temperature: 0` model input within the TTL is answered
//! without calling the model, in the client's format, stored as a normal turn marked `cached`
//! and charged no tokens; scoped per user unless `RESPONSE_CACHE_SCOPE=global`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, eventually, random_user, stored, turns::chat_id};
use buddahbot::config::CacheScope;

async fn app(scope: CacheScope) -> TestApp {
    TestApp::spawn_with(|config| {
        config.chat.response_cache_ttl = Some(Duration::from_secs(60));
        config.chat.response_cache_scope = scope;
    })
    .await
}

fn body(temperature: f64) -> Value {
    json!({
        "temperature": temperature,
        "stream_options": { "include_usage": true },
        "messages": [{ "role": "user", "content": "What is a FAQ?" }],
    })
}

/// Waits until an answer is cached (the turn caches it just after its `[DONE]`).
async fn cached(app: &TestApp, entries: usize) {
    let conn = app.redis_conn().await;
    eventually(Duration::from_secs(5), || {
        let mut conn = conn.clone();
        async move { (stored::scan(&mut conn, "*cache:*").await.len() >= entries).then_some(()) }
    })
    .await
    .expect("the answer was cached");
}

/// The tokens charged to `user` today, over every day counter it has.
async fn charged(app: &TestApp, user: &str) -> i64 {
    let mut conn = app.redis_conn().await;
    let mut total = 0;
    for key in app
        .keys_of(user)
        .await
        .iter()
        .filter(|k| k.contains(":tokens:"))
    {
        let value: Option<i64> = redis::cmd("GET")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        total += value.unwrap_or(0);
    }
    total
}

#[tokio::test]
async fn an_identical_deterministic_request_is_answered_once_by_the_model() {
    let app = app(CacheScope::User).await;
    let user = random_user();
    let token = app.token_for(&user);
    let first = app.chat(&token, body(0.0)).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.header("x-cache"), "miss");
    cached(&app, 1).await;
    let calls = app.mock.calls();
    let tokens = charged(&app, &user).await;
    assert!(tokens > 0);

    let second = app.chat(&token, body(0.0)).await;
    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.header("x-cache"), "hit");
    assert_eq!(second.text(), first.text());
    assert_eq!(second.last_data(), Some("[DONE]"));
    assert!(
        second.chunks().last().unwrap()["usage"].is_object(),
        "usage when asked for"
    );
    assert_eq!(app.mock.calls(), calls, "the model was not called again");
    assert_eq!(charged(&app, &user).await, tokens, "no tokens charged");

    let thread = second.header("x-thread-id").to_owned();
    let messages = app.messages(&token, &thread).await;
    assert_eq!(messages.len(), 2, "stored as a normal turn");
    assert_eq!(messages[1]["cached"], true);
    assert_eq!(messages[1]["content"], first.text());

    // Not streamed, and in the AI SDK's format: the same answer, from the cache.
    let whole = app
        .chat_at("/api/chat/completions", &token, body(0.0))
        .await;
    assert_eq!(whole.header("x-cache"), "hit");
    assert_eq!(whole.json["choices"][0]["message"]["content"], first.text());
    let ui = app
        .chat(
            &token,
            json!({ "id": chat_id(), "temperature": 0, "messages": [
                { "id": "u1", "role": "user", "parts": [{ "type": "text", "text": "What is a FAQ?" }] },
            ] }),
        )
        .await;
    assert_eq!(ui.header("x-cache"), "hit");
    let deltas: String = ui
        .events
        .iter()
        .filter(|e| e.data != "[DONE]")
        .map(|e| e.json())
        .filter(|c| c["type"] == "text-delta")
        .map(|c| c["delta"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(deltas, first.text());
    assert_eq!(app.mock.calls(), calls);
}

#[tokio::test]
async fn only_deterministic_requests_use_the_cache_and_users_do_not_share_it_by_default() {
    let app = app(CacheScope::User).await;
    let token = app.token_for(&random_user());
    let warm = app.chat(&token, body(0.0)).await;
    assert_eq!(warm.header("x-cache"), "miss");
    cached(&app, 1).await;

    let calls = app.mock.calls();
    let warm_again = app.chat(&token, body(0.7)).await;
    assert!(
        warm_again.headers.get("x-cache").is_none(),
        "not a cache candidate"
    );
    assert_eq!(app.mock.calls(), calls + 1);

    let other = app.token_for(&random_user());
    let theirs = app.chat(&other, body(0.0)).await;
    assert_eq!(theirs.header("x-cache"), "miss");
    assert_eq!(app.mock.calls(), calls + 2);
}

#[tokio::test]
async fn a_global_cache_shares_identical_inputs_between_users() {
    let app = app(CacheScope::Global).await;
    let alice = app.token_for(&random_user());
    let first = app.chat(&alice, body(0.0)).await;
    assert_eq!(first.header("x-cache"), "miss");
    cached(&app, 1).await;
    let calls = app.mock.calls();
    let bob = app.token_for(&random_user());
    let second = app.chat(&bob, body(0.0)).await;
    assert_eq!(second.header("x-cache"), "hit");
    assert_eq!(second.text(), first.text());
    assert_eq!(app.mock.calls(), calls);
    // The shared entry holds nothing of who asked.
    let mut conn = app.redis_conn().await;
    let keys = stored::scan(&mut conn, "cache:*").await;
    assert_eq!(keys.len(), 1);
    let entry: String = redis::cmd("GET")
        .arg(&keys[0])
        .query_async(&mut conn)
        .await
        .unwrap();
    let entry: Value = serde_json::from_str(&entry).unwrap();
    let fields: Vec<&str> = entry
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(fields, ["content", "finishReason", "usage", "model"]);
}
