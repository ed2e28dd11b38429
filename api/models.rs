//! Vercel function: `GET /api/models` (and `/api/models/:id` through `vercel.json`'s rewrite).

use buddahbot::{routes, vercel::VercelAdapter};
use tower::ServiceBuilder;

#[tokio::main]
async fn main() -> Result<(), vercel_runtime::Error> {
    let router = buddahbot::function(routes::models);
    vercel_runtime::run(ServiceBuilder::new().layer(VercelAdapter).service(router)).await
}
