//! Import: our own export back (threads, messages, branches, organisation), a ChatGPT
//! `conversations.json` (its tree, titles, times, the branch it showed), an OpenAI items
//! list; idempotent; one bad conversation fails alone.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code, random_user, turns::thread_turn};

async fn export(app: &TestApp, token: &str) -> Vec<Value> {
    let text = app
        .client
        .get(app.url("/api/export?format=ndjson"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// `POST /api/import` of `body` (shared with the search tests).
pub(crate) async fn import(app: &TestApp, token: &str, body: String) -> (StatusCode, Value) {
    let resp = app
        .client
        .post(app.url("/api/import"))
        .bearer_auth(token)
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    crate::helpers::into_parts(resp).await
}

async fn chat(app: &TestApp, token: &str, body: Value) {
    let reply = app.chat(token, body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
}

#[tokio::test]
async fn an_export_imported_after_deleting_everything_gives_back_the_same_threads() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    // A linear thread, organised; a branched one.
    let (status, plain) = app
        .request(
            Method::POST,
            "/api/threads",
            Some(&token),
            Some(json!({ "title": "Plain", "pinned": true, "tags": ["Work"], "metadata": { "k": "v" }, "externalId": "ext-1" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{plain}");
    let plain = plain["id"].as_str().unwrap().to_owned();
    chat(&app, &token, thread_turn(&plain, "p1", "one")).await;
    chat(&app, &token, thread_turn(&plain, "p2", "two")).await;
    let branched = app.new_thread_id(&token, "Branched").await;
    chat(&app, &token, thread_turn(&branched, "b1", "one")).await;
    chat(&app, &token, thread_turn(&branched, "b2", "two")).await;
    let (_, page) = app.get(&format!("/api/threads/{branched}"), &token).await;
    let r1 = page["messages"][1]["id"].as_str().unwrap().to_owned();
    let mut edit = thread_turn(&branched, "b3", "three");
    edit["parentId"] = json!(r1);
    chat(&app, &token, edit).await;
    let archived = app.new_thread_id(&token, "Archived").await;
    chat(&app, &token, thread_turn(&archived, "a1", "old")).await;
    app.request(
        Method::PATCH,
        &format!("/api/threads/{archived}"),
        Some(&token),
        Some(json!({ "archived": true })),
    )
    .await;

    let before = export(&app, &token).await;
    assert_eq!(before.len(), 3);
    let file: String = before.iter().map(|l| format!("{l}\n")).collect();
    let (status, _) = app
        .request(Method::DELETE, "/api/threads", Some(&token), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(export(&app, &token).await.is_empty());

    let (status, report) = import(&app, &token, file.clone()).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report, json!({ "imported": 3, "skipped": 0, "failed": [] }));
    let after = export(&app, &token).await;
    assert_eq!(
        after, before,
        "the same threads, messages, times, organisation and branches"
    );

    // The branch shown, its versions, and the listings are as they were.
    let (_, page) = app.get(&format!("/api/threads/{branched}"), &token).await;
    assert_eq!(page["messages"][2]["id"], "b3");
    assert_eq!(page["messages"][2]["siblingIds"], json!(["b2", "b3"]));
    let (_, pinned) = app.get("/api/threads?pinned=true", &token).await;
    assert_eq!(pinned["threads"][0]["id"], plain.as_str());
    let (_, by_external) = app.get("/api/threads?externalId=ext-1", &token).await;
    assert_eq!(by_external["threads"][0]["id"], plain.as_str());
    let (_, listed) = app.get("/api/threads", &token).await;
    assert_eq!(
        listed["threads"].as_array().unwrap().len(),
        2,
        "the archived one stays archived"
    );

    // The imported turns are turns: a retry is answered from the store, the thread goes on.
    let replay = app.chat(&token, thread_turn(&plain, "p2", "two")).await;
    assert_eq!(
        replay.text(),
        before
            .iter()
            .find(|l| l["thread"]["id"] == plain.as_str())
            .unwrap()["messages"][3]["content"]
            .as_str()
            .unwrap()
    );
    chat(&app, &token, thread_turn(&plain, "p3", "three")).await;

    // Again: nothing new.
    let (_, report) = import(&app, &token, file).await;
    assert_eq!(report, json!({ "imported": 0, "skipped": 3, "failed": [] }));
}

fn node(
    id: &str,
    role: Option<&str>,
    text: &str,
    parent: Option<&str>,
    children: &[&str],
) -> Value {
    let message = role.map(|role| {
        json!({
            "id": id,
            "author": { "role": role },
            "content": { "content_type": "text", "parts": [text] },
            "create_time": 1_700_000_100.25,
            "metadata": { "model_slug": "gpt-4o" },
        })
    });
    json!({ "id": id, "message": message, "parent": parent, "children": children })
}

#[tokio::test]
async fn a_chatgpt_export_imports_with_its_branches_and_a_broken_conversation_fails_alone() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    // Written for this test in the shape of a ChatGPT data export's conversations.json: a
    // root without a message, a hidden system message, a user message edited once (two
    // versions, each answered), the edited one shown.
    let edited = json!({
        "id": "0a1b2c3d-0000-4000-8000-000000000001",
        "conversation_id": "0a1b2c3d-0000-4000-8000-000000000001",
        "title": "Trip planning",
        "create_time": 1_700_000_000.5,
        "update_time": 1_700_000_500.0,
        "current_node": "a2",
        "mapping": {
            "root": node("root", None, "", None, &["sys"]),
            "sys": node("sys", Some("system"), "", Some("root"), &["u1", "u2"]),
            "u1": node("u1", Some("user"), "Where to go?", Some("sys"), &["a1"]),
            "a1": node("a1", Some("assistant"), "Rome.", Some("u1"), &[]),
            "u2": node("u2", Some("user"), "Where to go in May?", Some("sys"), &["a2"]),
            "a2": node("a2", Some("assistant"), "Lisbon.", Some("u2"), &[]),
        },
    });
    let broken = json!({ "id": "broken-one", "title": "Broken", "mapping": "not a tree" });
    let linear = json!({
        "id": "0a1b2c3d-0000-4000-8000-000000000002",
        "title": "Short",
        "create_time": 1_700_001_000.0,
        "mapping": {
            "x": node("x", Some("user"), "Hi", None, &["y"]),
            "y": node("y", Some("assistant"), "Hello!", Some("x"), &[]),
        },
    });
    let file = json!([edited, broken, linear]).to_string();
    let (status, report) = import(&app, &token, file.clone()).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["imported"], 2);
    assert_eq!(report["failed"].as_array().unwrap().len(), 1);
    assert_eq!(report["failed"][0]["index"], 1);
    assert!(
        report["failed"][0]["error"]
            .as_str()
            .unwrap()
            .contains("mapping")
    );

    let thread = "chatgpt-0a1b2c3d-0000-4000-8000-000000000001";
    let (status, page) = app.get(&format!("/api/threads/{thread}"), &token).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["thread"]["title"], "Trip planning");
    assert_eq!(page["thread"]["createdAt"], "2023-11-14T22:13:20.500Z");
    assert_eq!(page["thread"]["messageCount"], 4);
    let shown: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(
        shown,
        ["Where to go in May?", "Lisbon."],
        "the branch it showed"
    );
    assert_eq!(page["messages"][0]["siblingIds"], json!(["u1", "u2"]));
    assert_eq!(page["messages"][1]["model"], "gpt-4o");
    let (_, other) = app
        .get(&format!("/api/threads/{thread}?leaf=u1"), &token)
        .await;
    assert_eq!(other["messages"][1]["content"], "Rome.");
    let (_, short) = app
        .get(
            "/api/threads/chatgpt-0a1b2c3d-0000-4000-8000-000000000002",
            &token,
        )
        .await;
    assert_eq!(short["messages"].as_array().unwrap().len(), 2);

    let (_, again) = import(&app, &token, file).await;
    assert_eq!(again["imported"], 0);
    assert_eq!(again["skipped"], 2);

    // Another user sees none of it.
    let other_user = app.token_for(&random_user());
    let (status, _) = app
        .get(&format!("/api/threads/{thread}"), &other_user)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_openai_items_list_imports_as_one_thread_once() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let items = json!({
        "object": "list",
        "data": [
            { "type": "message", "id": "msg_1", "role": "user", "content": [{ "type": "input_text", "text": "Weather in Oslo?" }] },
            { "type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\":\"Oslo\"}" },
            { "type": "function_call_output", "id": "fco_1", "call_id": "call_1", "output": "{\"celsius\":3}" },
            { "type": "message", "id": "msg_2", "role": "assistant", "content": [{ "type": "output_text", "text": "3 °C." }] },
        ],
    })
    .to_string();
    let (status, report) = import(&app, &token, items.clone()).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["imported"], 1);
    let (_, list) = app.get("/api/threads", &token).await;
    let thread = list["threads"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(list["threads"][0]["title"], "Weather in Oslo?");
    let (_, page) = app.get(&format!("/api/threads/{thread}"), &token).await;
    let roles: Vec<&str> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "tool", "assistant"]);
    assert_eq!(page["messages"][1]["toolCalls"][0]["name"], "get_weather");
    assert_eq!(page["messages"][2]["toolCallId"], "call_1");
    let (_, again) = import(&app, &token, items).await;
    assert_eq!(again["skipped"], 1);
}

#[tokio::test]
async fn what_is_not_an_export_is_refused() {
    let app = TestApp::spawn_with(|config| config.http.max_import_bytes = 200).await;
    let token = app.token_for(&random_user());
    for (body, code) in [
        ("", "invalid_body"),
        ("42", "invalid_body"),
        ("{\"hello\": 1}", "invalid_body"),
        ("[{\"nothing\": 1}]", "invalid_body"),
        ("[{\"mapping\": ", "invalid_json"),
    ] {
        let (status, answer) = import(&app, &token, body.to_owned()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(error_code(&answer), code, "{body}");
    }
    let (status, answer) = import(&app, &token, "x".repeat(201)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
}

#[tokio::test]
async fn a_file_sent_in_pieces_imports_as_it_arrives_and_a_cut_keeps_what_came_before() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let conversation = |id: &str, text: &str| {
        json!({
            "id": id, "title": format!("About {text}"), "create_time": 1_700_000_000.0,
            "mapping": {
                "x": node("x", Some("user"), text, None, &["y"]),
                "y": node("y", Some("assistant"), "Noted.", Some("x"), &[]),
            },
        })
    };
    let whole = json!([
        conversation("c1", "wombats"),
        conversation("c2", "platypus"),
        conversation("c3", "echidnas"),
    ])
    .to_string();
    // Cut inside the third conversation, and sent 5 bytes at a time (a chunked body).
    let cut = whole[..whole.find("echidnas").unwrap()].to_owned();
    let pieces: Vec<Result<Vec<u8>, std::io::Error>> =
        cut.as_bytes().chunks(5).map(|c| Ok(c.to_vec())).collect();
    let resp = app
        .client
        .post(app.url("/api/import"))
        .bearer_auth(&token)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            pieces,
        )))
        .send()
        .await
        .unwrap();
    let (status, report) = crate::helpers::into_parts(resp).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["imported"], 2, "{report}");
    assert_eq!(report["failed"][0]["index"], 2, "{report}");
    assert!(
        report["failed"][0]["error"]
            .as_str()
            .unwrap()
            .contains("ends inside conversation 2"),
        "{report}"
    );
    // Imported threads are searchable; the whole file later adds only the third.
    let (_, found) = app.get("/api/search?q=platypus", &token).await;
    assert_eq!(found["results"][0]["threadId"], "chatgpt-c2", "{found}");
    let (status, report) = import(&app, &token, whole).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(
        (report["imported"].clone(), report["skipped"].clone()),
        (json!(1), json!(2))
    );
    let (_, found) = app.get("/api/search?q=echidnas", &token).await;
    assert_eq!(found["results"].as_array().unwrap().len(), 2, "{found}");
}
