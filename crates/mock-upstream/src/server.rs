//! The HTTP side: shared state ([`MockState`]), the [`router`], its handlers, the one error
//! type they answer with, and the [`MockUpstream`] handle that serves the router on a socket.
//!
//! Handlers decide *what* to answer from the knobs; the bytes of a streamed reply come from
//! [`crate::stream`].

use std::{
    collections::VecDeque,
    future::Future,
    io,
    net::{Ipv4Addr, SocketAddr},
    sync::{
        Arc, Mutex, PoisonError, RwLock,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{
    Json, Router,
    body::{Body, Bytes},
    extract::{DefaultBodyLimit, State},
    http::{
        HeaderMap, HeaderValue, StatusCode,
        header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER},
    },
    response::{IntoResponse, Response},
    routing::{get, post},
    serve::ListenerExt,
};
use tokio::{net::TcpListener, sync::watch};

use crate::{
    MODELS, MockConfig,
    config::Knobs,
    overrides::{OverrideError, Overrides, ThinkKnobs, without_directives},
    reply,
    script::{self, Field},
    stream::{CutBody, Plan, SseReply},
    tools::{self, ToolCall, UnknownTool},
    wire,
};

/// How many request bodies [`MockState::requests`] keeps (the most recent ones).
pub const REQUEST_LOG_CAPACITY: usize = 1000;

/// Request bodies above this size get a 413; large enough for inline images.
const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// The shared state of a mock: its current config, call counter and request log.
///
/// Cheap to clone (one `Arc`). Hand a clone to [`router`] and keep one to steer and observe the
/// mock; [`MockUpstream`] does exactly that.
#[derive(Clone)]
pub struct MockState {
    shared: Arc<Shared>,
}

struct Shared {
    /// Read once per request for a copy of the knobs and the key check; written only by tests
    /// and operators, so the read lock is uncontended.
    config: RwLock<MockConfig>,
    calls: AtomicUsize,
    /// Streamed replies the client closed before their end (shared with each reply).
    abandoned: Arc<AtomicUsize>,
    /// Raw bodies, parsed only when a test asks, so recording costs a refcount, not a parse.
    requests: Mutex<VecDeque<Bytes>>,
    /// Never reset, unlike `calls`, so reply ids stay unique for the life of the mock.
    next_id: AtomicU64,
    /// Requests seen per last user message, for `faults=N` (cleared by `reset`).
    faulted: Mutex<std::collections::HashMap<String, usize>>,
    /// Flipped once by [`MockState::stop`]; ends hanging requests and the server.
    stopping: watch::Sender<bool>,
}

impl MockState {
    /// State for a mock that answers according to `config`.
    pub fn new(config: MockConfig) -> Self {
        Self {
            shared: Arc::new(Shared {
                config: RwLock::new(config),
                calls: AtomicUsize::new(0),
                abandoned: Arc::new(AtomicUsize::new(0)),
                requests: Mutex::new(VecDeque::new()),
                next_id: AtomicU64::new(0),
                faulted: Mutex::new(std::collections::HashMap::new()),
                stopping: watch::Sender::new(false),
            }),
        }
    }

    /// Replaces the instance config; requests that already started keep the values they read.
    pub fn set_config(&self, config: MockConfig) {
        *self
            .shared
            .config
            .write()
            .unwrap_or_else(PoisonError::into_inner) = config;
    }

    /// The current instance config.
    pub fn config(&self) -> MockConfig {
        self.read_config().clone()
    }

    /// Chat completion requests received (every one, including those answered with an error)
    /// since the start or the last [`reset`](Self::reset).
    pub fn calls(&self) -> usize {
        self.shared.calls.load(Ordering::Relaxed)
    }

    /// Streamed replies whose client closed the connection before the reply's end (never
    /// reset).
    pub fn abandoned(&self) -> usize {
        self.shared.abandoned.load(Ordering::Relaxed)
    }

    /// The bodies of the last [`REQUEST_LOG_CAPACITY`] chat completion requests, oldest first;
    /// bodies that are not JSON are skipped.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        let bodies: Vec<Bytes> = self.lock_requests().iter().cloned().collect();
        bodies
            .iter()
            .filter_map(|body| serde_json::from_slice(body).ok())
            .collect()
    }

    /// Zeroes the call counter and empties the request log.
    pub fn reset(&self) {
        let mut requests = self.lock_requests();
        requests.clear();
        self.shared.calls.store(0, Ordering::Relaxed);
        self.shared
            .faulted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Releases hanging requests (they get a 503) and stops a server started by
    /// [`MockUpstream`]; dropping the `MockUpstream` calls it.
    pub fn stop(&self) {
        self.shared.stopping.send_replace(true);
    }

    /// Resolves once [`stop`](Self::stop) was called.
    fn stopped(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut stopping = self.shared.stopping.subscribe();
        async move {
            // An error means the state is gone, which is a stop as well.
            let _ = stopping.wait_for(|stopping| *stopping).await;
        }
    }

    fn read_config(&self) -> std::sync::RwLockReadGuard<'_, MockConfig> {
        // A panic while holding the lock cannot leave a `MockConfig` half-written.
        self.shared
            .config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn lock_requests(&self) -> std::sync::MutexGuard<'_, VecDeque<Bytes>> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, body: Bytes) {
        self.shared.calls.fetch_add(1, Ordering::Relaxed);
        let mut requests = self.lock_requests();
        if requests.len() >= REQUEST_LOG_CAPACITY {
            requests.pop_front();
        }
        requests.push_back(body);
    }

    /// Counts a request with `faults=N` and says whether its faults still hold: they do for
    /// the first `times` requests whose last user message is `message`.
    fn faults_due(&self, message: String, times: usize) -> bool {
        let mut seen = self
            .shared
            .faulted
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let count = seen.entry(message).or_insert(0);
        *count += 1;
        *count <= times
    }

    /// Checks the bearer token and copies the knobs out, under one short read lock.
    fn admit(&self, headers: &HeaderMap) -> Result<Knobs, MockError> {
        let config = self.read_config();
        authorize(config.api_key.as_deref(), headers)?;
        Ok(config.knobs())
    }
}

impl std::fmt::Debug for MockState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockState")
            .field("calls", &self.calls())
            .finish_non_exhaustive()
    }
}

/// The mock's routes, to serve on a socket or mount in-process (as the offline demo does).
///
/// - `POST /v1/chat/completions` and `POST /chat/completions`: the chat completion endpoint, so
///   a base URL with or without `/v1` works;
/// - `GET /v1/models` and `GET /models`: the model list ([`MODELS`]);
/// - anything else: a 404 with the OpenAI error body.
pub fn router(state: MockState) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/chat/completions", post(chat_completions))
        .route("/v1/models", get(list_models))
        .route("/models", get(list_models))
        .fallback(unknown_route)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn chat_completions(
    State(state): State<MockState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.record(body.clone());
    answer_chat(&state, &headers, &body)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn answer_chat(
    state: &MockState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, MockError> {
    let mut knobs = state.admit(headers)?;
    let request: wire::ChatRequest<'_> =
        serde_json::from_slice(body).map_err(MockError::InvalidBody)?;
    if request.messages.is_empty() {
        return Err(MockError::NoMessages);
    }

    // Headers are read last so they win over a directive: they are the more deliberate of the
    // two, set by the test itself rather than carried through a proxy. Directives come from the
    // last user message even when tool results follow it, so a tool loop keeps its knobs.
    let mut overrides = Overrides::default();
    if let Some(message) = request.last_user_message() {
        for text in message.texts() {
            overrides.read_directives(text)?;
        }
    }
    overrides.read_headers(headers)?;
    overrides.apply(&mut knobs);
    if let Some(times) = overrides.faults() {
        let message: String = request
            .last_user_message()
            .map(|m| m.texts().collect())
            .unwrap_or_default();
        if !state.faults_due(message, times) {
            knobs = knobs.without_faults();
        }
    }
    let echo = overrides.echo().then(|| echo_words(&request));
    let think = overrides.think();
    let tool_knobs = overrides.tools();

    if knobs.hang {
        state.stopped().await;
        return Err(MockError::Stopping);
    }
    if let Some(status) = knobs.status {
        return Err(MockError::Injected {
            status,
            retry_after_secs: knobs.retry_after_secs,
        });
    }

    let prompt_tokens = reply::prompt_tokens(request.prompt_chars());
    if let Some(limit) = knobs.context_tokens {
        check_context(limit, prompt_tokens, request.max_tokens().unwrap_or(0))?;
    }

    // Calls answer the user only: once the last message is a tool result, the reply is text,
    // so a client's tool loop ends.
    let tool_calls = if tool_knobs.names.is_empty() || !request.ends_with_user() {
        Vec::new()
    } else {
        tools::calls(&tool_knobs.names, &request)?
    };

    let mut plan = plan(
        &knobs,
        &request,
        prompt_tokens,
        tool_calls,
        tool_knobs.with_text,
        echo.as_ref().map(Vec::len),
    );
    if think.scripted() {
        scripted(&mut plan, &think, echo.as_deref());
    } else {
        plan.echo = echo;
    }
    let id = format!(
        "chatcmpl-mock{:x}",
        state.shared.next_id.fetch_add(1, Ordering::Relaxed)
    );
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());

    if request.stream == Some(true) {
        delay(knobs.ttft).await;
        let reply = SseReply::new(
            &id,
            created,
            &request.model,
            plan,
            Arc::clone(&state.shared.abandoned),
        );
        return Ok((
            [
                (CONTENT_TYPE, HeaderValue::from_static("text/event-stream")),
                (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            ],
            Body::new(reply),
        )
            .into_response());
    }

    // A non-streamed reply arrives when the last chunk would have.
    let chunks_after_first = u32::try_from(plan.chunks().saturating_sub(1)).unwrap_or(u32::MAX);
    delay(
        knobs
            .ttft
            .saturating_add(knobs.inter_token.saturating_mul(chunks_after_first)),
    )
    .await;
    complete(&id, created, &request.model, &plan)
}

/// Rejects a request whose estimated prompt plus requested completion exceed the context
/// window, as OpenAI does (the reply cap counts even when the reply would be shorter).
fn check_context(limit: usize, prompt_tokens: usize, max_tokens: u64) -> Result<(), MockError> {
    let to_u64 = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
    let (limit, prompt) = (to_u64(limit), to_u64(prompt_tokens));
    if prompt.saturating_add(max_tokens) > limit {
        return Err(MockError::ContextLength {
            limit,
            prompt,
            completion: max_tokens,
        });
    }
    Ok(())
}

/// The fixed shape of a reply from the request's knobs, caps and tool calls.
///
/// With tool calls, the text comes first only with `tool_text`. `max_tokens` caps the text
/// alone: a reply cut short while talking ends with `"length"` and never reaches its calls,
/// as a real model's would; the calls themselves are not capped.
fn plan(
    knobs: &Knobs,
    request: &wire::ChatRequest<'_>,
    prompt_tokens: usize,
    tool_calls: Vec<ToolCall>,
    with_text: bool,
    echo_tokens: Option<usize>,
) -> Plan {
    let cap = request
        .max_tokens()
        .map_or(usize::MAX, |cap| usize::try_from(cap).unwrap_or(usize::MAX));
    let text = if tool_calls.is_empty() || with_text {
        echo_tokens.unwrap_or(knobs.tokens)
    } else {
        0
    };
    let (tokens, tool_calls, finish_reason) = if cap < text {
        (cap, Vec::new(), "length")
    } else if tool_calls.is_empty() {
        (text, tool_calls, "stop")
    } else {
        (text, tool_calls, "tool_calls")
    };
    let completion_tokens = tool_calls
        .iter()
        .map(ToolCall::tokens)
        .fold(tokens, usize::saturating_add);
    Plan {
        tokens,
        tool_calls,
        finish_reason,
        usage: wire::Usage::new(prompt_tokens, completion_tokens),
        include_usage: request.include_usage(),
        inter_token: knobs.inter_token,
        cut_after: knobs.cut_after,
        error_after: knobs.error_after,
        garbage_after: knobs.garbage_after,
        echo: None,
        script: None,
    }
}

/// Makes `plan` the scripted reply `think` asks for: its text (the word list's or `echo`'s)
/// after the reasoning, its calls written inline with `tool_inline`. Usage counts a token per
/// delta and reports the reasoning words as `completion_tokens_details.reasoning_tokens`.
fn scripted(plan: &mut Plan, think: &ThinkKnobs, echo: Option<&[String]>) {
    let words: Vec<&str> = match echo {
        Some(words) => words.iter().take(plan.tokens).map(String::as_str).collect(),
        None => reply::reply_tokens(plan.tokens).collect(),
    };
    let inline_calls = if think.tool_inline {
        std::mem::take(&mut plan.tool_calls)
    } else {
        Vec::new()
    };
    let script = script::script(think, &words, &inline_calls);
    if script.unclosed {
        plan.finish_reason = "length";
        plan.tool_calls.clear();
    } else if !inline_calls.is_empty() {
        // A model served without a tool parser ends a reply of calls as any other.
        plan.finish_reason = "stop";
    }
    plan.tokens = script.deltas.len();
    let completion = plan
        .tool_calls
        .iter()
        .map(ToolCall::tokens)
        .fold(plan.tokens, usize::saturating_add);
    plan.usage = wire::Usage::new(plan.usage.prompt_tokens, completion);
    if script.reasoning_words > 0 {
        plan.usage.completion_tokens_details = Some(wire::CompletionTokensDetails {
            reasoning_tokens: script.reasoning_words,
        });
    }
    plan.script = Some(script);
}

/// The tokens of an `echo` reply: the last user message's text without its directives, cut
/// after each run of whitespace (a word and the spaces after it).
fn echo_words(request: &wire::ChatRequest<'_>) -> Vec<String> {
    let text: Vec<String> = request
        .last_user_message()
        .map(|message| message.texts().map(without_directives).collect())
        .unwrap_or_default();
    let text = text.join("\n");
    let mut words = Vec::new();
    let mut word = String::new();
    let mut chars = text.trim().chars().peekable();
    while let Some(c) = chars.next() {
        word.push(c);
        let ends = c.is_whitespace() && chars.peek().is_none_or(|next| !next.is_whitespace());
        if ends {
            words.push(std::mem::take(&mut word));
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// A non-streamed reply; the stream failure knobs map onto whole-body failures when they would
/// fire within the reply (error → 500, cut → half a body then a dropped connection, garbage →
/// a body that is not JSON).
fn complete(id: &str, created: u64, model: &str, plan: &Plan) -> Result<Response, MockError> {
    let fires = |knob: Option<usize>| knob.is_some_and(|after| after <= plan.chunks());
    if fires(plan.error_after) {
        return Err(MockError::Failed);
    }
    let json_headers = [(CONTENT_TYPE, HeaderValue::from_static("application/json"))];
    if fires(plan.garbage_after) {
        return Ok((json_headers, "{not json").into_response());
    }
    let text = match (&plan.script, &plan.echo) {
        (Some(script), _) => script.text(Field::Content).unwrap_or_default(),
        (None, Some(words)) => words.iter().take(plan.tokens).map(String::as_str).collect(),
        (None, None) => reply::reply_text(plan.tokens),
    };
    let reasoning_content = plan
        .script
        .as_ref()
        .and_then(|s| s.text(Field::ReasoningContent));
    let reasoning = plan.script.as_ref().and_then(|s| s.text(Field::Reasoning));
    // A reply of calls only has `content: null`, as OpenAI sends it.
    let content = (plan.tool_calls.is_empty() || !text.is_empty()).then_some(text.as_str());
    let tool_calls: Vec<wire::ToolCallOut<'_>> = plan
        .tool_calls
        .iter()
        .map(|call| wire::ToolCallOut {
            id: &call.id,
            kind: "function",
            function: wire::FunctionCallOut {
                name: &call.name,
                arguments: &call.arguments,
            },
        })
        .collect();
    let completion = wire::ChatCompletion {
        id,
        object: "chat.completion",
        created,
        model,
        system_fingerprint: wire::SYSTEM_FINGERPRINT,
        choices: [wire::Choice {
            index: 0,
            message: wire::AssistantMessage {
                role: "assistant",
                content,
                reasoning_content: reasoning_content.as_deref(),
                reasoning: reasoning.as_deref(),
                refusal: None,
                tool_calls,
            },
            logprobs: None,
            finish_reason: plan.finish_reason,
        }],
        usage: plan.usage,
    };
    if fires(plan.cut_after) {
        let mut body = serde_json::to_vec(&completion).map_err(MockError::Serialize)?;
        body.truncate(body.len() / 2);
        return Ok((json_headers, Body::new(CutBody::new(Bytes::from(body)))).into_response());
    }
    Ok(Json(completion).into_response())
}

async fn list_models(State(state): State<MockState>, headers: HeaderMap) -> Response {
    if let Err(error) = state.admit(&headers) {
        return error.into_response();
    }
    let data = MODELS
        .iter()
        .map(|&id| wire::Model {
            id,
            object: "model",
            created: 0,
            owned_by: "NousResearch",
        })
        .collect();
    Json(wire::ModelList {
        object: "list",
        data,
    })
    .into_response()
}

async fn unknown_route() -> MockError {
    MockError::UnknownRoute
}

/// Sleeps for `duration`, without touching the timer wheel when it is zero.
async fn delay(duration: Duration) {
    if !duration.is_zero() {
        tokio::time::sleep(duration).await;
    }
}

fn authorize(api_key: Option<&str>, headers: &HeaderMap) -> Result<(), MockError> {
    let Some(expected) = api_key else {
        return Ok(());
    };
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            value
                .strip_prefix("Bearer ")
                .or_else(|| value.strip_prefix("bearer "))
        })
        .ok_or(MockError::MissingKey)?;
    if presented.trim() == expected {
        Ok(())
    } else {
        Err(MockError::WrongKey)
    }
}

/// Every way a request ends in an error answer; [`IntoResponse`] is the only place the
/// OpenAI error body is built.
#[derive(Debug, thiserror::Error)]
enum MockError {
    #[error("no bearer token")]
    MissingKey,
    #[error("wrong bearer token")]
    WrongKey,
    #[error("body is not a chat completion request")]
    InvalidBody(#[source] serde_json::Error),
    #[error("`messages` is empty")]
    NoMessages,
    #[error(transparent)]
    Override(#[from] OverrideError),
    #[error("{prompt} prompt + {completion} completion tokens exceed the context of {limit}")]
    ContextLength {
        limit: u64,
        prompt: u64,
        completion: u64,
    },
    #[error(transparent)]
    UnknownTool(#[from] UnknownTool),
    #[error("status {status} injected by the config")]
    Injected { status: u16, retry_after_secs: u64 },
    #[error("failure injected by `error_after`")]
    Failed,
    #[error("could not serialize the reply")]
    Serialize(#[source] serde_json::Error),
    #[error("mock is stopping")]
    Stopping,
    #[error("no such route")]
    UnknownRoute,
}

impl IntoResponse for MockError {
    fn into_response(self) -> Response {
        const INVALID_REQUEST: &str = "invalid_request_error";
        const SERVER_ERROR: &str = "server_error";

        let mut retry_after_secs = None;
        let (status, kind, code, message): (StatusCode, &str, &str, String) = match &self {
            Self::MissingKey => (
                StatusCode::UNAUTHORIZED,
                INVALID_REQUEST,
                "invalid_api_key",
                "You didn't provide an API key in an `Authorization: Bearer` header.".into(),
            ),
            Self::WrongKey => (
                StatusCode::UNAUTHORIZED,
                INVALID_REQUEST,
                "invalid_api_key",
                "Incorrect API key provided.".into(),
            ),
            Self::InvalidBody(source) => {
                let code = if source.is_data() {
                    "invalid_request"
                } else {
                    "invalid_json"
                };
                (
                    StatusCode::BAD_REQUEST,
                    INVALID_REQUEST,
                    code,
                    format!("The request body is not a valid chat completion request: {source}."),
                )
            }
            Self::NoMessages => (
                StatusCode::BAD_REQUEST,
                INVALID_REQUEST,
                "invalid_request",
                "`messages` must contain at least one message.".into(),
            ),
            Self::Override(source) => (
                StatusCode::BAD_REQUEST,
                INVALID_REQUEST,
                "invalid_mock_directive",
                format!("The mock directive or `x-mock-*` header is invalid: {source}."),
            ),
            Self::ContextLength {
                limit,
                prompt,
                completion,
            } => (
                StatusCode::BAD_REQUEST,
                INVALID_REQUEST,
                "context_length_exceeded",
                format!(
                    "This model's maximum context length is {limit} tokens. However, you \
                     requested {} tokens ({prompt} in the messages, {completion} in the \
                     completion).",
                    prompt.saturating_add(*completion)
                ),
            ),
            Self::UnknownTool(source) => (
                StatusCode::BAD_REQUEST,
                INVALID_REQUEST,
                "unknown_tool",
                format!("The mock cannot make the tool calls it was asked for: {source}."),
            ),
            Self::Injected {
                status,
                retry_after_secs: secs,
            } => {
                let status =
                    StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let (kind, code) = match status {
                    StatusCode::TOO_MANY_REQUESTS => ("requests", "rate_limit_exceeded"),
                    StatusCode::SERVICE_UNAVAILABLE => (SERVER_ERROR, "service_unavailable"),
                    status if status.is_server_error() => (SERVER_ERROR, "mock_status"),
                    _ => (INVALID_REQUEST, "mock_status"),
                };
                if matches!(
                    status,
                    StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
                ) {
                    retry_after_secs = Some(*secs);
                }
                (
                    status,
                    kind,
                    code,
                    format!("The mock upstream answered {status} on purpose."),
                )
            }
            Self::Failed => (
                StatusCode::INTERNAL_SERVER_ERROR,
                SERVER_ERROR,
                "mock_error",
                "The mock upstream failed the completion on purpose.".into(),
            ),
            Self::Serialize(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                SERVER_ERROR,
                "internal_error",
                "The mock upstream could not serialize its reply.".into(),
            ),
            Self::Stopping => (
                StatusCode::SERVICE_UNAVAILABLE,
                SERVER_ERROR,
                "mock_stopping",
                "The mock upstream is shutting down.".into(),
            ),
            Self::UnknownRoute => (
                StatusCode::NOT_FOUND,
                INVALID_REQUEST,
                "unknown_url",
                "Unknown request URL.".into(),
            ),
        };
        if status.is_server_error() && !matches!(self, Self::Injected { .. } | Self::Failed) {
            tracing::warn!(error = ?self, "mock upstream answered {status}");
        }

        let param = match self {
            Self::ContextLength { .. } => Some("messages"),
            Self::UnknownTool(_) => Some("tools"),
            _ => None,
        };
        let body = wire::ErrorBody {
            error: wire::ErrorDetail {
                message: &message,
                kind,
                param,
                code,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(secs) = retry_after_secs {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// A mock served on a loopback socket, and the handle to steer and observe it.
///
/// Dropping it stops the server: new connections are refused, hanging requests get a 503, and
/// replies in flight finish.
///
/// # Example
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// use mock_upstream::{MockConfig, MockUpstream};
///
/// let mock = MockUpstream::start(MockConfig::default().with_tokens(3)).await?;
/// let url = format!("{}/chat/completions", mock.base_url());
/// // … point the client under test at `url` …
/// assert_eq!(mock.calls(), 0);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct MockUpstream {
    state: MockState,
    addr: SocketAddr,
}

impl MockUpstream {
    /// Serves a mock on `127.0.0.1` at a free port.
    ///
    /// # Errors
    /// - the socket cannot be bound.
    pub async fn start(config: MockConfig) -> io::Result<Self> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config).await
    }

    /// Serves a mock on `addr` (port 0 picks a free port) in a background task.
    ///
    /// Must be called inside a Tokio runtime; the server lives until the handle is dropped.
    ///
    /// # Errors
    /// - `addr` cannot be bound (in use, not local, no permission).
    pub async fn start_on(addr: SocketAddr, config: MockConfig) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let state = MockState::new(config);
        // Chunks are written deliberately one event at a time; Nagle would merge and delay them.
        let listener = listener.tap_io(|tcp| {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, "could not set TCP_NODELAY");
            }
        });
        let server =
            axum::serve(listener, router(state.clone())).with_graceful_shutdown(state.stopped());
        tokio::spawn(async move {
            if let Err(error) = server.await {
                tracing::error!(%error, "mock upstream server failed");
            }
        });
        Ok(Self { state, addr })
    }

    /// The socket address the mock listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The OpenAI base URL of the mock, `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The shared state, for a caller that wants to hold on to it.
    pub fn state(&self) -> &MockState {
        &self.state
    }

    /// See [`MockState::set_config`].
    pub fn set_config(&self, config: MockConfig) {
        self.state.set_config(config);
    }

    /// See [`MockState::calls`].
    pub fn calls(&self) -> usize {
        self.state.calls()
    }

    /// See [`MockState::abandoned`].
    pub fn abandoned(&self) -> usize {
        self.state.abandoned()
    }

    /// See [`MockState::requests`].
    pub fn requests(&self) -> Vec<serde_json::Value> {
        self.state.requests()
    }

    /// See [`MockState::reset`].
    pub fn reset(&self) {
        self.state.reset();
    }
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        self.state.stop();
    }
}
