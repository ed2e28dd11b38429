//! Organisation: archived, pinned, tags, metadata and external ids on threads, their
//! validation, and the filtered listings (newest first, paged without gaps or repeats).

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, error_code, random_user};

async fn create(app: &TestApp, token: &str, body: Value) -> (StatusCode, Value) {
    app.request(Method::POST, "/api/threads", Some(token), Some(body))
        .await
}

async fn patch(app: &TestApp, token: &str, id: &str, body: Value) -> (StatusCode, Value) {
    app.request(
        Method::PATCH,
        &format!("/api/threads/{id}"),
        Some(token),
        Some(body),
    )
    .await
}

/// Every thread id a listing query gives, page by page (2 at a time).
async fn list_all(app: &TestApp, token: &str, query: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/threads?limit=2{query}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let (status, page) = app.get(&path, token).await;
        assert_eq!(status, StatusCode::OK, "{path}: {page}");
        for thread in page["threads"].as_array().unwrap() {
            ids.push(thread["id"].as_str().unwrap().to_owned());
        }
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return ids,
        }
    }
}

#[tokio::test]
async fn every_organisation_field_is_checked_with_status_and_code() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let tags = |n: usize| Value::Array((0..n).map(|i| json!(format!("t{i}"))).collect());
    let metadata =
        |n: usize| Value::Object((0..n).map(|i| (format!("k{i}"), json!("v"))).collect());
    let ok = [
        json!({ "archived": true, "pinned": false }),
        json!({ "tags": tags(20) }),
        json!({ "tags": ["x".repeat(50)] }),
        json!({ "metadata": metadata(16) }),
        json!({ "metadata": { "k".repeat(64): "v".repeat(512) } }),
        json!({ "externalId": "e".repeat(128) }),
    ];
    for (i, body) in ok.into_iter().enumerate() {
        let (status, answer) = create(&app, &token, body.clone()).await;
        assert_eq!(status, StatusCode::CREATED, "{body}: {answer}");
        let id = answer["id"].as_str().unwrap().to_owned();
        // The same through PATCH, on another thread.
        let (_, other) = create(&app, &token, json!({})).await;
        let mut body = body;
        if body.get("externalId").is_some() {
            body["externalId"] = json!(format!("other-{i}"));
        }
        let (status, answer) =
            patch(&app, &token, other["id"].as_str().unwrap(), body.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body}: {answer}");
        let _ = id;
    }
    let bad = [
        (json!({ "archived": "yes" }), "archived"),
        (json!({ "pinned": 1 }), "pinned"),
        (json!({ "tags": "a" }), "tags"),
        (json!({ "tags": tags(21) }), "tags"),
        (json!({ "tags": [""] }), "tags[0]"),
        (json!({ "tags": ["x".repeat(51)] }), "tags[0]"),
        (json!({ "tags": [3] }), "tags[0]"),
        (json!({ "tags": ["Work", "work"] }), "tags[1]"),
        (json!({ "tags": ["a{b}"] }), "tags[0]"),
        (json!({ "metadata": metadata(17) }), "metadata"),
        (json!({ "metadata": { "k": 1 } }), "metadata.k"),
        (
            json!({ "metadata": { "k".repeat(65): "v" } }),
            &*format!("metadata.{}", "k".repeat(65)),
        ),
        (
            json!({ "metadata": { "k": "v".repeat(513) } }),
            "metadata.k",
        ),
        (json!({ "metadata": [] }), "metadata"),
        (json!({ "externalId": "" }), "externalId"),
        (json!({ "externalId": "e".repeat(129) }), "externalId"),
        (json!({ "externalId": 7 }), "externalId"),
    ];
    let (_, target) = create(&app, &token, json!({})).await;
    let target = target["id"].as_str().unwrap().to_owned();
    for (body, field) in bad {
        for (status, answer) in [
            create(&app, &token, body.clone()).await,
            patch(&app, &token, &target, body.clone()).await,
        ] {
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
            assert_eq!(error_code(&answer), "invalid_body");
            let message = answer["error"]["message"].as_str().unwrap();
            assert!(message.contains(&format!("`{field}`")), "{body}: {message}");
        }
    }
    let (status, answer) = patch(&app, &token, &target, json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    for (query, name) in [
        ("archived=maybe", "archived"),
        ("pinned=1", "pinned"),
        ("tag=", "tag"),
    ] {
        let (status, answer) = app.get(&format!("/api/threads?{query}"), &token).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert_eq!(error_code(&answer), "invalid_param");
        assert!(answer["error"]["message"].as_str().unwrap().contains(name));
    }
}

#[tokio::test]
async fn each_filter_lists_exactly_its_threads_newest_first_across_pages() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    // (archived, pinned, tags), oldest first.
    let specs = [
        (false, false, vec!["work"]),
        (true, false, vec!["work"]),
        (false, true, vec![]),
        (false, true, vec!["Work", "home"]),
        (true, true, vec!["home"]),
        (false, false, vec![]),
        (false, false, vec!["home"]),
    ];
    let mut ids = Vec::new();
    for (i, (archived, pinned, tags)) in specs.iter().enumerate() {
        let (status, thread) = create(
            &app,
            &token,
            json!({ "title": format!("t{i}"), "archived": archived, "pinned": pinned, "tags": tags }),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{thread}");
        ids.push(thread["id"].as_str().unwrap().to_owned());
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    let newest_first = |pick: &dyn Fn(usize) -> bool| -> Vec<String> {
        (0..ids.len())
            .rev()
            .filter(|&i| pick(i))
            .map(|i| ids[i].clone())
            .collect()
    };
    let has_tag = |i: usize, tag: &str| specs[i].2.iter().any(|t| t.eq_ignore_ascii_case(tag));
    assert_eq!(
        list_all(&app, &token, "").await,
        newest_first(&|i| !specs[i].0)
    );
    assert_eq!(
        list_all(&app, &token, "&archived=true").await,
        newest_first(&|i| specs[i].0)
    );
    assert_eq!(
        list_all(&app, &token, "&archived=all").await,
        newest_first(&|_| true)
    );
    assert_eq!(
        list_all(&app, &token, "&pinned=true").await,
        newest_first(&|i| specs[i].1 && !specs[i].0)
    );
    assert_eq!(
        list_all(&app, &token, "&pinned=true&archived=all").await,
        newest_first(&|i| specs[i].1)
    );
    assert_eq!(
        list_all(&app, &token, "&tag=WORK").await,
        newest_first(&|i| has_tag(i, "work") && !specs[i].0)
    );
    assert_eq!(
        list_all(&app, &token, "&tag=home&archived=all").await,
        newest_first(&|i| has_tag(i, "home"))
    );

    // Archiving moves a thread between listings without changing updatedAt.
    let (_, before) = app.get(&format!("/api/threads/{}", ids[0]), &token).await;
    let (status, archived) = patch(
        &app,
        &token,
        &ids[0],
        json!({ "archived": true, "tags": [] }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(archived["updatedAt"], before["thread"]["updatedAt"]);
    assert_eq!(archived["archived"], true);
    assert!(!list_all(&app, &token, "").await.contains(&ids[0]));
    assert!(
        list_all(&app, &token, "&archived=true")
            .await
            .contains(&ids[0])
    );
    assert!(
        !list_all(&app, &token, "&tag=work&archived=all")
            .await
            .contains(&ids[0]),
        "untagged"
    );
    // A later turn keeps it archived, and up to date in its own listing.
    let (status, _) = patch(&app, &token, &ids[0], json!({ "title": "renamed" })).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list_all(&app, &token, "&archived=true").await[0], ids[0]);
}

#[tokio::test]
async fn external_ids_are_unique_per_user_and_find_their_thread() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let (_, a) = create(
        &app,
        &token,
        json!({ "externalId": "app-42", "metadata": { "src": "x" } }),
    )
    .await;
    assert_eq!(a["externalId"], "app-42");
    assert_eq!(a["metadata"], json!({ "src": "x" }));
    let (status, answer) = create(&app, &token, json!({ "externalId": "app-42" })).await;
    assert_eq!(status, StatusCode::CONFLICT, "{answer}");
    assert_eq!(error_code(&answer), "external_id_taken");
    let (_, b) = create(&app, &token, json!({})).await;
    let (status, _) = patch(
        &app,
        &token,
        b["id"].as_str().unwrap(),
        json!({ "externalId": "app-42" }),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        list_all(&app, &token, "&externalId=app-42").await,
        [a["id"].as_str().unwrap()]
    );
    // Another user may use the same external id.
    let other = app.token_for(&random_user());
    let (status, _) = create(&app, &other, json!({ "externalId": "app-42" })).await;
    assert_eq!(status, StatusCode::CREATED);
    // Freed on change and on delete.
    patch(
        &app,
        &token,
        a["id"].as_str().unwrap(),
        json!({ "externalId": null }),
    )
    .await;
    let (status, _) = patch(
        &app,
        &token,
        b["id"].as_str().unwrap(),
        json!({ "externalId": "app-42" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    app.request(
        Method::DELETE,
        &format!("/api/threads/{}", b["id"].as_str().unwrap()),
        Some(&token),
        None,
    )
    .await;
    let (status, _) = create(&app, &token, json!({ "externalId": "app-42" })).await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(list_all(&app, &token, "&externalId=nope").await.is_empty());
}
