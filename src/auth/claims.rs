//! [`Claims`]: what a verified token says about its bearer.

use app::protocol::ProjectId;
use serde::{Deserialize, Serialize};

/// The `projects` entry that grants every project (services only).
pub const ALL_PROJECTS: &str = "*";
/// The `role` that may call `POST /api/events/publish`.
pub const PUBLISHER_ROLE: &str = "publisher";

/// The claims of an access token, as API.md lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user or service id.
    pub sub: String,
    /// Expiry, in seconds since the Unix epoch.
    pub exp: u64,
    /// The project ids the bearer may use; [`ALL_PROJECTS`] means every one.
    pub projects: Vec<String>,
    /// `publisher` may publish events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The server-side session of a login's token: the token passes only while it lives.
    /// Tokens minted for services from the secret name none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

impl Claims {
    /// True when the token grants `project`.
    pub fn allows(&self, project: &ProjectId) -> bool {
        self.projects
            .iter()
            .any(|allowed| allowed == ALL_PROJECTS || allowed == project.as_str())
    }

    /// The projects the token grants, or `None` when it grants every project (`"*"`).
    pub fn project_ids(&self) -> Option<&[String]> {
        let every_project = self.projects.iter().any(|project| project == ALL_PROJECTS);
        (!every_project).then_some(self.projects.as_slice())
    }

    /// True when the token carries the publisher role.
    pub fn is_publisher(&self) -> bool {
        self.role.as_deref() == Some(PUBLISHER_ROLE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(projects: &[&str], role: Option<&str>) -> Claims {
        Claims {
            sub: "user_1".to_owned(),
            exp: 0,
            projects: projects.iter().map(|p| (*p).to_owned()).collect(),
            role: role.map(str::to_owned),
            sid: None,
        }
    }

    #[test]
    fn a_token_allows_only_its_projects_unless_it_has_the_wildcard() {
        let project: ProjectId = "proj_1".parse().expect("valid");
        let other: ProjectId = "proj_2".parse().expect("valid");
        assert!(claims(&["proj_1"], None).allows(&project));
        assert!(!claims(&["proj_1"], None).allows(&other));
        assert!(!claims(&[], None).allows(&project));
        assert!(claims(&["*"], None).allows(&other));
        assert!(!claims(&["proj_*"], None).allows(&project));
    }

    #[test]
    fn the_wildcard_grants_every_project_and_a_list_only_its_own() {
        assert_eq!(claims(&["*"], None).project_ids(), None);
        assert_eq!(
            claims(&["proj_1", "proj_2"], None).project_ids(),
            Some(["proj_1".to_owned(), "proj_2".to_owned()].as_slice())
        );
        assert_eq!(claims(&[], None).project_ids(), Some([].as_slice()));
    }

    #[test]
    fn only_the_publisher_role_publishes() {
        assert!(claims(&[], Some("publisher")).is_publisher());
        assert!(!claims(&[], Some("admin")).is_publisher());
        assert!(!claims(&[], None).is_publisher());
    }
}
