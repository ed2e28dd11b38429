//! Authentication, request validation, unknown routes and the call log.

use mock_upstream::MockConfig;
use serde_json::json;

use crate::helpers::{TestMock, error_of, plain_body};

#[tokio::test]
async fn a_configured_api_key_is_required_on_every_route() {
    let mock = TestMock::start(MockConfig::default().with_api_key("sk-test")).await;
    let models = format!("{}/models", mock.mock.base_url());
    let cases = [
        (None, 401),
        (Some("Bearer sk-wrong"), 401),
        (Some("Bearer sk-test"), 200),
    ];

    for (authorization, status) in cases {
        let mut chat = mock.chat(&plain_body("hi"));
        let mut list = mock.client.get(&models);
        if let Some(value) = authorization {
            chat = chat.header("authorization", value);
            list = list.header("authorization", value);
        }

        let chat = chat.send().await.unwrap();
        let list = list.send().await.unwrap();

        assert_eq!(chat.status(), status, "chat with {authorization:?}");
        assert_eq!(list.status(), status, "models with {authorization:?}");
        if status == 401 {
            assert_eq!(error_of(chat).await["code"], "invalid_api_key");
        }
    }
}

#[tokio::test]
async fn a_body_that_is_not_a_chat_request_is_a_400() {
    let mock = TestMock::start(MockConfig::default()).await;
    let url = format!("{}/chat/completions", mock.mock.base_url());
    let cases = [
        ("{not json", "invalid_json"),
        (r#"{"model":"Hermes-4-70B"}"#, "invalid_request"),
        (
            r#"{"model":"Hermes-4-70B","messages":[]}"#,
            "invalid_request",
        ),
        (
            r#"{"model":"Hermes-4-70B","messages":[{"content":"no role"}]}"#,
            "invalid_request",
        ),
    ];

    for (body, code) in cases {
        let response = mock
            .client
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();

        assert_eq!(response.status(), 400, "case {body}");
        assert_eq!(error_of(response).await["code"], code, "case {body}");
    }
}

#[tokio::test]
async fn an_unknown_route_is_a_404_with_the_error_body() {
    let mock = TestMock::start(MockConfig::default()).await;

    let response = mock
        .client
        .post(format!("{}/completions", mock.mock.base_url()))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 404);
    assert_eq!(error_of(response).await["code"], "unknown_url");
}

#[tokio::test]
async fn calls_and_requests_record_every_chat_request_until_reset() {
    let mock = TestMock::start(MockConfig::default().with_api_key("k")).await;
    let first = plain_body("first");
    let second = json!({"model": "Hermes-4-70B", "messages": [{"role": "user", "content": "second"}], "stream": true});

    let accepted = mock.chat(&first).bearer_auth("k").send().await.unwrap();
    let rejected = mock.chat(&second).send().await.unwrap();

    assert_eq!(
        (accepted.status().as_u16(), rejected.status().as_u16()),
        (200, 401)
    );
    assert_eq!(mock.mock.calls(), 2);
    assert_eq!(mock.mock.requests(), [first, second]);

    mock.mock.reset();

    assert_eq!(mock.mock.calls(), 0);
    assert!(mock.mock.requests().is_empty());
}
