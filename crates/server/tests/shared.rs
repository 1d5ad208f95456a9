//! Two servers' runtimes on one MongoDB (SecantusDB, started by the test) and one manual clock: a
//! device that polls only server B keeps its lease on server A (B's flushed polls reach A), and
//! when the device falls silent, the timer of the one that owns the tenant holds its run
//! DEVICE_OFFLINE at the lease's moment but only after the take-over grace, once across both.
//!
//! The clock is fake; only the change feed between the two runs on real time, so the test waits
//! for what A has heard with generous limits, never a fixed sleep.

mod support;

use std::{sync::Arc, time::Duration};

use pumppilot_engine::{
    AdminId, Credit, DeviceId, DevicePoll, EntryId, EntryStatus, Event, HoldReason, LedgerKind, Timestamp,
};
use pumppilot_server::{
    clock::{Clock, ManualClock},
    runtime::{Extras, FRESH_FOR, LEASE_TAKEOVER_GRACE, Runtime, TIMER_TAKEOVER},
};
use pumppilot_store::Store;
use pumppilot_store_mongodb::testing;
use support::{pump, telemetry, until};

const LEASE_MS: u32 = 10_000;

async fn poll(runtime: &Runtime, admin: AdminId, device: DeviceId, now: Timestamp) {
    let poll = DevicePoll::ready(device);
    runtime.poll(admin, poll, telemetry(admin, device, now, false)).await.unwrap();
}

#[tokio::test]
async fn a_lease_counts_polls_at_any_server_and_a_silent_device_is_held_once_by_the_timers_owner() {
    let store: Arc<dyn Store> = Arc::new(testing::fresh_store().await);
    let clock = ManualClock::starting_now();
    let (admin, farmer, device) = pump(store.as_ref(), clock.now(), 7).await;
    let a = Runtime::new(Arc::clone(&store), clock.clone(), LEASE_MS, 5_000);
    let b = Runtime::new(Arc::clone(&store), clock.clone(), LEASE_MS, 5_000);
    a.start().await.unwrap();
    b.start().await.unwrap();
    assert!(a.is_shared() && b.is_shared());
    until("both feeds caught up", || async { a.is_fresh() && b.is_fresh() }).await;

    // On A: minutes and a Start. The device polls only B.
    start_a_run(&a, admin, farmer).await;
    until("B hears of the Start", || async { b.read(admin, |t, _| t.active.is_some()).await.unwrap() }).await;
    let told_on = clock.now();
    poll(&b, admin, device, told_on).await;

    // For three leases the device polls B every 4 s; A never hears a poll itself.
    let mut last_poll = clock.now();
    for _ in 0..8 {
        clock.advance(Duration::from_secs(4));
        last_poll = clock.now();
        poll(&b, admin, device, last_poll).await;
        b.flush_telemetry().await;
        until("A hears of B's poll", || async {
            a.read(admin, |t, _| t.device.last_poll_at).await.unwrap() == Some(last_poll)
        })
        .await;
        let (status, hold) =
            a.read(admin, |t, _| t.active.as_ref().map(|e| (e.status, e.hold_reason))).await.unwrap().expect("the run");
        assert_eq!((status, hold), (EntryStatus::Running, None), "the lease counts the polls made at B");
    }

    // The device falls silent. Its lease ends at `lease_end`; both timers wait the grace longer.
    let lease_end = last_poll + i64::from(LEASE_MS);
    let grace = i64::try_from(LEASE_TAKEOVER_GRACE.as_millis()).unwrap();
    let version = store.load_tenant(admin, i64::from(LEASE_MS)).await.unwrap().unwrap().version;
    // Heartbeats follow the manual clock (one a second, each kept 3 s): the 4 s steps above outran
    // them, so which server saw which depends on which beat last. Both beat now, A again after B.
    a.heartbeat().await;
    b.heartbeat().await;
    a.heartbeat().await;
    assert_ne!(a.owns_timer(admin), b.owns_timer(admin), "each knows the other alive; one owns the timer");
    let retries = a.retries() + b.retries();
    // A quiet poll moves the lease in memory, not the timer (it wakes at the old deadline, finds
    // the lease alive and sleeps again); whether B's polls were quiet depends on whether its feed
    // was fresh at each (`FRESH_FOR`, on the wall clock here).
    // A read brings each timer to the lease's end before the clock jumps past the old deadline.
    a.read(admin, |_, _| ()).await.unwrap();
    b.read(admin, |_, _| ()).await.unwrap();
    until("both timers wait for the lease's end and the grace", || async {
        clock.waits().iter().filter(|at| **at == lease_end + grace).count() >= 2
    })
    .await;
    clock.advance(Duration::from_millis(u64::try_from((lease_end + grace - 1) - clock.now()).unwrap()));
    let stored = store.load_tenant(admin, i64::from(LEASE_MS)).await.unwrap().unwrap();
    assert_eq!(stored.version, version, "nothing is held before the grace has passed");
    // The jump outran the beats' time to live: each server's own beat at the new time may have come
    // before the other's, so both beat again until each knows the other alive (one owns the timer).
    until("each server knows the other alive again", || async {
        a.heartbeat().await;
        b.heartbeat().await;
        a.heartbeat().await;
        a.owns_timer(admin) != b.owns_timer(admin)
    })
    .await;
    clock.advance(Duration::from_millis(1));
    until("the run held DEVICE_OFFLINE in the store", || async {
        let stored = store.load_tenant(admin, i64::from(LEASE_MS)).await.unwrap().unwrap();
        stored.active.as_ref().is_some_and(|e| e.hold_reason == Some(HoldReason::DeviceOffline))
    })
    .await;
    // Both hear of the hold through the feed before anyone reads (a read of the non-owner in the
    // grace would bring the state up to date itself and race the owner: the caveat ARCHITECTURE.md
    // states); then both show it.
    let (heard_a, heard_b) = (a.subscribe(admin), b.subscribe(admin));
    until("both servers hear of the hold", || async {
        heard_a.borrow().version == version + 1 && heard_b.borrow().version == version + 1
    })
    .await;
    until("both servers know the hold", || async {
        let held = |t: &pumppilot_engine::Tenant, _| t.active.as_ref().and_then(|e| e.hold_reason);
        a.read(admin, held).await.unwrap() == Some(HoldReason::DeviceOffline)
            && b.read(admin, held).await.unwrap() == Some(HoldReason::DeviceOffline)
    })
    .await;
    let stored = store.load_tenant(admin, i64::from(LEASE_MS)).await.unwrap().unwrap();
    assert_eq!(stored.version, version + 1, "one commit held the run");
    assert_eq!(a.retries() + b.retries(), retries, "the timer's owner fired; the other did not even try");
    let takeover = i64::try_from(TIMER_TAKEOVER.as_millis()).unwrap();
    assert!(
        clock.waits().contains(&(lease_end + grace + takeover)),
        "the other server's timer put the deadline off by the take-over time: {:?}",
        clock.waits()
    );
    let entry = stored.active.expect("the run");
    assert_eq!(entry.running_ms, lease_end - told_on, "charged from the ON to the lease's very moment");
}

/// A quiet device present at A costs the store no write per poll: A's heartbeats vouch for it,
/// so B sees it online lease after lease and a Start on B finds it online; B's view of its last
/// poll is never later than a poll that happened. Once it falls silent, A lets it go (its last
/// poll written) before its next beat, and B sees it offline at that poll's lease end.
#[tokio::test]
async fn a_quiet_device_is_vouched_for_by_its_servers_heartbeat_and_let_go_when_silent() {
    use pumppilot_server::runtime::PRESENT_WITHIN;
    let store: Arc<dyn Store> = Arc::new(testing::fresh_store().await);
    let clock = ManualClock::starting_now();
    let (admin, farmer, device) = pump(store.as_ref(), clock.now(), 9).await;
    let a = Runtime::new(Arc::clone(&store), clock.clone(), LEASE_MS, 5_000);
    let b = Runtime::new(Arc::clone(&store), clock.clone(), LEASE_MS, 5_000);
    a.start().await.unwrap();
    b.start().await.unwrap();
    until("both feeds caught up", || async { a.is_fresh() && b.is_fresh() }).await;
    recharge(&b, admin, farmer, 600).await;

    // The device polls A: the flush that writes its first report makes it present at A.
    let joined = clock.now();
    poll(&a, admin, device, joined).await;
    a.flush_telemetry().await;
    let stored_poll =
        || async { store.load_tenant(admin, i64::from(LEASE_MS)).await.unwrap().unwrap().device.last_poll_at };
    assert_eq!(stored_poll().await, Some(joined));
    assert_eq!(store.presences().await.unwrap().len(), 1, "present at A");

    // Six leases of quiet polls every 4 s: nothing more is written, and B sees it online
    // throughout, never later than its last poll.
    let mut last_poll = joined;
    for _ in 0..15 {
        clock.advance(Duration::from_secs(4));
        last_poll = clock.now();
        poll(&a, admin, device, last_poll).await;
        a.flush_telemetry().await;
        a.heartbeat().await;
        let vouched = last_poll - i64::from(LEASE_MS) * PRESENT_WITHIN.0 / PRESENT_WITHIN.1;
        until("B hears of A's beat", || async { b.present_since(admin, device) == Some(vouched) }).await;
        let (online, seen) = b.read(admin, |t, now| (t.device.online_at(now), t.device.last_poll_at)).await.unwrap();
        assert!(online, "B sees the device online: A's beat vouches for it");
        assert!(seen.is_some_and(|seen| seen <= last_poll), "never a poll that did not happen: {seen:?}");
    }
    assert_eq!(stored_poll().await, Some(joined), "no write per poll");

    // A Start on B finds the device online: the run is RUNNING, waiting to tell the device.
    let start = Event::Start { user: farmer, requested_minutes: None, entry_id: EntryId::new() };
    b.apply(admin, start, Extras::default(), |_, _| ()).await.unwrap().0.unwrap();
    let state = b.read(admin, |t, _| t.active.as_ref().map(|e| (e.status, e.hold_reason))).await.unwrap();
    assert_eq!(state, Some((EntryStatus::Running, None)));
    let stop = Event::Stop { user: farmer };
    b.apply(admin, stop, Extras::default(), |_, _| ()).await.unwrap().0.unwrap();
    until("A hears of the Stop", || async { a.read(admin, |t, _| t.active.is_none()).await.unwrap() }).await;

    // The device falls silent. Two thirds of a lease later A lets it go before it beats: the
    // store has its last poll and names no server, and B sees it offline at that poll's lease end.
    clock.advance(Duration::from_millis(u64::try_from(i64::from(LEASE_MS) * 2 / 3 + 1).unwrap()));
    a.heartbeat().await;
    assert_eq!(store.presences().await.unwrap(), []);
    assert!(stored_poll().await >= Some(last_poll));
    until("B hears A let it go", || async { b.present_since(admin, device).is_none() }).await;
    let seen = b.read(admin, |t, _| t.device.last_poll_at).await.unwrap();
    assert!(seen.is_some_and(|seen| seen <= last_poll), "never a poll that did not happen: {seen:?}");
    clock.set(last_poll + i64::from(LEASE_MS));
    assert!(!b.read(admin, |t, now| t.device.online_at(now)).await.unwrap(), "offline at its lease's end");
}

/// A device back after its lease at a server that never held it, reporting what its last server
/// stored: the new server reads that report with the device's counter reservation (its first
/// signed request there: `Reserved::stored`), and writes its join alone: neither its document
/// nor a commit (its pump has no run). A report that differs from the stored one is written.
#[tokio::test]
async fn a_device_taken_over_with_its_stored_report_writes_its_join_alone() {
    use pumppilot_server::runtime::SEEN_EVERY;
    let store: Arc<dyn Store> = Arc::new(testing::fresh_store().await);
    let clock = ManualClock::starting_now();
    let (admin, _farmer, device) = pump(store.as_ref(), clock.now(), 11).await;
    let (left, taker) = two_servers(&store, &clock, admin).await;

    // The device polled the server it left, which stored its report and let it go when it fell
    // silent.
    let last_seen = clock.now();
    poll(&left, admin, device, last_seen).await;
    left.flush_telemetry().await;
    clock.advance(Duration::from_millis(u64::try_from(i64::from(LEASE_MS) * 2 / 3 + 1).unwrap()));
    left.heartbeat().await;
    assert_eq!(store.presences().await.unwrap(), [], "let go");

    // It comes back at the other server after its lease and `SEEN_EVERY`.
    clock.advance(SEEN_EVERY);
    let reserved = store.reserve_device_counters(admin, device, 1, 1_000).await.unwrap();
    let stored = reserved.stored.expect("the report its last server stored");
    assert_eq!(stored.last_seen_at, last_seen);
    taker.note_stored_report(&stored);
    let tenant = || async { store.load_tenant(admin, i64::from(LEASE_MS)).await.unwrap().unwrap() };
    let version = tenant().await.version;
    let back = clock.now();
    poll(&taker, admin, device, back).await;
    taker.flush_telemetry().await;
    let present: Vec<_> = store.presences().await.unwrap().iter().map(|p| (p.admin, p.device)).collect();
    assert_eq!(present, [(admin, device)], "joined");
    let document = || async { store.devices(admin).await.unwrap().remove(0).telemetry.unwrap() };
    assert_eq!(document().await.last_seen_at, last_seen, "its document is not written again");
    let after = tenant().await;
    assert_eq!(after.version, version, "no commit: nothing waits on the device");
    assert_eq!(after.device.last_poll_at, Some(back), "its join wrote its last poll");

    // A report that differs from the stored one is written.
    clock.advance(Duration::from_secs(4));
    let changed = clock.now();
    let telemetry =
        pumppilot_store::Telemetry { firmware: Some("1.5.0".into()), ..telemetry(admin, device, changed, false) };
    taker.poll(admin, DevicePoll::ready(device), telemetry).await.unwrap();
    taker.flush_telemetry().await;
    let written = document().await;
    assert_eq!((written.last_seen_at, written.firmware.as_deref()), (changed, Some("1.5.0")));
}

/// Many pumps on `store`, made at `now` (which of two servers owns each's timer is a hash: among
/// sixteen, each server owns some but once in 65,536 runs).
async fn pumps(store: &dyn Store, now: Timestamp) -> Vec<(AdminId, pumppilot_engine::UserId, DeviceId)> {
    let mut pumps = Vec::new();
    for key in 0..16 {
        pumps.push(pump(store, now, key).await);
    }
    pumps
}

/// Two started runtimes on `store` that know each other alive (A started first, alone: it read
/// every tenant with a run then).
async fn two_servers(store: &Arc<dyn Store>, clock: &Arc<ManualClock>, some: AdminId) -> (Arc<Runtime>, Arc<Runtime>) {
    let a = Runtime::new(Arc::clone(store), clock.clone(), LEASE_MS, 5_000);
    a.start().await.unwrap();
    let b = Runtime::new(Arc::clone(store), clock.clone(), LEASE_MS, 5_000);
    b.start().await.unwrap();
    until("both feeds caught up", || async { a.is_fresh() && b.is_fresh() }).await;
    until("each server knows the other alive", || async {
        b.heartbeat().await;
        a.heartbeat().await;
        a.owns_timer(some) != b.owns_timer(some)
    })
    .await;
    // Each server's own beat came back through the feed (the feed's clock is the wall clock
    // here): well within FRESH_FOR.
    until("each server's beat back", || async { a.feed_behind().is_some() && b.feed_behind().is_some() }).await;
    for behind in [a.feed_behind(), b.feed_behind()] {
        assert!(behind.is_some_and(|behind| behind < FRESH_FOR), "{behind:?}");
    }
    (a, b)
}

/// Moves the clock on by `by`, a second at a time, every server of `servers` beating at each
/// (so none drops out of the others' fleet meanwhile).
async fn pass(clock: &ManualClock, servers: &[&Arc<Runtime>], by: Duration) {
    let mut left = by;
    while !left.is_zero() {
        let step = left.min(Duration::from_secs(1));
        clock.advance(step);
        left -= step;
        for server in servers {
            server.heartbeat().await;
        }
    }
}

/// `seconds` recharged to `farmer` of `admin`'s pump on `server`.
async fn recharge(server: &Runtime, admin: AdminId, farmer: pumppilot_engine::UserId, seconds: i64) {
    let credit = Credit::new(farmer, seconds, LedgerKind::Recharge, admin.0);
    server.apply(admin, Event::Credit(credit), Extras::default(), |_, _| ()).await.unwrap().0.unwrap();
}

/// `server`'s timer holds `admin`'s run (at `version`) for a silent device at `fires_at`, not a
/// millisecond before, in one commit, charging `charged` milliseconds.
async fn fires_the_lease_end_once(
    store: &Arc<dyn Store>,
    clock: &ManualClock,
    server: &Arc<Runtime>,
    admin: AdminId,
    version: u64,
    fires_at: Timestamp,
    charged: i64,
) {
    clock.set(fires_at - 1);
    server.heartbeat().await;
    assert_eq!(store.load_tenant(admin, i64::from(LEASE_MS)).await.unwrap().unwrap().version, version, "not yet");
    clock.advance(Duration::from_millis(1));
    until("the run held DEVICE_OFFLINE in the store", || async {
        let stored = store.load_tenant(admin, i64::from(LEASE_MS)).await.unwrap().unwrap();
        stored.active.as_ref().is_some_and(|e| e.hold_reason == Some(HoldReason::DeviceOffline))
    })
    .await;
    let stored = store.load_tenant(admin, i64::from(LEASE_MS)).await.unwrap().unwrap();
    assert_eq!(stored.version, version + 1, "one commit held the run");
    assert_eq!(stored.active.expect("the run").running_ms, charged, "charged to the lease's end");
}

/// Minutes for `farmer` and their Start, on `runtime`.
async fn start_a_run(runtime: &Runtime, admin: AdminId, farmer: pumppilot_engine::UserId) {
    recharge(runtime, admin, farmer, 600).await;
    let start = Event::Start { user: farmer, requested_minutes: None, entry_id: EntryId::new() };
    runtime.apply(admin, start, Extras::default(), |_, _| ()).await.unwrap().0.unwrap();
}

/// Runs started on `pumps` before any server of the fleet starts (through a runtime that is not
/// one of them), as a farmer's Start before a restart.
async fn runs_before_the_servers(
    store: &Arc<dyn Store>,
    clock: &Arc<ManualClock>,
    pumps: &[(AdminId, pumppilot_engine::UserId, DeviceId)],
) {
    let before = Runtime::new(Arc::clone(store), clock.clone(), LEASE_MS, 5_000);
    for (admin, farmer, _) in pumps {
        start_a_run(&before, *admin, *farmer).await;
    }
}

/// A server keeps a tenant it no longer owns the timer of for `KEEP_FOR`, then lets it go, though
/// the other server kept changing it meanwhile (reading it again for the change feed's news is no
/// use of it); a tenant it owns the timer of but never used is held only while it has a run. Once
/// it holds a tenant no more (nobody uses it there, another server owns its timer), changes made
/// to it on the other server cost it no store read.
#[tokio::test]
async fn a_tenant_neither_served_nor_owned_here_is_let_go_and_its_changes_cost_no_read() {
    use pumppilot_server::runtime::KEEP_FOR;
    let store: Arc<dyn Store> = Arc::new(testing::fresh_store().await);
    let clock = ManualClock::starting_now();
    let pumps = pumps(store.as_ref(), clock.now()).await;
    runs_before_the_servers(&store, &clock, &pumps).await;
    // Pumps without a run: A reads none of them when it starts.
    let mut idle = Vec::new();
    for key in 16..32 {
        idle.push(pump(store.as_ref(), clock.now(), key).await);
    }
    let (a, b) = two_servers(&store, &clock, pumps[0].0).await;
    let (admin, farmer, _) = *pumps.iter().find(|p| b.owns_timer(p.0)).expect("B owns a pump's timer");
    let (other, other_farmer, _) = *pumps.iter().find(|p| a.owns_timer(p.0)).expect("A owns a pump's timer");
    let (third, third_farmer, _) = *idle.iter().find(|p| a.owns_timer(p.0)).expect("A owns an idle pump's timer");
    assert!(a.holds(admin), "read at A's start, when it was alone: kept while the new owner reads it");
    assert!(b.holds(admin) && a.holds(other), "B holds what it owns; A what it owns (each has a run)");
    assert!(!a.holds(third), "a pump without a run is not read");

    // For a minute B keeps changing its tenant, and A reads each change again (it holds the
    // tenant); meanwhile B gives a run to a pump whose timer A owns (A reads it: it has a deadline
    // to keep) and ends it. None of that is a use at A: a minute after A last needed B's tenant (it
    // stopped owning its timer) it is let go, not a second later; the other, never used at A, is
    // let go once its run is over.
    // A brings the tenant up to date: it takes the committed state from the feed (or reads it).
    let caught_up = |a: &Runtime| a.loads() + a.taken_from_feed();
    let heard = |before: u64| {
        let a = Arc::clone(&a);
        async move { until("A brings the changed tenant up to date", || async { caught_up(&a) > before }).await }
    };
    for second in 1..=KEEP_FOR.as_secs() {
        assert!(a.holds(admin), "kept for a minute, not less ({second} s)");
        pass(&clock, &[&b, &a], Duration::from_secs(1)).await;
        let loads = caught_up(&a);
        match second {
            10 | 30 | 50 => {
                recharge(&b, admin, farmer, 60).await;
                heard(loads).await;
            }
            20 => {
                start_a_run(&b, third, third_farmer).await;
                heard(loads).await;
                assert!(a.holds(third), "A holds a tenant with a run whose timer it owns");
            }
            25 => {
                b.apply(third, Event::Stop { user: third_farmer }, Extras::default(), |_, _| ())
                    .await
                    .unwrap()
                    .0
                    .unwrap();
                heard(loads).await;
            }
            _ => {}
        }
    }
    assert!(!a.holds(admin), "A let go of a tenant it neither serves nor owns, a minute after it last needed it");
    assert!(!a.holds(third), "and of one it owns but never used, its run over");
    assert!(a.holds(other) && b.holds(admin), "each keeps the tenants with a run whose timer it owns");

    // Changes on B to B's tenant, then to A's: A hears of the second (it takes the state the feed
    // carries, once), so it has heard of the first before, and took or read nothing for it.
    let (loads, taken) = (a.loads(), a.taken_from_feed());
    recharge(&b, admin, farmer, 60).await;
    recharge(&b, other, other_farmer, 60).await;
    let version = store.load_tenant(other, i64::from(LEASE_MS)).await.unwrap().unwrap().version;
    let heard = a.subscribe(other);
    until("A hears of the change to its own tenant", || async { heard.borrow().version == version }).await;
    assert_eq!(a.loads(), loads, "A read nothing: the feed carried the state committed");
    assert_eq!(a.taken_from_feed(), taken + 1, "A took only its own tenant's new state, not B's (changed before it)");
    assert!(!a.holds(admin), "and does not hold B's");
}

/// A farmer's Start committed at server A reaches the device at server B without a store read
/// there: B takes the state A committed from the change feed, which is the store's own (B's own
/// poll of the controller, not flushed yet, kept), and answers its device ON from it.
#[tokio::test]
async fn a_start_at_one_server_reaches_the_device_at_another_without_a_read() {
    use pumppilot_engine::Motor;
    let store: Arc<dyn Store> = Arc::new(testing::fresh_store().await);
    let clock = ManualClock::starting_now();
    let (admin, farmer, device) = pump(store.as_ref(), clock.now(), 0).await;
    let (a, b) = two_servers(&store, &clock, admin).await;
    // The device polls B: B holds its tenant; the farmer's page at A reads it there.
    poll(&b, admin, device, clock.now()).await;
    let heard = b.subscribe(admin);
    let before = heard.borrow().version;
    recharge(&a, admin, farmer, 600).await;
    until("B hears the recharge", || async { heard.borrow().version > before }).await;
    clock.advance(Duration::from_secs(1));
    poll(&b, admin, device, clock.now()).await;
    let seen = clock.now();

    let (loads, taken) = (b.loads(), b.taken_from_feed());
    let start = Event::Start { user: farmer, requested_minutes: None, entry_id: EntryId::new() };
    a.apply(admin, start, Extras::default(), |_, _| ()).await.unwrap().0.unwrap();
    let committed = store.load_tenant(admin, i64::from(LEASE_MS)).await.unwrap().unwrap();
    until("B hears the Start", || async { heard.borrow().version == committed.version }).await;
    assert_eq!(b.loads(), loads, "B read nothing from the store");
    assert_eq!(b.taken_from_feed(), taken + 1, "B took the committed state from the feed");

    // Answers from memory need a feed known to be caught up (a beat back within FRESH_FOR).
    until("B's feed caught up", || async {
        b.heartbeat().await;
        b.is_fresh()
    })
    .await;
    let answer = b.command(admin, device).await.unwrap();
    assert_eq!(answer.motor, Motor::On, "B answers its device ON from the state it took");
    let held = b.read(admin, |tenant, _| tenant.clone()).await.unwrap();
    assert_eq!(held.device.last_poll_at, Some(seen), "B's own poll, not flushed yet, is kept");
    let mut stored = committed.clone();
    stored.device.last_poll_at = held.device.last_poll_at;
    stored.defaults = held.defaults;
    assert_eq!(held, stored, "what B holds is what the store holds");
    assert_eq!(b.loads(), loads, "and answering from it read nothing");
}

/// A device moves from server B to server A, which did not hold its tenant: A reads it at the
/// first poll and answers as B would (ON, a run is on), and a Stop made on B still turns the device
/// OFF at its next poll to A.
#[tokio::test]
async fn a_device_moving_to_a_server_that_does_not_hold_its_tenant_is_answered_right() {
    use pumppilot_engine::Motor;
    use pumppilot_server::runtime::KEEP_FOR;
    let store: Arc<dyn Store> = Arc::new(testing::fresh_store().await);
    let clock = ManualClock::starting_now();
    let pumps = pumps(store.as_ref(), clock.now()).await;
    let (a, b) = two_servers(&store, &clock, pumps[0].0).await;
    let (admin, farmer, device) = *pumps.iter().find(|p| b.owns_timer(p.0)).expect("B owns a pump's timer");
    pass(&clock, &[&b, &a], KEEP_FOR).await;
    assert!(!a.holds(admin));

    let answer = |runtime: Arc<Runtime>| async move {
        let now = runtime.clock().now();
        runtime.poll(admin, DevicePoll::ready(device), telemetry(admin, device, now, false)).await.unwrap().motor
    };
    assert_eq!(answer(Arc::clone(&b)).await, Motor::Off, "no run yet");
    start_a_run(&b, admin, farmer).await;
    assert_eq!(answer(Arc::clone(&b)).await, Motor::On, "told ON at B");
    assert!(!a.holds(admin));

    // The device moves to A.
    clock.advance(Duration::from_secs(4));
    let loads = a.loads();
    assert_eq!(answer(Arc::clone(&a)).await, Motor::On, "A reads the tenant and answers ON");
    assert_eq!(a.loads(), loads + 1, "read once");
    assert!(a.holds(admin), "held while the device polls here");

    // The farmer presses Stop on B: at its next poll to A, the device is told OFF.
    b.apply(admin, Event::Stop { user: farmer }, Extras::default(), |_, _| ()).await.unwrap().0.unwrap();
    let version = store.load_tenant(admin, i64::from(LEASE_MS)).await.unwrap().unwrap().version;
    let heard = a.subscribe(admin);
    until("A hears of the Stop", || async { heard.borrow().version == version }).await;
    clock.advance(Duration::from_secs(4));
    assert_eq!(answer(Arc::clone(&a)).await, Motor::Off, "the Stop made on B turns it OFF at A");
}

/// The server that owns a tenant's timer dies (its runtime dropped: no beat, no timer): the other,
/// which did not hold the tenant, takes it over within `TIMER_TAKEOVER` of the last beat and holds
/// the silent device's run DEVICE_OFFLINE at the lease's end and grace, charged to the lease's end.
#[tokio::test]
async fn when_a_timers_owner_dies_another_server_takes_the_tenant_over_and_fires_its_lease() {
    use pumppilot_server::runtime::KEEP_FOR;
    let store: Arc<dyn Store> = Arc::new(testing::fresh_store().await);
    let clock = ManualClock::starting_now();
    let pumps = pumps(store.as_ref(), clock.now()).await;
    let (a, b) = two_servers(&store, &clock, pumps[0].0).await;
    let (admin, farmer, device) = *pumps.iter().find(|p| b.owns_timer(p.0)).expect("B owns a pump's timer");
    pass(&clock, &[&b, &a], KEEP_FOR).await;

    // A run on B, its device polling B; A does not hold the tenant.
    poll(&b, admin, device, clock.now()).await;
    start_a_run(&b, admin, farmer).await;
    let told_on = clock.now();
    poll(&b, admin, device, told_on).await;
    pass(&clock, &[&b, &a], Duration::from_secs(4)).await;
    let last_poll = clock.now();
    poll(&b, admin, device, last_poll).await;
    b.flush_telemetry().await;
    assert_eq!(
        store.load_tenant(admin, i64::from(LEASE_MS)).await.unwrap().unwrap().device.last_poll_at,
        Some(last_poll)
    );
    assert!(!a.holds(admin));
    let version = store.load_tenant(admin, i64::from(LEASE_MS)).await.unwrap().unwrap().version;

    // B dies; the device falls silent. Within TIMER_TAKEOVER (and a beat) A owns and holds it.
    let gone = Arc::downgrade(&b);
    drop(b);
    until("B's runtime is gone", || async { gone.upgrade().is_none() }).await;
    pass(&clock, &[&a], TIMER_TAKEOVER + Duration::from_secs(1)).await;
    assert!(a.owns_timer(admin), "A alone alive: it owns every timer");
    until("A takes the tenant over", || async { a.holds(admin) }).await;

    // It fires the lease's end at its time (after the grace), once.
    let lease_end = last_poll + i64::from(LEASE_MS);
    let grace = i64::try_from(LEASE_TAKEOVER_GRACE.as_millis()).unwrap();
    until("A's timer waits for the lease's end", || async { clock.waits().contains(&(lease_end + grace)) }).await;
    fires_the_lease_end_once(&store, &clock, &a, admin, version, lease_end + grace, lease_end - told_on).await;
}

/// A server taking over its share (here all of them: it starts alone) reads only the tenants with a
/// run, the only ones whose deadlines it must fire; the others are read on use. Once a run ends,
/// its tenant is let go `KEEP_FOR` after it was last needed, though this server owns its timer.
#[tokio::test]
async fn a_server_taking_over_reads_only_the_tenants_with_a_run() {
    use pumppilot_server::runtime::KEEP_FOR;
    let store: Arc<dyn Store> = Arc::new(testing::fresh_store().await);
    let clock = ManualClock::starting_now();
    let pumps = pumps(store.as_ref(), clock.now()).await;
    runs_before_the_servers(&store, &clock, &pumps[..2]).await;
    let a = Runtime::new(Arc::clone(&store), clock.clone(), LEASE_MS, 5_000);
    a.start().await.unwrap();
    assert!(pumps.iter().all(|p| a.owns_timer(p.0)), "alone, it owns every timer");
    assert_eq!(a.loads(), 2, "the two tenants with a run read, not the sixteen");
    assert!(a.holds(pumps[0].0) && a.holds(pumps[1].0), "it holds the tenants with a run");
    assert!(pumps[2..].iter().all(|p| !a.holds(p.0)), "and no other");

    // One run ends: a minute after its Stop, its tenant is let go; the other is kept.
    let (admin, farmer, _) = pumps[0];
    a.apply(admin, Event::Stop { user: farmer }, Extras::default(), |_, _| ()).await.unwrap().0.unwrap();
    pass(&clock, &[&a], KEEP_FOR + Duration::from_secs(1)).await;
    assert!(!a.holds(admin), "no run, nothing of it here: let go");
    assert!(a.holds(pumps[1].0), "a run: kept");
}

/// A tenant that gets its run after its timer's owner started (a Start made on another server) is
/// read by the owner through the change feed, which says the tenant has a run now; a change to a
/// tenant without a run costs the owner nothing. Its deadline (here the lease's end, the device
/// gone silent) is fired by the owner at its time, the other server gone.
#[tokio::test]
async fn a_tenant_given_a_run_later_is_read_by_its_timers_owner_which_fires_its_deadline() {
    let store: Arc<dyn Store> = Arc::new(testing::fresh_store().await);
    let clock = ManualClock::starting_now();
    let pumps = pumps(store.as_ref(), clock.now()).await;
    let (a, b) = two_servers(&store, &clock, pumps[0].0).await;
    let mut owned = pumps.iter().filter(|p| a.owns_timer(p.0));
    let (admin, farmer, device) = *owned.next().expect("A owns a pump's timer");
    let (other, other_farmer, _) = *owned.next().expect("A owns two pumps' timers");
    assert!(!a.holds(admin) && !a.holds(other), "no run: not read at A's start though it owns them");

    // On B: minutes for a farmer of the other pump (no run), then a Start on the first pump.
    recharge(&b, other, other_farmer, 60).await;
    poll(&b, admin, device, clock.now()).await;
    start_a_run(&b, admin, farmer).await;
    let told_on = clock.now();
    poll(&b, admin, device, told_on).await;
    let version = store.load_tenant(admin, i64::from(LEASE_MS)).await.unwrap().unwrap().version;

    // B dies at once (its beat still counts for a while; A's view of the fleet has not moved).
    let gone = Arc::downgrade(&b);
    drop(b);
    until("B's runtime is gone", || async { gone.upgrade().is_none() }).await;
    let lease_end = told_on + i64::from(LEASE_MS);
    let grace = i64::try_from(LEASE_TAKEOVER_GRACE.as_millis()).unwrap();
    until("A reads the tenant through the feed and waits for its lease's end", || async {
        clock.waits().contains(&(lease_end + grace))
    })
    .await;
    assert!(a.holds(admin), "held: it has a run and A owns its timer");
    assert!(!a.holds(other), "the change to a tenant without a run cost A nothing");

    // A fires the lease's end at its time (after the grace), once.
    fires_the_lease_end_once(&store, &clock, &a, admin, version, lease_end + grace, lease_end - told_on).await;
}

/// On two servers of one store, one of them watches every pump for the owners' alerts: the other
/// lists no pump and tells nobody, and the watching one tells each owner of a silent device, so a
/// round lists the pumps once for the whole fleet, not once a server.
#[tokio::test]
async fn one_server_of_a_fleet_watches_every_pump_for_the_owners_alerts() {
    use pumppilot_engine::NoticeKind;
    use pumppilot_server::alerts::{AlertSettings, WatchMemory, watch_pumps};
    let mongo = testing::fresh_store().await;
    let store: Arc<dyn Store> = Arc::new(mongo.clone());
    let clock = ManualClock::starting_now();
    let pumps = pumps(store.as_ref(), clock.now()).await;
    let (a, b) = two_servers(&store, &clock, pumps[0].0).await;
    assert_ne!(a.watches_every_pump(), b.watches_every_pump(), "one of the two watches");
    let (watcher, other) = if a.watches_every_pump() { (&a, &b) } else { (&b, &a) };
    // Every device polls once, at either server, and falls silent for longer than the set time.
    for (n, (admin, _, device)) in pumps.iter().enumerate() {
        poll(if n % 2 == 0 { &a } else { &b }, *admin, *device, clock.now()).await;
    }
    a.flush_telemetry().await;
    b.flush_telemetry().await;
    pass(&clock, &[&a, &b], Duration::from_secs(70)).await;
    let settings = AlertSettings { offline_after_ms: 60_000, ..AlertSettings::default() };
    let told = || async {
        let mut told = 0;
        for (admin, _, _) in &pumps {
            let notices = store.notifications(admin.0, 10).await.unwrap();
            told += notices.iter().filter(|n| n.kind == NoticeKind::DeviceOffline).count();
        }
        told
    };
    let lists = || async {
        let operations = testing::operations(&mongo).await.unwrap();
        operations.get("tenants").and_then(|kinds| kinds.get("queries")).map_or(0, |(count, _)| *count)
    };

    let before = lists().await;
    other.heartbeat().await;
    watch_pumps(other, store.as_ref(), &settings, &mut WatchMemory::default()).await;
    assert_eq!((lists().await - before, told().await), (0, 0), "the other server lists no pump, tells nobody");
    watcher.heartbeat().await;
    watch_pumps(watcher, store.as_ref(), &settings, &mut WatchMemory::default()).await;
    assert_eq!(told().await, pumps.len(), "every owner is told once, by the watching server");
}

/// The watching server reads every pump's link once; from then on the change feed tells it what
/// changed. A commit made at the other server (the feed carries its state) is known without a
/// read, and a pump added since (written whole, which the feed does not tell) is read alone.
#[tokio::test]
async fn the_watch_reads_every_pump_once_then_hears_what_changed_through_the_feed() {
    use std::collections::HashSet;

    use pumppilot_server::alerts::{AlertSettings, WatchMemory, watch_pumps};
    let mongo = testing::fresh_store().await;
    let store: Arc<dyn Store> = Arc::new(mongo.clone());
    let clock = ManualClock::starting_now();
    let pumps = pumps(store.as_ref(), clock.now()).await;
    let (a, b) = two_servers(&store, &clock, pumps[0].0).await;
    let (watcher, other) = if a.watches_every_pump() { (&a, &b) } else { (&b, &a) };
    let settings = AlertSettings { offline_after_ms: 60_000, ..AlertSettings::default() };
    let lists = || async {
        let operations = testing::operations(&mongo).await.unwrap();
        operations.get("tenants").and_then(|kinds| kinds.get("queries")).map_or(0, |(count, _)| *count)
    };
    let mut memory = WatchMemory::default();
    let before = lists().await;
    watcher.heartbeat().await;
    watch_pumps(watcher, store.as_ref(), &settings, &mut memory).await;
    assert_eq!(lists().await - before, 1, "every pump's link in one read");
    let (admin, _, device) = pumps[0];
    assert_eq!(memory.link(admin).map(|link| link.version), Some(0));

    // At the other server, pump 0's device reports the grid down (a commit); a pump is added.
    let shedding = DevicePoll { load_shedding: true, ..DevicePoll::ready(device) };
    let mut report = telemetry(admin, device, clock.now(), false);
    report.load_shedding = true;
    other.poll(admin, shedding, report).await.unwrap();
    let (added, _, _) = pump(store.as_ref(), clock.now(), 16).await;
    let stored = store.pump_links(Some(&HashSet::from([admin, added]))).await.unwrap();
    let stored_of = |admin: AdminId| stored.iter().find(|link| link.admin == admin).copied();
    assert!(stored_of(admin).is_some_and(|link| link.load_shedding && link.version > 0), "{stored:?}");

    let before = lists().await;
    let memory = tokio::sync::Mutex::new(memory);
    until("the watch knows both as stored", || async {
        let mut memory = memory.lock().await;
        watcher.heartbeat().await;
        watch_pumps(watcher, store.as_ref(), &settings, &mut memory).await;
        memory.link(admin) == stored_of(admin) && memory.link(added) == stored_of(added)
    })
    .await;
    let mut memory = memory.into_inner();
    assert_eq!(lists().await - before, 1, "the added pump read alone; the commit's link taken from the feed");
    let before = lists().await;
    watcher.heartbeat().await;
    watch_pumps(watcher, store.as_ref(), &settings, &mut memory).await;
    assert_eq!(lists().await - before, 0, "a round with nothing new reads nothing");
    for (other_pump, _, _) in &pumps[1..] {
        assert_eq!(memory.link(*other_pump).map(|link| link.version), Some(0), "the others as read first");
    }
}
