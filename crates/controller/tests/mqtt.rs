//! MQTT on the device: a pushed command's lease counts from the send time of the report its `ref`
//! names; without a known `ref` it may switch the relay OFF, never ON; the relay rule is the
//! HTTP one.

mod common;
use common::{AnswerAt, hold};
use pumppilot_controller::{
    AnswerError, Controller, Decision, LinkSecret, Millis, OffReason, Settings,
    mqtt::{MqttReport, Pushed, REMEMBERED_REFS, Topics},
};
use pumppilot_protocol::{
    Motor, MotorState, PollAnswer,
    json::{MAX_MQTT_REPORT_BYTES, decode_ref},
};

const COMMAND: &str = "pumppilot/0190a1b2c3d4e5f60718293a4b5c6d7e/command";

fn answer(motor: Motor, state: MotorState, lease_ms: u32, seq: u64) -> PollAnswer {
    PollAnswer {
        motor,
        state,
        hold_reason: None,
        remaining_seconds: 600,
        poll_ms: 5_000,
        lease_ms,
        seq,
        min_off_ms: 0,
        grid_settle_ms: 0,
        max_starts_per_hour: 0,
    }
}

/// The command payload: the answer JSON with `ref` when given.
fn pushed(answer: PollAnswer, reference: Option<u32>) -> Vec<u8> {
    let mut value = serde_json::to_value(answer).unwrap();
    if let Some(reference) = reference {
        value["ref"] = serde_json::json!(reference);
    }
    serde_json::to_vec(&value).unwrap()
}

fn on(lease_ms: u32, seq: u64, reference: Option<u32>) -> Vec<u8> {
    pushed(answer(Motor::On, MotorState::Running, lease_ms, seq), reference)
}

fn off(seq: u64, reference: Option<u32>) -> Vec<u8> {
    pushed(answer(Motor::Off, MotorState::Idle, 15_000, seq), reference)
}

/// A device whose inputs say grid up and ready (settled by t = 100, sensed up to t = 1000).
fn ready_device() -> Controller {
    let mut device = Controller::new(Settings::DEFAULT);
    hold(&mut device, 0, 1_000, 10, false, true);
    device
}

/// Keeps sensing grid up and ready from `from` to `to`, and drives the relay at `to`.
fn at(device: &mut Controller, from: u64, to: u64) -> Decision {
    hold(device, from, to, 10, false, true);
    device.drive(Millis(to))
}

#[test]
fn the_report_carries_a_ref_that_goes_up() {
    let mut device = ready_device();
    let mut buf = [0u8; MAX_MQTT_REPORT_BYTES];
    let mut last = 0;
    for t in 0..20u64 {
        let MqttReport { report, reference } = device.mqtt_report(Millis(1_200 + t));
        assert!(reference > last, "{reference} after {last}");
        let sent = device.mqtt_report(Millis(1_200 + t));
        assert_eq!(sent.reference, reference + 1);
        let n = sent.encode(&mut buf).unwrap();
        assert_eq!(decode_ref(&buf[..n], MAX_MQTT_REPORT_BYTES), Ok(Some(sent.reference)));
        let read: serde_json::Value = serde_json::from_slice(&buf[..n]).unwrap();
        assert_eq!((read["ready"].as_bool(), read["loadShedding"].as_bool()), (Some(true), Some(false)));
        assert_eq!(report.ready, sent.report.ready);
        last = sent.reference;
    }
}

#[test]
fn the_lease_counts_from_the_send_time_of_the_report_named() {
    let mut device = ready_device();
    let reference = device.mqtt_report(Millis(1_000)).reference;
    // The command arrives 3 s later: its 15 s lease still ends 15 s after the report was sent.
    hold(&mut device, 1_000, 4_000, 10, false, true);
    assert!(matches!(device.command(Millis(4_000), COMMAND, &on(15_000, 1, Some(reference))), Ok(Pushed::Taken(_))));
    assert_eq!(device.drive(Millis(4_000)), Decision::On);
    assert_eq!(at(&mut device, 4_000, 15_999), Decision::On);
    assert_eq!(at(&mut device, 15_999, 16_000), Decision::Off(OffReason::LeaseExpired));
    // No newer command: the relay stays OFF however long the connection stays quiet.
    assert_eq!(at(&mut device, 16_000, 60_000), Decision::Off(OffReason::LeaseExpired));
}

#[test]
fn a_change_pushed_under_the_same_ref_keeps_that_reports_send_time() {
    let mut device = ready_device();
    let reference = device.mqtt_report(Millis(1_000)).reference;
    device.command(Millis(1_050), COMMAND, &off(1, Some(reference))).unwrap();
    assert_eq!(at(&mut device, 1_050, 2_000), Decision::Off(OffReason::CommandOff));
    // A farmer presses Start: the server pushes the new command naming the last report it had.
    hold(&mut device, 2_000, 9_000, 10, false, true);
    device.command(Millis(9_000), COMMAND, &on(15_000, 2, Some(reference))).unwrap();
    assert_eq!(device.drive(Millis(9_000)), Decision::On);
    assert_eq!(at(&mut device, 9_000, 16_000), Decision::Off(OffReason::LeaseExpired), "15 s from 1 s");
}

#[test]
fn no_ref_or_an_unknown_ref_never_switches_on_and_asks_for_a_report() {
    let unknown = |device: &mut Controller| {
        // Nine reports: the first is no longer remembered.
        let first = device.mqtt_report(Millis(1_200)).reference;
        for _ in 0..REMEMBERED_REFS {
            device.mqtt_report(Millis(1_200));
        }
        [None, Some(first), Some(first + 1_000), Some(0)]
    };
    for index in 0..4 {
        let mut device = ready_device();
        let reference = unknown(&mut device)[index];
        let pushed = device.command(Millis(1_300), COMMAND, &on(15_000, 1, reference)).unwrap();
        assert!(matches!(pushed, Pushed::Unreferenced(_)) && pushed.report_now(), "{reference:?}");
        assert!(pushed.answer().commands_on());
        assert_eq!(device.drive(Millis(1_300)), Decision::Off(OffReason::NoCommand), "{reference:?}");
        assert!(device.report_now(Millis(1_300)), "{reference:?}");
        // The report at once, and the answer naming it, switch it ON.
        let report = device.mqtt_report(Millis(1_310)).reference;
        assert!(!device.report_now(Millis(1_310)));
        assert!(matches!(device.command(Millis(1_320), COMMAND, &on(15_000, 1, Some(report))), Ok(Pushed::Taken(_))));
        assert_eq!(device.drive(Millis(1_320)), Decision::On);
        // The relay changed: that is worth a report, as over HTTP.
        assert!(device.report_now(Millis(1_320)));
    }
}

#[test]
fn an_unreferenced_on_leaves_the_command_before_it_with_its_own_lease() {
    let mut device = ready_device();
    let reference = device.mqtt_report(Millis(1_000)).reference;
    device.command(Millis(1_000), COMMAND, &on(15_000, 1, Some(reference))).unwrap();
    assert_eq!(device.drive(Millis(1_000)), Decision::On);
    // A reconnect: the new session's first push has no ref; it does not renew the lease.
    assert_eq!(at(&mut device, 1_000, 10_000), Decision::On);
    assert!(matches!(device.command(Millis(10_000), COMMAND, &on(15_000, 1, None)), Ok(Pushed::Unreferenced(_))));
    assert_eq!(at(&mut device, 10_000, 15_999), Decision::On);
    assert_eq!(at(&mut device, 15_999, 16_000), Decision::Off(OffReason::LeaseExpired));
}

#[test]
fn an_unreferenced_off_switches_off_at_once() {
    let mut device = ready_device();
    let reference = device.mqtt_report(Millis(1_000)).reference;
    device.command(Millis(1_000), COMMAND, &on(15_000, 1, Some(reference))).unwrap();
    assert_eq!(at(&mut device, 1_000, 2_000), Decision::On);
    let pushed = device.command(Millis(2_000), COMMAND, &off(2, None)).unwrap();
    assert!(matches!(pushed, Pushed::TakenOff(_)) && pushed.report_now());
    assert_eq!(device.drive(Millis(2_000)), Decision::Off(OffReason::CommandOff));
    assert!(device.report_now(Millis(2_000)));
    // The answer to the newest report may follow it and is used.
    hold(&mut device, 2_000, 2_010, 10, false, true);
    let again = device.mqtt_report(Millis(2_010)).reference;
    device.command(Millis(2_020), COMMAND, &on(15_000, 3, Some(again))).unwrap();
    assert_eq!(at(&mut device, 2_020, 2_030), Decision::On);
    // An OFF naming an old ref still switches it off.
    device.command(Millis(2_040), COMMAND, &off(4, Some(reference + 1_000))).unwrap();
    assert_eq!(device.drive(Millis(2_040)), Decision::Off(OffReason::CommandOff));
}

#[test]
fn a_command_for_an_older_report_than_the_current_one_changes_nothing() {
    let mut device = ready_device();
    let older = device.mqtt_report(Millis(1_000)).reference;
    let newer = device.mqtt_report(Millis(2_000)).reference;
    device.command(Millis(2_100), COMMAND, &off(5, Some(newer))).unwrap();
    assert_eq!(device.command(Millis(2_200), COMMAND, &on(15_000, 4, Some(older))), Err(AnswerError::Stale));
    assert_eq!(at(&mut device, 2_200, 2_300), Decision::Off(OffReason::CommandOff));
}

#[test]
fn garbage_drops_the_command() {
    let mut device = ready_device();
    let reference = device.mqtt_report(Millis(1_000)).reference;
    device.command(Millis(1_000), COMMAND, &on(15_000, 1, Some(reference))).unwrap();
    assert_eq!(device.drive(Millis(1_000)), Decision::On);
    let bad_ref =
        on(15_000, 1, None).iter().copied().take_while(|b| *b != b'}').chain(*b",\"ref\":-3}").collect::<Vec<u8>>();
    for (body, error) in [
        (b"offline".to_vec(), AnswerError::Invalid),
        (bad_ref, AnswerError::Invalid),
        (vec![b' '; 600], AnswerError::TooLong),
    ] {
        let mut device = device;
        assert_eq!(device.command(Millis(1_100), COMMAND, &body), Err(error), "{}", String::from_utf8_lossy(&body));
        assert_eq!(device.drive(Millis(1_100)), Decision::Off(OffReason::NoCommand));
    }
}

#[test]
fn the_relay_rule_is_the_http_one() {
    // For every lease age and input, a command taken over MQTT decides as the same answer to an
    // HTTP poll sent at the same moment.
    for (grid_down, ready) in [(false, true), (true, true), (false, false)] {
        for lease_ms in [1_000, 15_000] {
            let mut http = Controller::new(Settings::DEFAULT);
            let mut mqtt = Controller::new(Settings::DEFAULT);
            for device in [&mut http, &mut mqtt] {
                hold(device, 0, 100, 10, grid_down, ready);
            }
            let sent = http.sent(Millis(500));
            http.answer(sent, Millis(700), &on(lease_ms, 1, None)).unwrap();
            let reference = mqtt.mqtt_report(Millis(500)).reference;
            mqtt.command(Millis(700), COMMAND, &on(lease_ms, 1, Some(reference))).unwrap();
            let mut t = 700;
            while t < 20_000 {
                for device in [&mut http, &mut mqtt] {
                    hold(device, t - 50, t, 10, grid_down, ready);
                }
                assert_eq!(mqtt.drive(Millis(t)), http.drive(Millis(t)), "t {t} lease {lease_ms}");
                t += 50;
            }
        }
    }
    // And an HTTP answer still reads past a `ref`.
    let mut device = ready_device();
    device.answer_at(Millis(1_200), &on(15_000, 1, Some(77))).unwrap();
    assert_eq!(device.drive(Millis(1_200)), Decision::On);
}

#[test]
fn a_signing_device_takes_no_unsigned_command() {
    let mut device = ready_device();
    device.set_link_secret(LinkSecret::parse(&format!("pp_link_{}", "A".repeat(43))).unwrap());
    let reference = device.mqtt_report(Millis(1_200)).reference;
    assert_eq!(device.command(Millis(1_200), COMMAND, &on(15_000, 1, Some(reference))), Err(AnswerError::Forged));
    assert_eq!(device.drive(Millis(1_200)), Decision::Off(OffReason::NoCommand));
}

#[test]
fn topics_are_built_without_allocation_and_refuse_wildcards() {
    let topics = Topics::new("0190a1b2c3d4e5f60718293a4b5c6d7e").unwrap();
    assert_eq!(topics.report.as_str(), "pumppilot/0190a1b2c3d4e5f60718293a4b5c6d7e/report");
    assert_eq!(topics.command.as_str(), "pumppilot/0190a1b2c3d4e5f60718293a4b5c6d7e/command");
    assert_eq!(topics.status.as_str(), "pumppilot/0190a1b2c3d4e5f60718293a4b5c6d7e/status");
    assert!(Topics::new(&"a".repeat(64)).is_some());
    for bad in ["", "+", "#", "a/b", "a b", "é", &"a".repeat(65)] {
        assert!(Topics::new(bad).is_none(), "{bad:?}");
    }
}

#[test]
fn refs_of_an_earlier_boot_are_not_this_boots() {
    // Before a reboot the device numbered its reports from 1; a command for its report 3 is
    // still on its way (a broker's retained message, a server behind).
    let mut before = ready_device();
    for _ in 0..3 {
        before.mqtt_report(Millis(1_000));
    }
    let old = on(15_000, 1, Some(3));
    // After the reboot, numbered from a random start, its own report 3 does not exist.
    let mut after = ready_device();
    after.set_first_ref(0x9E37_79B9);
    let mut sent = Vec::new();
    for _ in 0..5 {
        sent.push(after.mqtt_report(Millis(1_100)).reference);
    }
    assert_eq!(sent[0], 0x9E37_79B9);
    assert!(sent.windows(2).all(|w| w[1] == w[0] + 1), "{sent:?}");
    assert!(matches!(after.command(Millis(1_200), COMMAND, &old), Ok(Pushed::Unreferenced(_))));
    assert_eq!(after.drive(Millis(1_200)), Decision::Off(OffReason::NoCommand));
    // Numbering wraps past u32::MAX without ever using 0.
    let mut wrapping = ready_device();
    wrapping.set_first_ref(u32::MAX);
    assert_eq!(wrapping.mqtt_report(Millis(1_100)).reference, u32::MAX);
    assert_eq!(wrapping.mqtt_report(Millis(1_100)).reference, 1);
    let mut zero = ready_device();
    zero.set_first_ref(0);
    assert_eq!(zero.mqtt_report(Millis(1_100)).reference, 1);
}
