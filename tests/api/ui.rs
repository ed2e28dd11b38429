//! `POST /api/chat` in the AI SDK's shape (`DefaultChatTransport`): the UI message stream,
//! the stored parts, `?format=ui`, and the real `ai` package driving the server.

use mock_upstream::reply_text;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, error_code, random_user, run_node_test, sse::ChatReply, turns::chat_id,
};

fn message_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn ui_user(id: &str, text: &str) -> Value {
    json!({ "id": id, "role": "user", "parts": [{ "type": "text", "text": text }] })
}

fn ui_body(chat: &str, messages: &[Value]) -> Value {
    json!({ "id": chat, "messages": messages, "trigger": "submit-message" })
}

/// Every event but `[DONE]`, parsed.
fn ui_chunks(reply: &ChatReply) -> Vec<Value> {
    reply
        .events
        .iter()
        .filter(|e| e.data != "[DONE]")
        .map(|e| serde_json::from_str(&e.data).unwrap())
        .collect()
}

fn types(chunks: &[Value]) -> Vec<&str> {
    chunks.iter().map(|c| c["type"].as_str().unwrap()).collect()
}

/// The concatenated `text-delta`s.
fn ui_text(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter(|c| c["type"] == "text-delta")
        .map(|c| c["delta"].as_str().unwrap())
        .collect()
}

/// The chunk types of a text reply of `deltas` deltas.
fn text_reply_types(deltas: usize) -> Vec<&'static str> {
    let mut want = vec!["start", "start-step", "text-start"];
    want.extend(std::iter::repeat_n("text-delta", deltas));
    want.extend(["text-end", "finish-step", "finish"]);
    want
}

#[tokio::test]
async fn a_ui_request_gets_the_ui_message_stream_with_its_headers() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let (chat, user_message) = (chat_id(), message_id());

    let reply = app
        .chat(
            &token,
            ui_body(&chat, &[ui_user(&user_message, "Hello there")]),
        )
        .await;

    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), "text/event-stream");
    assert_eq!(reply.header("cache-control"), "no-cache");
    assert_eq!(reply.header("x-vercel-ai-ui-message-stream"), "v1");
    assert_eq!(reply.header("x-accel-buffering"), "no");
    assert_eq!(reply.header("x-thread-id"), chat);
    assert_eq!(reply.last_data(), Some("[DONE]"));
    let chunks = ui_chunks(&reply);
    let deltas = chunks.iter().filter(|c| c["type"] == "text-delta").count();
    assert_eq!(types(&chunks), text_reply_types(deltas));
    assert_eq!(ui_text(&chunks), reply_text(16));
    let reply_id = reply.header("x-message-id");
    assert_eq!(chunks[0], json!({ "type": "start", "messageId": reply_id }));
    assert_eq!(chunks[1], json!({ "type": "start-step" }));
    let text_id = chunks[2]["id"].as_str().unwrap();
    assert!(
        chunks[2..chunks.len() - 2]
            .iter()
            .all(|c| c["id"] == text_id),
        "one text part"
    );
    let finish = chunks.last().unwrap();
    assert_eq!(finish["finishReason"], "stop");
    assert_eq!(finish["messageMetadata"]["model"], "Hermes-4-70B");
    assert_eq!(finish["messageMetadata"]["usage"]["completionTokens"], 16);
    // Stored before [DONE]: read back at once, parts included.
    let messages = app.messages(&token, &chat).await;
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert_eq!(messages[0]["id"], user_message.as_str());
    assert_eq!(messages[0]["content"], "Hello there");
    assert_eq!(
        messages[0]["parts"],
        json!([{ "type": "text", "text": "Hello there" }])
    );
    assert_eq!(messages[1]["id"], reply_id);
    assert_eq!(messages[1]["content"], reply_text(16).as_str());
    assert_eq!(
        messages[1]["parts"],
        json!([{ "type": "text", "text": reply_text(16) }])
    );
    let (_, page) = app.get(&format!("/api/threads/{chat}"), &token).await;
    assert_eq!(page["thread"]["title"], "Hello there");
}

#[tokio::test]
async fn a_second_ui_turn_resending_the_history_adds_exactly_two_messages() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let chat = chat_id();
    let first_user = ui_user(&message_id(), "one");
    let first = app
        .chat(&token, ui_body(&chat, std::slice::from_ref(&first_user)))
        .await;
    let first_reply = json!({
        "id": first.header("x-message-id"),
        "role": "assistant",
        "parts": [{ "type": "step-start" }, { "type": "text", "text": reply_text(16) }],
    });

    let second = app
        .chat(
            &token,
            ui_body(
                &chat,
                &[first_user, first_reply, ui_user(&message_id(), "two")],
            ),
        )
        .await;

    assert_eq!(second.status, StatusCode::OK);
    assert_eq!(ui_text(&ui_chunks(&second)), reply_text(16));
    assert_ne!(second.header("x-message-id"), first.header("x-message-id"));
    let contents: Vec<String> = app
        .messages(&token, &chat)
        .await
        .iter()
        .map(|m| m["content"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(contents, ["one", &reply_text(16), "two", &reply_text(16)]);
    let sent = &app.mock.requests()[1]["messages"];
    assert_eq!(sent.as_array().unwrap().len(), 3, "{sent}");
    assert_eq!(sent[1]["content"], reply_text(16).as_str());
}

#[tokio::test]
async fn a_thread_page_in_ui_format_holds_ui_messages() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let chat = chat_id();
    let asked = ui_user(&message_id(), "hi");
    app.chat(&token, ui_body(&chat, std::slice::from_ref(&asked)))
        .await;
    // A thread written in the OpenAI format has no parts: its text becomes one.
    let openai = app
        .chat(
            &token,
            json!({ "messages": [{ "role": "user", "content": "plain" }] }),
        )
        .await;

    let (status, page) = app
        .get(&format!("/api/threads/{chat}?format=ui"), &token)
        .await;
    let (_, plain) = app
        .get(
            &format!("/api/threads/{}?format=ui", openai.header("x-thread-id")),
            &token,
        )
        .await;
    let (bad_status, bad) = app
        .get(&format!("/api/threads/{chat}?format=xml"), &token)
        .await;

    assert_eq!(status, StatusCode::OK, "{page}");
    let messages = page["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["id"], asked["id"]);
    assert_eq!(messages[0]["role"], "user");
    assert_eq!(messages[0]["parts"], asked["parts"]);
    assert!(messages[0].get("content").is_none(), "UIMessage shape");
    assert_eq!(messages[1]["role"], "assistant");
    assert_eq!(
        messages[1]["parts"],
        json!([{ "type": "text", "text": reply_text(16) }])
    );
    assert_eq!(messages[1]["metadata"]["finishReason"], "stop");
    assert_eq!(
        plain["messages"][0]["parts"],
        json!([{ "type": "text", "text": "plain" }])
    );
    assert_eq!(bad_status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&bad), "invalid_param");
    // Without `format`, the page is unchanged.
    assert_eq!(app.messages(&token, &chat).await[0]["content"], "hi");
}

#[tokio::test]
async fn an_image_file_part_reaches_the_model_as_an_image_url_part() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let chat = chat_id();
    let url = "https://example.com/cat.png";
    let message = json!({
        "id": message_id(),
        "role": "user",
        "parts": [
            { "type": "text", "text": "What is this?" },
            { "type": "file", "mediaType": "image/png", "url": url, "filename": "cat.png" },
            { "type": "file", "mediaType": "application/pdf", "url": "https://example.com/a.pdf" },
            { "type": "data-note", "data": { "x": 1 } },
        ],
    });

    let reply = app.chat(&token, ui_body(&chat, &[message])).await;

    assert_eq!(reply.status, StatusCode::OK, "{}", reply.json);
    let sent = &app.mock.requests()[0]["messages"];
    let content = &sent[sent.as_array().unwrap().len() - 1]["content"];
    assert_eq!(
        *content,
        json!([
            { "type": "text", "text": "What is this?" },
            { "type": "image_url", "image_url": { "url": url } },
        ])
    );
    let stored = app.messages(&token, &chat).await;
    assert_eq!(stored[0]["content"], "What is this?");
    assert_eq!(
        stored[0]["parts"][1],
        json!({ "type": "file", "mediaType": "image/png", "url": url, "filename": "cat.png" })
    );
    // The PDF is kept (not sent: the model cannot read it), and the reply says so.
    assert_eq!(stored[0]["parts"].as_array().unwrap().len(), 3);
    assert_eq!(stored[0]["parts"][2]["mediaType"], "application/pdf");
    assert_eq!(reply.header("x-attachments-skipped"), "application/pdf");
}

#[tokio::test]
async fn a_ui_reply_that_breaks_off_ends_with_error_then_finish_and_is_stored_partially() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let chat = chat_id();

    let reply = app
        .chat(
            &token,
            ui_body(
                &chat,
                &[ui_user(
                    &message_id(),
                    "break [[mock tokens=6 cut_after=2]]",
                )],
            ),
        )
        .await;

    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.last_data(), Some("[DONE]"));
    let chunks = ui_chunks(&reply);
    let kinds = types(&chunks);
    assert_eq!(&kinds[..3], ["start", "start-step", "text-start"]);
    assert_eq!(&kinds[kinds.len() - 3..], ["text-end", "error", "finish"]);
    let error = &chunks[chunks.len() - 2];
    assert!(
        error["errorText"].as_str().is_some_and(|t| !t.is_empty()),
        "{error}"
    );
    assert_eq!(
        chunks.last().unwrap(),
        &json!({ "type": "finish", "finishReason": "error" })
    );
    assert_eq!(ui_text(&chunks), reply_text(2));
    let messages = app.messages(&token, &chat).await;
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1]["content"], reply_text(2).as_str());
    assert_eq!(messages[1]["finishReason"], "error");
}

#[tokio::test]
async fn a_retried_ui_turn_replays_the_stored_reply_in_the_ui_format() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let chat = chat_id();
    let body = ui_body(&chat, &[ui_user(&message_id(), "once")]);
    let first = app.chat(&token, body.clone()).await;

    let again = app.chat(&token, body).await;

    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.header("x-vercel-ai-ui-message-stream"), "v1");
    assert_eq!(again.last_data(), Some("[DONE]"));
    let chunks = ui_chunks(&again);
    assert_eq!(types(&chunks), text_reply_types(1));
    assert_eq!(chunks[0]["messageId"], first.header("x-message-id"));
    assert_eq!(again.header("x-message-id"), first.header("x-message-id"));
    assert_eq!(ui_text(&chunks), reply_text(16));
    assert_eq!(chunks.last().unwrap()["finishReason"], "stop");
    assert_eq!(app.mock.requests().len(), 1, "the model was called once");
    assert_eq!(app.messages(&token, &chat).await.len(), 2);
}

#[tokio::test]
async fn invalid_ui_requests_are_refused_naming_the_field() {
    let app = TestApp::spawn_with(|config| {
        config.chat.max_messages = 3;
        config.chat.max_content_chars = 50;
    })
    .await;
    let token = app.token_for(&random_user());
    let ok = || ui_user(&message_id(), "hi");
    let assistant =
        json!({ "id": "a1", "role": "assistant", "parts": [{ "type": "text", "text": "x" }] });
    let long = "a".repeat(51);
    let cases = [
        (
            "bad chat id",
            json!({ "id": "a b", "messages": [ok()] }),
            "id",
        ),
        (
            "empty chat id",
            json!({ "id": "", "messages": [ok()] }),
            "id",
        ),
        ("no messages", ui_body(&chat_id(), &[]), "messages"),
        (
            "too many messages",
            ui_body(&chat_id(), &[ok(), ok(), ok(), ok()]),
            "messages",
        ),
        (
            "unknown role",
            json!({ "id": chat_id(), "messages": [{ "id": "m", "role": "wizard", "parts": [] }] }),
            "messages[0].role",
        ),
        (
            "last is the assistant's",
            ui_body(&chat_id(), &[ok(), assistant]),
            "messages[1]",
        ),
        (
            "no user message id",
            json!({ "id": chat_id(), "messages": [{ "role": "user", "parts": [{ "type": "text", "text": "hi" }] }] }),
            "messages[0].id",
        ),
        (
            "bad user message id",
            json!({ "id": chat_id(), "messages": [{ "id": "m 1", "role": "user", "parts": [{ "type": "text", "text": "hi" }] }] }),
            "messages[0].id",
        ),
        (
            "no usable part",
            json!({ "id": chat_id(), "messages": [{ "id": "m", "role": "user", "parts": [{ "type": "step-start" }] }] }),
            "messages[0].parts",
        ),
        (
            "blank text",
            json!({ "id": chat_id(), "messages": [{ "id": "m", "role": "user", "parts": [{ "type": "text", "text": "  " }] }] }),
            "messages[0].parts",
        ),
        (
            "text too long",
            json!({ "id": chat_id(), "messages": [{ "id": "m", "role": "user", "parts": [{ "type": "text", "text": long }] }] }),
            "messages[0].parts[0].text",
        ),
        (
            "image without a usable url",
            json!({ "id": chat_id(), "messages": [{ "id": "m", "role": "user", "parts": [{ "type": "file", "mediaType": "image/png", "url": "file:///etc/passwd" }] }] }),
            "messages[0].parts[0].url",
        ),
        (
            "unknown trigger",
            json!({ "id": chat_id(), "messages": [ok()], "trigger": "rewind" }),
            "trigger",
        ),
        (
            "bad model",
            json!({ "id": chat_id(), "messages": [ok()], "model": "gpt-2" }),
            "model",
        ),
    ];
    for (name, body, field) in cases {
        let reply = app.chat(&token, body).await;

        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{name}: {}",
            reply.json
        );
        assert_eq!(error_code(&reply.json), "invalid_body", "{name}");
        let message = reply.json["error"]["message"].as_str().unwrap();
        assert!(message.contains(&format!("`{field}`")), "{name}: {message}");
    }
    assert!(app.mock.requests().is_empty(), "nothing reached the model");
}

#[tokio::test]
async fn another_users_chat_id_never_reaches_their_thread() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (app.token_for(&random_user()), app.token_for(&random_user()));
    let chat = chat_id();
    app.chat(&alice, ui_body(&chat, &[ui_user(&message_id(), "alice's")]))
        .await;

    let (status, body) = app.get(&format!("/api/threads/{chat}"), &bob).await;
    let bobs = app
        .chat(&bob, ui_body(&chat, &[ui_user(&message_id(), "bob's")]))
        .await;

    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "thread_not_found");
    // Thread ids live in each user's own namespace: Bob's chat is his own thread, and
    // Alice's is untouched.
    assert_eq!(bobs.status, StatusCode::OK);
    let bob_sees = app.messages(&bob, &chat).await;
    assert_eq!(bob_sees.len(), 2);
    assert_eq!(bob_sees[0]["content"], "bob's");
    let alice_sees = app.messages(&alice, &chat).await;
    assert_eq!(alice_sees.len(), 2);
    assert_eq!(alice_sees[0]["content"], "alice's");
}

#[tokio::test]
async fn the_real_ai_sdk_client_reads_the_stream() {
    let app = TestApp::spawn().await;
    let expected = ("BUDDAHBOT_EXPECTED_REPLY", reply_text(16));
    run_node_test(&app, &random_user(), "ui-stream.test.mjs", &[expected]).await;
}
