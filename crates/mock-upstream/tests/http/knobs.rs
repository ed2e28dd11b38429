//! Every knob, set per instance, by header or by message directive.

use std::time::{Duration, Instant};

use mock_upstream::{MockConfig, reply_text};
use serde_json::{Value, json};

use crate::helpers::{TestMock, error_of, plain_body, read_sse, stream_body};

struct StatusCase {
    status: u16,
    retry_after_override: Option<&'static str>,
    code: &'static str,
    retry_after: Option<&'static str>,
}

#[tokio::test]
async fn an_injected_status_answers_an_openai_error_and_429_carries_retry_after() {
    let case = |status, retry_after_override, code, retry_after| StatusCase {
        status,
        retry_after_override,
        code,
        retry_after,
    };
    let cases = [
        case(429, None, "rate_limit_exceeded", Some("1")),
        case(429, Some("7"), "rate_limit_exceeded", Some("7")),
        case(503, None, "service_unavailable", Some("1")),
        case(500, None, "mock_status", None),
        case(400, None, "mock_status", None),
    ];
    let mock = TestMock::start(MockConfig::default()).await;

    for case in cases {
        let name = format!("case {} {:?}", case.status, case.retry_after_override);
        let mut request = mock
            .chat(&stream_body("hi"))
            .header("x-mock-status", case.status.to_string());
        if let Some(secs) = case.retry_after_override {
            request = request.header("x-mock-retry-after-secs", secs);
        }

        let response = request.send().await.unwrap();

        assert_eq!(response.status(), case.status, "{name}");
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|value| value.to_str().unwrap().to_owned());
        assert_eq!(retry_after.as_deref(), case.retry_after, "{name}");
        let error = error_of(response).await;
        assert_eq!(error["code"], case.code, "{name}");
    }
}

#[tokio::test]
async fn a_hanging_mock_never_answers_until_the_client_gives_up() {
    let mock = TestMock::start(MockConfig::default().with_hang()).await;

    let result = mock
        .chat(&stream_body("hi"))
        .timeout(Duration::from_millis(300))
        .send()
        .await;

    let error = result.unwrap_err();
    assert!(error.is_timeout(), "{error:?}");
    assert_eq!(mock.mock.calls(), 1);
}

#[tokio::test]
async fn dropping_the_mock_releases_a_hanging_request_with_503() {
    let mock = TestMock::start(MockConfig::default()).await;
    let request = mock
        .chat(&stream_body("hi"))
        .header("x-mock-hang", "1")
        .send();
    let pending = tokio::spawn(request);
    while mock.mock.calls() == 0 {
        tokio::task::yield_now().await;
    }

    drop(mock.mock);

    let response = pending.await.unwrap().unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(error_of(response).await["code"], "mock_stopping");
}

#[tokio::test]
async fn cut_after_drops_the_connection_after_n_chunks_without_done() {
    let mock = TestMock::start(MockConfig {
        cut_after: Some(2),
        ..MockConfig::default()
    })
    .await;

    let sse = read_sse(mock.chat(&stream_body("hi")).send().await.unwrap()).await;

    assert!(sse.error.is_some(), "the client must see a broken body");
    assert_eq!(sse.content_chunks().len(), 2);
    assert!(!sse.has_done());
}

#[tokio::test]
async fn error_after_sends_an_error_event_and_ends_without_done() {
    let mock = TestMock::start(MockConfig::default()).await;

    let response = mock
        .chat(&stream_body("hi"))
        .header("x-mock-error-after", "3")
        .send()
        .await
        .unwrap();
    let sse = read_sse(response).await;

    assert!(
        sse.error.is_none(),
        "the stream ends cleanly: {:?}",
        sse.error
    );
    assert!(!sse.has_done());
    assert_eq!(sse.text(), reply_text(3));
    let last = sse.events.last().unwrap().json().unwrap();
    assert_eq!(last["error"]["type"], "server_error");
    assert_eq!(last["error"]["code"], "mock_error");
    assert!(last["error"]["message"].is_string());
}

#[tokio::test]
async fn garbage_after_sends_one_unparsable_event_then_carries_on() {
    let mock = TestMock::start(MockConfig::default().with_tokens(4)).await;

    let response = mock
        .chat(&stream_body("hi"))
        .header("x-mock-garbage-after", "1")
        .send()
        .await
        .unwrap();
    let sse = read_sse(response).await;

    let unparsable: Vec<usize> = sse
        .events
        .iter()
        .enumerate()
        .filter(|(_, event)| !event.is_done() && event.json().is_none())
        .map(|(index, _)| index)
        .collect();
    // Role chunk, one content chunk, then the garbage.
    assert_eq!(unparsable, [2]);
    assert_eq!(sse.text(), reply_text(4));
    assert!(sse.events.last().unwrap().is_done());
}

#[tokio::test]
async fn inter_token_delay_sends_each_content_chunk_separately() {
    let delay = Duration::from_millis(60);
    let mock = TestMock::start(MockConfig::default().with_tokens(3).with_inter_token(delay)).await;
    let started = Instant::now();

    let sse = read_sse(mock.chat(&stream_body("hi")).send().await.unwrap()).await;

    let reads: Vec<usize> = sse
        .content_chunks()
        .iter()
        .map(|event| event.read)
        .collect();
    assert_eq!(reads.len(), 3);
    assert!(
        reads.windows(2).all(|pair| pair[0] < pair[1]),
        "each token arrives in a later read: {reads:?}"
    );
    // A lower bound only: the two gaps cannot be shorter than the configured delay.
    assert!(started.elapsed() >= 2 * delay);
    assert_eq!(sse.text(), reply_text(3));
}

#[tokio::test]
async fn ttft_delays_the_response_head_which_comes_with_the_first_token() {
    let ttft = Duration::from_millis(150);
    let mock = TestMock::start(MockConfig::default().with_tokens(3)).await;
    let started = Instant::now();

    let response = mock
        .chat(&stream_body("hi"))
        .header("x-mock-ttft-ms", "150")
        .header("x-mock-inter-token-ms", "100")
        .send()
        .await
        .unwrap();

    assert!(
        started.elapsed() >= ttft,
        "headers must wait for the first token"
    );
    let sse = read_sse(response).await;
    let first_read: Vec<Value> = sse
        .events
        .iter()
        .filter(|event| event.read == 1)
        .filter_map(|event| event.json())
        .collect();
    assert_eq!(first_read.len(), 2, "role chunk and first token together");
    assert_eq!(
        first_read[1]["choices"][0]["delta"]["content"],
        reply_text(1)
    );
}

#[tokio::test]
async fn a_directive_in_the_last_user_message_overrides_the_instance_config() {
    let mock = TestMock::start(MockConfig::default().with_tokens(9)).await;
    let body = json!({
        "model": "Hermes-4-70B",
        "stream": true,
        "messages": [
            {"role": "user", "content": "[[mock status=500]] old turn"},
            {"role": "assistant", "content": "[[mock status=500]]"},
            {"role": "user", "content": "Please answer.\n[[mock tokens=2 error_after=1]]\n"},
            {"role": "system", "content": "[[mock status=500]] after the user"},
        ],
    });

    let sse = read_sse(mock.chat(&body).send().await.unwrap()).await;

    assert_eq!(sse.text(), reply_text(1));
    let last = sse.events.last().unwrap().json().unwrap();
    assert_eq!(last["error"]["code"], "mock_error");
}

#[tokio::test]
async fn a_directive_reaches_a_non_streamed_reply_too() {
    let mock = TestMock::start(MockConfig::default()).await;

    let response = mock
        .chat(&plain_body("hi [[mock status=429 retry_after_secs=3]]"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "3");
}

#[tokio::test]
async fn headers_win_over_directives_and_directives_over_the_instance() {
    let mock = TestMock::start(MockConfig::default().with_tokens(9)).await;

    let by_directive = mock
        .chat(&plain_body("[[mock tokens=4]]"))
        .send()
        .await
        .unwrap();
    let by_header = mock
        .chat(&plain_body("[[mock tokens=4]]"))
        .header("x-mock-tokens", "2")
        .send()
        .await
        .unwrap();

    let content = |completion: Value| completion["choices"][0]["message"]["content"].clone();
    assert_eq!(content(by_directive.json().await.unwrap()), reply_text(4));
    assert_eq!(content(by_header.json().await.unwrap()), reply_text(2));
}

#[tokio::test]
async fn an_invalid_directive_or_header_is_a_400_naming_the_problem() {
    let mock = TestMock::start(MockConfig::default()).await;
    let cases = [
        (plain_body("[[mock tokenz=3]]"), None, "tokenz"),
        (plain_body("[[mock tokens=3"), None, "]]"),
        (
            plain_body("hi"),
            Some(("x-mock-cut-after", "soon")),
            "cut_after",
        ),
    ];

    for (body, header, mentioned) in cases {
        let mut request = mock.chat(&body);
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }

        let response = request.send().await.unwrap();

        assert_eq!(response.status(), 400, "case {mentioned}");
        let error = error_of(response).await;
        assert_eq!(error["code"], "invalid_mock_directive", "case {mentioned}");
        assert!(
            error["message"].as_str().unwrap().contains(mentioned),
            "case {mentioned}: {error}"
        );
    }
}

#[tokio::test]
async fn set_config_changes_the_following_replies() {
    let mock = TestMock::start(MockConfig::default().with_tokens(1)).await;

    mock.mock.set_config(MockConfig::default().with_status(503));
    let response = mock.chat(&plain_body("hi")).send().await.unwrap();

    assert_eq!(response.status(), 503);
}

#[tokio::test]
async fn a_non_streamed_reply_with_cut_after_breaks_mid_body() {
    let mock = TestMock::start(MockConfig::default()).await;

    let response = mock
        .chat(&plain_body("hi"))
        .header("x-mock-cut-after", "2")
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    assert!(response.bytes().await.is_err());
}

#[tokio::test]
async fn faults_hold_for_the_first_n_requests_of_a_message_only() {
    let mock = TestMock::start(MockConfig::default()).await;
    let body = stream_body("[[mock status=503 faults=2]] the same question");
    let other = stream_body("[[mock status=503 faults=2]] another question");

    let mut statuses = Vec::new();
    for body in [&body, &body, &other, &body] {
        statuses.push(mock.chat(body).send().await.unwrap().status().as_u16());
    }

    assert_eq!(statuses, [503, 503, 503, 200]);
}
