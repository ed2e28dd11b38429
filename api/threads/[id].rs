//! Vercel function: `GET/PATCH/DELETE /api/threads/:id` (Vercel passes the segment as `?id=`).

use buddahbot::{routes, vercel::VercelAdapter};
use tower::ServiceBuilder;

#[tokio::main]
async fn main() -> Result<(), vercel_runtime::Error> {
    let router = buddahbot::function(routes::thread);
    vercel_runtime::run(ServiceBuilder::new().layer(VercelAdapter).service(router)).await
}
