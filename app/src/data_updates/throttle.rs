//! [`throttled`]: runs an action (a reload, a repeated query) at most once per pause however
//! often events ask for it, for the pages that reload rather than apply each event.

use std::time::Duration;

use leptos::prelude::*;

/// `action`, run at most once per `pause` after the returned function is first called; the
/// calls in between fold into that run. In the browser only (during SSR no event comes).
pub fn throttled(
    pause: Duration,
    action: impl Fn() + Copy + Send + Sync + 'static,
) -> impl Fn() + Copy + Send + Sync + 'static {
    let scheduled = StoredValue::new(false);
    move || {
        if scheduled.get_value() {
            return;
        }
        scheduled.set_value(true);
        #[cfg(feature = "hydrate")]
        set_timeout(
            move || {
                scheduled.set_value(false);
                action();
            },
            pause,
        );
        #[cfg(not(feature = "hydrate"))]
        let _ = (action, pause);
    }
}
