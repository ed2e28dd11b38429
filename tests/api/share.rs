//! Share links (public snapshots), forks and "continue as my copy".

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, random_user};

async fn thread_with_turns(app: &TestApp, token: &str, turns: usize) -> (String, Vec<Value>) {
    let first = app
        .chat(
            token,
            json!({ "messages": [{ "role": "user", "content": "turn 0" }] }),
        )
        .await;
    let thread = first.header("x-thread-id").to_owned();
    let mut history = vec![
        json!({ "role": "user", "content": "turn 0" }),
        json!({ "role": "assistant", "content": first.text() }),
    ];
    for t in 1..turns {
        let mut messages = history.clone();
        messages.push(json!({ "role": "user", "content": format!("turn {t}") }));
        let reply = app
            .chat(token, json!({ "threadId": thread, "messages": messages }))
            .await;
        history.push(json!({ "role": "user", "content": format!("turn {t}") }));
        history.push(json!({ "role": "assistant", "content": reply.text() }));
    }
    (thread.clone(), app.messages(token, &thread).await)
}

/// `GET /api/shared/:token` with no credentials at all.
async fn public(app: &TestApp, token: &str) -> (StatusCode, Value, Option<String>) {
    let resp = reqwest::get(app.url(&format!("/api/shared/{token}")))
        .await
        .unwrap();
    let cache = resp
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap().to_owned());
    let status = resp.status();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, body, cache)
}

#[tokio::test]
async fn a_shared_thread_reads_publicly_without_private_fields_and_stops_at_once_when_revoked() {
    let app = TestApp::spawn().await;
    let user = random_user();
    let token = app.token_for(&user);
    let (thread, messages) = thread_with_turns(&app, &token, 2).await;
    let reply = messages[1]["id"].as_str().unwrap();
    app.request(
        Method::PUT,
        &format!("/api/threads/{thread}/messages/{reply}/feedback"),
        Some(&token),
        Some(json!({ "rating": "up", "comment": "private" })),
    )
    .await;

    let (status, link) = app
        .request(
            Method::POST,
            &format!("/api/threads/{thread}/share"),
            Some(&token),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{link}");
    let share = link["token"].as_str().unwrap().to_owned();
    assert!(share.len() >= 22, "at least 128 random bits");
    assert!(!share.contains(&thread) && !share.contains(&user));
    assert_eq!(link["url"], format!("/api/shared/{share}"));

    let (status, page, cache) = public(&app, &share).await;
    assert_eq!(status, StatusCode::OK);
    assert!(cache.unwrap().starts_with("public"));
    assert_eq!(page["messages"].as_array().unwrap().len(), 4);
    assert_eq!(page["messages"][0]["content"], "turn 0");
    let text = page.to_string();
    for private in [
        user.as_str(),
        "private",
        "usage",
        "promptTokens",
        "feedback",
        "model",
        "userId",
    ] {
        assert!(!text.contains(private), "{private} leaked: {text}");
    }
    let (_, shown) = app.get(&format!("/api/threads/{thread}"), &token).await;
    assert_eq!(shown["thread"]["share"]["token"], share.as_str());

    // Re-sharing updates the snapshot under the same token.
    let mut history: Vec<Value> = messages
        .iter()
        .map(|m| json!({ "role": m["role"], "content": m["content"] }))
        .collect();
    history.push(json!({ "role": "user", "content": "turn 2" }));
    app.chat(&token, json!({ "threadId": thread, "messages": history }))
        .await;
    let (_, again) = app
        .request(
            Method::POST,
            &format!("/api/threads/{thread}/share"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(again["token"], share.as_str());
    assert_eq!(
        public(&app, &share).await.1["messages"]
            .as_array()
            .unwrap()
            .len(),
        6
    );

    // Another user can neither share, revoke nor read the owner's thread.
    let other = app.token_for(&random_user());
    for method in [Method::POST, Method::DELETE] {
        let (status, _) = app
            .request(
                method,
                &format!("/api/threads/{thread}/share"),
                Some(&other),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    assert_eq!(public(&app, &share).await.0, StatusCode::OK, "still shared");

    let (status, _) = app
        .request(
            Method::DELETE,
            &format!("/api/threads/{thread}/share"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        public(&app, &share).await.0,
        StatusCode::NOT_FOUND,
        "revoked at once"
    );
    let (_, shown) = app.get(&format!("/api/threads/{thread}"), &token).await;
    assert_eq!(shown["thread"]["share"], Value::Null);
    assert_eq!(public(&app, "not-a-token").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_share_dies_with_its_thread_and_its_expiry_and_copies_belong_to_the_caller() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let (thread, _) = thread_with_turns(&app, &token, 1).await;
    let (status, link) = app
        .request(
            Method::POST,
            &format!("/api/threads/{thread}/share"),
            Some(&token),
            Some(json!({ "expiresInDays": 7 })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let share = link["token"].as_str().unwrap().to_owned();
    assert!(link["expiresAt"].is_string());
    let mut redis = app.redis_conn().await;
    let ttl: i64 = redis::cmd("PTTL")
        .arg(format!("shared:{{{share}}}"))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(
        ttl > 6 * 86_400_000 && ttl <= 7 * 86_400_000,
        "expiry by TTL: {ttl}"
    );
    for days in [json!(0), json!(366), json!("7")] {
        let (status, _) = app
            .request(
                Method::POST,
                &format!("/api/threads/{thread}/share"),
                Some(&token),
                Some(json!({ "expiresInDays": days })),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{days}");
    }

    // Continue as my copy: another user's own new thread.
    let bob_user = random_user();
    let bob = app.token_for(&bob_user);
    let (status, copy) = app
        .request(
            Method::POST,
            &format!("/api/shared/{share}/copy"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{copy}");
    assert_eq!(copy["userId"], bob_user.as_str());
    let copied = app.messages(&bob, copy["id"].as_str().unwrap()).await;
    assert_eq!(copied.len(), 2);
    assert_eq!(copied[0]["content"], "turn 0");
    let (status, _) = app
        .request(
            Method::POST,
            &format!("/api/shared/{share}/copy"),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    app.request(
        Method::DELETE,
        &format!("/api/threads/{thread}"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(public(&app, &share).await.0, StatusCode::NOT_FOUND);
    let exists: bool = redis::cmd("EXISTS")
        .arg(format!("shared:{{{share}}}"))
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!(!exists, "the snapshot is deleted with its thread");
}

#[tokio::test]
async fn a_fork_copies_exactly_the_branch_up_to_the_message() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let (thread, messages) = thread_with_turns(&app, &token, 3).await;
    let upto = messages[3]["id"].as_str().unwrap();
    let (status, fork) = app
        .request(
            Method::POST,
            &format!("/api/threads/{thread}/fork"),
            Some(&token),
            Some(json!({ "messageId": upto })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{fork}");
    assert!(fork["title"].as_str().unwrap().ends_with("(fork)"));
    assert_eq!(
        fork["forkedFrom"],
        json!({ "threadId": thread, "messageId": upto })
    );
    let forked = app.messages(&token, fork["id"].as_str().unwrap()).await;
    let want: Vec<&Value> = messages[..4].iter().map(|m| &m["content"]).collect();
    let got: Vec<&Value> = forked.iter().map(|m| &m["content"]).collect();
    assert_eq!(got, want);
    let (status, whole) = app
        .request(
            Method::POST,
            &format!("/api/threads/{thread}/fork"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        app.messages(&token, whole["id"].as_str().unwrap())
            .await
            .len(),
        6
    );
    let (status, _) = app
        .request(
            Method::POST,
            &format!("/api/threads/{thread}/fork"),
            Some(&token),
            Some(json!({ "messageId": "nope" })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let other = app.token_for(&random_user());
    let (status, _) = app
        .request(
            Method::POST,
            &format!("/api/threads/{thread}/fork"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn public_reads_are_limited_per_client_address() {
    let app = TestApp::spawn_with(|config| {
        config.limits.public_per_minute = std::num::NonZeroU32::new(3);
    })
    .await;
    let token = app.token_for(&random_user());
    let (thread, _) = thread_with_turns(&app, &token, 1).await;
    let (_, link) = app
        .request(
            Method::POST,
            &format!("/api/threads/{thread}/share"),
            Some(&token),
            None,
        )
        .await;
    let url = app.url(&format!("/api/shared/{}", link["token"].as_str().unwrap()));
    let get = |ip: &'static str| {
        let url = url.clone();
        async move {
            reqwest::Client::new()
                .get(url)
                .header("x-forwarded-for", ip)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    for _ in 0..3 {
        assert_eq!(get("203.0.113.7").await, StatusCode::OK);
    }
    assert_eq!(get("203.0.113.7").await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        get("198.51.100.2").await,
        StatusCode::OK,
        "another address has its own budget"
    );
}
