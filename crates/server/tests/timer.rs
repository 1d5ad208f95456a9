//! The timer ends runs by itself: nobody reads the tenant, yet the run that used its last second
//! is ended, charged and written, and the next in line starts. On a manual clock: the run ends
//! when the clock reaches its last second, not before, however slow the machine.

mod support;

use std::{sync::Arc, time::Duration};

use pumppilot_engine::{AdminId, Credit, EntryId, Event, LedgerKind, UserId};
use pumppilot_server::{
    clock::{Clock, ManualClock},
    runtime::{Extras, Runtime},
};
use pumppilot_store::{Role, Store, UsageQuery};
use pumppilot_store_sqlite::SqliteStore;
use support::account;

async fn apply(runtime: &Runtime, admin: AdminId, event: Event) {
    let (reply, ()) = runtime.apply(admin, event, Extras::default(), |_, _| ()).await.unwrap();
    reply.unwrap();
}

#[tokio::test]
async fn a_run_that_uses_its_last_second_ends_by_itself_and_the_next_starts() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open("sqlite::memory:").unwrap());
    let admin = AdminId(UserId::new());
    let (first, second) = (UserId::new(), UserId::new());
    let clock = ManualClock::starting_now();
    store.create_account(&account(admin.0, admin, Role::Admin, clock.now())).await.unwrap();
    store.create_account(&account(first, admin, Role::User, clock.now())).await.unwrap();
    store.create_account(&account(second, admin, Role::User, clock.now())).await.unwrap();
    let runtime = Runtime::new(Arc::clone(&store), clock.clone(), 60_000, 5_000);
    runtime.start().await.unwrap();

    for (user, seconds) in [(first, 1), (second, 60)] {
        let credit = Credit::new(user, seconds, LedgerKind::Recharge, admin.0);
        apply(&runtime, admin, Event::Credit(credit)).await;
    }
    apply(&runtime, admin, Event::DeviceReport { load_shedding: false, ready: true, relay: false }).await;
    apply(&runtime, admin, Event::Start { user: first, requested_minutes: None, entry_id: EntryId::new() }).await;
    apply(&runtime, admin, Event::Start { user: second, requested_minutes: None, entry_id: EntryId::new() }).await;
    // The device polls and hears of the run: charging starts now.
    apply(&runtime, admin, Event::DeviceReport { load_shedding: false, ready: true, relay: false }).await;

    // Nobody touches the tenant; only the timer can end the run. Watch the store, not the runtime.
    let started = clock.now();
    let query = UsageQuery { admin, user: None, from: None, to: None, limit: 10 };
    let end = started + 1000;
    let timer_waits = || clock.waits().contains(&end);
    wait_until("the timer waits for the run's last second", timer_waits).await;
    clock.advance(Duration::from_millis(999));
    tokio::task::yield_now().await;
    assert!(store.usage(&query).await.unwrap().is_empty(), "not ended a millisecond early");
    clock.advance(Duration::from_millis(1));
    let mut usage = Vec::new();
    for _ in 0..1000 {
        usage = store.usage(&query).await.unwrap();
        if !usage.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(usage.len(), 1, "the timer ended the run");
    assert_eq!(usage[0].user_id, first);
    assert_eq!(usage[0].charged_seconds, 1);
    assert_eq!(usage[0].end_reason.as_str(), "BALANCE_EXHAUSTED");
    let stored = store.load_tenant(admin, 60_000).await.unwrap().unwrap();
    assert_eq!(stored.active.as_ref().map(|e| e.user_id), Some(second), "the next in line started by itself");
    assert_eq!(stored.wallet(first), 0);
    assert_eq!(stored.active.as_ref().map(|e| e.started_at), Some(Some(end)), "started the moment the first ended");
}

/// Waits (in real time, generously) for something another task does without the clock moving.
async fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: not within 10 s");
}

/// Another server wrote the tenant since this one cached it: the commit meets a newer version,
/// and the runtime reloads and redoes the event on the new state (counted, so the retry path is
/// shown to have run), losing neither write.
#[tokio::test]
async fn a_commit_that_meets_another_servers_write_is_redone_on_the_new_state() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open("sqlite::memory:").unwrap());
    let clock = ManualClock::starting_now();
    let admin = AdminId(UserId::new());
    let farmer = UserId::new();
    store.create_account(&account(admin.0, admin, Role::Admin, clock.now())).await.unwrap();
    store.create_account(&account(farmer, admin, Role::User, clock.now())).await.unwrap();
    let here = Runtime::new(Arc::clone(&store), clock.clone(), 60_000, 5_000);
    let elsewhere = Runtime::new(Arc::clone(&store), clock.clone(), 60_000, 5_000);
    let credit = |seconds| Event::Credit(Credit::new(farmer, seconds, LedgerKind::Recharge, admin.0));
    here.read(admin, |_, _| ()).await.unwrap();
    apply(&elsewhere, admin, credit(60)).await;
    assert_eq!(here.retries(), 0);
    apply(&here, admin, credit(120)).await;
    assert_eq!(here.retries(), 1, "the stale commit was redone once");
    let wallet = here.read(admin, |tenant, _| tenant.wallet(farmer)).await.unwrap();
    assert_eq!(wallet, 180, "both credits landed");
    assert_eq!(store.load_tenant(admin, 60_000).await.unwrap().unwrap().wallet(farmer), 180);
}
