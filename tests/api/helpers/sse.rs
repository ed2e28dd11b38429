//! The one event-stream reader: [`Reader`] reads a response event by event (each [`Sse`]
//! keeps its `id:`), and [`read_chat`] reads a chat answer to its end as a [`ChatReply`]
//! (event payloads with their arrival times, or the JSON body of an answer that is not a
//! stream).

use std::{pin::Pin, time::Duration};

use eventsource_stream::Eventsource;
use futures_util::{Stream, StreamExt};
use reqwest::{StatusCode, header::HeaderMap};
use serde_json::Value;
use tokio::time::Instant;

use super::into_parts;

/// How long [`Reader::take`] waits for each event before failing the test.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// One SSE event: its `id:` and `data:`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sse {
    pub id: String,
    pub data: String,
}

impl Sse {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap()
    }

    /// The AI SDK chunk's `type`, `[DONE]`, or `(openai)` for an OpenAI chunk.
    pub fn kind(&self) -> String {
        if self.data == "[DONE]" {
            return "[DONE]".to_owned();
        }
        self.json()["type"]
            .as_str()
            .unwrap_or("(openai)")
            .to_owned()
    }

    /// The `<ms>-<seq>` id's sequence number.
    pub fn seq(&self) -> u64 {
        self.id.rsplit('-').next().unwrap().parse().unwrap()
    }
}

/// An open event stream, read event by event. A malformed event ends it.
pub struct Reader {
    pub status: StatusCode,
    headers: HeaderMap,
    events: Pin<Box<dyn Stream<Item = Option<Sse>> + Send>>,
}

impl Reader {
    pub fn new(resp: reqwest::Response) -> Self {
        let status = resp.status();
        let headers = resp.headers().clone();
        let events = resp.bytes_stream().eventsource().map(|e| {
            e.ok().map(|e| Sse {
                id: e.id,
                data: e.data,
            })
        });
        Self {
            status,
            headers,
            events: Box::pin(events),
        }
    }

    /// The header's value, `""` when it is missing.
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", |v| v.to_str().unwrap())
    }

    /// The next `n` events (fewer if the stream ends), each within 10 s.
    pub async fn take(&mut self, n: usize) -> Vec<Sse> {
        let mut out = Vec::new();
        while out.len() < n {
            match tokio::time::timeout(EVENT_TIMEOUT, self.events.next()).await {
                Ok(Some(Some(event))) => out.push(event),
                Ok(_) => break,
                Err(_) => panic!("no event within 10 s"),
            }
        }
        out
    }

    /// Every event up to the end of the stream, each within 10 s.
    pub async fn rest(&mut self) -> Vec<Sse> {
        self.take(usize::MAX).await
    }

    /// Every event up to the end of the stream, however long it takes, with the time each
    /// arrived.
    async fn read_to_end(mut self) -> (Vec<Sse>, Vec<Instant>) {
        let (mut events, mut arrivals) = (Vec::new(), Vec::new());
        while let Some(Some(event)) = self.events.next().await {
            arrivals.push(Instant::now());
            events.push(event);
        }
        (events, arrivals)
    }
}

/// One chat request's answer: the events with their arrival times, or a JSON body.
pub struct ChatReply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The events in order (`[DONE]` included).
    pub events: Vec<Sse>,
    pub arrivals: Vec<Instant>,
    /// The body, for answers that are not event streams.
    pub json: Value,
}

impl ChatReply {
    /// The header's value; fails the test when it is missing.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no `{name}` header"))
    }

    /// The chunks (every event but `[DONE]` and error events), parsed.
    pub fn chunks(&self) -> Vec<Value> {
        self.events
            .iter()
            .filter(|e| e.data != "[DONE]")
            .map(Sse::json)
            .filter(|v| v.get("error").is_none())
            .collect()
    }

    /// The streamed text, concatenated.
    pub fn text(&self) -> String {
        self.chunks()
            .iter()
            .filter_map(|c| {
                c["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect()
    }

    /// The error event, if the stream ended with one.
    pub fn error_event(&self) -> Option<Value> {
        self.events
            .iter()
            .filter(|e| e.data != "[DONE]")
            .map(Sse::json)
            .find(|v| v.get("error").is_some())
    }

    /// The last event's `data:` (`[DONE]` for a stream that ended well).
    pub fn last_data(&self) -> Option<&str> {
        self.events.last().map(|e| e.data.as_str())
    }
}

/// Reads a chat answer to its end: an event stream through [`Reader`], anything else as JSON.
pub async fn read_chat(resp: reqwest::Response) -> ChatReply {
    let status = resp.status();
    let headers = resp.headers().clone();
    let is_sse = headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/event-stream"));
    if !is_sse {
        let (_, json) = into_parts(resp).await;
        return ChatReply {
            status,
            headers,
            events: Vec::new(),
            arrivals: Vec::new(),
            json,
        };
    }
    let (events, arrivals) = Reader::new(resp).read_to_end().await;
    ChatReply {
        status,
        headers,
        events,
        arrivals,
        json: Value::Null,
    }
}

/// The concatenated `text-delta`s of an AI SDK UI message stream.
pub fn text_of(events: &[Sse]) -> String {
    events
        .iter()
        .filter(|e| e.kind() == "text-delta")
        .map(|e| e.json()["delta"].as_str().unwrap().to_owned())
        .collect()
}
