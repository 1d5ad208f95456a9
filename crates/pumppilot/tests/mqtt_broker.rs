//! An external broker (`PUMPPILOT_MQTT_BROKER`): Debian's Mosquitto with a password file and the
//! ACL the docs give, PumpPilot connected to it as a client, and a simulated device connected to
//! Mosquitto, not to PumpPilot. Skipped, saying so, only when the `mosquitto` binary is absent
//! (`cargo xtask test` installs it with apt).

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use common::{
    TestApp,
    mqtt::{PATIENCE, device_id, device_key, heard, mqtt_device, next_message, signed_report},
    spawn_app_configured, until,
};
use pumppilot_server::{Settings, config::Secret, mqtt::BrokerSettings};
use pumppilot_sim::{
    Happening, VirtualDevice, http_client,
    mqtt::{ConnectError, Connection},
};
use serde_json::json;
const SERVER_LOGIN: (&str, &str) = ("pumppilot", "a-broker-password-for-the-server");

fn mosquitto() -> Option<PathBuf> {
    ["/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto"]
        .iter()
        .map(PathBuf::from)
        .find(|path| path.exists())
}

/// Mosquitto on `port` with a password file of `users` and the ACL of `docs/DEVICE.md`.
struct Broker(Child);

impl Broker {
    fn start(binary: &Path, dir: &Path, port: u16, users: &[(&str, &str)]) -> Broker {
        let passwd = dir.join("passwd");
        for (n, (user, password)) in users.iter().enumerate() {
            let mut command = Command::new("mosquitto_passwd");
            if n == 0 {
                command.arg("-c");
            }
            let status = command.arg("-b").arg(&passwd).arg(user).arg(password).stdout(Stdio::null()).status();
            assert!(status.expect("mosquitto_passwd").success(), "mosquitto_passwd for {user}");
        }
        let acl = dir.join("acl");
        std::fs::write(
            &acl,
            format!("user {}\ntopic readwrite pumppilot/#\n\npattern readwrite pumppilot/%u/#\n", SERVER_LOGIN.0),
        )
        .unwrap();
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "user root\nlistener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\nacl_file {}\npersistence false\nlog_dest stderr\nlog_type error\n",
                passwd.display(),
                acl.display()
            ),
        )
        .unwrap();
        let child = Command::new(binary).arg("-c").arg(&conf).stdout(Stdio::null()).spawn().expect("start mosquitto");
        Broker(child)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Mosquitto's binary, a directory for its files, the port it is to listen on, and a server
/// connected to it as a client (trying until Mosquitto listens); `None` (saying so) when the
/// binary is absent.
async fn server_for_a_broker() -> Option<(PathBuf, tempfile::TempDir, u16, TestApp)> {
    let Some(binary) = mosquitto() else {
        eprintln!(
            "SKIPPED: the `mosquitto` binary is not installed (apt-get install mosquitto; `cargo xtask test` does)"
        );
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let broker = BrokerSettings {
        host: "127.0.0.1".into(),
        port,
        login: Some((SERVER_LOGIN.0.into(), Secret(SERVER_LOGIN.1.into()))),
    };
    let app = spawn_app_configured(|s| Settings { mqtt_broker: Some(broker), ..s }).await;
    Some((binary, dir, port, app))
}

#[tokio::test]
async fn through_mosquitto_a_simulated_device_runs_the_pump_and_strangers_are_kept_out() {
    let Some((binary, dir, port, app)) = server_for_a_broker().await else { return };
    let t = app.tenant("rahim", 1, 30).await;
    let (id, key) = (device_id(&t).await, device_key(&t));
    let _mosquitto = Broker::start(&binary, dir.path(), port, &[SERVER_LOGIN, (&id, &key)]);
    let addr = format!("127.0.0.1:{port}");
    // Wait until the broker takes connections (PumpPilot keeps trying by itself).
    until("Mosquitto listening", || std::net::TcpStream::connect(&addr).is_ok()).await;

    // The broker refuses a wrong key; a device it knows connects.
    let wrong = Connection::connect(&addr, &id, "pp_dev_wrong", 30).await;
    assert!(matches!(wrong, Err(ConnectError::Refused(_))), "a wrong key: {:?}", wrong.err());

    let (spec, mut seen) = mqtt_device(&app.base, &key, &addr, &id);
    let pump = VirtualDevice::spawn(spec, http_client(1));
    heard(&mut seen, "a command through the broker", |happening| {
        matches!(happening, Happening::Command { .. }).then_some(())
    })
    .await;

    t.users[0].ok("/api/motor/start", json!({})).await;
    assert!(pump.wait_for_relay(true, PATIENCE).await, "relay ON through the broker");
    t.users[0].ok("/api/motor/stop", json!({})).await;
    assert!(pump.wait_for_relay(false, PATIENCE).await, "relay OFF through the broker");
    let timeline = pump.stop().await;
    assert_eq!(timeline.relay_changes().iter().map(|(_, on)| *on).collect::<Vec<_>>(), [true, false], "{timeline}");

    // The ACL keeps a device on its own topics: subscribing to another's commands is refused
    // (a SUBACK that says failure, or the connection closed, as Mosquitto's version decides).
    let mut stranger = Connection::connect(&addr, &id, &key, 30).await.unwrap();
    let other = format!("pumppilot/{}/command", pumppilot_engine::DeviceId::new());
    stranger
        .send(pumppilot_sim::mqtt::Packet::Subscribe(pumppilot_sim::mqtt::Subscribe::new(
            other,
            pumppilot_sim::mqtt::QoS::AtMostOnce,
        )))
        .await
        .unwrap();
    let answer = tokio::time::timeout(PATIENCE, stranger.next()).await.unwrap().unwrap();
    match answer {
        Some(pumppilot_sim::mqtt::Packet::SubAck(ack)) => assert_eq!(
            ack.return_codes,
            [pumppilot_sim::mqtt::SubscribeReasonCode::Failure],
            "another device's topic is refused"
        ),
        None => {}
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn through_mosquitto_a_signing_device_runs_the_pump_and_a_replay_is_refused_signed() {
    use pumppilot_protocol::link::{self, Framed, LinkSecret, MqttKind};
    let Some((binary, dir, port, app)) = server_for_a_broker().await else { return };
    let t = app.tenant("rahim", 1, 30).await;
    let id = device_id(&t).await;
    let rotated = t.admin.ok(&format!("/api/admin/devices/{id}/rotate-key"), json!({})).await;
    let (key, secret_text) = (rotated["deviceKey"].as_str().unwrap(), rotated["linkSecret"].as_str().unwrap());
    let secret = LinkSecret::parse(secret_text).unwrap();
    let _mosquitto = Broker::start(&binary, dir.path(), port, &[SERVER_LOGIN, (&id, key)]);
    let addr = format!("127.0.0.1:{port}");
    until("Mosquitto listening", || std::net::TcpStream::connect(&addr).is_ok()).await;

    let (mut spec, _seen) = mqtt_device(&app.base, key, &addr, &id);
    spec.link_secret = Some(secret_text.to_owned());
    let pump = VirtualDevice::spawn(spec, http_client(1));
    let store = &app.running.app.store;
    let signed_once = || async { store.device_counters(None).await.unwrap().iter().any(|(_, c)| *c >= 1) };
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !signed_once().await {
        assert!(tokio::time::Instant::now() < deadline, "a signed report accepted through the broker");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    t.users[0].ok("/api/motor/start", json!({})).await;
    assert!(pump.wait_for_relay(true, PATIENCE).await, "relay ON from a signed command through the broker");
    t.users[0].ok("/api/motor/stop", json!({})).await;
    assert!(pump.wait_for_relay(false, PATIENCE).await, "relay OFF through the broker");
    let sent = pump.stop().await.polls;

    // The server answers each report with the command signed with that report's counter, and the
    // broker keeps the last; the device signed its reports 1, 2, 3, ..., so the answer to its
    // last (`sent`) is the retained command or comes after it. A report with a used counter, as
    // a replay has, then gets a signed refusal naming where to continue, and nothing changes.
    let mut raw = Connection::device(&addr, &id, key).await.expect("connects to Mosquitto");
    let command = format!("pumppilot/{id}/command");
    let checks = |kind: MqttKind, payload: &[u8]| match link::unframe(payload) {
        Framed::Signed { counter, tag, body } => {
            secret.check_mqtt(kind, &command, counter, body, &tag).then_some(counter)
        }
        _ => None,
    };
    let used = loop {
        let message = next_message(&mut raw).await;
        let counter = checks(MqttKind::Command, &message).expect("a command is signed");
        if counter >= sent {
            break counter;
        }
    };
    let window = || async { store.device_counters(None).await.unwrap()[0].1 };
    let floor = window().await;
    let body = serde_json::to_vec(&json!({"loadShedding": true, "ready": true, "relay": false, "ref": 1})).unwrap();
    let report_topic = format!("pumppilot/{id}/report");
    let replay = signed_report(&secret, &report_topic, used, &body);
    raw.publish(&report_topic, &replay).await.unwrap();
    // A command the server publishes meanwhile (the pump's state moving on as its device went
    // quiet) may come before the refusal: it is not an answer to the replay.
    let refusal = loop {
        let message = next_message(&mut raw).await;
        if checks(MqttKind::Command, &message).is_none() {
            break message;
        }
    };
    let above = checks(MqttKind::Stale, &refusal);
    assert!(above.is_some_and(|above| above >= used), "{}", String::from_utf8_lossy(&refusal));
    assert_eq!(window().await, floor, "no window moved");
    let status = t.users[0].status().await;
    assert_ne!(status["device"]["loadShedding"], json!(true), "the replay was not applied: {status}");
}

/// The next command published to `connection` whose JSON `pick` accepts (others are skipped).
async fn command_where(connection: &mut Connection, pick: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    loop {
        let command: serde_json::Value = serde_json::from_slice(&next_message(connection).await).unwrap();
        if pick(&command) {
            return command;
        }
    }
}

/// Through a broker PumpPilot cannot close a retired board's connection (the broker holds it,
/// and the site takes the board out of its password file), but it pushes nothing more to it: a
/// pump left without a controller would otherwise tell the retired board ON at the next Start.
#[tokio::test]
async fn through_mosquitto_a_retired_device_is_pushed_nothing_more() {
    let Some((binary, dir, port, app)) = server_for_a_broker().await else { return };
    let t = app.tenant("rahim", 1, 30).await;
    let (id, key) = (device_id(&t).await, device_key(&t));
    let spare = t.admin.ok("/api/admin/devices", json!({"name": "spare board"})).await;
    let (spare_id, spare_key) = (spare["id"].as_str().unwrap(), spare["deviceKey"].as_str().unwrap());
    let _mosquitto = Broker::start(&binary, dir.path(), port, &[SERVER_LOGIN, (&id, &key), (spare_id, spare_key)]);
    let addr = format!("127.0.0.1:{port}");
    until("Mosquitto listening", || std::net::TcpStream::connect(&addr).is_ok()).await;
    let report = |reference: u32| {
        serde_json::to_vec(&json!({"loadShedding": false, "ready": true, "relay": false, "ref": reference})).unwrap()
    };
    // Both boards report through the broker (the first drives the pump) and hear their answers.
    let mut retired = Connection::device(&addr, &id, &key).await.expect("connects to Mosquitto");
    let mut spare = Connection::device(&addr, spare_id, spare_key).await.expect("connects to Mosquitto");
    for (board, id, reference) in [(&mut retired, id.as_str(), 1), (&mut spare, spare_id, 2)] {
        // The bridge subscribes once Mosquitto takes its connection: report until answered.
        let answered = tokio::time::timeout(PATIENCE, async {
            loop {
                board.publish(&format!("pumppilot/{id}/report"), &report(reference)).await.unwrap();
                let answer = tokio::time::timeout(
                    Duration::from_millis(500),
                    command_where(board, |c| c["ref"] == json!(reference)),
                );
                if answer.await.is_ok() {
                    return;
                }
            }
        });
        answered.await.expect("a report answered through the broker");
    }

    let (status, _) = t.admin.request(reqwest::Method::DELETE, &format!("/api/admin/devices/{id}"), None).await;
    assert_eq!(status, reqwest::StatusCode::NO_CONTENT);
    // The pump has no controller now: a Start is pushed ON to the spare, then the Stop OFF, each
    // after whatever went to the retired board before it.
    t.users[0].ok("/api/motor/start", json!({})).await;
    command_where(&mut spare, |c| c["motor"] == json!("ON")).await;
    t.users[0].ok("/api/motor/stop", json!({})).await;
    command_where(&mut spare, |c| c["motor"] == json!("OFF")).await;
    // Mosquitto writes to a connection in order: an answer to a PINGREQ sent now comes after any
    // command published to the retired board before the spare's OFF.
    retired.send(pumppilot_sim::mqtt::Packet::PingReq).await.unwrap();
    let next = tokio::time::timeout(PATIENCE, retired.next()).await.expect("an answer to the ping");
    assert!(matches!(next, Ok(Some(pumppilot_sim::mqtt::Packet::PingResp))), "nothing to the retired board: {next:?}");
}
