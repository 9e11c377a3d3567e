//! [`ServerPageData`]: the data the server-rendered pages load, authorised from the
//! request's headers by the same extractors as the REST routes.
//!
//! **Invariant:** a page rendered on the server shows exactly what `GET /api/projects` and
//! `GET /api/documents` (and `GET /api/projects/overview`) would answer the same request, and
//! nothing a REST call would refuse.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::{HeaderMap, HeaderValue, Request};

use app::error::AppError;
use app::page_data::server::{BoxFuture, PageData, PageDataSource};
use app::protocol::{PROJECT_HEADER, ProjectId};
use app::resources::{
    DocumentList, DocumentPipeline, ProjectList, ProjectsOverview, SearchResults,
};

use crate::auth::{Authenticated, Claims, ProjectAccess};
use crate::error::ApiError;
use crate::state::AppState;
use crate::storage::{documents, projects};

/// Answers the pages' loads from the application state.
pub struct ServerPageData {
    state: AppState,
}

impl ServerPageData {
    /// The context value Leptos routes get (see `startup::assemble_router`).
    pub fn context(state: AppState) -> PageData {
        PageData(Arc::new(Self { state }))
    }
}

impl PageDataSource for ServerPageData {
    fn list_projects(&self, headers: HeaderMap) -> BoxFuture<Result<ProjectList, AppError>> {
        let state = self.state.clone();
        Box::pin(async move {
            let claims = authenticated(&state, headers).await?;
            let projects = projects::list_projects(&state.pool, claims.project_ids())
                .await
                .map_err(|error| app_error(error.into()))?;
            Ok(ProjectList { projects })
        })
    }

    fn projects_overview(
        &self,
        headers: HeaderMap,
    ) -> BoxFuture<Result<ProjectsOverview, AppError>> {
        let state = self.state.clone();
        Box::pin(async move {
            let claims = authenticated(&state, headers).await?;
            projects::overview(&state.pool, claims.project_ids())
                .await
                .map_err(|error| app_error(error.into()))
        })
    }

    fn document_pipeline(
        &self,
        headers: HeaderMap,
        project: Option<ProjectId>,
        id: String,
    ) -> BoxFuture<Result<DocumentPipeline, AppError>> {
        let state = self.state.clone();
        Box::pin(async move {
            // A link without the project (a notification's) names the document alone; one
            // in a project the caller may not see is not found, as the API says of it.
            let (project, looked_up) = match project {
                Some(project) => (project, false),
                None => (
                    documents::project_of(&state.pool, &id)
                        .await
                        .map_err(|error| app_error(error.into()))?
                        .and_then(|project| project.parse().ok())
                        .ok_or(AppError::NotFound)?,
                    true,
                ),
            };
            let access = match project_access(&state, headers, &project).await {
                Err(AppError::Forbidden) if looked_up => return Err(AppError::NotFound),
                access => access?,
            };
            state
                .documents
                .pipeline(&access.project, &id)
                .await
                .map_err(|error| app_error(error.into()))
        })
    }

    fn search(
        &self,
        headers: HeaderMap,
        project: ProjectId,
        query: String,
    ) -> BoxFuture<Result<SearchResults, AppError>> {
        let state = self.state.clone();
        Box::pin(async move {
            let access = project_access(&state, headers, &project).await?;
            state
                .search
                .search(&access.project, query, None)
                .await
                .map_err(app_error)
        })
    }

    fn list_documents(
        &self,
        headers: HeaderMap,
        project: ProjectId,
        limit: usize,
    ) -> BoxFuture<Result<DocumentList, AppError>> {
        let state = self.state.clone();
        Box::pin(async move {
            let access = project_access(&state, headers, &project).await?;
            state
                .documents
                .list(&access.project, Some(limit), None)
                .await
                .map_err(|error| app_error(error.into()))
        })
    }
}

/// The claims of the caller `headers` name, as [`Authenticated`] checks them.
async fn authenticated(state: &AppState, headers: HeaderMap) -> Result<Claims, AppError> {
    let mut parts = request_parts(headers);
    let Authenticated(claims) = Authenticated::from_request_parts(&mut parts, state)
        .await
        .map_err(app_error)?;
    Ok(claims)
}

/// The caller's access to `project`, as [`ProjectAccess`] checks it for `X-Project-Id`.
async fn project_access(
    state: &AppState,
    mut headers: HeaderMap,
    project: &ProjectId,
) -> Result<ProjectAccess, AppError> {
    let project_header =
        HeaderValue::from_str(project.as_str()).map_err(|_| AppError::Forbidden)?;
    headers.insert(PROJECT_HEADER, project_header);
    let mut parts = request_parts(headers);
    ProjectAccess::from_request_parts(&mut parts, state)
        .await
        .map_err(app_error)
}

/// Request parts carrying only `headers`, for the extractors.
fn request_parts(headers: HeaderMap) -> axum::http::request::Parts {
    let (mut parts, ()) = Request::new(()).into_parts();
    parts.headers = headers;
    parts
}

/// What the page shows for an API error; the cause of a 5xx is logged here, once.
fn app_error(error: ApiError) -> AppError {
    let status = error.status().as_u16();
    if status >= 500 {
        tracing::error!(error = ?error, "a page could not load its data");
    }
    AppError::from_status(status, Some(error.to_string()))
}
