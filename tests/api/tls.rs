//! `rediss://` against a real TLS-only `redis-server` whose certificate is made here, signed by
//! a CA made here: with `REDIS_CA_CERT` set to that CA the app works; a plaintext client or a
//! different CA gets a prompt 503 `store_unavailable`, never a hang.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::helpers::{
    TestApp, error_code, into_parts,
    pki::{TestPki, new_ca},
    random_user, set_var,
};

/// `GET /api/threads` must answer 503 `store_unavailable` well within the client's 10 s, which
/// is far above the test config's 500 ms Redis timeouts: a hang fails here, not as a 503.
async fn assert_store_unavailable(app: &TestApp) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let token = app.token_for(&random_user());
    let started = Instant::now();
    let resp = client
        .get(app.url("/api/threads"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let (status, body) = into_parts(resp).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(error_code(&body), "store_unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    let text = body.to_string().to_lowercase();
    for leak in ["tls", "certificate", "redis", "127.0.0.1"] {
        assert!(!text.contains(leak), "{leak:?} leaked: {body}");
    }
}

#[tokio::test]
async fn threads_work_over_tls_when_the_test_ca_is_the_trusted_one() {
    let pki = TestPki::new();
    let redis = pki.start_server().await;
    assert!(
        redis.url().starts_with("rediss://127.0.0.1:"),
        "{}",
        redis.url()
    );
    let ca_path = pki.files.ca.to_str().unwrap().to_owned();
    let app = TestApp::spawn_on(
        redis,
        |vars| set_var(vars, "REDIS_CA_CERT", ca_path),
        |_| {},
    )
    .await;

    let token = app.token_for(&random_user());
    let created = app.create_thread(&token, "over TLS").await;
    let (status, page) = app.get("/api/threads", &token).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let threads = page["threads"].as_array().unwrap();
    assert_eq!(threads.len(), 1, "{page}");
    assert_eq!(threads[0]["id"], created["id"]);
    assert_eq!(threads[0]["title"], "over TLS");
}

#[tokio::test]
async fn a_plaintext_client_against_the_tls_port_gets_503_store_unavailable() {
    let pki = TestPki::new();
    let redis = pki.start_server().await;
    let plain = format!("redis://127.0.0.1:{}", redis.port());
    let app = TestApp::spawn_on(redis, |vars| set_var(vars, "REDIS_URL", plain), |_| {}).await;
    assert_store_unavailable(&app).await;
}

#[tokio::test]
async fn a_server_signed_by_another_ca_gets_503_store_unavailable() {
    let pki = TestPki::new();
    let redis = pki.start_server().await;
    // As PEM text this time (the other test passes a path): both forms are accepted.
    let other_ca = new_ca("Some other CA").pem();
    let app = TestApp::spawn_on(
        redis,
        |vars| set_var(vars, "REDIS_CA_CERT", other_ca),
        |_| {},
    )
    .await;
    assert_store_unavailable(&app).await;
}
