//! [`Notifications`]: the project's `notification` events for people (a document ready, its
//! entities found, a job failed), as toasts and as a list behind a bell with an unread count.
//!
//! **Invariant:** a toast never takes the focus: toasts sit in a polite live region, so a
//! screen reader reads them when it is idle, and the reader keeps typing where they were.
//! Both lists are bounded ([`KEPT`], [`TOASTS`]); the oldest go first.

use std::collections::VecDeque;

use leptos::either::Either;
use leptos::prelude::*;
use leptos_router::components::A;

use crate::data_updates::use_data_updates;
use crate::pages::document::{DocumentRoute, is_document_address};
use crate::pages::fetch_ahead;
use crate::protocol::{Notification, NotificationLevel};

/// Notifications the list keeps.
const KEPT: usize = 50;
/// Toasts shown at once.
const TOASTS: usize = 3;
/// How long a toast stays.
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
const TOAST_FOR: std::time::Duration = std::time::Duration::from_secs(8);

/// A notification as shown, with a key of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shown {
    key: u64,
    notification: Notification,
}

/// The bell with its unread count and list, and the toasts; for the app's header.
#[component]
pub fn Notifications() -> impl IntoView {
    let kept = RwSignal::new(VecDeque::<Shown>::new());
    let toasts = RwSignal::new(VecDeque::<Shown>::new());
    let unread = RwSignal::new(0_usize);
    let open = RwSignal::new(false);
    let next_key = StoredValue::new(0_u64);
    use_data_updates().subscribe("notification:*", move |event| {
        let Some(notification) = event.notification() else {
            return;
        };
        let key = next_key.get_value();
        next_key.set_value(key + 1);
        let shown = Shown { key, notification };
        kept.update(|kept| push_bounded(kept, shown.clone(), KEPT));
        toasts.update(|toasts| push_bounded(toasts, shown, TOASTS));
        if !open.get_untracked() {
            unread.update(|unread| *unread += 1);
        }
        #[cfg(feature = "hydrate")]
        set_timeout(move || dismiss(toasts, key), TOAST_FOR);
    });

    let bell_label = move || match unread.get() {
        0 => "Notifications".to_owned(),
        1 => "Notifications, 1 unread".to_owned(),
        count => format!("Notifications, {count} unread"),
    };
    let toggle = move |_| {
        open.update(|open| *open = !*open);
        unread.set(0);
    };
    view! {
        <div class="notifications">
            <button
                type="button"
                class="icon-button bell"
                aria-label=bell_label
                aria-expanded=move || open.get().to_string()
                aria-controls="notification-list"
                on:click=toggle
            >
                <svg
                    class="bell-icon"
                    viewBox="0 0 24 24"
                    width="20"
                    height="20"
                    aria-hidden="true"
                >
                    <path d="M12 3a5 5 0 0 0-5 5v4l-2 3h14l-2-3V8a5 5 0 0 0-5-5z" />
                    <path d="M10 18a2 2 0 0 0 4 0" />
                </svg>
                <Show when=move || unread.get() != 0>
                    <span class="bell-count" aria-hidden="true" data-testid="unread-count">
                        {move || unread.get()}
                    </span>
                </Show>
            </button>
            <Show when=move || open.get()>
                <section
                    id="notification-list"
                    class="notification-panel card"
                    aria-label="Notifications"
                    on:keydown=move |event: leptos::ev::KeyboardEvent| {
                        if event.key() == "Escape" {
                            open.set(false);
                        }
                    }
                >
                    <Show
                        when=move || !kept.with(VecDeque::is_empty)
                        fallback=|| view! { <p class="muted">"Nothing yet."</p> }
                    >
                        <ul data-testid="notification-list">
                            <For
                                each=move || kept.get()
                                key=|shown| shown.key
                                children=move |shown| view! { <li><NotificationText notification=shown.notification /></li> }
                            />
                        </ul>
                    </Show>
                </section>
            </Show>
        </div>
        <div class="toasts" role="status" aria-live="polite" data-testid="toasts">
            <For
                each=move || toasts.get()
                key=|shown| shown.key
                children=move |shown| {
                    let key = shown.key;
                    let level = level_name(shown.notification.level);
                    view! {
                        <div class="toast card" data-level=level data-testid="toast">
                            <NotificationText notification=shown.notification />
                            <button
                                type="button"
                                class="icon-button"
                                aria-label="Dismiss"
                                on:click=move |_| dismiss(toasts, key)
                            >
                                "✕"
                            </button>
                        </div>
                    }
                }
            />
        </div>
    }
}

/// A notification's words and its link.
#[component]
fn NotificationText(notification: Notification) -> impl IntoView {
    let Notification {
        level,
        title,
        body,
        link,
    } = notification;
    // A link to a document's page (the links notifications carry) fetches that page's module
    // ahead, as the documents table's links do.
    let fetch_page = if link.as_deref().is_some_and(is_document_address) {
        Either::Left(fetch_ahead::<DocumentRoute>())
    } else {
        Either::Right(())
    };
    view! {
        <div class="notification" data-level=level_name(level) {..fetch_page}>
            <strong>{title}</strong>
            {body.map(|body| view! { <span class="muted">" "{body}</span> })}
            {link.map(|link| view! { " " <A href=link>"Open"</A> })}
        </div>
    }
}

fn level_name(level: NotificationLevel) -> &'static str {
    match level {
        NotificationLevel::Info => "info",
        NotificationLevel::Success => "success",
        NotificationLevel::Warning => "warning",
        NotificationLevel::Error => "error",
    }
}

/// Adds `item` at the front, dropping the oldest beyond `bound`.
fn push_bounded<T>(items: &mut VecDeque<T>, item: T, bound: usize) {
    items.push_front(item);
    items.truncate(bound);
}

fn dismiss(toasts: RwSignal<VecDeque<Shown>>, key: u64) {
    toasts.try_update(|toasts| toasts.retain(|shown| shown.key != key));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_come_first_and_the_oldest_go_beyond_the_bound() {
        let mut items = VecDeque::new();
        for item in 0..5 {
            push_bounded(&mut items, item, 3);
        }
        assert_eq!(items, [4, 3, 2]);
    }
}
