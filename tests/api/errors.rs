//! Every bad input gets the single JSON error shape with the right status: one table per
//! endpoint.

use reqwest::{Method, StatusCode, header};

use crate::helpers::{TestApp, error_code, into_parts, random_user};

/// A request to make and the answer it must get.
struct Case {
    name: &'static str,
    method: Method,
    path: String,
    content_type: Option<&'static str>,
    body: Option<String>,
    authenticated: bool,
    status: StatusCode,
    code: &'static str,
    /// Text the error message must contain (the field it names).
    names: &'static str,
}

fn case(name: &'static str, method: Method, path: &str, status: u16, code: &'static str) -> Case {
    Case {
        name,
        method,
        path: path.to_owned(),
        content_type: None,
        body: None,
        authenticated: true,
        status: StatusCode::from_u16(status).unwrap(),
        code,
        names: "",
    }
}

impl Case {
    fn json(mut self, body: &str) -> Self {
        self.content_type = Some("application/json");
        self.body = Some(body.to_owned());
        self
    }

    fn raw(mut self, content_type: Option<&'static str>, body: &str) -> Self {
        self.content_type = content_type;
        self.body = Some(body.to_owned());
        self
    }

    fn naming(mut self, field: &'static str) -> Self {
        self.names = field;
        self
    }

    fn anonymous(mut self) -> Self {
        self.authenticated = false;
        self
    }
}

/// Body limit used by these tests, small so 413 is cheap to provoke.
const LIMIT: usize = 1024;

/// Sends each case (as the holder of `token` when authenticated) and checks its answer.
async fn run_as(app: &TestApp, token: &str, cases: Vec<Case>) {
    for case in cases {
        let mut req = app.client.request(case.method.clone(), app.url(&case.path));
        if case.authenticated {
            req = req.bearer_auth(token);
        }
        if let Some(ct) = case.content_type {
            req = req.header(header::CONTENT_TYPE, ct);
        }
        if let Some(body) = case.body {
            req = req.body(body);
        }
        let resp = req.send().await.unwrap();
        let content_type = resp.headers().get(header::CONTENT_TYPE).cloned();
        let allow = resp.headers().get(header::ALLOW).cloned();
        let (status, body) = into_parts(resp).await;
        assert_eq!(status, case.status, "{}: {body}", case.name);
        assert_eq!(error_code(&body), case.code, "{}", case.name);
        assert_eq!(
            content_type.as_ref().and_then(|v| v.to_str().ok()),
            Some("application/json"),
            "{}",
            case.name
        );
        if status == StatusCode::METHOD_NOT_ALLOWED {
            assert!(allow.is_some(), "{}: 405 without `allow`", case.name);
        }
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(case.names),
            "{}: {message:?} does not name {:?}",
            case.name,
            case.names
        );
    }
}

async fn run(app: &TestApp, cases: Vec<Case>) {
    run_as(app, &app.token_for(&random_user()), cases).await;
}

async fn small_body_app() -> TestApp {
    TestApp::spawn_with(|config| config.http.max_body_bytes = LIMIT).await
}

#[tokio::test]
async fn threads_collection_rejects_bad_input_with_json_errors() {
    let app = small_body_app().await;
    let big = format!(r#"{{"title": "{}"}}"#, "a".repeat(LIMIT));
    let p = "/api/threads";
    let cases = vec![
        case("no token", Method::GET, p, 401, "unauthorized").anonymous(),
        case("no token on create", Method::POST, p, 401, "unauthorized")
            .anonymous()
            .json("{}"),
        case(
            "limit zero",
            Method::GET,
            "/api/threads?limit=0",
            400,
            "invalid_param",
        ),
        case(
            "limit too big",
            Method::GET,
            "/api/threads?limit=101",
            400,
            "invalid_param",
        ),
        case(
            "limit not a number",
            Method::GET,
            "/api/threads?limit=ten",
            400,
            "invalid_param",
        ),
        case(
            "forged cursor",
            Method::GET,
            "/api/threads?cursor=abc",
            400,
            "invalid_param",
        ),
        case("text body", Method::POST, p, 415, "unsupported_media_type")
            .raw(Some("text/plain"), "{}"),
        case("form body", Method::POST, p, 415, "unsupported_media_type")
            .raw(Some("application/x-www-form-urlencoded"), "title=x"),
        case(
            "body without a type",
            Method::POST,
            p,
            415,
            "unsupported_media_type",
        )
        .raw(None, r#"{"title":"x"}"#),
        case("broken json", Method::POST, p, 400, "invalid_json").json(r#"{"title": "#),
        case("title not a string", Method::POST, p, 400, "invalid_body").json(r#"{"title": 5}"#),
        case("blank title", Method::POST, p, 400, "invalid_body").json(r#"{"title": "  "}"#),
        case("title with a newline", Method::POST, p, 400, "invalid_body")
            .json(r#"{"title": "a\nb"}"#),
        case("title too long", Method::POST, p, 400, "invalid_body")
            .json(&format!(r#"{{"title": "{}"}}"#, "a".repeat(201))),
        case("id with a slash", Method::POST, p, 400, "invalid_body").json(r#"{"id": "a/b"}"#),
        case("id too long", Method::POST, p, 400, "invalid_body")
            .json(&format!(r#"{{"id": "{}"}}"#, "a".repeat(65))),
        case("array body", Method::POST, p, 400, "invalid_body").json("[]"),
        case(
            "body over the limit",
            Method::POST,
            p,
            413,
            "payload_too_large",
        )
        .json(&big),
        case("put", Method::PUT, p, 405, "method_not_allowed").json("{}"),
        case("patch", Method::PATCH, p, 405, "method_not_allowed").json("{}"),
    ];
    run(&app, cases).await;
}

#[tokio::test]
async fn a_single_thread_rejects_bad_input_with_json_errors() {
    let app = small_body_app().await;
    let token = app.token_for(&random_user());
    // The cases run as another user; this thread only shows a valid id gets the same errors.
    let id = app.new_thread_id(&token, "x").await;
    let p = "/api/threads/Xy7kP2mQ9rT4vW1z";
    let big = format!(r#"{{"title": "{}"}}"#, "a".repeat(LIMIT));
    let cases = vec![
        case("no token", Method::GET, p, 401, "unauthorized").anonymous(),
        case("unknown thread", Method::GET, p, 404, "thread_not_found"),
        case(
            "someone else's thread",
            Method::GET,
            &format!("/api/threads/{id}"),
            404,
            "thread_not_found",
        ),
        case(
            "malformed id",
            Method::GET,
            "/api/threads/bad.id",
            404,
            "thread_not_found",
        ),
        case("delete unknown", Method::DELETE, p, 404, "thread_not_found"),
        case("rename unknown", Method::PATCH, p, 404, "thread_not_found").json(r#"{"title":"t"}"#),
        case(
            "limit zero",
            Method::GET,
            &format!("{p}?limit=0"),
            400,
            "invalid_param",
        ),
        case(
            "limit too big",
            Method::GET,
            &format!("{p}?limit=1000"),
            400,
            "invalid_param",
        ),
        case(
            "forged before",
            Method::GET,
            &format!("{p}?before=zz"),
            400,
            "invalid_param",
        ),
        case(
            "rename without a type",
            Method::PATCH,
            p,
            415,
            "unsupported_media_type",
        )
        .raw(None, r#"{"title":"t"}"#),
        case(
            "rename with text",
            Method::PATCH,
            p,
            415,
            "unsupported_media_type",
        )
        .raw(Some("text/plain"), r#"{"title":"t"}"#),
        case(
            "rename without a body",
            Method::PATCH,
            p,
            400,
            "invalid_json",
        )
        .json(""),
        case(
            "rename without a title",
            Method::PATCH,
            p,
            400,
            "invalid_body",
        )
        .json("{}"),
        case("rename to blank", Method::PATCH, p, 400, "invalid_body").json(r#"{"title":""}"#),
        case(
            "rename with broken json",
            Method::PATCH,
            p,
            400,
            "invalid_json",
        )
        .json("{"),
        case(
            "rename over the limit",
            Method::PATCH,
            p,
            413,
            "payload_too_large",
        )
        .json(&big),
        case("post", Method::POST, p, 405, "method_not_allowed").json("{}"),
        case("put", Method::PUT, p, 405, "method_not_allowed").json("{}"),
    ];
    run(&app, cases).await;
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let app = TestApp::spawn().await;
    let cases = vec![
        case(
            "get chat",
            Method::GET,
            "/api/chat",
            405,
            "method_not_allowed",
        ),
        case(
            "delete chat",
            Method::DELETE,
            "/api/chat/completions",
            405,
            "method_not_allowed",
        ),
        case("unknown route", Method::GET, "/api/nope", 404, "not_found"),
        case("root", Method::GET, "/", 404, "not_found"),
    ];
    run(&app, cases).await;
}

#[tokio::test]
async fn chat_rejects_every_invalid_request_with_a_json_error_naming_the_field() {
    let app = TestApp::spawn_with(|config| {
        config.http.max_body_bytes = 4096;
        config.chat.max_messages = 3;
        config.chat.max_content_chars = 50;
        config.chat.max_tokens_cap = 100;
    })
    .await;
    let user_id = random_user();
    let token = app.token_for(&user_id);
    let p = "/api/chat";
    let user = r#"{"role":"user","content":"hi"}"#;
    let with = |extra: &str| format!(r#"{{"messages":[{user}]{extra}}}"#);
    let cases = vec![
        case("no token", Method::POST, p, 401, "unauthorized").anonymous().json(&with("")),
        case("text body", Method::POST, p, 415, "unsupported_media_type").raw(Some("text/plain"), &with("")),
        case("no content type", Method::POST, p, 415, "unsupported_media_type").raw(None, &with("")),
        case("too large", Method::POST, p, 413, "payload_too_large").json(&with(&format!(r#","pad":"{}""#, "x".repeat(5000)))),
        case("not json", Method::POST, p, 400, "invalid_json").json("{"),
        case("not an object", Method::POST, p, 400, "invalid_body").json("[]"),
        case("no messages", Method::POST, p, 400, "invalid_body").json("{}").naming("messages"),
        case("empty messages", Method::POST, p, 400, "invalid_body").json(r#"{"messages":[]}"#).naming("messages"),
        case("too many messages", Method::POST, p, 400, "invalid_body").json(&format!(r#"{{"messages":[{user},{user},{user},{user}]}}"#)).naming("messages"),
        case("unknown role", Method::POST, p, 400, "invalid_body").json(r#"{"messages":[{"role":"wizard","content":"hi"}]}"#).naming("messages[0].role"),
        case("tool result without its call", Method::POST, p, 400, "invalid_body").json(r#"{"messages":[{"role":"tool","content":"hi"}]}"#).naming("messages[0].tool_call_id"),
        case("tool result for an unknown call", Method::POST, p, 400, "invalid_body").json(r#"{"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"w","arguments":"{}"}}]},{"role":"tool","tool_call_id":"c2","content":"x"}]}"#).naming("messages[2].tool_call_id"),
        case("tools not a list", Method::POST, p, 400, "invalid_body").json(r#"{"tools":{},"messages":[{"role":"user","content":"hi"}]}"#).naming("tools"),
        case("tool schema not an object schema", Method::POST, p, 400, "invalid_body").json(r#"{"tools":[{"type":"function","function":{"name":"w","parameters":{"type":"array"}}}],"messages":[{"role":"user","content":"hi"}]}"#).naming("tools[0].function.parameters"),
        case("tool schema invalid", Method::POST, p, 400, "invalid_body").json(r#"{"tools":[{"type":"function","function":{"name":"w","parameters":{"type":"object","properties":{"a":{"type":"strnig"}}}}}],"messages":[{"role":"user","content":"hi"}]}"#).naming("tools[0].function.parameters"),
        case("tool choice names no tool", Method::POST, p, 400, "invalid_body").json(r#"{"tools":[{"type":"function","function":{"name":"w"}}],"tool_choice":{"type":"function","function":{"name":"v"}},"messages":[{"role":"user","content":"hi"}]}"#).naming("tool_choice.function.name"),
        case("truncation unknown", Method::POST, p, 400, "invalid_body").json(r#"{"truncation":"sometimes","messages":[{"role":"user","content":"hi"}]}"#).naming("truncation"),
        case("tool choice without tools", Method::POST, p, 400, "invalid_body").json(r#"{"tool_choice":"required","messages":[{"role":"user","content":"hi"}]}"#).naming("tool_choice"),
        case("missing content", Method::POST, p, 400, "invalid_body").json(r#"{"messages":[{"role":"user"}]}"#).naming("messages"),
        case("empty content", Method::POST, p, 400, "invalid_body").json(r#"{"messages":[{"role":"user","content":"  "}]}"#).naming("messages[0].content"),
        case("content too long", Method::POST, p, 400, "invalid_body").json(&format!(r#"{{"messages":[{{"role":"user","content":"{}"}}]}}"#, "a".repeat(51))).naming("messages[0].content"),
        case("image part", Method::POST, p, 400, "invalid_body").json(r#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}"#).naming("messages[0].content"),
        case("last is assistant", Method::POST, p, 400, "invalid_body").json(&format!(r#"{{"messages":[{user},{{"role":"assistant","content":"a"}}]}}"#)).naming("messages[1]"),
        case("bad message id", Method::POST, p, 400, "invalid_body").json(r#"{"messages":[{"id":"a b","role":"user","content":"hi"}]}"#).naming("messages[0].id"),
        case("unknown model", Method::POST, p, 400, "invalid_body").json(&with(r#","model":"gpt-4o""#)).naming("model"),
        case("temperature too high", Method::POST, p, 400, "invalid_body").json(&with(r#","temperature":2.5"#)).naming("temperature"),
        case("negative temperature", Method::POST, p, 400, "invalid_body").json(&with(r#","temperature":-1"#)).naming("temperature"),
        case("temperature not a number", Method::POST, p, 400, "invalid_body").json(&with(r#","temperature":"hot""#)).naming("temperature"),
        case("zero max_tokens", Method::POST, p, 400, "invalid_body").json(&with(r#","max_tokens":0"#)).naming("max_tokens"),
        case("max_tokens over the cap", Method::POST, p, 400, "invalid_body").json(&with(r#","max_tokens":101"#)).naming("max_tokens"),
        case("n of two", Method::POST, p, 400, "invalid_body").json(&with(r#","n":2"#)).naming("`n`"),
        case("bad thread id", Method::POST, p, 400, "invalid_body").json(&with(r#","threadId":"no/slash""#)).naming("threadId"),
        case("unknown thread", Method::POST, p, 404, "thread_not_found").json(&with(r#","threadId":"Xy7kP2mQ9rT4vW1z""#)),
    ];
    run_as(&app, &token, cases).await;
    assert_eq!(app.mock.calls(), 0, "an invalid request reached the model");
    assert_eq!(
        app.keys_of(&user_id).await,
        Vec::<String>::new(),
        "nothing was stored"
    );
}

#[tokio::test]
async fn chat_accepts_what_the_openai_sdks_send() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let resp = app
        .client
        .post(app.url("/api/chat/completions"))
        .bearer_auth(&token)
        .header(header::ACCEPT, "application/json")
        .header("x-stainless-retry-count", "0")
        .json(&serde_json::json!({
            "model": "Hermes-4-70B",
            "messages": [
                { "role": "developer", "content": "Be brief." },
                { "role": "user", "content": [{ "type": "text", "text": "hello" }] },
            ],
            "stream": true,
            "stream_options": { "include_usage": true },
            "n": 1,
            "user": "end-user-1",
            "max_completion_tokens": 50,
            "temperature": 0.2,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let sent = &app.mock.requests()[0];
    assert_eq!(sent["messages"][0]["role"], "system");
    assert_eq!(sent["messages"][1]["content"], "hello");
    assert_eq!(sent["max_tokens"], 50);
}

#[tokio::test]
async fn every_route_that_reads_its_body_itself_refuses_one_over_the_limit_in_its_error_shape() {
    // These routes parse their (optional) bodies themselves; axum's own byte extractor answered
    // a plain-text 413 at its 2 MB default, whatever `MAX_BODY_BYTES` said.
    let app = small_body_app().await;
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(LIMIT));
    let cases = vec![
        case(
            "share",
            Method::POST,
            "/api/threads/t1/share",
            413,
            "payload_too_large",
        )
        .json(&big),
        case(
            "fork",
            Method::POST,
            "/api/threads/t1/fork",
            413,
            "payload_too_large",
        )
        .json(&big),
        case(
            "title",
            Method::POST,
            "/api/threads/t1/title",
            413,
            "payload_too_large",
        )
        .json(&big),
        case(
            "feedback",
            Method::PUT,
            "/api/threads/t1/messages/m1/feedback",
            413,
            "payload_too_large",
        )
        .json(&big),
        case(
            "create a response",
            Method::POST,
            "/api/responses",
            413,
            "payload_too_large",
        )
        .json(&big),
        case(
            "create a conversation",
            Method::POST,
            "/api/conversations",
            413,
            "payload_too_large",
        )
        .json(&big),
        case(
            "add items",
            Method::POST,
            "/api/conversations/c1/items",
            413,
            "payload_too_large",
        )
        .json(&big),
    ];
    run(&app, cases).await;
}
