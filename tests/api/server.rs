//! A server of our own (`cargo run --bin dev`, `buddahbot::http::server::serve`): slow
//! clients cannot hold it. A request head that stalls has its connection closed; a body that
//! stalls is answered `408 request_timeout`; requests that arrive in time are served.

use std::time::{Duration, Instant};

use buddahbot::{
    http::server::{Timeouts, serve},
    routes,
};
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

use crate::helpers::{TestApp, random_user};

const TIMEOUT: Duration = Duration::from_millis(300);

/// The test app's routers served by `serve` with 300 ms timeouts; its address.
async fn served(app: &TestApp) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let router = routes::local(app.app.clone());
    let timeouts = Timeouts {
        head: TIMEOUT,
        body: TIMEOUT,
    };
    tokio::spawn(serve(listener, router, timeouts, std::future::pending()));
    addr
}

/// Everything the server sends until it closes the connection (at most 5 s).
async fn read_all(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    out
}

#[tokio::test]
async fn a_request_head_that_stalls_has_its_connection_closed() {
    let app = TestApp::spawn().await;
    let addr = served(&app).await;
    let mut stream = TcpStream::connect(&addr).await.unwrap();

    // Half a head, then nothing.
    stream
        .write_all(b"GET /api/health HTTP/1.1\r\nHost: local\r\n")
        .await
        .unwrap();
    let sent = Instant::now();
    let answer = read_all(&mut stream).await;
    let closed_after = sent.elapsed();

    assert!(
        closed_after < TIMEOUT + Duration::from_secs(2),
        "closed after {closed_after:?}"
    );
    assert!(
        !String::from_utf8_lossy(&answer).contains("200 OK"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}

#[tokio::test]
async fn a_request_body_that_stalls_is_answered_408() {
    let app = TestApp::spawn().await;
    let addr = served(&app).await;
    let token = app.token_for(&random_user());
    let mut stream = TcpStream::connect(&addr).await.unwrap();

    // A whole head announcing 100 bytes, then 10 of them, then nothing.
    let head = format!(
        "POST /api/threads HTTP/1.1\r\nHost: local\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"title\":"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = String::from_utf8_lossy(&read_all(&mut stream).await).into_owned();

    let (head, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("{answer}"));
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    let body: Value = serde_json::from_str(body.trim()).unwrap_or_else(|_| panic!("{body}"));
    assert_eq!(body["error"]["code"], "request_timeout", "{body}");
    assert!(!body["error"]["message"].as_str().unwrap().is_empty());
}

#[tokio::test]
async fn requests_that_arrive_in_time_are_served() {
    let app = TestApp::spawn().await;
    let addr = served(&app).await;
    let token = app.token_for(&random_user());

    let resp = reqwest::Client::new()
        .post(format!("http://{addr}/api/threads"))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "title": "in time" }))
        .send()
        .await
        .unwrap();

    assert_eq!(resp.status(), reqwest::StatusCode::CREATED);
}
