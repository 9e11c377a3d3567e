//! `POST /api/events/publish`: backend services hand an event to the bus.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::Value;

use app::protocol::NewEvent;

use crate::api::json::{ApiJson, JsonBody};
use crate::auth::Publisher;
use crate::error::ApiError;
use crate::events::EventBus;

/// The answer to a publish: the id of the stream event that carries it.
#[derive(Serialize)]
pub struct Published {
    id: String,
}

/// A publish body: an event that is whole and valid, or `invalid_event` (`missing_project`
/// when it names no project), as API.md's error table says.
impl JsonBody for NewEvent {
    fn parse(bytes: &[u8]) -> Result<Self, ApiError> {
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|error| ApiError::InvalidEvent(format!("the body is not JSON: {error}")))?;
        if value.is_object() && value.get("projectId").is_none_or(Value::is_null) {
            return Err(ApiError::MissingProject);
        }
        let event: NewEvent = serde_json::from_value(value)
            .map_err(|error| ApiError::InvalidEvent(error.to_string()))?;
        event
            .validate()
            .map_err(|error| ApiError::InvalidEvent(error.to_string()))?;
        Ok(event)
    }
}

/// Publishes the event in the body; answers `202` with the stream event's id.
pub async fn publish_event(
    Publisher(claims): Publisher,
    State(event_bus): State<Arc<dyn EventBus>>,
    ApiJson(event): ApiJson<NewEvent>,
) -> Result<(StatusCode, Json<Published>), ApiError> {
    if !claims.allows(&event.project_id) {
        return Err(ApiError::ForbiddenProject);
    }
    let id = event_bus.publish(event).await?;
    Ok((StatusCode::ACCEPTED, Json(Published { id: id.to_string() })))
}
