//! Request helpers and an SSE reader that keeps each event and the body read it arrived in.

use mock_upstream::{MockConfig, MockUpstream};
use reqwest::{RequestBuilder, Response};
use serde_json::{Value, json};

/// A started mock and a client pointed at it.
pub struct TestMock {
    pub mock: MockUpstream,
    pub client: reqwest::Client,
}

impl TestMock {
    pub async fn start(config: MockConfig) -> Self {
        Self {
            mock: MockUpstream::start(config).await.unwrap(),
            client: reqwest::Client::new(),
        }
    }

    /// `POST {base_url}/chat/completions` with `body`, ready for extra headers.
    pub fn chat(&self, body: &Value) -> RequestBuilder {
        self.client
            .post(format!("{}/chat/completions", self.mock.base_url()))
            .json(body)
    }
}

/// A streaming request whose last user message is `text`.
pub fn stream_body(text: &str) -> Value {
    json!({
        "model": "Hermes-4-70B",
        "messages": [{"role": "user", "content": text}],
        "stream": true,
    })
}

/// A non-streaming request whose last user message is `text`.
pub fn plain_body(text: &str) -> Value {
    json!({
        "model": "Hermes-4-405B",
        "messages": [{"role": "user", "content": text}],
    })
}

/// One SSE event: its `data` and the index (from 1) of the body read that completed it.
#[derive(Debug)]
pub struct Event {
    pub data: String,
    pub read: usize,
}

impl Event {
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.data).ok()
    }

    pub fn is_done(&self) -> bool {
        self.data == "[DONE]"
    }
}

/// A whole SSE body: its events and how it ended.
#[derive(Debug)]
pub struct Sse {
    pub events: Vec<Event>,
    /// `Some` when reading the body failed (connection dropped, bad chunking).
    pub error: Option<reqwest::Error>,
}

impl Sse {
    /// Every event that parses as JSON, in order.
    pub fn json_events(&self) -> Vec<Value> {
        self.events.iter().filter_map(Event::json).collect()
    }

    /// The concatenated `delta.content` of all chunks.
    pub fn text(&self) -> String {
        self.json_events()
            .iter()
            .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str())
            .collect()
    }

    /// Chunks with non-empty `delta.content`.
    pub fn content_chunks(&self) -> Vec<&Event> {
        self.events
            .iter()
            .filter(|event| {
                event.json().is_some_and(|chunk| {
                    chunk["choices"][0]["delta"]["content"]
                        .as_str()
                        .is_some_and(|content| !content.is_empty())
                })
            })
            .collect()
    }

    pub fn has_done(&self) -> bool {
        self.events.iter().any(Event::is_done)
    }
}

/// Reads `response` to its end, splitting on blank lines and joining `data:` lines per event.
pub async fn read_sse(mut response: Response) -> Sse {
    let mut pending: Vec<u8> = Vec::new();
    let mut events = Vec::new();
    let mut reads = 0;
    let error = loop {
        match response.chunk().await {
            Ok(Some(bytes)) => {
                reads += 1;
                pending.extend_from_slice(&bytes);
                while let Some(end) = pending.windows(2).position(|pair| pair == b"\n\n") {
                    let raw: Vec<u8> = pending.drain(..end + 2).collect();
                    let raw = String::from_utf8(raw).unwrap();
                    let data: Vec<&str> = raw
                        .lines()
                        .filter_map(|line| line.strip_prefix("data:"))
                        .map(|data| data.strip_prefix(' ').unwrap_or(data))
                        .collect();
                    events.push(Event {
                        data: data.join("\n"),
                        read: reads,
                    });
                }
            }
            Ok(None) => {
                assert!(
                    pending.is_empty(),
                    "body ended inside an event: {pending:?}"
                );
                break None;
            }
            Err(error) => break Some(error),
        }
    };
    Sse { events, error }
}

/// The error body's `error` object, asserting the OpenAI shape.
pub async fn error_of(response: Response) -> Value {
    let body: Value = response.json().await.unwrap();
    let error = &body["error"];
    for field in ["message", "type", "code"] {
        assert!(error[field].is_string(), "error.{field} missing in {body}");
    }
    error.clone()
}
