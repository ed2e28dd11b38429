//! `POST /api/chat`: the turn, real streaming, disconnects, upstream failures, fallback,
//! idempotent retries and the OpenAI wire format.

use std::time::Duration;

use mock_upstream::reply_text;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, random_user, sse::read_chat, turns::user_message};

#[tokio::test]
async fn a_chat_creates_a_thread_and_stores_both_messages_before_done() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());

    let reply = app
        .chat(&token, json!({ "messages": [user_message("Hello there")] }))
        .await;

    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), "text/event-stream");
    assert_eq!(reply.header("cache-control"), "no-cache");
    assert_eq!(reply.header("x-accel-buffering"), "no");
    assert_eq!(reply.last_data(), Some("[DONE]"));
    assert_eq!(reply.text(), reply_text(16));
    // Read back right after [DONE]: both messages are there.
    let thread = reply.header("x-thread-id").to_owned();
    let messages = app.messages(&token, &thread).await;
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert_eq!(messages[0]["role"], "user");
    assert_eq!(messages[0]["content"], "Hello there");
    let answer = &messages[1];
    assert_eq!(answer["role"], "assistant");
    assert_eq!(answer["id"], reply.header("x-message-id"));
    assert_eq!(answer["content"], reply_text(16).as_str());
    assert_eq!(answer["model"], "Hermes-4-70B");
    assert_eq!(answer["finishReason"], "stop");
    assert_eq!(answer["usage"]["completionTokens"], 16);
    assert!(answer["usage"]["promptTokens"].as_u64().unwrap() > 0);
    assert!(answer["ttftMs"].is_u64() && answer["durationMs"].is_u64());
    let (_, page) = app.get(&format!("/api/threads/{thread}"), &token).await;
    assert_eq!(page["thread"]["title"], "Hello there");
    assert_eq!(page["thread"]["messageCount"], 2);
    assert_eq!(
        app.mock.requests()[0]["stream_options"]["include_usage"],
        true
    );
}

#[tokio::test]
async fn a_second_turn_resending_the_history_adds_exactly_two_messages() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let first = app
        .chat(&token, json!({ "messages": [user_message("one")] }))
        .await;
    let thread = first.header("x-thread-id").to_owned();

    let second = app
        .chat(
            &token,
            json!({
                "threadId": thread,
                "messages": [
                    user_message("one"),
                    { "role": "assistant", "content": first.text() },
                    user_message("two"),
                ],
            }),
        )
        .await;

    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(second.header("x-thread-id"), thread);
    let contents: Vec<String> = app
        .messages(&token, &thread)
        .await
        .iter()
        .map(|m| m["content"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(contents, ["one", &reply_text(16), "two", &reply_text(16)]);
    // The whole history went to the model.
    assert_eq!(
        app.mock.requests()[1]["messages"].as_array().unwrap().len(),
        3
    );
}

#[tokio::test]
async fn the_thread_can_be_named_by_header() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let thread = app.new_thread_id(&token, "by header").await;
    let resp = app
        .client
        .post(app.url("/api/chat"))
        .bearer_auth(&token)
        .header("x-thread-id", &thread)
        .json(&json!({ "messages": [user_message("hi")] }))
        .send()
        .await
        .unwrap();
    let reply = read_chat(resp).await;
    assert_eq!(reply.header("x-thread-id"), thread);
    assert_eq!(app.messages(&token, &thread).await.len(), 2);
}

#[tokio::test]
async fn replies_stream_as_the_model_produces_them() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());

    let reply = app
        .chat(
            &token,
            json!({ "messages": [user_message("slowly [[mock tokens=4 inter_token_ms=200]]")] }),
        )
        .await;

    let content_arrivals: Vec<_> = reply
        .events
        .iter()
        .zip(&reply.arrivals)
        .filter(|(e, _)| e.data.contains("\"content\":\"") && !e.data.contains("\"content\":\"\""))
        .map(|(_, at)| *at)
        .collect();
    assert_eq!(content_arrivals.len(), 4);
    // The model paused 3 x 200 ms between its tokens; a buffering proxy would deliver them
    // together. The first must have arrived well before the last was even produced.
    let spread = content_arrivals[3] - content_arrivals[0];
    assert!(spread >= Duration::from_millis(400), "spread {spread:?}");
    assert!(content_arrivals.windows(2).all(|w| w[0] < w[1]));
}

#[tokio::test]
async fn a_client_that_leaves_after_the_first_chunk_still_gets_the_whole_reply_stored() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let resp = app
        .client
        .post(app.url("/api/chat"))
        .bearer_auth(&token)
        .json(&json!({ "messages": [user_message("bye [[mock tokens=10 inter_token_ms=30]]")] }))
        .send()
        .await
        .unwrap();
    let thread = resp.headers()["x-thread-id"].to_str().unwrap().to_owned();
    let mut resp = resp;
    let first = resp.chunk().await.unwrap();
    assert!(first.is_some());
    drop(resp);

    let stored = app.wait_for_messages(&token, &thread, 2).await;
    assert_eq!(stored[1]["content"], reply_text(10).as_str());
    assert_eq!(stored[1]["finishReason"], "stop");
}

#[tokio::test]
async fn upstream_failures_before_the_first_token_get_proper_statuses() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let cases = [
        (
            "status=429 retry_after_secs=7",
            429,
            "upstream_rate_limited",
        ),
        ("status=500", 502, "upstream_error"),
        ("status=503", 502, "upstream_error"),
        ("status=400", 502, "upstream_error"),
        ("hang=1", 504, "upstream_timeout"),
    ];
    for (knobs, status, code) in cases {
        let thread = app.new_thread_id(&token, knobs).await;
        let text = format!("fail [[mock {knobs}]]");

        let reply = app
            .chat(
                &token,
                json!({ "threadId": thread, "messages": [user_message(&text)] }),
            )
            .await;

        assert_eq!(reply.status.as_u16(), status, "{knobs}: {}", reply.json);
        assert_eq!(reply.json["error"]["code"], code, "{knobs}");
        if status == 429 {
            assert_eq!(reply.header("retry-after"), "7");
        }
        let messages = app.messages(&token, &thread).await;
        assert_eq!(messages.len(), 1, "{knobs}: only the user message");
        assert_eq!(messages[0]["content"], text.as_str());
    }
}

#[tokio::test]
async fn a_reply_that_breaks_off_ends_with_an_error_event_and_is_stored_partially() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    for knobs in ["cut_after=3", "error_after=3"] {
        let reply = app
            .chat(
                &token,
                json!({ "messages": [user_message(&format!("break [[mock tokens=8 {knobs}]]"))] }),
            )
            .await;

        assert_eq!(reply.status, StatusCode::OK, "{knobs}");
        assert!(!reply.events.iter().any(|e| e.data == "[DONE]"), "{knobs}");
        let error = reply
            .error_event()
            .unwrap_or_else(|| panic!("{knobs}: no error event"));
        assert_eq!(error["error"]["code"], "upstream_error", "{knobs}");
        assert!(error["error"]["message"].is_string() && error["error"]["type"].is_string());
        assert_eq!(reply.text(), reply_text(3), "{knobs}");
        let messages = app.messages(&token, reply.header("x-thread-id")).await;
        assert_eq!(messages.len(), 2, "{knobs}");
        assert_eq!(messages[1]["content"], reply_text(3).as_str(), "{knobs}");
        assert_eq!(messages[1]["finishReason"], "error", "{knobs}");
    }
}

#[tokio::test]
async fn a_garbled_event_is_skipped_without_losing_the_reply() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let reply = app
        .chat(
            &token,
            json!({ "messages": [user_message("x [[mock tokens=5 garbage_after=2]]")] }),
        )
        .await;
    assert_eq!(reply.last_data(), Some("[DONE]"));
    assert_eq!(reply.text(), reply_text(5));
    let messages = app.messages(&token, reply.header("x-thread-id")).await;
    assert_eq!(messages[1]["content"], reply_text(5).as_str());
}

#[tokio::test]
async fn a_failed_turn_retried_stores_the_user_message_once() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let thread = app.new_thread_id(&token, "retry").await;
    let body = json!({
        "threadId": thread,
        "messages": [{ "id": "msg-1", "role": "user", "content": "again" }],
    });
    app.mock.set_config(
        mock_upstream::MockConfig::default()
            .with_api_key("sk-test")
            .with_status(503),
    );
    let failed = app.chat(&token, body.clone()).await;
    assert_eq!(failed.status, StatusCode::BAD_GATEWAY);

    app.mock
        .set_config(mock_upstream::MockConfig::default().with_api_key("sk-test"));
    let retried = app.chat(&token, body).await;

    assert_eq!(retried.status, StatusCode::OK);
    let messages = app.messages(&token, &thread).await;
    let roles: Vec<&str> = messages
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant"]);
    assert_eq!(messages[0]["id"], "msg-1");
}

#[tokio::test]
async fn a_retry_of_a_finished_turn_replays_the_stored_reply_without_calling_the_model() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let first = app
        .chat(
            &token,
            json!({ "messages": [{ "id": "m-1", "role": "user", "content": "once" }] }),
        )
        .await;
    let thread = first.header("x-thread-id").to_owned();
    let body = json!({
        "threadId": thread,
        "messages": [{ "id": "m-1", "role": "user", "content": "once" }],
    });
    let calls = app.mock.calls();

    let again = app.chat(&token, body.clone()).await;
    let mut as_json = body;
    as_json["stream"] = json!(false);
    let again_json = app.chat(&token, as_json).await;

    assert_eq!(app.mock.calls(), calls, "the model was called again");
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.text(), first.text());
    assert_eq!(again.header("x-message-id"), first.header("x-message-id"));
    assert_eq!(again.last_data(), Some("[DONE]"));
    assert_eq!(again_json.json["object"], "chat.completion");
    assert_eq!(
        again_json.json["choices"][0]["message"]["content"],
        first.text().as_str()
    );
    assert_eq!(app.messages(&token, &thread).await.len(), 2);
}

#[tokio::test]
async fn an_sdk_retry_without_message_ids_is_recognised_too() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let thread = app.new_thread_id(&token, "sdk").await;
    let body = json!({ "threadId": thread, "messages": [user_message("same words")] });
    let first = app.chat(&token, body.clone()).await;
    let second = app.chat(&token, body).await;
    assert_eq!(app.mock.calls(), 1);
    assert_eq!(second.header("x-message-id"), first.header("x-message-id"));
    assert_eq!(app.messages(&token, &thread).await.len(), 2);
}

#[tokio::test]
async fn a_retry_while_the_first_attempt_generates_gets_409() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let thread = app.new_thread_id(&token, "busy").await;
    let body = json!({
        "threadId": thread,
        "messages": [{ "id": "m-busy", "role": "user", "content": "go [[mock tokens=6 inter_token_ms=100]]" }],
    });
    let mut slow = app
        .client
        .post(app.url("/api/chat"))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let reply_id = slow.headers()["x-message-id"].to_str().unwrap().to_owned();
    assert!(slow.chunk().await.unwrap().is_some());

    let retry = app.chat(&token, body).await;

    assert_eq!(retry.status, StatusCode::CONFLICT);
    assert_eq!(retry.json["error"]["code"], "generation_in_progress");
    assert_eq!(retry.header("x-message-id"), reply_id);
    let rest = read_chat(slow).await;
    assert_eq!(rest.last_data(), Some("[DONE]"));
    assert_eq!(app.mock.calls(), 1);
}

#[tokio::test]
async fn stream_false_answers_the_upstreams_completion_and_stores_it() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let reply = app
        .chat(
            &token,
            json!({ "messages": [user_message("json please")], "stream": false }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    assert_eq!(reply.header("content-type"), "application/json");
    assert_eq!(reply.json["object"], "chat.completion");
    assert_eq!(
        reply.json["choices"][0]["message"]["content"],
        reply_text(16).as_str()
    );
    let messages = app.messages(&token, reply.header("x-thread-id")).await;
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1]["content"], reply_text(16).as_str());
    assert_eq!(messages[1]["usage"]["completionTokens"], 16);
}

#[tokio::test]
async fn the_openai_alias_streams_only_when_asked() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let plain = app
        .chat_at(
            "/api/chat/completions",
            &token,
            json!({ "model": "Hermes-4-405B", "messages": [user_message("a")] }),
        )
        .await;
    assert_eq!(plain.json["object"], "chat.completion", "{}", plain.json);
    let streamed = app
        .chat_at(
            "/api/chat/completions",
            &token,
            json!({ "model": "Hermes-4-405B", "messages": [user_message("b")], "stream": true, "n": 1, "user": "u-1" }),
        )
        .await;
    assert_eq!(streamed.last_data(), Some("[DONE]"));
    assert_eq!(app.mock.requests()[1]["model"], "Hermes-4-405B");
}

#[tokio::test]
async fn every_event_is_a_valid_chat_completion_chunk() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    for include_usage in [false, true] {
        let reply = app
            .chat(
                &token,
                json!({
                    "messages": [user_message("wire")],
                    "stream_options": { "include_usage": include_usage },
                }),
            )
            .await;
        assert_eq!(reply.last_data(), Some("[DONE]"));
        let chunks = reply.chunks();
        assert_eq!(
            chunks.len(),
            reply.events.len() - 1,
            "only chunks and [DONE]"
        );
        for chunk in &chunks {
            assert_eq!(chunk["object"], "chat.completion.chunk", "{chunk}");
            assert!(
                chunk["id"].as_str().is_some_and(|id| !id.is_empty()),
                "{chunk}"
            );
            assert!(chunk["created"].is_u64(), "{chunk}");
            assert!(chunk["model"].is_string(), "{chunk}");
            for choice in chunk["choices"].as_array().unwrap() {
                assert_eq!(choice["index"], 0, "{chunk}");
                assert!(choice["delta"].is_object(), "{chunk}");
            }
        }
        assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        let finish = chunks
            .iter()
            .filter(|c| !c["choices"][0]["finish_reason"].is_null() && c["choices"][0].is_object())
            .count();
        assert_eq!(finish, 1, "one finish chunk");
        let usage_chunks: Vec<&Value> = chunks
            .iter()
            .filter(|c| c["choices"].as_array().unwrap().is_empty())
            .collect();
        assert_eq!(usage_chunks.len(), usize::from(include_usage));
        if include_usage {
            assert_eq!(usage_chunks[0]["usage"]["completion_tokens"], 16);
        }
    }
}

#[tokio::test]
async fn the_system_prompt_is_prepended_unless_the_client_sent_one() {
    let app = TestApp::spawn_with(|config| {
        config.chat.system_prompt = Some("You are BuddahBot.".into());
    })
    .await;
    let token = app.token_for(&random_user());
    app.chat(&token, json!({ "messages": [user_message("hi")] }))
        .await;
    app.chat(
        &token,
        json!({ "messages": [{ "role": "system", "content": "Be terse." }, user_message("hi")] }),
    )
    .await;
    let requests = app.mock.requests();
    assert_eq!(
        requests[0]["messages"][0],
        json!({ "role": "system", "content": "You are BuddahBot." })
    );
    assert_eq!(requests[0]["messages"].as_array().unwrap().len(), 2);
    assert_eq!(requests[1]["messages"][0]["content"], "Be terse.");
    assert_eq!(requests[1]["messages"].as_array().unwrap().len(), 2);
}

/// An upstream whose `Hermes-4-70B` is down (503) while `Hermes-4-405B` answers.
async fn upstream_with_one_model_down() -> (String, mock_upstream::MockState) {
    use axum::{
        body::{Body, to_bytes},
        extract::Request,
        middleware::{self, Next},
        response::IntoResponse,
    };
    let state = mock_upstream::MockState::new(
        mock_upstream::MockConfig::default().with_api_key(crate::helpers::UPSTREAM_KEY),
    );
    let router = mock_upstream::router(state.clone()).layer(middleware::from_fn(
        |request: Request, next: Next| async move {
            let (parts, body) = request.into_parts();
            let bytes = to_bytes(body, usize::MAX).await.unwrap();
            let model = serde_json::from_slice::<Value>(&bytes).ok().and_then(|v| {
                v["model"].as_str().map(str::to_owned)
            });
            if model.as_deref() == Some("Hermes-4-70B") {
                let body = json!({ "error": { "message": "overloaded", "type": "server_error", "code": "overloaded" } });
                return (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
            }
            next.run(Request::from_parts(parts, Body::from(bytes))).await
        },
    ));
    let (address, _server) = crate::helpers::serve(router).await;
    (format!("{address}/v1"), state)
}

#[tokio::test]
async fn the_fallback_model_answers_when_the_requested_one_fails_before_its_first_token() {
    let (upstream, state) = upstream_with_one_model_down().await;
    let app = TestApp::spawn_with(|config| {
        config.upstream.base_url = upstream.parse().unwrap();
        config.upstream.fallback_model = Some("Hermes-4-405B".into());
    })
    .await;
    let token = app.token_for(&random_user());

    for stream in [true, false] {
        let reply = app
            .chat(
                &token,
                json!({ "messages": [user_message("help")], "stream": stream }),
            )
            .await;

        assert_eq!(
            reply.status,
            StatusCode::OK,
            "stream={stream}: {}",
            reply.json
        );
        let messages = app.messages(&token, reply.header("x-thread-id")).await;
        assert_eq!(messages.len(), 2, "stream={stream}");
        assert_eq!(messages[1]["model"], "Hermes-4-405B", "stream={stream}");
        assert_eq!(messages[1]["content"], reply_text(16).as_str());
    }
    assert_eq!(state.calls(), 2, "only the fallback reached the model");
}

#[tokio::test]
async fn without_a_fallback_the_failure_is_reported() {
    let (upstream, _state) = upstream_with_one_model_down().await;
    let app = TestApp::spawn_with(|config| {
        config.upstream.base_url = upstream.parse().unwrap();
    })
    .await;
    let token = app.token_for(&random_user());
    let reply = app
        .chat(&token, json!({ "messages": [user_message("help")] }))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert_eq!(reply.json["error"]["code"], "upstream_error");
}

#[tokio::test]
async fn a_reply_that_breaks_off_before_any_text_leaves_the_turn_open_for_a_retry() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let thread = app.new_thread_id(&token, "empty").await;
    let body = |knobs: &str| {
        json!({
            "threadId": thread,
            "messages": [{ "id": "m-0", "role": "user", "content": format!("q [[mock {knobs}]]") }],
        })
    };
    let broken = app.chat(&token, body("error_after=0")).await;
    assert!(broken.error_event().is_some());
    assert_eq!(
        app.messages(&token, &thread).await.len(),
        1,
        "no empty reply stored"
    );

    // Same message id: the directive text differs but the turn is the same one.
    let retried = app.chat(&token, body("tokens=2")).await;

    assert_eq!(retried.last_data(), Some("[DONE]"));
    let messages = app.messages(&token, &thread).await;
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1]["content"], reply_text(2).as_str());
}

#[tokio::test]
async fn a_reply_longer_than_the_chat_duration_limit_is_cut_and_kept() {
    let app = TestApp::spawn_with(|config| {
        config.chat.max_duration = Duration::from_millis(500);
    })
    .await;
    let token = app.token_for(&random_user());
    let reply = app
        .chat(
            &token,
            json!({ "messages": [user_message("long [[mock tokens=20 inter_token_ms=100]]")] }),
        )
        .await;
    let error = reply.error_event().expect("no error event");
    assert_eq!(error["error"]["code"], "upstream_timeout");
    let messages = app.messages(&token, reply.header("x-thread-id")).await;
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1]["finishReason"], "error");
    let kept = messages[1]["content"].as_str().unwrap();
    assert!(
        !kept.is_empty() && reply_text(20).starts_with(kept),
        "{kept:?}"
    );
}
