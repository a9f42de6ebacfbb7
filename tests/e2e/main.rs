//! End-to-end tests: one binary, one module per protocol.
//! Run with `cargo test -p gw-e2e`.
#![allow(clippy::print_stderr)]

mod gitops;
mod identity;
mod images;
mod postgres;
mod reviews;
mod ssh;
