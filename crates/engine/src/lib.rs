//! The rules of PumpPilot, with no IO and no clock of its own.
//!
//! A [`Tenant`] is one admin's pump: its device, its one active run, its waiting line and its
//! users' wallets. [`Tenant::apply`] takes an [`Event`] and the current time and returns the
//! [`Records`] the change leaves behind (ledger entries, usage rows, ended entries). Everything
//! the queue, the timer and the safety rules decide is decided here, so it is tested with fake time
//! in microseconds.
//!
//! Invariants (checked by the property tests in `tests/invariants.rs`):
//! - at most one active (RUNNING or HOLD) entry per tenant: [`Tenant::active`] is an `Option`;
//! - WAITING positions are always 1..n: they are the order of [`Tenant::waiting`];
//! - no balance goes negative, and every balance is the sum of its ledger entries;
//! - a run is charged one second per full second RUNNING, never in WAITING or HOLD;
//! - restart protection: the command never goes ON inside a minimum OFF time, a grid settle time
//!   or beyond the starts cap of the hour ([`MotorRules`]); a handover is not a start;
//! - only the tenant's controller device changes the run; every other device is answered OFF.

mod ids;
mod model;
mod motor;
mod notices;
mod records;
mod rules;
mod time;

pub use ids::{AdminId, DeviceId, EntryId, ReceiptId, RequestId, UserId};
pub use model::{DeviceLink, EndReason, EntryStatus, QueueEntry, RejectReason, Tenant};
pub use motor::{HOUR_MS, MotorHistory, MotorRules, MotorSettings};
pub use notices::{Facts, LOW_BALANCE_SECONDS, Notice, NoticeKind, request_rejected};
pub use pumppilot_protocol::{HoldReason, Motor, MotorState, PollAnswer, ReaderState, RelayOff, ResetReason};
pub use records::{LedgerEntry, LedgerKind, Records, UsageRow};
pub use rules::{Credit, DevicePoll, Event, Outcome, RUN_MINUTES, Refusal, Reply};
pub use time::Timestamp;
