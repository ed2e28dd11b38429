//! The Responses and Conversations APIs: the official OpenAI SDK end to end, the history the
//! model gets, other users' ids, and the refusals.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code, random_user, run_node_test, run_python_test};

#[tokio::test]
async fn the_openai_sdk_runs_responses_and_conversations() {
    let app = TestApp::spawn().await;
    run_node_test(&app, &random_user(), "responses.test.mjs", &[]).await;
}

#[tokio::test]
async fn the_openai_python_sdk_runs_responses_and_conversations() {
    let app = TestApp::spawn().await;
    run_python_test(&app, &random_user(), "responses_sdk.py").await;
}

async fn create(app: &TestApp, token: &str, body: Value) -> (StatusCode, Value) {
    app.request(Method::POST, "/api/responses", Some(token), Some(body))
        .await
}

#[tokio::test]
async fn a_chained_response_sends_the_model_the_whole_history_and_not_old_instructions() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let (status, first) = create(
        &app,
        &token,
        json!({ "input": "one", "instructions": "Answer in French." }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (_, second) = create(
        &app,
        &token,
        json!({ "input": "two", "previous_response_id": first["id"] }),
    )
    .await;
    let (_, _third) = create(
        &app,
        &token,
        json!({ "input": "three", "previous_response_id": second["id"] }),
    )
    .await;
    let sent = app.mock.requests().pop().unwrap();
    let messages: Vec<(String, String)> = sent["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap().to_owned(),
                m["content"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let texts: Vec<&str> = messages.iter().map(|(_, c)| c.as_str()).collect();
    assert_eq!(texts.len(), 5, "{messages:?}");
    assert_eq!(texts[0], "one");
    assert_eq!(texts[1], first["output"][0]["content"][0]["text"]);
    assert_eq!(texts[2], "two");
    assert_eq!(texts[4], "three");
    assert!(
        messages.iter().all(|(role, _)| role != "system"),
        "instructions are not inherited"
    );
}

#[tokio::test]
async fn other_users_ids_answer_like_missing_ones() {
    let app = TestApp::spawn().await;
    let alice = app.token_for(&random_user());
    let bob = app.token_for(&random_user());
    let (_, response) = create(&app, &alice, json!({ "input": "mine" })).await;
    let id = response["id"].as_str().unwrap();
    let (_, conversation) = app
        .request(
            Method::POST,
            "/api/conversations",
            Some(&alice),
            Some(json!({})),
        )
        .await;
    let conv = conversation["id"].as_str().unwrap();
    let (_, items) = app
        .request(
            Method::POST,
            &format!("/api/conversations/{conv}/items"),
            Some(&alice),
            Some(json!({ "items": [{ "role": "user", "content": "hers" }] })),
        )
        .await;
    let item = items["data"][0]["id"].as_str().unwrap().to_owned();
    for (method, path, body) in [
        (Method::GET, format!("/api/responses/{id}"), None),
        (
            Method::GET,
            format!("/api/responses/{id}/input_items"),
            None,
        ),
        (Method::DELETE, format!("/api/responses/{id}"), None),
        (Method::GET, format!("/api/conversations/{conv}"), None),
        (
            Method::GET,
            format!("/api/conversations/{conv}/items"),
            None,
        ),
        (Method::DELETE, format!("/api/conversations/{conv}"), None),
        (Method::POST, format!("/api/responses/{id}/cancel"), None),
        (
            Method::POST,
            "/api/responses".to_owned(),
            Some(json!({ "input": "x", "conversation": conv })),
        ),
        (
            Method::POST,
            format!("/api/conversations/{conv}"),
            Some(json!({ "metadata": { "a": "b" } })),
        ),
        (
            Method::POST,
            format!("/api/conversations/{conv}/items"),
            Some(json!({ "items": [{ "role": "user", "content": "x" }] })),
        ),
        (
            Method::GET,
            format!("/api/conversations/{conv}/items/{item}"),
            None,
        ),
        (
            Method::DELETE,
            format!("/api/conversations/{conv}/items/{item}"),
            None,
        ),
    ] {
        let (status, body) = app.request(method.clone(), &path, Some(&bob), body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {body}");
    }
    // Continuing another user's response is refused as continuing a missing one is.
    let (status, body) = create(
        &app,
        &bob,
        json!({ "input": "x", "previous_response_id": id }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["param"], "previous_response_id");
    let (_, mine) = app
        .get(&format!("/api/conversations/{conv}/items"), &alice)
        .await;
    assert_eq!(
        mine["data"].as_array().unwrap().len(),
        1,
        "nothing added to Alice's"
    );
    // Nothing of Alice's changed.
    let (status, still) = app.get(&format!("/api/responses/{id}"), &alice).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(still["status"], "completed");
    let (status, _) = app.get(&format!("/api/conversations/{conv}"), &alice).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn bad_requests_are_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let many: Vec<Value> = (0..21)
        .map(|i| json!({ "role": "user", "content": format!("{i}") }))
        .collect();
    let metadata: serde_json::Map<String, Value> =
        (0..17).map(|i| (format!("k{i}"), json!("v"))).collect();
    let cases = [
        (
            json!({ "input": "x", "conversation": "c1", "previous_response_id": "resp_x" }),
            "conversation",
        ),
        (
            json!({ "input": [{ "type": "web_search_call", "status": "completed" }] }),
            "input[0].type",
        ),
        (
            json!({ "input": [{ "type": "reasoning", "summary": [] }] }),
            "input",
        ),
        (
            json!({ "input": [{ "role": "robot", "content": "x" }] }),
            "input[0].role",
        ),
        (json!({ "input": 3 }), "input"),
        (json!({ "input": "x", "metadata": metadata }), "metadata"),
        (
            json!({ "input": "x", "metadata": { "k": "v".repeat(513) } }),
            "metadata.k",
        ),
        (
            json!({ "input": "x", "truncation": "sometimes" }),
            "truncation",
        ),
        (json!({ "input": "x", "top_p": 2 }), "top_p"),
        (
            json!({ "input": "x", "text": { "format": { "type": "json_schema", "name": "s", "schema": { "type": "nope" } } } }),
            "text.format.schema",
        ),
        (
            json!({ "input": "x", "tools": [{ "type": "function", "name": "a b" }] }),
            "tools[0].function.name",
        ),
    ];
    for (body, field) in cases {
        let (status, answer) = create(&app, &token, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        // OpenAI's error shape, which the SDKs raise typed errors from.
        assert_eq!(error_code(&answer), "invalid_body");
        assert_eq!(answer["error"]["type"], "invalid_request_error");
        assert_eq!(answer["error"]["param"], field, "{body}: {answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(&format!("`{field}`")), "{body}: {message}");
    }
    let (status, answer) = create(
        &app,
        &token,
        json!({ "input": "x", "previous_response_id": "resp_nope" }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["error"]["param"], "previous_response_id");
    let (status, answer) = app.get("/api/responses/resp_nope", &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
    assert_eq!(answer["error"]["type"], "not_found_error");
    assert!(answer["error"].as_object().unwrap().contains_key("param"));
    let (status, answer) = app
        .request(
            Method::POST,
            "/api/conversations",
            Some(&token),
            Some(json!({ "items": many })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
}

#[tokio::test]
async fn conversation_items_can_be_added_read_and_deleted_and_metadata_updated() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let (status, conversation) = app
        .request(
            Method::POST,
            "/api/conversations",
            Some(&token),
            Some(json!({ "items": [{ "type": "message", "role": "user", "content": "seed" }] })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{conversation}");
    let id = conversation["id"].as_str().unwrap().to_owned();
    let (status, added) = app
        .request(
            Method::POST,
            &format!("/api/conversations/{id}/items"),
            Some(&token),
            Some(json!({ "items": [
                { "role": "assistant", "content": [{ "type": "output_text", "text": "hello" }] },
                { "type": "function_call", "call_id": "c1", "name": "w", "arguments": "{}" },
                { "type": "function_call_output", "call_id": "c1", "output": "sunny" },
            ] })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{added}");
    let kinds: Vec<&str> = added["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["message", "function_call", "function_call_output"]);

    let (_, items) = app
        .get(&format!("/api/conversations/{id}/items?order=asc"), &token)
        .await;
    let ids: Vec<String> = items["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 4);
    let (status, one) = app
        .get(&format!("/api/conversations/{id}/items/{}", ids[1]), &token)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["content"][0]["text"], "hello");

    let (status, _) = app
        .request(
            Method::DELETE,
            &format!("/api/conversations/{id}/items/{}", ids[1]),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app
        .get(&format!("/api/conversations/{id}/items/{}", ids[1]), &token)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, thread) = app.get(&format!("/api/threads/{id}"), &token).await;
    assert_eq!(
        thread["thread"]["messageCount"], 3,
        "the deleted message is not counted"
    );
    assert_eq!(thread["messages"].as_array().unwrap().len(), 3);

    let (status, updated) = app
        .request(
            Method::POST,
            &format!("/api/conversations/{id}"),
            Some(&token),
            Some(json!({ "metadata": { "a": "b" } })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(updated["metadata"], json!({ "a": "b" }));

    let (status, listed) = app.get("/api/conversations?limit=10", &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["data"][0]["id"], id.as_str());
}

/// Fails the test unless `value` is valid against the OpenAPI document's schema `name` (the
/// Open Responses specification's shapes: `Response`, `ResponseEvent<Type>`, …).
fn check_shape(name: &str, value: &Value) {
    let schema = json!({ "$ref": format!("#/components/schemas/{name}") });
    assert!(
        crate::helpers::contract::SPEC["components"]["schemas"]
            .get(name)
            .is_some(),
        "docs/openapi.json has no schema {name}"
    );
    let errors = crate::helpers::contract::schema_errors(&schema, value);
    assert!(errors.is_empty(), "{name}: {errors:?}\n{value}");
}

/// The document's schema of the Responses API event `kind` (`response.output_text.delta` ->
/// `ResponseEventResponseOutputTextDelta`).
fn event_schema(kind: &str) -> String {
    let words: String = kind
        .split(['.', '_'])
        .map(|w| {
            let mut chars = w.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect();
    format!("ResponseEvent{words}")
}

/// The events of a streamed `POST /api/responses`: (event line, data).
async fn streamed(app: &TestApp, token: &str, body: Value) -> Vec<(String, Value)> {
    let text = app
        .client
        .post(app.url("/api/responses"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains("[DONE]"), "no [DONE] in the Responses API");
    text.split("\n\n")
        .filter(|frame| !frame.trim().is_empty())
        .map(|frame| {
            let name = frame
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap_or_else(|| panic!("every frame names its event: {frame:?}"))
                .to_owned();
            let data = frame
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap();
            (name, serde_json::from_str(data).unwrap())
        })
        .collect()
}

#[tokio::test]
async fn every_streamed_event_and_the_response_have_the_specifications_shape() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let tools = json!([{ "type": "function", "name": "get_weather", "description": null,
        "parameters": { "type": "object", "properties": { "city": { "type": "string" } } } }]);
    for (body, terminal, wanted) in [
        (
            json!({ "stream": true, "tools": tools, "metadata": { "k": "v" },
                "input": "Talk, then call. [[mock tool_calls=get_weather tool_text=1 tokens=4]]" }),
            "response.completed",
            &[
                "response.output_text.delta",
                "response.function_call_arguments.delta",
                "response.function_call_arguments.done",
            ][..],
        ),
        (
            json!({ "stream": true, "max_output_tokens": 3, "input": "Too long. [[mock tokens=20]]" }),
            "response.incomplete",
            &[][..],
        ),
        (
            json!({ "stream": true, "reasoning": { "effort": "medium" },
                "input": "Think first. [[mock think=3 tokens=2]]" }),
            "response.completed",
            &[
                "response.reasoning_text.delta",
                "response.reasoning_text.done",
                "response.output_text.delta",
            ][..],
        ),
    ] {
        let events = streamed(&app, &token, body).await;
        for (i, (name, data)) in events.iter().enumerate() {
            assert_eq!(
                data["type"],
                name.as_str(),
                "the event line names the data's type"
            );
            assert_eq!(
                data["sequence_number"], i as u64,
                "strictly increasing, no gaps"
            );
            check_shape(&event_schema(name), data);
        }
        let kinds: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            kinds
                .iter()
                .filter(|k| k.starts_with("response.completed")
                    || k.starts_with("response.incomplete")
                    || k.starts_with("response.failed"))
                .count(),
            1
        );
        assert_eq!(*kinds.last().unwrap(), terminal, "{kinds:?}");
        for kind in wanted {
            assert!(kinds.contains(kind), "{kind} in {kinds:?}");
        }
        let last = &events.last().unwrap().1["response"];
        check_shape("Response", last);
        // Stored before the terminal event: the same Response comes back.
        let (status, stored) = app
            .get(
                &format!("/api/responses/{}", last["id"].as_str().unwrap()),
                &token,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        check_shape("Response", &stored);
        assert_eq!(stored["output"], last["output"]);
        assert_eq!(stored["status"], last["status"]);
    }
}

#[tokio::test]
async fn a_response_with_store_false_stores_nothing() {
    let app = TestApp::spawn().await;
    let user = random_user();
    let token = app.token_for(&user);
    let (_, kept) = create(&app, &token, json!({ "input": "kept" })).await;
    let thread_keys = |keys: Vec<String>| -> Vec<String> {
        keys.into_iter().filter(|k| k.contains(":thread")).collect()
    };
    let before = thread_keys(app.keys_of(&user).await);
    let (_, before_thread) = app
        .get(
            &format!(
                "/api/responses/{}/input_items",
                kept["id"].as_str().unwrap()
            ),
            &token,
        )
        .await;

    let (status, ephemeral) =
        create(&app, &token, json!({ "input": "gone", "store": false })).await;
    assert_eq!(status, StatusCode::OK, "{ephemeral}");
    assert_eq!(ephemeral["store"], false);
    assert!(
        !ephemeral["output"][0]["content"][0]["text"]
            .as_str()
            .unwrap()
            .is_empty()
    );
    let (status, _) = app
        .get(
            &format!("/api/responses/{}", ephemeral["id"].as_str().unwrap()),
            &token,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "cannot be fetched later");

    // Continuing a stored chain without storing: the model gets the history, the thread
    // gets nothing.
    let events = streamed(
        &app,
        &token,
        json!({ "input": "also gone", "store": false, "stream": true, "previous_response_id": kept["id"] }),
    )
    .await;
    assert_eq!(events.last().unwrap().0, "response.completed");
    let sent = app.mock.requests().pop().unwrap();
    assert_eq!(sent["messages"][0]["content"], "kept");
    assert_eq!(
        thread_keys(app.keys_of(&user).await),
        before,
        "no thread written"
    );
    let (_, after_thread) = app
        .get(
            &format!(
                "/api/responses/{}/input_items",
                kept["id"].as_str().unwrap()
            ),
            &token,
        )
        .await;
    assert_eq!(after_thread, before_thread);
    let (_, threads) = app.get("/api/threads", &token).await;
    assert_eq!(
        threads["threads"][0]["messageCount"], 2,
        "the kept thread is unchanged"
    );
    let (status, refused) = create(
        &app,
        &token,
        json!({ "input": "x", "store": false, "background": true }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refused["error"]["param"], "background");
}

#[tokio::test]
async fn images_and_developer_messages_reach_the_model_as_on_the_chat_route() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let image = "data:image/png;base64,iVBORw0KGgo=";
    let (status, answer) = create(
        &app,
        &token,
        json!({ "input": [
            { "type": "message", "role": "developer", "content": "Describe briefly." },
            { "type": "message", "role": "user", "content": [
                { "type": "input_text", "text": "What is this?" },
                { "type": "input_image", "image_url": image },
            ] },
        ] }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let sent = app.mock.requests().pop().unwrap();
    assert_eq!(sent["messages"][0]["role"], "system");
    assert_eq!(sent["messages"][1]["content"][1]["image_url"]["url"], image);
    let (_, items) = app
        .get(
            &format!(
                "/api/responses/{}/input_items?order=asc",
                answer["id"].as_str().unwrap()
            ),
            &token,
        )
        .await;
    assert_eq!(items["data"][1]["content"][1]["type"], "input_image");
    assert_eq!(items["data"][1]["content"][1]["image_url"], image);
}
