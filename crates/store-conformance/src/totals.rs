//! The master's totals of every pump: owners, farmers, and the time charged and the cash taken
//! since a moment, over every tenant.

use pumppilot_engine::{AdminId, EntryId, Event, Timestamp, UserId};
use pumppilot_store::{FleetTotals, ReceiptQuery, Store, UsageQuery};

use crate::support::{DAY, Driver, SECOND, T0, all_good, at, master_account, tenancy, user_account};

/// A run of `user` from `start` (the device reporting first) to `stop`: `stop - start` charged,
/// its usage row ending at `stop`.
async fn run(pump: &mut Driver<'_>, user: UserId, start: Timestamp, stop: Timestamp) {
    pump.step(all_good(), start).await;
    pump.step(Event::Start { user, requested_minutes: None, entry_id: EntryId::new() }, start).await;
    pump.step(Event::Stop { user }, stop).await;
}

/// What the per-tenant reads add up to from `since`: the figures a master got by asking each pump.
async fn summed_per_tenant(store: &dyn Store, tenants: &[AdminId], since: Timestamp) -> (i64, i64) {
    let (mut seconds, mut cash) = (0, 0);
    for admin in tenants {
        let usage = UsageQuery { admin: *admin, user: None, from: Some(since), to: None, limit: 1_000 };
        seconds += store.usage(&usage).await.unwrap().iter().map(|row| row.charged_seconds).sum::<i64>();
        let receipts = ReceiptQuery { admin: *admin, user: None, from: Some(since), to: None, limit: 1_000 };
        cash += store.receipts(&receipts).await.unwrap().iter().map(|r| r.cash_taka).sum::<i64>();
    }
    (seconds, cash)
}

/// Every pump's figures together: owners (suspended ones too, never the master), farmers
/// (suspended ones too), and the seconds charged and the cash taken from `since` (inclusive) over
/// every tenant, exactly what each tenant's usage and receipts read from `since` add up to.
pub async fn fleet_totals_are_every_pumps_figures_from_a_moment(store: &dyn Store) {
    assert_eq!(store.fleet_totals(T0).await.unwrap(), FleetTotals::default(), "an empty store: nothing");
    store.create_account(&master_account("master", T0)).await.unwrap();
    let rahim = tenancy(store, "rahim", 2).await;
    let q = tenancy(store, "q", 1).await;
    let babul = tenancy(store, "babul", 0).await;
    store.set_suspended(babul.admin.0, true).await.unwrap();
    let late = user_account(q.admin, "q-late", at(5));
    store.create_account(&late).await.unwrap();
    store.set_suspended(late.id, true).await.unwrap();
    let tenants = [rahim.admin, q.admin, babul.admin];
    let (r1, r2, q1) = (rahim.users[0], rahim.users[1], q.users[0]);
    let since = T0 + 30 * DAY;

    let mut pump = Driver::load(store, rahim.admin).await;
    // Before the window: a receipt of 100 taka, a run of 10 s, and a run of 12 s that ends a second before it.
    pump.recharge_with_receipt(r1, 3_600, 100, at(0)).await;
    run(&mut pump, r1, at(1), at(11)).await;
    run(&mut pump, r1, since + -13 * SECOND, since + -SECOND).await;
    // From its very first moment: a receipt of 250 taka; then a run of 20 s.
    pump.recharge_with_receipt(r2, 1_800, 250, since).await;
    run(&mut pump, r2, since + DAY, since + DAY + 20 * SECOND).await;

    let mut other = Driver::load(store, q.admin).await;
    other.recharge_with_receipt(q1, 600, 40, at(2)).await;
    // A run of 7 s that ends at the window's first moment; a free recharge and a cash one inside.
    run(&mut other, q1, since + -7 * SECOND, since).await;
    other.recharge_with_receipt(q1, 600, 0, since + 2 * DAY).await;
    other.recharge_with_receipt(q1, 1_200, 75, since + 3 * DAY).await;

    let totals = store.fleet_totals(since).await.unwrap();
    assert_eq!(totals, FleetTotals { owners: 3, farmers: 4, charged_seconds: 20 + 7, cash_taka: 250 + 75 });
    assert_eq!(summed_per_tenant(store, &tenants, since).await, (27, 325), "the sum of every pump's own figures");

    // Every row, from before the first; none, from after the last; the counts whatever the moment.
    let all = store.fleet_totals(T0 + -DAY).await.unwrap();
    assert_eq!(
        all,
        FleetTotals { owners: 3, farmers: 4, charged_seconds: 10 + 12 + 20 + 7, cash_taka: 100 + 250 + 40 + 75 }
    );
    assert_eq!(summed_per_tenant(store, &tenants, T0 + -DAY).await, (49, 465));
    let after = since + 3 * DAY + SECOND;
    assert_eq!(
        store.fleet_totals(after).await.unwrap(),
        FleetTotals { owners: 3, farmers: 4, ..FleetTotals::default() }
    );
    // A moment after the window's first: the row and the receipt at that moment are left out.
    let next = store.fleet_totals(since + 1).await.unwrap();
    assert_eq!((next.charged_seconds, next.cash_taka), (20, 75));
}
