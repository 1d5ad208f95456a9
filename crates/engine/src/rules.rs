//! The one transition function: `Tenant::apply(event, now)`.
//!
//! Time first catches up to `now` (runs end, leases run out, the next in line starts), then the
//! event is decided. A refused event changes nothing, but what time alone changed is still
//! returned, so the caller commits it either way.

use pumppilot_protocol::HoldReason;

use crate::{
    EndReason, EntryId, EntryStatus, LedgerEntry, LedgerKind, QueueEntry, Records, RequestId, Tenant, Timestamp,
    UsageRow, UserId,
};

/// Something that happens to a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A user presses Start. `entry_id` names the entry if a new one is made.
    Start { user: UserId, requested_minutes: Option<u32>, entry_id: EntryId },
    /// A user presses Stop: ends their run, or takes them out of the line.
    Stop { user: UserId },
    /// The admin stops whatever is active.
    AdminStop,
    /// The admin takes a waiting user out of the line (their minutes are untouched; a running or
    /// held run is not touched: that is `AdminStop`). Refused with `NothingToStop` when the user
    /// is not waiting.
    RemoveWaiting { user: UserId },
    /// The device's inputs at a poll.
    DeviceReport { load_shedding: bool, ready: bool, relay: bool },
    /// Only time passes.
    Tick,
    /// One user is suspended: their entry ends.
    SuspendUser { user: UserId },
    /// The whole tenant is suspended: every entry ends.
    SuspendTenant,
    /// The tenant is allowed to run again.
    UnsuspendTenant,
    /// Seconds are added to (or, for a correction, taken from) a user's wallet.
    Credit(Credit),
}

/// A change to a wallet made by a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credit {
    pub user: UserId,
    pub seconds: i64,
    pub kind: LedgerKind,
    pub actor: UserId,
    pub note: String,
    pub request_id: Option<RequestId>,
}

/// Why an event was refused. Nothing of the event was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The user has no minutes left.
    InsufficientBalance,
    /// The user has no live entry to stop, or nothing is active.
    NothingToStop,
    /// The tenant is suspended.
    Suspended,
    /// A correction would make the balance negative, or a credit is not positive.
    InvalidAmount,
}

/// What an accepted event answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The user's live entry after a start (new or unchanged).
    Entry(QueueEntry),
    /// An entry that just ended.
    Ended(QueueEntry),
    /// The user's new stored balance after a credit.
    Balance(i64),
    /// Nothing to say.
    Done,
}

/// The result of applying one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub records: Records,
    pub reply: Result<Reply, Refusal>,
}

impl Tenant {
    /// Applies `event` at `now`. See the module documentation.
    pub fn apply(&mut self, event: Event, now: Timestamp) -> Outcome {
        let before = self.command_fingerprint();
        let mut records = self.advance(now);
        let reply = match event {
            Event::Tick => Ok(Reply::Done),
            Event::Start { user, requested_minutes, entry_id } => {
                self.start(user, requested_minutes, entry_id, now, &mut records)
            }
            Event::Stop { user } => self.stop(user, now, &mut records),
            Event::AdminStop => match self.active.as_ref() {
                Some(_) => Ok(Reply::Ended(self.end_active(now, EndReason::AdminStop, &mut records))),
                None => Err(Refusal::NothingToStop),
            },
            Event::RemoveWaiting { user } => match self.waiting.iter().any(|e| e.user_id == user) {
                true => self
                    .end_user_entry(user, now, EndReason::AdminStop, &mut records)
                    .map(Reply::Ended)
                    .ok_or(Refusal::NothingToStop),
                false => Err(Refusal::NothingToStop),
            },
            Event::DeviceReport { load_shedding, ready, relay } => {
                self.report(load_shedding, ready, relay, now, &mut records);
                Ok(Reply::Done)
            }
            Event::SuspendUser { user } => {
                self.end_user_entry(user, now, EndReason::Suspended, &mut records);
                Ok(Reply::Done)
            }
            Event::SuspendTenant => {
                self.suspended = true;
                records.changed = true;
                if self.active.is_some() {
                    self.end_active(now, EndReason::Suspended, &mut records);
                }
                for mut entry in std::mem::take(&mut self.waiting) {
                    close(&mut entry, now, EntryStatus::Cancelled, EndReason::Suspended, 0);
                    records.ended.push(entry);
                }
                Ok(Reply::Done)
            }
            Event::UnsuspendTenant => {
                records.changed |= self.suspended;
                self.suspended = false;
                Ok(Reply::Done)
            }
            Event::Credit(credit) => self.credit(credit, now, &mut records),
        };
        if self.command_fingerprint() != before {
            self.seq += 1;
            records.changed = true;
        }
        Outcome { records, reply }
    }

    /// A device poll that changes nothing but the last-seen time needs no commit.
    pub fn is_quiet_report(&self, load_shedding: bool, ready: bool, relay: bool, now: Timestamp) -> bool {
        let d = &self.device;
        d.load_shedding == load_shedding
            && d.ready == ready
            && d.relay == relay
            && d.online_at(now)
            && self.next_deadline().is_none_or(|deadline| deadline > now)
    }

    /// Records a quiet poll (see [`Tenant::is_quiet_report`]): only the last-seen time moves.
    /// The last-seen time never moves back, even when two polls race to the lock.
    pub fn touch(&mut self, now: Timestamp) {
        self.device.last_poll_at = Some(self.device.last_poll_at.map_or(now, |seen| seen.max(now)));
    }

    fn command_fingerprint(&self) -> (pumppilot_protocol::MotorState, Option<HoldReason>) {
        self.motor_state()
    }

    /// Lets time pass up to `now`: runs end when their budget is used, a silent device's lease
    /// runs out (charging stops at that moment), and the next in line starts by itself.
    fn advance(&mut self, now: Timestamp) -> Records {
        let mut records = Records::default();
        while let Some(active) = &self.active {
            let Some(since) = active.phase_since else { break };
            let lease_end = self.device.lease_end();
            match active.status {
                EntryStatus::Running => {
                    let wallet = self.wallet(active.user_id);
                    let run_end = since + (active.budget_ms(wallet) - active.running_ms);
                    let offline_at = lease_end.unwrap_or(since);
                    if run_end.min(offline_at) > now {
                        break;
                    }
                    if run_end <= offline_at {
                        let reason = match active.requested_seconds {
                            Some(requested) if requested <= wallet => EndReason::RequestedMinutesUsed,
                            _ => EndReason::BalanceExhausted,
                        };
                        self.end_active(run_end, reason, &mut records);
                    } else {
                        self.hold(offline_at, HoldReason::DeviceOffline);
                        records.changed = true;
                    }
                }
                _ => {
                    // A hold for another reason turns into DEVICE_OFFLINE when the lease runs out.
                    if active.hold_reason != Some(HoldReason::DeviceOffline) && lease_end.is_none_or(|end| end <= now) {
                        if let Some(active) = self.active.as_mut() {
                            active.hold_reason = Some(HoldReason::DeviceOffline);
                        }
                        records.changed = true;
                    }
                    break;
                }
            }
        }
        records
    }

    fn start(
        &mut self,
        user: UserId,
        requested_minutes: Option<u32>,
        entry_id: EntryId,
        now: Timestamp,
        records: &mut Records,
    ) -> Result<Reply, Refusal> {
        if self.suspended {
            return Err(Refusal::Suspended);
        }
        if requested_minutes == Some(0) {
            return Err(Refusal::InvalidAmount);
        }
        if let Some((entry, _)) = self.live_entry(user) {
            return Ok(Reply::Entry(entry.clone()));
        }
        if self.wallet(user) <= 0 {
            return Err(Refusal::InsufficientBalance);
        }
        let requested_seconds = requested_minutes.map(|m| i64::from(m) * 60);
        let entry = QueueEntry::new(entry_id, user, self.admin_id, requested_seconds, now);
        records.changed = true;
        if self.active.is_none() {
            self.activate(entry, now);
            Ok(Reply::Entry(self.active.clone().expect("just activated")))
        } else {
            self.waiting.push(entry.clone());
            Ok(Reply::Entry(entry))
        }
    }

    fn stop(&mut self, user: UserId, now: Timestamp, records: &mut Records) -> Result<Reply, Refusal> {
        match self.end_user_entry(user, now, EndReason::UserStop, records) {
            Some(ended) => Ok(Reply::Ended(ended)),
            None => Err(Refusal::NothingToStop),
        }
    }

    /// Ends a user's live entry: the active run (charged) or their place in line.
    fn end_user_entry(
        &mut self,
        user: UserId,
        now: Timestamp,
        reason: EndReason,
        records: &mut Records,
    ) -> Option<QueueEntry> {
        if self.active.as_ref().is_some_and(|e| e.user_id == user) {
            return Some(self.end_active(now, reason, records));
        }
        let index = self.waiting.iter().position(|e| e.user_id == user)?;
        let mut entry = self.waiting.remove(index);
        let reason = if reason == EndReason::UserStop { EndReason::LeftQueue } else { reason };
        close(&mut entry, now, EntryStatus::Cancelled, reason, 0);
        records.ended.push(entry.clone());
        records.changed = true;
        Some(entry)
    }

    fn report(&mut self, load_shedding: bool, ready: bool, relay: bool, now: Timestamp, records: &mut Records) {
        let d = &mut self.device;
        if (d.load_shedding, d.ready, d.relay) != (load_shedding, ready, relay) || !d.online_at(now) {
            records.changed = true;
        }
        d.load_shedding = load_shedding;
        d.ready = ready;
        d.relay = relay;
        d.last_poll_at = Some(now);
        let condition = self.device.condition_at(now);
        let Some(active) = &self.active else { return };
        match (active.status, condition) {
            (EntryStatus::Running, Err(reason)) => self.hold(now, reason),
            (EntryStatus::Hold, Ok(())) => self.resume(now),
            (EntryStatus::Hold, Err(reason)) if active.hold_reason != Some(reason) => {
                if let Some(active) = self.active.as_mut() {
                    active.hold_reason = Some(reason);
                }
            }
            _ => {}
        }
    }

    fn credit(&mut self, credit: Credit, now: Timestamp, records: &mut Records) -> Result<Reply, Refusal> {
        let is_correction = credit.kind == LedgerKind::Correction;
        if credit.seconds == 0 || (!is_correction && credit.seconds < 0) {
            return Err(Refusal::InvalidAmount);
        }
        // A correction may not take away seconds a running run has already used.
        if self.available_seconds(credit.user, now) + credit.seconds < 0 {
            return Err(Refusal::InvalidAmount);
        }
        let balance = self.wallet(credit.user) + credit.seconds;
        self.set_wallet(credit.user, balance);
        records.changed = true;
        records.ledger.push(LedgerEntry {
            user_id: credit.user,
            admin_id: self.admin_id,
            at: now,
            delta_seconds: credit.seconds,
            kind: credit.kind,
            balance_after: balance,
            actor_id: Some(credit.actor),
            note: credit.note,
            entry_id: None,
            request_id: credit.request_id,
        });
        // A correction that leaves the active run nothing to spend ends it now, not in the past.
        if let Some(active) = self.active.as_ref().filter(|e| e.user_id == credit.user)
            && active.budget_ms(balance) <= active.running_ms_at(now)
        {
            self.end_active(now, EndReason::BalanceExhausted, records);
        }
        Ok(Reply::Balance(balance))
    }

    /// Makes `entry` the active run at `at`: RUNNING when the device says all is well, else HOLD.
    fn activate(&mut self, mut entry: QueueEntry, at: Timestamp) {
        entry.started_at = Some(at);
        entry.phase_since = Some(at);
        match self.device.condition_at(at) {
            Ok(()) => {
                entry.status = EntryStatus::Running;
                entry.hold_reason = None;
            }
            Err(reason) => {
                entry.status = EntryStatus::Hold;
                entry.hold_reason = Some(reason);
            }
        }
        self.active = Some(entry);
    }

    fn hold(&mut self, at: Timestamp, reason: HoldReason) {
        if let Some(entry) = self.active.as_mut() {
            entry.running_ms = entry.running_ms_at(at);
            entry.status = EntryStatus::Hold;
            entry.hold_reason = Some(reason);
            entry.phase_since = Some(at);
        }
    }

    fn resume(&mut self, at: Timestamp) {
        if let Some(entry) = self.active.as_mut() {
            entry.held_ms = entry.held_ms_at(at);
            entry.status = EntryStatus::Running;
            entry.hold_reason = None;
            entry.phase_since = Some(at);
        }
    }

    /// Ends the active run at `at`: charges its RUNNING seconds, writes its usage row, and starts
    /// the next in line (skipping users with nothing left).
    fn end_active(&mut self, at: Timestamp, reason: EndReason, records: &mut Records) -> QueueEntry {
        let mut entry = self.active.take().expect("end_active needs an active run");
        let running_ms = entry.running_ms_at(at);
        let held_ms = entry.held_ms_at(at);
        entry.running_ms = running_ms;
        entry.held_ms = held_ms;
        let charged = running_ms / 1000;
        let balance = self.wallet(entry.user_id) - charged;
        debug_assert!(balance >= 0, "a run never charges more than its wallet");
        if charged > 0 {
            self.set_wallet(entry.user_id, balance);
            records.ledger.push(LedgerEntry {
                user_id: entry.user_id,
                admin_id: self.admin_id,
                at,
                delta_seconds: -charged,
                kind: LedgerKind::RunCharge,
                balance_after: balance,
                actor_id: Some(entry.user_id),
                note: String::new(),
                entry_id: Some(entry.id),
                request_id: None,
            });
        }
        close(&mut entry, at, EntryStatus::Completed, reason, charged);
        records.usage.push(UsageRow {
            entry_id: entry.id,
            user_id: entry.user_id,
            admin_id: self.admin_id,
            started_at: entry.started_at.unwrap_or(at),
            ended_at: at,
            running_seconds: running_ms / 1000,
            held_seconds: held_ms / 1000,
            charged_seconds: charged,
            end_reason: reason,
        });
        records.ended.push(entry.clone());
        records.changed = true;
        self.start_next(at, records);
        entry
    }

    fn start_next(&mut self, at: Timestamp, records: &mut Records) {
        // A suspended tenant starts nothing: its waiting entries are cancelled instead.
        while !self.suspended && self.active.is_none() && !self.waiting.is_empty() {
            let mut next = self.waiting.remove(0);
            if self.wallet(next.user_id) <= 0 {
                close(&mut next, at, EntryStatus::Cancelled, EndReason::InsufficientBalance, 0);
                records.ended.push(next);
            } else {
                self.activate(next, at);
            }
        }
    }
}

/// Marks an entry ended.
fn close(entry: &mut QueueEntry, at: Timestamp, status: EntryStatus, reason: EndReason, charged: i64) {
    entry.status = status;
    entry.hold_reason = None;
    entry.phase_since = None;
    entry.ended_at = Some(at);
    entry.end_reason = Some(reason);
    entry.charged_seconds = Some(charged);
}
