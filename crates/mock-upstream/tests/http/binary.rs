//! The `mock-upstream` binary, run as a process.

use std::process::Stdio;

use mock_upstream::reply_text;
use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::Command,
};

use crate::helpers::plain_body;

#[tokio::test]
async fn the_binary_prints_its_url_and_serves_replies() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mock-upstream"))
        .args(["--port", "0", "--tokens", "3", "--api-key", "sk-bin"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).await.unwrap();
    let base_url = line.trim().strip_prefix("listening on ").unwrap();

    let response = reqwest::Client::new()
        .post(format!("{base_url}/chat/completions"))
        .bearer_auth("sk-bin")
        .json(&plain_body("hi"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 200);
    let completion: Value = response.json().await.unwrap();
    assert_eq!(
        completion["choices"][0]["message"]["content"],
        reply_text(3)
    );
    child.kill().await.unwrap();
}

#[tokio::test]
async fn the_binary_takes_a_context_limit() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mock-upstream"))
        .args(["--port", "0", "--context-tokens=1"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).await.unwrap();
    let base_url = line.trim().strip_prefix("listening on ").unwrap();

    let response = reqwest::Client::new()
        .post(format!("{base_url}/chat/completions"))
        .json(&plain_body("twelve chars"))
        .send()
        .await
        .unwrap();

    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "context_length_exceeded");
    child.kill().await.unwrap();
}

#[tokio::test]
async fn the_binary_rejects_an_unknown_flag() {
    let output = Command::new(env!("CARGO_BIN_EXE_mock-upstream"))
        .arg("--tokenz")
        .output()
        .await
        .unwrap();

    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--tokenz"));
}
