//! Seeding a benchmark's user through the API, for the benchmarks that import.

use super::{common::Result, served::Served};

/// `POST /api/import` of `body` as the user.
pub async fn import(served: &Served, body: String) -> Result<()> {
    let resp = served
        .http
        .post(format!("{}/api/import", served.base))
        .bearer_auth(&served.token)
        .body(body)
        .send()
        .await?;
    if !resp.status().is_success() {
        return Err(format!("import: {}", resp.text().await?).into());
    }
    Ok(())
}
