//! The local server: every Vercel function on one port, with embedded defaults.
//!
//! ```text
//! cargo run --bin dev                      # serve the app and the API on 127.0.0.1:3000 (PORT overrides)
//! cargo run --bin dev -- token <user-id>   # print a bearer token for that user (24 h)
//! cargo run --bin dev -- token <user-id> --authjs   # an Auth.js session cookie value instead
//! ```
//!
//! Reads `.env` when present. Without `REDIS_URL`/`KV_URL` it starts a private
//! `redis-server` on a free port (stopped on exit); without `AUTH_SECRET` it uses a fixed,
//! public development secret; without `NOUS_API_KEY` it answers chats from the offline demo
//! model (the mock upstream the tests use, run in this process). Each default is announced in
//! the log. It serves the web app of `public/` at `/`, and `/dev/session`, which signs the
//! browser in as any user id typed into the app. It times out slow request heads and bodies
//! (`REQUEST_HEAD_TIMEOUT_MS`, `REQUEST_BODY_TIMEOUT_MS`), as Vercel's edge does for the
//! functions. The Vercel functions never do any of this.

use std::{collections::HashMap, io::Write, net::SocketAddr, process::ExitCode};

use buddahbot::{
    app::App,
    config::Config,
    domain::UserId,
    http::server::{self, Timeouts},
    local_redis::RedisServer,
    routes::site::{DEV_SESSION_TTL_SECS, dev_session, dev_site},
    telemetry,
};
use mock_upstream::{MockConfig, MockUpstream};

/// Public, well-known secret for local use only (the same as the shared test vectors').
const DEV_AUTH_SECRET: &str = "dev-secret-please-change-0123456789abcdef";
/// Key shared by the dev server and its in-process demo model.
const DEMO_API_KEY: &str = "offline-demo";
const DEFAULT_PORT: u16 = 3000;
/// The web app's files: the repository's `public/`, as Vercel publishes it.
const PUBLIC_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../public");

#[tokio::main]
async fn main() -> ExitCode {
    let _ = dotenvy::dotenv();
    telemetry::init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        None | Some("serve") => serve().await,
        Some("token") => print_token(
            args.get(1).map(String::as_str),
            args.get(2).is_some_and(|a| a == "--authjs"),
        ),
        Some(other) => Err(format!(
            "unknown command `{other}`; use `dev` to serve or `dev token <user-id>`"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            ExitCode::FAILURE
        }
    }
}

/// The environment with the development defaults filled in (but not `REDIS_URL`).
fn dev_vars() -> HashMap<String, String> {
    let mut vars: HashMap<String, String> = std::env::vars()
        .filter(|(_, v)| !v.trim().is_empty())
        .collect();
    if !vars.contains_key("AUTH_SECRET") {
        tracing::warn!("AUTH_SECRET is not set: using the public development secret");
        vars.insert("AUTH_SECRET".into(), DEV_AUTH_SECRET.into());
    }
    vars
}

fn print_token(user: Option<&str>, authjs: bool) -> Result<(), String> {
    let user = user.ok_or("usage: dev token <user-id> [--authjs]")?;
    let user = UserId::parse(user).map_err(|e| format!("invalid user id: {e}"))?;
    let mut vars = dev_vars();
    // Signing needs only the secret; keep config validation happy without Redis or a key.
    vars.entry("REDIS_URL".into())
        .or_insert_with(|| "redis://127.0.0.1:1".into());
    vars.entry("NOUS_API_KEY".into())
        .or_insert_with(|| DEMO_API_KEY.into());
    let config = Config::from_vars(vars).map_err(|e| e.to_string())?;
    let token = if authjs {
        dev_session(
            &buddahbot::auth::authjs::AuthJs::new(&config.auth.secrets),
            &user,
        )
        .map_err(|e| format!("cannot encrypt: {e}"))?
    } else {
        buddahbot::auth::jwt::Hs256::new(&config.auth.secrets)
            .mint(&user, DEV_SESSION_TTL_SECS)
            .map_err(|e| format!("cannot sign: {e}"))?
    };
    writeln!(std::io::stdout(), "{token}").map_err(|e| e.to_string())
}

async fn serve() -> Result<(), String> {
    let mut vars = dev_vars();
    let mut private_redis = None;
    if !vars.contains_key("REDIS_URL") && !vars.contains_key("KV_URL") {
        let server = RedisServer::start().await.map_err(|e| e.to_string())?;
        tracing::warn!(
            url = %server.url(),
            "REDIS_URL is not set: started a private redis-server (data is lost on exit)"
        );
        vars.insert("REDIS_URL".into(), server.url());
        private_redis = Some(server);
    }
    let mut demo_model = None;
    if !vars.contains_key("NOUS_API_KEY") {
        let mock = MockUpstream::start(MockConfig::default().with_api_key(DEMO_API_KEY))
            .await
            .map_err(|e| format!("cannot start the offline demo model: {e}"))?;
        tracing::warn!(
            url = %mock.base_url(),
            "NOUS_API_KEY is not set: OFFLINE DEMO MODE, chats are answered by a built-in mock model, not by Hermes"
        );
        vars.insert("NOUS_API_KEY".into(), DEMO_API_KEY.into());
        vars.insert("NOUS_API_BASE_URL".into(), mock.base_url());
        demo_model = Some(mock);
    }
    let config = Config::from_vars(vars).map_err(|e| e.to_string())?;
    let app = App::new(config).map_err(|e| e.to_string())?;

    let port = match std::env::var("PORT") {
        Ok(p) => p.parse::<u16>().map_err(|_| "PORT must be a port number")?,
        Err(_) => DEFAULT_PORT,
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    tracing::info!("listening on http://{addr}");
    tracing::info!("open http://{addr} in a browser to chat");

    let timeouts = Timeouts::from(&app.config().http);
    let result = server::serve(
        listener,
        dev_site(app, PUBLIC_DIR.into()),
        timeouts,
        shutdown_signal(),
    )
    .await
    .map_err(|e| e.to_string());
    drop(demo_model);
    if let Some(mut server) = private_redis {
        server.stop().await;
        tracing::info!("stopped the private redis-server");
    }
    result
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
