//! The data a page shows first: loaded by the server while it renders (through the
//! [`server::PageDataSource`] the server provides as context), sent along with the HTML, and
//! loaded again in the browser through the REST API when the page refetches.
//!
//! **Invariant:** both paths give the same [`DocumentsPageData`] for the same session and
//! project, each list with the `lastEventId` it was read at.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::resources::{DocumentList, DocumentPipeline, Project, ProjectsOverview, SearchResults};

/// What the documents page needs: the user's projects, the one shown and its documents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentsPageData {
    /// Every project the session opens, sorted by name.
    pub projects: Vec<Project>,
    /// The project shown.
    pub project: Project,
    /// Its documents, with the event id to resume the stream from.
    pub list: DocumentList,
}

impl DocumentsPageData {
    /// Picks the requested project if the session opens it, else the first one. (A build
    /// of the wire types alone, such as the load tool's, loads no page.)
    #[cfg(any(feature = "ssr", feature = "hydrate", test))]
    fn pick(
        projects: Vec<Project>,
        requested: Option<&str>,
    ) -> Result<(Vec<Project>, Project), AppError> {
        let project = requested
            .and_then(|requested| projects.iter().find(|project| project.id == requested))
            .or_else(|| projects.first())
            .cloned()
            .ok_or_else(|| AppError::Rejected("your account has no project yet".to_owned()))?;
        Ok((projects, project))
    }
}

/// The documents page's data for `requested` (a project id from the address, if any),
/// loaded on the server during SSR and through the REST API in the browser.
pub fn documents_page_resource(
    requested: Memo<Option<String>>,
) -> Resource<Result<DocumentsPageData, AppError>> {
    #[cfg(feature = "ssr")]
    let source = server::context();
    Resource::new(
        move || requested.get(),
        move |requested| {
            #[cfg(feature = "ssr")]
            {
                let source = source.clone();
                async move {
                    match source {
                        Some((source, headers)) => {
                            server::load_documents_page(source, headers, requested).await
                        }
                        None => Err(AppError::Unavailable),
                    }
                }
            }
            #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
            {
                send_wrapper::SendWrapper::new(browser::load_documents_page(requested))
            }
            #[cfg(not(any(feature = "ssr", feature = "hydrate")))]
            {
                let _ = requested;
                async { Err(AppError::Unavailable) }
            }
        },
    )
}

/// The start page's data: the reader's projects with their document counts, or `None`
/// for a reader who is not signed in (nothing is fetched then). `refetches` reloads it.
pub fn home_page_resource(
    signed_in: Signal<bool>,
) -> Resource<Result<Option<ProjectsOverview>, AppError>> {
    #[cfg(feature = "ssr")]
    let source = server::context();
    Resource::new(
        move || signed_in.get(),
        move |signed_in| {
            #[cfg(feature = "ssr")]
            {
                let source = source.clone();
                async move {
                    match (signed_in, source) {
                        (false, _) => Ok(None),
                        (true, Some((source, headers))) => {
                            source.0.projects_overview(headers).await.map(Some)
                        }
                        (true, None) => Err(AppError::Unavailable),
                    }
                }
            }
            #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
            {
                send_wrapper::SendWrapper::new(async move {
                    if signed_in {
                        crate::rest::projects_overview().await.map(Some)
                    } else {
                        Ok(None)
                    }
                })
            }
            #[cfg(not(any(feature = "ssr", feature = "hydrate")))]
            {
                let _ = signed_in;
                async { Err(AppError::Unavailable) }
            }
        },
    )
}

/// A document page's data: document `id` of `project` (the address's, else the followed
/// one; the server finds the document's own when neither is known).
pub fn document_page_resource(
    id: Memo<String>,
    project: Memo<Option<String>>,
) -> Resource<Result<DocumentPipeline, AppError>> {
    #[cfg(feature = "ssr")]
    let source = server::context();
    Resource::new(
        move || (id.get(), project.get()),
        move |(id, project)| {
            #[cfg(feature = "ssr")]
            {
                let source = source.clone();
                async move {
                    let project = match project.map(|project| project.parse()) {
                        Some(Ok(project)) => Some(project),
                        Some(Err(_)) => return Err(AppError::NotFound),
                        None => None,
                    };
                    match source {
                        Some((source, headers)) => {
                            source.0.document_pipeline(headers, project, id).await
                        }
                        None => Err(AppError::Unavailable),
                    }
                }
            }
            #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
            {
                send_wrapper::SendWrapper::new(async move {
                    let project = project.ok_or(AppError::NotFound)?;
                    crate::rest::document_pipeline(&project, &id).await
                })
            }
            #[cfg(not(any(feature = "ssr", feature = "hydrate")))]
            {
                let _ = (id, project);
                async { Err(AppError::Unavailable) }
            }
        },
    )
}

/// What the search page shows: the project searched (the address's if the session opens
/// it, else the first) and, for a query, its results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchPageData {
    /// The project searched.
    pub project: Project,
    /// The results of the query; `None` without one.
    pub results: Option<SearchResults>,
}

/// The search page's data for `requested` (a project id from the address) and `query`.
pub fn search_page_resource(
    requested: Memo<Option<String>>,
    query: Memo<String>,
) -> Resource<Result<SearchPageData, AppError>> {
    #[cfg(feature = "ssr")]
    let source = server::context();
    Resource::new(
        move || (requested.get(), query.get()),
        move |(requested, query)| {
            #[cfg(feature = "ssr")]
            {
                let source = source.clone();
                async move {
                    let Some((source, headers)) = source else {
                        return Err(AppError::Unavailable);
                    };
                    let projects = source.0.list_projects(headers.clone()).await?.projects;
                    let (_, project) = DocumentsPageData::pick(projects, requested.as_deref())?;
                    let results = if query.trim().is_empty() {
                        None
                    } else {
                        let project_id = project.id.parse().map_err(|_| AppError::Forbidden)?;
                        Some(source.0.search(headers, project_id, query).await?)
                    };
                    Ok(SearchPageData { project, results })
                }
            }
            #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
            {
                send_wrapper::SendWrapper::new(async move {
                    let projects = crate::rest::list_projects().await?.projects;
                    let (_, project) = DocumentsPageData::pick(projects, requested.as_deref())?;
                    let results = if query.trim().is_empty() {
                        None
                    } else {
                        Some(crate::rest::search(&project.id, &query).await?)
                    };
                    Ok(SearchPageData { project, results })
                })
            }
            #[cfg(not(any(feature = "ssr", feature = "hydrate")))]
            {
                let _ = (requested, query);
                async { Err(AppError::Unavailable) }
            }
        },
    )
}

#[cfg(all(feature = "hydrate", not(feature = "ssr")))]
mod browser {
    use super::*;
    use crate::resources::FIRST_SCREEN_DOCUMENTS;
    use crate::rest;

    pub async fn load_documents_page(
        requested: Option<String>,
    ) -> Result<DocumentsPageData, AppError> {
        let projects = rest::list_projects().await?.projects;
        let (projects, project) = DocumentsPageData::pick(projects, requested.as_deref())?;
        let list = rest::list_documents_page(&project.id, FIRST_SCREEN_DOCUMENTS, None).await?;
        Ok(DocumentsPageData {
            projects,
            project,
            list,
        })
    }
}

/// What the server provides so pages can load their data while it renders.
#[cfg(feature = "ssr")]
pub mod server {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;

    use http::HeaderMap;
    use leptos::prelude::*;

    use crate::error::AppError;
    use crate::page_data::DocumentsPageData;
    use crate::protocol::ProjectId;
    use crate::resources::{
        DocumentList, DocumentPipeline, FIRST_SCREEN_DOCUMENTS, ProjectList, ProjectsOverview,
        SearchResults,
    };

    /// A boxed, sendable future, as the trait's methods return.
    pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

    /// The server's answers to the page loads, authorised from the request's headers exactly
    /// as the REST routes authorise them.
    pub trait PageDataSource: Send + Sync + 'static {
        /// `GET /api/projects` for the caller the headers name.
        fn list_projects(&self, headers: HeaderMap) -> BoxFuture<Result<ProjectList, AppError>>;

        /// `GET /api/projects/overview` for the caller the headers name.
        fn projects_overview(
            &self,
            headers: HeaderMap,
        ) -> BoxFuture<Result<ProjectsOverview, AppError>>;

        /// `GET /api/documents/{id}/pipeline` for the caller the headers name, in `project`,
        /// or in the document's own project when `None` (a link that names no project).
        fn document_pipeline(
            &self,
            headers: HeaderMap,
            project: Option<ProjectId>,
            id: String,
        ) -> BoxFuture<Result<DocumentPipeline, AppError>>;

        /// `GET /api/search?q=<query>` in `project` for the caller the headers name.
        fn search(
            &self,
            headers: HeaderMap,
            project: ProjectId,
            query: String,
        ) -> BoxFuture<Result<SearchResults, AppError>>;

        /// `GET /api/documents?limit=<limit>` of `project` for the caller the headers name:
        /// the first page.
        fn list_documents(
            &self,
            headers: HeaderMap,
            project: ProjectId,
            limit: usize,
        ) -> BoxFuture<Result<DocumentList, AppError>>;
    }

    /// The context value the server provides to every rendered route.
    #[derive(Clone)]
    pub struct PageData(pub Arc<dyn PageDataSource>);

    /// The provided source and the request's headers, when rendering a request.
    pub(crate) fn context() -> Option<(PageData, HeaderMap)> {
        let source = use_context::<PageData>()?;
        let parts = use_context::<http::request::Parts>()?;
        Some((source, parts.headers))
    }

    pub(crate) async fn load_documents_page(
        source: PageData,
        headers: HeaderMap,
        requested: Option<String>,
    ) -> Result<DocumentsPageData, AppError> {
        let projects = source.0.list_projects(headers.clone()).await?.projects;
        let (projects, project) = DocumentsPageData::pick(projects, requested.as_deref())?;
        let project_id: ProjectId = project.id.parse().map_err(|_| AppError::Forbidden)?;
        // A screenful renders at once; the page loads the rest once it is live.
        let list = source
            .0
            .list_documents(headers, project_id, FIRST_SCREEN_DOCUMENTS)
            .await?;
        Ok(DocumentsPageData {
            projects,
            project,
            list,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(id: &str) -> Project {
        Project {
            id: id.to_owned(),
            name: id.to_uppercase(),
        }
    }

    #[test]
    fn the_requested_project_is_shown_only_when_the_session_opens_it() {
        let projects = vec![project("proj_a"), project("proj_b")];

        let (_, shown) =
            DocumentsPageData::pick(projects.clone(), Some("proj_b")).expect("a project");
        assert_eq!(shown.id, "proj_b");
        let (_, shown) =
            DocumentsPageData::pick(projects.clone(), Some("proj_x")).expect("a project");
        assert_eq!(shown.id, "proj_a");
        let (_, shown) = DocumentsPageData::pick(projects, None).expect("a project");
        assert_eq!(shown.id, "proj_a");
        assert!(DocumentsPageData::pick(Vec::new(), Some("proj_a")).is_err());
    }
}
