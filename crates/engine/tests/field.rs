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

/// A pump with these restart rules, A and B holding 10,000 s each, and its board polled a second
/// before t0 (a run started at the very moment of a poll counts as told by it).
fn pump(rules: MotorRules) -> Tenant {
    let mut t = Tenant::new(AdminId(ADMIN), LEASE_SECS * 1000);
    t.defaults = rules;
    for user in [A, B] {
        let credit = Credit::new(user, 10_000, LedgerKind::Recharge, ADMIN);
        t.apply(Event::Credit(credit), at(0)).reply.expect("recharge");
    }
    t.apply(poll(BOARD, false), at(-1));
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

/// A poll of BOARD that reports a boot: why it started, how long it has been up, its relay open
/// with no command since (a board that says why its relay is open says NO_COMMAND).
fn booted(reset: ResetReason, uptime_secs: u64, relay_off: Option<RelayOff>) -> DevicePoll {
    DevicePoll { reset: Some(reset), uptime_ms: Some(uptime_secs * 1000), relay_off, ..DevicePoll::ready(BOARD) }
}

/// Found by a review: a board that lost power under a charging run boots with its relay open and
/// says so at its first poll (POWER_ON, up 2 s, no command since), yet the run went on being
/// charged, and that poll was answered ON although the engine's own rule (the grid settles after a
/// power cut) kept the motor off. The charge ends at the boot; the answer is OFF.
#[test]
fn a_board_that_rebooted_under_a_charging_run_stops_the_charge_at_its_boot() {
    let mut t = pump(rules(60, 60, 6));
    t.apply(start(A), at(100));
    t.apply(says(false, None, Some(RelayOff::NoCommand)), at(100));
    t.apply(says(true, None, None), at(105));
    // The power blips at about 109 s; the board boots at 111 s and its first poll comes at 113 s.
    let boot = booted(ResetReason::PowerOn, 2, Some(RelayOff::NoCommand));
    assert!(!t.is_quiet_poll(&boot, at(113)));
    t.apply(Event::Poll(boot), at(113));
    assert_eq!(state(&t), (MotorState::Hold, Some(HoldReason::GridSettling)));
    assert_eq!(t.poll_answer(at(113), 5000).motor, Motor::Off, "the grid settles from the boot's report");
    assert_eq!(t.restart_wait_until(), Some(at(173)));
    assert_eq!(t.remaining_seconds(at(113)), Some(10_000 - 11), "the 2 s since the boot are given back");
    // The board keeps its relay open by its own rule and says so.
    t.apply(says(false, None, Some(RelayOff::GridSettling)), at(118));
    assert_eq!(state(&t), (MotorState::Hold, Some(HoldReason::GridSettling)));
    let out = t.apply(stop(A), at(119));
    assert_eq!(charged(&out), (11, 8), "100–111 s charged; the boot to the Stop held");
    assert_eq!(t.motor.starts, vec![at(100)]);
}

/// The same from a board that does not say why its relay is open (`relayOff` is optional): its
/// boot report alone stops the charge, and every later poll with the relay open keeps it stopped
/// until the grid has settled; the run is charged again from the poll that tells it ON.
#[test]
fn a_board_without_relay_off_is_not_charged_through_its_own_settle_time() {
    let mut t = pump(rules(60, 60, 6));
    t.apply(start(A), at(100));
    t.apply(poll(BOARD, false), at(100));
    t.apply(says(true, None, None), at(105));
    t.apply(Event::Poll(booted(ResetReason::PowerOn, 2, None)), at(113));
    for second in (118..173).step_by(5) {
        t.apply(poll(BOARD, false), at(second));
        assert_eq!(state(&t), (MotorState::Hold, Some(HoldReason::GridSettling)), "at {second} s");
        assert_eq!(t.poll_answer(at(second), 5000).motor, Motor::Off, "at {second} s");
    }
    t.apply(poll(BOARD, false), at(175));
    assert_eq!(t.poll_answer(at(175), 5000).motor, Motor::On);
    let out = t.apply(stop(A), at(185));
    assert_eq!(charged(&out), (11 + 10, 64), "100–111 s and 175–185 s");
    assert_eq!(t.motor.starts, vec![at(100), at(175)], "the boot stopped the motor: a start again");
}

/// A boot report where no run is charged changes nothing but what it always did (the grid's
/// settle time, the last poll): not with no run, not under a run that holds, not under a run whose
/// board has not been told yet.
#[test]
fn a_boot_report_without_a_charging_run_changes_nothing_else() {
    let mut t = pump(rules(60, 60, 6));
    let expected = |t: &Tenant, second: i64| {
        let mut expected = t.clone();
        expected.device.last_poll_at = Some(at(second));
        expected.motor.grid_up_since = Some(at(second));
        expected
    };
    let boot = booted(ResetReason::PowerOn, 2, Some(RelayOff::NoCommand));
    let idle = expected(&t, 10);
    let out = t.apply(Event::Poll(boot), at(10));
    assert_eq!(t, idle);
    assert!(out.records.usage.is_empty() && out.records.ledger.is_empty());
    assert_eq!(t.poll_answer(at(10), 5000).motor, Motor::Off);
    // A run held for load shedding: it holds on, its held time untouched.
    t.apply(start(A), at(100));
    t.apply(poll(BOARD, true), at(100));
    assert_eq!(state(&t), (MotorState::Hold, Some(HoldReason::LoadShedding)));
    let shedding = DevicePoll { load_shedding: true, ..boot };
    let held = expected(&t, 113);
    t.apply(Event::Poll(shedding), at(113));
    assert_eq!(t, held);
    t.apply(stop(A), at(120));
    // A run started a moment ago, not yet told: this poll's answer tells it, as any poll's would.
    let mut fresh = pump(MotorRules::NONE);
    fresh.apply(start(A), at(100));
    fresh.apply(Event::Poll(booted(ResetReason::Watchdog, 2, Some(RelayOff::NoCommand))), at(103));
    assert_eq!(fresh.poll_answer(at(103), 5000).motor, Motor::On);
    // A report of a boot with the relay closed (no board says so: it closes nothing before an
    // answer, and stops saying its reset with the first) is no proof of a stopped motor.
    fresh.apply(Event::Poll(DevicePoll { relay: true, ..booted(ResetReason::Watchdog, 1, None) }), at(105));
    assert_eq!(state(&fresh), (MotorState::Running, None));
    let out = fresh.apply(stop(A), at(110));
    assert_eq!(charged(&out), (7, 3), "charged from the poll that told it");
}

/// The board's uptime reaches back past its last poll that said the relay was closed (its clock
/// runs fast, or that report was late): the charge ends at that report, never before it. Also for
/// a board whose reset is not a power cut (a software restart), and whose report is not quiet
/// although it looks like the last one.
#[test]
fn a_boot_never_takes_back_time_a_report_said_the_relay_was_closed() {
    let mut t = pump(rules(60, 0, 6));
    t.apply(start(A), at(100));
    t.apply(says(false, None, Some(RelayOff::NoCommand)), at(100));
    t.apply(says(true, None, None), at(105));
    t.apply(Event::Poll(booted(ResetReason::PowerOn, 10, Some(RelayOff::NoCommand))), at(113));
    assert_eq!(state(&t), (MotorState::Hold, Some(HoldReason::RestartWait)));
    assert_eq!(t.restart_wait_until(), Some(at(165)), "the relay opened at 105 s at the earliest");
    let out = t.apply(stop(A), at(120));
    assert_eq!(charged(&out), (5, 15), "100–105 s: the report at 105 s said the relay was closed");

    // The board was told ON at 200 s and restarts itself at 209 s before it reports again (a
    // report since that said the relay open without a command would have stopped the charge
    // already: `an_on_the_board_never_takes_is_never_charged`).
    t.apply(start(B), at(200));
    t.apply(says(false, None, Some(RelayOff::NoCommand)), at(200));
    let restart = booted(ResetReason::Software, 1, Some(RelayOff::NoCommand));
    assert!(!t.is_quiet_poll(&restart, at(210)), "it stops a charge: it must be applied");
    t.apply(Event::Poll(restart), at(210));
    assert_eq!(state(&t), (MotorState::Hold, Some(HoldReason::RestartWait)));
    let out = t.apply(stop(B), at(215));
    assert_eq!(charged(&out), (9, 6), "200–209 s");
}

/// A board that has taken no answer since its boot says its reset again at every poll: an ON told
/// in the meantime never reached it. It is not charged, and it is no start of the motor.
#[test]
fn an_on_a_rebooted_board_never_took_is_neither_charged_nor_a_start() {
    let mut t = pump(rules(0, 0, 6));
    t.apply(start(A), at(0));
    t.apply(says(false, None, Some(RelayOff::NoCommand)), at(0));
    t.apply(says(true, None, None), at(1));
    t.apply(Event::Poll(booted(ResetReason::PowerOn, 2, Some(RelayOff::NoCommand))), at(12));
    assert_eq!(t.poll_answer(at(12), 5000).motor, Motor::On, "no protection to wait for: told ON at once");
    assert_eq!(t.remaining_seconds(at(16)), Some(10_000 - 10), "charged again only once its relay closes");
    // That answer is lost: the board says its boot again, up 7 s. It has not taken the ON told
    // at 12 s: told ON again, charged from the report of its relay closed.
    t.apply(Event::Poll(booted(ResetReason::PowerOn, 7, Some(RelayOff::NoCommand))), at(17));
    assert_eq!(t.poll_answer(at(17), 5000).motor, Motor::On);
    assert_eq!(t.remaining_seconds(at(17)), Some(10_000 - 10), "nothing since the boot is charged");
    t.apply(says(true, None, None), at(18));
    let out = t.apply(stop(A), at(30));
    assert_eq!(charged(&out), (10 + 12, 8), "0–10 s and 18–30 s");
    assert_eq!(t.motor.starts, vec![at(0), at(18)], "the ON told at 12 s started nothing");
}

/// A board with a feedback input but no `relayOff` that reboots reports its relay open and its
/// motor stopped: that is a boot, not a motor that failed to confirm (which holds until the run
/// ends).
#[test]
fn a_reboot_is_no_motor_without_feedback() {
    let mut t = pump(MotorRules::NONE);
    t.apply(start(A), at(0));
    t.apply(says(false, Some(false), None), at(0));
    t.apply(says(true, Some(true), None), at(5));
    let boot = DevicePoll { feedback: Some(false), ..booted(ResetReason::Watchdog, 1, None) };
    t.apply(Event::Poll(boot), at(10));
    assert_eq!(state(&t), (MotorState::Running, None), "told ON again, not held NO_FEEDBACK");
    t.apply(says(true, Some(true), None), at(11));
    let out = t.apply(stop(A), at(20));
    assert_eq!(charged(&out), (9 + 10, 1), "0–9 s and 10–20 s");
}

/// The board's first report after its boot may come after its lease ran out (WiFi is slow to come
/// back after a power cut): the run was held DEVICE_OFFLINE at the lease's end and charged up to
/// it. The boot still ends the charge at the boot; nothing charged before it is taken back.
#[test]
fn a_boot_reported_after_the_lease_ran_out_still_ends_the_charge_at_the_boot() {
    let short_lease = |rules: MotorRules| {
        let mut t = Tenant::new(AdminId(ADMIN), 15_000);
        t.defaults = rules;
        t.apply(Event::Credit(Credit::new(A, 10_000, LedgerKind::Recharge, ADMIN)), at(0)).reply.expect("recharge");
        t
    };
    let mut t = short_lease(rules(60, 60, 6));
    t.apply(start(A), at(100));
    t.apply(says(false, None, Some(RelayOff::NoCommand)), at(100));
    t.apply(says(true, None, None), at(105));
    // The power blips at 108 s; the board boots at 109 s and reports at 125 s, after its lease.
    t.apply(Event::Tick, at(120));
    assert_eq!(state(&t), (MotorState::Hold, Some(HoldReason::DeviceOffline)));
    t.apply(Event::Poll(booted(ResetReason::PowerOn, 16, Some(RelayOff::NoCommand))), at(125));
    assert_eq!(state(&t), (MotorState::Hold, Some(HoldReason::GridSettling)));
    assert_eq!(t.restart_wait_until(), Some(at(185)));
    let out = t.apply(stop(A), at(130));
    assert_eq!(charged(&out), (9, 21), "100–109 s");

    // Charging had stopped before the boot (the board kept its relay open by its own rule at
    // 205 s, and had since the ON at 200 s: nothing of it is charged): the boot takes nothing back.
    let mut u = short_lease(MotorRules::NONE);
    u.apply(start(A), at(200));
    u.apply(says(false, None, Some(RelayOff::NoCommand)), at(200));
    u.apply(says(false, None, Some(RelayOff::RestartWait)), at(205));
    assert_eq!(state(&u), (MotorState::Running, None), "told ON, not charged");
    u.apply(Event::Tick, at(220));
    assert_eq!(state(&u), (MotorState::Hold, Some(HoldReason::DeviceOffline)));
    u.apply(Event::Poll(booted(ResetReason::PowerOn, 10, Some(RelayOff::NoCommand))), at(225));
    assert_eq!(u.poll_answer(at(225), 5000).motor, Motor::On, "no protection to wait for");
    let out = u.apply(stop(A), at(230));
    assert_eq!(charged(&out), (5, 25), "from the poll that told it again");

    // A long power cut: the board boots after its lease ran out. When its relay opened before
    // that, nothing tells: the run stays charged up to the lease's end.
    t.apply(start(A), at(300));
    t.apply(says(false, None, Some(RelayOff::NoCommand)), at(300));
    t.apply(says(true, None, None), at(305));
    t.apply(Event::Tick, at(320));
    t.apply(Event::Poll(booted(ResetReason::PowerOn, 5, Some(RelayOff::NoCommand))), at(400));
    let out = t.apply(stop(A), at(410));
    assert_eq!(charged(&out), (20, 90), "300–320 s");
}

/// A pump as [`pump`] makes one, with a board lease of `lease_secs`.
fn pump_leased(rules: MotorRules, lease_secs: i64) -> Tenant {
    let mut t = pump(rules);
    t.device.lease_ms = lease_secs * 1000;
    t
}

/// The board says its relay is open for want of a command: it holds no usable ON.
fn no_command() -> Event {
    says(false, None, Some(RelayOff::NoCommand))
}

/// Found by a safety review (F1): a board whose answers never reach it usable (dropped, garbled
/// or forged on the farm's network) keeps reporting its relay open without a command, and the
/// whole run was charged with the motor never running (the review's host test: relay ON 0 ms,
/// run charged 596 s over ten minutes). Each such report after the answer that told the board ON
/// says the board has not taken it: nothing since that answer is charged, and the run waits to be
/// told again, its answer ON at every poll. The only slack is the first answer's, as for any
/// board: from the poll that tells it until its next report.
#[test]
fn an_on_the_board_never_takes_is_never_charged() {
    let mut t = pump(MotorRules::NONE);
    t.apply(start(A), at(2));
    let mut second = 3;
    while second <= 600 {
        let poll = DevicePoll { relay_off: Some(RelayOff::NoCommand), ..DevicePoll::ready(BOARD) };
        assert!(!t.is_quiet_poll(&poll, at(second)), "at {second} s");
        let out = t.apply(Event::Poll(poll), at(second));
        assert!(out.records.notices.is_empty(), "a moment's miss is no news (at {second} s)");
        assert_eq!(state(&t), (MotorState::Running, None), "at {second} s");
        assert_eq!(t.poll_answer(at(second), 5000).motor, Motor::On, "told ON again at {second} s");
        if second > 3 {
            assert_eq!(t.remaining_seconds(at(second + 4)), Some(10_000), "nothing charged at {second} s");
        }
        second += 5;
    }
    let out = t.apply(stop(A), at(601));
    assert_eq!(charged(&out), (0, 599), "the relay never closed");
    assert_eq!(t.wallet(A), 10_000);
    assert!(t.motor.starts.is_empty(), "an ON never taken is no start");

    // The slack: a Stop between the poll that first tells the board and its next report charges
    // that stretch, as for a board that takes the ON and closes its relay.
    t.apply(start(B), at(700));
    t.apply(no_command(), at(703));
    let out = t.apply(stop(B), at(706));
    assert_eq!(charged(&out), (3, 3));
}

/// The poll after the answer that told the board ON carries that answer's effect: a report of
/// the relay open without a command is no quiet poll while the run is charged, and it stops the
/// charge. An ON the board takes at the next poll is charged from the report of its relay
/// closed; the lost one cost no restart wait, and was no start.
#[test]
fn an_on_the_board_takes_at_the_next_poll_is_charged_from_then() {
    let mut t = pump(rules(60, 0, 6));
    t.apply(start(A), at(10));
    t.apply(no_command(), at(10));
    assert_eq!(t.motor.starts, vec![at(10)], "told ON at 10 s");
    // That answer is lost on the way; the board's next poll says it holds no command.
    let missed = DevicePoll { relay_off: Some(RelayOff::NoCommand), ..DevicePoll::ready(BOARD) };
    assert!(!t.is_quiet_poll(&missed, at(15)), "it stops a charge: it must be applied");
    let out = t.apply(Event::Poll(missed), at(15));
    assert!(out.records.changed);
    assert_eq!(state(&t), (MotorState::Running, None), "no rest to wait for: the motor never started");
    assert_eq!(t.poll_answer(at(15), 5000).motor, Motor::On);
    assert_eq!(t.remaining_seconds(at(16)), Some(10_000), "the 5 s since the ON are given back");
    // The board takes this answer, closes its relay and says so at once.
    t.apply(says(true, None, None), at(16));
    let out = t.apply(stop(A), at(40));
    assert_eq!(charged(&out), (24, 6), "16–40 s");
    assert_eq!(t.motor.starts, vec![at(16)], "the lost ON started nothing");
}

/// The board ran its motor, then the answers stopped reaching it (lost for half a minute): its
/// lease ran out, its relay opened, and it said so at once and at every poll after. The charge
/// stops with that report, the run waits to be told with its clock stopped (no hold, no notice),
/// and the time after the answers arrive again is charged from the report of the relay closed.
#[test]
fn answers_lost_for_a_while_charge_only_the_time_after() {
    let mut t = pump_leased(MotorRules::NONE, 15);
    t.apply(start(A), at(100));
    t.apply(no_command(), at(100));
    for second in [101, 105, 110] {
        t.apply(says(true, None, None), at(second));
    }
    // The answers to 110 s onwards are lost: the lease of the one to 105 s runs out at 120 s.
    t.apply(no_command(), at(120));
    assert_eq!(t.remaining_seconds(at(120)), Some(10_000 - 20), "100–120 s charged");
    for second in [125, 130, 135] {
        let out = t.apply(no_command(), at(second));
        assert!(out.records.notices.is_empty());
        assert_eq!(state(&t), (MotorState::Running, None));
        assert_eq!(t.poll_answer(at(second), 5000).motor, Motor::On);
        assert_eq!(t.remaining_seconds(at(second + 4)), Some(10_000 - 20), "nothing charged at {second} s");
    }
    // The answer to 140 s arrives: the board closes its relay and says so at once.
    t.apply(no_command(), at(140));
    t.apply(says(true, None, None), at(141));
    let out = t.apply(stop(A), at(150));
    assert_eq!(charged(&out), (20 + 9, 21), "100–120 s and 141–150 s");
    assert_eq!(t.motor.starts, vec![at(100), at(141)]);
}

/// The board's own restart protection can keep its relay open under an ON the engine allowed
/// (its input saw the grid drop and come back between reports, and settles from then). Nothing is
/// charged while it blocks: not from the answer until the board says why (it says so as soon as
/// the ON arrives), and not when, still waiting, it loses its command (an answer lost, its lease
/// run out) and says its relay is open for want of one. Charged from the report of the relay
/// closed.
#[test]
fn restart_protection_blocking_an_on_charges_nothing_while_it_blocks() {
    let mut t = pump_leased(rules(0, 60, 0), 15);
    t.apply(poll(BOARD, true), at(10));
    t.apply(poll(BOARD, false), at(20));
    t.apply(start(A), at(85));
    t.apply(no_command(), at(85));
    assert_eq!(t.poll_answer(at(85), 5000).motor, Motor::On, "the engine's settle time ended at 80 s");
    // The ON arrives; the board's grid settles until 144 s, and it says so at once.
    let blocked = DevicePoll { relay_off: Some(RelayOff::GridSettling), ..DevicePoll::ready(BOARD) };
    assert!(!t.is_quiet_poll(&blocked, at(86)));
    t.apply(Event::Poll(blocked), at(86));
    assert_eq!(t.remaining_seconds(at(86)), Some(10_000), "85–86 s: the relay did not close");
    for second in [91, 96] {
        t.apply(Event::Poll(blocked), at(second));
    }
    // The answers to 96 s and 101 s are lost: the lease of the one to 91 s runs out at 106 s.
    t.apply(no_command(), at(106));
    assert_eq!(state(&t), (MotorState::Running, None));
    assert_eq!(t.poll_answer(at(106), 5000).motor, Motor::On);
    assert_eq!(t.remaining_seconds(at(110)), Some(10_000), "told ON before: not charged again");
    t.apply(Event::Poll(blocked), at(107));
    for second in (112..144).step_by(5) {
        t.apply(Event::Poll(blocked), at(second));
        assert_eq!(t.remaining_seconds(at(second)), Some(10_000), "at {second} s");
    }
    t.apply(says(true, None, None), at(144));
    let out = t.apply(stop(A), at(150));
    assert_eq!(charged(&out), (6, 59), "144–150 s");

    // The server's own restart protection: B is told ON as A's minimum OFF time ends on the
    // engine's count, the board's (from its relay opening a moment later) blocks it, and the
    // engine then counts its own rest from that report: nothing charged meanwhile.
    let mut u = pump(rules(60, 0, 0));
    u.apply(start(A), at(0));
    u.apply(no_command(), at(0));
    u.apply(says(true, None, None), at(1));
    u.apply(stop(A), at(30));
    u.apply(start(B), at(40));
    u.apply(Event::Tick, at(90));
    u.apply(no_command(), at(90));
    assert_eq!(u.poll_answer(at(90), 5000).motor, Motor::On);
    u.apply(says(false, None, Some(RelayOff::RestartWait)), at(91));
    assert_eq!(state(&u), (MotorState::Hold, Some(HoldReason::RestartWait)));
    assert_eq!(u.remaining_seconds(at(91)), Some(10_000), "90–91 s: the relay did not close");
    u.apply(Event::Tick, at(151));
    u.apply(no_command(), at(151));
    u.apply(says(true, None, None), at(152));
    let out = u.apply(stop(B), at(160));
    assert_eq!(charged(&out), (9, 111), "151–160 s");
}

/// A board whose commands never reach it usable (answers lost or forged on the way, a broken MQTT
/// path, its clock or lease broken) keeps its pump RUNNING and its motor off, and its owner must
/// hear of it: the pump keeps since when the board has said, at every poll since an answer told it
/// ON, that it holds no command. A report of anything else (the relay closed, or an ON held and
/// the relay kept open by the board's own rule), or a run that no longer waits for the board,
/// clears it; and each such change is committed.
#[test]
fn a_board_that_keeps_saying_it_has_no_command_is_marked_from_its_first_miss() {
    let mut t = pump_leased(MotorRules::NONE, 15);
    t.apply(start(A), at(2));
    // The poll whose answer tells it ON: no miss yet, as for any board.
    t.apply(no_command(), at(3));
    assert_eq!(t.device.without_command_since, None);
    for second in [8, 13, 18] {
        t.apply(no_command(), at(second));
        assert_eq!(t.device.without_command_since, Some(at(8)), "from its first miss, at {second} s");
    }
    // It takes the ON at last and closes its relay.
    t.apply(says(true, None, None), at(19));
    assert_eq!(t.device.without_command_since, None);
    // Lost again: a new spell, from its first report.
    t.apply(no_command(), at(24));
    assert_eq!(t.device.without_command_since, Some(at(24)));
    // It holds the ON but keeps its relay open by its own rule: the command reached it.
    let out = t.apply(says(false, None, Some(RelayOff::RestartWait)), at(25));
    assert!(out.records.changed, "the change is committed");
    assert_eq!(t.device.without_command_since, None);
    // Without a command once more, with the run already waiting for it (nothing else changes).
    let out = t.apply(no_command(), at(29));
    assert!(out.records.changed, "the change is committed");
    assert_eq!(t.device.without_command_since, Some(at(29)));
    // The board falls silent: the run holds at its lease's end, and waits for no command.
    let out = t.apply(Event::Tick, at(45));
    assert_eq!(state(&t), (MotorState::Hold, Some(HoldReason::DeviceOffline)));
    assert!(out.records.changed);
    assert_eq!(t.device.without_command_since, None);

    // Back, told ON, without a command again; the run ends: nothing waits for the board.
    t.apply(no_command(), at(50));
    t.apply(no_command(), at(55));
    assert_eq!(t.device.without_command_since, Some(at(55)));
    t.apply(stop(A), at(56));
    assert_eq!(t.device.without_command_since, None);
    // Nor while the pump is idle: no ON was told.
    t.apply(no_command(), at(60));
    t.apply(no_command(), at(65));
    assert_eq!(t.device.without_command_since, None);
}

/// A board that has just booted lost its command to the boot, not on the way: its first report
/// is no miss. The same boot said again (the answer to it lost, its uptime reaching back past the
/// last poll) is one.
#[test]
fn a_board_that_just_booted_has_not_missed_a_command() {
    let mut t = pump(MotorRules::NONE);
    t.apply(start(A), at(100));
    t.apply(no_command(), at(100));
    t.apply(says(true, None, None), at(105));
    t.apply(Event::Poll(booted(ResetReason::PowerOn, 2, Some(RelayOff::NoCommand))), at(113));
    assert_eq!(state(&t), (MotorState::Running, None));
    assert_eq!(t.device.without_command_since, None, "a new boot");
    t.apply(Event::Poll(booted(ResetReason::PowerOn, 7, Some(RelayOff::NoCommand))), at(118));
    assert_eq!(t.device.without_command_since, Some(at(118)), "the same boot: the answer to it was lost");
}
