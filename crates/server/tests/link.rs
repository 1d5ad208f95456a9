//! Counter windows of the authenticated device link (`pumppilot_server::link::CounterWindows`):
//! two servers on one store (SQLite, and SecantusDB as several processes share it) never accept
//! one counter twice, a server that restarts (a fresh set of windows) refuses every counter given
//! before, and counters inside a window cost the store nothing.

mod support;

use std::sync::Arc;

use pumppilot_engine::{AdminId, DeviceId, Timestamp, UserId};
use pumppilot_server::link::{CounterCheck, CounterWindows};
use pumppilot_store::{Device, Role, Store};
use support::account;

const BLOCK: u64 = CounterWindows::BLOCK;

async fn pump(store: &dyn Store) -> (AdminId, DeviceId) {
    let (admin, device) = (AdminId(UserId::new()), DeviceId::new());
    store.create_account(&account(admin.0, admin, Role::Admin, Timestamp(0))).await.unwrap();
    let board = Device {
        id: device,
        admin_id: admin,
        name: "well".into(),
        key_hash: device.0.as_bytes().repeat(2),
        created_at: Timestamp(0),
        telemetry: None,
    };
    store.create_device(&board).await.unwrap();
    (admin, device)
}

async fn story(store: Arc<dyn Store>) {
    let store = store.as_ref();
    let (admin, device) = pump(store).await;
    let floor = || async { store.device_counters(Some(admin)).await.unwrap().first().map_or(0, |(_, f)| *f) };
    let accepted = CounterCheck::Accepted;
    let refused = |highest| CounterCheck::Refused { highest };
    let (a, b) = (CounterWindows::default(), CounterWindows::default());

    assert_eq!(a.check(store, admin, device, 1).await.unwrap().0, accepted, "A reserves (0, {BLOCK}]");
    assert_eq!(floor().await, BLOCK);
    assert_eq!(a.check(store, admin, device, 1).await.unwrap().0, refused(1), "a replay at A");
    assert_eq!(a.check(store, admin, device, 3).await.unwrap().0, accepted);
    assert_eq!(a.check(store, admin, device, 2).await.unwrap().0, accepted, "late, inside the window");
    assert_eq!(a.check(store, admin, device, 2).await.unwrap().0, refused(3), "a late one replayed");
    for counter in 4..=500 {
        assert_eq!(a.check(store, admin, device, counter).await.unwrap().0, accepted);
    }
    assert_eq!(floor().await, BLOCK, "counters inside the window write nothing");

    // The device's requests, captured, sent to server B: refused, B's window is above A's.
    for counter in [1, 2, 500, BLOCK] {
        assert_eq!(
            b.check(store, admin, device, counter).await.unwrap().0,
            refused(BLOCK),
            "counter {counter} replayed at B"
        );
    }
    assert_eq!(floor().await, 2 * BLOCK, "B reserved ({BLOCK}, {}]", 2 * BLOCK);
    assert_eq!(b.check(store, admin, device, BLOCK + 1).await.unwrap().0, accepted, "the device continues above, at B");
    assert_eq!(b.check(store, admin, device, BLOCK + 1).await.unwrap().0, refused(BLOCK + 1));
    // A counter B accepted, replayed at A: above A's window, so A reserves anew, above B's.
    assert_eq!(
        a.check(store, admin, device, BLOCK + 1).await.unwrap().0,
        refused(2 * BLOCK),
        "B's counter replayed at A"
    );
    assert_eq!(a.check(store, admin, device, 501).await.unwrap().0, refused(2 * BLOCK), "A's old window is gone");

    // Server A restarts: a fresh set of windows over the same store.
    let restarted = CounterWindows::default();
    for counter in [1, 500, BLOCK + 1, 2 * BLOCK, 3 * BLOCK] {
        assert_eq!(
            restarted.check(store, admin, device, counter).await.unwrap().0,
            refused(3 * BLOCK),
            "counter {counter} replayed after the restart"
        );
    }
    assert_eq!(restarted.check(store, admin, device, 3 * BLOCK + 1).await.unwrap().0, accepted);
    // A device far ahead (a counter kept in flash across many windows) gets a window from there.
    let far = 10 * BLOCK;
    assert_eq!(restarted.check(store, admin, device, far).await.unwrap().0, accepted);
    assert_eq!(floor().await, far - 1 + BLOCK);
    assert_eq!(restarted.check(store, admin, device, far - 1).await.unwrap().0, accepted, "late, just below");
    assert_eq!(
        restarted.check(store, admin, device, far - 100).await.unwrap().0,
        refused(far),
        "later than the late ones may be"
    );
    assert_eq!(
        b.check(store, admin, device, far + 1).await.unwrap().0,
        refused(far - 1 + BLOCK),
        "and B is above it again"
    );
}

#[tokio::test]
async fn windows_refuse_a_replay_at_another_server_and_after_a_restart_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("link.db").display());
    let store: Arc<dyn Store> = Arc::new(pumppilot_store_sqlite::SqliteStore::open(&url).unwrap());
    story(store).await;
}

#[tokio::test]
async fn windows_refuse_a_replay_at_another_server_and_after_a_restart_on_mongodb() {
    let store: Arc<dyn Store> = Arc::new(pumppilot_store_mongodb::testing::fresh_store().await);
    story(store).await;
}

/// Many requests of one device at once, at two servers: every counter accepted at most once.
#[tokio::test]
async fn racing_servers_accept_each_counter_at_most_once() {
    let store: Arc<dyn Store> = Arc::new(pumppilot_store_mongodb::testing::fresh_store().await);
    let (admin, device) = pump(store.as_ref()).await;
    let servers = [Arc::new(CounterWindows::default()), Arc::new(CounterWindows::default())];
    let mut tasks = Vec::new();
    for (i, windows) in servers.iter().cycle().take(8).enumerate() {
        let (windows, store) = (Arc::clone(windows), Arc::clone(&store));
        tasks.push(tokio::spawn(async move {
            let mut won = Vec::new();
            for step in 0..300u64 {
                // Each task walks the same counters from another place, so they collide.
                let counter = (step + 37 * i as u64) % 300 + 1 + (step / 100) * BLOCK;
                if windows.check(store.as_ref(), admin, device, counter).await.unwrap().0 == CounterCheck::Accepted {
                    won.push(counter);
                }
            }
            won
        }));
    }
    let mut won = Vec::new();
    for task in tasks {
        won.extend(task.await.unwrap());
    }
    let total = won.len();
    won.sort_unstable();
    won.dedup();
    assert_eq!(won.len(), total, "a counter accepted twice");
    assert!(total > 0);
}
