//! Engine tests: see sim/tests.rs for the multi-peer properties.
