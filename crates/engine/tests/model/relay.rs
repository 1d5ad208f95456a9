//! An independent model of what the boards at a pump could do with their relays: a board may
//! have its relay ON only from an answer that said ON until it hears OFF, that answer's lease
//! runs out or the board reboots. Metering is checked against it: a run is never charged for
//! more than this.

use std::collections::BTreeMap;

use pumppilot_engine::{DeviceId, PollAnswer, Timestamp};

/// What every board of one pump was told, and when its relay could have been ON.
#[derive(Debug, Default)]
pub struct RelayModel {
    /// Boards holding an ON answer: since when, and until when its lease lasts.
    holding: BTreeMap<DeviceId, (i64, i64)>,
    /// Closed intervals (ms) in which some board could have had its relay ON.
    closed: Vec<(i64, i64)>,
}

impl RelayModel {
    /// A board heard `answer` at `now` (with the lease the answer gives).
    pub fn heard(&mut self, device: DeviceId, answer: &PollAnswer, now: Timestamp) {
        let now = now.millis();
        let lease_end = now + i64::from(answer.lease_ms);
        let held = self.holding.remove(&device);
        match held {
            Some((since, end)) if answer.commands_on() && end > now => {
                self.holding.insert(device, (since, lease_end));
            }
            _ if answer.commands_on() => {
                if let Some((since, end)) = held {
                    self.closed.push((since, end));
                }
                self.holding.insert(device, (now, lease_end));
            }
            Some((since, end)) => self.closed.push((since, end.min(now))),
            None => {}
        }
    }

    /// A board booted at `at`: it forgot the answer it held, so its relay could not be ON since.
    pub fn rebooted(&mut self, device: DeviceId, at: Timestamp) {
        if let Some((since, end)) = self.holding.remove(&device) {
            self.closed.push((since, end.min(at.millis())));
        }
    }

    /// Every board is told OFF at `now` (the store failed: every poll answers OFF from then on).
    pub fn all_off(&mut self, now: Timestamp) {
        for (_, (since, end)) in std::mem::take(&mut self.holding) {
            self.closed.push((since, end.min(now.millis())));
        }
    }

    /// Milliseconds in `[from, to)` in which some relay could have been ON.
    pub fn possible_ms(&self, from: Timestamp, to: Timestamp) -> i64 {
        let (from, to) = (from.millis(), to.millis());
        let mut spans: Vec<(i64, i64)> = self
            .closed
            .iter()
            .chain(self.holding.values())
            .map(|&(s, e)| (s.max(from), e.min(to)))
            .filter(|(s, e)| s < e)
            .collect();
        spans.sort_unstable();
        let (mut total, mut reach) = (0, i64::MIN);
        for (s, e) in spans {
            let s = s.max(reach);
            if e > s {
                total += e - s;
                reach = e;
            }
        }
        total
    }
}
