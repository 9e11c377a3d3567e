//! The command line of the load tool: what to open, how fast to publish and what to measure.
//!
//! **Invariant:** options that passed [`Options::validate`] describe a run that can start: at
//! least one connection, one project and one worker thread, and a source address inside
//! 127.0.0.0/8 for every connection.

use std::time::Duration;

use clap::Parser;

use crate::attack::AttackKind;
use crate::connection;

/// The server a run targets when `--url` is not given.
pub const DEFAULT_URL: &str = "http://127.0.0.1:3000";

/// Everything a run is told on the command line.
///
/// No `Debug`: it holds the JWT secret.
#[derive(Clone, Parser)]
#[command(
    name = "docpulse-load",
    version,
    about = "Load test of docpulse's event streams: opens many SSE connections, publishes at a steady rate, reports deliveries, latency and server cost",
    long_about = "Load test of docpulse's event streams (see API.md).\n\n\
        1. Opens --connections streams (GET /api/events/stream), one TCP connection each, \
        spread evenly over --projects projects named load_proj_0 .. load_proj_<P-1>, and waits \
        until every stream has sent its `connected` frame.\n\
        2. Publishes --rate events per second for --duration seconds (POST /api/events/publish), \
        each an `entity.created` notification with a distinct id and its send time in \
        `data.sentAtUs`, then waits up to --drain seconds for the last deliveries.\n\
        3. Prints one `name: value` line per measure: connections, deliveries (missing, \
        duplicates, cross-project leaks, resyncs), latency percentiles and, with --server-pid, \
        the server's memory and CPU.\n\n\
        With --rate 0 it only opens the streams and holds them for --duration seconds (idle \
        cost: memory per connection and heartbeats).\n\n\
        The exit status is non-zero when a connection failed or closed early, a publish failed, \
        or a delivery is missing, duplicated or reached the wrong project; the report is \
        printed first in every case."
)]
pub struct Options {
    /// Base URL of the docpulse server; plain http only. Given more than once (instances
    /// sharing one Redis), stream i connects to URL i mod N and publisher task j publishes
    /// through URL j mod N.
    #[arg(long, default_values_t = [DEFAULT_URL.to_owned()])]
    pub url: Vec<String>,

    /// Secret the server verifies tokens with (HS256); the tool mints every token with it.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: String,

    /// Number of event streams to open, one TCP connection each.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub connections: u32,

    /// Number of projects the streams are split over evenly (stream i watches
    /// load_proj_<i mod P>).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub projects: u32,

    /// Events published per second, in total over all projects; 0 opens the streams and only
    /// holds them (idle mode).
    #[arg(long, default_value_t = 100)]
    pub rate: u32,

    /// Length of the publish phase in seconds (in idle mode: how long the streams are held).
    #[arg(long, default_value_t = 30)]
    pub duration: u64,

    /// New connections started per second during the connect phase.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..))]
    pub connect_rate: u32,

    /// Most connection attempts in flight at once (TCP connect up to the `connected` frame), so
    /// the connect phase never becomes a connect storm.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..))]
    pub connect_concurrency: u32,

    /// Connections per loopback source address: connection i binds 127.0.0.(2 + i / N), port 0,
    /// so the run is not limited to one address's ephemeral ports. Applies only when the server
    /// is on an IPv4 loopback address.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub per_source: u32,

    /// Process id of the server, to report its resident memory (/proc/PID/status VmRSS) and CPU
    /// time (/proc/PID/stat utime + stime); without it the server lines say "not measured".
    #[arg(long)]
    pub server_pid: Option<u32>,

    /// Longest wait in seconds, after the last publish, for deliveries still on their way; the
    /// wait ends as soon as every expected delivery has arrived.
    #[arg(long, default_value_t = 5)]
    pub drain: u64,

    /// Streams the server ends connect again with their `Last-Event-ID` after its `retry:`
    /// (jittered), and failed publishes are tried again for up to 30 s: for a run across a
    /// server restart (`LOAD_RESTART_AFTER` in scripts/load.sh). The report then says how
    /// many streams were ended and resumed, how fast, and how many events went missing.
    #[arg(long)]
    pub resume: bool,

    /// Tokio worker threads of the tool; keep it low when the server shares the machine's cores.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,

    /// Runs a hostile mode instead of the load test, and reports what a legitimate user saw
    /// meanwhile (/healthz and another user's request every few milliseconds) and the server's
    /// peak memory (with --server-pid). login-flood: --attempts wrong logins,
    /// --attack-concurrency at once; slow-headers: --connections half request heads held
    /// --duration seconds; stream-flood: --connections streams of one token subject held
    /// --duration seconds; upload-bomb: an upload of --attack-bytes of distinct names in one
    /// sentence, followed until extracted; big-field: an upload with a --attack-bytes title.
    #[arg(long, value_enum)]
    pub attack: Option<AttackKind>,

    /// login-flood: wrong logins in all.
    #[arg(long, default_value_t = 400)]
    pub attempts: u32,

    /// login-flood: logins in flight at once.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    pub attack_concurrency: u32,

    /// login-flood: send each login from its own loopback address (127.0.0.2 up), so that only
    /// the per-account and hashing limits hold it back.
    #[arg(long)]
    pub spread_addresses: bool,

    /// upload-bomb: size of the upload; big-field: size of the title field.
    #[arg(long, default_value_t = 33_000)]
    pub attack_bytes: u64,

    /// upload-bomb, big-field, stream-flood: the project attacked (it must exist; the demo
    /// account's first project by default).
    #[arg(long, default_value = "proj_history")]
    pub attack_project: String,
}

impl Options {
    /// Checks what clap cannot: the thread count and that every connection has a source address.
    ///
    /// # Errors
    ///
    /// A message naming the option at fault and what it needs.
    pub fn validate(&self) -> Result<(), String> {
        if self.threads == 0 {
            return Err("--threads must be at least 1".to_owned());
        }
        if connection::source_address(self.connections - 1, self.per_source).is_none() {
            return Err(format!(
                "--connections {} at --per-source {} need source addresses past 127.255.255.254; \
                 raise --per-source",
                self.connections, self.per_source
            ));
        }
        Ok(())
    }

    /// True when `--rate 0` asked only to open and hold the streams.
    pub fn is_idle(&self) -> bool {
        self.rate == 0
    }

    /// Length of the publish phase, or of the hold in idle mode.
    pub fn publish_duration(&self) -> Duration {
        Duration::from_secs(self.duration)
    }

    /// Longest wait for the last deliveries after publishing.
    pub fn drain_duration(&self) -> Duration {
        Duration::from_secs(self.drain)
    }

    /// Number of events the publish phase sends: `rate × duration`.
    pub fn total_events(&self) -> u64 {
        u64::from(self.rate) * self.duration
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(arguments: &[&str]) -> Options {
        let mut command_line = vec!["docpulse-load", "--jwt-secret", "s"];
        command_line.extend_from_slice(arguments);
        Options::try_parse_from(command_line).expect("valid arguments")
    }

    #[test]
    fn defaults_match_the_documented_cli() {
        let options = parse(&[]);
        assert_eq!(options.url, ["http://127.0.0.1:3000"]);
        assert_eq!(options.connections, 1000);
        assert_eq!(options.projects, 10);
        assert_eq!(options.rate, 100);
        assert_eq!(options.duration, 30);
        assert_eq!(options.connect_rate, 2000);
        assert_eq!(options.connect_concurrency, 128);
        assert_eq!(options.per_source, 10_000);
        assert_eq!(options.server_pid, None);
        assert_eq!(options.drain, 5);
        assert_eq!(options.threads, 1);
        assert_eq!(options.total_events(), 3000);
        assert!(!options.is_idle());
        options.validate().expect("the defaults are valid");
    }

    #[test]
    fn zero_connections_or_projects_are_refused() {
        for arguments in [["--connections", "0"], ["--projects", "0"]] {
            let mut command_line = vec!["docpulse-load", "--jwt-secret", "s"];
            command_line.extend_from_slice(&arguments);
            assert!(
                Options::try_parse_from(command_line).is_err(),
                "{arguments:?}"
            );
        }
    }

    #[test]
    fn too_few_connections_per_source_are_refused() {
        let options = parse(&["--connections", "20000000", "--per-source", "1"]);
        let message = options.validate().expect_err("past 127.255.255.254");
        assert!(message.contains("--per-source"), "{message}");
        assert!(parse(&["--threads", "0"]).validate().is_err());
    }

    #[test]
    fn rate_zero_is_idle_mode() {
        let options = parse(&["--rate", "0", "--duration", "60"]);
        assert!(options.is_idle());
        assert_eq!(options.total_events(), 0);
        assert_eq!(options.publish_duration(), Duration::from_secs(60));
    }
}
