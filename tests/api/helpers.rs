//! `TestApp`: a private redis-server, the real routers on a real socket, and request helpers.

use std::{collections::HashMap, net::SocketAddr, time::Duration};

use axum::serve::ListenerExt;
use buddahbot::{
    app::App, auth::jwt::Hs256, config::Config, domain::UserId, local_redis::RedisServer, routes,
    store::keys,
};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// The secret every shared test vector uses.
pub const SECRET: &str = "dev-secret-please-change-0123456789abcdef";

/// Response timeout for Redis in tests: short, so "Redis down" answers quickly.
pub const REDIS_TIMEOUT_MS: u64 = 500;

pub fn init_tracing() {
    if std::env::var_os("TEST_LOG").is_some() {
        buddahbot::telemetry::init();
    }
}

/// The variables a test process would have.
pub fn test_vars(redis_url: &str) -> Vec<(String, String)> {
    [
        ("AUTH_SECRET", SECRET.to_owned()),
        ("REDIS_URL", redis_url.to_owned()),
        ("NOUS_API_KEY", "sk-test".to_owned()),
        ("REDIS_CONNECT_TIMEOUT_MS", REDIS_TIMEOUT_MS.to_string()),
        ("REDIS_RESPONSE_TIMEOUT_MS", REDIS_TIMEOUT_MS.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

pub fn test_config(redis_url: &str) -> Config {
    Config::from_vars(test_vars(redis_url)).unwrap()
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub redis: RedisServer,
    pub app: App,
    signer: Hs256,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Starts everything with the test config, adjusted by `tweak`.
    pub async fn spawn_with(tweak: impl FnOnce(&mut Config)) -> Self {
        init_tracing();
        let redis = RedisServer::start().await.unwrap();
        let mut config = test_config(&redis.url());
        tweak(&mut config);
        let signer = Hs256::new(&config.auth.secrets);
        let app = App::new(config).unwrap();
        let (address, server) = serve(routes::local(app.clone())).await;
        Self {
            address,
            client: reqwest::Client::new(),
            redis,
            app,
            signer,
            server,
        }
    }

    /// A valid one-hour token for `user`.
    pub fn token_for(&self, user: &str) -> String {
        self.signer
            .mint(&UserId::parse(user).unwrap(), 3600)
            .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Sends a request with an optional bearer token and JSON body; returns the status and the
    /// parsed JSON body (`Value::Null` for an empty body).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        into_parts(resp).await
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.request(Method::GET, path, Some(token), None).await
    }

    pub async fn create_thread(&self, token: &str, title: &str) -> Value {
        let (status, body) = self
            .request(
                Method::POST,
                "/api/threads",
                Some(token),
                Some(serde_json::json!({ "title": title })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// A plain connection to the test's redis-server, for checking what is stored.
    pub async fn redis_conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.redis.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }

    /// Every key of `user` on the server (SCAN, test-only).
    pub async fn keys_of(&self, user: &str) -> Vec<String> {
        let mut conn = self.redis_conn().await;
        let pattern = keys::user_pattern(&UserId::parse(user).unwrap());
        let mut out: Vec<String> = Vec::new();
        let mut cursor = 0_u64;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .unwrap();
            out.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        out.sort();
        out
    }
}

/// Serves `router` on a free loopback port, as the dev server does (TCP_NODELAY on).
pub async fn serve(router: axum::Router) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (format!("http://{addr}"), server)
}

pub async fn into_parts(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let bytes = resp.bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)))
    };
    (status, body)
}

/// Asserts the single error shape and returns its code.
pub fn error_code(body: &Value) -> &str {
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "error without a message: {body}");
    body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error body: {body}"))
}

/// Polls `check` every 20 ms until it returns `Some`, for at most `budget`.
pub async fn eventually<T, F, Fut>(budget: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + budget;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A random user id, so tests sharing nothing still never collide.
pub fn random_user() -> String {
    format!("github:{}", uuid::Uuid::new_v4().simple())
}

/// `PTTL` of each key, by key.
pub async fn pttls(
    conn: &mut redis::aio::MultiplexedConnection,
    keys: &[String],
) -> HashMap<String, i64> {
    let mut out = HashMap::new();
    for key in keys {
        let ttl: i64 = redis::cmd("PTTL").arg(key).query_async(conn).await.unwrap();
        out.insert(key.clone(), ttl);
    }
    out
}
