//! `POST /api/events/publish`: backend services hand an event to the bus.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header::CONTENT_LENGTH;
use axum::http::{HeaderMap, StatusCode};
use http_body_util::LengthLimitError;
use serde::Serialize;
use serde_json::Value;

use app::protocol::NewEvent;

use crate::auth::Publisher;
use crate::error::ApiError;
use crate::events::EventBus;

/// Largest accepted body, as API.md says.
pub const MAX_PUBLISH_BODY: usize = 64 * 1024;

/// The answer to a publish: the id of the stream event that carries it.
#[derive(Serialize)]
pub struct Published {
    id: String,
}

/// Publishes the event in the body; answers `202` with the stream event's id.
pub async fn publish_event(
    Publisher(claims): Publisher,
    State(event_bus): State<Arc<dyn EventBus>>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Published>), ApiError> {
    let declared_length = headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared_length.is_some_and(|length| length > MAX_PUBLISH_BODY) {
        return Err(ApiError::PayloadTooLarge);
    }
    let bytes = axum::body::to_bytes(body, MAX_PUBLISH_BODY)
        .await
        .map_err(|error| {
            let too_large = std::error::Error::source(&error)
                .is_some_and(|source| source.is::<LengthLimitError>());
            if too_large {
                ApiError::PayloadTooLarge
            } else {
                ApiError::InvalidEvent(format!("the body could not be read: {error}"))
            }
        })?;

    let value: Value = serde_json::from_slice(&bytes)
        .map_err(|error| ApiError::InvalidEvent(format!("the body is not JSON: {error}")))?;
    if value.get("projectId").is_none_or(Value::is_null) && value.is_object() {
        return Err(ApiError::MissingProject);
    }
    let event: NewEvent =
        serde_json::from_value(value).map_err(|error| ApiError::InvalidEvent(error.to_string()))?;
    event
        .validate()
        .map_err(|error| ApiError::InvalidEvent(error.to_string()))?;
    if !claims.allows(&event.project_id) {
        return Err(ApiError::ForbiddenProject);
    }
    let id = event_bus.publish(event).await?;
    Ok((StatusCode::ACCEPTED, Json(Published { id: id.to_string() })))
}
