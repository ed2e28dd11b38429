//! Feedback on replies: set, changed, cleared, shown in both formats, listed newest first,
//! refused on user messages and on other users' messages.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code, random_user};

/// A thread with one turn: (thread id, user message id, reply id).
async fn turn(app: &TestApp, token: &str, text: &str) -> (String, String, String) {
    let reply = app
        .chat(
            token,
            json!({ "messages": [{ "role": "user", "content": text }] }),
        )
        .await;
    let thread = reply.header("x-thread-id").to_owned();
    let messages = app.messages(token, &thread).await;
    (
        thread,
        messages[0]["id"].as_str().unwrap().to_owned(),
        messages[1]["id"].as_str().unwrap().to_owned(),
    )
}

fn path(thread: &str, message: &str) -> String {
    format!("/api/threads/{thread}/messages/{message}/feedback")
}

#[tokio::test]
async fn feedback_is_set_changed_cleared_and_shown_in_both_formats() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let (thread, _, reply) = turn(&app, &token, "hello").await;
    let (status, message) = app
        .request(
            Method::PUT,
            &path(&thread, &reply),
            Some(&token),
            Some(json!({ "rating": "up", "comment": "spot on" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{message}");
    assert_eq!(message["feedback"]["rating"], "up");
    let stored = app.messages(&token, &thread).await;
    assert_eq!(stored[1]["feedback"]["comment"], "spot on");
    assert_eq!(
        stored[1]["content"], message["content"],
        "the reply itself is unchanged"
    );

    let (_, _) = app
        .request(
            Method::PUT,
            &path(&thread, &reply),
            Some(&token),
            Some(json!({ "rating": "down" })),
        )
        .await;
    let (_, ui) = app
        .get(&format!("/api/threads/{thread}?format=ui"), &token)
        .await;
    assert_eq!(ui["messages"][1]["metadata"]["feedback"]["rating"], "down");
    assert!(
        ui["messages"][1]["metadata"]["feedback"]
            .get("comment")
            .is_none()
    );

    let (status, _) = app
        .request(Method::DELETE, &path(&thread, &reply), Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        app.messages(&token, &thread).await[1]
            .get("feedback")
            .is_none()
    );
    let (_, listed) = app.get("/api/feedback", &token).await;
    assert_eq!(listed["feedback"], json!([]));
}

#[tokio::test]
async fn bad_feedback_is_refused_with_status_and_code() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let other = app.token_for(&random_user());
    let (thread, user_message, reply) = turn(&app, &token, "hello").await;
    let long = "x".repeat(2001);
    let cases: Vec<(String, Option<&str>, Value, StatusCode, &str)> = vec![
        (
            path(&thread, &reply),
            Some(&token),
            json!({ "rating": "meh" }),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            path(&thread, &reply),
            Some(&token),
            json!({}),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            path(&thread, &reply),
            Some(&token),
            json!({ "rating": "up", "comment": 3 }),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            path(&thread, &reply),
            Some(&token),
            json!({ "rating": "up", "comment": long }),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            path(&thread, &user_message),
            Some(&token),
            json!({ "rating": "up" }),
            StatusCode::BAD_REQUEST,
            "invalid_body",
        ),
        (
            path(&thread, "nope"),
            Some(&token),
            json!({ "rating": "up" }),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            path("nope", &reply),
            Some(&token),
            json!({ "rating": "up" }),
            StatusCode::NOT_FOUND,
            "thread_not_found",
        ),
        (
            path(&thread, &reply),
            Some(&other),
            json!({ "rating": "up" }),
            StatusCode::NOT_FOUND,
            "thread_not_found",
        ),
        (
            path(&thread, &reply),
            None,
            json!({ "rating": "up" }),
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        ),
    ];
    let comment_ok = "y".repeat(2000);
    for (path, token, body, status, code) in cases {
        let (got, answer) = app
            .request(Method::PUT, &path, token, Some(body.clone()))
            .await;
        assert_eq!(got, status, "{path} {body}: {answer}");
        assert_eq!(error_code(&answer), code, "{path} {body}");
    }
    let (status, _) = app
        .request(
            Method::PUT,
            &path(&thread, &reply),
            Some(&token),
            Some(json!({ "rating": "up", "comment": comment_ok })),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "2,000 characters is the limit, not over it"
    );
    assert!(
        app.messages(&token, &thread).await[0]
            .get("feedback")
            .is_none()
    );
}

#[tokio::test]
async fn the_users_feedback_is_listed_newest_first_without_gaps_or_repeats() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let mut rated = Vec::new();
    for i in 0..5 {
        let (thread, _, reply) = turn(&app, &token, &format!("q{i}")).await;
        app.request(
            Method::PUT,
            &path(&thread, &reply),
            Some(&token),
            Some(json!({ "rating": "up" })),
        )
        .await;
        rated.push(reply);
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    // Another user's feedback never shows.
    let other = app.token_for(&random_user());
    let (thread, _, reply) = turn(&app, &other, "theirs").await;
    app.request(
        Method::PUT,
        &path(&thread, &reply),
        Some(&other),
        Some(json!({ "rating": "down" })),
    )
    .await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = cursor
            .as_ref()
            .map_or("/api/feedback?limit=2".to_owned(), |c| {
                format!("/api/feedback?limit=2&cursor={c}")
            });
        let (status, page) = app.get(&query, &token).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for entry in page["feedback"].as_array().unwrap() {
            seen.push(entry["messageId"].as_str().unwrap().to_owned());
        }
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    rated.reverse();
    assert_eq!(seen, rated);
    // A deleted thread's feedback leaves the list.
    let (thread, _, reply) = turn(&app, &token, "soon gone").await;
    app.request(
        Method::PUT,
        &path(&thread, &reply),
        Some(&token),
        Some(json!({ "rating": "up" })),
    )
    .await;
    app.request(
        Method::DELETE,
        &format!("/api/threads/{thread}"),
        Some(&token),
        None,
    )
    .await;
    let (_, page) = app.get("/api/feedback?limit=50", &token).await;
    assert_eq!(page["feedback"].as_array().unwrap().len(), 5);
}
