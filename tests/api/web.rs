//! The web app of `public/`: served by the dev server's router with its Content-Security-Policy
//! (and by Vercel with the same one), the dev-only sign-in, the vendored libraries, and the
//! whole app in a real headless Chromium (`tests/js/browser.test.mjs`).

use std::path::{Path, PathBuf};

use buddahbot::routes::site::{CONTENT_SECURITY_POLICY, dev_site};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};

use crate::helpers::{TestApp, random_user, run_node_test, serve, with_contract};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn public_dir() -> PathBuf {
    repo().join("public")
}

/// The app and the dev server's site router beside it (on its own port): the site's address.
async fn site(app: &TestApp) -> (String, tokio::task::JoinHandle<()>) {
    serve(with_contract(
        dev_site(app.app.clone(), public_dir()),
        app.violations(),
    ))
    .await
}

#[tokio::test]
async fn the_app_works_in_a_real_browser() {
    let app = TestApp::spawn().await;
    let (address, _server) = site(&app).await;
    let user = random_user();

    run_node_test(
        &app,
        &user,
        "browser.test.mjs",
        &[("BUDDAHBOT_URL", address), ("BUDDAHBOT_USER", user.clone())],
    )
    .await;
}

#[tokio::test]
async fn the_page_has_its_content_security_policy_here_and_on_vercel() {
    let app = TestApp::spawn().await;
    let (address, _server) = site(&app).await;

    let page = reqwest::get(format!("{address}/")).await.unwrap();

    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()[header::CONTENT_TYPE], "text/html");
    assert_eq!(
        page.headers()[header::CONTENT_SECURITY_POLICY],
        CONTENT_SECURITY_POLICY
    );
    assert!(page.text().await.unwrap().contains(r#"src="/js/main.js""#));
    let script = reqwest::get(format!("{address}/js/main.js")).await.unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert_eq!(script.headers()[header::CONTENT_TYPE], "text/javascript");
    // The API is beside the files.
    let (status, _) = app.health(false).await;
    assert_eq!(status, StatusCode::OK);
    let health = reqwest::get(format!("{address}/api/health")).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    let vercel: Value =
        serde_json::from_str(&std::fs::read_to_string(repo().join("vercel.json")).unwrap())
            .unwrap();
    let page_headers = vercel["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|rule| rule["source"] == "/((?!api/).*)")
        .expect("vercel.json sets headers for the app's files");
    let csp = page_headers["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["key"] == "Content-Security-Policy")
        .expect("vercel.json sets the Content-Security-Policy");
    assert_eq!(csp["value"], CONTENT_SECURITY_POLICY);
}

#[tokio::test]
async fn the_dev_sign_in_sets_a_session_cookie_the_api_accepts_and_sign_out_clears_it() {
    let app = TestApp::spawn().await;
    let (address, _server) = site(&app).await;
    let client = reqwest::Client::new();
    let user = random_user();

    let offered = client
        .get(format!("{address}/dev/session"))
        .send()
        .await
        .unwrap();
    assert_eq!(offered.status(), StatusCode::OK);
    let signed_in = client
        .post(format!("{address}/dev/session"))
        .json(&json!({ "userId": user }))
        .send()
        .await
        .unwrap();

    assert_eq!(signed_in.status(), StatusCode::OK);
    let cookie = signed_in.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap();
    assert!(session.starts_with("authjs.session-token="), "{cookie}");
    let threads = client
        .post(format!("{address}/api/threads"))
        .header(header::COOKIE, session)
        .header(header::ORIGIN, &address)
        .json(&json!({ "title": "Made with the dev session" }))
        .send()
        .await
        .unwrap();
    assert_eq!(threads.status(), StatusCode::CREATED);
    let thread: Value = threads.json().await.unwrap();
    assert_eq!(thread["userId"], user.as_str());

    let signed_out = client
        .delete(format!("{address}/dev/session"))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_out.status(), StatusCode::NO_CONTENT);
    assert!(
        signed_out.headers()[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let refused = client
        .post(format!("{address}/dev/session"))
        .json(&json!({ "userId": "bad{id}" }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
}

#[test]
fn no_vercel_function_serves_the_dev_sign_in() {
    let mut files = vec![repo().join("api")];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else {
            let source = std::fs::read_to_string(&path).unwrap();
            assert!(
                !source.contains("dev_site") && !source.contains("site::"),
                "{} mounts the dev site",
                path.display()
            );
        }
    }
}

#[test]
fn the_vendored_libraries_are_the_pinned_packages() {
    let output = std::process::Command::new(repo().join("scripts/vendor-web"))
        .arg("--check")
        .output()
        .unwrap();

    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
