//! [`AppError`]: what can go wrong when a page loads or changes data, in words fit for the
//! user.
//!
//! **Invariant:** it carries nothing internal; the server logs causes, the page shows
//! [`AppError`]'s message.

use serde::{Deserialize, Serialize};

/// A failure a page can show or act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum AppError {
    /// No session, or it expired: the page sends the user to the login page.
    #[error("you are not signed in")]
    Unauthorized,
    /// The session does not open this project.
    #[error("you may not see this project")]
    Forbidden,
    /// What the page shows does not exist (any more).
    #[error("it does not exist, or was deleted")]
    NotFound,
    /// The request was refused; the message is the server's.
    #[error("{0}")]
    Rejected(String),
    /// The server could not be reached or failed.
    #[error("the server could not be reached, try again")]
    Unavailable,
}

impl AppError {
    /// The error for an HTTP status outside 2xx, with the server's message when it sent one.
    pub fn from_status(status: u16, message: Option<String>) -> Self {
        match status {
            401 => Self::Unauthorized,
            403 => Self::Forbidden,
            404 => Self::NotFound,
            400..=499 => {
                Self::Rejected(message.unwrap_or_else(|| format!("the request failed ({status})")))
            }
            // At a limit (`503 overloaded`): the server's message says when to try again.
            503 => message.map_or(Self::Unavailable, Self::Rejected),
            _ => Self::Unavailable,
        }
    }
}

/// The error envelope of the REST API: `{"error":{"code","message"}}`.
#[derive(Debug, Clone, Deserialize)]
pub struct ErrorEnvelope {
    /// The error itself.
    pub error: ErrorBody,
}

/// The inside of [`ErrorEnvelope`].
#[derive(Debug, Clone, Deserialize)]
pub struct ErrorBody {
    /// The API.md code, such as `payload_too_large`.
    pub code: String,
    /// A human message.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(status: u16, message: Option<&str>, expected: AppError) {
        assert_eq!(
            AppError::from_status(status, message.map(str::to_owned)),
            expected
        );
    }

    #[test]
    fn statuses_map_to_what_the_page_does_with_them() {
        check(401, Some("expired"), AppError::Unauthorized);
        check(403, None, AppError::Forbidden);
        check(404, Some("not found"), AppError::NotFound);
        check(
            413,
            Some("the upload is too large"),
            AppError::Rejected("the upload is too large".to_owned()),
        );
        check(
            400,
            None,
            AppError::Rejected("the request failed (400)".to_owned()),
        );
        check(500, Some("boom"), AppError::Unavailable);
        check(
            503,
            Some("the server is at its limit of password checks; try again in 1 s"),
            AppError::Rejected(
                "the server is at its limit of password checks; try again in 1 s".to_owned(),
            ),
        );
        check(503, None, AppError::Unavailable);
    }
}
