//! The rules every node must agree on, as plain functions without I/O: codes and their
//! check digits, the working-day calendar and time limits, serial numbers, items, and the
//! case state machine. Nothing here reads a clock, a file or a socket; callers pass `now`.

pub mod attachment;
pub mod calendar;
pub mod case;
pub mod codes;
pub mod combined;
pub mod department;
pub mod draft;
pub mod fee;
pub mod hlc;
pub mod item;
pub mod notice;
pub mod query_code;
pub mod serial;
pub mod staff;
pub mod supervision;
pub mod text;
