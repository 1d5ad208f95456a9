//! Devices over MQTT across a fleet: two `pumppilot serve` processes (the real binary) on one
//! MongoDB (SecantusDB, started by the test). Real processes on real time: the test waits for
//! conditions with limits, never for a window.

mod common;

use common::mqtt::{PATIENCE, device_id, device_key, mqtt_device, until_status};
use pumppilot_sim::{VirtualDevice, http_client};
use serde_json::json;

/// Two `pumppilot serve` processes on one MongoDB (SecantusDB, started by the test): a device
/// connected over MQTT to one of them gets the Start pressed on the other, pushed through the
/// store's change feed, and the Stop too. Real processes on real time: waits with limits.
#[tokio::test]
async fn a_start_on_another_server_of_the_fleet_is_pushed_to_the_device_connected_here() {
    const SECRET: &str = "a-test-secret-of-at-least-32-characters";
    let url = pumppilot_store_mongodb::testing::server().fresh_url();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mqtt_a = format!("127.0.0.1:{port}");
    let settings = |mqtt: Option<&str>| {
        let mut settings = vec![("PUMPPILOT_DATABASE_URL", url.clone()), ("PUMPPILOT_SECRET", SECRET.to_owned())];
        if let Some(mqtt) = mqtt {
            settings.push(("PUMPPILOT_MQTT_BIND", mqtt.to_owned()));
        }
        settings
    };
    let with = |pairs: &[(&'static str, String)]| pairs.iter().map(|(k, v)| (*k, v.clone())).collect::<Vec<_>>();
    let a_settings = with(&settings(Some(&mqtt_a)));
    let a_pairs: Vec<(&str, &str)> = a_settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (_a, base_a) = common::start_server_with(dir_a.path(), &a_pairs);
    let b_settings = with(&settings(None));
    let b_pairs: Vec<(&str, &str)> = b_settings.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (_b, base_b) = common::start_server_with(dir_b.path(), &b_pairs);
    let t = common::Site { base: base_a.clone() }.tenant("rahim", 1, 30).await;
    let (spec, _seen) = mqtt_device(&base_a, &device_key(&t), &mqtt_a, &device_id(&t).await);
    let pump = VirtualDevice::spawn(spec, http_client(1));
    let farmer_on_b = common::Client { base: base_b.clone(), ..t.users[0].clone() };
    until_status(&t, "the device online", |status| status["device"]["online"] == json!(true)).await;
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
