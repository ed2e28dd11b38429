//! Vercel function: the Conversations API (`/api/conversations`, `/api/conversations/{id}`, `…/items`); `vercel.json` rewrites the path's segments into `?id=`, `?action=` and `?item=`.

use buddahbot::{routes, vercel::VercelAdapter};
use tower::ServiceBuilder;

#[tokio::main]
async fn main() -> Result<(), vercel_runtime::Error> {
    let router = buddahbot::function(routes::conversations);
    vercel_runtime::run(ServiceBuilder::new().layer(VercelAdapter).service(router)).await
}
