//! Property test of every route that takes a body: arbitrary JSON (shaped like the routes'
//! own fields often enough to get past the first check) and now and then bytes that are not
//! JSON at all. The answer is a success or a 4xx with the route's error shape, never a 5xx,
//! never a dropped connection (a panic). `PROPERTIES_LONG=1` runs 100,000 cases instead of a
//! few hundred.

use std::{collections::BTreeMap, sync::Mutex, time::Instant};

use proptest::{
    prelude::*,
    test_runner::{Config, TestRunner},
};
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

use crate::helpers::TestApp;

/// Field names the routes read, so generated objects reach past "unknown shape" often.
const FIELDS: &[&str] = &[
    "id",
    "title",
    "messages",
    "message",
    "role",
    "content",
    "parts",
    "type",
    "text",
    "threadId",
    "model",
    "stream",
    "stream_options",
    "include_usage",
    "tools",
    "tool_choice",
    "tool_call_id",
    "tool_calls",
    "function",
    "name",
    "arguments",
    "parameters",
    "input",
    "items",
    "instructions",
    "previous_response_id",
    "conversation",
    "store",
    "background",
    "metadata",
    "tags",
    "archived",
    "pinned",
    "externalId",
    "activeLeafId",
    "rating",
    "comment",
    "expiresInDays",
    "messageId",
    "reasoning",
    "reasoning_effort",
    "effort",
    "max_tokens",
    "max_output_tokens",
    "temperature",
    "trigger",
    "url",
    "mediaType",
    "filename",
    "data",
    "truncation",
    "n",
];

/// Strings that mean something somewhere: roles, part types, ids, and awkward text.
const STRINGS: &[&str] = &[
    "",
    "user",
    "assistant",
    "system",
    "tool",
    "developer",
    "text",
    "file",
    "image_url",
    "input_text",
    "message",
    "function",
    "function_call_output",
    "submit-message",
    "regenerate-message",
    "up",
    "down",
    "auto",
    "none",
    "required",
    "high",
    "Hermes-4-70B",
    "t-prop",
    "m-prop",
    "hello",
    "é🙂\u{0}",
    "data:text/plain;base64,aGk=",
    "https://example.com/x.png",
    "../x",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e12..1e12_f64).prop_map(Value::from),
        prop::sample::select(STRINGS).prop_map(Value::from),
        "[ -~]{0,24}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        6 => prop::sample::select(FIELDS).prop_map(str::to_owned),
                        1 => "[a-z_]{1,10}",
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// One change to a valid body: at the `at`-th place in it (every value, in order), put
/// `value` there, remove what is there, or add a field `name` to the object there.
#[derive(Debug, Clone)]
enum Change {
    Replace(usize, Value),
    Remove(usize),
    Add(usize, String, Value),
}

fn changes() -> impl Strategy<Value = Vec<Change>> {
    let change = prop_oneof![
        4 => (any::<usize>(), json_value()).prop_map(|(at, v)| Change::Replace(at, v)),
        2 => any::<usize>().prop_map(Change::Remove),
        1 => (
            any::<usize>(),
            prop::sample::select(FIELDS).prop_map(str::to_owned),
            json_value()
        )
            .prop_map(|(at, name, v)| Change::Add(at, name, v)),
    ];
    prop::collection::vec(change, 1..4)
}

/// Every JSON pointer into `value`, the root first.
fn places(value: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                places(
                    v,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                places(v, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// `template` with `changes` made to it.
fn changed(template: &Value, changes: &[Change]) -> Value {
    let mut body = template.clone();
    for change in changes {
        let mut all = Vec::new();
        places(&body, String::new(), &mut all);
        let pick = |at: usize| all[at % all.len()].clone();
        match change {
            Change::Replace(at, value) => {
                let at = pick(*at);
                if at.is_empty() {
                    body = value.clone();
                } else if let Some(slot) = body.pointer_mut(&at) {
                    *slot = value.clone();
                }
            }
            Change::Remove(at) => {
                let at = pick(*at);
                let Some((parent, last)) = at.rsplit_once('/') else {
                    continue;
                };
                match body.pointer_mut(parent) {
                    Some(Value::Object(map)) => {
                        map.remove(&last.replace("~1", "/").replace("~0", "~"));
                    }
                    Some(Value::Array(items)) => {
                        if let Ok(i) = last.parse::<usize>() {
                            items.remove(i);
                        }
                    }
                    _ => {}
                }
            }
            Change::Add(at, name, value) => {
                if let Some(Value::Object(map)) = body.pointer_mut(&pick(*at)) {
                    map.insert(name.clone(), value.clone());
                }
            }
        }
    }
    body
}

/// What is sent: a valid body of the route with a few changes (most often), any JSON, bytes
/// that are not JSON, or JSON cut short.
#[derive(Debug, Clone)]
enum Body {
    Changed(Vec<Change>),
    Json(Value),
    Bytes(Vec<u8>),
    Cut(Value),
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        8 => changes().prop_map(Body::Changed),
        3 => json_value().prop_map(Body::Json),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Body::Bytes),
        1 => json_value().prop_map(Body::Cut),
    ]
}

impl Body {
    fn bytes(&self, template: &Value) -> Vec<u8> {
        match self {
            Self::Changed(changes) => changed(template, changes).to_string().into_bytes(),
            Self::Json(value) => value.to_string().into_bytes(),
            Self::Bytes(bytes) => bytes.clone(),
            Self::Cut(value) => {
                let mut text = value.to_string();
                let mut cut = text.len() / 2;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
                text.into_bytes()
            }
        }
    }
}

/// Every route that takes a body, with ids that exist (or do not) for the user, and a body
/// it accepts.
fn routes(model: &str, reply: &str) -> Vec<(&'static str, String, Value)> {
    let user_says = json!([{"role": "user", "content": "hi"}]);
    let item = json!([{"type": "message", "role": "user", "content": "hi"}]);
    vec![
        (
            "POST",
            "/api/threads".into(),
            json!({"title": "x", "tags": ["a"], "metadata": {"k": "v"}, "pinned": true}),
        ),
        (
            "PATCH",
            "/api/threads/t-prop".into(),
            json!({"title": "y", "archived": false, "tags": ["b"], "externalId": "e1"}),
        ),
        (
            "PATCH",
            "/api/threads/missing".into(),
            json!({"title": "y"}),
        ),
        (
            "POST",
            "/api/threads/t-prop/fork".into(),
            json!({"messageId": "m-user"}),
        ),
        (
            "POST",
            "/api/threads/t-prop/share".into(),
            json!({"expiresInDays": 7}),
        ),
        ("POST", "/api/threads/t-prop/title".into(), json!({})),
        (
            "PUT",
            format!("/api/threads/t-prop/messages/{reply}/feedback"),
            json!({"rating": "up", "comment": "ok"}),
        ),
        (
            "POST",
            "/api/chat".into(),
            json!({"threadId": "t-prop", "messages": user_says}),
        ),
        (
            "POST",
            "/api/chat".into(),
            json!({"id": "t-ui", "trigger": "submit-message", "messages": [{"id": "u1", "role": "user", "parts": [{"type": "text", "text": "hi"}]}]}),
        ),
        (
            "POST",
            "/api/chat/completions".into(),
            json!({"model": model, "messages": user_says, "stream": true, "stream_options": {"include_usage": true}}),
        ),
        (
            "POST",
            "/api/chat/completions".into(),
            json!({"model": model, "messages": user_says, "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]}),
        ),
        ("POST", "/api/chat/t-prop/stop".into(), json!({})),
        (
            "POST",
            "/api/responses".into(),
            json!({"model": model, "input": "hi", "reasoning": {"effort": "low"}}),
        ),
        (
            "POST",
            "/api/responses".into(),
            json!({"model": model, "input": item, "stream": true, "store": true}),
        ),
        (
            "POST",
            "/api/conversations".into(),
            json!({"items": item, "metadata": {"a": "b"}}),
        ),
        (
            "POST",
            "/api/conversations/t-prop".into(),
            json!({"metadata": {"a": "b"}}),
        ),
        (
            "POST",
            "/api/conversations/t-prop/items".into(),
            json!({"items": item}),
        ),
        (
            "POST",
            "/api/import".into(),
            json!({"object": "list", "data": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}]}),
        ),
    ]
}

/// Sends `body` and reads the whole answer, whatever its type.
async fn send(
    app: &TestApp,
    token: &str,
    method: &str,
    path: &str,
    body: Vec<u8>,
) -> Result<(StatusCode, String), String> {
    let resp = app
        .client
        .request(
            Method::from_bytes(method.as_bytes()).unwrap(),
            app.url(path),
        )
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("{method} {path}: no answer: {e}"))?;
    let status = resp.status();
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| format!("{method} {path}: body cut: {e}"))?;
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}

#[test]
fn no_body_of_any_shape_gets_a_server_error() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let app = runtime.block_on(TestApp::spawn());
    let token = app.token_for("prop-user");
    let (model, reply) = runtime.block_on(async {
        let (status, _) = app
            .request(Method::POST, "/api/threads", Some(&token), Some(json!({"id": "t-prop"})))
            .await;
        assert_eq!(status, 201);
        let turn = app
            .chat(
                &token,
                json!({"threadId": "t-prop", "messages": [{"id": "m-user", "role": "user", "content": "hi"}]}),
            )
            .await;
        assert_eq!(turn.status, 200, "the setup turn");
        let messages = app.messages(&token, "t-prop").await;
        let reply = messages[1]["id"].as_str().unwrap().to_owned();
        let (_, models) = app.get("/api/models", &token).await;
        (models["data"][0]["id"].as_str().unwrap().to_owned(), reply)
    });
    let routes = routes(&model, &reply);
    // Each template is a body its route accepts, so changes to it test the checks behind the
    // first one.
    for (method, path, template) in &routes {
        let (status, body) = runtime
            .block_on(send(
                &app,
                &token,
                method,
                path,
                template.to_string().into_bytes(),
            ))
            .unwrap();
        let want_ok = !path.ends_with("/missing");
        assert_eq!(
            status.is_success(),
            want_ok,
            "{method} {path} with {template} → {status}: {body}"
        );
    }
    let long = std::env::var_os("PROPERTIES_LONG").is_some_and(|v| v != "0");
    let cases = if long { 100_000 } else { 400 };
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (0..routes.len(), body());
    let started = Instant::now();
    let tally: Mutex<BTreeMap<(&str, String, u16), u32>> = Mutex::default();
    let result = runner.run(&strategy, |(route, body)| {
        let (method, path, template) = &routes[route];
        let bytes = body.bytes(template);
        let (status, text) = runtime
            .block_on(send(&app, &token, method, path, bytes.clone()))
            .map_err(TestCaseError::fail)?;
        *tally
            .lock()
            .unwrap()
            .entry((method, path.clone(), status.as_u16()))
            .or_default() += 1;
        let shown = String::from_utf8_lossy(&bytes);
        prop_assert!(
            !status.is_server_error(),
            "{} {} with {} → {}: {}",
            method,
            path,
            shown,
            status,
            text
        );
        if status.is_client_error() {
            let error: Value = serde_json::from_str(&text)
                .map_err(|_| TestCaseError::fail(format!("{status} not JSON: {text}")))?;
            let message = error["error"]["message"].as_str().unwrap_or_default();
            prop_assert!(
                !message.is_empty(),
                "{} {} → {} {}",
                method,
                path,
                status,
                text
            );
            prop_assert!(error["error"]["code"].is_string() || error["error"]["type"].is_string());
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    eprintln!(
        "property route bodies: {cases} cases in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let tally = tally.into_inner().unwrap();
    for ((method, path, status), n) in &tally {
        eprintln!("  {method} {path} → {status}: {n}");
    }
}
