//! The tenant's runtime state: its device, its one active run, its waiting line and its wallets.

use std::collections::BTreeMap;

use pumppilot_protocol::{HoldReason, Motor, MotorState, PollAnswer};
use serde::{Deserialize, Serialize};

use crate::{AdminId, DeviceId, EntryId, MotorHistory, MotorRules, MotorSettings, Timestamp, UserId};

/// Where a queue entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EntryStatus {
    /// In line; its position is its place in [`Tenant::waiting`].
    Waiting,
    /// Active and charging.
    Running,
    /// Active but paused; nothing is charged.
    Hold,
    /// Was active, has ended.
    Completed,
    /// Never became active (left the line, skipped, or suspended while waiting).
    Cancelled,
}

impl EntryStatus {
    /// The wire and store name.
    pub const fn as_str(self) -> &'static str {
        match self {
            EntryStatus::Waiting => "WAITING",
            EntryStatus::Running => "RUNNING",
            EntryStatus::Hold => "HOLD",
            EntryStatus::Completed => "COMPLETED",
            EntryStatus::Cancelled => "CANCELLED",
        }
    }

    /// Parses a wire or store name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "WAITING" => EntryStatus::Waiting,
            "RUNNING" => EntryStatus::Running,
            "HOLD" => EntryStatus::Hold,
            "COMPLETED" => EntryStatus::Completed,
            "CANCELLED" => EntryStatus::Cancelled,
            _ => return None,
        })
    }

    /// WAITING, RUNNING or HOLD.
    pub const fn is_live(self) -> bool {
        matches!(self, EntryStatus::Waiting | EntryStatus::Running | EntryStatus::Hold)
    }
}

/// Why an entry ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EndReason {
    UserStop,
    BalanceExhausted,
    RequestedMinutesUsed,
    AdminStop,
    Suspended,
    InsufficientBalance,
    LeftQueue,
}

impl EndReason {
    /// The wire and store name.
    pub const fn as_str(self) -> &'static str {
        match self {
            EndReason::UserStop => "USER_STOP",
            EndReason::BalanceExhausted => "BALANCE_EXHAUSTED",
            EndReason::RequestedMinutesUsed => "REQUESTED_MINUTES_USED",
            EndReason::AdminStop => "ADMIN_STOP",
            EndReason::Suspended => "SUSPENDED",
            EndReason::InsufficientBalance => "INSUFFICIENT_BALANCE",
            EndReason::LeftQueue => "LEFT_QUEUE",
        }
    }

    /// Parses a wire or store name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "USER_STOP" => EndReason::UserStop,
            "BALANCE_EXHAUSTED" => EndReason::BalanceExhausted,
            "REQUESTED_MINUTES_USED" => EndReason::RequestedMinutesUsed,
            "ADMIN_STOP" => EndReason::AdminStop,
            "SUSPENDED" => EndReason::Suspended,
            "INSUFFICIENT_BALANCE" => EndReason::InsufficientBalance,
            "LEFT_QUEUE" => EndReason::LeftQueue,
            _ => return None,
        })
    }
}

/// Why a pump owner rejected a farmer's minute request, when they say. A fixed set, not free text:
/// each is said in the farmer's own language, and the SMS that says it stays one part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RejectReason {
    /// The owner has not received the payment.
    NotPaid,
    /// The payment does not match the minutes asked for.
    WrongAmount,
    /// Too many minutes: the farmer may ask for fewer.
    TooMany,
    /// The pump is closed for now: the farmer may ask again later.
    PumpClosed,
}

impl RejectReason {
    /// Every reason, in the order an owner is offered them.
    pub const ALL: [RejectReason; 4] =
        [RejectReason::NotPaid, RejectReason::WrongAmount, RejectReason::TooMany, RejectReason::PumpClosed];

    /// The wire and store name.
    pub const fn as_str(self) -> &'static str {
        match self {
            RejectReason::NotPaid => "NOT_PAID",
            RejectReason::WrongAmount => "WRONG_AMOUNT",
            RejectReason::TooMany => "TOO_MANY",
            RejectReason::PumpClosed => "PUMP_CLOSED",
        }
    }

    /// Parses a wire or store name.
    pub fn parse(s: &str) -> Option<Self> {
        RejectReason::ALL.into_iter().find(|reason| reason.as_str() == s)
    }
}

/// One user's request to run the motor, from the moment they press Start until it ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueEntry {
    pub id: EntryId,
    pub user_id: UserId,
    pub admin_id: AdminId,
    pub status: EntryStatus,
    pub hold_reason: Option<HoldReason>,
    /// The most the user asked to run, in seconds.
    pub requested_seconds: Option<i64>,
    pub created_at: Timestamp,
    /// When it first became active.
    pub started_at: Option<Timestamp>,
    /// When the current RUNNING or HOLD phase began. `None` while RUNNING means the device has
    /// not been told yet: charging starts with the poll whose answer says ON.
    pub phase_since: Option<Timestamp>,
    /// RUNNING milliseconds before `phase_since`.
    pub running_ms: i64,
    /// HOLD milliseconds before `phase_since`.
    pub held_ms: i64,
    pub ended_at: Option<Timestamp>,
    pub end_reason: Option<EndReason>,
    pub charged_seconds: Option<i64>,
}

impl QueueEntry {
    /// A new entry, not yet placed.
    pub fn new(
        id: EntryId,
        user_id: UserId,
        admin_id: AdminId,
        requested_seconds: Option<i64>,
        now: Timestamp,
    ) -> Self {
        QueueEntry {
            id,
            user_id,
            admin_id,
            status: EntryStatus::Waiting,
            hold_reason: None,
            requested_seconds,
            created_at: now,
            started_at: None,
            phase_since: None,
            running_ms: 0,
            held_ms: 0,
            ended_at: None,
            end_reason: None,
            charged_seconds: None,
        }
    }

    /// RUNNING milliseconds up to `now`.
    pub fn running_ms_at(&self, now: Timestamp) -> i64 {
        match (self.status, self.phase_since) {
            (EntryStatus::Running, Some(since)) => self.running_ms + (now - since).max(0),
            _ => self.running_ms,
        }
    }

    /// A RUNNING run stops being charged at `at` (its board's relay was found open since then): it
    /// waits to be told ON again, and is charged again from the poll whose answer tells it.
    pub(crate) fn wait_to_be_told(&mut self, at: Timestamp) {
        self.running_ms = self.running_ms_at(at);
        self.phase_since = None;
    }

    /// Since when a RUNNING run has waited to be told (`phase_since` is `None`): every moment of
    /// it before then is counted, RUNNING or HOLD, and none since.
    pub fn untold_since(&self) -> Option<Timestamp> {
        match (self.status, self.phase_since) {
            (EntryStatus::Running, None) => Some(self.started_at? + self.running_ms + self.held_ms),
            _ => None,
        }
    }

    /// HOLD milliseconds up to `now`.
    pub fn held_ms_at(&self, now: Timestamp) -> i64 {
        match (self.status, self.phase_since) {
            (EntryStatus::Hold, Some(since)) => self.held_ms + (now - since).max(0),
            _ => self.held_ms,
        }
    }

    /// Whole seconds charged so far: one per full second RUNNING.
    pub fn charged_at(&self, now: Timestamp) -> i64 {
        self.running_ms_at(now) / 1000
    }

    /// The RUNNING time this run may use, given its user's wallet (before this run's charge).
    pub fn budget_ms(&self, wallet_seconds: i64) -> i64 {
        let limit = match self.requested_seconds {
            Some(requested) => requested.min(wallet_seconds),
            None => wallet_seconds,
        };
        limit.max(0) * 1000
    }

    /// Remaining RUNNING time in whole seconds (rounded up, so a live run never shows 0).
    pub fn remaining_seconds_at(&self, wallet_seconds: i64, now: Timestamp) -> i64 {
        let left = (self.budget_ms(wallet_seconds) - self.running_ms_at(now)).max(0);
        (left + 999) / 1000
    }
}

/// What the tenant's device last said, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceLink {
    /// The last poll of any of the tenant's devices; `None` means never seen.
    pub last_poll_at: Option<Timestamp>,
    pub load_shedding: bool,
    pub ready: bool,
    pub relay: bool,
    /// How long a poll's answer may be trusted by the device.
    pub lease_ms: i64,
    /// Since when the controller has said, at every poll, that its relay is open for want of a
    /// command (`relayOff: NO_COMMAND`) although the answers before told it ON for the RUNNING run:
    /// what it is told does not reach it usable (lost, garbled or forged on the way, or its clock
    /// or lease broken), and the run waits at a motor that does not run. `None` otherwise (set
    /// and cleared by [`Tenant::apply`]); the alerts watch tells the owner when it lasts.
    #[serde(default)]
    pub without_command_since: Option<Timestamp>,
}

impl DeviceLink {
    /// A device that has never polled.
    pub const fn unseen(lease_ms: i64) -> Self {
        DeviceLink {
            last_poll_at: None,
            load_shedding: false,
            ready: false,
            relay: false,
            lease_ms,
            without_command_since: None,
        }
    }

    /// The moment the lease of the last poll runs out.
    pub fn lease_end(&self) -> Option<Timestamp> {
        self.last_poll_at.map(|at| at + self.lease_ms)
    }

    /// True while the last poll is within its lease.
    pub fn online_at(&self, now: Timestamp) -> bool {
        self.lease_end().is_some_and(|end| now < end)
    }

    /// `Ok` when a run may charge at `now`, otherwise why it must hold.
    pub fn condition_at(&self, now: Timestamp) -> Result<(), HoldReason> {
        if !self.online_at(now) {
            Err(HoldReason::DeviceOffline)
        } else if self.load_shedding {
            Err(HoldReason::LoadShedding)
        } else if !self.ready {
            Err(HoldReason::DeviceNotReady)
        } else {
            Ok(())
        }
    }
}

/// One admin's pump: the runtime state every rule of the queue, timer and safety acts on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tenant {
    pub admin_id: AdminId,
    /// Bumped by the store at every commit; guards against lost updates.
    pub version: u64,
    pub suspended: bool,
    pub device: DeviceLink,
    /// The one RUNNING or HOLD entry (the interlock: there is never a second). Boxed: most
    /// tenants a server keeps have none, and inline it is 168 of a tenant's 424 bytes.
    pub active: Option<Box<QueueEntry>>,
    /// WAITING entries in order; position = index + 1.
    pub waiting: Vec<QueueEntry>,
    /// Balances in seconds, before the active run's charge. A user missing here has 0; no entry
    /// is ever 0 (see [`Tenant::set_wallet`]).
    pub wallets: BTreeMap<UserId, i64>,
    /// Increases whenever the device command changes.
    pub seq: u64,
    /// The one device that drives the motor and reports the grid (the first to poll, or the
    /// owner's choice). Every other device of the tenant is answered OFF and changes nothing.
    pub controller: Option<DeviceId>,
    /// The owner's restart protection for this motor (over [`Tenant::defaults`]).
    pub motor_settings: MotorSettings,
    /// The server's restart protection; not stored (the server sets it after loading).
    #[serde(skip)]
    pub defaults: MotorRules,
    /// What the motor command did lately (restart protection's memory).
    pub motor: MotorHistory,
}

impl Tenant {
    /// A new tenant with an unseen device and no users' minutes.
    pub fn new(admin_id: AdminId, lease_ms: i64) -> Self {
        Tenant {
            admin_id,
            version: 0,
            suspended: false,
            device: DeviceLink::unseen(lease_ms),
            active: None,
            waiting: Vec::new(),
            wallets: BTreeMap::new(),
            seq: 0,
            controller: None,
            motor_settings: MotorSettings::default(),
            defaults: MotorRules::NONE,
            motor: MotorHistory::default(),
        }
    }

    /// The restart protection in force: the owner's settings over the server's defaults.
    pub fn motor_rules(&self) -> MotorRules {
        self.motor_settings.over(self.defaults)
    }

    /// True when `device` drives this tenant's motor (or would, as the first to poll).
    pub fn is_controller(&self, device: DeviceId) -> bool {
        self.controller.is_none_or(|controller| controller == device)
    }

    /// The earliest moment from `from` at which restart protection lets the motor start.
    pub fn free_to_start_at(&self, from: Timestamp) -> Timestamp {
        let rules = self.motor_rules();
        let mut at = from;
        // Each wait ends at a later moment; starts never grow while the motor is OFF, so this ends.
        while let Some((_, until)) = self.motor.wait_at(rules, at) {
            at = until;
        }
        at
    }

    /// When a run held for restart protection (GRID_SETTLING or RESTART_WAIT) may run, so views
    /// can say "waiting for the grid to settle, 0:42".
    pub fn restart_wait_until(&self) -> Option<Timestamp> {
        let active = self.active.as_ref().filter(|e| e.status == EntryStatus::Hold)?;
        match active.hold_reason {
            Some(HoldReason::GridSettling | HoldReason::RestartWait) => {
                Some(self.free_to_start_at(active.phase_since.unwrap_or(active.created_at)))
            }
            _ => None,
        }
    }

    /// The stored balance of a user (before any active run's charge).
    pub fn wallet(&self, user: UserId) -> i64 {
        self.wallets.get(&user).copied().unwrap_or(0)
    }

    /// Sets a stored balance; a user with nothing left has no wallet entry, so the state has one
    /// form whether it was built in memory or loaded from a store.
    pub fn set_wallet(&mut self, user: UserId, seconds: i64) {
        if seconds == 0 {
            self.wallets.remove(&user);
        } else {
            self.wallets.insert(user, seconds);
        }
    }

    /// What the user can spend right now: the wallet less the active run's charge so far.
    pub fn available_seconds(&self, user: UserId, now: Timestamp) -> i64 {
        let running_charge = match &self.active {
            Some(entry) if entry.user_id == user => entry.charged_at(now),
            _ => 0,
        };
        self.wallet(user) - running_charge
    }

    /// The user's live entry, if any, with its 1-based position when waiting.
    pub fn live_entry(&self, user: UserId) -> Option<(&QueueEntry, Option<usize>)> {
        if let Some(active) = self.active.as_ref().filter(|e| e.user_id == user) {
            return Some((active, None));
        }
        self.waiting.iter().enumerate().find(|(_, e)| e.user_id == user).map(|(i, e)| (e, Some(i + 1)))
    }

    /// The least RUNNING time before the waiting entry at `position` (1 = next) can start: what
    /// the active run has left, then each entry ahead running for as long as its minutes allow
    /// (what it asked for, or its whole balance). Load shedding and devices going silent only
    /// add to it. `None` when no entry waits at that position.
    pub fn estimated_wait_seconds(&self, position: usize, now: Timestamp) -> Option<i64> {
        if position == 0 || position > self.waiting.len() {
            return None;
        }
        let ahead = &self.waiting[..position - 1];
        let active = self.remaining_seconds(now).unwrap_or(0);
        Some(ahead.iter().fold(active, |total, entry| total + entry.budget_ms(self.wallet(entry.user_id)) / 1000))
    }

    /// Remaining RUNNING seconds of the active run.
    pub fn remaining_seconds(&self, now: Timestamp) -> Option<i64> {
        self.active.as_ref().map(|e| e.remaining_seconds_at(self.wallet(e.user_id), now))
    }

    /// The motor as people see it.
    pub fn motor_state(&self) -> (MotorState, Option<HoldReason>) {
        match &self.active {
            None => (MotorState::Idle, None),
            Some(e) if e.status == EntryStatus::Running => (MotorState::Running, None),
            Some(e) => (MotorState::Hold, e.hold_reason),
        }
    }

    /// The relay command: ON only while a run is RUNNING.
    pub fn motor_command(&self) -> Motor {
        match self.motor_state().0 {
            MotorState::Running => Motor::On,
            _ => Motor::Off,
        }
    }

    /// The answer to a device poll at `now` (call after applying the poll's report).
    pub fn poll_answer(&self, now: Timestamp, poll_ms: u32) -> PollAnswer {
        let (state, hold_reason) = self.motor_state();
        let rules = self.motor_rules();
        PollAnswer {
            motor: self.motor_command(),
            state,
            hold_reason,
            remaining_seconds: self.remaining_seconds(now).unwrap_or(0).clamp(0, u32::MAX as i64) as u32,
            poll_ms,
            lease_ms: self.device.lease_ms.clamp(0, u32::MAX as i64) as u32,
            seq: self.seq,
            min_off_ms: rules.min_off_ms.clamp(0, u32::MAX as i64) as u32,
            grid_settle_ms: rules.grid_settle_ms.clamp(0, u32::MAX as i64) as u32,
            max_starts_per_hour: rules.max_starts_per_hour.min(u32::from(u8::MAX)) as u8,
        }
    }

    /// The answer to a poll of `device`: the command for the controller, OFF for any other.
    pub fn poll_answer_for(&self, device: DeviceId, now: Timestamp, poll_ms: u32) -> PollAnswer {
        let answer = self.poll_answer(now, poll_ms);
        if self.is_controller(device) {
            answer
        } else {
            PollAnswer { motor: Motor::Off, state: MotorState::Idle, hold_reason: None, remaining_seconds: 0, ..answer }
        }
    }

    /// The answer to a poll while the store cannot record anything: OFF, held for the store.
    /// `tenant` is the last state known, if any.
    pub fn unavailable_answer(tenant: Option<&Tenant>, now: Timestamp, poll_ms: u32, lease_ms: i64) -> PollAnswer {
        let base = match tenant {
            Some(tenant) => tenant.poll_answer(now, poll_ms),
            None => Tenant::new(AdminId(UserId(uuid::Uuid::nil())), lease_ms).poll_answer(now, poll_ms),
        };
        PollAnswer {
            motor: Motor::Off,
            state: MotorState::Hold,
            hold_reason: Some(HoldReason::StoreUnavailable),
            // Not the tenant's seq: the device must not long-poll on an answer no change follows.
            seq: base.seq.wrapping_add(1),
            ..base
        }
    }

    /// The next moment at which time alone changes this tenant (a run's end, a lease running out,
    /// a restart wait ending).
    pub fn next_deadline(&self) -> Option<Timestamp> {
        let active = self.active.as_ref()?;
        let lease_end = self.device.lease_end();
        match active.status {
            EntryStatus::Running => {
                let Some(since) = active.phase_since else { return lease_end };
                let run_end = since + (active.budget_ms(self.wallet(active.user_id)) - active.running_ms);
                Some(lease_end.map_or(run_end, |lease| lease.min(run_end)))
            }
            EntryStatus::Hold if self.restart_wait_until().is_some() => {
                let until = self.restart_wait_until()?;
                Some(lease_end.map_or(until, |lease| lease.min(until)))
            }
            EntryStatus::Hold if active.hold_reason != Some(HoldReason::DeviceOffline) => lease_end,
            _ => None,
        }
    }
}
