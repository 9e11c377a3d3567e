//! The browser's calls to the REST API (hydrate only): one function per request the pages
//! make, each answering [`AppError`] on failure.
//!
//! **Invariant:** requests are same-origin, so the HttpOnly session cookie goes with them;
//! no token is ever read or stored by this code. A request answered `401` is sent once more
//! after the access token is renewed ([`crate::session_renewal`]), so a tab that slept past
//! its token's expiry works on when the session lives.

use gloo_net::http::{Request, Response};
use serde::de::DeserializeOwned;
use web_sys::{File, FormData};

use crate::error::{AppError, ErrorEnvelope};
use crate::protocol::PROJECT_HEADER;
use crate::resources::{
    CreatedDocuments, Credentials, Document, DocumentChanges, DocumentList, DocumentPipeline,
    ProjectList, ProjectsOverview, SearchResults, Session,
};

/// The body of a 2xx answer as `T`, or the error the answer means.
async fn read<T: DeserializeOwned>(
    response: Result<Response, gloo_net::Error>,
) -> Result<T, AppError> {
    let response = checked(response).await?;
    response
        .json::<T>()
        .await
        .map_err(|_| AppError::Unavailable)
}

/// Sends the request `build` makes; when it is answered `401`, renews the access token and,
/// if that worked, sends it once more.
/// `build` is a trait object so the eight call sites share one copy of this code in the WASM.
async fn send(
    build: &dyn Fn() -> Result<Request, gloo_net::Error>,
) -> Result<Response, gloo_net::Error> {
    let response = build()?.send().await?;
    if response.status() != 401 || crate::session_renewal::renew().await.is_err() {
        return Ok(response);
    }
    build()?.send().await
}

/// The answer if it is a 2xx, else the error it means, with the server's message.
async fn checked(response: Result<Response, gloo_net::Error>) -> Result<Response, AppError> {
    let response = response.map_err(|_| AppError::Unavailable)?;
    if response.ok() {
        return Ok(response);
    }
    let message = response
        .json::<ErrorEnvelope>()
        .await
        .ok()
        .map(|envelope| envelope.error.message);
    Err(AppError::from_status(response.status(), message))
}

/// `POST /api/auth/login`: sets the session cookie.
pub async fn log_in(credentials: &Credentials) -> Result<Session, AppError> {
    let request = Request::post("/api/auth/login")
        .json(credentials)
        .map_err(|_| AppError::Unavailable)?;
    read(request.send().await).await
}

/// `POST /api/auth/refresh`: a new access token from the session, in a new cookie.
pub async fn renew_session() -> Result<Session, AppError> {
    read(Request::post("/api/auth/refresh").send().await).await
}

/// `POST /api/auth/logout`: clears the session cookie.
pub async fn log_out() -> Result<(), AppError> {
    checked(Request::post("/api/auth/logout").send().await)
        .await
        .map(drop)
}

/// `GET /api/projects`.
pub async fn list_projects() -> Result<ProjectList, AppError> {
    read(send(&|| Request::get("/api/projects").build()).await).await
}

/// `GET /api/projects/overview`.
pub async fn projects_overview() -> Result<ProjectsOverview, AppError> {
    read(send(&|| Request::get("/api/projects/overview").build()).await).await
}

/// `GET /api/documents?limit=<limit>&after=<after>`: one page of the list, with `next` when
/// more follow.
pub async fn list_documents_page(
    project: &str,
    limit: usize,
    after: Option<&str>,
) -> Result<DocumentList, AppError> {
    let limit = limit.to_string();
    read(
        send(&|| {
            let mut query = vec![("limit", limit.as_str())];
            query.extend(after.map(|after| ("after", after)));
            Request::get("/api/documents")
                .query(query)
                .header(PROJECT_HEADER, project)
                .build()
        })
        .await,
    )
    .await
}

/// `POST /api/documents` as a multipart upload of `files`.
pub async fn upload_documents(project: &str, files: &[File]) -> Result<CreatedDocuments, AppError> {
    let form = FormData::new().map_err(|_| AppError::Unavailable)?;
    for file in files {
        form.append_with_blob_and_filename("file", file, &file.name())
            .map_err(|_| AppError::Unavailable)?;
    }
    read(
        send(&|| {
            Request::post("/api/documents")
                .header(PROJECT_HEADER, project)
                .body(form.clone())
        })
        .await,
    )
    .await
}

/// `PATCH /api/documents/{id}`: a new title.
pub async fn rename_document(project: &str, id: &str, title: &str) -> Result<Document, AppError> {
    let changes = DocumentChanges {
        title: title.to_owned(),
    };
    read(
        send(&|| {
            Request::patch(&format!("/api/documents/{id}"))
                .header(PROJECT_HEADER, project)
                .json(&changes)
        })
        .await,
    )
    .await
}

/// `GET /api/documents/{id}/pipeline` of `project`.
pub async fn document_pipeline(project: &str, id: &str) -> Result<DocumentPipeline, AppError> {
    read(
        send(&|| {
            Request::get(&format!("/api/documents/{id}/pipeline"))
                .header(PROJECT_HEADER, project)
                .build()
        })
        .await,
    )
    .await
}

/// `GET /api/search?q=<query>` in `project`.
pub async fn search(project: &str, query: &str) -> Result<SearchResults, AppError> {
    read(
        send(&|| {
            Request::get("/api/search")
                .query([("q", query)])
                .header(PROJECT_HEADER, project)
                .build()
        })
        .await,
    )
    .await
}

/// `DELETE /api/documents/{id}`.
pub async fn delete_document(project: &str, id: &str) -> Result<(), AppError> {
    checked(
        send(&|| {
            Request::delete(&format!("/api/documents/{id}"))
                .header(PROJECT_HEADER, project)
                .build()
        })
        .await,
    )
    .await
    .map(drop)
}
