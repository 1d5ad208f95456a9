//! Field safety in fake time: restart protection, one controller per pump, metering that follows
//! what the device was told, store outages and the feedback input.

use pumppilot_engine::{
    AdminId, Credit, DeviceId, DevicePoll, EntryId, EntryStatus, Event, HoldReason, LedgerKind, Motor, MotorRules,
    MotorState, Outcome, RelayOff, ResetReason, Tenant, Timestamp, UserId,
};
use uuid::Uuid;

const ADMIN: UserId = UserId(Uuid::from_u128(0xAD));
const A: UserId = UserId(Uuid::from_u128(0xA));
const B: UserId = UserId(Uuid::from_u128(0xB));
const BOARD: DeviceId = DeviceId(Uuid::from_u128(0xD1));
const SPARE: DeviceId = DeviceId(Uuid::from_u128(0xD2));
const LEASE_SECS: i64 = 3600;
const T0: i64 = 1_700_000_000_000;

fn at(seconds: i64) -> Timestamp {
    Timestamp(T0 + seconds * 1000)
}

/// A pump with these restart rules, A and B holding 10,000 s each, and its board polled at t0.
fn pump(rules: MotorRules) -> Tenant {
    let mut t = Tenant::new(AdminId(ADMIN), LEASE_SECS * 1000);
    t.defaults = rules;
    for user in [A, B] {
        let credit = Credit::new(user, 10_000, LedgerKind::Recharge, ADMIN);
        t.apply(Event::Credit(credit), at(0)).reply.expect("recharge");
    }
    t.apply(poll(BOARD, false), at(0));
    t
}

fn rules(min_off_secs: i64, settle_secs: i64, starts: u32) -> MotorRules {
    MotorRules { min_off_ms: min_off_secs * 1000, grid_settle_ms: settle_secs * 1000, max_starts_per_hour: starts }
}

fn poll(device: DeviceId, load_shedding: bool) -> Event {
    Event::Poll(DevicePoll {
        device,
        load_shedding,
        ready: true,
        relay: false,
        feedback: None,
        reset: None,
        relay_off: None,
        uptime_ms: None,
    })
}

fn start(user: UserId) -> Event {
    Event::Start { user, requested_minutes: None, entry_id: EntryId::new() }
}

fn stop(user: UserId) -> Event {
    Event::Stop { user }
}

fn state(t: &Tenant) -> (MotorState, Option<HoldReason>) {
    t.motor_state()
}

fn charged(outcome: &Outcome) -> (i64, i64) {
    let row = &outcome.records.usage[0];
    (row.charged_seconds, row.held_seconds)
}

#[test]
fn a_run_is_charged_from_the_poll_that_tells_the_device() {
    let mut t = pump(MotorRules::NONE);
    t.apply(start(A), at(10));
    assert_eq!(state(&t), (MotorState::Running, None));
    assert_eq!(t.remaining_seconds(at(14)), Some(10_000), "nothing charged before the device hears");
    assert!(!t.is_quiet_report(false, true, false, at(14)), "the poll that tells it must be applied");
    t.apply(poll(BOARD, false), at(14));
    assert_eq!(t.poll_answer(at(14), 5000).motor, Motor::On);
    let out = t.apply(stop(A), at(100));
    assert_eq!(charged(&out), (86, 4), "charged from 14 s; the 4 s before count as held");
}

#[test]
fn a_run_the_device_never_hears_of_is_never_charged() {
    let mut t = pump(MotorRules::NONE);
    t.device.lease_ms = 10_000;
    t.apply(start(A), at(5));
    t.apply(Event::Tick, at(30));
    assert_eq!(state(&t), (MotorState::Hold, Some(HoldReason::DeviceOffline)));
    let out = t.apply(stop(A), at(40));
    assert_eq!(charged(&out), (0, 35));
    assert_eq!(t.wallet(A), 10_000);
}

#[test]
fn the_motor_stays_off_for_the_minimum_off_time_and_the_wait_is_not_charged() {
    let mut t = pump(rules(60, 0, 0));
    t.apply(start(A), at(0));
    t.apply(poll(BOARD, false), at(0));
    t.apply(stop(A), at(30));
    t.apply(start(B), at(40));
    assert_eq!(state(&t), (MotorState::Hold, Some(HoldReason::RestartWait)));
    assert_eq!(t.restart_wait_until(), Some(at(90)), "60 s after the motor went OFF at 30 s");
    assert_eq!(t.next_deadline(), Some(at(90)));
    assert_eq!(t.poll_answer(at(50), 5000).min_off_ms, 60_000);
    t.apply(poll(BOARD, false), at(50));
    assert_eq!(state(&t), (MotorState::Hold, Some(HoldReason::RestartWait)), "a poll does not cut the wait");
    t.apply(Event::Tick, at(90));
    assert_eq!(state(&t), (MotorState::Running, None), "the wait ends by itself");
    t.apply(poll(BOARD, false), at(92));
    let out = t.apply(stop(B), at(100));
    assert_eq!(charged(&out), (8, 52), "the wait and the time until the device heard are held");
}

#[test]
fn a_handover_without_the_motor_stopping_is_not_a_start() {
    let mut t = pump(rules(60, 0, 1));
    t.apply(start(A), at(0));
    t.apply(poll(BOARD, false), at(0));
    t.apply(start(B), at(1));
    t.apply(stop(A), at(30));
    assert_eq!(state(&t), (MotorState::Running, None), "B runs at once: the motor never stopped");
    assert_eq!(t.motor.starts, [at(0)]);
    let out = t.apply(stop(B), at(50));
    assert_eq!(charged(&out), (20, 0), "charged from the handover");
}

#[test]
fn after_load_shedding_the_grid_settles_before_the_motor_starts() {
    let mut t = pump(rules(0, 60, 0));
    t.apply(start(A), at(0));
    t.apply(poll(BOARD, false), at(0));
    t.apply(poll(BOARD, true), at(10));
    assert_eq!(state(&t), (MotorState::Hold, Some(HoldReason::LoadShedding)));
    t.apply(poll(BOARD, false), at(20));
    assert_eq!(state(&t), (MotorState::Hold, Some(HoldReason::GridSettling)));
    assert_eq!(t.restart_wait_until(), Some(at(80)));
    t.apply(poll(BOARD, true), at(30));
    t.apply(poll(BOARD, false), at(40));
    assert_eq!(t.restart_wait_until(), Some(at(100)), "a new cut starts the settle time again");
    t.apply(Event::Tick, at(100));
    t.apply(poll(BOARD, false), at(101));
    assert_eq!(t.poll_answer(at(101), 5000).motor, Motor::On);
    let out = t.apply(stop(A), at(111));
    assert_eq!(charged(&out).0, 20, "10 s before the cut and 10 s after the device heard");
}

#[test]
fn a_board_back_from_a_power_cut_waits_for_the_grid_to_settle() {
    let mut t = pump(rules(0, 60, 0));
    let back = DevicePoll {
        device: BOARD,
        load_shedding: false,
        ready: true,
        relay: false,
        feedback: None,
        reset: Some(ResetReason::PowerOn),
        relay_off: None,
        uptime_ms: None,
    };
    assert!(!t.is_quiet_poll(&back, at(5)));
    t.apply(Event::Poll(back), at(5));
    t.apply(start(A), at(10));
    assert_eq!(state(&t), (MotorState::Hold, Some(HoldReason::GridSettling)));
    assert_eq!(t.restart_wait_until(), Some(at(65)));
    let watchdog = DevicePoll { reset: Some(ResetReason::Watchdog), ..back };
    let mut other = pump(rules(0, 60, 0));
    other.apply(Event::Poll(watchdog), at(5));
    other.apply(start(A), at(10));
    assert_eq!(state(&other), (MotorState::Running, None), "a watchdog reset is not a power cut");
}

/// Found by the alerts audit: the firmware says why it booted in every poll until an answer
/// reaches it, and each POWER_ON or BROWN_OUT said again started the grid's settle time again, so
/// a weak network kept a farmer's run waiting long after the power had settled. The board's
/// uptime tells a repeat of the same boot from a new one: a new boot waits the whole settle time
/// from its first report, and a repeat neither extends nor shortens it.
#[test]
fn only_a_new_boot_starts_the_grid_settle_again_and_a_repeated_report_of_one_does_not_extend_it() {
    let mut t = pump(rules(0, 60, 0));
    let board = |reset, uptime_s: u64| {
        Event::Poll(DevicePoll { reset, uptime_ms: Some(uptime_s * 1000), ..DevicePoll::ready(BOARD) })
    };
    let off_until = |t: &mut Tenant, until: i64| {
        for second in [until - 30, until - 1] {
            t.apply(Event::Tick, at(second));
            assert_eq!(state(t), (MotorState::Hold, Some(HoldReason::GridSettling)), "at {second} s");
            assert_eq!(t.poll_answer(at(second), 5000).motor, Motor::Off, "at {second} s");
        }
        t.apply(Event::Tick, at(until));
        assert_eq!(state(t), (MotorState::Running, None), "at {until} s");
    };
    t.apply(board(None, 900), at(100));
    // A power cut: the board boots and its first poll, 3 s after, says so.
    t.apply(board(Some(ResetReason::PowerOn), 3), at(200));
    t.apply(start(A), at(201));
    assert_eq!(t.restart_wait_until(), Some(at(260)));
    // The answers are lost on a weak network: the board says POWER_ON again and again, its uptime
    // reaching back past the poll before (5 s later up 8 s; 45 s later up 53 s).
    t.apply(board(Some(ResetReason::PowerOn), 8), at(205));
    t.apply(board(Some(ResetReason::PowerOn), 53), at(250));
    assert_eq!(t.restart_wait_until(), Some(at(260)), "the same boot: the wait is not extended");
    off_until(&mut t, 260);
    t.apply(board(None, 63), at(260));
    t.apply(stop(A), at(300));

    // A sag reboots the board: a new boot (up 2 s, its last poll 80 s ago) waits the whole
    // settle time again, from its first report; its repeats change nothing.
    t.apply(board(Some(ResetReason::BrownOut), 2), at(340));
    t.apply(start(B), at(341));
    assert_eq!(t.restart_wait_until(), Some(at(400)));
    t.apply(board(Some(ResetReason::BrownOut), 7), at(345));
    assert_eq!(t.restart_wait_until(), Some(at(400)));
    off_until(&mut t, 400);
    t.apply(stop(B), at(410));

    // A board silent for longer than it has been up (a long cut) has booted anew, whatever it says
    // again afterwards; a board that does not say its uptime has each report taken as a new boot.
    t.apply(board(Some(ResetReason::PowerOn), 50), at(600));
    t.apply(start(A), at(601));
    assert_eq!(t.restart_wait_until(), Some(at(660)));
    let unsaid = DevicePoll { reset: Some(ResetReason::PowerOn), ..DevicePoll::ready(BOARD) };
    t.apply(Event::Poll(unsaid), at(630));
    assert_eq!(t.restart_wait_until(), Some(at(690)), "without its uptime, taken as a new boot");
    off_until(&mut t, 690);
}

#[test]
fn no_more_starts_in_an_hour_than_the_motor_allows() {
    let mut t = pump(rules(0, 0, 2));
    for (on, off) in [(0, 10), (20, 30)] {
        t.apply(start(A), at(on));
        t.apply(poll(BOARD, false), at(on));
        t.apply(stop(A), at(off));
    }
    t.apply(start(A), at(40));
    assert_eq!(state(&t), (MotorState::Hold, Some(HoldReason::RestartWait)));
    assert_eq!(t.restart_wait_until(), Some(at(3600)), "the first start leaves the hour at 3600 s");
    t.apply(Event::Tick, at(3600));
    assert_eq!(state(&t), (MotorState::Running, None));
}

#[test]
fn only_the_controller_drives_the_run() {
    let mut t = pump(MotorRules::NONE);
    assert_eq!(t.controller, Some(BOARD), "the first device to poll");
    t.apply(start(A), at(1));
    t.apply(poll(BOARD, false), at(1));
    let spare = DevicePoll::ready(SPARE);
    let before = t.clone();
    assert!(t.is_quiet_poll(&spare, at(2)));
    let out = t.apply(Event::Poll(spare), at(2));
    assert!(!out.records.changed);
    assert_eq!(t, before, "a spare board's report changes nothing, not even the lease");
    let answer = t.poll_answer_for(SPARE, at(2), 5000);
    assert_eq!((answer.motor, answer.state), (Motor::Off, MotorState::Idle));
    assert_eq!(t.poll_answer_for(BOARD, at(2), 5000).motor, Motor::On);

    // The owner makes the spare the controller: the run holds until it reports.
    t.apply(Event::SetController { device: Some(SPARE) }, at(10));
    assert_eq!(state(&t), (MotorState::Hold, Some(HoldReason::DeviceOffline)));
    t.apply(poll(BOARD, false), at(11));
    assert_eq!(state(&t), (MotorState::Hold, Some(HoldReason::DeviceOffline)), "the old board no longer counts");
    assert_eq!(t.poll_answer_for(BOARD, at(11), 5000).motor, Motor::Off);
    // Its first report is never quiet, although the old board's poll keeps the pump online: the
    // server must apply it, or the run would stay held.
    let first = DevicePoll::ready(SPARE);
    assert!(t.device.online_at(at(12)) && !t.is_quiet_poll(&first, at(12)));
    t.apply(poll(SPARE, false), at(12));
    assert_eq!(t.poll_answer_for(SPARE, at(12), 5000).motor, Motor::On);
    let out = t.apply(stop(A), at(20));
    assert_eq!(charged(&out).0, 9 + 8);

    // Retiring the controller lets the next device to poll take over.
    t.apply(Event::RetireDevice { device: SPARE }, at(30));
    assert_eq!(t.controller, None);
    t.apply(poll(BOARD, false), at(31));
    assert_eq!(t.controller, Some(BOARD));
}

#[test]
fn a_store_outage_holds_the_run_from_its_moment() {
    let mut t = pump(rules(60, 0, 0));
    t.apply(start(A), at(0));
    t.apply(poll(BOARD, false), at(0));
    // The runtime applies the outage at the moment the store failed, then what came next.
    t.apply(Event::StoreOutage, at(30));
    assert_eq!(state(&t), (MotorState::Hold, Some(HoldReason::StoreUnavailable)));
    t.apply(poll(BOARD, false), at(50));
    assert_eq!(state(&t), (MotorState::Hold, Some(HoldReason::RestartWait)), "the motor was told OFF at 30 s");
    t.apply(Event::Tick, at(90));
    t.apply(poll(BOARD, false), at(91));
    let out = t.apply(stop(A), at(101));
    assert_eq!(charged(&out), (40, 61));
    let answer = Tenant::unavailable_answer(Some(&t), at(102), 5000, LEASE_SECS * 1000);
    assert_eq!((answer.motor, answer.hold_reason), (Motor::Off, Some(HoldReason::StoreUnavailable)));
    assert_ne!(answer.seq, t.seq, "a long-poll never waits on it");
}

#[test]
fn relay_on_without_feedback_holds_until_the_run_ends() {
    let mut t = pump(MotorRules::NONE);
    t.apply(start(A), at(0));
    t.apply(poll(BOARD, false), at(0));
    let closing = DevicePoll {
        device: BOARD,
        load_shedding: false,
        ready: true,
        relay: true,
        feedback: Some(false),
        reset: None,
        relay_off: None,
        uptime_ms: None,
    };
    t.apply(Event::Poll(closing), at(1));
    assert_eq!(state(&t), (MotorState::Running, None), "just closed: the motor may not be up yet");
    let running = DevicePoll { feedback: Some(true), ..closing };
    t.apply(Event::Poll(running), at(5));
    assert_eq!(state(&t), (MotorState::Running, None), "feedback confirms the motor runs");
    // Only the board knows how long its motor may take to confirm: a relay still closed without
    // feedback is the board's to judge (a slow motor, polls closer than its confirm time).
    let slow = DevicePoll { feedback: Some(false), ..running };
    t.apply(Event::Poll(slow), at(7));
    assert_eq!(state(&t), (MotorState::Running, None), "the board has not given up yet");
    let dead = DevicePoll { relay: false, relay_off: Some(RelayOff::NoFeedback), ..slow };
    assert!(!t.is_quiet_poll(&dead, at(10)));
    t.apply(Event::Poll(dead), at(10));
    assert_eq!(state(&t), (MotorState::Hold, Some(HoldReason::NoFeedback)));
    t.apply(poll(BOARD, false), at(20));
    assert_eq!(state(&t), (MotorState::Hold, Some(HoldReason::NoFeedback)), "someone must look at the motor");
    let out = t.apply(stop(A), at(30));
    assert_eq!(charged(&out), (10, 20));
    t.apply(start(A), at(31));
    t.apply(poll(BOARD, false), at(31));
    assert_eq!(state(&t), (MotorState::Running, None), "a new run tries again");
    assert_eq!(t.active.as_ref().map(|e| e.status), Some(EntryStatus::Running));
    // A board that gave up opens its relay itself and says so: relay OFF, no feedback, grid up.
    t.apply(Event::Poll(running), at(35));
    let gave_up = DevicePoll { relay: false, feedback: Some(false), ..running };
    t.apply(Event::Poll(gave_up), at(40));
    assert_eq!(state(&t), (MotorState::Hold, Some(HoldReason::NoFeedback)));
}

/// A poll of BOARD with the relay as given and the reason the board gives for an open relay.
fn says(relay: bool, feedback: Option<bool>, relay_off: Option<RelayOff>) -> Event {
    Event::Poll(DevicePoll {
        device: BOARD,
        load_shedding: false,
        ready: true,
        relay,
        feedback,
        reset: None,
        relay_off,
        uptime_ms: None,
    })
}

/// Found by the fault campaign: the board counts restart protection from its relay opening, the
/// engine from its command, so after a lease that ran out on the board (or a reboot) the board may
/// hold an ON command and keep its relay open for a minute. It says so; nothing is charged until
/// it reports the relay closed.
#[test]
fn a_board_that_keeps_its_relay_open_by_its_own_rule_is_not_charged() {
    let mut t = pump(MotorRules::NONE);
    t.apply(start(A), at(0));
    t.apply(says(false, None, Some(RelayOff::NoCommand)), at(0));
    t.apply(says(true, None, None), at(1));
    // Its lease ran out on the board (the server's had not); now its minimum OFF time holds it.
    let waiting = DevicePoll {
        device: BOARD,
        load_shedding: false,
        ready: true,
        relay: false,
        feedback: None,
        reset: None,
        relay_off: Some(RelayOff::RestartWait),
        uptime_ms: None,
    };
    assert!(!t.is_quiet_poll(&waiting, at(20)));
    t.apply(Event::Poll(waiting), at(20));
    assert_eq!(state(&t), (MotorState::Running, None), "still told ON: the board closes when it may");
    assert_eq!(t.poll_answer(at(20), 5000).motor, Motor::On);
    t.apply(says(false, None, Some(RelayOff::GridSettling)), at(50));
    t.apply(says(true, None, None), at(80));
    let out = t.apply(stop(A), at(90));
    assert_eq!(charged(&out), (30, 60), "0–20 s and 80–90 s");
    // A board that holds no command (its answer was lost) is being told now: charged from then.
    t.apply(start(B), at(100));
    t.apply(says(false, None, Some(RelayOff::NoCommand)), at(100));
    let out = t.apply(stop(B), at(110));
    assert_eq!(charged(&out).0, 10);
}

/// The field engineer's case: the board's lease ends just before the server's, the relay drops,
/// and the next poll lands inside the server's lease with the feedback input OFF. The board says
/// its relay opened for want of a command: no NO_FEEDBACK.
#[test]
fn a_relay_opened_by_the_lease_is_not_a_motor_without_feedback() {
    let mut t = pump(MotorRules::NONE);
    t.apply(start(A), at(0));
    t.apply(says(false, Some(false), Some(RelayOff::NoCommand)), at(0));
    t.apply(says(true, Some(true), None), at(1));
    t.apply(says(false, Some(false), Some(RelayOff::NoCommand)), at(20));
    assert_eq!(state(&t), (MotorState::Running, None));
    t.apply(says(true, Some(true), None), at(21));
    // The same poll from a board that gave up on its motor.
    t.apply(says(false, Some(false), Some(RelayOff::NoFeedback)), at(30));
    assert_eq!(state(&t), (MotorState::Hold, Some(HoldReason::NoFeedback)));
}

/// A copy of the state that may be older than the store's answers only OFF: never ON, and not once
/// time alone would change it (a run's end, a lease).
#[test]
fn only_an_off_answer_may_come_from_an_older_state() {
    let mut t = pump(MotorRules::NONE);
    assert!(t.may_answer_from_older_state(BOARD, at(1)), "no run: OFF");
    t.apply(start(A), at(1)).reply.expect("start");
    assert_eq!(t.motor_command(), Motor::On);
    assert!(!t.may_answer_from_older_state(BOARD, at(2)), "ON is never answered from an older state");
    assert!(t.may_answer_from_older_state(SPARE, at(2)), "another device is answered OFF");
    t.apply(stop(A), at(3)).reply.expect("stop");
    assert!(t.may_answer_from_older_state(BOARD, at(4)));
    assert!(t.may_answer_from_older_state(BOARD, at(LEASE_SECS + 10)), "no run: nothing is due at any time");
    let mut held = pump(MotorRules::NONE);
    held.apply(start(A), at(1)).reply.expect("start");
    held.apply(says(false, None, Some(RelayOff::RestartWait)), at(2));
    assert_eq!(held.motor_command(), Motor::On, "told ON, relay held open by the board: still ON");
    assert!(!held.may_answer_from_older_state(BOARD, at(3)));
    let mut offline = pump(MotorRules::NONE);
    offline.apply(poll(BOARD, true), at(1));
    offline.apply(start(A), at(2)).reply.expect("start");
    assert_eq!(offline.motor_command(), Motor::Off, "held for load shedding: OFF");
    assert!(offline.may_answer_from_older_state(BOARD, at(3)));
    assert!(
        !offline.may_answer_from_older_state(BOARD, at(LEASE_SECS + 1)),
        "the lease ran out by then: a Tick would change the state first"
    );
}

/// Found by a review of the device's rules: a board that restarts as its motor starts (a sag at
/// the inrush, contactor noise) forgets its starts at every boot, and was told ON again after
/// each; the engine counts the starts and holds the run once the hour's cap is reached.
#[test]
fn a_board_that_restarts_as_its_motor_starts_cannot_start_it_past_the_hours_cap() {
    let mut t = pump(rules(60, 0, 3));
    let rebooted = Event::Poll(DevicePoll {
        device: BOARD,
        load_shedding: false,
        ready: true,
        relay: false,
        feedback: None,
        reset: Some(ResetReason::BrownOut),
        relay_off: Some(RelayOff::RestartWait),
        uptime_ms: None,
    });
    t.apply(start(A), at(0));
    t.apply(says(true, None, None), at(0));
    let mut now = 0;
    for _ in 0..2 {
        now += 5;
        t.apply(rebooted.clone(), at(now));
        // As the board does: its relay opened with the restart, and it rests its minimum OFF time.
        assert_eq!(state(&t), (MotorState::Hold, Some(HoldReason::RestartWait)));
        now += 60;
        t.apply(says(false, None, Some(RelayOff::NoCommand)), at(now));
        assert_eq!(state(&t), (MotorState::Running, None));
        assert_eq!(t.poll_answer(at(now), 5000).motor, Motor::On);
        t.apply(says(true, None, None), at(now + 1));
        now += 1;
    }
    // Three starts in the hour: after the next restart the run holds until the first leaves it.
    now += 5;
    t.apply(rebooted, at(now));
    now += 60;
    t.apply(says(false, None, Some(RelayOff::NoCommand)), at(now));
    assert_eq!(state(&t), (MotorState::Hold, Some(HoldReason::RestartWait)));
    assert_eq!(t.poll_answer(at(now), 5000).motor, Motor::Off);
    assert_eq!(t.restart_wait_until(), Some(at(3600)), "the first start leaves the hour at 3600 s");
}
