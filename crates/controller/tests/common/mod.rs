//! Helpers shared by the controller's tests.
#![allow(dead_code)]

use pumppilot_controller::{AnswerError, Controller, Millis};
use pumppilot_protocol::PollAnswer;

/// Answers for a poll that took no time (sent and answered at `now`).
pub trait AnswerAt {
    fn answer_at(&mut self, now: Millis, body: &[u8]) -> Result<PollAnswer, AnswerError>;
}

impl AnswerAt for Controller {
    fn answer_at(&mut self, now: Millis, body: &[u8]) -> Result<PollAnswer, AnswerError> {
        let sent = self.sent(now);
        self.answer(sent, now, body)
    }
}

/// Senses the same levels every `tick` ms from `from` to `to` (both included): with a tick of
/// at most half the debounce time and `to - from` at least the debounce time, the levels count.
pub fn hold(device: &mut Controller, from: u64, to: u64, tick: u64, load_shedding_level: bool, ready_level: bool) {
    let mut at = from;
    while at < to {
        device.sense(Millis(at), load_shedding_level, ready_level);
        at += tick;
    }
    device.sense(Millis(to), load_shedding_level, ready_level);
}
