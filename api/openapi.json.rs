//! Vercel function: `GET /api/openapi.json`, the API's OpenAPI document (public).

use buddahbot::{routes, vercel::VercelAdapter};
use tower::ServiceBuilder;

#[tokio::main]
async fn main() -> Result<(), vercel_runtime::Error> {
    let router = buddahbot::function(routes::openapi);
    vercel_runtime::run(ServiceBuilder::new().layer(VercelAdapter).service(router)).await
}
