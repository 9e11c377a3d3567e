//! One run from start to report: resolve the server, connect every stream, publish (or hold)
//! and drain with the stall meter running, sample the server, close.
//!
//! **Invariant:** publishing starts only once every stream has connected or failed, and the
//! server CPU that the per-delivery figure divides is sampled right before publishing and right
//! after the drain.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock;
use crate::connection::ServerTarget;
use crate::options::Options;
use crate::proc_stats::{self, ProcessRef, ProcessSample, ProcessSampler};
use crate::publisher::{self, PublishOutcome, PublishPlan};
use crate::report::{ConnectionFigures, PublishFigures, Report, ServerFigures, ServerMeasure};
use crate::stalls::StallMeter;
use crate::subscribers::tally::SubscriberTally;
use crate::subscribers::{self, ConnectPacing, SubscriberPlan};
use crate::tokens::TokenMinter;

/// Seconds the tokens outlive the planned run, for the connect phase and slow starts.
const TOKEN_MARGIN_SECS: u64 = 600;

/// How often the drain checks whether every expected delivery has arrived.
const DRAIN_POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Longest wait for the tool's tasks to end once the streams are closed.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the load test that `options` describe and returns its figures.
///
/// # Errors
///
/// The URL is unusable or the publisher token cannot be signed; everything that goes wrong
/// later (failed connections, publishes, deliveries) is counted in the report instead.
pub async fn run(options: Options) -> anyhow::Result<Report> {
    let mut targets = Vec::with_capacity(options.url.len());
    for url in &options.url {
        targets.push(ServerTarget::resolve(url).await?);
    }
    let bind_source_addresses = targets.iter().all(ServerTarget::accepts_loopback_sources);
    if !bind_source_addresses {
        eprintln!(
            "note: the server is not on IPv4 loopback, so every connection uses the default \
             source address and --per-source is ignored"
        );
    }
    let ticks_per_second = proc_stats::clock_ticks_per_second();
    let mut server_probe = ServerProbe::new(
        options
            .server_pid
            .map(|pid| ProcessSampler::new(ProcessRef::Pid(pid), ticks_per_second)),
    );
    let before_connect = server_probe.sample("before connect");

    let expires_at_unix_secs =
        clock::unix_secs_now() + options.duration + options.drain + TOKEN_MARGIN_SECS;
    let minter = TokenMinter::new(&options.jwt_secret, expires_at_unix_secs);
    let publisher_authorization = format!("Bearer {}", minter.publisher()?);
    let tally = Arc::new(SubscriberTally::new(options.projects));
    let tracker = TaskTracker::new();
    let cancel = CancellationToken::new();
    let subscriber_plan = Arc::new(SubscriberPlan {
        targets: targets.clone(),
        minter,
        tally: Arc::clone(&tally),
        projects: options.projects,
        per_source: options.per_source,
        bind_source_addresses,
        event_count: options.total_events(),
        resume: options.resume,
    });

    eprintln!(
        "connecting {} streams over {} projects at {} per second",
        options.connections, options.projects, options.connect_rate
    );
    let connect_phase = subscribers::connect_all(
        subscriber_plan,
        ConnectPacing {
            connections: options.connections,
            per_second: options.connect_rate,
            concurrency: options.connect_concurrency,
        },
        &tracker,
        &cancel,
    )
    .await;
    let after_connect = server_probe.sample("after connect");

    let stall_meter = StallMeter::start()
        .inspect_err(|error| eprintln!("note: cannot start the stall meter: {error}"))
        .ok();
    let publish_outcome = if options.is_idle() {
        eprintln!("holding the streams for {} s", options.duration);
        tokio::time::sleep(options.publish_duration()).await;
        None
    } else {
        let publish_plan = Arc::new(PublishPlan {
            targets,
            authorization: publisher_authorization,
            rate: options.rate,
            event_count: options.total_events(),
            projects: options.projects,
            tally: Arc::clone(&tally),
            retry_failures: options.resume,
        });
        eprintln!(
            "publishing {} events at {} per second",
            options.total_events(),
            options.rate
        );
        let outcome = publisher::publish_all(publish_plan, &tracker).await;
        drain(
            &tally,
            outcome.expected_deliveries,
            options.drain_duration(),
        )
        .await;
        Some(outcome)
    };
    let stalls = stall_meter.and_then(StallMeter::stop);
    let after_run = server_probe.sample("after run");
    let snapshot = tally.snapshot();

    cancel.cancel();
    tracker.close();
    if tokio::time::timeout(CLOSE_TIMEOUT, tracker.wait())
        .await
        .is_err()
    {
        eprintln!(
            "note: some streams did not close within {} s",
            CLOSE_TIMEOUT.as_secs()
        );
    }
    let load_tool_cpu = ProcessSampler::new(ProcessRef::Own, ticks_per_second)
        .sample()
        .ok()
        .map(|sample| sample.cpu);

    let mut deliveries = snapshot.deliveries;
    let mut errors = snapshot.errors;
    let publishing = publish_outcome.map(|outcome: PublishOutcome| {
        deliveries.expected = outcome.expected_deliveries;
        errors.merge(&outcome.errors);
        PublishFigures {
            accepted: outcome.accepted,
            failed: outcome.failed,
            elapsed: outcome.elapsed,
        }
    });
    Ok(Report {
        connections: ConnectionFigures {
            asked: options.connections,
            projects: options.projects,
            connected: connect_phase.connected,
            failed_to_connect: connect_phase.failed,
            closed_early: snapshot.closed_early,
            refusals: snapshot.refusals,
            resumes: options.resume.then_some(snapshot.resumes),
            connect_time: connect_phase.elapsed,
        },
        idle_hold: options.is_idle().then(|| options.publish_duration()),
        publishing,
        deliveries,
        latency: snapshot.latency,
        stalls,
        server: server_probe.into_measure(before_connect, after_connect, after_run),
        load_tool_cpu,
        errors,
    })
}

/// Waits until `expected` deliveries have arrived or `longest` has passed.
async fn drain(tally: &SubscriberTally, expected: u64, longest: Duration) {
    let deadline = Instant::now() + longest;
    eprintln!(
        "draining: {} of {expected} deliveries arrived, waiting up to {} s for the rest",
        tally.received(),
        longest.as_secs()
    );
    while tally.received() < expected && Instant::now() < deadline {
        tokio::time::sleep(DRAIN_POLL_INTERVAL).await;
    }
}

/// Samples the server when `--server-pid` was given, remembering the first failure.
struct ServerProbe {
    sampler: Option<ProcessSampler>,
    failure: Option<String>,
}

impl ServerProbe {
    fn new(sampler: Option<ProcessSampler>) -> Self {
        Self {
            sampler,
            failure: None,
        }
    }

    /// The server's reading now; `None` when not asked or when reading failed.
    fn sample(&mut self, moment: &str) -> Option<ProcessSample> {
        let sampler = self.sampler?;
        match sampler.sample() {
            Ok(sample) => Some(sample),
            Err(error) => {
                self.failure
                    .get_or_insert_with(|| format!("{moment}: {error:#}"));
                None
            }
        }
    }

    fn into_measure(
        self,
        before_connect: Option<ProcessSample>,
        after_connect: Option<ProcessSample>,
        after_run: Option<ProcessSample>,
    ) -> ServerMeasure {
        if self.sampler.is_none() {
            return ServerMeasure::NotAsked;
        }
        match (before_connect, after_connect, after_run, self.failure) {
            (Some(before_connect), Some(after_connect), Some(after_run), _) => {
                ServerMeasure::Measured(ServerFigures {
                    before_connect,
                    after_connect,
                    after_run,
                })
            }
            (_, _, _, failure) => {
                ServerMeasure::Failed(failure.unwrap_or_else(|| "a reading is missing".to_owned()))
            }
        }
    }
}
