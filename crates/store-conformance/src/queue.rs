//! The queue: the interlock held by the store itself, and a line that closes up.

use pumppilot_engine::{EndReason, EntryId, EntryStatus, Event, LedgerKind, QueueEntry, Tenant, UserId};
use pumppilot_store::{Commit, Store, StoreError};

use crate::support::{Driver, all_good, at, credit, recharge, tenancy};

/// The users in line, in order.
fn line(tenant: &Tenant) -> Vec<UserId> {
    tenant.waiting.iter().map(|entry| entry.user_id).collect()
}

/// A hand-built state with a second active entry is refused by the store, even though its version
/// is right: nothing of the commit is written.
pub async fn one_active_entry_per_admin_is_enforced_by_the_store(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 2).await;
    let (admin, u1, u2) = (rahim.admin, rahim.users[0], rahim.users[1]);
    let mut pump = Driver::load(store, admin).await;
    pump.step(recharge(admin, u1, 600), at(0)).await;
    pump.step(recharge(admin, u2, 600), at(0)).await;
    pump.step(all_good(), at(1)).await;
    pump.step(Event::Start { user: u1, requested_minutes: None, entry_id: EntryId::new() }, at(2)).await;
    let ledger_before = store.ledger(u2, 100).await.unwrap();

    // u2 runs as well, and u1's run was never ended.
    let mut forged = pump.tenant.clone();
    let mut second = QueueEntry::new(EntryId::new(), u2, admin, None, at(5));
    second.status = EntryStatus::Running;
    second.started_at = Some(at(5));
    second.phase_since = Some(at(5));
    forged.active = Some(Box::new(second));
    // A credit in the same commit shows that nothing at all is written.
    let records = forged.apply(recharge(admin, u2, 60), at(5)).records;
    assert_eq!(records.ledger.len(), 1);
    let commit =
        Commit { tenant: &forged, records: &records, audit: &[], decision: None, suspension: None, receipt: None };
    match store.commit(commit).await {
        Err(StoreError::Invariant(message)) => {
            assert!(message.contains("one RUNNING or HOLD entry per admin"), "{message}")
        }
        other => panic!("expected a refusal by the store's own rule, got {other:?}"),
    }

    pump.assert_stored().await;
    assert_eq!(store.ledger(u2, 100).await.unwrap(), ledger_before);

    // The same start through the engine just waits in line.
    pump.step(Event::Start { user: u2, requested_minutes: None, entry_id: EntryId::new() }, at(6)).await;
    assert_eq!(line(&pump.tenant), [u2]);
}

/// Users leave the line from the front and the middle, runs end and the next starts, a start and
/// a stop land in one commit, and a user with nothing left is skipped: positions stay 1..n.
pub async fn positions_close_up_as_the_line_moves(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 7).await;
    let admin = rahim.admin;
    let [u1, u2, u3, u4, u5, u6, u7] = rahim.users[..] else { unreachable!("seven users") };
    let mut pump = Driver::load(store, admin).await;
    for user in &rahim.users {
        pump.step(recharge(admin, *user, 600), at(0)).await;
    }
    pump.step(all_good(), at(1)).await;
    for (n, user) in [u1, u2, u3, u4, u5, u6].into_iter().enumerate() {
        pump.step(Event::Start { user, requested_minutes: None, entry_id: EntryId::new() }, at(2 + n as i64)).await;
    }
    assert_eq!(pump.tenant.active.as_ref().map(|e| e.user_id), Some(u1));
    assert_eq!(line(&pump.tenant), [u2, u3, u4, u5, u6]);

    pump.step(Event::Stop { user: u2 }, at(10)).await;
    assert_eq!(line(&pump.tenant), [u3, u4, u5, u6], "the first in line left");
    pump.step(Event::Stop { user: u4 }, at(11)).await;
    assert_eq!(line(&pump.tenant), [u3, u5, u6], "one in the middle left");
    pump.step(Event::Stop { user: u1 }, at(20)).await;
    assert_eq!(pump.tenant.active.as_ref().map(|e| e.user_id), Some(u3));
    assert_eq!(line(&pump.tenant), [u5, u6], "the next started and the rest moved up");

    // A start and a stop in one commit: the entry is stored only in its ended form.
    let mut records =
        pump.tenant.apply(Event::Start { user: u7, requested_minutes: None, entry_id: EntryId::new() }, at(21)).records;
    records.extend(pump.tenant.apply(Event::Stop { user: u7 }, at(21)).records);
    assert_eq!(records.ended.len(), 1);
    assert_eq!(records.ended[0].end_reason, Some(EndReason::LeftQueue));
    pump.commit(&records, &[], None, None).await.expect("commit");
    pump.assert_stored().await;

    // u6 has nothing left when the turn comes: skipped, and the line is empty.
    pump.step(credit(admin, u6, -600, LedgerKind::Correction), at(22)).await;
    pump.step(all_good(), at(30)).await;
    let active = pump.tenant.active.as_ref().expect("u3 runs").id;
    pump.step(Event::AdminStop { entry: active }, at(40)).await;
    assert_eq!(pump.tenant.active.as_ref().map(|e| e.user_id), Some(u5));
    assert_eq!(line(&pump.tenant), [u6]);
    let ended = pump.step(Event::Stop { user: u5 }, at(50)).await.records.ended;
    assert_eq!(ended.len(), 2);
    assert_eq!((ended[1].user_id, ended[1].end_reason), (u6, Some(EndReason::InsufficientBalance)));
    assert!(pump.tenant.active.is_none() && pump.tenant.waiting.is_empty());
}

/// Every tenant read together (a server that starts) is each tenant as it reads alone: its run,
/// its line in order, its wallets, its last poll and controller.
pub async fn all_tenants_read_together_are_each_as_read_alone(store: &dyn Store) {
    let rahim = tenancy(store, "rahim", 3).await;
    let quiet = tenancy(store, "quiet", 1).await;
    let (admin, [u1, u2, u3]) = (rahim.admin, [rahim.users[0], rahim.users[1], rahim.users[2]]);
    let mut pump = Driver::load(store, admin).await;
    for user in [u1, u2, u3] {
        pump.step(recharge(admin, user, 600), at(0)).await;
    }
    pump.step(all_good(), at(1)).await;
    for (user, when) in [(u1, 2), (u3, 3), (u2, 4)] {
        pump.step(Event::Start { user, requested_minutes: None, entry_id: EntryId::new() }, at(when)).await;
    }
    pump.step(Event::Stop { user: u3 }, at(5)).await;
    pump.step(Event::Start { user: u3, requested_minutes: Some(2), entry_id: EntryId::new() }, at(6)).await;
    assert_eq!(line(&pump.tenant), [u2, u3]);

    let mut together = store.load_tenants(crate::support::LEASE_MS, None).await.expect("load all");
    together.sort_by_key(|t| t.admin_id);
    let mut alone = Vec::new();
    for admin in [rahim.admin, quiet.admin] {
        alone.push(crate::support::load(store, admin).await);
    }
    alone.sort_by_key(|t| t.admin_id);
    assert_eq!(together, alone);
    assert!(together.iter().any(|t| t.active.is_some() && t.waiting.len() == 2 && t.wallets.len() == 3));

    // A server taking over its share reads only the tenants it wants, each the same.
    let wanted: std::collections::HashSet<_> = [rahim.admin].into();
    let share = store.load_tenants(crate::support::LEASE_MS, Some(&wanted)).await.expect("load a share");
    assert_eq!(share, vec![crate::support::load(store, rahim.admin).await], "only the tenant wanted");

    // Many callers reading at once (a fleet coming online; a store may read them together): each
    // gets the tenant as read alone, with the lease it asked for, the same tenant asked twice
    // included, and no tenant for an admin that has none.
    let nobody = pumppilot_engine::AdminId(UserId::new());
    let read = |admin, lease_ms| async move { store.load_tenant(admin, lease_ms).await.expect("load") };
    let (a, b, c, d, e) = tokio::join!(
        read(rahim.admin, crate::support::LEASE_MS),
        read(quiet.admin, crate::support::LEASE_MS),
        read(rahim.admin, 5_000),
        read(nobody, crate::support::LEASE_MS),
        read(quiet.admin, crate::support::LEASE_MS),
    );
    let rahim_alone = crate::support::load(store, rahim.admin).await;
    let quiet_alone = crate::support::load(store, quiet.admin).await;
    assert_eq!(a.as_ref(), Some(&rahim_alone));
    assert_eq!((b.as_ref(), e.as_ref()), (Some(&quiet_alone), Some(&quiet_alone)));
    let mut short_lease = rahim_alone.clone();
    short_lease.device.lease_ms = 5_000;
    assert_eq!(c, Some(short_lease), "each with the lease it asked for");
    assert_eq!(d, None, "no tenant for an admin without one");
}
