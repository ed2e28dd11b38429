//! The HTTP responses of a turn: the event stream (live, replayed or resumed) and a stored
//! reply answered again.

use std::convert::Infallible;

use axum::{
    body::{Body, Bytes},
    http::{HeaderName, HeaderValue, header},
    response::{IntoResponse, Response},
};
use bytes::BytesMut;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::{
    domain::{ChatMessage, MessageId, ReplyFormat, ThreadId},
    http::headers::{ACCEL_BUFFERING, MESSAGE_ID, THREAD_ID},
    protocol::{
        ai_sdk,
        encoder::Encoder,
        openai,
        responses::{self, ResponseId},
    },
};

use super::{
    TurnRequest,
    outlet::{write_event, write_typed_event},
};

/// An event-stream response whose body is the frames sent on `rx`: `text/event-stream`, no
/// caching, no proxy buffering, the turn's ids in headers and, for the AI SDK, its protocol
/// header.
pub(super) fn event_stream(
    thread: &ThreadId,
    reply_id: &MessageId,
    format: ReplyFormat,
    rx: mpsc::Receiver<Bytes>,
) -> Response {
    let frames = ReceiverStream::new(rx).map(Ok::<_, Infallible>);
    event_stream_of(thread, reply_id, format, Body::from_stream(frames))
}

fn event_stream_of(
    thread: &ThreadId,
    reply_id: &MessageId,
    format: ReplyFormat,
    body: Body,
) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(ACCEL_BUFFERING, HeaderValue::from_static("no"));
    if format == ReplyFormat::Ui {
        let (name, value) = ai_sdk::STREAM_HEADER;
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    set_turn_headers(&mut response, thread, reply_id);
    response
}

/// A stored reply, answered again in the format the request asked for.
pub(super) fn replay(thread: &ThreadId, reply: &ChatMessage, request: &TurnRequest) -> Response {
    let response_id = || ResponseId {
        reply: reply.id.clone(),
        thread: thread.clone(),
    };
    if !request.stream {
        let body = match &request.response {
            Some(settings) => responses::object(
                &response_id(),
                settings,
                reply.model.as_deref().unwrap_or_default(),
                responses::started_at(reply),
                responses::Status::of(reply),
                Some(reply),
                None,
            ),
            None => openai::completion(reply),
        };
        let mut response = axum::Json(body).into_response();
        set_turn_headers(&mut response, thread, &reply.id);
        return response;
    }
    let mut encoder =
        Encoder::new(request.format, request.include_usage).continuing(request.continues());
    if let Some(settings) = &request.response {
        encoder = encoder.responding(
            response_id(),
            std::sync::Arc::clone(settings),
            reply.model.as_deref().unwrap_or_default(),
            responses::started_at(reply),
        );
    }
    let mut events: Vec<String> = Vec::new();
    encoder.replay(reply, &mut events);
    event_stream_of(
        thread,
        &reply.id,
        request.format,
        frames(request.format, &events),
    )
}

/// A Responses API event stream of events already made (a stored response replayed).
pub fn responses_stream<'a>(
    thread: &ThreadId,
    reply_id: &MessageId,
    events: impl Iterator<Item = &'a String>,
) -> Response {
    let events: Vec<String> = events.cloned().collect();
    event_stream_of(
        thread,
        reply_id,
        ReplyFormat::Responses,
        frames(ReplyFormat::Responses, &events),
    )
}

/// Events as one body of SSE frames (named by their type for the Responses API).
fn frames(format: ReplyFormat, events: &[String]) -> Body {
    let mut body = BytesMut::new();
    for event in events {
        if format == ReplyFormat::Responses {
            write_typed_event(&mut body, event.as_bytes());
        }
        write_event(&mut body, None, event.as_bytes());
    }
    Body::from(body.freeze())
}

pub(super) fn set_turn_headers(response: &mut Response, thread: &ThreadId, reply_id: &MessageId) {
    let headers = response.headers_mut();
    for (name, value) in [
        (THREAD_ID, thread.as_str()),
        (MESSAGE_ID, reply_id.as_str()),
    ] {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;

    use super::*;
    use crate::domain::Role;

    #[tokio::test]
    async fn an_event_stream_carries_the_turn_headers_and_frames_as_sent() {
        let (tx, rx) = mpsc::channel(2);
        let thread = ThreadId::parse("t1").unwrap();
        let reply = MessageId::parse("r1").unwrap();
        let response = event_stream(&thread, &reply, ReplyFormat::Ui, rx);
        let headers = response.headers();
        assert_eq!(headers[header::CONTENT_TYPE], "text/event-stream");
        assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
        assert_eq!(headers[ACCEL_BUFFERING], "no");
        assert_eq!(headers[THREAD_ID], "t1");
        assert_eq!(headers[MESSAGE_ID], "r1");
        assert_eq!(headers[ai_sdk::STREAM_HEADER.0], "v1");
        tx.send(Bytes::from_static(b"data: a\n\n")).await.unwrap();
        tx.send(Bytes::from_static(b"data: b\n\n")).await.unwrap();
        drop(tx);
        let body = to_bytes(response.into_body(), 1024).await.unwrap();
        assert_eq!(body, "data: a\n\ndata: b\n\n");
    }

    #[tokio::test]
    async fn a_stored_reply_is_replayed_whole_in_the_requested_format() {
        let thread = ThreadId::parse("t1").unwrap();
        let mut reply = ChatMessage::new(Role::Assistant, "Four.");
        reply.finish_reason = Some("stop".into());
        let body = serde_json::json!({ "messages": [{ "role": "user", "content": "2+2?" }] });
        let config = crate::config::Config::from_vars(
            [
                ("AUTH_SECRET", "a-test-secret-of-at-least-32-bytes!!"),
                ("REDIS_URL", "redis://127.0.0.1:1"),
                ("NOUS_API_KEY", "k"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        )
        .unwrap();
        let request = |stream: bool| {
            let mut body = body.clone();
            body["stream"] = stream.into();
            TurnRequest::parse(
                serde_json::from_value(body).unwrap(),
                None,
                super::super::Dialect::Native,
                &config,
            )
            .unwrap()
        };

        let streamed = replay(&thread, &reply, &request(true));
        assert_eq!(
            streamed.headers()[header::CONTENT_TYPE],
            "text/event-stream"
        );
        let body = to_bytes(streamed.into_body(), 1 << 16).await.unwrap();
        let body = std::str::from_utf8(&body).unwrap();
        assert!(body.starts_with("data: {"), "{body}");
        assert!(body.contains("\"content\":\"Four.\""), "{body}");
        assert!(body.ends_with("data: [DONE]\n\n"), "{body}");

        let whole = replay(&thread, &reply, &request(false));
        assert_eq!(whole.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(whole.headers()[MESSAGE_ID], reply.id.as_str());
        let body = to_bytes(whole.into_body(), 1 << 16).await.unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["choices"][0]["message"]["content"], "Four.");
    }
}
