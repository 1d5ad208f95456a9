//! A server killed with SIGKILL in the middle of a stream of starts, stops and recharges comes
//! back with every acknowledged change and with its invariants holding.

mod common;

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use common::{Client, PASSWORD, start_server};
use reqwest::StatusCode;
use serde_json::{Value, json};

const USERS: usize = 6;

async fn login(base: &str, username: &str, password: &str) -> Client {
    let anon = Client { http: reqwest::Client::new(), base: base.to_string(), token: None };
    let (status, body) = anon.post("/api/auth/login", json!({"username": username, "password": password})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    Client { token: Some(body["token"].as_str().unwrap().to_string()), ..anon }
}

/// What the server acknowledged before it died.
#[derive(Default)]
struct Acknowledged {
    recharges: HashMap<String, usize>,
    attempted_recharges: HashMap<String, usize>,
    ended_runs: HashSet<String>,
}

#[tokio::test]
async fn sigkill_mid_stream_loses_no_acknowledged_change() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, base) = start_server(dir.path());

    let master = login(&base, "master", "master-password").await;
    master.ok("/api/master/admins", json!({"name": "Rahim", "username": "rahim", "password": PASSWORD})).await;
    let admin = login(&base, "rahim", PASSWORD).await;
    let mut users = Vec::new();
    for i in 0..USERS {
        let user = admin
            .ok(
                "/api/admin/users",
                json!({"name": format!("Farmer {i}"), "username": format!("farmer-{i}"), "password": PASSWORD}),
            )
            .await;
        admin.ok("/api/admin/recharge", json!({"userId": user["id"], "minutes": 30})).await;
        users.push((user["id"].as_str().unwrap().to_string(), login(&base, &format!("farmer-{i}"), PASSWORD).await));
    }
    let key = admin.ok("/api/admin/devices", json!({"name": "pump"})).await["deviceKey"].as_str().unwrap().to_string();
    let device = Client { token: Some(key), ..admin.clone() };
    device.get("/api/esp32/poll?loadShedding=0&ready=1&relay=0").await;

    let acked = Arc::new(Mutex::new(Acknowledged::default()));
    let mut tasks = Vec::new();
    let poller = device.clone();
    tasks.push(tokio::spawn(async move {
        loop {
            let _ = poller
                .http
                .get(format!("{}/api/esp32/poll?loadShedding=0&ready=1&relay=1", poller.base))
                .bearer_auth(poller.token.as_deref().unwrap())
                .send()
                .await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }));
    for (i, (id, user)) in users.iter().cloned().enumerate() {
        let acked = Arc::clone(&acked);
        let admin = admin.clone();
        tasks.push(tokio::spawn(async move {
            for round in 0.. {
                let _ = user
                    .http
                    .post(format!("{}/api/motor/start", user.base))
                    .bearer_auth(user.token.as_deref().unwrap())
                    .json(&json!({}))
                    .send()
                    .await;
                tokio::time::sleep(Duration::from_millis(20 + 7 * i as u64)).await;
                if let Ok(response) = user
                    .http
                    .post(format!("{}/api/motor/stop", user.base))
                    .bearer_auth(user.token.as_deref().unwrap())
                    .send()
                    .await
                    && response.status() == StatusCode::OK
                    && let Ok(entry) = response.json::<Value>().await
                    && entry["status"] == "COMPLETED"
                {
                    acked.lock().unwrap().ended_runs.insert(entry["id"].as_str().unwrap().to_string());
                }
                if round % 2 == 0 {
                    *acked.lock().unwrap().attempted_recharges.entry(id.clone()).or_default() += 1;
                    if let Ok(response) = admin
                        .http
                        .post(format!("{}/api/admin/recharge", admin.base))
                        .bearer_auth(admin.token.as_deref().unwrap())
                        .json(&json!({"userId": id, "minutes": 1}))
                        .send()
                        .await
                        && response.status() == StatusCode::OK
                    {
                        *acked.lock().unwrap().recharges.entry(id.clone()).or_default() += 1;
                    }
                }
            }
        }));
    }
    // Kill it once the stream has done real work (however long a slow machine takes for that),
    // with the writers still going.
    let busy = || {
        let acked = acked.lock().unwrap();
        acked.recharges.values().sum::<usize>() > 5 && acked.ended_runs.len() > 5
    };
    for _ in 0..600 {
        if busy() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.kill(); // SIGKILL: no shutdown hook runs
    for task in &tasks {
        task.abort();
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let total_recharges: usize = acked.recharges.values().sum();
    assert!(total_recharges > 5 && acked.ended_runs.len() > 5, "the stream did real work before the kill");

    let (mut server, base) = start_server(dir.path());
    let admin = login(&base, "rahim", PASSWORD).await;
    // Whatever was active when the server died: end it, so balances settle.
    while admin.post("/api/admin/motor/stop", json!({})).await.0 == StatusCode::OK {}
    let (_, queue) = admin.get("/api/queue").await;
    assert_eq!(queue["active"], json!(null));

    let (_, usage) = admin.get("/api/admin/usage").await;
    let recorded: HashSet<String> =
        usage.as_array().unwrap().iter().map(|u| u["entryId"].as_str().unwrap().to_string()).collect();
    let missing: Vec<_> = acked.ended_runs.difference(&recorded).collect();
    assert!(missing.is_empty(), "acknowledged stops missing after the crash: {missing:?}");

    for (i, (id, _)) in users.iter().enumerate() {
        let user = login(&base, &format!("farmer-{i}"), PASSWORD).await;
        let (_, wallet) = user.get("/api/wallet").await;
        let ledger = wallet["ledger"].as_array().unwrap();
        let sum: i64 = ledger.iter().map(|l| l["deltaSeconds"].as_i64().unwrap()).sum();
        assert_eq!(wallet["availableSeconds"].as_i64().unwrap(), sum, "balance = ledger sum for {id}");
        assert!(sum >= 0);
        let recharges = ledger.iter().filter(|l| l["kind"] == "RECHARGE").count() - 1; // the first 30 minutes
        let acknowledged = acked.recharges.get(id).copied().unwrap_or(0);
        let attempted = acked.attempted_recharges.get(id).copied().unwrap_or(0);
        assert!(recharges >= acknowledged, "{id}: {recharges} recharges stored, {acknowledged} acknowledged");
        assert!(recharges <= attempted, "{id}: {recharges} recharges stored, only {attempted} attempted");
        let charges: i64 =
            ledger.iter().filter(|l| l["kind"] == "RUN_CHARGE").map(|l| -l["deltaSeconds"].as_i64().unwrap()).sum();
        let (_, own_usage) = user.get("/api/usage").await;
        let charged: i64 = own_usage.as_array().unwrap().iter().map(|u| u["chargedSeconds"].as_i64().unwrap()).sum();
        assert_eq!(charges, charged, "every charge has its usage row");
    }
    server.kill();
}
