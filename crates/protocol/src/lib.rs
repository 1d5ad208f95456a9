//! The device poll contract: what an ESP32 at the pump reports and what the server answers.
//!
//! One `no_std` crate shared by the server, the firmware and the simulator, so the three cannot
//! drift. Field names on the wire are camelCase, as in `API.md`.
#![no_std]

use serde::{Deserialize, Serialize};

pub mod json;

/// Path of the poll endpoint.
pub const POLL_PATH: &str = "/api/esp32/poll";
/// Longest long-poll wait the server honours, in milliseconds.
pub const MAX_WAIT_MS: u32 = 30_000;
/// Largest answer a device needs to accept; anything longer is treated as garbage (motor OFF).
pub const MAX_ANSWER_BYTES: usize = 256;

/// What the server tells the relay to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Motor {
    On,
    Off,
}

/// The state of the tenant's motor as the server sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MotorState {
    /// Nothing is active.
    Idle,
    /// A run is active and charging.
    Running,
    /// A run is active but paused; nothing is charged.
    Hold,
}

impl MotorState {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            MotorState::Idle => "IDLE",
            MotorState::Running => "RUNNING",
            MotorState::Hold => "HOLD",
        }
    }
}

/// Why an active run is paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HoldReason {
    /// The device reports that the grid is down.
    LoadShedding,
    /// The device reports that the pump is not ready.
    DeviceNotReady,
    /// The device has not polled within its lease.
    DeviceOffline,
}

impl HoldReason {
    /// The wire name, as used in JSON and in the store.
    pub const fn as_str(self) -> &'static str {
        match self {
            HoldReason::LoadShedding => "LOAD_SHEDDING",
            HoldReason::DeviceNotReady => "DEVICE_NOT_READY",
            HoldReason::DeviceOffline => "DEVICE_OFFLINE",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "LOAD_SHEDDING" => Some(HoldReason::LoadShedding),
            "DEVICE_NOT_READY" => Some(HoldReason::DeviceNotReady),
            "DEVICE_OFFLINE" => Some(HoldReason::DeviceOffline),
            _ => None,
        }
    }
}

/// The inputs a device reports at every poll (JSON body of `POST /api/esp32/poll`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollReport<'a> {
    /// The grid is down (debounced on the device).
    pub load_shedding: bool,
    /// The pump says it is ready (debounced on the device).
    pub ready: bool,
    /// The relay is energised right now.
    pub relay: bool,
    /// Firmware version string.
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub fw: Option<&'a str>,
    /// Milliseconds since the device booted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_ms: Option<u64>,
    /// WiFi signal strength in dBm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rssi: Option<i16>,
}

/// The server's answer to a poll: small and flat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollAnswer {
    /// ON only when `state` is RUNNING under the conditions the very report gave.
    pub motor: Motor,
    pub state: MotorState,
    pub hold_reason: Option<HoldReason>,
    /// Remaining time of the active run (0 when idle).
    pub remaining_seconds: u32,
    /// When to poll next.
    pub poll_ms: u32,
    /// How long this answer may be trusted; after that the device switches OFF by itself.
    pub lease_ms: u32,
    /// Increases whenever the command (motor, state, hold reason) changes.
    pub seq: u64,
}

impl PollAnswer {
    /// True when this answer, taken alone, commands the relay ON.
    pub const fn commands_on(&self) -> bool {
        matches!(self.motor, Motor::On) && matches!(self.state, MotorState::Running)
    }
}

/// Path of the card endpoint: a device reports an RFID card held to its reader.
pub const CARD_PATH: &str = "/api/esp32/rfid";

/// A card held to the reader (JSON body of `POST /api/esp32/rfid`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardTap<'a> {
    /// The card's UID as upper-case hex, 4 to 10 bytes (8 to 20 characters), e.g. `"04A1B2C3"`.
    #[serde(borrow)]
    pub uid: &'a str,
}

/// What the server did with a card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CardAction {
    /// The card holder's run started (RUNNING or HOLD).
    Started,
    /// The card holder joined the queue (WAITING).
    Queued,
    /// The card holder's own active run ended.
    Stopped,
    /// Unknown card, suspended holder, no minutes, or another refusal.
    Denied,
}

/// The part of the card answer a device needs (`{action, entry?}`; other fields are ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardAnswer {
    pub action: CardAction,
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    #[test]
    fn answer_matches_the_documented_shape() {
        let answer = PollAnswer {
            motor: Motor::On,
            state: MotorState::Running,
            hold_reason: None,
            remaining_seconds: 0,
            poll_ms: 5000,
            lease_ms: 15000,
            seq: 42,
        };
        let json = serde_json::to_string(&answer).unwrap();
        assert_eq!(
            json,
            r#"{"motor":"ON","state":"RUNNING","holdReason":null,"remainingSeconds":0,"pollMs":5000,"leaseMs":15000,"seq":42}"#
        );
        assert!(json.len() < MAX_ANSWER_BYTES);
        assert!(answer.commands_on());
    }

    #[test]
    fn report_reads_the_minimal_body() {
        let report: PollReport = serde_json::from_str(r#"{"loadShedding":true,"ready":false,"relay":false}"#).unwrap();
        assert!(report.load_shedding && !report.ready && !report.relay);
        assert_eq!(report.fw, None);
    }

    #[test]
    fn hold_is_never_on() {
        let answer = PollAnswer {
            motor: Motor::On,
            state: MotorState::Hold,
            hold_reason: Some(HoldReason::LoadShedding),
            remaining_seconds: 10,
            poll_ms: 5000,
            lease_ms: 15000,
            seq: 1,
        };
        assert!(!answer.commands_on());
        for reason in [HoldReason::LoadShedding, HoldReason::DeviceNotReady, HoldReason::DeviceOffline] {
            assert_eq!(HoldReason::parse(reason.as_str()), Some(reason));
        }
    }
}
