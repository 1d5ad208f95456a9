//! Property tests: whatever bytes arrive as an answer, and whatever a sequence of events looks
//! like, the controller never panics and never turns the relay ON without a reason.

mod common;
use common::AnswerAt;
use proptest::{prelude::*, test_runner::FileFailurePersistence};
use pumppilot_controller::{Controller, Millis, Settings};
use pumppilot_protocol::{HoldReason, Motor, MotorState, PollAnswer};

/// `cases` cases; failures are kept beside this file (`answers.proptest-regressions`) and replayed.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(cases);
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
        ..ProptestConfig::default()
    }
}

/// The strict oracle: `serde_json` (what the server writes with) reads these bytes as an answer
/// that commands ON with a lease that has not run out at once.
fn strictly_on(bytes: &[u8]) -> bool {
    serde_json::from_slice::<PollAnswer>(bytes).is_ok_and(|answer| answer.commands_on() && answer.lease_ms > 0)
}

/// A device whose inputs are safe and settled, that was ON a moment ago from an earlier answer.
fn device_that_was_on() -> Controller {
    let mut device = Controller::new(Settings { debounce_ms: 10, ..Settings::DEFAULT });
    common::hold(&mut device, 0, 10, 5, false, true);
    let on = PollAnswer {
        motor: Motor::On,
        state: MotorState::Running,
        hold_reason: None,
        remaining_seconds: 60,
        poll_ms: 5_000,
        lease_ms: 15_000,
        seq: 1,
        min_off_ms: 0,
        grid_settle_ms: 0,
        max_starts_per_hour: 0,
    };
    device.answer_at(Millis(100), &serde_json::to_vec(&on).unwrap()).unwrap();
    assert!(device.relay(Millis(100)));
    device
}

fn any_answer() -> impl Strategy<Value = PollAnswer> {
    let motor = prop_oneof![Just(Motor::On), Just(Motor::Off)];
    let state = prop_oneof![Just(MotorState::Idle), Just(MotorState::Running), Just(MotorState::Hold)];
    let reason = prop_oneof![
        Just(None),
        Just(Some(HoldReason::LoadShedding)),
        Just(Some(HoldReason::DeviceNotReady)),
        Just(Some(HoldReason::DeviceOffline)),
    ];
    (motor, state, reason, any::<u32>(), any::<u32>(), any::<u32>(), any::<u64>()).prop_map(
        |(motor, state, hold_reason, remaining_seconds, poll_ms, lease_ms, seq)| PollAnswer {
            motor,
            state,
            hold_reason,
            remaining_seconds,
            poll_ms,
            lease_ms,
            seq,
            min_off_ms: 0,
            grid_settle_ms: 0,
            max_starts_per_hour: 0,
        },
    )
}

/// A valid answer damaged in one place: cut short, one byte replaced, one byte inserted.
fn damaged_answer() -> impl Strategy<Value = Vec<u8>> {
    (any_answer(), 0usize..4, any::<prop::sample::Index>(), any::<u8>()).prop_map(|(answer, how, at, byte)| {
        let mut bytes = serde_json::to_vec(&answer).unwrap();
        let i = at.index(bytes.len());
        match how {
            0 => bytes.truncate(i),
            1 => bytes[i] = byte,
            2 => bytes.insert(i, byte),
            _ => {}
        }
        bytes
    })
}

/// Checks one body against a device that was ON: never a panic, ON afterwards only when the
/// body is strictly an ON answer, and an unusable body leaves the relay OFF.
fn check_body(body: &[u8]) -> Result<(), TestCaseError> {
    let mut device = device_that_was_on();
    let result = device.answer_at(Millis(200), body);
    let on = device.relay(Millis(200));
    if on {
        prop_assert!(strictly_on(body), "ON from {:?}", String::from_utf8_lossy(body));
    }
    match result {
        Err(_) => prop_assert!(!on),
        // A usable answer is exactly the strict reading, when the strict reader takes it too.
        Ok(answer) => {
            if let Ok(strict) = serde_json::from_slice::<PollAnswer>(body) {
                prop_assert_eq!(answer, strict);
                prop_assert_eq!(on, strictly_on(body));
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(4_000))]

    #[test]
    fn arbitrary_bytes_never_turn_the_relay_on(body in prop::collection::vec(any::<u8>(), 0..400)) {
        check_body(&body)?;
    }

    #[test]
    fn damaged_answers_never_turn_the_relay_on(body in damaged_answer()) {
        check_body(&body)?;
    }

    #[test]
    fn every_valid_answer_is_read_as_written(answer in any_answer()) {
        let body = serde_json::to_vec(&answer).unwrap();
        let mut device = device_that_was_on();
        prop_assert_eq!(device.answer_at(Millis(200), &body), Ok(answer));
        prop_assert_eq!(device.relay(Millis(200)), answer.commands_on() && answer.lease_ms > 0);
    }
}

/// One thing that can happen to a device.
#[derive(Debug, Clone)]
enum Event {
    /// Time moves by this many ms (negative: the clock goes back), then the pins are sensed.
    Sense { dt: i64, load_shedding_level: bool, ready_level: bool },
    /// An answer arrives after `dt` ms.
    Answer { dt: i64, answer: PollAnswer },
    /// Bytes arrive as an answer after `dt` ms.
    Garbage { dt: i64, bytes: Vec<u8> },
    /// A poll fails after `dt` ms.
    Failed { dt: i64 },
}

fn any_event() -> impl Strategy<Value = Event> {
    let dt = prop_oneof![8 => 0i64..200, 1 => 0i64..40_000, 1 => -2_000i64..0];
    prop_oneof![
        4 => (dt.clone(), any::<bool>(), any::<bool>())
            .prop_map(|(dt, load_shedding_level, ready_level)| Event::Sense { dt, load_shedding_level, ready_level }),
        2 => (dt.clone(), any_answer().prop_map(|a| PollAnswer { lease_ms: a.lease_ms % 30_000, ..a }))
            .prop_map(|(dt, answer)| Event::Answer { dt, answer }),
        1 => (dt.clone(), prop::collection::vec(any::<u8>(), 0..40)).prop_map(|(dt, bytes)| Event::Garbage { dt, bytes }),
        1 => dt.prop_map(|dt| Event::Failed { dt }),
    ]
}

/// The model's debounce: the level of the latest run of equal samples that has had at least
/// three samples spanning the debounce time (a run is `(first sample, level, samples, last
/// sample)`).
fn debounced(runs: &[(u64, bool, u32, u64)], debounce: u64) -> Option<bool> {
    runs.iter().rev().find(|&&(start, _, count, last)| count >= 3 && last - start >= debounce).map(|run| run.1)
}

fn push_sample(runs: &mut Vec<(u64, bool, u32, u64)>, now: u64, level: bool) {
    match runs.last_mut() {
        Some(run) if run.1 == level => {
            run.2 += 1;
            run.3 = now;
        }
        _ => runs.push((now, level, 1, now)),
    }
}

proptest! {
    #![proptest_config(config(2_000))]

    /// Against a model kept by the test: the relay is ON at a moment only if the last usable
    /// answer commanded ON less than its lease ago, the clock never went back since, and each
    /// pin's debounced level (the latest level that held for the debounce time) is the safe one.
    #[test]
    fn on_only_with_a_fresh_on_answer_and_settled_safe_inputs(
        events in prop::collection::vec(any_event(), 1..60),
        load_shedding_active_high in any::<bool>(),
        ready_active_high in any::<bool>(),
    ) {
        const DEBOUNCE: u64 = 50;
        let settings = Settings { load_shedding_active_high, ready_active_high, debounce_ms: DEBOUNCE as u32, ..Settings::DEFAULT };
        let mut device = Controller::new(settings);
        let mut now: u64 = 1_000_000;
        let mut on_since: Option<(u64, u64)> = None; // (answer time, lease) of a usable ON answer
        let mut last_seq: u64 = 0;
        let mut load_shedding_runs = Vec::new();
        let mut ready_runs = Vec::new();
        for event in events {
            let dt = match &event {
                Event::Sense { dt, .. } | Event::Answer { dt, .. } | Event::Garbage { dt, .. } | Event::Failed { dt } => *dt,
            };
            now = now.saturating_add_signed(dt);
            if dt < 0 {
                on_since = None;
                load_shedding_runs.clear();
                ready_runs.clear();
            }
            match event {
                Event::Sense { load_shedding_level, ready_level, .. } => {
                    device.sense(Millis(now), load_shedding_level, ready_level);
                    push_sample(&mut load_shedding_runs, now, load_shedding_level);
                    push_sample(&mut ready_runs, now, ready_level);
                }
                Event::Answer { mut answer, .. } => {
                    // The server's count of its commands never goes back.
                    answer.seq = last_seq.saturating_add(answer.seq % 3);
                    last_seq = answer.seq;
                    device.answer_at(Millis(now), &serde_json::to_vec(&answer).unwrap()).unwrap();
                    on_since = answer.commands_on().then_some((now, u64::from(answer.lease_ms)));
                }
                Event::Garbage { bytes, .. } => {
                    if device.answer_at(Millis(now), &bytes).is_err() {
                        on_since = None;
                    } else {
                        let answer: PollAnswer = serde_json::from_slice(&bytes).unwrap();
                        on_since = answer.commands_on().then_some((now, u64::from(answer.lease_ms)));
                    }
                }
                Event::Failed { .. } => device.poll_failed(Millis(now)),
            }
            for ask in [now, now + 1, now + 49, now + 50, now + 14_999, now + 15_000] {
                let expected = on_since.is_some_and(|(at, lease)| ask - at < lease)
                    && debounced(&load_shedding_runs, DEBOUNCE) == Some(!load_shedding_active_high)
                    && debounced(&ready_runs, DEBOUNCE) == Some(ready_active_high);
                prop_assert_eq!(device.relay(Millis(ask)), expected, "at {}", ask);
            }
        }
    }
}

proptest! {
    #![proptest_config(config(2_000))]

    /// The debounce alone, at arbitrary sample timing (including samples at the same instant and
    /// ticks equal to the debounce time): each input's value is the model's at every sample.
    #[test]
    fn an_input_counts_exactly_as_the_model_says(
        samples in prop::collection::vec((prop_oneof![3 => Just(50u64), 1 => 0u64..120], any::<bool>(), any::<bool>()), 1..80),
        debounce in prop_oneof![Just(50u64), 0u64..150],
    ) {
        let settings = Settings { debounce_ms: debounce as u32, ..Settings::DEFAULT };
        let mut device = Controller::new(settings);
        let (mut load_shedding_runs, mut ready_runs) = (Vec::new(), Vec::new());
        let mut now = 0;
        for (dt, load_shedding_level, ready_level) in samples {
            now += dt;
            device.sense(Millis(now), load_shedding_level, ready_level);
            push_sample(&mut load_shedding_runs, now, load_shedding_level);
            push_sample(&mut ready_runs, now, ready_level);
            // Active-high inputs: the level is the meaning.
            prop_assert_eq!(device.load_shedding(), debounced(&load_shedding_runs, debounce), "at {}", now);
            prop_assert_eq!(device.ready(), debounced(&ready_runs, debounce), "at {}", now);
        }
    }
}
