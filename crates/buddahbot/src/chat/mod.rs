//! The chat turn: store the user's message, call the model, stream its reply to the client
//! while keeping a copy (a tee), and store the reply before the stream's `[DONE]`.
//!
//! # Design
//! The reply is read by a task of its own that feeds the response through a channel, so a
//! client that goes away costs nothing: the task reads the reply to the end (bounded by
//! `CHAT_MAX_DURATION_MS`) and stores it. On Vercel the task is registered with the runtime's
//! `wait_until` ([`Background`]), which keeps the invocation alive until it is done.
//!
//! Nothing is sent before the model's first chunk has arrived, so every failure up to then
//! still gets a real status (429, 502, 504) and a client can retry; the turn is then marked
//! failed and a retry calls the model again without storing the user's message twice. Turns
//! are keyed by the user message id, which makes retries of a finished turn free: the stored
//! reply is replayed.

mod encoder;
mod outlet;
pub mod request;
pub mod resume;

use std::{convert::Infallible, future::Future, time::Duration};

use axum::{
    body::Body,
    http::{HeaderName, HeaderValue, header},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
};
use futures_util::StreamExt;
use tokio::{
    sync::{mpsc, oneshot},
    time::Instant,
};
use tokio_stream::wrappers::ReceiverStream;

use crate::{
    app::App,
    background::Background,
    domain::{
        ChatMessage, MessageId, MessagePart, ModelName, ReplyStatus, Role, ThreadId, Title, Usage,
        UserId, now,
    },
    error::ApiError,
    http::headers::{ACCEL_BUFFERING, MESSAGE_ID, THREAD_ID},
    protocol::{ai_sdk, openai},
    store::{LimitSet, NewTurn, RateDecision, StreamEnd, StreamEvent, TurnStart},
    upstream::{
        Chunk, ChunkStream, TimeoutKind, UpstreamError,
        wire::{ChatCompletionRequest, PromptMessage, StreamOptions, WireUsage},
    },
};
use encoder::{Encoder, Failure};
use outlet::{Generation, Outlet, Recorder};
pub use request::{ChatBody, Dialect, ReplyFormat, TurnRequest};

/// Interval of `: keep-alive` comments while the model is silent, so proxies keep the
/// connection open.
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(15);

/// Events buffered for a slow client before the reply task waits for it.
pub(crate) const CHANNEL_CAPACITY: usize = 64;

/// One turn in flight: who, where, and under which ids.
struct Turn {
    app: App,
    user: UserId,
    thread: ThreadId,
    user_message_id: MessageId,
    reply_id: MessageId,
    started: Instant,
    /// The ms part of the ids of the turn's events.
    stream_start_ms: i64,
    /// Keeps the thread's generation lease alive for as long as the turn exists.
    _lease: LeaseKeeper,
}

/// Renews a generation's lease every third of its length until dropped, so the thread stays
/// "generating" (and a second turn gets 409) exactly as long as this turn runs, and a crashed
/// process frees the thread within one lease.
struct LeaseKeeper(tokio::task::JoinHandle<()>);

impl LeaseKeeper {
    fn start(
        app: App,
        user: UserId,
        thread: ThreadId,
        user_message_id: MessageId,
        reply_id: MessageId,
    ) -> Self {
        let lease = app.config().chat.generation_lease;
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        Self(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(lease / 3);
            // The first tick is immediate; the lease was just taken.
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let until = now().as_millisecond().saturating_add(lease_ms);
                let until = jiff::Timestamp::from_millisecond(until).unwrap_or_else(|_| now());
                match app
                    .store()
                    .renew_turn(&user, &thread, &user_message_id, &reply_id, until)
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(err) => {
                        tracing::warn!(thread = %thread, error = %err, "could not renew the generation lease");
                    }
                }
            }
        }))
    }
}

impl Drop for LeaseKeeper {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Answers a chat request, counting it against `limits` as it begins. The response carries
/// the [`RateDecision`] in its extensions, for the guard to write the `x-ratelimit-*` headers.
///
/// # Errors
/// - [`ApiError::RateLimited`] over a limit (nothing is stored, the model is not called);
/// - [`ApiError::ThreadNotFound`] for a `threadId` the caller does not own;
/// - [`ApiError::GenerationInProgress`] while another attempt at the same turn runs;
/// - [`ApiError::Upstream`] when the model fails before its first chunk (the user's message
///   stays stored);
/// - [`ApiError::Store`] when Redis fails.
pub async fn run(
    app: &App,
    user: UserId,
    request: TurnRequest,
    limits: &LimitSet,
    background: Background,
) -> Result<Response, ApiError> {
    let (mut response, decision) = answer(app, user, request, limits, background).await?;
    response.extensions_mut().insert(decision);
    Ok(response)
}

/// The turn itself; the caller attaches the rate decision.
async fn answer(
    app: &App,
    user: UserId,
    request: TurnRequest,
    limits: &LimitSet,
    background: Background,
) -> Result<(Response, RateDecision), ApiError> {
    let config = app.config();
    let (thread, title) = match (&request.thread_id, request.format) {
        (Some(id), ReplyFormat::OpenAi) => (id.clone(), None),
        // An AI SDK chat id names a thread that is created on first use.
        (Some(id), ReplyFormat::Ui) => (
            id.clone(),
            Some(Title::from_message(&request.first_user_text())),
        ),
        (None, _) => (
            ThreadId::new(),
            Some(Title::from_message(&request.first_user_text())),
        ),
    };
    let mut user_message = ChatMessage::new(Role::User, request.user_text().into_owned());
    user_message.id = request.user_message_id(&thread);
    user_message.parts.clone_from(&request.user_parts);
    let reply_id = MessageId::new();
    let lease = config.chat.generation_lease;
    let (start, decision) = app
        .store()
        .begin_turn(
            &user,
            NewTurn {
                thread: &thread,
                create_with_title: title.as_ref(),
                user_message: &user_message,
                reply_id: &reply_id,
                lease,
                format: request.stream.then_some(request.format),
                regenerate: request.regenerate,
            },
            limits,
        )
        .await?;
    let stream_start_ms = match start {
        TurnStart::Proceed {
            stream_start_ms, ..
        } => stream_start_ms,
        TurnStart::RateLimited => return Err(ApiError::RateLimited(decision)),
        TurnStart::ThreadNotFound => return Err(ApiError::ThreadNotFound),
        TurnStart::InProgress { reply_id } | TurnStart::Busy { reply_id } => {
            return Err(ApiError::GenerationInProgress { reply_id });
        }
        TurnStart::Answered(reply) => return Ok((replay(&thread, &reply, &request), decision)),
        TurnStart::NotLatest => return Err(ApiError::NotLatestReply),
    };

    let lease = LeaseKeeper::start(
        app.clone(),
        user.clone(),
        thread.clone(),
        user_message.id.clone(),
        reply_id.clone(),
    );
    let turn = Turn {
        app: app.clone(),
        user,
        thread,
        user_message_id: user_message.id,
        reply_id,
        started: Instant::now(),
        stream_start_ms,
        _lease: lease,
    };
    let prompt = with_system_prompt(request.prompt.clone(), config.chat.system_prompt.as_deref());
    let response = if request.stream {
        turn.stream(&request, &prompt, background).await?
    } else {
        turn.complete(&request, &prompt).await?
    };
    Ok((response, decision))
}

/// The prompt with `SYSTEM_PROMPT` in front, unless the client sent a system message.
fn with_system_prompt(mut prompt: Vec<PromptMessage>, system: Option<&str>) -> Vec<PromptMessage> {
    if let Some(system) = system
        && !prompt.iter().any(|m| m.role == Role::System)
    {
        prompt.insert(
            0,
            PromptMessage {
                role: Role::System,
                content: system.to_owned().into(),
            },
        );
    }
    prompt
}

fn upstream_request<'a>(
    model: &'a ModelName,
    prompt: &'a [PromptMessage],
    request: &TurnRequest,
    stream: bool,
) -> ChatCompletionRequest<'a> {
    ChatCompletionRequest {
        model: model.as_str(),
        messages: prompt,
        temperature: request.temperature.map(|t| t.get()),
        max_tokens: request.max_tokens.map(|m| m.get()),
        stream,
        // Always ask for usage: it is stored with the reply whatever the client wants.
        stream_options: stream.then_some(StreamOptions {
            include_usage: true,
        }),
    }
}

/// Calls `attempt` with the requested model and, when that fails in a way another model
/// could help with and `FALLBACK_MODEL` is set, once more with the fallback.
async fn with_fallback<T, F, Fut>(
    app: &App,
    requested: &ModelName,
    attempt: F,
) -> Result<(T, ModelName), UpstreamError>
where
    F: Fn(ModelName) -> Fut,
    Fut: Future<Output = Result<T, UpstreamError>>,
{
    match attempt(requested.clone()).await {
        Ok(value) => Ok((value, requested.clone())),
        Err(err) => {
            let fallback = app.config().upstream.fallback_model.as_deref();
            match fallback {
                Some(name) if err.is_transient() && name != requested.as_str() => {
                    tracing::warn!(model = %requested, fallback = name, error = %err, "trying the fallback model");
                    let fallback = ModelName::configured(name);
                    attempt(fallback.clone()).await.map(|v| (v, fallback))
                }
                _ => Err(err),
            }
        }
    }
}

impl Turn {
    async fn stream(
        self,
        request: &TurnRequest,
        prompt: &[PromptMessage],
        background: Background,
    ) -> Result<Response, ApiError> {
        let upstream = self.app.upstream();
        let (streaming, model) = self
            .call_model(request, |model| async move {
                upstream
                    .stream(&upstream_request(&model, prompt, request, true))
                    .await
            })
            .await?;
        let ttft = self.started.elapsed();

        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let mut reply = ReplyBuilder::new(model, ttft, request.format);
        let mut encoder = Encoder::new(request.format, request.include_usage);
        let mut outlet = Outlet::new(tx, self.stream_start_ms);
        reply.add(&streaming.first);
        // The first events are queued before the response leaves, so the head goes out with
        // them. They are few (the channel holds far more).
        let first = encoder.open(&self.reply_id).into_iter();
        for event in first.chain(encoder.chunk(streaming.first)) {
            outlet.queue(event);
        }
        let (stop, stopped) = oneshot::channel();
        let recorder = Recorder::start(
            Generation {
                app: self.app.clone(),
                user: self.user.clone(),
                thread: self.thread.clone(),
                reply_id: self.reply_id.clone(),
            },
            &outlet,
            stop,
        );
        let response = sse_response(&self.thread, &self.reply_id, request.format, rx);
        let stream = Streaming {
            rest: streaming.rest,
            reply,
            encoder,
            outlet,
            recorder,
            stopped,
        };
        background.spawn(self.drive(stream));
        Ok(response)
    }

    /// Reads the rest of the reply, forwarding each chunk while the client listens, until it
    /// ends, breaks off or is stopped; then stores the reply together with the stream's last
    /// events, and sends those (`[DONE]` or an error event) last.
    async fn drive(self, stream: Streaming) {
        let Streaming {
            mut rest,
            mut reply,
            mut encoder,
            mut outlet,
            recorder,
            mut stopped,
        } = stream;
        let deadline = self.started + self.app.config().chat.max_duration;
        let mut stop_armed = true;
        let outcome = loop {
            tokio::select! {
                signal = &mut stopped, if stop_armed => {
                    if signal.is_ok() {
                        break Outcome::Stopped;
                    }
                    stop_armed = false;
                }
                next = tokio::time::timeout_at(deadline, rest.next()) => match next {
                    Err(_) => break Outcome::BrokeOff(UpstreamError::Timeout(TimeoutKind::Reply)),
                    Ok(None) => break Outcome::Complete,
                    Ok(Some(Err(err))) => break Outcome::BrokeOff(err),
                    Ok(Some(Ok(chunk))) => {
                        reply.add(&chunk);
                        for event in encoder.chunk(chunk) {
                            outlet.emit(event).await;
                        }
                    }
                },
            }
        };
        // Dropping the upstream response closes its connection: a stopped generation costs
        // nothing more.
        drop(rest);
        let mut unlogged = recorder.finish().await;
        match &outcome {
            Outcome::BrokeOff(err) => {
                tracing::warn!(thread = %self.thread, error = %err, "the reply broke off; storing what arrived");
            }
            Outcome::Stopped => tracing::debug!(thread = %self.thread, "stopped on request"),
            Outcome::Complete => {}
        }
        let elapsed = self.started.elapsed();
        let last = if let Outcome::BrokeOff(err) = &outcome
            && reply.text.is_empty()
        {
            // Nothing worth keeping arrived: leave the turn open for a retry instead of
            // storing an empty reply.
            let last = stamp_all(&mut outlet, encoder.fail(&broke_off(err)));
            unlogged.extend(last.iter().cloned());
            self.fail(&unlogged).await;
            last
        } else {
            let status = match &outcome {
                Outcome::Complete => None,
                Outcome::Stopped => Some(ReplyStatus::Stopped),
                Outcome::BrokeOff(_) => Some(ReplyStatus::Error),
            };
            let message = reply.finish(self.reply_id.clone(), status, elapsed);
            let last = stamp_all(
                &mut outlet,
                match &outcome {
                    Outcome::Complete => encoder.finish(&message),
                    Outcome::Stopped => encoder.stop(&message),
                    Outcome::BrokeOff(err) => encoder.fail(&broke_off(err)),
                },
            );
            unlogged.extend(last.iter().cloned());
            let stored = self
                .app
                .store()
                .finish_turn(
                    &self.user,
                    &self.thread,
                    &self.user_message_id,
                    &message,
                    StreamEnd { events: &unlogged },
                )
                .await;
            match stored {
                Ok(_) => last,
                Err(err) => {
                    tracing::error!(thread = %self.thread, error = %err, "the reply could not be stored");
                    stamp_all(&mut outlet, encoder.fail(&STORE_FAILED))
                }
            }
        };
        outlet.send_logged(&last).await;
    }

    async fn complete(
        self,
        request: &TurnRequest,
        prompt: &[PromptMessage],
    ) -> Result<Response, ApiError> {
        let upstream = self.app.upstream();
        let ((body, completion), model) = self
            .call_model(request, |model| async move {
                upstream
                    .complete(&upstream_request(&model, prompt, request, false))
                    .await
            })
            .await?;
        let elapsed = self.started.elapsed();
        let mut reply = ReplyBuilder::new(model, elapsed, request.format);
        if let Some(choice) = completion.choices.first() {
            reply
                .text
                .push_str(choice.message.content.as_deref().unwrap_or_default());
            reply.finish_reason.clone_from(&choice.finish_reason);
        }
        reply.usage = completion.usage;
        reply.upstream_model = completion.model;
        let message = reply.finish(self.reply_id.clone(), None, elapsed);
        self.app
            .store()
            .finish_turn(
                &self.user,
                &self.thread,
                &self.user_message_id,
                &message,
                StreamEnd { events: &[] },
            )
            .await?;
        let mut response = Response::new(Body::from(body));
        set_turn_headers(&mut response, &self.thread, &self.reply_id);
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Ok(response)
    }

    /// Calls the model (with the fallback model when configured); a failure before any reply
    /// marks the turn failed, so a retry may call it again.
    async fn call_model<T, F, Fut>(
        &self,
        request: &TurnRequest,
        attempt: F,
    ) -> Result<(T, ModelName), ApiError>
    where
        F: Fn(ModelName) -> Fut,
        Fut: Future<Output = Result<T, UpstreamError>>,
    {
        match with_fallback(&self.app, &request.model, attempt).await {
            Ok(answered) => Ok(answered),
            Err(err) => {
                self.fail(&[]).await;
                Err(err.into())
            }
        }
    }

    /// Marks the turn failed so a retry may call the model again, ending its stream with
    /// `last` (the events the client was sent and resumers have not seen). Best effort: if
    /// Redis is down too, the turn's lease runs out instead.
    async fn fail(&self, last: &[StreamEvent]) {
        if let Err(err) = self
            .app
            .store()
            .fail_turn(
                &self.user,
                &self.thread,
                &self.user_message_id,
                &self.reply_id,
                StreamEnd { events: last },
            )
            .await
        {
            tracing::warn!(thread = %self.thread, error = %err, "could not mark the turn failed");
        }
    }
}

/// A streamed reply past its first chunk, as [`Turn::drive`] reads it.
struct Streaming {
    rest: ChunkStream,
    reply: ReplyBuilder,
    encoder: Encoder,
    outlet: Outlet,
    recorder: Recorder,
    /// Fires when the generation is asked to stop.
    stopped: oneshot::Receiver<()>,
}

/// How a streamed reply ended.
enum Outcome {
    Complete,
    Stopped,
    BrokeOff(UpstreamError),
}

/// The stream's last events, named.
fn stamp_all(outlet: &mut Outlet, events: Vec<String>) -> Vec<StreamEvent> {
    events.into_iter().map(|e| outlet.stamp(e)).collect()
}

/// The reply arrived but could not be stored.
const STORE_FAILED: Failure<'static> = Failure {
    code: "store_unavailable",
    message: "The reply could not be saved; retry the request.",
};

/// How a reply that broke off after it started is reported; what arrived is stored.
fn broke_off(err: &UpstreamError) -> Failure<'static> {
    match err {
        UpstreamError::Timeout(_) => Failure {
            code: "upstream_timeout",
            message: "The model took too long to answer; the partial reply was saved.",
        },
        _ => Failure {
            code: "upstream_error",
            message: "The model's reply broke off; the partial reply was saved.",
        },
    }
}

/// The text, usage and finish reason of a reply as it streams in.
struct ReplyBuilder {
    model: ModelName,
    upstream_model: Option<String>,
    text: String,
    finish_reason: Option<String>,
    usage: Option<WireUsage>,
    ttft: Duration,
    /// AI SDK replies are stored with their text as a part too.
    format: ReplyFormat,
}

impl ReplyBuilder {
    fn new(model: ModelName, ttft: Duration, format: ReplyFormat) -> Self {
        Self {
            format,
            model,
            upstream_model: None,
            text: String::new(),
            finish_reason: None,
            usage: None,
            ttft,
        }
    }

    fn add(&mut self, chunk: &Chunk) {
        let parsed = &chunk.parsed;
        if self.upstream_model.is_none() {
            self.upstream_model.clone_from(&parsed.model);
        }
        for choice in &parsed.choices {
            if let Some(content) = &choice.delta.content {
                self.text.push_str(content);
            }
            if choice.finish_reason.is_some() {
                self.finish_reason.clone_from(&choice.finish_reason);
            }
        }
        if parsed.usage.is_some() {
            self.usage = parsed.usage;
        }
    }

    fn finish(self, id: MessageId, status: Option<ReplyStatus>, duration: Duration) -> ChatMessage {
        let finish_reason = match status {
            Some(ReplyStatus::Error) => "error".to_owned(),
            Some(ReplyStatus::Stopped) => "stop".to_owned(),
            None => self.finish_reason.unwrap_or_else(|| "stop".to_owned()),
        };
        ChatMessage {
            id,
            role: Role::Assistant,
            created_at: now(),
            // The model we asked for, as the client knows it (the API may echo a longer id).
            model: Some(self.model.as_str().to_owned()),
            finish_reason: Some(finish_reason),
            usage: self.usage.map(|u| Usage {
                prompt_tokens: u.prompt_tokens,
                completion_tokens: u.completion_tokens,
            }),
            ttft_ms: Some(millis(self.ttft)),
            duration_ms: Some(millis(duration)),
            parts: (self.format == ReplyFormat::Ui).then(|| {
                vec![MessagePart::Text {
                    text: self.text.clone(),
                }]
            }),
            content: self.text,
            status,
            superseded_by: None,
        }
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A stored reply, answered again in the format the request asked for.
fn replay(thread: &ThreadId, reply: &ChatMessage, request: &TurnRequest) -> Response {
    if !request.stream {
        let mut response = axum::Json(openai::completion(reply)).into_response();
        set_turn_headers(&mut response, thread, &reply.id);
        return response;
    }
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let chunks = match request.format {
        ReplyFormat::OpenAi => openai::replay_chunks(reply, request.include_usage),
        ReplyFormat::Ui => ai_sdk::replay_chunks(reply),
    };
    for chunk in chunks {
        let _ = tx.try_send(Event::default().data(chunk));
    }
    let _ = tx.try_send(Event::default().data(openai::DONE));
    sse_response(thread, &reply.id, request.format, rx)
}

/// The event-stream response: `text/event-stream`, no caching, no proxy buffering, the
/// turn's ids in headers and, for the AI SDK, its protocol header.
fn sse_response(
    thread: &ThreadId,
    reply_id: &MessageId,
    format: ReplyFormat,
    rx: mpsc::Receiver<Event>,
) -> Response {
    let events = ReceiverStream::new(rx).map(Ok::<_, Infallible>);
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE_INTERVAL))
        .into_response();
    set_turn_headers(&mut response, thread, reply_id);
    response
        .headers_mut()
        .insert(ACCEL_BUFFERING, HeaderValue::from_static("no"));
    if format == ReplyFormat::Ui {
        let (name, value) = ai_sdk::STREAM_HEADER;
        response.headers_mut().insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    response
}

fn set_turn_headers(response: &mut Response, thread: &ThreadId, reply_id: &MessageId) {
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
