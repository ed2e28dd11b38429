//! Redis going away: requests answer 503 `store_unavailable` within the response timeout,
//! never hang or leak internals, and recover when Redis is back, without a restart.

use std::time::Duration;

use reqwest::{StatusCode, header};

use crate::helpers::{TestApp, error_code, eventually, into_parts, random_user};

#[tokio::test]
async fn endpoints_answer_503_while_redis_is_down_and_recover_when_it_returns() {
    let mut app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let thread = app.create_thread(&token, "before the outage").await;
    let thread_path = format!("/api/threads/{}", thread["id"].as_str().unwrap());

    app.redis.stop().await;

    // The client gives up far later than the configured response timeout: a hang would fail
    // this test with a client timeout rather than a 503.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    for path in ["/api/threads", thread_path.as_str()] {
        let resp = client
            .get(app.url(path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let retry_after = resp.headers().get(header::RETRY_AFTER).cloned();
        let (status, body) = into_parts(resp).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {body}");
        assert_eq!(error_code(&body), "store_unavailable");
        assert!(retry_after.is_some(), "503 without retry-after");
        let text = body.to_string().to_lowercase();
        for leak in ["redis", "refused", "127.0.0.1", "io error"] {
            assert!(!text.contains(leak), "{leak:?} leaked: {body}");
        }
    }

    app.redis.restart().await.unwrap();

    let recovered = eventually(Duration::from_secs(10), || {
        let req = client.get(app.url("/api/threads")).bearer_auth(&token);
        async move {
            let resp = req.send().await.ok()?;
            (resp.status() == StatusCode::OK).then_some(())
        }
    })
    .await;
    assert!(recovered.is_some(), "the process never recovered");
    // The restarted server is empty (persistence is off), and writes work again.
    let again = app.create_thread(&token, "after the outage").await;
    assert_eq!(again["title"], "after the outage");
}

#[tokio::test]
async fn a_process_started_while_redis_is_down_answers_503() {
    let mut app = TestApp::spawn().await;
    // Stop before the first command, so the lazy connection has never been open.
    app.redis.stop().await;
    let token = app.token_for(&random_user());
    let (status, body) = app.get("/api/threads", &token).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(error_code(&body), "store_unavailable");
}
