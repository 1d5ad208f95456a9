//! PumpPilot's alert delivery.
//!
//! What to tell whom is decided by the engine (`pumppilot_engine::Notice`) and written by the
//! store in the same commit as the change (a notification and an outbox item). This crate sends
//! them: [`text`] writes the sentence in the person's language, [`sms`] counts SMS parts and posts
//! to an HTTP SMS gateway from a template, [`push`] posts to Expo's push API and reads its receipts (both through
//! [`http`]'s client: plain HTTP or TLS on rustls with ring), and [`worker`] claims outbox items
//! and delivers them with retries, backoff, rate limits and quiet hours.

pub mod http;
pub mod push;
pub mod sms;
pub mod text;
pub mod worker;

/// The HTTP(S) client the senders take.
pub use http::{CaError, HttpClient};

pub use push::{EXPO_PUSH_URL, EXPO_RECEIPTS_URL, ExpoPush, Pushed, Receipt, receipts_url_for};
pub use sms::{BodyFormat, Encoding, Parts, SendError, SmsGateway, parts};
pub use text::{Language, render};
pub use worker::{Limits, Outbox, Round};
