//! Bearer authentication: the shared HS256 vectors, and a table of attacks.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};

use crate::helpers::{SECRET, TestApp, error_code, into_parts};

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/authjs/vectors.json"
);

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn b64(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// A token with exactly this header and these claims, HMAC-signed with `alg` and `secret`.
fn forge(header: Value, claims: Value, alg: Algorithm, secret: &str) -> String {
    let signing_input = format!("{}.{}", b64(&header), b64(&claims));
    let signature = jsonwebtoken::crypto::sign(
        signing_input.as_bytes(),
        &EncodingKey::from_secret(secret.as_bytes()),
        alg,
    )
    .unwrap();
    format!("{signing_input}.{signature}")
}

fn hs256(claims: Value) -> String {
    forge(
        json!({ "alg": "HS256", "typ": "JWT" }),
        claims,
        Algorithm::HS256,
        SECRET,
    )
}

/// Sends `authorization` (if any) and returns the status, the `www-authenticate` header and
/// the body.
async fn call(app: &TestApp, authorization: Option<&str>) -> (StatusCode, Option<String>, Value) {
    let mut req = app.client.post(app.url("/api/threads"));
    if let Some(value) = authorization {
        req = req.header(header::AUTHORIZATION, value);
    }
    let resp = req.send().await.unwrap();
    let challenge = resp
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned());
    let (status, body) = into_parts(resp).await;
    (status, challenge, body)
}

#[tokio::test]
async fn the_shared_hs256_vectors_behave_as_labelled() {
    let app = TestApp::spawn().await;
    let vectors: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(VECTORS).unwrap()).unwrap();
    let hs256: Vec<&Value> = vectors.iter().filter(|v| v["kind"] == "hs256").collect();
    assert!(
        hs256.len() >= 5,
        "expected the hs256 vectors, found {}",
        hs256.len()
    );

    for vector in hs256 {
        let name = vector["name"].as_str().unwrap();
        assert_eq!(
            vector["secret"], SECRET,
            "{name}: the test app uses the vectors' secret"
        );
        let bearer = format!("Bearer {}", vector["token"].as_str().unwrap());
        let (status, challenge, body) = call(&app, Some(&bearer)).await;
        match vector["expect"].as_str().unwrap() {
            "accept" => {
                assert_eq!(status, StatusCode::CREATED, "{name}: {body}");
                assert_eq!(body["userId"], vector["expected_claims"]["sub"], "{name}");
            }
            "reject" => {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}: {body}");
                assert_eq!(error_code(&body), "unauthorized", "{name}");
                assert_eq!(challenge.as_deref(), Some("Bearer"), "{name}");
            }
            other => panic!("{name}: unknown expectation {other}"),
        }
    }
}

#[tokio::test]
async fn bad_credentials_are_refused_with_401_and_a_bearer_challenge() {
    let app = TestApp::spawn().await;
    let exp = now() + 3600;
    let none_token = format!(
        "{}.{}.",
        b64(&json!({ "alg": "none" })),
        b64(&json!({ "sub": "mallory", "exp": exp }))
    );
    let cases: Vec<(&str, Option<String>)> = vec![
        ("no authorization header", None),
        ("basic scheme", Some("Basic dXNlcjpwYXNz".into())),
        ("empty bearer", Some("Bearer ".into())),
        ("not a jwt", Some("Bearer not-a-jwt".into())),
        ("garbage base64", Some("Bearer @@@.###.$$$".into())),
        ("alg none", Some(format!("Bearer {none_token}"))),
        (
            "RS256 header over an HMAC signature",
            Some(format!(
                "Bearer {}",
                forge(
                    json!({ "alg": "RS256", "typ": "JWT" }),
                    json!({ "sub": "mallory", "exp": exp }),
                    Algorithm::HS256,
                    SECRET
                )
            )),
        ),
        (
            "HS512 is not the pinned algorithm",
            Some(format!(
                "Bearer {}",
                forge(
                    json!({ "alg": "HS512", "typ": "JWT" }),
                    json!({ "sub": "mallory", "exp": exp }),
                    Algorithm::HS512,
                    SECRET
                )
            )),
        ),
        (
            "wrong secret",
            Some(format!(
                "Bearer {}",
                forge(
                    json!({ "alg": "HS256" }),
                    json!({ "sub": "mallory", "exp": exp }),
                    Algorithm::HS256,
                    "another-secret-of-sufficient-length-0123"
                )
            )),
        ),
        (
            "missing exp",
            Some(format!("Bearer {}", hs256(json!({ "sub": "alice" })))),
        ),
        (
            "expired beyond the leeway",
            Some(format!(
                "Bearer {}",
                hs256(json!({ "sub": "alice", "exp": now() - 60 }))
            )),
        ),
        (
            "not valid before a future time",
            Some(format!(
                "Bearer {}",
                hs256(json!({ "sub": "alice", "exp": exp, "nbf": now() + 600 }))
            )),
        ),
        (
            "missing sub",
            Some(format!("Bearer {}", hs256(json!({ "exp": exp })))),
        ),
        (
            "empty sub",
            Some(format!(
                "Bearer {}",
                hs256(json!({ "sub": "", "exp": exp }))
            )),
        ),
        (
            "sub with a closing brace",
            Some(format!(
                "Bearer {}",
                hs256(json!({ "sub": "a}b", "exp": exp }))
            )),
        ),
        (
            "sub with an opening brace",
            Some(format!(
                "Bearer {}",
                hs256(json!({ "sub": "{a", "exp": exp }))
            )),
        ),
        (
            "sub with a control character",
            Some(format!(
                "Bearer {}",
                hs256(json!({ "sub": "a\nb", "exp": exp }))
            )),
        ),
        (
            "sub longer than 256 bytes",
            Some(format!(
                "Bearer {}",
                hs256(json!({ "sub": "x".repeat(257), "exp": exp }))
            )),
        ),
        (
            "sub that is not a string",
            Some(format!(
                "Bearer {}",
                hs256(json!({ "sub": 42, "exp": exp }))
            )),
        ),
    ];
    for (case, authorization) in cases {
        let (status, challenge, body) = call(&app, authorization.as_deref()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{case}: {body}");
        assert_eq!(error_code(&body), "unauthorized", "{case}");
        assert_eq!(challenge.as_deref(), Some("Bearer"), "{case}");
    }
}

#[tokio::test]
async fn real_world_tokens_are_accepted() {
    let other_secret = "second-secret-still-valid-during-rotation-0123";
    let app = TestApp::spawn_with(|config| {
        config.auth.secrets.push(other_secret.to_owned().into());
    })
    .await;
    let exp = now() + 3600;
    let cases = [
        (
            "github id",
            hs256(json!({ "sub": "github:583231", "exp": exp })),
            "github:583231",
        ),
        (
            "auth0 id",
            hs256(json!({ "sub": "auth0|65f0c0ffee1234567890abcd", "exp": exp, "aud": "x" })),
            "auth0|65f0c0ffee1234567890abcd",
        ),
        (
            "expired within the 15 s leeway",
            hs256(json!({ "sub": "late", "exp": now() - 5 })),
            "late",
        ),
        (
            "signed with a rotated-out secret",
            forge(
                json!({ "alg": "HS256" }),
                json!({ "sub": "rotated", "exp": exp }),
                Algorithm::HS256,
                other_secret,
            ),
            "rotated",
        ),
    ];
    for (case, token, sub) in cases {
        let (status, _, body) = call(&app, Some(&format!("bearer {token}"))).await;
        assert_eq!(status, StatusCode::CREATED, "{case}: {body}");
        assert_eq!(body["userId"], sub, "{case}");
    }
}
