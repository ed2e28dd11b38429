//! `POST /api/chat` and its OpenAI-SDK alias `/api/chat/completions`.

use axum::{
    Extension,
    extract::State,
    http::{HeaderMap, Uri},
    response::Response,
};

use crate::{
    app::App,
    auth::Authenticated,
    chat::{self, Background, ChatBody, Dialect, TurnRequest},
    error::ApiError,
    http::{AppJson, guard::ChatLimits},
};

pub async fn post(
    State(app): State<App>,
    Authenticated(user): Authenticated,
    background: Option<Extension<Background>>,
    limits: Option<Extension<ChatLimits>>,
    uri: Uri,
    headers: HeaderMap,
    AppJson(body): AppJson<ChatBody>,
) -> Result<Response, ApiError> {
    let dialect = if uri.path().ends_with("/completions") {
        Dialect::OpenAi
    } else {
        Dialect::Native
    };
    let header_thread = headers.get("x-thread-id").and_then(|v| v.to_str().ok());
    let request = TurnRequest::parse(body, header_thread, dialect, app.config())?;
    let background = background.map(|Extension(b)| b).unwrap_or_default();
    let limits = limits.map(|Extension(ChatLimits(l))| l).unwrap_or_default();
    chat::run(&app, user, request, &limits, background).await
}
