//! What the in-process benchmarks stand on: this process pinned to CPU 0, a private
//! `redis-server` pinned to CPU 1 (with ≥ 2 CPUs, unless `BENCH_PIN=0`), and the dev server's
//! router (every route) on a loopback port, with a token for the user `bench`.

use axum::serve::ListenerExt;
use buddahbot::{
    app::App, auth::jwt::Hs256, config::Config, domain::UserId, local_redis::RedisServer, routes,
};
use redis::aio::MultiplexedConnection;

use super::{
    common::Result,
    measure::{info_field, taskset},
};

const SECRET: &str = "bench-in-process-secret-at-least-32-bytes-long";

pub struct Served {
    /// A client for the router.
    pub http: reqwest::Client,
    /// Kept for its lifetime: the server stops when it drops.
    pub _redis: RedisServer,
    /// A connection of the benchmark's own, for Redis's counters.
    pub conn: MultiplexedConnection,
    pub app: App,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    pub user: UserId,
    pub token: String,
}

/// Pins this process to CPU 0 (with ≥ 2 CPUs, unless `BENCH_PIN=0`); whether it did. Call it
/// before starting the runtime, so its threads inherit the pinning.
pub fn pin() -> bool {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    if cpus < 2 || std::env::var("BENCH_PIN").is_ok_and(|v| v.trim() == "0") {
        return false;
    }
    taskset("0", std::process::id()).is_ok()
}

/// Pins (see [`pin`]), then runs `bench` on a one-thread runtime, telling it whether it pinned.
pub fn run<F: std::future::Future<Output = Result<()>>>(
    bench: impl FnOnce(bool) -> F,
) -> Result<()> {
    let pinned = pin();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(bench(pinned))
}

/// Starts Redis (on CPU 1 when `pinned`) and serves the router; `vars` add to or override the
/// defaults (rate limits off, an unreachable model).
pub async fn serve(pinned: bool, vars: &[(&str, &str)]) -> Result<Served> {
    let redis = RedisServer::start().await?;
    let mut conn = redis::Client::open(redis.url())?
        .get_multiplexed_async_connection()
        .await?;
    if pinned {
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut conn)
            .await?;
        let pid: u32 = info_field(&info, "process_id")
            .ok_or("no process_id in INFO server")?
            .parse()?;
        taskset("1", pid)?;
    }
    let url = redis.url();
    let defaults = [
        ("AUTH_SECRET", SECRET),
        ("REDIS_URL", url.as_str()),
        ("NOUS_API_KEY", "unused"),
        ("NOUS_API_BASE_URL", "http://127.0.0.1:9/v1"),
        ("RATE_LIMIT_CHAT_PER_MIN", "0"),
        ("RATE_LIMIT_CHAT_PER_DAY", "0"),
        ("RATE_LIMIT_REQUESTS_PER_MIN", "0"),
        ("RATE_LIMIT_PUBLIC_PER_MIN", "0"),
    ];
    let config = Config::from_vars(
        defaults
            .iter()
            .chain(vars)
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    )?;
    let user = UserId::parse("bench")?;
    let token = Hs256::new(&config.auth.secrets).mint(&user, 3600)?;
    let app = App::new(config)?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(std::future::IntoFuture::into_future(axum::serve(
        listener,
        routes::local(app.clone()),
    )));
    Ok(Served {
        http: reqwest::Client::new(),
        _redis: redis,
        conn,
        app,
        base,
        user,
        token,
    })
}
