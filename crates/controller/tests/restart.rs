//! Restart protection and the feedback check, at their limits: the minimum OFF time (boot counts
//! as opening), the grid's settle time after load shedding, the starts-per-hour cap over a
//! sliding hour, a handover that is not a start, and a motor that never confirms. Exhaustive over
//! the three protections × the moment asked around each limit; the fault campaign
//! (`crates/fieldtest`) covers them under faults.

mod common;
use common::{AnswerAt, hold};
use pumppilot_controller::{Controller, Decision, FeedbackInput, Millis, OffReason, Settings};
use pumppilot_protocol::{Motor, MotorState, PollAnswer, ReaderState, RelayOff, ResetReason};

const HOUR: u64 = 3_600_000;

fn answer(on: bool, seq: u64, min_off_ms: u32, grid_settle_ms: u32, max_starts_per_hour: u8) -> Vec<u8> {
    serde_json::to_vec(&PollAnswer {
        motor: if on { Motor::On } else { Motor::Off },
        state: if on { MotorState::Running } else { MotorState::Idle },
        hold_reason: None,
        remaining_seconds: 600,
        poll_ms: 5_000,
        lease_ms: 15_000,
        seq,
        min_off_ms,
        grid_settle_ms,
        max_starts_per_hour,
    })
    .unwrap()
}

/// A device whose inputs (grid up, ready) have counted since 100 ms after boot.
fn settled_device(settings: Settings) -> Controller {
    let mut device = Controller::new(settings);
    hold(&mut device, 0, 100, 50, false, true);
    device
}

/// Keeps the inputs sampled (grid up, ready) every 50 ms from `from` to `to`, driving the relay.
fn run(device: &mut Controller, from: u64, to: u64) -> Decision {
    let mut at = from;
    let mut decision = device.drive(Millis(from));
    while at < to {
        at = (at + 50).min(to);
        device.sense(Millis(at), false, true);
        decision = device.drive(Millis(at));
    }
    decision
}

#[test]
fn boot_counts_as_opening_the_relay() {
    let mut device = settled_device(Settings::DEFAULT);
    device.answer_at(Millis(1_000), &answer(true, 1, 60_000, 0, 0)).unwrap();
    assert_eq!(device.drive(Millis(1_000)), Decision::Off(OffReason::MinOffTime));
    // A fresh answer every 5 s keeps the command; the relay closes 60 s after boot, not before.
    for at in (5_000..60_000).step_by(5_000) {
        device.answer_at(Millis(at), &answer(true, 1, 60_000, 0, 0)).unwrap();
        assert_eq!(device.drive(Millis(at)), Decision::Off(OffReason::MinOffTime), "at {at}");
    }
    device.answer_at(Millis(59_999), &answer(true, 1, 60_000, 0, 0)).unwrap();
    assert_eq!(device.drive(Millis(59_999)), Decision::Off(OffReason::MinOffTime));
    assert_eq!(device.drive(Millis(60_000)), Decision::On);
}

/// The report says why the relay is OFF: a device that holds an ON command and waits for its own
/// restart protection says so (the server charges nothing for it); one whose lease ran out holds
/// no command.
#[test]
fn the_report_says_why_the_relay_is_off() {
    let mut device = settled_device(Settings::DEFAULT);
    assert_eq!(device.report(Millis(500)).relay_off, Some(RelayOff::NoCommand));
    device.answer_at(Millis(1_000), &answer(true, 1, 60_000, 0, 0)).unwrap();
    run(&mut device, 1_000, 2_000);
    let report = device.report(Millis(2_000));
    assert_eq!((report.relay, report.relay_off), (false, Some(RelayOff::RestartWait)));
    device.answer_at(Millis(2_000), &answer(true, 1, 0, 60_000, 0)).unwrap();
    assert_eq!(device.report(Millis(2_000)).relay_off, Some(RelayOff::GridSettling));
    device.answer_at(Millis(61_000), &answer(true, 1, 0, 0, 0)).unwrap();
    assert_eq!(run(&mut device, 61_000, 62_000), Decision::On);
    let report = device.report(Millis(62_000));
    assert_eq!((report.relay, report.relay_off), (true, None));
    // The lease runs out: the relay opens for want of a command, not by the device's own rule.
    assert_eq!(run(&mut device, 62_000, 77_000), Decision::Off(OffReason::LeaseExpired));
    assert_eq!(device.report(Millis(77_000)).relay_off, Some(RelayOff::NoCommand));
    hold(&mut device, 77_050, 77_200, 50, true, true);
    assert_eq!(device.report(Millis(77_200)).relay_off, Some(RelayOff::NoCommand));
    device.answer_at(Millis(77_200), &answer(true, 2, 0, 0, 0)).unwrap();
    assert_eq!(device.report(Millis(77_200)).relay_off, Some(RelayOff::LoadShedding));
}

/// The three protections, each at 0 or 60 s / a cap, asked just before and at each limit.
#[test]
fn each_protection_holds_the_relay_exactly_until_its_limit() {
    let mut cases = 0;
    for min_off in [0u32, 60_000] {
        for settle in [0u32, 60_000] {
            for cap in [0u8, 1, 2] {
                // History: boot, one run 10 s..20 s (a start), then load shedding that ends (the
                // grid counts as up again) at 30 s.
                let mut device = settled_device(Settings::DEFAULT);
                device.answer_at(Millis(10_000), &answer(true, 1, 0, 0, 0)).unwrap();
                assert_eq!(device.drive(Millis(10_000)), Decision::On);
                device.answer_at(Millis(20_000), &answer(false, 2, 0, 0, 0)).unwrap();
                assert_eq!(device.drive(Millis(20_000)), Decision::Off(OffReason::CommandOff));
                hold(&mut device, 25_000, 25_100, 50, true, true);
                assert_eq!(device.drive(Millis(25_100)), Decision::Off(OffReason::CommandOff));
                hold(&mut device, 29_900, 30_000, 50, false, true);
                // From the relay opening (20 s), from the grid's return (30 s), from the start (10 s).
                let limits =
                    [20_000 + u64::from(min_off), 30_000 + u64::from(settle), if cap == 1 { 10_000 + HOUR } else { 0 }];
                let opens_at = limits.into_iter().max().unwrap().max(30_000);
                for ask in [opens_at - 1, opens_at] {
                    if ask < 30_000 {
                        continue;
                    }
                    let mut probe = device;
                    // Inputs sampled up to the moment asked, and a fresh ON answer then.
                    hold(&mut probe, 30_050, ask, 1_000, false, true);
                    probe.answer_at(Millis(ask), &answer(true, 3, min_off, settle, cap)).unwrap();
                    let decision = probe.drive(Millis(ask));
                    let expected = if ask >= opens_at {
                        Decision::On
                    } else if ask < limits[1] {
                        Decision::Off(OffReason::GridSettling)
                    } else if ask < limits[0] {
                        Decision::Off(OffReason::MinOffTime)
                    } else {
                        Decision::Off(OffReason::StartsPerHour)
                    };
                    assert_eq!(decision, expected, "minOff {min_off}, settle {settle}, cap {cap}, at {ask}");
                    cases += 1;
                }
            }
        }
    }
    assert!(cases >= 20, "{cases}");
}

#[test]
fn the_cap_counts_starts_in_a_sliding_hour() {
    let mut device = settled_device(Settings::DEFAULT);
    let start = |device: &mut Controller, at: u64, seq: u64| {
        device.answer_at(Millis(at), &answer(true, seq, 0, 0, 3)).unwrap();
        let decision = device.drive(Millis(at));
        device.answer_at(Millis(at + 1), &answer(false, seq + 1, 0, 0, 3)).unwrap();
        device.drive(Millis(at + 1));
        decision
    };
    assert_eq!(start(&mut device, 1_000, 1), Decision::On);
    assert_eq!(start(&mut device, 600_000, 3), Decision::On);
    assert_eq!(start(&mut device, 1_200_000, 5), Decision::On);
    // Three starts within the hour: the fourth waits until the first is an hour old.
    assert_eq!(start(&mut device, 3_600_000, 7), Decision::Off(OffReason::StartsPerHour));
    assert_eq!(start(&mut device, 3_600_999, 9), Decision::Off(OffReason::StartsPerHour));
    assert_eq!(start(&mut device, 3_601_000, 11), Decision::On);
    assert_eq!(start(&mut device, 3_700_000, 13), Decision::Off(OffReason::StartsPerHour));
}

#[test]
fn a_clock_that_goes_back_keeps_counting_only_the_last_hours_starts() {
    let start = |device: &mut Controller, at: u64, seq: u64| {
        run(device, at - 1_000, at);
        device.answer_at(Millis(at), &answer(true, seq, 0, 0, 3)).unwrap();
        let decision = device.drive(Millis(at));
        device.answer_at(Millis(at + 1), &answer(false, seq + 1, 0, 0, 3)).unwrap();
        device.drive(Millis(at + 1));
        decision
    };
    for (jump_at, held) in [(2 * HOUR, false), (1_300_000, true)] {
        let mut device = settled_device(Settings::DEFAULT);
        for (i, at) in [1_000, 600_000, 1_200_000].into_iter().enumerate() {
            assert_eq!(start(&mut device, at, 1 + 2 * i as u64), Decision::On);
        }
        run(&mut device, 1_200_001, jump_at);
        // The clock goes back to 10 min after boot (the first reading after the jump: 600,000);
        // the inputs settle again.
        let after = start(&mut device, 601_000, 101);
        if held {
            // The three starts were within the hour before the jump: they count as made then.
            assert_eq!(after, Decision::Off(OffReason::StartsPerHour));
            assert_eq!(start(&mut device, 600_000 + HOUR - 1, 103), Decision::Off(OffReason::StartsPerHour));
            assert_eq!(start(&mut device, 600_000 + HOUR + 1_000, 105), Decision::On);
        } else {
            // They were over an hour old: they no longer count, and the board starts.
            assert_eq!(after, Decision::On, "jump at {jump_at}");
        }
    }
}

#[test]
fn a_handover_is_not_a_start_and_a_closed_relay_stays_closed() {
    let mut device = settled_device(Settings::DEFAULT);
    device.answer_at(Millis(1_000), &answer(true, 1, 0, 0, 1)).unwrap();
    assert_eq!(device.drive(Millis(1_000)), Decision::On);
    // One farmer's run ends and the next one starts in the same answer (a new seq), with the
    // cap of one start per hour and a minimum OFF time: the relay never opened, so it stays ON.
    for (at, seq) in [(5_000, 2), (10_000, 3), (15_000, 4)] {
        device.answer_at(Millis(at), &answer(true, seq, 60_000, 60_000, 1)).unwrap();
        assert_eq!(run(&mut device, at, at + 4_000), Decision::On, "at {at}");
    }
    // Once it opens, the minimum OFF time and the cap apply.
    device.answer_at(Millis(20_000), &answer(false, 5, 60_000, 0, 1)).unwrap();
    assert_eq!(device.drive(Millis(20_000)), Decision::Off(OffReason::CommandOff));
    device.answer_at(Millis(90_000), &answer(true, 6, 60_000, 0, 1)).unwrap();
    assert_eq!(device.drive(Millis(90_000)), Decision::Off(OffReason::StartsPerHour));
}

#[test]
fn the_grid_must_settle_after_load_shedding_even_with_an_on_command() {
    let mut device = settled_device(Settings::DEFAULT);
    device.answer_at(Millis(200), &answer(true, 1, 0, 10_000, 0)).unwrap();
    // The grid has counted as up since 100 ms (boot): not yet 10 s.
    assert_eq!(device.drive(Millis(200)), Decision::Off(OffReason::GridSettling));
    assert_eq!(run(&mut device, 200, 10_100), Decision::On);
    // Load shedding: OFF at once; back after 3 s: the grid settles again for 10 s.
    hold(&mut device, 10_150, 10_250, 50, true, true);
    assert_eq!(device.drive(Millis(10_250)), Decision::Off(OffReason::LoadShedding));
    hold(&mut device, 13_000, 13_100, 50, false, true);
    device.answer_at(Millis(13_100), &answer(true, 1, 0, 10_000, 0)).unwrap();
    assert_eq!(run(&mut device, 13_100, 23_050), Decision::Off(OffReason::GridSettling));
    assert_eq!(run(&mut device, 23_050, 23_100), Decision::On);
}

#[test]
fn a_motor_that_never_confirms_is_switched_off_until_the_server_changes_its_command() {
    let settings =
        Settings { feedback: Some(FeedbackInput { active_high: true, confirm_ms: 5_000 }), ..Settings::DEFAULT };
    let mut device = settled_device(settings);
    device.answer_at(Millis(1_000), &answer(true, 1, 0, 0, 0)).unwrap();
    assert_eq!(device.drive(Millis(1_000)), Decision::On);
    // The feedback input stays low (motor not running): 5 s after closing, OFF.
    let mut at = 1_000;
    while at < 5_950 {
        at += 50;
        device.sense_feedback(Millis(at), false);
        assert_eq!(device.drive(Millis(at)), Decision::On, "at {at}");
    }
    device.sense_feedback(Millis(6_000), false);
    assert_eq!(device.drive(Millis(6_000)), Decision::Off(OffReason::NoFeedback));
    assert_eq!(device.report(Millis(6_000)).feedback, Some(false));
    // Still OFF under the same command, even a fresh one...
    device.answer_at(Millis(7_000), &answer(true, 1, 0, 0, 0)).unwrap();
    assert_eq!(device.drive(Millis(7_000)), Decision::Off(OffReason::NoFeedback));
    // ...until the server sends another (it held the run NO_FEEDBACK and resumed it).
    device.answer_at(Millis(8_000), &answer(true, 2, 0, 0, 0)).unwrap();
    assert_eq!(device.drive(Millis(8_000)), Decision::On);
    // A motor that confirms keeps the relay ON.
    for at in (8_050..20_000).step_by(50) {
        device.sense(Millis(at), false, true);
        device.sense_feedback(Millis(at), at > 9_000);
        if at % 5_000 == 0 {
            device.answer_at(Millis(at), &answer(true, 2, 0, 0, 0)).unwrap();
        }
        assert_eq!(device.drive(Millis(at)), Decision::On, "at {at}");
    }
    assert_eq!(device.report(Millis(20_000)).feedback, Some(true));
}

#[test]
fn the_first_reports_carry_the_reset_reason_and_the_reader() {
    let mut device = settled_device(Settings::DEFAULT);
    device.set_reset_reason(ResetReason::Watchdog);
    device.set_reader(ReaderState::Absent);
    let report = device.report(Millis(200));
    assert_eq!(
        (report.reset, report.reader, report.feedback),
        (Some(ResetReason::Watchdog), Some(ReaderState::Absent), None)
    );
    // Sent again until the server has answered once.
    assert_eq!(device.report(Millis(300)).reset, Some(ResetReason::Watchdog));
    device.answer_at(Millis(400), &answer(false, 1, 0, 0, 0)).unwrap();
    assert_eq!(device.report(Millis(500)).reset, None);
    // A reader that comes back is a change worth reporting at once.
    assert!(!device.report_now(Millis(500)));
    device.set_reader(ReaderState::Ok);
    assert!(device.report_now(Millis(500)));
}
