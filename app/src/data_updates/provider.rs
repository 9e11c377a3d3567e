//! [`DataUpdatesProvider`] and [`use_data_updates`]: one event stream per provider, shared by
//! every live component below it through the [`DataUpdates`] handle.
//!
//! **Invariant:** subscriptions live in the registry, not in the connection, so they survive
//! reconnects and project switches unchanged; a [`Subscription`] that is dropped, or whose
//! owner is disposed, is removed from the registry and never called again.
//!
//! During SSR the provider renders its children and opens nothing: the state stays
//! [`ConnectionState::Closed`] and no callback runs.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use leptos::prelude::*;

use crate::data_updates::pattern::IntoPattern;
use crate::data_updates::registry::{Registry, SubscriptionId};
use crate::protocol::{EntityEvent, ProjectId};

/// What a subscriber is called with; `Send + Sync` because Leptos signals are.
type Callback = Arc<dyn Fn(&EntityEvent) + Send + Sync>;

/// Default silence after which the client takes the connection for dead: 2.5 times the
/// server's default heartbeat of 30 s.
pub const DEFAULT_SILENCE_LIMIT: Duration = Duration::from_secs(75);

/// The server's heartbeat interval (`HEARTBEAT_SECS`), which the server provides to the pages
/// it renders, so that their streams wait for 2.5 heartbeats of silence whatever the setting
/// (with a fixed limit, heartbeats over 75 s apart would end quiet streams that were fine).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerHeartbeat(pub Duration);

impl ServerHeartbeat {
    /// The silence after which a stream of this server is taken for dead.
    pub fn silence_limit(self) -> Duration {
        self.0.saturating_mul(5) / 2
    }
}

/// Where the connection to the event stream stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// The first attempt for the current project is under way.
    Connecting,
    /// The stream is open: events arrive live.
    Open,
    /// The stream was lost; the next attempt starts in `retry_in`.
    Reconnecting {
        /// Attempts made since the stream was last open.
        attempt: u32,
        /// The delay before the next attempt.
        retry_in: Duration,
    },
    /// The session is over (the server refused to renew its access token) or the project
    /// was refused (403): no retry.
    Unauthorized,
    /// No project is active, or this is the server rendering: nothing is open.
    Closed,
}

/// How the provider's client connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamOptions {
    /// A token sent as `Authorization: Bearer`; `None` in the app, whose session is the
    /// HttpOnly cookie (the token is never kept where scripts can read it).
    pub bearer_token: Option<String>,
    /// Silence after which the connection is taken for dead and reopened.
    pub silence_limit: Duration,
}

impl Default for StreamOptions {
    fn default() -> Self {
        Self {
            bearer_token: None,
            silence_limit: DEFAULT_SILENCE_LIMIT,
        }
    }
}

impl StreamOptions {
    /// The app's options: the defaults, with the silence limit of the server that rendered
    /// the page (found during SSR, sent with the page for hydration).
    pub fn of_rendering_server() -> Self {
        let silence_limit_ms =
            leptos::server::SharedValue::new(rendering_server_silence_limit_ms).into_inner();
        Self {
            silence_limit: Duration::from_millis(silence_limit_ms),
            ..Self::default()
        }
    }
}

/// The silence limit of the server rendering this page, in milliseconds.
#[cfg(feature = "ssr")]
fn rendering_server_silence_limit_ms() -> u64 {
    let limit = use_context::<ServerHeartbeat>()
        .map_or(DEFAULT_SILENCE_LIMIT, ServerHeartbeat::silence_limit);
    u64::try_from(limit.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(not(feature = "ssr"))]
fn rendering_server_silence_limit_ms() -> u64 {
    u64::try_from(DEFAULT_SILENCE_LIMIT.as_millis()).unwrap_or(u64::MAX)
}

/// The handle [`use_data_updates`] returns: subscribe to events, watch the connection, ask
/// for a refetch. `Copy`, so closures can capture it freely.
#[derive(Clone, Copy)]
pub struct DataUpdates {
    /// Callbacks by pattern.
    registry: StoredValue<Registry<Callback>>,
    /// Where the connection stands.
    state: RwSignal<ConnectionState>,
    /// Counts the times subscribers must refetch (the server said `resync`, or the user
    /// asked); components track it and reload their data when it changes.
    resyncs: RwSignal<u64>,
    /// The event id each project's data was loaded at, for the first connect to it.
    resume_points: StoredValue<HashMap<ProjectId, String>>,
}

impl DataUpdates {
    pub(crate) fn new() -> Self {
        Self {
            registry: StoredValue::new(Registry::new()),
            state: RwSignal::new(ConnectionState::Closed),
            resyncs: RwSignal::new(0),
            resume_points: StoredValue::new(HashMap::new()),
        }
    }

    /// Calls `callback` with every event `pattern` matches (a [`Pattern`] or its text, such
    /// as `"document:*"`), for as long as the current reactive owner (the component) lives,
    /// or until [`Subscription::unsubscribe`]. Outside any owner, only `unsubscribe` ends it.
    ///
    /// Subscribing never reconnects the stream. During SSR the callback is kept but never
    /// called.
    ///
    /// # Panics
    ///
    /// When `pattern` is text that is no pattern (see [`IntoPattern`]).
    #[track_caller]
    pub fn subscribe(
        &self,
        pattern: impl IntoPattern,
        callback: impl Fn(&EntityEvent) + Send + Sync + 'static,
    ) -> Subscription {
        let pattern = pattern.into_pattern();
        let callback: Callback = Arc::new(callback);
        let id = self
            .registry
            .try_update_value(|registry| registry.subscribe(pattern, callback));
        if let Some(id) = id
            && Owner::current().is_some()
        {
            let updates = *self;
            on_cleanup(move || updates.unsubscribe(id));
        }
        Subscription { updates: *self, id }
    }

    /// Where the connection stands.
    pub fn connection_state(&self) -> ReadSignal<ConnectionState> {
        self.state.read_only()
    }

    /// Changes each time subscribers must refetch their data: after a `resync` from the
    /// server (events were missed) or [`DataUpdates::request_resync`].
    pub fn resyncs(&self) -> ReadSignal<u64> {
        self.resyncs.read_only()
    }

    /// Asks every subscriber to refetch, as the manual refresh control does when live
    /// updates are paused.
    pub fn request_resync(&self) {
        self.resyncs.update(|count| *count += 1);
    }

    /// Records that `project`'s data was loaded at `event_id` (the `lastEventId` of a list
    /// endpoint), so the next connection to that project resumes from it and misses
    /// nothing that changed after the load.
    pub fn resume_from(&self, project: &ProjectId, event_id: String) {
        self.resume_points.update_value(|points| {
            points.insert(project.clone(), event_id);
        });
    }

    /// Takes the recorded resume point of `project`, if any.
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    pub(crate) fn take_resume_point(&self, project: &ProjectId) -> Option<String> {
        self.resume_points
            .try_update_value(|points| points.remove(project))
            .flatten()
    }

    /// Where the connection stands now, without tracking.
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    pub(crate) fn current_state(&self) -> ConnectionState {
        self.state
            .try_get_untracked()
            .unwrap_or(ConnectionState::Closed)
    }

    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    pub(crate) fn set_state(&self, state: ConnectionState) {
        if self.state.try_get_untracked() != Some(state) {
            self.state.try_set(state);
        }
    }

    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    pub(crate) fn resynced(&self) {
        self.resyncs.try_update(|count| *count += 1);
    }

    /// Calls every subscriber `event` matches, each once, in subscription order; a
    /// subscription removed by an earlier callback of the same event is skipped.
    #[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
    pub(crate) fn dispatch(&self, event: &EntityEvent) {
        let Some(recipients) = self
            .registry
            .try_with_value(|registry| registry.recipients(event))
        else {
            return;
        };
        for (id, callback) in recipients {
            let subscribed = self
                .registry
                .try_with_value(|registry| registry.contains(id))
                .unwrap_or(false);
            if subscribed {
                callback(event);
            }
        }
    }

    fn unsubscribe(&self, id: SubscriptionId) {
        // The provider may be gone already, taking the registry with it.
        self.registry
            .try_update_value(|registry| registry.unsubscribe(id));
    }
}

/// One subscription of [`DataUpdates::subscribe`]: it lives as long as the component
/// that made it, so it may be dropped or ignored; [`Subscription::unsubscribe`] ends it
/// sooner.
pub struct Subscription {
    updates: DataUpdates,
    /// `None` when the provider was already gone.
    id: Option<SubscriptionId>,
}

impl Subscription {
    /// Stops the callback now.
    pub fn unsubscribe(self) {
        if let Some(id) = self.id {
            self.updates.unsubscribe(id);
        }
    }
}

/// Provides [`DataUpdates`] to its children and keeps one event stream open for `project`.
///
/// When `project` changes the stream reconnects to the new project; every subscription is
/// kept. `None` closes the stream. The first connection to a project resumes from the id
/// given to [`DataUpdates::resume_from`], later ones from the last event seen.
#[component]
pub fn DataUpdatesProvider(
    /// The active project; `None` while no project is shown (or after logout).
    #[prop(into)]
    project: Signal<Option<ProjectId>>,
    /// How to connect; the defaults suit the app's own pages.
    #[prop(optional)]
    options: StreamOptions,
    children: Children,
) -> impl IntoView {
    let updates = DataUpdates::new();
    provide_context(updates);
    #[cfg(feature = "hydrate")]
    crate::data_updates::client::start(updates, project, options);
    #[cfg(not(feature = "hydrate"))]
    let _ = (project, options);
    children()
}

/// The [`DataUpdates`] of the nearest [`DataUpdatesProvider`].
///
/// # Panics
///
/// When called outside a [`DataUpdatesProvider`].
pub fn use_data_updates() -> DataUpdates {
    use_context::<DataUpdates>()
        .expect("use_data_updates() must be called inside a <DataUpdatesProvider>")
}
