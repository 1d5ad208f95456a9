//! The device poll contract: what an ESP32 at the pump reports and what the server answers.
//!
//! One `no_std` crate shared by the server, the firmware and the simulator, so the three cannot
//! drift. Field names on the wire are camelCase, as in `API.md`.
#![no_std]

use serde::{Deserialize, Serialize};

pub mod firmware;
pub mod json;
pub mod link;

/// Path of the poll endpoint.
pub const POLL_PATH: &str = "/api/esp32/poll";
/// Longest long-poll wait the server honours, in milliseconds.
pub const MAX_WAIT_MS: u32 = 30_000;
/// Largest answer a device needs to accept; anything longer is treated as garbage (motor OFF).
/// The longest answer this crate can describe (every number at its maximum, the longest hold
/// reason) is about 260 bytes; the rest is room for fields a later server adds.
pub const MAX_ANSWER_BYTES: usize = 512;

/// What the server tells the relay to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Motor {
    On,
    Off,
}

impl Motor {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Motor::On => "ON",
            Motor::Off => "OFF",
        }
    }
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
    /// Load shedding has ended, and the grid has not yet been up for the settle time.
    GridSettling,
    /// The motor stopped too recently (minimum OFF time), or it has started as often in the
    /// last hour as the motor allows.
    RestartWait,
    /// The relay was ON but the device's feedback input never confirmed that the motor runs.
    NoFeedback,
    /// The server cannot record the run, so it holds it rather than run uncharged.
    StoreUnavailable,
}

impl HoldReason {
    /// The wire name, as used in JSON and in the store.
    pub const fn as_str(self) -> &'static str {
        match self {
            HoldReason::LoadShedding => "LOAD_SHEDDING",
            HoldReason::DeviceNotReady => "DEVICE_NOT_READY",
            HoldReason::DeviceOffline => "DEVICE_OFFLINE",
            HoldReason::GridSettling => "GRID_SETTLING",
            HoldReason::RestartWait => "RESTART_WAIT",
            HoldReason::NoFeedback => "NO_FEEDBACK",
            HoldReason::StoreUnavailable => "STORE_UNAVAILABLE",
        }
    }

    /// Every reason, in declaration order.
    pub const ALL: [HoldReason; 7] = [
        HoldReason::LoadShedding,
        HoldReason::DeviceNotReady,
        HoldReason::DeviceOffline,
        HoldReason::GridSettling,
        HoldReason::RestartWait,
        HoldReason::NoFeedback,
        HoldReason::StoreUnavailable,
    ];

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "LOAD_SHEDDING" => Some(HoldReason::LoadShedding),
            "DEVICE_NOT_READY" => Some(HoldReason::DeviceNotReady),
            "DEVICE_OFFLINE" => Some(HoldReason::DeviceOffline),
            "GRID_SETTLING" => Some(HoldReason::GridSettling),
            "RESTART_WAIT" => Some(HoldReason::RestartWait),
            "NO_FEEDBACK" => Some(HoldReason::NoFeedback),
            "STORE_UNAVAILABLE" => Some(HoldReason::StoreUnavailable),
            _ => None,
        }
    }
}

/// Why the board last started, as its chip tells it at boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ResetReason {
    /// Power was switched on (or came back after a cut).
    PowerOn,
    /// The supply voltage sagged below what the chip needs.
    BrownOut,
    /// A watchdog fired: the firmware hung.
    Watchdog,
    /// The firmware panicked and restarted itself.
    Panic,
    /// The firmware asked for a restart (an update, a settings change).
    Software,
    /// Anything else the chip can report (external reset pin, deep-sleep wake, ...).
    Other,
}

/// Why a device's relay is open, as the device reports it (`relayOff`, beside `relay: false`).
/// It tells the server whether the motor is stopped for want of a command, or by the device's own
/// rule although it holds an ON command (then the run is not charged until the relay closes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RelayOff {
    /// No fresh ON command: none since boot, the last one said OFF, its lease ran out, or the
    /// device's clock went back.
    NoCommand,
    /// The debounced load-shedding input says the grid is down (or has not settled).
    LoadShedding,
    /// The debounced ready input says the pump is not ready (or has not settled).
    NotReady,
    /// The grid has not been up for the answer's `gridSettleMs` yet.
    GridSettling,
    /// Restart protection: the relay opened less than `minOffMs` ago, or `maxStartsPerHour`
    /// closings happened in the last hour.
    RestartWait,
    /// The feedback input did not confirm that the motor runs; OFF until the next command.
    NoFeedback,
}

impl RelayOff {
    /// True when the device holds a fresh ON command and keeps its relay open by its own rule.
    pub const fn holds_command(self) -> bool {
        !matches!(self, RelayOff::NoCommand)
    }
}

/// Whether the RFID reader answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReaderState {
    /// The reader answered its last check.
    Ok,
    /// The reader does not answer (not fitted, unplugged, or upset by noise); the device keeps
    /// trying to set it up again.
    Absent,
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
    /// Why the board last started; sent in the first poll after boot only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset: Option<ResetReason>,
    /// The motor-running feedback input (contactor auxiliary contact or current sensor),
    /// debounced, on boards that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<bool>,
    /// Whether the RFID reader answers, on boards that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reader: Option<ReaderState>,
    /// Why the relay is OFF, when it is (devices that know it say it; older ones leave it out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_off: Option<RelayOff>,
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
    /// Restart protection: the relay stays open at least this long after it last opened.
    pub min_off_ms: u32,
    /// Restart protection: after load shedding ends, the grid must be up this long before ON.
    pub grid_settle_ms: u32,
    /// Restart protection: at most this many starts in any hour (0 = no cap).
    pub max_starts_per_hour: u8,
}

impl PollAnswer {
    /// True when this answer, taken alone, commands the relay ON.
    pub const fn commands_on(&self) -> bool {
        matches!(self.motor, Motor::On) && matches!(self.state, MotorState::Running)
    }

    /// True when this answer, to a report that said the relay is `relay`, would only repeat
    /// `told`, the last command the device was sent on its MQTT connection (one naming a report):
    /// it does not run the pump, it is the same in every field, and the device's relay is open as
    /// told. Over MQTT such an answer is not sent (`docs/DEVICE.md`, "MQTT"): an idle pump's
    /// device hears from the server when something changes, not after every report. An ON is
    /// always sent (each one renews its lease), and so is any answer to a device whose relay is
    /// closed when it should not be (a command it never got is sent again).
    pub fn repeats(&self, told: &PollAnswer, relay: bool) -> bool {
        !self.commands_on() && !relay && self == told
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
    /// The tap's id: one number for one tap, the same in each of its retries, another for the
    /// next tap (the controller counts them from a random point at each boot). The server acts on
    /// a tap once per id, however late a copy of it comes. Older firmware sends none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tap: Option<u32>,
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
    use std::string::String;

    use super::*;

    fn running() -> PollAnswer {
        PollAnswer {
            motor: Motor::On,
            state: MotorState::Running,
            hold_reason: None,
            remaining_seconds: 0,
            poll_ms: 5000,
            lease_ms: 15000,
            seq: 42,
            min_off_ms: 60000,
            grid_settle_ms: 60000,
            max_starts_per_hour: 6,
        }
    }

    #[test]
    fn answer_matches_the_documented_shape() {
        let answer = running();
        let json = serde_json::to_string(&answer).unwrap();
        assert_eq!(
            json,
            r#"{"motor":"ON","state":"RUNNING","holdReason":null,"remainingSeconds":0,"pollMs":5000,"leaseMs":15000,"seq":42,"minOffMs":60000,"gridSettleMs":60000,"maxStartsPerHour":6}"#
        );
        assert!(answer.commands_on());
    }

    #[test]
    fn the_longest_answer_fits_with_room_for_later_fields() {
        for reason in HoldReason::ALL {
            let longest = PollAnswer {
                motor: Motor::Off,
                state: MotorState::Running,
                hold_reason: Some(reason),
                remaining_seconds: u32::MAX,
                poll_ms: u32::MAX,
                lease_ms: u32::MAX,
                seq: u64::MAX,
                min_off_ms: u32::MAX,
                grid_settle_ms: u32::MAX,
                max_starts_per_hour: u8::MAX,
            };
            let json: String = serde_json::to_string(&longest).unwrap();
            assert!(json.len() + 200 <= MAX_ANSWER_BYTES, "{} bytes: {json}", json.len());
        }
    }

    #[test]
    fn report_reads_the_minimal_body() {
        let report: PollReport = serde_json::from_str(r#"{"loadShedding":true,"ready":false,"relay":false}"#).unwrap();
        assert!(report.load_shedding && !report.ready && !report.relay);
        assert_eq!((report.fw, report.reset, report.feedback, report.reader), (None, None, None, None));
    }

    #[test]
    fn report_carries_the_reset_reason_feedback_and_reader() {
        let report: PollReport = serde_json::from_str(
            r#"{"loadShedding":false,"ready":true,"relay":true,"reset":"BROWN_OUT","feedback":false,"reader":"ABSENT"}"#,
        )
        .unwrap();
        assert_eq!(
            (report.reset, report.feedback, report.reader),
            (Some(ResetReason::BrownOut), Some(false), Some(ReaderState::Absent))
        );
        let names = [
            (ResetReason::PowerOn, "POWER_ON"),
            (ResetReason::BrownOut, "BROWN_OUT"),
            (ResetReason::Watchdog, "WATCHDOG"),
            (ResetReason::Panic, "PANIC"),
            (ResetReason::Software, "SOFTWARE"),
            (ResetReason::Other, "OTHER"),
        ];
        for (reason, name) in names {
            assert_eq!(serde_json::to_string(&reason).unwrap(), std::format!("\"{name}\""));
        }
        assert_eq!(serde_json::to_string(&ReaderState::Ok).unwrap(), "\"OK\"");
        let waiting: PollReport =
            serde_json::from_str(r#"{"loadShedding":false,"ready":true,"relay":false,"relayOff":"RESTART_WAIT"}"#)
                .unwrap();
        assert_eq!(waiting.relay_off, Some(RelayOff::RestartWait));
        assert!(RelayOff::RestartWait.holds_command() && !RelayOff::NoCommand.holds_command());
        let names = [
            (RelayOff::NoCommand, "NO_COMMAND"),
            (RelayOff::LoadShedding, "LOAD_SHEDDING"),
            (RelayOff::NotReady, "NOT_READY"),
            (RelayOff::GridSettling, "GRID_SETTLING"),
            (RelayOff::RestartWait, "RESTART_WAIT"),
            (RelayOff::NoFeedback, "NO_FEEDBACK"),
        ];
        for (reason, name) in names {
            assert_eq!(serde_json::to_string(&reason).unwrap(), std::format!("\"{name}\""));
        }
        assert!(
            serde_json::from_str::<PollReport>(
                r#"{"loadShedding":false,"ready":true,"relay":true,"reset":"COSMIC_RAY"}"#
            )
            .is_err()
        );
    }

    #[test]
    fn hold_is_never_on() {
        let answer = PollAnswer { state: MotorState::Hold, hold_reason: Some(HoldReason::LoadShedding), ..running() };
        assert!(!answer.commands_on());
        for reason in HoldReason::ALL {
            assert_eq!(HoldReason::parse(reason.as_str()), Some(reason));
            let wire = serde_json::to_string(&reason).unwrap();
            assert_eq!(wire, std::format!("\"{}\"", reason.as_str()));
            assert!(!PollAnswer { state: MotorState::Hold, hold_reason: Some(reason), ..running() }.commands_on());
        }
        assert_eq!(HoldReason::parse("NO_SUCH_REASON"), None);
    }
}
