//! The authenticated link between a device and the server: HMAC-SHA-256 with a per-device secret
//! that never travels (see `docs/DEVICE.md`, "The authenticated link").
//!
//! - A request carries a counter (`X-PumpPilot-Counter`, decimal, from 1, never repeated) and
//!   `X-PumpPilot-Mac`: HMAC(secret, `"PP-REQ-1\n" method "\n" path-and-query "\n" counter "\n" body`).
//!   The server refuses a MAC that does not check, and a counter it has seen or that is too old.
//! - Every answer to a request whose MAC checked carries `X-PumpPilot-Counter` (the request's own
//!   counter, or on a `409 STALE_COUNTER` refusal the highest counter the server accepted) and
//!   `X-PumpPilot-Mac`: HMAC(secret, `"PP-ANS-1\n"` request MAC, status (2 bytes big-endian),
//!   counter (8 bytes big-endian), body). It binds the answer to the very request: an answer
//!   captured earlier, or made by anyone without the secret, does not check.
//!
//! - Over MQTT (no request and answer, no headers) a signed payload starts with a line
//!   `<counter> <mac-hex>\n` before the JSON ([`frame`], [`unframe`]); the MAC is
//!   HMAC(secret, tag "\n" topic "\n" counter "\n" JSON) with the tag of its kind ([`MqttKind`]):
//!   a report carries the device's next counter (accepted once, as for HTTP); a command the counter
//!   of the report it answers (0 before any); a refusal of a report's counter the highest counter
//!   the server accepted.
//!
//! Both MACs are compared in constant time. Everything here is `no_std` and allocation-free, so
//! the firmware, the simulator and the server share these exact functions.

use hmac::{Hmac, HmacCore, Mac as _, digest::KeyInit as _};
use sha2::Sha256;

/// The request header with the counter (decimal).
pub const COUNTER_HEADER: &str = "x-pumppilot-counter";
/// The request and answer header with the MAC (64 lower-case hex digits).
pub const MAC_HEADER: &str = "x-pumppilot-mac";
/// Every link secret starts with this (the server shows it once, like the device key).
pub const SECRET_PREFIX: &str = "pp_link_";
/// Longest secret a device keeps (the server's are 51 bytes).
pub const MAX_SECRET_BYTES: usize = 64;
/// Shortest secret accepted: 16 bytes after the prefix.
pub const MIN_SECRET_BYTES: usize = SECRET_PREFIX.len() + 16;
/// The highest counter the server accepts (it keeps counters as signed 64-bit numbers).
pub const MAX_COUNTER: u64 = i64::MAX as u64;

/// An HMAC-SHA-256 tag.
pub type Tag = [u8; 32];

type HmacSha256 = Hmac<Sha256>;

/// A device's link secret, kept by value (no allocation), as the bytes of its text form.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct LinkSecret {
    bytes: [u8; MAX_SECRET_BYTES],
    len: u8,
}

impl core::fmt::Debug for LinkSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("LinkSecret(..)")
    }
}

impl LinkSecret {
    /// The secret from its text form (`pp_link_…`), or `None` when it does not look like one:
    /// another prefix, shorter than [`MIN_SECRET_BYTES`], longer than [`MAX_SECRET_BYTES`], or a
    /// character outside letters, digits, `-` and `_`.
    pub const fn parse(text: &str) -> Option<LinkSecret> {
        let text = text.as_bytes();
        let prefix = SECRET_PREFIX.as_bytes();
        if text.len() < MIN_SECRET_BYTES || text.len() > MAX_SECRET_BYTES {
            return None;
        }
        let mut bytes = [0u8; MAX_SECRET_BYTES];
        let mut i = 0;
        while i < text.len() {
            let b = text[i];
            if i < prefix.len() && b != prefix[i] {
                return None;
            }
            if !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
                return None;
            }
            bytes[i] = b;
            i += 1;
        }
        Some(LinkSecret { bytes, len: text.len() as u8 })
    }

    fn key(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// The secret's text form (to keep it in the device's settings).
    pub fn as_bytes(&self) -> &[u8] {
        self.key()
    }

    /// The secret keyed once, for a holder that computes many MACs with it (the server).
    pub fn keyed(&self) -> LinkKey {
        LinkKey { core: HmacCore::new_from_slice(self.key()).expect("HMAC takes any key length") }
    }

    /// The MAC of a request.
    pub fn request_tag(&self, method: &str, path: &str, counter: u64, body: &[u8]) -> Tag {
        self.keyed().request_tag(method, path, counter, body)
    }

    /// True when `tag` (raw bytes) is the MAC of this request (constant-time).
    pub fn check_request(&self, method: &str, path: &str, counter: u64, body: &[u8], tag: &[u8]) -> bool {
        self.keyed().check_request(method, path, counter, body, tag)
    }

    /// The MAC of an answer to the request whose MAC was `request`.
    pub fn answer_tag(&self, request: &Tag, status: u16, counter: u64, body: &[u8]) -> Tag {
        self.keyed().answer_tag(request, status, counter, body)
    }

    /// True when `tag` (raw bytes) is the MAC of this answer (constant-time).
    pub fn check_answer(&self, request: &Tag, status: u16, counter: u64, body: &[u8], tag: &[u8]) -> bool {
        self.keyed().check_answer(request, status, counter, body, tag)
    }

    /// The MAC of an MQTT message of `kind` on `topic` with `counter` and the JSON `body`.
    pub fn mqtt_tag(&self, kind: MqttKind, topic: &str, counter: u64, body: &[u8]) -> Tag {
        self.keyed().mqtt_tag(kind, topic, counter, body)
    }

    /// True when `tag` is the MAC of this MQTT message (constant-time).
    pub fn check_mqtt(&self, kind: MqttKind, topic: &str, counter: u64, body: &[u8], tag: &Tag) -> bool {
        self.keyed().check_mqtt(kind, topic, counter, body, tag)
    }
}

/// A [`LinkSecret`] keyed once: HMAC's inner and outer states after the key (80 bytes), so each
/// MAC made with it costs its message's blocks alone, not the key's two blocks as well. The MACs
/// are the secret's own ([`LinkSecret::request_tag`] and the others are these).
#[derive(Clone)]
pub struct LinkKey {
    core: HmacCore<Sha256>,
}

impl core::fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("LinkKey(..)")
    }
}

impl LinkKey {
    fn mac(&self) -> HmacSha256 {
        HmacSha256::from_core(self.core.clone())
    }

    /// The MAC of a request.
    pub fn request_tag(&self, method: &str, path: &str, counter: u64, body: &[u8]) -> Tag {
        let mut mac = self.mac();
        feed_request(&mut mac, method, path, counter, body);
        mac.finalize().into_bytes().into()
    }

    /// True when `tag` (raw bytes) is the MAC of this request (constant-time).
    pub fn check_request(&self, method: &str, path: &str, counter: u64, body: &[u8], tag: &[u8]) -> bool {
        let mut mac = self.mac();
        feed_request(&mut mac, method, path, counter, body);
        mac.verify_slice(tag).is_ok()
    }

    /// The MAC of an answer to the request whose MAC was `request`.
    pub fn answer_tag(&self, request: &Tag, status: u16, counter: u64, body: &[u8]) -> Tag {
        let mut mac = self.mac();
        feed_answer(&mut mac, request, status, counter, body);
        mac.finalize().into_bytes().into()
    }

    /// True when `tag` (raw bytes) is the MAC of this answer (constant-time).
    pub fn check_answer(&self, request: &Tag, status: u16, counter: u64, body: &[u8], tag: &[u8]) -> bool {
        let mut mac = self.mac();
        feed_answer(&mut mac, request, status, counter, body);
        mac.verify_slice(tag).is_ok()
    }

    /// The MAC of an MQTT message of `kind` on `topic` with `counter` and the JSON `body`.
    pub fn mqtt_tag(&self, kind: MqttKind, topic: &str, counter: u64, body: &[u8]) -> Tag {
        let mut mac = self.mac();
        feed_mqtt(&mut mac, kind, topic, counter, body);
        mac.finalize().into_bytes().into()
    }

    /// True when `tag` is the MAC of this MQTT message (constant-time).
    pub fn check_mqtt(&self, kind: MqttKind, topic: &str, counter: u64, body: &[u8], tag: &Tag) -> bool {
        let mut mac = self.mac();
        feed_mqtt(&mut mac, kind, topic, counter, body);
        mac.verify_slice(tag).is_ok()
    }
}

/// What a signed MQTT message is: each kind has its own tag in the MAC, so one kind can never be
/// passed off as another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MqttKind {
    /// A report, on `pumppilot/{id}/report`, signed by the device with its next counter.
    Report,
    /// A command, on `pumppilot/{id}/command`, signed by the server with the counter of the report
    /// it answers (0 when it made it before any report of the connection).
    Command,
    /// A refused report counter, on the command topic, signed by the server with the highest
    /// counter it accepted: the device continues above it.
    Stale,
}

impl MqttKind {
    const fn tag(self) -> &'static [u8] {
        match self {
            MqttKind::Report => b"PP-MQTT-REPORT-1\n",
            MqttKind::Command => b"PP-MQTT-COMMAND-1\n",
            MqttKind::Stale => b"PP-MQTT-STALE-1\n",
        }
    }
}

/// Longest signed-message prefix: 19 digits, a space, 64 hex digits, a newline.
pub const MAX_MQTT_PREFIX_BYTES: usize = 19 + 1 + 64 + 1;

fn feed_mqtt(mac: &mut HmacSha256, kind: MqttKind, topic: &str, counter: u64, body: &[u8]) {
    let mut digits = [0u8; 20];
    mac.update(kind.tag());
    mac.update(topic.as_bytes());
    mac.update(b"\n");
    mac.update(decimal(counter, &mut digits));
    mac.update(b"\n");
    mac.update(body);
}

/// An MQTT payload as received: signed (a prefix line), plain (JSON alone), or neither.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framed<'a> {
    /// `<counter> <mac-hex>\n` and the JSON after it.
    Signed { counter: u64, tag: Tag, body: &'a [u8] },
    /// No prefix: the payload does not start with a digit.
    Plain(&'a [u8]),
    /// It starts with a digit but the prefix is not `<counter> <64 hex digits>\n`.
    Malformed,
}

impl<'a> Framed<'a> {
    /// The JSON after the prefix (empty when malformed); whether it may be used is another matter.
    pub const fn body(&self) -> &'a [u8] {
        match self {
            Framed::Signed { body, .. } | Framed::Plain(body) => body,
            Framed::Malformed => b"",
        }
    }
}

/// Reads an MQTT payload's prefix. The counter is decimal without leading zeros, 0 to
/// [`MAX_COUNTER`] (a command made before any report carries 0).
pub fn unframe(payload: &[u8]) -> Framed<'_> {
    if !payload.first().is_some_and(u8::is_ascii_digit) {
        return Framed::Plain(payload);
    }
    let Some(space) = payload.iter().take(20).position(|&b| b == b' ') else { return Framed::Malformed };
    let digits = &payload[..space];
    let counter = if digits == b"0" { Some(0) } else { parse_counter(digits) };
    let rest = &payload[space + 1..];
    match (counter, rest.get(..64).and_then(from_hex), rest.get(64)) {
        (Some(counter), Some(tag), Some(b'\n')) => Framed::Signed { counter, tag, body: &rest[65..] },
        _ => Framed::Malformed,
    }
}

/// Writes the prefix `<counter> <mac-hex>\n` into `out` (at least [`MAX_MQTT_PREFIX_BYTES`]
/// long); returns its length.
pub fn write_prefix(counter: u64, tag: &Tag, out: &mut [u8]) -> usize {
    let mut digits = [0u8; 20];
    let digits = decimal(counter, &mut digits);
    let mut at = digits.len();
    out[..at].copy_from_slice(digits);
    out[at] = b' ';
    out[at + 1..at + 65].copy_from_slice(&to_hex(tag));
    out[at + 65] = b'\n';
    at += 66;
    at
}

/// Signs the JSON already written at `buf[MAX_MQTT_PREFIX_BYTES..MAX_MQTT_PREFIX_BYTES + len]` as
/// an MQTT message and moves it so that the whole signed payload starts at `buf[0]`; returns its
/// length. (Written in place so that a device needs a single buffer.)
pub fn sign_in_place(
    secret: &LinkSecret,
    kind: MqttKind,
    topic: &str,
    counter: u64,
    buf: &mut [u8],
    len: usize,
) -> usize {
    let body = MAX_MQTT_PREFIX_BYTES..MAX_MQTT_PREFIX_BYTES + len;
    let tag = secret.mqtt_tag(kind, topic, counter, &buf[body.clone()]);
    let mut prefix = [0u8; MAX_MQTT_PREFIX_BYTES];
    let at = write_prefix(counter, &tag, &mut prefix);
    buf.copy_within(body, at);
    buf[..at].copy_from_slice(&prefix[..at]);
    at + len
}

fn feed_request(mac: &mut HmacSha256, method: &str, path: &str, counter: u64, body: &[u8]) {
    let mut digits = [0u8; 20];
    mac.update(b"PP-REQ-1\n");
    mac.update(method.as_bytes());
    mac.update(b"\n");
    mac.update(path.as_bytes());
    mac.update(b"\n");
    mac.update(decimal(counter, &mut digits));
    mac.update(b"\n");
    mac.update(body);
}

fn feed_answer(mac: &mut HmacSha256, request: &Tag, status: u16, counter: u64, body: &[u8]) {
    mac.update(b"PP-ANS-1\n");
    mac.update(request);
    mac.update(&status.to_be_bytes());
    mac.update(&counter.to_be_bytes());
    mac.update(body);
}

/// `n` in decimal, written into `buf` (20 digits hold any `u64`).
pub fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[at..]
}

/// A counter header's value: decimal digits only, 1 to [`MAX_COUNTER`].
pub fn parse_counter(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 19 || !text.iter().all(u8::is_ascii_digit) || text[0] == b'0' {
        return None;
    }
    let n = text.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    (n <= MAX_COUNTER).then_some(n)
}

/// A tag as 64 lower-case hex digits.
pub fn to_hex(tag: &Tag) -> [u8; 64] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 64];
    for (pair, b) in out.chunks_exact_mut(2).zip(tag) {
        pair[0] = DIGITS[usize::from(b >> 4)];
        pair[1] = DIGITS[usize::from(b & 0xf)];
    }
    out
}

/// Each byte's value as a hex digit (either case), or [`NOT_HEX`].
const HEX_VALUES: [u8; 256] = {
    let mut values = [NOT_HEX; 256];
    let mut i = 0;
    while i < 10 {
        values[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        values[b'a' as usize + i] = 10 + i as u8;
        values[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    values
};

/// Not a hex digit: the one value with its high bits set.
const NOT_HEX: u8 = 0xff;

/// A tag from 64 hex digits (either case), or `None`. Every digit is read through a table and
/// the verdict taken once at the end (a signed request's MAC, on every poll).
pub fn from_hex(text: &[u8]) -> Option<Tag> {
    let text: &[u8; 64] = text.try_into().ok()?;
    let mut tag = [0u8; 32];
    let mut seen = 0u8;
    for (byte, pair) in tag.iter_mut().zip(text.chunks_exact(2)) {
        let (high, low) = (HEX_VALUES[usize::from(pair[0])], HEX_VALUES[usize::from(pair[1])]);
        seen |= high | low;
        *byte = (high << 4) | (low & 0xf);
    }
    (seen & 0xf0 == 0).then_some(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "pp_link_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG";

    fn secret() -> LinkSecret {
        LinkSecret::parse(SECRET).unwrap()
    }

    #[test]
    fn a_request_checks_only_as_sent() {
        let s = secret();
        let tag = s.request_tag("POST", "/api/esp32/poll?wait=100&seq=3", 7, b"{}");
        assert!(s.check_request("POST", "/api/esp32/poll?wait=100&seq=3", 7, b"{}", &tag));
        assert!(!s.check_request("GET", "/api/esp32/poll?wait=100&seq=3", 7, b"{}", &tag));
        assert!(!s.check_request("POST", "/api/esp32/poll?wait=100&seq=4", 7, b"{}", &tag));
        assert!(!s.check_request("POST", "/api/esp32/poll?wait=100&seq=3", 8, b"{}", &tag));
        assert!(!s.check_request("POST", "/api/esp32/poll?wait=100&seq=3", 7, b"{ }", &tag));
        assert!(!s.check_request("POST", "/api/esp32/poll?wait=100&seq=3", 7, b"{}", &tag[..31]));
        let other = LinkSecret::parse("pp_link_0123456789abcdefghijklmnopqrstuvwxyzABCDEFH").unwrap();
        assert!(!other.check_request("POST", "/api/esp32/poll?wait=100&seq=3", 7, b"{}", &tag));
    }

    #[test]
    fn a_key_kept_keyed_makes_the_secrets_own_macs_again_and_again() {
        let s = secret();
        let key = s.keyed();
        // HMAC-SHA-256 as written in RFC 2104, keyed afresh: the one the device computes.
        let fresh = |parts: &[&[u8]]| -> Tag {
            let mut mac = <HmacSha256 as hmac::Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
            parts.iter().for_each(|part| mac.update(part));
            mac.finalize().into_bytes().into()
        };
        for round in 0..3 {
            let tag = key.request_tag("GET", "/api/esp32/poll?ready=1", 41 + round, b"");
            let mut digits = [0u8; 20];
            let counter = decimal(41 + round, &mut digits);
            assert_eq!(tag, fresh(&[b"PP-REQ-1\nGET\n/api/esp32/poll?ready=1\n", counter, b"\n"]), "round {round}");
            assert!(s.check_request("GET", "/api/esp32/poll?ready=1", 41 + round, b"", &tag));
            let answer = key.answer_tag(&tag, 200, 41 + round, b"{}");
            assert_eq!(answer, s.answer_tag(&tag, 200, 41 + round, b"{}"));
            assert!(key.check_answer(&tag, 200, 41 + round, b"{}", &answer));
            let mqtt = key.mqtt_tag(MqttKind::Report, "pumppilot/d/report", round, b"{}");
            assert!(s.check_mqtt(MqttKind::Report, "pumppilot/d/report", round, b"{}", &mqtt));
        }
    }

    #[test]
    fn an_answer_is_bound_to_its_request() {
        let s = secret();
        let first = s.request_tag("POST", "/p", 1, b"a");
        let second = s.request_tag("POST", "/p", 2, b"a");
        let tag = s.answer_tag(&first, 200, 1, b"{\"motor\":\"ON\"}");
        assert!(s.check_answer(&first, 200, 1, b"{\"motor\":\"ON\"}", &tag));
        assert!(!s.check_answer(&second, 200, 1, b"{\"motor\":\"ON\"}", &tag));
        assert!(!s.check_answer(&first, 409, 1, b"{\"motor\":\"ON\"}", &tag));
        assert!(!s.check_answer(&first, 200, 2, b"{\"motor\":\"ON\"}", &tag));
        assert!(!s.check_answer(&first, 200, 1, b"{\"motor\":\"OF\"}", &tag));
    }

    #[test]
    fn the_request_mac_is_hmac_sha256_of_the_documented_bytes() {
        // Written out independently, so a change of the framing cannot go unnoticed.
        let s = secret();
        let mut mac = <HmacSha256 as hmac::Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(b"PP-REQ-1\nPOST\n/api/esp32/rfid\n12345\n{\"uid\":\"04A1B2C3\"}");
        let expected: Tag = mac.finalize().into_bytes().into();
        assert_eq!(s.request_tag("POST", "/api/esp32/rfid", 12345, b"{\"uid\":\"04A1B2C3\"}"), expected);
    }

    #[test]
    fn an_mqtt_message_checks_only_as_sent_and_for_its_kind() {
        let s = secret();
        let topic = "pumppilot/abc/report";
        let tag = s.mqtt_tag(MqttKind::Report, topic, 5, b"{}");
        assert!(s.check_mqtt(MqttKind::Report, topic, 5, b"{}", &tag));
        assert!(!s.check_mqtt(MqttKind::Command, topic, 5, b"{}", &tag));
        assert!(!s.check_mqtt(MqttKind::Stale, topic, 5, b"{}", &tag));
        assert!(!s.check_mqtt(MqttKind::Report, "pumppilot/abd/report", 5, b"{}", &tag));
        assert!(!s.check_mqtt(MqttKind::Report, topic, 6, b"{}", &tag));
        assert!(!s.check_mqtt(MqttKind::Report, topic, 5, b"{ }", &tag));
        // Written out independently, so a change of the framing cannot go unnoticed.
        let mut mac = <HmacSha256 as hmac::Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(b"PP-MQTT-COMMAND-1\npumppilot/abc/command\n0\n{\"motor\":\"OFF\"}");
        let expected: Tag = mac.finalize().into_bytes().into();
        assert_eq!(s.mqtt_tag(MqttKind::Command, "pumppilot/abc/command", 0, b"{\"motor\":\"OFF\"}"), expected);
    }

    #[test]
    fn a_signed_payload_is_framed_and_read_back() {
        let s = secret();
        let mut buf = [0u8; MAX_MQTT_PREFIX_BYTES + 16];
        buf[MAX_MQTT_PREFIX_BYTES..MAX_MQTT_PREFIX_BYTES + 2].copy_from_slice(b"{}");
        let len = sign_in_place(&s, MqttKind::Report, "t", 42, &mut buf, 2);
        let tag = s.mqtt_tag(MqttKind::Report, "t", 42, b"{}");
        assert_eq!(&buf[..3], b"42 ");
        assert_eq!(&buf[3..67], &to_hex(&tag));
        assert_eq!(&buf[67..len], b"\n{}");
        assert_eq!(unframe(&buf[..len]), Framed::Signed { counter: 42, tag, body: b"{}" });
        let mut zero = [0u8; MAX_MQTT_PREFIX_BYTES];
        let n = write_prefix(0, &tag, &mut zero);
        assert!(matches!(unframe(&zero[..n]), Framed::Signed { counter: 0, body: b"", .. }));
        let mut max = [0u8; MAX_MQTT_PREFIX_BYTES];
        assert_eq!(write_prefix(MAX_COUNTER, &tag, &mut max), MAX_MQTT_PREFIX_BYTES);
        assert_eq!(unframe(b"{\"a\":1}"), Framed::Plain(b"{\"a\":1}"));
        assert_eq!(unframe(b""), Framed::Plain(b""));
        for bad in [&b"1"[..], b"1 ", b"01 ", b"1 abc\n{}", b"9223372036854775808 "] {
            assert_eq!(unframe(bad), Framed::Malformed, "{bad:?}");
        }
        let mut no_newline = buf;
        no_newline[67] = b' ';
        assert_eq!(unframe(&no_newline[..len]), Framed::Malformed);
    }

    #[test]
    fn secrets_counters_and_hex_are_read_strictly() {
        assert!(LinkSecret::parse("pp_dev_0123456789abcdefghijklmnopqrstuvwxyz").is_none());
        assert!(LinkSecret::parse("pp_link_short").is_none());
        assert!(LinkSecret::parse("pp_link_0123456789abcdef 123").is_none());
        let mut long = [b'a'; MAX_SECRET_BYTES + 1];
        long[..SECRET_PREFIX.len()].copy_from_slice(SECRET_PREFIX.as_bytes());
        let text = |len: usize| core::str::from_utf8(&long[..len]).unwrap();
        assert!(LinkSecret::parse(text(MAX_SECRET_BYTES + 1)).is_none());
        assert!(LinkSecret::parse(text(MAX_SECRET_BYTES)).is_some());
        assert!(LinkSecret::parse(text(MIN_SECRET_BYTES)).is_some());
        assert!(LinkSecret::parse(text(MIN_SECRET_BYTES - 1)).is_none());
        assert_eq!(parse_counter(b"1"), Some(1));
        assert_eq!(parse_counter(b"9223372036854775807"), Some(MAX_COUNTER));
        for bad in [&b""[..], b"0", b"01", b"-1", b"1 ", b"9223372036854775808", b"99999999999999999999", b"1e3"] {
            assert_eq!(parse_counter(bad), None, "{bad:?}");
        }
        let mut buf = [0u8; 20];
        assert_eq!(decimal(0, &mut buf), b"0");
        assert_eq!(decimal(u64::MAX, &mut buf), b"18446744073709551615");
        let tag = secret().request_tag("GET", "/", 1, b"");
        assert_eq!(from_hex(&to_hex(&tag)), Some(tag));
        let upper = to_hex(&tag).map(|b| b.to_ascii_uppercase());
        assert_eq!(from_hex(&upper), Some(tag));
        assert_eq!(from_hex(&to_hex(&tag)[..63]), None);
        let mut bad = to_hex(&tag);
        bad[10] = b'g';
        assert_eq!(from_hex(&bad), None);
    }

    #[test]
    fn every_byte_reads_as_hex_exactly_when_it_is_a_hex_digit() {
        let tag = secret().request_tag("GET", "/", 2, b"");
        for at in [0, 1, 31, 62, 63] {
            for byte in 0..=255u8 {
                let mut text = to_hex(&tag);
                text[at] = byte;
                let digit = (byte as char).to_digit(16);
                let read = from_hex(&text);
                assert_eq!(read.is_some(), digit.is_some(), "{byte:#04x} at {at}");
                if let (Some(read), Some(digit)) = (read, digit) {
                    let shift = if at % 2 == 0 { 4 } else { 0 };
                    let nibble = (read[at / 2] >> shift) & 0xf;
                    assert_eq!(u32::from(nibble), digit, "{byte:#04x} at {at}");
                }
            }
        }
    }
}
