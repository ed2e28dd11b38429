//! `cargo bench --bench chat`: the chat endpoint's latency and Redis cost against the design
//! targets, all on loopback.
//!
//! Three targets answer the same streamed chat request:
//! - `direct`: the mock upstream itself (16 tokens, no delays), the baseline;
//! - `local`: `routes::local` served in this process with `TCP_NODELAY`, in front of the mock;
//! - `function`: the built `chat` function binary, where `vercel_runtime::run` owns the socket
//!   (no `TCP_NODELAY`), in front of the same mock.
//!
//! Both proxies run with auth (a minted HS256 token), rate limits (set too high to refuse)
//! and persistence (a private `redis-server`) on, and every proxied request starts a new thread with a fresh message, the
//! heaviest turn (create thread, store the user message, store the reply); a unique user per
//! run keeps idempotent replays out.
//!
//! Measures, per scenario (sequential, concurrency 64, open-loop fixed rate): TTFT (send to the
//! first body bytes; the proxy forwards the upstream's first event as the head of its body, so
//! the first bytes are the first model output on both paths) and total (send to the end of a
//! body ending in `[DONE]`). Then Redis commands and round trips per turn, and a Nagle check on
//! one keep-alive connection.
//!
//! Counts come from the environment: `BENCH_QUICK=1` divides them by 10 for a smoke run;
//! `BENCH_WARMUP`, `BENCH_SEQUENTIAL`, `BENCH_CONCURRENT`, `BENCH_CONCURRENCY`, `BENCH_RATE`
//! (requests per second), `BENCH_RATE_SECS`, `BENCH_REDIS_TURNS` and `BENCH_NAGLE` set each;
//! `BENCH_LOG=1` shows the in-process server's logs on stderr; `BENCH_RATE_LIMITS=off` turns
//! the rate limiter off to see its share.

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
    app::App, auth::jwt::Hs256, config::Config, domain::UserId, local_redis::RedisServer, routes,
};
use mock_upstream::{MockConfig, MockUpstream};
use reqwest::{Client, StatusCode};
use serde_json::json;
use tokio::process::{Child, Command};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Result<T, E = BoxError> = std::result::Result<T, E>;

const UPSTREAM_KEY: &str = "sk-bench";
const AUTH_SECRET: &str = "bench-secret-not-for-production-0123456789";
/// What the proxy asks the upstream for when the request names no model.
const MODEL: &str = "Hermes-4-70B";
const TOKENS: usize = 16;
/// No scenario issues new requests after this long, so a stalling target (~40 ms a request)
/// cannot stretch the run past a couple of minutes; the report shows the count reached.
const SCENARIO_BUDGET: Duration = Duration::from_secs(30);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A mean TTFT (or total) this high on a keep-alive connection means a delayed-ACK stall
/// (~40 ms each).
const NAGLE_SUSPECT: Duration = Duration::from_millis(30);
/// Design targets for the proxy overhead at the fixed rate.
const TARGET_P50_MS: f64 = 0.5;
const TARGET_P99_MS: f64 = 2.0;
const TARGET_ROUND_TRIPS: f64 = 3.0;
/// Rate limits high enough that one user's whole run (about 25 000 turns) stays under them.
/// Not much higher: above ~5e8 per minute the limiter's per-request interval (period / limit)
/// is lost in the float precision of a millisecond timestamp and its script fails with
/// `SET … PX 0` on every request.
const NEVER_LIMITED: &str = "1000000";
/// Threads read back to check that each turn stored exactly two messages.
const THREAD_SAMPLE: usize = 10;

/// Every request's message differs, across scenarios and targets.
static NEXT_MESSAGE: AtomicU64 = AtomicU64::new(0);

/// The report goes to stdout; progress goes to stderr so the report can be piped alone.
macro_rules! report {
    ($($arg:tt)*) => {
        writeln!(std::io::stdout().lock(), $($arg)*)?
    };
}

macro_rules! progress {
    ($($arg:tt)*) => {
        writeln!(std::io::stderr().lock(), $($arg)*)?
    };
}

#[tokio::main]
async fn main() -> Result<()> {
    if std::env::var_os("BENCH_LOG").is_some() {
        // The in-process server's logs (stderr, `RUST_LOG`), to see why requests fail.
        buddahbot::telemetry::init();
    }
    let counts = Counts::from_env();
    let run = uuid::Uuid::new_v4().simple().to_string();
    let bench = Bench::start(&run).await?;
    let client = Client::builder()
        .tcp_nodelay(true)
        .http1_only()
        .timeout(REQUEST_TIMEOUT)
        .pool_idle_timeout(Duration::from_secs(120))
        .build()?;
    let targets = bench.targets();
    let [_, local, _] = &targets;

    report!(
        "chat bench: {} cpus, redis {}, mock {TOKENS} tokens without delays, rate limits {}, run {}",
        std::thread::available_parallelism().map_or(0, usize::from),
        bench.redis_version().await?,
        if bench.limited {
            "on (never refusing)"
        } else {
            "OFF"
        },
        &run[..8],
    );
    let rtt = bench.redis_rtt(200).await?;
    report!(
        "redis round trip from this process (PING, sequential): p50 {} ms, p99 {} ms",
        ms(percentile(&rtt, 50.0)),
        ms(percentile(&rtt, 99.0)),
    );
    report!("TTFT = send -> first body bytes; total = send -> end of a body ending in [DONE]; ms");
    report!(
        "overhead = percentile(proxied) - percentile(direct): a difference of percentiles, not a percentile of differences"
    );

    let mut rate_overheads = Vec::new();
    for scenario in counts.scenarios() {
        report!("");
        report!("== {} ==", scenario.title());
        report!(
            "{:<9} {:>5} {:>3} | {:>7} {:>7} {:>7} {:>7} | {:>7} {:>7} {:>7} {:>7} | {:>6}",
            "target",
            "n",
            "err",
            "ttft50",
            "ttft90",
            "ttft99",
            "max",
            "tot50",
            "tot90",
            "tot99",
            "max",
            "req/s"
        );
        let mut results = Vec::new();
        for target in &targets {
            progress!("{}: {} warm-up", scenario.title(), target.name);
            scenario
                .run(&client, target, counts.warmup(&scenario))
                .await?;
            progress!("{}: {} measuring", scenario.title(), target.name);
            let stats = scenario.run(&client, target, scenario.requests()).await?;
            report!("{}", stats.row(target.name));
            if stats.answered() < scenario.requests() {
                report!(
                    "          stopped after the {} s budget: {} of {} requests",
                    SCENARIO_BUDGET.as_secs(),
                    stats.answered(),
                    scenario.requests()
                );
            }
            if let Some(error) = &stats.first_error {
                report!("          first error: {error}");
            }
            results.push((target.name, stats));
        }
        if let Scenario::Rate { .. } = scenario {
            for (name, stats) in &results {
                report!(
                    "          {name}: send lag behind schedule p50={} p99={} max={}",
                    ms(percentile(&stats.lag, 50.0)),
                    ms(percentile(&stats.lag, 99.0)),
                    ms(percentile(&stats.lag, 100.0)),
                );
            }
        }
        if let Some((_, direct)) = results.first() {
            for (name, proxied) in results.iter().skip(1) {
                let (p50, p99) = overhead(direct, proxied);
                report!(
                    "          {name} overhead (TTFT): p50={p50:+.3} ms p99={p99:+.3} ms; total: p50={:+.3} ms p99={:+.3} ms",
                    diff_ms(&proxied.total, &direct.total, 50.0),
                    diff_ms(&proxied.total, &direct.total, 99.0),
                );
                if let Scenario::Rate { .. } = scenario {
                    rate_overheads.push((*name, p50, p99, proxied.errors));
                }
            }
        }
    }

    report!("");
    report!(
        "== Redis per turn ({} sequential turns via local) ==",
        counts.redis_turns
    );
    let redis_ok = bench
        .redis_per_turn(&client, local, counts.redis_turns)
        .await?;

    report!("");
    report!(
        "== Nagle check ({} sequential requests on a keep-alive connection) ==",
        counts.nagle
    );
    let nagle_client = Client::builder()
        .tcp_nodelay(true)
        .http1_only()
        .timeout(REQUEST_TIMEOUT)
        .pool_max_idle_per_host(1)
        .build()?;
    let mut stalls = Vec::new();
    for target in &targets {
        let stats = Scenario::Sequential {
            requests: counts.nagle,
        }
        .run(&nagle_client, target, counts.nagle)
        .await?;
        let (mean_ttft, median_total) = (mean(&stats.ttft), percentile(&stats.total, 50.0));
        // A stall after the first write delays the rest of the body, not the first byte. The
        // median, not the mean, judges the total: a fresh connection starts in quick-ACK mode,
        // so its first few requests do not stall and would dilute a mean.
        let flag = if mean_ttft >= NAGLE_SUSPECT {
            "NAGLE STALL? (before the first byte)"
        } else if median_total >= NAGLE_SUSPECT {
            "NAGLE STALL? (after the first chunk)"
        } else {
            ""
        };
        report!(
            "{:<9} mean TTFT {} ms, mean total {} ms, median total {} ms, errors {}{}{}",
            target.name,
            ms(mean_ttft),
            ms(mean(&stats.total)),
            ms(median_total),
            stats.errors,
            if flag.is_empty() { "" } else { "  " },
            flag,
        );
        if !flag.is_empty() {
            stalls.push(format!("{}: {flag}", target.name));
        }
    }

    report!("");
    report!(
        "== Summary (targets: overhead p50 <= {TARGET_P50_MS} ms, p99 <= {TARGET_P99_MS} ms; redis round trips <= {TARGET_ROUND_TRIPS}) =="
    );
    report!(
        "redis: {}",
        if redis_ok {
            "ok"
        } else {
            "OVER TARGET or inconsistent"
        }
    );
    report!(
        "nagle: {}",
        if stalls.is_empty() {
            "no stall".to_owned()
        } else {
            stalls.join("; ")
        }
    );
    for (name, p50, p99, errors) in rate_overheads {
        let verdict = if p50 <= TARGET_P50_MS && p99 <= TARGET_P99_MS && errors == 0 {
            "ok"
        } else {
            "MISSES TARGET"
        };
        report!(
            "{name:<9} overhead p50={p50:.3} ms p99={p99:.3} ms @{}rps, errors {errors}: {verdict}",
            counts.rate
        );
    }
    Ok(())
}

/// How many requests each part sends.
struct Counts {
    warmup: usize,
    sequential: usize,
    concurrent: usize,
    concurrency: usize,
    rate: u32,
    rate_secs: u32,
    redis_turns: usize,
    nagle: usize,
}

impl Counts {
    fn from_env() -> Self {
        let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| v == "1");
        let scaled = |name: &str, full: usize| {
            env_number(name).unwrap_or(if quick { (full / 10).max(1) } else { full })
        };
        Self {
            warmup: scaled("BENCH_WARMUP", 200),
            sequential: scaled("BENCH_SEQUENTIAL", 2000),
            concurrent: scaled("BENCH_CONCURRENT", 4000),
            concurrency: env_number("BENCH_CONCURRENCY").unwrap_or(64).max(1),
            rate: env_number("BENCH_RATE").unwrap_or(500).max(1),
            // The rate stays the design's; a quick run only shortens it.
            rate_secs: env_number("BENCH_RATE_SECS").unwrap_or(if quick { 1 } else { 10 }),
            redis_turns: scaled("BENCH_REDIS_TURNS", 100),
            nagle: env_number("BENCH_NAGLE").unwrap_or(50).max(1),
        }
    }

    fn scenarios(&self) -> [Scenario; 3] {
        [
            Scenario::Sequential {
                requests: self.sequential,
            },
            Scenario::Concurrent {
                requests: self.concurrent,
                tasks: self.concurrency,
            },
            Scenario::Rate {
                per_sec: self.rate,
                secs: self.rate_secs,
            },
        ]
    }

    /// Warm-up requests before a scenario: at the rate, they take the same share of a second.
    fn warmup(&self, scenario: &Scenario) -> usize {
        match scenario {
            Scenario::Rate { .. } => self.warmup.min(self.rate as usize),
            _ => self.warmup,
        }
    }
}

fn env_number<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok()?.trim().parse().ok()
}

/// How requests are issued.
#[derive(Clone, Copy)]
enum Scenario {
    /// One at a time.
    Sequential { requests: usize },
    /// `tasks` tasks pulling request numbers from a shared counter.
    Concurrent { requests: usize, tasks: usize },
    /// Open loop: request `i` is sent at `start + i / per_sec` whether or not earlier ones
    /// have answered. Latency is measured from the actual send; how far sends fell behind
    /// their slots is reported as the send lag.
    Rate { per_sec: u32, secs: u32 },
}

impl Scenario {
    fn title(&self) -> String {
        match self {
            Self::Sequential { .. } => "sequential (concurrency 1)".to_owned(),
            Self::Concurrent { tasks, .. } => format!("concurrency {tasks}"),
            Self::Rate { per_sec, secs } => {
                format!("open loop {per_sec} req/s for {secs} s")
            }
        }
    }

    fn requests(&self) -> usize {
        match *self {
            Self::Sequential { requests } | Self::Concurrent { requests, .. } => requests,
            Self::Rate { per_sec, secs } => per_sec as usize * secs as usize,
        }
    }

    async fn run(&self, client: &Client, target: &Target, requests: usize) -> Result<Stats> {
        let started = Instant::now();
        let outcomes = match *self {
            Self::Sequential { .. } => {
                let mut outcomes = Vec::with_capacity(requests);
                for _ in 0..requests {
                    if started.elapsed() > SCENARIO_BUDGET {
                        break;
                    }
                    outcomes.push(one(client, target, None).await);
                }
                outcomes
            }
            Self::Concurrent { tasks, .. } => {
                let claimed = Arc::new(AtomicUsize::new(0));
                let workers: Vec<_> = (0..tasks)
                    .map(|_| {
                        let (client, target, claimed) =
                            (client.clone(), target.clone(), Arc::clone(&claimed));
                        tokio::spawn(async move {
                            let mut outcomes = Vec::new();
                            while claimed.fetch_add(1, Ordering::Relaxed) < requests
                                && started.elapsed() <= SCENARIO_BUDGET
                            {
                                outcomes.push(one(&client, &target, None).await);
                            }
                            outcomes
                        })
                    })
                    .collect();
                let mut outcomes = Vec::with_capacity(requests);
                for worker in workers {
                    outcomes.extend(worker.await?);
                }
                outcomes
            }
            Self::Rate { per_sec, .. } => {
                let period = Duration::from_secs(1) / per_sec;
                let start = Instant::now() + Duration::from_millis(5);
                let mut pending = Vec::with_capacity(requests);
                for i in 0..requests {
                    let slot = start + period * u32::try_from(i)?;
                    tokio::time::sleep_until(slot.into()).await;
                    let (client, target) = (client.clone(), target.clone());
                    pending.push(tokio::spawn(async move {
                        one(&client, &target, Some(slot)).await
                    }));
                }
                let mut outcomes = Vec::with_capacity(requests);
                for request in pending {
                    outcomes.push(request.await?);
                }
                outcomes
            }
        };
        Ok(Stats::from(outcomes, started.elapsed()))
    }
}

/// Where requests go and how they are shaped.
#[derive(Clone)]
struct Target {
    name: &'static str,
    url: String,
    bearer: String,
    /// The mock is asked the way the proxy asks it; the proxies get our own chat body.
    direct: bool,
}

impl Target {
    fn body(&self, text: &str) -> serde_json::Value {
        let messages = json!([{ "role": "user", "content": text }]);
        if self.direct {
            json!({
                "model": MODEL,
                "messages": messages,
                "stream": true,
                "stream_options": { "include_usage": true },
            })
        } else {
            // No threadId: every turn creates a thread, the heaviest turn.
            json!({ "messages": messages })
        }
    }
}

/// One answered request.
struct Sample {
    ttft: Duration,
    total: Duration,
    /// How long after its scheduled slot the request left (open loop only).
    lag: Option<Duration>,
    thread: Option<String>,
}

/// Sends one chat request and reads its stream to the end.
async fn one(client: &Client, target: &Target, slot: Option<Instant>) -> Result<Sample, String> {
    let n = NEXT_MESSAGE.fetch_add(1, Ordering::Relaxed);
    let text = format!("Bench message {n}: how much does the proxy add?");
    let request = client
        .post(&target.url)
        .bearer_auth(&target.bearer)
        .json(&target.body(&text))
        .build()
        .map_err(|e| e.to_string())?;
    let sent = Instant::now();
    let lag = slot.map(|slot| sent.saturating_duration_since(slot));
    let mut response = client
        .execute(request)
        .await
        .map_err(|e| format!("send: {e}"))?;
    if response.status() != StatusCode::OK {
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        return Err(format!("status {status}: {body:.200}"));
    }
    let thread = response
        .headers()
        .get("x-thread-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut ttft = None;
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| format!("body: {e}"))? {
        if ttft.is_none() && !chunk.is_empty() {
            ttft = Some(sent.elapsed());
        }
        body.extend_from_slice(&chunk);
    }
    let total = sent.elapsed();
    if !body.trim_ascii_end().ends_with(b"data: [DONE]") {
        let tail = String::from_utf8_lossy(&body[body.len().saturating_sub(200)..]).into_owned();
        return Err(format!("no [DONE] at the end: …{tail}"));
    }
    Ok(Sample {
        ttft: ttft.unwrap_or(total),
        total,
        lag,
        thread,
    })
}

/// The measurements of one scenario on one target, sorted.
struct Stats {
    ttft: Vec<Duration>,
    total: Vec<Duration>,
    lag: Vec<Duration>,
    threads: Vec<String>,
    errors: usize,
    first_error: Option<String>,
    wall: Duration,
}

impl Stats {
    fn from(outcomes: Vec<Result<Sample, String>>, wall: Duration) -> Self {
        let mut stats = Self {
            ttft: Vec::with_capacity(outcomes.len()),
            total: Vec::with_capacity(outcomes.len()),
            lag: Vec::new(),
            threads: Vec::new(),
            errors: 0,
            first_error: None,
            wall,
        };
        for outcome in outcomes {
            match outcome {
                Ok(sample) => {
                    stats.ttft.push(sample.ttft);
                    stats.total.push(sample.total);
                    stats.lag.extend(sample.lag);
                    stats.threads.extend(sample.thread);
                }
                Err(error) => {
                    stats.errors += 1;
                    stats.first_error.get_or_insert(error);
                }
            }
        }
        stats.ttft.sort_unstable();
        stats.total.sort_unstable();
        stats.lag.sort_unstable();
        stats
    }

    fn answered(&self) -> usize {
        self.ttft.len() + self.errors
    }

    fn row(&self, name: &str) -> String {
        let p = |v: &[Duration], q: f64| ms(percentile(v, q));
        let answered = self.answered();
        format!(
            "{name:<9} {answered:>5} {:>3} | {:>7} {:>7} {:>7} {:>7} | {:>7} {:>7} {:>7} {:>7} | {:>6.0}",
            self.errors,
            p(&self.ttft, 50.0),
            p(&self.ttft, 90.0),
            p(&self.ttft, 99.0),
            p(&self.ttft, 100.0),
            p(&self.total, 50.0),
            p(&self.total, 90.0),
            p(&self.total, 99.0),
            p(&self.total, 100.0),
            answered as f64 / self.wall.as_secs_f64().max(f64::EPSILON),
        )
    }
}

/// Nearest-rank percentile of sorted samples; zero without samples.
fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
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

/// TTFT overhead at p50 and p99, in ms.
fn overhead(direct: &Stats, proxied: &Stats) -> (f64, f64) {
    (
        diff_ms(&proxied.ttft, &direct.ttft, 50.0),
        diff_ms(&proxied.ttft, &direct.ttft, 99.0),
    )
}

/// Everything the targets need, alive for the whole run.
struct Bench {
    redis: RedisServer,
    mock: MockUpstream,
    local: String,
    function: String,
    token: String,
    limited: bool,
    _function_process: Child,
    _server: tokio::task::JoinHandle<()>,
}

impl Bench {
    async fn start(run: &str) -> Result<Self> {
        let redis = RedisServer::start().await?;
        let mock = MockUpstream::start(
            MockConfig::default()
                .with_api_key(UPSTREAM_KEY)
                .with_tokens(TOKENS),
        )
        .await?;
        // `BENCH_RATE_LIMITS=off` measures the turn without the limiter's round trip.
        let limited = !std::env::var("BENCH_RATE_LIMITS").is_ok_and(|v| v == "off");
        let limit = if limited { NEVER_LIMITED } else { "0" };
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
            // The function logs to /dev/null here; keep it from formatting lines for nothing.
            ("RUST_LOG", "warn".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let config = Config::from_vars(vars.clone())?;
        let user = UserId::parse(&format!("github:bench{run}"))?;
        let token = Hs256::new(&config.auth.secrets).mint(&user, 3600)?;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let local = format!("http://{}", listener.local_addr()?);
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let router = routes::local(App::new(config)?);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });

        let (function_process, function) = start_function(vars).await?;
        Ok(Self {
            redis,
            mock,
            local,
            function,
            token,
            limited,
            _function_process: function_process,
            _server: server,
        })
    }

    fn targets(&self) -> [Target; 3] {
        let proxy = |name, base: &str| Target {
            name,
            url: format!("{base}/api/chat"),
            bearer: self.token.clone(),
            direct: false,
        };
        [
            Target {
                name: "direct",
                url: format!("{}/chat/completions", self.mock.base_url()),
                bearer: UPSTREAM_KEY.to_owned(),
                direct: true,
            },
            proxy("local", &self.local),
            proxy("function", &self.function),
        ]
    }

    async fn redis_conn(&self) -> Result<redis::aio::MultiplexedConnection> {
        Ok(redis::Client::open(self.redis.url())?
            .get_multiplexed_async_connection()
            .await?)
    }

    /// Sequential `PING`s on a multiplexed connection, as the app's store talks to Redis:
    /// the floor under each of a turn's round trips.
    async fn redis_rtt(&self, pings: usize) -> Result<Vec<Duration>> {
        let mut conn = self.redis_conn().await?;
        let mut rtt = Vec::with_capacity(pings);
        for _ in 0..pings {
            let sent = Instant::now();
            let _: String = redis::cmd("PING").query_async(&mut conn).await?;
            rtt.push(sent.elapsed());
        }
        rtt.sort_unstable();
        Ok(rtt)
    }

    async fn redis_version(&self) -> Result<String> {
        let info: String = redis::cmd("INFO")
            .arg("server")
            .query_async(&mut self.redis_conn().await?)
            .await?;
        Ok(info_field(&info, "redis_version").unwrap_or("?").to_owned())
    }

    /// Runs `turns` sequential turns through `target` while counting what Redis executes:
    /// `INFO commandstats` before and after (which also counts the commands scripts run), and
    /// `MONITOR`, which tells the client's own requests (round trips) from commands run
    /// inside scripts. Returns whether the turn met the round-trip target and stored its
    /// messages.
    async fn redis_per_turn(&self, client: &Client, target: &Target, turns: usize) -> Result<bool> {
        let mut conn = self.redis_conn().await?;
        let sentinel = format!("bench-monitor-end-{}", uuid::Uuid::new_v4().simple());
        let before: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut conn)
            .await?;
        let monitor = Monitor::start(self.redis.port())?;
        let reader = {
            let sentinel = sentinel.clone();
            tokio::task::spawn_blocking(move || monitor.count_until(&sentinel))
        };
        let calls_before = self.mock.calls();
        let stats = Scenario::Sequential { requests: turns }
            .run(client, target, turns)
            .await?;
        let upstream_calls = self.mock.calls().saturating_sub(calls_before);
        let _: String = redis::cmd("ECHO")
            .arg(&sentinel)
            .query_async(&mut conn)
            .await?;
        let seen = reader.await??;
        let after: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut conn)
            .await?;

        let done = stats.ttft.len();
        report!(
            "{done} turns answered, {} errors, {upstream_calls} upstream calls",
            stats.errors
        );
        let per_turn = |calls: u64| calls as f64 / done.max(1) as f64;
        // The bench's own commands on its own connections.
        let ours = ["info", "monitor", "echo"];
        let (before, after) = (command_calls(&before), command_calls(&after));
        let mut all = 0;
        report!("INFO commandstats (calls per turn; script-internal commands included):");
        for (name, calls) in &after {
            let delta = calls.saturating_sub(before.get(name).copied().unwrap_or(0));
            if delta > 0 && !ours.contains(&name.as_str()) {
                all += delta;
                report!("  {name:<12} {:>6.2}", per_turn(delta));
            }
        }
        report!("  {:<12} {:>6.2}", "all", per_turn(all));
        let scripts = ["evalsha", "eval", "evalsha_ro", "eval_ro", "fcall"]
            .iter()
            .map(|name| {
                let calls = |stats: &BTreeMap<String, u64>| stats.get(*name).copied().unwrap_or(0);
                calls(&after).saturating_sub(calls(&before))
            })
            .sum::<u64>();
        report!(
            "Redis 7 counts commands run inside a script under their own names, so the table holds \
             both; a script call is one round trip however much it runs. Script calls per turn: {:.2}.",
            per_turn(scripts)
        );

        let top_level: u64 = seen.top_level.values().sum();
        let described: Vec<String> = seen
            .top_level
            .iter()
            .map(|(name, n)| format!("{name} {:.2}", per_turn(*n)))
            .collect();
        let round_trips = per_turn(top_level);
        report!(
            "MONITOR: round trips (client requests) per turn = {round_trips:.2} [{}]; commands inside scripts per turn = {:.2}",
            described.join(", "),
            per_turn(seen.in_scripts.values().sum()),
        );
        let names = script_names();
        let by_script: Vec<String> = seen
            .scripts
            .iter()
            .map(|(sha, n)| {
                let name = names
                    .get(sha)
                    .map_or(&sha[..sha.len().min(12)], String::as_str);
                format!("{name} {:.2}", per_turn(*n))
            })
            .collect();
        report!("scripts called per turn: {}", by_script.join(", "));

        let mut complete = 0;
        let sample: Vec<&String> = stats.threads.iter().take(THREAD_SAMPLE).collect();
        for thread in &sample {
            let page: serde_json::Value = client
                .get(format!("{}/api/threads/{thread}", self.local))
                .bearer_auth(&self.token)
                .send()
                .await?
                .json()
                .await?;
            let roles: Vec<&str> = page["messages"]
                .as_array()
                .map(|m| m.iter().filter_map(|m| m["role"].as_str()).collect())
                .unwrap_or_default();
            if roles == ["user", "assistant"] {
                complete += 1;
            }
        }
        report!(
            "stored threads checked: {complete}/{} hold exactly [user, assistant]",
            sample.len()
        );
        Ok(stats.errors == 0
            && upstream_calls == turns
            && round_trips <= TARGET_ROUND_TRIPS
            && complete == sample.len())
    }
}

/// Starts the `chat` function binary the way `vercel dev` does and waits until it answers.
async fn start_function(vars: Vec<(String, String)>) -> Result<(Child, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_chat"))
        .env_clear()
        .envs(vars)
        .env("VERCEL_DEV_PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let base = format!("http://127.0.0.1:{port}");
    let ping = format!("{base}/_vercel/ping");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if reqwest::get(&ping)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok((child, base));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Err("the chat function did not start listening within 10 s".into())
}

/// A `MONITOR` connection, read on a blocking thread.
struct Monitor {
    reader: BufReader<TcpStream>,
}

/// Commands seen by `MONITOR`, by lowercase name.
struct Seen {
    /// Sent by clients: each one a round trip.
    top_level: BTreeMap<String, u64>,
    /// Run by scripts (`[0 lua]`).
    in_scripts: BTreeMap<String, u64>,
    /// `EVALSHA` calls by script hash.
    scripts: BTreeMap<String, u64>,
}

impl Monitor {
    /// Connects and waits for `+OK`, so nothing sent afterwards is missed.
    fn start(port: u16) -> Result<Self> {
        let mut stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
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
            let into = if client.ends_with(" lua") {
                &mut seen.in_scripts
            } else {
                &mut seen.top_level
            };
            *into.entry(command.to_ascii_lowercase()).or_default() += 1;
        }
    }
}

/// The store's Lua scripts by `EVALSHA` hash, named after their files. Read at run time from
/// the source tree, so a moved folder only costs the names (hashes are shown instead). Scripts
/// that rate-limit are loaded with the `limits.lua` library in front, so each file is hashed
/// both alone and with it.
fn script_names() -> BTreeMap<String, String> {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crates/buddahbot/src/store/scripts"
    );
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    // Scripts run alone or with one of the libraries prepended (see store/scripts.rs).
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

fn info_field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}
