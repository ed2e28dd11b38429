//! Vercel function: `GET/POST/DELETE /api/threads`.

use buddahbot::routes;
use tower::ServiceBuilder;
use vercel_runtime::axum::VercelLayer;

#[tokio::main]
async fn main() -> Result<(), vercel_runtime::Error> {
    let router = buddahbot::function(routes::threads);
    vercel_runtime::run(
        ServiceBuilder::new()
            .layer(VercelLayer::new())
            .service(router),
    )
    .await
}
