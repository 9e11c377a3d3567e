//! [`Metrics`]: the counters of the event path, rendered in the Prometheus text format.
//!
//! **Invariant:** recording is a few relaxed atomic additions and never blocks or allocates,
//! so the delivery path can afford it for every frame.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the delivery latency buckets, in microseconds.
const LATENCY_BUCKETS_MICROS: [u64; 12] = [
    250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000, 5_000_000,
];

/// The event path's counters, shared by the bus and every stream.
#[derive(Debug, Default)]
pub struct Metrics {
    open_streams: AtomicI64,
    open_connections: AtomicI64,
    connections_refused: AtomicU64,
    streams_refused: AtomicU64,
    published: AtomicU64,
    delivered: AtomicU64,
    coalesced: AtomicU64,
    dropped: AtomicU64,
    resyncs: AtomicU64,
    /// Deliveries per latency bucket (not cumulative; the last slot is `+Inf`).
    latency_buckets: [AtomicU64; LATENCY_BUCKETS_MICROS.len() + 1],
    latency_sum_micros: AtomicU64,
}

impl Metrics {
    /// Counters at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// A stream opened; the returned guard counts it closed when dropped.
    pub fn stream_opened(self: &Arc<Self>) -> OpenStreamGuard {
        self.open_streams.fetch_add(1, Ordering::Relaxed);
        OpenStreamGuard(self.clone())
    }

    /// A connection was accepted and is being served.
    pub fn connection_opened(&self) {
        self.open_connections.fetch_add(1, Ordering::Relaxed);
    }

    /// A served connection ended.
    pub fn connection_closed(&self) {
        self.open_connections.fetch_sub(1, Ordering::Relaxed);
    }

    /// A connection was refused for the connection limit.
    pub fn connection_refused(&self) {
        self.connections_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// A new stream was refused for the admission rate.
    pub fn stream_refused(&self) {
        self.streams_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// An event entered a project's history.
    pub fn event_published(&self) {
        self.published.fetch_add(1, Ordering::Relaxed);
    }

    /// An update was merged into a pending one instead of going out on its own.
    pub fn event_coalesced(&self) {
        self.coalesced.fetch_add(1, Ordering::Relaxed);
    }

    /// A frame was handed to a client's connection, `latency` after it was published.
    pub fn event_delivered(&self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let bucket = LATENCY_BUCKETS_MICROS.partition_point(|&bound| bound < micros);
        self.delivered.fetch_add(1, Ordering::Relaxed);
        self.latency_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// A slow stream lost `frames` from its backlog and was told to resync.
    pub fn backlog_dropped(&self, frames: u64) {
        self.dropped.fetch_add(frames, Ordering::Relaxed);
    }

    /// A stream was sent `resync`.
    pub fn resync_sent(&self) {
        self.resyncs.fetch_add(1, Ordering::Relaxed);
    }

    /// Streams open now.
    pub fn open_streams(&self) -> i64 {
        self.open_streams.load(Ordering::Relaxed)
    }

    /// Everything, in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(2048);
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        gauge(
            &mut out,
            "docpulse_open_streams",
            "Event streams open now.",
            self.open_streams(),
        );
        gauge(
            &mut out,
            "docpulse_open_connections",
            "Connections being served now, event streams included.",
            self.open_connections.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "docpulse_connections_refused_total",
            "Connections answered 503 because MAX_CONNECTIONS were open.",
            load(&self.connections_refused),
        );
        counter(
            &mut out,
            "docpulse_streams_refused_total",
            "New event streams answered 503 for STREAM_ADMISSION_RATE.",
            load(&self.streams_refused),
        );
        counter(
            &mut out,
            "docpulse_events_published_total",
            "Events that entered a project's history.",
            load(&self.published),
        );
        counter(
            &mut out,
            "docpulse_events_delivered_total",
            "Event frames handed to a client connection.",
            load(&self.delivered),
        );
        counter(
            &mut out,
            "docpulse_events_coalesced_total",
            "Updates merged into a pending update of the same entity.",
            load(&self.coalesced),
        );
        counter(
            &mut out,
            "docpulse_events_dropped_total",
            "Frames dropped from the backlog of streams too slow to keep up.",
            load(&self.dropped),
        );
        counter(
            &mut out,
            "docpulse_resyncs_total",
            "Resync frames sent to streams.",
            load(&self.resyncs),
        );

        let name = "docpulse_delivery_latency_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time from publish to the frame being handed to a connection.\n\
             # TYPE {name} histogram"
        );
        let mut cumulative = 0;
        for (bound, bucket) in LATENCY_BUCKETS_MICROS.iter().zip(&self.latency_buckets) {
            cumulative += load(bucket);
            let seconds = Duration::from_micros(*bound).as_secs_f64();
            let _ = writeln!(out, "{name}_bucket{{le=\"{seconds}\"}} {cumulative}");
        }
        let overflow = &self.latency_buckets[LATENCY_BUCKETS_MICROS.len()];
        cumulative += load(overflow);
        let sum = Duration::from_micros(load(&self.latency_sum_micros)).as_secs_f64();
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {cumulative}");
        out
    }
}

fn gauge(out: &mut String, name: &str, help: &str, value: i64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
    );
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
    );
}

/// Counts one open stream for as long as it lives.
#[derive(Debug)]
pub struct OpenStreamGuard(Arc<Metrics>);

impl Drop for OpenStreamGuard {
    fn drop(&mut self) {
        self.0.open_streams.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_streams_gauge_follows_its_guards() {
        let metrics = Arc::new(Metrics::new());
        let first = metrics.stream_opened();
        let second = metrics.stream_opened();
        assert_eq!(metrics.open_streams(), 2);
        drop(first);
        drop(second);
        assert_eq!(metrics.open_streams(), 0);
        assert!(metrics.render().contains("\ndocpulse_open_streams 0\n"));
    }

    #[test]
    fn latency_lands_in_cumulative_buckets() {
        let metrics = Metrics::new();
        metrics.event_delivered(Duration::from_micros(100));
        metrics.event_delivered(Duration::from_micros(250));
        metrics.event_delivered(Duration::from_millis(3));
        metrics.event_delivered(Duration::from_secs(60));
        let text = metrics.render();
        for line in [
            "docpulse_delivery_latency_seconds_bucket{le=\"0.00025\"} 2",
            "docpulse_delivery_latency_seconds_bucket{le=\"0.0025\"} 2",
            "docpulse_delivery_latency_seconds_bucket{le=\"0.005\"} 3",
            "docpulse_delivery_latency_seconds_bucket{le=\"5\"} 3",
            "docpulse_delivery_latency_seconds_bucket{le=\"+Inf\"} 4",
            "docpulse_delivery_latency_seconds_count 4",
            "docpulse_events_delivered_total 4",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing in:\n{text}"
            );
        }
    }
}
