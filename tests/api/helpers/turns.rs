//! Chat turns: request bodies in each shape the API takes, mock directives, and the requests
//! around a generation (open it, stop it, resume it) plus a generator that died.

use std::time::Duration;

use buddahbot::{
    domain::{ChatMessage, MessageId, ReplyFormat, Role, ThreadId, Title, UserId},
    store::{LimitSet, NewTurn, TurnIds, TurnStart},
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{TestApp, TestRedis, sse::Reader};

/// A fresh chat id shaped like the AI SDK's (16 alphanumerics).
pub fn chat_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..16].to_owned()
}

/// An OpenAI-style user message.
pub fn user_message(content: &str) -> Value {
    json!({ "role": "user", "content": content })
}

/// A turn of one user message in a new thread.
pub fn user_turn(text: &str) -> Value {
    json!({ "messages": [user_message(text)] })
}

/// A turn on `thread` whose user message has the id `id`.
pub fn thread_turn(thread: &str, id: &str, text: &str) -> Value {
    json!({ "threadId": thread, "messages": [{ "id": id, "role": "user", "content": text }] })
}

/// An AI SDK `submit-message` turn of one user message in chat `chat`.
pub fn ui_turn(chat: &str, message_id: &str, text: &str) -> Value {
    json!({
        "id": chat,
        "messages": [{ "id": message_id, "role": "user", "parts": [{ "type": "text", "text": text }] }],
        "trigger": "submit-message",
    })
}

/// A reply of `tokens` words, one every `every_ms`.
pub fn slow(tokens: usize, every_ms: u64, text: &str) -> String {
    format!("[[mock tokens={tokens} inter_token_ms={every_ms}]] {text}")
}

/// `POST /api/chat` with `body`, its event stream open to read event by event.
pub async fn open_chat<R: TestRedis>(app: &TestApp<R>, token: &str, body: Value) -> Reader {
    let resp = app
        .client
        .post(app.url("/api/chat"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    Reader::new(resp)
}

/// `GET path` as the holder of `token`, not read yet.
pub async fn get_as<R: TestRedis>(app: &TestApp<R>, path: &str, token: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// `POST /api/chat/:thread/stop` as the holder of `token`.
pub async fn stop<R: TestRedis>(
    app: &TestApp<R>,
    token: &str,
    thread: &str,
) -> (StatusCode, Value) {
    app.request(
        Method::POST,
        &format!("/api/chat/{thread}/stop"),
        Some(token),
        None,
    )
    .await
}

/// Starts a turn on `thread` as a generator that then dies: nobody renews or releases its
/// lease of `lease`. Its reply id, and the ms of its stream's event ids.
pub async fn dead_generator(
    app: &TestApp,
    user: &str,
    thread: &str,
    lease: Duration,
) -> (MessageId, i64) {
    let reply = MessageId::new();
    let message = ChatMessage::new(Role::User, "lost");
    let ids = TurnIds {
        user: UserId::parse(user).unwrap(),
        thread: ThreadId::parse(thread).unwrap(),
        user_message: message.id.clone(),
        reply: reply.clone(),
    };
    let (start, _) = app
        .app
        .store()
        .begin_turn(
            NewTurn {
                ids: &ids,
                create_with_title: None::<&Title>,
                inputs: std::slice::from_ref(&message),
                lease,
                format: Some(ReplyFormat::Ui),
                regenerate: false,
                placement: &buddahbot::domain::Placement::AfterLeaf,
            },
            &LimitSet::default(),
        )
        .await
        .unwrap();
    let TurnStart::Proceed {
        stream_start_ms, ..
    } = start
    else {
        panic!("the thread was not free: {start:?}")
    };
    (reply, stream_start_ms)
}
