//! The `yizhan` node: command line, configuration, SQLite store and HTTP API around the
//! sans-IO core in `yizhan-sync`.
//!
//! Layout:
//! * [`cli`] parses arguments and runs commands; `main.rs` only sets up logging and calls it.
//! * [`node`] knows a data dir's files and serves a node; [`config`] and [`identity`] load
//!   what it is.
//! * [`store`] is the only module with SQL; [`api`] is the thin JSON edge over it.
//! * [`appointments`] holds the rules of booking time slots (days, slots, codes).
//! * [`accounts`] hashes passwords and tokens; [`clock`] is where "now" comes from.
//! * [`demo`] and [`bench`] are the demo node and the benchmarks.

pub mod accounts;
pub mod api;
pub mod appointments;
pub mod backup;
pub mod bench;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod data_dir;
pub mod demo;
pub mod discovery;
pub mod identity;
pub mod link;
pub mod metrics;
pub mod node;
pub mod notice;
pub mod store;
pub mod tls;
pub mod web;
