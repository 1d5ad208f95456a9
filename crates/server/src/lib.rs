//! The PumpPilot server: one axum application serving the REST API, the web dashboard and the
//! device endpoints over the tenant runtime, which applies the engine's rules and commits them to the store.
//!
//! Start with [`app::spawn`]; [`config::Settings`] documents every setting.

pub mod alerts;
pub mod app;
pub mod auth;
pub mod clock;
pub mod config;
pub mod error;
pub mod keys;
pub mod link;
pub mod link_news;
pub mod log_throttle;
pub mod metrics;
pub mod mqtt;
mod routes;
pub mod runtime;
pub mod serve;
pub mod start_path;
pub mod unchanged;
pub mod views;
pub mod web;

pub use app::{App, AppState, Running, router, spawn};
pub use config::Settings;
pub use routes::{
    STREAMS_PER_SESSION,
    firmware::{DOWNLOAD_KEPT, PROGRESS_WRITE_EVERY},
};
