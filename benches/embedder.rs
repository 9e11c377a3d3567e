//! The CPU cost of preparing a document for search: cutting it into chunks and embedding
//! one chunk with the local embedder.
//!
//! `embed/*` embeds one chunk of about `DEFAULT_CHUNK_CHARS` characters, reported in chunks
//! per second through criterion's element throughput; `split_into_chunks/*` cuts a 20 KB
//! document, reported in bytes per second.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use docpulse::documents::chunking::{DEFAULT_CHUNK_CHARS, split_into_chunks};
use docpulse::workers::embedder::{Embedder, LocalEmbedder};

/// Sentences of ordinary prose, cycled through to build documents of any size.
const SENTENCES: [&str; 8] = [
    "Ada Lovelace wrote the first published algorithm for Charles Babbage's Analytical Engine.",
    "The engine was never finished, but its design anticipated the stored-program computer.",
    "Her notes explain how the machine could manipulate symbols as well as numbers.",
    "Quarterly revenue grew by twelve percent in Europe, driven by new subscriptions.",
    "The committee will review the proposal again after the summer recess.",
    "Each worker takes a job from the queue, embeds the chunks and records the outcome.",
    "Readers in Zürich, São Paulo and Kyoto receive the same update within a second.",
    "Why does the index grow so quickly? Because every revision keeps its own vectors!",
];

/// How many sentences each paragraph has, cycled through: short paragraphs are packed
/// together, long ones are cut by sentences, as in a real document.
const PARAGRAPH_SENTENCES: [usize; 6] = [3, 12, 1, 6, 15, 2];

/// A document of at least `min_bytes` bytes, in paragraphs of varied length.
fn document(min_bytes: usize) -> String {
    let mut text = String::new();
    let mut sentence_idx = 0;
    for sentences in PARAGRAPH_SENTENCES.iter().cycle() {
        if text.len() >= min_bytes {
            break;
        }
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        for _ in 0..*sentences {
            text.push_str(SENTENCES[sentence_idx % SENTENCES.len()]);
            text.push(' ');
            sentence_idx += 1;
        }
        text.pop();
    }
    text
}

fn embed(criterion: &mut Criterion) {
    // The longest chunk of a document is about as full as chunks get: the typical size of
    // a chunk of long prose.
    let chunks = split_into_chunks(&document(20_000), DEFAULT_CHUNK_CHARS);
    let chunk = chunks
        .iter()
        .max_by_key(|chunk| chunk.chars().count())
        .expect("the document has chunks");
    let embedder = LocalEmbedder::default();

    let mut group = criterion.benchmark_group("embed");
    group.throughput(Throughput::Elements(1));
    group.bench_function(
        BenchmarkId::new("local_256", format!("{}_chars", chunk.chars().count())),
        |bencher| bencher.iter(|| embedder.embed(black_box(chunk)).expect("embeds")),
    );
    group.finish();
}

fn chunk(criterion: &mut Criterion) {
    let text = document(20_000);
    let mut group = criterion.benchmark_group("split_into_chunks");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function(
        BenchmarkId::new("default_chars", format!("{}_bytes", text.len())),
        |bencher| bencher.iter(|| split_into_chunks(black_box(&text), DEFAULT_CHUNK_CHARS)),
    );
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = embed, chunk
}
criterion_main!(benches);
