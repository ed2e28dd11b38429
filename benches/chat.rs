//! `cargo bench --bench chat`: `POST /api/chat` against the performance targets of
//! `DESIGN.md` ("Targets"), measured the way the neutral harness (`../shared/bench/chat.sh`)
//! measures them, all on loopback.
//!
//! # Targets
//! - `direct`: the mock upstream itself (in this process; `BENCH_TOKENS` tokens, default 64,
//!   no delays), the baseline;
//! - `local`: what the `dev` server serves (`dev_site`), served as it serves it
//!   (`http::server::serve`: `TCP_NODELAY`, header and body timeouts) by a child process (this
//!   bench binary re-executed with `BENCH_SERVE_LOCAL=1`);
//! - `function`: the built `chat` function binary, where `vercel_runtime::run` owns the socket;
//! - `relay`: a process that only relays each request to the mock and streams its answer back
//!   (hyper, keep-alive, `TCP_NODELAY`; no auth, Redis or parsing; this bench binary
//!   re-executed with `BENCH_SERVE_RELAY`), pinned as the servers are: its overhead is what
//!   a process in between costs by itself on this machine (the extra connection's hops and
//!   wake-ups), the floor under a server's. It has no targets; the summary ends with it.
//!
//! Both servers are separate processes, so their CPU time can be read from `/proc`. They run
//! with auth (a minted HS256 token), rate limits (on, never refusing), persistence and the
//! stream log (a private `redis-server`) on. Every request sends the harness's body (a system
//! and a user message, `max_tokens`, streamed with usage); through a server, every request
//! starts a new thread, the heaviest turn. A fresh user per run keeps idempotent replays out.
//!
//! # Pinning
//! With ≥ 2 CPUs (unless `BENCH_PIN=0`), as `chat.sh` does: both servers and the private
//! `redis-server` on CPU 1, this process (load generator and mock, one thread each) on CPU 0,
//! with `taskset`. The report says whether pinning is on.
//!
//! # What it reports (stdout; progress goes to stderr)
//! - The idle RSS of each server (`VmRSS`) right after start and after its first turn, the
//!   second as the neutral harness reads it (its readiness check is a turn), held to 15 MB.
//! - Per load level (`c1`, `c64`: closed loop with 1 / 64 workers; `r500`, `r1000`: open loop
//!   at that many requests/s, sent on schedule whatever earlier ones do, with at most
//!   `BENCH_MAX_INFLIGHT` (4096) in flight; beyond that a request is dropped and counted as an
//!   error), after a warm-up, over a measured window, for each target: goodput (turns that
//!   ended OK inside the window / window), errors, drops, TTFT (send -> first SSE event with
//!   non-empty content) and total (send -> end of a stream ending in `[DONE]`) p50/p99, the
//!   overhead (proxy percentile − direct percentile: a difference of percentiles), the server's
//!   CPU ms per turn (utime+stime of the server process, `/proc/<pid>/stat`, over the window ÷
//!   turns answered OK) and Redis CPU µs per turn (`INFO cpu`, the same way); and the p50 and
//!   p99 of each phase of the servers' own `Server-Timing` header (`auth`, `store`,
//!   `upstream`, `total`: where a TTFT overhead or its tail goes inside the server, and how
//!   much is outside it).
//! - Redis per turn, first (while Redis is nearly empty, after a short warm-up of each server):
//!   `BENCH_REDIS_TURNS` sequential 64-token turns per server under `MONITOR` (round trips per
//!   turn, told apart by the servers' client ports; commands run inside scripts; `INFO
//!   commandstats`), then `BENCH_LONG_TURNS` long replies per server, all at once (1,000
//!   tokens at 25 ms each, asked for with a `[[mock …]]` directive in the message): round
//!   trips and Redis commands per turn, allowed one lease renewal more per 10 s of streaming.
//!   `MONITOR` costs Redis much CPU, so both cases run again without it for Redis CPU per
//!   turn: Redis's time running the servers' requests (`usec` of `INFO commandstats`) and its
//!   whole CPU (`INFO cpu`) net of an idle Redis's (measured for a second before; noisy for a
//!   few long turns).
//! - A Nagle check (a flat ~40 ms per request on a keep-alive connection is the symptom).
//! - That every proxied turn of the run is stored: each thread's meta says `messageCount` 2.
//! - A summary with a verdict per server against each target.
//!
//! # Environment
//! - `BENCH_QUICK=1`: a smoke run (~35 s): 1 s windows, 0.5 s warm-up, fewer turns, 200-token
//!   long replies.
//! - `BENCH_PIN=0`: no pinning.
//! - `BENCH_TOKENS` (64): reply length of the load levels.
//! - `BENCH_LOADS` (`c1,c64,r500,r1000`), `BENCH_SECS` (10) and `BENCH_WARMUP_SECS` (1) per
//!   level, `BENCH_MAX_INFLIGHT` (4096).
//! - `BENCH_REDIS_TURNS` (100; quick 20): sequential turns counted under `MONITOR`;
//!   `BENCH_LONG_TURNS` (4), `BENCH_LONG_TOKENS` (1000; quick 200), `BENCH_LONG_ITL_MS` (25):
//!   the long-reply case; `BENCH_NAGLE` (50; quick 20): requests of the Nagle check.
//! - `BENCH_LOG=1`: the servers' logs on stderr (`RUST_LOG`, default `warn`).
//! - `BENCH_RATE_LIMITS=off`: the servers run without rate limits, to see their share;
//!   `BENCH_AUTO_TITLE=0`: without titles written by the model (a second model call and,
//!   when it ends after the reply, a round trip, on a new thread's first turn).

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Write},
    net::TcpStream,
    process::Stdio,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use axum::serve::ListenerExt;
use buddahbot::{
    app::App,
    auth::jwt::Hs256,
    config::Config,
    domain::UserId,
    http::server::{self, Timeouts},
    local_redis::RedisServer,
    routes::site::dev_site,
};
use mock_upstream::{MockConfig, MockUpstream};
use reqwest::{Client, header::CONTENT_TYPE};
use serde_json::json;
use tokio::{
    process::{Child, Command},
    sync::mpsc,
};

mod common;
#[path = "common/measure.rs"]
mod measure;

use common::{Result, progress, report};
use measure::{info_field, percentile, taskset};

/// Set in the environment of the re-executed bench binary that serves what `dev` serves.
const SERVE_LOCAL: &str = "BENCH_SERVE_LOCAL";
/// Set (to the mock's base URL) in the environment of the re-executed bench binary that only
/// relays requests to the mock.
const SERVE_RELAY: &str = "BENCH_SERVE_RELAY";
/// The port that child listens on.
const SERVE_PORT: &str = "BENCH_SERVE_PORT";

const UPSTREAM_KEY: &str = "sk-bench";
const AUTH_SECRET: &str = "bench-secret-not-for-production-0123456789";
/// The model the harness asks for.
const MODEL: &str = "Hermes-4-70B";
/// Rate limits high enough that one user's whole run (a few 100 000 turns) stays under them.
/// Not much higher: above ~5e8 per minute the limiter's per-request interval (period / limit)
/// is lost in the float precision of a millisecond timestamp and its script fails with
/// `SET … PX 0` on every request.
const NEVER_LIMITED: &str = "1000000";
/// Per-request timeout of the load levels (the harness's default).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A mean TTFB (or median total) this high on a keep-alive connection means a delayed-ACK
/// stall (~40 ms each).
const NAGLE_SUSPECT: Duration = Duration::from_millis(30);
/// The generation lease is renewed every third of its 30 s.
const LEASE_RENEWAL_EVERY: Duration = Duration::from_secs(10);
/// How long an idle Redis is watched to tell its own CPU use (cron, expiry) apart.
const IDLE_BASELINE: Duration = Duration::from_secs(1);
/// Unmeasured turns each server answers before the Redis counts.
const WARMUP_TURNS: usize = 20;
/// CPUs of the pinning: servers and Redis, and this process.
const SERVER_CPU: &str = "1";
const BENCH_CPU: &str = "0";

/// The design targets (DESIGN.md, "Targets").
const TARGET_SERVER_CPU_MS: f64 = 0.3;
const TARGET_C64_TURNS_PER_SEC: f64 = 3000.0;
const TARGET_TTFT_P50_MS: f64 = 0.3;
const TARGET_TTFT_P99_MS: f64 = 1.0;
const TARGET_ROUND_TRIPS: f64 = 4.0;
const TARGET_REDIS_CPU_US: f64 = 80.0;
/// 15 MB (DESIGN.md), in the MiB that RSS is read in.
const TARGET_IDLE_RSS_MIB: f64 = 15.0e6 / 1_048_576.0;

/// Every request's message differs, across levels and targets.
static NEXT_MESSAGE: AtomicU64 = AtomicU64::new(0);

fn main() -> Result<()> {
    if std::env::var_os(SERVE_LOCAL).is_some() {
        return serve_local();
    }
    if let Ok(upstream) = std::env::var(SERVE_RELAY) {
        return serve_relay(&upstream);
    }
    let settings = Settings::from_env();
    // Before any runtime thread exists, so that every thread of this process inherits it.
    let pinning = Pinning::apply();
    let mut mock_runtime = tokio::runtime::Builder::new_multi_thread();
    mock_runtime
        .worker_threads(1)
        .thread_name("bench-mock")
        .enable_all();
    let mock_runtime = mock_runtime.build()?;
    let mut load_runtime = tokio::runtime::Builder::new_multi_thread();
    if pinning.on {
        // One thread each for the load generator and the mock, as in the harness.
        load_runtime.worker_threads(1);
    }
    let load_runtime = load_runtime
        .thread_name("bench-load")
        .enable_all()
        .build()?;
    let result = load_runtime.block_on(run(settings, pinning, mock_runtime.handle().clone()));
    load_runtime.shutdown_timeout(Duration::from_secs(1));
    mock_runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

/// The `local` target's process: serves what the `dev` binary serves (`dev_site`, the API
/// and the web app) the way it serves it (`http::server::serve`: `TCP_NODELAY`, the header
/// and body timeouts of its configuration), on `BENCH_SERVE_PORT`, configured from its
/// environment, until killed or until its stdin closes (the bench holds the other end, so the
/// server does not outlive a bench that was killed).
fn serve_local() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        if std::env::var_os("BENCH_LOG").is_some() {
            buddahbot::telemetry::init();
        }
        let port: u16 = std::env::var(SERVE_PORT)?.parse()?;
        let app = App::new(Config::from_env()?)?;
        let timeouts = Timeouts::from(&app.config().http);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let site = dev_site(app, concat!(env!("CARGO_MANIFEST_DIR"), "/public").into());
        server::serve(listener, site, timeouts, orphaned()).await?;
        Ok(())
    })
}

/// Ends when this child's stdin closes: the bench that started it is gone.
async fn orphaned() {
    use tokio::io::AsyncReadExt;
    let mut stdin = tokio::io::stdin();
    let mut buf = [0u8; 64];
    while stdin.read(&mut buf).await.is_ok_and(|n| n > 0) {}
}

/// Serves `router` on `port` with `TCP_NODELAY` until this child's stdin closes.
async fn serve_child(port: u16, router: axum::Router) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let serve = std::future::IntoFuture::into_future(axum::serve(listener, router));
    tokio::select! {
        served = serve => served?,
        () = orphaned() => {}
    }
    Ok(())
}

/// The `relay` target's process: hands each `POST /relay` to the mock as it came (body and
/// `Authorization`) on a pooled keep-alive connection, and streams the mock's answer back as
/// it arrives; no auth, Redis, parsing or encoding. Its overhead over `direct` is what a
/// process in between costs on this machine by itself (the hops and wake-ups of the extra
/// connection): the floor under a server's overhead.
fn serve_relay(upstream: &str) -> Result<()> {
    use axum::{
        body::{Body, Bytes},
        http::{HeaderMap, Request, StatusCode, Uri, header::AUTHORIZATION},
        response::IntoResponse,
    };
    use http_body_util::Full;
    use hyper_util::{
        client::legacy::{Client, connect::HttpConnector},
        rt::TokioExecutor,
    };

    let target: Uri = format!("{upstream}/chat/completions").parse()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let port: u16 = std::env::var(SERVE_PORT)?.parse()?;
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build(http);
        let relay = move |headers: HeaderMap, body: Bytes| {
            let (client, target) = (client.clone(), target.clone());
            async move {
                let mut request = Request::post(target).header(CONTENT_TYPE, "application/json");
                if let Some(auth) = headers.get(AUTHORIZATION) {
                    request = request.header(AUTHORIZATION, auth);
                }
                let answered = match request.body(Full::new(body)) {
                    Ok(request) => client.request(request).await.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                match answered {
                    Ok(response) => response.map(Body::new),
                    Err(e) => (StatusCode::BAD_GATEWAY, e).into_response(),
                }
            }
        };
        let router = axum::Router::new()
            .route("/relay", axum::routing::post(relay))
            .route("/health", axum::routing::get(|| async { "ok" }));
        serve_child(port, router).await
    })
}

/// Whether this process and the servers are pinned, and why not.
struct Pinning {
    on: bool,
    cpus: usize,
    note: String,
}

impl Pinning {
    /// Pins this process to CPU 0 when there are ≥ 2 CPUs and `BENCH_PIN` is not `0`.
    fn apply() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        let off = |note: String| Self {
            on: false,
            cpus,
            note,
        };
        if std::env::var("BENCH_PIN").is_ok_and(|v| v.trim() == "0") {
            return off("off (BENCH_PIN=0)".to_owned());
        }
        if cpus < 2 {
            return off(format!("off ({cpus} CPU)"));
        }
        match taskset(BENCH_CPU, std::process::id()) {
            Ok(()) => Self {
                on: true,
                cpus,
                note: format!(
                    "on: servers and redis-server on CPU {SERVER_CPU}, this process (load generator + mock) on CPU {BENCH_CPU}"
                ),
            },
            Err(error) => off(format!("off (taskset failed: {error})")),
        }
    }
}

/// What the run does, from the environment.
struct Settings {
    quick: bool,
    tokens: usize,
    loads: Vec<Load>,
    warmup: Duration,
    window: Duration,
    max_inflight: usize,
    settle: Duration,
    redis_turns: usize,
    long_turns: usize,
    long_tokens: usize,
    long_itl_ms: u64,
    nagle: usize,
}

impl Settings {
    fn from_env() -> Self {
        let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| v.trim() == "1");
        fn choose<T>(quick: bool, quick_value: T, full: T) -> T {
            if quick { quick_value } else { full }
        }
        let secs = |name: &str, default: f64| {
            Duration::from_secs_f64(
                env_number::<f64>(name)
                    .filter(|s| s.is_finite() && *s > 0.0)
                    .unwrap_or(default)
                    .min(600.0),
            )
        };
        let loads = std::env::var("BENCH_LOADS")
            .ok()
            .map(|list| list.split(',').filter_map(Load::parse).collect::<Vec<_>>())
            .filter(|loads| !loads.is_empty())
            .unwrap_or_else(|| {
                vec![
                    Load::Closed(1),
                    Load::Closed(64),
                    Load::Open(500),
                    Load::Open(1000),
                ]
            });
        Self {
            quick,
            tokens: env_number("BENCH_TOKENS").unwrap_or(64).clamp(1, 100_000),
            loads,
            warmup: secs("BENCH_WARMUP_SECS", choose(quick, 0.5, 1.0)),
            window: secs("BENCH_SECS", choose(quick, 1.0, 10.0)),
            max_inflight: env_number("BENCH_MAX_INFLIGHT").unwrap_or(4096).max(1),
            settle: Duration::from_millis(choose(quick, 200, 500)),
            redis_turns: env_number("BENCH_REDIS_TURNS")
                .unwrap_or(choose(quick, 20, 100))
                .clamp(1, 100_000),
            long_turns: env_number("BENCH_LONG_TURNS").unwrap_or(4).clamp(1, 256),
            long_tokens: env_number("BENCH_LONG_TOKENS")
                .unwrap_or(choose(quick, 200, 1000))
                .clamp(1, 100_000),
            long_itl_ms: env_number("BENCH_LONG_ITL_MS").unwrap_or(25).min(1000),
            nagle: env_number("BENCH_NAGLE")
                .unwrap_or(choose(quick, 20, 50))
                .clamp(1, 10_000),
        }
    }

    /// How long a long reply streams, with a margin for its timeout.
    fn long_timeout(&self) -> Duration {
        let streaming =
            Duration::from_millis(self.long_itl_ms.saturating_mul(self.long_tokens as u64));
        streaming * 2 + Duration::from_secs(30)
    }
}

fn env_number<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok()?.trim().parse().ok()
}

/// How requests are issued at one load level.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Load {
    /// `cN`: N workers, each sending its next request when the previous one ended.
    Closed(usize),
    /// `rN`: N requests/s on a fixed schedule, each independent of earlier responses.
    Open(u32),
}

impl Load {
    fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if let Some(n) = text.strip_prefix('c') {
            n.parse()
                .ok()
                .filter(|n| (1..=10_000).contains(n))
                .map(Self::Closed)
        } else if let Some(n) = text.strip_prefix('r') {
            n.parse()
                .ok()
                .filter(|n| (1..=100_000).contains(n))
                .map(Self::Open)
        } else {
            None
        }
    }

    fn name(self) -> String {
        match self {
            Self::Closed(n) => format!("c{n}"),
            Self::Open(n) => format!("r{n}"),
        }
    }

    fn title(self) -> String {
        match self {
            Self::Closed(1) => "c1: sequential (closed loop, 1 worker)".to_owned(),
            Self::Closed(n) => format!("c{n}: closed loop, {n} workers"),
            Self::Open(n) => format!("r{n}: open loop, {n} requests/s"),
        }
    }
}

async fn run(
    settings: Settings,
    pinning: Pinning,
    mock_runtime: tokio::runtime::Handle,
) -> Result<()> {
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    let bench = Bench::start(&run_id, &settings, &pinning, &mock_runtime).await?;
    let client = Client::builder()
        .tcp_nodelay(true)
        .http1_only()
        .timeout(REQUEST_TIMEOUT)
        .pool_idle_timeout(Duration::from_secs(120))
        .build()?;
    let targets = bench.targets();

    report!(
        "chat bench: {} cpus, pinning {}; redis {}; {} tokens per reply, no mock delays; rate limits {}; run {}",
        pinning.cpus,
        pinning.note,
        bench.redis_version().await?,
        settings.tokens,
        if bench.limited {
            "on (never refusing)"
        } else {
            "OFF"
        },
        &run_id[..8],
    );
    report!(
        "levels: {} s measured after {} s warm-up each{}; open loop drops beyond {} in flight (counted as errors)",
        settings.window.as_secs_f64(),
        settings.warmup.as_secs_f64(),
        if settings.quick { " (BENCH_QUICK)" } else { "" },
        settings.max_inflight,
    );
    report!(
        "TTFT = send -> first SSE event with content; total = send -> end of a stream ending in [DONE]; ms"
    );
    report!(
        "overhead = percentile(proxied) - percentile(direct); CPU per turn = CPU over the window / turns answered OK"
    );

    // Every thread a proxied turn created, by target, checked at the end.
    let mut threads: BTreeMap<&'static str, Vec<String>> = BTreeMap::new();
    let mut levels: BTreeMap<(String, &'static str), LoadStats> = BTreeMap::new();
    let timing = Timing {
        warmup: settings.warmup,
        window: settings.window,
        max_inflight: settings.max_inflight,
    };
    let short = Ask::short(settings.tokens);
    let long = Ask {
        tokens: settings.long_tokens,
        directive: format!(
            "[[mock tokens={} inter_token_ms={}]] ",
            settings.long_tokens, settings.long_itl_ms
        ),
        timeout: settings.long_timeout(),
    };
    let proxies: Vec<&Target> = targets.iter().filter(|t| t.server.is_some()).collect();

    // Redis first, while it holds almost nothing: an idle Redis then costs little, which the
    // long replies' CPU figure needs. The servers warm up first (connections, scripts).
    progress!("warm-up of the servers");
    // Idle RSS as the harness reads it: after the server's first turn (its readiness check).
    let mut idle_rss: BTreeMap<&'static str, f64> = BTreeMap::new();
    for target in &proxies {
        for turn in 0..WARMUP_TURNS {
            let sample = one(&client, target, &short, Instant::now()).await;
            if let Ok(answer) = sample.result {
                threads
                    .entry(target.name)
                    .or_default()
                    .extend(answer.thread);
            }
            if let (0, Some(pid)) = (turn, target.server) {
                idle_rss.insert(target.name, rss_mib(pid)?);
            }
        }
    }
    for server in [&bench.local, &bench.function] {
        report!(
            "{:<9} pid {}, idle RSS {:.1} MiB right after start, {:.1} MiB after its first turn (target < {TARGET_IDLE_RSS_MIB:.1} MiB, 15 MB)",
            server.name,
            server.pid,
            server.idle_rss_mib,
            idle_rss.get(server.name).copied().unwrap_or(f64::NAN),
        );
    }
    report!("");
    report!("== Redis per turn (before the load levels, on a nearly empty Redis) ==");
    report!(
        "MONITOR tells the servers' requests (round trips; by client port) from commands run inside scripts; a script call is one round trip however much it runs. INFO commandstats counts both. MONITOR costs Redis much CPU, so each case runs again without it for the CPU figures."
    );
    progress!("redis per turn: {}-token turns", settings.tokens);
    let short_counted = bench
        .measure_redis(&client, &proxies, settings.redis_turns, &short, false, true)
        .await?;
    let short_cpu = bench
        .measure_redis(
            &client,
            &proxies,
            settings.redis_turns,
            &short,
            false,
            false,
        )
        .await?;
    report!(
        "{}-token turns, {} sequential per server, under MONITOR:",
        settings.tokens,
        settings.redis_turns
    );
    short_counted.report(None)?;
    progress!(
        "redis per turn: {}-token turns at {} ms per token (~{:.0} s, twice)",
        settings.long_tokens,
        settings.long_itl_ms,
        (settings.long_tokens as u64 * settings.long_itl_ms) as f64 / 1000.0
    );
    let long_counted = bench
        .measure_redis(&client, &proxies, settings.long_turns, &long, true, true)
        .await?;
    let long_cpu = bench
        .measure_redis(&client, &proxies, settings.long_turns, &long, true, false)
        .await?;
    report!(
        "{}-token turns at {} ms per token, {} per server all at once, under MONITOR:",
        settings.long_tokens,
        settings.long_itl_ms,
        settings.long_turns
    );
    long_counted.report(Some(LEASE_RENEWAL_EVERY))?;
    report!(
        "Redis per turn without MONITOR: its time running the servers' requests (INFO commandstats usec, scripts whole), and its whole CPU (INFO cpu) net of what an idle Redis uses over the same time (noisy when turns are few and long):"
    );
    for (what, run, counted) in [
        (
            format!(
                "{}-token, {} sequential per server",
                settings.tokens, settings.redis_turns
            ),
            &short_cpu,
            &short_counted,
        ),
        (
            format!(
                "{}-token, {} per server at once",
                settings.long_tokens, settings.long_turns
            ),
            &long_cpu,
            &long_counted,
        ),
    ] {
        let requests = counted.requests();
        report!(
            "  {what:<36} commands {:>4.0} µs [{}]; whole Redis {:>5.0} µs net (raw {:.0} µs over {:.1} s, idle Redis {:.2} ms/s){}",
            run.command_us(&requests),
            requests.into_iter().collect::<Vec<_>>().join(", "),
            run.cpu_us - run.idle_us,
            run.cpu_us,
            run.wall.as_secs_f64(),
            run.idle_rate * 1e3,
            run.problems(),
        );
    }
    for run in [&short_counted, &short_cpu, &long_counted, &long_cpu] {
        for share in &run.shares {
            threads
                .entry(share.name)
                .or_default()
                .extend(share.threads.iter().cloned());
        }
    }

    for &load in &settings.loads {
        report!("");
        report!("== {} ==", load.title());
        report!(
            "{:<9} {:>6} {:>5} {:>5} {:>8} | {:>8} {:>8} | {:>8} {:>8} | {:>9} {:>9}",
            "target",
            "ok",
            "err",
            "drop",
            "turns/s",
            "ttft50",
            "ttft99",
            "tot50",
            "tot99",
            "srv ms/t",
            "redis µs/t"
        );
        for target in &targets {
            progress!("{}: {}", load.name(), target.name);
            let probe = match target.server {
                Some(pid) => Some(bench.probe(pid).await?),
                None => None,
            };
            let stats = run_load(&client, target, load, &timing, &short, probe).await?;
            report!("{}", stats.row(target.name));
            if let Some(error) = &stats.first_error {
                report!("          {} first error: {error}", target.name);
            }
            threads
                .entry(target.name)
                .or_default()
                .extend(stats.threads.iter().cloned());
            levels.insert((load.name(), target.name), stats);
            tokio::time::sleep(settings.settle).await;
        }
        let Some(direct) = levels.get(&(load.name(), "direct")) else {
            continue;
        };
        for target in targets.iter().filter(|t| t.name != "direct") {
            let Some(proxied) = levels.get(&(load.name(), target.name)) else {
                continue;
            };
            report!(
                "          {} overhead: TTFT p50 {:+.3} p99 {:+.3} ms; total p50 {:+.3} p99 {:+.3} ms{}{}",
                target.name,
                diff_ms(&proxied.ttft, &direct.ttft, 50.0),
                diff_ms(&proxied.ttft, &direct.ttft, 99.0),
                diff_ms(&proxied.total, &direct.total, 50.0),
                diff_ms(&proxied.total, &direct.total, 99.0),
                match proxied.cpu {
                    Some(_) => format!(
                        "; server busy {:.0}% of a CPU",
                        proxied.server_busy() * 100.0
                    ),
                    None => String::new(),
                },
                match load {
                    Load::Open(_) =>
                        format!("; send lag p99 {} ms", ms(percentile(&proxied.lag, 99.0))),
                    Load::Closed(_) => String::new(),
                },
            );
            if let Some(timing) = proxied.timing_percentiles() {
                report!(
                    "          {} Server-Timing p50 / p99: {timing}",
                    target.name
                );
            }
        }
    }

    report!("");
    report!(
        "== Nagle check ({} sequential requests on one keep-alive connection) ==",
        settings.nagle
    );
    let nagle_client = Client::builder()
        .tcp_nodelay(true)
        .http1_only()
        .timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(1)
        .build()?;
    let mut stalls: BTreeMap<&'static str, String> = BTreeMap::new();
    for target in &targets {
        let mut ttfb = Vec::new();
        let mut total = Vec::new();
        let mut errors = 0;
        for _ in 0..settings.nagle {
            let sample = one(&nagle_client, target, &short, Instant::now()).await;
            match sample.result {
                Ok(answer) => {
                    ttfb.push(answer.ttfb);
                    total.push(answer.total);
                    threads
                        .entry(target.name)
                        .or_default()
                        .extend(answer.thread.filter(|_| target.server.is_some()));
                }
                Err(_) => errors += 1,
            }
        }
        total.sort_unstable();
        let (mean_ttfb, median_total) = (mean(&ttfb), percentile(&total, 50.0));
        // A stall after the first write delays the rest of the body, not the first byte. The
        // median, not the mean, judges the total: a fresh connection starts in quick-ACK mode,
        // so its first few requests do not stall and would dilute a mean.
        let flag = if mean_ttfb >= NAGLE_SUSPECT {
            "NAGLE STALL? (before the first byte)"
        } else if median_total >= NAGLE_SUSPECT {
            "NAGLE STALL? (after the first chunk)"
        } else if errors > 0 {
            "errors"
        } else {
            ""
        };
        report!(
            "{:<9} mean TTFB {} ms, mean total {} ms, median total {} ms, errors {errors}{}{flag}",
            target.name,
            ms(mean_ttfb),
            ms(mean(&total)),
            ms(median_total),
            if flag.is_empty() { "" } else { "  " },
        );
        stalls.insert(target.name, flag.to_owned());
    }

    report!("");
    report!("== Stored replies (every proxied turn of the run: its thread's messageCount is 2) ==");
    // The last turns' final writes may still be on their way.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut stored: BTreeMap<&'static str, (usize, usize)> = BTreeMap::new();
    for target in targets.iter().filter(|t| t.server.is_some()) {
        let ids = threads.get(target.name).map_or(&[][..], Vec::as_slice);
        let (complete, first_bad) = bench.check_stored(ids).await?;
        report!(
            "{:<9} stored: {complete}/{}{}",
            target.name,
            ids.len(),
            first_bad.map_or(String::new(), |(thread, count)| format!(
                "  (e.g. thread {thread}: messageCount {count})"
            )),
        );
        stored.insert(target.name, (complete, ids.len()));
    }

    report!("");
    report!(
        "== Summary (DESIGN.md targets; pinning {}) ==",
        if pinning.on { "on" } else { "OFF" }
    );
    for (target, server) in targets
        .iter()
        .filter(|t| t.server.is_some())
        .zip([&bench.local, &bench.function])
    {
        let mut checks = Vec::new();
        let level = |name: &str| levels.get(&(name.to_owned(), target.name));
        let direct = |name: &str| levels.get(&(name.to_owned(), "direct"));
        checks.push(match level("c64") {
            Some(c64) => Check::new(
                "server CPU at c64",
                format!("{:.3} ms/turn", c64.server_cpu_ms()),
                format!("<= {TARGET_SERVER_CPU_MS}"),
                c64.server_cpu_ms() <= TARGET_SERVER_CPU_MS,
            ),
            None => Check::missing("server CPU at c64"),
        });
        checks.push(match level("c64") {
            Some(c64) => Check::new(
                "goodput at c64",
                format!(
                    "{:.0} turns/s, {} errors",
                    c64.goodput,
                    c64.errors + c64.dropped
                ),
                format!(">= {TARGET_C64_TURNS_PER_SEC:.0}, 0 errors"),
                c64.goodput >= TARGET_C64_TURNS_PER_SEC && c64.errors + c64.dropped == 0,
            ),
            None => Check::missing("goodput at c64"),
        });
        checks.push(match (level("r1000"), direct("r1000")) {
            (Some(r), Some(d)) => {
                let (p50, p99) = (
                    diff_ms(&r.ttft, &d.ttft, 50.0),
                    diff_ms(&r.ttft, &d.ttft, 99.0),
                );
                Check::new(
                    "r1000 TTFT overhead",
                    format!(
                        "p50 {p50:.3} p99 {p99:.3} ms, {} errors, {} drops",
                        r.errors, r.dropped
                    ),
                    format!("p50 <= {TARGET_TTFT_P50_MS}, p99 <= {TARGET_TTFT_P99_MS}, 0, 0"),
                    p50 <= TARGET_TTFT_P50_MS
                        && p99 <= TARGET_TTFT_P99_MS
                        && r.errors + r.dropped == 0,
                )
            }
            _ => Check::missing("r1000 TTFT overhead"),
        });
        checks.push(match (level("r500"), direct("r500")) {
            (Some(r), Some(d)) => {
                let p99 = diff_ms(&r.ttft, &d.ttft, 99.0);
                Check::new(
                    "r500 TTFT overhead",
                    format!("p99 {p99:.3} ms, {} errors, {} drops", r.errors, r.dropped),
                    format!("p99 <= {TARGET_TTFT_P99_MS}, 0, 0"),
                    p99 <= TARGET_TTFT_P99_MS && r.errors + r.dropped == 0,
                )
            }
            _ => Check::missing("r500 TTFT overhead"),
        });
        checks.push(
            match (
                short_counted.share(target.name),
                long_counted.share(target.name),
            ) {
                (Some(short), Some(long)) => {
                    let allowed = long.allowed_round_trips(LEASE_RENEWAL_EVERY);
                    Check::new(
                        "redis round trips per turn",
                        format!(
                            "{:.2} ({}-token), {:.2} ({}-token, {:.1} s)",
                            short.round_trips(),
                            settings.tokens,
                            long.round_trips(),
                            settings.long_tokens,
                            long.streamed().as_secs_f64()
                        ),
                        format!("<= {TARGET_ROUND_TRIPS}, <= {allowed:.0}"),
                        short.complete()
                            && long.complete()
                            && short.round_trips() <= TARGET_ROUND_TRIPS
                            && long.round_trips() <= allowed,
                    )
                }
                _ => Check::missing("redis round trips per turn"),
            },
        );
        checks.push(match level("c64") {
            Some(c64) => Check::new(
                "redis CPU per turn at c64",
                format!("{:.0} µs", c64.redis_cpu_us()),
                format!("<= {TARGET_REDIS_CPU_US}"),
                c64.redis_cpu_us() <= TARGET_REDIS_CPU_US,
            ),
            None => Check::missing("redis CPU per turn at c64"),
        });
        let rss = idle_rss.get(server.name).copied().unwrap_or(f64::NAN);
        checks.push(Check::new(
            "idle RSS after a turn",
            format!("{rss:.1} MiB"),
            format!("< {TARGET_IDLE_RSS_MIB:.1}"),
            rss < TARGET_IDLE_RSS_MIB,
        ));
        let (complete, all) = stored.get(target.name).copied().unwrap_or((0, 0));
        checks.push(Check::new(
            "replies stored",
            format!("{complete}/{all}"),
            "all".to_owned(),
            all > 0 && complete == all,
        ));
        let stall = stalls.get(target.name).map_or("not run", String::as_str);
        checks.push(Check::new(
            "Nagle check",
            if stall.is_empty() { "no stall" } else { stall }.to_owned(),
            "no stall".to_owned(),
            stall.is_empty(),
        ));
        let met = checks.iter().filter(|c| c.ok).count();
        report!("{}: {met}/{} targets met", target.name, checks.len());
        for check in &checks {
            report!(
                "  {:<28} {:<44} (target {}) {}",
                check.what,
                check.value,
                check.target,
                if check.ok { "ok" } else { "MISSED" }
            );
        }
    }
    // What a process in between costs by itself on this machine, under each server's figure.
    for load in &settings.loads {
        let (Some(relay), Some(direct)) = (
            levels.get(&(load.name(), "relay")),
            levels.get(&(load.name(), "direct")),
        ) else {
            continue;
        };
        report!(
            "floor (relay: a process that only relays to the mock): {} TTFT overhead p50 {:.3} p99 {:.3} ms",
            load.name(),
            diff_ms(&relay.ttft, &direct.ttft, 50.0),
            diff_ms(&relay.ttft, &direct.ttft, 99.0),
        );
    }
    Ok(())
}

/// One line of the summary.
struct Check {
    what: &'static str,
    value: String,
    target: String,
    ok: bool,
}

impl Check {
    fn new(what: &'static str, value: String, target: String, ok: bool) -> Self {
        Self {
            what,
            value,
            target,
            ok,
        }
    }

    fn missing(what: &'static str) -> Self {
        Self::new(what, "not measured".to_owned(), "-".to_owned(), false)
    }
}

/// The shape of a load level's time.
struct Timing {
    warmup: Duration,
    window: Duration,
    max_inflight: usize,
}

/// What each request asks for.
#[derive(Clone)]
struct Ask {
    tokens: usize,
    /// Put in front of the user message: a `[[mock …]]` directive or nothing.
    directive: String,
    timeout: Duration,
}

impl Ask {
    fn short(tokens: usize) -> Self {
        Self {
            tokens,
            directive: String::new(),
            timeout: REQUEST_TIMEOUT,
        }
    }
}

/// Where requests go.
#[derive(Clone)]
struct Target {
    name: &'static str,
    url: String,
    bearer: String,
    /// The server process behind the target, or none for the mock itself.
    server: Option<u32>,
}

impl Target {
    /// The harness's body (`bodies/chat-stream.json`), with a message of its own. Without a
    /// thread id a proxied turn creates a thread.
    fn body(&self, ask: &Ask) -> serde_json::Value {
        let n = NEXT_MESSAGE.fetch_add(1, Ordering::Relaxed);
        json!({
            "model": MODEL,
            "stream": true,
            "stream_options": { "include_usage": true },
            "max_tokens": ask.tokens,
            "messages": [
                { "role": "system", "content": "You are a helpful assistant." },
                {
                    "role": "user",
                    "content": format!(
                        "{}Write a short paragraph about latency benchmarks of LLM gateways. ({n})",
                        ask.directive
                    ),
                },
            ],
        })
    }
}

/// One request, answered or not.
struct Sample {
    /// Its slot on the schedule (open loop) or its start (closed loop): selects the window.
    sched: Instant,
    start: Instant,
    result: Result<Answer, Failure>,
}

struct Answer {
    /// Send -> first body bytes.
    ttfb: Duration,
    /// Send -> first SSE event with non-empty content, when there was one.
    ttft: Option<Duration>,
    total: Duration,
    thread: Option<String>,
    /// The server's own split of its time (`Server-Timing`), when it sent one.
    timing: Option<ServerTiming>,
}

/// The phases of a `Server-Timing` header the server writes, in milliseconds.
#[derive(Clone, Copy, Default)]
struct ServerTiming {
    auth: f64,
    store: f64,
    upstream: f64,
    total: f64,
}

impl ServerTiming {
    /// Reads `auth;dur=0.012, store;dur=0.051, …`; phases it does not know are left out.
    fn parse(value: &str) -> Self {
        let mut timing = Self::default();
        for metric in value.split(',') {
            let mut parts = metric.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let dur = parts
                .find_map(|p| p.strip_prefix("dur="))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or_default();
            match name {
                "auth" => timing.auth = dur,
                "store" => timing.store = dur,
                "upstream" => timing.upstream = dur,
                "total" => timing.total = dur,
                _ => {}
            }
        }
        timing
    }
}

struct Failure {
    /// Could not connect: a closed-loop worker pauses instead of spinning.
    refused: bool,
    message: String,
}

impl Failure {
    fn new(message: impl Into<String>) -> Self {
        Self {
            refused: false,
            message: message.into(),
        }
    }
}

/// Sends one chat request and reads its stream to the end, as the harness's load generator
/// does: errors are non-2xx, connection and stream failures, timeouts, and streams that are
/// not `text/event-stream` or do not end with `data: [DONE]`.
async fn one(client: &Client, target: &Target, ask: &Ask, sched: Instant) -> Sample {
    let body = target.body(ask);
    let start = Instant::now();
    let exchange = async {
        let mut response = client
            .post(&target.url)
            .bearer_auth(&target.bearer)
            .json(&body)
            .timeout(ask.timeout)
            .send()
            .await
            .map_err(|e| Failure {
                refused: e.is_connect(),
                message: format!("send: {e}"),
            })?;
        let status = response.status();
        let is_sse = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("text/event-stream")
            });
        let thread = response
            .headers()
            .get("x-thread-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let timing = response
            .headers()
            .get("server-timing")
            .and_then(|v| v.to_str().ok())
            .map(ServerTiming::parse);
        let (mut ttfb, mut ttft, mut done) = (None, None, false);
        let mut line: Vec<u8> = Vec::with_capacity(1024);
        let mut refusal = Vec::new();
        while let Some(data) = response.chunk().await.map_err(|e| {
            Failure::new(if e.is_timeout() {
                format!("timeout after {:?}", ask.timeout)
            } else {
                format!("body: {e}")
            })
        })? {
            if data.is_empty() {
                continue;
            }
            ttfb.get_or_insert_with(|| start.elapsed());
            if !status.is_success() || !is_sse {
                if refusal.len() < 300 {
                    refusal.extend_from_slice(&data);
                }
                continue;
            }
            let mut rest: &[u8] = &data;
            while let Some(nl) = rest.iter().position(|&c| c == b'\n') {
                let piece = &rest[..nl];
                rest = &rest[nl + 1..];
                let full: &[u8] = if line.is_empty() {
                    piece
                } else {
                    line.extend_from_slice(piece);
                    &line
                };
                let full = full.strip_suffix(b"\r").unwrap_or(full);
                if let Some(payload) = full.strip_prefix(b"data:") {
                    let payload = payload.strip_prefix(b" ").unwrap_or(payload);
                    if payload.trim_ascii() == b"[DONE]" {
                        done = true;
                    } else if ttft.is_none() && has_content(payload) {
                        ttft = Some(start.elapsed());
                    }
                }
                line.clear();
            }
            line.extend_from_slice(rest);
        }
        let total = start.elapsed();
        if !status.is_success() {
            return Err(Failure::new(format!(
                "status {status}: {:.200}",
                String::from_utf8_lossy(&refusal)
            )));
        }
        if !is_sse {
            return Err(Failure::new("not text/event-stream"));
        }
        if !done {
            return Err(Failure::new("the stream ended without data: [DONE]"));
        }
        Ok(Answer {
            ttfb: ttfb.unwrap_or(total),
            ttft,
            total,
            thread,
            timing,
        })
    };
    // reqwest's timeout covers the body too; this is a second bound.
    let result = tokio::time::timeout(ask.timeout + Duration::from_secs(1), exchange)
        .await
        .unwrap_or_else(|_| Err(Failure::new(format!("timeout after {:?}", ask.timeout))));
    Sample {
        sched,
        start,
        result,
    }
}

/// True when an SSE data payload carries a non-empty `"content"` string (OpenAI chunk
/// `choices[].delta.content`): the harness's byte scan, tolerant of whitespace after the colon;
/// `"reasoning_content"` does not match.
fn has_content(payload: &[u8]) -> bool {
    const KEY: &[u8] = b"\"content\"";
    let mut from = 0;
    while from + KEY.len() <= payload.len() {
        let Some(pos) = payload[from..].windows(KEY.len()).position(|w| w == KEY) else {
            return false;
        };
        let mut j = from + pos + KEY.len();
        from = j;
        while j < payload.len() && payload[j].is_ascii_whitespace() {
            j += 1;
        }
        if j >= payload.len() || payload[j] != b':' {
            continue;
        }
        j += 1;
        while j < payload.len() && payload[j].is_ascii_whitespace() {
            j += 1;
        }
        if j + 1 < payload.len() && payload[j] == b'"' && payload[j + 1] != b'"' {
            return true;
        }
    }
    false
}

/// Reads a server's and Redis's CPU time.
#[derive(Clone)]
struct Probe {
    pid: u32,
    clock_ticks: f64,
    redis: redis::aio::MultiplexedConnection,
}

/// CPU seconds used so far.
#[derive(Clone, Copy)]
struct CpuSample {
    server: f64,
    redis: f64,
    at: Instant,
}

impl Probe {
    async fn sample(&mut self) -> Result<CpuSample> {
        let server = proc_cpu_ticks(self.pid)? as f64 / self.clock_ticks;
        let redis = redis_cpu(&mut self.redis).await?;
        Ok(CpuSample {
            server,
            redis,
            at: Instant::now(),
        })
    }
}

/// utime + stime of a process, in clock ticks (fields 14 and 15 of `/proc/<pid>/stat`).
fn proc_cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces; the fields after it start with the state.
    let (_, rest) = stat.rsplit_once(')').ok_or("unexpected /proc/<pid>/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> Result<u64> {
        Ok(fields.get(n - 3).ok_or("short /proc/<pid>/stat")?.parse()?)
    };
    Ok(field(14)? + field(15)?)
}

/// `VmRSS` of a process, in MiB.
fn rss_mib(pid: u32) -> Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .ok_or("no VmRSS in /proc/<pid>/status")?
        .parse()?;
    Ok(kb / 1024.0)
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux almost everywhere).
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse::<f64>().ok())
        .filter(|ticks| *ticks > 0.0)
        .unwrap_or(100.0)
}

/// `used_cpu_sys + used_cpu_user` of `INFO cpu`, in seconds.
async fn redis_cpu(conn: &mut redis::aio::MultiplexedConnection) -> Result<f64> {
    let info: String = redis::cmd("INFO").arg("cpu").query_async(conn).await?;
    let field = |name: &str| -> Result<f64> {
        Ok(info_field(&info, name)
            .ok_or_else(|| format!("no {name} in INFO cpu"))?
            .parse()?)
    };
    Ok(field("used_cpu_sys")? + field("used_cpu_user")?)
}

/// Runs one load level against `target`: warm-up, then the measured window, then waits for the
/// window's requests to end. Requests whose slot (open loop) or start (closed loop) falls in
/// the window are measured; the CPU window runs from its start until they have all ended.
async fn run_load(
    client: &Client,
    target: &Target,
    load: Load,
    timing: &Timing,
    ask: &Ask,
    probe: Option<Probe>,
) -> Result<LoadStats> {
    let t0 = Instant::now();
    let measure_start = t0 + timing.warmup;
    let end = measure_start + timing.window;
    // A bound for everything, draining included.
    let hard_deadline = end + ask.timeout + Duration::from_secs(2);
    let (tx, mut rx) = mpsc::unbounded_channel::<Sample>();
    let dropped = Arc::new(AtomicU64::new(0));
    match load {
        Load::Closed(workers) => {
            for _ in 0..workers {
                let (client, target, ask, tx) =
                    (client.clone(), target.clone(), ask.clone(), tx.clone());
                tokio::spawn(async move {
                    loop {
                        let now = Instant::now();
                        if now >= end {
                            break;
                        }
                        let sample = one(&client, &target, &ask, now).await;
                        let refused = sample.result.as_ref().is_err_and(|f| f.refused);
                        if tx.send(sample).is_err() {
                            break;
                        }
                        if refused {
                            // Do not spin on a dead target.
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                });
            }
        }
        Load::Open(per_sec) => {
            let (client, target, ask, tx) =
                (client.clone(), target.clone(), ask.clone(), tx.clone());
            let dropped = Arc::clone(&dropped);
            let max_inflight = timing.max_inflight;
            tokio::spawn(async move {
                let inflight = Arc::new(AtomicUsize::new(0));
                let interval = Duration::from_secs(1) / per_sec;
                for k in 0u32.. {
                    let sched = t0 + interval * k;
                    if sched >= end {
                        break;
                    }
                    // Every request whose slot has passed goes out at once.
                    if sched > Instant::now() {
                        tokio::time::sleep_until(sched.into()).await;
                    }
                    if inflight.load(Ordering::Relaxed) >= max_inflight {
                        if sched >= measure_start {
                            dropped.fetch_add(1, Ordering::Relaxed);
                        }
                        continue;
                    }
                    inflight.fetch_add(1, Ordering::Relaxed);
                    let (client, target, ask, tx, inflight) = (
                        client.clone(),
                        target.clone(),
                        ask.clone(),
                        tx.clone(),
                        Arc::clone(&inflight),
                    );
                    tokio::spawn(async move {
                        let sample = one(&client, &target, &ask, sched).await;
                        inflight.fetch_sub(1, Ordering::Relaxed);
                        let _ = tx.send(sample);
                    });
                }
            });
        }
    }
    drop(tx);
    let before = probe.clone().map(|mut probe| {
        tokio::spawn(async move {
            tokio::time::sleep_until(measure_start.into()).await;
            probe.sample().await
        })
    });

    let mut stats = LoadStats::default();
    let mut window_ok = 0u64;
    loop {
        match tokio::time::timeout_at(hard_deadline.into(), rx.recv()).await {
            Ok(Some(sample)) => {
                let measured = sample.sched >= measure_start;
                match sample.result {
                    Ok(answer) => {
                        let ended = sample.start + answer.total;
                        if ended >= measure_start && ended <= end {
                            window_ok += 1;
                        }
                        stats.threads.extend(answer.thread.clone());
                        if measured {
                            stats.ok += 1;
                            stats.ttft.extend(answer.ttft);
                            stats.total.push(answer.total);
                            stats.timings.extend(answer.timing);
                            stats
                                .lag
                                .push(sample.start.saturating_duration_since(sample.sched));
                        }
                    }
                    Err(failure) if measured => {
                        stats.errors += 1;
                        stats.first_error.get_or_insert(failure.message);
                    }
                    Err(_) => {}
                }
            }
            Ok(None) => break,
            Err(_) => {
                progress!(
                    "{}: hard deadline reached; abandoning outstanding requests",
                    target.name
                );
                break;
            }
        }
    }
    stats.dropped = dropped.load(Ordering::Relaxed) as usize;
    stats.goodput = window_ok as f64 / timing.window.as_secs_f64();
    if let (Some(mut probe), Some(before)) = (probe, before) {
        let before = before.await??;
        let after = probe.sample().await?;
        stats.cpu = Some(CpuDelta {
            server: after.server - before.server,
            redis: after.redis - before.redis,
            wall: after.at.saturating_duration_since(before.at),
        });
    }
    stats.ttft.sort_unstable();
    stats.total.sort_unstable();
    stats.lag.sort_unstable();
    Ok(stats)
}

/// CPU seconds over a window.
#[derive(Clone, Copy)]
struct CpuDelta {
    server: f64,
    redis: f64,
    wall: Duration,
}

/// One load level on one target; percentiles over the window's successful requests.
#[derive(Default)]
struct LoadStats {
    ok: usize,
    errors: usize,
    dropped: usize,
    first_error: Option<String>,
    /// Turns that ended OK inside the window, per second of window.
    goodput: f64,
    ttft: Vec<Duration>,
    total: Vec<Duration>,
    lag: Vec<Duration>,
    /// Threads of every successful proxied turn, warm-up included.
    threads: Vec<String>,
    cpu: Option<CpuDelta>,
    /// The servers' `Server-Timing` of the window's successful requests.
    timings: Vec<ServerTiming>,
}

impl LoadStats {
    fn server_cpu_ms(&self) -> f64 {
        self.cpu
            .map_or(f64::NAN, |cpu| cpu.server * 1e3 / self.ok.max(1) as f64)
    }

    fn redis_cpu_us(&self) -> f64 {
        self.cpu
            .map_or(f64::NAN, |cpu| cpu.redis * 1e6 / self.ok.max(1) as f64)
    }

    /// The server's CPU over the window as a share of one CPU.
    fn server_busy(&self) -> f64 {
        self.cpu.map_or(f64::NAN, |cpu| {
            cpu.server / cpu.wall.as_secs_f64().max(f64::EPSILON)
        })
    }

    /// The p50 and p99 of each `Server-Timing` phase, if the target sent the header (each
    /// percentile of a phase on its own: the p99s need not come from one request).
    fn timing_percentiles(&self) -> Option<String> {
        if self.timings.is_empty() {
            return None;
        }
        let at = |phase: fn(&ServerTiming) -> f64| {
            let mut values: Vec<Duration> = self
                .timings
                .iter()
                .map(|t| Duration::from_secs_f64(phase(t).max(0.0) / 1e3))
                .collect();
            values.sort_unstable();
            format!(
                "{} / {}",
                ms(percentile(&values, 50.0)),
                ms(percentile(&values, 99.0))
            )
        };
        Some(format!(
            "auth {}, store {}, upstream {}, total {} ms",
            at(|t| t.auth),
            at(|t| t.store),
            at(|t| t.upstream),
            at(|t| t.total),
        ))
    }

    fn row(&self, name: &str) -> String {
        let p = |v: &[Duration], q: f64| ms(percentile(v, q));
        let (server, redis) = match self.cpu {
            Some(_) => (
                format!("{:.3}", self.server_cpu_ms()),
                format!("{:.0}", self.redis_cpu_us()),
            ),
            None => ("-".to_owned(), "-".to_owned()),
        };
        format!(
            "{name:<9} {:>6} {:>5} {:>5} {:>8.0} | {:>8} {:>8} | {:>8} {:>8} | {server:>9} {redis:>9}",
            self.ok,
            self.errors,
            self.dropped,
            self.goodput,
            p(&self.ttft, 50.0),
            p(&self.ttft, 99.0),
            p(&self.total, 50.0),
            p(&self.total, 99.0),
        )
    }
}

fn mean(samples: &[Duration]) -> Duration {
    let n = u32::try_from(samples.len()).unwrap_or(u32::MAX).max(1);
    samples.iter().sum::<Duration>() / n
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

fn diff_ms(proxied: &[Duration], direct: &[Duration], q: f64) -> f64 {
    (percentile(proxied, q).as_secs_f64() - percentile(direct, q).as_secs_f64()) * 1e3
}

/// A server child process.
struct Server {
    name: &'static str,
    base: String,
    pid: u32,
    idle_rss_mib: f64,
    _child: Child,
}

/// Everything the targets need, alive for the whole run.
struct Bench {
    redis: RedisServer,
    mock: MockUpstream,
    local: Server,
    function: Server,
    /// Only forwards requests to the mock ([`serve_relay`]).
    relay: Server,
    user: String,
    token: String,
    limited: bool,
    /// The servers have the model write each new thread's title (`AUTO_TITLE`).
    titled: bool,
    clock_ticks: f64,
}

impl Bench {
    async fn start(
        run: &str,
        settings: &Settings,
        pinning: &Pinning,
        mock_runtime: &tokio::runtime::Handle,
    ) -> Result<Self> {
        let redis = RedisServer::start().await?;
        let mock_config = MockConfig::default()
            .with_api_key(UPSTREAM_KEY)
            .with_tokens(settings.tokens);
        // The mock's server task runs on its own runtime thread.
        let mock = mock_runtime
            .spawn(MockUpstream::start(mock_config))
            .await??;
        let mut bench_redis = redis::Client::open(redis.url())?
            .get_multiplexed_async_connection()
            .await?;
        if pinning.on {
            let info: String = redis::cmd("INFO")
                .arg("server")
                .query_async(&mut bench_redis)
                .await?;
            let pid: u32 = info_field(&info, "process_id")
                .ok_or("no process_id in INFO server")?
                .parse()?;
            taskset(SERVER_CPU, pid)?;
        }
        // `BENCH_RATE_LIMITS=off` measures the turn without the limiter.
        let limited = !std::env::var("BENCH_RATE_LIMITS").is_ok_and(|v| v.trim() == "off");
        let limit = if limited { NEVER_LIMITED } else { "0" };
        let log = std::env::var_os("BENCH_LOG").is_some();
        let vars: Vec<(String, String)> = [
            ("AUTH_SECRET", AUTH_SECRET.to_owned()),
            ("REDIS_URL", redis.url()),
            ("NOUS_API_KEY", UPSTREAM_KEY.to_owned()),
            ("NOUS_API_BASE_URL", mock.base_url()),
            // The limits stay on (their check is part of every turn's cost) but never refuse:
            // the whole run is one user.
            ("RATE_LIMIT_CHAT_PER_MIN", limit.to_owned()),
            ("RATE_LIMIT_CHAT_PER_DAY", limit.to_owned()),
            ("RATE_LIMIT_REQUESTS_PER_MIN", limit.to_owned()),
            ("RATE_LIMIT_PUBLIC_PER_MIN", limit.to_owned()),
            (
                "RUST_LOG",
                std::env::var("RUST_LOG")
                    .ok()
                    .filter(|_| log)
                    .unwrap_or_else(|| "warn".to_owned()),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        // `BENCH_AUTO_TITLE=0` measures the turn without the model-written title.
        .chain(
            std::env::var("BENCH_AUTO_TITLE")
                .ok()
                .map(|v| ("AUTO_TITLE".to_owned(), v)),
        )
        .collect();
        let config = Config::from_vars(vars.clone())?;
        let user = format!("github:bench{run}");
        let token = Hs256::new(&config.auth.secrets).mint(&UserId::parse(&user)?, 3600)?;

        let local_port = free_port()?;
        let local = Server::start(
            "local",
            server_command(&std::env::current_exe()?, pinning.on)
                .envs(vars.clone())
                .env(SERVE_LOCAL, "1")
                .env(SERVE_PORT, local_port.to_string())
                .envs(log.then_some(("BENCH_LOG", "1"))),
            format!("http://127.0.0.1:{local_port}"),
            "/api/health",
            log,
        )
        .await?;
        let relay_port = free_port()?;
        let relay = Server::start(
            "relay",
            server_command(&std::env::current_exe()?, pinning.on)
                .env(SERVE_RELAY, mock.base_url())
                .env(SERVE_PORT, relay_port.to_string()),
            format!("http://127.0.0.1:{relay_port}"),
            "/health",
            log,
        )
        .await?;
        let function_port = free_port()?;
        let function = Server::start(
            "function",
            server_command(env!("CARGO_BIN_EXE_chat").as_ref(), pinning.on)
                .envs(vars)
                .env("VERCEL_DEV_PORT", function_port.to_string()),
            format!("http://127.0.0.1:{function_port}"),
            "/_vercel/ping",
            log,
        )
        .await?;
        Ok(Self {
            redis,
            mock,
            local,
            function,
            relay,
            user,
            token,
            limited,
            titled: config.chat.auto_title,
            clock_ticks: clock_ticks(),
        })
    }

    fn targets(&self) -> [Target; 4] {
        let proxy = |server: &Server| Target {
            name: server.name,
            url: format!("{}/api/chat", server.base),
            bearer: self.token.clone(),
            server: Some(server.pid),
        };
        [
            Target {
                name: "direct",
                url: format!("{}/chat/completions", self.mock.base_url()),
                bearer: UPSTREAM_KEY.to_owned(),
                server: None,
            },
            Target {
                name: "relay",
                url: format!("{}/relay", self.relay.base),
                bearer: UPSTREAM_KEY.to_owned(),
                server: None,
            },
            proxy(&self.local),
            proxy(&self.function),
        ]
    }

    async fn redis_conn(&self) -> Result<redis::aio::MultiplexedConnection> {
        Ok(redis::Client::open(self.redis.url())?
            .get_multiplexed_async_connection()
            .await?)
    }

    async fn probe(&self, pid: u32) -> Result<Probe> {
        Ok(Probe {
            pid,
            clock_ticks: self.clock_ticks,
            redis: self.redis_conn().await?,
        })
    }

    async fn redis_version(&self) -> Result<String> {
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut self.redis_conn().await?)
            .await?;
        Ok(info_field(&info, "redis_version").unwrap_or("?").to_owned())
    }

    /// Runs `turns` turns through each of `targets` (server after server, one turn after the
    /// other, or all turns of all servers at once when `concurrent`) while measuring what
    /// Redis does: `INFO commandstats` before and after (which also counts the commands
    /// scripts run) and `INFO cpu`; with `monitor`, `MONITOR` too, which tells the clients'
    /// requests (round trips) from commands run inside scripts, and by client port, which
    /// server sent them. Without `monitor`, first measures an idle Redis's CPU for a moment.
    async fn measure_redis(
        &self,
        client: &Client,
        targets: &[&Target],
        turns: usize,
        ask: &Ask,
        concurrent: bool,
        monitor: bool,
    ) -> Result<RedisRun> {
        let mut conn = self.redis_conn().await?;
        let mut idle_rate = 0.0;
        if !monitor {
            let before = redis_cpu(&mut conn).await?;
            let started = Instant::now();
            tokio::time::sleep(IDLE_BASELINE).await;
            idle_rate = (redis_cpu(&mut conn).await? - before) / started.elapsed().as_secs_f64();
        }
        let sentinel = format!("bench-monitor-end-{}", uuid::Uuid::new_v4().simple());
        let stats_before: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut conn)
            .await?;
        let reader = if monitor {
            let monitor = Monitor::start(self.redis.port(), ask.timeout + Duration::from_secs(30))?;
            let sentinel = sentinel.clone();
            Some(tokio::task::spawn_blocking(move || {
                monitor.count_until(&sentinel)
            }))
        } else {
            None
        };
        let cpu_before = redis_cpu(&mut conn).await?;
        let started = Instant::now();
        let calls_before = self.mock.calls();
        let mut samples: Vec<(usize, Sample)> = Vec::with_capacity(turns * targets.len());
        if concurrent {
            let mut tasks = Vec::with_capacity(turns * targets.len());
            for (index, target) in targets.iter().enumerate() {
                for _ in 0..turns {
                    let (client, target, ask) = (client.clone(), (*target).clone(), ask.clone());
                    tasks.push(tokio::spawn(async move {
                        (index, one(&client, &target, &ask, Instant::now()).await)
                    }));
                }
            }
            for task in tasks {
                samples.push(task.await?);
            }
        } else {
            for (index, target) in targets.iter().enumerate() {
                for _ in 0..turns {
                    samples.push((index, one(client, target, ask, Instant::now()).await));
                }
            }
        }
        let upstream_calls = self.mock.calls().saturating_sub(calls_before);
        // The last turn's final write may land just after its stream ended.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let wall = started.elapsed();
        let cpu_after = redis_cpu(&mut conn).await?;
        let seen = match reader {
            Some(reader) => {
                let _: String = redis::cmd("ECHO")
                    .arg(&sentinel)
                    .query_async(&mut conn)
                    .await?;
                Some(reader.await??)
            }
            None => None,
        };
        let stats_after: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut conn)
            .await?;

        let mut run = RedisRun {
            shares: targets
                .iter()
                .map(|target| Share {
                    name: target.name,
                    turns,
                    ports: target.server.map(socket_ports).unwrap_or_default(),
                    ..Share::default()
                })
                .collect(),
            upstream_calls,
            calls_per_turn: if self.titled { 2 } else { 1 },
            wall,
            idle_rate,
            ..RedisRun::default()
        };
        for (index, sample) in samples {
            let Some(share) = run.shares.get_mut(index) else {
                continue;
            };
            match sample.result {
                Ok(answer) => {
                    share.answered += 1;
                    share.streamed.push(answer.total);
                    share.threads.extend(answer.thread);
                }
                Err(failure) => {
                    share.errors += 1;
                    share.first_error.get_or_insert(failure.message);
                }
            }
        }
        for share in &mut run.shares {
            share.streamed.sort_unstable();
        }
        let answered: usize = run.shares.iter().map(|s| s.answered).sum();
        let per_turn = |n: f64| n / answered.max(1) as f64;

        // The bench's own commands on its own connections.
        let ours = ["info", "monitor", "echo"];
        let (before, after) = (command_calls(&stats_before), command_calls(&stats_after));
        let mut all = 0;
        let mut table = Vec::new();
        for (name, calls) in &after {
            let delta = calls.saturating_sub(before.get(name).copied().unwrap_or(0));
            if delta > 0 && !ours.contains(&name.as_str()) {
                all += delta;
                table.push(format!("{name} {:.2}", per_turn(delta as f64)));
            }
        }
        run.table = table.join(", ");
        run.commands = per_turn(all as f64);
        let (usec_before, usec_after) = (command_usec(&stats_before), command_usec(&stats_after));
        run.usec = usec_after
            .iter()
            .map(|(name, usec)| {
                let delta = usec.saturating_sub(usec_before.get(name).copied().unwrap_or(0));
                (name.clone(), delta)
            })
            .filter(|(_, delta)| *delta > 0)
            .collect();
        run.cpu_us = per_turn((cpu_after - cpu_before) * 1e6);
        run.idle_us = per_turn(idle_rate * wall.as_secs_f64() * 1e6);

        if let Some(seen) = seen {
            for ((port, command), n) in &seen.top_level {
                if ours.contains(&command.as_str()) {
                    continue;
                }
                match run.shares.iter_mut().find(|s| s.ports.contains(port)) {
                    Some(share) => *share.top_level.entry(command.clone()).or_default() += n,
                    None => run.unattributed += n,
                }
            }
            run.in_scripts = per_turn(seen.in_scripts.values().sum::<u64>() as f64);
            let names = script_names();
            run.scripts = seen
                .scripts
                .iter()
                .map(|(sha, n)| {
                    let name = names
                        .get(sha)
                        .map_or(&sha[..sha.len().min(12)], String::as_str);
                    format!("{name} {:.2}", per_turn(*n as f64))
                })
                .collect::<Vec<_>>()
                .join(", ");
        }
        Ok(run)
    }

    /// How many of `threads` hold exactly a user message and its reply (`messageCount` 2 in
    /// the thread's meta), with the first that does not. Those that do not are read again
    /// after a moment, in case their turn's last write was still on its way.
    async fn check_stored(&self, threads: &[String]) -> Result<(usize, Option<(String, String)>)> {
        let mut conn = self.redis_conn().await?;
        let mut bad = Vec::new();
        for chunk in threads.chunks(1000) {
            bad.extend(self.incomplete(&mut conn, chunk).await?);
        }
        if !bad.is_empty() {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let again: Vec<String> = bad.into_iter().map(|(thread, _)| thread).collect();
            bad = Vec::new();
            for chunk in again.chunks(1000) {
                bad.extend(self.incomplete(&mut conn, chunk).await?);
            }
        }
        Ok((threads.len() - bad.len(), bad.into_iter().next()))
    }

    /// The threads among `threads` whose `messageCount` is not 2, with what it is.
    async fn incomplete(
        &self,
        conn: &mut redis::aio::MultiplexedConnection,
        threads: &[String],
    ) -> Result<Vec<(String, String)>> {
        let mut pipe = redis::pipe();
        for thread in threads {
            pipe.cmd("HGET")
                .arg(format!("user:{{{}}}:thread:{thread}:meta", self.user))
                .arg("messageCount");
        }
        let counts: Vec<Option<String>> = pipe.query_async(conn).await?;
        Ok(threads
            .iter()
            .zip(counts)
            .filter(|(_, count)| count.as_deref() != Some("2"))
            .map(|(thread, count)| (thread.clone(), count.unwrap_or_else(|| "none".to_owned())))
            .collect())
    }
}

/// The command that starts a server: through `taskset -c 1` when pinning, so that every thread
/// it ever starts runs there (`taskset` execs the program: the pid stays the server's).
fn server_command(program: &std::path::Path, pin: bool) -> Command {
    let mut command = if pin {
        let mut command = Command::new("taskset");
        command.arg("-c").arg(SERVER_CPU).arg(program);
        command
    } else {
        Command::new(program)
    };
    command.env_clear();
    command
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Server {
    /// Spawns the server, waits until `ready_path` answers, and reads its idle RSS.
    async fn start(
        name: &'static str,
        command: &mut Command,
        base: String,
        ready_path: &str,
        log: bool,
    ) -> Result<Self> {
        let child = command
            // The local server exits when this pipe closes, even if the bench is killed.
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(if log { Stdio::inherit() } else { Stdio::null() })
            .kill_on_drop(true)
            .spawn()?;
        let pid = child.id().ok_or("the server exited at once")?;
        let ready = format!("{base}{ready_path}");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if reqwest::get(&ready).await.is_ok() {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("{name} did not answer {ready} within 10 s").into());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Self {
            name,
            base,
            pid,
            idle_rss_mib: rss_mib(pid)?,
            _child: child,
        })
    }
}

/// What Redis did during one `measure_redis` run; per-turn figures are over all servers'
/// answered turns.
#[derive(Default)]
struct RedisRun {
    shares: Vec<Share>,
    upstream_calls: usize,
    /// The model calls a turn makes: 2 with titles on (every turn starts a new thread,
    /// whose title the model writes).
    calls_per_turn: usize,
    /// Top-level commands from clients that are neither a server nor the bench.
    unattributed: u64,
    /// All commands per turn (INFO commandstats), and by name.
    commands: f64,
    table: String,
    /// Commands run inside scripts per turn, and script calls by name (MONITOR).
    in_scripts: f64,
    scripts: String,
    /// Redis CPU per turn, and what an idle Redis would have used over the same time.
    cpu_us: f64,
    idle_us: f64,
    /// µs spent running each command (`usec` of INFO commandstats; a script's time includes
    /// the commands it runs, which are also counted under their own names).
    usec: BTreeMap<String, u64>,
    /// Idle Redis CPU seconds per second (without MONITOR only).
    idle_rate: f64,
    wall: Duration,
}

/// One server's turns in a `measure_redis` run.
#[derive(Default)]
struct Share {
    name: &'static str,
    turns: usize,
    answered: usize,
    errors: usize,
    first_error: Option<String>,
    /// The server's local ports of its TCP connections: MONITOR names clients by them.
    ports: std::collections::BTreeSet<u16>,
    /// The server's requests to Redis (round trips) by command.
    top_level: BTreeMap<String, u64>,
    /// Send -> end of stream, sorted.
    streamed: Vec<Duration>,
    threads: Vec<String>,
}

impl Share {
    fn complete(&self) -> bool {
        self.errors == 0 && self.answered == self.turns
    }

    fn round_trips(&self) -> f64 {
        self.top_level.values().sum::<u64>() as f64 / self.answered.max(1) as f64
    }

    fn streamed(&self) -> Duration {
        percentile(&self.streamed, 50.0)
    }

    /// The round-trip target, plus one lease renewal per `renewal` of streaming.
    fn allowed_round_trips(&self, renewal: Duration) -> f64 {
        TARGET_ROUND_TRIPS + (self.streamed().as_secs_f64() / renewal.as_secs_f64()).floor()
    }
}

impl RedisRun {
    fn share(&self, name: &str) -> Option<&Share> {
        self.shares.iter().find(|s| s.name == name)
    }

    /// The commands the servers sent themselves (MONITOR runs only).
    fn requests(&self) -> std::collections::BTreeSet<String> {
        self.shares
            .iter()
            .flat_map(|share| share.top_level.keys().cloned())
            .collect()
    }

    /// Redis's time running `requests` (the servers' own commands, scripts whole) per turn:
    /// its work for the turns, without idle work or networking.
    fn command_us(&self, requests: &std::collections::BTreeSet<String>) -> f64 {
        let answered: usize = self.shares.iter().map(|s| s.answered).sum();
        let usec: u64 = requests.iter().filter_map(|name| self.usec.get(name)).sum();
        usec as f64 / answered.max(1) as f64
    }

    /// Errors and missing upstream calls, for the report.
    fn problems(&self) -> String {
        let turns: usize = self.shares.iter().map(|s| s.turns).sum();
        let mut problems = Vec::new();
        for share in &self.shares {
            if !share.complete() {
                problems.push(format!(
                    "{}: {}/{} answered, {} errors{}",
                    share.name,
                    share.answered,
                    share.turns,
                    share.errors,
                    share
                        .first_error
                        .as_ref()
                        .map_or(String::new(), |e| format!(" (first: {e})"))
                ));
            }
        }
        if self.upstream_calls != turns * self.calls_per_turn {
            problems.push(format!(
                "{} upstream calls for {turns} turns ({} each expected)",
                self.upstream_calls, self.calls_per_turn
            ));
        }
        if self.unattributed > 0 {
            problems.push(format!(
                "{} requests from clients of no server",
                self.unattributed
            ));
        }
        if problems.is_empty() {
            String::new()
        } else {
            format!("  PROBLEMS: {}", problems.join("; "))
        }
    }

    /// The MONITOR run's lines: round trips per server, then commands over all servers.
    fn report(&self, renewal: Option<Duration>) -> Result<()> {
        for share in &self.shares {
            let described: Vec<String> = share
                .top_level
                .iter()
                .map(|(name, n)| format!("{name} {:.2}", *n as f64 / share.answered.max(1) as f64))
                .collect();
            report!(
                "  {:<9} {}/{} answered; round trips per turn {:.2} [{}]{}",
                share.name,
                share.answered,
                share.turns,
                share.round_trips(),
                described.join(", "),
                renewal.map_or(String::new(), |renewal| format!(
                    "; streamed p50 {:.1} s, so <= {:.0} allowed",
                    share.streamed().as_secs_f64(),
                    share.allowed_round_trips(renewal)
                )),
            );
        }
        report!(
            "  {:<9} commands per turn {:.2} ({:.2} inside scripts); script calls per turn: {}{}",
            "both",
            self.commands,
            self.in_scripts,
            self.scripts,
            self.problems(),
        );
        report!("  {:<9} commandstats per turn: {}", "", self.table);
        if self.requests().contains("script") {
            report!(
                "  {:<9} (`script`: SCRIPT LOAD after NOSCRIPT, a script's first use in a server process, with one failed EVALSHA before it)",
                ""
            );
        }
        Ok(())
    }
}

/// The local ports of a process's TCP sockets (`/proc/<pid>/fd` against `/proc/net/tcp*`).
fn socket_ports(pid: u32) -> std::collections::BTreeSet<u16> {
    let inodes: std::collections::BTreeSet<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let link = std::fs::read_link(entry.ok()?.path()).ok()?;
            let link = link.to_str()?;
            link.strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect();
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .filter_map(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    let inode: u64 = fields.get(9)?.parse().ok()?;
                    let (_, port) = fields.get(1)?.rsplit_once(':')?;
                    let port = u16::from_str_radix(port, 16).ok()?;
                    inodes.contains(&inode).then_some(port)
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A `MONITOR` connection, read on a blocking thread.
struct Monitor {
    reader: BufReader<TcpStream>,
}

/// Commands seen by `MONITOR`, by lowercase name.
struct Seen {
    /// Sent by clients, by client port: each one a round trip.
    top_level: BTreeMap<(u16, String), u64>,
    /// Run by scripts (`[0 lua]`).
    in_scripts: BTreeMap<String, u64>,
    /// `EVALSHA` calls by script hash.
    scripts: BTreeMap<String, u64>,
}

impl Monitor {
    /// Connects and waits for `+OK`, so nothing sent afterwards is missed. A read waits at
    /// most `quiet` for the next line.
    fn start(port: u16, quiet: Duration) -> Result<Self> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(quiet))?;
        stream.write_all(b"MONITOR\r\n")?;
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if line.trim_end() != "+OK" {
            return Err(format!("MONITOR answered {line:?}").into());
        }
        Ok(Self { reader })
    }

    /// Counts commands until the line carrying `sentinel` (sent last, by the bench).
    /// Lines look like `+1700000000.123456 [0 127.0.0.1:5000] "evalsha" "…" …`.
    fn count_until(mut self, sentinel: &str) -> Result<Seen> {
        let mut seen = Seen {
            top_level: BTreeMap::new(),
            in_scripts: BTreeMap::new(),
            scripts: BTreeMap::new(),
        };
        let mut line = String::new();
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                return Err("MONITOR connection closed early".into());
            }
            if line.contains(sentinel) {
                return Ok(seen);
            }
            let Some((client, rest)) = line
                .split_once(" [")
                .and_then(|(_, rest)| rest.split_once("] "))
            else {
                continue;
            };
            // Arguments are quoted with inner quotes escaped; the command and a script hash
            // hold none.
            let mut quoted = rest.split('"').skip(1).step_by(2);
            let Some(command) = quoted.next() else {
                continue;
            };
            if command.eq_ignore_ascii_case("evalsha")
                && !client.ends_with(" lua")
                && let Some(sha) = quoted.next()
            {
                *seen.scripts.entry(sha.to_ascii_lowercase()).or_default() += 1;
            }
            let command = command.to_ascii_lowercase();
            if client.ends_with(" lua") {
                *seen.in_scripts.entry(command).or_default() += 1;
            } else {
                // `<db> <ip>:<port>`; a client on a Unix socket counts as port 0.
                let port = client
                    .rsplit_once(':')
                    .and_then(|(_, port)| port.parse().ok())
                    .unwrap_or(0);
                *seen.top_level.entry((port, command)).or_default() += 1;
            }
        }
    }
}

/// The store's Lua scripts by `EVALSHA` hash, named after their files. Read at run time from
/// the source tree, so a moved folder only costs the names (hashes are shown instead). Scripts
/// may be loaded with a library in front (see store/scripts.rs), so each file is hashed alone
/// and with each library.
fn script_names() -> BTreeMap<String, String> {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crates/buddahbot/src/store/scripts"
    );
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    let libraries: Vec<String> = ["", "limits.lua", "stream.lua"]
        .iter()
        .map(|lib| {
            if lib.is_empty() {
                String::new()
            } else {
                std::fs::read_to_string(format!("{dir}/{lib}")).unwrap_or_default()
            }
        })
        .collect();
    entries
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let name = path.file_stem()?.to_str()?.to_owned();
            let source = std::fs::read_to_string(&path).ok()?;
            Some(
                libraries
                    .iter()
                    .map(|library| {
                        let hash = redis::Script::new(&format!("{library}{source}"))
                            .get_hash()
                            .to_owned();
                        (hash, name.clone())
                    })
                    .collect::<Vec<_>>(),
            )
        })
        .flatten()
        .collect()
}

/// `cmdstat_<name>:calls=N,…` lines of `INFO commandstats`, as name -> calls.
fn command_calls(info: &str) -> BTreeMap<String, u64> {
    info.lines()
        .filter_map(|line| {
            let (name, fields) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = fields.split(',').find_map(|f| f.strip_prefix("calls="))?;
            Some((name.to_owned(), calls.parse().ok()?))
        })
        .collect()
}

/// `cmdstat_<name>:…,usec=N,…` lines of `INFO commandstats`, as name -> µs spent running it.
fn command_usec(info: &str) -> BTreeMap<String, u64> {
    info.lines()
        .filter_map(|line| {
            let (name, fields) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let usec = fields.split(',').find_map(|f| f.strip_prefix("usec="))?;
            Some((name.to_owned(), usec.parse().ok()?))
        })
        .collect()
}
