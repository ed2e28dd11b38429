//! `GET /api/health`.

use reqwest::StatusCode;

use crate::helpers::TestApp;

#[tokio::test]
async fn health_is_ok_with_redis_up_and_unavailable_with_it_down() {
    let mut app = TestApp::spawn().await;
    let (status, body) = app.health(false).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["redis"]["ok"], true);
    assert!(body["redis"]["latencyMs"].is_number());
    assert_eq!(body["upstream"]["configured"], true);
    assert!(
        body["upstream"].get("reachable").is_none(),
        "only probed when deep"
    );
    let text = body.to_string();
    assert!(
        !text.contains("sk-test") && !text.contains("dev-secret"),
        "{text}"
    );

    let (status, deep) = app.health(true).await;
    assert_eq!(status, StatusCode::OK, "{deep}");
    assert_eq!(deep["upstream"]["reachable"]["ok"], true);

    app.redis.stop().await;
    let (status, body) = app.health(false).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["redis"]["ok"], false);
}

#[tokio::test]
async fn a_deep_check_reports_an_unreachable_model_api() {
    let app = TestApp::spawn_with(|config| {
        config.upstream.base_url = "http://127.0.0.1:9/v1".parse().unwrap();
    })
    .await;
    let (status, body) = app.health(true).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["upstream"]["reachable"]["ok"], false);
    assert_eq!(body["redis"]["ok"], true);
}
