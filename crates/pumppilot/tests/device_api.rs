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

/// Two identical taps at once, as the device sends a tap again on a new connection when its kept
/// one broke under the first ("the first may have arrived"): the answers, and the audit log's taps.
async fn a_tap_and_its_retry_at_once(t: &common::Tenant) -> (Value, Value, usize) {
    let tap = || t.device.client.post("/api/esp32/rfid", json!({"uid": "04A1B2C3"}));
    let ((first_status, first), (retry_status, retry)) = tokio::join!(tap(), tap());
    assert_eq!((first_status, retry_status), (StatusCode::OK, StatusCode::OK), "{first} {retry}");
    let taps = audit_actions(&t.admin).await.iter().filter(|a| *a == "card.tap").count();
    (first, retry, taps)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_start_tap_sent_again_while_the_first_is_acted_on_starts_one_run() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 30).await;
    t.device.poll(false, true).await;
    t.admin.ok(&format!("/api/admin/users/{}/rfid", t.user_ids[0]), json!({"uid": "04A1B2C3"})).await;

    let (first, retry, taps) = a_tap_and_its_retry_at_once(&t).await;
    assert_eq!(first["action"], "STARTED", "{first}");
    assert_eq!(retry, first, "the retry gets the first's answer");
    assert_eq!(taps, 1, "acted on once");
    assert_eq!(t.users[0].status().await["me"]["state"], "RUNNING", "the start is not undone by its own retry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stop_tap_sent_again_while_the_first_is_acted_on_starts_no_new_run() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 30).await;
    t.device.poll(false, true).await;
    t.admin.ok(&format!("/api/admin/users/{}/rfid", t.user_ids[0]), json!({"uid": "04A1B2C3"})).await;
    t.users[0].ok("/api/motor/start", json!({})).await;

    let (first, retry, taps) = a_tap_and_its_retry_at_once(&t).await;
    assert_eq!((first["action"].as_str(), first["entry"]["endReason"].as_str()), (Some("STOPPED"), Some("USER_STOP")));
    assert_eq!(retry, first, "the retry gets the first's answer");
    assert_eq!(taps, 1, "acted on once");
    assert_eq!(t.users[0].status().await["me"]["state"], "IDLE", "no new run on the farmer's minutes");
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
    // A firmware name that would pose as other text on the owner's pages is kept without it.
    let posing = "/api/esp32/poll?loadShedding=0&ready=1&relay=0&fw=pump%1B%5B31m%E2%80%AE1.2%0Abeta%00";
    assert_eq!(t.device.client.get(posing).await.0, StatusCode::OK);
    assert_eq!(t.admin.get("/api/admin/devices").await.1[0]["firmware"], "pump[31m1.2beta");
    t.device.client.ok("/api/esp32/poll", report()).await;
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
        .header("Access-Control-Request-Headers", "authorization,content-type,idempotency-key")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    let headers = preflight.headers();
    assert_eq!(headers["access-control-allow-origin"], "*");
    assert!(headers.get("access-control-allow-credentials").is_none(), "cookies never cross origins");
    let allowed = headers["access-control-allow-headers"].to_str().unwrap().to_ascii_lowercase();
    // Every header the app sends: a recharge's key too (without it, the web build's recharges
    // were blocked by the browser and shown as "cannot reach the server").
    for header in ["authorization", "content-type", "idempotency-key"] {
        assert!(allowed.split(',').any(|h| h.trim() == header), "{header} not in {allowed}");
    }
}

/// A board is no browser and no page calls a device route (each takes a device key): a device's
/// answer carries no CORS header and no request id of the server's own (a proxy's is echoed),
/// while every other answer keeps both.
#[tokio::test]
async fn device_answers_carry_no_browser_headers() {
    let app = spawn_app().await;
    let t = app.tenant("salma", 1, 10).await;
    let key = t.device.client.token.clone().unwrap();
    let http = reqwest::Client::new();
    let poll = format!("{}/api/esp32/poll?loadShedding=0&ready=1&relay=0", app.base);
    let answer = http.get(&poll).bearer_auth(&key).header("Origin", "http://127.0.0.1:19006").send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let headers = answer.headers();
    assert!(headers.get("access-control-allow-origin").is_none(), "{headers:?}");
    assert!(headers.get("x-request-id").is_none(), "{headers:?}");
    let refused = http.get(&poll).bearer_auth("pp_dev_nobody").send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(
        refused.headers().get("access-control-allow-origin").is_none()
            && refused.headers().get("x-request-id").is_none()
    );
    // A proxy's own id still comes back, so its log and the device's answer name one request.
    let proxied = http.get(&poll).bearer_auth(&key).header("x-request-id", "proxy-7").send().await.unwrap();
    assert_eq!(proxied.headers()["x-request-id"], "proxy-7");
    // No preflight is answered for a device route.
    let preflight = http
        .request(Method::OPTIONS, &poll)
        .header("Origin", "http://127.0.0.1:19006")
        .header("Access-Control-Request-Method", "GET")
        .send()
        .await
        .unwrap();
    assert!(preflight.headers().get("access-control-allow-origin").is_none(), "{:?}", preflight.headers());
    // Every other route keeps both.
    let other =
        http.get(format!("{}/healthz", app.base)).header("Origin", "http://127.0.0.1:19006").send().await.unwrap();
    assert_eq!(other.headers()["access-control-allow-origin"], "*");
    assert_eq!(other.headers()["x-request-id"].len(), 36);
}

/// Audit actions of a tenant, newest first.
async fn audit_actions(admin: &common::Client) -> Vec<String> {
    let (_, audit) = admin.get("/api/admin/audit").await;
    audit.as_array().unwrap().iter().map(|a| a["action"].as_str().unwrap().to_owned()).collect()
}

/// A second board of the tenant, with its key.
async fn second_board(t: &common::Tenant) -> (String, common::Client) {
    let created = t.admin.ok("/api/admin/devices", json!({"name": "spare board"})).await;
    let key = created["deviceKey"].as_str().unwrap().to_owned();
    (created["id"].as_str().unwrap().to_owned(), common::Client { token: Some(key), ..t.device.client.clone() })
}

#[tokio::test]
async fn one_pump_one_controller_a_spare_is_told_off_and_the_owner_can_switch() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 10).await;
    let (spare_id, spare) = second_board(&t).await;
    t.device.client.ok("/api/esp32/poll", report()).await;
    t.users[0].ok("/api/motor/start", json!({})).await;
    assert_eq!(t.device.client.ok("/api/esp32/poll", report()).await["motor"], "ON");

    // The spare says the grid is up, the real pump is in load shedding: only the pump counts.
    for _ in 0..4 {
        let answer = spare.ok("/api/esp32/poll", report()).await;
        assert_eq!((answer["motor"].as_str(), answer["state"].as_str()), (Some("OFF"), Some("IDLE")), "{answer}");
    }
    let shedding = json!({"loadShedding": true, "ready": true, "relay": false});
    assert_eq!(t.device.client.ok("/api/esp32/poll", shedding).await["holdReason"], "LOAD_SHEDDING");
    assert_eq!(spare.ok("/api/esp32/poll", report()).await["motor"], "OFF");
    assert_eq!(t.users[0].status().await["motor"]["holdReason"], "LOAD_SHEDDING", "the spare changed nothing");
    let (_, devices) = t.admin.get("/api/admin/devices").await;
    let controllers: Vec<bool> =
        devices.as_array().unwrap().iter().map(|d| d["controller"].as_bool().unwrap()).collect();
    assert_eq!(controllers, [true, false]);

    // The owner makes the spare the controller (audited): the old board is told OFF from then on.
    let q = app.tenant("qadir", 0, 0).await;
    let path = format!("/api/admin/devices/{spare_id}/controller");
    assert_error(&q.admin.post(&path, json!({})).await, StatusCode::NOT_FOUND, "NOT_FOUND");
    assert_error(&t.users[0].post(&path, json!({})).await, StatusCode::FORBIDDEN, "FORBIDDEN");
    assert_eq!(t.admin.ok(&path, json!({})).await["controller"], true);
    assert_eq!(t.device.client.ok("/api/esp32/poll", report()).await["motor"], "OFF");
    let answer = spare.ok("/api/esp32/poll", report()).await;
    assert_eq!((answer["motor"].as_str(), answer["state"].as_str()), (Some("ON"), Some("RUNNING")), "{answer}");
    assert!(audit_actions(&t.admin).await.contains(&"device.controller".to_owned()));
}

#[tokio::test]
async fn a_retired_device_stops_at_once_and_the_next_board_takes_over() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 10).await;
    let q = app.tenant("qadir", 0, 0).await;
    let (_, spare) = second_board(&t).await;
    t.device.client.ok("/api/esp32/poll", report()).await;
    let (_, devices) = t.admin.get("/api/admin/devices").await;
    let id = devices[0]["id"].as_str().unwrap().to_owned();
    let path = format!("/api/admin/devices/{id}");

    assert_error(&q.admin.request(Method::DELETE, &path, None).await, StatusCode::NOT_FOUND, "NOT_FOUND");
    assert_error(&t.users[0].request(Method::DELETE, &path, None).await, StatusCode::FORBIDDEN, "FORBIDDEN");
    let (status, _) = t.admin.request(Method::DELETE, &path, None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_error(&t.device.client.post("/api/esp32/poll", report()).await, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    assert_error(&t.admin.request(Method::DELETE, &path, None).await, StatusCode::NOT_FOUND, "NOT_FOUND");
    let (_, devices) = t.admin.get("/api/admin/devices").await;
    assert_eq!(devices.as_array().unwrap().len(), 1, "{devices}");
    assert!(audit_actions(&t.admin).await.contains(&"device.retire".to_owned()));

    // The retired board drove the pump; the spare takes over with its first poll.
    t.users[0].ok("/api/motor/start", json!({})).await;
    assert_eq!(spare.ok("/api/esp32/poll", report()).await["motor"], "ON");
    let (_, devices) = t.admin.get("/api/admin/devices").await;
    assert_eq!(devices[0]["controller"], true);
}

#[tokio::test]
async fn the_owner_sets_restart_protection_and_the_wait_shows_and_is_not_charged() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 2, 10).await;
    // The test server has no protection by default: the pump's own settings are what counts.
    let (_, settings) = t.admin.get("/api/admin/pump/motor").await;
    assert_eq!(settings["effective"], json!({"minOffMs": 0, "gridSettleMs": 0, "maxStartsPerHour": 0}));
    for bad in [
        json!({"minOffMs": -1}),
        json!({"minOffMs": 3_600_001}),
        json!({"gridSettleMs": "soon"}),
        json!({"maxStartsPerHour": 61}),
        json!({"minOffMs": 1000, "colour": "red"}),
    ] {
        let (status, body) = t.admin.request(Method::PUT, "/api/admin/pump/motor", Some(bad.clone())).await;
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY,
            "{bad}: {status} {body}"
        );
        assert!(body["error"]["code"].is_string(), "{body}");
    }
    let (_, unchanged) = t.admin.get("/api/admin/pump/motor").await;
    assert_eq!(unchanged, settings, "a refused setting changes nothing");
    let body = json!({"minOffMs": 30_000, "gridSettleMs": null, "maxStartsPerHour": 4});
    let (status, set) = t.admin.request(Method::PUT, "/api/admin/pump/motor", Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{set}");
    assert_eq!(set["own"], json!({"minOffMs": 30_000, "gridSettleMs": null, "maxStartsPerHour": 4}));
    assert!(audit_actions(&t.admin).await.contains(&"pump.motor".to_owned()));
    let answer = t.device.client.ok("/api/esp32/poll", report()).await;
    assert_eq!((answer["minOffMs"].as_u64(), answer["maxStartsPerHour"].as_u64()), (Some(30_000), Some(4)));

    t.users[0].ok("/api/motor/start", json!({})).await;
    assert_eq!(t.device.client.ok("/api/esp32/poll", report()).await["motor"], "ON");
    t.users[1].ok("/api/motor/start", json!({})).await;
    t.users[0].ok("/api/motor/stop", json!({})).await;
    assert_eq!(t.device.client.ok("/api/esp32/poll", report()).await["motor"], "ON", "a handover is not a start");
    t.users[1].ok("/api/motor/stop", json!({})).await;
    t.users[0].ok("/api/motor/start", json!({})).await;
    let status = t.users[0].status().await;
    assert_eq!(
        (status["motor"]["state"].as_str(), status["motor"]["holdReason"].as_str()),
        (Some("HOLD"), Some("RESTART_WAIT"))
    );
    let wait = status["motor"]["resumeInSeconds"].as_i64().unwrap();
    assert!((28..=30).contains(&wait), "{status}");
    let answer = t.device.client.ok("/api/esp32/poll", report()).await;
    assert_eq!((answer["motor"].as_str(), answer["holdReason"].as_str()), (Some("OFF"), Some("RESTART_WAIT")));
    t.users[0].ok("/api/motor/stop", json!({})).await;
    let (_, usage) = t.users[0].get("/api/usage").await;
    assert_eq!(usage[0]["chargedSeconds"], 0, "the wait is not charged: {usage}");
}

#[tokio::test]
async fn the_owner_sees_why_a_board_restarted_its_reader_and_its_feedback() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 10).await;
    let booted = json!({"loadShedding": false, "ready": true, "relay": false, "uptimeMs": 4_000, "reset": "BROWN_OUT", "reader": "ABSENT", "feedback": false});
    t.device.client.ok("/api/esp32/poll", booted).await;
    let later = json!({"loadShedding": false, "ready": true, "relay": false, "uptimeMs": 9_000, "reader": "OK", "feedback": false});
    t.device.client.ok("/api/esp32/poll", later).await;
    let (_, devices) = t.admin.get("/api/admin/devices").await;
    let d = &devices[0];
    assert_eq!(
        (d["lastReset"].as_str(), d["reader"].as_str(), d["feedback"].as_bool()),
        (Some("BROWN_OUT"), Some("OK"), Some(false)),
        "{d}"
    );
    assert!(d["lastResetAt"].is_string(), "{d}");
    let bad = json!({"loadShedding": false, "ready": true, "relay": false, "reset": "COSMIC_RAY"});
    assert_error(&t.device.client.post("/api/esp32/poll", bad).await, StatusCode::BAD_REQUEST, "VALIDATION");

    // The feedback never came: the board opens its relay and says why; the run holds NO_FEEDBACK,
    // uncharged. (A relay still closed without feedback is the board's to judge.)
    t.users[0].ok("/api/motor/start", json!({})).await;
    let on = json!({"loadShedding": false, "ready": true, "relay": true, "feedback": false});
    assert_eq!(t.device.client.ok("/api/esp32/poll", on.clone()).await["motor"], "ON");
    assert_eq!(t.device.client.ok("/api/esp32/poll", on).await["motor"], "ON");
    let gave_up =
        json!({"loadShedding": false, "ready": true, "relay": false, "feedback": false, "relayOff": "NO_FEEDBACK"});
    let answer = t.device.client.ok("/api/esp32/poll", gave_up).await;
    assert_eq!((answer["motor"].as_str(), answer["holdReason"].as_str()), (Some("OFF"), Some("NO_FEEDBACK")));
    assert_eq!(t.users[0].status().await["motor"]["holdReason"], "NO_FEEDBACK");
}
