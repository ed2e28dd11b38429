//! `POST /api/chat`: not built yet (the streaming chat issue); answers a clear 501.

use crate::error::ApiError;

pub async fn post() -> ApiError {
    ApiError::NotImplemented("Chat")
}
