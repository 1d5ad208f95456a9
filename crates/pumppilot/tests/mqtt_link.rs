//! Signed MQTT, end to end (`docs/DEVICE.md`, "MQTT", signed messages): a device with a link
//! secret signs its reports (`<counter> <mac-hex>\n` before the JSON), the server accepts each
//! counter once through the same acceptance as the HTTP link, refuses a replay with a signed
//! message that changes nothing, signs every command, and disconnects a signing device's unsigned
//! report. Real TCP to the server's listener, SQLite, the server on its manual clock.

mod common;

use common::{
    Tenant, TestApp,
    mqtt::{
        PATIENCE, closed, device_id, heard, mqtt_addr, mqtt_device, next_message, nothing_published, signed_report,
        spawn_mqtt_app, until_status,
    },
};
use pumppilot_protocol::link::{self, Framed, LinkSecret, MqttKind};
use pumppilot_sim::{Happening, VirtualDevice, http_client, mqtt::Connection};
use serde_json::{Value, json};

/// The tenant's device with a new key and its link secret (rotating shows both).
struct Board {
    id: String,
    key: String,
    secret: LinkSecret,
    secret_text: String,
}

async fn board(t: &Tenant) -> Board {
    let id = device_id(t).await;
    let rotated = t.admin.ok(&format!("/api/admin/devices/{id}/rotate-key"), json!({})).await;
    let secret_text = rotated["linkSecret"].as_str().expect("a link secret").to_owned();
    Board {
        key: rotated["deviceKey"].as_str().expect("a key").to_owned(),
        secret: LinkSecret::parse(&secret_text).unwrap(),
        secret_text,
        id,
    }
}

impl Board {
    fn topic(&self, leaf: &str) -> String {
        format!("pumppilot/{}/{leaf}", self.id)
    }

    /// A report payload signed with `counter`.
    fn signed_report(&self, counter: u64, relay: bool, reference: u32) -> Vec<u8> {
        let body = serde_json::to_vec(
            &json!({"loadShedding": false, "ready": true, "relay": relay, "fw": "test", "ref": reference}),
        )
        .unwrap();
        signed_report(&self.secret, &self.topic("report"), counter, &body)
    }

    /// A report payload with `body` (the report JSON), signed with `counter`.
    fn signed_body(&self, counter: u64, body: &Value) -> Vec<u8> {
        signed_report(&self.secret, &self.topic("report"), counter, &serde_json::to_vec(body).unwrap())
    }

    /// True when `payload` is signed as `kind` on the command topic with this device's secret.
    fn checks(&self, kind: MqttKind, payload: &[u8]) -> bool {
        match link::unframe(payload) {
            Framed::Signed { counter, tag, body } => {
                self.secret.check_mqtt(kind, &self.topic("command"), counter, body, &tag)
            }
            _ => false,
        }
    }

    /// Checks a message on the command topic: signed by the server with this device's secret,
    /// as `kind`; returns its counter and JSON.
    fn verified(&self, kind: MqttKind, payload: &[u8]) -> (u64, Value) {
        let Framed::Signed { counter, tag, body } = link::unframe(payload) else {
            panic!("not signed: {}", String::from_utf8_lossy(payload))
        };
        assert!(
            self.secret.check_mqtt(kind, &self.topic("command"), counter, body, &tag),
            "{kind:?} MAC: {}",
            String::from_utf8_lossy(payload)
        );
        (counter, serde_json::from_slice(body).unwrap())
    }
}

/// The highest counter the store accepted for the tenant's devices.
async fn counters(app: &TestApp) -> Vec<(String, u64)> {
    let mut all: Vec<(String, u64)> = app
        .running
        .app
        .store
        .device_counters(None)
        .await
        .unwrap()
        .into_iter()
        .map(|(device, counter)| (device.to_string(), counter))
        .collect();
    all.sort();
    all
}

#[tokio::test]
async fn a_signed_simulated_device_runs_the_pump_over_mqtt() {
    let app = spawn_mqtt_app(|s| s).await;
    let t = app.tenant("rahim", 1, 30).await;
    let board = board(&t).await;
    let (mut spec, mut seen) = mqtt_device(&app.base, &board.key, &mqtt_addr(&app), &board.id);
    spec.link_secret = Some(board.secret_text.clone());
    spec.first_counter = Some(5_000);
    let pump = VirtualDevice::spawn(spec.clone(), http_client(1));
    heard(&mut seen, "a signed IDLE", |happening| {
        matches!(happening, Happening::Command { state, .. } if state.as_str() == "IDLE").then_some(())
    })
    .await;
    // Its reports were signed: the store holds a window of its counters (reserved at its first
    // signed report, which may come just after the first, plain, command), and it counts as signing.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let signed = counters(&app).await;
        if signed.iter().any(|(device, counter)| *device == board.id && *counter >= 1) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "a counter window reserved: {signed:?}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let (_, devices) = t.admin.get("/api/admin/devices").await;
    assert_eq!(devices[0]["signedLink"], json!(true), "{devices}");

    t.users[0].ok("/api/motor/start", json!({})).await;
    assert!(pump.wait_for_relay(true, PATIENCE).await, "relay ON from a signed command");
    t.users[0].ok("/api/motor/stop", json!({})).await;
    assert!(pump.wait_for_relay(false, PATIENCE).await, "relay OFF after Stop");
    let timeline = pump.stop().await;
    assert_eq!(timeline.relay_changes().iter().map(|(_, on)| *on).collect::<Vec<_>>(), [true, false], "{timeline}");
    assert!(timeline.polls > 0 && !timeline.latencies_us.is_empty(), "reports answered: {timeline}");
    let before = counters(&app).await;

    // A reboot: the board counts from below the counters it used (here from 1). Its first report
    // is refused (signed, naming the highest counter accepted); it continues above it and runs
    // the pump again.
    let (observer, mut seen) = tokio::sync::mpsc::unbounded_channel();
    spec.observer = Some(observer);
    spec.first_counter = Some(0);
    let rebooted = VirtualDevice::spawn(spec, http_client(1));
    heard(&mut seen, "the rebooted device's first report refused", |happening| {
        matches!(&happening, Happening::Link { up: false, error: Some(error) } if error.contains("report refused (409)"))
            .then_some(())
    })
    .await;
    t.users[0].ok("/api/motor/start", json!({})).await;
    assert!(rebooted.wait_for_relay(true, PATIENCE).await, "relay ON after the counter moved up");
    // (It continued inside this server's window, so the store's floor did not have to move.)
    let after = counters(&app).await;
    assert!(after[0].1 >= before[0].1, "the floor never goes down: {before:?} then {after:?}");
    rebooted.stop().await;
}

#[tokio::test]
async fn a_replayed_report_is_refused_with_a_signed_message_and_changes_nothing() {
    let app = spawn_mqtt_app(|s| s).await;
    let t = app.tenant("rahim", 1, 30).await;
    let board = board(&t).await;
    let mut device =
        Connection::device(&mqtt_addr(&app), &board.id, &board.key).await.expect("a signing device connects");
    // Before it ever signed, the command on SUBSCRIBE went out plain; from its first signed report
    // on, every command is signed, carrying the counter of the report it answers.
    let first = next_message(&mut device).await;
    assert_eq!(first[0], b'{', "{}", String::from_utf8_lossy(&first));
    let captured = board.signed_report(5, false, 100);
    device.publish(&board.topic("report"), &captured).await.unwrap();
    let (counter, answer) = board.verified(MqttKind::Command, &next_message(&mut device).await);
    assert_eq!((counter, answer["ref"].clone(), answer["state"].clone()), (5, json!(100), json!("IDLE")));
    // The store holds the floor of the window reserved for counter 5 and above.
    let floor = counters(&app).await;
    assert!(floor.len() == 1 && floor[0].0 == board.id && floor[0].1 >= 5, "{floor:?}");
    // A command made by a change (Start), signed too, still naming report 5.
    t.users[0].ok("/api/motor/start", json!({})).await;
    let (counter, answer) = board.verified(MqttKind::Command, &next_message(&mut device).await);
    assert_eq!((counter, answer["ref"].clone(), answer["state"].clone()), (5, json!(100), json!("RUNNING")));
    // The device reports again (relay closed now), counter 6.
    device.publish(&board.topic("report"), &board.signed_report(6, true, 101)).await.unwrap();
    let (counter, answer) = board.verified(MqttKind::Command, &next_message(&mut device).await);
    assert_eq!((counter, answer["ref"].clone()), (6, json!(101)));
    until_status(&t, "report 6 applied", |status| status["device"]["relay"] == json!(true)).await;

    // The captured report 5 (relay open) again, same bytes, on a new connection: refused with a
    // message signed as a refusal (no command) naming the highest counter accepted; nothing
    // changes.
    let mut replay = Connection::device(&mqtt_addr(&app), &board.id, &board.key).await.expect("connects");
    let (counter, answer) = board.verified(MqttKind::Command, &next_message(&mut replay).await);
    assert_eq!((counter, answer.get("ref")), (0, None), "no report on this connection yet");
    replay.publish(&board.topic("report"), &captured).await.unwrap();
    let refusal = next_message(&mut replay).await;
    assert!(!board.checks(MqttKind::Command, &refusal), "a refusal is no command");
    let (highest, error) = board.verified(MqttKind::Stale, &refusal);
    assert_eq!((highest, error["error"]["code"].clone()), (6, json!("STALE_COUNTER")));
    assert_eq!(counters(&app).await, floor, "no window moved");
    let status = t.users[0].status().await;
    assert_eq!(status["device"]["relay"], json!(true), "the replayed report was not applied: {status}");
    // The connection goes on: the next counter is taken.
    replay.publish(&board.topic("report"), &board.signed_report(7, true, 102)).await.unwrap();
    let (counter, answer) = board.verified(MqttKind::Command, &next_message(&mut replay).await);
    assert_eq!((counter, answer["ref"].clone()), (7, json!(102)));
}

/// The reviewer's finding f2b over MQTT: a report saying "grid up, relay closed", held back while
/// the pump ran and delivered during load shedding, is accepted as a counter but changes nothing:
/// the hold stays (no charged run), and what is published names the newest report.
#[tokio::test]
async fn a_withheld_grid_up_report_delivered_during_load_shedding_changes_nothing() {
    let app = spawn_mqtt_app(|s| s).await;
    let t = app.tenant("rahim", 1, 30).await;
    let board = board(&t).await;
    let mut device = Connection::device(&mqtt_addr(&app), &board.id, &board.key).await.expect("connects");
    next_message(&mut device).await;
    device.publish(&board.topic("report"), &board.signed_report(5, false, 100)).await.unwrap();
    board.verified(MqttKind::Command, &next_message(&mut device).await);
    t.users[0].ok("/api/motor/start", json!({})).await;
    board.verified(MqttKind::Command, &next_message(&mut device).await);
    device.publish(&board.topic("report"), &board.signed_report(6, true, 101)).await.unwrap();
    let (_, answer) = board.verified(MqttKind::Command, &next_message(&mut device).await);
    assert_eq!(answer["state"], json!("RUNNING"));
    // Report 7 (grid up, relay closed) is held back; the grid goes down.
    let withheld = board.signed_report(7, true, 102);
    let shed = json!({"loadShedding": true, "ready": true, "relay": false, "relayOff": "LOAD_SHEDDING", "ref": 103});
    device.publish(&board.topic("report"), &board.signed_body(8, &shed)).await.unwrap();
    let (counter, answer) = board.verified(MqttKind::Command, &next_message(&mut device).await);
    assert_eq!(
        (counter, answer["state"].clone(), answer["holdReason"].clone()),
        (8, json!("HOLD"), json!("LOAD_SHEDDING"))
    );

    device.publish(&board.topic("report"), &withheld).await.unwrap();
    let (counter, answer) = board.verified(MqttKind::Command, &next_message(&mut device).await);
    assert_eq!(
        (counter, answer["ref"].clone(), answer["motor"].clone(), answer["state"].clone()),
        (8, json!(103), json!("OFF"), json!("HOLD")),
        "the current command, naming the newest report"
    );
    let status = t.users[0].status().await;
    assert_eq!(status["me"]["state"], json!("HOLD"), "no charged run: {status}");
    assert_eq!(
        (status["device"]["loadShedding"].clone(), status["device"]["relay"].clone()),
        (json!(true), json!(false))
    );
    // The counter was used up all the same: the same copy again is refused.
    device.publish(&board.topic("report"), &withheld).await.unwrap();
    let (highest, _) = board.verified(MqttKind::Stale, &next_message(&mut device).await);
    assert_eq!(highest, 8);
}

/// A refused counter counts on the device as a failed report, so the next report it gets
/// accepted is answered even when the command did not change (an unchanged OFF is otherwise told
/// once, `mqtt.rs`).
#[tokio::test]
async fn after_a_refused_counter_the_next_report_is_answered() {
    let app = spawn_mqtt_app(|s| s).await;
    let t = app.tenant("rahim", 1, 30).await;
    let board = board(&t).await;
    let mut device = Connection::device(&mqtt_addr(&app), &board.id, &board.key).await.expect("connects");
    next_message(&mut device).await;
    device.publish(&board.topic("report"), &board.signed_report(5, false, 100)).await.unwrap();
    let (counter, answer) = board.verified(MqttKind::Command, &next_message(&mut device).await);
    assert_eq!((counter, answer["ref"].clone(), answer["state"].clone()), (5, json!(100), json!("IDLE")));
    device.publish(&board.topic("report"), &board.signed_report(6, false, 101)).await.unwrap();
    nothing_published(&mut device, "an unchanged OFF repeated").await;
    // Counter 5 again (a replay, or a device that rebooted and counts again): refused, naming 6.
    device.publish(&board.topic("report"), &board.signed_report(5, false, 1)).await.unwrap();
    let (highest, _) = board.verified(MqttKind::Stale, &next_message(&mut device).await);
    assert_eq!(highest, 6);
    device.publish(&board.topic("report"), &board.signed_report(7, false, 2)).await.unwrap();
    let (counter, answer) = board.verified(MqttKind::Command, &next_message(&mut device).await);
    assert_eq!((counter, answer["ref"].clone(), answer["state"].clone()), (7, json!(2), json!("IDLE")));
    device.publish(&board.topic("report"), &board.signed_report(8, false, 3)).await.unwrap();
    nothing_published(&mut device, "then told once again").await;
}

#[tokio::test]
async fn a_signing_devices_unsigned_or_tampered_report_disconnects_it() {
    let app = spawn_mqtt_app(|s| s).await;
    let t = app.tenant("rahim", 1, 30).await;
    let board = board(&t).await;
    let addr = mqtt_addr(&app);
    let mut device = Connection::device(&addr, &board.id, &board.key).await.expect("connects");
    next_message(&mut device).await;
    device.publish(&board.topic("report"), &board.signed_report(1, false, 1)).await.unwrap();
    board.verified(MqttKind::Command, &next_message(&mut device).await);
    let floor = counters(&app).await;
    // From now on an unsigned report (what a captured key alone could send) ends the connection,
    // and nothing is applied.
    let mut forger = Connection::device(&addr, &board.id, &board.key).await.expect("the key alone still connects");
    // The command on SUBSCRIBE is signed: a device that signs takes nothing else.
    board.verified(MqttKind::Command, &next_message(&mut forger).await);
    let unsigned = serde_json::to_vec(&json!({"loadShedding": true, "ready": true, "relay": false, "ref": 2})).unwrap();
    forger.publish(&board.topic("report"), &unsigned).await.unwrap();
    closed(&mut forger, "an unsigned report").await;
    // A tampered one (grid down written over a signed grid up) too, and a broken prefix.
    for payload in [
        {
            let mut tampered = board.signed_report(7, false, 3);
            let text =
                String::from_utf8(tampered.clone()).unwrap().replace("\"loadShedding\":false", "\"loadShedding\":true");
            tampered = text.into_bytes();
            tampered
        },
        b"8 nothex\n{}".to_vec(),
    ] {
        let mut forger = Connection::device(&addr, &board.id, &board.key).await.expect("connects");
        next_message(&mut forger).await;
        forger.publish(&board.topic("report"), &payload).await.unwrap();
        closed(&mut forger, &String::from_utf8_lossy(&payload)).await;
    }
    assert_eq!(counters(&app).await, floor, "no window moved");
    // Nor was the tampered report's counter taken: the device's own report 7 is accepted.
    let mut device = Connection::device(&addr, &board.id, &board.key).await.expect("connects");
    next_message(&mut device).await;
    device.publish(&board.topic("report"), &board.signed_report(7, false, 4)).await.unwrap();
    let (counter, answer) = board.verified(MqttKind::Command, &next_message(&mut device).await);
    assert_eq!((counter, answer["ref"].clone()), (7, json!(4)), "counter 7 still free");
    let status = t.users[0].status().await;
    assert_ne!(status["device"]["loadShedding"], json!(true), "{status}");
}

/// A rotated key signs with a new secret, and the device's counters go on above every window the
/// old key had: each server forgets the device's window when its key changes (so the old key's
/// secret is not kept either), a counter inside that window is refused for the new key too (the
/// refusal signed with the new secret, naming where to continue), and the store's floor moves up,
/// never down.
#[tokio::test]
async fn a_rotated_key_signs_with_a_new_secret_and_counts_above_the_old_keys_window() {
    let app = spawn_mqtt_app(|s| s).await;
    let t = app.tenant("rahim", 1, 30).await;
    let old = board(&t).await;
    let addr = mqtt_addr(&app);
    let mut device = Connection::device(&addr, &old.id, &old.key).await.expect("connects");
    next_message(&mut device).await;
    device.publish(&old.topic("report"), &old.signed_report(5, false, 100)).await.unwrap();
    old.verified(MqttKind::Command, &next_message(&mut device).await);
    let floor = counters(&app).await;

    let new = board(&t).await;
    closed(&mut device, "the old key's connection").await;
    let mut device = Connection::device(&addr, &new.id, &new.key).await.expect("the new key connects");
    let first = next_message(&mut device).await;
    assert!(new.checks(MqttKind::Command, &first) && !old.checks(MqttKind::Command, &first), "the new secret signs");
    device.publish(&new.topic("report"), &new.signed_report(6, false, 101)).await.unwrap();
    let (highest, error) = new.verified(MqttKind::Stale, &next_message(&mut device).await);
    assert_eq!(error["error"]["code"], json!("STALE_COUNTER"));
    let moved = counters(&app).await;
    assert!(
        highest >= floor[0].1 && moved[0].1 > floor[0].1,
        "above the old window: {highest}, {floor:?} then {moved:?}"
    );
    device.publish(&new.topic("report"), &new.signed_report(highest + 1, false, 102)).await.unwrap();
    let (counter, answer) = new.verified(MqttKind::Command, &next_message(&mut device).await);
    assert_eq!((counter, answer["ref"].clone()), (highest + 1, json!(102)));
}
