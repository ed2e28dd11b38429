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
    protocol::{ai_sdk, encoder::Encoder, openai},
};

use super::{TurnRequest, outlet::write_event};

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
    if !request.stream {
        let mut response = axum::Json(openai::completion(reply)).into_response();
        set_turn_headers(&mut response, thread, &reply.id);
        return response;
    }
    let mut events: Vec<String> = Vec::new();
    Encoder::new(request.format, request.include_usage).replay(reply, &mut events);
    let mut body = BytesMut::new();
    for event in &events {
        write_event(&mut body, None, event.as_bytes());
    }
    event_stream_of(thread, &reply.id, request.format, Body::from(body.freeze()))
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
