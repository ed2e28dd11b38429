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
    sse::Sse,
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
        // begin_turn; then, pipelined in one round trip, the events but the last and
        // finish_turn (which appends the last, atomically with the reply).
        assert_eq!(
            monitor.commands_until(&sentinel),
            ["EVALSHA", "XADD", "EVALSHA"],
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
