//! `/api/documents`: list, read, create (JSON or a multipart upload of text files), rename
//! and delete the documents of the caller's project.

use axum::Json;
use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use http_body_util::LengthLimitError;

use app::resources::{
    CreatedDocuments, DocumentChanges, DocumentDetail, DocumentList, NewDocument,
};

use crate::auth::ProjectAccess;
use crate::documents::{DocumentError, DocumentService};
use crate::error::ApiError;

/// Files one upload may carry.
pub const MAX_UPLOAD_FILES: usize = 20;
/// Room for JSON syntax and the title around a document's text in a JSON body.
const JSON_OVERHEAD: usize = 16 * 1024;
/// File name endings accepted by an upload, compared without regard to case.
const TEXT_EXTENSIONS: [&str; 3] = [".txt", ".md", ".markdown"];

/// The project's documents, newest first, with `lastEventId` to resume the stream from.
pub async fn list_documents(
    access: ProjectAccess,
    State(documents): State<DocumentService>,
) -> Result<Json<DocumentList>, ApiError> {
    Ok(Json(documents.list(&access.project).await?))
}

/// One document of the project, with its text; 404 when the project has no such document.
pub async fn get_document(
    access: ProjectAccess,
    State(documents): State<DocumentService>,
    Path(id): Path<String>,
) -> Result<Json<DocumentDetail>, ApiError> {
    Ok(Json(documents.get(&access.project, &id).await?))
}

/// Creates documents from a JSON body (`{"title","content"}`, answered with the document)
/// or a `multipart/form-data` upload of `.txt`/`.md` files (answered with
/// `{"documents": [...]}`). Either every document is created or none.
pub async fn create_document(
    access: ProjectAccess,
    State(documents): State<DocumentService>,
    request: Request,
) -> Result<Response, ApiError> {
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        let multipart = Multipart::from_request(request, &())
            .await
            .map_err(|error| ApiError::InvalidRequest(format!("bad multipart body: {error}")))?;
        let uploads = read_uploads(multipart, &documents).await?;
        let created = documents.create(&access.project, uploads).await?;
        return Ok((
            StatusCode::CREATED,
            Json(CreatedDocuments { documents: created }),
        )
            .into_response());
    }
    if content_type.starts_with("application/json") {
        let limit = documents.max_document_bytes() + JSON_OVERHEAD;
        let body = read_limited(request.into_body(), limit).await?;
        let new_document: NewDocument = serde_json::from_slice(&body).map_err(|error| {
            ApiError::InvalidRequest(format!(
                "the body must be JSON with a title and a content: {error}"
            ))
        })?;
        documents.validate("the document", &new_document)?;
        let created = documents
            .create(&access.project, vec![new_document])
            .await?;
        let document = created.into_iter().next().ok_or_else(|| {
            ApiError::Internal(anyhow::anyhow!("creating one document returned none"))
        })?;
        return Ok((StatusCode::CREATED, Json(document)).into_response());
    }
    Err(ApiError::InvalidRequest(
        "send JSON (application/json) or files (multipart/form-data)".to_owned(),
    ))
}

/// Renames a document: `{"title": "..."}`.
pub async fn rename_document(
    access: ProjectAccess,
    State(documents): State<DocumentService>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<app::resources::Document>, ApiError> {
    let changes: DocumentChanges = serde_json::from_slice(&body).map_err(|error| {
        ApiError::InvalidRequest(format!("the body must be JSON with a title: {error}"))
    })?;
    Ok(Json(
        documents
            .rename(&access.project, &id, &changes.title)
            .await?,
    ))
}

/// Deletes a document and stops its jobs; answers 204.
pub async fn delete_document(
    access: ProjectAccess,
    State(documents): State<DocumentService>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    documents.delete(&access.project, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reads the files of an upload, checking each as it arrives: a file over the size limit
/// stops the upload at once, before the rest of it is read.
async fn read_uploads(
    mut multipart: Multipart,
    documents: &DocumentService,
) -> Result<Vec<NewDocument>, ApiError> {
    let limit = documents.max_document_bytes();
    let mut uploads = Vec::new();
    let mut title = None;
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|error| ApiError::InvalidRequest(format!("bad multipart body: {error}")))?
    {
        let Some(file_name) = field.file_name().map(str::to_owned) else {
            if field.name() == Some("title") {
                let text = field.text().await.map_err(|error| {
                    ApiError::InvalidRequest(format!("bad title field: {error}"))
                })?;
                title = Some(text);
            }
            continue;
        };
        if uploads.len() == MAX_UPLOAD_FILES {
            return Err(ApiError::InvalidRequest(format!(
                "an upload may carry at most {MAX_UPLOAD_FILES} files"
            )));
        }
        let lower = file_name.to_ascii_lowercase();
        if !TEXT_EXTENSIONS
            .iter()
            .any(|extension| lower.ends_with(extension))
        {
            return Err(DocumentError::Invalid(format!(
                "{file_name} is not a text file: upload .txt or .md files"
            ))
            .into());
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = field
            .chunk()
            .await
            .map_err(|error| ApiError::InvalidRequest(format!("bad multipart body: {error}")))?
        {
            if bytes.len() + chunk.len() > limit {
                return Err(DocumentError::TooLarge(format!(
                    "{file_name} is over the limit of {limit} bytes"
                ))
                .into());
            }
            bytes.extend_from_slice(&chunk);
        }
        let content = String::from_utf8(bytes)
            .map_err(|_| DocumentError::Invalid(format!("{file_name} is not UTF-8 text")))?;
        let content = content
            .strip_prefix('\u{feff}')
            .map(str::to_owned)
            .unwrap_or(content);
        let upload = NewDocument {
            title: file_name.clone(),
            content,
        };
        documents.validate(&file_name, &upload)?;
        uploads.push(upload);
    }
    if uploads.is_empty() {
        return Err(ApiError::InvalidRequest(
            "the upload has no files (send them in `file` fields)".to_owned(),
        ));
    }
    if let (Some(title), [only]) = (
        title.filter(|title| !title.trim().is_empty()),
        uploads.as_mut_slice(),
    ) {
        only.title = title;
    }
    Ok(uploads)
}

/// The body, or 413 when it is over `limit` bytes.
async fn read_limited(body: Body, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|error| {
        let too_large =
            std::error::Error::source(&error).is_some_and(|source| source.is::<LengthLimitError>());
        if too_large {
            DocumentError::TooLarge(format!("the document is over the limit of {limit} bytes"))
                .into()
        } else {
            ApiError::InvalidRequest(format!("the body could not be read: {error}"))
        }
    })
}
