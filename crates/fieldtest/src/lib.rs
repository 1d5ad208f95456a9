//! The fault campaign: the device's [`Controller`] and the real engine together, step by step on
//! fake time. The controller (debounce, restart protection, lease counted from the send, feedback)
//! talks through a network that loses, delays, stalls, duplicates, reorders and garbles (requests
//! and answers) to a [`Pump`]: the engine's `Tenant`, kept as the server's runtime keeps it, with
//! farmers, an owner, a spare board and a store that fails. Around the device: noisy inputs, load
//! shedding, a motor that sometimes never confirms, reboots, clocks that jump and silent spells.
//!
//! An [`Oracle`] written apart from the controller, from the rule in `docs/DEVICE.md`, watches
//! every step and counts the steps where the relay is ON although one of these does not hold:
//! the last accepted answer says RUNNING and its lease (counted in *true* time from the moment
//! its poll was sent) has not run out; the sampled load-shedding input has settled on "grid up";
//! the sampled ready input has settled on "ready"; restart protection (a closing only after the
//! grid was up for `gridSettleMs`, the relay open for `minOffMs`, and under `maxStartsPerHour`);
//! on boards with a feedback input, the motor confirmed within the set time. That count must
//! be 0. The [`Pump`] counts the milliseconds the engine charged while the relay could not be ON
//! (0) and the balances that are not their ledger (0).
//!
//! Restart protection and the grid's settle time are counted on the device's clock (a clock
//! that jumps forward is indistinguishable from time passing); the lease in true time (a clock
//! that jumps forward only ends it early). A reboot forgets the starts of the last hour (the
//! server counts them too).

mod pump;

use pump::{Held as HeldPoll, Reply, Request};
pub use pump::{Pump, PumpFigures};

use pumppilot_controller::{
    AnswerError, Controller, Decision, FeedbackInput, Millis, OffReason, Sent, Settings,
    mqtt::{Pushed, REMEMBERED_REFS},
    pin_level,
    timing::{HOUR_MS, TICK_MS},
};
use pumppilot_protocol::{Motor, MotorState, PollAnswer, ResetReason};

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
}

impl Faults {
    /// A bad day at a pump: every fault, often.
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
            feedback_trips,
            noisy_samples,
            violations,
            acceptance_mismatches,
            off_though_allowed,
            on_while_grid_truly_down,
            false_no_feedback,
            unreferenced_on,
            unreferenced_off,
            answers_spared
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
        writeln!(f, "noisy samples           {}", self.noisy_samples)?;
        writeln!(f, "feedback trips          {}", self.feedback_trips)?;
        writeln!(f, "MQTT unreferenced ON / OFF   {} / {}", self.unreferenced_on, self.unreferenced_off)?;
        writeln!(f, "MQTT reports not answered (an unchanged OFF)   {}", self.answers_spared)?;
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
    /// Over MQTT: the last reports' refs with their true and device send times and the epoch.
    refs: Vec<(u32, u64, u64, u64)>,
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
}

/// One answer on its way to the device.
#[derive(Debug, Clone)]
struct Delivery {
    at_true: u64,
    sent: Sent,
    /// Over MQTT: the `ref` of the report it answers.
    reference: Option<u32>,
    send_true: u64,
    send_dev: u64,
    epoch: u64,
    body: Vec<u8>,
    answer: Option<PollAnswer>,
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
}

/// A poll and what became of it.
#[derive(Debug, Clone)]
struct InFlight {
    give_up_true: u64,
    long: bool,
    sent: Sent,
    /// Over MQTT: the report's `ref`.
    reference: Option<u32>,
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

/// The device, the world around it and the oracle, for one campaign.
pub struct Campaign {
    pub pump: Pump,
    /// Reports and commands as over MQTT (`Controller::mqtt_report`, `Controller::command`)
    /// instead of polls and answers.
    mqtt: bool,
    /// Over MQTT: the last command the server sent the device (on this boot's connection).
    told: Option<PollAnswer>,
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
    in_flight: Option<InFlight>,
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
            told: None,
            rng: Rng::new(seed),
            faults,
            settings,
            device: Controller::new(settings),
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
        self
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
        self.pump.step(self.t, self.device.closed());
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
        if self.mqtt {
            let first = self.rng.next_u64() as u32;
            self.device.set_first_ref(first);
            // A new connection: the server has told it nothing yet.
            self.told = None;
        }
        let reason = [ResetReason::PowerOn, ResetReason::BrownOut, ResetReason::Watchdog, ResetReason::Panic]
            [self.rng.below(4) as usize];
        self.device.set_reset_reason(reason);
        self.offset = -(self.t as i64);
        // What is on its way still arrives; the answers find a board that did not send it.
        if let Some(flight) = self.in_flight.take() {
            self.orphans.push(flight);
        }
        for orphan in &mut self.orphans {
            orphan.deliverable = false;
        }
        self.strays.clear();
        self.motor_confirms_at = None;
        self.next_poll_true = self.t;
        let epoch = self.oracle.epoch + 1;
        self.oracle = Oracle { epoch, ..Oracle::default() };
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

    /// The server's side of a poll at this step: a request that arrives is applied, a held
    /// long-poll may be released, and an answer goes on its way back.
    fn serve(&mut self, flight: &mut InFlight) {
        match flight.stage {
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
                match self.pump.poll(&request) {
                    // The server's rule over MQTT: an answer that only repeats what it last sent
                    // is not sent.
                    Reply::Now(answer)
                        if self.mqtt && self.told.is_some_and(|told| answer.repeats(&told, request.report.relay)) =>
                    {
                        self.figures.answers_spared += 1;
                        flight.stage = Stage::Spared;
                    }
                    Reply::Now(answer) => {
                        if self.mqtt {
                            self.told = Some(answer);
                        }
                        self.answer_back(flight, answer);
                    }
                    Reply::Held(held) => flight.stage = Stage::Held(held),
                }
            }
            Stage::Held(held) => {
                if let Some(answer) = self.pump.release(&held) {
                    self.answer_back(flight, answer);
                }
            }
            _ => {}
        }
    }

    /// The server's answer leaves now: it may stall, arrive damaged, or be lost.
    fn answer_back(&mut self, flight: &mut InFlight, answer: PollAnswer) {
        flight.stage = Stage::Done;
        let rng = &mut self.rng;
        let mut at_true = self.t + rng.between(2, 400);
        if rng.chance(self.faults.stall) {
            self.figures.stalls += 1;
            at_true += rng.between(1_000, 30_000);
        }
        let mut body = serde_json::to_vec(&answer).expect("answers serialize");
        let mut parsed = Some(answer);
        if rng.chance(self.faults.garbage) {
            let cut = rng.below(body.len() as u64) as usize;
            body.truncate(cut);
            parsed = None;
        }
        if rng.chance(self.faults.lost_answer) {
            self.figures.lost += 1;
            return;
        }
        flight.delivery = Some(Delivery {
            at_true,
            sent: flight.sent,
            reference: flight.reference,
            send_true: flight.send_true,
            send_dev: flight.send_dev,
            epoch: flight.epoch,
            body,
            answer: parsed,
        });
    }

    /// A poll the device no longer waits for: it still reaches the server, and its answer may
    /// still reach the device, late.
    fn orphan(&mut self, mut flight: InFlight) {
        flight.deliverable = self.rng.chance(self.faults.late_delivery);
        self.orphans.push(flight);
    }

    fn deliver(&mut self, now: u64) {
        // Polls nobody waits for, at the server and on their way back.
        let mut orphans = std::mem::take(&mut self.orphans);
        let mut i = 0;
        while i < orphans.len() {
            let mut orphan = orphans[i].clone();
            self.serve(&mut orphan);
            let arrived = orphan.delivery.as_ref().is_some_and(|d| d.at_true <= self.t);
            if arrived || matches!(orphan.stage, Stage::Done | Stage::Spared) && orphan.delivery.is_none() {
                orphans.swap_remove(i);
                if let Some(delivery) = orphan.delivery.filter(|_| arrived && orphan.deliverable) {
                    self.figures.late_deliveries += 1;
                    self.strays.push(delivery);
                }
            } else {
                orphans[i] = orphan;
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
        if let Some(at) = flight.error_at
            && at <= self.t
        {
            self.device.poll_failed(Millis(now));
            self.figures.server_errors += 1;
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
                self.orphan(flight);
            }
        } else {
            self.in_flight = Some(flight);
        }
    }

    /// One answer body reaches the controller; the oracle decides on its own what must happen.
    fn hand_over(&mut self, now: u64, d: Delivery) {
        if self.mqtt {
            return self.push(now, d);
        }
        let result = self.device.answer(d.sent, Millis(now), &d.body);
        let o = &mut self.oracle;
        let expected = match d.answer {
            None => Err(()),
            Some(answer) => {
                let stale = d.epoch != o.epoch || d.send_dev > now || o.behind(d.send_true, &answer);
                if stale {
                    Ok(false)
                } else {
                    o.held = Some(Held { send_true: d.send_true, send_dev: d.send_dev, answer });
                    o.took(d.send_true, d.send_dev, &answer);
                    Ok(true)
                }
            }
        };
        if expected.is_err() {
            o.held = None;
        }
        // What the agreement counts as, or nothing when controller and oracle disagree.
        let agreed = match (&result, expected) {
            (Ok(_), Ok(true)) => Some(&mut self.figures.answers_used),
            (Err(AnswerError::Stale), Ok(false)) => Some(&mut self.figures.answers_stale),
            (Err(AnswerError::Invalid | AnswerError::TooLong), Err(())) => Some(&mut self.figures.answers_garbage),
            _ => None,
        };
        if let Some(count) = agreed {
            *count += 1;
        } else {
            self.mismatch(|| format!("answer {:?} at dev {now}: controller {result:?}, oracle {expected:?}", d.answer));
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

    /// Over MQTT: the answer reaches the controller as a pushed command naming the report's
    /// `ref`, or now and then none or a forgotten one.
    fn push(&mut self, now: u64, d: Delivery) {
        let reference = match self.rng.below(100) {
            0..=2 => None,
            3 => d.reference.map(|r| r.wrapping_sub(REMEMBERED_REFS as u32 + 1)),
            _ => d.reference,
        };
        let mut body = d.body.clone();
        if let (Some(r), Some(b'}')) = (reference, body.last()) {
            body.pop();
            body.extend_from_slice(format!(",\"ref\":{r}}}").as_bytes());
        }
        let result = self.device.command(Millis(now), "pumppilot/fieldtest/command", &body);
        let o = &mut self.oracle;
        let known = reference.and_then(|r| o.refs.iter().find(|(known, _, _, epoch)| *known == r && *epoch == o.epoch));
        // What must happen: Err(()) the command dropped, Ok(None) stale or unused, Ok(Some(on))
        // taken (`on`: by its ref), and whether it was unreferenced.
        let expected: Result<(bool, bool), ()> = match (d.answer, known) {
            (None, _) => Err(()),
            (Some(answer), Some(&(_, send_true, send_dev, _))) => {
                let stale = send_dev > now || o.behind(send_true, &answer);
                if !stale {
                    o.held = Some(Held { send_true, send_dev, answer });
                    o.took(send_true, send_dev, &answer);
                }
                Ok((!stale, false))
            }
            (Some(answer), None) if answer.motor == Motor::On && answer.state == MotorState::Running => {
                Ok((false, true))
            }
            (Some(answer), None) => {
                let newest = o.refs.iter().filter(|r| r.3 == o.epoch).max_by_key(|r| r.1).map(|r| (r.1, r.2));
                let (mut send_true, mut send_dev) = newest.unwrap_or((self.t, now));
                // Never from before the newest answer taken, as the controller anchors it.
                if let Some((at, dev, _)) = o.newest
                    && at > send_true
                {
                    (send_true, send_dev) = (at, dev);
                }
                o.held = Some(Held { send_true, send_dev, answer });
                o.took(send_true, send_dev, &answer);
                Ok((true, true))
            }
        };
        if expected.is_err() {
            o.held = None;
        }
        // What the agreement counts as, or nothing when controller and oracle disagree.
        let agreed = match (&result, expected) {
            (Ok(Pushed::Taken(_)), Ok((true, false))) => Some(&mut self.figures.answers_used),
            (Err(AnswerError::Stale), Ok((false, false))) => Some(&mut self.figures.answers_stale),
            (Ok(Pushed::Unreferenced(_)), Ok((false, true))) => Some(&mut self.figures.unreferenced_on),
            (Ok(Pushed::TakenOff(_)), Ok((true, true))) => Some(&mut self.figures.unreferenced_off),
            (Err(AnswerError::Invalid | AnswerError::TooLong), Err(())) => Some(&mut self.figures.answers_garbage),
            _ => None,
        };
        if let Some(count) = agreed {
            *count += 1;
        } else {
            self.mismatch(|| {
                format!(
                    "command {:?} ref {reference:?} at dev {now}: controller {result:?}, oracle {expected:?}",
                    d.answer
                )
            });
        }
    }

    fn poll(&mut self, now: u64) {
        // A held long-poll is cut short by a local change, as the shells do (the server drops a
        // held request whose connection closed; one still on its way arrives anyway).
        if self.in_flight.as_ref().is_some_and(|f| f.long) && self.device.report_now(Millis(now)) {
            if let Some(flight) = self.in_flight.take()
                && !matches!(flight.stage, Stage::Held(_))
            {
                self.orphan(flight);
            }
            self.next_poll_true = self.t;
        }
        if self.in_flight.is_some() || !self.device.settled(Millis(now)) {
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
        let (poll, reference) = if self.mqtt {
            // A report, numbered; its answer may come any time (no request waits for it).
            let report = self.device.mqtt_report(Millis(now));
            let sent = self.device.sent(Millis(now));
            let o = &mut self.oracle;
            o.refs.push((report.reference, self.t, now, o.epoch));
            if o.refs.len() > REMEMBERED_REFS {
                o.refs.remove(0);
            }
            let poll = pumppilot_controller::Poll { report: report.report, long_poll: None, timeout_ms: 0, sent };
            (poll, Some(report.reference))
        } else {
            (self.device.poll(Millis(now)), None)
        };
        self.figures.polls += 1;
        let delay = self.device.next_poll_in(self.rng.next_u64() as u32);
        self.next_poll_true = self.t + u64::from(delay);
        let timeout_ms = if self.mqtt { u64::from(delay) } else { u64::from(poll.timeout_ms) };
        let mut flight = InFlight {
            give_up_true: self.t + timeout_ms,
            long: poll.long_poll.is_some(),
            sent: poll.sent,
            reference,
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
        self.in_flight = Some(flight);
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
