//! The server side of the campaign: the real engine (`Tenant::apply`), kept as the server's
//! runtime keeps it (`crates/server/src/runtime.rs`, `routes/device.rs`), with the people around
//! the pump: farmers pressing Start and Stop, an owner crediting minutes and switching the
//! controller to a spare board and back, and a store that fails now and then.
//!
//! The server process restarts now and then ([`Pump::restart`]): what the runtime kept only in
//! memory is lost, and the next server reads the tenant from the store. The store has every
//! committed state (the runtime commits each change before anyone sees it), with the last polls
//! that the telemetry flush wrote; a quiet poll only moves the last poll in memory, so the polls
//! since the last flush, the mark of a store outage the device was told OFF in, and the server's
//! counter window are gone. A crash (`kill -9`) is modelled: a deploy's graceful stop also writes
//! the buffered telemetry first, and loses less. The runtime is the one of a store of one server;
//! a fleet's server replaced by another reads the same committed state, but what the campaign
//! does not model there is the heartbeats that vouch for the last polls of devices present at a
//! server, and the change feed.
//!
//! It meters the meter: at every step it asks whether the engine is charging the active run, and
//! whether the relay of the board that drives the motor could be ON at that moment. A relay
//! "could be ON" while it is ON, and for as long as the server could not have known otherwise: it
//! was ON at some moment since the board sent the last report the engine applied, or that report
//! came from a board holding no ON command and was answered ON (that answer is what tells the
//! board ON; it may still be on its way, or lost). A board that already held an ON command and
//! reported its relay OFF has told the server that the motor does not run; one that was answered
//! OFF has not been told to run. Nor has one whose report says it holds no ON command although
//! the answer to its report before said ON for the run still RUNNING (no OFF told since), and that
//! answer was given before it sent this report, within that answer's lease: it has not taken that
//! ON, and its next answer is no first word (`docs/DEVICE.md`, what is charged).

use std::collections::BTreeMap;

use pumppilot_controller::{LongPoll, OffReason};
use pumppilot_engine::{
    AdminId, Credit, DeviceId, DevicePoll, EntryId, EntryStatus, Event, HoldReason, LedgerKind, MotorRules,
    MotorSettings, PollAnswer, Records, Tenant, Timestamp, UserId,
};
use pumppilot_protocol::{PollReport, RelayOff};
use uuid::Uuid;

use crate::{Rng, link::ServerLink};

/// Engine time at the campaign's true time 0.
const T0: i64 = 1_800_000_000_000;

fn ts(t: u64) -> Timestamp {
    Timestamp(T0 + t as i64)
}

/// The tenant's run is RUNNING and charged.
fn charging(tenant: &Tenant) -> bool {
    tenant.active.as_ref().is_some_and(|e| e.status == EntryStatus::Running && e.phase_since.is_some())
}

/// How often the runtime writes the buffered telemetry (`runtime::FLUSH_EVERY`).
const FLUSH_EVERY: u64 = 1_000;

/// A device whose report did not change has its telemetry written at most this often
/// (`runtime::SEEN_EVERY`).
const SEEN_EVERY: u64 = 60_000;

/// What a report says, as the runtime's digest of it sees it (`report_digest`): the inputs, the
/// relay and the feedback (the campaign's boards report no firmware and no card reader).
type Says = (bool, bool, bool, Option<bool>);

/// One device's telemetry in the runtime's memory: every report is buffered as it arrives
/// (`Runtime::poll`), and the flush writes what it must ([`Pump::flush`]). Lost with the process.
#[derive(Debug, Clone, Copy, Default)]
struct Telemetry {
    /// The latest report not yet written whole: when it arrived, what it says, and whether a
    /// report since the last write said why the board started (a board says it once).
    buffered: Option<(u64, Says, bool)>,
    /// What this server last wrote of the device.
    written: Option<Written>,
}

/// What a server wrote of a device: the report's time and what it said, and the last poll
/// written for the tenant's lease (with the report, or alone).
#[derive(Debug, Clone, Copy)]
struct Written {
    seen: u64,
    lease: u64,
    says: Says,
}

/// A poll of the board under test, as it reaches the server.
#[derive(Debug, Clone, Copy)]
pub struct Request {
    pub report: PollReport<'static>,
    pub long_poll: Option<LongPoll>,
    /// When the board sent it (true time).
    pub sent_true: u64,
    /// The board held a fresh ON command when it sent it.
    pub commanded: bool,
    /// Why its relay was OFF then, if it was.
    pub off_reason: Option<OffReason>,
}

/// The server's reply to a poll that arrived.
#[derive(Debug, Clone, Copy)]
pub enum Reply {
    /// Answered at once.
    Now(PollAnswer),
    /// A long-poll held until the command changes or the wait ends ([`Pump::release`]).
    Held(Held),
}

/// A long-poll the server holds.
#[derive(Debug, Clone, Copy)]
pub struct Held {
    arrived: u64,
    until: u64,
    known: u64,
    first: PollAnswer,
}

/// The last report of a board the engine applied.
#[derive(Debug, Clone, Copy)]
struct Heard {
    sent: u64,
    commanded: bool,
    /// The answer to it (or a long-poll released since) said ON.
    told_on: bool,
    off_reason: Option<OffReason>,
    /// The answer to it said ON for this run (then RUNNING), given at `answered` (true time) with
    /// a lease to `lease_end` (counted from the report's sending, as the board counts it); `None`
    /// once the board is told OFF or the run is no longer RUNNING.
    on_for: Option<EntryId>,
    answered: u64,
    lease_end: u64,
    /// It says the board holds no ON command although the answer to its report before told it
    /// ON for the run still RUNNING, before it sent this one and within that answer's lease: the
    /// board has not taken that ON.
    after_on: bool,
}

impl Heard {
    /// A report whose answer told the board nothing of a run (the spare's, in the campaign).
    fn of(sent: u64, commanded: bool, told_on: bool, off_reason: Option<OffReason>) -> Heard {
        Heard { sent, commanded, told_on, off_reason, on_for: None, answered: sent, lease_end: sent, after_on: false }
    }
}

/// A board's relay as the meter of the meter sees it.
#[derive(Debug, Clone, Copy, Default)]
struct RelayTrace {
    on: bool,
    last_on: Option<u64>,
    heard: Option<Heard>,
}

impl RelayTrace {
    fn could_be_on(&self) -> bool {
        let Some(heard) = self.heard else { return false };
        self.on
            || (!heard.commanded && heard.told_on && !heard.after_on)
            || self.last_on.is_some_and(|at| at >= heard.sent)
    }

    /// The board was told OFF, or the run it was told ON for is no longer `running`: the ON of
    /// its last report's answer no longer stands.
    fn forget_on(&mut self, running: Option<EntryId>) {
        if let Some(heard) = self.heard.as_mut()
            && heard.on_for != running
        {
            heard.on_for = None;
        }
    }
}

/// The tenant's run, when it is RUNNING (charged or not).
fn running(tenant: &Tenant) -> Option<EntryId> {
    tenant.active.as_ref().filter(|e| e.status == EntryStatus::Running).map(|e| e.id)
}

/// A second board of the tenant (a spare at the pump): random inputs, obeys every answer at once.
#[derive(Debug, Clone, Copy)]
struct Spare {
    id: DeviceId,
    shedding: bool,
    on_until: Option<u64>,
    trace: RelayTrace,
}

/// What the server side did. `charged_while_off_ms` and `ledger_mismatches` must be 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PumpFigures {
    pub polls: u64,
    pub quiet_polls: u64,
    pub long_polls_held: u64,
    pub spare_polls: u64,
    pub outages: u64,
    pub polls_in_outages: u64,
    pub controller_changes: u64,
    pub starts_pressed: u64,
    pub runs: u64,
    /// Server restarts at which the store's last poll of the controller was older than the one
    /// the server held in memory (quiet polls not yet flushed, lost).
    pub last_polls_lost: u64,
    /// Seconds charged, by the usage rows.
    pub charged_s: u64,
    /// Milliseconds the engine was charging, sampled at every step.
    pub charging_ms: u64,
    /// Milliseconds the relay of the board under test was ON while it drove the motor.
    pub relay_on_ms: u64,
    /// Milliseconds the spare's relay was ON while it drove the motor.
    pub spare_relay_on_ms: u64,
    /// Runs the engine held NO_FEEDBACK.
    pub no_feedback_holds: u64,
    /// Of those, the holds the engine inferred although the board did not say it gave up.
    pub no_feedback_inferred: u64,
    /// Milliseconds the engine was charging while the controller's relay could not be ON.
    pub charged_while_off_ms: u64,
    /// Milliseconds of store outages charged because the server restarted before it held the
    /// run (the mark of the outage is memory: the next server charges to the lease's end).
    pub outage_charged_ms: u64,
    pub ledger_mismatches: u64,
}

impl PumpFigures {
    pub fn add(&mut self, o: &PumpFigures) {
        macro_rules! sum { ($($f:ident),*) => { $( self.$f += o.$f; )* } }
        sum!(
            polls,
            quiet_polls,
            long_polls_held,
            spare_polls,
            outages,
            polls_in_outages,
            controller_changes,
            starts_pressed,
            runs,
            last_polls_lost,
            charged_s,
            charging_ms,
            relay_on_ms,
            spare_relay_on_ms,
            no_feedback_holds,
            no_feedback_inferred,
            charged_while_off_ms,
            outage_charged_ms,
            ledger_mismatches
        );
    }
}

impl core::fmt::Display for PumpFigures {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        writeln!(
            f,
            "engine polls / quiet / long-polls held   {} / {} / {}",
            self.polls, self.quiet_polls, self.long_polls_held
        )?;
        writeln!(f, "spare board polls / controller changes   {} / {}", self.spare_polls, self.controller_changes)?;
        writeln!(f, "store outages / polls answered OFF in them   {} / {}", self.outages, self.polls_in_outages)?;
        writeln!(f, "Start pressed / runs     {} / {}", self.starts_pressed, self.runs)?;
        writeln!(f, "restarts that lost the last polls not yet written   {}", self.last_polls_lost)?;
        writeln!(
            f,
            "charged {} s; engine charging {:.0} s; a controller's relay ON {:.0} s",
            self.charged_s,
            self.charging_ms as f64 / 1000.0,
            (self.relay_on_ms + self.spare_relay_on_ms) as f64 / 1000.0
        )?;
        writeln!(
            f,
            "NO_FEEDBACK holds / inferred by the engine alone   {} / {}",
            self.no_feedback_holds, self.no_feedback_inferred
        )?;
        writeln!(f, "ms of store outages charged as a restart forgot them   {}", self.outage_charged_ms)?;
        writeln!(f, "ms charged while the relay could not be ON (must be 0)   {}", self.charged_while_off_ms)?;
        write!(f, "balances that are not their ledger (must be 0)          {}", self.ledger_mismatches)
    }
}

/// One pump's server side: the tenant and what happens around it.
pub struct Pump {
    rng: Rng,
    /// The tenant as the server holds it in memory.
    pub tenant: Tenant,
    /// The tenant as the store holds it: the state of every commit, its last poll moved by the
    /// telemetry flush too. A restarted server reads this.
    stored: Tenant,
    /// The runtime's buffered telemetry of the board and of the spare.
    telemetry: [Telemetry; 2],
    /// When the runtime flushes the telemetry next (true time).
    next_flush: u64,
    /// The server process is down until this true time (connections refused); it starts then, once
    /// the store can be read (`App::new` reads the store, `Runtime::start` every tenant).
    down_until: Option<u64>,
    /// In a store outage: the milliseconds the run would be charged if the server restarted
    /// before holding it (and of those, while the relay could not be ON).
    unheld: (u64, u64),
    /// While the server is down: the next one may still charge the run for this moment.
    charging_while_down: bool,
    board: DeviceId,
    spare: Spare,
    users: [UserId; 3],
    ledger: BTreeMap<UserId, i64>,
    /// Since when the store has been failing (true time), and until when it will.
    outage: Option<(u64, u64)>,
    /// The store is back; the outage is applied with the next change.
    outage_pending: Option<u64>,
    poll_ms: u32,
    lease_ms: u32,
    board_trace: RelayTrace,
    /// The server's half of the board's authenticated link, when the board has a secret.
    pub(crate) link: Option<ServerLink>,
    t: u64,
    pub figures: PumpFigures,
    /// The first few moments charged while the relay could not be ON, described.
    pub examples: Vec<String>,
    /// Milliseconds charged while the relay could not be ON, by why the board said it was OFF.
    pub off_reasons: Vec<(Option<OffReason>, u64)>,
}

impl Pump {
    /// A pump whose server gives `poll_ms` and `lease_ms` and this restart protection.
    pub fn new(seed: u64, poll_ms: u32, lease_ms: u32, rules: MotorRules) -> Pump {
        let admin = AdminId(UserId(Uuid::from_u128(u128::from(seed) << 64)));
        let mut tenant = Tenant::new(admin, i64::from(lease_ms));
        tenant.defaults = rules;
        let id = |n: u128| Uuid::from_u128((u128::from(seed) << 64) | n);
        Pump {
            rng: Rng::new(seed ^ 0x5E4_7E4),
            stored: tenant.clone(),
            tenant,
            telemetry: [Telemetry::default(); 2],
            next_flush: FLUSH_EVERY,
            down_until: None,
            unheld: (0, 0),
            charging_while_down: false,
            board: DeviceId(id(1)),
            spare: Spare { id: DeviceId(id(2)), shedding: false, on_until: None, trace: RelayTrace::default() },
            users: [UserId(id(0x100)), UserId(id(0x101)), UserId(id(0x102))],
            ledger: BTreeMap::new(),
            outage: None,
            outage_pending: None,
            poll_ms,
            lease_ms,
            board_trace: RelayTrace::default(),
            link: None,
            t: 0,
            figures: PumpFigures::default(),
            examples: Vec::new(),
            off_reasons: Vec::new(),
        }
    }

    /// True while the server process runs (between a restart and its start it refuses
    /// connections).
    pub fn serving(&self) -> bool {
        self.down_until.is_none()
    }

    /// True while the store can be written (a server may reserve a counter window).
    pub fn store_up(&self) -> bool {
        self.outage.is_none()
    }

    /// Applies `event` now as the runtime does, and commits what it changed: after a store
    /// outage, the run holds from the moment it began before anything else happens. Nothing
    /// applies while the store fails, nor while the server is down.
    fn apply(&mut self, event: Event) -> bool {
        if self.outage.is_some() || !self.serving() {
            return false;
        }
        let mut changed = false;
        if let Some(since) = self.outage_pending.take() {
            self.unheld = (0, 0);
            let out = self.tenant.apply(Event::StoreOutage, ts(since));
            changed |= out.records.changed;
            self.book(out.records);
        }
        let no_feedback = |t: &Tenant| t.active.as_ref().is_some_and(|e| e.hold_reason == Some(HoldReason::NoFeedback));
        let before = no_feedback(&self.tenant);
        let board_gave_up = matches!(&event, Event::Poll(p) if p.relay_off == Some(RelayOff::NoFeedback));
        let out = self.tenant.apply(event, ts(self.t));
        changed |= out.records.changed;
        self.book(out.records);
        if changed {
            self.commit();
        }
        if !before && no_feedback(&self.tenant) {
            self.figures.no_feedback_holds += 1;
            self.figures.no_feedback_inferred += u64::from(!board_gave_up);
        }
        true
    }

    /// The store takes the state whole (`tenants::write_state`), its last poll never backwards:
    /// the one in memory carries the quiet polls since the last flush.
    fn commit(&mut self) {
        let last_poll_at = self.stored.device.last_poll_at.max(self.tenant.device.last_poll_at);
        self.stored = self.tenant.clone();
        self.stored.device.last_poll_at = last_poll_at;
    }

    /// The runtime buffers every report as it arrives, before anything else (a store outage
    /// too); a report that does not say why the board started keeps the reason a buffered one
    /// said.
    fn buffer(&mut self, poll: &DevicePoll) {
        let says = (poll.load_shedding, poll.ready, poll.relay, poll.feedback);
        let telemetry = &mut self.telemetry[usize::from(poll.device == self.spare.id)];
        let reset = poll.reset.is_some() || telemetry.buffered.is_some_and(|(_, _, reset)| reset);
        telemetry.buffered = Some((self.t, says, reset));
    }

    /// The runtime's telemetry flush (`Runtime::flush`, on a store of one server): a device's
    /// report is written when it changed, when it says why the board started, or a minute after
    /// the last one written; otherwise its last poll alone, every flush while the tenant has a
    /// run and every half lease without one, and only for the controller (it keeps the lease).
    /// Either moves the stored tenant's last poll, for its controller. While the store fails
    /// nothing is written, and all of it is tried again.
    fn flush(&mut self) {
        if self.outage.is_some() {
            return;
        }
        let half_lease = u64::from(self.lease_ms) / 2;
        for (telemetry, device) in self.telemetry.iter_mut().zip([self.board, self.spare.id]) {
            let Some((at, says, reset)) = telemetry.buffered else { continue };
            let lease = self.tenant.is_controller(device).then_some(self.tenant.active.is_some());
            let due = telemetry.written.is_none_or(|w| w.says != says || reset || at - w.seen >= SEEN_EVERY);
            let moved = if due {
                let lease = telemetry.written.map_or(at, |w| w.lease.max(at));
                telemetry.written = Some(Written { seen: at, lease, says });
                telemetry.buffered = None;
                true
            } else if let Some(w) = telemetry.written.as_mut()
                && at > w.lease
                && lease.is_some_and(|has_run| has_run || at - w.lease >= half_lease)
            {
                w.lease = at;
                true
            } else {
                false
            };
            if moved && self.stored.is_controller(device) {
                self.stored.touch(ts(at));
            }
        }
    }

    /// The server process stops (a deploy, a crash, `kill -9`, its place in a fleet taken by
    /// another): everything it kept only in memory is gone (the tenant, the buffered telemetry,
    /// the mark of a store outage it told the device OFF in, its counter window), and it refuses
    /// connections for `down_for` ms. The campaign closes its connections (`Campaign::restart`).
    pub fn restart(&mut self, down_for: u64) {
        if self.tenant.device.last_poll_at > self.stored.device.last_poll_at {
            self.figures.last_polls_lost += 1;
        }
        // The mark of a store outage is lost: the next server charges what it would have held.
        let (unheld, off) = std::mem::take(&mut self.unheld);
        self.figures.outage_charged_ms += unheld;
        self.figures.charging_ms += unheld;
        self.figures.charged_while_off_ms += off;
        if off > 0 && self.examples.len() < 2 {
            self.examples.push(format!("t={} a restart in a store outage charged {off} ms while OFF", self.t));
        }
        self.telemetry = [Telemetry::default(); 2];
        self.down_until = Some(self.t + down_for);
        self.charging_while_down = charging(&self.stored);
        if let Some(link) = self.link.as_mut() {
            link.restart();
        }
    }

    /// The next server starts (`Runtime::start` on a store of one server): it reads the tenant
    /// from the store and brings it up to date (what time changed while no server held it, each
    /// deadline at its own moment). It knows nothing of a store outage the last one met: a run
    /// the device was told OFF for then is charged to its lease's end, as for a silent device.
    fn start(&mut self) {
        self.down_until = None;
        // The last server's mark of an outage (also one that ended while no server ran).
        self.outage_pending = None;
        self.tenant = self.stored.clone();
        self.next_flush = self.t + FLUSH_EVERY;
        self.apply(Event::Tick);
    }

    fn book(&mut self, records: Records) {
        for l in &records.ledger {
            *self.ledger.entry(l.user_id).or_default() += l.delta_seconds;
        }
        for row in &records.usage {
            self.figures.runs += 1;
            self.figures.charged_s += row.charged_seconds as u64;
        }
    }

    fn answer_for(&self, device: DeviceId) -> PollAnswer {
        self.tenant.poll_answer_for(device, ts(self.t), self.poll_ms)
    }

    fn unavailable(&self) -> PollAnswer {
        Tenant::unavailable_answer(Some(&self.tenant), ts(self.t), self.poll_ms, i64::from(self.lease_ms))
    }

    /// The device poll path: the engine applies the report (in memory when nothing changed), and
    /// the answer comes at once or is held as a long-poll; while the store fails, OFF at once.
    fn device_poll(&mut self, poll: DevicePoll) -> PollAnswer {
        self.buffer(&poll);
        if self.outage.is_some() {
            self.figures.polls_in_outages += 1;
            return self.unavailable();
        }
        let now = ts(self.t);
        if self.outage_pending.is_none() && self.tenant.is_quiet_poll(&poll, now) {
            self.figures.quiet_polls += 1;
            if self.tenant.controller == Some(poll.device) {
                self.tenant.touch(now);
            }
        } else {
            self.apply(Event::Poll(poll));
        }
        self.answer_for(poll.device)
    }

    /// A poll of the board under test arrives now.
    pub fn poll(&mut self, request: &Request) -> Reply {
        self.figures.polls += 1;
        let r = request.report;
        let applied = self.outage.is_none();
        let running_before = running(&self.tenant);
        let first = self.device_poll(DevicePoll::of_report(self.board, &r));
        if applied && self.tenant.controller == Some(self.board) {
            let after_on = !request.commanded
                && !r.relay
                && self.board_trace.heard.is_some_and(|before| {
                    before.on_for.is_some()
                        && before.on_for == running_before
                        && before.answered <= request.sent_true
                        && request.sent_true < before.lease_end
                });
            let lease = u64::from(first.lease_ms.min(pumppilot_controller::Settings::DEFAULT.max_lease_ms));
            self.board_trace.heard = Some(Heard {
                sent: request.sent_true,
                commanded: request.commanded,
                told_on: first.commands_on(),
                off_reason: request.off_reason,
                on_for: running(&self.tenant).filter(|_| first.commands_on()),
                answered: self.t,
                lease_end: request.sent_true + lease,
                after_on,
            });
        } else {
            // Answered OFF (another board drives the motor, or the store fails).
            self.board_trace.forget_on(None);
        }
        let wait = request.long_poll.map_or(0, |long_poll| long_poll.wait_ms.min(self.lease_ms / 3));
        let behind = (first.commands_on() && !r.relay) || first.hold_reason == Some(HoldReason::StoreUnavailable);
        match request.long_poll {
            Some(long_poll) if wait > 0 && !behind && long_poll.seq == first.seq => {
                self.figures.long_polls_held += 1;
                Reply::Held(Held { arrived: self.t, until: self.t + u64::from(wait), known: long_poll.seq, first })
            }
            _ => Reply::Now(first),
        }
    }

    /// A held long-poll is answered when the command's `seq` changed (with the command now) or
    /// its wait ended (with the first answer), its lease shortened by the time held.
    pub fn release(&mut self, held: &Held) -> Option<PollAnswer> {
        let changed = self.outage.is_none() && self.tenant.seq != held.known;
        let answer = if changed {
            self.answer_for(self.board)
        } else if self.t >= held.until {
            held.first
        } else {
            return None;
        };
        if let Some(heard) = self.board_trace.heard.as_mut().filter(|_| answer.commands_on()) {
            heard.told_on = true;
        }
        if !answer.commands_on() {
            self.board_trace.forget_on(None);
        }
        let waited = u32::try_from(self.t - held.arrived).unwrap_or(u32::MAX);
        Some(PollAnswer { lease_ms: answer.lease_ms.saturating_sub(waited), ..answer })
    }

    /// The command the server pushes to the board under test now (over MQTT, as it changes, and
    /// on a new connection): the engine's, or OFF held for the store while the store fails. An
    /// ON tells the board ON, as an answer does.
    pub fn command(&mut self) -> PollAnswer {
        let answer = if self.outage.is_some() { self.unavailable() } else { self.answer_for(self.board) };
        if let Some(heard) = self.board_trace.heard.as_mut().filter(|_| answer.commands_on()) {
            heard.told_on = true;
        }
        if !answer.commands_on() {
            self.board_trace.forget_on(None);
        }
        answer
    }

    /// True time has reached `t`; the board under test's relay was `relay_on` since the last step.
    pub fn step(&mut self, t: u64, relay_on: bool) {
        let dt = t - self.t;
        self.t = t;
        self.board_trace.on = relay_on;
        if relay_on {
            self.board_trace.last_on = Some(t);
        }
        if let Some(until) = self.spare.on_until
            && t >= until
        {
            self.spare.on_until = None;
        }
        self.spare.trace.on = self.spare.on_until.is_some();
        if self.spare.trace.on {
            self.spare.trace.last_on = Some(t);
        }
        if let Some(until) = self.down_until
            && t >= until
            && self.outage.is_none()
        {
            self.start();
        }
        // The runtime's timer: time's own effects, committed when the store can.
        self.apply(Event::Tick);
        self.board_trace.forget_on(running(&self.tenant));
        if self.serving() && t >= self.next_flush {
            self.next_flush = t + FLUSH_EVERY;
            self.flush();
        }
        self.meter(dt, relay_on);
        self.world();
    }

    /// Is the engine charging now, and could the controller's relay be ON? While the server is
    /// down: what the next one will charge for this moment, reading what the store holds.
    fn meter(&mut self, dt: u64, relay_on: bool) {
        let next;
        let (tenant, held_for_the_store, charges) = if self.serving() {
            let held = self.outage.is_some() || self.outage_pending.is_some();
            (&self.tenant, held, !held && charging(&self.tenant))
        } else {
            // Time alone ends a charge and never starts one: once the next server would not
            // charge a moment of the down time, it charges none after it.
            next = self.charging_while_down.then(|| {
                let mut read = self.stored.clone();
                read.apply(Event::Tick, ts(self.t));
                read
            });
            self.charging_while_down = next.as_ref().is_some_and(charging);
            (next.as_ref().unwrap_or(&self.stored), false, self.charging_while_down)
        };
        let controller = tenant.controller;
        if controller == Some(self.board) && relay_on {
            self.figures.relay_on_ms += dt;
        }
        if controller == Some(self.spare.id) && self.spare.trace.on {
            self.figures.spare_relay_on_ms += dt;
        }
        let unheld = held_for_the_store
            && charging(&self.stored)
            && self.stored.next_deadline().is_some_and(|end| ts(self.t) < end);
        if !unheld && !charges {
            return;
        }
        let trace = match controller {
            Some(c) if c == self.board => self.board_trace,
            Some(c) if c == self.spare.id => self.spare.trace,
            _ => RelayTrace::default(),
        };
        if unheld {
            // In a store outage the server will hold the run from the outage's start; should it
            // restart first, the next one knows nothing of the outage and charges the run to the
            // lease's end it reads from the store. Kept apart until one or the other happens.
            self.unheld.0 += dt;
            self.unheld.1 += if trace.could_be_on() { 0 } else { dt };
            return;
        }
        self.figures.charging_ms += dt;
        if !trace.could_be_on() {
            self.figures.charged_while_off_ms += dt;
            let reason = trace.heard.and_then(|h| h.off_reason);
            match self.off_reasons.iter_mut().find(|(r, _)| *r == reason) {
                Some((_, ms)) => *ms += dt,
                None => self.off_reasons.push((reason, dt)),
            }
            if self.examples.len() < 2 {
                self.examples.push(format!(
                    "t={} charging while the relay could not be ON: {:?}; active {:?}; device {:?}",
                    self.t, trace, tenant.active, tenant.device
                ));
            }
        }
    }

    /// Farmers, the owner, the spare board and the store.
    fn world(&mut self) {
        if let Some((since, until)) = self.outage
            && self.t >= until
        {
            self.outage = None;
            self.outage_pending = Some(since);
        }
        let roll = self.rng.below(1_000_000);
        match roll {
            // A farmer presses Start (about every 25 s).
            0..=1_999 => {
                self.figures.starts_pressed += 1;
                let user = self.users[self.rng.below(3) as usize];
                let minutes = if self.rng.chance(100_000) { None } else { Some(1 + self.rng.below(6) as u32) };
                self.apply(Event::Start { user, requested_minutes: minutes, entry_id: EntryId::new() });
            }
            // A farmer presses Stop.
            2_000..=2_999 => {
                let user = self.users[self.rng.below(3) as usize];
                self.apply(Event::Stop { user });
            }
            // The owner credits minutes.
            3_000..=3_499 => {
                let credit = Credit::new(
                    self.users[self.rng.below(3) as usize],
                    30 + self.rng.below(600) as i64,
                    LedgerKind::Recharge,
                    self.tenant.admin_id.0,
                );
                self.apply(Event::Credit(credit));
            }
            // The store fails for a while (about every twenty minutes).
            3_500..=3_549 if self.outage.is_none() => {
                self.figures.outages += 1;
                let since = self.outage_pending.take().unwrap_or(self.t);
                self.outage = Some((since, self.t + self.rng.between(50, 120_000)));
            }
            // The owner makes the spare the controller (for some minutes), or the board under test
            // again.
            3_550..=3_649 => {
                let to_spare = self.tenant.controller != Some(self.spare.id) && self.rng.chance(200_000);
                let device = if to_spare { self.spare.id } else { self.board };
                if self.tenant.controller != Some(device) && self.apply(Event::SetController { device: Some(device) }) {
                    self.figures.controller_changes += 1;
                }
            }
            // The owner changes the motor's restart protection.
            3_650..=3_651 => {
                let settings = MotorSettings {
                    min_off_ms: Some([0, 5_000, 60_000][self.rng.below(3) as usize]),
                    grid_settle_ms: Some([0, 5_000, 60_000][self.rng.below(3) as usize]),
                    max_starts_per_hour: Some([0, 2, 6][self.rng.below(3) as usize]),
                };
                self.apply(Event::SetMotorSettings(settings));
            }
            // The spare board polls (about every five seconds).
            3_652..=13_651 => self.spare_poll(),
            _ => {}
        }
    }

    fn spare_poll(&mut self) {
        self.figures.spare_polls += 1;
        if !self.serving() {
            // Refused: the spare obeys its last answer until that answer's lease runs out.
            return;
        }
        if self.rng.chance(20_000) {
            self.spare.shedding = !self.spare.shedding;
        }
        let relay = self.spare.on_until.is_some();
        let commanded = relay;
        let applied = self.outage.is_none();
        let poll = DevicePoll {
            device: self.spare.id,
            load_shedding: self.spare.shedding,
            ready: true,
            relay,
            feedback: None,
            reset: None,
            relay_off: None,
            uptime_ms: None,
        };
        let answer = self.device_poll(poll);
        if applied && self.tenant.controller == Some(self.spare.id) {
            self.spare.trace.heard = Some(Heard::of(self.t, commanded, answer.commands_on(), None));
        }
        self.spare.on_until =
            (answer.commands_on() && !self.spare.shedding).then(|| self.t + u64::from(answer.lease_ms));
        self.spare.trace.on = self.spare.on_until.is_some();
        if self.spare.trace.on {
            self.spare.trace.last_on = Some(self.t);
        }
    }

    /// The store is back and everyone stops, a day later; then every balance is compared with
    /// its ledger.
    pub fn finish(&mut self) {
        self.t += 24 * 3_600_000;
        if let Some((since, _)) = self.outage.take() {
            self.outage_pending = Some(since);
        }
        if !self.serving() {
            self.start();
        }
        for user in self.users {
            self.apply(Event::Stop { user });
        }
        for user in self.users {
            if self.tenant.wallet(user) != self.ledger.get(&user).copied().unwrap_or(0) {
                self.figures.ledger_mismatches += 1;
            }
        }
    }
}
