//! What every integration test shares: `TestApp` (a private redis-server, the real routers on
//! a real socket, and request helpers), and the submodules below. Feature test files import
//! from here only, never from each other.
//!
//! - [`contract`]: every response checked against the OpenAPI document (`docs/openapi.json`).
//! - [`sse`]: the one event-stream reader (`Reader`, `Sse`, `ChatReply`).
//! - [`turns`]: chat request bodies and turn helpers (`chat_id`, `ui_turn`, `slow`, `stop`,
//!   `dead_generator`, …).
//! - [`functions`]: the Vercel function binaries, started alone (with their memory and
//!   log when asked: `LoggedFunction`).
//! - [`pki`]: a throwaway CA and server certificate for TLS Redis.
//! - [`stored`]: looking at what Redis holds (`scan`, `pttls`), and the check that a blocking
//!   read does not hold up the shared connection.

pub mod contract;
pub mod functions;
pub mod pki;
pub mod sse;
pub mod stored;
pub mod turns;

use std::{net::SocketAddr, time::Duration};

use mock_upstream::{MockConfig, MockUpstream};

use axum::serve::ListenerExt;
use buddahbot::{
    app::App,
    auth::jwt::Hs256,
    config::Config,
    domain::UserId,
    local_redis::{RedisCluster, RedisServer},
    routes,
    store::keys,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use self::sse::{ChatReply, read_chat};

/// The secret every shared test vector uses.
pub const SECRET: &str = "dev-secret-please-change-0123456789abcdef";

/// Response timeout for Redis in tests: short, so "Redis down" answers quickly.
pub const REDIS_TIMEOUT_MS: u64 = 500;

/// The key the test app sends the mock upstream (which insists on it).
pub const UPSTREAM_KEY: &str = "sk-test";

/// Time-to-first-token timeout in tests: short, so a hanging upstream answers quickly.
pub const TTFT_TIMEOUT_MS: u64 = 1_000;

pub fn init_tracing() {
    if std::env::var_os("TEST_LOG").is_some() {
        buddahbot::telemetry::init();
    }
}

/// The variables a test process would have.
pub fn test_vars(redis_url: &str) -> Vec<(String, String)> {
    test_vars_with_upstream(redis_url, "http://127.0.0.1:9/v1")
}

/// The variables of a test process whose model API is at `upstream`.
pub fn test_vars_with_upstream(redis_url: &str, upstream: &str) -> Vec<(String, String)> {
    [
        ("AUTH_SECRET", SECRET.to_owned()),
        ("REDIS_URL", redis_url.to_owned()),
        ("NOUS_API_KEY", UPSTREAM_KEY.to_owned()),
        ("NOUS_API_BASE_URL", upstream.to_owned()),
        ("UPSTREAM_TTFT_TIMEOUT_MS", TTFT_TIMEOUT_MS.to_string()),
        ("CHAT_MAX_DURATION_MS", "20000".to_owned()),
        // Model-written titles would add model calls to tests that count them;
        // tests/api/titles.rs turns them on.
        ("AUTO_TITLE", "0".to_owned()),
        // Tests that are not about limits must never meet one (tests/api/limits.rs sets them).
        ("RATE_LIMIT_CHAT_PER_MIN", "0".to_owned()),
        ("RATE_LIMIT_CHAT_PER_DAY", "0".to_owned()),
        ("RATE_LIMIT_REQUESTS_PER_MIN", "0".to_owned()),
        ("RATE_LIMIT_PUBLIC_PER_MIN", "0".to_owned()),
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

/// The Redis a test app runs against: one private server, or a private Cluster.
pub trait TestRedis {
    /// What `REDIS_URL` is set to.
    fn redis_url(&self) -> String;
}

impl TestRedis for RedisServer {
    fn redis_url(&self) -> String {
        self.url()
    }
}

impl TestRedis for RedisCluster {
    fn redis_url(&self) -> String {
        self.url()
    }
}

pub struct TestApp<R = RedisServer> {
    pub address: String,
    pub client: reqwest::Client,
    pub redis: R,
    pub mock: MockUpstream,
    pub app: App,
    signer: Hs256,
    server: tokio::task::JoinHandle<()>,
    /// What [`contract::check`] found wrong in the app's responses; the test fails on drop.
    violations: contract::Violations,
}

impl<R> Drop for TestApp<R> {
    fn drop(&mut self) {
        self.server.abort();
        self.violations.assert_none();
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
        Self::spawn_on(redis, |_| {}, tweak).await
    }
}

impl<R: TestRedis> TestApp<R> {
    /// Starts the app against `redis` (e.g. a TLS server or a Cluster), with the test
    /// variables (whose `REDIS_URL` is `redis.redis_url()`) changed by `vars` (a later pair
    /// wins) before they are parsed, and the config then adjusted by `tweak`.
    pub async fn spawn_on(
        redis: R,
        vars: impl FnOnce(&mut Vec<(String, String)>),
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        init_tracing();
        let mock = MockUpstream::start(MockConfig::default().with_api_key(UPSTREAM_KEY))
            .await
            .unwrap();
        let mut env = test_vars_with_upstream(&redis.redis_url(), &mock.base_url());
        vars(&mut env);
        let mut config = Config::from_vars(env).unwrap();
        tweak(&mut config);
        let signer = Hs256::new(&config.auth.secrets);
        let app = App::new(config).unwrap();
        let violations = contract::Violations::default();
        let (address, server) = serve(with_contract(routes::local(app.clone()), &violations)).await;
        Self {
            address,
            client: reqwest::Client::new(),
            redis,
            mock,
            app,
            signer,
            server,
            violations,
        }
    }

    /// Where the responses of another router serving this app (the dev server's site) report
    /// their mismatches with the document: see [`with_contract`].
    pub fn violations(&self) -> &contract::Violations {
        &self.violations
    }

    /// A valid Auth.js session token for `user`, as the cookie `cookie_name` would carry it.
    pub fn session_token_for(&self, user: &str, cookie_name: &str) -> String {
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 3600;
        self.app
            .authenticator()
            .authjs()
            .encode(&json!({ "sub": user, "exp": exp }), cookie_name)
            .unwrap()
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

    /// `POST path` with a JSON body, read to the end.
    pub async fn chat_at(&self, path: &str, token: &str, body: Value) -> ChatReply {
        let resp = self
            .client
            .post(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        read_chat(resp).await
    }

    /// `POST /api/chat`, read to the end.
    pub async fn chat(&self, token: &str, body: Value) -> ChatReply {
        self.chat_at("/api/chat", token, body).await
    }

    /// The stored messages of a thread (first page).
    pub async fn messages(&self, token: &str, thread: &str) -> Vec<Value> {
        let (status, page) = self.get(&format!("/api/threads/{thread}"), token).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        page["messages"].as_array().unwrap().clone()
    }

    /// Waits (at most 10 s) until the thread holds `count` messages, and returns them: for
    /// replies stored after their client left.
    pub async fn wait_for_messages(&self, token: &str, thread: &str, count: usize) -> Vec<Value> {
        eventually(Duration::from_secs(10), || async move {
            let messages = self.messages(token, thread).await;
            (messages.len() == count).then_some(messages)
        })
        .await
        .unwrap_or_else(|| panic!("thread {thread} never held {count} messages"))
    }

    pub async fn create_thread(&self, token: &str, title: &str) -> Value {
        let (status, body) = self
            .request(
                Method::POST,
                "/api/threads",
                Some(token),
                Some(json!({ "title": title })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body
    }

    /// `PATCH /api/threads/:thread` with a new title.
    pub async fn rename(&self, token: &str, thread: &str, title: &str) -> (StatusCode, Value) {
        self.request(
            Method::PATCH,
            &format!("/api/threads/{thread}"),
            Some(token),
            Some(json!({ "title": title })),
        )
        .await
    }

    /// `GET /api/health` (`?deep=1` when `deep`), unauthenticated.
    pub async fn health(&self, deep: bool) -> (StatusCode, Value) {
        let path = if deep {
            "/api/health?deep=1"
        } else {
            "/api/health"
        };
        self.request(Method::GET, path, None, None).await
    }

    /// `POST /api/threads`: the new thread's id.
    pub async fn new_thread_id(&self, token: &str, title: &str) -> String {
        self.create_thread(token, title).await["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

impl TestApp {
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
        stored::scan(&mut conn, &pattern).await
    }
}

/// Runs `node --test <file>` in `tests/js` against `app` as `user` (`BUDDAHBOT_URL`,
/// `BUDDAHBOT_TOKEN`, plus `env`), and fails the test with node's output when it fails.
pub async fn run_node_test(app: &TestApp, user: &str, file: &str, env: &[(&str, String)]) {
    let js = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    assert!(
        js.join("node_modules/ai").is_dir() && js.join("node_modules/openai").is_dir(),
        "tests/js/node_modules is missing: run `tests/setup` once"
    );
    let mut command = tokio::process::Command::new("node");
    command
        .args(["--test", file])
        .current_dir(&js)
        .env("BUDDAHBOT_URL", &app.address)
        .env("BUDDAHBOT_TOKEN", app.token_for(user))
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command
        .output()
        .await
        .expect("node runs (is Node.js installed?)");
    assert!(
        output.status.success(),
        "node --test {file} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs `tests/py/<file>` with the pinned OpenAI Python SDK (`tests/setup` installs it)
/// against `app` as `user`, and fails the test with its output when it fails.
pub async fn run_python_test(app: &TestApp, user: &str, file: &str) {
    let py = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py");
    let python = py.join(".venv/bin/python");
    assert!(
        python.is_file(),
        "tests/py/.venv is missing: run `tests/setup` once"
    );
    let output = tokio::process::Command::new(python)
        .arg(file)
        .current_dir(&py)
        .env("BUDDAHBOT_URL", &app.address)
        .env("BUDDAHBOT_TOKEN", app.token_for(user))
        .kill_on_drop(true)
        .output()
        .await
        .expect("python runs");
    assert!(
        output.status.success(),
        "python {file} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `router` with every response checked against the OpenAPI document, mismatches going to
/// `violations` (see [`contract`]).
pub fn with_contract(router: axum::Router, violations: &contract::Violations) -> axum::Router {
    router.layer(axum::middleware::from_fn_with_state(
        violations.clone(),
        contract::check,
    ))
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

/// Sets `name` in a test process's variables (a later pair wins over the defaults).
pub fn set_var(vars: &mut Vec<(String, String)>, name: &str, value: impl Into<String>) {
    vars.push((name.to_owned(), value.into()));
}

/// A random user id, so tests sharing nothing still never collide.
pub fn random_user() -> String {
    format!("github:{}", uuid::Uuid::new_v4().simple())
}

/// Redis frozen with `SIGSTOP` (its connections stay open and fill, nothing is answered)
/// until this is dropped, which sends `SIGCONT`.
pub struct Frozen(u32);

impl Frozen {
    /// Freezes the server `redis` runs.
    pub fn redis(redis: &buddahbot::local_redis::RedisServer) -> Self {
        let pid = redis.pid().expect("the server runs");
        signal(pid, "-STOP");
        Self(pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        signal(self.0, "-CONT");
    }
}

fn signal(pid: u32, which: &str) {
    let status = std::process::Command::new("kill")
        .args([which, &pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill {which} {pid} failed");
}
