//! When to poll: jitter, backoff and its caps, and when a local change is worth a poll at once.

mod common;
use common::{AnswerAt, hold};
use pumppilot_controller::{AnswerError, Controller, Decision, Millis, OffReason, Settings};
use pumppilot_protocol::{Motor, MotorState, PollAnswer, RelayOff};

fn answer(motor: Motor, state: MotorState, poll_ms: u32, lease_ms: u32) -> Vec<u8> {
    let answer = PollAnswer {
        motor,
        state,
        hold_reason: None,
        remaining_seconds: 60,
        poll_ms,
        lease_ms,
        seq: 1,
        min_off_ms: 0,
        grid_settle_ms: 0,
        max_starts_per_hour: 0,
    };
    serde_json::to_vec(&answer).unwrap()
}

fn running(poll_ms: u32, lease_ms: u32) -> Vec<u8> {
    answer(Motor::On, MotorState::Running, poll_ms, lease_ms)
}

fn idle(poll_ms: u32, lease_ms: u32) -> Vec<u8> {
    answer(Motor::Off, MotorState::Idle, poll_ms, lease_ms)
}

/// Randoms that cover the whole range, both ends included.
fn randoms() -> impl Iterator<Item = u32> {
    (0..=20_000u32)
        .chain((0..=1_000u32).map(|i| u32::MAX - i))
        .chain((0..200u32).map(|i| i.wrapping_mul(2_654_435_761)))
}

fn range(device: &Controller) -> (u32, u32) {
    randoms().fold((u32::MAX, 0), |(lo, hi), r| {
        let next = device.next_poll_in(r);
        (lo.min(next), hi.max(next))
    })
}

#[test]
fn the_first_poll_comes_soon_after_boot() {
    let device = Controller::new(Settings::DEFAULT);
    assert_eq!(range(&device), (900, 1_100));
}

#[test]
fn poll_interval_is_the_servers_within_ten_percent() {
    for poll_ms in [1_000, 5_000, 6_800] {
        let mut device = Controller::new(Settings::DEFAULT);
        device.answer_at(Millis(0), &running(poll_ms, 15_000)).unwrap();
        assert_eq!(range(&device), (poll_ms - poll_ms / 10, poll_ms + poll_ms / 10), "pollMs {poll_ms}");
        // Spread over the whole band, not stuck at one end.
        let distinct: std::collections::BTreeSet<u32> = randoms().map(|r| device.next_poll_in(r)).collect();
        assert!(distinct.len() > 100, "{}", distinct.len());
    }
}

#[test]
fn a_slow_poll_interval_is_cut_to_half_the_lease_while_a_run_may_be_active() {
    let mut device = Controller::new(Settings::DEFAULT);
    device.answer_at(Millis(0), &running(60_000, 15_000)).unwrap();
    assert_eq!(range(&device).1, 7_500);
    device.answer_at(Millis(1), &answer(Motor::Off, MotorState::Hold, 60_000, 15_000)).unwrap();
    assert_eq!(range(&device).1, 7_500);
    // Nothing active: the server's interval stands.
    device.answer_at(Millis(2), &idle(60_000, 15_000)).unwrap();
    assert_eq!(range(&device), (54_000, 66_000));
}

#[test]
fn a_tiny_poll_interval_is_raised_to_the_minimum() {
    let mut device = Controller::new(Settings::DEFAULT);
    device.answer_at(Millis(0), &idle(0, 15_000)).unwrap();
    assert_eq!(range(&device).0, Settings::DEFAULT.min_poll_ms);
    // Even when half the lease is shorter: the server is never flooded (the relay then goes OFF
    // between polls, which is safe).
    device.answer_at(Millis(1), &running(0, 10)).unwrap();
    assert_eq!(range(&device), (Settings::DEFAULT.min_poll_ms, Settings::DEFAULT.min_poll_ms));
}

#[test]
fn backoff_doubles_up_to_the_cap_when_nothing_runs() {
    let mut device = Controller::new(Settings::DEFAULT);
    device.answer_at(Millis(0), &idle(5_000, 15_000)).unwrap();
    let mut middles = Vec::new();
    for failure in 1..=40u32 {
        device.poll_failed(Millis(u64::from(failure)));
        assert_eq!(device.failures(), failure);
        let (lo, hi) = range(&device);
        let middle = lo + (hi - lo) / 2;
        assert!(hi - middle <= middle / 10 + 1, "±10% at failure {failure}: {lo}..{hi}");
        middles.push(middle);
    }
    assert_eq!(&middles[..7], &[1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000]);
    assert!(middles[6..].iter().all(|&m| m == 60_000));
    assert!(range(&device).1 <= 66_000);
}

#[test]
fn backoff_never_exceeds_half_the_lease_while_a_run_may_be_active() {
    for first in [running(5_000, 15_000), answer(Motor::Off, MotorState::Hold, 5_000, 15_000)] {
        let mut device = Controller::new(Settings::DEFAULT);
        device.answer_at(Millis(0), &first).unwrap();
        let mut last = 0;
        for failure in 1..=100u64 {
            device.poll_failed(Millis(failure));
            let (lo, hi) = range(&device);
            assert!(hi <= 7_500, "failure {failure}: {hi}");
            assert!(lo >= last * 9 / 10 || hi == 7_500, "grows: failure {failure}: {lo} after {last}");
            last = lo;
        }
        assert!(range(&device).0 >= 6_750);
    }
    // Before any answer, a run may be active on the server (the device may have rebooted mid-run):
    // the first lease setting caps it.
    let mut device = Controller::new(Settings::DEFAULT);
    for failure in 1..=100 {
        device.poll_failed(Millis(failure));
    }
    assert_eq!(range(&device).1, 7_500);
    // An unusable answer counts as a failure, and does not make a run look inactive.
    let mut device = Controller::new(Settings::DEFAULT);
    device.answer_at(Millis(0), &idle(5_000, 15_000)).unwrap();
    for at in 1..=20 {
        assert_eq!(device.answer_at(Millis(at), b"<html>502</html>"), Err(AnswerError::Invalid));
    }
    assert_eq!(device.failures(), 20);
    assert_eq!(range(&device).1, 7_500);
}

#[test]
fn one_usable_answer_ends_the_backoff() {
    let mut device = Controller::new(Settings::DEFAULT);
    for failure in 1..=10 {
        device.poll_failed(Millis(failure));
    }
    device.answer_at(Millis(20), &idle(5_000, 15_000)).unwrap();
    assert_eq!(device.failures(), 0);
    assert_eq!(range(&device), (4_500, 5_500));
}

#[test]
fn backoff_math_does_not_overflow() {
    let settings = Settings { retry_first_ms: u32::MAX / 3, retry_max_ms: u32::MAX, ..Settings::DEFAULT };
    let mut device = Controller::new(settings);
    device.answer_at(Millis(0), &idle(5_000, 15_000)).unwrap();
    for failure in 1..=70 {
        device.poll_failed(Millis(failure));
        for r in [0, u32::MAX] {
            device.next_poll_in(r);
        }
    }
    assert_eq!(range(&device).1, u32::MAX);
}

#[test]
fn a_local_change_is_reported_at_once() {
    let mut device = Controller::new(Settings { debounce_ms: 50, ..Settings::DEFAULT });
    // Nothing to report before the inputs have settled (a boot would report "grid down").
    assert!(!device.settled(Millis(0)) && !device.report_now(Millis(0)));
    hold(&mut device, 0, 49, 25, false, true);
    assert!(!device.settled(Millis(49)) && !device.report_now(Millis(49)));
    // Settled and nothing reported yet: report at once.
    device.sense(Millis(50), false, true);
    assert!(device.settled(Millis(50)) && device.report_now(Millis(50)));
    let report = device.report(Millis(100));
    assert!(!report.load_shedding && report.ready && !report.relay);
    assert!(!device.report_now(Millis(100)));
    device.answer_at(Millis(150), &running(5_000, 15_000)).unwrap();
    // The relay went ON: the server should hear it.
    assert!(device.report_now(Millis(150)));
    assert!(device.report(Millis(150)).relay);
    assert!(!device.report_now(Millis(160)));
    // Load shedding starts: once debounced, report at once (and the relay is already OFF).
    hold(&mut device, 200, 249, 20, true, true);
    assert!(!device.report_now(Millis(249)));
    device.sense(Millis(250), true, true);
    assert!(device.report_now(Millis(250)));
    assert!(!device.relay(Millis(250)));
    let report = device.report(Millis(250));
    assert!(report.load_shedding && !report.relay);
    // While polls fail, a change does not cause a storm of polls; the retry carries it.
    device.poll_failed(Millis(300));
    hold(&mut device, 310, 400, 30, false, true);
    assert!(!device.report_now(Millis(400)));
    device.answer_at(Millis(500), &running(5_000, 15_000)).unwrap();
    assert!(device.report_now(Millis(500)));
}

#[test]
fn a_change_of_why_the_relay_is_open_is_reported_at_once() {
    // An ON that must wait out the minimum OFF time (60 s; boot counts as the relay opening).
    let waiting = serde_json::to_vec(&PollAnswer {
        motor: Motor::On,
        state: MotorState::Running,
        hold_reason: None,
        remaining_seconds: 600,
        poll_ms: 5_000,
        lease_ms: 15_000,
        seq: 1,
        min_off_ms: 60_000,
        grid_settle_ms: 0,
        max_starts_per_hour: 0,
    })
    .unwrap();
    let mut device = Controller::new(Settings::DEFAULT);
    hold(&mut device, 0, 200, 50, false, true);
    assert_eq!(device.report(Millis(200)).relay_off, Some(RelayOff::NoCommand));
    assert!(!device.report_now(Millis(200)));
    // The ON arrives; the relay stays open, now by the device's own rule: the server hears at
    // once that the run is waiting (not charged), not a poll interval later.
    device.answer_at(Millis(1_000), &waiting).unwrap();
    assert_eq!(device.drive(Millis(1_000)), Decision::Off(OffReason::MinOffTime));
    assert!(device.report_now(Millis(1_000)));
    let report = device.report(Millis(1_000));
    assert_eq!((report.relay, report.relay_off), (false, Some(RelayOff::RestartWait)));
    assert!(!device.report_now(Millis(1_000)));
    // No answer renews it and the lease runs out, the relay still open: now it is open for want
    // of a command, and the server hears that at once too (it stops charging sooner).
    hold(&mut device, 1_000, 15_999, 50, false, true);
    assert!(!device.report_now(Millis(15_999)));
    assert_eq!(device.drive(Millis(16_000)), Decision::Off(OffReason::LeaseExpired));
    assert!(device.report_now(Millis(16_000)));
    let report = device.report(Millis(16_000));
    assert_eq!((report.relay, report.relay_off), (false, Some(RelayOff::NoCommand)));
    assert!(!device.report_now(Millis(16_050)));
    // As for every change, not while retrying after failed polls: the retry carries it.
    device.answer_at(Millis(17_000), &waiting).unwrap();
    assert!(device.report_now(Millis(17_000)));
    device.report(Millis(17_000));
    device.poll_failed(Millis(17_100));
    hold(&mut device, 17_100, 32_000, 50, false, true);
    assert_eq!(device.drive(Millis(32_000)), Decision::Off(OffReason::LeaseExpired));
    assert!(!device.report_now(Millis(32_000)));
    assert_eq!(device.report(Millis(32_500)).relay_off, Some(RelayOff::NoCommand));
}

#[test]
fn the_report_carries_uptime_firmware_and_why_the_relay_is_off() {
    let mut device = Controller::new(Settings { firmware: Some("pumppilot-fw/0.1.0"), ..Settings::DEFAULT });
    let report = device.report(Millis(1_234));
    assert_eq!(report.uptime_ms, Some(1_234));
    assert_eq!(report.fw, Some("pumppilot-fw/0.1.0"));
    // Inputs not settled yet are reported as unsafe.
    assert!(report.load_shedding && !report.ready && !report.relay);
    let mut buf = [0u8; pumppilot_protocol::json::MAX_REPORT_BYTES];
    let n = pumppilot_protocol::json::encode_report(&report, &mut buf).unwrap();
    assert_eq!(
        std::str::from_utf8(&buf[..n]).unwrap(),
        r#"{"loadShedding":true,"ready":false,"relay":false,"fw":"pumppilot-fw/0.1.0","uptimeMs":1234,"relayOff":"NO_COMMAND"}"#
    );
}

#[test]
fn too_long_is_its_own_error() {
    let mut device = Controller::new(Settings::DEFAULT);
    let body = vec![b' '; pumppilot_protocol::MAX_ANSWER_BYTES + 1];
    assert_eq!(device.answer_at(Millis(0), &body), Err(AnswerError::TooLong));
}

/// An answer too long for the board's receive buffer, which the board cannot even hand over,
/// drops the command as one over the answer's limit does, instead of letting the lease run on.
#[test]
fn an_answer_the_board_could_not_read_whole_drops_the_command() {
    let mut device = Controller::new(Settings::DEFAULT);
    hold(&mut device, 0, 1_000, 10, false, true);
    device.answer_at(Millis(1_000), &running(5_000, 15_000)).unwrap();
    assert!(device.relay(Millis(1_000)));
    assert_eq!(device.too_long(Millis(1_010)), AnswerError::TooLong);
    assert!(!device.relay(Millis(1_010)), "OFF at once, not at the lease's end");
    assert_eq!(device.failures(), 1);
}

/// The server's long-poll as `routes/device.rs` does it: the wait is cut to a third of its
/// lease, the answer is held that long (nothing changes), and its `leaseMs` is shortened by the
/// time held (or, with `shortens` false, not: the device counts the lease from its send anyway).
/// Returns the moment the answer reaches the device and the body.
fn held_answer(sent: u64, wait_ms: u32, latency: u64, shortens: bool) -> (u64, Vec<u8>) {
    const SERVER_LEASE: u32 = 15_000;
    let held = wait_ms.min(SERVER_LEASE / 3);
    let arrived = sent + latency + u64::from(held) + latency;
    (arrived, running(5_000, if shortens { SERVER_LEASE - held } else { SERVER_LEASE }))
}

#[test]
fn back_to_back_long_polls_keep_a_running_relay_on() {
    for (latency, shortens) in [1, 50, 300, 600].into_iter().flat_map(|latency| [(latency, true), (latency, false)]) {
        let mut device = Controller::new(Settings::DEFAULT);
        hold(&mut device, 0, 50, 25, false, true);
        device.answer_at(Millis(100), &running(5_000, 15_000)).unwrap();
        let mut now = 100;
        for _ in 0..200 {
            let poll = device.poll(Millis(now));
            let long_poll = poll.long_poll.expect("long-polls after a usable answer");
            assert!(long_poll.wait_ms <= pumppilot_protocol::MAX_WAIT_MS);
            let (arrives, body) = held_answer(now, long_poll.wait_ms, latency, shortens);
            // The request is allowed long enough for the wait and the round trip.
            assert!(u64::from(poll.timeout_ms) >= arrives - now, "latency {latency}: {poll:?}");
            // ON the whole time the request is out, up to the moment the answer arrives.
            for t in [now, (now + arrives) / 2, arrives] {
                assert!(
                    device.relay(Millis(t)),
                    "latency {latency}: OFF at {t} while waiting for an answer due at {arrives}"
                );
            }
            device.answer(poll.sent, Millis(arrives), &body).unwrap();
            now = arrives;
        }
    }
}

#[test]
fn no_request_outlasts_half_the_lease_left() {
    let mut device = Controller::new(Settings::DEFAULT);
    hold(&mut device, 0, 50, 25, false, true);
    // Nothing running: the request timeout plus the long-poll wait.
    device.answer_at(Millis(100), &idle(5_000, 15_000)).unwrap();
    let idle_poll = device.poll(Millis(200));
    assert_eq!(idle_poll.timeout_ms, 10_000 + pumppilot_protocol::MAX_WAIT_MS);
    // Running: half of what is left, counted from the send of the poll that brought the answer.
    let sent = device.sent(Millis(1_000));
    device.answer(sent, Millis(4_000), &running(5_000, 15_000)).unwrap();
    for now in [4_000u64, 5_000, 10_000, 15_000, 15_999] {
        let left = 16_000 - now;
        let poll = device.poll(Millis(now));
        assert_eq!(u64::from(poll.timeout_ms), (left / 2).max(1), "at {now}");
        assert_eq!(poll.long_poll.map_or(0, |long_poll| u64::from(long_poll.wait_ms)), left / 4, "at {now}");
        assert!(device.relay(Millis(now)));
    }
    assert!(!device.relay(Millis(16_000)));
    assert_eq!(device.request_timeout_ms(Millis(16_000)), 10_000);
}

#[test]
fn the_lease_counts_from_the_send_and_late_answers_change_nothing() {
    let mut device = Controller::new(Settings::DEFAULT);
    hold(&mut device, 0, 50, 25, false, true);
    let first = device.sent(Millis(1_000));
    let second = device.sent(Millis(2_000));
    // The second poll's answer arrives first: its lease ends 15 s after its send.
    device.answer(second, Millis(9_000), &running(5_000, 15_000)).unwrap();
    assert!(device.relay(Millis(16_999)));
    assert!(!device.relay(Millis(17_000)));
    // The first poll's answer arrives late (reordered): ignored, even if it says OFF.
    let off = answer(Motor::Off, MotorState::Idle, 5_000, 15_000);
    assert_eq!(device.answer(first, Millis(9_500), &off), Err(pumppilot_controller::AnswerError::Stale));
    assert!(device.relay(Millis(9_500)));
    // The same answer again (duplicated) is the same command.
    device.answer(second, Millis(9_600), &running(5_000, 15_000)).unwrap();
    assert!(!device.relay(Millis(17_000)));
    // A poll sent before the clock went back is not trusted.
    let before = device.sent(Millis(10_000));
    device.sense(Millis(3_000), false, true);
    assert_eq!(
        device.answer(before, Millis(11_000), &running(5_000, 15_000)),
        Err(pumppilot_controller::AnswerError::Stale)
    );
    assert_eq!(device.failures(), 0);
}

#[test]
fn long_poll_is_asked_only_when_it_can_help() {
    let mut device = Controller::new(Settings::DEFAULT);
    // Nothing known yet: a plain poll.
    assert_eq!(device.long_poll(Millis(0)), None);
    device.answer_at(Millis(0), &idle(5_000, 15_000)).unwrap();
    // Nothing running: the longest wait (the server cuts it to a third of its lease).
    let idle_poll = device.long_poll(Millis(10)).unwrap();
    assert_eq!((idle_poll.wait_ms, idle_poll.seq), (pumppilot_protocol::MAX_WAIT_MS, 1));
    // Running: a quarter of what is left of the lease.
    device.answer_at(Millis(1_000), &running(5_000, 15_000)).unwrap();
    assert_eq!(device.long_poll(Millis(1_000)).unwrap().wait_ms, 3_750);
    assert_eq!(device.long_poll(Millis(5_000)).unwrap().wait_ms, 2_750);
    // The lease is over: no point in waiting.
    assert_eq!(device.long_poll(Millis(16_000)), None);
    // Retrying after a failure: a plain poll, to hear back at once.
    device.poll_failed(Millis(16_000));
    assert_eq!(device.long_poll(Millis(16_001)), None);
    // Switched off in the settings.
    let mut plain = Controller::new(Settings { long_poll: false, ..Settings::DEFAULT });
    plain.answer_at(Millis(0), &idle(5_000, 15_000)).unwrap();
    assert_eq!(plain.long_poll(Millis(1)), None);
}
