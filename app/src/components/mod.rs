//! Reusable pieces of the pages.

pub mod chunk_table;
pub mod connection_indicator;
pub mod documents_table;
pub mod embedding_progress;
pub mod entity_graph;
pub mod notifications;
pub mod page_book;
pub mod project_switcher;
pub mod windowing;
