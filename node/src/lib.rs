//! The `yizhan` node: command line, configuration, SQLite store, JSON API, web UI and sync
//! client around the sans-IO core in `yizhan-sync`.
//!
//! The modules form a one-way stack; each imports only the layers below it (the test
//! `node/tests/layers.rs` checks it, ARCHITECTURE.md draws it):
//!
//! * [`cli`] parses arguments and runs commands; `main.rs` only installs the allocator.
//! * [`bench`](mod@bench), [`demo`] and [`commands`] are programs built on a node.
//! * [`node`] is the wiring: a data dir opened into a node, the router, the server.
//! * [`api`] (the JSON API and `/sync/v1`), [`web`] (the pages), [`link`] (the sync
//!   client and driver), [`sink`] (the PostgreSQL sink's driver) and [`control`] (the
//!   local socket `yizhan status` and `yizhan sync now` talk to) are the edges; none
//!   imports another.
//! * [`backup`] writes and restores archives around the database.
//! * [`store`] is the only module with SQL.
//! * The base, importing nothing above it: [`data_dir`], [`config`], [`tls`], [`identity`],
//!   [`appointments`] (the pure rules of booking), [`catalog`] (reading a catalog file),
//!   [`discovery`], [`notice`] (sealing), [`metrics`], [`links`] (the state of the sync
//!   links, shared by the edges), [`accounts`] (password and token hashing), [`clock`]
//!   (where "now" comes from, and how times are written) and [`i18n`] (the words of pages
//!   and errors).

pub mod accounts;
pub mod api;
pub mod appointments;
pub mod backup;
pub mod bench;
pub mod catalog;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod config;
pub mod control;
pub mod data_dir;
pub mod demo;
pub mod discovery;
pub mod i18n;
pub mod identity;
pub mod link;
pub mod links;
pub mod metrics;
pub mod node;
pub mod notice;
pub mod seals;
pub mod sink;
pub mod store;
pub mod tls;
pub mod web;
