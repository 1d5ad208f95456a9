//! Tenants: creation, committing engine transitions, and the version guard.

use pumppilot_engine::{
    AdminId, EndReason, EntryId, EntryStatus, Event, HoldReason, LedgerKind, Records, Reply, Tenant, UserId,
};
use pumppilot_store::{Commit, Role, Store, StoreError};

use crate::support::{
    Driver, LEASE_MS, T0, admin_account, all_good, assert_err, at, load, recharge, tenancy, user_account,
};

/// An admin comes with its tenant, at version 0 with nothing in it; users do not make tenants.
pub async fn creating_an_admin_creates_its_tenant(store: &dyn Store) {
    assert_eq!(store.tenant_ids().await.unwrap(), vec![]);
    let rahim = admin_account("rahim", T0);
    store.create_account(&rahim).await.unwrap();
    let admin = AdminId(rahim.id);
    store.create_account(&user_account(admin, "karim", T0)).await.unwrap();

    assert_eq!(store.tenant_ids().await.unwrap(), vec![admin]);
    assert_eq!(store.load_tenant(admin, LEASE_MS).await.unwrap(), Some(Tenant::new(admin, LEASE_MS)));
    let tenant = store.load_tenant(admin, 1_234).await.unwrap().unwrap();
    assert_eq!(tenant.device.lease_ms, 1_234, "the lease is the caller's");
    assert_eq!(store.load_tenant(AdminId(UserId::new()), LEASE_MS).await.unwrap(), None);

    let q = admin_account("q", T0);
    store.create_account(&q).await.unwrap();
    let mut ids = store.tenant_ids().await.unwrap();
    ids.sort();
    let mut expected = vec![admin, AdminId(q.id)];
    expected.sort();
    assert_eq!(ids, expected);
}

/// A day at the pump through the real engine: every committed state reloads as it was.
pub async fn commit_round_trip_with_the_engine(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 3).await;
    let (admin, u1, u2, u3) = (rahim.admin, rahim.users[0], rahim.users[1], rahim.users[2]);
    let mut pump = Driver::load(store, admin).await;

    pump.step(recharge(admin, u1, 600), at(0)).await;
    pump.step(recharge(admin, u2, 300), at(0)).await;
    pump.step(all_good(), at(1)).await;
    let start = Event::Start { user: u1, requested_minutes: Some(5), entry_id: EntryId::new() };
    let first = pump.step(start, at(2)).await;
    assert!(matches!(first.reply, Ok(Reply::Entry(ref e)) if e.status == EntryStatus::Running));
    pump.step(Event::Start { user: u2, requested_minutes: None, entry_id: EntryId::new() }, at(3)).await;
    assert_eq!(pump.tenant.live_entry(u2).map(|(_, position)| position), Some(Some(1)));
    let refused = pump.step(Event::Start { user: u3, requested_minutes: None, entry_id: EntryId::new() }, at(4)).await;
    assert!(refused.reply.is_err(), "no minutes, no start");

    // The grid goes down, then comes back: HOLD and back to RUNNING.
    pump.step(Event::DeviceReport { load_shedding: true, ready: true, relay: true }, at(30)).await;
    let active = pump.tenant.active.clone().unwrap();
    assert_eq!((active.status, active.hold_reason), (EntryStatus::Hold, Some(HoldReason::LoadShedding)));
    pump.step(all_good(), at(50)).await;

    // u1 stops after 28 + 30 seconds RUNNING; u2 starts by itself.
    pump.step(all_good(), at(79)).await;
    pump.step(Event::Stop { user: u1 }, at(80)).await;
    assert_eq!(pump.tenant.wallet(u1), 600 - 58);
    assert_eq!(pump.tenant.active.as_ref().map(|e| e.user_id), Some(u2));

    // The admin stops u2 after 20 seconds.
    let active = pump.tenant.active.as_ref().expect("u2 runs").id;
    pump.step(Event::AdminStop { entry: active }, at(100)).await;
    assert_eq!(pump.tenant.wallet(u2), 300 - 20);
    assert!(pump.tenant.active.is_none() && pump.tenant.waiting.is_empty());
    assert_eq!(pump.tenant.version, 11, "one version per commit");

    // The books hold exactly what the engine produced.
    let mut ledger = store.ledger(u1, 100).await.unwrap();
    ledger.reverse();
    let expected: Vec<_> = pump.committed.ledger.iter().filter(|e| e.user_id == u1).cloned().collect();
    assert_eq!(ledger, expected);
    let query = pumppilot_store::UsageQuery { admin, user: None, from: None, to: None, limit: 100 };
    let mut usage = store.usage(&query).await.unwrap();
    usage.reverse();
    assert_eq!(usage, pump.committed.usage);
    assert_eq!(usage.iter().map(|row| row.end_reason).collect::<Vec<_>>(), [EndReason::UserStop, EndReason::AdminStop]);
}

/// A transition computed from an old version is refused, and none of it is written.
pub async fn stale_version_is_a_conflict_and_writes_nothing(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 1).await;
    let (admin, u1) = (rahim.admin, rahim.users[0]);
    let mut pump = Driver::load(store, admin).await;
    pump.step(recharge(admin, u1, 100), at(0)).await;
    let mut stale = pump.tenant.clone();
    pump.step(recharge(admin, u1, 100), at(1)).await;

    let outcome = stale.apply(recharge(admin, u1, 50), at(2));
    let commit = Commit {
        tenant: &stale,
        records: &outcome.records,
        audit: &[],
        decision: None,
        suspension: None,
        receipt: None,
    };
    assert_err!(store.commit(commit).await, StoreError::VersionConflict);

    assert_eq!(store.ledger(u1, 100).await.unwrap().len(), 2, "the stale ledger entry was not written");
    pump.assert_stored().await;
    assert_eq!(load(store, admin).await.wallet(u1), 200);

    let unknown = Tenant::new(AdminId(UserId::new()), LEASE_MS);
    let commit = Commit {
        tenant: &unknown,
        records: &Records::default(),
        audit: &[],
        decision: None,
        suspension: None,
        receipt: None,
    };
    assert_err!(store.commit(commit).await, StoreError::NotFound);
}

/// Two writers commit from the same version at the same time: exactly one wins.
pub async fn racing_commits_only_one_wins(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 2).await;
    let (admin, u1, u2) = (rahim.admin, rahim.users[0], rahim.users[1]);
    let mut first = load(store, admin).await;
    let mut second = first.clone();
    let first_records = first.apply(recharge(admin, u1, 60), at(0)).records;
    let second_records = second.apply(recharge(admin, u2, 120), at(0)).records;

    let (a, b) = tokio::join!(
        store.commit(Commit {
            tenant: &first,
            records: &first_records,
            audit: &[],
            decision: None,
            suspension: None,
            receipt: None
        }),
        store.commit(Commit {
            tenant: &second,
            records: &second_records,
            audit: &[],
            decision: None,
            suspension: None,
            receipt: None,
        }),
    );
    let winner = match (a, b) {
        (Ok(()), Err(StoreError::VersionConflict)) => first,
        (Err(StoreError::VersionConflict), Ok(())) => second,
        other => panic!("expected one commit and one conflict, got {other:?}"),
    };
    let stored = load(store, admin).await;
    assert_eq!(stored, Tenant { version: 1, ..winner });
    let entries = store.ledger(u1, 10).await.unwrap().len() + store.ledger(u2, 10).await.unwrap().len();
    assert_eq!(entries, 1, "only the winner's ledger entry is written");
}

/// Writers that reload and retry on a conflict all land, and the wallet is the sum of them. The
/// writers' first commits race from the same version (they meet at a barrier after loading), so
/// the conflict and retry path runs every time: counted and asserted.
pub async fn concurrent_writers_retry_until_every_credit_lands(store: &dyn Store) {
    const WRITERS: i64 = 4;
    const CREDITS: i64 = 5;
    let rahim = tenancy(store, "rahim", 1).await;
    let (admin, u1) = (rahim.admin, rahim.users[0]);
    let together = tokio::sync::Barrier::new(WRITERS as usize);

    let writer = |n: i64| {
        let together = &together;
        async move {
            let (mut conflicts, mut retried) = (0, 0);
            for k in 0..CREDITS {
                let mut attempt = 0;
                loop {
                    let mut tenant = load(store, admin).await;
                    if k == 0 && attempt == 0 {
                        together.wait().await;
                    }
                    let records = tenant.apply(recharge(admin, u1, 10), at(n * 100 + k)).records;
                    let commit = Commit {
                        tenant: &tenant,
                        records: &records,
                        audit: &[],
                        decision: None,
                        suspension: None,
                        receipt: None,
                    };
                    match store.commit(commit).await {
                        Ok(()) => {
                            retried += i64::from(attempt > 0);
                            break;
                        }
                        Err(StoreError::VersionConflict) => conflicts += 1,
                        Err(other) => panic!("commit failed: {other:?}"),
                    }
                    attempt += 1;
                }
            }
            (conflicts, retried)
        }
    };
    let outcomes = tokio::join!(writer(0), writer(1), writer(2), writer(3));
    let outcomes = [outcomes.0, outcomes.1, outcomes.2, outcomes.3];
    let conflicts: i64 = outcomes.iter().map(|o| o.0).sum();
    let retried: i64 = outcomes.iter().map(|o| o.1).sum();
    assert!(conflicts >= WRITERS - 1, "all but one of the racing first commits met a conflict: {outcomes:?}");
    assert!(retried >= WRITERS - 1, "and each landed on a retry: {outcomes:?}");

    let tenant = load(store, admin).await;
    assert_eq!(tenant.version, (WRITERS * CREDITS) as u64);
    assert_eq!(tenant.wallet(u1), WRITERS * CREDITS * 10);
    let ledger = store.ledger(u1, 1_000).await.unwrap();
    assert_eq!(ledger.len() as i64, WRITERS * CREDITS);
    assert_eq!(ledger.iter().map(|e| e.delta_seconds).sum::<i64>(), tenant.wallet(u1));
    let mut balances: Vec<_> = ledger.iter().map(|e| e.balance_after).collect();
    balances.sort();
    assert_eq!(balances, (1..=WRITERS * CREDITS).map(|n| n * 10).collect::<Vec<_>>(), "no lost update");
}

/// Suspending a tenant ends its run, flags the tenant and the admin's account in one commit.
pub async fn suspending_a_tenant_in_one_commit(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 2).await;
    let q = tenancy(store, "q", 1).await;
    let (admin, u1, u2) = (rahim.admin, rahim.users[0], rahim.users[1]);
    let mut pump = Driver::load(store, admin).await;
    pump.step(recharge(admin, u1, 600), at(0)).await;
    pump.step(recharge(admin, u2, 600), at(0)).await;
    pump.step(all_good(), at(1)).await;
    pump.step(Event::Start { user: u1, requested_minutes: None, entry_id: EntryId::new() }, at(2)).await;
    pump.step(Event::Start { user: u2, requested_minutes: None, entry_id: EntryId::new() }, at(3)).await;

    // A suspension of another tenant's account is refused with the whole commit.
    let mut wrong = pump.tenant.clone();
    let records = wrong.apply(Event::SuspendTenant, at(10)).records;
    let commit = Commit {
        tenant: &wrong,
        records: &records,
        audit: &[],
        decision: None,
        suspension: Some((q.users[0], true)),
        receipt: None,
    };
    assert_err!(store.commit(commit).await, StoreError::NotFound);
    pump.assert_stored().await;

    let records = pump.tenant.apply(Event::SuspendTenant, at(12)).records;
    pump.commit(&records, &[], None, Some((admin.0, true))).await.expect("suspend");
    pump.assert_stored().await;
    let stored = load(store, admin).await;
    assert!(stored.suspended && stored.active.is_none() && stored.waiting.is_empty());
    assert_eq!(stored.wallet(u1), 600 - 10);
    assert!(store.account(admin.0).await.unwrap().unwrap().suspended);
    let usage = store
        .usage(&pumppilot_store::UsageQuery { admin, user: Some(u1), from: None, to: None, limit: 10 })
        .await
        .unwrap();
    assert_eq!(usage.iter().map(|row| row.end_reason).collect::<Vec<_>>(), [EndReason::Suspended]);
    let users = store.accounts(Role::User, Some(admin)).await.unwrap();
    assert!(users.iter().all(|user| !user.suspended), "only the named account is flagged");

    let records = pump.tenant.apply(Event::UnsuspendTenant, at(20)).records;
    pump.commit(&records, &[], None, Some((admin.0, false))).await.expect("unsuspend");
    pump.assert_stored().await;
    assert!(!store.account(admin.0).await.unwrap().unwrap().suspended);
    assert_eq!(pump.committed.ledger.iter().filter(|e| e.kind == LedgerKind::RunCharge).count(), 1);
}

/// The controller, the owner's restart protection and the motor's recent history (ON, when it
/// last went OFF, when the grid came back, the starts of the hour) survive a reload.
pub async fn controller_and_restart_protection_survive_reload(store: &dyn Store) {
    use pumppilot_engine::{DeviceId, DevicePoll, EntryId, MotorSettings, ResetReason};

    let rahim = tenancy(store, "rahim", 2).await;
    let mut pump = Driver::load(store, rahim.admin).await;
    let board = DeviceId::new();
    let poll = |load_shedding: bool, reset: Option<ResetReason>| {
        Event::Poll(DevicePoll {
            device: board,
            load_shedding,
            ready: true,
            relay: false,
            feedback: None,
            reset,
            relay_off: None,
            uptime_ms: None,
        })
    };
    pump.step(poll(false, Some(ResetReason::PowerOn)), at(0)).await;
    let settings = MotorSettings { min_off_ms: Some(0), grid_settle_ms: Some(0), max_starts_per_hour: Some(4) };
    pump.step(Event::SetMotorSettings(settings), at(1)).await;
    pump.step(recharge(rahim.admin, rahim.users[0], 600), at(2)).await;
    pump.step(recharge(rahim.admin, rahim.users[1], 600), at(2)).await;
    for (n, user) in [(10, rahim.users[0]), (20, rahim.users[1]), (30, rahim.users[0])] {
        pump.step(Event::Start { user, requested_minutes: None, entry_id: EntryId::new() }, at(n)).await;
        pump.step(Event::Stop { user }, at(n + 5)).await;
    }
    pump.step(poll(true, None), at(40)).await;
    pump.step(poll(false, None), at(41)).await;
    let stored = load(store, rahim.admin).await;
    assert_eq!(stored.controller, Some(board));
    assert_eq!(stored.motor_settings, settings);
    assert_eq!(stored.motor.starts, [at(10), at(20), at(30)]);
    assert_eq!(
        (stored.motor.on, stored.motor.off_since, stored.motor.grid_up_since),
        (false, Some(at(35)), Some(at(41)))
    );
    pump.step(Event::SetController { device: None }, at(50)).await;
    assert_eq!(load(store, rahim.admin).await.controller, None);
}
