//! `mock-upstream`: serves the mock on `127.0.0.1` until Ctrl-C or SIGTERM.
//!
//! It prints `listening on http://127.0.0.1:PORT/v1` on stdout once the socket is bound, so a
//! script or test can start it with `--port 0` and read the port back. Logs go to stderr
//! (`RUST_LOG`, default `warn`).

use std::{
    io::{self, Write as _},
    net::{Ipv4Addr, SocketAddr},
    process::ExitCode,
    time::Duration,
};

use mock_upstream::{MockConfig, MockUpstream};
use tracing_subscriber::EnvFilter;

const USAGE: &str = "usage: mock-upstream [--port P] [--tokens N] [--ttft-ms MS] \
[--inter-token-ms MS] [--context-tokens N] [--api-key KEY]";

/// Why the command line was rejected.
#[derive(Debug, thiserror::Error)]
enum ArgsError {
    #[error("unknown argument `{0}`")]
    Unknown(String),
    #[error("`{0}` needs a value")]
    MissingValue(&'static str),
    #[error("`{flag}` expects a whole number, got `{value}`")]
    NotANumber { flag: &'static str, value: String },
}

/// The parsed command line; `None` of `Args` means `--help`.
struct Args {
    port: u16,
    config: MockConfig,
}

impl Args {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Option<Self>, ArgsError> {
        let mut parsed = Self {
            port: 0,
            config: MockConfig::default(),
        };
        while let Some(arg) = args.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
                None => (arg, None),
            };
            let flag: &'static str = match name.as_str() {
                "-h" | "--help" => return Ok(None),
                "--port" => "--port",
                "--tokens" => "--tokens",
                "--ttft-ms" => "--ttft-ms",
                "--inter-token-ms" => "--inter-token-ms",
                "--context-tokens" => "--context-tokens",
                "--api-key" => "--api-key",
                _ => return Err(ArgsError::Unknown(name)),
            };
            let value = inline
                .or_else(|| args.next())
                .ok_or(ArgsError::MissingValue(flag))?;
            let config = &mut parsed.config;
            match flag {
                "--port" => parsed.port = number(flag, &value)?,
                "--tokens" => config.tokens = number(flag, &value)?,
                "--ttft-ms" => config.ttft = Duration::from_millis(number(flag, &value)?),
                "--inter-token-ms" => {
                    config.inter_token = Duration::from_millis(number(flag, &value)?);
                }
                "--context-tokens" => config.context_tokens = Some(number(flag, &value)?),
                _ => config.api_key = Some(value),
            }
        }
        Ok(Some(parsed))
    }
}

fn number<T: std::str::FromStr>(flag: &'static str, value: &str) -> Result<T, ArgsError> {
    value.parse().map_err(|_| ArgsError::NotANumber {
        flag,
        value: value.to_owned(),
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(io::stderr)
        .init();

    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            let _ = writeln!(io::stdout(), "{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            let _ = writeln!(io::stderr(), "mock-upstream: {error}\n{USAGE}");
            return ExitCode::from(2);
        }
    };

    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, args.port));
    let mock = match MockUpstream::start_on(addr, args.config).await {
        Ok(mock) => mock,
        Err(error) => {
            let _ = writeln!(
                io::stderr(),
                "mock-upstream: cannot listen on {addr}: {error}"
            );
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = io::stdout().lock();
    if writeln!(stdout, "listening on {}", mock.base_url())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    drop(stdout);

    if let Err(error) = shutdown_signal().await {
        let _ = writeln!(
            io::stderr(),
            "mock-upstream: cannot wait for signals: {error}"
        );
        return ExitCode::FAILURE;
    }
    drop(mock);
    ExitCode::SUCCESS
}

/// Resolves on Ctrl-C, or SIGTERM on Unix (what process managers and `kill` send).
async fn shutdown_signal() -> io::Result<()> {
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            result = tokio::signal::ctrl_c() => result,
            _ = terminate.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}
