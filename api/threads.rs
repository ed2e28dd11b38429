//! Vercel function: `GET/POST/DELETE /api/threads`.

use buddahbot::{routes, vercel::VercelAdapter};
use tower::ServiceBuilder;

#[tokio::main]
async fn main() -> Result<(), vercel_runtime::Error> {
    let router = buddahbot::function(routes::threads);
    vercel_runtime::run(ServiceBuilder::new().layer(VercelAdapter).service(router)).await
}
