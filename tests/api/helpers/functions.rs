//! The Vercel function binaries, each started alone the way the platform starts it: its own
//! process, `VERCEL_DEV_PORT`, `vercel_runtime::run` owning the socket.

use std::{path::PathBuf, process::Stdio, time::Duration};

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
    let (child, base) = spawn(binary, vars, Stdio::null()).await;
    Function {
        _child: child,
        base,
    }
}

/// A running function binary whose log (stderr) is kept in a file; killed on drop.
pub struct LoggedFunction {
    child: Child,
    pub base: String,
    log: PathBuf,
}

impl LoggedFunction {
    /// Starts `binary` as [`start_function`] does, its stderr going to a file of its own.
    pub async fn start(binary: &str, vars: Vec<(String, String)>) -> Self {
        let log = std::env::temp_dir().join(format!("buddahbot-fn-{}.log", uuid::Uuid::new_v4()));
        let file = std::fs::File::create(&log).unwrap();
        let (child, base) = spawn(binary, vars, Stdio::from(file)).await;
        Self { child, base, log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Its resident memory now, in KiB (`VmRSS`).
    pub fn rss_kib(&self) -> u64 {
        let pid = self.child.id().unwrap();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    /// Everything it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }
}

impl Drop for LoggedFunction {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Starts `binary` on a free port with exactly `vars` and waits until it answers.
async fn spawn(binary: &str, vars: Vec<(String, String)>, stderr: Stdio) -> (Child, String) {
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
        .stderr(stderr)
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
    (child, base)
}
