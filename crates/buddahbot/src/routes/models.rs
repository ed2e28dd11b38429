//! `GET /api/models` and `GET /api/models/:id`: the models a request may name
//! (`ALLOWED_MODELS`), in the OpenAI list format, so `client.models.list()` and
//! `client.models.retrieve(id)` of the OpenAI SDKs work, and a model picker can be filled.
//!
//! Each model has one extension, `default`: whether it is `DEFAULT_MODEL`, the one a request
//! that names none gets. The list is the configuration's, not the model API's: a model the
//! API serves but `ALLOWED_MODELS` leaves out would be refused, so it is not listed.

use axum::{
    Json,
    extract::State,
    response::{IntoResponse, Response},
};
use serde::Serialize;

use crate::{app::App, error::ApiError, http::QueryParams};

/// `{object: "list", data}`.
#[derive(Serialize)]
pub struct ModelList {
    object: &'static str,
    data: Vec<Model>,
}

/// One model as OpenAI's `GET /v1/models` shows it, plus `default`.
#[derive(Serialize)]
pub struct Model {
    id: String,
    object: &'static str,
    /// OpenAI's creation time (Unix seconds); the configuration does not know it, so 0.
    created: u64,
    /// The host of the model API that serves it.
    owned_by: String,
    default: bool,
}

fn models(app: &App) -> impl Iterator<Item = Model> {
    let config = &app.config().upstream;
    let host = app.upstream().host().to_owned();
    config.allowed_models.iter().map(move |id| Model {
        id: id.clone(),
        object: "model",
        created: 0,
        owned_by: host.clone(),
        default: *id == config.default_model,
    })
}

/// `GET /api/models`, or one model with `?id=` (as `vercel.json` passes `/api/models/:id`).
///
/// # Errors
/// - [`ApiError::NotFound`] for an `id` that is not an allowed model.
pub async fn get(State(app): State<App>, query: QueryParams) -> Result<Response, ApiError> {
    if let Some(id) = query.get_once("id") {
        let model = models(&app)
            .find(|m| m.id == id)
            .ok_or(ApiError::NotFound("model"))?;
        return Ok(Json(model).into_response());
    }
    let list = ModelList {
        object: "list",
        data: models(&app).collect(),
    };
    Ok(Json(list).into_response())
}
