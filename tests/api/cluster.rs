//! `REDIS_CLUSTER`: the whole API against a private three-primary Redis Cluster, with users
//! picked so that every primary holds some of them. Each user's keys share a hash tag, so
//! every pipeline and script stays in one slot; these tests check that on the real cluster.

use std::{collections::BTreeMap, time::Duration};

use buddahbot::local_redis::{RedisCluster, RedisServer};
use mock_upstream::reply_text;
use redis::aio::MultiplexedConnection;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, error_code, eventually, into_parts,
    pki::TestPki,
    random_user, set_var,
    sse::{Reader, Sse, text_of},
    stored::{assert_a_blocking_read_does_not_hold_up_the_shared_connection, scan},
    turns::{chat_id, get_as, open_chat, slow, stop, ui_turn, user_message},
};

const PRIMARIES: usize = 3;

/// The app on a fresh cluster, seeded with every node's URL, rate limits and the token budget
/// on (so their keys exist too).
async fn cluster_app() -> TestApp<RedisCluster> {
    let cluster = RedisCluster::start(PRIMARIES, None).await.unwrap();
    TestApp::spawn_on(
        cluster,
        |vars| {
            set_var(vars, "REDIS_CLUSTER", "1");
            set_var(vars, "RATE_LIMIT_CHAT_PER_MIN", "100");
            set_var(vars, "RATE_LIMIT_REQUESTS_PER_MIN", "1000");
            set_var(vars, "DAILY_TOKEN_BUDGET", "1000000");
        },
        |_| {},
    )
    .await
}

/// A plain connection to one node (over TLS for a TLS cluster).
async fn conn(node: &RedisServer) -> MultiplexedConnection {
    node.client()
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn keyslot(conn: &mut MultiplexedConnection, key: &str) -> u16 {
    redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query_async(conn)
        .await
        .unwrap()
}

/// Slot ranges by primary port, from `CLUSTER NODES` (`<id> <ip:port@bus> <flags> … <slots>`).
async fn slot_ranges(cluster: &RedisCluster) -> BTreeMap<u16, Vec<(u16, u16)>> {
    let nodes: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(&mut conn(&cluster.nodes()[0]).await)
        .await
        .unwrap();
    let mut ranges = BTreeMap::new();
    for line in nodes.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if !fields[2].contains("master") {
            continue;
        }
        let port: u16 = fields[1]
            .split(['@', ':'])
            .nth(1)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line}"));
        let owned = fields[8..]
            .iter()
            .map(|range| match range.split_once('-') {
                Some((lo, hi)) => (lo.parse().unwrap(), hi.parse().unwrap()),
                None => (range.parse().unwrap(), range.parse().unwrap()),
            })
            .collect();
        ranges.insert(port, owned);
    }
    assert_eq!(ranges.len(), PRIMARIES, "{nodes}");
    ranges
}

/// A user placed on the cluster: the slot of their hash tag and the port of its primary.
struct Placed {
    user: String,
    slot: u16,
    port: u16,
}

/// Random users until every primary holds at least one; one user per primary, in port order.
async fn one_user_per_primary(cluster: &RedisCluster) -> Vec<Placed> {
    let ranges = slot_ranges(cluster).await;
    let mut conn = conn(&cluster.nodes()[0]).await;
    let mut found: BTreeMap<u16, Placed> = BTreeMap::new();
    for _ in 0..200 {
        let user = random_user();
        // The slot of a key with a hash tag is the slot of the tag's content.
        let slot = keyslot(&mut conn, &user).await;
        let port = ranges
            .iter()
            .find(|(_, owned)| owned.iter().any(|(lo, hi)| (*lo..=*hi).contains(&slot)))
            .map(|(port, _)| *port)
            .unwrap_or_else(|| panic!("slot {slot} has no primary: {ranges:?}"));
        found.entry(port).or_insert(Placed { user, slot, port });
        if found.len() == PRIMARIES {
            return found.into_values().collect();
        }
    }
    panic!("200 random users did not cover every primary");
}

/// Every key of `user` on each node (SCAN per node: a cluster has no global keyspace).
async fn keys_by_port(cluster: &RedisCluster, user: &str) -> BTreeMap<u16, Vec<String>> {
    let pattern = format!("user:{{{user}}}:*");
    let mut out = BTreeMap::new();
    for node in cluster.nodes() {
        let mut conn = conn(node).await;
        out.insert(node.port(), scan(&mut conn, &pattern).await);
    }
    out
}

/// Create, list, get, rename, delete one, a chat of two turns, then delete all: for one user.
async fn threads_and_chat_flow(app: &TestApp<RedisCluster>, user: &str) {
    let token = app.token_for(user);
    let first = app.create_thread(&token, "first").await;
    let second = app.create_thread(&token, "second").await;
    let (first_id, second_id) = (
        first["id"].as_str().unwrap(),
        second["id"].as_str().unwrap(),
    );

    let (status, list) = app.get("/api/threads", &token).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let ids: Vec<&str> = list["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{list}");
    assert!(
        ids.contains(&first_id) && ids.contains(&second_id),
        "{list}"
    );

    let (status, renamed) = app.rename(&token, first_id, "renamed").await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    let (status, page) = app.get(&format!("/api/threads/{first_id}"), &token).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["thread"]["title"], "renamed");
    assert_eq!(page["messages"], json!([]));

    let (status, _) = app
        .request(
            Method::DELETE,
            &format!("/api/threads/{second_id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = app.get(&format!("/api/threads/{second_id}"), &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let turn = app
        .chat(&token, json!({ "messages": [user_message("one")] }))
        .await;
    assert_eq!(turn.status, StatusCode::OK);
    assert_eq!(turn.last_data(), Some("[DONE]"));
    assert_eq!(turn.text(), reply_text(16));
    let chat_id = turn.header("x-thread-id").to_owned();
    assert_eq!(app.messages(&token, &chat_id).await.len(), 2);
    let again = app
        .chat(
            &token,
            json!({
                "threadId": chat_id,
                "messages": [
                    user_message("one"),
                    { "role": "assistant", "content": turn.text() },
                    user_message("two"),
                ],
            }),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.last_data(), Some("[DONE]"));
    let contents: Vec<Value> = app
        .messages(&token, &chat_id)
        .await
        .iter()
        .map(|m| m["content"].clone())
        .collect();
    assert_eq!(
        contents,
        [
            json!("one"),
            json!(reply_text(16)),
            json!("two"),
            json!(again.text())
        ]
    );

    // Search: its index and every script of it stay in the user's slot.
    for (q, role) in [("two", "user"), ("renamed", "")] {
        let (status, found) = app.get(&format!("/api/search?q={q}"), &token).await;
        assert_eq!(status, StatusCode::OK, "{found}");
        let results = found["results"].as_array().unwrap();
        assert_eq!(results.len(), 1, "{q}: {found}");
        assert_eq!(
            results[0]["role"].as_str().unwrap_or_default(),
            role,
            "{found}"
        );
    }

    let (status, _) = app
        .request(Method::DELETE, "/api/threads", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, list) = app.get("/api/threads", &token).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["threads"], json!([]), "{list}");
}

#[tokio::test]
async fn threads_and_chats_work_for_users_on_every_primary() {
    let app = cluster_app().await;
    let users = one_user_per_primary(&app.redis).await;

    for placed in &users {
        threads_and_chat_flow(&app, &placed.user).await;
    }
    let (status, health) = app.health(false).await;
    assert_eq!(status, StatusCode::OK, "{health}");
    assert_eq!(health["redis"]["ok"], true, "{health}");

    // Only limit counters are left: delete-all removed every thread key on every node.
    for placed in &users {
        for (port, keys) in keys_by_port(&app.redis, &placed.user).await {
            assert!(
                keys.iter()
                    .all(|k| k.contains(":ratelimit:") || k.contains(":tokens:")),
                "{} on {port}: {keys:?}",
                placed.user
            );
        }
    }
}

#[tokio::test]
async fn every_key_of_a_user_is_in_the_slot_of_their_hash_tag_on_one_primary() {
    let app = cluster_app().await;
    let users = one_user_per_primary(&app.redis).await;

    for placed in &users {
        let token = app.token_for(&placed.user);
        app.create_thread(&token, "listed").await;
        let turn = app
            .chat(&token, json!({ "messages": [user_message("hello")] }))
            .await;
        assert_eq!(turn.status, StatusCode::OK);
    }

    let mut check = conn(&app.redis.nodes()[0]).await;
    for placed in &users {
        let by_port = keys_by_port(&app.redis, &placed.user).await;
        for (port, keys) in &by_port {
            if *port != placed.port {
                assert_eq!(keys, &Vec::<String>::new(), "keys of a user on {port}");
            }
        }
        let keys = &by_port[&placed.port];
        for kind in [
            ":threads",
            ":meta",
            ":messages",
            ":turns",
            ":ratelimit:",
            ":tokens:",
        ] {
            assert!(
                keys.iter().any(|k| k.contains(kind)),
                "no {kind} key: {keys:?}"
            );
        }
        for key in keys {
            assert_eq!(keyslot(&mut check, key).await, placed.slot, "{key}");
        }
    }
}

#[tokio::test]
async fn one_seed_node_is_enough_and_a_blocking_read_does_not_hold_up_the_shared_connection() {
    let cluster = RedisCluster::start(PRIMARIES, None).await.unwrap();
    let seed = cluster.nodes()[2].url();
    let app = TestApp::spawn_on(
        cluster,
        |vars| {
            set_var(vars, "REDIS_URL", seed);
            set_var(vars, "REDIS_CLUSTER", "1");
        },
        |_| {},
    )
    .await;
    let users = one_user_per_primary(&app.redis).await;
    let token = app.token_for(&users[0].user);
    let thread = app.create_thread(&token, "via one seed").await;
    let (status, page) = app
        .get(
            &format!("/api/threads/{}", thread["id"].as_str().unwrap()),
            &token,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");

    let nodes: Vec<String> = app.redis.nodes().iter().map(RedisServer::url).collect();
    let key = format!("user:{{{}}}:stream-test", users[0].user);
    assert_a_blocking_read_does_not_hold_up_the_shared_connection(app.app.store(), &nodes, &key)
        .await;
}

/// `GET /api/threads` for `token` with a client that waits far longer than the app's 500 ms
/// Redis timeouts, so a hang fails as a client timeout rather than passing.
async fn list_status(app: &TestApp<RedisCluster>, token: &str) -> (StatusCode, Value) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let resp = client
        .get(app.url("/api/threads"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    into_parts(resp).await
}

#[tokio::test]
async fn a_stopped_primary_fails_only_its_users_and_is_reconnected_after_a_restart() {
    let mut app = cluster_app().await;
    let users = one_user_per_primary(&app.redis).await;
    let (down, up) = (&users[0], &users[1]);
    let (down_token, up_token) = (app.token_for(&down.user), app.token_for(&up.user));
    app.create_thread(&down_token, "before").await;
    app.create_thread(&up_token, "before").await;
    let index = app
        .redis
        .nodes()
        .iter()
        .position(|n| n.port() == down.port)
        .unwrap();

    app.redis.node_mut(index).unwrap().stop().await;

    let (status, body) = list_status(&app, &down_token).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(error_code(&body), "store_unavailable");
    let (status, body) = list_status(&app, &up_token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["threads"].as_array().unwrap().len(), 1, "{body}");

    app.redis.node_mut(index).unwrap().restart().await.unwrap();
    app.redis.wait_until_ok().await.unwrap();
    let recovered = eventually(Duration::from_secs(10), || async {
        let (status, _) = list_status(&app, &down_token).await;
        (status == StatusCode::OK).then_some(())
    })
    .await;
    assert!(
        recovered.is_some(),
        "the restarted primary was never used again"
    );
    // Persistence is off, so the restarted primary is empty, and writes work again.
    app.create_thread(&down_token, "after").await;
}

#[tokio::test]
async fn a_process_started_while_the_cluster_is_down_answers_503_then_recovers() {
    let mut app = cluster_app().await;
    // Before the first command: the lazy connection has never reached a node.
    for i in 0..PRIMARIES {
        app.redis.node_mut(i).unwrap().stop().await;
    }
    let token = app.token_for(&random_user());

    let (status, body) = list_status(&app, &token).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(error_code(&body), "store_unavailable");

    for i in 0..PRIMARIES {
        app.redis.node_mut(i).unwrap().restart().await.unwrap();
    }
    app.redis.wait_until_ok().await.unwrap();
    let recovered = eventually(Duration::from_secs(10), || async {
        let (status, _) = list_status(&app, &token).await;
        (status == StatusCode::OK).then_some(())
    })
    .await;
    assert!(recovered.is_some(), "the process never reached the cluster");
    app.create_thread(&token, "after the outage").await;
}

#[tokio::test]
async fn threads_work_on_a_tls_cluster_with_the_test_ca() {
    let pki = TestPki::new();
    let cluster = RedisCluster::start(PRIMARIES, Some(pki.files.clone()))
        .await
        .unwrap();
    assert!(cluster.url().starts_with("rediss://"), "{}", cluster.url());
    let ca = pki.files.ca.to_str().unwrap().to_owned();
    let app = TestApp::spawn_on(cluster, |vars| set_var(vars, "REDIS_CA_CERT", ca), |_| {}).await;

    for placed in one_user_per_primary(&app.redis).await {
        let token = app.token_for(&placed.user);
        let created = app.create_thread(&token, "over TLS").await;
        let (status, page) = app.get("/api/threads", &token).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["threads"][0]["id"], created["id"]);
    }
}

#[tokio::test]
async fn streams_resume_and_stop_for_users_on_every_primary() {
    let app = cluster_app().await;
    let placed = one_user_per_primary(&app.redis).await;
    for (i, Placed { user, .. }) in placed.iter().enumerate() {
        let token = app.token_for(user);
        let chat = chat_id();
        let mut live = open_chat(&app, &token, ui_turn(&chat, "u1", &slow(12, 20, "hi"))).await;
        assert_eq!(live.status, StatusCode::OK);
        let seen = live.take(4).await;
        drop(live);
        // The follower's blocking read runs on a cluster connection of its own.
        let resp = get_as(&app, &format!("/api/chat/{chat}/stream"), &token).await;
        let mut resumed = Reader::new(resp);
        assert_eq!(resumed.status, StatusCode::OK, "user {i}");
        let all = resumed.rest().await;
        assert_eq!(&all[..4], &seen[..]);
        assert_eq!(text_of(&all), reply_text(12), "user {i}");
        let kinds: Vec<String> = all.iter().rev().take(2).map(Sse::kind).collect();
        assert_eq!(kinds, ["[DONE]", "finish"], "user {i}");

        // And a stop reaches the generator through the user's primary.
        let mut live = open_chat(&app, &token, ui_turn(&chat, "u2", &slow(300, 20, "long"))).await;
        live.take(4).await;
        let (status, _) = stop(&app, &token, &chat).await;
        assert_eq!(status, StatusCode::ACCEPTED, "user {i}");
        let rest = live.rest().await;
        assert_eq!(rest[rest.len() - 2].kind(), "abort", "user {i}");
        let messages = app.messages(&token, &chat).await;
        assert_eq!(messages.len(), 4, "user {i}");
        assert_eq!(messages[3]["status"], "stopped", "user {i}");
    }
}
