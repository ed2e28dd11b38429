//! Looking at what Redis holds, for assertions: every key of a pattern, TTLs, and the check
//! that a blocking read keeps off the shared connection (for one server and for a Cluster).

use std::{collections::HashMap, time::Duration};

use buddahbot::store::Store;
use redis::Value;

use super::eventually;

/// Every key matching `pattern` on the server `conn` talks to, sorted (SCAN, test-only).
pub async fn scan(conn: &mut redis::aio::MultiplexedConnection, pattern: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cursor = 0_u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await
            .unwrap();
        out.extend(batch);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    out.sort();
    out
}

/// `PTTL` of each key, by key.
pub async fn pttls(
    conn: &mut redis::aio::MultiplexedConnection,
    keys: &[String],
) -> HashMap<String, i64> {
    let mut out = HashMap::new();
    for key in keys {
        let ttl: i64 = redis::cmd("PTTL").arg(key).query_async(conn).await.unwrap();
        out.insert(key.clone(), ttl);
    }
    out
}

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
