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

/// A fleet bench whose servers could not each take their share of the devices (each serves at
/// most `PUMPPILOT_MAX_CONNECTIONS` at once) is refused before it starts a store or a server,
/// with the number of servers that would.
#[test]
fn a_fleet_too_large_for_its_servers_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let output = pumppilot(dir.path())
        .args(["bench", "--fleet", "30", "--servers", "2"])
        .env("PUMPPILOT_MAX_CONNECTIONS", "10")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("15 devices a server")
            && stderr.contains("(10: PUMPPILOT_MAX_CONNECTIONS")
            && stderr.contains("run at least 3 servers"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&output.stdout).is_empty(), "nothing started: {:?}", output.stdout);
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
/// names as running, then sees his run, and rahim, his pump's owner, the cash his farmers paid.
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

    // The owner's usage page has receipts and cash to show: each recharge was paid for at the
    // pump's price (120 taka an hour: Karim's 60 min, Salma's 45, Jamal's 20).
    let (status, body) =
        karim.post("/api/auth/login", json!({"username": "rahim", "password": "pumppilot-demo"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rahim = Client { token: Some(body["token"].as_str().unwrap().to_owned()), ..karim };
    let (status, body) = rahim.get("/api/admin/receipts").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut paid: Vec<_> =
        body.as_array().unwrap().iter().map(|r| (r["userName"].as_str().unwrap(), r["cashTaka"].as_i64())).collect();
    paid.sort_unstable();
    assert_eq!(paid, [("Jamal Hossain", Some(40)), ("Karim Mia", Some(120)), ("Salma Begum", Some(90))]);
}

/// `pumppilot serve` on a fresh SQLite folder in `dir`, with no master's credentials set: its
/// first start makes the master's password up.
fn first_start(dir: &std::path::Path) -> Command {
    let mut command = pumppilot(dir);
    command
        .arg("serve")
        .env("PUMPPILOT_BIND", "127.0.0.1:0")
        .env("PUMPPILOT_DATABASE_URL", format!("sqlite://{}", dir.join("data/pumppilot.db").display()))
        .env_remove("PUMPPILOT_MASTER_USERNAME")
        .env_remove("PUMPPILOT_MASTER_PASSWORD")
        .env("PUMPPILOT_LOG", "info");
    command
}

async fn signs_in_as_master(base: &str, password: &str) -> bool {
    let anon = Client { http: reqwest::Client::new(), base: base.to_owned(), token: None };
    let (status, body) = anon.post("/api/auth/login", json!({"username": "master", "password": password})).await;
    status == StatusCode::OK && body["user"]["role"] == "master"
}

/// With no one at a terminal (a service, whose output systemd's journal keeps for months), the
/// made-up password of the first master goes to a file in the data folder that only the server's
/// user can read, and the output names the file, never the password; every later start reminds
/// the operator to delete it, and makes no other master.
#[tokio::test]
async fn the_first_masters_password_goes_to_a_private_file_when_no_one_is_at_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, said) = start_binary(&mut first_start(dir.path()), |line| line.contains("serving on "));
    let file = dir.path().join("data/master-password");
    let password = std::fs::read_to_string(&file).expect("the password's file").trim_end().to_owned();
    assert_eq!(password.len(), 16);
    #[cfg(unix)]
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file).unwrap().permissions()) & 0o777,
        0o600
    );
    let told = said.iter().find(|line| line.contains("Created the master admin")).expect("the master is told of");
    assert!(told.contains(&file.display().to_string()) && told.contains("delete the file"), "{told}");
    assert!(said.iter().all(|line| !line.contains(&password)), "never in the output: {said:?}");
    assert!(signs_in_as_master(&base_said(&said), &password).await);
    assert!(server.terminate().success());

    let (mut server, said) = start_binary(&mut first_start(dir.path()), |line| line.contains("serving on "));
    let reminder = said.iter().find(|line| line.contains("still in")).expect("a reminder");
    assert!(reminder.contains(&file.display().to_string()), "{reminder}");
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim_end(), password, "no second master");
    assert!(signs_in_as_master(&base_said(&said), &password).await);
    assert!(server.terminate().success());
    std::fs::remove_file(&file).unwrap();
    let (_server, said) = start_binary(&mut first_start(dir.path()), |line| line.contains("serving on "));
    assert!(said.iter().all(|line| !line.contains("master-password")), "deleted: nothing more to say {said:?}");
}

/// The master who changes the made-up first password (`POST /api/auth/password`) makes the file
/// that keeps it hold no live password: the server deletes it, and later starts say nothing of
/// it. A wrong current password leaves it; a file holding some other password is not the master's
/// live one, and is left alone.
#[tokio::test]
async fn the_first_masters_password_file_is_deleted_when_the_master_changes_that_password() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, said) = start_binary(&mut first_start(dir.path()), |line| line.contains("serving on "));
    let base = base_said(&said);
    let file = dir.path().join("data/master-password");
    let password = std::fs::read_to_string(&file).expect("the password's file").trim_end().to_owned();
    let anon = Client { http: reqwest::Client::new(), base: base.clone(), token: None };
    let (_, signed_in) = anon.post("/api/auth/login", json!({"username": "master", "password": password})).await;
    let master = Client { token: signed_in["token"].as_str().map(str::to_owned), ..anon };
    let change = |current: &str, new: &str| {
        master.post("/api/auth/password", json!({"currentPassword": current, "newPassword": new}))
    };

    assert_eq!(change("not the password", "the master's own").await.0, StatusCode::FORBIDDEN);
    assert!(file.exists(), "a refused change keeps the file");
    assert_eq!(change(&password, "the master's own").await.0, StatusCode::NO_CONTENT);
    assert!(!file.exists(), "the file held the old password: deleted");
    assert!(signs_in_as_master(&base, "the master's own").await);

    std::fs::write(&file, "written by someone else\n").unwrap();
    assert_eq!(change("the master's own", "the master's next").await.0, StatusCode::NO_CONTENT);
    assert!(file.exists(), "a file with another password is left alone");
    std::fs::remove_file(&file).unwrap();
    assert!(server.terminate().success());

    let (_server, said) = start_binary(&mut first_start(dir.path()), |line| line.contains("serving on "));
    assert!(said.iter().all(|line| !line.contains("master-password")), "nothing more to say: {said:?}");
    assert!(signs_in_as_master(&base_said(&said), "the master's next").await);
}

/// At a terminal (a person runs it by hand), the made-up password is shown there once, and kept
/// in no file.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn at_a_terminal_the_first_masters_password_is_shown_once_and_kept_nowhere() {
    use std::{
        io::BufRead,
        os::fd::{FromRawFd, OwnedFd},
    };
    let dir = tempfile::tempdir().unwrap();
    let (mut terminal, mut screen) = (0, 0);
    // SAFETY: openpty writes two new descriptors, each owned once below.
    let opened =
        unsafe { libc::openpty(&mut terminal, &mut screen, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()) };
    assert_eq!(opened, 0, "a pseudo-terminal");
    let (terminal, screen) = unsafe { (OwnedFd::from_raw_fd(terminal), OwnedFd::from_raw_fd(screen)) };
    let mut command = first_start(dir.path());
    let child = command.stdout(std::process::Stdio::from(screen)).spawn().unwrap();
    drop(command);
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = Killed(child);
    let mut said = Vec::new();
    for line in std::io::BufReader::new(std::fs::File::from(terminal)).lines() {
        let line = line.expect("pumppilot ended before it was ready");
        let done = line.contains("serving on ");
        said.push(line.trim_end_matches('\r').to_owned());
        if done {
            break;
        }
    }
    let told = said.iter().find(|line| line.contains("Created the master admin")).expect("told");
    let password = told.split("password `").nth(1).and_then(|rest| rest.split('`').next()).expect("shown").to_owned();
    assert!(told.contains("shown only this once"), "{told}");
    assert!(!dir.path().join("data/master-password").exists(), "kept in no file");
    assert!(signs_in_as_master(&base_said(&said), &password).await);
}

/// A start whose address is taken (HTTP or MQTT) stops with the variable named before it makes
/// anything: no data folder, database, secret or lock file is left behind, so the next start,
/// on a free address, is a first start as the operator meant it.
#[test]
fn a_start_on_a_taken_address_leaves_nothing_behind() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = taken.local_addr().unwrap().to_string();
    for (variable, http, mqtt) in
        [("PUMPPILOT_BIND", taken.as_str(), None), ("PUMPPILOT_MQTT_BIND", "127.0.0.1:0", Some(taken.as_str()))]
    {
        let dir = tempfile::tempdir().unwrap();
        let mut start = first_start(dir.path());
        start.env("PUMPPILOT_BIND", http);
        if let Some(mqtt) = mqtt {
            start.env("PUMPPILOT_MQTT_BIND", mqtt);
        }
        let output = start.output().unwrap();
        assert!(!output.status.success(), "{variable}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(variable) && stderr.contains(&taken), "{variable}: {stderr}");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|entry| entry.unwrap().path()).collect();
        assert_eq!(left, Vec::<std::path::PathBuf>::new(), "{variable}: nothing made");
    }
}
