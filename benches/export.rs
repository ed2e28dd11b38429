//! `cargo bench --bench export`: the server's memory while it streams a large export.
//!
//! The target (issue "Search, export and import"): `GET /api/export` streams with constant
//! memory; a user with 10,000 threads is not buffered.
//!
//! # What it does
//! In a private `redis-server`, through `POST /api/import`: one user with 2,000 threads, then
//! 10,000 (each 4 messages of about 500 bytes). After each, `GET /api/export?format=ndjson`
//! (and `format=markdown` for the larger) through the dev server's router on loopback, read
//! a chunk at a time, while this process's resident memory (`VmRSS`, server and client alike)
//! is sampled at every chunk received, and the wait for each chunk timed (the first one is
//! the time to the first byte). Pinned like the other in-process benchmarks. Every line of the NDJSON export is checked to be a thread.
//!
//! It reports the export's size and the peak growth of RSS over the RSS just before it: flat
//! means the 10,000-thread export grows memory no more than the 2,000-thread one did (within
//! 4 MB), and far less than its own size.
//!
//! # Environment
//! `BENCH_QUICK=1` (1,000 and 3,000 threads).

use std::{
    io::Write,
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use serde_json::json;

mod common;
#[path = "common/measure.rs"]
mod measure;
#[path = "common/seed.rs"]
mod seed;
#[path = "common/served.rs"]
mod served;

use common::{Result, progress, report};
use measure::percentile;
const MESSAGES: usize = 4;
const FLAT_MARGIN_BYTES: u64 = 4 << 20;

fn main() -> Result<()> {
    served::run(run)
}

/// This process's resident memory (bytes).
fn rss() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .ok_or("no VmRSS")?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kb * 1024)
}

async fn run(pinned: bool) -> Result<()> {
    let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| v.trim() == "1");
    let (small, large) = if quick {
        (1_000, 3_000)
    } else {
        (2_000, 10_000)
    };
    let served = served::serve(pinned, &[]).await?;
    // Redis and the app live as long as `served`; this bench only talks HTTP.
    let served::Served {
        _redis,
        conn: _conn,
        app: _app,
        user: _user,
        base,
        token,
        http,
    } = &served;

    let mut rows = Vec::new();
    let mut seeded = 0;
    for target in [small, large] {
        progress!("importing up to {target} threads…");
        while seeded < target {
            let mut body = String::new();
            for t in seeded..(seeded + 500).min(target) {
                let messages: Vec<serde_json::Value> = (0..MESSAGES)
                    .map(|m| {
                        json!({
                            "id": format!("m{t}-{m}"),
                            "role": if m % 2 == 0 { "user" } else { "assistant" },
                            "content": format!("message {m} of thread {t}: {}", "lorem ipsum dolor ".repeat(26)),
                            "createdAt": "2026-01-01T00:00:00.000Z",
                        })
                    })
                    .collect();
                let line = json!({
                    "thread": {
                        "id": format!("t{t}"), "title": format!("Thread {t}"),
                        "createdAt": "2026-01-01T00:00:00.000Z", "updatedAt": "2026-01-02T00:00:00.000Z",
                    },
                    "messages": messages,
                });
                body.push_str(&line.to_string());
                body.push('\n');
            }
            seed::import(&served, body).await?;
            seeded = (seeded + 500).min(target);
        }
        let formats: &[&str] = if target == large {
            &["ndjson", "markdown"]
        } else {
            &["ndjson"]
        };
        for format in formats {
            // Settle, then the export, sampled while it streams.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let before = rss()?;
            let resp = http
                .get(format!("{base}/api/export?format={format}"))
                .bearer_auth(token)
                .send()
                .await?;
            if !resp.status().is_success() {
                return Err(format!("export: {}", resp.status()).into());
            }
            let mut stream = resp.bytes_stream();
            let mut gaps = Vec::new();
            let mut last = Instant::now();
            let mut bytes = 0u64;
            let mut lines = 0usize;
            let mut peak = before;
            let mut partial = Vec::new();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk?;
                gaps.push(last.elapsed());
                last = Instant::now();
                bytes += chunk.len() as u64;
                if *format == "ndjson" {
                    partial.extend_from_slice(&chunk);
                    while let Some(end) = partial.iter().position(|&b| b == b'\n') {
                        let line: serde_json::Value = serde_json::from_slice(&partial[..end])?;
                        if line.get("thread").is_none() {
                            return Err("an export line without a thread".into());
                        }
                        lines += 1;
                        partial.drain(..=end);
                    }
                }
                peak = peak.max(rss()?);
            }
            if *format == "ndjson" && lines != target {
                return Err(format!("{lines} lines for {target} threads").into());
            }
            gaps.sort_unstable();
            let gap = percentile(&gaps, 99.0);
            rows.push((
                target,
                *format,
                bytes,
                before,
                peak.saturating_sub(before),
                gap,
            ));
        }
    }

    report!("# Export: the server's memory while it streams");
    report!();
    report!(
        "| threads | format | export size | RSS before | peak RSS growth | p99 wait for a chunk |"
    );
    report!("|---|---|---|---|---|---|");
    for (threads, format, bytes, before, growth, gap) in &rows {
        report!(
            "| {threads} | {format} | {:.1} MB | {:.1} MB | {:.1} MB | {:.2} ms |",
            *bytes as f64 / 1e6,
            *before as f64 / 1e6,
            *growth as f64 / 1e6,
            gap.as_secs_f64() * 1e3
        );
    }
    report!();
    let growth = |threads: usize| {
        rows.iter()
            .filter(|r| r.0 == threads)
            .map(|r| r.4)
            .max()
            .unwrap_or(0)
    };
    let flat = growth(large) <= growth(small) + FLAT_MARGIN_BYTES;
    report!(
        "verdict: {} (the {large}-thread exports grow memory by at most {:.1} MB, the {small}-thread one by {:.1} MB; margin {} MB)",
        if flat { "flat" } else { "NOT flat" },
        growth(large) as f64 / 1e6,
        growth(small) as f64 / 1e6,
        FLAT_MARGIN_BYTES >> 20
    );
    Ok(())
}
