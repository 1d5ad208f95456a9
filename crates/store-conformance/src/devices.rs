//! Devices: registration, telemetry that only moves forward, key rotation.

use pumppilot_engine::{AdminId, DeviceId, DevicePoll, Event, ReaderState, ResetReason, Timestamp};
use pumppilot_store::{Device, DeviceKey, Store, StoreError, Telemetry};

use crate::support::{Driver, assert_err, at, load, tenancy};

fn device(admin: AdminId, name: &str, key_hash: &[u8], created_at: Timestamp) -> Device {
    Device {
        id: DeviceId::new(),
        admin_id: admin,
        name: name.to_owned(),
        key_hash: key_hash.to_vec(),
        created_at,
        telemetry: None,
    }
}

fn telemetry(device: &Device, last_seen_at: Timestamp, load_shedding: bool) -> Telemetry {
    Telemetry {
        device_id: device.id,
        admin_id: device.admin_id,
        last_seen_at,
        load_shedding,
        ready: true,
        relay: !load_shedding,
        firmware: Some("1.4.2".to_owned()),
        uptime_ms: Some(5_000 + last_seen_at.millis().unsigned_abs() % 1_000_000),
        rssi: Some(-67),
        last_reset: None,
        last_reset_at: None,
        reader: None,
        feedback: None,
    }
}

/// Devices list by tenant; telemetry is batched and only moves forward (for the device and the
/// tenant's last poll) without touching the tenant's version; keys rotate within the tenant.
pub async fn devices_telemetry_and_key_rotation(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 0).await;
    let q = tenancy(store, "q", 0).await;
    let mut d1 = device(rahim.admin, "well 1", b"key-1", at(0));
    let mut d2 = device(rahim.admin, "well 2", b"key-2", at(1));
    let d3 = device(q.admin, "q's well", b"key-3", at(2));
    for new in [&d1, &d2, &d3] {
        store.create_device(new).await.expect("create device");
    }
    assert_eq!(store.devices(rahim.admin).await.unwrap(), [d1.clone(), d2.clone()]);
    assert_eq!(store.devices(q.admin).await.unwrap(), std::slice::from_ref(&d3));
    let copy = device(rahim.admin, "copy", b"key-1", at(3));
    assert_err!(store.create_device(&copy).await, StoreError::Invariant(_));
    assert_eq!(store.devices(rahim.admin).await.unwrap().len(), 2, "key hashes are unique");

    let first = telemetry(&d1, at(10), true);
    store.record_telemetry(std::slice::from_ref(&first)).await.expect("telemetry");
    d1.telemetry = Some(first.clone());
    assert_eq!(store.devices(rahim.admin).await.unwrap(), [d1.clone(), d2.clone()]);
    let tenant = load(store, rahim.admin).await;
    assert_eq!((tenant.device.last_poll_at, tenant.version), (Some(at(10)), 0), "a last poll is not a transition");

    // A late report (older than the stored one) changes nothing.
    store.record_telemetry(&[telemetry(&d1, at(5), false)]).await.expect("late telemetry");
    assert_eq!(store.devices(rahim.admin).await.unwrap()[0].telemetry, Some(first));
    assert_eq!(load(store, rahim.admin).await.device.last_poll_at, Some(at(10)));

    let batch = [telemetry(&d1, at(20), false), telemetry(&d2, at(15), false)];
    store.record_telemetry(&batch).await.expect("batch");
    d1.telemetry = Some(batch[0].clone());
    d2.telemetry = Some(batch[1].clone());
    assert_eq!(store.devices(rahim.admin).await.unwrap(), [d1.clone(), d2.clone()]);
    assert_eq!(load(store, rahim.admin).await.device.last_poll_at, Some(at(20)), "the latest of the batch");

    // A report naming the wrong tenant reaches nothing.
    let mut crossed = telemetry(&d3, at(30), false);
    crossed.admin_id = rahim.admin;
    store.record_telemetry(&[crossed]).await.expect("crossed telemetry");
    assert_eq!(store.devices(q.admin).await.unwrap(), std::slice::from_ref(&d3));
    assert_eq!(load(store, rahim.admin).await.device.last_poll_at, Some(at(20)));
    assert_eq!(load(store, q.admin).await.device.last_poll_at, None);
    store.record_telemetry(&[]).await.expect("an empty batch");

    store.set_device_key(rahim.admin, d1.id, b"key-1b").await.expect("rotate");
    d1.key_hash = b"key-1b".to_vec();
    assert_eq!(store.devices(rahim.admin).await.unwrap(), [d1.clone(), d2.clone()]);
    assert_err!(store.set_device_key(q.admin, d1.id, b"stolen").await, StoreError::NotFound);
    assert_err!(store.set_device_key(rahim.admin, DeviceId::new(), b"nowhere").await, StoreError::NotFound);
    assert_err!(store.set_device_key(rahim.admin, d1.id, b"key-2").await, StoreError::Invariant(_));
    assert_eq!(store.devices(rahim.admin).await.unwrap(), [d1, d2]);
    assert_eq!(store.devices(q.admin).await.unwrap(), [d3]);
}

/// What a board says of itself (why it last started and when, its reader, its feedback input)
/// round-trips; a report without a reset reason keeps the stored one.
pub async fn devices_report_reset_reader_and_feedback(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 0).await;
    let mut d1 = device(rahim.admin, "well 1", b"key-1", at(0));
    store.create_device(&d1).await.expect("create device");
    let booted = Telemetry {
        last_reset: Some(ResetReason::BrownOut),
        last_reset_at: Some(at(8)),
        reader: Some(ReaderState::Absent),
        feedback: Some(false),
        ..telemetry(&d1, at(10), false)
    };
    store.record_telemetry(std::slice::from_ref(&booted)).await.expect("telemetry");
    d1.telemetry = Some(booted.clone());
    assert_eq!(store.devices(rahim.admin).await.unwrap(), [d1.clone()]);

    let later = Telemetry { reader: Some(ReaderState::Ok), feedback: Some(true), ..telemetry(&d1, at(20), false) };
    store.record_telemetry(std::slice::from_ref(&later)).await.expect("telemetry");
    let stored = store.devices(rahim.admin).await.unwrap().remove(0).telemetry.expect("telemetry");
    assert_eq!((stored.last_reset, stored.last_reset_at), (Some(ResetReason::BrownOut), Some(at(8))), "kept");
    assert_eq!((stored.reader, stored.feedback, stored.last_seen_at), (Some(ReaderState::Ok), Some(true), at(20)));

    for reason in
        [ResetReason::PowerOn, ResetReason::Watchdog, ResetReason::Panic, ResetReason::Software, ResetReason::Other]
    {
        let again =
            Telemetry { last_reset: Some(reason), last_reset_at: Some(at(29)), ..telemetry(&d1, at(30), false) };
        store.record_telemetry(std::slice::from_ref(&again)).await.expect("telemetry");
        let stored = store.devices(rahim.admin).await.unwrap().remove(0).telemetry.expect("telemetry");
        assert_eq!((stored.last_reset, stored.last_reset_at), (Some(reason), Some(at(29))));
    }
}

/// Once a tenant has a controller, another device's telemetry no longer moves the tenant's last
/// poll (its lease); a retired device is gone with its key, and only its own tenant can retire it.
pub async fn only_the_controller_keeps_the_lease_and_devices_retire(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 0).await;
    let q = tenancy(store, "q", 0).await;
    let d1 = device(rahim.admin, "pump board", b"key-1", at(0));
    let d2 = device(rahim.admin, "spare board", b"key-2", at(1));
    for new in [&d1, &d2] {
        store.create_device(new).await.expect("create device");
    }
    let mut pump = Driver::load(store, rahim.admin).await;
    let poll = DevicePoll::ready(d1.id);
    pump.step(Event::Poll(poll), at(10)).await;
    assert_eq!(load(store, rahim.admin).await.controller, Some(d1.id), "the first device to poll drives the pump");

    store.record_telemetry(&[telemetry(&d2, at(50), false)]).await.expect("spare telemetry");
    assert_eq!(load(store, rahim.admin).await.device.last_poll_at, Some(at(10)), "a spare keeps no lease");
    store.record_telemetry(&[telemetry(&d1, at(40), false)]).await.expect("controller telemetry");
    assert_eq!(load(store, rahim.admin).await.device.last_poll_at, Some(at(40)));

    // A quiet poll's lease alone: the tenant's last poll moves, the device's telemetry does not.
    let before = store.devices(rahim.admin).await.unwrap();
    let version = load(store, rahim.admin).await.version;
    store.record_last_polls(&[(rahim.admin, d2.id, at(70))]).await.expect("spare poll");
    assert_eq!(load(store, rahim.admin).await.device.last_poll_at, Some(at(40)), "a spare keeps no lease");
    let polls = [(rahim.admin, d1.id, at(60)), (rahim.admin, d1.id, at(55)), (q.admin, d1.id, at(90))];
    store.record_last_polls(&polls).await.expect("controller polls");
    let tenant = load(store, rahim.admin).await;
    assert_eq!((tenant.device.last_poll_at, tenant.version), (Some(at(60)), version), "forward only, not a transition");
    assert_eq!(load(store, q.admin).await.device.last_poll_at, None, "another tenant's device moves nothing");
    store.record_last_polls(&[(rahim.admin, DeviceId::new(), at(80))]).await.expect("an unknown device");
    store.record_last_polls(&[(rahim.admin, d1.id, at(50))]).await.expect("an older poll");
    store.record_last_polls(&[]).await.expect("none");
    assert_eq!(load(store, rahim.admin).await.device.last_poll_at, Some(at(60)));
    assert_eq!(store.devices(rahim.admin).await.unwrap(), before, "no telemetry written");

    assert_err!(store.delete_device(q.admin, d2.id).await, StoreError::NotFound);
    assert_err!(store.delete_device(rahim.admin, DeviceId::new()).await, StoreError::NotFound);
    store.delete_device(rahim.admin, d2.id).await.expect("retire");
    let left = store.devices(rahim.admin).await.unwrap();
    assert_eq!(left.iter().map(|d| d.id).collect::<Vec<_>>(), [d1.id]);
    assert_err!(store.delete_device(rahim.admin, d2.id).await, StoreError::NotFound);
    // Its key hash is free again (it was the only record of it).
    store.create_device(&device(rahim.admin, "new board", b"key-2", at(60))).await.expect("the key hash is free");
}

/// The write probe succeeds on a healthy store and leaves no tenant changed.
pub async fn the_write_probe_succeeds_and_changes_nothing(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 0).await;
    let before = load(store, rahim.admin).await;
    store.probe_write().await.expect("probe");
    store.probe_write().await.expect("probe again");
    assert_eq!(load(store, rahim.admin).await, before);
}

/// A device's link counters are reserved in windows: each reservation starts at the stored
/// floor and moves it up (to the counter asked for, when that is higher), so two windows never
/// share a counter, however many servers reserve at once; the floor is the store's, kept per
/// device and tenant, and survives (a server that restarts starts above it).
pub async fn link_counter_windows_never_overlap(store: &dyn Store) {
    use pumppilot_store::CounterWindow;
    let rahim = tenancy(store, "rahim", 0).await;
    let q = tenancy(store, "q", 0).await;
    let well = device(rahim.admin, "well", b"key-1", at(0));
    let other = device(rahim.admin, "other", b"key-2", at(1));
    for new in [&well, &other] {
        store.create_device(new).await.expect("create device");
    }
    assert_eq!(store.device_counters(None).await.unwrap(), [], "no device has signed yet");
    let reserve = |at_least, block| async move {
        store.reserve_device_counters(rahim.admin, well.id, at_least, block).await.map(|reserved| reserved.window)
    };
    let first = store.reserve_device_counters(rahim.admin, well.id, 1, 1000).await.unwrap();
    assert_eq!(first.stored, None, "the device has not reported yet");
    let first = first.window;
    assert_eq!(first, CounterWindow { after: 0, through: 1000 });
    assert!(first.holds(1) && first.holds(1000) && !first.holds(0) && !first.holds(1001));
    assert_eq!(reserve(1, 1000).await.unwrap(), CounterWindow { after: 1000, through: 2000 }, "the next one above");
    assert_eq!(
        reserve(5000, 1000).await.unwrap(),
        CounterWindow { after: 2000, through: 5999 },
        "up to the counter asked for and a block beyond"
    );
    assert_eq!(
        reserve(10, 1).await.unwrap(),
        CounterWindow { after: 5999, through: 6000 },
        "a counter below the floor gets a window above it"
    );
    assert_eq!(reserve(7000, 0).await.unwrap(), CounterWindow { after: 6000, through: 7000 }, "a block is at least 1");
    let largest = i64::MAX as u64;
    assert_eq!(
        reserve(largest, 1).await.unwrap(),
        CounterWindow { after: 7000, through: largest },
        "the largest counter"
    );
    assert_err!(reserve(largest, 1).await, StoreError::Invariant(_));
    assert_eq!(
        store.device_counters(Some(rahim.admin)).await.unwrap(),
        [(well.id, largest)],
        "a failed reservation moves nothing"
    );
    // Another device and another tenant have counters of their own.
    assert_eq!(
        store.reserve_device_counters(rahim.admin, other.id, 1, 10).await.unwrap().window,
        CounterWindow { after: 0, through: 10 }
    );
    assert_err!(store.reserve_device_counters(q.admin, well.id, 1, 10).await, StoreError::NotFound);
    assert_err!(store.reserve_device_counters(rahim.admin, DeviceId::new(), 1, 10).await, StoreError::NotFound);
    let mut counters = store.device_counters(Some(rahim.admin)).await.unwrap();
    counters.sort();
    let mut expected = vec![(well.id, largest), (other.id, 10)];
    expected.sort();
    assert_eq!(counters, expected);
    assert_eq!(store.device_counters(Some(q.admin)).await.unwrap(), []);

    // Many servers reserving at once: the windows tile the counters, none shared, none lost.
    let fresh = device(rahim.admin, "fresh", b"key-3", at(2));
    store.create_device(&fresh).await.expect("create device");
    let server = |block: u64| async move {
        let mut windows = Vec::new();
        for _ in 0..10 {
            windows.push(store.reserve_device_counters(rahim.admin, fresh.id, 1, block).await.expect("reserve").window);
        }
        windows
    };
    let (a, b, c, d) = tokio::join!(server(3), server(5), server(7), server(11));
    let mut windows: Vec<CounterWindow> = [a, b, c, d].concat();
    windows.sort_by_key(|w| w.after);
    let mut floor = 0;
    for window in &windows {
        assert_eq!(window.after, floor, "each window starts where the one before ended: {windows:?}");
        assert!(window.through > window.after);
        floor = window.through;
    }
    assert_eq!(floor, 10 * (3 + 5 + 7 + 11));
    assert_eq!(
        store.reserve_device_counters(rahim.admin, fresh.id, 1, 1).await.unwrap().window,
        CounterWindow { after: floor, through: floor + 1 },
        "the floor is the store's"
    );
}

/// A reservation reads the device's report as stored with its floor: the server taking the device
/// over compares the device's next report with it (`Reserved::stored`). Every field comes back as
/// the device list has it, a reset said once included.
pub async fn a_reservation_reads_the_stored_report(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 0).await;
    let well = device(rahim.admin, "well", b"key-1", at(0));
    store.create_device(&well).await.expect("create device");
    let booted = Telemetry {
        firmware: Some("1.4.0".into()),
        uptime_ms: Some(1_500),
        rssi: Some(-71),
        last_reset: Some(ResetReason::PowerOn),
        last_reset_at: Some(at(8)),
        reader: Some(ReaderState::Ok),
        feedback: Some(false),
        ..Telemetry::ready(rahim.admin, well.id, at(10))
    };
    store.record_telemetry(std::slice::from_ref(&booted)).await.unwrap();
    let later = Telemetry {
        last_seen_at: at(20),
        uptime_ms: Some(11_500),
        last_reset: None,
        last_reset_at: None,
        ..booted.clone()
    };
    store.record_telemetry(std::slice::from_ref(&later)).await.unwrap();
    let listed = store.devices(rahim.admin).await.unwrap().pop().and_then(|d| d.telemetry);
    let reserved = store.reserve_device_counters(rahim.admin, well.id, 1, 10).await.unwrap();
    assert_eq!(reserved.stored, listed, "as the device list has it");
    let stored = reserved.stored.expect("a report is stored");
    assert_eq!((stored.last_seen_at, stored.uptime_ms), (at(20), Some(11_500)));
    assert_eq!(stored.last_reset, Some(ResetReason::PowerOn), "the reset said once is kept");
    assert_eq!(store.reserve_device_counters(rahim.admin, well.id, 1, 10).await.unwrap().window.after, 10);
}

/// Firmware releases: kept with their bytes, listed newest first without them, one per version,
/// the bytes exactly their size, the rollout set per release (and only for one that exists).
pub async fn firmware_releases_keep_their_bytes_and_rollout(store: &dyn Store) {
    use pumppilot_store::{FirmwareRelease, Rollout};
    let rahim = tenancy(store, "rahim", 0).await;
    let release = |version: &str, size: u32, at_ms: i64| FirmwareRelease {
        version: version.to_owned(),
        size,
        sha256: [size as u8; 32],
        signature: [7; 64],
        published_at: at(at_ms),
        rollout: Rollout::default(),
    };
    assert_eq!(store.firmware_releases().await.unwrap(), []);
    let old = release("1.4.0", 3, 10);
    let new = release("1.5.0", 5, 20);
    store.put_firmware(&old, &[1, 2, 3]).await.expect("publish");
    store.put_firmware(&new, &[9; 5]).await.expect("publish");
    assert_eq!(store.firmware_releases().await.unwrap(), [new.clone(), old.clone()], "newest first");
    assert_eq!(store.firmware_bytes("1.4.0").await.unwrap().as_deref(), Some(&[1u8, 2, 3][..]));
    assert_eq!(store.firmware_bytes("9.9.9").await.unwrap(), None);
    assert_err!(store.put_firmware(&release("1.5.0", 1, 30), &[0]).await, StoreError::Invariant(_));
    assert_err!(store.put_firmware(&release("2.0.0", 4, 40), &[0; 3]).await, StoreError::Invariant(_));
    assert_eq!(store.firmware_releases().await.unwrap().len(), 2, "nothing of a refused release is kept");

    let first = Rollout { percent: 0, tenant: Some(rahim.admin) };
    store.set_firmware_rollout("1.5.0", first).await.expect("rollout");
    let half = Rollout { percent: 50, tenant: None };
    store.set_firmware_rollout("1.4.0", half).await.expect("rollout");
    let listed = store.firmware_releases().await.unwrap();
    assert_eq!((listed[0].rollout, listed[1].rollout), (first, half));
    assert_err!(store.set_firmware_rollout("9.9.9", half).await, StoreError::NotFound);
}

/// A device's download record, as every server on the store writes and reads it: one per device;
/// for its version the furthest range and the latest time win whatever order two servers write
/// in; another version replaces it unless the stored record is newer; a tenant reads its own
/// devices' only; the purge drops the records last written before a moment.
pub async fn firmware_downloads_move_forward_and_are_purged(store: &dyn Store) {
    use pumppilot_engine::DeviceId;
    use pumppilot_store::FirmwareDownload;
    let rahim = tenancy(store, "rahim", 0).await;
    let karim = tenancy(store, "karim", 0).await;
    let (well, spare, other) = (DeviceId::new(), DeviceId::new(), DeviceId::new());
    let record = |device, admin, version: &str, received, when| FirmwareDownload {
        device,
        admin,
        version: version.to_owned(),
        received,
        size: 40_000,
        at: at(when),
    };
    let of = |admin| async move {
        let mut list = store.firmware_downloads(admin).await.unwrap();
        list.sort_by_key(|d| d.device.to_string());
        list
    };
    assert_eq!(of(rahim.admin).await, []);
    store.record_firmware_download(&record(well, rahim.admin, "2.0.0", 16_384, 10)).await.unwrap();
    // Server B wrote a further range first; server A's older one arrives after it.
    store.record_firmware_download(&record(well, rahim.admin, "2.0.0", 32_768, 12)).await.unwrap();
    store.record_firmware_download(&record(well, rahim.admin, "2.0.0", 16_384, 11)).await.unwrap();
    store.record_firmware_download(&record(other, karim.admin, "2.0.0", 40_000, 13)).await.unwrap();
    assert_eq!(of(rahim.admin).await, [record(well, rahim.admin, "2.0.0", 32_768, 12)], "forward only, own only");
    assert_eq!(of(karim.admin).await, [record(other, karim.admin, "2.0.0", 40_000, 13)]);
    // A newer version replaces the record; a late write of the old one does not bring it back.
    store.record_firmware_download(&record(well, rahim.admin, "2.1.0", 100, 20)).await.unwrap();
    store.record_firmware_download(&record(well, rahim.admin, "2.0.0", 40_000, 19)).await.unwrap();
    assert_eq!(of(rahim.admin).await, [record(well, rahim.admin, "2.1.0", 100, 20)]);
    store.record_firmware_download(&record(spare, rahim.admin, "2.1.0", 0, 30)).await.unwrap();
    let mut both = vec![record(well, rahim.admin, "2.1.0", 100, 20), record(spare, rahim.admin, "2.1.0", 0, 30)];
    both.sort_by_key(|d| d.device.to_string());
    assert_eq!(of(rahim.admin).await, both);
    // The purge drops what was last written before the moment, and nothing else.
    assert_eq!(store.purge_firmware_downloads(at(20)).await.unwrap(), 1, "karim's, last written at 13");
    assert_eq!(of(rahim.admin).await, both);
    assert_eq!(store.purge_firmware_downloads(at(31)).await.unwrap(), 2);
    assert_eq!((of(rahim.admin).await, of(karim.admin).await), (vec![], vec![]));
}

/// A server vouches for the controllers polling it instead of writing each quiet poll: a join
/// names the server and the device on the tenant (only the controller's, only a device of that
/// tenant), a leave clears it only where it still names that server and device, both move the
/// last poll forward only and neither is a transition; a commit keeps the presence.
pub async fn controllers_are_present_at_the_server_they_poll(store: &dyn Store) {
    use pumppilot_store::Presence;
    let rahim = tenancy(store, "rahim", 1).await;
    let q = tenancy(store, "q", 0).await;
    let d1 = device(rahim.admin, "pump board", b"key-1", at(0));
    let d2 = device(rahim.admin, "spare board", b"key-2", at(1));
    for new in [&d1, &d2] {
        store.create_device(new).await.expect("create device");
    }
    let mut pump = Driver::load(store, rahim.admin).await;
    let poll = DevicePoll::ready(d1.id);
    pump.step(Event::Poll(poll), at(10)).await;
    let version = load(store, rahim.admin).await.version;
    let present = |server: &str| Presence { admin: rahim.admin, device: d1.id, server: server.to_owned() };

    store.record_presence("a", &[], &[]).await.expect("nothing");
    // A spare, a device of another tenant and an unknown device join nothing.
    let strays = [(rahim.admin, d2.id, at(30)), (q.admin, d1.id, at(30)), (rahim.admin, DeviceId::new(), at(30))];
    store.record_presence("a", &strays, &[]).await.expect("strays");
    assert_eq!(store.presences().await.unwrap(), []);
    assert_eq!(load(store, rahim.admin).await.device.last_poll_at, Some(at(10)));

    store.record_presence("a", &[(rahim.admin, d1.id, at(20))], &[]).await.expect("join");
    assert_eq!(store.presences().await.unwrap(), [present("a")]);
    let tenant = load(store, rahim.admin).await;
    assert_eq!((tenant.device.last_poll_at, tenant.version), (Some(at(20)), version), "forward, not a transition");

    // The device moved on to server b; a's late leave clears nothing but still moves the poll on.
    store.record_presence("b", &[(rahim.admin, d1.id, at(25))], &[]).await.expect("join b");
    store.record_presence("a", &[], &[(rahim.admin, d1.id, at(22))]).await.expect("a lets go");
    assert_eq!(store.presences().await.unwrap(), [present("b")]);
    assert_eq!(load(store, rahim.admin).await.device.last_poll_at, Some(at(25)), "never backwards");

    // A commit (a credit) keeps it.
    let mut pump = Driver::load(store, rahim.admin).await;
    pump.step(crate::support::recharge(rahim.admin, rahim.users[0], 600), at(26)).await;
    assert_eq!(store.presences().await.unwrap(), [present("b")], "a commit keeps the presence");

    store.record_presence("b", &[], &[(rahim.admin, d1.id, at(40))]).await.expect("b lets go");
    assert_eq!(store.presences().await.unwrap(), []);
    let tenant = load(store, rahim.admin).await;
    assert_eq!(tenant.device.last_poll_at, Some(at(40)), "a leave writes the last poll");
}

/// Devices arriving at a server, in one call: every device's telemetry written, every tenant's
/// last poll moved forward to its controller's latest report (or any device's, before there is
/// a controller), and the controllers that join present at that server, with no version moved;
/// a spare, a device named with another tenant and an unknown device join nothing and move
/// nothing. A late arrival moves no time back, and its join names the server it arrived at.
pub async fn arriving_devices_are_written_and_joined_in_one_call(store: &dyn Store) {
    use pumppilot_store::Presence;
    let rahim = tenancy(store, "rahim", 1).await;
    let q = tenancy(store, "q", 0).await;
    let karim = tenancy(store, "karim", 0).await;
    let mut d1 = device(rahim.admin, "pump board", b"key-1", at(0));
    let mut d2 = device(rahim.admin, "spare board", b"key-2", at(1));
    let mut d3 = device(q.admin, "q's well", b"key-3", at(2));
    let mut d4 = device(karim.admin, "karim's well", b"key-4", at(3));
    for new in [&d1, &d2, &d3, &d4] {
        store.create_device(new).await.expect("create device");
    }
    let mut pump = Driver::load(store, rahim.admin).await;
    pump.step(Event::Poll(DevicePoll::ready(d1.id)), at(10)).await;
    let versions = [load(store, rahim.admin).await.version, load(store, q.admin).await.version];
    let present =
        |admin: AdminId, device: DeviceId, server: &str| Presence { admin, device, server: server.to_owned() };
    let presences = || async {
        let mut all = store.presences().await.unwrap();
        all.sort_by_key(|p| p.device.to_string());
        all
    };

    store.record_arrivals("a", &[], &[]).await.expect("nobody");
    let batch = [
        telemetry(&d1, at(20), false),
        telemetry(&d2, at(30), true),
        telemetry(&d3, at(25), false),
        telemetry(&d4, at(22), false),
    ];
    let joining = [
        (rahim.admin, d1.id, at(20)),
        (karim.admin, d4.id, at(22)),
        (rahim.admin, d2.id, at(30)),
        (q.admin, d1.id, at(40)),
        (rahim.admin, DeviceId::new(), at(40)),
    ];
    store.record_arrivals("a", &batch, &joining).await.expect("arrivals");
    for (device, telemetry) in [&mut d1, &mut d2, &mut d3, &mut d4].into_iter().zip(&batch) {
        device.telemetry = Some(telemetry.clone());
    }
    assert_eq!(store.devices(rahim.admin).await.unwrap(), [d1.clone(), d2.clone()]);
    assert_eq!(store.devices(q.admin).await.unwrap(), [d3.clone()]);
    assert_eq!(store.devices(karim.admin).await.unwrap(), [d4.clone()]);
    let mut expected = vec![present(rahim.admin, d1.id, "a"), present(karim.admin, d4.id, "a")];
    expected.sort_by_key(|p| p.device.to_string());
    assert_eq!(presences().await, expected);
    let (rahim_now, q_now) = (load(store, rahim.admin).await, load(store, q.admin).await);
    assert_eq!(
        (rahim_now.device.last_poll_at, rahim_now.version),
        (Some(at(20)), versions[0]),
        "the controller's report, not the spare's; not a transition"
    );
    assert_eq!(
        (q_now.device.last_poll_at, q_now.version),
        (Some(at(25)), versions[1]),
        "no controller yet: any device"
    );
    assert_eq!(load(store, karim.admin).await.device.last_poll_at, Some(at(22)));

    // A late arrival at server b: its join names b, its report and time move nothing back.
    store.record_arrivals("b", &[telemetry(&d1, at(15), true)], &[(rahim.admin, d1.id, at(15))]).await.expect("late");
    assert_eq!(store.devices(rahim.admin).await.unwrap(), [d1.clone(), d2], "a late report changes nothing");
    let mut expected = vec![present(rahim.admin, d1.id, "b"), present(karim.admin, d4.id, "a")];
    expected.sort_by_key(|p| p.device.to_string());
    assert_eq!(presences().await, expected);
    assert_eq!(load(store, rahim.admin).await.device.last_poll_at, Some(at(20)), "never backwards");
}

/// A fleet comes online at once: many tenants' devices report their first inputs and reserve
/// their first counter windows at the same moment (a backend may write them together). Each
/// still gets exactly its own answer: a commit from a moved version is a conflict and writes
/// nothing, one of an unknown tenant is not found, one that leaves a stored run out is refused,
/// the others land with their version; every device's windows tile its counters, none shared.
pub async fn a_fleet_coming_online_at_once_gets_each_answer_exact(store: &dyn Store) {
    use pumppilot_engine::{EntryId, Records, Tenant, UserId};
    use pumppilot_store::{Commit, CounterWindow};

    const PUMPS: usize = 24;
    let mut tenants = Vec::new();
    let mut devices = Vec::new();
    for n in 0..PUMPS {
        let owner = tenancy(store, &format!("owner-{n}"), 1).await;
        let pump = device(owner.admin, "well", format!("key-{n}").as_bytes(), at(0));
        store.create_device(&pump).await.expect("create device");
        devices.push(pump);
        tenants.push(owner);
    }
    // Pumps 0..4 were moved on by another server since they were read; pump 5 has a run stored
    // that its state leaves out.
    let mut states: Vec<Tenant> = Vec::new();
    for (n, owner) in tenants.iter().enumerate() {
        let read = load(store, owner.admin).await;
        if n < 4 {
            let mut other = Driver::load(store, owner.admin).await;
            other.step(Event::DeviceReport { load_shedding: true, ready: true, relay: false }, at(1)).await;
        }
        if n == 5 {
            let mut other = Driver::load(store, owner.admin).await;
            other.step(crate::support::recharge(owner.admin, owner.users[0], 600), at(1)).await;
            other.step(crate::support::all_good(), at(1)).await;
            let start = Event::Start { user: owner.users[0], requested_minutes: None, entry_id: EntryId::new() };
            other.step(start, at(2)).await;
            let mut left_out = other.tenant.clone();
            left_out.active = None;
            states.push(left_out);
            continue;
        }
        states.push(read);
    }
    let stored_before: Vec<Tenant> = {
        let mut all = Vec::new();
        for owner in &tenants {
            all.push(load(store, owner.admin).await);
        }
        all
    };
    let mut records = Vec::new();
    for (n, state) in states.iter_mut().enumerate() {
        let poll = DevicePoll::ready(devices[n].id);
        let outcome = state.apply(Event::Poll(poll), at(10));
        let mut outcome_records = outcome.records;
        outcome_records.changed = true;
        records.push(outcome_records);
    }
    let unknown = Tenant::new(AdminId(UserId::new()), crate::support::LEASE_MS);
    let nothing = Records { changed: true, ..Records::default() };
    let commits = states
        .iter()
        .zip(&records)
        .map(|(tenant, records)| Commit {
            tenant,
            records,
            audit: &[],
            decision: None,
            suspension: None,
            receipt: None,
        })
        .chain([Commit {
            tenant: &unknown,
            records: &nothing,
            audit: &[],
            decision: None,
            suspension: None,
            receipt: None,
        }]);
    let answers = futures_util::future::join_all(commits.map(|commit| store.commit(commit))).await;
    for (n, answer) in answers.iter().enumerate() {
        match n {
            0..=3 => assert!(matches!(answer, Err(StoreError::VersionConflict)), "pump {n}: {answer:?}"),
            5 => assert!(matches!(answer, Err(StoreError::Invariant(_))), "pump {n}: {answer:?}"),
            PUMPS => assert!(matches!(answer, Err(StoreError::NotFound)), "the unknown tenant: {answer:?}"),
            _ => assert!(answer.is_ok(), "pump {n}: {answer:?}"),
        }
    }
    for (n, owner) in tenants.iter().enumerate() {
        let stored = load(store, owner.admin).await;
        if n < 4 || n == 5 {
            assert_eq!(stored, stored_before[n], "pump {n}: a refused commit writes nothing");
        } else {
            let mut expected = states[n].clone();
            expected.version += 1;
            assert_eq!(stored, expected, "pump {n}: online as committed, one version on");
            assert_eq!(stored.controller, Some(devices[n].id));
        }
    }

    // Two reservations per device at once, and one for a device of another tenant.
    let asks = devices
        .iter()
        .flat_map(|d| [(d.admin_id, d.id), (d.admin_id, d.id)])
        .chain([(tenants[0].admin, devices[1].id)]);
    let windows =
        futures_util::future::join_all(asks.map(|(admin, id)| store.reserve_device_counters(admin, id, 1, 1000))).await;
    assert!(matches!(windows.last(), Some(Err(StoreError::NotFound))), "another tenant's device: {windows:?}");
    for (n, pair) in windows[..2 * PUMPS].chunks(2).enumerate() {
        let mut pair: Vec<CounterWindow> = pair.iter().map(|w| w.as_ref().expect("a window").window).collect();
        pair.sort_by_key(|w| w.after);
        assert_eq!(
            pair,
            [CounterWindow { after: 0, through: 1000 }, CounterWindow { after: 1000, through: 2000 }],
            "device {n}: its windows tile its counters"
        );
    }
    let mut counters = store.device_counters(None).await.unwrap();
    counters.sort();
    let mut expected: Vec<_> = devices.iter().map(|d| (d.id, 2000)).collect();
    expected.sort();
    assert_eq!(counters, expected, "every reservation is stored, the refused one moved nothing");
}

/// Every device's current key with the device and its tenant (`device_keys`, what a server keeps
/// to know a device by its key): a rotated key replaces the old one, a retired device is gone. The
/// firmware each names in its stored report (`reported_firmware`, the fleet's count by release)
/// likewise: none before a report, the latest report's after.
pub async fn device_keys_and_firmware_are_each_devices_current_ones(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 0).await;
    let q = tenancy(store, "q", 0).await;
    let d1 = device(rahim.admin, "well 1", b"key-1", at(0));
    let d2 = device(rahim.admin, "well 2", b"key-2", at(1));
    let d3 = device(q.admin, "q's well", b"key-3", at(2));
    for new in [&d1, &d2, &d3] {
        store.create_device(new).await.expect("create device");
    }
    store.record_telemetry(&[telemetry(&d1, at(10), false)]).await.expect("telemetry");
    let sorted = |mut keys: Vec<DeviceKey>| {
        keys.sort_by_key(|key| key.device);
        keys
    };
    let expected = |devices: &[&Device]| {
        sorted(
            devices
                .iter()
                .map(|d| DeviceKey { device: d.id, admin: d.admin_id, key_hash: d.key_hash.clone() })
                .collect(),
        )
    };
    assert_eq!(sorted(store.device_keys().await.unwrap()), expected(&[&d1, &d2, &d3]));
    let firmware = || async {
        let mut reported: Vec<_> =
            store.reported_firmware().await.unwrap().into_iter().map(|r| (r.device, r.admin, r.version)).collect();
        reported.sort();
        reported
    };
    let mut named =
        vec![(d1.id, rahim.admin, Some("1.4.2".to_owned())), (d2.id, rahim.admin, None), (d3.id, q.admin, None)];
    named.sort();
    assert_eq!(firmware().await, named);
    let newer = Telemetry { firmware: Some("1.5.0".to_owned()), ..telemetry(&d3, at(20), false) };
    store.record_telemetry(&[newer]).await.expect("telemetry");

    store.set_device_key(rahim.admin, d1.id, b"key-1b").await.expect("rotate");
    store.delete_device(rahim.admin, d2.id).await.expect("retire");
    let rotated = Device { key_hash: b"key-1b".to_vec(), ..d1.clone() };
    assert_eq!(sorted(store.device_keys().await.unwrap()), expected(&[&rotated, &d3]));
    let mut named = vec![(d1.id, rahim.admin, Some("1.4.2".to_owned())), (d3.id, q.admin, Some("1.5.0".to_owned()))];
    named.sort();
    assert_eq!(firmware().await, named, "the latest report's firmware; a retired device is gone");
}

/// The tenants with a run (`tenants_with_runs`) are exactly those with a RUNNING or HOLD entry: not
/// one whose run ended, nor one that never had one. Every tenant's record (`pump_links`) says of
/// its device and grid what the tenant read alone says, since when its controller has had no
/// command although told ON included (kept and read back with the tenant, cleared when it ends).
pub async fn tenants_with_runs_and_pump_links_are_as_each_tenant_reads_alone(store: &dyn Store) {
    use std::collections::HashSet;

    use pumppilot_engine::{EntryId, EntryStatus, RelayOff, UserId};
    use pumppilot_store::PumpLink;

    use crate::support::{LEASE_MS, all_good, recharge};
    let running = tenancy(store, "running", 1).await;
    let held = tenancy(store, "held", 1).await;
    let ended = tenancy(store, "ended", 1).await;
    let quiet = tenancy(store, "quiet", 0).await;
    assert!(store.tenants_with_runs().await.unwrap().is_empty(), "no run yet");

    let mut pumps = Vec::new();
    for tenant in [&running, &held, &ended] {
        let (admin, user) = (tenant.admin, tenant.users[0]);
        let mut pump = Driver::load(store, admin).await;
        pump.step(recharge(admin, user, 600), at(0)).await;
        pump.step(all_good(), at(1)).await;
        pump.step(Event::Start { user, requested_minutes: None, entry_id: EntryId::new() }, at(2)).await;
        pumps.push(pump);
    }
    // The held pump's device falls silent: its run holds (DEVICE_OFFLINE). The ended one's stops.
    pumps[1].step(Event::Tick, at(3) + LEASE_MS).await;
    pumps[2].step(Event::Stop { user: ended.users[0] }, at(4)).await;
    assert_eq!(load(store, held.admin).await.active.map(|e| e.status), Some(EntryStatus::Hold));
    assert_eq!(load(store, running.admin).await.active.map(|e| e.status), Some(EntryStatus::Running));
    // The quiet pump's controller reports the grid down.
    let well = device(quiet.admin, "quiet well", b"quiet-key", at(0));
    store.create_device(&well).await.expect("create device");
    let mut pump = Driver::load(store, quiet.admin).await;
    pump.step(Event::Poll(DevicePoll { load_shedding: true, ..DevicePoll::ready(well.id) }), at(5)).await;
    // The running pump's controller says its relay is open for want of a command although it was
    // told ON: the run waits for it, and since when is kept (committed as the server commits it,
    // without a story's device hearing of the run by itself).
    let board = device(running.admin, "running well", b"running-key", at(0));
    store.create_device(&board).await.expect("create device");
    let no_command = DevicePoll { relay_off: Some(RelayOff::NoCommand), ..DevicePoll::ready(board.id) };
    let running_pump = &mut pumps[0];
    for second in [6, 7] {
        let records = running_pump.tenant.apply(Event::Poll(no_command), at(second)).records;
        running_pump.commit(&records, &[], None, None).await.expect("commit");
    }
    assert_eq!(running_pump.tenant.device.without_command_since, Some(at(6)));
    running_pump.assert_stored().await;

    let mut with_runs = store.tenants_with_runs().await.unwrap();
    with_runs.sort();
    let mut expected = vec![running.admin, held.admin];
    expected.sort();
    assert_eq!(with_runs, expected, "the running and the held pump, nothing else");

    let mut links = store.pump_links(None).await.unwrap();
    links.sort_by_key(|link| link.admin);
    let mut alone = Vec::new();
    for admin in [running.admin, held.admin, ended.admin, quiet.admin] {
        alone.push(PumpLink::of(&load(store, admin).await));
    }
    alone.sort_by_key(|link| link.admin);
    assert_eq!(links, alone);
    // Only those wanted; a tenant not stored is left out.
    let wanted: HashSet<AdminId> = [held.admin, quiet.admin, AdminId(UserId::new())].into();
    let mut some = store.pump_links(Some(&wanted)).await.unwrap();
    some.sort_by_key(|link| link.admin);
    let expected: Vec<PumpLink> = alone.iter().filter(|link| wanted.contains(&link.admin)).copied().collect();
    assert_eq!(some, expected, "the two stored tenants wanted");
    let running_link = links.iter().find(|link| link.admin == running.admin).expect("the running pump");
    assert_eq!(running_link.without_command_since, Some(at(6)), "since its first report without a command");
    let quiet_link = links.iter().find(|link| link.admin == quiet.admin).expect("the quiet pump");
    assert_eq!(
        (quiet_link.controller, quiet_link.last_poll_at, quiet_link.load_shedding),
        (Some(well.id), Some(at(5)), true),
        "its controller, last poll and the grid down"
    );
    // The board takes the ON at last: nothing is kept.
    let running_pump = &mut pumps[0];
    let closed = DevicePoll { relay: true, ..DevicePoll::ready(board.id) };
    let records = running_pump.tenant.apply(Event::Poll(closed), at(8)).records;
    running_pump.commit(&records, &[], None, None).await.expect("commit");
    running_pump.assert_stored().await;
    let links = store.pump_links(None).await.unwrap();
    let running_link = links.iter().find(|link| link.admin == running.admin).expect("the running pump");
    assert_eq!(running_link.without_command_since, None);
}
