//! Devices over MQTT in tests: a server with its listener, the tenant's device's id and key, a
//! simulated device on MQTT and what it tells, raw connections on the simulator's codec (the next
//! command, the server closing it), signed reports, and waiting for the farmer's status.

use std::{net::SocketAddr, time::Duration};

use pumppilot_protocol::link::{self, LinkSecret, MqttKind};
use pumppilot_server::Settings;
use pumppilot_sim::{
    DeviceSpec, Happening, MqttSpec,
    mqtt::{Connection, Packet},
};
use serde_json::Value;
use tokio::sync::mpsc::UnboundedReceiver;

use super::{Tenant, TestApp, spawn_app_configured};

/// How long (real time) something that must happen may take.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// What a simulated device tells its observer: its name, when, and what happened.
pub type Seen = UnboundedReceiver<(String, Duration, Happening)>;

/// A server on a manual clock with its MQTT listener on a random port, and other settings changed
/// by `configure`.
pub async fn spawn_mqtt_app(configure: impl FnOnce(Settings) -> Settings) -> TestApp {
    spawn_app_configured(|settings| {
        configure(Settings { mqtt_bind: Some(SocketAddr::from(([127, 0, 0, 1], 0))), ..settings })
    })
    .await
}

/// The server's MQTT listener, `host:port`.
pub fn mqtt_addr(app: &TestApp) -> String {
    app.running.mqtt_addr.expect("the MQTT listener").to_string()
}

/// The tenant's device key.
pub fn device_key(t: &Tenant) -> String {
    t.device.client.token.clone().unwrap()
}

/// The tenant's (one) device id, as the API gives it.
pub async fn device_id(t: &Tenant) -> String {
    let (_, devices) = t.admin.get("/api/admin/devices").await;
    devices[0]["id"].as_str().expect("a device id").to_owned()
}

/// A simulated device (server `base`, `key`) on the MQTT broker at `addr` as device `id`, and what
/// it tells its observer.
pub fn mqtt_device(base: &str, key: &str, addr: &str, id: &str) -> (DeviceSpec, Seen) {
    let mut spec = DeviceSpec::new("well 1", base, key);
    spec.mqtt = Some(MqttSpec { addr: addr.to_owned(), device_id: id.to_owned() });
    let (observer, seen) = tokio::sync::mpsc::unbounded_channel();
    spec.observer = Some(observer);
    (spec, seen)
}

/// Waits for the first happening `pick` makes something of, and returns that; panics naming
/// `what` when none comes within the limit.
pub async fn heard<T>(seen: &mut Seen, what: &str, mut pick: impl FnMut(Happening) -> Option<T>) -> T {
    let found = tokio::time::timeout(PATIENCE, async {
        while let Some((_, _, happening)) = seen.recv().await {
            if let Some(found) = pick(happening) {
                return Some(found);
            }
        }
        None
    });
    found.await.ok().flatten().unwrap_or_else(|| panic!("never heard: {what}"))
}

/// The payload of the next message published to the device, on its command topic (other packets
/// are skipped).
pub async fn next_message(connection: &mut Connection) -> Vec<u8> {
    let next = tokio::time::timeout(PATIENCE, async {
        loop {
            match connection.next().await.expect("reading") {
                Some(Packet::Publish(publish)) => {
                    assert!(publish.topic.ends_with("/command"), "{}", publish.topic);
                    return publish.payload.to_vec();
                }
                Some(_) => {}
                None => panic!("the server closed the connection"),
            }
        }
    });
    next.await.expect("a message within the limit")
}

/// The next command published to the device, unsigned JSON.
pub async fn next_command(connection: &mut Connection) -> Value {
    serde_json::from_slice(&next_message(connection).await).unwrap()
}

/// Asserts that the server published nothing to the device since the packets read so far: it
/// handles a connection's packets in order, so the answer to a PINGREQ sent now comes after
/// anything the reports before it made; the next packet must be that PINGRESP.
pub async fn nothing_published(connection: &mut Connection, what: &str) {
    connection.send(Packet::PingReq).await.expect("a ping sent");
    let next = tokio::time::timeout(PATIENCE, connection.next()).await.expect("an answer to the ping");
    assert!(matches!(next, Ok(Some(Packet::PingResp))), "{what}: {next:?}");
}

/// Waits until the server closes `connection` (other packets are skipped).
pub async fn closed(connection: &mut Connection, what: &str) {
    let end = tokio::time::timeout(PATIENCE, async {
        loop {
            match connection.next().await {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return,
            }
        }
    });
    end.await.unwrap_or_else(|_| panic!("{what}: the connection stayed open"));
}

/// A report `body` signed for `topic` with `counter`: `<counter> <mac-hex>\n` before the JSON.
pub fn signed_report(secret: &LinkSecret, topic: &str, counter: u64, body: &[u8]) -> Vec<u8> {
    let tag = secret.mqtt_tag(MqttKind::Report, topic, counter, body);
    let mut out = format!("{counter} ").into_bytes();
    out.extend_from_slice(&link::to_hex(&tag));
    out.push(b'\n');
    out.extend_from_slice(body);
    out
}

/// Reads the farmer's status every 10 ms (real time) until `done` accepts it, within the limit.
pub async fn until_status(t: &Tenant, what: &str, done: impl Fn(&Value) -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let status = t.users[0].status().await;
        if done(&status) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "never {what}: {status}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
