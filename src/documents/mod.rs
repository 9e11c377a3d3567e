//! Documents: what a document's text becomes before it is stored and embedded.

pub mod chunking;
