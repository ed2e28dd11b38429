//! What a chat turn costs Redis: a constant number of round trips, whatever the reply's
//! length, while nobody resumes or stops it.

use std::{
    io::{BufRead, BufReader, Write},
    net::TcpStream,
    sync::mpsc,
    time::Duration,
};

use reqwest::StatusCode;

use crate::helpers::{
    TestApp, eventually, random_user,
    sse::{Reader, Sse},
    turns::{chat_id, open_chat, slow, ui_turn, user_turn},
};

/// The commands clients send a redis-server (`MONITOR`), those run inside scripts left out.
struct Monitor {
    lines: mpsc::Receiver<String>,
}

impl Monitor {
    fn start(port: u16) -> Self {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream.write_all(b"MONITOR\r\n").unwrap();
        let mut reader = BufReader::new(stream);
        let mut ok = String::new();
        reader.read_line(&mut ok).unwrap();
        assert_eq!(ok.trim(), "+OK");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in reader.lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self { lines }
    }

    /// The names of the client commands seen until `ECHO sentinel`.
    fn commands_until(&self, sentinel: &str) -> Vec<String> {
        let mut commands = Vec::new();
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(10))
                .expect("the sentinel never came");
            if line.contains(sentinel) {
                return commands;
            }
            // `+<time> [<db> <client>] "<COMMAND>" …`; script-internal ones say `[0 lua]`.
            let Some((client, rest)) = line.split_once("] ") else {
                continue;
            };
            if client.ends_with(" lua") {
                continue;
            }
            let name = rest.split('"').nth(1).unwrap_or_default().to_uppercase();
            commands.push(name);
        }
    }
}

#[tokio::test]
async fn a_streamed_turn_costs_the_same_two_round_trips_however_long_its_reply() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    // The first turn opens the process's connections and subscribes to its control channel.
    assert_eq!(
        app.chat(&token, user_turn("warm")).await.status,
        StatusCode::OK
    );
    let monitor = Monitor::start(app.redis.port());
    let mut conn = app.redis_conn().await;
    for (tokens, every_ms) in [(4, 0), (300, 5)] {
        let reply = app
            .chat(&token, user_turn(&slow(tokens, every_ms, "long")))
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.last_data(), Some("[DONE]"));
        let sentinel = format!("turn-done-{tokens}");
        let _: String = redis::cmd("ECHO")
            .arg(&sentinel)
            .query_async(&mut conn)
            .await
            .unwrap();
        // begin_turn and finish_turn; its client got every event, so none is logged.
        assert_eq!(
            monitor.commands_until(&sentinel),
            ["EVALSHA", "EVALSHA"],
            "a reply of {tokens} tokens"
        );
    }
}

/// A stop or resume request whose push was missed (the control subscription was down) still
/// reaches the generator: its lease renewal reads the flags the request left in the meta.
#[tokio::test]
async fn a_missed_push_is_picked_up_by_the_lease_renewal() {
    let app = TestApp::spawn_with(|c| c.chat.generation_lease = Duration::from_millis(600)).await;
    let user = random_user();
    let token = app.token_for(&user);
    let chat = chat_id();
    let mut live = open_chat(&app, &token, ui_turn(&chat, "u1", &slow(400, 10, "long"))).await;
    let first = live.take(4).await;
    let reply_id = first[0].json()["messageId"].as_str().unwrap().to_owned();
    let meta = format!("user:{{{user}}}:thread:{chat}:meta");
    let mut conn = app.redis_conn().await;

    // What attach_stream.lua sets, without its PUBLISH: the log appears within a renewal.
    let () = redis::cmd("HSET")
        .arg(&meta)
        .arg("streamWanted")
        .arg(&reply_id)
        .query_async(&mut conn)
        .await
        .unwrap();
    let stream = format!("user:{{{user}}}:thread:{chat}:stream");
    let logged = eventually(Duration::from_secs(2), || {
        let mut conn = conn.clone();
        let stream = stream.clone();
        async move {
            let len: u64 = redis::cmd("XLEN")
                .arg(&stream)
                .query_async(&mut conn)
                .await
                .unwrap();
            (len > 0).then_some(())
        }
    })
    .await;
    assert!(logged.is_some(), "the generator never started its log");

    // What request_stop.lua sets, without its PUBLISH: the generation stops within a renewal.
    let () = redis::cmd("HSET")
        .arg(&meta)
        .arg("stopRequested")
        .arg(&reply_id)
        .query_async(&mut conn)
        .await
        .unwrap();
    let rest = live.rest().await;
    let kinds: Vec<String> = rest.iter().rev().take(3).rev().map(Sse::kind).collect();
    assert_eq!(kinds, ["text-end", "abort", "[DONE]"]);
    let messages = app.wait_for_messages(&token, &chat, 2).await;
    assert_eq!(messages[1]["status"], "stopped");
}

/// The log is written for whoever may come back for it: nothing when the client got every
/// event (a resume then finds nothing, 204), everything when the client went away before the
/// end (its resume gets the rest, ending like the live stream would have).
#[tokio::test]
async fn only_a_client_that_went_away_leaves_a_log_behind() {
    let app = TestApp::spawn().await;
    let user = random_user();
    let token = app.token_for(&user);
    let mut conn = app.redis_conn().await;

    let stayed = chat_id();
    let mut live = open_chat(&app, &token, ui_turn(&stayed, "u1", &slow(20, 5, "stay"))).await;
    assert_eq!(live.rest().await.last().unwrap().data, "[DONE]");
    let len: u64 = redis::cmd("XLEN")
        .arg(format!("user:{{{user}}}:thread:{stayed}:stream"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(len, 0);
    let resp = app
        .client
        .get(app.url(&format!("/api/chat/{stayed}/stream")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);

    let left = chat_id();
    let mut live = open_chat(&app, &token, ui_turn(&left, "u1", &slow(40, 10, "leave"))).await;
    let seen = live.take(4).await;
    drop(live);
    app.wait_for_messages(&token, &left, 2).await;
    let resp = app
        .client
        .get(app.url(&format!("/api/chat/{left}/stream")))
        .bearer_auth(&token)
        .header("last-event-id", &seen[3].id)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let rest = Reader::new(resp).rest().await;
    let kinds: Vec<String> = rest.iter().rev().take(3).rev().map(Sse::kind).collect();
    assert_eq!(kinds, ["finish-step", "finish", "[DONE]"]);
    let seq = |id: &str| -> u64 { id.rsplit_once('-').unwrap().1.parse().unwrap() };
    assert_eq!(seq(&rest[0].id), seq(&seen[3].id) + 1, "exactly the rest");
}

/// A new thread's first turn with the model's title ready before the reply ends: the title is
/// stored with the reply, in the same two round trips (one that comes later costs a third,
/// as `titles.rs` shows).
#[tokio::test]
async fn a_title_ready_before_the_end_goes_with_the_reply() {
    let app = TestApp::spawn_with(|c| c.chat.auto_title = true).await;
    let token = app.token_for(&random_user());
    assert_eq!(
        app.chat(&token, user_turn("warm")).await.status,
        StatusCode::OK
    );
    // The warm-up's title may still be on its way.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let monitor = Monitor::start(app.redis.port());
    let mut conn = app.redis_conn().await;
    let text = slow(40, 10, "titled in time");
    let answer = app.chat(&token, user_turn(&text)).await;
    assert_eq!(answer.last_data(), Some("[DONE]"));
    let _: String = redis::cmd("ECHO")
        .arg("sentinel-after-the-titled-turn")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        monitor.commands_until("sentinel-after-the-titled-turn"),
        ["EVALSHA", "EVALSHA"]
    );
    let thread = answer.header("x-thread-id");
    let (_, page) = app.get(&format!("/api/threads/{thread}"), &token).await;
    let title = page["thread"]["title"].as_str().unwrap();
    assert!(!text.starts_with(title), "the model's title, not {title:?}");
}
