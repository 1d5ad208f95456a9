//! The device side of the API over real HTTP: long-poll, cards, key rotation, what the admin
//! sees of a device, and CORS for the app's web build.

mod common;

use std::time::Duration;

use common::{LEASE_MS, assert_error, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

fn report() -> Value {
    json!({"loadShedding": false, "ready": true, "relay": false, "fw": "pumppilot-esp32c3 0.1.0", "uptimeMs": 93_000, "rssi": -61})
}

#[tokio::test]
async fn a_long_poll_returns_as_soon_as_the_command_changes() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 30).await;
    let idle = t.device.client.ok("/api/esp32/poll", report()).await;
    assert_eq!(idle["state"], "IDLE");
    let seq = idle["seq"].as_u64().unwrap();

    // The device waits with the seq it knows; a start releases it at once with the new command.
    let device = t.device.client.clone();
    let held = async move { device.ok(&format!("/api/esp32/poll?wait=30000&seq={seq}"), report()).await };
    let waiting = app.held(i64::from(LEASE_MS / 3), held).await;
    app.clock.advance(Duration::from_millis(200));
    assert!(!waiting.is_finished(), "nothing changed yet: the answer is held");
    t.users[0].ok("/api/motor/start", json!({})).await;
    // The server's clock stands still: only the start can release the answer.
    let answer = waiting.await.unwrap();
    assert_eq!((answer["motor"].as_str(), answer["state"].as_str()), (Some("ON"), Some("RUNNING")));
    assert!(answer["seq"].as_u64().unwrap() > seq);
    // The lease counts from the request's arrival, so the device stops where the server stops charging.
    assert_eq!(answer["leaseMs"].as_u64(), Some(u64::from(LEASE_MS) - 200));
}

#[tokio::test]
async fn a_long_poll_answers_at_once_when_the_device_is_behind_and_at_a_third_of_the_lease_otherwise() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 30).await;
    let first = t.device.client.ok("/api/esp32/poll", report()).await;
    let seq = first["seq"].as_u64().unwrap();

    // The server's clock stands still here, so an answer that would wait never comes by itself.
    let at_once = |path: String, body: Value| {
        let device = t.device.client.clone();
        async move {
            tokio::time::timeout(Duration::from_secs(20), async move { device.ok(&path, body).await })
                .await
                .expect("answered without waiting")
        }
    };
    // A device that knows an older seq gets the current command without waiting.
    let answer = at_once(format!("/api/esp32/poll?wait=30000&seq={}", seq + 7), report()).await;
    assert_eq!(answer["seq"].as_u64(), Some(seq));

    // Nothing changes: the wait is cut to a third of the lease and the lease is what remains of it.
    let third = u64::from(LEASE_MS / 3);
    let device = t.device.client.clone();
    let held = async move { device.ok(&format!("/api/esp32/poll?wait=30000&seq={seq}"), report()).await };
    let waiting = app.held(i64::from(LEASE_MS / 3), held).await;
    app.clock.advance(Duration::from_millis(third - 1));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiting.is_finished(), "held until a third of the lease");
    app.clock.advance(Duration::from_millis(1));
    let answer = waiting.await.unwrap();
    assert_eq!(answer["state"], "IDLE");
    assert_eq!(answer["leaseMs"].as_u64(), Some(u64::from(LEASE_MS) - third));

    // A device whose relay is OFF while the command is ON (its lease ran out) is answered at once.
    t.users[0].ok("/api/motor/start", json!({})).await;
    let on = t.device.client.ok("/api/esp32/poll", report()).await;
    assert_eq!(on["motor"], "ON");
    let again = at_once(format!("/api/esp32/poll?wait=30000&seq={}", on["seq"]), report()).await;
    assert_eq!(again["motor"], "ON");
    let mut relay_on = report();
    relay_on["relay"] = json!(true);
    let device = t.device.client.clone();
    let path = format!("/api/esp32/poll?wait=30000&seq={}", on["seq"]);
    let waiting = app.held(i64::from(LEASE_MS / 3), async move { device.ok(&path, relay_on).await }).await;
    assert!(!waiting.is_finished(), "a device in step with its command waits");
    app.clock.advance(Duration::from_millis(third));
    assert_eq!(waiting.await.unwrap()["leaseMs"].as_u64(), Some(u64::from(LEASE_MS) - third));

    // Bad waits are refused by name.
    let bad = t.device.client.post("/api/esp32/poll?wait=30001&seq=1", report()).await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "VALIDATION");
    assert!(bad.1["error"]["message"].as_str().unwrap().contains("wait"));
    let bad = t.device.client.get("/api/esp32/poll?loadShedding=0&ready=1&wait=-5").await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "VALIDATION");
}

#[tokio::test]
async fn a_card_starts_then_stops_its_users_run_and_a_retried_tap_does_not_undo_it() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 2, 30).await;
    t.device.poll(false, true).await;
    let (karim, salma) = (&t.user_ids[0], &t.user_ids[1]);

    let bound = t.admin.ok(&format!("/api/admin/users/{karim}/rfid"), json!({"uid": "04:a1:b2:c3"})).await;
    assert_eq!((bound["uid"].as_str(), bound["userId"].as_str()), (Some("04A1B2C3"), Some(karim.as_str())));
    t.admin.ok(&format!("/api/admin/users/{salma}/rfid"), json!({"uid": "DEADBEEF"})).await;

    let tap = |uid: &str| t.device.client.ok("/api/esp32/rfid", json!({"uid": uid}));
    let started = tap("04A1B2C3").await;
    assert_eq!(started["action"], "STARTED");
    assert_eq!(started["entry"]["status"], "RUNNING");
    assert_eq!(started["entry"]["userId"], *karim);
    // The same tap again (a retry after a lost answer) gets the same answer and changes nothing.
    let retried = tap("04A1B2C3").await;
    assert_eq!(retried["action"], "STARTED");
    assert_eq!(t.users[0].status().await["me"]["entry"]["status"], "RUNNING");

    let queued = tap("DEADBEEF").await;
    assert_eq!((queued["action"].as_str(), queued["entry"]["position"].as_u64()), (Some("QUEUED"), Some(1)));
    // Tapping again while waiting keeps the place; it does not leave the line.
    app.pass_polling(Duration::from_millis(1_999), &t.device, false, true).await;
    let repeated = tap("DEADBEEF").await;
    assert_eq!(repeated, queued, "within 2 s: the same answer again");
    app.pass_polling(Duration::from_millis(1), &t.device, false, true).await;
    let still = tap("DEADBEEF").await;
    assert_eq!(
        (still["action"].as_str(), still["entry"]["id"].as_str()),
        (Some("QUEUED"), queued["entry"]["id"].as_str())
    );

    let stopped = tap("04A1B2C3").await;
    assert_eq!(stopped["action"], "STOPPED");
    assert_eq!(stopped["entry"]["endReason"], "USER_STOP");
    assert_eq!(t.users[1].status().await["me"]["entry"]["status"], "RUNNING", "the next in line starts");

    let unknown = tap("CAFEF00D").await;
    assert_eq!((unknown["action"].as_str(), unknown["reason"].as_str()), (Some("DENIED"), Some("UNKNOWN_CARD")));
    assert_error(
        &t.device.client.post("/api/esp32/rfid", json!({"uid": "xyz"})).await,
        StatusCode::BAD_REQUEST,
        "VALIDATION",
    );
    assert_error(&t.device.client.post("/api/esp32/rfid", json!({})).await, StatusCode::BAD_REQUEST, "VALIDATION");
    assert_error(
        &app.anonymous().post("/api/esp32/rfid", json!({"uid": "04A1B2C3"})).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    );

    let (_, audit) = t.admin.get("/api/admin/audit").await;
    let taps = audit.as_array().unwrap().iter().filter(|e| e["action"] == "card.tap").count();
    assert_eq!(taps, 4, "start, queue, queue again and stop are in the audit log; the retry is not: {audit}");
}

#[tokio::test]
async fn cards_stay_in_their_tenant_and_a_card_without_minutes_is_denied() {
    let app = spawn_app().await;
    let rahim = app.tenant("rahim", 1, 0).await;
    let q = app.tenant("qadir", 1, 10).await;
    rahim.device.poll(false, true).await;
    let karim = &rahim.user_ids[0];

    // Rahim cannot bind a card to Q's user; bad UIDs are refused by name.
    let stranger =
        rahim.admin.post(&format!("/api/admin/users/{}/rfid", q.user_ids[0]), json!({"uid": "04A1B2C3"})).await;
    assert_error(&stranger, StatusCode::NOT_FOUND, "NOT_FOUND");
    let bad = rahim.admin.post(&format!("/api/admin/users/{karim}/rfid"), json!({"uid": "04A1"})).await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "VALIDATION");
    assert!(bad.1["error"]["message"].as_str().unwrap().starts_with("uid"));
    assert_error(
        &rahim.users[0].post(&format!("/api/admin/users/{karim}/rfid"), json!({"uid": "04A1B2C3"})).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    );

    rahim.admin.ok(&format!("/api/admin/users/{karim}/rfid"), json!({"uid": "04A1B2C3"})).await;
    // Q's device does not know Rahim's card.
    let elsewhere = q.device.client.ok("/api/esp32/rfid", json!({"uid": "04A1B2C3"})).await;
    assert_eq!(elsewhere["reason"], "UNKNOWN_CARD");
    // Karim has no minutes.
    let denied = rahim.device.client.ok("/api/esp32/rfid", json!({"uid": "04A1B2C3"})).await;
    assert_eq!((denied["action"].as_str(), denied["reason"].as_str()), (Some("DENIED"), Some("INSUFFICIENT_BALANCE")));

    let (_, cards) = rahim.admin.get("/api/admin/cards").await;
    assert_eq!(cards.as_array().unwrap().len(), 1);
    assert_eq!(q.admin.get("/api/admin/cards").await.1, json!([]));
    let (status, _) = rahim.admin.request(Method::DELETE, "/api/admin/cards/04A1B2C3", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = rahim.admin.request(Method::DELETE, "/api/admin/cards/04A1B2C3", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let unbound = rahim.device.client.ok("/api/esp32/rfid", json!({"uid": "04A1B2C3"})).await;
    assert_eq!(unbound["reason"], "UNKNOWN_CARD");
}

#[tokio::test]
async fn a_rotated_key_replaces_the_old_one_at_once() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 10).await;
    let q = app.tenant("qadir", 0, 0).await;
    t.device.client.ok("/api/esp32/poll", report()).await;
    let (_, devices) = t.admin.get("/api/admin/devices").await;
    let device = &devices[0];
    assert_eq!(device["firmware"], "pumppilot-esp32c3 0.1.0");
    assert_eq!(
        (device["uptimeMs"].as_u64(), device["rssi"].as_i64(), device["online"].as_bool()),
        (Some(93_000), Some(-61), Some(true))
    );
    let id = device["id"].as_str().unwrap();

    assert_error(
        &q.admin.post(&format!("/api/admin/devices/{id}/rotate-key"), json!({})).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    );
    assert_error(
        &t.users[0].post(&format!("/api/admin/devices/{id}/rotate-key"), json!({})).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    );
    t.device.client.ok("/api/esp32/poll", report()).await;

    let rotated = t.admin.ok(&format!("/api/admin/devices/{id}/rotate-key"), json!({})).await;
    let new_key = rotated["deviceKey"].as_str().unwrap();
    assert!(new_key.starts_with("pp_dev_") && Some(new_key) != t.device.client.token.as_deref());
    assert_error(&t.device.client.post("/api/esp32/poll", report()).await, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let renewed = common::Client { token: Some(new_key.to_owned()), ..t.device.client.clone() };
    assert_eq!(renewed.ok("/api/esp32/poll", report()).await["state"], "IDLE");
    let (_, audit) = t.admin.get("/api/admin/audit").await;
    assert!(audit.as_array().unwrap().iter().any(|e| e["action"] == "device.rotate-key"));
}

#[tokio::test]
async fn the_apps_web_build_may_call_the_api_from_another_origin_without_cookies() {
    let app = spawn_app().await;
    let preflight = reqwest::Client::new()
        .request(Method::OPTIONS, format!("{}/api/mobile/login", app.base))
        .header("Origin", "http://127.0.0.1:19006")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "authorization,content-type")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let headers = preflight.headers();
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert!(headers.get("access-control-allow-credentials").is_none(), "cookies never cross origins");
    let allowed = headers["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
    assert!(allowed.contains("authorization") && allowed.contains("content-type"), "{allowed}");
}
