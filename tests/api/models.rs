//! `GET /api/models`: the allowed models in OpenAI's list format, the default marked (the
//! OpenAI SDK's `models.list()` is in `tests/js/responses.test.mjs`).

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, random_user};

#[tokio::test]
async fn the_models_are_the_allowed_ones_with_the_default_marked() {
    let app = TestApp::spawn_on(
        buddahbot::local_redis::RedisServer::start().await.unwrap(),
        |vars| {
            vars.push(("ALLOWED_MODELS".into(), "Hermes-4-405B,Hermes-4-70B".into()));
            vars.push(("DEFAULT_MODEL".into(), "Hermes-4-405B".into()));
        },
        |_| {},
    )
    .await;
    let token = app.token_for(&random_user());

    let (status, list) = app.get("/api/models", &token).await;

    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["object"], "list");
    let data = list["data"].as_array().unwrap();
    let ids: Vec<&str> = data.iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["Hermes-4-405B", "Hermes-4-70B"]);
    assert_eq!(
        data[0],
        json!({ "id": "Hermes-4-405B", "object": "model", "created": 0, "owned_by": "127.0.0.1", "default": true })
    );
    assert_eq!(data[1]["default"], false);
}

#[tokio::test]
async fn one_model_is_read_by_id_and_an_unknown_one_is_404_in_openai_shape() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());

    let (status, model) = app.get("/api/models/Hermes-4-70B", &token).await;
    assert_eq!(status, StatusCode::OK, "{model}");
    assert_eq!(model["id"], "Hermes-4-70B");
    assert_eq!(model["default"], true);

    let (status, body) = app.get("/api/models/gpt-0", &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["type"], "not_found_error", "{body}");
}

#[tokio::test]
async fn the_models_need_credentials() {
    let app = TestApp::spawn().await;

    let (status, body) = app
        .request(reqwest::Method::GET, "/api/models", None, None)
        .await;

    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["type"], "authentication_error", "{body}");
}
