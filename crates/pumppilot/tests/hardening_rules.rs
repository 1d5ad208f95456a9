//! Issue 12's findings 7 and 9 as single, deterministic stories: amounts at the edges of `i64`
//! refused with nothing changed, and a card tap racing the app decided once, by the engine, on
//! the state it is applied to.

mod common;

use common::{assert_error, spawn_app};
use reqwest::StatusCode;
use serde_json::json;

/// Found by hand: `POST /api/admin/corrections` with `minutes = -9223372036854775808` overflowed
/// past the range check (`abs()`): a panic (500) in a debug build, a wrapped negative amount in
/// the release build.
#[tokio::test]
async fn amounts_at_the_edges_of_i64_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 10).await;
    let user = &t.user_ids[0];
    for minutes in [i64::MIN, i64::MIN + 1, i64::MAX, -100_001, 100_001] {
        let correction = json!({"userId": user, "minutes": minutes, "note": "edge"});
        assert_error(&t.admin.post("/api/admin/corrections", correction).await, StatusCode::BAD_REQUEST, "VALIDATION");
        let recharge = json!({"userId": user, "minutes": minutes});
        assert_error(&t.admin.post("/api/admin/recharge", recharge).await, StatusCode::BAD_REQUEST, "VALIDATION");
        let request = json!({"minutes": minutes});
        assert_error(&t.users[0].post("/api/minute-requests", request).await, StatusCode::BAD_REQUEST, "VALIDATION");
    }
    // Past i64 itself, the body is refused as unreadable, not wrapped.
    for minutes in ["9223372036854775808", "-9223372036854775809", "1e30"] {
        let body = format!(r#"{{"userId": "{user}", "minutes": {minutes}, "note": "edge"}}"#);
        let answer = reqwest::Client::new()
            .post(format!("{}/api/admin/corrections", app.base))
            .bearer_auth(t.admin.token.as_deref().unwrap())
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(body["error"]["code"], "VALIDATION", "{body}");
    }
    let (_, users) = t.admin.get("/api/admin/users").await;
    assert_eq!(users[0]["availableSeconds"], 600, "nothing was corrected or recharged: {users}");
    let (_, requests) = t.admin.get("/api/admin/minute-requests").await;
    assert_eq!(requests.as_array().map(Vec::len), Some(0), "no request was made: {requests}");
}

/// Found by hand: a card tap read the state, then applied Start or Stop under a second lock, so
/// the app's Start or Stop landing between the two made the tap act on a state that was gone (a
/// DENIED tap for a farmer with minutes, or a Start for one already running). Now the tap is one
/// engine event: whatever lands first, the tap's answer is what it did to the state it met.
#[tokio::test]
async fn a_card_tap_racing_the_apps_start_and_stop_is_decided_on_the_state_it_meets() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 600).await;
    t.device.poll(false, true).await;
    let user = &t.user_ids[0];
    t.admin.ok(&format!("/api/admin/users/{user}/rfid"), json!({"uid": "04A1B2C3"})).await;
    let farmer = &t.users[0];
    for round in 0..30 {
        // Each round starts idle; taps at one pump more than 2 s apart are new taps.
        app.pass_polling(std::time::Duration::from_millis(2_001), &t.device, false, true).await;
        let app_side = async {
            if round % 2 == 0 {
                farmer.post("/api/motor/start", json!({})).await
            } else {
                farmer.post("/api/motor/stop", json!({})).await
            }
        };
        let tap = t.device.client.post("/api/esp32/rfid", json!({"uid": "04A1B2C3"}));
        if round % 2 == 1 {
            // Stop races a tap on a running farmer.
            farmer.ok("/api/motor/start", json!({})).await;
        }
        let ((tap_status, tapped), (app_status, answer)) = tokio::join!(tap, app_side);
        assert_eq!(tap_status, StatusCode::OK, "round {round}: {tapped}");
        assert!(
            app_status.is_success() || app_status == StatusCode::CONFLICT || app_status == StatusCode::NOT_FOUND,
            "round {round}: the app got {app_status} {answer}"
        );
        let action = tapped["action"].as_str().unwrap();
        assert_ne!(action, "DENIED", "round {round}: a farmer with minutes was denied: {tapped}");
        let state = farmer.status().await["me"]["state"].as_str().unwrap().to_string();
        // The tap acted on the state it met; the app's call before or after it explains the rest.
        match (round % 2, action, app_status.is_success()) {
            // start + tap: whichever came second decided the end.
            (0, "STARTED", _) => assert_eq!(state, "RUNNING", "round {round}: tap then app start"),
            (0, "STOPPED", true) => assert_eq!(state, "IDLE", "round {round}: app start then tap"),
            // stop + tap on a running farmer: the tap stopped it, or the app did and the tap restarted.
            (1, "STOPPED", _) => assert_eq!(state, "IDLE", "round {round}: tap stopped it"),
            (1, "STARTED", true) => assert_eq!(state, "RUNNING", "round {round}: app stop then tap"),
            other => panic!("round {round}: {other:?} left {state}: {tapped} / {answer}"),
        }
        if state == "RUNNING" {
            farmer.ok("/api/motor/stop", json!({})).await;
        }
    }
}
