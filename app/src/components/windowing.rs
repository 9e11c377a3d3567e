//! What a windowed list (only the rows in view rendered) needs from its scroller.

use leptos::prelude::*;

/// An `on:scroll` handler that records the scroller's `scrollTop`, in CSS pixels, in
/// `scroll_top`; the list derives the rows in view from it.
pub fn track_scroll_top(scroll_top: RwSignal<usize>) -> impl Fn(leptos::ev::Event) + Copy {
    move |event: leptos::ev::Event| {
        #[cfg(feature = "hydrate")]
        {
            use wasm_bindgen::JsCast;
            if let Some(element) = event
                .target()
                .and_then(|target| target.dyn_into::<web_sys::Element>().ok())
            {
                scroll_top.set(usize::try_from(element.scroll_top()).unwrap_or(0));
            }
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = (event, scroll_top);
    }
}
