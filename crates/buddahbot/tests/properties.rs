//! Property tests of every parser at the edge: the upstream event-stream scanner and the
//! reply splitter (any split of any input gives the same result as one read), the chunk reader
//! (reads what serde reads, the same way), the bearer
//! token and Auth.js session token decoders (random and mutated tokens never panic and are
//! never accepted) and the pagination cursors (random strings never panic; what parses
//! re-encodes to itself).
//!
//! Case counts are small by default so `cargo test` stays quick. `PROPERTIES_LONG=1` runs the
//! long mode: over ten million cases in all (each test prints its count and time).
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    clippy::print_stderr,
    reason = "tests fail loudly and report their case counts"
)]

use std::{borrow::Cow, time::Instant};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use buddahbot::{
    auth::{authjs::AuthJs, authjs::session_token, jwt::Hs256},
    domain::{ThreadId, UserId},
    store::{MessageCursor, SearchCursor, ThreadCursor},
    upstream::{
        chunk,
        markup::{Piece, Splitter},
        sse::SseScanner,
        wire::{ChoiceView, ChunkView, DeltaView},
    },
};
use proptest::{
    prelude::*,
    test_runner::{Config, TestRunner},
};
use secrecy::SecretString;
use serde_json::json;

/// Cases for a test: `short` normally, `long` with `PROPERTIES_LONG=1`.
fn cases(short: u32, long: u32) -> u32 {
    if std::env::var_os("PROPERTIES_LONG").is_some_and(|v| v != "0") {
        long
    } else {
        short
    }
}

/// Runs `test` on `count` values of `strategy`, and reports the count and the time taken.
fn check<S: Strategy>(
    name: &str,
    count: u32,
    strategy: S,
    test: impl Fn(S::Value) -> Result<(), TestCaseError>,
) {
    let mut runner = TestRunner::new(Config {
        cases: count,
        failure_persistence: None,
        ..Config::default()
    });
    let started = Instant::now();
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{name}: {e}");
    }
    eprintln!(
        "property {name}: {count} cases in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Cut points into `len` bytes, sorted, from arbitrary fractions.
fn cuts(len: usize, fractions: &[f64]) -> Vec<usize> {
    let mut at: Vec<usize> = fractions
        .iter()
        .map(|f| ((len as f64) * f).floor() as usize)
        .map(|i| i.min(len))
        .collect();
    at.sort_unstable();
    at
}

// ---------------------------------------------------------------------------------------
// The event-stream scanner.

/// Bytes that look like an event stream often enough to exercise every rule: field names,
/// colons, spaces, every line ending, comments, and arbitrary bytes between.
fn sse_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"data:".to_vec()),
        Just(b"data: ".to_vec()),
        Just(b"data".to_vec()),
        Just(b"event: x".to_vec()),
        Just(b"id: 1".to_vec()),
        Just(b": comment".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\n\n".to_vec()),
        Just(b" ".to_vec()),
        Just(b":".to_vec()),
        Just(b"{\"choices\":[]}".to_vec()),
        Just("é".as_bytes().to_vec()),
        proptest::collection::vec(any::<u8>(), 1..6),
    ];
    proptest::collection::vec(piece, 0..40).prop_map(|pieces| pieces.concat())
}

/// Every event's data, feeding `bytes` in the pieces `cuts` makes.
fn scan(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut scanner = SseScanner::new();
    let mut out = Vec::new();
    let mut from = 0;
    for &to in cuts.iter().chain(std::iter::once(&bytes.len())) {
        scanner.feed(&bytes[from..to]);
        from = to;
        while let Some(data) = scanner.next_event() {
            out.push(data.to_vec());
        }
    }
    out
}

/// The event-stream rules the scanner follows, written the plain way over the whole input:
/// lines end at `\r\n`, `\n` or `\r` (but a `\r` that is the input's last byte has not ended
/// its line yet: a `\n` may follow); `:` starts a comment; `data` lines join with `\n`; one
/// space after the colon is dropped; a blank line dispatches the event when it had a `data`
/// line; an event not ended by a blank line is not dispatched.
fn reference_events(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                lines.push(&bytes[start..i]);
                i += 1;
                start = i;
            }
            b'\r' if i + 1 == bytes.len() => break,
            b'\r' => {
                lines.push(&bytes[start..i]);
                i += if bytes[i + 1] == b'\n' { 2 } else { 1 };
                start = i;
            }
            _ => i += 1,
        }
    }
    let mut events = Vec::new();
    let mut data: Option<Vec<u8>> = None;
    for line in lines {
        if line.is_empty() {
            events.extend(data.take());
            continue;
        }
        if line[0] == b':' {
            continue;
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        if name == b"data" {
            match &mut data {
                None => data = Some(value.to_vec()),
                Some(joined) => {
                    joined.push(b'\n');
                    joined.extend_from_slice(value);
                }
            }
        }
    }
    events
}

#[test]
fn the_event_stream_scanner_gives_the_same_events_however_the_reads_split() {
    let strategy = (sse_bytes(), proptest::collection::vec(0.0..1.0_f64, 0..12));
    check(
        "sse_split",
        cases(512, 2_500_000),
        strategy,
        |(bytes, fractions)| {
            let whole = scan(&bytes, &[]);
            prop_assert_eq!(&whole, &reference_events(&bytes));
            let split = scan(&bytes, &cuts(bytes.len(), &fractions));
            prop_assert_eq!(split, whole);
            Ok(())
        },
    );
}

#[test]
fn the_event_stream_scanner_survives_any_bytes_in_any_pieces() {
    let strategy = (
        proptest::collection::vec(any::<u8>(), 0..300),
        proptest::collection::vec(0.0..1.0_f64, 0..8),
    );
    check(
        "sse_bytes",
        cases(256, 1_000_000),
        strategy,
        |(bytes, fractions)| {
            let split = scan(&bytes, &cuts(bytes.len(), &fractions));
            prop_assert_eq!(split, reference_events(&bytes));
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------
// The reply splitter (reasoning, answer text and inline tool calls).

/// What a reply said, with adjacent pieces of one kind joined: the split-independent view.
#[derive(Debug, PartialEq, Eq)]
enum Said {
    Reasoning(String),
    Text(String),
    Call(String),
}

fn push(said: &mut Vec<Said>, piece: Piece<'_>) {
    match (said.last_mut(), piece) {
        (Some(Said::Reasoning(r)), Piece::Reasoning(t)) => r.push_str(t),
        (Some(Said::Text(r)), Piece::Text(t)) => r.push_str(t),
        (_, Piece::Reasoning(t)) => said.push(Said::Reasoning(t.to_owned())),
        (_, Piece::Text(t)) => said.push(Said::Text(t.to_owned())),
        (_, Piece::Call(call)) => said.push(Said::Call(serde_json::to_string(call).unwrap())),
    }
}

/// Reply text mixing every tag (whole and in pieces), blanks, calls and plain text.
fn reply_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("<think>".to_owned()),
        Just("</think>".to_owned()),
        Just("<tool_call>".to_owned()),
        Just("</tool_call>".to_owned()),
        Just("<".to_owned()),
        Just("</".to_owned()),
        Just("<thi".to_owned()),
        Just("nk>".to_owned()),
        Just("<tool_".to_owned()),
        Just(" ".to_owned()),
        Just("\n".to_owned()),
        Just("\n\n".to_owned()),
        Just("a".to_owned()),
        Just("Hé 🙂".to_owned()),
        Just("{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}".to_owned()),
        Just("{\"name\": 1}".to_owned()),
        Just("{".to_owned()),
        Just("}".to_owned()),
        "[a-z <>/]{1,6}",
    ];
    proptest::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
}

/// A one-choice chunk.
fn chunk<'a>(
    reasoning: Option<&'a str>,
    content: Option<&'a str>,
    finish: Option<&'a str>,
) -> ChunkView<'a> {
    ChunkView {
        choices: vec![ChoiceView {
            delta: DeltaView {
                content: content.map(Cow::Borrowed),
                reasoning_content: reasoning.map(Cow::Borrowed),
                ..DeltaView::default()
            },
            finish_reason: finish.map(Cow::Borrowed),
        }],
        ..ChunkView::default()
    }
}

/// Runs a splitter over `text` sent as content in the pieces `cuts` makes (moved to char
/// boundaries), the first `reasoning_field` characters sent as a `reasoning_content` field.
fn split_reply(
    text: &str,
    reasoning_field: &str,
    cuts: &[usize],
    tools: bool,
    finish_chunk: bool,
) -> Vec<Said> {
    let mut splitter = Splitter::new("r1", tools);
    let mut said = Vec::new();
    if !reasoning_field.is_empty() {
        splitter.split(&chunk(Some(reasoning_field), None, None), |p| {
            push(&mut said, p)
        });
    }
    let mut from = 0;
    for &to in cuts.iter().chain(std::iter::once(&text.len())) {
        let mut to = to.max(from);
        while !text.is_char_boundary(to) {
            to += 1;
        }
        let piece = &text[from..to];
        from = to;
        let view = chunk(None, Some(piece), None);
        let plain = splitter.is_plain(&view);
        let mut pieces = Vec::new();
        splitter.split(&view, |p| push(&mut pieces, p));
        if plain && !piece.is_empty() {
            // A plain chunk's content is forwarded as it came: it must be given whole.
            assert_eq!(
                pieces,
                vec![Said::Text(piece.to_owned())],
                "plain {piece:?}"
            );
        }
        for p in pieces {
            match p {
                Said::Reasoning(t) => push(&mut said, Piece::Reasoning(&t)),
                Said::Text(t) => push(&mut said, Piece::Text(&t)),
                call @ Said::Call(_) => said.push(call),
            }
        }
    }
    if finish_chunk {
        splitter.split(&chunk(None, None, Some("stop")), |p| push(&mut said, p));
    } else {
        splitter.finish(|p| push(&mut said, p));
    }
    said
}

#[test]
fn the_reply_splitter_reads_the_same_reply_however_the_chunks_split_it() {
    let strategy = (
        reply_text(),
        prop_oneof![Just(""), Just("Let me think."), Just(" \n")],
        proptest::collection::vec(0.0..1.0_f64, 0..10),
        any::<bool>(),
        any::<bool>(),
    );
    check(
        "splitter",
        cases(512, 2_000_000),
        strategy,
        |(text, field, fractions, tools, finish_chunk)| {
            let whole = split_reply(&text, field, &[], tools, finish_chunk);
            let split = split_reply(
                &text,
                field,
                &cuts(text.len(), &fractions),
                tools,
                finish_chunk,
            );
            prop_assert_eq!(&split, &whole, "text {:?}", text);
            // Byte by byte (a chunk per character) too, for short replies.
            if text.len() < 64 {
                let every: Vec<usize> = (0..text.len()).collect();
                let single = split_reply(&text, field, &every, tools, finish_chunk);
                prop_assert_eq!(&single, &whole, "char by char {:?}", text);
            }
            // Nothing is invented: every answer and reasoning character came from the input.
            let said_len: usize = whole
                .iter()
                .map(|s| match s {
                    Said::Reasoning(t) | Said::Text(t) => t.len(),
                    Said::Call(_) => 0,
                })
                .sum();
            prop_assert!(said_len <= text.len() + field.len(), "said {:?}", whole);
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------
// The chunk reader (upstream/chunk.rs) against serde: generated chunks, whole and mutated.

/// Any JSON value, nested a little: what a chunk may carry in fields we skip.
fn any_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        (-1.0e12..1.0e12_f64).prop_map(serde_json::Value::from),
        any::<String>().prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            proptest::collection::vec(("[a-z_]{1,8}", inner), 0..4)
                .prop_map(|fields| serde_json::Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// A string field as an API may send it: absent, `null`, or any text.
fn text_field() -> impl Strategy<Value = Option<serde_json::Value>> {
    prop_oneof![
        Just(None),
        Just(Some(serde_json::Value::Null)),
        any::<String>().prop_map(|s| Some(s.into())),
        "[a-z ]{0,12}".prop_map(|s| Some(s.into())),
        // What JSON escapes: quotes, backslashes, control characters; and non-ASCII.
        "[a\"\\\\/\n\r\t\u{1}\u{8}\u{c}\u{1f}é€😀]{0,12}".prop_map(|s| Some(s.into())),
    ]
}

fn object(
    fields: Vec<(&str, Option<serde_json::Value>)>,
    extra: Vec<(String, serde_json::Value)>,
) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for (key, value) in fields {
        if let Some(value) = value {
            map.insert(key.to_owned(), value);
        }
    }
    for (key, value) in extra {
        map.entry(format!("x_{key}")).or_insert(value);
    }
    serde_json::Value::Object(map)
}

fn extra_fields() -> impl Strategy<Value = Vec<(String, serde_json::Value)>> {
    proptest::collection::vec(("[a-z]{1,6}", any_json()), 0..3)
}

fn tool_call_json() -> impl Strategy<Value = serde_json::Value> {
    (
        any::<u8>(),
        text_field(),
        text_field(),
        text_field(),
        text_field(),
        any::<bool>(),
    )
        .prop_map(|(index, id, kind, name, arguments, with_function)| {
            let function = with_function
                .then(|| object(vec![("name", name), ("arguments", arguments)], vec![]));
            object(
                vec![
                    ("index", Some(index.into())),
                    ("id", id),
                    ("type", kind),
                    ("function", function),
                ],
                vec![],
            )
        })
}

fn choice_json() -> impl Strategy<Value = serde_json::Value> {
    (
        (text_field(), text_field(), text_field(), text_field()),
        proptest::option::of(proptest::collection::vec(tool_call_json(), 0..3)),
        text_field(),
        any_json(),
        extra_fields(),
    )
        .prop_map(
            |((role, content, reasoning_content, reasoning), calls, finish, logprobs, extra)| {
                let delta = object(
                    vec![
                        ("role", role),
                        ("content", content),
                        ("reasoning_content", reasoning_content),
                        ("reasoning", reasoning),
                        ("tool_calls", calls.map(serde_json::Value::from)),
                    ],
                    vec![],
                );
                object(
                    vec![
                        ("index", Some(0.into())),
                        ("delta", Some(delta)),
                        ("logprobs", Some(logprobs)),
                        ("finish_reason", finish),
                    ],
                    extra,
                )
            },
        )
}

fn usage_json() -> impl Strategy<Value = Option<serde_json::Value>> {
    let details = prop_oneof![
        Just(None),
        Just(Some(serde_json::Value::Null)),
        proptest::option::of(any::<u32>())
            .prop_map(|n| Some(json!({"reasoning_tokens": n, "cached": 1}))),
    ];
    prop_oneof![
        Just(None),
        Just(Some(serde_json::Value::Null)),
        (any::<u32>(), any::<u32>(), details).prop_map(|(p, c, d)| Some(object(
            vec![
                ("prompt_tokens", Some(p.into())),
                ("completion_tokens", Some(c.into())),
                ("total_tokens", Some((u64::from(p) + u64::from(c)).into())),
                ("completion_tokens_details", d),
            ],
            vec![],
        ))),
    ]
}

/// A chunk as JSON text, compact or pretty.
fn chunk_json() -> impl Strategy<Value = String> {
    (
        (
            text_field(),
            proptest::option::of(any::<i64>()),
            text_field(),
        ),
        proptest::collection::vec(choice_json(), 0..3),
        usage_json(),
        proptest::option::of(text_field()),
        extra_fields(),
        any::<bool>(),
    )
        .prop_map(
            |((id, created, model), choices, usage, error, extra, pretty)| {
                let value = object(
                    vec![
                        ("id", id),
                        ("object", Some("chat.completion.chunk".into())),
                        ("created", created.map(Into::into)),
                        ("model", model),
                        ("choices", Some(choices.into())),
                        ("usage", usage),
                        (
                            "error",
                            error.map(|message| object(vec![("message", message)], vec![])),
                        ),
                    ],
                    extra,
                );
                if pretty {
                    serde_json::to_string_pretty(&value).unwrap()
                } else {
                    value.to_string()
                }
            },
        )
}

/// A chunk as a model streams most of them: an id, time and model, one choice whose delta
/// has one text field, perhaps usage and fields of its own; compact or pretty.
fn stream_chunk_json() -> impl Strategy<Value = String> {
    (
        (
            text_field(),
            proptest::option::of(any::<i64>()),
            text_field(),
        ),
        (0..3usize, "[a-z ]{0,12}"),
        usage_json(),
        extra_fields(),
        extra_fields(),
        any::<bool>(),
    )
        .prop_map(
            |((id, created, model), (which, text), usage, extra, choice_extra, pretty)| {
                let name = ["content", "reasoning_content", "reasoning"][which];
                let delta = object(vec![(name, Some(text.into()))], vec![]);
                let choice = object(
                    vec![
                        ("index", Some(0.into())),
                        ("delta", Some(delta)),
                        ("logprobs", Some(serde_json::Value::Null)),
                        ("finish_reason", Some(serde_json::Value::Null)),
                    ],
                    choice_extra,
                );
                let value = object(
                    vec![
                        ("id", id),
                        ("object", Some("chat.completion.chunk".into())),
                        ("created", created.map(Into::into)),
                        ("model", model),
                        ("choices", Some(vec![choice].into())),
                        ("usage", usage),
                    ],
                    extra,
                );
                if pretty {
                    serde_json::to_string_pretty(&value).unwrap()
                } else {
                    value.to_string()
                }
            },
        )
}

/// Whatever serde reads, the chunk reader reads the same.
fn reads_as_serde(text: &str) -> Result<(), TestCaseError> {
    let ours = chunk::read(text);
    if let Ok(reference) = serde_json::from_str::<ChunkView<'_>>(text) {
        prop_assert_eq!(ours, Ok(reference), "{}", text);
    }
    Ok(())
}

#[test]
fn the_chunk_reader_reads_every_chunk_as_serde_does() {
    check("chunk_read", cases(512, 1_000_000), chunk_json(), |text| {
        prop_assert!(
            serde_json::from_str::<ChunkView<'_>>(&text).is_ok(),
            "{}",
            text
        );
        reads_as_serde(&text)
    });
}

/// Damage to a chunk: JSON syntax bytes at places given as fractions of its length.
fn damage(count: std::ops::Range<usize>) -> impl Strategy<Value = Vec<(f64, u8)>> {
    proptest::collection::vec(
        (
            0.0..1.0_f64,
            prop::sample::select(br#"{}[]:,"\ 0-9.eEnul/"#.to_vec()),
        ),
        count,
    )
}

fn apply_damage(bytes: &mut [u8], damage: &[(f64, u8)]) {
    for &(at, byte) in damage {
        let at = ((bytes.len() as f64) * at) as usize;
        if at < bytes.len() {
            bytes[at] = byte;
        }
    }
}

#[test]
fn the_chunk_reader_agrees_with_serde_on_damaged_chunks_and_never_panics() {
    let damage = damage(1..4);
    check(
        "chunk_damaged",
        cases(512, 1_000_000),
        (chunk_json(), damage),
        |(text, damage)| {
            let mut bytes = text.into_bytes();
            apply_damage(&mut bytes, &damage);
            match std::str::from_utf8(&bytes) {
                Ok(text) => reads_as_serde(text),
                Err(_) => Ok(()),
            }
        },
    );
}

/// A chunk's text field's value, where the chunk has one and it was read without a copy.
fn text_span(text: &str) -> Option<std::ops::Range<usize>> {
    let view = chunk::read(text).ok()?;
    let delta = &view.choices.first()?.delta;
    let Some(Cow::Borrowed(value)) = delta
        .content
        .as_ref()
        .or(delta.reasoning_content.as_ref())
        .or(delta.reasoning.as_ref())
    else {
        return None;
    };
    let start = value.as_ptr() as usize - text.as_ptr() as usize;
    Some(start..start + value.len())
}

/// Any text to put in a chunk as its raw bytes: plain, or with quotes, escapes, control
/// characters, JSON syntax.
fn raw_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9 .,!?'-]{0,24}",
        2 => "\\PC{0,12}",
        1 => proptest::collection::vec(
            prop::sample::select(vec!["a", " ", "\"", "\\", "\\n", "\\u00e9", "\u{1}", "}", "]", ",", "é", "😀"]),
            0..8,
        )
        .prop_map(|parts| parts.concat()),
    ]
}

/// What may take the place of a quote around a chunk's text, or of a character in it.
const EDGE_BYTES: &[u8] = b"\"\\\x01 a}";

#[test]
fn a_chunk_read_from_the_shape_of_the_last_reads_as_it_does_in_full() {
    let damage = damage(0..3);
    let edge = proptest::option::of((0..3u8, prop::sample::select(EDGE_BYTES.to_vec())));
    check(
        "chunk_shape",
        cases(512, 1_000_000),
        (
            prop_oneof![chunk_json(), stream_chunk_json()],
            proptest::collection::vec((raw_text(), damage, edge), 1..4),
        ),
        |(first, nexts)| {
            let mut shape = chunk::Shape::default();
            prop_assert_eq!(shape.read(&first), chunk::read(&first), "{}", first);
            let Some(span) = text_span(&first) else {
                return Ok(());
            };
            for (text, damage, edge) in nexts {
                // The first chunk with another text in its place, perhaps damaged, at the
                // quotes around it or in it too.
                let mut bytes =
                    format!("{}{text}{}", &first[..span.start], &first[span.end..]).into_bytes();
                if let Some((place, byte)) = edge {
                    let at = match place {
                        0 => span.start - 1,
                        1 => span.start + text.len() / 2,
                        _ => span.start + text.len(),
                    };
                    bytes[at] = byte;
                }
                apply_damage(&mut bytes, &damage);
                let Ok(next) = std::str::from_utf8(&bytes) else {
                    continue;
                };
                prop_assert_eq!(
                    shape.read(next),
                    chunk::read(next),
                    "{} after {}",
                    next,
                    first
                );
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------
// Credentials.

const SECRET: &str = "property-secret-0123456789abcdef0123456789";

fn secrets() -> Vec<SecretString> {
    vec![SecretString::from(SECRET.to_owned())]
}

/// A token in the alphabet of compact JWS/JWE, with the odd character from outside it.
fn token_like() -> impl Strategy<Value = String> {
    let part = "[A-Za-z0-9_-]{0,60}";
    prop_oneof![
        "[ -~]{0,200}",
        (part, part, part).prop_map(|(a, b, c)| format!("{a}.{b}.{c}")),
        (part, part, part, part, part).prop_map(|(a, b, c, d, e)| format!("{a}.{b}.{c}.{d}.{e}")),
        // A real-looking header with nonsense after it.
        (part, part).prop_map(|(b, c)| format!(
            "{}.{b}.{c}",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#)
        )),
        (part, part, part).prop_map(|(b, c, d)| format!(
            "{}..{b}.{c}.{d}",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"dir","enc":"A256CBC-HS512"}"#)
        )),
    ]
}

/// One edit of a token: replace, insert or delete a character, swap two, or cut it short.
#[derive(Debug, Clone)]
enum Edit {
    Replace(usize, char),
    Insert(usize, char),
    Delete(usize),
    Swap(usize, usize),
    Truncate(usize),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let ch = prop_oneof![
        8 => proptest::char::ranges(Cow::Borrowed(&['A'..='Z', 'a'..='z', '0'..='9'])),
        1 => prop_oneof![Just('-'), Just('_'), Just('.'), Just('%'), Just('='), Just('+'), Just('/')],
        1 => any::<char>(),
    ];
    let edit = prop_oneof![
        4 => (any::<usize>(), ch.clone()).prop_map(|(i, c)| Edit::Replace(i, c)),
        2 => (any::<usize>(), ch).prop_map(|(i, c)| Edit::Insert(i, c)),
        2 => any::<usize>().prop_map(Edit::Delete),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(i, j)| Edit::Swap(i, j)),
        1 => any::<usize>().prop_map(Edit::Truncate),
    ];
    proptest::collection::vec(edit, 1..4)
}

fn apply(token: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    for edit in edits {
        let n = chars.len().max(1);
        match *edit {
            Edit::Replace(i, c) if !chars.is_empty() => chars[i % n] = c,
            Edit::Insert(i, c) => chars.insert(i % (chars.len() + 1), c),
            Edit::Delete(i) if !chars.is_empty() => {
                chars.remove(i % n);
            }
            Edit::Swap(i, j) if !chars.is_empty() => chars.swap(i % n, j % n),
            Edit::Truncate(i) => chars.truncate(i % n),
            _ => {}
        }
    }
    chars.into_iter().collect()
}

#[test]
fn random_bearer_tokens_never_pass() {
    let hs = Hs256::new(&secrets());
    let authjs = AuthJs::new(&secrets());
    check(
        "tokens_random",
        cases(512, 1_000_000),
        token_like(),
        |token| {
            prop_assert!(hs.verify(&token).is_err());
            prop_assert!(authjs.bearer(&token).is_err());
            prop_assert!(authjs.decode(&token, "authjs.session-token").is_err());
            Ok(())
        },
    );
}

#[test]
fn an_altered_hs256_token_is_never_accepted() {
    let hs = Hs256::new(&secrets());
    let user = UserId::parse("prop-user").unwrap();
    let token = hs.mint(&user, 3600).unwrap();
    assert_eq!(hs.verify(&token).unwrap(), user);
    check("jwt_mutated", cases(512, 1_500_000), edits(), |edits| {
        let altered = apply(&token, &edits);
        if altered != token {
            prop_assert!(hs.verify(&altered).is_err(), "accepted {:?}", altered);
        }
        Ok(())
    });
}

#[test]
fn an_altered_authjs_session_token_is_never_accepted() {
    let authjs = AuthJs::new(&secrets());
    let exp = jiff::Timestamp::now().as_second() + 3600;
    let cookie = "authjs.session-token";
    let token = authjs
        .encode(&json!({"sub": "prop-user", "exp": exp}), cookie)
        .unwrap();
    assert_eq!(authjs.decode(&token, cookie).unwrap().as_str(), "prop-user");
    assert_eq!(authjs.bearer(&token).unwrap().as_str(), "prop-user");
    check("authjs_mutated", cases(256, 1_000_000), edits(), |edits| {
        let altered = apply(&token, &edits);
        if altered != token {
            prop_assert!(authjs.decode(&altered, cookie).is_err(), "{:?}", altered);
            prop_assert!(authjs.bearer(&altered).is_err(), "bearer {:?}", altered);
        }
        Ok(())
    });
}

#[test]
fn session_cookie_headers_of_any_shape_never_panic() {
    let name = prop_oneof![
        Just("authjs.session-token".to_owned()),
        Just("__Secure-authjs.session-token".to_owned()),
        Just("next-auth.session-token".to_owned()),
        "authjs\\.session-token\\.[0-9]{1,25}",
        "[ -~]{0,12}",
    ];
    let pair = (name, "[ -:<-~]{0,20}").prop_map(|(n, v)| format!("{n}={v}"));
    let header = proptest::collection::vec(pair, 0..8).prop_map(|p| p.join("; "));
    check(
        "cookies",
        cases(512, 1_000_000),
        proptest::collection::vec(header, 0..3),
        |headers| {
            if let Some(Ok(found)) = session_token(headers.iter().map(String::as_str)) {
                // The cookie found is one the headers name, and its value came from them.
                let all = headers.concat();
                prop_assert!(all.contains(found.cookie_name));
                if !all.contains('%') {
                    prop_assert!(found.token.chars().all(|c| all.contains(c)));
                }
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------------------------------
// Cursors.

/// Strings that are base64url of cursor-like text often, and of anything otherwise.
fn cursor_like() -> impl Strategy<Value = String> {
    let text = prop_oneof![
        "(t1|s1|m1|x1):[-0-9]{0,22}(:[A-Za-z0-9_:t-]{0,70})?",
        "[ -~]{0,40}",
    ];
    prop_oneof![
        3 => text.prop_map(|t| URL_SAFE_NO_PAD.encode(t)),
        1 => proptest::collection::vec(any::<u8>(), 0..60).prop_map(|b| URL_SAFE_NO_PAD.encode(b)),
        1 => "[ -~]{0,60}",
    ]
}

#[test]
fn cursors_of_any_shape_never_panic_and_what_parses_reencodes() {
    check("cursors", cases(512, 1_500_000), cursor_like(), |raw| {
        if let Ok(c) = ThreadCursor::parse(&raw) {
            prop_assert_eq!(ThreadCursor::parse(&c.encode()), Ok(c));
        }
        if let Ok(c) = SearchCursor::parse(&raw) {
            prop_assert_eq!(SearchCursor::parse(&c.encode()), Ok(c));
        }
        if let Ok(c) = MessageCursor::parse(&raw) {
            prop_assert_eq!(MessageCursor::parse(&c.encode()), Ok(c));
        }
        Ok(())
    });
}

#[test]
fn every_cursor_we_issue_parses_back() {
    let strategy = (
        any::<i64>(),
        "[A-Za-z0-9_-]{1,64}",
        any::<u64>(),
        0..1_000_000_000_000_u64,
        prop_oneof![
            Just("t".to_owned()),
            (0..1_000_000_000_000_u64).prop_map(|n| n.to_string())
        ],
    );
    check(
        "cursor_round_trip",
        cases(256, 500_000),
        strategy,
        |(at, id, index, number, place)| {
            let thread = ThreadCursor {
                updated_at_ms: at,
                id: ThreadId::parse(&id).unwrap(),
            };
            prop_assert_eq!(ThreadCursor::parse(&thread.encode()), Ok(thread));
            let search = SearchCursor {
                score: at,
                doc: format!("{number}:{place}"),
            };
            prop_assert_eq!(SearchCursor::parse(&search.encode()), Ok(search));
            prop_assert_eq!(
                MessageCursor::parse(&MessageCursor(index).encode()),
                Ok(MessageCursor(index))
            );
            Ok(())
        },
    );
}
