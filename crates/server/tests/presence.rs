//! A returning fleet comes online at its server in as few flushes as its telemetry takes: each
//! device joins (`Store::record_presence`) in the same flush that writes its first telemetry, many
//! a flush, on a shared store (SecantusDB, started by the test) and a manual clock.

mod support;

use std::sync::Arc;

use pumppilot_engine::{AdminId, DeviceId, DeviceLink, DevicePoll, Tenant, Timestamp, UserId};
use pumppilot_server::{
    clock::{Clock, ManualClock},
    runtime::Runtime,
};
use pumppilot_store::{Device, Role, Snapshot, Store, Telemetry};
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
    // Every pump's device was online at another server a moment ago (its last poll is `now`),
    // its telemetry never written.
    let pumps = provision(store.as_ref(), clock.now(), false).await;
    let server = Runtime::new(Arc::clone(&store), clock.clone(), LEASE_MS, 5_000);
    server.start().await.unwrap();
    assert!(server.is_shared());
    until("the feed is live", || async { server.is_fresh() }).await;
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
    until("the feed is live", || async { server.is_fresh() }).await;
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

/// `DEVICES` pumps, each driven by its device, online at another server a moment before `now`
/// (the tenant's last poll); with `seen`, each device's telemetry is stored as it last reported
/// (`support::telemetry` at `now`, the relay off), else never written.
async fn provision(store: &dyn Store, now: Timestamp, seen: bool) -> Vec<(AdminId, DeviceId)> {
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
            },
            ..Tenant::new(admin, 0)
        });
        devices.push(Device {
            id: device,
            admin_id: admin,
            name: format!("pump {i}"),
            key_hash: (i as u64).to_le_bytes().repeat(4),
            created_at: now,
            telemetry: seen.then(|| telemetry(admin, device, now, false)),
        });
    }
    let pumps = devices.iter().map(|d| (d.admin_id, d.id)).collect();
    store.import(&Snapshot { accounts, tenants, ..Snapshot::default() }).await.unwrap();
    store.import(&Snapshot { devices, ..Snapshot::default() }).await.unwrap();
    pumps
}

/// A fleet returning to a restarted server reports what the store has of it already: each device
/// only joins (one tenant statement), and no device's telemetry is written, but for the one whose
/// report says something new (its grid went down). Its telemetry stays buffered, written when it
/// is let go.
#[tokio::test]
async fn a_returning_fleet_that_reports_nothing_new_only_joins() {
    let mongo = testing::fresh_store().await;
    let store: Arc<dyn Store> = Arc::new(mongo.clone());
    let clock = ManualClock::starting_now();
    let pumps = provision(store.as_ref(), clock.now(), true).await;
    let server = Runtime::new(Arc::clone(&store), clock.clone(), LEASE_MS, 5_000);
    server.start().await.unwrap();
    until("the feed is live", || async { server.is_fresh() }).await;
    clock.advance(std::time::Duration::from_secs(1));
    let polled = clock.now();
    let (_, shed_device) = pumps[7];
    for &(admin, device) in &pumps {
        let shedding = device == shed_device;
        let poll = DevicePoll { load_shedding: shedding, ..DevicePoll::ready(device) };
        let report = Telemetry { load_shedding: shedding, ..telemetry(admin, device, polled, false) };
        server.poll(admin, poll, report).await.unwrap();
    }

    let ((), written) = testing::statements_during(&mongo, async {
        server.flush_telemetry().await;
        server.flush_telemetry().await;
    })
    .await;
    assert_eq!(written.get("tenants"), Some(&DEVICES), "one join a tenant: {written:?}");
    assert_eq!(written.get("devices"), Some(&1), "only the report that says something new: {written:?}");
    assert_eq!(store.presences().await.unwrap().len(), DEVICES, "every device present after two flushes");
    let shed = store.latest_telemetry(&[shed_device]).await.unwrap();
    assert_eq!((shed[0].load_shedding, shed[0].last_seen_at), (true, polled), "the news is written");
    assert!(server.pending_telemetry(shed_device).is_none());
    let (admin, quiet) = pumps[8];
    assert!(server.pending_telemetry(quiet).is_some(), "a quiet device's telemetry waits");
    let stored = store.load_tenant(admin, i64::from(LEASE_MS)).await.unwrap().unwrap();
    assert_eq!(stored.device.last_poll_at, Some(polled), "its poll is stored with its join");
}
