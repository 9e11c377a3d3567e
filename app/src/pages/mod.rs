//! One module per route.

pub mod document;
pub mod documents;
pub mod home;
pub mod login;
pub mod not_found;
pub mod search;
