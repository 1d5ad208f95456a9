//! What a farmer's Start asks of a shared store (MongoDB wire: SecantusDB, started by the test)
//! on its way from the request to the device told ON, on a server that has not seen the farmer's
//! session yet (the fleet bench's Starts, a farmer's first Start after a restart): every command
//! the store's driver sends is written down by a command monitor, each a round trip.

mod common;

use std::sync::Arc;

use common::spawn_app_with;
use pumppilot_store::Store;
use serde_json::json;

/// One round trip for the sign-in check (the session with the farmer's account and the pump
/// owner's, in one aggregation) and two for the Start's commit (its writes in one `bulkWrite`,
/// and the commit). There were nine: the session, then the farmer's account, then the owner's
/// (two collections at once each); the tenant's update, the entry's, a read of the stored line,
/// the RUN_STARTED notice and its outbox item, the commit.
#[tokio::test]
async fn a_start_costs_three_round_trips_to_the_store() {
    let (store, commands) = pumppilot_store_mongodb::testing::fresh_store_counted().await;
    let store: Arc<dyn Store> = Arc::new(store);
    let app = spawn_app_with(move |_| store).await;
    let tenant = app.tenant("rahim", 1, 60).await;
    let answer = tenant.device.poll(false, true).await;
    assert_eq!(answer["motor"], "OFF", "{answer}");
    // A server new to the farmer: nothing of the session or the accounts in its memory.
    app.running.app.sessions.forget_all();
    commands.take();

    let (status, body) = tenant.users[0].post("/api/motor/start", json!({})).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    assert_eq!(body["status"], "RUNNING", "{body}");
    // What the server's own watchers ask meanwhile (its change feed's next batch) is not the Start's.
    let start: Vec<String> = commands.take().into_iter().filter(|c| !c.starts_with("getMore")).collect();
    assert_eq!(start, ["aggregate web_sessions", "bulkWrite", "commitTransaction"]);

    let answer = tenant.device.poll(false, true).await;
    assert_eq!(answer["motor"], "ON", "the device is told ON: {answer}");
    app.shutdown().await;
}
