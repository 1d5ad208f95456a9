//! Many devices at once: start them, let them run, and sum up what they saw.

use std::{fmt, time::Duration};

use anyhow::Context;
use serde_json::json;

use crate::{
    api::Api,
    device::{DeviceSpec, Timeline, VirtualDevice},
};

/// A shared HTTP client sized for a fleet (one keep-alive pool for every device).
pub fn http_client(devices: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(devices.max(1))
        .tcp_nodelay(true)
        .build()
        .expect("an HTTP client with default TLS-free settings")
}

/// Runs every device for `duration`, then stops them all and returns their timelines.
pub async fn run_fleet(specs: Vec<DeviceSpec>, duration: Duration, http: reqwest::Client) -> Vec<Timeline> {
    let devices: Vec<VirtualDevice> = specs.into_iter().map(|spec| VirtualDevice::spawn(spec, http.clone())).collect();
    tokio::time::sleep(duration).await;
    let mut timelines = Vec::with_capacity(devices.len());
    for device in devices {
        timelines.push(device.stop().await);
    }
    timelines
}

/// Registers `count` devices for an admin (signing in with their password) and returns their
/// credentials, each `key:link-secret` ([`DeviceSpec::with_credentials`](crate::DeviceSpec::with_credentials)).
pub async fn provision(server: &str, username: &str, password: &str, count: usize) -> anyhow::Result<Vec<String>> {
    Ok(provision_devices(server, username, password, count).await?.into_iter().map(|(_, keys)| keys).collect())
}

/// As [`provision`], with each device's id beside its credentials (an MQTT device needs it).
pub async fn provision_devices(
    server: &str,
    username: &str,
    password: &str,
    count: usize,
) -> anyhow::Result<Vec<(String, String)>> {
    let api = Api::new(reqwest::Client::new(), server);
    let token = api.login(username, password).await.with_context(|| format!("signing in as {username}"))?;
    let mut devices = Vec::with_capacity(count);
    for n in 1..=count {
        let device = api.post(&token, "/api/admin/devices", json!({"name": format!("sim {n}")})).await?;
        let id = device["id"].as_str().context("no id in the answer")?;
        let key = device["deviceKey"].as_str().context("no deviceKey in the answer")?;
        let secret = device["linkSecret"].as_str().context("no linkSecret in the answer")?;
        devices.push((id.to_owned(), format!("{key}:{secret}")));
    }
    Ok(devices)
}

/// What a fleet run adds up to.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub devices: usize,
    pub polls: u64,
    pub errors: u64,
    pub cut_polls: u64,
    /// Round trips timed: every usable HTTP answer; over MQTT only the answers the server owes
    /// (an unchanged OFF is told once, so most reports of an idle pump get none).
    pub timed: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Devices whose relay was ON at some point.
    pub ran: usize,
}

impl Summary {
    pub fn of(timelines: &[Timeline]) -> Summary {
        let mut latencies: Vec<u32> = timelines.iter().flat_map(|t| t.latencies_us.iter().copied()).collect();
        latencies.sort_unstable();
        let at = |p: f64| match latencies.len() {
            0 => 0.0,
            n => f64::from(latencies[((n - 1) as f64 * p).round() as usize]) / 1000.0,
        };
        Summary {
            devices: timelines.len(),
            polls: timelines.iter().map(|t| t.polls).sum(),
            errors: timelines.iter().map(|t| t.errors).sum(),
            cut_polls: timelines.iter().map(|t| t.cut_polls).sum(),
            timed: latencies.len(),
            p50_ms: at(0.5),
            p99_ms: at(0.99),
            max_ms: at(1.0),
            ran: timelines.iter().filter(|t| !t.relay_changes().is_empty()).count(),
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}, {}, {}, {} lost to scripted network cuts; round trip ({} timed) p50 {:.2} ms, p99 {:.2} ms, \
             max {:.2} ms; {} switched ON",
            count(self.devices as u64, "device"),
            count(self.polls, "poll"),
            count(self.errors, "error"),
            count(self.cut_polls, "poll"),
            count(self.timed as u64, "answer"),
            self.p50_ms,
            self.p99_ms,
            self.max_ms,
            count(self.ran as u64, "relay"),
        )
    }
}

/// `1 device`, `2 devices`.
fn count(n: u64, what: &str) -> String {
    if n == 1 { format!("1 {what}") } else { format!("{n} {what}s") }
}
