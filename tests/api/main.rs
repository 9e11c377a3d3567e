//! Integration tests: the real application over HTTP on an ephemeral port.

mod helpers;

mod auth;
mod cli;
mod health;
mod pages;
mod publish;
mod startup;
mod stream;
