//! Property tests: random event sequences for 3–6 users in random (non-decreasing) fake time, with
//! every invariant of the rules checked after every `apply`.

use std::collections::{BTreeMap, HashSet};

use proptest::prelude::*;
use pumppilot_engine::{
    AdminId, Credit, EndReason, EntryId, EntryStatus, Event, LedgerKind, Outcome, Records, Reply, Tenant, Timestamp,
    UserId,
};
use uuid::Uuid;

const ADMIN: UserId = UserId(Uuid::from_u128(0xAD));
const LEASE_MS: i64 = 10_000;
const T0: i64 = 1_700_000_000_000;

#[derive(Debug, Clone)]
enum Op {
    Start {
        user: usize,
        minutes: Option<u32>,
    },
    Stop {
        user: usize,
    },
    AdminStop,
    RemoveWaiting {
        user: usize,
    },
    Report {
        load_shedding: bool,
        ready: bool,
        relay: bool,
    },
    Tick,
    SuspendUser {
        user: usize,
    },
    SuspendTenant,
    UnsuspendTenant,
    Credit {
        user: usize,
        seconds: i64,
        kind: LedgerKind,
    },
    /// A correction of everything the user has left now, plus `extra` seconds (refused when > 0).
    TakeAll {
        user: usize,
        extra: i64,
    },
}

fn op(users: usize) -> impl Strategy<Value = Op> {
    let user = 0..users;
    prop_oneof![
        5 => (user.clone(), prop::option::of(1u32..=3)).prop_map(|(user, minutes)| Op::Start { user, minutes }),
        2 => user.clone().prop_map(|user| Op::Stop { user }),
        1 => Just(Op::AdminStop),
        1 => user.clone().prop_map(|user| Op::RemoveWaiting { user }),
        6 => (prop::bool::weighted(0.3), prop::bool::weighted(0.8), prop::bool::weighted(0.2))
            .prop_map(|(load_shedding, ready, relay)| Op::Report { load_shedding, ready, relay }),
        3 => Just(Op::Tick),
        1 => user.clone().prop_map(|user| Op::SuspendUser { user }),
        1 => Just(Op::SuspendTenant),
        2 => Just(Op::UnsuspendTenant),
        3 => (user.clone(), 1i64..=300, prop_oneof![Just(LedgerKind::Recharge), Just(LedgerKind::RequestApproved)])
            .prop_map(|(user, seconds, kind)| Op::Credit { user, seconds, kind }),
        2 => (user.clone(), -300i64..=300).prop_map(|(user, seconds)| Op::Credit { user, seconds, kind: LedgerKind::Correction }),
        1 => (user, prop_oneof![3 => Just(0i64), 1 => 1i64..=2]).prop_map(|(user, extra)| Op::TakeAll { user, extra }),
    ]
}

/// Exactly at the tenant's next deadline (where the timer fires), or now when there is none.
const TO_DEADLINE: i64 = -1;

/// Milliseconds until the next event: none, sub-second, up to a few leases, or to the next deadline.
fn clock_step() -> impl Strategy<Value = i64> {
    prop_oneof![2 => Just(0i64), 3 => 1i64..1000, 3 => 1000i64..=3 * LEASE_MS, 1 => Just(TO_DEADLINE)]
}

fn story() -> impl Strategy<Value = (usize, Vec<(Op, i64)>)> {
    (3usize..=6).prop_flat_map(|users| (Just(users), prop::collection::vec((op(users), clock_step()), 1..80)))
}

/// The tenant plus everything the harness remembers independently of it.
struct Harness {
    tenant: Tenant,
    now: Timestamp,
    users: Vec<UserId>,
    next_entry: u128,
    /// The sum of every ledger delta emitted so far, per user.
    ledger_sum: BTreeMap<UserId, i64>,
    /// Closed intervals (ms) in which the device was online and reporting good conditions.
    good: Vec<(i64, i64)>,
    /// The last report: when, and whether its conditions were good.
    last_report: Option<(i64, bool)>,
    ended: HashSet<EntryId>,
    last_run_end: Option<Timestamp>,
}

impl Harness {
    fn new(users: usize) -> Self {
        Harness {
            tenant: Tenant::new(AdminId(ADMIN), LEASE_MS),
            now: Timestamp(T0),
            users: (1..=users as u128).map(|n| UserId(Uuid::from_u128(n))).collect(),
            next_entry: 0,
            ledger_sum: BTreeMap::new(),
            good: Vec::new(),
            last_report: None,
            ended: HashSet::new(),
            last_run_end: None,
        }
    }

    fn event(&mut self, op: &Op) -> Event {
        match *op {
            Op::Start { user, minutes } => {
                self.next_entry += 1;
                let entry_id = EntryId(Uuid::from_u128(0xE000_0000 + self.next_entry));
                let user = self.users[user];
                // Every other Start comes by text: the same rules.
                match self.next_entry.is_multiple_of(2) {
                    true => Event::StartByText { user, requested_minutes: minutes, entry_id },
                    false => Event::Start { user, requested_minutes: minutes, entry_id },
                }
            }
            // So does every other Stop, as far as the rules go.
            Op::Stop { user } if self.next_entry.is_multiple_of(2) => Event::StopByText { user: self.users[user] },
            Op::Stop { user } => Event::Stop { user: self.users[user] },
            // The run the owner sees: after time caught up it may have ended, and the stop is refused.
            Op::AdminStop => {
                Event::AdminStop { entry: self.tenant.active.as_ref().map_or(EntryId(Uuid::nil()), |e| e.id) }
            }
            Op::RemoveWaiting { user } => Event::RemoveWaiting { user: self.users[user] },
            Op::Report { load_shedding, ready, relay } => Event::DeviceReport { load_shedding, ready, relay },
            Op::Tick => Event::Tick,
            Op::SuspendUser { user } => Event::SuspendUser { user: self.users[user] },
            Op::SuspendTenant => Event::SuspendTenant,
            Op::UnsuspendTenant => Event::UnsuspendTenant,
            Op::Credit { user, seconds, kind } => self.credit(user, seconds, kind),
            Op::TakeAll { user, extra } => {
                let mut caught_up = self.tenant.clone();
                caught_up.apply(Event::Tick, self.now);
                let left = caught_up.available_seconds(self.users[user], self.now);
                self.credit(user, -(left + extra), LedgerKind::Correction)
            }
        }
    }

    fn credit(&self, user: usize, seconds: i64, kind: LedgerKind) -> Event {
        Event::Credit(Credit::new(self.users[user], seconds, kind, ADMIN))
    }

    /// Milliseconds in `[from, to)` during which the device was online with good conditions.
    fn good_ms(&self, from: Timestamp, to: Timestamp) -> i64 {
        let open = self.last_report.filter(|&(_, good)| good).map(|(at, _)| (at, at + LEASE_MS));
        self.good.iter().copied().chain(open).map(|(s, e)| (e.min(to.0) - s.max(from.0)).max(0)).sum()
    }

    fn step(&mut self, op: &Op, dt: i64) -> Result<Outcome, TestCaseError> {
        self.now = match dt {
            TO_DEADLINE => self.tenant.next_deadline().map_or(self.now, |d| d.max(self.now)),
            _ => self.now + dt,
        };
        let now = self.now;
        let event = self.event(op);
        let before = self.tenant.clone();
        let mut ticked = before.clone();
        let tick = ticked.apply(Event::Tick, now);
        let outcome = self.tenant.apply(event.clone(), now);

        if let Event::DeviceReport { load_shedding, ready, relay } = event {
            if let Some((at, true)) = self.last_report {
                self.good.push((at, (at + LEASE_MS).min(now.0)));
            }
            self.last_report = Some((now.0, !load_shedding && ready));
            // A poll that only moves the last-seen time is quiet: no commit, and the same as a touch.
            let quiet = before.is_quiet_report(load_shedding, ready, relay, now);
            prop_assert_eq!(outcome.records.changed, !quiet, "report changed flag vs is_quiet_report");
            if quiet {
                let mut touched = before.clone();
                touched.touch(now);
                prop_assert_eq!(&self.tenant, &touched);
            }
        } else if before != self.tenant {
            prop_assert!(outcome.records.changed, "the tenant changed but records.changed is false");
        }

        match (&event, &outcome.reply) {
            // A refused event changes nothing; only what time alone did is applied and returned.
            (_, Err(_)) => {
                prop_assert_eq!(&self.tenant, &ticked);
                prop_assert_eq!(&outcome.records, &tick.records);
            }
            (Event::Start { user, .. } | Event::StartByText { user, .. }, Ok(Reply::Entry(entry))) => {
                let live = self.tenant.live_entry(*user).map(|(e, _)| e);
                prop_assert_eq!(Some(entry), live, "the reply is the user's live entry");
                if ticked.live_entry(*user).is_some() {
                    prop_assert_eq!(&self.tenant, &ticked, "starting again changes nothing");
                }
            }
            (Event::Stop { .. } | Event::StopByText { .. }, Ok(Reply::Ended(entry))) => {
                prop_assert!(outcome.records.ended.contains(entry));
            }
            (Event::AdminStop { entry: named }, Ok(Reply::Ended(entry))) => {
                prop_assert!(outcome.records.ended.contains(entry));
                prop_assert_eq!(entry.id, *named, "the owner's stop ends the run it names, no other");
            }
            (Event::RemoveWaiting { .. }, Ok(Reply::Ended(entry))) => {
                prop_assert!(outcome.records.ended.contains(entry));
                // Time may end the active run first (its charge is in the records); the place taken
                // away charges nothing.
                prop_assert!(
                    outcome.records.ledger.iter().all(|l| l.entry_id != Some(entry.id) && l.user_id != entry.user_id),
                    "taking a place in line away charges nothing"
                );
                prop_assert_eq!(entry.status, EntryStatus::Cancelled);
            }
            _ => {}
        }
        self.check(&before, &outcome.records)?;
        Ok(outcome)
    }

    fn check(&mut self, before: &Tenant, records: &Records) -> Result<(), TestCaseError> {
        let t = &self.tenant;
        let now = self.now;

        // The queue: one active entry (RUNNING or HOLD), the rest WAITING, one live entry per user.
        if let Some(active) = &t.active {
            prop_assert!(matches!(active.status, EntryStatus::Running | EntryStatus::Hold), "{:?}", active.status);
            prop_assert_eq!(active.hold_reason.is_some(), active.status == EntryStatus::Hold);
            prop_assert!(active.started_at.is_some_and(|s| s >= active.created_at && s <= now));
            prop_assert!(self.last_run_end.is_none_or(|end| active.started_at.unwrap() >= end));
            if before.active.as_ref().is_none_or(|b| b.id != active.id) {
                prop_assert!(t.wallet(active.user_id) > 0, "a run started with no minutes");
            }
            let running = active.running_ms_at(now);
            prop_assert!(running <= self.good_ms(active.started_at.unwrap(), now), "charging outside good conditions");
        } else {
            prop_assert!(t.waiting.is_empty(), "a line with nobody running");
        }
        prop_assert!(t.waiting.iter().all(|e| e.status == EntryStatus::Waiting && e.started_at.is_none()));
        prop_assert!(
            !t.suspended || (t.active.is_none() && t.waiting.is_empty()),
            "a suspended tenant with live entries"
        );
        let live: Vec<_> = t.active.as_deref().into_iter().chain(&t.waiting).collect();
        let live_users: HashSet<_> = live.iter().map(|e| e.user_id).collect();
        prop_assert_eq!(live_users.len(), live.len(), "a user with two live entries");

        // Time has caught up: nothing is overdue after an apply.
        prop_assert!(
            t.next_deadline().is_none_or(|d| d > now),
            "overdue deadline {:?} at {:?}",
            t.next_deadline(),
            now
        );

        // The device command's sequence moves exactly when the command does.
        let command_changed = before.motor_state() != t.motor_state();
        prop_assert_eq!(t.seq, before.seq + u64::from(command_changed));

        // Ended entries: each ends once, never comes back.
        for entry in &records.ended {
            prop_assert!(matches!(entry.status, EntryStatus::Completed | EntryStatus::Cancelled));
            prop_assert!(self.ended.insert(entry.id), "entry ended twice");
        }
        prop_assert!(live.iter().all(|e| !self.ended.contains(&e.id)), "an ended entry is live again");
        let completed = records.ended.iter().filter(|e| e.status == EntryStatus::Completed).count();
        prop_assert_eq!(completed, records.usage.len());

        // Usage rows: charged = running, running + held = the run's length, runs never overlap.
        for row in &records.usage {
            let entry = records.ended.iter().find(|e| e.id == row.entry_id).expect("a usage row's entry ended");
            prop_assert!(row.started_at >= entry.created_at && row.ended_at >= row.started_at);
            prop_assert!(self.last_run_end.is_none_or(|end| row.started_at >= end), "runs overlap");
            self.last_run_end = Some(row.ended_at);
            let length = row.ended_at - row.started_at;
            prop_assert_eq!(entry.running_ms + entry.held_ms, length);
            let counted = (row.running_seconds + row.held_seconds) * 1000;
            prop_assert!(counted <= length && length - counted < 2000, "{:?}", row);
            prop_assert_eq!(row.charged_seconds, row.running_seconds);
            prop_assert_eq!(row.running_seconds, entry.running_ms / 1000);
            prop_assert_eq!(Some(row.charged_seconds), entry.charged_seconds);
            prop_assert!(
                entry.running_ms <= self.good_ms(row.started_at, row.ended_at),
                "charged outside good conditions"
            );
            let charges: Vec<_> = records
                .ledger
                .iter()
                .filter(|l| l.kind == LedgerKind::RunCharge && l.entry_id == Some(row.entry_id))
                .map(|l| (l.delta_seconds, l.balance_after))
                .collect();
            let expected = if row.charged_seconds > 0 { vec![-row.charged_seconds] } else { vec![] };
            prop_assert_eq!(charges.iter().map(|c| c.0).collect::<Vec<_>>(), expected);
            match row.end_reason {
                EndReason::BalanceExhausted => {
                    prop_assert!(charges.iter().all(|c| c.1 == 0), "exhausted but left over")
                }
                EndReason::RequestedMinutesUsed => prop_assert_eq!(Some(row.charged_seconds), entry.requested_seconds),
                _ => {}
            }
        }

        // Minutes: balance = sum of the ledger, nothing negative.
        for l in &records.ledger {
            let sum = self.ledger_sum.entry(l.user_id).or_insert(0);
            *sum += l.delta_seconds;
            prop_assert_eq!(l.balance_after, *sum);
        }
        for &user in &self.users {
            prop_assert_eq!(t.wallet(user), self.ledger_sum.get(&user).copied().unwrap_or(0));
            prop_assert!(t.wallet(user) >= 0 && t.available_seconds(user, now) >= 0);
        }
        prop_assert!(t.wallets.values().all(|&w| w >= 0));
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn every_rule_holds_after_every_event((users, steps) in story()) {
        let mut h = Harness::new(users);
        for (op, dt) in &steps {
            h.step(op, *dt)?;
        }
    }

    #[test]
    fn one_late_tick_equals_ticks_at_each_deadline((users, steps) in story(), gap in 0i64..=20 * LEASE_MS) {
        let mut h = Harness::new(users);
        for (op, dt) in &steps {
            h.step(op, *dt)?;
        }
        let end = h.now + gap;
        let mut on_time = h.tenant.clone();
        let mut records = Records::default();
        while let Some(deadline) = on_time.next_deadline().filter(|&d| d <= end) {
            records.extend(on_time.apply(Event::Tick, deadline).records);
            prop_assert!(on_time.next_deadline().is_none_or(|next| next > deadline), "a tick at its deadline did nothing");
        }
        records.extend(on_time.apply(Event::Tick, end).records);
        let late = h.tenant.apply(Event::Tick, end).records;
        prop_assert_eq!(&h.tenant, &on_time);
        prop_assert_eq!((late.ledger, late.usage, late.ended), (records.ledger, records.usage, records.ended));
    }
}

#[path = "model/relay.rs"]
mod relay;

/// Metering follows the pump: with two boards (one the controller), restart protection, store
/// outages, a feedback input, boards that reboot and boards that say why their relay is open, no
/// run is ever charged for more time than some board could have had its relay ON
/// (`model::relay`), and every balance is still the sum of its ledger. A board told ON at its last
/// poll that says its relay is open (its own rule keeps it open, or it holds no command: it did
/// not take the ON) is not charged from then on, nor for anything since its last report when that
/// one said the relay was open too. A poll the engine calls quiet changes nothing but the last
/// poll.
mod metering {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use pumppilot_engine::{
        AdminId, Credit, DeviceId, DevicePoll, EntryId, EntryStatus, Event, LedgerKind, MotorRules, RelayOff, Tenant,
        Timestamp, UserId,
    };
    use uuid::Uuid;

    use super::{ADMIN, LEASE_MS, T0, relay::RelayModel};

    #[derive(Debug, Clone)]
    pub enum Step {
        Start(usize),
        Stop(usize),
        Poll { board: usize, load_shedding: bool, ready: bool, relay: bool, feedback: Option<bool>, why: usize },
        Reboot { board: usize, share: i64 },
        StoreOutage,
        Controller(Option<usize>),
        Tick,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            3 => (0usize..3).prop_map(Step::Start),
            2 => (0usize..3).prop_map(Step::Stop),
            // `why`: with the relay open, the board says nothing of why (an older board), or
            // one of `WHY`.
            8 => (0usize..2, prop::bool::weighted(0.2), prop::bool::weighted(0.9), any::<bool>(),
                  prop_oneof![4 => Just(None), 2 => Just(Some(true)), 1 => Just(Some(false))], 0usize..=WHY.len())
                .prop_map(|(board, load_shedding, ready, relay, feedback, why)| Step::Poll { board, load_shedding, ready, relay, feedback, why }),
            // The board booted since the step before (`share` percent of the time since it, ago)
            // and reports it, its relay open and no answer taken since.
            1 => (0usize..2, 0i64..=100).prop_map(|(board, share)| Step::Reboot { board, share }),
            1 => Just(Step::StoreOutage),
            1 => prop::option::of(0usize..2).prop_map(Step::Controller),
            2 => Just(Step::Tick),
        ]
    }

    /// What a board that says why its relay is open may say (`Step::Poll::why` 1 and up).
    const WHY: [RelayOff; 3] = [RelayOff::NoCommand, RelayOff::RestartWait, RelayOff::GridSettling];

    /// A board's last poll the engine applied as the controller's: when, whether it said the relay
    /// was closed, the run then active and what it had been charged by then, and whether the
    /// answer told the board ON for it.
    #[derive(Debug, Clone, Copy)]
    struct Last {
        at: Timestamp,
        relay: bool,
        run: Option<(EntryId, i64)>,
        told_on: bool,
    }

    fn rules() -> impl Strategy<Value = MotorRules> {
        (prop_oneof![Just(0i64), Just(3_000), Just(60_000)], prop_oneof![Just(0i64), Just(5_000)], 0u32..=4).prop_map(
            |(min_off_ms, grid_settle_ms, max_starts_per_hour)| MotorRules {
                min_off_ms,
                grid_settle_ms,
                max_starts_per_hour,
            },
        )
    }

    fn boards() -> [DeviceId; 2] {
        [DeviceId(Uuid::from_u128(0xB0A1)), DeviceId(Uuid::from_u128(0xB0A2))]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn charged_time_never_exceeds_what_a_relay_could_have_run(
            rules in rules(),
            steps in prop::collection::vec((step(), prop_oneof![2 => Just(0i64), 3 => 1i64..2_000, 2 => 2_000i64..=2 * LEASE_MS]), 1..120),
        ) {
            let users: Vec<UserId> = (1..=3u128).map(|n| UserId(Uuid::from_u128(n))).collect();
            let boards = boards();
            let mut t = Tenant::new(AdminId(ADMIN), LEASE_MS);
            t.defaults = rules;
            let mut model = RelayModel::default();
            let mut ledger: BTreeMap<UserId, i64> = BTreeMap::new();
            let mut now = Timestamp(T0);
            for &user in &users {
                let credit = Credit::new(user, 400, LedgerKind::Recharge, ADMIN);
                let out = t.apply(Event::Credit(credit), now);
                for l in out.records.ledger { *ledger.entry(l.user_id).or_default() += l.delta_seconds; }
            }
            let mut last: BTreeMap<DeviceId, Last> = BTreeMap::new();
            for (step, dt) in steps {
                now = now + dt;
                let event = match step {
                    Step::Start(u) => Event::Start { user: users[u], requested_minutes: None, entry_id: EntryId::new() },
                    Step::Stop(u) => Event::Stop { user: users[u] },
                    Step::Poll { board, load_shedding, ready, relay, feedback, why } => Event::Poll(DevicePoll {
                        device: boards[board], load_shedding, ready, relay, feedback, reset: None,
                        relay_off: WHY.get(why.wrapping_sub(1)).copied().filter(|_| !relay), uptime_ms: None,
                    }),
                    Step::Reboot { board, share } => {
                        let uptime_ms = dt * share / 100;
                        model.rebooted(boards[board], now - uptime_ms);
                        Event::Poll(DevicePoll {
                            reset: Some(pumppilot_engine::ResetReason::PowerOn),
                            uptime_ms: Some(uptime_ms as u64),
                            ..DevicePoll::ready(boards[board])
                        })
                    }
                    Step::StoreOutage => Event::StoreOutage,
                    Step::Controller(board) => Event::SetController { device: board.map(|b| boards[b]) },
                    Step::Tick => Event::Tick,
                };
                // Time first: the run as this event finds it.
                let mut caught_up = t.clone();
                caught_up.apply(Event::Tick, now);
                let running = |t: &Tenant| t.active.as_ref().filter(|e| e.status == EntryStatus::Running).map(|e| e.id);
                let charging = |t: &Tenant| t.active.as_ref().is_some_and(|e| e.status == EntryStatus::Running && e.phase_since.is_some());
                // Told ON at its last poll, for the run still RUNNING: that board's report now carries
                // the ON's effect.
                let told = match &event {
                    Event::Poll(poll) => last.get(&poll.device).filter(|l| {
                        l.told_on && caught_up.controller == Some(poll.device) && l.run.map(|r| r.0) == running(&caught_up)
                    }).copied(),
                    _ => None,
                };
                // A quiet poll is only touched (the timer does what time alone does). Not after a
                // store outage: the runtime applies the first poll after one with the outage.
                let after_outage = t.active.as_ref().is_some_and(|e| e.hold_reason == Some(pumppilot_engine::HoldReason::StoreUnavailable));
                let quiet = matches!(&event, Event::Poll(poll) if !after_outage && t.is_quiet_poll(poll, now));
                let mut touched = caught_up.clone();
                if let Event::Poll(poll) = &event && t.controller == Some(poll.device) {
                    touched.touch(now);
                }
                let out = t.apply(event.clone(), now);
                if quiet {
                    prop_assert_eq!(&t, &touched, "a quiet poll changes nothing but the last poll");
                }
                // A board without a command is marked only while the run waits for it.
                let waits = t.active.as_ref().is_some_and(|e| e.status == EntryStatus::Running && e.phase_since.is_none());
                prop_assert!(t.device.without_command_since.is_none() || waits, "marked with no run waiting for the board");
                match event {
                    Event::Poll(poll) => {
                        let answer = t.poll_answer_for(poll.device, now, 1000);
                        model.heard(poll.device, &answer, now);
                        if let Some(told) = told.filter(|_| !poll.relay && poll.relay_off.is_some()) {
                            prop_assert!(!charging(&t), "charging after {:?} although told ON at {:?}", poll.relay_off, told.at);
                            if let (false, Some((run, charged))) = (told.relay, told.run) {
                                let active = t.active.as_ref().filter(|e| e.id == run).expect("the same run");
                                prop_assert_eq!(active.running_ms_at(now), charged, "charged since {:?}, when the relay was open", told.at);
                            }
                        }
                        if t.controller == Some(poll.device) {
                            let run = t.active.as_ref().map(|e| (e.id, e.running_ms_at(now)));
                            let told_on = answer.motor == pumppilot_engine::Motor::On;
                            last.insert(poll.device, Last { at: now, relay: poll.relay, run, told_on });
                        } else {
                            last.remove(&poll.device);
                        }
                    }
                    Event::StoreOutage => model.all_off(now),
                    _ => {}
                }
                // A run held or ended since a board's last poll: that board was told ON for no run
                // now RUNNING (its next answer tells it afresh).
                let now_running = running(&t);
                for l in last.values_mut() {
                    if l.run.map(|r| r.0) != now_running {
                        l.told_on = false;
                    }
                }
                for l in &out.records.ledger { *ledger.entry(l.user_id).or_default() += l.delta_seconds; }
                for row in &out.records.usage {
                    let entry = out.records.ended.iter().find(|e| e.id == row.entry_id).expect("ended");
                    let possible = model.possible_ms(row.started_at, row.ended_at);
                    prop_assert!(entry.running_ms <= possible, "charged {} ms, a relay could run {} ms: {:?}", entry.running_ms, possible, row);
                    prop_assert_eq!(entry.running_ms + entry.held_ms, row.ended_at - row.started_at);
                }
                if let Some(active) = &t.active {
                    let possible = model.possible_ms(active.started_at.unwrap(), now);
                    prop_assert!(active.running_ms_at(now) <= possible, "charging {} ms of {} possible", active.running_ms_at(now), possible);
                }
                for &user in &users {
                    prop_assert_eq!(t.wallet(user), ledger.get(&user).copied().unwrap_or(0), "balance = ledger");
                }
                let hour_starts = |at: Timestamp| t.motor.starts.iter().filter(|s| **s + pumppilot_engine::HOUR_MS > at).count();
                if rules.max_starts_per_hour > 0 {
                    prop_assert!(hour_starts(now) <= rules.max_starts_per_hour as usize, "starts cap");
                }
            }
        }
    }
}
