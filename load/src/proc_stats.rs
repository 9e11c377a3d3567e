//! Resident memory and CPU time of a process, read from Linux's `/proc`.
//!
//! **Invariant:** parsing is pure and never panics on odd text: a field it cannot find makes
//! the sample fail with a message, it is never read as zero.

use std::io;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::Context;

/// Clock ticks per second when `getconf CLK_TCK` cannot say (the value on every common Linux).
const FALLBACK_TICKS_PER_SECOND: u64 = 100;

/// The process a [`ProcessSampler`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessRef {
    /// The load tool itself (`/proc/self`).
    Own,
    /// Another process, such as the server.
    Pid(u32),
}

/// One reading of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessSample {
    /// Resident set size (`VmRSS`).
    pub rss_bytes: u64,
    /// The highest resident set size since the process started (`VmHWM`), when reported.
    pub peak_rss_bytes: Option<u64>,
    /// User plus system CPU time since the process started.
    pub cpu: Duration,
}

/// Reads [`ProcessSample`]s of one process.
#[derive(Debug, Clone, Copy)]
pub struct ProcessSampler {
    process: ProcessRef,
    /// `CLK_TCK`: the unit of the CPU times in `/proc/PID/stat`.
    ticks_per_second: u64,
}

impl ProcessSampler {
    /// A sampler of `process`, with CPU ticks converted at `ticks_per_second`.
    pub fn new(process: ProcessRef, ticks_per_second: u64) -> Self {
        Self {
            process,
            ticks_per_second: ticks_per_second.max(1),
        }
    }

    /// Reads the process's memory and CPU time now.
    ///
    /// # Errors
    ///
    /// The process is gone, or its `/proc` files do not hold the expected fields.
    pub fn sample(&self) -> anyhow::Result<ProcessSample> {
        let directory = match self.process {
            ProcessRef::Own => PathBuf::from("/proc/self"),
            ProcessRef::Pid(pid) => PathBuf::from(format!("/proc/{pid}")),
        };
        let status = read(&directory, "status")?;
        let stat = read(&directory, "stat")?;
        let rss_bytes = parse_status_bytes(&status, "VmRSS")
            .with_context(|| format!("no VmRSS line in {}/status", directory.display()))?;
        let cpu_ticks = parse_cpu_ticks(&stat)
            .with_context(|| format!("no utime and stime in {}/stat", directory.display()))?;
        Ok(ProcessSample {
            rss_bytes,
            peak_rss_bytes: parse_status_bytes(&status, "VmHWM"),
            cpu: ticks_to_duration(cpu_ticks, self.ticks_per_second),
        })
    }
}

fn read(directory: &std::path::Path, file: &str) -> anyhow::Result<String> {
    let path = directory.join(file);
    std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))
}

/// `CLK_TCK` as `getconf CLK_TCK` reports it, or 100 when that fails.
pub fn clock_ticks_per_second() -> u64 {
    let output: io::Result<_> = Command::new("getconf").arg("CLK_TCK").output();
    output
        .ok()
        .filter(|output| output.status.success())
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .filter(|&ticks: &u64| ticks > 0)
        .unwrap_or(FALLBACK_TICKS_PER_SECOND)
}

/// A size in bytes from the text of `/proc/PID/status`: the line of `field`, such as
/// `VmRSS:  1234 kB`.
pub fn parse_status_bytes(status_text: &str, field: &str) -> Option<u64> {
    let line = status_text.lines().find_map(|line| {
        line.strip_prefix(field)
            .and_then(|rest| rest.strip_prefix(':'))
    })?;
    let mut fields = line.split_whitespace();
    let amount: u64 = fields.next()?.parse().ok()?;
    let multiplier = match fields.next() {
        Some("kB") => 1024,
        Some("mB") => 1024 * 1024,
        Some("B") | None => 1,
        Some(_) => return None,
    };
    amount.checked_mul(multiplier)
}

/// `utime + stime` in clock ticks from the text of `/proc/PID/stat`.
///
/// The command name (field 2) is in parentheses and may hold spaces and `)`, so fields are
/// counted from the last `)`: after it come `state` (field 3), ..., `utime` (14), `stime` (15).
pub fn parse_cpu_ticks(stat_text: &str) -> Option<u64> {
    let (_, after_command) = stat_text.rsplit_once(')')?;
    let mut fields = after_command.split_whitespace().skip(11);
    let user_ticks: u64 = fields.next()?.parse().ok()?;
    let system_ticks: u64 = fields.next()?.parse().ok()?;
    user_ticks.checked_add(system_ticks)
}

/// `ticks` clock ticks at `ticks_per_second` as a duration.
pub fn ticks_to_duration(ticks: u64, ticks_per_second: u64) -> Duration {
    let ticks_per_second = ticks_per_second.max(1);
    let whole_seconds = ticks / ticks_per_second;
    let rest_nanos = (ticks % ticks_per_second) * 1_000_000_000 / ticks_per_second;
    Duration::from_secs(whole_seconds) + Duration::from_nanos(rest_nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tdocpulse\nUmask:\t0022\nState:\tS (sleeping)\nVmPeak:\t  300000 kB\nVmRSS:\t   20560 kB\nRssAnon:\t   10000 kB\nThreads:\t3\n";

    #[test]
    fn rss_comes_from_the_vmrss_line_in_bytes() {
        assert_eq!(parse_status_bytes(STATUS, "VmRSS"), Some(20_560 * 1024));
        assert_eq!(parse_status_bytes("VmRSS: 12 kB", "VmRSS"), Some(12 * 1024));
        assert_eq!(parse_status_bytes(STATUS, "VmPeak"), Some(300_000 * 1024));
        assert_eq!(parse_status_bytes(STATUS, "VmHWM"), None);
    }

    #[test]
    fn a_status_without_a_readable_vmrss_is_refused() {
        for text in [
            "",
            "Name:\tkthreadd\nState:\tS\n",
            "VmRSS:\n",
            "VmRSS:\tmany kB\n",
            "VmRSS:\t12 furlongs\n",
        ] {
            assert_eq!(parse_status_bytes(text, "VmRSS"), None, "{text:?}");
        }
    }

    #[test]
    fn cpu_ticks_are_user_plus_system_counted_after_the_command_name() {
        let stat = "4242 (docpulse) S 1 4242 4242 0 -1 4194560 5000 0 0 0 1234 567 0 0 20 0 3 0 100 300000000 5140 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat), Some(1234 + 567));
        let odd_name =
            "77 (tokio) runtime) worker) R 1 77 77 0 -1 0 0 0 0 0 10 5 0 0 20 0 1 0 1 1 1";
        assert_eq!(parse_cpu_ticks(odd_name), Some(15));
    }

    #[test]
    fn a_truncated_or_garbled_stat_is_refused() {
        for text in [
            "",
            "4242 docpulse S 1",
            "1 (x) S 1 2 3",
            "1 (x) S 1 1 1 0 -1 0 0 0 0 0 ten 5",
        ] {
            assert_eq!(parse_cpu_ticks(text), None, "{text:?}");
        }
    }

    #[test]
    fn ticks_convert_exactly() {
        assert_eq!(ticks_to_duration(250, 100), Duration::from_millis(2500));
        assert_eq!(ticks_to_duration(1, 3), Duration::from_nanos(333_333_333));
        assert_eq!(ticks_to_duration(7, 0), Duration::from_secs(7));
    }

    #[test]
    fn the_own_process_can_be_sampled() {
        let sample = ProcessSampler::new(ProcessRef::Own, clock_ticks_per_second())
            .sample()
            .expect("/proc/self is readable on Linux");
        assert!(sample.rss_bytes > 0);
    }
}
