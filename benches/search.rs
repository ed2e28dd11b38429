//! `cargo bench --bench search`: what a search costs for a user with 10,000 messages.
//!
//! The target (issue "Search, export and import"): a two-word query over a user with 10,000
//! messages (about 2 MB of text) takes p50 ≤ 5 ms and p99 ≤ 20 ms of server time, and no
//! single Redis command blocks Redis for more than about a millisecond.
//!
//! # What it builds
//! In a private `redis-server`: one user with 500 threads of 20 messages (alternately user and
//! assistant), imported through `POST /api/import`. Messages are about 200 bytes of words
//! drawn from a vocabulary of 8,000 made-up words with Zipf-like frequencies (a few very
//! common words, a long tail of rare ones), as real text has.
//!
//! # What it measures
//! - the first search, which builds the index from all 10,000 messages;
//! - `BENCH_QUERIES` (1,000; quick 200) two-word queries after as many warm-up queries, half
//!   of them with the second word still being typed (a prefix), the words drawn from common,
//!   middling and rare ones: p50 / p99 through the store (`Store::search`: the server's own
//!   time) and through HTTP (`GET /api/search` on loopback, as the dev server serves it);
//!   results are checked: every hit holds both words;
//! - Redis: the time of its longest command during building and querying (`SLOWLOG` with a
//!   1 ms threshold), its script time per query (`INFO commandstats`), and the index's size
//!   (`MEMORY USAGE` of every search key) per message.
//!
//! # Pinning
//! With ≥ 2 CPUs (unless `BENCH_PIN=0`): `redis-server` on CPU 1, this process on CPU 0.
//!
//! # Environment
//! `BENCH_QUICK=1` (fewer queries), `BENCH_QUERIES`, `BENCH_PIN=0`.

use std::{
    io::Write,
    time::{Duration, Instant},
};

use buddahbot::{
    search::Query,
    store::{ArchivedFilter, SearchRequest},
};
use serde_json::json;

mod common;
#[path = "common/measure.rs"]
mod measure;
#[path = "common/scripts.rs"]
mod scripts;
#[path = "common/seed.rs"]
mod seed;
#[path = "common/served.rs"]
mod served;

use common::{Result, progress, report};
use measure::percentile;
use scripts::script_usec;

const THREADS: usize = 500;
const MESSAGES_PER_THREAD: usize = 20;
const VOCABULARY: usize = 8_000;
const MESSAGE_BYTES: usize = 200;
const TARGET_P50: Duration = Duration::from_millis(5);
const TARGET_P99: Duration = Duration::from_millis(20);

fn main() -> Result<()> {
    served::run(run)
}

/// A small deterministic generator (xorshift64*), so every run searches the same text.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A word rank in 0..VOCABULARY, rank r drawn with weight about 1 / (r + 1).
    fn zipf(&mut self) -> usize {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        let ranks = VOCABULARY as f64;
        ((ranks + 1.0).powf(u) - 1.0).floor() as usize % VOCABULARY
    }
}

/// The made-up word of rank `r`: syllables spelled from its digits.
fn word(r: usize) -> String {
    const SYLLABLES: [&str; 20] = [
        "ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "ve", "da", "zo", "bu", "shi", "ge", "ha",
        "yu", "fe", "wa", "qui", "xo",
    ];
    let mut n = r + 20;
    let mut out = String::new();
    while n > 0 {
        out.push_str(SYLLABLES[n % 20]);
        n /= 20;
    }
    out
}

fn message(rng: &mut Rng) -> String {
    let mut text = String::new();
    while text.len() < MESSAGE_BYTES {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&word(rng.zipf()));
    }
    text
}

async fn run(pinned: bool) -> Result<()> {
    let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| v.trim() == "1");
    let queries: usize = match std::env::var("BENCH_QUERIES") {
        Ok(v) => v.trim().parse()?,
        Err(_) if quick => 200,
        Err(_) => 1_000,
    };
    let served = served::serve(pinned, &[]).await?;
    let (app, base, user, token, http) = (
        &served.app,
        &served.base,
        &served.user,
        &served.token,
        &served.http,
    );
    let mut conn = served.conn.clone();

    progress!("importing {THREADS} threads of {MESSAGES_PER_THREAD} messages…");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut text_bytes = 0;
    for batch in 0..THREADS / 50 {
        let mut body = String::new();
        for t in batch * 50..(batch + 1) * 50 {
            let messages: Vec<serde_json::Value> = (0..MESSAGES_PER_THREAD)
                .map(|m| {
                    let text = message(&mut rng);
                    text_bytes += text.len();
                    // A minute apart, from 2026-01-01 (10,000 minutes: within the month).
                    let k = t * MESSAGES_PER_THREAD + m;
                    let at = format!(
                        "2026-01-{:02}T{:02}:{:02}:00.000Z",
                        1 + k / 1440,
                        k % 1440 / 60,
                        k % 60
                    );
                    json!({
                        "id": format!("m{t}-{m}"),
                        "role": if m % 2 == 0 { "user" } else { "assistant" },
                        "content": text,
                        "createdAt": at,
                    })
                })
                .collect();
            let line = json!({
                "thread": {
                    "id": format!("t{t}"),
                    "title": format!("{} {}", word(rng.zipf()), word(rng.zipf())),
                    "createdAt": "2026-01-01T00:00:00.000Z",
                    "updatedAt": "2026-06-01T00:00:00.000Z",
                },
                "messages": messages,
            });
            body.push_str(&line.to_string());
            body.push('\n');
        }
        seed::import(&served, body).await?;
    }
    let messages = THREADS * MESSAGES_PER_THREAD;

    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg(1_000)
        .arg("slowlog-max-len")
        .arg(100_000)
        .query_async(&mut conn)
        .await?;
    let _: () = redis::cmd("SLOWLOG")
        .arg("RESET")
        .query_async(&mut conn)
        .await?;
    progress!("first search: indexing {messages} messages…");
    let started = Instant::now();
    let first = Query::parse(&format!("{} ", word(0)))?;
    let page = app.store().search(user, &request(&first)).await?;
    let build = started.elapsed();
    if page.hits.is_empty() {
        return Err("the most common word found nothing".into());
    }
    let slow_build = slowest(&mut conn).await?;

    // The index's size, key by key.
    let mut index_bytes = 0u64;
    let mut index_keys = 0u64;
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg("user:{bench}:search*")
            .arg("COUNT")
            .arg(1_000)
            .query_async(&mut conn)
            .await?;
        for key in keys {
            let bytes: Option<u64> = redis::cmd("MEMORY")
                .arg("USAGE")
                .arg(&key)
                .arg("SAMPLES")
                .arg(0)
                .query_async(&mut conn)
                .await?;
            index_bytes += bytes.unwrap_or(0);
            index_keys += 1;
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }

    // Two-word queries: ranks from the common head to the rare tail; every other one with
    // its second word cut to a prefix of 3 letters (being typed).
    let mut pick = Rng(0xD1B5_4A32_D192_ED03);
    let bands = [(0, 50), (50, 500), (500, 8_000)];
    let mut texts = Vec::with_capacity(queries);
    for i in 0..queries {
        let (a0, a1) = bands[i % 3];
        let (b0, b1) = bands[(i / 3) % 3];
        let a = word(a0 + (pick.next() as usize) % (a1 - a0));
        let b = word(b0 + (pick.next() as usize) % (b1 - b0));
        texts.push(if i % 2 == 0 {
            format!("{a} {b} ")
        } else {
            format!("{a} {}", &b[..3])
        });
    }
    let parsed: Vec<Query> = texts
        .iter()
        .map(|t| Query::parse(t))
        .collect::<Result<_, _>>()?;
    let _: () = redis::cmd("SLOWLOG")
        .arg("RESET")
        .query_async(&mut conn)
        .await?;
    for query in &parsed {
        app.store().search(user, &request(query)).await?;
    }
    let before = script_usec(&mut conn).await?;
    let mut store_times = Vec::with_capacity(queries);
    let mut hits = 0usize;
    for query in &parsed {
        let started = Instant::now();
        let page = app.store().search(user, &request(query)).await?;
        store_times.push(started.elapsed());
        hits += page.hits.len();
        for hit in &page.hits {
            // A snippet cut short may lack the second word; a whole one must hold both.
            if !hit.snippet.snippet.contains('…') && query.matches(&hit.snippet.snippet).is_none()
            {
                return Err(format!("a hit does not match: {:?}", hit.snippet.snippet).into());
            }
        }
    }
    let after = script_usec(&mut conn).await?;
    let redis_us = (after.0 - before.0) / queries as f64;
    let mut http_times = Vec::with_capacity(queries);
    for text in &texts {
        let started = Instant::now();
        let resp = http
            .get(format!("{base}/api/search"))
            .query(&[("q", text.as_str())])
            .bearer_auth(token)
            .send()
            .await?;
        let status = resp.status();
        let _ = resp.bytes().await?;
        http_times.push(started.elapsed());
        if !status.is_success() {
            return Err(format!("search: {status}").into());
        }
    }
    let slow_query = slowest(&mut conn).await?;
    store_times.sort_unstable();
    http_times.sort_unstable();

    let p50 = percentile(&store_times, 50.0);
    let p99 = percentile(&store_times, 99.0);
    report!("# Search: two-word queries over one user's {messages} messages");
    report!();
    report!(
        "{THREADS} threads × {MESSAGES_PER_THREAD} messages, {:.2} MB of text; {queries} queries \
         (after {queries} warm-up), 20 results a page; {} pinned",
        text_bytes as f64 / 1e6,
        if pinned {
            "redis on CPU 1, this process on CPU 0:"
        } else {
            "not"
        },
    );
    report!();
    report!("| | p50 | p99 |");
    report!("|---|---|---|");
    report!("| store (`Store::search`) | {} | {} |", ms(p50), ms(p99));
    report!(
        "| HTTP (`GET /api/search`) | {} | {} |",
        ms(percentile(&http_times, 50.0)),
        ms(percentile(&http_times, 99.0))
    );
    report!();
    report!(
        "- results per query: {:.1} on average; Redis script time per query: {redis_us:.0} µs",
        hits as f64 / queries as f64
    );
    report!(
        "- first search (indexing all {messages} messages): {:.2} s",
        build.as_secs_f64()
    );
    report!(
        "- index: {index_keys} keys, {:.2} MB, {:.0} bytes per message ({:.1}× the text)",
        index_bytes as f64 / 1e6,
        index_bytes as f64 / messages as f64,
        index_bytes as f64 / text_bytes as f64
    );
    report!(
        "- Redis commands over 1 ms: {} while indexing (longest {} µs), {} while searching (longest {} µs)",
        slow_build.0,
        slow_build.1,
        slow_query.0,
        slow_query.1
    );
    report!();
    let met = p50 <= TARGET_P50 && p99 <= TARGET_P99;
    report!(
        "verdict: {} (target p50 ≤ {} ms, p99 ≤ {} ms, store time)",
        if met { "met" } else { "NOT met" },
        TARGET_P50.as_millis(),
        TARGET_P99.as_millis()
    );
    Ok(())
}

fn request(query: &Query) -> SearchRequest<'_> {
    SearchRequest {
        query,
        limit: 20,
        after: None,
        archived: ArchivedFilter::Exclude,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// How many commands `SLOWLOG` holds (each over its 1 ms threshold) and the longest (µs);
/// then empties it.
async fn slowest(conn: &mut redis::aio::MultiplexedConnection) -> Result<(usize, u64)> {
    let entries: Vec<redis::Value> = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(100_000)
        .query_async(conn)
        .await?;
    let mut longest = 0;
    for entry in &entries {
        if let redis::Value::Array(fields) = entry
            && let Some(redis::Value::Int(us)) = fields.get(2)
        {
            longest = longest.max(u64::try_from(*us).unwrap_or(0));
            if std::env::var("BENCH_SLOWLOG").is_ok()
                && let Some(redis::Value::Array(args)) = fields.get(3)
            {
                let words: Vec<String> = args
                    .iter()
                    .take(24)
                    .map(|a| match a {
                        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                        other => format!("{other:?}"),
                    })
                    .collect();
                progress!("slow: {us} µs {} ({} args)", words.join(" "), args.len());
            }
        }
    }
    let _: () = redis::cmd("SLOWLOG").arg("RESET").query_async(conn).await?;
    Ok((entries.len(), longest))
}
