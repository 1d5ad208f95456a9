//! `GET /api/events`: the tenant's state pushed at every change, to that tenant only.

mod common;

use std::time::Duration;

use common::{Events, Next, spawn_app};
use serde_json::{Value, json};

/// How long (real time) an event that must come may take: generous, for a slow machine. The
/// server's clock is manual, so nothing comes by the passing of time unless the test moves it.
const PATIENCE: Duration = Duration::from_secs(20);

#[tokio::test]
async fn every_change_of_the_tenant_is_pushed_and_nothing_of_another_tenant() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 2, 30).await;
    let q = app.tenant("qadir", 1, 30).await;
    t.device.poll(false, true).await;
    q.device.poll(false, true).await;
    let mut events = Events::open(&t.users[1]).await;
    let first = events.next(PATIENCE).await.expect("the state at once");
    assert_eq!(first["motor"]["state"], "IDLE");
    assert_eq!(first["me"]["availableSeconds"], 1800);
    assert_eq!(first["queue"]["waiting"], json!([]));

    t.users[0].ok("/api/motor/start", json!({})).await;
    let running = events.next(PATIENCE).await.expect("pushed");
    assert_eq!(running["motor"]["state"], "RUNNING");
    assert_eq!(running["queue"]["active"]["userName"], "Farmer 0");

    t.users[1].ok("/api/motor/start", json!({})).await;
    let waiting = events.next(PATIENCE).await.expect("pushed");
    assert_eq!(waiting["me"]["entry"]["status"], "WAITING");
    assert_eq!(waiting["me"]["entry"]["position"], 1);

    t.device.poll(true, true).await;
    let held = events.next(PATIENCE).await.expect("pushed");
    assert_eq!(
        (held["motor"]["state"].as_str(), held["motor"]["holdReason"].as_str()),
        (Some("HOLD"), Some("LOAD_SHEDDING"))
    );

    // Another tenant's change sends nothing here: the next event is this pump's own.
    q.users[0].ok("/api/motor/start", json!({})).await;
    t.device.poll(false, true).await;
    let resumed = events.next(PATIENCE).await.expect("pushed");
    assert_eq!(resumed["motor"]["state"], "RUNNING", "nothing from Qadir's pump came first: {resumed}");

    // Nothing changes for a while: the stream refreshes the state every REFRESH of the server's clock.
    app.until_waiting_for(15_000).await;
    app.pass_polling(Duration::from_secs(15), &t.device, false, true).await;
    let refreshed = events.next(PATIENCE).await.expect("refreshed");
    assert_eq!(refreshed["motor"]["state"], "RUNNING");
    assert_eq!(refreshed["motor"]["remainingSeconds"], resumed["motor"]["remainingSeconds"].as_i64().unwrap() - 15);

    // The first user stops: the second runs, and the stream says so by itself.
    t.users[0].ok("/api/motor/stop", json!({})).await;
    let mine = events.next(PATIENCE).await.expect("pushed");
    assert_eq!(mine["me"]["entry"]["status"], "RUNNING");
    assert_eq!(mine["motor"]["activeUserId"], t.user_ids[1]);
}

#[tokio::test]
async fn the_stream_ends_when_the_session_ends_and_needs_a_session_to_start() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 30).await;
    common::assert_error(
        &app.anonymous().get("/api/events").await,
        reqwest::StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
    );
    let mut events = Events::open(&t.users[0]).await;
    events.next(PATIENCE).await.expect("the state at once");
    let (status, _) = t.users[0].request(reqwest::Method::POST, "/api/auth/logout", None).await;
    assert!(status.is_success());
    // The next change finds the session gone and closes the stream.
    t.admin.ok("/api/admin/recharge", json!({"userId": t.user_ids[0], "minutes": 5})).await;
    assert!(matches!(events.read(PATIENCE).await, Next::Ended), "the stream ended");

    // A session that expires ends its stream at the next refresh, with no change needed.
    let user = app.login("rahim-farmer-0", common::PASSWORD).await;
    let mut events = Events::open(&user).await;
    events.next(PATIENCE).await.expect("the state at once");
    app.until_waiting_for(15_000).await;
    app.clock.advance(Duration::from_secs(12 * 3600 + 1));
    assert!(matches!(events.read(PATIENCE).await, Next::Ended), "the expired session's stream ended");
}

/// A gap in a shared store's change feed makes a server forget every session it keeps (they are
/// read again on their next use): the streams open on it go on, for sessions still live.
#[tokio::test]
async fn a_stream_outlives_the_server_forgetting_its_sessions() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 30).await;
    t.device.poll(false, true).await;
    let mut events = Events::open(&t.users[0]).await;
    events.next(PATIENCE).await.expect("the state at once");
    app.running.app.sessions.forget_all();
    // The owner's change (the farmer's own session is not used again before it comes).
    t.admin.ok("/api/admin/recharge", json!({"userId": t.user_ids[0], "minutes": 5})).await;
    let recharged = events.next(PATIENCE).await.expect("still pushed after the sessions were forgotten");
    assert_eq!(recharged["me"]["availableSeconds"], 35 * 60);
}

#[tokio::test]
async fn a_session_holds_only_a_few_streams_open_at_once() {
    let app = spawn_app().await;
    let t = app.tenant("rahim", 1, 10).await;
    let farmer = &t.users[0];
    let cap = pumppilot_server::STREAMS_PER_SESSION;
    let mut open = Vec::new();
    for _ in 0..cap {
        open.push(Events::open(farmer).await);
    }
    let one_more = || async {
        farmer
            .http
            .get(format!("{}/api/events", farmer.base))
            .bearer_auth(farmer.token.as_deref().unwrap())
            .send()
            .await
            .unwrap()
    };
    let refused = one_more().await;
    assert_eq!(refused.status(), reqwest::StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "RATE_LIMITED", "{body}");
    // Another session of the same farmer is not affected.
    let phone = app.login("rahim-farmer-0", common::PASSWORD).await;
    Events::open(&phone).await;
    // A stream closed by its client frees its place (once the server sees it gone).
    drop(open.pop());
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let answer = one_more().await;
        if answer.status() == reqwest::StatusCode::OK {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the closed stream's place was never freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
