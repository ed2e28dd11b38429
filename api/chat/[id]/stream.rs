//! Vercel function: `GET /api/chat/:threadId/stream`, resuming the thread's generation
//! (Vercel passes the segment as `?id=`).

use buddahbot::{routes, vercel::VercelAdapter};
use tower::ServiceBuilder;

#[tokio::main]
async fn main() -> Result<(), vercel_runtime::Error> {
    let router = buddahbot::function(routes::chat_stream);
    vercel_runtime::run(ServiceBuilder::new().layer(VercelAdapter).service(router)).await
}
