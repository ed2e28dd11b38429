//! `cargo bench --bench branches`: what reading a thread costs once it has branches.
//!
//! The target (issue "Conversation management", branches): reading the last 50 messages of
//! the active branch of a 10,000-message thread with 100 branches costs within 1.5× of the
//! same read on a 100-message linear thread.
//!
//! # What it builds
//! In a private `redis-server`, through the store's own turn scripts (as chat turns write):
//! - `linear`: 50 turns, 100 messages, no tree;
//! - `branched`: a first turn, then 100 branches off its reply (each a new user message under
//!   it: an edit of the conversation), each continued for 49 more turns, the branches written
//!   round-robin — 10,002 messages whose storage order interleaves every branch, so no two
//!   turns of the active branch are neighbours in the message list (the worst case for the
//!   read: every turn is its own range).
//!
//! # What it measures
//! `BENCH_READS` (1,000; quick 200) sequential reads of each thread's last 50 messages (after
//! as many warm-up reads), both ways a client reads them:
//! - `store`: `Store::thread_page` (one script, one round trip, decoding and placing the
//!   messages): the server's own cost of the read;
//! - `http`: `GET /api/threads/:id?limit=50` through `routes::local` on loopback (auth, the
//!   read, JSON), as the dev server serves it;
//!
//! and for each, p50 / p99 latency and Redis's time running the read (`usec` per call of
//! `INFO commandstats`), the branched thread's figures over the linear one's, and a verdict.
//! Every read is checked: 50 messages, ending at the thread's active leaf.
//!
//! # Pinning
//! With ≥ 2 CPUs (unless `BENCH_PIN=0`): `redis-server` on CPU 1, this process (client and
//! server, one thread) on CPU 0, with `taskset`.
//!
//! # Environment
//! `BENCH_QUICK=1` (fewer reads), `BENCH_READS`, `BENCH_PIN=0`.

use std::{
    io::Write,
    time::{Duration, Instant},
};

use buddahbot::{
    app::App,
    domain::{ChatMessage, MessageId, Placement, Role, ThreadId, Title, UserId},
    store::{LimitSet, NewTurn, StreamEnd, TurnIds, TurnStart},
};

mod common;
#[path = "common/measure.rs"]
mod measure;
#[path = "common/scripts.rs"]
mod scripts;
#[path = "common/served.rs"]
mod served;

use common::{Result, progress, report};
use measure::percentile;
use scripts::script_usec;

const PAGE: usize = 50;
const BRANCHES: usize = 100;
const TURNS_PER_BRANCH: usize = 50;
const LINEAR_TURNS: usize = 50;
const TARGET_RATIO: f64 = 1.5;

fn main() -> Result<()> {
    served::run(run)
}

async fn run(pinned: bool) -> Result<()> {
    let quick = std::env::var("BENCH_QUICK").is_ok_and(|v| v.trim() == "1");
    let reads: usize = match std::env::var("BENCH_READS") {
        Ok(v) => v.trim().parse()?,
        Err(_) if quick => 200,
        Err(_) => 1_000,
    };
    let served::Served {
        _redis,
        http,
        mut conn,
        app,
        base,
        user,
        token,
    } = served::serve(pinned, &[("AUTO_TITLE", "0")]).await?;

    progress!("building the threads…");
    let built = Instant::now();
    let linear = ThreadId::parse("linear")?;
    let mut leaf = None;
    for i in 0..LINEAR_TURNS {
        leaf = Some(turn(&app, &user, &linear, i == 0, Placement::AfterLeaf).await?);
    }
    let linear_leaf = leaf.ok_or("no linear turn")?;
    let branched = ThreadId::parse("branched")?;
    let (branched_leaf, _) = branch_by_branch(&app, &user, &branched).await?;
    // The same thread with another branch shown: one written half-way, in the middle of the
    // message list.
    let middle = ThreadId::parse("middle")?;
    let (_, middle_leaf) = branch_by_branch(&app, &user, &middle).await?;
    app.store()
        .set_active_leaf(&user, &middle, &middle_leaf)
        .await?;
    // Every branch written a turn at a time, round robin: no two turns of a branch are
    // neighbours in the message list (the worst case: every turn is a range of its own).
    let interleaved = ThreadId::parse("interleaved")?;
    let root = turn(&app, &user, &interleaved, true, Placement::AfterLeaf).await?;
    let mut leaves = vec![root; BRANCHES];
    for _ in 0..TURNS_PER_BRANCH {
        for leaf in &mut leaves {
            *leaf = turn(
                &app,
                &user,
                &interleaved,
                false,
                Placement::Under(leaf.clone()),
            )
            .await?;
        }
    }
    let interleaved_leaf = leaves.last().ok_or("no branch")?.clone();
    let len: usize = redis::cmd("LLEN")
        .arg(format!("user:{{bench}}:thread:{branched}:messages"))
        .query_async(&mut conn)
        .await?;
    progress!(
        "built in {:.1} s: linear 100 messages; branched threads of {len} messages in {BRANCHES} branches",
        built.elapsed().as_secs_f64()
    );
    let mut results = Vec::new();
    for (name, thread, leaf) in [
        ("linear (100 messages)", &linear, &linear_leaf),
        (
            "branched: the newest branch shown",
            &branched,
            &branched_leaf,
        ),
        ("branched: a branch half-way shown", &middle, &middle_leaf),
        (
            "branched, written round robin (worst case)",
            &interleaved,
            &interleaved_leaf,
        ),
    ] {
        // Warm-up, then the measured reads; Redis's time from its own counters.
        for _ in 0..reads {
            read_store(&app, &user, thread, leaf).await?;
        }
        let before = script_usec(&mut conn).await?;
        let mut store_times = Vec::with_capacity(reads);
        for _ in 0..reads {
            let started = Instant::now();
            read_store(&app, &user, thread, leaf).await?;
            store_times.push(started.elapsed());
        }
        let after = script_usec(&mut conn).await?;
        let redis_us = (after.0 - before.0) / (after.1 - before.1).max(1.0);
        let url = format!("{base}/api/threads/{thread}?limit={PAGE}");
        for _ in 0..reads / 4 {
            read_http(&http, &url, &token, leaf).await?;
        }
        let mut http_times = Vec::with_capacity(reads);
        for _ in 0..reads {
            let started = Instant::now();
            read_http(&http, &url, &token, leaf).await?;
            http_times.push(started.elapsed());
        }
        store_times.sort_unstable();
        http_times.sort_unstable();
        results.push((name, store_times, http_times, redis_us));
    }

    report!("# Branch reads: the last {PAGE} messages of the active branch");
    report!();
    report!(
        "pinning: {}; {reads} reads each",
        if pinned {
            "on (redis-server on CPU 1, client and server on CPU 0)"
        } else {
            "off"
        }
    );
    report!();
    report!("| thread | store p50 | store p99 | http p50 | http p99 | Redis µs/read |");
    report!("|---|---|---|---|---|---|");
    for (name, store, http, redis_us) in &results {
        report!(
            "| {name} | {} | {} | {} | {} | {redis_us:.1} |",
            ms(percentile(store, 50.0)),
            ms(percentile(store, 99.0)),
            ms(percentile(http, 50.0)),
            ms(percentile(http, 99.0)),
        );
    }
    // The target holds for each way a thread is read after branching as people branch
    // (newest or an older branch shown); the round-robin thread is reported, not judged.
    let linear = &results[0];
    let mut met = true;
    report!();
    for (i, result) in results.iter().enumerate().skip(1) {
        let store =
            percentile(&result.1, 50.0).as_secs_f64() / percentile(&linear.1, 50.0).as_secs_f64();
        let http =
            percentile(&result.2, 50.0).as_secs_f64() / percentile(&linear.2, 50.0).as_secs_f64();
        let redis = result.3 / linear.3;
        let judged = i < 3;
        if judged {
            met &= store <= TARGET_RATIO && http <= TARGET_RATIO;
        }
        report!(
            "{} / linear: store p50 {store:.2}×, http p50 {http:.2}×, Redis time {redis:.2}×{}",
            result.0,
            if judged { "" } else { " (not judged)" }
        );
    }
    report!();
    report!(
        "verdict (p50 ratios ≤ {TARGET_RATIO}×): {}",
        if met { "met" } else { "MISSED" }
    );
    Ok(())
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// Writes a thread branch by branch: after a first turn, each branch an edit of a user
/// message half-way down the branch before it, continued for [`TURNS_PER_BRANCH`] turns, as
/// a person edits and goes on. The newest branch ends the active one. Returns its leaf and
/// the leaf of the branch written half-way.
async fn branch_by_branch(
    app: &App,
    user: &UserId,
    thread: &ThreadId,
) -> Result<(MessageId, MessageId)> {
    let mut path = vec![turn(app, user, thread, true, Placement::AfterLeaf).await?];
    let mut middle = None;
    for b in 0..BRANCHES {
        let parent = path[path.len() / 2].clone();
        let keep = path.iter().position(|id| *id == parent).unwrap_or(0) + 1;
        path.truncate(keep);
        let mut placement = Placement::Under(parent);
        for _ in 0..TURNS_PER_BRANCH {
            path.push(turn(app, user, thread, false, placement).await?);
            placement = Placement::AfterLeaf;
        }
        if b == BRANCHES / 2 {
            middle = path.last().cloned();
        }
    }
    Ok((
        path.last().cloned().ok_or("no branch")?,
        middle.ok_or("no middle branch")?,
    ))
}

/// One chat turn written through the store's turn scripts (no model call): a user message
/// placed as asked and its reply. Returns the reply's id.
async fn turn(
    app: &App,
    user: &UserId,
    thread: &ThreadId,
    create: bool,
    placement: Placement,
) -> Result<MessageId> {
    let question = ChatMessage::new(Role::User, "A question of some forty characters, or so.");
    let ids = TurnIds {
        user: user.clone(),
        thread: thread.clone(),
        user_message: question.id.clone(),
        reply: MessageId::new(),
    };
    let title = Title::parse("bench")?;
    let (start, _) = app
        .store()
        .begin_turn(
            NewTurn {
                ids: &ids,
                create_with_title: create.then_some(&title),
                inputs: std::slice::from_ref(&question),
                lease: Duration::from_secs(30),
                format: None,
                regenerate: false,
                placement: &placement,
            },
            &LimitSet::default(),
        )
        .await?;
    if !matches!(start, TurnStart::Proceed { .. }) {
        return Err(format!("the turn did not start: {start:?}").into());
    }
    let mut reply = ChatMessage::new(
        Role::Assistant,
        "An answer of about a hundred and twenty characters, which is what a short reply of a chat model tends to be in length.",
    );
    reply.id = ids.reply.clone();
    reply.model = Some("Hermes-4-70B".to_owned());
    app.store()
        .finish_turn(&ids, &reply, None, None, StreamEnd::NONE)
        .await?;
    Ok(ids.reply)
}

async fn read_store(app: &App, user: &UserId, thread: &ThreadId, leaf: &MessageId) -> Result<()> {
    let page = app
        .store()
        .thread_page(user, thread, PAGE, None)
        .await?
        .ok_or("thread gone")?;
    if page.messages.len() != PAGE || page.messages.last().map(|m| &m.id) != Some(leaf) {
        return Err(format!("a wrong page: {} messages", page.messages.len()).into());
    }
    Ok(())
}

async fn read_http(http: &reqwest::Client, url: &str, token: &str, leaf: &MessageId) -> Result<()> {
    let page: serde_json::Value = http
        .get(url)
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let messages = page["messages"].as_array().ok_or("no messages")?;
    if messages.len() != PAGE
        || messages.last().and_then(|m| m["id"].as_str()) != Some(leaf.as_str())
    {
        return Err(format!("a wrong page: {} messages", messages.len()).into());
    }
    Ok(())
}
