//! Every decision of the device at the pump, with time and randomness passed in.
//!
//! The firmware and the simulator feed a [`Controller`] with what they see (raw input levels, the
//! server's answers, failed polls, card UIDs, the device's monotonic clock) and do what it says:
//! the relay level, what to report, when to poll next, what to send for a card. Nothing here
//! touches hardware, allocates, or reads a clock, so all of it is tested on the host.
//!
//! The relay rule (`DEVICE.md`): ON if and only if, at this instant,
//! 1. the last answer from the server says `motor: ON` and `state: RUNNING`,
//! 2. that answer arrived less than its `leaseMs` ago on the device's own clock,
//! 3. the debounced load-shedding input says the grid is up,
//! 4. the debounced ready input says the pump is ready.
//!
//! Everything else is OFF, and [`Decision::Off`] says which condition failed.
#![no_std]

mod card;
mod input;

pub use card::{CardFeedback, CardUid, MAX_UID_BYTES, MIN_UID_BYTES};
/// The wire types, re-exported so a caller of this crate needs no second dependency.
pub use pumppilot_protocol as protocol;

use input::Debounced;
use pumppilot_protocol::{MAX_WAIT_MS, MotorState, PollAnswer, PollReport, json};

/// A moment on the device's own monotonic clock: milliseconds since boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Millis(pub u64);

impl Millis {
    /// Milliseconds from `earlier` to `self`; `None` when `earlier` is later (the clock went back).
    pub const fn since(self, earlier: Millis) -> Option<u64> {
        self.0.checked_sub(earlier.0)
    }
}

/// The pin level that switches a motor output, for an output whose active level is
/// `active_high`. OFF is the safe level: `pin_level(false, active_high) == !active_high`.
pub const fn pin_level(on: bool, active_high: bool) -> bool {
    on == active_high
}

/// The board's and the device's fixed choices. [`Settings::DEFAULT`] suits the server's defaults
/// (`pollMs` 5000, `leaseMs` 15000).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// The load-shedding input is high while the grid is down (false: low while the grid is down).
    pub load_shedding_active_high: bool,
    /// The ready input is high while the pump is ready (false: low while ready).
    pub ready_active_high: bool,
    /// How long a raw input level must hold before the debounced input follows it.
    pub debounce_ms: u32,
    /// Poll interval before any answer has given `pollMs`.
    pub first_poll_ms: u32,
    /// Lease assumed for the retry cap before any answer has given `leaseMs`.
    pub first_lease_ms: u32,
    /// Shortest poll interval whatever the server says, so a bad `pollMs` cannot flood it.
    pub min_poll_ms: u32,
    /// Retry interval after the first failed poll; it doubles with each failure in a row.
    pub retry_first_ms: u32,
    /// Longest retry interval while no run can be active (with one, half the lease is the cap).
    pub retry_max_ms: u32,
    /// Longest lease honoured whatever the server says: a bad `leaseMs` cannot keep a motor on
    /// for longer than this without a new answer.
    pub max_lease_ms: u32,
    /// The same card seen again within this time of its last sighting is the same tap.
    pub card_repeat_ms: u32,
    /// Ask the server to hold each answer until the command changes ([`Controller::long_poll`]).
    pub long_poll: bool,
    /// Firmware version sent in every report.
    pub firmware: Option<&'static str>,
}

impl Settings {
    /// Active-high inputs, 50 ms debounce, first poll after 1 s, retries from 1 s up to 60 s, a lease
    /// of at most 60 s, a card counted once per second, long-polls.
    pub const DEFAULT: Settings = Settings {
        load_shedding_active_high: true,
        ready_active_high: true,
        debounce_ms: 50,
        first_poll_ms: 1_000,
        first_lease_ms: 15_000,
        min_poll_ms: 500,
        retry_first_ms: 1_000,
        retry_max_ms: 60_000,
        max_lease_ms: 60_000,
        card_repeat_ms: 1_000,
        long_poll: true,
        firmware: None,
    };
}

impl Default for Settings {
    fn default() -> Self {
        Settings::DEFAULT
    }
}

/// Why the relay is OFF right now: the first of the four conditions that does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OffReason {
    /// No usable answer since boot, or the last answer was unusable (garbage, too long).
    NoCommand,
    /// The last answer does not say `motor: ON` with `state: RUNNING`.
    CommandOff,
    /// The last answer is `leaseMs` old or older.
    LeaseExpired,
    /// The clock read earlier than a moment already seen: nothing can be trusted to be fresh.
    ClockWentBack,
    /// The load-shedding input has not held a level for the debounce time since boot.
    LoadSheddingUnknown,
    /// The debounced load-shedding input says the grid is down.
    LoadShedding,
    /// The ready input has not held a level for the debounce time since boot.
    ReadyUnknown,
    /// The debounced ready input says the pump is not ready.
    NotReady,
}

/// The relay decision at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// All four conditions hold.
    On,
    /// At least one does not.
    Off(OffReason),
}

impl Decision {
    /// True for [`Decision::On`].
    pub const fn is_on(self) -> bool {
        matches!(self, Decision::On)
    }
}

/// Why an answer body was not used. Either way the stored command is dropped (relay OFF).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnswerError {
    /// Longer than [`protocol::MAX_ANSWER_BYTES`].
    TooLong,
    /// Not UTF-8, not JSON, truncated, a missing field, or an unknown enum name.
    Invalid,
}

/// Long-poll parameters for the next poll: `POST /api/esp32/poll?wait={wait_ms}&seq={seq}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LongPoll {
    /// How long the server may hold the answer (it also cuts this to half its lease).
    pub wait_ms: u32,
    /// The `seq` of the last usable answer: the server answers at once when its own differs.
    pub seq: u64,
}

/// The command from the last usable answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Command {
    on: bool,
    at: Millis,
    lease_ms: u32,
    seq: u64,
}

/// What the last report told the server, to know when a local change is worth a poll at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reported {
    load_shedding: bool,
    ready: bool,
    relay: bool,
}

/// The device's whole decision state. Create one at boot; it starts OFF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Controller {
    settings: Settings,
    load_shedding: Debounced,
    ready: Debounced,
    command: Option<Command>,
    /// `pollMs` of the last usable answer (bounded below), or the first poll interval.
    poll_ms: u32,
    /// `leaseMs` of the last usable answer (bounded above), or the first lease.
    lease_ms: u32,
    /// False only while the last usable answer said IDLE: then no run can be on this motor.
    run_may_be_active: bool,
    /// Failed polls in a row.
    failures: u32,
    /// The latest moment seen; an earlier `now` means the clock went back.
    latest: Millis,
    reported: Option<Reported>,
    last_card: Option<(CardUid, Millis)>,
}

impl Controller {
    /// A controller at boot: relay OFF, no command, inputs unknown until they have held a level
    /// for the debounce time.
    pub const fn new(settings: Settings) -> Controller {
        Controller {
            settings,
            load_shedding: Debounced::UNKNOWN,
            ready: Debounced::UNKNOWN,
            command: None,
            poll_ms: settings.first_poll_ms,
            lease_ms: if settings.first_lease_ms < settings.max_lease_ms {
                settings.first_lease_ms
            } else {
                settings.max_lease_ms
            },
            run_may_be_active: true,
            failures: 0,
            latest: Millis(0),
            reported: None,
            last_card: None,
        }
    }

    /// The settings this controller was made with.
    pub const fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Notes the time. A clock that went back makes every freshness untrustworthy, so the
    /// command, the debounced inputs and the card memory are forgotten (the relay goes OFF until
    /// a new answer arrives and the inputs settle again).
    fn observe(&mut self, now: Millis) {
        if now < self.latest {
            self.command = None;
            self.load_shedding = Debounced::UNKNOWN;
            self.ready = Debounced::UNKNOWN;
            self.last_card = None;
            self.reported = None;
        }
        self.latest = now;
    }

    /// Records the raw levels of the two input pins at `now`. Call it every control loop tick.
    pub fn sense(&mut self, now: Millis, load_shedding_level: bool, ready_level: bool) {
        self.observe(now);
        let debounce_ms = self.settings.debounce_ms;
        self.load_shedding.sample(now, load_shedding_level, debounce_ms);
        self.ready.sample(now, ready_level, debounce_ms);
    }

    /// The debounced load-shedding input at `now`: `Some(true)` while the grid is down, `None`
    /// until it has held a level for the debounce time.
    pub fn load_shedding(&self, now: Millis) -> Option<bool> {
        let level = self.load_shedding.value(now, self.settings.debounce_ms)?;
        Some(level == self.settings.load_shedding_active_high)
    }

    /// The debounced ready input at `now`: `Some(true)` while the pump is ready, `None` until it has
    /// held a level for the debounce time.
    pub fn ready(&self, now: Millis) -> Option<bool> {
        let level = self.ready.value(now, self.settings.debounce_ms)?;
        Some(level == self.settings.ready_active_high)
    }

    /// The relay decision at `now`, with the reason when OFF.
    pub fn decision(&self, now: Millis) -> Decision {
        use OffReason::*;
        if now < self.latest {
            return Decision::Off(ClockWentBack);
        }
        let Some(command) = self.command else { return Decision::Off(NoCommand) };
        if !command.on {
            return Decision::Off(CommandOff);
        }
        // `now` at or after `latest` at or after `command.at`, so the age exists; an absent one
        // would still read as expired.
        let fresh = now.since(command.at).is_some_and(|age| age < u64::from(command.lease_ms));
        if !fresh {
            return Decision::Off(LeaseExpired);
        }
        match self.load_shedding(now) {
            None => return Decision::Off(LoadSheddingUnknown),
            Some(true) => return Decision::Off(LoadShedding),
            Some(false) => {}
        }
        match self.ready(now) {
            None => Decision::Off(ReadyUnknown),
            Some(false) => Decision::Off(NotReady),
            Some(true) => Decision::On,
        }
    }

    /// THE decision: true when the relay (and the optocoupler path) must be ON at `now`.
    pub fn relay(&self, now: Millis) -> bool {
        self.decision(now).is_on()
    }

    fn snapshot(&self, now: Millis) -> Reported {
        Reported {
            // An input that has not settled is reported as its unsafe value.
            load_shedding: self.load_shedding(now).unwrap_or(true),
            ready: self.ready(now).unwrap_or(false),
            relay: self.relay(now),
        }
    }

    /// The report to send now (debounced inputs, the relay as decided, uptime and firmware), and
    /// remembers it for [`Controller::report_now`]. An input that has not settled yet is reported
    /// as unsafe (grid down, not ready). The caller may fill in `rssi`.
    pub fn report(&mut self, now: Millis) -> PollReport<'static> {
        self.observe(now);
        let seen = self.snapshot(now);
        self.reported = Some(seen);
        PollReport {
            load_shedding: seen.load_shedding,
            ready: seen.ready,
            relay: seen.relay,
            fw: self.settings.firmware,
            uptime_ms: Some(now.0),
            rssi: None,
            reset: None,
            feedback: None,
            reader: None,
        }
    }

    /// True once both inputs have held a level for the debounce time since boot. Until then a
    /// report would have to say "grid down, not ready" and would put a running pump in HOLD for
    /// a moment at every boot: wait for it before the first poll.
    pub fn settled(&self, now: Millis) -> bool {
        self.load_shedding(now).is_some() && self.ready(now).is_some()
    }

    /// True when the inputs or the relay changed since the last report (or nothing was reported
    /// yet): poll at once instead of waiting, or cut a long-poll short. Always false while retrying
    /// after failed polls, so a dead link is not hammered (the retry carries the change), and
    /// before the inputs have [settled](Controller::settled).
    pub fn report_now(&self, now: Millis) -> bool {
        self.failures == 0 && self.settled(now) && self.reported != Some(self.snapshot(now))
    }

    /// Takes the body of an HTTP 200 answer to a poll that arrived at `now`. A usable answer
    /// replaces the command and starts its lease; anything else drops the command (relay OFF)
    /// and counts as a failed poll.
    pub fn answer(&mut self, now: Millis, body: &[u8]) -> Result<PollAnswer, AnswerError> {
        self.observe(now);
        match json::decode_answer(body) {
            Ok(answer) => {
                let lease_ms = answer.lease_ms.min(self.settings.max_lease_ms);
                self.command = Some(Command { on: answer.commands_on(), at: now, lease_ms, seq: answer.seq });
                self.poll_ms = answer.poll_ms.max(self.settings.min_poll_ms);
                self.lease_ms = lease_ms;
                self.run_may_be_active = !matches!(answer.state, MotorState::Idle);
                self.failures = 0;
                Ok(answer)
            }
            Err(err) => {
                self.command = None;
                self.run_may_be_active = true;
                self.failures = self.failures.saturating_add(1);
                Err(match err {
                    json::JsonError::TooLong => AnswerError::TooLong,
                    _ => AnswerError::Invalid,
                })
            }
        }
    }

    /// A poll that got no usable HTTP answer: network error, timeout, a status other than 200.
    /// It never extends the lease and never turns anything ON; the last command stays until its
    /// lease runs out, and the next poll backs off.
    pub fn poll_failed(&mut self, now: Millis) {
        self.observe(now);
        self.failures = self.failures.saturating_add(1);
    }

    /// Failed polls in a row (0 after a usable answer).
    pub const fn failures(&self) -> u32 {
        self.failures
    }

    /// Milliseconds from the start of the previous poll to the start of the next one, given a
    /// random number for the jitter (poll at once when the previous one took longer: a long-poll
    /// held by the server already was the wait). A caller that counts from the end of the previous
    /// poll instead polls a little less often, which is harmless for short requests.
    ///
    /// Before any answer: `first_poll_ms`, ±10% ([`Controller::report_now`] is true at boot, so
    /// the very first poll goes at once). After a usable answer: its `pollMs`, ±10%. After failures: `retry_first_ms` doubled per
    /// failure in a row, up to `retry_max_ms`, ±10%. While a run may be active (the last usable
    /// answer was not IDLE, or there is none) never more than half the lease, so one retry can
    /// still renew it; and never less than `min_poll_ms`.
    pub fn next_poll_in(&self, random: u32) -> u32 {
        let s = &self.settings;
        let base = match self.failures {
            0 => self.poll_ms,
            n => {
                let doublings = (n - 1).min(31);
                s.retry_first_ms.saturating_mul(1u32 << doublings).min(s.retry_max_ms)
            }
        };
        let cap = if self.run_may_be_active { self.lease_ms / 2 } else { u32::MAX };
        jitter(base.min(cap), random).min(cap).max(s.min_poll_ms)
    }

    /// The long-poll to ask for with the next poll at `now`, or `None` for a plain poll: when
    /// long-polling is off, before the first usable answer, or while retrying after failures.
    ///
    /// While the relay runs on the last answer, the wait is half of what is left of its lease, so
    /// the next answer arrives before the lease ends with the other half left for the network
    /// (the server shortens `leaseMs` by the time it held the answer; asking for a fixed half of
    /// the lease would make the relay drop out for a moment at the end of every second hold).
    /// Otherwise it is the longest wait the server honours.
    pub fn long_poll(&self, now: Millis) -> Option<LongPoll> {
        if !self.settings.long_poll || self.failures > 0 {
            return None;
        }
        let command = self.command?;
        let wait_ms = if command.on {
            let left = now.since(command.at).map_or(0, |age| u64::from(command.lease_ms).saturating_sub(age));
            u32::try_from(left / 2).unwrap_or(u32::MAX).min(MAX_WAIT_MS)
        } else {
            MAX_WAIT_MS
        };
        (wait_ms > 0).then_some(LongPoll { wait_ms, seq: command.seq })
    }

    /// A card seen by the reader at `now`. Returns the UID to send (`POST /api/esp32/rfid`), or
    /// `None` when the UID has an impossible length or it is the same card as the last one seen
    /// within `card_repeat_ms` (a card held to the reader is one tap, however long it stays).
    pub fn card(&mut self, now: Millis, uid: &[u8]) -> Option<CardUid> {
        self.observe(now);
        let card = CardUid::from_bytes(uid)?;
        let repeat = match self.last_card {
            Some((last, seen)) => {
                last == card && now.since(seen).is_some_and(|gap| gap < u64::from(self.settings.card_repeat_ms))
            }
            None => false,
        };
        self.last_card = Some((card, now));
        (!repeat).then_some(card)
    }

    /// The feedback for the body of an HTTP 200 answer to a card tap. For a failed request
    /// (network error, another status) show [`CardFeedback::Error`].
    pub fn card_answer(&self, body: &[u8]) -> CardFeedback {
        CardFeedback::from_answer(body)
    }
}

/// `base` moved by a uniformly chosen amount within ±10% of itself.
fn jitter(base: u32, random: u32) -> u32 {
    let base = u64::from(base);
    let spread = base / 10;
    let offset = u64::from(random) % (2 * spread + 1);
    // base - spread + offset ≤ base + spread ≤ 1.1 × u32::MAX, so clamp back into u32.
    u32::try_from(base - spread + offset).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_ten_percent() {
        for base in [0, 1, 9, 10, 11, 5_000, 7_500, u32::MAX] {
            for random in [0, 1, 2, 499, 500, 1_000, u32::MAX / 2, u32::MAX - 1, u32::MAX] {
                let value = u64::from(jitter(base, random));
                let base = u64::from(base);
                assert!(
                    value * 10 >= base * 9 && value * 10 <= base * 11 || value == u64::from(u32::MAX),
                    "{base} {random}"
                );
            }
        }
        assert_eq!(jitter(5_000, 0), 4_500);
        assert_eq!(jitter(5_000, 1_000), 5_500);
        assert_eq!(jitter(5_000, 500), 5_000);
    }

    #[test]
    fn off_is_the_inactive_level() {
        assert!(!pin_level(false, true));
        assert!(pin_level(false, false));
        assert!(pin_level(true, true));
        assert!(!pin_level(true, false));
    }
}
