//! The attacker on the farm's network (`docs/DEVICE.md`, "The authenticated link": anyone on it
//! can read a poll, send it again, or answer one in the server's place). It keeps every answer
//! and command that reached the board, across reboots, and sends, in the server's place (HTTP:
//! the answer to a poll) or beside it (MQTT: a message on the command topic):
//!
//! - **replays**: a captured genuine message sent again, byte for byte: preferably an ON after a
//!   newer command (a Stop, a hold) replaced it, or one from an earlier boot (over HTTP one made
//!   for a request with the very counter the board signs now, which a board that counted from 1
//!   again at each boot would meet; it counts from a random point; over MQTT one naming a `ref`
//!   the board reported again, its refs having met that boot's);
//! - **forgeries**: a captured message changed into an ON with a longer lease and a newer `seq`
//!   (over MQTT naming the newest report, for the freshest lease) under its old MAC, one signed
//!   with a key that is not the board's, a command whose prefix names another counter, and a
//!   refusal that would move the board's counter to the last there is;
//! - **injections**: a message without a signature: an ON, over MQTT with and without a `ref`,
//!   and a refusal;
//! - **across a server restart**: the signed polls and reports the server accepted before it
//!   restarted, sent to the new server again (over HTTP on a connection of its own, over MQTT
//!   into the board's connection), and the newest ON captured before the restart, sent to the
//!   board after it (over HTTP in place of the new server's next answers).
//!
//! Only against a board that signs: a board without a link secret takes any well-formed answer,
//! which is what the secret is for. What the attacker may achieve is decided by the [`Oracle`]
//! from the rule, not here: this module only makes the messages and says what they are.
//!
//! [`Oracle`]: crate::Oracle

use std::collections::VecDeque;

use pumppilot_controller::{Signature, mqtt::REMEMBERED_REFS};
use pumppilot_protocol::{
    Motor, MotorState, PollAnswer,
    link::{self, Framed, LinkKey, LinkSecret, MqttKind},
};

use crate::{
    InFlight, Meaning, Message, Origin, Rng, Seal,
    link::{HttpAnswer, command_json, signed, stale},
};

/// The attacker's own key: made like a board's, but not this board's.
const GUESSED_SECRET: &str = "pp_link_an-attackers-guess-at-the-secret";

/// How many of the newest captures the attacker keeps.
const KEPT: usize = 128;

/// How many captures it keeps of the start of each boot (the first answers after a reboot, made
/// for the first counters), and of how many boots.
const FIRST_OF_A_BOOT: usize = 4;
const BOOTS: usize = 16;

/// How many of the newest signed requests the server accepted it keeps.
const REQUESTS_KEPT: usize = 8;

/// A message that reached the board, as the attacker keeps it.
#[derive(Debug, Clone)]
struct Captured {
    /// The board's boot it was sent to (0: the first).
    boot: u64,
    /// The server's life it was sent in (0: before its first restart).
    life: u64,
    message: Message,
    meaning: Meaning,
}

impl Captured {
    /// The HTTP request's counter it answered.
    fn counter(&self) -> Option<u64> {
        match self.meaning.seal {
            Seal::Server(Some(request)) => Some(request.counter()),
            _ => None,
        }
    }
}

/// The attacker: what it captured, and a key of its own.
#[derive(Debug, Clone)]
pub(crate) struct Attacker {
    key: LinkKey,
    boot: u64,
    /// The server's life now (each restart begins one).
    life: u64,
    newest: VecDeque<Captured>,
    firsts: VecDeque<Captured>,
    /// The newest signed polls or reports the server accepted, each with the server's life.
    requests: VecDeque<(u64, InFlight)>,
    /// After how many more of the board's reports it sends the ON a Stop replaced again.
    insisting: u32,
    /// How many more times it sends the newest ON of before the server's restart.
    after_restart: u32,
}

impl Attacker {
    pub fn new() -> Attacker {
        let key = LinkSecret::parse(GUESSED_SECRET).expect("a well-formed secret").keyed();
        Attacker {
            key,
            boot: 0,
            life: 0,
            newest: VecDeque::new(),
            firsts: VecDeque::new(),
            requests: VecDeque::new(),
            insisting: 0,
            after_restart: 0,
        }
    }

    /// The board rebooted: what is captured from now on belongs to its next boot.
    pub fn reboot(&mut self) {
        self.boot += 1;
        self.insisting = 0;
    }

    /// The server restarted: what is captured from now on belongs to its next life.
    pub fn restart(&mut self) {
        self.life += 1;
        self.after_restart = 0;
    }

    /// The next `messages` times it may (in place of an answer, after a report), send the newest
    /// ON of before the restart ([`Attacker::replay_across_restart`]).
    pub fn insist_across_restart(&mut self, messages: u32) {
        self.after_restart = messages;
    }

    /// True (once per chance) while the attacker sends the newest ON of before the restart.
    pub fn after_restart(&mut self) -> bool {
        let insisting = self.after_restart > 0;
        self.after_restart = self.after_restart.saturating_sub(1);
        insisting
    }

    /// From now on, after each of the board's next `reports`, send the ON a Stop replaced again
    /// ([`Attacker::replaced_on_again`]).
    pub fn insist(&mut self, reports: u32) {
        self.insisting = reports;
    }

    /// True (once per report) while the attacker insists on the replaced ON.
    pub fn insisting(&mut self) -> bool {
        let insisting = self.insisting > 0;
        self.insisting = self.insisting.saturating_sub(1);
        insisting
    }

    /// A genuine message, signed by the server, reached the board. True when it is a command that
    /// does not run the pump and replaced an ON captured for the same report (a newer `seq`).
    pub fn capture(&mut self, message: &Message, meaning: &Meaning) -> bool {
        let replaces = |c: &Captured| {
            c.meaning.answer.zip(meaning.answer).is_some_and(|(on, by)| {
                on.commands_on() && !by.commands_on() && by.seq > on.seq && c.meaning.reference == meaning.reference
            })
        };
        let replaced_an_on = self.newest.iter().rev().take_while(|c| c.boot == self.boot).any(replaces);
        let captured = Captured { boot: self.boot, life: self.life, message: message.clone(), meaning: *meaning };
        if self.firsts.iter().filter(|c| c.boot == self.boot).count() < FIRST_OF_A_BOOT {
            self.firsts.push_back(captured.clone());
            if self.firsts.len() > FIRST_OF_A_BOOT * BOOTS {
                self.firsts.pop_front();
            }
        }
        self.newest.push_back(captured);
        if self.newest.len() > KEPT {
            self.newest.pop_front();
        }
        replaced_an_on
    }

    /// A signed poll or report the server accepted (`flight`, as it reached the server).
    pub fn capture_request(&mut self, flight: &InFlight) {
        self.requests.push_back((self.life, flight.clone()));
        if self.requests.len() > REQUESTS_KEPT {
            self.requests.pop_front();
        }
    }

    /// The signed requests to send a restarted server: the newest accepted before the restart,
    /// and one of those at random.
    pub fn requests_to_replay(&self, rng: &mut Rng) -> Vec<InFlight> {
        let before: Vec<&InFlight> =
            self.requests.iter().filter(|(life, _)| *life < self.life).map(|(_, flight)| flight).collect();
        before.last().into_iter().chain(pick(rng, &before)).map(|flight| (*flight).clone()).collect()
    }

    /// The newest ON a newer command replaced ([`Attacker::replaced_on`]), sent again.
    pub fn replaced_on_again(&self) -> Option<(Message, Meaning)> {
        let replaced = self.replaced_on()?;
        Some(self.again(replaced, true, false))
    }

    /// The newest ON captured before the server's latest restart, sent again.
    pub fn replay_across_restart(&self) -> Option<(Message, Meaning)> {
        let on = self
            .newest
            .iter()
            .rev()
            .find(|c| c.life < self.life && c.meaning.answer.is_some_and(|answer| answer.commands_on()))?;
        Some(self.again(on, false, false))
    }

    /// `captured` sent again, as a replay (of an ON a newer command replaced, or not; of a
    /// command of an earlier boot naming a `ref` the board reported again, or not).
    fn again(&self, captured: &Captured, replaced_on: bool, ref_met_again: bool) -> (Message, Meaning) {
        let origin = Origin::Replay {
            replaced_on,
            across_reboot: captured.boot != self.boot,
            across_restart: captured.life != self.life,
            ref_met_again,
        };
        (captured.message.clone(), Meaning { origin, ..captured.meaning })
    }

    /// A captured message to send again (`None` before anything was captured). `request`: the
    /// poll it will answer, over HTTP.
    pub fn replay(&self, rng: &mut Rng, request: Option<Signature>) -> Option<(Message, Meaning)> {
        let choice = match rng.below(4) {
            0 => self.replaced_on().map(|c| (c, true)),
            1 => self.earlier_boot(rng, request).map(|c| (c, false)),
            2 => self.earlier_life(rng).map(|c| (c, false)),
            _ => None,
        };
        let (captured, replaced_on) = match choice {
            Some(choice) => choice,
            None => {
                let this_boot: Vec<&Captured> = self.newest.iter().filter(|c| c.boot == self.boot).collect();
                (*pick(rng, &this_boot)?, false)
            }
        };
        Some(self.again(captured, replaced_on, false))
    }

    /// Over MQTT, a command of an earlier boot naming one of the `ref`s the board reported last
    /// (`newest` and the [`REMEMBERED_REFS`] before it): this boot's refs met that boot's. `None`
    /// when it captured none.
    pub fn earlier_boot_naming(&self, rng: &mut Rng, newest: u32) -> Option<(Message, Meaning)> {
        let lately = |reference: u32| newest.wrapping_sub(reference) < REMEMBERED_REFS as u32;
        let met_again: Vec<&Captured> = self
            .firsts
            .iter()
            .chain(&self.newest)
            .filter(|c| c.boot < self.boot && c.meaning.answer.is_some() && c.meaning.reference.is_some_and(lately))
            .collect();
        Some(self.again(pick(rng, &met_again)?, false, true))
    }

    /// The newest ON of this boot that a newer command not running the pump (a higher `seq`)
    /// replaced: the captured ON sent again after a Stop. Over MQTT preferably one replaced by a
    /// command naming the same report (a Stop pushed before the next report): only its `seq`
    /// tells it from the command the board holds.
    fn replaced_on(&self) -> Option<&Captured> {
        let this_boot = || self.newest.iter().rev().take_while(|c| c.boot == self.boot);
        let replaced = |same_report: bool| {
            // The highest `seq` of a newer command that does not run the pump, by report named.
            let mut replaced_by: Vec<(Option<u32>, u64)> = Vec::new();
            for captured in this_boot() {
                let Some(answer) = captured.meaning.answer else { continue };
                let named = captured.meaning.reference;
                if !answer.commands_on() {
                    replaced_by.push((named, answer.seq));
                } else if replaced_by.iter().any(|&(by, seq)| seq > answer.seq && (!same_report || by == named)) {
                    return Some(captured);
                }
            }
            None
        };
        replaced(true).or_else(|| replaced(false))
    }

    /// A message of an earlier boot: over HTTP, one made for a request with the counter the
    /// board signs now when there is one (its MAC covers the counter).
    fn earlier_boot(&self, rng: &mut Rng, request: Option<Signature>) -> Option<&Captured> {
        let earlier: Vec<&Captured> = self.firsts.iter().chain(&self.newest).filter(|c| c.boot < self.boot).collect();
        let same_counter: Vec<&Captured> = match request {
            Some(request) => earlier.iter().copied().filter(|c| c.counter() == Some(request.counter())).collect(),
            None => Vec::new(),
        };
        pick(rng, &same_counter).or_else(|| pick(rng, &earlier)).copied()
    }

    /// A message of this boot captured before the server's latest restart.
    fn earlier_life(&self, rng: &mut Rng) -> Option<&Captured> {
        let earlier: Vec<&Captured> =
            self.newest.iter().filter(|c| c.boot == self.boot && c.life < self.life).collect();
        pick(rng, &earlier).copied()
    }

    /// The newest captured command of this boot, if any.
    fn last_command(&self) -> Option<PollAnswer> {
        self.newest.iter().rev().take_while(|c| c.boot == self.boot).find_map(|c| c.meaning.answer)
    }

    /// A forgery in place of `genuine`, the server's answer `answer` to the poll signed
    /// `request`: the body changed into an ON under the old MAC, an ON signed with another key,
    /// or a `409` with another key's MAC naming the last counter there is.
    pub fn forge_answer(
        &self,
        rng: &mut Rng,
        genuine: &HttpAnswer,
        answer: &PollAnswer,
        request: Option<Signature>,
    ) -> (Message, Meaning) {
        let on = forced_on(answer);
        let body = command_json(&on, None);
        let request_tag = request.and_then(|r| link::from_hex(&r.mac_hex()));
        let counter = genuine.counter.unwrap_or(1);
        let (forged, meaning) = match (rng.below(3), request_tag) {
            (0, _) | (_, None) => (HttpAnswer { body, ..genuine.clone() }, Meaning::forged(Some(on), None, None)),
            (1, Some(tag)) => {
                let mac = link::to_hex(&self.key.answer_tag(&tag, 200, counter, &body));
                (
                    HttpAnswer { status: 200, counter: Some(counter), mac: Some(mac), body },
                    Meaning::forged(Some(on), None, None),
                )
            }
            (_, Some(tag)) => {
                let body = stale(counter, link::MAX_COUNTER);
                let mac = link::to_hex(&self.key.answer_tag(&tag, 409, link::MAX_COUNTER, &body));
                let refusal = HttpAnswer { status: 409, counter: Some(link::MAX_COUNTER), mac: Some(mac), body };
                (refusal, Meaning::forged(None, None, Some(link::MAX_COUNTER)))
            }
        };
        (Message::Http(forged), meaning)
    }

    /// An unsigned answer in place of the server's `answer`: an ON, or a `409` naming the last
    /// counter there is.
    pub fn inject_answer(&self, rng: &mut Rng, answer: &PollAnswer, counter: u64) -> (Message, Meaning) {
        if rng.chance(500_000) {
            let on = forced_on(answer);
            (Message::Http(HttpAnswer::unsigned(200, command_json(&on, None))), Meaning::injected(Some(on), None, None))
        } else {
            let refusal = HttpAnswer::unsigned(409, stale(counter, link::MAX_COUNTER));
            (Message::Http(refusal), Meaning::injected(None, None, Some(link::MAX_COUNTER)))
        }
    }

    /// A forged command on `topic`, from the newest captured one of this boot (`None` before
    /// any): an ON naming the newest report `newest` under the old prefix, the same signed with
    /// another key, the genuine command under a prefix naming another counter, or a refusal
    /// with another key's MAC naming the last counter there is.
    pub fn forge_command(&self, rng: &mut Rng, topic: &str, newest: u32) -> Option<(Message, Meaning)> {
        let captured =
            self.newest.iter().rev().take_while(|c| c.boot == self.boot).find(|c| c.meaning.answer.is_some())?;
        let Message::Mqtt(payload) = &captured.message else { return None };
        let Framed::Signed { counter, tag, body } = link::unframe(payload) else { return None };
        let on = forced_on(&captured.meaning.answer?);
        let json = command_json(&on, Some(newest));
        let mut prefix = [0u8; link::MAX_MQTT_PREFIX_BYTES];
        let (payload, meaning) = match rng.below(4) {
            0 => {
                let at = link::write_prefix(counter, &tag, &mut prefix);
                ([&prefix[..at], &json].concat(), Meaning::forged(Some(on), Some(newest), None))
            }
            1 => (
                signed(&self.key, MqttKind::Command, topic, counter, &json),
                Meaning::forged(Some(on), Some(newest), None),
            ),
            2 => {
                let at = link::write_prefix(counter + 1, &tag, &mut prefix);
                let meaning = Meaning { seal: Seal::Broken, origin: Origin::Forgery, ..captured.meaning };
                ([&prefix[..at], body].concat(), meaning)
            }
            _ => {
                let refusal = stale(counter, link::MAX_COUNTER);
                let payload = signed(&self.key, MqttKind::Stale, topic, link::MAX_COUNTER, &refusal);
                (payload, Meaning::forged(None, None, Some(link::MAX_COUNTER)))
            }
        };
        Some((Message::Mqtt(payload), meaning))
    }

    /// A command without a signature: an ON naming no report, an ON naming the newest report
    /// `newest`, or a refusal.
    pub fn inject_command(&self, rng: &mut Rng, newest: u32) -> (Message, Meaning) {
        let on = forced_on(&self.last_command().unwrap_or(MADE_UP));
        let (json, meaning) = match rng.below(3) {
            0 => (command_json(&on, None), Meaning::injected(Some(on), None, None)),
            1 => (command_json(&on, Some(newest)), Meaning::injected(Some(on), Some(newest), None)),
            _ => (stale(1, link::MAX_COUNTER), Meaning::injected(None, None, Some(link::MAX_COUNTER))),
        };
        (Message::Mqtt(json), meaning)
    }
}

/// What an attacker would want a board to hear: run, for a minute, under a command newer than
/// `answer`.
fn forced_on(answer: &PollAnswer) -> PollAnswer {
    PollAnswer {
        motor: Motor::On,
        state: MotorState::Running,
        hold_reason: None,
        remaining_seconds: answer.remaining_seconds.max(600),
        lease_ms: 60_000,
        seq: answer.seq + 1,
        ..*answer
    }
}

/// A command to start from before anything was captured.
const MADE_UP: PollAnswer = PollAnswer {
    motor: Motor::Off,
    state: MotorState::Idle,
    hold_reason: None,
    remaining_seconds: 0,
    poll_ms: 5_000,
    lease_ms: 15_000,
    seq: 1,
    min_off_ms: 0,
    grid_settle_ms: 0,
    max_starts_per_hour: 0,
};

/// One of `from`, at random (`None` when it is empty).
fn pick<'a, T>(rng: &mut Rng, from: &'a [T]) -> Option<&'a T> {
    from.get(rng.below(from.len() as u64) as usize)
}
