//! The figures of a run and their plain-text report: latency percentiles, delivery balance,
//! server cost, and the verdict that sets the exit status.
//!
//! **Invariant:** pure code; the report is one `name: value` line per measure, with the same
//! names and layout on every run, so it can be pasted and compared.

use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::proc_stats::ProcessSample;
use crate::stalls::{LONG_STALL, STALL, StallSummary};
use crate::subscribers::tally::ResumeFigures;

/// Highest latency the histogram tells apart, in microseconds (one hour); longer ones are
/// counted as this.
const LATENCY_HIGHEST_MICROS: u64 = 3_600_000_000;

/// Significant digits the latency histogram keeps: 0.1 % precision.
const LATENCY_SIGNIFICANT_DIGITS: u8 = 3;

/// How many distinct error messages a run keeps (with counts); the rest are only counted.
const MAX_ERROR_KINDS: usize = 8;

/// An empty latency histogram in microseconds, from 1 µs to an hour at 0.1 % precision.
pub fn new_latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_HIGHEST_MICROS, LATENCY_SIGNIFICANT_DIGITS)
        .expect("the latency histogram bounds are constant and valid")
}

/// The percentiles the report shows, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatencySummary {
    /// Number of latencies recorded.
    pub count: u64,
    /// Median.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Largest recorded.
    pub max_us: u64,
}

impl LatencySummary {
    /// The percentiles of `histogram`; `None` when it is empty.
    pub fn from_histogram(histogram: &Histogram<u64>) -> Option<Self> {
        if histogram.is_empty() {
            return None;
        }
        Some(Self {
            count: histogram.len(),
            p50_us: histogram.value_at_quantile(0.5),
            p99_us: histogram.value_at_quantile(0.99),
            p999_us: histogram.value_at_quantile(0.999),
            max_us: histogram.max(),
        })
    }
}

/// The first distinct error messages of a run with how often each occurred.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorSamples {
    /// Message and count, in order of first occurrence.
    entries: Vec<(String, u64)>,
    /// Errors whose message did not fit in `entries`.
    others: u64,
}

impl ErrorSamples {
    /// No errors yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one occurrence of `message`.
    pub fn record(&mut self, message: &str) {
        self.record_many(message, 1);
    }

    fn record_many(&mut self, message: &str, count: u64) {
        if let Some((_, seen)) = self.entries.iter_mut().find(|(known, _)| known == message) {
            *seen += count;
        } else if self.entries.len() < MAX_ERROR_KINDS {
            self.entries.push((message.to_owned(), count));
        } else {
            self.others += count;
        }
    }

    /// Adds every error of `other`.
    pub fn merge(&mut self, other: &Self) {
        for (message, count) in &other.entries {
            self.record_many(message, *count);
        }
        self.others += other.others;
    }

    /// Total number of errors recorded.
    #[cfg(test)]
    pub fn total(&self) -> u64 {
        self.entries.iter().map(|(_, count)| count).sum::<u64>() + self.others
    }
}

/// How the connect phase went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionFigures {
    /// `--connections`.
    pub asked: u32,
    /// `--projects`.
    pub projects: u32,
    /// Streams that answered 200 and sent their `connected` frame.
    pub connected: u64,
    /// Streams that did not get that far.
    pub failed_to_connect: u64,
    /// Connected streams that ended before the tool closed them.
    pub closed_early: u64,
    /// Connect attempts refused with `429`/`503` and `Retry-After`, then retried.
    pub refusals: u64,
    /// With `--resume`: streams the server ended and how they resumed.
    pub resumes: Option<ResumeFigures>,
    /// From the first connect to the last outcome.
    pub connect_time: Duration,
}

/// How the publish phase went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishFigures {
    /// Publishes answered 202.
    pub accepted: u64,
    /// Publishes answered otherwise or not at all.
    pub failed: u64,
    /// From the first publish to the end of the last.
    pub elapsed: Duration,
}

/// What the streams received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryFigures {
    /// Sum over accepted events of the streams open on that event's project.
    pub expected: u64,
    /// First deliveries of a published event on a stream of its project.
    pub received: u64,
    /// Second and later deliveries of one entity id on one stream.
    pub duplicates: u64,
    /// Events of another project than the stream's.
    pub leaks: u64,
    /// `resync` frames.
    pub resyncs: u64,
    /// `heartbeat` frames.
    pub heartbeats: u64,
    /// Entity events of the right project that this run did not publish.
    pub unrecognized: u64,
    /// Frames whose data did not decode as their event name announces.
    pub malformed: u64,
}

impl DeliveryFigures {
    /// Expected deliveries that did not arrive.
    pub fn missing(&self) -> u64 {
        self.expected.saturating_sub(self.received)
    }
}

/// The server's memory and CPU at the points of a run that the report compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerFigures {
    /// Before the first connection.
    pub before_connect: ProcessSample,
    /// Once every stream was connected (or had failed), right before the publish phase or
    /// idle hold.
    pub after_connect: ProcessSample,
    /// After the drain (or idle hold), before the streams were closed.
    pub after_run: ProcessSample,
}

/// Whether the server was measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerMeasure {
    /// No `--server-pid`.
    NotAsked,
    /// Reading `/proc` failed, with why.
    Failed(String),
    /// The readings.
    Measured(ServerFigures),
}

/// Everything a run measured.
#[derive(Debug, Clone)]
pub struct Report {
    /// The connect phase.
    pub connections: ConnectionFigures,
    /// The publish phase; `None` in idle mode.
    pub publishing: Option<PublishFigures>,
    /// Length of the idle hold; `None` when publishing.
    pub idle_hold: Option<Duration>,
    /// What the streams received.
    pub deliveries: DeliveryFigures,
    /// Latency percentiles of first deliveries; `None` without any.
    pub latency: Option<LatencySummary>,
    /// How late a sleeping thread woke up over the publish phase or the hold; `None` when the
    /// meter could not run.
    pub stalls: Option<StallSummary>,
    /// The server's memory and CPU.
    pub server: ServerMeasure,
    /// The tool's own CPU time over the whole run, when `/proc/self` could be read.
    pub load_tool_cpu: Option<Duration>,
    /// Connection and publish errors.
    pub errors: ErrorSamples,
}

impl Report {
    /// Why the run failed, one short phrase per reason; empty when it passed.
    pub fn failures(&self) -> Vec<&'static str> {
        let connections = &self.connections;
        let deliveries = &self.deliveries;
        let publish_failed = self
            .publishing
            .is_some_and(|publishing| publishing.failed > 0);
        [
            (connections.failed_to_connect > 0, "connections failed"),
            (connections.closed_early > 0, "streams closed early"),
            (
                connections
                    .resumes
                    .as_ref()
                    .is_some_and(|resumes| resumes.resumed < resumes.ended),
                "streams not resumed",
            ),
            (publish_failed, "publishes failed"),
            (deliveries.missing() > 0, "deliveries missing"),
            (deliveries.duplicates > 0, "duplicate deliveries"),
            (deliveries.leaks > 0, "cross-project leaks"),
            (deliveries.malformed > 0, "malformed frames"),
        ]
        .into_iter()
        .filter_map(|(failed, reason)| failed.then_some(reason))
        .collect()
    }

    /// The report as text, one `name: value` line per measure, ending with the verdict.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let connections = &self.connections;
        line(
            &mut out,
            format_args!(
                "connections: {} open / {} asked ({} projects), connect time {:.1} s",
                connections.connected,
                connections.asked,
                connections.projects,
                connections.connect_time.as_secs_f64()
            ),
        );
        line(
            &mut out,
            format_args!(
                "connection failures: {} failed to connect, {} closed early",
                connections.failed_to_connect, connections.closed_early
            ),
        );
        line(
            &mut out,
            format_args!(
                "connection refusals: {} answered 429/503, each retried after its Retry-After",
                connections.refusals
            ),
        );
        if let Some(resumes) = &connections.resumes {
            line(
                &mut out,
                format_args!(
                    "resumes: {} streams ended by the server, {} resumed with Last-Event-ID, the last {} after the first end, at most {} resumed in one second, {} resume attempts answered 429/503",
                    resumes.ended,
                    resumes.resumed,
                    resumes.first_end_to_last_resume.map_or_else(
                        || "none".to_owned(),
                        |time| format!("{:.2} s", time.as_secs_f64())
                    ),
                    resumes.peak_per_second,
                    resumes.refused
                ),
            );
        }
        let deliveries = &self.deliveries;
        line(
            &mut out,
            format_args!("heartbeats: {} received", deliveries.heartbeats),
        );
        if let Some(publishing) = &self.publishing {
            line(
                &mut out,
                format_args!(
                    "published: {} accepted, {} failed, {:.1} events/s",
                    publishing.accepted,
                    publishing.failed,
                    per_second(publishing.accepted, publishing.elapsed)
                ),
            );
        }
        if let Some(hold) = self.idle_hold {
            line(
                &mut out,
                format_args!("idle hold: {:.1} s", hold.as_secs_f64()),
            );
        }
        if self.publishing.is_some() || deliveries.received > 0 || deliveries.leaks > 0 {
            line(
                &mut out,
                format_args!(
                    "deliveries: expected {}, received {}, missing {}, duplicates {}, cross-project leaks {}, resyncs {}",
                    deliveries.expected,
                    deliveries.received,
                    deliveries.missing(),
                    deliveries.duplicates,
                    deliveries.leaks,
                    deliveries.resyncs
                ),
            );
        }
        line(
            &mut out,
            format_args!(
                "stream anomalies: {} unrecognized events, {} malformed frames",
                deliveries.unrecognized, deliveries.malformed
            ),
        );
        if self.publishing.is_some() {
            match &self.latency {
                Some(latency) => line(
                    &mut out,
                    format_args!(
                        "latency ms: p50 {}, p99 {}, p999 {}, max {}",
                        milliseconds(latency.p50_us),
                        milliseconds(latency.p99_us),
                        milliseconds(latency.p999_us),
                        milliseconds(latency.max_us)
                    ),
                ),
                None => line(&mut out, format_args!("latency ms: no deliveries")),
            }
        }
        match &self.stalls {
            Some(stalls) => line(
                &mut out,
                format_args!(
                    "machine stalls: a thread sleeping 1 ms woke {} times, {} of them {} ms late or more, {} of them {} ms or more, the latest {} ms late",
                    stalls.wakeups,
                    stalls.stalls,
                    STALL.as_millis(),
                    stalls.long_stalls,
                    LONG_STALL.as_millis(),
                    milliseconds(stalls.worst_us)
                ),
            ),
            None => line(&mut out, format_args!("machine stalls: not measured")),
        }
        self.render_server(&mut out);
        match self.load_tool_cpu {
            Some(cpu) => line(
                &mut out,
                format_args!("load tool cpu: {:.1} s", cpu.as_secs_f64()),
            ),
            None => line(&mut out, format_args!("load tool cpu: not measured")),
        }
        for (message, count) in &self.errors.entries {
            line(&mut out, format_args!("error: {count} x {message}"));
        }
        if self.errors.others > 0 {
            line(
                &mut out,
                format_args!("error: {} x other messages", self.errors.others),
            );
        }
        let failures = self.failures();
        if failures.is_empty() {
            line(&mut out, format_args!("result: pass"));
        } else {
            line(
                &mut out,
                format_args!("result: fail ({})", failures.join(", ")),
            );
        }
        out
    }

    fn render_server(&self, out: &mut String) {
        let server = match &self.server {
            ServerMeasure::NotAsked => {
                line(out, format_args!("server: not measured (no --server-pid)"));
                return;
            }
            ServerMeasure::Failed(reason) => {
                line(out, format_args!("server: not measured ({reason})"));
                return;
            }
            ServerMeasure::Measured(server) => server,
        };
        let growth_bytes =
            server.after_connect.rss_bytes as f64 - server.before_connect.rss_bytes as f64;
        let per_connection = if self.connections.connected == 0 {
            "n/a".to_owned()
        } else {
            format!(
                "{:.1} KiB",
                growth_bytes / 1024.0 / self.connections.connected as f64
            )
        };
        line(
            out,
            format_args!(
                "server: rss before connect {}, after connect {} ({per_connection} per connection), after run {}",
                mebibytes(server.before_connect.rss_bytes),
                mebibytes(server.after_connect.rss_bytes),
                mebibytes(server.after_run.rss_bytes)
            ),
        );
        let phase_cpu = server
            .after_run
            .cpu
            .saturating_sub(server.after_connect.cpu);
        if self.publishing.is_some() {
            let per_delivery = if self.deliveries.received == 0 {
                "n/a".to_owned()
            } else {
                format!(
                    "{:.2} us",
                    phase_cpu.as_secs_f64() * 1e6 / self.deliveries.received as f64
                )
            };
            line(
                out,
                format_args!(
                    "server cpu: {:.1} s during publish phase, {per_delivery} per delivery",
                    phase_cpu.as_secs_f64()
                ),
            );
        } else {
            line(
                out,
                format_args!(
                    "server cpu: {:.1} s during idle hold",
                    phase_cpu.as_secs_f64()
                ),
            );
        }
    }
}

fn line(out: &mut String, arguments: std::fmt::Arguments<'_>) {
    out.write_fmt(arguments)
        .expect("writing to a String cannot fail");
    out.push('\n');
}

/// `count` per second over `elapsed`; 0 for an empty interval.
fn per_second(count: u64, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

/// Microseconds as milliseconds with two decimals.
fn milliseconds(micros: u64) -> String {
    format!("{:.2}", micros as f64 / 1000.0)
}

/// Bytes as MiB with one decimal and the unit.
fn mebibytes(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(rss_mib_tenths: u64, cpu_millis: u64) -> ProcessSample {
        ProcessSample {
            rss_bytes: rss_mib_tenths * 1024 * 1024 / 10,
            peak_rss_bytes: None,
            cpu: Duration::from_millis(cpu_millis),
        }
    }

    fn publishing_report() -> Report {
        let mut histogram = new_latency_histogram();
        for micros in 1..=1000 {
            histogram.record(micros).expect("in range");
        }
        let mut errors = ErrorSamples::new();
        errors.record("http 503: overloaded");
        Report {
            connections: ConnectionFigures {
                asked: 10_000,
                projects: 100,
                connected: 10_000,
                failed_to_connect: 0,
                closed_early: 0,
                refusals: 0,
                resumes: None,
                connect_time: Duration::from_millis(6_200),
            },
            publishing: Some(PublishFigures {
                accepted: 15_000,
                failed: 0,
                elapsed: Duration::from_secs(30),
            }),
            idle_hold: None,
            deliveries: DeliveryFigures {
                expected: 1_500_000,
                received: 1_500_000,
                ..DeliveryFigures::default()
            },
            latency: LatencySummary::from_histogram(&histogram),
            stalls: Some(StallSummary {
                wakeups: 30_000,
                stalls: 40,
                long_stalls: 6,
                worst_us: 12_400,
            }),
            server: ServerMeasure::Measured(ServerFigures {
                before_connect: sample(201, 1_000),
                after_connect: sample(201 + 10_000 * 72 / 1024, 5_000),
                after_run: sample(950, 7_055),
            }),
            load_tool_cpu: Some(Duration::from_millis(30_100)),
            errors,
        }
    }

    #[test]
    fn percentiles_are_exact_below_two_thousand_micros() {
        let mut histogram = new_latency_histogram();
        for micros in 1..=1000 {
            histogram.record(micros).expect("in range");
        }
        assert_eq!(
            LatencySummary::from_histogram(&histogram),
            Some(LatencySummary {
                count: 1000,
                p50_us: 500,
                p99_us: 990,
                p999_us: 999,
                max_us: 1000,
            })
        );
        assert_eq!(
            LatencySummary::from_histogram(&new_latency_histogram()),
            None
        );
    }

    #[test]
    fn a_tail_shows_in_p999_and_max_but_not_p50() {
        let mut histogram = new_latency_histogram();
        histogram.record_n(1_200, 9_980).expect("in range");
        histogram.record_n(40_000, 20).expect("in range");
        let summary = LatencySummary::from_histogram(&histogram).expect("not empty");
        assert_eq!(summary.p50_us, 1_200);
        assert_eq!(summary.p99_us, 1_200);
        assert!((40_000..=40_040).contains(&summary.p999_us), "{summary:?}");
        assert!((40_000..=40_040).contains(&summary.max_us), "{summary:?}");
        assert_eq!(milliseconds(1_200), "1.20");
        assert_eq!(milliseconds(15_106), "15.11");
    }

    #[test]
    fn a_publishing_run_renders_every_line_and_passes() {
        let report = publishing_report();
        assert_eq!(report.failures(), Vec::<&str>::new());
        assert_eq!(
            report.render(),
            "connections: 10000 open / 10000 asked (100 projects), connect time 6.2 s\n\
             connection failures: 0 failed to connect, 0 closed early\n\
             connection refusals: 0 answered 429/503, each retried after its Retry-After\n\
             heartbeats: 0 received\n\
             published: 15000 accepted, 0 failed, 500.0 events/s\n\
             deliveries: expected 1500000, received 1500000, missing 0, duplicates 0, cross-project leaks 0, resyncs 0\n\
             stream anomalies: 0 unrecognized events, 0 malformed frames\n\
             latency ms: p50 0.50, p99 0.99, p999 1.00, max 1.00\n\
             machine stalls: a thread sleeping 1 ms woke 30000 times, 40 of them 2 ms late or more, 6 of them 5 ms or more, the latest 12.40 ms late\n\
             server: rss before connect 20.1 MiB, after connect 90.4 MiB (7.2 KiB per connection), after run 95.0 MiB\n\
             server cpu: 2.1 s during publish phase, 1.37 us per delivery\n\
             load tool cpu: 30.1 s\n\
             error: 1 x http 503: overloaded\n\
             result: pass\n"
        );
    }

    #[test]
    fn missing_duplicate_and_leaked_deliveries_fail_the_run() {
        let mut report = publishing_report();
        report.deliveries.received = 1_499_990;
        report.deliveries.duplicates = 2;
        report.deliveries.leaks = 1;
        report.connections.closed_early = 1;
        assert_eq!(
            report.failures(),
            vec![
                "streams closed early",
                "deliveries missing",
                "duplicate deliveries",
                "cross-project leaks"
            ]
        );
        let text = report.render();
        assert!(
            text.contains("missing 10, duplicates 2, cross-project leaks 1"),
            "{text}"
        );
        assert!(
            text.ends_with("result: fail (streams closed early, deliveries missing, duplicate deliveries, cross-project leaks)\n"),
            "{text}"
        );
    }

    #[test]
    fn a_resumed_run_says_how_streams_came_back_and_fails_when_one_did_not() {
        let mut report = publishing_report();
        report.connections.resumes = Some(ResumeFigures {
            ended: 10_000,
            resumed: 9_999,
            refused: 4_200,
            first_end_to_last_resume: Some(Duration::from_millis(8_250)),
            peak_per_second: 1_980,
        });

        assert_eq!(report.failures(), vec!["streams not resumed"]);
        let text = report.render();
        assert!(
            text.contains("resumes: 10000 streams ended by the server, 9999 resumed with Last-Event-ID, the last 8.25 s after the first end, at most 1980 resumed in one second, 4200 resume attempts answered 429/503\n"),
            "{text}"
        );
    }

    #[test]
    fn an_idle_run_reports_connections_heartbeats_and_memory_only() {
        let mut report = publishing_report();
        report.publishing = None;
        report.idle_hold = Some(Duration::from_secs(30));
        report.deliveries = DeliveryFigures {
            heartbeats: 10_000,
            ..DeliveryFigures::default()
        };
        report.latency = None;
        report.stalls = None;
        report.server = ServerMeasure::NotAsked;
        report.errors = ErrorSamples::new();
        assert_eq!(
            report.render(),
            "connections: 10000 open / 10000 asked (100 projects), connect time 6.2 s\n\
             connection failures: 0 failed to connect, 0 closed early\n\
             connection refusals: 0 answered 429/503, each retried after its Retry-After\n\
             heartbeats: 10000 received\n\
             idle hold: 30.0 s\n\
             stream anomalies: 0 unrecognized events, 0 malformed frames\n\
             machine stalls: not measured\n\
             server: not measured (no --server-pid)\n\
             load tool cpu: 30.1 s\n\
             result: pass\n"
        );
    }

    #[test]
    fn error_samples_keep_the_first_kinds_and_count_the_rest() {
        let mut errors = ErrorSamples::new();
        for kind in 0..MAX_ERROR_KINDS + 2 {
            errors.record(&format!("kind {kind}"));
        }
        errors.record("kind 0");
        let mut merged = ErrorSamples::new();
        merged.record("kind 1");
        merged.merge(&errors);
        assert_eq!(merged.entries.len(), MAX_ERROR_KINDS);
        assert_eq!(merged.entries[0], ("kind 1".to_owned(), 2));
        assert_eq!(merged.entries[1], ("kind 0".to_owned(), 2));
        assert_eq!(merged.others, 2);
        assert_eq!(
            merged.total(),
            u64::try_from(MAX_ERROR_KINDS).expect("small") + 4
        );
    }
}
