//! The RFID flow: one tap per card held to the reader, upper-case hex, and the feedback.

use pumppilot_controller::{CardFeedback, CardUid, Controller, Millis, Settings};
use pumppilot_protocol::json;

const A: &[u8] = &[0x04, 0xA1, 0xB2, 0xC3];
const B: &[u8] = &[0xDE, 0xAD, 0xBE, 0xEF, 0x01, 0x02, 0x03];

fn tap(device: &mut Controller, at: u64, uid: &[u8]) -> Option<String> {
    device.card(Millis(at), uid).map(|card| card.as_str().to_owned())
}

#[test]
fn uid_is_upper_case_hex_of_four_to_ten_bytes() {
    assert_eq!(CardUid::from_bytes(A).unwrap().as_str(), "04A1B2C3");
    assert_eq!(CardUid::from_bytes(B).unwrap().as_str(), "DEADBEEF010203");
    assert_eq!(CardUid::from_bytes(&[0xFF; 10]).unwrap().as_str(), "FFFFFFFFFFFFFFFFFFFF");
    assert_eq!(CardUid::from_bytes(&[0x00; 3]), None);
    assert_eq!(CardUid::from_bytes(&[0x00; 11]), None);
    assert_eq!(CardUid::from_bytes(&[]), None);
    let mut device = Controller::new(Settings::DEFAULT);
    assert_eq!(device.card(Millis(0), &[1, 2]), None);
}

#[test]
fn the_same_card_within_two_seconds_counts_once() {
    let mut device = Controller::new(Settings::DEFAULT);
    assert_eq!(tap(&mut device, 10_000, A).as_deref(), Some("04A1B2C3"));
    // Slipped off and back, or tapped twice in a hurry: the same tap.
    assert_eq!(tap(&mut device, 11_999, A), None);
    // Held to the reader: every sighting renews the window, so it stays one tap.
    for at in (12_000..20_000).step_by(300) {
        assert_eq!(tap(&mut device, at, A), None, "at {at}");
    }
    // Taken away for two seconds, then held again: a new tap.
    assert_eq!(tap(&mut device, 21_800, A).as_deref(), Some("04A1B2C3"));
    // Another card counts at once, and then the first again.
    assert_eq!(tap(&mut device, 21_900, B).as_deref(), Some("DEADBEEF010203"));
    assert_eq!(tap(&mut device, 22_000, A).as_deref(), Some("04A1B2C3"));
    // A clock that went back does not swallow a tap.
    assert_eq!(tap(&mut device, 5_000, A).as_deref(), Some("04A1B2C3"));
}

/// The body a board sends for a tap, as the firmware encodes it once and sends it for each attempt.
fn body(tap: &pumppilot_controller::Tap) -> String {
    let mut buf = [0u8; 64];
    let n = json::encode_card_tap(&tap.tap(), &mut buf).unwrap();
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

#[test]
fn a_tap_keeps_its_id_through_its_retries_and_the_next_tap_gets_another() {
    let mut device = Controller::new(Settings::DEFAULT);
    device.set_first_counter(0xABCD_1234_0000_0007);
    let first = device.card(Millis(10_000), A).unwrap();
    assert_eq!(first.id, 0xABCD_1235, "numbered from the boot's random draw");
    // Its retries send the body made once: the same id each time.
    assert_eq!(body(&first), format!(r#"{{"uid":"04A1B2C3","tap":{}}}"#, 0xABCD_1235u32));
    assert_eq!(body(&first), body(&first));
    // Held to the reader: still the one tap, no new id.
    assert!(device.card(Millis(10_500), A).is_none());
    // The same card again after two seconds away, and another card: each a new tap with a new id.
    let again = device.card(Millis(12_500), A).unwrap();
    let other = device.card(Millis(12_600), B).unwrap();
    assert_eq!((again.id, other.id), (first.id + 1, first.id + 2));
    assert_ne!(body(&again), body(&first), "a new tap is not a retry of the last");
    // Another boot numbers its taps from another draw, so they do not name an earlier boot's.
    let mut rebooted = Controller::new(Settings::DEFAULT);
    rebooted.set_first_counter(0x1111_2222_0000_0007);
    assert_eq!(rebooted.card(Millis(10_000), A).unwrap().id, 0x1111_2223);
    // A shell that names its first counter (a test) draws the taps' point apart: two boots of one
    // counter still number their taps afresh.
    let mut named = Controller::new(Settings::DEFAULT);
    named.set_first_counter(5_000);
    named.set_first_tap(0x7777_0000);
    assert_eq!(named.card(Millis(10_000), A).unwrap().id, 0x7777_0001);
}

#[test]
fn feedback_follows_the_action_and_anything_else_is_an_error() {
    let device = Controller::new(Settings::DEFAULT);
    let cases: [(&[u8], CardFeedback); 9] = [
        (
            br#"{"action":"STARTED","entry":{"id":"1","status":"RUNNING","remainingSeconds":600}}"#,
            CardFeedback::Started,
        ),
        (br#"{"action":"QUEUED","entry":{"id":"1","status":"WAITING","position":2}}"#, CardFeedback::Queued),
        (br#"{"action":"STOPPED"}"#, CardFeedback::Stopped),
        (br#"{"action":"DENIED"}"#, CardFeedback::Denied),
        (br#"{"action":"denied"}"#, CardFeedback::Error),
        (br#"{"error":{"code":"NOT_FOUND","message":"no such card"}}"#, CardFeedback::Error),
        (br#"{"action":"STARTED""#, CardFeedback::Error),
        (b"", CardFeedback::Error),
        (&[0xFF, 0x00], CardFeedback::Error),
    ];
    for (body, feedback) in cases {
        assert_eq!(device.card_answer(body), feedback, "{}", String::from_utf8_lossy(body));
    }
    let huge = format!(r#"{{"action":"STARTED","pad":"{}"}}"#, "x".repeat(4_000));
    assert_eq!(device.card_answer(huge.as_bytes()), CardFeedback::Error);
}
