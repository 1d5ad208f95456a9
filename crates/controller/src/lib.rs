//! Every decision of the device at the pump, with time and randomness passed in.
//!
//! The firmware and the simulator feed a [`Controller`] with what they see (raw input levels, the
//! server's answers, failed polls, card UIDs, the device's monotonic clock) and do what it says:
//! the relay level, what to report, when to poll next and how long a request may take, what to
//! send for a card. Nothing here touches hardware, allocates, or reads a clock, so all of it is
//! tested on the host.
//!
//! The relay rule (`docs/DEVICE.md`): ON if and only if, at this instant,
//! 1. the last answer from the server says `motor: ON` and `state: RUNNING`,
//! 2. that answer's lease has not run out, counted on the device's own clock from the moment
//!    the poll that brought it was *sent*,
//! 3. the debounced load-shedding input says the grid is up,
//! 4. the debounced ready input says the pump is ready,
//! 5. restart protection allows it: a relay that is already closed stays closed; one that is
//!    open closes only when the grid has been up for the answer's `gridSettleMs`, the relay has
//!    been open for its `minOffMs`, and fewer than `maxStartsPerHour` starts happened in the
//!    last hour,
//! 6. on a board with a feedback input, the motor confirmed that it runs within the set time of
//!    the relay closing (and keeps confirming it).
//!
//! Everything else is OFF, and [`Decision::Off`] says which condition failed. The shell drives
//! the relay with [`Controller::drive`], which is how the controller knows when the relay really
//! opened and closed (restart protection counts those moments).
#![no_std]

mod card;
mod input;
pub mod mqtt;
pub mod setup;
pub mod status;
mod update;

pub use card::{CardFeedback, CardUid, MAX_UID_BYTES, MIN_UID_BYTES, Tap};
pub use input::DEBOUNCE_SAMPLES;
/// The wire types, re-exported so a caller of this crate needs no second dependency.
pub use pumppilot_protocol as protocol;
pub use update::{
    BootCheck, BootMode, BootVerdict, FAULTED_BOOTS_BEFORE_ROLLBACK, FaultedBoots, MAX_RANGE_FAILURES, Offer,
    RANGE_RETRY_FIRST_MS, RANGE_RETRY_MAX_MS, Stage, Update, UpdateError,
};

use input::Debounced;
pub use pumppilot_protocol::link::LinkSecret;
use pumppilot_protocol::{
    MAX_WAIT_MS, MotorState, PollAnswer, PollReport, ReaderState, RelayOff, ResetReason, json,
    link::{self, Tag},
};

/// The device's timing, shared by the firmware and the simulator so both behave alike.
pub mod timing {
    /// How often the control loop reads the inputs and drives the relay, in milliseconds.
    pub const TICK_MS: u32 = 50;
    /// The hardware watchdog resets the chip when the control loop has not fed it for this long.
    pub const WATCHDOG_MS: u32 = 2_000;
    /// How often a shell looks again whether the inputs have settled before the first poll.
    pub const SETTLE_CHECK_MS: u32 = 20;
    /// Longest a card tap's request may take.
    pub const CARD_REQUEST_TIMEOUT_MS: u32 = 5_000;
    /// One hour, the window of `maxStartsPerHour`.
    pub const HOUR_MS: u64 = 3_600_000;
}

/// Most starts a device remembers: the most `maxStartsPerHour` can say.
const MAX_STARTS: usize = u8::MAX as usize;

/// The bits of a boot's random first counter ([`Controller::set_first_counter`]): 48, far below
/// the protocol's `MAX_COUNTER` (2^63 - 1), so a board's counter never runs out.
pub const FIRST_COUNTER_MASK: u64 = (1 << 48) - 1;

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

/// A motor-running feedback input (a contactor's auxiliary contact, a current sensor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedbackInput {
    /// The input is high while the motor runs (false: low while it runs).
    pub active_high: bool,
    /// How long the relay may be closed without the input confirming that the motor runs.
    pub confirm_ms: u32,
}

/// The board's and the device's fixed choices. [`Settings::DEFAULT`] suits the server's defaults
/// (`pollMs` 5000, `leaseMs` 15000).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// The load-shedding input is high while the grid is down (false: low while the grid is down).
    pub load_shedding_active_high: bool,
    /// The ready input is high while the pump is ready (false: low while ready).
    pub ready_active_high: bool,
    /// How long a raw input level must be seen (in at least [`DEBOUNCE_SAMPLES`] samples in a
    /// row) before it counts.
    pub debounce_ms: u32,
    /// The motor-running feedback input, on boards that have one.
    pub feedback: Option<FeedbackInput>,
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
    /// Longest a plain request may take (a long-poll adds its wait); while the relay runs on a
    /// lease, never more than half of what is left of it ([`Controller::request_timeout_ms`]).
    pub request_timeout_ms: u32,
    /// The same card seen again within this time of its last sighting is the same tap: a card
    /// that slips off the reader and back, or is tapped twice in a hurry, starts a run and does
    /// not stop it at once (a stop then waits out the motor's minimum off time to start again).
    pub card_repeat_ms: u32,
    /// Ask the server to hold each answer until the command changes ([`Controller::long_poll`]).
    pub long_poll: bool,
    /// Firmware version sent in every report.
    pub firmware: Option<&'static str>,
}

impl Settings {
    /// Active-high inputs, 50 ms debounce, no feedback input, first poll after 1 s, retries from
    /// 1 s up to 60 s, a lease of at most 60 s, requests of at most 10 s, a card counted once per
    /// second, long-polls.
    pub const DEFAULT: Settings = Settings {
        load_shedding_active_high: true,
        ready_active_high: true,
        debounce_ms: 50,
        feedback: None,
        first_poll_ms: 1_000,
        first_lease_ms: 15_000,
        min_poll_ms: 500,
        retry_first_ms: 1_000,
        retry_max_ms: 60_000,
        max_lease_ms: 60_000,
        request_timeout_ms: 10_000,
        card_repeat_ms: 2_000,
        long_poll: true,
        firmware: None,
    };
}

impl Default for Settings {
    fn default() -> Self {
        Settings::DEFAULT
    }
}

/// Why the relay is OFF right now: the first of the conditions that does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OffReason {
    /// No usable answer since boot, or the last answer was unusable (garbage, too long).
    NoCommand,
    /// The last answer does not say `motor: ON` with `state: RUNNING`.
    CommandOff,
    /// The last answer's lease has run out.
    LeaseExpired,
    /// The clock read earlier than a moment already seen: nothing can be trusted to be fresh.
    ClockWentBack,
    /// The load-shedding input has not settled since boot.
    LoadSheddingUnknown,
    /// The debounced load-shedding input says the grid is down.
    LoadShedding,
    /// The grid is up, but not yet for the answer's `gridSettleMs`.
    GridSettling,
    /// The ready input has not settled since boot.
    ReadyUnknown,
    /// The debounced ready input says the pump is not ready.
    NotReady,
    /// The relay was closed and the feedback input did not confirm that the motor runs. It stays
    /// OFF until the server sends another command (a new `seq`).
    NoFeedback,
    /// The relay opened less than the answer's `minOffMs` ago (boot counts as opening it).
    MinOffTime,
    /// The relay closed `maxStartsPerHour` times in the last hour.
    StartsPerHour,
}

impl OffReason {
    /// True for the reasons of restart protection (the server calls them `RESTART_WAIT`).
    pub const fn is_restart_wait(self) -> bool {
        matches!(self, OffReason::MinOffTime | OffReason::StartsPerHour)
    }

    /// What the report says about it (`relayOff`): whether the device holds no fresh ON command,
    /// or holds one and keeps the relay open by its own rule (the server then charges nothing).
    pub const fn relay_off(self) -> RelayOff {
        use OffReason::*;
        match self {
            NoCommand | CommandOff | LeaseExpired | ClockWentBack => RelayOff::NoCommand,
            LoadSheddingUnknown | LoadShedding => RelayOff::LoadShedding,
            ReadyUnknown | NotReady => RelayOff::NotReady,
            GridSettling => RelayOff::GridSettling,
            MinOffTime | StartsPerHour => RelayOff::RestartWait,
            NoFeedback => RelayOff::NoFeedback,
        }
    }
}

/// The relay decision at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// All conditions hold.
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

/// Why an answer body was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnswerError {
    /// Longer than [`protocol::MAX_ANSWER_BYTES`]; the stored command is dropped (relay OFF).
    TooLong,
    /// Not UTF-8, not JSON, truncated, a missing field, or an unknown enum name; the stored
    /// command is dropped (relay OFF).
    Invalid,
    /// The answer to a poll sent before the one that gave the current command, or before the
    /// clock went back: nothing changes.
    Stale,
    /// A device with a link secret got an HTTP 200 whose MAC does not check (or none): made or
    /// changed by someone without the secret, or an answer to another request. The stored
    /// command is dropped (relay OFF), as for garbage.
    Forged,
    /// An HTTP status other than 200 (for a device with a link secret, one whose MAC checked or
    /// that is no answer at all); counted as a failed poll, the command stays until its lease
    /// runs out. A signed `409` names the highest counter the server accepted, and the next
    /// request is signed above it.
    Refused(u16),
}

/// A signed request: the two headers to send with it (`X-PumpPilot-Counter`, `X-PumpPilot-Mac`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature {
    counter: u64,
    tag: Tag,
}

impl Signature {
    /// The request's counter (send it in decimal).
    pub const fn counter(&self) -> u64 {
        self.counter
    }

    /// The request's MAC as 64 hex digits.
    pub fn mac_hex(&self) -> [u8; 64] {
        link::to_hex(&self.tag)
    }
}

/// An HTTP answer as a shell received it: the status, the two link headers (raw values, if
/// present) and the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reply<'a> {
    pub status: u16,
    pub counter: Option<&'a [u8]>,
    pub mac: Option<&'a [u8]>,
    pub body: &'a [u8],
}

/// What the status LED should say about the link to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkState {
    /// No request answered yet since boot.
    Unknown,
    /// The last request got a usable answer.
    Up,
    /// The last request got no answer (network, timeout, a status of a proxy in between).
    Unreachable,
    /// The server refused the device's key or signature (HTTP 401 or 403): someone must fix the
    /// device's settings, waiting will not help.
    KeyRefused,
    /// The last answer was forged or damaged (a MAC that does not check, or garbage).
    Forged,
}

/// Long-poll parameters for the next poll: `POST /api/esp32/poll?wait={wait_ms}&seq={seq}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LongPoll {
    /// How long the server may hold the answer (it also cuts this to a third of its lease).
    pub wait_ms: u32,
    /// The `seq` of the last usable answer: the server answers at once when its own differs.
    pub seq: u64,
}

/// When a poll was sent, as [`Controller::answer`] needs it: the lease of its answer counts from
/// this moment. Only a controller makes one ([`Controller::poll`], [`Controller::sent`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sent {
    at: Millis,
    /// How many times the clock had gone back when the poll was sent.
    epoch: u32,
    /// How the poll was signed ([`Controller::sign_poll`]), on a device with a link secret.
    signature: Option<Signature>,
}

impl Sent {
    /// The moment on the device's clock.
    pub const fn at(&self) -> Millis {
        self.at
    }
}

/// Everything a shell needs to send one poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Poll {
    /// The body (the shell may fill in `rssi`).
    pub report: PollReport<'static>,
    /// Long-poll parameters, or `None` for a plain poll.
    pub long_poll: Option<LongPoll>,
    /// Give up on the request after this long (it then counts as failed).
    pub timeout_ms: u32,
    /// Hand this back with the answer.
    pub sent: Sent,
}

/// The command from the last usable answer, with the restart protection it carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Command {
    on: bool,
    /// When the poll that brought it was sent.
    at: Millis,
    lease_ms: u32,
    seq: u64,
    min_off_ms: u32,
    grid_settle_ms: u32,
    max_starts_per_hour: u8,
}

/// What the last report told the server, to know when a local change is worth a poll at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reported {
    load_shedding: bool,
    ready: bool,
    relay: bool,
    /// Why the relay is open (`relayOff`): a relay that stays open while the reason changes (an
    /// ON command's lease ran out during the restart wait, or a command was dropped) is told at
    /// once, so the server learns that the device holds no command without waiting for a poll.
    relay_off: Option<RelayOff>,
    feedback: Option<bool>,
    reader: Option<ReaderState>,
}

/// The moments the relay closed, newest last, as many as `maxStartsPerHour` can count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Starts {
    at: [Millis; MAX_STARTS],
    /// Where the next start goes.
    next: usize,
    len: usize,
}

impl Starts {
    const NONE: Starts = Starts { at: [Millis(0); MAX_STARTS], next: 0, len: 0 };

    fn push(&mut self, now: Millis) {
        self.at[self.next] = now;
        self.next = (self.next + 1) % MAX_STARTS;
        self.len = (self.len + 1).min(MAX_STARTS);
    }

    /// True when `cap` starts (or more) happened within the hour before `now`.
    fn reached(&self, cap: u8, now: Millis) -> bool {
        let cap = usize::from(cap);
        if cap == 0 || self.len < cap {
            return false;
        }
        // The cap-th newest start: the cap is reached while it is less than an hour old.
        let at = self.at[(self.next + MAX_STARTS - cap) % MAX_STARTS];
        now.since(at).is_none_or(|age| age < timing::HOUR_MS)
    }

    /// After the clock went back from `before` to `now`, nothing tells how long ago the starts
    /// were: those that still counted at `before` (less than an hour old) count as happening now,
    /// so the cap holds for a full hour rather than not at all; older ones no longer count (a
    /// board with many starts since boot is not kept from starting for an hour by a glitch).
    fn retime(&mut self, before: Millis, now: Millis) {
        let counted = (1..=self.len)
            .take_while(|newest| {
                let at = self.at[(self.next + MAX_STARTS - newest) % MAX_STARTS];
                before.since(at).is_none_or(|age| age < timing::HOUR_MS)
            })
            .count();
        for newest in 1..=counted {
            self.at[(self.next + MAX_STARTS - newest) % MAX_STARTS] = now;
        }
        self.len = counted;
    }
}

/// The device's whole decision state. Create one at boot; it starts OFF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Controller {
    settings: Settings,
    load_shedding: Debounced,
    ready: Debounced,
    feedback: Debounced,
    command: Option<Command>,
    /// The newest answer taken (when its poll was sent, the highest `seq` for that poll), kept
    /// when the command is dropped (a forged or unusable message): an answer to an older poll is
    /// stale, and an ON for the same poll with a lower `seq` too, so neither a late answer nor a
    /// captured ON sent again brings back a command an OFF replaced. Forgotten with the command
    /// when the clock goes back.
    newest: Option<(Millis, u64)>,
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
    /// How many times the clock went back: a poll sent before that is not trusted.
    epoch: u32,
    reported: Option<Reported>,
    last_card: Option<(CardUid, Millis)>,
    /// The id of the last card tap ([`Tap`]); the next tap takes the next number.
    tap_id: u32,
    /// The relay as last driven ([`Controller::drive`]).
    closed: bool,
    /// When the relay was last driven closed, or last driven open (boot counts as opening).
    switched_at: Millis,
    starts: Starts,
    /// The last moment the feedback input said the motor runs.
    feedback_seen: Option<Millis>,
    /// The `seq` of the command under which the motor did not confirm; OFF until another.
    no_feedback_seq: Option<u64>,
    /// Why the board started, reported until the server has answered once.
    reset: Option<ResetReason>,
    reader: Option<ReaderState>,
    /// The per-device secret of the authenticated link, when the device has one.
    link: Option<LinkSecret>,
    /// The last counter used (or the highest the server named): the next request signs above it.
    counter: u64,
    link_state: LinkState,
    /// The send times of the last MQTT reports, by `ref` (`mqtt.rs`).
    refs: mqtt::Refs,
}

impl Controller {
    /// A controller at boot: relay OFF (and counted as having just opened), no command, inputs
    /// unknown until they have settled.
    pub const fn new(settings: Settings) -> Controller {
        Controller {
            settings,
            load_shedding: Debounced::UNKNOWN,
            ready: Debounced::UNKNOWN,
            feedback: Debounced::UNKNOWN,
            command: None,
            newest: None,
            poll_ms: settings.first_poll_ms,
            lease_ms: if settings.first_lease_ms < settings.max_lease_ms {
                settings.first_lease_ms
            } else {
                settings.max_lease_ms
            },
            run_may_be_active: true,
            failures: 0,
            latest: Millis(0),
            epoch: 0,
            reported: None,
            last_card: None,
            tap_id: 0,
            closed: false,
            switched_at: Millis(0),
            starts: Starts::NONE,
            feedback_seen: None,
            no_feedback_seq: None,
            reset: None,
            reader: None,
            link: None,
            counter: 0,
            link_state: LinkState::Unknown,
            refs: mqtt::Refs::NONE,
        }
    }

    /// Gives the device its link secret: from now on every request is signed
    /// ([`Controller::sign`]) and only answers whose MAC checks are used ([`Controller::reply`]).
    pub fn set_link_secret(&mut self, secret: LinkSecret) {
        self.link = Some(secret);
    }

    /// Counts this boot's signed requests from above `random` (its low 48 bits). Call it once at
    /// boot, before the first request, with a random number (the firmware's hardware RNG). A
    /// board forgets its counter when it restarts: counting from 1 again, the first requests of a
    /// boot could repeat those of an earlier boot byte for byte (the same inputs and reset reason,
    /// the same time since boot), and an answer captured then (an ON) would check again. From a
    /// random point, no request of this boot is one of an earlier boot's, so no answer captured
    /// then checks now. The server refuses a counter at or below the highest it has taken, naming
    /// it, and the board goes on above it (as after any reboot); 48 bits leave the counter room
    /// for as many boots as a board will ever have. Without it, the counter starts at 0 (and card
    /// taps are numbered from 1).
    pub fn set_first_counter(&mut self, random: u64) {
        self.counter = random & FIRST_COUNTER_MASK;
        // This boot's card taps are numbered from a random point too (the draw's upper bits): the
        // server acts once per tap id, and a tap after a reboot must not name a tap it remembers.
        self.tap_id = (random >> 32) as u32;
    }

    /// Numbers this boot's card taps from above `random` (the next tap takes the number after
    /// it), in place of the upper bits of [`Controller::set_first_counter`]'s draw. For a shell
    /// that names its first counter rather than drawing it (a test, a simulated board): its taps
    /// after a reboot must still name none of an earlier boot's, so it draws their point apart.
    pub fn set_first_tap(&mut self, random: u32) {
        self.tap_id = random;
    }

    /// True when the device has a link secret.
    pub const fn signs(&self) -> bool {
        self.link.is_some()
    }

    /// What the LED should say about the link to the server.
    pub const fn link_state(&self) -> LinkState {
        self.link_state
    }

    /// Signs a request (`method`, path with its query, body) with the next counter; `None` on a
    /// device without a link secret (the request goes unsigned).
    pub fn sign(&mut self, method: &str, path: &str, body: &[u8]) -> Option<Signature> {
        let secret = self.link?;
        let counter = self.next_counter();
        Some(Signature { counter, tag: secret.request_tag(method, path, counter, body) })
    }

    /// The counter of the next signed message (HTTP request or MQTT report: one sequence).
    fn next_counter(&mut self) -> u64 {
        self.counter = self.counter.saturating_add(1).min(link::MAX_COUNTER);
        self.counter
    }

    /// Signs a poll ([`Controller::sign`]) and remembers the signature in `sent`, so that only
    /// an answer to this very request is used.
    pub fn sign_poll(&mut self, sent: &mut Sent, method: &str, path: &str, body: &[u8]) -> Option<Signature> {
        let signature = self.sign(method, path, body);
        sent.signature = signature;
        signature
    }

    /// Signs one attempt of a poll as it goes out at `now`: `sent` becomes `now`
    /// ([`Controller::sent`]) with the attempt's own signature ([`Controller::sign_poll`]), so
    /// only the answer to this attempt is used, and its lease counts from this attempt's sending.
    /// A shell that sends the poll again (its kept connection turned out to be closed) calls it
    /// again for the retry.
    ///
    /// A retry never carries an earlier attempt's counter: that attempt may have reached the
    /// server before the connection broke, and the server takes a counter once, so it would
    /// refuse the retry as a replay (a failed poll for nothing, and on a long-poll perhaps the
    /// lease). Nor does it keep the earlier attempt's send time. The lease must count from no
    /// later than the true sending of the request that got the answer (the device's lease then
    /// ends before the server's, which counts from the arrival): `now` is taken before the
    /// retry goes out, and the answer that comes on the new connection is the retry's (with a
    /// link secret its MAC names the retry's counter). The earlier attempt's moment would be
    /// safe too, but would cut the lease short by the time that attempt took: up to half of
    /// what was left of it, for a long-poll the server held.
    pub fn sign_attempt(
        &mut self,
        sent: &mut Sent,
        now: Millis,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> Option<Signature> {
        *sent = self.sent(now);
        self.sign_poll(sent, method, path, body)
    }

    /// Checks a reply's MAC against the request's signature: `Some(counter)` (the counter the
    /// answer names) when it checks.
    fn verified(&self, signature: Option<Signature>, reply: &Reply<'_>) -> Option<u64> {
        let (secret, signature) = (self.link?, signature?);
        let counter = link::parse_counter(reply.counter?)?;
        let tag = link::from_hex(reply.mac?)?;
        secret.check_answer(&signature.tag, reply.status, counter, reply.body, &tag).then_some(counter)
    }

    /// A verified refusal: a `409` names the highest counter the server accepted (the device
    /// rebooted and began again from 1): sign above it from now on.
    fn refusal(&mut self, status: u16, counter: u64) {
        if status == 409 {
            self.counter = self.counter.max(counter);
        }
    }

    /// Takes an HTTP answer to the poll sent at `sent`, arriving at `now`: the way every shell
    /// should hand answers in. Without a link secret: a 200's body goes to
    /// [`Controller::answer`], anything else is a failed poll. With one: the answer's MAC must
    /// check against the poll's signature and name its counter, else a 200 is
    /// [`AnswerError::Forged`] (relay OFF) and anything else a failed poll; a verified 200 goes
    /// to [`Controller::answer`]'s rules, a verified `409 STALE_COUNTER` moves the counter up.
    pub fn reply(&mut self, sent: Sent, now: Millis, reply: Reply<'_>) -> Result<PollAnswer, AnswerError> {
        self.observe(now);
        if self.link.is_none() {
            if reply.status == 200 {
                return self.take_answer(sent, now, reply.body);
            }
            return Err(self.refused(now, reply.status));
        }
        let verified = self.verified(sent.signature, &reply);
        let own = sent.signature.map(|s| s.counter);
        match verified {
            Some(counter) if reply.status == 200 && Some(counter) == own => self.take_answer(sent, now, reply.body),
            Some(counter) if reply.status != 200 => {
                self.refusal(reply.status, counter);
                Err(self.refused(now, reply.status))
            }
            _ if reply.status == 200 => Err(self.forged()),
            _ => Err(self.refused(now, reply.status)),
        }
    }

    fn refused(&mut self, now: Millis, status: u16) -> AnswerError {
        self.poll_failed(now);
        if matches!(status, 401 | 403) {
            self.link_state = LinkState::KeyRefused;
        }
        AnswerError::Refused(status)
    }

    fn forged(&mut self) -> AnswerError {
        self.command = None;
        self.run_may_be_active = true;
        self.failures = self.failures.saturating_add(1);
        self.link_state = LinkState::Forged;
        AnswerError::Forged
    }

    /// The settings this controller was made with.
    pub const fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Notes the time. A clock that went back makes every freshness untrustworthy, so the
    /// command, the debounced inputs and the card memory are forgotten (the relay goes OFF until
    /// a new answer arrives and the inputs settle again), polls already sent are not trusted,
    /// and restart protection starts over from now.
    fn observe(&mut self, now: Millis) {
        if now < self.latest {
            self.command = None;
            self.newest = None;
            self.load_shedding = Debounced::UNKNOWN;
            self.ready = Debounced::UNKNOWN;
            self.feedback = Debounced::UNKNOWN;
            self.feedback_seen = None;
            self.last_card = None;
            self.reported = None;
            self.epoch = self.epoch.wrapping_add(1);
            self.switched_at = now;
            self.starts.retime(self.latest, now);
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

    /// Records the raw level of the feedback input at `now`, on a board that has one (ignored
    /// otherwise). Call it every tick, with [`Controller::sense`].
    pub fn sense_feedback(&mut self, now: Millis, level: bool) {
        self.observe(now);
        let Some(input) = self.settings.feedback else { return };
        self.feedback.sample(now, level, self.settings.debounce_ms);
        if self.feedback.value() == Some(input.active_high) {
            self.feedback_seen = Some(now);
        }
    }

    /// Why the board started, from the chip at boot: reported until the server has answered.
    pub fn set_reset_reason(&mut self, reason: ResetReason) {
        self.reset = Some(reason);
    }

    /// Whether the RFID reader answers, on boards that have one.
    pub fn set_reader(&mut self, state: ReaderState) {
        self.reader = Some(state);
    }

    /// The debounced load-shedding input: `Some(true)` while the grid is down, `None` until it
    /// has settled.
    pub fn load_shedding(&self) -> Option<bool> {
        Some(self.load_shedding.value()? == self.settings.load_shedding_active_high)
    }

    /// The debounced ready input: `Some(true)` while the pump is ready, `None` until it has
    /// settled.
    pub fn ready(&self) -> Option<bool> {
        Some(self.ready.value()? == self.settings.ready_active_high)
    }

    /// The debounced feedback input: `Some(true)` while it says the motor runs; `None` on a
    /// board without one or until it has settled.
    pub fn feedback(&self) -> Option<bool> {
        let input = self.settings.feedback?;
        Some(self.feedback.value()? == input.active_high)
    }

    /// The relay as last driven by [`Controller::drive`].
    pub const fn closed(&self) -> bool {
        self.closed
    }

    /// The relay decision at `now`, with the reason when OFF. It does not change anything: the
    /// shell drives the relay with [`Controller::drive`].
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
        match self.load_shedding() {
            None => return Decision::Off(LoadSheddingUnknown),
            Some(true) => return Decision::Off(LoadShedding),
            Some(false) => {}
        }
        match self.ready() {
            None => return Decision::Off(ReadyUnknown),
            Some(false) => return Decision::Off(NotReady),
            Some(true) => {}
        }
        if self.no_feedback_seq == Some(command.seq) || self.feedback_overdue(now) {
            return Decision::Off(NoFeedback);
        }
        // Restart protection, for a relay that is open (a closed one stays closed: a handover
        // from one run to the next is not a start, and a running motor is not stopped because a
        // setting changed).
        if !self.closed {
            // The grid has been up since the load-shedding input settled on "up" (at boot too:
            // the device cannot know how long it was up before).
            let grid_up = self.load_shedding.since().and_then(|since| now.since(since)).unwrap_or(0);
            if grid_up < u64::from(command.grid_settle_ms) {
                return Decision::Off(GridSettling);
            }
            let open_for = now.since(self.switched_at).unwrap_or(0);
            if open_for < u64::from(command.min_off_ms) {
                return Decision::Off(MinOffTime);
            }
            if self.starts.reached(command.max_starts_per_hour, now) {
                return Decision::Off(StartsPerHour);
            }
        }
        Decision::On
    }

    /// True when the relay is closed and the feedback input has not said "running" for the
    /// confirmation time (counted from the closing or from the last time it did).
    fn feedback_overdue(&self, now: Millis) -> bool {
        let Some(input) = self.settings.feedback else { return false };
        if !self.closed || self.feedback() == Some(true) {
            return false;
        }
        let since = match self.feedback_seen {
            Some(seen) if seen > self.switched_at => seen,
            _ => self.switched_at,
        };
        now.since(since).is_some_and(|quiet| quiet >= u64::from(input.confirm_ms))
    }

    /// What the relay must be at `now` (the decision, without driving it).
    pub fn relay(&self, now: Millis) -> bool {
        self.decision(now).is_on()
    }

    /// THE call that switches the relay: decides at `now`, remembers the relay as driven (when it
    /// closed, when it opened, the starts of the last hour, a motor that did not confirm), and
    /// returns the level to drive (true: ON). Call it every control loop tick, after
    /// [`Controller::sense`].
    pub fn drive(&mut self, now: Millis) -> Decision {
        self.observe(now);
        let decision = self.decision(now);
        if decision == Decision::Off(OffReason::NoFeedback) && self.closed {
            self.no_feedback_seq = self.command.map(|command| command.seq);
        }
        let on = decision.is_on();
        if on != self.closed {
            self.closed = on;
            self.switched_at = now;
            if on {
                self.starts.push(now);
                self.feedback_seen = None;
            }
        }
        decision
    }

    fn snapshot(&self, now: Millis) -> Reported {
        let decision = self.decision(now);
        Reported {
            // An input that has not settled is reported as its unsafe value.
            load_shedding: self.load_shedding().unwrap_or(true),
            ready: self.ready().unwrap_or(false),
            relay: decision.is_on(),
            relay_off: match decision {
                Decision::On => None,
                Decision::Off(reason) => Some(reason.relay_off()),
            },
            feedback: self.settings.feedback.map(|_| self.feedback().unwrap_or(false)),
            reader: self.reader,
        }
    }

    /// The report to send now (debounced inputs, the relay as decided and why it is OFF, the
    /// feedback input and the reader when the board has them, why the board started until the
    /// server has answered once, uptime and firmware), and remembers it for
    /// [`Controller::report_now`]. An input that has
    /// not settled yet is reported as unsafe (grid down, not ready, motor not running). The
    /// caller may fill in `rssi`.
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
            reset: self.reset,
            feedback: seen.feedback,
            reader: seen.reader,
            relay_off: seen.relay_off,
        }
    }

    /// The moment `now` as the send time of a poll ([`Controller::poll`] gives it too).
    pub fn sent(&mut self, now: Millis) -> Sent {
        self.observe(now);
        Sent { at: now, epoch: self.epoch, signature: None }
    }

    /// Everything to send a poll at `now`: the report, the long-poll, the request's timeout, and
    /// the send time to hand back with the answer.
    pub fn poll(&mut self, now: Millis) -> Poll {
        let report = self.report(now);
        Poll { report, long_poll: self.long_poll(now), timeout_ms: self.request_timeout_ms(now), sent: self.sent(now) }
    }

    /// True once both inputs have settled since boot. Until then a report would have to say
    /// "grid down, not ready" and would put a running pump in HOLD for a moment at every boot:
    /// wait for it before the first poll.
    pub fn settled(&self, _now: Millis) -> bool {
        self.load_shedding().is_some() && self.ready().is_some()
    }

    /// True when the inputs, the relay or why it is open (`relayOff`, as the report says it)
    /// changed since the last report (or nothing was reported yet): poll at once instead of
    /// waiting, or cut a long-poll short. Always false while retrying after failed polls, so a
    /// dead link is not hammered (the retry carries the change), and before the inputs have
    /// [settled](Controller::settled).
    pub fn report_now(&self, now: Millis) -> bool {
        self.failures == 0 && self.settled(now) && self.reported != Some(self.snapshot(now))
    }

    /// Takes the body of an HTTP 200 answer, arriving at `now`, to the poll sent at `sent`. A
    /// usable answer replaces the command, and its lease counts from `sent`; an unusable one drops
    /// the command (relay OFF) and counts as a failed poll. An answer to a poll sent before the
    /// one of the newest answer taken (a late, reordered or duplicated answer, also once the
    /// command was dropped), an ON to that same poll with an older `seq` than an answer taken for
    /// it (a captured ON sent again after the OFF that replaced it), or an answer to a poll sent
    /// before the clock went back, changes nothing ([`AnswerError::Stale`]).
    ///
    /// Only for a device without a link secret: one that has a secret trusts no body without its
    /// MAC, so here it drops the command ([`AnswerError::Forged`]); it hands answers to
    /// [`Controller::reply`].
    pub fn answer(&mut self, sent: Sent, now: Millis, body: &[u8]) -> Result<PollAnswer, AnswerError> {
        self.observe(now);
        if self.link.is_some() {
            return Err(self.forged());
        }
        self.take_answer(sent, now, body)
    }

    fn take_answer(&mut self, sent: Sent, now: Millis, body: &[u8]) -> Result<PollAnswer, AnswerError> {
        let late = sent.epoch != self.epoch || sent.at > now;
        // Older than the newest answer taken; or an ON for the same poll with an older `seq` (the
        // server's count of its commands, which never goes back): a captured ON sent again after
        // the OFF that replaced it, also once a forged message dropped that OFF. An OFF for the
        // same poll is always taken.
        let behind = |answer: &PollAnswer| {
            self.newest
                .is_some_and(|(at, seq)| sent.at < at || (sent.at == at && answer.commands_on() && answer.seq < seq))
        };
        match json::decode_answer(body) {
            Ok(answer) if late || behind(&answer) => Err(AnswerError::Stale),
            Ok(answer) => {
                // Not behind: a newer poll, or the same one (whose highest `seq` is kept).
                let seq = match self.newest {
                    Some((at, seq)) if at == sent.at => seq.max(answer.seq),
                    _ => answer.seq,
                };
                self.newest = Some((sent.at, seq));
                let lease_ms = answer.lease_ms.min(self.settings.max_lease_ms);
                self.command = Some(Command {
                    on: answer.commands_on(),
                    at: sent.at,
                    lease_ms,
                    seq: answer.seq,
                    min_off_ms: answer.min_off_ms,
                    grid_settle_ms: answer.grid_settle_ms,
                    max_starts_per_hour: answer.max_starts_per_hour,
                });
                self.poll_ms = answer.poll_ms.max(self.settings.min_poll_ms);
                self.lease_ms = lease_ms;
                self.run_may_be_active = !matches!(answer.state, MotorState::Idle);
                self.failures = 0;
                self.reset = None;
                self.link_state = LinkState::Up;
                Ok(answer)
            }
            Err(err) => Err(self.garbage(err)),
        }
    }

    /// An answer that came but could not be read whole (longer than the board's receive buffer,
    /// over HTTP or MQTT), at `now`: unusable like one longer than an answer may be, so the
    /// command is dropped (relay OFF) and it counts as a failed poll.
    pub fn too_long(&mut self, now: Millis) -> AnswerError {
        self.observe(now);
        self.garbage(json::JsonError::TooLong)
    }

    /// An unusable answer: the command is dropped (relay OFF) and it counts as a failed poll.
    fn garbage(&mut self, err: json::JsonError) -> AnswerError {
        self.command = None;
        self.run_may_be_active = true;
        self.failures = self.failures.saturating_add(1);
        self.link_state = LinkState::Forged;
        match err {
            json::JsonError::TooLong => AnswerError::TooLong,
            _ => AnswerError::Invalid,
        }
    }

    /// A poll that got no usable HTTP answer: network error, timeout, a status other than 200.
    /// It never extends the lease and never turns anything ON; the last command stays until its
    /// lease runs out, and the next poll backs off.
    pub fn poll_failed(&mut self, now: Millis) {
        self.observe(now);
        self.failures = self.failures.saturating_add(1);
        self.link_state = LinkState::Unreachable;
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

    /// What is left at `now` of the lease of an ON command (`None` without one, or once it ran out).
    fn lease_left(&self, now: Millis) -> Option<u64> {
        let command = self.command.filter(|command| command.on)?;
        let left = u64::from(command.lease_ms).saturating_sub(now.since(command.at)?);
        (left > 0).then_some(left)
    }

    /// The long-poll to ask for with the next poll at `now`, or `None` for a plain poll: when
    /// long-polling is off, before the first usable answer, or while retrying after failures.
    ///
    /// Under an ON command, the wait is a quarter of what is left of its lease: the request may
    /// take half of it ([`Controller::request_timeout_ms`]), which leaves a quarter for the round
    /// trip, and the answer arrives while half is still left for one retry. Otherwise it is the
    /// longest wait the server honours.
    pub fn long_poll(&self, now: Millis) -> Option<LongPoll> {
        if !self.settings.long_poll || self.failures > 0 {
            return None;
        }
        let command = self.command?;
        let wait_ms = if command.on {
            let left = self.lease_left(now).unwrap_or(0);
            u32::try_from(left / 4).unwrap_or(u32::MAX).min(MAX_WAIT_MS)
        } else {
            MAX_WAIT_MS
        };
        (wait_ms > 0).then_some(LongPoll { wait_ms, seq: command.seq })
    }

    /// How long a poll sent at `now` may take before the shell gives up on it: the request
    /// timeout plus the long-poll wait, and never more than half of what is left of the lease of
    /// an ON command, so a stalled request cannot use up the lease (at least 1 ms).
    pub fn request_timeout_ms(&self, now: Millis) -> u32 {
        let wait = self.long_poll(now).map_or(0, |long_poll| long_poll.wait_ms);
        let full = self.settings.request_timeout_ms.saturating_add(wait);
        let capped = match self.lease_left(now) {
            Some(left) => full.min(u32::try_from(left / 2).unwrap_or(u32::MAX)),
            None => full,
        };
        capped.max(1)
    }

    /// A card seen by the reader at `now`. Returns the tap to send (`POST /api/esp32/rfid`,
    /// [`Tap::tap`]: its body, made once and sent again as is by each retry, so every attempt of
    /// it names the same tap id), or `None` when the UID has an impossible length or it is the
    /// same card as the last one seen within `card_repeat_ms` (a card held to the reader is one
    /// tap, however long it stays). Each tap takes the next id.
    pub fn card(&mut self, now: Millis, uid: &[u8]) -> Option<Tap> {
        self.observe(now);
        let card = CardUid::from_bytes(uid)?;
        let repeat = match self.last_card {
            Some((last, seen)) => {
                last == card && now.since(seen).is_some_and(|gap| gap < u64::from(self.settings.card_repeat_ms))
            }
            None => false,
        };
        self.last_card = Some((card, now));
        if repeat {
            return None;
        }
        self.tap_id = self.tap_id.wrapping_add(1);
        Some(Tap { card, id: self.tap_id })
    }

    /// The feedback for the body of an HTTP 200 answer to a card tap. For a failed request
    /// (network error, another status) show [`CardFeedback::Error`].
    pub fn card_answer(&self, body: &[u8]) -> CardFeedback {
        CardFeedback::from_answer(body)
    }

    /// The feedback for an HTTP answer to a card tap sent with `signature`
    /// ([`Controller::sign`]). With a link secret only an answer whose MAC checks and names the
    /// tap's own counter counts (anything else is [`CardFeedback::Error`]); a verified `409`
    /// moves the counter up, as for a poll.
    pub fn card_reply(&mut self, signature: Option<Signature>, reply: Reply<'_>) -> CardFeedback {
        if self.accept(signature, &reply) { CardFeedback::from_answer(reply.body) } else { CardFeedback::Error }
    }

    /// True when any other answer (a firmware description, a range of an image) to a request sent
    /// with `signature` may be used: its status is 200 or 206 and, with a link secret, its MAC
    /// checks and names the request's own counter (a verified `409` moves the counter up).
    pub fn accept(&mut self, signature: Option<Signature>, reply: &Reply<'_>) -> bool {
        let success = matches!(reply.status, 200 | 206);
        if self.link.is_none() {
            return success;
        }
        let Some(counter) = self.verified(signature, reply) else { return false };
        if !success {
            self.refusal(reply.status, counter);
            return false;
        }
        Some(counter) == signature.map(|s| s.counter)
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
