//! [`StreamsPerUser`]: how many streams each token subject has open, and the cap on it.
//!
//! **Invariant:** a subject is remembered only while it has a stream open, so memory follows
//! the open connections (themselves capped), and a slot is given back when its stream ends,
//! however it ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::error::ApiError;

/// How long a user refused for too many streams is told to wait.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// Open streams per subject, at most `max` each; cheap to clone.
#[derive(Clone, Debug)]
pub struct StreamsPerUser {
    open: Arc<Mutex<HashMap<String, usize>>>,
    max: usize,
}

/// One open stream of a subject; dropping it closes the slot.
#[derive(Debug)]
pub struct UserStreamSlot {
    open: Arc<Mutex<HashMap<String, usize>>>,
    sub: String,
}

impl StreamsPerUser {
    /// At most `max` (at least 1) streams per subject.
    pub fn new(max: usize) -> Self {
        Self {
            open: Arc::new(Mutex::new(HashMap::new())),
            max: max.max(1),
        }
    }

    /// Takes a slot for one more stream of `sub`.
    ///
    /// # Errors
    ///
    /// [`ApiError::RateLimited`] when `sub` has its `max` streams open.
    pub fn open(&self, sub: &str) -> Result<UserStreamSlot, ApiError> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(sub.to_owned()).or_insert(0);
        if *count >= self.max {
            return Err(ApiError::RateLimited {
                message: "too many event streams are open for this user",
                retry_after: RETRY_AFTER,
            });
        }
        *count += 1;
        Ok(UserStreamSlot {
            open: self.open.clone(),
            sub: sub.to_owned(),
        })
    }
}

impl Drop for UserStreamSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.sub) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.sub);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subject_gets_its_slots_back_as_its_streams_end() {
        let streams = StreamsPerUser::new(2);
        let first = streams.open("ada").expect("a slot");
        let second = streams.open("ada").expect("a slot");
        assert!(matches!(
            streams.open("ada"),
            Err(ApiError::RateLimited { .. })
        ));
        let other = streams.open("bob").expect("subjects are apart");
        drop(first);
        let third = streams.open("ada").expect("a slot came back");
        drop((second, third, other));
        assert!(
            streams.open.lock().expect("not poisoned").is_empty(),
            "nobody is remembered once their streams ended"
        );
    }
}
