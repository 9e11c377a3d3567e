//! The names a run gives its projects and entities, and the way back from an entity id to the
//! number of the event that carried it.
//!
//! **Invariant:** event n is entity `load_<n>` of project `load_proj_<n mod P>`, and
//! [`event_number`] accepts exactly the ids [`entity_id`] makes.

use app::protocol::{EntityId, ProjectId};

/// The prefix of every entity id a run publishes.
const ENTITY_PREFIX: &str = "load_";

/// The prefix of every project id a run uses.
const PROJECT_PREFIX: &str = "load_proj_";

/// The id of project `project_index`: `load_proj_<k>`.
pub fn project_id(project_index: u32) -> ProjectId {
    format!("{PROJECT_PREFIX}{project_index}")
        .parse()
        .expect("load_proj_ and digits make a valid project id")
}

/// The entity id of event `event_number`: `load_<n>`.
pub fn entity_id(event_number: u64) -> EntityId {
    format!("{ENTITY_PREFIX}{event_number}")
        .parse()
        .expect("load_ and digits make a valid entity id")
}

/// The project of event `event_number` when the run has `project_count` projects.
pub fn project_index_of_event(event_number: u64, project_count: u32) -> u32 {
    let project_index = event_number % u64::from(project_count.max(1));
    u32::try_from(project_index).expect("a remainder of a u32 divisor fits in u32")
}

/// The event number `n` of an entity id `load_<n>`; `None` for any other id, including ones
/// with a sign or leading zeros, which [`entity_id`] never makes.
pub fn event_number(entity_id: &str) -> Option<u64> {
    let digits = entity_id.strip_prefix(ENTITY_PREFIX)?;
    let canonical = !digits.is_empty()
        && digits.bytes().all(|byte| byte.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if canonical { digits.parse().ok() } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_ids_map_back_to_their_event_number() {
        for event_number_in in [0, 7, 10, 123_456, u64::MAX] {
            let id = entity_id(event_number_in);
            assert_eq!(event_number(id.as_str()), Some(event_number_in), "{id}");
        }
        assert_eq!(project_id(3).as_str(), "load_proj_3");
        assert_eq!(project_index_of_event(23, 10), 3);
    }

    #[test]
    fn ids_the_run_never_makes_have_no_event_number() {
        for id in [
            "",
            "load_",
            "load_-1",
            "load_+1",
            "load_01",
            "load_1x",
            "doc_1",
            "LOAD_1",
            "load_99999999999999999999999",
        ] {
            assert_eq!(event_number(id), None, "{id:?}");
        }
    }
}
