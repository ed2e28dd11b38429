//! Branches: a regenerate, an AI SDK edit (`submit-message` with `messageId`) or a
//! `parentId` adds a sibling; `GET /api/threads/:id` reads the active branch (or `?leaf=`'s)
//! with each message's `parentId`, `branch` and `siblingIds`; `PATCH {activeLeafId}`
//! switches; forks, shares, exports and Responses follow branches; threads stored before
//! branches existed read and continue as they did.

use buddahbot::{
    domain::{ChatMessage, MessageId, Placement, Role, ThreadId, Title, UserId},
    store::{BranchPage, BranchRead, LeafSet, LimitSet, NewTurn, StreamEnd, TurnIds, TurnStart},
};
use mock_upstream::reply_text;
use redis::AsyncCommands;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, error_code, random_user, run_node_test,
    turns::{chat_id, open_chat, slow, thread_turn, ui_turn},
};

fn ids(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The thread's active branch (or `?leaf=`'s), as `GET /api/threads/:id` answers it.
async fn branch(app: &TestApp, token: &str, thread: &str, leaf: Option<&str>) -> Value {
    let query = leaf.map_or_else(String::new, |leaf| format!("?leaf={leaf}"));
    let (status, page) = app
        .get(&format!("/api/threads/{thread}{query}"), token)
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page
}

fn messages(page: &Value) -> Vec<Value> {
    page["messages"].as_array().unwrap().clone()
}

/// An AI SDK turn, read to the end: the reply's id (its `start` chunk's `messageId`).
async fn ui_reply(app: &TestApp, token: &str, body: Value) -> String {
    let mut reply = open_chat(app, token, body).await;
    assert_eq!(reply.status, StatusCode::OK);
    let events = reply.rest().await;
    assert_eq!(events.last().unwrap().data, "[DONE]");
    events[0].json()["messageId"].as_str().unwrap().to_owned()
}

/// A native turn on `thread` (OpenAI-shaped messages), read to the end.
async fn turn(app: &TestApp, token: &str, body: Value) {
    let reply = app.chat(token, body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

async fn patch(app: &TestApp, token: &str, thread: &str, body: Value) -> (StatusCode, Value) {
    app.request(
        Method::PATCH,
        &format!("/api/threads/{thread}"),
        Some(token),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn regenerate_adds_a_sibling_reply_and_keeps_the_old_one_readable() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let chat = chat_id();
    let user =
        json!({ "id": "u1", "role": "user", "parts": [{ "type": "text", "text": "Tell me" }] });
    let old = ui_reply(
        &app,
        &token,
        json!({ "id": chat, "messages": [user], "trigger": "submit-message" }),
    )
    .await;

    // As `useChat` sends it: the history up to the user message, and the reply to replace.
    let new = ui_reply(
        &app,
        &token,
        json!({ "id": chat, "messages": [user], "trigger": "regenerate-message", "messageId": old }),
    )
    .await;
    assert_ne!(new, old, "a new reply gets a new id");

    let page = branch(&app, &token, &chat, None).await;
    let shown = messages(&page);
    assert_eq!(
        ids(&shown),
        ["u1", new.as_str()],
        "the active branch ends at the new reply"
    );
    assert_eq!(page["thread"]["activeLeafId"], new.as_str());
    assert_eq!(page["thread"]["messageCount"], 3, "every version is kept");
    assert_eq!(shown[0]["parentId"], Value::Null);
    assert_eq!(shown[0]["branch"], json!({ "index": 0, "count": 1 }));
    assert!(shown[0].get("siblingIds").is_none());
    assert_eq!(shown[1]["parentId"], "u1");
    assert_eq!(shown[1]["branch"], json!({ "index": 1, "count": 2 }));
    assert_eq!(shown[1]["siblingIds"], json!([old, new]));
    assert!(shown[1].get("supersededBy").is_none());

    // The old reply is intact, on its own branch.
    let before = messages(&branch(&app, &token, &chat, Some(&old)).await);
    assert_eq!(ids(&before), ["u1", old.as_str()]);
    assert_eq!(before[1]["content"], reply_text(16).as_str());
    assert_eq!(before[1]["branch"], json!({ "index": 0, "count": 2 }));

    // `useChat` seeds its history from the UI shape: the active branch, with the versions.
    let (_, ui) = app
        .get(&format!("/api/threads/{chat}?format=ui"), &token)
        .await;
    let ui = messages(&ui);
    assert_eq!(ids(&ui), ["u1", new.as_str()]);
    assert_eq!(
        ui[1]["metadata"]["branch"],
        json!({ "index": 1, "count": 2 })
    );
    assert_eq!(ui[1]["metadata"]["siblingIds"], json!([old, new]));

    // Once the conversation moved on, an earlier reply can still be regenerated: a third
    // version, and the branch the conversation went on in stays.
    let next = json!({ "id": "u2", "role": "user", "parts": [{ "type": "text", "text": "More" }] });
    let assistant =
        json!({ "id": new, "role": "assistant", "parts": [{ "type": "text", "text": "x" }] });
    let later = ui_reply(
        &app,
        &token,
        json!({ "id": chat, "messages": [user, assistant, next], "trigger": "submit-message" }),
    )
    .await;
    let third = ui_reply(
        &app,
        &token,
        json!({ "id": chat, "messages": [user], "trigger": "regenerate-message", "messageId": new }),
    )
    .await;
    let shown = messages(&branch(&app, &token, &chat, None).await);
    assert_eq!(ids(&shown), ["u1", third.as_str()]);
    assert_eq!(shown[1]["branch"], json!({ "index": 2, "count": 3 }));
    let kept = messages(&branch(&app, &token, &chat, Some("u2")).await);
    assert_eq!(ids(&kept), ["u1", new.as_str(), "u2", later.as_str()]);

    // Switching to the second version goes down to its newest leaf.
    let (status, thread) = patch(&app, &token, &chat, json!({ "activeLeafId": new })).await;
    assert_eq!(status, StatusCode::OK, "{thread}");
    assert_eq!(thread["activeLeafId"], later.as_str());
    let shown = messages(&branch(&app, &token, &chat, None).await);
    assert_eq!(ids(&shown), ["u1", new.as_str(), "u2", later.as_str()]);
}

#[tokio::test]
async fn an_ai_sdk_edit_adds_a_sibling_user_message_once_and_regenerate_follows_it() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let chat = chat_id();
    let first = ui_reply(&app, &token, ui_turn(&chat, "u1", "Hello")).await;

    // `sendMessage({text, messageId})`: the edited message under its own id, and the id of
    // the message it edits.
    let mut edit = ui_turn(&chat, "u1", "Hello again");
    edit["messageId"] = json!("u1");
    let answer = ui_reply(&app, &token, edit.clone()).await;
    let page = branch(&app, &token, &chat, None).await;
    let shown = messages(&page);
    let edited = shown[0]["id"].as_str().unwrap().to_owned();
    assert_ne!(edited, "u1", "the new version has an id of its own");
    assert_eq!(ids(&shown), [edited.as_str(), answer.as_str()]);
    assert_eq!(shown[0]["content"], "Hello again");
    assert_eq!(shown[0]["branch"], json!({ "index": 1, "count": 2 }));
    assert_eq!(shown[0]["siblingIds"], json!(["u1", edited]));
    assert_eq!(shown[1]["parentId"], edited.as_str());
    assert_eq!(page["thread"]["messageCount"], 4);

    // The same edit sent again (a retry) is answered from the store: nothing new.
    let again = ui_reply(&app, &token, edit).await;
    assert_eq!(again, answer);
    assert_eq!(
        branch(&app, &token, &chat, None).await["thread"]["messageCount"],
        4
    );

    // The client still calls the edited message `u1`: a regenerate means the version it
    // shows.
    let regenerated = ui_reply(
        &app,
        &token,
        json!({
            "id": chat,
            "messages": [{ "id": "u1", "role": "user", "parts": [{ "type": "text", "text": "Hello again" }] }],
            "trigger": "regenerate-message",
        }),
    )
    .await;
    let shown = messages(&branch(&app, &token, &chat, None).await);
    assert_eq!(ids(&shown), [edited.as_str(), regenerated.as_str()]);
    assert_eq!(shown[1]["siblingIds"], json!([answer, regenerated]));

    // The original is where it was.
    let original = messages(&branch(&app, &token, &chat, Some("u1")).await);
    assert_eq!(ids(&original), ["u1", first.as_str()]);
    assert_eq!(original[0]["content"], "Hello");
}

#[tokio::test]
async fn parent_id_branches_from_any_message_and_bad_ones_are_refused() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let thread = app.new_thread_id(&token, "branches").await;
    turn(&app, &token, thread_turn(&thread, "m1", "one")).await;
    turn(&app, &token, thread_turn(&thread, "m2", "two")).await;
    let linear = messages(&branch(&app, &token, &thread, None).await);
    let r1 = linear[1]["id"].as_str().unwrap().to_owned();
    let r2 = linear[3]["id"].as_str().unwrap().to_owned();
    assert_eq!(linear[2]["parentId"], r1.as_str());
    assert_eq!(linear[3]["branch"], json!({ "index": 0, "count": 1 }));
    let mut conn = app.redis_conn().await;

    // A new message under r1: beside m2.
    let mut body = thread_turn(&thread, "m3", "three");
    body["parentId"] = json!(r1);
    turn(&app, &token, body).await;
    let shown = messages(&branch(&app, &token, &thread, None).await);
    assert_eq!(ids(&shown)[..3], ["m1", r1.as_str(), "m3"]);
    assert_eq!(shown.len(), 4);
    assert_eq!(shown[2]["parentId"], r1.as_str());
    assert_eq!(shown[2]["branch"], json!({ "index": 1, "count": 2 }));
    assert_eq!(shown[2]["siblingIds"], json!(["m2", "m3"]));
    let r3 = shown[3]["id"].as_str().unwrap().to_owned();

    // The other branch is one `?leaf=` away, and the thread remembers neither as deleted.
    let other = messages(&branch(&app, &token, &thread, Some("m2")).await);
    assert_eq!(ids(&other), ["m1", r1.as_str(), "m2", r2.as_str()]);
    let (status, body) = app
        .get(&format!("/api/threads/{thread}?leaf=nope"), &token)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(error_code(&body), "not_found");

    // Refusals name the field and store nothing.
    for (body, field) in [
        (
            json!({ "threadId": thread, "parentId": "missing", "messages": [{ "role": "user", "content": "x" }] }),
            "`parentId`",
        ),
        (
            json!({ "threadId": thread, "parentId": "bad id!", "messages": [{ "role": "user", "content": "x" }] }),
            "`parentId`",
        ),
        (
            json!({ "threadId": thread, "parentId": 7, "messages": [{ "role": "user", "content": "x" }] }),
            "parentId",
        ),
    ] {
        let (status, answer) = app
            .request(Method::POST, "/api/chat", Some(&token), Some(body))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert!(
            answer["error"]["message"].as_str().unwrap().contains(field),
            "{answer}"
        );
    }
    let mut both = ui_turn(&thread, "m9", "x");
    both["messageId"] = json!("m9");
    both["parentId"] = json!(r1);
    let (status, answer) = app
        .request(Method::POST, "/api/chat", Some(&token), Some(both))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let page = branch(&app, &token, &thread, None).await;
    assert_eq!(page["thread"]["messageCount"], 6);
    assert_eq!(page["thread"]["activeLeafId"], r3.as_str());

    // The tree lives under the user's hash tag, and goes with the thread.
    let keys: Vec<String> = conn
        .keys(format!("user:*:thread:{thread}:tree"))
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let (status, _) = app
        .request(
            Method::DELETE,
            &format!("/api/threads/{thread}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let left: Vec<String> = conn
        .keys(format!("user:*:thread:{thread}:*"))
        .await
        .unwrap();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn switching_branches_changes_what_reads_show_and_where_the_next_turn_goes() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let thread = app.new_thread_id(&token, "switch").await;
    turn(&app, &token, thread_turn(&thread, "m1", "one")).await;
    turn(&app, &token, thread_turn(&thread, "m2", "two")).await;
    let r1 = messages(&branch(&app, &token, &thread, None).await)[1]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut body = thread_turn(&thread, "m3", "three");
    body["parentId"] = json!(r1);
    turn(&app, &token, body).await;
    let before = branch(&app, &token, &thread, None).await;
    let updated_at = before["thread"]["updatedAt"].clone();

    // Naming any message of the other branch switches to its newest leaf.
    let (status, switched) = patch(&app, &token, &thread, json!({ "activeLeafId": "m2" })).await;
    assert_eq!(status, StatusCode::OK, "{switched}");
    let shown = messages(&branch(&app, &token, &thread, None).await);
    assert_eq!(ids(&shown)[2], "m2");
    assert_eq!(switched["activeLeafId"], shown[3]["id"]);
    assert_eq!(
        switched["updatedAt"], updated_at,
        "switching writes no message"
    );
    let (_, ui) = app
        .get(&format!("/api/threads/{thread}?format=ui"), &token)
        .await;
    assert_eq!(ids(&messages(&ui)), ids(&shown));

    // The next turn goes after the branch shown.
    turn(&app, &token, thread_turn(&thread, "m4", "four")).await;
    let shown = messages(&branch(&app, &token, &thread, None).await);
    assert_eq!(
        ids(&shown)[2..5],
        ["m2", shown[3]["id"].as_str().unwrap(), "m4"]
    );
    assert_eq!(shown.len(), 6);

    // Refusals.
    for (body, status, code) in [
        (json!({ "activeLeafId": "nope" }), 400, "invalid_body"),
        (json!({ "activeLeafId": 5 }), 400, "invalid_body"),
    ] {
        let (got, answer) = patch(&app, &token, &thread, body).await;
        assert_eq!(got.as_u16(), status, "{answer}");
        assert_eq!(error_code(&answer), code);
    }
    let other = app.token_for(&random_user());
    let (got, _) = patch(&app, &other, &thread, json!({ "activeLeafId": "m2" })).await;
    assert_eq!(
        got,
        StatusCode::NOT_FOUND,
        "another user's thread is not there"
    );

    // While a reply is generated, its branch stays the one shown.
    let mut slow_turn = open_chat(
        &app,
        &token,
        thread_turn(&thread, "m5", &slow(40, 20, "five")),
    )
    .await;
    slow_turn.take(2).await;
    let (got, answer) = patch(&app, &token, &thread, json!({ "activeLeafId": "m3" })).await;
    assert_eq!(got, StatusCode::CONFLICT, "{answer}");
    assert_eq!(error_code(&answer), "generation_in_progress");
    slow_turn.rest().await;
    let (got, _) = patch(&app, &token, &thread, json!({ "activeLeafId": "m3" })).await;
    assert_eq!(got, StatusCode::OK);
}

#[tokio::test]
async fn a_branch_pages_without_gaps_or_repeats() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let thread = app.new_thread_id(&token, "pages").await;
    for i in 0..6 {
        turn(&app, &token, thread_turn(&thread, &format!("a{i}"), "x")).await;
    }
    // Branch at the third reply and go on there.
    let r2 = messages(&branch(&app, &token, &thread, None).await)[5]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut body = thread_turn(&thread, "b0", "y");
    body["parentId"] = json!(r2);
    turn(&app, &token, body).await;
    for i in 1..5 {
        turn(&app, &token, thread_turn(&thread, &format!("b{i}"), "y")).await;
    }
    let whole = ids(&messages(
        &app.get(&format!("/api/threads/{thread}?limit=100"), &token)
            .await
            .1,
    ));
    assert_eq!(whole.len(), 6 + 10);
    assert_eq!(whole[6], "b0");
    let mut paged: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = cursor.map_or_else(String::new, |c| format!("&before={c}"));
        let (status, page) = app
            .get(&format!("/api/threads/{thread}?limit=5{query}"), &token)
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let mut older = ids(&messages(&page));
        assert!(older.len() <= 5);
        older.extend(paged);
        paged = older;
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(paged, whole);
}

/// Writes a thread as the service stored it before branches: no tree, no `activeLeafId`,
/// a regenerated reply kept in the list marked `supersededBy`.
async fn store_old_thread(app: &TestApp, user: &str, thread: &str, messages: &[Value]) {
    let mut conn = app.redis_conn().await;
    let tag = format!("user:{{{user}}}");
    let now = 1_795_000_000_000_i64;
    let meta = format!("{tag}:thread:{thread}:meta");
    let _: () = redis::pipe()
        .hset_multiple(
            &meta,
            &[
                ("id", thread.to_owned()),
                ("userId", user.to_owned()),
                ("title", "From before".to_owned()),
                ("createdAt", now.to_string()),
                ("updatedAt", now.to_string()),
                ("messageCount", messages.len().to_string()),
                ("lastStatus", "idle".to_owned()),
            ],
        )
        .rpush(
            format!("{tag}:thread:{thread}:messages"),
            messages.iter().map(Value::to_string).collect::<Vec<_>>(),
        )
        .zadd(format!("{tag}:threads"), thread, now)
        .query_async(&mut conn)
        .await
        .unwrap();
    // Turn states as they were: each user message's reply by list index.
    let mut turns = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        if message["role"] == "assistant" && message.get("supersededBy").is_none() {
            let user_message = (0..i)
                .rev()
                .find(|&j| messages[j]["role"] == "user")
                .unwrap();
            turns.push((
                messages[user_message]["id"].as_str().unwrap().to_owned(),
                format!("d:{i}:{}", message["id"].as_str().unwrap()),
            ));
        }
    }
    let _: () = conn
        .hset_multiple(format!("{tag}:thread:{thread}:turns"), &turns)
        .await
        .unwrap();
}

fn old_message(id: &str, role: &str, content: &str) -> Value {
    json!({ "id": id, "role": role, "content": content, "createdAt": "2026-11-20T10:00:00.000Z" })
}

#[tokio::test]
async fn threads_stored_before_branches_read_and_continue_as_before() {
    let app = TestApp::spawn().await;
    let user = random_user();
    let token = app.token_for(&user);

    // A linear thread reads as it did, gains `activeLeafId`, and stays without a tree.
    let plain = [
        old_message("p1", "user", "Hi"),
        old_message("p2", "assistant", "Hello"),
    ];
    store_old_thread(&app, &user, "old-plain", &plain).await;
    let page = branch(&app, &token, "old-plain", None).await;
    let shown = messages(&page);
    assert_eq!(ids(&shown), ["p1", "p2"]);
    assert_eq!(shown[1]["content"], "Hello");
    assert_eq!(shown[1]["parentId"], "p1");
    assert_eq!(page["thread"]["activeLeafId"], "p2");
    turn(&app, &token, thread_turn("old-plain", "p3", "More")).await;
    let shown = messages(&branch(&app, &token, "old-plain", None).await);
    assert_eq!(ids(&shown)[..3], ["p1", "p2", "p3"]);
    assert_eq!(shown.len(), 4);
    // A retry of an old turn is answered from the store, as before.
    let replay = app.chat(&token, thread_turn("old-plain", "p1", "Hi")).await;
    assert_eq!(replay.text(), "Hello");
    let mut conn = app.redis_conn().await;
    let tree: bool = conn
        .exists(format!("user:{{{user}}}:thread:old-plain:tree"))
        .await
        .unwrap();
    assert!(!tree, "a linear thread needs no tree");

    // A regenerated reply of before is a sibling of the one that replaced it.
    let regenerated = [
        old_message("q1", "user", "Tell me"),
        json!({ "supersededBy": "q3", "id": "q2", "role": "assistant", "content": "First", "createdAt": "2026-11-20T10:00:01.000Z" }),
        old_message("q3", "assistant", "Second"),
        old_message("q4", "user", "And?"),
        old_message("q5", "assistant", "Third"),
    ];
    store_old_thread(&app, &user, "old-regen", &regenerated).await;
    let page = branch(&app, &token, "old-regen", None).await;
    let shown = messages(&page);
    assert_eq!(ids(&shown), ["q1", "q3", "q4", "q5"]);
    assert_eq!(shown[1]["siblingIds"], json!(["q2", "q3"]));
    assert_eq!(shown[1]["branch"], json!({ "index": 1, "count": 2 }));
    assert_eq!(page["thread"]["activeLeafId"], "q5");
    assert_eq!(page["thread"]["messageCount"], 5);
    let replaced = messages(&branch(&app, &token, "old-regen", Some("q2")).await);
    assert_eq!(ids(&replaced), ["q1", "q2"]);
    assert_eq!(replaced[1]["content"], "First");
    assert_eq!(
        replaced[1]["supersededBy"], "q3",
        "old data stays as it was"
    );
    let (_, ui) = app.get("/api/threads/old-regen?format=ui", &token).await;
    assert_eq!(ids(&messages(&ui)), ["q1", "q3", "q4", "q5"]);
    turn(&app, &token, thread_turn("old-regen", "q6", "Go on")).await;
    let shown = messages(&branch(&app, &token, "old-regen", None).await);
    assert_eq!(ids(&shown)[..5], ["q1", "q3", "q4", "q5", "q6"]);
    let replay = app
        .chat(&token, thread_turn("old-regen", "q4", "And?"))
        .await;
    assert_eq!(replay.text(), "Third");
}

#[tokio::test]
async fn forks_shares_and_exports_follow_branches() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let thread = app.new_thread_id(&token, "source").await;
    turn(&app, &token, thread_turn(&thread, "m1", "one")).await;
    turn(&app, &token, thread_turn(&thread, "m2", "two")).await;
    let first = messages(&branch(&app, &token, &thread, None).await);
    let (r1, r2) = (
        first[1]["id"].as_str().unwrap().to_owned(),
        first[3]["id"].as_str().unwrap().to_owned(),
    );
    let mut body = thread_turn(&thread, "m3", "three");
    body["parentId"] = json!(r1);
    turn(&app, &token, body).await;
    let active = ids(&messages(&branch(&app, &token, &thread, None).await));

    // A fork up to a message of the other branch copies exactly that branch.
    let (status, fork) = app
        .request(
            Method::POST,
            &format!("/api/threads/{thread}/fork"),
            Some(&token),
            Some(json!({ "messageId": r2 })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{fork}");
    let copied = messages(&branch(&app, &token, fork["id"].as_str().unwrap(), None).await);
    assert_eq!(ids(&copied), ["m1", r1.as_str(), "m2", r2.as_str()]);
    assert!(copied.iter().all(|m| m.get("siblingIds").is_none()));

    // A share shows the active branch.
    let (status, share) = app
        .request(
            Method::POST,
            &format!("/api/threads/{thread}/share"),
            Some(&token),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{share}");
    let (status, shared) = app
        .request(
            Method::GET,
            &format!("/api/shared/{}", share["token"].as_str().unwrap()),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{shared}");
    let texts: Vec<&str> = shared["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "user")
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["one", "three"]);

    // The export holds every branch, each message with its parent; its Markdown, the active
    // branch.
    let (status, export) = app
        .get(&format!("/api/threads/{thread}/export?format=json"), &token)
        .await;
    assert_eq!(status, StatusCode::OK);
    let all = messages(&export);
    assert_eq!(all.len(), 6);
    let parent_of = |id: &str| {
        all.iter().find(|m| m["id"] == id).unwrap()["parentId"]
            .as_str()
            .map(str::to_owned)
    };
    assert_eq!(parent_of("m2"), Some(r1.clone()));
    assert_eq!(parent_of("m3"), Some(r1.clone()));
    assert_eq!(parent_of("m1"), None);
    assert_eq!(export["thread"]["activeLeafId"], active[3].as_str());
    let markdown = app
        .client
        .get(app.url(&format!("/api/threads/{thread}/export?format=markdown")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        markdown.contains("three") && !markdown.contains("\ntwo\n"),
        "{markdown}"
    );
    assert!(markdown.contains("(version 2 of 2)"), "{markdown}");
}

#[tokio::test]
async fn a_response_continued_from_an_earlier_one_starts_a_branch() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let create = |body: Value| {
        let app = &app;
        let token = token.clone();
        async move {
            let (status, response) = app
                .request(Method::POST, "/api/responses", Some(&token), Some(body))
                .await;
            assert_eq!(status, StatusCode::OK, "{response}");
            response
        }
    };
    let first = create(json!({ "model": "Hermes-4-70B", "input": "one" })).await;
    let second = create(
        json!({ "model": "Hermes-4-70B", "input": "two", "previous_response_id": first["id"] }),
    )
    .await;
    let third = create(
        json!({ "model": "Hermes-4-70B", "input": "three", "previous_response_id": first["id"] }),
    )
    .await;

    // Both continuations stay retrievable; the thread shows the newest.
    for response in [&first, &second, &third] {
        let (status, got) = app
            .get(
                &format!("/api/responses/{}", response["id"].as_str().unwrap()),
                &token,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{got}");
        assert_eq!(got["output"], response["output"]);
    }
    let thread = first["id"].as_str().unwrap().rsplit('_').next().unwrap();
    let shown = messages(&branch(&app, &token, thread, None).await);
    let texts: Vec<&str> = shown
        .iter()
        .filter(|m| m["role"] == "user")
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["one", "three"]);
    assert_eq!(shown[2]["branch"], json!({ "index": 1, "count": 2 }));
}

#[tokio::test]
async fn the_ai_sdk_client_edits_regenerates_and_switches() {
    let app = TestApp::spawn().await;
    run_node_test(&app, &random_user(), "branches.test.mjs", &[]).await;
}

/// One turn through the store's scripts: `question` placed as asked (or, with `regenerate`,
/// the turn of `question` answered again), and its reply.
async fn store_turn(
    app: &TestApp,
    user: &UserId,
    thread: &ThreadId,
    question: &ChatMessage,
    placement: &Placement,
    regenerate: bool,
) -> TurnStart {
    let ids = TurnIds {
        user: user.clone(),
        thread: thread.clone(),
        user_message: question.id.clone(),
        reply: MessageId::new(),
    };
    let title = Title::parse("random").unwrap();
    let (start, _) = app
        .app
        .store()
        .begin_turn(
            NewTurn {
                ids: &ids,
                create_with_title: Some(&title),
                inputs: std::slice::from_ref(question),
                lease: std::time::Duration::from_secs(30),
                format: None,
                regenerate,
                placement,
            },
            &LimitSet::default(),
        )
        .await
        .unwrap();
    if let TurnStart::Proceed { turn_key, .. } = &start {
        let ids = TurnIds {
            user_message: turn_key.clone(),
            ..ids
        };
        let mut reply = ChatMessage::new(Role::Assistant, "reply");
        reply.id = ids.reply.clone();
        app.app
            .store()
            .finish_turn(&ids, &reply, None, None, StreamEnd::NONE)
            .await
            .unwrap();
    }
    start
}

#[tokio::test]
async fn the_active_branch_agrees_with_the_tree_after_any_mix_of_branch_operations() {
    let app = TestApp::spawn().await;
    let user = UserId::parse(&random_user()).unwrap();
    let thread = ThreadId::parse("random-tree").unwrap();
    let store = app.app.store();
    // A fixed pseudo-random walk (an LCG), so a failure replays.
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: usize| {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        usize::try_from(seed >> 33).unwrap() % n.max(1)
    };
    let mut users: Vec<ChatMessage> = Vec::new();
    let mut all: Vec<MessageId> = Vec::new();
    for step in 0..120 {
        let question = ChatMessage::new(Role::User, format!("q{step}"));
        let op = if users.is_empty() { 0 } else { next(10) };
        match op {
            0..=4 => {
                store_turn(
                    &app,
                    &user,
                    &thread,
                    &question,
                    &Placement::AfterLeaf,
                    false,
                )
                .await;
            }
            5 => {
                let under = all[next(all.len())].clone();
                store_turn(
                    &app,
                    &user,
                    &thread,
                    &question,
                    &Placement::Under(under),
                    false,
                )
                .await;
            }
            6 => {
                let beside = users[next(users.len())].id.clone();
                store_turn(
                    &app,
                    &user,
                    &thread,
                    &question,
                    &Placement::Beside(beside),
                    false,
                )
                .await;
            }
            7 | 8 => {
                let again = users[next(users.len())].clone();
                store_turn(&app, &user, &thread, &again, &Placement::AfterLeaf, true).await;
                assert_branch_agrees(store, &user, &thread).await;
                continue;
            }
            _ => {
                let to = all[next(all.len())].clone();
                assert!(matches!(
                    store.set_active_leaf(&user, &thread, &to).await.unwrap(),
                    LeafSet::Done(_)
                ));
                assert_branch_agrees(store, &user, &thread).await;
                continue;
            }
        }
        users.push(question);
        let (_, messages) = store.whole_thread(&user, &thread).await.unwrap().unwrap();
        all = messages.iter().map(|m| m.id.clone()).collect();
        assert_branch_agrees(store, &user, &thread).await;
    }

    let deepest = assert_branch_agrees(store, &user, &thread).await;
    assert!(
        deepest.len() > 10,
        "a deep enough branch: {}",
        deepest.len()
    );
    assert!(
        deepest
            .iter()
            .filter(|m| m.place.as_ref().unwrap().branch.count > 1)
            .count()
            > 1,
        "versions on the branch shown"
    );
}

/// Reads the active branch a page at a time and checks it against the tree's own account of
/// it (up from the leaf by parent, with every message's versions); returns it.
async fn assert_branch_agrees(
    store: &buddahbot::store::Store,
    user: &UserId,
    thread: &ThreadId,
) -> Vec<ChatMessage> {
    // The tree's own account of the active branch: up from the leaf by parent.
    let (meta, messages) = store.whole_thread(user, thread).await.unwrap().unwrap();
    let by_id: std::collections::HashMap<_, _> = messages.iter().map(|m| (&m.id, m)).collect();
    let mut expected = Vec::new();
    let mut at = meta.active_leaf_id.clone();
    while let Some(id) = at {
        let message = by_id[&id];
        expected.push(message.clone());
        at = message.place.as_ref().unwrap().parent_id.clone();
    }
    expected.reverse();

    // Read a page at a time: the same messages, in the same places.
    let mut read: Vec<ChatMessage> = Vec::new();
    let mut before = None;
    loop {
        let BranchPage::Page(page) = store
            .branch_page(user, thread, 7, before, BranchRead::Active)
            .await
            .unwrap()
        else {
            panic!("the thread is there");
        };
        let mut older = page.messages;
        older.extend(read);
        read = older;
        match page.next {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    assert_eq!(read, expected);
    expected
}
