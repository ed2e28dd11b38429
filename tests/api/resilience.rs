//! Redis going away: requests answer 503 `store_unavailable` within the response timeout,
//! never hang or leak internals, and recover when Redis is back, without a restart.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode, header};
use serde_json::json;

use crate::helpers::{
    Frozen, REDIS_TIMEOUT_MS, TestApp, error_code, eventually, into_parts, random_user,
    turns::{thread_turn, user_turn},
};

/// How long past the response timeout a 503 may take (scheduling on a loaded machine).
const ANSWER_MARGIN: Duration = Duration::from_millis(1_500);

#[tokio::test]
async fn endpoints_answer_503_while_redis_is_down_and_recover_when_it_returns() {
    let mut app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let thread = app.create_thread(&token, "before the outage").await;
    let thread_path = format!("/api/threads/{}", thread["id"].as_str().unwrap());

    app.redis.stop().await;

    // The client gives up far later than the configured response timeout: a hang would fail
    // this test with a client timeout rather than a 503.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    for path in ["/api/threads", thread_path.as_str()] {
        let resp = client
            .get(app.url(path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let retry_after = resp.headers().get(header::RETRY_AFTER).cloned();
        let (status, body) = into_parts(resp).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {body}");
        assert_eq!(error_code(&body), "store_unavailable");
        assert!(retry_after.is_some(), "503 without retry-after");
        let text = body.to_string().to_lowercase();
        for leak in ["redis", "refused", "127.0.0.1", "io error"] {
            assert!(!text.contains(leak), "{leak:?} leaked: {body}");
        }
    }

    app.redis.restart().await.unwrap();

    let recovered = eventually(Duration::from_secs(10), || {
        let req = client.get(app.url("/api/threads")).bearer_auth(&token);
        async move {
            let resp = req.send().await.ok()?;
            (resp.status() == StatusCode::OK).then_some(())
        }
    })
    .await;
    assert!(recovered.is_some(), "the process never recovered");
    // The restarted server is empty (persistence is off), and writes work again.
    let again = app.create_thread(&token, "after the outage").await;
    assert_eq!(again["title"], "after the outage");
}

#[tokio::test]
async fn a_process_started_while_redis_is_down_answers_503() {
    let mut app = TestApp::spawn().await;
    // Stop before the first command, so the lazy connection has never been open.
    app.redis.stop().await;
    let token = app.token_for(&random_user());
    let (status, body) = app.get("/api/threads", &token).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(error_code(&body), "store_unavailable");
}

#[tokio::test]
async fn a_turn_answered_503_while_redis_is_frozen_is_retried_to_a_reply_once_redis_thaws() {
    // Arrange: a thread, and one turn before, so the connection and the control channel are
    // up and only the turn's own write meets the frozen server.
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let thread = app.new_thread_id(&token, "frozen").await;
    let warm = app
        .chat(&token, thread_turn(&thread, "m0", "warm up"))
        .await;
    assert_eq!(warm.last_data(), Some("[DONE]"));
    let turn = thread_turn(&thread, "m1", "asked while redis was frozen");

    // Act: the turn meets a frozen Redis, which stays frozen past the response timeout.
    let frozen = Frozen::redis(&app.redis);
    let asked = Instant::now();
    let resp = app
        .client
        .post(app.url("/api/chat"))
        .bearer_auth(&token)
        .json(&turn)
        .send()
        .await
        .unwrap();
    let waited = asked.elapsed();
    let retry_after: u64 = resp.headers()[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let (status, body) = into_parts(resp).await;
    tokio::time::sleep(Duration::from_millis(REDIS_TIMEOUT_MS)).await;
    drop(frozen);
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let retried = app.chat(&token, turn.clone()).await;

    // Assert: 503 in time, then the retry gets the reply, stored once with its message.
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(error_code(&body), "store_unavailable");
    assert!(
        waited < Duration::from_millis(REDIS_TIMEOUT_MS) + ANSWER_MARGIN,
        "503 after {waited:?}"
    );
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.json);
    assert_eq!(retried.last_data(), Some("[DONE]"));
    assert!(!retried.text().is_empty());
    let messages = app.messages(&token, &thread).await;
    let ids: Vec<&str> = messages.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids.iter().filter(|id| **id == "m1").count(), 1, "{ids:?}");
    assert_eq!(messages.len(), 4, "{ids:?}");
    let (_, page) = app.get(&format!("/api/threads/{thread}"), &token).await;
    assert_eq!(page["thread"]["status"], "idle");
}

#[tokio::test]
async fn a_thread_left_streaming_by_a_503_turn_is_freed_once_redis_thaws() {
    // Arrange
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let thread = app.new_thread_id(&token, "frozen").await;
    let warm = app
        .chat(&token, thread_turn(&thread, "m0", "warm up"))
        .await;
    assert_eq!(warm.last_data(), Some("[DONE]"));

    // Act: a turn answered 503, then Redis thaws; nobody retries.
    let frozen = Frozen::redis(&app.redis);
    let (status, _) = app
        .request(
            Method::POST,
            "/api/chat",
            Some(&token),
            Some(thread_turn(&thread, "m1", "never retried")),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(REDIS_TIMEOUT_MS)).await;
    drop(frozen);

    // Assert: the thread does not show a generation nobody runs, and another turn goes on.
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let idle = eventually(Duration::from_secs(2), || async {
        let (_, page) = app.get(&format!("/api/threads/{thread}"), &token).await;
        (page["thread"]["status"] != "streaming").then_some(())
    })
    .await;
    assert!(idle.is_some(), "the thread stayed streaming");
    let next = app
        .chat(&token, thread_turn(&thread, "m2", "another turn"))
        .await;
    assert_eq!(next.status, StatusCode::OK, "{}", next.json);
    assert_eq!(next.last_data(), Some("[DONE]"));
}

#[tokio::test]
async fn a_first_turn_answered_503_leaves_no_thread_behind_and_its_retry_makes_one() {
    // Arrange: one request first, so the connection and the control channel are up.
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let warm = app.chat(&token, user_turn("warm up")).await;
    assert_eq!(warm.last_data(), Some("[DONE]"));
    let turn = json!({ "messages": [{ "id": "first", "role": "user", "content": "a new chat" }] });

    // Act: a turn without a thread id (the server names the thread) meets a frozen Redis.
    let frozen = Frozen::redis(&app.redis);
    let (status, _) = app
        .request(Method::POST, "/api/chat", Some(&token), Some(turn.clone()))
        .await;
    tokio::time::sleep(Duration::from_millis(REDIS_TIMEOUT_MS)).await;
    drop(frozen);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (_, between) = app.get("/api/threads", &token).await;
    let retried = app.chat(&token, turn).await;
    let (_, after) = app.get("/api/threads", &token).await;

    // Assert: the half-made thread is gone; the retry's thread is the only new one.
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(between["threads"].as_array().unwrap().len(), 1, "{between}");
    assert_eq!(retried.last_data(), Some("[DONE]"));
    assert_eq!(after["threads"].as_array().unwrap().len(), 2, "{after}");
}

#[tokio::test]
async fn a_thread_create_answered_503_while_redis_is_frozen_succeeds_when_retried() {
    // Arrange: one request first, so the connection is open.
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    app.create_thread(&token, "warm up").await;
    let create = json!({ "id": "made-while-frozen", "title": "frozen", "tags": ["x"] });

    // Act
    let frozen = Frozen::redis(&app.redis);
    let asked = Instant::now();
    let (status, body) = app
        .request(
            Method::POST,
            "/api/threads",
            Some(&token),
            Some(create.clone()),
        )
        .await;
    let waited = asked.elapsed();
    tokio::time::sleep(Duration::from_millis(REDIS_TIMEOUT_MS)).await;
    drop(frozen);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (retried, thread) = app
        .request(Method::POST, "/api/threads", Some(&token), Some(create))
        .await;

    // Assert
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(error_code(&body), "store_unavailable");
    assert!(
        waited < Duration::from_millis(REDIS_TIMEOUT_MS) + ANSWER_MARGIN,
        "503 after {waited:?}"
    );
    assert_eq!(retried, StatusCode::CREATED, "{thread}");
    assert_eq!(thread["tags"], json!(["x"]));
    let (_, list) = app.get("/api/threads?limit=10", &token).await;
    assert_eq!(list["threads"].as_array().unwrap().len(), 2, "{list}");
}

#[tokio::test]
async fn a_reply_that_could_not_be_stored_is_stored_once_redis_is_back_and_its_retry_replays_it() {
    // Arrange: a Redis that keeps what it acknowledged, and a reply the model takes 700 ms to
    // write, not streamed.
    let redis = buddahbot::local_redis::RedisServer::start_durable()
        .await
        .unwrap();
    let mut app = TestApp::spawn_on(redis, |_| {}, |_| {}).await;
    let token = app.token_for(&random_user());
    let thread = app.new_thread_id(&token, "killed while answering").await;
    let mut turn = thread_turn(&thread, "m1", "[[mock ttft_ms=700]] hello");
    turn["stream"] = json!(false);

    // Act: Redis is killed while the model writes, so the reply cannot be stored; it comes
    // back; the client retries.
    let pending = {
        let (client, url, token, turn) = (
            app.client.clone(),
            app.url("/api/chat"),
            token.clone(),
            turn.clone(),
        );
        tokio::spawn(async move {
            into_parts(
                client
                    .post(url)
                    .bearer_auth(token)
                    .json(&turn)
                    .send()
                    .await
                    .unwrap(),
            )
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.redis.stop().await;
    let (status, body) = pending.await.unwrap();
    app.redis.restart().await.unwrap();
    let retried = eventually(Duration::from_secs(5), || async {
        let (status, body) = app
            .request(Method::POST, "/api/chat", Some(&token), Some(turn.clone()))
            .await;
        (status == StatusCode::OK).then_some(body)
    })
    .await;

    // Assert: 503, then the reply the model wrote, replayed: one model call, stored once.
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let retried = retried.expect("the retry never succeeded");
    assert!(
        !retried["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .is_empty()
    );
    assert_eq!(app.mock.calls(), 1);
    let messages = app.messages(&token, &thread).await;
    assert_eq!(messages.len(), 2, "{messages:?}");
}
