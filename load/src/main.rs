//! docpulse-load: opens thousands of event streams against a docpulse server, publishes at a
//! steady rate and reports deliveries, latency and the server's memory and CPU.
//!
//! Code map, in reading order:
//!
//! - [`options`]: the command line.
//! - [`run`]: one run, phase by phase.
//! - [`subscribers`]: the connect phase and the stream tasks, with their pure bookkeeping
//!   (`book`) and shared counters (`tally`).
//! - [`publisher`]: the paced publish phase.
//! - [`report`]: the figures, the text report and the verdict.
//! - [`stalls`]: how late a sleeping thread wakes, to tell the machine's stalls from the
//!   server's tail.
//! - [`attack`]: the hostile modes (`--attack`) and what a legitimate user sees meanwhile.
//! - helpers: [`connection`] (target, source addresses, HTTP/1.1 connections), [`tokens`],
//!   [`naming`], [`pacing`], [`clock`], [`proc_stats`], [`open_files`].
//!
//! **Invariant:** the report is printed whatever happened; the exit status is 0 only when the
//! report's verdict is `pass`.

mod attack;
mod clock;
mod connection;
mod naming;
mod open_files;
mod options;
mod pacing;
mod proc_stats;
mod publisher;
mod report;
mod run;
mod stalls;
mod subscribers;
mod tokens;

use std::process::ExitCode;

use clap::Parser;

use crate::options::Options;

/// Exit status for options that clap accepted but [`Options::validate`] refused.
const EXIT_BAD_OPTIONS: u8 = 2;

fn main() -> ExitCode {
    let options = Options::parse();
    if let Err(message) = options.validate() {
        eprintln!("error: {message}");
        return ExitCode::from(EXIT_BAD_OPTIONS);
    }
    match open_files::raise_to_hard_limit() {
        Ok(limits) => {
            println!("{}", limits.describe());
            if limits.soft < u64::from(options.connections) + 64 {
                eprintln!(
                    "warning: {} open files are too few for {} connections",
                    limits.soft, options.connections
                );
            }
        }
        Err(error) => eprintln!("warning: cannot raise the open-file limit: {error}"),
    }
    let runtime = if options.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(options.threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the tokio runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(kind) = options.attack {
        return match runtime.block_on(attack::run(kind, &options)) {
            Ok(report) => {
                print!("{}", report.render());
                if report.failures().is_empty() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::FAILURE
            }
        };
    }
    match runtime.block_on(run::run(options)) {
        Ok(report) => {
            print!("{}", report.render());
            if report.failures().is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
