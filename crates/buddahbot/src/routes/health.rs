//! `GET /api/health`: is this deployment usable? Redis is pinged (with its latency); the model
//! API is reported as configured and, with `?deep=1`, probed. Nothing secret is shown.

use std::time::Duration;

use axum::{extract::State, http::StatusCode};
use serde::Serialize;
use tokio::time::Instant;

use crate::{app::App, http::AppJson, http::QueryParams};

/// How long each dependency may take to answer a health check.
pub const HEALTH_CHECK_TIMEOUT_MS: u64 = 2_000;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    status: &'static str,
    version: &'static str,
    redis: Check,
    upstream: UpstreamHealth,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    ok: bool,
    latency_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpstreamHealth {
    configured: bool,
    host: String,
    default_model: String,
    /// Only with `?deep=1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    reachable: Option<Check>,
}

pub async fn get(State(app): State<App>, query: QueryParams) -> (StatusCode, AppJson<Health>) {
    let timeout = Duration::from_millis(HEALTH_CHECK_TIMEOUT_MS);
    let deep = matches!(query.get("deep"), Some("1" | "true"));
    let redis = timed(async {
        match tokio::time::timeout(timeout, app.store().ping()).await {
            Ok(Ok(())) => None,
            Ok(Err(_)) => Some("unreachable"),
            Err(_) => Some("timed out"),
        }
    })
    .await;
    let reachable = if deep {
        Some(
            timed(async {
                app.upstream().probe(timeout).await.err().map(|e| {
                    if e.is_rate_limit() {
                        "rate limited"
                    } else {
                        "unreachable or refused"
                    }
                })
            })
            .await,
        )
    } else {
        None
    };
    let usable = redis.ok && reachable.as_ref().is_none_or(|c| c.ok);
    let config = &app.config().upstream;
    let health = Health {
        status: if usable { "ok" } else { "unavailable" },
        version: env!("CARGO_PKG_VERSION"),
        redis,
        upstream: UpstreamHealth {
            configured: true,
            host: app.upstream().host().to_owned(),
            default_model: config.default_model.clone(),
            reachable,
        },
    };
    let status = if usable {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, AppJson(health))
}

/// Runs a check and measures it; the future yields the error, if any.
async fn timed(check: impl Future<Output = Option<&'static str>>) -> Check {
    let started = Instant::now();
    let error = check.await;
    Check {
        ok: error.is_none(),
        latency_ms: (started.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0,
        error,
    }
}
