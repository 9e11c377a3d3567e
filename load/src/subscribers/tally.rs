//! The counters every stream task of a run adds to and the publisher and report read.
//!
//! **Invariant:** a stream counts as open on its project from its `connected` frame until it
//! ends, so the publisher's expected deliveries use the streams open when an event was
//! accepted; counters only grow, except those open counts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use hdrhistogram::Histogram;

use crate::report::{self, DeliveryFigures, ErrorSamples, LatencySummary};
use crate::subscribers::book::FrameCounts;

/// Shared counters of all streams.
pub struct SubscriberTally {
    /// Open streams per project index.
    open_per_project: Vec<AtomicU64>,
    received: AtomicU64,
    duplicates: AtomicU64,
    leaks: AtomicU64,
    unrecognized: AtomicU64,
    malformed: AtomicU64,
    resyncs: AtomicU64,
    heartbeats: AtomicU64,
    /// Streams that ended before the tool closed them.
    closed_early: AtomicU64,
    /// Connect attempts the server refused with `429` or `503` and `Retry-After`.
    refusals: AtomicU64,
    /// Latencies of first deliveries in microseconds; locked once per chunk read, not per frame.
    latency: Mutex<Histogram<u64>>,
    /// Connect failures and reasons streams ended.
    errors: Mutex<ErrorSamples>,
}

/// A copy of the tally at one moment.
#[derive(Debug, Clone)]
pub struct TallySnapshot {
    /// What the streams received; `expected` is left at 0 for the publisher to fill in.
    pub deliveries: DeliveryFigures,
    /// Streams that ended before the tool closed them.
    pub closed_early: u64,
    /// Connect attempts refused with `429` or `503` and `Retry-After`, then retried.
    pub refusals: u64,
    /// Latency percentiles; `None` before the first delivery with a send time.
    pub latency: Option<LatencySummary>,
    /// Connect failures and reasons streams ended.
    pub errors: ErrorSamples,
}

impl SubscriberTally {
    /// A zero tally for a run with `project_count` projects.
    pub fn new(project_count: u32) -> Self {
        Self {
            open_per_project: (0..project_count).map(|_| AtomicU64::new(0)).collect(),
            received: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            leaks: AtomicU64::new(0),
            unrecognized: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            resyncs: AtomicU64::new(0),
            heartbeats: AtomicU64::new(0),
            closed_early: AtomicU64::new(0),
            refusals: AtomicU64::new(0),
            latency: Mutex::new(report::new_latency_histogram()),
            errors: Mutex::new(ErrorSamples::new()),
        }
    }

    /// Streams open now on project `project_index`.
    pub fn open_on_project(&self, project_index: u32) -> u64 {
        self.open_counter(project_index)
            .map_or(0, |open| open.load(Ordering::Relaxed))
    }

    /// First deliveries so far.
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Marks a stream of `project_index` open.
    pub fn stream_opened(&self, project_index: u32) {
        if let Some(open) = self.open_counter(project_index) {
            open.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Marks a stream of `project_index` closed; `early_reason` when the tool did not close it.
    pub fn stream_closed(&self, project_index: u32, early_reason: Option<&str>) {
        if let Some(open) = self.open_counter(project_index) {
            open.fetch_sub(1, Ordering::Relaxed);
        }
        if let Some(reason) = early_reason {
            self.closed_early.fetch_add(1, Ordering::Relaxed);
            self.record_error(reason);
        }
    }

    /// Counts one connect attempt refused with `Retry-After` (it is tried again).
    pub fn record_refusal(&self) {
        self.refusals.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one error message (a failed connect or why a stream ended).
    pub fn record_error(&self, message: &str) {
        lock(&self.errors).record(message);
    }

    /// Adds the counts and latencies of a chunk of frames.
    pub fn add(&self, counts: &FrameCounts, latencies: &[u64]) {
        for (counter, amount) in [
            (&self.received, counts.received),
            (&self.duplicates, counts.duplicates),
            (&self.leaks, counts.leaks),
            (&self.unrecognized, counts.unrecognized),
            (&self.malformed, counts.malformed),
            (&self.resyncs, counts.resyncs),
            (&self.heartbeats, counts.heartbeats),
        ] {
            if amount > 0 {
                counter.fetch_add(amount, Ordering::Relaxed);
            }
        }
        if !latencies.is_empty() {
            let mut histogram = lock(&self.latency);
            for &latency_us in latencies {
                histogram.saturating_record(latency_us);
            }
        }
    }

    /// The tally now.
    pub fn snapshot(&self) -> TallySnapshot {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        TallySnapshot {
            deliveries: DeliveryFigures {
                expected: 0,
                received: load(&self.received),
                duplicates: load(&self.duplicates),
                leaks: load(&self.leaks),
                resyncs: load(&self.resyncs),
                heartbeats: load(&self.heartbeats),
                unrecognized: load(&self.unrecognized),
                malformed: load(&self.malformed),
            },
            closed_early: load(&self.closed_early),
            refusals: load(&self.refusals),
            latency: LatencySummary::from_histogram(&lock(&self.latency)),
            errors: lock(&self.errors).clone(),
        }
    }

    fn open_counter(&self, project_index: u32) -> Option<&AtomicU64> {
        self.open_per_project
            .get(usize::try_from(project_index).ok()?)
    }
}

/// Locks `mutex`, taking the data even if a task panicked while holding it: counters stay
/// meaningful after a panic elsewhere.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_counts_follow_streams_and_early_ends_are_counted_with_their_reason() {
        let tally = SubscriberTally::new(2);
        tally.stream_opened(1);
        tally.stream_opened(1);
        tally.stream_opened(0);
        tally.stream_opened(7);
        assert_eq!(tally.open_on_project(1), 2);
        tally.stream_closed(1, Some("the server ended the stream"));
        tally.stream_closed(0, None);
        assert_eq!(tally.open_on_project(1), 1);
        assert_eq!(tally.open_on_project(0), 0);
        assert_eq!(tally.open_on_project(7), 0);
        let snapshot = tally.snapshot();
        assert_eq!(snapshot.closed_early, 1);
        assert_eq!(snapshot.errors.total(), 1);
    }

    #[test]
    fn chunks_add_up() {
        let tally = SubscriberTally::new(1);
        let counts = FrameCounts {
            received: 2,
            duplicates: 1,
            heartbeats: 3,
            ..FrameCounts::default()
        };
        tally.add(&counts, &[1_000, 3_000]);
        tally.add(&counts, &[]);
        let snapshot = tally.snapshot();
        assert_eq!(snapshot.deliveries.received, 4);
        assert_eq!(snapshot.deliveries.duplicates, 2);
        assert_eq!(snapshot.deliveries.heartbeats, 6);
        assert_eq!(tally.received(), 4);
        let latency = snapshot.latency.expect("two latencies");
        assert_eq!((latency.count, latency.p50_us), (2, 1_000));
        // The histogram keeps three significant digits: 3000 and 3001 share a bucket.
        assert!((3_000..=3_001).contains(&latency.max_us), "{latency:?}");
    }
}
