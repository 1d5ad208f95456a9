//! The store as an operator chooses it: the URL picks SQLite or MongoDB, and what cannot work is
//! refused at the start with a sentence (a second server on one SQLite file, MongoDB without a
//! secret, unreachable, or without a replica set). MongoDB here is SecantusDB, started by the tests.

mod common;

use std::process::{Command, Output};

use common::{Client, start_server, start_server_with};
use pumppilot_store_mongodb::testing;
use reqwest::StatusCode;
use serde_json::json;

const SECRET: &str = "a-test-secret-of-at-least-32-characters";

fn pumppilot(dir: &std::path::Path, url: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pumppilot"));
    command
        .current_dir(dir)
        .env_remove("RUST_BACKTRACE")
        .env_remove("PUMPPILOT_SECRET")
        .env("PUMPPILOT_LOG", "warn")
        .env("PUMPPILOT_BIND", "127.0.0.1:0")
        .env("PUMPPILOT_DATABASE_URL", url);
    command
}

/// The start failed, with one sentence (no trace) that contains every piece of `expected`.
fn refused(output: &Output, expected: &[&str]) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the start must fail: {stderr}");
    for piece in expected {
        assert!(stderr.contains(piece), "{piece:?} missing from: {stderr}");
    }
    assert!(!stderr.contains("backtrace") && !stderr.contains("panicked"), "a sentence, not a trace: {stderr}");
}

#[tokio::test]
async fn a_second_server_on_one_sqlite_file_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let (mut first, base) = start_server(dir.path());
    let url = format!("sqlite://{}", dir.path().join("pumppilot.db").display());
    let output = pumppilot(dir.path(), &url).arg("serve").output().unwrap();
    refused(&output, &["another PumpPilot is already serving", "pumppilot.db.lock", "stop the other server first"]);

    let anon = Client { http: reqwest::Client::new(), base, token: None };
    let (status, _) = anon.get("/healthz").await;
    assert_eq!(status, StatusCode::OK, "the first server is untouched");
    first.kill();
    // Once the first is gone, the file is free again.
    let (mut again, _) = start_server(dir.path());
    again.kill();
}

#[test]
fn mongodb_needs_the_secret_set() {
    let dir = tempfile::tempdir().unwrap();
    let output = pumppilot(dir.path(), "mongodb://127.0.0.1:9/pp").arg("serve").output().unwrap();
    refused(&output, &["PUMPPILOT_SECRET", "must be set when the store is MongoDB"]);
}

#[test]
fn an_unreachable_or_malformed_mongodb_url_is_named_with_its_host() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("mongodb://127.0.0.1:{port}/pp?serverSelectionTimeoutMS=300");
    let output = pumppilot(dir.path(), &url).arg("serve").env("PUMPPILOT_SECRET", SECRET).output().unwrap();
    refused(&output, &["PUMPPILOT_DATABASE_URL", &format!("127.0.0.1:{port}"), "cannot be reached"]);

    let output = pumppilot(dir.path(), "mongodb://db:notaport/pp")
        .arg("serve")
        .env("PUMPPILOT_SECRET", SECRET)
        .output()
        .unwrap();
    refused(&output, &["PUMPPILOT_DATABASE_URL", "the MongoDB URL cannot be read"]);
}

#[test]
fn a_standalone_mongodb_is_refused_with_how_to_start_a_replica_set() {
    let dir = tempfile::tempdir().unwrap();
    let standalone = testing::start_standalone();
    let output =
        pumppilot(dir.path(), &standalone.url("pp")).arg("serve").env("PUMPPILOT_SECRET", SECRET).output().unwrap();
    refused(&output, &["PUMPPILOT_DATABASE_URL", "standalone", "mongod --replSet rs0", "rs.initiate()"]);
}

#[tokio::test]
async fn the_binary_serves_from_mongodb_and_finds_its_data_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let url = testing::server().fresh_url();
    let settings = [("PUMPPILOT_DATABASE_URL", url.as_str()), ("PUMPPILOT_SECRET", SECRET)];
    let (mut server, base) = start_server_with(dir.path(), &settings);
    let anon = Client { http: reqwest::Client::new(), base, token: None };
    let (status, body) =
        anon.post("/api/auth/login", json!({"username": "master", "password": "master-password"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let master = Client { token: Some(body["token"].as_str().unwrap().to_owned()), ..anon.clone() };
    master.ok("/api/master/admins", json!({"name": "Rahim", "username": "rahim", "password": "rahim-password"})).await;
    server.kill();
    assert!(!dir.path().join("data").exists(), "nothing is written beside the binary with MongoDB");

    let (mut server, base) = start_server_with(dir.path(), &settings);
    let anon = Client { base, ..anon };
    let (status, body) = anon.post("/api/auth/login", json!({"username": "rahim", "password": "rahim-password"})).await;
    assert_eq!(status, StatusCode::OK, "the admin is still there: {body}");
    let (status, _) = anon.get("/readyz").await;
    assert_eq!(status, StatusCode::OK);
    server.kill();
}

/// A server on MongoDB stopped by SIGTERM exits cleanly, without a trace: it stops the driver
/// before its runtime goes (a runtime dropped under the driver's pools can panic inside them).
#[tokio::test]
async fn a_server_on_mongodb_stops_cleanly_on_sigterm() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut child = pumppilot(dir.path(), &testing::server().fresh_url())
        .arg("serve")
        .env("PUMPPILOT_SECRET", SECRET)
        .env("PUMPPILOT_MASTER_USERNAME", "master")
        .env("PUMPPILOT_MASTER_PASSWORD", "master-password")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines.next().expect("the server printed its address").unwrap();
        if line.contains("serving on ") {
            break common::base_said(&[line]);
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    // The store in use when the signal comes: a sign-in, and the device's telemetry to write.
    let anon = Client { http: reqwest::Client::new(), base, token: None };
    let (status, body) =
        anon.post("/api/auth/login", json!({"username": "master", "password": "master-password"})).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "a clean exit on SIGTERM: {stderr}");
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"), "no trace at the end: {stderr}");
}

/// The run's and the wallets' answers that must not change when the store does.
async fn answers(site: &common::Site, tenant: &common::Tenant) -> Vec<serde_json::Value> {
    let mut answers = Vec::new();
    for path in ["/api/admin/users", "/api/admin/usage", "/api/admin/minute-requests", "/api/admin/cards", "/api/queue"]
    {
        let (status, body) = tenant.admin.get(path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        answers.push(body);
    }
    for user in &tenant.users {
        let (status, wallet) = user.get("/api/wallet").await;
        assert_eq!(status, StatusCode::OK, "{wallet}");
        answers.push(wallet);
        answers.push(user.status().await);
    }
    let _ = site;
    // What moves with the clock (the run's seconds) is compared by the store; the rest here.
    for answer in &mut answers {
        for moving in ["remainingSeconds", "estimatedWaitSeconds", "availableSeconds", "availableMinutes"] {
            strip(answer, moving);
        }
    }
    answers
}

fn strip(value: &mut serde_json::Value, key: &str) {
    match value {
        serde_json::Value::Object(map) => {
            map.remove(key);
            map.values_mut().for_each(|v| strip(v, key));
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| strip(v, key)),
        _ => {}
    }
}

#[tokio::test]
async fn migrate_copies_an_installation_from_sqlite_to_mongodb_and_verifies_it() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("pumppilot.db").display());
    let mongo = testing::server().fresh_url();

    // A pump with a run in progress, one farmer waiting, a finished run, a minute request, a card,
    // and alerts (a farmer's phone and push token, the owner's bell read and unread).
    let (mut server, base) = start_server(dir.path());
    let site = common::Site { base };
    let tenant = site.tenant("rahim", 3, 30).await;
    let _quiet = site.tenant("quiet", 1, 0).await;
    tenant.device.poll(false, true).await;
    tenant.users[2].ok("/api/motor/start", json!({})).await;
    tenant.users[2].ok("/api/motor/stop", json!({})).await;
    tenant.users[0].ok("/api/motor/start", json!({})).await;
    tenant.users[1].ok("/api/motor/start", json!({})).await;
    tenant.users[1].ok("/api/minute-requests", json!({"minutes": 15, "note": "paid cash"})).await;
    let card = format!("/api/admin/users/{}/rfid", tenant.user_ids[1]);
    tenant.admin.ok(&card, json!({"uid": "04A1B2C3"})).await;
    common::leave_alerts(&tenant.admin, &tenant.users[2], "rahim-farmer-2", "+8801711000001").await;
    let alerts = common::alerts_of(&[&tenant.admin, &tenant.users[2]]).await;
    let before = answers(&site, &tenant).await;
    server.kill();

    let output = pumppilot(dir.path(), &sqlite).args(["migrate", "--from", &sqlite, "--to", &mongo]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(!stderr.contains("panicked"), "no trace at the end (the driver is stopped first): {stderr}");
    assert!(
        stdout.contains("Copied and verified") && stdout.contains("4 wallets equals the sum of its ledger"),
        "{stdout}"
    );

    // The store holds the same records, field for field.
    let from = pumppilot::store::open_url(&sqlite, "from").await.unwrap().export().await.unwrap();
    let to = pumppilot::store::open_url(&mongo, "to").await.unwrap().export().await.unwrap();
    assert_eq!(to, from, "every record arrived as it was");

    // A second run refuses the target that now holds the installation, unless told to replace it.
    let again = pumppilot(dir.path(), &sqlite).args(["migrate", "--from", &sqlite, "--to", &mongo]).output().unwrap();
    refused(&again, &["already holds 7 accounts", "--force"]);
    let forced = pumppilot(dir.path(), &sqlite)
        .args(["migrate", "--from", &sqlite, "--to", &mongo, "--force"])
        .output()
        .unwrap();
    assert!(forced.status.success(), "{}", String::from_utf8_lossy(&forced.stderr));

    // And back: MongoDB to a new SQLite file gives the same records again.
    let back = format!("sqlite://{}", dir.path().join("back").join("pumppilot.db").display());
    let output = pumppilot(dir.path(), &back).args(["migrate", "--from", &mongo, "--to", &back]).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let returned = pumppilot::store::open_url(&back, "back").await.unwrap().export().await.unwrap();
    assert_eq!(returned, from, "MongoDB to SQLite keeps every record too");

    // The server on MongoDB, with the SQLite installation's secret, gives the same answers to the
    // same sessions and device key, and the run goes on.
    let secret = std::fs::read_to_string(dir.path().join("secret.key")).unwrap();
    let settings = [("PUMPPILOT_DATABASE_URL", mongo.as_str()), ("PUMPPILOT_SECRET", secret.trim())];
    let (mut server, base) = start_server_with(dir.path(), &settings);
    let moved = |client: &Client| Client { base: base.clone(), ..client.clone() };
    let tenant = common::Tenant {
        admin: moved(&tenant.admin),
        users: tenant.users.iter().map(moved).collect(),
        device: common::Device { client: moved(&tenant.device.client) },
        ..tenant
    };
    let site = common::Site { base: base.clone() };
    let poll = tenant.device.poll(false, true).await;
    assert_eq!(poll["motor"], "ON", "the run goes on from MongoDB: {poll}");
    assert_eq!(answers(&site, &tenant).await, before);
    let moved = common::alerts_of(&[&tenant.admin, &tenant.users[2]]).await;
    assert_eq!(moved, alerts, "the phone, the push token and the bells moved too");
    server.kill();
}

#[test]
fn migrate_names_the_store_it_cannot_open() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("pumppilot.db").display());
    let output = pumppilot(dir.path(), &sqlite)
        .args(["migrate", "--from", &sqlite, "--to", "mongodb://127.0.0.1:9/pp?serverSelectionTimeoutMS=300"])
        .output()
        .unwrap();
    refused(&output, &["--to:", "127.0.0.1:9 cannot be reached"]);
    let output =
        pumppilot(dir.path(), &sqlite).args(["migrate", "--from", "postgres://x", "--to", &sqlite]).output().unwrap();
    refused(&output, &["--from:", "must start with sqlite:"]);
}
