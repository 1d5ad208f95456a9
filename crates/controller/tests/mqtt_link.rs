//! Signed MQTT on the device: a device with a link secret signs every report (one counter with
//! its HTTP requests) and takes only a command whose MAC checks; a signed refusal of its counter
//! moves the counter up, never down. The relay rule is unchanged (`tests/mqtt.rs`).

mod common;
use common::hold;
use pumppilot_controller::{
    AnswerError, Controller, Decision, LinkSecret, LinkState, Millis, OffReason, Settings,
    mqtt::{MAX_REPORT_PAYLOAD, Pushed, Topics},
};
use pumppilot_protocol::{
    Motor, MotorState, PollAnswer,
    json::decode_ref,
    link::{self, Framed, MqttKind},
};

const DEVICE: &str = "0190a1b2c3d4e5f60718293a4b5c6d7e";

fn secret() -> LinkSecret {
    LinkSecret::parse(&format!("pp_link_{}", "S".repeat(43))).unwrap()
}

fn topics() -> Topics {
    Topics::new(DEVICE).unwrap()
}

fn on(seq: u64, reference: u32) -> Vec<u8> {
    let answer = PollAnswer {
        motor: Motor::On,
        state: MotorState::Running,
        hold_reason: None,
        remaining_seconds: 600,
        poll_ms: 5_000,
        lease_ms: 15_000,
        seq,
        min_off_ms: 0,
        grid_settle_ms: 0,
        max_starts_per_hour: 0,
    };
    let mut value = serde_json::to_value(answer).unwrap();
    value["ref"] = serde_json::json!(reference);
    serde_json::to_vec(&value).unwrap()
}

/// What the server publishes: `json` signed as `kind` on the command topic with `counter`.
fn signed(with: &LinkSecret, kind: MqttKind, counter: u64, json: &[u8]) -> Vec<u8> {
    let tag = with.mqtt_tag(kind, topics().command.as_str(), counter, json);
    let mut out = format!("{counter} ").into_bytes();
    out.extend_from_slice(&link::to_hex(&tag));
    out.push(b'\n');
    out.extend_from_slice(json);
    out
}

/// A signing device, grid up and ready (settled by t = 1000).
fn signing_device() -> Controller {
    let mut device = Controller::new(Settings::DEFAULT);
    device.set_link_secret(secret());
    hold(&mut device, 0, 1_000, 10, false, true);
    device
}

/// Publishes a report at `now`: its `ref`, its counter and its JSON, checked as the server does.
fn report(device: &mut Controller, now: u64) -> (u32, u64, Vec<u8>) {
    let report = device.mqtt_report(Millis(now));
    let mut buf = [0u8; MAX_REPORT_PAYLOAD];
    let n = device.mqtt_payload(&report, topics().report.as_str(), &mut buf).unwrap();
    let Framed::Signed { counter, tag, body } = link::unframe(&buf[..n]) else { panic!("not signed") };
    assert!(secret().check_mqtt(MqttKind::Report, topics().report.as_str(), counter, body, &tag));
    assert!(!secret().check_mqtt(MqttKind::Report, topics().command.as_str(), counter, body, &tag));
    assert_eq!(decode_ref(body, MAX_REPORT_PAYLOAD), Ok(Some(report.reference)));
    (report.reference, counter, body.to_vec())
}

#[test]
fn every_report_is_signed_with_a_new_counter_shared_with_http() {
    let mut device = signing_device();
    let (_, first, _) = report(&mut device, 1_000);
    let (_, second, _) = report(&mut device, 1_001);
    assert_eq!(second, first + 1);
    let http = device.sign("POST", "/api/esp32/poll", b"{}").unwrap();
    assert_eq!(http.counter(), second + 1);
    let (_, third, _) = report(&mut device, 1_002);
    assert_eq!(third, http.counter() + 1);
    // Without a secret the payload is the JSON alone, as before.
    let mut plain = Controller::new(Settings::DEFAULT);
    let sent = plain.mqtt_report(Millis(0));
    let mut buf = [0u8; MAX_REPORT_PAYLOAD];
    let n = plain.mqtt_payload(&sent, topics().report.as_str(), &mut buf).unwrap();
    assert_eq!(buf[0], b'{');
    assert!(matches!(link::unframe(&buf[..n]), Framed::Plain(_)));
}

#[test]
fn a_signed_command_runs_the_pump_and_a_forged_one_drops_it() {
    let mut device = signing_device();
    let (reference, counter, _) = report(&mut device, 1_000);
    let command = topics().command;
    let good = signed(&secret(), MqttKind::Command, counter, &on(1, reference));
    assert!(matches!(device.command(Millis(1_100), command.as_str(), &good), Ok(Pushed::Taken(_))));
    assert_eq!(device.drive(Millis(1_100)), Decision::On);
    assert_eq!(device.link_state(), LinkState::Up);

    let other = LinkSecret::parse(&format!("pp_link_{}", "T".repeat(43))).unwrap();
    let mut tampered = good.clone();
    let at = tampered.len() - 2;
    tampered[at] ^= 1;
    let mut forgeries = vec![
        ("another secret", signed(&other, MqttKind::Command, counter, &on(2, reference))),
        ("a report's MAC", signed(&secret(), MqttKind::Report, counter, &on(2, reference))),
        ("tampered", tampered),
        ("unsigned", on(2, reference)),
        ("a broken prefix", b"12 zz\n{}".to_vec()),
    ];
    // A MAC made for another device's topic does not check on this one.
    let elsewhere = Topics::new("ffffffffffffffffffffffffffffffff").unwrap();
    let json = on(2, reference);
    let tag = secret().mqtt_tag(MqttKind::Command, elsewhere.command.as_str(), counter, &json);
    let mut moved = format!("{counter} ").into_bytes();
    moved.extend_from_slice(&link::to_hex(&tag));
    moved.push(b'\n');
    moved.extend_from_slice(&json);
    forgeries.push(("another topic", moved));
    let mut t = 1_200;
    for (what, forged) in forgeries {
        // Each time the pump runs on a good command first.
        let (reference, counter, _) = report(&mut device, t);
        let good = signed(&secret(), MqttKind::Command, counter, &on(1, reference));
        device.command(Millis(t), command.as_str(), &good).unwrap();
        assert_eq!(device.drive(Millis(t)), Decision::On, "{what}");
        assert_eq!(device.command(Millis(t + 1), command.as_str(), &forged), Err(AnswerError::Forged), "{what}");
        assert_eq!(device.drive(Millis(t + 1)), Decision::Off(OffReason::NoCommand), "{what}");
        assert_eq!(device.link_state(), LinkState::Forged, "{what}");
        hold(&mut device, t + 1, t + 100, 10, false, true);
        t += 100;
    }
}

#[test]
fn the_plain_command_pushed_on_subscribe_is_not_used_and_asks_for_a_report() {
    // A server that has not yet seen this device sign pushes the current command plain, naming
    // no report. A signing device neither takes it nor counts it as forged: it reports at once.
    let mut device = signing_device();
    let (reference, counter, _) = report(&mut device, 1_000);
    let command = topics().command;
    device
        .command(Millis(1_100), command.as_str(), &signed(&secret(), MqttKind::Command, counter, &on(1, reference)))
        .unwrap();
    assert_eq!(device.drive(Millis(1_100)), Decision::On);
    let without_ref = |motor: &str| {
        format!(
            r#"{{"motor":"{motor}","state":"IDLE","holdReason":null,"remainingSeconds":0,"pollMs":5000,"leaseMs":15000,"seq":2,"minOffMs":0,"gridSettleMs":0,"maxStartsPerHour":0}}"#
        )
    };
    for motor in ["OFF", "ON"] {
        let pushed = device.command(Millis(1_200), command.as_str(), without_ref(motor).as_bytes());
        assert!(matches!(pushed, Ok(Pushed::Unreferenced(_))), "{motor}: {pushed:?}");
        assert!(pushed.unwrap().report_now());
        assert_eq!(device.drive(Millis(1_200)), Decision::On, "{motor}: the signed command stays");
        assert_eq!(device.link_state(), LinkState::Up, "{motor}");
    }
    // Naming a report, a plain command is forged (the list above), and so is garbage.
    assert_eq!(device.command(Millis(1_300), command.as_str(), b"{\"motor\":"), Err(AnswerError::Forged));
    assert_eq!(device.drive(Millis(1_300)), Decision::Off(OffReason::NoCommand));
}

#[test]
fn a_command_made_before_any_report_is_signed_with_counter_zero() {
    let mut device = signing_device();
    let off = br#"{"motor":"OFF","state":"IDLE","holdReason":null,"remainingSeconds":0,"pollMs":5000,"leaseMs":15000,"seq":1,"minOffMs":0,"gridSettleMs":0,"maxStartsPerHour":0}"#;
    let pushed =
        device.command(Millis(1_000), topics().command.as_str(), &signed(&secret(), MqttKind::Command, 0, off));
    assert!(matches!(pushed, Ok(Pushed::TakenOff(_))), "{pushed:?}");
}

#[test]
fn after_a_reboot_a_signed_refusal_moves_the_counter_above_the_servers() {
    // The server accepted counters up to 500 before the board rebooted and began again from 1.
    let mut device = signing_device();
    let (_, counter, _) = report(&mut device, 1_000);
    assert_eq!(counter, 1);
    let command = topics().command;
    let stale = br#"{"error":{"code":"STALE_COUNTER","message":"continue above 500"}}"#;
    // A refusal nobody signed, or signed as a command, moves nothing (and is forged).
    let forged =
        signed(&LinkSecret::parse(&format!("pp_link_{}", "T".repeat(43))).unwrap(), MqttKind::Stale, 500, stale);
    assert_eq!(device.command(Millis(1_010), command.as_str(), &forged), Err(AnswerError::Forged));
    assert_eq!(report(&mut device, 1_020).1, 2);
    let refusal = signed(&secret(), MqttKind::Stale, 500, stale);
    assert_eq!(device.command(Millis(1_030), command.as_str(), &refusal), Err(AnswerError::Refused(409)));
    // A failed report (the second in a row, after the forged one): the next one goes after the
    // retry delay, not at once.
    assert_eq!(device.failures(), 2);
    assert!(!device.report_now(Millis(1_030)));
    assert_eq!(device.next_poll_in(0), 1_800);
    let (reference, counter, _) = report(&mut device, 2_030);
    assert_eq!(counter, 501);
    // The server accepts it and answers, signed with that counter: the pump runs.
    let answer = signed(&secret(), MqttKind::Command, counter, &on(1, reference));
    assert!(matches!(device.command(Millis(2_040), command.as_str(), &answer), Ok(Pushed::Taken(_))));
    assert_eq!(device.drive(Millis(2_040)), Decision::On);
    // A refusal replayed later (naming a lower counter) never moves the counter down.
    let old = signed(&secret(), MqttKind::Stale, 7, stale);
    assert_eq!(device.command(Millis(2_050), command.as_str(), &old), Err(AnswerError::Refused(409)));
    assert_eq!(report(&mut device, 2_060).1, 502);
}

/// A signing device that reported at 1 s and took the signed ON for that report at 1.01 s: the
/// device, the report's `ref` and counter, and the ON as it went over the air.
fn running_on_a_signed_on() -> (Controller, u32, u64, Vec<u8>) {
    let mut device = signing_device();
    let (reference, counter, _) = report(&mut device, 1_000);
    let captured = signed(&secret(), MqttKind::Command, counter, &on(1, reference));
    device.command(Millis(1_010), topics().command.as_str(), &captured).unwrap();
    (device, reference, counter, captured)
}

#[test]
fn a_replayed_command_cannot_extend_the_lease() {
    // A signed ON captured from the air and sent again later still counts from its report.
    let (mut device, _, _, captured) = running_on_a_signed_on();
    let command = topics().command;
    hold(&mut device, 1_010, 15_000, 10, false, true);
    let again = device.command(Millis(15_000), command.as_str(), &captured);
    assert!(matches!(again, Ok(Pushed::Taken(_))), "{again:?}");
    assert_eq!(device.drive(Millis(15_999)), Decision::On);
    hold(&mut device, 15_999, 16_000, 10, false, true);
    assert_eq!(device.drive(Millis(16_000)), Decision::Off(OffReason::LeaseExpired));
}

/// What the server publishes when the run stops: OFF for the same report, a newer `seq`.
fn off(seq: u64, reference: u32) -> Vec<u8> {
    let mut value: serde_json::Value = serde_json::from_slice(&on(seq, reference)).unwrap();
    value["motor"] = serde_json::json!("OFF");
    value["state"] = serde_json::json!("IDLE");
    serde_json::to_vec(&value).unwrap()
}

#[test]
fn a_captured_on_sent_again_after_the_stop_that_replaced_it_is_stale() {
    // The farmer stops before the device's next report: the server's OFF names the same report
    // as the ON it replaces. Someone who captured the ON sends it again.
    let (mut device, reference, counter, captured) = running_on_a_signed_on();
    let command = topics().command;
    assert_eq!(device.drive(Millis(1_010)), Decision::On);
    let stop = signed(&secret(), MqttKind::Command, counter, &off(2, reference));
    assert!(matches!(device.command(Millis(2_000), command.as_str(), &stop), Ok(Pushed::Taken(_))));
    assert!(matches!(device.drive(Millis(2_000)), Decision::Off(_)));
    assert_eq!(device.command(Millis(2_100), command.as_str(), &captured), Err(AnswerError::Stale));
    assert!(matches!(device.drive(Millis(2_100)), Decision::Off(_)), "the replay brings nothing back");
    // Also once a forged message has dropped the OFF (nothing is current then).
    assert_eq!(device.command(Millis(2_200), command.as_str(), b"1 00\n{}"), Err(AnswerError::Forged));
    assert_eq!(device.command(Millis(2_300), command.as_str(), &captured), Err(AnswerError::Stale));
    assert!(matches!(device.drive(Millis(2_300)), Decision::Off(_)));
    // The farmer starts again before the next report: a newer seq for the same report is taken.
    hold(&mut device, 2_300, 2_400, 10, false, true);
    let again = signed(&secret(), MqttKind::Command, counter, &on(3, reference));
    assert!(matches!(device.command(Millis(2_400), command.as_str(), &again), Ok(Pushed::Taken(_))));
    assert_eq!(device.drive(Millis(2_400)), Decision::On);
}

/// A signing device at a boot whose refs start at `first_ref` and whose counter starts above
/// `first_counter` (the shell's two random numbers), grid up and ready (settled by t = 1000).
fn booted(first_ref: u32, first_counter: u64) -> Controller {
    let mut device = Controller::new(Settings::DEFAULT);
    device.set_link_secret(secret());
    device.set_first_ref(first_ref);
    device.set_first_counter(first_counter);
    hold(&mut device, 0, 1_000, 10, false, true);
    device
}

#[test]
fn a_command_of_an_earlier_boot_naming_a_ref_this_boot_reached_again_is_not_taken() {
    let command = topics().command;
    // Boot A: the pump ran; someone on the network kept the signed ON the server sent.
    let mut a = booted(0x1234_5678, 0x1111_2222);
    let (ref_a, counter_a, _) = report(&mut a, 1_000);
    let captured = signed(&secret(), MqttKind::Command, counter_a, &on(40, ref_a));
    assert!(matches!(a.command(Millis(1_050), command.as_str(), &captured), Ok(Pushed::Taken(_))));

    // Boot B, months later: another random counter, but its refs reach the same number (two
    // random 32-bit starts a few reports apart meet, over a fleet and the years).
    let mut b = booted(0x1234_5678, 0x9999_0000);
    let (ref_b, counter_b, _) = report(&mut b, 1_000);
    assert_eq!(ref_b, ref_a);
    assert_ne!(counter_b, counter_a);
    // The pump is idle now; the attacker sends the old ON (and drops the server's OFF). Its MAC
    // checks, but it answers a report signed with another counter: not used, and the device
    // asks for the answer to its own report at once.
    let pushed = b.command(Millis(1_050), command.as_str(), &captured);
    assert!(matches!(pushed, Ok(Pushed::Unreferenced(_))), "{pushed:?}");
    assert!(pushed.unwrap().report_now());
    assert_eq!(b.drive(Millis(1_050)), Decision::Off(OffReason::NoCommand));
    assert!(b.report_now(Millis(1_050)));
    // Sent again a few seconds on, still nothing.
    hold(&mut b, 1_050, 4_000, 10, false, true);
    assert!(matches!(b.command(Millis(4_000), command.as_str(), &captured), Ok(Pushed::Unreferenced(_))));
    assert_eq!(b.drive(Millis(4_000)), Decision::Off(OffReason::NoCommand));
    // An OFF of the earlier boot is taken as any OFF naming no report of this boot is.
    let old_off = signed(&secret(), MqttKind::Command, counter_a, &off(41, ref_a));
    assert!(matches!(b.command(Millis(4_010), command.as_str(), &old_off), Ok(Pushed::TakenOff(_))));

    // The server's own ON for boot B's report, signed with that report's counter, runs the pump.
    let (ref_b, counter_b, _) = report(&mut b, 4_100);
    let genuine = signed(&secret(), MqttKind::Command, counter_b, &on(42, ref_b));
    assert!(matches!(b.command(Millis(4_150), command.as_str(), &genuine), Ok(Pushed::Taken(_))));
    assert_eq!(b.drive(Millis(4_150)), Decision::On);
    // And boot A's ON for a ref boot B reaches next changes nothing of it.
    let next_a = signed(&secret(), MqttKind::Command, counter_a + 1, &on(43, ref_b + 1));
    let (ref_next, _, _) = report(&mut b, 4_200);
    assert_eq!(ref_next, ref_b + 1);
    assert!(matches!(b.command(Millis(4_250), command.as_str(), &next_a), Ok(Pushed::Unreferenced(_))));
    assert_eq!(b.drive(Millis(4_250)), Decision::On, "the genuine ON stays, with its own lease");
    hold(&mut b, 4_250, 19_100, 10, false, true);
    assert_eq!(b.drive(Millis(19_100)), Decision::Off(OffReason::LeaseExpired));
}

#[test]
fn a_report_signed_again_is_answered_by_a_command_with_its_last_counter() {
    // A shell that signs one report twice (it should not) publishes the second payload: the
    // command for it carries that counter.
    let mut device = signing_device();
    let sent = device.mqtt_report(Millis(1_000));
    let mut buf = [0u8; MAX_REPORT_PAYLOAD];
    let first = device.mqtt_payload(&sent, topics().report.as_str(), &mut buf).unwrap();
    let Framed::Signed { counter: once, .. } = link::unframe(&buf[..first]) else { panic!("not signed") };
    let again = device.mqtt_payload(&sent, topics().report.as_str(), &mut buf).unwrap();
    let Framed::Signed { counter: twice, .. } = link::unframe(&buf[..again]) else { panic!("not signed") };
    let command = topics().command;
    let stale = signed(&secret(), MqttKind::Command, once, &on(1, sent.reference));
    assert!(matches!(device.command(Millis(1_010), command.as_str(), &stale), Ok(Pushed::Unreferenced(_))));
    let answer = signed(&secret(), MqttKind::Command, twice, &on(1, sent.reference));
    assert!(matches!(device.command(Millis(1_020), command.as_str(), &answer), Ok(Pushed::Taken(_))));
    assert_eq!(device.drive(Millis(1_020)), Decision::On);
}
