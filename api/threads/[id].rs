//! Vercel function: `GET/PATCH/DELETE /api/threads/:id` (Vercel passes the segment as `?id=`).

use buddahbot::routes;
use tower::ServiceBuilder;
use vercel_runtime::axum::VercelLayer;

#[tokio::main]
async fn main() -> Result<(), vercel_runtime::Error> {
    let router = buddahbot::function(routes::thread);
    vercel_runtime::run(
        ServiceBuilder::new()
            .layer(VercelLayer::new())
            .service(router),
    )
    .await
}
