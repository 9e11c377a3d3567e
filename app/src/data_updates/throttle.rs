//! [`Throttle`] and [`throttled`]: an action (a reload, a repeated query) run at most once
//! per pause however often events ask for it, for the lists and pages that reload rather
//! than apply each event.

use std::time::Duration;

use leptos::prelude::*;

/// At most one run per pause: the first call schedules the run `pause` later, the calls in
/// between fold into it. `Copy`, so closures and live lists can hold it. In the browser only
/// (during SSR no event comes).
#[derive(Clone, Copy)]
pub struct Throttle {
    scheduled: StoredValue<bool>,
    pause: Duration,
}

impl Throttle {
    /// A throttle of `pause`.
    pub fn new(pause: Duration) -> Self {
        Self {
            scheduled: StoredValue::new(false),
            pause,
        }
    }

    /// Runs `action` after the pause, unless a run is scheduled already.
    pub fn run(&self, action: impl FnOnce() + 'static) {
        if self.scheduled.try_get_value() != Some(false) {
            return;
        }
        self.scheduled.set_value(true);
        #[cfg(feature = "hydrate")]
        {
            let scheduled = self.scheduled;
            set_timeout(
                move || {
                    scheduled.try_set_value(false);
                    action();
                },
                self.pause,
            );
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (action, self.pause);
    }
}

/// `action`, run at most once per `pause` after the returned function is first called.
pub fn throttled(
    pause: Duration,
    action: impl Fn() + Copy + Send + Sync + 'static,
) -> impl Fn() + Copy + Send + Sync + 'static {
    let throttle = Throttle::new(pause);
    move || throttle.run(action)
}
