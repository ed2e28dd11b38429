//! Tool calling end to end: `tools` reach the model, its calls stream to the client in both
//! formats and are stored whole, tool results continue the turn (idempotently), and the real
//! clients (the OpenAI SDK, the AI SDK's Chat) run whole loops.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, random_user, run_node_test, turns::chat_id};

fn tools() -> Value {
    json!([
        { "type": "function", "function": { "name": "get_weather", "parameters": {
            "type": "object", "properties": { "city": { "type": "string" } }, "required": ["city"] } } },
        { "type": "function", "function": { "name": "get_time", "parameters": {
            "type": "object", "properties": { "zone": { "type": "string" }, "hours": { "type": "integer" } } } } },
    ])
}

/// The streamed tool calls put together by index: index → (id, name, arguments).
fn streamed_calls(chunks: &[Value]) -> BTreeMap<u64, (String, String, String)> {
    let mut calls: BTreeMap<u64, (String, String, String)> = BTreeMap::new();
    for chunk in chunks {
        for piece in chunk["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let call = calls.entry(piece["index"].as_u64().unwrap()).or_default();
            if let Some(id) = piece["id"].as_str() {
                call.0 = id.to_owned();
            }
            if let Some(name) = piece["function"]["name"].as_str() {
                call.1 = name.to_owned();
            }
            call.2 += piece["function"]["arguments"].as_str().unwrap_or_default();
        }
    }
    calls
}

#[tokio::test]
async fn parallel_tool_calls_stream_with_their_indexes_and_are_stored_whole() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let reply = app
        .chat_at(
            "/api/chat/completions",
            &token,
            json!({
                "stream": true,
                "tools": tools(),
                "tool_choice": "auto",
                "parallel_tool_calls": true,
                "messages": [{ "role": "user", "content": "Both? [[mock tool_calls=get_weather,get_time]]" }],
            }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let chunks = reply.chunks();
    let calls = streamed_calls(&chunks);
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[&0].1, "get_weather");
    assert_eq!(calls[&0].2, r#"{"city":"city-0"}"#);
    assert_eq!(calls[&1].1, "get_time");
    assert_eq!(calls[&1].2, r#"{"zone":"zone-1","hours":2}"#);
    let finish = chunks
        .iter()
        .find_map(|c| c["choices"][0]["finish_reason"].as_str())
        .unwrap();
    assert_eq!(finish, "tool_calls");

    // The model got the tools as sent.
    let sent = app.mock.requests().pop().unwrap();
    assert_eq!(sent["tools"], tools());
    assert_eq!(sent["tool_choice"], "auto");
    assert_eq!(sent["parallel_tool_calls"], true);

    let thread = reply.header("x-thread-id").to_owned();
    let stored = app.messages(&token, &thread).await;
    assert_eq!(stored.len(), 2);
    let stored_calls = stored[1]["toolCalls"].as_array().unwrap();
    assert_eq!(stored_calls.len(), 2);
    for (i, call) in stored_calls.iter().enumerate() {
        let (id, name, arguments) = &calls[&(i as u64)];
        assert_eq!(call["id"], id.as_str());
        assert_eq!(call["name"], name.as_str());
        assert_eq!(call["arguments"], arguments.as_str());
    }
    assert_eq!(stored[1]["finishReason"], "tool_calls");
}

#[tokio::test]
async fn tool_results_continue_the_turn_once_and_reach_the_model() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let first = app
        .chat(
            &token,
            json!({
                "tools": tools(),
                "messages": [{ "role": "user", "content": "Both? [[mock tool_calls=get_weather,get_time]]" }],
            }),
        )
        .await;
    let thread = first.header("x-thread-id").to_owned();
    let calls = streamed_calls(&first.chunks());
    let assistant = json!({
        "role": "assistant",
        "content": null,
        "tool_calls": calls.values().map(|(id, name, arguments)| json!({
            "id": id, "type": "function", "function": { "name": name, "arguments": arguments },
        })).collect::<Vec<_>>(),
    });
    let body = json!({
        "threadId": thread,
        "tools": tools(),
        "messages": [
            { "role": "user", "content": "Both? [[mock tool_calls=get_weather,get_time]]" },
            assistant,
            { "role": "tool", "tool_call_id": calls[&1].0, "content": "12:00" },
            { "role": "tool", "tool_call_id": calls[&0].0, "content": "sunny" },
        ],
    });
    let calls_before = app.mock.calls();
    let second = app.chat(&token, body.clone()).await;
    assert_eq!(second.status, StatusCode::OK);
    assert!(!second.text().is_empty());
    assert_eq!(app.mock.calls(), calls_before + 1);
    let sent = app.mock.requests().pop().unwrap();
    let roles: Vec<&str> = sent["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "tool", "tool"]);
    assert_eq!(sent["messages"][1]["content"], Value::Null);
    assert_eq!(sent["messages"][2]["tool_call_id"], calls[&1].0.as_str());

    let stored = app.messages(&token, &thread).await;
    let roles: Vec<&str> = stored.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "tool", "tool", "assistant"]);
    assert_eq!(stored[2]["toolCallId"], calls[&1].0.as_str());
    assert_eq!(stored[2]["toolName"], "get_time");
    assert_eq!(stored[3]["content"], "sunny");

    // The same continuation again: answered from the store, nothing stored twice, the model
    // not called again.
    let again = app.chat(&token, body).await;
    assert_eq!(again.text(), second.text());
    assert_eq!(app.mock.calls(), calls_before + 1);
    assert_eq!(app.messages(&token, &thread).await.len(), 5);
}

#[tokio::test]
async fn a_ui_turn_streams_tool_input_chunks_and_the_reload_shows_the_call() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let chat = chat_id();
    let reply = app
        .chat(
            &token,
            json!({
                "id": chat,
                "trigger": "submit-message",
                "tools": tools(),
                "messages": [{ "id": "u1", "role": "user", "parts": [
                    { "type": "text", "text": "Talk, then call. [[mock tool_calls=get_weather tool_text=1 tokens=3]]" },
                ] }],
            }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    let chunks: Vec<Value> = reply
        .events
        .iter()
        .filter(|e| e.data != "[DONE]")
        .map(|e| e.json())
        .collect();
    let kinds: Vec<&str> = chunks.iter().map(|c| c["type"].as_str().unwrap()).collect();
    let tool_kinds: Vec<&str> = kinds
        .iter()
        .copied()
        .filter(|k| k.starts_with("tool-") || *k == "text-end")
        .collect();
    assert_eq!(
        tool_kinds,
        [
            "text-end",
            "tool-input-start",
            "tool-input-delta",
            "tool-input-delta",
            "tool-input-delta",
            "tool-input-available",
        ],
        "{kinds:?}"
    );
    let start = chunks
        .iter()
        .find(|c| c["type"] == "tool-input-start")
        .unwrap();
    assert_eq!(start["toolName"], "get_weather");
    let available = chunks
        .iter()
        .find(|c| c["type"] == "tool-input-available")
        .unwrap();
    assert_eq!(available["toolCallId"], start["toolCallId"]);
    assert_eq!(available["input"], json!({ "city": "city-0" }));
    let finish = chunks.iter().find(|c| c["type"] == "finish").unwrap();
    assert_eq!(finish["finishReason"], "tool-calls");

    let (status, page) = app
        .get(&format!("/api/threads/{chat}?format=ui"), &token)
        .await;
    assert_eq!(status, StatusCode::OK);
    let parts = page["messages"][1]["parts"].as_array().unwrap();
    let types: Vec<&str> = parts.iter().map(|p| p["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["step-start", "text", "tool-get_weather"]);
    assert_eq!(parts[2]["state"], "input-available", "no result yet");
    assert_eq!(parts[2]["toolCallId"], start["toolCallId"]);
}

#[tokio::test]
async fn the_real_clients_run_tool_loops() {
    let app = TestApp::spawn().await;
    run_node_test(&app, &random_user(), "tools.test.mjs", &[]).await;
}
