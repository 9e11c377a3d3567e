//! Reusable pieces of the pages.

pub mod server_status;
