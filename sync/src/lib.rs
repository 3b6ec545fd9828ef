//! The sans-IO core of Yizhan.
//!
//! Everything that must come out the same on every node lives here, as deterministic code
//! with no I/O: the domain rules ([`domain`]), the document model that stores items and
//! cases as Automerge documents and derives their queryable rows ([`doc`]), and the
//! identifiers they share ([`ids`]). The `yizhan` binary (crate `yizhan-node`) adds storage,
//! HTTP and clocks around it.

pub mod auth;
pub mod bundle;
pub mod doc;
pub mod domain;
pub mod effect;
pub mod engine;
pub mod envelope;
pub mod feed;
pub mod ids;
pub mod request;
pub mod sim;
pub mod wire;
