//! The store against a real redis-server: sliding TTLs, expiry and pruning, `append_messages`.

use std::time::Duration;

use buddahbot::{
    app::App,
    domain::{BranchPlace, ChatMessage, Role, ThreadId, Title, Usage, UserId},
    store::keys,
};
use reqwest::StatusCode;

use crate::helpers::{TestApp, eventually, random_user, stored::pttls, test_config};

const NINETY_DAYS_MS: i64 = 90 * 86_400 * 1000;

/// Asserts each key's TTL is within a second of 90 days.
async fn assert_fresh_ttl(app: &TestApp, keys: &[String], after: &str) {
    let mut conn = app.redis_conn().await;
    for (key, ttl) in pttls(&mut conn, keys).await {
        assert!(
            (NINETY_DAYS_MS - 1000..=NINETY_DAYS_MS).contains(&ttl),
            "after {after}: PTTL of {key} is {ttl}"
        );
    }
}

/// Shortens every key's TTL, so a write that restarts it is visible.
async fn age(app: &TestApp, keys: &[String]) {
    let mut conn = app.redis_conn().await;
    for key in keys {
        let _: i64 = redis::cmd("PEXPIRE")
            .arg(key)
            .arg(60_000)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn every_write_restarts_the_ttl_of_meta_messages_and_index() {
    let app = TestApp::spawn().await;
    let user_raw = random_user();
    let user = UserId::parse(&user_raw).unwrap();
    let token = app.token_for(&user_raw);
    let thread = app.create_thread(&token, "ttl").await;
    let id = ThreadId::parse(thread["id"].as_str().unwrap()).unwrap();
    let all = [
        keys::thread_meta(&user, &id),
        keys::thread_messages(&user, &id),
        keys::thread_index(&user),
    ];
    let meta_and_index = [all[0].clone(), all[2].clone()];
    assert_fresh_ttl(&app, &meta_and_index, "create").await;

    app.app
        .store()
        .append_messages(&user, &id, &[ChatMessage::new(Role::User, "hi")])
        .await
        .unwrap()
        .unwrap();
    assert_fresh_ttl(&app, &all, "the first append").await;

    age(&app, &all).await;
    app.app
        .store()
        .append_messages(&user, &id, &[ChatMessage::new(Role::Assistant, "hello")])
        .await
        .unwrap()
        .unwrap();
    assert_fresh_ttl(&app, &all, "append").await;

    age(&app, &all).await;
    let (status, _) = app.rename(&token, id.as_str(), "renamed").await;
    assert_eq!(status, StatusCode::OK);
    assert_fresh_ttl(&app, &all, "rename").await;

    // Another thread's creation refreshes the shared index too.
    age(&app, &all).await;
    app.create_thread(&token, "second").await;
    assert_fresh_ttl(&app, &all[2..], "creating another thread").await;
}

#[tokio::test]
async fn an_expired_thread_leaves_the_listing_and_the_index() {
    let app = TestApp::spawn().await;
    let user_raw = random_user();
    let user = UserId::parse(&user_raw).unwrap();
    let token = app.token_for(&user_raw);
    // A second process with a TTL of one second writes the short-lived thread.
    let mut short = test_config(&app.redis.url());
    short.store.thread_ttl = Duration::from_secs(1);
    let short = App::new(short).unwrap();
    let doomed = short
        .store()
        .create_thread(&user, None, Some(Title::parse("short-lived").unwrap()))
        .await
        .unwrap()
        .unwrap();
    // The long-lived thread, written after it, keeps the index alive.
    let kept = app.create_thread(&token, "kept").await;
    let meta = keys::thread_meta(&user, &doomed.id);
    let mut conn = app.redis_conn().await;
    let gone = eventually(Duration::from_secs(5), || {
        let mut conn = conn.clone();
        let meta = meta.clone();
        async move {
            let exists: bool = redis::cmd("EXISTS")
                .arg(&meta)
                .query_async(&mut conn)
                .await
                .unwrap();
            (!exists).then_some(())
        }
    })
    .await;
    assert!(gone.is_some(), "the thread never expired");
    let index = keys::thread_index(&user);
    let score: Option<f64> = redis::cmd("ZSCORE")
        .arg(&index)
        .arg(doomed.id.as_str())
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(
        score.is_some(),
        "the index still lists it before a listing prunes it"
    );

    let (_, list) = app.get("/api/threads", &token).await;

    let ids: Vec<&str> = list["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [kept["id"].as_str().unwrap()]);
    let score: Option<f64> = redis::cmd("ZSCORE")
        .arg(&index)
        .arg(doomed.id.as_str())
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(score, None, "listing did not prune the expired id");
}

#[tokio::test]
async fn a_listing_refills_a_page_that_lost_threads_to_expiry() {
    let app = TestApp::spawn().await;
    let user_raw = random_user();
    let user = UserId::parse(&user_raw).unwrap();
    let token = app.token_for(&user_raw);
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(
            app.create_thread(&token, &format!("t{i}")).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        // Threads made in the same millisecond list by id, not in the order made.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // The three newest vanish as if expired.
    let mut conn = app.redis_conn().await;
    for id in &ids[3..] {
        let id = ThreadId::parse(id).unwrap();
        let _: i64 = redis::cmd("DEL")
            .arg(keys::thread_meta(&user, &id))
            .query_async(&mut conn)
            .await
            .unwrap();
    }

    let (_, page) = app.get("/api/threads?limit=2", &token).await;

    let got: Vec<&str> = page["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, [ids[2].as_str(), ids[1].as_str()]);
    assert!(page["nextCursor"].is_string());
    let remaining: u64 = redis::cmd("ZCARD")
        .arg(keys::thread_index(&user))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(remaining, 3);
}

#[tokio::test]
async fn append_messages_stores_them_in_order_and_updates_the_thread() {
    let app = TestApp::spawn().await;
    let user_raw = random_user();
    let user = UserId::parse(&user_raw).unwrap();
    let store = app.app.store();
    let thread = store
        .create_thread(&user, None, Some(Title::parse("chat").unwrap()))
        .await
        .unwrap()
        .unwrap();
    let question = ChatMessage::new(Role::User, "What is 2+2?");
    let mut answer = ChatMessage::new(Role::Assistant, "4");
    answer.model = Some("Hermes-4-70B".into());
    answer.finish_reason = Some("stop".into());
    answer.usage = Some(Usage {
        prompt_tokens: 12,
        completion_tokens: 1,
        reasoning_tokens: None,
    });
    answer.ttft_ms = Some(80);
    answer.duration_ms = Some(95);

    let updated = store
        .append_messages(&user, &thread.id, &[question.clone(), answer.clone()])
        .await
        .unwrap()
        .unwrap();

    assert_eq!(updated.message_count, 2);
    assert_eq!(updated.model.as_deref(), Some("Hermes-4-70B"));
    assert!(updated.updated_at >= thread.updated_at);
    let page = store
        .thread_page(&user, &thread.id, 50, None)
        .await
        .unwrap()
        .unwrap();
    let places: Vec<_> = page.messages.iter().map(|m| m.place.clone()).collect();
    assert_eq!(
        places,
        [
            Some(BranchPlace::among(&question.id, None, Vec::new())),
            Some(BranchPlace::among(
                &answer.id,
                Some(question.id.clone()),
                Vec::new()
            )),
        ],
        "views place each message: it follows the one before it"
    );
    let stored: Vec<_> = page
        .messages
        .into_iter()
        .map(|m| ChatMessage { place: None, ..m })
        .collect();
    assert_eq!(stored, [question, answer]);
    let (_, list) = app.get("/api/threads", &app.token_for(&user_raw)).await;
    assert_eq!(list["threads"][0]["messageCount"], 2);
    assert_eq!(list["threads"][0]["model"], "Hermes-4-70B");
}

#[tokio::test]
async fn append_messages_never_creates_a_missing_thread() {
    let app = TestApp::spawn().await;
    let user_raw = random_user();
    let user = UserId::parse(&user_raw).unwrap();
    let ghost = ThreadId::new();

    let result = app
        .app
        .store()
        .append_messages(&user, &ghost, &[ChatMessage::new(Role::User, "hello?")])
        .await
        .unwrap();

    assert!(result.is_none());
    assert_eq!(app.keys_of(&user_raw).await, Vec::<String>::new());
}
