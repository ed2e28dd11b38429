//! Each route of a many-route function takes its own methods only (found by the response
//! checks against the OpenAPI document): a method of the function's main route no longer
//! reaches it from another of its routes.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{TestApp, error_code, random_user};

#[tokio::test]
async fn a_route_refuses_the_methods_of_its_functions_other_routes() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let id = app.new_thread_id(&token, "kept").await;
    let cases = [
        // Reached `DELETE /api/threads`: every thread deleted.
        (Method::DELETE, "/api/search".to_owned(), "GET, HEAD"),
        (Method::DELETE, "/api/export".to_owned(), "GET, HEAD"),
        (Method::DELETE, "/api/import".to_owned(), "POST"),
        (Method::DELETE, "/api/shared/abc/copy".to_owned(), "POST"),
        // Reached `POST /api/threads`: a thread made.
        (Method::POST, "/api/search".to_owned(), "GET, HEAD"),
        (Method::POST, "/api/export".to_owned(), "GET, HEAD"),
        // Reached `GET /api/threads`.
        (Method::GET, "/api/import".to_owned(), "POST"),
        // Reached `PATCH /api/threads/:id`: the thread renamed.
        (
            Method::PATCH,
            format!("/api/threads/{id}/share"),
            "POST, DELETE",
        ),
        (Method::PATCH, format!("/api/threads/{id}/title"), "POST"),
        // Answered 404 instead of 405.
        (Method::GET, format!("/api/threads/{id}/fork"), "POST"),
        (Method::GET, "/api/responses".to_owned(), "POST"),
        (
            Method::DELETE,
            "/api/conversations".to_owned(),
            "GET, HEAD, POST",
        ),
        (
            Method::GET,
            "/api/responses/resp_x/cancel".to_owned(),
            "POST",
        ),
        (
            Method::POST,
            format!("/api/conversations/{id}/items/msg_x"),
            "GET, HEAD, DELETE",
        ),
    ];
    for (method, path, allow) in cases {
        let resp = app
            .client
            .request(method.clone(), app.url(&path))
            .bearer_auth(&token)
            .json(&json!({ "title": "renamed" }))
            .send()
            .await
            .unwrap();
        assert_eq!(
            resp.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert_eq!(resp.headers()["allow"], allow, "{method} {path}");
        let (_, body) = crate::helpers::into_parts(resp).await;
        assert_eq!(
            body["error"]["code"], "method_not_allowed",
            "{method} {path}: {body}"
        );
    }
    let (status, list) = app.get("/api/threads", &token).await;
    assert_eq!(status, StatusCode::OK);
    let threads = list["threads"].as_array().unwrap();
    assert_eq!(threads.len(), 1, "nothing made or deleted: {list}");
    assert_eq!(threads[0]["title"], "kept");

    let (status, body) = app.get(&format!("/api/threads/{id}/nothing"), &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&body), "not_found");
}
