//! End to end: virtual devices running the firmware's own decision crate against the real server.
//!
//! The devices run on real time (their own tokio clock, as on a pump) and the server here on the
//! wall clock, so these tests wait for conditions with generous limits and check causes (which
//! answer switched the relay, why it went OFF), never a tight window. What time alone decides
//! (leases, HOLD freezing the time, long-poll caps) is tested on the server's manual clock in
//! `api.rs` and `device_api.rs`.

mod common;

use std::time::{Duration, Instant};

use common::{LEASE_MS, Site, spawn_app_on_the_wall_clock as spawn_app, start_server_with};
use pumppilot_controller::CardFeedback;
use pumppilot_sim::{DeviceSpec, Happening, Timeline, VirtualDevice, http_client};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// How long (real time) something that must happen may take: generous, for a slow machine.
const PATIENCE: Duration = Duration::from_secs(20);

type Seen = mpsc::UnboundedReceiver<(String, Duration, Happening)>;

fn device(base: &str, key: &str, long_poll: bool) -> (VirtualDevice, Seen) {
    let mut spec = DeviceSpec::new("well 1", base, key);
    spec.settings.long_poll = long_poll;
    let (observer, seen) = mpsc::unbounded_channel();
    spec.observer = Some(observer);
    (VirtualDevice::spawn(spec, http_client(1)), seen)
}

fn key(t: &common::Tenant) -> &str {
    t.device.client.token.as_deref().unwrap()
}

/// Waits for the device to see something that `wanted` accepts, and returns it.
async fn seen(seen: &mut Seen, what: &str, wanted: impl Fn(&Happening) -> bool) -> Happening {
    let found = tokio::time::timeout(PATIENCE, async {
        while let Some((_, _, happening)) = seen.recv().await {
            if wanted(&happening) {
                return Some(happening);
            }
        }
        None
    })
    .await;
    found.ok().flatten().unwrap_or_else(|| panic!("the device never saw {what}"))
}

/// Reads the farmer's status until `done` accepts it.
async fn status_until(user: &common::Client, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let status = user.status().await;
        if done(&status) {
            return status;
        }
        assert!(started.elapsed() < PATIENCE, "{what}: {status}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn is_command(h: &Happening, state: &str) -> bool {
    matches!(h, Happening::Command { state: s, .. } if s.as_str() == state)
}

fn is_relay(h: &Happening, on: bool) -> bool {
    matches!(h, Happening::Relay { on: o, .. } if *o == on)
}

/// Why the relay went OFF, as the timeline words it (`LoadShedding`, `LeaseExpired`, …).
fn off_reason(h: &Happening) -> String {
    match h {
        Happening::Relay { on: false, why } => format!("{why:?}"),
        other => panic!("not a relay OFF: {other:?}"),
    }
}

/// The relay switched ON on the very answer that said RUNNING: nothing happened between them.
fn on_with_the_answer(timeline: &Timeline) {
    let running = timeline.events.iter().position(|(_, h)| is_command(h, "RUNNING")).expect("RUNNING seen");
    let on = timeline.events.iter().position(|(_, h)| is_relay(h, true)).expect("relay ON");
    assert_eq!(on, running + 1, "the relay switched with the answer that said RUNNING:\n{timeline}");
    assert!(!timeline.events[..running].iter().any(|(_, h)| is_relay(h, true)), "no run, no relay:\n{timeline}");
}

#[tokio::test]
async fn a_run_starts_and_the_relay_switches_on_with_the_next_answer() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 30).await;
    let (pump, mut events) = device(&app.base, key(&t), false);
    assert!(!*pump.relay().borrow(), "boot leaves the relay OFF");
    seen(&mut events, "the first answer", |h| is_command(h, "IDLE")).await;

    let started = Instant::now();
    t.users[0].ok("/api/motor/start", json!({})).await;
    assert!(pump.wait_for_relay(true, PATIENCE).await, "relay ON");
    let took = started.elapsed();

    t.users[0].ok("/api/motor/stop", json!({})).await;
    assert!(pump.wait_for_relay(false, PATIENCE).await, "relay OFF after stop");
    let timeline = pump.stop().await;
    on_with_the_answer(&timeline);
    assert_eq!(timeline.relay_changes().len(), 2, "{timeline}");
    assert_eq!(timeline.errors, 0, "{timeline}");
    println!("start → relay ON took {took:?} with plain polling");
}

#[tokio::test]
async fn with_long_poll_the_held_answer_switches_the_relay_on() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 30).await;
    let (pump, mut events) = device(&app.base, key(&t), true);
    seen(&mut events, "the first answer", |h| is_command(h, "IDLE")).await;
    let started = Instant::now();
    t.users[0].ok("/api/motor/start", json!({})).await;
    assert!(pump.wait_for_relay(true, PATIENCE).await, "relay ON");
    let took = started.elapsed();
    let timeline = pump.stop().await;
    on_with_the_answer(&timeline);
    assert_eq!(timeline.errors, 0, "{timeline}");
    println!("start → relay ON took {took:?} with long-poll");
}

#[tokio::test]
async fn load_shedding_switches_off_at_once_holds_the_run_and_recovery_resumes_it() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 30).await;
    let (pump, mut events) = device(&app.base, key(&t), true);
    t.users[0].ok("/api/motor/start", json!({"minutes": 10})).await;
    assert!(pump.wait_for_relay(true, PATIENCE).await);

    let shed = Instant::now();
    pump.set_grid_up(false);
    let off = seen(&mut events, "the relay OFF", |h| is_relay(h, false)).await;
    assert_eq!(off_reason(&off), "Some(LoadShedding)", "OFF locally, by the device's own input");
    let off_after = shed.elapsed();
    // The next poll reports it (at once: a local change cuts the long-poll short); the run holds.
    let held = status_until(&t.users[0], "HOLD", |s| s["motor"]["state"] == "HOLD").await;
    assert_eq!(held["motor"]["holdReason"], "LOAD_SHEDDING", "{held}");
    let remaining = held["motor"]["remainingSeconds"].as_i64().unwrap();
    assert!(remaining <= 600, "{remaining}");
    assert!(!*pump.relay().borrow());

    pump.set_grid_up(true);
    assert!(pump.wait_for_relay(true, PATIENCE).await, "resumed and ON");
    status_until(&t.users[0], "RUNNING again", |s| s["motor"]["state"] == "RUNNING").await;

    // Not ready works the same way.
    pump.set_ready(false);
    let off = seen(&mut events, "the relay OFF", |h| is_relay(h, false)).await;
    assert_eq!(off_reason(&off), "Some(NotReady)");
    status_until(&t.users[0], "DEVICE_NOT_READY", |s| s["motor"]["holdReason"] == "DEVICE_NOT_READY").await;
    let timeline = pump.stop().await;
    assert_eq!(timeline.errors, 0, "{timeline}");
    println!("grid down → relay OFF took {off_after:?}");
}

#[tokio::test]
async fn a_network_cut_switches_the_relay_off_when_the_lease_runs_out() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 30).await;
    let (pump, mut events) = device(&app.base, key(&t), false);
    t.users[0].ok("/api/motor/start", json!({})).await;
    assert!(pump.wait_for_relay(true, PATIENCE).await);

    let cut = Instant::now();
    pump.set_network(false);
    let off = seen(&mut events, "the relay OFF", |h| is_relay(h, false)).await;
    assert_eq!(off_reason(&off), "Some(LeaseExpired)", "OFF by the lease");
    let off_after = cut.elapsed();
    // The lease counts from the last answer, at most one poll before the cut (a slow machine only
    // makes this later).
    let lease = Duration::from_millis(u64::from(LEASE_MS));
    assert!(off_after > lease - Duration::from_millis(650), "not before the lease: {off_after:?}");
    // The server saw the silence too: HOLD, device offline.
    status_until(&t.users[0], "DEVICE_OFFLINE", |s| s["motor"]["holdReason"] == "DEVICE_OFFLINE").await;

    pump.set_network(true);
    assert!(pump.wait_for_relay(true, PATIENCE).await, "back ON once the link returns");
    let timeline = pump.stop().await;
    assert!(timeline.cut_polls > 0);
    assert!(timeline.events.iter().any(|(_, what)| matches!(what, Happening::Link { up: true, .. })), "{timeline}");
}

#[tokio::test]
async fn a_card_starts_and_then_stops_its_users_run() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 30).await;
    t.admin.ok(&format!("/api/admin/users/{}/rfid", t.user_ids[0]), json!({"uid": "04A1B2C3"})).await;
    let (pump, mut events) = device(&app.base, key(&t), true);
    seen(&mut events, "the first answer", |h| is_command(h, "IDLE")).await;

    // Held to the reader: read twice at once, one tap.
    pump.tap(&[0x04, 0xA1, 0xB2, 0xC3]);
    pump.tap(&[0x04, 0xA1, 0xB2, 0xC3]);
    assert!(pump.wait_for_relay(true, PATIENCE).await, "the card started the run");
    assert_eq!(t.users[0].status().await["me"]["entry"]["status"], "RUNNING");

    // A new tap needs the card away for longer than the device's (1 s) and the server's (2 s)
    // windows; a slow machine only makes the gap longer.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    pump.tap(&[0x04, 0xA1, 0xB2, 0xC3]);
    assert!(pump.wait_for_relay(false, PATIENCE).await, "the card stopped the run");
    let status = t.users[0].status().await;
    assert_eq!(status["me"]["entry"], serde_json::Value::Null);
    pump.tap(&[0xDE, 0xAD, 0xBE, 0xEF]);
    seen(&mut events, "the unknown card's answer", |h| matches!(h, Happening::Card { uid, .. } if uid == "DEADBEEF"))
        .await;
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

/// A board that restarts forgets its taps: the simulator numbers each boot's taps from a random
/// point, as the firmware does, also when a test names the boot's first counter. Two boots that
/// name the same counter: the second boot's tap is a new tap that stops the run the first boot's
/// tap started, not a copy of that tap answered STARTED again while the pump runs on.
#[tokio::test]
async fn a_tap_after_a_reboot_is_a_new_tap_also_when_the_boots_name_one_first_counter() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 30).await;
    t.admin.ok(&format!("/api/admin/users/{}/rfid", t.user_ids[0]), json!({"uid": "04A1B2C3"})).await;
    let boot = || {
        let mut spec = DeviceSpec::new("well 1", &app.base, key(&t));
        spec.settings.long_poll = true;
        spec.first_counter = Some(5_000);
        let (observer, seen) = mpsc::unbounded_channel();
        spec.observer = Some(observer);
        (VirtualDevice::spawn(spec, http_client(1)), seen)
    };
    let card = |h: &Happening| matches!(h, Happening::Card { .. });
    let (pump, mut events) = boot();
    seen(&mut events, "the first answer", |h| is_command(h, "IDLE")).await;
    pump.tap(&[0x04, 0xA1, 0xB2, 0xC3]);
    let started = seen(&mut events, "the first boot's tap answered", card).await;
    assert!(matches!(started, Happening::Card { feedback: CardFeedback::Started, .. }), "{started:?}");
    pump.stop().await;

    // Powered again: the run goes on, and the farmer taps the card to stop it.
    let (pump, mut events) = boot();
    seen(&mut events, "the first answer after the reboot", |h| matches!(h, Happening::Command { .. })).await;
    pump.tap(&[0x04, 0xA1, 0xB2, 0xC3]);
    let stopped = seen(&mut events, "the second boot's tap answered", card).await;
    assert!(matches!(stopped, Happening::Card { feedback: CardFeedback::Stopped, .. }), "{stopped:?}");
    assert_eq!(t.users[0].status().await["me"]["entry"], Value::Null, "the run ended");
    pump.stop().await;
}

#[tokio::test]
async fn a_killed_server_leaves_the_relay_off_within_the_lease() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, base) = start_server_with(dir.path(), &[("PUMPPILOT_DEVICE_LEASE_MS", "2000")]);
    let site = Site { base: base.clone() };
    let t = site.tenant("rahim", 1, 30).await;
    let (pump, _events) = device(&base, key(&t), true);
    t.users[0].ok("/api/motor/start", json!({})).await;
    assert!(pump.wait_for_relay(true, PATIENCE).await);

    let killed = Instant::now();
    server.kill();
    assert!(pump.wait_for_relay(false, PATIENCE).await, "OFF once the lease ran out");
    let off_after = killed.elapsed();
    println!("server killed → relay OFF after {off_after:?}");
    let timeline = pump.stop().await;
    assert!(timeline.errors > 0, "the dead server was noticed");
    let off = timeline.events.iter().rev().find(|(_, h)| is_relay(h, false)).expect("relay OFF");
    assert_eq!(off_reason(&off.1), "Some(LeaseExpired)", "OFF by the lease, not by an answer:\n{timeline}");
}

#[tokio::test]
async fn a_signing_device_runs_the_pump_and_after_a_reboot_continues_above_its_counter() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 30).await;
    let (_, devices) = t.admin.get("/api/admin/devices").await;
    let id = devices[0]["id"].as_str().unwrap().to_owned();
    let created = t.admin.ok(&format!("/api/admin/devices/{id}/rotate-key"), json!({})).await;
    let credentials = format!("{}:{}", created["deviceKey"].as_str().unwrap(), created["linkSecret"].as_str().unwrap());
    let boot = |first_counter| {
        let mut spec = DeviceSpec::with_credentials("well 1", &app.base, &credentials);
        spec.settings.long_poll = true;
        spec.first_counter = Some(first_counter);
        let (observer, seen) = mpsc::unbounded_channel();
        spec.observer = Some(observer);
        (VirtualDevice::spawn(spec, http_client(1)), seen)
    };
    let (pump, mut events) = boot(5_000);
    seen(&mut events, "the first answer", |h| is_command(h, "IDLE")).await;
    t.users[0].ok("/api/motor/start", json!({})).await;
    assert!(pump.wait_for_relay(true, PATIENCE).await, "relay ON on a signed answer");
    t.users[0].ok("/api/motor/stop", json!({})).await;
    assert!(pump.wait_for_relay(false, PATIENCE).await, "relay OFF after stop");
    let timeline = pump.stop().await;
    on_with_the_answer(&timeline);
    assert_eq!(timeline.errors, 0, "{timeline}");
    let (_, devices) = t.admin.get("/api/admin/devices").await;
    assert_eq!(devices[0]["signedLink"], true);

    // The board restarts and counts from below the counters it used before (a boot's random
    // point is, mostly): the server's signed refusal moves it above them, and it runs the pump
    // again.
    let (pump, mut events) = boot(0);
    seen(&mut events, "an answer after the reboot", |h| is_command(h, "IDLE")).await;
    t.users[0].ok("/api/motor/start", json!({})).await;
    assert!(pump.wait_for_relay(true, PATIENCE).await, "relay ON after the reboot");
    let timeline = pump.stop().await;
    assert_eq!(timeline.errors, 1, "one refused poll (STALE_COUNTER), then signed above it:\n{timeline}");
    assert!(timeline.to_string().contains("STALE_COUNTER"), "{timeline}");
}
