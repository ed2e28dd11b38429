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
//! failed and a retry calls the model again without storing the user's message twice. A
//! begin whose answer never came (a 503 on a frozen or slow Redis) is taken back once Redis
//! answers ([`Undo`]), so its retry proceeds too. Turns
//! are keyed by the user message id, which makes retries of a finished turn free: the stored
//! reply is replayed.
//!
//! A streamed turn costs Redis two round trips whatever the reply's length (`begin_turn` and
//! `finish_turn`), plus one lease renewal per third of a lease. Its events wait in memory
//! (`outlet`) and reach the stream log with the last write, or as they come once a resumer
//! asks for them; stop and resume requests reach the generator as pushed signals
//! ([`store::control`](crate::store::control)).
//!
//! The parts: [`request`] parses the body; `context` fits the prompt to the model's window
//! and `summary` writes the thread's summary in the background; `cache` keys the response
//! cache; `model` builds the model request; `turn` runs the turn; `reply` keeps the reply's copy; `outlet` names, frames and logs events;
//! `lease` keeps the thread's lease; `response` builds the responses; [`resume`] serves
//! resumers and stop requests.

pub mod attachments;
mod cache;
pub mod context;
mod lease;
mod model;
mod outlet;
mod reply;
pub mod request;
mod response;
pub mod resume;
mod summary;
pub mod title;
mod turn;

use std::{sync::Arc, time::Duration};

use axum::{http::HeaderValue, response::Response};
use tokio::time::Instant;

use crate::{
    app::App,
    background::Background,
    domain::{MaxTokens, ThreadId, Title, UserId},
    error::ApiError,
    http::headers::{ATTACHMENTS_SKIPPED, CACHE, CONTEXT_DROPPED_MESSAGES},
    store::{
        LimitSet, NewTurn, RateDecision, StreamEnd, ThreadContext, TurnIds, TurnStart, Undo,
        control::Registration,
    },
    upstream::wire::PromptMessage,
};
use lease::LeaseKeeper;
pub use request::{ChatBody, Dialect, TurnRequest};
pub use response::responses_stream;
use turn::Turn;

/// Interval of `: keep-alive` comments while the model is silent, so proxies keep the
/// connection open.
pub const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(15);

/// Answers a chat request, counting it against `limits` as it begins.
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
    // The guard writes the rate-limit headers from it.
    response.extensions_mut().insert(decision);
    Ok(response)
}

/// The turn itself, and how it counted against the limits.
async fn answer(
    app: &App,
    user: UserId,
    request: TurnRequest,
    limits: &LimitSet,
    background: Background,
) -> Result<(Response, RateDecision), ApiError> {
    let config = app.config();
    let (thread, title) = match &request.thread_id {
        // A chat id that names a thread created on first use.
        Some(id) if request.create => (
            id.clone(),
            Some(Title::from_message(&request.first_user_text())),
        ),
        Some(id) => (id.clone(), None),
        None => (
            ThreadId::new(),
            Some(Title::from_message(&request.first_user_text())),
        ),
    };
    let inputs = request.input_messages(&thread);
    let Some(first) = inputs.first() else {
        return Err(ApiError::InvalidBody(
            "`messages` hold no new turn".to_owned(),
        ));
    };
    let mut ids = Arc::new(TurnIds {
        user,
        thread,
        user_message: first.id.clone(),
        reply: request.reply_id.clone().unwrap_or_default(),
    });
    // A streamed turn listens for stop and resume signals from the moment it is recorded.
    let registration = if request.stream {
        Some(app.store().control().register(&ids.reply).await)
    } else {
        None
    };
    let (stream_start_ms, thread_context, decision) = if request.ephemeral {
        // Nothing is stored: the turn only counts against the limits.
        let decision = app.store().check_rate(&ids.user, limits).await?;
        if !decision.allowed {
            return Err(ApiError::RateLimited(decision));
        }
        (
            crate::domain::now().as_millisecond(),
            ThreadContext::default(),
            decision,
        )
    } else {
        let (start, decision) = app
            .store()
            .begin_turn(
                NewTurn {
                    ids: &ids,
                    create_with_title: title.as_ref(),
                    inputs: &inputs,
                    lease: config.chat.generation_lease,
                    format: request.stream.then_some(request.format),
                    regenerate: request.regenerate,
                    placement: &request.placement,
                },
                limits,
            )
            .await
            .inspect_err(|err| {
                if err.outcome_unknown() {
                    // The begin may still run once Redis answers: take it back then, so this
                    // 503's retry finds the thread free.
                    background.spawn(app.store().clone().settle(Undo::BeginTurn {
                        ids: TurnIds::clone(&ids),
                        regenerate: request.regenerate,
                        // A thread id of the server's own: no retry can name this thread.
                        made_thread: request.thread_id.is_none().then_some(inputs.len()),
                        lease: config.chat.generation_lease,
                    }));
                }
            })?;
        let (stream_start_ms, thread_context) = match start {
            TurnStart::Proceed {
                stream_start_ms,
                context,
                turn_key,
            } => {
                if turn_key != ids.user_message {
                    // A regenerate of an edited message: its turn is the edit's.
                    ids = Arc::new(TurnIds {
                        user_message: turn_key,
                        ..TurnIds::clone(&ids)
                    });
                }
                (stream_start_ms, context)
            }
            TurnStart::RateLimited => return Err(ApiError::RateLimited(decision)),
            TurnStart::ThreadNotFound => return Err(ApiError::ThreadNotFound),
            TurnStart::InProgress { reply_id } | TurnStart::Busy { reply_id } => {
                return Err(ApiError::GenerationInProgress { reply_id });
            }
            TurnStart::Answered(reply) => {
                return Ok((response::replay(&ids.thread, &reply, &request), decision));
            }
            TurnStart::NoParent { id } => {
                return Err(ApiError::InvalidBody(format!(
                    "`{}` names message `{id}`, which is not in this thread",
                    request.placement_field()
                )));
            }
        };
        (stream_start_ms, thread_context, decision)
    };

    let mut turn = Turn {
        app: app.clone(),
        _lease: (!request.ephemeral).then(|| {
            LeaseKeeper::start(
                app.clone(),
                Arc::clone(&ids),
                registration.as_ref().map(Registration::sender),
            )
        }),
        ephemeral: request.ephemeral,
        ids,
        started: Instant::now(),
        stream_start_ms,
        prompt_chars: 0,
        context_dropped: 0,
        cache_key: None,
        response: request.response.clone(),
        title: None,
    };
    if thread_context.wants_title && config.chat.auto_title && !request.ephemeral {
        // Written alongside the reply; the stream carries it if it is ready in time.
        let (ready, title) = tokio::sync::oneshot::channel();
        turn.title = Some(title);
        background.spawn(title::write_first(
            app.clone(),
            turn.ids.user.clone(),
            turn.ids.thread.clone(),
            request.first_user_text().into_owned(),
            ready,
        ));
    }
    let prompt = model::with_reasoning(
        model::with_system_prompt(request.prompt.clone(), config.chat.system_prompt.as_deref()),
        request.reasoning,
    );
    let fitted = match fit_to_window(app, &turn, &request, prompt, thread_context, &background) {
        Ok(fitted) => fitted,
        Err(detail) => {
            turn.fail(StreamEnd::NONE).await;
            return Err(ApiError::ContextLengthExceeded(detail));
        }
    };
    turn.prompt_chars = context::prompt_chars(&fitted.prompt);
    turn.context_dropped = fitted.dropped;
    turn.cache_key = cache::key(&config.chat, &turn.ids.user, &request, &fitted.prompt);
    let cached = match &turn.cache_key {
        Some(key) => app.store().cached_reply(key).await.unwrap_or_else(|err| {
            tracing::warn!(error = %err, "the response cache could not be read; calling the model");
            None
        }),
        None => None,
    };
    let cache_header = turn
        .cache_key
        .as_ref()
        .map(|_| HeaderValue::from_static(if cached.is_some() { "hit" } else { "miss" }));
    let mut response = match (cached, registration) {
        (Some(cached), _) => turn.answer_cached(&request, cached).await?,
        (None, Some(registration)) => {
            turn.stream(&request, &fitted.prompt, background, registration)
                .await?
        }
        (None, None) => {
            turn.answer_whole(&request, &fitted.prompt, &background)
                .await?
        }
    };
    if let Some(value) = cache_header {
        response.headers_mut().insert(CACHE, value);
    }
    if fitted.dropped > 0 {
        response
            .headers_mut()
            .insert(CONTEXT_DROPPED_MESSAGES, HeaderValue::from(fitted.dropped));
    }
    if !request.attachments_skipped.is_empty() {
        // Names as they can travel in a header: visible ASCII, commas kept apart.
        let names: Vec<String> = request
            .attachments_skipped
            .iter()
            .map(|name| {
                name.chars()
                    .map(|c| {
                        if c.is_ascii_graphic() && c != ',' || c == ' ' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .collect()
            })
            .collect();
        if let Ok(value) = HeaderValue::from_str(&names.join(", ")) {
            response.headers_mut().insert(ATTACHMENTS_SKIPPED, value);
        }
    }
    Ok((response, decision))
}

/// The prompt cut to the model's context window (left whole for a model whose window is not
/// configured); with `CONTEXT_SUMMARY=1`, a turn near the limit also has the summary
/// refreshed in the background.
fn fit_to_window(
    app: &App,
    turn: &Turn,
    request: &TurnRequest,
    prompt: Vec<PromptMessage>,
    thread: ThreadContext,
    background: &Background,
) -> Result<context::Fitted, String> {
    let config = &app.config().chat;
    let Some(window) = config.context_window(request.model.as_str()) else {
        return Ok(context::Fitted {
            prompt,
            dropped: 0,
            summarized: false,
            full_tokens: 0,
        });
    };
    let budget = context::budget(
        window,
        request.max_tokens.map(MaxTokens::get),
        config.max_tokens_cap,
    );
    let estimator = context::Estimator::new(thread.calibration);
    let summary = thread.summary.filter(|_| config.context_summary);
    let full = if config.context_summary {
        Some(prompt.clone())
    } else {
        None
    };
    let fitted = context::fit(
        prompt,
        &request.tools,
        budget,
        estimator,
        summary.as_ref(),
        request.truncation,
    )?;
    if let Some(prompt) = full
        && summary::due(fitted.full_tokens, budget)
    {
        let refresh = summary::Refresh {
            app: app.clone(),
            ids: Arc::clone(&turn.ids),
            model: request.model.clone(),
            prompt,
            summary,
            estimator,
        };
        background.spawn(refresh.run(budget));
    }
    Ok(fitted)
}
