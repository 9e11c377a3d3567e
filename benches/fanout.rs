//! The fan-out path without the network: publish into the in-memory bus with N subscribers
//! on one project, then let every subscriber take the frame.
//!
//! `publish/*` is the cost of one publish (sequence, coalescer, serialization once, history,
//! broadcast); `deliver/*` is the cost of handing that frame to N subscribers, reported per
//! delivery through criterion's element throughput. Each runs with the coalescer on (a
//! window of 100 ms, every event for a new entity, its worst case) and off.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures_util::FutureExt;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use app::protocol::{DocumentChange, EntityData, EntityKind, EventType, NewEvent, ProjectId};
use docpulse::config::EventsConfig;
use docpulse::events::{Delivery, EventBus, InMemoryEventBus, Subscription};
use docpulse::metrics::Metrics;

const SUBSCRIBERS: [usize; 3] = [1, 100, 10_000];

struct Setup {
    bus: InMemoryEventBus,
    subscriptions: Vec<Subscription>,
    project: ProjectId,
    next_id: u64,
    _runtime: tokio::runtime::Runtime,
    _shutdown: tokio_util::sync::DropGuard,
}

impl Setup {
    fn new(subscribers: usize, coalesce: bool) -> Self {
        // One worker runs the coalescer's window closer; the benchmark thread publishes.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_time()
            .build()
            .expect("a runtime");
        let shutdown = CancellationToken::new();
        let config = EventsConfig::bounded(
            Duration::from_millis(if coalesce { 100 } else { 0 }),
            1024,
            256,
        );
        let bus = runtime.block_on(async {
            InMemoryEventBus::start(
                config,
                Arc::new(Metrics::new()),
                &TaskTracker::new(),
                shutdown.clone(),
            )
        });
        let project: ProjectId = "bench_proj".parse().expect("valid");
        let subscriptions = (0..subscribers)
            .map(|_| {
                bus.subscribe(&project, None)
                    .now_or_never()
                    .expect("subscribing does not wait")
                    .expect("subscribes")
            })
            .collect();
        Self {
            bus,
            subscriptions,
            project,
            next_id: 0,
            _runtime: runtime,
            _shutdown: shutdown.drop_guard(),
        }
    }

    /// Publishes one update of a new entity; returns how long the publish took.
    fn publish(&mut self) -> Duration {
        self.next_id += 1;
        let event = NewEvent::single(
            EventType::Updated,
            EntityKind::Document,
            format!("doc_{}", self.next_id).parse().expect("valid"),
            self.project.clone(),
            Some(
                DocumentChange {
                    embedded_chunks: Some(u32::try_from(self.next_id).unwrap_or(u32::MAX)),
                    chunks: Some(100),
                    ..DocumentChange::default()
                }
                .to_data(),
            ),
        );
        let start = Instant::now();
        let id = self
            .bus
            .publish(event)
            .now_or_never()
            .expect("an update of a new entity is never held back")
            .expect("published");
        let elapsed = start.elapsed();
        black_box(id);
        elapsed
    }

    /// Every subscriber takes the frame; returns how long that took.
    fn deliver(&mut self) -> Duration {
        let start = Instant::now();
        for subscription in &mut self.subscriptions {
            match subscription.next().now_or_never() {
                Some(Delivery::Frame(frame)) => {
                    black_box(frame.bytes);
                }
                other => panic!("expected a frame, got {other:?}"),
            }
        }
        start.elapsed()
    }
}

fn fan_out(criterion: &mut Criterion) {
    for coalesce in [false, true] {
        let label = if coalesce {
            "coalescer_on"
        } else {
            "coalescer_off"
        };
        let mut group = criterion.benchmark_group(format!("publish/{label}"));
        for subscribers in SUBSCRIBERS {
            let mut setup = Setup::new(subscribers, coalesce);
            group.throughput(Throughput::Elements(1));
            group.bench_function(BenchmarkId::from_parameter(subscribers), |bencher| {
                bencher.iter_custom(|iterations| {
                    (0..iterations)
                        .map(|_| {
                            let publish = setup.publish();
                            setup.deliver();
                            publish
                        })
                        .sum()
                });
            });
        }
        group.finish();

        let mut group = criterion.benchmark_group(format!("deliver/{label}"));
        for subscribers in SUBSCRIBERS {
            let mut setup = Setup::new(subscribers, coalesce);
            group.throughput(Throughput::Elements(subscribers as u64));
            group.bench_function(BenchmarkId::from_parameter(subscribers), |bencher| {
                bencher.iter_custom(|iterations| {
                    (0..iterations)
                        .map(|_| {
                            setup.publish();
                            setup.deliver()
                        })
                        .sum()
                });
            });
        }
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = fan_out
}
criterion_main!(benches);
