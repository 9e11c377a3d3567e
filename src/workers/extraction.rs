//! The extraction job: derive graph objects (named entities and their co-occurrences)
//! from a ready document and store them.

use anyhow::Context;
use serde_json::{Map, Value, json};

use crate::storage::documents;
use crate::storage::graph::NewGraphObject;
use crate::storage::jobs::ClaimedJob;

use super::graph::extract_graph;
use super::{JobOutcome, Workers};

/// Runs an extraction job; a resumed one starts over, replacing what it stored before.
pub(super) async fn run(workers: &Workers, job: &ClaimedJob) -> anyhow::Result<JobOutcome> {
    workers.documents.record_extraction_started(job).await;
    let Some(content) = documents::document_content(&workers.pool, &job.document_id)
        .await
        .context("cannot read the document")?
    else {
        return Ok(JobOutcome::Cancelled);
    };
    let graph = tokio::task::spawn_blocking(move || extract_graph(&content))
        .await
        .context("extraction panicked")?;

    let mut objects = Vec::with_capacity(graph.entities.len() + graph.relations.len());
    objects.extend(graph.entities.iter().map(|entity| NewGraphObject {
        kind: "entity",
        name: entity.name.clone(),
        properties: json!({ "mentions": entity.mentions }),
    }));
    objects.extend(graph.relations.iter().map(|relation| NewGraphObject {
        kind: "relation",
        name: format!("{} – {}", relation.source, relation.target),
        properties: json!({
            "source": relation.source,
            "target": relation.target,
            "weight": relation.weight,
        }),
    }));
    let summary: Map<String, Value> = [
        ("entities".to_owned(), Value::from(graph.entities.len())),
        ("relations".to_owned(), Value::from(graph.relations.len())),
    ]
    .into_iter()
    .collect();

    if workers
        .documents
        .finish_extraction(job, &objects, summary)
        .await
        .context("cannot store the graph objects")?
    {
        Ok(JobOutcome::Done)
    } else {
        Ok(JobOutcome::Cancelled)
    }
}
