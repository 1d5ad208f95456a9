//! Build-time settings from environment variables (see README): the board's wiring options, and
//! the development/CI fallback for the settings a technician normally sets up on site (used only
//! when the `settings` partition holds no intact record; `settings.rs`). Every value has a safe
//! default so the image builds without any of them; a malformed value stops the build with a
//! message naming the variable (the parsers run in `const` context).

use pumppilot_controller::{FeedbackInput, LinkSecret, Settings, setup::DeviceSettings};

/// A yes/no variable: `1`/`true`, `0`/`false`, or unset/empty for the default.
macro_rules! flag {
    ($name:literal, $default:expr) => {
        parse_flag(option_env!($name), $default, concat!($name, " must be 1, 0, true or false"))
    };
}

/// A number of milliseconds, or unset/empty for the default.
macro_rules! number {
    ($name:literal, $default:expr) => {
        parse_number(option_env!($name), $default, concat!($name, " must be a number of milliseconds"))
    };
}

/// WiFi network name. Empty: no built-in settings (setup mode unless the flash holds some).
pub const WIFI_SSID: &str = text(option_env!("PUMPPILOT_WIFI_SSID"));
/// WiFi password (WPA2-Personal). Empty: an open network.
pub const WIFI_PASSWORD: &str = text(option_env!("PUMPPILOT_WIFI_PASSWORD"));
/// The server: `host:port`, `host`, or `http://host[:port]`. Empty: the device never polls.
pub const SERVER: &str = text(option_env!("PUMPPILOT_SERVER"));
/// The device key from `POST /api/admin/devices` (sent as `Authorization: Bearer <key>`).
pub const DEVICE_KEY: &str = text(option_env!("PUMPPILOT_DEVICE_KEY"));
/// The link secret shown with the device key (`pp_link_…`): every request is signed with it and
/// only answers whose MAC checks are used. Empty: unsigned polls with the key alone (accepted
/// only for a device that has never signed one; see docs/DEVICE.md).
pub const LINK_SECRET_TEXT: &str = text(option_env!("PUMPPILOT_LINK_SECRET"));
/// Checked at build time: a malformed secret stops the build.
const _: Option<LinkSecret> = match LINK_SECRET_TEXT.as_bytes() {
    b"" => None,
    _ => match LinkSecret::parse(LINK_SECRET_TEXT) {
        Some(secret) => Some(secret),
        None => panic!("PUMPPILOT_LINK_SECRET must be the pp_link_… secret shown with the device key"),
    },
};
/// The device's id on the server (needed for MQTT: its user name).
pub const DEVICE_ID: &str = text(option_env!("PUMPPILOT_DEVICE_ID"));
/// `http` (the default) or `mqtt`.
pub const TRANSPORT: &str = text(option_env!("PUMPPILOT_TRANSPORT"));
/// The MQTT broker `host[:port]`; empty: the server's host, port 1883.
pub const MQTT_BROKER: &str = text(option_env!("PUMPPILOT_MQTT_BROKER"));

/// The public key firmware updates must be signed for (`pumppilot firmware keygen`, 64 hex
/// digits). Empty: no updates over the air.
pub const FIRMWARE_KEY: Option<[u8; 32]> = parse_key(
    option_env!("PUMPPILOT_FIRMWARE_PUBLIC_KEY"),
    "PUMPPILOT_FIRMWARE_PUBLIC_KEY must be the 64 hex digits `pumppilot firmware keygen` printed",
);

/// The load-shedding input is high while the grid is down (`1`, the default) or low (`0`).
pub const LOAD_SHEDDING_ACTIVE_HIGH: bool = flag!("PUMPPILOT_LOAD_SHEDDING_ACTIVE_HIGH", true);
/// The ready input is high while the pump is ready (`1`, the default) or low (`0`).
pub const READY_ACTIVE_HIGH: bool = flag!("PUMPPILOT_READY_ACTIVE_HIGH", true);
/// The relay output switches the motor ON with a high level (`1`, the default) or low (`0`, most
/// relay modules with an active-low input).
pub const RELAY_ACTIVE_HIGH: bool = flag!("PUMPPILOT_RELAY_ACTIVE_HIGH", true);
/// The optocoupler output switches ON with a high level (`1`, the default: LED from the pin to GND).
pub const OPTO_ACTIVE_HIGH: bool = flag!("PUMPPILOT_OPTO_ACTIVE_HIGH", true);
/// Input debounce time in milliseconds (default 50).
pub const DEBOUNCE_MS: u32 = number!("PUMPPILOT_DEBOUNCE_MS", 50);

/// A motor-running feedback input is wired (a contactor's auxiliary contact or a current sensor
/// on the profile's feedback pin): `1`, or `0` (the default) for none.
pub const FEEDBACK: bool = flag!("PUMPPILOT_FEEDBACK", false);
/// The feedback input is high while the motor runs (`1`, the default) or low (`0`).
pub const FEEDBACK_ACTIVE_HIGH: bool = flag!("PUMPPILOT_FEEDBACK_ACTIVE_HIGH", true);
/// How long the relay may be closed without the feedback input confirming the motor runs
/// (default 5000 ms); then the relay opens and the report says so.
pub const FEEDBACK_CONFIRM_MS: u32 = number!("PUMPPILOT_FEEDBACK_CONFIRM_MS", 5_000);

/// Firmware version reported at every poll.
pub const FIRMWARE: &str = concat!("pumppilot-fw/", env!("CARGO_PKG_VERSION"));

/// The decision crate's settings for this device.
pub const SETTINGS: Settings = Settings {
    load_shedding_active_high: LOAD_SHEDDING_ACTIVE_HIGH,
    ready_active_high: READY_ACTIVE_HIGH,
    debounce_ms: DEBOUNCE_MS,
    feedback: if FEEDBACK {
        Some(FeedbackInput { active_high: FEEDBACK_ACTIVE_HIGH, confirm_ms: FEEDBACK_CONFIRM_MS })
    } else {
        None
    },
    firmware: Some(FIRMWARE),
    ..Settings::DEFAULT
};

const fn text(value: Option<&'static str>) -> &'static str {
    match value {
        Some(value) => value,
        None => "",
    }
}

const fn parse_flag(value: Option<&str>, default: bool, error: &str) -> bool {
    let Some(value) = value else { return default };
    match value.as_bytes() {
        b"" => default,
        b"1" | b"true" => true,
        b"0" | b"false" => false,
        _ => panic!("{}", error),
    }
}

const fn parse_key(value: Option<&str>, error: &str) -> Option<[u8; 32]> {
    let Some(value) = value else { return None };
    let bytes = value.as_bytes();
    if bytes.is_empty() {
        return None;
    }
    if bytes.len() != 64 {
        panic!("{}", error);
    }
    let mut key = [0u8; 32];
    let mut i = 0;
    while i < 64 {
        key[i / 2] = hex_digit(bytes[i], error) * 16 + hex_digit(bytes[i + 1], error);
        i += 2;
    }
    Some(key)
}

const fn hex_digit(b: u8, error: &str) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        b'A'..=b'F' => b - b'A' + 10,
        _ => panic!("{}", error),
    }
}

const fn parse_number(value: Option<&str>, default: u32, error: &str) -> u32 {
    let Some(value) = value else { return default };
    let bytes = value.as_bytes();
    if bytes.is_empty() {
        return default;
    }
    let mut n: u32 = 0;
    let mut i = 0;
    while i < bytes.len() {
        let digit = bytes[i];
        if !digit.is_ascii_digit() || n > (u32::MAX - 9) / 10 {
            panic!("{}", error);
        }
        n = n * 10 + (digit - b'0') as u32;
        i += 1;
    }
    n
}

/// How the server is reached: from the device's settings (checked there: `host[:port]`, plain
/// HTTP, https refused).
pub struct Server {
    pub host: heapless::String<96>,
    pub port: u16,
    /// `Bearer <device key>`.
    pub authorization: heapless::String<80>,
}

impl Server {
    pub fn new(settings: &DeviceSettings) -> Server {
        let (host, port) = settings.server_address();
        let mut server = Server { host: heapless::String::new(), port, authorization: heapless::String::new() };
        // Both fit: the settings' checks bound the server to 96 bytes and the key to 64.
        let _ = server.host.push_str(host);
        let _ = server.authorization.push_str("Bearer ");
        let _ = server.authorization.push_str(settings.device_key.as_str());
        server
    }
}
