//! The relay rule, exhaustively: every answer (each motor × state × hold reason, and every kind
//! of unusable answer) × each debounced input situation × both active levels of both inputs ×
//! lease ages around the limit and a clock that goes back. The relay is ON in exactly the cases
//! where all four conditions of `DEVICE.md` hold.

use pumppilot_controller::{Controller, Decision, Millis, OffReason, Settings};
use pumppilot_protocol::{HoldReason, MAX_ANSWER_BYTES, Motor, MotorState, PollAnswer};

const LEASE: u32 = 15_000;
const DEBOUNCE: u32 = 50;
/// The inputs are first sensed here; the answer arrives well after they settled.
const T0: u64 = 1_000_000;
const ANSWER_AT: u64 = T0 + 10 * DEBOUNCE as u64;

fn poll_answer(motor: Motor, state: MotorState, hold_reason: Option<HoldReason>) -> PollAnswer {
    PollAnswer {
        motor,
        state,
        hold_reason,
        remaining_seconds: 60,
        poll_ms: 5_000,
        lease_ms: LEASE,
        seq: 7,
        min_off_ms: 0,
        grid_settle_ms: 0,
        max_starts_per_hour: 0,
    }
}

fn on_answer() -> PollAnswer {
    poll_answer(Motor::On, MotorState::Running, None)
}

fn json(answer: &PollAnswer) -> Vec<u8> {
    serde_json::to_vec(answer).unwrap()
}

/// What the device was told, as a script of bodies; the last one arrives at `ANSWER_AT`.
#[derive(Debug, Clone)]
enum Told {
    Nothing,
    /// One answer body (usable or not) and whether it commands ON.
    Body(Vec<u8>, bool),
    /// A usable ON answer, then (at `ANSWER_AT`) an unusable body: the command is dropped.
    OnThenGarbage(Vec<u8>),
    /// A usable ON answer at `ANSWER_AT`, then a failed poll at the same moment: still ON.
    OnThenFailedPoll,
    /// A usable ON answer, then a usable OFF answer.
    OnThenOff,
}

fn everything_told() -> Vec<Told> {
    let mut told = Vec::new();
    for motor in [Motor::On, Motor::Off] {
        for state in [MotorState::Idle, MotorState::Running, MotorState::Hold] {
            for reason in [
                None,
                Some(HoldReason::LoadShedding),
                Some(HoldReason::DeviceNotReady),
                Some(HoldReason::DeviceOffline),
            ] {
                let answer = poll_answer(motor, state, reason);
                let on = motor == Motor::On && state == MotorState::Running;
                told.push(Told::Body(json(&answer), on));
            }
        }
    }
    let on = String::from_utf8(json(&on_answer())).unwrap();
    let mut too_long = on.clone();
    too_long.push_str(&" ".repeat(MAX_ANSWER_BYTES + 1 - on.len()));
    let unusable: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"hello".to_vec(),
        b"{}".to_vec(),
        vec![0xFF, 0xFE, 0x00],
        too_long.into_bytes(),
        on.as_bytes()[..on.len() - 1].to_vec(),
        on.replace("RUNNING", "STARTING").into_bytes(),
        on.replace("\"ON\"", "\"YES\"").into_bytes(),
        on.replace("\"leaseMs\":15000,", "").into_bytes(),
        format!("{on}{on}").into_bytes(),
    ];
    told.push(Told::Nothing);
    for body in unusable {
        told.push(Told::Body(body.clone(), false));
        told.push(Told::OnThenGarbage(body));
    }
    told.push(Told::OnThenFailedPoll);
    told.push(Told::OnThenOff);
    told
}

/// One input over time, in what it means (safe = grid up / pump ready).
#[derive(Debug, Clone, Copy)]
enum Input {
    /// The same level since `T0`.
    Steady { safe: bool },
    /// Steady since `T0`, then the opposite level appears at the very moment asked: too new to count.
    Bouncing { was_safe: bool },
}

impl Input {
    const ALL: [Input; 4] = [
        Input::Steady { safe: true },
        Input::Steady { safe: false },
        Input::Bouncing { was_safe: true },
        Input::Bouncing { was_safe: false },
    ];

    fn debounced_safe(self) -> bool {
        match self {
            Input::Steady { safe } => safe,
            Input::Bouncing { was_safe } => was_safe,
        }
    }

    /// (level at `T0`, level at the moment asked), for an input whose unsafe meaning has level
    /// `unsafe_level`.
    fn levels(self, unsafe_level: bool) -> (bool, bool) {
        let level = |safe: bool| if safe { !unsafe_level } else { unsafe_level };
        match self {
            Input::Steady { safe } => (level(safe), level(safe)),
            Input::Bouncing { was_safe } => (level(was_safe), level(!was_safe)),
        }
    }
}

/// When the relay is asked, relative to the answer.
#[derive(Debug, Clone, Copy)]
enum Age {
    Ms(u64),
    /// The clock reads earlier than the answer's arrival.
    Before(u64),
}

const AGES: [Age; 8] = [
    Age::Ms(0),
    Age::Ms(1),
    Age::Ms(LEASE as u64 - 1),
    Age::Ms(LEASE as u64),
    Age::Ms(LEASE as u64 + 1),
    Age::Ms(u64::MAX - ANSWER_AT),
    Age::Before(1),
    Age::Before(ANSWER_AT),
];

struct Case {
    told: Told,
    load_shedding_active_high: bool,
    ready_active_high: bool,
    load_shedding: Input,
    ready: Input,
    /// The inputs are sensed for the first time at the moment asked (just booted).
    fresh_inputs: bool,
    age: Age,
}

impl Case {
    fn expected(&self) -> bool {
        let commanded = match &self.told {
            Told::Nothing | Told::OnThenGarbage(_) | Told::OnThenOff => false,
            Told::Body(_, on) => *on,
            Told::OnThenFailedPoll => true,
        };
        let fresh = matches!(self.age, Age::Ms(age) if age < u64::from(LEASE));
        commanded && fresh && !self.fresh_inputs && self.load_shedding.debounced_safe() && self.ready.debounced_safe()
    }

    fn run(&self) -> (Controller, Millis) {
        let settings = Settings {
            load_shedding_active_high: self.load_shedding_active_high,
            ready_active_high: self.ready_active_high,
            debounce_ms: DEBOUNCE,
            ..Settings::DEFAULT
        };
        let mut device = Controller::new(settings);
        // Load shedding's unsafe meaning is "grid down" = the active level; ready's is "not ready".
        let (ls_before, ls_at) = self.load_shedding.levels(self.load_shedding_active_high);
        let (ready_before, ready_at) = self.ready.levels(!self.ready_active_high);
        if !self.fresh_inputs {
            device.sense(Millis(T0), ls_before, ready_before);
        }
        let earlier = Millis(ANSWER_AT - 100);
        let at = Millis(ANSWER_AT);
        let on = json(&on_answer());
        match &self.told {
            Told::Nothing => {}
            Told::Body(body, _) => {
                let _ = device.answer(at, body);
            }
            Told::OnThenGarbage(body) => {
                device.answer(earlier, &on).unwrap();
                assert!(device.answer(at, body).is_err());
            }
            Told::OnThenFailedPoll => {
                device.answer(at, &on).unwrap();
                device.poll_failed(at);
            }
            Told::OnThenOff => {
                device.answer(earlier, &on).unwrap();
                device.answer(at, &json(&poll_answer(Motor::Off, MotorState::Idle, None))).unwrap();
            }
        }
        let now = match self.age {
            Age::Ms(age) => Millis(ANSWER_AT + age),
            Age::Before(by) => Millis(ANSWER_AT - by),
        };
        // Fresh inputs are sensed for the first time now; a bouncing one shows its new level now.
        let bouncing =
            matches!(self.load_shedding, Input::Bouncing { .. }) || matches!(self.ready, Input::Bouncing { .. });
        if self.fresh_inputs || bouncing {
            device.sense(now, ls_at, ready_at);
        }
        (device, now)
    }
}

#[test]
fn relay_is_on_exactly_when_all_four_conditions_hold() {
    let mut cases = 0;
    let mut on = 0;
    for told in everything_told() {
        for load_shedding_active_high in [true, false] {
            for ready_active_high in [true, false] {
                for load_shedding in Input::ALL {
                    for ready in Input::ALL {
                        for fresh_inputs in [false, true] {
                            for age in AGES {
                                let case = Case {
                                    told: told.clone(),
                                    load_shedding_active_high,
                                    ready_active_high,
                                    load_shedding,
                                    ready,
                                    fresh_inputs,
                                    age,
                                };
                                let (mut device, now) = case.run();
                                let relay = device.relay(now);
                                assert_eq!(
                                    relay,
                                    case.expected(),
                                    "told {:?}, load shedding {load_shedding:?} (active high {load_shedding_active_high}), \
                                     ready {ready:?} (active high {ready_active_high}), fresh inputs {fresh_inputs}, {age:?}: {:?}",
                                    case.told,
                                    device.decision(now)
                                );
                                assert_eq!(relay, device.decision(now) == Decision::On);
                                // The report says what the relay does and what the inputs mean.
                                if let Age::Ms(_) = age {
                                    let report = device.report(now);
                                    assert_eq!(report.relay, relay);
                                    if !fresh_inputs {
                                        assert_eq!(report.load_shedding, !load_shedding.debounced_safe());
                                        assert_eq!(report.ready, ready.debounced_safe());
                                    }
                                }
                                cases += 1;
                                on += usize::from(relay);
                            }
                        }
                    }
                }
            }
        }
    }
    // Sanity: ON exactly in the 5 ON scripts (ON/RUNNING with each hold reason, and ON then a
    // failed poll) × 3 fresh ages × 4 safe input combinations × 4 active-level settings.
    assert_eq!(on, 5 * 3 * 4 * 4);
    assert!(cases > 10_000, "{cases}");
}

#[test]
fn boot_is_off_and_a_new_controller_is_off() {
    let device = Controller::new(Settings::DEFAULT);
    for now in [0, 1, 50, 1_000, u64::MAX] {
        assert_eq!(device.decision(Millis(now)), Decision::Off(OffReason::NoCommand));
    }
    // A device that was ON and resets comes back OFF, whatever its pins say.
    let mut before = Controller::new(Settings::DEFAULT);
    before.sense(Millis(0), false, true);
    before.answer(Millis(100), &json(&on_answer())).unwrap();
    assert!(before.relay(Millis(200)));
    let mut after = Controller::new(Settings::DEFAULT);
    after.sense(Millis(0), false, true);
    assert_eq!(after.decision(Millis(200)), Decision::Off(OffReason::NoCommand));
}

#[test]
fn each_reason_is_named() {
    let mut device = Controller::new(Settings { debounce_ms: 50, ..Settings::DEFAULT });
    let t = |ms| Millis(ms);
    device.sense(t(0), false, true);
    assert_eq!(device.decision(t(10)), Decision::Off(OffReason::NoCommand));
    device.answer(t(10), &json(&poll_answer(Motor::Off, MotorState::Idle, None))).unwrap();
    assert_eq!(device.decision(t(10)), Decision::Off(OffReason::CommandOff));
    device.answer(t(20), &json(&on_answer())).unwrap();
    assert_eq!(device.decision(t(20)), Decision::Off(OffReason::LoadSheddingUnknown));
    assert_eq!(device.decision(t(50)), Decision::On);
    device.sense(t(60), true, true);
    assert_eq!(device.decision(t(109)), Decision::On);
    assert_eq!(device.decision(t(110)), Decision::Off(OffReason::LoadShedding));
    device.sense(t(120), false, false);
    assert_eq!(device.decision(t(170)), Decision::Off(OffReason::NotReady));
    device.sense(t(180), false, true);
    assert_eq!(device.decision(t(230)), Decision::On);
    assert_eq!(device.decision(t(20 + u64::from(LEASE))), Decision::Off(OffReason::LeaseExpired));
    device.sense(t(20 + u64::from(LEASE)), false, true);
    assert_eq!(device.decision(t(229)), Decision::Off(OffReason::ClockWentBack));
    let mut never_sensed = Controller::new(Settings::DEFAULT);
    never_sensed.answer(t(0), &json(&on_answer())).unwrap();
    assert_eq!(never_sensed.decision(t(1)), Decision::Off(OffReason::LoadSheddingUnknown));
}

#[test]
fn an_unsafe_input_switches_off_without_the_server() {
    let mut device = Controller::new(Settings { debounce_ms: 50, ..Settings::DEFAULT });
    device.sense(Millis(0), false, true);
    device.answer(Millis(100), &json(&on_answer())).unwrap();
    assert!(device.relay(Millis(100)));
    // Ready drops at 200: OFF 50 ms later, no poll in between.
    for now in (100..1_000).step_by(10) {
        let ready = now < 200;
        device.sense(Millis(now), false, ready);
        assert_eq!(device.relay(Millis(now)), now < 250, "at {now}");
    }
}

#[test]
fn a_failed_poll_neither_extends_nor_cuts_the_lease() {
    let mut device = Controller::new(Settings::DEFAULT);
    device.sense(Millis(0), false, true);
    device.answer(Millis(1_000), &json(&on_answer())).unwrap();
    for now in (2_000..16_000).step_by(1_000) {
        device.poll_failed(Millis(now));
    }
    assert!(device.relay(Millis(1_000 + u64::from(LEASE) - 1)));
    assert!(!device.relay(Millis(1_000 + u64::from(LEASE))));
}

#[test]
fn a_lease_longer_than_the_device_allows_is_cut() {
    let mut device = Controller::new(Settings { max_lease_ms: 20_000, ..Settings::DEFAULT });
    device.sense(Millis(0), false, true);
    let forever = PollAnswer { lease_ms: u32::MAX, ..on_answer() };
    device.answer(Millis(1_000), &json(&forever)).unwrap();
    assert!(device.relay(Millis(20_999)));
    assert_eq!(device.decision(Millis(21_000)), Decision::Off(OffReason::LeaseExpired));
    let zero = PollAnswer { lease_ms: 0, ..on_answer() };
    device.answer(Millis(30_000), &json(&zero)).unwrap();
    assert!(!device.relay(Millis(30_000)));
}

#[test]
fn a_clock_that_goes_back_forgets_everything() {
    let mut device = Controller::new(Settings::DEFAULT);
    device.sense(Millis(10_000), false, true);
    device.answer(Millis(20_000), &json(&on_answer())).unwrap();
    assert!(device.relay(Millis(20_000)));
    // Asked about an earlier moment: OFF, and the state is not touched by asking.
    assert_eq!(device.decision(Millis(19_999)), Decision::Off(OffReason::ClockWentBack));
    assert!(device.relay(Millis(20_001)));
    // Told of an earlier moment: the command and the inputs are gone, even when time later
    // passes the old answer again (its age can no longer be known).
    device.sense(Millis(5_000), false, true);
    for now in [5_000, 5_100, 20_000, 20_001, 34_999] {
        device.sense(Millis(now), false, true);
        assert_eq!(device.decision(Millis(now)), Decision::Off(OffReason::NoCommand), "at {now}");
    }
}

#[test]
fn the_end_of_the_clock_does_not_overflow() {
    let mut device = Controller::new(Settings { debounce_ms: 0, ..Settings::DEFAULT });
    let late = u64::MAX - 5;
    device.sense(Millis(late), false, true);
    device.answer(Millis(late), &json(&on_answer())).unwrap();
    assert!(device.relay(Millis(late)));
    assert!(device.relay(Millis(u64::MAX)));
    let report = device.report(Millis(u64::MAX));
    assert_eq!(report.uptime_ms, Some(u64::MAX));
}
