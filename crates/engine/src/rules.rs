//! The one transition function: `Tenant::apply(event, now)`.
//!
//! Time first catches up to `now` (runs end, leases run out, the next in line starts), then the
//! event is decided. A refused event changes nothing, but what time alone changed is still
//! returned, so the caller commits it either way.

use std::ops::RangeInclusive;

use pumppilot_protocol::{HoldReason, PollReport, RelayOff, ResetReason};

use crate::{
    DeviceId, EndReason, EntryId, EntryStatus, Facts, LedgerEntry, LedgerKind, MotorSettings, Notice, NoticeKind,
    QueueEntry, ReceiptId, Records, RequestId, Tenant, Timestamp, UsageRow, UserId,
    notices::{ActiveRun, notices_of, request_approved},
};

/// The minutes a Start may ask its run to last (a day at most); a Start that asks for none runs
/// until it is stopped or its farmer's minutes run out.
pub const RUN_MINUTES: RangeInclusive<u32> = 1..=1440;

/// Something that happens to a tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A user presses Start, asking for at most `requested_minutes` ([`RUN_MINUTES`]; refused with
    /// `InvalidAmount` outside them). `entry_id` names the entry if a new one is made.
    Start { user: UserId, requested_minutes: Option<u32>, entry_id: EntryId },
    /// A farmer texts START (or `START 30`) from their phone: as `Start`, and the answer to their
    /// text (an SMS) says how it started, so the hold of the run it starts on hold at once is not
    /// worth another SMS ([`Facts::worth_an_sms`]); a later hold of that run is news.
    StartByText { user: UserId, requested_minutes: Option<u32>, entry_id: EntryId },
    /// A user presses Stop: ends their run, or takes them out of the line.
    Stop { user: UserId },
    /// A farmer texts STOP from their phone: as `Stop`, and the answer to their text (an SMS)
    /// says what the run's end says, so the end of the run it stops is not worth another SMS
    /// ([`Facts::worth_an_sms`]).
    StopByText { user: UserId },
    /// A user's card is held to the pump's reader: it stops their run when theirs is the active
    /// one (after time caught up), else it is a Start (a place kept for one already waiting).
    CardTap { user: UserId, entry_id: EntryId },
    /// The owner stops the active run `entry`, the one they saw running. Refused with
    /// `AlreadyEnded` when `entry` is not the active run (after time caught up): a Stop sent
    /// twice, or retried after its answer was lost, must not end the run of the next in line.
    AdminStop { entry: EntryId },
    /// The admin takes a waiting user out of the line (their minutes are untouched; a running or
    /// held run is not touched: that is `AdminStop`). Refused with `NothingToStop` when the user
    /// is not waiting.
    RemoveWaiting { user: UserId },
    /// The admin moves a waiting user to place `to` in the line (1 = next; past the end = last);
    /// the others keep their order. Refused with `NothingToStop` when the user is not waiting.
    MoveWaiting { user: UserId, to: usize },
    /// The controller's inputs, with nothing else reported (tools and tests).
    DeviceReport { load_shedding: bool, ready: bool, relay: bool },
    /// A poll of one of the tenant's devices: only the controller's changes anything.
    Poll(DevicePoll),
    /// The store could not record this tenant's run since this moment, so the device was told
    /// OFF: the run holds (STORE_UNAVAILABLE) from then, and is charged up to then only.
    /// Apply it at the moment given.
    StoreOutage,
    /// The owner chooses the device that drives the motor (`None`: the next to poll).
    SetController { device: Option<DeviceId> },
    /// A device is retired: if it was the controller, the next device to poll takes over.
    RetireDevice { device: DeviceId },
    /// The owner's restart protection for this motor.
    SetMotorSettings(MotorSettings),
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
    /// The key the change was sent with, so that one sent again (a retry after an answer lost on
    /// a bad network) is not made twice: a pump's store takes one ledger entry per key and refuses
    /// the second (`StoreError::AlreadyMade`), and the server answers it as the first was.
    pub once_key: Option<String>,
    /// The receipt written with it (a recharge taken in cash).
    pub receipt_id: Option<ReceiptId>,
}

impl Credit {
    /// A change to `user`'s wallet by `actor`, without a note, a request, a key or a receipt.
    pub fn new(user: UserId, seconds: i64, kind: LedgerKind, actor: UserId) -> Credit {
        Credit { user, seconds, kind, actor, note: String::new(), request_id: None, once_key: None, receipt_id: None }
    }
}

/// What a device says at a poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DevicePoll {
    pub device: DeviceId,
    pub load_shedding: bool,
    pub ready: bool,
    pub relay: bool,
    /// The motor-running feedback input, on boards that have one.
    pub feedback: Option<bool>,
    /// Why the board last started, in its first poll after a boot.
    pub reset: Option<ResetReason>,
    /// Why the relay is OFF, from boards that say it.
    pub relay_off: Option<RelayOff>,
    /// How long the board has been up (milliseconds since it booted), from boards that say it.
    pub uptime_ms: Option<u64>,
}

impl DevicePoll {
    /// What `device` says in its report (an HTTP poll or an MQTT report), as the rules read it.
    pub fn of_report(device: DeviceId, report: &PollReport<'_>) -> Self {
        DevicePoll {
            device,
            load_shedding: report.load_shedding,
            ready: report.ready,
            relay: report.relay,
            feedback: report.feedback,
            reset: report.reset,
            relay_off: report.relay_off,
            uptime_ms: report.uptime_ms,
        }
    }

    /// A board's everyday poll: the grid up, the pump ready, its relay open, nothing more to say.
    pub const fn ready(device: DeviceId) -> Self {
        DevicePoll {
            device,
            load_shedding: false,
            ready: true,
            relay: false,
            feedback: None,
            reset: None,
            relay_off: None,
            uptime_ms: None,
        }
    }

    /// The board gave up on a motor that did not confirm: its relay was closed at the last poll
    /// (`relay_was_on`) and the board opened it itself with the feedback input saying the motor
    /// does not run. A board that says why its relay is OFF says `relayOff: NO_FEEDBACK`; from one
    /// that does not, a relay opened with the grid up and the pump ready counts. Only the board
    /// knows how long its motor may take to confirm, so a relay still closed is never a fault
    /// here, and neither is one opened for another reason the board gives (its lease ran out).
    pub const fn no_feedback(&self, relay_was_on: bool) -> bool {
        let opened_for_it = match self.relay_off {
            Some(reason) => matches!(reason, RelayOff::NoFeedback),
            None => !self.load_shedding && self.ready,
        };
        relay_was_on && matches!(self.feedback, Some(false)) && !self.relay && opened_for_it
    }

    /// The board holds an ON command but keeps its relay open by its own rule (restart protection,
    /// the grid settling, its inputs, a motor that did not confirm): the motor does not run, so
    /// nothing is charged until a poll reports the relay closed.
    pub const fn relay_held_open(&self) -> bool {
        !self.relay && matches!(self.relay_off, Some(reason) if reason.holds_command())
    }

    /// The board says its relay is open for want of a command (`relayOff: NO_COMMAND`): it holds
    /// no fresh ON (none came, the last said OFF, its lease ran out, its clock went back). After
    /// an answer that told it ON, it has not taken that ON (lost, garbled or forged on the way),
    /// or no longer holds it.
    pub const fn relay_open_without_command(&self) -> bool {
        !self.relay && matches!(self.relay_off, Some(RelayOff::NoCommand))
    }

    /// The board restarted for a reason its owner should hear of (a sag, a hang, a crash), not a
    /// plain power-on or its own restart.
    pub const fn unexpected_reset(&self) -> bool {
        matches!(
            self.reset,
            Some(ResetReason::BrownOut | ResetReason::Watchdog | ResetReason::Panic | ResetReason::Other)
        )
    }

    /// The board was already up at `last_poll` (its last poll the pump heard, `None` if none):
    /// its uptime reaches back past it, so the reset it reports is the boot told then. The
    /// firmware repeats `reset` until an answer reaches it, so an answer lost brings the same
    /// reset again with an uptime that grew; a new boot's uptime is shorter than the time since
    /// the last poll. A board that does not say its uptime has each of its resets taken as new.
    pub fn booted_before(&self, last_poll: Option<Timestamp>, now: Timestamp) -> bool {
        match (self.uptime_ms.and_then(|ms| i64::try_from(ms).ok()), last_poll) {
            (Some(uptime), Some(last)) => uptime >= now - last,
            _ => false,
        }
    }

    /// The moment since which the board's relay has been open, when the poll reports a boot with
    /// the relay open: a board drives its outputs OFF as it starts, closes nothing before an
    /// answer reaches it, and says `reset` until one does. So its relay has been open since it
    /// booted: `now` less its uptime, or `now` itself from a board that does not say its uptime.
    /// `None` for a poll that reports no boot, or a closed relay.
    pub fn open_since_boot(&self, now: Timestamp) -> Option<Timestamp> {
        if self.reset.is_none() || self.relay {
            return None;
        }
        let uptime = self.uptime_ms.map_or(0, |ms| i64::try_from(ms).unwrap_or(i64::MAX));
        Some(now - uptime)
    }

    /// The board says it came back from a power cut or a sag: the grid came back when it booted.
    /// A new boot only ([`DevicePoll::booted_before`]) starts the grid's settle time again.
    pub const fn power_returned(&self) -> bool {
        matches!(self.reset, Some(ResetReason::PowerOn | ResetReason::BrownOut))
    }
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
    /// A correction would make the balance negative, a credit is not positive, or a Start asks
    /// for minutes outside [`RUN_MINUTES`].
    InvalidAmount,
    /// The run named is not the active run: it has ended already (the owner's Stop sent again).
    AlreadyEnded,
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
        let active_before = ActiveRun::of(self.active.as_deref());
        // The entry a farmer's own Start would make (see `notices::turn_came`).
        let pressed = match &event {
            Event::Start { entry_id, .. } | Event::StartByText { entry_id, .. } | Event::CardTap { entry_id, .. } => {
                Some(*entry_id)
            }
            _ => None,
        };
        let started_by_text = match &event {
            Event::StartByText { entry_id, .. } => Some(*entry_id),
            _ => None,
        };
        let stopped_by_text = matches!(event, Event::StopByText { .. });
        let mut records = self.advance(now);
        let reply = match event {
            Event::Tick => Ok(Reply::Done),
            Event::Start { user, requested_minutes, entry_id } => {
                self.start(user, requested_minutes, entry_id, now, &mut records)
            }
            Event::StartByText { user, requested_minutes, entry_id } => {
                self.start(user, requested_minutes, entry_id, now, &mut records)
            }
            Event::Stop { user } | Event::StopByText { user } => self.stop(user, now, &mut records),
            Event::CardTap { user, entry_id } => match self.active.as_ref().is_some_and(|e| e.user_id == user) {
                true => self.stop(user, now, &mut records),
                false => self.start(user, None, entry_id, now, &mut records),
            },
            Event::AdminStop { entry } => match self.active.as_ref() {
                Some(active) if active.id == entry => {
                    Ok(Reply::Ended(self.end_active(now, EndReason::AdminStop, &mut records)))
                }
                _ => Err(Refusal::AlreadyEnded),
            },
            Event::RemoveWaiting { user } => match self.waiting.iter().any(|e| e.user_id == user) {
                true => self
                    .end_user_entry(user, now, EndReason::AdminStop, &mut records)
                    .map(Reply::Ended)
                    .ok_or(Refusal::NothingToStop),
                false => Err(Refusal::NothingToStop),
            },
            Event::MoveWaiting { user, to } => match self.waiting.iter().position(|e| e.user_id == user) {
                Some(from) => {
                    let to = to.clamp(1, self.waiting.len()) - 1;
                    if from != to {
                        let entry = self.waiting.remove(from);
                        self.waiting.insert(to, entry);
                        records.changed = true;
                        records.reordered = true;
                    }
                    Ok(Reply::Done)
                }
                None => Err(Refusal::NothingToStop),
            },
            Event::DeviceReport { load_shedding, ready, relay } => {
                self.report(load_shedding, ready, relay, false, now, &mut records);
                Ok(Reply::Done)
            }
            Event::Poll(poll) => {
                self.poll(poll, now, &mut records);
                Ok(Reply::Done)
            }
            Event::StoreOutage => {
                if self.active.as_ref().is_some_and(|e| e.status == EntryStatus::Running) {
                    self.hold(now, HoldReason::StoreUnavailable);
                    records.changed = true;
                }
                Ok(Reply::Done)
            }
            Event::SetController { device } => {
                self.set_controller(device, now, &mut records);
                Ok(Reply::Done)
            }
            Event::RetireDevice { device } => {
                if self.controller == Some(device) {
                    self.set_controller(None, now, &mut records);
                }
                Ok(Reply::Done)
            }
            Event::SetMotorSettings(settings) => {
                records.changed |= self.motor_settings != settings;
                self.motor_settings = settings;
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
        // A board without a command matters only while the run waits for it to take the ON.
        let waits_to_be_told =
            self.active.as_ref().is_some_and(|e| e.status == EntryStatus::Running && e.phase_since.is_none());
        if !waits_to_be_told && self.device.without_command_since.take().is_some() {
            records.changed = true;
        }
        // The run a farmer's text stopped, or started: the answer to the text tells its end, or
        // how it started.
        let answered = match &reply {
            Ok(Reply::Ended(entry)) if stopped_by_text => Some(entry.id),
            Ok(Reply::Entry(entry)) if started_by_text == Some(entry.id) => Some(entry.id),
            _ => None,
        };
        let notices =
            notices_of(self.admin_id, active_before, self.active.as_deref(), pressed, answered, &records, now);
        records.notices.extend(notices);
        Outcome { records, reply }
    }

    /// A device poll that changes nothing but the last-seen time needs no commit. A run held
    /// DEVICE_OFFLINE is never quiet: only a controller's report resumes it, and the report may
    /// find the device online already (another server's view of its last poll was older, or a new
    /// controller follows one that was polling).
    ///
    /// A device back after its lease ran out is quiet too while its pump has no run: its return
    /// changes nothing a run or a charge depends on, and its last poll reaches the store the way a
    /// quiet poll's does (the telemetry flush, a join). So a village's devices coming back after a
    /// power cut commit nothing but the pumps with a run.
    pub fn is_quiet_report(&self, load_shedding: bool, ready: bool, relay: bool, now: Timestamp) -> bool {
        let d = &self.device;
        d.load_shedding == load_shedding
            && d.ready == ready
            && d.relay == relay
            && (d.online_at(now) || self.active.is_none())
            && !self.active.as_ref().is_some_and(|e| {
                (e.status == EntryStatus::Running && e.phase_since.is_none())
                    || e.hold_reason == Some(HoldReason::DeviceOffline)
            })
            && self.next_deadline().is_none_or(|deadline| deadline > now)
    }

    /// A poll that changes nothing but (for the controller) the last-seen time needs no commit;
    /// a poll of any other device changes nothing at all.
    pub fn is_quiet_poll(&self, poll: &DevicePoll, now: Timestamp) -> bool {
        if self.controller.is_some_and(|c| c != poll.device) {
            return true;
        }
        self.controller.is_some()
            && !poll.power_returned()
            && !poll.unexpected_reset()
            && !self.feedback_fault(poll)
            && (poll.open_since_boot(now).is_none() || self.last_charged(now).is_none())
            && !((poll.relay_held_open() || poll.relay_open_without_command()) && self.charging())
            && self.is_quiet_report(poll.load_shedding, poll.ready, poll.relay, now)
    }

    /// Whether `device` may be answered at `now` from this state although the state of record may
    /// be newer (on a store several servers share, while this server's copy may have missed
    /// another server's changes): only when the answer is OFF and time alone changes nothing in
    /// this state by `now` (no run's end, lease or restart wait is due, so the answer is the one a
    /// `Tick` would give).
    ///
    /// Why an OFF answer may come from an older state, and an ON answer may not:
    /// - A relay closes only on an ON answer. An OFF answer can never turn a motor ON or keep it
    ///   ON; the worst it does is keep OFF a motor that should run.
    /// - Charging starts only when a controller's poll commits ON (`phase_since` is set in
    ///   `report`, in a commit at the store's version). A poll answered from memory commits
    ///   nothing, so a Start made on another server that this copy has not heard of stays RUNNING,
    ///   untold and uncharged, until this copy is read again: a delay, never a charge.
    /// - An ON answer from an older state may be wrong the dangerous way: a Stop, an admin stop, a
    ///   suspension, a correction that ended the minutes, a DEVICE_OFFLINE hold taken by another
    ///   server's timer, or another controller chosen, each made on another server, leave this
    ///   copy RUNNING while the truth is OFF. So an ON answer is always built from the state of
    ///   record (read again).
    /// - A DEVICE_OFFLINE hold is never a quiet poll (`is_quiet_report`): the poll that resumes it
    ///   reads the state of record.
    /// - What an OFF from older state cannot rule out: a run already charging elsewhere (its device
    ///   told ON at another server, then moved here with its relay opened) is held OFF here while
    ///   it is charged. How long an older copy may answer is the server's to bound (it knows when
    ///   the copy was last read; `runtime::STALE_OFF_FOR`).
    pub fn may_answer_from_older_state(&self, device: DeviceId, now: Timestamp) -> bool {
        (!self.is_controller(device) || self.motor_command() == crate::Motor::Off)
            && self.next_deadline().is_none_or(|deadline| deadline > now)
    }

    /// True while the active run is RUNNING and charged.
    fn charging(&self) -> bool {
        self.active.as_ref().is_some_and(|e| e.status == EntryStatus::Running && e.phase_since.is_some())
    }

    /// The controller's poll shows that the motor does not run although the device was told ON
    /// (see [`DevicePoll::no_feedback`]): the run holds NO_FEEDBACK.
    pub fn feedback_fault(&self, poll: &DevicePoll) -> bool {
        self.active.as_ref().is_some_and(|e| e.status == EntryStatus::Running && e.phase_since.is_some())
            && poll.no_feedback(self.device.relay)
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
            let lease_end = self.device.lease_end();
            let Some(since) = active.phase_since else {
                // RUNNING, but the device has not been told yet: nothing is charged, and if the
                // device stays silent past its lease the run holds (DEVICE_OFFLINE) then.
                let offline_at = lease_end.unwrap_or(now);
                if offline_at > now {
                    break;
                }
                self.hold(offline_at, HoldReason::DeviceOffline);
                records.changed = true;
                continue;
            };
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
                        break;
                    }
                    // A restart wait ends by itself, at the very moment it ends.
                    match self.restart_wait_until() {
                        Some(until) if until <= now => {
                            self.resume(until, false);
                            records.changed = true;
                        }
                        _ => break,
                    }
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
        if requested_minutes.is_some_and(|minutes| !RUN_MINUTES.contains(&minutes)) {
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
            Ok(Reply::Entry(self.active.as_deref().cloned().expect("just activated")))
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

    fn poll(&mut self, poll: DevicePoll, now: Timestamp, records: &mut Records) {
        // The pump's last poll is this board's only if it was the controller already.
        let last_poll = self.device.last_poll_at.filter(|_| self.controller.is_some());
        match self.controller {
            Some(controller) if controller != poll.device => return,
            Some(_) => {}
            None => {
                self.controller = Some(poll.device);
                records.changed = true;
            }
        }
        // Whether the answer to this board's last poll told it ON for the active run, as things
        // stood before this poll (a boot it reports changes them below).
        let told_on = self.told_on(last_poll);
        // A reset repeated because its answer was lost is the same boot: it is told once, and the
        // grid's settle time runs from the boot's first report, not again from each repeat.
        let new_boot = !poll.booted_before(last_poll, now);
        if poll.power_returned() && new_boot {
            self.motor.grid_up_since = Some(now);
            records.changed = true;
        }
        if let Some(reason) = poll.reset.filter(|_| poll.unexpected_reset() && new_boot) {
            let facts = Facts { reset: Some(reason), ..Facts::default() };
            records.notices.push(Notice::new(self.admin_id.0, self.admin_id, NoticeKind::DeviceReset, now, facts));
            records.changed = true;
        }
        // A board that booted under a run it was told ON for stopped its motor then: the run is
        // charged up to the boot (never before the last report of the relay closed), also when it
        // was held since (its lease ran out before the board could report), and this poll's answer
        // tells it ON again only as restart protection allows (in `report`). Before the feedback
        // check: a motor stopped by a boot is no motor that failed to confirm.
        if let Some(booted) = poll.open_since_boot(now)
            && let Some(stretch) = self.last_charged(now)
        {
            let last_closed = last_poll.filter(|_| self.device.relay);
            let opened = last_closed.map_or(booted, |closed| closed.max(booted));
            records.changed |= self.relay_opened_by_boot(opened, stretch);
        }
        if self.feedback_fault(&poll) {
            self.hold(now, HoldReason::NoFeedback);
            records.changed = true;
        }
        // Told ON, the board says its relay is open: its own rule keeps the motor stopped although
        // it holds the ON, or it holds no ON at all (it has not taken the answer that told it).
        // The charge stops, and starts again with the poll that reports the relay closed; this
        // poll's answer tells the board ON again. A board that holds no command and was not told
        // ON at its last poll is being told now, as any board is: charged from this poll.
        let held_open = poll.relay_held_open();
        let without_command = poll.relay_open_without_command();
        if (held_open || without_command) && self.charging() {
            self.relay_found_open(last_poll, without_command, now);
            records.changed = true;
        }
        let until_closed = held_open || (without_command && told_on);
        self.report(poll.load_shedding, poll.ready, poll.relay, until_closed, now, records);
        // Told ON, the board still holds no command: the answers do not reach it usable. Since
        // the first such report, until a report says anything else (a board that has just booted
        // lost its command to the boot, not on the way). `apply` clears it once the run no longer
        // waits to be told.
        let not_reaching = without_command && told_on && !(poll.reset.is_some() && new_boot);
        let since = not_reaching.then(|| self.device.without_command_since.unwrap_or(now));
        records.changed |= self.device.without_command_since != since;
        self.device.without_command_since = since;
    }

    /// The answer to the controller's last poll (at `last_poll`) told it ON for the active run:
    /// the run is charged (the answer that began the charge said ON, or the command stayed ON
    /// through a handover), or it has waited to be told since that poll or before it (so that
    /// poll's answer said ON, and no charge began with it). A run that began at that poll's very
    /// moment counts as told by it: which came first is not known, and this way the board's next
    /// report can only charge less (from its relay closed), never more.
    fn told_on(&self, last_poll: Option<Timestamp>) -> bool {
        let Some(entry) = self.active.as_deref().filter(|e| e.status == EntryStatus::Running) else {
            return false;
        };
        entry.phase_since.is_some() || entry.untold_since().zip(last_poll).is_some_and(|(untold, last)| untold <= last)
    }

    /// The controller says its relay is open while the active run is charged: it holds the ON and
    /// keeps the relay open by its own rule, or (`not_taken`) it holds no ON command at all. The
    /// charge stops at the last moment the relay could have been closed: now, when the last
    /// report said it was closed (it opened since, when is not known), else that report and never
    /// before the charge began (a board that says why its relay is open reports a closing at
    /// once, and none came). The run waits to be told ON again.
    ///
    /// Restart protection: a board that holds the ON counts as stopped now (the server's own count,
    /// as ever). An ON not taken, with no report of the relay closed since it was told, started
    /// nothing: it is no start, and the motor's rest runs on from its last real stop, so one lost
    /// answer does not cost the minimum OFF time.
    fn relay_found_open(&mut self, last_poll: Option<Timestamp>, not_taken: bool, now: Timestamp) {
        let Some(entry) = self.active.as_mut() else { return };
        let Some(since) = entry.phase_since else { return };
        let seen_open = last_poll.filter(|_| !self.device.relay);
        let opened = seen_open.map_or(now, |last| last.max(since));
        entry.wait_to_be_told(opened);
        if !not_taken {
            self.sync_motor(now);
        } else if seen_open.is_some_and(|last| last <= since) {
            self.motor.not_started(since);
        } else {
            self.sync_motor(opened);
        }
    }

    /// The active run's last stretch of charging, when it is charged now or was until it was held
    /// as the motor command went OFF (its lease ran out, the store failed): from when (the motor's
    /// last start, or the run's own start after a handover) until when (`now` while it is charged).
    fn last_charged(&self, now: Timestamp) -> Option<(Timestamp, Timestamp)> {
        let entry = self.active.as_deref()?;
        let since = entry.phase_since?;
        match entry.status {
            EntryStatus::Running => Some((since, now)),
            EntryStatus::Hold if !self.motor.on && self.motor.off_since == Some(since) => {
                let from = self.motor.starts.last().copied()?.max(entry.started_at?);
                Some((from, since))
            }
            _ => None,
        }
    }

    /// The controller's relay has been open since `opened` (it booted then) while the active run
    /// was charged for the stretch `(from, until)`: nothing after `opened` is charged, the motor
    /// stopped then, and a run still RUNNING waits to be told ON again like one not yet told.
    /// Returns whether anything changed.
    fn relay_opened_by_boot(&mut self, opened: Timestamp, (from, until): (Timestamp, Timestamp)) -> bool {
        let Some(entry) = self.active.as_mut() else { return false };
        let stop = opened.max(from);
        if entry.status == EntryStatus::Running {
            entry.wait_to_be_told(stop);
        } else if stop < until {
            let taken = (until - stop).min(entry.running_ms);
            entry.running_ms -= taken;
            entry.held_ms += taken;
        } else {
            return false;
        }
        self.motor.relay_opened(opened, from);
        true
    }

    fn set_controller(&mut self, device: Option<DeviceId>, now: Timestamp, records: &mut Records) {
        if self.controller == device {
            return;
        }
        self.controller = device;
        records.changed = true;
        // What the old controller said is no longer the pump's word: the run holds until the new
        // controller reports (only a controller's report resumes a DEVICE_OFFLINE hold).
        if let Some(active) = &self.active {
            if active.status == EntryStatus::Running {
                self.hold(now, HoldReason::DeviceOffline);
            } else if let Some(active) = self.active.as_mut() {
                active.hold_reason = Some(HoldReason::DeviceOffline);
            }
        }
    }

    /// The controller's inputs at `now`; `until_closed`: it was told ON and says its relay is open
    /// (it keeps it open by its own rule, or has not taken the ON), so a RUNNING run is not
    /// charged from this poll but from the one that reports the relay closed.
    fn report(
        &mut self,
        load_shedding: bool,
        ready: bool,
        relay: bool,
        until_closed: bool,
        now: Timestamp,
        records: &mut Records,
    ) {
        let d = &mut self.device;
        if (d.load_shedding, d.ready, d.relay) != (load_shedding, ready, relay)
            || (!d.online_at(now) && self.active.is_some())
        {
            records.changed = true;
        }
        if d.load_shedding && !load_shedding {
            self.motor.grid_up_since = Some(now);
        }
        let d = &mut self.device;
        d.load_shedding = load_shedding;
        d.ready = ready;
        d.relay = relay;
        d.last_poll_at = Some(now);
        let condition = self.device.condition_at(now);
        let Some(active) = &self.active else { return };
        // NO_FEEDBACK holds until the run ends: the motor did not run when told, someone must look.
        if active.hold_reason == Some(HoldReason::NoFeedback) {
            return;
        }
        match (active.status, condition) {
            (EntryStatus::Running, Err(reason)) => self.hold(now, reason),
            // A run whose motor is off (a board that restarted under it, one that keeps its relay
            // open by its own rule) starts again only as restart protection allows: the board
            // forgets its starts when it restarts, so a board that resets as its motor starts would
            // otherwise start it past the hour's cap, told ON again at every boot.
            (EntryStatus::Running, Ok(())) => {
                if let Some((reason, _)) = self.motor.wait_at(self.motor_rules(), now) {
                    self.hold(now, reason);
                }
            }
            (EntryStatus::Hold, Ok(())) => match self.motor.wait_at(self.motor_rules(), now) {
                None => self.resume(now, !until_closed),
                Some((reason, _)) => self.set_hold_reason(reason),
            },
            (EntryStatus::Hold, Err(reason)) if active.hold_reason != Some(reason) => self.set_hold_reason(reason),
            _ => {}
        }
        // This poll's answer tells the device ON: a run waiting to be told starts charging now
        // (unless the device was told ON already and says its relay is open).
        if let Some(entry) = self
            .active
            .as_mut()
            .filter(|e| e.status == EntryStatus::Running && e.phase_since.is_none() && !until_closed)
        {
            count_untold_as_held(entry, now);
            entry.phase_since = Some(now);
            records.changed = true;
            self.sync_motor(now);
        }
    }

    fn credit(&mut self, credit: Credit, now: Timestamp, records: &mut Records) -> Result<Reply, Refusal> {
        let is_correction = credit.kind == LedgerKind::Correction;
        if credit.seconds == 0 || (!is_correction && credit.seconds < 0) {
            return Err(Refusal::InvalidAmount);
        }
        // A correction may not take away seconds a running run has already used; an amount past
        // what a balance can hold is refused, never wrapped.
        if self.available_seconds(credit.user, now).checked_add(credit.seconds).is_none_or(|left| left < 0) {
            return Err(Refusal::InvalidAmount);
        }
        let Some(balance) = self.wallet(credit.user).checked_add(credit.seconds) else {
            return Err(Refusal::InvalidAmount);
        };
        self.set_wallet(credit.user, balance);
        records.changed = true;
        if credit.kind == LedgerKind::RequestApproved {
            // Said with the minutes the farmer may pump now: their running run's use left out.
            let available = self.available_seconds(credit.user, now);
            records.notices.push(request_approved(self.admin_id, credit.user, credit.seconds, available, now));
        }
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
            once_key: credit.once_key,
            receipt_id: credit.receipt_id,
        });
        // A correction that leaves the active run nothing to spend ends it now, not in the past.
        if let Some(active) = self.active.as_ref().filter(|e| e.user_id == credit.user)
            && active.budget_ms(balance) <= active.running_ms_at(now)
        {
            self.end_active(now, EndReason::BalanceExhausted, records);
        }
        Ok(Reply::Balance(balance))
    }

    /// Makes `entry` the active run at `at`: RUNNING when the device says all is well and restart
    /// protection allows (a handover, with the motor still ON, always does), else HOLD.
    fn activate(&mut self, mut entry: QueueEntry, at: Timestamp) {
        entry.started_at = Some(at);
        entry.phase_since = Some(at);
        // In a handover the device already holds ON and the motor keeps running; otherwise
        // nothing is charged until a poll tells the device.
        let told = self.motor.on;
        let condition = self.device.condition_at(at).and_then(|()| match self.motor.wait_at(self.motor_rules(), at) {
            None => Ok(()),
            Some((reason, _)) => Err(reason),
        });
        match condition {
            Ok(()) => {
                entry.status = EntryStatus::Running;
                entry.hold_reason = None;
                entry.phase_since = told.then_some(at);
            }
            Err(reason) => {
                entry.status = EntryStatus::Hold;
                entry.hold_reason = Some(reason);
            }
        }
        self.active = Some(Box::new(entry));
        self.sync_motor(at);
    }

    fn set_hold_reason(&mut self, reason: HoldReason) {
        if let Some(active) = self.active.as_mut() {
            active.hold_reason = Some(reason);
        }
    }

    fn hold(&mut self, at: Timestamp, reason: HoldReason) {
        // Never before the phase began (a store outage is applied at the moment it began).
        let at = self.active.as_ref().and_then(|e| e.phase_since).map_or(at, |since| since.max(at));
        if let Some(entry) = self.active.as_mut() {
            count_untold_as_held(entry, at);
            entry.running_ms = entry.running_ms_at(at);
            entry.status = EntryStatus::Hold;
            entry.hold_reason = Some(reason);
            entry.phase_since = Some(at);
        }
        self.sync_motor(at);
    }

    /// RUNNING again from `at`; charged from then when `told` (the device learns it in the answer
    /// being made), else from the next poll.
    fn resume(&mut self, at: Timestamp, told: bool) {
        if let Some(entry) = self.active.as_mut() {
            entry.held_ms = entry.held_ms_at(at);
            entry.status = EntryStatus::Running;
            entry.hold_reason = None;
            entry.phase_since = told.then_some(at);
        }
        self.sync_motor(at);
    }

    /// Keeps restart protection's memory in step with the command the device holds: ON from the
    /// answer that told it (a RUNNING run being charged), OFF from the moment the run stops being so.
    fn sync_motor(&mut self, at: Timestamp) {
        if self.active.as_ref().is_some_and(|e| e.status == EntryStatus::Running && e.phase_since.is_some()) {
            self.motor.switched_on(at);
        } else {
            self.motor.switched_off(at);
        }
    }

    /// Ends the active run at `at`: charges its RUNNING seconds, writes its usage row, and starts
    /// the next in line (skipping users with nothing left).
    fn end_active(&mut self, at: Timestamp, reason: EndReason, records: &mut Records) -> QueueEntry {
        let mut entry = self.active.take().expect("end_active needs an active run");
        count_untold_as_held(&mut entry, at);
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
                once_key: None,
                receipt_id: None,
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
        records.ended.push(QueueEntry::clone(&entry));
        records.changed = true;
        // The motor stays ON through a handover to a next run that may run at once.
        self.start_next(at, records);
        self.sync_motor(at);
        *entry
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

/// A RUNNING run whose device was not told yet was not charged: that time counts as held, so
/// RUNNING and HOLD time still add up to the run's length.
fn count_untold_as_held(entry: &mut QueueEntry, at: Timestamp) {
    if entry.status == EntryStatus::Running && entry.phase_since.is_none() {
        let length = entry.started_at.map_or(0, |started| (at - started).max(0));
        entry.held_ms = (length - entry.running_ms).max(entry.held_ms);
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
