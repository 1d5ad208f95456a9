//! The parts of the `pumppilot` binary that its tests use too: choosing and opening the store.

pub mod store;
