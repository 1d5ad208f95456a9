//! The server's half of the authenticated link, kept as `crates/server` keeps it (`src/link.rs`
//! over HTTP, `src/mqtt/session.rs` over MQTT) and made of the protocol crate's own MACs and
//! framing (`pumppilot_protocol::link`), so that the board under test meets the server it will
//! meet in the field:
//!
//! - a signed poll's MAC is checked (else `401`, unsigned: nothing is applied), then its counter
//!   is accepted once, inside a window of counters reserved from the store a block at a time;
//!   a counter seen already, or at or below the window's floor (a board that rebooted and counts
//!   from below it, a request that arrived twice) is a `409 STALE_COUNTER` signed with the highest
//!   counter accepted, and nothing is applied; a counter beyond the window while the store cannot
//!   be written (no window can be reserved) is a signed `503`, and nothing is applied;
//! - a restart loses the window (memory) but not the store's floor above it, nor which boards
//!   sign: the restarted server refuses every counter of an earlier window, and the board pays
//!   one `409` to learn where to continue;
//! - every answer to a poll whose MAC checked is signed for that very request;
//! - over MQTT a report is checked the same way (a refused counter is answered with a signed
//!   refusal), and every command is signed with the counter of the last report accepted on the
//!   connection, once the board has signed a message (before that, plain).
//!
//! The counter rule is written here from `docs/DEVICE.md` and the store's contract
//! (`LinkCounters::accept`, `reserve_device_counters`), which this crate does not depend on.

use pumppilot_protocol::{
    MAX_ANSWER_BYTES, PollAnswer, json,
    link::{self, Framed, LinkKey, LinkSecret, MqttKind, Tag},
};

/// How many counters a server reserves at once (`CounterWindows::BLOCK`).
const BLOCK: u64 = 1_000;

/// How far below the highest counter accepted a counter not seen yet is still accepted (a card
/// tap and a poll may arrive out of order; `LinkCounters::WINDOW`).
const LATE: u64 = 64;

/// An HTTP answer as it travels: the status, the link's two headers (absent from an unsigned
/// answer) and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpAnswer {
    pub status: u16,
    pub counter: Option<u64>,
    pub mac: Option<[u8; 64]>,
    pub body: Vec<u8>,
}

impl HttpAnswer {
    /// An answer without the link's headers: what a proxy in between, or someone without the
    /// secret, sends.
    pub fn unsigned(status: u16, body: Vec<u8>) -> HttpAnswer {
        HttpAnswer { status, counter: None, mac: None, body }
    }
}

/// How the answer to one signed poll is signed: the request's MAC and counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Signer {
    request: Tag,
    counter: u64,
}

/// What the server makes of a signed MQTT report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Report {
    /// Its MAC checks and its counter is new: applied.
    Accepted(u64),
    /// Its MAC checks but its counter was refused: not applied; answered with a signed refusal
    /// naming `highest`.
    Refused { counter: u64, highest: u64 },
    /// Not signed, or its MAC does not check: the server closes the connection, nothing applied.
    Closed,
    /// Its MAC checks, but its counter lies beyond the window and the store cannot reserve the
    /// next: the server ends the session (the board connects again), nothing applied.
    StoreDown,
}

/// The counters of one window reserved from the store, and those accepted in it.
#[derive(Debug, Clone, Copy)]
struct Window {
    /// The store's floor before the reservation: no counter at or below it is accepted.
    after: u64,
    /// The window's last counter.
    through: u64,
    /// The highest counter accepted here (0: none yet).
    highest: u64,
    /// Bit `i` set: counter `highest - 1 - i` was accepted.
    below: u64,
}

impl Window {
    /// The counter a refusal names: the highest accepted here, at least the window's floor.
    fn highest(&self) -> u64 {
        self.highest.max(self.after)
    }

    /// `Some(true)` when `counter` is accepted (once), `Some(false)` when it is refused, `None`
    /// when it lies beyond the window.
    fn check(&mut self, counter: u64) -> Option<bool> {
        if counter > self.through {
            return None;
        }
        if counter <= self.after {
            return Some(false);
        }
        if counter > self.highest {
            let shift = counter - self.highest;
            // The old highest becomes bit `shift - 1`; older bits move up with it.
            self.below = if self.highest == 0 {
                0
            } else {
                self.below.checked_shl(shift as u32).unwrap_or(0) | 1u64.checked_shl(shift as u32 - 1).unwrap_or(0)
            };
            self.highest = counter;
            return Some(true);
        }
        let back = self.highest - counter;
        if back == 0 || back > LATE {
            return Some(false);
        }
        let bit = 1u64 << (back - 1);
        let fresh = self.below & bit == 0;
        self.below |= bit;
        Some(fresh)
    }
}

/// The server's half of one board's link: its secret, keyed once, and its counters.
#[derive(Debug, Clone)]
pub(crate) struct ServerLink {
    key: LinkKey,
    /// The store's floor of the board's counters: every counter at or below it may have been
    /// accepted.
    floor: u64,
    window: Option<Window>,
    /// The board has signed a message the server accepted: from then on every command to it is
    /// signed.
    signing: bool,
}

impl ServerLink {
    /// The server's side of the link of a board with `secret` (the server derives it; here it is
    /// given).
    pub fn new(secret: &LinkSecret) -> ServerLink {
        ServerLink { key: secret.keyed(), floor: 0, window: None, signing: false }
    }

    /// True once the board has signed a message the server accepted.
    pub fn signing(&self) -> bool {
        self.signing
    }

    /// The server process restarted: the window it reserved was in memory only. The store keeps
    /// the floor (every counter of every window given before is at or below it) and which boards
    /// sign (every board with a reserved window: `App::signed_devices` is read from it at start).
    pub fn restart(&mut self) {
        self.window = None;
        self.signing = self.floor > 0;
    }

    /// True when accepting `counter` needs a window reserved from the store first: it lies
    /// beyond this server's window, or there is none (a restart).
    fn needs_window(&self, counter: u64) -> bool {
        self.window.is_none_or(|window| counter > window.through)
    }

    /// Accepts `counter` once: inside the window from memory, else after reserving the next
    /// window (a counter at or below the store's floor is refused, and the refusal names the
    /// new window's floor). `Err` names the highest counter accepted.
    fn accept(&mut self, counter: u64) -> Result<(), u64> {
        if let Some(window) = &mut self.window
            && let Some(fresh) = window.check(counter)
        {
            return if fresh { Ok(()) } else { Err(window.highest()) };
        }
        let through = self.floor.max(counter.saturating_sub(1)).saturating_add(BLOCK).min(link::MAX_COUNTER);
        let mut window = Window { after: self.floor, through, highest: 0, below: 0 };
        self.floor = through;
        let fresh = window.check(counter) == Some(true);
        self.window = Some(window);
        if fresh {
            self.signing = true;
            Ok(())
        } else {
            Err(window.highest())
        }
    }

    /// A signed poll (`POST path` with these link headers and body) reaches the server: how to
    /// sign its answer, or the answer that refuses it (`401` unsigned when the MAC does not check;
    /// a signed `409` when the counter was refused; a signed `503` when a window was needed and
    /// the store, `store_up` false, cannot reserve it).
    pub fn check_poll(
        &mut self,
        path: &str,
        counter: u64,
        mac: &[u8; 64],
        body: &[u8],
        store_up: bool,
    ) -> Result<Signer, HttpAnswer> {
        let checks = |tag: &Tag| counter > 0 && self.key.check_request("POST", path, counter, body, tag);
        let Some(tag) = link::from_hex(mac).filter(checks) else {
            return Err(HttpAnswer::unsigned(401, error("BAD_SIGNATURE", "the request's MAC does not check")));
        };
        let signer = Signer { request: tag, counter };
        if !store_up && self.needs_window(counter) {
            let unavailable = error("UNAVAILABLE", "the store cannot be reached; nothing was changed");
            return Err(self.seal(&signer, 503, counter, unavailable));
        }
        match self.accept(counter) {
            Ok(()) => Ok(signer),
            Err(highest) => Err(self.seal(&signer, 409, highest, stale(counter, highest))),
        }
    }

    /// The answer to a signed poll: `body` with status `status`, the counter header `counter`
    /// (the request's own, or the highest accepted on a refusal) and the MAC over both, the
    /// request's MAC and the body.
    fn seal(&self, signer: &Signer, status: u16, counter: u64, body: Vec<u8>) -> HttpAnswer {
        let tag = self.key.answer_tag(&signer.request, status, counter, &body);
        HttpAnswer { status, counter: Some(counter), mac: Some(link::to_hex(&tag)), body }
    }

    /// The `200` answer `answer` to the poll `signer` signs for (unsigned without one: a board
    /// that does not sign).
    pub fn answer(&self, signer: Option<&Signer>, answer: &PollAnswer) -> HttpAnswer {
        let body = command_json(answer, None);
        match signer {
            Some(signer) => self.seal(signer, 200, signer.counter, body),
            None => HttpAnswer::unsigned(200, body),
        }
    }

    /// A report published on `topic` reaches the server (`payload`: the prefix line and the
    /// JSON, or the JSON alone); `store_up`: the store can reserve a window.
    pub fn check_report(&mut self, topic: &str, payload: &[u8], store_up: bool) -> Report {
        match link::unframe(payload) {
            Framed::Signed { counter, tag, body }
                if counter > 0 && self.key.check_mqtt(MqttKind::Report, topic, counter, body, &tag) =>
            {
                if !store_up && self.needs_window(counter) {
                    return Report::StoreDown;
                }
                match self.accept(counter) {
                    Ok(()) => Report::Accepted(counter),
                    Err(highest) => Report::Refused { counter, highest },
                }
            }
            // A plain report of a board that never signed is a board without a secret: not this
            // one, which signs from its first report.
            _ => Report::Closed,
        }
    }

    /// A command published on `topic`: `json` signed with `counter` (the last report's accepted
    /// on the connection, 0 before any) once the board has signed a message, else plain.
    pub fn command(&self, topic: &str, counter: u64, json: Vec<u8>) -> Vec<u8> {
        if self.signing { signed(&self.key, MqttKind::Command, topic, counter, &json) } else { json }
    }

    /// The refusal of the report counter `counter`, published on `topic`, naming `highest`.
    pub fn refusal(&self, topic: &str, counter: u64, highest: u64) -> Vec<u8> {
        signed(&self.key, MqttKind::Stale, topic, highest, &stale(counter, highest))
    }
}

/// `json` signed with `key` as an MQTT message of `kind` on `topic`: the prefix line
/// `<counter> <mac-hex>\n` before it (the server's `mqtt::signed`).
pub(crate) fn signed(key: &LinkKey, kind: MqttKind, topic: &str, counter: u64, json: &[u8]) -> Vec<u8> {
    let tag = key.mqtt_tag(kind, topic, counter, json);
    let mut prefix = [0u8; link::MAX_MQTT_PREFIX_BYTES];
    let at = link::write_prefix(counter, &tag, &mut prefix);
    [&prefix[..at], json].concat()
}

/// A command's JSON as the server writes it (`routes::device::Reply::to_json`): the answer as
/// the protocol writes it, then `"ref"` when it names a report.
pub(crate) fn command_json(answer: &PollAnswer, reference: Option<u32>) -> Vec<u8> {
    let mut buf = [0u8; MAX_ANSWER_BYTES];
    let n = json::encode_answer(answer, &mut buf).expect("an answer fits its limit");
    let mut body = buf[..n].to_vec();
    if let Some(reference) = reference {
        let mut digits = [0u8; 20];
        body.pop();
        body.extend_from_slice(b",\"ref\":");
        body.extend_from_slice(link::decimal(reference.into(), &mut digits));
        body.push(b'}');
    }
    body
}

/// The body of a `STALE_COUNTER` refusal.
pub(crate) fn stale(counter: u64, highest: u64) -> Vec<u8> {
    error("STALE_COUNTER", &format!("counter {counter} was used already or is too old; continue above {highest}"))
}

/// An API error's body: `{"error":{"code":…,"message":…}}`.
fn error(code: &str, message: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "error": { "code": code, "message": message } }))
        .expect("an error serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link() -> ServerLink {
        ServerLink::new(&LinkSecret::parse("pp_link_fieldtest-0123456789abcdef").unwrap())
    }

    #[test]
    fn a_counter_is_accepted_once_and_late_ones_within_the_window() {
        let mut server = link();
        assert_eq!(server.accept(5), Ok(()));
        assert_eq!(server.accept(5), Err(5));
        assert_eq!(server.accept(3), Ok(()));
        assert_eq!(server.accept(3), Err(5));
        assert_eq!(server.accept(70), Ok(()));
        assert_eq!(server.accept(6), Ok(()), "64 below the highest, not seen");
        assert_eq!(server.accept(4), Err(70), "more than 64 below the highest");
        assert_eq!(server.accept(69), Ok(()));
        // A board that rebooted counts from below: refused, told where to continue.
        assert_eq!(server.accept(1), Err(70));
        assert_eq!(server.accept(71), Ok(()));
    }

    #[test]
    fn a_counter_beyond_the_window_reserves_the_next_and_the_floor_never_goes_back() {
        let mut server = link();
        assert_eq!(server.accept(1), Ok(()));
        assert_eq!(server.floor, BLOCK);
        assert_eq!(server.accept(BLOCK + 1), Ok(()));
        assert_eq!(server.floor, 2 * BLOCK);
        assert_eq!(server.accept(BLOCK), Err(BLOCK + 1), "below the new window's floor");
        // A restarted server forgot its window: it refuses at the store's floor, and still signs.
        server.restart();
        assert!(server.signing());
        assert_eq!(server.accept(BLOCK + 2), Err(2 * BLOCK));
        assert_eq!(server.accept(2 * BLOCK + 1), Ok(()));
    }

    #[test]
    fn a_counter_that_needs_a_window_while_the_store_fails_is_refused_with_a_signed_503() {
        let secret = LinkSecret::parse("pp_link_fieldtest-0123456789abcdef").unwrap();
        let mut server = ServerLink::new(&secret);
        let mac = |counter: u64| link::to_hex(&secret.request_tag("POST", "/api/esp32/poll", counter, b"{}"));
        assert!(server.check_poll("/api/esp32/poll", 1, &mac(1), b"{}", true).is_ok());
        // Inside the window, memory alone answers.
        assert!(server.check_poll("/api/esp32/poll", 2, &mac(2), b"{}", false).is_ok());
        server.restart();
        let refused = server.check_poll("/api/esp32/poll", 3, &mac(3), b"{}", false).unwrap_err();
        assert_eq!((refused.status, refused.counter), (503, Some(3)));
        let request = secret.request_tag("POST", "/api/esp32/poll", 3, b"{}");
        let answer_mac = link::from_hex(&refused.mac.unwrap()).unwrap();
        assert!(secret.check_answer(&request, 503, 3, &refused.body, &answer_mac));
        // Nothing was reserved: once the store answers, the floor is where it was.
        assert_eq!(server.floor, BLOCK);
    }

    #[test]
    fn an_answer_is_signed_for_its_request_as_the_device_checks_it() {
        let secret = LinkSecret::parse("pp_link_fieldtest-0123456789abcdef").unwrap();
        let mut server = ServerLink::new(&secret);
        let request = secret.request_tag("POST", "/api/esp32/poll", 7, b"{}");
        let signer = server.check_poll("/api/esp32/poll", 7, &link::to_hex(&request), b"{}", true).unwrap();
        let answer = PollAnswer {
            motor: pumppilot_protocol::Motor::On,
            state: pumppilot_protocol::MotorState::Running,
            hold_reason: None,
            remaining_seconds: 60,
            poll_ms: 5_000,
            lease_ms: 15_000,
            seq: 3,
            min_off_ms: 0,
            grid_settle_ms: 0,
            max_starts_per_hour: 0,
        };
        let sealed = server.answer(Some(&signer), &answer);
        assert_eq!((sealed.status, sealed.counter), (200, Some(7)));
        assert_eq!(json::decode_answer(&sealed.body), Ok(answer));
        let mac = link::from_hex(&sealed.mac.unwrap()).unwrap();
        assert!(secret.check_answer(&request, 200, 7, &sealed.body, &mac));
        let refused = server.check_poll("/api/esp32/poll", 7, &link::to_hex(&request), b"{}", true).unwrap_err();
        assert_eq!((refused.status, refused.counter), (409, Some(7)));
        let mac = link::from_hex(&refused.mac.unwrap()).unwrap();
        assert!(secret.check_answer(&request, 409, 7, &refused.body, &mac));
        let tampered = server.check_poll("/api/esp32/poll", 8, &link::to_hex(&request), b"{}", true).unwrap_err();
        assert_eq!((tampered.status, tampered.mac), (401, None));
    }
}
