//! Integration tests: the real application over HTTP on an ephemeral port.

mod helpers;

mod abuse;
mod auth;
mod cli;
mod documents;
mod health;
mod instances;
mod pages;
mod publish;
mod renewal;
mod scale_out;
mod session;
mod startup;
mod stream;
mod trust;
mod workers;
