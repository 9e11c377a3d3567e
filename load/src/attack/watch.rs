//! [`Watch`]: what a legitimate user sees of the server during an attack, and what the
//! attack costs it: `/healthz` every [`PROBE_INTERVAL`] and another user's `GET /api/projects`
//! every [`BYSTANDER_INTERVAL`], each on a new connection, and the server's memory.
//!
//! **Invariant:** a probe that gets no `200` within [`PROBE_LIMIT`] counts as failed, never as
//! slow; the latencies are of answered probes only.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::attack::raw;
use crate::connection::ServerTarget;
use crate::proc_stats::ProcessSampler;

/// Time between two `/healthz` probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(50);
/// Time between two bystander requests.
const BYSTANDER_INTERVAL: Duration = Duration::from_millis(250);
/// A probe not answered `200` within this counts as failed.
const PROBE_LIMIT: Duration = Duration::from_secs(2);
/// Time between two readings of the server's memory.
const MEMORY_INTERVAL: Duration = Duration::from_millis(20);

/// The probes and readings of one attack, running until [`Watch::finish`].
pub struct Watch {
    stop: CancellationToken,
    health: tokio::task::JoinHandle<Probes>,
    bystander: tokio::task::JoinHandle<Probes>,
    memory: tokio::task::JoinHandle<Option<u64>>,
}

/// The outcome of one kind of probe.
#[derive(Debug, Clone, Default)]
pub struct Probes {
    /// Latencies of the probes answered `200`, in microseconds.
    pub latencies_us: Vec<u64>,
    /// Probes not answered `200` in time.
    pub failed: u64,
}

impl Probes {
    /// The `fraction` percentile of the answered probes (0 without any).
    pub fn percentile_us(&self, fraction: f64) -> u64 {
        let mut sorted = self.latencies_us.clone();
        sorted.sort_unstable();
        if sorted.is_empty() {
            return 0;
        }
        let rank = ((sorted.len() as f64) * fraction).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }
}

/// What the watch saw.
#[derive(Debug, Clone)]
pub struct Seen {
    /// `/healthz` probes.
    pub health: Probes,
    /// The bystander's requests.
    pub bystander: Probes,
    /// The highest resident memory read during the attack, when the server was sampled.
    pub peak_rss_bytes: Option<u64>,
}

impl Watch {
    /// Starts probing `target` (the bystander with `bystander_token`) and, with `server`,
    /// reading its memory.
    pub fn start(
        target: &ServerTarget,
        bystander_token: &str,
        server: Option<ProcessSampler>,
    ) -> Self {
        let stop = CancellationToken::new();
        let health_request = raw::head(target, "GET", "/healthz", &[], None).into_bytes();
        let authorization = format!("Bearer {bystander_token}");
        let bystander_request = raw::head(
            target,
            "GET",
            "/api/projects",
            &[("Authorization", &authorization)],
            None,
        )
        .into_bytes();
        Self {
            health: tokio::spawn(probe(
                target.clone(),
                health_request,
                PROBE_INTERVAL,
                stop.clone(),
            )),
            bystander: tokio::spawn(probe(
                target.clone(),
                bystander_request,
                BYSTANDER_INTERVAL,
                stop.clone(),
            )),
            memory: tokio::spawn(read_memory(server, stop.clone())),
            stop,
        }
    }

    /// Stops the probes and returns what they saw.
    pub async fn finish(self) -> Seen {
        self.stop.cancel();
        Seen {
            health: self.health.await.unwrap_or_default(),
            bystander: self.bystander.await.unwrap_or_default(),
            peak_rss_bytes: self.memory.await.ok().flatten(),
        }
    }
}

async fn probe(
    target: ServerTarget,
    request: Vec<u8>,
    interval: Duration,
    stop: CancellationToken,
) -> Probes {
    let probes = Arc::new(Mutex::new(Probes::default()));
    let mut ticks = tokio::time::interval(interval);
    let mut pending = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = ticks.tick() => {
                // Each probe on its own task, so a slow answer does not delay the next probe.
                let (target, request, probes) = (target.clone(), request.clone(), probes.clone());
                pending.spawn(async move {
                    let started = Instant::now();
                    let answer = raw::exchange(&target, None, &request, PROBE_LIMIT).await;
                    let mut probes = probes.lock().unwrap_or_else(PoisonError::into_inner);
                    match answer {
                        Ok(answer) if answer.status == 200 => probes
                            .latencies_us
                            .push(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX)),
                        _ => probes.failed += 1,
                    }
                });
            }
        }
    }
    while pending.join_next().await.is_some() {}
    let probes = probes.lock().unwrap_or_else(PoisonError::into_inner);
    probes.clone()
}

async fn read_memory(server: Option<ProcessSampler>, stop: CancellationToken) -> Option<u64> {
    let server = server?;
    let mut peak = None;
    let mut read = || {
        if let Ok(sample) = server.sample() {
            // VmHWM is the kernel's own peak, which catches a spike between readings.
            let reading = sample.peak_rss_bytes.unwrap_or(sample.rss_bytes);
            peak = Some(peak.map_or(reading, |peak: u64| peak.max(reading)));
        }
    };
    let mut ticks = tokio::time::interval(MEMORY_INTERVAL);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = ticks.tick() => read(),
        }
    }
    // An attack refused at once can end before the first tick: read once more at the end.
    read();
    peak
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_answered_probes() {
        let probes = Probes {
            latencies_us: (1..=100).rev().collect(),
            failed: 3,
        };
        assert_eq!(probes.percentile_us(0.5), 50);
        assert_eq!(probes.percentile_us(0.99), 99);
        assert_eq!(probes.percentile_us(1.0), 100);
        assert_eq!(Probes::default().percentile_us(0.99), 0);
    }
}
