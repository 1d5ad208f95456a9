//! Devices over MQTT across a fleet: two `pumppilot serve` processes (the real binary) on one
//! MongoDB (SecantusDB, started by the test). Real processes on real time: the test waits for
//! conditions with limits, never for a window.

mod common;

use common::mqtt::{PATIENCE, closed, device_id, device_key, mqtt_device, next_command, until_status};
use pumppilot_sim::{
    VirtualDevice, http_client,
    mqtt::{ConnectError, ConnectReturnCode, Connection},
};
use serde_json::json;

/// Two servers on a fresh database of the test's MongoDB, A with an MQTT listener, and an owner
/// "rahim" with a farmer of 30 minutes and a pump, made on A. The servers stop when this is
/// dropped.
struct Fleet {
    base_a: String,
    base_b: String,
    /// A's MQTT listener, `host:port`.
    mqtt_a: String,
    tenant: common::Tenant,
    _servers: (common::Server, common::Server),
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

impl Fleet {
    async fn start() -> Fleet {
        const SECRET: &str = "a-test-secret-of-at-least-32-characters";
        let url = pumppilot_store_mongodb::testing::server().fresh_url();
        let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mqtt_a = format!("127.0.0.1:{port}");
        let shared = [("PUMPPILOT_DATABASE_URL", url.as_str()), ("PUMPPILOT_SECRET", SECRET)];
        let a_settings = [&shared[..], &[("PUMPPILOT_MQTT_BIND", mqtt_a.as_str())]].concat();
        let (a, base_a) = common::start_server_with(dir_a.path(), &a_settings);
        let (b, base_b) = common::start_server_with(dir_b.path(), &shared);
        let tenant = common::Site { base: base_a.clone() }.tenant("rahim", 1, 30).await;
        Fleet { base_a, base_b, mqtt_a, tenant, _servers: (a, b), _dirs: (dir_a, dir_b) }
    }

    /// `client` at server B.
    fn on_b(&self, client: &common::Client) -> common::Client {
        common::Client { base: self.base_b.clone(), ..client.clone() }
    }
}

/// Two `pumppilot serve` processes on one MongoDB (SecantusDB, started by the test): a device
/// connected over MQTT to one of them gets the Start pressed on the other, pushed through the
/// store's change feed, and the Stop too. Real processes on real time: waits with limits.
#[tokio::test]
async fn a_start_on_another_server_of_the_fleet_is_pushed_to_the_device_connected_here() {
    let fleet = Fleet::start().await;
    let t = &fleet.tenant;
    let (spec, _seen) = mqtt_device(&fleet.base_a, &device_key(t), &fleet.mqtt_a, &device_id(t).await);
    let pump = VirtualDevice::spawn(spec, http_client(1));
    let farmer_on_b = fleet.on_b(&t.users[0]);
    until_status(t, "the device online", |status| status["device"]["online"] == json!(true)).await;
    let started = std::time::Instant::now();
    farmer_on_b.ok("/api/motor/start", json!({})).await;
    assert!(pump.wait_for_relay(true, PATIENCE).await, "relay ON: Start on B pushed by A");
    let took = started.elapsed();
    farmer_on_b.ok("/api/motor/stop", json!({})).await;
    assert!(pump.wait_for_relay(false, PATIENCE).await, "relay OFF: Stop on B pushed by A");
    let timeline = pump.stop().await;
    assert_eq!(timeline.relay_changes().iter().map(|(_, on)| *on).collect::<Vec<_>>(), [true, false], "{timeline}");
    println!("Start on server B → relay ON at a device on server A's MQTT listener: {took:?}");
}

/// A key rotated on one server of the fleet closes the connection made with the old key on
/// another at once (the store's change feed tells it), and that server refuses the old key from
/// then on; the new key connects there. Retiring the device on the first server closes the new
/// key's connection the same way.
#[tokio::test]
async fn a_key_rotated_or_a_device_retired_on_one_server_closes_its_connection_on_another() {
    let fleet = Fleet::start().await;
    let t = &fleet.tenant;
    let (id, old_key) = (device_id(t).await, device_key(t));
    let refused = |key: String| {
        let (addr, id) = (fleet.mqtt_a.clone(), id.clone());
        async move {
            match Connection::connect(&addr, &id, &key, 30).await {
                Err(ConnectError::Refused(code)) => code,
                other => panic!("a CONNECT with a key gone: {:?}", other.err()),
            }
        }
    };
    let mut leaked = Connection::device(&fleet.mqtt_a, &id, &old_key).await.unwrap();
    next_command(&mut leaked).await;

    let owner_on_b = fleet.on_b(&t.admin);
    let started = std::time::Instant::now();
    let rotated = owner_on_b.ok(&format!("/api/admin/devices/{id}/rotate-key"), json!({})).await;
    closed(&mut leaked, "the old key's connection on A, rotated on B").await;
    println!("Key rotated on server B → the old key's connection on server A closed: {:?}", started.elapsed());
    assert_eq!(refused(old_key).await, ConnectReturnCode::BadUserNamePassword);
    let new_key = rotated["deviceKey"].as_str().unwrap().to_owned();
    let mut board = Connection::device(&fleet.mqtt_a, &id, &new_key).await.unwrap();
    next_command(&mut board).await;

    let (status, body) = owner_on_b.request(reqwest::Method::DELETE, &format!("/api/admin/devices/{id}"), None).await;
    assert_eq!(status, reqwest::StatusCode::NO_CONTENT, "{body}");
    closed(&mut board, "the device's connection on A, retired on B").await;
    assert_eq!(refused(new_key).await, ConnectReturnCode::BadUserNamePassword);
}
