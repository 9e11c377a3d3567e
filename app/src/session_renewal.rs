//! Keeps the browser's access token fresh (hydrate only). The token lives minutes
//! (`ACCESS_TOKEN_SECS`); the session behind it lives hours. This tab renews the token from the
//! session's HttpOnly refresh cookie (`POST /api/auth/refresh`) a little before it expires, and
//! at once when a request or the event stream finds it expired (a tab that slept).
//!
//! **Invariant:** at most one renewal timer per tab; a renewal that succeeds schedules the next
//! one, and signing out cancels it. The tabs of one browser share the cookies and each renews
//! on its own timer; the server lets renewals that race with the same cookie pass.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use leptos::prelude::*;

use crate::error::AppError;
use crate::session::renewal_delay;

thread_local! {
    /// The timer of the next renewal.
    static TIMER: RefCell<Option<TimeoutHandle>> = const { RefCell::new(None) };
    /// Renewals that succeeded in this tab.
    static RENEWALS: Cell<u64> = const { Cell::new(0) };
}

/// Renews the access token in time for a token that expires in `expires_in_secs`, replacing
/// any renewal scheduled before.
pub fn renew_before_expiry(expires_in_secs: u64) {
    let delay = renewal_delay(Duration::from_secs(expires_in_secs));
    let timer = set_timeout_with_handle(
        || {
            leptos::task::spawn_local(async {
                // A failure needs no retry here: the next request or stream that finds the
                // token expired renews it.
                let _ = renew().await;
            });
        },
        delay,
    )
    .ok();
    if let Some(previous) = TIMER.with(|current| current.replace(timer)) {
        previous.clear();
    }
}

/// Cancels the scheduled renewal (signing out).
pub fn stop_renewing() {
    if let Some(timer) = TIMER.with(|current| current.borrow_mut().take()) {
        timer.clear();
    }
}

/// Renewals that succeeded in this tab so far; a caller that saw it change since it last
/// looked knows the cookie now holds a newer token.
pub fn renewals() -> u64 {
    RENEWALS.with(Cell::get)
}

/// Renews the access token now and schedules the next renewal.
///
/// # Errors
///
/// [`AppError::Unauthorized`] when the session is over (logged out, revoked, expired);
/// [`AppError::Unavailable`] when the server cannot be reached.
pub async fn renew() -> Result<(), AppError> {
    let session = crate::rest::renew_session().await?;
    RENEWALS.with(|count| count.set(count.get() + 1));
    renew_before_expiry(session.expires_in);
    Ok(())
}
