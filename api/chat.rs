//! Vercel function: `POST /api/chat` (and `/api/chat/completions` through a rewrite).

use buddahbot::routes;
use tower::ServiceBuilder;
use vercel_runtime::axum::VercelLayer;

#[tokio::main]
async fn main() -> Result<(), vercel_runtime::Error> {
    let router = buddahbot::function(routes::chat);
    vercel_runtime::run(
        ServiceBuilder::new()
            .layer(VercelLayer::new())
            .service(router),
    )
    .await
}
