//! The OpenAPI document (`docs/openapi.json`) as a check on every response the integration
//! tests receive.
//!
//! [`check`] is a middleware that [`super::TestApp`] puts in front of the routers it serves
//! (and `web.rs` in front of the dev server's site): each response is checked against the
//! operation its method and path name in the document — its status is one the operation
//! lists, the headers it marks required are there and every documented header it carries has
//! the documented type, its content type is one the status lists, a JSON body validates against
//! that media type's schema, and so does every event of an event stream (`x-sse-data`) and
//! every line of an NDJSON stream (`x-ndjson-item`), as they pass. A path that is no route must
//! answer `404` in an error shape; a method the route does not take, `405` with `allow`; the
//! dev server's `408` (a request too slow to arrive) may answer any route, in an error shape.
//!
//! Mismatches are collected in the app's [`Violations`]; the app fails
//! the test when it is dropped ([`Violations::assert_none`]), naming each one.

use std::{
    collections::HashMap,
    sync::{Arc, LazyLock, Mutex},
};

use axum::{
    body::{Body, Bytes},
    extract::{Request, State},
    http::{HeaderMap, Method, StatusCode, header},
    middleware::Next,
    response::Response,
};
use futures_util::StreamExt;
use serde_json::{Value, json};

/// The document the server serves at `/api/openapi.json`.
pub const DOCUMENT: &str = include_str!("../../../docs/openapi.json");

/// The parsed document, once per test process.
pub static SPEC: LazyLock<Value> =
    LazyLock::new(|| serde_json::from_str(DOCUMENT).expect("docs/openapi.json is JSON"));

/// Compiled validators by the JSON text of their schema.
static VALIDATORS: LazyLock<Mutex<HashMap<String, Arc<jsonschema::Validator>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Route prefixes whose errors have OpenAI's shape.
const OPENAI_PREFIXES: [&str; 3] = ["/api/responses", "/api/conversations", "/api/models"];

/// The mismatches found in one app's responses.
#[derive(Clone, Default)]
pub struct Violations(Arc<Mutex<Vec<String>>>);

impl Violations {
    fn push(&self, violation: String) {
        self.0.lock().unwrap().push(violation);
    }

    /// Fails the test naming every mismatch (unless it is failing already).
    pub fn assert_none(&self) {
        let found = self.0.lock().unwrap().clone();
        if !found.is_empty() && !std::thread::panicking() {
            panic!(
                "{} response(s) do not match docs/openapi.json:\n- {}",
                found.len(),
                found.join("\n- ")
            );
        }
    }
}

/// A target of the document: the operation of a method and path.
struct Target {
    /// `METHOD /path` as requested, for messages.
    label: String,
    /// The document's path template, when the path is a route.
    template: Option<String>,
    /// The operation, when the route takes the method.
    operation: Option<Value>,
    openai_errors: bool,
}

/// The middleware: checks each response against the document, collecting mismatches in
/// `violations`.
pub async fn check(State(violations): State<Violations>, request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    // The dev server's app files and local sign-in are not API; CORS preflights are answered
    // by the CORS layer for every route.
    if !path.starts_with("/api") || method == Method::OPTIONS {
        return next.run(request).await;
    }
    let target = target(&method, &path);
    let response = next.run(request).await;
    let head_only = method == Method::HEAD;
    inspect(&violations, &target, response, head_only).await
}

fn target(method: &Method, path: &str) -> Target {
    let label = format!("{method} {path}");
    let openai_errors = OPENAI_PREFIXES.iter().any(|p| path.starts_with(p));
    let Some(template) = template_of(path) else {
        return Target {
            label,
            template: None,
            operation: None,
            openai_errors,
        };
    };
    let verb = if *method == Method::HEAD {
        "get".to_owned()
    } else {
        method.as_str().to_ascii_lowercase()
    };
    let operation = SPEC["paths"][&template].get(&verb).cloned();
    Target {
        label,
        template: Some(template),
        operation,
        openai_errors,
    }
}

/// The document's path template that `path` matches (literal segments win over parameters).
pub fn template_of(path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('/').collect();
    SPEC["paths"]
        .as_object()?
        .keys()
        .filter_map(|template| {
            let parts: Vec<&str> = template.split('/').collect();
            if parts.len() != segments.len() {
                return None;
            }
            let mut literal = 0;
            for (part, segment) in parts.iter().zip(&segments) {
                if part.starts_with('{') && part.ends_with('}') {
                    if segment.is_empty() {
                        return None;
                    }
                } else if part == segment {
                    literal += 1;
                } else {
                    return None;
                }
            }
            Some((literal, template))
        })
        .max_by_key(|(literal, _)| *literal)
        .map(|(_, template)| template.clone())
}

/// Follows a `$ref` into the document's components.
fn resolve(value: &Value) -> &Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => SPEC
            .pointer(reference.trim_start_matches('#'))
            .unwrap_or(&Value::Null),
        None => value,
    }
}

/// The errors of `instance` against `schema` (an inline schema of the document, whose `$ref`s
/// point into its components).
pub fn schema_errors(schema: &Value, instance: &Value) -> Vec<String> {
    let key = schema.to_string();
    let validator = {
        let mut cache = VALIDATORS.lock().unwrap();
        Arc::clone(cache.entry(key).or_insert_with(|| {
            let mut root = schema.clone();
            if let Some(object) = root.as_object_mut() {
                object.insert("components".to_owned(), SPEC["components"].clone());
            }
            Arc::new(
                jsonschema::validator_for(&root)
                    .unwrap_or_else(|e| panic!("docs/openapi.json has an invalid schema: {e}")),
            )
        }))
    };
    validator
        .iter_errors(instance)
        .take(5)
        .map(|e| format!("{e} (at `{}`)", e.instance_path()))
        .collect()
}

fn clip(text: &str) -> String {
    if text.chars().count() > 600 {
        format!("{}…", text.chars().take(600).collect::<String>())
    } else {
        text.to_owned()
    }
}

fn media_essence(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

async fn inspect(
    violations: &Violations,
    target: &Target,
    response: Response,
    head_only: bool,
) -> Response {
    let status = response.status();
    let at = format!("{} -> {}", target.label, status.as_u16());
    if status == StatusCode::REQUEST_TIMEOUT {
        // The dev server's answer to a request that arrives too slowly, on any route (the
        // document says so once, in its description).
        return check_error_body(violations, &at, response, None).await;
    }
    let Some(template) = &target.template else {
        // No route: the router's own 404.
        if status != StatusCode::NOT_FOUND {
            violations.push(format!(
                "{at}: the path is not in the document, so only `404` may answer it"
            ));
        }
        return check_error_body(violations, &at, response, None).await;
    };
    let Some(operation) = &target.operation else {
        // A method the route does not take.
        if status != StatusCode::METHOD_NOT_ALLOWED && status != StatusCode::NOT_FOUND {
            violations.push(format!(
                "{at}: the document has no such operation on `{template}`, so only `405` (or `404`) may answer it"
            ));
        }
        if status == StatusCode::METHOD_NOT_ALLOWED && !response.headers().contains_key("allow") {
            violations.push(format!("{at}: a `405` without `allow`"));
        }
        return check_error_body(violations, &at, response, Some(target.openai_errors)).await;
    };
    let Some(documented) = operation["responses"].get(status.as_str()).map(resolve) else {
        violations.push(format!(
            "{at}: `{}` does not list status {} (it lists {:?})",
            operation["operationId"].as_str().unwrap_or(template),
            status.as_u16(),
            operation["responses"]
                .as_object()
                .map(|r| r.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default()
        ));
        return response;
    };
    check_headers(violations, &at, documented, response.headers());
    let essence = media_essence(response.headers());
    let content = documented.get("content").and_then(Value::as_object);
    let media = match (&essence, content) {
        (Some(essence), Some(content)) => match content.get(essence.as_str()) {
            Some(media) => Some(media.clone()),
            None => {
                violations.push(format!(
                    "{at}: content type `{essence}` is not one the document lists ({:?})",
                    content.keys().collect::<Vec<_>>()
                ));
                return response;
            }
        },
        (Some(essence), None) if status != StatusCode::NO_CONTENT => {
            violations.push(format!(
                "{at}: a `{essence}` body where the document lists none"
            ));
            return response;
        }
        _ => None,
    };
    if head_only {
        return response;
    }
    let (parts, body) = response.into_parts();
    let Some(media) = media else {
        if status == StatusCode::NO_CONTENT {
            return Response::from_parts(parts, body);
        }
        // No content type: the body must be empty.
        let bytes = axum::body::to_bytes(body, usize::MAX)
            .await
            .unwrap_or_default();
        if !bytes.is_empty() && content.is_some() {
            violations.push(format!("{at}: a body without a content type"));
        }
        return Response::from_parts(parts, Body::from(bytes));
    };
    let essence = essence.unwrap_or_default();
    if essence == "application/json" {
        let bytes = axum::body::to_bytes(body, usize::MAX)
            .await
            .unwrap_or_default();
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(value) => {
                let errors = schema_errors(&media["schema"], &value);
                if !errors.is_empty() {
                    violations.push(format!(
                        "{at}: the body does not match the schema: {}; body: {}",
                        errors.join("; "),
                        clip(&value.to_string())
                    ));
                }
            }
            Err(e) => violations.push(format!("{at}: the body is not JSON ({e})")),
        }
        return Response::from_parts(parts, Body::from(bytes));
    }
    let item = if essence == "text/event-stream" {
        media.get("x-sse-data").cloned().map(|s| (s, Framing::Sse))
    } else if essence == "application/x-ndjson" {
        media
            .get("x-ndjson-item")
            .cloned()
            .map(|s| (s, Framing::Lines))
    } else {
        None
    };
    let Some((schema, framing)) = item else {
        return Response::from_parts(parts, body);
    };
    let violations = violations.clone();
    let mut scanner = Scanner {
        framing,
        buffer: Vec::new(),
        schema,
        at,
        violations,
    };
    let stream = body.into_data_stream().map(move |chunk| {
        if let Ok(bytes) = &chunk {
            scanner.feed(bytes);
        }
        chunk
    });
    Response::from_parts(parts, Body::from_stream(stream))
}

/// The body of an answer that is not an operation's: one of the error shapes (either, or the
/// one `openai` says).
async fn check_error_body(
    violations: &Violations,
    at: &str,
    response: Response,
    openai: Option<bool>,
) -> Response {
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let shapes = match openai {
        Some(true) => vec!["OpenAiError"],
        Some(false) => vec!["Error"],
        None => vec!["Error", "OpenAiError"],
    };
    let fits = shapes.iter().any(|shape| {
        schema_errors(
            &json!({ "$ref": format!("#/components/schemas/{shape}") }),
            &value,
        )
        .is_empty()
    });
    if !fits {
        violations.push(format!(
            "{at}: the body is not in the error shape {shapes:?}: {}",
            clip(&String::from_utf8_lossy(&bytes))
        ));
    }
    Response::from_parts(parts, Body::from(bytes))
}

fn check_headers(violations: &Violations, at: &str, documented: &Value, headers: &HeaderMap) {
    let Some(listed) = documented.get("headers").and_then(Value::as_object) else {
        return;
    };
    for (name, spec) in listed {
        let spec = resolve(spec);
        match headers.get(name.as_str()) {
            None => {
                if spec["required"] == true {
                    violations.push(format!("{at}: the required header `{name}` is missing"));
                }
            }
            Some(value) => {
                let text = value.to_str().unwrap_or_default();
                let schema = &spec["schema"];
                let instance = if schema["type"] == "integer" {
                    text.parse::<i64>()
                        .map_or_else(|_| Value::from(text), Value::from)
                } else {
                    Value::from(text)
                };
                let errors = schema_errors(schema, &instance);
                if !errors.is_empty() {
                    violations.push(format!(
                        "{at}: header `{name}: {text}` does not match its schema: {}",
                        errors.join("; ")
                    ));
                }
            }
        }
    }
}

#[derive(Clone, Copy)]
enum Framing {
    /// Server-sent events: `data:` lines, events ended by a blank line.
    Sse,
    /// One JSON value per line.
    Lines,
}

/// Checks a stream's events (or lines) against `schema` as its bytes pass.
struct Scanner {
    framing: Framing,
    buffer: Vec<u8>,
    schema: Value,
    at: String,
    violations: Violations,
}

impl Scanner {
    fn feed(&mut self, bytes: &Bytes) {
        self.buffer.extend_from_slice(bytes);
        let separator: &[u8] = match self.framing {
            Framing::Sse => b"\n\n",
            Framing::Lines => b"\n",
        };
        while let Some(end) = self
            .buffer
            .windows(separator.len())
            .position(|w| w == separator)
        {
            let frame: Vec<u8> = self.buffer.drain(..end + separator.len()).collect();
            let frame = String::from_utf8_lossy(&frame[..end]).into_owned();
            match self.framing {
                Framing::Sse => self.event(&frame),
                Framing::Lines => self.item(&frame),
            }
        }
    }

    fn event(&mut self, frame: &str) {
        let data: Vec<&str> = frame
            .lines()
            .filter_map(|line| {
                line.strip_prefix("data:")
                    .map(|d| d.strip_prefix(' ').unwrap_or(d))
            })
            .collect();
        if data.is_empty() {
            // A comment (keep-alive) or an `id:`-only frame.
            return;
        }
        let data = data.join("\n");
        let instance = serde_json::from_str::<Value>(&data).unwrap_or(Value::String(data));
        if let Some(name) = frame.lines().find_map(|l| l.strip_prefix("event: "))
            && instance.get("type").and_then(Value::as_str) != Some(name)
        {
            self.violations.push(format!(
                "{}: event `{name}` whose data's type is not its name: {}",
                self.at,
                clip(&instance.to_string())
            ));
        }
        self.validate("an event", &instance);
    }

    fn item(&mut self, line: &str) {
        if line.trim().is_empty() {
            return;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(value) => self.validate("a line", &value),
            Err(e) => self
                .violations
                .push(format!("{}: a line is not JSON ({e})", self.at)),
        }
    }

    fn validate(&self, what: &str, instance: &Value) {
        let errors = schema_errors(&self.schema, instance);
        if !errors.is_empty() {
            self.violations.push(format!(
                "{}: {what} does not match its schema: {}; data: {}",
                self.at,
                errors.join("; "),
                clip(&instance.to_string())
            ));
        }
    }
}
