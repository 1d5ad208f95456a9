//! The authenticated link on the device: every request signed with a counter that only goes up,
//! only an answer whose MAC checks against that very request is used, and a forged, tampered,
//! replayed or unsigned answer is OFF. The server's half is `crates/pumppilot/tests/device_link.rs`.

mod common;

use common::hold;
use pumppilot_controller::{
    AnswerError, CardFeedback, Controller, Decision, FIRST_COUNTER_MASK, LinkSecret, LinkState, Millis, OffReason,
    Reply, Sent, Settings, Signature,
};
use pumppilot_protocol::{
    POLL_PATH,
    link::{self, Tag},
};

const SECRET: &str = "pp_link_Zm9yIHRoZSB0ZXN0cyBvbmx5LCBuZXZlciBpbiB0aGUgZmllbGQ";
const ON: &[u8] = br#"{"motor":"ON","state":"RUNNING","holdReason":null,"remainingSeconds":600,"pollMs":5000,"leaseMs":15000,"seq":7,"minOffMs":0,"gridSettleMs":0,"maxStartsPerHour":0}"#;
const BODY: &[u8] = br#"{"loadShedding":false,"ready":true,"relay":false}"#;

fn secret() -> LinkSecret {
    LinkSecret::parse(SECRET).expect("a valid secret")
}

/// A device with the link secret whose inputs have settled (grid up, pump ready) at 200 ms.
fn device() -> Controller {
    let mut device = Controller::new(Settings::DEFAULT);
    device.set_link_secret(secret());
    hold(&mut device, 0, 200, 20, false, true);
    device
}

/// What the server does: the answer's MAC over the request's MAC, the status, a counter, the body.
fn server_mac(request: &Signature, status: u16, counter: u64, body: &[u8]) -> [u8; 64] {
    let tag: Tag = link::from_hex(&request.mac_hex()).expect("hex");
    link::to_hex(&secret().answer_tag(&tag, status, counter, body))
}

/// Sends a poll at `now`: signed, as a shell does.
fn send(device: &mut Controller, now: u64) -> (Sent, Signature) {
    let mut sent = device.sent(Millis(now));
    let signature = device.sign_poll(&mut sent, "POST", POLL_PATH, BODY).expect("a device with a secret signs");
    assert!(
        secret().check_request(
            "POST",
            POLL_PATH,
            signature.counter(),
            BODY,
            &link::from_hex(&signature.mac_hex()).unwrap()
        ),
        "the server can check the request"
    );
    (sent, signature)
}

fn reply<'a>(status: u16, counter: &'a [u8], mac: &'a [u8], body: &'a [u8]) -> Reply<'a> {
    Reply { status, counter: Some(counter), mac: Some(mac), body }
}

fn decimal(n: u64) -> Vec<u8> {
    n.to_string().into_bytes()
}

/// Polls at `now` and hands in the server's genuine ON answer: the relay is ON after it.
fn genuine_on(device: &mut Controller, now: u64) -> Signature {
    let (sent, signature) = send(device, now);
    let counter = decimal(signature.counter());
    let mac = server_mac(&signature, 200, signature.counter(), ON);
    device.reply(sent, Millis(now), reply(200, &counter, &mac, ON)).expect("a genuine answer is used");
    assert_eq!(device.drive(Millis(now)), Decision::On);
    assert_eq!(device.link_state(), LinkState::Up);
    signature
}

#[test]
fn a_genuine_answer_is_used_and_counters_only_go_up() {
    let mut device = device();
    let first = genuine_on(&mut device, 1_000);
    let second = genuine_on(&mut device, 2_000);
    assert_eq!((first.counter(), second.counter()), (1, 2));
    let tap = device.sign("POST", "/api/esp32/rfid", br#"{"uid":"04A1B2C3"}"#).unwrap();
    assert_eq!(tap.counter(), 3);
    assert_ne!(first.mac_hex(), second.mac_hex());
}

/// The firmware sends a poll once more when its kept connection turns out to be closed. The first
/// attempt may have reached the server (which then took its counter), so each attempt is signed
/// as it goes out (`Controller::sign_attempt`, called by `firmware/src/net.rs`): the retry is not
/// a replay, only the answer to it is used, and its lease counts from when the retry went out.
#[test]
fn a_retried_poll_is_signed_afresh_and_its_lease_counts_from_the_retry() {
    let mut device = device();
    let mut sent = device.poll(Millis(1_000)).sent;
    let first = device.sign_attempt(&mut sent, Millis(1_000), "POST", POLL_PATH, BODY).unwrap();
    // The kept connection broke under the first attempt; the retry goes out at 1 400.
    let retry = device.sign_attempt(&mut sent, Millis(1_400), "POST", POLL_PATH, BODY).unwrap();
    assert_eq!(retry.counter(), first.counter() + 1, "a counter the server has not taken");
    assert!(secret().check_request(
        "POST",
        POLL_PATH,
        retry.counter(),
        BODY,
        &link::from_hex(&retry.mac_hex()).unwrap()
    ));
    assert_eq!(sent.at(), Millis(1_400));
    // An answer made for the first attempt (it cannot come on the new connection; someone could
    // send one) is not this request's: dropped, as any forged one.
    let mut other = device;
    let (counter, mac) = (decimal(first.counter()), server_mac(&first, 200, first.counter(), ON));
    assert_eq!(other.reply(sent, Millis(1_600), reply(200, &counter, &mac, ON)), Err(AnswerError::Forged));
    // The answer to the retry is used, its lease counted from the retry's sending: not from the
    // first attempt's (earlier), nor from the answer's arrival (later).
    let (counter, mac) = (decimal(retry.counter()), server_mac(&retry, 200, retry.counter(), ON));
    device.reply(sent, Millis(1_600), reply(200, &counter, &mac, ON)).expect("the retry's answer is used");
    assert_eq!(device.drive(Millis(16_399)), Decision::On);
    assert_eq!(device.drive(Millis(16_400)), Decision::Off(OffReason::LeaseExpired));
}

/// A board forgets its counter when it restarts. Its first poll of a boot is the same, byte for
/// byte, as the first poll of an earlier boot (the same inputs, reset reason and time since boot):
/// counting from 1 each time, an ON captured at the earlier boot checks again (what
/// `set_first_counter` is for). Counting from a random point drawn at each boot, it does not.
#[test]
fn an_answer_captured_at_an_earlier_boot_checks_for_no_request_of_a_later_one() {
    let boot = |first: Option<u64>| {
        let mut device = Controller::new(Settings::DEFAULT);
        device.set_link_secret(secret());
        if let Some(random) = first {
            device.set_first_counter(random);
        }
        hold(&mut device, 0, 200, 20, false, true);
        device
    };
    // The earlier boot's first poll and the server's genuine ON, captured.
    let captured = |first| {
        let mut earlier = boot(first);
        let (_, signature) = send(&mut earlier, 1_000);
        (decimal(signature.counter()), server_mac(&signature, 200, signature.counter(), ON))
    };

    // Counting from the start each boot: the same request, so the captured answer checks.
    let (counter, mac) = captured(None);
    let mut later = boot(None);
    let (sent, _) = send(&mut later, 1_000);
    assert!(
        later.reply(sent, Millis(1_000), reply(200, &counter, &mac, ON)).is_ok(),
        "the gap the random start closes"
    );

    // From a random point each boot: the earlier boot's answer is forged for this one, OFF.
    let (counter, mac) = captured(Some(0x5EED_0001_2345_6789));
    let mut later = boot(Some(0x0BAD_C0FF_EE12_3456));
    let (sent, signature) = send(&mut later, 1_000);
    assert_eq!(signature.counter(), (0x0BAD_C0FF_EE12_3456 & FIRST_COUNTER_MASK) + 1, "the low 48 bits, and one above");
    assert_eq!(later.reply(sent, Millis(1_000), reply(200, &counter, &mac, ON)), Err(AnswerError::Forged));
    assert_eq!(later.drive(Millis(1_000)), Decision::Off(OffReason::NoCommand));
}

#[test]
fn a_forged_answer_is_off() {
    let mut device = device();
    genuine_on(&mut device, 1_000);
    let (sent, signature) = send(&mut device, 2_000);
    let counter = decimal(signature.counter());
    // Made by someone without the secret: another key.
    let other = LinkSecret::parse("pp_link_c29tZW9uZSBlbHNlJ3Mgc2VjcmV0LCBub3QgdGhpcyBvbmU").unwrap();
    let forged = link::to_hex(&other.answer_tag(&link::from_hex(&signature.mac_hex()).unwrap(), 200, 2, ON));
    assert_eq!(device.reply(sent, Millis(2_000), reply(200, &counter, &forged, ON)), Err(AnswerError::Forged));
    assert_eq!(device.drive(Millis(2_000)), Decision::Off(OffReason::NoCommand), "OFF at once, lease or not");
    assert_eq!(device.link_state(), LinkState::Forged);
}

#[test]
fn a_tampered_answer_is_off() {
    let mut device = device();
    genuine_on(&mut device, 1_000);
    let (sent, signature) = send(&mut device, 2_000);
    let counter = decimal(signature.counter());
    let mac = server_mac(&signature, 200, signature.counter(), ON);
    // One field changed on the way (a longer lease), the MAC left as it was.
    let tampered = String::from_utf8(ON.to_vec()).unwrap().replace("15000", "60000");
    assert_eq!(
        device.reply(sent, Millis(2_000), reply(200, &counter, &mac, tampered.as_bytes())),
        Err(AnswerError::Forged)
    );
    assert!(!device.drive(Millis(2_000)).is_on());
    // The same with a changed counter header, or a MAC one digit off.
    for (at, wrong_counter, wrong_digit) in [(3_000, true, false), (4_000, false, true)] {
        genuine_on(&mut device, at);
        let (sent, signature) = send(&mut device, at + 500);
        let counter = decimal(signature.counter() + u64::from(wrong_counter));
        let mut mac = server_mac(&signature, 200, signature.counter(), ON);
        if wrong_digit {
            mac[0] = if mac[0] == b'0' { b'1' } else { b'0' };
        }
        assert_eq!(device.reply(sent, Millis(at + 500), reply(200, &counter, &mac, ON)), Err(AnswerError::Forged));
        assert!(!device.drive(Millis(at + 500)).is_on());
    }
}

#[test]
fn a_captured_answer_replayed_later_is_off() {
    let mut device = device();
    // The attacker keeps the genuine ON answer to poll 1, with its headers.
    let (sent, first) = send(&mut device, 1_000);
    let counter = decimal(first.counter());
    let mac = server_mac(&first, 200, first.counter(), ON);
    device.reply(sent, Millis(1_000), reply(200, &counter, &mac, ON)).unwrap();
    // The run ends: the server says OFF ... and the attacker answers the next poll with the old ON.
    let (sent, _) = send(&mut device, 20_000);
    assert_eq!(device.reply(sent, Millis(20_000), reply(200, &counter, &mac, ON)), Err(AnswerError::Forged));
    assert!(!device.drive(Millis(20_000)).is_on());
}

#[test]
fn an_unsigned_answer_is_off_and_the_plain_path_is_closed() {
    let mut device = device();
    genuine_on(&mut device, 1_000);
    let (sent, _) = send(&mut device, 2_000);
    let unsigned = Reply { status: 200, counter: None, mac: None, body: ON };
    assert_eq!(device.reply(sent, Millis(2_000), unsigned), Err(AnswerError::Forged));
    assert!(!device.drive(Millis(2_000)).is_on());
    // A shell that hands a body in without its MAC gets nothing ON either.
    genuine_on(&mut device, 3_000);
    let sent = device.sent(Millis(3_500));
    assert_eq!(device.answer(sent, Millis(3_500), ON), Err(AnswerError::Forged));
    assert!(!device.drive(Millis(3_500)).is_on());
    // Nor does a poll that was not signed (a shell that forgot to): no request MAC to bind to.
    genuine_on(&mut device, 4_000);
    let sent = device.sent(Millis(4_500));
    assert_eq!(device.reply(sent, Millis(4_500), reply(200, b"5", &[b'0'; 64], ON)), Err(AnswerError::Forged));
    assert!(!device.drive(Millis(4_500)).is_on());
}

#[test]
fn a_failed_request_keeps_the_lease_and_says_what_failed() {
    let mut device = device();
    genuine_on(&mut device, 1_000);
    // A proxy's 502, unsigned: a failed poll; the lease of the last genuine answer still runs.
    let (sent, _) = send(&mut device, 2_000);
    let proxy = Reply { status: 502, counter: None, mac: None, body: b"<html>bad gateway</html>" };
    assert_eq!(device.reply(sent, Millis(2_000), proxy), Err(AnswerError::Refused(502)));
    assert!(device.drive(Millis(2_000)).is_on());
    assert_eq!((device.failures(), device.link_state()), (1, LinkState::Unreachable));
    assert_eq!(device.drive(Millis(16_000)), Decision::Off(OffReason::LeaseExpired));
    // The key refused: not the same as unreachable (the LED says so).
    let (sent, _) = send(&mut device, 17_000);
    let refused = Reply { status: 401, counter: None, mac: None, body: br#"{"error":{}}"# };
    assert_eq!(device.reply(sent, Millis(17_000), refused), Err(AnswerError::Refused(401)));
    assert_eq!(device.link_state(), LinkState::KeyRefused);
    let key_refused = pumppilot_controller::status::blink(true, device.link_state());
    device.poll_failed(Millis(18_000));
    assert_eq!(device.link_state(), LinkState::Unreachable);
    assert_ne!(pumppilot_controller::status::blink(true, device.link_state()), key_refused, "the LED tells them apart");
}

#[test]
fn after_a_reboot_a_signed_refusal_moves_the_counter_above_the_servers() {
    let mut device = device();
    // The device rebooted: it counts from 1, the server has seen up to 5000.
    let (sent, signature) = send(&mut device, 1_000);
    assert_eq!(signature.counter(), 1);
    let body = br#"{"error":{"code":"STALE_COUNTER","message":"..."}}"#;
    // A forged refusal naming a huge counter is not believed.
    let forged = reply(409, b"9000000000000000000", &[b'a'; 64], body);
    assert_eq!(device.reply(sent, Millis(1_000), forged), Err(AnswerError::Refused(409)));
    let (sent, signature) = send(&mut device, 2_000);
    assert_eq!(signature.counter(), 2, "a forged refusal changed nothing");
    let mac = server_mac(&signature, 409, 5_000, body);
    assert_eq!(device.reply(sent, Millis(2_000), reply(409, b"5000", &mac, body)), Err(AnswerError::Refused(409)));
    let (_, signature) = send(&mut device, 3_000);
    assert_eq!(signature.counter(), 5_001, "continues above the server's highest");
    // A signed refusal never moves the counter back.
    let (sent, signature) = send(&mut device, 4_000);
    let mac = server_mac(&signature, 409, 10, body);
    let _ = device.reply(sent, Millis(4_000), reply(409, b"10", &mac, body));
    assert_eq!(device.sign("POST", POLL_PATH, BODY).unwrap().counter(), 5_003);
}

#[test]
fn card_answers_are_checked_too() {
    let mut device = device();
    let tap_body = br#"{"uid":"04A1B2C3"}"#;
    let answer = br#"{"action":"STARTED"}"#;
    let signature = device.sign("POST", "/api/esp32/rfid", tap_body).unwrap();
    let counter = decimal(signature.counter());
    let mac = server_mac(&signature, 200, signature.counter(), answer);
    assert_eq!(device.card_reply(Some(signature), reply(200, &counter, &mac, answer)), CardFeedback::Started);
    let forged = br#"{"action":"DENIED"}"#;
    assert_eq!(device.card_reply(Some(signature), reply(200, &counter, &mac, forged)), CardFeedback::Error);
    let other = device.sign("POST", "/api/esp32/rfid", tap_body).unwrap();
    assert_eq!(
        device.card_reply(Some(other), reply(200, &counter, &mac, answer)),
        CardFeedback::Error,
        "another tap's"
    );
    let unsigned = Reply { status: 200, counter: None, mac: None, body: answer };
    assert_eq!(device.card_reply(Some(other), unsigned), CardFeedback::Error);
}

#[test]
fn a_device_without_a_secret_works_as_before() {
    let mut device = Controller::new(Settings::DEFAULT);
    hold(&mut device, 0, 200, 20, false, true);
    assert!(!device.signs());
    assert_eq!(device.sign("POST", POLL_PATH, BODY), None);
    let mut sent = device.sent(Millis(1_000));
    assert_eq!(device.sign_poll(&mut sent, "POST", POLL_PATH, BODY), None);
    let plain = Reply { status: 200, counter: None, mac: None, body: ON };
    assert!(device.reply(sent, Millis(1_000), plain).is_ok());
    assert!(device.drive(Millis(1_000)).is_on());
    let sent = device.sent(Millis(2_000));
    let refused = Reply { status: 503, counter: None, mac: None, body: b"" };
    assert_eq!(device.reply(sent, Millis(2_000), refused), Err(AnswerError::Refused(503)));
    assert!(device.drive(Millis(2_000)).is_on(), "a failed poll keeps the lease");
    let answer = br#"{"action":"QUEUED"}"#;
    assert_eq!(
        device.card_reply(None, Reply { status: 200, counter: None, mac: None, body: answer }),
        CardFeedback::Queued
    );
}
