//! `GET/POST/DELETE /api/threads`.

use std::collections::HashSet;

use buddahbot::{
    domain::{ThreadId, UserId},
    store::keys,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, random_user};

async fn list_all(app: &TestApp, token: &str, limit: usize) -> (Vec<Value>, usize) {
    let mut seen = Vec::new();
    let mut pages = 0;
    let mut path = format!("/api/threads?limit={limit}");
    loop {
        let (status, body) = app.get(&path, token).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        pages += 1;
        let threads = body["threads"].as_array().unwrap();
        assert!(threads.len() <= limit);
        seen.extend(threads.iter().cloned());
        match body["nextCursor"].as_str() {
            Some(cursor) => path = format!("/api/threads?limit={limit}&cursor={cursor}"),
            None => {
                assert!(body["nextCursor"].is_null());
                return (seen, pages);
            }
        }
        assert!(pages < 100, "pagination does not end");
    }
}

#[tokio::test]
async fn listing_pages_through_every_thread_newest_first_without_gaps_or_repeats() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let mut created = Vec::new();
    for i in 0..23 {
        created.push(app.create_thread(&token, &format!("thread {i}")).await);
    }

    let (seen, pages) = list_all(&app, &token, 7).await;

    assert_eq!(pages, 4);
    let ids: Vec<&str> = seen.iter().map(|t| t["id"].as_str().unwrap()).collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "a thread appeared twice");
    let want: HashSet<&str> = created.iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(unique, want, "a thread was skipped");
    let stamps: Vec<&str> = seen
        .iter()
        .map(|t| t["updatedAt"].as_str().unwrap())
        .collect();
    assert!(
        stamps.windows(2).all(|w| w[0] >= w[1]),
        "not newest first: {stamps:?}"
    );
    // The newest comes first (threads made in the same millisecond tie, ordered by id).
    assert_eq!(seen[0]["updatedAt"], created[22]["updatedAt"]);
}

#[tokio::test]
async fn threads_updated_in_the_same_millisecond_are_neither_skipped_nor_repeated() {
    let app = TestApp::spawn().await;
    let user = random_user();
    let token = app.token_for(&user);
    let mut want = HashSet::new();
    for i in 0..10 {
        want.insert(
            app.create_thread(&token, &format!("t{i}")).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    // Give every thread the same score, the worst case for a score-based cursor.
    let mut conn = app.redis_conn().await;
    let index = keys::thread_index(&UserId::parse(&user).unwrap());
    for id in &want {
        let () = redis::cmd("ZADD")
            .arg(&index)
            .arg(1_795_000_000_000_i64)
            .arg(id)
            .query_async(&mut conn)
            .await
            .unwrap();
    }

    let (seen, pages) = list_all(&app, &token, 3).await;

    assert_eq!(pages, 4);
    let ids: Vec<String> = seen
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 10, "{ids:?}");
    assert_eq!(ids.into_iter().collect::<HashSet<_>>(), want);
}

#[tokio::test]
async fn a_new_user_has_an_empty_list_and_no_cursor() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let (status, body) = app.get("/api/threads", &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({ "threads": [], "nextCursor": null }));
}

#[tokio::test]
async fn a_created_thread_has_the_documented_shape() {
    let app = TestApp::spawn().await;
    let user = random_user();
    let token = app.token_for(&user);

    let thread = app.create_thread(&token, "  Trip to Rome  ").await;

    let id = thread["id"].as_str().unwrap();
    let uuid = uuid::Uuid::parse_str(id).unwrap();
    assert_eq!(uuid.get_version_num(), 4);
    assert_eq!(thread["title"], "Trip to Rome");
    assert_eq!(thread["userId"], user.as_str());
    assert_eq!(thread["messageCount"], 0);
    assert_eq!(thread["createdAt"], thread["updatedAt"]);
    assert!(thread["createdAt"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn a_post_without_a_body_creates_an_untitled_thread() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let (status, body) = app
        .request(Method::POST, "/api/threads", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["title"], "New chat");
}

#[tokio::test]
async fn a_client_chosen_id_is_accepted_once() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let body = json!({ "id": "Xy7kP2mQ9rT4vW1z", "title": "from useChat" });

    let (first, thread) = app
        .request(
            Method::POST,
            "/api/threads",
            Some(&token),
            Some(body.clone()),
        )
        .await;
    let (second, err) = app
        .request(Method::POST, "/api/threads", Some(&token), Some(body))
        .await;

    assert_eq!(first, StatusCode::CREATED);
    assert_eq!(thread["id"], "Xy7kP2mQ9rT4vW1z");
    assert_eq!(second, StatusCode::CONFLICT);
    assert_eq!(err["error"]["code"], "thread_exists");
}

#[tokio::test]
async fn delete_all_removes_every_key_of_the_user_and_no_other() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (random_user(), random_user());
    let (alice_token, bob_token) = (app.token_for(&alice), app.token_for(&bob));
    for i in 0..5 {
        let t = app.create_thread(&alice_token, &format!("a{i}")).await;
        let id = ThreadId::parse(t["id"].as_str().unwrap()).unwrap();
        let msg = buddahbot::domain::ChatMessage::new(buddahbot::domain::Role::User, "hello");
        app.app
            .store()
            .append_messages(&UserId::parse(&alice).unwrap(), &id, &[msg])
            .await
            .unwrap()
            .unwrap();
    }
    let bob_thread = app.create_thread(&bob_token, "b").await;
    // Bob's search index too, which Alice's deletion must leave alone.
    let (status, _) = app.get("/api/search?q=b", &bob_token).await;
    assert_eq!(status, StatusCode::OK);
    let bob_keys_before = app.keys_of(&bob).await;
    let (status, found) = app.get("/api/search?q=hello", &alice_token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found["results"].as_array().unwrap().len(), 5, "{found}");
    let alice_keys = app.keys_of(&alice).await;
    assert_eq!(
        alice_keys.iter().filter(|k| !k.contains(":search")).count(),
        11,
        "5 meta + 5 messages + index: {alice_keys:?}"
    );
    assert!(
        alice_keys.iter().any(|k| k.contains(":search:")),
        "{alice_keys:?}"
    );

    let (status, body) = app
        .request(Method::DELETE, "/api/threads", Some(&alice_token), None)
        .await;

    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(app.keys_of(&alice).await, Vec::<String>::new());
    assert_eq!(app.keys_of(&bob).await, bob_keys_before);
    let (_, list) = app.get("/api/threads", &bob_token).await;
    assert_eq!(list["threads"][0]["id"], bob_thread["id"]);
    let (_, list) = app.get("/api/threads", &alice_token).await;
    assert_eq!(list["threads"], json!([]));
}
