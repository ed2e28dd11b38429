//! One user can never see or touch another's threads: every attempt is a 404, the same as a
//! thread that does not exist.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, error_code, random_user};

#[tokio::test]
async fn a_user_cannot_read_rename_or_delete_another_users_thread() {
    let app = TestApp::spawn().await;
    let (alice, bob) = (random_user(), random_user());
    let (alice_token, bob_token) = (app.token_for(&alice), app.token_for(&bob));
    let thread = app.create_thread(&bob_token, "bob's secrets").await;
    let path = format!("/api/threads/{}", thread["id"].as_str().unwrap());
    let (_, bob_view_before) = app.get(&path, &bob_token).await;
    let bob_keys_before = app.keys_of(&bob).await;

    let attempts = [
        (Method::GET, None),
        (Method::PATCH, Some(json!({ "title": "pwned" }))),
        (Method::DELETE, None),
    ];
    for (method, body) in attempts {
        let (status, err) = app
            .request(method.clone(), &path, Some(&alice_token), body)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method}: {err}");
        assert_eq!(error_code(&err), "thread_not_found", "{method}");
    }
    let (_, missing) = app.get("/api/threads/does-not-exist", &alice_token).await;
    assert_eq!(
        missing,
        app.get(&path, &alice_token).await.1,
        "indistinguishable from missing"
    );

    let (status, bob_view_after) = app.get(&path, &bob_token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(bob_view_after, bob_view_before);
    assert_eq!(app.keys_of(&bob).await, bob_keys_before);
    assert_eq!(app.keys_of(&alice).await, Vec::<String>::new());
    let (_, alice_list) = app.get("/api/threads", &alice_token).await;
    assert_eq!(alice_list["threads"], json!([]));
}
