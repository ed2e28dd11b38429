//! The Vercel function binaries, each started alone the way the platform starts it: its own
//! process, `VERCEL_DEV_PORT`, `vercel_runtime::run` owning the socket.

use std::{process::Stdio, time::Duration};

use tokio::process::{Child, Command};

use super::eventually;

/// A running function binary; killed on drop.
pub struct Function {
    _child: Child,
    pub base: String,
}

/// Starts `binary` with exactly `vars` as its environment and waits until it answers
/// `/_vercel/ping`.
pub async fn start_function(binary: &str, vars: Vec<(String, String)>) -> Function {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(binary)
        .env_clear()
        .envs(vars)
        .env("VERCEL_DEV_PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let ping = format!("{base}/_vercel/ping");
    let up = eventually(Duration::from_secs(10), || {
        let ping = ping.clone();
        async move {
            reqwest::get(ping)
                .await
                .ok()
                .filter(|r| r.status().is_success())
        }
    })
    .await;
    assert!(up.is_some(), "{binary} did not start listening");
    Function {
        _child: child,
        base,
    }
}
