//! The binary as an operator meets it: bad settings are named, a master can be added.

mod common;

use std::{io::Write, process::Command};

use common::{Client, base_said, start_binary, start_server};
use reqwest::StatusCode;
use serde_json::json;

fn pumppilot(dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pumppilot"));
    command.current_dir(dir).env_remove("RUST_BACKTRACE").env("PUMPPILOT_LOG", "warn");
    command
}

#[test]
fn a_bad_setting_stops_the_start_with_the_variable_named() {
    let dir = tempfile::tempdir().unwrap();
    for (variable, value) in [
        ("PUMPPILOT_DEVICE_LEASE_MS", "soon"),
        ("PUMPPILOT_BIND", "anywhere"),
        ("PUMPPILOT_DATABASE_URL", "postgres://db"),
    ] {
        let output = pumppilot(dir.path()).env(variable, value).output().unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(variable), "{variable}: {stderr}");
        assert!(!stderr.contains("backtrace"), "a sentence, not a trace: {stderr}");
    }
    assert!(!dir.path().join("data").exists(), "nothing was created");
}

#[tokio::test]
async fn create_master_adds_a_master_who_can_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("pumppilot.db").display());
    let mut child = pumppilot(dir.path())
        .args(["create-master", "--username", "Boss"])
        .env("PUMPPILOT_DATABASE_URL", &db)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"boss-password\n").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("Created master admin `boss`"));

    let (mut server, base) = start_server(dir.path());
    let anon = Client { http: reqwest::Client::new(), base, token: None };
    let (status, body) = anon.post("/api/auth/login", json!({"username": "boss", "password": "boss-password"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["role"], "master");
    server.kill();
}

#[tokio::test]
async fn sigterm_stops_the_server_cleanly_and_keeps_the_last_telemetry() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, base) = start_server(dir.path());
    let anon = Client { http: reqwest::Client::new(), base: base.clone(), token: None };
    let login = |username: &'static str, password: &'static str| {
        let anon = anon.clone();
        async move {
            let (_, body) = anon.post("/api/auth/login", json!({"username": username, "password": password})).await;
            Client { token: Some(body["token"].as_str().unwrap().to_string()), ..anon }
        }
    };
    let master = login("master", "master-password").await;
    master.ok("/api/master/admins", json!({"name": "Rahim", "username": "rahim", "password": "rahim-password"})).await;
    let admin = login("rahim", "rahim-password").await;
    let key = admin.ok("/api/admin/devices", json!({"name": "pump"})).await["deviceKey"].as_str().unwrap().to_string();
    let device = Client { token: Some(key), ..anon.clone() };
    let (status, _) = device.get("/api/esp32/poll?loadShedding=0&ready=1&relay=0&fw=v1.2.3").await;
    assert_eq!(status, StatusCode::OK);

    assert!(server.terminate().success(), "a clean exit on SIGTERM");
    let (mut server, base) = start_server(dir.path());
    let admin = Client { base, ..admin };
    let (_, devices) = admin.get("/api/admin/devices").await;
    assert_eq!(devices[0]["firmware"], "v1.2.3", "the telemetry buffered at shutdown was written");
    server.kill();
}

/// The README's demo (`serve --demo`) as a new user meets it: it seeds its two pumps over its own
/// API (a device's first report among them) and tells how to try it; karim, the farmer the README
/// names as running, then sees his run.
#[tokio::test]
async fn the_demo_seeds_its_pumps_and_karim_sees_his_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut demo = pumppilot(dir.path());
    demo.args(["serve", "--demo"]).env("PUMPPILOT_BIND", "127.0.0.1:0");
    // Its "Try:" lines come once every pump is seeded; a seeding that fails ends the process.
    let (_demo, said) = start_binary(&mut demo, |line| line.starts_with("The simulated devices report below"));
    let anon = Client { http: reqwest::Client::new(), base: base_said(&said), token: None };
    let (status, body) = anon.post("/api/auth/login", json!({"username": "karim", "password": "pumppilot-demo"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let karim = Client { token: Some(body["token"].as_str().unwrap().to_owned()), ..anon };
    let (status, body) = karim.get("/api/motor/status").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // His run: running, or in its first minute held while the pump's power settles (the demo's
    // board reports a power-on, and restart protection waits for the grid to settle).
    let state = (body["me"]["state"].as_str(), body["me"]["entry"]["holdReason"].as_str());
    assert!(matches!(state, (Some("RUNNING"), None) | (Some("HOLD"), Some("GRID_SETTLING"))), "{body}");
    assert_eq!(body["motor"]["activeUserId"], body["me"]["entry"]["userId"], "his run is the pump's: {body}");
    assert_eq!(body["device"]["online"], true, "the demo's device reported: {body}");
}
