//! Vercel function: `GET /api/shared/:token`, a shared thread's public snapshot; `vercel.json`
//! rewrites the token into `?token=`.

use buddahbot::{routes, vercel::VercelAdapter};
use tower::ServiceBuilder;

#[tokio::main]
async fn main() -> Result<(), vercel_runtime::Error> {
    let router = buddahbot::function(routes::shared);
    vercel_runtime::run(ServiceBuilder::new().layer(VercelAdapter).service(router)).await
}
