//! Changing passwords: anyone changes their own (`POST /api/auth/password`), and the master gives
//! a pump owner a new one (`POST /api/master/admins/{id}/password`).

mod common;

use common::{Client, MASTER, PASSWORD, TestApp, assert_error, spawn_app};
use reqwest::StatusCode;
use serde_json::{Value, json};

const NEW: &str = "a new password";

async fn change(client: &Client, current: &str, new: &str) -> (StatusCode, Value) {
    client.post("/api/auth/password", json!({"currentPassword": current, "newPassword": new})).await
}

async fn sign_in(app: &TestApp, username: &str, password: &str) -> (StatusCode, Value) {
    app.anonymous().post("/api/auth/login", json!({"username": username, "password": password})).await
}

async fn mobile_sign_in(app: &TestApp, username: &str) -> String {
    let body = json!({"username": username, "password": PASSWORD, "deviceName": "phone"});
    let pair = app.anonymous().ok("/api/mobile/login", body).await;
    pair["refreshToken"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_farmer_changes_their_password_and_only_the_session_that_asked_stays_signed_in() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 2, 5).await;
    let karim = &t.users[0];
    let browser = app.login("rahim-farmer-0", PASSWORD).await;
    let phone = mobile_sign_in(&app, "rahim-farmer-0").await;

    assert_eq!(change(karim, PASSWORD, NEW).await.0, StatusCode::NO_CONTENT);

    assert_eq!(karim.get("/api/wallet").await.0, StatusCode::OK, "the session that asked stays signed in");
    assert_error(&browser.get("/api/wallet").await, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let refresh = app.anonymous().post("/api/mobile/refresh", json!({"refreshToken": phone})).await;
    assert_error(&refresh, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    assert_error(&sign_in(&app, "rahim-farmer-0", PASSWORD).await, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    assert_eq!(app.login("rahim-farmer-0", NEW).await.get("/api/wallet").await.1["availableSeconds"], 300);
    assert_eq!(t.users[1].get("/api/wallet").await.0, StatusCode::OK, "other farmers stay signed in");

    let (_, audit) = t.admin.get("/api/admin/audit?action=account.password").await;
    let lines = audit.as_array().unwrap();
    assert_eq!(lines.len(), 1, "{audit}");
    assert_eq!((&lines[0]["actorId"], &lines[0]["targetId"]), (&json!(t.user_ids[0]), &json!(t.user_ids[0])));
    assert!(!audit.to_string().contains(NEW) && !audit.to_string().contains(PASSWORD), "never the password");
}

#[tokio::test]
async fn the_owner_and_the_master_change_their_own_passwords() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 0).await;
    let master = app.master().await;
    let other_master_session = app.master().await;

    assert_eq!(change(&t.admin, PASSWORD, NEW).await.0, StatusCode::NO_CONTENT);
    assert_eq!(t.admin.get("/api/admin/terms").await.0, StatusCode::OK);
    assert_eq!(app.login("rahim", NEW).await.get("/api/admin/terms").await.0, StatusCode::OK);
    assert_eq!(t.users[0].get("/api/wallet").await.0, StatusCode::OK, "the owner's farmers stay signed in");

    assert_eq!(change(&master, MASTER.1, NEW).await.0, StatusCode::NO_CONTENT);
    assert_eq!(master.get("/api/master/totals").await.0, StatusCode::OK);
    assert_error(&other_master_session.get("/api/master/totals").await, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    assert_error(&sign_in(&app, MASTER.0, MASTER.1).await, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    app.login(MASTER.0, NEW).await;
    let audit = app.running.app.store.audit(None, 100).await.unwrap();
    let changes: Vec<_> = audit.iter().filter(|line| line.action == "account.password").collect();
    assert_eq!(changes.len(), 2, "the owner's change and the master's: {changes:?}");
    assert!(changes.iter().all(|line| line.detail.is_empty()));
}

#[tokio::test]
async fn a_wrong_current_password_changes_nothing_and_counts_as_a_failed_sign_in() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 0).await;
    let karim = &t.users[0];
    let browser = app.login("rahim-farmer-0", PASSWORD).await;

    for _ in 0..10 {
        assert_error(&change(karim, "not my password", NEW).await, StatusCode::FORBIDDEN, "WRONG_PASSWORD");
    }
    // Nothing changed: the other session is signed in, the new password is not the password. And
    // ten wrong ones from here are the sign-in limit of the username from here.
    assert_eq!(browser.get("/api/wallet").await.0, StatusCode::OK);
    assert_error(&sign_in(&app, "rahim-farmer-0", PASSWORD).await, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    assert_error(&change(karim, PASSWORD, NEW).await, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED");
    app.clock.advance(std::time::Duration::from_secs(15 * 60));
    assert_error(&sign_in(&app, "rahim-farmer-0", NEW).await, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    app.login("rahim-farmer-0", PASSWORD).await;
    let (_, audit) = t.admin.get("/api/admin/audit?action=account.password").await;
    assert_eq!(audit, json!([]));
}

#[tokio::test]
async fn a_new_password_follows_the_password_rule() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 0).await;
    let karim = &t.users[0];
    let browser = app.login("rahim-farmer-0", PASSWORD).await;
    let hashed = app.running.app.passwords.hashes_run();

    assert_error(&change(karim, PASSWORD, "short").await, StatusCode::BAD_REQUEST, "VALIDATION");
    assert_error(&change(karim, PASSWORD, &"x".repeat(257)).await, StatusCode::BAD_REQUEST, "VALIDATION");
    let unknown = karim.post("/api/auth/password", json!({"currentPassword": PASSWORD, "password": NEW})).await;
    assert_error(&unknown, StatusCode::BAD_REQUEST, "VALIDATION");
    assert_eq!(app.running.app.passwords.hashes_run(), hashed, "refused before the current password is checked");
    assert_eq!(browser.get("/api/wallet").await.0, StatusCode::OK);
    app.login("rahim-farmer-0", PASSWORD).await;
    // Signed out: no one to change.
    let anonymous = app.anonymous();
    assert_error(&change(&anonymous, PASSWORD, NEW).await, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
}

/// A password is as long as its letters, not its bytes: a Bangla password of 256 letters (768
/// bytes) is allowed, and signs in and is changed with it; one letter more is refused, before any
/// hashing, wherever it is given.
#[tokio::test]
async fn a_long_bangla_password_signs_in_and_one_letter_more_is_refused_unhashed() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 0).await;
    let karim = &t.users[0];
    let longest = "প".repeat(256);
    let too_long = "প".repeat(257);

    assert_eq!(change(karim, PASSWORD, &longest).await.0, StatusCode::NO_CONTENT);
    let karim = app.login("rahim-farmer-0", &longest).await;
    assert_eq!(change(&karim, &longest, NEW).await.0, StatusCode::NO_CONTENT, "the current password, as long");

    let hashed = app.running.app.passwords.hashes_run();
    assert_error(&sign_in(&app, "rahim-farmer-0", &too_long).await, StatusCode::BAD_REQUEST, "VALIDATION");
    assert_error(&change(&karim, &too_long, "another new one").await, StatusCode::BAD_REQUEST, "VALIDATION");
    assert_error(&change(&karim, NEW, &too_long).await, StatusCode::BAD_REQUEST, "VALIDATION");
    assert_eq!(app.running.app.passwords.hashes_run(), hashed, "refused before any hashing");
    app.login("rahim-farmer-0", NEW).await;
}

#[tokio::test]
async fn the_master_gives_an_owner_a_new_password_that_signs_them_out_everywhere() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 0).await;
    let other = app.tenant("qadir", 0, 0).await;
    let master = app.master().await;
    let phone = mobile_sign_in(&app, "rahim").await;

    let (status, reset) = master.post(&format!("/api/master/admins/{}/password", t.admin_id), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{reset}");
    assert_eq!((&reset["userId"], &reset["username"]), (&json!(t.admin_id), &json!("rahim")));
    let password = reset["password"].as_str().unwrap();
    assert_eq!(password.len(), 10);

    assert_error(&t.admin.get("/api/admin/terms").await, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    let refresh = app.anonymous().post("/api/mobile/refresh", json!({"refreshToken": phone})).await;
    assert_error(&refresh, StatusCode::UNAUTHORIZED, "UNAUTHENTICATED");
    assert_error(&sign_in(&app, "rahim", PASSWORD).await, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS");
    let rahim = app.login("rahim", password).await;
    assert_eq!(t.users[0].get("/api/wallet").await.0, StatusCode::OK, "the owner's farmers stay signed in");
    assert_eq!(other.admin.get("/api/admin/terms").await.0, StatusCode::OK, "other owners too");
    let (_, audit) = rahim.get("/api/admin/audit?action=admin.password").await;
    assert_eq!(audit.as_array().map(Vec::len), Some(1), "{audit}");
    assert!(!audit.to_string().contains(password), "never the password");

    // Only the master, and only for an owner.
    for (caller, code) in [(&other.admin, "FORBIDDEN"), (&t.users[0], "FORBIDDEN")] {
        let answer = caller.post(&format!("/api/master/admins/{}/password", t.admin_id), json!({})).await;
        assert_error(&answer, StatusCode::FORBIDDEN, code);
    }
    let farmer = master.post(&format!("/api/master/admins/{}/password", t.user_ids[0]), json!({})).await;
    assert_error(&farmer, StatusCode::NOT_FOUND, "NOT_FOUND");
    assert_eq!(t.users[0].get("/api/wallet").await.0, StatusCode::OK);
    app.login("rahim", password).await;
}
