//! The OpenAPI document (`docs/openapi.json`, served at `/api/openapi.json`) stays true: it is
//! a valid OpenAPI 3.1 document, every route the routers serve is in it with exactly the
//! methods the route takes, and every path in it is routed. (That every response the other
//! tests receive matches it is checked as they run: `helpers::contract`.)

use std::collections::{BTreeMap, BTreeSet};

use axum::{Router, http::StatusCode as AxumStatus, routing::get};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{
    TestApp,
    contract::{self, DOCUMENT, SPEC, Violations},
    random_user, serve, with_contract,
};

/// The official OpenAPI 3.1 meta-schema (see `tests/contract/README.md`).
const OPENAPI_31_SCHEMA: &str = include_str!("../contract/openapi-3.1.schema.json");

/// The methods an operation may have in a path item.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

#[tokio::test]
async fn the_served_document_is_the_repositorys_and_is_public_and_cacheable() {
    let app = TestApp::spawn().await;

    let resp = app
        .client
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap();

    assert_eq!(resp.status(), StatusCode::OK);
    let headers = resp.headers().clone();
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["cache-control"], "public, max-age=300");
    assert!(headers.contains_key("server-timing"));
    let served: Value = resp.json().await.unwrap();
    assert_eq!(served, *SPEC);
}

#[tokio::test]
async fn the_document_validates_against_the_openapi_3_1_meta_schema() {
    let meta: Value = serde_json::from_str(OPENAPI_31_SCHEMA).unwrap();
    let validator = jsonschema::validator_for(&meta).unwrap();
    let document: Value = serde_json::from_str(DOCUMENT).unwrap();

    let errors: Vec<String> = validator
        .iter_errors(&document)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();

    assert!(
        errors.is_empty(),
        "not a valid OpenAPI 3.1 document: {errors:#?}"
    );
    assert_eq!(document["openapi"], "3.1.0");
}

#[test]
fn every_schema_of_the_document_is_a_valid_json_schema_and_every_ref_resolves() {
    let mut refs = BTreeSet::new();
    collect_refs(&SPEC, &mut refs);
    for reference in &refs {
        assert!(
            SPEC.pointer(reference.trim_start_matches('#')).is_some(),
            "`{reference}` points at nothing"
        );
    }
    for (name, schema) in SPEC["components"]["schemas"].as_object().unwrap() {
        jsonschema::meta::validate(schema)
            .unwrap_or_else(|e| panic!("components.schemas.{name} is not a JSON Schema: {e}"));
        // Compiles, with its references into the document.
        contract::schema_errors(
            &json!({ "$ref": format!("#/components/schemas/{name}") }),
            &json!(null),
        );
    }
}

fn collect_refs(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                if key == "$ref"
                    && let Some(r) = v.as_str()
                {
                    out.insert(r.to_owned());
                }
                collect_refs(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

/// A concrete path for a document template: each parameter a value that names nothing.
fn sample(template: &str) -> String {
    template
        .split('/')
        .map(|part| if part.starts_with('{') { "x0" } else { part })
        .collect::<Vec<_>>()
        .join("/")
}

/// The methods the route of `path` takes, as its `405` answer's `allow` lists them (`HEAD`
/// left out: it is `GET`'s), or `None` when the path is no route (`404`).
async fn allowed(app: &TestApp, token: &str, path: &str) -> Option<BTreeSet<String>> {
    let resp = app
        .client
        .request(Method::from_bytes(b"TRACE").unwrap(), app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    match resp.status() {
        StatusCode::NOT_FOUND => None,
        StatusCode::METHOD_NOT_ALLOWED => Some(
            resp.headers()["allow"]
                .to_str()
                .unwrap()
                .split(',')
                .map(|m| m.trim().to_ascii_lowercase())
                .filter(|m| m != "head")
                .collect(),
        ),
        other => panic!("TRACE {path} answered {other}, not 405 or 404"),
    }
}

/// Does the router's path (axum syntax: `{id}`, `{*rest}`) cover the document's template?
fn covers(route: &str, template: &str) -> bool {
    let route: Vec<&str> = route.split('/').collect();
    let template: Vec<&str> = template.split('/').collect();
    for (i, part) in route.iter().enumerate() {
        if part.starts_with("{*") {
            return template.len() > i;
        }
        let Some(t) = template.get(i) else {
            return false;
        };
        if !part.starts_with('{') && part != t {
            return false;
        }
    }
    route.len() == template.len()
}

#[tokio::test]
async fn every_route_of_the_routers_is_in_the_document_with_exactly_its_methods() {
    let app = TestApp::spawn().await;
    let token = app.token_for(&random_user());
    let documented: BTreeMap<String, BTreeSet<String>> = SPEC["paths"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(path, item)| {
            let methods = METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(|m| (*m).to_owned())
                .collect();
            (path.clone(), methods)
        })
        .collect();

    // Every path of the document is routed, with exactly the methods the document lists.
    for (template, methods) in &documented {
        let path = sample(template);
        let allow = allowed(&app, &token, &path)
            .await
            .unwrap_or_else(|| panic!("{template} is in the document but not routed"));
        assert_eq!(&allow, methods, "the methods of {template}");
    }

    // Every route of the router is in the document: each of its paths covers a documented
    // one, and no other path under it is routed. For the routes with parameters, the
    // segments tried are every literal segment the document and vercel.json's rewrites use.
    let mut words: BTreeSet<String> = BTreeSet::new();
    let vercel: Value = serde_json::from_str(include_str!("../../vercel.json")).unwrap();
    let sources = vercel["rewrites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["source"].as_str().unwrap().to_owned());
    for path in documented.keys().cloned().chain(sources) {
        for part in path.split('/') {
            if !part.is_empty() && !part.starts_with('{') && !part.starts_with(':') {
                words.insert(part.to_owned());
            }
        }
    }
    for route in buddahbot::routes::local_paths() {
        let covered: Vec<&String> = documented.keys().filter(|t| covers(route, t)).collect();
        assert!(
            !covered.is_empty(),
            "the router serves {route}, which the document does not describe"
        );
        if !route.contains('{') {
            continue;
        }
        // Every way of filling the route's parameters with a literal word (or a value).
        let parts: Vec<&str> = route.split('/').collect();
        let mut candidates: Vec<Vec<String>> = vec![Vec::new()];
        for part in &parts {
            let choices: Vec<String> = if part.starts_with("{*") {
                // Up to three more segments.
                let mut tails = Vec::new();
                for first in words.iter().map(String::as_str).chain(["x0"]) {
                    tails.push(first.to_owned());
                    for second in words.iter().map(String::as_str).chain(["x0"]) {
                        tails.push(format!("{first}/{second}"));
                    }
                }
                tails.push("x0/items/x0".to_owned());
                tails
            } else if part.starts_with('{') {
                words.iter().cloned().chain(["x0".to_owned()]).collect()
            } else {
                vec![(*part).to_owned()]
            };
            candidates = candidates
                .into_iter()
                .flat_map(|prefix| {
                    choices.iter().map(move |c| {
                        let mut next = prefix.clone();
                        next.push(c.clone());
                        next
                    })
                })
                .collect();
        }
        for candidate in candidates {
            let path = candidate.join("/");
            let Some(allow) = allowed(&app, &token, &path).await else {
                continue;
            };
            let template = contract::template_of(&path).unwrap_or_else(|| {
                panic!("the router serves {path} ({route}), which the document does not describe")
            });
            assert_eq!(
                Some(&allow),
                documented.get(&template),
                "{path} is routed with other methods than {template} in the document"
            );
        }
    }
}

#[tokio::test]
async fn a_response_the_document_does_not_describe_is_caught() {
    // A router that answers a documented route with what the document does not say.
    let violations = Violations::default();
    let router = Router::new()
        .route(
            "/api/threads",
            get(|| async { axum::Json(json!({ "threads": "not a list" })) }),
        )
        .route(
            "/api/health",
            get(|| async { (AxumStatus::IM_A_TEAPOT, "tea") }),
        );
    let (address, _server) = serve(with_contract(router, &violations)).await;
    let client = reqwest::Client::new();

    for path in ["/api/threads", "/api/health", "/api/nothing-here"] {
        client.get(format!("{address}{path}")).send().await.unwrap();
    }

    let found = std::panic::catch_unwind(|| violations.assert_none())
        .expect_err("the mismatches are reported");
    let message = found.downcast_ref::<String>().unwrap();
    assert!(message.contains("4 response(s)"), "{message}");
    assert!(
        message.contains("required header `Server-Timing` is missing"),
        "{message}"
    );
    assert!(
        message.contains("GET /api/threads -> 200: the body does not match"),
        "{message}"
    );
    assert!(message.contains("does not list status 418"), "{message}");
    assert!(
        message.contains("GET /api/nothing-here -> 404"),
        "{message}"
    );
}
