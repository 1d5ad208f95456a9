//! Settings, read once from the environment and validated before anything starts.
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `PUMPPILOT_BIND` | `127.0.0.1:8080` | address to listen on |
//! | `PUMPPILOT_DATABASE_URL` | `sqlite://./data/pumppilot.db` | store; `sqlite::memory:` or `mongodb://…` |
//! | `PUMPPILOT_SECRET` | generated beside the SQLite file | key for hashing tokens and device keys |
//! | `PUMPPILOT_DEVICE_LEASE_MS` | `15000` | how long a device trusts an answer |
//! | `PUMPPILOT_POLL_INTERVAL_MS` | `5000` | how often devices poll |
//! | `PUMPPILOT_MIN_OFF_MS` | `60000` | restart protection: least time the motor stays OFF before it may start again |
//! | `PUMPPILOT_GRID_SETTLE_MS` | `60000` | restart protection: how long the grid must be back before ON |
//! | `PUMPPILOT_MAX_STARTS_PER_HOUR` | `6` | restart protection: most starts in any hour (0 = no cap) |
//! | `PUMPPILOT_MAX_HASHING` | `4` | most password hashes at once (about 19 MiB each), 1 to 64 |
//! | `PUMPPILOT_MAX_CONNECTIONS` | ¾ of the open-file limit | connections served at once, HTTP and MQTT together; more wait to be accepted, and connections idle for over a second (or whose body fell a second behind a kilobyte a second) are closed to make room |
//! | `PUMPPILOT_MAX_STREAMS` | ¼ of the open-file limit | live event streams open at once; more get 503 `BUSY` |
//! | `PUMPPILOT_MASTER_USERNAME` / `_PASSWORD` | — | the first master admin |
//! | `PUMPPILOT_FIRMWARE_PUBLIC_KEY` | — (no uploads) | Ed25519 public key (64 hex digits) firmware uploads must be signed for |
//! | `PUMPPILOT_METRICS_TOKEN` | — | bearer token (16+ characters) that may read `GET /metrics` besides the master |
//! | `PUMPPILOT_TRUSTED_PROXIES` | — | comma-separated CIDRs of reverse proxies whose `X-Forwarded-For` names the client |
//! | `PUMPPILOT_SMS_URL`, `_FORMAT`, `_TEMPLATE`, `_AUTHORIZATION`, `_FROM` | — | the SMS gateway for alerts, `http://` or `https://` (`crate::alerts`) |
//! | `PUMPPILOT_SMS_NUMBER` | — | the number farmers and owners text (START, STOP, BAL, REQ, STATUS, and the code that confirms a phone), shown in the sentences that tell them what to send; without it they read "the pump's SMS number" |
//! | `PUMPPILOT_EXPO_PUSH`, `PUMPPILOT_EXPO_PUSH_URL`, `PUMPPILOT_EXPO_ACCESS_TOKEN` | `off` | Expo push for alerts |
//! | `PUMPPILOT_MQTT_BIND` | — (no MQTT) | address for devices over MQTT 3.1.1, e.g. `127.0.0.1:1883` (`crate::mqtt`) |
//! | `PUMPPILOT_MQTT_CONNECTS_PER_SECOND` | `100` | MQTT CONNECTs each client address may make a second (ten seconds' worth at once), 1 to 100000 |
//! | `PUMPPILOT_MQTT_PROXIES` | — | comma-separated CIDRs of TCP proxies whose MQTT connections begin with a PROXY protocol header naming the device's address |
//! | `PUMPPILOT_MQTT_BROKER` | — | an external broker `mqtt://host:port` PumpPilot connects to as a client (`crate::mqtt::Bridge`) |
//! | `PUMPPILOT_MQTT_BROKER_USERNAME` / `_PASSWORD` | — | PumpPilot's own login at that broker |
//! | `PUMPPILOT_ALERTS_CA_FILE` | — (Mozilla roots only) | PEM file of extra CA certificates trusted for `https://` alerts |

use std::{fmt, net::SocketAddr};

use crate::clock::{self, SharedClock};

/// A secret that never shows in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Everything the server needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub bind: SocketAddr,
    pub database_url: String,
    /// `None`: generate one and keep it beside the SQLite file (or in memory for `sqlite::memory:`).
    pub secret: Option<Secret>,
    pub device_lease_ms: u32,
    pub poll_interval_ms: u32,
    /// Restart protection for every pump whose owner chose nothing else.
    pub min_off_ms: u32,
    pub grid_settle_ms: u32,
    /// 0 = no cap.
    pub max_starts_per_hour: u32,
    /// Most Argon2id password hashes at once (about 19 MiB each); sign-ins beyond wait briefly,
    /// then get 503 `BUSY`.
    pub max_hashing: u32,
    /// Connections served at once (each is a file); beyond, new ones wait in the kernel's backlog
    /// until one closes.
    pub max_connections: u32,
    /// Live event streams (`GET /api/events`) open at once; beyond, 503 `BUSY` with `Retry-After`.
    pub max_streams: u32,
    /// How long a client may take to send a request's head, and how long an idle kept-alive
    /// connection stays open (a slow or silent client holds a connection no longer).
    pub header_timeout: std::time::Duration,
    pub master_username: Option<String>,
    pub master_password: Option<Secret>,
    /// The public key firmware images must be signed for (`pumppilot firmware keygen`); without
    /// one, uploads are refused.
    pub firmware_key: Option<[u8; 32]>,
    /// Reverse proxies (CIDRs) whose `X-Forwarded-For` names the client; from any other peer the
    /// header is ignored (see [`crate::auth::client_ip`]).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// A bearer token that may read `GET /metrics` (a Prometheus scraper), besides the master.
    pub metrics_token: Option<Secret>,
    /// The clock the server runs on: the wall clock, or a [`crate::clock::ManualClock`] in tests.
    pub clock: SharedClock,
    /// Alerts: SMS gateway, Expo push, rate limits, the silent-device alert (`crate::alerts`).
    pub alerts: crate::alerts::AlertSettings,
    /// The number farmers text (the gateway's inbound number), named in the sentences that tell
    /// a farmer what to send from their phone; `None`: those say "the pump's SMS number".
    pub sms_number: Option<String>,
    /// Where devices connect over MQTT (`None`: no MQTT listener).
    pub mqtt_bind: Option<SocketAddr>,
    /// MQTT CONNECTs each client address may make a second (`crate::mqtt::ConnectBudget`).
    pub mqtt_connects_per_second: u32,
    /// TCP proxies in front of the MQTT listener whose connections begin with a PROXY protocol
    /// header (version 1 or 2) naming the device's address, for the CONNECT budget.
    pub mqtt_proxies: Vec<ipnet::IpNet>,
    /// An external broker to serve devices through (`None`: none).
    pub mqtt_broker: Option<crate::mqtt::BrokerSettings>,
    /// The file a first start kept the master's made-up password in (the `pumppilot` binary sets
    /// it; no variable does): when the master changes the password the file holds, it is deleted.
    pub master_password_file: Option<std::path::PathBuf>,
}

/// A setting that cannot be used, named so the operator knows what to fix.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: "sqlite://./data/pumppilot.db".into(),
            secret: None,
            device_lease_ms: 15_000,
            poll_interval_ms: 5_000,
            min_off_ms: 60_000,
            grid_settle_ms: 60_000,
            max_starts_per_hour: 6,
            max_hashing: 4,
            max_connections: default_connections(open_file_limit()),
            max_streams: default_streams(open_file_limit()),
            header_timeout: std::time::Duration::from_secs(20),
            master_username: None,
            master_password: None,
            firmware_key: None,
            trusted_proxies: Vec::new(),
            metrics_token: None,
            clock: clock::system(),
            alerts: crate::alerts::AlertSettings {
                offline_after_ms: 10 * 60_000,
                shedding_after_ms: 180 * 60_000,
                no_command_after_ms: 5 * 60_000,
                ..Default::default()
            },
            sms_number: None,
            mqtt_bind: None,
            mqtt_connects_per_second: 100,
            mqtt_proxies: Vec::new(),
            mqtt_broker: None,
            master_password_file: None,
        }
    }
}

/// The range of a restart wait (minimum OFF time, grid settle time), server-wide or per pump.
pub const MOTOR_WAIT_MS: std::ops::RangeInclusive<u32> = 0..=3_600_000;
/// The range of the starts cap, server-wide or per pump (0 = no cap).
pub const MAX_STARTS: std::ops::RangeInclusive<u32> = 0..=60;
/// The range of `PUMPPILOT_MAX_HASHING` (64 hashes at once is about 1.2 GiB).
pub const MAX_HASHING: std::ops::RangeInclusive<u32> = 1..=64;
/// The range of `PUMPPILOT_MAX_CONNECTIONS` and `PUMPPILOT_MAX_STREAMS`.
pub const MAX_OPEN: std::ops::RangeInclusive<u32> = 1..=1_000_000;

/// The process's open-file limit (each connection is a file), or 1024 when it cannot be read.
pub fn open_file_limit() -> u64 {
    #[cfg(unix)]
    {
        rustix::process::getrlimit(rustix::process::Resource::Nofile).current.unwrap_or(u64::from(u32::MAX))
    }
    #[cfg(not(unix))]
    {
        1024
    }
}

/// Three quarters of the file limit: the rest is for the store, alerts and the log.
fn default_connections(file_limit: u64) -> u32 {
    u32::try_from(file_limit / 4 * 3).unwrap_or(u32::MAX).clamp(64, *MAX_OPEN.end())
}

/// A quarter of the file limit: streams never take every connection from devices and the API.
fn default_streams(file_limit: u64) -> u32 {
    u32::try_from(file_limit / 4).unwrap_or(u32::MAX).clamp(16, *MAX_OPEN.end())
}

impl Settings {
    /// The restart protection of every pump whose owner chose nothing else.
    pub fn motor_rules(&self) -> pumppilot_engine::MotorRules {
        pumppilot_engine::MotorRules {
            min_off_ms: i64::from(self.min_off_ms),
            grid_settle_ms: i64::from(self.grid_settle_ms),
            max_starts_per_hour: self.max_starts_per_hour,
        }
    }

    /// Reads the `PUMPPILOT_*` variables from the process environment.
    pub fn from_env() -> Result<Settings, ConfigError> {
        Settings::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// Reads settings through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
        let mut s = Settings::default();
        if let Some(bind) = lookup("PUMPPILOT_BIND") {
            s.bind = bind.parse().map_err(|_| ConfigError {
                variable: "PUMPPILOT_BIND",
                problem: format!("`{bind}` is not an address like 127.0.0.1:8080"),
            })?;
        }
        if let Some(url) = lookup("PUMPPILOT_DATABASE_URL") {
            s.database_url = url;
        }
        if !(s.database_url.starts_with("sqlite:")
            || s.database_url.starts_with("mongodb://")
            || s.database_url.starts_with("mongodb+srv://"))
        {
            return Err(ConfigError {
                variable: "PUMPPILOT_DATABASE_URL",
                problem: "must start with sqlite:, mongodb:// or mongodb+srv://".into(),
            });
        }
        s.secret = lookup("PUMPPILOT_SECRET").map(Secret);
        if let Some(secret) = &s.secret
            && secret.0.len() < 32
        {
            return Err(ConfigError { variable: "PUMPPILOT_SECRET", problem: "must be at least 32 characters".into() });
        }
        s.device_lease_ms = millis(&lookup, "PUMPPILOT_DEVICE_LEASE_MS", s.device_lease_ms, 100..=600_000)?;
        s.poll_interval_ms = millis(&lookup, "PUMPPILOT_POLL_INTERVAL_MS", s.poll_interval_ms, 50..=300_000)?;
        if s.poll_interval_ms >= s.device_lease_ms {
            return Err(ConfigError {
                variable: "PUMPPILOT_POLL_INTERVAL_MS",
                problem: format!("must be shorter than PUMPPILOT_DEVICE_LEASE_MS ({} ms)", s.device_lease_ms),
            });
        }
        s.min_off_ms = millis(&lookup, "PUMPPILOT_MIN_OFF_MS", s.min_off_ms, MOTOR_WAIT_MS)?;
        s.grid_settle_ms = millis(&lookup, "PUMPPILOT_GRID_SETTLE_MS", s.grid_settle_ms, MOTOR_WAIT_MS)?;
        if let Some(text) = lookup("PUMPPILOT_MAX_STARTS_PER_HOUR") {
            s.max_starts_per_hour =
                text.parse().ok().filter(|n| MAX_STARTS.contains(n)).ok_or_else(|| ConfigError {
                    variable: "PUMPPILOT_MAX_STARTS_PER_HOUR",
                    problem: format!(
                        "`{text}` must be a whole number of starts from {} (no cap) to {}",
                        MAX_STARTS.start(),
                        MAX_STARTS.end()
                    ),
                })?;
        }
        if let Some(text) = lookup("PUMPPILOT_MAX_HASHING") {
            s.max_hashing = text.parse().ok().filter(|n| MAX_HASHING.contains(n)).ok_or_else(|| ConfigError {
                variable: "PUMPPILOT_MAX_HASHING",
                problem: format!(
                    "`{text}` must be a whole number of password hashes at once from {} to {} (about 19 MiB each)",
                    MAX_HASHING.start(),
                    MAX_HASHING.end()
                ),
            })?;
        }
        s.max_connections = count(&lookup, "PUMPPILOT_MAX_CONNECTIONS", "connections", s.max_connections)?;
        s.max_streams = count(&lookup, "PUMPPILOT_MAX_STREAMS", "live streams", s.max_streams)?;
        if let Some(text) = lookup("PUMPPILOT_FIRMWARE_PUBLIC_KEY") {
            let key = hex::decode(text.trim()).ok().and_then(|bytes| <[u8; 32]>::try_from(bytes).ok());
            s.firmware_key = Some(key.ok_or_else(|| ConfigError {
                variable: "PUMPPILOT_FIRMWARE_PUBLIC_KEY",
                problem: "must be the 64 hex digits `pumppilot firmware keygen` printed".into(),
            })?);
        }
        s.master_username = lookup("PUMPPILOT_MASTER_USERNAME");
        s.master_password = lookup("PUMPPILOT_MASTER_PASSWORD").map(Secret);
        if s.master_username.is_some() != s.master_password.is_some() {
            return Err(ConfigError {
                variable: "PUMPPILOT_MASTER_PASSWORD",
                problem: "set both PUMPPILOT_MASTER_USERNAME and PUMPPILOT_MASTER_PASSWORD, or neither".into(),
            });
        }
        if let Some(password) = &s.master_password
            && !crate::keys::password_allowed(&password.0)
        {
            return Err(ConfigError {
                variable: "PUMPPILOT_MASTER_PASSWORD",
                problem: "must be 8 to 256 characters".into(),
            });
        }
        s.metrics_token = lookup("PUMPPILOT_METRICS_TOKEN").map(Secret);
        if s.metrics_token.as_ref().is_some_and(|token| token.0.trim().len() < 16) {
            return Err(ConfigError {
                variable: "PUMPPILOT_METRICS_TOKEN",
                problem: "must be at least 16 characters".into(),
            });
        }
        if let Some(text) = lookup("PUMPPILOT_TRUSTED_PROXIES") {
            s.trusted_proxies = networks("PUMPPILOT_TRUSTED_PROXIES", &text)?;
        }
        s.alerts = crate::alerts::AlertSettings::from_lookup(&lookup)?;
        if let Some(number) = lookup("PUMPPILOT_SMS_NUMBER") {
            // A farmer copies it onto a feature phone: digits (a short code too), a `+` at most.
            let digits = number.strip_prefix('+').unwrap_or(&number);
            if !(3..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ConfigError {
                    variable: "PUMPPILOT_SMS_NUMBER",
                    problem: format!("`{number}` must be 3 to 15 digits, with a leading + or not"),
                });
            }
            s.sms_number = Some(number);
        }
        if let Some(bind) = lookup("PUMPPILOT_MQTT_BIND") {
            s.mqtt_bind = Some(bind.parse().map_err(|_| ConfigError {
                variable: "PUMPPILOT_MQTT_BIND",
                problem: format!("`{bind}` is not an address like 127.0.0.1:1883"),
            })?);
        }
        if let Some(text) = lookup("PUMPPILOT_MQTT_CONNECTS_PER_SECOND") {
            s.mqtt_connects_per_second =
                text.parse().ok().filter(|n| (1..=100_000).contains(n)).ok_or_else(|| ConfigError {
                    variable: "PUMPPILOT_MQTT_CONNECTS_PER_SECOND",
                    problem: format!("`{text}` must be a whole number of CONNECTs a second from 1 to 100000"),
                })?;
        }
        if let Some(text) = lookup("PUMPPILOT_MQTT_PROXIES") {
            s.mqtt_proxies = networks("PUMPPILOT_MQTT_PROXIES", &text)?;
        }
        if let Some(url) = lookup("PUMPPILOT_MQTT_BROKER") {
            let mut broker = crate::mqtt::BrokerSettings::parse(&url).ok_or_else(|| ConfigError {
                variable: "PUMPPILOT_MQTT_BROKER",
                problem: format!("`{url}` is not a broker like mqtt://127.0.0.1:1883"),
            })?;
            match (lookup("PUMPPILOT_MQTT_BROKER_USERNAME"), lookup("PUMPPILOT_MQTT_BROKER_PASSWORD")) {
                (Some(username), Some(password)) => broker.login = Some((username, Secret(password))),
                (None, None) => {}
                _ => {
                    return Err(ConfigError {
                        variable: "PUMPPILOT_MQTT_BROKER_PASSWORD",
                        problem: "set both PUMPPILOT_MQTT_BROKER_USERNAME and _PASSWORD, or neither".into(),
                    });
                }
            }
            s.mqtt_broker = Some(broker);
        }
        Ok(s)
    }
}

/// `10.0.0.0/8, 127.0.0.1, ::1`: networks, or single addresses (a /32 or /128), of `variable`.
fn networks(variable: &'static str, text: &str) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    text.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            part.parse::<ipnet::IpNet>()
                .or_else(|_| part.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map(|net| net.trunc())
                .map_err(|_| ConfigError {
                    variable,
                    problem: format!("`{part}` is not a network like 10.0.0.0/8 or an address like 127.0.0.1"),
                })
        })
        .collect()
}

fn count(
    lookup: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    what: &str,
    default: u32,
) -> Result<u32, ConfigError> {
    let Some(text) = lookup(variable) else { return Ok(default) };
    text.parse().ok().filter(|n| MAX_OPEN.contains(n)).ok_or_else(|| ConfigError {
        variable,
        problem: format!(
            "`{text}` must be a whole number of {what} at once from {} to {}",
            MAX_OPEN.start(),
            MAX_OPEN.end()
        ),
    })
}

fn millis(
    lookup: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    default: u32,
    range: std::ops::RangeInclusive<u32>,
) -> Result<u32, ConfigError> {
    let Some(text) = lookup(variable) else { return Ok(default) };
    match text.parse::<u32>() {
        Ok(v) if range.contains(&v) => Ok(v),
        _ => Err(ConfigError {
            variable,
            problem: format!(
                "`{text}` must be a whole number of milliseconds from {} to {}",
                range.start(),
                range.end()
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        Settings::from_lookup(|name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let s = from(&[]).unwrap();
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.device_lease_ms, 15_000);
        assert_eq!(s.poll_interval_ms, 5_000);
        assert_eq!(s.database_url, "sqlite://./data/pumppilot.db");
        assert_eq!((s.min_off_ms, s.grid_settle_ms, s.max_starts_per_hour), (60_000, 60_000, 6));
        assert_eq!(s.max_hashing, 4);
    }

    #[test]
    fn connections_and_streams_follow_the_file_limit_or_the_setting() {
        assert_eq!((default_connections(1024), default_streams(1024)), (768, 256));
        assert_eq!((default_connections(100), default_streams(100)), (75, 25));
        assert_eq!((default_connections(20), default_streams(20)), (64, 16));
        assert_eq!(default_connections(u64::MAX), *MAX_OPEN.end());
        let s = from(&[("PUMPPILOT_MAX_CONNECTIONS", "500"), ("PUMPPILOT_MAX_STREAMS", "7")]).unwrap();
        assert_eq!((s.max_connections, s.max_streams), (500, 7));
        for (variable, value) in [("PUMPPILOT_MAX_CONNECTIONS", "0"), ("PUMPPILOT_MAX_STREAMS", "many")] {
            let err = from(&[(variable, value)]).unwrap_err();
            assert_eq!(err.variable, variable);
            assert!(err.to_string().contains(value), "{err}");
        }
    }

    #[test]
    fn hashing_slots_are_read_and_checked() {
        assert_eq!(from(&[("PUMPPILOT_MAX_HASHING", "16")]).unwrap().max_hashing, 16);
        for value in ["0", "65", "four", "-1"] {
            let err = from(&[("PUMPPILOT_MAX_HASHING", value)]).unwrap_err();
            assert_eq!(err.variable, "PUMPPILOT_MAX_HASHING");
            assert!(err.to_string().contains(value), "{err}");
        }
    }

    #[test]
    fn restart_protection_is_read_and_checked() {
        let s = from(&[
            ("PUMPPILOT_MIN_OFF_MS", "900000"),
            ("PUMPPILOT_GRID_SETTLE_MS", "0"),
            ("PUMPPILOT_MAX_STARTS_PER_HOUR", "0"),
        ])
        .unwrap();
        assert_eq!((s.min_off_ms, s.grid_settle_ms, s.max_starts_per_hour), (900_000, 0, 0));
        for (variable, value) in [
            ("PUMPPILOT_MIN_OFF_MS", "-1"),
            ("PUMPPILOT_MIN_OFF_MS", "3600001"),
            ("PUMPPILOT_GRID_SETTLE_MS", "a minute"),
            ("PUMPPILOT_MAX_STARTS_PER_HOUR", "61"),
            ("PUMPPILOT_MAX_STARTS_PER_HOUR", "six"),
        ] {
            let err = from(&[(variable, value)]).unwrap_err();
            assert_eq!(err.variable, variable, "{value}");
            assert!(err.to_string().contains(value), "{err}");
        }
    }

    #[test]
    fn a_bad_value_names_its_variable() {
        let err = from(&[("PUMPPILOT_DEVICE_LEASE_MS", "soon")]).unwrap_err();
        assert_eq!(err.variable, "PUMPPILOT_DEVICE_LEASE_MS");
        assert_eq!(from(&[("PUMPPILOT_BIND", "nowhere")]).unwrap_err().variable, "PUMPPILOT_BIND");
        assert_eq!(from(&[("PUMPPILOT_DATABASE_URL", "postgres://x")]).unwrap_err().variable, "PUMPPILOT_DATABASE_URL");
        assert_eq!(from(&[("PUMPPILOT_SECRET", "short")]).unwrap_err().variable, "PUMPPILOT_SECRET");
        assert_eq!(from(&[("PUMPPILOT_MASTER_USERNAME", "boss")]).unwrap_err().variable, "PUMPPILOT_MASTER_PASSWORD");
    }

    #[test]
    fn the_masters_password_from_the_environment_follows_the_one_password_rule() {
        let master =
            |password: &str| from(&[("PUMPPILOT_MASTER_USERNAME", "boss"), ("PUMPPILOT_MASTER_PASSWORD", password)]);
        // Characters, not bytes: three Bangla letters are nine bytes and still too short.
        for refused in ["seven77", "অআই", &"x".repeat(257)] {
            assert_eq!(master(refused).unwrap_err().variable, "PUMPPILOT_MASTER_PASSWORD", "{refused}");
        }
        for allowed in ["eight888", "অআইঈউঊঋএ", &"x".repeat(256)] {
            assert!(master(allowed).is_ok(), "{allowed}");
        }
    }

    #[test]
    fn trusted_proxies_are_networks_or_addresses() {
        assert!(from(&[]).unwrap().trusted_proxies.is_empty());
        let s = from(&[("PUMPPILOT_TRUSTED_PROXIES", "10.1.2.3/8, 127.0.0.1,::1 ,fd00::/8")]).unwrap();
        let shown: Vec<String> = s.trusted_proxies.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["10.0.0.0/8", "127.0.0.1/32", "::1/128", "fd00::/8"]);
        for value in ["10.0.0.0/33", "proxy.local", "10.0.0.0/8;"] {
            let err = from(&[("PUMPPILOT_TRUSTED_PROXIES", value)]).unwrap_err();
            assert_eq!(err.variable, "PUMPPILOT_TRUSTED_PROXIES");
            let err = from(&[("PUMPPILOT_MQTT_PROXIES", value)]).unwrap_err();
            assert_eq!(err.variable, "PUMPPILOT_MQTT_PROXIES");
        }
        let s = from(&[("PUMPPILOT_MQTT_PROXIES", "10.0.0.5")]).unwrap();
        let shown: Vec<String> = s.mqtt_proxies.iter().map(ToString::to_string).collect();
        assert_eq!((shown, s.trusted_proxies.len()), (vec!["10.0.0.5/32".to_owned()], 0), "one setting each");
    }

    #[test]
    fn mqtt_is_off_unless_bound() {
        let s = from(&[]).unwrap();
        assert_eq!((s.mqtt_bind, s.mqtt_connects_per_second), (None, 100));
        let s =
            from(&[("PUMPPILOT_MQTT_BIND", "127.0.0.1:1883"), ("PUMPPILOT_MQTT_CONNECTS_PER_SECOND", "5")]).unwrap();
        assert_eq!(
            (s.mqtt_bind.map(|a| a.to_string()), s.mqtt_connects_per_second),
            (Some("127.0.0.1:1883".into()), 5)
        );
        let s = from(&[("PUMPPILOT_MQTT_BROKER", "mqtt://broker:1884"), ("PUMPPILOT_MQTT_BROKER_USERNAME", "pp")]);
        assert_eq!(s.unwrap_err().variable, "PUMPPILOT_MQTT_BROKER_PASSWORD");
        let s = from(&[("PUMPPILOT_MQTT_BROKER", "mqtt://broker:1884")]).unwrap();
        assert_eq!(s.mqtt_broker.map(|b| (b.host, b.port)), Some(("broker".into(), 1884)));
        for (variable, value) in [
            ("PUMPPILOT_MQTT_BROKER", "tcp://broker"),
            ("PUMPPILOT_MQTT_BIND", "1883"),
            ("PUMPPILOT_MQTT_CONNECTS_PER_SECOND", "0"),
            ("PUMPPILOT_MQTT_CONNECTS_PER_SECOND", "many"),
        ] {
            let err = from(&[(variable, value)]).unwrap_err();
            assert_eq!(err.variable, variable);
            assert!(err.to_string().contains(value), "{err}");
        }
    }

    #[test]
    fn secrets_do_not_print() {
        let s = from(&[("PUMPPILOT_SECRET", "0123456789abcdef0123456789abcdef")]).unwrap();
        assert!(!format!("{s:?}").contains("0123456789"));
    }
}
