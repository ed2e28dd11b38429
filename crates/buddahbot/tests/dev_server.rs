//! The real `dev` binary: embedded defaults (a private redis-server, a dev secret), every
//! function on one port, and a clean exit that takes the private server with it.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::{process::Stdio, time::Duration};

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, BufReader},
    process::Command,
};

const DEV: &str = env!("CARGO_BIN_EXE_dev");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `dev` command with nothing from this process's environment but `PATH`.
fn dev(path: &str) -> Command {
    let mut command = Command::new(DEV);
    command
        .env_clear()
        .env("PATH", path)
        .env("RUST_LOG", "info")
        .current_dir(std::env::temp_dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Reads lines until one contains `needle`, returning every line read so far; keeps draining
/// the rest in the background so the child never writes into a closed pipe.
async fn read_until(out: impl AsyncRead + Unpin + Send + 'static, needle: &str) -> Vec<String> {
    let mut lines = BufReader::new(out).lines();
    let mut seen = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let done = line.contains(needle);
            seen.push(line);
            if done {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        found,
        Ok(true),
        "never printed {needle:?}; printed {seen:#?}"
    );
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    seen
}

/// The number after `prefix` in `text`.
fn port_after(text: &str, prefix: &str) -> u16 {
    let start = text.find(prefix).unwrap() + prefix.len();
    text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn the_dev_server_serves_the_app_and_every_function_with_a_private_redis_and_demo_model() {
    let path = std::env::var("PATH").unwrap();
    let port = free_port();
    let mut server = dev(&path).env("PORT", port.to_string()).spawn().unwrap();
    let log = read_until(server.stderr.take().unwrap(), "listening on").await;
    let log = log.join("\n");
    assert!(log.contains("private redis-server"), "{log}");
    assert!(
        log.contains(&format!("listening on http://127.0.0.1:{port}")),
        "{log}"
    );
    let redis_port = port_after(&log, "redis://127.0.0.1:");

    let token = dev(&path)
        .arg("token")
        .arg("github:583231")
        .output()
        .await
        .unwrap();
    assert!(token.status.success());
    let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");

    let created: Value = client
        .post(format!("{base}/api/threads"))
        .bearer_auth(&token)
        .json(&json!({ "title": "hello dev" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(created["userId"], "github:583231");
    let id = created["id"].as_str().unwrap();
    let page = client
        .get(format!("{base}/api/threads/{id}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let chat = client
        .post(format!("{base}/api/chat"))
        .bearer_auth(&token)
        .json(&json!({ "threadId": id, "messages": [{ "role": "user", "content": "hi" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(chat.status(), StatusCode::OK);
    let stream = chat.text().await.unwrap();
    assert!(stream.trim_end().ends_with("data: [DONE]"), "{stream}");
    assert!(log.contains("OFFLINE DEMO MODE"), "{log}");
    let page: Value = client
        .get(format!("{base}/api/threads/{id}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["messages"].as_array().unwrap().len(), 2, "{page}");
    // The web app is at `/`, with its policy.
    let app = client.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(app.status(), StatusCode::OK);
    assert!(app.headers().contains_key("content-security-policy"));
    assert!(app.text().await.unwrap().contains("/js/main.js"));

    let pid = server.id().unwrap().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(10), server.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
    let redis_gone = std::net::TcpStream::connect(("127.0.0.1", redis_port)).is_err();
    assert!(
        redis_gone,
        "the private redis-server outlived the dev server"
    );
}

#[tokio::test]
async fn the_dev_server_without_redis_server_says_how_to_install_it() {
    let empty = std::env::temp_dir().join(format!("buddahbot-empty-path-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let output = dev(empty.to_str().unwrap())
        .env("PORT", free_port().to_string())
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("apt-get install -y redis-server"), "{text}");
}
