//! The browser's means of sharing one stream between tabs (hydrate only): a `BroadcastChannel`
//! per project that carries the messages of [`crate::data_updates::tab_relay`], and the
//! project's Web Lock, which one tab at a time holds while it leads. Where either is missing,
//! the caller streams alone, as every tab did before.
//!
//! **Invariant:** the browser releases a lock when its tab closes or crashes, so the next tab
//! in line leads at once; a [`LeadRequest`] dropped releases the lock, or withdraws the
//! request, itself.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, BroadcastChannel, MessageEvent};

use crate::data_updates::tab_relay::TabMessage;
use crate::protocol::ProjectId;

/// The name of `project`'s channel and lock.
fn name_of(project: &ProjectId) -> String {
    format!("docpulse-stream:{}", project.as_str())
}

/// The channel between the tabs of this browser that show one project.
pub(crate) struct TabChannel {
    channel: BroadcastChannel,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
}

impl TabChannel {
    /// Opens `project`'s channel and calls `on_message` with each message another tab posts;
    /// `None` where the browser has no `BroadcastChannel`.
    pub(crate) fn open(
        project: &ProjectId,
        mut on_message: impl FnMut(TabMessage) + 'static,
    ) -> Option<Self> {
        let channel = BroadcastChannel::new(&name_of(project)).ok()?;
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            let Some(text) = event.data().as_string() else {
                return;
            };
            match serde_json::from_str(&text) {
                Ok(message) => on_message(message),
                Err(error) => leptos::logging::warn!("docpulse: skipped a tab message: {error}"),
            }
        });
        channel.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        Some(Self {
            channel,
            _on_message: on_message,
        })
    }

    /// Posts `message` to the other tabs of the project.
    pub(crate) fn post(&self, message: &TabMessage) {
        if let Ok(text) = serde_json::to_string(message) {
            let _ = self.channel.post_message(&JsValue::from_str(&text));
        }
    }
}

impl Drop for TabChannel {
    fn drop(&mut self) {
        self.channel.set_onmessage(None);
        self.channel.close();
    }
}

/// This tab's place in line to lead a project's stream.
pub(crate) struct LeadRequest {
    /// Withdraws the request while it waits.
    abort: AbortController,
    /// Resolves the promise that holds the lock, once granted.
    release: Rc<RefCell<Option<Function>>>,
}

impl LeadRequest {
    /// Asks for the lead of `project`: `on_granted` runs once this tab has it, and answers
    /// whether it takes it (a tab that left the project meanwhile lets it go at once). `None`
    /// where the browser has no Web Locks.
    pub(crate) fn ask(
        project: &ProjectId,
        on_granted: impl FnOnce() -> bool + 'static,
    ) -> Option<Self> {
        let navigator = web_sys::window()?.navigator();
        let locks = Reflect::get(&navigator, &JsValue::from_str("locks"))
            .ok()
            .filter(JsValue::is_object)?;
        let request: Function = Reflect::get(&locks, &JsValue::from_str("request"))
            .ok()?
            .dyn_into()
            .ok()?;
        let abort = AbortController::new().ok()?;
        let options = Object::new();
        Reflect::set(&options, &JsValue::from_str("signal"), &abort.signal()).ok()?;
        let release = Rc::new(RefCell::new(None::<Function>));
        let holder = release.clone();
        // The lock is held until the promise this returns settles.
        let granted = Closure::once(move |_lock: JsValue| -> JsValue {
            if !on_granted() {
                return Promise::resolve(&JsValue::UNDEFINED).into();
            }
            Promise::new(&mut |resolve, _reject| {
                *holder.borrow_mut() = Some(resolve);
            })
            .into()
        });
        let pending: Promise = request
            .call3(
                &locks,
                &JsValue::from_str(&name_of(project)),
                &options,
                granted.as_ref().unchecked_ref(),
            )
            .ok()?
            .dyn_into()
            .ok()?;
        // The request settles when the lock is released, or rejects when it is withdrawn;
        // awaiting it handles the rejection and keeps the callback alive until then.
        leptos::task::spawn_local(async move {
            let _ = JsFuture::from(pending).await;
            drop(granted);
        });
        Some(Self { abort, release })
    }
}

impl Drop for LeadRequest {
    fn drop(&mut self) {
        self.abort.abort();
        if let Some(release) = self.release.borrow_mut().take() {
            let _ = release.call0(&JsValue::UNDEFINED);
        }
    }
}
