//! The context window: a conversation longer than the model's window still gets an answer,
//! with the oldest whole turns left out (or, with `CONTEXT_SUMMARY=1`, a summary the model
//! wrote in the background in their place), and a clear 400 when it may not be cut.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code, eventually, random_user};

/// A window of 300 tokens: with `max_tokens: 32`, 268 for the prompt. At the default 3
/// characters per token, each 60-character message costs 24 tokens (20 + 4 of framing), a
/// turn 48; the prompt's fixed cost is 3 and the system message "Be brief." 7. So the
/// system message, the newest message (24) and 4 whole turns (192) fit: 226; 5 do not: 274.
const WINDOW: u32 = 300;

async fn app(summary: bool) -> TestApp {
    TestApp::spawn_with(|config| {
        config.chat.context_tokens = vec![
            ("Hermes-4-70B".to_owned(), WINDOW),
            ("Hermes-4-405B".to_owned(), WINDOW),
        ];
        config.chat.context_summary = summary;
    })
    .await
}

/// 60 characters, unique per position.
fn text(label: &str) -> String {
    format!("{label:-<60}")
}

/// The system message, `turns` user/assistant turns, and the newest user message.
fn conversation(turns: usize, oldest_extra: &str) -> Vec<Value> {
    let mut messages = vec![json!({ "role": "system", "content": "Be brief." })];
    for t in 0..turns {
        let mut user = text(&format!("user {t}"));
        if t == 0 && !oldest_extra.is_empty() {
            user = format!("{oldest_extra:-<60}");
        }
        messages.push(json!({ "role": "user", "content": user }));
        messages.push(json!({ "role": "assistant", "content": text(&format!("assistant {t}")) }));
    }
    messages.push(json!({ "role": "user", "content": text("newest") }));
    messages
}

fn contents(request: &Value) -> Vec<String> {
    request["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn a_conversation_longer_than_the_window_keeps_the_system_prompt_the_newest_message_and_the_turns_that_fit()
 {
    let app = app(false).await;
    let token = app.token_for(&random_user());
    let messages = conversation(8, "");
    let reply = app
        .chat(&token, json!({ "max_tokens": 32, "messages": messages }))
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(!reply.text().is_empty());
    assert_eq!(reply.header("x-context-dropped-messages"), "8");

    let sent = contents(&app.mock.requests().pop().unwrap());
    let want: Vec<String> = messages
        .iter()
        .enumerate()
        .filter(|&(i, _)| i == 0 || i >= 9)
        .map(|(_, m)| m["content"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(sent, want, "system, the 4 newest turns, the newest message");

    let thread = reply.header("x-thread-id").to_owned();
    let stored = app.messages(&token, &thread).await;
    assert_eq!(stored[1]["contextDroppedMessages"], 8);

    // A conversation that fits is sent whole and says nothing of cuts.
    let short = app
        .chat(
            &token,
            json!({ "max_tokens": 32, "messages": conversation(2, "") }),
        )
        .await;
    assert!(short.headers.get("x-context-dropped-messages").is_none());
    assert_eq!(contents(&app.mock.requests().pop().unwrap()).len(), 6);
}

#[tokio::test]
async fn a_conversation_that_may_not_be_cut_or_whose_newest_message_is_too_large_is_refused() {
    let app = app(false).await;
    let token = app.token_for(&random_user());
    let calls = app.mock.calls();
    for body in [
        json!({ "max_tokens": 32, "truncation": "disabled", "messages": conversation(8, "") }),
        json!({ "max_tokens": 32, "messages": [{ "role": "user", "content": "x".repeat(2000) }] }),
    ] {
        let reply = app.chat(&token, body).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.json);
        assert_eq!(error_code(&reply.json), "context_length_exceeded");
    }
    assert_eq!(app.mock.calls(), calls, "the model was not called");
    let bad = app
        .chat(
            &token,
            json!({ "truncation": "sometimes", "messages": conversation(0, "") }),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`truncation`")
    );
}

#[tokio::test]
async fn with_summaries_the_dropped_turns_come_back_as_a_summary_written_off_the_clients_path() {
    let app = app(true).await;
    let token = app.token_for(&random_user());
    // The oldest message slows the model down by 1.5 s, but only for a request that carries
    // it as its last user message: the summarising request does, the chat turn does not.
    let messages = conversation(8, "user 0 [[mock ttft_ms=1500]]");
    let asked = Instant::now();
    let reply = app
        .chat(&token, json!({ "max_tokens": 32, "messages": messages }))
        .await;
    let took = asked.elapsed();
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        took < Duration::from_millis(1200),
        "the turn waited for the summary: {took:?}"
    );
    assert_eq!(reply.header("x-context-dropped-messages"), "8");
    let thread = reply.header("x-thread-id").to_owned();

    let summary = eventually(Duration::from_secs(10), || async {
        let (_, page) = app.get(&format!("/api/threads/{thread}"), &token).await;
        page["thread"]["contextSummary"].as_str().map(str::to_owned)
    })
    .await
    .expect("a summary was written");
    let summarising = app
        .mock
        .requests()
        .into_iter()
        .find(|r| {
            r["messages"][0]["content"]
                .as_str()
                .unwrap_or_default()
                .contains("running summary")
        })
        .expect("the model was asked for a summary");
    let transcript = summarising["messages"][1]["content"].as_str().unwrap();
    assert!(
        transcript.contains("user 0"),
        "the oldest turns are summarised"
    );
    assert!(!transcript.contains("newest"), "the newest turn is not");

    // The next turn of the same conversation gets the summary in place of what it covers.
    let mut next = conversation(8, "user 0 [[mock ttft_ms=1500]]");
    next.pop();
    next.push(json!({ "role": "user", "content": text("newest") }));
    next.push(json!({ "role": "assistant", "content": reply.text() }));
    next.push(json!({ "role": "user", "content": text("after") }));
    let second = app
        .chat(
            &token,
            json!({ "threadId": thread, "max_tokens": 32, "messages": next }),
        )
        .await;
    assert_eq!(second.status, StatusCode::OK);
    let sent = app
        .mock
        .requests()
        .into_iter()
        .rev()
        .find(|r| contents(r).last().is_some_and(|c| c.starts_with("after")))
        .unwrap();
    let sent = contents(&sent);
    assert_eq!(sent[0], "Be brief.");
    assert!(
        sent[1].starts_with("Summary of the earlier part"),
        "{sent:?}"
    );
    assert!(sent[1].ends_with(&summary));
    assert!(!sent.iter().any(|c| c.starts_with("user 0")));
    assert_eq!(sent.last().unwrap(), &text("after"));
}
