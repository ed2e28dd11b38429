//! The Auth.js session: every shared vector through the real endpoints (as a cookie under
//! its name, and as a bearer token), chunked cookies, and an attack table.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};

use crate::helpers::{SECRET, TestApp, error_code, into_parts};

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/authjs/vectors.json"
);

/// Auth.js splits a token longer than this over several cookies.
const AUTHJS_CHUNK: usize = 3936;

fn vectors() -> Vec<Value> {
    serde_json::from_str(&std::fs::read_to_string(VECTORS).unwrap()).unwrap()
}

/// `POST /api/threads` with the given headers; the created thread names the user.
async fn create_with(
    app: &TestApp,
    headers: &[(header::HeaderName, String)],
) -> (StatusCode, Value) {
    let mut req = app.client.post(app.url("/api/threads")).json(&json!({}));
    for (name, value) in headers {
        req = req.header(name, value);
    }
    into_parts(req.send().await.unwrap()).await
}

fn check(name: &str, vector: &Value, status: StatusCode, body: &Value, how: &str) {
    match vector["expect"].as_str().unwrap() {
        "accept" => {
            assert_eq!(status, StatusCode::CREATED, "{name} {how}: {body}");
            assert_eq!(
                body["userId"], vector["expected_claims"]["sub"],
                "{name} {how}"
            );
        }
        _ => {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{name} {how}: {body}");
            assert_eq!(error_code(body), "unauthorized", "{name} {how}");
        }
    }
}

#[tokio::test]
async fn every_session_vector_behaves_as_labelled_as_a_cookie() {
    let app = TestApp::spawn().await;
    let jwe: Vec<Value> = vectors()
        .into_iter()
        .filter(|v| v["kind"] != "hs256")
        .collect();
    assert!(jwe.len() >= 9);
    for vector in &jwe {
        let name = vector["name"].as_str().unwrap();
        assert_eq!(vector["secret"], SECRET);
        let cookie = format!(
            "{}={}",
            vector["cookie_name"].as_str().unwrap(),
            vector["token"].as_str().unwrap()
        );
        let (status, body) = create_with(&app, &[(header::COOKIE, cookie)]).await;
        check(name, vector, status, &body, "as a cookie");
    }
}

#[tokio::test]
async fn every_session_vector_behaves_as_labelled_as_a_bearer_token() {
    // Auth.js's `getToken` decodes a bearer token with its deployment's cookie name, so each
    // vector is presented to a deployment configured with the vector's cookie name.
    let vectors = vectors();
    for cookie_name in [
        "authjs.session-token",
        "__Secure-authjs.session-token",
        "next-auth.session-token",
    ] {
        let app = TestApp::spawn_with(|config| {
            config.auth.session_cookie = [
                buddahbot::auth::authjs::SESSION_COOKIE,
                buddahbot::auth::authjs::SECURE_SESSION_COOKIE,
                buddahbot::auth::authjs::V4_SESSION_COOKIE,
            ]
            .into_iter()
            .find(|n| *n == cookie_name);
        })
        .await;
        for vector in vectors
            .iter()
            .filter(|v| v["kind"] != "hs256" && v["cookie_name"] == cookie_name)
        {
            let name = vector["name"].as_str().unwrap();
            let bearer = format!("Bearer {}", vector["token"].as_str().unwrap());
            let (status, body) = create_with(&app, &[(header::AUTHORIZATION, bearer)]).await;
            check(name, vector, status, &body, "as a bearer token");
        }
    }
    // Without a configured cookie name, a bearer session token is accepted under either name.
    let app = TestApp::spawn().await;
    let secure = vectors
        .iter()
        .find(|v| v["name"] == "authjs-accept-secure-cookie")
        .unwrap();
    let bearer = format!("Bearer {}", secure["token"].as_str().unwrap());
    let (status, _) = create_with(&app, &[(header::AUTHORIZATION, bearer)]).await;
    assert_eq!(status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_large_session_split_over_chunked_cookies_is_accepted_in_any_order() {
    let app = TestApp::spawn().await;
    for cookie_name in ["authjs.session-token", "__Secure-authjs.session-token"] {
        let claims = json!({
            "sub": "user-with-many-groups",
            "name": "Ada",
            "groups": (0..800).map(|i| format!("group-{i:04}")).collect::<Vec<_>>(),
            "exp": 4_102_444_800_u64,
        });
        let token = app
            .app
            .authenticator()
            .authjs()
            .encode(&claims, cookie_name)
            .unwrap();
        assert!(token.len() > 2 * AUTHJS_CHUNK, "make it span three cookies");
        let chunks: Vec<String> = token
            .as_bytes()
            .chunks(AUTHJS_CHUNK)
            .enumerate()
            .map(|(i, c)| format!("{cookie_name}.{i}={}", std::str::from_utf8(c).unwrap()))
            .collect();
        let unrelated = [
            "authjs.csrf-token=abc%7Cdef".to_owned(),
            "authjs.callback-url=http%3A%2F%2Flocalhost%3A3000".to_owned(),
            "theme=dark".to_owned(),
        ];
        let orders: [Vec<String>; 3] = [
            chunks.clone(),
            chunks.iter().rev().cloned().collect(),
            // Shuffled, with other cookies between the chunks.
            {
                let mut mixed = vec![unrelated[0].clone()];
                for (i, chunk) in chunks.iter().enumerate().rev() {
                    mixed.push(chunk.clone());
                    mixed.push(unrelated[i % unrelated.len()].clone());
                }
                mixed.swap(1, 3);
                mixed
            },
        ];
        for (i, order) in orders.iter().enumerate() {
            let (status, body) = create_with(&app, &[(header::COOKIE, order.join("; "))]).await;
            assert_eq!(
                status,
                StatusCode::CREATED,
                "{cookie_name} order {i}: {body}"
            );
            assert_eq!(body["userId"], "user-with-many-groups");
        }
        // The chunks may also come in separate Cookie headers.
        let headers: Vec<(header::HeaderName, String)> = chunks
            .iter()
            .rev()
            .map(|c| (header::COOKIE, c.clone()))
            .collect();
        assert_eq!(create_with(&app, &headers).await.0, StatusCode::CREATED);

        let missing_middle = [chunks[0].clone(), chunks[2].clone()].join("; ");
        let (status, body) = create_with(&app, &[(header::COOKIE, missing_middle)]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{cookie_name}: {body}");
        let missing_last = [chunks[0].clone(), chunks[1].clone()].join("; ");
        let (status, _) = create_with(&app, &[(header::COOKIE, missing_last)]).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "{cookie_name}: a truncated token"
        );
    }
}

fn flip_part(token: &str, part: usize) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut bytes = URL_SAFE_NO_PAD.decode(&parts[part]).unwrap();
    bytes[0] ^= 0x01;
    parts[part] = URL_SAFE_NO_PAD.encode(bytes);
    parts.join(".")
}

#[tokio::test]
async fn forged_and_broken_sessions_are_refused() {
    let app = TestApp::spawn().await;
    let name = "authjs.session-token";
    let seal = |claims: Value| {
        app.app
            .authenticator()
            .authjs()
            .encode(&claims, name)
            .unwrap()
    };
    let good = seal(json!({ "sub": "alice", "exp": 4_102_444_800_u64 }));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let vectors = vectors();
    let vector = |n: &str| {
        vectors.iter().find(|v| v["name"] == n).unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let alg_none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
        URL_SAFE_NO_PAD.encode(r#"{"sub":"mallory","exp":4102444800}"#)
    );
    let rs256_header = {
        let hs = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &json!({ "sub": "mallory", "exp": 4_102_444_800_u64 }),
            &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        let (_, rest) = hs.split_once('.').unwrap();
        format!(
            "{}.{rest}",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","typ":"JWT"}"#)
        )
    };
    let cases: Vec<(&str, String)> = vec![
        ("wrong secret", vector("authjs-reject-wrong-secret")),
        (
            "wrong salt (cookie name)",
            vector("authjs-reject-wrong-salt"),
        ),
        ("tampered header", flip_part(&good, 0)),
        ("tampered iv", flip_part(&good, 2)),
        ("tampered ciphertext", flip_part(&good, 3)),
        ("tampered tag", flip_part(&good, 4)),
        ("alg none", alg_none),
        ("hs256 token with an rs256 header", rs256_header),
        ("missing exp", seal(json!({ "sub": "alice" }))),
        ("expired", seal(json!({ "sub": "alice", "exp": now - 60 }))),
        (
            "sub with a brace",
            seal(json!({ "sub": "a}b", "exp": 4_102_444_800_u64 })),
        ),
        (
            "sub with a control char",
            seal(json!({ "sub": "a\u{1}b", "exp": 4_102_444_800_u64 })),
        ),
        ("empty token", String::new()),
        ("garbage base64", "@@@.###.$$$.%%%.^^^".to_owned()),
    ];
    for (case, token) in cases {
        for how in ["cookie", "bearer"] {
            let header = if how == "cookie" {
                (header::COOKIE, format!("{name}={token}"))
            } else {
                (header::AUTHORIZATION, format!("Bearer {token}"))
            };
            let (status, body) = create_with(&app, &[header]).await;
            if case == "wrong salt (cookie name)" && how == "bearer" {
                // A bearer token carries no cookie name; this deployment names none, so the
                // token is valid for the name it was made for.
                assert_eq!(status, StatusCode::CREATED, "{case} as {how}");
                continue;
            }
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{case} as {how}: {body}");
            assert_eq!(error_code(&body), "unauthorized", "{case} as {how}");
        }
    }
    let (status, _) = create_with(&app, &[(header::COOKIE, format!("{name}={good}"))]).await;
    assert_eq!(status, StatusCode::CREATED, "the untampered token works");
}
