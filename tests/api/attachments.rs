//! Attachments: a user message's files keep their type, URL, name and size; text files given
//! as data URLs reach the model as text (capped), other types are stored, not sent, and named
//! in `x-attachments-skipped`; `GET /api/threads/:id/attachments` lists them.

use base64::{Engine, engine::general_purpose::STANDARD};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code, random_user, turns::chat_id};

fn file(media_type: &str, url: &str, filename: &str) -> Value {
    json!({ "type": "file", "mediaType": media_type, "url": url, "filename": filename })
}

fn turn(chat: &str, parts: Vec<Value>) -> Value {
    json!({
        "id": chat,
        "trigger": "submit-message",
        "messages": [{ "id": "u1", "role": "user", "parts": parts }],
    })
}

/// The text the model was given as the last user message.
fn last_prompt(app: &TestApp) -> String {
    let request = app.mock.requests().pop().unwrap();
    let user = request["messages"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .unwrap()
        .clone();
    match &user["content"] {
        Value::String(text) => text.clone(),
        parts => parts
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

#[tokio::test]
async fn text_attachments_reach_the_model_and_others_are_stored_and_named() {
    let app = TestApp::spawn_with(|config| config.chat.max_attachment_text_chars = 40).await;
    let token = app.token_for(&random_user());
    let chat = chat_id();
    let notes = format!(
        "data:text/plain;base64,{}",
        STANDARD.encode("Bring umbrellas. ☂")
    );
    let table = "data:text/csv,city%2Cdays%0ARome%2C3";
    let long = format!(
        "data:application/json;base64,{}",
        STANDARD.encode("x".repeat(100))
    );
    let pdf = format!(
        "data:application/pdf;base64,{}",
        STANDARD.encode("%PDF-1.7 …")
    );
    let reply = app
        .chat(
            &token,
            turn(
                &chat,
                vec![
                    json!({ "type": "text", "text": "Plan my trip" }),
                    file("text/plain", &notes, "notes.txt"),
                    file("text/csv", table, "days.csv"),
                    file("application/json", &long, "big.json"),
                    file("application/pdf", &pdf, "report.pdf"),
                    file("text/plain", "https://example.com/remote.txt", "remote.txt"),
                ],
            ),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(
        reply.header("x-attachments-skipped"),
        "report.pdf, remote.txt",
        "the types the model cannot read, and a URL the server does not fetch"
    );

    let prompt = last_prompt(&app);
    assert!(prompt.starts_with("Plan my trip"), "{prompt}");
    assert!(
        prompt.contains("Attached file `notes.txt` (text/plain):\nBring umbrellas. ☂"),
        "{prompt}"
    );
    assert!(
        prompt.contains("Attached file `days.csv` (text/csv):\ncity,days\nRome,3"),
        "{prompt}"
    );
    assert!(
        prompt.contains(&format!(
            "{}\n[… cut: 40 of 100 characters]",
            "x".repeat(40)
        )),
        "{prompt}"
    );
    assert!(
        !prompt.contains("PDF") && !prompt.contains("remote.txt"),
        "{prompt}"
    );

    // Stored: the user's own text as the content, every file as a part.
    let (_, page) = app.get(&format!("/api/threads/{chat}"), &token).await;
    let user = &page["messages"][0];
    assert_eq!(user["content"], "Plan my trip");
    let files: Vec<&Value> = user["parts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] == "file")
        .collect();
    assert_eq!(files.len(), 5);
    assert_eq!(files[0]["size"], "Bring umbrellas. ☂".len());
    assert_eq!(files[3]["filename"], "report.pdf");
    assert_eq!(page["thread"]["title"], "Plan my trip");

    let (status, listed) = app
        .get(&format!("/api/threads/{chat}/attachments"), &token)
        .await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    let listed = listed["attachments"].as_array().unwrap();
    let names: Vec<&str> = listed
        .iter()
        .map(|a| a["filename"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "notes.txt",
            "days.csv",
            "big.json",
            "report.pdf",
            "remote.txt"
        ]
    );
    assert_eq!(listed[0]["messageId"], "u1");
    assert_eq!(listed[0]["mediaType"], "text/plain");
    assert_eq!(
        listed[4]["size"],
        Value::Null,
        "a URL's size is unknown unless told"
    );
    let other = app.token_for(&random_user());
    let (status, _) = app
        .get(&format!("/api/threads/{chat}/attachments"), &other)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn unreadable_attachments_are_refused_by_field() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    for (part, field) in [
        (
            file("text/plain", "data:text/plain;base64,@@@", "a.txt"),
            "parts[0].url",
        ),
        (
            file(
                "text/plain",
                &format!("data:text/plain;base64,{}", STANDARD.encode([0xff, 0xfe])),
                "a.txt",
            ),
            "parts[0].url",
        ),
        (
            file("application/pdf", "ftp://example.com/a.pdf", "a.pdf"),
            "parts[0].url",
        ),
        (
            json!({ "type": "file", "url": "https://example.com/a" }),
            "parts[0].mediaType",
        ),
    ] {
        let resp = app
            .client
            .post(app.url("/api/chat"))
            .bearer_auth(&token)
            .json(&turn(&chat_id(), vec![part]))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(error_code(&body), "invalid_body");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(field),
            "{body}"
        );
    }
    assert_eq!(app.mock.calls(), 0, "nothing reached the model");
}
