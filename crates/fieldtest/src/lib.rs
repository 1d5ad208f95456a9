//! The fault campaign: the device's [`Controller`] and the real engine together, step by step on
//! fake time. The controller (debounce, restart protection, lease counted from the send, feedback)
//! talks through a network that loses, delays, stalls, duplicates, reorders and garbles (requests
//! and answers) to a [`Pump`]: the engine's `Tenant`, kept as the server's runtime keeps it, with
//! farmers, an owner, a spare board and a store that fails. Around the device: noisy inputs, load
//! shedding, a motor that sometimes never confirms, reboots, clocks that jump and silent spells.
//!
//! With a link secret ([`Campaign::with_link_secret`]) the board signs every poll or report and
//! the server checks it and signs every answer, as `crates/server` does (`link.rs`, with the
//! protocol crate's MACs); a counter the server has seen is refused with a signed `409` (a board
//! that rebooted counts from below the highest). An attacker on the network (`attacker.rs`) then answers
//! polls in the server's place, or publishes on the board's command topic: genuine messages it
//! captured, sent again later (an ON after the Stop that replaced it, messages of an earlier
//! boot), forged ones (changed under their old MAC, signed with another key) and unsigned ones.
//!
//! An [`Oracle`] written apart from the controller, from the rule in `docs/DEVICE.md`, watches
//! every step and counts the steps where the relay is ON although one of these does not hold:
//! the last accepted answer says RUNNING and its lease (counted in *true* time from the moment
//! its poll was sent) has not run out; the sampled load-shedding input has settled on "grid up";
//! the sampled ready input has settled on "ready"; restart protection (a closing only after the
//! grid was up for `gridSettleMs`, the relay open for `minOffMs`, and under `maxStartsPerHour`);
//! on boards with a feedback input, the motor confirmed within the set time. That count must
//! be 0. It also decides, from the same page, what the board must make of every answer or
//! command (taken, stale, dropped as garbage or forged, a failed poll), which counter it must
//! sign each message with, and so which of the attacker's messages it may take: none forged or
//! unsigned, and a replay only as the rule takes the genuine message it copies (over HTTP
//! never, the MAC naming the very request; over MQTT with its lease counted from the report it
//! names, and never an ON that a newer command for that report replaced). The [`Pump`] counts
//! the milliseconds the engine charged while the relay could not be ON (0) and the balances that
//! are not their ledger (0).
//!
//! Restart protection and the grid's settle time are counted on the device's clock (a clock
//! that jumps forward is indistinguishable from time passing); the lease in true time (a clock
//! that jumps forward only ends it early). A reboot forgets the starts of the last hour (the
//! server counts them too).
//!
//! The server process restarts now and then ([`Faults::restart`]: a deploy, a crash, `kill -9`,
//! one server of a fleet replaced by another). What it kept only in memory is lost, as
//! `crates/server` loses it: the tenant is read again from what was committed, with the last
//! polls the telemetry flush wrote ([`Pump::restart`]); a held long-poll is dropped and its
//! connection closed (the board's poll fails); the counter window is lost, so the next counter is
//! accepted only above the store's floor (`reserve_device_counters` gives a new block, and the
//! board pays one `409`), and while the store cannot be written no window can be reserved (a
//! signed `503`, or over MQTT the session ends); the MQTT session ends with the process, and the
//! board connects again at its next report's time, is pushed the command at SUBSCRIBE (naming no
//! report) and reports at once. For 1 to 30 s (longer while the store cannot be read) every
//! connection is refused. The attacker then sends the signed requests it captured before the
//! restart to the new server (its newest accepted one, and one at random), which must refuse
//! them, and answers or commands it captured before (the newest ON first), which the board takes
//! only as the rule takes the genuine message. Every counter a server accepted is counted: none
//! may be accepted twice, across restarts too.
//!
//! What the campaign cannot model of a restart: the firmware's second attempt of a poll on a new
//! connection when the kept one was closed (`Controller::sign_attempt`): a poll that meets the
//! restart fails, and one sent once the new server serves reaches it at once; and, of a fleet,
//! the heartbeats that vouch for the last polls of devices present at a server and the change
//! feed (the new server reads what the old one committed and flushed, as one restarting on a
//! store of its own does).

mod attacker;
mod link;
mod pump;

use std::collections::HashSet;

use attacker::Attacker;
use link::{HttpAnswer, Report, ServerLink, Signer, command_json};
use pump::{Held as HeldPoll, Reply, Request};
pub use pump::{Pump, PumpFigures};

use pumppilot_controller::{
    AnswerError, Controller, Decision, FeedbackInput, LinkSecret, Millis, OffReason, Reply as HttpReply, Sent,
    Settings, Signature,
    mqtt::{MAX_REPORT_PAYLOAD, MqttReport, Pushed, REMEMBERED_REFS},
    pin_level,
    timing::{HOUR_MS, TICK_MS},
};
use pumppilot_protocol::{
    Motor, MotorState, POLL_PATH, PollAnswer, ResetReason, json,
    link::{self as protocol_link, Framed},
};

/// The board's MQTT topics in the campaign (its id: `fieldtest`).
const REPORT_TOPIC: &str = "pumppilot/fieldtest/report";
const COMMAND_TOPIC: &str = "pumppilot/fieldtest/command";

/// A small, fast, reproducible random source (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// A number in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `per_million` / 1,000,000.
    pub fn chance(&mut self, per_million: u64) -> bool {
        self.below(1_000_000) < per_million
    }
}

/// How often things go wrong, per million (per step, per poll or per sample as named).
#[derive(Debug, Clone, Copy)]
pub struct Faults {
    /// A raw input sample reads the wrong level.
    pub noise_per_sample: u64,
    /// A burst of 1 to 4 wrong samples in a row starts.
    pub burst_per_sample: u64,
    /// A poll's request never arrives.
    pub lost_request: u64,
    /// A poll's request arrives a second time, 1 to 5 s later (a duplicated or late report).
    pub duplicate_request: u64,
    /// The link goes silent for 20 s to 10 min: no request gets through (per step).
    pub silence: u64,
    /// A poll is answered with a 5xx.
    pub server_error: u64,
    /// An answer never arrives.
    pub lost_answer: u64,
    /// An answer is held up for 1 to 30 s.
    pub stall: u64,
    /// An answer arrives a second time, later.
    pub duplicate: u64,
    /// An answer that came too late for its request arrives anyway (out of order).
    pub late_delivery: u64,
    /// An answer arrives cut short or damaged.
    pub garbage: u64,
    /// The board reboots (per step).
    pub reboot: u64,
    /// The device's clock jumps back or forward (per step).
    pub clock_jump: u64,
    /// A closing of the relay that the motor never confirms.
    pub dead_motor: u64,
    /// On a board with a link secret, the attacker sends a genuine answer or command it captured
    /// earlier again (per poll, in the server's place; over MQTT per report, beside the server's).
    pub replay: u64,
    /// The same, a forged one: changed under its old MAC, or signed with a key that is not the
    /// board's.
    pub forgery: u64,
    /// The same, one without a signature.
    pub injection: u64,
    /// Over MQTT, on a board that signs: as the attacker sees a command replace an ON it captured
    /// for the same report (a Stop pushed before the next report), it sends that ON again at
    /// once, and after each of the board's next reports while the board may still remember the
    /// report (over HTTP a captured answer never checks for another request, whenever it comes).
    pub replay_after_stop: u64,
    /// The server process restarts (per step): it forgets what it kept only in memory and
    /// refuses connections for 1 to 30 s (until the store can be read, if later).
    pub restart: u64,
    /// On a board that signs, as the server restarts (per restart): once the new server serves,
    /// the attacker sends it signed requests it captured before the restart, and sends the board
    /// the newest ON it captured before (then again in place of, or beside, the next answers).
    pub replay_across_restart: u64,
    /// Over MQTT, per reboot: the board's refs start where an earlier boot's started (two random
    /// 32-bit numbers meet: rare for one board, not over a fleet and the years), so this boot's
    /// reports reach `ref`s that commands of that boot named.
    pub ref_met_again: u64,
    /// Over MQTT, on a board that signs, per report: when the attacker holds a command of an
    /// earlier boot naming one of the `ref`s the board reported last, it sends it.
    pub replay_of_a_ref_met_again: u64,
}

impl Faults {
    /// A bad day at a pump: every fault, often (the attacker's only where the board signs: a
    /// board without a link secret takes any well-formed answer, which is what the secret is
    /// for).
    pub const BAD_DAY: Faults = Faults {
        noise_per_sample: 20_000,
        burst_per_sample: 2_000,
        lost_request: 30_000,
        duplicate_request: 20_000,
        silence: 20,
        server_error: 30_000,
        lost_answer: 30_000,
        stall: 20_000,
        duplicate: 20_000,
        late_delivery: 500_000,
        garbage: 10_000,
        reboot: 20,
        clock_jump: 50,
        dead_motor: 100_000,
        replay: 40_000,
        forgery: 20_000,
        injection: 10_000,
        replay_after_stop: 1_000_000,
        restart: 40,
        replay_across_restart: 1_000_000,
        ref_met_again: 500_000,
        replay_of_a_ref_met_again: 1_000_000,
    };
}

/// What one campaign did. `violations` must be 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    pub steps: u64,
    pub simulated_ms: u64,
    pub relay_on_steps: u64,
    pub starts: u64,
    pub polls: u64,
    pub answers_used: u64,
    pub answers_stale: u64,
    pub answers_garbage: u64,
    pub lost: u64,
    pub server_errors: u64,
    pub timeouts: u64,
    pub duplicates: u64,
    pub late_deliveries: u64,
    pub stalls: u64,
    pub duplicated_requests: u64,
    pub silences: u64,
    pub reboots: u64,
    pub clock_jumps: u64,
    /// Server restarts; connections the server closed (held long-polls and MQTT sessions at a
    /// restart, an MQTT session whose counter window could not be reserved); polls and MQTT
    /// connections refused while the server was down.
    pub restarts: u64,
    pub connections_closed: u64,
    pub refused_while_down: u64,
    /// Signed polls or reports that needed a counter window while the store could not reserve
    /// one (a signed `503`; over MQTT the session ends).
    pub windows_not_reserved: u64,
    pub feedback_trips: u64,
    pub noisy_samples: u64,
    /// Steps with the relay ON outside (RUNNING ∧ fresh lease ∧ grid settled ∧ ready ∧ restart
    /// protection ∧ feedback).
    pub violations: u64,
    /// Answers the controller accepted or refused differently from the oracle.
    pub acceptance_mismatches: u64,
    /// Steps with the relay OFF although the oracle allowed ON (slowness, not danger).
    pub off_though_allowed: u64,
    /// Steps with the relay ON while the true grid was down (noise longer than the debounce).
    pub on_while_grid_truly_down: u64,
    /// Runs the engine held NO_FEEDBACK although the motor at the pump ran when asked.
    pub false_no_feedback: u64,
    /// Over MQTT: commands without a `ref` or with one the device no longer remembers, saying ON
    /// (not used) and saying OFF (used).
    pub unreferenced_on: u64,
    pub unreferenced_off: u64,
    /// Over MQTT: reports not answered, as the answer would only repeat the command the server
    /// last sent (an unchanged OFF to a device whose relay is open).
    pub answers_spared: u64,
    /// Over MQTT: commands the server pushed as they changed (a new `seq`) or on a new connection.
    pub pushed: u64,
    /// With a link secret: polls or reports the board signed, and those whose counter the server
    /// refused with a signed `409` or refusal (the board rebooted and counts from below, or the
    /// request arrived twice).
    pub signed: u64,
    pub counters_refused: u64,
    /// Signed polls or reports whose MAC did not check at the server (must be 0: the board signs
    /// what it sends).
    pub bad_signatures: u64,
    /// The attacker's messages that reached the board: replays (of them, ONs a newer command had
    /// replaced, and messages of an earlier boot), forgeries and injections.
    pub replays: u64,
    pub replays_of_a_replaced_on: u64,
    pub replays_across_reboots: u64,
    /// Of the replays across a reboot: over MQTT, commands naming a `ref` the board's new boot
    /// reported again (its refs met an earlier boot's); and those of every kind the board took as
    /// the answer to a poll or report of its own (must be 0: an answer's MAC names a request of
    /// the other boot, a command carries the counter of the other boot's report).
    pub replays_of_a_ref_met_again: u64,
    pub replays_across_reboots_taken: u64,
    pub forgeries: u64,
    pub injections: u64,
    /// Replays the controller took (only as the rule takes the genuine message: over MQTT a
    /// command for a report it remembers, not behind the newest taken, or an OFF).
    pub replays_taken: u64,
    /// Of the replays, those captured before a server restart and sent after it, and those the
    /// controller took (as the rule takes the genuine message).
    pub replays_across_restarts: u64,
    pub replays_across_restarts_taken: u64,
    /// Signed polls or reports a server accepted, captured by the attacker and sent again to the
    /// server after it restarted, and those it accepted again (must be 0).
    pub requests_replayed: u64,
    pub requests_replayed_taken: u64,
    /// Counters a server accepted that a server (the same or a restarted one) had accepted
    /// before (must be 0).
    pub counters_accepted_twice: u64,
    /// Forged or unsigned messages the controller took (must be 0).
    pub forgeries_taken: u64,
}

impl Figures {
    pub fn add(&mut self, o: &Figures) {
        macro_rules! sum { ($($f:ident),*) => { $( self.$f += o.$f; )* } }
        sum!(
            steps,
            simulated_ms,
            relay_on_steps,
            starts,
            polls,
            answers_used,
            answers_stale,
            answers_garbage,
            lost,
            server_errors,
            timeouts,
            duplicates,
            late_deliveries,
            stalls,
            duplicated_requests,
            silences,
            reboots,
            clock_jumps,
            restarts,
            connections_closed,
            refused_while_down,
            windows_not_reserved,
            feedback_trips,
            noisy_samples,
            violations,
            acceptance_mismatches,
            off_though_allowed,
            on_while_grid_truly_down,
            false_no_feedback,
            unreferenced_on,
            unreferenced_off,
            answers_spared,
            pushed,
            signed,
            counters_refused,
            bad_signatures,
            replays,
            replays_of_a_replaced_on,
            replays_across_reboots,
            replays_of_a_ref_met_again,
            replays_across_reboots_taken,
            forgeries,
            injections,
            replays_taken,
            replays_across_restarts,
            replays_across_restarts_taken,
            requests_replayed,
            requests_replayed_taken,
            counters_accepted_twice,
            forgeries_taken
        );
    }
}

impl core::fmt::Display for Figures {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        writeln!(f, "device-steps            {}", self.steps)?;
        writeln!(f, "simulated time          {:.1} h", self.simulated_ms as f64 / 3_600_000.0)?;
        writeln!(f, "relay ON steps          {}", self.relay_on_steps)?;
        writeln!(f, "relay starts            {}", self.starts)?;
        writeln!(f, "polls                   {}", self.polls)?;
        writeln!(
            f,
            "answers used / stale / garbage   {} / {} / {}",
            self.answers_used, self.answers_stale, self.answers_garbage
        )?;
        writeln!(f, "lost / 5xx / timed out  {} / {} / {}", self.lost, self.server_errors, self.timeouts)?;
        writeln!(
            f,
            "stalls / duplicated / late (reordered)   {} / {} / {}",
            self.stalls, self.duplicates, self.late_deliveries
        )?;
        writeln!(f, "duplicated reports / silent spells   {} / {}", self.duplicated_requests, self.silences)?;
        writeln!(f, "reboots / clock jumps   {} / {}", self.reboots, self.clock_jumps)?;
        writeln!(
            f,
            "server restarts / connections the server closed / polls refused while it was down   {} / {} / {}",
            self.restarts, self.connections_closed, self.refused_while_down
        )?;
        writeln!(f, "noisy samples           {}", self.noisy_samples)?;
        writeln!(f, "feedback trips          {}", self.feedback_trips)?;
        writeln!(f, "MQTT unreferenced ON / OFF   {} / {}", self.unreferenced_on, self.unreferenced_off)?;
        writeln!(f, "MQTT reports not answered (an unchanged OFF)   {}", self.answers_spared)?;
        writeln!(f, "MQTT commands pushed as they changed   {}", self.pushed)?;
        writeln!(
            f,
            "signed polls / counters refused (409) / MACs refused by the server (must be 0)   {} / {} / {}",
            self.signed, self.counters_refused, self.bad_signatures
        )?;
        writeln!(f, "counter windows the failing store could not reserve   {}", self.windows_not_reserved)?;
        writeln!(
            f,
            "attacker: replays (of a replaced ON / across a reboot) / forged / unsigned   {} ({} / {}) / {} / {}",
            self.replays, self.replays_of_a_replaced_on, self.replays_across_reboots, self.forgeries, self.injections
        )?;
        writeln!(f, "attacker's replays taken by the rule     {}", self.replays_taken)?;
        writeln!(
            f,
            "attacker over MQTT: an earlier boot's commands naming a ref met again / taken as its answer (must be 0)   {} / {}",
            self.replays_of_a_ref_met_again, self.replays_across_reboots_taken
        )?;
        writeln!(
            f,
            "attacker across a server restart: replays / taken by the rule   {} / {}",
            self.replays_across_restarts, self.replays_across_restarts_taken
        )?;
        writeln!(
            f,
            "attacker's signed requests sent again to a restarted server / accepted (must be 0)   {} / {}",
            self.requests_replayed, self.requests_replayed_taken
        )?;
        writeln!(f, "counters accepted twice, across restarts too (must be 0)   {}", self.counters_accepted_twice)?;
        writeln!(f, "attacker's forged or unsigned messages taken (must be 0)   {}", self.forgeries_taken)?;
        writeln!(f, "relay ON outside the rule (must be 0)   {}", self.violations)?;
        writeln!(f, "acceptance mismatches (must be 0)       {}", self.acceptance_mismatches)?;
        writeln!(f, "relay OFF though allowed (slowness)     {}", self.off_though_allowed)?;
        writeln!(
            f,
            "relay ON while the true grid was down (noise bursts past the debounce)   {}",
            self.on_while_grid_truly_down
        )?;
        write!(f, "NO_FEEDBACK holds of a motor that ran (must be 0)   {}", self.false_no_feedback)
    }
}

/// The debounce of `docs/DEVICE.md`, kept by the oracle from the samples the device was given.
#[derive(Debug, Clone, Copy, Default)]
struct Sampled {
    run: Option<(bool, u64, u32)>,
    settled: Option<(bool, u64)>,
}

impl Sampled {
    fn sample(&mut self, now: u64, level: bool, debounce: u64) {
        let (start, count) = match self.run {
            Some((l, start, count)) if l == level && now >= start => (start, count + 1),
            _ => (now, 1),
        };
        self.run = Some((level, start, count));
        if count >= 3 && now - start >= debounce && self.settled.map(|s| s.0) != Some(level) {
            self.settled = Some((level, now));
        }
    }
}

/// Over MQTT, a report as the oracle remembers it: its `ref`, its true and device send times,
/// the clock's epoch, and (on a board that signs) the counter it was signed with.
#[derive(Debug, Clone, Copy)]
struct SentReport {
    reference: u32,
    send_true: u64,
    send_dev: u64,
    epoch: u64,
    counter: Option<u64>,
}

/// The command the oracle holds the device to.
#[derive(Debug, Clone, Copy)]
struct Held {
    send_true: u64,
    send_dev: u64,
    answer: PollAnswer,
}

/// The oracle's own account of the device, from the rule, not from the controller.
#[derive(Debug, Clone, Default)]
struct Oracle {
    epoch: u64,
    latest_dev: u64,
    held: Option<Held>,
    /// The newest answer taken (its poll's true and device send times, the highest `seq` for that
    /// poll), kept when the command is dropped.
    newest: Option<(u64, u64, u64)>,
    grid: Sampled,
    ready: Sampled,
    feedback: Sampled,
    closed: bool,
    switched_dev: u64,
    starts: Vec<u64>,
    feedback_seen: Option<u64>,
    /// Over MQTT: the last reports sent.
    refs: Vec<SentReport>,
    /// With a link secret: the last counter the board signed with, or the highest a refusal
    /// whose MAC checks named since (the next message is signed one above). A reboot counts
    /// from the random point the shell drew (its low 48 bits).
    counter: u64,
}

impl Oracle {
    /// The rule for an answer to the poll sent at `send_true`: stale when that poll is older
    /// than the newest answer taken, or when it is the same poll and the answer an ON with an
    /// older `seq` (a captured ON sent again after the OFF that replaced it).
    fn behind(&self, send_true: u64, answer: &PollAnswer) -> bool {
        self.newest.is_some_and(|(at, _, seq)| {
            send_true < at
                || (send_true == at
                    && answer.motor == Motor::On
                    && answer.state == MotorState::Running
                    && answer.seq < seq)
        })
    }

    /// An answer to the poll sent at `send_true` (`send_dev` on the device's clock) was taken: it
    /// is not behind, so its poll is the newest or the newest's own.
    fn took(&mut self, send_true: u64, send_dev: u64, answer: &PollAnswer) {
        let seq = match self.newest {
            Some((at, _, seq)) if at == send_true => seq.max(answer.seq),
            _ => answer.seq,
        };
        self.newest = Some((send_true, send_dev, seq));
    }

    /// The command is dropped (garbage, forged): the relay opens, the newest answer taken stays.
    fn dropped(&mut self, verdict: Verdict) -> Verdict {
        self.held = None;
        verdict
    }

    /// A refusal of a counter whose MAC checks: the board signs above the counter it names.
    fn refused(&mut self, refusal: Option<u64>) -> Verdict {
        if let Some(highest) = refusal {
            self.counter = self.counter.max(highest);
        }
        Verdict::Refused
    }

    /// The board signed a message with `counter`: `None` when that is the counter the rule
    /// gives (one above the last, or above the highest a refusal named), else the rule's.
    fn signed(&mut self, counter: u64) -> Option<u64> {
        let expected = self.counter.saturating_add(1).min(protocol_link::MAX_COUNTER);
        self.counter = counter;
        (counter != expected).then_some(expected)
    }

    /// What the board must make of the HTTP answer `d` (status `status`) to its poll, at `now` on
    /// its clock; `signs`: it has a link secret. With one, it uses only a 200 whose MAC the
    /// server made over these very bytes for this very request; any other 200 is forged (the
    /// command is dropped), and any other status a failed poll (a `409` whose MAC checks moves
    /// the counter up). Then a usable answer is taken unless it answers an older poll than the
    /// newest taken (or an older `seq` for the same poll's ON), or a poll sent before the clock
    /// went back.
    fn judge_answer(&mut self, d: &Delivery, status: u16, now: u64, signs: bool) -> Verdict {
        let poll = d.poll.expect("an HTTP answer answers a poll");
        let meaning = &d.meaning;
        if signs {
            let for_this_request =
                matches!(meaning.seal, Seal::Server(Some(request)) if Some(request) == poll.signature);
            match (for_this_request, status) {
                (true, 200) => {}
                (true, _) => return self.refused(meaning.refusal.filter(|_| status == 409)),
                (false, 200) => return self.dropped(Verdict::Forged),
                (false, _) => return Verdict::Refused,
            }
        } else if status != 200 {
            return Verdict::Refused;
        }
        let Some(answer) = meaning.answer else { return self.dropped(Verdict::Garbage) };
        if poll.epoch != self.epoch || poll.send_dev > now || self.behind(poll.send_true, &answer) {
            return Verdict::Stale;
        }
        self.held = Some(Held { send_true: poll.send_true, send_dev: poll.send_dev, answer });
        self.took(poll.send_true, poll.send_dev, &answer);
        Verdict::Taken
    }

    /// What the board must make of the MQTT command `d` at `now` on its clock (`t` true time);
    /// `signs`: it has a link secret. With one, a command whose MAC is not the server's for
    /// these bytes is forged, and so is an unsigned one, except one naming no report (what a
    /// server that does not yet know the board signs publishes on SUBSCRIBE): not used. A signed
    /// refusal moves the counter up and is a failed report. Then: a command naming a report the
    /// board remembers (on a board that signs, signed with the counter that report was signed
    /// with) is an answer to that report (taken or stale as over HTTP, its lease counted from the
    /// report's send); one naming none it remembers (a command of an earlier boot naming a `ref`
    /// this boot reached again answers none) is taken when it says OFF (counted from the newest
    /// report sent, never before the newest answer taken), not used when it says ON.
    fn judge_command(&mut self, d: &Delivery, t: u64, now: u64, signs: bool) -> Verdict {
        let meaning = &d.meaning;
        if signs {
            match meaning.seal {
                Seal::Broken => return self.dropped(Verdict::Forged),
                Seal::Unsigned if meaning.reference.is_none() && meaning.answer.is_some() => return Verdict::NotUsed,
                Seal::Unsigned => return self.dropped(Verdict::Forged),
                Seal::Server(_) => {}
            }
        }
        if meaning.refusal.is_some() {
            return self.refused(meaning.refusal);
        }
        let Some(answer) = meaning.answer else { return self.dropped(Verdict::Garbage) };
        let epoch = self.epoch;
        let known = meaning.reference.and_then(|r| {
            self.refs
                .iter()
                .find(|sent| sent.reference == r && sent.epoch == epoch && (!signs || sent.counter == meaning.counter))
        });
        let taken = if known.is_some() { Verdict::Taken } else { Verdict::TakenOff };
        let (send_true, send_dev) = match known.map(|sent| (sent.send_true, sent.send_dev)) {
            Some((send_true, send_dev)) => {
                if send_dev > now || self.behind(send_true, &answer) {
                    return Verdict::Stale;
                }
                (send_true, send_dev)
            }
            None if answer.commands_on() => return Verdict::NotUsed,
            None => {
                let newest = self
                    .refs
                    .iter()
                    .filter(|sent| sent.epoch == epoch)
                    .max_by_key(|sent| sent.send_true)
                    .map(|sent| (sent.send_true, sent.send_dev));
                let (mut send_true, mut send_dev) = newest.unwrap_or((t, now));
                // Never from before the newest answer taken, as the controller anchors it.
                if let Some((at, dev, _)) = self.newest
                    && at > send_true
                {
                    (send_true, send_dev) = (at, dev);
                }
                (send_true, send_dev)
            }
        };
        self.held = Some(Held { send_true, send_dev, answer });
        self.took(send_true, send_dev, &answer);
        taken
    }
}

/// What the board must make (the oracle) or made (the controller) of an answer or command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Taken: it is the command now.
    Taken,
    /// Over MQTT: an OFF naming no report the board remembers, taken.
    TakenOff,
    /// Over MQTT: not used (an ON naming no report the board remembers; an unsigned command naming
    /// none, to a board that signs). The command before it stays.
    NotUsed,
    /// An answer to an older poll, a replaced ON, or one from before the clock went back: nothing
    /// changes.
    Stale,
    /// Unreadable: the command is dropped (relay OFF).
    Garbage,
    /// Not signed by the server for this request or topic: the command is dropped (relay OFF).
    Forged,
    /// A failed poll (a status other than 200, a refused counter): the command stays until its
    /// lease runs out.
    Refused,
}

impl Verdict {
    /// The controller's answer to an HTTP answer, as a verdict.
    fn of_answer(result: &Result<PollAnswer, AnswerError>) -> Verdict {
        match result {
            Ok(_) => Verdict::Taken,
            Err(error) => Verdict::of_error(*error),
        }
    }

    /// The controller's answer to a pushed command, as a verdict.
    fn of_command(result: &Result<Pushed, AnswerError>) -> Verdict {
        match result {
            Ok(Pushed::Taken(_)) => Verdict::Taken,
            Ok(Pushed::TakenOff(_)) => Verdict::TakenOff,
            Ok(Pushed::Unreferenced(_)) => Verdict::NotUsed,
            Err(error) => Verdict::of_error(*error),
        }
    }

    fn of_error(error: AnswerError) -> Verdict {
        match error {
            AnswerError::Stale => Verdict::Stale,
            AnswerError::Invalid | AnswerError::TooLong => Verdict::Garbage,
            AnswerError::Forged => Verdict::Forged,
            AnswerError::Refused(_) => Verdict::Refused,
        }
    }

    /// True when the message became the command.
    fn takes(self) -> bool {
        matches!(self, Verdict::Taken | Verdict::TakenOff)
    }
}

/// A message on its way to the board, as it travels.
#[derive(Debug, Clone)]
enum Message {
    /// An HTTP answer to a poll.
    Http(HttpAnswer),
    /// A message on the board's MQTT command topic (signed: the prefix line before the JSON).
    Mqtt(Vec<u8>),
}

/// What a message to the board says and who signed it, as the campaign knows it: the oracle
/// judges every message from this, never from the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Meaning {
    /// The command it carries (`None`: a refusal or an error, or bytes the board cannot read).
    answer: Option<PollAnswer>,
    /// Over MQTT: the report it names.
    reference: Option<u32>,
    /// A `STALE_COUNTER` refusal naming this counter.
    refusal: Option<u64>,
    /// Over MQTT, a command the server signed: the counter its MAC covers (that of the report it
    /// answers).
    counter: Option<u64>,
    seal: Seal,
    origin: Origin,
}

impl Meaning {
    /// The server's command `answer`, naming the report `reference` (over MQTT).
    fn command(answer: PollAnswer, reference: Option<u32>, seal: Seal) -> Meaning {
        Meaning { answer: Some(answer), reference, refusal: None, counter: None, seal, origin: Origin::Network }
    }

    /// The server's refusal of a counter, naming `highest`.
    fn refusal(highest: u64, seal: Seal) -> Meaning {
        Meaning { answer: None, reference: None, refusal: Some(highest), counter: None, seal, origin: Origin::Network }
    }

    /// The server's signed error for a request it could not serve (no counter window could be
    /// reserved: the store fails): a failed poll.
    fn failure(seal: Seal) -> Meaning {
        Meaning { answer: None, reference: None, refusal: None, counter: None, seal, origin: Origin::Network }
    }

    /// An error without a signature from something between the board and the server (a proxy's
    /// 502), or from the server refusing a MAC.
    fn error() -> Meaning {
        Meaning {
            answer: None,
            reference: None,
            refusal: None,
            counter: None,
            seal: Seal::Unsigned,
            origin: Origin::Network,
        }
    }

    /// The attacker's message under a MAC that is not the server's for it.
    fn forged(answer: Option<PollAnswer>, reference: Option<u32>, refusal: Option<u64>) -> Meaning {
        Meaning { answer, reference, refusal, counter: None, seal: Seal::Broken, origin: Origin::Forgery }
    }

    /// The attacker's message without a signature.
    fn injected(answer: Option<PollAnswer>, reference: Option<u32>, refusal: Option<u64>) -> Meaning {
        Meaning { answer, reference, refusal, counter: None, seal: Seal::Unsigned, origin: Origin::Injection }
    }

    /// The same message damaged on its way: unreadable, and no longer the bytes its MAC was
    /// made over.
    fn damaged(self) -> Meaning {
        let seal = if self.seal == Seal::Unsigned { Seal::Unsigned } else { Seal::Broken };
        Meaning { answer: None, reference: None, refusal: None, seal, ..self }
    }
}

/// Who made the MAC over a message's bytes as they arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seal {
    /// Nobody: a message without a signature.
    Unsigned,
    /// The server, over exactly these bytes (over HTTP, as the answer to the request with this
    /// signature).
    Server(Option<Signature>),
    /// Nobody who holds the secret: bytes changed under their MAC, or a MAC made with another key.
    Broken,
}

/// Where a message to the board comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// The server, through the network (and whatever is in between, a proxy's 502 included).
    Network,
    /// The attacker, sending a genuine message it captured again: maybe an ON a newer command had
    /// replaced, maybe one sent to an earlier boot (over MQTT maybe naming a `ref` the board
    /// reported again since), maybe one a server sent before it restarted.
    Replay { replaced_on: bool, across_reboot: bool, across_restart: bool, ref_met_again: bool },
    /// The attacker, with a message under a MAC that is not the server's for it.
    Forgery,
    /// The attacker, with a message without a signature.
    Injection,
}

/// The poll an HTTP answer is handed in for: when it was sent (the controller's [`Sent`], the
/// true and device times and the clock's epoch the oracle counts from) and its signature.
#[derive(Debug, Clone, Copy)]
struct Answering {
    sent: Sent,
    signature: Option<Signature>,
    send_true: u64,
    send_dev: u64,
    epoch: u64,
}

/// One message on its way to the device.
#[derive(Debug, Clone)]
struct Delivery {
    at_true: u64,
    /// Over HTTP: the poll it is handed in as the answer to.
    poll: Option<Answering>,
    message: Message,
    meaning: Meaning,
}

/// Where a poll's request is: on its way to the server, held there, or answered.
#[derive(Debug, Clone, Copy)]
enum Stage {
    /// Arrives at the server at this true time.
    ToServer(u64, Request),
    /// Held by the server (a long-poll).
    Held(HeldPoll),
    /// Answered (the delivery, if any, is in `InFlight::delivery`), lost, or failed.
    Done,
    /// Over MQTT: not answered, as the answer would only repeat the command the server last sent
    /// (`PollAnswer::repeats`).
    Spared,
    /// Over HTTP: its connection was closed (a server that restarted held it) or refused (the
    /// server was down); the board learns it at this true time.
    Cut(u64),
}

/// What a signed poll or report carries besides its report, as the server reads it.
#[derive(Debug, Clone)]
enum Signed {
    /// `POST path` with the counter and MAC headers and the body.
    Poll { path: String, body: Vec<u8>, counter: u64, mac: [u8; 64] },
    /// An MQTT report's payload: the prefix line and the JSON.
    Report(Vec<u8>),
}

/// A poll and what became of it.
#[derive(Debug, Clone)]
struct InFlight {
    give_up_true: u64,
    long: bool,
    sent: Sent,
    /// Over HTTP, with a link secret: the poll's signature.
    signature: Option<Signature>,
    /// With a link secret: what the server checks.
    signed: Option<Signed>,
    /// How the server signs its answer, once it accepted the poll's signature.
    signer: Option<Signer>,
    /// Over MQTT: the report's `ref`, and the connection it went on (a report dies with it).
    reference: Option<u32>,
    connection: u64,
    send_true: u64,
    send_dev: u64,
    epoch: u64,
    stage: Stage,
    /// Its answer, when one is coming.
    delivery: Option<Delivery>,
    /// When the server's (or a proxy's) error reaches the device.
    error_at: Option<u64>,
    /// For a poll the device gave up on: its answer still reaches the device, late.
    deliverable: bool,
}

impl InFlight {
    /// This poll, as an answer to it is handed in.
    fn answering(&self) -> Answering {
        Answering {
            sent: self.sent,
            signature: self.signature,
            send_true: self.send_true,
            send_dev: self.send_dev,
            epoch: self.epoch,
        }
    }
}

/// The server's MQTT session with the board (`crates/server/src/mqtt/session.rs`), one per
/// connection (a reboot connects again).
#[derive(Debug, Clone, Copy, Default)]
struct Session {
    /// The last command published, and whether it named a report (for the rule that an unchanged
    /// OFF is told once).
    published: Option<(PollAnswer, bool)>,
    /// The `ref` and counter of the last report accepted: a command names the one and is signed
    /// with the other.
    reference: Option<u32>,
    counter: u64,
    /// The command's `seq` when the session last looked: a change is pushed.
    seq: Option<u64>,
}

/// Over MQTT, the board's connection to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Connection {
    /// Connected and subscribed.
    Up,
    /// The server closed it (it restarted, or ended the session); the board learns it at this
    /// true time.
    Closing(u64),
    /// Closed: the board connects again at its next report's time (refused while the server is
    /// down), never sooner for a local change.
    Down,
}

/// The device, the world around it and the oracle, for one campaign.
pub struct Campaign {
    pub pump: Pump,
    /// Reports and commands as over MQTT (`Controller::mqtt_report`, `Controller::command`)
    /// instead of polls and answers.
    mqtt: bool,
    /// Over MQTT: the server's session with the board (on this boot's connection).
    session: Session,
    /// Over MQTT: the board's connection, and how many times it connected again after the server
    /// closed one (a report dies with the connection it went on).
    connection: Connection,
    connections: u64,
    /// Every counter a server accepted (to count one accepted twice).
    accepted: HashSet<u64>,
    /// The attacker's replays across a restart wait for the new server (over MQTT for the board's
    /// next connection).
    replays_owed: bool,
    /// The board's link secret, when it signs (given again at every boot).
    secret: Option<LinkSecret>,
    /// Over MQTT: the first `ref` of each boot so far.
    first_refs: Vec<u32>,
    attacker: Attacker,
    rng: Rng,
    faults: Faults,
    settings: Settings,
    device: Controller,
    t: u64,
    /// Device clock = true time + offset (never below 0).
    offset: i64,
    grid_up: bool,
    grid_until: u64,
    ready: bool,
    ready_until: u64,
    bursts: [u32; 3],
    motor_confirms_at: Option<u64>,
    /// The motor did not run the last time the relay closed.
    motor_dead: bool,
    /// NO_FEEDBACK holds the engine made so far.
    no_feedback_holds: u64,
    /// The poll the board waits for (boxed: it is moved out and back at every step).
    in_flight: Option<Box<InFlight>>,
    /// Polls the device gave up on (or duplicated requests), still on their way: their answers
    /// may arrive late.
    orphans: Vec<InFlight>,
    strays: Vec<Delivery>,
    /// The link is silent until this true time.
    silent_until: u64,
    next_poll_true: u64,
    oracle: Oracle,
    pub figures: Figures,
    /// The first few violations, described.
    pub examples: Vec<String>,
    /// Why the relay was OFF in the steps the oracle allowed ON.
    pub slow_reasons: Vec<(OffReason, u64)>,
}

impl Campaign {
    /// A campaign with a device made with `settings` (inputs and feedback as the board has them)
    /// and the server side `pump`.
    pub fn new(seed: u64, settings: Settings, faults: Faults, pump: Pump) -> Campaign {
        Campaign {
            pump,
            mqtt: false,
            session: Session::default(),
            connection: Connection::Up,
            connections: 0,
            accepted: HashSet::new(),
            replays_owed: false,
            secret: None,
            first_refs: Vec::new(),
            attacker: Attacker::new(),
            rng: Rng::new(seed),
            faults,
            settings,
            device: {
                // A board's first poll says why it started, as the firmware's does.
                let mut device = Controller::new(settings);
                device.set_reset_reason(ResetReason::PowerOn);
                device
            },
            t: 0,
            offset: 0,
            grid_up: true,
            grid_until: 0,
            ready: true,
            ready_until: 0,
            bursts: [0; 3],
            motor_confirms_at: None,
            motor_dead: false,
            no_feedback_holds: 0,
            in_flight: None,
            orphans: Vec::new(),
            strays: Vec::new(),
            silent_until: 0,
            next_poll_true: 0,
            oracle: Oracle::default(),
            figures: Figures::default(),
            examples: Vec::new(),
            slow_reasons: Vec::new(),
        }
    }

    /// The same campaign with MQTT's delivery: each report carries a `ref` and its answer is a
    /// pushed command naming it; now and then one comes without a `ref` or with one the device
    /// no longer remembers (a reconnect, a server behind), which may switch the relay OFF, never
    /// ON. The oracle keeps its own account of the refs.
    pub fn over_mqtt(mut self) -> Campaign {
        self.mqtt = true;
        let first = self.rng.next_u64() as u32;
        self.device.set_first_ref(first);
        self.first_refs.push(first);
        self
    }

    /// The same campaign with a link secret on both ends: the board signs every poll or report
    /// and takes only answers and commands whose MAC checks; the server checks and signs as
    /// `crates/server` does (its counters accepted once, a refusal signed). The attacker's faults
    /// ([`Faults::replay`], [`Faults::forgery`], [`Faults::injection`]) then play.
    pub fn with_link_secret(mut self, secret: LinkSecret) -> Campaign {
        self.device.set_link_secret(secret);
        self.pump.link = Some(ServerLink::new(&secret));
        self.secret = Some(secret);
        self.count_from_random();
        self
    }

    /// What a shell does at each boot of a board that signs: its counter starts at a random point
    /// (the oracle's account of the counter with it: the low 48 bits, `docs/DEVICE.md`).
    fn count_from_random(&mut self) {
        let random = self.rng.next_u64();
        self.device.set_first_counter(random);
        self.oracle.counter = random % (1 << 48);
    }

    fn dev(&self) -> u64 {
        (self.t as i64 + self.offset).max(0) as u64
    }

    /// Runs `steps` control-loop ticks.
    pub fn run(&mut self, steps: u64) {
        for _ in 0..steps {
            self.step();
        }
    }

    fn world(&mut self) {
        let rng = &mut self.rng;
        if self.t >= self.grid_until {
            self.grid_up = !self.grid_up;
            self.grid_until = self.t
                + if self.grid_up {
                    rng.between(2_000, 1_800_000)
                } else if rng.chance(400_000) {
                    rng.between(100, 3_000) // a flicker
                } else {
                    rng.between(10_000, 1_200_000)
                };
        }
        if self.t >= self.ready_until {
            self.ready = !self.ready;
            self.ready_until =
                self.t + if self.ready { rng.between(5_000, 3_600_000) } else { rng.between(100, 120_000) };
        }
    }

    /// A raw pin level for input `i` whose true meaning is `level`, with noise.
    fn noisy(&mut self, i: usize, level: bool) -> bool {
        if self.bursts[i] == 0 && self.rng.chance(self.faults.burst_per_sample) {
            self.bursts[i] = self.rng.between(1, 4) as u32;
        }
        let flip = if self.bursts[i] > 0 {
            self.bursts[i] -= 1;
            true
        } else {
            self.rng.chance(self.faults.noise_per_sample)
        };
        if flip {
            self.figures.noisy_samples += 1;
        }
        level != flip
    }

    fn step(&mut self) {
        // Time: a tick of the firmware's loop, ±20% (the loop is late sometimes).
        let tick = u64::from(TICK_MS);
        let dt = self.rng.between(tick * 8 / 10, tick * 12 / 10);
        self.t += dt;
        self.figures.simulated_ms += dt;
        self.figures.steps += 1;
        self.world();
        let serving = self.pump.serving();
        self.pump.step(self.t, self.device.closed());
        if !serving && self.pump.serving() {
            self.server_started();
        }
        if self.mqtt && matches!(self.connection, Connection::Up) {
            self.push_changes();
        }
        if self.rng.chance(self.faults.restart) && self.pump.serving() {
            self.restart();
        }
        if self.rng.chance(self.faults.silence) {
            self.figures.silences += 1;
            self.silent_until = self.t + self.rng.between(20_000, 600_000);
        }
        if self.rng.chance(self.faults.reboot) {
            self.reboot();
        }
        if self.rng.chance(self.faults.clock_jump) {
            self.jump();
        }
        let now = self.dev();

        // Sense, with noise; the oracle sees the same samples.
        let s = self.settings;
        let grid_level = self.noisy(0, pin_level(!self.grid_up, s.load_shedding_active_high));
        let ready_level = self.noisy(1, pin_level(self.ready, s.ready_active_high));
        self.device.sense(Millis(now), grid_level, ready_level);
        self.oracle_clock(now);
        let debounce = u64::from(s.debounce_ms);
        self.oracle.grid.sample(now, grid_level, debounce);
        self.oracle.ready.sample(now, ready_level, debounce);
        if let Some(input) = s.feedback {
            let running = self.motor_confirms_at.is_some_and(|at| self.t >= at);
            let level = self.noisy(2, pin_level(running, input.active_high));
            self.device.sense_feedback(Millis(now), level);
            self.oracle.feedback.sample(now, level, debounce);
            if self.oracle.feedback.settled.map(|f| f.0) == Some(input.active_high) {
                self.oracle.feedback_seen = Some(now);
            }
        }

        // Answers arriving now.
        self.deliver(now);

        // The relay, and the rule.
        let allowed = self.allowed(now);
        let decision = self.device.drive(Millis(now));
        let on = decision.is_on();
        if let (Decision::Off(reason), true) = (decision, allowed) {
            match self.slow_reasons.iter_mut().find(|(r, _)| *r == reason) {
                Some((_, n)) => *n += 1,
                None => self.slow_reasons.push((reason, 1)),
            }
        }
        self.after_drive(now, on, allowed);

        // Polls.
        self.poll(now);

        // A NO_FEEDBACK hold the engine made on its own is right only when the motor did not run
        // when the relay closed (one the board asked for follows the board's own check).
        let holds = self.pump.figures.no_feedback_inferred;
        if holds > self.no_feedback_holds && !self.motor_dead {
            self.figures.false_no_feedback += holds - self.no_feedback_holds;
            if self.examples.len() < 5 {
                self.examples.push(format!("t={} NO_FEEDBACK hold of a motor that ran", self.t));
            }
        }
        self.no_feedback_holds = holds;
    }

    fn reboot(&mut self) {
        self.figures.reboots += 1;
        self.device = Controller::new(self.settings);
        if let Some(secret) = self.secret {
            self.device.set_link_secret(secret);
        }
        let epoch = self.oracle.epoch + 1;
        self.oracle = Oracle { epoch, ..Oracle::default() };
        if self.secret.is_some() {
            self.count_from_random();
        }
        if self.mqtt {
            // A random start, or now and then one an earlier boot drew (`Faults::ref_met_again`).
            let first = if self.rng.chance(self.faults.ref_met_again) {
                self.first_refs[self.rng.below(self.first_refs.len() as u64) as usize]
            } else {
                self.rng.next_u64() as u32
            };
            self.device.set_first_ref(first);
            self.first_refs.push(first);
        }
        // A new connection: the server has told it nothing yet (none while the server is down:
        // the board connects at its first report). What the attacker captures now belongs to the
        // new boot.
        self.session = Session::default();
        self.connection = if self.pump.serving() { Connection::Up } else { Connection::Down };
        self.attacker.reboot();
        let reason = [ResetReason::PowerOn, ResetReason::BrownOut, ResetReason::Watchdog, ResetReason::Panic]
            [self.rng.below(4) as usize];
        self.device.set_reset_reason(reason);
        self.offset = -(self.t as i64);
        // What is on its way still arrives; the answers find a board that did not send it.
        if let Some(flight) = self.in_flight.take() {
            self.orphans.push(*flight);
        }
        for orphan in &mut self.orphans {
            orphan.deliverable = false;
        }
        self.strays.clear();
        self.motor_confirms_at = None;
        self.next_poll_true = self.t;
    }

    /// The server process restarts ([`Faults::restart`]): the pump's side forgets what the server
    /// kept only in memory ([`Pump::restart`]); a held long-poll's connection closes, and over
    /// MQTT the session ends with the process (a report still on its way in the connection is
    /// lost); what the server had sent already still arrives. What the attacker captures from
    /// now on belongs to the server's next life.
    fn restart(&mut self) {
        self.figures.restarts += 1;
        let down_for = self.rng.between(1_000, 30_000);
        self.pump.restart(down_for);
        self.attacker.restart();
        if self.secret.is_some() && self.rng.chance(self.faults.replay_across_restart) {
            self.attacker.insist_across_restart(2);
            self.replays_owed = true;
        }
        let closed = self.t + self.rng.between(2, 400);
        if let Some(flight) = self.in_flight.as_mut()
            && matches!(flight.stage, Stage::Held(_))
        {
            flight.stage = Stage::Cut(closed);
            self.figures.connections_closed += 1;
        }
        for orphan in &mut self.orphans {
            if matches!(orphan.stage, Stage::Held(_)) {
                orphan.stage = Stage::Done;
            }
        }
        if self.mqtt {
            self.end_session(closed);
        }
    }

    /// Over MQTT the server ends the board's session (it stopped, or could not check a report's
    /// counter); the board learns it when the connection closes, at `closed`.
    fn end_session(&mut self, closed: u64) {
        self.session = Session::default();
        if self.connection == Connection::Up {
            self.connection = Connection::Closing(closed);
            self.figures.connections_closed += 1;
        }
    }

    /// The board's shell sees its MQTT session end: a failed report (the lease runs on), and
    /// whatever was still coming on the connection is gone; it connects again after the backoff.
    fn connection_closed(&mut self, now: u64) {
        self.connection = Connection::Down;
        self.device.poll_failed(Millis(now));
        self.in_flight = None;
        self.strays.clear();
        for orphan in &mut self.orphans {
            orphan.deliverable = false;
        }
        self.next_poll_true = self.t + u64::from(self.device.next_poll_in(self.rng.next_u64() as u32));
    }

    /// Over MQTT the board connects (its report is due): refused while the server is down (a
    /// failed report, the next attempt after the backoff); else a new session, and the server
    /// publishes the current command at SUBSCRIBE, naming no report. True when connected.
    fn connect(&mut self, now: u64) -> bool {
        if !self.pump.serving() {
            self.figures.refused_while_down += 1;
            self.device.poll_failed(Millis(now));
            self.next_poll_true = self.t + u64::from(self.device.next_poll_in(self.rng.next_u64() as u32));
            return false;
        }
        self.connection = Connection::Up;
        self.connections += 1;
        self.session = Session::default();
        self.push_changes();
        if std::mem::take(&mut self.replays_owed) {
            self.replay_across_restart();
        }
        true
    }

    /// The restarted server serves again. Over HTTP the attacker's replays across the restart go
    /// now, before the board's next poll reaches it (over MQTT with the board's next connection:
    /// it injects them into that).
    fn server_started(&mut self) {
        if !self.mqtt && std::mem::take(&mut self.replays_owed) {
            self.replay_across_restart();
        }
    }

    /// The attacker's replays across a restart: the signed requests it captured before it (the
    /// newest the server accepted, one at random), sent to the new server, which must refuse them;
    /// over MQTT also the newest ON captured before, beside the command at SUBSCRIBE (over HTTP it
    /// goes in place of the next answers: [`Campaign::intercept`]).
    fn replay_across_restart(&mut self) {
        for flight in self.attacker.requests_to_replay(&mut self.rng) {
            self.replay_request(flight);
        }
        if self.mqtt {
            self.send_across_restart();
        }
    }

    /// Over MQTT the attacker publishes the newest ON it captured before the restart on the board's
    /// command topic.
    fn send_across_restart(&mut self) {
        if let Some((message, meaning)) = self.attacker.replay_across_restart() {
            let at_true = self.t + self.rng.between(1, 500);
            self.strays.push(Delivery { at_true, poll: None, message, meaning });
        }
    }

    /// A signed poll or report the attacker captured reaches the server again, byte for byte. Over
    /// HTTP the answer goes back to the attacker; over MQTT the server publishes it on the board's
    /// command topic (the attacker injected the report into the board's connection).
    fn replay_request(&mut self, mut flight: InFlight) {
        let Stage::ToServer(_, request) = flight.stage else { return };
        self.figures.requests_replayed += 1;
        if self.arrive(&mut flight, request) {
            self.figures.requests_replayed_taken += 1;
        }
        if let (true, Some(delivery)) = (self.mqtt, flight.delivery) {
            self.strays.push(delivery);
        }
    }

    fn jump(&mut self) {
        self.figures.clock_jumps += 1;
        // Half of them small (within one request's time), half up to ten minutes.
        let by =
            if self.rng.chance(500_000) { self.rng.between(1, 5_000) } else { self.rng.between(1, 600_000) } as i64;
        self.offset += if self.rng.chance(500_000) { by } else { -by };
    }

    /// The oracle notices a clock that went back as the controller must: everything timed on the
    /// device's clock starts over.
    fn oracle_clock(&mut self, now: u64) {
        let o = &mut self.oracle;
        if now < o.latest_dev {
            o.epoch += 1;
            o.held = None;
            o.newest = None;
            o.grid = Sampled::default();
            o.ready = Sampled::default();
            o.feedback = Sampled::default();
            o.feedback_seen = None;
            o.switched_dev = now;
            for start in &mut o.starts {
                *start = now;
            }
        }
        o.latest_dev = now;
    }

    /// The rule, from the oracle's account: may the relay be ON at `now`?
    fn allowed(&self, now: u64) -> bool {
        let o = &self.oracle;
        let s = &self.settings;
        let Some(held) = o.held else { return false };
        let a = held.answer;
        if !(a.motor == Motor::On && a.state == MotorState::Running) {
            return false;
        }
        let lease = u64::from(a.lease_ms.min(s.max_lease_ms));
        if self.t - held.send_true >= lease || now < held.send_dev {
            return false;
        }
        let grid_up = !s.load_shedding_active_high;
        let Some((grid, since)) = o.grid.settled else { return false };
        if grid != grid_up {
            return false;
        }
        if o.ready.settled.map(|r| r.0) != Some(s.ready_active_high) {
            return false;
        }
        // (The controller also keeps the relay OFF after a trip until the server sends another
        // command; the oracle holds it only to the part that matters for the motor.)
        if self.feedback_overdue(now) {
            return false;
        }
        if !o.closed {
            if now - since < u64::from(a.grid_settle_ms) || now - o.switched_dev < u64::from(a.min_off_ms) {
                return false;
            }
            let cap = usize::from(a.max_starts_per_hour);
            if cap > 0 && o.starts.iter().filter(|&&at| now - at < HOUR_MS).count() >= cap {
                return false;
            }
        }
        true
    }

    fn feedback_overdue(&self, now: u64) -> bool {
        let o = &self.oracle;
        let Some(FeedbackInput { active_high, confirm_ms }) = self.settings.feedback else { return false };
        if !o.closed || o.feedback.settled.map(|f| f.0) == Some(active_high) {
            return false;
        }
        let since = o.feedback_seen.filter(|&seen| seen > o.switched_dev).unwrap_or(o.switched_dev);
        now - since >= u64::from(confirm_ms)
    }

    fn after_drive(&mut self, now: u64, on: bool, allowed: bool) {
        if on && !allowed {
            self.figures.violations += 1;
            if self.examples.len() < 5 {
                self.examples.push(format!(
                    "t={} dev={} decision ON; oracle: held {:?} grid {:?} ready {:?} closed {} switched {} starts {:?}",
                    self.t,
                    now,
                    self.oracle.held,
                    self.oracle.grid.settled,
                    self.oracle.ready.settled,
                    self.oracle.closed,
                    self.oracle.switched_dev,
                    self.oracle.starts
                ));
            }
        }
        if !on && allowed {
            self.figures.off_though_allowed += 1;
        }
        if on {
            self.figures.relay_on_steps += 1;
            if !self.grid_up {
                self.figures.on_while_grid_truly_down += 1;
            }
        }
        let o = &mut self.oracle;
        if !on && o.closed && self.settings.feedback.is_some() {
            // The controller trips exactly when the motor did not confirm in time.
            let overdue = {
                let Some(FeedbackInput { active_high, confirm_ms }) = self.settings.feedback else { unreachable!() };
                o.feedback.settled.map(|f| f.0) != Some(active_high) && {
                    let since = o.feedback_seen.filter(|&seen| seen > o.switched_dev).unwrap_or(o.switched_dev);
                    now - since >= u64::from(confirm_ms)
                }
            };
            if overdue {
                self.figures.feedback_trips += 1;
            }
        }
        if on != o.closed {
            o.closed = on;
            o.switched_dev = now;
            if on {
                o.starts.push(now);
                o.starts.retain(|&at| now - at < HOUR_MS);
                o.feedback_seen = None;
                self.figures.starts += 1;
                self.motor_confirms_at =
                    (!self.rng.chance(self.faults.dead_motor)).then(|| self.t + self.rng.between(50, 3_000));
                self.motor_dead = self.motor_confirms_at.is_none();
            } else {
                self.motor_confirms_at = None;
            }
        }
    }

    /// The server's side of a poll at this step: a request that arrives is checked (with a link
    /// secret) and applied, a held long-poll may be released, and an answer goes on its way back.
    /// While the server is down a request that arrives is refused; over MQTT a report is lost
    /// with a connection that closed on its way.
    fn serve(&mut self, flight: &mut InFlight) {
        match flight.stage {
            Stage::ToServer(..)
                if self.mqtt && (self.connection != Connection::Up || flight.connection != self.connections) =>
            {
                // Its connection was closed on the way.
                flight.stage = Stage::Done;
            }
            Stage::ToServer(at, _) if at <= self.t && !self.pump.serving() => {
                self.figures.refused_while_down += 1;
                flight.stage = Stage::Cut(self.t + self.rng.between(2, 400));
            }
            Stage::ToServer(at, request) if at <= self.t => {
                if self.rng.chance(self.faults.duplicate_request) {
                    self.figures.duplicated_requests += 1;
                    let again = self.t + self.rng.between(1_000, 5_000);
                    let deliverable = self.rng.chance(self.faults.late_delivery);
                    self.orphans.push(InFlight {
                        stage: Stage::ToServer(again, request),
                        delivery: None,
                        error_at: None,
                        deliverable,
                        ..flight.clone()
                    });
                }
                self.arrive(flight, request);
            }
            Stage::Held(held) => {
                if let Some(answer) = self.pump.release(&held) {
                    let (message, meaning) = self.outgoing(flight, answer);
                    self.answer_back(flight, message, meaning);
                }
            }
            _ => {}
        }
    }

    /// The server takes a poll or report that arrived: it checks it ([`Campaign::admitted`]), the
    /// engine applies it, and the answer goes on its way back (or is held, or spared). True when
    /// it went on to the engine.
    fn arrive(&mut self, flight: &mut InFlight, request: Request) -> bool {
        if !self.admitted(flight) {
            return false;
        }
        if self.mqtt {
            self.session.reference = flight.reference;
        }
        match self.pump.poll(&request) {
            // The server's rule over MQTT: an answer that only repeats what it last sent
            // (a command naming a report) is not sent.
            Reply::Now(answer)
                if self.mqtt
                    && self
                        .session
                        .published
                        .is_some_and(|(told, named)| named && answer.repeats(&told, request.report.relay)) =>
            {
                self.figures.answers_spared += 1;
                flight.stage = Stage::Spared;
            }
            Reply::Now(answer) => {
                let (message, meaning) = self.outgoing(flight, answer);
                self.answer_back(flight, message, meaning);
            }
            Reply::Held(held) => flight.stage = Stage::Held(held),
        }
        true
    }

    /// The server checks a signed poll or report before anything else, as its extractor
    /// (`link.rs`) and its MQTT session do: true when it goes on to the engine (its MAC checks
    /// and its counter is new, or the board does not sign). Else it is refused, and the refusal
    /// goes back (a `401` without a signature for a MAC that does not check, a signed `409` or
    /// refusal for a counter seen already, a signed `503` when no counter window could be
    /// reserved), or an MQTT report whose MAC does not check closes the connection, unanswered,
    /// and one whose window could not be reserved ends the session. An accepted counter is
    /// counted (none twice), and the attacker captures the request.
    fn admitted(&mut self, flight: &mut InFlight) -> bool {
        let store_up = self.pump.store_up();
        let (Some(server), Some(signed)) = (self.pump.link.as_mut(), &flight.signed) else { return true };
        let refusal = match signed {
            Signed::Poll { path, body, counter, mac } => match server.check_poll(path, *counter, mac, body, store_up) {
                Ok(signer) => {
                    flight.signer = Some(signer);
                    self.accepted(*counter, flight);
                    return true;
                }
                Err(refusal) => {
                    let meaning = match (refusal.status, refusal.counter) {
                        (409, Some(highest)) => {
                            self.figures.counters_refused += 1;
                            Meaning::refusal(highest, Seal::Server(flight.signature))
                        }
                        (503, _) => {
                            self.figures.windows_not_reserved += 1;
                            Meaning::failure(Seal::Server(flight.signature))
                        }
                        _ => {
                            self.figures.bad_signatures += 1;
                            Meaning::error()
                        }
                    };
                    Some((Message::Http(refusal), meaning))
                }
            },
            Signed::Report(payload) => match server.check_report(REPORT_TOPIC, payload, store_up) {
                Report::Accepted(counter) => {
                    self.session.counter = counter;
                    self.accepted(counter, flight);
                    return true;
                }
                Report::Refused { counter, highest } => {
                    self.figures.counters_refused += 1;
                    // The board counts the refusal as a failed report: the next one is answered.
                    self.session.published = None;
                    let refusal = server.refusal(COMMAND_TOPIC, counter, highest);
                    Some((Message::Mqtt(refusal), Meaning::refusal(highest, Seal::Server(None))))
                }
                Report::Closed => {
                    self.figures.bad_signatures += 1;
                    None
                }
                Report::StoreDown => {
                    self.figures.windows_not_reserved += 1;
                    let closed = self.t + self.rng.between(2, 400);
                    self.end_session(closed);
                    None
                }
            },
        };
        flight.stage = Stage::Done;
        if let Some((message, meaning)) = refusal {
            self.answer_back(flight, message, meaning);
        }
        false
    }

    /// A server accepted `counter`, signed for `flight`: counted against every counter any server
    /// accepted before, and captured by the attacker (it saw the request go by, and the answer
    /// that says it was taken).
    fn accepted(&mut self, counter: u64, flight: &InFlight) {
        if !self.accepted.insert(counter) {
            self.figures.counters_accepted_twice += 1;
            if self.examples.len() < 5 {
                self.examples.push(format!("t={} counter {counter} accepted a second time", self.t));
            }
        }
        self.attacker.capture_request(flight);
    }

    /// The server's answer `answer` to `flight`, as it leaves: over HTTP the 200 (signed for the
    /// poll when it was signed); over MQTT the command naming the report, now and then none or
    /// one the board no longer remembers (a server behind, a broker's retained command), signed
    /// once the board signs.
    fn outgoing(&mut self, flight: &InFlight, answer: PollAnswer) -> (Message, Meaning) {
        if !self.mqtt {
            let seal = flight.signer.map_or(Seal::Unsigned, |_| Seal::Server(flight.signature));
            let message = match &self.pump.link {
                Some(server) => server.answer(flight.signer.as_ref(), &answer),
                None => HttpAnswer::unsigned(200, command_json(&answer, None)),
            };
            return (Message::Http(message), Meaning::command(answer, None, seal));
        }
        let reference = match self.rng.below(100) {
            0..=2 => None,
            3 => flight.reference.map(|r| r.wrapping_sub(REMEMBERED_REFS as u32 + 1)),
            _ => flight.reference,
        };
        self.command_out(answer, reference)
    }

    /// A command published to the board over MQTT, naming the report `reference`; the session
    /// remembers it.
    fn command_out(&mut self, answer: PollAnswer, reference: Option<u32>) -> (Message, Meaning) {
        self.session.published = Some((answer, reference.is_some()));
        let json = command_json(&answer, reference);
        match &self.pump.link {
            Some(server) if server.signing() => {
                let payload = server.command(COMMAND_TOPIC, self.session.counter, json);
                let meaning = Meaning::command(answer, reference, Seal::Server(None));
                (Message::Mqtt(payload), Meaning { counter: Some(self.session.counter), ..meaning })
            }
            _ => (Message::Mqtt(json), Meaning::command(answer, reference, Seal::Unsigned)),
        }
    }

    /// Over MQTT the server pushes the board's command when it changes (a new `seq`), and on a
    /// new connection (at SUBSCRIBE), naming the last report it accepted on the connection.
    fn push_changes(&mut self) {
        let seq = self.pump.tenant.seq;
        if self.session.seq == Some(seq) {
            return;
        }
        self.session.seq = Some(seq);
        if self.session.published.is_some_and(|(told, _)| told.seq == seq) {
            return;
        }
        self.figures.pushed += 1;
        let answer = self.pump.command();
        let (message, meaning) = self.command_out(answer, self.session.reference);
        if let Some((at_true, message, meaning)) = self.on_the_wire(message, meaning) {
            self.strays.push(Delivery { at_true, poll: None, message, meaning });
        }
    }

    /// The server's answer to `flight` leaves now. Over HTTP the attacker may answer in its place
    /// (what the server sent then never arrives); else it crosses the network.
    fn answer_back(&mut self, flight: &mut InFlight, message: Message, meaning: Meaning) {
        flight.stage = Stage::Done;
        let poll = Some(flight.answering());
        if let Some((message, meaning)) = self.intercept(flight, &message, &meaning) {
            let at_true = self.t + self.rng.between(2, 400);
            flight.delivery = Some(Delivery { at_true, poll, message, meaning });
        } else if let Some((at_true, message, meaning)) = self.on_the_wire(message, meaning) {
            flight.delivery = Some(Delivery { at_true, poll, message, meaning });
        }
    }

    /// A message from the server crosses the network: it may stall, arrive damaged, or be lost
    /// (`None`). When it arrives, and what it is then.
    fn on_the_wire(&mut self, mut message: Message, mut meaning: Meaning) -> Option<(u64, Message, Meaning)> {
        let rng = &mut self.rng;
        let mut at_true = self.t + rng.between(2, 400);
        if rng.chance(self.faults.stall) {
            self.figures.stalls += 1;
            at_true += rng.between(1_000, 30_000);
        }
        if rng.chance(self.faults.garbage) {
            let bytes = match &mut message {
                Message::Http(answer) => &mut answer.body,
                Message::Mqtt(payload) => payload,
            };
            let cut = rng.below(bytes.len() as u64) as usize;
            bytes.truncate(cut);
            meaning = meaning.damaged();
        }
        if rng.chance(self.faults.lost_answer) {
            self.figures.lost += 1;
            return None;
        }
        Some((at_true, message, meaning))
    }

    /// Over HTTP, on a board that signs, the attacker may answer a poll in the server's place,
    /// instead of the server's `message` (a 200 meaning `meaning`): a replay (after a server
    /// restart, the newest ON it captured before), a forgery or an unsigned answer.
    fn intercept(&mut self, flight: &InFlight, message: &Message, meaning: &Meaning) -> Option<(Message, Meaning)> {
        let (Message::Http(genuine), Some(answer), true) = (message, meaning.answer, self.device.signs()) else {
            return None;
        };
        if self.attacker.after_restart() {
            return self.attacker.replay_across_restart();
        }
        let (rng, faults, attacker) = (&mut self.rng, &self.faults, &self.attacker);
        if rng.chance(faults.replay) {
            attacker.replay(rng, flight.signature)
        } else if rng.chance(faults.forgery) {
            Some(attacker.forge_answer(rng, genuine, &answer, flight.signature))
        } else if rng.chance(faults.injection) {
            let counter = flight.signature.map_or(1, |s| s.counter());
            Some(attacker.inject_answer(rng, &answer, counter))
        } else {
            None
        }
    }

    /// Over MQTT, on a board that signs, the attacker publishes on its command topic when it
    /// likes: after the board reported (`newest`: that report's `ref`), the ON a Stop replaced
    /// while it insists on it, the newest ON of before a server restart after one, a command of
    /// an earlier boot naming a `ref` the board reported again (its refs met that boot's), else
    /// now and then a message of its own, beside the server's.
    fn attack_over_mqtt(&mut self, newest: u32) {
        if self.attacker.insisting() {
            return self.replay_the_replaced_on();
        }
        if self.attacker.after_restart() {
            return self.send_across_restart();
        }
        let (rng, faults, attacker) = (&mut self.rng, &self.faults, &self.attacker);
        let met_again = attacker.earlier_boot_naming(rng, newest);
        let made = if met_again.is_some() && rng.chance(faults.replay_of_a_ref_met_again) {
            met_again
        } else if rng.chance(faults.replay) {
            attacker.replay(rng, None)
        } else if rng.chance(faults.forgery) {
            attacker.forge_command(rng, COMMAND_TOPIC, newest)
        } else if rng.chance(faults.injection) {
            Some(attacker.inject_command(rng, newest))
        } else {
            None
        };
        if let Some((message, meaning)) = made {
            let at_true = self.t + self.rng.between(1, 2_000);
            self.strays.push(Delivery { at_true, poll: None, message, meaning });
        }
    }

    /// A poll the device no longer waits for: it still reaches the server, and its answer may
    /// still reach the device, late.
    fn orphan(&mut self, mut flight: InFlight) {
        flight.deliverable = self.rng.chance(self.faults.late_delivery);
        self.orphans.push(flight);
    }

    fn deliver(&mut self, now: u64) {
        if let Connection::Closing(at) = self.connection
            && at <= self.t
        {
            self.connection_closed(now);
        }
        // Polls nobody waits for, at the server and on their way back.
        let mut orphans = std::mem::take(&mut self.orphans);
        let mut i = 0;
        while i < orphans.len() {
            self.serve(&mut orphans[i]);
            let orphan = &orphans[i];
            let arrived = orphan.delivery.as_ref().is_some_and(|d| d.at_true <= self.t);
            if arrived
                || matches!(orphan.stage, Stage::Done | Stage::Spared | Stage::Cut(_)) && orphan.delivery.is_none()
            {
                let orphan = orphans.swap_remove(i);
                if let Some(delivery) = orphan.delivery.filter(|_| arrived && orphan.deliverable) {
                    self.figures.late_deliveries += 1;
                    self.strays.push(delivery);
                }
            } else {
                i += 1;
            }
        }
        orphans.append(&mut self.orphans);
        self.orphans = orphans;
        // Late and duplicated answers first, in the order they arrive.
        let mut i = 0;
        while i < self.strays.len() {
            if self.strays[i].at_true <= self.t {
                let delivery = self.strays.swap_remove(i);
                self.hand_over(now, delivery);
            } else {
                i += 1;
            }
        }
        let Some(mut flight) = self.in_flight.take() else { return };
        self.serve(&mut flight);
        if matches!(flight.stage, Stage::Spared) {
            return;
        }
        if let Stage::Cut(at) = flight.stage
            && at <= self.t
        {
            // A failed poll, as the firmware counts one that got no answer: the next goes after the
            // backoff, counted from this one's start.
            self.device.poll_failed(Millis(now));
            self.next_poll_true = flight.send_true + u64::from(self.device.next_poll_in(self.rng.next_u64() as u32));
            return;
        }
        if let Some(at) = flight.error_at
            && at <= self.t
        {
            // A proxy's (or a server in trouble's) 502: no signature.
            let bad_gateway = Message::Http(HttpAnswer::unsigned(502, b"Bad Gateway".to_vec()));
            let poll = Some(flight.answering());
            self.hand_over(now, Delivery { at_true: at, poll, message: bad_gateway, meaning: Meaning::error() });
            return;
        }
        let arrives = flight.delivery.as_ref().map(|d| d.at_true);
        if arrives.is_some_and(|at| at <= self.t && at <= flight.give_up_true) {
            let delivery = flight.delivery.expect("checked");
            if self.rng.chance(self.faults.duplicate) {
                self.figures.duplicates += 1;
                let mut again = delivery.clone();
                again.at_true = self.t + self.rng.between(1, 5_000);
                self.strays.push(again);
            }
            self.hand_over(now, delivery);
        } else if self.t >= flight.give_up_true {
            self.figures.timeouts += 1;
            // Over MQTT a report is not a request: an answer not yet come is no failure, the next
            // report goes on schedule.
            if !self.mqtt {
                self.device.poll_failed(Millis(now));
            }
            if !matches!(flight.stage, Stage::Held(_)) {
                self.orphan(*flight);
            }
        } else {
            self.in_flight = Some(flight);
        }
    }

    /// One message reaches the controller, as a shell hands it in (an HTTP answer with its status
    /// and link headers to [`Controller::reply`], an MQTT message to [`Controller::command`]);
    /// the oracle decides on its own what must happen, and the attacker keeps what the server
    /// signed.
    fn hand_over(&mut self, now: u64, d: Delivery) {
        let signs = self.device.signs();
        let example = |result: &dyn core::fmt::Debug, expected: Verdict| {
            format!("{:?} at dev {now}: controller {result:?}, oracle {expected:?}", d.meaning)
        };
        match &d.message {
            Message::Http(answer) => {
                let poll = d.poll.expect("an HTTP answer answers a poll");
                let mut digits = [0u8; 20];
                let counter = answer.counter.map(|counter| protocol_link::decimal(counter, &mut digits));
                let mac = answer.mac.as_ref().map(|mac| &mac[..]);
                let reply = HttpReply { status: answer.status, counter, mac, body: &answer.body };
                let result = self.device.reply(poll.sent, Millis(now), reply);
                let expected = self.oracle.judge_answer(&d, answer.status, now, signs);
                self.count(&d.meaning, Verdict::of_answer(&result), expected, || example(&result, expected));
            }
            Message::Mqtt(payload) => {
                let result = self.device.command(Millis(now), COMMAND_TOPIC, payload);
                let expected = self.oracle.judge_command(&d, self.t, now, signs);
                self.count(&d.meaning, Verdict::of_command(&result), expected, || example(&result, expected));
            }
        }
        if signs && d.meaning.origin == Origin::Network && matches!(d.meaning.seal, Seal::Server(_)) {
            let replaced_an_on = self.attacker.capture(&d.message, &d.meaning);
            if self.mqtt && replaced_an_on && self.rng.chance(self.faults.replay_after_stop) {
                self.attacker.insist(REMEMBERED_REFS as u32);
                self.replay_the_replaced_on();
            }
        }
    }

    /// Over MQTT the attacker sends the ON that a command for the same report replaced again,
    /// at once.
    fn replay_the_replaced_on(&mut self) {
        if let Some((message, meaning)) = self.attacker.replaced_on_again() {
            let at_true = self.t + self.rng.between(1, 500);
            self.strays.push(Delivery { at_true, poll: None, message, meaning });
        }
    }

    /// Counts what became of a message (`got`: the controller's verdict, `expected`: the
    /// oracle's), and a disagreement as a mismatch.
    fn count(&mut self, meaning: &Meaning, got: Verdict, expected: Verdict, example: impl FnOnce() -> String) {
        let f = &mut self.figures;
        match meaning.origin {
            Origin::Network => {}
            Origin::Replay { replaced_on, across_reboot, across_restart, ref_met_again } => {
                f.replays += 1;
                f.replays_of_a_replaced_on += u64::from(replaced_on);
                f.replays_across_reboots += u64::from(across_reboot);
                f.replays_of_a_ref_met_again += u64::from(ref_met_again);
                f.replays_across_reboots_taken += u64::from(across_reboot && got == Verdict::Taken);
                f.replays_taken += u64::from(got.takes());
                f.replays_across_restarts += u64::from(across_restart);
                f.replays_across_restarts_taken += u64::from(across_restart && got.takes());
            }
            Origin::Forgery => {
                f.forgeries += 1;
                f.forgeries_taken += u64::from(got.takes());
            }
            Origin::Injection => {
                f.injections += 1;
                f.forgeries_taken += u64::from(got.takes());
            }
        }
        if got != expected {
            return self.mismatch(example);
        }
        if meaning.origin != Origin::Network {
            return;
        }
        match got {
            Verdict::Taken => f.answers_used += 1,
            Verdict::TakenOff => f.unreferenced_off += 1,
            Verdict::NotUsed => f.unreferenced_on += 1,
            Verdict::Stale => f.answers_stale += 1,
            Verdict::Garbage | Verdict::Forged => f.answers_garbage += 1,
            Verdict::Refused if meaning.refusal.is_none() => f.server_errors += 1,
            Verdict::Refused => {}
        }
    }

    /// An answer the controller and the oracle disagree on: counted, and the first few kept as
    /// examples.
    fn mismatch(&mut self, example: impl FnOnce() -> String) {
        self.figures.acceptance_mismatches += 1;
        if self.examples.len() < 5 {
            self.examples.push(example());
        }
    }

    /// The board signed a message with `counter`: the oracle checks it is the rule's.
    fn check_counter(&mut self, counter: u64) {
        self.figures.signed += 1;
        if let Some(expected) = self.oracle.signed(counter) {
            self.mismatch(|| format!("signed with counter {counter}; the rule gives {expected}"));
        }
    }

    fn poll(&mut self, now: u64) {
        // A held long-poll is cut short by a local change, as the shells do (the server drops a
        // held request whose connection closed; one still on its way arrives anyway).
        if self.in_flight.as_ref().is_some_and(|f| f.long) && self.device.report_now(Millis(now)) {
            if let Some(flight) = self.in_flight.take()
                && !matches!(flight.stage, Stage::Held(_))
            {
                self.orphan(*flight);
            }
            self.next_poll_true = self.t;
        }
        if self.in_flight.is_some() || !self.device.settled(Millis(now)) {
            return;
        }
        // Over MQTT without a connection the shell connects at its next report's time (a local
        // change does not hurry it), and reports at once once connected.
        if self.mqtt
            && self.connection != Connection::Up
            && (self.connection != Connection::Down || self.t < self.next_poll_true || !self.connect(now))
        {
            return;
        }
        if !(self.device.report_now(Millis(now)) || self.t >= self.next_poll_true) {
            return;
        }
        // Whether the device holds a fresh ON command as it sends this report (the meter of the
        // meter needs it: a device told ON that reports its relay OFF has said the motor stopped).
        let decision = self.device.decision(Millis(now));
        let off_reason = match decision {
            Decision::On => None,
            Decision::Off(reason) => Some(reason),
        };
        let commanded = match decision {
            Decision::On => true,
            Decision::Off(reason) => !matches!(
                reason,
                OffReason::NoCommand | OffReason::CommandOff | OffReason::LeaseExpired | OffReason::ClockWentBack
            ),
        };
        let (poll, reference, signature, signed) = if self.mqtt {
            // A report, numbered; its answer may come any time (no request waits for it).
            let report = self.device.mqtt_report(Millis(now));
            let sent = self.device.sent(Millis(now));
            let o = &mut self.oracle;
            o.refs.push(SentReport {
                reference: report.reference,
                send_true: self.t,
                send_dev: now,
                epoch: o.epoch,
                counter: None,
            });
            if o.refs.len() > REMEMBERED_REFS {
                o.refs.remove(0);
            }
            let signed = self.signed_report(&report);
            let poll = pumppilot_controller::Poll { report: report.report, long_poll: None, timeout_ms: 0, sent };
            (poll, Some(report.reference), None, signed)
        } else {
            let mut poll = self.device.poll(Millis(now));
            let (signature, signed) = self.signed_poll(&mut poll);
            (poll, None, signature, signed)
        };
        self.figures.polls += 1;
        let delay = self.device.next_poll_in(self.rng.next_u64() as u32);
        self.next_poll_true = self.t + u64::from(delay);
        let timeout_ms = if self.mqtt { u64::from(delay) } else { u64::from(poll.timeout_ms) };
        let mut flight = InFlight {
            give_up_true: self.t + timeout_ms,
            long: poll.long_poll.is_some(),
            sent: poll.sent,
            signature,
            signed,
            signer: None,
            reference,
            connection: self.connections,
            send_true: self.t,
            send_dev: now,
            epoch: self.oracle.epoch,
            stage: Stage::Done,
            delivery: None,
            error_at: None,
            deliverable: false,
        };
        let rng = &mut self.rng;
        let up = rng.between(2, 400);
        if self.t < self.silent_until || rng.chance(self.faults.lost_request) {
            self.figures.lost += 1;
        } else if !self.mqtt && rng.chance(self.faults.server_error) {
            // A proxy or a server in trouble answers 5xx.
            flight.error_at = Some(self.t + up + rng.between(2, 400));
        } else {
            let request =
                Request { report: poll.report, long_poll: poll.long_poll, sent_true: self.t, commanded, off_reason };
            flight.stage = Stage::ToServer(self.t + up, request);
        }
        self.in_flight = Some(Box::new(flight));
        if let (Some(reference), true) = (reference, self.device.signs()) {
            self.attack_over_mqtt(reference);
        }
    }

    /// Over HTTP, on a board that signs, signs `poll` as the shells do (`POST` to the poll path
    /// with the long-poll's query, over the report's JSON): its signature, and what the server
    /// reads of it.
    fn signed_poll(&mut self, poll: &mut pumppilot_controller::Poll) -> (Option<Signature>, Option<Signed>) {
        if !self.device.signs() {
            return (None, None);
        }
        let mut buf = [0u8; json::MAX_REPORT_BYTES];
        let len = json::encode_report(&poll.report, &mut buf).expect("a report fits its limit");
        let body = buf[..len].to_vec();
        let path = match poll.long_poll {
            Some(long_poll) => format!("{POLL_PATH}?wait={}&seq={}", long_poll.wait_ms, long_poll.seq),
            None => POLL_PATH.to_owned(),
        };
        let signature = self.device.sign_poll(&mut poll.sent, "POST", &path, &body).expect("the board signs");
        self.check_counter(signature.counter());
        let signed = Signed::Poll { path, body, counter: signature.counter(), mac: signature.mac_hex() };
        (Some(signature), Some(signed))
    }

    /// Over MQTT, on a board that signs, the payload it publishes for `report` (the prefix line
    /// and the JSON), as the server reads it.
    fn signed_report(&mut self, report: &MqttReport) -> Option<Signed> {
        if !self.device.signs() {
            return None;
        }
        let mut buf = [0u8; MAX_REPORT_PAYLOAD];
        let len = self.device.mqtt_payload(report, REPORT_TOPIC, &mut buf).expect("a report fits its limit");
        let payload = buf[..len].to_vec();
        if let Framed::Signed { counter, .. } = protocol_link::unframe(&payload) {
            self.check_counter(counter);
            if let Some(sent) = self.oracle.refs.iter_mut().rev().find(|sent| sent.reference == report.reference) {
                sent.counter = Some(counter);
            }
        } else {
            self.mismatch(|| "a board with a link secret published an unsigned report".to_owned());
        }
        Some(Signed::Report(payload))
    }
}

/// The board settings the campaign tries: both active levels, with and without a feedback input,
/// two debounce times.
pub fn boards() -> Vec<Settings> {
    let mut boards = Vec::new();
    for (i, debounce_ms) in [50u32, 100].into_iter().enumerate() {
        for active_high in [true, false] {
            for feedback in [None, Some(FeedbackInput { active_high: !active_high, confirm_ms: 5_000 })] {
                boards.push(Settings {
                    load_shedding_active_high: active_high,
                    ready_active_high: active_high == (i == 0),
                    debounce_ms,
                    feedback,
                    ..Settings::DEFAULT
                });
            }
        }
    }
    boards
}
