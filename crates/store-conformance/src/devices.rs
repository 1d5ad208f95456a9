//! Devices: registration, telemetry that only moves forward, key rotation.

use pumppilot_engine::{AdminId, DeviceId, DevicePoll, Event, ReaderState, ResetReason, Timestamp};
use pumppilot_store::{Device, Store, StoreError, Telemetry};

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
    assert_eq!(store.devices(Some(rahim.admin)).await.unwrap(), [d1.clone(), d2.clone()]);
    assert_eq!(store.devices(Some(q.admin)).await.unwrap(), std::slice::from_ref(&d3));
    assert_eq!(store.devices(None).await.unwrap(), [d1.clone(), d2.clone(), d3.clone()]);
    let copy = device(rahim.admin, "copy", b"key-1", at(3));
    assert_err!(store.create_device(&copy).await, StoreError::Invariant(_));
    assert_eq!(store.devices(None).await.unwrap().len(), 3, "key hashes are unique");

    let first = telemetry(&d1, at(10), true);
    store.record_telemetry(std::slice::from_ref(&first)).await.expect("telemetry");
    d1.telemetry = Some(first.clone());
    assert_eq!(store.devices(Some(rahim.admin)).await.unwrap(), [d1.clone(), d2.clone()]);
    let tenant = load(store, rahim.admin).await;
    assert_eq!((tenant.device.last_poll_at, tenant.version), (Some(at(10)), 0), "a last poll is not a transition");

    // A late report (older than the stored one) changes nothing.
    store.record_telemetry(&[telemetry(&d1, at(5), false)]).await.expect("late telemetry");
    assert_eq!(store.devices(Some(rahim.admin)).await.unwrap()[0].telemetry, Some(first));
    assert_eq!(load(store, rahim.admin).await.device.last_poll_at, Some(at(10)));

    let batch = [telemetry(&d1, at(20), false), telemetry(&d2, at(15), false)];
    store.record_telemetry(&batch).await.expect("batch");
    d1.telemetry = Some(batch[0].clone());
    d2.telemetry = Some(batch[1].clone());
    assert_eq!(store.devices(Some(rahim.admin)).await.unwrap(), [d1.clone(), d2.clone()]);
    assert_eq!(load(store, rahim.admin).await.device.last_poll_at, Some(at(20)), "the latest of the batch");

    // A report naming the wrong tenant reaches nothing.
    let mut crossed = telemetry(&d3, at(30), false);
    crossed.admin_id = rahim.admin;
    store.record_telemetry(&[crossed]).await.expect("crossed telemetry");
    assert_eq!(store.devices(Some(q.admin)).await.unwrap(), std::slice::from_ref(&d3));
    assert_eq!(load(store, rahim.admin).await.device.last_poll_at, Some(at(20)));
    assert_eq!(load(store, q.admin).await.device.last_poll_at, None);
    store.record_telemetry(&[]).await.expect("an empty batch");

    store.set_device_key(rahim.admin, d1.id, b"key-1b").await.expect("rotate");
    d1.key_hash = b"key-1b".to_vec();
    assert_eq!(store.devices(Some(rahim.admin)).await.unwrap(), [d1.clone(), d2.clone()]);
    assert_err!(store.set_device_key(q.admin, d1.id, b"stolen").await, StoreError::NotFound);
    assert_err!(store.set_device_key(rahim.admin, DeviceId::new(), b"nowhere").await, StoreError::NotFound);
    assert_err!(store.set_device_key(rahim.admin, d1.id, b"key-2").await, StoreError::Invariant(_));
    assert_eq!(store.devices(None).await.unwrap(), [d1, d2, d3]);
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
    assert_eq!(store.devices(Some(rahim.admin)).await.unwrap(), [d1.clone()]);

    let later = Telemetry { reader: Some(ReaderState::Ok), feedback: Some(true), ..telemetry(&d1, at(20), false) };
    store.record_telemetry(std::slice::from_ref(&later)).await.expect("telemetry");
    let stored = store.devices(Some(rahim.admin)).await.unwrap().remove(0).telemetry.expect("telemetry");
    assert_eq!((stored.last_reset, stored.last_reset_at), (Some(ResetReason::BrownOut), Some(at(8))), "kept");
    assert_eq!((stored.reader, stored.feedback, stored.last_seen_at), (Some(ReaderState::Ok), Some(true), at(20)));

    for reason in
        [ResetReason::PowerOn, ResetReason::Watchdog, ResetReason::Panic, ResetReason::Software, ResetReason::Other]
    {
        let again =
            Telemetry { last_reset: Some(reason), last_reset_at: Some(at(29)), ..telemetry(&d1, at(30), false) };
        store.record_telemetry(std::slice::from_ref(&again)).await.expect("telemetry");
        let stored = store.devices(Some(rahim.admin)).await.unwrap().remove(0).telemetry.expect("telemetry");
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
    let poll = DevicePoll {
        device: d1.id,
        load_shedding: false,
        ready: true,
        relay: false,
        feedback: None,
        reset: None,
        relay_off: None,
    };
    pump.step(Event::Poll(poll), at(10)).await;
    assert_eq!(load(store, rahim.admin).await.controller, Some(d1.id), "the first device to poll drives the pump");

    store.record_telemetry(&[telemetry(&d2, at(50), false)]).await.expect("spare telemetry");
    assert_eq!(load(store, rahim.admin).await.device.last_poll_at, Some(at(10)), "a spare keeps no lease");
    store.record_telemetry(&[telemetry(&d1, at(40), false)]).await.expect("controller telemetry");
    assert_eq!(load(store, rahim.admin).await.device.last_poll_at, Some(at(40)));

    assert_err!(store.delete_device(q.admin, d2.id).await, StoreError::NotFound);
    assert_err!(store.delete_device(rahim.admin, DeviceId::new()).await, StoreError::NotFound);
    store.delete_device(rahim.admin, d2.id).await.expect("retire");
    let left = store.devices(Some(rahim.admin)).await.unwrap();
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

/// A device's link counters: each accepted once, late ones within the window, never a replay or
/// one older than the window; kept per device and tenant; two servers racing with the same counter
/// never both win; the counters survive (they are the store's, not a server's memory).
pub async fn link_counters_accept_each_counter_once(store: &dyn Store) {
    use pumppilot_store::{CounterCheck, LinkCounters};
    let rahim = tenancy(store, "rahim", 0).await;
    let q = tenancy(store, "q", 0).await;
    let well = device(rahim.admin, "well", b"key-1", at(0));
    let other = device(rahim.admin, "other", b"key-2", at(1));
    for new in [&well, &other] {
        store.create_device(new).await.expect("create device");
    }
    assert_eq!(store.device_counters(None).await.unwrap(), [], "no device has signed yet");
    let accept = |counter| store.accept_device_counter(rahim.admin, well.id, counter);
    assert_eq!(accept(0).await.unwrap(), CounterCheck::Refused { highest: 0 }, "counters start at 1");
    assert_eq!(accept(5).await.unwrap(), CounterCheck::Accepted);
    assert_eq!(accept(5).await.unwrap(), CounterCheck::Refused { highest: 5 }, "a replay");
    assert_eq!(accept(7).await.unwrap(), CounterCheck::Accepted);
    assert_eq!(accept(6).await.unwrap(), CounterCheck::Accepted, "late, within the window");
    assert_eq!(accept(6).await.unwrap(), CounterCheck::Refused { highest: 7 }, "a late one replayed");
    assert_eq!(accept(4).await.unwrap(), CounterCheck::Accepted, "never seen, within the window");
    let far = 7 + LinkCounters::WINDOW + 1;
    assert_eq!(accept(far).await.unwrap(), CounterCheck::Accepted);
    assert_eq!(accept(7).await.unwrap(), CounterCheck::Refused { highest: far }, "older than the window");
    assert_eq!(
        accept(far - LinkCounters::WINDOW).await.unwrap(),
        CounterCheck::Accepted,
        "the oldest the window holds"
    );
    assert_eq!(accept(i64::MAX as u64).await.unwrap(), CounterCheck::Accepted, "the largest counter");
    assert_eq!(accept(i64::MAX as u64).await.unwrap(), CounterCheck::Refused { highest: i64::MAX as u64 });
    // Another device and another tenant have counters of their own.
    assert_eq!(store.accept_device_counter(rahim.admin, other.id, 5).await.unwrap(), CounterCheck::Accepted);
    assert_err!(store.accept_device_counter(q.admin, well.id, 10).await, StoreError::NotFound);
    assert_err!(store.accept_device_counter(rahim.admin, DeviceId::new(), 10).await, StoreError::NotFound);
    let mut counters = store.device_counters(Some(rahim.admin)).await.unwrap();
    counters.sort();
    let mut expected = vec![(well.id, i64::MAX as u64), (other.id, 5)];
    expected.sort();
    assert_eq!(counters, expected);
    assert_eq!(store.device_counters(Some(q.admin)).await.unwrap(), []);

    // Many requests at once (several servers on one store): each counter wins exactly once.
    let fresh = device(rahim.admin, "fresh", b"key-3", at(2));
    store.create_device(&fresh).await.expect("create device");
    let server = |offset: u64| async move {
        let mut won = Vec::new();
        for step in 0..20 {
            // Each server goes through the counters from another place, so they collide often.
            let counter = (step + offset) % 20 + 1;
            match store.accept_device_counter(rahim.admin, fresh.id, counter).await.expect("accept") {
                CounterCheck::Accepted => won.push(counter),
                CounterCheck::Refused { .. } => {}
            }
        }
        won
    };
    let (a, b, c, d) = tokio::join!(server(0), server(0), server(7), server(13));
    let mut won: Vec<u64> = [a, b, c, d].concat();
    won.sort_unstable();
    assert_eq!(won, (1..=20).collect::<Vec<_>>(), "each counter accepted exactly once");
    for counter in 1..=20 {
        assert_eq!(
            store.accept_device_counter(rahim.admin, fresh.id, counter).await.unwrap(),
            CounterCheck::Refused { highest: 20 },
            "counter {counter} again"
        );
    }
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
