//! `tool_calls` and `tool_text`: tool-call replies, streamed and not, and the tool loop's end.

use std::collections::HashSet;

use mock_upstream::{MockConfig, prompt_tokens, reply_text};
use serde_json::{Value, json};

use reqwest::RequestBuilder;

use crate::helpers::{Sse, TestMock, error_of, read_sse};

/// Two tools, as raw JSON: a `serde_json::Value` would sort the properties (serde_json's
/// `preserve_order` is off), and the arguments must follow the order the request wrote.
const TOOLS: &str = r#"[
    {"type": "function", "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string"},
            "days": {"type": "integer"},
            "metric": {"type": "boolean"},
            "around": {"type": "array", "items": {"type": "string"}},
            "accuracy": {"type": "number"}
        }, "required": ["city"]}
    }},
    {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}
]"#;

/// `POST /chat/completions` with `request` plus [`TOOLS`] as `tools`.
fn chat_with_tools(mock: &TestMock, request: &Value) -> RequestBuilder {
    let json = request.to_string();
    let without_brace = json.strip_suffix('}').unwrap();
    mock.client
        .post(format!("{}/chat/completions", mock.mock.base_url()))
        .header("content-type", "application/json")
        .body(format!(r#"{without_brace},"tools":{TOOLS}}}"#))
}

/// A request (without `tools`) whose only message is the user's `text`.
fn body(text: &str, stream: bool) -> Value {
    json!({
        "model": "Hermes-4-70B",
        "messages": [{"role": "user", "content": text}],
        "stream": stream,
        "stream_options": {"include_usage": true},
    })
}

/// Arguments of call `n` of `get_weather`, property order as in [`TOOLS`].
fn weather_arguments(n: usize) -> String {
    format!(
        r#"{{"city":"city-{n}","days":{},"metric":true,"around":null,"accuracy":{}}}"#,
        n + 1,
        n + 1
    )
}

fn assert_call_id(id: &str) {
    assert!(id.starts_with("call_"), "{id}");
    let hex = id.strip_prefix("call_").unwrap();
    assert_eq!(hex.len(), 8, "{id}");
    assert!(
        hex.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{id}"
    );
}

/// `(id, name, arguments)` per call index, reassembled from a stream's tool-call deltas.
fn streamed_calls(sse: &Sse) -> Vec<(String, String, String)> {
    let mut calls: Vec<(String, String, String)> = Vec::new();
    for chunk in sse.json_events() {
        let Some(deltas) = chunk["choices"][0]["delta"]["tool_calls"].as_array() else {
            continue;
        };
        for delta in deltas {
            let index = usize::try_from(delta["index"].as_u64().unwrap()).unwrap();
            if let Some(id) = delta["id"].as_str() {
                assert_eq!(index, calls.len());
                assert_eq!(delta["type"], "function");
                let name = delta["function"]["name"].as_str().unwrap().to_owned();
                calls.push((id.to_owned(), name, String::new()));
            }
            calls[index]
                .2
                .push_str(delta["function"]["arguments"].as_str().unwrap());
        }
    }
    calls
}

fn finish_reason(sse: &Sse) -> Value {
    sse.json_events()
        .iter()
        .map(|chunk| chunk["choices"][0]["finish_reason"].clone())
        .find(|reason| !reason.is_null())
        .unwrap()
}

#[tokio::test]
async fn a_streamed_reply_makes_each_named_call_in_order() {
    let mock = TestMock::start(MockConfig::default()).await;

    let response = chat_with_tools(
        &mock,
        &body(
            "Weather?\n[[mock tool_calls=get_weather,get_time,get_weather]]",
            true,
        ),
    )
    .send()
    .await
    .unwrap();

    assert_eq!(response.status(), 200);
    let sse = read_sse(response).await;
    assert!(sse.error.is_none(), "{:?}", sse.error);
    assert!(sse.events.last().unwrap().is_done());
    let chunks = sse.json_events();
    // Role, 3 × (head + 3 argument pieces), finish, usage.
    assert_eq!(chunks.len(), 1 + 3 * 4 + 1 + 1);
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    assert_eq!(sse.text(), "", "no text without tool_text");
    let calls = streamed_calls(&sse);
    let made: Vec<(&str, &str)> = calls
        .iter()
        .map(|(_, name, arguments)| (name.as_str(), arguments.as_str()))
        .collect();
    assert_eq!(
        made,
        [
            ("get_weather", weather_arguments(0).as_str()),
            ("get_time", "{}"),
            ("get_weather", weather_arguments(2).as_str()),
        ]
    );
    for (id, _, arguments) in &calls {
        assert_call_id(id);
        let _: Value = serde_json::from_str(arguments).unwrap();
    }
    let ids: HashSet<&String> = calls.iter().map(|(id, ..)| id).collect();
    assert_eq!(ids.len(), 3, "ids are unique");
    assert_eq!(finish_reason(&sse), "tool_calls");
    let finish = &chunks[chunks.len() - 2]["choices"][0];
    assert_eq!(finish["delta"], json!({}));
    let usage = &chunks[chunks.len() - 1]["usage"];
    let call_tokens = |name: &str, arguments: &str| prompt_tokens(name.len() + arguments.len());
    assert_eq!(
        usage["completion_tokens"],
        2 * call_tokens("get_weather", &weather_arguments(0)) + call_tokens("get_time", "{}")
    );
}

#[tokio::test]
async fn a_non_streamed_reply_carries_the_calls_in_its_message() {
    let mock = TestMock::start(MockConfig::default()).await;

    let response = chat_with_tools(
        &mock,
        &body("[[mock tool_calls=get_time,get_weather]]", false),
    )
    .send()
    .await
    .unwrap();

    assert_eq!(response.status(), 200);
    let completion: Value = response.json().await.unwrap();
    let choice = &completion["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    let calls = choice["message"]["tool_calls"].as_array().unwrap();
    let first_id = calls[0]["id"].as_str().unwrap();
    let second_id = calls[1]["id"].as_str().unwrap();
    assert_call_id(first_id);
    assert_call_id(second_id);
    assert_ne!(first_id, second_id);
    assert_eq!(
        choice["message"],
        json!({
            "role": "assistant",
            "content": null,
            "refusal": null,
            "tool_calls": [
                {"id": first_id, "type": "function",
                 "function": {"name": "get_time", "arguments": "{}"}},
                {"id": second_id, "type": "function",
                 "function": {"name": "get_weather", "arguments": weather_arguments(1)}},
            ],
        })
    );
    assert!(completion["usage"]["completion_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn tool_text_sends_the_text_before_the_calls() {
    let mock = TestMock::start(MockConfig::default().with_tokens(3)).await;
    let text = "[[mock tool_calls=get_time tool_text=1]]";

    let sse = read_sse(
        chat_with_tools(&mock, &body(text, true))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let plain: Value = chat_with_tools(&mock, &body(text, false))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    assert_eq!(sse.text(), reply_text(3));
    let chunks = sse.json_events();
    let first_call = chunks
        .iter()
        .position(|chunk| chunk["choices"][0]["delta"]["tool_calls"].is_array())
        .unwrap();
    assert_eq!(first_call, 1 + 3, "after the role chunk and the text");
    assert_eq!(streamed_calls(&sse).len(), 1);
    assert_eq!(finish_reason(&sse), "tool_calls");
    let message = &plain["choices"][0]["message"];
    assert_eq!(message["content"], reply_text(3));
    assert_eq!(message["tool_calls"][0]["function"]["name"], "get_time");
    assert_eq!(plain["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn headers_ask_for_calls_too() {
    let mock = TestMock::start(MockConfig::default()).await;

    let response = chat_with_tools(&mock, &body("no directive here", true))
        .header("x-mock-tool-calls", "get_weather, get_time")
        .send()
        .await
        .unwrap();

    let calls = streamed_calls(&read_sse(response).await);
    let names: Vec<&str> = calls.iter().map(|(_, name, _)| name.as_str()).collect();
    assert_eq!(names, ["get_weather", "get_time"]);
}

#[tokio::test]
async fn the_follow_up_with_tool_results_gets_text_and_keeps_the_other_knobs() {
    let mock = TestMock::start(MockConfig::default()).await;
    let user = "Weather? [[mock tool_calls=get_weather tokens=2]]";
    let arguments = weather_arguments(0);
    let follow_up = |stream: bool| {
        json!({
            "model": "Hermes-4-70B",
            "stream": stream,
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": user}]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_0badf00d", "type": "function",
                     "function": {"name": "get_weather", "arguments": arguments}},
                ]},
                {"role": "tool", "tool_call_id": "call_0badf00d", "content": "sunny"},
            ],
        })
    };

    let sse = read_sse(
        chat_with_tools(&mock, &follow_up(true))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let plain = chat_with_tools(&mock, &follow_up(false))
        .header("x-mock-tool-calls", "get_time")
        .send()
        .await
        .unwrap();

    assert!(streamed_calls(&sse).is_empty());
    assert_eq!(sse.text(), reply_text(2), "`tokens=2` still applies");
    assert_eq!(finish_reason(&sse), "stop");
    assert_eq!(plain.status(), 200);
    let completion: Value = plain.json().await.unwrap();
    let message = &completion["choices"][0]["message"];
    assert_eq!(message["content"], reply_text(2));
    assert!(
        message.get("tool_calls").is_none(),
        "a header asks for calls in vain too"
    );
    let prompt_chars = "Be brief.".len() + user.len() + arguments.len() + "sunny".len();
    assert_eq!(
        completion["usage"]["prompt_tokens"],
        prompt_tokens(prompt_chars),
        "tool-call arguments and tool results count as prompt"
    );
}

#[tokio::test]
async fn a_call_to_a_tool_the_request_does_not_offer_is_a_400() {
    let mock = TestMock::start(MockConfig::default()).await;
    let cases = [
        (
            chat_with_tools(&mock, &body("[[mock tool_calls=get_wether]]", true)),
            "get_wether",
            "`get_weather`, `get_time`",
        ),
        (
            mock.chat(&body("[[mock tool_calls=get_weather]]", false)),
            "get_weather",
            "they offer: none",
        ),
    ];

    for (request, name, offered) in cases {
        let response = request.send().await.unwrap();

        assert_eq!(response.status(), 400, "case {name}");
        let error = error_of(response).await;
        assert_eq!(error["code"], "unknown_tool", "case {name}");
        assert_eq!(error["param"], "tools", "case {name}");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains(&format!("`{name}`")),
            "case {name}: {error}"
        );
        assert!(
            error["message"].as_str().unwrap().contains(offered),
            "case {name}: {error}"
        );
    }
}

#[tokio::test]
async fn max_tokens_below_the_text_cuts_the_reply_before_its_calls() {
    let mock = TestMock::start(MockConfig::default().with_tokens(5)).await;
    let mut request = body("[[mock tool_calls=get_time tool_text=1]]", true);
    request["max_tokens"] = json!(2);

    let sse = read_sse(chat_with_tools(&mock, &request).send().await.unwrap()).await;

    assert_eq!(sse.text(), reply_text(2));
    assert!(streamed_calls(&sse).is_empty());
    assert_eq!(finish_reason(&sse), "length");
}

#[tokio::test]
async fn inter_token_delay_separates_the_tool_call_chunks() {
    let mock = TestMock::start(MockConfig::default()).await;

    let response = chat_with_tools(
        &mock,
        &body("[[mock tool_calls=get_time inter_token_ms=30]]", true),
    )
    .send()
    .await
    .unwrap();
    let sse = read_sse(response).await;

    let reads: Vec<usize> = sse
        .events
        .iter()
        .filter(|event| {
            event
                .json()
                .is_some_and(|chunk| chunk["choices"][0]["delta"]["tool_calls"].is_array())
        })
        .map(|event| event.read)
        .collect();
    assert_eq!(reads.len(), 4);
    assert!(
        reads.windows(2).all(|pair| pair[0] < pair[1]),
        "each chunk arrives in a later read: {reads:?}"
    );
}
