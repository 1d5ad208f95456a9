//! Restart protection: what the pump maker asks of the motor, and what the motor did lately.
//!
//! A start is the command going from OFF to ON. A handover from one farmer's run to the next
//! without the command going OFF is not a start. A board that boots stops the motor: the command
//! counts as OFF from the boot, and an ON told after it that never reached the board is no start;
//! nor is an ON the board says it never took (it reports its relay open without a command, and
//! no report since the ON said the relay closed). The rules:
//! - the command stays OFF at least `min_off_ms` after it last went OFF;
//! - after load shedding ends (or the board came back from a power cut), the grid must have been
//!   up `grid_settle_ms` before ON;
//! - at most `max_starts_per_hour` starts in any hour (0 = no cap).

use serde::{Deserialize, Serialize};

use crate::{HoldReason, Timestamp};

/// One hour, the window of the starts cap.
pub const HOUR_MS: i64 = 3_600_000;

/// The restart protection in force for one pump.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MotorRules {
    /// The least time the relay stays open before it may close again.
    pub min_off_ms: i64,
    /// How long the grid must be up after load shedding before the relay may close.
    pub grid_settle_ms: i64,
    /// The most starts in any hour; 0 = no cap.
    pub max_starts_per_hour: u32,
}

impl MotorRules {
    /// No protection at all: the engine's default, so that a rule test chooses what it tests.
    /// The server passes its own defaults (`PUMPPILOT_MIN_OFF_MS`, …).
    pub const NONE: MotorRules = MotorRules { min_off_ms: 0, grid_settle_ms: 0, max_starts_per_hour: 0 };
}

impl Default for MotorRules {
    fn default() -> Self {
        MotorRules::NONE
    }
}

/// The pump owner's own choices for their motor; `None` takes the server's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MotorSettings {
    pub min_off_ms: Option<i64>,
    pub grid_settle_ms: Option<i64>,
    pub max_starts_per_hour: Option<u32>,
}

impl MotorSettings {
    /// These choices over `defaults`.
    pub fn over(&self, defaults: MotorRules) -> MotorRules {
        MotorRules {
            min_off_ms: self.min_off_ms.unwrap_or(defaults.min_off_ms),
            grid_settle_ms: self.grid_settle_ms.unwrap_or(defaults.grid_settle_ms),
            max_starts_per_hour: self.max_starts_per_hour.unwrap_or(defaults.max_starts_per_hour),
        }
    }
}

/// What the motor command did lately: restart protection's memory, stored with the tenant.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MotorHistory {
    /// The command is ON (a run is RUNNING).
    pub on: bool,
    /// When the command last went from ON to OFF.
    pub off_since: Option<Timestamp>,
    /// When the grid last came back (load shedding ended, or the board powered up).
    pub grid_up_since: Option<Timestamp>,
    /// The starts of the last hour, oldest first.
    pub starts: Vec<Timestamp>,
}

impl MotorHistory {
    /// Why the command may not go ON at `at`, and until when; `None` when it may (or is ON
    /// already, so nothing would start).
    pub fn wait_at(&self, rules: MotorRules, at: Timestamp) -> Option<(HoldReason, Timestamp)> {
        if self.on {
            return None;
        }
        let mut wait: Option<(HoldReason, Timestamp)> = None;
        let mut consider = |reason: HoldReason, until: Timestamp| {
            if until > at && wait.is_none_or(|(_, later)| until > later) {
                wait = Some((reason, until));
            }
        };
        if let Some(off) = self.off_since {
            consider(HoldReason::RestartWait, off + rules.min_off_ms);
        }
        if rules.max_starts_per_hour > 0 {
            let recent: Vec<&Timestamp> = self.starts.iter().filter(|s| **s + HOUR_MS > at).collect();
            let cap = rules.max_starts_per_hour as usize;
            if recent.len() >= cap {
                // The start that must leave the window before another fits.
                consider(HoldReason::RestartWait, *recent[recent.len() - cap] + HOUR_MS);
            }
        }
        if let Some(up) = self.grid_up_since {
            consider(HoldReason::GridSettling, up + rules.grid_settle_ms);
        }
        wait
    }

    /// The command went ON at `at`.
    pub(crate) fn switched_on(&mut self, at: Timestamp) {
        if !self.on {
            self.on = true;
            self.starts.retain(|s| *s + HOUR_MS > at);
            self.starts.push(at);
        }
    }

    /// The board's relay opened at `at`, because the board booted, under the ON command told at
    /// `told_at` (that the command is still ON, or went OFF after `at`): the motor stopped then.
    /// An ON told after the boot never reached the board (it had taken no answer since), so it
    /// started nothing and does not count as a start.
    pub(crate) fn relay_opened(&mut self, at: Timestamp, told_at: Timestamp) {
        self.on = false;
        if told_at > at {
            self.starts.retain(|s| *s < told_at);
        }
        self.off_since = Some(at);
    }

    /// The ON told at `told_at` never closed the relay: the board did not take it. It started
    /// nothing, so it is no start, and the motor has rested since it last stopped.
    pub(crate) fn not_started(&mut self, told_at: Timestamp) {
        self.on = false;
        self.starts.retain(|s| *s < told_at);
    }

    /// The command went OFF at `at`.
    pub(crate) fn switched_off(&mut self, at: Timestamp) {
        if self.on {
            self.on = false;
            self.off_since = Some(at);
        }
    }
}
