//! The shape of replies: streamed chunks, usage, `max_tokens`, non-streamed JSON, routes.

use mock_upstream::{DEFAULT_TOKENS, MODELS, MockConfig, prompt_tokens, reply_text};
use serde_json::{Value, json};

use crate::helpers::{TestMock, plain_body, read_sse, stream_body};

#[tokio::test]
async fn a_stream_is_role_then_tokens_then_stop_then_done() {
    let mock = TestMock::start(MockConfig::default()).await;

    let response = mock.chat(&stream_body("hello")).send().await.unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream",
        "content type"
    );
    let sse = read_sse(response).await;
    assert!(sse.error.is_none(), "{:?}", sse.error);
    let (done, chunks) = sse.events.split_last().unwrap();
    assert!(done.is_done(), "last event must be [DONE]");
    let chunks: Vec<Value> = chunks.iter().map(|event| event.json().unwrap()).collect();
    assert_eq!(chunks.len(), 1 + DEFAULT_TOKENS + 1);

    let id = chunks[0]["id"].as_str().unwrap();
    assert!(id.starts_with("chatcmpl-"));
    for chunk in &chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["id"], id);
        assert_eq!(chunk["model"], "Hermes-4-70B");
        assert!(chunk["created"].is_u64());
        assert_eq!(chunk["choices"][0]["index"], 0);
        assert!(
            chunk.get("usage").is_none(),
            "no usage unless asked: {chunk}"
        );
    }
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    for chunk in &chunks[..chunks.len() - 1] {
        assert!(chunk["choices"][0]["finish_reason"].is_null());
    }
    let finish = &chunks[chunks.len() - 1]["choices"][0];
    assert_eq!(finish["delta"], json!({}));
    assert_eq!(finish["finish_reason"], "stop");
    assert_eq!(sse.text(), reply_text(DEFAULT_TOKENS));
}

#[tokio::test]
async fn the_usage_chunk_comes_only_when_include_usage_is_true() {
    let mock = TestMock::start(MockConfig::default().with_tokens(3)).await;
    let prompt = "x".repeat(40);
    let mut body = stream_body(&prompt);
    body["stream_options"] = json!({"include_usage": true});

    let sse = read_sse(mock.chat(&body).send().await.unwrap()).await;

    let chunks = sse.json_events();
    let (usage_chunk, earlier) = chunks.split_last().unwrap();
    for chunk in earlier {
        assert!(
            chunk["usage"].is_null() && chunk.get("usage").is_some(),
            "{chunk}"
        );
    }
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(
        usage_chunk["usage"],
        json!({"prompt_tokens": prompt_tokens(40), "completion_tokens": 3, "total_tokens": prompt_tokens(40) + 3})
    );
    assert!(sse.events.last().unwrap().is_done());

    body["stream_options"] = json!({"include_usage": false});
    let sse = read_sse(mock.chat(&body).send().await.unwrap()).await;
    assert!(
        sse.json_events()
            .iter()
            .all(|chunk| chunk.get("usage").is_none())
    );
}

#[tokio::test]
async fn max_tokens_below_the_reply_length_finishes_with_length() {
    let mock = TestMock::start(MockConfig::default().with_tokens(10)).await;
    let mut body = stream_body("hi");
    body["max_tokens"] = json!(4);

    let sse = read_sse(mock.chat(&body).send().await.unwrap()).await;

    assert_eq!(sse.text(), reply_text(4));
    let chunks = sse.json_events();
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "length"
    );
}

#[tokio::test]
async fn a_non_streamed_reply_is_a_chat_completion_with_usage() {
    let mock = TestMock::start(MockConfig::default().with_tokens(5)).await;
    let body = json!({
        "model": "Hermes-4-405B",
        "messages": [
            {"role": "system", "content": "abcd"},
            {"role": "user", "content": [{"type": "text", "text": "efgh"},
                {"type": "image_url", "image_url": {"url": "https://example.invalid/x.png"}}]},
        ],
        "temperature": 0.7,
        "stream": false,
    });

    let response = mock.chat(&body).send().await.unwrap();

    assert_eq!(response.status(), 200);
    let completion: Value = response.json().await.unwrap();
    assert_eq!(completion["object"], "chat.completion");
    assert_eq!(completion["model"], "Hermes-4-405B");
    assert!(completion["id"].as_str().unwrap().starts_with("chatcmpl-"));
    let choice = &completion["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["content"], reply_text(5));
    assert_eq!(choice["finish_reason"], "stop");
    assert_eq!(
        completion["usage"],
        json!({"prompt_tokens": 2, "completion_tokens": 5, "total_tokens": 7})
    );
}

#[tokio::test]
async fn both_base_urls_serve_chat_completions() {
    let mock = TestMock::start(MockConfig::default().with_tokens(2)).await;
    let root = format!("http://{}", mock.mock.addr());

    for path in ["/v1/chat/completions", "/chat/completions"] {
        let response = mock
            .client
            .post(format!("{root}{path}"))
            .json(&plain_body("hi"))
            .send()
            .await
            .unwrap();

        assert_eq!(response.status(), 200, "path {path}");
        let completion: Value = response.json().await.unwrap();
        assert_eq!(
            completion["choices"][0]["message"]["content"],
            reply_text(2)
        );
    }
}

#[tokio::test]
async fn models_lists_the_hermes_models() {
    let mock = TestMock::start(MockConfig::default()).await;

    let response = mock
        .client
        .get(format!("{}/models", mock.mock.base_url()))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let list: Value = response.json().await.unwrap();
    assert_eq!(list["object"], "list");
    let ids: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|model| model["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, MODELS);
}
