//! Resumable streams (`GET /api/chat/:threadId/stream`), server-side stop
//! (`POST /api/chat/:threadId/stop`) and regenerate, across processes: the generation runs in
//! the test's server, the resume and the stop go to the `chat-stream` and `chat-stop`
//! function binaries, started alone on the same Redis, as separate Vercel instances would be.

use std::time::Duration;

use mock_upstream::reply_text;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, error_code, eventually,
    functions::{Function, start_function},
    random_user,
    sse::{Reader, Sse, text_of},
    test_vars_with_upstream,
    turns::{chat_id, dead_generator, get_as, open_chat, slow, stop, ui_turn},
};

/// `GET {base}/api/chat/:id/stream` (with `?id=`, as Vercel's route passes it to the function).
async fn resume_at(base: &str, chat: &str, token: &str, last_event_id: Option<&str>) -> Reader {
    let mut req = reqwest::Client::new()
        .get(format!("{base}/api/chat/{chat}/stream?id={chat}"))
        .bearer_auth(token);
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    Reader::new(req.send().await.unwrap())
}

/// Waits until the mock saw its one streamed reply abandoned: the model call was closed.
async fn assert_upstream_closed(app: &TestApp, why: &str) {
    let closed = eventually(Duration::from_secs(3), || async {
        (app.mock.state().abandoned() == 1).then_some(())
    })
    .await;
    assert!(closed.is_some(), "{why}");
}

/// The resume and stop functions, each a process of its own on the app's Redis and model.
async fn other_instances(app: &TestApp) -> (Function, Function) {
    let vars = || test_vars_with_upstream(&app.redis.url(), &app.mock.base_url());
    let stream = start_function(env!("CARGO_BIN_EXE_chat-stream"), vars()).await;
    let stop = start_function(env!("CARGO_BIN_EXE_chat-stop"), vars()).await;
    (stream, stop)
}

/// Ids are the generation's own, consecutive from 1, so nothing is missing or repeated.
fn assert_consecutive(events: &[Sse], first_seq: u64) {
    let prefix = events[0].id.split('-').next().unwrap();
    for (i, event) in events.iter().enumerate() {
        assert!(event.id.starts_with(&format!("{prefix}-")), "{events:#?}");
        assert_eq!(event.seq(), first_seq + i as u64, "{events:#?}");
    }
}

#[tokio::test]
async fn a_dropped_client_resumes_on_another_instance_from_the_first_event_or_its_last_id() {
    let app = TestApp::spawn_with(|c| c.chat.resume_grace = Duration::from_millis(800)).await;
    let (stream_fn, _) = other_instances(&app).await;
    let token = app.token_for(&random_user());
    let chat = chat_id();
    let tokens = 30;

    let mut live = open_chat(&app, &token, ui_turn(&chat, "u1", &slow(tokens, 30, "Hi"))).await;
    assert_eq!(live.status, StatusCode::OK);
    let seen = live.take(5).await;
    drop(live);
    assert_eq!(
        seen.iter().map(Sse::kind).collect::<Vec<_>>(),
        [
            "start",
            "start-step",
            "text-start",
            "text-delta",
            "text-delta"
        ]
    );

    let mut resumed = resume_at(&stream_fn.base, &chat, &token, None).await;
    assert_eq!(resumed.status, StatusCode::OK);
    assert_eq!(resumed.header("content-type"), "text/event-stream");
    assert_eq!(resumed.header("x-vercel-ai-ui-message-stream"), "v1");
    assert_eq!(resumed.header("x-thread-id"), chat);
    let all = resumed.rest().await;
    assert_eq!(
        &all[..5],
        &seen[..],
        "the replay starts with what the client saw"
    );
    assert_consecutive(&all, 1);
    let mut want = vec!["start", "start-step", "text-start"];
    want.extend(std::iter::repeat_n("text-delta", tokens));
    want.extend(["text-end", "finish-step", "finish", "[DONE]"]);
    assert_eq!(all.iter().map(Sse::kind).collect::<Vec<_>>(), want);
    assert_eq!(text_of(&all), reply_text(tokens));
    assert_eq!(
        all[0].json()["messageId"],
        live_reply_id(&app, &token, &chat).await
    );

    // From the client's last event on: exactly the rest, no duplicates.
    let mut after = resume_at(&stream_fn.base, &chat, &token, Some(&seen[4].id)).await;
    assert_eq!(after.status, StatusCode::OK);
    assert_eq!(after.rest().await, all[5..].to_vec());
    // `?after=` does the same on the server that generated.
    let resp = app
        .client
        .get(app.url(&format!(
            "/api/chat/{chat}/stream?after={}",
            all[all.len() - 3].id
        )))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        Reader::new(resp).rest().await,
        all[all.len() - 2..].to_vec()
    );

    // The grace period over, there is nothing to resume.
    let ended = eventually(Duration::from_secs(5), || async {
        let resp = get_as(&app, &format!("/api/chat/{chat}/stream"), &token).await;
        (resp.status() == StatusCode::NO_CONTENT).then_some(())
    })
    .await;
    assert!(ended.is_some(), "still resumable long after the end");
    assert_eq!(app.messages(&token, &chat).await.len(), 2);
}

/// The stored reply's id (the `start` chunk's `messageId` must be it).
async fn live_reply_id(app: &TestApp, token: &str, chat: &str) -> Value {
    let messages = app.wait_for_messages(token, chat, 2).await;
    messages[1]["id"].clone()
}

#[tokio::test]
async fn an_openai_stream_resumes_too_and_another_user_sees_nothing() {
    let app = TestApp::spawn().await;
    let (stream_fn, _) = other_instances(&app).await;
    let token = app.token_for(&random_user());
    let stranger = app.token_for(&random_user());
    let thread = app.new_thread_id(&token, "openai").await;
    let tokens = 20;
    let body = json!({
        "threadId": thread,
        "messages": [{ "role": "user", "content": slow(tokens, 30, "go") }],
    });
    let mut live = open_chat(&app, &token, body).await;
    assert_eq!(live.status, StatusCode::OK);
    let seen = live.take(3).await;

    // Another user asking for this thread's stream gets nothing, not a 404 that would
    // confirm the id exists.
    let mut foreign = resume_at(&stream_fn.base, &thread, &stranger, None).await;
    assert_eq!(foreign.status, StatusCode::NO_CONTENT);
    assert!(foreign.rest().await.is_empty());

    let mut resumed = resume_at(&stream_fn.base, &thread, &token, Some(&seen[2].id)).await;
    assert_eq!(resumed.status, StatusCode::OK);
    assert_eq!(resumed.header("x-vercel-ai-ui-message-stream"), "");
    let rest = resumed.rest().await;
    let live_rest = live.rest().await;
    assert_eq!(
        rest, live_rest,
        "the resumer gets what the live client got after its id"
    );
    assert_consecutive(&rest, 4);
    assert_eq!(rest.last().unwrap().data, "[DONE]");
    let text: String = seen
        .iter()
        .chain(&rest)
        .filter(|e| e.data != "[DONE]")
        .filter_map(|e| {
            e.json()["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(text, reply_text(tokens));
}

#[tokio::test]
async fn nothing_to_resume_is_204_and_a_bad_event_id_is_400() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let idle = app.new_thread_id(&token, "idle").await;
    for path in [
        format!("/api/chat/{}/stream", chat_id()),
        format!("/api/chat/{idle}/stream"),
        "/api/chat/not%20an%20id/stream".to_owned(),
    ] {
        let resp = get_as(&app, &path, &token).await;
        assert_eq!(resp.status(), StatusCode::NO_CONTENT, "{path}");
    }
    // A reply that was not streamed has nothing to resume.
    let plain = app
        .chat(
            &token,
            json!({ "threadId": idle, "stream": false, "messages": [{ "role": "user", "content": "hi" }] }),
        )
        .await;
    assert_eq!(plain.status, StatusCode::OK);
    let resp = get_as(&app, &format!("/api/chat/{idle}/stream"), &token).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = app
        .client
        .get(app.url(&format!("/api/chat/{idle}/stream")))
        .bearer_auth(&token)
        .header("last-event-id", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let (status, body) = app
        .request(
            Method::GET,
            &format!("/api/chat/{idle}/stream?after=x-1"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "invalid_param");
    let (status, _) = app
        .request(Method::GET, &format!("/api/chat/{idle}/stream"), None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn stop_from_another_instance_closes_the_upstream_keeps_the_partial_and_ends_every_stream() {
    let app = TestApp::spawn().await;
    let (stream_fn, stop_fn) = other_instances(&app).await;
    let token = app.token_for(&random_user());
    let chat = chat_id();
    let tokens = 400;

    let mut live = open_chat(
        &app,
        &token,
        ui_turn(&chat, "u1", &slow(tokens, 20, "Long one")),
    )
    .await;
    let first = live.take(6).await;
    let reply_id = first[0].json()["messageId"].as_str().unwrap().to_owned();
    let mut resumed = resume_at(&stream_fn.base, &chat, &token, None).await;
    assert_eq!(resumed.status, StatusCode::OK);
    let resumed_start = resumed.take(6).await;
    assert_eq!(resumed_start, first);
    assert_eq!(app.mock.state().abandoned(), 0);

    let (status, _) = app.get(&format!("/api/threads/{chat}"), &token).await;
    assert_eq!(status, StatusCode::OK);
    let resp = reqwest::Client::new()
        .post(format!("{}/api/chat/{chat}/stop?id={chat}", stop_fn.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "stopping");
    assert_eq!(body["messageId"], reply_id.as_str());

    let live_rest = live.rest().await;
    let tail: Vec<String> = live_rest
        .iter()
        .rev()
        .take(3)
        .rev()
        .map(Sse::kind)
        .collect();
    assert_eq!(tail, ["text-end", "abort", "[DONE]"]);
    assert_eq!(live_rest[live_rest.len() - 2].json()["reason"], "stopped");
    let resumed_rest = resumed.rest().await;
    assert_eq!(resumed_rest, live_rest, "the resumer sees the same end");

    assert_upstream_closed(&app, "the upstream connection was not closed").await;

    let messages = app.messages(&token, &chat).await;
    assert_eq!(messages.len(), 2, "{messages:#?}");
    let reply = &messages[1];
    assert_eq!(reply["id"], reply_id.as_str());
    assert_eq!(reply["status"], "stopped");
    assert_eq!(reply["finishReason"], "stop");
    let content = reply["content"].as_str().unwrap();
    let streamed = text_of(&first) + &text_of(&live_rest);
    assert_eq!(content, streamed, "the stored partial is what was streamed");
    assert!(!content.is_empty() && content.len() < reply_text(tokens).len());
    assert!(reply_text(tokens).starts_with(content));
    let (_, page) = app.get(&format!("/api/threads/{chat}"), &token).await;
    assert_eq!(page["thread"]["status"], "idle");

    // Nothing is generating any more; an unknown thread is a 404.
    let (status, body) = stop(&app, &token, &chat).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("idle"))
    );
    let (status, body) = stop(&app, &token, &chat_id()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "thread_not_found");
}

#[tokio::test]
async fn a_stopped_openai_stream_ends_with_a_stop_chunk_and_done() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let thread = app.new_thread_id(&token, "stop").await;
    let body = json!({
        "threadId": thread,
        "messages": [{ "role": "user", "content": slow(300, 20, "go") }],
    });
    let mut live = open_chat(&app, &token, body).await;
    live.take(3).await;
    let (status, _) = stop(&app, &token, &thread).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let rest = live.rest().await;
    assert_eq!(rest.last().unwrap().data, "[DONE]");
    let last_chunk = rest[rest.len() - 2].json();
    assert_eq!(last_chunk["object"], "chat.completion.chunk");
    assert_eq!(last_chunk["choices"][0]["finish_reason"], "stop");
    let messages = app.messages(&token, &thread).await;
    assert_eq!(messages[1]["status"], "stopped");

    // A reply that is not streamed cannot be stopped (its request runs to the end).
    let plain = json!({
        "threadId": thread,
        "stream": false,
        "messages": [{ "role": "user", "content": "[[mock ttft_ms=800]] slowly" }],
    });
    let pending = {
        let (app, token) = (&app, &token);
        async move { app.chat(token, plain).await }
    };
    let stopping = async {
        // Stop only once the turn has begun (its model call waits 800 ms for a first token).
        let began = eventually(Duration::from_secs(5), || async {
            let (_, page) = app.get(&format!("/api/threads/{thread}"), &token).await;
            (page["thread"]["status"] == "streaming").then_some(())
        })
        .await;
        assert!(began.is_some(), "the non-streamed turn never began");
        stop(&app, &token, &thread).await
    };
    let (answered, (status, body)) = tokio::join!(pending, stopping);
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error_code(&body), "not_stoppable");
    assert_eq!(answered.status, StatusCode::OK);
}

#[tokio::test]
async fn a_resumer_of_a_generator_that_died_is_told_when_its_lease_runs_out() {
    use buddahbot::{
        domain::{ThreadId, UserId},
        store::{EventId, StreamEvent},
    };
    let app = TestApp::spawn().await;
    let user = random_user();
    let token = app.token_for(&user);
    let thread = app.new_thread_id(&token, "crash").await;
    let (uid, tid) = (
        UserId::parse(&user).unwrap(),
        ThreadId::parse(&thread).unwrap(),
    );
    // A generator that took the thread, sent two events and died.
    let (reply, stream_start_ms) =
        dead_generator(&app, &user, &thread, Duration::from_millis(1_500)).await;
    let events: Vec<StreamEvent> = [
        json!({ "type": "start", "messageId": reply.as_str() }),
        json!({ "type": "start-step" }),
    ]
    .iter()
    .enumerate()
    .map(|(i, e)| StreamEvent {
        id: EventId {
            ms: stream_start_ms,
            seq: i as u64 + 1,
        },
        data: e.to_string(),
    })
    .collect();
    let stop = app
        .app
        .store()
        .log_events(&uid, &tid, &reply, &events)
        .await
        .unwrap();
    assert!(!stop);

    let resp = get_as(&app, &format!("/api/chat/{thread}/stream"), &token).await;
    let mut resumed = Reader::new(resp);
    assert_eq!(resumed.status, StatusCode::OK);
    let all = resumed.rest().await;
    let kinds: Vec<String> = all.iter().map(Sse::kind).collect();
    assert_eq!(kinds, ["start", "start-step", "error", "finish", "[DONE]"]);
    assert_eq!(all[3].json()["finishReason"], "error");
    // Once the lease is over there is nothing to resume.
    let resp = get_as(&app, &format!("/api/chat/{thread}/stream"), &token).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn deleting_a_thread_mid_generation_stops_it_and_leaves_no_key_behind() {
    let app = TestApp::spawn().await;
    let user = random_user();
    let token = app.token_for(&user);
    let chat = chat_id();
    let mut live = open_chat(&app, &token, ui_turn(&chat, "u1", &slow(300, 20, "long"))).await;
    live.take(4).await;
    let (status, _) = app
        .request(
            Method::DELETE,
            &format!("/api/threads/{chat}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let rest = live.rest().await;
    assert_eq!(rest.last().unwrap().data, "[DONE]");
    assert_upstream_closed(&app, "the model kept generating for a deleted thread").await;
    let left: Vec<String> = app
        .keys_of(&user)
        .await
        .into_iter()
        .filter(|k| k.contains(":thread:"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
