//! [`StallMeter`]: how late a thread that does nothing but sleep [`TICK`] wakes up, over the
//! publish phase (or the idle hold).
//!
//! The tool and the server share the machine's cores. When a thread that is ready to run
//! waits for a CPU (behind the tool's and the server's own threads, the kernel's work, other
//! processes, or a virtual CPU the hypervisor is not running), every delivery in flight is
//! late whatever the server does, and the backlog that builds then takes a while to drain.
//! This meter tells those moments apart from the server's own tail: the report prints them
//! next to the latency (README, Benchmarks, "Where the p999 comes from").
//!
//! **Invariant:** one OS thread outside the tool's runtime, woken at most once per [`TICK`]
//! (about 1 % of a core); its memory is one histogram whatever the length of the run.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use crate::report::new_latency_histogram;

/// How long the meter's thread sleeps each time.
pub const TICK: Duration = Duration::from_millis(1);

/// A wake-up this late counts as a stall in the report.
pub const STALL: Duration = Duration::from_millis(2);

/// A wake-up this late counts as a long stall in the report.
pub const LONG_STALL: Duration = Duration::from_millis(5);

/// The running meter; [`StallMeter::stop`] ends it and gives its figures.
pub struct StallMeter {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Histogram<u64>>,
}

/// What the meter saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StallSummary {
    /// How many times the thread woke up.
    pub wakeups: u64,
    /// Wake-ups at least [`STALL`] late.
    pub stalls: u64,
    /// Wake-ups at least [`LONG_STALL`] late.
    pub long_stalls: u64,
    /// The latest wake-up, in microseconds past its due time.
    pub worst_us: u64,
}

impl StallMeter {
    /// Starts the meter's thread.
    ///
    /// # Errors
    ///
    /// The thread could not be spawned.
    pub fn start() -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("stall-meter".to_owned())
            .spawn({
                let stop = Arc::clone(&stop);
                move || {
                    let mut lateness = new_latency_histogram();
                    while !stop.load(Ordering::Relaxed) {
                        let asleep = Instant::now();
                        std::thread::sleep(TICK);
                        lateness.saturating_record(micros_late(asleep.elapsed()));
                    }
                    lateness
                }
            })?;
        Ok(Self { stop, thread })
    }

    /// Stops the meter, waiting out its thread's current sleep (one tick, or a stall);
    /// `None` if its thread panicked.
    pub fn stop(self) -> Option<StallSummary> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .join()
            .ok()
            .map(|lateness| StallSummary::from_histogram(&lateness))
    }
}

impl StallSummary {
    /// The summary of wake-up lateness in microseconds.
    pub fn from_histogram(lateness: &Histogram<u64>) -> Self {
        let at_least = |late: Duration| {
            let late = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
            lateness
                .iter_recorded()
                .filter(|value| value.value_iterated_to() >= late)
                .map(|value| value.count_at_value())
                .sum()
        };
        Self {
            wakeups: lateness.len(),
            stalls: at_least(STALL),
            long_stalls: at_least(LONG_STALL),
            worst_us: lateness.max(),
        }
    }
}

/// How far past [`TICK`] a sleep that took `slept` ended, in whole microseconds.
fn micros_late(slept: Duration) -> u64 {
    u64::try_from(slept.saturating_sub(TICK).as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lateness_is_the_time_past_the_tick() {
        assert_eq!(micros_late(TICK), 0);
        assert_eq!(micros_late(TICK / 2), 0);
        assert_eq!(micros_late(TICK + Duration::from_micros(2_500)), 2_500);
    }

    #[test]
    fn the_summary_counts_stalls_at_both_marks() {
        let mut lateness = new_latency_histogram();
        lateness.record_n(60, 1_000).expect("in range");
        lateness.record_n(1_999, 5).expect("in range");
        lateness.record_n(2_000, 3).expect("in range");
        lateness.record_n(4_999, 2).expect("in range");
        lateness.record_n(5_000, 1).expect("in range");
        lateness.record(14_400).expect("in range");
        let summary = StallSummary::from_histogram(&lateness);
        assert_eq!(
            summary,
            StallSummary {
                wakeups: 1_012,
                stalls: 7,
                long_stalls: 2,
                worst_us: summary.worst_us,
            }
        );
        assert!((14_400..14_420).contains(&summary.worst_us), "{summary:?}");
    }

    #[test]
    fn the_meter_wakes_about_once_a_tick_until_stopped() {
        let meter = StallMeter::start().expect("a thread");
        std::thread::sleep(Duration::from_millis(100));
        let summary = meter.stop().expect("the thread ran");
        // At most one wake-up per tick; a busy test machine wakes it less often.
        assert!((5..=100).contains(&summary.wakeups), "{summary:?}");
    }
}
