//! Each Vercel function binary, started alone the way the platform starts it
//! (`VERCEL_DEV_PORT`, `vercel_runtime::run` owning the socket), answers its route.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{
    TestApp, error_code,
    functions::{Function, start_function},
    into_parts, random_user,
    sse::read_chat,
    test_vars, test_vars_with_upstream,
};

/// The `chat` function alone, on the test's redis-server and mock model.
async fn start_chat_function(app: &TestApp) -> Function {
    start_function(
        env!("CARGO_BIN_EXE_chat"),
        test_vars_with_upstream(&app.redis.url(), &app.mock.base_url()),
    )
    .await
}

async fn call(
    f: &Function,
    method: Method,
    path: &str,
    token: &str,
    body: Option<serde_json::Value>,
) -> (StatusCode, serde_json::Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{path}", f.base))
        .bearer_auth(token);
    if let Some(body) = body {
        req = req.json(&body);
    }
    into_parts(req.send().await.unwrap()).await
}

#[tokio::test]
async fn the_threads_function_serves_the_collection() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let f = start_function(env!("CARGO_BIN_EXE_threads"), test_vars(&app.redis.url())).await;

    let (status, created) = call(
        &f,
        Method::POST,
        "/api/threads",
        &token,
        Some(json!({ "title": "from the function" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let (status, list) = call(&f, Method::GET, "/api/threads", &token, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["threads"][0]["id"], created["id"]);
}

#[tokio::test]
async fn the_thread_function_reads_the_id_from_the_query_as_vercel_passes_it() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let id = app.new_thread_id(&token, "routed").await;
    let f = start_function(
        env!("CARGO_BIN_EXE_threads-id"),
        test_vars(&app.redis.url()),
    )
    .await;

    let (status, page) = call(
        &f,
        Method::GET,
        &format!("/api/threads/{id}?id={id}"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["thread"]["title"], "routed");

    let (status, body) = call(&f, Method::GET, &format!("/api/threads/{id}"), &token, None).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "no ?id= means no thread: {body}"
    );

    let (status, _) = call(
        &f,
        Method::DELETE,
        &format!("/api/threads/{id}?id={id}"),
        &token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn the_chat_function_streams_a_reply_and_stores_it() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let f = start_chat_function(&app).await;
    let resp = reqwest::Client::new()
        .post(format!("{}/api/chat", f.base))
        .bearer_auth(&token)
        .json(&json!({ "messages": [{ "role": "user", "content": "hi" }] }))
        .send()
        .await
        .unwrap();
    let reply = read_chat(resp).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.last_data(), Some("[DONE]"));
    assert_eq!(reply.text(), mock_upstream::reply_text(16));
    let messages = app.messages(&token, reply.header("x-thread-id")).await;
    assert_eq!(messages.len(), 2);
}

/// Sends a chat request on a raw socket and returns what the first read brings.
async fn first_read_of_a_chat(base: &str, token: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = json!({ "messages": [{ "role": "user", "content": "hi [[mock tokens=3 inter_token_ms=300]]" }] })
        .to_string();
    let request = format!(
        "POST /api/chat HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0; 16 * 1024];
    let n = socket.read(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn a_streamed_response_head_leaves_with_its_first_chunk() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let f = start_chat_function(&app).await;
    // The model waits 300 ms between tokens, so whatever the first read holds was written
    // together with the head, not merely soon after it.
    for base in [app.address.as_str(), f.base.as_str()] {
        let first = first_read_of_a_chat(base, &token).await;
        assert!(first.starts_with("HTTP/1.1 200"), "{base}: {first}");
        assert!(
            first.contains("data: {") && first.contains("chat.completion.chunk"),
            "{base}: the head came without the first chunk: {first:?}"
        );
    }
}

#[tokio::test]
async fn the_chat_function_stores_the_reply_of_a_client_that_left() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let f = start_chat_function(&app).await;
    let mut resp = reqwest::Client::new()
        .post(format!("{}/api/chat", f.base))
        .bearer_auth(&token)
        .json(&json!({ "messages": [{ "role": "user", "content": "bye [[mock tokens=8 inter_token_ms=30]]" }] }))
        .send()
        .await
        .unwrap();
    let thread = resp.headers()["x-thread-id"].to_str().unwrap().to_owned();
    assert!(resp.chunk().await.unwrap().is_some());
    drop(resp);

    let stored = app.wait_for_messages(&token, &thread, 2).await;
    assert_eq!(stored[1]["content"], mock_upstream::reply_text(8).as_str());
}

#[tokio::test]
async fn the_health_function_answers_without_credentials() {
    let app = TestApp::spawn().await;
    let f = start_function(env!("CARGO_BIN_EXE_health"), test_vars(&app.redis.url())).await;
    let resp = reqwest::get(format!("{}/api/health", f.base))
        .await
        .unwrap();
    let (status, body) = into_parts(resp).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["redis"]["ok"], true);
}

#[tokio::test]
async fn a_function_without_configuration_names_every_missing_variable() {
    let f = start_function(env!("CARGO_BIN_EXE_threads"), Vec::new()).await;
    let (status, body) = call(&f, Method::GET, "/api/threads", "whatever", None).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(error_code(&body), "config_error");
    let message = body["error"]["message"].as_str().unwrap();
    for name in ["AUTH_SECRET", "REDIS_URL", "NOUS_API_KEY"] {
        assert!(message.contains(name), "{name} not named: {message}");
    }
}
