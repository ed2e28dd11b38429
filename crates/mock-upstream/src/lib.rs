//! An OpenAI-compatible mock of the chat completions API (the Nous Research inference API with
//! models `Hermes-4-405B` and `Hermes-4-70B`), for integration tests, benchmarks and the offline
//! demo.
//!
//! It answers `POST /v1/chat/completions` (and `/chat/completions`) with a deterministic reply,
//! streamed as `chat.completion.chunk` events or as one `chat.completion` object, and can be
//! told to be slow, to fail in the ways a real upstream does, or to call the request's tools.
//! It is built to stay far below a
//! benchmark's noise: a reply without delays is one template, one buffer and one socket write.
//!
//! # Example
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use std::time::Duration;
//! use mock_upstream::{MockConfig, MockUpstream, reply_text};
//!
//! let mock = MockUpstream::start(MockConfig::default().with_tokens(4)).await?;
//! // Point the client under test at `mock.base_url()`; it will read `reply_text(4)`.
//! mock.set_config(MockConfig::default().with_ttft(Duration::from_millis(300)));
//! assert_eq!(mock.calls(), 0);
//! # Ok(())
//! # }
//! ```
//!
//! # The reply
//! `tokens` content chunks, chunk `i` carrying word `i` of a fixed word list with a trailing
//! space, so [`reply_text`] and [`reply_tokens`] predict it. A stream sends the role chunk
//! (`delta: {"role":"assistant","content":""}`), the content chunks, a finish chunk
//! (`finish_reason` `"stop"`, or `"length"` when `max_tokens`/`max_completion_tokens` is below
//! `tokens`), the usage chunk (`choices: []`) only when `stream_options.include_usage` is true
//! (every earlier chunk then carries `"usage": null`), and `data: [DONE]`. `prompt_tokens` is
//! [`prompt_tokens`] of the characters of all message text and tool-call arguments (see
//! [Context length](#context-length) for exactly what counts). A reply may instead be, or end
//! with, tool calls: see [Tool calls](#tool-calls).
//!
//! # Knobs
//! A [`MockConfig`] sets the instance defaults (changeable at run time with
//! [`MockUpstream::set_config`]); each request may override any knob except the API key, and
//! the tool knobs exist per request only (no `MockConfig` field):
//!
//! | knob | directive key | header | effect |
//! |---|---|---|---|
//! | `tokens` | `tokens` | `x-mock-tokens` | reply length in tokens (default 16) |
//! | `ttft` | `ttft_ms` | `x-mock-ttft-ms` | delay before the response head, which leaves with the first chunk |
//! | `inter_token` | `inter_token_ms` | `x-mock-inter-token-ms` | delay between content chunks |
//! | `status` | `status` | `x-mock-status` | answer this 4xx/5xx with an OpenAI error body at once |
//! | `retry_after_secs` | `retry_after_secs` | `x-mock-retry-after-secs` | `retry-after` of an injected 429/503 (default 1) |
//! | `hang_before_headers` | `hang` | `x-mock-hang` | never answer, until the client gives up or the mock stops |
//! | `cut_after` | `cut_after` | `x-mock-cut-after` | drop the connection after N content chunks (no clean end) |
//! | `error_after` | `error_after` | `x-mock-error-after` | after N content chunks send `data: {"error":{…,"code":"mock_error"}}` and end without `[DONE]` |
//! | `garbage_after` | `garbage_after` | `x-mock-garbage-after` | after N content chunks send one `data: {not json` event, then carry on |
//! | `context_tokens` | `context_tokens` | `x-mock-context-tokens` | context window: prompt estimate + `max_tokens` above N is a 400 `context_length_exceeded` (see below) |
//! | — | `tool_calls` | `x-mock-tool-calls` | `NAME[,NAME…]`: when the last message is the user's, answer with one call per name, in order (see below) |
//! | — | `tool_text` | `x-mock-tool-text` | with `tool_calls`: send the `tokens` text reply first, then the calls |
//! | — | `echo` | `x-mock-echo` | reply with the last user message's text, directives taken out, a word (with the whitespace after it) per chunk, instead of the word list; `tokens` is ignored |
//! | — | `think` | `x-mock-think` | reason first: N words of [`reasoning_text`] (see [Reasoning](#reasoning)) |
//! | — | `think_as` | `x-mock-think-as` | where the reasoning goes: `inline` (default, in `<think>` tags), `reasoning_content` or `reasoning` (a delta field of its own) |
//! | — | `think_close` | `x-mock-think-close` | `0`: the inline reasoning never closes; no answer, `finish_reason: "length"` |
//! | — | `split_at` | `x-mock-split-at` | `P[,P…]`: cut the content (tags, reasoning, answer, inline calls) into chunks at these byte offsets instead of a chunk per word |
//! | — | `faults` | `x-mock-faults` | `N`: the failure knobs (`status`, `hang`, `cut_after`, `error_after`, `garbage_after`) hold for the first N requests whose last user message is the same text only; later ones are answered cleanly (a client's retry succeeds) |
//! | — | `tool_inline` | `x-mock-tool-inline` | with `tool_calls`: write each call into the content as `<tool_call>{"name", "arguments"}</tool_call>` (as Hermes does without a tool parser), `finish_reason: "stop"` |
//!
//! Precedence, lowest first: the instance config, directives, headers. Headers are for direct
//! tests; directives exist because a proxy in front of the mock forwards only the messages.
//! A non-streamed reply arrives after `ttft + inter_token × (tokens − 1)`; there, a failure knob
//! that would fire within the reply turns into a 500 (`error_after`), half a JSON body and a
//! dropped connection (`cut_after`), or a body that is not JSON (`garbage_after`).
//!
//! # Directive syntax
//! A directive is text inside the **last message with role `user`** (string content or any
//! `text` part), even when assistant or tool messages follow it, so the knobs of a tool loop's
//! first request hold for its follow-ups too (all but `tool_calls`, see below):
//!
//! ```text
//! [[mock tokens=3 ttft_ms=0 inter_token_ms=200 status=429 cut_after=2 error_after=2 garbage_after=1 hang=1]]
//! [[mock tool_calls=get_weather,get_time tool_text=1 context_tokens=8192]]
//! [[mock echo=1 inter_token_ms=50]] The reply is this sentence, <b>markup</b> and all.
//! ```
//!
//! - `[[mock`, then whitespace-separated `key=value` pairs in any order and any subset, then
//!   `]]`; it may sit on its own line or inside other text, and several directives apply in
//!   order (later values win). `[[mock` not followed by whitespace or `]]` is plain text.
//! - Counts and milliseconds are whole numbers; `hang`, `tool_text` and `echo` take
//!   `1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off`; `status`, `cut_after`, `error_after`,
//!   `garbage_after` and `context_tokens` also take `none` (or `off`) to clear an instance
//!   value; `status` must be 400–599. `retry_after` and `hang_before_headers` are accepted
//!   aliases.
//! - `tool_calls` takes comma-separated function names (1–64 ASCII letters, digits, `_`, `-`,
//!   `.`; a name may repeat), or `none`/`off` for no calls; no spaces in a directive, while a
//!   header may have spaces after the commas.
//! - Headers use the same keys with `-` for `_` after `x-mock-` and the same values.
//! - An unknown key, a malformed pair, an unclosed directive or a bad value is a 400
//!   (`code: "invalid_mock_directive"`), so a typo fails the test that made it.
//!
//! # Tool calls
//! With `tool_calls=NAME[,NAME…]`, a request **whose last message has role `user`** is answered
//! with one call per name, in order, instead of text (with `tool_text=1`: after the text). A
//! request whose last message is anything else (typically the `tool` results) gets the normal
//! text reply, so a client's tool loop ends after one round. Requests may carry assistant
//! messages with `content: null` and `tool_calls`, `tool` messages with `tool_call_id`, and
//! content as an array of parts.
//!
//! - Call `n` (0-based, within the reply) has id `call_` + 8 lowercase hex digits (unique within
//!   the process, random-looking, different in every run), `type: "function"`, the name, and
//!   arguments built from the request's `tools` entry with that `function.name`: a compact JSON
//!   object string with one member per property of `parameters.properties`, **in the order the
//!   request's JSON lists them** (read in order whatever serde_json's features; note a client
//!   that builds its `tools` as a `serde_json::Value` without `preserve_order` sends them
//!   sorted). A `"string"` property gets `"<property>-<n>"`, `"integer"`/`"number"` `n + 1`,
//!   `"boolean"` `true`, anything else (`object`, `array`, a list of types, no `type`) `null`.
//!   Properties `city: string, days: integer` make call 1's arguments
//!   `{"city":"city-1","days":2}`.
//! - A name that no function of the request's `tools` has, or a request without `tools`, is a
//!   400 `unknown_tool` (`param` `"tools"`) naming it and the functions offered.
//! - Streamed: the usual role chunk, the text chunks when `tool_text`, then per call `i` one
//!   chunk with `delta: {"tool_calls":[{"index":i,"id":…,"type":"function",
//!   "function":{"name":…,"arguments":""}}]}` and three with `delta: {"tool_calls":[{"index":i,
//!   "function":{"arguments":PIECE}}]}`, the pieces splitting the arguments at character
//!   boundaries into thirds (`n/3`, `2n/3` of `n` characters, rounded down; a piece may be empty);
//!   then the finish chunk `delta: {}`, `finish_reason: "tool_calls"`, the usage chunk if asked,
//!   and `[DONE]`. Each of these chunks counts like a content chunk for `inter_token` (the delay
//!   between chunks) and for `cut_after`/`error_after`/`garbage_after`; `ttft` is unchanged.
//! - Not streamed: `message: {"role":"assistant","content":null,"refusal":null,
//!   "tool_calls":[{"id","type":"function","function":{"name","arguments"}}]}` (`content` is the
//!   text with `tool_text`), `finish_reason: "tool_calls"`; it arrives when the last chunk would
//!   have. A text reply's message has no `tool_calls` key.
//! - `usage.completion_tokens` adds, per call, [`prompt_tokens`] of the characters of its name
//!   and arguments to the text tokens.
//! - `max_tokens` caps the text only: when it is below `tokens` with `tool_text`, the reply is
//!   the capped text with `finish_reason: "length"` and no calls.
//!
//! # Reasoning
//! With `think=N` the reply reasons first, as Hermes-4 does. Inline (the default), the
//! content is `<think>\n`, the N words of [`reasoning_text`], `\n</think>\n\n`, then the
//! answer (the word list, or `echo`'s words) and, with `tool_inline`, one
//! `<tool_call>\n{"name": …, "arguments": {…}}\n</tool_call>\n` block per call: a chunk per tag,
//! word and block, or cut at `split_at`'s offsets (in any order; an offset inside a character
//! moves to the next boundary). With `think_as=reasoning_content` (or `reasoning`) the words
//! come first as deltas of that field, a word per chunk, and the content is the answer alone;
//! not streamed, the message carries the field whole. Every scripted chunk counts as a token;
//! `usage.completion_tokens_details.reasoning_tokens` is N.
//!
//! # Context length
//! With `context_tokens` = N (instance, directive, header or `--context-tokens`), a request with
//! `P + K > N`, where P is its `prompt_tokens` estimate (below) and K its reply cap (the smaller
//! of `max_tokens` and `max_completion_tokens`, 0 when neither is given), gets OpenAI's answer:
//! HTTP 400 with
//!
//! ```json
//! {"error": {"message": "This model's maximum context length is N tokens. However, you requested M tokens (P in the messages, K in the completion).",
//!            "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"}}
//! ```
//!
//! (M = P + K). `P + K = N` still fits. The check runs after `hang` and `status`, before the
//! `tool_calls` names are checked.
//!
//! The estimate P is [`prompt_tokens`]`(chars)`: `chars / 4` rounded down, at least 1, where
//! `chars` counts the characters (Unicode scalar values, not bytes) of every message's string
//! `content`, of the `text` of every text part, and of the `function.arguments` of every
//! assistant message's `tool_calls`, whatever the role (so `tool` results count). Roles, names,
//! ids, image parts, `tools` and other fields do not count; a `[[mock …]]` directive is message
//! text, so it does. To size a prompt for a test, write `4 × P` characters in total.
//!
//! # Errors it answers with
//! Every error is `{"error":{"message","type","param","code"}}`, `param` null unless said:
//! 401 `invalid_api_key` when an API key is configured and the bearer token is missing or wrong
//! (also on `/v1/models`); 400 `invalid_json` / `invalid_request` for an unparsable body,
//! missing or empty `messages`, or a `tools` function without a `name` or whose
//! `parameters.properties` is not an object; 400 `invalid_mock_directive` for a bad knob; 400
//! `unknown_tool` (`param` `"tools"`) for a `tool_calls` name the request does not offer; 400
//! `context_length_exceeded` (`param` `"messages"`, see above); injected statuses with `code`
//! `rate_limit_exceeded` (429, type `requests`), `service_unavailable` (503) or `mock_status`;
//! 429 and 503 carry `retry-after`.
//!
//! # Observability
//! [`MockUpstream::calls`] counts chat completion requests (all of them, errors included),
//! [`MockUpstream::requests`] returns the last [`REQUEST_LOG_CAPACITY`] request bodies, and
//! [`MockUpstream::reset`] clears both.
//!
//! # Layout
//! - `config`: [`MockConfig`], the instance knobs, and the per-request copy.
//! - `overrides`: `x-mock-*` headers and `[[mock …]]` directives.
//! - `reply`: the word list and token arithmetic.
//! - `tools`: the calls of `tool_calls`: ids and arguments.
//! - `wire`: OpenAI request and JSON response types.
//! - `stream`: the SSE body and the cut body.
//! - `server`: [`MockState`], [`router`], handlers, the error answer and [`MockUpstream`].
//! - `main.rs`: the `mock-upstream` binary.

mod config;
mod overrides;
mod reply;
mod script;
mod server;
mod stream;
mod tools;
mod wire;

pub use config::{DEFAULT_RETRY_AFTER_SECS, DEFAULT_TOKENS, MockConfig};
pub use reply::{prompt_tokens, reasoning_text, reply_text, reply_tokens};
pub use server::{MockState, MockUpstream, REQUEST_LOG_CAPACITY, router};

/// The models `GET /v1/models` lists. Chat requests may name any model; it is echoed back.
pub const MODELS: [&str; 2] = ["Hermes-4-405B", "Hermes-4-70B"];
