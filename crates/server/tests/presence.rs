//! A returning fleet comes online at its server in as few flushes as its telemetry takes: each
//! device joins (`Store::record_presence`) in the same flush that writes its first telemetry, many
//! a flush, on a shared store (SecantusDB, started by the test) and a manual clock.

mod support;

use std::sync::Arc;

use pumppilot_engine::{AdminId, DeviceId, DeviceLink, DevicePoll, Tenant, UserId};
use pumppilot_server::{
    clock::{Clock, ManualClock},
    runtime::Runtime,
};
use pumppilot_store::{Device, Role, Snapshot, Store};
use pumppilot_store_mongodb::testing;
use support::{account, telemetry, until};

const LEASE_MS: u32 = 10_000;
/// More than one flush's telemetry (256 a flush), and far more than 64 joins.
const DEVICES: usize = 300;

#[tokio::test]
async fn a_returning_fleet_is_present_at_its_server_once_its_telemetry_is_written() {
    let mongo = testing::fresh_store().await;
    let store: Arc<dyn Store> = Arc::new(mongo.clone());
    let clock = ManualClock::starting_now();
    let now = clock.now();
    // Every pump's device was online at another server a moment ago (its last poll is `now`).
    let (mut accounts, mut tenants, mut devices) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..DEVICES {
        let (admin, device) = (AdminId(UserId::new()), DeviceId::new());
        accounts.push(account(admin.0, admin, Role::Admin, now));
        tenants.push(Tenant {
            controller: Some(device),
            device: DeviceLink {
                last_poll_at: Some(now),
                load_shedding: false,
                ready: true,
                relay: false,
                lease_ms: 0,
                without_command_since: None,
            },
            ..Tenant::new(admin, 0)
        });
        devices.push(Device {
            id: device,
            admin_id: admin,
            name: format!("pump {i}"),
            key_hash: (i as u64).to_le_bytes().repeat(4),
            created_at: now,
            telemetry: None,
        });
    }
    let pumps: Vec<(AdminId, DeviceId)> = devices.iter().map(|d| (d.admin_id, d.id)).collect();
    store.import(&Snapshot { accounts, tenants, ..Snapshot::default() }).await.unwrap();
    store.import(&Snapshot { devices, ..Snapshot::default() }).await.unwrap();

    let server = Runtime::new(Arc::clone(&store), clock.clone(), LEASE_MS, 5_000);
    server.start().await.unwrap();
    assert!(server.is_shared());
    until("the feed caught up", || async { server.is_fresh() }).await;
    clock.advance(std::time::Duration::from_secs(1));
    let polled = clock.now();
    for &(admin, device) in &pumps {
        server.poll(admin, DevicePoll::ready(device), telemetry(admin, device, polled, false)).await.unwrap();
    }
    assert_eq!(store.presences().await.unwrap(), [], "nothing is written before the flush");

    // Two flushes write the telemetry of all of them (256 a flush); each device joins in the flush
    // that wrote its telemetry. (At 64 joins a flush, each a flush after the telemetry, 64 joined.)
    let ((), written) = testing::statements_during(&mongo, async {
        server.flush_telemetry().await;
        server.flush_telemetry().await;
    })
    .await;
    // Each tenant is written once, its last poll with its join (twice before: with the telemetry,
    // then with the join), as SecantusDB writes one statement of a collection at a time.
    assert_eq!(written.get("tenants"), Some(&DEVICES), "tenant writes: {written:?}");
    let present = store.presences().await.unwrap();
    assert_eq!(present.len(), DEVICES, "every device present after two flushes");
    assert_eq!(server.presence_changes(), (DEVICES as u64, 0), "the joins counted (for `/metrics`)");
    assert!(present.iter().all(|p| p.server == present[0].server), "all at this one server");
    for &(admin, device) in pumps.iter().step_by(37) {
        let stored = store.load_tenant(admin, i64::from(LEASE_MS)).await.unwrap().unwrap();
        assert_eq!(stored.device.last_poll_at, Some(polled), "{device}: its poll is stored with its join");
        assert!(server.pending_telemetry(device).is_none(), "{device}: its telemetry is written");
    }
}

/// A join names this server, and its next heartbeat vouches that the device polled within two
/// thirds of a lease (`PRESENT_WITHIN`): a device whose last report is older than that when the
/// flush writes it (the flush came late) has its telemetry written but does not join.
#[tokio::test]
async fn a_report_older_than_a_heartbeat_vouches_for_is_written_without_a_join() {
    use pumppilot_server::runtime::PRESENT_WITHIN;
    let mongo = testing::fresh_store().await;
    let store: Arc<dyn Store> = Arc::new(mongo.clone());
    let clock = ManualClock::starting_now();
    let (admin, _farmer, device) = support::pump(store.as_ref(), clock.now(), 3).await;
    let server = Runtime::new(Arc::clone(&store), clock.clone(), LEASE_MS, 5_000);
    server.start().await.unwrap();
    until("the feed caught up", || async { server.is_fresh() }).await;
    let polled = clock.now();
    server.poll(admin, DevicePoll::ready(device), telemetry(admin, device, polled, false)).await.unwrap();
    let present_within = i64::from(LEASE_MS) * PRESENT_WITHIN.0 / PRESENT_WITHIN.1;
    clock.set(polled + present_within + 1);
    server.flush_telemetry().await;
    assert!(server.pending_telemetry(device).is_none(), "its telemetry is written");
    assert_eq!(store.presences().await.unwrap(), [], "no join for a report older than a beat vouches for");
    // Its next report is fresh: it joins with it.
    let again = clock.now();
    server.poll(admin, DevicePoll::ready(device), telemetry(admin, device, again, false)).await.unwrap();
    server.flush_telemetry().await;
    assert_eq!(store.presences().await.unwrap().len(), 1, "present once it polled within the window");
}
