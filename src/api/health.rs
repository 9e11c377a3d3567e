//! `GET /healthz`: ready when the database answers.

use crate::storage::Pool;
use anyhow::Context;
use app::protocol::HealthReport;
use axum::Json;
use axum::extract::State;

use crate::error::ApiError;
use crate::storage;

/// Answers 200 when the server can serve requests, 500 with the error envelope otherwise.
pub async fn check_health(State(pool): State<Pool>) -> Result<Json<HealthReport>, ApiError> {
    storage::ping(&pool)
        .await
        .context("the database does not answer")?;
    Ok(Json(HealthReport {
        status: "ok".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    }))
}
