//! The engine half of the fault campaign: many pumps, each with its controller board and a spare,
//! on fake time, through noisy inputs, silent boards, duplicated and late (reordered) reports,
//! board reboots after power cuts, owners switching the controller, and store outages handled
//! the way the runtime handles them (every poll answered OFF, the run held from the outage's start
//! once the store is back). It counts:
//! - milliseconds charged while no relay could have been ON (by the answers the boards got): 0;
//! - users whose balance differs from the sum of their ledger: 0.
//!
//! The seam for the device half is [`Board`]: the engine half runs [`ScriptedBoard`], whose inputs
//! are random and which obeys every answer; a board driven by `pumppilot_controller::Controller`
//! (its debounce, restart protection and lease) plugs in there, and [`RelayModel`] then counts
//! what its real relay did instead of what the answers allowed.
//!
//! `cargo test -p pumppilot-engine --release --test campaign -- --nocapture` prints the figures.

use std::{collections::BTreeMap, time::Instant};

#[path = "model/relay.rs"]
mod relay;

use pumppilot_engine::{
    AdminId, Credit, DeviceId, DevicePoll, EntryId, Event, LedgerKind, MotorRules, PollAnswer, ResetReason, Tenant,
    Timestamp, UserId,
};
use relay::RelayModel;
use uuid::Uuid;

const PUMPS: u64 = 100;
const STEPS_PER_PUMP: u64 = 10_000;
const LEASE_MS: i64 = 15_000;
const POLL_MS: u32 = 5_000;
const T0: i64 = 1_800_000_000_000;

/// A small deterministic generator (xorshift64*), so every run of the campaign is the same.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// What a board at the pump says and does.
trait Board {
    /// Its report at `now`.
    fn report(&mut self, rng: &mut Rng, now: Timestamp) -> DevicePoll;
    /// It got `answer` at `now`.
    fn heard(&mut self, answer: &PollAnswer, now: Timestamp);
}

/// A board with random inputs (load shedding comes in spells, readiness flickers, the feedback
/// input sometimes fails) that obeys every answer.
struct ScriptedBoard {
    id: DeviceId,
    shedding: bool,
    relay: bool,
    has_feedback: bool,
    motor_dead: bool,
    rebooted: Option<ResetReason>,
}

impl Board for ScriptedBoard {
    fn report(&mut self, rng: &mut Rng, _now: Timestamp) -> DevicePoll {
        if rng.chance(3) {
            self.shedding = !self.shedding;
        }
        if rng.chance(1) {
            self.motor_dead = !self.motor_dead;
        }
        DevicePoll {
            device: self.id,
            load_shedding: self.shedding,
            ready: !rng.chance(3),
            relay: self.relay,
            feedback: self.has_feedback.then_some(self.relay && !self.motor_dead),
            reset: self.rebooted.take(),
        }
    }

    fn heard(&mut self, answer: &PollAnswer, _now: Timestamp) {
        self.relay = answer.commands_on() && !self.shedding;
    }
}

#[derive(Default, Debug)]
struct Figures {
    steps: u64,
    polls: u64,
    duplicated: u64,
    late: u64,
    silences: u64,
    reboots: u64,
    outages: u64,
    polls_in_outages: u64,
    controller_changes: u64,
    runs: u64,
    charged_ms: i64,
    possible_ms: i64,
    charged_without_relay_ms: i64,
    ledger_mismatches: u64,
    simulated_ms: i64,
}

struct Pump {
    tenant: Tenant,
    boards: Vec<ScriptedBoard>,
    users: Vec<UserId>,
    model: RelayModel,
    ledger: BTreeMap<UserId, i64>,
    now: Timestamp,
    outage: Option<Timestamp>,
    last_report: Option<DevicePoll>,
}

impl Pump {
    fn new(n: u64, rng: &mut Rng) -> Pump {
        let admin = AdminId(UserId(Uuid::from_u128(u128::from(n) << 32)));
        let mut tenant = Tenant::new(admin, LEASE_MS);
        tenant.defaults = match n % 3 {
            0 => MotorRules { min_off_ms: 60_000, grid_settle_ms: 60_000, max_starts_per_hour: 6 },
            1 => MotorRules { min_off_ms: 10_000, grid_settle_ms: 5_000, max_starts_per_hour: 0 },
            _ => MotorRules::NONE,
        };
        let boards = (0..2)
            .map(|b| ScriptedBoard {
                id: DeviceId(Uuid::from_u128((u128::from(n) << 32) | (b + 1))),
                shedding: false,
                relay: false,
                has_feedback: rng.chance(50),
                motor_dead: false,
                rebooted: Some(ResetReason::PowerOn),
            })
            .collect();
        let users = (0..3).map(|u| UserId(Uuid::from_u128((u128::from(n) << 32) | (0x100 + u)))).collect();
        Pump {
            tenant,
            boards,
            users,
            model: RelayModel::default(),
            ledger: BTreeMap::new(),
            now: Timestamp(T0),
            outage: None,
            last_report: None,
        }
    }

    /// Applies `event` at `now` as the runtime does: after a store outage, the run holds from the
    /// moment it began before anything else happens.
    fn apply(&mut self, event: Event, figures: &mut Figures) {
        if let Some(since) = self.outage.take() {
            let out = self.tenant.apply(Event::StoreOutage, since);
            self.book(out.records, figures);
        }
        let out = self.tenant.apply(event, self.now);
        self.book(out.records, figures);
    }

    fn book(&mut self, records: pumppilot_engine::Records, figures: &mut Figures) {
        for l in &records.ledger {
            *self.ledger.entry(l.user_id).or_default() += l.delta_seconds;
        }
        for row in &records.usage {
            let entry = records.ended.iter().find(|e| e.id == row.entry_id).expect("a usage row's entry ended");
            let possible = self.model.possible_ms(row.started_at, row.ended_at);
            figures.runs += 1;
            figures.charged_ms += entry.running_ms;
            figures.possible_ms += possible;
            figures.charged_without_relay_ms += (entry.running_ms - possible).max(0);
            if entry.running_ms > possible && std::env::var("CAMPAIGN_DEBUG").is_ok() {
                panic!("{row:?}\n{entry:?}\n{:?}\nnow {:?} outage {:?}", self.model, self.now, self.outage);
            }
        }
    }

    fn poll(&mut self, board: usize, poll: DevicePoll, figures: &mut Figures) {
        figures.polls += 1;
        if self.outage.is_some() {
            // The store cannot commit: the runtime answers OFF without applying anything.
            figures.polls_in_outages += 1;
            let answer = Tenant::unavailable_answer(Some(&self.tenant), self.now, POLL_MS, LEASE_MS);
            self.model.heard(poll.device, &answer, self.now);
            self.boards[board].heard(&answer, self.now);
            return;
        }
        self.apply(Event::Poll(poll), figures);
        let answer = self.tenant.poll_answer_for(poll.device, self.now, POLL_MS);
        self.model.heard(poll.device, &answer, self.now);
        self.boards[board].heard(&answer, self.now);
    }

    fn step(&mut self, rng: &mut Rng, figures: &mut Figures) {
        figures.steps += 1;
        let dt = match rng.below(100) {
            0..=1 => 2 * LEASE_MS + rng.below(600_000) as i64, // a silent spell
            2..=20 => 0,
            _ => rng.below(u64::from(POLL_MS) + 1) as i64,
        };
        if dt > LEASE_MS {
            figures.silences += 1;
        }
        self.now = self.now + dt;
        figures.simulated_ms += dt;
        let controller = self.tenant.controller.and_then(|c| self.boards.iter().position(|b| b.id == c)).unwrap_or(0);
        match rng.below(100) {
            0..=49 => {
                let poll = self.boards[controller].report(rng, self.now);
                self.last_report = Some(poll);
                self.poll(controller, poll, figures);
            }
            50..=54 => {
                let poll = self.boards[1 - controller].report(rng, self.now);
                self.poll(1 - controller, poll, figures);
            }
            55..=59 => {
                if let Some(poll) = self.last_report {
                    // A duplicated or late report: the same (possibly stale) inputs arrive again.
                    if rng.chance(50) {
                        figures.duplicated += 1;
                    } else {
                        figures.late += 1;
                    }
                    let board = self.boards.iter().position(|b| b.id == poll.device).unwrap_or(0);
                    self.poll(board, DevicePoll { reset: None, ..poll }, figures);
                }
            }
            60..=61 => {
                figures.reboots += 1;
                let board = &mut self.boards[controller];
                board.relay = false;
                board.rebooted = Some(if rng.chance(70) { ResetReason::PowerOn } else { ResetReason::Watchdog });
            }
            62..=63 => {
                if self.outage.is_none() {
                    figures.outages += 1;
                    self.outage = Some(self.now);
                    self.model.all_off(self.now);
                }
            }
            64 => {
                if self.outage.is_none() {
                    figures.controller_changes += 1;
                    let device = self.boards[rng.below(2) as usize].id;
                    self.apply(Event::SetController { device: Some(device) }, figures);
                }
            }
            65..=79 => {
                let user = self.users[rng.below(3) as usize];
                let event = if rng.chance(60) {
                    Event::Start { user, requested_minutes: Some(1 + rng.below(30) as u32), entry_id: EntryId::new() }
                } else {
                    Event::Stop { user }
                };
                if self.outage.is_none() {
                    self.apply(event, figures);
                }
            }
            80..=83 => {
                if self.outage.is_none() {
                    let credit = Credit {
                        user: self.users[rng.below(3) as usize],
                        seconds: 60 + rng.below(1800) as i64,
                        kind: LedgerKind::Recharge,
                        actor: self.tenant.admin_id.0,
                        note: String::new(),
                        request_id: None,
                    };
                    self.apply(Event::Credit(credit), figures);
                }
            }
            _ => {
                if self.outage.is_some() && rng.chance(30) {
                    // The store is back; the next change applies the outage first.
                } else if self.outage.is_none() {
                    self.apply(Event::Tick, figures);
                }
                if rng.chance(30) && self.outage.is_some() {
                    let since = self.outage.expect("in an outage");
                    self.outage = None;
                    let out = self.tenant.apply(Event::StoreOutage, since);
                    self.book(out.records, figures);
                }
            }
        }
        // What the pump looks like now to anyone who asks (time caught up, as every read does).
        let mut view = self.tenant.clone();
        if let Some(since) = self.outage {
            view.apply(Event::StoreOutage, since);
        }
        view.apply(Event::Tick, self.now);
        if let Some(active) = &view.active
            && let Some(started) = active.started_at
        {
            let possible = self.model.possible_ms(started, self.now);
            let charged = active.running_ms_at(self.now);
            assert!(charged <= possible, "charging {charged} ms of {possible} possible: {active:?}");
        }
        // The oldest run the books may still close is the stored one.
        let keep_from = self.tenant.active.as_ref().and_then(|a| a.started_at).unwrap_or(self.now - LEASE_MS);
        self.model.forget_before(keep_from.min(self.now - LEASE_MS));
    }

    fn check_books(&self, figures: &mut Figures) {
        for &user in &self.users {
            if self.tenant.wallet(user) != self.ledger.get(&user).copied().unwrap_or(0) {
                figures.ledger_mismatches += 1;
            }
        }
    }
}

#[test]
fn no_second_is_charged_while_no_relay_could_run_and_every_balance_is_its_ledger() {
    let started = Instant::now();
    let mut rng = Rng(0x0005_eed0_fa11_0075);
    let mut figures = Figures::default();
    for n in 0..PUMPS {
        let mut pump = Pump::new(n, &mut rng);
        for _ in 0..STEPS_PER_PUMP {
            pump.step(&mut rng, &mut figures);
        }
        // A day later the store is back (an outage is applied first) and everyone stops.
        pump.now = pump.now + 24 * 3_600_000;
        for user in pump.users.clone() {
            pump.apply(Event::Stop { user }, &mut figures);
        }
        pump.check_books(&mut figures);
    }
    println!("engine fault campaign: {figures:#?}");
    println!(
        "{} pumps × {} steps = {} steps ({} polls) in {:.2} s; {:.0} simulated hours",
        PUMPS,
        STEPS_PER_PUMP,
        figures.steps,
        figures.polls,
        started.elapsed().as_secs_f64(),
        figures.simulated_ms as f64 / 3_600_000.0
    );
    assert!(figures.runs > 1_000 && figures.outages > 100 && figures.late > 1_000, "the campaign exercised little");
    assert_eq!(figures.charged_without_relay_ms, 0, "charged while no relay could run");
    assert_eq!(figures.ledger_mismatches, 0, "balances that are not their ledger");
    assert!(figures.charged_ms <= figures.possible_ms);
}
