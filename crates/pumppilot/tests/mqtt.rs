//! Devices over MQTT, end to end: real TCP to the server's listener (`PUMPPILOT_MQTT_BIND`), the
//! simulator's devices and raw connections on the same codec, SQLite. The server runs on its
//! manual clock, so leases and keep-alives end only when a test moves it; the tests wait for
//! events with time limits, never for a window.

mod common;

use std::time::Duration;

use common::{
    LEASE_MS, Tenant, TestApp,
    mqtt::{
        PATIENCE, Seen, closed, device_id, device_key, heard, mqtt_addr, mqtt_device, next_command, nothing_published,
        spawn_mqtt_app, until_status,
    },
    until,
};
use pumppilot_server::Settings;
use pumppilot_sim::{
    Happening, VirtualDevice, http_client,
    mqtt::{ConnectError, ConnectReturnCode, Connection, Packet, Publish, QoS, Subscribe, connect_packet, encode},
};
use serde_json::json;

fn report(relay: bool, reference: Option<u32>) -> Vec<u8> {
    let mut body = json!({"loadShedding": false, "ready": true, "relay": relay, "fw": "test"});
    if let Some(reference) = reference {
        body["ref"] = json!(reference);
    }
    serde_json::to_vec(&body).unwrap()
}

/// A connected, subscribed device and its topics' prefix.
async fn connected(app: &TestApp, t: &Tenant) -> (Connection, String) {
    let id = device_id(t).await;
    let connection = Connection::device(&mqtt_addr(app), &id, &device_key(t)).await.expect("connected");
    (connection, format!("pumppilot/{id}"))
}

/// The tenant's device simulated on the server's MQTT listener, and what it tells.
async fn simulated(app: &TestApp, t: &Tenant) -> (VirtualDevice, Seen) {
    let (spec, seen) = mqtt_device(&app.base, &device_key(t), &mqtt_addr(app), &device_id(t).await);
    (VirtualDevice::spawn(spec, http_client(1)), seen)
}

async fn open_connections(app: &TestApp, expected: u64) {
    let metrics = &app.running.app.metrics;
    until(&format!("{expected} MQTT connection(s) open"), || metrics.mqtt_connections() == expected).await;
}

#[tokio::test]
async fn a_simulated_device_over_mqtt_runs_the_pump_on_start_and_stops_on_stop() {
    let app = spawn_mqtt_app(|s| s).await;
    let t = app.tenant("rahim", 1, 30).await;
    let (pump, mut seen) = simulated(&app, &t).await;
    // The device reports at once after subscribing; the answer to it says IDLE.
    heard(&mut seen, "IDLE", |happening| {
        matches!(happening, Happening::Command { state, .. } if state.as_str() == "IDLE").then_some(())
    })
    .await;
    // Its first report (at once after subscribing) made it the pump's device.
    until_status(&t, "the device online", |status| status["device"]["online"] == json!(true)).await;

    t.users[0].ok("/api/motor/start", json!({})).await;
    assert!(pump.wait_for_relay(true, PATIENCE).await, "relay ON from the pushed command");
    let running = t.users[0].status().await;
    assert_eq!(running["motor"]["state"], json!("RUNNING"), "{running}");

    t.users[0].ok("/api/motor/stop", json!({})).await;
    assert!(pump.wait_for_relay(false, PATIENCE).await, "relay OFF after Stop");
    let timeline = pump.stop().await;
    assert_eq!(timeline.relay_changes().iter().map(|(_, on)| *on).collect::<Vec<_>>(), [true, false], "{timeline}");
    assert_eq!(timeline.errors, 0, "{timeline}");
    assert!(timeline.polls > 0 && !timeline.latencies_us.is_empty(), "reports answered: {timeline}");
    // The listener stops with the server, closing what is left.
    let (mut left, _) = connected(&app, &t).await;
    app.running.shutdown().await.unwrap();
    closed(&mut left, "server shutdown").await;
}

#[tokio::test]
async fn a_simulated_device_cut_off_stops_at_its_lease_and_runs_again_when_back() {
    let app = spawn_mqtt_app(|s| s).await;
    let t = app.tenant("rahim", 1, 30).await;
    let (pump, mut seen) = simulated(&app, &t).await;
    until_status(&t, "the device online", |status| status["device"]["online"] == json!(true)).await;
    t.users[0].ok("/api/motor/start", json!({})).await;
    assert!(pump.wait_for_relay(true, PATIENCE).await, "relay ON");
    open_connections(&app, 1).await;

    // The network goes: the device's own lease (on its clock) opens the relay; the server sees
    // the connection end, and holds the run only at the lease's end on its clock.
    pump.set_network(false);
    let why = heard(&mut seen, "relay OFF", |happening| match happening {
        Happening::Relay { on: false, why } => Some(why),
        _ => None,
    })
    .await;
    assert_eq!(why, Some(pumppilot_controller::OffReason::LeaseExpired));
    open_connections(&app, 0).await;
    assert_eq!(t.users[0].status().await["motor"]["state"], json!("RUNNING"), "not before the lease");
    app.clock.advance(Duration::from_millis(u64::from(LEASE_MS) + 1));
    let held = t.users[0].status().await;
    assert_eq!(held["motor"]["holdReason"], json!("DEVICE_OFFLINE"), "{held}");

    // Back: it connects again, reports, and the run resumes with the relay ON.
    pump.set_network(true);
    assert!(pump.wait_for_relay(true, PATIENCE).await, "relay ON again");
    until_state(&t, "RUNNING").await;
    let timeline = pump.stop().await;
    assert_eq!(timeline.relay_changes().iter().map(|(_, on)| *on).collect::<Vec<_>>(), [true, false, true, false]);
}

#[tokio::test]
async fn commands_come_on_subscribe_on_every_change_and_in_answer_to_reports_with_their_ref() {
    let app = spawn_mqtt_app(|s| s).await;
    let t = app.tenant("rahim", 1, 30).await;
    let (mut device, topic) = connected(&app, &t).await;
    let first = next_command(&mut device).await;
    assert_eq!((first["state"].as_str(), first.get("ref")), (Some("IDLE"), None), "{first}");
    assert_eq!(first["leaseMs"], json!(LEASE_MS));

    // A report at QoS 1: acknowledged, and answered naming its ref.
    let pkid = device.publish_acked(&format!("{topic}/report"), &report(false, Some(7))).await.unwrap();
    let acked = tokio::time::timeout(PATIENCE, device.next()).await.unwrap().unwrap();
    assert!(matches!(&acked, Some(Packet::PubAck(ack)) if ack.pkid == pkid), "{acked:?}");
    let answer = next_command(&mut device).await;
    assert_eq!((answer["state"].as_str(), answer["ref"].as_u64()), (Some("IDLE"), Some(7)), "{answer}");

    // A farmer presses Start: the new command is pushed at once, naming the last report.
    t.users[0].ok("/api/motor/start", json!({})).await;
    let pushed = next_command(&mut device).await;
    assert_eq!((pushed["motor"].as_str(), pushed["state"].as_str()), (Some("ON"), Some("RUNNING")), "{pushed}");
    assert_eq!(pushed["ref"].as_u64(), Some(7));
    assert!(pushed["seq"].as_u64() > answer["seq"].as_u64(), "a new seq: {pushed}");

    // Every report is answered while ON, QoS 0 too; the relay now closed starts the charging.
    device.publish(&format!("{topic}/report"), &report(true, Some(8))).await.unwrap();
    let answer = next_command(&mut device).await;
    assert_eq!((answer["motor"].as_str(), answer["ref"].as_u64()), (Some("ON"), Some(8)), "{answer}");
    device.publish(&format!("{topic}/report"), &report(true, None)).await.unwrap();
    let answer = next_command(&mut device).await;
    assert_eq!(answer.get("ref"), None, "a report without a ref gets an answer without one: {answer}");

    // The figures count it.
    let metrics = metrics_page(&app).await;
    let figure = |name: &str| -> u64 {
        let line = metrics.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("{name}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(figure("pumppilot_mqtt_connections"), 1);
    assert_eq!(figure("pumppilot_mqtt_connects_total"), 1);
    // In: SUBSCRIBE and three reports. Out: CONNACK, SUBACK, a PUBACK and five commands.
    assert_eq!(
        (figure("pumppilot_mqtt_messages_received_total"), figure("pumppilot_mqtt_messages_sent_total")),
        (4, 8)
    );
}

/// An idle pump's device is not told the same OFF after every report: once it has the command
/// (naming one of its reports), the server is silent until something changes. An ON is answered
/// every time, since each answer renews its lease.
#[tokio::test]
async fn an_unchanged_off_is_told_once_and_an_on_after_every_report() {
    let app = spawn_mqtt_app(|s| s).await;
    let t = app.tenant("rahim", 1, 30).await;
    let (mut device, topic) = connected(&app, &t).await;
    let report_topic = format!("{topic}/report");
    assert_eq!(next_command(&mut device).await.get("ref"), None, "the command on SUBSCRIBE names no report");
    // The first report is answered: the device now has the command, naming a report of its own.
    device.publish(&report_topic, &report(false, Some(1))).await.unwrap();
    let idle = next_command(&mut device).await;
    assert_eq!((idle["state"].as_str(), idle["ref"].as_u64()), (Some("IDLE"), Some(1)), "{idle}");
    // The same OFF again is not sent, whatever the report says.
    device.publish(&report_topic, &report(false, Some(2))).await.unwrap();
    let grid_down = json!({"loadShedding": true, "ready": false, "relay": false, "fw": "test", "ref": 3});
    device.publish(&report_topic, &serde_json::to_vec(&grid_down).unwrap()).await.unwrap();
    nothing_published(&mut device, "an unchanged OFF repeated").await;
    until_status(&t, "the grid down, reported", |status| status["device"]["loadShedding"] == json!(true)).await;
    device.publish(&report_topic, &report(false, Some(4))).await.unwrap();

    // A change is pushed at once, naming the latest report; each report while ON is answered.
    t.users[0].ok("/api/motor/start", json!({})).await;
    let on = next_command(&mut device).await;
    assert_eq!((on["motor"].as_str(), on["ref"].as_u64()), (Some("ON"), Some(4)), "{on}");
    for reference in [5, 6] {
        device.publish(&report_topic, &report(true, Some(reference))).await.unwrap();
        let answer = next_command(&mut device).await;
        assert_eq!(
            (answer["motor"].as_str(), answer["ref"].as_u64()),
            (Some("ON"), Some(u64::from(reference))),
            "{answer}"
        );
    }
    // Stop: the OFF is pushed (naming report 6), and not repeated.
    t.users[0].ok("/api/motor/stop", json!({})).await;
    let off = next_command(&mut device).await;
    assert_eq!(
        (off["motor"].as_str(), off["state"].as_str(), off["ref"].as_u64()),
        (Some("OFF"), Some("IDLE"), Some(6))
    );
    device.publish(&report_topic, &report(false, Some(7))).await.unwrap();
    nothing_published(&mut device, "the OFF after Stop repeated").await;
    // A device whose relay is closed when it should not be (it never got the OFF) is told again.
    device.publish(&report_topic, &report(true, Some(8))).await.unwrap();
    let again = next_command(&mut device).await;
    assert_eq!((again["motor"].as_str(), again["ref"].as_u64()), (Some("OFF"), Some(8)), "{again}");

    // Nor after a report without a ref.
    device.publish(&report_topic, &report(false, None)).await.unwrap();
    nothing_published(&mut device, "the OFF repeated for a report without a ref").await;
}

#[tokio::test]
async fn a_device_that_connects_again_takes_over_and_offline_ends_the_session() {
    let app = spawn_mqtt_app(|s| s).await;
    let t = app.tenant("rahim", 0, 0).await;
    let (mut before, _) = connected(&app, &t).await;
    next_command(&mut before).await;
    let (mut again, topic) = connected(&app, &t).await;
    closed(&mut before, "the connection taken over").await;
    next_command(&mut again).await;
    // A status other than `offline` changes nothing; `offline` (a will's words, said by the device
    // itself) ends the session.
    again.publish(&format!("{topic}/status"), b"online").await.unwrap();
    again.publish(&format!("{topic}/report"), &report(false, Some(1))).await.unwrap();
    assert_eq!(next_command(&mut again).await["ref"], json!(1));
    open_connections(&app, 1).await;
    again.publish(&format!("{topic}/status"), b"offline").await.unwrap();
    closed(&mut again, "offline on its status topic").await;
    open_connections(&app, 0).await;
    let ended = app.running.app.metrics.mqtt_sessions_ended();
    assert_eq!(ended, [("asked", 1), ("taken_over", 1)].into(), "{ended:?}");
}

#[tokio::test]
async fn a_dropped_connection_holds_the_run_at_the_lease_end_not_before() {
    let app = spawn_mqtt_app(|s| s).await;
    let t = app.tenant("rahim", 1, 30).await;
    let (mut device, topic) = connected(&app, &t).await;
    next_command(&mut device).await;
    t.users[0].ok("/api/motor/start", json!({})).await;
    device.publish(&format!("{topic}/report"), &report(true, Some(1))).await.unwrap();
    until_state(&t, "RUNNING").await;
    // The socket closes without a DISCONNECT (as the will message tells a broker).
    drop(device);
    open_connections(&app, 0).await;
    assert_eq!(t.users[0].status().await["motor"]["state"], json!("RUNNING"), "nothing happens at once");
    app.clock.advance(Duration::from_millis(u64::from(LEASE_MS) + 1));
    let held = t.users[0].status().await;
    assert_eq!(held["motor"]["state"], json!("HOLD"), "{held}");
    assert_eq!(held["motor"]["holdReason"], json!("DEVICE_OFFLINE"), "{held}");
}

/// The server's `GET /metrics` page, as the master reads it.
async fn metrics_page(app: &TestApp) -> String {
    let master = app.master().await;
    let answer = reqwest::Client::new().get(format!("{}/metrics", app.base)).bearer_auth(master.token.unwrap());
    answer.send().await.unwrap().text().await.unwrap()
}

/// The tenant's device connected with a keep-alive of 10 s (silent after 15 s), subscribed, its
/// pump started by the first farmer and confirmed running; the device and its id.
async fn running_with_keep_alive_10(app: &TestApp, t: &Tenant) -> (Connection, String) {
    let id = device_id(t).await;
    let mut device = Connection::connect(&mqtt_addr(app), &id, &device_key(t), 10).await.unwrap();
    device.subscribe(&format!("pumppilot/{id}/command")).await.unwrap();
    next_command(&mut device).await;
    t.users[0].ok("/api/motor/start", json!({})).await;
    device.publish(&format!("pumppilot/{id}/report"), &report(true, Some(1))).await.unwrap();
    next_command(&mut device).await;
    until_state(t, "RUNNING").await;
    (device, id)
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_one_and_a_half_keep_alives() {
    let app = spawn_mqtt_app(|s| s).await;
    let t = app.tenant("rahim", 1, 30).await;
    let (mut device, _) = running_with_keep_alive_10(&app, &t).await;
    // The device says nothing more but keeps its socket open.
    let silent_at = pumppilot_server::clock::Clock::now(app.clock.as_ref()) + 15_000;
    until("the session waits for the keep-alive", || app.clock.waits().contains(&silent_at)).await;
    app.clock.advance(Duration::from_millis(u64::from(LEASE_MS) + 1));
    let held = t.users[0].status().await;
    assert_eq!(held["motor"]["holdReason"], json!("DEVICE_OFFLINE"), "the lease, not the connection: {held}");
    assert_eq!(app.running.app.metrics.mqtt_connections(), 1, "still open within 15 s");
    app.clock.advance(Duration::from_millis(15_000));
    closed(&mut device, "silent past 1.5 × 10 s").await;
    open_connections(&app, 0).await;
    // Counted for the operator as silence, not as a device that went away.
    let metrics = metrics_page(&app).await;
    let ended: Vec<&str> = metrics.lines().filter(|l| l.starts_with("pumppilot_mqtt_sessions_ended_total{")).collect();
    assert_eq!(ended, ["pumppilot_mqtt_sessions_ended_total{why=\"silent\"} 1"], "{metrics}");
}

/// A ping already in the server's socket when the device's silence comes is not silence, even
/// before the server's runtime knows the socket is readable. A busy server learns which sockets
/// became readable a bounded batch at a time, while every timer due fires at once: at 100,000
/// devices, sessions whose reports had come were ended as silent. Here the device pings and the
/// clock moves to its silence in one step, with no await between: the session's timer wakes it
/// before the runtime's driver turns, so the session cannot know of the ping but by asking the
/// socket itself. Without that it was cut off as silent in every round (ten runs of ten). The
/// same holds for a CONNECT waiting unread when the 10 s given for it are up.
#[tokio::test]
async fn a_packet_waiting_unread_when_its_time_is_up_is_read() {
    const ROUNDS: u32 = 4;
    let app = spawn_mqtt_app(|s| s).await;
    let t = app.tenant("rahim", 1, 30).await;
    let id = device_id(&t).await;
    let mut device = Connection::connect(&mqtt_addr(&app), &id, &device_key(&t), 10).await.unwrap();
    for round in 0..ROUNDS {
        let silent_at = pumppilot_server::clock::Clock::now(app.clock.as_ref()) + 15_000;
        until("the session waits for its silence", || app.clock.waits().contains(&silent_at)).await;
        // Written to the kernel at once (the socket is writable), and no await yields between.
        device.send(Packet::PingReq).await.unwrap();
        app.clock.advance(Duration::from_millis(15_000));
        let answered = tokio::time::timeout(PATIENCE, device.next()).await.expect("an answer or a close");
        assert!(
            matches!(answered, Ok(Some(Packet::PingResp))),
            "round {round}: the talking device was cut off as silent ({answered:?})"
        );
    }
    // The same for a CONNECT that waits unread as the 10 s given for it run out.
    let mut late = Connection::open(&mqtt_addr(&app)).await.unwrap();
    let connect_by = pumppilot_server::clock::Clock::now(app.clock.as_ref()) + 10_000;
    until("the connection waits for its CONNECT", || app.clock.waits().contains(&connect_by)).await;
    late.send(connect_packet(&id, &device_key(&t), 10)).await.unwrap();
    app.clock.advance(Duration::from_millis(10_000));
    let answered = tokio::time::timeout(PATIENCE, late.next()).await.expect("an answer or a close");
    assert!(
        matches!(&answered, Ok(Some(Packet::ConnAck(ack))) if ack.code == ConnectReturnCode::Success),
        "a CONNECT sent in time is answered ({answered:?})"
    );
    let page = metrics_page(&app).await;
    assert!(page.contains("pumppilot_mqtt_heard_late_total 5"), "each heard late: {page}");
    // The first connection was taken over by the second, not ended as silent.
    assert!(!page.contains("why=\"silent\""), "no session ended as silent: {page}");
}

/// A session busy with a report (its commit waits for the store) past one and a half keep-alives
/// is not ended as silent when the device spoke meanwhile: what came while the report was
/// handled is read before the silence is looked at. The store is held by the test with a write
/// transaction of its own on the SQLite file (the server's commit waits, as it would on a busy
/// store), the clock moved 16 s meanwhile, and the device pings; once the store is free, the ping
/// is answered and the connection stays open. Before, both were ready together and the session
/// picked one at random: half the time the talking device was cut off as silent. So the test
/// does it [`ROUNDS`] times over (each report changes the inputs, so each commits): that bug
/// would pass all of them once in 2^ROUNDS runs. On SQLite only: the run of these tests on
/// MongoDB (`cargo xtask test`) skips it.
#[tokio::test]
async fn a_device_that_spoke_while_its_report_waited_for_the_store_is_not_silent() {
    const ROUNDS: u32 = 12;
    let app = spawn_mqtt_app(|s| s).await;
    let t = app.tenant("rahim", 1, 30).await;
    let (mut device, id) = running_with_keep_alive_10(&app, &t).await;

    let metrics = &app.running.app.metrics;
    let mut store = rusqlite::Connection::open(app.database()).unwrap();
    for round in 0..ROUNDS {
        let held = store.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).unwrap();
        let before = metrics.mqtt_messages_in();
        let report = json!({"loadShedding": round % 2 == 0, "ready": true, "relay": true, "ref": round + 2});
        device.publish(&format!("pumppilot/{id}/report"), &serde_json::to_vec(&report).unwrap()).await.unwrap();
        until("the report taken (its commit waits for the store)", || metrics.mqtt_messages_in() > before).await;
        app.clock.advance(Duration::from_millis(16_000));
        device.send(Packet::PingReq).await.unwrap();
        held.rollback().unwrap();

        let answered = tokio::time::timeout(PATIENCE, async {
            loop {
                match device.next().await {
                    Ok(Some(Packet::PingResp)) => return true,
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => return false,
                }
            }
        });
        assert!(
            answered.await.expect("an answer to the ping"),
            "round {round}: the talking device was cut off as silent"
        );
        assert_eq!(metrics.mqtt_connections(), 1, "round {round}: still connected");
    }
    let page = metrics_page(&app).await;
    assert!(!page.contains("why=\"silent\""), "no session ended as silent: {page}");
}

async fn until_state(t: &Tenant, state: &str) {
    until_status(t, state, |status| status["motor"]["state"] == json!(state)).await;
}

#[tokio::test]
async fn a_wrong_id_or_key_or_a_retired_device_is_refused_at_connect() {
    let app = spawn_mqtt_app(|s| s).await;
    let t = app.tenant("rahim", 0, 0).await;
    let other = app.tenant("karim", 0, 0).await;
    let (id, other_id) = (device_id(&t).await, device_id(&other).await);
    let refused = |result: Result<Connection, ConnectError>| match result {
        Err(ConnectError::Refused(code)) => code,
        Err(other) => panic!("refused otherwise: {other}"),
        Ok(_) => panic!("accepted"),
    };
    let addr = mqtt_addr(&app);
    let wrong = "pp_dev_not-the-key";
    assert_eq!(refused(Connection::connect(&addr, &id, wrong, 30).await), ConnectReturnCode::BadUserNamePassword);
    assert_eq!(
        refused(Connection::connect(&addr, &other_id, &device_key(&t), 30).await),
        ConnectReturnCode::BadUserNamePassword,
        "a key under another device's id"
    );
    // Username right, client id another: refused too.
    let mut mixed = Connection::open(&addr).await.unwrap();
    let Packet::Connect(mut connect) = connect_packet(&id, &device_key(&t), 30) else { unreachable!() };
    connect.client_id = other_id.clone();
    mixed.send(Packet::Connect(connect)).await.unwrap();
    let answer = tokio::time::timeout(PATIENCE, mixed.next()).await.unwrap().unwrap();
    assert!(matches!(answer, Some(Packet::ConnAck(ack)) if ack.code == ConnectReturnCode::BadUserNamePassword));
    closed(&mut mixed, "after a refused CONNECT").await;
    // A device that signs its HTTP requests (the link) is let in too: its reports must then be
    // signed (`mqtt_link.rs`).
    let signing = t.admin.ok("/api/admin/devices", json!({"name": "signing board"})).await;
    let (signing_id, signing_key) = (signing["id"].as_str().unwrap(), signing["deviceKey"].as_str().unwrap());
    Connection::connect(&addr, signing_id, signing_key, 30).await.expect("before it ever signed");
    let secret = pumppilot_protocol::link::LinkSecret::parse(signing["linkSecret"].as_str().unwrap()).unwrap();
    let body = report(false, None);
    let tag = secret.request_tag("POST", "/api/esp32/poll", 1, &body);
    let signed = reqwest::Client::new()
        .post(format!("{}/api/esp32/poll", app.base))
        .bearer_auth(signing_key)
        .header("content-type", "application/json")
        .header(pumppilot_protocol::link::COUNTER_HEADER, "1")
        .header(
            pumppilot_protocol::link::MAC_HEADER,
            String::from_utf8(pumppilot_protocol::link::to_hex(&tag).to_vec()).unwrap(),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), reqwest::StatusCode::OK);
    Connection::connect(&addr, signing_id, signing_key, 30).await.expect("a device that signs");
    // The right pair works, until the device is retired.
    Connection::connect(&addr, &id, &device_key(&t), 30).await.expect("the right id and key");
    let (status, body) = t.admin.request(reqwest::Method::DELETE, &format!("/api/admin/devices/{id}"), None).await;
    assert!(status.is_success(), "{status} {body}");
    assert_eq!(
        refused(Connection::connect(&addr, &id, &device_key(&t), 30).await),
        ConnectReturnCode::BadUserNamePassword
    );
}

/// The commands the server publishes to `connection` until it closes it (within the limit).
async fn told_until_closed(connection: &mut Connection, what: &str) -> Vec<serde_json::Value> {
    let told = tokio::time::timeout(PATIENCE, async {
        let mut told = Vec::new();
        loop {
            match connection.next().await {
                Ok(Some(Packet::Publish(publish))) => told.push(serde_json::from_slice(&publish.payload).unwrap()),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return told,
            }
        }
    });
    told.await.unwrap_or_else(|_| panic!("{what}: the connection stayed open"))
}

/// The answer to a CONNECT that must be refused.
async fn refused_connect(addr: &str, id: &str, key: &str) -> ConnectReturnCode {
    match Connection::connect(addr, id, key, 30).await {
        Err(ConnectError::Refused(code)) => code,
        Err(other) => panic!("refused otherwise: {other}"),
        Ok(_) => panic!("accepted"),
    }
}

/// The tenant's devices by name: whether each drives the pump.
async fn controllers(t: &Tenant) -> Vec<(String, bool)> {
    let (_, devices) = t.admin.get("/api/admin/devices").await;
    let devices = devices.as_array().expect("the devices").iter();
    devices.map(|d| (d["name"].as_str().unwrap().to_owned(), d["controller"] == json!(true))).collect()
}

/// A stolen board's connection outlives nothing: the owner retires it while it is connected, and
/// the server closes that connection at once (it was the pump's controller, and a retired
/// controller's next report would have made it the controller again, told ON and charged, while
/// the board that replaces it was told OFF). Its key is refused from then on; the new board
/// becomes the controller and runs the pump.
#[tokio::test]
async fn a_retired_device_is_cut_off_at_once_and_the_board_that_replaces_it_runs_the_pump() {
    let app = spawn_mqtt_app(|s| s).await;
    let t = app.tenant("rahim", 1, 30).await;
    let (id, key) = (device_id(&t).await, device_key(&t));
    let (mut stolen, topic) = connected(&app, &t).await;
    next_command(&mut stolen).await;
    stolen.publish(&format!("{topic}/report"), &report(false, Some(1))).await.unwrap();
    assert_eq!(next_command(&mut stolen).await["ref"], json!(1));
    assert_eq!(controllers(&t).await, [("rahim pump".to_owned(), true)]);

    let (status, body) = t.admin.request(reqwest::Method::DELETE, &format!("/api/admin/devices/{id}"), None).await;
    assert_eq!(status, reqwest::StatusCode::NO_CONTENT, "{body}");
    let told = told_until_closed(&mut stolen, "the retired board's connection").await;
    assert!(told.is_empty(), "nothing told to the retired board: {told:?}");
    assert_eq!(app.running.app.metrics.mqtt_sessions_ended(), [("key_changed", 1)].into());
    assert_eq!(refused_connect(&mqtt_addr(&app), &id, &key).await, ConnectReturnCode::BadUserNamePassword);

    // The new board at the pump: the farmer's Start runs it, and it alone drives the pump.
    let new = t.admin.ok("/api/admin/devices", json!({"name": "new board"})).await;
    let (new_id, new_key) = (new["id"].as_str().unwrap(), new["deviceKey"].as_str().unwrap());
    t.users[0].ok("/api/motor/start", json!({})).await;
    let mut board = Connection::device(&mqtt_addr(&app), new_id, new_key).await.unwrap();
    next_command(&mut board).await;
    board.publish(&format!("pumppilot/{new_id}/report"), &report(false, Some(1))).await.unwrap();
    let answer = next_command(&mut board).await;
    assert_eq!((answer["motor"].as_str(), answer["ref"].as_u64()), (Some("ON"), Some(1)), "{answer}");
    assert_eq!(controllers(&t).await, [("new board".to_owned(), true)]);
    board.publish(&format!("pumppilot/{new_id}/report"), &report(true, Some(2))).await.unwrap();
    assert_eq!(next_command(&mut board).await["motor"], json!("ON"));
    until_state(&t, "RUNNING").await;
}

/// Rotating a leaked key (the remedy the docs give) cuts off whoever holds the old one over MQTT
/// as over HTTP: the connection made with it is closed at once, a CONNECT with it is refused,
/// and the new key connects and runs the pump.
#[tokio::test]
async fn a_rotated_key_closes_the_connection_made_with_it_and_the_new_key_connects() {
    let app = spawn_mqtt_app(|s| s).await;
    let t = app.tenant("rahim", 1, 30).await;
    let (id, old_key) = (device_id(&t).await, device_key(&t));
    let (mut leaked, topic) = connected(&app, &t).await;
    next_command(&mut leaked).await;
    leaked.publish(&format!("{topic}/report"), &report(false, Some(1))).await.unwrap();
    assert_eq!(next_command(&mut leaked).await["ref"], json!(1));

    let rotated = t.admin.ok(&format!("/api/admin/devices/{id}/rotate-key"), json!({})).await;
    let new_key = rotated["deviceKey"].as_str().unwrap();
    let told = told_until_closed(&mut leaked, "the old key's connection").await;
    assert!(told.is_empty(), "nothing told to the old key: {told:?}");
    assert_eq!(refused_connect(&mqtt_addr(&app), &id, &old_key).await, ConnectReturnCode::BadUserNamePassword);
    let (status, _) = t.device.client.get("/api/esp32/poll?loadShedding=0&ready=1&relay=0").await;
    assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED, "the old key over HTTP");

    t.users[0].ok("/api/motor/start", json!({})).await;
    let mut board = Connection::device(&mqtt_addr(&app), &id, new_key).await.unwrap();
    next_command(&mut board).await;
    board.publish(&format!("{topic}/report"), &report(false, Some(2))).await.unwrap();
    let answer = next_command(&mut board).await;
    assert_eq!((answer["motor"].as_str(), answer["ref"].as_u64()), (Some("ON"), Some(2)), "{answer}");
    assert_eq!(app.running.app.metrics.mqtt_sessions_ended(), [("key_changed", 1)].into());
}

/// The key is checked again before every report and command, not only at CONNECT: a connection
/// whose key is no longer the device's in the server's key cache, before the session was told
/// (as for a change on its way), gets no command and has no report applied; it is closed.
#[tokio::test]
async fn a_connection_whose_key_went_unseen_gets_no_command_and_has_no_report_applied() {
    let app = spawn_mqtt_app(|s| s).await;
    let t = app.tenant("rahim", 1, 30).await;
    let id = device_id(&t).await;
    let keys = &app.running.app.device_keys;
    // The key leaves the cache alone: nothing tells the session.
    let take_key = || {
        let mut keys = keys.write().unwrap();
        let hash = *keys.iter().find(|(_, (device, _))| device.to_string() == id).expect("the device's key").0;
        (hash, keys.remove(&hash).unwrap())
    };

    // A change to push (the farmer's Start) finds the key gone: no command, the connection closed.
    let (mut device, topic) = connected(&app, &t).await;
    next_command(&mut device).await;
    let (hash, entry) = take_key();
    t.users[0].ok("/api/motor/start", json!({})).await;
    let told = told_until_closed(&mut device, "a push with the key gone").await;
    assert!(told.is_empty(), "{told:?}");

    // A report finds the key gone: not applied (nothing of it recorded; nor is the device the
    // controller).
    keys.write().unwrap().insert(hash, entry);
    let (mut device, _) = connected(&app, &t).await;
    next_command(&mut device).await;
    take_key();
    device.publish(&format!("{topic}/report"), &report(true, Some(1))).await.unwrap();
    let told = told_until_closed(&mut device, "a report with the key gone").await;
    assert!(told.is_empty(), "{told:?}");
    let (_, devices) = t.admin.get("/api/admin/devices").await;
    assert_eq!((&devices[0]["lastSeenAt"], &devices[0]["controller"]), (&json!(null), &json!(false)), "{devices}");
    assert_eq!(app.running.app.metrics.mqtt_sessions_ended(), [("key_changed", 2)].into());
}

#[tokio::test]
async fn another_devices_topics_disconnect_and_bad_packets_close_only_their_connection() {
    let app = spawn_mqtt_app(|s| s).await;
    let t = app.tenant("rahim", 0, 0).await;
    let other = app.tenant("karim", 0, 0).await;
    // The bystander is another pump's device; every attack comes from this one's.
    let (mut bystander, theirs) = connected(&app, &other).await;
    next_command(&mut bystander).await;
    let other_id = device_id(&other).await;
    let own = format!("pumppilot/{}", device_id(&t).await);
    let addr = mqtt_addr(&app);

    type Attack = fn(String, String) -> Vec<Packet>;
    let trespass: [(&str, Attack); 4] = [
        ("a report to another device's topic", |_, other| {
            vec![Packet::Publish(Publish::new(
                format!("pumppilot/{other}/report"),
                QoS::AtMostOnce,
                report(false, None),
            ))]
        }),
        ("another device's command topic", |_, other| {
            vec![Packet::Subscribe(Subscribe::new(format!("pumppilot/{other}/command"), QoS::AtMostOnce))]
        }),
        ("every device's commands", |_, _| {
            vec![Packet::Subscribe(Subscribe::new("pumppilot/+/command", QoS::AtMostOnce))]
        }),
        ("a topic outside the contract", |own, _| {
            vec![Packet::Publish(Publish::new(format!("pumppilot/{own}/relay"), QoS::AtMostOnce, b"on".to_vec()))]
        }),
    ];
    let own_id = own.trim_start_matches("pumppilot/").to_owned();
    for (what, attack) in trespass {
        let mut device = Connection::device(&addr, &own_id, &device_key(&t)).await.unwrap();
        for packet in attack(own_id.clone(), other_id.clone()) {
            device.send(packet).await.unwrap();
        }
        closed(&mut device, what).await;
    }

    let bad: [(&str, Vec<u8>); 5] = [
        ("garbage", vec![0xFF; 16]),
        ("a second CONNECT", encode(&connect_packet(&own_id, &device_key(&t), 30)).unwrap()),
        (
            "an oversized packet (5 KiB)",
            encode(&Packet::Publish(Publish::new(format!("{own}/report"), QoS::AtMostOnce, vec![b' '; 5 * 1024])))
                .unwrap(),
        ),
        (
            "a report that is not JSON",
            encode(&Packet::Publish(Publish::new(format!("{own}/report"), QoS::AtMostOnce, b"relay=1".to_vec())))
                .unwrap(),
        ),
        ("a remaining length past four bytes", vec![0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
    ];
    for (what, bytes) in bad {
        let mut device = Connection::device(&addr, &own_id, &device_key(&t)).await.unwrap();
        device.send_raw(&bytes).await.unwrap();
        closed(&mut device, what).await;
    }
    // Before CONNECT, anything else closes the connection without an answer.
    let mut early = Connection::open(&addr).await.unwrap();
    early.send(Packet::PingReq).await.unwrap();
    closed(&mut early, "a PINGREQ before CONNECT").await;

    // Through all of it the other connection kept working.
    bystander.publish(&format!("{theirs}/report"), &report(false, Some(3))).await.unwrap();
    assert_eq!(next_command(&mut bystander).await["ref"], json!(3));
    open_connections(&app, 1).await;
    // The operator sees why each was cut off (the early one had no session).
    let ended = app.running.app.metrics.mqtt_sessions_ended();
    assert_eq!(ended, [("malformed", 5), ("trespass", 4)].into(), "{ended:?}");
}

#[tokio::test]
async fn a_connect_flood_from_one_address_is_refused() {
    // One CONNECT a second, ten at once; the server's clock stands still, so nothing refills.
    let app = spawn_mqtt_app(|s| Settings { mqtt_connects_per_second: 1, ..s }).await;
    let t = app.tenant("rahim", 0, 0).await;
    let id = device_id(&t).await;
    let addr = mqtt_addr(&app);
    for n in 0..10 {
        Connection::connect(&addr, &id, &device_key(&t), 30).await.unwrap_or_else(|e| panic!("CONNECT {n}: {e}"));
    }
    match Connection::connect(&addr, &id, &device_key(&t), 30).await {
        Err(ConnectError::Refused(ConnectReturnCode::ServiceUnavailable)) => {}
        other => panic!("the 11th CONNECT: {:?}", other.err()),
    }
    app.clock.advance(Duration::from_secs(1));
    Connection::connect(&addr, &id, &device_key(&t), 30).await.expect("one more a second later");

    // A wrong key costs ten CONNECTs' worth: the address is slowed, and back once its bucket
    // refills, never shut out for a window (many boards may share one address).
    app.clock.advance(Duration::from_secs(10));
    let guess = Connection::connect(&addr, &id, "pp_dev_guess", 30).await;
    assert!(matches!(guess, Err(ConnectError::Refused(ConnectReturnCode::BadUserNamePassword))), "{:?}", guess.err());
    match Connection::connect(&addr, &id, &device_key(&t), 30).await {
        Err(ConnectError::Refused(ConnectReturnCode::ServiceUnavailable)) => {}
        other => panic!("right after a wrong key: {:?}", other.err()),
    }
    app.clock.advance(Duration::from_secs(1));
    Connection::connect(&addr, &id, &device_key(&t), 30).await.expect("one more a second later");

    // A retired board retrying its old key all day long, at the default budget.
    let app = spawn_mqtt_app(|s| s).await;
    let t = app.tenant("rahim", 0, 0).await;
    let id = device_id(&t).await;
    let addr = mqtt_addr(&app);
    for _ in 0..100 {
        let refused = Connection::connect(&addr, &id, "pp_dev_retired", 30).await;
        assert!(matches!(refused, Err(ConnectError::Refused(_))), "{:?}", refused.err());
    }
    match Connection::connect(&addr, &id, &device_key(&t), 30).await {
        Err(ConnectError::Refused(ConnectReturnCode::ServiceUnavailable)) => {}
        other => panic!("the bucket is dry: {:?}", other.err()),
    }
    app.clock.advance(Duration::from_secs(10));
    Connection::connect(&addr, &id, &device_key(&t), 30)
        .await
        .expect("the device behind the same address, ten seconds on");
}

#[tokio::test]
async fn devices_over_mqtt_and_http_share_the_servers_connection_slots() {
    use tokio::io::AsyncWriteExt;

    let app = spawn_mqtt_app(|s| Settings { max_connections: 4, header_timeout: Duration::from_secs(600), ..s }).await;
    let (mqtt, http) = (mqtt_addr(&app), app.base.trim_start_matches("http://"));
    let t = app.tenant("rahim", 0, 0).await;
    let mut keys = Vec::new();
    for n in 0..8 {
        let created = t.admin.ok("/api/admin/devices", json!({"name": format!("well {n}")})).await;
        keys.push((created["id"].as_str().unwrap().to_owned(), created["deviceKey"].as_str().unwrap().to_owned()));
    }
    let inputs = json!({"loadShedding": false, "ready": true, "relay": false});
    let seq = t.device.client.ok("/api/esp32/poll", inputs).await["seq"].as_u64().unwrap();
    // MQTT devices take every slot but the one the HTTP listener holds for its next connection,
    // until one more cannot connect: the test's own idle connections were closed to make room
    // meanwhile, and every connection left is at work.
    let mut devices = Vec::new();
    for (id, key) in &keys {
        match tokio::time::timeout(Duration::from_secs(3), Connection::device(&mqtt, id, key)).await {
            Ok(connected) => devices.push(connected.expect("connected")),
            Err(_) => break,
        }
    }
    assert!(devices.len() < keys.len(), "every device connected: the cap is not shared");
    // An HTTP device's long-poll takes the HTTP listener's slot (the clock stands still: it is
    // held), so the next HTTP caller waits to be accepted (with slots of its own, HTTP would
    // serve it at once), and nobody is idle to make room for it...
    let key = t.device.client.token.clone().unwrap();
    let mut long_poll = tokio::net::TcpStream::connect(http).await.unwrap();
    let request = format!(
        "GET /api/esp32/poll?loadShedding=0&ready=1&relay=0&wait=30000&seq={seq} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {key}\r\n\r\n"
    );
    long_poll.write_all(request.as_bytes()).await.unwrap();
    app.until_one_more_waits(i64::from(LEASE_MS / 3), 0).await;
    let page = common::healthz_on_its_own_connection(http);
    tokio::pin!(page);
    assert!(tokio::time::timeout(Duration::from_secs(2), &mut page).await.is_err(), "served past the cap");
    // ...until the devices' connections go.
    devices.clear();
    let answer = tokio::time::timeout(PATIENCE, &mut page).await.expect("served once slots were free");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

/// A CONNECT sent right after `header` (what a TCP proxy speaking the PROXY protocol sends
/// first), in one write as a proxy often does: the CONNACK's code, or `None` when the server
/// closed the connection without one.
async fn connect_behind(addr: &str, header: &[u8], id: &str, key: &str) -> Option<ConnectReturnCode> {
    let mut connection = Connection::open(addr).await.unwrap();
    let connect = encode(&connect_packet(id, key, 30)).unwrap();
    connection.send_raw(&[header, &connect].concat()).await.ok()?;
    match tokio::time::timeout(PATIENCE, connection.next()).await.expect("an answer or the connection closed") {
        Ok(Some(Packet::ConnAck(ack))) => Some(ack.code),
        _ => None,
    }
}

/// A PROXY protocol version 2 header for a TCP connection from `client` (port 40000) to
/// 127.0.0.1:1883, byte by byte as the protocol's specification lays it out.
fn proxy_v2(client: [u8; 4]) -> Vec<u8> {
    let mut header = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    header.extend([0x21, 0x11, 0, 12]); // version 2, PROXY; TCP over IPv4; 12 bytes of addresses
    header.extend(client);
    header.extend([127, 0, 0, 1]);
    header.extend(40000u16.to_be_bytes());
    header.extend(1883u16.to_be_bytes());
    header
}

/// A server behind a TCP proxy (the test, at 127.0.0.1: every connection begins with its PROXY
/// header) with a bucket of ten CONNECTs an address, one a second: the server, its one device's
/// id and key, and its MQTT address.
async fn behind_this_proxy() -> (TestApp, String, String, String) {
    let app = spawn_mqtt_app(|s| Settings {
        mqtt_connects_per_second: 1,
        mqtt_proxies: vec!["127.0.0.0/8".parse().unwrap()],
        ..s
    })
    .await;
    let t = app.tenant("rahim", 0, 0).await;
    let (id, key, addr) = (device_id(&t).await, device_key(&t), mqtt_addr(&app));
    (app, id, key, addr)
}

/// A PROXY protocol version 1 header for a TCP connection from `client` to 127.0.0.1:1883.
fn proxy_v1(client: &str) -> Vec<u8> {
    format!("PROXY TCP4 {client} 127.0.0.1 40000 1883\r\n").into_bytes()
}

#[tokio::test]
async fn behind_a_tcp_proxy_each_device_is_budgeted_by_the_address_the_proxy_names() {
    let (_app, id, key, addr) = behind_this_proxy().await;
    // A retired board at one address empties that address's budget (a wrong key costs ten)...
    let retired = connect_behind(&addr, &proxy_v1("203.0.113.7"), &id, "pp_dev_retired").await;
    assert_eq!(retired, Some(ConnectReturnCode::BadUserNamePassword));
    let same_address = connect_behind(&addr, &proxy_v1("203.0.113.7"), &id, &key).await;
    assert_eq!(same_address, Some(ConnectReturnCode::ServiceUnavailable));
    // ...while devices at other addresses come through the same proxy, named in either version.
    assert_eq!(connect_behind(&addr, &proxy_v1("198.51.100.9"), &id, &key).await, Some(ConnectReturnCode::Success));
    assert_eq!(connect_behind(&addr, &proxy_v2([192, 0, 2, 44]), &id, &key).await, Some(ConnectReturnCode::Success));
    // The proxy's own check names no client: it counts as the proxy's address.
    assert_eq!(connect_behind(&addr, b"PROXY UNKNOWN\r\n", &id, &key).await, Some(ConnectReturnCode::Success));
    // From the proxy, a connection without a header, or with a broken one, is closed unanswered.
    assert_eq!(connect_behind(&addr, b"", &id, &key).await, None);
    assert_eq!(connect_behind(&addr, b"PROXY TCP4 somewhere 127.0.0.1 1 2\r\n", &id, &key).await, None);

    // A server not told of a proxy believes no header: it is a malformed first packet.
    let app = spawn_mqtt_app(|s| s).await;
    let t = app.tenant("rahim", 0, 0).await;
    let (id, key, addr) = (device_id(&t).await, device_key(&t), mqtt_addr(&app));
    assert_eq!(connect_behind(&addr, &proxy_v1("198.51.100.9"), &id, &key).await, None);
    assert_eq!(connect_behind(&addr, b"", &id, &key).await, Some(ConnectReturnCode::Success));
}

#[tokio::test]
async fn one_address_cannot_hold_more_silent_connections_than_its_bucket() {
    // Ten CONNECTs' worth a bucket; the server's clock stands still, so no connection's ten
    // seconds run out. Addresses are named through a proxy (this test) to have several.
    let (app, id, key, addr) = behind_this_proxy().await;
    // Eleven connections from one address that never send a CONNECT: one is closed at once.
    let mut silent = Vec::new();
    for _ in 0..11 {
        let mut connection = Connection::open(&addr).await.unwrap();
        connection.send_raw(&proxy_v1("203.0.113.7")).await.unwrap();
        silent.push(connection);
    }
    open_connections(&app, 10).await;
    // The address's devices wait meanwhile (the refused one cost a failed CONNECT); devices at
    // other addresses do not.
    assert_eq!(connect_behind(&addr, &proxy_v1("203.0.113.7"), &id, &key).await, None);
    assert_eq!(connect_behind(&addr, &proxy_v1("198.51.100.9"), &id, &key).await, Some(ConnectReturnCode::Success));
    // Once the silent ones are gone and the bucket has refilled, the address connects again.
    silent.clear();
    open_connections(&app, 0).await;
    app.clock.advance(Duration::from_secs(10));
    assert_eq!(connect_behind(&addr, &proxy_v1("203.0.113.7"), &id, &key).await, Some(ConnectReturnCode::Success));
}

/// The server's resident memory, in KiB.
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// What an idle MQTT connection costs the real server (a measurement, not a check of speed:
/// `cargo test -p pumppilot --test mqtt -- --ignored --nocapture`). `MQTT_DEVICES` devices
/// (default 2,000) connect, subscribe and report once, then stay idle.
#[tokio::test]
#[ignore = "a measurement: run it by name"]
async fn idle_connections_cost_a_few_kilobytes_each() {
    let devices: usize = std::env::var("MQTT_DEVICES").ok().and_then(|n| n.parse().ok()).unwrap_or(2_000);
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let (server, base) = common::start_server_with(
        dir.path(),
        &[("PUMPPILOT_MQTT_BIND", addr.as_str()), ("PUMPPILOT_MQTT_CONNECTS_PER_SECOND", "100000")],
    );
    let site = common::Site { base: base.clone() };
    let t = site.tenant("rahim", 0, 0).await;
    let mut ids = Vec::new();
    for n in 0..devices {
        let created = t.admin.ok("/api/admin/devices", json!({"name": format!("well {n}")})).await;
        ids.push((created["id"].as_str().unwrap().to_owned(), created["deviceKey"].as_str().unwrap().to_owned()));
    }
    // Warm up what every server has before devices come (one connection and report).
    let (id, key) = &ids[0];
    let mut first = Connection::device(&addr, id, key).await.unwrap();
    first.publish(&format!("pumppilot/{id}/report"), &report(false, Some(1))).await.unwrap();
    next_command(&mut first).await;
    next_command(&mut first).await;
    let before = resident_kib(server.pid());
    let mut connections = Vec::with_capacity(devices);
    for (id, key) in &ids[1..] {
        let mut connection = Connection::device(&addr, id, key).await.unwrap();
        next_command(&mut connection).await;
        connection.publish(&format!("pumppilot/{id}/report"), &report(false, Some(1))).await.unwrap();
        next_command(&mut connection).await;
        connections.push(connection);
    }
    let after = resident_kib(server.pid());
    let each = (after.saturating_sub(before)) as f64 / connections.len() as f64;
    println!(
        "{} idle MQTT connections: server resident {before} KiB before, {after} KiB after: {each:.1} KiB each",
        connections.len()
    );
    drop(server);
}
