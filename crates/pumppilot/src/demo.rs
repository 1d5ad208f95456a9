//! `pumppilot serve --demo`: a server in memory with two pumps, their farmers and simulated
//! devices, so a newcomer sees pumps run, queue and hold within a minute of the first command.
//!
//! Everything is seeded through the public API, as a pump owner would do it, and nothing is
//! written to disk.

use anyhow::Context;
use pumppilot_server::{Settings, app, config::Secret};
use pumppilot_sim::{Api, DeviceSpec, Line, Script, VirtualDevice, http_client};
use serde_json::json;
use tokio::sync::mpsc;

/// Every demo account's password (the demo lives in memory on this machine only).
const PASSWORD: &str = "pumppilot-demo";

/// One demo pump: its owner, farmers (name, username, minutes, how they start), and what
/// happens at the pump.
struct Pump {
    owner: (&'static str, &'static str),
    /// Taka for an hour of pumping: the farmers' recharges are paid for, so the owner's usage
    /// page shows receipts and the cash taken.
    price_per_hour: i64,
    farmers: &'static [(&'static str, &'static str, i64, Start)],
    script: &'static str,
    story: &'static str,
}

#[derive(Clone, Copy)]
enum Start {
    /// Starts at once for this many minutes.
    Run(u32),
    /// Starts at once, until stopped or out of minutes (waits if the motor is busy).
    Queue,
    /// Does not start; asks the owner for minutes instead.
    AskForMinutes(i64),
}

const PUMPS: &[Pump] = &[
    Pump {
        owner: ("Rahim Uddin", "rahim"),
        price_per_hour: 120,
        farmers: &[
            ("Karim Mia", "karim", 60, Start::Run(3)),
            ("Salma Begum", "salma", 45, Start::Queue),
            ("Jamal Hossain", "jamal", 20, Start::Queue),
        ],
        script: "shed@1m30s..2m, shed@6m..7m",
        story: "Karim runs for 3 minutes once the pump's power has settled (a minute: its board has just started), Salma and Jamal wait; load shedding at 1:30–2:00 holds the run",
    },
    Pump {
        owner: ("Qadir Ahmed", "qadir"),
        price_per_hour: 100,
        farmers: &[
            ("Nasrin Akter", "nasrin", 30, Start::Run(2)),
            ("Farid Sheikh", "farid", 0, Start::AskForMinutes(20)),
        ],
        script: "notready@25s..40s, cut@3m..3m30s",
        story: "Nasrin runs for 2 minutes; the pump is not ready at 0:25–0:40; Farid asks for 20 minutes",
    },
];

pub async fn serve(mut settings: Settings) -> anyhow::Result<()> {
    settings.database_url = "sqlite::memory:".into();
    let master = settings.master_username.clone().unwrap_or_else(|| "master".into());
    settings.master_username = Some(master.clone());
    settings.master_password.get_or_insert_with(|| Secret(PASSWORD.into()));
    let store = pumppilot::store::open_store(&settings).await?;
    let secret = pumppilot::store::load_secret(&settings)?;
    let running = app::spawn(settings.clone(), store, secret).await?;
    app::bootstrap_master(&running.app).await.map_err(|e| anyhow::anyhow!(e.message))?;
    let base = format!("http://{}", running.addr);

    let (observer, mut lines) = mpsc::unbounded_channel();
    let http = http_client(PUMPS.len());
    let mut devices = Vec::new();
    crate::say(format_args!("PumpPilot demo is serving on {base} (in memory: nothing is kept when it stops)"));
    crate::say(format_args!("  every password below is `{PASSWORD}`"));
    crate::say(format_args!("  master admin: {master}"));
    let api = Api::new(http.clone(), &base);
    let master_token = api.login(&master, settings.master_password.as_ref().map_or(PASSWORD, |p| &p.0)).await?;
    for pump in PUMPS {
        let key = seed(&api, &master_token, pump).await.with_context(|| format!("seeding {}", pump.owner.1))?;
        let mut spec = DeviceSpec::with_credentials(format!("{} pump", pump.owner.1), &base, &key);
        spec.script = Some(Script::parse(pump.script)?);
        spec.settings.long_poll = true;
        spec.observer = Some(observer.clone());
        devices.push(VirtualDevice::spawn(spec, http.clone()));
        let users: Vec<&str> = pump.farmers.iter().map(|f| f.1).collect();
        crate::say(format_args!("  pump owner {} with farmers {}: {}", pump.owner.1, users.join(", "), pump.story));
    }
    crate::say(format_args!("Try: curl -s {base}/api/auth/login -H 'content-type: application/json' \\"));
    crate::say(format_args!("       -d '{{\"username\":\"karim\",\"password\":\"{PASSWORD}\"}}'"));
    crate::say(format_args!("The simulated devices report below. Ctrl-C stops the demo."));
    loop {
        tokio::select! {
            Some((name, at, what)) = lines.recv() => crate::say(format_args!("{}", Line(&name, at, &what))),
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    for device in devices {
        device.stop().await;
    }
    running.shutdown().await
}

/// Creates a pump owner with a price, their farmers with minutes paid for in cash (each with a
/// receipt), a device, and the farmers' first moves.
/// Returns the device's credentials (`key:link-secret`).
async fn seed(api: &Api, master: &str, pump: &Pump) -> anyhow::Result<String> {
    let (name, username) = pump.owner;
    api.post(master, "/api/master/admins", json!({"name": name, "username": username, "password": PASSWORD})).await?;
    let owner = api.login(username, PASSWORD).await?;
    let terms = json!({"maxRequestMinutes": 600, "pricePerHourTaka": pump.price_per_hour});
    api.put(&owner, "/api/admin/terms", terms).await?;
    let device = api.post(&owner, "/api/admin/devices", json!({"name": format!("{name}'s pump")})).await?;
    let key = device["deviceKey"].as_str().context("no device key")?;
    let secret = device["linkSecret"].as_str().context("no link secret")?;
    let mut farmers = Vec::new();
    for &(name, username, minutes, start) in pump.farmers {
        let body = json!({"name": name, "username": username, "password": PASSWORD});
        let user = api.post(&owner, "/api/admin/users", body).await?;
        if minutes > 0 {
            let body = json!({"userId": user["id"], "minutes": minutes, "note": "demo recharge"});
            api.post(&owner, "/api/admin/recharge", body).await?;
        }
        farmers.push((api.login(username, PASSWORD).await?, start));
    }
    // The device reports once before anyone starts, so the first run starts RUNNING, not HOLD.
    let report = json!({"loadShedding": false, "ready": true, "relay": false});
    api.post(key, "/api/esp32/poll", report).await?;
    for (token, start) in farmers {
        match start {
            Start::Run(minutes) => api.post(&token, "/api/motor/start", json!({"minutes": minutes})).await?,
            Start::Queue => api.post(&token, "/api/motor/start", json!({})).await?,
            Start::AskForMinutes(minutes) => {
                let body = json!({"minutes": minutes, "note": "paid in cash at the pump"});
                api.post(&token, "/api/minute-requests", body).await?
            }
        };
    }
    Ok(format!("{key}:{secret}"))
}
