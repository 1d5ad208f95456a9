//! Where a farmer's Start spends its time on its way to the relay, when several servers share a
//! store: the Start is committed at the server the farmer asked, and the store's change feed tells
//! the device's server, which takes the committed state from it (or reads the pump again, when the
//! feed did not carry it) and sends the command. Each step is a debug event of the target
//! [`TARGET`] with the pump's tenant and the wall clock in microseconds, so one Start's steps at
//! two servers line up (the fleet bench does: `pumppilot bench --fleet`). Off, and next to free,
//! unless the log asks for the target (`PUMPPILOT_LOG=info,pumppilot::start_path=debug`).
//!
//! The wall clock, not the server's clock: a server on a test's clock still stamps real time.

use std::time::{SystemTime, UNIX_EPOCH};

use pumppilot_engine::AdminId;

/// The log target of the steps.
pub const TARGET: &str = "pumppilot::start_path";

/// A step of a Start, in the order it passes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The server the farmer asked took the request (signed in).
    Asked,
    /// The engine applied it and the store committed it there.
    Committed,
    /// Another server heard the commit from the change feed (and takes the state it carries).
    Heard,
    /// That server has read the pump again (when the feed did not carry the state).
    Read,
    /// The device's server sent the command (MQTT) or answered its long-poll.
    Sent,
}

impl Step {
    /// Every step, in order.
    pub const ALL: [Step; 5] = [Step::Asked, Step::Committed, Step::Heard, Step::Read, Step::Sent];

    /// The step's name in the log.
    pub const fn name(self) -> &'static str {
        match self {
            Step::Asked => "asked",
            Step::Committed => "committed",
            Step::Heard => "heard",
            Step::Read => "read",
            Step::Sent => "sent",
        }
    }
}

/// Logs `step` of a Start of `tenant`'s pump, when the log asks for [`TARGET`].
pub fn note(step: Step, tenant: AdminId) {
    if tracing::enabled!(target: TARGET, tracing::Level::DEBUG) {
        let at_us = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_micros();
        tracing::debug!(target: TARGET, step = step.name(), %tenant, at_us, "start path");
    }
}

/// One step read back from a log line written by [`note`]: the step, the tenant (as logged) and
/// the wall clock in microseconds.
pub fn parse(line: &str) -> Option<(Step, &str, u128)> {
    let (_, fields) = line.split_once("start path ")?;
    let (mut step, mut tenant, mut at) = (None, None, None);
    for field in fields.split_whitespace() {
        match field.split_once('=')? {
            ("step", name) => step = Step::ALL.into_iter().find(|s| s.name() == name.trim_matches('"')),
            ("tenant", id) => tenant = Some(id),
            ("at_us", us) => at = us.parse().ok(),
            _ => {}
        }
    }
    Some((step?, tenant?, at?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_logged_step_reads_back() {
        let line =
            r#"2026-12-05T17:38:43.654100Z DEBUG start path step="committed" tenant=01a2 at_us=1796492323654096"#;
        assert_eq!(parse(line), Some((Step::Committed, "01a2", 1_796_492_323_654_096)));
        assert_eq!(parse("2026-12-05T17:38:43Z  WARN something else"), None);
        assert_eq!(parse(r#"x start path step="later" tenant=01a2 at_us=1"#), None);
    }
}
