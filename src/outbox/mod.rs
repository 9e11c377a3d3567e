//! The transactional outbox: every change writes the events that announce it into the
//! `outbox` table in its own transaction ([`Outbox::write`]), and the [`relay`] of the
//! instance that wrote them publishes them on the event bus, in order, then deletes them.
//!
//! So a crash between a commit and its publication loses nothing: the rows are still there,
//! and the next start of the instance, or another instance once the dead one's lease has run
//! out, publishes them. A row published but not yet deleted when the crash came is not
//! published again: its events name it ([`app::protocol::NewEvent::origins`]), and a relay
//! taking rows over first asks the bus which rows its history already announces.
//!
//! **Invariant:** an event is in the outbox if and only if the change it announces is
//! committed.
//! **Invariant:** the rows of one owner are published in the order they were written.

pub mod relay;

use std::sync::Arc;

use tokio::sync::Notify;

use app::protocol::NewEvent;

use crate::storage::{DbConnection, outbox};

/// Writes events into the outbox as this instance; cheap to clone.
#[derive(Clone, Debug)]
pub struct Outbox {
    /// This instance's name in the outbox, random per start.
    owner: Arc<str>,
    /// Wakes the relay once a transaction that wrote rows has committed.
    wake: Arc<Notify>,
}

impl Default for Outbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Outbox {
    /// The outbox of a new instance.
    pub fn new() -> Self {
        Self {
            owner: format!("inst_{}", crate::random::random_hex::<8>()).into(),
            wake: Arc::new(Notify::new()),
        }
    }

    /// This instance's name in the outbox.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Writes `events`, in order, in the caller's transaction; call [`Outbox::wake`] once it
    /// committed.
    ///
    /// # Errors
    ///
    /// The database fails: the transaction must not commit.
    pub async fn write(
        &self,
        connection: &mut DbConnection,
        events: &[NewEvent],
    ) -> sqlx::Result<()> {
        outbox::insert(connection, &self.owner, events).await
    }

    /// Tells the relay that rows were committed.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}
