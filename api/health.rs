//! Vercel function: `GET /api/health` (unauthenticated).

use buddahbot::{routes, vercel::VercelAdapter};
use tower::ServiceBuilder;

#[tokio::main]
async fn main() -> Result<(), vercel_runtime::Error> {
    let router = buddahbot::function(routes::health);
    vercel_runtime::run(ServiceBuilder::new().layer(VercelAdapter).service(router)).await
}
