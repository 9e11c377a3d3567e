//! One module per route.

#[macro_use]
mod lazy;

pub mod document;
pub mod documents;
pub mod home;
pub mod login;
pub mod not_found;
pub mod search;

pub use lazy::fetch_ahead;
