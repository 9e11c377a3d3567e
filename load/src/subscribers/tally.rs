//! The counters every stream task of a run adds to and the publisher and report read.
//!
//! **Invariant:** a stream counts as open on its project from its `connected` frame until it
//! ends (with `--resume`, until it gives up resuming: a stream between a server's end and its
//! resume still owes every event), so the publisher's expected deliveries use the streams open
//! when an event was accepted; counters only grow, except those open counts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use hdrhistogram::Histogram;
use tokio::time::Instant;

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
    /// With `--resume`: streams the server ended and the resumes that followed.
    resumes: ResumeTally,
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
    /// Streams the server ended and how they resumed.
    pub resumes: ResumeFigures,
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
            resumes: ResumeTally::new(),
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

    /// The server ended a stream (it will try to resume).
    pub fn stream_ended_by_server(&self) {
        self.resumes.ended.fetch_add(1, Ordering::Relaxed);
        self.resumes
            .first_end_ms
            .fetch_min(self.resumes.millis_since_start(), Ordering::Relaxed);
    }

    /// A stream the server ended was admitted again with its `Last-Event-ID`.
    pub fn stream_resumed(&self) {
        let now = self.resumes.millis_since_start();
        self.resumes.resumed.fetch_add(1, Ordering::Relaxed);
        self.resumes
            .last_resume_ms
            .fetch_max(now, Ordering::Relaxed);
        let second = usize::try_from(now / 1000).unwrap_or(usize::MAX);
        if let Some(count) = self.resumes.per_second.get(second) {
            count.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one connect attempt refused with `Retry-After` (it is tried again);
    /// `resuming` when it was a resume.
    pub fn record_refusal(&self, resuming: bool) {
        self.refusals.fetch_add(1, Ordering::Relaxed);
        if resuming {
            self.resumes.refused.fetch_add(1, Ordering::Relaxed);
        }
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
            resumes: self.resumes.figures(),
            latency: LatencySummary::from_histogram(&lock(&self.latency)),
            errors: lock(&self.errors).clone(),
        }
    }

    fn open_counter(&self, project_index: u32) -> Option<&AtomicU64> {
        self.open_per_project
            .get(usize::try_from(project_index).ok()?)
    }
}

/// Seconds of a run whose resumes are counted per second (an hour).
const RESUME_SECONDS_KEPT: usize = 3600;

/// Streams the server ended, and their resumes, timed from the tally's creation.
struct ResumeTally {
    started: Instant,
    ended: AtomicU64,
    resumed: AtomicU64,
    /// Resume attempts refused with `Retry-After`.
    refused: AtomicU64,
    /// `u64::MAX` before the first end.
    first_end_ms: AtomicU64,
    last_resume_ms: AtomicU64,
    /// Resumes admitted in each second of the run (bounded: [`RESUME_SECONDS_KEPT`]).
    per_second: Vec<AtomicU64>,
}

/// What [`ResumeTally`] counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResumeFigures {
    /// Streams the server ended.
    pub ended: u64,
    /// Resumes admitted.
    pub resumed: u64,
    /// Resume attempts the server refused with `Retry-After` (`503 overloaded`).
    pub refused: u64,
    /// From the first end to the last resume; `None` without any.
    pub first_end_to_last_resume: Option<std::time::Duration>,
    /// The most resumes admitted in one second of the run.
    pub peak_per_second: u64,
}

impl ResumeTally {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            ended: AtomicU64::new(0),
            resumed: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            first_end_ms: AtomicU64::new(u64::MAX),
            last_resume_ms: AtomicU64::new(0),
            per_second: (0..RESUME_SECONDS_KEPT)
                .map(|_| AtomicU64::new(0))
                .collect(),
        }
    }

    fn millis_since_start(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn figures(&self) -> ResumeFigures {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let resumed = load(&self.resumed);
        let first_end = load(&self.first_end_ms);
        ResumeFigures {
            ended: load(&self.ended),
            resumed,
            refused: load(&self.refused),
            first_end_to_last_resume: (resumed > 0 && first_end != u64::MAX).then(|| {
                std::time::Duration::from_millis(
                    load(&self.last_resume_ms).saturating_sub(first_end),
                )
            }),
            peak_per_second: self.per_second.iter().map(load).max().unwrap_or(0),
        }
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

    #[tokio::test(start_paused = true)]
    async fn resumes_are_timed_from_the_first_end_and_counted_per_second() {
        let tally = SubscriberTally::new(1);
        assert_eq!(tally.snapshot().resumes, ResumeFigures::default());
        tokio::time::advance(std::time::Duration::from_millis(1_200)).await;
        tally.stream_ended_by_server();
        tally.stream_ended_by_server();
        tokio::time::advance(std::time::Duration::from_millis(1_000)).await;
        tally.stream_resumed();
        tally.record_refusal(true);
        tally.record_refusal(false);
        tally.stream_resumed();
        tokio::time::advance(std::time::Duration::from_millis(1_000)).await;
        tally.stream_resumed();

        let figures = tally.snapshot().resumes;

        assert_eq!((figures.ended, figures.resumed, figures.refused), (2, 3, 1));
        assert_eq!(
            figures.first_end_to_last_resume,
            Some(std::time::Duration::from_millis(2_000))
        );
        assert_eq!(figures.peak_per_second, 2);
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
