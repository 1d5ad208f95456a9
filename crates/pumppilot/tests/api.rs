//! Black-box tests of PRODUCT.md's rules over real HTTP on a real port with a fresh SQLite file.

mod common;

use std::time::Duration;

use common::{Client, LEASE_MS, PASSWORD, TestApp, assert_error, spawn_app, spawn_app_configured, until};
use pumppilot_server::Settings;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn user_a_running_user_b_starts_and_waits_at_position_1() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 2, 30).await;
    let _polling = t.device.keep_polling();
    t.device.poll(false, true).await;

    let a = t.users[0].ok("/api/motor/start", json!({})).await;
    assert_eq!(a["status"], "RUNNING");
    let b = t.users[1].ok("/api/motor/start", json!({})).await;
    assert_eq!(b["status"], "WAITING");
    assert_eq!(b["position"], 1);
    assert_eq!(b["userName"], "Farmer 1");
    let wait = b["estimatedWaitSeconds"].as_i64().unwrap();
    assert!((29 * 60..=30 * 60).contains(&wait), "B waits for what A has left: {wait}");
    assert!(a.get("estimatedWaitSeconds").is_none(), "only a waiting entry has a wait");

    // Starting again returns the same entry unchanged.
    let again = t.users[1].ok("/api/motor/start", json!({})).await;
    assert_eq!(again["id"], b["id"]);
    assert_eq!(again["position"], 1);

    let (_, queue) = t.users[1].get("/api/queue").await;
    assert_eq!(queue["active"]["userId"], t.user_ids[0]);
    assert_eq!(queue["waiting"][0]["userId"], t.user_ids[1]);

    // A stops: B starts by itself.
    let ended = t.users[0].ok("/api/motor/stop", json!({})).await;
    assert_eq!(ended["status"], "COMPLETED");
    assert_eq!(ended["endReason"], "USER_STOP");
    let status = t.users[1].status().await;
    assert_eq!(status["motor"]["state"], "RUNNING");
    assert_eq!(status["me"]["entry"]["status"], "RUNNING");
    assert_eq!(status["motor"]["activeUserId"], t.user_ids[1]);
}

#[tokio::test]
async fn a_user_calling_the_recharge_api_gets_403() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 5).await;
    let answer = t.users[0].post("/api/admin/recharge", json!({"userId": t.user_ids[0], "minutes": 100})).await;
    assert_error(&answer, StatusCode::FORBIDDEN, "FORBIDDEN");
    let (_, wallet) = t.users[0].get("/api/wallet").await;
    assert_eq!(wallet["availableSeconds"], 5 * 60, "nothing changed");
    assert_error(&t.users[0].get("/api/admin/users").await, StatusCode::FORBIDDEN, "FORBIDDEN");
    assert_error(&t.admin.get("/api/master/admins").await, StatusCode::FORBIDDEN, "FORBIDDEN");
    assert_error(&t.admin.post("/api/motor/start", json!({})).await, StatusCode::FORBIDDEN, "FORBIDDEN");
}

#[tokio::test]
async fn admin_rahims_side_cannot_see_or_change_admin_qs_users_queue_requests_or_device() {
    let app = spawn_app().await;
    let rahim = app.tenant("rahim", 1, 10).await;
    let q = app.tenant("qadir", 1, 10).await;
    let q_user = &q.user_ids[0];
    let request = q.users[0].ok("/api/minute-requests", json!({"minutes": 5, "note": "paid cash"})).await;
    let request_id = request["id"].as_str().unwrap();

    let (_, users) = rahim.admin.get("/api/admin/users").await;
    assert!(users.as_array().unwrap().iter().all(|u| u["id"] != *q_user));
    for answer in [
        rahim.admin.post("/api/admin/recharge", json!({"userId": q_user, "minutes": 10})).await,
        rahim.admin.post(&format!("/api/admin/users/{q_user}/suspend"), json!({})).await,
        rahim.admin.post(&format!("/api/admin/minute-requests/{request_id}/approve"), json!({})).await,
        rahim.admin.post(&format!("/api/admin/minute-requests/{request_id}/reject"), json!({})).await,
    ] {
        assert_error(&answer, StatusCode::NOT_FOUND, "NOT_FOUND");
    }
    let (_, requests) = rahim.admin.get("/api/admin/minute-requests?status=PENDING").await;
    assert_eq!(requests, json!([]));

    // Q's run is invisible to Rahim's users, and Rahim's admin stop does not touch it.
    q.device.poll(false, true).await;
    q.users[0].ok("/api/motor/start", json!({})).await;
    let (_, queue) = rahim.users[0].get("/api/queue").await;
    assert_eq!(queue["active"], json!(null));
    assert_error(&rahim.admin.post("/api/admin/motor/stop", json!({})).await, StatusCode::NOT_FOUND, "NOT_FOUND");
    assert_eq!(q.users[0].status().await["motor"]["state"], "RUNNING");

    // Rahim's device key cannot act for Q's tenant.
    let path = format!("/api/esp32/poll?adminId={}&loadShedding=1&ready=1&relay=0", q.admin_id);
    assert_error(&rahim.device.client.get(&path).await, StatusCode::FORBIDDEN, "FORBIDDEN");
    let (_, q_user_wallet) = q.users[0].get("/api/wallet").await;
    assert_eq!(q_user_wallet["ledger"].as_array().unwrap().len(), 1, "only Q's own recharge");
    let (_, devices) = rahim.admin.get("/api/admin/devices").await;
    assert_eq!(devices.as_array().unwrap().len(), 1);
}

/// The owner taps Stop on a slow network and, seeing nothing, taps again (or the app retries after
/// a timeout): the first ends Karim's run and Salma, next in line, starts at once. The second
/// names Karim's run, which has ended: it is refused and Salma keeps running.
#[tokio::test]
async fn an_owners_stop_sent_twice_does_not_stop_the_next_farmers_run() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 2, 30).await;
    t.device.poll(false, true).await;
    let karims = t.users[0].ok("/api/motor/start", json!({})).await;
    let salmas = t.users[1].ok("/api/motor/start", json!({})).await;
    assert_eq!(salmas["status"], "WAITING");

    let stop = json!({"entryId": karims["id"]});
    let first = t.admin.ok("/api/admin/motor/stop", stop.clone()).await;
    assert_eq!((first["id"].as_str(), first["endReason"].as_str()), (karims["id"].as_str(), Some("ADMIN_STOP")));
    assert_eq!(t.users[1].status().await["me"]["state"], "RUNNING", "Salma starts at once");
    assert_eq!(owners_stops(&t.admin).await, 1);

    let again = t.admin.post("/api/admin/motor/stop", stop.clone()).await;
    assert_error(&again, StatusCode::CONFLICT, "ALREADY_ENDED");
    let status = t.users[1].status().await;
    assert_eq!(status["me"]["state"], "RUNNING", "the retried Stop left the next farmer's run alone");
    assert_eq!(status["me"]["entry"]["id"], salmas["id"]);
    assert_eq!(owners_stops(&t.admin).await, 1, "a refused stop writes nothing");

    // Salma's run stopped by its id; then nothing runs and the same Stop is refused alike.
    let salmas_stop = json!({"entryId": salmas["id"]});
    assert_eq!(t.admin.ok("/api/admin/motor/stop", salmas_stop.clone()).await["userName"], "Farmer 1");
    assert_error(&t.admin.post("/api/admin/motor/stop", salmas_stop).await, StatusCode::CONFLICT, "ALREADY_ENDED");
    // An id that is no id is a bad request; unknown fields too.
    let bad = t.admin.post("/api/admin/motor/stop", json!({"entryId": "karim"})).await;
    assert_error(&bad, StatusCode::BAD_REQUEST, "VALIDATION");
    assert!(bad.1["error"]["message"].as_str().unwrap().contains("entryId"), "{bad:?}");
    let unknown = t.admin.post("/api/admin/motor/stop", json!({"entry": karims["id"]})).await;
    assert_error(&unknown, StatusCode::BAD_REQUEST, "VALIDATION");

    // An older app names no run: the run active now is stopped, as before (404 when none).
    assert_error(&t.admin.post("/api/admin/motor/stop", json!({})).await, StatusCode::NOT_FOUND, "NOT_FOUND");
    let again = t.users[0].ok("/api/motor/start", json!({})).await;
    let (status, ended) = t.admin.request(Method::POST, "/api/admin/motor/stop", None).await;
    assert_eq!((status, ended["id"].as_str()), (StatusCode::OK, again["id"].as_str()), "{ended}");
}

/// How many stops the owner's audit log holds.
async fn owners_stops(admin: &Client) -> usize {
    let (_, audit) = admin.get("/api/admin/audit").await;
    audit.as_array().unwrap().iter().filter(|e| e["action"] == "motor.stop").count()
}

#[tokio::test]
async fn a_device_key_polling_with_another_tenants_admin_id_gets_403_and_no_key_gets_401() {
    let app = spawn_app().await;
    let rahim = app.tenant("rahim", 0, 0).await;
    let q = app.tenant("qadir", 0, 0).await;
    let path = format!("/api/esp32/poll?adminId={}&loadShedding=0&ready=1&relay=0", q.admin_id);
    assert_error(&rahim.device.client.get(&path).await, StatusCode::FORBIDDEN, "FORBIDDEN");
    let own = format!("/api/esp32/poll?adminId={}&loadShedding=0&ready=1&relay=0", rahim.admin_id);
    assert_eq!(rahim.device.client.get(&own).await.0, StatusCode::OK);
    assert_error(&app.anonymous().get(&own).await, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let stranger = common::Client { token: Some("pp_dev_not-a-key".into()), ..app.anonymous() };
    assert_error(&stranger.get(&own).await, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    assert_error(
        &rahim.device.client.get("/api/esp32/poll?loadShedding=maybe&ready=1").await,
        StatusCode::BAD_REQUEST,
        "VALIDATION",
    );
}

#[tokio::test]
async fn load_shedding_holds_with_remaining_time_frozen_then_resumes() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 10).await;
    t.device.poll(false, true).await;
    let answer = t.users[0].ok("/api/motor/start", json!({})).await;
    assert_eq!(answer["status"], "RUNNING");
    let on = t.device.poll(false, true).await;
    assert_eq!(on["motor"], "ON");

    let off = t.device.poll(true, true).await;
    assert_eq!(off["motor"], "OFF");
    assert_eq!(off["state"], "HOLD");
    assert_eq!(off["holdReason"], "LOAD_SHEDDING");
    assert!(off["seq"].as_u64() > on["seq"].as_u64());
    let held = t.users[0].status().await;
    assert_eq!(held["motor"]["state"], "HOLD");
    assert_eq!(held["motor"]["holdReason"], "LOAD_SHEDDING");
    assert_eq!(held["device"]["loadShedding"], true);
    let frozen = held["motor"]["remainingSeconds"].as_i64().unwrap();
    let balance = held["me"]["availableSeconds"].as_i64().unwrap();
    app.pass_polling(Duration::from_secs(90), &t.device, true, true).await;
    let still = t.users[0].status().await;
    assert_eq!(still["motor"]["remainingSeconds"], frozen, "HOLD freezes the remaining time");
    assert_eq!(still["me"]["availableSeconds"], balance, "HOLD charges nothing");

    let resumed = t.device.poll(false, true).await;
    assert_eq!(resumed["motor"], "ON");
    assert_eq!(resumed["state"], "RUNNING");
    assert_eq!(t.users[0].status().await["motor"]["state"], "RUNNING");
}

#[tokio::test]
async fn not_ready_holds_and_a_run_started_under_bad_conditions_starts_in_hold() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 10).await;
    // Never polled: the device is offline, so the run starts in HOLD and charges nothing.
    let entry = t.users[0].ok("/api/motor/start", json!({})).await;
    assert_eq!(entry["status"], "HOLD");
    assert_eq!(entry["holdReason"], "DEVICE_OFFLINE");
    let answer = t.device.poll(false, false).await;
    assert_eq!(answer["state"], "HOLD");
    assert_eq!(answer["holdReason"], "DEVICE_NOT_READY");
    assert_eq!(answer["motor"], "OFF");
    assert_eq!(t.device.poll(false, true).await["motor"], "ON");
}

#[tokio::test]
async fn final_balance_after_stop_is_the_balance_less_the_running_seconds() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 10).await;
    t.device.poll(false, true).await;
    t.users[0].ok("/api/motor/start", json!({})).await;
    app.pass_polling(Duration::from_millis(2900), &t.device, false, true).await;
    let ended = t.users[0].ok("/api/motor/stop", json!({})).await;
    let charged = ended["chargedSeconds"].as_i64().unwrap();
    assert_eq!(charged, 2, "whole seconds, rounded down");
    assert_eq!(ended["availableSeconds"], 600 - charged);
    let (_, wallet) = t.users[0].get("/api/wallet").await;
    assert_eq!(wallet["availableSeconds"], 600 - charged);
    let ledger = wallet["ledger"].as_array().unwrap();
    assert_eq!(ledger[0]["kind"], "RUN_CHARGE");
    assert_eq!(ledger[0]["deltaSeconds"], -charged);
    let sum: i64 = ledger.iter().map(|l| l["deltaSeconds"].as_i64().unwrap()).sum();
    assert_eq!(sum, 600 - charged, "balance = sum of the ledger");
    let (_, usage) = t.users[0].get("/api/usage").await;
    assert_eq!(usage[0]["chargedSeconds"], charged);
    assert_eq!(usage[0]["endReason"], "USER_STOP");
    let (_, tenant_usage) = t.admin.get("/api/admin/usage").await;
    assert_eq!(tenant_usage[0]["entryId"], usage[0]["entryId"]);
}

#[tokio::test]
async fn a_silent_device_puts_the_run_in_hold_device_offline_with_the_charge_stopped_at_the_lease() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 10).await;
    t.device.poll(false, true).await;
    t.users[0].ok("/api/motor/start", json!({})).await;
    t.device.poll(false, true).await;
    // The device goes silent: its lease runs out after LEASE_MS.
    app.clock.advance(Duration::from_millis(u64::from(LEASE_MS) - 1));
    assert_eq!(t.users[0].status().await["motor"]["state"], "RUNNING", "not a millisecond before the lease");
    app.clock.advance(Duration::from_millis(1501));
    let status = t.users[0].status().await;
    assert_eq!(status["motor"]["state"], "HOLD");
    assert_eq!(status["motor"]["holdReason"], "DEVICE_OFFLINE");
    assert_eq!(status["device"]["online"], false);
    let ended = t.users[0].ok("/api/motor/stop", json!({})).await;
    let charged = ended["chargedSeconds"].as_i64().unwrap();
    assert_eq!(charged, i64::from(LEASE_MS) / 1000, "charged to the lease, not to the stop");
}

#[tokio::test]
async fn twenty_concurrent_starts_in_one_tenant_make_exactly_one_active_and_positions_1_to_19() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 20, 5).await;
    t.device.poll(false, true).await;
    let starts = t.users.iter().map(|u| {
        let u = u.clone();
        tokio::spawn(async move { u.ok("/api/motor/start", json!({})).await })
    });
    let answers: Vec<_> = futures::future::join_all(starts).await.into_iter().map(Result::unwrap).collect();
    let active = answers.iter().filter(|a| a["status"] == "RUNNING").count();
    assert_eq!(active, 1);
    let mut positions: Vec<i64> = answers.iter().filter_map(|a| a["position"].as_i64()).collect();
    positions.sort_unstable();
    assert_eq!(positions, (1..=19).collect::<Vec<_>>());
    let (_, queue) = t.admin.get("/api/queue").await;
    let waiting: Vec<i64> =
        queue["waiting"].as_array().unwrap().iter().map(|e| e["position"].as_i64().unwrap()).collect();
    assert_eq!(waiting, (1..=19).collect::<Vec<_>>());

    // A waiting user leaves: the positions behind close up.
    let third = answers.iter().position(|a| a["position"] == 3).unwrap();
    let left = t.users[third].ok("/api/motor/stop", json!({})).await;
    assert_eq!(left["endReason"], "LEFT_QUEUE");
    let (_, queue) = t.admin.get("/api/queue").await;
    let waiting: Vec<i64> =
        queue["waiting"].as_array().unwrap().iter().map(|e| e["position"].as_i64().unwrap()).collect();
    assert_eq!(waiting, (1..=18).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_refresh_retried_at_once_gets_a_new_pair_and_a_rotated_token_used_later_revokes_the_session() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 1).await;
    let anon = app.anonymous();
    let (status, first) = anon
        .post("/api/mobile/login", json!({"username": "rahim-farmer-0", "password": PASSWORD, "deviceName": "phone"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["user"]["role"], "user");
    let access = common::Client { token: Some(first["accessToken"].as_str().unwrap().into()), ..anon.clone() };
    assert_eq!(access.get("/api/auth/me").await.0, StatusCode::OK);
    let refresh = |token: &serde_json::Value| anon.post("/api/mobile/refresh", json!({"refreshToken": token}));

    let (status, second) = refresh(&first["refreshToken"]).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_ne!(second["refreshToken"], first["refreshToken"]);
    assert_error(&access.get("/api/auth/me").await, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");

    // The answer was lost on the way: the app retries with the token it still has, and gets a
    // new pair; the pair it never received stops working.
    let (status, third) = refresh(&first["refreshToken"]).await;
    assert_eq!(status, StatusCode::OK, "a retry within the window: {third}");
    let renewed = common::Client { token: Some(third["accessToken"].as_str().unwrap().into()), ..anon.clone() };
    assert_eq!(renewed.get("/api/wallet").await.0, StatusCode::OK);
    let lost = common::Client { token: Some(second["accessToken"].as_str().unwrap().into()), ..anon.clone() };
    assert_error(&lost.get("/api/wallet").await, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");

    // A minute later, a rotated token coming back is a thief: the whole session is revoked.
    app.clock.advance(Duration::from_secs(60));
    assert_error(&refresh(&second["refreshToken"]).await, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    assert_error(&renewed.get("/api/wallet").await, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    assert_error(&refresh(&third["refreshToken"]).await, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");

    // Logout revokes one session.
    let (_, third) = anon.post("/api/mobile/login", json!({"username": "rahim-farmer-0", "password": PASSWORD})).await;
    let (status, _) = anon.post("/api/mobile/logout", json!({"refreshToken": third["refreshToken"]})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let after = common::Client { token: Some(third["accessToken"].as_str().unwrap().into()), ..anon.clone() };
    assert_error(&after.get("/api/auth/me").await, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    drop(t);
}

#[tokio::test]
async fn suspending_an_admin_locks_out_the_tenant_and_ends_its_run() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 2, 10).await;
    t.device.poll(false, true).await;
    t.users[0].ok("/api/motor/start", json!({})).await;
    t.users[1].ok("/api/motor/start", json!({})).await;
    // Charging starts with the poll that tells the device ON.
    t.device.poll(false, true).await;
    app.pass_polling(Duration::from_millis(1100), &t.device, false, true).await;
    let master = app.master().await;
    let suspended = master.ok(&format!("/api/master/admins/{}/suspend", t.admin_id), json!({})).await;
    assert_eq!(suspended["suspended"], true);

    // Old tokens say why they stopped working, so the apps do not just sign out.
    assert_error(&t.users[0].get("/api/motor/status").await, StatusCode::FORBIDDEN, "ACCOUNT_SUSPENDED");
    assert_error(&t.admin.get("/api/admin/users").await, StatusCode::FORBIDDEN, "ACCOUNT_SUSPENDED");
    let relogin =
        app.anonymous().post("/api/auth/login", json!({"username": "rahim-farmer-0", "password": PASSWORD})).await;
    assert_error(&relogin, StatusCode::FORBIDDEN, "ACCOUNT_SUSPENDED");

    let (_, usage) = master.get(&format!("/api/admin/usage?adminId={}", t.admin_id)).await;
    assert_eq!(usage[0]["endReason"], "SUSPENDED");
    assert_eq!(usage[0]["chargedSeconds"], 1, "charged up to the moment: {usage}");
    let (_, queue) = master.get(&format!("/api/queue?adminId={}", t.admin_id)).await;
    assert_eq!(queue["active"], json!(null));
    assert_eq!(queue["waiting"], json!([]));
    assert_eq!(t.device.poll(false, true).await["motor"], "OFF");

    master.ok(&format!("/api/master/admins/{}/unsuspend", t.admin_id), json!({})).await;
    let user = app.login("rahim-farmer-0", PASSWORD).await;
    assert_eq!(user.ok("/api/motor/start", json!({})).await["status"], "RUNNING");
}

#[tokio::test]
async fn suspending_a_user_ends_their_run_and_their_tokens() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 2, 10).await;
    t.device.poll(false, true).await;
    t.users[0].ok("/api/motor/start", json!({})).await;
    t.users[1].ok("/api/motor/start", json!({})).await;
    let anon = app.anonymous();
    let mobile = anon.ok("/api/mobile/login", json!({"username": "rahim-farmer-0", "password": PASSWORD})).await;
    let phone = Client { token: mobile["accessToken"].as_str().map(String::from), ..anon.clone() };
    t.admin.ok(&format!("/api/admin/users/{}/suspend", t.user_ids[0]), json!({})).await;
    // The old web token, the old mobile token and the refresh token all say "suspended".
    assert_error(&t.users[0].get("/api/wallet").await, StatusCode::FORBIDDEN, "ACCOUNT_SUSPENDED");
    assert_error(&phone.get("/api/wallet").await, StatusCode::FORBIDDEN, "ACCOUNT_SUSPENDED");
    assert_error(
        &anon.post("/api/mobile/refresh", json!({"refreshToken": mobile["refreshToken"]})).await,
        StatusCode::FORBIDDEN,
        "ACCOUNT_SUSPENDED",
    );
    assert_eq!(t.users[1].status().await["me"]["entry"]["status"], "RUNNING", "the next in line started");
    let (_, users) = t.admin.get("/api/admin/users").await;
    let suspended = users.as_array().unwrap().iter().find(|u| u["id"] == t.user_ids[0]).unwrap();
    assert_eq!(suspended["suspended"], true);
}

#[tokio::test]
async fn minute_requests_are_decided_once_and_approval_recharges() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 0).await;
    assert_error(&t.users[0].post("/api/motor/start", json!({})).await, StatusCode::CONFLICT, "INSUFFICIENT_BALANCE");
    let request = t.users[0].ok("/api/minute-requests", json!({"minutes": 15, "note": "paid 150 taka"})).await;
    assert_eq!(request["status"], "PENDING");
    let (_, pending) = t.admin.get("/api/admin/minute-requests?status=PENDING").await;
    assert_eq!(pending[0]["id"], request["id"]);
    let id = request["id"].as_str().unwrap();
    let approved = t.admin.ok(&format!("/api/admin/minute-requests/{id}/approve"), json!({})).await;
    assert_eq!(approved["status"], "APPROVED");
    assert_error(
        &t.admin.post(&format!("/api/admin/minute-requests/{id}/approve"), json!({})).await,
        StatusCode::CONFLICT,
        "ALREADY_DECIDED",
    );
    assert_error(
        &t.admin.post(&format!("/api/admin/minute-requests/{id}/reject"), json!({})).await,
        StatusCode::CONFLICT,
        "ALREADY_DECIDED",
    );
    let (_, wallet) = t.users[0].get("/api/wallet").await;
    assert_eq!(wallet["availableSeconds"], 15 * 60, "approved once, credited once");
    assert_eq!(wallet["ledger"][0]["kind"], "REQUEST_APPROVED");

    let second = t.users[0].ok("/api/minute-requests", json!({"minutes": 5})).await;
    let rejected =
        t.admin.ok(&format!("/api/admin/minute-requests/{}/reject", second["id"].as_str().unwrap()), json!({})).await;
    assert_eq!(rejected["status"], "REJECTED");
    let (_, wallet) = t.users[0].get("/api/wallet").await;
    assert_eq!(wallet["availableSeconds"], 15 * 60);

    let (_, audit) = t.admin.get("/api/admin/audit").await;
    let actions: Vec<&str> = audit.as_array().unwrap().iter().map(|a| a["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"request.approve") && actions.contains(&"request.reject"), "{actions:?}");
}

/// An owner may say why they reject a request, from a fixed set: the reason is on the request in
/// the owner's list and the farmer's. Without a body, with `{}` or with a null reason, a rejection
/// has none, as before reasons were kept. A reason the server does not know is a 400 that changes
/// nothing: the request still waits, the farmer is told nothing and the log has no line of it.
#[tokio::test]
async fn an_owner_rejects_with_a_reason_or_without_and_a_reason_not_on_the_list_changes_nothing() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 4, 0).await;
    let ask = |n: usize, minutes: i64| {
        let farmer = t.users[n].clone();
        async move {
            farmer.ok("/api/minute-requests", json!({"minutes": minutes})).await["id"].as_str().unwrap().to_owned()
        }
    };
    let reject = |id: &str| format!("/api/admin/minute-requests/{id}/reject");

    let first = ask(0, 15).await;
    for bad in [
        json!({"reason": "NOT PAID"}),
        json!({"reason": "not_paid"}),
        json!({"reason": 5}),
        json!({"reason": "NOT_PAID", "note": "x"}),
    ] {
        assert_error(&t.admin.post(&reject(&first), bad).await, StatusCode::BAD_REQUEST, "VALIDATION");
    }
    let (_, pending) = t.admin.get("/api/admin/minute-requests?status=PENDING").await;
    assert_eq!(pending.as_array().unwrap().len(), 1, "still waiting: {pending}");
    assert!(pending[0].get("rejectReason").is_none(), "{pending}");
    let (_, bell) = t.users[0].get("/api/notifications").await;
    assert_eq!(bell["notifications"], json!([]), "the farmer is told nothing");
    let (_, audit) = t.admin.get("/api/admin/audit").await;
    assert!(audit.as_array().unwrap().iter().all(|line| line["action"] != "request.reject"), "{audit}");

    let rejected = t.admin.ok(&reject(&first), json!({"reason": "NOT_PAID"})).await;
    assert_eq!((&rejected["status"], &rejected["rejectReason"]), (&json!("REJECTED"), &json!("NOT_PAID")));
    // Decided once: another reason later is refused, and the first stays.
    assert_error(
        &t.admin.post(&reject(&first), json!({"reason": "TOO_MANY"})).await,
        StatusCode::CONFLICT,
        "ALREADY_DECIDED",
    );

    // Each way of calling without a reason: no body at all, `{}`, a null reason.
    let (second, third, fourth) = (ask(1, 20).await, ask(2, 25).await, ask(0, 30).await);
    let (status, none) = t.admin.request(Method::POST, &reject(&second), None).await;
    assert_eq!(status, StatusCode::OK, "{none}");
    let empty = t.admin.ok(&reject(&third), json!({})).await;
    let null = t.admin.ok(&reject(&fourth), json!({"reason": null})).await;
    for view in [&none, &empty, &null] {
        assert_eq!(view["status"], "REJECTED");
        assert!(view.get("rejectReason").is_none(), "no reason: {view}");
    }
    // The master, for the owner, with the other reasons.
    let master = app.master().await;
    for (n, reason) in [(1, "WRONG_AMOUNT"), (2, "TOO_MANY"), (3, "PUMP_CLOSED")] {
        let id = ask(n, 40).await;
        let rejected = master.ok(&format!("{}?adminId={}", reject(&id), t.admin_id), json!({"reason": reason})).await;
        assert_eq!(rejected["rejectReason"], reason);
    }

    // The farmer's own list, newest first, and the owner's list say the same.
    let (status, own) = t.users[0].get("/api/minute-requests").await;
    assert_eq!(status, StatusCode::OK);
    let reasons = |list: &Value| list.as_array().unwrap().iter().map(|r| r["rejectReason"].clone()).collect::<Vec<_>>();
    assert_eq!(reasons(&own), [Value::Null, json!("NOT_PAID")]);
    assert_eq!(own[1]["id"], first.as_str());
    let (_, all) = t.admin.get("/api/admin/minute-requests?status=REJECTED").await;
    let mut said: Vec<String> = reasons(&all).iter().map(|r| r.as_str().unwrap_or("none").to_owned()).collect();
    said.sort();
    assert_eq!(said, ["NOT_PAID", "PUMP_CLOSED", "TOO_MANY", "WRONG_AMOUNT", "none", "none", "none"]);
}

#[tokio::test]
async fn a_farmer_has_one_minute_request_waiting_at_a_time_and_asks_for_at_most_600_minutes() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 0).await;
    let farmer = &t.users[0];
    assert_error(
        &farmer.post("/api/minute-requests", json!({"minutes": 601})).await,
        StatusCode::BAD_REQUEST,
        "VALIDATION",
    );
    let first = farmer.ok("/api/minute-requests", json!({"minutes": 600, "note": "paid"})).await;
    assert_error(
        &farmer.post("/api/minute-requests", json!({"minutes": 5})).await,
        StatusCode::CONFLICT,
        "REQUEST_PENDING",
    );
    let (_, pending) = t.admin.get("/api/admin/minute-requests?status=PENDING").await;
    assert_eq!(pending.as_array().unwrap().len(), 1, "the refused request changed nothing: {pending}");
    // Once the owner decides, the farmer may ask again.
    t.admin.ok(&format!("/api/admin/minute-requests/{}/reject", first["id"].as_str().unwrap()), json!({})).await;
    farmer.ok("/api/minute-requests", json!({"minutes": 5})).await;
}

#[tokio::test]
async fn bad_input_gets_a_clear_json_error_and_changes_nothing() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 10).await;
    let admin = &t.admin;
    assert_error(
        &admin.post("/api/admin/recharge", json!({"userId": t.user_ids[0]})).await,
        StatusCode::BAD_REQUEST,
        "VALIDATION",
    );
    let answer = admin.post("/api/admin/recharge", json!({"userId": t.user_ids[0]})).await;
    assert!(answer.1["error"]["message"].as_str().unwrap().contains("minutes"), "names the field: {}", answer.1);
    assert_error(
        &admin.post("/api/admin/recharge", json!({"userId": t.user_ids[0], "minutes": 0})).await,
        StatusCode::BAD_REQUEST,
        "VALIDATION",
    );
    assert_error(
        &admin.post("/api/admin/recharge", json!({"userId": t.user_ids[0], "minutes": 100001})).await,
        StatusCode::BAD_REQUEST,
        "VALIDATION",
    );
    assert_error(
        &admin.post("/api/admin/recharge", json!({"userId": "not-an-id", "minutes": 5})).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    );
    assert_error(&admin.post("/api/admin/users/xyz/suspend", json!({})).await, StatusCode::NOT_FOUND, "NOT_FOUND");
    assert_error(&admin.get("/api/no/such/route").await, StatusCode::NOT_FOUND, "NOT_FOUND");
    assert_error(
        &admin.request(Method::DELETE, "/api/admin/users", None).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
    );
    let negative = t.users[0].post("/api/motor/start", json!({"minutes": -3})).await;
    assert_error(&negative, StatusCode::BAD_REQUEST, "VALIDATION");
    assert!(
        negative.1["error"]["message"].as_str().unwrap().starts_with("minutes:"),
        "names the field: {}",
        negative.1
    );
    let as_text = admin
        .http
        .post(format!("{}/api/admin/recharge", app.base))
        .bearer_auth(admin.token.as_deref().unwrap())
        .header("content-type", "text/plain")
        .body(json!({"userId": t.user_ids[0], "minutes": 5}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(as_text.status(), StatusCode::BAD_REQUEST, "JSON must say it is JSON");
    assert_error(&t.users[0].post("/api/motor/stop", json!({})).await, StatusCode::NOT_FOUND, "NOT_FOUND");

    let raw = admin
        .http
        .post(format!("{}/api/admin/recharge", app.base))
        .bearer_auth(admin.token.as_deref().unwrap())
        .header("content-type", "application/json")
        .body("{\"userId\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::BAD_REQUEST);
    assert_eq!(raw.json::<serde_json::Value>().await.unwrap()["error"]["code"], "VALIDATION");

    let huge = json!({"name": "x".repeat(70 * 1024), "username": "big", "password": "password1"});
    assert_error(&admin.post("/api/admin/users", huge).await, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
    assert_error(
        &admin
            .post("/api/admin/users", json!({"name": "Dup", "username": "rahim-farmer-0", "password": "password1"}))
            .await,
        StatusCode::CONFLICT,
        "USERNAME_TAKEN",
    );
    assert_error(&app.anonymous().get("/api/wallet").await, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    assert_error(
        &app.anonymous().post("/api/auth/login", json!({"username": "rahim", "password": "nope"})).await,
        StatusCode::UNAUTHORIZED,
        "INVALID_CREDENTIALS",
    );

    let (_, users) = admin.get("/api/admin/users").await;
    assert_eq!(users.as_array().unwrap().len(), 1, "nothing was created");
    assert_eq!(users[0]["availableSeconds"], 600, "nothing was recharged");
}

#[tokio::test]
async fn failed_logins_are_rate_limited_per_username() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 1).await;
    let anon = app.anonymous();
    // Successful logins never count.
    for _ in 0..12 {
        app.login("rahim-farmer-0", PASSWORD).await;
    }
    let mut last = None;
    for _ in 0..11 {
        last = Some(anon.post("/api/auth/login", json!({"username": "rahim-farmer-0", "password": "guess"})).await);
    }
    assert_error(&last.unwrap(), StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    assert_error(
        &anon.post("/api/auth/login", json!({"username": "rahim-farmer-0", "password": PASSWORD})).await,
        StatusCode::TOO_MANY_REQUESTS,
        "RATE_LIMITED",
    );
    // Another username is not locked out by it.
    app.login("rahim", PASSWORD).await;
    // Fifteen minutes later the window has passed.
    app.clock.advance(Duration::from_secs(15 * 60 - 1));
    assert_error(
        &anon.post("/api/auth/login", json!({"username": "rahim-farmer-0", "password": PASSWORD})).await,
        StatusCode::TOO_MANY_REQUESTS,
        "RATE_LIMITED",
    );
    app.clock.advance(Duration::from_secs(1));
    app.login("rahim-farmer-0", PASSWORD).await;
    drop(t);
}

#[tokio::test]
async fn cookie_sessions_need_a_same_origin_request_to_change_anything() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 10).await;
    let http = reqwest::Client::new();
    let login = http
        .post(format!("{}/api/auth/login", app.base))
        .json(&json!({"username": "rahim-farmer-0", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite"), "{cookie}");
    let cookie = cookie.split(';').next().unwrap().to_string();

    let read = http.get(format!("{}/api/auth/me", app.base)).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    let cross = http
        .post(format!("{}/api/minute-requests", app.base))
        .header("cookie", &cookie)
        .header("origin", "http://evil.example")
        .json(&json!({"minutes": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    let same = http
        .post(format!("{}/api/minute-requests", app.base))
        .header("cookie", &cookie)
        .header("origin", &app.base)
        .json(&json!({"minutes": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), StatusCode::CREATED);
    let (_, requests) = t.admin.get("/api/admin/minute-requests").await;
    assert_eq!(requests.as_array().unwrap().len(), 1, "the cross-site request changed nothing");

    let logout = http
        .post(format!("{}/api/auth/logout", app.base))
        .header("cookie", &cookie)
        .header("origin", &app.base)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    let after = http.get(format!("{}/api/auth/me", app.base)).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
}

/// The master's totals are every pump's, in one call: owners, farmers, pumps running and on hold
/// now, and the time charged and the cash taken in the last 30 days, exactly what each pump's own
/// usage and receipts add up to; they leave the window 30 days on. Only the master reads them.
#[tokio::test]
async fn the_master_reads_every_pumps_totals_in_one_call() {
    use pumppilot_server::clock::{Clock, rfc3339};
    let app = spawn_app().await;
    let master = app.master().await;
    // Recharges without cash at a pump without a price: no receipt.
    let rahim = app.tenant("rahim", 2, 10).await;
    let karim = app.tenant("karim", 1, 10).await;
    master.ok("/api/master/admins", json!({"name": "Jamal", "username": "jamal", "password": PASSWORD})).await;
    let (_, empty) = master.get("/api/master/totals").await;
    assert_eq!((&empty["owners"], &empty["farmers"]), (&json!(3), &json!(3)), "{empty}");
    assert_eq!((&empty["chargedSeconds"], &empty["cashTaka"]), (&json!(0), &json!(0)), "{empty}");

    for (owner, farmer, minutes, cash) in [(&rahim, 0, 30, 60), (&rahim, 1, 10, 25), (&karim, 0, 20, 45)] {
        let body = json!({"userId": owner.user_ids[farmer], "minutes": minutes, "cashTaka": cash});
        owner.admin.ok("/api/admin/recharge", body).await;
    }
    // A run of 90 s at Rahim's pump, then another farmer's that goes on; load shedding holds Karim's.
    rahim.device.poll(false, true).await;
    rahim.users[0].ok("/api/motor/start", json!({})).await;
    rahim.device.poll(false, true).await;
    app.pass_polling(Duration::from_secs(90), &rahim.device, false, true).await;
    rahim.users[0].ok("/api/motor/stop", json!({})).await;
    rahim.users[1].ok("/api/motor/start", json!({})).await;
    rahim.device.poll(false, true).await;
    karim.device.poll(false, true).await;
    karim.users[0].ok("/api/motor/start", json!({})).await;
    karim.device.poll(true, true).await;

    let (status, totals) = master.get("/api/master/totals").await;
    assert_eq!(status, StatusCode::OK, "{totals}");
    let since = rfc3339(app.clock.now() + -30 * 24 * 3_600_000);
    assert_eq!(
        totals,
        json!({
            "owners": 3, "farmers": 3, "running": 1, "onHold": 1,
            "since": since, "chargedSeconds": 90, "cashTaka": 60 + 25 + 45,
        })
    );
    // The sum of what the master reads pump by pump.
    let (mut seconds, mut cash) = (0, 0);
    for admin in [&rahim.admin_id, &karim.admin_id] {
        let (_, usage) = master.get(&format!("/api/admin/usage?adminId={admin}&from={since}")).await;
        seconds += usage.as_array().unwrap().iter().map(|u| u["chargedSeconds"].as_i64().unwrap()).sum::<i64>();
        let (_, receipts) = master.get(&format!("/api/admin/receipts?adminId={admin}&from={since}")).await;
        cash += receipts.as_array().unwrap().iter().map(|r| r["cashTaka"].as_i64().unwrap()).sum::<i64>();
    }
    assert_eq!((json!(seconds), json!(cash)), (totals["chargedSeconds"].clone(), totals["cashTaka"].clone()));

    // Nobody else reads them.
    assert_error(&rahim.admin.get("/api/master/totals").await, StatusCode::FORBIDDEN, "FORBIDDEN");
    assert_error(&rahim.users[0].get("/api/master/totals").await, StatusCode::FORBIDDEN, "FORBIDDEN");
    assert_eq!(app.anonymous().get("/api/master/totals").await.0, StatusCode::UNAUTHORIZED);

    // Thirty days on, the run and the receipts have left the window; the owners and farmers stay.
    app.clock.advance(Duration::from_millis(30 * 24 * 3_600_000 + 1_000));
    let (_, later) = app.master().await.get("/api/master/totals").await;
    assert_eq!((&later["owners"], &later["farmers"]), (&json!(3), &json!(3)), "{later}");
    assert_eq!((&later["chargedSeconds"], &later["cashTaka"]), (&json!(0), &json!(0)), "{later}");
}

#[tokio::test]
async fn usage_exports_as_csv_and_the_audit_log_records_recharges() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 10).await;
    t.device.poll(false, true).await;
    t.users[0].ok("/api/motor/start", json!({})).await;
    t.admin.ok("/api/admin/motor/stop", json!({})).await;
    let response = t
        .admin
        .http
        .get(format!("{}/api/admin/usage?format=csv&from=2020-01-01", app.base))
        .bearer_auth(t.admin.token.as_deref().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let csv = response.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("entryId,userId,userName"));
    assert_eq!(lines.len(), 2, "{csv}");
    assert!(lines[1].contains("ADMIN_STOP") && lines[1].contains("\"Farmer 0\""));
    let (_, none) = t.admin.get("/api/admin/usage?to=2020-01-01").await;
    assert_eq!(none, json!([]));
    assert_error(&t.admin.get("/api/admin/usage?from=someday").await, StatusCode::BAD_REQUEST, "VALIDATION");

    let (_, audit) = t.admin.get("/api/admin/audit").await;
    let actions: Vec<&str> = audit.as_array().unwrap().iter().map(|a| a["action"].as_str().unwrap()).collect();
    for expected in ["user.create", "recharge", "device.register", "motor.stop"] {
        assert!(actions.contains(&expected), "{expected} missing from {actions:?}");
    }
}

#[tokio::test]
async fn master_sees_every_tenant_at_a_glance() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 2, 10).await;
    t.device.poll(false, true).await;
    t.users[0].ok("/api/motor/start", json!({})).await;
    let (_, page) = app.master().await.get("/api/master/admins").await;
    let rahim = page["admins"].as_array().unwrap().iter().find(|a| a["username"] == "rahim").unwrap();
    assert_eq!(rahim["userCount"], 2);
    assert_eq!(rahim["motorState"], "RUNNING");
    assert_eq!(rahim["deviceOnline"], true);
    assert_eq!(rahim["role"], "admin");
    let (_, devices) = t.admin.get("/api/admin/devices").await;
    assert_eq!(devices[0]["online"], true);
    assert_eq!(devices[0]["firmware"], "test");
}

/// The master's list of pump owners comes a page at a time, in username order: every owner once
/// (a suspended one too) with their farmer count, `next` the cursor of the page after and `total`
/// on every page; a bad `limit`, `after` or `q` is a 400 that changes nothing.
#[tokio::test]
async fn the_master_pages_through_every_pump_owner_once_in_username_order() {
    let app = spawn_app().await;
    let master = app.master().await;
    let rahim = app.tenant("rahim", 2, 10).await;
    let babul = app.tenant("babul", 1, 10).await;
    for name in ["zaman", "amina", "karim"] {
        master.ok("/api/master/admins", json!({"name": name, "username": name, "password": PASSWORD})).await;
    }
    master.ok(&format!("/api/master/admins/{}/suspend", babul.admin_id), json!({})).await;
    let farmers = |name: &str| match name {
        "rahim" => 2,
        "babul" => 1,
        _ => 0,
    };

    let mut seen = Vec::new();
    let mut path = "/api/master/admins?limit=2".to_owned();
    loop {
        let (status, page) = master.get(&path).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        assert_eq!(page["total"], 5, "{page}");
        let owners = page["admins"].as_array().unwrap();
        assert!(owners.len() <= 2, "{page}");
        for owner in owners {
            let name = owner["username"].as_str().unwrap();
            assert_eq!(owner["userCount"], farmers(name), "{owner}");
            assert_eq!(owner["suspended"], name == "babul", "{owner}");
            assert_eq!(owner["role"], "admin");
            seen.push(name.to_owned());
        }
        match page["next"].as_str() {
            Some(next) => {
                assert_eq!(Some(next), seen.last().map(String::as_str), "the cursor is the page's last username");
                path = format!("/api/master/admins?limit=2&after={next}");
            }
            None => {
                assert_eq!(page["next"], Value::Null);
                break;
            }
        }
    }
    assert_eq!(seen, ["amina", "babul", "karim", "rahim", "zaman"], "every owner once, by username");

    // By default up to 50: all five, and no page after.
    let (_, all) = master.get("/api/master/admins").await;
    assert_eq!(all["admins"].as_array().unwrap().len(), 5);
    assert_eq!((&all["next"], &all["total"]), (&Value::Null, &json!(5)));
    let (status, most) = master.get("/api/master/admins?limit=200").await;
    assert_eq!((status, most["admins"].as_array().unwrap().len()), (StatusCode::OK, 5));
    let (_, last) = master.get("/api/master/admins?limit=5").await;
    assert_eq!(last["next"], Value::Null, "a page that ends with the last owner says so");

    // A username's beginning, any case.
    let (_, found) = master.get("/api/master/admins?q=RA").await;
    assert_eq!(found["total"], 1);
    assert_eq!(found["admins"][0]["id"], rahim.admin_id);
    assert_eq!(found["admins"][0]["motorState"], "IDLE");
    let (_, none) = master.get("/api/master/admins?q=rahim-farmer").await;
    assert_eq!((none["admins"].as_array().unwrap().len(), &none["total"]), (0, &json!(0)), "farmers are no owners");

    for bad in [
        "limit=0",
        "limit=201",
        "limit=-1",
        "limit=ten",
        "after=",
        "after=not%20a%20name",
        &format!("after={}", "a".repeat(65)),
        "q=%C3%A9",
        "q=",
        "limit=2&limit=3",
        "offset=2",
    ] {
        let answer = master.get(&format!("/api/master/admins?{bad}")).await;
        assert_error(&answer, StatusCode::BAD_REQUEST, "VALIDATION");
    }
    let (_, again) = master.get("/api/master/admins").await;
    assert_eq!(again, all, "the refusals changed nothing");
    assert_error(&rahim.admin.get("/api/master/admins?limit=2").await, StatusCode::FORBIDDEN, "FORBIDDEN");

    // One owner by id; a farmer or no one is not found.
    let (status, one) = master.get(&format!("/api/master/admins/{}", rahim.admin_id)).await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!((&one["username"], &one["userCount"]), (&json!("rahim"), &json!(2)));
    for id in [rahim.user_ids[0].as_str(), "0123456789abcdef0123456789abcdef", "nobody"] {
        assert_error(&master.get(&format!("/api/master/admins/{id}")).await, StatusCode::NOT_FOUND, "NOT_FOUND");
    }
    assert_error(
        &rahim.admin.get(&format!("/api/master/admins/{}", rahim.admin_id)).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    );
}

/// The named strings of the OpenAPI document list exactly the names the engine and the store
/// write. Each list below comes with an exhaustive `match`, so a new variant fails to compile
/// here until its name is documented.
#[tokio::test]
async fn the_openapi_document_lists_every_value_of_each_named_string() {
    use pumppilot_engine::{EndReason as E, EntryStatus as S, HoldReason as H, LedgerKind as L, MotorState as M};
    use pumppilot_store::{RequestStatus as R, Role};

    let app = spawn_app().await;
    let (_, doc) = app.anonymous().get("/api/openapi.json").await;
    let documented = |name: &str| -> Vec<String> {
        let values = doc["components"]["schemas"][name]["enum"].as_array();
        values.unwrap_or_else(|| panic!("{name} has no enum")).iter().map(|v| v.as_str().unwrap().to_owned()).collect()
    };
    let names = |all: &[&str]| all.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    let roles = [Role::Master, Role::Admin, Role::User];
    let _ = |r: Role| match r {
        Role::Master | Role::Admin | Role::User => (),
    };
    assert_eq!(documented("Role"), names(&roles.map(|r| r.as_str())));
    let motor = [M::Idle, M::Running, M::Hold];
    let _ = |m: M| match m {
        M::Idle | M::Running | M::Hold => (),
    };
    assert_eq!(documented("MotorState"), names(&motor.map(|m| m.as_str())));
    let statuses = [S::Waiting, S::Running, S::Hold, S::Completed, S::Cancelled];
    let _ = |s: S| match s {
        S::Waiting | S::Running | S::Hold | S::Completed | S::Cancelled => (),
    };
    assert_eq!(documented("EntryStatus"), names(&statuses.map(|s| s.as_str())));
    let holds = H::ALL;
    let _ = |h: H| match h {
        H::LoadShedding
        | H::DeviceNotReady
        | H::DeviceOffline
        | H::GridSettling
        | H::RestartWait
        | H::NoFeedback
        | H::StoreUnavailable => (),
    };
    assert_eq!(documented("HoldReason"), names(&holds.map(|h| h.as_str())));
    let ends = [
        E::UserStop,
        E::BalanceExhausted,
        E::RequestedMinutesUsed,
        E::AdminStop,
        E::Suspended,
        E::InsufficientBalance,
        E::LeftQueue,
    ];
    let _ = |e: E| match e {
        E::UserStop
        | E::BalanceExhausted
        | E::RequestedMinutesUsed
        | E::AdminStop
        | E::Suspended
        | E::InsufficientBalance
        | E::LeftQueue => (),
    };
    assert_eq!(documented("EndReason"), names(&ends.map(|e| e.as_str())));
    let kinds = [L::Recharge, L::RequestApproved, L::RunCharge, L::Correction];
    let _ = |k: L| match k {
        L::Recharge | L::RequestApproved | L::RunCharge | L::Correction => (),
    };
    assert_eq!(documented("LedgerKind"), names(&kinds.map(|k| k.as_str())));
    let requests = [R::Pending, R::Approved, R::Rejected];
    let _ = |r: R| match r {
        R::Pending | R::Approved | R::Rejected => (),
    };
    assert_eq!(documented("RequestStatus"), names(&requests.map(|r| r.as_str())));
}

#[tokio::test]
async fn an_admin_corrects_a_balance_with_a_reason_but_never_below_zero() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 10).await;
    let user = &t.user_ids[0];
    let fixed = t
        .admin
        .ok("/api/admin/corrections", json!({"userId": user, "minutes": -4, "note": "recharged 10 instead of 6"}))
        .await;
    assert_eq!(fixed["availableSeconds"], 6 * 60);
    let too_much = t.admin.post("/api/admin/corrections", json!({"userId": user, "minutes": -7, "note": "oops"})).await;
    assert_error(&too_much, StatusCode::CONFLICT, "BELOW_ZERO");
    let no_reason = t.admin.post("/api/admin/corrections", json!({"userId": user, "minutes": 2, "note": " "})).await;
    assert_error(&no_reason, StatusCode::BAD_REQUEST, "VALIDATION");
    let (status, wallet) = t.admin.get(&format!("/api/admin/users/{user}/wallet")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(wallet["availableSeconds"], 6 * 60);
    assert_eq!(wallet["ledger"][0]["kind"], "CORRECTION");
    assert_eq!(wallet["ledger"][0]["deltaSeconds"], -240);
    assert_eq!(wallet["ledger"][0]["note"], "recharged 10 instead of 6");
    assert_error(
        &t.users[0].post("/api/admin/corrections", json!({"userId": user, "minutes": 5, "note": "me"})).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    );
    let other = app.tenant("qadir", 1, 1).await;
    assert_error(
        &other.admin.get(&format!("/api/admin/users/{user}/wallet")).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    );
}

#[tokio::test]
async fn a_user_sees_their_own_minute_requests_only() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 2, 0).await;
    t.users[0].ok("/api/minute-requests", json!({"minutes": 10, "note": "bKash 100"})).await;
    t.users[1].ok("/api/minute-requests", json!({"minutes": 20})).await;
    let (_, mine) = t.users[0].get("/api/minute-requests").await;
    let mine = mine.as_array().unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["minutes"], 10);
    assert_eq!(mine[0]["status"], "PENDING");
}

#[tokio::test]
async fn the_front_page_tells_a_newcomer_where_to_go() {
    let app = spawn_app().await;
    let page = reqwest::get(&app.base).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("/api/openapi.json"));
}

/// A client whose requests come from `ip` (any of 127.0.0.0/8 reaches the test server).
fn from_address(app: &TestApp, ip: [u8; 4]) -> Client {
    let http = reqwest::Client::builder().local_address(std::net::IpAddr::from(ip)).build().unwrap();
    Client { http, ..app.anonymous() }
}

#[tokio::test]
async fn parallel_guesses_for_one_account_are_refused_before_hashing() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 1).await;
    let passwords = &app.running.app.passwords;
    let before = passwords.hashes_run();
    let guesses = (0..40u8).map(|i| {
        let client = from_address(&app, [127, 0, 1, i + 1]);
        async move {
            client
                .http
                .post(format!("{}/api/auth/login", client.base))
                .json(&json!({"username": "rahim-farmer-0", "password": format!("guess-{i}")}))
                .send()
                .await
                .unwrap()
        }
    });
    let answers = futures::future::join_all(guesses).await;
    let mut refused = 0;
    for answer in answers {
        match answer.status() {
            StatusCode::TOO_MANY_REQUESTS => {
                refused += 1;
                assert!(answer.headers().get("retry-after").is_some(), "429 without Retry-After");
                let body: serde_json::Value = answer.json().await.unwrap();
                assert_eq!(body["error"]["code"], "RATE_LIMITED", "{body}");
            }
            StatusCode::UNAUTHORIZED => {}
            other => panic!("a wrong password got {other}"),
        }
    }
    let hashed = passwords.hashes_run() - before;
    eprintln!("40 parallel guesses: {refused} refused before hashing, {hashed} hashed");
    assert!(refused >= 30, "only {refused} of 40 parallel guesses were refused");
    assert_eq!(hashed, 40 - refused, "every refused guess was refused before hashing");
    // The owner is not locked out by them.
    app.login("rahim-farmer-0", PASSWORD).await;
    drop(t);
}

#[tokio::test]
async fn the_owner_signs_in_despite_wrong_passwords_from_elsewhere_and_behind_one_nat() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 2, 1).await;
    let guess = json!({"username": "rahim-farmer-0", "password": "guess"});
    for i in 0..10u8 {
        let answer = from_address(&app, [127, 0, 2, i + 1]).post("/api/auth/login", guess.clone()).await;
        assert_error(&answer, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    }
    // Ten more from one address: that pair is stopped, before hashing.
    let guesser = from_address(&app, [127, 0, 3, 1]);
    for _ in 0..10 {
        assert_error(
            &guesser.post("/api/auth/login", guess.clone()).await,
            StatusCode::UNAUTHORIZED,
            "INVALID_CREDENTIALS",
        );
    }
    let hashed = app.running.app.passwords.hashes_run();
    assert_error(&guesser.post("/api/auth/login", guess.clone()).await, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    assert_eq!(app.running.app.passwords.hashes_run(), hashed, "refused before hashing");
    // The owner, from their own phone, signs in on the web and on mobile.
    let owner = from_address(&app, [127, 0, 0, 1]);
    let right = json!({"username": "rahim-farmer-0", "password": PASSWORD});
    assert_eq!(owner.post("/api/auth/login", right.clone()).await.0, StatusCode::OK);
    assert_eq!(owner.post("/api/mobile/login", right).await.0, StatusCode::OK);

    // Many failures behind one NAT do not lock out its other users with the right password.
    let nat = from_address(&app, [127, 0, 4, 1]);
    for i in 0..(pumppilot_server::auth::LoginLimiter::PER_ADDRESS + 5) {
        let answer = nat.post("/api/auth/login", json!({"username": format!("nobody-{i}"), "password": "x"})).await;
        assert_error(&answer, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    }
    let neighbour = json!({"username": "rahim-farmer-1", "password": PASSWORD});
    assert_eq!(nat.post("/api/auth/login", neighbour).await.0, StatusCode::OK);
    // The window is on the server's clock: fifteen minutes on, the guesser may try again.
    app.clock.advance(Duration::from_secs(15 * 60));
    assert_error(&guesser.post("/api/auth/login", guess).await, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    drop(t);
}

#[tokio::test]
async fn parallel_sign_ins_never_hash_more_than_the_slots_at_once() {
    let app = spawn_app().await;
    let slots = app.running.app.settings.max_hashing as usize;
    let attempts = (0..32u8).map(|i| {
        let client = from_address(&app, [127, 0, 5, i + 1]);
        async move {
            let answer = client
                .http
                .post(format!("{}/api/auth/login", client.base))
                .json(&json!({"username": format!("stranger-{i}"), "password": "guess"}))
                .send()
                .await
                .unwrap();
            let status = answer.status();
            let retry_after = answer.headers().contains_key("retry-after");
            let body: serde_json::Value = answer.json().await.unwrap();
            (status, retry_after, body)
        }
    });
    for (status, retry_after, body) in futures::future::join_all(attempts).await {
        match status {
            StatusCode::UNAUTHORIZED => assert_eq!(body["error"]["code"], "INVALID_CREDENTIALS"),
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(body["error"]["code"], "BUSY", "{body}");
                assert!(retry_after, "503 BUSY without Retry-After");
            }
            other => panic!("{other}: {body}"),
        }
    }
    let peak = app.running.app.passwords.peak();
    eprintln!("32 parallel sign-ins: at most {peak} hashes at once ({slots} slots)");
    assert!(peak <= slots, "{peak} hashes ran at once with {slots} slots");
    assert!(peak >= 2, "the checks ran in parallel (peak {peak})");
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_limiter_counts_the_forwarded_client() {
    let app =
        spawn_app_configured(|settings| Settings { trusted_proxies: vec!["127.0.0.0/8".parse().unwrap()], ..settings })
            .await;
    let t = app.tenant("rahim", 1, 1).await;
    let guesser = "203.0.113.9";
    for _ in 0..pumppilot_server::auth::LoginLimiter::PER_PAIR {
        let answer = app.login_forwarded_for(guesser, "rahim-farmer-0", "guess").await;
        assert_error(&answer, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    }
    let answer = app.login_forwarded_for(guesser, "rahim-farmer-0", PASSWORD).await;
    assert_error(&answer, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    // The owner behind the same proxy, from their own address, is another client.
    let owner = app.login_forwarded_for("198.51.100.20", "rahim-farmer-0", PASSWORD).await;
    assert_eq!(owner.0, StatusCode::OK, "{}", owner.1);
    // A guesser who forges the header past the proxy is still counted as who the proxy saw.
    let forged = app.login_forwarded_for("198.51.100.21, 203.0.113.9", "rahim-farmer-0", PASSWORD).await;
    assert_error(&forged, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    drop(t);
}

#[tokio::test]
async fn without_trusted_proxies_a_forwarded_for_header_is_ignored() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 1).await;
    for i in 0..pumppilot_server::auth::LoginLimiter::PER_PAIR {
        // A guesser cannot spread its attempts over invented addresses.
        let answer = app.login_forwarded_for(&format!("203.0.113.{i}"), "rahim-farmer-0", "guess").await;
        assert_error(&answer, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    }
    let answer = app.login_forwarded_for("203.0.113.200", "rahim-farmer-0", "guess").await;
    assert_error(&answer, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    drop(t);
}

/// A raw request, for bodies and heads the JSON client would not send.
async fn raw(
    app: &TestApp,
    client: &Client,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new().request(method, format!("{}{path}", app.base)).body(body.to_string());
    if let Some(token) = &client.token {
        request = request.bearer_auth(token);
    }
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status();
    let text = answer.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

#[tokio::test]
async fn every_refusal_is_json_with_a_code() {
    let app = spawn_app().await;
    let anon = app.anonymous();
    assert_error(&anon.get("/static/missing.css").await, StatusCode::NOT_FOUND, "NOT_FOUND");
    let long = format!("/api/motor/status?x={}", "a".repeat(9 * 1024));
    assert_error(&anon.get(&long).await, StatusCode::URI_TOO_LONG, "URI_TOO_LONG");
    let answer = reqwest::Client::new()
        .get(format!("{}/healthz", app.base))
        .header("x-big", "b".repeat(40 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], "HEADERS_TOO_LARGE", "{body}");
    let big = format!("{{\"username\": \"{}\"}}", "u".repeat(70 * 1024));
    let answer = raw(&app, &anon, Method::POST, "/api/auth/login", Some("application/json"), &big).await;
    assert_error(&answer, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE");
    assert_error(
        &anon.request(Method::DELETE, "/healthz", None).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
    );
}

#[tokio::test]
async fn every_endpoint_keeps_one_body_policy() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 10).await;
    let farmer = &t.users[0];
    for (content_type, body) in [(Some("text/plain"), "{}"), (None, "{}"), (Some("application/json"), "[]")] {
        let answer = raw(&app, farmer, Method::POST, "/api/motor/start", content_type, body).await;
        assert_error(&answer, StatusCode::BAD_REQUEST, "VALIDATION");
    }
    let answer =
        raw(&app, &app.anonymous(), Method::POST, "/api/auth/login", Some("application/json"), r#"["rahim", "x"]"#)
            .await;
    assert_error(&answer, StatusCode::BAD_REQUEST, "VALIDATION");
    assert_eq!(farmer.status().await["me"]["state"], "IDLE", "nothing started");
    // No body at all is still a plain Start.
    let answer = raw(&app, farmer, Method::POST, "/api/motor/start", None, "").await;
    assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);
}

#[tokio::test]
async fn naming_another_tenant_is_refused_not_ignored() {
    let app = spawn_app().await;
    let rahim = app.tenant("rahim", 1, 10).await;
    let karim = app.tenant("karim", 1, 10).await;
    let other = format!("/api/admin/users?adminId={}", karim.admin_id);
    assert_error(&rahim.admin.get(&other).await, StatusCode::FORBIDDEN, "FORBIDDEN");
    let own = format!("/api/admin/users?adminId={}", rahim.admin_id);
    assert_eq!(rahim.admin.get(&own).await.0, StatusCode::OK);
    let status = format!("/api/motor/status?adminId={}", karim.admin_id);
    assert_error(&rahim.users[0].get(&status).await, StatusCode::FORBIDDEN, "FORBIDDEN");
    assert_error(&rahim.admin.get("/api/admin/users?adminId=junk").await, StatusCode::FORBIDDEN, "FORBIDDEN");
    // The master still names any tenant.
    let master = app.master().await;
    assert_eq!(master.get(&other).await.0, StatusCode::OK);
}

#[tokio::test]
async fn names_carry_no_control_or_direction_characters() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 10).await;
    let farmer = format!("/api/admin/users/{}", t.user_ids[0]);
    let posing = ["Karim\u{0}", "Ka\nrim", "\u{202E}miraK", "Karim\u{2067}", "\u{1b}[31mKarim", "Ka\u{2028}rim"];
    for name in posing.into_iter().chain(["\u{200B}\u{200B}", "\u{FEFF}", "-"]) {
        let answer =
            t.admin.post("/api/admin/users", json!({"name": name, "username": "karim", "password": PASSWORD})).await;
        assert_error(&answer, StatusCode::BAD_REQUEST, "VALIDATION");
        assert_error(
            &t.admin.post("/api/admin/devices", json!({"name": name})).await,
            StatusCode::BAD_REQUEST,
            "VALIDATION",
        );
        // A new name is checked as a first one is.
        let renamed = t.admin.request(reqwest::Method::PATCH, &farmer, Some(json!({"name": name}))).await;
        assert_error(&renamed, StatusCode::BAD_REQUEST, "VALIDATION");
    }
    let (_, users) = t.admin.get("/api/admin/users").await;
    assert_eq!(users.as_array().unwrap().len(), 1, "nothing was created");
    assert_eq!(users[0]["name"], "Farmer 0", "nor renamed: {users}");

    // Notes and reasons others read keep their line breaks, and nothing that poses.
    let (user_id, waiting) = (&t.user_ids[0], "/api/admin/queue/");
    for text in posing.into_iter().filter(|text| !text.contains('\n')) {
        let note = json!({"userId": user_id, "minutes": 5, "note": text});
        assert_error(&t.admin.post("/api/admin/recharge", note.clone()).await, StatusCode::BAD_REQUEST, "VALIDATION");
        assert_error(&t.admin.post("/api/admin/corrections", note).await, StatusCode::BAD_REQUEST, "VALIDATION");
        let asked = json!({"minutes": 5, "note": text});
        assert_error(&t.users[0].post("/api/minute-requests", asked).await, StatusCode::BAD_REQUEST, "VALIDATION");
        let reason = json!({"reason": text});
        let remove = format!("{waiting}{user_id}/remove");
        assert_error(&t.admin.post(&remove, reason).await, StatusCode::BAD_REQUEST, "VALIDATION");
    }
    let (_, wallet) = t.admin.get(&format!("/api/admin/users/{user_id}/wallet")).await;
    assert_eq!(wallet["availableSeconds"], 600, "no minutes moved: {wallet}");
    let lines = json!({"userId": user_id, "minutes": 5, "note": "paid 50 taka\r\ncash, by Rahim"});
    t.admin.ok("/api/admin/recharge", lines).await;
    let (_, wallet) = t.admin.get(&format!("/api/admin/users/{user_id}/wallet")).await;
    assert_eq!(wallet["ledger"][0]["note"], "paid 50 taka\ncash, by Rahim", "one line break, as it came: {wallet}");
    // Bangla and other scripts are names like any.
    t.admin.ok("/api/admin/users", json!({"name": "করিম মিয়া", "username": "karim", "password": PASSWORD})).await;
}

#[tokio::test]
async fn every_answer_carries_a_request_id() {
    let app = spawn_app().await;
    let http = reqwest::Client::new();
    let answer = http.get(format!("{}/api/motor/status", app.base)).send().await.unwrap();
    let id = answer.headers().get("x-request-id").expect("a request id").to_str().unwrap().to_string();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    let other = http.get(format!("{}/healthz", app.base)).send().await.unwrap();
    assert_ne!(other.headers()["x-request-id"], id.as_str(), "one per request");
    // A proxy's own id is kept, so both logs name the same request.
    let given = http.get(format!("{}/healthz", app.base)).header("x-request-id", "proxy-42").send().await.unwrap();
    assert_eq!(given.headers()["x-request-id"], "proxy-42");
}

/// The value of one sample line of a Prometheus text page (`name{labels}` exactly).
fn sample(page: &str, series: &str) -> Option<f64> {
    page.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

async fn metrics_page(app: &TestApp, token: Option<&str>) -> (StatusCode, String, String) {
    let mut request = reqwest::Client::new().get(format!("{}/metrics", app.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status();
    let content_type =
        answer.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, content_type, answer.text().await.unwrap())
}

#[tokio::test]
async fn metrics_show_requests_runs_holds_devices_and_failed_logins_to_the_master_only() {
    const TOKEN: &str = "a-scraper-token-of-some-length";
    let app = spawn_app_configured(|settings| Settings {
        metrics_token: Some(pumppilot_server::config::Secret(TOKEN.into())),
        ..settings
    })
    .await;
    let t = app.tenant("rahim", 1, 10).await;
    let q = app.tenant("karim", 1, 10).await;
    // A pump owner whose pump nobody used: counted (from the owners' ids).
    app.tenant("jamal", 1, 10).await;
    t.device.poll(false, true).await;
    t.users[0].ok("/api/motor/start", json!({})).await;
    t.device.poll(false, true).await;
    q.device.poll(false, true).await;
    q.users[0].ok("/api/motor/start", json!({})).await;
    q.device.poll(true, true).await; // load shedding: HOLD
    let wrong = app.anonymous().post("/api/auth/login", json!({"username": "rahim", "password": "guess"})).await;
    assert_error(&wrong, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");

    // Nobody else reads them.
    let (status, _, body) = metrics_page(&app, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _, _) = metrics_page(&app, t.admin.token.as_deref()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = metrics_page(&app, Some("a-wrong-token-of-some-length")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let runtime = &app.running.app.runtime;
    // On a shared store the feed beats on the wall clock (every second of real time), which a
    // machine busy with other work can hold back for seconds (8 s once, in a clean clone's run
    // beside other builds): wait until this server's own heartbeat came back within FRESH_FOR.
    let fresh_for = pumppilot_server::runtime::FRESH_FOR;
    until("the feed caught up", || !runtime.is_shared() || runtime.feed_behind().is_some_and(|b| b < fresh_for)).await;
    let master = app.master().await;
    let (status, content_type, page) = metrics_page(&app, master.token.as_deref()).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let value = |series: &str| sample(&page, series).unwrap_or_else(|| panic!("no {series} in\n{page}"));
    assert_eq!(value("pumppilot_failed_logins_total"), 1.0);
    assert_eq!(value("pumppilot_tenants"), 3.0);
    assert_eq!(value(r#"pumppilot_active_runs{status="RUNNING"}"#), 1.0);
    assert_eq!(value(r#"pumppilot_active_runs{status="HOLD"}"#), 1.0);
    assert_eq!(value(r#"pumppilot_holds{reason="LOAD_SHEDDING"}"#), 1.0);
    assert_eq!(value("pumppilot_devices_online"), 2.0);
    assert_eq!(value("pumppilot_device_polls_total"), 4.0);
    assert_eq!(value(r#"pumppilot_http_requests_total{method="GET",route="/api/esp32/poll",status="200"}"#), 4.0);
    assert_eq!(value(r#"pumppilot_http_requests_total{method="POST",route="/api/auth/login",status="401"}"#), 1.0);
    assert_eq!(value("pumppilot_store_up"), 1.0);
    assert_eq!(value("pumppilot_store_outage"), 0.0);
    // How far behind the change feed is: none on a store of one process; on a shared one, how
    // long this server's own heartbeat took to come back (within FRESH_FOR, waited for above).
    let behind = sample(&page, "pumppilot_feed_behind_seconds");
    if runtime.is_shared() {
        assert!(behind.is_some_and(|behind| (0.0..fresh_for.as_secs_f64()).contains(&behind)), "{page}");
    } else {
        assert_eq!(behind, None, "a store of one process has no change feed");
    }
    assert!(value("pumppilot_store_read_seconds") >= 0.0);
    assert!(value(r#"pumppilot_http_request_seconds_count{route="/api/motor/start"}"#) >= 2.0);
    // Once the device is silent past its lease, it is offline. A new owner is not counted yet:
    // the store counts its owners at most once a minute, whoever scrapes.
    app.tenant("nasrin", 1, 10).await;
    app.clock.advance(Duration::from_millis(u64::from(LEASE_MS) + 1));
    let (_, _, page) = metrics_page(&app, Some(TOKEN)).await;
    assert_eq!(sample(&page, "pumppilot_devices_online"), Some(0.0), "{page}");
    assert_eq!(sample(&page, "pumppilot_tenants"), Some(3.0), "counted {LEASE_MS} ms ago: {page}");
    app.clock.advance(pumppilot_server::metrics::OWNERS_COUNTED_EVERY);
    let (_, _, page) = metrics_page(&app, Some(TOKEN)).await;
    assert_eq!(sample(&page, "pumppilot_tenants"), Some(4.0), "counted again after a minute: {page}");
}

/// Two servers of one fleet on one MongoDB (SecantusDB), in this process: a scrape of server B
/// reads from the store only the pump owners with a run, never every owner (at 100,000 owners
/// that held a server for minutes). B counts what it read in `pumppilot_tenant_loads_total`.
#[tokio::test]
async fn a_scrape_on_a_shared_store_reads_only_the_owners_with_a_run() {
    use pumppilot_server::{clock::ManualClock, config::Secret};
    let url = pumppilot_store_mongodb::testing::server().fresh_url();
    let secret = || Some(Secret("a-test-secret-of-at-least-32-characters".into()));
    let clock = ManualClock::starting_now();
    let a = common::spawn_app_at(&url, secret(), clock.clone()).await;
    let b = common::spawn_app_at(&url, secret(), clock.clone()).await;
    // Four owners on A; one of them has a run.
    let running = a.tenant("rahim", 1, 10).await;
    for name in ["karim", "jamal", "salma"] {
        a.tenant(name, 1, 10).await;
    }
    running.device.poll(false, true).await;
    running.users[0].ok("/api/motor/start", json!({})).await;
    running.device.poll(false, true).await;

    let master = b.master().await;
    let loads = b.running.app.runtime.loads();
    let (status, _, page) = metrics_page(&b, master.token.as_deref()).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let read = b.running.app.runtime.loads() - loads;
    assert!(read <= 1, "the scrape read {read} owners' states from the store; only the one with a run may be read");
    assert_eq!(sample(&page, "pumppilot_tenants"), Some(4.0), "{page}");
    assert_eq!(sample(&page, r#"pumppilot_active_runs{status="RUNNING"}"#), Some(1.0), "{page}");
    assert_eq!(
        sample(&page, "pumppilot_tenant_loads_total"),
        Some(loads as f64),
        "counted before the scrape's own reads"
    );
}

/// A `GET` as the app sends it, with the tag it holds: the status, the answer's tag and its body.
async fn read_holding(client: &Client, path: &str, held: Option<&str>) -> (StatusCode, Option<String>, String) {
    let mut request = client.http.get(format!("{}{path}", client.base));
    if let Some(token) = &client.token {
        request = request.bearer_auth(token);
    }
    if let Some(held) = held {
        request = request.header("if-none-match", held);
    }
    let response = request.send().await.expect("request");
    let tag = response.headers().get("etag").map(|v| v.to_str().unwrap().to_owned());
    (response.status(), tag, response.text().await.unwrap())
}

#[tokio::test]
async fn a_read_that_finds_nothing_changed_is_answered_304_without_its_body() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 2, 30).await;
    t.device.poll(false, true).await;

    // The owner's pump screen: each read is tagged, and the same read again holding the tag is
    // answered 304 with no body.
    for path in ["/api/queue", "/api/admin/devices", "/api/admin/users", "/api/motor/status"] {
        let (status, tag, body) = read_holding(&t.admin, path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        let tag = tag.unwrap_or_else(|| panic!("{path} is tagged"));
        let (status, again, body) = read_holding(&t.admin, path, Some(&tag)).await;
        assert_eq!((status, body.as_str()), (StatusCode::NOT_MODIFIED, ""), "{path}");
        assert_eq!(again.as_deref(), Some(tag.as_str()), "{path}: a 304 names the tag it confirms");
    }

    // A change: the line is read in full, with a new tag.
    let (_, held, before) = read_holding(&t.admin, "/api/queue", None).await;
    t.users[0].ok("/api/motor/start", json!({})).await;
    let (status, tag, body) = read_holding(&t.admin, "/api/queue", held.as_deref()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_ne!(body, before);
    assert_ne!(tag, held);
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["active"]["userId"], t.user_ids[0]);

    // The answer is still made in full: a tag does not stand for the session, nor the scope.
    let anonymous = Client { token: None, ..t.admin.clone() };
    let (status, _, body) = read_holding(&anonymous, "/api/queue", tag.as_deref()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _, body) = read_holding(&t.users[0], "/api/admin/devices", Some("*")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    // The app's web build, on another origin, may send the tag and read it back.
    let preflight = t
        .admin
        .http
        .request(Method::OPTIONS, format!("{}/api/queue", t.admin.base))
        .header("origin", "http://app.example")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization,if-none-match")
        .send()
        .await
        .unwrap();
    let allowed = preflight.headers()["access-control-allow-headers"].to_str().unwrap().to_owned();
    assert!(allowed.contains("if-none-match"), "{allowed}");
    let tagged = t
        .admin
        .http
        .get(format!("{}/api/queue", t.admin.base))
        .bearer_auth(t.admin.token.as_deref().unwrap())
        .header("origin", "http://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(tagged.headers()["access-control-expose-headers"], "etag");

    // A device's poll is never tagged nor answered 304: the board needs every answer's lease.
    let (status, tag, body) =
        read_holding(&t.device.client, "/api/esp32/poll?loadShedding=0&ready=1&relay=1", Some("*")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(tag, None);
}
