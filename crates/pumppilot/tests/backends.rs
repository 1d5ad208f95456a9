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
