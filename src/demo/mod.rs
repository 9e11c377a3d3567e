//! The demo account: on the embedded default, the first start creates
//! `demo@docpulse.local` (password `demo`) with two projects and a few documents, so the
//! run command shows real work at once.
//!
//! **Invariant:** seeding happens once: when the demo user exists, nothing is created again
//! (deleting its documents does not bring them back).

use crate::storage::Pool;
use anyhow::Context;

use app::protocol::ProjectId;
use app::resources::NewDocument;

use crate::auth::password::hash_password;
use crate::documents::DocumentService;
use crate::storage::{self, projects};

/// The demo user's email.
pub const DEMO_EMAIL: &str = "demo@docpulse.local";
/// The demo user's password.
pub const DEMO_PASSWORD: &str = "demo";

/// A demo project: its id, its name, and the documents it starts with (title, text).
struct DemoProject {
    id: &'static str,
    name: &'static str,
    documents: &'static [(&'static str, &'static str)],
}

/// The demo projects.
const DEMO_PROJECTS: [DemoProject; 2] = [
    DemoProject {
        id: "proj_history",
        name: "History of computing",
        documents: &[
            (
                "The Analytical Engine.md",
                include_str!("analytical_engine.md"),
            ),
            ("Bletchley Park.md", include_str!("bletchley_park.md")),
            ("ENIAC.txt", include_str!("eniac.txt")),
        ],
    },
    DemoProject {
        id: "proj_space",
        name: "Space exploration",
        documents: &[
            ("Apollo 11.md", include_str!("apollo_11.md")),
            ("Voyager probes.txt", include_str!("voyager.txt")),
        ],
    },
];

/// Creates the demo user, projects and documents unless the demo user exists; says how to
/// sign in either way.
///
/// # Errors
///
/// The database fails, or a document cannot be created.
pub async fn seed(pool: &Pool, documents: &DocumentService) -> anyhow::Result<()> {
    if projects::find_user_by_email(pool, DEMO_EMAIL)
        .await
        .context("cannot look for the demo user")?
        .is_none()
    {
        let user_id = storage::new_id("user");
        let password_hash = hash_password(DEMO_PASSWORD.to_owned()).await?;
        let created = projects::create_user(pool, &user_id, DEMO_EMAIL, &password_hash)
            .await
            .context("cannot create the demo user")?;
        // Several instances starting at once on one database: the one whose insert won
        // seeds the rest.
        let projects_to_seed: &[DemoProject] = if created { &DEMO_PROJECTS } else { &[] };
        for DemoProject {
            id: project_id,
            name,
            documents: texts,
        } in projects_to_seed
        {
            projects::create_project(pool, project_id, name)
                .await
                .with_context(|| format!("cannot create the demo project {project_id}"))?;
            projects::add_member(pool, &user_id, project_id)
                .await
                .context("cannot add the demo user to its project")?;
            let project = ProjectId::try_from((*project_id).to_owned())
                .context("a demo project id is invalid")?;
            let new_documents = texts
                .iter()
                .map(|(title, content)| NewDocument {
                    title: (*title).to_owned(),
                    content: (*content).to_owned(),
                })
                .collect();
            documents
                .create(&project, new_documents)
                .await
                .with_context(|| format!("cannot create the documents of {project_id}"))?;
        }
        if created {
            tracing::info!("created the demo user, two projects and their documents");
        }
    }
    tracing::info!(
        "demo: sign in as {DEMO_EMAIL} with password {DEMO_PASSWORD:?} (DEMO_USER=false turns this off)"
    );
    Ok(())
}
