//! Connections: requests share the process's one multiplexed connection, and a blocking read
//! gets a dedicated one, so it never holds up the commands queued behind it.

use std::time::Duration;

use buddahbot::store::Store;
use redis::Value;

use crate::helpers::{TestApp, eventually, random_user};

/// Starts `XREAD BLOCK` on a dedicated connection of `store`, then checks that a command on
/// the shared connection answers while the read still waits, that the read outlives the
/// shared response timeout (500 ms in tests), and that an entry added through `nodes` (plain
/// connections to every server) ends it. `key` must be free.
pub async fn assert_a_blocking_read_does_not_hold_up_the_shared_connection(
    store: &Store,
    nodes: &[String],
    key: &str,
) {
    let mut dedicated = store.dedicated_connection(None).await.unwrap();
    let read = {
        let key = key.to_owned();
        tokio::spawn(async move {
            redis::cmd("XREAD")
                .arg("BLOCK")
                .arg(10_000)
                .arg("STREAMS")
                .arg(&key)
                .arg("$")
                .query_async::<Value>(&mut dedicated)
                .await
        })
    };
    let mut conns = Vec::new();
    for url in nodes {
        let client = redis::Client::open(url.as_str()).unwrap();
        conns.push(client.get_multiplexed_async_connection().await.unwrap());
    }
    let blocked = eventually(Duration::from_secs(5), || {
        let mut conns = conns.clone();
        async move {
            let mut blocked = 0;
            for conn in &mut conns {
                let info: String = redis::cmd("INFO")
                    .arg("clients")
                    .query_async(conn)
                    .await
                    .ok()?;
                blocked += info
                    .lines()
                    .find_map(|l| l.strip_prefix("blocked_clients:"))
                    .and_then(|n| n.trim().parse::<u32>().ok())
                    .unwrap_or(0);
            }
            (blocked == 1).then_some(())
        }
    })
    .await;
    assert!(blocked.is_some(), "the XREAD never blocked on the server");

    store.ping().await.unwrap();
    assert!(
        !read.is_finished(),
        "the read ended before the shared connection answered"
    );
    // Past the shared connection's response timeout: the dedicated one has none.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(
        !read.is_finished(),
        "the read ended early: {:?}",
        read.await
    );

    // On a Cluster only the key's primary takes the write; the others answer MOVED.
    let mut added = Vec::new();
    for conn in &mut conns {
        added.push(
            redis::cmd("XADD")
                .arg(key)
                .arg("*")
                .arg("delta")
                .arg("hi")
                .query_async::<String>(conn)
                .await,
        );
    }
    assert_eq!(added.iter().filter(|r| r.is_ok()).count(), 1, "{added:?}");
    let value = tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("the read did not end after the XADD")
        .unwrap()
        .unwrap();
    let text = format!("{value:?}");
    assert!(text.contains("delta") && text.contains("hi"), "{text}");
}

#[tokio::test]
async fn a_blocking_read_on_a_dedicated_connection_does_not_hold_up_the_shared_one() {
    let app = TestApp::spawn().await;
    let key = format!("user:{{{}}}:stream-test", random_user());
    assert_a_blocking_read_does_not_hold_up_the_shared_connection(
        app.app.store(),
        &[app.redis.url()],
        &key,
    )
    .await;
}

#[tokio::test]
async fn a_dedicated_connection_to_a_stopped_server_fails_with_unavailable() {
    let mut app = TestApp::spawn().await;
    app.redis.stop().await;
    let err = app
        .app
        .store()
        .dedicated_connection(None)
        .await
        .err()
        .expect("connected to a stopped server");
    assert!(
        matches!(err, buddahbot::store::StoreError::Unavailable(_)),
        "{err:?}"
    );
}

/// Connections the server has accepted since it started (`INFO stats`).
async fn connections_accepted(app: &TestApp) -> u64 {
    let mut conn = app.redis_conn().await;
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query_async(&mut conn)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("total_connections_received:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn concurrent_requests_share_the_process_connection() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    // The first requests open the process's two connections: the shared one, and (with the
    // first streamed turn) the subscription to its control channel.
    app.create_thread(&token, "warm").await;
    let warm = app
        .chat(
            &token,
            serde_json::json!({ "messages": [{ "role": "user", "content": "warm" }] }),
        )
        .await;
    assert_eq!(warm.status, reqwest::StatusCode::OK);
    let before = connections_accepted(&app).await;

    let requests = (0..40).map(|i| {
        let (app, token) = (&app, &token);
        async move {
            if i % 2 == 0 {
                app.create_thread(token, "t").await;
            } else {
                let reply = app
                    .chat(
                        token,
                        serde_json::json!({ "messages": [{ "role": "user", "content": "hi" }] }),
                    )
                    .await;
                assert_eq!(reply.status, reqwest::StatusCode::OK);
            }
        }
    });
    futures_util::future::join_all(requests).await;

    // Only the test's own connections (one per `connections_accepted`) were added.
    assert_eq!(connections_accepted(&app).await, before + 1);
}
