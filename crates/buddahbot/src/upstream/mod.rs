//! The model API client: one pooled HTTP client per process, talking the OpenAI
//! chat-completions protocol to the Nous inference API (or the mock).
//!
//! [`Upstream::stream`] returns only once the first chunk has arrived, so the caller can still
//! answer a proper status (429, 502, 504) for everything that fails before it. What fails
//! after it arrives as an `Err` item of the stream. This module does not know about threads,
//! storage or our own HTTP API.

pub mod chunk;
pub mod markup;
pub mod sse;
pub mod tool_calls;
pub mod wire;

use std::{borrow::Cow, ops::ControlFlow, time::Duration};

use futures_util::{FutureExt, StreamExt};
use http_body_util::{BodyDataStream, BodyExt, Full};
use hyper::{
    Method, Request, Response, StatusCode, Uri,
    body::Incoming,
    header::{self, HeaderValue},
};
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::{TokioExecutor, TokioTimer},
};
use secrecy::ExposeSecret;
use url::Url;

use crate::config::UpstreamConfig;
use axum::body::Bytes;
use sse::SseScanner;
use wire::{ChatCompletion, ChatCompletionRequest, ChunkView};

/// Bytes [`ReplyStream::fill`] takes at most beyond its first frame, so a fast reply still
/// reaches the client in pieces of about this size.
const FILL_BYTES: usize = 16 * 1024;

/// Longest error body kept from a failed upstream response (for logs only).
const ERROR_SNIPPET_BYTES: usize = 512;

/// Which wait ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutKind {
    /// No first chunk (or, without streaming, no answer) within `UPSTREAM_TTFT_TIMEOUT_MS`.
    FirstToken,
    /// The reply went on past `CHAT_MAX_DURATION_MS`.
    Reply,
}

/// Why the model API did not give us a (whole) reply.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot reach the model api")]
    Connect(#[source] hyper_util::client::legacy::Error),
    #[error("the model api timed out ({0:?})")]
    Timeout(TimeoutKind),
    #[error("the model api answered {status}: {body_snippet}")]
    Status {
        status: StatusCode,
        retry_after: Option<HeaderValue>,
        body_snippet: String,
    },
    #[error("the model api broke the protocol: {0}")]
    Protocol(String),
    #[error("the model api connection failed mid-reply")]
    Stream(#[source] hyper::Error),
    #[error("the model api reported an error mid-reply: {message}")]
    Remote { message: String },
}

impl UpstreamError {
    /// The model API answered 429.
    pub fn is_rate_limit(&self) -> bool {
        matches!(self, Self::Status { status, .. } if *status == StatusCode::TOO_MANY_REQUESTS)
    }

    /// The model API refused the prompt as longer than its context window (OpenAI's
    /// `context_length_exceeded`, which vLLM and most compatible APIs also send).
    pub fn is_context_length(&self) -> bool {
        matches!(self, Self::Status { status, body_snippet, .. }
            if *status == StatusCode::BAD_REQUEST && body_snippet.contains("context_length_exceeded"))
    }

    /// Whether trying another model could help: rate limits, server errors, timeouts and
    /// connection failures, but not a request the API refused as malformed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Connect(_) | Self::Timeout(_) | Self::Stream(_) => true,
            Self::Status { status, .. } => {
                *status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
            }
            Self::Protocol(_) | Self::Remote { .. } => false,
        }
    }
}

/// One streamed chunk: its `data:` payload exactly as received (to forward) and what the turn
/// reads of it, both borrowed from the read buffer.
#[derive(Debug)]
pub struct Chunk<'a> {
    pub raw: &'a [u8],
    pub view: ChunkView<'a>,
}

/// The body of a streamed reply, read as it arrives.
type BodyStream = BodyDataStream<Incoming>;

/// The pooled HTTP(S) client (keep-alive connections, `TCP_NODELAY`).
type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A streamed reply that has started: its first chunk has arrived (and waits in the buffer
/// to be read like the rest). Read it by alternating [`ReplyStream::drain`], which hands
/// out every chunk already received, and [`ReplyStream::fill`], which waits for more bytes.
pub struct ReplyStream {
    body: BodyStream,
    scanner: SseScanner,
    /// What the chunks read so far say about the next ones.
    shape: chunk::Shape,
    /// `[DONE]` arrived.
    done: bool,
    /// How the body ended, when that was found while taking ready frames.
    ended: Option<Result<(), UpstreamError>>,
}

/// What [`ReplyStream::drain`] left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drained {
    /// The chunks received so far are read; more are to come.
    More,
    /// The reader stopped early: chunks received are still to be read, without waiting.
    Held,
    /// The reply is complete (`[DONE]`).
    Done,
}

/// How one event of the stream reads.
enum Event<'a> {
    Chunk(ChunkView<'a>),
    Done,
    /// An error report (`{"error": …}`).
    Remote(String),
    /// Nothing to read: empty, or not a chunk (logged).
    Skip,
}

fn classify<'a>(data: &'a [u8], shape: &mut chunk::Shape) -> Event<'a> {
    if data == b"[DONE]" {
        return Event::Done;
    }
    if data.is_empty() {
        return Event::Skip;
    }
    // The chunk reader (most chunks are read from the shape of the one before) takes text;
    // serde reads the rare event with a stray byte (in a field we skip, it reads fine).
    let parsed = match std::str::from_utf8(data) {
        Ok(text) => shape.read(text).map_err(|err| err.to_string()),
        Err(_) => serde_json::from_slice::<ChunkView<'_>>(data).map_err(|err| err.to_string()),
    };
    match parsed {
        Ok(ChunkView {
            error: Some(error), ..
        }) => Event::Remote(
            error
                .message
                .map_or_else(|| "unspecified error".to_owned(), Cow::into_owned),
        ),
        Ok(view) => Event::Chunk(view),
        Err(error) => {
            tracing::warn!(event = %String::from_utf8_lossy(data), %error, "skipping an upstream event that is not a chunk");
            Event::Skip
        }
    }
}

impl ReplyStream {
    fn new(response: Response<Incoming>) -> Self {
        Self {
            body: response.into_body().into_data_stream(),
            scanner: SseScanner::new(),
            shape: chunk::Shape::default(),
            done: false,
            ended: None,
        }
    }

    /// Waits until the first chunk has arrived, leaving it to be read.
    async fn first_chunk(&mut self) -> Result<(), UpstreamError> {
        loop {
            let shape = &mut self.shape;
            match self.scanner.peek_event().map(|data| classify(data, shape)) {
                Some(Event::Chunk(_)) => return Ok(()),
                Some(Event::Done) => {
                    return Err(UpstreamError::Protocol(
                        "the stream ended before any chunk".into(),
                    ));
                }
                Some(Event::Remote(message)) => return Err(UpstreamError::Remote { message }),
                Some(Event::Skip) => {
                    self.scanner.next_event();
                }
                None => {
                    // The first chunk leaves as soon as it is here.
                    if !self.fill_up_to(0).await? {
                        return Err(UpstreamError::Protocol(
                            "the stream ended before any chunk".into(),
                        ));
                    }
                }
            }
        }
    }

    /// Hands every chunk received so far to `on_chunk`, in order, without waiting, until it
    /// says to stop ([`Drained::Held`]).
    ///
    /// # Errors
    /// [`UpstreamError::Remote`] when the API reported an error in the stream.
    pub fn drain(
        &mut self,
        mut on_chunk: impl FnMut(Chunk<'_>) -> ControlFlow<()>,
    ) -> Result<Drained, UpstreamError> {
        while !self.done {
            let Some(raw) = self.scanner.next_event() else {
                return Ok(Drained::More);
            };
            match classify(raw, &mut self.shape) {
                Event::Chunk(view) => {
                    if on_chunk(Chunk { raw, view }).is_break() {
                        return Ok(Drained::Held);
                    }
                }
                Event::Done => self.done = true,
                Event::Remote(message) => return Err(UpstreamError::Remote { message }),
                Event::Skip => {}
            }
        }
        Ok(Drained::Done)
    }

    /// Waits for the next bytes of the reply and takes every body frame that is ready with
    /// them (the API sends each event as an HTTP chunk of its own, and one network read
    /// brings many); `false` when the connection closed.
    ///
    /// # Errors
    /// [`UpstreamError::Stream`] when the connection failed.
    ///
    /// Not `greedy`, it takes only the next frame: for the first text, which should leave
    /// at once.
    pub async fn fill(&mut self, greedy: bool) -> Result<bool, UpstreamError> {
        self.fill_up_to(if greedy { FILL_BYTES } else { 0 }).await
    }

    /// [`ReplyStream::fill`], taking at most `more` bytes beyond the first frame.
    async fn fill_up_to(&mut self, more: usize) -> Result<bool, UpstreamError> {
        if let Some(ended) = self.ended.take() {
            return ended.map(|()| false);
        }
        match self.body.next().await {
            Some(Ok(bytes)) => self.scanner.feed(&bytes),
            Some(Err(err)) => return Err(UpstreamError::Stream(err)),
            None => return Ok(false),
        }
        let mut taken = 0;
        while taken < more {
            // The client's connection task hands the body over one HTTP chunk at a time:
            // let it run, then take what it has without waiting.
            let_others_run().await;
            let Some(next) = self.body.next().now_or_never() else {
                break;
            };
            match next {
                Some(Ok(bytes)) => {
                    taken += bytes.len();
                    self.scanner.feed(&bytes);
                }
                // Reported by the next call, after what arrived before it is read.
                Some(Err(err)) => {
                    self.ended = Some(Err(UpstreamError::Stream(err)));
                    break;
                }
                None => {
                    self.ended = Some(Ok(()));
                    break;
                }
            }
        }
        Ok(true)
    }

    /// Takes the next body frame if it is already here, without waiting; `false` when none
    /// is (or the body ended: the next [`ReplyStream::fill`] says how).
    ///
    /// # Errors
    /// [`UpstreamError::Stream`] when the connection failed.
    pub async fn try_fill(&mut self) -> Result<bool, UpstreamError> {
        if self.ended.is_some() {
            return Ok(false);
        }
        let_others_run().await;
        match self.body.next().now_or_never() {
            None => Ok(false),
            Some(Some(Ok(bytes))) => {
                self.scanner.feed(&bytes);
                Ok(true)
            }
            Some(Some(Err(err))) => Err(UpstreamError::Stream(err)),
            Some(None) => {
                self.ended = Some(Ok(()));
                Ok(false)
            }
        }
    }

    /// An error for a connection that closed before `[DONE]`: the reply is incomplete.
    pub fn ended_early() -> UpstreamError {
        UpstreamError::Protocol("the stream ended without [DONE]".into())
    }
}

/// The model API client. Cheap to clone.
#[derive(Clone)]
pub struct Upstream {
    client: HttpClient,
    url: Url,
    /// `{base}/chat/completions` and `{base}/models`, parsed once.
    uri: Uri,
    models_uri: Uri,
    auth: HeaderValue,
    ttft_timeout: Duration,
}

impl Upstream {
    /// Builds the client (no I/O): HTTP/1.1, kept-alive connections idle up to 90 s,
    /// `TCP_NODELAY`, TLS by rustls with the bundled Mozilla roots.
    ///
    /// # Errors
    /// [`UpstreamError::Protocol`] when the key cannot be a header, the base URL cannot be a
    /// request target or the TLS backend fails to initialise.
    pub fn new(config: &UpstreamConfig) -> Result<Self, UpstreamError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(config.connect_timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| UpstreamError::Protocol(format!("cannot set up TLS: {e}")))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_timer(TokioTimer::new())
            .build(https);
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", config.api_key.expose_secret()))
            .map_err(|_| UpstreamError::Protocol("the api key is not a valid header".into()))?;
        auth.set_sensitive(true);
        let url = endpoint(&config.base_url, &["chat", "completions"])?;
        let models_url = endpoint(&config.base_url, &["models"])?;
        Ok(Self {
            client,
            uri: target(&url)?,
            models_uri: target(&models_url)?,
            url,
            auth,
            ttft_timeout: config.ttft_timeout,
        })
    }

    /// Sends a streaming request and waits (at most the first-token timeout) for the first
    /// chunk.
    ///
    /// # Errors
    /// `Connect`, `Timeout(FirstToken)`, `Status` for a non-2xx answer, `Protocol` for a body
    /// that is not an event stream or a stream that ends before any chunk, `Remote` when the
    /// first event is an error.
    pub async fn stream(
        &self,
        request: &ChatCompletionRequest<'_>,
    ) -> Result<ReplyStream, UpstreamError> {
        let opened = tokio::time::timeout(self.ttft_timeout, async {
            let response = self.send(request).await?;
            let is_sse = response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|ct| ct.starts_with("text/event-stream"));
            if !is_sse {
                return Err(UpstreamError::Protocol(
                    "a streaming request was not answered with an event stream".into(),
                ));
            }
            let mut reply = ReplyStream::new(response);
            reply.first_chunk().await?;
            Ok(reply)
        })
        .await;
        opened.unwrap_or(Err(UpstreamError::Timeout(TimeoutKind::FirstToken)))
    }

    /// Sends a non-streaming request; returns the raw JSON body (to pass on) and its parse.
    ///
    /// # Errors
    /// As [`Upstream::stream`]; `Protocol` when the body is not a `chat.completion`.
    pub async fn complete(
        &self,
        request: &ChatCompletionRequest<'_>,
    ) -> Result<(Bytes, ChatCompletion), UpstreamError> {
        self.complete_within(request, self.ttft_timeout).await
    }

    /// [`Upstream::complete`] with its own time limit (a background job's, not a waiting
    /// client's).
    ///
    /// # Errors
    /// As [`Upstream::complete`].
    pub async fn complete_within(
        &self,
        request: &ChatCompletionRequest<'_>,
        limit: Duration,
    ) -> Result<(Bytes, ChatCompletion), UpstreamError> {
        let answered = tokio::time::timeout(limit, async {
            let response = self.send(request).await?;
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(UpstreamError::Stream)?
                .to_bytes();
            let parsed: ChatCompletion = serde_json::from_slice(&body)
                .map_err(|e| UpstreamError::Protocol(format!("not a chat.completion: {e}")))?;
            Ok((body, parsed))
        })
        .await;
        answered.unwrap_or(Err(UpstreamError::Timeout(TimeoutKind::FirstToken)))
    }

    /// The API's host, for health reports (never the key).
    pub fn host(&self) -> &str {
        self.url.host_str().unwrap_or_default()
    }

    /// Asks `GET {base}/models` within `timeout`, to tell whether the API is reachable and
    /// accepts our key.
    ///
    /// # Errors
    /// `Connect`, `Timeout(FirstToken)` or `Status` as for a chat request.
    pub async fn probe(&self, timeout: Duration) -> Result<(), UpstreamError> {
        let request = self.request(Method::GET, &self.models_uri, Bytes::new())?;
        let response = tokio::time::timeout(timeout, self.client.request(request))
            .await
            .map_err(|_| UpstreamError::Timeout(TimeoutKind::FirstToken))?
            .map_err(UpstreamError::Connect)?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(UpstreamError::Status {
                status,
                retry_after: None,
                body_snippet: String::new(),
            })
        }
    }

    /// A request to `uri` with our key, and `body` as JSON unless it is empty.
    fn request(
        &self,
        method: Method,
        uri: &Uri,
        body: Bytes,
    ) -> Result<Request<Full<Bytes>>, UpstreamError> {
        let mut builder = Request::builder()
            .method(method)
            .uri(uri.clone())
            .header(header::AUTHORIZATION, self.auth.clone());
        if !body.is_empty() {
            builder = builder.header(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
        builder
            .body(Full::new(body))
            .map_err(|e| UpstreamError::Protocol(format!("cannot make the request: {e}")))
    }

    async fn send(
        &self,
        request: &ChatCompletionRequest<'_>,
    ) -> Result<Response<Incoming>, UpstreamError> {
        let body = serde_json::to_vec(request)
            .map_err(|e| UpstreamError::Protocol(format!("cannot write the request: {e}")))?;
        let request = self.request(Method::POST, &self.uri, Bytes::from(body))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(UpstreamError::Connect)?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
        let body = response
            .into_body()
            .collect()
            .await
            .map(http_body_util::Collected::to_bytes)
            .unwrap_or_default();
        let cut = body.len().min(ERROR_SNIPPET_BYTES);
        Err(UpstreamError::Status {
            status,
            retry_after,
            body_snippet: String::from_utf8_lossy(&body[..cut]).into_owned(),
        })
    }
}

/// Lets the tasks that are ready run before this one goes on, without waiting for I/O.
///
/// Tokio's own `yield_now` defers the task until the I/O driver has been polled, a syscall
/// each time; a task that wakes itself instead goes to the back of the run queue, behind the
/// connection task that has the next chunk decoded.
async fn let_others_run() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await;
}

/// A URL as a request target.
fn target(url: &Url) -> Result<Uri, UpstreamError> {
    url.as_str().parse().map_err(|e| {
        UpstreamError::Protocol(format!("the model api url is not a request target: {e}"))
    })
}

/// `{base}/<segments>`. `Url::join` would drop the last segment of a base without a trailing
/// slash (`…/v1`), so segments are appended.
fn endpoint(base: &Url, segments: &[&str]) -> Result<Url, UpstreamError> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|()| UpstreamError::Protocol("the base url cannot take a path".into()))?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

#[cfg(test)]
mod tests {
    use mock_upstream::{MockConfig, MockUpstream};

    use super::*;
    use crate::{
        domain::Role,
        upstream::wire::{PromptMessage, StreamOptions},
    };

    /// A stream of the mock's whole `tokens`-token reply (no delays), every byte of it read
    /// (not yet drained).
    async fn whole_reply(mock: &MockUpstream, tokens: usize) -> ReplyStream {
        let upstream = Upstream::new(&UpstreamConfig {
            api_key: "sk-test".to_owned().into(),
            base_url: mock.base_url().parse().unwrap(),
            default_model: "Hermes-4-70B".to_owned(),
            allowed_models: Vec::new(),
            fallback_model: None,
            connect_timeout: Duration::from_secs(2),
            ttft_timeout: Duration::from_secs(5),
        })
        .unwrap();
        let messages = [PromptMessage::new(
            Role::User,
            format!("hi [[mock tokens={tokens}]]"),
        )];
        let request = ChatCompletionRequest {
            model: "Hermes-4-70B",
            messages: &messages,
            temperature: None,
            max_tokens: None,
            stream: true,
            stream_options: Some(StreamOptions {
                include_usage: true,
            }),
            tools: Vec::new(),
            tool_choice: None,
            top_p: None,
            response_format: None,
            parallel_tool_calls: None,
        };
        let mut reply = upstream.stream(&request).await.unwrap();
        while reply.fill(true).await.unwrap() {}
        reply
    }

    #[tokio::test]
    async fn a_drain_told_to_stop_leaves_the_rest_for_the_next_one() {
        let mock = MockUpstream::start(MockConfig::default().with_api_key("sk-test"))
            .await
            .unwrap();
        let mut reply = whole_reply(&mock, 8).await;

        // Stopped at the first chunk with text: the role chunk before it, nothing after.
        let mut first = Vec::new();
        let drained = reply.drain(|chunk| {
            let text: Option<String> = chunk
                .view
                .choices
                .first()
                .and_then(|c| c.delta.content.as_deref())
                .map(str::to_owned);
            first.push(text.clone());
            if text.is_some_and(|t| !t.is_empty()) {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        });
        assert_eq!(drained.unwrap(), Drained::Held);
        assert!(first.len() <= 2, "read past the first text: {first:?}");
        let first_text = first.last().cloned().flatten().unwrap();

        // The next drain reads every chunk left, to `[DONE]`, without waiting for anything.
        let mut rest = String::new();
        let mut usage = false;
        let drained = reply.drain(|chunk| {
            if let Some(text) = chunk
                .view
                .choices
                .first()
                .and_then(|c| c.delta.content.as_deref())
            {
                rest.push_str(text);
            }
            usage |= chunk.view.usage.is_some();
            ControlFlow::Continue(())
        });
        assert_eq!(drained.unwrap(), Drained::Done);
        assert_eq!(
            format!("{first_text}{rest}"),
            mock_upstream::reply_text(8),
            "a chunk was lost or read twice"
        );
        assert!(usage, "the usage chunk was not read");
    }
}
