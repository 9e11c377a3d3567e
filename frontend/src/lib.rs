//! The WASM entry point: hydrates the page the server rendered.

/// Called by the hydration script once the WASM is loaded. `hydrate_lazy`, not
/// `hydrate_body`: the page's route may first have to fetch its own module
/// (`app::pages`, `lazy_page!`).
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_lazy(app::App);
}
