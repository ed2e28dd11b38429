//! `GET/PATCH/DELETE /api/threads/:id`, and the life of a thread.

use buddahbot::domain::{ChatMessage, Role, ThreadId, UserId};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, random_user};

/// Appends `n` user/assistant messages numbered from `from` through the store (the chat
/// endpoint that will normally write them is not built yet).
async fn append(app: &TestApp, user: &str, thread: &str, from: usize, n: usize) {
    let messages: Vec<ChatMessage> = (from..from + n)
        .map(|i| {
            let role = if i % 2 == 0 {
                Role::User
            } else {
                Role::Assistant
            };
            ChatMessage::new(role, format!("message {i}"))
        })
        .collect();
    app.app
        .store()
        .append_messages(
            &UserId::parse(user).unwrap(),
            &ThreadId::parse(thread).unwrap(),
            &messages,
        )
        .await
        .unwrap()
        .expect("thread exists");
}

fn contents(body: &Value) -> Vec<String> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap().to_owned())
        .collect()
}

fn numbered(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("message {i}")).collect()
}

#[tokio::test]
async fn a_thread_is_created_listed_read_renamed_and_deleted() {
    let app = TestApp::spawn().await;
    let user = random_user();
    let token = app.token_for(&user);

    let thread = app.create_thread(&token, "First").await;
    let id = thread["id"].as_str().unwrap();
    let (_, list) = app.get("/api/threads", &token).await;
    assert_eq!(list["threads"][0]["id"], id);

    append(&app, &user, id, 0, 4).await;
    let (status, page) = app.get(&format!("/api/threads/{id}"), &token).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(contents(&page), numbered(0..4));
    assert_eq!(page["thread"]["messageCount"], 4);
    assert_eq!(page["messages"][0]["role"], "user");
    assert_eq!(page["messages"][1]["role"], "assistant");
    assert!(page["nextCursor"].is_null());

    let (status, renamed) = app.rename(&token, id, "Renamed").await;
    assert_eq!(status, StatusCode::OK, "{renamed}");
    assert_eq!(renamed["title"], "Renamed");
    assert_eq!(renamed["messageCount"], 4);
    let (_, list) = app.get("/api/threads", &token).await;
    assert_eq!(list["threads"][0]["title"], "Renamed");

    let (status, _) = app
        .request(
            Method::DELETE,
            &format!("/api/threads/{id}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app.get(&format!("/api/threads/{id}"), &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "thread_not_found");
    let (_, list) = app.get("/api/threads", &token).await;
    assert_eq!(list["threads"], json!([]));
    assert_eq!(app.keys_of(&user).await, Vec::<String>::new());
}

#[tokio::test]
async fn messages_page_back_in_time_from_the_latest() {
    let app = TestApp::spawn().await;
    let user = random_user();
    let token = app.token_for(&user);
    let id = app.new_thread_id(&token, "long").await;
    append(&app, &user, &id, 0, 60).await;
    append(&app, &user, &id, 60, 60).await;

    let (_, first) = app.get(&format!("/api/threads/{id}"), &token).await;
    assert_eq!(
        contents(&first),
        numbered(70..120),
        "default limit is 50, oldest first"
    );
    let cursor = first["nextCursor"].as_str().unwrap();
    let (_, second) = app
        .get(&format!("/api/threads/{id}?before={cursor}"), &token)
        .await;
    assert_eq!(contents(&second), numbered(20..70));
    let cursor = second["nextCursor"].as_str().unwrap();
    let (_, third) = app
        .get(
            &format!("/api/threads/{id}?before={cursor}&limit=15"),
            &token,
        )
        .await;
    assert_eq!(contents(&third), numbered(5..20));
    let cursor = third["nextCursor"].as_str().unwrap();
    let (_, last) = app
        .get(
            &format!("/api/threads/{id}?before={cursor}&limit=15"),
            &token,
        )
        .await;
    assert_eq!(contents(&last), numbered(0..5));
    assert!(last["nextCursor"].is_null());
    assert_eq!(last["thread"]["messageCount"], 120);
}

#[tokio::test]
async fn an_empty_thread_reads_as_no_messages() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let id = app.new_thread_id(&token, "empty").await;
    let (status, page) = app.get(&format!("/api/threads/{id}?limit=1"), &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["messages"], json!([]));
    assert!(page["nextCursor"].is_null());
}

#[tokio::test]
async fn an_id_query_parameter_beside_the_paths_is_refused_not_guessed() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let id = app.new_thread_id(&token, "real").await;
    let other = app.new_thread_id(&token, "other").await;
    // The platform passes the path's segment as `?id=`; a second one (wherever the platform
    // puts it) makes the request name two threads: neither is read.
    for query in [format!("id={other}"), format!("id={id}")] {
        let (status, page) = app.get(&format!("/api/threads/{id}?{query}"), &token).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{query}: {page}");
    }
    let (status, page) = app.get(&format!("/api/threads/{id}"), &token).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["thread"]["id"], id.as_str());
}
