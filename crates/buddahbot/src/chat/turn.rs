//! One turn in flight, past `begin_turn`: call the model, then stream the reply (forwarding
//! each network read of it as one frame while keeping a copy) or answer it whole, and store it.

use std::{future::Future, ops::ControlFlow, sync::Arc, time::Duration};

use axum::{
    body::Body,
    http::{HeaderValue, header},
    response::Response,
};
use bytes::Bytes;
use tokio::{sync::mpsc, time::Instant};

use super::{
    KEEP_ALIVE_INTERVAL, TurnRequest, cache,
    lease::LeaseKeeper,
    model::{upstream_request, with_fallback},
    outlet::{Outlet, Recorder},
    reply::ReplyBuilder,
    response,
};
use crate::{
    app::App,
    background::Background,
    domain::{ChatMessage, ModelName, ReplyFormat, ReplyStatus, ToolCall},
    error::ApiError,
    protocol::{
        encoder::{Encoder, Failure},
        openai,
        responses::{self, ResponseId, Settings},
    },
    store::{
        CachedReply, Finished, LogBatch, ModelTitle, StoreError, StreamEnd, TurnIds,
        control::Registration,
    },
    timing::{self, Phase},
    upstream::{
        Chunk, Drained, ReplyStream, TimeoutKind, UpstreamError,
        markup::Splitter,
        wire::{ChoiceView, ChunkView, DeltaView, PromptMessage},
    },
};

/// Frames buffered for a slow client before the turn waits for it.
pub(super) const CHANNEL_CAPACITY: usize = 64;

/// An ended stream's log stays readable this long past the resume grace period (a resumer
/// that came in time reads it in a round trip or two; the log is dead weight after that).
const ENDED_LOG_SLACK: Duration = Duration::from_secs(5);

/// One turn in flight: who, where, and under which ids.
pub(super) struct Turn {
    pub app: App,
    pub ids: Arc<TurnIds>,
    pub started: Instant,
    /// The ms part of the ids of the turn's events.
    pub stream_start_ms: i64,
    /// The prompt's characters, kept with the tokens the model counts in it.
    pub prompt_chars: u64,
    /// How many of the conversation's oldest messages the prompt left out to fit.
    pub context_dropped: usize,
    /// Where a complete reply is cached (a temperature-0 request with the cache on).
    pub cache_key: Option<String>,
    /// A Responses API turn's settings, kept on its reply.
    pub response: Option<Arc<Settings>>,
    /// The title the model is writing for the thread (its first turn), to store and send
    /// with the reply when it is ready by then ([`Turn::take_title`]).
    pub title: Option<tokio::sync::oneshot::Receiver<ModelTitle>>,
    /// Keeps the thread's generation lease alive for as long as the turn exists (none for an
    /// ephemeral turn, which holds no lease).
    pub _lease: Option<LeaseKeeper>,
    /// Store nothing: the reply is only answered (and its tokens counted).
    pub ephemeral: bool,
}

/// A streamed reply past its first chunk, as [`Turn::drive`] reads it.
struct LiveReply {
    rest: ReplyStream,
    /// What reading the chunks received so far left.
    drained: Result<Drained, UpstreamError>,
    reply: ReplyBuilder,
    splitter: Splitter,
    encoder: Encoder,
    outlet: Outlet,
    registration: Registration,
}

/// How a streamed reply ended.
enum Outcome {
    Complete,
    Stopped,
    BrokeOff(UpstreamError),
}

impl Turn {
    /// Calls the model and answers with the event stream once its first chunk is in; the
    /// rest is read by a task of its own ([`Turn::drive`]).
    pub async fn stream(
        self,
        request: &TurnRequest,
        prompt: &[PromptMessage],
        background: Background,
        registration: Registration,
    ) -> Result<Response, ApiError> {
        let upstream = self.app.upstream();
        let (mut rest, model) = self
            .call_model(request, |model| async move {
                upstream
                    .stream(&upstream_request(&model, prompt, request, true))
                    .await
            })
            .await?;
        let ttft = self.started.elapsed();

        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let mut encoder =
            Encoder::new(request.format, request.include_usage).continuing(request.continues());
        let mut splitter = Splitter::new(self.ids.reply.as_str(), !request.tools.is_empty());
        if let Some(settings) = &self.response {
            // The response began when its request came.
            let created_at =
                jiff::Timestamp::now().as_second() - i64::try_from(ttft.as_secs()).unwrap_or(0);
            encoder = encoder.responding(
                self.response_id(),
                Arc::clone(settings),
                model.as_str(),
                created_at,
            );
        }
        let mut reply = ReplyBuilder::new(model, ttft, request.format, &self.ids.reply);
        let mut tee = Tee {
            reply: &mut reply,
            splitter: &mut splitter,
            encoder: &mut encoder,
        };
        let mut outlet = Outlet::new(tx, self.stream_start_ms);
        tee.encoder.open(&self.ids.reply, &mut outlet);
        // Up to the first text: what arrived with it is read after the head has left.
        let mut drained = tee.forward_ready(&mut rest, &mut outlet, Upto::FirstText);
        // The model's first chunk often only names the role; when its first text has already
        // arrived too, it leaves with the head.
        while tee.reply.is_empty() && matches!(drained, Ok(Drained::More)) {
            match rest.try_fill().await {
                Ok(true) => {
                    drained = tee.forward_ready(&mut rest, &mut outlet, Upto::FirstText);
                }
                Ok(false) => break,
                Err(err) => drained = Err(err),
            }
        }
        // Queued before the response leaves, so the head goes out with these first events.
        outlet.flush_now();
        let response =
            response::event_stream(&self.ids.thread, &self.ids.reply, request.format, rx);
        background.spawn(self.drive(LiveReply {
            rest,
            drained,
            reply,
            splitter,
            encoder,
            outlet,
            registration,
        }));
        Ok(response)
    }

    /// Reads the rest of the reply, forwarding what each read brings while the client
    /// listens, until it ends, breaks off or is stopped; then stores the reply together with
    /// the stream's unlogged events, and sends its last events (`[DONE]` or an error event)
    /// only after that.
    async fn drive(mut self, live: LiveReply) {
        let LiveReply {
            mut rest,
            mut drained,
            mut reply,
            mut splitter,
            mut encoder,
            mut outlet,
            registration,
        } = live;
        let mut tee = Tee {
            reply: &mut reply,
            splitter: &mut splitter,
            encoder: &mut encoder,
        };
        let mut signals = registration.signals.clone();
        let mut signals_open = true;
        let mut recorder: Option<Recorder> = None;
        let deadline = tokio::time::sleep_until(self.started + self.app.config().chat.max_duration);
        tokio::pin!(deadline);
        let keep_alive = tokio::time::sleep(KEEP_ALIVE_INTERVAL);
        tokio::pin!(keep_alive);
        let mut sent_at = Instant::now();
        let outcome = loop {
            match std::mem::replace(&mut drained, Ok(Drained::More)) {
                Err(err) => break Outcome::BrokeOff(err),
                Ok(Drained::Done) => break Outcome::Complete,
                Ok(Drained::Held) => {
                    // Chunks that came with the first text: read now, sent together.
                    drained = tee.forward_ready(&mut rest, &mut outlet, Upto::Ready);
                    continue;
                }
                Ok(Drained::More) => {}
            }
            if !outlet.is_flushed() {
                outlet.flush().await;
                sent_at = Instant::now();
            }
            let asked = *signals.borrow_and_update();
            if asked.stop {
                break Outcome::Stopped;
            }
            if asked.follow && recorder.is_none() {
                recorder = Some(outlet.record(&self.app, &self.ids, &registration.sender()));
            }
            tokio::select! {
                biased;
                changed = signals.changed(), if signals_open => signals_open = changed.is_ok(),
                // Until the first text went out, each piece leaves as soon as it is here.
                filled = rest.fill(!tee.reply.is_empty()) => {
                    drained = match filled {
                        Err(err) => Err(err),
                        Ok(false) => Err(ReplyStream::ended_early()),
                        Ok(true) => tee.forward_ready(&mut rest, &mut outlet, Upto::Ready),
                    };
                }
                () = &mut deadline => break Outcome::BrokeOff(UpstreamError::Timeout(TimeoutKind::Reply)),
                () = &mut keep_alive => {
                    // Armed once per interval, not per read: moved on when something was sent.
                    let due = sent_at + KEEP_ALIVE_INTERVAL;
                    if due <= Instant::now() {
                        outlet.keep_alive();
                        sent_at = Instant::now();
                    }
                    keep_alive.as_mut().reset(sent_at + KEEP_ALIVE_INTERVAL);
                }
            }
        };
        // Dropping the upstream response closes its connection: a stopped generation costs
        // nothing more.
        drop(rest);
        // What was held back (a partial tag, an unclosed call) is what it is.
        tee.finish(&mut outlet);
        // Whether anyone may still want the events: a resumer (the log has the rest) or the
        // client, if it went away before the end.
        let keep_log = recorder.is_some() || outlet.client_gone();
        if let Some(recorder) = recorder {
            recorder.finish().await;
        }
        match &outcome {
            Outcome::BrokeOff(err) => {
                tracing::warn!(thread = %self.ids.thread, error = %err, "the reply broke off; storing what arrived");
            }
            Outcome::Stopped => tracing::debug!(thread = %self.ids.thread, "stopped on request"),
            Outcome::Complete => {}
        }
        let elapsed = self.started.elapsed();
        if let Outcome::BrokeOff(err) = &outcome
            && reply.is_empty()
        {
            // Nothing worth keeping arrived: leave the turn open for a retry instead of
            // storing an empty reply.
            encoder.fail(&broke_off(err), &mut outlet);
            let unlogged = outlet.take_unlogged().filter(|_| keep_log);
            self.fail(self.stream_end(unlogged.as_ref())).await;
        } else {
            let status = match &outcome {
                Outcome::Complete => None,
                Outcome::Stopped => Some(ReplyStatus::Stopped),
                Outcome::BrokeOff(_) => Some(ReplyStatus::Error),
            };
            let message = self.stored(reply.finish(self.ids.reply.clone(), status, elapsed));
            let title = self.take_title();
            if let Some(title) = title.as_ref().and_then(|t| t.title.as_ref()) {
                encoder.thread_title(&self.ids.thread, title, &mut outlet);
            }
            let last = outlet.mark();
            match &outcome {
                Outcome::Complete => encoder.finish(&message, &mut outlet),
                Outcome::Stopped => encoder.stop(&message, &mut outlet),
                Outcome::BrokeOff(err) => encoder.fail(&broke_off(err), &mut outlet),
            }
            let unlogged = outlet.take_unlogged();
            let store = self.app.store();
            let mut stored = if self.ephemeral {
                self.count_tokens(&message).await;
                Ok(Finished::Stored)
            } else {
                store
                    .finish_turn(
                        &self.ids,
                        &message,
                        Some(self.prompt_chars),
                        title.as_ref(),
                        self.stream_end(unlogged.as_ref().filter(|_| keep_log)),
                    )
                    .await
            };
            if let Ok(Finished::LogWanted) = stored
                && unlogged.is_some()
            {
                stored = store
                    .finish_turn(
                        &self.ids,
                        &message,
                        Some(self.prompt_chars),
                        title.as_ref(),
                        self.stream_end(unlogged.as_ref()),
                    )
                    .await;
            }
            match stored {
                Err(err) => {
                    tracing::error!(thread = %self.ids.thread, error = %err, "the reply could not be stored");
                    outlet.retract(last);
                    encoder.fail(&STORE_FAILED, &mut outlet);
                    outlet.flush().await;
                    if matches!(err, StoreError::Unavailable(_)) && !self.ephemeral {
                        // The client's stream ends now; the reply is stored once Redis answers.
                        drop(outlet);
                        let end = self.stream_end(unlogged.as_ref().filter(|_| keep_log));
                        self.store_later(&message, title.as_ref(), end).await;
                    }
                    return;
                }
                Ok(Finished::Stored) if matches!(outcome, Outcome::Complete) => {
                    outlet.flush().await;
                    self.cache(&message).await;
                    return;
                }
                Ok(_) => {}
            }
        }
        outlet.flush().await;
    }

    /// Stores a reply whose write got no answer (Redis down, frozen or slow) once Redis answers
    /// again, so its client's retry replays it instead of waiting out the lease and calling the
    /// model anew. Tries every 100 ms for at most one lease, which the turn holds meanwhile;
    /// a write that did run is not repeated (`finish_turn.lua` answers it again).
    async fn store_later(
        &self,
        message: &ChatMessage,
        title: Option<&ModelTitle>,
        end: StreamEnd<'_>,
    ) {
        let deadline = Instant::now() + self.app.config().chat.generation_lease;
        loop {
            tokio::time::sleep(STORE_RETRY_DELAY).await;
            let stored = self
                .app
                .store()
                .finish_turn(&self.ids, message, Some(self.prompt_chars), title, end)
                .await;
            match stored {
                Ok(_) => {
                    tracing::info!(thread = %self.ids.thread, "stored a reply once redis answered again");
                    return;
                }
                Err(StoreError::Unavailable(_)) if Instant::now() < deadline => {}
                Err(err) => {
                    tracing::error!(thread = %self.ids.thread, error = %err, "gave up storing the reply; its lease frees the thread");
                    return;
                }
            }
        }
    }

    /// Keeps a complete reply in the response cache, when the request may be answered from
    /// it. Best effort: a failure only costs a later model call.
    async fn cache(&self, reply: &ChatMessage) {
        let (Some(key), Some(ttl)) = (&self.cache_key, self.app.config().chat.response_cache_ttl)
        else {
            return;
        };
        if self.ephemeral {
            // Nothing of an ephemeral turn is written, not even to the cache.
            return;
        }
        if let Err(err) = self
            .app
            .store()
            .cache_reply(key, &cache::entry(reply), ttl)
            .await
        {
            tracing::warn!(error = %err, "the reply could not be cached");
        }
    }

    /// Counts an unstored reply's tokens against the daily budget (a stored one's are counted
    /// by `finish_turn`). Best effort.
    async fn count_tokens(&self, reply: &ChatMessage) {
        let tokens = reply.usage.map_or(0, |u| {
            u64::from(u.prompt_tokens) + u64::from(u.completion_tokens)
        });
        if let Err(err) = self.app.store().add_tokens(&self.ids.user, tokens).await {
            tracing::warn!(error = %err, "the reply's tokens could not be counted");
        }
    }

    /// Answers from the response cache: the cached reply is stored as this turn's (marked
    /// `cached`, no tokens charged) and sent as a stored reply is replayed, in the client's
    /// format, without calling the model.
    pub async fn answer_cached(
        mut self,
        request: &TurnRequest,
        cached: CachedReply,
    ) -> Result<Response, ApiError> {
        let mut message = self.stored(cache::reply(cached, self.ids.reply.clone(), &request.model));
        if request.format == ReplyFormat::Ui
            && (message.tool_calls.is_none() || !message.content.is_empty())
        {
            message.parts = Some(message.parts_or_text());
        }
        if !self.ephemeral {
            let title = self.take_title();
            self.app
                .store()
                .finish_turn(&self.ids, &message, None, title.as_ref(), StreamEnd::NONE)
                .await?;
        }
        Ok(response::replay(&self.ids.thread, &message, request))
    }

    /// The model's title for the thread, if it is ready: the caller stores it with the reply.
    /// From then on the title task writes a later one itself.
    fn take_title(&mut self) -> Option<ModelTitle> {
        let mut title = self.title.take()?;
        title.close();
        title.try_recv().ok()
    }

    /// The reply as stored: with how its prompt was cut to fit.
    fn stored(&self, mut message: ChatMessage) -> ChatMessage {
        message.context_dropped_messages = (self.context_dropped > 0)
            .then(|| u32::try_from(self.context_dropped).unwrap_or(u32::MAX));
        if let Some(settings) = &self.response {
            message.response_id = Some(self.response_id().to_string());
            message.response = serde_json::to_value(settings.as_ref()).ok();
        }
        message
    }

    /// The id of the response this turn is (Responses API turns).
    fn response_id(&self) -> ResponseId {
        ResponseId {
            reply: self.ids.reply.clone(),
            thread: self.ids.thread.clone(),
        }
    }

    /// How the turn's stream ends in the log: with `unlogged`, kept for resumers a while.
    fn stream_end<'a>(
        &self,
        unlogged: Option<&'a (crate::store::EventId, Vec<u8>)>,
    ) -> StreamEnd<'a> {
        StreamEnd {
            batch: unlogged.map(|(last, data)| LogBatch { last: *last, data }),
            keep: self.app.config().chat.resume_grace + ENDED_LOG_SLACK,
        }
    }

    /// Calls the model without streaming and answers its reply once it is stored (or 503, and
    /// stores it once Redis answers again, on `background`).
    pub async fn answer_whole(
        mut self,
        request: &TurnRequest,
        prompt: &[PromptMessage],
        background: &Background,
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
        let mut reply = ReplyBuilder::new(model, elapsed, request.format, &self.ids.reply);
        // Whether the reply differs from the model's (reasoning apart, calls read from the
        // text): then the answer is ours, not the model's body.
        let mut rewritten = false;
        if let Some(choice) = completion.choices.into_iter().next() {
            let content = choice.message.content.as_deref().unwrap_or_default();
            let mut splitter = Splitter::new(self.ids.reply.as_str(), !request.tools.is_empty());
            let whole = ChunkView {
                choices: vec![ChoiceView {
                    delta: DeltaView {
                        content: Some(content.into()),
                        reasoning_content: choice
                            .message
                            .reasoning_content
                            .as_deref()
                            .map(Into::into),
                        reasoning: choice.message.reasoning.as_deref().map(Into::into),
                        ..DeltaView::default()
                    },
                    finish_reason: choice.finish_reason.as_deref().map(Into::into),
                }],
                ..ChunkView::default()
            };
            rewritten = !splitter.is_plain(&whole);
            splitter.split(&whole, |piece| reply.piece(&piece));
            reply.end_chunk(&whole, &splitter);
            for call in choice.message.tool_calls.into_iter().flatten() {
                reply.tool_calls.push(ToolCall {
                    id: call.id,
                    name: call.function.name,
                    arguments: call.function.arguments,
                });
            }
        }
        reply.usage = completion.usage;
        let message = self.stored(reply.finish(self.ids.reply.clone(), None, elapsed));
        if self.ephemeral {
            self.count_tokens(&message).await;
        } else {
            let title = self.take_title();
            let stored = self
                .app
                .store()
                .finish_turn(
                    &self.ids,
                    &message,
                    Some(self.prompt_chars),
                    title.as_ref(),
                    StreamEnd::NONE,
                )
                .await;
            if let Err(err) = stored {
                if matches!(err, StoreError::Unavailable(_)) {
                    // Answered 503: the reply is stored once Redis answers, for the retry.
                    let message = message.clone();
                    background.spawn(async move {
                        self.store_later(&message, title.as_ref(), StreamEnd::NONE)
                            .await;
                    });
                }
                return Err(err.into());
            }
        }
        self.cache(&message).await;
        let body = match &self.response {
            // The Responses API answers with the Response object, built as a stored one is.
            Some(settings) => {
                let object = responses::object(
                    &self.response_id(),
                    settings,
                    message.model.as_deref().unwrap_or_default(),
                    responses::started_at(&message),
                    responses::Status::of(&message),
                    Some(&message),
                    None,
                );
                Bytes::from(object.to_string())
            }
            None if rewritten => Bytes::from(openai::completion(&message).to_string()),
            None => body,
        };
        let mut response = Response::new(Body::from(body));
        response::set_turn_headers(&mut response, &self.ids.thread, &self.ids.reply);
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
        let asked = Instant::now();
        let answered = with_fallback(&self.app, &request.model, attempt).await;
        timing::add(Phase::Upstream, asked.elapsed());
        match answered {
            Ok(answered) => Ok(answered),
            Err(err) => {
                self.fail(StreamEnd::NONE).await;
                if err.is_context_length() {
                    // Our estimate was short of the model's count: say so as we would have.
                    return Err(ApiError::ContextLengthExceeded(
                        "the model counted more tokens than its window holds".to_owned(),
                    ));
                }
                Err(err.into())
            }
        }
    }

    /// Marks the turn failed so a retry may call the model again, ending its stream with the
    /// events resumers have not seen. Best effort: if Redis is down too, the turn's lease runs
    /// out instead.
    pub(super) async fn fail(&self, end: StreamEnd<'_>) {
        if self.ephemeral {
            return;
        }
        if let Err(err) = self.app.store().fail_turn(&self.ids, end).await {
            tracing::warn!(thread = %self.ids.thread, error = %err, "could not mark the turn failed");
        }
    }
}

/// The tee: what each chunk says goes both to the reply's copy and to the client's events.
struct Tee<'t> {
    reply: &'t mut ReplyBuilder,
    splitter: &'t mut Splitter,
    encoder: &'t mut Encoder,
}

/// How far [`Tee::forward_ready`] reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Upto {
    /// Every chunk received.
    Ready,
    /// Up to the reply's first text (or tool call): the head leaves with it, not after
    /// everything that arrived in the same read ([`Drained::Held`] then).
    FirstText,
}

impl Tee<'_> {
    /// Keeps and encodes the chunks received so far, `upto` where it says.
    fn forward_ready(
        &mut self,
        rest: &mut ReplyStream,
        outlet: &mut Outlet,
        upto: Upto,
    ) -> Result<Drained, UpstreamError> {
        rest.drain(|chunk| {
            self.forward(&chunk, outlet);
            if upto == Upto::FirstText && !self.reply.is_empty() {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
    }

    /// Keeps and encodes one chunk.
    fn forward(&mut self, chunk: &Chunk<'_>, outlet: &mut Outlet) {
        let plain = self.splitter.is_plain(&chunk.view);
        self.encoder.chunk(chunk, plain, outlet);
        let (reply, encoder) = (&mut *self.reply, &mut *self.encoder);
        self.splitter.split(&chunk.view, |piece| {
            reply.piece(&piece);
            encoder.piece(&piece, outlet);
        });
        self.encoder.end_chunk(chunk, self.splitter, outlet);
        self.reply.end_chunk(&chunk.view, self.splitter);
    }

    /// Keeps and encodes what the splitter held back, at the end of the reply.
    fn finish(&mut self, outlet: &mut Outlet) {
        let (reply, encoder) = (&mut *self.reply, &mut *self.encoder);
        self.splitter.finish(|piece| {
            reply.piece(&piece);
            encoder.piece(&piece, outlet);
        });
    }
}

/// The wait between attempts to store a reply while Redis does not answer.
const STORE_RETRY_DELAY: Duration = Duration::from_millis(100);

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
