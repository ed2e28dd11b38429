//! Vercel function: `POST /api/chat` (and `/api/chat/completions` through a rewrite).

use buddahbot::{routes, vercel::VercelAdapter};
use tower::ServiceBuilder;

#[tokio::main]
async fn main() -> Result<(), vercel_runtime::Error> {
    let router = buddahbot::function(routes::chat);
    vercel_runtime::run(ServiceBuilder::new().layer(VercelAdapter).service(router)).await
}
