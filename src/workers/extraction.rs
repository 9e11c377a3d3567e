//! The extraction job: derive graph objects (named entities and their co-occurrences)
//! from a ready document and store them.

use std::time::Duration;

use anyhow::Context;
use app::protocol::ExtractionJobChange;
use serde_json::json;

use crate::documents::ClaimedJob;
use crate::storage::documents;
use crate::storage::graph::NewGraphObject;

use super::graph::extract_graph;
use super::{JobOutcome, Workers};

/// Runs an extraction job, within the workers' extraction limits and renewing its `lease`
/// meanwhile; a resumed one starts over, replacing what it stored before.
pub(super) async fn run(
    workers: &Workers,
    job: &ClaimedJob,
    lease: Duration,
) -> anyhow::Result<JobOutcome> {
    if !workers
        .progress
        .record_extraction_started(job, lease)
        .await
        .context("cannot record the extraction's start")?
    {
        return Ok(JobOutcome::Cancelled);
    }
    let Some(content) = documents::document_content(&workers.pool, &job.document_id)
        .await
        .context("cannot read the document")?
    else {
        return Ok(JobOutcome::Cancelled);
    };
    let limits = workers.extraction;
    let extracting = tokio::task::spawn_blocking(move || extract_graph(&content, &limits));
    let Some(graph) = workers.renewing_lease(job, lease, extracting).await? else {
        return Ok(JobOutcome::Cancelled);
    };
    let graph = graph.context("extraction panicked")?;

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
    let summary = ExtractionJobChange {
        entities: Some(graph.entities.len() as u64),
        relations: Some(graph.relations.len() as u64),
        truncated: graph.truncated.then_some(true),
        ..ExtractionJobChange::default()
    };

    if workers
        .progress
        .finish_extraction(job, &objects, summary)
        .await
        .context("cannot store the graph objects")?
    {
        Ok(JobOutcome::Done)
    } else {
        Ok(JobOutcome::Cancelled)
    }
}
