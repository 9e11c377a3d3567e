//! `docpulse admin ...`: creates projects and users, grants and removes membership, and ends
//! sessions, against the database the configuration names.
//!
//! Ended sessions are written to the database only: every running instance reads the ends
//! there within a quarter of a second (see `auth::revocation`), on any bus.
//!
//! **Invariant:** a password is never taken from the command line, where other users of
//! the machine could read it: it comes from `DOCPULSE_PASSWORD` or standard input.

use std::io::BufRead;

use anyhow::{Context, bail};

use app::protocol::ProjectId;

use crate::auth::password::hash_password;
use crate::config::Config;
use crate::storage::projects::UserRow;
use crate::storage::{self, projects, sessions};

/// The usage text of `docpulse admin`.
pub const USAGE: &str = "\
Usage:
  docpulse admin create-project <project-id> <name>
  docpulse admin create-user <email> [<project-id>...]
  docpulse admin add-member <email> <project-id>
  docpulse admin remove-member <email> <project-id>
  docpulse admin end-sessions <email>

remove-member and end-sessions end the user's sessions: their tokens stop working and their
open event streams end, on every instance, within a second.

create-user reads the password from DOCPULSE_PASSWORD, or else from the first line of
standard input. The database is the one DATA_DIR / DATABASE_URL name (see docpulse --help).
";

/// Runs one admin command (the arguments after `admin`) and returns what to print.
///
/// # Errors
///
/// Bad arguments (with the usage text), or the database refuses the change.
pub async fn run(config: &Config, arguments: &[String]) -> anyhow::Result<String> {
    let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
    match arguments.as_slice() {
        [] | ["help" | "--help" | "-h"] => Ok(USAGE.to_owned()),
        ["create-project", id, name] => {
            let project = parse_project(id)?;
            let pool = storage::connect(&config.storage).await?;
            if !projects::create_project(&pool, project.as_str(), name).await? {
                bail!("a project with the id {id} exists already");
            }
            Ok(format!("created project {id} ({name})\n"))
        }
        ["create-user", email, project_ids @ ..] => {
            let project_ids = project_ids
                .iter()
                .map(|id| parse_project(id))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let password = read_password()?;
            let pool = storage::connect(&config.storage).await?;
            for project in &project_ids {
                ensure_project(&pool, project).await?;
            }
            let user_id = storage::new_id("user");
            let hash = hash_password(password).await?;
            if !projects::create_user(&pool, &user_id, email.trim(), &hash).await? {
                bail!("a user with the email {email} exists already");
            }
            for project in &project_ids {
                projects::add_member(&pool, &user_id, project.as_str()).await?;
            }
            Ok(format!(
                "created user {email} ({user_id}) with access to {} project(s)\n",
                project_ids.len()
            ))
        }
        ["add-member", email, id] => {
            let project = parse_project(id)?;
            let pool = storage::connect(&config.storage).await?;
            ensure_project(&pool, &project).await?;
            let user = find_user(&pool, email).await?;
            projects::add_member(&pool, &user.id, project.as_str()).await?;
            Ok(format!("{email} is a member of {id}\n"))
        }
        ["remove-member", email, id] => {
            let project = parse_project(id)?;
            let pool = storage::connect(&config.storage).await?;
            let user = find_user(&pool, email).await?;
            if !projects::remove_member(&pool, &user.id, project.as_str()).await? {
                bail!("{email} is not a member of {id}");
            }
            // The user's tokens still name the project: only a new login drops it.
            let ended = sessions::end_user_sessions(&pool, &user.id).await?;
            Ok(format!(
                "{email} is no longer a member of {id}; ended {} session(s)\n",
                ended.len()
            ))
        }
        ["end-sessions", email] => {
            let pool = storage::connect(&config.storage).await?;
            let user = find_user(&pool, email).await?;
            let ended = sessions::end_user_sessions(&pool, &user.id).await?;
            Ok(format!("ended {} session(s) of {email}\n", ended.len()))
        }
        _ => bail!("unknown admin command\n\n{USAGE}"),
    }
}

async fn find_user(pool: &crate::storage::Pool, email: &str) -> anyhow::Result<UserRow> {
    projects::find_user_by_email(pool, email)
        .await?
        .with_context(|| format!("no user has the email {email}"))
}

fn parse_project(id: &str) -> anyhow::Result<ProjectId> {
    id.parse().map_err(|error| {
        anyhow::anyhow!("{id:?} is not a valid project id ({error}); use letters, digits, _ or -")
    })
}

async fn ensure_project(pool: &crate::storage::Pool, project: &ProjectId) -> anyhow::Result<()> {
    if !projects::project_exists(pool, project.as_str()).await? {
        bail!(
            "there is no project {project}; create it first with `docpulse admin create-project`"
        );
    }
    Ok(())
}

/// The password from `DOCPULSE_PASSWORD`, or the first line of standard input.
fn read_password() -> anyhow::Result<String> {
    let password = match std::env::var("DOCPULSE_PASSWORD") {
        Ok(password) => password,
        Err(_) => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("cannot read the password from standard input")?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    if password.is_empty() {
        bail!("the password is empty: set DOCPULSE_PASSWORD or pipe it on standard input");
    }
    Ok(password)
}
