//! [`Pattern`]: which entity events a subscriber wants, parsed once from `"*"`,
//! `"<entity>:*"` or `"<entity>:<id>"`.
//!
//! **Invariant:** a malformed pattern is an error at subscribe time (a panic at the call,
//! for the text of one: see [`IntoPattern`]), never a subscription that silently matches
//! nothing.

use std::fmt;
use std::str::FromStr;

use crate::protocol::{EntityEvent, EntityId, EntityKind};

/// The events a subscription wants.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Pattern {
    /// `"*"`: every event of the project.
    All,
    /// `"document:*"`: every event about one kind of entity.
    Kind(EntityKind),
    /// `"document:doc_1"`: events about one entity (batches that name it included).
    Entity(EntityKind, EntityId),
}

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad pattern {pattern:?}: {reason}")]
pub struct PatternError {
    /// The refused text.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: String,
}

impl FromStr for Pattern {
    type Err = PatternError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let refuse = |reason: String| PatternError {
            pattern: text.to_owned(),
            reason,
        };
        if text == "*" {
            return Ok(Self::All);
        }
        let Some((kind, id)) = text.split_once(':') else {
            return Err(refuse(
                "expected \"*\", \"<entity>:*\" or \"<entity>:<id>\"".to_owned(),
            ));
        };
        let kind = EntityKind::from_name(kind).ok_or_else(|| {
            let known: Vec<&str> = EntityKind::ALL.iter().map(|kind| kind.as_str()).collect();
            refuse(format!(
                "unknown entity {kind:?}; known: {}",
                known.join(", ")
            ))
        })?;
        if id == "*" {
            return Ok(Self::Kind(kind));
        }
        let id = id.parse().map_err(|error| refuse(format!("{error}")))?;
        Ok(Self::Entity(kind, id))
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::All => formatter.write_str("*"),
            Self::Kind(kind) => write!(formatter, "{}:*", kind.as_str()),
            Self::Entity(kind, id) => write!(formatter, "{}:{id}", kind.as_str()),
        }
    }
}

impl Pattern {
    /// True when `event` is one this pattern wants.
    pub fn matches(&self, event: &EntityEvent) -> bool {
        match self {
            Self::All => true,
            Self::Kind(kind) => *kind == event.entity,
            Self::Entity(kind, id) => {
                *kind == event.entity
                    && (event.id.as_ref() == Some(id)
                        || event.ids.as_ref().is_some_and(|ids| ids.contains(id)))
            }
        }
    }
}

/// What [`crate::data_updates::DataUpdates::subscribe`] takes: a [`Pattern`], or its text
/// (`"document:*"`), checked at the call.
pub trait IntoPattern {
    /// The pattern.
    ///
    /// # Panics
    ///
    /// For text that is no pattern: a mistake in the program, which the first run of the
    /// component shows (in the browser's console), not a subscription that silently
    /// matches nothing. A pattern built from data (an id from the server) should be a
    /// [`Pattern::Entity`], which cannot be wrong.
    fn into_pattern(self) -> Pattern;
}

impl IntoPattern for Pattern {
    fn into_pattern(self) -> Pattern {
        self
    }
}

impl IntoPattern for &str {
    #[track_caller]
    fn into_pattern(self) -> Pattern {
        match self.parse() {
            Ok(pattern) => pattern,
            Err(error) => panic!("subscribe: {error}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{EventType, NewEvent};

    #[track_caller]
    fn check(text: &str, expected: Pattern) {
        let parsed: Pattern = text.parse().expect("a valid pattern");
        assert_eq!(parsed, expected);
        assert_eq!(
            parsed.to_string(),
            text,
            "display gives the canonical text back"
        );
    }

    #[track_caller]
    fn check_refused(text: &str, reason_contains: &str) {
        let error = text.parse::<Pattern>().expect_err("refused");
        assert!(error.to_string().contains(reason_contains), "{error}");
    }

    #[test]
    fn parses_the_three_forms() {
        check("*", Pattern::All);
        check("document:*", Pattern::Kind(EntityKind::Document));
        check(
            "extraction_job:job_7",
            Pattern::Entity(EntityKind::ExtractionJob, "job_7".parse().expect("valid")),
        );
    }

    #[test]
    fn refuses_what_would_match_nothing() {
        check_refused("", "expected");
        check_refused("document", "expected");
        check_refused("documents:*", "unknown entity \"documents\"");
        check_refused(":doc_1", "unknown entity");
        check_refused("document:", "entity id");
        check_refused("document:doc 1", "entity id");
        check_refused("**", "expected");
    }

    #[test]
    fn an_entity_pattern_matches_its_id_and_batches_naming_it() {
        let pattern: Pattern = "document:doc_1".parse().expect("valid");
        let event = |id: &str| {
            NewEvent::single(
                EventType::Updated,
                EntityKind::Document,
                id.parse().expect("valid"),
                "p".parse().expect("valid"),
                None,
            )
            .into_event("t".to_owned())
        };
        assert!(pattern.matches(&event("doc_1")));
        assert!(!pattern.matches(&event("doc_2")));
        let batch = NewEvent::batch(
            EntityKind::Document,
            vec![
                "doc_0".parse().expect("valid"),
                "doc_1".parse().expect("valid"),
            ],
            "p".parse().expect("valid"),
            None,
        )
        .into_event("t".to_owned());
        assert!(pattern.matches(&batch));
        assert!(Pattern::Kind(EntityKind::Document).matches(&batch));
        assert!(!Pattern::Kind(EntityKind::Chunk).matches(&batch));
    }

    #[test]
    fn pattern_text_is_checked_at_the_call() {
        assert_eq!("chunk:*".into_pattern(), Pattern::Kind(EntityKind::Chunk));
        let refused = std::panic::catch_unwind(|| "documents:*".into_pattern());
        let message = refused.expect_err("a panic");
        let message = message
            .downcast_ref::<String>()
            .expect("a formatted message");
        assert!(
            message.contains("unknown entity \"documents\""),
            "{message}"
        );
    }
}
