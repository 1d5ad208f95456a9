//! JSON without an allocator, for the firmware and anything else that only has byte buffers.
//!
//! Built on `serde-json-core`, so the bytes are the same as `serde_json` makes and reads for these
//! types. Reading is strict where it matters: a body that is longer than its limit, not UTF-8, not
//! one complete JSON object, or has a missing field or an unknown enum name is an error, never a
//! guess. Unknown fields are skipped, so the server may add fields without breaking devices.

use serde::{Deserialize, Serialize};

use crate::{CardAnswer, CardTap, MAX_ANSWER_BYTES, PollAnswer, PollReport};

/// Largest card answer a device reads. The answer carries the queue entry beside the action,
/// so it is allowed to be larger than a poll answer; the device only keeps the action.
pub const MAX_CARD_ANSWER_BYTES: usize = 2048;

/// Longest encoded [`PollReport`] (every optional field present, a 40-character `fw`, every
/// number at its longest: about 255 bytes).
pub const MAX_REPORT_BYTES: usize = 288;

/// Why a body could not be read or written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonError {
    /// The body is longer than the limit for its kind.
    TooLong,
    /// The body is not UTF-8, not JSON, truncated, or does not have the expected shape.
    Invalid,
    /// The output buffer is too small.
    BufferFull,
}

impl core::fmt::Display for JsonError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            JsonError::TooLong => "body too long",
            JsonError::Invalid => "body is not the expected JSON",
            JsonError::BufferFull => "output buffer too small",
        })
    }
}

fn encode<T: Serialize>(value: &T, buf: &mut [u8]) -> Result<usize, JsonError> {
    serde_json_core::to_slice(value, buf).map_err(|_| JsonError::BufferFull)
}

fn decode<'a, T: Deserialize<'a>>(body: &'a [u8], limit: usize) -> Result<T, JsonError> {
    if body.len() > limit {
        return Err(JsonError::TooLong);
    }
    if core::str::from_utf8(body).is_err() || !lexically_sound(body) {
        return Err(JsonError::Invalid);
    }
    // `from_slice` also refuses trailing non-whitespace, so two objects back to back are invalid.
    serde_json_core::from_slice(body).map(|(value, _)| value).map_err(|_| JsonError::Invalid)
}

/// What serde-json-core does not check itself, so that a body it reads is one `serde_json` reads
/// too: no raw control character in a string or between tokens (JSON allows tab, line feed and
/// carriage return there only), and no escape other than `\"`, `\\`, `\/`, `\b`, `\f`, `\n`,
/// `\r`, `\t`, `\uXXXX`. (serde-json-core skips unknown fields without unescaping them.)
fn lexically_sound(body: &[u8]) -> bool {
    let mut bytes = body.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'"' => loop {
                match bytes.next() {
                    None => return false,
                    Some(b'"') => break,
                    Some(b'\\') => match bytes.next() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {}
                        Some(b'u') => {
                            if !(0..4).all(|_| bytes.next().is_some_and(u8::is_ascii_hexdigit)) {
                                return false;
                            }
                        }
                        _ => return false,
                    },
                    Some(&c) if c < 0x20 => return false,
                    Some(_) => {}
                }
            },
            b'\t' | b'\n' | b'\r' => {}
            c if c < 0x20 => return false,
            _ => {}
        }
    }
    true
}

/// Writes the body of `POST /api/esp32/poll`; returns how many bytes of `buf` it used.
pub fn encode_report(report: &PollReport<'_>, buf: &mut [u8]) -> Result<usize, JsonError> {
    encode(report, buf)
}

/// Writes a poll answer (the HTTP 200 body, the MQTT command's JSON): the very bytes `serde_json`
/// makes for [`PollAnswer`] (tested field by field against it), written directly, as the server
/// answers every poll with one; returns how many bytes of `buf` it used (at most
/// [`MAX_ANSWER_BYTES`]).
pub fn encode_answer(answer: &PollAnswer, buf: &mut [u8]) -> Result<usize, JsonError> {
    let mut out = Out { buf, at: 0 };
    out.put(b"{\"motor\":\"")?;
    out.put(answer.motor.as_str().as_bytes())?;
    out.put(b"\",\"state\":\"")?;
    out.put(answer.state.as_str().as_bytes())?;
    out.put(b"\",\"holdReason\":")?;
    match answer.hold_reason {
        Some(reason) => {
            out.put(b"\"")?;
            out.put(reason.as_str().as_bytes())?;
            out.put(b"\"")?;
        }
        None => out.put(b"null")?,
    }
    out.put(b",\"remainingSeconds\":")?;
    out.number(answer.remaining_seconds.into())?;
    out.put(b",\"pollMs\":")?;
    out.number(answer.poll_ms.into())?;
    out.put(b",\"leaseMs\":")?;
    out.number(answer.lease_ms.into())?;
    out.put(b",\"seq\":")?;
    out.number(answer.seq)?;
    out.put(b",\"minOffMs\":")?;
    out.number(answer.min_off_ms.into())?;
    out.put(b",\"gridSettleMs\":")?;
    out.number(answer.grid_settle_ms.into())?;
    out.put(b",\"maxStartsPerHour\":")?;
    out.number(answer.max_starts_per_hour.into())?;
    out.put(b"}")?;
    Ok(out.at)
}

/// A caller's buffer, written from the start.
struct Out<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Out<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<(), JsonError> {
        let end = self.at + bytes.len();
        self.buf.get_mut(self.at..end).ok_or(JsonError::BufferFull)?.copy_from_slice(bytes);
        self.at = end;
        Ok(())
    }

    fn number(&mut self, n: u64) -> Result<(), JsonError> {
        let mut digits = [0u8; 20];
        self.put(crate::link::decimal(n, &mut digits))
    }
}

/// Reads the answer to a poll (the HTTP 200 body). Longer than [`MAX_ANSWER_BYTES`] is an error.
pub fn decode_answer(body: &[u8]) -> Result<PollAnswer, JsonError> {
    decode(body, MAX_ANSWER_BYTES)
}

/// The firmware version a poll answer says is meant for this device (`update`), if any: read
/// from an answer the controller has accepted (`Controller::reply`), never on its own.
pub fn decode_update(body: &[u8]) -> Option<&str> {
    #[derive(Deserialize)]
    struct Hint<'a> {
        #[serde(default, borrow)]
        update: Option<&'a str>,
    }
    let hint: Hint<'_> = decode(body, MAX_ANSWER_BYTES).ok()?;
    hint.update.filter(|version| crate::firmware::valid_version(version))
}

/// A firmware image's signed description as the server gives it
/// (`GET /api/esp32/firmware/{version}/release`: `{version, size, sha256, signature, …}`, the
/// digest and signature in hex), or `None` when it is not one. Its signature is checked by
/// `pumppilot_controller::Update::begin`, not here.
pub fn decode_release(body: &[u8]) -> Option<crate::firmware::Release<'_>> {
    #[derive(Deserialize)]
    struct Description<'a> {
        version: &'a str,
        size: u32,
        sha256: &'a str,
        signature: &'a str,
    }
    let d: Description<'_> = decode(body, 1024).ok()?;
    let signature = d.signature.as_bytes();
    if signature.len() != 128 || !crate::firmware::valid_version(d.version) {
        return None;
    }
    let (high, low) = (crate::link::from_hex(&signature[..64])?, crate::link::from_hex(&signature[64..])?);
    let mut full = [0u8; 64];
    full[..32].copy_from_slice(&high);
    full[32..].copy_from_slice(&low);
    Some(crate::firmware::Release {
        version: d.version,
        size: d.size,
        sha256: crate::link::from_hex(d.sha256.as_bytes())?,
        signature: full,
    })
}

/// The name of the optional field that numbers a report and names it in a command, over MQTT
/// (`docs/DEVICE.md`, "MQTT"): `"ref"`, a `u32`, on both the report and the command.
pub const REF_FIELD: &str = "ref";

/// Longest MQTT report: a [`PollReport`] and its `,"ref":4294967295`.
pub const MAX_MQTT_REPORT_BYTES: usize = MAX_REPORT_BYTES + 17;

/// Writes an MQTT report: the body of `POST /api/esp32/poll` with `"ref":reference` as its last
/// field (the bytes `serde_json` makes for the same fields); returns how many bytes it used.
pub fn encode_report_ref(report: &PollReport<'_>, reference: u32, buf: &mut [u8]) -> Result<usize, JsonError> {
    let n = encode(report, buf)?;
    // The report always has fields, so it ends `...}`: put `,"ref":N}` in place of the brace.
    let mut digits = [0u8; 10];
    let mut value = reference;
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    let tail = [b",\"ref\":".as_slice(), &digits[start..], b"}"];
    let len = n - 1 + tail.iter().map(|part| part.len()).sum::<usize>();
    if buf.len() < len {
        return Err(JsonError::BufferFull);
    }
    let mut at = n - 1;
    for part in tail {
        buf[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    Ok(len)
}

/// The `ref` of an MQTT report or command: `Ok(None)` when the body has none (or `null`), an
/// error when the body is not one JSON object within `limit` bytes or its `ref` is not a `u32`.
/// Read beside [`decode_answer`] (a device) or the report (the server), never on its own.
pub fn decode_ref(body: &[u8], limit: usize) -> Result<Option<u32>, JsonError> {
    #[derive(Deserialize)]
    struct Ref {
        #[serde(default, rename = "ref")]
        reference: Option<u32>,
    }
    decode::<Ref>(body, limit).map(|found| found.reference)
}

/// Writes the body of `POST /api/esp32/rfid`; returns how many bytes of `buf` it used.
pub fn encode_card_tap(tap: &CardTap<'_>, buf: &mut [u8]) -> Result<usize, JsonError> {
    encode(tap, buf)
}

/// Reads the answer to a card tap (the HTTP 200 body), keeping only the action.
pub fn decode_card_answer(body: &[u8]) -> Result<CardAnswer, JsonError> {
    decode(body, MAX_CARD_ANSWER_BYTES)
}

#[cfg(test)]
mod update_tests {
    use super::*;

    #[test]
    fn the_update_hint_is_read_beside_the_answer() {
        let with = br#"{"motor":"OFF","state":"IDLE","holdReason":null,"remainingSeconds":0,"pollMs":5000,"leaseMs":15000,"seq":1,"minOffMs":0,"gridSettleMs":0,"maxStartsPerHour":0,"update":"1.5.0"}"#;
        assert_eq!(decode_update(with), Some("1.5.0"));
        assert!(decode_answer(with).is_ok(), "an answer with the hint is still an answer");
        let without = br#"{"motor":"OFF","state":"IDLE","holdReason":null,"remainingSeconds":0,"pollMs":5000,"leaseMs":15000,"seq":1,"minOffMs":0,"gridSettleMs":0,"maxStartsPerHour":0}"#;
        assert_eq!(decode_update(without), None);
        assert_eq!(decode_update(br#"{"update":"../../etc"}"#), None, "not a version");
        assert_eq!(decode_update(b"garbage"), None);
    }

    #[test]
    fn a_release_description_is_read_strictly() {
        let good = br#"{"version":"2.0.0","size":40000,"sha256":"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff","signature":"0101010101010101010101010101010101010101010101010101010101010101fefefefefefefefefefefefefefefefefefefefefefefefefefefefefefefefe","publishedAt":"2026-12-01T09:00:00Z","rolloutPercent":100,"rolloutTenant":null}"#;
        let release = decode_release(good).expect("a description");
        assert_eq!(
            (release.version, release.size, release.sha256[1], release.signature[0], release.signature[63]),
            ("2.0.0", 40_000, 0x11, 1, 0xfe)
        );
        let short = br#"{"version":"2.0.0","size":1,"sha256":"0011","signature":"01"}"#;
        assert!(decode_release(short).is_none());
        assert!(decode_release(br#"{"version":"2.0.0"}"#).is_none());
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::{format, string::String};

    use super::*;
    use crate::{CardAction, HoldReason, Motor, MotorState, ReaderState, RelayOff, ResetReason};

    const ANSWER: &str = r#"{"motor":"ON","state":"RUNNING","holdReason":null,"remainingSeconds":0,"pollMs":5000,"leaseMs":15000,"seq":42,"minOffMs":60000,"gridSettleMs":45000,"maxStartsPerHour":6}"#;

    #[test]
    fn an_answer_is_written_as_serde_json_writes_it() {
        let numbers: [(u32, u32, u32, u64, u32, u32, u8); 4] = [
            (0, 5000, 15000, 42, 60000, 45000, 6),
            (0, 0, 0, 0, 0, 0, 0),
            (9, 10, 99, 100, 1, 19, 10),
            (u32::MAX, u32::MAX, u32::MAX, u64::MAX, u32::MAX, u32::MAX, u8::MAX),
        ];
        let mut written = 0;
        for motor in [Motor::On, Motor::Off] {
            for state in [MotorState::Idle, MotorState::Running, MotorState::Hold] {
                for hold_reason in core::iter::once(None).chain(HoldReason::ALL.map(Some)) {
                    for (remaining_seconds, poll_ms, lease_ms, seq, min_off_ms, grid_settle_ms, max_starts) in numbers {
                        let answer = PollAnswer {
                            motor,
                            state,
                            hold_reason,
                            remaining_seconds,
                            poll_ms,
                            lease_ms,
                            seq,
                            min_off_ms,
                            grid_settle_ms,
                            max_starts_per_hour: max_starts,
                        };
                        let mut buf = [0u8; MAX_ANSWER_BYTES];
                        let n = encode_answer(&answer, &mut buf).unwrap();
                        assert_eq!(
                            core::str::from_utf8(&buf[..n]).unwrap(),
                            serde_json::to_string(&answer).unwrap(),
                            "{answer:?}"
                        );
                        assert_eq!(decode_answer(&buf[..n]), Ok(answer));
                        // One byte short of room: refused, never cut.
                        assert_eq!(encode_answer(&answer, &mut buf[..n - 1]), Err(JsonError::BufferFull));
                        written += 1;
                    }
                }
            }
        }
        assert_eq!(written, 2 * 3 * 8 * 4);
    }

    #[test]
    fn answer_reads_what_the_server_writes() {
        let answer = decode_answer(ANSWER.as_bytes()).unwrap();
        assert_eq!(answer, serde_json::from_str::<PollAnswer>(ANSWER).unwrap());
        assert!(answer.commands_on());
        let held = decode_answer(
            br#"{"motor":"OFF","state":"HOLD","holdReason":"LOAD_SHEDDING","remainingSeconds":61,"pollMs":5000,"leaseMs":15000,"seq":43,"minOffMs":0,"gridSettleMs":0,"maxStartsPerHour":0}"#,
        )
        .unwrap();
        assert_eq!(
            (held.motor, held.state, held.hold_reason),
            (Motor::Off, MotorState::Hold, Some(HoldReason::LoadShedding))
        );
        assert_eq!((answer.min_off_ms, answer.grid_settle_ms, answer.max_starts_per_hour), (60000, 45000, 6));
    }

    #[test]
    fn every_hold_reason_reads_as_serde_json_reads_it() {
        for reason in HoldReason::ALL {
            let body = ANSWER
                .replace("\"ON\"", "\"OFF\"")
                .replace("RUNNING", "HOLD")
                .replace("\"holdReason\":null", &format!("\"holdReason\":\"{}\"", reason.as_str()));
            let ours = decode_answer(body.as_bytes()).unwrap();
            assert_eq!(ours, serde_json::from_str::<PollAnswer>(&body).unwrap());
            assert_eq!(ours.hold_reason, Some(reason));
            assert!(!ours.commands_on());
        }
    }

    #[test]
    fn restart_protection_is_required_and_bounded() {
        // An answer from a server that does not send restart protection is not guessed at: the
        // device treats it as garbage (relay OFF).
        for field in ["\"minOffMs\":60000,", "\"gridSettleMs\":45000,", ",\"maxStartsPerHour\":6"] {
            let body = ANSWER.replace(field, "");
            assert!(serde_json::from_str::<PollAnswer>(&body).is_err(), "{body}");
            assert_eq!(decode_answer(body.as_bytes()), Err(JsonError::Invalid), "{body}");
        }
        for (value, fits) in [("255", true), ("0", true), ("256", false), ("-1", false), ("6.0", false)] {
            let body = ANSWER.replace("\"maxStartsPerHour\":6", &format!("\"maxStartsPerHour\":{value}"));
            assert_eq!(serde_json::from_str::<PollAnswer>(&body).is_ok(), fits, "{body}");
            assert_eq!(decode_answer(body.as_bytes()).is_ok(), fits, "{body}");
        }
    }

    #[test]
    fn answer_skips_fields_added_later_and_accepts_whitespace() {
        let body = format!(" {{\"newThing\":{{\"a\":[1,2,\"x\\\"y\"]}},{} \n", &ANSWER[1..]);
        assert!(decode_answer(body.as_bytes()).unwrap().commands_on());
    }

    #[test]
    fn answer_refuses_garbage() {
        let too_long = format!("{}{}", ANSWER, " ".repeat(MAX_ANSWER_BYTES - ANSWER.len() + 1));
        assert_eq!(decode_answer(too_long.as_bytes()), Err(JsonError::TooLong));
        for cut in 0..ANSWER.len() {
            assert_eq!(decode_answer(&ANSWER.as_bytes()[..cut]), Err(JsonError::Invalid), "cut at {cut}");
        }
        let bad = [
            ANSWER.replace("\"ON\"", "\"on\""),
            ANSWER.replace("RUNNING", "RUNNING_FAST"),
            ANSWER.replace("null", "\"TEA_BREAK\""),
            ANSWER.replace("15000", "-1"),
            ANSWER.replace("15000", "15000.5"),
            ANSWER.replace(",\"seq\":42", ""),
            ANSWER.replace("\"pollMs\":5000,", "\"pollMs\":5000,\"pollMs\":1,"),
            format!("{ANSWER}{ANSWER}"),
            String::from("[]"),
            String::from("null"),
        ];
        for body in bad {
            assert_eq!(decode_answer(body.as_bytes()), Err(JsonError::Invalid), "{body}");
        }
        let mut not_utf8 = String::from(ANSWER).into_bytes();
        not_utf8.insert(1, 0xFF);
        assert_eq!(decode_answer(&not_utf8), Err(JsonError::Invalid));
        let control_in_a_key = ANSWER.replace("holdReason", "\0oldReason");
        assert_eq!(decode_answer(control_in_a_key.as_bytes()), Err(JsonError::Invalid));
        assert!(decode_answer(ANSWER.replace(",", ",\t\r\n").as_bytes()).is_ok());
        for key in ["\toldReason", "\\oldReason", "\\u00GGReason", "holdReason\\", "\\u123"] {
            let body = ANSWER.replace("holdReason", key);
            assert_eq!(decode_answer(body.as_bytes()), Err(JsonError::Invalid), "{body}");
        }
        let escapes = format!("{{\"note\":\"a\\\"b\\\\c\\/\\b\\f\\n\\r\\t\\u00e9\",{}", &ANSWER[1..]);
        assert!(serde_json::from_str::<PollAnswer>(&escapes).is_ok());
        assert!(decode_answer(escapes.as_bytes()).is_ok(), "{escapes}");
    }

    #[test]
    fn report_writes_what_the_server_reads() {
        let report = PollReport {
            load_shedding: true,
            ready: false,
            relay: false,
            fw: Some("pumppilot-fw/0.1.0 esp32c3"),
            uptime_ms: Some(u64::MAX),
            rssi: Some(-67),
            reset: Some(ResetReason::Watchdog),
            feedback: Some(true),
            reader: Some(ReaderState::Ok),
            relay_off: Some(RelayOff::NotReady),
        };
        let mut buf = [0u8; MAX_REPORT_BYTES];
        let n = encode_report(&report, &mut buf).unwrap();
        assert_eq!(serde_json::from_slice::<PollReport>(&buf[..n]).unwrap().uptime_ms, report.uptime_ms);
        let expected = serde_json::to_string(&report).unwrap();
        assert_eq!(core::str::from_utf8(&buf[..n]).unwrap(), expected);
        assert_eq!(encode_report(&report, &mut buf[..10]), Err(JsonError::BufferFull));
        for reset in [ResetReason::PowerOn, ResetReason::BrownOut, ResetReason::Software] {
            let longest = PollReport {
                load_shedding: false,
                fw: Some(&"f".repeat(40)),
                rssi: Some(i16::MIN),
                reset: Some(reset),
                feedback: Some(false),
                reader: Some(ReaderState::Absent),
                relay_off: Some(RelayOff::GridSettling),
                ..report
            };
            let n = encode_report(&longest, &mut buf).unwrap();
            assert_eq!(serde_json::from_slice::<PollReport>(&buf[..n]).unwrap(), longest);
        }
        let minimal = PollReport {
            fw: None,
            uptime_ms: None,
            rssi: None,
            reset: None,
            feedback: None,
            reader: None,
            relay_off: None,
            ..report
        };
        let n = encode_report(&minimal, &mut buf).unwrap();
        assert_eq!(&buf[..n], br#"{"loadShedding":true,"ready":false,"relay":false}"#);
    }

    #[test]
    fn an_mqtt_report_is_the_report_with_its_ref() {
        let report = PollReport {
            load_shedding: false,
            ready: true,
            relay: false,
            fw: Some("pumppilot-fw/0.1.0"),
            uptime_ms: Some(12),
            rssi: None,
            reset: None,
            feedback: None,
            reader: None,
            relay_off: Some(RelayOff::NoCommand),
        };
        let mut buf = [0u8; MAX_MQTT_REPORT_BYTES];
        for reference in [0, 7, 10, 4_294_967_295] {
            let n = encode_report_ref(&report, reference, &mut buf).unwrap();
            let mut expected = serde_json::to_value(report).unwrap();
            expected["ref"] = serde_json::json!(reference);
            assert_eq!(serde_json::from_slice::<serde_json::Value>(&buf[..n]).unwrap(), expected);
            assert!(core::str::from_utf8(&buf[..n]).unwrap().ends_with(&format!(",\"ref\":{reference}}}")));
            assert_eq!(decode_ref(&buf[..n], MAX_MQTT_REPORT_BYTES), Ok(Some(reference)));
            assert_eq!(serde_json::from_slice::<PollReport>(&buf[..n]).unwrap(), report, "HTTP's reader skips it");
            let plain = encode_report(&report, &mut [0u8; MAX_REPORT_BYTES]).unwrap();
            assert_eq!(encode_report_ref(&report, reference, &mut buf[..plain + 3]), Err(JsonError::BufferFull));
        }
        // The longest report with the longest ref fits.
        let longest = PollReport {
            load_shedding: true,
            fw: Some(&"f".repeat(40)),
            uptime_ms: Some(u64::MAX),
            rssi: Some(i16::MIN),
            reset: Some(ResetReason::BrownOut),
            feedback: Some(false),
            reader: Some(ReaderState::Absent),
            relay_off: Some(RelayOff::GridSettling),
            ..report
        };
        assert!(encode_report_ref(&longest, u32::MAX, &mut buf).is_ok());
    }

    #[test]
    fn a_ref_is_a_u32_or_absent() {
        assert_eq!(decode_ref(ANSWER.as_bytes(), MAX_ANSWER_BYTES), Ok(None));
        let with = ANSWER.replace("\"seq\":42", "\"seq\":42,\"ref\":9");
        assert_eq!(decode_ref(with.as_bytes(), MAX_ANSWER_BYTES), Ok(Some(9)));
        assert!(decode_answer(with.as_bytes()).unwrap().commands_on(), "the answer reads past it");
        assert_eq!(decode_ref(br#"{"ref":null}"#, 64), Ok(None));
        for bad in [r#"{"ref":-1}"#, r#"{"ref":4294967296}"#, r#"{"ref":"9"}"#, r#"{"ref":1.5}"#, "[]", "{"] {
            assert_eq!(decode_ref(bad.as_bytes(), 64), Err(JsonError::Invalid), "{bad}");
        }
        assert_eq!(decode_ref(with.as_bytes(), 10), Err(JsonError::TooLong));
    }

    #[test]
    fn card_tap_and_answer() {
        let mut buf = [0u8; 64];
        let n = encode_card_tap(&CardTap { uid: "04A1B2C3", tap: None }, &mut buf).unwrap();
        assert_eq!(&buf[..n], br#"{"uid":"04A1B2C3"}"#);
        // The longest tap fits the firmware's buffer (`firmware/src/rfid.rs`, 64 bytes).
        let n = encode_card_tap(&CardTap { uid: "DEADBEEF010203040506", tap: Some(u32::MAX) }, &mut buf).unwrap();
        assert_eq!(&buf[..n], br#"{"uid":"DEADBEEF010203040506","tap":4294967295}"#);
        let answer = br#"{"action":"QUEUED","entry":{"id":"e1","userName":"Ra\"him","status":"WAITING","position":2,"holdReason":null,"startedAt":null}}"#;
        assert_eq!(decode_card_answer(answer).unwrap().action, CardAction::Queued);
        assert_eq!(decode_card_answer(br#"{"action":"DENIED"}"#).unwrap().action, CardAction::Denied);
        assert_eq!(decode_card_answer(br#"{"action":"MAYBE"}"#), Err(JsonError::Invalid));
        assert_eq!(decode_card_answer(br#"{"error":{"code":"NOT_FOUND"}}"#), Err(JsonError::Invalid));
    }
}
