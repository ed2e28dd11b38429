//! Connections: requests share the process's one multiplexed connection, and a blocking read
//! gets a dedicated one, so it never holds up the commands queued behind it.

use crate::helpers::{
    TestApp, random_user, stored::assert_a_blocking_read_does_not_hold_up_the_shared_connection,
};

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
