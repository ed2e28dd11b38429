//! `rediss://` against a real TLS-only `redis-server` whose certificate is made here, signed by
//! a CA made here: with `REDIS_CA_CERT` set to that CA the app works; a plaintext client or a
//! different CA gets a prompt 503 `store_unavailable`, never a hang.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use buddahbot::local_redis::{RedisServer, TlsFiles};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use reqwest::StatusCode;

use crate::helpers::{TestApp, error_code, into_parts, random_user};

/// A CA and a server certificate for `127.0.0.1`/`localhost`, as PEM files in a temporary
/// folder that is removed on drop.
pub(crate) struct TestPki {
    dir: PathBuf,
    pub(crate) files: TlsFiles,
}

impl TestPki {
    pub(crate) fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("buddahbot-tls-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = new_ca("BuddahBot test CA");
        let key = KeyPair::generate().unwrap();
        // The client checks the host of the URL (an IP here) against the certificate's SANs.
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "redis-server");
        let cert = params.signed_by(&key, &ca).unwrap();

        let files = TlsFiles {
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
            ca: dir.join("ca.pem"),
        };
        std::fs::write(&files.cert, cert.pem()).unwrap();
        std::fs::write(&files.key, key.serialize_pem()).unwrap();
        std::fs::write(&files.ca, ca.pem()).unwrap();
        Self { dir, files }
    }

    async fn start_server(&self) -> RedisServer {
        RedisServer::start_tls(self.files.clone()).await.unwrap()
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn new_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn set(vars: &mut Vec<(String, String)>, name: &str, value: impl Into<String>) {
    vars.push((name.to_owned(), value.into()));
}

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
    let app = TestApp::spawn_on(redis, |vars| set(vars, "REDIS_CA_CERT", ca_path), |_| {}).await;

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
    let app = TestApp::spawn_on(redis, |vars| set(vars, "REDIS_URL", plain), |_| {}).await;
    assert_store_unavailable(&app).await;
}

#[tokio::test]
async fn a_server_signed_by_another_ca_gets_503_store_unavailable() {
    let pki = TestPki::new();
    let redis = pki.start_server().await;
    // As PEM text this time (the other test passes a path): both forms are accepted.
    let other_ca = new_ca("Some other CA").pem();
    let app = TestApp::spawn_on(redis, |vars| set(vars, "REDIS_CA_CERT", other_ca), |_| {}).await;
    assert_store_unavailable(&app).await;
}
