//! The browser's connection to `GET /api/events/stream` (hydrate only): `fetch` with a
//! streaming body reader, so that `X-Project-Id`, `Last-Event-ID` and `Authorization` can be
//! sent, which the native `EventSource` cannot. A worker does the network reads
//! ([`crate::data_updates::stream_worker`]) and hands the page what it read at most every
//! 33 ms (`POST_INTERVAL_MS` in `stream_worker.js`); where no worker can start, the page
//! does them itself.
//!
//! One stream per browser and project: the tabs that show a project line up for its Web Lock
//! ([`crate::data_updates::tabs`]). The tab holding it leads: it streams, and posts every
//! event, `resync` and change of state to the others on the project's channel. The others
//! follow: each asks the leader for the events after the point its data was loaded at, then
//! applies what the leader posts, and shows the leader's state. When the leader goes (closed,
//! crashed, or showing another project), the next tab in line leads and resumes from the last
//! event it applied; an event that comes twice around the change is applied once. Where the
//! browser has no Web Locks or no `BroadcastChannel`, every tab streams alone.
//!
//! **Invariant:** at most one connection per provider is live; a connection whose project
//! changed is aborted and never touches the state or calls a subscriber again.
//! An expired access token (`auth_expired`, or `401`) is renewed once from the session
//! ([`crate::session_renewal`]) and the stream resumed at once from the last event id, the
//! state staying as it was; when the session is over, and on `403`, the connection ends for
//! good ([`ConnectionState::Unauthorized`]). Every other failure, and a silence longer than
//! the limit, is retried with backoff and jitter, with the last event id seen, for as long as
//! the page is open.
//! Entity events are dispatched in their order as each delivery of the worker (at most one per
//! 33 ms) or of the leading tab comes, all of it in one task: a burst costs one render per
//! changed cell per frame, and an event for a row out of view asks for no frame at all. No
//! event waits in this tab, so nothing here queues, hidden tabs included.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use leptos::prelude::*;
use send_wrapper::SendWrapper;
use wasm_bindgen::JsValue;
use wasm_bindgen_futures::JsFuture;

use crate::data_updates::backoff::{Backoff, DEFAULT_BASE, DEFAULT_CAP};
use crate::data_updates::provider::{ConnectionState, DataUpdates, StreamOptions};
use crate::data_updates::silence::{Silence, Verdict};
use crate::data_updates::stream_worker::{Delivery, StreamCloser, StreamReader};
use crate::data_updates::tab_relay::{
    RecentIds, RelayedEvent, RelayedState, ReplayBook, TabMessage,
};
use crate::data_updates::tabs::{LeadRequest, TabChannel};
use crate::error::AppError;
use crate::protocol::sse::SseParser;
use crate::protocol::{
    EVENT_STREAM_PATH, EntityEvent, EntityKind, PROJECT_HEADER, ProjectId, StreamMessage,
};

/// The global object that counts the entity events dispatched by entity kind, for
/// benchmarks and tests.
const EVENTS_RECEIVED_PROPERTY: &str = "docpulseEventsReceived";

/// This tab's part in sharing its project's stream.
enum Role {
    /// No other tab can share (the browser lacks Web Locks or `BroadcastChannel`).
    Alone,
    /// Another tab leads; `joined` once its welcome came.
    Follower {
        /// Whether the leader answered this tab's join.
        joined: bool,
    },
    /// This tab streams for all, and keeps the book joining tabs are replayed from.
    Leader {
        /// The events relayed lately.
        book: ReplayBook,
        /// Whether a tab joined: until one does, events go to the book only, so a tab alone
        /// spends nothing on posting them.
        followed: bool,
    },
}

/// One project's events in this tab: its own stream, or the leader's.
struct Connection {
    /// Names this tab on the project's channel.
    tab: String,
    /// Set when the project changed or the provider went away.
    cancelled: Cell<bool>,
    /// Ends the stream's request under way.
    stream: RefCell<Option<StreamCloser>>,
    /// The id of the last event this tab applied: where its stream resumes, and the point it
    /// joins a leader at.
    last_event_id: RefCell<Option<String>>,
    /// Ids applied lately: an event repeated around a change of leader is applied once.
    recent: RefCell<RecentIds>,
    /// Leader, follower or alone.
    role: RefCell<Role>,
    /// The channel to the project's other tabs.
    channel: RefCell<Option<TabChannel>>,
    /// This tab's place in line to lead.
    lead: RefCell<Option<LeadRequest>>,
}

impl Connection {
    fn new(last_event_id: Option<String>) -> Rc<Self> {
        Rc::new(Self {
            tab: format!("tab_{}", js_sys::Math::random().to_bits()),
            cancelled: Cell::new(false),
            stream: RefCell::new(None),
            last_event_id: RefCell::new(last_event_id),
            recent: RefCell::new(RecentIds::default()),
            role: RefCell::new(Role::Alone),
            channel: RefCell::new(None),
            lead: RefCell::new(None),
        })
    }

    /// Whether this tab leads.
    fn leads(&self) -> bool {
        matches!(*self.role.borrow(), Role::Leader { .. })
    }

    /// Posts `message` to the project's other tabs, if there is a channel.
    fn post(&self, message: &TabMessage) {
        if let Some(channel) = &*self.channel.borrow() {
            channel.post(message);
        }
    }

    /// Shows `state`, and tells the followers when this tab leads.
    fn set_state(&self, updates: DataUpdates, state: ConnectionState) {
        updates.set_state(state);
        if self.leads()
            && let Some(state) = RelayedState::of(state)
        {
            self.post(&TabMessage::State { state });
        }
    }

    /// Subscribers refetch; when this tab leads, the followers' too.
    fn resync(&self, updates: DataUpdates) {
        updates.resynced();
        if let Role::Leader { book, .. } = &mut *self.role.borrow_mut() {
            book.clear();
        }
        if self.leads() {
            self.post(&TabMessage::Resync);
        }
    }

    /// Records that the event `id` arrived; `false` when it was applied already.
    fn first_sight(&self, id: &str) -> bool {
        if !self.recent.borrow_mut().first_sight(id) {
            return false;
        }
        // The last id's buffer is reused: ids are short and of much the same length, so an
        // event costs no allocation here.
        let mut last = self.last_event_id.borrow_mut();
        let last = last.get_or_insert_with(String::new);
        last.clear();
        last.push_str(id);
        true
    }

    /// Hands `events`, which this tab's stream delivered, to the followers.
    fn relay(&self, events: Vec<RelayedEvent>) {
        if events.is_empty() {
            return;
        }
        let Role::Leader { book, followed } = &mut *self.role.borrow_mut() else {
            return;
        };
        if !*followed {
            events.into_iter().for_each(|event| book.record(event));
            return;
        }
        for event in &events {
            book.record(event.clone());
        }
        self.post(&TabMessage::Events { events });
    }

    /// Applies `events` another tab relayed, each unless this tab applied it already.
    fn apply_relayed(&self, updates: DataUpdates, events: Vec<RelayedEvent>) {
        let mut applied = Vec::with_capacity(events.len());
        for RelayedEvent { id, data } in events {
            if !self.first_sight(&id) {
                continue;
            }
            match serde_json::from_str(&data) {
                Ok(event) => applied.push(event),
                Err(error) => leptos::logging::warn!("docpulse: skipped a relayed event: {error}"),
            }
        }
        self.apply(updates, &mut applied);
    }

    /// This tab now leads: it keeps the book from its own point and says so.
    fn take_lead(&self) {
        let start = self.last_event_id.borrow().clone();
        *self.role.borrow_mut() = Role::Leader {
            book: ReplayBook::new(start),
            followed: false,
        };
        self.post(&TabMessage::Leader {
            tab: self.tab.clone(),
        });
    }

    /// What another tab of the project said.
    fn hear(self: &Rc<Self>, updates: DataUpdates, message: TabMessage) {
        if self.cancelled.get() {
            return;
        }
        let joined = match &mut *self.role.borrow_mut() {
            Role::Alone => return,
            Role::Leader { book, followed } => {
                if let TabMessage::Join { tab, after } = message {
                    *followed = true;
                    let state = updates.current_state();
                    self.post(&TabMessage::Welcome {
                        tab,
                        events: book.after(after.as_deref()),
                        state: RelayedState::of(state).unwrap_or(RelayedState::Connecting),
                    });
                }
                return;
            }
            Role::Follower { joined } => *joined,
        };
        match message {
            TabMessage::Welcome { tab, events, state } if tab == self.tab && !joined => {
                *self.role.borrow_mut() = Role::Follower { joined: true };
                match events {
                    Some(events) => self.apply_relayed(updates, events),
                    // The leader's book does not reach back to this tab's data: refetch.
                    None => updates.resynced(),
                }
                updates.set_state(state.connection_state());
            }
            // A new leader learns who follows; a joined tab ignores the welcome it gets back.
            TabMessage::Leader { .. } => self.join(),
            TabMessage::Events { events } if joined => self.apply_relayed(updates, events),
            TabMessage::State { state } => updates.set_state(state.connection_state()),
            TabMessage::Resync => updates.resynced(),
            TabMessage::Join { .. } | TabMessage::Welcome { .. } | TabMessage::Events { .. } => {}
        }
    }

    /// The session is over, or the project refused: shows it (to the followers too), and
    /// stops leading, so that a tab of a session signed in since can lead in this one's place.
    fn refused(&self, updates: DataUpdates) {
        self.set_state(updates, ConnectionState::Unauthorized);
        self.lead.borrow_mut().take();
        self.channel.borrow_mut().take();
        *self.role.borrow_mut() = Role::Alone;
    }

    /// Asks the leader for the events after this tab's point.
    fn join(&self) {
        self.post(&TabMessage::Join {
            tab: self.tab.clone(),
            after: self.last_event_id.borrow().clone(),
        });
    }

    /// Dispatches `events` in order, and empties it.
    fn apply(&self, updates: DataUpdates, events: &mut Vec<EntityEvent>) {
        if self.cancelled.get() || events.is_empty() {
            events.clear();
            return;
        }
        for event in events.iter() {
            updates.dispatch(event);
        }
        count_received(events);
        events.clear();
    }

    fn cancel(&self) {
        self.cancelled.set(true);
        if let Some(stream) = self.stream.borrow_mut().take() {
            stream.close();
        }
        // Releases the lead (the next tab in line takes it) or leaves the line.
        self.lead.borrow_mut().take();
        self.channel.borrow_mut().take();
    }
}

/// How one attempt ended.
enum Ending {
    /// The project changed or the provider was disposed.
    Cancelled,
    /// The server refused the session or the project: stop.
    Unauthorized,
    /// The access token expired (`auth_expired`, or `401` on connecting): renew and resume.
    Expired {
        /// Whether the stream had opened before it ended.
        was_open: bool,
    },
    /// Anything else: try again after a delay.
    Retry,
    /// The server is at a limit (`429`, `503`) and said when to come back.
    RetryAfter(Duration),
}

/// Follows `project`: each change aborts the current connection and opens one to the new
/// project; `None` leaves the state [`ConnectionState::Closed`].
pub(crate) fn start(
    updates: DataUpdates,
    project: Signal<Option<ProjectId>>,
    options: StreamOptions,
) {
    let current: Rc<RefCell<Option<Rc<Connection>>>> = Rc::new(RefCell::new(None));
    let on_dispose = SendWrapper::new(current.clone());
    on_cleanup(move || {
        if let Some(connection) = on_dispose.borrow_mut().take() {
            connection.cancel();
        }
    });
    Effect::new(move |_| {
        let project = project.get();
        if let Some(previous) = current.borrow_mut().take() {
            previous.cancel();
        }
        let Some(project) = project else {
            updates.set_state(ConnectionState::Closed);
            return;
        };
        let connection = Connection::new(updates.take_resume_point(&project));
        *current.borrow_mut() = Some(connection.clone());
        share_or_stream(updates, project, options.clone(), connection);
    });
}

/// Follows the project's leading tab, and leads when this tab's turn comes; streams alone
/// where the browser cannot share.
fn share_or_stream(
    updates: DataUpdates,
    project: ProjectId,
    options: StreamOptions,
    connection: Rc<Connection>,
) {
    updates.set_state(ConnectionState::Connecting);
    let listener = Rc::downgrade(&connection);
    let channel = TabChannel::open(&project, move |message| {
        if let Some(connection) = listener.upgrade() {
            connection.hear(updates, message);
        }
    });
    let Some(channel) = channel else {
        leptos::task::spawn_local(run(updates, project, options, connection));
        return;
    };
    *connection.channel.borrow_mut() = Some(channel);
    *connection.role.borrow_mut() = Role::Follower { joined: false };
    let candidate = Rc::downgrade(&connection);
    let leader_project = project.clone();
    let leader_options = options.clone();
    let lead = LeadRequest::ask(&project, move || {
        let Some(connection) = candidate
            .upgrade()
            .filter(|connection| !connection.cancelled.get())
        else {
            return false;
        };
        connection.take_lead();
        leptos::task::spawn_local(run(updates, leader_project, leader_options, connection));
        true
    });
    match lead {
        Some(lead) => {
            *connection.lead.borrow_mut() = Some(lead);
            connection.join();
        }
        None => {
            connection.channel.borrow_mut().take();
            *connection.role.borrow_mut() = Role::Alone;
            leptos::task::spawn_local(run(updates, project, options, connection));
        }
    }
}

/// Connects, reads, and reconnects until cancelled or refused.
async fn run(
    updates: DataUpdates,
    project: ProjectId,
    options: StreamOptions,
    connection: Rc<Connection>,
) {
    let mut backoff = Backoff::new(DEFAULT_BASE, DEFAULT_CAP);
    // Whether a renewal was already tried since the stream was last open: a second refusal
    // after it means the session is over.
    let mut renewal_tried = false;
    connection.set_state(updates, ConnectionState::Connecting);
    loop {
        let renewals_before = crate::session_renewal::renewals();
        let ending = read_stream(&updates, &project, &options, &connection, &mut backoff).await;
        if connection.cancelled.get() {
            return;
        }
        match ending {
            Ending::Cancelled => return,
            Ending::Unauthorized => {
                connection.refused(updates);
                return;
            }
            Ending::Expired { was_open } => {
                if was_open {
                    renewal_tried = false;
                }
                if renewal_tried {
                    connection.refused(updates);
                    return;
                }
                renewal_tried = true;
                // Another part of the tab may have renewed the cookie's token meanwhile.
                let renewed = if crate::session_renewal::renewals() == renewals_before {
                    crate::session_renewal::renew().await
                } else {
                    Ok(())
                };
                if connection.cancelled.get() {
                    return;
                }
                match renewed {
                    Ok(()) => continue,
                    Err(AppError::Unauthorized) => {
                        connection.refused(updates);
                        return;
                    }
                    // The server is out of reach: retry later, renewing again then.
                    Err(_) => renewal_tried = false,
                }
            }
            Ending::Retry | Ending::RetryAfter(_) => {}
        }
        let delay = match ending {
            Ending::RetryAfter(retry_after) => {
                backoff.next_delay_after(retry_after, js_sys::Math::random())
            }
            _ => backoff.next_delay(js_sys::Math::random()),
        };
        connection.set_state(
            updates,
            ConnectionState::Reconnecting {
                attempt: backoff.attempt(),
                retry_in: delay,
            },
        );
        sleep(delay).await;
        if connection.cancelled.get() {
            return;
        }
    }
}

/// One attempt: opens the stream and dispatches its events until it ends.
async fn read_stream(
    updates: &DataUpdates,
    project: &ProjectId,
    options: &StreamOptions,
    connection: &Rc<Connection>,
    backoff: &mut Backoff,
) -> Ending {
    let last_event_id = connection.last_event_id.borrow().clone();
    let Ok(stream) = open_stream(project, options, last_event_id.as_deref()) else {
        return Ending::Retry;
    };
    *connection.stream.borrow_mut() = Some(stream.closer());
    let (status, retry_after) = match stream.next().await {
        Delivery::Head {
            status,
            retry_after,
        } => (status, retry_after),
        _ if connection.cancelled.get() => return Ending::Cancelled,
        _ => return Ending::Retry,
    };
    match status {
        401 => return Ending::Expired { was_open: false },
        403 => return Ending::Unauthorized,
        200..=299 => {}
        429 | 503 => {
            return retry_after
                .and_then(|seconds| seconds.trim().parse().ok())
                .map_or(Ending::Retry, |seconds| {
                    Ending::RetryAfter(Duration::from_secs(seconds))
                });
        }
        _ => return Ending::Retry,
    }

    let watchdog = Watchdog::new(stream.closer(), options.silence_limit);
    let mut parser = SseParser::new();
    loop {
        watchdog.arm();
        let chunk = match stream.next().await {
            Delivery::Bytes(chunk) => chunk,
            _ if connection.cancelled.get() => return Ending::Cancelled,
            // The watchdog closed a silent stream, the network failed, or the server ended it.
            _ => return Ending::Retry,
        };
        if connection.cancelled.get() {
            return Ending::Cancelled;
        }
        let frames = parser.push(&chunk);
        // A `retry:` may come alone (a stopping server's last words), dispatching no frame.
        if let Some(retry) = parser.retry() {
            backoff.set_base_millis(retry);
        }
        // Entity events are applied together, before the next message of another kind.
        let mut applied = Vec::new();
        let mut relayed = Vec::new();
        for frame in frames {
            let message = match StreamMessage::from_frame(&frame) {
                Ok(Some(message)) => message,
                Ok(None) => continue,
                Err(error) => {
                    leptos::logging::warn!("docpulse: skipped an event frame: {error}");
                    continue;
                }
            };
            if !matches!(message, StreamMessage::Entity { .. }) {
                connection.apply(*updates, &mut applied);
            }
            match message {
                StreamMessage::Connected(_) => {
                    backoff.reset();
                    connection.set_state(*updates, ConnectionState::Open);
                }
                StreamMessage::Heartbeat(_) => {}
                StreamMessage::Resync(_) => connection.resync(*updates),
                StreamMessage::AuthExpired(_) => return Ending::Expired { was_open: true },
                StreamMessage::Entity { id, event } => {
                    if id.is_empty() {
                        applied.push(event);
                    } else if connection.first_sight(&id) {
                        applied.push(event);
                        relayed.push(RelayedEvent {
                            id,
                            data: frame.data,
                        });
                    }
                }
            }
            if connection.cancelled.get() {
                return Ending::Cancelled;
            }
        }
        connection.apply(*updates, &mut applied);
        if connection.cancelled.get() {
            return Ending::Cancelled;
        }
        connection.relay(relayed);
    }
}

/// Starts reading the stream (in its worker, or in the page), with the request's headers.
fn open_stream(
    project: &ProjectId,
    options: &StreamOptions,
    last_event_id: Option<&str>,
) -> Result<StreamReader, JsValue> {
    let url = format!("{}{EVENT_STREAM_PATH}", window().location().origin()?);
    let authorization = options
        .bearer_token
        .as_ref()
        .map(|token| format!("Bearer {token}"));
    let mut headers = vec![
        ("Accept", "text/event-stream"),
        (PROJECT_HEADER, project.as_str()),
    ];
    if let Some(last_event_id) = last_event_id {
        headers.push(("Last-Event-ID", last_event_id));
    }
    if let Some(authorization) = &authorization {
        headers.push(("Authorization", authorization));
    }
    StreamReader::open(&url, &headers)
}

/// Closes the stream when nothing arrived for the silence limit ([`Silence`]).
struct Watchdog {
    state: Rc<WatchdogState>,
}

/// What the watchdog's timer reads: shared with it, as it may fire after the stream ended.
struct WatchdogState {
    stream: StreamCloser,
    silence: Cell<Silence>,
    /// The stream ended: the timer, when it fires, does nothing (and so frees its callback).
    ended: Cell<bool>,
}

impl Watchdog {
    fn new(stream: StreamCloser, limit: Duration) -> Self {
        let state = Rc::new(WatchdogState {
            stream,
            silence: Cell::new(Silence::new(limit, js_sys::Date::now())),
            ended: Cell::new(false),
        });
        watch(Rc::clone(&state), limit);
        Self { state }
    }

    /// A wait for the stream's next bytes begins: the silence counts from now.
    fn arm(&self) {
        let mut silence = self.state.silence.get();
        silence.read_at(js_sys::Date::now());
        self.state.silence.set(silence);
    }
}

/// Checks `state`'s silence after `after`: closes a silent stream, or checks again when its
/// silence would reach the limit.
fn watch(state: Rc<WatchdogState>, after: Duration) {
    set_timeout(
        move || {
            if state.ended.get() {
                return;
            }
            match state.silence.get().check(js_sys::Date::now()) {
                Verdict::Silent => state.stream.close(),
                Verdict::WaitMore(rest) => watch(state, rest),
            }
        },
        after,
    );
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.state.ended.set(true);
    }
}

thread_local! {
    /// What [`count_received`] writes to, made at the page's first delivery.
    static RECEIVED: ReceivedCounts = ReceivedCounts::new();
}

/// `window.docpulseEventsReceived`, and each entity kind's name as a JS string with its count
/// so far: counting a delivery's events converts no string and reads nothing back from the
/// page. Bound: one entry per entity kind.
struct ReceivedCounts {
    counts: js_sys::Object,
    /// In the order of [`EntityKind::ALL`].
    kinds: [(JsValue, Cell<f64>); EntityKind::ALL.len()],
}

impl ReceivedCounts {
    fn new() -> Self {
        let counts = js_sys::Object::new();
        let _ = js_sys::Reflect::set(
            &window(),
            &JsValue::from_str(EVENTS_RECEIVED_PROPERTY),
            &counts,
        );
        Self {
            counts,
            kinds: EntityKind::ALL.map(|kind| (JsValue::from_str(kind.as_str()), Cell::new(0.0))),
        }
    }
}

/// Adds the `events` dispatched to `window.docpulseEventsReceived[<entity kind>]`.
fn count_received(events: &[EntityEvent]) {
    let mut added = [0_u32; EntityKind::ALL.len()];
    for event in events {
        if let Some(at) = EntityKind::ALL
            .iter()
            .position(|kind| *kind == event.entity)
        {
            added[at] += 1;
        }
    }
    RECEIVED.with(|received| {
        for ((name, count), added) in received.kinds.iter().zip(added) {
            if added > 0 {
                count.set(count.get() + f64::from(added));
                let _ =
                    js_sys::Reflect::set(&received.counts, name, &JsValue::from_f64(count.get()));
            }
        }
    });
}

/// Waits `delay` on the browser's timer.
async fn sleep(delay: Duration) {
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        let millis = i32::try_from(delay.as_millis()).unwrap_or(i32::MAX);
        let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, millis);
    });
    let _ = JsFuture::from(promise).await;
}
