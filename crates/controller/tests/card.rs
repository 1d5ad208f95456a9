//! The RFID flow: one tap per card held to the reader, upper-case hex, and the feedback.

use pumppilot_controller::{CardFeedback, CardUid, Controller, Millis, Settings};

const A: &[u8] = &[0x04, 0xA1, 0xB2, 0xC3];
const B: &[u8] = &[0xDE, 0xAD, 0xBE, 0xEF, 0x01, 0x02, 0x03];

fn tap(device: &mut Controller, at: u64, uid: &[u8]) -> Option<String> {
    device.card(Millis(at), uid).map(|card| card.as_str().to_owned())
}

#[test]
fn uid_is_upper_case_hex_of_four_to_ten_bytes() {
    assert_eq!(CardUid::from_bytes(A).unwrap().as_str(), "04A1B2C3");
    assert_eq!(CardUid::from_bytes(B).unwrap().tap().uid, "DEADBEEF010203");
    assert_eq!(CardUid::from_bytes(&[0xFF; 10]).unwrap().as_str(), "FFFFFFFFFFFFFFFFFFFF");
    assert_eq!(CardUid::from_bytes(&[0x00; 3]), None);
    assert_eq!(CardUid::from_bytes(&[0x00; 11]), None);
    assert_eq!(CardUid::from_bytes(&[]), None);
    let mut device = Controller::new(Settings::DEFAULT);
    assert_eq!(device.card(Millis(0), &[1, 2]), None);
}

#[test]
fn the_same_card_within_a_second_counts_once() {
    let mut device = Controller::new(Settings::DEFAULT);
    assert_eq!(tap(&mut device, 10_000, A).as_deref(), Some("04A1B2C3"));
    assert_eq!(tap(&mut device, 10_999, A), None);
    // Held to the reader: every sighting renews the window, so it stays one tap.
    for at in (11_000..20_000).step_by(300) {
        assert_eq!(tap(&mut device, at, A), None, "at {at}");
    }
    // Taken away for a second, then held again: a new tap.
    assert_eq!(tap(&mut device, 20_900, A).as_deref(), Some("04A1B2C3"));
    // Another card counts at once, and then the first again.
    assert_eq!(tap(&mut device, 21_000, B).as_deref(), Some("DEADBEEF010203"));
    assert_eq!(tap(&mut device, 21_100, A).as_deref(), Some("04A1B2C3"));
    // A clock that went back does not swallow a tap.
    assert_eq!(tap(&mut device, 5_000, A).as_deref(), Some("04A1B2C3"));
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
