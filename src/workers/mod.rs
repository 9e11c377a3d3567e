//! Background workers: the pure cores that turn a document's text into embeddings and a
//! graph.

pub mod embedder;
pub mod graph;
