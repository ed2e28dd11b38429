//! Per-request overrides of the knobs: `x-mock-*` headers and `[[mock …]]` message directives.
//!
//! Both spellings go through one table of knob names, so a header and a directive can never
//! disagree about what a knob means. This module parses and applies overrides; deciding which
//! message text to read is the handler's job.

use std::time::Duration;

use axum::http::HeaderMap;

use crate::config::Knobs;

/// Opens a directive inside message text; it ends at the next `]]`.
const DIRECTIVE_OPEN: &str = "[[mock";

/// The prefix of override headers; the rest of the name is a knob name with `-` for `_`.
const HEADER_PREFIX: &str = "x-mock-";

/// Why a request's overrides were rejected (the request gets a 400).
///
/// # Design
/// A typo in a test's knob should fail that test loudly, not fall back to the instance values
/// and pass for the wrong reason, so nothing here is ignored.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum OverrideError {
    #[error("unknown mock knob `{key}`")]
    UnknownKnob { key: String },
    #[error("invalid value `{value}` for mock knob `{knob}`: expected {expected}")]
    InvalidValue {
        knob: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("mock directive part `{part}` is not `key=value`")]
    NotKeyValue { part: String },
    #[error("mock directive is not closed with `]]`")]
    Unterminated,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Knob {
    Tokens,
    TtftMs,
    InterTokenMs,
    Status,
    RetryAfterSecs,
    Hang,
    CutAfter,
    ErrorAfter,
    GarbageAfter,
    ContextTokens,
    ToolCalls,
    ToolText,
    Echo,
    Think,
    ThinkAs,
    ThinkClose,
    SplitAt,
    ToolInline,
    Faults,
}

/// Every accepted knob name (directive spelling) and the knob it sets; first name is canonical.
const KNOB_NAMES: [(&str, Knob); 21] = [
    ("tokens", Knob::Tokens),
    ("ttft_ms", Knob::TtftMs),
    ("inter_token_ms", Knob::InterTokenMs),
    ("status", Knob::Status),
    ("retry_after_secs", Knob::RetryAfterSecs),
    ("retry_after", Knob::RetryAfterSecs),
    ("hang", Knob::Hang),
    ("hang_before_headers", Knob::Hang),
    ("cut_after", Knob::CutAfter),
    ("error_after", Knob::ErrorAfter),
    ("garbage_after", Knob::GarbageAfter),
    ("context_tokens", Knob::ContextTokens),
    ("tool_calls", Knob::ToolCalls),
    ("tool_text", Knob::ToolText),
    ("echo", Knob::Echo),
    ("think", Knob::Think),
    ("think_as", Knob::ThinkAs),
    ("think_close", Knob::ThinkClose),
    ("split_at", Knob::SplitAt),
    ("tool_inline", Knob::ToolInline),
    ("faults", Knob::Faults),
];

impl Knob {
    /// Finds a knob by directive (`ttft_ms`) or header (`ttft-ms`) spelling, without allocating.
    fn from_name(name: &str) -> Option<Self> {
        let same = |canonical: &str| {
            canonical.len() == name.len()
                && canonical
                    .bytes()
                    .zip(name.bytes())
                    .all(|(c, n)| c == n || (c == b'_' && n == b'-'))
        };
        KNOB_NAMES
            .iter()
            .find(|(canonical, _)| same(canonical))
            .map(|&(_, knob)| knob)
    }

    fn name(self) -> &'static str {
        KNOB_NAMES
            .iter()
            .find(|&&(_, knob)| knob == self)
            .map_or("?", |&(name, _)| name)
    }
}

/// The knob values one request sets; `None` leaves the instance value alone.
///
/// Optional knobs use `Option<Option<_>>` so a request can also clear an instance value
/// (`status=none`). The tool knobs and `echo` have no instance value; [`Overrides::tools`] and
/// [`Overrides::echo`] read them.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Overrides {
    tokens: Option<usize>,
    ttft: Option<Duration>,
    inter_token: Option<Duration>,
    status: Option<Option<u16>>,
    retry_after_secs: Option<u64>,
    hang: Option<bool>,
    cut_after: Option<Option<usize>>,
    error_after: Option<Option<usize>>,
    garbage_after: Option<Option<usize>>,
    context_tokens: Option<Option<usize>>,
    tool_calls: Option<Vec<String>>,
    tool_text: Option<bool>,
    echo: Option<bool>,
    think: Option<usize>,
    think_as: Option<ThinkAs>,
    think_close: Option<bool>,
    split_at: Option<Vec<usize>>,
    tool_inline: Option<bool>,
    faults: Option<usize>,
}

/// Where the reasoning of a `think` reply goes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum ThinkAs {
    /// In the content, between `<think>` and `</think>` (Hermes served without a parser).
    #[default]
    Inline,
    /// In `delta.reasoning_content` (vLLM, SGLang).
    ReasoningContent,
    /// In `delta.reasoning` (OpenRouter).
    Reasoning,
}

/// How a request's reply reasons and writes its calls: `think`, `think_as`, `think_close`,
/// `split_at`, `tool_inline`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ThinkKnobs {
    /// Reasoning words before the answer (0: none).
    pub words: usize,
    pub place: ThinkAs,
    /// Close the inline reasoning and answer; `false`: the reply ends mid-thought.
    pub close: bool,
    /// Byte offsets the content is cut at, instead of a word per chunk.
    pub split_at: Option<Vec<usize>>,
    /// Tool calls written in the content as `<tool_call>` blocks.
    pub tool_inline: bool,
}

impl ThinkKnobs {
    /// Whether the reply is scripted (anything but the plain word list and API tool calls).
    pub(crate) fn scripted(&self) -> bool {
        self.words > 0 || self.split_at.is_some() || self.tool_inline
    }
}

/// The tool calls a request asks for: `tool_calls` and `tool_text`.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ToolKnobs {
    /// Function names to call, in order; empty for a plain text reply.
    pub names: Vec<String>,
    /// Send the text reply before the calls.
    pub with_text: bool,
}

impl Overrides {
    /// Reads every `[[mock key=value …]]` directive in `text`; later values win.
    ///
    /// An occurrence of `[[mock` not followed by whitespace or `]]` (say `[[mockingbird]]`) is
    /// plain text, not a directive.
    ///
    /// # Errors
    /// - [`OverrideError::Unterminated`] when a directive has no closing `]]`;
    /// - [`OverrideError::NotKeyValue`] when a part lacks `=`;
    /// - the errors of a single knob (unknown name, unparsable value).
    pub(crate) fn read_directives(&mut self, text: &str) -> Result<(), OverrideError> {
        let mut rest = text;
        while let Some((_, after_open)) = rest.split_once(DIRECTIVE_OPEN) {
            rest = after_open;
            let is_directive =
                after_open.starts_with("]]") || after_open.starts_with(|c: char| c.is_whitespace());
            if !is_directive {
                continue;
            }
            let (body, after_close) = after_open
                .split_once("]]")
                .ok_or(OverrideError::Unterminated)?;
            for part in body.split_whitespace() {
                let (key, value) =
                    part.split_once('=')
                        .ok_or_else(|| OverrideError::NotKeyValue {
                            part: part.to_owned(),
                        })?;
                self.set(key, value)?;
            }
            rest = after_close;
        }
        Ok(())
    }

    /// Reads every `x-mock-<knob>` header (knob name with `-` for `_`).
    ///
    /// # Errors
    /// The errors of a single knob (unknown name, unparsable or non-UTF-8 value).
    pub(crate) fn read_headers(&mut self, headers: &HeaderMap) -> Result<(), OverrideError> {
        for (name, value) in headers {
            let Some(key) = name.as_str().strip_prefix(HEADER_PREFIX) else {
                continue;
            };
            let value = value.to_str().unwrap_or("\u{FFFD}");
            self.set(key, value.trim())?;
        }
        Ok(())
    }

    /// Writes the values this request set over `knobs`.
    pub(crate) fn apply(&self, knobs: &mut Knobs) {
        let Self {
            tokens,
            ttft,
            inter_token,
            status,
            retry_after_secs,
            hang,
            cut_after,
            error_after,
            garbage_after,
            context_tokens,
            // Per-request only: read by `tools`.
            tool_calls: _,
            tool_text: _,
            echo: _,
            think: _,
            think_as: _,
            think_close: _,
            split_at: _,
            tool_inline: _,
            // Read by `faults`.
            faults: _,
        } = *self;
        knobs.tokens = tokens.unwrap_or(knobs.tokens);
        knobs.ttft = ttft.unwrap_or(knobs.ttft);
        knobs.inter_token = inter_token.unwrap_or(knobs.inter_token);
        knobs.status = status.unwrap_or(knobs.status);
        knobs.retry_after_secs = retry_after_secs.unwrap_or(knobs.retry_after_secs);
        knobs.hang = hang.unwrap_or(knobs.hang);
        knobs.cut_after = cut_after.unwrap_or(knobs.cut_after);
        knobs.error_after = error_after.unwrap_or(knobs.error_after);
        knobs.garbage_after = garbage_after.unwrap_or(knobs.garbage_after);
        knobs.context_tokens = context_tokens.unwrap_or(knobs.context_tokens);
    }

    /// Whether the reply repeats the last user message (without its directives) instead of the
    /// word list: `echo=1`, so a test can make the model say exactly what it needs.
    pub(crate) fn echo(&self) -> bool {
        self.echo.unwrap_or(false)
    }

    /// `faults=N`: the failure knobs hold for the first N requests with the same last user
    /// message only (`None`: for every request).
    pub(crate) fn faults(&self) -> Option<usize> {
        self.faults
    }

    /// The reasoning knobs this request set (no reasoning by default).
    pub(crate) fn think(&self) -> ThinkKnobs {
        ThinkKnobs {
            words: self.think.unwrap_or(0),
            place: self.think_as.unwrap_or_default(),
            close: self.think_close.unwrap_or(true),
            split_at: self.split_at.clone(),
            tool_inline: self.tool_inline.unwrap_or(false),
        }
    }

    /// The tool knobs this request set (none by default).
    pub(crate) fn tools(self) -> ToolKnobs {
        ToolKnobs {
            names: self.tool_calls.unwrap_or_default(),
            with_text: self.tool_text.unwrap_or(false),
        }
    }

    fn set(&mut self, key: &str, value: &str) -> Result<(), OverrideError> {
        let knob = Knob::from_name(key).ok_or_else(|| OverrideError::UnknownKnob {
            key: key.to_owned(),
        })?;
        match knob {
            Knob::Tokens => self.tokens = Some(parse_count(knob, value)?),
            Knob::TtftMs => self.ttft = Some(parse_millis(knob, value)?),
            Knob::InterTokenMs => self.inter_token = Some(parse_millis(knob, value)?),
            Knob::Status => self.status = Some(parse_status(knob, value)?),
            Knob::RetryAfterSecs => {
                self.retry_after_secs = Some(parse_number(knob, value, "whole seconds")?);
            }
            Knob::Hang => self.hang = Some(parse_flag(knob, value)?),
            Knob::CutAfter => self.cut_after = Some(parse_optional_count(knob, value)?),
            Knob::ErrorAfter => self.error_after = Some(parse_optional_count(knob, value)?),
            Knob::GarbageAfter => self.garbage_after = Some(parse_optional_count(knob, value)?),
            Knob::ContextTokens => self.context_tokens = Some(parse_optional_count(knob, value)?),
            Knob::ToolCalls => self.tool_calls = Some(parse_names(knob, value)?),
            Knob::ToolText => self.tool_text = Some(parse_flag(knob, value)?),
            Knob::Echo => self.echo = Some(parse_flag(knob, value)?),
            Knob::Think => self.think = Some(parse_count(knob, value)?),
            Knob::ThinkAs => {
                self.think_as = Some(match value {
                    "inline" => ThinkAs::Inline,
                    "reasoning_content" => ThinkAs::ReasoningContent,
                    "reasoning" => ThinkAs::Reasoning,
                    _ => {
                        return Err(invalid(
                            knob,
                            value,
                            "`inline`, `reasoning_content` or `reasoning`",
                        ));
                    }
                });
            }
            Knob::ThinkClose => self.think_close = Some(parse_flag(knob, value)?),
            Knob::Faults => self.faults = Some(parse_count(knob, value)?),
            Knob::SplitAt => {
                let offsets: Result<Vec<usize>, _> =
                    value.split(',').map(str::parse::<usize>).collect();
                self.split_at = Some(
                    offsets.map_err(|_| invalid(knob, value, "comma-separated byte offsets"))?,
                );
            }
            Knob::ToolInline => self.tool_inline = Some(parse_flag(knob, value)?),
        }
        Ok(())
    }
}

fn invalid(knob: Knob, value: &str, expected: &'static str) -> OverrideError {
    OverrideError::InvalidValue {
        knob: knob.name(),
        value: value.to_owned(),
        expected,
    }
}

fn parse_number<T: std::str::FromStr>(
    knob: Knob,
    value: &str,
    expected: &'static str,
) -> Result<T, OverrideError> {
    value.parse().map_err(|_| invalid(knob, value, expected))
}

fn parse_count(knob: Knob, value: &str) -> Result<usize, OverrideError> {
    parse_number(knob, value, "a whole number")
}

fn parse_millis(knob: Knob, value: &str) -> Result<Duration, OverrideError> {
    parse_number(knob, value, "whole milliseconds").map(Duration::from_millis)
}

fn is_none(value: &str) -> bool {
    matches!(value, "none" | "off" | "")
}

fn parse_optional_count(knob: Knob, value: &str) -> Result<Option<usize>, OverrideError> {
    if is_none(value) {
        return Ok(None);
    }
    parse_number(knob, value, "a whole number or `none`").map(Some)
}

fn parse_status(knob: Knob, value: &str) -> Result<Option<u16>, OverrideError> {
    const EXPECTED: &str = "an HTTP error status (400-599) or `none`";
    if is_none(value) {
        return Ok(None);
    }
    let status: u16 = parse_number(knob, value, EXPECTED)?;
    if !(400..=599).contains(&status) {
        return Err(invalid(knob, value, EXPECTED));
    }
    Ok(Some(status))
}

/// Longest function name OpenAI accepts.
const MAX_FUNCTION_NAME_CHARS: usize = 64;

/// `NAME[,NAME...]` (names may repeat), or `none` for no calls.
fn parse_names(knob: Knob, value: &str) -> Result<Vec<String>, OverrideError> {
    const EXPECTED: &str =
        "comma-separated function names (1-64 letters, digits, `_`, `-`, `.`) or `none`";
    if is_none(value) {
        return Ok(Vec::new());
    }
    value
        .split(',')
        .map(|name| {
            let name = name.trim();
            let valid = (1..=MAX_FUNCTION_NAME_CHARS).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
            if valid {
                Ok(name.to_owned())
            } else {
                Err(invalid(knob, value, EXPECTED))
            }
        })
        .collect()
}

fn parse_flag(knob: Knob, value: &str) -> Result<bool, OverrideError> {
    match value {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(invalid(knob, value, "`1`/`true` or `0`/`false`")),
    }
}

/// `text` with every `[[mock …]]` directive taken out (what `echo` repeats). Call it on text
/// whose directives [`Overrides::read_directives`] accepted: an unclosed one is kept as is.
pub(crate) fn without_directives(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((before, after_open)) = rest.split_once(DIRECTIVE_OPEN) {
        out.push_str(before);
        let is_directive =
            after_open.starts_with("]]") || after_open.starts_with(|c: char| c.is_whitespace());
        match after_open.split_once("]]").filter(|_| is_directive) {
            Some((_, after_close)) => rest = after_close,
            None => {
                out.push_str(DIRECTIVE_OPEN);
                rest = after_open;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;
    use crate::MockConfig;

    fn knobs_after(text: &str) -> Result<Knobs, OverrideError> {
        let mut overrides = Overrides::default();
        overrides.read_directives(text)?;
        let mut knobs = MockConfig::default().knobs();
        overrides.apply(&mut knobs);
        Ok(knobs)
    }

    #[test]
    fn a_full_directive_sets_every_knob() {
        let knobs = knobs_after(
            "hello\n[[mock tokens=3 ttft_ms=7 inter_token_ms=200 status=429 retry_after_secs=9 \
             cut_after=2 error_after=4 garbage_after=1 hang=1 context_tokens=4096]]\nthere",
        )
        .unwrap();

        assert_eq!(
            knobs,
            Knobs {
                tokens: 3,
                ttft: Duration::from_millis(7),
                inter_token: Duration::from_millis(200),
                status: Some(429),
                retry_after_secs: 9,
                hang: true,
                cut_after: Some(2),
                error_after: Some(4),
                garbage_after: Some(1),
                context_tokens: Some(4096),
            }
        );
    }

    #[test]
    fn echo_is_a_per_request_flag_and_its_text_loses_the_directives() {
        let text =
            "[[mock echo=1]]Say <img src=x onerror=alert(1)> [[mockingbird]] [[mock tokens=2]]!";
        let mut overrides = Overrides::default();
        overrides.read_directives(text).unwrap();

        assert!(overrides.echo());
        assert!(!Overrides::default().echo());
        assert_eq!(
            without_directives(text),
            "Say <img src=x onerror=alert(1)> [[mockingbird]] !"
        );
    }

    #[test]
    fn text_without_a_directive_changes_nothing() {
        let cases = ["", "plain text", "[[mockingbird]]", "[mock tokens=1]"];
        for text in cases {
            assert_eq!(
                knobs_after(text).unwrap(),
                MockConfig::default().knobs(),
                "case {text:?}"
            );
        }
    }

    #[test]
    fn later_directives_win_and_none_clears_a_knob() {
        let mut overrides = Overrides::default();
        overrides
            .read_directives("[[mock tokens=1 cut_after=3]] and [[mock tokens=2]]")
            .unwrap();
        overrides
            .read_directives("[[mock cut_after=none]]")
            .unwrap();

        let mut knobs = MockConfig::default().knobs();
        knobs.cut_after = Some(9);
        overrides.apply(&mut knobs);

        assert_eq!(knobs.tokens, 2);
        assert_eq!(knobs.cut_after, None);
    }

    #[test]
    fn invalid_directives_are_rejected_with_the_cause() {
        let cases = [
            ("[[mock tokens=3", OverrideError::Unterminated),
            (
                "[[mock tokens]]",
                OverrideError::NotKeyValue {
                    part: "tokens".into(),
                },
            ),
            (
                "[[mock token=3]]",
                OverrideError::UnknownKnob {
                    key: "token".into(),
                },
            ),
            (
                "[[mock tokens=-1]]",
                OverrideError::InvalidValue {
                    knob: "tokens",
                    value: "-1".into(),
                    expected: "a whole number",
                },
            ),
            (
                "[[mock status=200]]",
                OverrideError::InvalidValue {
                    knob: "status",
                    value: "200".into(),
                    expected: "an HTTP error status (400-599) or `none`",
                },
            ),
            (
                "[[mock context_tokens=lots]]",
                OverrideError::InvalidValue {
                    knob: "context_tokens",
                    value: "lots".into(),
                    expected: "a whole number or `none`",
                },
            ),
            (
                "[[mock hang=maybe]]",
                OverrideError::InvalidValue {
                    knob: "hang",
                    value: "maybe".into(),
                    expected: "`1`/`true` or `0`/`false`",
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(knobs_after(text).unwrap_err(), expected, "case {text:?}");
        }
    }

    #[test]
    fn think_knobs_read_every_value_and_refuse_bad_ones() {
        let mut overrides = Overrides::default();
        assert_eq!(
            overrides.think(),
            ThinkKnobs {
                close: true,
                ..ThinkKnobs::default()
            }
        );
        overrides
            .read_directives(
                "[[mock think=3 think_as=reasoning_content think_close=0 split_at=9,2 tool_inline=1]]",
            )
            .unwrap();
        assert_eq!(
            overrides.think(),
            ThinkKnobs {
                words: 3,
                place: ThinkAs::ReasoningContent,
                close: false,
                split_at: Some(vec![9, 2]),
                tool_inline: true,
            }
        );
        for (text, knob) in [
            ("[[mock think_as=inside]]", "think_as"),
            ("[[mock split_at=1,x]]", "split_at"),
            ("[[mock think=-1]]", "think"),
        ] {
            match Overrides::default().read_directives(text) {
                Err(OverrideError::InvalidValue { knob: got, .. }) => assert_eq!(got, knob),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    fn tools_after(text: &str) -> Result<ToolKnobs, OverrideError> {
        let mut overrides = Overrides::default();
        overrides.read_directives(text)?;
        Ok(overrides.tools())
    }

    #[test]
    fn tool_calls_take_names_in_order_and_tool_text_a_flag() {
        let cases = [
            ("no directive", ToolKnobs::default()),
            (
                "[[mock tool_calls=get_weather]]",
                ToolKnobs {
                    names: vec!["get_weather".into()],
                    with_text: false,
                },
            ),
            (
                "[[mock tool_calls=b,a-1,b,ns.fn tool_text=1]]",
                ToolKnobs {
                    names: ["b", "a-1", "b", "ns.fn"].map(String::from).to_vec(),
                    with_text: true,
                },
            ),
            (
                "[[mock tool_calls=a tool_text=yes]] [[mock tool_calls=none]]",
                ToolKnobs {
                    names: Vec::new(),
                    with_text: true,
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(tools_after(text).unwrap(), expected, "case {text:?}");
        }
    }

    #[test]
    fn invalid_tool_knobs_are_rejected_with_the_cause() {
        const NAMES: &str =
            "comma-separated function names (1-64 letters, digits, `_`, `-`, `.`) or `none`";
        let too_long = format!("[[mock tool_calls={}]]", "f".repeat(65));
        let cases = [
            ("[[mock tool_calls=a,,b]]", "tool_calls", "a,,b", NAMES),
            ("[[mock tool_calls=a,]]", "tool_calls", "a,", NAMES),
            ("[[mock tool_calls=a;b]]", "tool_calls", "a;b", NAMES),
            (
                "[[mock tool_text=sometimes]]",
                "tool_text",
                "sometimes",
                "`1`/`true` or `0`/`false`",
            ),
        ];
        for (text, knob, value, expected) in cases {
            assert_eq!(
                tools_after(text).unwrap_err(),
                OverrideError::InvalidValue {
                    knob,
                    value: value.into(),
                    expected,
                },
                "case {text:?}"
            );
        }
        assert!(matches!(
            tools_after(&too_long),
            Err(OverrideError::InvalidValue {
                knob: "tool_calls",
                ..
            })
        ));
        let longest = format!("[[mock tool_calls={}]]", "f".repeat(64));
        assert_eq!(tools_after(&longest).unwrap().names.len(), 1);
    }

    #[test]
    fn tool_headers_use_the_same_names_and_allow_spaces_after_commas() {
        let mut headers = HeaderMap::new();
        headers.insert("x-mock-tool-calls", HeaderValue::from_static("a, b"));
        headers.insert("x-mock-tool-text", HeaderValue::from_static("true"));

        let mut overrides = Overrides::default();
        overrides.read_headers(&headers).unwrap();

        assert_eq!(
            overrides.tools(),
            ToolKnobs {
                names: vec!["a".into(), "b".into()],
                with_text: true,
            }
        );
    }

    #[test]
    fn headers_use_dashed_knob_names_and_ignore_other_headers() {
        let mut headers = HeaderMap::new();
        headers.insert("x-mock-inter-token-ms", HeaderValue::from_static("15"));
        headers.insert("x-mock-hang", HeaderValue::from_static("true"));
        headers.insert("x-mock-error-after", HeaderValue::from_static(" 2 "));
        headers.insert("x-mock-context-tokens", HeaderValue::from_static("none"));
        headers.insert("content-type", HeaderValue::from_static("application/json"));

        let mut overrides = Overrides::default();
        overrides.read_headers(&headers).unwrap();
        let mut knobs = MockConfig::default().with_context_tokens(10).knobs();
        overrides.apply(&mut knobs);

        assert_eq!(knobs.inter_token, Duration::from_millis(15));
        assert!(knobs.hang);
        assert_eq!(knobs.error_after, Some(2));
        assert_eq!(
            knobs.context_tokens, None,
            "`none` clears the instance limit"
        );
    }

    #[test]
    fn an_unknown_override_header_is_rejected() {
        let mut headers = HeaderMap::new();
        headers.insert("x-mock-tokenz", HeaderValue::from_static("1"));

        let error = Overrides::default().read_headers(&headers).unwrap_err();

        assert_eq!(
            error,
            OverrideError::UnknownKnob {
                key: "tokenz".into()
            }
        );
    }
}
