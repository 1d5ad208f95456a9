//! `pumppilot bench --relay`: how long a farmer waits from tapping Start to the relay switching
//! ON, with plain polling and with long-poll, measured with simulated devices (the firmware's own
//! decision crate) against the real server on this machine with its default poll interval and lease.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use futures::future::try_join_all;
use pumppilot_server::{Settings, app, config::Secret};
use pumppilot_sim::{Api, DeviceSpec, VirtualDevice, http_client};
use serde_json::json;

const PASSWORD: &str = "bench-password";

/// One pump: a farmer's token and the device key.
struct Pump {
    farmer: String,
    key: String,
}

pub async fn run(runs: usize, pumps: usize, dir: &std::path::Path) -> anyhow::Result<()> {
    let settings = Settings {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        database_url: format!("sqlite://{}", dir.join("relay.db").display()),
        master_username: Some("master".into()),
        master_password: Some(Secret(PASSWORD.into())),
        // The path from Start to the relay is measured, not restart protection: each pump runs
        // many short runs in a row, and a minute's wait between them would be all it showed.
        min_off_ms: 0,
        grid_settle_ms: 0,
        max_starts_per_hour: 0,
        ..Settings::default()
    };
    let (poll_ms, lease_ms) = (settings.poll_interval_ms, settings.device_lease_ms);
    let store = pumppilot::store::open_store(&settings).await?;
    let secret = pumppilot::store::load_secret(&settings)?;
    let server = app::spawn(settings, store, secret).await?;
    app::bootstrap_master(&server.app).await.map_err(|e| anyhow::anyhow!(e.message))?;
    let base = format!("http://{}", server.addr);
    let http = http_client(pumps * 2);
    let api = Api::new(http.clone(), &base);
    let bar = super::progress(pumps as u64, "seeding pumps");
    let mut seeded = Vec::with_capacity(pumps);
    let master = api.login("master", PASSWORD).await?;
    for n in 0..pumps {
        seeded.push(seed(&api, &master, n).await?);
        bar.inc(1);
    }
    bar.finish();

    let rounds = runs.div_ceil(pumps);
    let mut results = Vec::new();
    for long_poll in [false, true] {
        let name = if long_poll { "long-poll" } else { "plain polling" };
        let devices: Vec<VirtualDevice> = seeded
            .iter()
            .map(|pump| {
                let mut spec = DeviceSpec::new("bench", &base, &pump.key);
                spec.settings.long_poll = long_poll;
                VirtualDevice::spawn(spec, http.clone())
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let bar = super::progress(rounds as u64, name);
        let mut latencies = Vec::with_capacity(rounds * pumps);
        for _ in 0..rounds {
            let round = seeded.iter().zip(&devices).map(|(pump, device)| cycle(&api, pump, device, poll_ms));
            latencies.extend(try_join_all(round).await?);
            bar.inc(1);
        }
        bar.finish();
        for device in devices {
            let timeline = device.stop().await;
            if timeline.errors > 0 {
                bail!("a device saw {} failed polls:\n{timeline}", timeline.errors);
            }
        }
        latencies.sort_unstable();
        latencies.truncate(runs);
        results.push((name, latencies));
    }
    server.shutdown().await?;

    println!();
    println!(
        "Start → relay ON ({runs} runs each, {pumps} pumps at a time, server pollMs {poll_ms}, leaseMs {lease_ms}):"
    );
    println!("{:<15} {:>10} {:>10} {:>10}", "mode", "p50 ms", "p99 ms", "max ms");
    for (name, latencies) in &results {
        let at = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1000.0;
        println!("{name:<15} {:>10.1} {:>10.1} {:>10.1}", at(0.5), at(0.99), at(1.0));
    }
    Ok(())
}

/// One run: a pause of a random part of the poll interval (a farmer does not tap Start in step
/// with the device's polls), Start, wait for the relay, Stop, wait for it to fall. Returns the
/// time from Start to ON.
async fn cycle(api: &Api, pump: &Pump, device: &VirtualDevice, poll_ms: u32) -> anyhow::Result<Duration> {
    let limit = Duration::from_secs(30);
    tokio::time::sleep(Duration::from_millis(u64::from(rand::random::<u32>() % poll_ms.max(1)))).await;
    let started = Instant::now();
    api.post(&pump.farmer, "/api/motor/start", json!({})).await?;
    if !device.wait_for_relay(true, limit).await {
        bail!("the relay did not switch ON within {limit:?}");
    }
    let took = started.elapsed();
    api.post(&pump.farmer, "/api/motor/stop", json!({})).await?;
    if !device.wait_for_relay(false, limit).await {
        bail!("the relay did not switch OFF within {limit:?}");
    }
    Ok(took)
}

async fn seed(api: &Api, master: &str, n: usize) -> anyhow::Result<Pump> {
    let owner = format!("bench-owner-{n}");
    let farmer = format!("bench-farmer-{n}");
    api.post(master, "/api/master/admins", json!({"name": owner, "username": owner, "password": PASSWORD})).await?;
    let admin = api.login(&owner, PASSWORD).await?;
    let user =
        api.post(&admin, "/api/admin/users", json!({"name": farmer, "username": farmer, "password": PASSWORD})).await?;
    api.post(&admin, "/api/admin/recharge", json!({"userId": user["id"], "minutes": 100_000})).await?;
    let device = api.post(&admin, "/api/admin/devices", json!({"name": "bench pump"})).await?;
    let key = device["deviceKey"].as_str().context("device key")?.to_owned();
    Ok(Pump { farmer: api.login(&farmer, PASSWORD).await?, key })
}
