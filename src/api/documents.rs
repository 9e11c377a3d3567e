//! `/api/documents`: list, read, create (JSON or a multipart upload of text files), rename
//! and delete the documents of the caller's project.

use axum::Json;
use axum::body::Body;
use axum::extract::multipart::{Field, MultipartError};
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use http_body_util::Limited;
use serde::Deserialize;

use app::resources::{
    CreatedDocuments, DocumentChanges, DocumentDetail, DocumentList, DocumentPipeline,
    MAX_DOCUMENTS_PAGE, NewDocument,
};

use crate::api::json::{ApiJson, JsonBody, body_error, declared_length, is_json, read_json};
use crate::auth::ProjectAccess;
use crate::documents::{DocumentError, DocumentService, MAX_TITLE_CHARS};
use crate::error::ApiError;
use crate::storage::documents::ListCursor;

/// Room for JSON syntax and the title around a document's text in a JSON body.
const JSON_OVERHEAD: usize = 16 * 1024;
/// Room for a file part's headers (name, type, boundary) in an upload body.
const PART_OVERHEAD: usize = 4 * 1024;
/// Room for an upload body's text fields and closing boundary.
const FORM_OVERHEAD: usize = 64 * 1024;
/// Largest text field of an upload (the title): its most characters, 4 bytes each.
const MAX_FIELD_BYTES: usize = MAX_TITLE_CHARS * 4;
/// Parts an upload may have besides its files (a title, fields a form adds).
const MAX_EXTRA_PARTS: usize = 16;
/// File name endings accepted by an upload, compared without regard to case.
const TEXT_EXTENSIONS: [&str; 3] = [".txt", ".md", ".markdown"];

impl JsonBody for DocumentChanges {}

/// A document sent as JSON; its limit is the configured document size, so it is read with
/// [`read_json`].
impl JsonBody for NewDocument {
    fn parse(bytes: &[u8]) -> Result<Self, ApiError> {
        serde_json::from_slice(bytes).map_err(|error| {
            ApiError::InvalidRequest(format!(
                "the body must be JSON with a title and a content: {error}"
            ))
        })
    }
}

/// `GET /api/documents`' query: both optional.
#[derive(Deserialize)]
pub struct ListQuery {
    /// The most documents to answer, from 1 to [`MAX_DOCUMENTS_PAGE`]; the answer then has
    /// `next` when more follow.
    limit: Option<String>,
    /// A previous page's `next`: the page starts after it.
    after: Option<String>,
}

/// The project's documents, newest first, with `lastEventId` to resume the stream from: all
/// of them, or one page of at most `limit` (a list of 100,000 documents is 22 MB of JSON,
/// which a browser decodes in one long task; pages keep each task short).
pub async fn list_documents(
    access: ProjectAccess,
    State(documents): State<DocumentService>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<DocumentList>, ApiError> {
    let Query(query) = query.map_err(|rejection| {
        ApiError::InvalidRequest(format!("the query cannot be read: {rejection}"))
    })?;
    let after = query
        .after
        .as_deref()
        .map(|after| {
            ListCursor::parse(after).ok_or_else(|| {
                ApiError::InvalidRequest("after must be a page's next, as given".to_owned())
            })
        })
        .transpose()?;
    let limit = query
        .limit
        .as_deref()
        .map(|limit| {
            limit
                .parse::<usize>()
                .ok()
                .filter(|limit| (1..=MAX_DOCUMENTS_PAGE).contains(limit))
                .ok_or_else(|| {
                    ApiError::InvalidRequest(format!(
                        "limit must be a whole number from 1 to {MAX_DOCUMENTS_PAGE}"
                    ))
                })
        })
        .transpose()?;
    // Without `limit`, the whole list (from after `after`, if given), as API.md has it.
    Ok(Json(
        documents
            .list(&access.project, limit, after.as_ref())
            .await?,
    ))
}

/// One document of the project, with its text; 404 when the project has no such document.
pub async fn get_document(
    access: ProjectAccess,
    State(documents): State<DocumentService>,
    Path(id): Path<String>,
) -> Result<Json<DocumentDetail>, ApiError> {
    Ok(Json(documents.get(&access.project, &id).await?))
}

/// Everything the document's page shows (`GET /api/documents/{id}/pipeline`).
pub async fn document_pipeline(
    access: ProjectAccess,
    State(documents): State<DocumentService>,
    Path(id): Path<String>,
) -> Result<Json<DocumentPipeline>, ApiError> {
    Ok(Json(documents.pipeline(&access.project, &id).await?))
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
        // The whole upload, files, their part headers and any text fields, has a limit
        // derived from the file limits; each file's own limit is checked as it arrives.
        let limit = documents.max_upload_files() * (documents.max_document_bytes() + PART_OVERHEAD)
            + FORM_OVERHEAD;
        let too_large = || -> ApiError {
            DocumentError::TooLarge(format!("the upload is over its limit of {limit} bytes")).into()
        };
        if declared_length(request.headers())
            .is_some_and(|length| length > u64::try_from(limit).unwrap_or(u64::MAX))
        {
            return Err(too_large());
        }
        let request = request.map(|body| Body::new(Limited::new(body, limit)));
        let multipart = Multipart::from_request(request, &())
            .await
            .map_err(|rejection| {
                ApiError::InvalidRequest(format!("bad multipart body: {rejection}"))
            })?;
        let uploads = read_uploads(multipart, &documents, limit).await?;
        let created = documents.create(&access.project, uploads).await?;
        return Ok((
            StatusCode::CREATED,
            Json(CreatedDocuments { documents: created }),
        )
            .into_response());
    }
    if is_json(request.headers()) {
        let limit = documents.max_document_bytes() + JSON_OVERHEAD;
        let new_document: NewDocument =
            read_json(request, limit)
                .await
                .map_err(|error| match error {
                    ApiError::PayloadTooLarge => DocumentError::TooLarge(format!(
                        "the document is over the limit of {limit} bytes"
                    ))
                    .into(),
                    other => other,
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
    Err(ApiError::UnsupportedMediaType(
        "send JSON (application/json) or files (multipart/form-data)".to_owned(),
    ))
}

/// Renames a document: `{"title": "..."}`.
pub async fn rename_document(
    access: ProjectAccess,
    State(documents): State<DocumentService>,
    Path(id): Path<String>,
    ApiJson(changes): ApiJson<DocumentChanges>,
) -> Result<Json<app::resources::Document>, ApiError> {
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
/// stops the upload at once, before the rest of it is read. `limit` is the whole body's.
///
/// Bounded: at most `MAX_UPLOAD_FILES` files of `MAX_DOCUMENT_BYTES` each, text fields of
/// [`MAX_FIELD_BYTES`], and [`MAX_EXTRA_PARTS`] parts besides the files.
async fn read_uploads(
    mut multipart: Multipart,
    documents: &DocumentService,
    limit: usize,
) -> Result<Vec<NewDocument>, ApiError> {
    let max_files = documents.max_upload_files();
    let mut uploads = Vec::new();
    let mut title = None;
    let mut extra_parts = 0;
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|error| multipart_error(&error, limit))?
    {
        let Some(file_name) = field.file_name().map(str::to_owned) else {
            extra_parts += 1;
            if extra_parts > MAX_EXTRA_PARTS {
                return Err(ApiError::InvalidRequest(format!(
                    "an upload may carry at most {MAX_EXTRA_PARTS} fields besides its files"
                )));
            }
            let is_title = field.name() == Some("title");
            let text = read_field(&mut field, MAX_FIELD_BYTES, limit, |limit| {
                ApiError::InvalidRequest(format!("a form field is over the limit of {limit} bytes"))
            })
            .await?;
            if is_title {
                title = Some(String::from_utf8(text).map_err(|_| {
                    ApiError::InvalidRequest("the title field is not UTF-8 text".to_owned())
                })?);
            }
            continue;
        };
        if uploads.len() == max_files {
            return Err(ApiError::InvalidRequest(format!(
                "an upload may carry at most {max_files} files"
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
        let bytes = read_field(&mut field, documents.max_document_bytes(), limit, |max| {
            DocumentError::TooLarge(format!("{file_name} is over the limit of {max} bytes")).into()
        })
        .await?;
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

/// A field's bytes, at most `max`: `too_large(max)` past it, checked as the field arrives.
async fn read_field(
    field: &mut Field<'_>,
    max: usize,
    body_limit: usize,
    too_large: impl Fn(usize) -> ApiError,
) -> Result<Vec<u8>, ApiError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|error| multipart_error(&error, body_limit))?
    {
        if bytes.len() + chunk.len() > max {
            return Err(too_large(max));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// The API error a failed multipart read means: the whole body over `limit`, a stalled body,
/// or a malformed one.
fn multipart_error(error: &MultipartError, limit: usize) -> ApiError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return DocumentError::TooLarge(format!("the upload is over its limit of {limit} bytes"))
            .into();
    }
    match body_error(error) {
        ApiError::InvalidRequest(_) => {
            ApiError::InvalidRequest(format!("bad multipart body: {error}"))
        }
        other => other,
    }
}
