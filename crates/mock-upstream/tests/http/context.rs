//! `context_tokens`: the context-length error, sized with the mock's own prompt estimate.

use mock_upstream::{MockConfig, prompt_tokens};
use serde_json::{Value, json};

use crate::helpers::{TestMock, error_of, plain_body, read_sse, stream_body};

/// 40 characters: 10 prompt tokens by the mock's estimate.
const PROMPT: &str = "abcdefghijklmnopqrstuvwxyzabcdefghijklmn";

fn with_max_tokens(mut body: Value, max_tokens: u64) -> Value {
    body["max_tokens"] = json!(max_tokens);
    body
}

#[tokio::test]
async fn a_prompt_over_the_context_is_a_400_context_length_exceeded() {
    assert_eq!(prompt_tokens(PROMPT.chars().count()), 10);
    let mock = TestMock::start(MockConfig::default().with_context_tokens(15)).await;

    for body in [plain_body(PROMPT), stream_body(PROMPT)] {
        let response = mock.chat(&with_max_tokens(body, 6)).send().await.unwrap();

        assert_eq!(response.status(), 400);
        let error = error_of(response).await;
        assert_eq!(
            error,
            json!({
                "message": "This model's maximum context length is 15 tokens. However, you \
                            requested 16 tokens (10 in the messages, 6 in the completion).",
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded",
            })
        );
    }
}

#[tokio::test]
async fn a_prompt_that_just_fits_gets_its_reply() {
    let mock = TestMock::start(MockConfig::default().with_context_tokens(15)).await;

    let plain = mock
        .chat(&with_max_tokens(plain_body(PROMPT), 5))
        .send()
        .await
        .unwrap();
    let streamed = mock
        .chat(&with_max_tokens(stream_body(PROMPT), 5))
        .send()
        .await
        .unwrap();

    assert_eq!(plain.status(), 200);
    let completion: Value = plain.json().await.unwrap();
    assert_eq!(completion["usage"]["prompt_tokens"], 10);
    assert_eq!(streamed.status(), 200);
    assert!(read_sse(streamed).await.has_done());
}

#[tokio::test]
async fn without_max_tokens_only_the_prompt_counts() {
    let mock = TestMock::start(MockConfig::default()).await;
    let send = |limit: &'static str| {
        mock.chat(&plain_body(PROMPT))
            .header("x-mock-context-tokens", limit)
            .send()
    };

    let fits = send("10").await.unwrap();
    let over = send("9").await.unwrap();

    assert_eq!(fits.status(), 200);
    assert_eq!(over.status(), 400);
    let error = error_of(over).await;
    assert_eq!(error["code"], "context_length_exceeded");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("(10 in the messages, 0 in the completion)"),
        "{error}"
    );
}

#[tokio::test]
async fn the_directive_sets_the_limit_and_its_own_text_counts_as_prompt() {
    let mock = TestMock::start(MockConfig::default()).await;
    // 25 characters of directive plus 15 of text: 10 tokens.
    let text = "[[mock context_tokens=9]]abcdefghijklmno";
    assert_eq!(prompt_tokens(text.chars().count()), 10);

    let response = mock.chat(&plain_body(text)).send().await.unwrap();

    assert_eq!(response.status(), 400);
    assert_eq!(error_of(response).await["code"], "context_length_exceeded");
}

#[tokio::test]
async fn a_header_can_lift_the_instance_limit() {
    let mock = TestMock::start(MockConfig::default().with_context_tokens(1)).await;

    let response = mock
        .chat(&plain_body(PROMPT))
        .header("x-mock-context-tokens", "none")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
}
