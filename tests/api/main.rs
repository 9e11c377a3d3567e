//! Integration tests: the real application over HTTP on an ephemeral port.

mod helpers;

mod cli;
mod health;
mod pages;
mod startup;
