//! The chaos suite: the service under the faults a production deployment meets (Redis killed
//! and restarted, Redis frozen, a misbehaving model, a thousand slow streams, clients that hang
//! up), each test ending in an exact ledger of what was asked, answered and stored. Each test
//! prints its ledger (`cargo test --test api chaos -- --nocapture`); README's "Reliability"
//! section quotes them. The whole file runs in well under a minute on two cores.

use std::{
    collections::HashMap,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use buddahbot::local_redis::RedisServer;
use futures_util::{StreamExt, stream};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    Frozen, REDIS_TIMEOUT_MS, TestApp, eventually,
    functions::LoggedFunction,
    random_user, set_var,
    sse::{Reader, read_chat},
    test_vars_with_upstream,
    turns::{slow, thread_turn},
};

/// How long past the response timeout a 503 may take (scheduling on a loaded machine).
const ANSWER_MARGIN: Duration = Duration::from_millis(1_500);

/// How one attempt at a chat turn ended, as its client saw it.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    /// The stream ended with `[DONE]` and no error event: the client was told the reply is
    /// stored.
    Done { text: String },
    /// The stream started, then ended with an error event.
    Broke { code: String },
    /// No stream: an error status.
    Refused { status: StatusCode, code: String },
}

impl Outcome {
    fn is_done(&self) -> bool {
        matches!(self, Self::Done { .. })
    }

    /// A short name, for the ledgers.
    fn label(&self) -> String {
        match self {
            Self::Done { .. } => "done".to_owned(),
            Self::Broke { code } => format!("stream error {code}"),
            Self::Refused { status, code } => format!("{} {code}", status.as_u16()),
        }
    }
}

/// Sends one chat request to `url` and reads its answer to the end.
async fn attempt(client: &reqwest::Client, url: &str, token: &str, body: &Value) -> Outcome {
    let resp = match client.post(url).bearer_auth(token).json(body).send().await {
        Ok(resp) => resp,
        Err(err) => {
            return Outcome::Refused {
                status: StatusCode::BAD_GATEWAY,
                code: format!("client: {err}"),
            };
        }
    };
    let reply = read_chat(resp).await;
    if reply.status != StatusCode::OK {
        return Outcome::Refused {
            status: reply.status,
            code: reply.json["error"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        };
    }
    if let Some(error) = reply.error_event() {
        return Outcome::Broke {
            code: error["error"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        };
    }
    if reply.last_data() == Some("[DONE]") {
        Outcome::Done { text: reply.text() }
    } else {
        Outcome::Broke {
            code: "no [DONE]".to_owned(),
        }
    }
}

/// A thread's stored messages (first page), through the API at `base`.
async fn stored(client: &reqwest::Client, base: &str, token: &str, thread: &str) -> Vec<Value> {
    let page: Value = client
        .get(format!("{base}/api/threads/{thread}?limit=100"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["messages"].as_array().cloned().unwrap_or_default()
}

/// Asserts that `thread` holds exactly its user message `message_id` and one reply, whose
/// text is `text`.
async fn assert_stored_once(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    thread: &str,
    message_id: &str,
    text: &str,
) {
    let messages = stored(client, base, token, thread).await;
    let roles: Vec<&str> = messages
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant"], "thread {thread}");
    assert_eq!(messages[0]["id"], message_id, "thread {thread}");
    assert_eq!(messages[1]["content"], text, "thread {thread}");
}

/// The threads of the token's user that show a generation (first 100).
async fn streaming_threads(client: &reqwest::Client, base: &str, token: &str) -> Vec<String> {
    let list: Value = client
        .get(format!("{base}/api/threads?limit=100"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list["threads"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["status"] == "streaming")
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Retries a turn (same body, so the same message id) until its client gets `[DONE]`, for at
/// most `budget`; how many attempts it took and how many were refused 409.
async fn retry_until_done(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    body: &Value,
    budget: Duration,
) -> (Outcome, usize, usize) {
    let deadline = Instant::now() + budget;
    let (mut attempts, mut conflicts) = (0, 0);
    loop {
        attempts += 1;
        let outcome = attempt(client, url, token, body).await;
        if matches!(&outcome, Outcome::Refused { status, .. } if *status == StatusCode::CONFLICT) {
            conflicts += 1;
        }
        if outcome.is_done() || Instant::now() >= deadline {
            return (outcome, attempts, conflicts);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_under_streaming_turns_loses_no_acknowledged_turn() {
    // Arrange: a durable Redis (AOF, fsync always), a short lease, 24 threads.
    const TURNS: usize = 24;
    const LEASE: Duration = Duration::from_secs(3);
    let redis = RedisServer::start_durable().await.unwrap();
    let mut app = TestApp::spawn_on(redis, |_| {}, |c| c.chat.generation_lease = LEASE).await;
    let token = app.token_for(&random_user());
    let mut threads = Vec::new();
    for i in 0..TURNS {
        threads.push(app.new_thread_id(&token, &format!("killed {i}")).await);
    }
    let url = app.url("/api/chat");
    let client = reqwest::Client::new();
    let bodies: Vec<Value> = (0..TURNS)
        .map(|i| {
            // 2.0–4.3 s of reply each: some end during the outage, most after it.
            let text = slow(20 + i, 100, &format!("turn {i}"));
            thread_turn(&threads[i], &format!("m{i}"), &text)
        })
        .collect();

    // Act: the turns start; Redis is killed 600 ms in and restarted 1.5 s later.
    let started = Instant::now();
    let turns: Vec<_> = bodies
        .iter()
        .map(|body| {
            let (client, url, token, body) =
                (client.clone(), url.clone(), token.clone(), body.clone());
            tokio::spawn(async move { attempt(&client, &url, &token, &body).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(600)).await;
    app.redis.stop().await;
    let killed_at = started.elapsed();
    let mut probes = Vec::new();
    let outage_end = Instant::now() + Duration::from_millis(1_500);
    let mut n = 0;
    while Instant::now() < outage_end {
        n += 1;
        let asked = Instant::now();
        let list = app
            .client
            .get(app.url("/api/threads"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        probes.push((list.status(), asked.elapsed()));
        let asked = Instant::now();
        let turn = attempt(
            &client,
            &url,
            &token,
            &thread_turn(&threads[0], &format!("probe{n}"), "during the outage"),
        )
        .await;
        let status = match turn {
            Outcome::Refused { status, .. } => status,
            _ => StatusCode::OK,
        };
        probes.push((status, asked.elapsed()));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let restarting = Instant::now();
    app.redis.restart().await.unwrap();
    let restarted_at = started.elapsed();
    let recovered = eventually(Duration::from_secs(10), || async {
        let (status, _) = app.get("/api/threads", &token).await;
        (status == StatusCode::OK).then_some(())
    })
    .await;
    let recovery = restarting.elapsed();
    let mut outcomes = Vec::new();
    for turn in turns {
        outcomes.push(turn.await.unwrap());
    }
    // The turns whose reply could not be stored are retried, as their clients would.
    let retried = futures_util::future::join_all(
        outcomes
            .iter()
            .enumerate()
            .filter(|(_, outcome)| !outcome.is_done())
            .map(|(i, _)| {
                let (client, url, token, body) = (&client, &url, &token, &bodies[i]);
                async move {
                    let (last, attempts, conflicts) =
                        retry_until_done(client, url, token, body, LEASE + Duration::from_secs(5))
                            .await;
                    (i, last, attempts, conflicts)
                }
            }),
    )
    .await;
    let free_after_lease = eventually(LEASE + Duration::from_secs(2), || async {
        streaming_threads(&client, &app.address, &token)
            .await
            .is_empty()
            .then_some(())
    })
    .await;

    // Assert
    let done_first = outcomes.iter().filter(|o| o.is_done()).count();
    let mut labels: HashMap<String, usize> = HashMap::new();
    for outcome in &outcomes {
        *labels.entry(outcome.label()).or_default() += 1;
    }
    let slowest_probe = probes.iter().map(|(_, d)| *d).max().unwrap_or_default();
    let requests = app.mock.requests();
    let calls: Vec<usize> = bodies
        .iter()
        .map(|body| {
            let text = &body["messages"][0]["content"];
            requests
                .iter()
                .filter(|r| r["messages"].as_array().unwrap().last().unwrap()["content"] == *text)
                .count()
        })
        .collect();
    let retry_attempts: usize = retried.iter().map(|r| r.2).sum();
    let retry_conflicts: usize = retried.iter().map(|r| r.3).sum();
    eprintln!(
        "chaos ledger (redis killed): {TURNS} streaming turns; killed at {killed_at:?}, restarted at {restarted_at:?}; \
         first attempts: {labels:?}; {} requests during the outage, statuses {:?}, slowest answer {slowest_probe:?}; \
         recovery {recovery:?} after the restart began; {} turns retried in {retry_attempts} attempts ({retry_conflicts} answered 409), all stored once; \
         {} model calls for {TURNS} turns",
        probes.len(),
        probes
            .iter()
            .map(|(s, _)| s.as_u16())
            .collect::<std::collections::BTreeSet<_>>(),
        retried.len(),
        calls.iter().sum::<usize>(),
    );
    assert!(recovered.is_some(), "the process never recovered");
    for (status, took) in &probes {
        assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            *took < Duration::from_millis(REDIS_TIMEOUT_MS) + ANSWER_MARGIN,
            "503 after {took:?}"
        );
    }
    assert!(done_first > 0, "no turn ended before or after the outage");
    for (i, outcome) in outcomes.iter().enumerate() {
        let text = match outcome {
            Outcome::Done { text } => text.clone(),
            _ => {
                let (_, last, ..) = retried.iter().find(|r| r.0 == i).unwrap();
                let Outcome::Done { text } = last else {
                    panic!("turn {i} never ended: {last:?}")
                };
                text.clone()
            }
        };
        assert_stored_once(
            &client,
            &app.address,
            &token,
            &threads[i],
            &format!("m{i}"),
            &text,
        )
        .await;
    }
    assert!(free_after_lease.is_some(), "a thread stayed streaming");
    // A reply that could not be stored during the outage was stored once Redis was back: its
    // retry replayed it, and no turn cost a second model call.
    assert_eq!(calls, vec![1; TURNS], "model calls per turn");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_frozen_past_the_response_timeout_leaves_every_503_retryable() {
    // Arrange: 20 threads, and one turn first, so the connection and control channel are up.
    const TURNS: usize = 20;
    const CREATES: usize = 5;
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let mut threads = Vec::new();
    for i in 0..TURNS {
        threads.push(app.new_thread_id(&token, &format!("frozen {i}")).await);
    }
    let warm_thread = app.new_thread_id(&token, "warm up").await;
    let warm = app
        .chat(&token, thread_turn(&warm_thread, "warm", "warm up"))
        .await;
    assert_eq!(warm.last_data(), Some("[DONE]"));
    let url = app.url("/api/chat");
    let client = reqwest::Client::new();
    let bodies: Vec<Value> = (0..TURNS)
        .map(|i| thread_turn(&threads[i], &format!("m{i}"), &format!("frozen turn {i}")))
        .collect();
    let creates: Vec<Value> = (0..CREATES)
        .map(|i| json!({ "id": format!("frozen-new-{i}"), "title": "made while frozen" }))
        .collect();

    // Act: every request meets the frozen server, which stays frozen 1 s past the timeout.
    let frozen = Frozen::redis(&app.redis);
    let asked = Instant::now();
    let turns = stream::iter(bodies.iter())
        .map(|body| attempt(&client, &url, &token, body))
        .buffer_unordered(TURNS)
        .collect::<Vec<_>>();
    let made = stream::iter(creates.iter())
        .map(|body| {
            app.request(
                Method::POST,
                "/api/threads",
                Some(&token),
                Some(body.clone()),
            )
        })
        .buffer_unordered(CREATES)
        .collect::<Vec<_>>();
    let (first, first_creates) = tokio::join!(turns, made);
    let answered_in = asked.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    drop(frozen);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut retries = Vec::new();
    for body in &bodies {
        retries.push(attempt(&client, &url, &token, body).await);
    }
    let mut created = Vec::new();
    for body in &creates {
        created.push(
            app.request(
                Method::POST,
                "/api/threads",
                Some(&token),
                Some(body.clone()),
            )
            .await,
        );
    }

    // Assert
    let refused = first
        .iter()
        .filter(|o| {
            matches!(o, Outcome::Refused { status, code }
            if *status == StatusCode::SERVICE_UNAVAILABLE && code == "store_unavailable")
        })
        .count();
    let done = retries.iter().filter(|o| o.is_done()).count();
    let conflicts = retries
        .iter()
        .filter(|o| matches!(o, Outcome::Refused { status, .. } if *status == StatusCode::CONFLICT))
        .count();
    let made_again = created
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    eprintln!(
        "chaos ledger (redis frozen): {TURNS} turns and {CREATES} creates sent while frozen: {refused} turns and {} creates answered 503 within {answered_in:?}; \
         after the thaw, retries: {done} turns done, {conflicts} answered 409, {made_again} creates 201",
        first_creates
            .iter()
            .filter(|(s, _)| *s == StatusCode::SERVICE_UNAVAILABLE)
            .count(),
    );
    assert_eq!(refused, TURNS, "{first:?}");
    assert!(
        first_creates
            .iter()
            .all(|(s, _)| *s == StatusCode::SERVICE_UNAVAILABLE),
        "{first_creates:?}"
    );
    assert!(
        answered_in < Duration::from_millis(REDIS_TIMEOUT_MS) + ANSWER_MARGIN,
        "503s after {answered_in:?}"
    );
    assert_eq!(conflicts, 0, "{retries:?}");
    assert_eq!(done, TURNS, "{retries:?}");
    assert_eq!(made_again, CREATES, "{created:?}");
    for (i, outcome) in retries.iter().enumerate() {
        let Outcome::Done { text } = outcome else {
            unreachable!()
        };
        assert_stored_once(
            &client,
            &app.address,
            &token,
            &threads[i],
            &format!("m{i}"),
            text,
        )
        .await;
    }
    assert!(
        streaming_threads(&client, &app.address, &token)
            .await
            .is_empty()
    );
}

/// The faults the mock model is asked for, one kind per turn in turn, each for the turn's
/// first model call only (`faults=1`): how the first attempt ends, and how many model calls
/// the turn may make in all.
const FAULTS: [(&str, &str, usize); 8] = [
    ("clean", "", 1),
    ("503 before the first token", "status=503 faults=1", 2),
    ("429 before the first token", "status=429 faults=1", 2),
    ("no head within the TTFT timeout", "hang=1 faults=1", 2),
    ("dropped before any text", "cut_after=0 faults=1", 2),
    ("error event after 3 chunks", "error_after=3 faults=1", 1),
    ("dropped after 2 chunks", "cut_after=2 faults=1", 1),
    ("a malformed chunk after 2", "garbage_after=2 faults=1", 1),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_model_faults_under_concurrent_retried_turns_keep_an_exact_ledger() {
    // Arrange: 64 turns on 64 threads, each with a fault of its kind; the first 8 also sent
    // twice at once (a double submit).
    const TURNS: usize = 64;
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let url = app.url("/api/chat");
    let client = reqwest::Client::new();
    let mut threads = Vec::new();
    for i in 0..TURNS {
        threads.push(app.new_thread_id(&token, &format!("faults {i}")).await);
    }
    let bodies: Vec<Value> = (0..TURNS)
        .map(|i| {
            let (_, knobs, _) = FAULTS[i % FAULTS.len()];
            let text = format!("[[mock tokens=12 inter_token_ms=20 {knobs}]] ledger turn {i}.");
            thread_turn(&threads[i], &format!("m{i}"), &text)
        })
        .collect();

    // Act: every client retries (same message id) until it gets `[DONE]`.
    let clients = (0..TURNS + 8).map(|k| {
        let i = k % TURNS;
        let (client, url, token, body) = (&client, &url, &token, &bodies[i]);
        async move {
            let first = attempt(client, url, token, body).await;
            let mut attempts = 1;
            let mut last = first.clone();
            while !last.is_done() && attempts < 10 {
                tokio::time::sleep(Duration::from_millis(200)).await;
                last = attempt(client, url, token, body).await;
                attempts += 1;
            }
            (i, first, last, attempts)
        }
    });
    let results = futures_util::future::join_all(clients).await;

    // Assert: each turn's user message once, its reply once (what its client was last sent),
    // and exactly the model calls its fault allows: none again for a finished turn.
    let requests = app.mock.requests();
    let mut calls = vec![0usize; TURNS];
    for request in &requests {
        let last = request["messages"].as_array().unwrap().last().unwrap()["content"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if let Some(at) = last.find("ledger turn ") {
            let n: usize = last[at + 12..].trim_end_matches('.').parse().unwrap();
            calls[n] += 1;
        }
    }
    let mut firsts: HashMap<String, usize> = HashMap::new();
    for (_, first, ..) in &results {
        *firsts.entry(first.label()).or_default() += 1;
    }
    let attempts: usize = results.iter().map(|r| r.3).sum();
    eprintln!(
        "chaos ledger (model faults): {TURNS} turns ({} clients, 8 of them double submits), {attempts} attempts in all; \
         first attempts: {firsts:?}; model calls {} (expected {}); stored: {TURNS} user messages and {TURNS} replies, once each",
        results.len(),
        calls.iter().sum::<usize>(),
        (0..TURNS)
            .map(|i| FAULTS[i % FAULTS.len()].2)
            .sum::<usize>(),
    );
    for (i, _, last, attempts) in &results {
        assert!(
            last.is_done(),
            "turn {i} after {attempts} attempts: {last:?}"
        );
    }
    for i in 0..TURNS {
        let (kind, _, expected) = FAULTS[i % FAULTS.len()];
        assert_eq!(calls[i], expected, "model calls of turn {i} ({kind})");
        let (_, _, last, _) = results.iter().find(|r| r.0 == i).unwrap();
        let Outcome::Done { text } = last else {
            unreachable!()
        };
        assert_stored_once(
            &client,
            &app.address,
            &token,
            &threads[i],
            &format!("m{i}"),
            text,
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_slow_streams_in_one_chat_function_are_all_stored() {
    // Arrange: the `chat` function binary alone (as Vercel runs it) on the test's Redis and
    // mock; 1,000 streams of 20 tokens, one every 100 ms. Each stream holds four descriptors across the processes (the client's and
    // the server's ends, and the server's model request with the mock's end).
    const STREAMS: usize = 1_000;
    let limit = std::fs::read_to_string("/proc/self/limits").unwrap();
    let open_files: u64 = limit
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or(u64::MAX);
    assert!(
        open_files >= 4_500,
        "this test needs `ulimit -n` of at least 4500 (it is {open_files})"
    );
    let app = TestApp::spawn().await;
    let mut vars = test_vars_with_upstream(&app.redis.url(), &app.mock.base_url());
    // A machine this busy answers slower than the tests' short timeouts allow.
    set_var(&mut vars, "REDIS_RESPONSE_TIMEOUT_MS", "10000");
    set_var(&mut vars, "UPSTREAM_TTFT_TIMEOUT_MS", "30000");
    set_var(&mut vars, "RUST_LOG", "warn");
    let dev = LoggedFunction::start(env!("CARGO_BIN_EXE_chat"), vars).await;
    let token = app.token_for(&random_user());
    let client = reqwest::Client::new();
    let url = dev.url("/api/chat");
    let idle_kib = dev.rss_kib();
    stream::iter(0..STREAMS)
        .map(|i| {
            let (app, token) = (&app, &token);
            async move {
                let (status, _) = app
                    .request(
                        Method::POST,
                        "/api/threads",
                        Some(token),
                        Some(json!({ "id": format!("many-{i}") })),
                    )
                    .await;
                assert_eq!(status, StatusCode::CREATED);
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;

    // Act
    let peak = AtomicU64::new(idle_kib);
    let started = Instant::now();
    let all = stream::iter(0..STREAMS)
        .map(|i| {
            let (client, url, token) = (&client, &url, &token);
            async move {
                let body = json!({
                    "threadId": format!("many-{i}"),
                    "messages": [{ "id": format!("m{i}"), "role": "user", "content": slow(20, 100, &format!("stream {i}")) }],
                });
                attempt(client, url, token, &body).await
            }
        })
        .buffer_unordered(STREAMS)
        .collect::<Vec<_>>();
    let watch = async {
        while started.elapsed() < Duration::from_secs(60) {
            peak.fetch_max(dev.rss_kib(), Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let outcomes = tokio::select! {
        outcomes = all => outcomes,
        () = watch => panic!("the streams did not end within 60 s"),
    };
    let took = started.elapsed();
    let after_kib = dev.rss_kib();

    // Assert
    let done = outcomes.iter().filter(|o| o.is_done()).count();
    let mut stored_ok = 0;
    let checks = stream::iter(0..STREAMS)
        .map(|i| {
            let (client, base, token) = (&client, &app.address, &token);
            async move { stored(client, base, token, &format!("many-{i}")).await }
        })
        .buffered(32)
        .collect::<Vec<_>>()
        .await;
    for (i, messages) in checks.iter().enumerate() {
        let Outcome::Done { text } = &outcomes[i] else {
            continue;
        };
        if messages.len() == 2 && messages[1]["content"] == *text {
            stored_ok += 1;
        }
    }
    let peak_kib = peak.load(Ordering::Relaxed);
    eprintln!(
        "chaos ledger (1,000 streams): {STREAMS} concurrent 2 s streams in {took:?}; {done} ended with [DONE], {stored_ok} stored as streamed; \
         `chat` function RSS {:.1} MiB idle, {:.1} MiB peak, {:.1} MiB after (ulimit -n {open_files})",
        idle_kib as f64 / 1024.0,
        peak_kib as f64 / 1024.0,
        after_kib as f64 / 1024.0,
    );
    assert_eq!(
        done,
        STREAMS,
        "{:?}",
        outcomes.iter().find(|o| !o.is_done())
    );
    assert_eq!(stored_ok, STREAMS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_client_disconnects_mid_stream_loses_no_reply() {
    // Arrange: 60 streams of 30 tokens, 30 ms apart; each client hangs up after 1–10 events.
    const STREAMS: usize = 60;
    const TOKENS: usize = 30;
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let mut threads = Vec::new();
    for i in 0..STREAMS {
        threads.push(app.new_thread_id(&token, &format!("storm {i}")).await);
    }

    // Act
    let storm = (0..STREAMS).map(|i| {
        let body = thread_turn(&threads[i], &format!("m{i}"), &slow(TOKENS, 30, "storm"));
        let (app, token) = (&app, &token);
        async move {
            let resp = app
                .client
                .post(app.url("/api/chat"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            let mut events = Reader::new(resp);
            let seen = events.take(1 + i % 10).await.len();
            drop(events);
            seen
        }
    });
    let seen: usize = futures_util::future::join_all(storm).await.iter().sum();
    let gone = Instant::now();
    let all_stored = eventually(Duration::from_secs(10), || async {
        let mut n = 0;
        for thread in &threads {
            let messages = stored(&app.client, &app.address, &token, thread).await;
            if messages.len() == 2 && messages[1]["finishReason"] == "stop" {
                n += 1;
            }
        }
        (n == STREAMS).then_some(())
    })
    .await;
    let settled = gone.elapsed();

    // Assert: every reply whole (a client leaving never stops a generation), each once.
    let expected = mock_upstream::reply_text(TOKENS);
    eprintln!(
        "chaos ledger (disconnects): {STREAMS} clients hung up after {seen} events in all; every reply stored whole within {settled:?} of the last hang-up; \
         model calls {}, replies the model saw abandoned {}",
        app.mock.calls(),
        app.mock.abandoned(),
    );
    assert!(all_stored.is_some(), "some replies were not stored whole");
    for (i, thread) in threads.iter().enumerate() {
        assert_stored_once(
            &app.client,
            &app.address,
            &token,
            thread,
            &format!("m{i}"),
            &expected,
        )
        .await;
    }
    assert_eq!(app.mock.calls(), STREAMS);
    assert_eq!(app.mock.abandoned(), 0);
}
