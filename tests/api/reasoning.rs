//! Hermes-4's reasoning end to end: asked for (the thinking prompt reaches the model only
//! then), read from either upstream shape (inline `<think>` cut anywhere, or a field of its
//! own), sent to each client format only as reasoning, stored apart from the answer, never
//! sent back to the model, and replayed as it streamed; inline `<tool_call>` blocks become
//! calls.

use mock_upstream::{reasoning_text, reply_text};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, random_user,
    sse::{Sse, text_of},
    turns::{chat_id, ui_turn, user_turn},
};

/// `POST path` with a JSON body: the status and the JSON answer.
async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
    app.request(reqwest::Method::POST, path, Some(token), Some(body))
        .await
}

/// A test app and a user's token.
async fn start() -> (TestApp, String) {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    (app, token)
}

/// The reasoning and answer of a `[[mock think=3 tokens=3]]` reply, as the client gets them.
fn thought() -> String {
    reasoning_text(3).trim_end().to_owned()
}

fn answer() -> String {
    reply_text(3)
}

/// What an OpenAI stream said: (reasoning_content, content), each concatenated.
fn openai_said(chunks: &[Value]) -> (String, String) {
    let field = |key: &str| -> String {
        chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"][key].as_str())
            .collect()
    };
    (field("reasoning_content"), field("content"))
}

/// The concatenated `reasoning-delta`s of a UI stream.
fn reasoning_of(events: &[Sse]) -> String {
    events
        .iter()
        .filter(|e| e.kind() == "reasoning-delta")
        .map(|e| e.json()["delta"].as_str().unwrap().to_owned())
        .collect()
}

/// The first UI chunk of `kind`, parsed.
fn first_of(events: &[Sse], kind: &str) -> Value {
    events
        .iter()
        .find(|e| e.kind() == kind)
        .unwrap_or_else(|| panic!("no `{kind}` chunk"))
        .json()
}

/// The kinds of a UI stream, without repeats in a row.
fn ui_kinds(events: &[Sse]) -> Vec<String> {
    let mut kinds: Vec<String> = events.iter().map(Sse::kind).collect();
    kinds.dedup();
    kinds
}

/// Fails unless the UI stream's reasoning part comes whole before its text part.
fn assert_reasoning_first(events: &[Sse], case: &str) {
    let kinds = ui_kinds(events);
    let at = |kind: &str| kinds.iter().position(|k| k == kind);
    let order = [
        at("reasoning-start"),
        at("reasoning-delta"),
        at("reasoning-end"),
        at("text-start"),
    ];
    assert!(
        order.iter().all(Option::is_some) && order.is_sorted(),
        "{case}: {kinds:?}"
    );
}

#[tokio::test]
async fn inline_thinking_cut_at_every_byte_reaches_both_formats_only_as_reasoning() {
    let (app, token) = start().await;
    // The content the mock sends: `<think>\n…\n</think>\n\n` and the answer.
    let content = format!("<think>\n{}\n</think>\n\n{}", reasoning_text(3), answer());
    for cut in 0..=content.len() {
        let directive = format!("[[mock think=3 tokens=3 split_at={cut},5,12,20,33]]");
        let openai = app
            .chat(&token, user_turn(&format!("{directive} Why?")))
            .await;
        assert_eq!(openai.status, StatusCode::OK, "cut at {cut}");
        let chunks = openai.chunks();
        assert_eq!(
            openai_said(&chunks),
            (thought(), answer()),
            "OpenAI, cut at {cut}"
        );
        assert_eq!(
            chunks
                .iter()
                .filter_map(|c| c["choices"][0]["finish_reason"].as_str())
                .collect::<Vec<_>>(),
            ["stop"]
        );

        let chat = chat_id();
        let ui = app
            .chat(&token, ui_turn(&chat, "u1", &format!("{directive} Why?")))
            .await;
        assert_eq!(
            (reasoning_of(&ui.events), text_of(&ui.events)),
            (thought(), answer()),
            "UI, cut at {cut}"
        );
        assert_reasoning_first(&ui.events, &format!("UI, cut at {cut}"));

        let stored = app.messages(&token, &chat).await;
        assert_eq!(stored[1]["content"], answer().as_str(), "cut at {cut}");
        assert_eq!(stored[1]["reasoning"], thought().as_str(), "cut at {cut}");
    }
}

#[tokio::test]
async fn reasoning_in_a_field_of_its_own_reaches_both_formats_and_is_stored_apart() {
    let (app, token) = start().await;
    for field in ["reasoning_content", "reasoning"] {
        let directive = format!("[[mock think=3 tokens=3 think_as={field}]] Why?");
        let openai = app.chat(&token, user_turn(&directive)).await;
        assert_eq!(
            openai_said(&openai.chunks()),
            (thought(), answer()),
            "{field}"
        );
        let thread = openai.header("x-thread-id").to_owned();
        let stored = app.messages(&token, &thread).await;
        assert_eq!(stored[1]["content"], answer().as_str());
        assert_eq!(stored[1]["reasoning"], thought().as_str());
        assert_eq!(
            stored[1]["parts"],
            json!([
                { "type": "reasoning", "text": thought() },
                { "type": "text", "text": answer() },
            ])
        );
        assert_eq!(stored[1]["usage"]["reasoningTokens"], 3);

        let chat = chat_id();
        let ui = app.chat(&token, ui_turn(&chat, "u1", &directive)).await;
        assert_reasoning_first(&ui.events, field);
        assert_eq!(
            (reasoning_of(&ui.events), text_of(&ui.events)),
            (thought(), answer())
        );
        let (status, page) = app
            .get(&format!("/api/threads/{chat}?format=ui"), &token)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            page["messages"][1]["parts"],
            json!([
                { "type": "reasoning", "text": thought() },
                { "type": "text", "text": answer() },
            ])
        );
        assert_eq!(
            page["messages"][1]["metadata"]["usage"]["reasoningTokens"],
            3
        );

        // Not streamed: `message.reasoning_content`, the answer alone in `content`.
        let whole = app
            .chat_at("/api/chat/completions", &token, user_turn(&directive))
            .await;
        let message = &whole.json["choices"][0]["message"];
        assert_eq!(message["content"], answer().as_str(), "{field}");
        assert_eq!(message["reasoning_content"], thought().as_str(), "{field}");
        assert_eq!(
            whole.json["usage"]["completion_tokens_details"]["reasoning_tokens"],
            3
        );
    }
    // Inline, not streamed.
    let whole = app
        .chat_at(
            "/api/chat/completions",
            &token,
            json!({ "messages": [{ "role": "user", "content": "[[mock think=3 tokens=3]] Why?" }] }),
        )
        .await;
    let message = &whole.json["choices"][0]["message"];
    assert_eq!(message["content"], answer().as_str());
    assert_eq!(message["reasoning_content"], thought().as_str());
}

#[tokio::test]
async fn the_thinking_prompt_reaches_the_model_only_when_reasoning_is_asked_for() {
    let (app, token) = start().await;
    let thinks = |request: &Value| {
        request["messages"][0]["role"] == "system"
            && request["messages"][0]["content"]
                .as_str()
                .is_some_and(|c| c.contains("<think> </think>"))
    };
    let asks = [
        (json!({}), false),
        (json!({ "reasoning": { "enabled": true } }), true),
        (json!({ "reasoning_effort": "high" }), true),
        (json!({ "reasoning_effort": "none" }), false),
        (json!({ "reasoning": { "enabled": false } }), false),
    ];
    for (ask, want) in &asks {
        let mut body = json!({ "messages": [{ "role": "user", "content": "Hi" }] });
        body.as_object_mut()
            .unwrap()
            .extend(ask.as_object().unwrap().clone());
        let reply = app.chat(&token, body).await;
        assert_eq!(reply.status, StatusCode::OK, "{ask}");
        let sent = app.mock.requests().pop().unwrap();
        assert_eq!(thinks(&sent), *want, "{ask}: {sent}");
    }
    // The AI SDK body and the Responses API say it the same way.
    let mut body = ui_turn(&chat_id(), "u1", "Hi");
    body["reasoning"] = json!({ "enabled": true });
    app.chat(&token, body).await;
    assert!(thinks(&app.mock.requests().pop().unwrap()));
    let (status, _) = post(
        &app,
        &token,
        "/api/responses",
        json!({ "input": "Hi", "reasoning": { "effort": "low" } }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(thinks(&app.mock.requests().pop().unwrap()));
    // A bad value is refused, naming the field.
    let (status, body) = post(
        &app,
        &token,
        "/api/chat",
        json!({ "messages": [{ "role": "user", "content": "Hi" }], "reasoning_effort": "max" }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`reasoning_effort`"),
        "{body}"
    );

    // With DEFAULT_REASONING on, a request that says nothing reasons; one may still say no.
    let on = TestApp::spawn_with(|config| config.chat.default_reasoning = true).await;
    let token = on.token_for(&random_user());
    on.chat(
        &token,
        json!({ "messages": [{ "role": "user", "content": "Hi" }] }),
    )
    .await;
    assert!(thinks(&on.mock.requests().pop().unwrap()));
    on.chat(
        &token,
        json!({ "messages": [{ "role": "user", "content": "Hi" }], "reasoning": { "enabled": false } }),
    )
    .await;
    assert!(!thinks(&on.mock.requests().pop().unwrap()));
}

/// Fails unless the model's last request had the earlier reply (its second message) as its
/// answer alone.
fn assert_the_answer_alone_was_resent(app: &TestApp) {
    let sent = app.mock.requests().pop().unwrap();
    assert_eq!(
        sent["messages"][1],
        json!({ "role": "assistant", "content": answer() }),
        "{sent}"
    );
}

#[tokio::test]
async fn earlier_reasoning_is_never_sent_to_the_model_again() {
    let (app, token) = start().await;
    let first = "[[mock think=3 tokens=3]] Why?";

    // OpenAI clients send the history back, some with the reasoning still in the text.
    let reply = app.chat(&token, user_turn(first)).await;
    let thread = reply.header("x-thread-id").to_owned();
    let raw = format!("<think>\n{}\n</think>\n\n{}", reasoning_text(3), answer());
    for (i, earlier) in [answer(), raw].into_iter().enumerate() {
        // A new question each time: the same one again would be a retry, answered from the
        // store.
        let reply = app
            .chat(
                &token,
                json!({
                    "threadId": thread,
                    "messages": [
                        { "role": "user", "content": first },
                        { "role": "assistant", "content": earlier, "reasoning_content": thought() },
                        { "role": "user", "content": format!("And then ({i})?") },
                    ],
                }),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_the_answer_alone_was_resent(&app);
    }

    // The AI SDK sends the reply's reasoning part back.
    let chat = chat_id();
    app.chat(&token, ui_turn(&chat, "u1", first)).await;
    let (_, page) = app
        .get(&format!("/api/threads/{chat}?format=ui"), &token)
        .await;
    let mut messages = page["messages"].as_array().unwrap().clone();
    messages.push(
        json!({ "id": "u2", "role": "user", "parts": [{ "type": "text", "text": "And then?" }] }),
    );
    let reply = app
        .chat(
            &token,
            json!({ "id": chat, "messages": messages, "trigger": "submit-message" }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_the_answer_alone_was_resent(&app);

    // The Responses API builds the history from the store.
    let (status, response) = post(&app, &token, "/api/responses", json!({ "input": first })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(response["output"][0]["type"], "reasoning");
    // A client that passes the reasoning item back (as stateless clients do): ignored.
    let (status, _) = post(
        &app,
        &token,
        "/api/responses",
        json!({ "input": [response["output"][0], { "role": "user", "content": "Hi" }] }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let sent = app.mock.requests().pop().unwrap();
    assert_eq!(
        sent["messages"],
        json!([{ "role": "user", "content": "Hi" }])
    );
    let (status, _) = post(
        &app,
        &token,
        "/api/responses",
        json!({ "input": "And then?", "previous_response_id": response["id"] }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_the_answer_alone_was_resent(&app);
}

#[tokio::test]
async fn an_unclosed_think_is_stored_as_reasoning_with_the_model_s_finish_reason() {
    let (app, token) = start().await;
    let directive = "[[mock think=3 think_close=0 split_at=2,9]] Why?";
    let openai = app.chat(&token, user_turn(directive)).await;
    assert_eq!(openai_said(&openai.chunks()), (thought(), String::new()));
    let thread = openai.header("x-thread-id").to_owned();
    let stored = app.messages(&token, &thread).await;
    assert_eq!(stored[1]["reasoning"], thought().as_str());
    assert_eq!(stored[1]["content"], "");
    assert_eq!(stored[1]["finishReason"], "length");

    let chat = chat_id();
    let ui = app.chat(&token, ui_turn(&chat, "u1", directive)).await;
    assert_eq!(reasoning_of(&ui.events), thought());
    assert_eq!(text_of(&ui.events), "");
    assert_eq!(first_of(&ui.events, "finish")["finishReason"], "length");
    let stored = app.messages(&token, &chat).await;
    assert_eq!(stored[1]["reasoning"], thought().as_str());
    assert_eq!(stored[1]["finishReason"], "length");
}

fn weather_tool() -> Value {
    json!([{ "type": "function", "function": { "name": "get_weather", "parameters": {
        "type": "object", "properties": { "city": { "type": "string" } } } } }])
}

#[tokio::test]
async fn an_inline_tool_call_block_becomes_a_tool_call_in_both_formats() {
    let (app, token) = start().await;
    let directive = "[[mock think=2 tool_calls=get_weather tool_inline=1 split_at=40,61]] Weather?";
    let mut body = user_turn(directive);
    body["tools"] = weather_tool();
    let openai = app.chat(&token, body).await;
    let chunks = openai.chunks();
    let (reasoning, content) = openai_said(&chunks);
    assert_eq!(reasoning, reasoning_text(2).trim_end());
    assert_eq!(content, "", "the call is no text");
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].as_array())
        .flatten()
        .collect();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["index"], 0);
    assert_eq!(calls[0]["type"], "function");
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    assert_eq!(calls[0]["function"]["arguments"], r#"{"city":"city-0"}"#);
    let finish: Vec<&str> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["finish_reason"].as_str())
        .collect();
    assert_eq!(finish, ["tool_calls"]);
    let thread = openai.header("x-thread-id").to_owned();
    let stored = app.messages(&token, &thread).await;
    assert_eq!(stored[1]["toolCalls"][0]["id"], calls[0]["id"]);
    assert_eq!(
        stored[1]["toolCalls"][0]["arguments"],
        r#"{"city":"city-0"}"#
    );
    assert_eq!(stored[1]["finishReason"], "tool_calls");

    let mut body = ui_turn(&chat_id(), "u1", directive);
    body["tools"] = weather_tool();
    let ui = app.chat(&token, body).await;
    let available = first_of(&ui.events, "tool-input-available");
    assert_eq!(available["toolName"], "get_weather");
    assert_eq!(available["input"], json!({ "city": "city-0" }));
    assert_eq!(first_of(&ui.events, "finish")["finishReason"], "tool-calls");
    assert_eq!(text_of(&ui.events), "");
}

#[tokio::test]
async fn a_retried_turn_replays_the_reasoning_as_it_streamed() {
    let (app, token) = start().await;
    let chat = chat_id();
    let body = ui_turn(&chat, "u1", "[[mock think=3 tokens=3]] Why?");
    let live = app.chat(&token, body.clone()).await;
    let calls = app.mock.calls();
    let replayed = app.chat(&token, body).await;
    assert_eq!(app.mock.calls(), calls, "answered from the store");
    assert_eq!(ui_kinds(&replayed.events), ui_kinds(&live.events));
    assert_eq!(reasoning_of(&replayed.events), thought());
    assert_eq!(text_of(&replayed.events), answer());

    let openai_body = json!({
        "threadId": chat,
        "messages": [{ "id": "o1", "role": "user", "content": "[[mock think=3 tokens=3]] Why?" }],
    });
    app.chat(&token, openai_body.clone()).await;
    let replayed = app.chat(&token, openai_body).await;
    assert_eq!(openai_said(&replayed.chunks()), (thought(), answer()));
}

#[tokio::test]
async fn search_finds_the_answer_not_the_reasoning() {
    let (app, token) = start().await;
    app.chat(
        &token,
        json!({ "messages": [{ "role": "user", "content": "[[mock think=4 tokens=3]] Go" }] }),
    )
    .await;
    let (status, found) = app.get("/api/search?q=breathe", &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found["results"].as_array().unwrap().len(), 1, "{found}");
    let (_, found) = app.get("/api/search?q=wants", &token).await;
    assert_eq!(found["results"], json!([]), "the reasoning is not indexed");
}
