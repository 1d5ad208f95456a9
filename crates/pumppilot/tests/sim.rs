//! End to end: virtual devices running the firmware's own decision crate against the real server.

mod common;

use std::time::{Duration, Instant};

use common::{LEASE_MS, Site, spawn_app_on_the_wall_clock as spawn_app, start_server_with};
use pumppilot_sim::{DeviceSpec, Happening, VirtualDevice, http_client};
use serde_json::json;

fn device(base: &str, key: &str, long_poll: bool) -> VirtualDevice {
    let mut spec = DeviceSpec::new("well 1", base, key);
    spec.settings.long_poll = long_poll;
    VirtualDevice::spawn(spec, http_client(1))
}

fn key(t: &common::Tenant) -> &str {
    t.device.client.token.as_deref().unwrap()
}

/// The devices' poll interval in these tests: the server asks for 300 ms, the firmware polls at
/// least every 500 ms, jittered by 10%.
const ONE_POLL: Duration = Duration::from_millis(550);

#[tokio::test]
async fn a_run_starts_and_the_relay_switches_on_within_one_poll() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 30).await;
    let pump = device(&app.base, key(&t), false);
    assert!(!*pump.relay().borrow(), "boot leaves the relay OFF");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(!*pump.relay().borrow(), "no run, no relay");

    let started = Instant::now();
    t.users[0].ok("/api/motor/start", json!({})).await;
    assert!(pump.wait_for_relay(true, ONE_POLL + Duration::from_millis(300)).await, "relay ON within one poll");
    let took = started.elapsed();

    t.users[0].ok("/api/motor/stop", json!({})).await;
    assert!(pump.wait_for_relay(false, ONE_POLL + Duration::from_millis(300)).await, "relay OFF after stop");
    let timeline = pump.stop().await;
    assert_eq!(timeline.relay_changes().len(), 2, "{timeline}");
    assert_eq!(timeline.errors, 0, "{timeline}");
    println!("start → relay ON took {took:?} with plain polling");
}

#[tokio::test]
async fn with_long_poll_the_relay_switches_on_at_once() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 30).await;
    let pump = device(&app.base, key(&t), true);
    // Let it settle into a held long-poll.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let started = Instant::now();
    t.users[0].ok("/api/motor/start", json!({})).await;
    assert!(pump.wait_for_relay(true, Duration::from_millis(250)).await, "relay ON at once");
    let took = started.elapsed();
    let timeline = pump.stop().await;
    assert_eq!(timeline.errors, 0, "{timeline}");
    println!("start → relay ON took {took:?} with long-poll");
}

#[tokio::test]
async fn load_shedding_switches_off_at_once_holds_the_run_and_recovery_resumes_it() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 30).await;
    let pump = device(&app.base, key(&t), true);
    t.users[0].ok("/api/motor/start", json!({"minutes": 10})).await;
    assert!(pump.wait_for_relay(true, Duration::from_secs(2)).await);

    let shed = Instant::now();
    pump.set_grid_up(false);
    assert!(pump.wait_for_relay(false, Duration::from_millis(150)).await, "OFF locally, without the server");
    let off_after = shed.elapsed();
    // The next poll reports it (at once: a local change cuts the long-poll short); the run holds.
    let mut held = serde_json::Value::Null;
    for _ in 0..20 {
        held = t.users[0].status().await;
        if held["motor"]["state"] == "HOLD" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(held["motor"]["holdReason"], "LOAD_SHEDDING", "{held}");
    let remaining = held["motor"]["remainingSeconds"].as_i64().unwrap();
    assert!((590..=600).contains(&remaining), "{remaining}");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let later = t.users[0].status().await;
    assert_eq!(later["motor"]["remainingSeconds"].as_i64(), Some(remaining), "remaining time is frozen in HOLD");
    assert!(!*pump.relay().borrow());

    pump.set_grid_up(true);
    assert!(pump.wait_for_relay(true, Duration::from_secs(1)).await, "resumed and ON");
    assert_eq!(t.users[0].status().await["motor"]["state"], "RUNNING");

    // Not ready works the same way.
    pump.set_ready(false);
    assert!(pump.wait_for_relay(false, Duration::from_millis(150)).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(t.users[0].status().await["motor"]["holdReason"], "DEVICE_NOT_READY");
    let timeline = pump.stop().await;
    assert_eq!(timeline.errors, 0, "{timeline}");
    println!("grid down → relay OFF took {off_after:?}");
}

#[tokio::test]
async fn a_network_cut_switches_the_relay_off_when_the_lease_runs_out() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 30).await;
    let pump = device(&app.base, key(&t), false);
    t.users[0].ok("/api/motor/start", json!({})).await;
    assert!(pump.wait_for_relay(true, Duration::from_secs(2)).await);

    let cut = Instant::now();
    pump.set_network(false);
    let lease = Duration::from_millis(u64::from(LEASE_MS));
    assert!(pump.wait_for_relay(false, lease + Duration::from_millis(200)).await, "OFF by the lease");
    let off_after = cut.elapsed();
    assert!(off_after > lease - ONE_POLL - Duration::from_millis(100), "not before the lease: {off_after:?}");
    // The server saw the silence too: HOLD, device offline.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(t.users[0].status().await["motor"]["holdReason"], "DEVICE_OFFLINE");

    pump.set_network(true);
    assert!(pump.wait_for_relay(true, Duration::from_secs(3)).await, "back ON once the link returns");
    let timeline = pump.stop().await;
    assert!(timeline.cut_polls > 0);
    assert!(timeline.events.iter().any(|(_, what)| matches!(what, Happening::Link { up: true, .. })), "{timeline}");
}

#[tokio::test]
async fn a_card_starts_and_then_stops_its_users_run() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 30).await;
    t.admin.ok(&format!("/api/admin/users/{}/rfid", t.user_ids[0]), json!({"uid": "04A1B2C3"})).await;
    let pump = device(&app.base, key(&t), true);
    tokio::time::sleep(Duration::from_millis(300)).await;

    pump.tap(&[0x04, 0xA1, 0xB2, 0xC3]);
    assert!(pump.wait_for_relay(true, Duration::from_secs(2)).await, "the card started the run");
    assert_eq!(t.users[0].status().await["me"]["entry"]["status"], "RUNNING");
    // Held to the reader for a while: one tap.
    pump.tap(&[0x04, 0xA1, 0xB2, 0xC3]);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert!(*pump.relay().borrow(), "a repeat within a second is the same tap");

    pump.tap(&[0x04, 0xA1, 0xB2, 0xC3]);
    assert!(pump.wait_for_relay(false, Duration::from_secs(2)).await, "the card stopped the run");
    let status = t.users[0].status().await;
    assert_eq!(status["me"]["entry"], serde_json::Value::Null);
    pump.tap(&[0xDE, 0xAD, 0xBE, 0xEF]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let timeline = pump.stop().await;
    let cards: Vec<String> = timeline
        .events
        .iter()
        .filter_map(|(_, what)| match what {
            Happening::Card { uid, feedback } => Some(format!("{uid} {feedback:?}")),
            _ => None,
        })
        .collect();
    assert_eq!(cards, ["04A1B2C3 Started", "04A1B2C3 Stopped", "DEADBEEF Denied"], "{timeline}");
}

#[tokio::test]
async fn a_killed_server_leaves_the_relay_off_within_the_lease() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, base) = start_server_with(dir.path(), &[("PUMPPILOT_DEVICE_LEASE_MS", "2000")]);
    let site = Site { base: base.clone() };
    let t = site.tenant("rahim", 1, 30).await;
    let pump = device(&base, key(&t), true);
    t.users[0].ok("/api/motor/start", json!({})).await;
    assert!(pump.wait_for_relay(true, Duration::from_secs(2)).await);

    let killed = Instant::now();
    server.kill();
    assert!(pump.wait_for_relay(false, Duration::from_millis(2_300)).await, "OFF within the lease");
    println!("server killed → relay OFF after {:?}", killed.elapsed());
    let timeline = pump.stop().await;
    assert!(timeline.errors > 0, "the dead server was noticed");
}
